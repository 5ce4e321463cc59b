//! Avro encoding of change events (DESIGN §3).
//!
//! Every Kafka message is Avro *single-object encoded*: `C3 01`, the 8-byte
//! little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing
//! Canonical Form, then the Avro binary datum. The value is an
//! [envelope](envelope_schema_json) (`before`, `after`, `source`, `op`,
//! `ts_ms`, `txn`, after Debezium's); the key is a record of the primary-key
//! columns. [`EventCodec`] does both for one table.
//!
//! # Type mapping
//!
//! This table is an operator contract: consumers of revdoor topics rely on
//! it. A nullable column's type is the union `["null", T]` (default `null`);
//! a `NOT NULL` column's is `T`. Properties `revdoor.*` sit on the Avro type
//! (they are not part of the canonical form, so they never change a
//! fingerprint); every field also carries `revdoor.column` (the original
//! column name) and a `doc` with the SQL type.
//!
//! | SQL type | Avro type `T` | value in Avro | canonical [`ColumnValue`] |
//! |---|---|---|---|
//! | `TINYINT`, `SMALLINT`, `MEDIUMINT`, `INT` (signed) | `int` | the number | `Int` |
//! | `TINYINT`, `SMALLINT`, `MEDIUMINT UNSIGNED` | `int` | the number | `UInt` |
//! | `INT UNSIGNED` | `long` | the number | `UInt` |
//! | `BIGINT` | `long` | the number | `Int` |
//! | `BIGINT UNSIGNED` | `bytes`, `decimal(20,0)` | the number (0 ..= 18446744073709551615) | `UInt` |
//! | `DECIMAL(p,s)` | `bytes`, `decimal(p,s)` | the number, exactly | `Bytes` of the text, `s` fraction digits (`-12.50`) |
//! | `FLOAT` | `float` | the 4-byte float | `Float` |
//! | `DOUBLE` | `double` | the 8-byte float | `Double` |
//! | `DATE` | `string`, `revdoor.type: date` | `YYYY-MM-DD`; zero dates kept (`0000-00-00`, `2024-00-15`) | `DateTime("YYYY-MM-DD")` |
//! | `DATETIME(fsp)` | `string`, `revdoor.type: datetime` | `YYYY-MM-DD HH:MM:SS[.f]` with exactly `fsp` fraction digits (MySQL's own text); zero dates kept | `DateTime` of the same text |
//! | `TIMESTAMP(fsp)` | `long`, `timestamp-micros` | microseconds since the epoch, UTC; **`0` is the zero timestamp `0000-00-00 00:00:00`** (no real `TIMESTAMP` is at the epoch: the range starts at `1970-01-01 00:00:01`) | `DateTime` of the UTC text, `fsp` fraction digits, zero as `0000-00-00 00:00:00`; re-insert with session `time_zone = '+00:00'` |
//! | `TIME(fsp)` | `long`, `revdoor.type: time-micros` (no logical type: `time-micros` is < 24 h) | signed microseconds, −838:59:59.999999 ..= 838:59:59.999999 | `Time("[-]HH:MM:SS[.f]")`, at least 2 hour digits, `fsp` fraction digits |
//! | `YEAR` | `int`, `revdoor.type: year` | `0` (`0000`) or 1901 ..= 2155 | `Int` |
//! | `BIT(n)` | `bytes`, `revdoor.type: bit`, `revdoor.bits: n` | big-endian, exactly ⌈n/8⌉ bytes | `Bytes`, ⌈n/8⌉ bytes |
//! | `ENUM(…)` | `string`, `revdoor.type: enum`, `revdoor.symbols` | the member's text (not its index); `""` for the invalid-value index 0 | `Bytes` of the member |
//! | `SET(…)` | `string`, `revdoor.type: set`, `revdoor.symbols` | members joined by `,` in declaration order (MySQL's own text); `""` for the empty set | `Bytes` of that text |
//! | `CHAR`, `VARCHAR`, `*TEXT` in `utf8`, `utf8mb3`, `utf8mb4`, `ascii` | `string` | the text | `Bytes` as stored |
//! | `CHAR`, `VARCHAR`, `*TEXT` in any other character set | `bytes`, `revdoor.charset: <charset>` | the bytes as stored, never transcoded | `Bytes` as stored |
//! | `BINARY`, `VARBINARY`, `*BLOB` | `bytes` | the bytes | `Bytes` |
//! | `JSON` (MySQL, and MariaDB `LONGTEXT` + `json_valid`) | `string`, `revdoor.type: json` | the JSON text as captured (not re-formatted) | `Bytes` of the text |
//! | `GEOMETRY` and every spatial type | `bytes`, `revdoor.type: geometry` | MySQL's internal form as stored: 4-byte little-endian SRID + WKB | `Bytes` |
//! | `INET4`, `INET6`, `UUID` (MariaDB) | `string`, `revdoor.type: inet4 / inet6 / uuid` | the text form | `Bytes` of the text |
//!
//! # Values
//!
//! [`to_avro`] accepts what capture gets from the binlog and what a text
//! protocol `SELECT` (the copy phase) returns, and [`canonicalize`] /
//! [`from_avro`] give the one canonical [`ColumnValue`] per value shown
//! above, which apply binds as a statement parameter. Accepted inputs:
//!
//! - integers: `Int`, `UInt` or decimal text `Bytes`; an unsigned column's
//!   negative `Int` is the two's complement of the column's width
//!   (`BIGINT UNSIGNED` 18446744073709551615 arrives as `Int(-1)`);
//! - `DECIMAL`: text `Bytes` (`-1.5`; fewer fraction digits are padded,
//!   more are refused unless zero), `Int`, `UInt`;
//! - `TIMESTAMP`: epoch-seconds text `Bytes` (`1700000000.123456`, the
//!   binlog form), `Int` / `UInt` epoch seconds, or UTC `DateTime` text;
//! - `DATE`, `DATETIME`: `DateTime` or text `Bytes` (`YYYY-MM-DD[ HH:MM:SS[.f]]`);
//! - `TIME`: `Time` or text `Bytes` (`[-]H:MM:SS[.f]`, 1 to 3 hour digits);
//! - `YEAR`: `Int`, `UInt` or text `Bytes` (`2024`, `0000`); `1900` is
//!   read as `0000` (mysql_common renders the stored 0 as `1900 + 0`, and
//!   1900 is no valid `YEAR`);
//! - `BIT`: `Bytes` (big-endian, any length whose value fits) or `Int` / `UInt`;
//! - `ENUM`: 1-based index `Int` / `UInt` (0 is the invalid value `''`) or
//!   the member's text; `SET`: bitmask `Int` / `UInt` or the text (a
//!   `Bytes` value is always text: see [`from_binlog`]);
//! - `INET4` / `INET6`: text, or the binary form (4 / 16 bytes; a 16-byte
//!   value that parses as IPv6 text is taken as text). `UUID` only as text:
//!   MariaDB stores UUIDs with swapped segments, so the 16-byte binlog form
//!   is refused rather than guessed.
//!
//! # Binlog values
//!
//! mysql_common 0.37 hands a `SET` over as its raw little-endian bitmask
//! *bytes*, which cannot be told apart from the member text a `SELECT`
//! returns. Capture must pass every binlog row through
//! [`EventCodec::from_binlog_row`] (or each value through [`from_binlog`])
//! before encoding; it turns those bytes into a `UInt` bitmask.
//!
//! Anything else, a value out of the column's range, a `NULL` in a
//! `NOT NULL` column or more fraction digits than the column keeps is a
//! [`ValueError`]: never silently changed.
//!
//! # Fingerprints
//!
//! apache-avro 0.22 computes fingerprints from a canonical form that keeps
//! logical-type attributes (DESIGN §11), which would make our single-object
//! headers disagree with Java and fastavro. [`parsing_canonical_form`]
//! follows the Avro specification (only `name`, `type`, `fields`, `symbols`,
//! `items`, `values`, `size`; full names; no white space) and
//! [`crc64_avro`] is the specification's Rabin fingerprint; both are pinned
//! against fastavro in the tests.
//!
//! Names: a record is `revdoor.<db>.<table>.Envelope` / `.Value` (the row) /
//! `.Key`; `revdoor.Source` and `revdoor.Txn` are shared. Database, table and
//! column names are made Avro-legal (`[A-Za-z_][A-Za-z0-9_]*`: other
//! characters become `_`, a leading digit gets a `_` prefix); a column whose
//! name is already legal keeps it, and a sanitised name that would collide
//! gets a `_2`, `_3`, … suffix. Two schemas that differ only in `revdoor.*`
//! properties or docs (say a column changed from `DATETIME` to `DATE`) have
//! the same fingerprint: decode with the [`EventCodec`] of the table's
//! current schema.
//!
//! # Errors
//!
//! Every [`CodecError`] is definite: the data, the schema or the message is
//! wrong and retrying cannot help. Errors never contain row values.

use std::collections::HashSet;
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Decimal, Schema};
use num_bigint::{BigInt, Sign};
use serde_json::{json, Map, Value as Json};

use crate::event::{ChangeEvent, ColumnValue, Op, Row, Source, TxnInfo};
use crate::sqltype::{BinaryKind, ColumnDef, SqlType, SqlTypeError, TableSchema};

/// The two magic bytes that open an Avro single-object encoded message.
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];
/// Magic plus fingerprint.
pub const SINGLE_OBJECT_HEADER_LEN: usize = 10;
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
fn qualified(t: &TableSchema) -> String {
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

fn verr(ty: &SqlType, reason: impl Into<String>) -> ValueError {
    ValueError {
        sql_type: ty.to_string(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------
// Fingerprints and the Parsing Canonical Form
// ---------------------------------------------------------------------------

const CRC64_EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const fn crc64_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (CRC64_EMPTY & 0u64.wrapping_sub(fp & 1));
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
}

static CRC64_TABLE: [u64; 256] = crc64_table();

/// The Avro specification's 64-bit Rabin fingerprint (CRC-64-AVRO).
pub fn crc64_avro(bytes: &[u8]) -> u64 {
    bytes.iter().fold(CRC64_EMPTY, |fp, b| {
        (fp >> 8) ^ CRC64_TABLE[((fp ^ u64::from(*b)) & 0xff) as usize]
    })
}

const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Parsing Canonical Form of a schema, per the Avro specification:
/// primitives in simple form, full names, only `name`, `type`, `fields`,
/// `symbols`, `items`, `values` and `size` (in that order), no white space.
pub fn parsing_canonical_form(schema: &Json) -> Result<String, CodecError> {
    let mut out = String::new();
    let mut defined = HashSet::new();
    pcf(schema, None, &mut defined, &mut out)?;
    Ok(out)
}

/// CRC-64-AVRO of a schema's Parsing Canonical Form.
pub fn fingerprint_json(schema: &Json) -> Result<u64, CodecError> {
    Ok(crc64_avro(parsing_canonical_form(schema)?.as_bytes()))
}

/// CRC-64-AVRO of a parsed schema's Parsing Canonical Form (per the
/// specification, unlike apache-avro's own `fingerprint`).
pub fn fingerprint(schema: &Schema) -> Result<u64, CodecError> {
    let json = serde_json::to_value(schema).map_err(|e| CodecError::CanonicalForm {
        reason: format!("serialise schema: {e}"),
    })?;
    fingerprint_json(&json)
}

fn pcf_err(reason: impl Into<String>) -> CodecError {
    CodecError::CanonicalForm {
        reason: reason.into(),
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes only `"`, `\` and control characters and writes
    // everything else as UTF-8, which is what the form asks for.
    out.push_str(&Json::String(s.to_owned()).to_string());
}

fn fullname(name: &str, namespace: Option<&str>, enclosing: Option<&str>) -> String {
    if name.contains('.') {
        return name.to_owned();
    }
    match namespace.or(enclosing) {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}

fn resolve_ref(
    name: &str,
    enclosing: Option<&str>,
    defined: &HashSet<String>,
) -> Result<String, CodecError> {
    let qualified = fullname(name, None, enclosing);
    if defined.contains(&qualified) {
        Ok(qualified)
    } else if defined.contains(name) {
        Ok(name.to_owned())
    } else {
        Err(pcf_err(format!("reference to undefined type `{name}`")))
    }
}

fn pcf(
    s: &Json,
    enclosing: Option<&str>,
    defined: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), CodecError> {
    match s {
        Json::String(name) => {
            if PRIMITIVES.contains(&name.as_str()) {
                push_json_str(out, name);
            } else {
                let full = resolve_ref(name, enclosing, defined)?;
                push_json_str(out, &full);
            }
            Ok(())
        }
        Json::Array(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pcf(b, enclosing, defined, out)?;
            }
            out.push(']');
            Ok(())
        }
        Json::Object(m) => {
            let ty = m
                .get("type")
                .ok_or_else(|| pcf_err("object without `type`"))?;
            let ty = match ty {
                Json::String(t) => t.as_str(),
                // `{"type": {...}}` wraps another schema.
                other => return pcf(other, enclosing, defined, out),
            };
            match ty {
                t if PRIMITIVES.contains(&t) => {
                    push_json_str(out, t);
                    Ok(())
                }
                "record" | "error" | "enum" | "fixed" => {
                    let name = m
                        .get("name")
                        .and_then(Json::as_str)
                        .ok_or_else(|| pcf_err(format!("{ty} without a `name`")))?;
                    let namespace = m.get("namespace").and_then(Json::as_str);
                    let full = fullname(name, namespace, enclosing);
                    if !defined.insert(full.clone()) {
                        return Err(pcf_err(format!("type `{full}` defined twice")));
                    }
                    out.push_str("{\"name\":");
                    push_json_str(out, &full);
                    out.push_str(",\"type\":");
                    push_json_str(out, ty);
                    let inner_ns = full.rsplit_once('.').map(|(ns, _)| ns.to_owned());
                    match ty {
                        "enum" => {
                            let symbols =
                                m.get("symbols").and_then(Json::as_array).ok_or_else(|| {
                                    pcf_err(format!("enum `{full}` without `symbols`"))
                                })?;
                            out.push_str(",\"symbols\":[");
                            for (i, sym) in symbols.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let sym = sym.as_str().ok_or_else(|| {
                                    pcf_err(format!("enum `{full}`: symbol not a string"))
                                })?;
                                push_json_str(out, sym);
                            }
                            out.push(']');
                        }
                        "fixed" => {
                            let size = m.get("size").and_then(Json::as_u64).ok_or_else(|| {
                                pcf_err(format!("fixed `{full}` without a `size`"))
                            })?;
                            out.push_str(&format!(",\"size\":{size}"));
                        }
                        _ => {
                            let fields =
                                m.get("fields").and_then(Json::as_array).ok_or_else(|| {
                                    pcf_err(format!("record `{full}` without `fields`"))
                                })?;
                            out.push_str(",\"fields\":[");
                            for (i, f) in fields.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let fname =
                                    f.get("name").and_then(Json::as_str).ok_or_else(|| {
                                        pcf_err(format!("record `{full}`: field without a `name`"))
                                    })?;
                                let ftype = f.get("type").ok_or_else(|| {
                                    pcf_err(format!(
                                        "record `{full}`: field `{fname}` without a `type`"
                                    ))
                                })?;
                                out.push_str("{\"name\":");
                                push_json_str(out, fname);
                                out.push_str(",\"type\":");
                                pcf(ftype, inner_ns.as_deref(), defined, out)?;
                                out.push('}');
                            }
                            out.push(']');
                        }
                    }
                    out.push('}');
                    Ok(())
                }
                "array" => {
                    let items = m
                        .get("items")
                        .ok_or_else(|| pcf_err("array without `items`"))?;
                    out.push_str("{\"type\":\"array\",\"items\":");
                    pcf(items, enclosing, defined, out)?;
                    out.push('}');
                    Ok(())
                }
                "map" => {
                    let values = m
                        .get("values")
                        .ok_or_else(|| pcf_err("map without `values`"))?;
                    out.push_str("{\"type\":\"map\",\"values\":");
                    pcf(values, enclosing, defined, out)?;
                    out.push('}');
                    Ok(())
                }
                // `{"type": "some.Named"}` is a reference.
                name => {
                    let full = resolve_ref(name, enclosing, defined)?;
                    push_json_str(out, &full);
                    Ok(())
                }
            }
        }
        other => Err(pcf_err(format!("not a schema: {other}"))),
    }
}

// ---------------------------------------------------------------------------
// Single-object encoding
// ---------------------------------------------------------------------------

/// `C3 01` + fingerprint (little-endian) + the Avro binary datum of `value`.
pub fn encode_single(
    schema: &Schema,
    fingerprint: u64,
    value: &Value,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
    out.extend_from_slice(&fingerprint.to_le_bytes());
    let encode = |e| CodecError::Encode {
        fingerprint,
        source: e,
    };
    let writer = GenericDatumWriter::builder(schema)
        .build()
        .map_err(encode)?;
    writer.write_value_ref(&mut out, value).map_err(encode)?;
    Ok(out)
}

/// The fingerprint in a single-object message's header.
pub fn single_object_fingerprint(bytes: &[u8]) -> Result<u64, CodecError> {
    if bytes.len() >= 2 && bytes[..2] != SINGLE_OBJECT_MAGIC {
        return Err(CodecError::BadMagic {
            found: bytes[..2].to_vec(),
        });
    }
    let header: [u8; 8] = bytes
        .get(2..SINGLE_OBJECT_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(CodecError::Truncated { len: bytes.len() })?;
    Ok(u64::from_le_bytes(header))
}

/// Decode a single-object message with the schema `lookup` gives for its
/// fingerprint. Returns the fingerprint and the value.
pub fn decode_single<'s>(
    bytes: &[u8],
    lookup: impl Fn(u64) -> Option<&'s Schema>,
) -> Result<(u64, Value), CodecError> {
    let fingerprint = single_object_fingerprint(bytes)?;
    let schema = lookup(fingerprint).ok_or(CodecError::UnknownFingerprint { fingerprint })?;
    let datum_err = |e| CodecError::Datum {
        fingerprint,
        source: e,
    };
    let reader = GenericDatumReader::builder(schema)
        .build()
        .map_err(datum_err)?;
    read_datum(&reader, fingerprint, bytes)
}

/// Read the datum of single-object `bytes` (fingerprint already checked)
/// with a prepared reader.
fn read_datum(
    reader: &GenericDatumReader<'_>,
    fingerprint: u64,
    bytes: &[u8],
) -> Result<(u64, Value), CodecError> {
    let datum = bytes
        .get(SINGLE_OBJECT_HEADER_LEN..)
        .ok_or(CodecError::Truncated { len: bytes.len() })?;
    let datum_err = |e| CodecError::Datum {
        fingerprint,
        source: e,
    };
    let mut input = EofTracking {
        rest: datum,
        hit_eof: false,
    };
    let value = reader.read_value(&mut input);
    // apache-avro 0.22 decodes a boolean, a string or a union index cut off
    // by the end of input as `null` instead of failing, so a truncated datum
    // can "decode": any read past the end means truncation.
    if input.hit_eof {
        return Err(CodecError::TruncatedDatum {
            fingerprint,
            len: datum.len(),
        });
    }
    let value = value.map_err(datum_err)?;
    if !input.rest.is_empty() {
        return Err(CodecError::TrailingBytes {
            fingerprint,
            extra: input.rest.len(),
        });
    }
    Ok((fingerprint, value))
}

/// A reader over a slice that remembers whether anyone read past its end.
struct EofTracking<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl Read for EofTracking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.hit_eof = true;
        }
        self.rest.read(buf)
    }
}

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

fn key_indexes(table: &TableSchema) -> Vec<usize> {
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

fn parse_schema(json: &Json) -> Result<Schema, CodecError> {
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

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

const MAX_TIME_MICROS: i64 = ((838 * 60 + 59) * 60 + 59) * 1_000_000 + 999_999;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn text<'a>(ty: &SqlType, b: &'a [u8]) -> Result<&'a str, ValueError> {
    std::str::from_utf8(b).map_err(|_| verr(ty, "text value is not UTF-8"))
}

fn shape(ty: &SqlType, v: &ColumnValue) -> ValueError {
    let kind = match v {
        ColumnValue::Null => "NULL",
        ColumnValue::Int(_) => "Int",
        ColumnValue::UInt(_) => "UInt",
        ColumnValue::Float(_) => "Float",
        ColumnValue::Double(_) => "Double",
        ColumnValue::Bytes(_) => "Bytes",
        ColumnValue::DateTime(_) => "DateTime",
        ColumnValue::Time(_) => "Time",
    };
    verr(ty, format!("cannot take a {kind} value"))
}

/// Signed integer in `[min, max]` from Int, UInt or text.
fn signed(ty: &SqlType, v: &ColumnValue, min: i64, max: i64) -> Result<i64, ValueError> {
    let i = match v {
        ColumnValue::Int(i) => *i,
        ColumnValue::UInt(u) => i64::try_from(*u).map_err(|_| verr(ty, "value out of range"))?,
        ColumnValue::Bytes(b) => text(ty, b)?
            .parse::<i64>()
            .map_err(|_| verr(ty, "text is not an integer"))?,
        other => return Err(shape(ty, other)),
    };
    if i < min || i > max {
        return Err(verr(ty, "value out of range"));
    }
    Ok(i)
}

/// Unsigned integer of `bits` width; a negative Int is the two's complement.
fn unsigned(ty: &SqlType, v: &ColumnValue, bits: u32) -> Result<u64, ValueError> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let u = match v {
        ColumnValue::UInt(u) => *u,
        ColumnValue::Int(i) if *i >= 0 => *i as u64,
        ColumnValue::Int(i) => {
            let min = if bits == 64 {
                i64::MIN
            } else {
                -(1i64 << (bits - 1))
            };
            if *i < min {
                return Err(verr(
                    ty,
                    "negative value out of range for an unsigned column",
                ));
            }
            (*i as u64) & max
        }
        ColumnValue::Bytes(b) => text(ty, b)?
            .parse::<u64>()
            .map_err(|_| verr(ty, "text is not an unsigned integer"))?,
        other => return Err(shape(ty, other)),
    };
    if u > max {
        return Err(verr(ty, "value out of range"));
    }
    Ok(u)
}

fn int_bounds(ty: &SqlType) -> Option<(bool, u32)> {
    match ty {
        SqlType::TinyInt { unsigned } => Some((*unsigned, 8)),
        SqlType::SmallInt { unsigned } => Some((*unsigned, 16)),
        SqlType::MediumInt { unsigned } => Some((*unsigned, 24)),
        SqlType::Int { unsigned } => Some((*unsigned, 32)),
        SqlType::BigInt { unsigned } => Some((*unsigned, 64)),
        _ => None,
    }
}

/// Parse decimal text into the unscaled integer at `scale`, checking
/// `precision`.
fn parse_decimal(ty: &SqlType, s: &str, precision: u8, scale: u8) -> Result<BigInt, ValueError> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(verr(ty, "text is not a decimal number"));
    }
    let int_part = int_part.trim_start_matches('0');
    let scale = usize::from(scale);
    if int_part.len() > usize::from(precision).saturating_sub(scale) {
        return Err(verr(ty, "value has more integer digits than the column"));
    }
    let (kept, dropped) = frac_part.split_at(frac_part.len().min(scale));
    if dropped.bytes().any(|c| c != b'0') {
        return Err(verr(ty, "value has more fraction digits than the column"));
    }
    let mut digits = String::with_capacity(int_part.len() + scale + 1);
    digits.push_str(int_part);
    digits.push_str(kept);
    digits.push_str(&"0".repeat(scale - kept.len()));
    let magnitude = if digits.is_empty() {
        BigInt::from(0)
    } else {
        BigInt::parse_bytes(digits.as_bytes(), 10)
            .ok_or_else(|| verr(ty, "text is not a decimal number"))?
    };
    Ok(if neg { -magnitude } else { magnitude })
}

/// Format an unscaled integer with `scale` fraction digits, checking
/// `precision`.
fn format_decimal(
    ty: &SqlType,
    unscaled: &BigInt,
    precision: u8,
    scale: u8,
) -> Result<String, ValueError> {
    let digits = unscaled.magnitude().to_string();
    if digits.len() > usize::from(precision) && unscaled.sign() != Sign::NoSign {
        return Err(verr(
            ty,
            "value has more digits than the column's precision",
        ));
    }
    let scale = usize::from(scale);
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    let sign = if unscaled.sign() == Sign::Minus {
        "-"
    } else {
        ""
    };
    Ok(if scale == 0 {
        format!("{sign}{i}")
    } else {
        format!("{sign}{i}.{f}")
    })
}

/// Calendar parts of a DATE / DATETIME / TIMESTAMP text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |n, d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Parse `.f` (1 to 6 digits) into microseconds.
fn fraction(ty: &SqlType, b: &[u8]) -> Result<u32, ValueError> {
    if b.is_empty() {
        return Ok(0);
    }
    let Some(f) = b.strip_prefix(b".") else {
        return Err(verr(ty, "bad fractional seconds"));
    };
    if f.is_empty() || f.len() > 6 {
        return Err(verr(ty, "fractional seconds need 1 to 6 digits"));
    }
    let n = digits(f).ok_or_else(|| verr(ty, "bad fractional seconds"))?;
    Ok(n * 10u32.pow(6 - f.len() as u32))
}

/// `YYYY-MM-DD[( |T)HH:MM:SS[.f]]`; zero parts allowed (MySQL zero dates).
fn parse_civil(ty: &SqlType, s: &str) -> Result<Civil, ValueError> {
    let b = s.as_bytes();
    let bad = || verr(ty, "text is not YYYY-MM-DD[ HH:MM:SS[.ffffff]]");
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let year = digits(&b[0..4]).ok_or_else(bad)?;
    let month = digits(&b[5..7]).ok_or_else(bad)?;
    let day = digits(&b[8..10]).ok_or_else(bad)?;
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
    if b.len() > 10 {
        if b.len() < 19 || !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' || b[16] != b':' {
            return Err(bad());
        }
        hour = digits(&b[11..13]).ok_or_else(bad)?;
        minute = digits(&b[14..16]).ok_or_else(bad)?;
        second = digits(&b[17..19]).ok_or_else(bad)?;
        micros = fraction(ty, &b[19..])?;
    }
    if month > 12 || day > 31 || hour > 23 || minute > 59 || second > 59 {
        return Err(verr(ty, "date or time part out of range"));
    }
    Ok(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    })
}

/// `.f` with `fsp` digits, refusing precision the column does not keep.
fn format_fraction(ty: &SqlType, micros: u32, fsp: u8) -> Result<String, ValueError> {
    let unit = 10u32.pow(6 - u32::from(fsp));
    if !micros.is_multiple_of(unit) {
        return Err(verr(
            ty,
            "value has more fractional-second digits than the column",
        ));
    }
    Ok(if fsp == 0 {
        String::new()
    } else {
        format!(".{:0width$}", micros / unit, width = usize::from(fsp))
    })
}

fn format_civil(ty: &SqlType, c: &Civil, fsp: u8) -> Result<String, ValueError> {
    Ok(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        format_fraction(ty, c.micros, fsp)?
    ))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// TIMESTAMP text (UTC) to microseconds since the epoch; the zero
/// timestamp is 0.
fn timestamp_micros_from_civil(ty: &SqlType, c: &Civil) -> Result<i64, ValueError> {
    if c.year == 0 && c.month == 0 && c.day == 0 {
        if (c.hour, c.minute, c.second, c.micros) == (0, 0, 0, 0) {
            return Ok(0);
        }
        return Err(verr(ty, "zero date with a non-zero time"));
    }
    let y = i64::from(c.year);
    if c.month == 0 || c.day == 0 || c.day > days_in_month(y, c.month) {
        return Err(verr(
            ty,
            "not a calendar date (TIMESTAMP keeps no zero parts)",
        ));
    }
    let micros = days_from_civil(y, c.month, c.day) * MICROS_PER_DAY
        + (i64::from(c.hour) * 3600 + i64::from(c.minute) * 60 + i64::from(c.second)) * 1_000_000
        + i64::from(c.micros);
    if micros <= 0 {
        return Err(verr(ty, "TIMESTAMP before 1970-01-01 00:00:00 UTC"));
    }
    Ok(micros)
}

fn timestamp_text(ty: &SqlType, micros: i64, fsp: u8) -> Result<String, ValueError> {
    if micros < 0 {
        return Err(verr(ty, "negative TIMESTAMP"));
    }
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rest = micros.rem_euclid(MICROS_PER_DAY);
    let (y, month, day) = if micros == 0 {
        (0, 0, 0)
    } else {
        civil_from_days(days)
    };
    if y > 9999 {
        return Err(verr(ty, "TIMESTAMP after year 9999"));
    }
    let secs = rest / 1_000_000;
    let c = Civil {
        year: y as u32,
        month,
        day,
        hour: (secs / 3600) as u32,
        minute: (secs / 60 % 60) as u32,
        second: (secs % 60) as u32,
        micros: (rest % 1_000_000) as u32,
    };
    format_civil(ty, &c, fsp)
}

/// Epoch seconds text `S[.f]` (the binlog's TIMESTAMP form).
fn epoch_text_micros(ty: &SqlType, s: &str) -> Result<i64, ValueError> {
    let (secs, frac) = match s.find('.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let secs = secs
        .parse::<u64>()
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .filter(|n| *n < i64::MAX / 1_000_000)
        .ok_or_else(|| verr(ty, "text is not epoch seconds"))?;
    Ok(secs * 1_000_000 + i64::from(fraction(ty, frac.as_bytes())?))
}

/// TIME text `[-]H:MM:SS[.f]` (1 to 3 hour digits) to signed microseconds.
fn time_micros(ty: &SqlType, s: &str) -> Result<i64, ValueError> {
    let bad = || verr(ty, "text is not [-]HH:MM:SS[.ffffff]");
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let b = body.as_bytes();
    let colon = body.find(':').ok_or_else(bad)?;
    if colon == 0 || colon > 3 || b.len() < colon + 6 || b[colon + 3] != b':' {
        return Err(bad());
    }
    let h = digits(&b[..colon]).ok_or_else(bad)?;
    let m = digits(&b[colon + 1..colon + 3]).ok_or_else(bad)?;
    let sec = digits(&b[colon + 4..colon + 6]).ok_or_else(bad)?;
    if m > 59 || sec > 59 {
        return Err(verr(ty, "minutes or seconds out of range"));
    }
    let f = fraction(ty, &b[colon + 6..])?;
    let abs = (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(sec)) * 1_000_000 + i64::from(f);
    if abs > MAX_TIME_MICROS {
        return Err(verr(ty, "TIME out of range (±838:59:59.999999)"));
    }
    Ok(if neg { -abs } else { abs })
}

fn time_text(ty: &SqlType, micros: i64, fsp: u8) -> Result<String, ValueError> {
    if micros.unsigned_abs() > MAX_TIME_MICROS.unsigned_abs() {
        return Err(verr(ty, "TIME out of range (±838:59:59.999999)"));
    }
    let abs = micros.unsigned_abs();
    let secs = abs / 1_000_000;
    Ok(format!(
        "{}{:02}:{:02}:{:02}{}",
        if micros < 0 { "-" } else { "" },
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        format_fraction(ty, (abs % 1_000_000) as u32, fsp)?
    ))
}

fn bit_bytes(ty: &SqlType, v: &ColumnValue, bits: u8) -> Result<Vec<u8>, ValueError> {
    let width = usize::from(bits).div_ceil(8);
    let mut out = match v {
        ColumnValue::Bytes(b) => {
            let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            let significant = &b[first..];
            if significant.len() > width {
                return Err(verr(ty, "value wider than the column"));
            }
            let mut out = vec![0u8; width - significant.len()];
            out.extend_from_slice(significant);
            out
        }
        ColumnValue::UInt(_) | ColumnValue::Int(_) => {
            let u = match v {
                ColumnValue::UInt(u) => *u,
                ColumnValue::Int(i) if *i >= 0 || bits == 64 => *i as u64,
                _ => return Err(verr(ty, "negative value")),
            };
            u.to_be_bytes()[8 - width..].to_vec()
        }
        other => return Err(shape(ty, other)),
    };
    let spare = width * 8 - usize::from(bits);
    if spare > 0 && out.first().is_some_and(|b| b >> (8 - spare) != 0) {
        return Err(verr(ty, "value wider than the column"));
    }
    out.shrink_to_fit();
    Ok(out)
}

fn enum_member(ty: &SqlType, values: &[String], v: &ColumnValue) -> Result<Vec<u8>, ValueError> {
    let index = match v {
        ColumnValue::Int(i) => u64::try_from(*i).map_err(|_| verr(ty, "negative ENUM index"))?,
        ColumnValue::UInt(u) => *u,
        ColumnValue::Bytes(b) => {
            let s = text(ty, b)?;
            if s.is_empty() || values.iter().any(|m| m == s) {
                return Ok(b.clone());
            }
            return Err(verr(ty, "text is not a member (did the ENUM change?)"));
        }
        other => return Err(shape(ty, other)),
    };
    if index == 0 {
        return Ok(Vec::new());
    }
    usize::try_from(index - 1)
        .ok()
        .and_then(|i| values.get(i))
        .map(|m| m.as_bytes().to_vec())
        .ok_or_else(|| {
            verr(
                ty,
                format!(
                    "ENUM index beyond its {} members (did the ENUM change?)",
                    values.len()
                ),
            )
        })
}

fn set_text(ty: &SqlType, values: &[String], mask: u64) -> Result<Vec<u8>, ValueError> {
    if values.len() < 64 && mask >> values.len() != 0 {
        return Err(verr(
            ty,
            format!(
                "SET bitmask beyond its {} members (did the SET change?)",
                values.len()
            ),
        ));
    }
    let members: Vec<&str> = values
        .iter()
        .enumerate()
        .filter(|(i, _)| mask >> i & 1 == 1)
        .map(|(_, m)| m.as_str())
        .collect();
    Ok(members.join(",").into_bytes())
}

fn set_members(ty: &SqlType, values: &[String], v: &ColumnValue) -> Result<Vec<u8>, ValueError> {
    let mask = match v {
        ColumnValue::Int(i) => *i as u64,
        ColumnValue::UInt(u) => *u,
        ColumnValue::Bytes(b) => {
            let s = text(ty, b)?;
            let mut mask = 0u64;
            if !s.is_empty() {
                for part in s.split(',') {
                    let i = values
                        .iter()
                        .position(|m| m == part)
                        .ok_or_else(|| verr(ty, "text has a non-member (did the SET change?)"))?;
                    mask |= 1 << i;
                }
            }
            mask
        }
        other => return Err(shape(ty, other)),
    };
    set_text(ty, values, mask)
}

fn is_uuid_text(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        36 => b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        }),
        32 => b.iter().all(u8::is_ascii_hexdigit),
        _ => false,
    }
}

fn bytes_of<'a>(ty: &SqlType, v: &'a ColumnValue) -> Result<&'a Vec<u8>, ValueError> {
    match v {
        ColumnValue::Bytes(b) => Ok(b),
        other => Err(shape(ty, other)),
    }
}

fn utf8_bytes(ty: &SqlType, v: &ColumnValue) -> Result<Vec<u8>, ValueError> {
    let b = bytes_of(ty, v)?;
    text(ty, b)?;
    Ok(b.clone())
}

/// Text of a DATE / DATETIME / TIME / TIMESTAMP value given as text.
fn temporal_text<'a>(ty: &SqlType, v: &'a ColumnValue) -> Result<&'a str, ValueError> {
    match v {
        ColumnValue::DateTime(s) | ColumnValue::Time(s) => Ok(s),
        ColumnValue::Bytes(b) => text(ty, b),
        other => Err(shape(ty, other)),
    }
}

/// The canonical form of a value for its column type (see the module docs):
/// what [`from_avro`] returns and what apply binds. `NULL` stays `NULL`.
pub fn canonicalize(ty: &SqlType, v: &ColumnValue) -> Result<ColumnValue, ValueError> {
    if matches!(v, ColumnValue::Null) {
        return Ok(ColumnValue::Null);
    }
    Ok(match ty {
        SqlType::TinyInt { .. }
        | SqlType::SmallInt { .. }
        | SqlType::MediumInt { .. }
        | SqlType::Int { .. }
        | SqlType::BigInt { .. } => {
            let (is_unsigned, bits) =
                int_bounds(ty).ok_or_else(|| verr(ty, "not an integer type"))?;
            if is_unsigned {
                ColumnValue::UInt(unsigned(ty, v, bits)?)
            } else if bits == 64 {
                ColumnValue::Int(signed(ty, v, i64::MIN, i64::MAX)?)
            } else {
                let max = (1i64 << (bits - 1)) - 1;
                ColumnValue::Int(signed(ty, v, -max - 1, max)?)
            }
        }
        SqlType::Decimal { precision, scale } => {
            let unscaled = match v {
                ColumnValue::Bytes(b) => parse_decimal(ty, text(ty, b)?, *precision, *scale)?,
                ColumnValue::Int(i) => parse_decimal(ty, &i.to_string(), *precision, *scale)?,
                ColumnValue::UInt(u) => parse_decimal(ty, &u.to_string(), *precision, *scale)?,
                other => return Err(shape(ty, other)),
            };
            ColumnValue::Bytes(format_decimal(ty, &unscaled, *precision, *scale)?.into_bytes())
        }
        SqlType::Float => {
            let f = match v {
                ColumnValue::Float(f) => *f,
                ColumnValue::Double(d) if f64::from(*d as f32) == *d || d.is_nan() => *d as f32,
                ColumnValue::Double(_) => return Err(verr(ty, "DOUBLE value not exact as FLOAT")),
                ColumnValue::Bytes(b) => text(ty, b)?
                    .parse::<f32>()
                    .map_err(|_| verr(ty, "text is not a number"))?,
                other => return Err(shape(ty, other)),
            };
            if !f.is_finite() {
                return Err(verr(ty, "not a finite number"));
            }
            ColumnValue::Float(f)
        }
        SqlType::Double => {
            let d = match v {
                ColumnValue::Double(d) => *d,
                ColumnValue::Float(f) => f64::from(*f),
                ColumnValue::Bytes(b) => text(ty, b)?
                    .parse::<f64>()
                    .map_err(|_| verr(ty, "text is not a number"))?,
                other => return Err(shape(ty, other)),
            };
            if !d.is_finite() {
                return Err(verr(ty, "not a finite number"));
            }
            ColumnValue::Double(d)
        }
        SqlType::Date => {
            let c = parse_civil(ty, temporal_text(ty, v)?)?;
            if (c.hour, c.minute, c.second, c.micros) != (0, 0, 0, 0) {
                return Err(verr(ty, "DATE with a non-zero time"));
            }
            ColumnValue::DateTime(format!("{:04}-{:02}-{:02}", c.year, c.month, c.day))
        }
        SqlType::DateTime { fsp } => {
            let c = parse_civil(ty, temporal_text(ty, v)?)?;
            ColumnValue::DateTime(format_civil(ty, &c, *fsp)?)
        }
        SqlType::Timestamp { fsp } => {
            ColumnValue::DateTime(timestamp_text(ty, timestamp_micros(ty, v)?, *fsp)?)
        }
        SqlType::Time { fsp } => {
            let micros = time_micros(ty, temporal_text(ty, v)?)?;
            ColumnValue::Time(time_text(ty, micros, *fsp)?)
        }
        SqlType::Year => {
            let y = match v {
                ColumnValue::Bytes(b) => text(ty, b)?
                    .parse::<i64>()
                    .map_err(|_| verr(ty, "text is not a year"))?,
                other => signed(ty, other, i64::MIN, i64::MAX)?,
            };
            match y {
                // mysql_common's binlog decoder renders YEAR 0000 as 1900.
                0 | 1900 => ColumnValue::Int(0),
                1901..=2155 => ColumnValue::Int(y),
                _ => return Err(verr(ty, "YEAR out of range (0, 1901..=2155)")),
            }
        }
        SqlType::Bit { bits } => ColumnValue::Bytes(bit_bytes(ty, v, *bits)?),
        SqlType::Enum { values } => ColumnValue::Bytes(enum_member(ty, values, v)?),
        SqlType::Set { values } => ColumnValue::Bytes(set_members(ty, values, v)?),
        SqlType::String { .. } if ty.is_utf8_string() => ColumnValue::Bytes(utf8_bytes(ty, v)?),
        SqlType::String { .. } | SqlType::Binary { .. } | SqlType::Geometry => {
            ColumnValue::Bytes(bytes_of(ty, v)?.clone())
        }
        SqlType::Json => ColumnValue::Bytes(utf8_bytes(ty, v)?),
        SqlType::Inet4 => {
            let b = bytes_of(ty, v)?;
            match std::str::from_utf8(b)
                .ok()
                .filter(|s| s.parse::<Ipv4Addr>().is_ok())
            {
                Some(_) => ColumnValue::Bytes(b.clone()),
                None => match <[u8; 4]>::try_from(b.as_slice()) {
                    Ok(a) => ColumnValue::Bytes(Ipv4Addr::from(a).to_string().into_bytes()),
                    Err(_) => return Err(verr(ty, "neither IPv4 text nor 4 bytes")),
                },
            }
        }
        SqlType::Inet6 => {
            let b = bytes_of(ty, v)?;
            match std::str::from_utf8(b)
                .ok()
                .filter(|s| s.parse::<Ipv6Addr>().is_ok())
            {
                Some(_) => ColumnValue::Bytes(b.clone()),
                None => match <[u8; 16]>::try_from(b.as_slice()) {
                    Ok(a) => ColumnValue::Bytes(Ipv6Addr::from(a).to_string().into_bytes()),
                    Err(_) => return Err(verr(ty, "neither IPv6 text nor 16 bytes")),
                },
            }
        }
        SqlType::Uuid => {
            let b = bytes_of(ty, v)?;
            match std::str::from_utf8(b) {
                Ok(s) if is_uuid_text(s) => ColumnValue::Bytes(b.clone()),
                _ if b.len() == 16 => {
                    return Err(verr(
                        ty,
                        "binary UUID (MariaDB's storage form, segments swapped): capture must send the text form",
                    ))
                }
                _ => return Err(verr(ty, "not UUID text")),
            }
        }
    })
}

/// Microseconds since the epoch of a TIMESTAMP value in any accepted form.
fn timestamp_micros(ty: &SqlType, v: &ColumnValue) -> Result<i64, ValueError> {
    match v {
        ColumnValue::Bytes(b) => {
            let s = text(ty, b)?;
            if s.contains(['-', ':', ' ']) {
                timestamp_micros_from_civil(ty, &parse_civil(ty, s)?)
            } else {
                epoch_text_micros(ty, s)
            }
        }
        ColumnValue::DateTime(s) => timestamp_micros_from_civil(ty, &parse_civil(ty, s)?),
        ColumnValue::Int(_) | ColumnValue::UInt(_) => {
            let secs = signed(ty, v, 0, i64::MAX / 1_000_000 - 1)?;
            Ok(secs * 1_000_000)
        }
        other => Err(shape(ty, other)),
    }
}

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

/// Avro's `long` (and `int`): zig-zag, then 7 bits per byte, low first.
fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Avro's `bytes` and `string`: length, then the bytes.
fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_bytes(out, s.as_bytes());
}

/// The binary encoding of the values [`to_avro`] makes.
fn write_avro(out: &mut Vec<u8>, v: &Value) -> Result<(), &'static str> {
    match v {
        Value::Null => {}
        Value::Boolean(b) => out.push(u8::from(*b)),
        Value::Int(i) => write_long(out, i64::from(*i)),
        Value::Long(l) | Value::TimestampMicros(l) | Value::TimeMicros(l) => write_long(out, *l),
        Value::Float(f) => out.extend_from_slice(&f.to_le_bytes()),
        Value::Double(d) => out.extend_from_slice(&d.to_le_bytes()),
        Value::Bytes(b) => write_bytes(out, b),
        Value::String(s) => write_str(out, s),
        Value::Decimal(d) => {
            let b = Vec::<u8>::try_from(d).map_err(|_| "bad decimal")?;
            write_bytes(out, &b);
        }
        _ => return Err("no binary encoding for this Avro value (revdoor bug)"),
    }
    Ok(())
}

fn decimal_value(unscaled: &BigInt) -> Value {
    Value::Decimal(Decimal::from(unscaled.to_signed_bytes_be()))
}

fn into_string(ty: &SqlType, b: Vec<u8>) -> Result<Value, ValueError> {
    String::from_utf8(b)
        .map(Value::String)
        .map_err(|_| verr(ty, "text value is not UTF-8"))
}

/// Bytes MySQL packs a `SET` of `members` into (1 to 4, or 8).
fn set_pack_len(members: usize) -> usize {
    match members.div_ceil(8) {
        n @ 0..=4 => n,
        _ => 8,
    }
}

/// Turn a value as mysql_common's binlog decoder gives it into one
/// [`to_avro`] reads unambiguously: a `SET`'s raw little-endian bitmask
/// bytes become a `UInt` bitmask, a signed `MEDIUMINT` read without sign
/// extension gets its sign back, and a `BINARY(n)` gets back the trailing
/// zero bytes the binlog drops. Other values pass unchanged.
pub fn from_binlog(ty: &SqlType, v: ColumnValue) -> Result<ColumnValue, ValueError> {
    match (ty, v) {
        (SqlType::Set { values }, ColumnValue::Bytes(b)) => {
            let want = set_pack_len(values.len());
            if b.len() != want {
                return Err(verr(
                    ty,
                    format!("binlog SET value of {} bytes, expected {want}", b.len()),
                ));
            }
            let mut le = [0u8; 8];
            le[..b.len()].copy_from_slice(&b);
            Ok(ColumnValue::UInt(u64::from_le_bytes(le)))
        }
        // The binlog stores BINARY(n) without its trailing zero bytes; the
        // column's value is always n bytes.
        (
            SqlType::Binary {
                kind: BinaryKind::Binary(n),
            },
            ColumnValue::Bytes(mut b),
        ) if b.len() < *n as usize => {
            b.resize(*n as usize, 0);
            Ok(ColumnValue::Bytes(b))
        }
        // mysql_common reads a signed MEDIUMINT's 3 bytes without sign
        // extension: -8388608 arrives as 8388608.
        (SqlType::MediumInt { unsigned: false }, ColumnValue::Int(i))
            if (0x80_0000..0x100_0000).contains(&i) =>
        {
            Ok(ColumnValue::Int(i - 0x100_0000))
        }
        (SqlType::MediumInt { unsigned: false }, ColumnValue::UInt(u))
            if (0x80_0000..0x100_0000).contains(&u) =>
        {
            Ok(ColumnValue::Int(u as i64 - 0x100_0000))
        }
        (_, v) => Ok(v),
    }
}

/// The Avro value of a column value (without the `["null", T]` union: a
/// `NULL` becomes `Value::Null`).
pub fn to_avro(ty: &SqlType, v: &ColumnValue) -> Result<Value, ValueError> {
    let c = canonicalize(ty, v)?;
    canonical_to_avro(ty, c)
}

fn canonical_to_avro(ty: &SqlType, c: ColumnValue) -> Result<Value, ValueError> {
    Ok(match (ty, c) {
        (_, ColumnValue::Null) => Value::Null,
        (SqlType::BigInt { unsigned: true }, ColumnValue::UInt(u)) => {
            decimal_value(&BigInt::from(u))
        }
        (SqlType::Int { unsigned: true }, ColumnValue::UInt(u)) => Value::Long(u as i64),
        (SqlType::BigInt { unsigned: false }, ColumnValue::Int(i)) => Value::Long(i),
        (
            SqlType::TinyInt { .. } | SqlType::SmallInt { .. } | SqlType::MediumInt { .. },
            ColumnValue::UInt(u),
        ) => Value::Int(i32::try_from(u).map_err(|_| verr(ty, "value out of range"))?),
        (
            SqlType::TinyInt { .. }
            | SqlType::SmallInt { .. }
            | SqlType::MediumInt { .. }
            | SqlType::Int { .. },
            ColumnValue::Int(i),
        )
        | (SqlType::Year, ColumnValue::Int(i)) => {
            Value::Int(i32::try_from(i).map_err(|_| verr(ty, "value out of range"))?)
        }
        (SqlType::Decimal { precision, scale }, ColumnValue::Bytes(b)) => {
            decimal_value(&parse_decimal(ty, text(ty, &b)?, *precision, *scale)?)
        }
        (SqlType::Float, ColumnValue::Float(f)) => Value::Float(f),
        (SqlType::Double, ColumnValue::Double(d)) => Value::Double(d),
        (SqlType::Date | SqlType::DateTime { .. }, ColumnValue::DateTime(s)) => Value::String(s),
        (SqlType::Timestamp { .. }, ColumnValue::DateTime(s)) => {
            Value::TimestampMicros(timestamp_micros_from_civil(ty, &parse_civil(ty, &s)?)?)
        }
        (SqlType::Time { .. }, ColumnValue::Time(s)) => Value::Long(time_micros(ty, &s)?),
        (
            SqlType::Enum { .. }
            | SqlType::Set { .. }
            | SqlType::Json
            | SqlType::Inet4
            | SqlType::Inet6
            | SqlType::Uuid,
            ColumnValue::Bytes(b),
        ) => into_string(ty, b)?,
        (SqlType::String { .. }, ColumnValue::Bytes(b)) if ty.is_utf8_string() => {
            into_string(ty, b)?
        }
        (
            SqlType::String { .. }
            | SqlType::Binary { .. }
            | SqlType::Geometry
            | SqlType::Bit { .. },
            ColumnValue::Bytes(b),
        ) => Value::Bytes(b),
        (_, other) => return Err(shape(ty, &other)),
    })
}

fn decimal_of(ty: &SqlType, v: &Value) -> Result<BigInt, ValueError> {
    match v {
        Value::Decimal(d) => Vec::<u8>::try_from(d)
            .map(|b| BigInt::from_signed_bytes_be(&b))
            .map_err(|_| verr(ty, "bad Avro decimal")),
        Value::Bytes(b) => Ok(BigInt::from_signed_bytes_be(b)),
        _ => Err(verr(ty, "expected an Avro decimal")),
    }
}

/// The canonical column value of an Avro value (a `["null", T]` union is
/// unwrapped; Avro `null` is `NULL`).
pub fn from_avro(ty: &SqlType, v: &Value) -> Result<ColumnValue, ValueError> {
    let v = match v {
        Value::Union(_, inner) => inner.as_ref(),
        other => other,
    };
    let wrong = || verr(ty, "Avro value of the wrong type for the column");
    let raw = match (ty, v) {
        (_, Value::Null) => return Ok(ColumnValue::Null),
        (SqlType::BigInt { unsigned: true }, v) => {
            let n = decimal_of(ty, v)?;
            ColumnValue::UInt(u64::try_from(&n).map_err(|_| verr(ty, "value out of range"))?)
        }
        (SqlType::Decimal { precision, scale }, v) => {
            let n = decimal_of(ty, v)?;
            return Ok(ColumnValue::Bytes(
                format_decimal(ty, &n, *precision, *scale)?.into_bytes(),
            ));
        }
        (SqlType::Timestamp { fsp }, Value::TimestampMicros(m) | Value::Long(m)) => {
            return Ok(ColumnValue::DateTime(timestamp_text(ty, *m, *fsp)?));
        }
        (SqlType::Time { fsp }, Value::Long(m) | Value::TimeMicros(m)) => {
            return Ok(ColumnValue::Time(time_text(ty, *m, *fsp)?));
        }
        (SqlType::Year, Value::Int(i)) => ColumnValue::Int(i64::from(*i)),
        (_, Value::Int(_) | Value::Long(_)) if int_bounds(ty).is_some() => {
            let i = match v {
                Value::Int(i) => i64::from(*i),
                Value::Long(i) => *i,
                _ => return Err(wrong()),
            };
            // No two's-complement reading here: revdoor never writes a
            // negative number for an unsigned column.
            if i < 0 && int_bounds(ty).is_some_and(|(u, _)| u) {
                return Err(verr(ty, "negative value for an unsigned column"));
            }
            ColumnValue::Int(i)
        }
        (SqlType::Float, Value::Float(f)) => ColumnValue::Float(*f),
        (SqlType::Double, Value::Double(d)) => ColumnValue::Double(*d),
        (SqlType::Date | SqlType::DateTime { .. }, Value::String(s)) => {
            ColumnValue::DateTime(s.clone())
        }
        (_, Value::String(s)) => ColumnValue::Bytes(s.as_bytes().to_vec()),
        (_, Value::Bytes(b)) => ColumnValue::Bytes(b.clone()),
        _ => return Err(wrong()),
    };
    // Validate (ENUM membership, ranges, widths) and normalise.
    let c = canonicalize(ty, &raw)?;
    // The canonical form must be what was in Avro, or the Avro value was not
    // one revdoor writes (e.g. a DATETIME with more digits than `fsp`).
    match (&raw, &c) {
        (ColumnValue::Bytes(a), ColumnValue::Bytes(b)) if a != b => {
            Err(verr(ty, "Avro value not in canonical form"))
        }
        (ColumnValue::DateTime(a), ColumnValue::DateTime(b)) if a != b => {
            Err(verr(ty, "Avro value not in canonical form"))
        }
        _ => Ok(c),
    }
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

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

/// The Avro type a column's values are written as ([`avro_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AvroKind {
    Int,
    Long,
    TimestampMicros,
    Float,
    Double,
    Bytes,
    Decimal,
    String,
}

impl AvroKind {
    fn of(ty: &SqlType) -> AvroKind {
        let t = avro_type(ty);
        let (base, logical) = match &t {
            Json::String(s) => (s.as_str(), None),
            Json::Object(m) => (
                m.get("type").and_then(Json::as_str).unwrap_or(""),
                m.get("logicalType").and_then(Json::as_str),
            ),
            _ => ("", None),
        };
        match (base, logical) {
            ("int", _) => AvroKind::Int,
            ("long", Some("timestamp-micros")) => AvroKind::TimestampMicros,
            ("long", _) => AvroKind::Long,
            ("float", _) => AvroKind::Float,
            ("double", _) => AvroKind::Double,
            ("bytes", Some("decimal")) => AvroKind::Decimal,
            ("string", _) => AvroKind::String,
            _ => AvroKind::Bytes,
        }
    }
}

/// A cursor over an Avro binary datum (after the single-object header).
struct Datum<'a> {
    rest: &'a [u8],
    fingerprint: u64,
    len: usize,
}

impl<'a> Datum<'a> {
    fn truncated(&self) -> CodecError {
        CodecError::TruncatedDatum {
            fingerprint: self.fingerprint,
            len: self.len,
        }
    }

    fn bad(&self, reason: &str) -> CodecError {
        CodecError::BadDatum {
            fingerprint: self.fingerprint,
            reason: reason.to_string(),
        }
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        let (b, rest) = self.rest.split_first().ok_or_else(|| self.truncated())?;
        self.rest = rest;
        Ok(*b)
    }

    fn long(&mut self) -> Result<i64, CodecError> {
        let mut z: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift > 63 {
                return Err(self.bad("variable-length integer longer than 10 bytes"));
            }
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.rest.len() {
            return Err(self.truncated());
        }
        let (b, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(b)
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| self.bad("negative length"))?;
        self.take(n)
    }

    fn string(&mut self) -> Result<&'a str, CodecError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.bad("string is not UTF-8"))
    }

    fn boolean(&mut self) -> Result<bool, CodecError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.bad("boolean is neither 0 nor 1")),
        }
    }

    fn value(&mut self, kind: AvroKind) -> Result<Value, CodecError> {
        Ok(match kind {
            AvroKind::Int => {
                Value::Int(i32::try_from(self.long()?).map_err(|_| self.bad("int out of range"))?)
            }
            AvroKind::Long => Value::Long(self.long()?),
            AvroKind::TimestampMicros => Value::TimestampMicros(self.long()?),
            AvroKind::Float => {
                let b = self.take(4)?;
                Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            AvroKind::Double => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Double(f64::from_le_bytes(a))
            }
            AvroKind::Bytes | AvroKind::Decimal => Value::Bytes(self.bytes()?.to_vec()),
            AvroKind::String => Value::String(self.string()?.to_string()),
        })
    }
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

fn op_str(op: Op) -> &'static str {
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

#[cfg(test)]
mod tests;
