//! The column type model: every MySQL / MariaDB column type with the
//! parameters that decide how its values are carried (`UNSIGNED`, precision
//! and scale, fractional-second precision, `ENUM` / `SET` members, character
//! set, length class).
//!
//! Types come from `information_schema.COLUMNS` through
//! [`SqlType::from_information_schema`] (`DATA_TYPE`, `COLUMN_TYPE`,
//! `CHARACTER_SET_NAME`), and from the binlog's table maps (capture's
//! `tablemap`: the type of a row's column when it was written). A type revdoor cannot carry without loss is refused
//! with [`SqlTypeError::Unsupported`] when the workflow is created, before
//! anything starts — never in the middle of a stream.
//!
//! # MariaDB `JSON`
//!
//! MariaDB's `JSON` is an alias of `LONGTEXT` with a `CHECK (json_valid(col))`
//! constraint: `information_schema.COLUMNS` reports `DATA_TYPE = 'longtext'`,
//! so only the constraint says the column holds JSON. The caller looks it up
//! (`information_schema.CHECK_CONSTRAINTS` where `CHECK_CLAUSE` is
//! `json_valid(`col`)`) and passes it to
//! [`SqlType::from_information_schema_with_json_check`]; MySQL's native `JSON`
//! type (`DATA_TYPE = 'json'`) needs no flag.

mod column_type;
mod table;

use std::fmt;

pub use table::{ColumnDef, TableSchema};

/// Why a column type was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlTypeError {
    /// A type revdoor does not carry. Refused before anything starts.
    #[error(
        "column type `{column_type}` is not supported by revdoor (refused before anything starts)"
    )]
    Unsupported { column_type: String },
    /// A `COLUMN_TYPE` that does not parse as its `DATA_TYPE`.
    #[error("column type `{column_type}` does not parse: {reason}")]
    Malformed { column_type: String, reason: String },
    /// A character column without `CHARACTER_SET_NAME`.
    #[error("column type `{column_type}` has no character set")]
    MissingCharset { column_type: String },
    /// Two columns of one table with the same name.
    #[error("table `{db}`.`{table}` has column `{column}` twice")]
    DuplicateColumn {
        db: String,
        table: String,
        column: String,
    },
    /// A primary-key column that is not a column of the table.
    #[error("table `{db}`.`{table}`: primary-key column `{column}` is not a column of the table")]
    UnknownKeyColumn {
        db: String,
        table: String,
        column: String,
    },
}

/// Character column length classes. `Char` / `VarChar` carry the declared
/// length in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StringKind {
    Char(u32),
    VarChar(u32),
    TinyText,
    Text,
    MediumText,
    LongText,
}

/// Binary column length classes. `Binary` / `VarBinary` carry the declared
/// length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BinaryKind {
    Binary(u32),
    VarBinary(u32),
    TinyBlob,
    Blob,
    MediumBlob,
    LongBlob,
}

/// A MySQL / MariaDB column type with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SqlType {
    TinyInt {
        unsigned: bool,
    },
    SmallInt {
        unsigned: bool,
    },
    MediumInt {
        unsigned: bool,
    },
    Int {
        unsigned: bool,
    },
    BigInt {
        unsigned: bool,
    },
    /// `DECIMAL(precision, scale)`: precision 1..=65, scale 0..=30 and at
    /// most the precision.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Float,
    Double,
    Date,
    /// `DATETIME(fsp)`, fsp 0..=6.
    DateTime {
        fsp: u8,
    },
    /// `TIMESTAMP(fsp)`, fsp 0..=6.
    Timestamp {
        fsp: u8,
    },
    /// `TIME(fsp)`, fsp 0..=6.
    Time {
        fsp: u8,
    },
    Year,
    /// `BIT(bits)`, bits 1..=64.
    Bit {
        bits: u8,
    },
    /// `ENUM(...)` with its members in declaration order (index 1 first).
    Enum {
        values: Vec<String>,
    },
    /// `SET(...)` with its members in declaration order (bit 0 first).
    Set {
        values: Vec<String>,
    },
    /// `CHAR`, `VARCHAR` and the `TEXT` family, with the column's character
    /// set as `information_schema` names it (`utf8mb4`, `latin1`, …).
    String {
        kind: StringKind,
        charset: String,
    },
    /// `BINARY`, `VARBINARY` and the `BLOB` family.
    Binary {
        kind: BinaryKind,
    },
    /// MySQL `JSON`, or MariaDB `LONGTEXT` with a `json_valid` check.
    Json,
    /// Any spatial type (`GEOMETRY`, `POINT`, …, `GEOMETRYCOLLECTION`).
    Geometry,
    /// MariaDB `INET4`.
    Inet4,
    /// MariaDB `INET6`.
    Inet6,
    /// MariaDB `UUID`.
    Uuid,
}

/// Character sets whose stored bytes are always valid UTF-8.
const UTF8_CHARSETS: &[&str] = &["utf8", "utf8mb3", "utf8mb4", "ascii"];

impl SqlType {
    /// True for character columns whose bytes are UTF-8 (`utf8`, `utf8mb3`,
    /// `utf8mb4`, `ascii`); false for other character sets and non-character
    /// types.
    pub fn is_utf8_string(&self) -> bool {
        matches!(self, SqlType::String { charset, .. } if is_utf8_charset(charset))
    }
}

/// Whether a MySQL character set name denotes bytes that are always UTF-8.
pub fn is_utf8_charset(charset: &str) -> bool {
    UTF8_CHARSETS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(charset))
}

impl fmt::Display for SqlType {
    /// The type as SQL (`bigint unsigned`, `decimal(65,30)`,
    /// `enum('a','b''c')`, `varchar(10) character set latin1`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uns = |u: &bool| if *u { " unsigned" } else { "" };
        let fsp = |f: &mut fmt::Formatter<'_>, name: &str, fsp: u8| {
            if fsp == 0 {
                write!(f, "{name}")
            } else {
                write!(f, "{name}({fsp})")
            }
        };
        let list = |f: &mut fmt::Formatter<'_>, name: &str, values: &[String]| {
            write!(f, "{name}(")?;
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "'{}'", quote_sql(v))?;
            }
            f.write_str(")")
        };
        match self {
            SqlType::TinyInt { unsigned } => write!(f, "tinyint{}", uns(unsigned)),
            SqlType::SmallInt { unsigned } => write!(f, "smallint{}", uns(unsigned)),
            SqlType::MediumInt { unsigned } => write!(f, "mediumint{}", uns(unsigned)),
            SqlType::Int { unsigned } => write!(f, "int{}", uns(unsigned)),
            SqlType::BigInt { unsigned } => write!(f, "bigint{}", uns(unsigned)),
            SqlType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            SqlType::Float => f.write_str("float"),
            SqlType::Double => f.write_str("double"),
            SqlType::Date => f.write_str("date"),
            SqlType::DateTime { fsp: p } => fsp(f, "datetime", *p),
            SqlType::Timestamp { fsp: p } => fsp(f, "timestamp", *p),
            SqlType::Time { fsp: p } => fsp(f, "time", *p),
            SqlType::Year => f.write_str("year"),
            SqlType::Bit { bits } => write!(f, "bit({bits})"),
            SqlType::Enum { values } => list(f, "enum", values),
            SqlType::Set { values } => list(f, "set", values),
            SqlType::String { kind, charset } => {
                match kind {
                    StringKind::Char(n) => write!(f, "char({n})"),
                    StringKind::VarChar(n) => write!(f, "varchar({n})"),
                    StringKind::TinyText => f.write_str("tinytext"),
                    StringKind::Text => f.write_str("text"),
                    StringKind::MediumText => f.write_str("mediumtext"),
                    StringKind::LongText => f.write_str("longtext"),
                }?;
                write!(f, " character set {charset}")
            }
            SqlType::Binary { kind } => match kind {
                BinaryKind::Binary(n) => write!(f, "binary({n})"),
                BinaryKind::VarBinary(n) => write!(f, "varbinary({n})"),
                BinaryKind::TinyBlob => f.write_str("tinyblob"),
                BinaryKind::Blob => f.write_str("blob"),
                BinaryKind::MediumBlob => f.write_str("mediumblob"),
                BinaryKind::LongBlob => f.write_str("longblob"),
            },
            SqlType::Json => f.write_str("json"),
            SqlType::Geometry => f.write_str("geometry"),
            SqlType::Inet4 => f.write_str("inet4"),
            SqlType::Inet6 => f.write_str("inet6"),
            SqlType::Uuid => f.write_str("uuid"),
        }
    }
}

/// Quote a string for inside `'…'` the way `COLUMN_TYPE` does.
fn quote_sql(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}
