//! Capture is exactly-once into Kafka across crashes (issue 3, "Crash"), and
//! its loop filter drops exactly revdoor's own reverse applies.
//!
//! A workload of multi-row, multi-table source transactions runs while the
//! capture process is killed with SIGKILL at random moments and crashes
//! itself at the named failpoints. Afterwards a `read_committed` consumer
//! must see every source transaction exactly once, contiguous, in commit
//! order. Size: `REVDOOR_CRASH_TXNS` (default 100000) transactions, at least
//! `REVDOOR_CRASH_KILLS` (default 20) SIGKILLs. The same with a MySQL source
//! (issue 13), whose transactions are told apart by the rows they insert
//! (MySQL tells a session its GTID only through session tracking, which
//! the client library does not expose) and ordered by their GTID's number.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_core::event::Op;
use revdoor_core::gtid::MariadbGtid;
use revdoor_tests::{args, env_num, gtid_pos, read_changes, Chaos, Revdoor, TestCtx};

const WRITERS: u64 = 4;
const FAILPOINTS: [&str; 2] = ["capture::after_kafka_commit", "capture::mid_transaction"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capture_survives_kill9_and_failpoints_exactly_once() {
    crash("capture_crash", 1, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_capture_survives_kill9_and_failpoints_exactly_once() {
    let my = revdoor_tests::stack().mysql_servers();
    crash("capture_crash_my", my[0], true).await;
}

/// A transaction's number within its source: `n` of MariaDB's `d-s-n` or
/// MySQL's `uuid:n` (one source server, so it orders commits).
fn seq_of(gtid: &str) -> u64 {
    match gtid.rsplit_once(':') {
        Some((_, n)) => n.parse().expect("MySQL GTID"),
        None => gtid.parse::<MariadbGtid>().expect("MariaDB GTID").seq,
    }
}

async fn crash(name: &str, server: usize, mysql: bool) {
    let total = env_num("REVDOOR_CRASH_TXNS", 100_000);
    let min_kills = env_num("REVDOOR_CRASH_KILLS", 20);
    let ctx = TestCtx::new(name);
    let db = ctx.db.clone();
    ctx.create_db(&[server]).await;
    let fill = if mysql {
        format!(
            "INSERT INTO {db}.b WITH RECURSIVE s (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s \
             WHERE n < {}) SELECT n, 'init' FROM s",
            WRITERS * 16 - 1
        )
    } else {
        format!(
            "INSERT INTO {db}.b SELECT seq, 'init' FROM mysql.seq_0_to_{}",
            WRITERS * 16 - 1
        )
    };
    ctx.sql(
        server,
        &[
            &format!("CREATE TABLE {db}.a (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"),
            &format!("CREATE TABLE {db}.b (id INT PRIMARY KEY, w VARCHAR(32) NOT NULL)"),
            &fill,
        ],
    )
    .await;
    let mut src = ctx.conn(server).await;
    let start: String = if mysql {
        src.query_first("SELECT @@global.gtid_executed")
            .await
            .expect("read gtid_executed")
            .unwrap_or_default()
    } else {
        gtid_pos(&mut src).await
    };
    let source = ctx.revdoor_url(server);
    let tables = format!("{db}.a,{db}.b");
    let args = [
        "capture",
        "run",
        "--workflow",
        &ctx.workflow,
        "--source",
        &source,
        "--tables",
        &tables,
        "--start-position",
        &start,
    ];

    // Writers: each transaction inserts 2 rows into `a` and updates 1 row of
    // `b` (3 row events), and records its GTID.
    let done = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut conn = ctx.conn(server).await;
        let db = db.clone();
        let committed = Arc::clone(&committed);
        writers.push(tokio::spawn(async move {
            let mut gtids = Vec::new();
            let mut i = w;
            while i < total {
                let mut tx = conn
                    .start_transaction(Default::default())
                    .await
                    .expect("begin");
                tx.exec_drop(
                    format!("INSERT INTO {db}.a VALUES (?, ?), (?, ?)"),
                    (2 * i, i, 2 * i + 1, i),
                )
                .await
                .expect("insert a");
                tx.exec_drop(
                    format!("UPDATE {db}.b SET w = ? WHERE id = ?"),
                    (format!("v{i}"), w * 16 + i % 16),
                )
                .await
                .expect("update b");
                tx.commit().await.expect("commit");
                // Its identity: MariaDB's GTID, or on MySQL its first row.
                let g: String = if mysql {
                    format!("row {}", 2 * i)
                } else {
                    conn.query_first("SELECT @@last_gtid")
                        .await
                        .expect("gtid")
                        .unwrap_or_default()
                };
                gtids.push(g);
                committed.fetch_add(1, Ordering::Relaxed);
                i += WRITERS;
            }
            gtids
        }));
    }
    let writers_done = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut all = Vec::new();
            for w in writers {
                all.extend(w.await.expect("writer"));
            }
            done.store(true, Ordering::SeqCst);
            all
        })
    };

    // Chaos: SIGKILL at random moments; every third restart also arms a
    // failpoint that crashes the process by itself after a random count.
    let mut chaos = Chaos::from_env();
    let mut kills = 0u64;
    let mut self_crashes = 0u64;
    let mut restarts = 0u64;
    let mut capture: Revdoor = ctx.spawn("capture-0", &args);
    let t0 = Instant::now();
    let mut armed = false;
    while !done.load(Ordering::SeqCst) || kills < min_kills {
        // An armed process gets time to reach its failpoint; others are
        // killed after a random pause.
        let pause = if armed {
            Duration::from_secs(20)
        } else {
            Duration::from_millis(chaos.range(300, 2500))
        };
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if capture.exited().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match capture.exited() {
            Some(code) => {
                let log = capture.log_text();
                assert!(
                    armed && log.contains("failpoint capture::"),
                    "capture exited with {code:?} without a failpoint:\n{log}"
                );
                self_crashes += 1;
            }
            None => {
                capture.kill9();
                kills += 1;
            }
        }
        restarts += 1;
        let name = format!("capture-{restarts}");
        armed = restarts.is_multiple_of(3) && !done.load(Ordering::SeqCst);
        capture = if armed {
            let fp = FAILPOINTS[chaos.range(0, 2) as usize];
            let spec = format!("{fp}={}*off->panic(failpoint {fp})", chaos.range(0, 8));
            ctx.spawn_env(&name, &args, &[("FAILPOINTS", &spec)])
        } else {
            ctx.spawn(&name, &args)
        };
    }
    let gtids = writers_done.await.expect("writers");
    eprintln!(
        "workload: {} transactions in {:.0}s; {kills} SIGKILLs, {self_crashes} failpoint crashes",
        gtids.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(gtids.len() as u64, total);
    assert!(kills >= min_kills, "only {kills} kills");
    assert!(
        self_crashes >= 2 || min_kills < 10,
        "the failpoints crashed capture only {self_crashes} times"
    );
    // The last process may be armed: replace it.
    capture.kill9();
    let mut capture = ctx.spawn("capture-final", &args);

    // Wait until the last transaction is in the topic, then audit the topic.
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let want: HashSet<String> = gtids.iter().cloned().collect();
    let last_seq = if mysql {
        // The workload's transactions are the last ones on the server.
        let executed: String = src
            .query_first("SELECT @@global.gtid_executed")
            .await
            .expect("read gtid_executed")
            .unwrap_or_default();
        let set: revdoor_core::gtid::MysqlGtidSet = executed.parse().expect("GTID set");
        set.intervals()
            // `[start, end)`: the last transaction is end - 1.
            .flat_map(|(_, ivs)| ivs.into_iter().map(|(_, end)| end - 1))
            .max()
            .expect("some gtid")
    } else {
        gtids
            .iter()
            .filter_map(|g| g.parse::<MariadbGtid>().ok())
            .map(|g| g.seq)
            .max()
            .expect("some gtid")
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let messages = loop {
        assert!(
            capture.exited().is_none(),
            "final capture died:\n{}",
            capture.log_text()
        );
        let msgs = read_changes(&ctx.stack.kafka, &topic, 0)
            .await
            .expect("read topic");
        let seen_last = msgs
            .last()
            .is_some_and(|(_, e)| seq_of(&e.txn.gtid) >= last_seq);
        if seen_last {
            break msgs;
        }
        assert!(
            Instant::now() < deadline,
            "capture did not publish up to seq {last_seq} in 300s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    capture.stop(Duration::from_secs(20));

    // Audit: contiguous blocks, each GTID once, in commit order, none lost.
    let mut seen: HashSet<String> = HashSet::new();
    let mut seen_gtids: HashSet<String> = HashSet::new();
    let mut open: Option<(String, u32)> = None;
    let mut last: Option<u64> = None;
    for (offset, ev) in &messages {
        match &open {
            None => {
                assert_eq!(
                    ev.txn.index, 0,
                    "offset {offset}: transaction {} starts mid-way",
                    ev.txn.gtid
                );
                assert!(
                    seen_gtids.insert(ev.txn.gtid.clone()),
                    "offset {offset}: {} published twice",
                    ev.txn.gtid
                );
                let identity = if mysql {
                    let id = ev.after.as_ref().and_then(|r| r.get("id")).cloned();
                    match id {
                        Some(revdoor_core::event::ColumnValue::Int(id)) => format!("row {id}"),
                        other => panic!("offset {offset}: first row's id is {other:?}"),
                    }
                } else {
                    ev.txn.gtid.clone()
                };
                assert!(
                    seen.insert(identity.clone()),
                    "offset {offset}: {identity} published twice"
                );
                let seq = seq_of(&ev.txn.gtid);
                if let Some(prev) = last {
                    assert!(
                        seq > prev,
                        "offset {offset}: {} after seq {prev}: not commit order",
                        ev.txn.gtid
                    );
                }
                last = Some(seq);
            }
            Some((g, i)) => {
                assert_eq!(
                    &ev.txn.gtid, g,
                    "offset {offset}: transaction {g} interleaved with {}",
                    ev.txn.gtid
                );
                assert_eq!(ev.txn.index, i + 1, "offset {offset}: gap inside {g}");
            }
        }
        let expect_op = if ev.txn.index < 2 {
            Op::Create
        } else {
            Op::Update
        };
        assert_eq!(
            ev.op, expect_op,
            "offset {offset}: event {} of {}",
            ev.txn.index, ev.txn.gtid
        );
        open = if ev.txn.last {
            assert_eq!(
                ev.txn.index, 2,
                "offset {offset}: {} has 3 row events",
                ev.txn.gtid
            );
            None
        } else {
            Some((ev.txn.gtid.clone(), ev.txn.index))
        };
    }
    assert!(open.is_none(), "the topic ends inside transaction {open:?}");
    let lost: Vec<&String> = want.difference(&seen).take(5).collect();
    assert!(
        lost.is_empty(),
        "{} transactions lost, e.g. {lost:?}",
        want.difference(&seen).count()
    );
    assert_eq!(
        seen.len(),
        want.len(),
        "no transaction other than the workload's"
    );
    eprintln!(
        "audit: {} messages, {} transactions, each exactly once, in order",
        messages.len(),
        seen.len()
    );
}

/// Loop prevention: a transaction that writes the checkpoint row of this
/// workflow's reverse stream (as reverse apply does) is dropped whole; the
/// same for another workflow, and an application write, pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_filter_drops_only_own_reverse_applies() {
    let ctx = TestCtx::new("loop_filter");
    let db = ctx.db.clone();
    ctx.create_db(&[1]).await;
    ctx.sql(
        1,
        &[&format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)")],
    )
    .await;
    for ddl in revdoor_apply::STREAM_STATE_DDL {
        ctx.sql(1, &[ddl]).await;
    }
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let source = ctx.revdoor_url(1);
    let table = format!("{db}.t");
    let mut capture = ctx.spawn("capture", &args(&ctx.capture_args(&source, &table, &start)));
    let other = format!("{}_other", ctx.workflow);
    let applied_by = |wf: &str, dir: &str, id: i32| {
        format!(
            "START TRANSACTION; INSERT INTO {db}.t VALUES ({id}, {id}); \
             INSERT INTO _revdoor.stream_state (workflow, direction, `partition`, kafka_offset) \
             VALUES ('{wf}', '{dir}', 0, {id}) ON DUPLICATE KEY UPDATE kafka_offset = {id}; COMMIT"
        )
    };
    src.query_drop(applied_by(&ctx.workflow, "reverse", 1))
        .await
        .expect("own reverse apply");
    src.query_drop(applied_by(&other, "reverse", 2))
        .await
        .expect("other workflow's apply");
    src.query_drop(applied_by(&ctx.workflow, "forward", 3))
        .await
        .expect("own forward apply (other side)");
    src.query_drop(format!("INSERT INTO {db}.t VALUES (4, 4)"))
        .await
        .expect("application write");
    src.query_drop(applied_by(&ctx.workflow, "reverse", 5))
        .await
        .expect("own reverse apply again");
    src.query_drop(format!("INSERT INTO {db}.t VALUES (6, 6)"))
        .await
        .expect("application write");

    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let deadline = Instant::now() + Duration::from_secs(60);
    let ids = loop {
        let msgs = read_changes(&ctx.stack.kafka, &topic, 0)
            .await
            .unwrap_or_default();
        let ids: Vec<String> = msgs
            .into_iter()
            .filter_map(|(_, e)| e.after.and_then(|r| r.values.first().cloned()))
            .map(|v| format!("{v:?}"))
            .collect();
        if ids.len() >= 4 {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "expected 4 events, have {ids:?}\n{}",
            capture.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        ids,
        ["Int(2)", "Int(3)", "Int(4)", "Int(6)"],
        "rows 1 and 5 were revdoor's own reverse applies"
    );
    capture.stop(Duration::from_secs(20));
    capture.assert_no_unexpected_errors(&[]);
}
