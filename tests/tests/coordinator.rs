//! Coordinator and workers under failure (issue 5): refusals that leave
//! nothing behind, a leader killed at every step of a switch, a paused
//! leader that must not write after its lease expired, workers joining and
//! dying while streams run.

use std::time::{Duration, Instant};

use revdoor_tests::door::Door;
use revdoor_tests::wait_for;

fn refused(out: &revdoor_tests::door::Out, what: &str) {
    assert!(
        !out.ok,
        "expected a refusal mentioning '{what}', got success:\n{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(what),
        "expected '{what}' in the error:\n{}{}",
        out.stdout,
        out.stderr
    );
}

/// Hold every row and gap of the bank tables on server `i` in an open
/// transaction: apply into them waits (row locks, unlike `LOCK TABLES`,
/// cannot deadlock with apply's parallel connections on metadata locks).
async fn lock_rows(door: &Door, i: usize) -> mysql_async::Conn {
    use mysql_async::prelude::Queryable;
    let mut c = door.ctx.conn(i).await;
    c.query_drop("BEGIN").await.expect("begin");
    for t in ["accounts", "ledger"] {
        c.query_drop(format!(
            "SELECT COUNT(*) FROM {}.{t} FOR UPDATE",
            door.ctx.db
        ))
        .await
        .expect("lock rows");
    }
    c
}

async fn unlock_rows(mut c: mysql_async::Conn) {
    use mysql_async::prelude::Queryable;
    c.query_drop("ROLLBACK").await.expect("unlock rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_say_why_and_leave_nothing_behind() {
    let door = Door::create("refusals", 1, &[("-", 2)], 50).await;
    let db = door.ctx.db.clone();
    let wf = door.ctx.workflow.clone();

    // Before anything runs: unknown names, a table without a primary key.
    refused(
        &door.cmd(&[
            "workflow", "create", "x1", "--source", "nosuch", "--target", "dst", "--tables", "a.b",
        ]),
        "unknown keyspace nosuch",
    );
    refused(
        &door.cmd(&["workflow", "switch-traffic", "nosuch"]),
        "unknown workflow nosuch",
    );
    door.ctx
        .sql(1, &[&format!("CREATE TABLE {db}.nopk (a INT, b INT)")])
        .await;
    let nopk = format!("{db}.nopk");
    refused(
        &door.cmd(&[
            "workflow", "create", "nopk", "--source", "src", "--target", "dst", "--tables", &nopk,
        ]),
        "has no primary key",
    );
    assert!(
        door.etcd_keys("workflows/nopk").await.is_empty(),
        "a refused create left keys"
    );
    assert_eq!(
        door.triggers(1).await,
        0,
        "a refused create left fence triggers"
    );
    let mut t = door.ctx.conn(2).await;
    let on_target: Option<String> = mysql_async::prelude::Queryable::query_first(
        &mut t,
        format!("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}'"),
    )
    .await
    .expect("read target tables");
    assert_eq!(
        on_target, None,
        "a refused create made tables on the target"
    );

    let (mut c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 100);

    refused(
        &door.cmd(&["workflow", "complete", &wf]),
        "complete needs traffic on the target",
    );

    // Lag above --max-lag.
    refused(
        &door.cutover("switch-traffic", &["--max-lag", "1ms"]),
        "above --max-lag",
    );
    let nothing_changed = || async {
        assert_eq!(door.phase(), "running");
        assert!(
            door.fences(1).await.iter().all(|(_, f)| *f == 0),
            "source left fenced"
        );
        assert!(
            door.fences(2).await.iter().all(|(_, f)| *f == 1),
            "target unfenced"
        );
        assert!(
            door.etcd_keys("workflows/")
                .await
                .iter()
                .all(|k| !k.contains("reverse.")),
            "half-made reverse streams"
        );
        let st = door.status();
        assert_eq!(st["state"]["epoch"], 0, "routing flipped: {st}");
    };
    nothing_changed().await;

    // The target cannot keep up (its tables are locked): refused before
    // any fence, by the warm-up catch-up.
    door.wait_streams_running(Duration::from_secs(30)).await;
    let lock = lock_rows(&door, 2).await;
    let out = door.cutover("switch-traffic", &["--timeout", "2s", "--max-lag", "30s"]);
    unlock_rows(lock).await;
    refused(&out, "did not catch up with the source");
    assert!(out.stderr.contains("before any fence"), "{}", out.stderr);
    nothing_changed().await;

    // Catch-up timeout after the fence: the coordinator pauses 3 s between
    // the warm-up and the fence, the target's rows get locked meanwhile;
    // the fenced catch-up times out and the switch rolls back, unfencing
    // the source.
    c.stop(Duration::from_secs(10));
    let mut slow = door.coordinator(
        "slow",
        &[("FAILPOINTS", "switch::after_warmup=sleep(3000)")],
    );
    door.wait_leader("slow", Duration::from_secs(20)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;
    let wf_arg = wf.clone();
    let mut cli = door.ctx.spawn(
        "timeout-cli",
        &[
            "workflow",
            "switch-traffic",
            &wf_arg,
            "--timeout",
            "10s",
            "--max-lag",
            "30s",
        ],
    );
    wait_for("warm-up done", Duration::from_secs(60), || async {
        Ok(slow
            .log_text()
            .contains("warm-up catch-up done")
            .then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cli.log_text()));
    let lock = lock_rows(&door, 2).await;
    let code = cli.wait_exit(Duration::from_secs(120)).await;
    unlock_rows(lock).await;
    assert_ne!(code, Some(0), "the switch should fail:\n{}", cli.log_text());
    let text = cli.log_text();
    assert!(
        text.contains("catch-up timed out") && text.contains("rolled back"),
        "{text}"
    );
    nothing_changed().await;
    slow.stop(Duration::from_secs(10));
    let mut c = door.coordinator("c1", &[]);

    // A source shard down: its registered server does not answer.
    let key = format!("{}keyspaces/src", door.ctx.etcd_prefix);
    let mut etcd = door.ctx.etcd().await;
    let good = etcd
        .get(key.as_str(), None)
        .await
        .expect("get keyspace")
        .kvs()[0]
        .value()
        .to_vec();
    // The port ends the URL, or comes before its password reference.
    let port = door.ctx.admin_opts(1).tcp_port();
    let dead = String::from_utf8_lossy(&good)
        .replace(&format!(":{port}\""), ":1\"")
        .replace(&format!(":{port}?"), ":1?");
    assert_ne!(dead.as_bytes(), &good[..], "port not found in {dead}");
    etcd.put(key.as_str(), dead, None)
        .await
        .expect("break keyspace");
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &[]);
    etcd.put(key.as_str(), good, None)
        .await
        .expect("restore keyspace");
    refused(&out, "unreachable");
    nothing_changed().await;

    // A real switch, then cancel is refused.
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &[]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    refused(
        &door.cmd(&["workflow", "cancel", &wf]),
        "only possible before the first switch",
    );
    assert_eq!(door.phase(), "switched");

    let _ = door.finish_load(&mut writer, "writer").await;
    door.wait_converged(Duration::from_secs(60)).await;
    door.check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    // cancel before any switch: streams stop, fences and target tables go.
    door.ctx
        .sql(
            1,
            &[
                &format!("CREATE TABLE {db}.other (id INT PRIMARY KEY, v INT)"),
                &format!("INSERT INTO {db}.other VALUES (1, 1), (2, 2)"),
            ],
        )
        .await;
    let other = format!("{db}.other");
    let second = format!("{wf}_2");
    door.ok(&[
        "workflow", "create", &second, "--source", "src", "--target", "dst", "--tables", &other,
    ]);
    wait_for("second running", Duration::from_secs(60), || async {
        let st = door.ok(&["workflow", "status", &second, "--json"]);
        Ok(st.contains("\"phase\": \"running\"").then_some(()))
    })
    .await
    .expect("second workflow runs");
    let before = door.triggers(2).await;
    let out = door.ok(&["workflow", "cancel", &second]);
    assert!(out.contains("target tables dropped"), "{out}");
    assert_eq!(
        door.triggers(2).await,
        before - 3,
        "cancel leaves the other workflow's fences only"
    );
    let mut t = door.ctx.conn(2).await;
    let gone: Option<String> = mysql_async::prelude::Queryable::query_first(
        &mut t,
        format!("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'other'"),
    )
    .await
    .expect("read target tables");
    assert_eq!(gone, None, "cancel left the target table");
    assert!(door
        .etcd_keys(&format!("workflows/{second}/streams/"))
        .await
        .is_empty());
    // Its checkpoints went with it: the name can be used again.
    let mut src = door.ctx.conn(1).await;
    let left: Option<i64> = mysql_async::prelude::Queryable::exec_first(
        &mut src,
        "SELECT COUNT(*) FROM _revdoor.stream_state WHERE workflow = ?",
        (&second,),
    )
    .await
    .expect("read stream_state");
    assert_eq!(left, Some(0));

    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_killed_at_every_switch_step() {
    let door = Door::create("coord_crash", 3, &[("-", 4)], 100).await;
    let (mut c0, mut w) = door.started().await;
    c0.stop(Duration::from_secs(10));
    let mut writer = door.writer("writer", 1, 150);
    let mut prober = door.prober("prober");
    let steps = [
        ("switch::after_fence", false),
        ("switch::after_catchup", false),
        ("switch::after_positions", false),
        ("switch::after_reverse_created", false),
        ("switch::after_routing_flip", true),
        ("switch::after_unfence", true),
    ];
    for (i, (fp, finishes)) in steps.iter().enumerate() {
        let id_a = format!("dies{i}");
        let cfg = format!("{fp}=panic");
        let mut a = door.coordinator(&id_a, &[("FAILPOINTS", cfg.as_str())]);
        door.wait_leader(&id_a, Duration::from_secs(20)).await;
        let mut b = door.coordinator(&format!("standby{i}"), &[]);
        door.wait_streams_running(Duration::from_secs(60)).await;
        let before = door.phase();
        let action = if before == "switched" {
            "reverse-traffic"
        } else {
            "switch-traffic"
        };
        let out = door.cutover(action, &["--max-lag", "30s"]);
        let code = a.wait_exit(Duration::from_secs(20)).await;
        assert_ne!(code, Some(0), "{id_a} should have died at {fp}");
        if *finishes {
            assert!(
                out.ok,
                "{fp}: the standby should finish the switch:\n{}{}",
                out.stdout, out.stderr
            );
            assert_ne!(door.phase(), before, "{fp}: phase did not flip");
        } else {
            refused(&out, "rolled back");
            assert!(
                out.stderr.contains(&id_a),
                "the reason names the dead coordinator: {}",
                out.stderr
            );
            assert_eq!(
                door.phase(),
                before,
                "{fp}: rolled back but the phase changed"
            );
            let side = if before == "switched" { 4 } else { 3 };
            assert!(
                door.fences(side).await.iter().all(|(_, f)| *f == 0),
                "{fp}: serving side left fenced"
            );
        }
        b.stop(Duration::from_secs(10));
        b.assert_no_unexpected_errors(&["rolled back", "request ended"]);
    }
    // Everything still works with a healthy coordinator.
    let mut c = door.coordinator("final", &[]);
    for _ in 0..2 {
        door.wait_streams_running(Duration::from_secs(60)).await;
        let action = if door.phase() == "switched" {
            "reverse-traffic"
        } else {
            "switch-traffic"
        };
        let out = door.cutover(action, &["--max-lag", "30s"]);
        assert!(
            out.ok,
            "{action} after the crashes: {}{}",
            out.stdout, out.stderr
        );
    }
    let _ = door.finish_load(&mut writer, "writer").await;
    let p = door.finish_load(&mut prober, "prober").await;
    assert_eq!(p["violations"], 0, "{p}");
    door.wait_converged(Duration::from_secs(60)).await;
    door.check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_leader_writes_nothing_after_its_lease() {
    let door = Door::create("deposed", 5, &[("-", 1)], 50).await;
    let out = door.create_workflow();
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let mut c1 = door.coordinator_ttl("c1", "3s", &[]);
    door.wait_leader("c1", Duration::from_secs(20)).await;
    let mut w = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(60)).await;
    let mut c2 = door.coordinator_ttl("c2", "3s", &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        door.leader().await.as_deref(),
        Some("c1"),
        "exactly one leads"
    );

    c1.signal("STOP");
    door.wait_leader("c2", Duration::from_secs(15)).await;
    door.wait_streams_running(Duration::from_secs(30)).await;
    // Both paused; the old leader resumes first, with a request pending.
    c2.signal("STOP");
    let mut cli = door.ctx.spawn(
        "switch-cli",
        &["workflow", "switch-traffic", &door.ctx.workflow],
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    c1.signal("CONT");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        door.etcd_keys(&format!("workflows/{}/journal/", door.ctx.workflow))
            .await
            .is_empty(),
        "the deposed leader journaled the request"
    );
    c2.signal("CONT");
    let code = cli.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "switch: {}", cli.log_text());
    let st = door.status();
    assert_eq!(st["last_request"]["coordinator"], "c2", "{st}");
    assert_eq!(door.phase(), "switched");
    wait_for("c1 notices", Duration::from_secs(10), || async {
        Ok(c1.log_text().contains("lost leadership").then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}:\n{}", c1.log_text()));
    c1.stop(Duration::from_secs(10));
    c2.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}

/// A leader that lost its lease while stalled between unfencing one
/// target shard and the next, and that has not noticed (`lock::blind`),
/// runs on; meanwhile its successor finishes the switch and the operator
/// reverses it. The stalled leader's delayed unfence of the second target
/// shard must change nothing (its fencing token is older than the one on
/// the row): the target stays fenced, the source serves. Without the token
/// guard it unfences the target shard and both sides take writes
/// (docs/model/README.md, finding 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deposed_coordinator_running_on_changes_no_fence() {
    use mysql_async::prelude::Queryable;
    let door = Door::create("zombie", 5, &[("-80", 1), ("80-", 2)], 50).await;
    let out = door.create_workflow();
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let mut c1 = door.coordinator_ttl(
        "c1",
        "3s",
        &[(
            "FAILPOINTS",
            "switch::unfence_shard=sleep(4000);lock::blind=return",
        )],
    );
    door.wait_leader("c1", Duration::from_secs(20)).await;
    let mut w = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(60)).await;
    let mut c2 = door.coordinator_ttl("c2", "3s", &[]);
    door.wait_streams_running(Duration::from_secs(60)).await;
    let target_fenced = |fences: std::collections::BTreeSet<(String, i64)>| {
        fences.iter().any(|(side, f)| side == "target" && *f != 0)
    };

    let mut cli = door.ctx.spawn(
        "switch-cli",
        &[
            "workflow",
            "switch-traffic",
            &door.ctx.workflow,
            "--timeout",
            "60s",
        ],
    );
    // c1 unfenced the first target shard and sleeps before the second.
    wait_for("target -80 unfenced", Duration::from_secs(90), || async {
        Ok((!target_fenced(door.fences(1).await)).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c1.log_text()));
    assert!(
        target_fenced(door.fences(2).await),
        "c1 should still be sleeping before target 80-"
    );
    c1.signal("STOP");
    door.wait_leader("c2", Duration::from_secs(20)).await;
    let code = cli.wait_exit(Duration::from_secs(90)).await;
    assert_eq!(code, Some(0), "switch: {}", cli.log_text());
    assert_eq!(door.phase(), "switched");
    assert_eq!(door.status()["last_request"]["coordinator"], "c2");
    assert!(c2
        .log_text()
        .contains("resuming a request another coordinator left midway"));
    door.wait_streams_running(Duration::from_secs(120)).await;
    let out = door.cutover("reverse-traffic", &[]);
    assert!(out.ok, "reverse-traffic: {}{}", out.stdout, out.stderr);
    assert!(target_fenced(door.fences(2).await), "reverse fenced 80-");

    // c1 wakes up past its sleep and unfences target 80-, as it meant to.
    c1.signal("CONT");
    wait_for("c1 to stop leading", Duration::from_secs(30), || async {
        Ok(c1.log_text().contains("lost leadership").then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}:\n{}", c1.log_text()));
    assert!(
        target_fenced(door.fences(2).await),
        "the deposed leader unfenced target 80-: {:?}",
        door.fences(2).await
    );
    assert!(
        c1.log_text().contains("carries a later leader's token"),
        "{}",
        c1.log_text()
    );
    assert!(
        !c1.log_text().contains("request done"),
        "c1 must not have finished anything"
    );
    // An application write on target 80- is refused; the source serves.
    let mut t = door.ctx.conn(2).await;
    let refused = t
        .query_drop(format!(
            "UPDATE {}.accounts SET balance = balance WHERE id >= 0",
            door.ctx.db
        ))
        .await
        .expect_err("a write on the fenced target");
    assert!(refused.to_string().contains("revdoor"), "{refused}");
    assert_eq!(door.phase(), "reversed");
    assert!(door
        .fences(door.source)
        .await
        .iter()
        .all(|(side, f)| side != "source" || *f == 0));
    c1.stop(Duration::from_secs(10));
    c2.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}

/// The fence step meets a lost connection: an application transaction
/// holds the source's fence row in share mode (a write to a moved table,
/// not committed), so the fence `UPDATE` waits; the test kills the
/// coordinator's connection on the server while it waits, then commits the
/// application's write. The step reconnects and retries within
/// `--timeout`, the switch succeeds, and the write that committed before
/// the fence reaches the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fence_step_retries_after_its_connection_is_killed() {
    use mysql_async::prelude::Queryable;
    let door = Door::create("fencekill", 4, &[("-", 3)], 20).await;
    let (mut c, mut w) = door.started().await;
    door.wait_streams_running(Duration::from_secs(60)).await;
    let db = door.ctx.db.clone();

    let mut app = door.ctx.conn(door.source).await;
    app.query_drop("BEGIN").await.expect("begin");
    app.query_drop(format!(
        "UPDATE {db}.accounts SET balance = balance + 7, ops = ops + 1 WHERE id = 1"
    ))
    .await
    .expect("an application write before the switch");

    let wf = door.ctx.workflow.clone();
    let mut cli = door.ctx.spawn(
        "switch-cli",
        &["workflow", "switch-traffic", &wf, "--timeout", "60s"],
    );
    let mut admin = door.ctx.conn(door.source).await;
    let fence_id: u64 = wait_for(
        "the fence UPDATE waiting on the source",
        Duration::from_secs(60),
        || async {
            let mut a = door.ctx.conn(door.source).await;
            Ok(a.query_first::<u64, _>(
                "SELECT ID FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'UPDATE _revdoor.fences%SET pass%'",
            )
            .await?)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_text()));
    admin
        .query_drop(format!("KILL CONNECTION {fence_id}"))
        .await
        .expect("kill the coordinator's fence connection");
    wait_for("the step retrying", Duration::from_secs(30), || async {
        Ok(c.log_text()
            .contains("transient error; retrying within the step's deadline")
            .then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_text()));
    app.query_drop("COMMIT").await.expect("the write commits");

    let code = cli.wait_exit(Duration::from_secs(90)).await;
    assert_eq!(
        code,
        Some(0),
        "switch: {}\n{}",
        cli.log_text(),
        c.log_text()
    );
    assert_eq!(door.phase(), "switched");
    let st = door.status();
    assert_eq!(st["last_request"]["outcome"], "done", "{st}");
    // The write acknowledged before the fence is on the target.
    let balance = wait_for(
        "the write on the target",
        Duration::from_secs(60),
        || async {
            let mut t = door.ctx.conn(3).await;
            let b: Option<i64> = t
                .query_first(format!("SELECT balance FROM {db}.accounts WHERE id = 1"))
                .await?;
            Ok(b.filter(|b| *b == 1007))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    assert_eq!(balance, 1007);
    assert!(door.fences(door.source).await.iter().all(|(_, f)| *f != 0));
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_spread_streams_and_take_over_a_dead_ones() {
    let door = Door::create("workers", 2, &[("-80", 3), ("80-", 4)], 100).await;
    let (mut c, w1) = door.started().await;
    let mut writer = door.writer("writer", 1, 150);
    let on = |st: &serde_json::Value| -> Vec<(String, String)> {
        st["streams"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|s| s["direction"] == "forward")
            .map(|s| {
                (
                    s["id"].as_str().unwrap_or_default().to_string(),
                    s["status"]["worker"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    assert!(on(&door.status()).iter().all(|(_, w)| w == "w1"));
    let mut workers = vec![w1, door.worker("w2"), door.worker("w3")];
    wait_for(
        "streams spread over 3 workers",
        Duration::from_secs(60),
        || async {
            let st = door.status();
            let mut ws: Vec<String> = on(&st).into_iter().map(|(_, w)| w).collect();
            ws.sort();
            let running = st["streams"].as_array().is_some_and(|a| {
                a.iter()
                    .filter(|s| s["direction"] == "forward")
                    .all(|s| s["status"]["state"] == "running")
            });
            Ok((running && ws == ["w1", "w2", "w3"]).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", door.status()));

    // Kill the worker running the capture; its stream resumes elsewhere.
    let victim = on(&door.status())
        .into_iter()
        .find(|(id, _)| id.contains("capture"))
        .map(|(_, w)| w)
        .expect("capture placed");
    let idx = ["w1", "w2", "w3"]
        .iter()
        .position(|w| *w == victim)
        .expect("victim is one of ours");
    let killed_at = Instant::now();
    workers[idx].kill9();
    wait_for(
        "streams on live workers",
        Duration::from_secs(2 + 5),
        || async {
            let st = door.status();
            let ok = on(&st).iter().all(|(_, w)| !w.is_empty() && *w != victim)
                && st["streams"].as_array().is_some_and(|a| {
                    a.iter()
                        .filter(|s| s["direction"] == "forward")
                        .all(|s| s["status"]["state"] == "running")
                });
            Ok(ok.then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", door.status()));
    eprintln!(
        "streams of killed worker {victim} running elsewhere after {:?}",
        killed_at.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    let _ = door.finish_load(&mut writer, "writer").await;
    door.wait_converged(Duration::from_secs(60)).await;
    door.check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    c.stop(Duration::from_secs(10));
    for w in &mut workers {
        w.stop(Duration::from_secs(30));
    }
}
