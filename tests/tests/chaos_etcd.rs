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

use revdoor_tests::door::Door;
use revdoor_tests::wait_for;

/// How long etcd stays down (`REVDOOR_CHAOS_OUTAGE_S`, default 5): longer
/// than the 2 s leases of the test's coordinators and workers.
fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("REVDOOR_CHAOS_OUTAGE_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_killed_while_streaming_and_mid_switch() {
    let stack = revdoor_tests::stack();
    let door = Door::create("chaos_etcd", 3, &[("-80", 4), ("80-", 5)], 200).await;
    let wf = door.ctx.workflow.clone();
    let (c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 200);
    let mut prober = door.prober("prober");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. While streaming.
    let t = Instant::now();
    let restart = stack.bounce("etcd", outage()).await;
    door.wait_streams_lag_below(2_000, Duration::from_secs(180))
        .await;
    eprintln!(
        "chaos etcd: down {:?} while streaming; restarted in {:.1}s, streams caught up {:.1}s after that",
        outage(),
        restart.as_secs_f64(),
        (t.elapsed() - outage() - restart).as_secs_f64()
    );
    assert!(
        w.exited().is_none(),
        "the worker died with etcd:\n{}",
        w.log_text()
    );

    // 2. Right after a switch fenced the source (a leader pausing 2 s there).
    let mut c = c;
    c.stop(Duration::from_secs(10));
    let mut c = door.coordinator(
        "fence-pause",
        &[("FAILPOINTS", "switch::after_fence=sleep(2000)")],
    );
    door.wait_leader("fence-pause", Duration::from_secs(30))
        .await;
    door.wait_streams_lag_below(2_000, Duration::from_secs(120))
        .await;
    let mut cli = door.ctx.spawn(
        "switch-killed",
        &["workflow", "switch-traffic", &wf, "--timeout", "30s"],
    );
    wait_for("source fenced", Duration::from_secs(60), || async {
        let fenced = door.fences(door.source).await.iter().any(|(_, f)| *f != 0);
        Ok(fenced.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cli.log_text()));
    let t = Instant::now();
    let restart = stack.bounce("etcd", outage()).await;
    let code = cli.wait_exit(Duration::from_secs(300)).await;
    // Whatever the CLI saw, the request ends by itself: done or rolled back.
    let outcome = door.wait_request_ended(Duration::from_secs(180)).await;
    let phase = door.phase();
    eprintln!(
        "chaos etcd: down {:?} mid-switch; restarted in {:.1}s; the CLI exited {code:?}; request {outcome}, phase {phase}, {:.1}s after etcd was back",
        outage(),
        restart.as_secs_f64(),
        (t.elapsed() - outage() - restart).as_secs_f64()
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
    let actions = if phase == "switched" {
        ["reverse-traffic", "switch-traffic"]
    } else {
        ["switch-traffic", "reverse-traffic"]
    };
    for action in actions {
        door.wait_streams_running(Duration::from_secs(120)).await;
        let out = door.cutover(action, &[]);
        assert!(
            out.ok,
            "{action} after the chaos: {}{}",
            out.stdout, out.stderr
        );
    }

    let (n, _, _) = door
        .finish_chaos(&mut writer, &mut prober, 500, Duration::from_secs(120))
        .await;
    eprintln!("chaos etcd: {n} acknowledged writes all present, sides equal");
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}
