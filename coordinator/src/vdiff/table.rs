//! How a table's columns are read, ordered, checksummed and placed: the
//! SQL of the comparison rule ([`super`] docs) and the values it reads.
//!
//! # One checksum on every engine
//!
//! A chunk's checksum must be the same on MySQL and MariaDB for equal rows
//! (cross-engine diffs are the point) and must change when a value does.
//! Hash: `SHA2(…, 256)` — MySQL 9.6 removed `MD5()` and `SHA1()`; `SHA2`
//! and `CRC32` are on both, and 32 bits are too few. Row text: each column
//! rendered so that both engines print the same characters for the same
//! value, and different characters for different values (checked on MySQL
//! 9.7 and MariaDB 10.11, `tests/tests/vdiff_engines.rs`):
//!
//! - integers, DECIMAL (scale kept), TIME, YEAR, ENUM, SET: `CAST(… AS
//!   CHAR)`, hex-encoded; ENUM and SET labels arrive in the connection's
//!   utf8mb4;
//! - character strings: `CONVERT(… USING utf8mb4)`, hex-encoded; binary
//!   strings and GEOMETRY: their bytes, hex-encoded;
//! - DATE, DATETIME, TIMESTAMP: `DATE_FORMAT` with six fraction digits, in
//!   the session's UTC (zero dates print alike);
//! - FLOAT, DOUBLE: the IEEE bits, as the x of `POINT(…, 0)` (a FLOAT
//!   widened to double exactly). Their text is no use: `CAST(FLOAT AS
//!   CHAR)` keeps 6 digits on both engines (`16777216` → `16777200`), and a
//!   DOUBLE's text switches to exponent form at different magnitudes
//!   (`6.387016158513563e-12` on MySQL is `0.000000000006387016158513563`
//!   on MariaDB);
//! - BIT: `HEX` of its value (`CAST(BIT AS CHAR)` is `?` on MariaDB and
//!   NULL on MySQL for bytes that are not UTF-8);
//! - JSON: not at all. Its text differs legitimately between engines, so a
//!   table with a JSON column (on either side) is compared row by row,
//!   documents by value ([`super::json`]).

use mysql_async::Value;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_core::sqltype::SqlType;

use super::record::KeyPart;
use crate::Error;

/// How a column is read, ordered and checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Int {
        unsigned: bool,
    },
    /// Character data: compared as utf8mb4, ordered by `WEIGHT_STRING`.
    Text,
    Binary,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Temporal,
    /// FLOAT, DOUBLE: checksummed by their IEEE bits.
    Float,
    Bit,
    /// Compared by value, row by row ([`super::json`]); cannot be checksummed.
    Json,
    /// Compared by its text; cannot be part of an ordered key here.
    Other,
}

pub(super) fn kind(t: &SqlType) -> Kind {
    match t {
        SqlType::TinyInt { unsigned }
        | SqlType::SmallInt { unsigned }
        | SqlType::MediumInt { unsigned }
        | SqlType::Int { unsigned }
        | SqlType::BigInt { unsigned } => Kind::Int {
            unsigned: *unsigned,
        },
        SqlType::Year => Kind::Int { unsigned: true },
        SqlType::String { .. } => Kind::Text,
        SqlType::Json => Kind::Json,
        SqlType::Float | SqlType::Double => Kind::Float,
        SqlType::Bit { .. } => Kind::Bit,
        SqlType::Binary { .. } | SqlType::Geometry => Kind::Binary,
        SqlType::Decimal { precision, scale } => Kind::Decimal {
            precision: *precision,
            scale: *scale,
        },
        SqlType::Date | SqlType::DateTime { .. } | SqlType::Timestamp { .. } => Kind::Temporal,
        _ => Kind::Other,
    }
}

pub(super) use revdoor_mysql::quote_ident as q;

pub(super) struct TableDef {
    /// `db`.`table`, quoted.
    pub(super) from: String,
    pub(super) names: Vec<String>,
    pub(super) kinds: Vec<Kind>,
    pub(super) pk: Vec<usize>,
    pub(super) sharding: Vec<usize>,
    /// Several destination shards: check placement.
    pub(super) placement: bool,
}

impl TableDef {
    /// `SELECT` list: the order keys of the primary key, then `extra`.
    pub(super) fn order_exprs(&self) -> Vec<String> {
        self.pk
            .iter()
            .map(|&i| match self.kinds[i] {
                Kind::Text => format!("WEIGHT_STRING({})", q(&self.names[i])),
                _ => q(&self.names[i]),
            })
            .collect()
    }

    pub(super) fn pk_cols(&self) -> String {
        self.pk
            .iter()
            .map(|&i| q(&self.names[i]))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The sharding key as canonical values (keyspace_id module docs).
    pub(super) fn sharding_exprs(&self) -> Vec<String> {
        self.sharding
            .iter()
            .map(|&i| {
                let c = q(&self.names[i]);
                match self.kinds[i] {
                    Kind::Int { .. } => c,
                    Kind::Text | Kind::Json | Kind::Binary => format!("CAST({c} AS BINARY)"),
                    Kind::Temporal => format!("DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')"),
                    Kind::Decimal { .. } | Kind::Float | Kind::Bit | Kind::Other => {
                        format!("CAST({c} AS CHAR)")
                    }
                }
            })
            .collect()
    }

    /// One row's checksum input: every column, unambiguous, the same text
    /// on every engine for the same value (module docs); `None` when a
    /// column is JSON.
    fn row_text(&self) -> Option<String> {
        let parts = self
            .names
            .iter()
            .zip(&self.kinds)
            .map(|(n, k)| {
                let c = q(n);
                let e = match k {
                    Kind::Json => return None,
                    Kind::Text => format!("HEX(CONVERT({c} USING utf8mb4))"),
                    Kind::Binary | Kind::Bit => format!("HEX({c})"),
                    Kind::Temporal => format!("DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')"),
                    Kind::Float => format!("HEX(POINT({c}, 0))"),
                    Kind::Int { .. } | Kind::Decimal { .. } | Kind::Other => {
                        format!("HEX(CAST({c} AS CHAR))")
                    }
                };
                Some(format!("IFNULL({e}, 'N')"))
            })
            .collect::<Option<Vec<String>>>()?;
        Some(format!("CONCAT_WS(',', {})", parts.join(", ")))
    }

    /// The checksum of the rows matching `cond`: `COUNT(*)` and two 64-bit
    /// `BIT_XOR`s of the first 128 bits of each row's SHA-256; `None` when
    /// the table is compared row by row (a JSON column).
    pub(super) fn checksum_sql(&self, cond: &str) -> Option<String> {
        Some(format!(
            "SELECT COUNT(*), IFNULL(BIT_XOR(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0), \
             IFNULL(BIT_XOR(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) \
             FROM (SELECT SHA2({}, 256) AS h FROM {} WHERE {cond}) AS x",
            self.row_text()?,
            self.from
        ))
    }

    /// Whether two rows' values (in column order, as [`text`] reads them)
    /// are equal by the comparison rule.
    pub(super) fn same_values(&self, a: &[Option<Vec<u8>>], b: &[Option<Vec<u8>>]) -> bool {
        a.len() == b.len()
            && self
                .kinds
                .iter()
                .zip(a.iter().zip(b))
                .all(|(k, (x, y))| match (k, x, y) {
                    (Kind::Json, Some(x), Some(y)) => super::json::same(x, y),
                    _ => x == y,
                })
    }

    /// `key > last` (or `<= upper`) over the primary key, lexicographic.
    fn compare(
        &self,
        key: &[KeyPart],
        after: bool,
        sql: &mut Vec<String>,
        params: &mut Vec<Value>,
    ) {
        let n = self.pk.len();
        let mut ors = Vec::new();
        for i in 0..n {
            let mut ands = Vec::new();
            for (j, &col) in self.pk.iter().enumerate().take(i + 1) {
                let op = if j < i {
                    "="
                } else if after {
                    ">"
                } else if i + 1 < n {
                    "<"
                } else {
                    "<="
                };
                let param = match self.kinds[col] {
                    Kind::Decimal { precision, scale } => {
                        format!("CAST(? AS DECIMAL({precision},{scale}))")
                    }
                    _ => "?".to_string(),
                };
                ands.push(format!("{} {op} {param}", q(&self.names[col])));
                params.push(key[j].param());
            }
            ors.push(format!("({})", ands.join(" AND ")));
        }
        sql.push(format!("({})", ors.join(" OR ")));
    }

    pub(super) fn range(
        &self,
        after: Option<&[KeyPart]>,
        upto: Option<&[KeyPart]>,
    ) -> (String, Vec<Value>) {
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Some(k) = after {
            self.compare(k, true, &mut conds, &mut params);
        }
        if let Some(k) = upto {
            self.compare(k, false, &mut conds, &mut params);
        }
        if conds.is_empty() {
            ("TRUE".to_string(), params)
        } else {
            (conds.join(" AND "), params)
        }
    }
}

/// A value as text (NULL = `None`); temporal values with six fraction
/// digits.
pub(super) fn text(v: &Value) -> Option<Vec<u8>> {
    Some(match v {
        Value::NULL => return None,
        Value::Bytes(b) => b.clone(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::UInt(u) => u.to_string().into_bytes(),
        Value::Float(f) => f.to_string().into_bytes(),
        Value::Double(d) => d.to_string().into_bytes(),
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}").into_bytes()
        }
        Value::Time(neg, d, h, mi, s, us) => format!(
            "{}{:02}:{mi:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u64::from(*d) * 24 + u64::from(*h)
        )
        .into_bytes(),
    })
}

/// A value for a report: its text, or `0x…` for bytes that are not UTF-8.
pub(super) fn shown(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_ref().map(|b| match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => hex(b),
    })
}

/// A column's value for a report: [`shown`], but BIT always as `0x…` (its
/// bytes are a number, not characters).
pub(super) fn shown_as(kind: Kind, b: &Option<Vec<u8>>) -> Option<String> {
    match kind {
        Kind::Bit => b.as_deref().map(hex),
        _ => shown(b),
    }
}

fn hex(b: &[u8]) -> String {
    format!(
        "0x{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// Order of one key column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum OrdPart {
    Int(i128),
    Bytes(Vec<u8>),
}

/// A primary-key value that cannot be ordered or keyed.
#[derive(Debug, thiserror::Error)]
pub(super) enum KeyValueError {
    #[error("NULL in a primary key")]
    Null,
    /// Ordering: the value's text and why it is not a number.
    #[error("key value {text}: {source}")]
    Number {
        text: String,
        source: std::num::ParseIntError,
    },
    /// Keying: why the value is not an integer.
    #[error("key value: {0}")]
    Integer(std::num::ParseIntError),
}

impl From<KeyValueError> for Error {
    fn from(e: KeyValueError) -> Self {
        Error::Sql(e.to_string())
    }
}

pub(super) fn ord_part(kind: Kind, v: &Value) -> Result<OrdPart, KeyValueError> {
    let t = text(v).ok_or(KeyValueError::Null)?;
    let s = String::from_utf8_lossy(&t);
    match kind {
        Kind::Int { .. } => {
            s.parse::<i128>()
                .map(OrdPart::Int)
                .map_err(|source| KeyValueError::Number {
                    text: s.to_string(),
                    source,
                })
        }
        Kind::Decimal { scale, .. } => {
            let (neg, digits) = s.strip_prefix('-').map_or((false, &*s), |d| (true, d));
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            let mut frac = frac.to_string();
            while frac.len() < usize::from(scale) {
                frac.push('0');
            }
            let n: i128 =
                format!("{int}{frac}")
                    .parse()
                    .map_err(|source| KeyValueError::Number {
                        text: s.to_string(),
                        source,
                    })?;
            Ok(OrdPart::Int(if neg { -n } else { n }))
        }
        _ => Ok(OrdPart::Bytes(t)),
    }
}

pub(super) fn key_part(kind: Kind, v: &Value) -> Result<KeyPart, KeyValueError> {
    let t = text(v).ok_or(KeyValueError::Null)?;
    Ok(match kind {
        Kind::Int { unsigned: false } => KeyPart::Int(
            String::from_utf8_lossy(&t)
                .parse()
                .map_err(KeyValueError::Integer)?,
        ),
        Kind::Int { unsigned: true } => KeyPart::UInt(
            String::from_utf8_lossy(&t)
                .parse()
                .map_err(KeyValueError::Integer)?,
        ),
        _ => KeyPart::Bytes(t),
    })
}

/// The keyspace id of a row from its sharding expressions' values.
pub(super) fn ksid(def: &TableDef, vals: &[Value]) -> u64 {
    let texts: Vec<Option<Vec<u8>>> = vals.iter().map(text).collect();
    let keys: Vec<KeyValue<'_>> = def
        .sharding
        .iter()
        .zip(&texts)
        .map(|(&i, t)| match (def.kinds[i], t) {
            (_, None) => KeyValue::Null,
            (Kind::Int { unsigned: false }, Some(t)) => {
                KeyValue::Int(String::from_utf8_lossy(t).parse().unwrap_or_default())
            }
            (Kind::Int { unsigned: true }, Some(t)) => {
                KeyValue::UInt(String::from_utf8_lossy(t).parse().unwrap_or_default())
            }
            (Kind::Text | Kind::Binary, Some(t)) => KeyValue::Bytes(t),
            (_, Some(t)) => KeyValue::Other(String::from_utf8_lossy(t)),
        })
        .collect();
    keyspace_id(&keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_errors_say_what_value() {
        let int = Kind::Int { unsigned: false };
        let err = |r: Result<OrdPart, KeyValueError>| r.expect_err("error").to_string();
        assert_eq!(err(ord_part(int, &Value::NULL)), "NULL in a primary key");
        assert_eq!(
            err(ord_part(int, &Value::Bytes(b"x1".to_vec()))),
            "key value x1: invalid digit found in string"
        );
        let key = key_part(int, &Value::Bytes(b"x1".to_vec())).expect_err("error");
        assert_eq!(key.to_string(), "key value: invalid digit found in string");
        assert_eq!(
            ord_part(int, &Value::Bytes(b"-7".to_vec())).expect("int"),
            OrdPart::Int(-7)
        );
    }

    fn def(cols: &[(&str, SqlType)]) -> TableDef {
        TableDef {
            from: "`d`.`t`".into(),
            names: cols.iter().map(|(n, _)| n.to_string()).collect(),
            kinds: cols.iter().map(|(_, t)| kind(t)).collect(),
            pk: vec![0],
            sharding: vec![0],
            placement: false,
        }
    }

    #[test]
    fn checksum_text_is_engine_neutral_and_json_is_not_checksummed() {
        let t = def(&[
            ("id", SqlType::Int { unsigned: false }),
            ("f", SqlType::Float),
            ("d", SqlType::Double),
            ("b", SqlType::Bit { bits: 8 }),
            ("at", SqlType::DateTime { fsp: 6 }),
        ]);
        let sql = t.checksum_sql("TRUE").expect("no JSON column");
        for part in [
            "SHA2(CONCAT_WS(',', IFNULL(HEX(CAST(`id` AS CHAR)), 'N')",
            "IFNULL(HEX(POINT(`f`, 0)), 'N')",
            "IFNULL(HEX(POINT(`d`, 0)), 'N')",
            "IFNULL(HEX(`b`), 'N')",
            "DATE_FORMAT(`at`, '%Y-%m-%d %H:%i:%s.%f')",
        ] {
            assert!(sql.contains(part), "{part} in {sql}");
        }
        assert!(!sql.contains("MD5"), "{sql}");
        let j = def(&[
            ("id", SqlType::Int { unsigned: false }),
            ("doc", SqlType::Json),
        ]);
        assert_eq!(j.checksum_sql("TRUE"), None);
    }

    #[test]
    fn json_columns_compare_by_value_others_by_bytes() {
        let t = def(&[
            ("id", SqlType::Int { unsigned: false }),
            ("doc", SqlType::Json),
            (
                "s",
                SqlType::String {
                    kind: revdoor_core::sqltype::StringKind::VarChar(10),
                    charset: "utf8mb4".into(),
                },
            ),
        ]);
        let row = |doc: Option<&str>, s: &str| {
            vec![
                Some(b"1".to_vec()),
                doc.map(|d| d.as_bytes().to_vec()),
                Some(s.as_bytes().to_vec()),
            ]
        };
        let a = row(Some(r#"{"a": 0.50, "b": [1]}"#), "x");
        assert!(t.same_values(&a, &row(Some(r#"{"b":[1.0],"a":0.5}"#), "x")));
        assert!(!t.same_values(&a, &row(Some(r#"{"a": "0.50", "b": [1]}"#), "x")));
        assert!(!t.same_values(&a, &row(None, "x")));
        assert!(!t.same_values(&a, &row(Some(r#"{"a": 0.50, "b": [1]}"#), "x ")));
        assert!(t.same_values(&row(None, "x"), &row(None, "x")));
    }

    #[test]
    fn bit_values_are_shown_as_numbers() {
        assert_eq!(
            shown_as(Kind::Bit, &Some(vec![0x6f])).as_deref(),
            Some("0x6f")
        );
        assert_eq!(
            shown_as(Kind::Text, &Some(b"o".to_vec())).as_deref(),
            Some("o")
        );
        assert_eq!(shown_as(Kind::Bit, &None), None);
    }
}
