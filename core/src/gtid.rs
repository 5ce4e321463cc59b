//! GTID positions for both engines.
//!
//! A capture checkpoint is the set of source transactions already published
//! (DESIGN §4). The two engines write it differently:
//!
//! # MariaDB: `domain-server-seq` lists
//!
//! A MariaDB GTID is `d-s-n`: replication domain, originating server id and
//! sequence number, e.g. `0-1-42`. A *position* ([`MariadbGtidList`], the
//! value of `@@gtid_binlog_pos` / `@@gtid_slave_pos`) holds at most one GTID
//! per domain, the last one applied there, written comma-separated and
//! sorted by domain: `0-1-42,1-2-9`. The empty string is the empty position.
//!
//! With `gtid_strict_mode` (which revdoor requires) sequence numbers only
//! grow within a domain, so "has this position reached that GTID" is a
//! comparison of sequence numbers within the GTID's domain
//! ([`MariadbGtidList::contains`]); the server id plays no part in it. When
//! two GTIDs of one domain must be ordered (merging positions), the higher
//! `(seq, server)` wins, so merging is deterministic even outside strict mode.
//!
//! # MySQL: `uuid:intervals` sets
//!
//! A MySQL GTID is `uuid:n`; a GTID *set* ([`MysqlGtidSet`], the value of
//! `@@gtid_executed`) maps each source server uuid to the transaction
//! numbers seen from it, as inclusive intervals:
//! `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,4f...:1-3`. The canonical text
//! (what [`Display`](std::fmt::Display) writes) has lower-case uuids in
//! ascending order, each with its intervals sorted and merged (`1-5:6` is
//! written `1-6`), singletons as `n`. Parsing accepts any order, repeated
//! uuids, overlapping intervals and whitespace around elements (MySQL puts a
//! newline after each comma).
//!
//! Transaction numbers are `1..=i64::MAX`, as in MySQL. Tagged GTIDs
//! (`uuid:tag:n`, MySQL 8.3+) are not supported: parsing one fails with
//! [`GtidError::TaggedGtid`] rather than silently dropping the tag.
//!
//! [`MysqlGtidSet::encode_sid_block`] produces the binary form that
//! `COM_BINLOG_DUMP_GTID` expects.
//!
//! # Either engine
//!
//! [`Position`] holds either kind and is stored as its text: a `:` means
//! MySQL. The empty string is ambiguous and parses as an empty MariaDB list;
//! code that knows the engine should parse the specific type instead.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a GTID or GTID position could not be parsed or extended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidError {
    #[error("invalid MariaDB GTID {0:?}: expected domain-server-seq, e.g. 0-1-42")]
    MariadbGtid(String),
    #[error("MariaDB GTID position lists domain {0} twice")]
    DuplicateDomain(u32),
    #[error("invalid server uuid {0:?}: expected 8-4-4-4-12 hex digits")]
    Uuid(String),
    #[error("invalid GTID interval {0:?}: expected n or a-b with 1 <= a <= b <= {max}", max = i64::MAX)]
    Interval(String),
    #[error("GTID set element {0:?} has no transaction numbers: expected uuid:n[-m][:...]")]
    MissingIntervals(String),
    #[error("tagged GTIDs (uuid:tag:n, MySQL 8.3+) are not supported: {0:?}")]
    TaggedGtid(String),
    #[error("transaction number {0} out of range 1..={max}", max = i64::MAX)]
    SeqOutOfRange(u64),
}

// ---------------------------------------------------------------- MariaDB --

/// One MariaDB GTID, `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariadbGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl MariadbGtid {
    /// The order used when two GTIDs of one domain compete: higher sequence
    /// number first, then higher server id (only ever needed outside strict
    /// mode; it makes merging deterministic).
    fn supersedes(&self, other: &MariadbGtid) -> bool {
        (self.seq, self.server) > (other.seq, other.server)
    }
}

/// Parses a decimal number made only of ASCII digits (`u64::from_str` would
/// also accept a leading `+`).
fn parse_decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for MariadbGtid {
    type Err = GtidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || GtidError::MariadbGtid(s.to_owned());
        let mut parts = s.split('-');
        let (Some(d), Some(sv), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        Ok(MariadbGtid {
            domain: parse_decimal(d).ok_or_else(err)?,
            server: parse_decimal(sv).ok_or_else(err)?,
            seq: parse_decimal(n).ok_or_else(err)?,
        })
    }
}

impl fmt::Display for MariadbGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// A MariaDB GTID position: the last GTID of each replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariadbGtidList {
    by_domain: BTreeMap<u32, MariadbGtid>,
}

impl MariadbGtidList {
    /// The empty position (nothing applied in any domain).
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The GTID this position holds for `domain`.
    pub fn get(&self, domain: u32) -> Option<&MariadbGtid> {
        self.by_domain.get(&domain)
    }

    /// The GTIDs of this position, in domain order.
    pub fn iter(&self) -> impl Iterator<Item = &MariadbGtid> {
        self.by_domain.values()
    }

    /// Advances `gtid.domain` to `gtid`, unless the position is already past
    /// it. Returns whether the position changed.
    pub fn update(&mut self, gtid: MariadbGtid) -> bool {
        match self.by_domain.get_mut(&gtid.domain) {
            Some(current) if !gtid.supersedes(current) => false,
            Some(current) => {
                *current = gtid;
                true
            }
            None => {
                self.by_domain.insert(gtid.domain, gtid);
                true
            }
        }
    }

    /// Whether this position has reached `gtid`: it holds the same domain
    /// with a sequence number at least `gtid.seq`. This relies on sequence
    /// numbers growing within a domain (`gtid_strict_mode`).
    pub fn contains(&self, gtid: &MariadbGtid) -> bool {
        self.by_domain
            .get(&gtid.domain)
            .is_some_and(|current| current.seq >= gtid.seq)
    }

    /// Whether this position has reached every domain of `other`.
    pub fn includes(&self, other: &MariadbGtidList) -> bool {
        other.iter().all(|gtid| self.contains(gtid))
    }

    /// Merges `other` into this position: the later GTID of each domain.
    pub fn merge(&mut self, other: &MariadbGtidList) {
        for gtid in other.iter() {
            self.update(*gtid);
        }
    }

    /// The position that has reached both `self` and `other`.
    pub fn union(&self, other: &MariadbGtidList) -> MariadbGtidList {
        let mut out = self.clone();
        out.merge(other);
        out
    }
}

impl FromIterator<MariadbGtid> for MariadbGtidList {
    /// Collects GTIDs, keeping the latest of each domain.
    fn from_iter<I: IntoIterator<Item = MariadbGtid>>(iter: I) -> Self {
        let mut list = MariadbGtidList::new();
        for gtid in iter {
            list.update(gtid);
        }
        list
    }
}

impl FromStr for MariadbGtidList {
    type Err = GtidError;

    /// Parses `d-s-n,d-s-n,...` (whitespace around elements allowed; the
    /// empty string is the empty position). A domain listed twice is an
    /// error, as in MariaDB.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut list = MariadbGtidList::new();
        if s.trim().is_empty() {
            return Ok(list);
        }
        for part in s.split(',') {
            let gtid: MariadbGtid = part.trim().parse()?;
            if list.by_domain.insert(gtid.domain, gtid).is_some() {
                return Err(GtidError::DuplicateDomain(gtid.domain));
            }
        }
        Ok(list)
    }
}

impl fmt::Display for MariadbGtidList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{gtid}")?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ MySQL --

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

// --------------------------------------------------------------- Position --

/// A capture position on either engine; stored and serialised as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Mariadb(MariadbGtidList),
    Mysql(MysqlGtidSet),
}

impl Position {
    /// Whether the transaction `gtid` (`domain-server-seq` or `uuid:seq`)
    /// is part of this position. A GTID of the other engine, or one that
    /// does not parse, is not.
    pub fn contains_gtid(&self, gtid: &str) -> bool {
        match self {
            Position::Mariadb(list) => gtid.parse::<MariadbGtid>().is_ok_and(|g| list.contains(&g)),
            Position::Mysql(set) => gtid
                .rsplit_once(':')
                .and_then(|(uuid, seq)| {
                    Some((uuid.parse::<ServerUuid>().ok()?, seq.parse::<u64>().ok()?))
                })
                .is_some_and(|(uuid, seq)| set.contains(&uuid, seq)),
        }
    }

    /// Adds the transaction `gtid` (`domain-server-seq` or `uuid:seq`). An
    /// empty position takes the engine of the GTID (an empty start
    /// position parses as MariaDB's).
    pub fn add_gtid(&mut self, gtid: &str) -> Result<(), GtidError> {
        let mysql = gtid.contains(':');
        let empty = match self {
            Position::Mariadb(l) => l.is_empty(),
            Position::Mysql(s) => s.is_empty(),
        };
        if empty {
            *self = if mysql {
                Position::Mysql(MysqlGtidSet::new())
            } else {
                Position::Mariadb(MariadbGtidList::new())
            };
        }
        match self {
            Position::Mariadb(list) => {
                list.update(gtid.parse()?);
                Ok(())
            }
            Position::Mysql(set) => {
                let (uuid, seq) = gtid
                    .rsplit_once(':')
                    .ok_or_else(|| GtidError::MissingIntervals(gtid.to_owned()))?;
                if uuid.contains(':') {
                    return Err(GtidError::TaggedGtid(gtid.to_owned()));
                }
                let seq: u64 = seq
                    .parse()
                    .map_err(|_| GtidError::Interval(seq.to_owned()))?;
                set.add(uuid.parse()?, seq)
            }
        }
    }

    /// Whether every transaction of `other` is part of this position. The
    /// empty position (`""`) is part of every position.
    pub fn includes(&self, other: &Position) -> bool {
        match (self, other) {
            (_, Position::Mariadb(o)) if o.is_empty() => true,
            (_, Position::Mysql(o)) if o.is_empty() => true,
            (Position::Mariadb(a), Position::Mariadb(b)) => a.includes(b),
            (Position::Mysql(a), Position::Mysql(b)) => a.is_superset(b),
            _ => false,
        }
    }
}

impl FromStr for Position {
    type Err = GtidError;

    /// MySQL if the text has a `:`, MariaDB otherwise (so `""` is an empty
    /// MariaDB position).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse().map(Position::Mysql)
        } else {
            s.parse().map(Position::Mariadb)
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Mariadb(list) => list.fmt(f),
            Position::Mysql(set) => set.fmt(f),
        }
    }
}

impl Serialize for Position {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_gtid_refuses_the_other_engine_and_tags() {
        let mut p: Position = "0-1-5".parse().expect("mariadb");
        assert!(p
            .add_gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:7")
            .is_err());
        let mut y: Position = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3"
            .parse()
            .expect("mysql");
        assert!(y.add_gtid("0-1-6").is_err());
        assert!(y
            .add_gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:tag:4")
            .is_err());
        y.add_gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:4")
            .expect("add");
        assert_eq!(y.to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4");
    }
    use proptest::prelude::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4f8a0000-0000-0000-0000-0000000000ff";

    fn uuid(s: &str) -> ServerUuid {
        s.parse().expect("test uuid")
    }

    fn mysql(s: &str) -> MysqlGtidSet {
        s.parse().expect("test gtid set")
    }

    fn mariadb(s: &str) -> MariadbGtidList {
        s.parse().expect("test gtid list")
    }

    #[test]
    fn positions_contain_gtids_and_include_positions() {
        let p: Position = "0-1-10,1-2-5".parse().expect("valid");
        assert!(p.contains_gtid("0-1-10"));
        assert!(p.contains_gtid("1-2-3"));
        assert!(!p.contains_gtid("0-1-11"));
        assert!(!p.contains_gtid("2-1-1"));
        assert!(!p.contains_gtid("not a gtid"));
        let earlier: Position = "0-1-9".parse().expect("valid");
        let empty: Position = "".parse().expect("valid");
        assert!(p.includes(&earlier) && !earlier.includes(&p));
        assert!(earlier.includes(&empty) && empty.includes(&empty) && !empty.includes(&p));
        let m: Position = format!("{U1}:1-7").parse().expect("valid");
        assert!(m.contains_gtid(&format!("{U1}:7")));
        assert!(!m.contains_gtid(&format!("{U1}:8")));
        assert!(!m.contains_gtid(&format!("{U2}:1")));
        assert!(m.includes(&empty) && !m.includes(&earlier));
        let m2: Position = format!("{U1}:1-3").parse().expect("valid");
        assert!(m.includes(&m2) && !m2.includes(&m));
    }

    // --- MariaDB ---

    #[test]
    fn mariadb_gtid_parses_and_displays() {
        let g: MariadbGtid = "0-1-42".parse().expect("valid");
        assert_eq!(
            g,
            MariadbGtid {
                domain: 0,
                server: 1,
                seq: 42
            }
        );
        assert_eq!(g.to_string(), "0-1-42");
        for bad in [
            "",
            "0-1",
            "0-1-2-3",
            "a-1-2",
            "0--2",
            "+0-1-2",
            "0-1-",
            "4294967296-1-1",
        ] {
            assert!(
                bad.parse::<MariadbGtid>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn mariadb_list_is_sorted_by_domain() {
        let list = mariadb(" 2-2-9,\n1-1-5 ");
        assert_eq!(list.to_string(), "1-1-5,2-2-9");
        assert_eq!(mariadb("").to_string(), "");
        assert!(mariadb("  ").is_empty());
    }

    #[test]
    fn mariadb_list_refuses_duplicate_domain_and_junk() {
        assert_eq!(
            "1-1-5,1-2-7".parse::<MariadbGtidList>(),
            Err(GtidError::DuplicateDomain(1))
        );
        assert!("1-1-5,".parse::<MariadbGtidList>().is_err());
        assert!("1-1-5;2-2-2".parse::<MariadbGtidList>().is_err());
    }

    #[test]
    fn mariadb_update_contains_includes() {
        let mut list = mariadb("0-1-10");
        assert!(!list.update("0-1-9".parse().expect("valid")));
        assert!(list.update("0-2-11".parse().expect("valid")));
        assert!(list.update("3-1-1".parse().expect("valid")));
        assert_eq!(list.to_string(), "0-2-11,3-1-1");
        // contains compares sequence numbers within the domain only.
        assert!(list.contains(&"0-7-11".parse().expect("valid")));
        assert!(list.contains(&"0-1-3".parse().expect("valid")));
        assert!(!list.contains(&"0-2-12".parse().expect("valid")));
        assert!(!list.contains(&"1-1-1".parse().expect("valid")));
        assert!(list.includes(&mariadb("0-1-5,3-1-1")));
        assert!(list.includes(&mariadb("")));
        assert!(!list.includes(&mariadb("0-1-5,4-1-1")));
    }

    #[test]
    fn mariadb_union_takes_latest_per_domain() {
        let u = mariadb("0-1-10,1-1-3").union(&mariadb("1-2-5,2-1-1"));
        assert_eq!(u.to_string(), "0-1-10,1-2-5,2-1-1");
    }

    // --- MySQL ---

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

    // --- Position ---

    #[test]
    fn position_picks_engine_by_syntax_and_serialises_as_text() {
        let m: Position = "0-1-5".parse().expect("mariadb");
        assert!(matches!(m, Position::Mariadb(_)));
        let y: Position = format!("{U1}:1-3").parse().expect("mysql");
        assert!(matches!(y, Position::Mysql(_)));
        assert_eq!(
            "".parse::<Position>(),
            Ok(Position::Mariadb(MariadbGtidList::new()))
        );
        let json = serde_json::to_string(&y).expect("serialise");
        assert_eq!(json, format!("\"{U1}:1-3\""));
        assert_eq!(
            serde_json::from_str::<Position>(&json).expect("deserialise"),
            y
        );
        assert!(serde_json::from_str::<Position>("\"0-1\"").is_err());
    }

    // --- properties ---

    fn arb_mariadb_list() -> impl Strategy<Value = MariadbGtidList> {
        prop::collection::vec((0u32..5, 0u32..4, 0u64..50), 0..6).prop_map(|gs| {
            gs.into_iter()
                .map(|(domain, server, seq)| MariadbGtid {
                    domain,
                    server,
                    seq,
                })
                .collect()
        })
    }

    fn arb_uuid() -> impl Strategy<Value = ServerUuid> {
        // A few distinct uuids so that sets share some.
        (0u8..4, any::<u8>()).prop_map(|(a, b)| {
            let mut bytes = [0u8; 16];
            bytes[0] = a.wrapping_mul(0x51);
            bytes[15] = b % 3;
            ServerUuid(bytes)
        })
    }

    fn arb_mysql_set() -> impl Strategy<Value = MysqlGtidSet> {
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
        fn mariadb_text_roundtrip(list in arb_mariadb_list()) {
            let text = list.to_string();
            let back: MariadbGtidList = text.parse().expect("own output parses");
            prop_assert_eq!(back.to_string(), text);
            prop_assert_eq!(back, list);
        }

        #[test]
        fn mariadb_union_laws(a in arb_mariadb_list(), b in arb_mariadb_list(), c in arb_mariadb_list()) {
            prop_assert_eq!(a.union(&b), b.union(&a));
            prop_assert_eq!(a.union(&b).union(&c), a.union(&b.union(&c)));
            prop_assert_eq!(a.union(&a), a.clone());
            let u = a.union(&b);
            prop_assert!(u.includes(&a) && u.includes(&b));
            for g in u.iter() {
                let best = a.get(g.domain).into_iter().chain(b.get(g.domain))
                    .max_by_key(|x| (x.seq, x.server));
                prop_assert_eq!(Some(g), best);
            }
        }

        #[test]
        fn mariadb_contains_after_update(mut list in arb_mariadb_list(), d in 0u32..5, s in 0u32..4, n in 0u64..50) {
            let g = MariadbGtid { domain: d, server: s, seq: n };
            list.update(g);
            prop_assert!(list.contains(&g));
        }

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
        fn position_text_roundtrip(m in arb_mariadb_list(), y in arb_mysql_set()) {
            let pm = Position::Mariadb(m);
            prop_assert_eq!(pm.to_string().parse::<Position>(), Ok(pm));
            if !y.is_empty() {
                let py = Position::Mysql(y);
                prop_assert_eq!(py.to_string().parse::<Position>(), Ok(py));
            }
        }

        #[test]
        fn add_gtid_then_contains(y in arb_mysql_set(), seq in 1u64..1000) {
            // Adding the GTIDs of a set one by one gives the set.
            let mut p: Position = "".parse().expect("empty");
            let mut n = 0;
            for (uuid, ivs) in y.intervals() {
                for (a, b) in ivs {
                    for g in a..b.min(a + 50) {
                        let gtid = format!("{uuid}:{g}");
                        p.add_gtid(&gtid).expect("add");
                        prop_assert!(p.contains_gtid(&gtid));
                        n += 1;
                    }
                }
            }
            if n > 0 {
                prop_assert!(Position::Mysql(y.clone()).includes(&p));
            }
            let mut m: Position = "".parse().expect("empty");
            let (this, next) = (format!("0-1-{seq}"), format!("0-1-{}", seq + 1));
            m.add_gtid(&this).expect("add mariadb");
            prop_assert!(m.contains_gtid(&this));
            prop_assert!(!m.contains_gtid(&next));
        }

        #[test]
        fn mysql_parser_never_panics(s in "[0-9a-fA-F:,\\- \n_t]{0,80}") {
            let _ = s.parse::<MysqlGtidSet>();
            let _ = s.parse::<Position>();
        }
    }
}
