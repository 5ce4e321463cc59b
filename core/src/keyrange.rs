//! Shard key ranges over the 64-bit keyspace id, Vitess style.
//!
//! A shard holds the rows whose keyspace id (see [`crate::keyspace_id`]) lies
//! in its [`KeyRange`]: start inclusive, end exclusive, either side possibly
//! unbounded. A range is named `start-end` where each side is empty
//! (unbounded) or hex digits giving the leading bytes of a big-endian 64-bit
//! value, right-padded with zero bytes:
//!
//! | name    | start                 | end                   |
//! |---------|-----------------------|-----------------------|
//! | `-`     | unbounded             | unbounded             |
//! | `-80`   | unbounded             | `0x8000_0000_0000_0000` |
//! | `80-`   | `0x8000_0000_0000_0000` | unbounded           |
//! | `40-80` | `0x4000_0000_0000_0000` | `0x8000_0000_0000_0000` |
//! | `-4010` | unbounded             | `0x4010_0000_0000_0000` |
//!
//! Each side has an even number of hex digits (whole bytes), at most 16;
//! upper or lower case is accepted, and `start < end` when both are given. A
//! bound of zero is written as unbounded on the start side (`00-80` is
//! `-80`); an end of zero is refused, as it would make an empty range.
//! [`Display`](std::fmt::Display) writes the canonical name: lower case,
//! trailing zero bytes dropped (`4000-8000` is `40-80`).
//!
//! A keyspace's shards must partition the whole space: [`check_partition`]
//! verifies that, and [`shard_for`] finds the shard of a keyspace id.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// What is wrong with a key range name or a set of shard ranges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRangeError {
    #[error("invalid key range {name:?}: {reason}")]
    Syntax { name: String, reason: &'static str },
    #[error("key range {0:?} is empty: its start is not below its end")]
    Empty(String),
    #[error("shard ranges are empty: at least one shard (`-` for unsharded) is needed")]
    NoRanges,
    #[error("shard ranges leave a gap: {0} is in no shard")]
    Gap(KeyRange),
    #[error("shard ranges overlap: {0} is in more than one shard")]
    Overlap(KeyRange),
}

/// A range of keyspace ids: `start` inclusive, `end` exclusive; `None` is
/// unbounded. Build one with [`KeyRange::new`] or by parsing its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRange {
    start: Option<u64>,
    end: Option<u64>,
}

impl KeyRange {
    /// The whole keyspace, `-`.
    pub const FULL: KeyRange = KeyRange {
        start: None,
        end: None,
    };

    /// A range from its bounds. A start of zero is the same as unbounded.
    /// Fails if the range would be empty.
    pub fn new(start: Option<u64>, end: Option<u64>) -> Result<Self, KeyRangeError> {
        let start = start.filter(|s| *s != 0);
        let range = KeyRange { start, end };
        match end {
            Some(e) if e <= start.unwrap_or(0) => Err(KeyRangeError::Empty(range.to_string())),
            _ => Ok(range),
        }
    }

    /// The inclusive lower bound, `None` if unbounded (from 0).
    pub fn start(&self) -> Option<u64> {
        self.start
    }

    /// The exclusive upper bound, `None` if unbounded (through `u64::MAX`).
    pub fn end(&self) -> Option<u64> {
        self.end
    }

    /// Whether `keyspace_id` belongs to this range.
    pub fn contains(&self, keyspace_id: u64) -> bool {
        self.start.unwrap_or(0) <= keyspace_id && !matches!(self.end, Some(e) if e <= keyspace_id)
    }

    /// Whether some keyspace id belongs to both ranges.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        let starts_before_other_ends = match (self.start, other.end) {
            (Some(s), Some(e)) => s < e,
            _ => true,
        };
        let other_starts_before_self_ends = match (other.start, self.end) {
            (Some(s), Some(e)) => s < e,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_self_ends
    }

    /// Whether this range is the whole keyspace (`-`).
    pub fn is_full(&self) -> bool {
        *self == KeyRange::FULL
    }
}

/// Parses one side of a name: hex digits, right-padded to 8 bytes.
fn parse_bound(name: &str, hex: &str) -> Result<Option<u64>, KeyRangeError> {
    let err = |reason| KeyRangeError::Syntax {
        name: name.to_owned(),
        reason,
    };
    if hex.is_empty() {
        return Ok(None);
    }
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err("bounds must be hex digits"));
    }
    if hex.len() % 2 == 1 {
        return Err(err(
            "each bound needs an even number of hex digits (whole bytes)",
        ));
    }
    if hex.len() > 16 {
        return Err(err("a bound has at most 16 hex digits (8 bytes)"));
    }
    let value = u64::from_str_radix(hex, 16).map_err(|_| err("bounds must be hex digits"))?;
    // len is 2..=16, so the shift is 0..=56.
    Ok(Some(value << (64 - 4 * hex.len())))
}

/// Writes a bound as its leading non-zero bytes (nothing for 0).
fn fmt_bound(f: &mut fmt::Formatter<'_>, bound: Option<u64>) -> fmt::Result {
    let Some(value) = bound.filter(|v| *v != 0) else {
        return Ok(());
    };
    let bytes = value.to_be_bytes();
    let len = 8 - (value.trailing_zeros() / 8) as usize;
    for byte in &bytes[..len] {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

impl FromStr for KeyRange {
    type Err = KeyRangeError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let Some((start, end)) = name.split_once('-') else {
            return Err(KeyRangeError::Syntax {
                name: name.to_owned(),
                reason: "expected start-end, e.g. -80, 80- or 40-80",
            });
        };
        let start = parse_bound(name, start)?;
        let end = parse_bound(name, end)?;
        if end == Some(0) {
            return Err(KeyRangeError::Empty(name.to_owned()));
        }
        KeyRange::new(start, end).map_err(|_| KeyRangeError::Empty(name.to_owned()))
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_bound(f, self.start)?;
        f.write_str("-")?;
        fmt_bound(f, self.end)
    }
}

impl serde::Serialize for KeyRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Verifies that `ranges` (in any order) cover every keyspace id exactly
/// once. The error names the first gap or overlap, in keyspace order.
pub fn check_partition(ranges: &[KeyRange]) -> Result<(), KeyRangeError> {
    let mut sorted: Vec<&KeyRange> = ranges.iter().collect();
    // Unbounded start sorts first (None < Some).
    sorted.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| cmp_end(a.end, b.end)));
    let Some(first) = sorted.first() else {
        return Err(KeyRangeError::NoRanges);
    };
    if let Some(s) = first.start {
        return Err(KeyRangeError::Gap(KeyRange {
            start: None,
            end: Some(s),
        }));
    }
    // `covered` is the exclusive end of everything seen so far; None = all.
    let mut covered = first.end;
    for range in &sorted[1..] {
        let Some(c) = covered else {
            // Everything is covered already; this range repeats some of it.
            return Err(KeyRangeError::Overlap(KeyRange {
                start: range.start,
                end: range.end,
            }));
        };
        let start = range.start.unwrap_or(0);
        match start.cmp(&c) {
            Ordering::Greater => {
                return Err(KeyRangeError::Gap(KeyRange {
                    start: Some(c),
                    end: Some(start),
                }));
            }
            Ordering::Less => {
                let end = match range.end {
                    Some(e) => Some(e.min(c)),
                    None => Some(c),
                };
                return Err(KeyRangeError::Overlap(KeyRange {
                    start: range.start,
                    end,
                }));
            }
            Ordering::Equal => covered = range.end,
        }
    }
    match covered {
        Some(c) => Err(KeyRangeError::Gap(KeyRange {
            start: Some(c),
            end: None,
        })),
        None => Ok(()),
    }
}

/// Orders exclusive ends, unbounded last.
fn cmp_end(a: Option<u64>, b: Option<u64>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// The index in `ranges` of the shard holding `keyspace_id` (the first, if
/// `ranges` is not a partition).
pub fn shard_for(ranges: &[KeyRange], keyspace_id: u64) -> Option<usize> {
    ranges.iter().position(|r| r.contains(keyspace_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kr(name: &str) -> KeyRange {
        name.parse().expect("test key range")
    }

    fn krs(names: &[&str]) -> Vec<KeyRange> {
        names.iter().map(|n| kr(n)).collect()
    }

    #[test]
    fn parses_vitess_names() {
        assert_eq!(kr("-"), KeyRange::FULL);
        assert!(kr("-").is_full());
        assert_eq!(
            kr("-80"),
            KeyRange {
                start: None,
                end: Some(0x8000_0000_0000_0000)
            }
        );
        assert_eq!(
            kr("80-"),
            KeyRange {
                start: Some(0x8000_0000_0000_0000),
                end: None
            }
        );
        assert_eq!(kr("-4000").end(), Some(0x4000_0000_0000_0000));
        assert_eq!(kr("C0-").start(), Some(0xc000_0000_0000_0000));
        assert_eq!(
            kr("40-8001"),
            KeyRange {
                start: Some(0x4000_0000_0000_0000),
                end: Some(0x8001_0000_0000_0000)
            }
        );
        assert_eq!(kr("-0102030405060708").end(), Some(0x0102_0304_0506_0708));
    }

    #[test]
    fn displays_canonical_names() {
        for (input, canonical) in [
            ("-", "-"),
            ("-80", "-80"),
            ("80-", "80-"),
            ("40-80", "40-80"),
            ("4000-8000", "40-80"),
            ("-4000", "-40"),
            ("C0-", "c0-"),
            ("00-80", "-80"),
            ("0001-", "0001-"),
            ("40-8001", "40-8001"),
            ("-ffffffffffffffff", "-ffffffffffffffff"),
        ] {
            assert_eq!(kr(input).to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        for bad in [
            "",
            "80",
            "8-",
            "-800",
            "x0-",
            "80--",
            "-+8",
            "-00112233445566778899",
            "-é0",
        ] {
            assert!(
                matches!(bad.parse::<KeyRange>(), Err(KeyRangeError::Syntax { .. })),
                "{bad:?} should be a syntax error"
            );
        }
        for empty in ["80-80", "80-40", "-00", "8000-80"] {
            assert_eq!(
                empty.parse::<KeyRange>(),
                Err(KeyRangeError::Empty(empty.into()))
            );
        }
    }

    #[test]
    fn contains_is_start_inclusive_end_exclusive() {
        let r = kr("40-80");
        assert!(!r.contains(0x3fff_ffff_ffff_ffff));
        assert!(r.contains(0x4000_0000_0000_0000));
        assert!(r.contains(0x7fff_ffff_ffff_ffff));
        assert!(!r.contains(0x8000_0000_0000_0000));
        assert!(kr("-").contains(0) && kr("-").contains(u64::MAX));
        assert!(kr("80-").contains(u64::MAX) && kr("-80").contains(0));
    }

    #[test]
    fn overlaps() {
        assert!(kr("-80").overlaps(&kr("40-c0")));
        assert!(kr("-").overlaps(&kr("40-80")));
        assert!(!kr("-80").overlaps(&kr("80-")));
        assert!(!kr("40-80").overlaps(&kr("-40")));
        assert!(kr("40-80").overlaps(&kr("7f-")));
    }

    #[test]
    fn check_partition_accepts_partitions_in_any_order() {
        assert_eq!(check_partition(&krs(&["-"])), Ok(()));
        assert_eq!(check_partition(&krs(&["80-", "-80"])), Ok(()));
        assert_eq!(
            check_partition(&krs(&["c0-", "-40", "80-c0", "40-80"])),
            Ok(())
        );
    }

    #[test]
    fn check_partition_names_gaps_and_overlaps() {
        assert_eq!(check_partition(&[]), Err(KeyRangeError::NoRanges));
        assert_eq!(
            check_partition(&krs(&["40-"])),
            Err(KeyRangeError::Gap(kr("-40")))
        );
        assert_eq!(
            check_partition(&krs(&["-40"])),
            Err(KeyRangeError::Gap(kr("40-")))
        );
        assert_eq!(
            check_partition(&krs(&["-40", "80-"])),
            Err(KeyRangeError::Gap(kr("40-80")))
        );
        assert_eq!(
            check_partition(&krs(&["-80", "40-"])),
            Err(KeyRangeError::Overlap(kr("40-80")))
        );
        assert_eq!(
            check_partition(&krs(&["-80", "-80", "80-"])),
            Err(KeyRangeError::Overlap(kr("-80")))
        );
        assert_eq!(
            check_partition(&krs(&["-", "80-"])),
            Err(KeyRangeError::Overlap(kr("80-")))
        );
        let err = check_partition(&krs(&["-40", "80-"])).expect_err("gap");
        assert_eq!(
            err.to_string(),
            "shard ranges leave a gap: 40-80 is in no shard"
        );
    }

    #[test]
    fn shard_for_finds_the_range() {
        let shards = krs(&["-40", "40-80", "80-c0", "c0-"]);
        assert_eq!(shard_for(&shards, 0), Some(0));
        assert_eq!(shard_for(&shards, 0x4000_0000_0000_0000), Some(1));
        assert_eq!(shard_for(&shards, 0xbfff_ffff_ffff_ffff), Some(2));
        assert_eq!(shard_for(&shards, u64::MAX), Some(3));
        assert_eq!(shard_for(&krs(&["-40"]), u64::MAX), None);
    }

    #[test]
    fn serialises_as_name() {
        let json = serde_json::to_string(&kr("4000-8000")).expect("serialise");
        assert_eq!(json, "\"40-80\"");
        assert_eq!(
            serde_json::from_str::<KeyRange>(&json).expect("deserialise"),
            kr("40-80")
        );
        assert!(serde_json::from_str::<KeyRange>("\"80-40\"").is_err());
    }

    /// A partition from sorted distinct cut points: `-c1, c1-c2, …, cn-`.
    fn partition_from_cuts(mut cuts: Vec<u64>) -> Vec<KeyRange> {
        cuts.retain(|c| *c != 0);
        cuts.sort_unstable();
        cuts.dedup();
        let bounds: Vec<Option<u64>> = std::iter::once(None)
            .chain(cuts.into_iter().map(Some))
            .chain(std::iter::once(None))
            .collect();
        bounds
            .windows(2)
            .map(|w| KeyRange::new(w[0], w[1]).expect("cuts are increasing"))
            .collect()
    }

    fn arb_range() -> impl Strategy<Value = KeyRange> {
        (any::<Option<u64>>(), any::<Option<u64>>())
            .prop_filter_map("empty range", |(s, e)| KeyRange::new(s, e).ok())
    }

    proptest! {
        #[test]
        fn name_roundtrip(r in arb_range()) {
            let name = r.to_string();
            prop_assert_eq!(name.parse::<KeyRange>(), Ok(r));
        }

        #[test]
        fn byte_aligned_names_roundtrip(s in prop::collection::vec(any::<u8>(), 0..=8), e in prop::collection::vec(any::<u8>(), 0..=8)) {
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            if let Ok(r) = format!("{}-{}", hex(&s), hex(&e)).parse::<KeyRange>() {
                let name = r.to_string();
                prop_assert_eq!(name.parse::<KeyRange>(), Ok(r));
                // Canonical names never end a bound with a zero byte.
                for side in name.split('-') {
                    prop_assert!(!side.ends_with("00"));
                }
            }
        }

        #[test]
        fn every_id_in_exactly_one_shard(cuts in prop::collection::vec(any::<u64>(), 0..8), id in any::<u64>(), shuffle in any::<u64>()) {
            let mut shards = partition_from_cuts(cuts);
            let len = shards.len();
            shards.rotate_left((shuffle as usize) % len);
            prop_assert_eq!(check_partition(&shards), Ok(()));
            prop_assert_eq!(shards.iter().filter(|r| r.contains(id)).count(), 1);
            let i = shard_for(&shards, id).expect("partition covers every id");
            prop_assert!(shards[i].contains(id));
        }

        #[test]
        fn dropping_or_repeating_a_shard_is_caught(cuts in prop::collection::vec(1u64.., 1..8), pick in any::<usize>()) {
            let shards = partition_from_cuts(cuts);
            let i = pick % shards.len();
            let mut missing = shards.clone();
            let dropped = missing.remove(i);
            prop_assert_eq!(check_partition(&missing), if missing.is_empty() {
                Err(KeyRangeError::NoRanges)
            } else {
                Err(KeyRangeError::Gap(dropped))
            });
            let mut doubled = shards.clone();
            doubled.push(shards[i]);
            prop_assert!(matches!(check_partition(&doubled), Err(KeyRangeError::Overlap(_))));
        }

        #[test]
        fn overlaps_iff_a_common_id(a in arb_range(), b in arb_range()) {
            // The latest start is the smallest id that could be in both.
            let probe = a.start().unwrap_or(0).max(b.start().unwrap_or(0));
            prop_assert_eq!(a.overlaps(&b), a.contains(probe) && b.contains(probe));
            prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
        }
    }
}
