//! Capture ownership and positions: a second capture of the same stream
//! fences the first (which then commits nothing), and a start position whose
//! binlog was purged is a definite error saying so.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_tests::{args, gtid_pos, read_changes, read_partition, TestCtx};

/// GTIDs of the transactions in the topic, checking each appears once.
async fn topic_gtids(ctx: &TestCtx) -> Vec<String> {
    let msgs = read_changes(
        &ctx.stack.kafka,
        &format!("revdoor.{}.forward", ctx.workflow),
        0,
    )
    .await
    .expect("read topic");
    msgs.into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.txn.last)
        .map(|e| e.txn.gtid)
        .collect()
}

async fn insert_batch(src: &mut mysql_async::Conn, db: &str, from: i32, n: i32) -> Vec<String> {
    let mut gtids = Vec::new();
    for k in from..from + n {
        src.query_drop(format!("INSERT INTO {db}.t VALUES ({k})"))
            .await
            .expect("insert");
        gtids.push(
            src.query_first("SELECT @@last_gtid")
                .await
                .expect("gtid")
                .unwrap_or_default(),
        );
    }
    gtids
}

async fn wait_for_gtids(ctx: &TestCtx, want: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = topic_gtids(ctx).await;
        let set: HashSet<&String> = got.iter().collect();
        if want.iter().all(|g| set.contains(g)) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "topic never held all {} transactions",
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_capture_fences_the_first() {
    let ctx = TestCtx::new("capture_zombie");
    let db = ctx.db.clone();
    ctx.create_db(&[1]).await;
    ctx.sql(1, &[&format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)")])
        .await;
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let source = ctx.revdoor_url(1);
    let table = format!("{db}.t");
    let args = [
        "capture",
        "run",
        "--workflow",
        &ctx.workflow,
        "--source",
        &source,
        "--tables",
        &table,
        "--start-position",
        &start,
    ];

    let mut first = ctx.spawn("capture-first", &args);
    let mut want = insert_batch(&mut src, &db, 0, 50).await;
    wait_for_gtids(&ctx, &want).await;

    // The first owner stalls (GC pause, partition) and a successor starts.
    first.signal("STOP");
    let mut second = ctx.spawn("capture-second", &args);
    want.extend(insert_batch(&mut src, &db, 50, 50).await);
    wait_for_gtids(&ctx, &want).await;

    // The zombie wakes up while writes continue: it must stop, fenced,
    // without committing anything.
    first.signal("CONT");
    want.extend(insert_batch(&mut src, &db, 100, 50).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(code) = first.exited() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "the fenced capture kept running:\n{}",
            first.log_text()
        );
        // Keep the source busy so the zombie has something to try to commit.
        want.extend(insert_batch(&mut src, &db, 1000 + want.len() as i32, 1).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(code, Some(0), "a fenced capture exits non-zero");
    let log = first.log_text();
    assert!(
        log.contains("fenced"),
        "the first capture says it was fenced:\n{log}"
    );

    let got = wait_for_gtids(&ctx, &want).await;
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "no transaction was published twice"
    );
    assert_eq!(got.len(), want.len(), "exactly the workload's transactions");
    assert!(
        second.exited().is_none(),
        "the successor keeps running:\n{}",
        second.log_text()
    );
    second.stop(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_start_position_is_a_definite_error() {
    // Uses server #3 only: purging binlogs there disturbs no other test.
    let ctx = TestCtx::new("capture_purged");
    let db = ctx.db.clone();
    ctx.create_db(&[3]).await;
    ctx.sql(3, &[&format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)")])
        .await;
    let mut src = ctx.conn(3).await;
    src.query_drop(format!("INSERT INTO {db}.t VALUES (1)"))
        .await
        .expect("insert");
    let old = gtid_pos(&mut src).await;
    src.query_drop("FLUSH BINARY LOGS").await.expect("flush");
    src.query_drop(format!("INSERT INTO {db}.t VALUES (2)"))
        .await
        .expect("insert");
    src.query_drop("FLUSH BINARY LOGS").await.expect("flush");
    let current: String = src
        .query_first(
            "SELECT SUBSTRING_INDEX(file, '/', -1) FROM (SELECT @@log_bin_basename AS file) x",
        )
        .await
        .expect("basename")
        .unwrap_or_default();
    let (last_file,): (String,) = {
        let rows: Vec<(String, u64)> = src.query("SHOW BINARY LOGS").await.expect("binary logs");
        (rows.last().map(|r| r.0.clone()).unwrap_or_default(),)
    };
    assert!(
        last_file.starts_with(&current),
        "binlog files are named {current}.*"
    );
    src.query_drop(format!("PURGE BINARY LOGS TO '{last_file}'"))
        .await
        .expect("purge");

    let source = ctx.revdoor_url(3);
    let table = format!("{db}.t");
    // Start from a position older than what the server keeps.
    let stale = old
        .split(',')
        .map(|g| {
            let mut p: Vec<&str> = g.split('-').collect();
            if p.len() == 3 && p[0] == "3" {
                p[2] = "1";
            }
            p.join("-")
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut capture = ctx.spawn("capture", &args(&ctx.capture_args(&source, &table, &stale)));
    let code = capture.wait_exit(Duration::from_secs(60)).await;
    assert_ne!(code, Some(0));
    let log = capture.log_text();
    assert!(
        log.contains("purged"),
        "the error says the binlog was purged:\n{log}"
    );
    assert!(
        log.contains(&stale),
        "the error names the position {stale}:\n{log}"
    );
}

/// On an idle source capture keeps publishing heartbeats (with its position),
/// so lag stays measurable; apply skips them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_source_still_yields_heartbeats() {
    use revdoor_core::event::Heartbeat;
    use revdoor_core::gtid::{MariadbGtid, MariadbGtidList};
    let ctx = TestCtx::new("capture_heartbeat");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2]).await;
    for i in [1, 2] {
        ctx.sql(i, &[&format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)")])
            .await;
    }
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let source = ctx.revdoor_url(1);
    let target = ctx.revdoor_url(2);
    let table = format!("{db}.t");
    let mut capture = ctx.spawn("capture", &args(&ctx.capture_args(&source, &table, &start)));
    let mut apply = ctx.spawn("apply", &args(&ctx.apply_args(&target)));
    let gtid = insert_batch(&mut src, &db, 1, 1).await.remove(0);

    // Heartbeats after our transaction, with advancing times and a position
    // that includes it (the server is shared, so other GTIDs may be there too).
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let deadline = Instant::now() + Duration::from_secs(60);
    let beats = loop {
        let msgs = read_partition(&ctx.stack.kafka, &topic, 0)
            .await
            .expect("read");
        let beats: Vec<Heartbeat> = msgs
            .iter()
            .filter_map(|(_, _, p)| serde_json::from_slice::<Heartbeat>(p).ok())
            .collect();
        let ours: MariadbGtid = gtid.parse().expect("gtid");
        let after: Vec<Heartbeat> = beats
            .into_iter()
            .filter(|b| {
                b.position
                    .parse::<MariadbGtidList>()
                    .is_ok_and(|p| p.contains(&ours))
            })
            .collect();
        if after.len() >= 2 {
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeats after {gtid}:\n{}",
            capture.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        beats
            .windows(2)
            .all(|w| w[0].heartbeat_ms < w[1].heartbeat_ms),
        "heartbeat times advance"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while ctx.rows(2, "t").await.len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the row never reached the target:\n{}",
            apply.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        apply.exited().is_none(),
        "apply skips heartbeats:\n{}",
        apply.log_text()
    );
    capture.stop(Duration::from_secs(20));
    apply.stop(Duration::from_secs(20));
    apply.assert_no_unexpected_errors(&[]);
}

/// A DDL on a moved table halts the stream before it (on_ddl=stop), while
/// revdoor's own fence triggers pass; restarted with on_ddl=ignore, capture
/// resumes at the DDL and carries the new column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_on_a_moved_table_follows_the_on_ddl_policy() {
    let ctx = TestCtx::new("capture_ddl");
    let db = ctx.db.clone();
    ctx.create_db(&[1]).await;
    ctx.sql(1, &[&format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)")])
        .await;
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let source = ctx.revdoor_url(1);
    let table = format!("{db}.t");
    let base = ctx.capture_args(&source, &table, &start);
    let mut capture = ctx.spawn("capture-stop", &args(&base));
    let fence = format!(
        "CREATE TRIGGER {db}._revdoor_fence_t BEFORE INSERT ON {db}.t FOR EACH ROW \
         BEGIN IF CURRENT_USER() LIKE 'nobody%' THEN SIGNAL SQLSTATE '45000'; END IF; END"
    );
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    // Capture reads table definitions when it starts (see capture::ddl):
    // let it start before the DDL.
    src.query_drop(format!("INSERT INTO {db}.t VALUES (1)"))
        .await
        .expect("insert");
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_changes(&ctx.stack.kafka, &topic, 0)
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "first row never published:\n{}",
            capture.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for stmt in [
        fence,
        format!("INSERT INTO {db}.t VALUES (2)"),
        format!("ALTER TABLE {db}.t ADD COLUMN c INT NOT NULL DEFAULT 7"),
        format!("INSERT INTO {db}.t VALUES (3, 8)"),
    ] {
        src.query_drop(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let code = capture.wait_exit(Duration::from_secs(60)).await;
    assert_ne!(code, Some(0));
    let log = capture.log_text();
    assert!(
        log.contains("DDL on moved table") && log.contains("ADD COLUMN c"),
        "names the DDL:\n{log}"
    );
    let ids = |evs: &[(i64, revdoor_core::event::ChangeEvent)]| -> Vec<String> {
        evs.iter()
            .filter_map(|(_, e)| e.after.as_ref())
            .map(|r| format!("{:?}", r.values))
            .collect()
    };
    let before = read_changes(&ctx.stack.kafka, &topic, 0)
        .await
        .expect("read");
    assert_eq!(
        ids(&before),
        ["[Int(1)]", "[Int(2)]"],
        "nothing after the DDL was published; the fence trigger passed"
    );

    let mut ignore_args = base.clone();
    ignore_args.extend(["--on-ddl".to_string(), "ignore".to_string()]);
    let mut capture = ctx.spawn("capture-ignore", &args(&ignore_args));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let evs = read_changes(&ctx.stack.kafka, &topic, 0)
            .await
            .expect("read");
        if evs.len() >= 3 {
            assert_eq!(
                ids(&evs),
                ["[Int(1)]", "[Int(2)]", "[Int(3), Int(8)]"],
                "resumed at the DDL with the new column"
            );
            break;
        }
        assert!(
            capture.exited().is_none(),
            "capture died:\n{}",
            capture.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "no event after the DDL:\n{}",
            capture.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    capture.stop(Duration::from_secs(20));
    capture.assert_no_unexpected_errors(&[]);
}
