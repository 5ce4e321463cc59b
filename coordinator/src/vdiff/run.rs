//! Running (or resuming) a vdiff in this process: its run lease, a new
//! consistent point, then table by table, chunk by chunk, the record
//! written after each.

use std::time::Duration;

use revdoor_core::names::WorkflowName;
use revdoor_core::workflow::{now_ms, StreamSpec};

use super::point::consistent_point;
use super::record::{get, VdiffOptions, VdiffRecord, VdiffState};
use super::workflow_records;
use crate::lock::LeaseLock;
use crate::registry::Registry;
use crate::Error;

/// TTL of the running process's lease: a killed vdiff can be resumed this
/// long after it died.
pub const RUN_LEASE_TTL: Duration = Duration::from_secs(5);

/// Run (or resume) vdiff `id` to its end in this process; `progress` is
/// called after every chunk. Returns the final record.
pub async fn run(
    reg: &Registry,
    workflow: &WorkflowName,
    id: &str,
    opts: &VdiffOptions,
    mut progress: impl FnMut(&VdiffRecord),
) -> Result<VdiffRecord, Error> {
    let run_key = reg.prefix.vdiff_run(workflow, id);
    let holder = format!("{{\"pid\":{}}}", std::process::id());
    // A killed run's lease lingers for its TTL: wait that out; a live run
    // keeps it, and this one gives up.
    let lock = LeaseLock::acquire(
        &reg.client,
        &run_key,
        &holder,
        RUN_LEASE_TTL,
        RUN_LEASE_TTL + Duration::from_secs(2),
    )
    .await
    .map_err(|e| {
        Error::Refused(format!(
            "vdiff {id} of {workflow} is running in another process (etcd key {run_key}): {e}"
        ))
    })?;
    // A stop asked of an earlier run of this vdiff is not one of this run.
    Box::pin(
        reg.client
            .clone()
            .delete(reg.prefix.vdiff_stop(workflow, id), None),
    )
    .await
    .map_err(|e| Error::Etcd(format!("clear vdiff stop request: {e}")))?;
    let mut rec = get(reg, workflow, Some(id)).await?;
    if matches!(rec.state, VdiffState::Completed) {
        let _ = lock.release().await;
        return Ok(rec);
    }
    rec.state = VdiffState::Running;
    rec.error.clear();
    rec.run_started_ms = now_ms();
    rec.run_processed = 0;
    let result = Box::pin(run_locked(reg, workflow, &mut rec, opts, &mut progress)).await;
    match result {
        Ok(()) => {}
        Err(e) => {
            rec.state = VdiffState::Failed;
            rec.error = e.to_string();
        }
    }
    rec.updated_ms = now_ms();
    if rec.state != VdiffState::Running {
        rec.finished_ms = rec.updated_ms;
    }
    reg.put(&reg.prefix.vdiff(workflow, id), &rec, None).await?;
    let _ = lock.release().await;
    progress(&rec);
    Ok(rec)
}

async fn run_locked(
    reg: &Registry,
    workflow: &WorkflowName,
    rec: &mut VdiffRecord,
    opts: &VdiffOptions,
    progress: &mut impl FnMut(&VdiffRecord),
) -> Result<(), Error> {
    let (spec, state) = workflow_records(reg, workflow).await?;
    if state.phase.active() != Some(rec.direction) {
        return Err(Error::Refused(format!(
            "workflow {workflow} is {} now; this vdiff compared its {} direction — start a new \
             one with `revdoor vdiff create {workflow}`",
            state.phase, rec.direction
        )));
    }
    let src = crate::create::keyspace(reg, rec.source.as_str()).await?;
    let dst = crate::create::keyspace(reg, rec.target.as_str()).await?;
    let streams: Vec<StreamSpec> = reg
        .list::<StreamSpec>(&reg.prefix.streams(workflow))
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.direction == rec.direction)
        .collect();
    let mut point = Box::pin(consistent_point(
        workflow,
        rec.direction,
        &src,
        &dst,
        &streams,
        opts.hold_timeout,
    ))
    .await?;
    tracing::info!(workflow = %workflow, pause_ms = point.pause.ms, "vdiff consistent point");
    rec.pauses.push(point.pause.clone());
    if rec.rows_estimate == 0 {
        rec.rows_estimate = point.estimate(&rec.tables).await?;
    }
    let key = reg.prefix.vdiff(workflow, &rec.id);
    let stop_key = reg.prefix.vdiff_stop(workflow, &rec.id);
    rec.updated_ms = now_ms();
    reg.put(&key, rec, None).await?;
    progress(rec);
    let compared = metrics::counter!(revdoor_core::metrics::VDIFF_ROWS,
        "workflow" => workflow.as_str().to_owned());
    while rec.current < rec.tables.len() {
        let name = rec.tables[rec.current].table.clone();
        let def = point.table(&name, spec.sharding_keys.get(&name)).await?;
        loop {
            if !reg.keys(&stop_key).await?.is_empty() {
                rec.state = VdiffState::Stopped;
                return Ok(());
            }
            let before = rec.tables[rec.current].processed;
            let done = point
                .chunk(
                    &def,
                    rec.chunk_rows,
                    &mut rec.last_key,
                    &mut rec.tables[rec.current],
                )
                .await?;
            let processed = rec.tables[rec.current].processed - before;
            rec.run_processed += processed;
            compared.increment(processed);
            if done {
                rec.tables[rec.current].done = true;
                rec.current += 1;
                rec.last_key = None;
            }
            rec.updated_ms = now_ms();
            reg.put(&key, rec, None).await?;
            progress(rec);
            if done {
                break;
            }
        }
    }
    rec.state = VdiffState::Completed;
    Ok(())
}
