//! Metrics and logs of a real run (issue 15; issue 18 item 6's metrics
//! part): a coordinator and a worker serve `/metrics`, a real Prometheus
//! scrapes them, and after a revolving-door run (writes, switch, reverse,
//! switch) its HTTP API returns row counts, copy progress, lag and switch
//! windows that agree with `workflow status --json`; the Grafana dashboard
//! names only metrics the processes expose, and `promtool` accepts the
//! alert rules. Every process logs JSON (`--log-json`), and no log line of
//! the run — coordinator, worker, writer, CLI commands — holds a password
//! it used or a row value it moved.
//!
//! Runs ≈ 1–2 min (one revolving-door run of three cutovers).

use std::collections::BTreeSet;
use std::time::Duration;

use revdoor_tests::door::Door;
use revdoor_tests::prometheus::{exposed_names, free_port, http_get, sample, which, Prometheus};
use revdoor_tests::toxi::Toxi;
use revdoor_tests::{repo_root, wait_for};

/// A value of a moved row that no log may print.
const ROW_VALUE: &str = "zebra-7f3c-rowvalue";

/// revdoor's own crates at debug level: what an operator diagnosing a
/// problem turns on must not leak either.
const DEBUG: &str = "info,revdoor=debug,revdoor_capture=debug,revdoor_apply=debug,\
    revdoor_worker=debug,revdoor_coordinator=debug,revdoor_mysql=debug,revdoor_kafka=debug";

/// The password in a `mysql://user:password@host` URL.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let creds = rest.split_once('@')?.0;
    Some(creds.split_once(':')?.1.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_agrees_with_status_and_logs_hold_no_secret() {
    let door = Door::create("metrics", 1, &[("-80", 2), ("80-", 3)], 200).await;
    let db = door.ctx.db.clone();
    door.ctx
        .sql(
            door.source,
            &[
                &format!("CREATE TABLE {db}.notes (id BIGINT PRIMARY KEY, note VARCHAR(64))"),
                &format!("INSERT INTO {db}.notes VALUES (1, '{ROW_VALUE}-copied')"),
            ],
        )
        .await;
    let (c_port, w_port) = (free_port(), free_port());
    let (c_addr, w_addr) = (format!("127.0.0.1:{c_port}"), format!("127.0.0.1:{w_port}"));
    let prom = Prometheus::start(&door.ctx.logs, &[c_addr.clone(), w_addr.clone()]);

    // Every command of the run logs JSON (its stderr: JSON lines only);
    // its output is kept to grep.
    let mut cli_output = String::new();
    let mut keep = |o: &revdoor_tests::door::Out| {
        for line in o.stderr.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "a command run with --log-json logged a line that is not JSON: {line}"
            );
        }
        cli_output.push_str(&o.stdout);
        cli_output.push_str(&o.stderr);
        assert!(o.ok, "{}{}", o.stdout, o.stderr);
    };
    let key = format!("{db}.ledger=account_id");
    keep(&door.create_workflow_of(
        &format!("{db}.accounts,{db}.ledger,{db}.notes"),
        &["--sharding-key", &key, "--log-json"],
    ));
    let mut coordinator = serving(&door, "coordinator", "c1", &c_addr, &["--log-json"], DEBUG);
    let mut worker = serving(&door, "worker", "w1", &w_addr, &["--log-json"], DEBUG);
    prom.wait_targets_up(2, Duration::from_secs(60)).await;
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;

    // Before any cutover: every stream's counters against its status.
    let mut writer = door.writer("writer", 1, 50);
    door.ctx
        .sql(
            door.source,
            &[&format!(
                "INSERT INTO {db}.notes VALUES (2, '{ROW_VALUE}-streamed')"
            )],
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let w = door.finish_load(&mut writer, "writer").await;
    assert!(
        w["acked"].as_u64().unwrap_or(0) > 20,
        "writer barely wrote: {w}"
    );
    door.wait_converged(Duration::from_secs(60)).await;
    let wf = door.ctx.workflow.clone();
    let agreed = wait_for(
        "Prometheus's counters equal to status",
        Duration::from_secs(60),
        || async { Ok(counters_agree(&door, &prom, &wf)?.then_some(())) },
    )
    .await;
    if let Err(e) = agreed {
        panic!("{e}: status {}", door.status());
    }
    // Copy progress: the forward capture copied every row it estimated
    // (the estimate is information_schema's and may differ).
    let st = door.status();
    let capture = st["streams"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| s["kind"] == "capture" && s["direction"] == "forward")
        })
        .cloned()
        .expect("a forward capture stream");
    let copied = capture["status"]["copy_rows"].as_u64().unwrap_or(0);
    assert!(copied >= 201, "copy rows in status: {capture}");
    let q = |m: &str| format!("{m}{{workflow=\"{wf}\",direction=\"forward\",shard=\"-\"}}");
    assert_eq!(
        prom.value(&q("revdoor_copy_rows_total")).unwrap(),
        Some(copied as f64),
        "copy rows: Prometheus vs status"
    );
    assert_eq!(
        prom.value(&q("revdoor_copy_rows_estimated")).unwrap(),
        Some(capture["status"]["copy_total"].as_u64().unwrap_or(0) as f64),
        "copy estimate: Prometheus vs status"
    );

    // The revolving door: switch, reverse, switch.
    for action in ["switch-traffic", "reverse-traffic", "switch-traffic"] {
        door.wait_streams_running(Duration::from_secs(60)).await;
        keep(&door.cmd(&[
            "--log-json",
            "workflow",
            action,
            &wf,
            "--max-lag",
            "10s",
            "--timeout",
            "30s",
        ]));
    }
    door.wait_streams_running(Duration::from_secs(60)).await;
    let windows = door.windows();
    assert_eq!(windows.len(), 3, "{windows:?}");
    let sum_ms: u64 = windows.iter().sum();
    let w_sel = format!("{{workflow=\"{wf}\"}}");
    let got = wait_for(
        "Prometheus scraped the switches",
        Duration::from_secs(30),
        || async {
            Ok(prom
                .value(&format!("revdoor_switch_window_seconds_count{w_sel}"))?
                .filter(|n| *n == 3.0))
        },
    )
    .await;
    assert!(
        got.is_ok(),
        "switch windows not scraped: {:?}",
        prom.query(&format!("revdoor_switch_window_seconds_count{w_sel}"))
    );
    let sum = prom
        .value(&format!("revdoor_switch_window_seconds_sum{w_sel}"))
        .unwrap()
        .expect("window sum");
    assert!(
        (sum * 1000.0 - sum_ms as f64).abs() < 0.5,
        "window sum: Prometheus {sum} s, status {windows:?} ms"
    );
    assert_eq!(
        prom.value(&format!(
            "revdoor_switch_total{{workflow=\"{wf}\",outcome=\"done\"}}"
        ))
        .unwrap(),
        Some(3.0)
    );
    // Lag: the gauge the worker sets from the status it reports, against
    // the lag `workflow status` computes from that report; scraped up to
    // 1 s later and reported every 0.5 s, so they agree within 3 s.
    let st = door.status();
    let active = st["state"]["phase"].as_str().map(|p| {
        if p == "switched" {
            "reverse"
        } else {
            "forward"
        }
    });
    assert_eq!(active, Some("reverse"), "{st}");
    for s in st["streams"].as_array().cloned().unwrap_or_default() {
        if s["direction"] != "reverse" {
            continue;
        }
        let Some(lag_ms) = s["lag_ms"].as_u64() else {
            continue;
        };
        let sel = selector(&wf, &s);
        let metric = if s["kind"] == "apply" {
            "revdoor_apply_lag_seconds"
        } else {
            "revdoor_capture_lag_seconds"
        };
        let lag = prom
            .value(&format!("{metric}{sel}"))
            .unwrap()
            .expect("lag series");
        assert!(
            (lag * 1000.0 - lag_ms as f64).abs() <= 3000.0,
            "{metric}{sel}: Prometheus {lag} s, status {lag_ms} ms"
        );
        let halted = prom
            .value(&format!("revdoor_stream_halted{sel}"))
            .unwrap()
            .expect("halted series");
        assert_eq!(halted, 0.0, "{sel}");
    }
    assert_eq!(prom.value("revdoor_coordinator_leader").unwrap(), Some(1.0));
    assert!(prom.value("revdoor_worker_streams").unwrap().unwrap_or(0.0) >= 3.0);

    // The dashboard names only metrics the processes expose.
    let mut exposed: BTreeSet<String> = BTreeSet::new();
    for addr in [&c_addr, &w_addr] {
        let text = http_get(addr, "/metrics").unwrap();
        exposed.extend(exposed_names(&text));
    }
    let dashboard = std::fs::read_to_string(repo_root().join("deploy/grafana/revdoor.json"))
        .expect("deploy/grafana/revdoor.json");
    let exprs = dashboard_exprs(&dashboard);
    assert!(
        exprs.len() >= 8,
        "dashboard has {} expressions",
        exprs.len()
    );
    for expr in &exprs {
        for name in metric_names(expr) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| exposed.contains(*b)))
                .unwrap_or(&name);
            assert!(
                exposed.contains(base) || name == "revdoor_vdiff_rows_total",
                "dashboard expression {expr} names {name}, which no process exposes; exposed: {exposed:?}"
            );
        }
        // And Prometheus parses it.
        prom.query(&expr.replace("$workflow", &wf))
            .unwrap_or_else(|e| panic!("dashboard expression {expr}: {e}"));
    }

    coordinator.stop(Duration::from_secs(30));
    worker.stop(Duration::from_secs(30));

    // Logs: JSON everywhere, no password, no row value.
    let mut secrets: Vec<String> = door
        .ctx
        .stack
        .servers
        .iter()
        .filter_map(|s| password_of(&s.url))
        .collect();
    secrets.push(door.ctx.stack.revdoor_password.clone());
    secrets.push("app-pw".into());
    secrets.sort();
    secrets.dedup();
    assert!(secrets.iter().all(|s| !s.is_empty()), "{secrets:?}");
    let mut texts = vec![("CLI commands".to_string(), cli_output)];
    for p in [&coordinator, &worker] {
        let text = p.log_text();
        assert!(
            text.lines().count() > 10,
            "{} logged little:\n{text}",
            p.name
        );
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "{} (--log-json) logged a line that is not JSON: {line}",
                p.name
            );
        }
        texts.push((p.name.clone(), text));
    }
    texts.push((
        "writer".into(),
        std::fs::read_to_string(door.ctx.logs.join("writer.log")).unwrap_or_default(),
    ));
    for (name, text) in &texts {
        for s in &secrets {
            if let Some(line) = text.lines().find(|l| l.contains(s.as_str())) {
                panic!("{name} logged the password '{s}': {line}");
            }
        }
        if let Some(line) = text.lines().find(|l| l.contains(ROW_VALUE)) {
            panic!("{name} logged a row value: {line}");
        }
    }
    // The logs carry the stream and switch fields operators filter on.
    let worker_log = &texts.iter().find(|(n, _)| n == "w1").expect("worker log").1;
    assert!(
        worker_log.lines().any(|l| l.contains("\"name\":\"stream\"")
            && l.contains(&format!("\"workflow\":\"{wf}\""))
            && l.contains("\"direction\":")),
        "worker log lacks lines in a stream span with workflow and direction"
    );
    let coordinator_log = &texts
        .iter()
        .find(|(n, _)| n == "c1")
        .expect("coordinator log")
        .1;
    for step in ["fence", "flip-routing", "unfence"] {
        assert!(
            coordinator_log
                .lines()
                .any(|l| l.contains("\"name\":\"switch_step\"")
                    && l.contains(&format!("\"step\":\"{step}\""))
                    && l.contains(&format!("\"workflow\":\"{wf}\""))),
            "coordinator log lacks a line in the {step} step's span"
        );
    }
}

/// `revdoor <global> <kind> run --id <id> --metrics-addr <addr>` with
/// `REVDOOR_LOG=<log>`.
fn serving(
    door: &Door,
    kind: &str,
    id: &str,
    addr: &str,
    global: &[&str],
    log: &str,
) -> revdoor_tests::Revdoor {
    let mut args = global.to_vec();
    args.extend([
        kind,
        "run",
        "--id",
        id,
        "--lease-ttl",
        "2s",
        "--metrics-addr",
        addr,
    ]);
    door.ctx.spawn_env(id, &args, &[("REVDOOR_LOG", log)])
}

/// Whether every stream's row counter in Prometheus equals the events its
/// status reports (no cutover yet: each stream ran once).
fn counters_agree(door: &Door, prom: &Prometheus, wf: &str) -> anyhow::Result<bool> {
    let st = door.status();
    let streams = st["streams"].as_array().cloned().unwrap_or_default();
    let mut seen = 0;
    for s in streams.iter().filter(|s| s["direction"] == "forward") {
        let Some(events) = s["status"]["events"].as_u64() else {
            return Ok(false);
        };
        let metric = if s["kind"] == "apply" {
            "revdoor_apply_rows_total"
        } else {
            "revdoor_capture_events_total"
        };
        let got = prom.value(&format!("{metric}{}", selector(wf, s)))?;
        if got != Some(events as f64) {
            return Ok(false);
        }
        seen += 1;
    }
    Ok(seen == 3)
}

/// The label selector of a stream in `workflow status --json`.
fn selector(wf: &str, s: &serde_json::Value) -> String {
    let dir = s["direction"].as_str().unwrap_or_default();
    if s["kind"] == "apply" {
        format!(
            "{{workflow=\"{wf}\",direction=\"{dir}\",partition=\"{}\"}}",
            s["partition"]
        )
    } else {
        format!(
            "{{workflow=\"{wf}\",direction=\"{dir}\",shard=\"{}\"}}",
            s["shard"].as_str().unwrap_or_default()
        )
    }
}

/// Every `"expr"` of a Grafana dashboard.
fn dashboard_exprs(json: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let v: serde_json::Value = serde_json::from_str(json).expect("dashboard JSON");
    let mut out = Vec::new();
    walk(&v, &mut out);
    out
}

/// The `revdoor_…` metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("revdoor_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let promtool = which("promtool").expect(
        "promtool is not installed: run 'deploy/stack install' (Debian package prometheus)",
    );
    let rules = repo_root().join("deploy/prometheus/alerts.yml");
    let o = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("run promtool");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "promtool check rules {}: {out}",
        rules.display()
    );
    // The three alerts the runbook names, each on a metric revdoor declares.
    let text = std::fs::read_to_string(&rules).unwrap();
    for alert in [
        "RevdoorStreamHalted",
        "RevdoorApplyLagHigh",
        "RevdoorNoCoordinatorLeader",
    ] {
        assert!(
            text.contains(&format!("alert: {alert}")),
            "alerts.yml lacks {alert}"
        );
    }
    let declared: BTreeSet<&str> = revdoor_core::metrics::ALL.iter().map(|m| m.name).collect();
    for name in metric_names(&text) {
        assert!(
            declared.contains(name.as_str()),
            "alerts.yml names {name}, which revdoor does not declare"
        );
    }
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Issue 18 item 6, metrics part: an error retried inside a running stream
/// (its destination out of reach) is counted in `revdoor_errors_total`
/// while status shows it; a definite one (the destination refuses a row)
/// sets `revdoor_stream_halted` while status says halted.
#[tokio::test(flavor = "multi_thread")]
async fn retried_errors_and_halts_show_in_metrics_as_in_status() {
    let stack = revdoor_tests::stack();
    let toxi = Toxi::of(stack);
    let (source, target) = (4usize, 5usize);
    let opts = mysql_async::Opts::from_url(&stack.servers[target - 1].url).expect("server URL");
    let upstream = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    let proxy = toxi.proxy(
        &format!("metrics_errors_{}_{}", std::process::id(), free_port()),
        &upstream,
    );
    let via = |ctx: &revdoor_tests::TestCtx, i: usize| {
        if i == target {
            format!(
                "mysql://{}:{}@{}",
                ctx.stack.revdoor_user, ctx.stack.revdoor_password, proxy.listen
            )
        } else {
            ctx.revdoor_url(i)
        }
    };
    let door = Door::create_via("metrics_errors", source, &[("-", target)], 20, &via).await;
    let wf = door.ctx.workflow.clone();
    let db = door.ctx.db.clone();
    let addr = format!("127.0.0.1:{}", free_port());
    let out = door.create_workflow();
    assert!(out.ok, "workflow create: {}{}", out.stdout, out.stderr);
    let mut coordinator = door.coordinator("c1", &[]);
    let mut worker = serving(&door, "worker", "w1", &addr, &[], "info");
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;
    let apply = [("workflow", wf.as_str()), ("direction", "forward")];
    let metric = |name: &str, labels: &[(&str, &str)]| {
        let text = http_get(&addr, "/metrics").unwrap_or_default();
        sample(&text, name, labels)
    };
    let transient = |kind: &str| {
        let mut l = apply.to_vec();
        l.push(("kind", kind));
        metric("revdoor_errors_total", &l).unwrap_or(0.0)
    };
    let before = transient("transient");
    let apply_status = || {
        door.status()["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["kind"] == "apply").cloned())
            .expect("an apply stream")
    };

    // The destination out of reach: apply retries; status and metrics
    // both show it.
    proxy.set_enabled(false);
    door.ctx
        .sql(
            source,
            &[&format!(
                "UPDATE {db}.accounts SET balance = balance + 1 WHERE id = 1"
            )],
        )
        .await;
    let seen = wait_for(
        "a retried error in status and metrics",
        Duration::from_secs(60),
        || async {
            let st = apply_status();
            let error = st["status"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Ok((!error.is_empty() && transient("transient") > before).then_some(error))
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}: status {}, errors_total {}",
            apply_status(),
            transient("transient")
        )
    });
    assert!(seen.starts_with("retrying"), "{seen}");
    assert_eq!(
        metric(
            "revdoor_stream_halted",
            &[("workflow", &wf), ("kind", "apply")]
        ),
        Some(0.0)
    );
    proxy.set_enabled(true);
    door.wait_streams_running(Duration::from_secs(60)).await;

    // The destination refuses a row: the stream halts; the gauge says so.
    door.ctx
        .sql(
            target,
            &[&format!(
                "ALTER TABLE {db}.accounts ADD CONSTRAINT small CHECK (balance < 5000)"
            )],
        )
        .await;
    door.ctx
        .sql(
            source,
            &[&format!(
                "UPDATE {db}.accounts SET balance = 9999 WHERE id = 2"
            )],
        )
        .await;
    let halted = [("workflow", wf.as_str()), ("kind", "apply")];
    wait_for(
        "a halt in status and metrics",
        Duration::from_secs(60),
        || async {
            let st = apply_status();
            let definite = transient("definite");
            Ok((st["status"]["state"] == "halted"
                && metric("revdoor_stream_halted", &halted) == Some(1.0)
                && definite >= 1.0)
                .then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}: status {}, halted {:?}",
            apply_status(),
            metric("revdoor_stream_halted", &halted)
        )
    });
    coordinator.stop(Duration::from_secs(30));
    worker.stop(Duration::from_secs(30));
}

/// A metrics address that is taken or not an address stops the process
/// before it does anything, naming the flag.
#[test]
fn a_bad_metrics_address_is_refused_naming_the_flag() {
    let ctx = revdoor_tests::TestCtx::new("metrics_addr");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    for (args, want) in [
        (
            vec!["worker", "run", "--metrics-addr", &addr],
            "--metrics-addr",
        ),
        (
            vec!["coordinator", "run", "--metrics-addr", &addr],
            "--metrics-addr",
        ),
        (
            vec!["worker", "run", "--metrics-addr", "localhost"],
            "--metrics-addr",
        ),
    ] {
        let o = ctx.run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "revdoor {args:?} started: {err}");
        assert!(err.contains(want), "revdoor {args:?}: {err}");
    }
    // Nothing was registered: the worker stopped before etcd.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let keys = rt.block_on(async {
        let mut c = ctx.etcd().await;
        let opts = etcd_client::GetOptions::new()
            .with_prefix()
            .with_keys_only();
        c.get(ctx.etcd_prefix.as_str(), Some(opts))
            .await
            .map(|r| r.kvs().len())
            .unwrap_or(usize::MAX)
    });
    assert_eq!(
        keys, 0,
        "a refused start left keys under {}",
        ctx.etcd_prefix
    );
}
