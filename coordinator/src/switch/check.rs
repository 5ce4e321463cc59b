//! The cutover's lag gate (step `check`, DESIGN §6 step 1): every stream of
//! the running direction is reported running by a live worker and its apply
//! lag is within `--max-lag`. `--dry-run` prints the same verdict.

use std::collections::BTreeMap;

use revdoor_core::names::{Direction, WorkflowName};
use revdoor_core::workflow::{now_ms, StreamKind, StreamSpec, StreamStatus};

use crate::registry::Registry;
use crate::Error;

/// Lag gate and health of the running direction's streams.
pub async fn check_streams(
    reg: &Registry,
    wf: &WorkflowName,
    direction: Direction,
    max_lag_ms: u64,
) -> Result<String, Error> {
    let specs: Vec<StreamSpec> = reg
        .list::<StreamSpec>(&reg.prefix.streams(wf))
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.direction == direction)
        .collect();
    let statuses: BTreeMap<String, StreamStatus> = reg
        .list(&reg.prefix.statuses(wf))
        .await?
        .into_iter()
        .collect();
    let now = now_ms();
    let mut worst = 0;
    for s in &specs {
        let id = s.id();
        let Some(st) = statuses.get(&id) else {
            return Err(Error::Refused(format!(
                "stream {id} is not running (no worker reports it): start `revdoor worker run`, or wait for it to be assigned"
            )));
        };
        if st.state != "running" {
            return Err(Error::Refused(format!(
                "stream {id} is {} on worker {}{}{}",
                st.state,
                st.worker,
                if st.error.is_empty() { "" } else { ": " },
                st.error
            )));
        }
        if s.kind == StreamKind::Apply {
            let Some(lag) = st.lag_ms(now) else {
                return Err(Error::Refused(format!(
                    "stream {id} has not reported its lag yet (it just started; a heartbeat or an \
                     applied transaction gives it within seconds): try again shortly"
                )));
            };
            if lag > max_lag_ms {
                return Err(Error::Refused(format!(
                    "stream {id} lags {} (above --max-lag {}): wait for it to catch up, or raise --max-lag",
                    fmt_ms(lag),
                    fmt_ms(max_lag_ms)
                )));
            }
            worst = worst.max(lag);
        }
    }
    Ok(format!(
        "{} streams running, worst apply lag {}",
        specs.len(),
        fmt_ms(worst)
    ))
}

/// Whether a [`check_streams`] refusal is about a stream still starting.
pub(super) fn is_starting(why: &str) -> bool {
    why.contains("has not reported its lag yet")
        || why.contains("no worker reports it")
        || why.contains(" is starting on ")
}

pub(super) fn fmt_ms(ms: u64) -> String {
    if ms == u64::MAX {
        "unknown".into()
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}
