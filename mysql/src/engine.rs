//! Which engine a server is: MariaDB or MySQL decide the GTID protocol,
//! the position variables and some privilege names.

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
        let version: Option<String> = conn
            .query_first("SELECT @@version")
            .await
            .map_err(|e| MysqlError::query("read server version", e))?;
        Ok(Flavor::from_version(&version.unwrap_or_default()))
    }

    fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::Mariadb
        } else {
            Flavor::Mysql
        }
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
}
