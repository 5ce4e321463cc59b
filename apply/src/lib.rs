//! Apply: consumes one stream's partition and applies each source
//! transaction to the destination database exactly once (DESIGN §5).
//!
//! Walking skeleton: one partition, one connection, one source transaction
//! per DB transaction, row-by-row statements. The full apply (batching,
//! write-set parallelism, poison handling, `stream skip`) replaces the body
//! of [`ApplyStream::run`] keeping this contract.
//!
//! # Resumption
//!
//! The checkpoint row `_revdoor.stream_state(workflow, direction, partition)`
//! holds the Kafka offset of the last applied event. It is updated in the
//! same DB transaction as the rows, so on start the stream seeks to
//! `kafka_offset + 1` and neither loses nor repeats an effect. Kafka
//! consumer-group offsets are never used.
//!
//! # Fencing
//!
//! The checkpoint update carries the stream owner's fence token and matches
//! only while the stored token is not newer: `… WHERE fence_token <= :mine`.
//! Zero rows matched means a newer owner exists: roll back and stop.

pub mod failpoints;
pub mod schemas;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, TxOpts, Value};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use revdoor_core::avro::single_object_fingerprint;
use revdoor_core::event::{
    ddl_tag, ChangeEvent, ColumnValue, DdlEvent, Heartbeat, Op, Row, DDL_HEADER, HEARTBEAT_HEADER,
};
use revdoor_core::gtid::Position;
use revdoor_core::progress::Progress;
use revdoor_core::registry::SCHEMAS_TOPIC;
use schemas::SchemaCache;
use tokio_util::sync::CancellationToken;

/// Errors of an apply stream, classified by what happens next.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A message or the destination is wrong: the stream halts here.
    #[error("{0}")]
    Definite(String),
    /// Connection, deadlock, broker: retry.
    #[error("{0}")]
    Transient(String),
    /// A newer owner has the stream.
    #[error("fenced by a newer owner: {0}")]
    Fenced(String),
}

impl ApplyError {
    fn transient(what: &str, e: impl std::fmt::Display) -> Self {
        ApplyError::Transient(format!("{what}: {e}"))
    }
    /// Whether retrying could help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApplyError::Transient(_))
    }
}

/// A group of source transactions is committed once no further message
/// arrives within this time…
const GROUP_IDLE: Duration = Duration::from_millis(2);
/// …or when it holds this many source transactions or events.
const GROUP_MAX_TXNS: usize = 200;
const GROUP_MAX_EVENTS: usize = 5000;
/// Every apply connection's session. Values arrive in canonical forms
/// (DESIGN §3): TIMESTAMPs as UTC text, zero dates kept, an explicit 0 in an
/// AUTO_INCREMENT column stays 0. Strict mode refuses anything that would
/// not fit. Strings are the bytes as stored on the source, in the column's
/// own character set: a binary connection stores them unconverted and
/// compares keys byte for byte. READ COMMITTED: an upsert's UPDATE of a key
/// not there yet takes no gap lock, so streams (and parallel connections)
/// applying disjoint keys into one server do not deadlock each other.
const SESSION_SETUP: [&str; 2] = [
    "SET NAMES binary, SESSION time_zone = '+00:00', \
     sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
];
/// How often a holding stream looks whether its hold was released.
const HOLD_POLL: Duration = Duration::from_millis(10);

/// Server errors after which a DDL's effect is already there (duplicate
/// column / key / table, nothing to drop): when a sibling stream of the
/// same destination ran the same statement, this stream's copy is done.
const DDL_ALREADY_DONE: [u16; 6] = [1050, 1051, 1060, 1061, 1091, 1146];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A message of the stream's partition, copied out of librdkafka.
struct RawMsg {
    offset: i64,
    heartbeat: bool,
    ddl: bool,
    payload: Vec<u8>,
}

/// Messages fetched by a thread of their own: a blocking `BaseConsumer`
/// polled in a loop hands them over in chunks. (`StreamConsumer::recv`,
/// one future per message, delivered ≈ 100k messages/s here while the
/// partition could be read at 1.2M/s; the applier waited for it 60 % of
/// the time.)
struct Fetcher {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<RawMsg>, rdkafka::error::KafkaError>>,
    buf: std::collections::VecDeque<RawMsg>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Fetcher {
    fn start(consumer: BaseConsumer) -> Fetcher {
        use rdkafka::message::Headers;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let mut chunk = Vec::new();
                let mut wait = Duration::from_millis(100);
                while chunk.len() < 2_000 {
                    match consumer.poll(wait) {
                        None => break,
                        Some(Err(e)) => {
                            if !chunk.is_empty()
                                && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err()
                            {
                                return;
                            }
                            if tx.blocking_send(Err(e)).is_err() {
                                return;
                            }
                            break;
                        }
                        Some(Ok(m)) => {
                            let header = |key: &str| {
                                m.headers().is_some_and(|h| h.iter().any(|x| x.key == key))
                            };
                            chunk.push(RawMsg {
                                offset: m.offset(),
                                heartbeat: header(HEARTBEAT_HEADER),
                                ddl: header(DDL_HEADER),
                                payload: m.payload().unwrap_or_default().to_vec(),
                            });
                            wait = Duration::ZERO;
                        }
                    }
                }
                if !chunk.is_empty() && tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
        });
        Fetcher {
            rx,
            buf: std::collections::VecDeque::new(),
            stop,
        }
    }

    /// The next message; with `Some(limit)`, `None` if none arrives in time.
    async fn recv_within(
        &mut self,
        limit: Option<Duration>,
    ) -> Option<Result<RawMsg, rdkafka::error::KafkaError>> {
        loop {
            if let Some(m) = self.buf.pop_front() {
                return Some(Ok(m));
            }
            let chunk = match limit {
                None => self.rx.recv().await,
                Some(d) => tokio::time::timeout(d, self.rx.recv()).await.ok()?,
            };
            match chunk {
                Some(Ok(c)) => self.buf.extend(c),
                Some(Err(e)) => return Some(Err(e)),
                // The thread is gone: nothing more will come.
                None => return Some(Err(rdkafka::error::KafkaError::NoMessageReceived)),
            }
        }
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// DDL of revdoor's own schema on every destination.
pub const STREAM_STATE_DDL: [&str; 6] = [
    "CREATE DATABASE IF NOT EXISTS _revdoor",
    "CREATE TABLE IF NOT EXISTS _revdoor.stream_state (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        source_gtid  VARCHAR(4096) NOT NULL DEFAULT '',
        fence_token  BIGINT UNSIGNED NOT NULL DEFAULT 0,
        updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (workflow, direction, `partition`)
    ) ENGINE=InnoDB",
    // Messages an operator chose to skip (`revdoor stream skip`).
    "CREATE TABLE IF NOT EXISTS _revdoor.stream_skips (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        reason       VARCHAR(1024) NOT NULL DEFAULT '',
        created_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // Transactions committed by parallel apply beyond the checkpoint
    // (identified by the offset of their last event); deleted when the
    // checkpoint passes them.
    "CREATE TABLE IF NOT EXISTS _revdoor.applied_txns (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // DDL records run by apply (`on_ddl=exec`): the intent (with a
    // fingerprint of the changed tables before the statement) is committed
    // before the statement runs, the outcome with the checkpoint that
    // passes it — so a restart knows whether it ran (docs/streams.md).
    "CREATE TABLE IF NOT EXISTS _revdoor.ddls (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        gtid         VARCHAR(255) NOT NULL,
        statement    LONGTEXT     NOT NULL,
        fingerprint  VARCHAR(32)  NOT NULL,
        state        VARCHAR(32)  NOT NULL,
        updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // Holds asked for by a vdiff (`revdoor_coordinator::vdiff`): apply
    // nothing outside `hold_gtid` until `until`; `held_gtid` reports that
    // the stream stopped exactly there.
    "CREATE TABLE IF NOT EXISTS _revdoor.holds (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        hold_gtid    VARCHAR(4096) NOT NULL,
        until        DATETIME(6)  NOT NULL,
        held_gtid    VARCHAR(4096) NULL,
        held_at      DATETIME(6)  NULL,
        PRIMARY KEY (workflow, direction, `partition`)
    ) ENGINE=InnoDB",
];

/// Register that the message at `offset` of a stream's partition is to be
/// skipped by its apply (which must not have applied past it). The skip is
/// logged by apply when it passes the message.
pub async fn register_skip(
    target: &Opts,
    workflow: &str,
    direction: &str,
    partition: i32,
    offset: i64,
    reason: &str,
) -> Result<(), ApplyError> {
    let mut conn = Conn::new(target.clone())
        .await
        .map_err(|e| ApplyError::transient("connect to destination", e))?;
    for ddl in STREAM_STATE_DDL {
        conn.query_drop(ddl)
            .await
            .map_err(|e| ApplyError::transient("create _revdoor schema", e))?;
    }
    let applied: Option<i64> = conn
        .exec_first(
            "SELECT kafka_offset FROM _revdoor.stream_state WHERE workflow = ? AND direction = ? AND `partition` = ?",
            (workflow, direction, partition),
        )
        .await
        .map_err(|e| ApplyError::transient("read checkpoint", e))?;
    if let Some(applied) = applied.filter(|a| *a >= offset) {
        return Err(ApplyError::Definite(format!(
            "offset {offset} of revdoor.{workflow}.{direction}/{partition} is already applied \
             (checkpoint at {applied}); nothing to skip"
        )));
    }
    conn.exec_drop(
        "INSERT IGNORE INTO _revdoor.stream_skips (workflow, direction, `partition`, kafka_offset, reason) \
         VALUES (?, ?, ?, ?, ?)",
        (workflow, direction, partition, offset, reason),
    )
    .await
    .map_err(|e| ApplyError::transient("register skip", e))?;
    Ok(())
}

/// One apply stream.
#[derive(Debug, Clone)]
pub struct ApplyStream {
    pub brokers: String,
    pub workflow: String,
    pub direction: String,
    pub partition: i32,
    pub target: Opts,
    /// The owner's fencing token (etcd revision of its ownership key).
    pub fence_token: u64,
    /// Live progress, for status reports.
    pub progress: Arc<Progress>,
    /// Connections applying at once (write-set-parallel apply, K); 1 =
    /// one connection, each group committed with its checkpoint.
    pub parallelism: usize,
}

impl ApplyStream {
    /// The error of a stream whose checkpoint row a newer owner took.
    fn fenced(&self) -> ApplyError {
        ApplyError::Fenced(format!(
            "{}/{}: checkpoint row has a newer fence token than {}",
            self.topic(),
            self.partition,
            self.fence_token
        ))
    }

    fn topic(&self) -> String {
        format!("revdoor.{}.{}", self.workflow, self.direction)
    }

    /// Create `_revdoor.stream_state` and this stream's row, take it over
    /// (fence token); return the offset of the last applied event (-1 if
    /// none) and the transactions parallel apply committed beyond it.
    async fn prepare(&self, conn: &mut Conn) -> Result<(i64, HashSet<i64>), ApplyError> {
        for ddl in STREAM_STATE_DDL {
            conn.query_drop(ddl)
                .await
                .map_err(|e| ApplyError::transient("create _revdoor schema", e))?;
        }
        conn.exec_drop(
            "INSERT IGNORE INTO _revdoor.stream_state (workflow, direction, `partition`, kafka_offset) \
             VALUES (?, ?, ?, -1)",
            (&self.workflow, &self.direction, self.partition),
        )
        .await
        .map_err(|e| ApplyError::transient("create checkpoint row", e))?;
        // Take the stream over: raise the row's fence token to ours. This
        // waits for a previous owner's transaction in flight, and once it
        // commits, that owner's next checkpoint (or parallel transaction)
        // finds a newer token and stops. Only then is the offset read.
        conn.exec_drop(
            "UPDATE _revdoor.stream_state SET fence_token = ? \
             WHERE workflow = ? AND direction = ? AND `partition` = ? AND fence_token <= ?",
            (
                self.fence_token,
                &self.workflow,
                &self.direction,
                self.partition,
                self.fence_token,
            ),
        )
        .await
        .map_err(|e| ApplyError::transient("take over checkpoint", e))?;
        let row: Option<(i64, u64)> = conn
            .exec_first(
                "SELECT kafka_offset, fence_token FROM _revdoor.stream_state \
                 WHERE workflow = ? AND direction = ? AND `partition` = ?",
                (&self.workflow, &self.direction, self.partition),
            )
            .await
            .map_err(|e| ApplyError::transient("read checkpoint", e))?;
        let (offset, token) =
            row.ok_or_else(|| ApplyError::Transient("checkpoint row vanished".into()))?;
        if token > self.fence_token {
            return Err(ApplyError::Fenced(format!(
                "stream {}/{}/{} is owned by token {token}, ours is {}",
                self.workflow, self.direction, self.partition, self.fence_token
            )));
        }
        let done: Vec<i64> = conn
            .exec(
                "SELECT kafka_offset FROM _revdoor.applied_txns \
                 WHERE workflow = ? AND direction = ? AND `partition` = ? AND kafka_offset > ?",
                (&self.workflow, &self.direction, self.partition, offset),
            )
            .await
            .map_err(|e| ApplyError::transient("read applied transactions", e))?;
        Ok((offset, done.into_iter().collect()))
    }

    /// A connection set up for applying (see `prepare`).
    async fn open(&self) -> Result<Conn, ApplyError> {
        // Found rows, not changed rows: an upsert's UPDATE that matches a row
        // whose values are already right must not fall through to INSERT.
        let opts: Opts = mysql_async::OptsBuilder::from_opts(self.target.clone())
            .client_found_rows(true)
            .into();
        let mut conn = Conn::new(opts)
            .await
            .map_err(|e| ApplyError::transient("connect to destination", e))?;
        for stmt in SESSION_SETUP {
            conn.query_drop(stmt)
                .await
                .map_err(|e| ApplyError::transient("set apply session", e))?;
        }
        Ok(conn)
    }

    /// Apply until `cancel` fires or an error stops the stream.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), ApplyError> {
        let mut conn = self.open().await?;
        let (last, done) = self.prepare(&mut conn).await?;
        let skips: Vec<i64> = conn
            .exec(
                "SELECT kafka_offset FROM _revdoor.stream_skips \
                 WHERE workflow = ? AND direction = ? AND `partition` = ? AND kafka_offset > ?",
                (&self.workflow, &self.direction, self.partition, last),
            )
            .await
            .map_err(|e| ApplyError::transient("read skips", e))?;
        let skips: HashSet<i64> = skips.into_iter().collect();
        let topic = self.topic();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set(
                "group.id",
                format!("revdoor.{}.{}.apply", self.workflow, self.direction),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            // Once librdkafka's local queue is past its threshold it
            // postpones the next fetch by this much (default 1,000 ms):
            // apply drained the queue and then stalled ≈ 500 ms every
            // 100k messages.
            .set("fetch.queue.backoff.ms", "5")
            .create()
            .map_err(|e| ApplyError::transient("create Kafka consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, self.partition, Offset::Offset(last + 1))
            .map_err(|e| ApplyError::transient("assign partition", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| ApplyError::transient("assign partition", e))?;
        let connection_id: Option<u64> = conn
            .query_first("SELECT CONNECTION_ID()")
            .await
            .ok()
            .flatten();
        tracing::info!(topic = %topic, partition = self.partition, from = last + 1,
            fence_token = self.fence_token, connection_id = connection_id.unwrap_or(0), "apply starting");

        // Decoding (here) and applying (a task of its own, with the
        // connections) overlap: while the destination works on one group,
        // the next is read and decoded. Groups stay in order.
        let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(2);
        let applier = tokio::spawn(Box::pin({
            let me = self.clone();
            let cancel = cancel.clone();
            async move { me.applier(conn, rx, cancel).await }
        }));
        let mut fetcher = Fetcher::start(consumer);
        let produced = self
            .produce(&mut fetcher, &tx, &skips, &done, &cancel)
            .await;
        drop(tx);
        // What the applier hit first (it applied everything before it);
        // else what stopped the reader.
        let applied = applier
            .await
            .unwrap_or_else(|e| Err(ApplyError::Transient(format!("applier task: {e}"))));
        applied.and(produced)
    }

    /// Apply the batches the reader hands over, in order, until it stops.
    async fn applier(
        &self,
        conn: Conn,
        mut rx: tokio::sync::mpsc::Receiver<Batch>,
        cancel: CancellationToken,
    ) -> Result<(), ApplyError> {
        // conns[0] applies groups and checkpoints; the others join it for
        // parallel groups (opened on first use).
        let mut conns = vec![conn];
        let mut keys = KeyCache::default();
        loop {
            let waited = std::time::Instant::now();
            let batch = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                b = rx.recv() => b,
            };
            let Some(batch) = batch else { return Ok(()) };
            tracing::trace!(
                wait_us = waited.elapsed().as_micros() as u64,
                events = batch.events.len(),
                "group arrived"
            );
            if let Some((offset, ddl)) = &batch.ddl {
                if !self
                    .exec_ddl(&mut conns, &mut keys, *offset, ddl, &cancel)
                    .await?
                {
                    return Ok(());
                }
                continue;
            }
            let hb = batch.heartbeat.as_ref().map(|(o, h)| (*o, h));
            if !self
                .flush(&mut conns, &mut keys, &batch.events, hb, &cancel)
                .await?
            {
                return Ok(());
            }
        }
    }

    /// Read and decode the partition into whole transactions, grouped, and
    /// hand the groups to the applier.
    async fn produce(
        &self,
        fetcher: &mut Fetcher,
        tx: &tokio::sync::mpsc::Sender<Batch>,
        skips: &HashSet<i64>,
        done: &HashSet<i64>,
        cancel: &CancellationToken,
    ) -> Result<(), ApplyError> {
        let mut schemas = SchemaCache::default();
        // Whether the transaction now arriving lost a message to a skip.
        let mut skipped_in_txn = false;
        let topic = self.topic();
        // Events of complete source transactions not yet committed, and of
        // the transaction still arriving.
        let mut group: Vec<(i64, ChangeEvent)> = Vec::new();
        let mut complete = 0usize; // events of `group` that end a whole transaction
        let mut txns_in_group = 0usize;
        loop {
            // Commit the group when nothing more is immediately available,
            // or when it is big enough.
            let wait = if complete > 0 { Some(GROUP_IDLE) } else { None };
            let msg = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                m = fetcher.recv_within(wait) => m,
            };
            let msg = match msg {
                None => {
                    if !hand_over(tx, &mut group, complete, None).await {
                        return Ok(());
                    }
                    complete = 0;
                    txns_in_group = 0;
                    continue;
                }
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consume");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let offset = msg.offset;
            let payload = msg.payload.as_slice();
            if msg.heartbeat {
                if complete == group.len() {
                    // No transaction half-arrived: once the complete ones
                    // are applied we hold everything the source had
                    // committed up to the heartbeat's position; checkpoint
                    // that position (a switch waits for it).
                    if let Ok(hb) = serde_json::from_slice::<Heartbeat>(payload) {
                        let now = now_ms();
                        tracing::debug!(lag_ms = now.saturating_sub(hb.heartbeat_ms), position = %hb.position, "caught up");
                        if !hand_over(tx, &mut group, complete, Some((offset, hb))).await {
                            return Ok(());
                        }
                        complete = 0;
                        txns_in_group = 0;
                    }
                }
                continue;
            }
            if skips.contains(&offset) {
                tracing::warn!(topic = %topic, partition = self.partition, offset,
                    "skipping this message as an operator asked (revdoor stream skip)");
                skipped_in_txn = true;
                continue;
            }
            let poison = |why: String| {
                ApplyError::Definite(format!(
                    "{topic}/{}@{offset}: {why}; the stream halts here — fix the cause, or skip \
                     this message with `revdoor stream skip --offset {offset}`",
                    self.partition
                ))
            };
            if msg.ddl {
                // A DDL (on_ddl=exec) runs on its own, after everything
                // before it is applied.
                if group.len() > complete {
                    return Err(poison("a DDL record inside a source transaction".into()));
                }
                let ddl: DdlEvent = serde_json::from_slice(payload)
                    .map_err(|e| poison(format!("undecodable DDL record: {e}")))?;
                if !hand_over(tx, &mut group, complete, None).await {
                    return Ok(());
                }
                complete = 0;
                txns_in_group = 0;
                let batch = Batch {
                    events: Vec::new(),
                    heartbeat: None,
                    ddl: Some((offset, ddl)),
                };
                if tx.send(batch).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            let fp = single_object_fingerprint(payload)
                .map_err(|e| poison(format!("not an Avro single-object message: {e}")))?;
            let codec = schemas.get(&self.brokers, fp).await?.ok_or_else(|| {
                poison(format!(
                    "unknown schema fingerprint {fp:016x} (not in {SCHEMAS_TOPIC})"
                ))
            })?;
            let ev = codec
                .decode_event(payload)
                .map_err(|e| poison(format!("cannot decode message: {e}")))?;
            if ev.txn.index == 0 && group.len() > complete {
                // A new transaction while the previous one is incomplete: its
                // end was a skipped message. Anything else is broken framing.
                if !skipped_in_txn {
                    return Err(poison(format!(
                        "transaction {} starts before the previous one ended",
                        ev.txn.gtid
                    )));
                }
                complete = group.len();
                txns_in_group += 1;
            }
            if ev.txn.index == 0 {
                skipped_in_txn = false;
            }
            let last_of_txn = ev.txn.last;
            group.push((offset, ev));
            if last_of_txn && done.contains(&offset) {
                // Committed by parallel apply before a restart: drop it.
                group.truncate(complete);
                continue;
            }
            if last_of_txn {
                complete = group.len();
                txns_in_group += 1;
                if txns_in_group >= GROUP_MAX_TXNS || complete >= GROUP_MAX_EVENTS {
                    if !hand_over(tx, &mut group, complete, None).await {
                        return Ok(());
                    }
                    complete = 0;
                    txns_in_group = 0;
                }
            }
        }
    }

    /// The hold a vdiff set on this stream, if any and not expired.
    async fn read_hold(&self, conn: &mut Conn) -> Result<Option<(String, Position)>, ApplyError> {
        let hold: Option<String> = conn
            .exec_first(
                "SELECT hold_gtid FROM _revdoor.holds WHERE workflow = ? AND direction = ? \
                 AND `partition` = ? AND until > NOW(6)",
                (&self.workflow, &self.direction, self.partition),
            )
            .await
            .map_err(|e| ApplyError::transient("read hold", e))?;
        Ok(hold.and_then(|text| match text.parse::<Position>() {
            Ok(p) => Some((text, p)),
            Err(e) => {
                tracing::warn!(hold = %text, error = %e, "ignoring a hold whose position does not parse");
                None
            }
        }))
    }

    /// Report that the stream holds exactly at hold `text` and wait until
    /// the hold is released, changed or expired; false when `cancel` fired.
    async fn wait_at_hold(
        &self,
        conn: &mut Conn,
        text: &str,
        cancel: &CancellationToken,
    ) -> Result<bool, ApplyError> {
        conn.exec_drop(
            "UPDATE _revdoor.holds SET held_gtid = ?, held_at = NOW(6) WHERE workflow = ? \
             AND direction = ? AND `partition` = ? AND hold_gtid = ?",
            (text, &self.workflow, &self.direction, self.partition, text),
        )
        .await
        .map_err(|e| ApplyError::transient("report hold", e))?;
        tracing::info!(topic = %self.topic(), partition = self.partition, hold = %text,
            "holding at a vdiff's consistent point");
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(false),
                _ = tokio::time::sleep(HOLD_POLL) => {}
            }
            if self.read_hold(conn).await?.map(|(t, _)| t).as_deref() != Some(text) {
                break;
            }
        }
        tracing::info!(topic = %self.topic(), partition = self.partition, "hold released");
        Ok(true)
    }

    /// Run a DDL record (`on_ddl=exec`) on the destination, exactly once,
    /// then move the checkpoint past it. A DDL commits implicitly, so it
    /// cannot share a transaction with the checkpoint; instead, under a
    /// named lock of the stream (a zombie holding it is killed):
    /// 1. an intent row with a fingerprint of the changed tables is
    ///    committed, guarded by the fence token;
    /// 2. the statement runs (tagged, so the opposite direction's capture
    ///    does not send it back);
    /// 3. the checkpoint passes it, guarded by the token.
    ///
    /// A restart finds the intent: if the tables' fingerprint differs from
    /// the intent's, the statement ran and is not run again; if not, it
    /// did not run (or changed no definition, e.g. `TRUNCATE`, which is
    /// safe to repeat since nothing after it was applied).
    /// Returns false when `cancel` fired while held by a vdiff.
    async fn exec_ddl(
        &self,
        conns: &mut [Conn],
        keys: &mut KeyCache,
        offset: i64,
        ddl: &DdlEvent,
        cancel: &CancellationToken,
    ) -> Result<bool, ApplyError> {
        if let Some((text, hold)) = self.read_hold(&mut conns[0]).await? {
            if !hold.contains_gtid(&ddl.gtid)
                && !self.wait_at_hold(&mut conns[0], &text, cancel).await?
            {
                return Ok(false);
            }
        }
        let lock = format!(
            "revdoor-ddl-{:016x}",
            xxhash_rust::xxh3::xxh3_64(
                format!("{}/{}/{}", self.workflow, self.direction, self.partition).as_bytes()
            )
        );
        let conn = &mut conns[0];
        loop {
            let got: Option<Option<i64>> = conn
                .exec_first("SELECT GET_LOCK(?, 5)", (&lock,))
                .await
                .map_err(|e| ApplyError::transient("take the stream's DDL lock", e))?;
            if got == Some(Some(1)) {
                break;
            }
            let holder: Option<Option<u64>> = conn
                .exec_first("SELECT IS_USED_LOCK(?)", (&lock,))
                .await
                .map_err(|e| ApplyError::transient("look up the DDL lock", e))?;
            if let Some(Some(id)) = holder {
                tracing::warn!(topic = %self.topic(), partition = self.partition, connection = id,
                    "a previous owner of this stream holds its DDL lock: ending its connection");
                if let Err(e) = conn.query_drop(format!("KILL CONNECTION {id}")).await {
                    tracing::warn!(error = %e, "kill the previous owner's connection");
                }
            }
        }
        let result = self.exec_ddl_locked(conn, keys, offset, ddl).await;
        if let Err(e) = conn.exec_drop("DO RELEASE_LOCK(?)", (&lock,)).await {
            tracing::debug!(error = %e, "release the DDL lock");
        }
        result.map(|()| true)
    }

    async fn exec_ddl_locked(
        &self,
        conn: &mut Conn,
        keys: &mut KeyCache,
        offset: i64,
        ddl: &DdlEvent,
    ) -> Result<(), ApplyError> {
        let at = format!("{}/{}@{offset}", self.topic(), self.partition);
        let key = (&self.workflow, &self.direction, self.partition, offset);
        let now = tables_fingerprint(conn, &ddl.tables).await?;
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| ApplyError::transient("begin", e))?;
        let row: Option<(i64, u64)> = tx
            .exec_first(
                "SELECT kafka_offset, fence_token FROM _revdoor.stream_state \
                 WHERE workflow = ? AND direction = ? AND `partition` = ? FOR UPDATE",
                (&self.workflow, &self.direction, self.partition),
            )
            .await
            .map_err(|e| ApplyError::transient("read checkpoint", e))?;
        let (applied, token) =
            row.ok_or_else(|| ApplyError::Transient("checkpoint row vanished".into()))?;
        if token > self.fence_token {
            let _ = tx.rollback().await;
            return Err(self.fenced());
        }
        if applied >= offset {
            let _ = tx.rollback().await;
            return Ok(());
        }
        let intent: Option<String> = tx
            .exec_first(
                "SELECT fingerprint FROM _revdoor.ddls WHERE workflow = ? AND direction = ? \
                 AND `partition` = ? AND kafka_offset = ?",
                key,
            )
            .await
            .map_err(|e| ApplyError::transient("read DDL intent", e))?;
        let before = match intent {
            Some(fp) => fp,
            None => {
                tx.exec_drop(
                    "INSERT INTO _revdoor.ddls (workflow, direction, `partition`, kafka_offset, \
                     gtid, statement, fingerprint, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'intent')",
                    (
                        &self.workflow,
                        &self.direction,
                        self.partition,
                        offset,
                        &ddl.gtid,
                        &ddl.statement,
                        &now,
                    ),
                )
                .await
                .map_err(|e| ApplyError::transient("record DDL intent", e))?;
                now.clone()
            }
        };
        tx.commit()
            .await
            .map_err(|e| ApplyError::transient("commit DDL intent", e))?;
        fail::fail_point!(failpoints::DDL_BEFORE_EXEC);
        let state = if now != before {
            tracing::info!(at = %at, gtid = %ddl.gtid,
                "DDL already ran before a restart (its tables changed since its intent): not running it again");
            "found done"
        } else {
            if !ddl.default_db.is_empty() {
                conn.query_drop(format!("USE {}", quote_ident(&ddl.default_db)))
                    .await
                    .map_err(|e| classify_mysql(&format!("{at}: USE for DDL"), offset, e))?;
            }
            let sql = format!(
                "{}{}",
                ddl_tag(&self.workflow, &self.direction),
                ddl.statement
            );
            match conn.query_drop(&sql).await {
                Ok(()) => {
                    tracing::info!(at = %at, gtid = %ddl.gtid, statement = %ddl.statement, "ran DDL (on_ddl=exec)");
                    "ran"
                }
                Err(mysql_async::Error::Server(se))
                    if DDL_ALREADY_DONE.contains(&se.code)
                        && self.sibling_ran(conn, &ddl.statement).await? =>
                {
                    tracing::info!(at = %at, gtid = %ddl.gtid, error = %se.message,
                        "DDL already run by another stream into this destination (several origins): done");
                    "done by a sibling stream"
                }
                Err(e) => {
                    return Err(classify_mysql(
                        &format!(
                            "{at}: DDL `{}` (GTID {}) failed on the destination",
                            ddl.statement, ddl.gtid
                        ),
                        offset,
                        e,
                    ))
                }
            }
        };
        fail::fail_point!(failpoints::DDL_AFTER_EXEC);
        for t in &ddl.tables {
            if let Some((db, table)) = t.split_once('.') {
                keys.forget(db, table);
            }
        }
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| ApplyError::transient("begin", e))?;
        if !self.advance_checkpoint(&mut tx, offset, &ddl.gtid).await? {
            let _ = tx.rollback().await;
            return Err(self.fenced());
        }
        tx.exec_drop(
            "UPDATE _revdoor.ddls SET state = ?, updated_at = NOW(6) WHERE workflow = ? \
             AND direction = ? AND `partition` = ? AND kafka_offset = ?",
            (
                state,
                &self.workflow,
                &self.direction,
                self.partition,
                offset,
            ),
        )
        .await
        .map_err(|e| ApplyError::transient("record DDL outcome", e))?;
        tx.commit()
            .await
            .map_err(|e| ApplyError::transient("commit", e))?;
        self.progress.update(|p| {
            p.position = ddl.gtid.clone();
            p.events += 1;
        });
        Ok(())
    }

    /// Move the checkpoint row to `offset` / `gtid` inside `tx`, guarded by
    /// the fence token: false when a newer owner holds the row.
    async fn advance_checkpoint(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        offset: i64,
        gtid: &str,
    ) -> Result<bool, ApplyError> {
        tx.exec_drop(
            "UPDATE _revdoor.stream_state SET kafka_offset = ?, source_gtid = ?, fence_token = ?, \
             updated_at = NOW(6) WHERE workflow = ? AND direction = ? AND `partition` = ? \
             AND fence_token <= ?",
            (
                offset,
                gtid,
                self.fence_token,
                &self.workflow,
                &self.direction,
                self.partition,
                self.fence_token,
            ),
        )
        .await
        .map_err(|e| ApplyError::transient("update checkpoint", e))?;
        Ok(tx.affected_rows() > 0)
    }

    /// Whether another stream of this workflow and direction ran the same
    /// statement on this destination (or is about to record that it did:
    /// its intent row says `intent` between its DDL and its checkpoint).
    async fn sibling_ran(&self, conn: &mut Conn, statement: &str) -> Result<bool, ApplyError> {
        let n: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM _revdoor.ddls WHERE workflow = ? AND direction = ? \
                 AND `partition` <> ? AND statement = ? AND state IN ('intent', 'ran')",
                (&self.workflow, &self.direction, self.partition, statement),
            )
            .await
            .map_err(|e| ApplyError::transient("look for the DDL of a sibling stream", e))?;
        Ok(n.unwrap_or(0) > 0)
    }

    /// Apply whole source transactions (and checkpoint `heartbeat`), but
    /// never past a vdiff's hold (DESIGN §7): with a hold at position `X`,
    /// apply the leading transactions inside `X`; once the stream holds
    /// everything of `X` (a transaction outside `X` is next, or a heartbeat
    /// at or past `X` arrived) report `held_gtid = X` and wait until the
    /// hold is released, changed or expired. Returns false when `cancel`
    /// fired while holding (nothing after the hold point was applied).
    async fn flush(
        &self,
        conns: &mut Vec<Conn>,
        keys: &mut KeyCache,
        events: &[(i64, ChangeEvent)],
        heartbeat: Option<(i64, &Heartbeat)>,
        cancel: &CancellationToken,
    ) -> Result<bool, ApplyError> {
        let mut events = events;
        let mut heartbeat = heartbeat;
        loop {
            let Some((text, hold)) = self.read_hold(&mut conns[0]).await? else {
                self.apply_group(conns, keys, events, heartbeat).await?;
                return Ok(true);
            };
            // Events of one transaction share its GTID: the prefix ends on
            // a transaction boundary.
            let inside = events
                .iter()
                .take_while(|(_, ev)| hold.contains_gtid(&ev.txn.gtid))
                .count();
            let heartbeat_past = heartbeat.is_some_and(|(_, hb)| {
                hb.position
                    .parse::<Position>()
                    .is_ok_and(|p| p.includes(&hold))
            });
            if inside == events.len() && !heartbeat_past {
                // Not there yet.
                self.apply_group(conns, keys, events, heartbeat).await?;
                return Ok(true);
            }
            let hb_now = if inside == events.len() {
                heartbeat
            } else {
                None
            };
            self.apply_group(conns, keys, &events[..inside], hb_now)
                .await?;
            events = &events[inside..];
            if hb_now.is_some() {
                heartbeat = None;
            }
            if !self.wait_at_hold(&mut conns[0], &text, cancel).await? {
                return Ok(false);
            }
            if events.is_empty() && heartbeat.is_none() {
                return Ok(true);
            }
        }
    }

    /// Apply whole source transactions and advance the checkpoint to the
    /// last of them (or to `heartbeat`). With one connection: one DB
    /// transaction. With K: the transactions are split by write set
    /// (tables, primary and unique keys of both images) into up to K
    /// independent buckets committed concurrently, each recording its
    /// transactions in `_revdoor.applied_txns`; then the checkpoint moves
    /// past all of them and those rows go. A restart skips what a bucket
    /// committed; any failure of a bucket is retried in order on one
    /// connection, which reports it exactly.
    async fn apply_group(
        &self,
        conns: &mut Vec<Conn>,
        keys: &mut KeyCache,
        events: &[(i64, ChangeEvent)],
        heartbeat: Option<(i64, &Heartbeat)>,
    ) -> Result<(), ApplyError> {
        let (last_offset, last_gtid, source_ts_ms) = match (heartbeat, events.last()) {
            (Some((offset, hb)), _) => (offset, hb.position.as_str(), hb.heartbeat_ms),
            (None, Some((offset, ev))) => (
                *offset,
                ev.txn.gtid.as_str(),
                // Capture time, bounded by the source's commit second.
                ev.ts_ms.min(u64::from(ev.source.ts_sec) * 1000 + 999),
            ),
            (None, None) => return Ok(()),
        };
        for (_, ev) in events {
            keys.ensure(&mut conns[0], &ev.source.db, &ev.source.table)
                .await?;
        }
        let all: Vec<&(i64, ChangeEvent)> = events.iter().collect();
        let rest = if self.parallelism > 1 {
            self.apply_parallel(conns, keys, &all).await?
        } else {
            all
        };
        let applying = std::time::Instant::now();
        let mut tx = conns[0]
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| ApplyError::transient("begin", e))?;
        self.apply_events(&mut tx, keys, &rest).await?;
        tracing::trace!(
            apply_us = applying.elapsed().as_micros() as u64,
            events = rest.len(),
            "group applied"
        );
        if !self
            .advance_checkpoint(&mut tx, last_offset, last_gtid)
            .await?
        {
            let _ = tx.rollback().await;
            return Err(self.fenced());
        }
        if self.parallelism > 1 {
            tx.exec_drop(
                "DELETE FROM _revdoor.applied_txns WHERE workflow = ? AND direction = ? \
                 AND `partition` = ? AND kafka_offset <= ?",
                (&self.workflow, &self.direction, self.partition, last_offset),
            )
            .await
            .map_err(|e| ApplyError::transient("forget applied transactions", e))?;
        }
        fail::fail_point!(failpoints::BEFORE_CHECKPOINT_COMMIT);
        let committing = std::time::Instant::now();
        tx.commit()
            .await
            .map_err(|e| ApplyError::transient("commit", e))?;
        tracing::trace!(
            commit_us = committing.elapsed().as_micros() as u64,
            "group committed"
        );
        fail::fail_point!(failpoints::AFTER_COMMIT_BEFORE_ACK);
        self.progress.update(|p| {
            p.position = last_gtid.to_string();
            p.events += events.len() as u64;
            p.source_ts_ms = p.source_ts_ms.max(source_ts_ms);
        });
        Ok(())
    }

    /// Apply `events` in a transaction, runs of inserts as multi-row
    /// statements.
    async fn apply_events(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        keys: &KeyCache,
        events: &[&(i64, ChangeEvent)],
    ) -> Result<(), ApplyError> {
        let mut i = 0;
        while i < events.len() {
            // A run of row changes into one table goes in one multi-row
            // statement (RunKind: inserts, upserts by key, deletes by key).
            // Any refusal (an insert's key already there after a replay, a
            // conflict, a type problem) rolls the attempt back and applies
            // the run row by row, which reports exactly.
            let (run, kind) = batch_run(&events[i..], keys);
            if run >= 2 {
                let pk = keys.get(&events[i].1.source.db, &events[i].1.source.table);
                if let Some((sql, params)) = multi_statement(&events[i..i + run], kind, pk) {
                    tx.query_drop("SAVEPOINT revdoor_run")
                        .await
                        .map_err(|e| ApplyError::transient("savepoint", e))?;
                    match tx.exec_drop(sql, params).await {
                        Ok(()) => {
                            i += run;
                            continue;
                        }
                        Err(mysql_async::Error::Server(_)) => {
                            tx.query_drop("ROLLBACK TO SAVEPOINT revdoor_run")
                                .await
                                .map_err(|e| ApplyError::transient("rollback to savepoint", e))?;
                        }
                        Err(e) => return Err(ApplyError::transient("multi-row statement", e)),
                    }
                }
            }
            for (offset, ev) in events[i..i + run.max(1)].iter().copied() {
                self.apply_one(tx, keys, *offset, ev).await?;
            }
            i += run.max(1);
        }
        Ok(())
    }

    /// Commit the independent parts of a group concurrently (see
    /// `apply_group`); the events still to apply, in order.
    async fn apply_parallel<'e>(
        &self,
        conns: &mut Vec<Conn>,
        keys: &KeyCache,
        events: &[&'e (i64, ChangeEvent)],
    ) -> Result<Vec<&'e (i64, ChangeEvent)>, ApplyError> {
        let txns = transactions(events);
        let buckets = buckets(events, &txns, keys, self.parallelism);
        if buckets.len() < 2 {
            return Ok(events.to_vec());
        }
        tracing::debug!(txns = txns.len(), buckets = buckets.len(), "parallel group");
        // conns[0] stays for the checkpoint and the in-order fallback; the
        // buckets get their own connections, whose lock waits are short: a
        // bucket waiting for a lock another bucket holds (a unique index's
        // gap, which write sets cannot see) would otherwise wait for a
        // bucket that waits for it at the gate.
        while conns.len() < buckets.len() + 1 {
            let mut c = self.open().await?;
            c.query_drop("SET SESSION innodb_lock_wait_timeout = 1")
                .await
                .map_err(|e| ApplyError::transient("set lock wait timeout", e))?;
            conns.push(c);
        }
        // Every bucket runs its statements; only when all of them got
        // there do they commit. If any failed, all roll back and the whole
        // group is applied in order on one connection, which stops exactly
        // at the failing transaction with nothing after it applied.
        let gate = Gate {
            barrier: tokio::sync::Barrier::new(buckets.len()),
            failed: std::sync::atomic::AtomicBool::new(false),
        };
        let work = conns
            .iter_mut()
            .skip(1)
            .zip(&buckets)
            .map(|(conn, bucket)| {
                let evs: Vec<&(i64, ChangeEvent)> = bucket
                    .iter()
                    .flat_map(|&t| events[txns[t].clone()].iter().copied())
                    .collect();
                let ends: Vec<i64> = bucket.iter().map(|&t| events[txns[t].end - 1].0).collect();
                let gate = &gate;
                async move { self.apply_bucket(conn, keys, &evs, &ends, gate).await }
            });
        let results = futures_util::future::join_all(work).await;
        let mut failed: Vec<usize> = Vec::new();
        let mut fenced = None;
        for (bucket, r) in buckets.iter().zip(results) {
            match r {
                Ok(()) => {}
                Err(e @ ApplyError::Fenced(_)) => fenced = Some(e),
                Err(e) => {
                    if !matches!(e, ApplyError::Transient(ref m) if m == GATE_CLOSED) {
                        tracing::warn!(topic = %self.topic(), partition = self.partition, error = %e,
                            "a parallel part failed; applying the group again in order on one connection");
                    }
                    failed.extend(bucket);
                }
            }
        }
        if let Some(e) = fenced {
            return Err(e);
        }
        if !failed.is_empty() {
            // A connection may be broken: open afresh next time.
            for c in conns.drain(1..) {
                let _ = c.disconnect().await;
            }
        }
        failed.sort_unstable();
        Ok(failed
            .into_iter()
            .flat_map(|t| events[txns[t].clone()].iter().copied())
            .collect())
    }

    /// One bucket of a parallel group: its transactions and their
    /// `applied_txns` rows in one DB transaction, under the fence token,
    /// committed once every bucket of the group got through (`gate`).
    async fn apply_bucket(
        &self,
        conn: &mut Conn,
        keys: &KeyCache,
        events: &[&(i64, ChangeEvent)],
        ends: &[i64],
        gate: &Gate,
    ) -> Result<(), ApplyError> {
        use std::sync::atomic::Ordering;
        let mut tx = match conn.start_transaction(TxOpts::default()).await {
            Ok(tx) => tx,
            Err(e) => {
                gate.failed.store(true, Ordering::SeqCst);
                gate.barrier.wait().await;
                return Err(ApplyError::transient("begin", e));
            }
        };
        let r = self.bucket_body(&mut tx, keys, events, ends).await;
        if r.is_err() {
            gate.failed.store(true, Ordering::SeqCst);
        }
        gate.barrier.wait().await;
        // Roll back explicitly on any failure: the group is retried on
        // another connection, which must not wait for this one's locks.
        match r {
            Ok(()) if !gate.failed.load(Ordering::SeqCst) => tx
                .commit()
                .await
                .map_err(|e| ApplyError::transient("commit", e)),
            Ok(()) => {
                let _ = tx.rollback().await;
                Err(ApplyError::Transient(GATE_CLOSED.into()))
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn bucket_body(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        keys: &KeyCache,
        events: &[&(i64, ChangeEvent)],
        ends: &[i64],
    ) -> Result<(), ApplyError> {
        // A shared lock on the checkpoint row: buckets do not block each
        // other, and a new owner's takeover waits for them, after which
        // this owner reads the newer token here and stops.
        let token: Option<u64> = tx
            .exec_first(
                "SELECT fence_token FROM _revdoor.stream_state WHERE workflow = ? \
                 AND direction = ? AND `partition` = ? LOCK IN SHARE MODE",
                (&self.workflow, &self.direction, self.partition),
            )
            .await
            .map_err(|e| ApplyError::transient("read fence token", e))?;
        if token.unwrap_or(u64::MAX) > self.fence_token {
            return Err(self.fenced());
        }
        self.apply_events(tx, keys, events).await?;
        let values = vec!["(?, ?, ?, ?)"; ends.len()].join(", ");
        let mut params: Vec<Value> = Vec::with_capacity(ends.len() * 4);
        for end in ends {
            params.push(Value::from(self.workflow.as_str()));
            params.push(Value::from(self.direction.as_str()));
            params.push(Value::from(self.partition));
            params.push(Value::from(*end));
        }
        tx.exec_drop(
            format!(
                "INSERT INTO _revdoor.applied_txns (workflow, direction, `partition`, kafka_offset) \
                 VALUES {values}"
            ),
            params,
        )
        .await
        .map_err(|e| ApplyError::transient("record applied transactions", e))?;
        fail::fail_point!(failpoints::BUCKET_ERROR, |_| Err(ApplyError::Transient(
            "failpoint apply::bucket_error".into()
        )));
        fail::fail_point!(failpoints::BEFORE_CHECKPOINT_COMMIT);
        Ok(())
    }
}

/// The buckets of one parallel group meet here before committing.
struct Gate {
    barrier: tokio::sync::Barrier,
    failed: std::sync::atomic::AtomicBool,
}

/// A bucket rolled back because another bucket of its group failed.
const GATE_CLOSED: &str = "another part of the group failed";

/// A group of whole source transactions (and a heartbeat to checkpoint
/// after them), from the reader to the applier.
struct Batch {
    events: Vec<(i64, ChangeEvent)>,
    heartbeat: Option<(i64, Heartbeat)>,
    /// A DDL record to run (alone in its batch).
    ddl: Option<(i64, DdlEvent)>,
}

/// Hand the complete part of `group` (and a heartbeat) to the applier;
/// false when the applier has stopped.
async fn hand_over(
    tx: &tokio::sync::mpsc::Sender<Batch>,
    group: &mut Vec<(i64, ChangeEvent)>,
    complete: usize,
    heartbeat: Option<(i64, Heartbeat)>,
) -> bool {
    let events: Vec<(i64, ChangeEvent)> = group.drain(..complete).collect();
    if events.is_empty() && heartbeat.is_none() {
        return true;
    }
    tx.send(Batch {
        events,
        heartbeat,
        ddl: None,
    })
    .await
    .is_ok()
}

/// The events of each source transaction of a group (index ranges).
fn transactions(events: &[&(i64, ChangeEvent)]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, (_, ev)) in events.iter().copied().enumerate() {
        if ev.txn.last {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < events.len() {
        out.push(start..events.len());
    }
    out
}

/// Split transactions into at most `k` buckets with disjoint write sets:
/// transactions sharing a key (union-find) stay in one bucket, in order;
/// groups go to the least loaded bucket, biggest first. Empty buckets are
/// dropped; each bucket lists transaction indices ascending.
fn buckets(
    events: &[&(i64, ChangeEvent)],
    txns: &[std::ops::Range<usize>],
    keys: &KeyCache,
    k: usize,
) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..txns.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut first: HashMap<u64, usize> = HashMap::new();
    for (t, r) in txns.iter().enumerate() {
        for (_, ev) in events[r.clone()].iter().copied() {
            for key in write_set(ev, keys) {
                let other = *first.entry(key).or_insert(t);
                let (a, b) = (find(&mut parent, t), find(&mut parent, other));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut groups: HashMap<usize, (usize, Vec<usize>)> = HashMap::new();
    for (t, r) in txns.iter().enumerate() {
        let root = find(&mut parent, t);
        let g = groups.entry(root).or_default();
        g.0 += r.len();
        g.1.push(t);
    }
    let mut groups: Vec<(usize, Vec<usize>)> = groups.into_values().collect();
    groups.sort_by(|a, b| b.0.cmp(&a.0).then(a.1[0].cmp(&b.1[0])));
    let mut out: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); k.max(1)];
    for (size, txns) in groups {
        if let Some(b) = out.iter_mut().min_by_key(|b| b.0) {
            b.0 += size;
            b.1.extend(txns);
        }
    }
    out.into_iter()
        .filter(|b| !b.1.is_empty())
        .map(|(_, mut t)| {
            t.sort_unstable();
            t
        })
        .collect()
}

/// What a row change writes, as keys two transactions conflict on:
/// - its primary key in both images ([`key_hash`]: folded, so that keys a
///   case-insensitive collation equates collide here too);
/// - each other unique index whose entries it changes (an insert, a
///   delete, an update of the index's columns or of the primary key), as
///   a whole: InnoDB's duplicate checks lock neighbouring entries of such
///   an index too, so two changes of different values can still wait for
///   each other;
/// - one key shared by every table in a foreign-key relation (or whose keys
///   are unknown).
fn write_set(ev: &ChangeEvent, keys: &KeyCache) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    let hash = |what: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&ev.source.db, &ev.source.table).hash(&mut h);
        what(&mut h);
        h.finish() | 1
    };
    let info = keys.info(&ev.source.db, &ev.source.table);
    let mut out = Vec::new();
    let Some(info) = info.filter(|i| !i.foreign_keys) else {
        out.push(0);
        return out;
    };
    for image in [ev.before.as_ref(), ev.after.as_ref()]
        .into_iter()
        .flatten()
    {
        out.push(hash(&|h| {
            "pk".hash(h);
            key_hash(info.primary.iter().map(|c| image.get(c))).hash(h);
        }));
    }
    for (n, cols) in info.uniques.iter().enumerate().skip(1) {
        // A primary-key change is a delete and an insert: every index.
        let changed = match (ev.before.as_ref(), ev.after.as_ref()) {
            (Some(b), Some(a)) => cols
                .iter()
                .chain(&info.primary)
                .any(|c| b.get(c) != a.get(c)),
            _ => true,
        };
        if changed {
            out.push(hash(&|h| ("unique", n).hash(h)));
        }
    }
    out
}

impl ApplyStream {
    /// Apply one event statement by statement.
    async fn apply_one(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        keys: &KeyCache,
        offset: i64,
        ev: &ChangeEvent,
    ) -> Result<(), ApplyError> {
        let pk = keys.get(&ev.source.db, &ev.source.table);
        let fail = |e: mysql_async::Error| {
            let where_ = format!(
                "{}/{}@{offset} (gtid {}, {}.{})",
                self.topic(),
                self.partition,
                ev.txn.gtid,
                ev.source.db,
                ev.source.table
            );
            classify_mysql(&where_, offset, e)
        };
        for stmt in statements(ev, pk) {
            match stmt {
                Stmt::Exec(sql, params) => tx.exec_drop(sql, params).await.map_err(fail)?,
                Stmt::Upsert { update, insert } => {
                    // Update by primary key; insert only if no row has
                    // that key. A conflict on any other unique key then
                    // fails loudly instead of rewriting an unrelated row
                    // (the INSERT … ON DUPLICATE KEY UPDATE / REPLACE trap).
                    tx.exec_drop(update.0, update.1).await.map_err(fail)?;
                    if tx.affected_rows() == 0 {
                        tx.exec_drop(insert.0, insert.1).await.map_err(fail)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Rows per multi-row INSERT at most (and at most 65,535 parameters).
const MULTI_ROWS: usize = 500;

/// What one multi-row statement does for a run of row changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    /// `INSERT` of new rows (a table with secondary unique keys: an
    /// existing key must fail, not rewrite).
    Insert,
    /// `INSERT … ON DUPLICATE KEY UPDATE` of after images: a table whose
    /// only unique key is its primary key, where that is exactly an upsert
    /// by key (the trap of upserts — rewriting another row through a
    /// secondary unique key — cannot happen).
    Upsert,
    /// `DELETE … WHERE key IN (…)`: a single-column primary key.
    Delete,
}

/// Whether `ev` can be part of a run of `kind`.
fn fits(kind: RunKind, ev: &ChangeEvent, pk: &[String]) -> bool {
    match kind {
        RunKind::Insert => matches!(ev.op, Op::Create | Op::Read),
        RunKind::Upsert => match ev.op {
            Op::Create | Op::Read => true,
            // An update that keeps its key (a key change is delete + insert).
            Op::Update => match (ev.before.as_ref(), ev.after.as_ref()) {
                (Some(b), Some(a)) => pk.iter().all(|c| b.get(c) == a.get(c)),
                _ => false,
            },
            Op::Delete => false,
        },
        RunKind::Delete => ev.op == Op::Delete,
    }
}

/// The run at the start of `events` that one multi-row statement can carry
/// (one table, the same columns, distinct primary keys, at most
/// `MULTI_ROWS` rows), and its kind; length 0 when none.
fn batch_run(events: &[&(i64, ChangeEvent)], keys: &KeyCache) -> (usize, RunKind) {
    let Some((_, first)) = events.first().copied() else {
        return (0, RunKind::Insert);
    };
    let info = keys.info(&first.source.db, &first.source.table);
    let pk = keys.get(&first.source.db, &first.source.table);
    let pk_only = info.is_some_and(|i| i.uniques.len() == 1);
    let kind = if first.op == Op::Delete {
        if pk.len() != 1 {
            return (0, RunKind::Delete);
        }
        RunKind::Delete
    } else if pk_only && fits(RunKind::Upsert, first, pk) {
        RunKind::Upsert
    } else if fits(RunKind::Insert, first, pk) {
        RunKind::Insert
    } else {
        return (0, RunKind::Insert);
    };
    fn image(kind: RunKind, ev: &ChangeEvent) -> Option<&Row> {
        if kind == RunKind::Delete {
            ev.before.as_ref()
        } else {
            ev.after.as_ref()
        }
    }
    let Some(first_row) = image(kind, first) else {
        return (0, kind);
    };
    let max = MULTI_ROWS.min(65_535 / first_row.columns.len().max(1));
    let mut seen = std::collections::HashSet::new();
    let mut n = 0;
    for (_, ev) in events.iter().copied().take(max) {
        let Some(row) = image(kind, ev) else { break };
        let same = fits(kind, ev, pk)
            && ev.source.db == first.source.db
            && ev.source.table == first.source.table
            && (kind == RunKind::Delete || row.columns == first_row.columns);
        // A hash of the key: a collision only ends the run early.
        let key = key_hash(pk.iter().map(|c| row.get(c)));
        if !same || !seen.insert(key) {
            break;
        }
        n += 1;
    }
    (n, kind)
}

/// A hash of key values. Strings are folded to lower case without
/// trailing spaces, so that keys a case-insensitive collation equates
/// collide (over-approximating a conflict, or ending a run early, is safe).
/// No allocation unless a string is not ASCII.
fn key_hash<'a>(values: impl Iterator<Item = Option<&'a ColumnValue>>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in values {
        match v {
            None | Some(ColumnValue::Null) => 0u8.hash(&mut h),
            Some(ColumnValue::Int(i)) => (1u8, i).hash(&mut h),
            Some(ColumnValue::UInt(u)) => (2u8, u).hash(&mut h),
            Some(ColumnValue::Float(f)) => (3u8, f.to_bits()).hash(&mut h),
            Some(ColumnValue::Double(d)) => (4u8, d.to_bits()).hash(&mut h),
            Some(ColumnValue::Bytes(b)) => {
                h.write_u8(5);
                if b.is_ascii() {
                    for c in without_trailing_spaces(b) {
                        h.write_u8(c.to_ascii_lowercase());
                    }
                } else {
                    let folded = String::from_utf8_lossy(b).to_lowercase();
                    h.write(folded.trim_end_matches(' ').as_bytes());
                }
                h.write_u8(0xff);
            }
            Some(ColumnValue::DateTime(t) | ColumnValue::Time(t)) => (6u8, t).hash(&mut h),
        }
    }
    h.finish()
}

/// A byte string without its trailing spaces.
fn without_trailing_spaces(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    &b[..end]
}

/// The multi-row statement of a run (see [`RunKind`]).
fn multi_statement(
    run: &[&(i64, ChangeEvent)],
    kind: RunKind,
    pk: &[String],
) -> Option<(String, Vec<Value>)> {
    let (_, first) = run.first().copied()?;
    let table = format!(
        "{}.{}",
        quote_ident(&first.source.db),
        quote_ident(&first.source.table)
    );
    if kind == RunKind::Delete {
        let key = pk.first()?;
        let sql = format!(
            "DELETE FROM {table} WHERE {} IN ({})",
            quote_ident(key),
            vec!["?"; run.len()].join(", ")
        );
        let mut params = Vec::with_capacity(run.len());
        for (_, ev) in run.iter().copied() {
            params.push(to_param(ev.before.as_ref()?.get(key)?));
        }
        return Some((sql, params));
    }
    let row = first.after.as_ref()?;
    let cols: Vec<String> = row.columns.iter().map(|c| quote_ident(c)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(", "));
    let mut sql = format!(
        "INSERT INTO {table} ({}) VALUES {}",
        cols.join(", "),
        vec![one.as_str(); run.len()].join(", ")
    );
    if kind == RunKind::Upsert {
        let set: Vec<String> = row
            .columns
            .iter()
            .filter(|c| !pk.contains(c))
            .map(|c| format!("{0} = VALUES({0})", quote_ident(c)))
            .collect();
        // A table of key columns only: nothing to update.
        let set = if set.is_empty() {
            let k = quote_ident(pk.first()?);
            format!("{k} = {k}")
        } else {
            set.join(", ")
        };
        sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {set}"));
    }
    let mut params = Vec::with_capacity(run.len() * cols.len());
    for (_, ev) in run.iter().copied() {
        params.extend(ev.after.as_ref()?.values.iter().map(to_param));
    }
    Some((sql, params))
}

fn classify_mysql(where_: &str, offset: i64, e: mysql_async::Error) -> ApplyError {
    match &e {
        // Deadlock, lock wait timeout: retry.
        mysql_async::Error::Server(se) if se.code == 1213 || se.code == 1205 => {
            ApplyError::Transient(format!("{where_}: {e}"))
        }
        // The destination refuses the change (missing column or table,
        // constraint violation…): halt here, nothing after it is applied.
        mysql_async::Error::Server(_) => ApplyError::Definite(format!(
            "{where_}: {e}; the stream halts here — fix the destination, or skip this message \
             with `revdoor stream skip --offset {offset}`"
        )),
        _ => ApplyError::Transient(format!("{where_}: {e}")),
    }
}

/// Keys of a destination table.
struct TableKeys {
    primary: Vec<String>,
    /// Every unique key, the primary key first.
    uniques: Vec<Vec<String>>,
    /// The table refers to another or is referred to by one.
    foreign_keys: bool,
}

/// Keys of destination tables.
#[derive(Default)]
struct KeyCache(HashMap<String, HashMap<String, TableKeys>>);

impl KeyCache {
    /// Forget what is known of `db.table` (its definition changed).
    fn forget(&mut self, db: &str, table: &str) {
        if let Some(tables) = self.0.get_mut(db) {
            tables.remove(table);
        }
    }

    async fn ensure(&mut self, conn: &mut Conn, db: &str, table: &str) -> Result<(), ApplyError> {
        // Looked up for every event: no allocation when known.
        if self.info(db, table).is_some() {
            return Ok(());
        }
        let cols: Vec<(String, String)> = conn
            .exec(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
                 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
                (db, table),
            )
            .await
            .map_err(|e| ApplyError::transient("read destination keys", e))?;
        let mut uniques: Vec<(String, Vec<String>)> = Vec::new();
        for (index, col) in cols {
            match uniques.last_mut() {
                Some((name, cols)) if *name == index => cols.push(col),
                _ => uniques.push((index, vec![col])),
            }
        }
        let primary = match uniques.first() {
            Some((name, cols)) if name == "PRIMARY" => cols.clone(),
            _ => {
                return Err(ApplyError::Definite(format!(
                    "destination table {db}.{table} is missing or has no primary key"
                )))
            }
        };
        let fks: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
                 WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) \
                 OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)",
                (db, table, db, table),
            )
            .await
            .map_err(|e| ApplyError::transient("read destination foreign keys", e))?;
        self.0.entry(db.to_string()).or_default().insert(
            table.to_string(),
            TableKeys {
                primary,
                uniques: uniques.into_iter().map(|(_, c)| c).collect(),
                foreign_keys: fks.unwrap_or(0) > 0,
            },
        );
        Ok(())
    }

    fn info(&self, db: &str, table: &str) -> Option<&TableKeys> {
        self.0.get(db)?.get(table)
    }

    fn get(&self, db: &str, table: &str) -> &[String] {
        self.info(db, table).map_or(&[], |t| t.primary.as_slice())
    }
}

/// A fingerprint of the definitions of `tables` (`db.table`) on the
/// destination: `SHOW CREATE TABLE` without its `AUTO_INCREMENT` counter,
/// "absent" for a table that does not exist.
async fn tables_fingerprint(conn: &mut Conn, tables: &[String]) -> Result<String, ApplyError> {
    let mut text = String::new();
    for t in tables {
        let Some((db, table)) = t.split_once('.') else {
            continue;
        };
        let sql = format!(
            "SHOW CREATE TABLE {}.{}",
            quote_ident(db),
            quote_ident(table)
        );
        let def: Option<(String, String)> = match conn.query_first(sql).await {
            Ok(row) => row,
            Err(mysql_async::Error::Server(se)) if se.code == 1146 || se.code == 1049 => None,
            Err(e) => return Err(ApplyError::transient("read table definition", e)),
        };
        text.push_str(t);
        text.push('\n');
        match def {
            Some((_, create)) => text.push_str(&without_auto_increment(&create)),
            None => text.push_str("absent"),
        }
        text.push('\n');
    }
    Ok(format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    ))
}

/// `SHOW CREATE TABLE` text without ` AUTO_INCREMENT=n` (a counter, not
/// the definition).
fn without_auto_increment(create: &str) -> String {
    let mut out = String::with_capacity(create.len());
    let mut rest = create;
    while let Some(i) = rest.find(" AUTO_INCREMENT=") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " AUTO_INCREMENT=".len()..];
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn to_param(v: &ColumnValue) -> Value {
    match v {
        ColumnValue::Null => Value::NULL,
        ColumnValue::Int(i) => Value::Int(*i),
        ColumnValue::UInt(u) => Value::UInt(*u),
        ColumnValue::Float(f) => Value::Float(*f),
        ColumnValue::Double(d) => Value::Double(*d),
        ColumnValue::Bytes(b) => Value::Bytes(b.clone()),
        ColumnValue::DateTime(s) | ColumnValue::Time(s) => Value::Bytes(s.as_bytes().to_vec()),
    }
}

/// The idempotent statements for one row change: `c`/`r`/`u` upsert the
/// after image (deleting the before image first when the key changed),
/// `d` deletes by key. Re-running them changes nothing.
/// One statement to run for a row change.
#[derive(Debug, PartialEq)]
enum Stmt {
    Exec(String, Vec<Value>),
    /// `update` by primary key; `insert` if it matched no row.
    Upsert {
        update: (String, Vec<Value>),
        insert: (String, Vec<Value>),
    },
}

/// The idempotent statements for one row change: `c`/`r`/`u` upsert the
/// after image (deleting the before image first when the key changed),
/// `d` deletes by key. Re-running them changes nothing.
fn statements(ev: &ChangeEvent, pk: &[String]) -> Vec<Stmt> {
    let table = format!(
        "{}.{}",
        quote_ident(&ev.source.db),
        quote_ident(&ev.source.table)
    );
    let key_cond = || {
        pk.iter()
            .map(|c| format!("{} = ?", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let key_params = |row: &Row| {
        pk.iter()
            .map(|c| row.get(c).map(to_param).unwrap_or(Value::NULL))
            .collect::<Vec<_>>()
    };
    let delete = |row: &Row| {
        Stmt::Exec(
            format!("DELETE FROM {table} WHERE {}", key_cond()),
            key_params(row),
        )
    };
    let upsert = |row: &Row| {
        let cols: Vec<String> = row.columns.iter().map(|c| quote_ident(c)).collect();
        let sets: Vec<String> = cols.iter().map(|c| format!("{c} = ?")).collect();
        let mut update_params: Vec<Value> = row.values.iter().map(to_param).collect();
        update_params.extend(key_params(row));
        Stmt::Upsert {
            update: (
                format!(
                    "UPDATE {table} SET {} WHERE {}",
                    sets.join(", "),
                    key_cond()
                ),
                update_params,
            ),
            insert: (
                format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    cols.join(", "),
                    vec!["?"; cols.len()].join(", ")
                ),
                row.values.iter().map(to_param).collect(),
            ),
        }
    };
    let key_of = |row: &Row| pk.iter().map(|c| row.get(c).cloned()).collect::<Vec<_>>();
    let mut out = Vec::new();
    match (ev.op, &ev.before, &ev.after) {
        (Op::Delete, Some(before), _) => out.push(delete(before)),
        (Op::Update, Some(before), Some(after)) => {
            if key_of(before) != key_of(after) {
                out.push(delete(before));
            }
            out.push(upsert(after));
        }
        (_, _, Some(after)) => out.push(upsert(after)),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use revdoor_core::event::{Source, TxnInfo};

    fn row(id: i64, name: &str) -> Row {
        Row {
            columns: vec!["id".into(), "name".into()].into(),
            values: vec![
                ColumnValue::Int(id),
                ColumnValue::Bytes(name.as_bytes().to_vec()),
            ],
        }
    }

    fn ev(op: Op, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
        ChangeEvent {
            op,
            before,
            after,
            source: Source {
                shard: "-".into(),
                db: "d".into(),
                table: "t".into(),
                ts_sec: 0,
            },
            txn: TxnInfo {
                gtid: "0-1-1".into(),
                index: 0,
                last: true,
            },
            ts_ms: 0,
        }
    }

    fn refs(v: &[(i64, ChangeEvent)]) -> Vec<&(i64, ChangeEvent)> {
        v.iter().collect()
    }

    fn keys_of(uniques: Vec<Vec<&str>>, foreign_keys: bool) -> KeyCache {
        let mut keys = KeyCache::default();
        let uniques: Vec<Vec<String>> = uniques
            .into_iter()
            .map(|u| u.into_iter().map(String::from).collect())
            .collect();
        keys.0.entry("d".into()).or_default().insert(
            "t".into(),
            TableKeys {
                primary: uniques[0].clone(),
                uniques,
                foreign_keys,
            },
        );
        keys
    }

    #[test]
    fn multi_row_runs_stop_at_other_ops_tables_and_repeated_keys() {
        // A secondary unique key: plain inserts only.
        let keys = keys_of(vec![vec!["id"], vec!["name"]], false);
        let c = |id| (0i64, ev(Op::Create, None, Some(row(id, "x"))));
        let r = |id| (0i64, ev(Op::Read, None, Some(row(id, "x"))));
        let u = |id| (0i64, ev(Op::Update, Some(row(id, "x")), Some(row(id, "y"))));
        let d = |id| (0i64, ev(Op::Delete, Some(row(id, "x")), None));
        // Inserts and copied rows mix; a delete ends the run.
        let evs = vec![c(1), r(2), c(3), d(1), c(4)];
        assert_eq!(batch_run(&refs(&evs), &keys), (3, RunKind::Insert));
        // Deletes by a single-column key run together.
        assert_eq!(batch_run(&refs(&evs[3..]), &keys), (1, RunKind::Delete));
        assert_eq!(
            batch_run(&refs(&[d(1), d(2), c(3)]), &keys),
            (2, RunKind::Delete)
        );
        // With a secondary unique key an update is not part of a run.
        assert_eq!(batch_run(&refs(&[u(1), c(2)]), &keys).0, 0);
        // The same key twice: the second starts a new run.
        let evs = vec![c(1), c(2), c(1)];
        assert_eq!(batch_run(&refs(&evs), &keys).0, 2);
        // Another table ends it.
        let mut other = c(5);
        other.1.source.table = "u".into();
        assert_eq!(batch_run(&refs(&[c(1), other]), &keys).0, 1);
        // One statement, one placeholder group per row, values in order.
        let (sql, params) =
            multi_statement(&refs(&[c(1), c(2)]), RunKind::Insert, &["id".into()]).expect("insert");
        assert_eq!(
            sql,
            "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(params.len(), 4);
        // At most MULTI_ROWS rows.
        let many: Vec<_> = (0..MULTI_ROWS as i64 + 10).map(c).collect();
        assert_eq!(batch_run(&refs(&many), &keys).0, MULTI_ROWS);

        // Only a primary key: inserts, copied rows and key-keeping updates
        // are one upsert; a key change ends the run.
        let pk_only = keys_of(vec![vec!["id"]], false);
        let moved = (0i64, ev(Op::Update, Some(row(3, "x")), Some(row(9, "x"))));
        let evs = vec![c(1), u(2), r(4), moved, c(5)];
        assert_eq!(batch_run(&refs(&evs), &pk_only), (3, RunKind::Upsert));
        let (sql, params) =
            multi_statement(&refs(&evs[..3]), RunKind::Upsert, &["id".into()]).expect("upsert");
        assert_eq!(
            sql,
            "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, ?), (?, ?), (?, ?) \
             ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)"
        );
        assert_eq!(params.len(), 6);
        let (sql, params) =
            multi_statement(&refs(&[d(1), d(2)]), RunKind::Delete, &["id".into()]).expect("delete");
        assert_eq!(sql, "DELETE FROM `d`.`t` WHERE `id` IN (?, ?)");
        assert_eq!(params, vec![Value::Int(1), Value::Int(2)]);
        // A composite key: deletes go one by one.
        let composite = keys_of(vec![vec!["id", "name"]], false);
        assert_eq!(batch_run(&refs(&[d(1), d(2)]), &composite).0, 0);
    }

    /// One-event transactions `(offset, event)`.
    fn txn(offset: i64, op: Op, before: Option<Row>, after: Option<Row>) -> (i64, ChangeEvent) {
        (offset, ev(op, before, after))
    }

    #[test]
    fn parallel_buckets_keep_conflicting_transactions_together_and_in_order() {
        let keys = keys_of(vec![vec!["id"]], false);
        let evs = vec![
            txn(0, Op::Create, None, Some(row(1, "a"))),
            txn(1, Op::Create, None, Some(row(2, "b"))),
            txn(2, Op::Update, Some(row(1, "a")), Some(row(1, "c"))), // id 1 again
            txn(3, Op::Create, None, Some(row(3, "c"))),
            txn(4, Op::Create, None, Some(row(4, "d"))),
            txn(5, Op::Update, Some(row(2, "b")), Some(row(5, "b"))), // key change 2 → 5
            txn(6, Op::Delete, Some(row(5, "b")), None),
        ];
        let all = refs(&evs);
        let t = transactions(&all);
        assert_eq!(t.len(), 7);
        let b = buckets(&all, &t, &keys, 4);
        // {0, 2} (id 1), {1, 5, 6} (id 2 → 5), {3}, {4}.
        let mut got: Vec<Vec<usize>> = b.clone();
        got.sort();
        assert_eq!(got, vec![vec![0, 2], vec![1, 5, 6], vec![3], vec![4]]);
        // K = 2: every group whole in one of two buckets.
        let b = buckets(&all, &t, &keys, 2);
        assert_eq!(b.len(), 2);
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 7);
        assert!(b.iter().any(|x| x.contains(&0) && x.contains(&2)), "{b:?}");
        for bucket in &b {
            assert!(
                bucket.windows(2).all(|w| w[0] < w[1]),
                "in order: {bucket:?}"
            );
        }
        // K = 1: everything in one bucket.
        assert_eq!(buckets(&all, &t, &keys, 1), vec![vec![0, 1, 2, 3, 4, 5, 6]]);
        // Foreign keys: one bucket whatever K.
        let fk = keys_of(vec![vec!["id"]], true);
        assert_eq!(buckets(&all, &t, &fk, 4).len(), 1);
        // A table not known to the cache counts as related to everything.
        let none = KeyCache::default();
        assert_eq!(buckets(&all, &t, &none, 4).len(), 1);
    }

    #[test]
    fn key_hash_folds_case_and_trailing_spaces_in_both_paths() {
        let h = |s: &str| {
            key_hash(std::iter::once(Some(&ColumnValue::Bytes(
                s.as_bytes().to_vec(),
            ))))
        };
        assert_eq!(h("Ab  "), h("ab"));
        assert_eq!(h("ÉTÉ "), h("été"));
        assert_ne!(h("ab"), h("abc"));
        assert_ne!(h(" ab"), h("ab"));
    }

    #[test]
    fn a_transaction_is_its_events_up_to_the_last() {
        let mut a = ev(Op::Create, None, Some(row(1, "a")));
        a.txn.last = false;
        let b = ev(Op::Create, None, Some(row(2, "b")));
        let evs = vec![(0, a), (1, b.clone()), (2, b)];
        assert_eq!(transactions(&refs(&evs)), vec![0..2, 2..3]);
    }

    #[test]
    fn unique_indexes_conflict_as_a_whole_and_only_when_changed() {
        let keys = keys_of(vec![vec!["id"], vec!["name"]], false);
        let all_of = |evs: &[(i64, ChangeEvent)]| {
            let all = refs(evs);
            buckets(&all, &transactions(&all), &keys, 4).len()
        };
        // Two inserts of different names: both change the unique index.
        let inserts = vec![
            txn(0, Op::Create, None, Some(row(1, "x"))),
            txn(1, Op::Create, None, Some(row(2, "y"))),
        ];
        assert_eq!(all_of(&inserts), 1);
        // Updates that leave the unique column alone stay independent.
        let updates = vec![
            txn(0, Op::Update, Some(row(1, "x")), Some(row(1, "x"))),
            txn(1, Op::Update, Some(row(2, "y")), Some(row(2, "y"))),
        ];
        assert_eq!(all_of(&updates), 2);
        // With only a primary key, inserts are independent.
        let pk_only = keys_of(vec![vec!["id"]], false);
        let all = refs(&inserts);
        assert_eq!(buckets(&all, &transactions(&all), &pk_only, 4).len(), 2);
    }

    #[test]
    fn update_that_changes_the_key_deletes_the_old_row_first() {
        let pk = vec!["id".to_string()];
        let s = statements(&ev(Op::Update, Some(row(1, "a")), Some(row(2, "a"))), &pk);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            Stmt::Exec(
                "DELETE FROM `d`.`t` WHERE `id` = ?".into(),
                vec![Value::Int(1)]
            )
        );
        let Stmt::Upsert { update, insert } = &s[1] else {
            panic!("upsert expected: {s:?}")
        };
        assert_eq!(
            update.0,
            "UPDATE `d`.`t` SET `id` = ?, `name` = ? WHERE `id` = ?"
        );
        assert_eq!(
            update.1,
            vec![Value::Int(2), Value::Bytes(b"a".to_vec()), Value::Int(2)]
        );
        assert_eq!(insert.0, "INSERT INTO `d`.`t` (`id`, `name`) VALUES (?, ?)");
        let same_key = statements(&ev(Op::Update, Some(row(1, "a")), Some(row(1, "b"))), &pk);
        assert_eq!(same_key.len(), 1);
    }

    #[test]
    fn delete_uses_only_key_columns() {
        let pk = vec!["id".to_string()];
        let s = statements(&ev(Op::Delete, Some(row(7, "x")), None), &pk);
        assert_eq!(
            s,
            vec![Stmt::Exec(
                "DELETE FROM `d`.`t` WHERE `id` = ?".to_string(),
                vec![Value::Int(7)]
            )]
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
    }
}
