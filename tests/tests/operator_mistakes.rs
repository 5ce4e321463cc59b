//! Operator mistakes (issue 17): each a clear error naming what is wrong
//! and what to do, and nothing half-done — shard ranges that overlap or
//! leave a gap, a wrong password or an unreachable host in a shard URL, two
//! `switch-traffic` at once from two shells, `complete` while a switch runs.

use std::time::Duration;

use revdoor_tests::door::Door;
use revdoor_tests::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_keyspaces_are_refused_and_nothing_is_registered() {
    let door = Door::create("bad_ks", 1, &[("-", 2)], 10).await;
    let good = door.ctx.revdoor_url(2);
    let wrong_pw = good.replacen(
        &format!(":{}@", door.ctx.stack.revdoor_password),
        ":not-the-password@",
        1,
    );
    assert_ne!(wrong_pw, good);
    // As `keyspace add` takes them: the passwords in files.
    let (good, wrong_pw) = (door.ctx.shard_url(&good), door.ctx.shard_url(&wrong_pw));
    let cases: [(&str, Vec<String>, &str); 4] = [
        (
            "overlap",
            vec![format!("-80={good}"), format!("70-={good}")],
            "shard ranges overlap: 70-80 is in more than one shard",
        ),
        (
            "gap",
            vec![format!("-80={good}"), format!("90-={good}")],
            "shard ranges leave a gap: 80-90 is in no shard",
        ),
        (
            "wrongpw",
            vec![format!("-={wrong_pw}")],
            "wrong user or password in the URL",
        ),
        (
            "unreachable",
            vec![format!(
                "-={}",
                door.ctx.shard_url("mysql://revdoor:pw@127.0.0.1:1")
            )],
            "nothing listens at that host and port",
        ),
    ];
    for (name, shards, want) in cases {
        let mut args = vec!["keyspace", "add", name];
        for s in &shards {
            args.extend(["--shard", s.as_str()]);
        }
        let out = door.cmd(&args);
        assert!(!out.ok, "keyspace {name} accepted: {}", out.stdout);
        assert!(out.stderr.contains(want), "{name}: {}", out.stderr);
        assert!(
            !out.stderr.contains("not-the-password"),
            "a password in a message: {}",
            out.stderr
        );
    }
    let shown = door.ok(&["keyspace", "show", "--json"]);
    for name in ["overlap", "gap", "wrongpw", "unreachable"] {
        assert!(
            !shown.contains(&format!("\"{name}\"")),
            "{name} registered: {shown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_requests_run_one_at_a_time() {
    let door = Door::create("race", 3, &[("-", 4)], 50).await;
    let (mut c, mut w) = door.started().await;
    let wf = door.ctx.workflow.clone();

    // Two switch-traffic at once from two shells: one runs, the other is
    // refused at once; the workflow switched exactly once.
    let mut a = door
        .ctx
        .spawn("switch-a", &["workflow", "switch-traffic", &wf]);
    let mut b = door
        .ctx
        .spawn("switch-b", &["workflow", "switch-traffic", &wf]);
    let (ca, cb) = (
        a.wait_exit(Duration::from_secs(120)).await,
        b.wait_exit(Duration::from_secs(120)).await,
    );
    let logs = [a.log_text(), b.log_text()];
    let ok = [ca == Some(0), cb == Some(0)];
    assert!(
        ok[0] != ok[1],
        "exactly one of two racing switches runs: {logs:?}"
    );
    let refused = if ok[0] { &logs[1] } else { &logs[0] };
    assert!(
        refused.contains("already has a request in progress")
            || refused.contains("traffic is already on the target"),
        "the loser says why: {refused}"
    );
    assert_eq!(door.phase(), "switched");
    assert_eq!(door.windows().len(), 1, "switched once");

    // complete while reverse-traffic runs (a leader pausing after the
    // fence): refused, naming the running request; the reverse finishes.
    c.stop(Duration::from_secs(10));
    let mut c = door.coordinator("slow", &[("FAILPOINTS", "switch::after_fence=sleep(5000)")]);
    door.wait_leader("slow", Duration::from_secs(30)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;
    let mut rev = door
        .ctx
        .spawn("reverse", &["workflow", "reverse-traffic", &wf]);
    wait_for(
        "reverse-traffic running",
        Duration::from_secs(60),
        || async {
            let st = door.status();
            let running = st["last_request"]["outcome"] == "running"
                && st["last_request"]["request"]["action"] == "reverse-traffic";
            Ok(running.then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    let out = door.cmd(&["workflow", "complete", &wf]);
    assert!(!out.ok, "complete during a switch: {}", out.stdout);
    assert!(
        out.stderr
            .contains("already has a request in progress (reverse-traffic)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        rev.wait_exit(Duration::from_secs(120)).await,
        Some(0),
        "{}",
        rev.log_text()
    );
    assert_eq!(door.phase(), "reversed");

    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
    c.assert_no_unexpected_errors(&[]);
    w.assert_no_unexpected_errors(&[]);
}

/// A row larger than Kafka accepts: the capture halts with an error naming
/// the size and what to do — not retried forever — and publishes nothing of
/// its transaction; `workflow status` says so and exits 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_row_halts_capture_with_a_clear_error() {
    let door = Door::create("big_row", 5, &[("-", 4)], 10).await;
    let db = door.ctx.db.clone();
    door.ctx
        .sql(
            5,
            &[&format!(
                "CREATE TABLE {db}.blobs (id INT PRIMARY KEY, b LONGBLOB NOT NULL)"
            )],
        )
        .await;
    let out = door.create_workflow_with(&["blobs"]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let mut c = door.coordinator("c0", &[]);
    let mut w = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(30)).await;
    // 16.2 MB: within the source's max_allowed_packet (16 MiB), above
    // revdoor's producer limit (16,000,000 bytes).
    door.ctx
        .sql(
            5,
            &[&format!(
                "INSERT INTO {db}.blobs VALUES (1, REPEAT('x', 16200000))"
            )],
        )
        .await;
    let halted = wait_for("capture halted", Duration::from_secs(60), || async {
        let st = door.status();
        let s = st["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == "forward.capture.-").cloned())
            .unwrap_or_default();
        Ok((s["status"]["state"] == "halted").then(|| s["status"]["error"].to_string()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    assert!(
        halted.contains("larger than Kafka accepts") && halted.contains("message.max.bytes"),
        "{halted}"
    );
    let status = door.cmd(&["workflow", "status", &door.ctx.workflow]);
    assert!(!status.ok, "status exits non-zero with a halted stream");
    // Nothing of the row reached the target.
    let mut t = door.ctx.conn(4).await;
    let n: Option<i64> = mysql_async::prelude::Queryable::query_first(
        &mut t,
        format!("SELECT COUNT(*) FROM {db}.blobs"),
    )
    .await
    .expect("count");
    assert_eq!(n, Some(0));
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
    c.assert_no_unexpected_errors(&[]);
    w.assert_no_unexpected_errors(&["larger than Kafka accepts", "stream stopped"]);
}
