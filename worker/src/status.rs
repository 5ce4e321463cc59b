//! What a worker reports about each of its streams:
//! `workflows/<wf>/status/<stream>` (state, position, lag source, events/s,
//! copy progress, error), under the worker's lease.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use revdoor_core::progress::Progress;
use revdoor_core::workflow::{now_ms, StreamState, StreamStatus};

/// A stream task's state and last error, shared by the task, the worker and
/// the reports.
#[derive(Clone, Default)]
pub(crate) struct TaskState(Arc<Mutex<(StreamState, String)>>);

impl TaskState {
    pub(crate) fn set(&self, state: StreamState, error: &str) {
        if let Ok(mut t) = self.0.lock() {
            *t = (state, error.to_string());
        }
    }

    fn get(&self) -> (StreamState, String) {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// Where a stream task's reports come from.
pub(crate) struct Status {
    pub(crate) progress: Arc<Progress>,
    pub(crate) state: TaskState,
    /// Events counted at the last report, and when.
    last_events: (u64, Instant),
}

impl Status {
    pub(crate) fn new() -> Self {
        Status {
            progress: Arc::new(Progress::default()),
            state: TaskState::default(),
            last_events: (0, Instant::now()),
        }
    }

    /// The report of `worker` now; events/s since the previous one.
    pub(crate) fn report(&mut self, worker: &str) -> StreamStatus {
        let p = self.progress.snapshot();
        let (mut state, mut error) = self.state.get();
        // "running" means working: a stream retrying an error says so, and
        // one that has reported nothing yet is still starting.
        if state == StreamState::Running {
            if let Some(why) = &p.retrying {
                (state, error) = (StreamState::Error, format!("retrying: {why}"));
            } else if !Progress::started(&p) {
                state = StreamState::Starting;
            }
        }
        let elapsed = self.last_events.1.elapsed().as_secs_f64().max(0.001);
        let rate = p.events.saturating_sub(self.last_events.0) as f64 / elapsed;
        self.last_events = (p.events, Instant::now());
        StreamStatus {
            worker: worker.to_string(),
            state,
            error,
            position: p.position,
            source_ts_ms: p.source_ts_ms,
            events: p.events,
            events_per_s: (rate * 10.0).round() / 10.0,
            copy_rows: p.copy_rows,
            copy_total: p.copy_total,
            copy_done: p.copy_done,
            updated_ms: now_ms(),
        }
    }
}
