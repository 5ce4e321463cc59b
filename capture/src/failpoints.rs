//! Named failpoints of capture, for crash tests.
//!
//! Compiled in only with the `failpoints` feature; set at start-up through
//! the `FAILPOINTS` environment variable (`fail` crate syntax), e.g.
//! `FAILPOINTS='capture::after_kafka_commit=20*off->panic'` crashes the
//! process at the 21st commit (the binary turns every panic into an abort,
//! so a failpoint panic is a crash, like `kill -9`).

/// After a Kafka transaction (events + checkpoint) committed, before the
/// next one begins.
pub const AFTER_KAFKA_COMMIT: &str = "capture::after_kafka_commit";
/// Inside a Kafka transaction, after part of a source transaction's events
/// were sent and before the rest.
pub const MID_TRANSACTION: &str = "capture::mid_transaction";
/// During the copy phase, between the low and the high watermark.
pub const BETWEEN_WATERMARKS: &str = "copy::between_watermarks";
