//! Capture: reads one shard's binlog and publishes whole source transactions
//! to a direction topic, exactly once (DESIGN §4).
//!
//! This is the walking skeleton: one origin shard, one partition, MariaDB
//! GTIDs, JSON events. [`run`] wires the [`binlog::BinlogReader`] to the
//! [`publish::Publisher`].
//!
//! # Resumption
//!
//! On start, capture reads its checkpoint from `revdoor.<workflow>.offsets`
//! (written in the same Kafka transaction as the events) and resumes the
//! binlog there. Without a checkpoint it starts at `start_position`, or at
//! the source's current position.

pub mod binlog;
pub mod ddl;
pub mod failpoints;
pub mod publish;
pub mod schema;

use std::str::FromStr;
use std::time::Duration;

use revdoor_core::gtid::{MariadbGtid, MariadbGtidList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::binlog::{BinlogItem, BinlogReader, SourceTxn};
use crate::ddl::OnDdl;
use crate::publish::{Codecs, Publisher, StreamId};
use revdoor_core::avro::EventCodec;

/// Errors of a capture stream, classified by what happens next.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The data or configuration is wrong: stop the stream, tell the operator.
    #[error("{0}")]
    Definite(String),
    /// I/O, connection, broker: retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// A newer owner of the stream exists: stop, never retry.
    #[error("fenced: {0}")]
    Fenced(String),
}

impl CaptureError {
    pub(crate) fn transient(what: &str, e: impl std::fmt::Display) -> Self {
        CaptureError::Transient(format!("{what}: {e}"))
    }

    /// Whether retrying could help.
    pub fn is_transient(&self) -> bool {
        matches!(self, CaptureError::Transient(_))
    }
}

/// The replica server id a capture registers with: derived from the
/// stream's transactional id so that two streams reading one server never
/// share an id (a server drops the older of two replicas with the same id),
/// and kept out of the range real servers use (high bit set).
pub fn replica_server_id(transactional_id: &str) -> u32 {
    0x4000_0000 | (xxhash_rust::xxh3::xxh3_64(transactional_id.as_bytes()) as u32 & 0x3fff_ffff)
}

/// Everything one capture stream needs.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub brokers: String,
    pub id: StreamId,
    pub partition: i32,
    pub partitions: i32,
    pub reader: BinlogReader,
    /// Used when no checkpoint exists; `None` = the source's current position.
    pub start_position: Option<String>,
    /// Close a Kafka transaction after this many source transactions…
    pub batch_max_txns: usize,
    /// …or after this long.
    pub batch_interval: Duration,
    /// What a DDL on a captured table does to the stream.
    pub on_ddl: OnDdl,
}

/// Run one capture stream until `cancel` fires or a non-retryable error.
pub async fn run(cfg: CaptureConfig, cancel: CancellationToken) -> Result<(), CaptureError> {
    Capture::open(cfg).await?.stream(cancel).await
}

/// An open capture stream: its topics exist and its transactional producer
/// has fenced every earlier owner.
///
/// # Fencing
///
/// Open once per owner and retry only [`Capture::stream`]: the producer is
/// kept across retries, so an owner that was fenced by a successor fails its
/// next commit and stops, instead of re-initialising and fencing the
/// successor in turn.
pub struct Capture {
    cfg: CaptureConfig,
    publisher: Publisher,
}

impl Capture {
    /// Create the topics if absent and take ownership of the stream.
    pub async fn open(cfg: CaptureConfig) -> Result<Self, CaptureError> {
        publish::ensure_topics(&cfg.brokers, &cfg.id, cfg.partitions).await?;
        let publisher = Publisher::new(&cfg.brokers, cfg.id.clone(), cfg.partition).await?;
        Ok(Capture { cfg, publisher })
    }

    /// Stream from the checkpoint until `cancel` fires or an error.
    pub async fn stream(&self, cancel: CancellationToken) -> Result<(), CaptureError> {
        stream(&self.cfg, &self.publisher, cancel).await
    }
}

async fn stream(
    cfg: &CaptureConfig,
    publisher: &Publisher,
    cancel: CancellationToken,
) -> Result<(), CaptureError> {
    // The producer fenced earlier owners when it was created, so the
    // checkpoint read now cannot be overtaken by a zombie's commit.
    let start = match publish::read_checkpoint(&cfg.brokers, &cfg.id).await? {
        Some(p) => p,
        None => match &cfg.start_position {
            Some(p) => p.clone(),
            None => {
                let mut conn = mysql_async::Conn::new(cfg.reader.opts.clone())
                    .await
                    .map_err(|e| CaptureError::transient("connect to source", e))?;
                BinlogReader::current_position(&mut conn).await?
            }
        },
    };
    let mut position = MariadbGtidList::from_str(&start)
        .map_err(|e| CaptureError::Definite(format!("bad start position '{start}': {e}")))?;
    tracing::info!(stream = %cfg.id.transactional_id(), position = %position, "capture starting");

    // Table definitions first: a missing table, one without a primary key
    // or an unsupported column type stops here, before anything is published.
    let mut codecs = load_codecs(cfg).await?;

    let (tx, mut rx) = mpsc::channel::<BinlogItem>(1024);
    let reader = cfg.reader.clone();
    let reader_cancel = cancel.child_token();
    let start_text = start.clone();
    let mut reader_task =
        tokio::spawn(async move { reader.run(&start_text, tx, reader_cancel).await });

    let mut batch: Vec<SourceTxn> = Vec::new();
    let mut ticker = tokio::time::interval(cfg.batch_interval);
    loop {
        let can_accept = batch.len() < cfg.batch_max_txns;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            res = &mut reader_task => {
                // Publish what was framed before the reader stopped.
                flush(publisher, &codecs, &mut batch, &mut position).await?;
                return match res {
                    Ok(r) => r,
                    Err(e) => Err(CaptureError::Transient(format!("binlog reader task: {e}"))),
                };
            }
            Some(item) = rx.recv(), if can_accept => match item {
                BinlogItem::Txn(txn) if txn.ddl.is_some() => {
                    // Everything before the DDL is published first.
                    flush(publisher, &codecs, &mut batch, &mut position).await?;
                    on_ddl(cfg, &mut codecs, &txn).await?;
                    batch.push(txn);
                }
                BinlogItem::Txn(txn) => batch.push(txn),
                BinlogItem::Heartbeat => {
                    // Caught up with the source: publish what is pending, or
                    // a heartbeat so that lag stays measurable when idle.
                    if batch.is_empty() {
                        publisher.publish_heartbeat(&position.to_string()).await?;
                    } else {
                        flush(publisher, &codecs, &mut batch, &mut position).await?;
                    }
                }
            },
            _ = ticker.tick() => flush(publisher, &codecs, &mut batch, &mut position).await?,
        }
        if batch.len() >= cfg.batch_max_txns {
            flush(publisher, &codecs, &mut batch, &mut position).await?;
        }
    }
    // Drain: everything framed so far is published before we stop.
    while let Ok(item) = rx.try_recv() {
        if let BinlogItem::Txn(txn) = item {
            batch.push(txn);
        }
    }
    flush(publisher, &codecs, &mut batch, &mut position).await?;
    reader_task.abort();
    Ok(())
}

/// Apply the `on_ddl` policy to a DDL transaction (everything before it is
/// already published): stop with a definite error, or reload the changed
/// tables' definitions and go on.
async fn on_ddl(
    cfg: &CaptureConfig,
    codecs: &mut Codecs,
    txn: &SourceTxn,
) -> Result<(), CaptureError> {
    let Some(ddl) = &txn.ddl else { return Ok(()) };
    let names: Vec<String> = ddl.tables.iter().map(|(d, t)| format!("{d}.{t}")).collect();
    let mut statement: String = ddl.statement.chars().take(300).collect();
    if statement.len() < ddl.statement.len() {
        statement.push('…');
    }
    match cfg.on_ddl {
        OnDdl::Stop => Err(CaptureError::Definite(format!(
            "DDL on moved table {} at GTID {}: `{statement}` — on_ddl=stop halts the stream before it. \
             Make the same change on the target, then restart with on_ddl=ignore (or re-create the workflow)",
            names.join(", "),
            txn.gtid
        ))),
        OnDdl::Ignore => {
            tracing::warn!(gtid = %txn.gtid, tables = %names.join(","), statement = %statement,
                "DDL on moved table; on_ddl=ignore: reloading its definition");
            let mut conn = mysql_async::Conn::new(cfg.reader.opts.clone())
                .await
                .map_err(|e| CaptureError::transient("connect to source", e))?;
            for (db, table) in &ddl.tables {
                if !cfg.reader.tables.contains(&(db.clone(), table.clone())) {
                    continue;
                }
                match schema::load_table_schema(&mut conn, db, table).await {
                    Ok(def) => {
                        let codec = EventCodec::new(def)
                            .map_err(|e| CaptureError::Definite(format!("Avro schema of {db}.{table}: {e}")))?;
                        codecs.insert((db.clone(), table.clone()), codec);
                    }
                    // Dropped or renamed away: its events stop; keep the old codec.
                    Err(e) => tracing::warn!(table = %format!("{db}.{table}"), error = %e, "table gone after DDL"),
                }
            }
            let _ = conn.disconnect().await;
            Ok(())
        }
    }
}

/// Check the source account and load every captured table's definition.
async fn load_codecs(cfg: &CaptureConfig) -> Result<Codecs, CaptureError> {
    let mut conn = mysql_async::Conn::new(cfg.reader.opts.clone())
        .await
        .map_err(|e| CaptureError::transient("connect to source", e))?;
    schema::check_privileges(&mut conn).await?;
    let mut codecs = Codecs::new();
    for (db, table) in &cfg.reader.tables {
        let def = schema::load_table_schema(&mut conn, db, table).await?;
        let codec = EventCodec::new(def)
            .map_err(|e| CaptureError::Definite(format!("Avro schema of {db}.{table}: {e}")))?;
        codecs.insert((db.clone(), table.clone()), codec);
    }
    let _ = conn.disconnect().await;
    Ok(codecs)
}

async fn flush(
    publisher: &Publisher,
    codecs: &Codecs,
    batch: &mut Vec<SourceTxn>,
    position: &mut MariadbGtidList,
) -> Result<(), CaptureError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut next = position.clone();
    for t in batch.iter() {
        let g = MariadbGtid::from_str(&t.gtid).map_err(|e| {
            CaptureError::Definite(format!("bad GTID '{}' from binlog: {e}", t.gtid))
        })?;
        next.update(g);
    }
    let sent = publisher.publish(batch, &next.to_string(), codecs).await?;
    tracing::debug!(txns = batch.len(), events = sent, position = %next, "published");
    *position = next;
    batch.clear();
    Ok(())
}
