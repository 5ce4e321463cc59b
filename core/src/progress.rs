//! Live progress of a stream, shared between the stream's task and whoever
//! reports it (the worker publishes it to etcd as a
//! [`crate::workflow::StreamStatus`]).

use std::sync::Mutex;

use crate::gtid::StoredPosition;

/// What a stream has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Last GTID position published (capture) or applied (apply).
    pub position: StoredPosition,
    /// Source commit time (ms) of the last transaction handled, or of the
    /// last heartbeat when caught up.
    pub source_ts_ms: u64,
    /// Row events published or applied.
    pub events: u64,
    /// Copy phase: rows copied, estimated total, whether it finished.
    pub copy_rows: u64,
    pub copy_total: u64,
    pub copy_done: bool,
}

/// A stream's progress cell.
#[derive(Debug, Default)]
pub struct Progress(Mutex<Snapshot>);

impl Progress {
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.0.lock() {
            f(&mut s);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
