//! A workflow driven the way an operator runs one: `revdoor keyspace add`,
//! `workflow create`, coordinators and workers as processes, the bank
//! workload (`revdoor load bank`) following routing, and the checks the
//! revolving-door tests share.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use mysql_async::prelude::Queryable;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};

use crate::{wait_for, Revdoor, TestCtx};

/// Source keyspace `src` and target keyspace `dst` of one test.
pub struct Door {
    pub ctx: TestCtx,
    /// Server of the unsharded source.
    pub source: usize,
    /// Target shards: (range, server).
    pub target: Vec<(String, usize)>,
    pub accounts: i64,
}

/// Output of a one-shot command, checked.
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The apply lag under which [`Door::wait_streams_running`] calls a
/// stream caught up: half the `--max-lag` the tests switch with.
pub const CAUGHT_UP_MS: u64 = 5_000;

impl Door {
    /// Bank tables with `accounts` accounts (balance 1000) on `source`,
    /// keyspaces registered, workflow created (not yet running: no
    /// coordinator or worker is started here).
    pub async fn create(
        name: &str,
        source: usize,
        target: &[(&str, usize)],
        accounts: i64,
    ) -> Door {
        Door::create_via(name, source, target, accounts, &TestCtx::revdoor_url).await
    }

    /// [`Door::create`] with the keyspaces' shard URLs given by `url`
    /// (context, server), e.g. through a proxy.
    pub async fn create_via(
        name: &str,
        source: usize,
        target: &[(&str, usize)],
        accounts: i64,
        url: &dyn Fn(&TestCtx, usize) -> String,
    ) -> Door {
        let ctx = TestCtx::new(name);
        ctx.create_db(&[source]).await;
        let db = &ctx.db;
        let mut stmts = vec![
            format!("CREATE TABLE {db}.accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, ops BIGINT NOT NULL DEFAULT 0)"),
            format!("CREATE TABLE {db}.ledger (op_id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, amount BIGINT NOT NULL, KEY (account_id))"),
        ];
        // MariaDB's sequence engine; a recursive CTE on MySQL.
        match ctx.stack.servers[source - 1].engine {
            crate::Engine::MariaDb => stmts.push(format!(
                "INSERT INTO {db}.accounts (id, balance) SELECT seq, 1000 FROM {db}.seq_1_to_{accounts}"
            )),
            crate::Engine::MySql => stmts.extend([
                format!("SET SESSION cte_max_recursion_depth = {}", accounts + 1),
                format!(
                    "INSERT INTO {db}.accounts (id, balance) WITH RECURSIVE s (n) AS \
                     (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {accounts}) SELECT n, 1000 FROM s"
                ),
            ]),
        }
        ctx.sql(
            source,
            &stmts.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
        Door::register_via(ctx, source, target, accounts, url)
    }

    /// Keyspaces `src` (unsharded on `source`) and `dst` (`target` shards)
    /// registered over tables already made; `accounts` is the bank
    /// workload's (0 without one).
    pub fn register(ctx: TestCtx, source: usize, target: &[(&str, usize)], accounts: i64) -> Door {
        Door::register_via(ctx, source, target, accounts, &TestCtx::revdoor_url)
    }

    /// [`Door::register`] with the shard URLs given by `url`.
    fn register_via(
        ctx: TestCtx,
        source: usize,
        target: &[(&str, usize)],
        accounts: i64,
        url: &dyn Fn(&TestCtx, usize) -> String,
    ) -> Door {
        let door = Door {
            source,
            target: target.iter().map(|(r, s)| (r.to_string(), *s)).collect(),
            accounts,
            ctx,
        };
        let src_shard = format!("-={}", door.ctx.shard_url(&url(&door.ctx, source)));
        door.ok(&["keyspace", "add", "src", "--shard", &src_shard]);
        let mut args: Vec<String> = vec!["keyspace".into(), "add".into(), "dst".into()];
        for (r, s) in &door.target {
            args.push("--shard".into());
            args.push(format!("{r}={}", door.ctx.shard_url(&url(&door.ctx, *s))));
        }
        door.ok(&crate::args(&args));
        door
    }

    /// `workflow create` of the bank tables.
    pub fn create_workflow(&self) -> Out {
        self.create_workflow_with(&[])
    }

    /// `workflow create` of the bank tables and `extra` tables of the
    /// test's database.
    pub fn create_workflow_with(&self, extra: &[&str]) -> Out {
        let mut tables = format!("{0}.accounts,{0}.ledger", self.ctx.db);
        for t in extra {
            tables.push_str(&format!(",{}.{t}", self.ctx.db));
        }
        let key = format!("{}.ledger=account_id", self.ctx.db);
        self.create_workflow_of(&tables, &["--sharding-key", &key])
    }

    /// `workflow create` of `tables` (`db.t,…`) from `src` to `dst`, with
    /// `extra` arguments.
    pub fn create_workflow_of(&self, tables: &str, extra: &[&str]) -> Out {
        let mut args = vec![
            "workflow",
            "create",
            &self.ctx.workflow,
            "--source",
            "src",
            "--target",
            "dst",
            "--tables",
            tables,
        ];
        args.extend_from_slice(extra);
        self.cmd(&args)
    }

    /// Run `revdoor <args>`.
    pub fn cmd(&self, args: &[&str]) -> Out {
        let o = self.ctx.run(args);
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Run `revdoor <args>` and panic unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args);
        assert!(o.ok, "revdoor {args:?} failed:\n{}\n{}", o.stdout, o.stderr);
        o.stdout
    }

    pub fn coordinator(&self, id: &str, env: &[(&str, &str)]) -> Revdoor {
        self.coordinator_ttl(id, "2s", env)
    }

    pub fn coordinator_ttl(&self, id: &str, ttl: &str, env: &[(&str, &str)]) -> Revdoor {
        self.ctx.spawn_env(
            id,
            &["coordinator", "run", "--id", id, "--lease-ttl", ttl],
            env,
        )
    }

    /// The id of the coordinator holding the leader key, if any.
    pub async fn leader(&self) -> Option<String> {
        let mut c = self.ctx.etcd().await;
        let key = format!("{}leader", self.ctx.etcd_prefix);
        let resp = c.get(key.as_str(), None).await.ok()?;
        resp.kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
    }

    /// Wait until coordinator `id` leads.
    pub async fn wait_leader(&self, id: &str, within: Duration) {
        let r = wait_for(&format!("{id} leading"), within, || async {
            Ok((self.leader().await.as_deref() == Some(id)).then_some(()))
        })
        .await;
        if let Err(e) = r {
            panic!("{e}; leader is {:?}", self.leader().await);
        }
    }

    pub fn worker(&self, id: &str) -> Revdoor {
        self.worker_ttl(id, "2s")
    }

    pub fn worker_ttl(&self, id: &str, ttl: &str) -> Revdoor {
        self.ctx
            .spawn(id, &["worker", "run", "--id", id, "--lease-ttl", ttl])
    }

    pub fn acks_path(&self, name: &str) -> PathBuf {
        self.ctx.logs.join(format!("{name}.acks"))
    }

    pub fn summary_path(&self, name: &str) -> PathBuf {
        self.ctx.logs.join(format!("{name}.summary.json"))
    }

    /// The bank writer, `rate` operations/s, acks in `<name>.acks`.
    pub fn writer(&self, name: &str, writer_id: i64, rate: u64) -> Revdoor {
        self.writer_with(name, writer_id, rate, &[])
    }

    /// [`Self::writer`] with more `load bank` flags (`--ledger-first`).
    pub fn writer_with(&self, name: &str, writer_id: i64, rate: u64, extra: &[&str]) -> Revdoor {
        let id = writer_id.to_string();
        let acks = self.acks_path(name).to_string_lossy().into_owned();
        let mut flags = vec!["--writer-id", &id, "--acks", &acks];
        flags.extend_from_slice(extra);
        self.bank(name, rate, &flags)
    }

    /// The prober of the non-serving side.
    pub fn prober(&self, name: &str) -> Revdoor {
        self.prober_with(name, &[])
    }

    /// [`Self::prober`] with more `load bank` flags (`--user`, `--password`).
    pub fn prober_with(&self, name: &str, extra: &[&str]) -> Revdoor {
        let mut flags = vec!["--probe"];
        flags.extend_from_slice(extra);
        self.bank(name, 100, &flags)
    }

    /// `revdoor load bank` on this door's tables, `rate` operations/s, its
    /// summary in `<name>.summary.json`, with `flags`.
    fn bank(&self, name: &str, rate: u64, flags: &[&str]) -> Revdoor {
        let (accounts, rate) = (self.accounts.to_string(), rate.to_string());
        let summary = self.summary_path(name).to_string_lossy().into_owned();
        let mut args = vec![
            "load",
            "bank",
            "--keyspace",
            "src",
            "--db",
            &self.ctx.db,
            "--accounts",
            &accounts,
            "--rate",
            &rate,
            "--summary",
            &summary,
        ];
        args.extend_from_slice(flags);
        self.ctx.spawn(name, &args)
    }

    /// Stop a load process with SIGTERM and read its summary.
    pub async fn finish_load(&self, p: &mut Revdoor, name: &str) -> serde_json::Value {
        p.signal("TERM");
        let code = p.wait_exit(Duration::from_secs(30)).await;
        assert_eq!(code, Some(0), "{name} exited badly:\n{}", p.log_text());
        let text = std::fs::read_to_string(self.summary_path(name)).expect("load summary");
        serde_json::from_str(&text).expect("summary JSON")
    }

    /// `workflow status --json`.
    /// `workflow status --json`; it exits with 2 (and prints everything)
    /// when a stream is halted.
    pub fn status(&self) -> serde_json::Value {
        let args = ["workflow", "status", &self.ctx.workflow, "--json"];
        let o = self.ctx.run(&args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            matches!(o.status.code(), Some(0 | 2)),
            "revdoor {args:?} failed:\n{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON: {e}\n{out}"))
    }

    pub fn phase(&self) -> String {
        self.status()["state"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Create the workflow and start coordinator `c0` and worker `w1`;
    /// return once it runs with its streams caught up.
    pub async fn started(&self) -> (Revdoor, Revdoor) {
        let out = self.create_workflow();
        assert!(out.ok, "workflow create: {}{}", out.stdout, out.stderr);
        let c = self.coordinator("c0", &[]);
        let w = self.worker("w1");
        self.wait_phase("running", Duration::from_secs(60)).await;
        self.wait_streams_running(Duration::from_secs(30)).await;
        (c, w)
    }

    /// Wait until the last cutover request has ended; its outcome
    /// (`done`, `rolled-back`).
    pub async fn wait_request_ended(&self, within: Duration) -> String {
        wait_for("the cutover request ended", within, || async {
            let st = self.status();
            let outcome = st["last_request"]["outcome"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Ok((outcome != "running" && !outcome.is_empty()).then_some(outcome))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; status: {}", self.status()))
    }

    /// Wait until the workflow is in `phase`.
    pub async fn wait_phase(&self, phase: &str, within: Duration) {
        wait_for(&format!("phase {phase}"), within, || async {
            Ok((self.phase() == phase).then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; status: {}", self.status()));
    }

    /// Wait until every stream of the running direction reports running
    /// and every apply stream has caught up (lag under [`CAUGHT_UP_MS`]),
    /// as an operator waits before a switch: a stream restarted by the
    /// previous switch reports its last lag until its first heartbeat, and
    /// on a loaded machine that can exceed a switch's `--max-lag`.
    pub async fn wait_streams_running(&self, within: Duration) {
        self.wait_streams_lag_below(CAUGHT_UP_MS, within).await;
    }

    /// [`Door::wait_streams_running`] with apply lag under `lag_ms`.
    pub async fn wait_streams_lag_below(&self, lag_ms: u64, within: Duration) {
        wait_for("streams running", within, || async {
            let st = self.status();
            let phase = st["state"]["phase"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let active = if phase == "switched" {
                "reverse"
            } else {
                "forward"
            };
            let streams = st["streams"].as_array().cloned().unwrap_or_default();
            let running = streams
                .iter()
                .filter(|s| s["direction"] == active)
                .all(|s| {
                    s["status"]["state"] == "running"
                        && (s["kind"] == "capture"
                            || s["lag_ms"].as_u64().is_some_and(|l| l < lag_ms))
                });
            Ok(running.then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; status: {}", self.status()));
    }

    /// Run switch-traffic or reverse-traffic; its printed window.
    pub fn cutover(&self, action: &str, extra: &[&str]) -> Out {
        let mut args = vec!["workflow", action, &self.ctx.workflow];
        args.extend_from_slice(extra);
        self.cmd(&args)
    }

    /// Rows of a table on the source, and the union of the target shards.
    pub async fn both_sides(
        &self,
        table: &str,
    ) -> (Vec<Vec<Option<String>>>, Vec<Vec<Option<String>>>) {
        let src = self.ctx.rows(self.source, table).await;
        let mut dst = Vec::new();
        for (_, s) in &self.target {
            dst.extend(self.ctx.rows(*s, table).await);
        }
        dst.sort_by_key(|r| {
            r.first()
                .cloned()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok())
        });
        (src, dst)
    }

    /// Wait until source and target hold the same rows (streams caught up
    /// after the writers stopped).
    pub async fn wait_converged(&self, within: Duration) {
        wait_for("source = target", within, || async {
            Ok(self.converged().await.then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Whether source and target hold the same bank rows now.
    pub async fn converged(&self) -> bool {
        for t in ["accounts", "ledger"] {
            let (mut a, b) = self.both_sides(t).await;
            a.sort_by_key(|r| {
                r.first()
                    .cloned()
                    .flatten()
                    .and_then(|v| v.parse::<i64>().ok())
            });
            if a != b {
                return false;
            }
        }
        true
    }

    /// The revolving-door invariants, after the writers stopped and the
    /// streams converged:
    /// - every acknowledged operation is in the ledger, with its amount, on
    ///   both sides, and the ledger holds nothing else;
    /// - per account, balance = 1000 + Σ ledger amounts, on both sides;
    /// - source = target row for row; every target row is on its shard.
    pub async fn check_invariants(&self, ack_files: &[PathBuf]) -> anyhow::Result<usize> {
        let mut acked: BTreeMap<i64, i64> = BTreeMap::new();
        for f in ack_files {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
            for line in text.lines().filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line)?;
                let op = v["op"].as_i64().context("op")?;
                let amount = v["amount"].as_i64().context("amount")?;
                if acked.insert(op, amount).is_some() {
                    bail!("operation {op} acknowledged twice");
                }
            }
        }
        let (src_ledger, dst_ledger) = self.both_sides("ledger").await;
        let (src_acc, dst_acc) = self.both_sides("accounts").await;
        for (side, ledger, accounts) in [
            ("source", &src_ledger, &src_acc),
            ("target", &dst_ledger, &dst_acc),
        ] {
            let mut have: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
            for r in ledger {
                let num = |k: usize| {
                    r.get(k)
                        .cloned()
                        .flatten()
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(i64::MIN)
                };
                have.insert(num(0), (num(1), num(2)));
            }
            for (op, amount) in &acked {
                match have.get(op) {
                    Some((_, a)) if a == amount => {}
                    Some((_, a)) => {
                        bail!("{side}: operation {op} has amount {a}, acknowledged {amount}")
                    }
                    None => bail!("{side}: acknowledged operation {op} is missing (a lost write)"),
                }
            }
            let extra: Vec<&i64> = have.keys().filter(|k| !acked.contains_key(k)).collect();
            if !extra.is_empty() {
                bail!(
                    "{side}: {} ledger rows were never acknowledged, e.g. {:?}",
                    extra.len(),
                    &extra[..extra.len().min(5)]
                );
            }
            let mut sums: BTreeMap<i64, i64> = BTreeMap::new();
            for (account, amount) in have.values() {
                *sums.entry(*account).or_default() += amount;
            }
            for r in accounts.iter() {
                let num = |k: usize| {
                    r.get(k)
                        .cloned()
                        .flatten()
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(i64::MIN)
                };
                let (id, balance) = (num(0), num(1));
                let want = 1000 + sums.get(&id).copied().unwrap_or(0);
                if balance != want {
                    bail!("{side}: account {id} has balance {balance}, its ledger says {want}");
                }
            }
            if accounts.len() as i64 != self.accounts {
                bail!(
                    "{side}: {} accounts, expected {}",
                    accounts.len(),
                    self.accounts
                );
            }
        }
        let mut src_sorted = src_ledger.clone();
        src_sorted.sort_by_key(|r| {
            r.first()
                .cloned()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok())
        });
        if src_sorted != dst_ledger || src_acc != dst_acc {
            bail!("source and target differ row for row");
        }
        // Every target row on the shard its keyspace id belongs to.
        for (range, server) in &self.target {
            let range: KeyRange = range.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut c = self.ctx.conn(*server).await;
            for (table, col) in [("accounts", "id"), ("ledger", "account_id")] {
                let ids: Vec<i64> = c
                    .query(format!("SELECT {col} FROM {}.{table}", self.ctx.db))
                    .await?;
                for id in ids {
                    let k = keyspace_id(&[KeyValue::Int(id)]);
                    if !range.contains(k) {
                        bail!("{table} row with {col} {id} sits on shard {range}, its keyspace id {k:016x} is elsewhere");
                    }
                }
            }
        }
        Ok(acked.len())
    }

    /// How a chaos scenario ends: the bank `writer` and `prober` stopped
    /// (started as `"writer"` and `"prober"`); no write accepted on a
    /// fenced side; the writer acknowledged more than `min_acked`; the
    /// sides converge within `within`; [`Door::check_invariants`] holds.
    /// The number of acknowledged writes and both summaries.
    pub async fn finish_chaos(
        &self,
        writer: &mut Revdoor,
        prober: &mut Revdoor,
        min_acked: u64,
        within: Duration,
    ) -> (usize, serde_json::Value, serde_json::Value) {
        let w_sum = self.finish_load(writer, "writer").await;
        let p_sum = self.finish_load(prober, "prober").await;
        assert_eq!(
            p_sum["violations"], 0,
            "a fenced side took a write: {p_sum}"
        );
        assert!(
            w_sum["acked"].as_u64().unwrap_or(0) > min_acked,
            "writer barely wrote: {w_sum}"
        );
        self.wait_converged(within).await;
        let n = self
            .check_invariants(&[self.acks_path("writer")])
            .await
            .unwrap_or_else(|e| panic!("invariants: {e:#}"));
        (n, w_sum, p_sum)
    }

    /// Swap the leader for one that pauses 2 s right after the fence step
    /// (`fence-pause`), start `switch-traffic` (CLI `switch-killed`) and
    /// return once the source is fenced: the moment a chaos test strikes.
    /// The caller stops the previous leader first.
    pub async fn switch_paused_after_fence(&self) -> (Revdoor, Revdoor) {
        let c = self.coordinator(
            "fence-pause",
            &[("FAILPOINTS", "switch::after_fence=sleep(2000)")],
        );
        self.wait_leader("fence-pause", Duration::from_secs(30))
            .await;
        self.wait_streams_lag_below(2_000, Duration::from_secs(120))
            .await;
        let wf = self.ctx.workflow.clone();
        let cli = self.ctx.spawn(
            "switch-killed",
            &["workflow", "switch-traffic", &wf, "--timeout", "30s"],
        );
        wait_for("source fenced", Duration::from_secs(60), || async {
            let fenced = self.fences(self.source).await.iter().any(|(_, f)| *f != 0);
            Ok(fenced.then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cli.log_text()));
        (c, cli)
    }

    /// After the chaos the door still turns both ways: a switch and its
    /// reverse from `phase`, each of which must succeed.
    pub async fn turn_both_ways(&self, phase: &str) {
        let actions = if phase == "switched" {
            ["reverse-traffic", "switch-traffic"]
        } else {
            ["switch-traffic", "reverse-traffic"]
        };
        for action in actions {
            self.wait_streams_running(Duration::from_secs(120)).await;
            let out = self.cutover(action, &[]);
            assert!(
                out.ok,
                "{action} after the chaos: {}{}",
                out.stdout, out.stderr
            );
        }
    }

    /// Write-unavailability windows of every finished switch, from status.
    pub fn windows(&self) -> Vec<u64> {
        self.status()["state"]["switches"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s["window_ms"].as_u64())
            .collect()
    }

    /// The last request's catch-up: its work and its parts
    /// (`capture`, `kafka`, `apply`), µs, from status.
    pub fn last_catch_up(&self) -> (u64, BTreeMap<String, u64>) {
        let status = self.status();
        let steps = status["last_request"]["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let done = steps
            .iter()
            .rev()
            .find(|s| s["step"] == "catch-up" && s["state"] == "done")
            .unwrap_or_else(|| panic!("no catch-up done in the last request: {status}"));
        let parts = serde_json::from_value(done["parts_us"].clone()).unwrap_or_default();
        (done["work_us"].as_u64().unwrap_or(0), parts)
    }

    /// Fence rows of this workflow on a server: (side, fenced), the mark
    /// row left out.
    pub async fn fences(&self, server: usize) -> BTreeSet<(String, i64)> {
        let mut c = self.ctx.conn(server).await;
        let rows: Vec<(String, i64)> = c
            .exec(
                "SELECT side, fenced FROM _revdoor.fences WHERE workflow = ? AND side <> 'mark'",
                (&self.ctx.workflow,),
            )
            .await
            .unwrap_or_default();
        rows.into_iter().collect()
    }

    /// Fence triggers of this test's database on a server.
    pub async fn triggers(&self, server: usize) -> usize {
        let mut c = self.ctx.conn(server).await;
        let n: Option<i64> = c
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME LIKE '\\_revdoor\\_fence%'",
                (&self.ctx.db,),
            )
            .await
            .unwrap_or_default();
        n.unwrap_or(0) as usize
    }

    /// Raw etcd keys under this test's prefix + `rest`.
    pub async fn etcd_keys(&self, rest: &str) -> Vec<String> {
        let mut c = self.ctx.etcd().await;
        let key = format!("{}{rest}", self.ctx.etcd_prefix);
        let resp = c
            .get(
                key.as_str(),
                Some(
                    etcd_client::GetOptions::new()
                        .with_prefix()
                        .with_keys_only(),
                ),
            )
            .await
            .expect("etcd get");
        resp.kvs()
            .iter()
            .map(|kv| {
                String::from_utf8_lossy(kv.key())
                    .trim_start_matches(&key)
                    .to_string()
            })
            .collect()
    }

    /// Every key and value under this test's etcd prefix (what
    /// `etcdctl get --prefix` prints), checked for `passwords` and the
    /// stack's revdoor password: etcd stores none.
    pub async fn assert_no_password_in_etcd(&self, passwords: &[&str]) {
        let mut c = self.ctx.etcd().await;
        let resp = c
            .get(
                self.ctx.etcd_prefix.as_str(),
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .expect("etcd get");
        assert!(
            !resp.kvs().is_empty(),
            "nothing under {}",
            self.ctx.etcd_prefix
        );
        let stack_pw = self.ctx.stack.revdoor_password.as_str();
        for kv in resp.kvs() {
            let text = format!(
                "{} {}",
                String::from_utf8_lossy(kv.key()),
                String::from_utf8_lossy(kv.value())
            );
            for pw in passwords.iter().copied().chain([stack_pw]) {
                assert!(!text.contains(pw), "a password in etcd: {text}");
            }
        }
    }
}

/// What `workflow status` showed while a service was down
/// ([`Door::down_in_status`]).
pub struct Outage {
    /// How long the service took to start again.
    pub restart: Duration,
    /// The first stream of the wanted kind seen with an error and its
    /// since-when: `(stream id, error, how far into the outage)`.
    pub shown: Option<(String, String, Duration)>,
}

impl Door {
    /// SIGKILL stack service `service`, leave it down for `down` while
    /// polling `workflow status` for a stream of `kind` (`capture`,
    /// `apply`) reporting an error with since when (issue 18 item 6: the
    /// errors a stream retries are shown), then start it again.
    pub async fn down_in_status(&self, service: &str, down: Duration, kind: &str) -> Outage {
        let stack = crate::stack();
        stack.kill(service);
        let t = std::time::Instant::now();
        let mut shown = None;
        while t.elapsed() < down {
            if shown.is_none() {
                let st = tokio::task::block_in_place(|| self.status());
                shown = st["streams"].as_array().and_then(|s| {
                    s.iter().find_map(|s| {
                        let e = s["status"]["error"].as_str()?;
                        s["status"]["error_since_ms"].as_u64()?;
                        (s["kind"] == kind).then(|| {
                            (
                                s["id"].as_str().unwrap_or_default().to_string(),
                                e.to_string(),
                                t.elapsed(),
                            )
                        })
                    })
                });
            }
            let left = down.saturating_sub(t.elapsed());
            tokio::time::sleep(Duration::from_millis(500).min(left)).await;
        }
        let restarting = std::time::Instant::now();
        stack.restart();
        Outage {
            restart: restarting.elapsed(),
            shown,
        }
    }
}
