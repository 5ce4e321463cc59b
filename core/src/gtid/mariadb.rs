//! MariaDB GTIDs (`domain-server-seq`) and positions: one GTID per domain.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::{parse_decimal, GtidError};

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mariadb(s: &str) -> MariadbGtidList {
        s.parse().expect("test gtid list")
    }

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

    // --- properties ---

    pub(in crate::gtid) fn arb_mariadb_list() -> impl Strategy<Value = MariadbGtidList> {
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
    }
}
