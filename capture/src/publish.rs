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
//! # Fencing
//!
//! `transactional.id = revdoor.<workflow>.<direction>.<origin shard>`. A new
//! producer with the same id bumps the epoch at `init_transactions`, after
//! which the old one's commits fail with a fatal fencing error.
//!
//! Blocking librdkafka transaction calls run on `spawn_blocking`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use revdoor_core::event::{DdlEvent, Heartbeat, Op, DDL_HEADER, HEARTBEAT_HEADER};

use revdoor_core::avro::{EventCodec, EventRef};
use revdoor_core::registry::{fingerprint_key, SchemaRecord, SCHEMAS_TOPIC};

use std::collections::BTreeMap;

use revdoor_core::event::Row;

use crate::binlog::{RowChange, SourceTxn};
use crate::ddl::Ddl;
use crate::route::Router;

/// One source transaction's changes by destination partition: the op and
/// images to publish, and the change they came from.
type Routed<'a> = BTreeMap<i32, Vec<(Op, Option<Row>, Option<Row>, &'a RowChange, &'a EventCodec)>>;

/// The codec of every captured table, by `(database, table)`.
pub type Codecs = HashMap<(String, String), EventCodec>;
use crate::CaptureError;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Identity of one capture stream.
#[derive(Debug, Clone)]
pub struct StreamId {
    pub workflow: String,
    pub direction: String,
    pub shard: String,
}

impl StreamId {
    pub fn topic(&self) -> String {
        format!("revdoor.{}.{}", self.workflow, self.direction)
    }
    pub fn offsets_topic(&self) -> String {
        format!("revdoor.{}.offsets", self.workflow)
    }
    pub fn transactional_id(&self) -> String {
        format!(
            "revdoor.{}.{}.{}",
            self.workflow, self.direction, self.shard
        )
    }
    /// Key of this stream's checkpoint in the offsets topic.
    pub fn checkpoint_key(&self) -> String {
        format!("{}.{}", self.direction, self.shard)
    }
}

/// Create the stream topic and the compacted offsets topic if absent.
pub async fn ensure_topics(
    brokers: &str,
    id: &StreamId,
    partitions: i32,
) -> Result<(), CaptureError> {
    let admin = admin_client(brokers)?;
    let topic = id.topic();
    let offsets = id.offsets_topic();
    let topics = [
        NewTopic::new(&topic, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&offsets, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact"),
        NewTopic::new(SCHEMAS_TOPIC, 1, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact"),
    ];
    let results = admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(|e| CaptureError::transient("create topics", e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(CaptureError::Transient(format!("create topic {t}: {code}")));
            }
        }
    }
    Ok(())
}

fn admin_client(brokers: &str) -> Result<AdminClient<DefaultClientContext>, CaptureError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| CaptureError::transient("create Kafka admin client", e))
}

/// Which of a workflow's topics (`revdoor.<workflow>.forward|reverse|offsets`)
/// exist.
pub async fn workflow_topics(brokers: &str, workflow: &str) -> Result<Vec<String>, CaptureError> {
    let brokers = brokers.to_string();
    let prefix = format!("revdoor.{workflow}.");
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .map_err(|e| CaptureError::transient("create Kafka client", e))?;
        let md = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map_err(|e| CaptureError::transient("read Kafka metadata", e))?;
        Ok(md
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|rest| ["forward", "reverse", "offsets"].contains(&rest))
            })
            .collect())
    })
    .await
    .map_err(|e| CaptureError::Transient(format!("metadata task: {e}")))?
}

/// Delete a workflow's topics (after `complete` or `cancel`).
pub async fn delete_workflow_topics(brokers: &str, workflow: &str) -> Result<(), CaptureError> {
    let topics = workflow_topics(brokers, workflow).await?;
    if topics.is_empty() {
        return Ok(());
    }
    let admin = admin_client(brokers)?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let results = admin
        .delete_topics(
            &names,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(|e| CaptureError::transient("delete topics", e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((t, code)) => {
                return Err(CaptureError::Transient(format!("delete topic {t}: {code}")))
            }
        }
    }
    Ok(())
}

/// Read this stream's last committed checkpoint (GTID position) from the
/// offsets topic, or `None` if it never published.
pub async fn read_checkpoint(brokers: &str, id: &StreamId) -> Result<Option<String>, CaptureError> {
    let brokers = brokers.to_string();
    let id = id.clone();
    tokio::task::spawn_blocking(move || read_checkpoint_blocking(&brokers, &id))
        .await
        .map_err(|e| CaptureError::Transient(format!("checkpoint reader task: {e}")))?
}

fn read_checkpoint_blocking(brokers: &str, id: &StreamId) -> Result<Option<String>, CaptureError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("{}.checkpoint-reader", id.transactional_id()),
        )
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
    /// Fingerprints whose schema records this producer has committed.
    published: Mutex<HashSet<u64>>,
    id: StreamId,
    producer: Arc<ThreadedProducer<DefaultProducerContext>>,
    router: Router,
    topic: String,
    offsets_topic: String,
}

impl Publisher {
    /// Create the producer and fence any previous owner of the stream.
    pub async fn new(brokers: &str, id: StreamId, router: Router) -> Result<Self, CaptureError> {
        let mut config = ClientConfig::new();
        // librdkafka's own debug contexts (e.g. `eos,broker`), for diagnosis.
        if let Ok(debug) = std::env::var("REVDOOR_KAFKA_DEBUG") {
            config.set("debug", debug);
        }
        let producer: ThreadedProducer<DefaultProducerContext> = config
            .set("bootstrap.servers", brokers)
            .set("transactional.id", id.transactional_id())
            .set("enable.idempotence", "true")
            .set("transaction.timeout.ms", "60000")
            .set("linger.ms", "5")
            // After a commit the broker writes the transaction markers;
            // the next transaction's AddPartitionsToTxn meanwhile gets
            // CONCURRENT_TRANSACTIONS and is retried after this backoff
            // (librdkafka's default of 100 ms put a floor of ~100 ms under
            // every commit, hence under replication lag and switch windows).
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "100")
            .set("compression.type", "lz4")
            .set("message.max.bytes", "16000000")
            .create()
            .map_err(|e| CaptureError::transient("create Kafka producer", e))?;
        let producer = Arc::new(producer);
        let p = Arc::clone(&producer);
        blocking(move || p.init_transactions(TXN_TIMEOUT))
            .await
            .map_err(|e| classify_kafka("init transactions", e))?;
        Ok(Publisher {
            published: Mutex::new(HashSet::new()),
            topic: id.topic(),
            offsets_topic: id.offsets_topic(),
            id,
            producer,
            router,
        })
    }

    /// Publish a batch of source transactions and the checkpoint `position`
    /// in one Kafka transaction, encoding each row change with its table's
    /// codec; a schema this producer has not published yet goes to
    /// `revdoor.schemas` in the same transaction. Transactions without
    /// changes are dropped.
    pub async fn publish(
        &self,
        txns: &mut [SourceTxn],
        position: &str,
        codecs: &Codecs,
        heartbeat: Option<&str>,
    ) -> Result<usize, CaptureError> {
        let p = Arc::clone(&self.producer);
        blocking(move || p.begin_transaction())
            .await
            .map_err(|e| classify_kafka("begin transaction", e))?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut sent = 0;
        let mut new_schemas: Vec<u64> = Vec::new();
        // The last schema known to be published (or queued in this
        // transaction): events of one table in a row skip the lookup.
        let mut checked_fp: Option<u64> = None;
        for txn in txns.iter_mut() {
            if let Some(ddl) = txn.ddl.as_ref().filter(|d| d.exec) {
                self.send_ddl(txn, ddl).await?;
            }
            if txn.changes.is_empty() {
                continue;
            }
            // Each change, made unambiguous and routed; a row whose shard
            // changes becomes a delete there and an insert here.
            // The row images move into the events (published once).
            let images: Vec<(Option<Row>, Option<Row>)> = txn
                .changes
                .iter_mut()
                .map(|ch| (ch.before.take(), ch.after.take()))
                .collect();
            let txn = &*txn;
            let mut routed: Routed<'_> = BTreeMap::new();
            let mut last: Option<(&RowChange, &EventCodec)> = None;
            for (ch, (mut before, mut after)) in txn.changes.iter().zip(images) {
                // Consecutive changes are mostly of one table.
                let codec = match last {
                    Some((prev, codec)) if prev.db == ch.db && prev.table == ch.table => codec,
                    _ => codecs
                        .get(&(ch.db.clone(), ch.table.clone()))
                        .ok_or_else(|| {
                            CaptureError::Definite(format!(
                                "no table definition for {}.{}",
                                ch.db, ch.table
                            ))
                        })?,
                };
                last = Some((ch, codec));
                let bad = |e: String| {
                    CaptureError::Definite(format!(
                        "row of {}.{} in {}: {e}",
                        ch.db, ch.table, txn.gtid
                    ))
                };
                // Binlog values are ambiguous where the wire form depends on
                // the column type (SET bitmasks as bytes, YEAR 0 as 1900);
                // copied rows come from a SELECT, not the binlog.
                if ch.op != Op::Read {
                    for row in [before.as_mut(), after.as_mut()].into_iter().flatten() {
                        codec.from_binlog_row(row).map_err(|e| bad(e.to_string()))?;
                    }
                }
                let part = |r: &Row| self.router.partition(codec, r, false).map_err(bad);
                match (ch.op, &before, &after) {
                    (Op::Update, Some(b), Some(a)) => {
                        let (pb, pa) = (part(b)?, part(a)?);
                        if pb == pa {
                            routed.entry(pa).or_default().push((
                                Op::Update,
                                before,
                                after,
                                ch,
                                codec,
                            ));
                        } else {
                            routed.entry(pb).or_default().push((
                                Op::Delete,
                                before,
                                None,
                                ch,
                                codec,
                            ));
                            routed.entry(pa).or_default().push((
                                Op::Create,
                                None,
                                after,
                                ch,
                                codec,
                            ));
                        }
                    }
                    (_, _, Some(a)) => {
                        let p = part(a)?;
                        routed
                            .entry(p)
                            .or_default()
                            .push((ch.op, before, after, ch, codec));
                    }
                    (_, Some(b), None) => {
                        let p = part(b)?;
                        routed
                            .entry(p)
                            .or_default()
                            .push((ch.op, before, after, ch, codec));
                    }
                    (_, None, None) => {}
                }
            }
            let total: usize = routed.values().map(Vec::len).sum();
            for (partition, changes) in routed {
                let n = changes.len();
                for (i, (op, before, after, ch, codec)) in changes.into_iter().enumerate() {
                    let ev = EventRef {
                        op,
                        before: before.as_ref(),
                        after: after.as_ref(),
                        shard: &self.id.shard,
                        db: &ch.db,
                        table: &ch.table,
                        ts_sec: txn.timestamp,
                        gtid: &txn.gtid,
                        index: i as u32,
                        last: i + 1 == n,
                        ts_ms: now_ms,
                    };
                    let fp = codec.envelope().fingerprint();
                    if checked_fp != Some(fp)
                        && !self.is_published(fp)
                        && !new_schemas.contains(&fp)
                    {
                        let record = SchemaRecord {
                            fingerprint: fingerprint_key(fp),
                            envelope: codec.envelope().json().clone(),
                            key: codec.key().json().clone(),
                            table: codec.table().clone(),
                        };
                        let body = serde_json::to_vec(&record).unwrap_or_default();
                        self.send(SCHEMAS_TOPIC, 0, record.fingerprint.as_bytes(), &body)
                            .await?;
                        new_schemas.push(fp);
                    }
                    checked_fp = Some(fp);
                    let (key, value) = codec.encode(&ev).map_err(|e| {
                        CaptureError::Definite(format!(
                            "encode a row change of {}.{} in {}: {e}",
                            ch.db, ch.table, txn.gtid
                        ))
                    })?;
                    self.send(&self.topic.clone(), partition, &key, &value)
                        .await?;
                    sent += 1;
                    if sent == 1 && total > 1 {
                        fail::fail_point!(crate::failpoints::MID_TRANSACTION);
                    }
                }
            }
        }
        // A heartbeat after the events, in the same Kafka transaction (a
        // fence mark: the switch waits for it).
        if let Some(hb) = heartbeat {
            self.send_heartbeats(hb, now_ms).await?;
        }
        let key = self.id.checkpoint_key();
        self.send(
            &self.offsets_topic.clone(),
            0,
            key.as_bytes(),
            position.as_bytes(),
        )
        .await?;
        let p = Arc::clone(&self.producer);
        match blocking(move || commit(&p)).await {
            Ok(()) => {
                self.mark_published(&new_schemas);
                fail::fail_point!(crate::failpoints::AFTER_KAFKA_COMMIT);
                Ok(sent)
            }
            Err(e) => {
                let err = classify_kafka("commit transaction", e);
                if !matches!(err, CaptureError::Fenced(_)) {
                    let p = Arc::clone(&self.producer);
                    let _ = blocking(move || p.abort_transaction(TXN_TIMEOUT)).await;
                }
                Err(err)
            }
        }
    }

    fn is_published(&self, fp: u64) -> bool {
        self.published
            .lock()
            .map(|s| s.contains(&fp))
            .unwrap_or(false)
    }

    fn mark_published(&self, fps: &[u64]) {
        if let Ok(mut s) = self.published.lock() {
            s.extend(fps.iter().copied());
        }
    }

    /// Publish a heartbeat on the stream's partition (with the checkpoint,
    /// in one Kafka transaction): the source was idle and fully read at
    /// this moment. Apply skips it but learns its lag from it.
    pub async fn publish_heartbeat(
        &self,
        position: &str,
        checkpoint: &str,
    ) -> Result<(), CaptureError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let p = Arc::clone(&self.producer);
        blocking(move || p.begin_transaction())
            .await
            .map_err(|e| classify_kafka("begin transaction", e))?;
        self.send_heartbeats(position, now_ms).await?;
        let key = self.id.checkpoint_key();
        self.send(
            &self.offsets_topic.clone(),
            0,
            key.as_bytes(),
            checkpoint.as_bytes(),
        )
        .await?;
        let p = Arc::clone(&self.producer);
        let t = std::time::Instant::now();
        let r = blocking(move || commit(&p)).await;
        tracing::debug!(
            commit_ms = t.elapsed().as_millis() as u64,
            total_ms = now_ms_since(now_ms),
            "heartbeat committed"
        );
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = classify_kafka("commit heartbeat", e);
                if !matches!(err, CaptureError::Fenced(_)) {
                    let p = Arc::clone(&self.producer);
                    let _ = blocking(move || p.abort_transaction(TXN_TIMEOUT)).await;
                }
                Err(err)
            }
        }
    }

    /// A DDL record (`on_ddl=exec`) on every partition of the stream: each
    /// destination shard the origin feeds runs the statement.
    async fn send_ddl(&self, txn: &SourceTxn, ddl: &Ddl) -> Result<(), CaptureError> {
        let body = serde_json::to_vec(&DdlEvent {
            gtid: txn.gtid.clone(),
            default_db: ddl.default_db.clone(),
            statement: ddl.statement.clone(),
            tables: ddl.tables.iter().map(|(d, t)| format!("{d}.{t}")).collect(),
            shard: self.id.shard.clone(),
            ts_sec: txn.timestamp,
        })
        .map_err(|e| CaptureError::Definite(format!("encode DDL record: {e}")))?;
        for partition in self.router.partitions() {
            let headers = OwnedHeaders::new().insert(Header {
                key: DDL_HEADER,
                value: Some("1"),
            });
            self.send_with(&self.topic.clone(), partition, b"", &body, Some(headers))
                .await?;
        }
        Ok(())
    }

    /// Heartbeat records on every partition of the stream: every
    /// destination shard's apply learns its lag (and position) from them.
    async fn send_heartbeats(&self, position: &str, now_ms: u64) -> Result<(), CaptureError> {
        let body = serde_json::to_string(&Heartbeat {
            heartbeat_ms: now_ms,
            position: position.to_string(),
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
        self.send_with(topic, partition, key, payload, None).await
    }

    async fn send_with(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        payload: &[u8],
        headers: Option<OwnedHeaders>,
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
                Err((e, _)) => return Err(classify_kafka("send event", e)),
            }
        }
    }
}

/// Commit the open transaction. rdkafka's `commit_transaction` flushes
/// first by polling for delivery events in 100 ms slices — events the
/// threaded producer's own poll thread usually takes first, so every commit
/// waited a whole slice. Waiting for the in-flight count to reach zero (the
/// poll thread serves the delivery events at once) makes that flush return
/// immediately.
fn commit(p: &ThreadedProducer<DefaultProducerContext>) -> Result<(), KafkaError> {
    let deadline = std::time::Instant::now() + TXN_TIMEOUT;
    while p.in_flight_count() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    p.commit_transaction(TXN_TIMEOUT)
}

fn now_ms_since(start_ms: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.saturating_sub(start_ms)
}

async fn blocking<F>(f: F) -> Result<(), KafkaError>
where
    F: FnOnce() -> Result<(), KafkaError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
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
    if fenced {
        CaptureError::Fenced(format!("{what}: {e} (a newer capture owns this stream)"))
    } else {
        CaptureError::transient(what, e)
    }
}
