//! The cutover's lag gate (step `check`, DESIGN §6 step 1): every stream of
//! the running direction is reported running by a live worker and its apply
//! lag is within `--max-lag`. `--dry-run` prints the same verdict.

use revdoor_core::names::{Direction, WorkflowName};
use revdoor_core::workflow::{now_ms, StreamKind, StreamSpec, StreamState};

use crate::registry::Registry;
use crate::Error;

/// Why the lag gate is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Closed {
    /// A stream is just starting (no worker reports it yet, it reports
    /// `starting`, or it has not measured its lag): worth a few seconds.
    Starting(String),
    /// Anything else: refused at once.
    Refused(String),
}

impl Closed {
    pub(super) fn into_error(self) -> Error {
        match self {
            Closed::Starting(why) | Closed::Refused(why) => Error::Refused(why),
        }
    }
}

/// Lag gate and health of the running direction's streams: a one-line
/// verdict when open, why not when closed.
pub async fn check_streams(
    reg: &Registry,
    wf: &WorkflowName,
    direction: Direction,
    max_lag_ms: u64,
) -> Result<String, Error> {
    gate(reg, wf, direction, max_lag_ms)
        .await?
        .map_err(Closed::into_error)
}

/// [`check_streams`], telling a starting stream from a refusal.
pub(super) async fn gate(
    reg: &Registry,
    wf: &WorkflowName,
    direction: Direction,
    max_lag_ms: u64,
) -> Result<Result<String, Closed>, Error> {
    let specs: Vec<StreamSpec> = reg
        .stream_specs(wf)
        .await?
        .into_iter()
        .filter(|s| s.direction == direction)
        .collect();
    let statuses = reg.stream_statuses(wf).await?;
    let now = now_ms();
    let mut worst = 0;
    for s in &specs {
        let id = s.id();
        let Some(st) = statuses.get(&id) else {
            return Ok(Err(Closed::Starting(format!(
                "stream {id} is not running (no worker reports it): start `revdoor worker run`, or wait for it to be assigned"
            ))));
        };
        if st.state != StreamState::Running {
            let why = format!(
                "stream {id} is {} on worker {}{}{}",
                st.state,
                st.worker,
                if st.error.is_empty() { "" } else { ": " },
                st.error
            );
            return Ok(Err(if st.state == StreamState::Starting {
                Closed::Starting(why)
            } else {
                Closed::Refused(why)
            }));
        }
        if s.kind == StreamKind::Apply {
            let Some(lag) = st.lag_ms(now) else {
                return Ok(Err(Closed::Starting(format!(
                    "stream {id} has not reported its lag yet (it just started; a heartbeat or an \
                     applied transaction gives it within seconds): try again shortly"
                ))));
            };
            if lag > max_lag_ms {
                return Ok(Err(Closed::Refused(format!(
                    "stream {id} lags {} (above --max-lag {}): wait for it to catch up, or raise --max-lag",
                    fmt_ms(lag),
                    fmt_ms(max_lag_ms)
                ))));
            }
            worst = worst.max(lag);
        }
    }
    Ok(Ok(format!(
        "{} streams running, worst apply lag {}",
        specs.len(),
        fmt_ms(worst)
    )))
}

pub(super) fn fmt_ms(ms: u64) -> String {
    if ms == u64::MAX {
        "unknown".into()
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}
