//! The copy phase (issue 3, "Copy"): a large table is copied with DBLog
//! watermarks while writers insert, update and delete in it, and capture
//! crashes mid-copy (SIGKILL, and the `copy::between_watermarks`
//! failpoint). After apply, target equals source by a checksum query and by
//! `CHECKSUM TABLE`. Size: `REVDOOR_COPY_ROWS` (default 1000000).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_tests::{args, env_num, Chaos, TestCtx};

const DDL: &str = "CREATE TABLE big (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    grp INT NOT NULL,
    name VARCHAR(64) CHARACTER SET utf8mb4 NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    seen DATETIME(3) NOT NULL,
    KEY (grp))";

/// Row count and an order-independent checksum of every column.
async fn checksum(conn: &mut mysql_async::Conn, db: &str) -> (u64, u64) {
    conn.query_first(format!(
        "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', id, grp, name, amount, seen))), 0) FROM {db}.big"
    ))
    .await
    .expect("checksum")
    .unwrap_or((0, 0))
}

async fn checksum_table(conn: &mut mysql_async::Conn, db: &str) -> Option<u64> {
    let row: Option<(String, Option<u64>)> = conn
        .query_first(format!("CHECKSUM TABLE {db}.big"))
        .await
        .expect("CHECKSUM TABLE");
    row.and_then(|r| r.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_table_is_copied_under_writes_and_crashes() {
    let rows = env_num("REVDOOR_COPY_ROWS", 1_000_000);
    let ctx = TestCtx::new("capture_copy");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2]).await;
    ctx.sql(1, &[&format!("USE {db}"), DDL]).await;
    ctx.sql(2, &[&format!("USE {db}"), DDL]).await;
    let mut src = ctx.conn(1).await;
    let t0 = Instant::now();
    src.query_drop(format!(
        "INSERT INTO {db}.big SELECT seq, seq % 97, CONCAT('name-', seq, '-ü'), seq / 100, \
         '2026-01-01 00:00:00.000' + INTERVAL seq SECOND FROM mysql.seq_1_to_{rows}"
    ))
    .await
    .expect("load rows");
    eprintln!("loaded {rows} rows in {:.1}s", t0.elapsed().as_secs_f64());

    let source = ctx.revdoor_url(1);
    let target = ctx.revdoor_url(2);
    let table = format!("{db}.big");
    let cap_args = vec![
        "capture".to_string(),
        "run".into(),
        "--workflow".into(),
        ctx.workflow.clone(),
        "--source".into(),
        source,
        "--tables".into(),
        table,
        "--copy".into(),
        "--copy-chunk-rows".into(),
        "2000".into(),
    ];
    let mut apply = ctx.spawn("apply", &args(&ctx.apply_args(&target)));
    // First run crashes itself between two watermarks of a chunk.
    let mut capture = ctx.spawn_env(
        "capture-0",
        &args(&cap_args),
        &[(
            "FAILPOINTS",
            "copy::between_watermarks=20*off->panic(failpoint copy::between_watermarks)",
        )],
    );

    // Writers: inserts past the loaded ids, updates and deletes anywhere.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let mut conn = ctx.conn(1).await;
        let (db, stop, writes) = (db.clone(), Arc::clone(&stop), Arc::clone(&writes));
        writers.push(tokio::spawn(async move {
            let mut rng = Chaos::from_env();
            let mut next = rows + 1 + w;
            while !stop.load(Ordering::Relaxed) {
                let id = rng.range(1, rows + 1);
                let stmt = match rng.range(0, 3) {
                    0 => {
                        next += 4;
                        format!("INSERT INTO {db}.big VALUES ({next}, 1, 'new', 1.50, NOW(3))")
                    }
                    1 => format!("UPDATE {db}.big SET amount = amount + 1, name = CONCAT(name, '+') WHERE id = {id}"),
                    _ => format!("DELETE FROM {db}.big WHERE id = {id}"),
                };
                conn.query_drop(stmt).await.expect("write");
                writes.fetch_add(1, Ordering::Relaxed);
                // A steady load (~800 writes/s from 4 writers), not a flood.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    // The failpoint ends the first run; the second is SIGKILLed mid-copy.
    capture.wait_exit(Duration::from_secs(120)).await;
    assert!(
        capture
            .log_text()
            .contains("failpoint copy::between_watermarks"),
        "{}",
        capture.log_text()
    );
    let mut capture = ctx.spawn("capture-1", &args(&cap_args));
    tokio::time::sleep(Duration::from_secs(3)).await; // let it copy a while: this is the chaos moment
    assert!(
        capture.exited().is_none(),
        "capture-1 died:\n{}",
        capture.log_text()
    );
    capture.kill9();
    let mut capture = ctx.spawn("capture-2", &args(&cap_args));

    // Let the copy finish under writes, then stop writing and converge.
    let deadline = Instant::now() + Duration::from_secs(1200);
    while !capture.log_text().contains("copy phase complete") {
        assert!(
            capture.exited().is_none(),
            "capture-2 died:\n{}",
            capture.log_text()
        );
        assert!(
            apply.exited().is_none(),
            "apply died:\n{}",
            apply.log_text()
        );
        assert!(Instant::now() < deadline, "copy did not complete");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    eprintln!(
        "copy complete after {:.0}s with {} concurrent writes",
        t0.elapsed().as_secs_f64(),
        writes.load(Ordering::Relaxed)
    );

    let want = checksum(&mut src, &db).await;
    let mut dst = ctx.conn(2).await;
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let got = checksum(&mut dst, &db).await;
        if got == want {
            break;
        }
        assert!(
            apply.exited().is_none(),
            "apply died:\n{}",
            apply.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "target {got:?} never reached source {want:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        checksum_table(&mut dst, &db).await,
        checksum_table(&mut src, &db).await,
        "CHECKSUM TABLE agrees"
    );
    eprintln!(
        "target equals source ({} rows) after {:.0}s",
        want.0,
        t0.elapsed().as_secs_f64()
    );
    capture.stop(Duration::from_secs(20));
    apply.stop(Duration::from_secs(20));
    apply.assert_no_unexpected_errors(&[]);
}
