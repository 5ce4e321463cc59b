//! A big source transaction is streamed into its Kafka transaction as it is
//! read, so capture's memory stays bounded (issue 3, "RSS < 256 MB whatever
//! the size"): a `read_committed` reader still sees it whole, once,
//! contiguous per partition and correctly framed — also when capture is
//! killed while streaming it — and a big transaction that turns out to be
//! revdoor's own apply (its checkpoint row comes last) never shows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_core::event::ChangeEvent;
use revdoor_tests::{args, gtid_pos, read_changes, TestCtx};

const BIG: usize = 23_456;

/// The events of `gtid` on `partition`, checked to be contiguous and
/// framed: indexes 0..n in order, `last` on the final one only.
fn framed(events: &[(i64, ChangeEvent)], gtid: &str, partition: i32) -> Vec<ChangeEvent> {
    let mine: Vec<&(i64, ChangeEvent)> =
        events.iter().filter(|(_, e)| e.txn.gtid == gtid).collect();
    for (i, (offset, e)) in mine.iter().enumerate() {
        assert_eq!(
            e.txn.index as usize, i,
            "partition {partition}: index at offset {offset}"
        );
        assert_eq!(
            e.txn.last,
            i + 1 == mine.len(),
            "partition {partition}: last at offset {offset}"
        );
        if i > 0 {
            // Contiguous: nothing between two events of the transaction
            // but commit markers (offsets may skip those).
            let prev = mine[i - 1].0;
            assert!(
                !events.iter().any(|(o, _)| *o > prev && o < offset),
                "partition {partition}: another event between offsets {prev} and {offset}"
            );
        }
    }
    mine.into_iter().map(|(_, e)| e.clone()).collect()
}

async fn wait_events(
    ctx: &TestCtx,
    topic: &str,
    partitions: &[i32],
    n: usize,
) -> HashMap<i32, Vec<(i64, ChangeEvent)>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut all = HashMap::new();
        let mut total = 0;
        for p in partitions {
            let evs = read_changes(&ctx.stack.kafka, topic, *p)
                .await
                .unwrap_or_default();
            total += evs.len();
            all.insert(*p, evs);
        }
        if total >= n {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{total} of {n} events in {topic}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The test's database on #1 with table `t`, and a connection to #1.
async fn source(ctx: &TestCtx) -> (String, mysql_async::Conn) {
    let db = ctx.db.clone();
    ctx.create_db(&[1]).await;
    ctx.sql(
        1,
        &[&format!(
            "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL)"
        )],
    )
    .await;
    (db, ctx.conn(1).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_transaction_is_streamed_whole_once_even_across_a_kill() {
    let ctx = TestCtx::new("capture_big_txn");
    let (db, mut src) = source(&ctx).await;
    let start = gtid_pos(&mut src).await;
    let mut cap = ctx.capture_args(&ctx.revdoor_url(1), &format!("{db}.t"), &start);
    cap.extend(["--partitions", "2", "--route", "-80=0", "--route", "80-=1"].map(String::from));

    // Before capture runs: a small transaction, the big one, a small one.
    src.query_drop(format!("INSERT INTO {db}.t VALUES (0, 'before')"))
        .await
        .expect("insert");
    src.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('row-', seq) FROM {db}.seq_1_to_{BIG}"
    ))
    .await
    .expect("big insert");
    let big_gtid: String = src
        .query_first("SELECT @@last_gtid")
        .await
        .expect("gtid")
        .unwrap_or_default();
    src.query_drop(format!("INSERT INTO {db}.t VALUES (-1, 'after')"))
        .await
        .expect("insert");

    // Killed while it streams the big transaction (its Kafka transaction
    // is open from the first 5,000 rows to the commit), then restarted.
    let mut capture = ctx.spawn("capture-0", &args(&cap));
    let log_deadline = Instant::now() + Duration::from_secs(60);
    while !capture
        .log_text()
        .contains("streaming a big source transaction")
    {
        assert!(
            Instant::now() < log_deadline,
            "never streamed:\n{}",
            capture.log_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    capture.kill9();
    let mut capture = ctx.spawn("capture-1", &args(&cap));
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let all = wait_events(&ctx, &topic, &[0, 1], BIG + 2).await;
    let mut ids = Vec::new();
    for (p, events) in &all {
        for e in framed(events, &big_gtid, *p) {
            let row = e.after.as_ref().expect("after image");
            ids.push(format!("{:?}", row.values[0]));
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), BIG, "every row of the big transaction, once");
    let total: usize = all.values().map(Vec::len).sum();
    assert_eq!(total, BIG + 2, "nothing duplicated, the small ones there");
    capture.assert_no_unexpected_errors(&[]);

    // Stopped gracefully (SIGTERM) while it streams a second one: the
    // open Kafka transaction is aborted, not half published, and the
    // restart publishes the transaction once.
    src.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq + 100000, 'second' FROM {db}.seq_1_to_{BIG}"
    ))
    .await
    .expect("second big insert");
    let second: String = src
        .query_first("SELECT @@last_gtid")
        .await
        .expect("gtid")
        .unwrap_or_default();
    let log_deadline = Instant::now() + Duration::from_secs(60);
    while capture
        .log_text()
        .matches("streaming a big source transaction")
        .count()
        < 2
    {
        assert!(
            Instant::now() < log_deadline,
            "never streamed:\n{}",
            capture.log_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        capture.stop(Duration::from_secs(20)),
        Some(0),
        "a clean stop"
    );
    capture.assert_no_unexpected_errors(&[]);
    let mut capture = ctx.spawn("capture-2", &args(&cap));
    let all = wait_events(&ctx, &topic, &[0, 1], 2 * BIG + 2).await;
    let mut n = 0;
    for (p, events) in &all {
        n += framed(events, &second, *p).len();
    }
    assert_eq!(n, BIG, "the second big transaction, once");
    let total: usize = all.values().map(Vec::len).sum();
    assert_eq!(total, 2 * BIG + 2, "nothing duplicated");
    capture.stop(Duration::from_secs(20));
    capture.assert_no_unexpected_errors(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_transaction_of_the_opposite_apply_never_shows() {
    let ctx = TestCtx::new("capture_big_loop");
    let (db, mut src) = source(&ctx).await;
    for ddl in revdoor_apply::STREAM_STATE_DDL {
        src.query_drop(ddl).await.expect("revdoor schema");
    }
    let start = gtid_pos(&mut src).await;
    let cap = ctx.capture_args(&ctx.revdoor_url(1), &format!("{db}.t"), &start);
    let mut capture = ctx.spawn("capture", &args(&cap));
    // What the reverse stream's apply would write: rows, then its
    // checkpoint row, in one transaction.
    for stmt in [
        "BEGIN".to_string(),
        format!("INSERT INTO {db}.t SELECT seq, 'applied' FROM {db}.seq_1_to_{BIG}"),
        format!(
            "INSERT INTO _revdoor.stream_state (workflow, direction, `partition`, kafka_offset) \
             VALUES ('{}', 'reverse', 0, 1) ON DUPLICATE KEY UPDATE kafka_offset = kafka_offset + 1",
            ctx.workflow
        ),
        "COMMIT".to_string(),
        format!("INSERT INTO {db}.t VALUES (-1, 'application')"),
    ] {
        src.query_drop(&stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let all = wait_events(&ctx, &topic, &[0], 1).await;
    // The application's row arrived, so the big transaction before it
    // was read and dropped.
    let rows: Vec<String> = all[&0]
        .iter()
        .filter_map(|(_, e)| e.after.as_ref())
        .map(|r| format!("{:?}", r.values))
        .collect();
    assert_eq!(
        rows,
        [format!(
            "{:?}",
            [
                revdoor_core::event::ColumnValue::Int(-1),
                revdoor_core::event::ColumnValue::Bytes(b"application".to_vec())
            ]
        )]
    );
    assert!(capture.exited().is_none(), "{}", capture.log_text());
    capture.stop(Duration::from_secs(20));
    capture.assert_no_unexpected_errors(&[]);
}
