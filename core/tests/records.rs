//! Records written by today's code still load, and are written back
//! byte for byte.
//!
//! Every fixture under `tests/fixtures/records/` is one JSON value per line,
//! exactly as revdoor writes it: etcd records through the coordinator's
//! `registry::json` (compact `serde_json::to_string`), heartbeat, DDL and
//! schema records as capture publishes them to Kafka (compact). The files
//! were generated once by the code these types had when the test was added;
//! they are never regenerated. A change to a type behind a record (a
//! newtype, an enum for a string) must keep its serialised form: this test
//! fails if a record no longer loads or is written differently.

use revdoor_core::event::{DdlEvent, Heartbeat};
use revdoor_core::gtid::Position;
use revdoor_core::registry::SchemaRecord;
use revdoor_core::workflow::{
    JournalEntry, KeyspaceSpec, Request, RoutingRule, StreamSpec, StreamStatus, WorkflowSpec,
    WorkflowState,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Load every line of `name` as a `T` and write it again: same bytes.
fn round_trip<T: Serialize + DeserializeOwned>(name: &str) {
    let path = format!(
        "{}/tests/fixtures/records/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    for (n, line) in text.lines().enumerate() {
        let record: T = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{name}:{}: no longer loads: {e}", n + 1));
        let written = serde_json::to_string(&record).expect("serialise");
        assert_eq!(written, line, "{name}:{}: serialised form changed", n + 1);
    }
    assert!(!text.is_empty(), "{name} is empty");
}

#[test]
fn keyspace_specs() {
    round_trip::<KeyspaceSpec>("keyspace_spec.jsonl");
}

#[test]
fn workflow_specs() {
    round_trip::<WorkflowSpec>("workflow_spec.jsonl");
}

/// Every phase; resume positions of both engines and both directions.
#[test]
fn workflow_states() {
    round_trip::<WorkflowState>("workflow_state.jsonl");
}

/// Captures and applies of both directions; start positions absent, empty,
/// MariaDB, MySQL and MySQL as `@@gtid_executed` prints it (newline after
/// the comma).
#[test]
fn stream_specs() {
    round_trip::<StreamSpec>("stream_spec.jsonl");
}

#[test]
fn routing_rules() {
    round_trip::<RoutingRule>("routing_rule.jsonl");
}

/// Every action.
#[test]
fn requests() {
    round_trip::<Request>("request.jsonl");
}

/// Every outcome; the switch's step names, fence and start positions.
#[test]
fn journal_entries() {
    round_trip::<JournalEntry>("journal_entry.jsonl");
}

#[test]
fn stream_statuses() {
    round_trip::<StreamStatus>("stream_status.jsonl");
}

#[test]
fn heartbeats() {
    round_trip::<Heartbeat>("heartbeat.jsonl");
}

#[test]
fn ddl_events() {
    round_trip::<DdlEvent>("ddl_event.jsonl");
}

/// Every column type, with its Avro schemas.
#[test]
fn schema_records() {
    round_trip::<SchemaRecord>("schema_record.jsonl");
}

/// Positions in their canonical text.
#[test]
fn positions() {
    round_trip::<Position>("position.jsonl");
}
