//! The registry's records (DESIGN §6): keyspaces, workflow specs and
//! states, the streams a workflow runs, routing rules, operator requests
//! and the switch journal. All are JSON values under the etcd prefix (see
//! [`crate::names::EtcdPrefix`]); their shape is part of the operator
//! contract (`--json` prints them).
//!
//! [`plan_streams`] derives a direction's streams from the two keyspaces:
//! one partition per (origin shard, destination shard) pair whose key ranges
//! overlap (DESIGN §2), one capture per origin shard routing to its
//! partitions, one apply per partition.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::gtid::StoredPosition;
use crate::keyrange::KeyRange;
use crate::names::{Direction, KeyspaceName, WorkflowName};

/// One shard of a keyspace: a key range and its primary server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub range: KeyRange,
    /// `mysql://user@host:port?password_env=NAME` (or `password_file=PATH`)
    /// of revdoor's account on the shard's primary: never a password — each
    /// process that connects reads it where the URL says
    /// (`revdoor_mysql::conn`); records of an earlier revdoor may hold
    /// `user:password@` and still work. revdoor's apply writes through this
    /// account (the fences exempt no account: apply passes them with the
    /// side's pass).
    pub url: String,
}

/// A keyspace: its shards, which cover the key space without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceSpec {
    pub name: KeyspaceName,
    pub shards: Vec<ShardSpec>,
}

impl KeyspaceSpec {
    /// The shard named `range`.
    pub fn shard(&self, range: &KeyRange) -> Option<&ShardSpec> {
        self.shards.iter().find(|s| &s.range == range)
    }

    /// The shard holding `keyspace_id`.
    pub fn shard_for(&self, keyspace_id: u64) -> Option<&ShardSpec> {
        self.shards.iter().find(|s| s.range.contains(keyspace_id))
    }
}

/// What `workflow create` was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowSpec {
    pub name: WorkflowName,
    pub source: KeyspaceName,
    pub target: KeyspaceName,
    /// `db.table`, sorted.
    pub tables: Vec<String>,
    /// Sharding key columns by `db.table` when not the primary key.
    #[serde(default)]
    pub sharding_keys: BTreeMap<String, Vec<String>>,
    /// DDL policy of every capture: `stop`, `ignore` or `exec`.
    pub on_ddl: String,
    pub created_ms: u64,
}

/// Workflow states: `copying → running → switched ⇄ reversed`, then
/// `completed`; `cancelled` before any switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Copying,
    Running,
    Switched,
    Reversed,
    Completed,
    Cancelled,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Copying => "copying",
            Phase::Running => "running",
            Phase::Switched => "switched",
            Phase::Reversed => "reversed",
            Phase::Completed => "completed",
            Phase::Cancelled => "cancelled",
        }
    }

    /// The direction whose streams run in this phase (none when finished).
    pub fn active(self) -> Option<Direction> {
        match self {
            Phase::Copying | Phase::Running | Phase::Reversed => Some(Direction::Forward),
            Phase::Switched => Some(Direction::Reverse),
            Phase::Completed | Phase::Cancelled => None,
        }
    }

    /// Which keyspace serves the tables: the source unless switched.
    pub fn serving_target(self) -> bool {
        matches!(self, Phase::Switched | Phase::Completed)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The routing epoch: bumped by every routing flip (and by `complete`), so
/// a reader of a routing rule can tell whether serving moved under it.
/// A fencing number: compared and advanced with [`Epoch::next`], never
/// added to by hand. Serialised as the bare number.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(u64);

impl Epoch {
    /// The epoch of a workflow just created.
    pub const INITIAL: Epoch = Epoch(0);

    pub const fn new(n: u64) -> Self {
        Epoch(n)
    }

    /// The epoch after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Epoch(self.0 + 1)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// One finished switch, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchSummary {
    pub request: String,
    pub action: String,
    pub epoch: Epoch,
    /// Write-unavailability window: fence installed → other side unfenced.
    pub window_ms: u64,
    pub finished_ms: u64,
}

/// A workflow's state, written by the coordinator leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowState {
    pub phase: Phase,
    /// Routing epoch: the next one at every flip.
    pub epoch: Epoch,
    /// Where each origin shard's capture of a direction resumes when that
    /// direction is next started (recorded by the switch that froze it):
    /// `direction → shard → GTID position`.
    #[serde(default)]
    pub resume: BTreeMap<String, BTreeMap<String, StoredPosition>>,
    /// Whether the reverse topic and streams exist.
    #[serde(default)]
    pub reverse_created: bool,
    #[serde(default)]
    pub switches: Vec<SwitchSummary>,
    /// Keyspaces whose servers a `--fence=read-only` switch made read-only
    /// (made writable again when traffic returns to them, or at complete).
    #[serde(default)]
    pub read_only: std::collections::BTreeSet<KeyspaceName>,
    pub updated_ms: u64,
}

/// What a stream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Capture,
    Apply,
}

/// One stream of a workflow: a capture of an origin shard, or the apply of
/// one partition into its destination shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSpec {
    pub workflow: WorkflowName,
    pub direction: Direction,
    pub kind: StreamKind,
    /// Capture: the origin shard. Apply: the destination shard.
    pub shard: KeyRange,
    /// Server of `shard`: its [`ShardSpec::url`], password reference and all.
    pub url: String,
    /// Apply: its partition. Capture: unused (0).
    pub partition: i32,
    /// Capture: destination shard range → partition.
    #[serde(default)]
    pub routes: Vec<(KeyRange, i32)>,
    /// Partitions of the direction topic.
    pub partitions: i32,
    pub tables: Vec<String>,
    #[serde(default)]
    pub sharding_keys: BTreeMap<String, Vec<String>>,
    /// Capture: copy existing rows first (forward streams of `create`).
    #[serde(default)]
    pub copy: bool,
    /// Capture: where to start without a checkpoint, or to skip ahead to
    /// when the checkpoint is older (positions recorded by a switch).
    #[serde(default)]
    pub start_position: Option<StoredPosition>,
    pub on_ddl: String,
}

impl StreamSpec {
    /// Unique within the workflow: `forward.capture.-80`, `reverse.apply.3`.
    pub fn id(&self) -> String {
        match self.kind {
            StreamKind::Capture => format!("{}.capture.{}", self.direction, self.shard),
            StreamKind::Apply => format!("{}.apply.{}", self.direction, self.partition),
        }
    }
}

/// The streams of `direction` from `origin` to `destination`.
pub fn plan_streams(
    spec: &WorkflowSpec,
    origin: &KeyspaceSpec,
    destination: &KeyspaceSpec,
    direction: Direction,
) -> Vec<StreamSpec> {
    let mut pairs = Vec::new();
    for o in &origin.shards {
        for d in &destination.shards {
            if o.range.overlaps(&d.range) {
                pairs.push((o, d));
            }
        }
    }
    let partitions = i32::try_from(pairs.len()).unwrap_or(i32::MAX);
    let base = |kind, shard: &ShardSpec, partition| StreamSpec {
        workflow: spec.name.clone(),
        direction,
        kind,
        shard: shard.range,
        url: shard.url.clone(),
        partition,
        routes: Vec::new(),
        partitions,
        tables: spec.tables.clone(),
        sharding_keys: spec.sharding_keys.clone(),
        copy: false,
        start_position: None,
        on_ddl: spec.on_ddl.clone(),
    };
    let mut streams = Vec::new();
    for o in &origin.shards {
        let mut capture = base(StreamKind::Capture, o, 0);
        capture.routes = pairs
            .iter()
            .enumerate()
            .filter(|(_, (po, _))| po.range == o.range)
            .map(|(p, (_, d))| (d.range, p as i32))
            .collect();
        streams.push(capture);
    }
    for (p, (_, d)) in pairs.iter().enumerate() {
        streams.push(base(StreamKind::Apply, d, p as i32));
    }
    streams
}

/// Where writes to a table go (`/revdoor/routing/<keyspace>/<table>`),
/// written for both the source and the target keyspace of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    /// `db.table`.
    pub table: String,
    /// The keyspace that serves the table now.
    pub serving: KeyspaceName,
    /// The next one at every switch.
    pub epoch: Epoch,
    pub workflow: WorkflowName,
    /// Sharding key columns (empty: the primary key).
    #[serde(default)]
    pub sharding_key: Vec<String>,
}

/// An operator's request, executed by the coordinator leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    SwitchTraffic {
        max_lag_ms: u64,
        timeout_ms: u64,
        #[serde(default)]
        read_only: bool,
    },
    ReverseTraffic {
        max_lag_ms: u64,
        timeout_ms: u64,
        #[serde(default)]
        read_only: bool,
    },
    Complete {
        drop_source: bool,
        rename_source: bool,
        /// Complete even though a stream of the serving direction is
        /// halted, retrying or not reporting (what it did not apply is
        /// lost to the source).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    Cancel {
        keep_data: bool,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::SwitchTraffic { .. } => "switch-traffic",
            Action::ReverseTraffic { .. } => "reverse-traffic",
            Action::Complete { .. } => "complete",
            Action::Cancel { .. } => "cancel",
        }
    }
}

/// A pending request (`workflows/<wf>/request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Also the journal entry number.
    pub id: u64,
    #[serde(flatten)]
    pub action: Action,
    pub requested_ms: u64,
}

/// How a journaled operation ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Running,
    Done,
    /// Undone before the routing flip; nothing changed.
    RolledBack,
    /// Refused before anything was changed.
    Refused,
}

/// A step of a journaled operation, by its journal name. Recovery decides
/// from which steps began and finished; the names are part of the journal's
/// stored form (and `workflow status` prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    // The cutover (switch-traffic, reverse-traffic), in order.
    Check,
    Fence,
    CatchUp,
    RecordPositions,
    CreateStreams,
    FlipRouting,
    Unfence,
    /// A cutover undone before the flip.
    Rollback,
    // complete and cancel.
    StopStreams,
    RemoveFences,
    RemoveStreams,
    RenameSource,
    DropSource,
}

impl Step {
    /// The journal name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Check => "check",
            Step::Fence => "fence",
            Step::CatchUp => "catch-up",
            Step::RecordPositions => "record-positions",
            Step::CreateStreams => "create-streams",
            Step::FlipRouting => "flip-routing",
            Step::Unfence => "unfence",
            Step::Rollback => "rollback",
            Step::StopStreams => "stop-streams",
            Step::RemoveFences => "remove-fences",
            Step::RemoveStreams => "remove-streams",
            Step::RenameSource => "rename-source",
            Step::DropSource => "drop-source",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a step is: every step is journaled when it begins and when done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Begin,
    Done,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Begin => "begin",
            StepState::Done => "done",
        }
    }
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One step of a journaled operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: Step,
    pub state: StepState,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// When the record was made, in µs since the coordinator that made it
    /// took the request up (its monotonic clock): with the begin and done
    /// records of a step, where a switch's time goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_us: Option<u64>,
    /// On a done record: how long the step's own work took, in µs — its
    /// journal writes (begin, done) not included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_us: Option<u64>,
    /// On a done record: where the step's work went, by part, µs (the
    /// catch-up's [`CATCH_UP_PARTS`]); empty for most steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts_us: BTreeMap<String, u64>,
}

/// The parts of a catch-up, in order, for the slowest apply stream: until
/// capture had read the fence from the origin's binlog (`capture`), until
/// apply had read the fence's heartbeat from Kafka (`kafka`: published in a
/// Kafka transaction and fetched), until the coordinator saw it applied
/// (`apply`: the group committed with its checkpoint, and the
/// coordinator's poll). Measured on the clocks of capture, apply and the
/// coordinator: exact when they run on one machine, as good as their
/// clocks agree otherwise.
pub const CATCH_UP_PARTS: [&str; 3] = ["capture", "kafka", "apply"];

/// The journal of one request (`workflows/<wf>/journal/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub request: Request,
    pub outcome: Outcome,
    pub steps: Vec<StepRecord>,
    /// Why it was refused or rolled back.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Fence positions of the side being fenced, by shard.
    #[serde(default)]
    pub fence_positions: BTreeMap<String, StoredPosition>,
    /// Positions of the side taking traffic, by shard (where its capture
    /// starts).
    #[serde(default)]
    pub start_positions: BTreeMap<String, StoredPosition>,
    #[serde(default)]
    pub fenced_at_ms: Option<u64>,
    #[serde(default)]
    pub unfenced_at_ms: Option<u64>,
    #[serde(default)]
    pub window_ms: Option<u64>,
    /// The coordinator that ran (or last resumed) it.
    pub coordinator: String,
}

impl JournalEntry {
    /// The entry of `request` as `coordinator` starts it: running, no
    /// step yet.
    pub fn new(request: Request, coordinator: String) -> Self {
        JournalEntry {
            request,
            outcome: Outcome::Running,
            steps: Vec::new(),
            reason: String::new(),
            fence_positions: BTreeMap::new(),
            start_positions: BTreeMap::new(),
            fenced_at_ms: None,
            unfenced_at_ms: None,
            window_ms: None,
            coordinator,
        }
    }

    /// Whether `step` finished.
    pub fn done(&self, step: Step) -> bool {
        self.finished_at(step).is_some()
    }

    /// Whether `step` started.
    pub fn begun(&self, step: Step) -> bool {
        self.steps.iter().any(|s| s.step == step)
    }

    /// When `step` finished, by the journal.
    pub fn finished_at(&self, step: Step) -> Option<u64> {
        self.steps
            .iter()
            .find(|s| s.step == step && s.state == StepState::Done)
            .map(|s| s.at_ms)
    }

    /// Append a record of `step` reaching `state` now.
    /// Add a record made `t_us` into the request (see [`StepRecord`]);
    /// `work_us` on a done record whose work was timed.
    pub fn record(
        &mut self,
        step: Step,
        state: StepState,
        detail: String,
        t_us: u64,
        work_us: Option<u64>,
    ) {
        self.steps.push(StepRecord {
            step,
            state,
            at_ms: now_ms(),
            detail,
            t_us: Some(t_us),
            work_us,
            parts_us: BTreeMap::new(),
        });
    }

    /// Set the parts of the last done record of `step` (see
    /// [`StepRecord::parts_us`]).
    pub fn set_parts(&mut self, step: Step, parts: BTreeMap<String, u64>) {
        if let Some(r) = self
            .steps
            .iter_mut()
            .rev()
            .find(|r| r.step == step && r.state == StepState::Done)
        {
            r.parts_us = parts;
        }
    }

    /// The parts of each step that finished with some (in step order), µs.
    pub fn step_parts_us(&self) -> Vec<(Step, &BTreeMap<String, u64>)> {
        self.steps
            .iter()
            .filter(|s| s.state == StepState::Done && !s.parts_us.is_empty())
            .map(|s| (s.step, &s.parts_us))
            .collect()
    }

    /// The timed work of each step that finished (in step order), µs.
    pub fn step_work_us(&self) -> Vec<(Step, u64)> {
        self.steps
            .iter()
            .filter(|s| s.state == StepState::Done)
            .filter_map(|s| Some((s.step, s.work_us?)))
            .collect()
    }
}

/// A stream task's state as its worker reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// Assigned, connecting or (re)starting after an error.
    #[default]
    Starting,
    Running,
    /// Stopped by an error (in `error`) it retries after a backoff.
    Error,
    /// Stopped by a definite error (in `error`): retrying alone will not
    /// get it past it, an operator must act. The worker still restarts it
    /// with a capped backoff, and it reads `halted` until a restarted run
    /// has made progress for a while.
    Halted,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Starting => "starting",
            StreamState::Running => "running",
            StreamState::Error => "error",
            StreamState::Halted => "halted",
        }
    }
}

impl fmt::Display for StreamState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a worker reports about a stream it runs (`status/<wf>/<stream>`,
/// under the worker's lease).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    pub worker: String,
    pub state: StreamState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// When the worker first reported an error in this run of errors (ms
    /// since the epoch): kept across retries and restarts until the stream
    /// runs without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_since_ms: Option<u64>,
    /// Last GTID position published (capture) or applied (apply).
    pub position: StoredPosition,
    /// Source commit time of the last event applied or heartbeat seen.
    pub source_ts_ms: u64,
    pub events: u64,
    pub events_per_s: f64,
    /// Copy: rows copied, estimated total, done.
    pub copy_rows: u64,
    pub copy_total: u64,
    pub copy_done: bool,
    pub updated_ms: u64,
}

impl StreamStatus {
    /// Replication lag at `now_ms`: now − source time of the last thing
    /// applied (an idle source sends heartbeats, so this stays small).
    pub fn lag_ms(&self, now_ms: u64) -> Option<u64> {
        (self.source_ts_ms > 0).then(|| now_ms.saturating_sub(self.source_ts_ms))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh journal entry of a `cancel` request.
    fn cancel_entry() -> JournalEntry {
        JournalEntry::new(
            Request {
                id: 1,
                action: Action::Cancel { keep_data: false },
                requested_ms: 0,
            },
            "c".into(),
        )
    }

    #[test]
    fn step_work_is_taken_from_timed_done_records() {
        let mut e = cancel_entry();
        e.record(Step::Fence, StepState::Begin, String::new(), 10, None);
        e.record(Step::Fence, StepState::Done, String::new(), 900, Some(700));
        e.record(
            Step::FlipRouting,
            StepState::Begin,
            String::new(),
            950,
            None,
        );
        e.record(Step::FlipRouting, StepState::Done, String::new(), 990, None);
        assert_eq!(e.step_work_us(), vec![(Step::Fence, 700)]);
        assert!(e.done(Step::FlipRouting));
        let json = serde_json::to_value(&e.steps[1]).expect("json");
        assert_eq!(
            (json["t_us"].as_u64(), json["work_us"].as_u64()),
            (Some(900), Some(700))
        );
        // Records without timings (older journals) still read, and write
        // no timing fields.
        let old: StepRecord =
            serde_json::from_str(r#"{"step":"fence","state":"done","at_ms":5}"#).expect("old");
        assert_eq!((old.t_us, old.work_us), (None, None));
        assert!(!serde_json::to_string(&old).expect("json").contains("_us"));
    }

    #[test]
    fn parts_go_on_the_last_done_record_of_their_step() {
        let mut e = cancel_entry();
        e.record(Step::CatchUp, StepState::Begin, String::new(), 10, None);
        // Not done yet: nothing to put them on.
        e.set_parts(Step::CatchUp, BTreeMap::from([("capture".into(), 1)]));
        assert!(e.step_parts_us().is_empty());
        e.record(Step::CatchUp, StepState::Done, String::new(), 90, Some(80));
        let parts = BTreeMap::from([("capture".to_string(), 20), ("kafka".to_string(), 60)]);
        e.set_parts(Step::CatchUp, parts.clone());
        assert_eq!(e.step_parts_us(), vec![(Step::CatchUp, &parts)]);
        let back: StepRecord =
            serde_json::from_value(serde_json::to_value(&e.steps[1]).expect("json")).expect("read");
        assert_eq!(back.parts_us, parts);
        assert!(!serde_json::to_string(&e.steps[0])
            .expect("json")
            .contains("parts_us"));
    }

    fn ks(name: &str, ranges: &[&str]) -> KeyspaceSpec {
        KeyspaceSpec {
            name: name.parse().expect("keyspace name"),
            shards: ranges
                .iter()
                .map(|r| ShardSpec {
                    range: r.parse().expect("range"),
                    url: format!("mysql://{name}{r}"),
                })
                .collect(),
        }
    }

    fn spec() -> WorkflowSpec {
        WorkflowSpec {
            name: "wf".parse().expect("workflow name"),
            source: "a".parse().expect("keyspace name"),
            target: "b".parse().expect("keyspace name"),
            tables: vec!["d.t".into()],
            sharding_keys: BTreeMap::new(),
            on_ddl: "stop".into(),
            created_ms: 0,
        }
    }

    fn routes(s: &StreamSpec) -> Vec<(String, i32)> {
        s.routes.iter().map(|(r, p)| (r.to_string(), *p)).collect()
    }

    #[test]
    fn one_to_two_shards_has_two_partitions() {
        let streams = plan_streams(
            &spec(),
            &ks("a", &["-"]),
            &ks("b", &["-80", "80-"]),
            Direction::Forward,
        );
        assert_eq!(streams.len(), 3);
        assert_eq!(streams[0].id(), "forward.capture.-");
        assert_eq!(
            routes(&streams[0]),
            vec![("-80".into(), 0), ("80-".into(), 1)]
        );
        assert_eq!(streams[1].id(), "forward.apply.0");
        assert_eq!(streams[1].url, "mysql://b-80");
        assert_eq!(streams[2].url, "mysql://b80-");
        assert!(streams.iter().all(|s| s.partitions == 2));
    }

    #[test]
    fn n_to_m_pairs_only_overlapping_ranges() {
        // 2 → 4: each origin overlaps two destinations: 4 = N + M − 2 pairs.
        let streams = plan_streams(
            &spec(),
            &ks("a", &["-80", "80-"]),
            &ks("b", &["-40", "40-80", "80-c0", "c0-"]),
            Direction::Forward,
        );
        let captures: Vec<_> = streams
            .iter()
            .filter(|s| s.kind == StreamKind::Capture)
            .collect();
        assert_eq!(
            routes(captures[0]),
            vec![("-40".into(), 0), ("40-80".into(), 1)]
        );
        assert_eq!(
            routes(captures[1]),
            vec![("80-c0".into(), 2), ("c0-".into(), 3)]
        );
        // 3 → 2 with a straddling range: -55 | 55-aa | aa- onto -80 | 80-.
        let streams = plan_streams(
            &spec(),
            &ks("a", &["-55", "55-aa", "aa-"]),
            &ks("b", &["-80", "80-"]),
            Direction::Reverse,
        );
        let applies = streams
            .iter()
            .filter(|s| s.kind == StreamKind::Apply)
            .count();
        assert_eq!(applies, 4, "N + M − 1 pairs");
        let mid = streams
            .iter()
            .find(|s| s.id() == "reverse.capture.55-aa")
            .expect("capture");
        assert_eq!(routes(mid), vec![("-80".into(), 1), ("80-".into(), 2)]);
    }

    #[test]
    fn records_round_trip_as_json() {
        let req = Request {
            id: 7,
            action: Action::SwitchTraffic {
                max_lag_ms: 5000,
                timeout_ms: 30000,
                read_only: false,
            },
            requested_ms: 1,
        };
        let text = serde_json::to_string(&req).expect("json");
        assert!(text.contains("\"action\":\"switch-traffic\""), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).expect("parse"), req);
        let state = WorkflowState {
            phase: Phase::Switched,
            epoch: Epoch::new(3),
            resume: BTreeMap::new(),
            reverse_created: true,
            switches: Vec::new(),
            read_only: Default::default(),
            updated_ms: 2,
        };
        let text = serde_json::to_string(&state).expect("json");
        assert!(text.contains("\"phase\":\"switched\""), "{text}");
        assert_eq!(
            serde_json::from_str::<WorkflowState>(&text).expect("parse"),
            state
        );
        assert_eq!(Phase::Switched.active(), Some(Direction::Reverse));
        assert!(Phase::Switched.serving_target() && !Phase::Reversed.serving_target());
    }

    /// A journal entry and a state as today's code writes them load and
    /// serialise back byte for byte (steps and epochs are typed now).
    #[test]
    fn journal_and_state_keep_their_stored_form() {
        let names = [
            "check",
            "fence",
            "catch-up",
            "record-positions",
            "create-streams",
            "flip-routing",
            "unfence",
            "rollback",
            "stop-streams",
            "remove-fences",
            "remove-streams",
            "rename-source",
            "drop-source",
        ];
        let steps: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let state = if i % 2 == 0 { "begin" } else { "done" };
                let detail = if i == 1 {
                    r#","detail":"{\"-\": \"0-1-5\"}""#
                } else {
                    ""
                };
                format!(r#"{{"step":"{n}","state":"{state}","at_ms":{i}{detail}}}"#)
            })
            .collect();
        let journal = format!(
            r#"{{"request":{{"id":4,"action":"reverse-traffic","max_lag_ms":5000,"timeout_ms":30000,"read_only":true,"requested_ms":9}},"outcome":"rolled-back","steps":[{}],"reason":"why","fence_positions":{{"-":"0-1-5"}},"start_positions":{{}},"fenced_at_ms":10,"unfenced_at_ms":null,"window_ms":null,"coordinator":"c1"}}"#,
            steps.join(",")
        );
        let e: JournalEntry = serde_json::from_str(&journal).expect("journal");
        assert_eq!(serde_json::to_string(&e).expect("json"), journal);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(e.steps[i].step.as_str(), *n);
            assert_eq!(e.steps[i].step.to_string(), *n);
        }
        assert!(e.begun(Step::Check) && !e.done(Step::Check));
        assert!(e.done(Step::Fence) && e.finished_at(Step::Fence) == Some(1));

        let state = r#"{"phase":"reversed","epoch":7,"resume":{"forward":{"-80":"0-1-9"}},"reverse_created":true,"switches":[{"request":"3","action":"switch-traffic","epoch":6,"window_ms":31,"finished_ms":5}],"read_only":["a"],"updated_ms":8}"#;
        let st: WorkflowState = serde_json::from_str(state).expect("state");
        assert_eq!(st.epoch, Epoch::new(6).next());
        assert!(st.switches[0].epoch < st.epoch);
        assert_eq!(serde_json::to_string(&st).expect("json"), state);
        let rule = r#"{"table":"d.t","serving":"b","epoch":2,"workflow":"wf","sharding_key":[]}"#;
        let r: RoutingRule = serde_json::from_str(rule).expect("rule");
        assert_eq!(r.epoch.to_string(), "2");
        assert_eq!(serde_json::to_string(&r).expect("json"), rule);
    }
}
