//! Chaos: database servers SIGKILLed and restarted (issue 17), with the
//! bank writer and the prober running, 1 → 2 shards — the source and a
//! target while streaming, and both sides again while switched (the
//! reverse stream running). Ends with every acknowledged write on both
//! sides, the invariants, source = target row for row, and no write
//! accepted on a fenced side; while a source server is down, `workflow
//! status` shows the error its capture retries (issue 18 item 6; for an
//! apply's destination it is printed, see `bounce`). Prints how long revdoor took to recover by itself; an operator
//! does nothing.
//!
//! Its own test binary, one test: it kills servers other tests use (test
//! binaries run one after another).

use std::time::{Duration, Instant};

use revdoor_tests::chaos_outage;
use revdoor_tests::door::Door;

/// Kill server `i`, restart it, and wait until the streams caught up;
/// while it is down, `workflow status` shows the error a stream of `kind`
/// (the one reading or writing it) retries. Asserted for captures only:
/// an apply whose destination died mid-group was seen waiting 23–40 s
/// without an error before its retry (docs/coordinator.md, after "since
/// when"); for applies it is printed.
async fn bounce(door: &Door, i: usize, when: &str, kind: &str) {
    let stack = revdoor_tests::stack();
    let service = stack.service_of(i);
    let t = Instant::now();
    let down = door.down_in_status(&service, chaos_outage(), kind).await;
    let restart = down.restart;
    door.wait_streams_lag_below(2_000, Duration::from_secs(300))
        .await;
    match down.shown {
        Some((stream, error, after)) => eprintln!(
            "chaos db: {service} down {:?} {when}; status showed {stream}'s error {:.1}s into it: {error}",
            chaos_outage(),
            after.as_secs_f64()
        ),
        None => {
            assert_ne!(
                kind, "capture",
                "workflow status showed no capture error while {service} was down {when}"
            );
            eprintln!(
                "chaos db: {service} down {:?} {when}; status showed no {kind} error meanwhile",
                chaos_outage()
            );
        }
    }
    eprintln!(
        "chaos db: {service} down {:?} {when}; restarted in {:.1}s, streams caught up {:.1}s after that",
        chaos_outage(),
        restart.as_secs_f64(),
        (t.elapsed() - chaos_outage() - restart).as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_and_target_killed_while_streaming_and_switched() {
    let door = Door::create("chaos_db", 3, &[("-80", 4), ("80-", 5)], 200).await;
    let (mut c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 200);
    let mut prober = door.prober("prober");
    tokio::time::sleep(Duration::from_secs(2)).await;

    bounce(
        &door,
        door.source,
        "while streaming (the source)",
        "capture",
    )
    .await;
    bounce(
        &door,
        door.target[0].1,
        "while streaming (a target)",
        "apply",
    )
    .await;

    let out = door.cutover("switch-traffic", &[]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    door.wait_streams_running(Duration::from_secs(60)).await;
    bounce(
        &door,
        door.source,
        "while switched (the reverse stream's destination)",
        "apply",
    )
    .await;
    bounce(
        &door,
        door.target[1].1,
        "while switched (a reverse stream's origin)",
        "capture",
    )
    .await;

    // The door still turns both ways.
    door.turn_both_ways("switched").await;

    let (n, _, _) = door
        .finish_chaos(&mut writer, &mut prober, 500, Duration::from_secs(120))
        .await;
    eprintln!("chaos db: {n} acknowledged writes all present, sides equal");
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}
