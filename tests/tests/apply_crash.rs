//! Apply is exactly-once into the database across crashes (issue 4, "Crash").
//!
//! A bank workload (transfers between accounts: the sum of balances never
//! changes) runs on the source while the apply process is killed with
//! SIGKILL at random moments and crashes itself at the named failpoints.
//! The target's sum is sampled all along and must never differ; at the end
//! the target equals the source row for row. Size: `REVDOOR_BANK_TXNS`
//! (default 100000) transfers, at least `REVDOOR_CRASH_KILLS` (default 20)
//! SIGKILLs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_tests::{args, env_num, gtid_pos, Chaos, Revdoor, TestCtx};

const ACCOUNTS: u64 = 200;
const WRITERS: u64 = 4;
const INITIAL: i64 = 1_000_000;
const FAILPOINTS: [&str; 2] = [
    "apply::before_checkpoint_commit",
    "apply::after_commit_before_ack",
];

/// Groups an apply (K = 4, debug log) split into parallel parts so far.
fn parallel_groups(p: &Revdoor) -> usize {
    p.log_text()
        .lines()
        .filter(|l| l.contains("parallel group"))
        .count()
}

async fn target_sum(conn: &mut mysql_async::Conn, db: &str) -> Option<(i64, i64)> {
    // One statement: one consistent snapshot.
    conn.query_first(format!(
        "SELECT CAST(COALESCE(SUM(balance), 0) AS SIGNED), COUNT(*) FROM {db}.accounts"
    ))
    .await
    .expect("sum")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_survives_kill9_and_failpoints_with_constant_sum() {
    let total = env_num("REVDOOR_BANK_TXNS", 100_000);
    let min_kills = env_num("REVDOOR_CRASH_KILLS", 20);
    let ctx = TestCtx::new("apply_crash");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2]).await;
    let ddl = format!("CREATE TABLE {db}.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, moves INT NOT NULL)");
    ctx.sql(1, &[&ddl]).await;
    ctx.sql(2, &[&ddl]).await;
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    // The opening balances travel through the stream too.
    src.query_drop(format!(
        "INSERT INTO {db}.accounts SELECT seq, {INITIAL}, 0 FROM mysql.seq_1_to_{ACCOUNTS}"
    ))
    .await
    .expect("open accounts");
    let want_sum = INITIAL * ACCOUNTS as i64;

    let source = ctx.revdoor_url(1);
    let target = ctx.revdoor_url(2);
    let table = format!("{db}.accounts");
    let mut capture = ctx.spawn("capture", &args(&ctx.capture_args(&source, &table, &start)));
    // Restarts alternate between one connection and write-set-parallel
    // apply (K = 4), so each recovers what the other left midway.
    let apply_args = |restart: u64| {
        let k = if restart.is_multiple_of(2) { "4" } else { "1" };
        vec![
            "apply".to_string(),
            "run".into(),
            "--workflow".into(),
            ctx.workflow.clone(),
            "--target".into(),
            target.clone(),
            "--parallelism".into(),
            k.into(),
        ]
    };
    let debug = ("REVDOOR_LOG", "info,revdoor_apply=debug");

    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut conn = ctx.conn(1).await;
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = Chaos::from_env();
            let mut i = w;
            while i < total {
                let from = rng.range(1, ACCOUNTS + 1);
                let to = 1 + (from + rng.range(0, ACCOUNTS - 1)) % ACCOUNTS;
                let amount = rng.range(1, 500);
                let mut tx = conn.start_transaction(Default::default()).await.expect("begin");
                // Rows in id order, so concurrent writers cannot deadlock.
                let (a, b) = if from < to { ((from, -(amount as i64)), (to, amount as i64)) } else { ((to, amount as i64), (from, -(amount as i64))) };
                for (id, delta) in [a, b] {
                    tx.exec_drop(
                        format!("UPDATE {db}.accounts SET balance = balance + ?, moves = moves + 1 WHERE id = ?"),
                        (delta, id),
                    )
                    .await
                    .expect("transfer");
                }
                tx.commit().await.expect("commit");
                i += WRITERS;
            }
        }));
    }
    let all_written = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            for w in writers {
                w.await.expect("writer");
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut chaos = Chaos::from_env();
    let mut probe = ctx.conn(2).await;
    let (mut kills, mut self_crashes, mut restarts, mut samples) = (0u64, 0u64, 0u64, 0u64);
    let mut split = 0;
    let mut apply: Revdoor = ctx.spawn_env("apply-0", &args(&apply_args(0)), &[debug]);
    let mut armed = false;
    let t0 = Instant::now();
    while !done.load(Ordering::SeqCst) || kills < min_kills {
        let pause = if armed {
            Duration::from_secs(20)
        } else {
            Duration::from_millis(chaos.range(300, 2500))
        };
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if apply.exited().is_some() {
                break;
            }
            // The invariant holds at every moment the target can be read.
            if let Some((sum, n)) = target_sum(&mut probe, &db).await {
                if n == ACCOUNTS as i64 {
                    assert_eq!(
                        sum, want_sum,
                        "target sum broke after {samples} good samples"
                    );
                    samples += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match apply.exited() {
            Some(code) => {
                let log = apply.log_text();
                assert!(
                    armed && log.contains("failpoint apply::"),
                    "apply exited with {code:?}:\n{log}"
                );
                self_crashes += 1;
            }
            None => {
                apply.kill9();
                kills += 1;
            }
        }
        assert!(
            capture.exited().is_none(),
            "capture died:\n{}",
            capture.log_text()
        );
        split += parallel_groups(&apply);
        restarts += 1;
        let name = format!("apply-{restarts}");
        armed = restarts.is_multiple_of(3) && !done.load(Ordering::SeqCst);
        apply = if armed {
            let fp = FAILPOINTS[chaos.range(0, 2) as usize];
            let spec = format!("{fp}={}*off->panic(failpoint {fp})", chaos.range(0, 20));
            ctx.spawn_env(
                &name,
                &args(&apply_args(restarts)),
                &[("FAILPOINTS", &spec), debug],
            )
        } else {
            ctx.spawn_env(&name, &args(&apply_args(restarts)), &[debug])
        };
    }
    all_written.await.expect("writers");
    apply.kill9();
    let mut apply = ctx.spawn_env("apply-final", &args(&apply_args(0)), &[debug]);
    eprintln!(
        "workload: {total} transfers in {:.0}s; {kills} SIGKILLs, {self_crashes} failpoint crashes, {samples} sum samples",
        t0.elapsed().as_secs_f64()
    );
    assert!(kills >= min_kills);
    assert!(
        self_crashes >= 2 || min_kills < 10,
        "failpoints crashed apply only {self_crashes} times"
    );
    assert!(samples > 0, "the sum was sampled");
    eprintln!("{split} groups were applied in parallel (K = 4 runs)");
    assert!(
        split > 0,
        "the K = 4 runs never split a group: the parallel path went untested"
    );

    // Converge, then compare row for row.
    let want = ctx.rows(1, "accounts").await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            apply.exited().is_none(),
            "final apply died:\n{}",
            apply.log_text()
        );
        if ctx.rows(2, "accounts").await == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "target did not converge to the source within 300s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let moves: i64 = src
        .query_first(format!(
            "SELECT CAST(SUM(moves) AS SIGNED) FROM {db}.accounts"
        ))
        .await
        .expect("moves")
        .unwrap_or_default();
    assert_eq!(
        moves,
        2 * total as i64,
        "every transfer counted once on the source"
    );
    assert_eq!(
        target_sum(&mut probe, &db).await,
        Some((want_sum, ACCOUNTS as i64))
    );
    apply.stop(Duration::from_secs(20));
    capture.stop(Duration::from_secs(20));
}

/// The number after `field=` in a log line (plain-text logs).
fn log_number(log: &str, field: &str) -> Option<u64> {
    let at = log.find(&format!("{field}="))?;
    log[at + field.len() + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Zombie (issue 4): an apply SIGSTOPped past its ownership lease is
/// replaced; resumed, it commits nothing — proved by an audit trigger on the
/// target that records which connection committed each write — and stops,
/// fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_apply_past_its_lease_commits_nothing_after_its_successor() {
    let ctx = TestCtx::new("apply_zombie");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2]).await;
    let ddl = format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT NOT NULL)");
    ctx.sql(1, &[&ddl]).await;
    ctx.sql(
        2,
        &[
            &ddl,
            &format!("CREATE TABLE {db}.audit (id INT NOT NULL, conn BIGINT UNSIGNED NOT NULL)"),
            &format!("CREATE TRIGGER {db}.audit_i AFTER INSERT ON {db}.t FOR EACH ROW INSERT INTO {db}.audit VALUES (NEW.id, CONNECTION_ID())"),
            &format!("CREATE TRIGGER {db}.audit_u AFTER UPDATE ON {db}.t FOR EACH ROW INSERT INTO {db}.audit VALUES (NEW.id, CONNECTION_ID())"),
        ],
    )
    .await;
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let _capture = ctx.spawn(
        "capture",
        &args(&ctx.capture_args(&ctx.revdoor_url(1), &format!("{db}.t"), &start)),
    );
    let mut own = ctx.apply_args(&ctx.revdoor_url(2));
    own.extend(
        [
            "--own",
            "--etcd-prefix",
            &ctx.etcd_prefix,
            "--lease-ttl",
            "2s",
        ]
        .map(String::from),
    );
    let insert = |from: i32, to: i32| {
        let db = db.clone();
        move |mut c: mysql_async::Conn| async move {
            for k in from..=to {
                c.query_drop(format!("INSERT INTO {db}.t VALUES ({k}, {k})"))
                    .await
                    .expect("insert");
            }
            c
        }
    };
    let wait_rows = |n: usize| {
        let ctx = &ctx;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while ctx.rows(2, "t").await.len() < n {
                assert!(Instant::now() < deadline, "never reached {n} rows");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    let mut first = ctx.spawn("apply-first", &args(&own));
    src = insert(1, 10)(src).await;
    wait_rows(10).await;
    let first_log = first.log_text();
    let first_conn =
        log_number(&first_log, "connection_id").expect("first apply logs its connection id");
    let first_token = log_number(&first_log, "fence_token").expect("first apply logs its token");

    // Paused past its lease: a successor takes the stream and applies.
    first.signal("STOP");
    let mut second = ctx.spawn("apply-second", &args(&own));
    src = insert(11, 20)(src).await;
    wait_rows(20).await;
    let second_token =
        log_number(&second.log_text(), "fence_token").expect("second apply logs its token");
    assert!(
        second_token > first_token,
        "the successor's token {second_token} > {first_token}"
    );

    // The zombie wakes up while writes go on.
    first.signal("CONT");
    let _src = insert(21, 30)(src).await;
    let code = first.wait_exit(Duration::from_secs(60)).await;
    assert_ne!(code, Some(0), "the zombie stops with an error");
    assert!(
        first.log_text().contains("fenced"),
        "it says it was fenced:\n{}",
        first.log_text()
    );
    wait_rows(30).await;
    assert_eq!(
        ctx.rows(2, "t").await,
        ctx.rows(1, "t").await,
        "the successor applied everything"
    );

    let mut dst = ctx.conn(2).await;
    let zombie_writes: u64 = dst
        .query_first(format!(
            "SELECT COUNT(*) FROM {db}.audit WHERE conn = {first_conn} AND id > 10"
        ))
        .await
        .expect("audit")
        .unwrap_or(0);
    assert_eq!(
        zombie_writes, 0,
        "the zombie committed nothing after its successor took over"
    );
    let stored: u64 = dst
        .exec_first(
            "SELECT fence_token FROM _revdoor.stream_state WHERE workflow = ? AND direction = 'forward'",
            (&ctx.workflow,),
        )
        .await
        .expect("state")
        .expect("row");
    assert_eq!(
        stored, second_token,
        "the checkpoint carries the successor's token"
    );
    assert!(
        second.exited().is_none(),
        "the successor keeps running:\n{}",
        second.log_text()
    );
    second.stop(Duration::from_secs(20));

    // The database fence on its own: an apply holding the predecessor's
    // token (no lease to notice anything) is refused by the checkpoint row.
    let mut stale_args = ctx.apply_args(&ctx.revdoor_url(2));
    stale_args.extend(["--fence-token".to_string(), first_token.to_string()]);
    let mut stale = ctx.spawn("apply-stale", &args(&stale_args));
    stale.wait_exit(Duration::from_secs(30)).await;
    assert!(
        stale.log_text().contains("fenced by a newer owner"),
        "{}",
        stale.log_text()
    );
}
