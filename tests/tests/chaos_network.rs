//! Chaos: network faults between revdoor and each of MariaDB, Kafka and
//! etcd, made with the stack's Toxiproxy (issue 17), with the bank writer
//! and the prober running, 1 → 2 shards.
//!
//! revdoor's coordinator and worker reach everything through proxies:
//! the keyspaces' shard URLs name the database proxies (so the bank
//! writer and prober, which follow those URLs like an application, go
//! through them too), and their `REVDOOR_ETCD` and `REVDOOR_KAFKA` name an
//! etcd proxy each and the Kafka proxy (the broker's PROXIED listener
//! advertises it). The test's own checks and the CLI connect directly.
//!
//! 1. 500 ms of latency (every reply delayed) to the databases, then
//!    Kafka, then etcd: the streams keep running, a cutover under the
//!    latency succeeds or is refused / rolled back with a message saying
//!    so, leaving the fences as the phase says (refused by the lag gate,
//!    it is tried again with a `--max-lag` above the lag, so that the
//!    fence and the catch-up run under the latency too), and the lag
//!    recovers once the toxic is gone.
//! 2. Connection resets (`reset_peer`) to each in turn: the streams
//!    recover by themselves.
//! 3. The leading coordinator cut from etcd (its proxy disabled) for
//!    longer than its lease in the middle of a switch, right after the
//!    fence, with a standby connected directly: the standby takes over and
//!    the switch completes or rolls back.
//!
//! Ends with every acknowledged write on both sides, the invariants,
//! source = target row for row, and no write accepted on a fenced side.
//! Prints how long revdoor took to recover by itself from each fault.
//!
//! Its own test binary, one test: the Kafka proxy has the fixed port the
//! broker advertises, so one test at a time holds it.

use std::time::{Duration, Instant};

use revdoor_tests::door::Door;
use revdoor_tests::toxi::{Proxy, Toxi};
use revdoor_tests::{env_num, wait_for, Revdoor};

/// How long each fault lasts (`REVDOOR_NET_FAULT_S`, default 5).
fn fault() -> Duration {
    Duration::from_secs(env_num("REVDOOR_NET_FAULT_S", 5))
}

/// How long the leader is cut from etcd (`REVDOOR_NET_PARTITION_S`,
/// default 8): longer than the test coordinators' 2 s lease.
fn partition() -> Duration {
    Duration::from_secs(env_num("REVDOOR_NET_PARTITION_S", 8))
}

/// The lag under which the streams count as recovered.
const RECOVERED_LAG_MS: u64 = 2_000;

/// Wait until the streams run with a small lag again; how long it took.
async fn recovered(door: &Door, what: &str, since: Instant) -> Duration {
    door.wait_streams_lag_below(RECOVERED_LAG_MS, Duration::from_secs(300))
        .await;
    let took = since.elapsed();
    eprintln!(
        "chaos network: {what}: streams recovered by themselves {:.1}s after the fault was removed",
        took.as_secs_f64()
    );
    took
}

/// Whether any fence row of the workflow is set on `server`.
async fn fenced(door: &Door, server: usize) -> bool {
    door.fences(server).await.iter().any(|(_, f)| *f != 0)
}

/// The side serving in `phase` is not fenced and the other one is (after
/// the first switch both sides have fence rows; before it the target's
/// tables are fenced for applications since `create`).
async fn assert_fences_match(door: &Door, phase: &str, when: &str) {
    let source = fenced(door, door.source).await;
    let mut target = false;
    for (_, s) in &door.target {
        target |= fenced(door, *s).await;
    }
    match phase {
        "running" | "reversed" => assert!(
            !source && target,
            "{when}: phase {phase}, yet source fenced={source}, target fenced={target}"
        ),
        "switched" => assert!(
            source && !target,
            "{when}: phase {phase}, yet source fenced={source}, target fenced={target}"
        ),
        _ => panic!("{when}: unexpected phase {phase}"),
    }
}

/// The cutover that turns the door from `phase`.
fn next_cutover(phase: &str) -> &'static str {
    if phase == "switched" {
        "reverse-traffic"
    } else {
        "switch-traffic"
    }
}

fn alive(p: &mut Revdoor, what: &str) {
    assert!(
        p.exited().is_none(),
        "{} died {what}:\n{}",
        p.name,
        p.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn network_latency_resets_and_partition() {
    let stack = revdoor_tests::stack();
    let toxi = Toxi::of(stack);
    let tag = format!(
        "net{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() % 100_000_000)
            .unwrap_or(0)
    );
    let (source, target) = (3usize, [("-80", 4usize), ("80-", 5usize)]);
    // One proxy per database server, by server number.
    let mut db: Vec<(usize, Proxy)> = Vec::new();
    for i in std::iter::once(source).chain(target.iter().map(|t| t.1)) {
        let opts = mysql_async::Opts::from_url(&stack.servers[i - 1].url).expect("server URL");
        let upstream = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
        db.push((i, toxi.proxy(&format!("{tag}_db{i}"), &upstream)));
    }
    let etcd_upstream = stack.etcd.trim_start_matches("http://").to_string();
    let etcd_c = toxi.proxy(&format!("{tag}_etcd_c0"), &etcd_upstream);
    let etcd_w = toxi.proxy(&format!("{tag}_etcd_w1"), &etcd_upstream);
    let kafka = toxi.kafka_proxy(&format!("{tag}_kafka"));

    let via_proxy = |ctx: &revdoor_tests::TestCtx, i: usize| {
        let p = &db
            .iter()
            .find(|(s, _)| *s == i)
            .expect("a proxy per server")
            .1;
        format!(
            "mysql://{}:{}@{}",
            ctx.stack.revdoor_user, ctx.stack.revdoor_password, p.listen
        )
    };
    let door = Door::create_via("chaos_network", source, &target, 200, &via_proxy).await;
    let wf = door.ctx.workflow.clone();
    let etcd_c_url = format!("http://{}", etcd_c.listen);
    let etcd_w_url = format!("http://{}", etcd_w.listen);
    let proxied = |etcd: &str| {
        vec![
            ("REVDOOR_ETCD".to_string(), etcd.to_string()),
            ("REVDOOR_KAFKA".to_string(), kafka.listen.clone()),
        ]
    };
    let env_c = proxied(&etcd_c_url);
    let env_w = proxied(&etcd_w_url);
    let spawn_c = |id: &str, extra: &[(&str, &str)]| {
        let mut env: Vec<(&str, &str)> = env_c
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend_from_slice(extra);
        door.coordinator(id, &env)
    };

    let out = door.create_workflow();
    assert!(out.ok, "workflow create: {}{}", out.stdout, out.stderr);
    let mut c = spawn_c("c0", &[]);
    let env: Vec<(&str, &str)> = env_w
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut w = door.ctx.spawn_env(
        "w1",
        &["worker", "run", "--id", "w1", "--lease-ttl", "2s"],
        &env,
    );
    door.wait_phase("running", Duration::from_secs(120)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;
    let mut writer = door.writer("writer", 1, 200);
    let mut prober = door.prober("prober");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let dbs: Vec<&Proxy> = db.iter().map(|(_, p)| p).collect();
    let targets: [(&str, Vec<&Proxy>); 3] = [
        ("MariaDB", dbs.clone()),
        ("Kafka", vec![&kafka]),
        ("etcd", vec![&etcd_c, &etcd_w]),
    ];

    // 1. Latency of 500 ms, with a cutover under it.
    for (what, proxies) in &targets {
        for p in proxies {
            p.latency(500);
        }
        tokio::time::sleep(fault()).await;
        alive(&mut w, &format!("under 500 ms of latency to {what}"));
        // First as an operator would; refused by the lag gate (the lag
        // grows under the latency), once more with a --max-lag above it,
        // so that the fence and the catch-up run under the latency too.
        for max_lag in ["5s", "120s"] {
            let before = door.phase();
            let action = next_cutover(&before);
            let t = Instant::now();
            let out = door.cutover(action, &["--max-lag", max_lag, "--timeout", "30s"]);
            let took = t.elapsed();
            let after = door.phase();
            let msg = format!("{}{}", out.stdout, out.stderr);
            if out.ok {
                assert_ne!(
                    before, after,
                    "{action} under latency to {what} succeeded, yet the phase stayed {before}:\n{msg}"
                );
                eprintln!(
                    "chaos network: 500 ms latency to {what}: {action} --max-lag {max_lag} succeeded in {:.1}s (phase {before} → {after})",
                    took.as_secs_f64()
                );
            } else {
                assert_eq!(
                    before, after,
                    "{action} under latency to {what} failed, yet the phase moved:\n{msg}"
                );
                assert!(
                    msg.contains("refused") || msg.contains("rolled back"),
                    "{action} under latency to {what} failed without saying it was refused or rolled back:\n{msg}"
                );
                eprintln!(
                    "chaos network: 500 ms latency to {what}: {action} --max-lag {max_lag} failed cleanly in {:.1}s: {}",
                    took.as_secs_f64(),
                    msg.trim().lines().last().unwrap_or_default()
                );
            }
            assert_fences_match(
                &door,
                &after,
                &format!("after {action} under latency to {what}"),
            )
            .await;
            let refused_for_lag = !out.ok && msg.contains("--max-lag");
            if !refused_for_lag {
                break;
            }
        }
        for p in proxies {
            p.remove_toxic("latency");
        }
        recovered(&door, &format!("500 ms latency to {what}"), Instant::now()).await;
    }

    // 2. Connection resets.
    for (what, proxies) in &targets {
        for p in proxies {
            p.resets();
        }
        tokio::time::sleep(fault()).await;
        for p in proxies {
            p.remove_toxic("reset");
        }
        recovered(
            &door,
            &format!("connection resets to {what}"),
            Instant::now(),
        )
        .await;
        alive(&mut w, &format!("after connection resets to {what}"));
        alive(&mut c, &format!("after connection resets to {what}"));
    }

    // 3. The leader cut from etcd for longer than its lease, right after
    // it fenced the serving side (it pauses there past the partition, then
    // goes on as a deposed leader would); a standby connected directly.
    door.wait_streams_running(Duration::from_secs(120)).await;
    c.stop(Duration::from_secs(10));
    let pause = format!(
        "switch::after_fence=sleep({})",
        (partition() + Duration::from_secs(2)).as_millis()
    );
    let mut c0 = spawn_c("c0-cut", &[("FAILPOINTS", pause.as_str())]);
    door.wait_leader("c0-cut", Duration::from_secs(30)).await;
    let mut c1 = door.coordinator("c1", &[]);
    door.wait_streams_running(Duration::from_secs(120)).await;
    let before = door.phase();
    let action = next_cutover(&before);
    let fenced_side = if before == "switched" {
        door.target[0].1
    } else {
        door.source
    };
    let mut cli = door.ctx.spawn(
        "cutover-cut",
        &["workflow", action, &wf, "--timeout", "60s"],
    );
    wait_for("serving side fenced", Duration::from_secs(60), || async {
        Ok(fenced(&door, fenced_side).await.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cli.log_text()));
    let cut = Instant::now();
    etcd_c.set_enabled(false);
    door.wait_leader("c1", Duration::from_secs(60)).await;
    let takeover = cut.elapsed();
    let outcome = door.wait_request_ended(Duration::from_secs(180)).await;
    let decided = cut.elapsed();
    if let Some(rest) = partition().checked_sub(cut.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    etcd_c.set_enabled(true);
    let code = cli.wait_exit(Duration::from_secs(300)).await;
    let phase = door.phase();
    eprintln!(
        "chaos network: leader cut from etcd for {:?} mid-{action}: standby c1 led {:.1}s after the cut; request {outcome} {:.1}s after the cut; CLI exited {code:?}; phase {phase}",
        partition(),
        takeover.as_secs_f64(),
        decided.as_secs_f64()
    );
    match (outcome.as_str(), before.as_str(), phase.as_str()) {
        ("done", "running" | "reversed", "switched")
        | ("done", "switched", "reversed")
        | ("rolled-back", _, _) => {}
        _ => {
            panic!("request {outcome}: phase {before} → {phase}, neither completed nor rolled back")
        }
    }
    if outcome == "rolled-back" {
        assert_eq!(before, phase, "rolled back, yet the phase moved");
    }
    assert_fences_match(&door, &phase, "when the standby ended the request").await;
    // The deposed leader wakes after the partition and goes on with the
    // cutover it had begun: whatever it does to the servers must not open
    // the side that no longer serves. Watch until its pause is over and
    // the streams run again.
    let woke = cut + partition() + Duration::from_secs(2);
    if let Some(rest) = woke.checked_duration_since(Instant::now()) {
        tokio::time::sleep(rest).await;
    }
    door.wait_streams_running(Duration::from_secs(180)).await;
    assert_fences_match(&door, &door.phase(), "after the deposed leader woke").await;
    eprintln!(
        "chaos network: after the partition the deposed leader {}",
        match c0.exited() {
            Some(code) => format!("exited with {code:?}"),
            None => "kept running (standing by)".into(),
        }
    );
    alive(&mut c1, "after taking over");
    alive(&mut w, "through the partition");

    let (n, w_sum, p_sum) = door
        .finish_chaos(&mut writer, &mut prober, 200, Duration::from_secs(180))
        .await;
    eprintln!("chaos network: {n} acknowledged writes all present, sides equal; writer {w_sum}; prober {p_sum}");
    c0.stop(Duration::from_secs(10));
    c1.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}
