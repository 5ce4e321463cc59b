//! The SQL apply runs: idempotent statements for one row change, and
//! multi-row statements for runs of row changes into one table (a group's
//! changes ordered by table first, [`by_table`]).

use mysql_async::Value;
use revdoor_core::event::{ChangeEvent, ColumnValue, Op, Row};

pub(crate) use revdoor_mysql::{quote_ident, to_param};

use crate::keys::{key_hash, KeyCache};

/// Rows per multi-row INSERT at most (and at most 65,535 parameters).
pub(crate) const MULTI_ROWS: usize = 500;

/// What one multi-row statement does for a run of row changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    /// `INSERT` of new rows (a table with secondary unique keys: an
    /// existing key must fail, not rewrite).
    Insert,
    /// `INSERT … ON DUPLICATE KEY UPDATE` of after images: a table whose
    /// only unique key is its primary key, where that is exactly an upsert
    /// by key (the trap of upserts — rewriting another row through a
    /// secondary unique key — cannot happen).
    Upsert,
    /// `DELETE … WHERE key IN (…)`: a single-column primary key.
    Delete,
}

/// A row's values as placeholders and parameters, in column order.
///
/// Apply sessions are binary (`SET NAMES binary`, see [`crate::applier`]),
/// and MySQL refuses to make a `JSON` value from a binary string (error
/// 3144): a value for one of the destination's MySQL `JSON` columns
/// (`json`) is converted to utf8mb4 first. MySQL's JSON text parser reads
/// every fractional number as a double, so the document's DECIMALs
/// ([`revdoor_mysql::json::decimals`]) are set back in as DECIMALs by
/// [`decimals_set_back`]. MariaDB's JSON is `LONGTEXT`: it takes the bytes
/// as they are.
fn row_slots(row: &Row, json: &[String], params: &mut Vec<Value>) -> Vec<String> {
    row.columns
        .iter()
        .zip(&row.values)
        .map(|(c, v)| {
            params.push(to_param(v));
            if !json.iter().any(|j| j == c) {
                return "?".to_owned();
            }
            let doc = match v {
                ColumnValue::Bytes(b) => std::str::from_utf8(b).unwrap_or_default(),
                _ => "",
            };
            decimals_set_back("CONVERT(? USING utf8mb4)", doc)
        })
        .collect()
}

/// `doc_slot` with the DECIMALs of `doc` set back in: one flat
/// `JSON_SET(doc, path, CAST('digits' AS DECIMAL(p, s)), …)`.
///
/// Flat, because a `JSON_SET` nested per DECIMAL overruns MySQL's thread
/// stack at a few thousand (ERROR 1436; a 2,000-deep one as literal text
/// crashed a MySQL 9.7 server). Paths and digits are literals, not
/// parameters, so a document's DECIMALs never count against the 65,535
/// parameters of a statement: a path as a hex literal (any key, no
/// quoting), the digits quoted — a sign, digits and a point, as
/// [`revdoor_mysql::json::Decimal`] promises; a text with anything else is
/// left out, and the server's own reading of the document stands for it.
fn decimals_set_back(doc_slot: &str, doc: &str) -> String {
    let decimals = revdoor_mysql::json::decimals(doc);
    if decimals.is_empty() {
        return doc_slot.to_owned();
    }
    let mut slot = format!("JSON_SET({doc_slot}");
    for d in decimals {
        if !d
            .text
            .bytes()
            .all(|b| matches!(b, b'-' | b'.' | b'0'..=b'9'))
        {
            continue;
        }
        slot.push_str(", CONVERT(X'");
        for b in d.path.bytes() {
            slot.push_str(&format!("{b:02x}"));
        }
        slot.push_str(&format!(
            "' USING utf8mb4), CAST('{}' AS DECIMAL({}, {}))",
            d.text, d.precision, d.scale
        ));
    }
    slot.push(')');
    slot
}

/// `events` with each table's row changes together, so that runs span
/// the transactions of a group: tables in the order they first appear,
/// each table's changes in source order. Only the order between tables
/// changes, which inside one DB transaction changes nothing unless
/// constraints tie tables together: when any table is in a foreign-key
/// relation (or its keys are unknown), `events` stay as they are.
pub(crate) fn by_table<'e>(
    events: &[&'e (i64, ChangeEvent)],
    keys: &KeyCache,
) -> Vec<&'e (i64, ChangeEvent)> {
    let mut tables: Vec<(&str, &str)> = Vec::new();
    let mut rank = Vec::with_capacity(events.len());
    for (_, ev) in events.iter().copied() {
        let (db, table) = (ev.source.db.as_str(), ev.source.table.as_str());
        if keys.info(db, table).is_none_or(|t| t.foreign_keys) {
            return events.to_vec();
        }
        let n = match tables.iter().position(|t| *t == (db, table)) {
            Some(n) => n,
            None => {
                tables.push((db, table));
                tables.len() - 1
            }
        };
        rank.push(n);
    }
    let mut order: Vec<usize> = (0..events.len()).collect();
    // Stable: each table's changes keep their order.
    order.sort_by_key(|&i| rank[i]);
    order.into_iter().map(|i| events[i]).collect()
}

/// Whether `ev` can be part of a run of `kind`.
pub(crate) fn fits(kind: RunKind, ev: &ChangeEvent, pk: &[String]) -> bool {
    match kind {
        RunKind::Insert => matches!(ev.op, Op::Create | Op::Read),
        RunKind::Upsert => match ev.op {
            Op::Create | Op::Read => true,
            // An update that keeps its key (a key change is delete + insert).
            Op::Update => match (ev.before.as_ref(), ev.after.as_ref()) {
                (Some(b), Some(a)) => pk.iter().all(|c| b.get(c) == a.get(c)),
                _ => false,
            },
            Op::Delete => false,
        },
        RunKind::Delete => ev.op == Op::Delete,
    }
}

/// The run at the start of `events` that one multi-row statement can carry
/// (one table, the same columns, distinct primary keys unless it upserts,
/// at most `MULTI_ROWS` rows), and its kind; length 0 when none.
pub(crate) fn batch_run(events: &[&(i64, ChangeEvent)], keys: &KeyCache) -> (usize, RunKind) {
    let Some((_, first)) = events.first().copied() else {
        return (0, RunKind::Insert);
    };
    let info = keys.info(&first.source.db, &first.source.table);
    let pk = keys.get(&first.source.db, &first.source.table);
    let pk_only = info.is_some_and(|i| i.uniques.len() == 1);
    let kind = if first.op == Op::Delete {
        if pk.len() != 1 {
            return (0, RunKind::Delete);
        }
        RunKind::Delete
    } else if pk_only && fits(RunKind::Upsert, first, pk) {
        RunKind::Upsert
    } else if fits(RunKind::Insert, first, pk) {
        RunKind::Insert
    } else {
        return (0, RunKind::Insert);
    };
    fn image(kind: RunKind, ev: &ChangeEvent) -> Option<&Row> {
        if kind == RunKind::Delete {
            ev.before.as_ref()
        } else {
            ev.after.as_ref()
        }
    }
    let Some(first_row) = image(kind, first) else {
        return (0, kind);
    };
    let max = MULTI_ROWS.min(65_535 / first_row.columns.len().max(1));
    let mut seen = std::collections::HashSet::new();
    let mut n = 0;
    for (_, ev) in events.iter().copied().take(max) {
        let Some(row) = image(kind, ev) else { break };
        let same = fits(kind, ev, pk)
            && ev.source.db == first.source.db
            && ev.source.table == first.source.table
            && (kind == RunKind::Delete || row.columns == first_row.columns);
        if !same {
            break;
        }
        // An upsert takes the same key again: MySQL applies a multi-row
        // `INSERT … ON DUPLICATE KEY UPDATE` row after row, so the later
        // image wins, as it would row by row. An insert or a delete of a
        // key seen before ends the run (a hash of the key: a collision
        // only ends it early).
        if kind != RunKind::Upsert && !seen.insert(key_hash(pk.iter().map(|c| row.get(c)))) {
            break;
        }
        n += 1;
    }
    (n, kind)
}

/// The multi-row statement of a run (see [`RunKind`]); `json` names the
/// destination's MySQL `JSON` columns.
pub(crate) fn multi_statement(
    run: &[&(i64, ChangeEvent)],
    kind: RunKind,
    pk: &[String],
    json: &[String],
) -> Option<(String, Vec<Value>)> {
    let (_, first) = run.first().copied()?;
    let table = format!(
        "{}.{}",
        quote_ident(&first.source.db),
        quote_ident(&first.source.table)
    );
    if kind == RunKind::Delete {
        let key = pk.first()?;
        let sql = format!(
            "DELETE FROM {table} WHERE {} IN ({})",
            quote_ident(key),
            vec!["?"; run.len()].join(", ")
        );
        let mut params = Vec::with_capacity(run.len());
        for (_, ev) in run.iter().copied() {
            params.push(to_param(ev.before.as_ref()?.get(key)?));
        }
        return Some((sql, params));
    }
    let row = first.after.as_ref()?;
    let cols: Vec<String> = row.columns.iter().map(|c| quote_ident(c)).collect();
    let mut params = Vec::with_capacity(run.len() * cols.len());
    let values = if json.is_empty() {
        // The common case, kept cheap: one placeholder group, repeated.
        for (_, ev) in run.iter().copied() {
            params.extend(ev.after.as_ref()?.values.iter().map(to_param));
        }
        let one = format!("({})", vec!["?"; cols.len()].join(", "));
        vec![one.as_str(); run.len()].join(", ")
    } else {
        let mut groups = Vec::with_capacity(run.len());
        for (_, ev) in run.iter().copied() {
            let slots = row_slots(ev.after.as_ref()?, json, &mut params);
            groups.push(format!("({})", slots.join(", ")));
        }
        groups.join(", ")
    };
    let mut sql = format!("INSERT INTO {table} ({}) VALUES {values}", cols.join(", "));
    if kind == RunKind::Upsert {
        let set: Vec<String> = row
            .columns
            .iter()
            .filter(|c| !pk.contains(c))
            .map(|c| format!("{0} = VALUES({0})", quote_ident(c)))
            .collect();
        // A table of key columns only: nothing to update.
        let set = if set.is_empty() {
            let k = quote_ident(pk.first()?);
            format!("{k} = {k}")
        } else {
            set.join(", ")
        };
        sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {set}"));
    }
    Some((sql, params))
}

/// One statement to run for a row change.
#[derive(Debug, PartialEq)]
pub(crate) enum Stmt {
    Exec(String, Vec<Value>),
    /// `update` by primary key; `insert` if it matched no row.
    Upsert {
        update: (String, Vec<Value>),
        insert: (String, Vec<Value>),
    },
}

/// The idempotent statements for one row change: `c`/`r`/`u` upsert the
/// after image (deleting the before image first when the key changed),
/// `d` deletes by key. Re-running them changes nothing. `json` names the
/// destination's MySQL `JSON` columns.
pub(crate) fn statements(ev: &ChangeEvent, pk: &[String], json: &[String]) -> Vec<Stmt> {
    let table = format!(
        "{}.{}",
        quote_ident(&ev.source.db),
        quote_ident(&ev.source.table)
    );
    let key_cond = || {
        pk.iter()
            .map(|c| format!("{} = ?", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let key_params = |row: &Row| {
        pk.iter()
            .map(|c| row.get(c).map(to_param).unwrap_or(Value::NULL))
            .collect::<Vec<_>>()
    };
    let delete = |row: &Row| {
        Stmt::Exec(
            format!("DELETE FROM {table} WHERE {}", key_cond()),
            key_params(row),
        )
    };
    let upsert = |row: &Row| {
        let cols: Vec<String> = row.columns.iter().map(|c| quote_ident(c)).collect();
        let mut update_params = Vec::new();
        let slots = row_slots(row, json, &mut update_params);
        let sets: Vec<String> = cols
            .iter()
            .zip(&slots)
            .map(|(c, s)| format!("{c} = {s}"))
            .collect();
        let insert_params = update_params.clone();
        update_params.extend(key_params(row));
        Stmt::Upsert {
            update: (
                format!(
                    "UPDATE {table} SET {} WHERE {}",
                    sets.join(", "),
                    key_cond()
                ),
                update_params,
            ),
            insert: (
                format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    cols.join(", "),
                    slots.join(", ")
                ),
                insert_params,
            ),
        }
    };
    let key_of = |row: &Row| pk.iter().map(|c| row.get(c).cloned()).collect::<Vec<_>>();
    let mut out = Vec::new();
    match (ev.op, &ev.before, &ev.after) {
        (Op::Delete, Some(before), _) => out.push(delete(before)),
        (Op::Update, Some(before), Some(after)) => {
            if key_of(before) != key_of(after) {
                out.push(delete(before));
            }
            out.push(upsert(after));
        }
        (_, _, Some(after)) => out.push(upsert(after)),
        _ => {}
    }
    out
}
