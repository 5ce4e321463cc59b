//! The schema registry topic `revdoor.schemas`.
//!
//! Every Avro schema capture writes with is published, before or with its
//! first use (in the same Kafka transaction as the first events that use
//! it), to the compacted topic `revdoor.schemas`:
//!
//! - key: the envelope schema's CRC-64-AVRO fingerprint as 16 lower-case hex
//!   digits (the same 8 bytes as in every single-object header, big-endian
//!   in the text);
//! - value: a JSON [`SchemaRecord`]: the envelope and key schemas (any Avro
//!   library decodes a message with `envelope`) and the table definition
//!   revdoor's apply needs to bind values.
//!
//! A Confluent-compatible registry is not needed; one can be fed from this
//! topic.
//!
//! # Collisions
//!
//! Two table definitions whose Avro schemas have the same Parsing Canonical
//! Form (say a column changed from `DATETIME` to `DATE`: both are `string`)
//! share a fingerprint, and the later record replaces the earlier under
//! compaction. Their messages are byte-compatible, and apply re-reads the
//! table definition when a DDL is replicated, so this is harmless; it is
//! noted for consumers that interpret `revdoor.*` properties.

use serde::{Deserialize, Serialize};

use crate::sqltype::TableSchema;

/// The compacted topic holding every published schema.
pub const SCHEMAS_TOPIC: &str = "revdoor.schemas";

/// One published schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaRecord {
    /// Fingerprint of `envelope`, 16 hex digits.
    pub fingerprint: String,
    /// The Avro schema of message values.
    pub envelope: serde_json::Value,
    /// The Avro schema of message keys.
    pub key: serde_json::Value,
    /// The table the schemas describe.
    pub table: TableSchema,
}

/// The registry key of a fingerprint.
pub fn fingerprint_key(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// Parse a registry key.
pub fn parse_fingerprint_key(key: &str) -> Option<u64> {
    if key.len() != 16 {
        return None;
    }
    u64::from_str_radix(key, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_keys_roundtrip() {
        for fp in [0u64, 1, 0xc15d_213a_a4d7_a795, u64::MAX] {
            let k = fingerprint_key(fp);
            assert_eq!(k.len(), 16);
            assert_eq!(parse_fingerprint_key(&k), Some(fp));
        }
        assert_eq!(parse_fingerprint_key("123"), None);
        assert_eq!(parse_fingerprint_key("zzzzzzzzzzzzzzzz"), None);
    }
}
