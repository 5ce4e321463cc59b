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
//!
//! [`StoredPosition`] is what crosses crates and is stored: a position with
//! the text it was read as, kept byte for byte (records round-trip), parsed
//! once.

mod mariadb;
mod mysql;
mod position;
mod stored;

use std::str::FromStr;

pub use mariadb::{MariadbGtid, MariadbGtidList};
pub use mysql::{MysqlGtidSet, ServerUuid};
pub use position::Position;
pub use stored::StoredPosition;

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

/// Parses a decimal number made only of ASCII digits (`u64::from_str` would
/// also accept a leading `+`).
fn parse_decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
