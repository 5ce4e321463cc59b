//! The event codec: [`EventCodec`] encodes and decodes one table's change
//! events as single-object messages (key and envelope), straight from and
//! to bytes; [`PublishedSchema`] is a schema with its fingerprint.

#[cfg(test)]
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::Schema;
use serde_json::Value as Json;

use super::binary::{write_avro, write_long, write_str, AvroKind, Datum};
use super::error::{qualified, verr, CodecError, ValueError};
use super::fingerprint::fingerprint_json;
use super::schema::{
    envelope_schema_json, field_names, key_indexes, key_schema_json, parse_schema,
};
use super::single_object::{
    decode_single, single_object_fingerprint, SINGLE_OBJECT_HEADER_LEN, SINGLE_OBJECT_MAGIC,
};
#[cfg(test)]
use super::single_object::{encode_single, read_datum};
use super::values::{from_avro, from_binlog, to_avro};
use crate::event::{ChangeEvent, ColumnValue, Op, Row, Source, TxnInfo};
use crate::sqltype::{BinaryKind, ColumnDef, SqlType, TableSchema};

/// A row change to encode, borrowed: the fields of a [`ChangeEvent`].
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub op: Op,
    pub before: Option<&'a Row>,
    pub after: Option<&'a Row>,
    pub shard: &'a str,
    pub db: &'a str,
    pub table: &'a str,
    pub ts_sec: u32,
    pub gtid: &'a str,
    pub index: u32,
    pub last: bool,
    pub ts_ms: u64,
}

/// A schema as published to the schema topic: its JSON, the parsed form and
/// the specification's fingerprint.
#[derive(Debug, Clone)]
pub struct PublishedSchema {
    json: Json,
    schema: Schema,
    fingerprint: u64,
}

impl PublishedSchema {
    /// Parse a schema JSON and fingerprint its Parsing Canonical Form.
    pub fn new(json: Json) -> Result<Self, CodecError> {
        let schema = parse_schema(&json)?;
        let fingerprint = fingerprint_json(&json)?;
        Ok(PublishedSchema {
            json,
            schema,
            fingerprint,
        })
    }

    pub fn json(&self) -> &Json {
        &self.json
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// CRC-64-AVRO of the Parsing Canonical Form; the single-object header
    /// carries it little-endian.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

/// Encodes and decodes one table's change events: value = envelope, key =
/// primary key, both single-object encoded.
#[derive(Debug, Clone)]
pub struct EventCodec {
    table: TableSchema,
    field_names: Vec<String>,
    key_columns: Vec<usize>,
    envelope: PublishedSchema,
    key: PublishedSchema,
    /// The Avro type of each column (decoding reads bytes straight).
    kinds: Vec<AvroKind>,
    /// The column names, shared by every decoded row.
    column_names: std::sync::Arc<[String]>,
    /// apache-avro's reader of the envelope: the reference the direct
    /// decoding is tested against.
    #[cfg(test)]
    reader: std::sync::Arc<EnvelopeReader>,
}

/// A datum reader of one envelope schema. The schema is leaked (one per
/// table definition a process meets) so that the reader can borrow it for
/// as long as the codec lives.
#[cfg(test)]
struct EnvelopeReader(GenericDatumReader<'static>);

#[cfg(test)]
impl std::fmt::Debug for EnvelopeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvelopeReader")
    }
}

pub(super) fn op_str(op: Op) -> &'static str {
    match op {
        Op::Create => "c",
        Op::Update => "u",
        Op::Delete => "d",
        Op::Read => "r",
    }
}

fn shape_err(reason: impl Into<String>) -> CodecError {
    CodecError::Shape {
        reason: reason.into(),
    }
}

/// The fields of a decoded record, checked against the expected names.
fn record_fields<'v>(
    v: &'v Value,
    expected: &[&str],
    what: &str,
) -> Result<Vec<&'v Value>, CodecError> {
    let Value::Record(fields) = v else {
        return Err(shape_err(format!("{what} is not a record")));
    };
    if fields.len() != expected.len() || fields.iter().zip(expected).any(|((n, _), e)| n != e) {
        return Err(shape_err(format!("{what} fields are not {expected:?}")));
    }
    Ok(fields.iter().map(|(_, v)| v).collect())
}

#[cfg(test)]
fn long_of(v: &Value, what: &str) -> Result<i64, CodecError> {
    match v {
        Value::Long(n) => Ok(*n),
        Value::Int(n) => Ok(i64::from(*n)),
        _ => Err(shape_err(format!("{what} is not a long"))),
    }
}

#[cfg(test)]
fn string_of(v: &Value, what: &str) -> Result<String, CodecError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(shape_err(format!("{what} is not a string"))),
    }
}

impl EventCodec {
    /// Build the schemas of a table. Refuses a table without a primary key,
    /// with duplicate columns or a key column that is not a column.
    pub fn new(table: TableSchema) -> Result<Self, CodecError> {
        let envelope = PublishedSchema::new(envelope_schema_json(&table)?)?;
        let key = PublishedSchema::new(key_schema_json(&table)?)?;
        #[cfg(test)]
        let reader = {
            let leaked: &'static Schema = Box::leak(Box::new(envelope.schema().clone()));
            GenericDatumReader::builder(leaked)
                .build()
                .map_err(|e| CodecError::Datum {
                    fingerprint: envelope.fingerprint(),
                    source: e,
                })?
        };
        Ok(EventCodec {
            #[cfg(test)]
            reader: std::sync::Arc::new(EnvelopeReader(reader)),
            kinds: table
                .columns
                .iter()
                .map(|c| AvroKind::of(&c.sql_type))
                .collect(),
            column_names: table.columns.iter().map(|c| c.name.clone()).collect(),
            field_names: field_names(&table.columns),
            key_columns: key_indexes(&table),
            table,
            envelope,
            key,
        })
    }

    pub fn table(&self) -> &TableSchema {
        &self.table
    }

    /// The envelope (message value) schema.
    pub fn envelope(&self) -> &PublishedSchema {
        &self.envelope
    }

    /// The key schema.
    pub fn key(&self) -> &PublishedSchema {
        &self.key
    }

    /// The Avro field name of each column, in column order.
    pub fn field_names(&self) -> &[String] {
        &self.field_names
    }

    fn event_err(&self, reason: impl Into<String>) -> CodecError {
        CodecError::Event {
            table: qualified(&self.table),
            reason: reason.into(),
        }
    }

    fn value_err(&self, col: &ColumnDef, source: ValueError) -> CodecError {
        CodecError::Value {
            table: qualified(&self.table),
            column: col.name.clone(),
            source,
        }
    }

    /// The row's values in table order (by name; the fast path is a row
    /// whose columns are the table's, in order).
    fn ordered<'r>(
        &self,
        row: &'r Row,
        image: &'static str,
    ) -> Result<Vec<&'r ColumnValue>, CodecError> {
        if row.columns.len() != row.values.len() {
            return Err(self.event_err(format!(
                "{image} row has {} column names but {} values",
                row.columns.len(),
                row.values.len()
            )));
        }
        let in_order = row.columns.len() == self.table.columns.len()
            && row
                .columns
                .iter()
                .zip(&self.table.columns)
                .all(|(a, b)| *a == b.name);
        if in_order {
            return Ok(row.values.iter().collect());
        }
        if let Some(extra) = row.columns.iter().find(|c| self.table.column(c).is_none()) {
            return Err(CodecError::UnknownColumn {
                table: qualified(&self.table),
                image,
                column: extra.clone(),
            });
        }
        self.table
            .columns
            .iter()
            .map(|c| {
                row.get(&c.name).ok_or_else(|| CodecError::MissingColumn {
                    table: qualified(&self.table),
                    image,
                    column: c.name.clone(),
                })
            })
            .collect()
    }

    #[cfg(test)]
    fn column_value(&self, col: &ColumnDef, v: &ColumnValue) -> Result<Value, CodecError> {
        let avro = to_avro(&col.sql_type, v).map_err(|e| self.value_err(col, e))?;
        match (col.nullable, avro) {
            (true, Value::Null) => Ok(Value::Union(0, Box::new(Value::Null))),
            (true, a) => Ok(Value::Union(1, Box::new(a))),
            (false, Value::Null) => {
                Err(self.value_err(col, verr(&col.sql_type, "NULL in a NOT NULL column")))
            }
            (false, a) => Ok(a),
        }
    }

    #[cfg(test)]
    fn row_value(&self, row: &Row, image: &'static str) -> Result<Value, CodecError> {
        let values = self.ordered(row, image)?;
        let fields = self
            .table
            .columns
            .iter()
            .zip(&self.field_names)
            .zip(values)
            .map(|((col, name), v)| Ok((name.clone(), self.column_value(col, v)?)))
            .collect::<Result<Vec<_>, CodecError>>()?;
        Ok(Value::Record(fields))
    }

    fn write_column(
        &self,
        out: &mut Vec<u8>,
        col: &ColumnDef,
        v: &ColumnValue,
    ) -> Result<(), CodecError> {
        let avro = to_avro(&col.sql_type, v).map_err(|e| self.value_err(col, e))?;
        let bad = |e: &str| self.value_err(col, verr(&col.sql_type, e));
        match (col.nullable, avro) {
            (true, Value::Null) => write_long(out, 0),
            (true, a) => {
                write_long(out, 1);
                write_avro(out, &a).map_err(bad)?;
            }
            (false, Value::Null) => return Err(bad("NULL in a NOT NULL column")),
            (false, a) => write_avro(out, &a).map_err(bad)?,
        }
        Ok(())
    }

    fn write_optional_row(
        &self,
        out: &mut Vec<u8>,
        row: Option<&Row>,
        image: &'static str,
    ) -> Result<(), CodecError> {
        let Some(row) = row else {
            write_long(out, 0);
            return Ok(());
        };
        write_long(out, 1);
        let values = self.ordered(row, image)?;
        for (col, v) in self.table.columns.iter().zip(values) {
            self.write_column(out, col, v)?;
        }
        Ok(())
    }

    #[cfg(test)]
    fn optional_row(&self, row: Option<&Row>, image: &'static str) -> Result<Value, CodecError> {
        Ok(match row {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(r) => Value::Union(1, Box::new(self.row_value(r, image)?)),
        })
    }

    /// The key record of an event: the primary key of `after`, or of
    /// `before` for a delete.
    #[cfg(test)]
    fn key_value(&self, ev: &ChangeEvent) -> Result<Value, CodecError> {
        let (row, image) = match ev.op {
            Op::Delete => (ev.before.as_ref(), "before"),
            _ => (ev.after.as_ref(), "after"),
        };
        let row = row
            .ok_or_else(|| self.event_err(format!("op {} without a {image} row", op_str(ev.op))))?;
        let fields = self
            .key_columns
            .iter()
            .map(|i| {
                let col = &self.table.columns[*i];
                let v = row
                    .get(&col.name)
                    .ok_or_else(|| CodecError::MissingColumn {
                        table: qualified(&self.table),
                        image,
                        column: col.name.clone(),
                    })?;
                Ok((self.field_names[*i].clone(), self.column_value(col, v)?))
            })
            .collect::<Result<Vec<_>, CodecError>>()?;
        Ok(Value::Record(fields))
    }

    /// Make a row straight from mysql_common's binlog decoder unambiguous
    /// (see [`from_binlog`]). Columns the table does not have are left for
    /// [`EventCodec::encode_event`] to refuse.
    pub fn from_binlog_row(&self, row: &mut Row) -> Result<(), CodecError> {
        for (name, v) in row.columns.iter().zip(row.values.iter_mut()) {
            let Some(col) = self.table.column(name) else {
                continue;
            };
            if matches!(
                col.sql_type,
                SqlType::Set { .. }
                    | SqlType::MediumInt { unsigned: false }
                    | SqlType::Binary {
                        kind: BinaryKind::Binary(_)
                    }
            ) {
                let raw = std::mem::replace(v, ColumnValue::Null);
                *v = from_binlog(&col.sql_type, raw).map_err(|e| self.value_err(col, e))?;
            }
        }
        Ok(())
    }

    /// Encode an event: `(key, value)` message bytes.
    pub fn encode_event(&self, ev: &ChangeEvent) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
        self.encode(&EventRef {
            op: ev.op,
            before: ev.before.as_ref(),
            after: ev.after.as_ref(),
            shard: &ev.source.shard,
            db: &ev.source.db,
            table: &ev.source.table,
            ts_sec: ev.source.ts_sec,
            gtid: &ev.txn.gtid,
            index: ev.txn.index,
            last: ev.txn.last,
            ts_ms: ev.ts_ms,
        })
    }

    /// [`EventCodec::encode_event`] of borrowed parts (capture encodes
    /// without building a [`ChangeEvent`]).
    pub fn encode(&self, ev: &EventRef<'_>) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
        // Written straight into Avro's binary encoding, field by field in
        // schema order (docs/streams.md "Events"): building a `Value` tree
        // and an apache-avro writer per message was ≈ 40 % of capture's
        // CPU. Column values still go through `to_avro`, the one mapping
        // of SQL values to Avro values, and a test checks the bytes equal
        // apache-avro's for every type.
        let ts_ms = i64::try_from(ev.ts_ms).map_err(|_| self.event_err("ts_ms beyond i64"))?;
        let mut value = Vec::with_capacity(256);
        value.extend_from_slice(&SINGLE_OBJECT_MAGIC);
        value.extend_from_slice(&self.envelope.fingerprint().to_le_bytes());
        self.write_optional_row(&mut value, ev.before, "before")?;
        self.write_optional_row(&mut value, ev.after, "after")?;
        write_str(&mut value, ev.shard);
        write_str(&mut value, ev.db);
        write_str(&mut value, ev.table);
        write_long(&mut value, i64::from(ev.ts_sec));
        write_str(&mut value, op_str(ev.op));
        write_long(&mut value, ts_ms);
        write_str(&mut value, ev.gtid);
        write_long(&mut value, i64::from(ev.index));
        value.push(u8::from(ev.last));

        let (row, image) = match ev.op {
            Op::Delete => (ev.before, "before"),
            _ => (ev.after, "after"),
        };
        let row = row
            .ok_or_else(|| self.event_err(format!("op {} without a {image} row", op_str(ev.op))))?;
        let mut key = Vec::with_capacity(32);
        key.extend_from_slice(&SINGLE_OBJECT_MAGIC);
        key.extend_from_slice(&self.key.fingerprint().to_le_bytes());
        for i in &self.key_columns {
            let col = &self.table.columns[*i];
            let v = row
                .get(&col.name)
                .ok_or_else(|| CodecError::MissingColumn {
                    table: qualified(&self.table),
                    image,
                    column: col.name.clone(),
                })?;
            self.write_column(&mut key, col, v)?;
        }
        Ok((key, value))
    }

    /// [`EventCodec::encode_event`] through apache-avro's `Value` tree and
    /// writer (schema-validated): the reference the direct encoding is
    /// tested against.
    #[cfg(test)]
    pub(crate) fn encode_event_generic(
        &self,
        ev: &ChangeEvent,
    ) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
        let ts_ms = i64::try_from(ev.ts_ms).map_err(|_| self.event_err("ts_ms beyond i64"))?;
        let envelope = Value::Record(vec![
            (
                "before".into(),
                self.optional_row(ev.before.as_ref(), "before")?,
            ),
            (
                "after".into(),
                self.optional_row(ev.after.as_ref(), "after")?,
            ),
            (
                "source".into(),
                Value::Record(vec![
                    ("shard".into(), Value::String(ev.source.shard.clone())),
                    ("db".into(), Value::String(ev.source.db.clone())),
                    ("table".into(), Value::String(ev.source.table.clone())),
                    ("ts_sec".into(), Value::Long(i64::from(ev.source.ts_sec))),
                ]),
            ),
            ("op".into(), Value::String(op_str(ev.op).into())),
            ("ts_ms".into(), Value::Long(ts_ms)),
            (
                "txn".into(),
                Value::Record(vec![
                    ("gtid".into(), Value::String(ev.txn.gtid.clone())),
                    ("index".into(), Value::Long(i64::from(ev.txn.index))),
                    ("last".into(), Value::Boolean(ev.txn.last)),
                ]),
            ),
        ]);
        let key = encode_single(
            self.key.schema(),
            self.key.fingerprint(),
            &self.key_value(ev)?,
        )?;
        let value = encode_single(
            self.envelope.schema(),
            self.envelope.fingerprint(),
            &envelope,
        )?;
        Ok((key, value))
    }

    fn decode_row(&self, v: &Value, columns: &[usize]) -> Result<Row, CodecError> {
        let names: Vec<&str> = columns
            .iter()
            .map(|i| self.field_names[*i].as_str())
            .collect();
        let fields = record_fields(v, &names, "row")?;
        let mut names = Vec::with_capacity(columns.len());
        let mut values = Vec::with_capacity(columns.len());
        for (i, f) in columns.iter().zip(fields) {
            let col = &self.table.columns[*i];
            let value = from_avro(&col.sql_type, f).map_err(|e| self.value_err(col, e))?;
            if value == ColumnValue::Null && !col.nullable {
                return Err(self.value_err(col, verr(&col.sql_type, "NULL in a NOT NULL column")));
            }
            names.push(col.name.clone());
            values.push(value);
        }
        Ok(Row {
            columns: names.into(),
            values,
        })
    }

    #[cfg(test)]
    fn decode_optional_row(&self, v: &Value) -> Result<Option<Row>, CodecError> {
        let all: Vec<usize> = (0..self.table.columns.len()).collect();
        match v {
            Value::Union(_, inner) if **inner == Value::Null => Ok(None),
            Value::Union(_, inner) => self.decode_row(inner, &all).map(Some),
            Value::Null => Ok(None),
            other => self.decode_row(other, &all).map(Some),
        }
    }

    /// Decode a message value (envelope) written with this table's schema,
    /// straight from Avro's binary encoding (apache-avro's `Value` tree was
    /// ≈ 35 % of apply's CPU); column values go through [`from_avro`].
    pub fn decode_event(&self, bytes: &[u8]) -> Result<ChangeEvent, CodecError> {
        let fingerprint = single_object_fingerprint(bytes)?;
        if fingerprint != self.envelope.fingerprint() {
            return Err(CodecError::UnknownFingerprint { fingerprint });
        }
        let datum = bytes
            .get(SINGLE_OBJECT_HEADER_LEN..)
            .ok_or(CodecError::Truncated { len: bytes.len() })?;
        let mut d = Datum {
            rest: datum,
            fingerprint,
            len: datum.len(),
        };
        let before = self.read_optional_row(&mut d)?;
        let after = self.read_optional_row(&mut d)?;
        let shard = d.string()?.to_string();
        let db = d.string()?.to_string();
        let table = d.string()?.to_string();
        let ts_sec =
            u32::try_from(d.long()?).map_err(|_| shape_err("source.ts_sec out of range"))?;
        let op = match d.string()? {
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "r" => Op::Read,
            _ => return Err(shape_err("op is not one of c, u, d, r")),
        };
        let ts_ms = u64::try_from(d.long()?).map_err(|_| shape_err("ts_ms is negative"))?;
        let gtid = d.string()?.to_string();
        let index = u32::try_from(d.long()?).map_err(|_| shape_err("txn.index out of range"))?;
        let last = d.boolean()?;
        if !d.rest.is_empty() {
            return Err(CodecError::TrailingBytes {
                fingerprint,
                extra: d.rest.len(),
            });
        }
        Ok(ChangeEvent {
            op,
            before,
            after,
            source: Source {
                shard,
                db,
                table,
                ts_sec,
            },
            txn: TxnInfo { gtid, index, last },
            ts_ms,
        })
    }

    fn read_optional_row(&self, d: &mut Datum<'_>) -> Result<Option<Row>, CodecError> {
        match d.long()? {
            0 => return Ok(None),
            1 => {}
            _ => return Err(d.bad("row union index is neither 0 nor 1")),
        }
        let mut row = Row {
            columns: std::sync::Arc::clone(&self.column_names),
            values: Vec::with_capacity(self.table.columns.len()),
        };
        for (col, kind) in self.table.columns.iter().zip(&self.kinds) {
            let v = if col.nullable {
                match d.long()? {
                    0 => Value::Null,
                    1 => d.value(*kind)?,
                    _ => return Err(d.bad("column union index is neither 0 nor 1")),
                }
            } else {
                d.value(*kind)?
            };
            let value = from_avro(&col.sql_type, &v).map_err(|e| self.value_err(col, e))?;
            if value == ColumnValue::Null && !col.nullable {
                return Err(self.value_err(col, verr(&col.sql_type, "NULL in a NOT NULL column")));
            }
            row.values.push(value);
        }
        Ok(Some(row))
    }

    /// [`EventCodec::decode_event`] through apache-avro's reader and `Value`
    /// tree: the reference the direct decoding is tested against.
    #[cfg(test)]
    pub(crate) fn decode_event_generic(&self, bytes: &[u8]) -> Result<ChangeEvent, CodecError> {
        let fingerprint = single_object_fingerprint(bytes)?;
        if fingerprint != self.envelope.fingerprint() {
            return Err(CodecError::UnknownFingerprint { fingerprint });
        }
        let (_, v) = read_datum(&self.reader.0, fingerprint, bytes)?;
        let f = record_fields(
            &v,
            &["before", "after", "source", "op", "ts_ms", "txn"],
            "envelope",
        )?;
        let source = record_fields(f[2], &["shard", "db", "table", "ts_sec"], "source")?;
        let txn = record_fields(f[5], &["gtid", "index", "last"], "txn")?;
        let op = match string_of(f[3], "op")?.as_str() {
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "r" => Op::Read,
            _ => return Err(shape_err("op is not one of c, u, d, r")),
        };
        Ok(ChangeEvent {
            op,
            before: self.decode_optional_row(f[0])?,
            after: self.decode_optional_row(f[1])?,
            source: Source {
                shard: string_of(source[0], "source.shard")?,
                db: string_of(source[1], "source.db")?,
                table: string_of(source[2], "source.table")?,
                ts_sec: u32::try_from(long_of(source[3], "source.ts_sec")?)
                    .map_err(|_| shape_err("source.ts_sec out of range"))?,
            },
            txn: TxnInfo {
                gtid: string_of(txn[0], "txn.gtid")?,
                index: u32::try_from(long_of(txn[1], "txn.index")?)
                    .map_err(|_| shape_err("txn.index out of range"))?,
                last: match txn[2] {
                    Value::Boolean(b) => *b,
                    _ => return Err(shape_err("txn.last is not a boolean")),
                },
            },
            ts_ms: u64::try_from(long_of(f[4], "ts_ms")?)
                .map_err(|_| shape_err("ts_ms is negative"))?,
        })
    }

    /// Decode a message key: the primary-key columns, in key order.
    pub fn decode_key(&self, bytes: &[u8]) -> Result<Row, CodecError> {
        let (_, v) = decode_single(bytes, |fp| {
            (fp == self.key.fingerprint()).then_some(self.key.schema())
        })?;
        self.decode_row(&v, &self.key_columns)
    }
}
