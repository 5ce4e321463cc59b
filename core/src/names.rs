//! Every Kafka topic, transactional id and etcd key revdoor uses, built in
//! one place.
//!
//! # Kafka
//!
//! | what                        | name                                              |
//! |-----------------------------|---------------------------------------------------|
//! | change events of a stream   | `revdoor.<workflow>.<direction>`                  |
//! | capture checkpoints         | `revdoor.<workflow>.offsets` (compacted)          |
//! | table schemas               | `revdoor.schemas`                                 |
//! | producer `transactional.id` | `revdoor.<workflow>.<direction>.<origin shard>`   |
//!
//! | capture checkpoint key      | `<direction>.<origin shard>` (in the offsets topic) |
//! | apply consumer group        | `revdoor.<workflow>.<direction>.apply`            |
//! | capture checkpoint reader   | `revdoor.<workflow>.<direction>.<origin shard>.checkpoint-reader` |
//! | schema reader group         | `revdoor.schema-reader`                           |
//!
//! The origin shard is written as its key range name (`-80`, `80-`, `-`).
//! A capture stream is named by its [`StreamId`]; an apply stream by its
//! topic and partition ([`topic_partition`], `revdoor.<workflow>.<direction>/<partition>`).
//!
//! # etcd
//!
//! Keys live under a root prefix ([`EtcdPrefix`], default `/revdoor/`; tests
//! use their own, e.g. `/test-abc/revdoor/`):
//!
//! ```text
//! <root>keyspaces/<keyspace>
//! <root>workflows/<workflow>/spec
//! <root>workflows/<workflow>/state
//! <root>workflows/<workflow>/request           the pending operator request
//! <root>workflows/<workflow>/streams/<stream>   stream spec, e.g. forward.capture.-80
//! <root>workflows/<workflow>/owners/<stream>    ownership (leased; revision = fence token)
//! <root>workflows/<workflow>/status/<stream>    worker's report (leased)
//! <root>assignments/<worker>/<workflow>/<stream>
//! <root>workflows/<workflow>/journal/<n>      n zero-padded to 20 digits
//! <root>leader
//! <root>workers/<id>
//! <root>locks/<name>
//! <root>routing/<keyspace>/<table>
//! <root>workflows/<workflow>/streams/<direction>/<partition>/apply-owner
//!                                              `apply run --own`'s ownership
//! ```
//!
//! Journal numbers are zero-padded so that etcd's byte-ordered range reads
//! return the switch journal in numeric order.
//!
//! # Names
//!
//! Workflow and keyspace names ([`WorkflowName`], [`KeyspaceName`]) are
//! 1 to 48 characters of `[a-z0-9_]` starting with a letter, so they are
//! safe in Kafka topic names (which allow `[a-zA-Z0-9._-]`, up to 249
//! characters) and as single etcd key segments.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::keyrange::KeyRange;

/// Longest workflow or keyspace name.
const MAX_NAME_LEN: usize = 48;

/// Why a name or prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid {what} name {name:?}: {reason} (use 1 to {MAX_NAME_LEN} of a-z, 0-9, _ starting with a letter)"
    )]
    Invalid {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("invalid etcd prefix {0:?}: it must start with '/'")]
    EtcdPrefix(String),
    #[error("invalid direction {0:?}: expected forward or reverse")]
    Direction(String),
}

fn validate(what: &'static str, name: &str) -> Result<(), NameError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is too long")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it does not start with a lower-case letter")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some("it has a character other than a-z, 0-9, _")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NameError::Invalid {
            what,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

macro_rules! validated_name {
    ($(#[$doc:meta])* $ty:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;

            fn try_from(name: String) -> Result<Self, Self::Error> {
                validate($what, &name)?;
                Ok($ty(name))
            }
        }

        impl FromStr for $ty {
            type Err = NameError;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                name.to_owned().try_into()
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

validated_name!(
    /// A validated workflow name.
    WorkflowName,
    "workflow"
);
validated_name!(
    /// A validated keyspace name.
    KeyspaceName,
    "keyspace"
);

/// Which way a stream moves rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Source keyspace → target keyspace.
    Forward,
    /// Target keyspace → source keyspace (after a traffic switch).
    Reverse,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        }
    }

    pub fn opposite(self) -> Direction {
        match self {
            Direction::Forward => Direction::Reverse,
            Direction::Reverse => Direction::Forward,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "forward" => Ok(Direction::Forward),
            "reverse" => Ok(Direction::Reverse),
            _ => Err(NameError::Direction(s.to_owned())),
        }
    }
}

// ---------------------------------------------------------------- streams --

/// Identity of one capture stream: a workflow's direction from one origin
/// shard. Its names (topic, transactional id, checkpoint key) are built
/// here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamId {
    pub workflow: WorkflowName,
    pub direction: Direction,
    /// The origin shard.
    pub shard: KeyRange,
}

impl StreamId {
    /// The topic it publishes to ([`topic`]).
    pub fn topic(&self) -> String {
        topic(&self.workflow, self.direction)
    }

    /// Its workflow's checkpoint topic ([`offsets_topic`]).
    pub fn offsets_topic(&self) -> String {
        offsets_topic(&self.workflow)
    }

    /// Its producer's `transactional.id` ([`transactional_id`]); also the
    /// stream's name in logs.
    pub fn transactional_id(&self) -> String {
        transactional_id(&self.workflow, self.direction, &self.shard)
    }

    /// The key of its checkpoint in the offsets topic ([`checkpoint_key`]).
    pub fn checkpoint_key(&self) -> String {
        checkpoint_key(self.direction, &self.shard)
    }

    /// The consumer group that reads its checkpoint back at start.
    pub fn checkpoint_reader_group(&self) -> String {
        format!("{}.checkpoint-reader", self.transactional_id())
    }
}

// ------------------------------------------------------------------ Kafka --

/// The topic of a workflow's change events in one direction.
pub fn topic(workflow: &WorkflowName, direction: Direction) -> String {
    format!("revdoor.{workflow}.{direction}")
}

/// The compacted topic of a workflow's capture checkpoints.
pub fn offsets_topic(workflow: &WorkflowName) -> String {
    format!("revdoor.{workflow}.offsets")
}

/// The topic of published table schemas, shared by all workflows.
pub fn schemas_topic() -> &'static str {
    "revdoor.schemas"
}

/// The `transactional.id` of the capture of one origin shard: a new owner of
/// the stream fences the old one.
pub fn transactional_id(
    workflow: &WorkflowName,
    direction: Direction,
    origin_shard: &KeyRange,
) -> String {
    format!("revdoor.{workflow}.{direction}.{origin_shard}")
}

/// Prefix of every topic of a workflow (its direction topics and its
/// offsets topic).
pub fn workflow_topics_prefix(workflow: &WorkflowName) -> String {
    format!("revdoor.{workflow}.")
}

/// The key of a capture's checkpoint in the offsets topic: one per
/// direction and origin shard.
pub fn checkpoint_key(direction: Direction, origin_shard: &KeyRange) -> String {
    format!("{direction}.{origin_shard}")
}

/// The consumer group id of an apply stream (its offsets are never
/// committed: apply's checkpoint lives in the destination).
pub fn apply_group_id(workflow: &WorkflowName, direction: Direction) -> String {
    format!("{}.apply", topic(workflow, direction))
}

/// The consumer group id of apply's reader of `revdoor.schemas`.
pub fn schema_reader_group_id() -> &'static str {
    "revdoor.schema-reader"
}

/// An apply stream's name: its topic and partition,
/// `revdoor.<workflow>.<direction>/<partition>`.
pub fn topic_partition(workflow: &WorkflowName, direction: Direction, partition: i32) -> String {
    format!("{}/{partition}", topic(workflow, direction))
}

// ------------------------------------------------------------------- etcd --

/// The root under which all of revdoor's etcd keys live; always starts and
/// ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EtcdPrefix(String);

impl Default for EtcdPrefix {
    fn default() -> Self {
        EtcdPrefix("/revdoor/".to_owned())
    }
}

impl EtcdPrefix {
    /// A root prefix; it must start with `/`, and a missing trailing `/` is
    /// added (`/test-abc/revdoor` → `/test-abc/revdoor/`).
    pub fn new(root: impl Into<String>) -> Result<Self, NameError> {
        let mut root = root.into();
        if !root.starts_with('/') {
            return Err(NameError::EtcdPrefix(root));
        }
        if !root.ends_with('/') {
            root.push('/');
        }
        Ok(EtcdPrefix(root))
    }

    /// The root itself: a range read of it covers every revdoor key.
    pub fn root(&self) -> &str {
        &self.0
    }

    fn key(&self, rest: fmt::Arguments<'_>) -> String {
        format!("{}{rest}", self.0)
    }

    /// Prefix of all keyspace definitions.
    pub fn keyspaces(&self) -> String {
        self.key(format_args!("keyspaces/"))
    }

    /// A keyspace's definition (its shards).
    pub fn keyspace(&self, keyspace: &KeyspaceName) -> String {
        self.key(format_args!("keyspaces/{keyspace}"))
    }

    /// Prefix of every workflow's keys.
    pub fn workflows(&self) -> String {
        self.key(format_args!("workflows/"))
    }

    /// Prefix of all keys of one workflow (ends with `/`).
    pub fn workflow(&self, workflow: &WorkflowName) -> String {
        self.key(format_args!("workflows/{workflow}/"))
    }

    /// A workflow's spec, written by `workflow create`.
    pub fn workflow_spec(&self, workflow: &WorkflowName) -> String {
        self.key(format_args!("workflows/{workflow}/spec"))
    }

    /// A workflow's state (phase, switch progress).
    pub fn workflow_state(&self, workflow: &WorkflowName) -> String {
        self.key(format_args!("workflows/{workflow}/state"))
    }

    /// Prefix of a workflow's stream specs.
    pub fn streams(&self, workflow: &WorkflowName) -> String {
        self.key(format_args!("workflows/{workflow}/streams/"))
    }

    /// One stream's spec; `id` as `forward.capture.-80`, `reverse.apply.3`.
    pub fn stream(&self, workflow: &WorkflowName, id: &str) -> String {
        self.key(format_args!("workflows/{workflow}/streams/{id}"))
    }

    /// A stream's ownership key (leased; its revision is the fence token).
    pub fn stream_owner(&self, workflow: &WorkflowName, id: &str) -> String {
        self.key(format_args!("workflows/{workflow}/owners/{id}"))
    }

    /// Prefix of a workflow's stream status reports.
    pub fn statuses(&self, workflow: &WorkflowName) -> String {
        self.key(format_args!("workflows/{workflow}/status/"))
    }

    /// A stream's status report (written by the worker running it, leased).
    pub fn status(&self, workflow: &WorkflowName, id: &str) -> String {
        self.key(format_args!("workflows/{workflow}/status/{id}"))
    }

    /// The operator request waiting for the coordinator.
    pub fn request(&self, workflow: &WorkflowName) -> String {
        self.key(format_args!("workflows/{workflow}/request"))
    }

    /// Prefix of a workflow's switch journal.
    pub fn journal(&self, workflow: &WorkflowName) -> String {
        self.key(format_args!("workflows/{workflow}/journal/"))
    }

    /// Entry `n` of a workflow's switch journal (zero-padded so that range
    /// reads return entries in order).
    pub fn journal_entry(&self, workflow: &WorkflowName, n: u64) -> String {
        self.key(format_args!("workflows/{workflow}/journal/{n:020}"))
    }

    /// Prefix of a workflow's vdiff records (`revdoor vdiff`).
    pub fn vdiffs(&self, workflow: &WorkflowName) -> String {
        self.key(format_args!("workflows/{workflow}/vdiffs/"))
    }

    /// One vdiff's record: its state, resume point and report.
    pub fn vdiff(&self, workflow: &WorkflowName, id: &str) -> String {
        self.key(format_args!("workflows/{workflow}/vdiffs/{id}"))
    }

    /// `vdiff stop`'s request to the process running a vdiff.
    pub fn vdiff_stop(&self, workflow: &WorkflowName, id: &str) -> String {
        self.key(format_args!("workflows/{workflow}/vdiff_stops/{id}"))
    }

    /// Held (leased) by the process running a vdiff.
    pub fn vdiff_run(&self, workflow: &WorkflowName, id: &str) -> String {
        self.key(format_args!("workflows/{workflow}/vdiff_runs/{id}"))
    }

    /// The ownership key `revdoor apply run --own` waits for (an apply
    /// stream run by hand, outside the workers).
    pub fn apply_owner(
        &self,
        workflow: &WorkflowName,
        direction: Direction,
        partition: i32,
    ) -> String {
        self.key(format_args!(
            "workflows/{workflow}/streams/{direction}/{partition}/apply-owner"
        ))
    }

    /// The coordinator leader election key.
    pub fn leader(&self) -> String {
        self.key(format_args!("leader"))
    }

    /// Prefix of all worker registrations.
    pub fn workers(&self) -> String {
        self.key(format_args!("workers/"))
    }

    /// A worker's registration (leased).
    pub fn worker(&self, id: &str) -> String {
        self.key(format_args!("workers/{id}"))
    }

    /// Prefix of the streams assigned to a worker.
    pub fn assignments(&self, worker: &str) -> String {
        self.key(format_args!("assignments/{worker}/"))
    }

    /// Prefix of every assignment.
    pub fn all_assignments(&self) -> String {
        self.key(format_args!("assignments/"))
    }

    /// Stream `id` of `workflow` assigned to `worker`.
    pub fn assignment(&self, worker: &str, workflow: &WorkflowName, id: &str) -> String {
        self.key(format_args!("assignments/{worker}/{workflow}/{id}"))
    }

    /// A named lock.
    pub fn lock(&self, name: &str) -> String {
        self.key(format_args!("locks/{name}"))
    }

    /// Prefix of a keyspace's routing rules.
    pub fn routing_rules(&self, keyspace: &KeyspaceName) -> String {
        self.key(format_args!("routing/{keyspace}/"))
    }

    /// Where writes to `keyspace`.`table` go.
    pub fn routing(&self, keyspace: &KeyspaceName, table: &str) -> String {
        self.key(format_args!("routing/{keyspace}/{table}"))
    }
}

impl TryFrom<String> for EtcdPrefix {
    type Error = NameError;

    fn try_from(root: String) -> Result<Self, Self::Error> {
        EtcdPrefix::new(root)
    }
}

impl From<EtcdPrefix> for String {
    fn from(prefix: EtcdPrefix) -> String {
        prefix.0
    }
}

impl fmt::Display for EtcdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wf(name: &str) -> WorkflowName {
        name.parse().expect("test workflow name")
    }

    fn ks(name: &str) -> KeyspaceName {
        name.parse().expect("test keyspace name")
    }

    #[test]
    fn names_are_validated() {
        assert_eq!(wf("move_orders2").as_str(), "move_orders2");
        assert!(ks(&"a".repeat(48)).as_str().len() == 48);
        for (bad, reason) in [
            ("", "it is empty"),
            ("2fast", "it does not start with a lower-case letter"),
            ("_x", "it does not start with a lower-case letter"),
            ("Orders", "it does not start with a lower-case letter"),
            ("orders-v2", "it has a character other than a-z, 0-9, _"),
            ("orders.v2", "it has a character other than a-z, 0-9, _"),
            ("ordérs", "it has a character other than a-z, 0-9, _"),
        ] {
            assert_eq!(
                bad.parse::<WorkflowName>(),
                Err(NameError::Invalid {
                    what: "workflow",
                    name: bad.into(),
                    reason
                }),
            );
        }
        let long = "a".repeat(49);
        let err = long.parse::<KeyspaceName>().expect_err("too long");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid keyspace name {long:?}: it is too long \
                 (use 1 to 48 of a-z, 0-9, _ starting with a letter)"
            )
        );
    }

    #[test]
    fn names_deserialise_validated() {
        assert_eq!(
            serde_json::from_str::<WorkflowName>("\"wf1\"").expect("valid"),
            wf("wf1")
        );
        assert!(serde_json::from_str::<WorkflowName>("\"Wf1\"").is_err());
        assert_eq!(
            serde_json::to_string(&ks("commerce")).expect("serialise"),
            "\"commerce\""
        );
    }

    #[test]
    fn direction() {
        assert_eq!(Direction::Forward.as_str(), "forward");
        assert_eq!(Direction::Forward.opposite(), Direction::Reverse);
        assert_eq!(Direction::Reverse.opposite(), Direction::Forward);
        assert_eq!("reverse".parse::<Direction>(), Ok(Direction::Reverse));
        assert!("Reverse".parse::<Direction>().is_err());
        assert_eq!(
            serde_json::to_string(&Direction::Reverse).expect("serialise"),
            "\"reverse\""
        );
        assert_eq!(
            serde_json::from_str::<Direction>("\"forward\"").expect("deserialise"),
            Direction::Forward
        );
    }

    #[test]
    fn kafka_names() {
        let w = wf("move_orders");
        assert_eq!(topic(&w, Direction::Forward), "revdoor.move_orders.forward");
        assert_eq!(topic(&w, Direction::Reverse), "revdoor.move_orders.reverse");
        assert_eq!(offsets_topic(&w), "revdoor.move_orders.offsets");
        assert_eq!(schemas_topic(), "revdoor.schemas");
        let shard: KeyRange = "-80".parse().expect("range");
        assert_eq!(
            transactional_id(&w, Direction::Reverse, &shard),
            "revdoor.move_orders.reverse.-80"
        );
        assert_eq!(
            transactional_id(&w, Direction::Forward, &KeyRange::FULL),
            "revdoor.move_orders.forward.-"
        );
    }

    #[test]
    fn stream_names() {
        let id = StreamId {
            workflow: wf("move_orders"),
            direction: Direction::Reverse,
            shard: "-80".parse().expect("range"),
        };
        assert_eq!(id.topic(), "revdoor.move_orders.reverse");
        assert_eq!(id.offsets_topic(), "revdoor.move_orders.offsets");
        assert_eq!(id.transactional_id(), "revdoor.move_orders.reverse.-80");
        assert_eq!(id.checkpoint_key(), "reverse.-80");
        assert_eq!(
            id.checkpoint_reader_group(),
            "revdoor.move_orders.reverse.-80.checkpoint-reader"
        );
        assert_eq!(
            checkpoint_key(Direction::Forward, &KeyRange::FULL),
            "forward.-"
        );
        let w = wf("wf");
        assert_eq!(workflow_topics_prefix(&w), "revdoor.wf.");
        assert!(topic(&w, Direction::Forward).starts_with(&workflow_topics_prefix(&w)));
        assert!(offsets_topic(&w).starts_with(&workflow_topics_prefix(&w)));
        assert_eq!(
            apply_group_id(&w, Direction::Forward),
            "revdoor.wf.forward.apply"
        );
        assert_eq!(schema_reader_group_id(), "revdoor.schema-reader");
        assert_eq!(
            topic_partition(&w, Direction::Reverse, 3),
            "revdoor.wf.reverse/3"
        );
    }

    #[test]
    fn etcd_keys_under_default_root() {
        let p = EtcdPrefix::default();
        let (w, k) = (wf("wf"), ks("commerce"));
        assert_eq!(p.root(), "/revdoor/");
        assert_eq!(p.keyspaces(), "/revdoor/keyspaces/");
        assert_eq!(p.keyspace(&k), "/revdoor/keyspaces/commerce");
        assert_eq!(p.workflows(), "/revdoor/workflows/");
        assert_eq!(p.workflow(&w), "/revdoor/workflows/wf/");
        assert_eq!(p.workflow_spec(&w), "/revdoor/workflows/wf/spec");
        assert_eq!(p.workflow_state(&w), "/revdoor/workflows/wf/state");
        assert_eq!(p.streams(&w), "/revdoor/workflows/wf/streams/");
        assert_eq!(
            p.stream(&w, "reverse.apply.3"),
            "/revdoor/workflows/wf/streams/reverse.apply.3"
        );
        assert_eq!(
            p.stream_owner(&w, "forward.capture.-80"),
            "/revdoor/workflows/wf/owners/forward.capture.-80"
        );
        assert_eq!(
            p.status(&w, "forward.apply.0"),
            "/revdoor/workflows/wf/status/forward.apply.0"
        );
        assert_eq!(p.request(&w), "/revdoor/workflows/wf/request");
        assert_eq!(
            p.assignment("w-1", &w, "forward.apply.0"),
            "/revdoor/assignments/w-1/wf/forward.apply.0"
        );
        assert_eq!(p.journal(&w), "/revdoor/workflows/wf/journal/");
        assert_eq!(
            p.journal_entry(&w, 7),
            "/revdoor/workflows/wf/journal/00000000000000000007"
        );
        assert_eq!(
            p.apply_owner(&w, Direction::Forward, 2),
            "/revdoor/workflows/wf/streams/forward/2/apply-owner"
        );
        assert_eq!(p.leader(), "/revdoor/leader");
        assert_eq!(p.workers(), "/revdoor/workers/");
        assert_eq!(p.worker("w-1"), "/revdoor/workers/w-1");
        assert_eq!(p.lock("switch"), "/revdoor/locks/switch");
        assert_eq!(p.routing_rules(&k), "/revdoor/routing/commerce/");
        assert_eq!(p.routing(&k, "orders"), "/revdoor/routing/commerce/orders");
    }

    #[test]
    fn etcd_prefix_is_configurable() {
        let p = EtcdPrefix::new("/test-abc/revdoor").expect("valid");
        assert_eq!(p.root(), "/test-abc/revdoor/");
        assert_eq!(p.leader(), "/test-abc/revdoor/leader");
        assert_eq!(EtcdPrefix::new("/x/").expect("valid").to_string(), "/x/");
        assert_eq!(
            EtcdPrefix::new("revdoor/"),
            Err(NameError::EtcdPrefix("revdoor/".into()))
        );
        assert_eq!(
            EtcdPrefix::new(""),
            Err(NameError::EtcdPrefix(String::new()))
        );
        let p: EtcdPrefix = serde_json::from_str("\"/t/\"").expect("deserialise");
        assert_eq!(p.worker("a"), "/t/workers/a");
    }

    #[test]
    fn every_key_is_under_the_root_and_its_prefixes() {
        let p = EtcdPrefix::new("/t1/").expect("valid");
        let (w, k) = (wf("wf"), ks("ks"));
        for (prefix, key) in [
            (p.keyspaces(), p.keyspace(&k)),
            (p.workflow(&w), p.workflow_spec(&w)),
            (p.workflow(&w), p.workflow_state(&w)),
            (p.streams(&w), p.stream(&w, "forward.apply.0")),
            (p.statuses(&w), p.status(&w, "forward.apply.0")),
            (p.assignments("x"), p.assignment("x", &w, "forward.apply.0")),
            (p.all_assignments(), p.assignments("x")),
            (p.journal(&w), p.journal_entry(&w, u64::MAX)),
            (p.workers(), p.worker("x")),
            (p.routing_rules(&k), p.routing(&k, "t")),
        ] {
            assert!(
                key.starts_with(&prefix) && prefix.starts_with(p.root()),
                "{key} / {prefix}"
            );
        }
        // Workflow prefixes end with '/', so `wf` does not cover `wf2`.
        assert!(!p.workflow_spec(&wf("wf2")).starts_with(&p.workflow(&w)));
    }

    proptest! {
        #[test]
        fn valid_names_are_topic_safe(name in "[a-z][a-z0-9_]{0,47}") {
            let w: WorkflowName = name.parse().expect("matches the rule");
            let t = topic(&w, Direction::Forward);
            prop_assert!(t.len() <= 249);
            prop_assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        }

        #[test]
        fn validation_matches_the_rule(name in "[a-zA-Z0-9_.é-]{0,50}") {
            let rule = !name.is_empty()
                && name.len() <= 48
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            prop_assert_eq!(name.parse::<KeyspaceName>().is_ok(), rule);
        }

        #[test]
        fn journal_keys_sort_numerically(a in any::<u64>(), b in any::<u64>()) {
            let p = EtcdPrefix::default();
            let w = wf("wf");
            prop_assert_eq!(a.cmp(&b), p.journal_entry(&w, a).cmp(&p.journal_entry(&w, b)));
        }
    }
}
