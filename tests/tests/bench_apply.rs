//! Apply benchmark (issue 4), run by `bench/apply`; not part of the test
//! suite (`#[ignore]`): speed is measured here, never asserted.
//!
//! On the real stack, with `REVDOOR_BIN` (a release build):
//! 1. raw rate: multi-row `INSERT … ON DUPLICATE KEY UPDATE`, 500-row
//!    transactions, straight into the target server — the ceiling,
//!    measured on each target right before its apply runs;
//! 2. apply rate: the same rows, inserted on the source in 500-row
//!    transactions and captured into Kafka first; then `revdoor apply
//!    run` drains the partition, with K = 1 into #2 and with K = 4 into
//!    #3; rows/s from its start to the last row applied, and its peak RSS
//!    (`VmHWM`);
//! 3. end-to-end lag at a steady 1,000 transactions/s (K = 4 apply): each source row
//!    carries its commit time; a poller on the target records when each row
//!    appears (5 ms polls), p50 / p99 of the difference.
//!
//! And, run by `bench/apply --big-txn-rows N` (issue 17), apply's peak RSS
//! and time for **one source transaction of N rows** (the same rows, one
//! `INSERT … SELECT` on a MariaDB source), applied by `revdoor apply run`
//! into a MariaDB and then into a MySQL target, each alone: peak `VmHWM`
//! until the transaction's last row is visible (it commits whole), the
//! machine's load average before and after.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_tests::{args, bank, env_num, gtid_pos, wait_for, TestCtx};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `revdoor apply run` of this test's workflow into `target` with `k`
/// connections.
fn spawn_apply(ctx: &TestCtx, name: &str, target: &str, k: &str) -> revdoor_tests::Revdoor {
    ctx.spawn(
        name,
        &[
            "apply",
            "run",
            "--workflow",
            &ctx.workflow,
            "--target",
            target,
            "--parallelism",
            k,
        ],
    )
}

fn pct(v: &mut [i64], p: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
}

const BATCH: u64 = 500;

fn rows_sql(db: &str, table: &str, from: u64, n: u64, upsert: bool) -> String {
    let values: Vec<String> = (from..from + n)
        .map(|i| {
            format!(
                "({i}, {}, 'name-{i:08}-padding-to-make-the-row-about-100-bytes', {}.5, {})",
                i * 7,
                i % 1000,
                i
            )
        })
        .collect();
    let mut sql = format!(
        "INSERT INTO {db}.{table} (id, a, b, c, d) VALUES {}",
        values.join(",")
    );
    if upsert {
        sql.push_str(
            " ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b), c = VALUES(c), d = VALUES(d)",
        );
    }
    sql
}

/// Whether row `id` is there (a primary-key look-up: cheap to poll, unlike
/// `COUNT(*)`, which scans the table and took MariaDB CPU from the apply it
/// measured — before this, apply's rate here was ≈ 20 % low).
async fn has_row(c: &mut mysql_async::Conn, db: &str, table: &str, id: u64) -> bool {
    let r: Option<u64> = c
        .query_first(format!("SELECT id FROM {db}.{table} WHERE id = {id}"))
        .await
        .expect("look-up");
    r.is_some()
}

async fn count(c: &mut mysql_async::Conn, db: &str, table: &str) -> u64 {
    c.query_first(format!("SELECT COUNT(*) FROM {db}.{table}"))
        .await
        .expect("count")
        .unwrap_or(0)
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Wait until partition 0 of `topic` holds at least `rows` messages
/// (events plus transaction markers).
async fn published(kafka: &str, topic: &str, rows: u64, deadline: Duration) {
    wait_for("capture published every row", deadline, || {
        let topic = topic.to_owned();
        let kafka = kafka.to_owned();
        async move {
            let hw = tokio::task::spawn_blocking(move || {
                use rdkafka::consumer::{BaseConsumer, Consumer};
                let c: BaseConsumer = rdkafka::ClientConfig::new()
                    .set("bootstrap.servers", &kafka)
                    .create()
                    .ok()?;
                c.fetch_watermarks(&topic, 0, Duration::from_secs(5))
                    .ok()
                    .map(|(_, h)| h)
            })
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
            Ok((hw as u64 >= rows).then_some(()))
        }
    })
    .await
    .expect("capture");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with bench/apply"]
async fn apply_throughput_lag_and_memory() {
    let rows = env_num("REVDOOR_BENCH_ROWS", 200_000);
    let lag_secs = env_num("REVDOOR_BENCH_LAG_SECS", 20);
    let ctx = TestCtx::new("bench_apply");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2, 3]).await;
    let ddl = |t: &str| {
        format!("CREATE TABLE {db}.{t} (id BIGINT PRIMARY KEY, a BIGINT NOT NULL, b VARCHAR(64) NOT NULL, c DOUBLE NOT NULL, d BIGINT NOT NULL)")
    };
    for t in ["t", "raw"] {
        for server in [1, 2, 3] {
            ctx.sql(server, &[&ddl(t)]).await;
        }
    }
    let lag_ddl =
        format!("CREATE TABLE {db}.lag (id BIGINT PRIMARY KEY, created_ms BIGINT NOT NULL)");
    for server in [1, 2, 3] {
        ctx.sql(server, &[&lag_ddl]).await;
    }

    // 1. Raw batched upsert rate: measured on each target right before
    // its apply runs (below), into its own empty table.
    // 2. Fill the source, capture it all into Kafka, then time apply alone.
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    for from in (0..rows).step_by(BATCH as usize) {
        src.query_drop("BEGIN").await.expect("begin");
        src.query_drop(rows_sql(&db, "t", from, BATCH.min(rows - from), false))
            .await
            .expect("insert");
        src.query_drop("COMMIT").await.expect("commit");
    }
    let source = ctx.revdoor_url(1);
    let tables = format!("{db}.t,{db}.lag");
    let mut capture = ctx.spawn(
        "capture",
        &args(&ctx.capture_args(&source, &tables, &start)),
    );
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let kafka = ctx.stack.kafka.clone();
    published(&kafka, &topic, rows, Duration::from_secs(600)).await;
    // K = 1 into #2, then K = 4 into #3 (an identical server), each
    // draining the same partition alone.
    let mut rates = Vec::new();
    let mut peak_kb = 0;
    let mut apply = None;
    let mut raw_rates = Vec::new();
    for (k, server) in [(1, 2), (4, 3)] {
        if let Some(mut a) = apply.take() {
            revdoor_tests::Revdoor::stop(&mut a, Duration::from_secs(20));
        }
        let mut raw = ctx.conn(server).await;
        let t = Instant::now();
        for from in (0..rows).step_by(BATCH as usize) {
            raw.query_drop("BEGIN").await.expect("begin");
            raw.query_drop(rows_sql(&db, "raw", from, BATCH.min(rows - from), true))
                .await
                .expect("raw upsert");
            raw.query_drop("COMMIT").await.expect("commit");
        }
        raw_rates.push(rows as f64 / t.elapsed().as_secs_f64());
        let target = ctx.revdoor_url(server);
        let k_arg = k.to_string();
        let p = spawn_apply(&ctx, &format!("apply-k{k}"), &target, &k_arg);
        let mut c = ctx.conn(server).await;
        let t = Instant::now();
        loop {
            peak_kb = peak_kb.max(vm_hwm_kb(p.pid()));
            // Apply goes in source order: the last row comes last (a
            // parallel group's buckets commit together, within
            // milliseconds); the count is checked once it is there.
            if has_row(&mut c, &db, "t", rows - 1).await {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(1200),
                "apply did not finish"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        rates.push(rows as f64 / t.elapsed().as_secs_f64());
        let mut n = count(&mut c, &db, "t").await;
        while n < rows {
            tokio::time::sleep(Duration::from_millis(20)).await;
            n = count(&mut c, &db, "t").await;
        }
        assert_eq!(n, rows, "apply applied exactly the rows");
        peak_kb = peak_kb.max(vm_hwm_kb(p.pid()));
        apply = Some(p);
    }
    let mut apply = apply.expect("the K = 4 apply");
    let (apply_rate, apply_rate_k4) = (rates[0], rates[1]);
    let (raw_rate, raw_rate_k4) = (raw_rates[0], raw_rates[1]);
    // The lag is measured on #3, with the K = 4 apply.
    let mut dst = ctx.conn(3).await;

    // 3. Lag at a steady 1,000 transactions/s, after a warm-up row (the
    // first row of a table costs apply a schema lookup and a key-column
    // query: a one-time cost, not the steady state measured here).
    src.query_drop(format!("INSERT INTO {db}.lag VALUES (0, 0)"))
        .await
        .expect("warm-up row");
    wait_for("warm-up row applied", Duration::from_secs(60), || async {
        let n: Option<u64> = ctx
            .conn(3)
            .await
            .query_first(format!("SELECT COUNT(*) FROM {db}.lag"))
            .await
            .ok()
            .flatten();
        Ok((n == Some(1)).then_some(()))
    })
    .await
    .expect("warm-up");
    let lag_db = db.clone();
    let writer = tokio::spawn(async move {
        let period = Duration::from_micros(1000);
        let mut next = Instant::now();
        let end = Instant::now() + Duration::from_secs(lag_secs);
        let mut id = 0i64;
        while Instant::now() < end {
            id += 1;
            src.exec_drop(
                format!("INSERT INTO {lag_db}.lag VALUES (?, ?)"),
                (id, now_ms()),
            )
            .await
            .expect("lag insert");
            next += period;
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                tokio::time::sleep(d).await;
            }
        }
        id
    });
    let mut lags: Vec<i64> = Vec::new();
    // Parallel apply commits independent transactions in any order: read
    // from the lowest id not seen yet, remember every id seen.
    let mut seen_ids = std::collections::HashSet::new();
    let mut low = 0i64; // every id <= low was seen
    let t = Instant::now();
    loop {
        let rows: Vec<(i64, i64)> = dst
            .query(format!(
                "SELECT id, created_ms FROM {db}.lag WHERE id > {low} ORDER BY id"
            ))
            .await
            .expect("poll");
        let now = now_ms();
        let mut fresh = Vec::new();
        for (id, created) in rows {
            if seen_ids.insert(id) {
                lags.push(now - created);
                fresh.push(id);
            }
        }
        while seen_ids.contains(&(low + 1)) {
            low += 1;
        }
        if writer.is_finished()
            && fresh.is_empty()
            && t.elapsed() > Duration::from_secs(lag_secs + 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let written = writer.await.expect("writer");
    let achieved = written as f64 / lag_secs as f64;
    peak_kb = peak_kb.max(vm_hwm_kb(apply.pid()));
    let n = lags.len();
    let (p50, p99) = (pct(&mut lags, 0.5), pct(&mut lags, 0.99));
    let result = serde_json::json!({
        "rows": rows,
        "raw_upsert_rows_per_s": raw_rate.round(),
        "apply_rows_per_s": apply_rate.round(),
        "apply_vs_raw": (apply_rate / raw_rate * 100.0).round() / 100.0,
        "apply_k4_rows_per_s": apply_rate_k4.round(),
        "raw_upsert_rows_per_s_k4_target": raw_rate_k4.round(),
        "apply_k4_vs_raw": (apply_rate_k4 / raw_rate_k4 * 100.0).round() / 100.0,
        "lag_txn_per_s": achieved.round(),
        "lag_samples": n,
        "lag_p50_ms": p50,
        "lag_p99_ms": p99,
        "apply_peak_rss_mb": peak_kb / 1024,
        "lag_apply_connections": 4,
    });
    println!("BENCH {result}");
    if let Ok(out) = std::env::var("REVDOOR_BENCH_OUT") {
        std::fs::write(out, serde_json::to_string_pretty(&result).expect("json"))
            .expect("write result");
    }
    assert_eq!(n as i64, written, "every lag row arrived");
    capture.stop(Duration::from_secs(20));
    apply.stop(Duration::from_secs(20));
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with bench/apply --big-txn-rows N"]
async fn apply_big_transaction_memory() {
    let rows = env_num("REVDOOR_BENCH_BIG_TXN_ROWS", 10_000_000);
    let ctx = TestCtx::new("bench_apply_big");
    let (maria, mysql) = (ctx.stack.mariadb_servers(), ctx.stack.mysql_servers());
    assert!(
        maria.len() >= 2 && !mysql.is_empty(),
        "needs two MariaDB servers and a MySQL one (deploy/stack up --mariadb 2 --mysql 1)"
    );
    let (source, targets) = (maria[0], [("mariadb", maria[1]), ("mysql", mysql[0])]);
    let db = ctx.db.clone();
    let mut servers = vec![source];
    servers.extend(targets.iter().map(|t| t.1));
    ctx.create_db(&servers).await;
    for &server in &servers {
        ctx.sql(server, &[&format!("CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, a BIGINT NOT NULL, b VARCHAR(64) NOT NULL, c DOUBLE NOT NULL, d BIGINT NOT NULL)")]).await;
    }
    let mut src = ctx.conn(source).await;
    let start = gtid_pos(&mut src).await;
    let t = Instant::now();
    // The rows of `rows_sql`, in one statement: one source transaction.
    src.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, seq * 7, CONCAT('name-', LPAD(seq, 8, '0'), \
         '-padding-to-make-the-row-about-100-bytes'), seq % 1000 + 0.5, seq \
         FROM {db}.seq_1_to_{rows}"
    ))
    .await
    .expect("big insert");
    let load_secs = t.elapsed().as_secs_f64();
    let mut capture = ctx.spawn(
        "capture",
        &args(&ctx.capture_args(&ctx.revdoor_url(source), &format!("{db}.t"), &start)),
    );
    // Capture keeps running (stopping it before its Kafka transaction
    // commits would abort it); each apply waits for that commit itself.
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    published(&ctx.stack.kafka, &topic, rows, Duration::from_secs(3600)).await;
    let mut result = serde_json::json!({
        "big_txn_rows": rows,
        "source_insert_s": (load_secs * 10.0).round() / 10.0,
        "commit": std::env::var("REVDOOR_BENCH_COMMIT").unwrap_or_default(),
    });
    for (engine, server) in targets {
        let load_before = loadavg();
        let target = ctx.revdoor_url(server);
        let mut apply = ctx.spawn(&format!("apply-{engine}"), &args(&ctx.apply_args(&target)));
        let mut c = ctx.conn(server).await;
        let t = Instant::now();
        let mut peak_kb = 0;
        // The transaction commits whole: its last row shows with all others.
        while !has_row(&mut c, &db, "t", rows).await {
            peak_kb = peak_kb.max(vm_hwm_kb(apply.pid()));
            assert!(
                apply.exited().is_none(),
                "apply into {engine} exited:\n{}",
                apply.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        peak_kb = peak_kb.max(vm_hwm_kb(apply.pid()));
        apply.stop(Duration::from_secs(20));
        assert_eq!(
            count(&mut c, &db, "t").await,
            rows,
            "apply into {engine}: every row"
        );
        assert!(
            apply
                .log_text()
                .contains("big source transaction applied; committing"),
            "apply into {engine} did not stream the transaction"
        );
        let r = serde_json::json!({
            "apply_s": (secs * 10.0).round() / 10.0,
            "apply_rows_per_s": (rows as f64 / secs).round(),
            "apply_peak_rss_mb": peak_kb / 1024,
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        });
        println!("BENCH big_txn {engine} {r}");
        result[engine] = r;
    }
    capture.stop(Duration::from_secs(20));
    println!("BENCH {result}");
    if let Ok(out) = std::env::var("REVDOOR_BENCH_OUT") {
        std::fs::write(out, serde_json::to_string_pretty(&result).expect("json"))
            .expect("write result");
    }
}

/// Global status counters of server `c` that show apply's round trips:
/// statements (`Questions`), prepared statements prepared and executed,
/// commits (one per group or bucket).
async fn round_trip_counters(c: &mut mysql_async::Conn) -> [u64; 4] {
    let rows: Vec<(String, String)> = c
        .query(
            "SHOW GLOBAL STATUS WHERE Variable_name IN \
             ('Questions', 'Com_stmt_prepare', 'Com_stmt_execute', 'Com_commit')",
        )
        .await
        .expect("status");
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    [
        get("Questions"),
        get("Com_stmt_prepare"),
        get("Com_stmt_execute"),
        get("Com_commit"),
    ]
}

/// The highest ledger id applied on `c` (-1 for none). Apply goes in source
/// order, and ids are written in order: the applied rows are `0..=max`.
async fn ledger_max(c: &mut mysql_async::Conn, db: &str) -> i64 {
    c.query_first::<Option<i64>, _>(format!("SELECT MAX(id) FROM {db}.ledger"))
        .await
        .expect("max id")
        .flatten()
        .unwrap_or(-1)
}

/// Apply over a slow network (issue 18 item 7), run by
/// `bench/apply --latency`: source #1 (MariaDB) takes bank transactions
/// (1 `accounts` UPDATE + 1 `ledger` INSERT each); one apply per latency
/// writes into its own MariaDB (#2..#5) through a Toxiproxy proxy that
/// delays every reply by 0 / 1 / 10 / 100 ms.
/// 1. drain: a backlog of `REVDOOR_BENCH_LAT_TXNS` transactions, captured
///    first; each apply alone, timed from its start until every row is
///    there or `REVDOOR_BENCH_LAT_SECS` passed; applied rows/s and
///    transactions/s, and the destination's counters per group (commits):
///    statements (`Questions`, less this poller's own), prepares, executes;
/// 2. offered: every apply running, the source takes
///    `REVDOOR_BENCH_LAT_RATE` transactions/s for `REVDOOR_BENCH_LAT_OFFER_SECS`
///    from `REVDOOR_BENCH_LAT_WRITERS` connections (default 1);
///    transactions applied per second over that window, per latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with bench/apply --latency"]
async fn apply_over_latency() {
    let txns = env_num("REVDOOR_BENCH_LAT_TXNS", 2000) as i64;
    let window = Duration::from_secs(env_num("REVDOOR_BENCH_LAT_SECS", 30));
    let rate = env_num("REVDOOR_BENCH_LAT_RATE", 200);
    let offer_secs = env_num("REVDOOR_BENCH_LAT_OFFER_SECS", 20);
    let k = env_num("REVDOOR_BENCH_LAT_K", 4).to_string();
    let ctx = TestCtx::new("bench_apply_lat");
    let maria = ctx.stack.mariadb_servers();
    assert!(
        maria.len() >= 5,
        "needs five MariaDB servers (deploy/stack up --mariadb 5)"
    );
    let (source, targets) = (
        maria[0],
        [
            (0u64, maria[1]),
            (1, maria[2]),
            (10, maria[3]),
            (100, maria[4]),
        ],
    );
    let db = ctx.db.clone();
    let mut servers = vec![source];
    servers.extend(targets.iter().map(|t| t.1));
    ctx.create_db(&servers).await;
    bank::create_tables(&ctx, &servers).await;
    let mut src = ctx.conn(source).await;
    let start = gtid_pos(&mut src).await;
    for id in 0..txns {
        bank::txn(&mut src, &db, id).await;
    }
    let mut capture = bank::capture(&ctx, source, &start);
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    published(
        &ctx.stack.kafka,
        &topic,
        txns as u64 * 2,
        Duration::from_secs(600),
    )
    .await;
    let toxi = revdoor_tests::toxi::Toxi::of(ctx.stack);
    let tag = format!("benchlat{}", std::process::id());
    let mut running = Vec::new();
    let mut result = serde_json::json!({
        "txns": txns,
        "parallelism": k,
        "commit": std::env::var("REVDOOR_BENCH_COMMIT").unwrap_or_default(),
        "writers": env_num("REVDOOR_BENCH_LAT_WRITERS", 1),
        "loadavg_before": loadavg(),
    });
    // 1. Drain the backlog, one latency at a time.
    for (ms, server) in targets {
        let admin = ctx.admin_opts(server);
        let proxy = toxi.proxy(
            &format!("{tag}_{ms}ms"),
            &format!("{}:{}", admin.ip_or_hostname(), admin.tcp_port()),
        );
        if ms > 0 {
            proxy.latency(ms);
        }
        let target = format!(
            "mysql://{}:{}@{}",
            ctx.stack.revdoor_user, ctx.stack.revdoor_password, proxy.listen
        );
        let mut c = ctx.conn(server).await;
        let before = round_trip_counters(&mut c).await;
        let load_before = loadavg();
        let apply = spawn_apply(&ctx, &format!("apply-{ms}ms"), &target, &k);
        let t = Instant::now();
        let mut polls = 0u64;
        let mut max = -1;
        while max < txns - 1 && t.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(100)).await;
            max = ledger_max(&mut c, &db).await;
            polls += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        let after = round_trip_counters(&mut c).await;
        let applied = (max + 1) as f64;
        let d = |i: usize| after[i].saturating_sub(before[i]);
        // This poller's own statements: its polls and one SHOW STATUS.
        let questions = d(0).saturating_sub(polls + 1);
        let groups = d(3).max(1) as f64;
        let per = |v: u64| (v as f64 / groups * 10.0).round() / 10.0;
        let r = serde_json::json!({
            "applied_txns": applied,
            "secs": (secs * 10.0).round() / 10.0,
            "drained": max == txns - 1,
            "txns_per_s": (applied / secs).round(),
            "rows_per_s": (2.0 * applied / secs).round(),
            "commits": d(3),
            "txns_per_commit": (applied / groups * 10.0).round() / 10.0,
            "statements_per_commit": per(questions),
            "prepares_per_commit": per(d(1)),
            "executes_per_commit": per(d(2)),
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        });
        println!("BENCH latency drain {ms}ms {r}");
        result[format!("drain_{ms}ms")] = r;
        running.push((ms, server, proxy, apply, c));
    }
    // 2. A steady offered rate, every apply running.
    let mut src_ids = txns;
    let mut starts = Vec::new();
    for (_, _, _, _, c) in running.iter_mut() {
        let counters = round_trip_counters(c).await;
        starts.push((ledger_max(c, &db).await, counters));
    }
    let load_before = loadavg();
    // `writers` connections, each offering rate / writers: writer w takes
    // ids txns + w, txns + w + writers, … (one connection alone stayed
    // near 220/s on a loaded machine); applied and behind are read from
    // the ledger's largest id, so with several writers they are off by
    // the few transactions one writer got ahead of another.
    let writers = env_num("REVDOOR_BENCH_LAT_WRITERS", 1).max(1) as i64;
    let period = Duration::from_secs_f64(writers as f64 / rate as f64);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut conn = ctx.conn(source).await;
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut next = Instant::now();
            let mut id = txns + w;
            while t.elapsed() < Duration::from_secs(offer_secs) {
                bank::txn(&mut conn, &db, id).await;
                id += writers;
                next += period;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(d).await;
                }
            }
            (id - txns - w) / writers
        }));
    }
    for task in tasks {
        src_ids += task.await.expect("writer");
    }
    let offered = (src_ids - txns) as f64 / t.elapsed().as_secs_f64();
    // Whatever arrived within 2 s of the writer's end counts (the capture
    // and poll delay); the window is the writer's.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for ((ms, _, _, apply, c), (start, before)) in running.iter_mut().zip(starts) {
        let end = ledger_max(c, &db).await;
        let after = round_trip_counters(c).await;
        let applied = (end - start) as f64 / offer_secs as f64;
        // Commits over the window and a little after (the counters are read
        // after the 2 s grace): an approximate transactions per commit.
        let commits = after[3].saturating_sub(before[3]).max(1) as f64;
        let r = serde_json::json!({
            "offered_txns_per_s": offered.round(),
            "applied_txns_per_s": applied.round(),
            "applied_rows_per_s": (2.0 * applied).round(),
            "behind_txns_at_end": src_ids - 1 - end,
            "commits": after[3].saturating_sub(before[3]),
            "txns_per_commit": ((end - start) as f64 / commits * 10.0).round() / 10.0,
        });
        println!("BENCH latency offered {ms}ms {r}");
        result[format!("offered_{ms}ms")] = r;
        assert!(
            apply.exited().is_none(),
            "apply at {ms} ms exited:\n{}",
            apply.log_text()
        );
    }
    result["offered_loadavg_before"] = serde_json::json!(load_before);
    result["offered_loadavg_after"] = serde_json::json!(loadavg());
    for (_, _, _, apply, _) in running.iter_mut() {
        apply.stop(Duration::from_secs(20));
    }
    capture.stop(Duration::from_secs(20));
    println!("BENCH {result}");
    if let Ok(out) = std::env::var("REVDOOR_BENCH_OUT") {
        std::fs::write(out, serde_json::to_string_pretty(&result).expect("json"))
            .expect("write result");
    }
}
