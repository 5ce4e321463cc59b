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

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use revdoor_core::names::WorkflowName;
use revdoor_core::workflow::{now_ms, Phase, StreamKind, StreamSpec, StreamStatus, WorkflowState};
use tokio_util::sync::CancellationToken;

use crate::lock::LeaseLock;
use crate::registry::{Guard, Registry};
use crate::switch;
use crate::Error;

/// How a coordinator runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Unique name (journal entries record who acted).
    pub id: String,
    /// Leader lease TTL: a standby takes over this long after the leader
    /// stopped renewing.
    pub lease_ttl: Duration,
    /// Kafka bootstrap servers (topics of reverse streams).
    pub brokers: String,
}

/// Campaign, lead until deposed or cancelled, campaign again.
pub async fn run(reg: Registry, cfg: Config, cancel: CancellationToken) -> Result<(), Error> {
    let key = reg.prefix.leader();
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
            id: cfg.id.clone(),
        };
        tracing::info!(coordinator = %cfg.id, token = %lock.token(), "leading");
        let lost = lock.lost();
        let result = tokio::select! {
            r = lead(&reg, &guard, &cfg, &cancel) => r,
            _ = lost.cancelled() => Err(Error::Deposed),
        };
        match result {
            Ok(()) => {
                let _ = lock.release().await;
                return Ok(());
            }
            Err(Error::Deposed) => {
                tracing::warn!(coordinator = %cfg.id, "lost leadership (lease expired or a successor took over); writing nothing more");
                drop(lock);
            }
            Err(e) => {
                // Give way: a standby (or we, after campaigning) retries.
                tracing::error!(coordinator = %cfg.id, error = %e, "leader pass failed; stepping down");
                let _ = lock.release().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
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

/// Assign the active streams of every workflow to live workers.
pub async fn assign(reg: &Registry, guard: &Guard) -> Result<(), Error> {
    let workers: BTreeSet<String> = reg.keys(&reg.prefix.workers()).await?.into_iter().collect();
    // Desired: (workflow, stream id) → spec.
    let mut desired: BTreeMap<(String, String), StreamSpec> = BTreeMap::new();
    for wf in reg.workflow_names().await? {
        let Some(state) = reg
            .value::<WorkflowState>(&reg.prefix.workflow_state(&wf))
            .await?
        else {
            continue;
        };
        let Some(active) = state.phase.active() else {
            continue;
        };
        for (id, s) in reg.list::<StreamSpec>(&reg.prefix.streams(&wf)).await? {
            if s.direction == active {
                desired.insert((wf.to_string(), id), s);
            }
        }
    }
    let all = reg.prefix.all_assignments();
    let current: Vec<(String, StreamSpec)> = reg.list(&all).await?;
    // Current assignments worth keeping: live worker, same spec.
    let mut existing: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut load: BTreeMap<String, Vec<(String, String)>> =
        workers.iter().map(|w| (w.clone(), Vec::new())).collect();
    let mut placed: BTreeSet<(String, String)> = BTreeSet::new();
    let mut ops = Vec::new();
    for (rest, spec) in current {
        let mut parts = rest.splitn(3, '/');
        let (Some(worker), Some(wf), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let k = (wf.to_string(), id.to_string());
        existing.insert((worker.to_string(), k.0.clone(), k.1.clone()));
        let keep = workers.contains(worker)
            && desired.get(&k).is_some_and(|d| d == &spec)
            && !placed.contains(&k);
        if keep {
            placed.insert(k.clone());
            load.entry(worker.to_string()).or_default().push(k);
        }
    }
    if !workers.is_empty() {
        for k in desired.keys() {
            if placed.contains(k) {
                continue;
            }
            let Some(worker) = load
                .iter()
                .min_by_key(|(_, v)| v.len())
                .map(|(w, _)| w.clone())
            else {
                break;
            };
            load.entry(worker).or_default().push(k.clone());
        }
        // Spread: move streams from the busiest to the idlest worker while
        // they differ by more than one.
        while let (Some(max), Some(min)) = (
            load.iter()
                .max_by_key(|(_, v)| v.len())
                .map(|(w, v)| (w.clone(), v.len())),
            load.iter()
                .min_by_key(|(_, v)| v.len())
                .map(|(w, v)| (w.clone(), v.len())),
        ) {
            if max.1 <= min.1 + 1 {
                break;
            }
            let Some(k) = load.get_mut(&max.0).and_then(Vec::pop) else {
                break;
            };
            tracing::info!(stream = %format!("{}/{}", k.0, k.1), from = %max.0, to = %min.0, "moving stream to spread load");
            load.entry(min.0).or_default().push(k);
        }
    }
    let wanted: BTreeSet<(String, String, String)> = load
        .iter()
        .flat_map(|(w, ks)| {
            ks.iter()
                .map(move |(wf, id)| (w.clone(), wf.clone(), id.clone()))
        })
        .collect();
    for (w, wf, id) in existing.difference(&wanted) {
        ops.push(Registry::op_delete(&format!("{all}{w}/{wf}/{id}")));
    }
    for (w, wf, id) in &wanted {
        let keep = existing.contains(&(w.clone(), wf.clone(), id.clone()))
            && placed.contains(&(wf.clone(), id.clone()));
        if keep {
            continue;
        }
        let Some(spec) = desired.get(&(wf.clone(), id.clone())) else {
            continue;
        };
        ops.push(Registry::op_put(&format!("{all}{w}/{wf}/{id}"), spec));
    }
    if !ops.is_empty() {
        reg.commit(guard, Vec::new(), ops).await?;
    }
    Ok(())
}
