//! Reading a column type from `information_schema.COLUMNS`: the
//! `COLUMN_TYPE` text split into name, parameters and modifiers, then
//! checked against its `DATA_TYPE`.

use std::num::ParseIntError;

use super::{BinaryKind, SqlType, SqlTypeError, StringKind};

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
            let (args, after) = parse_args(inner).map_err(|e| malformed(&e.to_string()))?;
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

/// Why a `COLUMN_TYPE` parameter list does not parse (the reason of
/// [`SqlTypeError::Malformed`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ArgsError {
    #[error("expected a quoted member")]
    ExpectedMember,
    #[error("unterminated quoted member")]
    UnterminatedMember,
    #[error("unterminated escape")]
    UnterminatedEscape,
    #[error("expected `,` or `)` after a member")]
    ExpectedSeparator,
    #[error("unclosed parameter list")]
    Unclosed,
    #[error("bad parameter `{text}`: {error}")]
    BadNumber { text: String, error: ParseIntError },
}

/// Parse `…)` after the opening parenthesis; returns the arguments and the
/// text after the closing parenthesis.
fn parse_args(s: &str) -> Result<(Args, &str), ArgsError> {
    let t = s.trim_start();
    if t.starts_with('\'') {
        let mut values = Vec::new();
        let mut chars = t.char_indices().peekable();
        loop {
            // Expect a quoted member.
            match chars.next() {
                Some((_, '\'')) => {}
                _ => return Err(ArgsError::ExpectedMember),
            }
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(ArgsError::UnterminatedMember),
                    Some((_, '\'')) => {
                        if matches!(chars.peek(), Some((_, '\''))) {
                            chars.next();
                            v.push('\'');
                        } else {
                            break;
                        }
                    }
                    Some((_, '\\')) => match chars.next() {
                        None => return Err(ArgsError::UnterminatedEscape),
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
                _ => return Err(ArgsError::ExpectedSeparator),
            }
        }
    }
    let close = t.find(')').ok_or(ArgsError::Unclosed)?;
    let numbers = t[..close]
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<u32>()
                .map_err(|error| ArgsError::BadNumber {
                    text: n.trim().to_owned(),
                    error,
                })
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
    fn parameter_list_errors_keep_their_messages() {
        let reason = |dt: &str, ct: &str| match p(dt, ct) {
            Err(SqlTypeError::Malformed { reason, .. }) => reason,
            other => panic!("{ct}: {other:?}"),
        };
        assert_eq!(
            reason("int", "int(x)"),
            "bad parameter `x`: invalid digit found in string"
        );
        assert_eq!(reason("int", "int(11"), "unclosed parameter list");
        assert_eq!(reason("enum", "enum('a"), "unterminated quoted member");
        assert_eq!(reason("enum", "enum('a\\"), "unterminated escape");
        assert_eq!(reason("enum", "enum('a',b)"), "expected a quoted member");
        assert_eq!(
            reason("enum", "enum('a' 'b')"),
            "expected `,` or `)` after a member"
        );
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
}
