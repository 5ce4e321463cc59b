//! `revdoor coordinator run`: leader election, the workflow loop and stream
//! assignment (DESIGN §6).
//!
//! Coordinators campaign for the leader key with a [`LeaseLock`]; the one
//! holding it acts, the others wait. Every write of the leader is guarded by
//! the key's create revision ([`Registry::commit`]), so a leader that was
//! paused past its lease writes nothing once a successor exists: its first
//! write fails with [`Error::Deposed`] and it goes back to standby.
//!
//! The leader
//! 1. runs the pending operator request of each workflow (switch, reverse,
//!    complete, cancel; see [`crate::switch`]), resuming or rolling back a
//!    request that a previous leader left midway;
//! 2. moves a workflow from `copying` to `running` once every forward
//!    capture reports its copy done;
//! 3. assigns the streams of each workflow's active direction to live
//!    workers: sticky, least-loaded first, spreading when workers join, and
//!    moving a dead worker's streams once its registration lease expired.
//!
//! It acts on **changes**, not on a timer: it watches revdoor's etcd root
//! and does only what a change asks for — a request key runs that
//! workflow's request, a stream's status (while its workflow copies) checks
//! that copy, a worker, a workflow's spec, state or stream specs reassign
//! ([`Todo::note`]). It does everything once when it starts leading, after
//! its watch was lost, and every [`FULL_PASS`] as a safety net; a request
//! that failed is taken up again after [`RETRY`]. So an idle fleet costs
//! the leader nothing per workflow beyond the safety net.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use etcd_client::EventType;

use revdoor_core::names::{EtcdPrefix, WorkflowName};
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
/// Everything is looked at this often even when no change asked for it.
const FULL_PASS: Duration = Duration::from_secs(10);
/// A request that failed (and did not stop the leader) runs again after this.
const RETRY: Duration = Duration::from_secs(1);

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
    // The watch first: a change made while the first pass runs is seen.
    let mut changes = reg.watch_root().await?;
    let mut todo = Todo::everything();
    let mut copying: BTreeSet<WorkflowName> = BTreeSet::new();
    let mut full_at = Instant::now() + FULL_PASS;
    let mut retry: BTreeSet<WorkflowName> = BTreeSet::new();
    let mut retry_at = None;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let failed = pass(reg, guard, cfg, &todo, &mut copying).await?;
        if !failed.is_empty() {
            retry.extend(failed);
            retry_at = Some(Instant::now() + RETRY);
        }
        todo = Todo::default();
        while todo.is_empty() {
            let far = Instant::now() + FULL_PASS;
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                msg = changes.message() => match msg {
                    Ok(Some(resp)) if !resp.canceled() => {
                        for ev in resp.events() {
                            let Some(kv) = ev.kv() else { continue };
                            let Ok(key) = kv.key_str() else { continue };
                            todo.note(&reg.prefix, key, ev.event_type(), kv.value(), &mut copying);
                        }
                    }
                    // The watch ended (etcd restarted, compacted past it):
                    // a new one, and everything once.
                    other => {
                        tracing::info!(ended = ?other.err(), "the leader's etcd watch ended; watching again");
                        changes = reg.watch_root().await?;
                        todo = Todo::everything();
                    }
                },
                _ = tokio::time::sleep_until(full_at.into()) => {
                    todo = Todo::everything();
                    full_at = Instant::now() + FULL_PASS;
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or(far).into()), if retry_at.is_some() => {
                    todo.requests.append(&mut retry);
                    retry_at = None;
                }
            }
        }
    }
}

/// Run what `todo` asks; the workflows whose request failed or is still
/// pending (to be taken up again). `copying` learns which workflows copy.
async fn pass(
    reg: &Registry,
    guard: &Guard,
    cfg: &Config,
    todo: &Todo,
    copying: &mut BTreeSet<WorkflowName>,
) -> Result<Vec<WorkflowName>, Error> {
    let (requests, copies) = if todo.all {
        let all = reg.workflow_names().await?;
        copying.clear();
        (all.clone(), all)
    } else {
        (
            todo.requests.iter().cloned().collect(),
            todo.copies.iter().cloned().collect(),
        )
    };
    let mut failed = Vec::new();
    for wf in &requests {
        match Box::pin(switch::handle_request(reg, guard, cfg, wf)).await {
            // A request still there (left for a later pass) runs again.
            Ok(()) => {
                if !reg.keys(&reg.prefix.request(wf)).await?.is_empty() {
                    failed.push(wf.clone());
                }
            }
            Err(Error::Deposed) => return Err(Error::Deposed),
            Err(e) => {
                tracing::error!(workflow = %wf, error = %e, "request");
                failed.push(wf.clone());
            }
        }
    }
    for wf in &copies {
        if copy_progress(reg, guard, wf).await? == Some(Phase::Copying) {
            copying.insert(wf.clone());
        } else {
            copying.remove(wf);
        }
    }
    if todo.all || todo.assign || !requests.is_empty() {
        assign(reg, guard).await?;
    }
    Ok(failed)
}

/// What the leader has to do after some changes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Todo {
    /// Everything, for every workflow.
    all: bool,
    /// Run the pending request of these workflows.
    requests: BTreeSet<WorkflowName>,
    /// Check whether these workflows finished their copy.
    copies: BTreeSet<WorkflowName>,
    /// Assign streams.
    assign: bool,
}

impl Todo {
    fn everything() -> Todo {
        Todo {
            all: true,
            ..Todo::default()
        }
    }

    fn is_empty(&self) -> bool {
        !self.all && !self.assign && self.requests.is_empty() && self.copies.is_empty()
    }

    /// What a change of `key` (put or deleted, with `value`) asks for.
    /// Only workflows in `copying` care about their streams' statuses,
    /// which change all the time; a workflow's state says whether it
    /// copies. The leader's own journal and assignments ask for nothing.
    fn note(
        &mut self,
        prefix: &EtcdPrefix,
        key: &str,
        kind: EventType,
        value: &[u8],
        copying: &mut BTreeSet<WorkflowName>,
    ) {
        if key.starts_with(&prefix.workers()) {
            self.assign = true;
            return;
        }
        let Some(rest) = key.strip_prefix(&prefix.workflows()) else {
            return;
        };
        let Some((name, what)) = rest.split_once('/') else {
            return;
        };
        let Ok(wf) = name.parse::<WorkflowName>() else {
            return;
        };
        let what = what.split('/').next().unwrap_or_default();
        match what {
            "request" if kind == EventType::Put => {
                self.requests.insert(wf);
            }
            "state" => {
                let phase = serde_json::from_slice::<WorkflowState>(value)
                    .ok()
                    .map(|s| s.phase);
                if phase == Some(Phase::Copying) && kind == EventType::Put {
                    copying.insert(wf.clone());
                    self.copies.insert(wf);
                } else {
                    copying.remove(&wf);
                }
                self.assign = true;
            }
            "status" if copying.contains(&wf) => {
                self.copies.insert(wf);
            }
            "spec" | "streams" => self.assign = true,
            _ => {}
        }
    }
}

/// `copying → running` once every forward capture finished its copy; the
/// workflow's phase after it (`None`: no state).
async fn copy_progress(
    reg: &Registry,
    guard: &Guard,
    wf: &WorkflowName,
) -> Result<Option<Phase>, Error> {
    let Some((mut state, rev)) = reg
        .get::<WorkflowState>(&reg.prefix.workflow_state(wf))
        .await?
    else {
        return Ok(None);
    };
    if state.phase != Phase::Copying {
        return Ok(Some(state.phase));
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
            Ok(()) => {
                tracing::info!(workflow = %wf, "copy done: running");
                return Ok(Some(Phase::Running));
            }
            Err(Error::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(state.phase))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(name: &str) -> WorkflowName {
        name.parse().expect("workflow name")
    }

    fn state(phase: Phase) -> Vec<u8> {
        let mut s: WorkflowState =
            serde_json::from_str(r#"{"phase":"running","epoch":0,"updated_ms":0}"#).expect("state");
        s.phase = phase;
        serde_json::to_vec(&s).expect("json")
    }

    #[test]
    fn changes_ask_only_for_what_they_concern() {
        let p = EtcdPrefix::new("/r/").expect("prefix");
        let mut copying = BTreeSet::new();
        let mut t = Todo::default();
        // The leader's own journal and assignments, and statuses of a
        // workflow that does not copy: nothing to do.
        for key in [
            "/r/workflows/a/journal/00000000000000000001",
            "/r/assignments/w1/a/forward.apply.0",
            "/r/workflows/a/status/forward.apply.0",
            "/r/leader",
            "/r/workflows/a/request",
        ] {
            let kind = if key.ends_with("request") {
                EventType::Delete
            } else {
                EventType::Put
            };
            t.note(&p, key, kind, b"{}", &mut copying);
        }
        assert!(t.is_empty(), "{t:?}");
        // A request put runs that workflow's request.
        t.note(
            &p,
            "/r/workflows/a/request",
            EventType::Put,
            b"{}",
            &mut copying,
        );
        assert_eq!(t.requests, BTreeSet::from([wf("a")]));
        assert!(!t.assign);
        // A workflow entering copying: its statuses now matter.
        let mut t = Todo::default();
        t.note(
            &p,
            "/r/workflows/b/state",
            EventType::Put,
            &state(Phase::Copying),
            &mut copying,
        );
        assert!(copying.contains(&wf("b")) && t.assign && t.copies.contains(&wf("b")));
        let mut t = Todo::default();
        t.note(
            &p,
            "/r/workflows/b/status/forward.capture.-",
            EventType::Put,
            b"{}",
            &mut copying,
        );
        assert_eq!(t.copies, BTreeSet::from([wf("b")]));
        // Running: they no longer do.
        t.note(
            &p,
            "/r/workflows/b/state",
            EventType::Put,
            &state(Phase::Running),
            &mut copying,
        );
        assert!(copying.is_empty());
        // Workers and stream specs reassign.
        for key in [
            "/r/workers/w2",
            "/r/workflows/c/streams/forward.apply.0",
            "/r/workflows/c/spec",
        ] {
            let mut t = Todo::default();
            t.note(&p, key, EventType::Put, b"{}", &mut copying);
            assert!(t.assign && t.requests.is_empty(), "{key}: {t:?}");
        }
    }
}
