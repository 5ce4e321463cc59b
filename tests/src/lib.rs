//! Test harness: the real stack, per-test isolation, processes.
//!
//! * [`stack`] returns the running stack. If `REVDOOR_ETCD`, `REVDOOR_KAFKA`
//!   and `REVDOOR_MYSQL_1..` are set it uses them; otherwise it runs
//!   `deploy/stack up --mariadb 5 --mysql 2` once per test binary (the
//!   script is idempotent and serialises concurrent callers, so all test
//!   binaries of a run share one stack) and reads `deploy/stack env`.
//!   Servers are numbered as in `REVDOOR_MYSQL_i`, MariaDB first, then
//!   MySQL; [`Stack::mariadb_servers`] and [`Stack::mysql_servers`] find
//!   them by engine (`REVDOOR_ENGINE_i`).
//! * [`TestCtx`] gives each test a unique database name, workflow name (hence
//!   topic prefix `revdoor.<workflow>.`) and etcd prefix, so tests run in
//!   parallel on one stack.
//! * [`Revdoor`] starts a `revdoor` process with its output in a log file,
//!   kills it (SIGKILL), stops it (SIGTERM), and checks its log for
//!   unexpected ERROR lines.
//! * [`wait_for`] polls a condition until a deadline: tests never sleep to
//!   synchronise.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

pub mod bank;
pub mod door;
pub mod prometheus;
pub mod toxi;
pub mod vdiff;

/// The database engine of a server (`REVDOOR_ENGINE_i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    MariaDb,
    MySql,
}

/// One database server of the stack.
#[derive(Debug, Clone)]
pub struct Server {
    /// Admin URL (`REVDOOR_MYSQL_i`).
    pub url: String,
    pub engine: Engine,
}

/// How long a chaos test leaves a service down (`REVDOOR_CHAOS_OUTAGE_S`,
/// default 5 s: longer than the tests' 2 s leases).
pub fn chaos_outage() -> Duration {
    Duration::from_secs(
        std::env::var("REVDOOR_CHAOS_OUTAGE_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    )
}

/// Addresses of the running stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub etcd: String,
    pub kafka: String,
    /// Admin URLs of the MariaDB servers, index 0 = `REVDOOR_MYSQL_1`.
    /// `deploy/stack` numbers MariaDB first, so `mysql[i - 1]` is server `i`;
    /// the MySQL servers that follow are not in here (the tests that count
    /// or index this vector were written for MariaDB), only in `servers`.
    pub mysql: Vec<String>,
    /// Every server, index 0 = `REVDOOR_MYSQL_1`.
    pub servers: Vec<Server>,
    pub revdoor_user: String,
    pub revdoor_password: String,
    /// `deploy/stack`'s state directory (`REVDOOR_STACK_DIR`): where its
    /// services' pid files are, for the chaos tests.
    pub state_dir: PathBuf,
}

impl Stack {
    /// SIGKILL a service of the stack (`kafka`, `etcd`, `mariadb-2`,
    /// `mysql-1`…) and wait until it is gone. Only a test binary that runs
    /// alone on the stack may do this (binaries run one after another).
    pub fn kill(&self, service: &str) {
        let pid_file = self.state_dir.join(service).join("pid");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
        let pid = pid.trim();
        let status = Command::new("kill")
            .args(["-KILL", pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL {pid} ({service})");
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let since = Instant::now();
        // Gone, or a zombie of the script that started it.
        while proc.exists()
            && !std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| s.contains(") Z "))
        {
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "{service} survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL `service`, leave it down for `down`, start it again; how
    /// long the restart took.
    pub async fn bounce(&self, service: &str, down: Duration) -> Duration {
        self.kill(service);
        tokio::time::sleep(down).await;
        let t = Instant::now();
        self.restart();
        t.elapsed()
    }

    /// The `deploy/stack` service name of server `i` (`mariadb-3`,
    /// `mysql-1`): MariaDB servers come first.
    pub fn service_of(&self, i: usize) -> String {
        let mariadb = self.servers_of(Engine::MariaDb).len();
        match self.servers[i - 1].engine {
            Engine::MariaDb => format!("mariadb-{i}"),
            Engine::MySql => format!("mysql-{}", i - mariadb),
        }
    }

    /// Start again whatever of the stack is down (`deploy/stack up`, which
    /// keeps a restarted service's ports), and wait until it all answers.
    pub fn restart(&self) {
        let script = repo_root().join("deploy/stack");
        let status = Command::new(&script)
            .arg("up")
            .env("REVDOOR_STACK_DIR", &self.state_dir)
            .env("REVDOOR_KAFKA_START_TIMEOUT_S", "300")
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            status.success(),
            "deploy/stack up (restart) failed: {status}"
        );
    }

    /// Numbers `i` (as in `REVDOOR_MYSQL_i`, [`TestCtx::conn`]) of the
    /// servers running `engine`, ascending.
    pub fn servers_of(&self, engine: Engine) -> Vec<usize> {
        (1..=self.servers.len())
            .filter(|&i| self.servers[i - 1].engine == engine)
            .collect()
    }

    /// Numbers of the MariaDB servers.
    pub fn mariadb_servers(&self) -> Vec<usize> {
        self.servers_of(Engine::MariaDb)
    }

    /// Numbers of the MySQL servers.
    pub fn mysql_servers(&self) -> Vec<usize> {
        self.servers_of(Engine::MySql)
    }
}

/// Run `sql` on the server of admin URL `url` with the `mariadb` client,
/// synchronously: for guards that undo a test's server-wide change in
/// `Drop`, where no async connection can be made. Errors are ignored.
pub fn admin_sql_blocking(url: &str, sql: &str) {
    let Ok(o) = Opts::from_url(url) else { return };
    let _ = std::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h",
            o.ip_or_hostname(),
            "-P",
            &o.tcp_port().to_string(),
            "-u",
            o.user().unwrap_or("admin"),
            &format!("-p{}", o.pass().unwrap_or("")),
            "-e",
            sql,
        ])
        .status();
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub(crate) fn parse_env_lines(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// The stack the variables describe; `None` if one is missing.
fn stack_from(vars: &HashMap<String, String>) -> anyhow::Result<Option<Stack>> {
    let (Some(etcd), Some(kafka)) = (vars.get("REVDOOR_ETCD"), vars.get("REVDOOR_KAFKA")) else {
        return Ok(None);
    };
    let mut servers = Vec::new();
    for i in 1.. {
        let Some(url) = vars.get(&format!("REVDOOR_MYSQL_{i}")) else {
            break;
        };
        // A stack from before MySQL was in it names no engine: MariaDB.
        let engine = match vars.get(&format!("REVDOOR_ENGINE_{i}")).map(String::as_str) {
            None | Some("mariadb") => Engine::MariaDb,
            Some("mysql") => Engine::MySql,
            Some(other) => bail!("REVDOOR_ENGINE_{i}={other}: expected mariadb or mysql"),
        };
        servers.push(Server {
            url: url.clone(),
            engine,
        });
    }
    if servers.is_empty() {
        return Ok(None);
    }
    let mysql = servers
        .iter()
        .take_while(|s| s.engine == Engine::MariaDb)
        .map(|s| s.url.clone())
        .collect();
    Ok(Some(Stack {
        etcd: etcd.clone(),
        kafka: kafka.clone(),
        mysql,
        servers,
        revdoor_user: vars
            .get("REVDOOR_MYSQL_USER")
            .cloned()
            .unwrap_or_else(|| "revdoor".into()),
        revdoor_password: vars
            .get("REVDOOR_MYSQL_PASSWORD")
            .cloned()
            .unwrap_or_else(|| "revdoor-pw".into()),
        state_dir: vars
            .get("REVDOOR_STACK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".stack")),
    }))
}

/// The stack every test of this run uses (started on first use).
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| match start_or_reuse_stack() {
        Ok(s) => s,
        Err(e) => panic!("the test stack is not available: {e:#}"),
    })
}

fn start_or_reuse_stack() -> anyhow::Result<Stack> {
    let env: HashMap<String, String> = std::env::vars().collect();
    if let Some(s) = stack_from(&env)? {
        return Ok(s);
    }
    let script = repo_root().join("deploy/stack");
    let status = Command::new(&script)
        .args(["up", "--mariadb", "5", "--mysql", "2"])
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("run {}", script.display()))?;
    if !status.success() {
        bail!(
            "deploy/stack up failed ({status}); its output above names the failing service's log"
        );
    }
    let out = Command::new(&script)
        .arg("env")
        .output()
        .context("deploy/stack env")?;
    let vars = parse_env_lines(&String::from_utf8_lossy(&out.stdout));
    stack_from(&vars)?.context("deploy/stack env printed no REVDOOR_ETCD/KAFKA/MYSQL_1")
}

/// Per-test names and helpers.
pub struct TestCtx {
    pub stack: &'static Stack,
    /// Unique id, `[a-z0-9_]`.
    pub id: String,
    /// Database name for this test (same name on every server).
    pub db: String,
    /// Workflow name; topics are `revdoor.<workflow>.…`.
    pub workflow: String,
    /// etcd prefix for this test, ending in `/`.
    pub etcd_prefix: String,
    pub logs: PathBuf,
}

impl TestCtx {
    /// A fresh context; `name` should be the test's name.
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() % 100_000_000)
            .unwrap_or(0);
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(20)
            .collect();
        let id = format!("{clean}_{}_{stamp}_{n}", std::process::id());
        let logs = repo_root().join("target/test-logs").join(&id);
        let _ = std::fs::create_dir_all(&logs);
        TestCtx {
            stack: stack(),
            db: format!("t_{id}"),
            workflow: format!("w_{id}"),
            etcd_prefix: format!("/test/{id}/"),
            id,
            logs,
        }
    }

    /// Admin connection options for server `i` (1-based, `REVDOOR_MYSQL_i`).
    pub fn admin_opts(&self, i: usize) -> Opts {
        let server = i
            .checked_sub(1)
            .and_then(|k| self.stack.servers.get(k))
            .unwrap_or_else(|| {
                panic!(
                    "no server REVDOOR_MYSQL_{i}: the stack has {}",
                    self.stack.servers.len()
                )
            });
        Opts::from_url(&server.url).unwrap_or_else(|e| panic!("REVDOOR_MYSQL_{i}: {e}"))
    }

    /// URL of server `i` for revdoor's own account.
    /// `url` as a shard is registered: its password moved into a file of
    /// this test (owner-only) that the URL names with `?password_file=`
    /// (etcd stores no password; `keyspace add` refuses one in a URL).
    pub fn shard_url(&self, url: &str) -> String {
        use revdoor_mysql::conn::{Dsn, Password};
        use revdoor_mysql::secret::PasswordRef;
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dsn = Dsn::parse(url).unwrap_or_else(|e| panic!("shard URL: {e}"));
        let Some(Password::Inline(pw)) = dsn.password() else {
            return url.to_string();
        };
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = self
            .logs
            .join(format!("password-{}-{n}", std::process::id()));
        revdoor_mysql::secret::write_password_file(&path, pw)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let r = PasswordRef::file(&path).unwrap_or_else(|e| panic!("{e}"));
        dsn.with_ref(r).to_string()
    }

    /// [`TestCtx::revdoor_url`] as a shard is registered
    /// ([`TestCtx::shard_url`]).
    pub fn revdoor_shard_url(&self, i: usize) -> String {
        self.shard_url(&self.revdoor_url(i))
    }

    pub fn revdoor_url(&self, i: usize) -> String {
        let o = self.admin_opts(i);
        format!(
            "mysql://{}:{}@{}:{}",
            self.stack.revdoor_user,
            self.stack.revdoor_password,
            o.ip_or_hostname(),
            o.tcp_port()
        )
    }

    /// A connection to server `i` as revdoor's account holding the fence
    /// pass of this test's workflow on `side` (`source` or `target`), as
    /// apply does: it writes through that side's fence.
    pub async fn through_fence(&self, i: usize, side: &str) -> Conn {
        let url = self.revdoor_url(i);
        let mut c = Conn::new(Opts::from_url(&url).expect("revdoor URL"))
            .await
            .unwrap_or_else(|e| panic!("connect to server #{i} as revdoor: {e}"));
        c.exec_drop(
            "SET @revdoor_fence_pass = (SELECT pass FROM _revdoor.fences WHERE workflow = ? AND side = ?)",
            (&self.workflow, side),
        )
        .await
        .unwrap_or_else(|e| panic!("server #{i}: pass the {side}'s fence: {e}"));
        c
    }

    /// An admin connection to server `i` (1-based).
    pub async fn conn(&self, i: usize) -> Conn {
        let opts: Opts = OptsBuilder::from_opts(self.admin_opts(i)).into();
        Conn::new(opts)
            .await
            .unwrap_or_else(|e| panic!("connect to server #{i}: {e}"))
    }

    /// Run statements on server `i`.
    pub async fn sql(&self, i: usize, stmts: &[&str]) {
        let mut c = self.conn(i).await;
        for s in stmts {
            c.query_drop(*s)
                .await
                .unwrap_or_else(|e| panic!("server #{i}: {s}: {e}"));
        }
    }

    /// Create this test's database on servers `servers`.
    pub async fn create_db(&self, servers: &[usize]) {
        for &i in servers {
            self.sql(
                i,
                &[
                    &format!("DROP DATABASE IF EXISTS {}", self.db),
                    &format!("CREATE DATABASE {}", self.db),
                ],
            )
            .await;
        }
    }

    /// All rows of `table` on server `i`, as text (non-UTF-8 bytes as `0x…`),
    /// ordered by the first column.
    pub async fn rows(&self, i: usize, table: &str) -> Vec<Vec<Option<String>>> {
        let mut c = self.conn(i).await;
        let rows: Vec<mysql_async::Row> = c
            .query(format!("SELECT * FROM {}.{table} ORDER BY 1", self.db))
            .await
            .unwrap_or_else(|e| panic!("read {table} on #{i}: {e}"));
        rows.into_iter()
            .map(|r| {
                (0..r.len())
                    .map(|k| match r.as_ref(k) {
                        Some(mysql_async::Value::NULL) | None => None,
                        // Text protocol: values arrive as bytes; binary ones hex-encoded.
                        Some(mysql_async::Value::Bytes(b)) => Some(match std::str::from_utf8(b) {
                            Ok(s) => s.to_string(),
                            Err(_) => format!(
                                "0x{}",
                                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                            ),
                        }),
                        Some(v) => Some(v.as_sql(true)),
                    })
                    .collect()
            })
            .collect()
    }

    /// Arguments of `revdoor capture run` for this test's workflow: the
    /// source URL, `db.table[,db.table]` and the start position.
    pub fn capture_args(&self, source: &str, tables: &str, start: &str) -> Vec<String> {
        let w = &self.workflow;
        let a = [
            "capture",
            "run",
            "--workflow",
            w,
            "--source",
            source,
            "--tables",
            tables,
            "--start-position",
            start,
        ];
        a.iter().map(|s| s.to_string()).collect()
    }

    /// Arguments of `revdoor apply run` for this test's workflow.
    pub fn apply_args(&self, target: &str) -> Vec<String> {
        [
            "apply",
            "run",
            "--workflow",
            &self.workflow,
            "--target",
            target,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Start `revdoor <args>` with output in `<target>/test-logs/<id>/<name>.log`.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Revdoor {
        self.spawn_env(name, args, &[])
    }

    /// [`TestCtx::spawn`] with extra environment (e.g. `FAILPOINTS`).
    pub fn spawn_env(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Revdoor {
        let mut cmd = Command::new(revdoor_bin());
        cmd.env("REVDOOR_KAFKA", &self.stack.kafka)
            .env("REVDOOR_ETCD", &self.stack.etcd)
            .env("REVDOOR_ETCD_PREFIX", &self.etcd_prefix);
        self.spawn_logged(name, cmd, args, env)
    }

    /// `revdoor <args>` in the background with `env` and none of the
    /// stack's `REVDOOR_*` variables (kafka, etcd, prefix): what a config
    /// file alone gives it.
    pub fn spawn_bare(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Revdoor {
        let mut cmd = Command::new(revdoor_bin());
        cmd.env_remove("REVDOOR_KAFKA")
            .env_remove("REVDOOR_ETCD")
            .env_remove("REVDOOR_ETCD_PREFIX");
        self.spawn_logged(name, cmd, args, env)
    }

    /// `cmd <args>` in the background, its output in `<name>.log`.
    fn spawn_logged(
        &self,
        name: &str,
        mut cmd: Command,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Revdoor {
        let log = self.logs.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("dup log file: {e}"));
        let child = cmd
            .args(args)
            .env(
                "REVDOOR_LOG",
                std::env::var("REVDOOR_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn revdoor {args:?}: {e}"));
        Revdoor {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// `revdoor <args>` to its end with `env` and none of the stack's
    /// `REVDOOR_*` variables, like [`TestCtx::spawn_bare`].
    pub fn run_bare(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new(revdoor_bin())
            .args(args)
            .env_remove("REVDOOR_KAFKA")
            .env_remove("REVDOOR_ETCD")
            .env_remove("REVDOOR_ETCD_PREFIX")
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("run revdoor {args:?}: {e}"))
    }

    /// Run a one-shot `revdoor <args>` command to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(revdoor_bin())
            .args(args)
            .env("REVDOOR_KAFKA", &self.stack.kafka)
            .env("REVDOOR_ETCD", &self.stack.etcd)
            .env("REVDOOR_ETCD_PREFIX", &self.etcd_prefix)
            .output()
            .unwrap_or_else(|e| panic!("run revdoor {args:?}: {e}"))
    }

    /// An etcd client.
    pub async fn etcd(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.stack.etcd.as_str()], None)
            .await
            .unwrap_or_else(|e| panic!("connect to etcd {}: {e}", self.stack.etcd))
    }
}

/// The `revdoor` binary: `REVDOOR_BIN`, else `target/debug/revdoor`, built
/// once per test binary if needed, with the `failpoints` feature (crash
/// tests set failpoints through `FAILPOINTS`).
pub fn revdoor_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("REVDOOR_BIN") {
            return PathBuf::from(p);
        }
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--quiet",
                "--bin",
                "revdoor",
                "--features",
                "failpoints",
            ])
            .current_dir(repo_root())
            .status()
            .unwrap_or_else(|e| panic!("cargo build --bin revdoor: {e}"));
        assert!(status.success(), "cargo build --bin revdoor failed");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join("target"));
        // Copied aside so that a later build without failpoints cannot replace it.
        let dir = target.join("test-bin");
        let _ = std::fs::create_dir_all(&dir);
        let bin = dir.join(format!("revdoor-{}", std::process::id()));
        std::fs::copy(target.join("debug/revdoor"), &bin)
            .unwrap_or_else(|e| panic!("copy revdoor binary: {e}"));
        bin
    })
    .clone()
}

/// A running `revdoor` process.
pub struct Revdoor {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Revdoor {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send a signal by name (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }

    /// SIGTERM and wait up to `timeout` for a clean exit; returns the exit code.
    pub fn stop(&mut self, timeout: Duration) -> Option<i32> {
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        None
    }

    /// Whether the process has exited (and its code).
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().ok().flatten().map(|s| s.code())
    }

    /// Wait up to `timeout` for the process to exit and return its exit
    /// code (`None` if killed by a signal); panic with its log if it does not.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(code) = self.exited() {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panic if the log has an ERROR line not matching one of `allowed`.
    pub fn assert_no_unexpected_errors(&self, allowed: &[&str]) {
        let text = self.log_text();
        let bad: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" ERROR ") || l.contains("\"level\":\"ERROR\""))
            .filter(|l| !allowed.iter().any(|a| l.contains(a)))
            .collect();
        assert!(
            bad.is_empty(),
            "{} logged unexpected errors ({}):\n{}",
            self.name,
            self.log.display(),
            bad.join("\n")
        );
    }
}

impl Drop for Revdoor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// `&[String]` as `Vec<&str>`, for [`TestCtx::spawn`].
pub fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The server's current GTID position: MariaDB `@@gtid_binlog_pos`, MySQL
/// `@@gtid_executed`.
pub async fn gtid_pos(conn: &mut Conn) -> String {
    let version: String = conn
        .query_first("SELECT @@version")
        .await
        .expect("read version")
        .unwrap_or_default();
    let var = if version.to_ascii_lowercase().contains("mariadb") {
        "gtid_binlog_pos"
    } else {
        "gtid_executed"
    };
    conn.query_first(format!("SELECT @@global.{var}"))
        .await
        .unwrap_or_else(|e| panic!("read {var}: {e}"))
        .unwrap_or_default()
}

/// Every committed message of one partition, read from the beginning with a
/// `read_committed` consumer until the end: `(offset, key, payload)`.
pub async fn read_partition(
    brokers: &str,
    topic: &str,
    partition: i32,
) -> anyhow::Result<Vec<(i64, Vec<u8>, Vec<u8>)>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "revdoor-test-reader")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, Offset::Beginning)?;
        c.assign(&tpl)?;
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            match c.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => out.push((
                    m.offset(),
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                )),
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return Ok(out),
                Some(Err(e)) => bail!("consume {topic}/{partition}: {e}"),
                None => {}
            }
        }
        bail!(
            "no end of {topic}/{partition} within 120s ({} messages so far)",
            out.len()
        )
    })
    .await?
}

/// The change events of one partition, decoded with the schemas published
/// in `revdoor.schemas` (heartbeat records are skipped): `(offset, event)`.
pub async fn read_changes(
    brokers: &str,
    topic: &str,
    partition: i32,
) -> anyhow::Result<Vec<(i64, revdoor_core::event::ChangeEvent)>> {
    use revdoor_core::avro::{single_object_fingerprint, EventCodec};
    use revdoor_core::registry::{SchemaRecord, SCHEMAS_TOPIC};
    let msgs = read_partition(brokers, topic, partition).await?;
    let mut codecs: HashMap<u64, EventCodec> = HashMap::new();
    for (_, _, payload) in read_partition(brokers, SCHEMAS_TOPIC, 0).await? {
        let rec: SchemaRecord = serde_json::from_slice(&payload)?;
        let codec = EventCodec::new(rec.table)?;
        codecs.insert(codec.envelope().fingerprint(), codec);
    }
    let mut out = Vec::with_capacity(msgs.len());
    for (offset, _, payload) in msgs {
        if payload.first() == Some(&b'{') {
            continue; // heartbeat
        }
        let fp = single_object_fingerprint(&payload)?;
        let codec = codecs
            .get(&fp)
            .with_context(|| format!("{topic}@{offset}: unknown schema {fp:016x}"))?;
        out.push((offset, codec.decode_event(&payload)?));
    }
    Ok(out)
}

/// A small deterministic PRNG (xorshift64*) for chaos schedules; print the
/// seed so a failing schedule can be replayed with `REVDOOR_CHAOS_SEED`.
pub struct Chaos(u64);

impl Chaos {
    pub fn from_env() -> Self {
        let seed = std::env::var("REVDOOR_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("chaos seed: REVDOOR_CHAOS_SEED={seed}");
        Chaos(seed.max(1))
    }

    /// Uniform in `lo..hi` (hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        lo + x.wrapping_mul(0x2545_f491_4f6c_dd1d) % (hi - lo).max(1)
    }
}

/// A size knob from the environment (`REVDOOR_CRASH_TXNS`, …), or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Poll `check` until it returns `Ok(Some(v))` or `deadline` passes.
/// `Ok(None)` means "not yet"; an `Err` stops waiting at once.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_parse() {
        let v = parse_env_lines("export REVDOOR_ETCD='http://127.0.0.1:1'\nexport REVDOOR_KAFKA='k:2'\nexport REVDOOR_MYSQL_1='mysql://a:b@h:3'\nnoise\n");
        let s = stack_from(&v).expect("valid").expect("complete");
        assert_eq!(s.etcd, "http://127.0.0.1:1");
        assert_eq!(s.mysql, vec!["mysql://a:b@h:3".to_string()]);
        assert_eq!(s.mariadb_servers(), vec![1]);
        assert!(s.mysql_servers().is_empty());
        assert!(stack_from(&parse_env_lines("export REVDOOR_ETCD='x'"))
            .expect("valid")
            .is_none());
    }

    #[test]
    fn servers_are_found_by_engine_and_mysql_holds_only_mariadb() {
        let v = parse_env_lines(
            "export REVDOOR_ETCD='e'\nexport REVDOOR_KAFKA='k'\n\
             export REVDOOR_MYSQL_1='mysql://a:b@h:1'\nexport REVDOOR_ENGINE_1=mariadb\n\
             export REVDOOR_MYSQL_2='mysql://a:b@h:2'\nexport REVDOOR_ENGINE_2=mariadb\n\
             export REVDOOR_MYSQL_3='mysql://a:b@h:3'\nexport REVDOOR_ENGINE_3=mysql\n\
             export REVDOOR_MYSQL_4='mysql://a:b@h:4'\nexport REVDOOR_ENGINE_4=mysql\n",
        );
        let s = stack_from(&v).expect("valid").expect("complete");
        assert_eq!(s.mariadb_servers(), vec![1, 2]);
        assert_eq!(s.mysql_servers(), vec![3, 4]);
        assert_eq!(s.mysql.len(), 2, "the MariaDB servers only");
        assert_eq!(s.servers[2].url, "mysql://a:b@h:3");
        let bad = parse_env_lines(
            "export REVDOOR_ETCD='e'\nexport REVDOOR_KAFKA='k'\n\
             export REVDOOR_MYSQL_1='mysql://a:b@h:1'\nexport REVDOOR_ENGINE_1=postgres\n",
        );
        assert!(stack_from(&bad).is_err(), "an unknown engine is refused");
    }
}
