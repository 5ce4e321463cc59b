//! The config file and secrets (issue 15): a config file alone — no flag
//! and none of the stack's `REVDOOR_*` variables — runs the coordinator,
//! the worker and every `workflow` command; a shard record written by an
//! earlier revdoor with its password inside the URL keeps working, is
//! warned about, and `keyspace set-shard` rewrites it; after the run no
//! etcd key or value holds a password. Bad config files and password
//! references are refused with what is wrong and what to do, nothing
//! registered. ≈ 60–90 s.

use std::time::Duration;

use revdoor_tests::door::Door;
use revdoor_tests::TestCtx;

/// The variable the test's config and shard URLs name for the password.
const PW_ENV: &str = "REVDOOR_CFG_TEST_PW";

/// Output of a finished command as (ok, stdout, stderr).
fn out(o: std::process::Output) -> (bool, String, String) {
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A file of the test holding `text`; its path.
fn write(ctx: &TestCtx, name: &str, text: &str) -> String {
    let p = ctx.logs.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p.to_string_lossy().into_owned()
}

/// The top of a config file: the stack's endpoints and the test's prefix.
fn endpoints(ctx: &TestCtx) -> String {
    format!(
        "kafka = \"{}\"\netcd = \"{}\"\netcd_prefix = \"{}\"\n",
        ctx.stack.kafka, ctx.stack.etcd, ctx.etcd_prefix
    )
}

/// `mysql://user@host:port` of revdoor's account on server `i`: no
/// password, no reference.
fn bare_url(ctx: &TestCtx, i: usize) -> String {
    let o = ctx.admin_opts(i);
    format!(
        "mysql://{}@{}:{}",
        ctx.stack.revdoor_user,
        o.ip_or_hostname(),
        o.tcp_port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_config_file_alone_runs_the_workflow_and_etcd_holds_no_password() {
    let door = Door::create("cfg_alone", 1, &[("-80", 2), ("80-", 3)], 50).await;
    let ctx = &door.ctx;
    let db = &ctx.db;
    let pw = ctx.stack.revdoor_password.clone();

    // Keyspace src as an earlier revdoor wrote it: the password inside
    // the URL.
    let mut etcd = ctx.etcd().await;
    let key = format!("{}keyspaces/src", ctx.etcd_prefix);
    let legacy = serde_json::json!({
        "name": "src",
        "shards": [{"range": "-", "url": ctx.revdoor_url(door.source)}],
    });
    etcd.put(key.as_str(), legacy.to_string(), None)
        .await
        .expect("put the legacy keyspace record");

    let config = write(
        ctx,
        "revdoor.toml",
        &format!(
            r#"{top}
[coordinator.run]
id = "cfg-c0"
lease_ttl = "2s"

[worker.run]
id = "cfg-w1"
lease_ttl = "2s"
apply_parallelism = 2

[keyspace.set_shard]
password_env = "{PW_ENV}"

[workflow.create]
source = "src"
target = "dst"
tables = ["{db}.accounts", "{db}.ledger"]
sharding_key = ["{db}.ledger=account_id"]

[workflow.status]
json = true

[workflow.set]
on_ddl = "ignore"

[workflow.switch_traffic]
max_lag = "30s"
timeout = "60s"

[workflow.reverse_traffic]
max_lag = "30s"
timeout = "60s"

[workflow.complete]
wait = "120s"
"#,
            top = endpoints(ctx),
        ),
    );
    let env = [("REVDOOR_CONFIG", config.as_str()), (PW_ENV, pw.as_str())];
    let run = |args: &[&str]| out(ctx.run_bare(args, &env));
    let ok = |args: &[&str]| {
        let (ok, stdout, stderr) = run(args);
        assert!(ok, "revdoor {args:?} failed:\n{stdout}\n{stderr}");
        for text in [&stdout, &stderr] {
            assert!(!text.contains(&pw), "a password printed: {text}");
        }
        stdout
    };

    // The legacy record: shown without its password, warned about.
    let (shown_ok, shown, warned) = run(&["keyspace", "show", "src", "--json"]);
    assert!(shown_ok, "{warned}");
    assert!(
        !shown.contains(&pw),
        "keyspace show --json printed a password: {shown}"
    );
    assert!(shown.contains(":***@"), "{shown}");
    assert!(
        warned.contains("keyspace src shard - stores its password in etcd")
            && warned.contains("revdoor keyspace set-shard src"),
        "{warned}"
    );

    // Coordinator and worker from the file alone (ids, TTLs, endpoints).
    let mut coordinator = ctx.spawn_bare("cfg-c0", &["coordinator", "run"], &env);
    let mut worker = ctx.spawn_bare("cfg-w1", &["worker", "run"], &env);
    door.wait_leader("cfg-c0", Duration::from_secs(30)).await;

    // Every workflow command with only its positional workflow name.
    let wf = ctx.workflow.as_str();
    ok(&["workflow", "create", wf]);
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;
    let status: serde_json::Value = serde_json::from_str(&ok(&["workflow", "status", wf]))
        .expect("status is JSON (file: json = true)");
    assert_eq!(status["state"]["phase"], "running", "{status}");
    let workers = ok(&["workflow", "status", wf]);
    assert!(
        workers.contains("cfg-w1"),
        "the worker's id from the file: {workers}"
    );

    // set-shard rewrites the legacy record with a reference (the file's
    // password_env), and the streams on it with it.
    let src = format!("-={}", bare_url(ctx, door.source));
    let set = ok(&["keyspace", "set-shard", "src", "--shard", &src]);
    assert!(set.contains(&format!("?password_env={PW_ENV}")), "{set}");
    let (_, _, warned) = run(&["keyspace", "show", "src"]);
    assert!(
        !warned.contains("stores its password"),
        "still warned: {warned}"
    );

    ok(&["workflow", "set", wf]);
    let spec: serde_json::Value =
        serde_json::from_str(&ok(&["workflow", "status", wf])).expect("status JSON");
    assert_eq!(spec["workflow"]["on_ddl"], "ignore", "{spec}");

    door.wait_streams_running(Duration::from_secs(60)).await;
    let switched = ok(&["workflow", "switch-traffic", wf]);
    assert!(switched.contains("window"), "{switched}");
    door.wait_streams_running(Duration::from_secs(60)).await;
    ok(&["workflow", "reverse-traffic", wf]);
    door.wait_streams_running(Duration::from_secs(60)).await;
    ok(&["workflow", "switch-traffic", wf]);

    // Every key and value under the test's prefix: no password.
    door.assert_no_password_in_etcd(&[&pw]).await;

    ok(&["workflow", "complete", wf]);
    assert_eq!(door.phase(), "completed");
    door.assert_no_password_in_etcd(&[&pw]).await;

    // cancel, from a file of its own (another workflow, another table).
    ctx.sql(
        door.source,
        &[&format!(
            "CREATE TABLE {db}.extra (id INT PRIMARY KEY, v INT)"
        )],
    )
    .await;
    let second = format!("{wf}x");
    let config2 = write(
        ctx,
        "revdoor-cancel.toml",
        &format!(
            r#"{top}
[workflow.create]
source = "src"
target = "dst"
tables = ["{db}.extra"]

[workflow.cancel]
keep_data = true
wait = "120s"
"#,
            top = endpoints(ctx),
        ),
    );
    let env2 = [("REVDOOR_CONFIG", config2.as_str()), (PW_ENV, pw.as_str())];
    let (created, o, e) = out(ctx.run_bare(&["workflow", "create", &second], &env2));
    assert!(created, "create {second}: {o}{e}");
    let (cancelled, o, e) = out(ctx.run_bare(&["workflow", "cancel", &second], &env2));
    assert!(cancelled, "cancel {second}: {o}{e}");
    let st = out(ctx.run(&["workflow", "status", &second, "--json"])).1;
    let st: serde_json::Value = serde_json::from_str(&st).expect("status JSON");
    assert_eq!(st["state"]["phase"], "cancelled", "{st}");
    door.assert_no_password_in_etcd(&[&pw]).await;

    coordinator.stop(Duration::from_secs(10));
    worker.stop(Duration::from_secs(30));
    coordinator.assert_no_unexpected_errors(&[]);
    worker.assert_no_unexpected_errors(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_config_files_and_password_references_are_refused_clearly() {
    let ctx = TestCtx::new("cfg_bad");
    let pw = ctx.stack.revdoor_password.clone();

    // The config file: an unknown key, a bad value, a missing file.
    let cases = [
        (
            "[worker.run]\nleasettl = \"5s\"\n",
            vec!["worker", "run"],
            vec![
                "line 2: unknown key `leasettl` in [worker.run]",
                "the closest known key is `lease_ttl`",
            ],
        ),
        (
            "[coordinator.run]\nlease_ttl = \"5 parsecs\"\n",
            vec!["coordinator", "run"],
            vec![
                "line 2: [coordinator.run] lease_ttl = \"5 parsecs\"",
                "unknown time unit",
                "(what --lease-ttl takes)",
            ],
        ),
        (
            "[vdiff.create]\nchunk_rows = \"lots\"\n",
            vec!["vdiff", "create", "wf"],
            vec!["[vdiff.create] chunk_rows = \"lots\"", "invalid digit"],
        ),
        (
            "[workflow.create]\non_ddl = [\"stop\", \"exec\"]\n",
            vec!["workflow", "create", "wf"],
            vec!["[workflow.create] on_ddl: this flag takes one value, not a list"],
        ),
        (
            "etcd_prefixx = \"/x/\"\n",
            vec!["keyspace", "show"],
            vec![
                "unknown key `etcd_prefixx` in the top level",
                "`etcd_prefix`",
            ],
        ),
    ];
    for (i, (text, args, want)) in cases.iter().enumerate() {
        let file = write(&ctx, &format!("bad-{i}.toml"), text);
        let (ok, _, stderr) = out(ctx.run_bare(args, &[("REVDOOR_CONFIG", &file)]));
        assert!(!ok, "{text} accepted");
        for w in want {
            assert!(stderr.contains(w), "{text}: want {w:?} in: {stderr}");
        }
        assert!(stderr.contains(&file), "the file is named: {stderr}");
    }
    let (ok, _, stderr) = out(ctx.run_bare(
        &["worker", "run"],
        &[("REVDOOR_CONFIG", "/nonexistent/revdoor.toml")],
    ));
    assert!(!ok);
    assert!(
        stderr.contains("config file /nonexistent/revdoor.toml (REVDOOR_CONFIG): cannot read it"),
        "{stderr}"
    );

    // Passwords: in a URL refused with the way out; a reference that does
    // not resolve names what is missing. Nothing registered.
    let url = bare_url(&ctx, 2);
    let missing = ctx.logs.join("no-such-password-file");
    let refusals = [
        (
            vec![format!("-={}", ctx.revdoor_url(2))],
            vec![],
            "holds a password, and revdoor stores no password in etcd: give the URL without it \
             and the password with --password-env NAME or --password-file PATH",
        ),
        (
            vec![format!("-={url}")],
            vec![
                "--password-file".to_string(),
                missing.to_string_lossy().into_owned(),
            ],
            "cannot read it",
        ),
        (
            vec![format!("-={url}")],
            vec![
                "--password-env".to_string(),
                "REVDOOR_CFG_TEST_UNSET".to_string(),
            ],
            "password_env REVDOOR_CFG_TEST_UNSET: the variable is not set",
        ),
        (
            vec![format!("-={url}")],
            vec!["--password-file".to_string(), "relative.pw".to_string()],
            "is not an absolute path",
        ),
    ];
    for (shards, extra, want) in &refusals {
        let mut args = vec!["keyspace", "add", "ks"];
        for s in shards {
            args.extend(["--shard", s.as_str()]);
        }
        args.extend(extra.iter().map(String::as_str));
        let (ok, stdout, stderr) = out(ctx.run(&args));
        assert!(!ok, "{args:?} accepted: {stdout}");
        assert!(stderr.contains(want), "want {want:?} in: {stderr}");
        assert!(!stderr.contains(&pw), "a password printed: {stderr}");
    }
    let (ok, shown, stderr) = out(ctx.run(&["keyspace", "show", "--json"]));
    assert!(ok, "{stderr}");
    assert!(
        !shown.contains("\"ks\""),
        "a refused keyspace registered: {shown}"
    );

    // The same URL with a reference that resolves: registered, stored as
    // given (the reference, not the password).
    std::fs::write(&missing, format!("{pw}\n")).expect("write the password file");
    let (ok, stdout, stderr) = out(ctx.run(&[
        "keyspace",
        "add",
        "ks",
        "--shard",
        &format!("-={url}"),
        "--password-file",
        &missing.to_string_lossy(),
    ]));
    assert!(ok, "{stdout}{stderr}");
    let shown = out(ctx.run(&["keyspace", "show", "ks", "--json"])).1;
    assert!(
        shown.contains(&format!("{url}?password_file={}", missing.display())),
        "{shown}"
    );
    assert!(!shown.contains(&pw), "{shown}");
}
