//! Keys of destination tables (primary, unique, foreign-key relations),
//! and the folded key hash that runs and write sets compare keys with.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use revdoor_core::event::{ChangeEvent, ColumnValue, Row};

use crate::ApplyError;

/// A hash of key values. Strings are folded to lower case without
/// trailing spaces, so that keys a case-insensitive collation equates
/// collide (over-approximating a conflict, or ending a run early, is safe).
/// No allocation unless a string is not ASCII.
pub(crate) fn key_hash<'a>(values: impl Iterator<Item = Option<&'a ColumnValue>>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in values {
        match v {
            None | Some(ColumnValue::Null) => 0u8.hash(&mut h),
            Some(ColumnValue::Int(i)) => (1u8, i).hash(&mut h),
            Some(ColumnValue::UInt(u)) => (2u8, u).hash(&mut h),
            Some(ColumnValue::Float(f)) => (3u8, f.to_bits()).hash(&mut h),
            Some(ColumnValue::Double(d)) => (4u8, d.to_bits()).hash(&mut h),
            Some(ColumnValue::Bytes(b)) => {
                h.write_u8(5);
                if b.is_ascii() {
                    for c in without_trailing_spaces(b) {
                        h.write_u8(c.to_ascii_lowercase());
                    }
                } else {
                    let folded = String::from_utf8_lossy(b).to_lowercase();
                    h.write(folded.trim_end_matches(' ').as_bytes());
                }
                h.write_u8(0xff);
            }
            Some(ColumnValue::DateTime(t) | ColumnValue::Time(t)) => (6u8, t).hash(&mut h),
        }
    }
    h.finish()
}

/// A byte string without its trailing spaces.
pub(crate) fn without_trailing_spaces(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    &b[..end]
}

/// Keys of a destination table.
pub(crate) struct TableKeys {
    pub(crate) primary: Vec<String>,
    /// Every unique key, the primary key first.
    pub(crate) uniques: Vec<Vec<String>>,
    /// The table refers to another or is referred to by one.
    pub(crate) foreign_keys: bool,
    /// Its MySQL `JSON` columns (MariaDB's JSON is `LONGTEXT`: none).
    pub(crate) json: Vec<String>,
    /// Its generated columns: the server computes them and refuses a value
    /// (MariaDB error 1906, MySQL 3105), so apply leaves them out.
    pub(crate) generated: Vec<String>,
}

/// Keys of destination tables.
#[derive(Default)]
pub(crate) struct KeyCache(pub(crate) HashMap<String, HashMap<String, TableKeys>>);

impl KeyCache {
    /// Forget what is known of `db.table` (its definition changed).
    pub(crate) fn forget(&mut self, db: &str, table: &str) {
        if let Some(tables) = self.0.get_mut(db) {
            tables.remove(table);
        }
    }

    pub(crate) async fn ensure(
        &mut self,
        conn: &mut impl Queryable,
        db: &str,
        table: &str,
    ) -> Result<(), ApplyError> {
        // Looked up for every event: no allocation when known.
        if self.info(db, table).is_some() {
            return Ok(());
        }
        let cols: Vec<(String, String)> = conn
            .exec(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
                 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
                (db, table),
            )
            .await
            .map_err(|e| ApplyError::transient("read destination keys", e))?;
        let mut uniques: Vec<(String, Vec<String>)> = Vec::new();
        for (index, col) in cols {
            match uniques.last_mut() {
                Some((name, cols)) if *name == index => cols.push(col),
                _ => uniques.push((index, vec![col])),
            }
        }
        let primary = match uniques.first() {
            Some((name, cols)) if name == "PRIMARY" => cols.clone(),
            _ => {
                return Err(ApplyError::Definite(format!(
                    "destination table {db}.{table} is missing or has no primary key"
                )))
            }
        };
        let fks: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
                 WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) \
                 OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)",
                (db, table, db, table),
            )
            .await
            .map_err(|e| ApplyError::transient("read destination foreign keys", e))?;
        // MariaDB leaves GENERATION_EXPRESSION NULL for stored columns,
        // MySQL empty.
        let special: Vec<(String, String, bool)> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, IFNULL(GENERATION_EXPRESSION, '') <> '' \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 AND (DATA_TYPE = 'json' OR IFNULL(GENERATION_EXPRESSION, '') <> '')",
                (db, table),
            )
            .await
            .map_err(|e| ApplyError::transient("read destination JSON and generated columns", e))?;
        let generated: Vec<String> = special
            .iter()
            .filter(|(_, _, g)| *g)
            .map(|(c, _, _)| c.clone())
            .collect();
        let json: Vec<String> = special
            .into_iter()
            .filter(|(_, t, g)| t.eq_ignore_ascii_case("json") && !g)
            .map(|(c, _, _)| c)
            .collect();
        self.0.entry(db.to_string()).or_default().insert(
            table.to_string(),
            TableKeys {
                primary,
                uniques: uniques.into_iter().map(|(_, c)| c).collect(),
                foreign_keys: fks.unwrap_or(0) > 0,
                json,
                generated,
            },
        );
        Ok(())
    }

    pub(crate) fn info(&self, db: &str, table: &str) -> Option<&TableKeys> {
        self.0.get(db)?.get(table)
    }

    pub(crate) fn get(&self, db: &str, table: &str) -> &[String] {
        self.info(db, table).map_or(&[], |t| t.primary.as_slice())
    }

    /// `events` without the values of their destination tables' generated
    /// columns; `None` when no table has any (nothing to copy).
    pub(crate) fn without_generated(
        &self,
        events: &[(i64, ChangeEvent)],
    ) -> Option<Vec<(i64, ChangeEvent)>> {
        let generated = |ev: &ChangeEvent| {
            self.info(&ev.source.db, &ev.source.table)
                .map_or(&[][..], |t| t.generated.as_slice())
        };
        if events.iter().all(|(_, ev)| generated(ev).is_empty()) {
            return None;
        }
        let strip = |row: &Row, skip: &[String]| {
            let keep: Vec<usize> = (0..row.columns.len())
                .filter(|&i| !skip.contains(&row.columns[i]))
                .collect();
            Row {
                columns: keep.iter().map(|&i| row.columns[i].clone()).collect(),
                values: keep.iter().map(|&i| row.values[i].clone()).collect(),
            }
        };
        Some(
            events
                .iter()
                .map(|(offset, ev)| {
                    let skip = generated(ev);
                    let mut ev = ev.clone();
                    if !skip.is_empty() {
                        ev.before = ev.before.as_ref().map(|r| strip(r, skip));
                        ev.after = ev.after.as_ref().map(|r| strip(r, skip));
                    }
                    (*offset, ev)
                })
                .collect(),
        )
    }

    /// The table's MySQL `JSON` columns.
    pub(crate) fn json(&self, db: &str, table: &str) -> &[String] {
        self.info(db, table).map_or(&[], |t| t.json.as_slice())
    }
}
