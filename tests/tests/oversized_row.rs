//! A row larger than Kafka accepts (issue 18 item 4): the capture halts
//! with a definite error naming the table and the row's primary key, and
//! the operator path it gives loses nothing. Both limits are met: revdoor's
//! producer limit (`worker run --max-message-bytes`), then the topic's
//! `max.message.bytes` (the broker refuses the message inside the Kafka
//! transaction). Once both are raised the row arrives — the second time
//! without any process restart — once, with its transaction whole; the
//! time from the topic's limit raised to the rows on the target is
//! printed.
//!
//! The row is `REVDOOR_OVERSIZE_ROW_BYTES` long (default 1,500,000) and
//! incompressible (the broker checks compressed batches); the limits are
//! set around it, so CI stays fast.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use revdoor_core::event::ColumnValue;
use revdoor_tests::door::Door;
use revdoor_tests::{env_num, read_changes, wait_for};

/// Set `topic`'s `max.message.bytes`.
async fn set_topic_limit(brokers: &str, topic: &str, bytes: u64) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let value = bytes.to_string();
    let config = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", &value);
    let res = admin
        .alter_configs([&config], &AdminOptions::new())
        .await
        .expect("alter topic config");
    for r in res {
        r.unwrap_or_else(|e| panic!("alter {topic} max.message.bytes: {e:?}"));
    }
}

/// The capture stream's status once it is halted by worker `worker`: its
/// error.
async fn halted_by(door: &Door, worker: &str) -> String {
    wait_for(
        &format!("capture halted under {worker}"),
        Duration::from_secs(120),
        || async {
            let st = door.status();
            let s = st["streams"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["id"] == "forward.capture.-").cloned())
                .unwrap_or_default();
            Ok(
                (s["status"]["state"] == "halted" && s["status"]["worker"] == worker).then(|| {
                    s["status"]["error"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                }),
            )
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_row_halts_naming_its_key_and_arrives_once_limits_are_raised() {
    let size = env_num("REVDOOR_OVERSIZE_ROW_BYTES", 1_500_000);
    // Below the row's event, then well above it.
    let (low, high) = (size * 2 / 3, size * 3);
    let door = Door::create("oversized_row", 1, &[("-", 2)], 10).await;
    let db = door.ctx.db.clone();
    let brokers = door.ctx.stack.kafka.clone();
    let topic = format!("revdoor.{}.forward", door.ctx.workflow);
    door.ctx
        .sql(
            1,
            &[&format!(
                "CREATE TABLE {db}.blobs (id INT PRIMARY KEY, b LONGBLOB NOT NULL)"
            )],
        )
        .await;
    let out = door.create_workflow_with(&["blobs"]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let mut c = door.coordinator("c0", &[]);
    let worker = |id: &str, limit: u64| {
        door.ctx.spawn(
            id,
            &[
                "worker",
                "run",
                "--id",
                id,
                "--lease-ttl",
                "2s",
                "--max-message-bytes",
                &limit.to_string(),
            ],
        )
    };
    let mut w1 = worker("w1", low);
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;

    // One transaction: a small row, the big one, a small one; then another.
    // The big row is incompressible (SHA-2 digests): the broker checks the
    // compressed batch against the topic's limit.
    let digests = size / 32;
    let size = digests * 32;
    door.ctx
        .sql(
            1,
            &[
                "SET SESSION group_concat_max_len = 1073741824",
                "START TRANSACTION",
                &format!("INSERT INTO {db}.blobs VALUES (1, 'a')"),
                &format!(
                    "INSERT INTO {db}.blobs SELECT 2, UNHEX(GROUP_CONCAT(SHA2(seq, 256) \
                     SEPARATOR '')) FROM {db}.seq_1_to_{digests}"
                ),
                &format!("INSERT INTO {db}.blobs VALUES (3, 'c')"),
                "COMMIT",
                &format!("INSERT INTO {db}.blobs VALUES (4, 'd')"),
            ],
        )
        .await;

    // 1. revdoor's producer limit.
    let e = halted_by(&door, "w1").await;
    eprintln!("oversized row, producer limit {low}: {e}");
    for want in [
        format!("{db}.blobs"),
        "primary key (id=2)".to_string(),
        "--max-message-bytes".to_string(),
        "nothing is lost".to_string(),
    ] {
        assert!(e.contains(&want), "the error names {want:?}: {e}");
    }
    let mut t = door.ctx.conn(2).await;
    let n: Option<i64> = t
        .query_first(format!("SELECT COUNT(*) FROM {db}.blobs"))
        .await
        .expect("count");
    assert_eq!(n, Some(0), "nothing of the transaction reached the target");
    w1.stop(Duration::from_secs(30));

    // 2. The topic's limit, below the row, with revdoor's raised: the
    // broker refuses it inside the Kafka transaction.
    set_topic_limit(&brokers, &topic, low).await;
    let mut w2 = worker("w2", high);
    let e = halted_by(&door, "w2").await;
    eprintln!("oversized row, topic limit {low}: {e}");
    for want in [
        format!("{db}.blobs"),
        "primary key (id=2)".to_string(),
        format!("raise {topic}'s max.message.bytes"),
        "nothing is lost".to_string(),
    ] {
        assert!(e.contains(&want), "the error names {want:?}: {e}");
    }
    let n: Option<i64> = t
        .query_first(format!("SELECT COUNT(*) FROM {db}.blobs"))
        .await
        .expect("count");
    assert_eq!(n, Some(0), "nothing of the transaction reached the target");

    // 3. The topic's limit raised, as the error says: the halted stream's
    // own restart carries it, no process restarted.
    set_topic_limit(&brokers, &topic, high).await;
    let raised = std::time::Instant::now();
    wait_for(
        "the rows on the target",
        Duration::from_secs(180),
        || async {
            let mut t = door.ctx.conn(2).await;
            let n: Option<i64> = t
                .query_first(format!("SELECT COUNT(*) FROM {db}.blobs"))
                .await
                .ok()
                .flatten();
            Ok((n == Some(4)).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    println!(
        "recovery: the rows on the target {:.1} s after the topic's limit was raised \
         (the halted stream restarted by its worker, no process restarted)",
        raised.elapsed().as_secs_f64()
    );
    let sums = |i: usize| {
        let db = db.clone();
        let ctx = &door.ctx;
        async move {
            let mut conn = ctx.conn(i).await;
            let r: Vec<(i64, i64, String)> = conn
                .query(format!(
                    "SELECT id, LENGTH(b), MD5(b) FROM {db}.blobs ORDER BY id"
                ))
                .await
                .expect("sums");
            r
        }
    };
    let (src, dst) = (sums(1).await, sums(2).await);
    assert_eq!(src, dst, "target = source");
    assert_eq!(dst[1].1 as u64, size);
    // On the topic: each row once, the big one included.
    let events = read_changes(&brokers, &topic, 0).await.expect("read topic");
    let mut ids: Vec<i64> = events
        .iter()
        .filter(|(_, e)| e.source.table == "blobs")
        .filter_map(|(_, e)| match e.after.as_ref()?.get("id")? {
            ColumnValue::Int(i) => Some(*i),
            _ => None,
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4], "each row once on {topic}");
    c.stop(Duration::from_secs(10));
    w2.stop(Duration::from_secs(30));
    c.assert_no_unexpected_errors(&[]);
    w2.assert_no_unexpected_errors(&["larger than Kafka accepts", "stream stopped"]);
}
