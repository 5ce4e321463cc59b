//! Resharding (issue 4): unsharded → 4 shards (`-40`, `40-80`, `80-c0`,
//! `c0-`) and 4 shards → unsharded, with writes that touch several shards,
//! move rows across shards and delete. The union of the destination shards
//! equals the source and every row sits on the shard of its keyspace id.
//! Uses MariaDB #1 and #2..#5 (the test stack has five servers).

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_tests::{args, gtid_pos, Revdoor, TestCtx};

const SHARDS: [&str; 4] = ["-40", "40-80", "80-c0", "c0-"];
const DDL: &str = "CREATE TABLE acct (id BIGINT PRIMARY KEY, v INT NOT NULL)";

fn shard_of(id: i64) -> usize {
    let ks = keyspace_id(&[KeyValue::Int(id)]);
    SHARDS
        .iter()
        .position(|r| r.parse::<KeyRange>().expect("range").contains(ks))
        .expect("some shard")
}

fn sorted(mut rows: Vec<Vec<Option<String>>>) -> Vec<Vec<Option<String>>> {
    rows.sort_by_key(|r| r[0].as_deref().and_then(|v| v.parse::<i64>().ok()));
    rows
}

async fn union(ctx: &TestCtx, servers: &[usize]) -> Vec<Vec<Option<String>>> {
    let mut all = Vec::new();
    for &s in servers {
        all.extend(ctx.rows(s, "acct").await);
    }
    sorted(all)
}

fn alive(procs: &mut [Revdoor]) {
    for p in procs {
        assert!(p.exited().is_none(), "{} died:\n{}", p.name, p.log_text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsharded_to_four_shards() {
    let ctx = TestCtx::new("reshard_1_to_4");
    assert!(
        ctx.stack.mysql.len() >= 5,
        "needs a stack with 5 MariaDB servers (deploy/stack up --mariadb 5)"
    );
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2, 3, 4, 5]).await;
    for i in 1..=5 {
        ctx.sql(i, &[&format!("USE {db}"), DDL]).await;
    }
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let mut cap = ctx.capture_args(&ctx.revdoor_url(1), &format!("{db}.acct"), &start);
    cap.extend(["--partitions".to_string(), "4".to_string()]);
    for (p, r) in SHARDS.iter().enumerate() {
        cap.extend(["--route".to_string(), format!("{r}={p}")]);
    }
    let mut procs = vec![ctx.spawn("capture", &args(&cap))];
    for p in 0..4 {
        let mut a = ctx.apply_args(&ctx.revdoor_url(p + 2));
        a.extend(["--partition".to_string(), p.to_string()]);
        procs.push(ctx.spawn(&format!("apply-{p}"), &args(&a)));
    }
    for k in 0..250 {
        let rows: Vec<String> = (0..8)
            .map(|j| format!("({}, {k})", k * 8 + j + 1))
            .collect();
        src.query_drop(format!("INSERT INTO {db}.acct VALUES {}", rows.join(", ")))
            .await
            .expect("insert");
    }
    src.query_drop(format!("UPDATE {db}.acct SET v = v + 1 WHERE id % 3 = 0"))
        .await
        .expect("update");
    src.query_drop(format!(
        "UPDATE {db}.acct SET id = id + 1000000 WHERE id % 5 = 0"
    ))
    .await
    .expect("move");
    src.query_drop(format!("DELETE FROM {db}.acct WHERE id % 7 = 0"))
        .await
        .expect("delete");

    let want = sorted(ctx.rows(1, "acct").await);
    let deadline = Instant::now() + Duration::from_secs(90);
    while union(&ctx, &[2, 3, 4, 5]).await != want {
        alive(&mut procs);
        assert!(
            Instant::now() < deadline,
            "the shards never summed to the source"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (s, range) in SHARDS.iter().enumerate() {
        let rows = ctx.rows(s + 2, "acct").await;
        assert!(!rows.is_empty(), "shard {range} holds rows");
        for r in rows {
            let id: i64 = r[0].as_deref().and_then(|v| v.parse().ok()).expect("id");
            assert_eq!(shard_of(id), s, "row {id} is on shard {range}");
        }
    }
    for p in &mut procs {
        p.stop(Duration::from_secs(20));
        p.assert_no_unexpected_errors(&[]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_to_unsharded() {
    let ctx = TestCtx::new("reshard_4_to_1");
    assert!(
        ctx.stack.mysql.len() >= 5,
        "needs a stack with 5 MariaDB servers (deploy/stack up --mariadb 5)"
    );
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2, 3, 4, 5]).await;
    for i in 1..=5 {
        ctx.sql(i, &[&format!("USE {db}"), DDL]).await;
    }
    // Source shard s is server s + 2; each has its own capture and partition.
    let mut conns = Vec::new();
    let mut procs = Vec::new();
    for (s, range) in SHARDS.iter().enumerate() {
        let mut c = ctx.conn(s + 2).await;
        let start = gtid_pos(&mut c).await;
        conns.push(c);
        let mut cap = ctx.capture_args(&ctx.revdoor_url(s + 2), &format!("{db}.acct"), &start);
        cap.extend(
            [
                "--shard",
                range,
                "--partitions",
                "4",
                "--partition",
                &s.to_string(),
            ]
            .map(String::from),
        );
        procs.push(ctx.spawn(&format!("capture-{s}"), &args(&cap)));
        let mut a = ctx.apply_args(&ctx.revdoor_url(1));
        a.extend(["--partition".to_string(), s.to_string()]);
        procs.push(ctx.spawn(&format!("apply-{s}"), &args(&a)));
    }
    // Writes routed like an application would: each row to its shard.
    for id in 1..=2000i64 {
        let s = shard_of(id);
        conns[s]
            .query_drop(format!("INSERT INTO {db}.acct VALUES ({id}, {})", id % 10))
            .await
            .expect("insert");
    }
    for id in (3..=2000i64).step_by(3) {
        let s = shard_of(id);
        conns[s]
            .query_drop(format!("UPDATE {db}.acct SET v = v + 100 WHERE id = {id}"))
            .await
            .expect("update");
    }
    for id in (7..=2000i64).step_by(7) {
        let s = shard_of(id);
        conns[s]
            .query_drop(format!("DELETE FROM {db}.acct WHERE id = {id}"))
            .await
            .expect("delete");
    }
    let want = union(&ctx, &[2, 3, 4, 5]).await;
    assert_eq!(want.len(), 2000 - 2000 / 7);
    let deadline = Instant::now() + Duration::from_secs(90);
    while sorted(ctx.rows(1, "acct").await) != want {
        alive(&mut procs);
        assert!(
            Instant::now() < deadline,
            "the target never equalled the union of the shards"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for p in &mut procs {
        p.stop(Duration::from_secs(20));
        p.assert_no_unexpected_errors(&[]);
    }
}
