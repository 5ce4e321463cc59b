//! The schemas apply decodes with, read from `revdoor.schemas`.
//!
//! Each message names its writer schema by fingerprint (Avro single-object
//! header). On an unknown fingerprint apply re-reads the registry topic (a
//! `read_committed` consumer to its end: capture publishes a schema in the
//! same Kafka transaction as the first events that use it, so a committed
//! event's schema is always there). Still unknown means a poison message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use revdoor_core::avro::EventCodec;
use revdoor_core::registry::{SchemaRecord, SCHEMAS_TOPIC};

use crate::ApplyError;

/// Codecs by envelope fingerprint.
#[derive(Default)]
pub struct SchemaCache {
    by_fingerprint: HashMap<u64, EventCodec>,
}

impl SchemaCache {
    /// The codec for `fingerprint`, re-reading the registry once if unknown.
    pub async fn get(
        &mut self,
        brokers: &str,
        fingerprint: u64,
    ) -> Result<Option<&EventCodec>, ApplyError> {
        if !self.by_fingerprint.contains_key(&fingerprint) {
            let brokers = brokers.to_string();
            let records = tokio::task::spawn_blocking(move || read_registry(&brokers))
                .await
                .map_err(|e| ApplyError::Transient(format!("schema reader task: {e}")))??;
            for r in records {
                let fp = r.fingerprint.clone();
                match EventCodec::new(r.table) {
                    Ok(codec) => {
                        self.by_fingerprint
                            .insert(codec.envelope().fingerprint(), codec);
                    }
                    Err(e) => {
                        tracing::warn!(fingerprint = %fp, error = %e, "unusable schema record")
                    }
                }
            }
        }
        Ok(self.by_fingerprint.get(&fingerprint))
    }
}

fn read_registry(brokers: &str) -> Result<Vec<SchemaRecord>, ApplyError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "revdoor.schema-reader")
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
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(out),
            Some(Err(e)) => {
                return Err(ApplyError::Transient(format!("read {SCHEMAS_TOPIC}: {e}")))
            }
            Some(Ok(m)) => match m.payload().map(serde_json::from_slice::<SchemaRecord>) {
                Some(Ok(r)) => out.push(r),
                Some(Err(e)) => {
                    tracing::warn!(offset = m.offset(), error = %e, "undecodable schema record")
                }
                None => {}
            },
        }
    }
    Err(ApplyError::Transient(format!(
        "reading {SCHEMAS_TOPIC} did not reach its end within 30s"
    )))
}
