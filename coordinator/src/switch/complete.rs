//! `complete` (traffic stays on the target; the workflow's streams,
//! fences, checkpoints and topics go) and `cancel` (before any switch: as if
//! the workflow had not been created, routing rules included).

use std::time::{Duration, Instant};

use revdoor_core::names::Direction;
use revdoor_core::workflow::{now_ms, JournalEntry, Outcome, Phase, Step, WorkflowSpec};

use super::check::{gate, Closed};
use super::journal::finish;
use super::Ctx;
use crate::assign::assign;
use crate::create::routing_ops;
use crate::registry::Registry;
use crate::{shard, Error};

/// Wait until no worker reports a stream of the workflow (they were
/// unassigned), at most 30 s.
async fn wait_streams_stopped(ctx: &Ctx<'_>) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The assignment pass runs in this same loop: run it here.
        assign(ctx.reg, ctx.guard).await?;
        let left = ctx.reg.keys(&ctx.reg.prefix.statuses(&ctx.wf)).await?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Sql(format!(
                "streams still running after 30s: {}",
                left.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait for the workflow's streams to stop, then remove its fences on
/// both sides (and drop the target tables when `drop_target`).
async fn stop_and_unfence(
    ctx: &Ctx<'_>,
    e: &mut JournalEntry,
    pairs: &[(String, String)],
    drop_target: bool,
) -> Result<(), Error> {
    wait_streams_stopped(ctx).await?;
    ctx.step(e, Step::RemoveFences, async {
        for s in ctx.source.shards.iter().chain(&ctx.target.shards) {
            let mut c = shard::connect(&s.url).await?;
            shard::remove_fences(&mut c, &s.url, ctx.wf.as_str(), pairs).await?;
            let is_target = ctx
                .target
                .shards
                .iter()
                .any(|t| t.url == s.url && t.range == s.range);
            if drop_target && is_target {
                for (db, t) in pairs {
                    shard::drop_table(&mut c, &s.url, db, t, false).await?;
                }
            }
            let _ = c.disconnect().await;
        }
        let detail = if drop_target {
            "target tables dropped"
        } else {
            ""
        };
        Ok(((), detail.to_string()))
    })
    .await?;
    // The workflow is over: its checkpoints and topics go, so the name can
    // be used again.
    ctx.step(e, Step::RemoveStreams, async {
        for s in ctx.source.shards.iter().chain(&ctx.target.shards) {
            let mut c = shard::connect(&s.url).await?;
            shard::delete_stream_state(&mut c, &s.url, ctx.wf.as_str()).await?;
            let _ = c.disconnect().await;
        }
        revdoor_kafka::delete_workflow_topics(&ctx.cfg.brokers, &ctx.wf)
            .await
            .map_err(|err| Error::Kafka(format!("{err}")))?;
        Ok(((), "checkpoints and topics deleted".to_string()))
    })
    .await
}

fn table_pairs(spec: &WorkflowSpec) -> Vec<(String, String)> {
    spec.tables
        .iter()
        .filter_map(|t| {
            t.split_once('.')
                .map(|(d, n)| (d.to_string(), n.to_string()))
        })
        .collect()
}

/// The door must not close on a broken stream: every stream of the serving
/// (reverse) direction runs, or `complete` is refused naming the one that
/// does not — unless `force`, which is logged. A stream still starting
/// gets a few seconds, as at a switch.
async fn serving_streams_healthy(ctx: &Ctx<'_>, force: bool) -> Result<(), Error> {
    let since = Instant::now();
    let why = loop {
        match gate(ctx.reg, &ctx.wf, Direction::Reverse, u64::MAX).await? {
            Ok(_) => return Ok(()),
            Err(Closed::Starting(_)) if since.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(Closed::Starting(why) | Closed::Refused(why)) => break why,
        }
    };
    if force {
        tracing::warn!(workflow = %ctx.wf, reason = %why,
            "complete --force: completing with a stream that is not running");
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{why}; completing now would leave the source without what it has not applied: \
         fix the stream (`revdoor workflow status {}`), or pass --force to complete anyway",
        ctx.wf
    )))
}

/// `complete`: stop the reverse streams, remove fences, keep routing on the
/// target (the next epoch), optionally drop or rename the source tables.
pub(super) async fn complete(
    ctx: &Ctx<'_>,
    e: &mut JournalEntry,
    drop_source: bool,
    rename_source: bool,
    force: bool,
) -> Result<(), Error> {
    let mut st = ctx.state().await?;
    if st.phase != Phase::Switched && st.phase != Phase::Completed {
        return Err(Error::Refused(format!(
            "complete needs traffic on the target, but workflow {} is {}: {}",
            ctx.wf,
            st.phase,
            match st.phase {
                Phase::Copying | Phase::Running => "switch-traffic first (or cancel the workflow)",
                Phase::Reversed => "traffic was reversed to the source; switch-traffic again first",
                _ => "the workflow is finished",
            }
        )));
    }
    if st.phase == Phase::Switched {
        serving_streams_healthy(ctx, force).await?;
    }
    if st.phase != Phase::Completed {
        ctx.step(e, Step::StopStreams, async {
            st.phase = Phase::Completed;
            st.epoch = st.epoch.next();
            st.updated_ms = now_ms();
            let mut ops = routing_ops(ctx.reg, &ctx.spec, &ctx.spec.target, st.epoch)?;
            ops.push(Registry::op_put(
                &ctx.reg.prefix.workflow_state(&ctx.wf),
                &st,
            ));
            ctx.reg.commit(ctx.guard, Vec::new(), ops).await?;
            Ok(((), String::new()))
        })
        .await?;
    }
    let pairs = table_pairs(&ctx.spec);
    stop_and_unfence(ctx, e, &pairs, false).await?;
    // A side a --fence=read-only switch left read-only is writable again.
    for ks in ctx.state().await?.read_only {
        let spec = if ks == ctx.source.name {
            &ctx.source
        } else {
            &ctx.target
        };
        for s in &spec.shards {
            let mut c = shard::connect(&s.url).await?;
            // The fence rows are gone: nothing to guard it by.
            shard::set_read_only(&mut c, &s.url, None, false, 30).await?;
            let _ = c.disconnect().await;
        }
    }
    if drop_source || rename_source {
        ctx.step(
            e,
            if rename_source {
                Step::RenameSource
            } else {
                Step::DropSource
            },
            async {
                for s in &ctx.source.shards {
                    let mut c = shard::connect(&s.url).await?;
                    for (db, t) in &pairs {
                        shard::drop_table(&mut c, &s.url, db, t, rename_source).await?;
                    }
                    let _ = c.disconnect().await;
                }
                Ok(((), String::new()))
            },
        )
        .await?;
    }
    let mut st = ctx.state().await?;
    st.read_only.clear();
    finish(ctx, e, Outcome::Done, String::new(), Some(st)).await
}

/// `cancel` (before any switch): stop the forward streams, remove fences
/// and routing rules, drop the target tables unless `keep_data`.
pub(super) async fn cancel(
    ctx: &Ctx<'_>,
    e: &mut JournalEntry,
    keep_data: bool,
) -> Result<(), Error> {
    let mut st = ctx.state().await?;
    let switched_before = !st.switches.is_empty() || st.reverse_created;
    if switched_before || !matches!(st.phase, Phase::Copying | Phase::Running | Phase::Cancelled) {
        return Err(Error::Refused(format!(
            "cancel is only possible before the first switch; workflow {} is {} after {} switch(es): \
             use reverse-traffic and complete, or switch-traffic and complete",
            ctx.wf,
            st.phase,
            st.switches.len()
        )));
    }
    if st.phase != Phase::Cancelled {
        ctx.step(e, Step::StopStreams, async {
            st.phase = Phase::Cancelled;
            st.updated_ms = now_ms();
            ctx.reg
                .commit(
                    ctx.guard,
                    Vec::new(),
                    vec![Registry::op_put(
                        &ctx.reg.prefix.workflow_state(&ctx.wf),
                        &st,
                    )],
                )
                .await?;
            Ok(((), String::new()))
        })
        .await?;
    }
    let pairs = table_pairs(&ctx.spec);
    stop_and_unfence(ctx, e, &pairs, !keep_data).await?;
    let mut ops = vec![Registry::op_delete_prefix(&ctx.reg.prefix.streams(&ctx.wf))];
    for ks in [&ctx.spec.source, &ctx.spec.target] {
        for t in &ctx.spec.tables {
            ops.push(Registry::op_delete(&ctx.reg.prefix.routing(ks, t)));
        }
    }
    ctx.reg.commit(ctx.guard, Vec::new(), ops).await?;
    let st = ctx.state().await?;
    finish(ctx, e, Outcome::Done, String::new(), Some(st)).await
}
