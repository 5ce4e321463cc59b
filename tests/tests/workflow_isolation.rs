//! One workflow's trouble never halts another (issue 18 item 4).
//!
//! 1. Workflow A's capture dies (a crash at `capture::mid_transaction`, as
//!    `kill -9`) holding an open Kafka transaction. Capture writes schema
//!    records outside its Kafka transactions, so the shared
//!    `revdoor.schemas` is not held: workflow B, started meanwhile, runs
//!    and ends equal to its source without waiting.
//! 2. A transaction left open on `revdoor.schemas` by another writer (an
//!    older revdoor did write schema records inside its transactions; here
//!    the test's own transactional producer) holds every `read_committed`
//!    reader there. Workflow C, started behind it, must wait — saying so in
//!    `workflow status` — and never halt on "unknown schema" (whose advice,
//!    `stream skip`, would drop real transactions); once the transaction is
//!    aborted, C goes on and ends equal to its source. A, restarted, too.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use revdoor_tests::door::Door;
use revdoor_tests::wait_for;

const SCHEMAS: &str = "revdoor.schemas";

/// `revdoor.schemas`' last stable offset (a `read_committed` reader's
/// end) and its high watermark.
fn schema_watermarks(brokers: &str) -> (i64, i64) {
    let end = |isolation: &str| {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("isolation.level", isolation)
            .create()
            .expect("consumer");
        c.fetch_watermarks(SCHEMAS, 0, Duration::from_secs(10))
            .expect("watermarks")
            .1
    };
    (end("read_committed"), end("read_uncommitted"))
}

/// The status of `door`'s apply streams: (id, state, error).
fn apply_states(door: &Door) -> Vec<(String, String, String)> {
    let st = door.status();
    st["streams"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["id"].as_str().is_some_and(|id| id.contains("apply")))
                .map(|s| {
                    (
                        s["id"].as_str().unwrap_or_default().to_string(),
                        s["status"]["state"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        s["status"]["error"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Panic if any of `door`'s apply streams is halted.
fn assert_not_halted(door: &Door, what: &str) {
    let states = apply_states(door);
    if let Some(h) = states.iter().find(|s| s.1 == "halted") {
        panic!("{what}: an apply halted: {h:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_workflows_open_transaction_never_halts_another() {
    let stack = revdoor_tests::stack();
    // 1. A's capture crashes in the middle of its first multi-row Kafka
    // transaction (the copy's first chunk).
    let a = Door::create("iso_a", 1, &[("-", 2)], 50).await;
    let out = a.create_workflow();
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let mut ca = a.coordinator("c0", &[]);
    let crash = [("FAILPOINTS", "capture::mid_transaction=panic")];
    let mut wa = a.ctx.spawn_env(
        "w1",
        &["worker", "run", "--id", "w1", "--lease-ttl", "2s"],
        &crash,
    );
    let code = wa.wait_exit(Duration::from_secs(120)).await;
    assert!(
        code != Some(0),
        "A's worker crashed at the failpoint: {code:?}"
    );
    let (lso, high) = schema_watermarks(&stack.kafka);
    assert_eq!(
        lso, high,
        "A's dead capture holds no transaction on {SCHEMAS} (LSO {lso}, high {high})"
    );
    let b = Door::create("iso_b", 3, &[("-", 4)], 50).await;
    let out = b.create_workflow();
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let mut cb = b.coordinator("c0", &[]);
    let mut wb = b.worker("w1");
    let since = Instant::now();
    wait_for("B converged", Duration::from_secs(120), || async {
        assert_not_halted(&b, "B, with A dead mid-transaction");
        Ok(b.converged().await.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", b.status()));
    eprintln!(
        "isolation: B converged {:.1}s after it started, A's capture dead mid-transaction",
        since.elapsed().as_secs_f64()
    );

    // 2. A transaction left open on revdoor.schemas itself.
    let holder: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka)
        .set("transactional.id", format!("{}-holder", b.ctx.id))
        .set("transaction.timeout.ms", "120000")
        .create()
        .expect("producer");
    holder
        .init_transactions(Duration::from_secs(30))
        .expect("init transactions");
    holder.begin_transaction().expect("begin");
    holder
        .send(
            BaseRecord::to(SCHEMAS)
                .partition(0)
                .key("workflow-isolation-test")
                .payload("{}"),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    holder.flush(Duration::from_secs(30)).expect("flush");
    let (lso, high) = schema_watermarks(&stack.kafka);
    assert!(
        lso < high,
        "a transaction is open on {SCHEMAS} (LSO {lso}, high {high})"
    );
    let c = Door::create("iso_c", 5, &[("-", 4)], 50).await;
    let out = c.create_workflow();
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let mut cc = c.coordinator("c0", &[]);
    let mut wc = c.worker("w1");
    let since = Instant::now();
    let waiting = wait_for(
        "C's apply waiting for its schema",
        Duration::from_secs(120),
        || async {
            assert_not_halted(&c, "C, behind an open transaction");
            Ok(apply_states(&c).into_iter().find(|s| {
                s.2.contains("waiting for schema")
                    && s.2.contains("open transaction on revdoor.schemas")
            }))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", c.status()));
    eprintln!(
        "isolation: C's apply waiting {:.1}s after C started: {waiting:?}",
        since.elapsed().as_secs_f64()
    );
    // It keeps waiting, not halting, while the transaction is open.
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_secs(5) {
        assert_not_halted(&c, "C, behind an open transaction");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let back = Instant::now();
    holder
        .abort_transaction(Duration::from_secs(30))
        .expect("abort");
    c.wait_converged(Duration::from_secs(120)).await;
    eprintln!(
        "isolation: C converged {:.1}s after the transaction was aborted",
        back.elapsed().as_secs_f64()
    );

    // A's worker back: its producer fences the dead one's transaction.
    let mut wa = a.worker("w1b");
    a.wait_converged(Duration::from_secs(120)).await;
    for log in [wb.log_text(), wc.log_text()] {
        assert!(
            !log.contains("unknown schema fingerprint"),
            "an apply treated a pending schema as unknown:\n{log}"
        );
    }
    for p in [&mut ca, &mut cb, &mut cc] {
        p.stop(Duration::from_secs(10));
    }
    for p in [&mut wa, &mut wb, &mut wc] {
        p.stop(Duration::from_secs(30));
    }
    wb.assert_no_unexpected_errors(&[]);
    wc.assert_no_unexpected_errors(&[]);
}
