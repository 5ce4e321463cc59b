//! The moved tables on a server: their `CREATE TABLE`, creating them (and
//! their database), checking for rows, dropping or renaming them.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use revdoor_mysql::{codes, quote_ident};

use super::{no_table, sql};
use crate::Error;

/// `CREATE TABLE` of `db.table` as the server has it, if the table exists.
pub async fn show_create(
    conn: &mut Conn,
    url: &str,
    db: &str,
    table: &str,
) -> Result<Option<String>, Error> {
    let row: Result<Option<(String, String)>, _> = conn
        .query_first(format!(
            "SHOW CREATE TABLE {}.{}",
            quote_ident(db),
            quote_ident(table)
        ))
        .await;
    match row {
        Ok(r) => Ok(r.map(|(_, ddl)| ddl)),
        Err(e) if no_table(&e) => Ok(None),
        Err(e) => Err(sql("SHOW CREATE TABLE", url)(e)),
    }
}

/// Create `db` unless it exists; true when this call created it.
pub async fn create_database(conn: &mut Conn, url: &str, db: &str) -> Result<bool, Error> {
    match conn
        .query_drop(format!("CREATE DATABASE {}", quote_ident(db)))
        .await
    {
        Ok(()) => Ok(true),
        Err(mysql_async::Error::Server(e)) if e.code == codes::DB_CREATE_EXISTS => Ok(false),
        Err(e) => Err(sql("create database", url)(e)),
    }
}

/// Run `create_table` (a `CREATE TABLE` of an unqualified name) in `db`.
pub async fn create_table(
    conn: &mut Conn,
    url: &str,
    db: &str,
    create_table: &str,
) -> Result<(), Error> {
    conn.query_drop(format!("USE {}", quote_ident(db)))
        .await
        .map_err(sql("use database", url))?;
    conn.query_drop(create_table)
        .await
        .map_err(sql(&format!("create table in {db}"), url))
}

/// Drop `db` if no table, view or routine is left in it; true when it
/// was dropped.
pub async fn drop_database_if_empty(conn: &mut Conn, url: &str, db: &str) -> Result<bool, Error> {
    let left: Option<u64> = conn
        .exec_first(
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?) + \
             (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?)",
            (db, db),
        )
        .await
        .map_err(sql("read what a database holds", url))?;
    if left.unwrap_or(0) > 0 {
        return Ok(false);
    }
    conn.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(db)))
        .await
        .map_err(sql("drop database", url))?;
    Ok(true)
}

/// Whether `db.table` has at least one row.
pub async fn has_rows(conn: &mut Conn, url: &str, db: &str, table: &str) -> Result<bool, Error> {
    let one: Option<u8> = conn
        .query_first(format!(
            "SELECT 1 FROM {}.{} LIMIT 1",
            quote_ident(db),
            quote_ident(table)
        ))
        .await
        .map_err(sql("read table", url))?;
    Ok(one.is_some())
}

/// Drop, or rename to `_<table>_old`, a moved table.
pub async fn drop_table(
    conn: &mut Conn,
    url: &str,
    db: &str,
    table: &str,
    rename: bool,
) -> Result<(), Error> {
    let stmt = if rename {
        format!(
            "RENAME TABLE {db_}.{t} TO {db_}.{old}",
            db_ = quote_ident(db),
            t = quote_ident(table),
            old = quote_ident(&format!("_{table}_old"))
        )
    } else {
        format!(
            "DROP TABLE IF EXISTS {}.{}",
            quote_ident(db),
            quote_ident(table)
        )
    };
    match conn.query_drop(stmt).await {
        Ok(()) => Ok(()),
        // Renamed or dropped already (idempotent retry).
        Err(e) if no_table(&e) => Ok(()),
        Err(e) => Err(sql("drop table", url)(e)),
    }
}
