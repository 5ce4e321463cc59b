//! Which engine a server is: MariaDB or MySQL decide the GTID protocol,
//! the position variables, some privilege names and the dialect of its
//! table definitions (`translate`); its version decides which collations
//! and clauses it has.

use std::fmt;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::MysqlError;

/// The server's engine, which decides the GTID protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Mariadb,
    Mysql,
}

impl Flavor {
    /// MariaDB if `@@version` says so, MySQL otherwise.
    pub async fn of(conn: &mut Conn) -> Result<Flavor, MysqlError> {
        Ok(Server::of(conn).await?.flavor)
    }

    fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::Mariadb
        } else {
            Flavor::Mysql
        }
    }

    /// The engine that wrote a transaction's GTID: MySQL's are `uuid:n`,
    /// MariaDB's `domain-server-seq`.
    pub fn of_gtid(gtid: &str) -> Flavor {
        if gtid.contains(':') {
            Flavor::Mysql
        } else {
            Flavor::Mariadb
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Mariadb => "MariaDB",
            Flavor::Mysql => "MySQL",
        })
    }
}

/// A server version, `major.minor.patch`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// The leading `major.minor.patch` of `@@version`
    /// (`10.11.19-MariaDB-0+deb12u1-log`, `9.7.4-2`); missing parts are 0.
    pub fn parse(version: &str) -> Version {
        let mut parts = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        Version(
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }

    /// The number versioned comments compare with: 10.11.19 is 101119,
    /// 9.7.4 is 90704.
    pub fn id(self) -> u32 {
        self.0 * 10_000 + self.1 * 100 + self.2
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A server's engine and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    pub flavor: Flavor,
    pub version: Version,
}

impl Server {
    /// The engine and version `@@version` names.
    pub async fn of(conn: &mut Conn) -> Result<Server, MysqlError> {
        let version: Option<String> = conn
            .query_first("SELECT @@version")
            .await
            .map_err(|e| MysqlError::query("read server version", e))?;
        Ok(Server::from_version(&version.unwrap_or_default()))
    }

    /// The engine and version of an `@@version` text.
    pub fn from_version(version: &str) -> Server {
        Server {
            flavor: Flavor::from_version(version),
            version: Version::parse(version),
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.flavor, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_from_version() {
        assert_eq!(
            Flavor::from_version("10.11.6-MariaDB-0+deb12u1-log"),
            Flavor::Mariadb
        );
        assert_eq!(Flavor::from_version("8.0.36"), Flavor::Mysql);
        assert_eq!(Flavor::from_version("8.4.0-commercial"), Flavor::Mysql);
    }

    #[test]
    fn versions_parse_and_order() {
        let maria = Server::from_version("10.11.19-MariaDB-0+deb12u1-log");
        assert_eq!(maria.flavor, Flavor::Mariadb);
        assert_eq!(maria.version, Version(10, 11, 19));
        assert_eq!(maria.version.id(), 101_119);
        let mysql = Server::from_version("9.7.4-2");
        assert_eq!(mysql.flavor, Flavor::Mysql);
        assert_eq!(mysql.version.id(), 90_704);
        assert!(Version(8, 0, 23) < mysql.version);
        assert!(Version(10, 10, 0) < maria.version);
        assert_eq!(Version::parse(""), Version(0, 0, 0));
    }

    #[test]
    fn gtid_tells_the_engine() {
        assert_eq!(
            Flavor::of_gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:23"),
            Flavor::Mysql
        );
        assert_eq!(Flavor::of_gtid("1-1-42"), Flavor::Mariadb);
    }
}
