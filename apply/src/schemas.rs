//! The schemas apply decodes with, read from `revdoor.schemas`.
//!
//! Each message names its writer schema by fingerprint (Avro single-object
//! header). On an unknown fingerprint apply re-reads the registry topic (a
//! `read_committed` consumer to its end: capture publishes a schema in the
//! same Kafka transaction as the first events that use it, so a committed
//! event's schema is there — eventually: the transaction's commit markers
//! reach its partitions one by one, and a transaction left open on the
//! registry partition (a capture killed mid-transaction and not restarted)
//! holds every `read_committed` reader there back until the broker aborts
//! it (`transaction.timeout.ms`). So while the registry's committed end is
//! short of its high watermark, an unknown fingerprint is waited for;
//! unknown with nothing pending means a poison message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use revdoor_core::avro::EventCodec;
use revdoor_core::names;
use revdoor_core::registry::{fingerprint_key, SchemaRecord, SCHEMAS_TOPIC};

use crate::ApplyError;

/// How long an unknown fingerprint is waited for while the registry has
/// uncommitted records (longer than capture's `transaction.timeout.ms`
/// plus the broker's abort check); then the read is a transient error.
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
    /// The codec for `fingerprint`, re-reading the registry if unknown.
    pub async fn get(
        &mut self,
        brokers: &str,
        fingerprint: u64,
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
            if self.build(fingerprint) || !pending {
                break;
            }
            if Instant::now() >= deadline {
                return Err(ApplyError::Transient(format!(
                    "schema {fingerprint:016x} not found while {SCHEMAS_TOPIC} has had an open \
                     transaction for {}s (a capture killed mid-transaction?)",
                    PENDING_PATIENCE.as_secs()
                )));
            }
            if reads == 1 {
                tracing::info!(fingerprint = %format!("{fingerprint:016x}"),
                    "schema not yet committed in {SCHEMAS_TOPIC} (a transaction is open there): waiting");
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

/// The committed schema records, and whether records beyond them are
/// still uncommitted (the `read_committed` end is short of the high
/// watermark).
fn read_registry(brokers: &str) -> Result<(Vec<RawRecord>, bool), ApplyError> {
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
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {
                let end = consumer
                    .position()
                    .ok()
                    .and_then(|p| {
                        p.find_partition(SCHEMAS_TOPIC, 0)
                            .and_then(|e| e.offset().to_raw())
                    })
                    .unwrap_or(0);
                let (_, high) = consumer
                    .fetch_watermarks(SCHEMAS_TOPIC, 0, Duration::from_secs(10))
                    .map_err(|e| {
                        ApplyError::Transient(format!("watermarks of {SCHEMAS_TOPIC}: {e}"))
                    })?;
                return Ok((out, end < high));
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
