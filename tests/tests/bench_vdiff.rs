//! VDiff benchmark (issue 6), run by `bench/vdiff`; not part of the test
//! suite (`#[ignore]`): speed is measured here, never asserted.
//!
//! On the real stack, with `REVDOOR_BIN` (a release build), a bank workflow
//! of `REVDOOR_BENCH_ROWS` accounts (default 1M), unsharded → 2 shards:
//! 1. `CHECKSUM TABLE accounts` on the source and on each target shard (the
//!    servers' own full-table checksum: the floor of "read every row");
//! 2. `vdiff create` with the tables idle: rows compared per second;
//! 3. the same with the bank writer at 200 ops/s on the source: rows/s,
//!    what the diff added on the source (mysqld CPU seconds and
//!    `Handler_read_*` during the diff, against an idle interval of the
//!    same length) and the pause of the consistent point.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_tests::door::Door;
use revdoor_tests::env_num;

fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn mysqld_pid(server: usize) -> u32 {
    let dir = std::env::var("REVDOOR_STACK_DIR").unwrap_or_else(|_| ".stack".into());
    std::fs::read_to_string(format!("{dir}/mariadb-{server}/mysqld.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

async fn rows_read(door: &Door, server: usize) -> u64 {
    let mut c = door.ctx.conn(server).await;
    // MariaDB 10.11 has no Innodb_rows_read: rows the handlers read.
    let r: Option<u64> = c
        .query_first(
            "SELECT CAST(SUM(VARIABLE_VALUE) AS UNSIGNED) FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME LIKE 'HANDLER_READ%'",
        )
        .await
        .expect("status");
    r.expect("Handler_read_* counters")
}

/// Run a vdiff; (seconds, rows compared, pause ms).
fn timed_vdiff(door: &Door) -> (f64, u64, u64) {
    let t = Instant::now();
    let o = door
        .ctx
        .run(&["vdiff", "create", &door.ctx.workflow, "--json"]);
    let secs = t.elapsed().as_secs_f64();
    let rec: serde_json::Value = serde_json::from_slice(&o.stdout).expect("vdiff JSON");
    assert_eq!(rec["state"], "completed", "{rec}");
    let rows = rec["tables"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["processed"].as_u64()).sum())
        .unwrap_or(0);
    (secs, rows, rec["pauses"][0]["ms"].as_u64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with bench/vdiff"]
async fn vdiff_rate_beside_checksum_table() {
    let accounts = i64::try_from(env_num("REVDOOR_BENCH_ROWS", 1_000_000)).unwrap_or(1_000_000);
    let door = Door::create("bench_vdiff", 1, &[("-80", 2), ("80-", 3)], accounts).await;
    let out = door.create_workflow();
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let _c = door.coordinator("c1", &[]);
    let _w = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(600)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;
    let db = door.ctx.db.clone();

    // 1. CHECKSUM TABLE on every server, one after the other.
    let mut checksum_secs = Vec::new();
    for server in [door.source, door.target[0].1, door.target[1].1] {
        let mut c = door.ctx.conn(server).await;
        let t = Instant::now();
        c.query_drop(format!("CHECKSUM TABLE {db}.accounts"))
            .await
            .expect("checksum");
        checksum_secs.push(t.elapsed().as_secs_f64());
    }
    let checksum_total: f64 = checksum_secs.iter().sum();
    let n = accounts as f64;
    println!(
        "BENCH checksum_table source {:.2} s, target shards {:.2} + {:.2} s: {:.0} rows/s per side (source), {:.0} rows/s both sides in sequence",
        checksum_secs[0],
        checksum_secs[1],
        checksum_secs[2],
        n / checksum_secs[0],
        n / checksum_total
    );

    // 2. Idle tables.
    let pid = mysqld_pid(door.source);
    let (cpu0, read0) = (cpu_secs(pid), rows_read(&door, door.source).await);
    let (secs, rows, pause) = timed_vdiff(&door);
    let (cpu1, read1) = (cpu_secs(pid), rows_read(&door, door.source).await);
    println!(
        "BENCH vdiff_idle {rows} rows in {secs:.2} s = {:.0} rows/s (CHECKSUM TABLE on all three servers took {:.2} s, {:.1}× less); pause {pause} ms; source mysqld {:.2} CPU-s, {} rows read",
        rows as f64 / secs,
        checksum_total,
        secs / checksum_total,
        cpu1 - cpu0,
        read1 - read0
    );

    // 3. Under the writer; the same interval without a diff first.
    let mut writer = door.writer("writer", 1, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu_a, read_a) = (cpu_secs(pid), rows_read(&door, door.source).await);
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (cpu_b, read_b) = (cpu_secs(pid), rows_read(&door, door.source).await);
    let (secs2, rows2, pause2) = timed_vdiff(&door);
    let (cpu_c, read_c) = (cpu_secs(pid), rows_read(&door, door.source).await);
    let base_cpu = (cpu_b - cpu_a) * secs2 / secs;
    println!(
        "BENCH vdiff_under_load {rows2} rows in {secs2:.2} s = {:.0} rows/s; pause {pause2} ms; source mysqld {:.2} CPU-s during the diff vs {:.2} for the writer alone over as long (+{:.2} CPU-s, {:.0} % of one core); rows read +{}",
        rows2 as f64 / secs2,
        cpu_c - cpu_b,
        base_cpu,
        (cpu_c - cpu_b) - base_cpu,
        100.0 * ((cpu_c - cpu_b) - base_cpu) / secs2,
        (read_c - read_b).saturating_sub((read_b - read_a) * (secs2 / secs) as u64)
    );
    let summary = door.finish_load(&mut writer, "writer").await;
    println!("BENCH writer {summary}");
    if let Ok(path) = std::env::var("REVDOOR_BENCH_OUT") {
        let json = serde_json::json!({
            "rows": accounts,
            "checksum_table_secs": checksum_secs,
            "vdiff_idle": {"secs": secs, "rows": rows, "pause_ms": pause, "source_cpu_secs": cpu1 - cpu0},
            "vdiff_under_load": {"secs": secs2, "rows": rows2, "pause_ms": pause2,
                "source_cpu_secs": cpu_c - cpu_b, "writer_alone_cpu_secs": base_cpu},
        });
        std::fs::write(
            path,
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        )
        .ok();
    }
}
