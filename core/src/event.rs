//! Row-change events as they travel through Kafka.
//!
//! One Kafka message per row change; the message key is the row's primary
//! key and the value is a [`ChangeEvent`]. The envelope follows Debezium's
//! (`before`, `after`, `source`, `op`, `ts_ms`) plus a `txn` block that lets
//! apply see source-transaction boundaries.
//!
//! # Encoding
//!
//! On the wire every event is Avro single-object encoded with its table's
//! schema: see [`crate::avro::EventCodec`]. The serde derives here serve
//! logs, tests and the heartbeat body, not the stream format.

use serde::{Deserialize, Serialize};

use crate::gtid::StoredPosition;
use crate::names::{Direction, WorkflowName};

/// Kafka header marking a heartbeat record on a stream partition. Its value
/// is JSON [`Heartbeat`], not a change event: capture publishes one when the
/// source is idle and fully read, so lag stays measurable.
pub const HEARTBEAT_HEADER: &str = "revdoor-heartbeat";

/// Body of a heartbeat record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// When capture had read everything the source had committed.
    pub heartbeat_ms: u64,
    /// Capture's position at that moment.
    pub position: StoredPosition,
    /// Not on the wire: when apply read the record from Kafka (its clock,
    /// ms since the epoch), stored with the checkpoint it moves to.
    #[serde(skip)]
    pub fetched_ms: u64,
}

/// Kafka header marking a DDL record on a stream partition (`on_ddl=exec`).
/// Its value is JSON [`DdlEvent`]: apply runs the statement on the
/// destination, in stream order, exactly once.
pub const DDL_HEADER: &str = "revdoor-ddl";

/// Body of a DDL record: a statement that changed moved tables on the
/// origin, to be run on every destination the origin feeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DdlEvent {
    /// The source transaction (standalone statement) that ran it.
    pub gtid: String,
    /// The statement's default database on the origin (`USE` before it).
    pub default_db: String,
    /// The statement as the origin's binlog has it.
    pub statement: String,
    /// The moved tables it changes, `db.table`.
    pub tables: Vec<String>,
    /// Origin shard name.
    pub shard: String,
    /// Commit timestamp on the origin, seconds since the epoch.
    pub ts_sec: u32,
}

/// The comment apply puts in front of a DDL it runs for `workflow` in
/// `direction`, so that the capture of the opposite direction recognises
/// its own workflow's DDL in the destination's binlog and never sends it
/// back (the DDL counterpart of the loop filter, DESIGN §4).
pub fn ddl_tag(workflow: &WorkflowName, direction: Direction) -> String {
    format!(
        "/* revdoor-ddl {} {} */ ",
        workflow.as_str(),
        direction.as_str()
    )
}

/// The `(workflow, direction)` of a statement that starts with
/// [`ddl_tag`], if any (a tag naming no direction is none).
pub fn ddl_tag_of(statement: &str) -> Option<(&str, Direction)> {
    let rest = statement.trim_start().strip_prefix("/* revdoor-ddl ")?;
    let (inner, _) = rest.split_once(" */")?;
    let (workflow, direction) = inner.split_once(' ')?;
    Some((workflow, direction.parse().ok()?))
}

/// The kind of row change (Debezium's `op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Insert.
    #[serde(rename = "c")]
    Create,
    /// Update.
    #[serde(rename = "u")]
    Update,
    /// Delete.
    #[serde(rename = "d")]
    Delete,
    /// Row read by the copy phase (snapshot).
    #[serde(rename = "r")]
    Read,
}

/// One column value, without loss of signedness or bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum ColumnValue {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Strings and binary data exactly as stored (charset not converted).
    Bytes(#[serde(with = "hex_bytes")] Vec<u8>),
    /// `YYYY-MM-DD HH:MM:SS.ffffff`; zero dates keep their zeros.
    DateTime(String),
    /// `[-]HHH:MM:SS.ffffff`, may exceed 24 h.
    Time(String),
}

/// A row image: column names with their values, in table order. The names
/// are shared by the rows of one table definition (one allocation per
/// definition, not per row).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Row {
    pub columns: std::sync::Arc<[String]>,
    pub values: Vec<ColumnValue>,
}

impl Row {
    /// The value of a column by name.
    pub fn get(&self, column: &str) -> Option<&ColumnValue> {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.values.get(i))
    }
}

/// Where the change came from (Debezium's `source` block).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Origin shard name (key range), e.g. `-` or `-80`.
    pub shard: String,
    pub db: String,
    pub table: String,
    /// Commit timestamp of the source transaction, seconds since the epoch.
    pub ts_sec: u32,
}

/// Transaction framing of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnInfo {
    /// The source transaction's GTID (`d-s-n` on MariaDB, `uuid:n` on MySQL).
    pub gtid: String,
    /// Index of this event inside its source transaction, from 0.
    pub index: u32,
    /// True on the transaction's last event.
    pub last: bool,
}

/// One row change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub op: Op,
    pub before: Option<Row>,
    pub after: Option<Row>,
    pub source: Source,
    pub txn: TxnInfo,
    /// When capture produced the event, milliseconds since the epoch.
    pub ts_ms: u64,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(b.len() * 2);
        for x in b {
            out.push(HEX[(x >> 4) as usize] as char);
            out.push(HEX[(x & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd-length hex string"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&s[i..i + 2], 16)
                    .map_err(|e| serde::de::Error::custom(format!("bad hex at {i}: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_roundtrips_through_serde() {
        let ev = ChangeEvent {
            op: Op::Update,
            before: Some(Row {
                columns: vec!["id".into(), "name".into()].into(),
                values: vec![
                    ColumnValue::UInt(u64::MAX),
                    ColumnValue::Bytes(vec![0, 0xff, b'a']),
                ],
            }),
            after: Some(Row {
                columns: vec!["id".into(), "name".into()].into(),
                values: vec![ColumnValue::UInt(u64::MAX), ColumnValue::Null],
            }),
            source: Source {
                shard: "-".into(),
                db: "d".into(),
                table: "t".into(),
                ts_sec: 7,
            },
            txn: TxnInfo {
                gtid: "1-1-9".into(),
                index: 2,
                last: true,
            },
            ts_ms: 11,
        };
        let back: ChangeEvent =
            serde_json::from_slice(&serde_json::to_vec(&ev).expect("encode")).expect("decode");
        assert_eq!(back, ev);
        assert_eq!(
            back.after.as_ref().and_then(|r| r.get("id")),
            Some(&ColumnValue::UInt(u64::MAX))
        );
    }

    #[test]
    fn ddl_tag_roundtrips() {
        let wf: WorkflowName = "wf1".parse().expect("name");
        let sql = format!(
            "{}ALTER TABLE t ADD c INT",
            ddl_tag(&wf, Direction::Forward)
        );
        assert_eq!(sql, "/* revdoor-ddl wf1 forward */ ALTER TABLE t ADD c INT");
        assert_eq!(ddl_tag_of(&sql), Some(("wf1", Direction::Forward)));
        assert_eq!(
            ddl_tag_of("/* revdoor-ddl wf1 sideways */ ALTER TABLE t"),
            None
        );
        assert_eq!(ddl_tag_of("ALTER TABLE t ADD c INT"), None);
        assert_eq!(ddl_tag_of("/* revdoor-ddl broken"), None);
        assert_eq!(ddl_tag_of("/* other */ ALTER TABLE t ADD c INT"), None);
    }

    #[test]
    fn bad_hex_is_an_error() {
        let raw = br#"{"t":"bytes","v":"abc"}"#;
        assert!(serde_json::from_slice::<ColumnValue>(raw).is_err());
        let raw = br#"{"t":"bytes","v":"zz"}"#;
        assert!(serde_json::from_slice::<ColumnValue>(raw).is_err());
    }
}
