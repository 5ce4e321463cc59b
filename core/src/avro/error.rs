//! The module's errors: [`CodecError`] for a message, event or schema,
//! [`ValueError`] for one column value.

use crate::sqltype::{SqlType, SqlTypeError, TableSchema};

/// Why a message or event could not be encoded or decoded. All definite.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("table {table}: {source}")]
    Table {
        table: String,
        #[source]
        source: SqlTypeError,
    },
    #[error("table {table} has no primary key: revdoor keys every message by it")]
    NoPrimaryKey { table: String },
    #[error("build Avro schema `{name}`: {source}")]
    Schema {
        name: String,
        #[source]
        source: apache_avro::Error,
    },
    #[error("canonical form of an Avro schema: {reason}")]
    CanonicalForm { reason: String },
    #[error("column `{column}` of {table}: {source}")]
    Value {
        table: String,
        column: String,
        #[source]
        source: ValueError,
    },
    #[error("{image} row of {table} has column `{column}`, which the table schema does not (did the schema change?)")]
    UnknownColumn {
        table: String,
        image: &'static str,
        column: String,
    },
    #[error("{image} row of {table} lacks column `{column}` (binlog_row_image must be FULL)")]
    MissingColumn {
        table: String,
        image: &'static str,
        column: String,
    },
    #[error("event for {table}: {reason}")]
    Event { table: String, reason: String },
    #[error("encode Avro datum for schema {fingerprint:016x}: {source}")]
    Encode {
        fingerprint: u64,
        #[source]
        source: apache_avro::Error,
    },
    #[error("not an Avro single-object message: starts {found:02x?}, expected [c3, 01]")]
    BadMagic { found: Vec<u8> },
    #[error("Avro single-object message of {len} bytes is shorter than its 10-byte header")]
    Truncated { len: usize },
    #[error("unknown Avro schema fingerprint {fingerprint:016x} (not published to the schema topic, or another table's)")]
    UnknownFingerprint { fingerprint: u64 },
    #[error(
        "Avro datum for schema {fingerprint:016x} does not decode (truncated or corrupt): {source}"
    )]
    Datum {
        fingerprint: u64,
        #[source]
        source: apache_avro::Error,
    },
    #[error("Avro datum for schema {fingerprint:016x} does not decode: {reason}")]
    BadDatum { fingerprint: u64, reason: String },
    #[error("Avro datum for schema {fingerprint:016x} is truncated ({len} bytes)")]
    TruncatedDatum { fingerprint: u64, len: usize },
    #[error("Avro datum for schema {fingerprint:016x} has {extra} trailing bytes")]
    TrailingBytes { fingerprint: u64, extra: usize },
    #[error("decoded Avro value does not have the expected shape: {reason}")]
    Shape { reason: String },
}

/// `` `db`.`table` ``, as errors name a table.
pub(super) fn qualified(t: &TableSchema) -> String {
    format!("`{}`.`{}`", t.db, t.table)
}

/// A column value that cannot be carried for its SQL type. Never contains
/// the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sql_type}: {reason}")]
pub struct ValueError {
    pub sql_type: String,
    pub reason: String,
}

pub(super) fn verr(ty: &SqlType, reason: impl Into<String>) -> ValueError {
    ValueError {
        sql_type: ty.to_string(),
        reason: reason.into(),
    }
}
