//! Routing by keyspace id (DESIGN §2): an unsharded source is captured into
//! two partitions, one per destination shard (`-80` on MariaDB #2, `80-` on
//! #3). Transactions touching both shards, primary-key changes that move a
//! row across shards, and deletes; the union of the shards equals the source
//! and every row sits on the shard its keyspace id belongs to.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_tests::{args, gtid_pos, TestCtx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_land_on_the_shard_of_their_keyspace_id() {
    let ctx = TestCtx::new("capture_routing");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2, 3]).await;
    for i in [1, 2, 3] {
        ctx.sql(
            i,
            &[&format!(
                "CREATE TABLE {db}.acct (id BIGINT PRIMARY KEY, v INT NOT NULL)"
            )],
        )
        .await;
    }
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let mut cap = ctx.capture_args(&ctx.revdoor_url(1), &format!("{db}.acct"), &start);
    cap.extend(["--partitions", "2", "--route", "-80=0", "--route", "80-=1"].map(String::from));
    let mut capture = ctx.spawn("capture", &args(&cap));
    let mut shards = Vec::new();
    for (server, partition) in [(2, "0"), (3, "1")] {
        let mut a = ctx.apply_args(&ctx.revdoor_url(server));
        a.extend(["--partition".to_string(), partition.to_string()]);
        shards.push(ctx.spawn(&format!("apply-{partition}"), &args(&a)));
    }

    // Transactions of 4 rows: most touch both shards.
    for k in 0..100 {
        let ids: Vec<String> = (0..4)
            .map(|j| format!("({}, {k})", k * 4 + j + 1))
            .collect();
        src.query_drop(format!("INSERT INTO {db}.acct VALUES {}", ids.join(", ")))
            .await
            .expect("insert");
    }
    src.query_drop(format!(
        "UPDATE {db}.acct SET v = v + 1000 WHERE id % 3 = 0"
    ))
    .await
    .expect("update");
    // Key changes: many rows move to the other shard.
    src.query_drop(format!(
        "UPDATE {db}.acct SET id = id + 100000 WHERE id % 5 = 0"
    ))
    .await
    .expect("move");
    src.query_drop(format!("DELETE FROM {db}.acct WHERE id % 7 = 0"))
        .await
        .expect("delete");

    let want = ctx.rows(1, "acct").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (left, right) = loop {
        let (l, r) = (ctx.rows(2, "acct").await, ctx.rows(3, "acct").await);
        let mut union: Vec<_> = l.iter().chain(r.iter()).cloned().collect();
        union.sort_by_key(|row| row[0].as_deref().and_then(|v| v.parse::<i64>().ok()));
        if union == want {
            break (l, r);
        }
        assert!(
            capture.exited().is_none(),
            "capture died:\n{}",
            capture.log_text()
        );
        for s in &mut shards {
            assert!(s.exited().is_none(), "apply died:\n{}", s.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "shards never summed to the source ({} + {} vs {})",
            l.len(),
            r.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        !left.is_empty() && !right.is_empty(),
        "both shards hold rows"
    );
    for (rows, range) in [(&left, "-80"), (&right, "80-")] {
        let range: KeyRange = range.parse().expect("range");
        for row in rows {
            let id: i64 = row[0].as_deref().and_then(|v| v.parse().ok()).expect("id");
            let ks = keyspace_id(&[KeyValue::Int(id)]);
            assert!(
                range.contains(ks),
                "row {id} (keyspace id {ks:016x}) is on shard {range}"
            );
        }
    }
    capture.stop(Duration::from_secs(20));
    for mut s in shards {
        s.stop(Duration::from_secs(20));
        s.assert_no_unexpected_errors(&[]);
    }
    capture.assert_no_unexpected_errors(&[]);
}
