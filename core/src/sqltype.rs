//! The column type model: every MySQL / MariaDB column type with the
//! parameters that decide how its values are carried (`UNSIGNED`, precision
//! and scale, fractional-second precision, `ENUM` / `SET` members, character
//! set, length class).
//!
//! Types come from `information_schema.COLUMNS` through
//! [`SqlType::from_information_schema`] (`DATA_TYPE`, `COLUMN_TYPE`,
//! `CHARACTER_SET_NAME`). A type revdoor cannot carry without loss is refused
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

use std::fmt;

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
    /// Parse a column type from `information_schema.COLUMNS`: `DATA_TYPE`
    /// (`bigint`), `COLUMN_TYPE` (`bigint(20) unsigned`) and
    /// `CHARACTER_SET_NAME` (required for character types, ignored otherwise).
    pub fn from_information_schema(
        data_type: &str,
        column_type: &str,
        charset: Option<&str>,
    ) -> Result<SqlType, SqlTypeError> {
        Self::from_information_schema_with_json_check(data_type, column_type, charset, false)
    }

    /// As [`SqlType::from_information_schema`], for MariaDB where a `JSON`
    /// column is a `LONGTEXT` with a `CHECK (json_valid(col))` constraint:
    /// `json_valid_check` says the constraint exists, which makes a
    /// `longtext` column [`SqlType::Json`]. It is ignored for other types.
    pub fn from_information_schema_with_json_check(
        data_type: &str,
        column_type: &str,
        charset: Option<&str>,
        json_valid_check: bool,
    ) -> Result<SqlType, SqlTypeError> {
        let parsed = ParsedColumnType::parse(column_type)?;
        let malformed = |reason: &str| SqlTypeError::Malformed {
            column_type: column_type.to_owned(),
            reason: reason.to_owned(),
        };
        let data_type = data_type.trim().to_ascii_lowercase();
        let unsigned = parsed.unsigned;
        let no_args = |t: SqlType| -> Result<SqlType, SqlTypeError> {
            match parsed.args {
                Args::None => Ok(t),
                _ => Err(malformed("takes no parameters")),
            }
        };
        let fsp = || -> Result<u8, SqlTypeError> {
            match parsed.numbers()? {
                [] => Ok(0),
                [f] if *f <= 6 => Ok(*f as u8),
                _ => Err(malformed("fractional-second precision must be 0..=6")),
            }
        };
        let length = || -> Result<u32, SqlTypeError> {
            match parsed.numbers()? {
                [] => Ok(1),
                [n] => Ok(*n),
                _ => Err(malformed("expected one length")),
            }
        };
        let string = |kind: StringKind| -> Result<SqlType, SqlTypeError> {
            match charset.map(str::trim).filter(|c| !c.is_empty()) {
                Some(c) => Ok(SqlType::String {
                    kind,
                    charset: c.to_ascii_lowercase(),
                }),
                None => Err(SqlTypeError::MissingCharset {
                    column_type: column_type.to_owned(),
                }),
            }
        };
        // Integer display widths (`int(11)`) carry no meaning for values.
        let int = |t: SqlType| -> Result<SqlType, SqlTypeError> {
            match parsed.numbers()? {
                [] | [_] => Ok(t),
                _ => Err(malformed("expected at most a display width")),
            }
        };

        match data_type.as_str() {
            "tinyint" => int(SqlType::TinyInt { unsigned }),
            "smallint" => int(SqlType::SmallInt { unsigned }),
            "mediumint" => int(SqlType::MediumInt { unsigned }),
            "int" | "integer" => int(SqlType::Int { unsigned }),
            "bigint" => int(SqlType::BigInt { unsigned }),
            "decimal" | "numeric" | "dec" | "fixed" => {
                let (precision, scale) = match parsed.numbers()? {
                    [] => (10, 0),
                    [p] => (*p, 0),
                    [p, s] => (*p, *s),
                    _ => return Err(malformed("expected (precision, scale)")),
                };
                if !(1..=65).contains(&precision) || scale > 30 || scale > precision {
                    return Err(malformed(
                        "precision must be 1..=65 and scale 0..=30 and at most the precision",
                    ));
                }
                Ok(SqlType::Decimal {
                    precision: precision as u8,
                    scale: scale as u8,
                })
            }
            // `FLOAT(M,D)` rounds on input but stores a 4-byte float.
            "float" => Ok(SqlType::Float),
            "double" | "real" | "double precision" => Ok(SqlType::Double),
            "date" => no_args(SqlType::Date),
            "datetime" => Ok(SqlType::DateTime { fsp: fsp()? }),
            "timestamp" => Ok(SqlType::Timestamp { fsp: fsp()? }),
            "time" => Ok(SqlType::Time { fsp: fsp()? }),
            "year" => match parsed.numbers()? {
                [] | [2] | [4] => Ok(SqlType::Year),
                _ => Err(malformed("YEAR takes no width but 2 or 4")),
            },
            "bit" => match parsed.numbers()? {
                [] => Ok(SqlType::Bit { bits: 1 }),
                [n] if (1..=64).contains(n) => Ok(SqlType::Bit { bits: *n as u8 }),
                _ => Err(malformed("BIT width must be 1..=64")),
            },
            "enum" => match &parsed.args {
                Args::Strings(v) if !v.is_empty() => Ok(SqlType::Enum { values: v.clone() }),
                _ => Err(malformed("expected a list of quoted members")),
            },
            "set" => match &parsed.args {
                Args::Strings(v) if !v.is_empty() && v.len() <= 64 => {
                    Ok(SqlType::Set { values: v.clone() })
                }
                _ => Err(malformed("expected a list of 1..=64 quoted members")),
            },
            "char" => string(StringKind::Char(length()?)),
            "varchar" => string(StringKind::VarChar(length()?)),
            "tinytext" => string(StringKind::TinyText),
            "text" => string(StringKind::Text),
            "mediumtext" => string(StringKind::MediumText),
            "longtext" if json_valid_check => Ok(SqlType::Json),
            "longtext" => string(StringKind::LongText),
            "binary" => Ok(SqlType::Binary {
                kind: BinaryKind::Binary(length()?),
            }),
            "varbinary" => Ok(SqlType::Binary {
                kind: BinaryKind::VarBinary(length()?),
            }),
            "tinyblob" => no_args(SqlType::Binary {
                kind: BinaryKind::TinyBlob,
            }),
            "blob" => Ok(SqlType::Binary {
                kind: BinaryKind::Blob,
            }),
            "mediumblob" => no_args(SqlType::Binary {
                kind: BinaryKind::MediumBlob,
            }),
            "longblob" => no_args(SqlType::Binary {
                kind: BinaryKind::LongBlob,
            }),
            "json" => no_args(SqlType::Json),
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => {
                no_args(SqlType::Geometry)
            }
            "inet4" => no_args(SqlType::Inet4),
            "inet6" => no_args(SqlType::Inet6),
            "uuid" => no_args(SqlType::Uuid),
            _ => Err(SqlTypeError::Unsupported {
                column_type: column_type.to_owned(),
            }),
        }
    }

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

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub nullable: bool,
}

impl ColumnDef {
    pub fn new(name: impl Into<String>, sql_type: SqlType, nullable: bool) -> Self {
        ColumnDef {
            name: name.into(),
            sql_type,
            nullable,
        }
    }
}

/// A table's columns (in table order) and primary key (in key order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableSchema {
    pub db: String,
    pub table: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
}

impl TableSchema {
    /// A column by name (exact match, as the binlog's column names are).
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Check that column names are unique (MySQL compares them
    /// case-insensitively) and that every primary-key column exists.
    pub fn validate(&self) -> Result<(), SqlTypeError> {
        for (i, c) in self.columns.iter().enumerate() {
            if self.columns[..i]
                .iter()
                .any(|d| d.name.eq_ignore_ascii_case(&c.name))
            {
                return Err(SqlTypeError::DuplicateColumn {
                    db: self.db.clone(),
                    table: self.table.clone(),
                    column: c.name.clone(),
                });
            }
        }
        for k in &self.primary_key {
            if self.column(k).is_none() {
                return Err(SqlTypeError::UnknownKeyColumn {
                    db: self.db.clone(),
                    table: self.table.clone(),
                    column: k.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The parameter list of a `COLUMN_TYPE`.
#[derive(Debug, PartialEq)]
enum Args {
    None,
    Numbers(Vec<u32>),
    Strings(Vec<String>),
}

/// `COLUMN_TYPE` split into name, parameters and modifiers.
struct ParsedColumnType<'a> {
    column_type: &'a str,
    args: Args,
    unsigned: bool,
}

impl<'a> ParsedColumnType<'a> {
    fn parse(column_type: &'a str) -> Result<Self, SqlTypeError> {
        let malformed = |reason: &str| SqlTypeError::Malformed {
            column_type: column_type.to_owned(),
            reason: reason.to_owned(),
        };
        let s = column_type.trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        if name_end == 0 {
            return Err(malformed("no type name"));
        }
        let mut rest = &s[name_end..];
        let args = if let Some(inner) = rest.strip_prefix('(') {
            let (args, after) = parse_args(inner).map_err(|r| malformed(&r))?;
            rest = after;
            args
        } else {
            Args::None
        };
        let mut unsigned = false;
        let mut words = rest;
        loop {
            words = words.trim_start();
            if words.is_empty() {
                break;
            }
            // MariaDB marks pre-5.3 temporal formats with `/* mariadb-5.3 */`.
            if let Some(c) = words.strip_prefix("/*") {
                let end = c.find("*/").ok_or_else(|| malformed("unclosed comment"))?;
                words = &c[end + 2..];
                continue;
            }
            let end = words.find(char::is_whitespace).unwrap_or(words.len());
            let word = words[..end].to_ascii_lowercase();
            match word.as_str() {
                // ZEROFILL implies UNSIGNED.
                "unsigned" | "zerofill" => unsigned = true,
                "signed" => {}
                // `double precision`
                "precision" => {}
                _ => return Err(malformed(&format!("unexpected modifier `{word}`"))),
            }
            words = &words[end..];
        }
        Ok(ParsedColumnType {
            column_type,
            args,
            unsigned,
        })
    }

    fn numbers(&self) -> Result<&[u32], SqlTypeError> {
        match &self.args {
            Args::None => Ok(&[]),
            Args::Numbers(n) => Ok(n),
            Args::Strings(_) => Err(SqlTypeError::Malformed {
                column_type: self.column_type.to_owned(),
                reason: "expected numeric parameters".to_owned(),
            }),
        }
    }
}

/// Parse `…)` after the opening parenthesis; returns the arguments and the
/// text after the closing parenthesis.
fn parse_args(s: &str) -> Result<(Args, &str), String> {
    let t = s.trim_start();
    if t.starts_with('\'') {
        let mut values = Vec::new();
        let mut chars = t.char_indices().peekable();
        loop {
            // Expect a quoted member.
            match chars.next() {
                Some((_, '\'')) => {}
                _ => return Err("expected a quoted member".into()),
            }
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted member".into()),
                    Some((_, '\'')) => {
                        if matches!(chars.peek(), Some((_, '\''))) {
                            chars.next();
                            v.push('\'');
                        } else {
                            break;
                        }
                    }
                    Some((_, '\\')) => match chars.next() {
                        None => return Err("unterminated escape".into()),
                        Some((_, c)) => v.push(match c {
                            '0' => '\0',
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'b' => '\u{8}',
                            'Z' => '\u{1a}',
                            c => c,
                        }),
                    },
                    Some((_, c)) => v.push(c),
                }
            }
            values.push(v);
            while matches!(chars.peek(), Some((_, c)) if c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                Some((_, ',')) => {
                    while matches!(chars.peek(), Some((_, c)) if c.is_whitespace()) {
                        chars.next();
                    }
                }
                Some((i, ')')) => return Ok((Args::Strings(values), &t[i + 1..])),
                _ => return Err("expected `,` or `)` after a member".into()),
            }
        }
    }
    let close = t.find(')').ok_or("unclosed parameter list")?;
    let numbers = t[..close]
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<u32>()
                .map_err(|e| format!("bad parameter `{}`: {e}", n.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((Args::Numbers(numbers), &t[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(dt: &str, ct: &str) -> Result<SqlType, SqlTypeError> {
        SqlType::from_information_schema(dt, ct, None)
    }

    #[test]
    fn integers() {
        assert_eq!(
            p("tinyint", "tinyint(4)"),
            Ok(SqlType::TinyInt { unsigned: false })
        );
        assert_eq!(
            p("tinyint", "tinyint(1)"),
            Ok(SqlType::TinyInt { unsigned: false })
        );
        assert_eq!(
            p("smallint", "smallint(5) unsigned"),
            Ok(SqlType::SmallInt { unsigned: true })
        );
        assert_eq!(
            p("mediumint", "mediumint unsigned"),
            Ok(SqlType::MediumInt { unsigned: true })
        );
        assert_eq!(p("int", "int(11)"), Ok(SqlType::Int { unsigned: false }));
        assert_eq!(
            p("int", "int(10) unsigned zerofill"),
            Ok(SqlType::Int { unsigned: true })
        );
        assert_eq!(
            p("int", "int(10) zerofill"),
            Ok(SqlType::Int { unsigned: true })
        );
        assert_eq!(
            p("bigint", "bigint(20) unsigned"),
            Ok(SqlType::BigInt { unsigned: true })
        );
        assert_eq!(
            p("BIGINT", "BIGINT"),
            Ok(SqlType::BigInt { unsigned: false })
        );
        assert!(matches!(
            p("int", "int(1,2)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("int", "int(11) frobbed"),
            Err(SqlTypeError::Malformed { .. })
        ));
    }

    #[test]
    fn decimals_and_floats() {
        assert_eq!(
            p("decimal", "decimal(65,30)"),
            Ok(SqlType::Decimal {
                precision: 65,
                scale: 30
            })
        );
        assert_eq!(
            p("decimal", "decimal(10,2) unsigned"),
            Ok(SqlType::Decimal {
                precision: 10,
                scale: 2
            })
        );
        assert_eq!(
            p("decimal", "decimal(5)"),
            Ok(SqlType::Decimal {
                precision: 5,
                scale: 0
            })
        );
        assert_eq!(
            p("decimal", "decimal"),
            Ok(SqlType::Decimal {
                precision: 10,
                scale: 0
            })
        );
        assert!(matches!(
            p("decimal", "decimal(66,2)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("decimal", "decimal(40,31)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("decimal", "decimal(2,3)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("decimal", "decimal(x,3)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert_eq!(p("float", "float"), Ok(SqlType::Float));
        assert_eq!(p("float", "float(7,4) unsigned"), Ok(SqlType::Float));
        assert_eq!(p("double", "double"), Ok(SqlType::Double));
        assert_eq!(p("double", "double(10,3)"), Ok(SqlType::Double));
    }

    #[test]
    fn temporal() {
        assert_eq!(p("date", "date"), Ok(SqlType::Date));
        assert_eq!(p("datetime", "datetime"), Ok(SqlType::DateTime { fsp: 0 }));
        assert_eq!(
            p("datetime", "datetime(6)"),
            Ok(SqlType::DateTime { fsp: 6 })
        );
        assert_eq!(
            p("timestamp", "timestamp(3)"),
            Ok(SqlType::Timestamp { fsp: 3 })
        );
        assert_eq!(
            p("timestamp", "timestamp /* mariadb-5.3 */"),
            Ok(SqlType::Timestamp { fsp: 0 })
        );
        assert_eq!(p("time", "time(1)"), Ok(SqlType::Time { fsp: 1 }));
        assert_eq!(p("year", "year(4)"), Ok(SqlType::Year));
        assert_eq!(p("year", "year"), Ok(SqlType::Year));
        assert!(matches!(
            p("datetime", "datetime(7)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("date", "date(1)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("time", "time(6"),
            Err(SqlTypeError::Malformed { .. })
        ));
    }

    #[test]
    fn bits() {
        assert_eq!(p("bit", "bit(1)"), Ok(SqlType::Bit { bits: 1 }));
        assert_eq!(p("bit", "bit(64)"), Ok(SqlType::Bit { bits: 64 }));
        assert_eq!(p("bit", "bit"), Ok(SqlType::Bit { bits: 1 }));
        assert!(matches!(
            p("bit", "bit(65)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("bit", "bit(0)"),
            Err(SqlTypeError::Malformed { .. })
        ));
    }

    #[test]
    fn enums_and_sets() {
        assert_eq!(
            p("enum", "enum('a','b''c')"),
            Ok(SqlType::Enum {
                values: vec!["a".into(), "b'c".into()]
            })
        );
        assert_eq!(
            p("enum", r"enum('Ab','x\\y','', 'é😀', 'a,b')"),
            Ok(SqlType::Enum {
                values: vec![
                    "Ab".into(),
                    r"x\y".into(),
                    "".into(),
                    "é😀".into(),
                    "a,b".into()
                ]
            })
        );
        assert_eq!(
            p("set", "set('x','y')"),
            Ok(SqlType::Set {
                values: vec!["x".into(), "y".into()]
            })
        );
        assert!(matches!(
            p("enum", "enum('a"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("enum", "enum('a' 'b')"),
            Err(SqlTypeError::Malformed { .. })
        ));
        assert!(matches!(
            p("enum", "enum(1,2)"),
            Err(SqlTypeError::Malformed { .. })
        ));
        let many = (0..65)
            .map(|i| format!("'m{i}'"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(matches!(
            p("set", &format!("set({many})")),
            Err(SqlTypeError::Malformed { .. })
        ));
        // Display quotes members back the way COLUMN_TYPE does.
        let t = p("enum", r"enum('a','b''c','x\\y')").expect("parse");
        assert_eq!(t.to_string(), r"enum('a','b''c','x\\y')");
        assert_eq!(p("enum", &t.to_string()), Ok(t));
    }

    #[test]
    fn strings() {
        let s = |dt: &str, ct: &str, cs: &str| SqlType::from_information_schema(dt, ct, Some(cs));
        assert_eq!(
            s("varchar", "varchar(10)", "utf8mb4"),
            Ok(SqlType::String {
                kind: StringKind::VarChar(10),
                charset: "utf8mb4".into()
            })
        );
        assert_eq!(
            s("char", "char(3)", "latin1"),
            Ok(SqlType::String {
                kind: StringKind::Char(3),
                charset: "latin1".into()
            })
        );
        for (dt, kind) in [
            ("tinytext", StringKind::TinyText),
            ("text", StringKind::Text),
            ("mediumtext", StringKind::MediumText),
            ("longtext", StringKind::LongText),
        ] {
            assert_eq!(
                s(dt, dt, "utf8mb3"),
                Ok(SqlType::String {
                    kind,
                    charset: "utf8mb3".into()
                })
            );
        }
        assert!(matches!(
            p("varchar", "varchar(10)"),
            Err(SqlTypeError::MissingCharset { .. })
        ));
        assert!(s("varchar", "varchar(1)", "utf8mb4")
            .expect("parse")
            .is_utf8_string());
        assert!(s("varchar", "varchar(1)", "ascii")
            .expect("parse")
            .is_utf8_string());
        assert!(!s("varchar", "varchar(1)", "latin1")
            .expect("parse")
            .is_utf8_string());
        assert_eq!(
            s("varchar", "varchar(10)", "latin1")
                .expect("parse")
                .to_string(),
            "varchar(10) character set latin1"
        );
    }

    #[test]
    fn binaries() {
        assert_eq!(
            p("binary", "binary(16)"),
            Ok(SqlType::Binary {
                kind: BinaryKind::Binary(16)
            })
        );
        assert_eq!(
            p("varbinary", "varbinary(255)"),
            Ok(SqlType::Binary {
                kind: BinaryKind::VarBinary(255)
            })
        );
        assert_eq!(
            p("tinyblob", "tinyblob"),
            Ok(SqlType::Binary {
                kind: BinaryKind::TinyBlob
            })
        );
        assert_eq!(
            p("blob", "blob"),
            Ok(SqlType::Binary {
                kind: BinaryKind::Blob
            })
        );
        assert_eq!(
            p("mediumblob", "mediumblob"),
            Ok(SqlType::Binary {
                kind: BinaryKind::MediumBlob
            })
        );
        assert_eq!(
            p("longblob", "longblob"),
            Ok(SqlType::Binary {
                kind: BinaryKind::LongBlob
            })
        );
    }

    #[test]
    fn json_geometry_and_mariadb_types() {
        assert_eq!(p("json", "json"), Ok(SqlType::Json));
        // MariaDB: JSON is LONGTEXT + CHECK (json_valid(col)).
        assert_eq!(
            SqlType::from_information_schema_with_json_check(
                "longtext",
                "longtext",
                Some("utf8mb4"),
                true
            ),
            Ok(SqlType::Json)
        );
        assert_eq!(
            SqlType::from_information_schema_with_json_check(
                "longtext",
                "longtext",
                Some("utf8mb4"),
                false
            ),
            Ok(SqlType::String {
                kind: StringKind::LongText,
                charset: "utf8mb4".into()
            })
        );
        for g in [
            "geometry",
            "point",
            "linestring",
            "polygon",
            "multipoint",
            "multilinestring",
            "multipolygon",
            "geometrycollection",
            "geomcollection",
        ] {
            assert_eq!(p(g, g), Ok(SqlType::Geometry), "{g}");
        }
        assert_eq!(p("inet4", "inet4"), Ok(SqlType::Inet4));
        assert_eq!(p("inet6", "inet6"), Ok(SqlType::Inet6));
        assert_eq!(p("uuid", "uuid"), Ok(SqlType::Uuid));
    }

    #[test]
    fn unknown_types_are_refused() {
        let e = p("vector", "vector(3)").expect_err("refused");
        assert_eq!(
            e,
            SqlTypeError::Unsupported {
                column_type: "vector(3)".into()
            }
        );
        assert!(e.to_string().contains("refused before anything starts"));
        assert!(matches!(p("", ""), Err(SqlTypeError::Malformed { .. })));
    }

    #[test]
    fn display_roundtrips_through_the_parser() {
        for (dt, ct) in [
            ("bigint", "bigint(20) unsigned"),
            ("decimal", "decimal(65,30)"),
            ("datetime", "datetime(6)"),
            ("time", "time"),
            ("bit", "bit(7)"),
            ("set", "set('a','b')"),
            ("varbinary", "varbinary(3)"),
        ] {
            let t = p(dt, ct).expect("parse");
            assert_eq!(p(dt, &t.to_string()), Ok(t.clone()), "{t}");
        }
    }

    #[test]
    fn table_validation() {
        let t = |cols: &[&str], pk: &[&str]| TableSchema {
            db: "d".into(),
            table: "t".into(),
            columns: cols
                .iter()
                .map(|c| ColumnDef::new(*c, SqlType::Int { unsigned: false }, false))
                .collect(),
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(t(&["id", "v"], &["id"]).validate(), Ok(()));
        assert!(matches!(
            t(&["id", "ID"], &["id"]).validate(),
            Err(SqlTypeError::DuplicateColumn { .. })
        ));
        assert!(matches!(
            t(&["id"], &["nope"]).validate(),
            Err(SqlTypeError::UnknownKeyColumn { .. })
        ));
        assert_eq!(
            t(&["id"], &["id"]).column("id").map(|c| c.nullable),
            Some(false)
        );
    }
}
