//! Capture benchmark (issue 3), run by `bench/capture`; not part of the test
//! suite (`#[ignore]`): speed is measured and printed here, never asserted.
//!
//! On the real stack, with `REVDOOR_BIN` (a release build), up to four runs,
//! each in its own database and workflow on MariaDB #1 (database and topics
//! dropped afterwards):
//!
//! 1. **stream**: `REVDOOR_BENCH_ROWS` (default 1,000,000) rows of ≈ 100
//!    bytes inserted in 500-row transactions; then `revdoor capture run`
//!    from the GTID position taken before the inserts streams that backlog
//!    into Kafka. Capture rows/s = row changes / (process start → the
//!    offsets topic holds a committed checkpoint that includes the end
//!    GTID). Beside it, over the same binlog range, one after the other:
//!    * the *decode limit*: a bare `mysql_async` binlog reader in this
//!      process (same session set-up as capture: `@mariadb_slave_capability
//!      =4`, `@slave_connect_state`, COM_BINLOG_DUMP) that decodes every row
//!      of every rows event and touches each value, nothing else;
//!    * the *transfer limit*: `mariadb-binlog --read-from-remote-server
//!      --start-position=<file pos> --stop-position=<file pos> <files> >
//!      /dev/null`.
//! 2. **mixed stream**: `REVDOOR_BENCH_STREAM_ROWS` (default 0 = skipped)
//!    row changes: cycles of 6 insert, 3 update and 1 delete transactions
//!    of 500 rows each (an update of one row = one row change, its
//!    before+after images counted once). Same figures as 1.
//! 3. **copy**: a table of `REVDOOR_BENCH_COPY_ROWS` (default 1,000,000)
//!    rows exists before capture starts with `--copy`; copy rows/s = rows /
//!    (process start → a committed checkpoint whose copy state is done).
//! 4. **one big transaction** (`REVDOOR_BENCH_BIG_TXN_ROWS`, default 0 =
//!    skipped; run after 1): that many rows inserted by one statement,
//!    captured as in 1 (capture holds a source transaction whole until its
//!    commit).
//!
//! For each capture run: its peak RSS (`VmHWM` right before it is stopped),
//! its CPU time and that of MariaDB #1 and Kafka over the run, the whole
//! machine's busy cores (`/proc/stat`) and the load average. With
//! `REVDOOR_BENCH_PERF=<dir>`, `perf record --call-graph dwarf` samples
//! each capture run into that directory, from 1.5 s after its start (the
//! timings of such a run are perturbed by the profiler).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, TableMapEvent};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, Value};
use revdoor_core::gtid::{MariadbGtid, MariadbGtidList};
use revdoor_tests::{args, env_num, gtid_pos, Revdoor, TestCtx};
use serde_json::json;

const BATCH: u64 = 500;
/// MariaDB's own GTID event (not decoded by mysql_common).
const MARIADB_GTID_EVENT: u8 = 0xA2;

// ---------------------------------------------------------------- /proc

fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// utime + stime of a process (`"self"` or a pid), in seconds.
fn cpu_secs(pid: &str) -> f64 {
    let stat = read_proc(&format!("/proc/{pid}/stat"));
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    (tick(11) + tick(12)) as f64 / 100.0
}

fn vm_hwm_kb(pid: u32) -> u64 {
    vm_kb(pid, "VmHWM:")
}

fn vm_kb(pid: u32, field: &str) -> u64 {
    read_proc(&format!("/proc/{pid}/status"))
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn loadavg() -> String {
    read_proc("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// (busy, total) jiffies of all CPUs.
fn machine_jiffies() -> (u64, u64) {
    let stat = read_proc("/proc/stat");
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// PID of a stack service (`mariadb-1`, `kafka`) from `deploy/stack`'s state.
fn stack_pid(name: &str) -> Option<String> {
    let dir = std::env::var("REVDOOR_STACK_DIR").unwrap_or_else(|_| {
        revdoor_tests::repo_root()
            .join(".stack")
            .display()
            .to_string()
    });
    let pid = read_proc(&format!("{dir}/{name}/pid")).trim().to_string();
    (!pid.is_empty()).then_some(pid)
}

/// CPU seconds of the processes that matter, and the machine's busy time.
struct CpuMark {
    at: Instant,
    machine: (u64, u64),
    mariadb: f64,
    kafka: f64,
    this: f64,
}

impl CpuMark {
    fn now() -> Self {
        CpuMark {
            at: Instant::now(),
            machine: machine_jiffies(),
            mariadb: stack_pid("mariadb-1").map_or(0.0, |p| cpu_secs(&p)),
            kafka: stack_pid("kafka").map_or(0.0, |p| cpu_secs(&p)),
            this: cpu_secs("self"),
        }
    }

    /// CPU used since `self`, as a JSON object (seconds, and cores = s/s).
    fn since(&self, capture_cpu: f64) -> serde_json::Value {
        let now = CpuMark::now();
        let wall = now.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let (b0, t0) = self.machine;
        let (b1, t1) = now.machine;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
        let busy = (b1 - b0) as f64 / (t1 - t0).max(1) as f64 * cores;
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "wall_s": r2(wall),
            "capture_cpu_s": r2(capture_cpu),
            "capture_cores": r2(capture_cpu / wall),
            "mariadb1_cores": r2((now.mariadb - self.mariadb) / wall),
            "kafka_cores": r2((now.kafka - self.kafka) / wall),
            "bench_process_cores": r2((now.this - self.this) / wall),
            "machine_busy_cores": r2(busy),
        })
    }
}

// ---------------------------------------------------------------- source

async fn master_status(c: &mut Conn) -> (String, u64) {
    let row: mysql_async::Row = c
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("SHOW MASTER STATUS")
        .expect("binary logging is on");
    let file: String = row.get(0).expect("file");
    let pos: u64 = row.get(1).expect("position");
    (file, pos)
}

/// The binlog files from `first` to `last`, in order.
async fn binlog_files(c: &mut Conn, first: &str, last: &str) -> Vec<String> {
    let rows: Vec<mysql_async::Row> = c.query("SHOW BINARY LOGS").await.expect("SHOW BINARY LOGS");
    let names: Vec<String> = rows.into_iter().filter_map(|r| r.get(0)).collect();
    let from = names
        .iter()
        .position(|n| n == first)
        .expect("start binlog listed");
    let to = names
        .iter()
        .position(|n| n == last)
        .expect("end binlog listed");
    names[from..=to].to_vec()
}

/// Where a workload sits in the binlog.
#[derive(Debug, Clone)]
struct Range {
    start_gtid: String,
    end_gtid: String,
    start: (String, u64),
    end: (String, u64),
}

fn row_sql(db: &str, table: &str, from: u64, to: u64) -> String {
    format!(
        "INSERT INTO {db}.{table} (id, a, b, c, d) SELECT seq, seq * 7, \
         CONCAT('name-', LPAD(seq, 8, '0'), '-padding-to-make-the-row-about-100-bytes'), \
         seq % 1000 + 0.5, seq FROM mysql.seq_{from}_to_{to}"
    )
}

fn ddl(db: &str, table: &str) -> String {
    format!(
        "CREATE TABLE {db}.{table} (id BIGINT PRIMARY KEY, a BIGINT NOT NULL, \
         b VARCHAR(64) NOT NULL, c DOUBLE NOT NULL, d BIGINT NOT NULL)"
    )
}

/// `rows` rows inserted in 500-row transactions.
async fn insert_workload(c: &mut Conn, db: &str, table: &str, rows: u64) {
    let mut from = 1;
    while from <= rows {
        let to = (from + BATCH - 1).min(rows);
        c.query_drop(row_sql(db, table, from, to))
            .await
            .expect("insert");
        from = to + 1;
    }
}

/// `changes` row changes: cycles of 6 insert, 3 update, 1 delete
/// transactions of 500 rows each. Returns (inserts, updates, deletes).
async fn mixed_workload(c: &mut Conn, db: &str, table: &str, changes: u64) -> (u64, u64, u64) {
    let (mut ins, mut upd, mut del) = (0, 0, 0);
    let mut next = 1u64; // next id to insert
    let mut low = 1u64; // lowest live id
    let mut done = 0u64;
    'outer: loop {
        for step in 0..10 {
            if done + BATCH > changes {
                break 'outer;
            }
            match step {
                0..=5 => {
                    c.query_drop(row_sql(db, table, next, next + BATCH - 1))
                        .await
                        .expect("insert");
                    next += BATCH;
                    ins += BATCH;
                }
                6..=8 => {
                    // Rows just above the ones the next delete removes; all
                    // live (ids are contiguous from `low`).
                    let from = low + BATCH * (step - 5);
                    c.query_drop(format!(
                        "UPDATE {db}.{table} SET a = a + 1, d = d + 1 WHERE id BETWEEN {from} AND {}",
                        from + BATCH - 1
                    ))
                    .await
                    .expect("update");
                    upd += BATCH;
                }
                _ => {
                    c.query_drop(format!(
                        "DELETE FROM {db}.{table} WHERE id BETWEEN {low} AND {}",
                        low + BATCH - 1
                    ))
                    .await
                    .expect("delete");
                    low += BATCH;
                    del += BATCH;
                }
            }
            done += BATCH;
        }
    }
    (ins, upd, del)
}

// ---------------------------------------------------------------- Kafka

/// A checkpoint seen in the offsets topic, when it was seen.
#[derive(Debug, Clone)]
struct SeenCheckpoint {
    at: Instant,
    position: String,
    copy_done: bool,
    copy_rows: u64,
}

/// Tails `revdoor.<workflow>.offsets` with a `read_committed` consumer and
/// records every committed checkpoint of the forward stream of shard `-`.
struct Tailer {
    seen: Arc<Mutex<Vec<SeenCheckpoint>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tailer {
    fn start(brokers: &str, workflow: &str) -> Self {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let topic = format!("revdoor.{workflow}.offsets");
        let brokers = brokers.to_string();
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", "revdoor-bench-tail")
                .set("isolation.level", "read_committed")
                .set("enable.auto.commit", "false")
                .set("fetch.wait.max.ms", "5")
                .set("allow.auto.create.topics", "false")
                .create()
                .expect("tail consumer");
            // Wait until capture created the topic (never create it here).
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let ok = c
                    .fetch_metadata(Some(&topic), Duration::from_secs(2))
                    .ok()
                    .is_some_and(|m| {
                        m.topics().iter().any(|t| {
                            t.name() == topic && t.error().is_none() && !t.partitions().is_empty()
                        })
                    });
                if ok {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Beginning)
                .expect("tpl");
            c.assign(&tpl).expect("assign");
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(Ok(m)) = c.poll(Duration::from_millis(50)) else {
                    continue;
                };
                if m.key() != Some(b"forward.-".as_slice()) {
                    continue;
                }
                let at = Instant::now();
                let text = String::from_utf8_lossy(m.payload().unwrap_or_default());
                let v: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|_| json!({ "position": text }));
                let tables = v["copy"]["tables"].as_object();
                let cp = SeenCheckpoint {
                    at,
                    position: v["position"].as_str().unwrap_or_default().to_string(),
                    copy_done: tables.is_some_and(|t| t.values().all(|t| t["done"] == json!(true))),
                    copy_rows: tables
                        .map_or(0, |t| t.values().filter_map(|t| t["rows"].as_u64()).sum()),
                };
                seen2.lock().expect("lock").push(cp);
            }
        });
        Tailer {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn find(&self, f: impl Fn(&SeenCheckpoint) -> bool) -> Option<SeenCheckpoint> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .find(|c| f(c))
            .cloned()
    }

    fn first(&self) -> Option<SeenCheckpoint> {
        self.seen.lock().expect("lock").first().cloned()
    }

    fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn high_watermark(brokers: &str, topic: &str) -> i64 {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .ok()?;
        c.fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .ok()
            .map(|(_, h)| h)
    })
    .await
    .ok()
    .flatten()
    .unwrap_or(-1)
}

async fn delete_topics(brokers: &str, workflow: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let Ok(admin) = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create::<AdminClient<DefaultClientContext>>()
    else {
        return;
    };
    let names = [
        format!("revdoor.{workflow}.forward"),
        format!("revdoor.{workflow}.offsets"),
    ];
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _ = admin.delete_topics(&refs, &AdminOptions::new()).await;
}

// ---------------------------------------------------------------- limits

/// The decode limit: a bare binlog reader from `range.start_gtid` to
/// `range.end_gtid` that decodes every row and touches each value.
async fn decode_limit(ctx: &TestCtx, range: &Range, db: &str) -> serde_json::Value {
    let mut conn = ctx.conn(1).await;
    for stmt in [
        "SET @mariadb_slave_capability=4".to_string(),
        format!("SET @slave_connect_state='{}'", range.start_gtid),
        "SET @slave_gtid_strict_mode=1".to_string(),
    ] {
        conn.query_drop(&stmt).await.expect("binlog session");
    }
    let end: MariadbGtidList = range.end_gtid.parse().expect("end gtid");
    let mut pos: MariadbGtidList = range.start_gtid.parse().expect("start gtid");
    let server_id = 0x2bd0_0000 | (std::process::id() & 0xffff);
    let cpu0 = cpu_secs("self");
    let t = Instant::now();
    let mut stream = conn
        .get_binlog_stream(BinlogStreamRequest::new(server_id))
        .await
        .expect("binlog stream");
    let mut maps: std::collections::HashMap<u64, TableMapEvent<'static>> = Default::default();
    let (mut rows_all, mut rows_ours, mut events, mut bytes, mut txns) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut touched = 0u64;
    let mut pending: Option<MariadbGtid> = None;
    let mut standalone = false;
    let touch = |row: BinlogRow, acc: &mut u64| {
        for v in row.unwrap() {
            *acc = acc.wrapping_add(match v {
                BinlogValue::Value(Value::Bytes(b)) => b.len() as u64,
                BinlogValue::Value(Value::Int(i)) => i as u64,
                BinlogValue::Value(Value::UInt(u)) => u,
                BinlogValue::Value(Value::Double(d)) => d.to_bits(),
                BinlogValue::Value(Value::Float(f)) => u64::from(f.to_bits()),
                BinlogValue::Value(Value::NULL) => 1,
                BinlogValue::Value(Value::Date(y, ..)) => u64::from(y),
                BinlogValue::Value(Value::Time(_, d, ..)) => u64::from(d),
                BinlogValue::Jsonb(_) | BinlogValue::JsonDiff(_) => 2,
            });
        }
    };
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(120), stream.next())
            .await
            .expect("decode limit: binlog stalled before the end GTID")
            .expect("binlog stream ended")
            .expect("binlog event");
        events += 1;
        let h = ev.header();
        bytes += u64::from(h.event_size());
        if h.event_type_raw() == MARIADB_GTID_EVENT {
            let b = ev.data();
            let seq = u64::from_le_bytes(b[0..8].try_into().expect("seq"));
            let domain = u32::from_le_bytes(b[8..12].try_into().expect("domain"));
            standalone = b[12] & 1 != 0;
            pending = Some(MariadbGtid {
                domain,
                server: h.server_id(),
                seq,
            });
            continue;
        }
        let commit = match ev.read_data().expect("decode event") {
            Some(EventData::TableMapEvent(tme)) => {
                maps.insert(tme.table_id(), tme.into_owned());
                false
            }
            Some(EventData::RowsEvent(re)) => {
                let tme = maps.get(&re.table_id()).expect("table map");
                let ours = tme.database_name() == db;
                for pair in re.rows(tme) {
                    let (before, after) = pair.expect("decode row");
                    for r in [before, after].into_iter().flatten() {
                        touch(r, &mut touched);
                    }
                    rows_all += 1;
                    if ours {
                        rows_ours += 1;
                    }
                }
                false
            }
            Some(EventData::XidEvent(_)) => true,
            Some(EventData::QueryEvent(q)) => {
                q.query().eq_ignore_ascii_case("COMMIT") || standalone
            }
            _ => false,
        };
        if commit {
            standalone = false;
            if let Some(g) = pending.take() {
                txns += 1;
                pos.update(g);
                if pos.includes(&end) {
                    break;
                }
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs("self") - cpu0;
    drop(stream);
    json!({
        "secs": (secs * 1000.0).round() / 1000.0,
        "rows_decoded": rows_all,
        "workload_rows_decoded": rows_ours,
        "transactions": txns,
        "events": events,
        "mb": bytes / 1_000_000,
        "rows_per_s": (rows_all as f64 / secs).round(),
        "mb_per_s": (bytes as f64 / 1e6 / secs * 10.0).round() / 10.0,
        "cpu_s": (cpu * 100.0).round() / 100.0,
        "cores": (cpu / secs * 100.0).round() / 100.0,
        "checksum": touched,
    })
}

/// The transfer limit: `mariadb-binlog --read-from-remote-server` over the
/// same range, output to /dev/null.
async fn transfer_limit(ctx: &TestCtx, range: &Range, rows: u64) -> serde_json::Value {
    let mut c = ctx.conn(1).await;
    let files = binlog_files(&mut c, &range.start.0, &range.end.0).await;
    let o = ctx.admin_opts(1);
    let cmd = format!(
        "TIMEFORMAT='%U %S'; time mariadb-binlog --no-defaults --read-from-remote-server \
         --host={} --port={} --user={} --password={} --start-position={} --stop-position={} {} > /dev/null",
        o.ip_or_hostname(),
        o.tcp_port(),
        o.user().unwrap_or("admin"),
        o.pass().unwrap_or(""),
        range.start.1,
        range.end.1,
        files.join(" ")
    );
    // Bytes of the range: whole files between, partial first and last.
    let rows_logs: Vec<mysql_async::Row> = c.query("SHOW BINARY LOGS").await.expect("logs");
    let sizes: std::collections::HashMap<String, u64> = rows_logs
        .into_iter()
        .filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?)))
        .collect();
    let mut bytes = 0u64;
    for (i, f) in files.iter().enumerate() {
        let lo = if i == 0 { range.start.1 } else { 0 };
        let hi = if i + 1 == files.len() {
            range.end.1
        } else {
            sizes.get(f).copied().unwrap_or(0)
        };
        bytes += hi.saturating_sub(lo);
    }
    let t = Instant::now();
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&cmd)
        .output()
        .await
        .expect("run mariadb-binlog");
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    let cpu: f64 = last
        .split_whitespace()
        .filter_map(|x| x.parse::<f64>().ok())
        .sum();
    if !out.status.success() || err.lines().count() > 1 {
        eprintln!("mariadb-binlog: {}\n{err}", out.status);
    }
    json!({
        "secs": (secs * 1000.0).round() / 1000.0,
        "files": files.len(),
        "mb": bytes / 1_000_000,
        "workload_rows_per_s": (rows as f64 / secs).round(),
        "mb_per_s": (bytes as f64 / 1e6 / secs * 10.0).round() / 10.0,
        "cpu_s": cpu,
    })
}

// ---------------------------------------------------------------- capture

/// Optional `perf record -g` of a process, stopped with SIGINT.
struct Perf(Option<std::process::Child>);

impl Perf {
    fn start(pid: u32, name: &str) -> Self {
        let Ok(dir) = std::env::var("REVDOOR_BENCH_PERF") else {
            return Perf(None);
        };
        let _ = std::fs::create_dir_all(&dir);
        // Attach once capture's threads exist (rdkafka's are started with
        // its producer; threads created while perf attaches are missed).
        std::thread::sleep(Duration::from_millis(1500));
        let out = format!("{dir}/{name}.perf.data");
        Perf(
            std::process::Command::new("perf")
                .args([
                    "record",
                    "-F",
                    "299",
                    "--call-graph",
                    "dwarf,16384",
                    "-o",
                    &out,
                    "-p",
                    &pid.to_string(),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(
                    std::fs::File::create(format!("{dir}/{name}.perf.log"))
                        .map_or_else(|_| std::process::Stdio::null(), Into::into),
                )
                .spawn()
                .ok(),
        )
    }

    fn stop(mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let st = c.wait();
            eprintln!("perf record: {st:?}");
        }
    }
}

/// Wait for a checkpoint matching `done`, watching the capture process.
async fn wait_checkpoint(
    capture: &mut Revdoor,
    tail: &Tailer,
    what: &str,
    done: impl Fn(&SeenCheckpoint) -> bool,
) -> (SeenCheckpoint, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(3600);
    let t0 = Instant::now();
    // VmRSS every second: does memory plateau or grow with the backlog?
    let mut rss: Vec<(u64, u64)> = Vec::new();
    loop {
        if let Some(cp) = tail.find(&done) {
            // At most ~30 points.
            let step = rss.len().div_ceil(30).max(1);
            let series: Vec<serde_json::Value> = rss
                .iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i + 1 == rss.len())
                .map(|(_, (t, mb))| json!([t, mb]))
                .collect();
            return (cp, json!(series));
        }
        assert!(
            capture.exited().is_none(),
            "capture exited before {what}:\n{}",
            capture.log_text()
        );
        assert!(Instant::now() < deadline, "capture did not reach {what}");
        let secs = t0.elapsed().as_secs();
        if rss.last().is_none_or(|(t, _)| *t < secs) {
            rss.push((secs, vm_kb(capture.pid(), "VmRSS:") / 1024));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn seq_sum(list: &str) -> u64 {
    list.parse::<MariadbGtidList>()
        .map(|l| l.iter().map(|g| g.seq).sum())
        .unwrap_or(0)
}

/// One stream run: capture the backlog of `range`, then the two limits.
async fn stream_run(
    ctx: &TestCtx,
    table: &str,
    range: &Range,
    rows: u64,
    name: &str,
) -> serde_json::Value {
    let db = &ctx.db;
    let end: MariadbGtidList = range.end_gtid.parse().expect("end gtid");
    let load = loadavg();
    let tail = Tailer::start(&ctx.stack.kafka, &ctx.workflow);
    let mark = CpuMark::now();
    let t0 = Instant::now();
    let mut capture = ctx.spawn(
        &format!("capture-{name}"),
        &args(&ctx.capture_args(
            &ctx.revdoor_url(1),
            &format!("{db}.{table}"),
            &range.start_gtid,
        )),
    );
    let pid = capture.pid();
    let perf = Perf::start(pid, &format!("capture-{name}"));
    let (reached, rss_series) = wait_checkpoint(&mut capture, &tail, "the end GTID", |c| {
        c.position
            .parse::<MariadbGtidList>()
            .is_ok_and(|p| p.includes(&end))
    })
    .await;
    let secs = reached.at.duration_since(t0).as_secs_f64();
    let capture_cpu = cpu_secs(&pid.to_string());
    let rss_kb = vm_hwm_kb(pid);
    let cpu = mark.since(capture_cpu);
    perf.stop();
    let first = tail.first().expect("a checkpoint");
    let checkpoints = tail.count();
    drop(tail);
    capture.stop(Duration::from_secs(30));
    let errors: Vec<String> = capture
        .log_text()
        .lines()
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
        .map(str::to_string)
        .collect();
    // Steady-state rate: after the first Kafka commit (transactions of
    // the backlog are all 500 rows; other writers would blur this).
    let first_txns = seq_sum(&first.position).saturating_sub(seq_sum(&range.start_gtid));
    let all_txns = seq_sum(&range.end_gtid).saturating_sub(seq_sum(&range.start_gtid));
    let after_first = rows.saturating_sub(first_txns * BATCH).min(rows);
    let steady = after_first as f64 / reached.at.duration_since(first.at).as_secs_f64().max(1e-9);
    let hw = high_watermark(
        &ctx.stack.kafka,
        &format!("revdoor.{}.forward", ctx.workflow),
    )
    .await;
    let capture_rate = rows as f64 / secs;
    eprintln!("{name}: capture {rows} rows in {secs:.2}s; decode limit…");
    let dec = decode_limit(ctx, range, db).await;
    eprintln!("{name}: decode limit {dec}; transfer limit…");
    let xfer = transfer_limit(ctx, range, rows).await;
    let dec_rate = dec["rows_per_s"].as_f64().unwrap_or(0.0);
    json!({
        "row_changes": rows,
        "source_transactions": all_txns,
        "load_before": load,
        "capture_secs": (secs * 1000.0).round() / 1000.0,
        "capture_rows_per_s": capture_rate.round(),
        "capture_first_commit_after_s": (first.at.duration_since(t0).as_secs_f64() * 1000.0).round() / 1000.0,
        // Only meaningful for a backlog of many 500-row transactions.
        "capture_rows_per_s_after_first_commit": if all_txns >= 20 { json!(steady.round()) } else { serde_json::Value::Null },
        "capture_kafka_commits_seen": checkpoints,
        "capture_peak_rss_mb": rss_kb / 1024,
        "capture_rss_mb_by_second": rss_series,
        "topic_high_watermark": hw,
        "cpu": cpu,
        "capture_log_warnings": errors.len(),
        "capture_log_first_warnings": errors.into_iter().take(5).collect::<Vec<_>>(),
        "decode_limit": dec,
        "capture_vs_decode_limit": if dec_rate > 0.0 { (capture_rate / dec_rate * 100.0).round() / 100.0 } else { 0.0 },
        "transfer_limit": xfer,
        "load_after": loadavg(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with bench/capture"]
async fn capture_throughput_limits_and_memory() {
    let rows = env_num("REVDOOR_BENCH_ROWS", 1_000_000);
    let stream_rows = env_num("REVDOOR_BENCH_STREAM_ROWS", 0);
    let copy_rows = env_num("REVDOOR_BENCH_COPY_ROWS", 1_000_000);
    let big_txn_rows = env_num("REVDOOR_BENCH_BIG_TXN_ROWS", 0);
    let started = std::time::SystemTime::now();
    let mut result = json!({
        "rows": rows,
        "stream_rows": stream_rows,
        "copy_rows": copy_rows,
        "big_txn_rows": big_txn_rows,
        "build": std::env::var("REVDOOR_BENCH_BUILD").unwrap_or_default(),
        "load_at_start": loadavg(),
    });
    let save = |result: &serde_json::Value| {
        if let Ok(out) = std::env::var("REVDOOR_BENCH_OUT") {
            std::fs::write(out, serde_json::to_string_pretty(result).expect("json"))
                .expect("write result");
        }
    };

    // 1. Insert stream.
    if rows > 0 {
        let ctx = TestCtx::new("bench_capture");
        ctx.create_db(&[1]).await;
        ctx.sql(1, &[&ddl(&ctx.db, "t")]).await;
        let mut src = ctx.conn(1).await;
        let start_gtid = gtid_pos(&mut src).await;
        let start = master_status(&mut src).await;
        let t = Instant::now();
        insert_workload(&mut src, &ctx.db, "t", rows).await;
        let load_secs = t.elapsed().as_secs_f64();
        let range = Range {
            start_gtid,
            end_gtid: gtid_pos(&mut src).await,
            start,
            end: master_status(&mut src).await,
        };
        eprintln!("stream: {rows} rows inserted in {load_secs:.1}s; {range:?}");
        let mut r = stream_run(&ctx, "t", &range, rows, "stream").await;
        r["source_load_rows_per_s"] = json!((rows as f64 / load_secs).round());
        println!("BENCH stream {r}");
        result["stream"] = r;
        save(&result);
        src.query_drop(format!("DROP DATABASE {}", ctx.db))
            .await
            .expect("drop");
        delete_topics(&ctx.stack.kafka, &ctx.workflow).await;
    }

    // 4. One big source transaction (capture holds a transaction whole
    // until its commit).
    if big_txn_rows > 0 {
        let ctx = TestCtx::new("bench_capture_big");
        ctx.create_db(&[1]).await;
        ctx.sql(1, &[&ddl(&ctx.db, "b")]).await;
        let mut src = ctx.conn(1).await;
        let start_gtid = gtid_pos(&mut src).await;
        let start = master_status(&mut src).await;
        let t = Instant::now();
        src.query_drop(row_sql(&ctx.db, "b", 1, big_txn_rows))
            .await
            .expect("big insert");
        let load_secs = t.elapsed().as_secs_f64();
        let range = Range {
            start_gtid,
            end_gtid: gtid_pos(&mut src).await,
            start,
            end: master_status(&mut src).await,
        };
        eprintln!("big txn: {big_txn_rows} rows in one transaction in {load_secs:.1}s; {range:?}");
        let r = stream_run(&ctx, "b", &range, big_txn_rows, "bigtxn").await;
        println!("BENCH bigtxn {r}");
        result["big_transaction"] = r;
        save(&result);
        src.query_drop(format!("DROP DATABASE {}", ctx.db))
            .await
            .expect("drop");
        delete_topics(&ctx.stack.kafka, &ctx.workflow).await;
    }

    // 2. Mixed stream (inserts, updates, deletes).
    if stream_rows > 0 {
        let ctx = TestCtx::new("bench_capture_mix");
        ctx.create_db(&[1]).await;
        ctx.sql(1, &[&ddl(&ctx.db, "m")]).await;
        let mut src = ctx.conn(1).await;
        let start_gtid = gtid_pos(&mut src).await;
        let start = master_status(&mut src).await;
        let t = Instant::now();
        let (ins, upd, del) = mixed_workload(&mut src, &ctx.db, "m", stream_rows).await;
        let load_secs = t.elapsed().as_secs_f64();
        let changes = ins + upd + del;
        let range = Range {
            start_gtid,
            end_gtid: gtid_pos(&mut src).await,
            start,
            end: master_status(&mut src).await,
        };
        eprintln!(
            "mixed: {changes} row changes ({ins} inserts, {upd} updates, {del} deletes) in {load_secs:.1}s; {range:?}"
        );
        let mut r = stream_run(&ctx, "m", &range, changes, "mixed").await;
        r["inserts"] = json!(ins);
        r["updates"] = json!(upd);
        r["deletes"] = json!(del);
        r["source_load_rows_per_s"] = json!((changes as f64 / load_secs).round());
        println!("BENCH mixed {r}");
        result["mixed_stream"] = r;
        save(&result);
        src.query_drop(format!("DROP DATABASE {}", ctx.db))
            .await
            .expect("drop");
        delete_topics(&ctx.stack.kafka, &ctx.workflow).await;
    }

    // 3. Copy.
    if copy_rows > 0 {
        let ctx = TestCtx::new("bench_capture_copy");
        let db = ctx.db.clone();
        ctx.create_db(&[1]).await;
        ctx.sql(1, &[&ddl(&db, "c")]).await;
        let mut src = ctx.conn(1).await;
        let mut from = 1;
        while from <= copy_rows {
            let to = (from + 99_999).min(copy_rows);
            src.query_drop(row_sql(&db, "c", from, to))
                .await
                .expect("load");
            from = to + 1;
        }
        let load = loadavg();
        let tail = Tailer::start(&ctx.stack.kafka, &ctx.workflow);
        let mark = CpuMark::now();
        let t0 = Instant::now();
        let cap_args = [
            "capture",
            "run",
            "--workflow",
            &ctx.workflow,
            "--source",
            &ctx.revdoor_url(1),
            "--tables",
            &format!("{db}.c"),
            "--copy",
        ]
        .map(|s| s.to_string());
        let mut capture = ctx.spawn("capture-copy", &args(&cap_args));
        let pid = capture.pid();
        let perf = Perf::start(pid, "capture-copy");
        let (done, rss_series) =
            wait_checkpoint(&mut capture, &tail, "copy done", |c| c.copy_done).await;
        let secs = done.at.duration_since(t0).as_secs_f64();
        let capture_cpu = cpu_secs(&pid.to_string());
        let rss_kb = vm_hwm_kb(pid);
        let cpu = mark.since(capture_cpu);
        perf.stop();
        let first = tail.first().expect("a checkpoint");
        let commits = tail.count();
        drop(tail);
        capture.stop(Duration::from_secs(30));
        let hw = high_watermark(
            &ctx.stack.kafka,
            &format!("revdoor.{}.forward", ctx.workflow),
        )
        .await;
        let r = json!({
            "rows": copy_rows,
            "rows_reported_by_capture": done.copy_rows,
            "load_before": load,
            "copy_secs": (secs * 1000.0).round() / 1000.0,
            "copy_rows_per_s": (copy_rows as f64 / secs).round(),
            "first_commit_after_s": (first.at.duration_since(t0).as_secs_f64() * 1000.0).round() / 1000.0,
            "kafka_commits_seen": commits,
            "capture_peak_rss_mb": rss_kb / 1024,
            "capture_rss_mb_by_second": rss_series,
            "topic_high_watermark": hw,
            "cpu": cpu,
            "load_after": loadavg(),
        });
        println!("BENCH copy {r}");
        result["copy"] = r;
        src.query_drop(format!("DROP DATABASE {db}"))
            .await
            .expect("drop");
        delete_topics(&ctx.stack.kafka, &ctx.workflow).await;
    }
    result["wall_s"] = json!(started.elapsed().map_or(0, |d| d.as_secs()));
    save(&result);
    // One line with the headline figures (the whole record is in the file).
    let pick = |r: &serde_json::Value| {
        if r.is_null() {
            return serde_json::Value::Null;
        }
        json!({
            "row_changes": r["row_changes"],
            "capture_rows_per_s": r["capture_rows_per_s"],
            "decode_limit_rows_per_s": r["decode_limit"]["rows_per_s"],
            "capture_vs_decode_limit": r["capture_vs_decode_limit"],
            "transfer_limit_rows_per_s": r["transfer_limit"]["workload_rows_per_s"],
            "transfer_limit_mb_per_s": r["transfer_limit"]["mb_per_s"],
            "capture_peak_rss_mb": r["capture_peak_rss_mb"],
            "load_before": r["load_before"],
        })
    };
    let summary = json!({
        "build": result["build"],
        "stream": pick(&result["stream"]),
        "mixed_stream": pick(&result["mixed_stream"]),
        "big_transaction": pick(&result["big_transaction"]),
        "copy": if result["copy"].is_null() { serde_json::Value::Null } else { json!({
            "rows": result["copy"]["rows"],
            "copy_rows_per_s": result["copy"]["copy_rows_per_s"],
            "capture_peak_rss_mb": result["copy"]["capture_peak_rss_mb"],
            "load_before": result["copy"]["load_before"],
        }) },
    });
    println!("BENCH summary {summary}");
}
