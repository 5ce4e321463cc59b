//! Unit tests of apply's pure logic: statements, runs, write sets, key
//! hashes.

use crate::keys::{key_hash, KeyCache, TableKeys};
use crate::parallel::{buckets, transactions};
use crate::sql::{
    batch_run, by_table, multi_statement, quote_ident, statements, RunKind, Stmt, MULTI_ROWS,
};
use mysql_async::Value;
use revdoor_core::event::{ChangeEvent, ColumnValue, Op, Row};
use revdoor_core::event::{Source, TxnInfo};

fn row(id: i64, name: &str) -> Row {
    Row {
        columns: vec!["id".into(), "name".into()].into(),
        values: vec![
            ColumnValue::Int(id),
            ColumnValue::Bytes(name.as_bytes().to_vec()),
        ],
    }
}

fn ev(op: Op, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
    ChangeEvent {
        op,
        before,
        after,
        source: Source {
            shard: "-".into(),
            db: "d".into(),
            table: "t".into(),
            ts_sec: 0,
        },
        txn: TxnInfo {
            gtid: "0-1-1".into(),
            index: 0,
            last: true,
        },
        ts_ms: 0,
    }
}

fn refs(v: &[(i64, ChangeEvent)]) -> Vec<&(i64, ChangeEvent)> {
    v.iter().collect()
}

fn keys_of(uniques: Vec<Vec<&str>>, foreign_keys: bool) -> KeyCache {
    let mut keys = KeyCache::default();
    let uniques: Vec<Vec<String>> = uniques
        .into_iter()
        .map(|u| u.into_iter().map(String::from).collect())
        .collect();
    keys.0.entry("d".into()).or_default().insert(
        "t".into(),
        TableKeys {
            primary: uniques[0].clone(),
            uniques,
            foreign_keys,
            json: Vec::new(),
            generated: Vec::new(),
        },
    );
    keys
}

#[test]
fn multi_row_runs_stop_at_other_ops_tables_and_repeated_keys() {
    // A secondary unique key: plain inserts only.
    let keys = keys_of(vec![vec!["id"], vec!["name"]], false);
    let c = |id| (0i64, ev(Op::Create, None, Some(row(id, "x"))));
    let r = |id| (0i64, ev(Op::Read, None, Some(row(id, "x"))));
    let u = |id| (0i64, ev(Op::Update, Some(row(id, "x")), Some(row(id, "y"))));
    let d = |id| (0i64, ev(Op::Delete, Some(row(id, "x")), None));
    // Inserts and copied rows mix; a delete ends the run.
    let evs = vec![c(1), r(2), c(3), d(1), c(4)];
    assert_eq!(batch_run(&refs(&evs), &keys), (3, RunKind::Insert));
    // Deletes by a single-column key run together.
    assert_eq!(batch_run(&refs(&evs[3..]), &keys), (1, RunKind::Delete));
    assert_eq!(
        batch_run(&refs(&[d(1), d(2), c(3)]), &keys),
        (2, RunKind::Delete)
    );
    // With a secondary unique key an update is not part of a run.
    assert_eq!(batch_run(&refs(&[u(1), c(2)]), &keys).0, 0);
    // The same key twice: the second starts a new run.
    let evs = vec![c(1), c(2), c(1)];
    assert_eq!(batch_run(&refs(&evs), &keys).0, 2);
    // Another table ends it.
    let mut other = c(5);
    other.1.source.table = "u".into();
    assert_eq!(batch_run(&refs(&[c(1), other]), &keys).0, 1);
    // One statement, one placeholder group per row, values in order.
    let (sql, params) = multi_statement(&refs(&[c(1), c(2)]), RunKind::Insert, &["id".into()], &[])
        .expect("insert");
    assert_eq!(
        sql,
        "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, ?), (?, ?)"
    );
    assert_eq!(params.len(), 4);
    // At most MULTI_ROWS rows.
    let many: Vec<_> = (0..MULTI_ROWS as i64 + 10).map(c).collect();
    assert_eq!(batch_run(&refs(&many), &keys).0, MULTI_ROWS);

    // Only a primary key: inserts, copied rows and key-keeping updates
    // are one upsert; a key change ends the run.
    let pk_only = keys_of(vec![vec!["id"]], false);
    let moved = (0i64, ev(Op::Update, Some(row(3, "x")), Some(row(9, "x"))));
    let evs = vec![c(1), u(2), r(4), moved, c(5)];
    assert_eq!(batch_run(&refs(&evs), &pk_only), (3, RunKind::Upsert));
    let (sql, params) =
        multi_statement(&refs(&evs[..3]), RunKind::Upsert, &["id".into()], &[]).expect("upsert");
    assert_eq!(
        sql,
        "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, ?), (?, ?), (?, ?) \
         ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)"
    );
    assert_eq!(params.len(), 6);
    let (sql, params) = multi_statement(&refs(&[d(1), d(2)]), RunKind::Delete, &["id".into()], &[])
        .expect("delete");
    assert_eq!(sql, "DELETE FROM `d`.`t` WHERE `id` IN (?, ?)");
    assert_eq!(params, vec![Value::Int(1), Value::Int(2)]);
    // A composite key: deletes go one by one.
    let composite = keys_of(vec![vec!["id", "name"]], false);
    assert_eq!(batch_run(&refs(&[d(1), d(2)]), &composite).0, 0);
}

/// One-event transactions `(offset, event)`.
fn txn(offset: i64, op: Op, before: Option<Row>, after: Option<Row>) -> (i64, ChangeEvent) {
    (offset, ev(op, before, after))
}

#[test]
fn parallel_buckets_keep_conflicting_transactions_together_and_in_order() {
    let keys = keys_of(vec![vec!["id"]], false);
    let evs = vec![
        txn(0, Op::Create, None, Some(row(1, "a"))),
        txn(1, Op::Create, None, Some(row(2, "b"))),
        txn(2, Op::Update, Some(row(1, "a")), Some(row(1, "c"))), // id 1 again
        txn(3, Op::Create, None, Some(row(3, "c"))),
        txn(4, Op::Create, None, Some(row(4, "d"))),
        txn(5, Op::Update, Some(row(2, "b")), Some(row(5, "b"))), // key change 2 → 5
        txn(6, Op::Delete, Some(row(5, "b")), None),
    ];
    let all = refs(&evs);
    let t = transactions(&all);
    assert_eq!(t.len(), 7);
    let b = buckets(&all, &t, &keys, 4);
    // {0, 2} (id 1), {1, 5, 6} (id 2 → 5), {3}, {4}.
    let mut got: Vec<Vec<usize>> = b.clone();
    got.sort();
    assert_eq!(got, vec![vec![0, 2], vec![1, 5, 6], vec![3], vec![4]]);
    // K = 2: every group whole in one of two buckets.
    let b = buckets(&all, &t, &keys, 2);
    assert_eq!(b.len(), 2);
    assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 7);
    assert!(b.iter().any(|x| x.contains(&0) && x.contains(&2)), "{b:?}");
    for bucket in &b {
        assert!(
            bucket.windows(2).all(|w| w[0] < w[1]),
            "in order: {bucket:?}"
        );
    }
    // K = 1: everything in one bucket.
    assert_eq!(buckets(&all, &t, &keys, 1), vec![vec![0, 1, 2, 3, 4, 5, 6]]);
    // Foreign keys: one bucket whatever K.
    let fk = keys_of(vec![vec!["id"]], true);
    assert_eq!(buckets(&all, &t, &fk, 4).len(), 1);
    // A table not known to the cache counts as related to everything.
    let none = KeyCache::default();
    assert_eq!(buckets(&all, &t, &none, 4).len(), 1);
}

#[test]
fn key_hash_folds_case_and_trailing_spaces_in_both_paths() {
    let h = |s: &str| {
        key_hash(std::iter::once(Some(&ColumnValue::Bytes(
            s.as_bytes().to_vec(),
        ))))
    };
    assert_eq!(h("Ab  "), h("ab"));
    assert_eq!(h("ÉTÉ "), h("été"));
    assert_ne!(h("ab"), h("abc"));
    assert_ne!(h(" ab"), h("ab"));
}

#[test]
fn a_transaction_is_its_events_up_to_the_last() {
    let mut a = ev(Op::Create, None, Some(row(1, "a")));
    a.txn.last = false;
    let b = ev(Op::Create, None, Some(row(2, "b")));
    let evs = vec![(0, a), (1, b.clone()), (2, b)];
    assert_eq!(transactions(&refs(&evs)), vec![0..2, 2..3]);
}

#[test]
fn unique_indexes_conflict_as_a_whole_and_only_when_changed() {
    let keys = keys_of(vec![vec!["id"], vec!["name"]], false);
    let all_of = |evs: &[(i64, ChangeEvent)]| {
        let all = refs(evs);
        buckets(&all, &transactions(&all), &keys, 4).len()
    };
    // Two inserts of different names: both change the unique index.
    let inserts = vec![
        txn(0, Op::Create, None, Some(row(1, "x"))),
        txn(1, Op::Create, None, Some(row(2, "y"))),
    ];
    assert_eq!(all_of(&inserts), 1);
    // Updates that leave the unique column alone stay independent.
    let updates = vec![
        txn(0, Op::Update, Some(row(1, "x")), Some(row(1, "x"))),
        txn(1, Op::Update, Some(row(2, "y")), Some(row(2, "y"))),
    ];
    assert_eq!(all_of(&updates), 2);
    // With only a primary key, inserts are independent.
    let pk_only = keys_of(vec![vec!["id"]], false);
    let all = refs(&inserts);
    assert_eq!(buckets(&all, &transactions(&all), &pk_only, 4).len(), 2);
}

#[test]
fn update_that_changes_the_key_deletes_the_old_row_first() {
    let pk = vec!["id".to_string()];
    let s = statements(
        &ev(Op::Update, Some(row(1, "a")), Some(row(2, "a"))),
        &pk,
        &[],
    );
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[0],
        Stmt::Exec(
            "DELETE FROM `d`.`t` WHERE `id` = ?".into(),
            vec![Value::Int(1)]
        )
    );
    let Stmt::Upsert { update, insert } = &s[1] else {
        panic!("upsert expected: {s:?}")
    };
    assert_eq!(
        update.0,
        "UPDATE `d`.`t` SET `id` = ?, `name` = ? WHERE `id` = ?"
    );
    assert_eq!(
        update.1,
        vec![Value::Int(2), Value::Bytes(b"a".to_vec()), Value::Int(2)]
    );
    assert_eq!(insert.0, "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, ?)");
    let same_key = statements(
        &ev(Op::Update, Some(row(1, "a")), Some(row(1, "b"))),
        &pk,
        &[],
    );
    assert_eq!(same_key.len(), 1);
}

#[test]
fn delete_uses_only_key_columns() {
    let pk = vec!["id".to_string()];
    let s = statements(&ev(Op::Delete, Some(row(7, "x")), None), &pk, &[]);
    assert_eq!(
        s,
        vec![Stmt::Exec(
            "DELETE FROM `d`.`t` WHERE `id` = ?".to_string(),
            vec![Value::Int(7)]
        )]
    );
}

#[test]
fn identifiers_are_quoted() {
    assert_eq!(quote_ident("we`ird"), "`we``ird`");
}

/// MySQL JSON columns take their text converted to utf8mb4 (apply sessions
/// are binary; MySQL refuses a JSON value from a binary string, error
/// 3144); the other columns stay plain placeholders.
#[test]
fn mysql_json_columns_take_their_value_as_utf8mb4() {
    let json = vec!["name".to_string()];
    let c = |id| (0i64, ev(Op::Create, None, Some(row(id, "x"))));
    let (sql, params) =
        multi_statement(&refs(&[c(1), c(2)]), RunKind::Upsert, &["id".into()], &json)
            .expect("upsert");
    assert_eq!(
        sql,
        "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, CONVERT(? USING utf8mb4)), \
         (?, CONVERT(? USING utf8mb4)) ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)"
    );
    assert_eq!(params.len(), 4);
    let pk = vec!["id".to_string()];
    let s = statements(
        &ev(Op::Update, Some(row(1, "a")), Some(row(1, "b"))),
        &pk,
        &json,
    );
    let Stmt::Upsert { update, insert } = &s[0] else {
        panic!("upsert expected: {s:?}");
    };
    assert_eq!(
        update.0,
        "UPDATE `d`.`t` SET `id` = ?, `name` = CONVERT(? USING utf8mb4) WHERE `id` = ?"
    );
    assert_eq!(
        insert.0,
        "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, CONVERT(? USING utf8mb4))"
    ); // A DECIMAL in the document is set back in as one (MySQL's text parser
       // would read it as a double).
    let s = statements(
        &ev(Op::Create, None, Some(row(1, r#"{"d": 0.50}"#))),
        &pk,
        &json,
    );
    let Stmt::Upsert { insert, .. } = &s[0] else {
        panic!("upsert expected: {s:?}");
    };
    assert_eq!(
        insert.0,
        "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, JSON_SET(CONVERT(? USING utf8mb4), \
         CONVERT(X'242e226422' USING utf8mb4), CAST('0.50' AS DECIMAL(2, 2))))"
    );
    assert_eq!(insert.1.len(), 2, "paths and digits are literals");
}

/// A document of many DECIMALs is set back with one flat `JSON_SET` and
/// no parameters of its own: a nested one per DECIMAL overran MySQL's
/// thread stack (ERROR 1436) at 5,000 (tests/capture_types), and two
/// parameters each would pass a statement's 65,535 at ~32,000.
#[test]
fn many_json_decimals_make_one_flat_json_set_without_parameters() {
    let json = vec!["name".to_string()];
    let prices: Vec<String> = (0..40_000).map(|i| format!("{i}.10")).collect();
    let doc = format!(r#"{{"k'\"ey": [{}]}}"#, prices.join(", "));
    let s = statements(
        &ev(Op::Create, None, Some(row(1, &doc))),
        &["id".to_string()],
        &json,
    );
    let Stmt::Upsert { insert, .. } = &s[0] else {
        panic!("upsert expected: {s:?}");
    };
    assert_eq!(insert.0.matches("JSON_SET(").count(), 1);
    assert_eq!(insert.0.matches("AS DECIMAL(").count(), 40_000);
    assert_eq!(insert.1.len(), 2, "one parameter per column");
    // The key's quote and backslash travel in hex: `$."k'\"ey"[0]`.
    let path = br#"$."k'\"ey"[0]"#;
    let hex: String = path.iter().map(|b| format!("{b:02x}")).collect();
    assert!(insert.0.contains(&format!(
        "CONVERT(X'{hex}' USING utf8mb4), CAST('0.10' AS DECIMAL(2, 2))"
    )));
}

/// The statements `apply_events` sends for `events` before any fallback:
/// the multi-row runs of `batch_run` over `by_table`'s order, (table,
/// rows) each; a change outside any run counts as its own.
fn runs_of(events: &[(i64, ChangeEvent)], keys: &KeyCache) -> Vec<(String, usize)> {
    let ordered = by_table(&refs(events), keys);
    let mut out = Vec::new();
    let mut i = 0;
    while i < ordered.len() {
        let n = batch_run(&ordered[i..], keys).0.max(1);
        out.push((ordered[i].1.source.table.clone(), n));
        i += n;
    }
    out
}

/// A bank group: each source transaction updates one of a few accounts
/// (keys repeat) and inserts a ledger row; `fk` marks `ledger` as in a
/// foreign-key relation.
fn bank_group(txns: i64, fk: bool) -> (Vec<(i64, ChangeEvent)>, KeyCache) {
    let mut keys = keys_of(vec![vec!["id"]], false);
    for (table, foreign_keys) in [("accounts", false), ("ledger", fk)] {
        keys.0.entry("d".into()).or_default().insert(
            table.into(),
            TableKeys {
                primary: vec!["id".into()],
                uniques: vec![vec!["id".into()]],
                foreign_keys,
                json: Vec::new(),
                generated: Vec::new(),
            },
        );
    }
    let mut events = Vec::new();
    for t in 0..txns {
        let account = t % 3;
        let mut update = ev(
            Op::Update,
            Some(row(account, &format!("{}", t))),
            Some(row(account, &format!("{}", t + 1))),
        );
        update.source.table = "accounts".into();
        let mut insert = ev(Op::Create, None, Some(row(t, "entry")));
        insert.source.table = "ledger".into();
        events.push((2 * t, update));
        events.push((2 * t + 1, insert));
    }
    (events, keys)
}

#[test]
fn a_group_of_two_table_transactions_is_one_statement_per_table() {
    // 100 transactions over 3 accounts: before, 200 changes in 200 runs
    // of one (the tables alternate); now one upsert per table, the
    // accounts' repeated keys in it, each in source order.
    let (events, keys) = bank_group(100, false);
    assert_eq!(
        runs_of(&events, &keys),
        vec![("accounts".to_string(), 100), ("ledger".to_string(), 100)]
    );
    let ordered = by_table(&refs(&events), &keys);
    let offsets: Vec<i64> = ordered.iter().map(|(o, _)| *o).collect();
    let mut want: Vec<i64> = (0..100).map(|t| 2 * t).collect();
    want.extend((0..100).map(|t| 2 * t + 1));
    assert_eq!(offsets, want, "each table's changes keep their order");
    let (sql, params) =
        multi_statement(&ordered[..100], RunKind::Upsert, &["id".into()], &[]).expect("upsert");
    assert!(
        sql.starts_with("INSERT INTO `d`.`accounts`") && sql.contains("ON DUPLICATE KEY UPDATE")
    );
    // The last image of account 0 (transaction 99) comes last.
    assert_eq!(
        params[params.len() - 2..],
        [Value::Int(0), Value::Bytes(b"100".to_vec())]
    );

    // A table in a foreign-key relation: nothing moves between tables.
    let (events, keys) = bank_group(3, true);
    let ordered = by_table(&refs(&events), &keys);
    assert_eq!(ordered, refs(&events));
    assert_eq!(runs_of(&events, &keys).len(), 6);
    // A table whose keys are unknown: nothing moves either.
    let (mut events, keys) = bank_group(3, false);
    events[1].1.source.table = "unknown".into();
    assert_eq!(by_table(&refs(&events), &keys), refs(&events));
    // Inserts of a key seen before still end a run (a table with a
    // secondary unique key takes plain inserts).
    let keys = keys_of(vec![vec!["id"], vec!["name"]], false);
    let c = |id, name: &str| (0i64, ev(Op::Create, None, Some(row(id, name))));
    assert_eq!(batch_run(&refs(&[c(1, "a"), c(1, "b")]), &keys).0, 1);
}
