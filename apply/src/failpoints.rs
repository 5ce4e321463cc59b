//! Named failpoints of apply, for crash tests (see capture's `failpoints`).

/// After the rows and the checkpoint update were written, before COMMIT.
pub const BEFORE_CHECKPOINT_COMMIT: &str = "apply::before_checkpoint_commit";
/// After COMMIT, before the consumer moves on.
pub const AFTER_COMMIT_BEFORE_ACK: &str = "apply::after_commit_before_ack";
/// In a parallel bucket, before COMMIT: fail it (a transient error), so
/// the group falls back to one connection.
pub const BUCKET_ERROR: &str = "apply::bucket_error";
/// A DDL record's intent is committed; the statement has not run.
pub const DDL_BEFORE_EXEC: &str = "apply::ddl_before_exec";
/// The DDL ran; the checkpoint has not passed it.
pub const DDL_AFTER_EXEC: &str = "apply::ddl_after_exec";
/// A part of a streamed big transaction was applied; its DB transaction
/// is open (more parts, or the checkpoint, to come).
pub const STREAMED_PART: &str = "apply::streamed_part";
