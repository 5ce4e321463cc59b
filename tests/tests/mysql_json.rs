//! JSON with MySQL on either side (issue 13, failures 2 and 3).
//!
//! - MySQL → MySQL: binary JSON from the binlog streams as MySQL writes it
//!   (numbers stay numbers: `0.50` stays a DECIMAL, big integers and
//!   doubles exact), and apply writes it into the target's `JSON` column
//!   (apply sessions are binary; MySQL refuses JSON from a binary string
//!   unless apply converts it). Source and target read back byte for byte
//!   the same, copied rows and streamed rows alike.
//! - MySQL → MariaDB: the MariaDB `JSON` (text) column receives exactly the
//!   text MySQL's `SELECT` gives.
//! - MariaDB → MySQL: MariaDB's JSON text lands in a MySQL `JSON` column,
//!   equal by value.

use std::time::Duration;

use revdoor_tests::door::Door;
use revdoor_tests::{stack, wait_for, TestCtx};

/// Documents MySQL stores in binary JSON, one per row: decimals with
/// trailing zeros, doubles, the integer extremes, unicode, nesting, a
/// temporal value and one larger than 64 KiB (large format).
fn documents(first_id: i64) -> Vec<String> {
    [
        "JSON_OBJECT('dbl', 0.5e0, 'dec', CAST(0.50 AS DECIMAL(3,2)))",
        "JSON_OBJECT('dec', CAST('-12345678901234567890.123456789012345678901234567890' AS DECIMAL(65,30)))",
        "JSON_ARRAY(18446744073709551615, -9223372036854775808, 0, -1)",
        "JSON_ARRAY(1e300, 100.0e0, 0.1e0, 5e-324, -0.0e0, 29290947659102.0625e0)",
        "JSON_OBJECT('k', 'h\u{e9}llo \u{1f600} \u{4e2d}\u{6587}', 'esc', CONCAT('q\"b\\\\', CHAR(9 USING utf8mb4), CHAR(31 USING utf8mb4)))",
        "CAST('{\"a\": [1, [2, [3, {\"b\": null}]], true, false], \"z\": {}}' AS JSON)",
        "JSON_OBJECT('t', CAST('2024-01-02 03:04:05.123456' AS DATETIME(6)), 'd', CAST('2024-01-02' AS DATE))",
        "JSON_OBJECT('big', REPEAT('x', 70000), 'n', 1)",
    ]
    .iter()
    .enumerate()
    .map(|(i, doc)| format!("({}, {doc})", first_id + i as i64))
    .collect()
}

async fn insert_documents(ctx: &TestCtx, server: usize, first_id: i64) {
    let values = documents(first_id).join(", ");
    ctx.sql(
        server,
        &[&format!(
            "INSERT INTO {}.docs (id, j) VALUES {values}",
            ctx.db
        )],
    )
    .await;
}

/// Wait until `docs` on the target has `n` rows, then both sides' rows.
async fn converged(door: &Door, n: usize) -> (Vec<Vec<Option<String>>>, Vec<Vec<Option<String>>>) {
    let target = door.target[0].1;
    wait_for("target docs", Duration::from_secs(60), || async {
        let rows = door.ctx.rows(target, "docs").await;
        Ok((rows.len() == n).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    (
        door.ctx.rows(door.source, "docs").await,
        door.ctx.rows(target, "docs").await,
    )
}

/// Run the workflow (copy `docs`, then stream more), return the worker
/// and coordinator to stop.
async fn run(door: &Door) -> (revdoor_tests::Revdoor, revdoor_tests::Revdoor) {
    let out = door.create_workflow_with(&["docs"]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let c = door.coordinator("c1", &[]);
    let w = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(90)).await;
    (c, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_to_mysql_json_arrives_byte_for_byte() {
    let my = stack().mysql_servers();
    assert!(
        my.len() >= 2,
        "needs two MySQL servers (deploy/stack up --mysql 2)"
    );
    let door = Door::create("json_my_my", my[0], &[("-", my[1])], 10).await;
    door.ctx
        .sql(
            my[0],
            &[&format!(
                "CREATE TABLE {}.docs (id BIGINT PRIMARY KEY, j JSON)",
                door.ctx.db
            )],
        )
        .await;
    insert_documents(&door.ctx, my[0], 1).await;
    let (mut c, mut w) = run(&door).await;
    // Streamed: inserts, an update of a copied row, a delete.
    insert_documents(&door.ctx, my[0], 101).await;
    door.ctx
        .sql(
            my[0],
            &[
                &format!(
                    "UPDATE {}.docs SET j = JSON_OBJECT('dec', CAST(1.10 AS DECIMAL(4,2))) WHERE id = 2",
                    door.ctx.db
                ),
                &format!("DELETE FROM {}.docs WHERE id = 3", door.ctx.db),
            ],
        )
        .await;
    let n = 2 * documents(0).len() - 1;
    let (src, dst) = converged(&door, n).await;
    assert_eq!(src.len(), n);
    for (s, d) in src.iter().zip(&dst) {
        assert_eq!(
            s, d,
            "row {:?} differs between MySQL source and MySQL target",
            s[0]
        );
    }
    // The decimal kept its digits through copy and stream.
    let dec = |rows: &[Vec<Option<String>>], id: &str| {
        rows.iter()
            .find(|r| r[0].as_deref() == Some(id))
            .and_then(|r| r[1].clone())
            .expect("row")
    };
    assert_eq!(dec(&dst, "1"), r#"{"dbl": 0.5, "dec": 0.50}"#);
    assert_eq!(dec(&dst, "101"), r#"{"dbl": 0.5, "dec": 0.50}"#);
    assert_eq!(dec(&dst, "2"), r#"{"dec": 1.10}"#);
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_to_mariadb_json_is_mysqls_own_text() {
    let (my, maria) = (stack().mysql_servers(), stack().mariadb_servers());
    let (source, target) = (my[0], maria[0]);
    let door = Door::create("json_my_maria", source, &[("-", target)], 10).await;
    let db = &door.ctx.db;
    door.ctx
        .sql(
            source,
            &[&format!(
                "CREATE TABLE {db}.docs (id BIGINT PRIMARY KEY, j JSON)"
            )],
        )
        .await;
    // The target's tables exist (empty) with MariaDB's own definitions.
    door.ctx.create_db(&[target]).await;
    door.ctx
        .sql(
            target,
            &[
                &format!("CREATE TABLE {db}.accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, ops BIGINT NOT NULL DEFAULT 0)"),
                &format!("CREATE TABLE {db}.ledger (op_id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, amount BIGINT NOT NULL, KEY (account_id))"),
                &format!("CREATE TABLE {db}.docs (id BIGINT PRIMARY KEY, j JSON)"),
            ],
        )
        .await;
    insert_documents(&door.ctx, source, 1).await;
    let (mut c, mut w) = run(&door).await;
    insert_documents(&door.ctx, source, 101).await;
    let n = 2 * documents(0).len();
    let (src, dst) = converged(&door, n).await;
    for (s, d) in src.iter().zip(&dst) {
        assert_eq!(
            s, d,
            "row {:?}: MariaDB holds other text than MySQL's",
            s[0]
        );
    }
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_to_mysql_json_lands_in_a_json_column() {
    let (my, maria) = (stack().mysql_servers(), stack().mariadb_servers());
    let (source, target) = (maria[0], my[1]);
    let door = Door::create("json_maria_my", source, &[("-", target)], 10).await;
    let db = &door.ctx.db;
    door.ctx
        .sql(
            source,
            &[&format!(
                "CREATE TABLE {db}.docs (id BIGINT PRIMARY KEY, j JSON)"
            )],
        )
        .await;
    door.ctx.create_db(&[target]).await;
    door.ctx
        .sql(
            target,
            &[&format!(
                "CREATE TABLE {db}.docs (id BIGINT PRIMARY KEY, j JSON)"
            )],
        )
        .await;
    let texts = [
        r#"{"dec":0.50,"dbl":1e300}"#,
        r#"[18446744073709551615,-9223372036854775808]"#,
        r#"{"k":"héllo 😀","nested":{"a":[1,[2,{"b":null}]]}}"#,
    ];
    let values = |first: i64| {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| format!("({}, '{}')", first + i as i64, t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    door.ctx
        .sql(
            source,
            &[&format!("INSERT INTO {db}.docs VALUES {}", values(1))],
        )
        .await;
    let (mut c, mut w) = run(&door).await;
    door.ctx
        .sql(
            source,
            &[&format!("INSERT INTO {db}.docs VALUES {}", values(101))],
        )
        .await;
    let (src, dst) = converged(&door, 2 * texts.len()).await;
    let mut types = door.ctx.conn(target).await;
    let data_type: Option<String> = mysql_async::prelude::Queryable::exec_first(
        &mut types,
        "SELECT DATA_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'docs' AND COLUMN_NAME = 'j'",
        (db.as_str(),),
    )
    .await
    .expect("column type");
    assert_eq!(data_type.as_deref(), Some("json"));
    for (s, d) in src.iter().zip(&dst) {
        let parse = |v: &Option<String>| -> serde_json::Value {
            serde_json::from_str(v.as_deref().expect("a document")).expect("JSON")
        };
        assert_eq!(
            parse(&s[1]),
            parse(&d[1]),
            "row {:?} differs by value",
            s[0]
        );
    }
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}
