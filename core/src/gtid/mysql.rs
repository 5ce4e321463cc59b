//! MySQL server uuids, transaction intervals and GTID sets
//! (`uuid:intervals`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::{parse_decimal, GtidError};

/// The largest MySQL transaction number (`GNO_END - 1` in the server).
const MAX_GNO: u64 = i64::MAX as u64;

/// A MySQL server uuid (the SID of a GTID), written `8-4-4-4-12` hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerUuid([u8; 16]);

impl ServerUuid {
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        ServerUuid(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl FromStr for ServerUuid {
    type Err = GtidError;

    /// Parses the hyphenated form, case-insensitively. The bare 32-digit and
    /// braced forms MySQL also accepts are refused: servers never print them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || GtidError::Uuid(s.to_owned());
        let groups: Vec<&str> = s.split('-').collect();
        if groups.iter().map(|g| g.len()).ne([8, 4, 4, 4, 12]) {
            return Err(err());
        }
        let mut bytes = [0u8; 16];
        let digits = groups.concat();
        for (byte, pair) in bytes.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| err())?;
            if !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        Ok(ServerUuid(bytes))
    }
}

impl fmt::Display for ServerUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Inclusive range of transaction numbers, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interval {
    start: u64,
    end: u64,
}

impl Interval {
    fn parse(s: &str) -> Result<Interval, GtidError> {
        let err = || GtidError::Interval(s.to_owned());
        let (start, end) = match s.split_once('-') {
            Some((a, b)) => (a, b),
            None => (s, s),
        };
        let start: u64 = parse_decimal(start).ok_or_else(err)?;
        let end: u64 = parse_decimal(end).ok_or_else(err)?;
        if start == 0 || start > end || end > MAX_GNO {
            return Err(err());
        }
        Ok(Interval { start, end })
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Adds `new` to a sorted list of disjoint, non-adjacent intervals, keeping
/// it so.
fn insert_interval(list: &mut Vec<Interval>, new: Interval) {
    // First interval that could touch `new`: ends at or after new.start - 1.
    let first = list.partition_point(|iv| iv.end.saturating_add(1) < new.start);
    // One past the last that could touch it: starts at or before new.end + 1.
    let last = list.partition_point(|iv| iv.start <= new.end.saturating_add(1));
    if first >= last {
        list.insert(first, new);
        return;
    }
    let merged = Interval {
        start: new.start.min(list[first].start),
        end: new.end.max(list[last - 1].end),
    };
    list.splice(first..last, [merged]);
}

/// A MySQL GTID set: the transaction numbers seen from each server uuid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlGtidSet {
    /// Per uuid: sorted, disjoint, non-adjacent intervals; never empty.
    by_uuid: BTreeMap<ServerUuid, Vec<Interval>>,
}

impl MysqlGtidSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uuid.is_empty()
    }

    /// Adds transaction `seq` of server `uuid`. Fails if `seq` is outside
    /// MySQL's `1..=i64::MAX`.
    pub fn add(&mut self, uuid: ServerUuid, seq: u64) -> Result<(), GtidError> {
        if seq == 0 || seq > MAX_GNO {
            return Err(GtidError::SeqOutOfRange(seq));
        }
        insert_interval(
            self.by_uuid.entry(uuid).or_default(),
            Interval {
                start: seq,
                end: seq,
            },
        );
        Ok(())
    }

    /// Whether transaction `seq` of server `uuid` is in the set.
    pub fn contains(&self, uuid: &ServerUuid, seq: u64) -> bool {
        let Some(list) = self.by_uuid.get(uuid) else {
            return false;
        };
        let i = list.partition_point(|iv| iv.end < seq);
        list.get(i).is_some_and(|iv| iv.start <= seq)
    }

    /// Whether every transaction of `other` is in this set.
    pub fn is_superset(&self, other: &MysqlGtidSet) -> bool {
        other.by_uuid.iter().all(|(uuid, theirs)| {
            let Some(ours) = self.by_uuid.get(uuid) else {
                return false;
            };
            // Ours are merged, so each of theirs must fit in one of ours.
            theirs.iter().all(|iv| {
                let i = ours.partition_point(|o| o.end < iv.end);
                ours.get(i).is_some_and(|o| o.start <= iv.start)
            })
        })
    }

    /// Adds every transaction of `other` to this set.
    pub fn merge(&mut self, other: &MysqlGtidSet) {
        for (uuid, theirs) in &other.by_uuid {
            let ours = self.by_uuid.entry(*uuid).or_default();
            for iv in theirs {
                insert_interval(ours, *iv);
            }
        }
    }

    /// The transactions of this set that `other` lacks.
    pub fn difference(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut out = MysqlGtidSet::new();
        for (uuid, ours) in &self.by_uuid {
            let theirs = other.by_uuid.get(uuid).map(Vec::as_slice).unwrap_or(&[]);
            let mut left = Vec::new();
            for iv in ours {
                let mut start = iv.start;
                // Theirs are sorted and disjoint: cut each overlap out.
                for t in theirs
                    .iter()
                    .filter(|t| t.end >= iv.start && t.start <= iv.end)
                {
                    if t.start > start {
                        left.push(Interval {
                            start,
                            end: t.start - 1,
                        });
                    }
                    start = start.max(t.end.saturating_add(1));
                }
                if start <= iv.end {
                    left.push(Interval { start, end: iv.end });
                }
            }
            if !left.is_empty() {
                out.by_uuid.insert(*uuid, left);
            }
        }
        out
    }

    /// How many transactions the set holds.
    pub fn count(&self) -> u64 {
        self.by_uuid
            .values()
            .flatten()
            .map(|iv| iv.end - iv.start + 1)
            .sum()
    }

    /// The transactions in either set.
    pub fn union(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut out = self.clone();
        out.merge(other);
        out
    }

    /// Each server uuid with its intervals as `[start, end)` pairs (end
    /// exclusive, as `COM_BINLOG_DUMP_GTID` takes them).
    pub fn intervals(&self) -> impl Iterator<Item = (&ServerUuid, Vec<(u64, u64)>)> + '_ {
        self.by_uuid
            .iter()
            .map(|(uuid, list)| (uuid, list.iter().map(|iv| (iv.start, iv.end + 1)).collect()))
    }

    /// The SID block of `COM_BINLOG_DUMP_GTID`: number of sids (u64 LE), then
    /// per sid its 16 uuid bytes, number of intervals (u64 LE) and each
    /// interval as start, end-exclusive (u64 LE each).
    pub fn encode_sid_block(&self) -> Vec<u8> {
        let n_intervals: usize = self.by_uuid.values().map(Vec::len).sum();
        let mut out = Vec::with_capacity(8 + self.by_uuid.len() * 24 + n_intervals * 16);
        out.extend_from_slice(&(self.by_uuid.len() as u64).to_le_bytes());
        for (uuid, list) in &self.by_uuid {
            out.extend_from_slice(uuid.as_bytes());
            out.extend_from_slice(&(list.len() as u64).to_le_bytes());
            for iv in list {
                out.extend_from_slice(&iv.start.to_le_bytes());
                // end <= i64::MAX, so end + 1 cannot overflow.
                out.extend_from_slice(&(iv.end + 1).to_le_bytes());
            }
        }
        out
    }
}

impl FromStr for MysqlGtidSet {
    type Err = GtidError;

    /// Parses `uuid:n[-m][:...],...`; see the module docs for what is
    /// accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = MysqlGtidSet::new();
        if s.trim().is_empty() {
            return Ok(set);
        }
        for element in s.split(',') {
            let element = element.trim();
            let mut parts = element.split(':');
            let uuid: ServerUuid = parts.next().unwrap_or_default().trim().parse()?;
            let mut intervals = parts.peekable();
            if intervals.peek().is_none() {
                return Err(GtidError::MissingIntervals(element.to_owned()));
            }
            let list = set.by_uuid.entry(uuid).or_default();
            for part in intervals {
                if part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                    return Err(GtidError::TaggedGtid(element.to_owned()));
                }
                insert_interval(list, Interval::parse(part)?);
            }
        }
        Ok(set)
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (uuid, list)) in self.by_uuid.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{uuid}")?;
            for iv in list {
                write!(f, ":{iv}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(in crate::gtid) const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    pub(in crate::gtid) const U2: &str = "4f8a0000-0000-0000-0000-0000000000ff";

    fn uuid(s: &str) -> ServerUuid {
        s.parse().expect("test uuid")
    }

    fn mysql(s: &str) -> MysqlGtidSet {
        s.parse().expect("test gtid set")
    }

    #[test]
    fn difference_cuts_out_what_the_other_set_holds() {
        let a = mysql(&format!("{U1}:1-20,{U2}:5-9"));
        let b = mysql(&format!("{U1}:3-4:8-12:20-30"));
        let d = a.difference(&b);
        assert_eq!(d.to_string(), format!("{U1}:1-2:5-7:13-19,{U2}:5-9"));
        assert_eq!(d.count(), 2 + 3 + 7 + 5);
        assert!(a.difference(&a).is_empty());
        assert_eq!(a.difference(&MysqlGtidSet::new()), a);
    }

    proptest! {
        #[test]
        fn difference_and_the_other_set_make_up_the_set(a in arb_mysql_set(), b in arb_mysql_set()) {
            let d = a.difference(&b);
            prop_assert!(a.is_superset(&d));
            prop_assert_eq!(d.union(&b), a.union(&b));
            prop_assert!(d.difference(&b) == d);
        }
    }

    #[test]
    fn uuid_parses_case_insensitively_and_displays_lower() {
        let u = uuid("3E11FA47-71CA-11E1-9E33-C80AA9429562");
        assert_eq!(u.to_string(), U1);
        assert_eq!(u.as_bytes()[0], 0x3e);
        assert_eq!(u.as_bytes()[15], 0x62);
        for bad in [
            "",
            "3e11fa4771ca11e19e33c80aa9429562",
            "3e11fa47-71ca-11e1-9e33-c80aa942956",
            "3e11fa47-71ca-11e1-9e33-c80aa942956g",
            "3e11fa47-71ca-11e1-9e33c-80aa9429562",
            "+e11fa47-71ca-11e1-9e33-c80aa9429562",
            "3e11fa47-71ca-11e1-9e33-c80aa942956é",
        ] {
            assert!(
                bad.parse::<ServerUuid>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn mysql_set_canonical_text() {
        let s = mysql(&format!(
            "{U2}:1-3,\n{}:7-9:1-5:6, {U1}:20",
            U1.to_uppercase()
        ));
        assert_eq!(s.to_string(), format!("{U1}:1-9:20,{U2}:1-3"));
        assert_eq!(mysql(&format!("{U1}:5-5")).to_string(), format!("{U1}:5"));
        assert_eq!(mysql("").to_string(), "");
    }

    #[test]
    fn mysql_set_refuses_bad_text() {
        let cases = [
            (U1.to_owned(), GtidError::MissingIntervals(U1.into())),
            (format!("{U1}:0"), GtidError::Interval("0".into())),
            (format!("{U1}:5-3"), GtidError::Interval("5-3".into())),
            (format!("{U1}:1-"), GtidError::Interval("1-".into())),
            (format!("{U1}:"), GtidError::Interval("".into())),
            (
                format!("{U1}:9223372036854775808"),
                GtidError::Interval("9223372036854775808".into()),
            ),
            (
                format!("{U1}:tag:5"),
                GtidError::TaggedGtid(format!("{U1}:tag:5")),
            ),
            (
                format!("{U1}:_t:5"),
                GtidError::TaggedGtid(format!("{U1}:_t:5")),
            ),
            ("nope:1".into(), GtidError::Uuid("nope".into())),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<MysqlGtidSet>(), Err(want), "{text:?}");
        }
    }

    #[test]
    fn mysql_add_contains_superset() {
        let u1 = uuid(U1);
        let mut s = MysqlGtidSet::new();
        for seq in [5, 3, 4, 10, 1] {
            s.add(u1, seq).expect("in range");
        }
        assert_eq!(s.to_string(), format!("{U1}:1:3-5:10"));
        assert!(s.contains(&u1, 4) && s.contains(&u1, 10));
        assert!(!s.contains(&u1, 2) && !s.contains(&u1, 11) && !s.contains(&uuid(U2), 1));
        s.add(u1, 2).expect("in range");
        assert_eq!(s.to_string(), format!("{U1}:1-5:10"));
        assert!(s.is_superset(&mysql(&format!("{U1}:2-4:10"))));
        assert!(!s.is_superset(&mysql(&format!("{U1}:4-6"))));
        assert!(!s.is_superset(&mysql(&format!("{U2}:1"))));
        assert!(s.is_superset(&MysqlGtidSet::new()));
        assert_eq!(s.add(u1, 0), Err(GtidError::SeqOutOfRange(0)));
        assert_eq!(
            s.add(u1, MAX_GNO + 1),
            Err(GtidError::SeqOutOfRange(MAX_GNO + 1))
        );
    }

    #[test]
    fn sid_block_layout() {
        let s = mysql(&format!("{U1}:1-5:7"));
        let mut want = 1u64.to_le_bytes().to_vec();
        want.extend_from_slice(uuid(U1).as_bytes());
        for n in [2u64, 1, 6, 7, 8] {
            want.extend_from_slice(&n.to_le_bytes());
        }
        assert_eq!(s.encode_sid_block(), want);
        assert_eq!(MysqlGtidSet::new().encode_sid_block(), 0u64.to_le_bytes());
    }

    // --- properties ---

    fn arb_uuid() -> impl Strategy<Value = ServerUuid> {
        // A few distinct uuids so that sets share some.
        (0u8..4, any::<u8>()).prop_map(|(a, b)| {
            let mut bytes = [0u8; 16];
            bytes[0] = a.wrapping_mul(0x51);
            bytes[15] = b % 3;
            ServerUuid(bytes)
        })
    }

    pub(in crate::gtid) fn arb_mysql_set() -> impl Strategy<Value = MysqlGtidSet> {
        prop::collection::vec((arb_uuid(), 1u64..60, 0u64..8), 0..10).prop_map(|ivs| {
            let mut set = MysqlGtidSet::new();
            for (uuid, start, len) in ivs {
                for seq in start..=start + len {
                    set.add(uuid, seq).expect("in range");
                }
            }
            set
        })
    }

    proptest! {
        #[test]
        fn mysql_text_roundtrip(set in arb_mysql_set()) {
            let text = set.to_string();
            let back: MysqlGtidSet = text.parse().expect("own output parses");
            prop_assert_eq!(back.to_string(), text);
            prop_assert_eq!(back, set);
        }

        #[test]
        fn mysql_union_laws(a in arb_mysql_set(), b in arb_mysql_set(), c in arb_mysql_set()) {
            prop_assert_eq!(a.union(&b), b.union(&a));
            prop_assert_eq!(a.union(&b).union(&c), a.union(&b.union(&c)));
            prop_assert_eq!(a.union(&a), a.clone());
            let u = a.union(&b);
            prop_assert!(u.is_superset(&a) && u.is_superset(&b));
        }

        #[test]
        fn mysql_membership_matches_a_model(a in arb_mysql_set(), b in arb_mysql_set(), uuid in arb_uuid(), seq in 1u64..75) {
            // `contains` agrees with union, and superset agrees with contains.
            let u = a.union(&b);
            prop_assert_eq!(u.contains(&uuid, seq), a.contains(&uuid, seq) || b.contains(&uuid, seq));
            let every = |x: &MysqlGtidSet, y: &MysqlGtidSet| y.by_uuid.iter().all(|(id, list)| {
                list.iter().all(|iv| (iv.start..=iv.end).all(|n| x.contains(id, n)))
            });
            prop_assert_eq!(a.is_superset(&b), every(&a, &b));
        }

        #[test]
        fn mysql_contains_after_add(mut set in arb_mysql_set(), uuid in arb_uuid(), seq in 1..=MAX_GNO) {
            let before = set.clone();
            set.add(uuid, seq).expect("in range");
            prop_assert!(set.contains(&uuid, seq));
            prop_assert!(set.is_superset(&before));
            // Intervals stay sorted, disjoint and non-adjacent.
            for list in set.by_uuid.values() {
                for w in list.windows(2) {
                    prop_assert!(w[0].end + 1 < w[1].start);
                }
            }
        }

        #[test]
        fn mysql_parser_never_panics(s in "[0-9a-fA-F:,\\- \n_t]{0,80}") {
            let _ = s.parse::<MysqlGtidSet>();
            let _ = s.parse::<crate::gtid::Position>();
        }
    }
}
