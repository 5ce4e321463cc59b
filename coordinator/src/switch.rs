//! Operator requests, run by the leader and journaled step by step:
//! `switch-traffic`, `reverse-traffic` (the fenced cutover of DESIGN §6),
//! `complete` and `cancel`.
//!
//! # The cutover
//!
//! `switch-traffic` moves serving from the source keyspace to the target,
//! `reverse-traffic` back; both run the same steps with the roles given by
//! the phase: the *old* side serves now and is fenced, the *new* side takes
//! over. Steps (journal names):
//!
//! 1. `check` — every stream of the running direction is reported running
//!    by a live worker with lag ≤ `--max-lag`; every shard of both sides
//!    answers. A failure here is a refusal: nothing was changed.
//! 2. `fence` — one `UPDATE` of the workflow's `_revdoor.fences` rows per
//!    old shard (waits for in-flight writers; see [`crate::shard`]). The
//!    fence transaction's GTID is that shard's final position (step 3,
//!    `positions`): no write to a moved table commits after it. Capture
//!    flushes and heartbeats at once when it reads the fence.
//! 3. `catch-up` — wait until every apply stream of the running direction
//!    checkpointed a source position including its origin's fence GTID
//!    (read from `_revdoor.stream_state` on the destination), at most
//!    `--timeout`.
//! 4. `record-positions` — each new shard's GTID position: where the
//!    opposite direction's captures start.
//! 5. `create-streams` — the opposite direction's topic and stream specs
//!    (captures start at the recorded positions).
//! 6. `flip-routing` — in one guarded etcd transaction: routing rules (both
//!    keyspaces) serve the new side, epoch + 1; the phase flips
//!    (`switched` / `reversed`), which freezes the old direction's streams
//!    and starts the new ones (the assignment pass); the journal records the
//!    step done.
//! 7. `unfence` — one `UPDATE` per new shard: applications may write there.
//!    The write-unavailability window is fence start → unfence end.
//!
//! A failure before `flip-routing` rolls back: the old side is unfenced,
//! streams created by this request are deleted, and the journal says why.
//! A leader that dies mid-switch leaves the journal entry `running`; the
//! next leader rolls it back if the flip did not happen, or finishes it
//! (unfence, done) if it did. Every step is idempotent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, TxnOp};
use revdoor_core::gtid::Position;
use revdoor_core::names::{Direction, WorkflowName};
use revdoor_core::workflow::{
    now_ms, plan_streams, Action, JournalEntry, KeyspaceSpec, Outcome, Phase, Request, StepRecord,
    StreamKind, StreamSpec, StreamStatus, SwitchSummary, WorkflowSpec, WorkflowState,
};

use crate::assign::assign;
use crate::config::Config;
use crate::create::{keyspace, routing_ops};
use crate::registry::{Guard, Registry};
use crate::shard;
use crate::Error;

/// Failpoints of the cutover (crash tests).
pub mod failpoints {
    pub const AFTER_WARMUP: &str = "switch::after_warmup";
    pub const AFTER_FENCE: &str = "switch::after_fence";
    pub const AFTER_CATCHUP: &str = "switch::after_catchup";
    pub const AFTER_POSITIONS: &str = "switch::after_positions";
    pub const AFTER_REVERSE_CREATED: &str = "switch::after_reverse_created";
    pub const AFTER_ROUTING_FLIP: &str = "switch::after_routing_flip";
    pub const AFTER_UNFENCE: &str = "switch::after_unfence";
}

/// Everything a request needs about its workflow.
struct Ctx<'a> {
    reg: &'a Registry,
    guard: &'a Guard,
    cfg: &'a Config,
    wf: WorkflowName,
    spec: WorkflowSpec,
    source: KeyspaceSpec,
    target: KeyspaceSpec,
}

impl Ctx<'_> {
    fn journal_key(&self, id: u64) -> String {
        self.reg.prefix.journal_entry(&self.wf, id)
    }

    async fn write_journal(&self, e: &JournalEntry) -> Result<(), Error> {
        self.reg
            .commit(
                self.guard,
                Vec::new(),
                vec![Registry::op_put(&self.journal_key(e.request.id), e)],
            )
            .await
    }

    async fn step<T, F>(&self, e: &mut JournalEntry, step: &str, f: F) -> Result<T, Error>
    where
        F: std::future::Future<Output = Result<(T, String), Error>>,
    {
        e.steps.push(StepRecord {
            step: step.into(),
            state: "begin".into(),
            at_ms: now_ms(),
            detail: String::new(),
        });
        self.write_journal(e).await?;
        let (v, detail) = f.await?;
        e.steps.push(StepRecord {
            step: step.into(),
            state: "done".into(),
            at_ms: now_ms(),
            detail,
        });
        self.write_journal(e).await?;
        tracing::info!(workflow = %self.wf, request = e.request.id, step, "step done");
        Ok(v)
    }

    /// (old side, new side) of a cutover in `phase`.
    fn sides(&self, phase: Phase) -> (&KeyspaceSpec, &KeyspaceSpec) {
        if phase.serving_target() {
            (&self.target, &self.source)
        } else {
            (&self.source, &self.target)
        }
    }
}

/// Run (or resume, or clean up after) the workflow's pending request.
pub async fn handle_request(
    reg: &Registry,
    guard: &Guard,
    cfg: &Config,
    wf: &WorkflowName,
) -> Result<(), Error> {
    let Some(req) = reg.value::<Request>(&reg.prefix.request(wf)).await? else {
        return Ok(());
    };
    let Some(spec) = reg
        .value::<WorkflowSpec>(&reg.prefix.workflow_spec(wf))
        .await?
    else {
        return Ok(());
    };
    let source = keyspace(reg, &spec.source).await?;
    let target = keyspace(reg, &spec.target).await?;
    let ctx = Ctx {
        reg,
        guard,
        cfg,
        wf: wf.clone(),
        spec,
        source,
        target,
    };
    let existing = reg.value::<JournalEntry>(&ctx.journal_key(req.id)).await?;
    let mut entry = match existing {
        Some(e) if e.outcome != Outcome::Running => {
            // Finished; only the request key was left behind.
            reg.commit(
                guard,
                Vec::new(),
                vec![Registry::op_delete(&reg.prefix.request(wf))],
            )
            .await?;
            return Ok(());
        }
        Some(e) => {
            tracing::warn!(workflow = %wf, request = req.id, previous = %e.coordinator,
                "resuming a request another coordinator left midway");
            return Box::pin(recover(&ctx, e)).await;
        }
        None => JournalEntry {
            request: req.clone(),
            outcome: Outcome::Running,
            steps: Vec::new(),
            reason: String::new(),
            fence_positions: BTreeMap::new(),
            start_positions: BTreeMap::new(),
            fenced_at_ms: None,
            unfenced_at_ms: None,
            window_ms: None,
            coordinator: guard.id.clone(),
        },
    };
    ctx.write_journal(&entry).await?;
    let result = match &req.action {
        Action::SwitchTraffic {
            max_lag_ms,
            timeout_ms,
            read_only,
        } => {
            Box::pin(cutover(
                &ctx,
                &mut entry,
                true,
                *max_lag_ms,
                *timeout_ms,
                *read_only,
            ))
            .await
        }
        Action::ReverseTraffic {
            max_lag_ms,
            timeout_ms,
            read_only,
        } => {
            Box::pin(cutover(
                &ctx,
                &mut entry,
                false,
                *max_lag_ms,
                *timeout_ms,
                *read_only,
            ))
            .await
        }
        Action::Complete {
            drop_source,
            rename_source,
        } => Box::pin(complete(&ctx, &mut entry, *drop_source, *rename_source)).await,
        Action::Cancel { keep_data } => Box::pin(cancel(&ctx, &mut entry, *keep_data)).await,
    };
    match result {
        Ok(()) => Ok(()),
        Err(Error::Deposed) => Err(Error::Deposed),
        Err(Error::Refused(reason)) => {
            finish(&ctx, &mut entry, Outcome::Refused, reason, None).await
        }
        Err(e) => {
            // Failed midway: undo what can be undone.
            if entry.begun("flip-routing") && !entry.done("flip-routing") {
                // The flip's etcd transaction may or may not have landed.
                return Box::pin(recover(&ctx, entry)).await;
            }
            if entry.done("flip-routing") {
                tracing::error!(workflow = %wf, error = %e, "after the routing flip; finishing");
                return Box::pin(recover(&ctx, entry)).await;
            }
            let reason = format!("{e}");
            rollback(&ctx, &mut entry, reason).await
        }
    }
}

/// Close a request: journal outcome, state update, request removed — one
/// guarded transaction.
async fn finish(
    ctx: &Ctx<'_>,
    entry: &mut JournalEntry,
    outcome: Outcome,
    reason: String,
    state: Option<WorkflowState>,
) -> Result<(), Error> {
    entry.outcome = outcome;
    entry.reason = reason;
    let mut ops = vec![
        Registry::op_put(&ctx.journal_key(entry.request.id), &*entry),
        Registry::op_delete(&ctx.reg.prefix.request(&ctx.wf)),
    ];
    if let Some(s) = state {
        ops.push(Registry::op_put(
            &ctx.reg.prefix.workflow_state(&ctx.wf),
            &s,
        ));
    }
    ctx.reg.commit(ctx.guard, Vec::new(), ops).await?;
    match outcome {
        Outcome::Done => tracing::info!(workflow = %ctx.wf, request = entry.request.id,
            action = entry.request.action.name(), window_ms = entry.window_ms.unwrap_or(0), "request done"),
        _ => tracing::warn!(workflow = %ctx.wf, request = entry.request.id,
            action = entry.request.action.name(), outcome = ?outcome, reason = %entry.reason, "request ended"),
    }
    Ok(())
}

async fn state(ctx: &Ctx<'_>) -> Result<WorkflowState, Error> {
    ctx.reg
        .value::<WorkflowState>(&ctx.reg.prefix.workflow_state(&ctx.wf))
        .await?
        .ok_or_else(|| Error::Refused(format!("workflow {} has no state", ctx.wf)))
}

async fn streams(ctx: &Ctx<'_>) -> Result<Vec<StreamSpec>, Error> {
    Ok(ctx
        .reg
        .list::<StreamSpec>(&ctx.reg.prefix.streams(&ctx.wf))
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

fn fence_message(wf: &WorkflowName, serving: &str, epoch: u64) -> String {
    format!(
        "revdoor: workflow {wf} switched these tables to keyspace {serving} (epoch {epoch}); write there \
         (`revdoor routing get {serving}`)"
    )
}

/// Whether applied position `applied` includes GTID (or position) `want`.
pub fn reached(applied: &str, want: &str) -> bool {
    match (applied.parse::<Position>(), want.parse::<Position>()) {
        (Ok(a), Ok(w)) => a.includes(&w),
        _ => applied == want,
    }
}

/// Wait until every apply in `applies` checkpointed a source position that
/// includes its origin shard's entry of `want` (origin of each partition in
/// `origin_of`), or `deadline`; the ids still behind.
async fn wait_applied(
    conns: &mut BTreeMap<String, mysql_async::Conn>,
    applies: &[&StreamSpec],
    origin_of: &BTreeMap<i32, String>,
    want: &BTreeMap<String, String>,
    workflow: &str,
    direction: Direction,
    deadline: Instant,
) -> Result<Vec<String>, Error> {
    let mut pending: Vec<&StreamSpec> = applies.to_vec();
    loop {
        let mut still = Vec::new();
        for a in pending {
            let target = origin_of
                .get(&a.partition)
                .and_then(|o| want.get(o))
                .cloned()
                .unwrap_or_default();
            let conn = conns
                .get_mut(&a.url)
                .ok_or_else(|| Error::Sql("lost connection".into()))?;
            let have =
                shard::applied_position(conn, &a.url, workflow, direction.as_str(), a.partition)
                    .await?
                    .unwrap_or_default();
            if !reached(&have, &target) {
                still.push(a);
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() >= deadline {
            return Ok(pending.iter().map(|a| a.id()).collect());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

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
fn is_starting(why: &str) -> bool {
    why.contains("has not reported its lag yet")
        || why.contains("no worker reports it")
        || why.contains(" is starting on ")
}

fn fmt_ms(ms: u64) -> String {
    if ms == u64::MAX {
        "unknown".into()
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The fenced cutover; `to_target` for switch-traffic.
async fn cutover(
    ctx: &Ctx<'_>,
    e: &mut JournalEntry,
    to_target: bool,
    max_lag_ms: u64,
    timeout_ms: u64,
    read_only: bool,
) -> Result<(), Error> {
    let st = state(ctx).await?;
    let (action, allowed) = if to_target {
        (
            "switch-traffic",
            matches!(st.phase, Phase::Running | Phase::Reversed),
        )
    } else {
        ("reverse-traffic", st.phase == Phase::Switched)
    };
    if !allowed {
        return Err(Error::Refused(format!(
            "{action} is not possible while workflow {} is {}{}",
            ctx.wf,
            st.phase,
            match st.phase {
                Phase::Copying => ": the copy is still running (see `revdoor workflow status`)",
                Phase::Switched =>
                    ": traffic is already on the target (reverse-traffic moves it back)",
                Phase::Running | Phase::Reversed => ": traffic is already on the source",
                Phase::Completed | Phase::Cancelled => ": the workflow is finished",
            }
        )));
    }
    let old_dir = st.phase.active().unwrap_or(Direction::Forward);
    let new_dir = old_dir.opposite();
    let (old, new) = ctx.sides(st.phase);
    let (old, new) = (old.clone(), new.clone());
    let started = Instant::now();
    let timeout = Duration::from_millis(timeout_ms);

    // Connections to every server of both sides, kept for the whole
    // switch: the check proves them reachable, the window reuses them.
    let (mut old_conns, mut new_conns) = ctx
        .step(e, "check", async {
            // Streams that are starting (just assigned, no lag reported yet)
            // get a few seconds; anything else is refused at once.
            let since = Instant::now();
            let detail = loop {
                match check_streams(ctx.reg, &ctx.wf, old_dir, max_lag_ms).await {
                    Ok(d) => break d,
                    Err(Error::Refused(why))
                        if since.elapsed() < Duration::from_secs(10) && is_starting(&why) =>
                    {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(err) => return Err(err),
                }
            };
            let mut conns = (Vec::new(), Vec::new());
            for (side, shards) in [(&mut conns.0, &old.shards), (&mut conns.1, &new.shards)] {
                for s in shards {
                    side.push(shard::connect(&s.url).await.map_err(|err| {
                        Error::Refused(format!("shard {} is unreachable: {err}", s.range))
                    })?);
                }
            }
            Ok((conns, detail))
        })
        .await?;

    // Catch-up: every old-direction apply reached its origin's fence.
    let specs = streams(ctx).await?;
    let mut origin_of: BTreeMap<i32, String> = BTreeMap::new();
    for s in specs
        .iter()
        .filter(|s| s.direction == old_dir && s.kind == StreamKind::Capture)
    {
        for (_, p) in &s.routes {
            origin_of.insert(*p, s.shard.to_string());
        }
    }
    let applies: Vec<&StreamSpec> = specs
        .iter()
        .filter(|s| s.direction == old_dir && s.kind == StreamKind::Apply)
        .collect();
    // Everything the window needs is prepared before the fence: the
    // opposite direction's topic, connections to every server involved.
    let (new_origin, _) = if new_dir == Direction::Reverse {
        (&ctx.target, &ctx.source)
    } else {
        (&ctx.source, &ctx.target)
    };
    let new_partitions = plan_streams(
        &ctx.spec,
        new_origin,
        if new_dir == Direction::Reverse {
            &ctx.source
        } else {
            &ctx.target
        },
        new_dir,
    )
    .first()
    .map(|s| s.partitions)
    .unwrap_or(1);
    let topic = revdoor_core::names::topic(&ctx.wf, new_dir);
    revdoor_kafka::ensure_topics(
        &ctx.cfg.brokers,
        &topic,
        &revdoor_core::names::offsets_topic(&ctx.wf),
        new_partitions,
    )
    .await
    .map_err(|err| Error::Kafka(format!("create topic {topic}: {err}")))?;
    let mut conns: BTreeMap<String, mysql_async::Conn> = BTreeMap::new();
    for a in &applies {
        if !conns.contains_key(&a.url) {
            conns.insert(a.url.clone(), shard::connect(&a.url).await?);
        }
    }
    // Warm-up, not fenced yet: mark each old shard's binlog and let the
    // applies reach the marks, so that the fenced catch-up below only has
    // the last few milliseconds of writes to wait for.
    {
        let t = Instant::now();
        let mut marks = BTreeMap::new();
        let open_msg = format!("revdoor: workflow {} serves this table here", ctx.wf);
        for (s, c) in old.shards.iter().zip(old_conns.iter_mut()) {
            marks.insert(
                s.range.to_string(),
                shard::mark(c, &s.url, ctx.wf.as_str(), &open_msg).await?,
            );
        }
        let deadline = Instant::now() + timeout;
        let pending = wait_applied(
            &mut conns,
            &applies,
            &origin_of,
            &marks,
            ctx.wf.as_str(),
            old_dir,
            deadline,
        )
        .await?;
        if !pending.is_empty() {
            return Err(Error::Refused(format!(
                "{} did not catch up with the source within --timeout {} (before any fence): \
                 the streams lag; wait, or raise --timeout",
                pending.join(", "),
                fmt_ms(timeout_ms)
            )));
        }
        tracing::info!(workflow = %ctx.wf, ms = t.elapsed().as_millis() as u64, "warm-up catch-up done");
    }
    fail::fail_point!(failpoints::AFTER_WARMUP);
    let msg = fence_message(&ctx.wf, &new.name, st.epoch + 1);
    let lock_wait = (timeout_ms / 1000).clamp(1, 30);
    e.fenced_at_ms = Some(now_ms());
    let fence_start = Instant::now();
    let positions = ctx
        .step(e, "fence", async {
            let mut pos = BTreeMap::new();
            for (s, c) in old.shards.iter().zip(old_conns.iter_mut()) {
                let g =
                    shard::set_fenced(c, &s.url, ctx.wf.as_str(), true, &msg, lock_wait).await?;
                pos.insert(s.range.to_string(), g);
            }
            // --fence=read-only: whole servers move; after the moved tables'
            // writers are drained, nothing else may write there either.
            if read_only {
                for (s, c) in old.shards.iter().zip(old_conns.iter_mut()) {
                    shard::set_read_only(c, &s.url, true, lock_wait).await?;
                }
            }
            let detail = format!("{pos:?}{}", if read_only { " + read_only" } else { "" });
            Ok((pos, detail))
        })
        .await?;
    e.fence_positions = positions.clone();
    ctx.write_journal(e).await?;
    fail::fail_point!(failpoints::AFTER_FENCE);

    ctx.step(e, "catch-up", async {
        let deadline = Instant::now() + timeout.saturating_sub(started.elapsed());
        let pending = wait_applied(
            &mut conns,
            &applies,
            &origin_of,
            &positions,
            ctx.wf.as_str(),
            old_dir,
            deadline,
        )
        .await?;
        if !pending.is_empty() {
            return Err(Error::Timeout(format!(
                "catch-up timed out after {}: {} did not apply up to the fence position; \
                 the switch was rolled back (raise --timeout, or check the streams' lag)",
                fmt_ms(timeout_ms),
                pending.join(", ")
            )));
        }
        for (_, c) in std::mem::take(&mut conns) {
            let _ = c.disconnect().await;
        }
        Ok(((), format!("{} apply streams at the fence", applies.len())))
    })
    .await?;
    fail::fail_point!(failpoints::AFTER_CATCHUP);

    let starts = ctx
        .step(e, "record-positions", async {
            let mut pos = BTreeMap::new();
            for (s, c) in new.shards.iter().zip(new_conns.iter_mut()) {
                pos.insert(s.range.to_string(), shard::position(c, &s.url).await?);
            }
            let detail = format!("{pos:?}");
            Ok((pos, detail))
        })
        .await?;
    e.start_positions = starts.clone();
    ctx.write_journal(e).await?;
    fail::fail_point!(failpoints::AFTER_POSITIONS);

    ctx.step(e, "create-streams", async {
        let (origin, dest) = if new_dir == Direction::Reverse {
            (&ctx.target, &ctx.source)
        } else {
            (&ctx.source, &ctx.target)
        };
        let existing: BTreeMap<String, StreamSpec> =
            specs.iter().map(|s| (s.id(), s.clone())).collect();
        let mut ops = Vec::new();
        for mut s in plan_streams(&ctx.spec, origin, dest, new_dir) {
            if let Some(old) = existing.get(&s.id()) {
                s.copy = old.copy;
            }
            if s.kind == StreamKind::Capture {
                s.start_position = starts.get(&s.shard.to_string()).cloned();
            }
            ops.push(Registry::op_put(
                &ctx.reg.prefix.stream(&ctx.wf, &s.id()),
                &s,
            ));
        }
        let n = ops.len();
        ctx.reg.commit(ctx.guard, Vec::new(), ops).await?;
        Ok(((), format!("{n} {new_dir} streams on topic {topic}")))
    })
    .await?;
    fail::fail_point!(failpoints::AFTER_REVERSE_CREATED);

    // Routing flip + phase flip + journal, atomically.
    let mut next = st.clone();
    next.epoch += 1;
    next.phase = if to_target {
        Phase::Switched
    } else {
        Phase::Reversed
    };
    if new_dir == Direction::Reverse {
        next.reverse_created = true;
    }
    next.resume
        .insert(new_dir.as_str().to_string(), starts.clone());
    if read_only {
        next.read_only.insert(old.name.clone());
    }
    next.updated_ms = now_ms();
    e.steps.push(StepRecord {
        step: "flip-routing".into(),
        state: "begin".into(),
        at_ms: now_ms(),
        detail: String::new(),
    });
    ctx.write_journal(e).await?;
    e.steps.push(StepRecord {
        step: "flip-routing".into(),
        state: "done".into(),
        at_ms: now_ms(),
        detail: format!("serving {} at epoch {}", new.name, next.epoch),
    });
    let state_key = ctx.reg.prefix.workflow_state(&ctx.wf);
    let mut ops: Vec<TxnOp> = routing_ops(ctx.reg, &ctx.spec, &new.name, next.epoch)?;
    ops.push(Registry::op_put(&state_key, &next));
    ops.push(Registry::op_put(&ctx.journal_key(e.request.id), &*e));
    ctx.reg
        .commit(
            ctx.guard,
            vec![Compare::value(
                state_key.as_str(),
                CompareOp::Equal,
                crate::registry::json(&st),
            )],
            ops,
        )
        .await
        .map_err(|err| match err {
            Error::Conflict => Error::Sql("workflow state changed during the switch".into()),
            other => other,
        })?;
    tracing::info!(workflow = %ctx.wf, serving = %new.name, epoch = next.epoch, "routing flipped");
    fail::fail_point!(failpoints::AFTER_ROUTING_FLIP);

    unfence_new(ctx, e, &new, Some(new_conns), Some(fence_start)).await?;
    fail::fail_point!(failpoints::AFTER_UNFENCE);
    let mut done_state = state(ctx).await?;
    done_state.read_only.remove(&new.name);
    done_state.switches.push(SwitchSummary {
        request: e.request.id.to_string(),
        action: action.into(),
        epoch: done_state.epoch,
        window_ms: e.window_ms.unwrap_or(0),
        finished_ms: now_ms(),
    });
    done_state.updated_ms = now_ms();
    finish(ctx, e, Outcome::Done, String::new(), Some(done_state)).await
}

/// Step `unfence`: the new side takes writes.
async fn unfence_new(
    ctx: &Ctx<'_>,
    e: &mut JournalEntry,
    new: &KeyspaceSpec,
    conns: Option<Vec<mysql_async::Conn>>,
    fence_start: Option<Instant>,
) -> Result<(), Error> {
    let mut conns = match conns {
        Some(c) => c,
        None => {
            let mut v = Vec::new();
            for s in &new.shards {
                v.push(shard::connect(&s.url).await?);
            }
            v
        }
    };
    let msg = format!("revdoor: workflow {} serves this table here", ctx.wf);
    let was_read_only = state(ctx).await?.read_only.contains(&new.name);
    ctx.step(e, "unfence", async {
        for (s, c) in new.shards.iter().zip(conns.iter_mut()) {
            shard::set_fenced(c, &s.url, ctx.wf.as_str(), false, &msg, 30).await?;
            if was_read_only {
                shard::set_read_only(c, &s.url, false, 30).await?;
            }
        }
        Ok((
            (),
            if was_read_only {
                "read_only off".to_string()
            } else {
                String::new()
            },
        ))
    })
    .await?;
    let now = now_ms();
    e.unfenced_at_ms = Some(now);
    // On this process's monotonic clock when it ran the whole window; from
    // the journal's wall-clock times when a successor finished it.
    let window = match fence_start {
        Some(t) => t.elapsed().as_millis() as u64,
        None => now.saturating_sub(e.fenced_at_ms.unwrap_or(now)),
    };
    e.window_ms = Some(window);
    tracing::info!(workflow = %ctx.wf, window_ms = window, "write-unavailability window");
    Ok(())
}

/// Undo a cutover that failed before the routing flip.
async fn rollback(ctx: &Ctx<'_>, e: &mut JournalEntry, reason: String) -> Result<(), Error> {
    let st = state(ctx).await?;
    let (old, _) = ctx.sides(st.phase);
    let old = old.clone();
    tracing::warn!(workflow = %ctx.wf, reason = %reason, "rolling back");
    if e.begun("fence") {
        let msg = format!(
            "revdoor: workflow {} moves this table; it is served here",
            ctx.wf
        );
        let read_only = matches!(
            e.request.action,
            Action::SwitchTraffic {
                read_only: true,
                ..
            } | Action::ReverseTraffic {
                read_only: true,
                ..
            }
        );
        for s in &old.shards {
            let mut c = shard::connect(&s.url).await?;
            shard::set_fenced(&mut c, &s.url, ctx.wf.as_str(), false, &msg, 30).await?;
            if read_only && !st.read_only.contains(&old.name) {
                shard::set_read_only(&mut c, &s.url, false, 30).await?;
            }
            let _ = c.disconnect().await;
        }
    }
    // Streams this request created for a direction that never ran.
    let mut ops = Vec::new();
    if e.begun("create-streams") && !st.reverse_created {
        for s in streams(ctx).await? {
            if s.direction == Direction::Reverse {
                ops.push(Registry::op_delete(
                    &ctx.reg.prefix.stream(&ctx.wf, &s.id()),
                ));
            }
        }
    }
    if !ops.is_empty() {
        ctx.reg.commit(ctx.guard, Vec::new(), ops).await?;
    }
    e.steps.push(StepRecord {
        step: "rollback".into(),
        state: "done".into(),
        at_ms: now_ms(),
        detail: String::new(),
    });
    finish(ctx, e, Outcome::RolledBack, reason, None).await
}

/// Finish or roll back a request found midway (its coordinator died or a
/// step failed around the flip).
async fn recover(ctx: &Ctx<'_>, mut e: JournalEntry) -> Result<(), Error> {
    let st = state(ctx).await?;
    let previous = std::mem::replace(&mut e.coordinator, ctx.guard.id.clone());
    let last = e
        .steps
        .last()
        .map(|s| format!("{} ({})", s.step, s.state))
        .unwrap_or_else(|| "start".into());
    match e.request.action.clone() {
        Action::SwitchTraffic { .. } | Action::ReverseTraffic { .. } => {
            let to_target = matches!(e.request.action, Action::SwitchTraffic { .. });
            let flipped = if to_target {
                st.phase == Phase::Switched
            } else {
                st.phase == Phase::Reversed
            };
            let flipped = flipped && e.begun("flip-routing");
            if !flipped {
                let reason = format!(
                    "coordinator {} stopped during step {last}; rolled back by {} before the routing flip \
                     — nothing changed, run the request again",
                    previous, ctx.guard.id
                );
                return rollback(ctx, &mut e, reason).await;
            }
            if !e.done("flip-routing") {
                e.steps.push(StepRecord {
                    step: "flip-routing".into(),
                    state: "done".into(),
                    at_ms: now_ms(),
                    detail: "found flipped".into(),
                });
            }
            // After the flip the phase's serving side is the new side.
            let serving = if st.phase.serving_target() {
                ctx.target.clone()
            } else {
                ctx.source.clone()
            };
            if !e.done("unfence") {
                unfence_new(ctx, &mut e, &serving, None, None).await?;
            } else {
                // The dead leader unfenced: its journal has the time.
                let unfenced = e.unfenced_at_ms.or_else(|| {
                    e.steps
                        .iter()
                        .find(|s| s.step == "unfence" && s.state == "done")
                        .map(|s| s.at_ms)
                });
                if let (Some(f), Some(u)) = (e.fenced_at_ms, unfenced) {
                    e.unfenced_at_ms = Some(u);
                    e.window_ms.get_or_insert(u.saturating_sub(f));
                }
            }
            let mut done_state = st.clone();
            done_state.read_only.remove(&serving.name);
            done_state.switches.push(SwitchSummary {
                request: e.request.id.to_string(),
                action: e.request.action.name().into(),
                epoch: done_state.epoch,
                window_ms: e.window_ms.unwrap_or(0),
                finished_ms: now_ms(),
            });
            let reason = format!(
                "coordinator {} stopped during step {last}; finished by {}",
                previous, ctx.guard.id
            );
            finish(ctx, &mut e, Outcome::Done, reason, Some(done_state)).await
        }
        Action::Complete {
            drop_source,
            rename_source,
        } => Box::pin(complete(ctx, &mut e, drop_source, rename_source)).await,
        Action::Cancel { keep_data } => Box::pin(cancel(ctx, &mut e, keep_data)).await,
    }
}

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
    ctx.step(e, "remove-fences", async {
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
    ctx.step(e, "remove-streams", async {
        for s in ctx.source.shards.iter().chain(&ctx.target.shards) {
            let mut c = shard::connect(&s.url).await?;
            shard::delete_stream_state(&mut c, &s.url, ctx.wf.as_str()).await?;
            let _ = c.disconnect().await;
        }
        revdoor_kafka::delete_workflow_topics(&ctx.cfg.brokers, ctx.wf.as_str())
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

/// `complete`: stop the reverse streams, remove fences, keep routing on the
/// target (epoch + 1), optionally drop or rename the source tables.
async fn complete(
    ctx: &Ctx<'_>,
    e: &mut JournalEntry,
    drop_source: bool,
    rename_source: bool,
) -> Result<(), Error> {
    let mut st = state(ctx).await?;
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
    if st.phase != Phase::Completed {
        ctx.step(e, "stop-streams", async {
            st.phase = Phase::Completed;
            st.epoch += 1;
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
    for ks in state(ctx).await?.read_only {
        let spec = if ks == ctx.source.name {
            &ctx.source
        } else {
            &ctx.target
        };
        for s in &spec.shards {
            let mut c = shard::connect(&s.url).await?;
            shard::set_read_only(&mut c, &s.url, false, 30).await?;
            let _ = c.disconnect().await;
        }
    }
    if drop_source || rename_source {
        ctx.step(
            e,
            if rename_source {
                "rename-source"
            } else {
                "drop-source"
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
    let mut st = state(ctx).await?;
    st.read_only.clear();
    finish(ctx, e, Outcome::Done, String::new(), Some(st)).await
}

/// `cancel` (before any switch): stop the forward streams, remove fences
/// and routing rules, drop the target tables unless `keep_data`.
async fn cancel(ctx: &Ctx<'_>, e: &mut JournalEntry, keep_data: bool) -> Result<(), Error> {
    let mut st = state(ctx).await?;
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
        ctx.step(e, "stop-streams", async {
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
        if let Ok(k) = ks.parse() {
            for t in &ctx.spec.tables {
                ops.push(Registry::op_delete(&ctx.reg.prefix.routing(&k, t)));
            }
        }
    }
    ctx.reg.commit(ctx.guard, Vec::new(), ops).await?;
    let st = state(ctx).await?;
    finish(ctx, e, Outcome::Done, String::new(), Some(st)).await
}
