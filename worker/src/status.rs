//! What a worker reports about each of its streams:
//! `workflows/<wf>/status/<stream>` (state, position, lag source, events/s,
//! copy progress, error and since when), under the worker's lease.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use revdoor_core::progress::{Progress, Snapshot};
use revdoor_core::workflow::{now_ms, StreamState, StreamStatus};

/// A stream task's state and last error, shared by the task, the worker and
/// the reports.
#[derive(Clone, Default)]
pub(crate) struct TaskState(Arc<Mutex<Inner>>);

#[derive(Clone, Default)]
struct Inner {
    state: StreamState,
    error: String,
    /// The definite error the stream last stopped with, until a restarted
    /// run has made progress for [`HALT_CLEARS_AFTER`].
    halt: Option<Halt>,
}

#[derive(Clone)]
struct Halt {
    error: String,
    /// [`Snapshot::updates`] when it stopped.
    updates: u64,
    /// When a restarted run was first seen making progress.
    progressing_since: Option<Instant>,
}

/// How long a restarted run must keep making progress before a halt is
/// over: a run that only gets as far as the same error again (a heartbeat
/// published on the way) stays reported as halted.
const HALT_CLEARS_AFTER: Duration = Duration::from_secs(10);

impl TaskState {
    /// The run's own state (starting, running, error); a recorded halt
    /// stays until the run has made progress.
    pub(crate) fn set(&self, state: StreamState, error: &str) {
        if let Ok(mut t) = self.0.lock() {
            (t.state, t.error) = (state, error.to_string());
        }
    }

    /// The stream stopped with a definite error after `updates` progress
    /// records: it reads `halted` from now on.
    pub(crate) fn halt(&self, error: &str, updates: u64) {
        if let Ok(mut t) = self.0.lock() {
            (t.state, t.error) = (StreamState::Halted, error.to_string());
            t.halt = Some(Halt {
                error: error.to_string(),
                updates,
                progressing_since: None,
            });
        }
    }

    /// The state and error to report, given the progress now: a halt ends
    /// once the restarted run has made progress for [`HALT_CLEARS_AFTER`].
    fn get(&self, p: &Snapshot, now: Instant) -> (StreamState, String) {
        let Ok(mut t) = self.0.lock() else {
            return Default::default();
        };
        let t = &mut *t;
        if let Some(h) = &mut t.halt {
            if t.state == StreamState::Running && p.updates > h.updates {
                let since = *h.progressing_since.get_or_insert(now);
                if now.duration_since(since) >= HALT_CLEARS_AFTER {
                    t.halt = None;
                }
            } else {
                h.progressing_since = None;
            }
        }
        match &t.halt {
            Some(h) => (StreamState::Halted, h.error.clone()),
            None => (t.state, t.error.clone()),
        }
    }
}

/// Where a stream task's reports come from.
pub(crate) struct Status {
    pub(crate) progress: Arc<Progress>,
    pub(crate) state: TaskState,
    /// Events counted at the last report, and when.
    last_events: (u64, Instant),
    /// When a report first carried an error since the stream last ran
    /// without one.
    error_since_ms: Option<u64>,
}

impl Status {
    pub(crate) fn new() -> Self {
        Status {
            progress: Arc::new(Progress::default()),
            state: TaskState::default(),
            last_events: (0, Instant::now()),
            error_since_ms: None,
        }
    }

    /// The report of `worker` now; events/s since the previous one.
    pub(crate) fn report(&mut self, worker: &str) -> StreamStatus {
        let p = self.progress.snapshot();
        let (mut state, mut error) = self.state.get(&p, Instant::now());
        // "running" means working: a stream retrying an error says so, and
        // one that has reported nothing yet is still starting.
        if state == StreamState::Running {
            if let Some(why) = &p.retrying {
                (state, error) = (StreamState::Error, format!("retrying: {why}"));
            } else if !Progress::started(&p) {
                state = StreamState::Starting;
            }
        }
        // A run of errors lasts through retries and restarts (starting
        // again) until the stream runs without one.
        if !error.is_empty() {
            self.error_since_ms.get_or_insert_with(now_ms);
        } else if state == StreamState::Running {
            self.error_since_ms = None;
        }
        let elapsed = self.last_events.1.elapsed().as_secs_f64().max(0.001);
        let rate = p.events.saturating_sub(self.last_events.0) as f64 / elapsed;
        self.last_events = (p.events, Instant::now());
        StreamStatus {
            worker: worker.to_string(),
            state,
            error,
            error_since_ms: self.error_since_ms,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(updates: u64) -> Snapshot {
        Snapshot {
            updates,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_halt_lasts_until_a_restarted_run_keeps_making_progress() {
        let t = TaskState::default();
        let t0 = Instant::now();
        t.set(StreamState::Running, "");
        assert_eq!(t.get(&progress(5), t0).0, StreamState::Running);
        t.halt("poison message at offset 7", 5);
        let halted = (
            StreamState::Halted,
            "poison message at offset 7".to_string(),
        );
        assert_eq!(t.get(&progress(5), t0), halted);
        // Restarted: starting, then running without progress — still halted.
        t.set(StreamState::Starting, "");
        assert_eq!(t.get(&progress(5), t0), halted);
        t.set(StreamState::Running, "");
        assert_eq!(t.get(&progress(5), t0), halted);
        // A heartbeat on the way to the same error, then the same error.
        assert_eq!(t.get(&progress(6), t0), halted);
        t.halt("poison message at offset 7", 6);
        t.set(StreamState::Running, "");
        let later = t0 + HALT_CLEARS_AFTER * 2;
        assert_eq!(t.get(&progress(6), later), halted);
        // Progress that lasts ends the halt.
        assert_eq!(t.get(&progress(7), later), halted);
        assert_eq!(
            t.get(&progress(9), later + HALT_CLEARS_AFTER),
            (StreamState::Running, String::new())
        );
    }

    #[test]
    fn an_error_is_reported_since_it_was_first_seen_until_the_stream_runs_clean() {
        let mut s = Status::new();
        s.state.set(StreamState::Running, "");
        s.progress.update(|p| p.events = 1);
        assert_eq!(s.report("w").error_since_ms, None);
        s.progress.retrying("Access denied for user 'rd'".into());
        let first = s.report("w");
        assert_eq!(first.state, StreamState::Error);
        let since = first.error_since_ms.expect("an error has a since");
        // Retried again, then the run stops and starts again: the same run
        // of errors.
        s.progress.retrying("Access denied for user 'rd'".into());
        assert_eq!(s.report("w").error_since_ms, Some(since));
        s.state.set(StreamState::Error, "lost connection");
        assert_eq!(s.report("w").error_since_ms, Some(since));
        s.state.set(StreamState::Starting, "");
        assert_eq!(s.report("w").error_since_ms, Some(since));
        // Running with progress: the run of errors is over.
        s.state.set(StreamState::Running, "");
        s.progress.update(|p| p.events = 2);
        let healthy = s.report("w");
        assert_eq!(
            (healthy.state, healthy.error_since_ms),
            (StreamState::Running, None)
        );
    }

    #[test]
    fn a_transient_error_is_not_a_halt() {
        let t = TaskState::default();
        t.set(StreamState::Error, "lost connection");
        t.set(StreamState::Running, "");
        assert_eq!(
            t.get(&progress(0), Instant::now()),
            (StreamState::Running, String::new())
        );
    }
}
