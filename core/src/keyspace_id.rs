//! Keyspace ids: which shard a row belongs to (DESIGN §2).
//!
//! A row's sharding key (a list of columns, by default the primary key) is
//! turned into canonical bytes, and its keyspace id is
//! `xxh3_64(canonical bytes)` with seed 0. The row belongs to the shard whose
//! [`KeyRange`](crate::keyrange::KeyRange) holds that id. Any client (an
//! application, a proxy, a test) can route a write with this rule, so the
//! encoding below is a published contract: changing it moves rows.
//!
//! # Canonical bytes
//!
//! The columns are encoded in key order and concatenated:
//!
//! | value                    | bytes                                                    |
//! |--------------------------|----------------------------------------------------------|
//! | NULL                     | `00`                                                     |
//! | signed integer           | `01` + 8-byte big-endian two's complement                |
//! | unsigned integer         | `02` + 8-byte big-endian                                 |
//! | string or binary         | `04` + 4-byte big-endian length + the bytes as stored    |
//! | any other type           | `05` + 4-byte big-endian length + its canonical text     |
//!
//! Integers of every width are widened to 64 bits (`TINYINT -1` and
//! `BIGINT -1` give the same bytes). Strings are the column's bytes in its
//! own character set, not re-encoded. Canonical text is DECIMAL with the
//! column's scale (`12.50`) and temporal values as
//! `YYYY-MM-DD HH:MM:SS.ffffff`; producing it is the caller's job.
//!
//! Lengths are 4 bytes: MySQL values never exceed `max_allowed_packet`
//! (at most 1 GiB), so they always fit. A longer slice is still encoded in
//! full, with its length saturated at `u32::MAX`, so the function stays total.

use std::borrow::Cow;

use xxhash_rust::xxh3::xxh3_64;

/// One column of a sharding key, borrowed from the row it came from.
///
/// Note that a MySQL `CHAR`/`VARCHAR`/`TEXT` column is [`KeyValue::Bytes`]
/// (its stored bytes), not [`KeyValue::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue<'a> {
    /// SQL NULL.
    Null,
    /// A signed integer column of any width.
    Int(i64),
    /// An unsigned integer column of any width.
    UInt(u64),
    /// A string or binary column: its bytes as stored.
    Bytes(&'a [u8]),
    /// Any other type (DECIMAL, temporal, …): its canonical text.
    Other(Cow<'a, str>),
}

const TAG_NULL: u8 = 0x00;
const TAG_INT: u8 = 0x01;
const TAG_UINT: u8 = 0x02;
const TAG_BYTES: u8 = 0x04;
const TAG_OTHER: u8 = 0x05;

fn push_with_length(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The canonical bytes of a sharding key, columns in key order.
pub fn canonical_bytes(values: &[KeyValue<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 9);
    for value in values {
        match value {
            KeyValue::Null => out.push(TAG_NULL),
            KeyValue::Int(v) => {
                out.push(TAG_INT);
                out.extend_from_slice(&v.to_be_bytes());
            }
            KeyValue::UInt(v) => {
                out.push(TAG_UINT);
                out.extend_from_slice(&v.to_be_bytes());
            }
            KeyValue::Bytes(b) => push_with_length(&mut out, TAG_BYTES, b),
            KeyValue::Other(text) => push_with_length(&mut out, TAG_OTHER, text.as_bytes()),
        }
    }
    out
}

/// The keyspace id of a sharding key: `xxh3_64(canonical_bytes(values))`,
/// seed 0.
pub fn keyspace_id(values: &[KeyValue<'_>]) -> u64 {
    xxh3_64(&canonical_bytes(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn canonical_bytes_by_hand() {
        let cases: [(Vec<KeyValue<'_>>, &str); 8] = [
            (vec![], ""),
            (vec![KeyValue::Null], "00"),
            (vec![KeyValue::Int(42)], "01000000000000002a"),
            (vec![KeyValue::Int(i64::MIN)], "018000000000000000"),
            (vec![KeyValue::UInt(42)], "02000000000000002a"),
            (
                vec![KeyValue::Int(-1), KeyValue::Bytes(b"abc")],
                "01ffffffffffffffff0400000003616263",
            ),
            (
                vec![KeyValue::Other("12.50".into())],
                "050000000531322e3530",
            ),
            (
                vec![
                    KeyValue::UInt(u64::MAX),
                    KeyValue::Null,
                    KeyValue::Bytes(b""),
                ],
                "02ffffffffffffffff000400000000",
            ),
        ];
        for (values, want) in cases {
            assert_eq!(hex(&canonical_bytes(&values)), want, "{values:?}");
        }
    }

    /// Expected ids were cross-checked with Python's `xxhash` package:
    /// `xxhash.xxh3_64_intdigest(bytes.fromhex(canonical_hex))`.
    #[test]
    fn keyspace_ids_are_pinned() {
        let ts = "2024-01-02 03:04:05.000000".to_owned();
        let cases: [(Vec<KeyValue<'_>>, u64); 8] = [
            (vec![], 0x2d06_8005_38d3_94c2),
            (vec![KeyValue::Null], 0xc44b_dff4_074e_ecdb),
            (vec![KeyValue::Int(42)], 0x46bb_72a9_ed34_27e4),
            (vec![KeyValue::UInt(42)], 0x4002_36e4_6cae_3a13),
            (
                vec![KeyValue::Int(-1), KeyValue::Bytes(b"abc")],
                0xcd53_3c36_58b4_57bc,
            ),
            (vec![KeyValue::Other("12.50".into())], 0x4485_3ac3_9c30_5cba),
            (
                vec![
                    KeyValue::UInt(u64::MAX),
                    KeyValue::Null,
                    KeyValue::Bytes(b""),
                ],
                0xaf03_545e_fede_4e54,
            ),
            (vec![KeyValue::Other(Cow::Owned(ts))], 0xd211_1492_2fb4_4303),
        ];
        for (values, want) in cases {
            assert_eq!(keyspace_id(&values), want, "{values:?}");
        }
    }

    #[test]
    fn signed_and_unsigned_differ() {
        // Same 8 bytes, different tag: a column's signedness is part of the key.
        assert_ne!(
            keyspace_id(&[KeyValue::Int(42)]),
            keyspace_id(&[KeyValue::UInt(42)])
        );
    }

    fn arb_value() -> impl Strategy<Value = (u8, i64, Vec<u8>, String)> {
        (
            0u8..5,
            any::<i64>(),
            prop::collection::vec(any::<u8>(), 0..12),
            ".{0,6}",
        )
    }

    fn to_key(parts: &[(u8, i64, Vec<u8>, String)]) -> Vec<KeyValue<'_>> {
        parts
            .iter()
            .map(|(kind, n, bytes, text)| match kind {
                0 => KeyValue::Null,
                1 => KeyValue::Int(*n),
                2 => KeyValue::UInt(n.unsigned_abs()),
                3 => KeyValue::Bytes(bytes),
                _ => KeyValue::Other(Cow::Borrowed(text)),
            })
            .collect()
    }

    proptest! {
        /// The encoding is prefix-free, so distinct keys give distinct bytes.
        #[test]
        fn distinct_keys_distinct_bytes(a in prop::collection::vec(arb_value(), 0..4), b in prop::collection::vec(arb_value(), 0..4)) {
            let (ka, kb) = (to_key(&a), to_key(&b));
            prop_assert_eq!(ka == kb, canonical_bytes(&ka) == canonical_bytes(&kb));
        }

        #[test]
        fn id_is_hash_of_bytes(a in prop::collection::vec(arb_value(), 0..4)) {
            let key = to_key(&a);
            prop_assert_eq!(keyspace_id(&key), xxh3_64(&canonical_bytes(&key)));
        }
    }
}
