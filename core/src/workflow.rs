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

use serde::{Deserialize, Serialize};

use crate::keyrange::KeyRange;
use crate::names::Direction;

/// One shard of a keyspace: a key range and its primary server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub range: KeyRange,
    /// `mysql://user:password@host:port` of revdoor's account on the
    /// shard's primary. revdoor's apply writes through this account, and
    /// fences exempt exactly this user.
    pub url: String,
}

/// A keyspace: its shards, which cover the key space without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceSpec {
    pub name: String,
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
    pub name: String,
    pub source: String,
    pub target: String,
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

/// One finished switch, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchSummary {
    pub request: String,
    pub action: String,
    pub epoch: u64,
    /// Write-unavailability window: fence installed → other side unfenced.
    pub window_ms: u64,
    pub finished_ms: u64,
}

/// A workflow's state, written by the coordinator leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowState {
    pub phase: Phase,
    /// Routing epoch: + 1 at every flip.
    pub epoch: u64,
    /// Where each origin shard's capture of a direction resumes when that
    /// direction is next started (recorded by the switch that froze it):
    /// `direction → shard → GTID position`.
    #[serde(default)]
    pub resume: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether the reverse topic and streams exist.
    #[serde(default)]
    pub reverse_created: bool,
    #[serde(default)]
    pub switches: Vec<SwitchSummary>,
    /// Keyspaces whose servers a `--fence=read-only` switch made read-only
    /// (made writable again when traffic returns to them, or at complete).
    #[serde(default)]
    pub read_only: std::collections::BTreeSet<String>,
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
    pub workflow: String,
    pub direction: Direction,
    pub kind: StreamKind,
    /// Capture: the origin shard. Apply: the destination shard.
    pub shard: KeyRange,
    /// Server of `shard`.
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
    pub start_position: Option<String>,
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
    pub serving: String,
    /// + 1 at every switch.
    pub epoch: u64,
    pub workflow: String,
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

/// One step of a journaled operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    /// `begin` or `done`.
    pub state: String,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

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
    pub fence_positions: BTreeMap<String, String>,
    /// Positions of the side taking traffic, by shard (where its capture
    /// starts).
    #[serde(default)]
    pub start_positions: BTreeMap<String, String>,
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
    /// Whether `step` finished.
    pub fn done(&self, step: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.step == step && s.state == "done")
    }

    /// Whether `step` started.
    pub fn begun(&self, step: &str) -> bool {
        self.steps.iter().any(|s| s.step == step)
    }
}

/// What a worker reports about a stream it runs (`status/<wf>/<stream>`,
/// under the worker's lease).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    pub worker: String,
    /// `starting`, `running`, `error`.
    pub state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Last GTID position published (capture) or applied (apply).
    pub position: String,
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

    fn ks(name: &str, ranges: &[&str]) -> KeyspaceSpec {
        KeyspaceSpec {
            name: name.into(),
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
            name: "wf".into(),
            source: "a".into(),
            target: "b".into(),
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
            epoch: 3,
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
}
