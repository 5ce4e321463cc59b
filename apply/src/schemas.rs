//! The schemas apply decodes with, read from `revdoor.schemas`.
//!
//! Each message names its writer schema by fingerprint (Avro single-object
//! header). On an unknown fingerprint apply re-reads the registry topic (a
//! `read_committed` consumer to its end). Capture has the broker
//! acknowledge a schema record before it sends the first event using it,
//! so a committed event's schema is there. But a transaction left open on
//! the registry partition — by a writer that died or hangs mid-transaction
//! (revdoor's capture writes schema records outside its transactions;
//! older versions wrote them inside) — holds every `read_committed` reader
//! there back, at its first record, until it ends: aborted by a new
//! producer under its transactional id, or by the broker after its
//! `transaction.timeout.ms`.
//!
//! So when a read finds no record for a fingerprint, it asks whether any
//! transaction is open on the registry: its last stable offset (a
//! `read_committed` client's end) short of its high watermark (a
//! `read_uncommitted` client's), both asked before the read. If so, the
//! fingerprint is waited for, and the stream's status says "waiting for
//! schema … behind an open transaction on revdoor.schemas"; unknown with
//! nothing pending means a poison message. (Asked after the read, a commit
//! landing in between would pass for "nothing pending".)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use revdoor_core::avro::EventCodec;
use revdoor_core::names;
use revdoor_core::progress::Progress;
use revdoor_core::registry::{fingerprint_key, SchemaRecord, SCHEMAS_TOPIC};

use crate::ApplyError;

/// How long one read waits for an unknown fingerprint while the registry
/// has uncommitted records; then it is a transient error and the stream is
/// restarted to wait again (a transaction left open lasts up to capture's
/// `transaction.timeout.ms`, 300 s, or another writer's own).
const PENDING_PATIENCE: Duration = Duration::from_secs(120);

/// Codecs by envelope fingerprint, built on first use from the registry's
/// records (kept unparsed: the registry holds every table definition any
/// workflow ever published, and parsing all of them took seconds).
#[derive(Default)]
pub struct SchemaCache {
    by_fingerprint: HashMap<u64, EventCodec>,
    /// Registry records by key (the fingerprint's text), as read.
    raw: HashMap<String, Vec<u8>>,
}

impl SchemaCache {
    /// The codec for `fingerprint`, re-reading the registry if unknown;
    /// a wait behind an open transaction is reported in `progress`.
    pub async fn get(
        &mut self,
        brokers: &str,
        fingerprint: u64,
        progress: &Progress,
    ) -> Result<Option<&EventCodec>, ApplyError> {
        let deadline = Instant::now() + PENDING_PATIENCE;
        let mut reads = 0;
        while !self.by_fingerprint.contains_key(&fingerprint) {
            if self.build(fingerprint) {
                break;
            }
            if reads > 0 {
                // Give the commit markers (or the broker's abort) time.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            reads += 1;
            let brokers = brokers.to_string();
            let span = tracing::Span::current();
            let (records, pending) =
                tokio::task::spawn_blocking(move || span.in_scope(|| read_registry(&brokers)))
                    .await
                    .map_err(|e| ApplyError::Transient(format!("schema reader task: {e}")))??;
            self.raw.extend(records);
            if self.build(fingerprint) {
                break;
            }
            let Some((end, high)) = pending else {
                break;
            };
            let waiting = format!(
                "waiting for schema {fingerprint:016x} behind an open transaction on \
                 {SCHEMAS_TOPIC} (committed up to offset {end}, written up to {high}): a \
                 transactional writer that died or hangs mid-transaction holds it until it \
                 is restarted or the broker times the transaction out; nothing is skipped"
            );
            if Instant::now() >= deadline {
                return Err(ApplyError::Transient(format!(
                    "{waiting} (still after {}s)",
                    PENDING_PATIENCE.as_secs()
                )));
            }
            if reads == 1 {
                tracing::info!(fingerprint = %format!("{fingerprint:016x}"), end, high,
                    "schema not yet committed in {SCHEMAS_TOPIC} (a transaction is open there): waiting");
                progress.retrying(waiting);
            }
        }
        Ok(self.by_fingerprint.get(&fingerprint))
    }

    /// Build the codec of `fingerprint` from its raw record, if read.
    fn build(&mut self, fingerprint: u64) -> bool {
        let key = fingerprint_key(fingerprint);
        let Some(body) = self.raw.get(&key) else {
            return false;
        };
        let record = match serde_json::from_slice::<SchemaRecord>(body) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(fingerprint = %key, error = %e, "undecodable schema record");
                return false;
            }
        };
        match EventCodec::new(record.table) {
            Ok(codec) if codec.envelope().fingerprint() == fingerprint => {
                self.by_fingerprint.insert(fingerprint, codec);
                true
            }
            Ok(_) => {
                tracing::warn!(fingerprint = %key, "schema record whose table has another fingerprint");
                false
            }
            Err(e) => {
                tracing::warn!(fingerprint = %key, error = %e, "unusable schema record");
                false
            }
        }
    }
}

/// A registry record as read: its key (the fingerprint's text) and body.
type RawRecord = (String, Vec<u8>);

/// Records of the registry in a transaction still open: its last stable
/// offset and its high watermark.
type Pending = Option<(i64, i64)>;

/// The committed schema records, and — when records beyond them are still
/// uncommitted — the committed end (last stable offset) and the high
/// watermark.
fn read_registry(brokers: &str) -> Result<(Vec<RawRecord>, Pending), ApplyError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", names::schema_reader_group_id())
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| ApplyError::Transient(format!("create schema consumer: {e}")))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(SCHEMAS_TOPIC, 0, Offset::Beginning)
        .map_err(|e| ApplyError::Transient(format!("assign {SCHEMAS_TOPIC}: {e}")))?;
    consumer
        .assign(&tpl)
        .map_err(|e| ApplyError::Transient(format!("assign {SCHEMAS_TOPIC}: {e}")))?;
    // Before reading: every record written so far is below `high`, and
    // below `lso` only if its transaction ended, so reading to the end
    // reads every schema committed by then, and `lso < high` says whether
    // some are still in a transaction. (Asked after the read, a commit
    // landing in between would pass for "nothing pending".)
    let (_, lso) = consumer
        .fetch_watermarks(SCHEMAS_TOPIC, 0, Duration::from_secs(10))
        .map_err(|e| ApplyError::Transient(format!("watermarks of {SCHEMAS_TOPIC}: {e}")))?;
    let high = high_watermark(brokers)?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {
                return Ok((out, (lso < high).then_some((lso, high))));
            }
            Some(Err(e)) => {
                return Err(ApplyError::Transient(format!("read {SCHEMAS_TOPIC}: {e}")))
            }
            Some(Ok(m)) => {
                if let (Some(k), Some(v)) = (m.key(), m.payload()) {
                    out.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()));
                }
            }
        }
    }
    Err(ApplyError::Transient(format!(
        "reading {SCHEMAS_TOPIC} did not reach its end within 30s"
    )))
}

/// The registry's high watermark, uncommitted records included: asked of a
/// `read_uncommitted` client (a `read_committed` one is answered with the
/// last stable offset).
fn high_watermark(brokers: &str) -> Result<i64, ApplyError> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("isolation.level", "read_uncommitted")
        .create()
        .map_err(|e| ApplyError::Transient(format!("create schema watermark client: {e}")))?;
    let (_, high) = client
        .fetch_watermarks(SCHEMAS_TOPIC, 0, Duration::from_secs(10))
        .map_err(|e| ApplyError::Transient(format!("watermarks of {SCHEMAS_TOPIC}: {e}")))?;
    Ok(high)
}
