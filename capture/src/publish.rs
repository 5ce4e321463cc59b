//! Publishing source transactions to Kafka, exactly once.
//!
//! Every batch of source transactions is one Kafka transaction holding
//! (a) each transaction's row events, contiguous, on the stream's partition and
//! (b) the capture checkpoint — the GTID position published so far — on the
//! compacted `revdoor.<workflow>.offsets` topic, keyed by direction and origin
//! shard. Both commit or neither does, so a restarted capture that resumes
//! from the checkpoint neither skips nor repeats a transaction for a
//! `read_committed` consumer.
//!
//! # Schema records
//!
//! A schema record goes to the shared `revdoor.schemas` *outside* the Kafka
//! transaction, through an idempotent producer of its own, and is
//! acknowledged before the first event that uses it is sent — so before
//! that event can commit. A Kafka transaction of one stream (a capture that
//! died or hangs mid-transaction, or a big source transaction streamed for
//! minutes) then never holds the registry back from other workflows'
//! `read_committed` readers. A record is keyed by its fingerprint and its
//! body follows from it: one sent again (after a restart) or left by an
//! aborted transaction is the same record, which readers and compaction
//! keep once.
//!
//! # Fencing
//!
//! `transactional.id = revdoor.<workflow>.<direction>.<origin shard>`. A new
//! producer with the same id bumps the epoch at `init_transactions`, after
//! which the old one's commits fail with a fatal fencing error.
//!
//! Blocking librdkafka transaction calls run on `spawn_blocking`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext,
    ThreadedProducer,
};
use rdkafka::{Message, Offset, TopicPartitionList};
use revdoor_core::event::{DdlEvent, Heartbeat, Op, DDL_HEADER, HEARTBEAT_HEADER};
use revdoor_core::gtid::StoredPosition;
use revdoor_core::names::StreamId;

use revdoor_core::avro::{EventCodec, EventRef};
use revdoor_core::registry::{fingerprint_key, SchemaRecord, SCHEMAS_TOPIC};

use std::collections::BTreeMap;

use revdoor_core::event::Row;

use crate::binlog::{RowChange, SourceTxn};
use crate::ddl::Ddl;
use crate::route::Router;
use crate::tablemap::TableMap;
use revdoor_core::sqltype::TableSchema;

/// One source transaction's changes by destination partition: the op and
/// images to publish, and the change they came from.
/// An open Kafka transaction of the publisher.
#[derive(Debug)]
pub struct KafkaTxn {
    now_ms: u64,
    sent: usize,
    /// The last schema known to be published: events of one table in a
    /// row skip the look-up.
    checked_fp: Option<u64>,
    /// The largest row event sent in it above [`LARGE_EVENT_BYTES`]: its
    /// size and which row it is, named if the broker refuses it.
    largest: Option<(usize, String)>,
}

/// Events above this size (Kafka's default `max.message.bytes`) are
/// remembered by row, so a broker's refusal can name the row.
const LARGE_EVENT_BYTES: usize = 1_000_000;

/// One row change on its way out, held back until the next event of its
/// partition shows whether it is the source transaction's last there.
#[derive(Debug)]
struct Pending {
    op: Op,
    before: Option<Row>,
    after: Option<Row>,
    db: String,
    table: String,
    map: Option<Arc<TableMap>>,
}

#[derive(Debug, Default)]
struct PartitionSlot {
    /// Index of the next event sent to this partition.
    next: u32,
    held: Option<Pending>,
}

/// The events of one source transaction being sent (possibly over several
/// calls: a big transaction is streamed into its Kafka transaction as it is
/// read, DESIGN §3 "Framing").
#[derive(Debug)]
pub struct TxnEncoder {
    gtid: String,
    ts_sec: u32,
    partitions: BTreeMap<i32, PartitionSlot>,
}

impl TxnEncoder {
    pub fn new(txn: &SourceTxn) -> Self {
        TxnEncoder {
            gtid: txn.gtid.clone(),
            ts_sec: txn.timestamp,
            partitions: BTreeMap::new(),
        }
    }

    /// The source transaction this encodes.
    pub fn gtid(&self) -> &str {
        &self.gtid
    }
}

/// The codec of a row change (of its table map's definition, or of the
/// table as it is now for a copied row).
fn lookup<'c>(
    codecs: &'c Codecs,
    db: &str,
    table: &str,
    map: Option<&Arc<TableMap>>,
) -> Result<&'c EventCodec, CaptureError> {
    codecs
        .of_change(db, table, map)
        .ok_or_else(|| CaptureError::Definite(format!("no table definition for {db}.{table}")))
}

/// The codecs of the captured tables: one per definition.
///
/// A binlog row change is encoded with the definition of its table map
/// (`crate::tablemap`): a backlog older than a DDL keeps the definition of
/// its time. Copied rows, read as the tables are now, use the definition
/// from `information_schema`.
#[derive(Debug, Default)]
pub struct Codecs {
    /// Each table as `information_schema` shows it (at start, and after a
    /// DDL the stream passed).
    current: Vec<EventCodec>,
    /// One per table-map definition met in the binlog, newest last.
    mapped: Vec<(Arc<TableMap>, EventCodec)>,
}

impl Codecs {
    pub fn new() -> Self {
        Codecs::default()
    }

    /// The codec of `db.table` as `information_schema` shows it.
    pub fn current(&self, db: &str, table: &str) -> Option<&EventCodec> {
        self.current
            .iter()
            .find(|c| c.table().db == db && c.table().table == table)
    }

    /// Set the codec of a table as `information_schema` shows it.
    pub fn set_current(&mut self, codec: EventCodec) {
        let t = codec.table();
        match self
            .current
            .iter()
            .position(|c| c.table().db == t.db && c.table().table == t.table)
        {
            Some(i) => self.current[i] = codec,
            None => self.current.push(codec),
        }
    }

    /// The tables as `information_schema` shows them.
    pub fn tables(&self) -> impl Iterator<Item = &TableSchema> {
        self.current.iter().map(EventCodec::table)
    }

    /// The codec of a table-map definition, if already built.
    pub fn mapped(&self, map: &Arc<TableMap>) -> Option<&EventCodec> {
        // The same map is mostly the same `Arc` (the reader shares a
        // table's layout while its definition does not change).
        let rev = || self.mapped.iter().rev();
        rev()
            .find(|(m, _)| Arc::ptr_eq(m, map))
            .or_else(|| rev().find(|(m, _)| **m == **map))
            .map(|(_, c)| c)
    }

    /// Add the codec of a table-map definition.
    pub fn add_mapped(&mut self, map: Arc<TableMap>, codec: EventCodec) {
        self.mapped.push((map, codec));
    }

    /// The codec of a row change: its table map's, or (copied rows) the
    /// table's as it is now.
    pub fn of_change(
        &self,
        db: &str,
        table: &str,
        map: Option<&Arc<TableMap>>,
    ) -> Option<&EventCodec> {
        match map {
            Some(m) => self.mapped(m),
            None => self.current(db, table),
        }
    }
}
use crate::CaptureError;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Read this stream's last committed checkpoint (GTID position) from the
/// offsets topic, or `None` if it never published.
pub async fn read_checkpoint(brokers: &str, id: &StreamId) -> Result<Option<String>, CaptureError> {
    let brokers = brokers.to_string();
    let id = id.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| read_checkpoint_blocking(&brokers, &id)))
        .await
        .map_err(|e| CaptureError::Transient(format!("checkpoint reader task: {e}")))?
}

fn read_checkpoint_blocking(brokers: &str, id: &StreamId) -> Result<Option<String>, CaptureError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", id.checkpoint_reader_group())
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(|e| CaptureError::transient("create checkpoint consumer", e))?;
    let topic = id.offsets_topic();
    let (low, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .map_err(|e| CaptureError::transient("read offsets topic watermarks", e))?;
    if high <= low {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .map_err(|e| CaptureError::transient("assign offsets topic", e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| CaptureError::transient("assign offsets topic", e))?;
    let key = id.checkpoint_key();
    let mut last = None;
    // A read_committed consumer stops at the last stable offset; control
    // records and aborted data occupy offsets we never see, so stop when
    // the position reaches the high watermark.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pos = consumer
            .position()
            .ok()
            .and_then(|p| p.find_partition(&topic, 0).map(|e| e.offset()));
        if let Some(Offset::Offset(o)) = pos {
            if o >= high {
                break;
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(CaptureError::Transient(format!(
                "reading checkpoint from {topic} did not reach offset {high} within 30s"
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => return Err(CaptureError::transient("read offsets topic", e)),
            Some(Ok(m)) => {
                if m.key() == Some(key.as_bytes()) {
                    last = m.payload().map(|p| String::from_utf8_lossy(p).into_owned());
                }
            }
        }
    }
    Ok(last)
}

/// A transactional producer for one stream.
pub struct Publisher {
    /// Fingerprints whose schema records the broker has.
    published: Mutex<HashSet<u64>>,
    /// The idempotent, non-transactional producer of schema records.
    schema_producer: FutureProducer,
    /// A Kafka transaction is open (begun, not yet committed or aborted).
    in_txn: std::sync::atomic::AtomicBool,
    id: StreamId,
    producer: Arc<ThreadedProducer<Deliveries>>,
    router: Router,
    topic: String,
    offsets_topic: String,
    /// The origin shard's name, as every event carries it.
    shard: String,
    /// The producer's `message.max.bytes`.
    max_message_bytes: u32,
    /// The stream's metric handles.
    pub(crate) metrics: revdoor_core::metrics::CaptureMetrics,
}

impl Publisher {
    /// Create the producer and fence any previous owner of the stream.
    pub async fn new(
        brokers: &str,
        id: StreamId,
        router: Router,
        max_message_bytes: u32,
    ) -> Result<Self, CaptureError> {
        let mut config = ClientConfig::new();
        // librdkafka's own debug contexts (e.g. `eos,broker`), for diagnosis.
        if let Ok(debug) = std::env::var("REVDOOR_KAFKA_DEBUG") {
            config.set("debug", debug);
        }
        let producer: ThreadedProducer<Deliveries> = config
            .set("bootstrap.servers", brokers)
            .set("transactional.id", id.transactional_id())
            .set("enable.idempotence", "true")
            // A big source transaction is streamed into one Kafka
            // transaction as it is read: it must be read within this time
            // (the broker's default maximum is 15 minutes).
            .set("transaction.timeout.ms", "300000")
            .set("linger.ms", "5")
            // After a commit the broker writes the transaction markers;
            // the next transaction's AddPartitionsToTxn meanwhile gets
            // CONCURRENT_TRANSACTIONS and is retried after this backoff
            // (librdkafka's default of 100 ms put a floor of ~100 ms under
            // every commit, hence under replication lag and switch windows).
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "100")
            .set("compression.type", "lz4")
            .set("message.max.bytes", max_message_bytes.to_string())
            .create_with_context(Deliveries::default())
            .map_err(|e| CaptureError::transient("create Kafka producer", e))?;
        let producer = Arc::new(producer);
        let schema_producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .set("compression.type", "lz4")
            .set("message.max.bytes", max_message_bytes.to_string())
            .create()
            .map_err(|e| CaptureError::transient("create Kafka schema producer", e))?;
        let p = Arc::clone(&producer);
        blocking(move || p.init_transactions(TXN_TIMEOUT))
            .await
            .map_err(|e| classify_kafka("init transactions", e))?;
        Ok(Publisher {
            metrics: revdoor_core::metrics::CaptureMetrics::new(&id),
            published: Mutex::new(HashSet::new()),
            schema_producer,
            in_txn: std::sync::atomic::AtomicBool::new(false),
            topic: id.topic(),
            offsets_topic: id.offsets_topic(),
            shard: id.shard.to_string(),
            id,
            producer,
            router,
            max_message_bytes,
        })
    }

    /// Publish a batch of source transactions and the checkpoint (its
    /// stored text) in one Kafka transaction, encoding each row change with its table's
    /// codec; a schema this producer has not published yet goes to
    /// `revdoor.schemas` first (module doc, "Schema records"). Transactions
    /// without changes are dropped.
    pub async fn publish(
        &self,
        txns: &mut [SourceTxn],
        checkpoint: &str,
        codecs: &Codecs,
        heartbeat: Option<&StoredPosition>,
    ) -> Result<usize, CaptureError> {
        let mut k = self.begin().await?;
        for txn in txns.iter_mut() {
            if let Some(ddl) = txn.ddl.as_ref().filter(|d| d.exec) {
                self.send_ddl(txn, ddl).await?;
            }
            if txn.changes.is_empty() {
                continue;
            }
            let mut enc = TxnEncoder::new(txn);
            let changes = std::mem::take(&mut txn.changes);
            self.send_changes(&mut k, &mut enc, changes, codecs).await?;
            self.finish_txn(&mut k, &mut enc, codecs).await?;
        }
        self.commit_with(k, checkpoint, heartbeat).await
    }

    /// Begin a Kafka transaction.
    pub async fn begin(&self) -> Result<KafkaTxn, CaptureError> {
        let p = Arc::clone(&self.producer);
        blocking(move || p.begin_transaction())
            .await
            .map_err(|e| classify_kafka("begin transaction", e))?;
        self.producer.context().clear();
        self.in_txn.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(KafkaTxn {
            now_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            sent: 0,
            checked_fp: None,
            largest: None,
        })
    }

    /// Send row changes of the source transaction `enc` into the open Kafka
    /// transaction `k`: each made unambiguous and routed (a row whose shard
    /// changes becomes a delete there and an insert here). The last event
    /// per partition is held back until the next shows it is not the
    /// transaction's last ([`Publisher::finish_txn`] sends the rest).
    pub async fn send_changes(
        &self,
        k: &mut KafkaTxn,
        enc: &mut TxnEncoder,
        changes: Vec<RowChange>,
        codecs: &Codecs,
    ) -> Result<(), CaptureError> {
        let several = changes.len() > 1;
        for mut ch in changes {
            let codec = lookup(codecs, &ch.db, &ch.table, ch.map.as_ref())?;
            let bad = |e: String| {
                CaptureError::Definite(format!(
                    "row of {}.{} in {}: {e}",
                    ch.db, ch.table, enc.gtid
                ))
            };
            // Binlog values are ambiguous where the wire form depends on
            // the column type (SET bitmasks as bytes, YEAR 0 as 1900);
            // copied rows come from a SELECT, not the binlog.
            if ch.op != Op::Read {
                for row in [ch.before.as_mut(), ch.after.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    codec.from_binlog_row(row).map_err(|e| bad(e.to_string()))?;
                }
            }
            let part = |r: &Row| {
                self.router
                    .partition(codec, r, false)
                    .map_err(|e| bad(e.to_string()))
            };
            let (pb, pa) = (
                ch.before.as_ref().map(part).transpose()?,
                ch.after.as_ref().map(part).transpose()?,
            );
            match (ch.op, pb, pa) {
                (Op::Update, Some(pb), Some(pa)) if pb != pa => {
                    let moved = Pending {
                        op: Op::Create,
                        before: None,
                        after: ch.after.take(),
                        db: ch.db.clone(),
                        table: ch.table.clone(),
                        map: ch.map.clone(),
                    };
                    let gone = Pending {
                        op: Op::Delete,
                        before: ch.before.take(),
                        after: None,
                        db: ch.db,
                        table: ch.table,
                        map: ch.map,
                    };
                    self.hold(k, enc, pb, gone, codecs, several).await?;
                    self.hold(k, enc, pa, moved, codecs, several).await?;
                }
                (op, _, Some(p)) | (op, Some(p), None) => {
                    let ev = Pending {
                        op,
                        before: ch.before,
                        after: ch.after,
                        db: ch.db,
                        table: ch.table,
                        map: ch.map,
                    };
                    self.hold(k, enc, p, ev, codecs, several).await?;
                }
                (_, None, None) => {}
            }
        }
        Ok(())
    }

    /// Hold `ev` back as partition `p`'s latest event, sending the one it
    /// replaces (not the transaction's last there).
    async fn hold(
        &self,
        k: &mut KafkaTxn,
        enc: &mut TxnEncoder,
        p: i32,
        ev: Pending,
        codecs: &Codecs,
        several: bool,
    ) -> Result<(), CaptureError> {
        let slot = enc.partitions.entry(p).or_default();
        if let Some(prev) = slot.held.replace(ev) {
            let index = slot.next;
            slot.next += 1;
            self.send_event(k, enc, p, index, false, prev, codecs)
                .await?;
            if k.sent == 1 && several {
                fail::fail_point!(crate::failpoints::MID_TRANSACTION);
            }
        }
        Ok(())
    }

    /// Send the held-back event of each partition: the source
    /// transaction's last there.
    pub async fn finish_txn(
        &self,
        k: &mut KafkaTxn,
        enc: &mut TxnEncoder,
        codecs: &Codecs,
    ) -> Result<(), CaptureError> {
        let held: Vec<(i32, u32, Pending)> = enc
            .partitions
            .iter_mut()
            .filter_map(|(p, slot)| slot.held.take().map(|ev| (*p, slot.next, ev)))
            .collect();
        for (p, index, ev) in held {
            self.send_event(k, enc, p, index, true, ev, codecs).await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_event(
        &self,
        k: &mut KafkaTxn,
        enc: &mut TxnEncoder,
        partition: i32,
        index: u32,
        last: bool,
        ev: Pending,
        codecs: &Codecs,
    ) -> Result<(), CaptureError> {
        let codec = lookup(codecs, &ev.db, &ev.table, ev.map.as_ref())?;
        let fp = codec.envelope().fingerprint();
        if k.checked_fp != Some(fp) && !self.is_published(fp) {
            self.publish_schema(codec).await?;
        }
        k.checked_fp = Some(fp);
        let (key, value) = codec
            .encode(&EventRef {
                op: ev.op,
                before: ev.before.as_ref(),
                after: ev.after.as_ref(),
                shard: &self.shard,
                db: &ev.db,
                table: &ev.table,
                ts_sec: enc.ts_sec,
                gtid: &enc.gtid,
                index,
                last,
                ts_ms: k.now_ms,
            })
            .map_err(|e| {
                CaptureError::Definite(format!(
                    "encode a row change of {}.{} in {}: {e}",
                    ev.db, ev.table, enc.gtid
                ))
            })?;
        let size = key.len() + value.len();
        let row = || row_named(&ev, codec.table(), &enc.gtid);
        if size > LARGE_EVENT_BYTES && k.largest.as_ref().is_none_or(|(n, _)| size > *n) {
            k.largest = Some((size, row()));
        }
        self.send_with(&self.topic.clone(), partition, &key, &value, None, &row)
            .await?;
        k.sent += 1;
        Ok(())
    }

    /// Send the checkpoint (its stored text; and heartbeats at `heartbeat`, a
    /// fence mark the switch waits for) and commit `k`. Returns the events
    /// it carried.
    pub async fn commit_with(
        &self,
        k: KafkaTxn,
        checkpoint: &str,
        heartbeat: Option<&StoredPosition>,
    ) -> Result<usize, CaptureError> {
        if let Some(hb) = heartbeat {
            self.send_heartbeats(hb, k.now_ms).await?;
        }
        let key = self.id.checkpoint_key();
        self.send(
            &self.offsets_topic.clone(),
            0,
            key.as_bytes(),
            checkpoint.as_bytes(),
        )
        .await?;
        let p = Arc::clone(&self.producer);
        let committing = std::time::Instant::now();
        match blocking(move || commit(&p)).await {
            Ok(()) => {
                self.metrics
                    .kafka_commit
                    .record(committing.elapsed().as_secs_f64());
                self.metrics.events.increment(k.sent as u64);
                self.in_txn
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                fail::fail_point!(crate::failpoints::AFTER_KAFKA_COMMIT);
                Ok(k.sent)
            }
            Err(e) => {
                // The broker refused a message as too large (the topic's
                // max.message.bytes, below revdoor's): reported by the
                // message's delivery (`commit`) or by the commit itself.
                // The largest row sent is over the limit, whichever it was.
                let too_large = match &e {
                    KafkaError::Transaction(rd) => {
                        rd.code() == RDKafkaErrorCode::MessageSizeTooLarge
                    }
                    KafkaError::MessageProduction(code) => {
                        *code == RDKafkaErrorCode::MessageSizeTooLarge
                    }
                    _ => false,
                };
                let err = match &k.largest {
                    _ if !too_large => classify_kafka("commit transaction", e),
                    Some((bytes, row)) => self.too_large(row, *bytes),
                    None => self.too_large("a message of this Kafka transaction", 0),
                };
                if !matches!(err, CaptureError::Fenced(_)) {
                    self.abort(k).await;
                }
                Err(err)
            }
        }
    }

    /// Abort `k`: nothing it carried becomes visible.
    pub async fn abort(&self, k: KafkaTxn) {
        drop(k);
        self.abort_open().await;
    }

    /// Abort the Kafka transaction in progress, if any (one an error left
    /// open).
    pub async fn abort_open(&self) {
        if !self.in_txn.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let p = Arc::clone(&self.producer);
        if let Err(e) = blocking(move || p.abort_transaction(TXN_TIMEOUT)).await {
            tracing::warn!(error = %e, "abort Kafka transaction");
        }
    }

    fn is_published(&self, fp: u64) -> bool {
        self.published
            .lock()
            .map(|s| s.contains(&fp))
            .unwrap_or(false)
    }

    /// Publish `codec`'s schema record to `revdoor.schemas`, outside the
    /// Kafka transaction, and wait until the broker has it (module doc,
    /// "Schema records").
    async fn publish_schema(&self, codec: &EventCodec) -> Result<(), CaptureError> {
        let fp = codec.envelope().fingerprint();
        let record = SchemaRecord {
            fingerprint: fingerprint_key(fp),
            envelope: codec.envelope().json().clone(),
            key: codec.key().json().clone(),
            table: codec.table().clone(),
        };
        let body = serde_json::to_vec(&record).unwrap_or_default();
        let sent = self
            .schema_producer
            .send(
                FutureRecord::to(SCHEMAS_TOPIC)
                    .partition(0)
                    .key(record.fingerprint.as_bytes())
                    .payload(&body),
                TXN_TIMEOUT,
            )
            .await;
        if let Err((e, _)) = sent {
            return Err(match e {
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge) => self
                    .too_large(
                        &format!("the schema record of {}", codec.table().table),
                        body.len(),
                    ),
                e => CaptureError::transient("publish a schema record", e),
            });
        }
        if let Ok(mut s) = self.published.lock() {
            s.insert(fp);
        }
        Ok(())
    }

    /// Publish a heartbeat on the stream's partition (with the checkpoint,
    /// in one Kafka transaction): the source was idle and fully read at
    /// this moment. Apply skips it but learns its lag from it.
    pub async fn publish_heartbeat(
        &self,
        position: &StoredPosition,
        checkpoint: &str,
    ) -> Result<(), CaptureError> {
        let k = self.begin().await?;
        let t = std::time::Instant::now();
        self.commit_with(k, checkpoint, Some(position)).await?;
        tracing::debug!(
            commit_ms = t.elapsed().as_millis() as u64,
            "heartbeat committed"
        );
        Ok(())
    }

    /// A DDL record (`on_ddl=exec`) on every partition of the stream: each
    /// destination shard the origin feeds runs the statement.
    async fn send_ddl(&self, txn: &SourceTxn, ddl: &Ddl) -> Result<(), CaptureError> {
        let body = serde_json::to_vec(&DdlEvent {
            gtid: txn.gtid.clone(),
            default_db: ddl.default_db.clone(),
            statement: ddl.statement.clone(),
            tables: ddl.tables.iter().map(|(d, t)| format!("{d}.{t}")).collect(),
            shard: self.shard.clone(),
            ts_sec: txn.timestamp,
        })
        .map_err(|e| CaptureError::Definite(format!("encode DDL record: {e}")))?;
        for partition in self.router.partitions() {
            let headers = OwnedHeaders::new().insert(Header {
                key: DDL_HEADER,
                value: Some("1"),
            });
            let what = || format!("a DDL record for {}", self.topic);
            self.send_with(
                &self.topic.clone(),
                partition,
                b"",
                &body,
                Some(headers),
                &what,
            )
            .await?;
        }
        Ok(())
    }

    /// Heartbeat records on every partition of the stream: every
    /// destination shard's apply learns its lag (and position) from them.
    async fn send_heartbeats(
        &self,
        position: &StoredPosition,
        now_ms: u64,
    ) -> Result<(), CaptureError> {
        let body = serde_json::to_string(&Heartbeat {
            heartbeat_ms: now_ms,
            position: position.clone(),
            fetched_ms: 0,
        })
        .unwrap_or_default();
        for partition in self.router.partitions() {
            let headers = OwnedHeaders::new().insert(Header {
                key: HEARTBEAT_HEADER,
                value: Some("1"),
            });
            self.send_with(
                &self.topic.clone(),
                partition,
                b"",
                body.as_bytes(),
                Some(headers),
                &|| format!("a heartbeat for {}", self.topic),
            )
            .await?;
        }
        Ok(())
    }

    async fn send(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        payload: &[u8],
    ) -> Result<(), CaptureError> {
        let what = || format!("a record for {topic}");
        self.send_with(topic, partition, key, payload, None, &what)
            .await
    }

    async fn send_with(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        payload: &[u8],
        headers: Option<OwnedHeaders>,
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<(), CaptureError> {
        let mut record = BaseRecord::to(topic)
            .partition(partition)
            .key(key)
            .payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // Not an error: the local queue is full, wait for deliveries.
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    // No retry gets a message past the size limit.
                    return Err(self.too_large(&what(), key.len() + payload.len()));
                }
                Err((e, _)) => return Err(classify_kafka("send event", e)),
            }
        }
    }
}

/// The largest message revdoor's producer sends by default
/// (`message.max.bytes`; `--max-message-bytes` of `worker run` and
/// `capture run`).
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 16_000_000;

impl Publisher {
    /// The definite error of a message larger than Kafka accepts: `what`
    /// names it (a row: its table and primary key), and the way on that
    /// loses nothing.
    fn too_large(&self, what: &str, bytes: usize) -> CaptureError {
        let topic = &self.topic;
        let limit = self.max_message_bytes;
        CaptureError::Definite(format!(
            "{what}: its event ({bytes} bytes) is larger than Kafka accepts (revdoor's \
             producer limit {limit} bytes, and {topic}'s max.message.bytes / the broker's \
             message.max.bytes): the stream halts here and publishes nothing of this \
             transaction, so nothing is lost. To carry it, raise {topic}'s max.message.bytes \
             (kafka-configs.sh --alter --entity-type topics --entity-name {topic} \
             --add-config max.message.bytes=N) and, if lower, the broker's message.max.bytes; \
             if {limit} is below N, restart the workers with --max-message-bytes N. The stream then resumes at this transaction by itself. \
             Nothing skips it without losing the transaction (deleting the row at the source \
             does not: the binlog holds it)"
        ))
    }
}

/// A row change by table and primary key, for an error that names it.
fn row_named(ev: &Pending, table: &TableSchema, gtid: &str) -> String {
    let row = ev.after.as_ref().or(ev.before.as_ref());
    let key: Vec<String> = table
        .primary_key
        .iter()
        .map(|c| {
            let v = row.and_then(|r| r.get(c));
            format!("{c}={}", v.map(key_text).unwrap_or_else(|| "?".into()))
        })
        .collect();
    format!(
        "the row of {}.{} with primary key ({}) in transaction {gtid}",
        ev.db,
        ev.table,
        key.join(", ")
    )
}

/// A key value as an operator would type it in a `WHERE` clause (long or
/// binary strings in hex).
fn key_text(v: &revdoor_core::event::ColumnValue) -> String {
    use revdoor_core::event::ColumnValue as V;
    match v {
        V::Null => "NULL".into(),
        V::Int(i) => i.to_string(),
        V::UInt(u) => u.to_string(),
        V::Float(f) => f.to_string(),
        V::Double(d) => d.to_string(),
        V::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) if s.len() <= 200 && !s.chars().any(char::is_control) => {
                format!("'{}'", s.replace('\'', "''"))
            }
            _ => {
                let hex: String = b.iter().take(100).map(|x| format!("{x:02x}")).collect();
                let more = if b.len() > 100 { "…" } else { "" };
                format!("0x{hex}{more}")
            }
        },
        V::DateTime(t) | V::Time(t) => format!("'{t}'"),
    }
}

/// Commit the open transaction. rdkafka's `commit_transaction` flushes
/// first by polling for delivery events in 100 ms slices — events the
/// threaded producer's own poll thread usually takes first, so every commit
/// waited a whole slice. Waiting for the in-flight count to reach zero (the
/// poll thread serves the delivery events at once) makes that flush return
/// immediately. A message the broker refused ends the wait at once with its
/// error (see [`Deliveries`]): the transaction can then only be aborted.
fn commit(p: &ThreadedProducer<Deliveries>) -> Result<(), KafkaError> {
    let deadline = std::time::Instant::now() + TXN_TIMEOUT;
    loop {
        if let Some(code) = p.context().refused() {
            return Err(KafkaError::MessageProduction(code));
        }
        if p.in_flight_count() == 0 || std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    p.commit_transaction(TXN_TIMEOUT)
}

/// The transactional producer's context: the first message of the open
/// Kafka transaction the broker refused (a delivery report with an error,
/// e.g. `MessageSizeTooLarge` from a topic whose `max.message.bytes` is
/// below revdoor's limit). librdkafka then sends nothing more of that
/// transaction — it can only be aborted —, so the messages still queued
/// behind it never drain and a commit's flush would wait out its timeout
/// (`Flush error: OperationTimedOut`, retried as transient) instead of
/// reporting the refusal.
#[derive(Default)]
struct Deliveries {
    refused: Mutex<Option<RDKafkaErrorCode>>,
}

impl Deliveries {
    fn refused(&self) -> Option<RDKafkaErrorCode> {
        self.refused.lock().ok().and_then(|r| *r)
    }

    /// A new Kafka transaction begins: nothing of it refused yet.
    fn clear(&self) {
        if let Ok(mut r) = self.refused.lock() {
            *r = None;
        }
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let code = e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
            // Purged by the abort of an earlier transaction, reported late.
            if matches!(
                code,
                RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight
            ) {
                return;
            }
            if let Ok(mut r) = self.refused.lock() {
                r.get_or_insert(code);
            }
        }
    }
}

async fn blocking<F>(f: F) -> Result<(), KafkaError>
where
    F: FnOnce() -> Result<(), KafkaError> + Send + 'static,
{
    // The blocking thread logs inside the caller's span.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .unwrap_or_else(|e| {
            Err(KafkaError::Canceled).inspect_err(|_| tracing::error!("kafka task: {e}"))
        })
}

/// Fencing is its own kind: the stream has a newer owner and must stop.
fn classify_kafka(what: &str, e: KafkaError) -> CaptureError {
    let fenced = match &e {
        KafkaError::Transaction(rd) => {
            rd.is_fatal()
                || matches!(
                    rd.code(),
                    RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
                )
        }
        KafkaError::MessageProduction(code) | KafkaError::Global(code) => matches!(
            code,
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fatal
        ),
        _ => false,
    };
    let wedged =
        matches!(&e, KafkaError::Transaction(rd) if rd.code() == RDKafkaErrorCode::Conflict);
    if fenced {
        CaptureError::Fenced(format!("{what}: {e} (a newer capture owns this stream)"))
    } else if wedged {
        CaptureError::ProducerWedged(format!(
            "{what}: {e} (the Kafka producer is stuck in an unfinished transaction call)"
        ))
    } else {
        CaptureError::transient(what, e)
    }
}
