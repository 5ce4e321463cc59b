//! `revdoor demo`: the README's main job, on the local stack.
//!
//! A bank keyspace `commerce` (unsharded, MariaDB #1) moves to a 2-shard
//! keyspace `customers` (`-80` on MariaDB #2, `80-` on MariaDB #3) while a
//! writer that follows routing commits transactions and a prober keeps
//! trying to write to the side that is not serving. The demo runs a
//! coordinator and a worker in-process and walks the whole lifecycle:
//! create → copy → vdiff under load → switch → reverse → switch (… `--switches`) → complete,
//! printing each step and each write-unavailability window (as revdoor
//! measured it, and as the writer saw it: its longest gap between two
//! acknowledged commits around the switch), then checks row by row that
//! both sides hold exactly the acknowledged writes.
//!
//! `--json FILE` writes the figures (the switch-window benchmark uses it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use revdoor_coordinator::create::{self, CreateRequest};
use revdoor_coordinator::registry::Registry;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::names::EtcdPrefix;
use revdoor_core::workflow::{
    now_ms, Action, JournalEntry, Phase, Step, WorkflowState, CATCH_UP_PARTS,
};
use revdoor_mysql::secret::Secret;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Admin URLs of three servers: source, target shard -80, target shard 80-.
    #[arg(long, env = "REVDOOR_MYSQL_1")]
    source: String,
    #[arg(long, env = "REVDOOR_MYSQL_2")]
    target1: String,
    #[arg(long, env = "REVDOOR_MYSQL_3")]
    target2: String,
    /// revdoor's own account on the servers.
    #[arg(long, env = "REVDOOR_MYSQL_USER", default_value = "revdoor")]
    revdoor_user: String,
    #[arg(
        long,
        env = "REVDOOR_MYSQL_PASSWORD",
        default_value = "revdoor-pw",
        hide_env_values = true
    )]
    revdoor_password: String,
    /// Accounts in the bank table.
    #[arg(long, default_value_t = 1000)]
    accounts: i64,
    /// Writer rate (transactions/s).
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Cutovers: switch, reverse, switch, … (odd: ends on the target).
    #[arg(long, default_value_t = 3)]
    switches: usize,
    /// Pause between cutovers.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pause: Duration,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://HOST:PORT/metrics` while the
    /// demo runs (docs/operations.md "Metrics").
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
}

const DB: &str = "revdoor_demo";

/// revdoor's account on the server of `admin`, its password read from
/// `password_file` (etcd stores no password).
fn with_user(admin: &str, user: &str, password_file: &Path) -> anyhow::Result<String> {
    let o = revdoor_mysql::conn::exact(admin)
        .with_context(|| format!("bad URL {}", crate::redact(admin)))?;
    Ok(format!(
        "mysql://{user}@{}:{}?password_file={}",
        o.ip_or_hostname(),
        o.tcp_port(),
        password_file.display()
    ))
}

/// A file removed when the run ends, however it ends.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The demo's password file (owner-only), removed at the end of the run.
fn password_file(stamp: u64, password: &str) -> anyhow::Result<Removed> {
    let file = Removed(std::env::temp_dir().join(format!("revdoor-demo-{stamp}.pw")));
    revdoor_mysql::secret::write_password_file(&file.0, &Secret::new(password))
        .with_context(|| format!("write {}", file.0.display()))?;
    Ok(file)
}

async fn admin(url: &str) -> anyhow::Result<Conn> {
    Conn::new(revdoor_mysql::conn::exact(url)?)
        .await
        .with_context(|| format!("connect to {}", crate::redact(url)))
}

/// Rows of a table as text lines, ordered by the first column.
async fn dump(conn: &mut Conn, table: &str) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(i64, i64, i64)> = conn
        .query(format!("SELECT * FROM {DB}.{table} ORDER BY 1"))
        .await?;
    Ok(rows
        .into_iter()
        .map(|(a, b, c)| format!("{a}|{b}|{c}"))
        .collect())
}

async fn state(
    reg: &Registry,
    wf: &revdoor_core::names::WorkflowName,
) -> anyhow::Result<WorkflowState> {
    reg.value(&reg.prefix.workflow_state(wf))
        .await?
        .context("workflow state")
}

/// Where each switch's window went, from its journal: the timed work of
/// each windowed step (fence, catch-up, record-positions, create-streams,
/// unfence; create-streams' work is its etcd transaction, journal
/// included) and the rest of the window ("journal": the routing flip's
/// transaction, which journals it, and the time between steps), in µs, as
/// `(name, per-switch values)`.
fn window_breakdown(entries: &[JournalEntry]) -> Vec<(&'static str, Vec<u64>)> {
    let windowed = [
        Step::Fence,
        Step::CatchUp,
        Step::RecordPositions,
        Step::CreateStreams,
        Step::Unfence,
    ];
    let mut out: Vec<(&'static str, Vec<u64>)> =
        windowed.iter().map(|s| (s.as_str(), Vec::new())).collect();
    out.push(("journal", Vec::new()));
    // The catch-up's parts (of the slowest stream; inside catch-up, not
    // added to the window again). A switch without them counts 0.
    const PARTS: [&str; 3] = ["catch-up: capture", "catch-up: kafka", "catch-up: apply"];
    let first_part = out.len();
    out.extend(PARTS.iter().map(|p| (*p, Vec::new())));
    for e in entries {
        let Some(window_ms) = e.window_ms else {
            continue;
        };
        let parts = e.step_parts_us();
        let catch_up = parts.iter().find(|(s, _)| *s == Step::CatchUp);
        for (i, name) in CATCH_UP_PARTS.iter().enumerate() {
            let us = catch_up.and_then(|(_, p)| p.get(*name)).copied();
            out[first_part + i].1.push(us.unwrap_or(0));
        }
        let work = e.step_work_us();
        let mut sum = 0;
        for (i, step) in windowed.iter().enumerate() {
            let us = work
                .iter()
                .find(|(s, _)| s == step)
                .map_or(0, |(_, us)| *us);
            sum += us;
            out[i].1.push(us);
        }
        out[windowed.len()]
            .1
            .push((window_ms * 1000).saturating_sub(sum));
    }
    out
}

fn percentile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let i = ((p * (s.len() as f64 - 1.0)).round() as usize).min(s.len() - 1);
    s[i]
}

pub(crate) async fn run(kafka: &str, etcd: &str, args: DemoArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let stamp = now_ms() / 1000;
    let wf_name = format!("demo{stamp}");
    let prefix =
        EtcdPrefix::new(format!("/revdoor-demo/{stamp}/")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let reg = Registry::connect(etcd, prefix.clone()).await?;
    let urls = [&args.source, &args.target1, &args.target2];
    println!("revdoor demo — workflow {wf_name}: {DB}.accounts + {DB}.ledger, keyspace commerce (MariaDB #1) → customers (#2 -80, #3 80-)");

    // 1. The bank on the source; nothing on the targets.
    for (i, u) in urls.iter().enumerate() {
        let mut c = admin(u).await?;
        c.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))
            .await?;
        if i == 0 {
            c.query_drop(format!("CREATE DATABASE {DB}")).await?;
            c.query_drop(format!("CREATE TABLE {DB}.accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, ops BIGINT NOT NULL DEFAULT 0)")).await?;
            c.query_drop(format!("CREATE TABLE {DB}.ledger (op_id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, amount BIGINT NOT NULL, KEY (account_id))")).await?;
            c.query_drop(format!(
                "INSERT INTO {DB}.accounts (id, balance) SELECT seq, 1000 FROM {DB}.seq_1_to_{}",
                args.accounts
            ))
            .await?;
        }
    }
    let pw_file = password_file(stamp, &args.revdoor_password)?;
    let ru = |u: &str| with_user(u, &args.revdoor_user, &pw_file.0);
    create::add_keyspace(&reg, "commerce", vec![(KeyRange::FULL, ru(urls[0])?)]).await?;
    create::add_keyspace(
        &reg,
        "customers",
        vec![
            (
                "-80".parse().map_err(|e| anyhow::anyhow!("{e}"))?,
                ru(urls[1])?,
            ),
            (
                "80-".parse().map_err(|e| anyhow::anyhow!("{e}"))?,
                ru(urls[2])?,
            ),
        ],
    )
    .await?;
    println!("  1. {} accounts on the source; keyspaces commerce (1 shard) and customers (2 shards) registered", args.accounts);

    // 2. Coordinator and worker, in this process.
    let cancel = CancellationToken::new();
    let coord = tokio::spawn(Box::pin(
        revdoor_coordinator::leader::run(
            reg.clone(),
            revdoor_coordinator::leader::Config {
                id: "demo-coordinator".into(),
                lease_ttl: Duration::from_secs(5),
                brokers: kafka.to_string(),
            },
            cancel.clone(),
        )
        .instrument(tracing::info_span!("coordinator", id = "demo-coordinator")),
    ));
    let worker = tokio::spawn(Box::pin(
        revdoor_worker::run(
            reg.clone(),
            revdoor_worker::Config {
                id: "demo-worker".into(),
                lease_ttl: Duration::from_secs(5),
                brokers: kafka.to_string(),
                apply_parallelism: crate::DEFAULT_APPLY_PARALLELISM,
                max_message_bytes: revdoor_capture::publish::DEFAULT_MAX_MESSAGE_BYTES,
            },
            cancel.clone(),
        )
        .instrument(tracing::info_span!("worker", id = "demo-worker")),
    ));
    let spec = create::create_workflow(
        &reg,
        CreateRequest {
            name: wf_name.clone(),
            source: "commerce".into(),
            target: "customers".into(),
            tables: vec![format!("{DB}.accounts"), format!("{DB}.ledger")],
            sharding_keys: [(format!("{DB}.ledger"), vec!["account_id".to_string()])]
                .into_iter()
                .collect(),
            on_ddl: "stop".into(),
            brokers: kafka.to_string(),
        },
    )
    .await?;
    let wf = spec.name.clone();
    println!("  2. workflow created: target tables made on both shards and fenced; copy + forward streams started");
    let copy_start = Instant::now();
    while state(&reg, &wf).await?.phase != Phase::Running {
        if copy_start.elapsed() > Duration::from_secs(120) {
            bail!("the copy did not finish within 120s (see `revdoor workflow status {wf}`)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "  3. copy done in {:.1}s: workflow running",
        copy_start.elapsed().as_secs_f64()
    );

    // 3. Writer and prober following routing.
    let logs = std::env::temp_dir().join(format!("revdoor-demo-{stamp}"));
    std::fs::create_dir_all(&logs)?;
    let acks = logs.join("acks.jsonl");
    let load_cancel = CancellationToken::new();
    let bank = |probe: bool| crate::load::BankArgs {
        keyspace: "commerce".into(),
        db: DB.into(),
        accounts: args.accounts,
        rate: if probe { 100 } else { args.rate },
        duration: None,
        acks: (!probe).then(|| acks.clone()),
        summary: None,
        user: std::env::var("REVDOOR_APP_USER").unwrap_or_else(|_| "app".into()),
        password: std::env::var("REVDOOR_APP_PASSWORD").unwrap_or_else(|_| "app-pw".into()),
        writer_id: 1,
        probe,
        ledger_first: false,
        url: None,
    };
    let writer = tokio::spawn(Box::pin(
        crate::load::run(reg.clone(), bank(false), load_cancel.clone())
            .instrument(tracing::info_span!("writer")),
    ));
    let prober = tokio::spawn(Box::pin(
        crate::load::run(reg.clone(), bank(true), load_cancel.clone())
            .instrument(tracing::info_span!("prober")),
    ));
    println!("  4. writer ({} txn/s, app account, follows routing) and prober (writes to the non-serving side) started", args.rate);
    tokio::time::sleep(args.pause).await;

    // 4. VDiff under load, before the first switch.
    use revdoor_coordinator::vdiff;
    let vopts = vdiff::VdiffOptions::default();
    let created = vdiff::create(&reg, &wf, &vopts).await?;
    let rec = Box::pin(vdiff::run(&reg, &wf, &created.id, &vopts, |_| {})).await?;
    if rec.state != vdiff::VdiffState::Completed || rec.differences() > 0 {
        bail!(
            "vdiff found source and target different or failed ({}; `revdoor vdiff show {wf}`)",
            if rec.error.is_empty() {
                rec.state.as_str()
            } else {
                rec.error.as_str()
            }
        );
    }
    println!(
        "  5. vdiff under load: {} rows compared at one consistent point (streams held {} ms): source and target match",
        rec.processed(),
        rec.pauses.last().map_or(0, |p| p.ms)
    );

    // 4. The revolving door.
    let mut entries: Vec<JournalEntry> = Vec::new();
    for i in 0..args.switches {
        let to_target = i % 2 == 0;
        wait_lag(&reg, &wf).await?;
        let action = if to_target {
            Action::SwitchTraffic {
                max_lag_ms: 10_000,
                timeout_ms: 30_000,
                read_only: false,
            }
        } else {
            Action::ReverseTraffic {
                max_lag_ms: 10_000,
                timeout_ms: 30_000,
                read_only: false,
            }
        };
        println!(
            "  {}. {} ({}):",
            6 + i,
            action.name(),
            if to_target {
                "serve customers, reverse stream keeps commerce current"
            } else {
                "serve commerce again, forward stream resumes"
            }
        );
        let e = crate::ops::request(&reg, wf.as_str(), action, Duration::from_secs(120)).await?;
        println!(
            "     window {} ms; routing epoch {}",
            e.window_ms.unwrap_or(0),
            state(&reg, &wf).await?.epoch
        );
        entries.push(e);
        tokio::time::sleep(args.pause).await;
    }
    load_cancel.cancel();
    let w = writer.await.map_err(|e| anyhow::anyhow!("writer: {e}"))??;
    let p = prober.await.map_err(|e| anyhow::anyhow!("prober: {e}"))??;
    let step = 6 + args.switches;
    println!(
        "  {step}. writer stopped: {} commits acknowledged, {} retried after a fence, longest gap {} ms; prober: {} writes refused by fences, {} violations",
        w.acked, w.fenced_retries, w.max_gap_ms, p.probes_refused, p.violations
    );

    // 5. Both sides converge; check row by row.
    let mut src = admin(urls[0]).await?;
    let mut t1 = admin(urls[1]).await?;
    let mut t2 = admin(urls[2]).await?;
    let converge = Instant::now();
    let (accounts, ledger) = loop {
        let a = dump(&mut src, "accounts").await?;
        let l = dump(&mut src, "ledger").await?;
        let mut ta = dump(&mut t1, "accounts").await?;
        ta.extend(dump(&mut t2, "accounts").await?);
        let mut tl = dump(&mut t1, "ledger").await?;
        tl.extend(dump(&mut t2, "ledger").await?);
        let key = |s: &String| {
            s.split('|')
                .next()
                .and_then(|x| x.parse::<i64>().ok())
                .unwrap_or(0)
        };
        ta.sort_by_key(key);
        tl.sort_by_key(key);
        if a == ta && l == tl {
            break (a, l);
        }
        if converge.elapsed() > Duration::from_secs(60) {
            bail!("source and target still differ 60s after the writer stopped");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let acked = std::fs::read_to_string(&acks)?
        .lines()
        .filter(|l| !l.is_empty())
        .count();
    if ledger.len() != acked {
        bail!(
            "{} ledger rows but {acked} acknowledged writes",
            ledger.len()
        );
    }
    let mut sums = std::collections::HashMap::new();
    for l in &ledger {
        let f: Vec<i64> = l.split('|').filter_map(|x| x.parse().ok()).collect();
        *sums.entry(f[1]).or_insert(0i64) += f[2];
    }
    for a in &accounts {
        let f: Vec<i64> = a.split('|').filter_map(|x| x.parse().ok()).collect();
        if f[1] != 1000 + sums.get(&f[0]).copied().unwrap_or(0) {
            bail!(
                "account {} balance {} does not match its ledger",
                f[0],
                f[1]
            );
        }
    }
    if p.violations > 0 {
        bail!(
            "the prober wrote to a non-serving side {} times",
            p.violations
        );
    }
    println!(
        "  {}. consistent row by row: {} accounts and {} ledger rows identical on commerce and customers (-80 ∪ 80-), every acknowledged write present, balances match ledgers",
        step + 1,
        accounts.len(),
        ledger.len()
    );

    // 6. complete.
    let done = crate::ops::request(
        &reg,
        wf.as_str(),
        Action::Complete {
            drop_source: false,
            rename_source: false,
            force: false,
        },
        Duration::from_secs(120),
    )
    .await;
    done?;
    println!(
        "  {}. complete: reverse streams stopped, fences removed, routing stays on customers",
        step + 2
    );
    cancel.cancel();
    let _ = coord.await;
    let _ = worker.await;

    // Figures.
    let windows: Vec<u64> = entries.iter().filter_map(|e| e.window_ms).collect();
    let observed = observed_gaps(&acks, &entries)?;
    println!(
        "windows (revdoor): {windows:?} ms — p50 {} p99 {}; writer-observed gaps: {observed:?} ms — p50 {} p99 {}",
        percentile(&windows, 0.5),
        percentile(&windows, 0.99),
        percentile(&observed, 0.5),
        percentile(&observed, 0.99)
    );
    let breakdown = window_breakdown(&entries);
    println!(
        "window by step (p50 / p99 ms): {}",
        breakdown
            .iter()
            .map(|(name, v)| format!(
                "{name} {:.1} / {:.1}",
                percentile(v, 0.5) as f64 / 1000.0,
                percentile(v, 0.99) as f64 / 1000.0
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(path) = &args.json {
        let v = serde_json::json!({
            "workflow": wf_name,
            "rate": args.rate,
            "switches": args.switches,
            "windows_ms": windows,
            "observed_gap_ms": observed,
            "window_p50_ms": percentile(&windows, 0.5),
            "window_p99_ms": percentile(&windows, 0.99),
            "observed_p50_ms": percentile(&observed, 0.5),
            "observed_p99_ms": percentile(&observed, 0.99),
            "acked": w.acked,
            "fenced_retries": w.fenced_retries,
            "violations": p.violations,
            "window_steps_us": breakdown
                .iter()
                .map(|(name, v)| {
                    (
                        name.to_string(),
                        serde_json::json!({
                            "p50": percentile(v, 0.5),
                            "p99": percentile(v, 0.99),
                            "values": v,
                        }),
                    )
                })
                .collect::<serde_json::Map<_, _>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)?)?;
    }
    println!("demo passed in {:.1}s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// Wait until every running apply reports a lag under a second.
async fn wait_lag(reg: &Registry, wf: &revdoor_core::names::WorkflowName) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let st = state(reg, wf).await?;
        let active = st
            .phase
            .active()
            .unwrap_or(revdoor_core::names::Direction::Forward);
        let ok = revdoor_coordinator::switch::check_streams(reg, wf, active, 1000)
            .await
            .is_ok();
        if ok {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("streams of {wf} not caught up within 60s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// For each cutover, the longest gap between consecutive acknowledged
/// commits that overlaps its fenced interval.
fn observed_gaps(acks: &PathBuf, entries: &[JournalEntry]) -> anyhow::Result<Vec<u64>> {
    let mut ts: Vec<u64> = std::fs::read_to_string(acks)?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["ts_ms"].as_u64())
        .collect();
    ts.sort_unstable();
    Ok(entries
        .iter()
        .filter_map(|e| {
            let (f, u) = (e.fenced_at_ms?, e.unfenced_at_ms?);
            ts.windows(2)
                .filter(|w| w[1] >= f && w[0] <= u)
                .map(|w| w[1] - w[0])
                .max()
        })
        .collect())
}
