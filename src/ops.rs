//! Operator commands (DESIGN §8): `keyspace`, `workflow`, `routing`.
//!
//! `workflow create` validates and prepares everything itself, then
//! registers the workflow; the coordinator leader starts its streams.
//! `switch-traffic`, `reverse-traffic`, `complete` and `cancel` put a
//! request in etcd, which the leader executes and journals; the command
//! follows the journal, prints each step, and exits 0 when the request is
//! done, non-zero with the reason when it was refused or rolled back.
//! `--dry-run` computes the plan here without asking the coordinator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use revdoor_coordinator::amend;
use revdoor_coordinator::create::{self, CreateRequest};
use revdoor_coordinator::registry::Registry;
use revdoor_coordinator::shard;
use revdoor_coordinator::switch::{self, SwitchPlan};
use revdoor_core::gtid::StoredPosition;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::names::{Direction, KeyspaceName, WorkflowName};
use revdoor_core::workflow::{
    now_ms, Action, JournalEntry, KeyspaceSpec, Outcome, Request, RoutingRule, StreamKind,
    StreamSpec, StreamState, WorkflowSpec, WorkflowState, CATCH_UP_PARTS,
};

#[derive(Subcommand)]
pub enum KeyspaceCmd {
    /// Register a keyspace and its shards.
    Add {
        keyspace: String,
        /// `<key range>=<mysql-url>` of revdoor's account on the shard's
        /// primary; once per shard (`-` for an unsharded keyspace).
        #[arg(
            long = "shard",
            value_name = "RANGE=URL",
            allow_hyphen_values = true,
            required = true
        )]
        shards: Vec<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Change the URL of an existing shard (a rotated password, a moved
    /// server): checked like `workflow create` checks a shard, then the
    /// keyspace and every stream on that shard change together; running
    /// streams reconnect with it. Refused while a request is in progress.
    SetShard {
        keyspace: String,
        /// `<key range>=<mysql-url>`: the shard's range as registered and
        /// its new URL.
        #[arg(long = "shard", value_name = "RANGE=URL", allow_hyphen_values = true)]
        shard: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Show one keyspace or all.
    Show {
        keyspace: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Where the shards' password is: etcd stores the reference, never the
/// password; a URL holding a password is refused.
#[derive(Args)]
pub struct PasswordArgs {
    /// Environment variable holding the password of every `--shard` URL
    /// that names none (`?password_env=`/`?password_file=` in a URL sets
    /// its own); read by each process that connects: workers,
    /// coordinators and this command.
    #[arg(long, value_name = "NAME", conflicts_with = "password_file")]
    password_env: Option<String>,
    /// File holding that password (absolute path; one trailing newline
    /// ignored), read by each process that connects.
    #[arg(long, value_name = "PATH")]
    password_file: Option<std::path::PathBuf>,
}

impl PasswordArgs {
    /// `url` with this password reference, unless it has a password or a
    /// reference of its own (a password is refused by the registry).
    fn apply(&self, url: &str) -> anyhow::Result<String> {
        use revdoor_mysql::secret::PasswordRef;
        let r = match (&self.password_env, &self.password_file) {
            (Some(n), _) => PasswordRef::env(n)?,
            (None, Some(p)) => PasswordRef::file(p)?,
            (None, None) => return Ok(url.to_string()),
        };
        let dsn = revdoor_mysql::conn::Dsn::parse(url)?;
        Ok(match dsn.password() {
            Some(_) => url.to_string(),
            None => dsn.with_ref(r).to_string(),
        })
    }
}

/// Warn, on stderr, about shard records that hold a password (written by
/// a revdoor before references): they keep working; `set-shard` moves it
/// out.
pub async fn warn_stored_passwords(reg: &Registry) {
    let Ok(list) = reg.list::<KeyspaceSpec>(&reg.prefix.keyspaces()).await else {
        return;
    };
    for (_, k) in list {
        for s in &k.shards {
            if let Ok(dsn) = revdoor_mysql::conn::Dsn::parse(&s.url) {
                if dsn.stored().is_none() {
                    let msg = format!(
                        "keyspace {} shard {} stores its password in etcd (an earlier revdoor \
                         wrote it): run `revdoor keyspace set-shard {} --shard '{}=<url without \
                         password>' --password-env NAME` (or --password-file PATH) to move it out",
                        k.name, s.range, k.name, s.range
                    );
                    tracing::warn!("{msg}");
                    eprintln!("warning: {msg}");
                }
            }
        }
    }
}

#[derive(Args)]
pub struct CutoverArgs {
    pub workflow: String,
    /// Print the plan (positions, lags) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse when any apply stream lags more than this.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub max_lag: Duration,
    /// Roll back when the target has not caught up with the fence by then.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// `triggers` (default): per-table write-deny triggers. `read-only`:
    /// also `SET GLOBAL read_only` on the fenced servers (whole servers move).
    #[arg(long, default_value = "triggers")]
    pub fence: String,
}

#[derive(Subcommand)]
pub enum WorkflowCmd {
    /// Validate, create target tables, fence them, start copy + streams.
    Create {
        workflow: String,
        #[arg(long)]
        source: String,
        #[arg(long)]
        target: String,
        /// `db.table,db.table`.
        #[arg(long, value_delimiter = ',', required = true)]
        tables: Vec<String>,
        /// `db.table=col[+col]` when the sharding key is not the primary key.
        #[arg(long = "sharding-key")]
        sharding_keys: Vec<String>,
        #[arg(long, default_value = "stop")]
        on_ddl: String,
    },
    /// Change a created workflow: its captures restart with the new value
    /// (one halted on a DDL under `stop` resumes before that DDL).
    Set {
        workflow: String,
        /// DDL policy of its captures: `stop`, `ignore` or `exec`.
        #[arg(long, required = true)]
        on_ddl: String,
    },
    /// State, streams, positions, lag, copy progress, switches.
    #[command(alias = "show")]
    Status {
        workflow: String,
        #[arg(long)]
        json: bool,
    },
    /// Fenced cutover to the target; a reverse stream keeps the source current.
    SwitchTraffic(CutoverArgs),
    /// Fenced cutover back to the source; the forward stream resumes.
    ReverseTraffic(CutoverArgs),
    /// Finish: stop the reverse streams, remove fences; routing stays on the target.
    Complete {
        workflow: String,
        #[arg(long, conflicts_with = "rename_source")]
        drop_source: bool,
        #[arg(long)]
        rename_source: bool,
        /// Complete even though a stream of the serving direction is halted
        /// or retrying: what it has not applied never reaches the source.
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        wait: Duration,
    },
    /// Abandon a workflow before any switch.
    Cancel {
        workflow: String,
        #[arg(long)]
        keep_data: bool,
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        wait: Duration,
    },
}

#[derive(Subcommand)]
pub enum RoutingCmd {
    /// Where each table of a keyspace is served.
    Get {
        keyspace: String,
        #[arg(long)]
        json: bool,
    },
    /// Print routing changes as they happen (one JSON line per rule).
    Watch { keyspace: String },
}

pub(crate) fn wf_name(s: &str) -> anyhow::Result<WorkflowName> {
    s.parse().map_err(|e| anyhow::anyhow!("{e}"))
}

/// `--shard RANGE=URL`.
fn shard_arg(s: &str) -> anyhow::Result<(KeyRange, String)> {
    let (range, url) = s.split_once('=').with_context(|| {
        format!(
            "--shard '{}' must be RANGE=URL",
            revdoor_mysql::conn::redact(s)
        )
    })?;
    let range: KeyRange = range
        .parse()
        .map_err(|e| anyhow::anyhow!("--shard {range}: {e}"))?;
    Ok((range, url.to_string()))
}

/// The streams an amendment restarted, one line each.
fn print_restarted(a: &amend::Amended) {
    if a.streams.is_empty() {
        println!("  no stream uses it");
    }
    for s in &a.streams {
        println!("  {s}: restarts with it");
    }
}

pub async fn keyspace(reg: &Registry, cmd: KeyspaceCmd) -> anyhow::Result<()> {
    match cmd {
        KeyspaceCmd::Add {
            keyspace,
            shards,
            password,
        } => {
            let parsed = shards
                .iter()
                .map(|s| {
                    let (range, url) = shard_arg(s)?;
                    Ok((range, password.apply(&url)?))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let ks = create::add_keyspace(reg, &keyspace, parsed).await?;
            println!(
                "keyspace {} added with {} shard(s)",
                ks.name,
                ks.shards.len()
            );
            Ok(())
        }
        KeyspaceCmd::SetShard {
            keyspace,
            shard,
            password,
        } => {
            let (range, url) = shard_arg(&shard)?;
            let url = password.apply(&url)?;
            let a = amend::set_shard(reg, &keyspace, range, &url).await?;
            let url = revdoor_mysql::conn::redact(&url);
            if !a.changed {
                println!(
                    "shard {range} of keyspace {keyspace} already has URL {url}: nothing changed"
                );
                return Ok(());
            }
            println!("shard {range} of keyspace {keyspace} now at {url}");
            print_restarted(&a);
            Ok(())
        }
        KeyspaceCmd::Show { keyspace, json } => {
            warn_stored_passwords(reg).await;
            let list: Vec<KeyspaceSpec> = match keyspace {
                Some(k) => vec![create::keyspace(reg, &k).await?],
                None => reg
                    .list::<KeyspaceSpec>(&reg.prefix.keyspaces())
                    .await?
                    .into_iter()
                    .map(|(_, k)| k)
                    .collect(),
            };
            let redacted: Vec<KeyspaceSpec> = list
                .into_iter()
                .map(|mut k| {
                    for s in &mut k.shards {
                        s.url = revdoor_mysql::conn::redact(&s.url);
                    }
                    k
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&redacted)?);
            } else {
                for k in redacted {
                    println!("{}", k.name);
                    for s in k.shards {
                        println!("  {:<8} {}", s.range.to_string(), s.url);
                    }
                }
            }
            Ok(())
        }
    }
}

pub async fn routing(reg: &Registry, cmd: RoutingCmd) -> anyhow::Result<()> {
    match cmd {
        RoutingCmd::Get { keyspace, json } => {
            let ks: KeyspaceName = keyspace.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let rules: Vec<RoutingRule> = reg
                .list::<RoutingRule>(&reg.prefix.routing_rules(&ks))
                .await?
                .into_iter()
                .map(|(_, r)| r)
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rules)?);
            } else if rules.is_empty() {
                println!(
                    "no routing rules for keyspace {ks}: its tables are served where they are"
                );
            } else {
                for r in rules {
                    println!(
                        "{:<32} served by {:<16} epoch {:<4} (workflow {})",
                        r.table, r.serving, r.epoch, r.workflow
                    );
                }
            }
            Ok(())
        }
        RoutingCmd::Watch { keyspace } => {
            let ks: KeyspaceName = keyspace.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let prefix = reg.prefix.routing_rules(&ks);
            let mut seen: BTreeMap<String, RoutingRule> = BTreeMap::new();
            loop {
                for (k, r) in reg.list::<RoutingRule>(&prefix).await? {
                    if seen.get(&k) != Some(&r) {
                        println!("{}", serde_json::to_string(&r)?);
                        seen.insert(k, r);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub async fn workflow(reg: &Registry, kafka: &str, cmd: WorkflowCmd) -> anyhow::Result<()> {
    match cmd {
        WorkflowCmd::Create {
            workflow,
            source,
            target,
            tables,
            sharding_keys,
            on_ddl,
        } => {
            let mut keys = BTreeMap::new();
            for k in &sharding_keys {
                let (t, cols) = k
                    .split_once('=')
                    .with_context(|| format!("--sharding-key '{k}' must be db.table=col[+col]"))?;
                keys.insert(t.to_string(), cols.split('+').map(str::to_string).collect());
            }
            let spec = create::create_workflow(
                reg,
                CreateRequest {
                    name: workflow,
                    source,
                    target,
                    tables,
                    sharding_keys: keys,
                    on_ddl,
                    brokers: kafka.to_string(),
                },
            )
            .await?;
            println!(
                "workflow {} created: {} → {}, tables {}; copying (follow with `revdoor workflow status {}`)",
                spec.name,
                spec.source,
                spec.target,
                spec.tables.join(","),
                spec.name
            );
            Ok(())
        }
        WorkflowCmd::Set { workflow, on_ddl } => {
            let a = amend::set_on_ddl(reg, &workflow, &on_ddl).await?;
            if !a.changed {
                println!("workflow {workflow} already has on_ddl={on_ddl}: nothing changed");
                return Ok(());
            }
            println!("workflow {workflow}: on_ddl={on_ddl}");
            print_restarted(&a);
            Ok(())
        }
        WorkflowCmd::Status { workflow, json } => status(reg, &workflow, json).await,
        WorkflowCmd::SwitchTraffic(a) => cutover(reg, a, true).await,
        WorkflowCmd::ReverseTraffic(a) => cutover(reg, a, false).await,
        WorkflowCmd::Complete {
            workflow,
            drop_source,
            rename_source,
            force,
            wait,
        } => {
            if force {
                eprintln!(
                    "revdoor: --force: completing even if a stream of {workflow} is halted; \
                     what it has not applied will be missing on the source:"
                );
                let wf = wf_name(&workflow)?;
                for line in force_losses(reg, &wf).await? {
                    println!("{line}");
                }
            }
            request(
                reg,
                &workflow,
                Action::Complete {
                    drop_source,
                    rename_source,
                    force,
                },
                wait,
            )
            .await?;
            println!("workflow {workflow} completed: reverse streams stopped, fences removed, routing stays on the target");
            Ok(())
        }
        WorkflowCmd::Cancel {
            workflow,
            keep_data,
            wait,
        } => {
            request(reg, &workflow, Action::Cancel { keep_data }, wait).await?;
            println!(
                "workflow {workflow} cancelled: streams stopped, fences and routing removed{}",
                if keep_data {
                    ", target tables kept"
                } else {
                    ", target tables dropped"
                }
            );
            Ok(())
        }
    }
}

/// Put a request and follow its journal entry to the end.
pub async fn request(
    reg: &Registry,
    workflow: &str,
    action: Action,
    wait: Duration,
) -> anyhow::Result<JournalEntry> {
    let wf = wf_name(workflow)?;
    if reg
        .value::<WorkflowSpec>(&reg.prefix.workflow_spec(&wf))
        .await?
        .is_none()
    {
        bail!("unknown workflow {wf} (see `revdoor workflow status`)");
    }
    let id = now_ms() * 1000 + u64::from(std::process::id() % 1000);
    let req = Request {
        id,
        action: action.clone(),
        requested_ms: now_ms(),
    };
    let key = reg.prefix.request(&wf);
    if !reg
        .create(
            std::slice::from_ref(&key),
            vec![Registry::op_put(&key, &req)],
        )
        .await?
    {
        let other: Option<Request> = reg.value(&key).await?;
        bail!(
            "workflow {wf} already has a request in progress ({}); wait for it to finish",
            other.map(|o| o.action.name()).unwrap_or("?")
        );
    }
    let journal = reg.prefix.journal_entry(&wf, id);
    let start = Instant::now();
    let mut printed = 0usize;
    let mut etcd_lost = false;
    loop {
        // The coordinator carries on with the request while etcd is out of
        // reach for this CLI: keep following it until `wait` runs out.
        let entry = match reg.value::<JournalEntry>(&journal).await {
            Ok(e) => {
                if std::mem::take(&mut etcd_lost) {
                    eprintln!("revdoor: etcd answers again");
                }
                e
            }
            Err(e) if start.elapsed() <= wait => {
                if !std::mem::replace(&mut etcd_lost, true) {
                    eprintln!("revdoor: {e}; still following the request");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{} not followed to its end: see `revdoor workflow status {wf}`",
                        action.name()
                    )
                })
            }
        };
        if let Some(e) = entry {
            for s in e.steps.iter().skip(printed) {
                let detail = if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", s.detail)
                };
                println!("  {:<18} {:<5}{detail}", s.step, s.state);
            }
            printed = e.steps.len();
            match e.outcome {
                Outcome::Running => {}
                Outcome::Done => return Ok(e),
                Outcome::Refused => bail!("{} refused: {}", action.name(), e.reason),
                Outcome::RolledBack => bail!("{} rolled back: {}", action.name(), e.reason),
            }
        } else if start.elapsed() > Duration::from_secs(10)
            && reg
                .keys(&reg.prefix.leader())
                .await
                .is_ok_and(|k| k.is_empty())
        {
            // No coordinator at all (a busy leader may take longer: it runs
            // one request at a time). Take the request back unless one
            // picked it up meanwhile (its journal entry exists).
            let take_back = etcd_client::Txn::new()
                .when([
                    etcd_client::Compare::create_revision(
                        journal.as_str(),
                        etcd_client::CompareOp::Equal,
                        0,
                    ),
                    etcd_client::Compare::value(
                        key.as_str(),
                        etcd_client::CompareOp::Equal,
                        revdoor_coordinator::registry::json(&req),
                    ),
                ])
                .and_then([etcd_client::TxnOp::delete(key.as_str(), None)]);
            if reg.client.clone().txn(take_back).await?.succeeded() {
                bail!(
                    "no coordinator took the request within 10s: is `revdoor coordinator run` running \
                     against this etcd ({})?",
                    reg.prefix
                );
            }
        }
        if start.elapsed() > wait {
            bail!(
                "{} still running after {:?}; follow it with `revdoor workflow status {wf}`",
                action.name(),
                wait
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cutover(reg: &Registry, a: CutoverArgs, to_target: bool) -> anyhow::Result<()> {
    let read_only = match a.fence.as_str() {
        "triggers" => false,
        "read-only" => true,
        other => bail!(
            "--fence {other}: use `triggers` (per-table write-deny triggers that drain in-flight \
             writers) or `read-only` (also SET GLOBAL read_only on the fenced servers, when whole servers move)"
        ),
    };
    let max_lag_ms = a.max_lag.as_millis() as u64;
    let timeout_ms = a.timeout.as_millis() as u64;
    if a.dry_run {
        return dry_run(reg, &a.workflow, to_target, max_lag_ms).await;
    }
    let action = if to_target {
        Action::SwitchTraffic {
            max_lag_ms,
            timeout_ms,
            read_only,
        }
    } else {
        Action::ReverseTraffic {
            max_lag_ms,
            timeout_ms,
            read_only,
        }
    };
    let name = action.name();
    let e = request(
        reg,
        &a.workflow,
        action,
        a.timeout + Duration::from_secs(60),
    )
    .await?;
    println!(
        "{name} done: write-unavailability window {} ms",
        e.window_ms.unwrap_or(0)
    );
    Ok(())
}

async fn dry_run(
    reg: &Registry,
    workflow: &str,
    to_target: bool,
    max_lag_ms: u64,
) -> anyhow::Result<()> {
    let wf = wf_name(workflow)?;
    let spec: WorkflowSpec = reg
        .value(&reg.prefix.workflow_spec(&wf))
        .await?
        .with_context(|| format!("unknown workflow {wf}"))?;
    let state: WorkflowState = reg
        .value(&reg.prefix.workflow_state(&wf))
        .await?
        .with_context(|| format!("workflow {wf} has no state"))?;
    let source = create::keyspace(reg, spec.source.as_str()).await?;
    let target = create::keyspace(reg, spec.target.as_str()).await?;
    let plan = SwitchPlan::new(&state, &source, &target, to_target);
    let check = switch::check_streams(reg, &wf, plan.old_dir, max_lag_ms)
        .await
        .map_err(|e| e.to_string());
    let mut old_positions = Vec::new();
    for s in &plan.old.shards {
        old_positions.push(position_text(&s.url).await);
    }
    let mut new_positions = Vec::new();
    for s in &plan.new.shards {
        new_positions.push(position_text(&s.url).await);
    }
    print!(
        "{}",
        plan.describe(
            &wf,
            &spec,
            check.as_deref().map_err(String::as_str),
            &old_positions,
            &new_positions,
        )
    );
    Ok(())
}

/// A shard's GTID position, or why it cannot be read.
async fn position_text(url: &str) -> String {
    match shard::connect(url).await {
        Ok(mut c) => match shard::position(&mut c, url).await {
            Ok(p) => p.to_string(),
            Err(e) => format!("unreadable: {e}"),
        },
        Err(e) => format!("unreachable: {e}"),
    }
}

async fn status(reg: &Registry, workflow: &str, json: bool) -> anyhow::Result<()> {
    let wf = wf_name(workflow)?;
    let spec: WorkflowSpec = reg
        .value(&reg.prefix.workflow_spec(&wf))
        .await?
        .with_context(|| {
            format!("unknown workflow {wf} (create it with `revdoor workflow create`)")
        })?;
    let state: Option<WorkflowState> = reg.value(&reg.prefix.workflow_state(&wf)).await?;
    let streams = reg.stream_specs(&wf).await?;
    let statuses = reg.stream_statuses(&wf).await?;
    let journal: Vec<(String, JournalEntry)> = reg.list(&reg.prefix.journal(&wf)).await?;
    let now = now_ms();
    // Halted streams first: they are what an operator must act on.
    let mut streams = streams;
    streams.sort_by_key(|s| {
        statuses
            .get(&s.id())
            .is_none_or(|st| st.state != StreamState::Halted)
    });
    let halted: Vec<String> = streams
        .iter()
        .filter(|s| {
            statuses
                .get(&s.id())
                .is_some_and(|st| st.state == StreamState::Halted)
        })
        .map(StreamSpec::id)
        .collect();
    if json {
        let streams_json: Vec<serde_json::Value> = streams
            .iter()
            .map(|s| {
                let st = statuses.get(&s.id());
                serde_json::json!({
                    "id": s.id(),
                    "direction": s.direction,
                    "kind": s.kind,
                    "shard": s.shard.to_string(),
                    "partition": s.partition,
                    "status": st,
                    "lag_ms": st.and_then(|st| st.lag_ms(now)),
                    "advice": st.and_then(|st| advice(&wf, &spec, s, st)),
                })
            })
            .collect();
        let last = journal.last().map(|(_, e)| e);
        let v = serde_json::json!({
            "workflow": spec,
            "state": state,
            "streams": streams_json,
            "last_request": last,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return StreamsHalted::check(&wf, halted);
    }
    let phase = state
        .as_ref()
        .map(|s| s.phase.to_string())
        .unwrap_or_else(|| "?".into());
    println!(
        "workflow {wf}: {} → {}, tables {}",
        spec.source,
        spec.target,
        spec.tables.join(",")
    );
    if let Some(s) = &state {
        println!("  phase {phase}, routing epoch {}", s.epoch);
    }
    let active = state.as_ref().and_then(|s| s.phase.active());
    for s in &streams {
        let running = Some(s.direction) == active;
        let st = statuses.get(&s.id());
        let line = match st {
            Some(st) => {
                let lag = st
                    .lag_ms(now)
                    .map(|l| format!("{:.1}s", l as f64 / 1000.0))
                    .unwrap_or_else(|| "-".into());
                let copy = if s.kind == StreamKind::Capture && !st.copy_done {
                    format!(" copy {}/{} rows", st.copy_rows, st.copy_total)
                } else {
                    String::new()
                };
                let err = match (st.error.is_empty(), st.error_since_ms) {
                    (true, _) => String::new(),
                    (false, Some(since)) => format!(
                        " error for {}: {}",
                        humantime::format_duration(Duration::from_secs(
                            now.saturating_sub(since) / 1000
                        )),
                        st.error
                    ),
                    (false, None) => format!(" error: {}", st.error),
                };
                format!(
                    "{} on {} lag {lag} {:.0} ev/s pos {}{copy}{err}",
                    st.state, st.worker, st.events_per_s, st.position
                )
            }
            None if running => "waiting for a worker".into(),
            None => "frozen".into(),
        };
        println!("  {:<24} {line}", s.id());
        if let Some(advice) = st.and_then(|st| advice(&wf, &spec, s, st)) {
            println!("  {:<24} ↳ {advice}", "");
        }
    }
    if let Some(s) = &state {
        for sw in &s.switches {
            println!(
                "  {} (epoch {}): window {} ms",
                sw.action, sw.epoch, sw.window_ms
            );
        }
    }
    if let Some((_, e)) = journal.last() {
        let last = e
            .steps
            .last()
            .map(|s| format!("{} {}", s.step, s.state))
            .unwrap_or_default();
        println!(
            "  last request: {} {:?} {last}{}",
            e.request.action.name(),
            e.outcome,
            if e.reason.is_empty() {
                String::new()
            } else {
                format!(" — {}", e.reason)
            }
        );
        let parts = e.step_parts_us();
        let steps: Vec<String> = e
            .step_work_us()
            .iter()
            .map(|(step, us)| {
                let within = parts
                    .iter()
                    .find(|(s, _)| s == step)
                    .map(|(_, p)| {
                        // In the order they happen.
                        let mut p: Vec<(&String, &u64)> = p.iter().collect();
                        p.sort_by_key(|(k, _)| CATCH_UP_PARTS.iter().position(|c| c == k));
                        let p: Vec<String> = p
                            .iter()
                            .map(|(k, v)| format!("{k} {:.1}", **v as f64 / 1000.0))
                            .collect();
                        format!(" ({})", p.join(", "))
                    })
                    .unwrap_or_default();
                format!("{step} {:.1}{within}", *us as f64 / 1000.0)
            })
            .collect();
        if !steps.is_empty() {
            println!("    steps, ms: {}", steps.join(", "));
        }
    }
    StreamsHalted::check(&wf, halted)
}

/// What `complete --force` leaves behind: each reverse apply stream with
/// its state and, per target shard feeding it, the transactions there that
/// it has not applied on the source (from its checkpoint, or from where the
/// switch started it if it applied nothing yet) — an upper bound, since
/// not every transaction there touches the moved tables.
async fn force_losses(reg: &Registry, wf: &WorkflowName) -> anyhow::Result<Vec<String>> {
    let specs: Vec<StreamSpec> = reg
        .stream_specs(wf)
        .await?
        .into_iter()
        .filter(|s| s.direction == Direction::Reverse)
        .collect();
    let statuses = reg.stream_statuses(wf).await?;
    let mut lines = Vec::new();
    for a in specs.iter().filter(|s| s.kind == StreamKind::Apply) {
        let state = match statuses.get(&a.id()) {
            Some(st) if st.error.is_empty() => st.state.to_string(),
            Some(st) => format!("{}: {}", st.state, st.error),
            None => "reported by no worker".to_string(),
        };
        lines.push(format!(
            "  {} ({state}), into source shard {}:",
            a.id(),
            a.shard
        ));
        let applied = match applied_on(&a.url, wf, a.partition).await {
            Ok(p) => p,
            Err(e) => {
                lines.push(format!("    what it applied is unknown: {e:#}"));
                continue;
            }
        };
        let origins = specs.iter().filter(|c| {
            c.kind == StreamKind::Capture && c.routes.iter().any(|(_, p)| *p == a.partition)
        });
        for c in origins {
            let base = match (&applied, &c.start_position) {
                (Some(p), _) => p.clone(),
                (None, Some(start)) => start.clone(),
                (None, None) => StoredPosition::empty(),
            };
            let line = match server_position(&c.url).await {
                Ok(now) => match now.position().missing_from(base.position()) {
                    None => "nothing missing".to_string(),
                    Some((n, which)) => format!("up to {n} transaction(s) not applied: {which}"),
                },
                Err(e) => format!("unknown: {e:#}"),
            };
            lines.push(format!("    from target shard {}: {line}", c.shard));
        }
    }
    Ok(lines)
}

async fn applied_on(
    url: &str,
    wf: &WorkflowName,
    partition: i32,
) -> anyhow::Result<Option<StoredPosition>> {
    let mut c = shard::connect(url).await?;
    let p = shard::applied_position(&mut c, url, wf, Direction::Reverse, partition).await;
    let _ = c.disconnect().await;
    Ok(p?.filter(|p| !p.is_empty()))
}

async fn server_position(url: &str) -> anyhow::Result<StoredPosition> {
    let mut c = shard::connect(url).await?;
    let p = shard::position(&mut c, url).await;
    let _ = c.disconnect().await;
    Ok(p?)
}

/// What to do about a stream's error, for `workflow status`: what
/// unblocks a halted stream; for one retrying, what the error points at.
fn advice(
    wf: &WorkflowName,
    spec: &WorkflowSpec,
    s: &StreamSpec,
    st: &revdoor_core::workflow::StreamStatus,
) -> Option<String> {
    if st.error.is_empty() && st.state != StreamState::Halted {
        return None;
    }
    let on_source = (s.direction == Direction::Forward) == (s.kind == StreamKind::Capture);
    let ks = if on_source {
        &spec.source
    } else {
        &spec.target
    };
    let set_shard = format!(
        "revdoor keyspace set-shard {ks} --shard '{}=<mysql-url>'",
        s.shard
    );
    Some(if st.error.contains("Access denied") {
        format!(
            "the server of shard {} of {ks} refuses revdoor's account (password rotated, account \
             changed?): fix the account there, or give the shard its new URL: {set_shard}",
            s.shard
        )
    } else if st.state == StreamState::Halted {
        unblock(wf, s)
    } else {
        format!(
            "revdoor retries by itself (backoff up to 10 s); if it lasts, fix what the error names \
             (the server of shard {} of {ks}, the Kafka broker or etcd); a server that moved: \
             {set_shard}",
            s.shard
        )
    })
}

/// What unblocks a halted stream, for `workflow status`.
fn unblock(wf: &WorkflowName, s: &StreamSpec) -> String {
    let fix = "fix what the error names; the worker restarts the stream at most 30 s later";
    match s.kind {
        StreamKind::Capture => fix.to_string(),
        StreamKind::Apply => format!(
            "{fix}, or pass over the one message it names: revdoor stream skip --workflow {wf} \
             --direction {} --partition {} --offset <offset in the error> --target <{} URL> \
             --reason '…'",
            s.direction, s.partition, s.shard
        ),
    }
}

/// `workflow status` found halted streams: it printed everything, and the
/// command exits with [`StreamsHalted::EXIT_CODE`] so that scripts notice.
#[derive(Debug)]
pub struct StreamsHalted(String);

impl StreamsHalted {
    pub const EXIT_CODE: i32 = 2;

    fn check(wf: &WorkflowName, halted: Vec<String>) -> anyhow::Result<()> {
        if halted.is_empty() {
            return Ok(());
        }
        Err(StreamsHalted(format!(
            "workflow {wf}: {} stream(s) halted ({}): see the first lines of \
             `revdoor workflow status {wf}`",
            halted.len(),
            halted.join(", ")
        ))
        .into())
    }
}

impl std::fmt::Display for StreamsHalted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StreamsHalted {}
