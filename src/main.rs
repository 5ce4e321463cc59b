//! `revdoor` — one binary for operators: wiring and CLI only.

mod config;
mod demo;
mod load;
mod metrics;
mod ops;
mod vdiff;

use std::collections::HashMap;
use std::time::Duration;
use tracing::Instrument;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use revdoor_apply::ApplyStream;
use revdoor_capture::publish::DEFAULT_MAX_MESSAGE_BYTES;
use revdoor_capture::route::Router;
use revdoor_core::fence::FenceToken;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::names::{self, Direction, EtcdPrefix, WorkflowName};
use revdoor_worker::config::{mysql_opts, parse_tables, CaptureSettings, DEFAULT_COPY_CHUNK_ROWS};
use revdoor_worker::{ownership, RunError, Stream, StreamRun};
use tokio_util::sync::CancellationToken;

/// Move MySQL/MariaDB tables between databases with no downtime and no
/// one-way door.
#[derive(Parser)]
#[command(name = "revdoor", version, about)]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "REVDOOR_KAFKA",
        default_value = "127.0.0.1:29092"
    )]
    kafka: String,
    /// etcd endpoint(s), comma-separated.
    #[arg(
        long,
        global = true,
        env = "REVDOOR_ETCD",
        default_value = "http://127.0.0.1:23791"
    )]
    etcd: String,
    /// Root of revdoor's keys in etcd.
    #[arg(
        long,
        global = true,
        env = "REVDOOR_ETCD_PREFIX",
        default_value = "/revdoor/"
    )]
    etcd_prefix: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    /// Config file (TOML) with a value for any flag: global flags at the
    /// top, a command's flags in its table (`[worker.run]`); flags and
    /// environment variables win over it (deploy/revdoor.example.toml).
    #[arg(long, global = true, env = "REVDOOR_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one capture stream (binlog → Kafka) in the foreground.
    Capture {
        #[command(subcommand)]
        cmd: CaptureCmd,
    },
    /// Run one apply stream (Kafka → database) in the foreground.
    Apply {
        #[command(subcommand)]
        cmd: ApplyCmd,
    },
    /// Operate on one stream.
    Stream {
        #[command(subcommand)]
        cmd: StreamCmd,
    },
    /// The README's main job: a migration switched back and forth under load on the local stack.
    Demo(demo::DemoArgs),
    /// Register and show keyspaces (their shards).
    Keyspace {
        #[command(subcommand)]
        cmd: ops::KeyspaceCmd,
    },
    /// Create, follow, switch, reverse, complete or cancel a workflow.
    Workflow {
        #[command(subcommand)]
        cmd: ops::WorkflowCmd,
    },
    /// Compare a workflow's source and target at one consistent point.
    Vdiff {
        #[command(subcommand)]
        cmd: vdiff::VdiffCmd,
    },
    /// Where tables are served.
    Routing {
        #[command(subcommand)]
        cmd: ops::RoutingCmd,
    },
    /// The leader-elected coordinator.
    Coordinator {
        #[command(subcommand)]
        cmd: DaemonCmd,
    },
    /// A worker that runs the streams the coordinator assigns.
    Worker {
        #[command(subcommand)]
        cmd: WorkerCmd,
    },
    /// Workloads for demos, tests and benchmarks.
    #[command(hide = true)]
    Load {
        #[command(subcommand)]
        cmd: LoadCmd,
    },
    /// A MySQL-protocol proxy that routes statements by the routing rules.
    Proxy {
        #[command(subcommand)]
        cmd: ProxyCmd,
    },
}

#[derive(Subcommand)]
enum ProxyCmd {
    /// Serve MySQL clients in the foreground until SIGTERM.
    Run {
        /// Address to listen on (HOST:PORT).
        #[arg(long)]
        listen: String,
        /// The keyspace the clients address: tables no workflow moved out of
        /// it are served by it.
        #[arg(long)]
        keyspace: String,
        /// `user:password` lines: the accounts clients log in with, which
        /// the proxy also uses on the backends.
        #[arg(long, env = "REVDOOR_PROXY_ACCOUNTS_FILE")]
        accounts_file: std::path::PathBuf,
        /// How long a statement that met a switch's fence is held for
        /// routing to flip before the client gets the fence error.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        buffer_window: Duration,
    },
}

#[derive(Subcommand)]
enum WorkerCmd {
    /// Run in the foreground until SIGTERM.
    Run {
        /// Unique name (default: host-pid).
        #[arg(long)]
        id: Option<String>,
        /// Lease TTL: others take over this long after this process stops.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        lease_ttl: Duration,
        /// Connections each apply stream writes through (write-set-parallel
        /// apply; 1 = one connection, docs/streams.md).
        #[arg(long, default_value_t = DEFAULT_APPLY_PARALLELISM)]
        apply_parallelism: usize,
        /// The largest message (row event) capture streams send to Kafka,
        /// in bytes; raise it with the topic's `max.message.bytes` to carry
        /// a bigger row (docs/streams.md).
        #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
        max_message_bytes: u32,
        /// Serve Prometheus metrics at `http://HOST:PORT/metrics`
        /// (docs/operations.md "Metrics").
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
}

/// K of write-set-parallel apply unless told otherwise.
const DEFAULT_APPLY_PARALLELISM: usize = 4;

#[derive(Subcommand)]
enum DaemonCmd {
    /// Run in the foreground until SIGTERM.
    Run {
        /// Unique name (default: host-pid).
        #[arg(long)]
        id: Option<String>,
        /// Lease TTL: others take over this long after this process stops.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        lease_ttl: Duration,
        /// Serve Prometheus metrics at `http://HOST:PORT/metrics`
        /// (docs/operations.md "Metrics").
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
}

#[derive(Subcommand)]
enum LoadCmd {
    /// The bank workload (or its prober) following routing.
    Bank(load::BankArgs),
}

#[derive(Subcommand)]
enum CaptureCmd {
    /// Stream a shard's binlog into `revdoor.<workflow>.<direction>`.
    Run(CaptureArgs),
}

#[derive(Subcommand)]
enum ApplyCmd {
    /// Apply one partition of `revdoor.<workflow>.<direction>`.
    Run(ApplyArgs),
}

#[derive(Subcommand)]
enum StreamCmd {
    /// Skip exactly one message of a halted apply stream (poison message,
    /// change the destination cannot take). The skip is recorded in the
    /// destination's `_revdoor.stream_skips` and logged when apply passes it.
    Skip {
        #[arg(long)]
        workflow: WorkflowName,
        #[arg(long, default_value = "forward")]
        direction: Direction,
        #[arg(long)]
        partition: i32,
        /// Kafka offset of the message to skip.
        #[arg(long)]
        offset: i64,
        /// Destination server URL of the stream's apply.
        #[arg(long)]
        target: String,
        /// Why (kept with the skip).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Args, Clone)]
struct CaptureArgs {
    /// Workflow name (topic `revdoor.<workflow>.<direction>`).
    #[arg(long)]
    workflow: WorkflowName,
    /// `forward` or `reverse`.
    #[arg(long, default_value = "forward")]
    direction: Direction,
    /// Origin shard (key range), e.g. `-` or `-80`, written as the
    /// coordinator writes it (lower-case hex, no trailing zero bytes).
    #[arg(long, default_value = "-", allow_hyphen_values = true, value_parser = origin_shard)]
    shard: KeyRange,
    /// Source server URL, `mysql://user:password@host:port`.
    #[arg(long)]
    source: String,
    /// Tables to capture, `db.table,db.table`.
    #[arg(long, value_delimiter = ',', required = true)]
    tables: Vec<String>,
    /// Partition of the stream in the topic.
    #[arg(long, default_value_t = 0)]
    partition: i32,
    /// Destination shards: `--route <key range>=<partition>`, once per shard
    /// (e.g. `--route -80=0 --route 80-=1`); each row change goes to the
    /// partition of the shard holding its keyspace id. Without it,
    /// everything goes to `--partition`.
    #[arg(
        long = "route",
        value_name = "RANGE=PARTITION",
        allow_hyphen_values = true
    )]
    routes: Vec<String>,
    /// Sharding key of a table when it is not the primary key:
    /// `db.table=col[+col…]`.
    #[arg(long = "sharding-key", value_name = "DB.TABLE=COLS")]
    sharding_keys: Vec<String>,
    /// Partitions the topic gets if it is created.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// GTID position to start from when no checkpoint exists (default: now).
    #[arg(long)]
    start_position: Option<revdoor_core::gtid::StoredPosition>,
    /// Copy the tables' existing rows first (DBLog watermarks, no locks),
    /// unless the stream already has a checkpoint.
    #[arg(long)]
    copy: bool,
    /// Rows per copy chunk.
    #[arg(long, default_value_t = DEFAULT_COPY_CHUNK_ROWS)]
    copy_chunk_rows: usize,
    /// The largest message (row event) sent to Kafka, in bytes; raise it
    /// with the topic's `max.message.bytes` to carry a bigger row.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: u32,
    /// What a DDL on a captured table does: `stop` (halt before it),
    /// `ignore` (reload the table's definition and go on) or `exec` (as
    /// ignore, and every destination's apply runs it too).
    #[arg(long, default_value = "stop")]
    on_ddl: revdoor_capture::ddl::OnDdl,
    /// Replica server id to register with (must differ from real servers and
    /// from other captures of the same server); default: derived from the
    /// stream's transactional id.
    #[arg(long)]
    server_id: Option<u32>,
}

#[derive(Args, Clone)]
struct ApplyArgs {
    #[arg(long)]
    workflow: WorkflowName,
    /// `forward` or `reverse`.
    #[arg(long, default_value = "forward")]
    direction: Direction,
    #[arg(long, default_value_t = 0)]
    partition: i32,
    /// Destination server URL, `mysql://user:password@host:port`.
    #[arg(long)]
    target: String,
    /// Fencing token of this owner when it does not `--own` the stream.
    #[arg(long, default_value = "1", value_parser = fence_token)]
    fence_token: FenceToken,
    /// Own the stream through an etcd lease: wait for the ownership key,
    /// use its revision as the fence token, stop when the lease is lost.
    #[arg(long)]
    own: bool,
    /// etcd endpoint (with `--own`).
    #[arg(long, env = "REVDOOR_ETCD", default_value = "http://127.0.0.1:23791")]
    etcd: String,
    /// Root of revdoor's keys in etcd (a String like the global flag of
    /// the same id, which clap shares with it).
    #[arg(long, default_value = "/revdoor/")]
    etcd_prefix: String,
    /// Lease TTL of the ownership key.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// Connections writing at once (write-set-parallel apply).
    #[arg(long, default_value_t = DEFAULT_APPLY_PARALLELISM)]
    parallelism: usize,
}

/// `--shard`: a key range in the form the coordinator writes it, so that
/// the stream's transactional id and checkpoint key are the ones it uses.
fn origin_shard(text: &str) -> Result<KeyRange, String> {
    let range: KeyRange = text.parse().map_err(|e| format!("{e}"))?;
    if range.to_string() != text {
        return Err(format!("write the key range as {range}"));
    }
    Ok(range)
}

/// `--fence-token`: a positive number.
fn fence_token(text: &str) -> Result<FenceToken, String> {
    text.parse::<i64>()
        .ok()
        .and_then(FenceToken::from_revision)
        .ok_or_else(|| format!("'{text}' is not a positive number"))
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("REVDOOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Cancel on SIGINT or SIGTERM so streams drain before exit.
fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(
        async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!("cannot install SIGTERM handler: {e}");
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            tracing::info!("shutting down");
            t.cancel();
        }
        .instrument(tracing::info_span!("signals")),
    );
    token
}

/// A URL with its password replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    revdoor_mysql::conn::redact(url)
}

fn router(a: &CaptureArgs) -> anyhow::Result<Router> {
    if a.routes.is_empty() {
        return Ok(Router::single(a.partition));
    }
    let mut routes = Vec::new();
    for r in &a.routes {
        let (range, part) = r
            .split_once('=')
            .with_context(|| format!("--route '{r}' must be RANGE=PARTITION"))?;
        let range: KeyRange = range
            .parse()
            .map_err(|e| anyhow::anyhow!("--route '{r}': {e}"))?;
        let part: i32 = part
            .parse()
            .with_context(|| format!("--route '{r}': partition must be a number"))?;
        anyhow::ensure!(
            part >= 0 && part < a.partitions,
            "--route '{r}': partition outside 0..{}",
            a.partitions
        );
        routes.push((range, part));
    }
    let mut keys = HashMap::new();
    for k in &a.sharding_keys {
        let (table, cols) = k
            .split_once('=')
            .with_context(|| format!("--sharding-key '{k}' must be db.table=col[+col]"))?;
        let (db, t) = parse_tables(&[table.to_string()])?
            .into_iter()
            .next()
            .context("table")?;
        keys.insert((db, t), cols.split('+').map(str::to_string).collect());
    }
    Ok(Router::by_range(routes, keys)?)
}

/// The capture stream the flags describe.
fn capture_settings(kafka: &str, a: &CaptureArgs) -> anyhow::Result<CaptureSettings> {
    Ok(CaptureSettings {
        brokers: kafka.to_string(),
        workflow: a.workflow.clone(),
        direction: a.direction,
        shard: a.shard,
        source: a.source.clone(),
        tables: a.tables.clone(),
        router: router(a)?,
        partitions: a.partitions,
        start_position: a.start_position.clone(),
        on_ddl: a.on_ddl,
        copy: a.copy,
        copy_chunk_rows: a.copy_chunk_rows,
        max_message_bytes: a.max_message_bytes,
        server_id: a.server_id,
        progress: Default::default(),
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Capture {
            cmd: CaptureCmd::Run(a),
        } => {
            let cfg = capture_settings(&cli.kafka, &a)?.config()?;
            let cancel = shutdown_token();
            let name = cfg.id.transactional_id();
            let run = StreamRun {
                name: name.clone(),
                stream: Stream::Capture(Box::new(cfg)),
                owner: None,
                cancel,
            };
            match run.run().await {
                Err(e @ RunError::Open { .. }) => Err(e.into()),
                r => r.with_context(|| format!("capture stream {name}")),
            }
        }
        Command::Apply {
            cmd: ApplyCmd::Run(a),
        } => {
            let stream = ApplyStream {
                brokers: cli.kafka.clone(),
                workflow: a.workflow.clone(),
                direction: a.direction,
                partition: a.partition,
                target: mysql_opts(&a.target)?,
                fence_token: a.fence_token,
                progress: Default::default(),
                parallelism: a.parallelism.max(1),
                metrics: revdoor_apply::ApplyMetrics::new(&a.workflow, a.direction, a.partition),
            };
            let cancel = shutdown_token();
            let name = stream.name();
            let owner = if a.own {
                let key = EtcdPrefix::new(a.etcd_prefix.as_str())
                    .map_err(|e| anyhow::anyhow!("--etcd-prefix: {e}"))?
                    .apply_owner(&a.workflow, a.direction, a.partition);
                Some(ownership::wait(&a.etcd, &key, a.lease_ttl, &name).await?)
            } else {
                None
            };
            let run = StreamRun {
                name: name.clone(),
                stream: Stream::Apply(stream),
                owner,
                cancel,
            };
            match run.run().await {
                Err(RunError::LeaseLost { .. }) => anyhow::bail!(
                    "apply stream {name}: fenced: lost the ownership lease; a newer owner may apply now"
                ),
                r => r.with_context(|| format!("apply stream {name}")),
            }
        }
        Command::Stream {
            cmd:
                StreamCmd::Skip {
                    workflow,
                    direction,
                    partition,
                    offset,
                    target,
                    reason,
                },
        } => {
            let stream = names::topic_partition(&workflow, direction, partition);
            revdoor_apply::register_skip(
                &mysql_opts(&target)?,
                &workflow,
                direction,
                partition,
                offset,
                &reason,
            )
            .await
            .with_context(|| format!("skip offset {offset} of {stream}"))?;
            tracing::warn!(
                workflow = workflow.as_str(),
                direction = direction.as_str(),
                partition,
                offset,
                reason,
                "skip registered"
            );
            println!("skip registered: {stream}@{offset}; restart its apply");
            Ok(())
        }
        Command::Demo(args) => {
            metrics::serve(args.metrics_addr)?;
            Box::pin(demo::run(&cli.kafka, &cli.etcd, args)).await
        }
        Command::Keyspace { cmd } => {
            ops::keyspace(&registry(&cli.etcd, &cli.etcd_prefix).await?, cmd).await
        }
        Command::Workflow { cmd } => {
            ops::workflow(
                &registry(&cli.etcd, &cli.etcd_prefix).await?,
                &cli.kafka,
                cmd,
            )
            .await
        }
        Command::Vdiff { cmd } => {
            let code = Box::pin(vdiff::vdiff(
                &registry(&cli.etcd, &cli.etcd_prefix).await?,
                cmd,
            ))
            .await?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Routing { cmd } => {
            ops::routing(&registry(&cli.etcd, &cli.etcd_prefix).await?, cmd).await
        }
        Command::Coordinator {
            cmd:
                DaemonCmd::Run {
                    id,
                    lease_ttl,
                    metrics_addr,
                },
        } => {
            metrics::serve(metrics_addr)?;
            let reg = registry(&cli.etcd, &cli.etcd_prefix).await?;
            ops::warn_stored_passwords(&reg).await;
            let cfg = revdoor_coordinator::leader::Config {
                id: id.unwrap_or_else(|| default_id("coordinator")),
                lease_ttl,
                brokers: cli.kafka.clone(),
            };
            Box::pin(revdoor_coordinator::leader::run(reg, cfg, shutdown_token())).await?;
            Ok(())
        }
        Command::Worker {
            cmd:
                WorkerCmd::Run {
                    id,
                    lease_ttl,
                    apply_parallelism,
                    max_message_bytes,
                    metrics_addr,
                },
        } => {
            metrics::serve(metrics_addr)?;
            let reg = registry(&cli.etcd, &cli.etcd_prefix).await?;
            let cfg = revdoor_worker::Config {
                id: id.unwrap_or_else(|| default_id("worker")),
                lease_ttl,
                brokers: cli.kafka.clone(),
                apply_parallelism,
                max_message_bytes,
            };
            Box::pin(revdoor_worker::run(reg, cfg, shutdown_token())).await?;
            Ok(())
        }
        Command::Load {
            cmd: LoadCmd::Bank(a),
        } => {
            let reg = registry(&cli.etcd, &cli.etcd_prefix).await?;
            let summary_path = a.summary.clone();
            let s = load::run(reg, a, shutdown_token()).await?;
            let text = serde_json::to_string(&s)?;
            println!("{text}");
            if let Some(p) = summary_path {
                std::fs::write(&p, &text).with_context(|| format!("write {}", p.display()))?;
            }
            Ok(())
        }
        Command::Proxy {
            cmd:
                ProxyCmd::Run {
                    listen,
                    keyspace,
                    accounts_file,
                    buffer_window,
                },
        } => {
            let cfg = revdoor_proxy::Config {
                listen,
                keyspace: keyspace
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--keyspace: {e}"))?,
                accounts: revdoor_proxy::Accounts::read(&accounts_file)?,
                buffer_window,
            };
            let reg = registry(&cli.etcd, &cli.etcd_prefix).await?;
            Box::pin(revdoor_proxy::run(reg, cfg, shutdown_token())).await
        }
    }
}

async fn registry(
    etcd: &str,
    prefix: &str,
) -> anyhow::Result<revdoor_coordinator::registry::Registry> {
    let prefix = revdoor_core::names::EtcdPrefix::new(prefix)
        .map_err(|e| anyhow::anyhow!("--etcd-prefix: {e}"))?;
    Ok(revdoor_coordinator::registry::Registry::connect(etcd, prefix).await?)
}

fn default_id(kind: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{kind}-{}-{}", host.trim(), std::process::id())
}

fn main() {
    // Like any Unix filter: `revdoor … | head` ends quietly on a closed
    // pipe instead of panicking in println!.
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // glibc malloc: keep freed memory instead of returning it to the
    // kernel after every large group (apply decodes thousands of rows per
    // group; trimming and re-faulting zeroed pages cost it ≈ 15 % CPU).
    // SAFETY: mallopt only sets allocator parameters; called before any
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
    let cli: Cli = config::parse();
    init_tracing(cli.log_json);
    if let Some(file) = &cli.config {
        tracing::debug!(config = %file.display(), "config file read");
    }
    // A panic anywhere is a crash: restart must then neither lose nor
    // duplicate (everything is checkpointed transactionally), whereas a
    // task dying silently inside a live process could stall a stream.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("revdoor: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli)) {
        tracing::error!("{e:#}");
        eprintln!("revdoor: {e:#}");
        let code = if e.downcast_ref::<ops::StreamsHalted>().is_some() {
            ops::StreamsHalted::EXIT_CODE
        } else {
            1
        };
        std::process::exit(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("mysql://u:secret@h:1"), "mysql://u:***@h:1");
        assert_eq!(redact("mysql://h:1"), "mysql://h:1");
    }
}
