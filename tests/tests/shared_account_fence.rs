//! Fences hold for every client (issue 17): an application that shares
//! revdoor's own account — the user of the shard URLs — is refused on the
//! fenced side like any other, while apply, which proves itself with the
//! side's fence pass, keeps applying there.
//!
//! - Before any switch the target (fenced since `create`) refuses a write
//!   made with revdoor's account.
//! - The bank writer and the prober run *as revdoor's account*: after
//!   `switch-traffic` the source refuses it (0 writes accepted), and after
//!   `reverse-traffic` the target does; the reverse and forward streams
//!   apply through those fences all along (both sides converge, every
//!   acknowledged write on both, invariants hold).
//! - A session holding the source's pass from before the switch is refused
//!   once the switch fenced the source: the fence rotated the pass.
//!
//! Run once with MariaDB on both sides and once MySQL → MariaDB, so that
//! both engines' triggers are fenced.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use revdoor_tests::door::Door;
use revdoor_tests::stack;

/// A connection to server `i` as revdoor's own account.
async fn as_revdoor(door: &Door, i: usize) -> Conn {
    let opts = Opts::from_url(&door.ctx.revdoor_url(i)).expect("revdoor URL");
    Conn::new(opts).await.expect("connect as revdoor")
}

/// Insert a ledger row with op id `op` as revdoor's account on server `i`,
/// autocommit: the server's answer.
async fn write(door: &Door, i: usize, op: i64) -> Result<(), mysql_async::Error> {
    let mut c = as_revdoor(door, i).await;
    c.query_drop(format!(
        "INSERT INTO {}.ledger (op_id, account_id, amount) VALUES ({op}, 1, 0)",
        door.ctx.db
    ))
    .await
}

/// Ledger rows with op id `op` on server `i`.
async fn rows(door: &Door, i: usize, op: i64) -> i64 {
    let mut c = door.ctx.conn(i).await;
    c.query_first(format!(
        "SELECT COUNT(*) FROM {}.ledger WHERE op_id = {op}",
        door.ctx.db
    ))
    .await
    .expect("count")
    .unwrap_or(-1)
}

/// A write with revdoor's account on fenced server `i` is refused by the
/// fence, naming the workflow, and leaves nothing.
async fn refused(door: &Door, i: usize, op: i64, when: &str) {
    match write(door, i, op).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.state, "45000", "{when}: {e:?}");
            assert!(
                e.message.contains(&door.ctx.workflow),
                "{when}: the refusal names the workflow: {}",
                e.message
            );
        }
        other => panic!("{when}: a write with revdoor's account was not refused: {other:?}"),
    }
    assert_eq!(
        rows(door, i, op).await,
        0,
        "{when}: the refused row is there"
    );
}

async fn shared_account(door: Door) {
    let (source, target) = (door.source, door.target[0].1);
    let out = door.create_workflow();
    assert!(out.ok, "workflow create: {}{}", out.stdout, out.stderr);
    refused(&door, target, -1, "target before any switch").await;

    let mut c1 = door.coordinator("c1", &[]);
    let mut w1 = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(30)).await;

    // The application uses revdoor's own account.
    let url = Opts::from_url(&door.ctx.revdoor_url(source)).expect("revdoor URL");
    let user = format!("--user={}", url.user().expect("user"));
    let password = format!("--password={}", url.pass().unwrap_or_default());
    let account = [user.as_str(), password.as_str()];
    let mut writer = door.writer_with("writer", 1, 100, &account);
    let mut prober = door.prober_with("prober", &account);

    // A session that holds the source's pass of before the switch.
    let mut stale = door.ctx.through_fence(source, "source").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &["--timeout", "30s"]);
    assert!(out.ok, "switch-traffic: {}{}", out.stdout, out.stderr);
    refused(&door, source, -2, "source after switch-traffic").await;
    let r = stale
        .query_drop(format!(
            "INSERT INTO {}.ledger (op_id, account_id, amount) VALUES (-3, 1, 0)",
            door.ctx.db
        ))
        .await;
    assert!(
        matches!(&r, Err(mysql_async::Error::Server(e)) if e.state == "45000"),
        "a session holding the pass of before the fence wrote through it: {r:?}"
    );
    assert_eq!(rows(&door, source, -3).await, 0);
    // Writes keep landing on the target and the reverse stream applies
    // them on the fenced source.
    tokio::time::sleep(Duration::from_secs(2)).await;

    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("reverse-traffic", &["--timeout", "30s"]);
    assert!(out.ok, "reverse-traffic: {}{}", out.stdout, out.stderr);
    refused(&door, target, -4, "target after reverse-traffic").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let w = door.finish_load(&mut writer, "writer").await;
    let p = door.finish_load(&mut prober, "prober").await;
    assert_eq!(
        p["violations"], 0,
        "a write with revdoor's account passed a fence: {p}"
    );
    assert!(
        p["probes_refused"].as_u64().unwrap_or(0) > 50,
        "prober barely probed: {p}"
    );
    assert!(
        w["acked"].as_u64().unwrap_or(0) > 200,
        "writer barely wrote: {w}"
    );
    door.wait_converged(Duration::from_secs(60)).await;
    let n = door
        .check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("invariants: {e:#}"));
    eprintln!(
        "shared account: {n} acknowledged writes through both switches, {} probes refused, {} fenced retries",
        p["probes_refused"], w["fenced_retries"]
    );
    c1.stop(Duration::from_secs(10));
    w1.stop(Duration::from_secs(30));
    c1.assert_no_unexpected_errors(&[]);
    w1.assert_no_unexpected_errors(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_account_is_fenced_mariadb() {
    let ma = stack().mariadb_servers();
    assert!(ma.len() >= 2, "needs two MariaDB servers");
    shared_account(Door::create("shared_acct_ma", ma[0], &[("-", ma[1])], 50).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_account_is_fenced_mysql_to_mariadb() {
    let (my, ma) = (stack().mysql_servers(), stack().mariadb_servers());
    assert!(
        !my.is_empty() && ma.len() >= 2,
        "needs a MySQL and two MariaDB servers"
    );
    shared_account(Door::create("shared_acct_my", my[0], &[("-", ma[1])], 50).await).await;
}
