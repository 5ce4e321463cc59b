//! Chaos: the Kafka broker SIGKILLed and restarted (issue 17), with the
//! bank writer and the prober running, 1 → 2 shards — while streaming, and
//! again in the middle of a switch. Ends with every acknowledged write on
//! both sides, the invariants, source = target row for row, and no write
//! accepted on a fenced side. Prints how long revdoor took to recover by
//! itself; an operator does nothing.
//!
//! Its own test binary, one test: it kills the broker every other test
//! shares (test binaries run one after another).

use std::time::{Duration, Instant};

use revdoor_tests::chaos_outage;
use revdoor_tests::door::Door;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_killed_while_streaming_and_mid_switch() {
    let stack = revdoor_tests::stack();
    let door = Door::create("chaos_kafka", 3, &[("-80", 4), ("80-", 5)], 200).await;
    let (mut c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 200);
    let mut prober = door.prober("prober");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. While streaming.
    let back = Instant::now();
    let broker_up = stack.bounce("kafka", chaos_outage()).await;
    door.wait_streams_lag_below(2_000, Duration::from_secs(300))
        .await;
    eprintln!(
        "chaos kafka: down {:?} while streaming; broker back in {:.1}s, streams caught up {:.1}s after that",
        chaos_outage(),
        broker_up.as_secs_f64(),
        (back.elapsed() - chaos_outage() - broker_up).as_secs_f64()
    );

    // 2. In the middle of a switch, once the source is fenced (a leader
    // that pauses 2 s after the fence step): it completes or rolls back,
    // by itself.
    c.stop(Duration::from_secs(10));
    let (mut c, mut cli) = door.switch_paused_after_fence().await;
    stack.kill("kafka");
    tokio::time::sleep(chaos_outage()).await;
    let back = Instant::now();
    stack.restart();
    let code = cli.wait_exit(Duration::from_secs(300)).await;
    let phase = door.phase();
    eprintln!(
        "chaos kafka: switch with the broker killed midway exited {code:?}, phase {phase}, {:.1}s after the broker was restarted",
        back.elapsed().as_secs_f64()
    );
    match (code, phase.as_str()) {
        (Some(0), "switched") => {}
        (Some(c), "running") if c != 0 => {
            assert!(
                cli.log_text().contains("rolled back"),
                "a failed switch says it rolled back:\n{}",
                cli.log_text()
            );
            assert!(
                door.fences(door.source).await.iter().all(|(_, f)| *f == 0),
                "rolled back, yet the source is still fenced"
            );
        }
        _ => panic!(
            "the switch neither completed nor rolled back: exit {code:?}, phase {phase}\n{}",
            cli.log_text()
        ),
    }
    door.wait_streams_lag_below(2_000, Duration::from_secs(300))
        .await;
    eprintln!(
        "chaos kafka: streams caught up {:.1}s after the broker was restarted",
        back.elapsed().as_secs_f64()
    );
    // Then the door still turns both ways.
    door.turn_both_ways(&phase).await;

    let (n, _, _) = door
        .finish_chaos(&mut writer, &mut prober, 500, Duration::from_secs(120))
        .await;
    eprintln!("chaos kafka: {n} acknowledged writes all present, sides equal");
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}
