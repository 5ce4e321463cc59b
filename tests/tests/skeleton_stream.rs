//! The walking skeleton: row changes cross from one MariaDB to another
//! through the real Kafka broker, via `revdoor capture run` and
//! `revdoor apply run` processes.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use revdoor_tests::{args, gtid_pos, read_changes, wait_for, TestCtx};

const TABLE_DDL: &str = "CREATE TABLE items (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    name VARCHAR(64) CHARACTER SET utf8mb4 NOT NULL,
    qty INT NULL,
    price DECIMAL(12,3) NULL,
    seen DATETIME(6) NULL,
    raw VARBINARY(16) NULL)";

/// Create `ddl` in this test's database on #1 and #2; return a connection to
/// #1, and the `capture run` and `apply run` arguments for `table`, starting
/// at #1's current position.
async fn skeleton_setup(
    ctx: &TestCtx,
    ddl: &str,
    table: &str,
) -> (mysql_async::Conn, Vec<String>, Vec<String>) {
    ctx.create_db(&[1, 2]).await;
    for i in [1, 2] {
        ctx.sql(i, &[&format!("USE {}", ctx.db), ddl]).await;
    }
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let capture = ctx.capture_args(&ctx.revdoor_url(1), &format!("{}.{table}", ctx.db), &start);
    let apply = ctx.apply_args(&ctx.revdoor_url(2));
    (src, capture, apply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_update_delete_cross_through_kafka() {
    let ctx = TestCtx::new("skeleton_iud");
    // Start position: the source as it is now, before the writes below.
    let (mut src, capture_args, apply_args) = skeleton_setup(&ctx, TABLE_DDL, "items").await;
    let mut capture = ctx.spawn("capture", &args(&capture_args));
    let mut apply = ctx.spawn("apply", &args(&apply_args));

    let db = &ctx.db;
    for stmt in [
        format!("INSERT INTO {db}.items VALUES (1, 'ünïcødé 🚪', 5, 12.345, '2026-01-02 03:04:05.678901', x'00ff10')"),
        format!("INSERT INTO {db}.items VALUES (18446744073709551615, 'max', NULL, NULL, NULL, NULL), (3, 'three', -7, -0.5, '1999-12-31 23:59:59', '')"),
        format!("UPDATE {db}.items SET qty = qty + 1, name = 'renamed' WHERE id = 1"),
        format!("UPDATE {db}.items SET id = 4 WHERE id = 3"), // primary key change
        format!("DELETE FROM {db}.items WHERE id = 18446744073709551615"),
    ] {
        src.query_drop(&stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    // A multi-statement transaction arrives whole.
    src.query_drop(format!(
        "START TRANSACTION; INSERT INTO {db}.items VALUES (10, 'ten', 10, 10, NULL, NULL); \
         UPDATE {db}.items SET qty = 11 WHERE id = 10; COMMIT"
    ))
    .await
    .expect("multi-statement transaction");

    // MariaDB: the GTID of this session's last transaction.
    let our_last: String = src
        .query_first("SELECT @@last_gtid")
        .await
        .expect("last_gtid")
        .unwrap_or_default();
    let want = ctx.rows(1, "items").await;
    assert_eq!(want.len(), 3, "source rows: {want:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        if let Some(code) = capture.exited() {
            panic!("capture exited with {code:?}:\n{}", capture.log_text());
        }
        if let Some(code) = apply.exited() {
            panic!("apply exited with {code:?}:\n{}", apply.log_text());
        }
        let got = ctx.rows(2, "items").await;
        if got == want {
            break got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "target never equalled source: {got:?} vs {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Exact content, not only equality with the source.
    assert_eq!(got[0][0].as_deref(), Some("1"));
    assert_eq!(got[0][1].as_deref(), Some("renamed"));
    assert_eq!(got[0][2].as_deref(), Some("6"));
    assert_eq!(got[0][3].as_deref(), Some("12.345"));
    assert_eq!(got[0][4].as_deref(), Some("2026-01-02 03:04:05.678901"));
    assert_eq!(
        got[0][5].as_deref(),
        Some("0x00ff10"),
        "binary bytes unchanged"
    );
    assert_eq!(
        got[1][0].as_deref(),
        Some("4"),
        "primary-key change moved the row"
    );
    assert_eq!(got[2][2].as_deref(), Some("11"));

    // The checkpoint row advanced in the target, in revdoor's schema.
    let mut dst = ctx.conn(2).await;
    let (offset, gtid): (i64, String) = dst
        .exec_first(
            "SELECT kafka_offset, source_gtid FROM _revdoor.stream_state WHERE workflow = ? AND direction = 'forward'",
            (&ctx.workflow,),
        )
        .await
        .expect("read checkpoint")
        .expect("checkpoint row exists");
    assert!(
        offset >= 7,
        "7 row events were applied, checkpoint offset {offset}"
    );
    // The last applied transaction's GTID, or a later position when an
    // idle heartbeat (capture had read everything up to it) came after it.
    let reached: revdoor_core::gtid::MariadbGtidList = gtid.parse().expect("checkpoint position");
    let ours: revdoor_core::gtid::MariadbGtid = our_last.parse().expect("our GTID");
    assert!(
        reached.contains(&ours),
        "checkpoint position {gtid} covers the last applied source transaction {our_last}"
    );

    assert_eq!(
        capture.stop(Duration::from_secs(20)),
        Some(0),
        "capture drains and exits 0"
    );
    assert_eq!(
        apply.stop(Duration::from_secs(20)),
        Some(0),
        "apply exits 0"
    );
    capture.assert_no_unexpected_errors(&[]);
    apply.assert_no_unexpected_errors(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_resumes_from_its_kafka_checkpoint_after_kill() {
    let ctx = TestCtx::new("skeleton_resume");
    let (mut src, capture_args, apply_args) = skeleton_setup(
        &ctx,
        "CREATE TABLE n (id INT PRIMARY KEY, v INT NOT NULL)",
        "n",
    )
    .await;
    let mut capture = ctx.spawn("capture-1", &args(&capture_args));
    let _apply = ctx.spawn("apply", &args(&apply_args));
    for k in 0..50 {
        src.query_drop(format!("INSERT INTO {}.n VALUES ({k}, {k})", ctx.db))
            .await
            .expect("insert");
    }
    wait_for("first 50 rows", Duration::from_secs(60), || async {
        Ok((ctx.rows(2, "n").await.len() == 50).then_some(()))
    })
    .await
    .expect("first batch");
    capture.kill9();
    // Written while capture is dead; the restarted capture must resume at its
    // checkpoint (not at --start-position, which would duplicate, nor at
    // "now", which would lose these).
    for k in 50..100 {
        src.query_drop(format!("INSERT INTO {}.n VALUES ({k}, {k})", ctx.db))
            .await
            .expect("insert");
    }
    let mut capture = ctx.spawn("capture-2", &args(&capture_args));
    let want = ctx.rows(1, "n").await;
    wait_for("all 100 rows", Duration::from_secs(60), || async {
        Ok((ctx.rows(2, "n").await == want).then_some(()))
    })
    .await
    .expect("second batch");
    capture.stop(Duration::from_secs(20));
    assert!(
        capture.log_text().contains("capture starting"),
        "restarted capture logged its start"
    );
    // Exactly once in Kafka: 100 inserts = 100 committed events on the topic.
    let count = read_changes(
        &ctx.stack.kafka,
        &format!("revdoor.{}.forward", ctx.workflow),
        0,
    )
    .await
    .expect("read topic")
    .len();
    assert_eq!(
        count, 100,
        "each source row change is in the topic exactly once"
    );
}
