//! Apply halts on what it cannot apply, says where and why, applies nothing
//! after it, and `revdoor stream skip` moves past exactly one message
//! (issue 4, "Poison message, missing destination column, constraint
//! violation").

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use revdoor_tests::{args, gtid_pos, Revdoor, TestCtx};

/// Wait until `apply` exits (non-zero); return its log.
async fn halted(apply: &mut Revdoor) -> String {
    let code = apply.wait_exit(Duration::from_secs(60)).await;
    assert_ne!(code, Some(0), "a halted apply exits non-zero");
    apply.log_text()
}

async fn wait_rows(ctx: &TestCtx, server: usize, n: usize) -> Vec<Vec<Option<String>>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = ctx.rows(server, "t").await;
        if rows.len() == n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} rows on #{server}, have {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Source `src_ddl` on #1, `dst_ddl` on #2, capture and apply running.
async fn setup(
    ctx: &TestCtx,
    src_ddl: &str,
    dst_ddl: &str,
) -> (mysql_async::Conn, Revdoor, Vec<String>) {
    let db = &ctx.db;
    ctx.create_db(&[1, 2]).await;
    ctx.sql(1, &[&format!("USE {db}"), src_ddl]).await;
    ctx.sql(2, &[&format!("USE {db}"), dst_ddl]).await;
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let capture = ctx.spawn(
        "capture",
        &args(&ctx.capture_args(&ctx.revdoor_url(1), &format!("{db}.t"), &start)),
    );
    let apply_args = ctx.apply_args(&ctx.revdoor_url(2));
    (src, capture, apply_args)
}

fn offset_in(log: &str, topic: &str) -> i64 {
    let at = log
        .find(&format!("{topic}/0@"))
        .unwrap_or_else(|| panic!("log names {topic}/0@offset:\n{log}"));
    let rest = &log[at + topic.len() + 3..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("offset")
}

fn skip(ctx: &TestCtx, offset: i64) {
    let out = ctx.run(&[
        "stream",
        "skip",
        "--workflow",
        &ctx.workflow,
        "--partition",
        "0",
        "--offset",
        &offset.to_string(),
        "--target",
        &ctx.revdoor_url(2),
        "--reason",
        "test",
    ]);
    assert!(
        out.status.success(),
        "stream skip failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_halts_and_skip_moves_past_exactly_it() {
    let ctx = TestCtx::new("apply_poison");
    let ddl = "CREATE TABLE t (id INT PRIMARY KEY)";
    let (mut src, _capture, apply_args) = setup(&ctx, ddl, ddl).await;
    let mut apply = ctx.spawn("apply-0", &args(&apply_args));
    src.query_drop(format!("INSERT INTO {}.t VALUES (1)", ctx.db))
        .await
        .expect("insert");
    wait_rows(&ctx, 2, 1).await;

    // Something that is not a revdoor event lands in the partition.
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &ctx.stack.kafka)
        .create()
        .expect("producer");
    let poison_offset = producer
        .send(
            FutureRecord::to(&topic)
                .partition(0)
                .key("x")
                .payload("not avro"),
            Duration::from_secs(10),
        )
        .await
        .expect("produce poison")
        .offset;
    src.query_drop(format!("INSERT INTO {}.t VALUES (2)", ctx.db))
        .await
        .expect("insert");

    let log = halted(&mut apply).await;
    assert_eq!(
        offset_in(&log, &topic),
        poison_offset,
        "the error names the poison's offset:\n{log}"
    );
    assert!(
        log.contains("not an Avro single-object message"),
        "and why:\n{log}"
    );
    assert_eq!(
        ctx.rows(2, "t").await.len(),
        1,
        "nothing after the poison was applied"
    );

    // A skip of an offset already applied is refused; the poison's is taken.
    let out = ctx.run(&[
        "stream",
        "skip",
        "--workflow",
        &ctx.workflow,
        "--partition",
        "0",
        "--offset",
        "0",
        "--target",
        &ctx.revdoor_url(2),
    ]);
    assert!(
        !out.status.success(),
        "skipping an applied offset is refused"
    );
    skip(&ctx, poison_offset);
    let mut apply = ctx.spawn("apply-1", &args(&apply_args));
    wait_rows(&ctx, 2, 2).await;
    assert!(
        apply.log_text().contains("skipping this message"),
        "the skip is logged:\n{}",
        apply.log_text()
    );

    // A well-formed single-object message whose schema was never
    // published: poison too (nothing is pending in the registry), not an
    // endless wait.
    let mut unknown = vec![0xC3, 0x01];
    unknown.extend_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
    unknown.push(0);
    let unknown_offset = producer
        .send(
            FutureRecord::to(&topic)
                .partition(0)
                .key("y")
                .payload(&unknown),
            Duration::from_secs(10),
        )
        .await
        .expect("produce unknown-schema message")
        .offset;
    let log = halted(&mut apply).await;
    assert!(
        log.contains(&format!(
            "{topic}/0@{unknown_offset}: unknown schema fingerprint 0123456789abcdef"
        )),
        "an unknown schema is named:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_destination_column_halts_until_fixed() {
    let ctx = TestCtx::new("apply_missing_col");
    let (mut src, _capture, apply_args) = setup(
        &ctx,
        "CREATE TABLE t (id INT PRIMARY KEY, extra INT)",
        "CREATE TABLE t (id INT PRIMARY KEY)",
    )
    .await;
    let mut apply = ctx.spawn("apply-0", &args(&apply_args));
    for k in 1..=2 {
        src.query_drop(format!("INSERT INTO {}.t VALUES ({k}, {k})", ctx.db))
            .await
            .expect("insert");
    }
    let log = halted(&mut apply).await;
    assert!(
        log.contains("Unknown column") && log.contains("extra"),
        "names the column:\n{log}"
    );
    assert!(ctx.rows(2, "t").await.is_empty(), "nothing applied");
    // Fixing the destination lets the same stream go on, from the same place.
    ctx.sql(
        2,
        &[&format!("ALTER TABLE {}.t ADD COLUMN extra INT", ctx.db)],
    )
    .await;
    let mut apply = ctx.spawn("apply-1", &args(&apply_args));
    let rows = wait_rows(&ctx, 2, 2).await;
    assert_eq!(rows, ctx.rows(1, "t").await);
    apply.stop(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constraint_violation_halts_and_can_be_skipped() {
    let ctx = TestCtx::new("apply_constraint");
    let (mut src, _capture, apply_args) = setup(
        &ctx,
        "CREATE TABLE t (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE t (id INT PRIMARY KEY, v INT, UNIQUE KEY (v))",
    )
    .await;
    let mut apply = ctx.spawn("apply-0", &args(&apply_args));
    for (k, v) in [(1, 10), (2, 10), (3, 30)] {
        src.query_drop(format!("INSERT INTO {}.t VALUES ({k}, {v})", ctx.db))
            .await
            .expect("insert");
    }
    let log = halted(&mut apply).await;
    assert!(
        log.contains("Duplicate entry"),
        "names the violation:\n{log}"
    );
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let offset = offset_in(&log, &topic);
    let before = ctx.rows(2, "t").await;
    assert!(
        before.iter().all(|r| r[0].as_deref() != Some("3")),
        "nothing after the violation: {before:?}"
    );
    skip(&ctx, offset);
    let mut apply = ctx.spawn("apply-1", &args(&apply_args));
    let rows = wait_rows(&ctx, 2, 2).await;
    let ids: Vec<&str> = rows.iter().filter_map(|r| r[0].as_deref()).collect();
    assert_eq!(ids, ["1", "3"], "exactly the violating row was skipped");
    apply.stop(Duration::from_secs(20));
}
