//! The revolving door (issue 5): two bank writers that follow routing write
//! continuously while the workflow is switched and reversed five times each
//! — one updates the account before inserting its ledger row, the other
//! (`--ledger-first`) the opposite order, so the moved tables are locked in
//! both orders and every switch must still succeed (issue 17: the fence
//! cannot deadlock with them);
//! a prober keeps trying to write to the side that is not serving. At the
//! end every acknowledged write is on both sides, per-account invariants
//! hold, source equals target row for row, the prober never succeeded, and
//! every switch recorded its write-unavailability window.

use std::time::Duration;

use revdoor_tests::door::Door;

async fn revolving(door: Door) {
    let out = door.create_workflow();
    assert!(out.ok, "workflow create: {}{}", out.stdout, out.stderr);
    // Leases of 10 s, not the harness's 2 s: nothing here tests failover,
    // and five of these run at once beside other test binaries — a
    // process starved past a 2 s lease rolled a switch back (correctly)
    // and failed the run.
    let mut coordinator = door.coordinator_ttl("c1", "10s", &[]);
    let mut worker = door.worker_ttl("w1", "10s");
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(30)).await;
    let mut writer = door.writer("writer", 1, 100);
    let mut ledger_first = door.writer_with("ledger_first", 2, 100, &["--ledger-first"]);
    let mut prober = door.prober("prober");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // --dry-run: the plan with positions and lags; nothing changes.
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &["--dry-run"]);
    assert!(out.ok, "dry run: {}{}", out.stdout, out.stderr);
    for want in [
        "worst apply lag",
        "2. fence",
        "now at",
        "6. routing",
        "nothing changed",
    ] {
        assert!(
            out.stdout.contains(want),
            "dry run lacks '{want}':\n{}",
            out.stdout
        );
    }
    assert_eq!(door.phase(), "running");
    assert!(door.fences(door.source).await.iter().all(|(_, f)| *f == 0));

    for round in 0..5 {
        for (action, phase) in [
            ("switch-traffic", "switched"),
            ("reverse-traffic", "reversed"),
        ] {
            door.wait_streams_running(Duration::from_secs(60)).await;
            let out = door.cutover(action, &["--max-lag", "10s", "--timeout", "30s"]);
            assert!(
                out.ok,
                "round {round} {action}: {}{}",
                out.stdout, out.stderr
            );
            assert!(
                out.stdout.contains("write-unavailability window"),
                "{}",
                out.stdout
            );
            assert_eq!(door.phase(), phase);
            // The catch-up's parts account for its time (one machine, one
            // clock; each part is rounded to the ms, and the step's end
            // comes a moment after the last poll).
            let (work_us, parts) = door.last_catch_up();
            assert_eq!(
                parts.keys().collect::<Vec<_>>(),
                ["apply", "capture", "kafka"],
                "round {round} {action}: catch-up parts {parts:?}"
            );
            let sum: u64 = parts.values().sum();
            assert!(
                sum.abs_diff(work_us) <= 5_000,
                "round {round} {action}: catch-up parts {parts:?} sum to {sum} µs, its work took {work_us} µs"
            );
            // Writes keep landing on the new side.
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
    // End on the target, as a migration does.
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &[]);
    assert!(out.ok, "final switch: {}{}", out.stdout, out.stderr);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let w = door.finish_load(&mut writer, "writer").await;
    let l = door.finish_load(&mut ledger_first, "ledger_first").await;
    let p = door.finish_load(&mut prober, "prober").await;
    assert_eq!(
        p["violations"], 0,
        "prober wrote to a non-serving side: {p}"
    );
    assert!(
        p["probes_refused"].as_u64().unwrap_or(0) > 100,
        "prober barely probed: {p}"
    );
    for w in [&w, &l] {
        assert!(
            w["acked"].as_u64().unwrap_or(0) > 1000,
            "writer barely wrote: {w}"
        );
    }
    door.wait_converged(Duration::from_secs(60)).await;
    let n = door
        .check_invariants(&[door.acks_path("writer"), door.acks_path("ledger_first")])
        .await
        .unwrap_or_else(|e| panic!("invariants: {e:#}"));
    let windows = door.windows();
    assert_eq!(
        windows.len(),
        11,
        "every switch reports its window: {windows:?}"
    );
    assert!(windows.iter().all(|w| *w > 0), "{windows:?}");
    eprintln!(
        "revolving door: {n} acknowledged writes, windows (ms) {windows:?}, writers' longest gaps {} / {} ms, \
         {} / {} fenced retries, {} probes refused",
        w["max_gap_ms"], l["max_gap_ms"], w["fenced_retries"], l["fenced_retries"], p["probes_refused"]
    );

    // etcd holds no password (issue 15): shard records name a file.
    door.assert_no_password_in_etcd(&["app-pw"]).await;

    // complete: streams stop, fences go, routing stays on the target.
    let out = door.ok(&["workflow", "complete", &door.ctx.workflow]);
    assert!(out.contains("completed"), "{out}");
    assert_eq!(door.phase(), "completed");
    assert_eq!(
        door.triggers(door.source).await,
        0,
        "fence triggers left on the source"
    );
    for (_, s) in &door.target {
        assert_eq!(
            door.triggers(*s).await,
            0,
            "fence triggers left on the target"
        );
    }
    let routing = door.ok(&["routing", "get", "src", "--json"]);
    let rules: serde_json::Value = serde_json::from_str(&routing).expect("routing JSON");
    assert!(
        rules
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|x| x["serving"] == "dst")),
        "{rules}"
    );
    assert!(
        door.etcd_keys("workflows/")
            .await
            .iter()
            .all(|k| !k.contains("/status/")),
        "streams still report after complete"
    );

    door.assert_no_password_in_etcd(&["app-pw"]).await;

    coordinator.stop(Duration::from_secs(10));
    worker.stop(Duration::from_secs(30));
    coordinator.assert_no_unexpected_errors(&[]);
    worker.assert_no_unexpected_errors(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revolving_door_unsharded_to_unsharded() {
    revolving(Door::create("door_1to1", 1, &[("-", 2)], 200).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revolving_door_unsharded_to_two_shards() {
    revolving(Door::create("door_1to2", 3, &[("-80", 4), ("80-", 5)], 200).await).await;
}

// Mixed engines (issue 13): MySQL 9.7 and MariaDB 10.11 on either side.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revolving_door_mysql_to_mariadb() {
    let (my, maria) = (
        revdoor_tests::stack().mysql_servers(),
        revdoor_tests::stack().mariadb_servers(),
    );
    revolving(Door::create("door_my_maria", my[0], &[("-", maria[0])], 200).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revolving_door_mariadb_to_mysql() {
    let (my, maria) = (
        revdoor_tests::stack().mysql_servers(),
        revdoor_tests::stack().mariadb_servers(),
    );
    revolving(Door::create("door_maria_my", maria[1], &[("-", my[1])], 200).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revolving_door_mysql_to_mariadb_and_mysql_shards() {
    let (my, maria) = (
        revdoor_tests::stack().mysql_servers(),
        revdoor_tests::stack().mariadb_servers(),
    );
    revolving(
        Door::create(
            "door_my_mixed",
            my[0],
            &[("-80", maria[2]), ("80-", my[1])],
            200,
        )
        .await,
    )
    .await;
}
