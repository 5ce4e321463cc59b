//! Table definitions from the binlog's table maps.
//!
//! With `binlog_row_metadata=FULL` every table map carries the table's
//! definition *as it was when the rows after it were written*: column
//! names, binlog types with their metadata (lengths, precision and scale,
//! fractional seconds, BIT widths), signedness, nullability, each
//! character column's collation, ENUM and SET members and the primary key.
//! Capture builds the definition of every captured row from its table map
//! ([`TableMap::definition`]), so a backlog older than a DDL (a capture
//! restarted after `ALTER TABLE … ADD / DROP / MODIFY`) is published with
//! the definition of its time, under a new fingerprint in
//! `revdoor.schemas` each time the definition changes.
//!
//! # What `information_schema` still adds
//!
//! The table map is authoritative for the columns, their order, names,
//! types, signedness, nullability and the primary key. A few distinctions
//! exist only in `information_schema`, which shows the table as it is now;
//! they are taken from it column by column, *only while that column still
//! matches* the table map (same name, and a type of which the table map's
//! is the binlog form):
//!
//! - MariaDB `JSON` is a `LONGTEXT` with a `CHECK (json_valid(…))`: in the
//!   binlog a `LONGTEXT`. Without a matching column now (a JSON column
//!   dropped since), it is carried as `LONGTEXT` — the same text.
//! - MariaDB `INET4`, `INET6` and `UUID` travel as `BINARY(4)` / `BINARY(16)`.
//! - ENUM and SET members travel as bytes in the column's character set;
//!   `information_schema` gives them as text. Without a match, members that
//!   are UTF-8 are read as such; others are refused (definite error).
//!
//! Character sets are named through the server's collation table
//! ([`Collations`], read once per run): a `CHAR`/`VARCHAR` length in the
//! table map is in bytes, divided by the character set's longest character.

use std::collections::HashMap;

use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;
use revdoor_core::sqltype::{
    BinaryKind, ColumnDef, SqlType, SqlTypeError, StringKind, TableSchema,
};

/// Why a table map gives no definition revdoor can publish.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("column {db}.{table}.{column}: {source}")]
    Column {
        db: String,
        table: String,
        column: String,
        #[source]
        source: ColumnError,
    },
    #[error("table map of {db}.{table}: primary-key column {index} out of range")]
    KeyOutOfRange {
        db: String,
        table: String,
        index: usize,
    },
    #[error(
        "table {db}.{table} has no primary key in the binlog's table map: revdoor needs one; \
         add a PRIMARY KEY"
    )]
    NoPrimaryKey { db: String, table: String },
    #[error(transparent)]
    Invalid(#[from] SqlTypeError),
}

/// Why one table-map column has no type revdoor knows.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ColumnError {
    #[error("no character set in the table map")]
    NoCharset,
    #[error("unknown collation id {0}")]
    UnknownCollation(u16),
    #[error("no ENUM/SET members in the table map")]
    NoMembers,
    #[error(
        "ENUM/SET member {0:02x?} is not UTF-8 and information_schema no longer has the \
         column as it was; re-create the workflow from a position after the change"
    )]
    MemberNotUtf8(Vec<u8>),
    #[error("binlog column type {0} is not supported by revdoor")]
    Unsupported(String),
}

use crate::rows::RowError;

/// The `binary` pseudo-collation: a binary string, not a character one.
const BINARY_COLLATION: u16 = 63;

/// The server's collations: id → (character set name, its longest
/// character in bytes), from `information_schema`.
pub type Collations = HashMap<u16, (String, u32)>;

/// One column of a table map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapColumn {
    pub name: String,
    /// The real type (`MYSQL_TYPE_STRING` resolved to ENUM / SET / STRING).
    pub ty: ColumnType,
    /// The column's metadata bytes in the table map.
    pub meta: Vec<u8>,
    pub unsigned: bool,
    pub nullable: bool,
    /// Character columns' collation (`None` for other types).
    pub collation: Option<u16>,
    /// ENUM / SET members as stored (`None` for other types).
    pub members: Option<Vec<Vec<u8>>>,
}

/// A table map read whole: what the rows after it decode with and the
/// table's definition at that point of the binlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    pub db: String,
    pub table: String,
    pub columns: Vec<MapColumn>,
    /// Primary-key column indexes in key order; empty if the map has none.
    pub primary_key: Vec<usize>,
}

impl TableMap {
    /// Read a table map event (with `binlog_row_metadata=FULL`).
    pub fn of(tme: &TableMapEvent<'_>) -> Result<TableMap, RowError> {
        let n = tme.columns_count() as usize;
        let nulls = tme.null_bitmask();
        let mut columns = Vec::with_capacity(n);
        for i in 0..n {
            let ty = tme
                .get_column_type(i)
                .map_err(|error| RowError::ColumnType { column: i, error })?
                .ok_or(RowError::NoColumnType(i))?;
            columns.push(MapColumn {
                name: String::new(),
                ty,
                meta: tme.get_column_metadata(i).unwrap_or(&[]).to_vec(),
                unsigned: false,
                nullable: nulls.get(i).is_some_and(|b| *b),
                collation: None,
                members: None,
            });
        }
        let mut names = 0;
        let mut primary_key = Vec::new();
        let mut default_charset = None;
        let mut charsets: Vec<(usize, u16)> = Vec::new();
        let character: Vec<usize> = (0..n)
            .filter(|i| columns[*i].ty.is_character_type())
            .collect();
        for field in tme.iter_optional_meta() {
            match field.map_err(RowError::Metadata)? {
                OptionalMetadataField::Signedness(bits) => {
                    // One bit per numeric column, in column order.
                    let numeric: Vec<usize> = (0..n)
                        .filter(|i| columns[*i].ty.is_numeric_type())
                        .collect();
                    for (i, bit) in numeric.into_iter().zip(bits.iter()) {
                        columns[i].unsigned = *bit;
                    }
                }
                OptionalMetadataField::ColumnName(cols) => {
                    for (c, name) in columns.iter_mut().zip(cols.iter_names()) {
                        c.name = name.map_err(RowError::ColumnNames)?.name().into_owned();
                        names += 1;
                    }
                }
                OptionalMetadataField::DefaultCharset(d) => {
                    default_charset = Some(d.default_charset());
                    for nd in d.iter_non_default() {
                        let nd = nd.map_err(RowError::Metadata)?;
                        // The index counts character columns only.
                        if let Some(i) = character.get(nd.column_index() as usize) {
                            charsets.push((*i, nd.charset()));
                        }
                    }
                }
                OptionalMetadataField::ColumnCharset(c) => {
                    for (i, cs) in character.iter().zip(c.iter_charsets()) {
                        charsets.push((*i, cs.map_err(RowError::Metadata)?));
                    }
                }
                OptionalMetadataField::EnumStrValue(e) => {
                    let lists = e.iter_values().map(|v| {
                        v.map(|v| v.values().iter().map(|m| m.value_raw().to_vec()).collect())
                    });
                    set_members(&mut columns, ColumnType::MYSQL_TYPE_ENUM, lists)?;
                }
                OptionalMetadataField::SetStrValue(s) => {
                    let lists = s.iter_values().map(|v| {
                        v.map(|v| v.values().iter().map(|m| m.value_raw().to_vec()).collect())
                    });
                    set_members(&mut columns, ColumnType::MYSQL_TYPE_SET, lists)?;
                }
                OptionalMetadataField::SimplePrimaryKey(pk) => {
                    for i in pk.iter_indexes() {
                        primary_key.push(i.map_err(RowError::Metadata)? as usize);
                    }
                }
                OptionalMetadataField::PrimaryKeyWithPrefix(pk) => {
                    for k in pk.iter_keys() {
                        primary_key.push(k.map_err(RowError::Metadata)?.column_index() as usize);
                    }
                }
                _ => {}
            }
        }
        if names != n {
            return Err(RowError::NoColumnNames);
        }
        if let Some(d) = default_charset {
            for i in &character {
                columns[*i].collation = Some(d);
            }
        }
        for (i, cs) in charsets {
            columns[i].collation = Some(cs);
        }
        Ok(TableMap {
            db: tme.database_name().into_owned(),
            table: tme.table_name().into_owned(),
            columns,
            primary_key,
        })
    }

    /// The table's definition at this table map, refined by `now` (the
    /// table in `information_schema`) only where a column of `now` still
    /// matches (see the module doc). `Err` names the column and why.
    pub fn definition(
        &self,
        collations: &Collations,
        now: Option<&TableSchema>,
    ) -> Result<TableSchema, MapError> {
        let mut columns = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let current = now.and_then(|t| t.column(&c.name)).map(|d| &d.sql_type);
            let sql_type =
                column_type(c, collations, current).map_err(|source| MapError::Column {
                    db: self.db.clone(),
                    table: self.table.clone(),
                    column: c.name.clone(),
                    source,
                })?;
            columns.push(ColumnDef::new(c.name.clone(), sql_type, c.nullable));
        }
        let primary_key: Vec<String> = if self.primary_key.is_empty() {
            // A map without key metadata: the key of now, if it still fits.
            now.map(|t| t.primary_key.clone())
                .filter(|k| k.iter().all(|k| self.columns.iter().any(|c| &c.name == k)))
                .unwrap_or_default()
        } else {
            self.primary_key
                .iter()
                .map(|i| {
                    self.columns.get(*i).map(|c| c.name.clone()).ok_or_else(|| {
                        MapError::KeyOutOfRange {
                            db: self.db.clone(),
                            table: self.table.clone(),
                            index: *i,
                        }
                    })
                })
                .collect::<Result<_, _>>()?
        };
        if primary_key.is_empty() {
            return Err(MapError::NoPrimaryKey {
                db: self.db.clone(),
                table: self.table.clone(),
            });
        }
        let def = TableSchema {
            db: self.db.clone(),
            table: self.table.clone(),
            columns,
            primary_key,
        };
        def.validate()?;
        Ok(def)
    }

    /// Whether every column has a column of the same name in `now` whose
    /// type refines this map's (nothing is left to guess).
    pub fn matched_by(&self, collations: &Collations, now: &TableSchema) -> bool {
        self.columns.iter().all(|c| {
            now.column(&c.name).is_some_and(|d| {
                column_type(c, collations, Some(&d.sql_type)).is_ok_and(|t| t == d.sql_type)
            })
        })
    }
}

/// Give the columns of type `ty` (ENUM or SET), in order, their members.
fn set_members(
    columns: &mut [MapColumn],
    ty: ColumnType,
    lists: impl Iterator<Item = std::io::Result<Vec<Vec<u8>>>>,
) -> Result<(), RowError> {
    let of_type = columns.iter_mut().filter(|c| c.ty == ty);
    for (c, members) in of_type.zip(lists) {
        c.members = Some(members.map_err(RowError::Metadata)?);
    }
    Ok(())
}

/// The type of one table-map column; `current` (its type in
/// `information_schema` now) is taken where the binlog form matches it.
fn column_type(
    c: &MapColumn,
    collations: &Collations,
    current: Option<&SqlType>,
) -> Result<SqlType, ColumnError> {
    let charset = || -> Result<(String, u32), ColumnError> {
        let id = c.collation.ok_or(ColumnError::NoCharset)?;
        collations
            .get(&id)
            .cloned()
            .ok_or(ColumnError::UnknownCollation(id))
    };
    let meta = |i: usize| u32::from(c.meta.get(i).copied().unwrap_or(0));
    let binary = c.collation == Some(BINARY_COLLATION);
    use ColumnType::*;
    let from_map = match c.ty {
        MYSQL_TYPE_TINY => SqlType::TinyInt {
            unsigned: c.unsigned,
        },
        MYSQL_TYPE_SHORT => SqlType::SmallInt {
            unsigned: c.unsigned,
        },
        MYSQL_TYPE_INT24 => SqlType::MediumInt {
            unsigned: c.unsigned,
        },
        MYSQL_TYPE_LONG => SqlType::Int {
            unsigned: c.unsigned,
        },
        MYSQL_TYPE_LONGLONG => SqlType::BigInt {
            unsigned: c.unsigned,
        },
        MYSQL_TYPE_NEWDECIMAL => SqlType::Decimal {
            precision: meta(0) as u8,
            scale: meta(1) as u8,
        },
        MYSQL_TYPE_FLOAT => SqlType::Float,
        MYSQL_TYPE_DOUBLE => SqlType::Double,
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => SqlType::Date,
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => SqlType::DateTime { fsp: meta(0) as u8 },
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => SqlType::Timestamp { fsp: meta(0) as u8 },
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => SqlType::Time { fsp: meta(0) as u8 },
        MYSQL_TYPE_YEAR => SqlType::Year,
        MYSQL_TYPE_BIT => SqlType::Bit {
            bits: (meta(1) * 8 + meta(0)) as u8,
        },
        MYSQL_TYPE_JSON => SqlType::Json,
        MYSQL_TYPE_GEOMETRY => SqlType::Geometry,
        MYSQL_TYPE_ENUM | MYSQL_TYPE_SET => {
            let members = c.members.as_deref().ok_or(ColumnError::NoMembers)?;
            // Members as text now, when they are the same members.
            let same = |now: &[String]| {
                now.len() == members.len()
                    && members
                        .iter()
                        .zip(now)
                        .all(|(m, n)| match std::str::from_utf8(m) {
                            Ok(s) => s == n,
                            Err(_) => true,
                        })
            };
            match (c.ty, current) {
                (MYSQL_TYPE_ENUM, Some(SqlType::Enum { values })) if same(values) => {
                    return Ok(SqlType::Enum {
                        values: values.clone(),
                    })
                }
                (MYSQL_TYPE_SET, Some(SqlType::Set { values })) if same(values) => {
                    return Ok(SqlType::Set {
                        values: values.clone(),
                    })
                }
                _ => {}
            }
            let values = members
                .iter()
                .map(|m| member_text(m))
                .collect::<Result<Vec<_>, _>>()?;
            if c.ty == MYSQL_TYPE_ENUM {
                SqlType::Enum { values }
            } else {
                SqlType::Set { values }
            }
        }
        MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR => {
            let bytes = if c.ty == MYSQL_TYPE_STRING {
                string_length(&c.meta)
            } else {
                meta(0) | (meta(1) << 8)
            };
            let fixed = c.ty == MYSQL_TYPE_STRING;
            if binary {
                SqlType::Binary {
                    kind: if fixed {
                        BinaryKind::Binary(bytes)
                    } else {
                        BinaryKind::VarBinary(bytes)
                    },
                }
            } else {
                let (name, maxlen) = charset()?;
                let chars = bytes / maxlen.max(1);
                SqlType::String {
                    kind: if fixed {
                        StringKind::Char(chars)
                    } else {
                        StringKind::VarChar(chars)
                    },
                    charset: name,
                }
            }
        }
        MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB => {
            let pack = match c.ty {
                MYSQL_TYPE_TINY_BLOB => 1,
                MYSQL_TYPE_MEDIUM_BLOB => 3,
                MYSQL_TYPE_LONG_BLOB => 4,
                _ => meta(0),
            };
            if binary {
                SqlType::Binary {
                    kind: match pack {
                        1 => BinaryKind::TinyBlob,
                        2 => BinaryKind::Blob,
                        3 => BinaryKind::MediumBlob,
                        _ => BinaryKind::LongBlob,
                    },
                }
            } else {
                SqlType::String {
                    kind: match pack {
                        1 => StringKind::TinyText,
                        2 => StringKind::Text,
                        3 => StringKind::MediumText,
                        _ => StringKind::LongText,
                    },
                    charset: charset()?.0,
                }
            }
        }
        other => return Err(ColumnError::Unsupported(format!("{other:?}"))),
    };
    Ok(match (from_map, current) {
        // What only information_schema tells, where the binlog form is the same.
        (
            SqlType::String {
                kind: StringKind::LongText,
                ..
            },
            Some(SqlType::Json),
        ) => SqlType::Json,
        (
            SqlType::Binary {
                kind: BinaryKind::Binary(4),
            },
            Some(SqlType::Inet4),
        ) => SqlType::Inet4,
        (
            SqlType::Binary {
                kind: BinaryKind::Binary(16),
            },
            Some(t @ (SqlType::Inet6 | SqlType::Uuid)),
        ) => t.clone(),
        (t, _) => t,
    })
}

/// A `MYSQL_TYPE_STRING` column's length in bytes: the metadata is the
/// real type and the length's low byte, the length's two high bits folded
/// into the type byte (MySQL's `Field_string::save_field_metadata`).
fn string_length(meta: &[u8]) -> u32 {
    let (b0, b1) = (
        u32::from(meta.first().copied().unwrap_or(0)),
        u32::from(meta.get(1).copied().unwrap_or(0)),
    );
    if b0 & 0x30 != 0x30 {
        b1 | (((b0 & 0x30) ^ 0x30) << 4)
    } else {
        b1
    }
}

/// An ENUM / SET member as text (UTF-8; other bytes are refused).
fn member_text(m: &[u8]) -> Result<String, ColumnError> {
    match std::str::from_utf8(m) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => Err(ColumnError::MemberNotUtf8(m.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: ColumnType, meta: &[u8]) -> MapColumn {
        MapColumn {
            name: name.into(),
            ty,
            meta: meta.to_vec(),
            unsigned: false,
            nullable: true,
            collation: None,
            members: None,
        }
    }

    fn collations() -> Collations {
        HashMap::from([
            (45, ("utf8mb4".to_string(), 4)),
            (8, ("latin1".to_string(), 1)),
            (63, ("binary".to_string(), 1)),
        ])
    }

    fn ty(c: &MapColumn, now: Option<&SqlType>) -> Result<SqlType, ColumnError> {
        column_type(c, &collations(), now)
    }

    #[test]
    fn strings_binaries_and_their_lengths() {
        let text = |mut c: MapColumn, id| {
            c.collation = Some(id);
            c
        };
        let s = |kind, charset: &str| SqlType::String {
            kind,
            charset: charset.into(),
        };
        let b = |kind| SqlType::Binary { kind };
        let string = ColumnType::MYSQL_TYPE_STRING;
        let varchar = ColumnType::MYSQL_TYPE_VARCHAR;
        let blob = ColumnType::MYSQL_TYPE_BLOB;
        // CHAR(10) utf8mb4: 40 bytes; CHAR(255) utf8mb4: 1020 bytes, the
        // length's high bits folded into the type byte (0xfe ^ 0x30).
        let cases = [
            (
                text(col("c", string, &[0xfe, 40]), 45),
                s(StringKind::Char(10), "utf8mb4"),
            ),
            (
                text(col("c", string, &[0xce, 0xfc]), 45),
                s(StringKind::Char(255), "utf8mb4"),
            ),
            (
                text(col("c", string, &[0xfe, 4]), 63),
                b(BinaryKind::Binary(4)),
            ),
            (
                text(col("v", varchar, &[144, 1]), 45),
                s(StringKind::VarChar(100), "utf8mb4"),
            ),
            (
                text(col("v", varchar, &[100, 0]), 8),
                s(StringKind::VarChar(100), "latin1"),
            ),
            (
                text(col("v", varchar, &[20, 0]), 63),
                b(BinaryKind::VarBinary(20)),
            ),
            (
                text(col("t", blob, &[2]), 45),
                s(StringKind::Text, "utf8mb4"),
            ),
            (
                text(col("t", blob, &[4]), 45),
                s(StringKind::LongText, "utf8mb4"),
            ),
            (text(col("t", blob, &[1]), 63), b(BinaryKind::TinyBlob)),
            (text(col("t", blob, &[3]), 63), b(BinaryKind::MediumBlob)),
        ];
        for (c, want) in cases {
            assert_eq!(ty(&c, None), Ok(want), "{c:?}");
        }
        let unknown = text(col("v", varchar, &[10, 0]), 999);
        assert_eq!(ty(&unknown, None), Err(ColumnError::UnknownCollation(999)));
        assert_eq!(
            ty(&unknown, None).unwrap_err().to_string(),
            "unknown collation id 999"
        );
    }

    #[test]
    fn numbers_and_temporals_from_their_metadata() {
        let mut u = col("u", ColumnType::MYSQL_TYPE_LONGLONG, &[]);
        u.unsigned = true;
        let cases = [
            (u, SqlType::BigInt { unsigned: true }),
            (
                col("m", ColumnType::MYSQL_TYPE_INT24, &[]),
                SqlType::MediumInt { unsigned: false },
            ),
            (
                col("d", ColumnType::MYSQL_TYPE_NEWDECIMAL, &[12, 4]),
                SqlType::Decimal {
                    precision: 12,
                    scale: 4,
                },
            ),
            (
                col("b", ColumnType::MYSQL_TYPE_BIT, &[2, 1]),
                SqlType::Bit { bits: 10 },
            ),
            (
                col("b", ColumnType::MYSQL_TYPE_BIT, &[0, 8]),
                SqlType::Bit { bits: 64 },
            ),
            (
                col("t", ColumnType::MYSQL_TYPE_TIME2, &[3]),
                SqlType::Time { fsp: 3 },
            ),
            (
                col("t", ColumnType::MYSQL_TYPE_DATETIME2, &[6]),
                SqlType::DateTime { fsp: 6 },
            ),
            (
                col("t", ColumnType::MYSQL_TYPE_TIMESTAMP2, &[0]),
                SqlType::Timestamp { fsp: 0 },
            ),
            (col("y", ColumnType::MYSQL_TYPE_YEAR, &[]), SqlType::Year),
            (col("j", ColumnType::MYSQL_TYPE_JSON, &[4]), SqlType::Json),
        ];
        for (c, want) in cases {
            assert_eq!(ty(&c, None), Ok(want), "{c:?}");
        }
    }

    /// information_schema refines a column only while it still matches.
    #[test]
    fn refinements_only_where_the_column_still_matches() {
        let mut longtext = col("j", ColumnType::MYSQL_TYPE_BLOB, &[4]);
        longtext.collation = Some(45);
        assert_eq!(ty(&longtext, Some(&SqlType::Json)), Ok(SqlType::Json));
        let lt = SqlType::String {
            kind: StringKind::LongText,
            charset: "utf8mb4".into(),
        };
        assert_eq!(ty(&longtext, None), Ok(lt.clone()), "JSON dropped since");
        let mut bin16 = col("ip", ColumnType::MYSQL_TYPE_STRING, &[0xfe, 16]);
        bin16.collation = Some(63);
        assert_eq!(ty(&bin16, Some(&SqlType::Inet6)), Ok(SqlType::Inet6));
        assert_eq!(
            ty(&bin16, Some(&SqlType::Inet4)),
            Ok(SqlType::Binary {
                kind: BinaryKind::Binary(16)
            })
        );
        // A type that changed since: the table map's stands.
        let int = col("a", ColumnType::MYSQL_TYPE_LONG, &[]);
        assert_eq!(
            ty(&int, Some(&SqlType::BigInt { unsigned: false })),
            Ok(SqlType::Int { unsigned: false })
        );

        let mut e = col("e", ColumnType::MYSQL_TYPE_ENUM, &[1]);
        e.members = Some(vec![b"a".to_vec(), "\u{e9}t\u{e9}".as_bytes().to_vec()]);
        let now = SqlType::Enum {
            values: vec!["a".into(), "\u{e9}t\u{e9}".into()],
        };
        assert_eq!(ty(&e, Some(&now)), Ok(now.clone()));
        // Members added since: the table map's members.
        let more = SqlType::Enum {
            values: vec!["a".into(), "\u{e9}t\u{e9}".into(), "c".into()],
        };
        assert_eq!(ty(&e, Some(&more)), Ok(now));
        // latin1 bytes that information_schema no longer vouches for.
        let mut l = col("e", ColumnType::MYSQL_TYPE_ENUM, &[1]);
        l.members = Some(vec![vec![0xe9]]);
        assert!(ty(&l, None).is_err());
        assert_eq!(
            ty(
                &l,
                Some(&SqlType::Enum {
                    values: vec!["\u{e9}".into()]
                })
            ),
            Ok(SqlType::Enum {
                values: vec!["\u{e9}".into()]
            })
        );
    }

    #[test]
    fn definition_takes_columns_and_key_from_the_map() {
        let mut id = col("id", ColumnType::MYSQL_TYPE_LONG, &[]);
        id.nullable = false;
        let map = TableMap {
            db: "d".into(),
            table: "t".into(),
            columns: vec![id, col("a", ColumnType::MYSQL_TYPE_LONG, &[])],
            primary_key: vec![0],
        };
        let int = SqlType::Int { unsigned: false };
        let def = map.definition(&collations(), None).expect("definition");
        assert_eq!(
            def.columns,
            [
                ColumnDef::new("id", int.clone(), false),
                ColumnDef::new("a", int.clone(), true)
            ]
        );
        assert_eq!(def.primary_key, ["id"]);
        assert!(map.matched_by(&collations(), &def));
        let mut wider = def.clone();
        wider.columns[1].sql_type = SqlType::BigInt { unsigned: false };
        assert!(!map.matched_by(&collations(), &wider));
        // Without key metadata: the key of now, if its columns exist.
        let keyless = TableMap {
            primary_key: vec![],
            ..map
        };
        assert_eq!(
            keyless
                .definition(&collations(), Some(&def))
                .map(|d| d.primary_key)
                .ok(),
            Some(vec!["id".to_string()])
        );
        let err = keyless
            .definition(&collations(), None)
            .expect_err("no key")
            .to_string();
        assert!(err.contains("has no primary key"), "{err}");
    }
}
