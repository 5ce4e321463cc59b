//! `revdoor load bank` (hidden): the bank workload the demo, the tests and
//! the switch benchmark drive through a migration. It follows routing like
//! an application would.
//!
//! Tables (in `--db`, created by the caller before the workflow):
//! `accounts(id BIGINT PRIMARY KEY, balance BIGINT, ops BIGINT)` and
//! `ledger(op_id BIGINT PRIMARY KEY, account_id BIGINT, amount BIGINT)`,
//! the ledger sharded by `account_id` so an account and its entries live on
//! one shard. Each operation is one transaction: `balance += amount` on an
//! account and its ledger row. Invariant, on every side: per account,
//! `balance = initial + Σ ledger.amount`, and the ledger holds exactly the
//! acknowledged operations.
//!
//! Writer: reads `routing/<keyspace>/<db>.accounts` (polling etcd every
//! 20 ms), writes to the shard of the serving keyspace that holds the
//! account's keyspace id, as the application account. A fence error
//! (SQLSTATE 45000) makes it re-read routing and retry the same operation.
//! Each acknowledged commit is appended to `--acks` as a JSON line. At the
//! end it prints a JSON summary, including the longest gap between two
//! acknowledged commits (the write-unavailability a client observed).
//!
//! With `--url` the writer follows no routing: every operation goes to
//! that one address (a `revdoor proxy`, which routes for it), as text
//! statements with the integers inlined (the proxy does not route prepared
//! statements yet), and a fence error is retried there.
//!
//! Prober (`--probe`): keeps trying to write (and roll back) a ledger row on
//! the side routing says is *not* serving. A success while the routing
//! epoch did not change around it is a violation; the summary counts them.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use revdoor_coordinator::registry::Registry;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_core::names::KeyspaceName;
use revdoor_core::workflow::{now_ms, Epoch, KeyspaceSpec, RoutingRule, ShardSpec, WorkflowSpec};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Args, Clone)]
pub struct BankArgs {
    /// Keyspace whose routing rules the writer follows (the workflow's
    /// source keyspace).
    #[arg(long)]
    pub keyspace: String,
    #[arg(long)]
    pub db: String,
    /// Accounts 1..=N exist.
    #[arg(long, default_value_t = 100)]
    pub accounts: i64,
    /// Operations per second (0 = as fast as it can).
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Stop after this long (default: until SIGTERM).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Append each acknowledged operation here (JSON lines).
    #[arg(long)]
    pub acks: Option<std::path::PathBuf>,
    /// Write the final summary here too (JSON).
    #[arg(long)]
    pub summary: Option<std::path::PathBuf>,
    /// Application account.
    #[arg(long, env = "REVDOOR_APP_USER", default_value = "app")]
    pub user: String,
    #[arg(long, env = "REVDOOR_APP_PASSWORD", default_value = "app-pw")]
    pub password: String,
    /// Distinguishes op ids of concurrent writers.
    #[arg(long, default_value_t = 1)]
    pub writer_id: i64,
    /// Probe the non-serving side instead of writing.
    #[arg(long)]
    pub probe: bool,
    /// Insert the ledger row before updating the account (the opposite
    /// order of the default): writers of both kinds lock the moved tables
    /// in opposite orders.
    #[arg(long)]
    pub ledger_first: bool,
    /// Send every operation to this one MySQL address (e.g. a `revdoor
    /// proxy`, `mysql://host:port`) instead of following routing; the
    /// account is still `--user` / `--password`.
    #[arg(long, conflicts_with = "probe")]
    pub url: Option<String>,
}

/// What the workload saw.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub acked: u64,
    pub fenced_retries: u64,
    pub other_errors: u64,
    pub max_gap_ms: u64,
    /// Gaps between acknowledged commits above 50 ms, in order.
    pub gaps_over_50ms: Vec<u64>,
    pub probes: u64,
    pub probes_refused: u64,
    pub violations: u64,
    pub last_error: String,
}

/// Routing as the client sees it.
#[derive(Clone)]
struct Route {
    epoch: Epoch,
    serving: KeyspaceSpec,
    other: KeyspaceSpec,
}

struct Client {
    reg: Registry,
    keyspace: KeyspaceName,
    table: String,
    user: String,
    password: String,
    pools: HashMap<String, Conn>,
    keyspaces: HashMap<String, KeyspaceSpec>,
    /// `--url`: the one address, in place of routing.
    fixed: Option<String>,
}

impl Client {
    async fn route(&mut self) -> anyhow::Result<Route> {
        if let Some(url) = &self.fixed {
            let one = KeyspaceSpec {
                name: self.keyspace.clone(),
                shards: vec![ShardSpec {
                    range: KeyRange::FULL,
                    url: url.clone(),
                }],
            };
            return Ok(Route {
                epoch: Epoch::default(),
                serving: one.clone(),
                other: one,
            });
        }
        let rule: RoutingRule = self
            .reg
            .value(&self.reg.prefix.routing(&self.keyspace, &self.table))
            .await?
            .with_context(|| {
                format!(
                    "no routing rule for {} in keyspace {}",
                    self.table, self.keyspace
                )
            })?;
        let wf = &rule.workflow;
        let spec: WorkflowSpec = self
            .reg
            .value(&self.reg.prefix.workflow_spec(wf))
            .await?
            .context("workflow of the routing rule is gone")?;
        let other = if rule.serving == spec.source {
            spec.target.clone()
        } else {
            spec.source.clone()
        };
        Ok(Route {
            epoch: rule.epoch,
            serving: self.keyspace_spec(rule.serving.as_str()).await?,
            other: self.keyspace_spec(other.as_str()).await?,
        })
    }

    async fn keyspace_spec(&mut self, name: &str) -> anyhow::Result<KeyspaceSpec> {
        if let Some(k) = self.keyspaces.get(name) {
            return Ok(k.clone());
        }
        let ks: KeyspaceName = name.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let k: KeyspaceSpec = self
            .reg
            .value(&self.reg.prefix.keyspace(&ks))
            .await?
            .with_context(|| format!("unknown keyspace {name}"))?;
        self.keyspaces.insert(name.to_string(), k.clone());
        Ok(k)
    }

    /// The application's connection to the shard of `ks` holding `account`.
    async fn conn(&mut self, ks: &KeyspaceSpec, account: i64) -> anyhow::Result<&mut Conn> {
        let id = keyspace_id(&[KeyValue::Int(account)]);
        let shard = ks.shard_for(id).context("no shard for keyspace id")?;
        let key = format!("{}/{}", ks.name, shard.range);
        if !self.pools.contains_key(&key) {
            let opts = revdoor_mysql::conn::exact(&shard.url)?;
            let opts: Opts = OptsBuilder::from_opts(opts)
                .user(Some(self.user.clone()))
                .pass(Some(self.password.clone()))
                .into();
            let c = Conn::new(opts)
                .await
                .with_context(|| format!("connect to {key}"))?;
            self.pools.insert(key.clone(), c);
        }
        self.pools.get_mut(&key).context("connection")
    }

    fn drop_conn(&mut self, ks: &KeyspaceSpec, account: i64) {
        let id = keyspace_id(&[KeyValue::Int(account)]);
        if let Some(shard) = ks.shard_for(id) {
            self.pools.remove(&format!("{}/{}", ks.name, shard.range));
        }
    }
}

/// `sql` with `?` placeholders for the integers `params`: prepared, or
/// with the integers inlined when `text` (`--url`).
async fn exec_ints(
    conn: &mut Conn,
    text: bool,
    sql: String,
    params: &[i64],
) -> Result<(), mysql_async::Error> {
    if !text {
        let params: Vec<mysql_async::Value> = params.iter().map(|v| (*v).into()).collect();
        return conn.exec_drop(sql, params).await;
    }
    let mut out = String::with_capacity(sql.len() + 40);
    for (i, part) in sql.split('?').enumerate() {
        if i > 0 {
            out.push_str(&params.get(i - 1).copied().unwrap_or_default().to_string());
        }
        out.push_str(part);
    }
    conn.query_drop(out).await
}

fn is_fenced(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.state == "45000" || s.code == 1644)
}

/// Run the bank writer or prober until `cancel` or `--duration`.
pub async fn run(reg: Registry, a: BankArgs, cancel: CancellationToken) -> anyhow::Result<Summary> {
    let keyspace: KeyspaceName = a.keyspace.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut client = Client {
        reg,
        keyspace,
        table: format!("{}.accounts", a.db),
        user: a.user.clone(),
        password: a.password.clone(),
        pools: HashMap::new(),
        keyspaces: HashMap::new(),
        fixed: a.url.clone(),
    };
    let text = a.url.is_some();
    let mut acks = match &a.acks {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("open {}", p.display()))?,
        )),
        None => None,
    };
    // Routing cache refreshed every 20 ms in the background.
    let route = Arc::new(Mutex::new(client.route().await?));
    {
        let route = Arc::clone(&route);
        let mut c2 = Client {
            reg: client.reg.clone(),
            keyspace: client.keyspace.clone(),
            table: client.table.clone(),
            user: String::new(),
            password: String::new(),
            pools: HashMap::new(),
            keyspaces: HashMap::new(),
            fixed: a.url.clone(),
        };
        let cancel = cancel.clone();
        tokio::spawn(
            async move {
                while !cancel.is_cancelled() {
                    if let Ok(r) = c2.route().await {
                        if let Ok(mut cur) = route.lock() {
                            *cur = r;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            .in_current_span(),
        );
    }
    let current = |route: &Arc<Mutex<Route>>| route.lock().map(|r| r.clone()).ok();
    let mut s = Summary::default();
    let started = Instant::now();
    let mut last_ack = Instant::now();
    let mut seq: i64 = 0;
    let mut rng = Rng(now_ms() ^ (a.writer_id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let period = 1_000_000u64
        .checked_div(a.rate)
        .map(Duration::from_micros)
        .unwrap_or(Duration::ZERO);
    let mut next_at = Instant::now();
    let db = a.db.clone();
    loop {
        if cancel.is_cancelled() || a.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if !period.is_zero() {
            next_at += period;
            let now = Instant::now();
            if next_at > now {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(next_at - now) => {}
                }
            } else if now - next_at > Duration::from_secs(1) {
                next_at = now;
            }
        }
        let account = 1 + (rng.next() % a.accounts.max(1) as u64) as i64;
        if a.probe {
            let Some(before) = current(&route) else {
                continue;
            };
            s.probes += 1;
            let probe_id = -(now_ms() as i64 * 1000 + (seq % 1000));
            seq += 1;
            let conn = match client.conn(&before.other, account).await {
                Ok(c) => c,
                Err(e) => {
                    s.other_errors += 1;
                    s.last_error = format!("{e:#}");
                    continue;
                }
            };
            let r = async {
                conn.query_drop("BEGIN").await?;
                let r = conn
                    .exec_drop(
                        format!("INSERT INTO `{db}`.ledger (op_id, account_id, amount) VALUES (?, ?, 0)"),
                        (probe_id, account),
                    )
                    .await;
                conn.query_drop("ROLLBACK").await?;
                r
            }
            .await;
            match r {
                Err(e) if is_fenced(&e) => s.probes_refused += 1,
                Err(e) => {
                    s.other_errors += 1;
                    s.last_error = e.to_string();
                    client.drop_conn(&before.other, account);
                }
                Ok(()) => {
                    // Fresh routing: the side may have become serving.
                    // (etcd may be down for a while: keep asking.)
                    let after = loop {
                        match client.route().await {
                            Ok(r) => break r,
                            Err(e) => {
                                s.other_errors += 1;
                                s.last_error = format!("{e:#}");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                    };
                    if after.epoch == before.epoch && after.serving.name == before.serving.name {
                        s.violations += 1;
                        eprintln!(
                            "VIOLATION: a write to non-serving keyspace {} (account {account}) succeeded at epoch {}",
                            before.other.name, before.epoch
                        );
                    }
                }
            }
            continue;
        }
        seq += 1;
        let op_id = a.writer_id * 1_000_000_000_000 + seq;
        let amount = (rng.next() % 101) as i64 - 50;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let Some(r) = current(&route) else { break };
            let result = match client.conn(&r.serving, account).await {
                Ok(conn) => {
                    async {
                        conn.query_drop("BEGIN").await?;
                        let update = format!(
                            "UPDATE `{db}`.accounts SET balance = balance + ?, ops = ops + 1 WHERE id = ?"
                        );
                        let insert = format!(
                            "INSERT INTO `{db}`.ledger (op_id, account_id, amount) VALUES (?, ?, ?)"
                        );
                        if a.ledger_first {
                            exec_ints(conn, text, insert, &[op_id, account, amount]).await?;
                            exec_ints(conn, text, update, &[amount, account]).await?;
                        } else {
                            exec_ints(conn, text, update, &[amount, account]).await?;
                            exec_ints(conn, text, insert, &[op_id, account, amount]).await?;
                        }
                        conn.query_drop("COMMIT").await
                    }
                    .await
                }
                Err(e) => {
                    s.other_errors += 1;
                    s.last_error = format!("{e:#}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let result = match result {
                // Our op id is already there: an earlier attempt committed
                // but its acknowledgement was lost (connection cut).
                Err(mysql_async::Error::Server(se))
                    if se.code == 1062 && se.message.contains("PRIMARY") =>
                {
                    if let Ok(c) = client.conn(&r.serving, account).await {
                        let _ = c.query_drop("ROLLBACK").await;
                    }
                    Ok(())
                }
                other => other,
            };
            match result {
                Ok(()) => {
                    s.acked += 1;
                    let gap = last_ack.elapsed().as_millis() as u64;
                    last_ack = Instant::now();
                    if s.acked > 1 {
                        s.max_gap_ms = s.max_gap_ms.max(gap);
                        if gap > 50 {
                            s.gaps_over_50ms.push(gap);
                        }
                    }
                    if let Some(w) = acks.as_mut() {
                        writeln!(w, "{{\"op\":{op_id},\"account\":{account},\"amount\":{amount},\"epoch\":{},\"ts_ms\":{}}}", r.epoch, now_ms())?;
                        w.flush()?;
                    }
                    break;
                }
                Err(e) if is_fenced(&e) => {
                    s.fenced_retries += 1;
                    if let Ok(c) = client.conn(&r.serving, account).await {
                        let _ = c.query_drop("ROLLBACK").await;
                    }
                    // Routing moves within milliseconds of the fence; look again.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    if let Ok(fresh) = client.route().await {
                        if let Ok(mut cur) = route.lock() {
                            *cur = fresh;
                        }
                    }
                }
                Err(e) => {
                    s.other_errors += 1;
                    s.last_error = e.to_string();
                    client.drop_conn(&r.serving, account);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    if let Some(mut w) = acks {
        w.flush()?;
    }
    Ok(s)
}

/// xorshift64*: the workload needs no cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
