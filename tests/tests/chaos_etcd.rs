//! Chaos: etcd SIGKILLed and restarted (issue 17; issue 18, item 2), with
//! the bank writer and the prober running, 1 → 2 shards — while streaming,
//! and again right after a switch fenced the source. Workers and
//! coordinators ride it out without a process restart; the switch ends
//! completed or rolled back by itself; every acknowledged write is on both
//! sides, the invariants hold, source = target row for row, and no write
//! was accepted on a fenced side. Prints how long revdoor took to recover.
//!
//! Its own test binary, one test: it kills the etcd every other test
//! shares (test binaries run one after another).

use std::time::{Duration, Instant};

use revdoor_tests::chaos_outage;
use revdoor_tests::door::Door;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_killed_while_streaming_and_mid_switch() {
    let stack = revdoor_tests::stack();
    let door = Door::create("chaos_etcd", 3, &[("-80", 4), ("80-", 5)], 200).await;
    let (c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 200);
    let mut prober = door.prober("prober");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. While streaming.
    let t = Instant::now();
    let restart = stack.bounce("etcd", chaos_outage()).await;
    door.wait_streams_lag_below(2_000, Duration::from_secs(180))
        .await;
    eprintln!(
        "chaos etcd: down {:?} while streaming; restarted in {:.1}s, streams caught up {:.1}s after that",
        chaos_outage(),
        restart.as_secs_f64(),
        (t.elapsed() - chaos_outage() - restart).as_secs_f64()
    );
    assert!(
        w.exited().is_none(),
        "the worker died with etcd:\n{}",
        w.log_text()
    );

    // 2. Right after a switch fenced the source (a leader pausing 2 s there).
    let mut c = c;
    c.stop(Duration::from_secs(10));
    let (mut c, mut cli) = door.switch_paused_after_fence().await;
    let t = Instant::now();
    let restart = stack.bounce("etcd", chaos_outage()).await;
    let code = cli.wait_exit(Duration::from_secs(300)).await;
    // Whatever the CLI saw, the request ends by itself: done or rolled back.
    let outcome = door.wait_request_ended(Duration::from_secs(180)).await;
    let phase = door.phase();
    eprintln!(
        "chaos etcd: down {:?} mid-switch; restarted in {:.1}s; the CLI exited {code:?}; request {outcome}, phase {phase}, {:.1}s after etcd was back",
        chaos_outage(),
        restart.as_secs_f64(),
        (t.elapsed() - chaos_outage() - restart).as_secs_f64()
    );
    // The CLI followed it to its end through the outage.
    let cli_log = cli.log_text();
    match outcome.as_str() {
        "done" => assert_eq!(code, Some(0), "{cli_log}"),
        _ => assert!(cli_log.contains("rolled back"), "{cli_log}"),
    }
    let source_fenced = door.fences(door.source).await.iter().any(|(_, f)| *f != 0);
    match (outcome.as_str(), phase.as_str()) {
        ("done", "switched") => assert!(source_fenced, "switched, yet the source is not fenced"),
        ("rolled-back", "running") => {
            assert!(
                !source_fenced,
                "rolled back, yet the source is still fenced"
            )
        }
        _ => panic!("request {outcome} with phase {phase}: neither completed nor rolled back"),
    }
    door.wait_streams_lag_below(2_000, Duration::from_secs(180))
        .await;
    assert!(
        w.exited().is_none(),
        "the worker died with etcd:\n{}",
        w.log_text()
    );
    assert!(
        c.exited().is_none(),
        "the coordinator died with etcd:\n{}",
        c.log_text()
    );

    // The door still turns both ways.
    door.turn_both_ways(&phase).await;

    let (n, _, _) = door
        .finish_chaos(&mut writer, &mut prober, 500, Duration::from_secs(120))
        .await;
    eprintln!("chaos etcd: {n} acknowledged writes all present, sides equal");
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}
