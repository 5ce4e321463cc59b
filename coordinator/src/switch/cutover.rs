//! The fenced cutover (`switch-traffic`, `reverse-traffic`): a [`Cutover`]
//! holds what one run knows — its plan, the state it started from, open
//! connections, positions — and has one method per journal step (see the
//! table in the module above). The fence is installed by
//! [`Cutover::fence`] and removed from the new side by [`unfence`].
//!
//! # Model
//!
//! `docs/model/switch.pml` models these steps for spin (checked by
//! `tests/tests/switch_model.rs`; abstractions and findings in
//! `docs/model/README.md`). Labels of its `Coord` process, by step; keep
//! them in step when the order or the journaling here changes:
//!
//! | code | model label |
//! | --- | --- |
//! | `handle_request` (entry created / recovered / request key removed) | `pass` |
//! | [`Cutover::begin`], `check`, `prepare`, `warm_up` | `begin`, `check` |
//! | [`Cutover::fence`] (fence begun journaled; position read after the fence) | `fence` |
//! | [`Cutover::catch_up`] | `catch_up` |
//! | [`Cutover::record_positions`] | `record_positions` |
//! | [`Cutover::create_streams`] | `create_streams` |
//! | [`Cutover::flip_routing`] | `flip_routing` |
//! | [`Cutover::unfence`] / [`unfence`] | `unfence` (and in `recover`) |
//! | [`Cutover::finish`] | `finish_done` |
//! | `handle_request`'s error arm | `failed` |
//! | `journal::recover` | `recover`, `recover_done` |
//! | `journal::rollback` | `rollback`, `rollback_done` |

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, TxnOp};
use mysql_async::Conn;
use revdoor_core::gtid::StoredPosition;
use revdoor_core::names::{self, Direction, WorkflowName};
use revdoor_core::workflow::{
    now_ms, JournalEntry, KeyspaceSpec, Outcome, Step, StepState, StreamKind, StreamSpec,
    WorkflowState, CATCH_UP_PARTS,
};
use revdoor_mysql::positions::Applied;
use tracing::Instrument;

use super::check::{fmt_ms, gate, Closed};
use super::journal::{finish, summary, Journaled};
use super::{Ctx, SwitchPlan};
use crate::create::routing_ops;
use crate::registry::Registry;
use crate::{shard, Error};

/// What the operator asked of a cutover.
pub(super) struct Limits {
    /// `switch-traffic` (else `reverse-traffic`).
    pub to_target: bool,
    pub max_lag_ms: u64,
    pub timeout_ms: u64,
    /// `--fence=read-only`.
    pub read_only: bool,
}

/// One run of the cutover.
pub(super) struct Cutover<'r> {
    ctx: &'r Ctx<'r>,
    e: &'r mut JournalEntry,
    limits: Limits,
    plan: SwitchPlan,
    /// The workflow state the cutover started from: the flip's guard.
    state: WorkflowState,
    started: Instant,
    /// Connections to every old and new shard (in shard order), kept for
    /// the whole switch: the check proves them reachable, the window reuses
    /// them.
    old_conns: Vec<Conn>,
    new_conns: Vec<Conn>,
    /// The workflow's streams when the cutover started.
    specs: Vec<StreamSpec>,
    /// The running direction's applies, their origin shard by partition,
    /// and connections to their destinations (by url) for the catch-up.
    applies: Vec<StreamSpec>,
    origin_of: BTreeMap<i32, String>,
    apply_conns: BTreeMap<String, Conn>,
    /// The new direction's topic.
    topic: String,
    /// When the fence began, on this process's monotonic clock.
    fence_start: Option<Instant>,
    /// Final position of each old shard (its fence GTID), by shard.
    fence_positions: BTreeMap<String, StoredPosition>,
    /// Position of each new shard, where the new direction's captures start.
    starts: BTreeMap<String, StoredPosition>,
}

impl<'r> Cutover<'r> {
    /// Run the whole cutover; an error before [`Self::flip_routing`] is
    /// rolled back by the caller from the journal.
    pub(super) async fn run(
        ctx: &'r Ctx<'r>,
        e: &'r mut JournalEntry,
        limits: Limits,
    ) -> Result<(), Error> {
        let request = e.request.id;
        let mut c = Cutover::begin(ctx, e, limits).await?;
        c.check().await?;
        c.prepare().await?;
        c.warm_up().await?;
        fail::fail_point!(super::failpoints::AFTER_WARMUP);
        c.fence().await?;
        // `panic`: the leader dies here; `return`: the step fails.
        fail::fail_point!(super::failpoints::AFTER_FENCE, |_| Err(Error::Sql(
            "failpoint switch::after_fence".into()
        )));
        c.catch_up().await?;
        fail::fail_point!(super::failpoints::AFTER_CATCHUP);
        c.record_positions().await?;
        fail::fail_point!(super::failpoints::AFTER_POSITIONS);
        // The two steps journaled by hand (not through `Ctx::step`) get
        // their span here.
        c.create_streams()
            .instrument(ctx.step_span(request, Step::CreateStreams))
            .await?;
        fail::fail_point!(super::failpoints::AFTER_REVERSE_CREATED);
        c.flip_routing()
            .instrument(ctx.step_span(request, Step::FlipRouting))
            .await?;
        fail::fail_point!(super::failpoints::AFTER_ROUTING_FLIP);
        c.unfence().await?;
        fail::fail_point!(super::failpoints::AFTER_UNFENCE);
        c.finish().await
    }

    /// Read the state and plan; refused when the phase does not allow it.
    async fn begin(
        ctx: &'r Ctx<'r>,
        e: &'r mut JournalEntry,
        limits: Limits,
    ) -> Result<Self, Error> {
        let state = ctx.state().await?;
        let plan = ctx.plan(&state, limits.to_target);
        if let Some(why) = plan.refusal(&ctx.wf) {
            return Err(Error::Refused(why));
        }
        Ok(Cutover {
            ctx,
            e,
            limits,
            plan,
            state,
            started: Instant::now(),
            old_conns: Vec::new(),
            new_conns: Vec::new(),
            specs: Vec::new(),
            applies: Vec::new(),
            origin_of: BTreeMap::new(),
            apply_conns: BTreeMap::new(),
            topic: String::new(),
            fence_start: None,
            fence_positions: BTreeMap::new(),
            starts: BTreeMap::new(),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.limits.timeout_ms)
    }

    /// Step `check`: the lag gate, and a connection to every shard of both
    /// sides.
    async fn check(&mut self) -> Result<(), Error> {
        let Cutover {
            ctx,
            e,
            plan,
            limits,
            ..
        } = self;
        let (old, new, old_dir) = (&plan.old, &plan.new, plan.old_dir);
        let max_lag_ms = limits.max_lag_ms;
        let read_only = limits.read_only;
        let (old_conns, new_conns) = ctx
            .step(e, Step::Check, async {
                // Streams that are starting (just assigned, no lag reported
                // yet) get a few seconds; anything else is refused at once.
                let since = Instant::now();
                let detail = loop {
                    match gate(ctx.reg, &ctx.wf, old_dir, max_lag_ms).await? {
                        Ok(d) => break d,
                        Err(Closed::Starting(_)) if since.elapsed() < Duration::from_secs(10) => {
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        Err(closed) => return Err(closed.into_error()),
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
                // --fence=read-only: the old side must let revdoor set
                // read_only and keep applying the reverse stream under it.
                if read_only {
                    for (s, c) in old.shards.iter().zip(conns.0.iter_mut()) {
                        revdoor_mysql::preflight::check_read_only_privileges(c)
                            .await
                            .map_err(|e| Error::Refused(format!("shard {}: {e}", s.range)))?;
                    }
                }
                Ok((conns, detail))
            })
            .await?;
        self.old_conns = old_conns;
        self.new_conns = new_conns;
        Ok(())
    }

    /// Everything the window needs, prepared before the fence: the running
    /// direction's applies and where they come from, connections to their
    /// servers, the new direction's topic.
    async fn prepare(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let old_dir = self.plan.old_dir;
        self.specs = ctx.streams().await?;
        for s in self
            .specs
            .iter()
            .filter(|s| s.direction == old_dir && s.kind == StreamKind::Capture)
        {
            for (_, p) in &s.routes {
                self.origin_of.insert(*p, s.shard.to_string());
            }
        }
        self.applies = self
            .specs
            .iter()
            .filter(|s| s.direction == old_dir && s.kind == StreamKind::Apply)
            .cloned()
            .collect();
        self.topic = names::topic(&ctx.wf, self.plan.new_dir);
        revdoor_kafka::ensure_topics(
            &ctx.cfg.brokers,
            &self.topic,
            &names::offsets_topic(&ctx.wf),
            self.plan.new_partitions(&ctx.spec),
        )
        .await
        .map_err(|err| Error::Kafka(format!("create topic {}: {err}", self.topic)))?;
        for a in &self.applies {
            if !self.apply_conns.contains_key(&a.url) {
                self.apply_conns
                    .insert(a.url.clone(), shard::connect(&a.url).await?);
            }
        }
        Ok(())
    }

    /// Warm-up, not fenced yet: mark each old shard's binlog and let the
    /// applies reach the marks, so that the fenced catch-up only has the
    /// last few milliseconds of writes to wait for.
    async fn warm_up(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let t = Instant::now();
        let mut marks = BTreeMap::new();
        let open_msg = format!("revdoor: workflow {} serves this table here", ctx.wf);
        let deadline = Instant::now() + self.timeout();
        for (s, c) in self.plan.old.shards.iter().zip(self.old_conns.iter_mut()) {
            marks.insert(
                s.range.to_string(),
                shard::mark(c, &s.url, ctx.wf.as_str(), &open_msg, deadline).await?,
            );
        }
        let pending = self.wait_applied(&marks, deadline).await?;
        if !pending.is_empty() {
            return Err(Error::Refused(format!(
                "{} did not catch up with the source within --timeout {} (before any fence): \
                 the streams lag; wait, or raise --timeout",
                pending.join(", "),
                fmt_ms(self.limits.timeout_ms)
            )));
        }
        tracing::info!(workflow = %ctx.wf, ms = t.elapsed().as_millis() as u64, "warm-up catch-up done");
        Ok(())
    }

    /// Step `fence`: one fence transaction per old shard (and `read_only`
    /// with `--fence=read-only`); its GTID is the shard's final position.
    async fn fence(&mut self) -> Result<(), Error> {
        let Cutover {
            ctx,
            e,
            plan,
            limits,
            old_conns,
            ..
        } = self;
        let msg = plan.fence_message(&ctx.wf);
        let lock_wait = (limits.timeout_ms / 1000).clamp(1, 30);
        // Transient errors (a deadlock, a lock wait timeout, a lost
        // connection) are retried within --timeout.
        let deadline = Instant::now() + Duration::from_millis(limits.timeout_ms);
        let read_only = limits.read_only;
        let old = &plan.old;
        let side = ctx.side(old);
        // Begun journaled before any fence (a rollback unfences after it);
        // done, with the positions, in the next write (create-streams).
        let (positions, started) = ctx
            .step_with(e, Step::Fence, Journaled::Begin, async {
                // The window opens with the first fence statement.
                let started = (Instant::now(), now_ms());
                let mut pos = BTreeMap::new();
                for (s, c) in old.shards.iter().zip(old_conns.iter_mut()) {
                    let g =
                        shard::set_fenced(c, &s.url, ctx.row(side), true, &msg, deadline).await?;
                    pos.insert(s.range.to_string(), g);
                }
                // --fence=read-only: whole servers move; after the moved
                // tables' writers are drained, nothing else may write there
                // either.
                if read_only {
                    for (s, c) in old.shards.iter().zip(old_conns.iter_mut()) {
                        shard::set_read_only(c, &s.url, Some(ctx.row(side)), true, lock_wait)
                            .await?;
                    }
                }
                let detail = format!(
                    "{}{}",
                    positions_text(&pos),
                    if read_only { " + read_only" } else { "" }
                );
                Ok(((pos, started), detail))
            })
            .await?;
        self.fence_start = Some(started.0);
        e.fenced_at_ms = Some(started.1);
        e.fence_positions = positions.clone();
        self.fence_positions = positions;
        Ok(())
    }

    /// Step `catch-up`: every running-direction apply reached its origin's
    /// fence position, within what is left of `--timeout`.
    async fn catch_up(&mut self) -> Result<(), Error> {
        let Cutover {
            ctx,
            e,
            limits,
            plan,
            started,
            applies,
            origin_of,
            apply_conns,
            fence_positions,
            ..
        } = self;
        let deadline = Instant::now()
            + Duration::from_millis(limits.timeout_ms).saturating_sub(started.elapsed());
        let timeout_ms = limits.timeout_ms;
        let n = applies.len();
        let mut waiter = Waiter {
            conns: apply_conns,
            applies,
            origin_of,
            workflow: &ctx.wf,
            direction: plan.old_dir,
            last: None,
        };
        let started_ms = now_ms();
        ctx.step_with(e, Step::CatchUp, Journaled::Later, async {
            let pending = waiter.wait(fence_positions, deadline).await?;
            if !pending.is_empty() {
                return Err(Error::Timeout(format!(
                    "catch-up timed out after {}: {} did not apply up to the fence position; \
                     the switch was rolled back (raise --timeout, or check the streams' lag)",
                    fmt_ms(timeout_ms),
                    pending.join(", ")
                )));
            }
            Ok(((), format!("{n} apply streams at the fence")))
        })
        .await?;
        if let Some(parts) = waiter
            .last
            .and_then(|(a, seen)| catch_up_parts(started_ms, &a, seen))
        {
            e.set_parts(Step::CatchUp, parts);
        }
        Ok(())
    }

    /// Step `record-positions`: each new shard's GTID position.
    async fn record_positions(&mut self) -> Result<(), Error> {
        let Cutover {
            ctx,
            e,
            plan,
            new_conns,
            ..
        } = self;
        let new = &plan.new;
        let starts = ctx
            .step_with(e, Step::RecordPositions, Journaled::Later, async {
                let mut pos = BTreeMap::new();
                for (s, c) in new.shards.iter().zip(new_conns.iter_mut()) {
                    pos.insert(s.range.to_string(), shard::position(c, &s.url).await?);
                }
                let detail = positions_text(&pos);
                Ok((pos, detail))
            })
            .await?;
        e.start_positions = starts.clone();
        self.starts = starts;
        Ok(())
    }

    /// Step `create-streams`: the new direction's stream specs, captures
    /// starting at the recorded positions.
    async fn create_streams(&mut self) -> Result<(), Error> {
        let Cutover {
            ctx,
            e,
            plan,
            specs,
            starts,
            topic,
            ..
        } = self;
        // The specs and the journal (this step begun and done, and what the
        // window journaled later before it) in one transaction: a
        // successor that finds the step begun finds the specs to delete.
        let work = Instant::now();
        let mut ops: Vec<TxnOp> = plan
            .new_streams(&ctx.spec, specs, starts)
            .iter()
            .map(|s| Registry::op_put(&ctx.reg.prefix.stream(&ctx.wf, &s.id()), s))
            .collect();
        let n = ops.len();
        e.record(
            Step::CreateStreams,
            StepState::Begin,
            String::new(),
            ctx.t_us(),
            None,
        );
        e.record(
            Step::CreateStreams,
            StepState::Done,
            format!("{n} {} streams on topic {topic}", plan.new_dir),
            ctx.t_us(),
            None,
        );
        ops.push(Registry::op_put(&ctx.journal_key(e.request.id), &**e));
        ctx.reg.commit(ctx.guard, Vec::new(), ops).await?;
        // Its work is that transaction (journaled with the next write).
        if let Some(done) = e.steps.last_mut() {
            done.work_us = Some(work.elapsed().as_micros() as u64);
        }
        tracing::info!(workflow = %ctx.wf, request = e.request.id, step = "create-streams", "step done");
        Ok(())
    }

    /// Step `flip-routing`: routing rules, phase and journal in one
    /// transaction guarded by the state the cutover started from.
    async fn flip_routing(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let plan = &self.plan;
        let next = plan.flipped_state(&self.state, &self.starts, self.limits.read_only, now_ms());
        let e = &mut *self.e;
        // Begun and done journaled in the flip's own transaction: a
        // successor finds both or neither (and then rolls back). Its work
        // is that transaction: not timed apart.
        e.record(
            Step::FlipRouting,
            StepState::Begin,
            String::new(),
            ctx.t_us(),
            None,
        );
        e.record(
            Step::FlipRouting,
            StepState::Done,
            format!("serving {} at epoch {}", plan.new.name, next.epoch),
            ctx.t_us(),
            None,
        );
        let state_key = ctx.reg.prefix.workflow_state(&ctx.wf);
        let mut ops: Vec<TxnOp> = routing_ops(ctx.reg, &ctx.spec, &plan.new.name, next.epoch)?;
        ops.push(Registry::op_put(&state_key, &next));
        ops.push(Registry::op_put(&ctx.journal_key(e.request.id), &*e));
        ctx.reg
            .commit(
                ctx.guard,
                vec![Compare::value(
                    state_key.as_str(),
                    CompareOp::Equal,
                    crate::registry::json(&self.state),
                )],
                ops,
            )
            .await
            .map_err(|err| match err {
                Error::Conflict => Error::Sql("workflow state changed during the switch".into()),
                other => other,
            })?;
        tracing::info!(workflow = %ctx.wf, serving = %plan.new.name, epoch = next.epoch.get(), "routing flipped");
        Ok(())
    }

    /// Step `unfence`, on the connections the check opened.
    async fn unfence(&mut self) -> Result<(), Error> {
        let conns = std::mem::take(&mut self.new_conns);
        unfence(
            self.ctx,
            self.e,
            &self.plan.new,
            Some(conns),
            self.fence_start,
        )
        .await
    }

    /// Close the request: the switch summary in the state, outcome done.
    async fn finish(mut self) -> Result<(), Error> {
        // The applies' destinations, polled in the catch-up: closed once
        // the window is over.
        for (_, c) in std::mem::take(&mut self.apply_conns) {
            let _ = c.disconnect().await;
        }
        let ctx = self.ctx;
        let mut done = ctx.state().await?;
        done.read_only.remove(&self.plan.new.name);
        done.switches.push(summary(self.e, &done));
        done.updated_ms = now_ms();
        finish(ctx, self.e, Outcome::Done, String::new(), Some(done)).await
    }

    /// Wait until every running-direction apply reached `want` (see
    /// [`Waiter::wait`]).
    async fn wait_applied(
        &mut self,
        want: &BTreeMap<String, StoredPosition>,
        deadline: Instant,
    ) -> Result<Vec<String>, Error> {
        Waiter {
            conns: &mut self.apply_conns,
            applies: &self.applies,
            origin_of: &self.origin_of,
            workflow: &self.ctx.wf,
            direction: self.plan.old_dir,
            last: None,
        }
        .wait(want, deadline)
        .await
    }
}

/// Step `unfence`: the new side takes writes (and is writable again if a
/// `--fence=read-only` switch left it read-only). Also run by a successor
/// finishing a flipped cutover, with new connections and the window from
/// the journal's times.
pub(super) async fn unfence(
    ctx: &Ctx<'_>,
    e: &mut JournalEntry,
    new: &KeyspaceSpec,
    conns: Option<Vec<Conn>>,
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
    let was_read_only = ctx.state().await?.read_only.contains(&new.name);
    let side = ctx.side(new);
    let deadline = Instant::now() + UNFENCE_DEADLINE;
    // Journaled with the request's outcome (a successor that finds no
    // unfence done unfences again: idempotent).
    ctx.step_with(e, Step::Unfence, Journaled::Later, async {
        for (s, c) in new.shards.iter().zip(conns.iter_mut()) {
            // `sleep`: a leader that stalls between one shard and the next
            // (no etcd write in between); the deposed_coordinator test.
            fail::fail_point!(super::failpoints::UNFENCE_SHARD);
            shard::set_fenced(c, &s.url, ctx.row(side), false, &msg, deadline).await?;
            if was_read_only {
                shard::set_read_only(c, &s.url, Some(ctx.row(side)), false, 30).await?;
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

/// How long an unfence (after the flip, or in a rollback) retries
/// transient errors before its step fails (and is taken up again by the
/// next pass from the journal).
pub(super) const UNFENCE_DEADLINE: Duration = Duration::from_secs(30);

/// Whether applied position `applied` includes GTID (or position) `want`.
pub fn reached(applied: &StoredPosition, want: &StoredPosition) -> bool {
    applied.includes(want)
}

/// The running direction's applies, polled on their destinations.
struct Waiter<'w> {
    conns: &'w mut BTreeMap<String, Conn>,
    applies: &'w [StreamSpec],
    /// Origin shard of each partition.
    origin_of: &'w BTreeMap<i32, String>,
    workflow: &'w WorkflowName,
    direction: Direction,
    /// The last apply seen reaching its target: its checkpoint, and when
    /// this coordinator saw it (ms since the epoch).
    last: Option<(Applied, u64)>,
}

impl Waiter<'_> {
    /// Wait until every apply checkpointed a source position that includes
    /// its origin shard's entry of `want`, or `deadline`; the ids still
    /// behind.
    async fn wait(
        &mut self,
        want: &BTreeMap<String, StoredPosition>,
        deadline: Instant,
    ) -> Result<Vec<String>, Error> {
        let mut pending: Vec<&StreamSpec> = self.applies.iter().collect();
        loop {
            let mut still = Vec::new();
            for a in pending {
                let target = self
                    .origin_of
                    .get(&a.partition)
                    .and_then(|o| want.get(o))
                    .cloned()
                    .unwrap_or_default();
                let conn = self
                    .conns
                    .get_mut(&a.url)
                    .ok_or_else(|| Error::Sql("lost connection".into()))?;
                let have = shard::applied(conn, &a.url, self.workflow, self.direction, a.partition)
                    .await?
                    .unwrap_or_default();
                if reached(&have.position, &target) {
                    self.last = Some((have, now_ms()));
                } else {
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
}

/// Where a catch-up that began at `started_ms` went, from the checkpoint
/// of the last apply to reach the fence and when that was seen (a part
/// already over when the catch-up began — the fence step is not instant —
/// counts 0)
/// ([`revdoor_core::workflow::CATCH_UP_PARTS`]); `None` when that
/// checkpoint is not at a heartbeat (a later transaction took it past the
/// fence), which carries no fetch time.
fn catch_up_parts(started_ms: u64, a: &Applied, seen_ms: u64) -> Option<BTreeMap<String, u64>> {
    if a.fetched_ms == 0 || a.source_ms == 0 {
        return None;
    }
    let [capture, kafka, apply] = CATCH_UP_PARTS;
    let us = |ms: u64| ms * 1000;
    // Each boundary no earlier than the catch-up's start: what happened
    // during the fence step counts 0 here.
    let source = a.source_ms.max(started_ms);
    let fetched = a.fetched_ms.max(source);
    Some(BTreeMap::from([
        (capture.to_string(), us(source - started_ms)),
        (kafka.to_string(), us(fetched - source)),
        (apply.to_string(), us(seen_ms.saturating_sub(fetched))),
    ]))
}

/// Each shard's position, for a step's detail: `-80 at 0-1-5, 80- at 0-2-9`.
fn positions_text(pos: &BTreeMap<String, StoredPosition>) -> String {
    pos.iter()
        .map(|(shard, p)| format!("{shard} at {}", p.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(source_ms: u64, fetched_ms: u64) -> Applied {
        Applied {
            position: StoredPosition::default(),
            source_ms,
            fetched_ms,
        }
    }

    #[test]
    fn catch_up_parts_add_up_to_the_catch_up() {
        let parts = |a, seen| {
            let p = catch_up_parts(1_000, &a, seen).expect("parts");
            CATCH_UP_PARTS.map(|k| p[k] / 1000)
        };
        // Capture saw the fence 5 ms in, apply read it 30 ms later, the
        // coordinator saw it applied 10 ms after that.
        assert_eq!(parts(applied(1_005, 1_035), 1_045), [5, 30, 10]);
        // All but the apply was over before the catch-up began.
        assert_eq!(parts(applied(990, 995), 1_007), [0, 0, 7]);
        assert_eq!(parts(applied(990, 1_004), 1_007), [0, 4, 3]);
        // At a transaction (no fetch time): no parts.
        assert_eq!(catch_up_parts(1_000, &applied(1_005, 0), 1_010), None);
    }
}
