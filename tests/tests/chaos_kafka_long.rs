//! Chaos: a long Kafka outage while captures stream (issue 18 item 1).
//!
//! The broker is SIGKILLed and left down for `REVDOOR_CHAOS_LONG_OUTAGE_S`
//! seconds (default 100; 600 for the 10-minute case) while the bank writer
//! and the prober run, 1 → 2 shards. Outages past 30–60 s used to wedge the
//! capture's producer for good ("Conflicting commit_transaction API call is
//! already in progress") until the worker was restarted. Here the same
//! coordinator and worker processes must recover by themselves: the
//! streams catch up, neither process exited, every acknowledged write is
//! on both sides once (the bank invariants) and source = target; while the
//! broker is down, `workflow status` shows a capture's error and since when
//! (issue 18 item 6). Prints the recovery time.
//!
//! Its own test binary, one test: it kills the broker every other test
//! shares (test binaries run one after another). It lasts the outage plus
//! about two minutes.

use std::time::{Duration, Instant};

use revdoor_tests::door::Door;
use revdoor_tests::env_num;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_recover_from_a_long_kafka_outage_without_a_restart() {
    let outage = Duration::from_secs(env_num("REVDOOR_CHAOS_LONG_OUTAGE_S", 100));
    let door = Door::create("chaos_kafka_long", 3, &[("-80", 4), ("80-", 5)], 200).await;
    let (mut c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 200);
    let mut prober = door.prober("prober");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The broker down for `outage`; meanwhile `workflow status` must show
    // the error the captures retry (issue 18 item 6), with since when.
    let down = door.down_in_status("kafka", outage, "capture").await;
    let broker_up = down.restart;
    let (stream, error, after) = down
        .shown
        .expect("workflow status showed no capture error while the broker was down");
    eprintln!(
        "chaos kafka long: status showed {stream}'s error {:.1}s into the outage: {error}",
        after.as_secs_f64()
    );
    let back = Instant::now();
    door.wait_streams_lag_below(2_000, Duration::from_secs(600))
        .await;
    let recovered = back.elapsed();
    eprintln!(
        "chaos kafka long: broker down {outage:?} while streaming; restarted in {:.1}s; \
         streams caught up {:.1}s after it answered",
        broker_up.as_secs_f64(),
        recovered.as_secs_f64()
    );
    assert!(
        w.exited().is_none(),
        "the worker exited during the outage:\n{}",
        w.log_text()
    );
    assert!(
        c.exited().is_none(),
        "the coordinator exited during the outage:\n{}",
        c.log_text()
    );
    let log = w.log_text();
    let wedged = log.matches("producer is stuck").count();
    eprintln!("chaos kafka long: wedged producers replaced: {wedged}");

    let (n, w_sum, _) = door
        .finish_chaos(&mut writer, &mut prober, 500, Duration::from_secs(180))
        .await;
    eprintln!(
        "chaos kafka long: {n} acknowledged writes all present once, sides equal; writer: {w_sum}"
    );
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}
