//! `revdoor coordinator run`: leader election, the workflow loop and stream
//! assignment (DESIGN §6).
//!
//! Coordinators campaign for the leader key with a [`LeaseLock`]; the one
//! holding it acts, the others wait. Every write of the leader is guarded by
//! the key's create revision ([`Registry::commit`]), so a leader that was
//! paused past its lease writes nothing once a successor exists: its first
//! write fails with [`Error::Deposed`] and it goes back to standby.
//!
//! Each pass (every 100 ms) the leader
//! 1. runs the pending operator request of each workflow (switch, reverse,
//!    complete, cancel; see [`crate::switch`]), resuming or rolling back a
//!    request that a previous leader left midway;
//! 2. moves a workflow from `copying` to `running` once every forward
//!    capture reports its copy done;
//! 3. assigns the streams of each workflow's active direction to live
//!    workers: sticky, least-loaded first, spreading when workers join, and
//!    moving a dead worker's streams once its registration lease expired.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use revdoor_core::names::WorkflowName;
use revdoor_core::policy::{decide, Backoff, Classify, Decision};
use revdoor_core::workflow::{now_ms, Phase, StreamKind, StreamSpec, StreamStatus, WorkflowState};
use tokio_util::sync::CancellationToken;

pub use crate::config::Config;

use crate::assign::assign;
use crate::lock::LeaseLock;
use crate::registry::{Guard, Registry};
use crate::switch;
use crate::Error;

/// Delays between leader passes that failed (reset after a pass that led
/// for [`HEALTHY`]).
const STEP_DOWN: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
const HEALTHY: Duration = Duration::from_secs(30);

/// Campaign, lead until deposed or cancelled, campaign again. What follows
/// a failed pass is [`revdoor_core::policy::decide`]'s: a transient error
/// steps down and campaigns again after a backoff; a lost leadership
/// campaigns again at once; a definite one (a refusal) stops the
/// coordinator with the error.
pub async fn run(reg: Registry, cfg: Config, cancel: CancellationToken) -> Result<(), Error> {
    let key = reg.prefix.leader();
    let mut backoff = STEP_DOWN;
    let leader = metrics::gauge!(revdoor_core::metrics::COORDINATOR_LEADER);
    let errors = revdoor_core::metrics::Errors::new("", "");
    leader.set(0.0);
    loop {
        tracing::info!(coordinator = %cfg.id, "standing by for leadership");
        let lock = loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            match LeaseLock::try_acquire(&reg.client, &key, &cfg.id, cfg.lease_ttl).await {
                Ok(Some(l)) => break l,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "campaign"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        };
        let guard = Guard {
            key: key.clone(),
            create_revision: i64::try_from(lock.token().get()).unwrap_or(i64::MAX),
            token: lock.token(),
            id: cfg.id.clone(),
        };
        tracing::info!(coordinator = %cfg.id, token = %lock.token(), "leading");
        let lost = lock.lost();
        let led = Instant::now();
        leader.set(1.0);
        let result = tokio::select! {
            r = lead(&reg, &guard, &cfg, &cancel) => r,
            _ = lost.cancelled() => Err(Error::Deposed),
        };
        leader.set(0.0);
        let e = match result {
            Ok(()) => {
                let _ = lock.release().await;
                return Ok(());
            }
            Err(e) => e,
        };
        if led.elapsed() >= HEALTHY {
            backoff.reset();
        }
        if !cancel.is_cancelled() {
            errors.count(e.kind());
        }
        match decide(e.kind(), cancel.is_cancelled(), &mut backoff) {
            Decision::Stop if cancel.is_cancelled() => {
                let _ = lock.release().await;
                return Ok(());
            }
            Decision::Stop => {
                tracing::warn!(coordinator = %cfg.id, "lost leadership (lease expired or a successor took over); writing nothing more");
                drop(lock);
            }
            Decision::Retry(delay) => {
                // Give way: a standby (or we, after campaigning) retries.
                tracing::error!(coordinator = %cfg.id, error = %e, retry_in_ms = delay.as_millis() as u64,
                    "leader pass failed; stepping down");
                let _ = lock.release().await;
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Decision::Halt => {
                tracing::error!(coordinator = %cfg.id, error = %e, "leader pass refused; stopping");
                let _ = lock.release().await;
                return Err(e);
            }
        }
    }
}

async fn lead(
    reg: &Registry,
    guard: &Guard,
    cfg: &Config,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        for wf in reg.workflow_names().await? {
            match Box::pin(switch::handle_request(reg, guard, cfg, &wf)).await {
                Ok(()) => {}
                Err(Error::Deposed) => return Err(Error::Deposed),
                Err(e) => tracing::error!(workflow = %wf, error = %e, "request"),
            }
            copy_progress(reg, guard, &wf).await?;
        }
        assign(reg, guard).await?;
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// `copying → running` once every forward capture finished its copy.
async fn copy_progress(reg: &Registry, guard: &Guard, wf: &WorkflowName) -> Result<(), Error> {
    let Some((mut state, rev)) = reg
        .get::<WorkflowState>(&reg.prefix.workflow_state(wf))
        .await?
    else {
        return Ok(());
    };
    if state.phase != Phase::Copying {
        return Ok(());
    }
    let streams: Vec<(String, StreamSpec)> = reg.list(&reg.prefix.streams(wf)).await?;
    let statuses: BTreeMap<String, StreamStatus> = reg
        .list(&reg.prefix.statuses(wf))
        .await?
        .into_iter()
        .collect();
    let captures: Vec<&StreamSpec> = streams
        .iter()
        .map(|(_, s)| s)
        .filter(|s| {
            s.kind == StreamKind::Capture && s.direction == revdoor_core::names::Direction::Forward
        })
        .collect();
    let done = !captures.is_empty()
        && captures
            .iter()
            .all(|s| statuses.get(&s.id()).is_some_and(|st| st.copy_done));
    if done {
        state.phase = Phase::Running;
        state.updated_ms = now_ms();
        let key = reg.prefix.workflow_state(wf);
        match reg
            .commit(
                guard,
                vec![etcd_client::Compare::mod_revision(
                    key.as_str(),
                    etcd_client::CompareOp::Equal,
                    rev,
                )],
                vec![Registry::op_put(&key, &state)],
            )
            .await
        {
            Ok(()) => tracing::info!(workflow = %wf, "copy done: running"),
            Err(Error::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
