//! The engine-neutral capture position: a MariaDB list or a MySQL set,
//! stored as its text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{GtidError, MariadbGtid, MariadbGtidList, MysqlGtidSet, ServerUuid};

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

    /// This position with transaction `gtid` handled, and with it every
    /// earlier transaction of its origin: on MariaDB the domain's sequence
    /// moves to it ([`Position::add_gtid`]); on MySQL `uuid:1-n` joins the
    /// set — a server numbers its own transactions in binlog order, so a
    /// stream that handled `uuid:n` has handled (applied, or passed over as
    /// not its tables') every earlier one of that server. This is what an
    /// apply checkpoint reached after the transaction's last event.
    pub fn through_gtid(&self, gtid: &str) -> Result<Position, GtidError> {
        let mut next = self.clone();
        match gtid.rsplit_once(':') {
            Some((uuid, seq)) => {
                let prefix: MysqlGtidSet = format!("{uuid}:1-{seq}").parse()?;
                match &mut next {
                    Position::Mysql(set) => set.merge(&prefix),
                    Position::Mariadb(list) if list.is_empty() => next = Position::Mysql(prefix),
                    Position::Mariadb(_) => {
                        return Err(GtidError::MissingIntervals(gtid.to_owned()))
                    }
                }
            }
            None => next.add_gtid(gtid)?,
        }
        Ok(next)
    }

    /// What of this position `other` lacks, for an operator: how many
    /// transactions and which (MySQL: the GTID set; MariaDB: per domain, the
    /// sequence numbers past `other`'s — an upper bound, sequence numbers
    /// may skip). `None` when `other` includes it all. A position of the
    /// other engine counts as empty.
    pub fn missing_from(&self, other: &Position) -> Option<(u64, String)> {
        let (n, text) = match (self, other) {
            (Position::Mysql(a), b) => {
                let d = match b {
                    Position::Mysql(b) => a.difference(b),
                    Position::Mariadb(_) => a.clone(),
                };
                (d.count(), d.to_string())
            }
            (Position::Mariadb(a), b) => {
                let mut n = 0;
                let mut parts = Vec::new();
                for g in a.iter() {
                    let had = match b {
                        Position::Mariadb(b) => b.get(g.domain).map_or(0, |o| o.seq),
                        Position::Mysql(_) => 0,
                    };
                    if g.seq > had {
                        n += g.seq - had;
                        parts.push(format!(
                            "domain {} sequence {}-{}",
                            g.domain,
                            had + 1,
                            g.seq
                        ));
                    }
                }
                (n, parts.join(", "))
            }
        };
        (n > 0).then_some((n, text))
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
    use crate::gtid::mariadb::tests::arb_mariadb_list;
    use crate::gtid::mysql::tests::{arb_mysql_set, U1, U2};
    use proptest::prelude::*;

    #[test]
    fn missing_from_names_what_the_other_position_lacks() {
        let p = |s: &str| s.parse::<Position>().expect("position");
        assert_eq!(
            p("0-1-15,1-2-4").missing_from(&p("0-1-10")),
            Some((9, "domain 0 sequence 11-15, domain 1 sequence 1-4".into()))
        );
        assert_eq!(p("0-1-10").missing_from(&p("0-1-10,1-2-4")), None);
        assert_eq!(
            p(&format!("{U1}:1-20")).missing_from(&p(&format!("{U1}:1-17"))),
            Some((3, format!("{U1}:18-20")))
        );
        assert_eq!(
            p(&format!("{U1}:1-20")).missing_from(&p(&format!("{U1}:1-20"))),
            None
        );
    }

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

    #[test]
    fn through_gtid_takes_the_servers_earlier_transactions_along() {
        let empty: Position = "".parse().expect("empty");
        let p = empty.through_gtid(&format!("{U1}:7")).expect("mysql");
        assert_eq!(p.to_string(), format!("{U1}:1-7"));
        let base: Position = format!("{U1}:1-3,{U2}:1-9").parse().expect("set");
        let p = base.through_gtid(&format!("{U1}:12")).expect("mysql");
        assert_eq!(p.to_string(), format!("{U1}:1-12,{U2}:1-9"));
        assert!(p.includes(&base));
        let m = empty.through_gtid("0-1-5").expect("mariadb");
        assert_eq!(m.to_string(), "0-1-5");
        assert!(base.through_gtid("0-1-5").is_err());
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

    proptest! {
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
    }
}
