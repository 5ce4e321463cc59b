//! Operator paths (issue 18 items 5, 6 and 8) on the real stack:
//! `keyspace set-shard` after a password rotation — streams retrying with
//! the error, since when and what to do in `workflow status`, then
//! recovering without a restart and nothing lost —; set-shard refusals
//! that change nothing; `workflow set --on-ddl` unblocking a capture halted
//! on a DDL; a system-versioned table refused at `workflow create` with
//! nothing left behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_tests::door::Door;
use revdoor_tests::{admin_sql_blocking, wait_for, TestCtx};

const OLD_PW: &str = "ops-pw-one";
const NEW_PW: &str = "ops-pw-two";

/// A dedicated account of this test with revdoor's grants (the stack's
/// shared accounts are never rotated: other tests use them meanwhile).
fn account(ctx: &TestCtx) -> String {
    let n: String = ctx.id.chars().rev().take(20).collect::<String>();
    format!("rd_{}", n.chars().rev().collect::<String>())
}

/// `account`'s URL on server `i`, creating the account there (MariaDB).
fn dedicated_url(ctx: &TestCtx, i: usize) -> String {
    let user = account(ctx);
    admin_sql_blocking(
        &ctx.stack.servers[i - 1].url,
        &format!(
            "CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{OLD_PW}'; \
             GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, TRIGGER, \
             REFERENCES, LOCK TABLES, SHOW VIEW, REPLICATION SLAVE, BINLOG MONITOR, \
             READ_ONLY ADMIN ON *.* TO '{user}'@'%'"
        ),
    );
    with_password(&ctx.revdoor_url(i), &ctx.stack.revdoor_user, &user, OLD_PW)
}

/// `url` of `old_user` as `user` with `pw`.
fn with_password(url: &str, old_user: &str, user: &str, pw: &str) -> String {
    let rest = url.split_once('@').map(|(_, r)| r).expect("a URL with @");
    assert!(url.starts_with(&format!("mysql://{old_user}")));
    format!("mysql://{user}:{pw}@{rest}")
}

/// The registry records a set-shard changes: keyspaces, this workflow's
/// stream specs, every assignment of its streams.
async fn records(door: &Door) -> BTreeMap<String, String> {
    let mut c = door.ctx.etcd().await;
    let resp = c
        .get(
            door.ctx.etcd_prefix.as_str(),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .expect("etcd get");
    resp.kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .filter(|(k, _)| {
            k.contains("/keyspaces/") || k.contains("/streams/") || k.contains("/assignments/")
        })
        .collect()
}

/// When stream `id` first reported being refused by its server's account,
/// if it does now, with the advice to set-shard keyspace `ks`.
fn denied(st: &serde_json::Value, id: &str, ks: &str) -> Option<u64> {
    let s = stream(st, id);
    let denied = matches!(s["status"]["state"].as_str(), Some("error" | "halted"))
        && s["status"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Access denied"))
        && s["advice"]
            .as_str()
            .is_some_and(|a| a.contains(&format!("revdoor keyspace set-shard {ks} --shard")));
    denied
        .then(|| s["status"]["error_since_ms"].as_u64())
        .flatten()
}

/// The stream `id` of `workflow status --json`.
fn stream(st: &serde_json::Value, id: &str) -> serde_json::Value {
    st["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_shard_after_a_password_rotation_recovers_every_stream() {
    let door = Door::create_via("rotate", 1, &[("-", 2)], 50, &dedicated_url).await;
    let user = account(&door.ctx);
    let wf = door.ctx.workflow.clone();
    let (mut c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 100);

    // The password changes on both servers; the sessions revdoor holds are
    // cut, as a rotation that ends old sessions does.
    for i in [door.source, door.target[0].1] {
        let mut a = door.ctx.conn(i).await;
        a.query_drop(format!("ALTER USER '{user}'@'%' IDENTIFIED BY '{NEW_PW}'"))
            .await
            .expect("rotate the password");
        let ids: Vec<u64> = a
            .exec(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?",
                (&user,),
            )
            .await
            .expect("sessions");
        for id in ids {
            let _ = a.query_drop(format!("KILL CONNECTION {id}")).await;
        }
    }
    let rotated = Instant::now();

    // The capture retries with the error, since when, and what to do (the
    // apply has nothing to write until the capture goes on).
    let capture = "forward.capture.-";
    let since = wait_for(
        "capture retrying on the password",
        Duration::from_secs(60),
        || async { Ok(denied(&door.status(), capture, "src")) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    eprintln!(
        "capture reports the rotation {:?} after it",
        rotated.elapsed()
    );
    let text = door.cmd(&["workflow", "status", &wf]);
    assert!(
        text.stdout.contains("error for ")
            && text.stdout.contains("Access denied")
            && text
                .stdout
                .contains("revdoor keyspace set-shard src --shard '-=<mysql-url>'"),
        "status text: {}",
        text.stdout
    );
    // Retried meanwhile (every ≤ 10 s): the first-seen time stays.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        denied(&door.status(), capture, "src"),
        Some(since),
        "since moved: {}",
        door.status()
    );

    // Refusals change nothing: an unknown range, an unreachable server,
    // the old (now wrong) password.
    let before = records(&door).await;
    let src_new = with_password(
        &door.ctx.revdoor_url(door.source),
        &door.ctx.stack.revdoor_user,
        &user,
        NEW_PW,
    );
    let src_old = with_password(
        &door.ctx.revdoor_url(door.source),
        &door.ctx.stack.revdoor_user,
        &user,
        OLD_PW,
    );
    // Registered as `keyspace add` takes them: the password in a file.
    let src_new = door.ctx.shard_url(&src_new);
    let src_old = door.ctx.shard_url(&src_old);
    let cases = [
        (
            "src",
            format!("80-={src_new}"),
            "keyspace src has no shard 80- (its shards: -)",
        ),
        (
            "src",
            format!(
                "-={}",
                door.ctx
                    .shard_url(&format!("mysql://{user}:{NEW_PW}@127.0.0.1:1"))
            ),
            "nothing listens at that host and port",
        ),
        (
            "src",
            format!("-={src_old}"),
            "wrong user or password in the URL",
        ),
        ("nosuch", format!("-={src_new}"), "unknown keyspace nosuch"),
    ];
    for (ks, shard, want) in &cases {
        let out = door.cmd(&["keyspace", "set-shard", ks, "--shard", shard]);
        assert!(!out.ok, "set-shard {ks} accepted: {}", out.stdout);
        assert!(out.stderr.contains(want), "{want}: {}", out.stderr);
        for pw in [OLD_PW, NEW_PW] {
            assert!(
                !out.stderr.contains(pw) && !out.stdout.contains(pw),
                "a password printed: {}{}",
                out.stdout,
                out.stderr
            );
        }
    }
    assert_eq!(
        records(&door).await,
        before,
        "a refused set-shard changed the registry"
    );

    // The new URL, the source's first: the capture goes on, then the apply
    // meets the rotation in its turn; then the target's. The streams
    // recover without a worker restart.
    let fixed = Instant::now();
    for (ks, server) in [("src", door.source), ("dst", door.target[0].1)] {
        if ks == "dst" {
            wait_for(
                "apply retrying on the password",
                Duration::from_secs(60),
                || async { Ok(denied(&door.status(), "forward.apply.0", "dst")) },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
        }
        let url = door.ctx.shard_url(&with_password(
            &door.ctx.revdoor_url(server),
            &door.ctx.stack.revdoor_user,
            &user,
            NEW_PW,
        ));
        let out = door.cmd(&["keyspace", "set-shard", ks, "--shard", &format!("-={url}")]);
        assert!(out.ok, "set-shard {ks}: {}{}", out.stdout, out.stderr);
        assert!(
            !out.stdout.contains(NEW_PW) && !out.stderr.contains(NEW_PW),
            "{}",
            out.stdout
        );
        let restarted = if ks == "src" {
            "forward.capture.-"
        } else {
            "forward.apply.0"
        };
        assert!(
            out.stdout.contains(&format!("{wf}/{restarted}: restarts")),
            "{}",
            out.stdout
        );
    }
    let shown = door.ok(&["keyspace", "show", "src"]);
    assert!(
        shown.contains(&format!("mysql://{user}@"))
            && shown.contains("?password_file=")
            && !shown.contains(NEW_PW),
        "{shown}"
    );
    door.wait_streams_running(Duration::from_secs(90)).await;
    eprintln!("recovered {:?} after set-shard", fixed.elapsed());
    let st = door.status();
    for id in ["forward.capture.-", "forward.apply.0"] {
        let s = stream(&st, id);
        assert!(
            s["status"]["error"].is_null()
                && s["status"]["error_since_ms"].is_null()
                && s["advice"].is_null(),
            "{id}: {s}"
        );
    }
    assert_eq!(w.exited(), None, "the worker kept running");

    // Nothing lost: every acknowledged write on both sides.
    let _ = door.finish_load(&mut writer, "writer").await;
    door.wait_converged(Duration::from_secs(90)).await;
    let acked = door
        .check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(acked > 0);
    eprintln!("{acked} acknowledged writes on both sides");
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
    c.assert_no_unexpected_errors(&[]);
    w.assert_no_unexpected_errors(&["Access denied"]);
    for i in [door.source, door.target[0].1] {
        door.ctx
            .sql(i, &[&format!("DROP USER IF EXISTS '{user}'@'%'")])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workflow_set_on_ddl_unblocks_a_capture_halted_on_a_ddl() {
    let door = Door::create("onddl", 1, &[("-", 2)], 50).await;
    let wf = door.ctx.workflow.clone();
    let (mut c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 50);
    let db = door.ctx.db.clone();
    door.ctx
        .sql(
            door.source,
            &[&format!(
                "ALTER TABLE {db}.ledger ADD COLUMN note VARCHAR(20) NULL"
            )],
        )
        .await;
    wait_for(
        "capture halted on the DDL",
        Duration::from_secs(60),
        || async {
            let s = stream(&door.status(), "forward.capture.-");
            let halted = s["status"]["state"] == "halted"
                && s["status"]["error"].as_str().is_some_and(|e| {
                    e.contains(&format!("revdoor workflow set {wf} --on-ddl ignore"))
                });
            Ok(halted.then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));

    for (args, want) in [
        (
            vec!["workflow", "set", &wf, "--on-ddl", "skip"],
            "--on-ddl skip: revdoor supports `stop`",
        ),
        (
            vec!["workflow", "set", "w_nosuch", "--on-ddl", "exec"],
            "unknown workflow w_nosuch",
        ),
    ] {
        let out = door.cmd(&args);
        assert!(!out.ok, "{args:?} accepted: {}", out.stdout);
        assert!(out.stderr.contains(want), "{want}: {}", out.stderr);
    }
    assert_eq!(door.status()["workflow"]["on_ddl"], "stop");

    let out = door.cmd(&["workflow", "set", &wf, "--on-ddl", "exec"]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("{wf}/forward.capture.-: restarts")),
        "{}",
        out.stdout
    );
    assert_eq!(door.status()["workflow"]["on_ddl"], "exec");
    let resumed = Instant::now();
    door.wait_streams_running(Duration::from_secs(90)).await;
    eprintln!("capture resumed {:?} after workflow set", resumed.elapsed());

    // The DDL ran on the target; every row around it arrived.
    let _ = door.finish_load(&mut writer, "writer").await;
    door.wait_converged(Duration::from_secs(90)).await;
    let mut t = door.ctx.conn(door.target[0].1).await;
    let cols: Vec<String> = t
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'ledger'",
            (&db,),
        )
        .await
        .expect("target columns");
    assert!(cols.iter().any(|c| c == "note"), "{cols:?}");
    let acked = door
        .check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(acked > 0);
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
    c.assert_no_unexpected_errors(&[]);
    w.assert_no_unexpected_errors(&["on_ddl=stop halts the stream"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_system_versioned_table_is_refused_and_nothing_is_created() {
    let door = Door::create("sysver", 1, &[("-", 2)], 10).await;
    let db = door.ctx.db.clone();
    door.ctx
        .sql(
            door.source,
            &[&format!(
                "CREATE TABLE {db}.hist (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING"
            )],
        )
        .await;
    let out = door.create_workflow_with(&["hist"]);
    assert!(!out.ok, "created: {}", out.stdout);
    assert!(
        out.stderr
            .contains(&format!("table {db}.hist is system-versioned"))
            && out
                .stderr
                .contains(&format!("ALTER TABLE {db}.hist DROP SYSTEM VERSIONING")),
        "{}",
        out.stderr
    );
    assert!(
        door.etcd_keys("workflows/").await.is_empty(),
        "a workflow registered"
    );
    assert_eq!(
        door.triggers(door.source).await,
        0,
        "fence triggers on the source"
    );
    let mut t = door.ctx.conn(door.target[0].1).await;
    let n: Option<i64> = t
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (&db,),
        )
        .await
        .expect("target tables");
    assert_eq!(n, Some(0), "tables made on the target");
}
