//! Apply through a slow network groups what is waiting (issue 18 item 7).
//!
//! On a destination 100 ms away (a Toxiproxy latency toxic on every reply)
//! each group costs a few round trips, so what bounds the apply is how many
//! source transactions a group carries. A backlog — the capture's
//! heartbeats of an idle source (one a second), then bank transactions
//! (an `accounts` UPDATE and a `ledger` INSERT each) — is applied by
//! `revdoor apply run --parallelism 1` (one DB commit per group), and the
//! destination's `Com_commit` counts the groups. Before, every heartbeat
//! of the backlog was a group of its own (a commit, ≈ 0.5 s at 100 ms), and
//! a group held at most 200 transactions, so a backlog of heartbeats took
//! as many seconds as it had been idle and a steady load above ≈ 130
//! transactions/s was never caught up. Now a run of heartbeats is
//! checkpointed once, at the last of them, and a group holds what arrived
//! while the one before was applied, up to 1,000 transactions.
//!
//! Asserts on commits, not on time; prints both.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_tests::{bank, gtid_pos, read_partition, wait_for, TestCtx};

/// The destination's `Com_commit`.
async fn commits(c: &mut mysql_async::Conn) -> u64 {
    let row: Option<(String, String)> = c
        .query_first("SHOW GLOBAL STATUS LIKE 'Com_commit'")
        .await
        .expect("Com_commit");
    row.and_then(|(_, v)| v.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_through_100ms_is_applied_in_a_few_groups() {
    let txns = 900i64;
    let ctx = TestCtx::new("apply_slow_network");
    let maria = ctx.stack.mariadb_servers();
    let (source, target) = (maria[0], maria[1]);
    let db = ctx.db.clone();
    ctx.create_db(&[source, target]).await;
    bank::create_tables(&ctx, &[source, target]).await;
    let mut src = ctx.conn(source).await;
    let start = gtid_pos(&mut src).await;
    let mut capture = bank::capture(&ctx, source, &start);
    // An idle source: the capture publishes a heartbeat a second.
    tokio::time::sleep(Duration::from_secs(20)).await;
    for id in 0..txns {
        bank::txn(&mut src, &db, id).await;
    }
    // Everything published (and a few heartbeats after it).
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let kafka = ctx.stack.kafka.clone();
    let msgs = wait_for("the backlog published", Duration::from_secs(120), || {
        let (kafka, topic) = (kafka.clone(), topic.clone());
        async move {
            let msgs = read_partition(&kafka, &topic, 0).await?;
            let changes = msgs.iter().filter(|m| m.2.first() != Some(&b'{')).count();
            Ok((changes as i64 == 2 * txns).then_some(msgs))
        }
    })
    .await
    .expect("published");
    capture.stop(Duration::from_secs(20));
    let heartbeats = msgs.iter().filter(|m| m.2.first() == Some(&b'{')).count();
    let last = msgs.last().map(|m| m.0).expect("messages");

    let toxi = revdoor_tests::toxi::Toxi::of(ctx.stack);
    let admin = ctx.admin_opts(target);
    let proxy = toxi.proxy(
        &format!("slownet{}", std::process::id()),
        &format!("{}:{}", admin.ip_or_hostname(), admin.tcp_port()),
    );
    proxy.latency(100);
    let url = format!(
        "mysql://{}:{}@{}",
        ctx.stack.revdoor_user, ctx.stack.revdoor_password, proxy.listen
    );
    let mut t = ctx.conn(target).await;
    let before = commits(&mut t).await;
    let began = Instant::now();
    let mut apply = ctx.spawn(
        "apply",
        &[
            "apply",
            "run",
            "--workflow",
            &ctx.workflow,
            "--target",
            &url,
            "--parallelism",
            "1",
        ],
    );
    let wf = ctx.workflow.clone();
    wait_for(
        "the checkpoint at the last message read",
        Duration::from_secs(300),
        || {
            let (ctx, wf) = (&ctx, wf.clone());
            async move {
                let mut t = ctx.conn(target).await;
                let at: Option<i64> = t
                    .exec_first(
                        "SELECT kafka_offset FROM _revdoor.stream_state \
                         WHERE workflow = ? AND direction = 'forward' AND `partition` = 0",
                        (wf,),
                    )
                    .await?;
                Ok((at >= Some(last)).then_some(()))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", apply.log_text()));
    let secs = began.elapsed().as_secs_f64();
    let groups = commits(&mut t).await - before;
    let n: Option<i64> = t
        .query_first(format!("SELECT COUNT(*) FROM {db}.ledger"))
        .await
        .expect("count");
    assert_eq!(n, Some(txns), "every transaction applied");
    println!(
        "backlog of {heartbeats} heartbeats and {txns} transactions through 100 ms: \
         {groups} commits (groups and the stream's takeover), {secs:.1} s"
    );
    // The takeover of the checkpoint row (a commit or two), the groups
    // handed over while the applier was idle at the start, the heartbeats'
    // run, the transactions (fewer than a group's 1,000) and the heartbeats
    // after them. Before: a commit per heartbeat and per 200 transactions.
    assert!(heartbeats >= 12, "an idle source heartbeats: {heartbeats}");
    assert!(
        groups <= 8,
        "{groups} commits for {heartbeats} heartbeats and {txns} transactions: \
         a run of heartbeats is one checkpoint, and a group carries what \
         arrived while the one before was applied"
    );
    apply.stop(Duration::from_secs(20));
    apply.assert_no_unexpected_errors(&[]);
}
