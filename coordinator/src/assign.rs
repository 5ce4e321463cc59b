//! Stream assignment: the streams of each workflow's active direction on
//! live workers, sticky, least-loaded first, spread when workers join (run
//! by the leader when workers, specs or states change, and by a request
//! waiting for streams to stop).

use std::collections::{BTreeMap, BTreeSet};

use revdoor_core::workflow::{StreamSpec, WorkflowState};

use crate::registry::{Guard, Registry};
use crate::Error;

/// Assign the active streams of every workflow to live workers.
pub(crate) async fn assign(reg: &Registry, guard: &Guard) -> Result<(), Error> {
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
