//! The switch journal (`workflows/<wf>/journal/<id>`): written here — every
//! step journaled when it begins and when it is done, the request closed
//! with its outcome — and read back here when a request fails or its leader
//! dies midway: [`rollback`] before the routing flip, [`recover`] finishes
//! after it.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use revdoor_core::names::Direction;
use revdoor_core::workflow::{
    now_ms, Action, JournalEntry, Outcome, Phase, Request, Step, StepState, SwitchSummary,
    WorkflowState,
};
use tracing::Instrument;

use super::complete::{cancel, complete};
use super::cutover::{unfence, UNFENCE_DEADLINE};
use super::Ctx;
use crate::registry::Registry;
use crate::{shard, Error};

impl Ctx<'_> {
    pub(super) fn journal_key(&self, id: u64) -> String {
        self.reg.prefix.journal_entry(&self.wf, id)
    }

    pub(super) async fn write_journal(&self, e: &JournalEntry) -> Result<(), Error> {
        self.reg
            .commit(
                self.guard,
                Vec::new(),
                vec![Registry::op_put(&self.journal_key(e.request.id), e)],
            )
            .await
    }

    /// The span of a switch step: everything the step logs carries the
    /// workflow, request and step.
    pub(super) fn step_span(&self, request: u64, step: Step) -> tracing::Span {
        tracing::info_span!("switch_step", workflow = %self.wf, request, step = step.as_str())
    }

    /// Run `f` as journal step `step`: journaled begun, run, journaled done
    /// with the detail `f` returns.
    pub(super) async fn step<T, F>(
        &self,
        e: &mut JournalEntry,
        step: Step,
        f: F,
    ) -> Result<T, Error>
    where
        F: std::future::Future<Output = Result<(T, String), Error>>,
    {
        self.step_with(e, step, Journaled::BeginAndDone, f).await
    }

    /// [`Self::step`], with the begin and done records written to etcd as
    /// `journaled` says; records not written now are written with the
    /// entry's next write (see [`Journaled`]).
    pub(super) async fn step_with<T, F>(
        &self,
        e: &mut JournalEntry,
        step: Step,
        journaled: Journaled,
        f: F,
    ) -> Result<T, Error>
    where
        F: std::future::Future<Output = Result<(T, String), Error>>,
    {
        let span = self.step_span(e.request.id, step);
        e.record(step, StepState::Begin, String::new(), self.t_us(), None);
        if journaled != Journaled::Later {
            self.write_journal(e).instrument(span.clone()).await?;
        }
        let work = std::time::Instant::now();
        let (v, detail) = f.instrument(span.clone()).await?;
        let work_us = work.elapsed().as_micros() as u64;
        e.record(step, StepState::Done, detail, self.t_us(), Some(work_us));
        if journaled == Journaled::BeginAndDone {
            self.write_journal(e).instrument(span.clone()).await?;
        }
        span.in_scope(|| tracing::info!("step done"));
        Ok(v)
    }
}

/// When a step's records reach etcd. Inside the write-unavailability
/// window only what recovery reads is written before it is needed (the
/// fence begun, before any fence; the flip, in its own transaction); the
/// other records of the window — fence done and the fence positions,
/// catch-up, record-positions, create-streams (in the transaction that
/// creates the streams), unfence — go with the entry's next write, so the
/// window holds two etcd transactions instead of a dozen. A successor that
/// finds fewer records recovers the same way (docs/model: those records
/// are not read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Journaled {
    /// Both records written when made.
    BeginAndDone,
    /// The begin record written before the step runs; the done record
    /// later.
    Begin,
    /// Both later.
    Later,
}

/// Close a request: journal outcome, state update, request removed — one
/// guarded transaction.
pub(super) async fn finish(
    ctx: &Ctx<'_>,
    entry: &mut JournalEntry,
    outcome: Outcome,
    reason: String,
    state: Option<WorkflowState>,
) -> Result<(), Error> {
    entry.outcome = outcome;
    entry.reason = reason;
    let mut ops = vec![Registry::op_put(
        &ctx.journal_key(entry.request.id),
        &*entry,
    )];
    // The request key, only while it still holds this request: when an
    // earlier finish landed but reported a failure, the operator may have
    // made the next request since (its CLI returns once the journal says
    // done), and that one must run (docs/model/README.md, finding 2).
    let key = ctx.reg.prefix.request(&ctx.wf);
    if let Some((held, rev)) = ctx.reg.get::<Request>(&key).await? {
        if held.id == entry.request.id {
            ops.push(TxnOp::txn(
                Txn::new()
                    .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, rev)])
                    .and_then([Registry::op_delete(&key)]),
            ));
        }
    }
    if let Some(s) = state {
        ops.push(Registry::op_put(
            &ctx.reg.prefix.workflow_state(&ctx.wf),
            &s,
        ));
    }
    ctx.reg.commit(ctx.guard, Vec::new(), ops).await?;
    record_outcome(ctx, entry);
    match outcome {
        Outcome::Done => tracing::info!(workflow = %ctx.wf, request = entry.request.id,
            action = entry.request.action.name(), window_ms = entry.window_ms.unwrap_or(0), "request done"),
        _ => tracing::warn!(workflow = %ctx.wf, request = entry.request.id,
            action = entry.request.action.name(), outcome = ?outcome, reason = %entry.reason, "request ended"),
    }
    Ok(())
}

/// `revdoor_switch_total` and, for a switch done, its window in
/// `revdoor_switch_window_seconds` — once per request, by the leader that
/// ended it.
fn record_outcome(ctx: &Ctx<'_>, entry: &JournalEntry) {
    use revdoor_core::metrics::{SWITCH, SWITCH_WINDOW};
    if !matches!(
        entry.request.action,
        Action::SwitchTraffic { .. } | Action::ReverseTraffic { .. }
    ) {
        return;
    }
    let wf = ctx.wf.as_str().to_owned();
    let outcome = match entry.outcome {
        Outcome::Done => "done",
        Outcome::RolledBack => "rolled_back",
        Outcome::Refused => "refused",
        Outcome::Running => return,
    };
    metrics::counter!(SWITCH, "workflow" => wf.clone(), "outcome" => outcome).increment(1);
    if let (Outcome::Done, Some(ms)) = (entry.outcome, entry.window_ms) {
        metrics::histogram!(SWITCH_WINDOW, "workflow" => wf).record(ms as f64 / 1000.0);
    }
}

/// The summary a finished cutover adds to the workflow's state.
pub(super) fn summary(e: &JournalEntry, state: &WorkflowState) -> SwitchSummary {
    SwitchSummary {
        request: e.request.id.to_string(),
        action: e.request.action.name().into(),
        epoch: state.epoch,
        window_ms: e.window_ms.unwrap_or(0),
        finished_ms: now_ms(),
    }
}

/// Undo a cutover that failed before the routing flip.
pub(super) async fn rollback(
    ctx: &Ctx<'_>,
    e: &mut JournalEntry,
    reason: String,
) -> Result<(), Error> {
    // Journaled before anything is undone, with why: a rollback that
    // fails midway is taken up again by the next pass ([`recover`]), which
    // then says what really happened.
    if !e.begun(Step::Rollback) {
        e.record(
            Step::Rollback,
            StepState::Begin,
            reason.clone(),
            ctx.t_us(),
            None,
        );
        ctx.write_journal(e).await?;
    }
    let st = ctx.state().await?;
    let to_target = matches!(e.request.action, Action::SwitchTraffic { .. });
    let old = ctx.plan(&st, to_target).old;
    tracing::warn!(workflow = %ctx.wf, reason = %reason, "rolling back");
    if e.begun(Step::Fence) {
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
        let side = ctx.side(&old);
        let deadline = std::time::Instant::now() + UNFENCE_DEADLINE;
        fail::fail_point!(super::failpoints::ROLLBACK_UNFENCE, |_| Err(Error::Sql(
            "failpoint switch::rollback_unfence".into()
        )));
        for s in &old.shards {
            let mut c = shard::connect(&s.url).await?;
            shard::set_fenced(&mut c, &s.url, ctx.row(side), false, &msg, deadline).await?;
            if read_only && !st.read_only.contains(&old.name) {
                shard::set_read_only(&mut c, &s.url, Some(ctx.row(side)), false, 30).await?;
            }
            let _ = c.disconnect().await;
        }
    }
    // Streams this request created for a direction that never ran.
    let mut ops = Vec::new();
    if e.begun(Step::CreateStreams) && !st.reverse_created {
        for s in ctx.streams().await? {
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
    e.record(
        Step::Rollback,
        StepState::Done,
        String::new(),
        ctx.t_us(),
        None,
    );
    finish(ctx, e, Outcome::RolledBack, reason, None).await
}

/// Finish or roll back a request found midway (its coordinator died or a
/// step failed around the flip).
pub(super) async fn recover(ctx: &Ctx<'_>, mut e: JournalEntry) -> Result<(), Error> {
    let st = ctx.state().await?;
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
            let flipped = flipped && e.begun(Step::FlipRouting);
            if !flipped {
                let me = &ctx.guard.id;
                let reason = match e.steps.iter().find(|s| s.step == Step::Rollback) {
                    // A step failed and its rollback did not finish (an
                    // error while undoing): nobody stopped.
                    Some(r) => format!(
                        "{}; rolled back (the rollback was interrupted and finished by {me})",
                        r.detail
                    ),
                    None if previous == *me => format!(
                        "coordinator {me} left step {last} unfinished (it restarted, or could not \
                         write the journal to roll back); rolled back before the routing flip — nothing \
                         changed, run the request again"
                    ),
                    None => format!(
                        "coordinator {previous} stopped or lost its leadership (etcd out of its reach) \
                         during step {last}; rolled back by {me} before the routing flip — nothing \
                         changed, run the request again"
                    ),
                };
                return rollback(ctx, &mut e, reason).await;
            }
            if !e.done(Step::FlipRouting) {
                e.record(
                    Step::FlipRouting,
                    StepState::Done,
                    "found flipped".into(),
                    ctx.t_us(),
                    None,
                );
            }
            // After the flip the phase's serving side is the new side.
            let serving = if st.phase.serving_target() {
                ctx.target.clone()
            } else {
                ctx.source.clone()
            };
            if !e.done(Step::Unfence) {
                unfence(ctx, &mut e, &serving, None, None).await?;
            } else {
                // The dead leader unfenced: its journal has the time.
                let unfenced = e.unfenced_at_ms.or_else(|| e.finished_at(Step::Unfence));
                if let (Some(f), Some(u)) = (e.fenced_at_ms, unfenced) {
                    e.unfenced_at_ms = Some(u);
                    e.window_ms.get_or_insert(u.saturating_sub(f));
                }
            }
            let mut done_state = st.clone();
            done_state.read_only.remove(&serving.name);
            done_state.switches.push(summary(&e, &done_state));
            let reason = format!(
                "coordinator {} stopped or lost its leadership (etcd out of its reach) during \
                 step {last}; finished by {}",
                previous, ctx.guard.id
            );
            finish(ctx, &mut e, Outcome::Done, reason, Some(done_state)).await
        }
        Action::Complete {
            drop_source,
            rename_source,
            force,
        } => Box::pin(complete(ctx, &mut e, drop_source, rename_source, force)).await,
        Action::Cancel { keep_data } => Box::pin(cancel(ctx, &mut e, keep_data)).await,
    }
}
