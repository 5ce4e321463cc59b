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
    /// The transient error the stream is retrying after, until it makes
    /// progress again (any [`Progress::update`] clears it).
    pub retrying: Option<String>,
    /// How many times the stream recorded progress (every
    /// [`Progress::update`]): whether it got anywhere since a given moment.
    pub updates: u64,
}

/// A stream's progress cell.
#[derive(Debug, Default)]
pub struct Progress(Mutex<Snapshot>);

impl Progress {
    /// Record progress; a stream calls it only when it got somewhere, so it
    /// also ends a [`Progress::retrying`] report.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.0.lock() {
            s.retrying = None;
            s.updates += 1;
            f(&mut s);
        }
    }

    /// The stream met a transient error and will retry.
    pub fn retrying(&self, error: String) {
        if let Ok(mut s) = self.0.lock() {
            s.retrying = Some(error);
        }
    }

    /// Whether the stream has reported anything it did yet.
    pub fn started(s: &Snapshot) -> bool {
        s.events > 0 || s.source_ts_ms > 0 || s.copy_rows > 0 || s.copy_total > 0 || s.copy_done
    }

    pub fn snapshot(&self) -> Snapshot {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
