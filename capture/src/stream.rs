//! The stream loop: capture's checkpoint, binlog reader, copier and
//! transactional publisher, from start to shutdown.

use std::sync::Arc;
use std::time::Duration;

use revdoor_core::avro::EventCodec;
use revdoor_core::gtid::{Position, StoredPosition};
use revdoor_core::names::StreamId;
use revdoor_core::progress::Progress;
use revdoor_core::workflow::now_ms;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::binlog::{self, BinlogItem, BinlogReader, ItemReceiver, SourceTxn, Watermark};
use crate::copy::{estimate_rows, report_copy, Chunk, Copier, CopyState, Window};
use crate::ddl::OnDdl;
use crate::publish::{self, Codecs, KafkaTxn, Publisher, TxnEncoder};
use crate::route::Router;
use crate::tablemap::{Collations, TableMap};
use crate::{CaptureError, Checkpoint};
use revdoor_mysql::{positions, preflight, tables};

/// Everything one capture stream needs.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub brokers: String,
    pub id: StreamId,
    /// Which partition each row change goes to.
    pub router: Router,
    pub partitions: i32,
    pub reader: BinlogReader,
    /// Used when no checkpoint exists; `None` = the source's current position.
    pub start_position: Option<StoredPosition>,
    /// Close a Kafka transaction after this many source transactions…
    pub batch_max_txns: usize,
    /// …or after this long.
    pub batch_interval: Duration,
    /// What a DDL on a captured table does to the stream.
    pub on_ddl: OnDdl,
    /// Copy the tables' existing rows first (when no checkpoint exists).
    pub copy: bool,
    /// Rows per copy chunk.
    pub copy_chunk_rows: usize,
    /// The largest message the producer sends (`message.max.bytes`).
    pub max_message_bytes: u32,
    /// Live progress, for status reports.
    pub progress: Arc<Progress>,
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
        revdoor_kafka::ensure_topics(
            &cfg.brokers,
            &cfg.id.topic(),
            &cfg.id.offsets_topic(),
            cfg.partitions,
        )
        .await?;
        let publisher = Publisher::new(
            &cfg.brokers,
            cfg.id.clone(),
            cfg.router.clone(),
            cfg.max_message_bytes,
        )
        .await?;
        Ok(Capture { cfg, publisher })
    }

    /// Stream from the checkpoint until `cancel` fires or an error.
    pub async fn stream(&self, cancel: CancellationToken) -> Result<(), CaptureError> {
        // A Kafka transaction a failed attempt left open is aborted first.
        self.publisher.abort_open().await;
        Stream::start(&self.cfg, &self.publisher, cancel)
            .await?
            .run()
            .await
    }
}

/// One run of [`Capture::stream`], from its checkpoint until `cancel` fires,
/// the reader stops or an error; its state lives in the fields, one method
/// per step of the loop.
struct Stream<'a> {
    cfg: &'a CaptureConfig,
    publisher: &'a Publisher,
    cancel: CancellationToken,
    /// The captured tables' codecs: one per table-map definition met, and
    /// the tables as `information_schema` shows them (reloaded after a DDL).
    codecs: Codecs,
    /// The source's collations, to read table maps' character columns.
    collations: Collations,
    /// The GTID position published so far.
    position: Position,
    /// Copy progress, published with every checkpoint; `None` without copy.
    copy_state: Option<CopyState>,
    /// Watermarks below this belong to an earlier run.
    first_seq: u64,
    /// The copier's chunks, and the acks that let it read the next one.
    chunk_rx: mpsc::Receiver<Chunk>,
    ack_tx: mpsc::Sender<()>,
    copier_task: Option<JoinHandle<Result<(), CaptureError>>>,
    /// Between a low and a high watermark of this run.
    window: Option<Window>,
    rx: ItemReceiver,
    reader_task: JoinHandle<Result<(), CaptureError>>,
    /// Source transactions framed, not yet published.
    batch: Vec<SourceTxn>,
    /// A big source transaction being streamed into its own Kafka
    /// transaction (DESIGN §3 "Framing": memory stays bounded).
    open: Option<Streaming>,
    ticker: Interval,
}

/// Whether the loop checks for a due batch after a step, or goes straight
/// to the next select (where a step ends early).
#[derive(PartialEq)]
enum After {
    CheckBatch,
    Continue,
}

impl<'a> Stream<'a> {
    /// Resume from the checkpoint: load the tables' definitions, start the
    /// copier (if copying) and the binlog reader.
    async fn start(
        cfg: &'a CaptureConfig,
        publisher: &'a Publisher,
        cancel: CancellationToken,
    ) -> Result<Self, CaptureError> {
        // The producer fenced earlier owners when it was created, so the
        // checkpoint read now cannot be overtaken by a zombie's commit.
        let checkpoint = publish::read_checkpoint(&cfg.brokers, &cfg.id)
            .await?
            .map(|c| {
                Checkpoint::parse(&c).map_err(|e| {
                    CaptureError::Definite(format!("stored checkpoint does not load: {e}"))
                })
            })
            .transpose()?;
        let mut copy_state = match &checkpoint {
            Some(c) => c.copy.clone(),
            None => cfg.copy.then(CopyState::default),
        };
        let start = start_position(cfg, checkpoint.map(|c| c.position)).await?;
        let position = start.position().clone();
        tracing::info!(stream = %cfg.id.transactional_id(), position = %position, "capture starting");

        // Table definitions first: a missing table, one without a primary key
        // or an unsupported column type stops here, before anything is published.
        let (codecs, collations) = load_codecs(cfg).await?;

        // Copy phase: a copier task reads chunks between watermarks.
        if let Some(state) = copy_state.as_mut() {
            for t in codecs.tables() {
                state
                    .tables
                    .entry(format!("{}.{}", t.db, t.table))
                    .or_default();
            }
        }
        let copying = copy_state.as_ref().is_some_and(|c| !c.done());
        if copying {
            let total = estimate_rows(&cfg.reader).await;
            publisher.metrics.copy_estimated.set(total as f64);
            cfg.progress.update(|p| p.copy_total = total);
        }
        report_copy(&cfg.progress, copy_state.as_ref());
        let first_seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        let (chunk_tx, chunk_rx) = mpsc::channel::<Chunk>(1);
        let (ack_tx, ack_rx) = mpsc::channel::<()>(1);
        let copier_task = if let (true, Some(state)) = (copying, copy_state.clone()) {
            let mut tables: Vec<_> = codecs.tables().cloned().collect();
            tables.sort_by(|a, b| (&a.db, &a.table).cmp(&(&b.db, &b.table)));
            let copier = Copier {
                opts: cfg.reader.opts.clone(),
                stream: cfg.id.transactional_id(),
                chunk_rows: cfg.copy_chunk_rows,
                tables,
                first_seq,
            };
            let c = cancel.child_token();
            tracing::info!(stream = %cfg.id.transactional_id(), "copy phase running");
            Some(tokio::spawn(
                copier
                    .run(state, chunk_tx, ack_rx, c)
                    .instrument(tracing::info_span!("copier")),
            ))
        } else {
            drop((chunk_tx, ack_rx));
            None
        };

        let (tx, rx) = binlog::item_queue(1024);
        let mut reader = cfg.reader.clone();
        if copying {
            reader.watermark_stream = Some(cfg.id.transactional_id());
        }
        let reader_cancel = cancel.child_token();
        let start = start.clone();
        let reader_task = tokio::spawn(
            async move { reader.run(start.position(), tx, reader_cancel).await }
                .instrument(tracing::info_span!("binlog_reader")),
        );

        Ok(Stream {
            cfg,
            publisher,
            cancel,
            codecs,
            collations,
            position,
            copy_state,
            first_seq,
            chunk_rx,
            ack_tx,
            copier_task,
            window: None,
            rx,
            reader_task,
            batch: Vec::new(),
            open: None,
            ticker: tokio::time::interval(cfg.batch_interval),
        })
    }

    /// The loop: one step per item the reader queued, per tick, until
    /// `cancel` fires (then [`Stream::shutdown`]) or the reader stops.
    async fn run(mut self) -> Result<(), CaptureError> {
        let r = match self.steps().await {
            Ok(true) => return self.shutdown().await,
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        if r.is_err() {
            // Leave nothing half-done: a Kafka transaction the error left
            // open would hold back every read_committed reader of the
            // topics it wrote until it timed out.
            if let Some(s) = self.open.take() {
                self.publisher.abort(s.k).await;
            }
            self.publisher.abort_open().await;
        }
        r
    }

    /// The loop's steps: `Ok(true)` when `cancel` fired (shut down next),
    /// `Ok(false)` when the reader stopped without an error.
    async fn steps(&mut self) -> Result<bool, CaptureError> {
        loop {
            let can_accept = self.batch.len() < self.cfg.batch_max_txns
                && batch_rows(&self.batch) < BATCH_MAX_ROWS;
            let after = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Ok(true),
                res = &mut self.reader_task => return self.reader_stopped(res).await.map(|()| false),
                Some(item) = self.rx.recv(), if can_accept => self.item(item).await?,
                _ = self.ticker.tick() => {
                    self.flush().await?;
                    After::CheckBatch
                }
            };
            if after == After::Continue {
                continue;
            }
            // Publish when the batch is full, or as soon as the reader has
            // nothing more queued: at low rates each transaction goes out at
            // once (latency = one Kafka commit), at high rates transactions
            // pile up while a commit is in flight and go out together.
            if self.batch.len() >= self.cfg.batch_max_txns
                || batch_rows(&self.batch) >= BATCH_MAX_ROWS
                || (!self.batch.is_empty() && self.rx.is_empty())
            {
                self.flush().await?;
            }
        }
    }

    /// The reader task ended: publish what was framed before the reader
    /// stopped and return its outcome.
    async fn reader_stopped(
        &mut self,
        res: Result<Result<(), CaptureError>, JoinError>,
    ) -> Result<(), CaptureError> {
        // Publish what was framed before the reader stopped (a
        // transaction still being streamed cannot be finished).
        if let Some(s) = self.open.take() {
            self.publisher.abort(s.k).await;
        }
        self.flush().await?;
        match res {
            Ok(r) => r,
            Err(e) => Err(CaptureError::Transient(format!("binlog reader task: {e}"))),
        }
    }

    /// One item from the reader.
    async fn item(&mut self, item: BinlogItem) -> Result<After, CaptureError> {
        if let BinlogItem::Part(txn) | BinlogItem::Txn(txn) = &item {
            self.admit(txn).await?;
        }
        match item {
            BinlogItem::Part(part) => self.big_txn_part(part).await,
            BinlogItem::Txn(txn) if self.open.is_some() => self.big_txn_end(txn).await,
            BinlogItem::Heartbeat if self.open.is_some() => Ok(After::CheckBatch),
            BinlogItem::Txn(txn) if txn.ddl.is_some() => self.ddl_txn(txn).await,
            BinlogItem::Txn(txn) if txn.marker => self.marker_txn(txn).await,
            BinlogItem::Txn(txn) => self.source_txn(txn).await,
            BinlogItem::Heartbeat => self.heartbeat().await,
        }
    }

    /// Build the codec of every table-map definition of `txn` not met yet
    /// (see [`crate::tablemap`]): the definition of the rows' time, refined
    /// by `information_schema` where a column still matches it — read
    /// again for the table when what the stream holds does not match.
    async fn admit(&mut self, txn: &SourceTxn) -> Result<(), CaptureError> {
        let mut last: Option<&Arc<TableMap>> = None;
        for ch in &txn.changes {
            let Some(map) = &ch.map else { continue };
            if last.is_some_and(|l| Arc::ptr_eq(l, map)) || self.codecs.mapped(map).is_some() {
                last = Some(map);
                continue;
            }
            last = Some(map);
            let mut now = self
                .codecs
                .current(&map.db, &map.table)
                .map(|c| c.table().clone());
            if !now
                .as_ref()
                .is_some_and(|n| map.matched_by(&self.collations, n))
            {
                // A definition the stream has not seen: the table as it is
                // now may know it (a DDL the stream is about to pass).
                let mut conn = mysql_async::Conn::new(self.cfg.reader.opts.clone())
                    .await
                    .map_err(|e| CaptureError::transient("connect to source", e))?;
                if let Ok(def) = tables::load_table_schema(&mut conn, &map.db, &map.table).await {
                    now = Some(def);
                }
                let _ = conn.disconnect().await;
            }
            let def = map
                .definition(&self.collations, now.as_ref())
                .map_err(|e| CaptureError::Definite(format!("table map in {}: {e}", txn.gtid)))?;
            let codec = EventCodec::new(def).map_err(|e| {
                CaptureError::Definite(format!(
                    "Avro schema of {}.{} in {}: {e}",
                    map.db, map.table, txn.gtid
                ))
            })?;
            self.cfg
                .router
                .check_table(&codec)
                .map_err(|e| CaptureError::Definite(format!("table map in {}: {e}", txn.gtid)))?;
            tracing::info!(table = %format!("{}.{}", map.db, map.table), gtid = %txn.gtid,
                fingerprint = %format!("{:016x}", codec.envelope().fingerprint()),
                "table definition from the binlog's table map");
            self.codecs.add_mapped(Arc::clone(map), codec);
        }
        Ok(())
    }

    /// A part of a big source transaction: the first opens its Kafka
    /// transaction, each is sent into it.
    async fn big_txn_part(&mut self, part: SourceTxn) -> Result<After, CaptureError> {
        if self.open.is_none() {
            // Everything before it goes out first.
            self.flush().await?;
            let k = self.publisher.begin().await?;
            tracing::info!(gtid = %part.gtid, "streaming a big source transaction");
            self.open = Some(Streaming {
                enc: TxnEncoder::new(&part),
                k,
            });
        }
        if let Some(w) = self.window.as_mut() {
            w.note_changes(&self.codecs, &part);
        }
        let s = streaming(&mut self.open, &part.gtid)?;
        let mut part = part;
        let changes = std::mem::take(&mut part.changes);
        self.publisher
            .send_changes(&mut s.k, &mut s.enc, changes, &self.codecs)
            .await?;
        Ok(After::CheckBatch)
    }

    /// The end of the big source transaction being streamed: its last
    /// changes and its checkpoint commit its Kafka transaction.
    async fn big_txn_end(&mut self, txn: SourceTxn) -> Result<After, CaptureError> {
        // The end of the transaction being streamed.
        streaming(&mut self.open, &txn.gtid)?;
        let Some(mut s) = self.open.take() else {
            return Ok(After::Continue);
        };
        if txn.looped {
            // revdoor's own apply after all (its checkpoint row
            // comes last): nothing of it becomes visible.
            self.publisher.metrics.loop_filtered.increment(1);
            self.publisher.abort(s.k).await;
            self.batch.push(txn);
            return Ok(After::Continue);
        }
        if let Some(w) = self.window.as_mut() {
            w.note_changes(&self.codecs, &txn);
        }
        let mut txn = txn;
        let changes = std::mem::take(&mut txn.changes);
        self.publisher
            .send_changes(&mut s.k, &mut s.enc, changes, &self.codecs)
            .await?;
        self.publisher
            .finish_txn(&mut s.k, &mut s.enc, &self.codecs)
            .await?;
        let next = advanced(&self.position, std::slice::from_ref(&txn))?;
        let cp = Checkpoint {
            position: StoredPosition::from(next.clone()),
            copy: self.copy_state.clone(),
        };
        let hb = txn.marker.then_some(&cp.position);
        let sent = self.publisher.commit_with(s.k, &cp.to_text(), hb).await?;
        tracing::info!(gtid = %txn.gtid, events = sent, "big source transaction published");
        self.cfg.progress.update(|p| {
            p.position = cp.position;
            p.events += sent as u64;
            p.source_ts_ms = p.source_ts_ms.max(u64::from(txn.timestamp) * 1000);
        });
        self.position = next;
        Ok(After::CheckBatch)
    }

    /// A DDL on a captured table: the `on_ddl` policy between what came
    /// before and what comes after.
    async fn ddl_txn(&mut self, txn: SourceTxn) -> Result<After, CaptureError> {
        // Everything before the DDL is published first.
        self.flush().await?;
        let mut txn = txn;
        on_ddl(self.cfg, &mut self.codecs, &mut txn).await?;
        self.batch.push(txn);
        if self.cfg.on_ddl == OnDdl::Exec {
            // The DDL record goes out with the checkpoint that
            // passes it, before any row in the new shape.
            self.flush().await?;
        }
        Ok(After::CheckBatch)
    }

    /// A transaction that changed `_revdoor.fences` (a switch fenced or
    /// unfenced this server).
    async fn marker_txn(&mut self, txn: SourceTxn) -> Result<After, CaptureError> {
        // Publish everything up to the mark and a heartbeat at
        // its position in one Kafka transaction.
        self.batch.push(txn);
        self.flush_with(true).await?;
        self.cfg.progress.update(|p| p.source_ts_ms = now_ms());
        Ok(After::CheckBatch)
    }

    /// An ordinary source transaction, batched; a copy watermark of this
    /// run opens a window (low) or closes it with its chunk (high).
    async fn source_txn(&mut self, txn: SourceTxn) -> Result<After, CaptureError> {
        if txn.looped {
            self.publisher.metrics.loop_filtered.increment(1);
        }
        if let Some(w) = self.window.as_mut() {
            w.note_changes(&self.codecs, &txn);
        }
        let mark = txn.watermark.filter(|m| m.seq >= self.first_seq);
        self.batch.push(txn);
        match mark {
            Some(Watermark { seq, high: false }) => self.window = Some(Window::new(seq)),
            Some(Watermark { seq, high: true })
                if self.window.as_ref().is_some_and(|w| w.seq == seq) =>
            {
                let Some(w) = self.window.take() else {
                    return Ok(After::Continue);
                };
                self.copy_chunk(w, seq).await?;
            }
            _ => {}
        }
        Ok(After::CheckBatch)
    }

    /// At the high watermark `seq`: the copier's chunk joins the batch
    /// without the rows changed in window `w`, and the copier goes on.
    async fn copy_chunk(&mut self, w: Window, seq: u64) -> Result<(), CaptureError> {
        let chunk =
            self.chunk_rx.recv().await.ok_or_else(|| {
                CaptureError::Transient("the copier stopped before its chunk".into())
            })?;
        if chunk.seq != seq {
            return Err(CaptureError::Transient(format!(
                "copy chunk {} arrived for watermark {seq}",
                chunk.seq
            )));
        }
        let gtid = self
            .batch
            .last()
            .map(|t| t.gtid.clone())
            .unwrap_or_default();
        let read = chunk.rows.len();
        let (txn, kept) = w.chunk_txn(&self.codecs, chunk, gtid, self.copy_state.as_mut());
        let m = &self.publisher.metrics;
        m.copy_rows.increment(kept as u64);
        m.copy_window_dropped
            .increment(read.saturating_sub(kept) as u64);
        tracing::debug!(rows = kept, "copy chunk published at its high watermark");
        self.batch.push(txn);
        report_copy(&self.cfg.progress, self.copy_state.as_ref());
        if self.copy_state.as_ref().is_some_and(CopyState::done) {
            tracing::info!(stream = %self.cfg.id.transactional_id(), "copy phase complete");
        }
        let _ = self.ack_tx.send(()).await;
        Ok(())
    }

    /// The reader caught up with the source.
    async fn heartbeat(&mut self) -> Result<After, CaptureError> {
        // Caught up with the source: publish what is pending, or
        // a heartbeat so that lag stays measurable when idle.
        if self.batch.is_empty() {
            let cp = Checkpoint {
                position: StoredPosition::from(self.position.clone()),
                copy: self.copy_state.clone(),
            };
            self.publisher
                .publish_heartbeat(&cp.position, &cp.to_text())
                .await?;
            self.cfg.progress.update(|p| {
                p.position = cp.position.clone();
                p.source_ts_ms = now_ms();
            });
        } else {
            self.flush().await?;
        }
        Ok(After::CheckBatch)
    }

    /// `cancel` fired: publish what was framed, stop the tasks.
    async fn shutdown(mut self) -> Result<(), CaptureError> {
        // Drain: everything framed so far is published before we stop — unless
        // a big transaction is being streamed: it cannot be finished now, so
        // it is aborted and what follows it is read again on restart.
        if let Some(s) = self.open.take() {
            self.publisher.abort(s.k).await;
        } else {
            while let Some(item) = self.rx.try_recv() {
                match item {
                    BinlogItem::Txn(txn) => {
                        self.admit(&txn).await?;
                        self.batch.push(txn);
                    }
                    // The start of a big transaction: it and what follows are
                    // read again on restart.
                    BinlogItem::Part(_) => break,
                    BinlogItem::Heartbeat => {}
                }
            }
        }
        self.flush().await?;
        self.reader_task.abort();
        if let Some(t) = &self.copier_task {
            t.abort();
        }
        Ok(())
    }

    /// Publish the batch in one Kafka transaction with its checkpoint.
    async fn flush(&mut self) -> Result<(), CaptureError> {
        self.flush_with(false).await
    }

    /// [`Self::flush`], with a heartbeat at the new position in the same Kafka
    /// transaction when `heartbeat`.
    async fn flush_with(&mut self, heartbeat: bool) -> Result<(), CaptureError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let newest_ts = self
            .batch
            .iter()
            .map(|t| u64::from(t.timestamp))
            .max()
            .unwrap_or(0)
            * 1000;
        let next = advanced(&self.position, &self.batch)?;
        let checkpoint = Checkpoint {
            position: StoredPosition::from(next.clone()),
            copy: self.copy_state.clone(),
        };
        let hb = heartbeat.then_some(&checkpoint.position);
        let sent = self
            .publisher
            .publish(&mut self.batch, &checkpoint.to_text(), &self.codecs, hb)
            .await?;
        tracing::debug!(txns = self.batch.len(), events = sent, position = %next, "published");
        self.cfg.progress.update(|p| {
            p.position = checkpoint.position;
            p.events += sent as u64;
            p.source_ts_ms = p.source_ts_ms.max(newest_ts);
        });
        self.position = next;
        self.batch.clear();
        Ok(())
    }
}

/// Where this run starts reading: the checkpoint's position (or a later
/// one a switch recorded), else `start_position`, else the source's
/// current position.
async fn start_position(
    cfg: &CaptureConfig,
    checkpoint: Option<StoredPosition>,
) -> Result<StoredPosition, CaptureError> {
    Ok(match checkpoint {
        // A switch recorded a later position to resume from: everything
        // between was the other direction's apply (dropped by the loop
        // filter) while this side was fenced.
        Some(p) => match &cfg.start_position {
            Some(s) if s != &p && s.includes(&p) => {
                tracing::info!(stream = %cfg.id.transactional_id(), checkpoint = %p, resume = %s,
                    "skipping ahead to the position recorded by the last switch");
                s.clone()
            }
            _ => p,
        },
        None => match &cfg.start_position {
            Some(p) => p.clone(),
            None => {
                let mut conn = mysql_async::Conn::new(cfg.reader.opts.clone())
                    .await
                    .map_err(|e| CaptureError::transient("connect to source", e))?;
                positions::server_position(&mut conn).await?
            }
        },
    })
}

/// Apply the `on_ddl` policy to a DDL transaction (everything before it is
/// already published): stop with a definite error, or reload the changed
/// tables' definitions and go on (with `exec`, the DDL is marked to be
/// published for the destinations to run).
async fn on_ddl(
    cfg: &CaptureConfig,
    codecs: &mut Codecs,
    txn: &mut SourceTxn,
) -> Result<(), CaptureError> {
    let Some(ddl) = &mut txn.ddl else {
        return Ok(());
    };
    ddl.exec = cfg.on_ddl == OnDdl::Exec;
    let ddl = &*ddl;
    let names: Vec<String> = ddl.tables.iter().map(|(d, t)| format!("{d}.{t}")).collect();
    let mut statement: String = ddl.statement.chars().take(300).collect();
    if statement.len() < ddl.statement.len() {
        statement.push('…');
    }
    match cfg.on_ddl {
        OnDdl::Stop => Err(CaptureError::Definite(format!(
            "DDL on moved table {} at GTID {}: `{statement}` — on_ddl=stop halts the stream before it. \
             Make the same change on every target, then `revdoor workflow set {wf} --on-ddl ignore`; \
             or `revdoor workflow set {wf} --on-ddl exec` to have revdoor run it on the targets",
            names.join(", "),
            txn.gtid,
            wf = cfg.id.workflow,
        ))),
        OnDdl::Ignore | OnDdl::Exec => {
            if cfg.on_ddl == OnDdl::Exec {
                tracing::info!(gtid = %txn.gtid, tables = %names.join(","), statement = %statement,
                    "DDL on moved table; on_ddl=exec: publishing it for the destinations, reloading its definition");
            } else {
                tracing::warn!(gtid = %txn.gtid, tables = %names.join(","), statement = %statement,
                    "DDL on moved table; on_ddl=ignore: reloading its definition");
            }
            let mut conn = mysql_async::Conn::new(cfg.reader.opts.clone())
                .await
                .map_err(|e| CaptureError::transient("connect to source", e))?;
            for (db, table) in &ddl.tables {
                if !cfg.reader.tables.contains(&(db.clone(), table.clone())) {
                    continue;
                }
                match tables::load_table_schema(&mut conn, db, table).await {
                    Ok(def) => {
                        let codec = EventCodec::new(def)
                            .map_err(|e| CaptureError::Definite(format!("Avro schema of {db}.{table}: {e}")))?;
                        cfg.router.check_table(&codec).map_err(|e| {
                            CaptureError::Definite(format!(
                                "after `{statement}` at GTID {}: {e}",
                                txn.gtid
                            ))
                        })?;
                        codecs.set_current(codec);
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

/// Check the source account and load every captured table's definition
/// (as it is now: refused here if revdoor cannot carry it) and the
/// server's collations.
async fn load_codecs(cfg: &CaptureConfig) -> Result<(Codecs, Collations), CaptureError> {
    let mut conn = mysql_async::Conn::new(cfg.reader.opts.clone())
        .await
        .map_err(|e| CaptureError::transient("connect to source", e))?;
    preflight::check_privileges(&mut conn).await?;
    let mut codecs = Codecs::new();
    for (db, table) in &cfg.reader.tables {
        let def = tables::load_table_schema(&mut conn, db, table).await?;
        let codec = EventCodec::new(def)
            .map_err(|e| CaptureError::Definite(format!("Avro schema of {db}.{table}: {e}")))?;
        cfg.router.check_table(&codec)?;
        codecs.set_current(codec);
    }
    let collations = tables::load_collations(&mut conn).await?;
    let _ = conn.disconnect().await;
    Ok((codecs, collations))
}

/// A big source transaction on its way out: its Kafka transaction is open
/// until the source transaction's commit is read.
struct Streaming {
    k: KafkaTxn,
    enc: TxnEncoder,
}

/// The transaction being streamed, which must be `gtid`.
fn streaming<'s>(
    open: &'s mut Option<Streaming>,
    gtid: &str,
) -> Result<&'s mut Streaming, CaptureError> {
    let Some(s) = open.as_mut() else {
        return Err(CaptureError::Transient(format!(
            "binlog framing: the end of {gtid} without its start"
        )));
    };
    if s.enc.gtid() != gtid {
        return Err(CaptureError::Transient(format!(
            "binlog framing: {gtid} arrived while {} was still being streamed",
            s.enc.gtid()
        )));
    }
    Ok(s)
}

/// A Kafka transaction is committed once its source transactions hold this
/// many row changes (or `batch_max_txns` transactions): with
/// [`binlog::QUEUED_ROWS`] it bounds the rows capture holds.
const BATCH_MAX_ROWS: usize = 20_000;

fn batch_rows(batch: &[SourceTxn]) -> usize {
    batch.iter().map(|t| t.changes.len()).sum()
}

/// `position` with the GTIDs of `txns` added.
fn advanced(position: &Position, txns: &[SourceTxn]) -> Result<Position, CaptureError> {
    let mut next = position.clone();
    for t in txns {
        next.add_gtid(&t.gtid).map_err(|e| {
            CaptureError::Definite(format!("bad GTID '{}' from binlog: {e}", t.gtid))
        })?;
    }
    Ok(next)
}
