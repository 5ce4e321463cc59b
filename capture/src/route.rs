//! Routing each row change to the partition of its destination shard
//! (DESIGN §2).
//!
//! A row belongs to the destination shard whose key range holds
//! `keyspace_id = xxh3_64(canonical bytes of its sharding key)`; each
//! destination shard's stream is one partition of the direction topic. A
//! source transaction that touches several destination shards is split:
//! each partition gets its part, contiguous, with its own `txn.index` /
//! `txn.last` framing, all in the same Kafka transaction. An update that
//! moves a row to another shard (its sharding key changed) becomes a delete
//! on the old shard's partition and an insert on the new one's.
//!
//! # Canonical values of a sharding key
//!
//! Signed integers (and `YEAR`) are `Int`, unsigned ones `UInt`;
//! `CHAR`/`VARCHAR`/`TEXT`/`BINARY`/`BLOB`/`GEOMETRY` are their stored bytes;
//! everything else is its canonical text: `DECIMAL` with the column's scale
//! (`12.50`), temporal values as `YYYY-MM-DD HH:MM:SS.ffffff` (a `DATE` gets
//! `00:00:00.000000`, `TIME` is `[-]HH:MM:SS.ffffff`), `ENUM`/`SET`/`JSON`
//! their text, floats their shortest round-trip text.

use std::borrow::Cow;
use std::collections::HashMap;

use revdoor_core::avro::{self, EventCodec};
use revdoor_core::event::{ColumnValue, Row};
use revdoor_core::keyrange::KeyRange;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_core::sqltype::SqlType;

use crate::CaptureError;

/// A row that cannot be routed to a destination shard.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("keyspace id {0:016x} is in no destination shard")]
    NoShard(u64),
    #[error("no column {0}")]
    NoColumn(String),
    #[error("row lacks sharding column {0}")]
    MissingColumn(String),
    /// A sharding-key value that has no canonical form.
    #[error(transparent)]
    Value(#[from] avro::ValueError),
}

/// Where a stream's row changes go.
#[derive(Debug, Clone)]
pub struct Router {
    /// Destination shard ranges and their partitions; empty = everything to
    /// `single`.
    routes: Vec<(KeyRange, i32)>,
    single: i32,
    /// Sharding-key columns by `(db, table)`; default: the primary key.
    sharding_keys: HashMap<(String, String), Vec<String>>,
}

impl Router {
    /// Everything to one partition (an unsharded destination).
    pub fn single(partition: i32) -> Self {
        Router {
            routes: Vec::new(),
            single: partition,
            sharding_keys: HashMap::new(),
        }
    }

    /// Route by key range. The ranges must cover the keyspace without gaps
    /// or overlaps.
    pub fn by_range(
        routes: Vec<(KeyRange, i32)>,
        sharding_keys: HashMap<(String, String), Vec<String>>,
    ) -> Result<Self, CaptureError> {
        // An origin shard of a sharded keyspace routes only to the
        // destination shards its range overlaps (DESIGN §2): the routes need
        // not cover the keyspace, but they must not overlap. A row outside
        // every route is on the wrong origin shard and halts the stream.
        for (i, (a, _)) in routes.iter().enumerate() {
            if let Some((b, _)) = routes[i + 1..].iter().find(|(b, _)| a.overlaps(b)) {
                return Err(CaptureError::Definite(format!(
                    "destination shards {a} and {b} overlap"
                )));
            }
        }
        Ok(Router {
            routes,
            single: 0,
            sharding_keys,
        })
    }

    /// The partitions this router writes.
    pub fn partitions(&self) -> Vec<i32> {
        if self.routes.is_empty() {
            vec![self.single]
        } else {
            self.routes.iter().map(|(_, p)| *p).collect()
        }
    }

    /// Check that every routed table has its sharding-key columns.
    pub fn check_table(&self, codec: &EventCodec) -> Result<(), CaptureError> {
        let t = codec.table();
        for col in self.key_columns(codec) {
            if t.column(col).is_none() {
                return Err(CaptureError::Definite(format!(
                    "sharding key of {}.{} names column {col}, which the table does not have",
                    t.db, t.table
                )));
            }
        }
        Ok(())
    }

    fn key_columns<'a>(&'a self, codec: &'a EventCodec) -> &'a [String] {
        let t = codec.table();
        self.sharding_keys
            .get(&(t.db.clone(), t.table.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&t.primary_key)
    }

    /// The partition of `row` (binlog values are made unambiguous first).
    pub fn partition(
        &self,
        codec: &EventCodec,
        row: &Row,
        from_binlog: bool,
    ) -> Result<i32, RouteError> {
        if self.routes.is_empty() {
            return Ok(self.single);
        }
        let id = self.keyspace_id(codec, row, from_binlog)?;
        self.routes
            .iter()
            .find(|(r, _)| r.contains(id))
            .map(|(_, p)| *p)
            .ok_or(RouteError::NoShard(id))
    }

    /// `xxh3_64` of the row's canonical sharding-key bytes.
    pub fn keyspace_id(
        &self,
        codec: &EventCodec,
        row: &Row,
        from_binlog: bool,
    ) -> Result<u64, RouteError> {
        let table = codec.table();
        let mut canon = Vec::new();
        for name in self.key_columns(codec) {
            let col = table
                .column(name)
                .ok_or_else(|| RouteError::NoColumn(name.clone()))?;
            let v = row
                .get(name)
                .cloned()
                .ok_or_else(|| RouteError::MissingColumn(name.clone()))?;
            let v = if from_binlog {
                avro::from_binlog(&col.sql_type, v)?
            } else {
                v
            };
            let v = avro::canonicalize(&col.sql_type, &v)?;
            canon.push((col.sql_type.clone(), v));
        }
        let keys: Vec<KeyValue<'_>> = canon.iter().map(|(t, v)| key_value(t, v)).collect();
        Ok(keyspace_id(&keys))
    }
}

/// A canonical column value as a sharding-key value (module docs).
pub fn key_value<'a>(ty: &SqlType, v: &'a ColumnValue) -> KeyValue<'a> {
    let stored_bytes = matches!(
        ty,
        SqlType::String { .. } | SqlType::Binary { .. } | SqlType::Geometry
    );
    match v {
        ColumnValue::Null => KeyValue::Null,
        ColumnValue::Int(i) => KeyValue::Int(*i),
        ColumnValue::UInt(u) => KeyValue::UInt(*u),
        ColumnValue::Bytes(b) if stored_bytes => KeyValue::Bytes(b),
        ColumnValue::Bytes(b) => KeyValue::Other(String::from_utf8_lossy(b)),
        ColumnValue::Float(f) => KeyValue::Other(Cow::Owned(f.to_string())),
        ColumnValue::Double(d) => KeyValue::Other(Cow::Owned(d.to_string())),
        ColumnValue::DateTime(s) | ColumnValue::Time(s) => {
            KeyValue::Other(Cow::Owned(temporal_text(s)))
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (or `[-]HH:MM:SS.ffffff`) with exactly six
/// fraction digits.
fn temporal_text(s: &str) -> String {
    let mut t = if s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') {
        format!("{s} 00:00:00")
    } else {
        s.to_string()
    };
    match t.find('.') {
        Some(dot) => {
            let digits = t.len() - dot - 1;
            t.extend(std::iter::repeat_n('0', 6usize.saturating_sub(digits)));
        }
        None => t.push_str(".000000"),
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_values_have_six_fraction_digits() {
        assert_eq!(temporal_text("2024-01-02"), "2024-01-02 00:00:00.000000");
        assert_eq!(
            temporal_text("2024-01-02 03:04:05"),
            "2024-01-02 03:04:05.000000"
        );
        assert_eq!(
            temporal_text("2024-01-02 03:04:05.5"),
            "2024-01-02 03:04:05.500000"
        );
        assert_eq!(temporal_text("-838:59:59"), "-838:59:59.000000");
        assert_eq!(temporal_text("12:00:00.123456"), "12:00:00.123456");
    }

    #[test]
    fn strings_hash_as_stored_bytes_and_decimals_as_text() {
        let s = SqlType::from_information_schema("varchar", "varchar(10)", Some("utf8mb4"))
            .expect("type");
        let v = ColumnValue::Bytes(b"ab".to_vec());
        assert_eq!(key_value(&s, &v), KeyValue::Bytes(b"ab"));
        let d = SqlType::from_information_schema("decimal", "decimal(5,2)", None).expect("type");
        let v = ColumnValue::Bytes(b"12.50".to_vec());
        assert_eq!(key_value(&d, &v), KeyValue::Other(Cow::Borrowed("12.50")));
    }
}
