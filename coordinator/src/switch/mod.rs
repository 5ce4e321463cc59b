//! Operator requests, run by the leader and journaled step by step:
//! `switch-traffic`, `reverse-traffic` (the fenced cutover of DESIGN §6),
//! `complete` and `cancel`.
//!
//! - this module: the pending request picked up and dispatched
//!   ([`handle_request`]), the failpoints;
//! - [`plan`]: [`SwitchPlan`], the pure plan of a cutover (also printed by
//!   `--dry-run`);
//! - [`check`]: the lag gate and health of the running direction
//!   ([`check_streams`]);
//! - `cutover`: the cutover, one method per step; the fence is installed by
//!   its `fence` step;
//! - `journal`: the journal written (every step begun and done, the request
//!   closed) and read back: rollback and recovery after a failure or a dead
//!   leader;
//! - `complete`: `complete` and `cancel`.
//!
//! # The cutover
//!
//! `switch-traffic` moves serving from the source keyspace to the target,
//! `reverse-traffic` back; both run the same steps with the roles given by
//! the phase: the *old* side serves now and is fenced, the *new* side takes
//! over. Steps, by journal name ([`Step`]), each with the numbered steps of
//! DESIGN §6's fenced cutover it carries out:
//!
//! - `check` — §6 step 1: every stream of the running direction is
//!   reported running by a live worker with lag ≤ `--max-lag`; every shard
//!   of both sides answers. A failure here is a refusal: nothing was
//!   changed. Then, unjournaled and still unfenced: the new direction's
//!   topic is created (the topic half of §6 step 6) and a warm-up catch-up
//!   to a mark on each old shard runs.
//! - `fence` — §6 steps 2 and 3: one `UPDATE` of the workflow's
//!   `_revdoor.fences` rows per old shard (waits for in-flight writers; see
//!   [`crate::shard`]). The fence transaction's GTID is that shard's final
//!   position: no write to a moved table commits after it. Capture flushes
//!   and heartbeats at once when it reads the fence.
//! - `catch-up` — §6 step 4: wait until every apply stream of the running
//!   direction checkpointed a source position including its origin's fence
//!   GTID (read from `_revdoor.stream_state` on the destination), within
//!   `--timeout`.
//! - `record-positions` — §6 step 5: each new shard's GTID position: where
//!   the opposite direction's captures start.
//! - `create-streams` — §6 step 6: the opposite direction's stream specs
//!   (captures start at the recorded positions).
//! - `flip-routing` — §6 steps 7 and 9: in one guarded etcd transaction,
//!   routing rules (both keyspaces) serve the new side at the next epoch;
//!   the phase flips (`switched` / `reversed`), which freezes the old
//!   direction's streams and starts the new ones (the assignment pass); the
//!   journal records the step done. (So step 9 happens before step 8 here.)
//! - `unfence` — §6 step 8: one `UPDATE` per new shard: applications may
//!   write there. The write-unavailability window is fence start → unfence
//!   end.
//!
//! A failure before `flip-routing` rolls back: the old side is unfenced,
//! streams created by this request are deleted, and the journal says why.
//! A leader that dies mid-switch leaves the journal entry `running`; the
//! next leader rolls it back if the flip did not happen, or finishes it
//! (unfence, done) if it did. Every step is idempotent.

use revdoor_core::names::WorkflowName;
use revdoor_core::workflow::{
    Action, JournalEntry, KeyspaceSpec, Outcome, Request, Step, StreamSpec, WorkflowSpec,
    WorkflowState,
};

use crate::config::Config;
use crate::create::keyspace;
use crate::registry::{Guard, Registry};
use crate::{shard, Error};
use revdoor_mysql::schema::{SOURCE_SIDE, TARGET_SIDE};

pub mod check;
mod complete;
mod cutover;
mod journal;
pub mod plan;

pub use check::check_streams;
pub use cutover::reached;
pub use plan::SwitchPlan;

use complete::{cancel, complete};
use cutover::{Cutover, Limits};
use journal::{finish, recover, rollback};

/// Failpoints of the cutover (crash tests).
pub mod failpoints {
    pub const AFTER_WARMUP: &str = "switch::after_warmup";
    pub const AFTER_FENCE: &str = "switch::after_fence";
    pub const AFTER_CATCHUP: &str = "switch::after_catchup";
    pub const AFTER_POSITIONS: &str = "switch::after_positions";
    pub const AFTER_REVERSE_CREATED: &str = "switch::after_reverse_created";
    pub const AFTER_ROUTING_FLIP: &str = "switch::after_routing_flip";
    pub const AFTER_UNFENCE: &str = "switch::after_unfence";
    /// In the unfence step, before each new shard is unfenced.
    pub const UNFENCE_SHARD: &str = "switch::unfence_shard";
    /// In a rollback, before the old side is unfenced (`return`: the
    /// rollback fails there and is taken up again from the journal).
    pub const ROLLBACK_UNFENCE: &str = "switch::rollback_unfence";
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
    /// When this coordinator took the request up.
    started: std::time::Instant,
}

impl Ctx<'_> {
    /// µs since this coordinator took the request up (journal records'
    /// `t_us`).
    fn t_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// The workflow's state now.
    async fn state(&self) -> Result<WorkflowState, Error> {
        self.reg
            .value::<WorkflowState>(&self.reg.prefix.workflow_state(&self.wf))
            .await?
            .ok_or_else(|| Error::Refused(format!("workflow {} has no state", self.wf)))
    }

    /// The workflow's stream specs now.
    async fn streams(&self) -> Result<Vec<StreamSpec>, Error> {
        Ok(self
            .reg
            .list::<StreamSpec>(&self.reg.prefix.streams(&self.wf))
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// The fence rows' side of keyspace `ks` (the workflow's source or
    /// target).
    fn side(&self, ks: &KeyspaceSpec) -> &'static str {
        if ks.name == self.source.name {
            SOURCE_SIDE
        } else {
            TARGET_SIDE
        }
    }

    /// `side`'s fence row of this workflow, changed under this leader's
    /// token.
    fn row(&self, side: &'static str) -> shard::FenceRow<'_> {
        shard::FenceRow {
            workflow: self.wf.as_str(),
            side,
            token: self.guard.token,
        }
    }

    /// Claim the workflow's fence rows on every server of both keyspaces
    /// for this leader (`shard::claim`) before it resumes a request another
    /// coordinator left midway: from then on that one, should it run on,
    /// changes no fence. (A request with no journal entry yet had nothing
    /// done for it; one whose entry is finished has nothing left to do.)
    async fn claim_fences(&self) -> Result<(), Error> {
        let mut urls: Vec<&str> = self
            .source
            .shards
            .iter()
            .chain(&self.target.shards)
            .map(|s| s.url.as_str())
            .collect();
        urls.sort_unstable();
        urls.dedup();
        for url in urls {
            let mut c = shard::connect(url).await?;
            shard::claim(&mut c, url, self.wf.as_str(), self.guard.token).await?;
            let _ = c.disconnect().await;
        }
        Ok(())
    }

    /// The plan of a cutover in `state`'s phase.
    fn plan(&self, state: &WorkflowState, to_target: bool) -> SwitchPlan {
        SwitchPlan::new(state, &self.source, &self.target, to_target)
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
    let source = keyspace(reg, spec.source.as_str()).await?;
    let target = keyspace(reg, spec.target.as_str()).await?;
    let ctx = Ctx {
        reg,
        guard,
        cfg,
        wf: wf.clone(),
        spec,
        source,
        target,
        started: std::time::Instant::now(),
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
            // That coordinator may still be running (paused, or cut off
            // from etcd only): no fence statement of its lands after this.
            ctx.claim_fences().await?;
            return Box::pin(recover(&ctx, e)).await;
        }
        None => JournalEntry::new(req.clone(), guard.id.clone()),
    };
    ctx.write_journal(&entry).await?;
    let result = match &req.action {
        Action::SwitchTraffic {
            max_lag_ms,
            timeout_ms,
            read_only,
        }
        | Action::ReverseTraffic {
            max_lag_ms,
            timeout_ms,
            read_only,
        } => {
            let limits = Limits {
                to_target: matches!(req.action, Action::SwitchTraffic { .. }),
                max_lag_ms: *max_lag_ms,
                timeout_ms: *timeout_ms,
                read_only: *read_only,
            };
            Box::pin(Cutover::run(&ctx, &mut entry, limits)).await
        }
        Action::Complete {
            drop_source,
            rename_source,
            force,
        } => {
            Box::pin(complete(
                &ctx,
                &mut entry,
                *drop_source,
                *rename_source,
                *force,
            ))
            .await
        }
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
            if entry.begun(Step::FlipRouting) && !entry.done(Step::FlipRouting) {
                // The flip's etcd transaction may or may not have landed.
                return Box::pin(recover(&ctx, entry)).await;
            }
            if entry.done(Step::FlipRouting) {
                tracing::error!(workflow = %wf, error = %e, "after the routing flip; finishing");
                return Box::pin(recover(&ctx, entry)).await;
            }
            let reason = format!("{e}");
            rollback(&ctx, &mut entry, reason).await
        }
    }
}
