//! VDiff (DESIGN §7): prove that the destination of a workflow's active
//! direction holds exactly the rows of its origin, at one consistent point,
//! while the workflow runs.
//!
//! # Consistent point
//!
//! 1. Every apply stream of the active direction is asked to hold
//!    (`_revdoor.holds` on its destination, `hold_gtid = ''`: apply nothing
//!    more). Apply reads its hold before each group it applies, so from
//!    here on nothing it applies was committed on the origin after now.
//! 2. Each origin shard opens a consistent snapshot and reads its GTID
//!    position `X` (MariaDB: `Binlog_snapshot_file/position` →
//!    `BINLOG_GTID_POS`; MySQL: a moment of `FLUSH TABLES WITH READ LOCK`).
//! 3. Each hold becomes "up to `X` of the stream's origin"; a mark on each
//!    origin makes capture heartbeat at once. Each apply stream applies the
//!    rest of `X` and reports `held_gtid = X` when the next thing it sees is
//!    outside `X` (a transaction or a heartbeat past it).
//! 4. Each destination opens a consistent snapshot; the holds are deleted.
//!    The pause (1 → 4) is reported. A hold expires by itself after
//!    [`HOLD_TTL`], so a vdiff killed in between never wedges a stream.
//!
//! # Comparison
//!
//! Table by table in primary-key order, in chunks of `chunk_rows` rows (per
//! origin shard): a checksum of the chunk on every origin and every
//! destination shard (`COUNT`, and two 64-bit `BIT_XOR`s of each row's
//! `MD5`), combined per side; equal → the chunk matches. Otherwise the
//! chunk's rows are read from every shard and merged by key: missing on
//! the target, extra on the target, different. With several destination
//! shards every destination row's keyspace id is checked too: a row on a
//! shard that does not own it is "wrong shard" (counted per copy; the data
//! comparison uses the copy on the right shard if there is one).
//!
//! # The comparison rule (collation-aware, value-exact)
//!
//! Two values are equal when they are the same value, whatever the
//! columns' character sets and collations: strings are compared as the
//! characters they hold (both sides converted to utf8mb4, so a latin1 `é`
//! equals a utf8mb4 `é`), binary strings byte for byte, numbers and
//! temporal values by their exact text. A difference a collation would
//! hide is reported: `'abc'` vs `'ABC'` under a case-insensitive
//! collation, and `'abc'` vs `'abc '` in a `VARCHAR` (PAD SPACE collations
//! ignore trailing spaces in comparisons, but replication must keep them)
//! are "different". Rows are matched by primary key under the key's own
//! collation (the order `ORDER BY` gives), so rows keyed `'a'` and `'A'` in a
//! case-insensitive key are the same row, reported as different values.
//!
//! # State
//!
//! The record (`workflows/<wf>/vdiffs/<id>`) holds the report and the
//! resume point (table, last key compared), written after every chunk in
//! one etcd put; a vdiff killed midway resumes from there with a new
//! consistent point (`vdiff resume`). The running process holds
//! `workflows/<wf>/vdiff_runs/<id>` under a lease.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use revdoor_core::keyrange::KeyRange;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_core::names::{Direction, WorkflowName};
use revdoor_core::sqltype::{SqlType, TableSchema};
use revdoor_core::workflow::{
    now_ms, KeyspaceSpec, Phase, ShardSpec, StreamKind, StreamSpec, WorkflowSpec, WorkflowState,
};
use serde::{Deserialize, Serialize};

use crate::lock::LeaseLock;
use crate::registry::Registry;
use crate::shard::{self, redact};
use crate::Error;

/// A hold nobody released stops counting after this long.
pub const HOLD_TTL: Duration = Duration::from_secs(60);
/// TTL of the running process's lease: a killed vdiff can be resumed this
/// long after it died.
pub const RUN_LEASE_TTL: Duration = Duration::from_secs(5);
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
}

impl TableReport {
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.different + self.wrong_shard
    }

    fn sample(&mut self, s: Sample) {
        if self.samples.iter().filter(|x| x.kind == s.kind).count() < SAMPLES_PER_KIND {
            self.samples.push(s);
        }
    }
}

/// One consistent point: when, how long the streams were held, and the
/// origin positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub at_ms: u64,
    pub ms: u64,
    /// Origin shard → GTID position of its snapshot.
    pub positions: BTreeMap<String, String>,
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
    fn param(&self) -> Value {
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
    pub source: String,
    pub target: String,
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

fn sql(what: &str, url: &str) -> impl FnOnce(mysql_async::Error) -> Error {
    let msg = format!("{what} on {}", redact(url));
    move |e| Error::Sql(format!("{msg}: {e}"))
}

/// A workflow's spec and state.
async fn workflow_records(
    reg: &Registry,
    workflow: &WorkflowName,
) -> Result<(WorkflowSpec, WorkflowState), Error> {
    let spec: WorkflowSpec = reg
        .value(&reg.prefix.workflow_spec(workflow))
        .await?
        .ok_or_else(|| Error::Refused(format!("workflow {workflow} does not exist")))?;
    let state: WorkflowState = reg
        .value(&reg.prefix.workflow_state(workflow))
        .await?
        .ok_or_else(|| Error::Refused(format!("workflow {workflow} has no state")))?;
    Ok((spec, state))
}

/// Register a new vdiff of `workflow`'s active direction and return it
/// (run it with [`run`]).
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
    let src = crate::create::keyspace(reg, &rec.source).await?;
    let dst = crate::create::keyspace(reg, &rec.target).await?;
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
            rec.run_processed += rec.tables[rec.current].processed - before;
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

// ------------------------------------------------------------ the point --

/// The snapshots of one consistent point.
struct Point {
    sources: Vec<(ShardSpec, Conn)>,
    targets: Vec<(ShardSpec, Conn)>,
    pause: Pause,
}

async fn session(url: &str) -> Result<Conn, Error> {
    let mut conn = shard::connect(url).await?;
    for stmt in [
        "SET NAMES utf8mb4, SESSION time_zone = '+00:00'",
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    ] {
        conn.query_drop(stmt)
            .await
            .map_err(sql("set vdiff session", url))?;
    }
    Ok(conn)
}

/// Open a consistent snapshot on an origin shard and read its GTID
/// position.
async fn snapshot_source(url: &str) -> Result<(Conn, String), Error> {
    let mut conn = session(url).await?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(sql("start snapshot", url))?;
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(sql("read snapshot position", url))?;
    let find = |name: &str| {
        status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    if let (Some(file), Some(pos)) = (
        find("Binlog_snapshot_file"),
        find("Binlog_snapshot_position"),
    ) {
        // MariaDB: the binlog position of the snapshot, as a GTID position.
        let gtid: Option<String> = conn
            .exec_first(
                "SELECT BINLOG_GTID_POS(?, ?)",
                (file.as_str(), pos.parse::<u64>().unwrap_or(0)),
            )
            .await
            .map_err(sql("read snapshot GTID position", url))?;
        return match gtid {
            Some(g) => Ok((conn, g)),
            None => Err(Error::Sql(format!(
                "{}: BINLOG_GTID_POS({file}, {pos}) is NULL; is the binary log on?",
                redact(url)
            ))),
        };
    }
    // MySQL: no snapshot position; hold writes for a moment instead.
    conn.query_drop("ROLLBACK")
        .await
        .map_err(sql("rollback", url))?;
    let mut lock = session(url).await?;
    lock.query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .map_err(sql("FLUSH TABLES WITH READ LOCK (needs RELOAD)", url))?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(sql("start snapshot", url))?;
    let gtid: Option<String> = conn
        .query_first("SELECT @@global.gtid_executed")
        .await
        .map_err(sql("read GTID position", url))?;
    lock.query_drop("UNLOCK TABLES")
        .await
        .map_err(sql("unlock tables", url))?;
    Ok((conn, gtid.unwrap_or_default()))
}

async fn consistent_point(
    workflow: &WorkflowName,
    direction: Direction,
    src: &KeyspaceSpec,
    dst: &KeyspaceSpec,
    streams: &[StreamSpec],
    hold_timeout: Duration,
) -> Result<Point, Error> {
    let applies: Vec<&StreamSpec> = streams
        .iter()
        .filter(|s| s.kind == StreamKind::Apply)
        .collect();
    let mut origin_of: BTreeMap<i32, String> = BTreeMap::new();
    for c in streams.iter().filter(|s| s.kind == StreamKind::Capture) {
        for (_, p) in &c.routes {
            origin_of.insert(*p, c.shard.to_string());
        }
    }
    if applies.is_empty() {
        return Err(Error::Refused(format!(
            "workflow {workflow} has no {direction} apply streams"
        )));
    }
    let wf = workflow.as_str();
    let dir = direction.as_str();
    // Control connections (holds) of the destinations that have streams.
    let mut ctl: BTreeMap<String, (String, Conn)> = BTreeMap::new();
    for a in &applies {
        if let std::collections::btree_map::Entry::Vacant(e) = ctl.entry(a.shard.to_string()) {
            let mut c = shard::connect(&a.url).await?;
            for ddl in revdoor_apply::STREAM_STATE_DDL {
                c.query_drop(ddl)
                    .await
                    .map_err(sql("create _revdoor.holds", &a.url))?;
            }
            e.insert((a.url.clone(), c));
        }
    }
    let started = Instant::now();
    let at_ms = now_ms();
    // 1. Hold everything.
    for a in &applies {
        let (url, c) = ctl.get_mut(&a.shard.to_string()).ok_or(Error::Conflict)?;
        put_hold(c, url, wf, dir, a.partition, "").await?;
    }
    let result = Box::pin(async {
        // 2. Snapshot the origins.
        let mut sources = Vec::new();
        let mut positions = BTreeMap::new();
        for s in &src.shards {
            let (conn, pos) = snapshot_source(&s.url).await?;
            positions.insert(s.range.to_string(), pos);
            sources.push((s.clone(), conn));
        }
        // 3. Up to each origin's position; marks make captures heartbeat.
        let mut want: BTreeMap<(String, i32), String> = BTreeMap::new();
        for a in &applies {
            let origin = origin_of.get(&a.partition).ok_or_else(|| {
                Error::Refused(format!(
                    "partition {} of workflow {workflow} has no capture stream",
                    a.partition
                ))
            })?;
            let pos = positions.get(origin).cloned().unwrap_or_default();
            let (url, c) = ctl.get_mut(&a.shard.to_string()).ok_or(Error::Conflict)?;
            put_hold(c, url, wf, dir, a.partition, &pos).await?;
            want.insert((a.shard.to_string(), a.partition), pos);
        }
        for s in &src.shards {
            let mut c = shard::connect(&s.url).await?;
            shard::mark(&mut c, &s.url, wf, "revdoor: vdiff consistent point").await?;
        }
        let deadline = Instant::now() + hold_timeout;
        loop {
            let mut behind = Vec::new();
            for ((range, partition), pos) in &want {
                let (url, c) = ctl.get_mut(range).ok_or(Error::Conflict)?;
                let held: Option<Option<String>> = c
                    .exec_first(
                        "SELECT held_gtid FROM _revdoor.holds WHERE workflow = ? AND direction = ? \
                         AND `partition` = ?",
                        (wf, dir, *partition),
                    )
                    .await
                    .map_err(sql("read hold", url))?;
                if held.flatten().as_deref() != Some(pos.as_str()) {
                    behind.push(format!("{dir}.apply.{partition} (into {range})"));
                }
            }
            if behind.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "vdiff: {} did not reach the consistent point within {:?}; are their workers \
                     running and caught up? (`revdoor workflow status {workflow}`)",
                    behind.join(", "),
                    hold_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // 4. Snapshot the destinations.
        let mut targets = Vec::new();
        for s in &dst.shards {
            let mut conn = session(&s.url).await?;
            conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                .await
                .map_err(sql("start snapshot", &s.url))?;
            targets.push((s.clone(), conn));
        }
        Ok((sources, targets, positions))
    })
    .await;
    // Release, whatever happened.
    for (url, c) in ctl.values_mut() {
        if let Err(e) = c
            .exec_drop(
                "DELETE FROM _revdoor.holds WHERE workflow = ? AND direction = ?",
                (wf, dir),
            )
            .await
        {
            tracing::warn!(server = %redact(url), error = %e,
                "could not release a vdiff hold; it expires by itself");
        }
    }
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (sources, targets, positions) = result?;
    Ok(Point {
        sources,
        targets,
        pause: Pause {
            at_ms,
            ms,
            positions,
        },
    })
}

async fn put_hold(
    c: &mut Conn,
    url: &str,
    wf: &str,
    dir: &str,
    partition: i32,
    hold: &str,
) -> Result<(), Error> {
    c.exec_drop(
        "INSERT INTO _revdoor.holds (workflow, direction, `partition`, hold_gtid, until, held_gtid, held_at) \
         VALUES (?, ?, ?, ?, NOW(6) + INTERVAL ? SECOND, NULL, NULL) \
         ON DUPLICATE KEY UPDATE hold_gtid = VALUES(hold_gtid), until = VALUES(until), \
         held_gtid = NULL, held_at = NULL",
        (wf, dir, partition, hold, HOLD_TTL.as_secs()),
    )
    .await
    .map_err(sql("set hold", url))
}

// ------------------------------------------------------------- tables --

/// How a column is read, ordered and checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int {
        unsigned: bool,
    },
    /// Character data: compared as utf8mb4, ordered by `WEIGHT_STRING`.
    Text,
    Binary,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Temporal,
    /// Compared by its text; cannot be part of an ordered key here.
    Other,
}

fn kind(t: &SqlType) -> Kind {
    match t {
        SqlType::TinyInt { unsigned }
        | SqlType::SmallInt { unsigned }
        | SqlType::MediumInt { unsigned }
        | SqlType::Int { unsigned }
        | SqlType::BigInt { unsigned } => Kind::Int {
            unsigned: *unsigned,
        },
        SqlType::Year => Kind::Int { unsigned: true },
        SqlType::String { .. } | SqlType::Json => Kind::Text,
        SqlType::Binary { .. } | SqlType::Geometry => Kind::Binary,
        SqlType::Decimal { precision, scale } => Kind::Decimal {
            precision: *precision,
            scale: *scale,
        },
        SqlType::Date | SqlType::DateTime { .. } | SqlType::Timestamp { .. } => Kind::Temporal,
        _ => Kind::Other,
    }
}

fn q(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

struct TableDef {
    /// `db`.`table`, quoted.
    from: String,
    names: Vec<String>,
    kinds: Vec<Kind>,
    pk: Vec<usize>,
    sharding: Vec<usize>,
    /// Several destination shards: check placement.
    placement: bool,
}

impl TableDef {
    /// `SELECT` list: the order keys of the primary key, then `extra`.
    fn order_exprs(&self) -> Vec<String> {
        self.pk
            .iter()
            .map(|&i| match self.kinds[i] {
                Kind::Text => format!("WEIGHT_STRING({})", q(&self.names[i])),
                _ => q(&self.names[i]),
            })
            .collect()
    }

    fn pk_cols(&self) -> String {
        self.pk
            .iter()
            .map(|&i| q(&self.names[i]))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The sharding key as canonical values (keyspace_id module docs).
    fn sharding_exprs(&self) -> Vec<String> {
        self.sharding
            .iter()
            .map(|&i| {
                let c = q(&self.names[i]);
                match self.kinds[i] {
                    Kind::Int { .. } => c,
                    Kind::Text | Kind::Binary => format!("CAST({c} AS BINARY)"),
                    Kind::Temporal => format!("DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')"),
                    Kind::Decimal { .. } | Kind::Other => format!("CAST({c} AS CHAR)"),
                }
            })
            .collect()
    }

    /// One row's checksum input: every column, unambiguous, as the
    /// comparison rule (module docs) sees it.
    fn row_text(&self) -> String {
        let parts: Vec<String> = self
            .names
            .iter()
            .zip(&self.kinds)
            .map(|(n, k)| {
                let c = q(n);
                let e = match k {
                    Kind::Text => format!("HEX(CONVERT({c} USING utf8mb4))"),
                    Kind::Binary => format!("HEX({c})"),
                    Kind::Temporal => format!("DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')"),
                    _ => format!("HEX(CAST({c} AS CHAR))"),
                };
                format!("IFNULL({e}, 'N')")
            })
            .collect();
        format!("CONCAT_WS(',', {})", parts.join(", "))
    }

    /// `key > last` (or `<= upper`) over the primary key, lexicographic.
    fn compare(
        &self,
        key: &[KeyPart],
        after: bool,
        sql: &mut Vec<String>,
        params: &mut Vec<Value>,
    ) {
        let n = self.pk.len();
        let mut ors = Vec::new();
        for i in 0..n {
            let mut ands = Vec::new();
            for (j, &col) in self.pk.iter().enumerate().take(i + 1) {
                let op = if j < i {
                    "="
                } else if after {
                    ">"
                } else if i + 1 < n {
                    "<"
                } else {
                    "<="
                };
                let param = match self.kinds[col] {
                    Kind::Decimal { precision, scale } => {
                        format!("CAST(? AS DECIMAL({precision},{scale}))")
                    }
                    _ => "?".to_string(),
                };
                ands.push(format!("{} {op} {param}", q(&self.names[col])));
                params.push(key[j].param());
            }
            ors.push(format!("({})", ands.join(" AND ")));
        }
        sql.push(format!("({})", ors.join(" OR ")));
    }

    fn range(&self, after: Option<&[KeyPart]>, upto: Option<&[KeyPart]>) -> (String, Vec<Value>) {
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Some(k) = after {
            self.compare(k, true, &mut conds, &mut params);
        }
        if let Some(k) = upto {
            self.compare(k, false, &mut conds, &mut params);
        }
        if conds.is_empty() {
            ("TRUE".to_string(), params)
        } else {
            (conds.join(" AND "), params)
        }
    }
}

/// A value as text (NULL = `None`); temporal values with six fraction
/// digits.
fn text(v: &Value) -> Option<Vec<u8>> {
    Some(match v {
        Value::NULL => return None,
        Value::Bytes(b) => b.clone(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::UInt(u) => u.to_string().into_bytes(),
        Value::Float(f) => f.to_string().into_bytes(),
        Value::Double(d) => d.to_string().into_bytes(),
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}").into_bytes()
        }
        Value::Time(neg, d, h, mi, s, us) => format!(
            "{}{:02}:{mi:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u64::from(*d) * 24 + u64::from(*h)
        )
        .into_bytes(),
    })
}

fn shown(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_ref().map(|b| match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => format!(
            "0x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    })
}

/// Order of one key column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum OrdPart {
    Int(i128),
    Bytes(Vec<u8>),
}

fn ord_part(kind: Kind, v: &Value) -> Result<OrdPart, String> {
    let t = text(v).ok_or("NULL in a primary key")?;
    let s = String::from_utf8_lossy(&t);
    match kind {
        Kind::Int { .. } => s
            .parse::<i128>()
            .map(OrdPart::Int)
            .map_err(|e| format!("key value {s}: {e}")),
        Kind::Decimal { scale, .. } => {
            let (neg, digits) = s.strip_prefix('-').map_or((false, &*s), |d| (true, d));
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            let mut frac = frac.to_string();
            while frac.len() < usize::from(scale) {
                frac.push('0');
            }
            let n: i128 = format!("{int}{frac}")
                .parse()
                .map_err(|e| format!("key value {s}: {e}"))?;
            Ok(OrdPart::Int(if neg { -n } else { n }))
        }
        _ => Ok(OrdPart::Bytes(t)),
    }
}

fn key_part(kind: Kind, v: &Value) -> Result<KeyPart, String> {
    let t = text(v).ok_or("NULL in a primary key")?;
    Ok(match kind {
        Kind::Int { unsigned: false } => KeyPart::Int(
            String::from_utf8_lossy(&t)
                .parse()
                .map_err(|e| format!("key value: {e}"))?,
        ),
        Kind::Int { unsigned: true } => KeyPart::UInt(
            String::from_utf8_lossy(&t)
                .parse()
                .map_err(|e| format!("key value: {e}"))?,
        ),
        _ => KeyPart::Bytes(t),
    })
}

/// The keyspace id of a row from its sharding expressions' values.
fn ksid(def: &TableDef, vals: &[Value]) -> u64 {
    let texts: Vec<Option<Vec<u8>>> = vals.iter().map(text).collect();
    let keys: Vec<KeyValue<'_>> = def
        .sharding
        .iter()
        .zip(&texts)
        .map(|(&i, t)| match (def.kinds[i], t) {
            (_, None) => KeyValue::Null,
            (Kind::Int { unsigned: false }, Some(t)) => {
                KeyValue::Int(String::from_utf8_lossy(t).parse().unwrap_or_default())
            }
            (Kind::Int { unsigned: true }, Some(t)) => {
                KeyValue::UInt(String::from_utf8_lossy(t).parse().unwrap_or_default())
            }
            (Kind::Text | Kind::Binary, Some(t)) => KeyValue::Bytes(t),
            (_, Some(t)) => KeyValue::Other(String::from_utf8_lossy(t)),
        })
        .collect();
    keyspace_id(&keys)
}

/// One row read for the row-by-row comparison.
struct RowData {
    ord: Vec<OrdPart>,
    vals: Vec<Option<Vec<u8>>>,
    /// Destination shard index it is on (targets) / belongs on.
    shard: usize,
    owner: Option<usize>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sum {
    count: u64,
    a: u64,
    b: u64,
}

impl Point {
    async fn estimate(&mut self, tables: &[TableReport]) -> Result<u64, Error> {
        let mut total = 0u64;
        for (s, c) in &mut self.sources {
            for t in tables {
                let (db, table) = t.table.split_once('.').unwrap_or(("", &t.table));
                let rows: Option<Option<u64>> = c
                    .exec_first(
                        "SELECT TABLE_ROWS FROM information_schema.TABLES \
                         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                        (db, table),
                    )
                    .await
                    .map_err(sql("estimate rows", &s.url))?;
                total += rows.flatten().unwrap_or(0);
            }
        }
        Ok(total)
    }

    async fn table(
        &mut self,
        name: &str,
        sharding_key: Option<&Vec<String>>,
    ) -> Result<TableDef, Error> {
        let (db, table) = name
            .split_once('.')
            .ok_or_else(|| Error::Refused(format!("table {name} must be db.table")))?;
        let (s, c) = self
            .sources
            .first_mut()
            .ok_or_else(|| Error::Refused("source keyspace has no shards".into()))?;
        let schema: TableSchema = revdoor_capture::schema::load_table_schema(c, db, table)
            .await
            .map_err(|e| Error::Refused(format!("vdiff of {name} on {}: {e}", redact(&s.url))))?;
        let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        let kinds: Vec<Kind> = schema.columns.iter().map(|c| kind(&c.sql_type)).collect();
        let idx = |col: &str| names.iter().position(|n| n == col);
        let pk: Vec<usize> = schema.primary_key.iter().filter_map(|c| idx(c)).collect();
        for &i in &pk {
            let ok = match kinds[i] {
                Kind::Other => false,
                Kind::Decimal { precision, .. } => precision <= 38,
                Kind::Text => matches!(schema.columns[i].sql_type, SqlType::String { .. }),
                _ => true,
            };
            if !ok {
                return Err(Error::Refused(format!(
                    "vdiff cannot order {name} by its primary-key column {} ({:?}); compare this \
                     table with `CHECKSUM TABLE` instead, or leave it out with --tables",
                    names[i], schema.columns[i].sql_type
                )));
            }
        }
        let sharding: Vec<usize> = match sharding_key {
            Some(cols) => cols.iter().filter_map(|c| idx(c)).collect(),
            None => pk.clone(),
        };
        Ok(TableDef {
            from: format!("{}.{}", q(db), q(table)),
            names,
            kinds,
            pk,
            sharding,
            placement: self.targets.len() > 1,
        })
    }

    /// Compare the chunk after `last`; advance `last`. True when the table
    /// is done.
    async fn chunk(
        &mut self,
        def: &TableDef,
        rows: u64,
        last: &mut Option<Vec<KeyPart>>,
        report: &mut TableReport,
    ) -> Result<bool, Error> {
        let upper = self.boundary(def, rows, last.as_deref()).await?;
        let upto = upper.as_ref().map(|(_, k)| k.as_slice());
        let (cond, params) = def.range(last.as_deref(), upto);
        let checksum = format!(
            "SELECT COUNT(*), IFNULL(BIT_XOR(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0), \
             IFNULL(BIT_XOR(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) \
             FROM (SELECT MD5({}) AS h FROM {} WHERE {cond}) AS x",
            def.row_text(),
            def.from
        );
        let (src, dst) = tokio::join!(
            side_sum(&mut self.sources, &checksum, &params),
            side_sum(&mut self.targets, &checksum, &params)
        );
        let (src, dst) = (src?, dst?);
        if src == dst {
            report.processed += src.count;
            report.matching += src.count;
            if def.placement {
                self.placement(def, &cond, &params, report).await?;
            }
        } else {
            self.rows(def, &cond, &params, report).await?;
        }
        match upper {
            Some((_, k)) => {
                *last = Some(k);
                Ok(false)
            }
            None => Ok(true),
        }
    }

    /// The chunk's last key: the smallest, over the origin shards, of the
    /// `rows`-th key after `last` (None: the rest of the table).
    async fn boundary(
        &mut self,
        def: &TableDef,
        rows: u64,
        last: Option<&[KeyPart]>,
    ) -> Result<Option<(Vec<OrdPart>, Vec<KeyPart>)>, Error> {
        let (cond, params) = def.range(last, None);
        let order = def.order_exprs();
        let query = format!(
            "SELECT {}, {} FROM {} WHERE {cond} ORDER BY {} LIMIT 1 OFFSET {}",
            order.join(", "),
            def.pk_cols(),
            def.from,
            def.pk_cols(),
            rows.saturating_sub(1)
        );
        let n = def.pk.len();
        let mut best: Option<(Vec<OrdPart>, Vec<KeyPart>)> = None;
        for (s, c) in &mut self.sources {
            let row: Option<mysql_async::Row> = c
                .exec_first(query.as_str(), params.clone())
                .await
                .map_err(sql("find chunk boundary", &s.url))?;
            let Some(row) = row else { continue };
            let vals = row.unwrap();
            let mut ord = Vec::with_capacity(n);
            let mut key = Vec::with_capacity(n);
            for (j, &col) in def.pk.iter().enumerate() {
                ord.push(ord_part(def.kinds[col], &vals[j]).map_err(Error::Sql)?);
                key.push(key_part(def.kinds[col], &vals[n + j]).map_err(Error::Sql)?);
            }
            if best.as_ref().is_none_or(|(b, _)| ord < *b) {
                best = Some((ord, key));
            }
        }
        Ok(best)
    }

    /// With several destination shards: every destination row of the
    /// chunk is on the shard that owns its keyspace id.
    async fn placement(
        &mut self,
        def: &TableDef,
        cond: &str,
        params: &[Value],
        report: &mut TableReport,
    ) -> Result<(), Error> {
        let query = format!(
            "SELECT {}, {} FROM {} WHERE {cond}",
            def.pk_cols(),
            def.sharding_exprs().join(", "),
            def.from
        );
        let ranges: Vec<KeyRange> = self.targets.iter().map(|(s, _)| s.range).collect();
        let n = def.pk.len();
        for (i, (s, c)) in self.targets.iter_mut().enumerate() {
            let rows: Vec<mysql_async::Row> = c
                .exec(query.as_str(), params.to_vec())
                .await
                .map_err(sql("check placement", &s.url))?;
            for row in rows {
                let vals = row.unwrap();
                let id = ksid(def, &vals[n..]);
                if !ranges[i].contains(id) {
                    report.wrong_shard += 1;
                    let owner = ranges.iter().find(|r| r.contains(id));
                    let key = key_text(def, &vals[..n]);
                    report.sample(Sample {
                        kind: "wrong_shard".into(),
                        key,
                        shard: format!(
                            "found on {}, belongs on {}",
                            ranges[i],
                            owner.map(ToString::to_string).unwrap_or_default()
                        ),
                        source: None,
                        target: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Row-by-row comparison of a chunk whose checksums differ.
    async fn rows(
        &mut self,
        def: &TableDef,
        cond: &str,
        params: &[Value],
        report: &mut TableReport,
    ) -> Result<(), Error> {
        let mut select = def.order_exprs();
        select.extend(def.names.iter().map(|n| q(n)));
        if def.placement {
            select.extend(def.sharding_exprs());
        }
        let query = format!(
            "SELECT {} FROM {} WHERE {cond}",
            select.join(", "),
            def.from
        );
        let ranges: Vec<KeyRange> = self.targets.iter().map(|(s, _)| s.range).collect();
        let (src, dst) = tokio::join!(
            read_rows(def, &mut self.sources, &query, params, &ranges),
            read_rows(def, &mut self.targets, &query, params, &ranges)
        );
        let (src, dst) = (src?, dst?);
        // Group destination copies of one key; pick the one on its shard.
        let mut groups: Vec<&RowData> = Vec::new();
        let mut i = 0;
        while i < dst.len() {
            let mut j = i;
            while j < dst.len() && dst[j].ord == dst[i].ord {
                j += 1;
            }
            let copies = &dst[i..j];
            let mut chosen = &copies[0];
            for c in copies {
                if def.placement && c.owner != Some(c.shard) {
                    report.wrong_shard += 1;
                    report.sample(Sample {
                        kind: "wrong_shard".into(),
                        key: key_of(def, c),
                        shard: format!(
                            "found on {}, belongs on {}",
                            ranges[c.shard],
                            c.owner.map(|o| ranges[o].to_string()).unwrap_or_default()
                        ),
                        source: None,
                        target: Some(row_map(def, c)),
                    });
                } else {
                    chosen = c;
                }
            }
            groups.push(chosen);
            i = j;
        }
        let target_shard = |r: &RowData| {
            if def.placement {
                r.owner.map(|o| ranges[o].to_string()).unwrap_or_default()
            } else {
                ranges.first().map(ToString::to_string).unwrap_or_default()
            }
        };
        let (mut a, mut b) = (0, 0);
        while a < src.len() || b < groups.len() {
            let order = match (src.get(a), groups.get(b)) {
                (Some(s), Some(t)) => s.ord.cmp(&t.ord),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    let s = &src[a];
                    report.processed += 1;
                    report.missing += 1;
                    report.sample(Sample {
                        kind: "missing".into(),
                        key: key_of(def, s),
                        shard: target_shard(s),
                        source: Some(row_map(def, s)),
                        target: None,
                    });
                    a += 1;
                }
                Ordering::Greater => {
                    let t = groups[b];
                    report.extra += 1;
                    report.sample(Sample {
                        kind: "extra".into(),
                        key: key_of(def, t),
                        shard: ranges[t.shard].to_string(),
                        source: None,
                        target: Some(row_map(def, t)),
                    });
                    b += 1;
                }
                Ordering::Equal => {
                    let (s, t) = (&src[a], groups[b]);
                    report.processed += 1;
                    if s.vals == t.vals {
                        report.matching += 1;
                    } else {
                        report.different += 1;
                        report.sample(Sample {
                            kind: "different".into(),
                            key: key_of(def, s),
                            shard: ranges[t.shard].to_string(),
                            source: Some(row_map(def, s)),
                            target: Some(row_map(def, t)),
                        });
                    }
                    a += 1;
                    b += 1;
                }
            }
        }
        Ok(())
    }
}

/// A chunk's rows from every shard of one side, in key order.
async fn read_rows(
    def: &TableDef,
    conns: &mut [(ShardSpec, Conn)],
    query: &str,
    params: &[Value],
    ranges: &[KeyRange],
) -> Result<Vec<RowData>, Error> {
    let mut out = Vec::new();
    for (i, (s, c)) in conns.iter_mut().enumerate() {
        let rows: Vec<mysql_async::Row> = c
            .exec(query, params.to_vec())
            .await
            .map_err(sql("read chunk rows", &s.url))?;
        for row in rows {
            out.push(row_data(def, row.unwrap(), i, ranges)?);
        }
    }
    out.sort_by(|a, b| a.ord.cmp(&b.ord));
    Ok(out)
}

async fn side_sum(
    conns: &mut [(ShardSpec, Conn)],
    query: &str,
    params: &[Value],
) -> Result<Sum, Error> {
    let mut total = Sum::default();
    for (s, c) in conns.iter_mut() {
        let row: Option<(u64, u64, u64)> = c
            .exec_first(query, params.to_vec())
            .await
            .map_err(sql("checksum chunk", &s.url))?;
        let (count, a, b) = row.unwrap_or_default();
        total.count += count;
        total.a ^= a;
        total.b ^= b;
    }
    Ok(total)
}

fn row_data(
    def: &TableDef,
    vals: Vec<Value>,
    shard: usize,
    ranges: &[KeyRange],
) -> Result<RowData, Error> {
    let n = def.pk.len();
    let cols = def.names.len();
    let mut ord = Vec::with_capacity(n);
    for (j, &col) in def.pk.iter().enumerate() {
        ord.push(ord_part(def.kinds[col], &vals[j]).map_err(Error::Sql)?);
    }
    let owner = if def.placement {
        let id = ksid(def, &vals[n + cols..]);
        ranges.iter().position(|r| r.contains(id))
    } else {
        None
    };
    Ok(RowData {
        ord,
        vals: vals[n..n + cols].iter().map(text).collect(),
        shard,
        owner,
    })
}

/// `col=value,…` of a primary key, from its values in key order.
fn key_text(def: &TableDef, vals: &[Value]) -> String {
    key_string(def, vals.iter().map(text))
}

/// `col=value,…` of a row's primary key.
fn key_of(def: &TableDef, r: &RowData) -> String {
    key_string(def, def.pk.iter().map(|&i| r.vals[i].clone()))
}

fn key_string(def: &TableDef, vals: impl Iterator<Item = Option<Vec<u8>>>) -> String {
    def.pk
        .iter()
        .zip(vals)
        .map(|(&i, v)| {
            format!(
                "{}={}",
                def.names[i],
                shown(&v).unwrap_or_else(|| "NULL".into())
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn row_map(def: &TableDef, r: &RowData) -> BTreeMap<String, Option<String>> {
    def.names
        .iter()
        .zip(&r.vals)
        .map(|(n, v)| (n.clone(), shown(v)))
        .collect()
}
