//! Avro schemas from table definitions: Avro-legal names, the type of each
//! column, and a table's envelope and key schemas.

use std::collections::HashSet;

use apache_avro::Schema;
use serde_json::{json, Map, Value as Json};

use super::error::{qualified, CodecError};
use crate::sqltype::{ColumnDef, SqlType, TableSchema};

/// Namespace of every revdoor schema.
pub const NAMESPACE: &str = "revdoor";
/// Field property: the original (unsanitised) column name.
pub const PROP_COLUMN: &str = "revdoor.column";
/// Type property: what a `string` / `long` / `int` / `bytes` stands for.
pub const PROP_TYPE: &str = "revdoor.type";
/// Type property: the character set of a non-UTF-8 text column.
pub const PROP_CHARSET: &str = "revdoor.charset";
/// Type property: the members of an `ENUM` / `SET`.
pub const PROP_SYMBOLS: &str = "revdoor.symbols";
/// Type property: the width of a `BIT(n)`.
pub const PROP_BITS: &str = "revdoor.bits";

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

fn is_avro_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Make a name Avro-legal: characters outside `[A-Za-z0-9_]` become `_`,
/// and a name that is empty or starts with a digit gets a `_` prefix.
pub fn sanitize_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !matches!(out.chars().next(), Some(c) if c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// The Avro field names of a table's columns, in column order: legal names
/// kept, others sanitised and, on a collision, suffixed `_2`, `_3`, ….
pub fn field_names(columns: &[ColumnDef]) -> Vec<String> {
    let mut used: HashSet<String> = columns
        .iter()
        .filter(|c| is_avro_name(&c.name))
        .map(|c| c.name.clone())
        .collect();
    columns
        .iter()
        .map(|c| {
            if is_avro_name(&c.name) {
                return c.name.clone();
            }
            let base = sanitize_name(&c.name);
            let mut candidate = base.clone();
            let mut n = 2u32;
            while used.contains(&candidate) {
                candidate = format!("{base}_{n}");
                n += 1;
            }
            used.insert(candidate.clone());
            candidate
        })
        .collect()
}

/// `revdoor.<db>.<table>`, sanitised.
pub fn table_namespace(db: &str, table: &str) -> String {
    format!("{NAMESPACE}.{}.{}", sanitize_name(db), sanitize_name(table))
}

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

fn with_props(base: &str, props: &[(&str, Json)]) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!(base));
    for (k, v) in props {
        m.insert((*k).into(), v.clone());
    }
    Json::Object(m)
}

fn decimal_type(precision: u8, scale: u8, props: &[(&str, Json)]) -> Json {
    let mut t = json!({
        "type": "bytes",
        "logicalType": "decimal",
        "precision": precision,
        "scale": scale,
    });
    if let Json::Object(m) = &mut t {
        for (k, v) in props {
            m.insert((*k).into(), v.clone());
        }
    }
    t
}

/// The Avro type `T` of a column type (see the module's table).
pub fn avro_type(ty: &SqlType) -> Json {
    let kind = |k: &str| (PROP_TYPE, json!(k));
    match ty {
        SqlType::TinyInt { .. } | SqlType::SmallInt { .. } | SqlType::MediumInt { .. } => {
            json!("int")
        }
        SqlType::Int { unsigned: false } => json!("int"),
        SqlType::Int { unsigned: true } | SqlType::BigInt { unsigned: false } => json!("long"),
        SqlType::BigInt { unsigned: true } => decimal_type(20, 0, &[kind("bigint unsigned")]),
        SqlType::Decimal { precision, scale } => decimal_type(*precision, *scale, &[]),
        SqlType::Float => json!("float"),
        SqlType::Double => json!("double"),
        SqlType::Date => with_props("string", &[kind("date")]),
        SqlType::DateTime { .. } => with_props("string", &[kind("datetime")]),
        SqlType::Timestamp { .. } => json!({"type": "long", "logicalType": "timestamp-micros"}),
        SqlType::Time { .. } => with_props("long", &[kind("time-micros")]),
        SqlType::Year => with_props("int", &[kind("year")]),
        SqlType::Bit { bits } => with_props("bytes", &[kind("bit"), (PROP_BITS, json!(bits))]),
        SqlType::Enum { values } => {
            with_props("string", &[kind("enum"), (PROP_SYMBOLS, json!(values))])
        }
        SqlType::Set { values } => {
            with_props("string", &[kind("set"), (PROP_SYMBOLS, json!(values))])
        }
        SqlType::String { charset, .. } => {
            if ty.is_utf8_string() {
                json!("string")
            } else {
                with_props("bytes", &[(PROP_CHARSET, json!(charset))])
            }
        }
        SqlType::Binary { .. } => json!("bytes"),
        SqlType::Json => with_props("string", &[kind("json")]),
        SqlType::Geometry => with_props("bytes", &[kind("geometry")]),
        SqlType::Inet4 => with_props("string", &[kind("inet4")]),
        SqlType::Inet6 => with_props("string", &[kind("inet6")]),
        SqlType::Uuid => with_props("string", &[kind("uuid")]),
    }
}

fn field_json(col: &ColumnDef, field_name: &str) -> Json {
    let t = avro_type(&col.sql_type);
    let doc = format!(
        "{}{}",
        col.sql_type,
        if col.nullable { "" } else { " not null" }
    );
    let mut m = Map::new();
    m.insert("name".into(), json!(field_name));
    if col.nullable {
        m.insert("type".into(), json!(["null", t]));
        m.insert("default".into(), Json::Null);
    } else {
        m.insert("type".into(), t);
    }
    m.insert("doc".into(), json!(doc));
    m.insert(PROP_COLUMN.into(), json!(col.name));
    Json::Object(m)
}

fn check_table(table: &TableSchema) -> Result<(), CodecError> {
    table.validate().map_err(|source| CodecError::Table {
        table: qualified(table),
        source,
    })?;
    if table.primary_key.is_empty() {
        return Err(CodecError::NoPrimaryKey {
            table: qualified(table),
        });
    }
    Ok(())
}

pub(super) fn key_indexes(table: &TableSchema) -> Vec<usize> {
    table
        .primary_key
        .iter()
        .filter_map(|k| table.columns.iter().position(|c| &c.name == k))
        .collect()
}

fn row_record_json(table: &TableSchema, names: &[String], ns: &str) -> Json {
    json!({
        "type": "record",
        "name": format!("{ns}.Value"),
        "doc": format!("A row of `{}`.`{}`", table.db, table.table),
        "fields": table.columns.iter().zip(names).map(|(c, n)| field_json(c, n)).collect::<Vec<_>>(),
    })
}

/// The envelope schema (JSON) of a table's change events.
pub fn envelope_schema_json(table: &TableSchema) -> Result<Json, CodecError> {
    check_table(table)?;
    let ns = table_namespace(&table.db, &table.table);
    let names = field_names(&table.columns);
    Ok(json!({
        "type": "record",
        "name": format!("{ns}.Envelope"),
        "doc": format!("A row change of `{}`.`{}` (revdoor, Debezium-style envelope)", table.db, table.table),
        "revdoor.db": table.db,
        "revdoor.table": table.table,
        "fields": [
            {"name": "before", "type": ["null", row_record_json(table, &names, &ns)], "default": null},
            {"name": "after", "type": ["null", format!("{ns}.Value")], "default": null},
            {"name": "source", "type": {
                "type": "record",
                "name": format!("{NAMESPACE}.Source"),
                "fields": [
                    {"name": "shard", "type": "string", "doc": "origin shard (key range)"},
                    {"name": "db", "type": "string"},
                    {"name": "table", "type": "string"},
                    {"name": "ts_sec", "type": "long", "doc": "source commit time, seconds since the epoch"},
                ],
            }},
            {"name": "op", "type": "string", "doc": "c (insert), u (update), d (delete), r (read by the copy phase)"},
            {"name": "ts_ms", "type": "long", "doc": "capture time, milliseconds since the epoch"},
            {"name": "txn", "type": {
                "type": "record",
                "name": format!("{NAMESPACE}.Txn"),
                "fields": [
                    {"name": "gtid", "type": "string"},
                    {"name": "index", "type": "long", "doc": "index of the event in its transaction, from 0"},
                    {"name": "last", "type": "boolean"},
                ],
            }},
        ],
    }))
}

/// The key schema (JSON) of a table: a record of its primary-key columns.
pub fn key_schema_json(table: &TableSchema) -> Result<Json, CodecError> {
    check_table(table)?;
    let ns = table_namespace(&table.db, &table.table);
    let names = field_names(&table.columns);
    let fields: Vec<Json> = key_indexes(table)
        .into_iter()
        .map(|i| field_json(&table.columns[i], &names[i]))
        .collect();
    Ok(json!({
        "type": "record",
        "name": format!("{ns}.Key"),
        "doc": format!("The primary key of `{}`.`{}`", table.db, table.table),
        "fields": fields,
    }))
}

pub(super) fn parse_schema(json: &Json) -> Result<Schema, CodecError> {
    Schema::parse(json).map_err(|source| CodecError::Schema {
        name: json
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("?")
            .to_owned(),
        source,
    })
}

/// The envelope schema of a table's change events.
pub fn envelope_schema(table: &TableSchema) -> Result<Schema, CodecError> {
    parse_schema(&envelope_schema_json(table)?)
}

/// The key schema of a table.
pub fn key_schema(table: &TableSchema) -> Result<Schema, CodecError> {
    parse_schema(&key_schema_json(table)?)
}
