//! A big source transaction is streamed by apply into one open DB
//! transaction part by part (issue 17, "bounded memory for any
//! transaction"), and stays atomic and exactly once: the apply process is
//! SIGKILLed while the transaction is half applied, then crashes itself at
//! a failpoint between two parts, and each time the destination shows none
//! of it; the restarted apply ends with the destination equal to the source,
//! row for row (no duplicate, none missing), with small transactions before
//! and after it in order. From a MariaDB origin into MariaDB and MySQL, and
//! from a MySQL origin into MySQL and MariaDB.
//!
//! Size: `REVDOOR_BIG_TXN_ROWS` rows inserted in the big transaction
//! (default 200,000; at least 20,000 so that it streams in several parts);
//! a tenth of them are then updated and a hundredth deleted in the same
//! transaction. Memory is measured in `bench/apply`, not asserted here.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use revdoor_tests::{args, env_num, gtid_pos, wait_for, Revdoor, TestCtx};

/// Rows of a streamed part (apply's `STREAM_PART_EVENTS`).
const PART: u64 = 5000;

/// The big transaction in 1,000-row statements (portable across engines),
/// with small transactions before and after it.
async fn write_source(src: &mut mysql_async::Conn, db: &str, n: u64) {
    for id in n + 1..=n + 10 {
        src.query_drop(format!(
            "INSERT INTO {db}.t VALUES ({id}, {id}, 'before-{id}')"
        ))
        .await
        .expect("small insert");
    }
    src.query_drop("BEGIN").await.expect("begin");
    for from in (1..=n).step_by(1000) {
        let values: Vec<String> = (from..(from + 1000).min(n + 1))
            .map(|i| format!("({i}, {}, 'row-{i:08}-of-the-big-transaction')", i * 7))
            .collect();
        src.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(",")))
            .await
            .expect("big insert");
    }
    src.query_drop(format!("UPDATE {db}.t SET a = a + 1 WHERE id % 10 = 0"))
        .await
        .expect("big update");
    src.query_drop(format!("DELETE FROM {db}.t WHERE id % 100 = 1"))
        .await
        .expect("big delete");
    src.query_drop("COMMIT").await.expect("commit");
    src.query_drop(format!("UPDATE {db}.t SET b = 'after' WHERE id = 5"))
        .await
        .expect("small update");
    src.query_drop(format!("INSERT INTO {db}.t VALUES (0, 0, 'last')"))
        .await
        .expect("small insert");
}

/// Rows of the big transaction visible (committed) on the destination.
async fn visible(ctx: &TestCtx, server: usize, n: u64) -> u64 {
    ctx.conn(server)
        .await
        .query_first(format!("SELECT COUNT(*) FROM {}.t WHERE id <= {n}", ctx.db))
        .await
        .expect("count")
        .unwrap_or(0)
}

/// Rows changed so far by the largest open transaction on `server`.
async fn open_rows(ctx: &TestCtx, server: usize) -> u64 {
    let r: Option<Option<u64>> = ctx
        .conn(server)
        .await
        .query_first("SELECT MAX(trx_rows_modified) FROM information_schema.INNODB_TRX")
        .await
        .expect("read INNODB_TRX");
    r.flatten().unwrap_or(0)
}

/// Apply the workflow's partition into `server`: SIGKILLed half-way
/// through the big transaction, crashed at `apply::streamed_part`, then run
/// to the end; the destination never shows part of it and ends equal to
/// the source.
async fn apply_into(ctx: &TestCtx, source: usize, server: usize, n: u64) {
    let target = ctx.revdoor_url(server);
    let apply_args = ctx.apply_args(&target);
    // 1. SIGKILL once the open DB transaction changed a third of the rows.
    let mut apply = ctx.spawn(&format!("apply-{server}-0"), &args(&apply_args));
    wait_for(
        "the big transaction half applied",
        Duration::from_secs(600),
        || async {
            let v = visible(ctx, server, n).await;
            assert_eq!(
                v, 0,
                "#{server} shows {v} rows of an uncommitted transaction"
            );
            Ok((open_rows(ctx, server).await >= n / 3).then_some(()))
        },
    )
    .await
    .expect("half applied");
    apply.kill9();
    assert!(
        apply
            .log_text()
            .contains("streaming a big source transaction"),
        "apply into #{server} did not stream the big transaction:\n{}",
        apply.log_text()
    );
    assert_eq!(
        visible(ctx, server, n).await,
        0,
        "#{server}: rows of the killed transaction visible"
    );
    // 2. A crash of its own between two parts (panic = abort).
    let parts = (n / PART).min(12);
    let spec = format!(
        "apply::streamed_part={}*off->panic(failpoint apply::streamed_part)",
        parts / 2
    );
    let mut apply = ctx.spawn_env(
        &format!("apply-{server}-1"),
        &args(&apply_args),
        &[("FAILPOINTS", &spec)],
    );
    apply.wait_exit(Duration::from_secs(600)).await;
    assert!(
        apply.log_text().contains("failpoint apply::streamed_part"),
        "apply into #{server} did not crash at the failpoint:\n{}",
        apply.log_text()
    );
    assert_eq!(
        visible(ctx, server, n).await,
        0,
        "#{server}: rows of the crashed transaction visible"
    );
    // 3. To the end.
    let mut apply: Revdoor = ctx.spawn(&format!("apply-{server}-2"), &args(&apply_args));
    wait_for("the last row applied", Duration::from_secs(900), || async {
        let last: Option<String> = ctx
            .conn(server)
            .await
            .query_first(format!("SELECT b FROM {}.t WHERE id = 0", ctx.db))
            .await
            .expect("read last row");
        Ok(last.map(|_| ()))
    })
    .await
    .expect("applied");
    let (want, got) = (ctx.rows(source, "t").await, ctx.rows(server, "t").await);
    // Rows 1..=n + 10 but those the big transaction deleted, and row 0.
    let expected = (1..=n + 10).filter(|i| i % 100 != 1).count() as u64 + 1;
    assert_eq!(want.len() as u64, expected, "source rows");
    assert_eq!(got.len(), want.len(), "#{server}: row count");
    assert!(got == want, "#{server}: destination differs from source");
    assert!(
        apply
            .log_text()
            .contains("big source transaction applied; committing"),
        "apply into #{server} committed the big transaction without streaming it"
    );
    apply.stop(Duration::from_secs(20));
    apply.assert_no_unexpected_errors(&[]);
}

async fn big_transaction_exactly_once(name: &str, source: usize, targets: &[usize]) {
    let n = env_num("REVDOOR_BIG_TXN_ROWS", 200_000);
    assert!(
        n >= 4 * PART,
        "REVDOOR_BIG_TXN_ROWS={n}: use at least {} so that the transaction streams in parts",
        4 * PART
    );
    let ctx = TestCtx::new(name);
    let db = ctx.db.clone();
    let mut servers = vec![source];
    servers.extend_from_slice(targets);
    ctx.create_db(&servers).await;
    for &s in &servers {
        ctx.sql(
            s,
            &[&format!(
                "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, a BIGINT NOT NULL, b VARCHAR(64) NOT NULL)"
            )],
        )
        .await;
    }
    let mut src = ctx.conn(source).await;
    let start = gtid_pos(&mut src).await;
    write_source(&mut src, &db, n).await;
    // Apply reads committed Kafka transactions only: it sees the big one
    // once capture published all of it.
    let mut capture = ctx.spawn(
        "capture",
        &args(&ctx.capture_args(&ctx.revdoor_url(source), &format!("{db}.t"), &start)),
    );
    for &t in targets {
        apply_into(&ctx, source, t, n).await;
    }
    capture.stop(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_transaction_from_mariadb_into_mariadb_and_mysql() {
    let stack = revdoor_tests::stack();
    let (maria, mysql) = (stack.mariadb_servers(), stack.mysql_servers());
    assert!(
        maria.len() >= 2 && !mysql.is_empty(),
        "needs two MariaDB and one MySQL server (deploy/stack up --mariadb 2 --mysql 1)"
    );
    big_transaction_exactly_once("apply_big_maria", maria[0], &[maria[1], mysql[0]]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_transaction_from_mysql_into_mysql_and_mariadb() {
    let stack = revdoor_tests::stack();
    let (maria, mysql) = (stack.mariadb_servers(), stack.mysql_servers());
    assert!(
        maria.len() >= 2 && mysql.len() >= 2,
        "needs two MariaDB and two MySQL servers (deploy/stack up --mariadb 2 --mysql 2)"
    );
    big_transaction_exactly_once("apply_big_mysql", mysql[0], &[mysql[1], maria[1]]).await;
}
