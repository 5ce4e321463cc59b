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
//!
//! [`ColumnValue`]: crate::event::ColumnValue

mod binary;
mod codec;
mod error;
mod fingerprint;
mod schema;
mod single_object;
mod values;

pub use codec::{EventCodec, EventRef, PublishedSchema};
pub use error::{CodecError, ValueError};
pub use fingerprint::{crc64_avro, fingerprint, fingerprint_json, parsing_canonical_form};
pub use schema::{
    avro_type, envelope_schema, envelope_schema_json, field_names, key_schema, key_schema_json,
    sanitize_name, table_namespace, NAMESPACE, PROP_BITS, PROP_CHARSET, PROP_COLUMN, PROP_SYMBOLS,
    PROP_TYPE,
};
pub use single_object::{
    decode_single, encode_single, single_object_fingerprint, SINGLE_OBJECT_HEADER_LEN,
    SINGLE_OBJECT_MAGIC,
};
pub use values::{canonicalize, from_avro, from_binlog, to_avro};

#[cfg(test)]
mod tests;
