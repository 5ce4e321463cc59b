//! The vdiff record in etcd (`workflows/<wf>/vdiffs/<id>`): its report
//! and resume point, and `vdiff create` / `show` / `stop`.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::Value;
use revdoor_core::gtid::StoredPosition;
use revdoor_core::names::{Direction, KeyspaceName, WorkflowName};
use revdoor_core::workflow::{now_ms, Phase};
use serde::{Deserialize, Serialize};

use super::workflow_records;
use crate::registry::Registry;
use crate::Error;

/// Samples kept per kind of difference and table.
pub const SAMPLES_PER_KIND: usize = 10;

/// Where a vdiff is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VdiffState {
    Running,
    /// `vdiff stop` asked (reported by `stop`, never stored): the running
    /// process stops after its chunk.
    Stopping,
    Stopped,
    Completed,
    Failed,
}

impl VdiffState {
    pub fn as_str(self) -> &'static str {
        match self {
            VdiffState::Running => "running",
            VdiffState::Stopping => "stopping",
            VdiffState::Stopped => "stopped",
            VdiffState::Completed => "completed",
            VdiffState::Failed => "failed",
        }
    }
}

/// One difference, with the row on each side (column → value; `None` is
/// NULL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// `missing`, `extra`, `different` or `wrong_shard`.
    pub kind: String,
    /// `col=value,…` of the primary key.
    pub key: String,
    /// Missing: the shard the row belongs on. Extra / different: the shard
    /// it was found on. Wrong shard: `found on X, belongs on Y`.
    pub shard: String,
    #[serde(default)]
    pub source: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    pub target: Option<BTreeMap<String, Option<String>>>,
}

/// The result for one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReport {
    /// `db.table`.
    pub table: String,
    /// Origin rows compared.
    pub processed: u64,
    pub matching: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    pub wrong_shard: u64,
    pub samples: Vec<Sample>,
    pub done: bool,
    /// Origin rows compared row by row (of `processed`): in chunks whose
    /// checksums differed, and every row of a table with a JSON column.
    /// The rest matched by checksum.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub row_by_row: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TableReport {
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.different + self.wrong_shard
    }

    pub(super) fn sample(&mut self, s: Sample) {
        if self.samples.iter().filter(|x| x.kind == s.kind).count() < SAMPLES_PER_KIND {
            self.samples.push(s);
        }
    }
}

/// One consistent point: when, how long the streams were held, how long
/// origin writes were blocked, and the origin positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub at_ms: u64,
    /// How long the apply streams were held (steps 1 → 4).
    pub ms: u64,
    /// Origin shard → GTID position of its snapshot.
    pub positions: BTreeMap<String, StoredPosition>,
    /// Origin shard → how long its writes were blocked (ms) to open the
    /// snapshot at a known position: MySQL's `FLUSH TABLES WITH READ LOCK`,
    /// from the statement sent to `UNLOCK TABLES` answered. MariaDB shards
    /// are not here: they take no lock.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub origin_locks: BTreeMap<String, u64>,
}

/// A primary-key value as stored in the resume point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyPart {
    Int(i64),
    UInt(u64),
    Bytes(Vec<u8>),
}

impl KeyPart {
    pub(super) fn param(&self) -> Value {
        match self {
            KeyPart::Int(i) => Value::Int(*i),
            KeyPart::UInt(u) => Value::UInt(*u),
            KeyPart::Bytes(b) => Value::Bytes(b.clone()),
        }
    }
}

/// `workflows/<wf>/vdiffs/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VdiffRecord {
    pub id: String,
    pub workflow: String,
    pub direction: Direction,
    /// Origin and destination keyspaces of `direction`.
    pub source: KeyspaceName,
    pub target: KeyspaceName,
    pub tables: Vec<TableReport>,
    pub state: VdiffState,
    #[serde(default)]
    pub error: String,
    pub chunk_rows: u64,
    pub started_ms: u64,
    pub updated_ms: u64,
    #[serde(default)]
    pub finished_ms: u64,
    /// Resume point: the table being compared and the last key done.
    pub current: usize,
    #[serde(default)]
    pub last_key: Option<Vec<KeyPart>>,
    /// Estimated origin rows (information_schema), for progress.
    pub rows_estimate: u64,
    pub pauses: Vec<Pause>,
    /// This run: when it started and the rows it processed (for the ETA).
    pub run_started_ms: u64,
    pub run_processed: u64,
}

impl VdiffRecord {
    pub fn processed(&self) -> u64 {
        self.tables.iter().map(|t| t.processed).sum()
    }

    pub fn differences(&self) -> u64 {
        self.tables.iter().map(TableReport::differences).sum()
    }

    /// Estimated time left, from this run's rate.
    pub fn eta_ms(&self, now: u64) -> Option<u64> {
        let elapsed = now.saturating_sub(self.run_started_ms);
        if self.state != VdiffState::Running || self.run_processed == 0 || elapsed == 0 {
            return None;
        }
        let left = self.rows_estimate.saturating_sub(self.processed());
        Some(left.saturating_mul(elapsed) / self.run_processed)
    }
}

/// What `vdiff create` compares.
#[derive(Debug, Clone)]
pub struct VdiffOptions {
    /// `db.table`; empty = every table of the workflow.
    pub tables: Vec<String>,
    pub chunk_rows: u64,
    /// How long the streams may take to reach the consistent point.
    pub hold_timeout: Duration,
}

impl Default for VdiffOptions {
    fn default() -> Self {
        VdiffOptions {
            tables: Vec::new(),
            chunk_rows: 10_000,
            hold_timeout: Duration::from_secs(30),
        }
    }
}

/// Register a new vdiff of `workflow`'s active direction and return it
/// (run it with [`run`](fn@super::run)).
pub async fn create(
    reg: &Registry,
    workflow: &WorkflowName,
    opts: &VdiffOptions,
) -> Result<VdiffRecord, Error> {
    let (spec, state) = workflow_records(reg, workflow).await?;
    let direction = match state.phase {
        Phase::Copying => {
            return Err(Error::Refused(format!(
                "workflow {workflow} is still copying: run vdiff once `revdoor workflow status \
                 {workflow}` says running"
            )))
        }
        p => p.active().ok_or_else(|| {
            Error::Refused(format!(
                "workflow {workflow} is {p}: there is nothing left to compare"
            ))
        })?,
    };
    let tables = if opts.tables.is_empty() {
        spec.tables.clone()
    } else {
        for t in &opts.tables {
            if !spec.tables.contains(t) {
                return Err(Error::Refused(format!(
                    "table {t} is not part of workflow {workflow} (its tables: {})",
                    spec.tables.join(", ")
                )));
            }
        }
        let mut t = opts.tables.clone();
        t.sort();
        t.dedup();
        t
    };
    let (source, target) = match direction {
        Direction::Forward => (spec.source.clone(), spec.target.clone()),
        Direction::Reverse => (spec.target.clone(), spec.source.clone()),
    };
    let now = now_ms();
    let rec = VdiffRecord {
        id: format!("{now:013}"),
        workflow: workflow.to_string(),
        direction,
        source,
        target,
        tables: tables
            .into_iter()
            .map(|table| TableReport {
                table,
                ..TableReport::default()
            })
            .collect(),
        state: VdiffState::Running,
        error: String::new(),
        chunk_rows: opts.chunk_rows.max(1),
        started_ms: now,
        updated_ms: now,
        finished_ms: 0,
        current: 0,
        last_key: None,
        rows_estimate: 0,
        pauses: Vec::new(),
        run_started_ms: now,
        run_processed: 0,
    };
    let key = reg.prefix.vdiff(workflow, &rec.id);
    if !reg
        .create(
            std::slice::from_ref(&key),
            vec![Registry::op_put(&key, &rec)],
        )
        .await?
    {
        return Err(Error::Conflict);
    }
    Ok(rec)
}

/// Every vdiff of a workflow, oldest first.
pub async fn list(reg: &Registry, workflow: &WorkflowName) -> Result<Vec<VdiffRecord>, Error> {
    let mut v: Vec<VdiffRecord> = reg
        .list::<VdiffRecord>(&reg.prefix.vdiffs(workflow))
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(v)
}

/// A vdiff by id, or the latest one.
pub async fn get(
    reg: &Registry,
    workflow: &WorkflowName,
    id: Option<&str>,
) -> Result<VdiffRecord, Error> {
    match id {
        Some(id) => reg
            .value(&reg.prefix.vdiff(workflow, id))
            .await?
            .ok_or_else(|| Error::Refused(format!("workflow {workflow} has no vdiff {id}"))),
        None => list(reg, workflow).await?.pop().ok_or_else(|| {
            Error::Refused(format!(
                "workflow {workflow} has no vdiff yet (start one with `revdoor vdiff create {workflow}`)"
            ))
        }),
    }
}

/// `vdiff stop`: a running vdiff stops after its current chunk; one whose
/// process is gone is marked stopped at once.
pub async fn stop(
    reg: &Registry,
    workflow: &WorkflowName,
    id: Option<&str>,
) -> Result<VdiffRecord, Error> {
    let mut rec = get(reg, workflow, id).await?;
    if !matches!(rec.state, VdiffState::Running | VdiffState::Stopping) {
        return Err(Error::Refused(format!(
            "vdiff {} is {}: nothing to stop",
            rec.id,
            rec.state.as_str()
        )));
    }
    let running = !reg
        .keys(&reg.prefix.vdiff_run(workflow, &rec.id))
        .await?
        .is_empty();
    if running {
        // The running process owns the record (it rewrites it after every
        // chunk): ask through a key of its own, which it reads per chunk.
        reg.put(&reg.prefix.vdiff_stop(workflow, &rec.id), &now_ms(), None)
            .await?;
        rec.state = VdiffState::Stopping;
    } else {
        rec.state = VdiffState::Stopped;
        rec.updated_ms = now_ms();
        reg.put(&reg.prefix.vdiff(workflow, &rec.id), &rec, None)
            .await?;
    }
    Ok(rec)
}
