//! A position as a record or a server spelled it: the text kept byte for
//! byte, parsed once.
//!
//! Positions cross crates and are stored in etcd records, Kafka checkpoints
//! and status reports. The server's own spelling is not canonical (MySQL's
//! `@@gtid_executed` puts a newline after each comma; MariaDB's list order is
//! the server's), and records written before this type existed hold that
//! spelling. [`StoredPosition`] keeps the text verbatim, so every stored form
//! round-trips byte for byte, and carries the parsed [`Position`] so no
//! reader parses it again. A text that does not parse is refused where it is
//! read ([`FromStr`], [`Deserialize`]), naming the text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{GtidError, MariadbGtidList, Position};

/// A GTID position with the text it was read as.
#[derive(Debug, Clone)]
pub struct StoredPosition {
    text: String,
    position: Position,
}

impl StoredPosition {
    /// The empty position (`""`, "nothing yet").
    pub fn empty() -> Self {
        StoredPosition {
            text: String::new(),
            position: Position::Mariadb(MariadbGtidList::new()),
        }
    }

    /// The text, as read.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text parsed as one engine's type, for code that knows the
    /// engine (`p.parse::<MariadbGtidList>()`).
    pub fn parse<T: FromStr>(&self) -> Result<T, T::Err> {
        self.text.parse()
    }

    /// The parsed position.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Whether this is the empty position.
    pub fn is_empty(&self) -> bool {
        match &self.position {
            Position::Mariadb(l) => l.is_empty(),
            Position::Mysql(s) => s.is_empty(),
        }
    }

    /// Whether every transaction of `other` is part of this position.
    pub fn includes(&self, other: &StoredPosition) -> bool {
        self.position.includes(&other.position)
    }
}

impl Default for StoredPosition {
    fn default() -> Self {
        StoredPosition::empty()
    }
}

impl From<Position> for StoredPosition {
    /// A position computed here: stored in its canonical text.
    fn from(position: Position) -> Self {
        StoredPosition {
            text: position.to_string(),
            position,
        }
    }
}

impl FromStr for StoredPosition {
    type Err = GtidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(StoredPosition {
            position: s.parse()?,
            text: s.to_owned(),
        })
    }
}

/// Equal positions are equal whatever their spelling.
impl PartialEq for StoredPosition {
    fn eq(&self, other: &Self) -> bool {
        self.position == other.position
    }
}

impl Eq for StoredPosition {}

/// Compares the spelling: `position == "0-1-5"`.
impl PartialEq<&str> for StoredPosition {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl fmt::Display for StoredPosition {
    /// The text as read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for StoredPosition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for StoredPosition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER_TEXT: &str =
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4f11fa47-71ca-11e1-9e33-c80aa9429562:1-3";

    #[test]
    fn server_spelling_round_trips_byte_for_byte() {
        let p: StoredPosition = SERVER_TEXT.parse().expect("mysql set");
        assert_eq!(p.as_str(), SERVER_TEXT);
        let json = serde_json::to_string(&p).expect("serialise");
        assert_eq!(json, serde_json::to_string(SERVER_TEXT).expect("text"));
        let back: StoredPosition = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back.as_str(), SERVER_TEXT);
        // Equal by value, whatever the spelling.
        let canonical = StoredPosition::from(p.position().clone());
        assert_ne!(canonical.as_str(), SERVER_TEXT);
        assert_eq!(canonical, p);
    }

    #[test]
    fn unparsable_text_is_refused_where_it_is_read() {
        let err = serde_json::from_str::<StoredPosition>("\"0-1\"").expect_err("bad");
        assert!(err.to_string().contains("0-1"), "{err}");
        assert!("".parse::<StoredPosition>().expect("empty").is_empty());
        assert!(StoredPosition::empty().is_empty());
        let a: StoredPosition = "0-1-9".parse().expect("valid");
        let b: StoredPosition = "0-1-10".parse().expect("valid");
        assert!(b.includes(&a) && !a.includes(&b) && a.includes(&StoredPosition::empty()));
    }
}
