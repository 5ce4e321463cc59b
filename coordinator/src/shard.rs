//! What the coordinator does on a shard's server: fences, positions,
//! applied positions, table copies.
//!
//! # Fences (DESIGN §6 step 2, way (b))
//!
//! `workflow create` installs, on every moved table of both keyspaces,
//! `BEFORE INSERT/UPDATE/DELETE` triggers that read the table's row in
//! `_revdoor.fences` with `LOCK IN SHARE MODE` and `SIGNAL SQLSTATE '45000'`
//! with the row's message when it is fenced. revdoor's own account (the user
//! of the shard's URL, which apply writes through) is exempt. Fencing a
//! shard is then one `UPDATE` of its workflow's rows: it waits for every
//! in-flight writer of a moved table (each holds the shared lock until it
//! commits), so no write to a moved table can commit after the fence's own
//! GTID; writers that come later read `fenced = 1` and fail with the message.
//! The target is fenced from `create` on; the source until a switch.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use crate::Error;

fn sql(what: &str, url: &str) -> impl FnOnce(mysql_async::Error) -> Error {
    let what = format!("{what} on {}", redact(url));
    move |e| Error::Sql(format!("{what}: {e}"))
}

/// The table (or its database) does not exist: an idempotent step that
/// finds nothing to do.
fn no_table(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1146 || s.code == 1049)
}

/// A URL without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Connect to a shard's server.
pub async fn connect(url: &str) -> Result<Conn, Error> {
    let opts = Opts::from_url(url)
        .map_err(|e| Error::Refused(format!("bad MySQL URL '{}': {e}", redact(url))))?;
    let opts: Opts = mysql_async::OptsBuilder::from_opts(opts)
        .conn_ttl(None)
        .into();
    Conn::new(opts)
        .await
        .map_err(|e| Error::Sql(format!("cannot connect to {}: {e}", redact(url))))
}

/// The account apply writes through (exempt from fences).
pub fn account(url: &str) -> Result<String, Error> {
    let opts = Opts::from_url(url)
        .map_err(|e| Error::Refused(format!("bad MySQL URL '{}': {e}", redact(url))))?;
    Ok(opts.user().unwrap_or("root").to_string())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Trigger name for (workflow, table, op): `_revdoor_fence_<op>_<hash>`
/// (trigger names are per schema and at most 64 characters).
fn trigger_name(workflow: &str, db: &str, table: &str, op: &str) -> String {
    let h = xxhash_rust::xxh3::xxh3_64(format!("{workflow}\0{db}\0{table}").as_bytes());
    format!("_revdoor_fence_{op}_{h:016x}")
}

const FENCES_DDL: [&str; 2] = [
    "CREATE DATABASE IF NOT EXISTS _revdoor",
    "CREATE TABLE IF NOT EXISTS _revdoor.fences (
        workflow VARCHAR(64) NOT NULL,
        db       VARCHAR(64) NOT NULL,
        tbl      VARCHAR(64) NOT NULL,
        fenced   TINYINT NOT NULL,
        message  VARCHAR(400) NOT NULL,
        PRIMARY KEY (workflow, db, tbl)
    ) ENGINE=InnoDB",
];

/// Install the fence rows and triggers of `workflow` on `tables` of this
/// server, fenced or not, with `message`. Idempotent: existing triggers
/// stay; the rows are set.
pub async fn install_fences(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    tables: &[(String, String)],
    fenced: bool,
    message: &str,
) -> Result<(), Error> {
    for ddl in FENCES_DDL {
        conn.query_drop(ddl)
            .await
            .map_err(sql("create _revdoor.fences", url))?;
    }
    let exempt = account(url)?;
    for (db, table) in tables {
        conn.exec_drop(
            "INSERT INTO _revdoor.fences (workflow, db, tbl, fenced, message) VALUES (?, ?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE fenced = VALUES(fenced), message = VALUES(message)",
            (workflow, db, table, fenced as u8, message),
        )
        .await
        .map_err(sql("write fence row", url))?;
        for (op, event) in [("bi", "INSERT"), ("bu", "UPDATE"), ("bd", "DELETE")] {
            let name = trigger_name(workflow, db, table, op);
            let exists: Option<String> = conn
                .exec_first(
                    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS \
                     WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?",
                    (db, &name),
                )
                .await
                .map_err(sql("read triggers", url))?;
            if exists.is_some() {
                continue;
            }
            let body = format!(
                "CREATE TRIGGER {db_}.{name_} BEFORE {event} ON {db_}.{table_} FOR EACH ROW \
                 BEGIN \
                   DECLARE f TINYINT DEFAULT 0; \
                   DECLARE m VARCHAR(400) DEFAULT ''; \
                   IF SUBSTRING_INDEX(USER(), '@', 1) <> {exempt_} THEN \
                     SELECT fenced, message INTO f, m FROM _revdoor.fences \
                       WHERE workflow = {wf_} AND db = {dbq} AND tbl = {tq} LOCK IN SHARE MODE; \
                     IF f <> 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = m; END IF; \
                   END IF; \
                 END",
                db_ = ident(db),
                name_ = ident(&name),
                table_ = ident(table),
                exempt_ = quote(&exempt),
                wf_ = quote(workflow),
                dbq = quote(db),
                tq = quote(table),
            );
            conn.query_drop(body)
                .await
                .map_err(sql(&format!("create fence trigger on {db}.{table}"), url))?;
        }
    }
    Ok(())
}

/// Drop the fence triggers and rows of `workflow` on `tables`.
pub async fn remove_fences(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    tables: &[(String, String)],
) -> Result<(), Error> {
    for (db, table) in tables {
        for op in ["bi", "bu", "bd"] {
            let name = trigger_name(workflow, db, table, op);
            conn.query_drop(format!(
                "DROP TRIGGER IF EXISTS {}.{}",
                ident(db),
                ident(&name)
            ))
            .await
            .map_err(sql("drop fence trigger", url))?;
        }
    }
    conn.exec_drop(
        "DELETE FROM _revdoor.fences WHERE workflow = ?",
        (workflow,),
    )
    .await
    .or_else(|e| if no_table(&e) { Ok(()) } else { Err(e) })
    .map_err(sql("delete fence rows", url))?;
    Ok(())
}

/// Fence or unfence every table of `workflow` on this server in one
/// transaction; returns the GTID position that includes it (on MariaDB the
/// fence transaction's own GTID). Waits for in-flight writers of the moved
/// tables, at most `lock_wait_secs`.
pub async fn set_fenced(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    fenced: bool,
    message: &str,
    lock_wait_secs: u64,
) -> Result<String, Error> {
    conn.query_drop(format!(
        "SET SESSION innodb_lock_wait_timeout = {}",
        lock_wait_secs.max(1)
    ))
    .await
    .map_err(sql("set lock wait", url))?;
    conn.exec_drop(
        "UPDATE _revdoor.fences SET fenced = ?, message = ? WHERE workflow = ?",
        (fenced as u8, message, workflow),
    )
    .await
    .map_err(sql(if fenced { "fence" } else { "unfence" }, url))?;
    if conn.affected_rows() == 0 {
        // Already in that state (idempotent retry): the position now
        // includes the earlier change.
        return position(conn, url).await;
    }
    let last: Option<String> = conn.query_first("SELECT @@last_gtid").await.ok().flatten();
    match last {
        Some(g) if !g.is_empty() => Ok(g),
        _ => position(conn, url).await,
    }
}

/// Write a mark into the binlog without fencing: rewrite the (unfenced)
/// fence rows' message with a fresh stamp. Capture heartbeats right after
/// it like after a fence; returns its GTID.
pub async fn mark(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    message: &str,
) -> Result<String, Error> {
    let stamped = format!("{message} (checked {})", revdoor_core::workflow::now_ms());
    conn.exec_drop(
        "UPDATE _revdoor.fences SET message = ? WHERE workflow = ? AND fenced = 0",
        (&stamped, workflow),
    )
    .await
    .map_err(sql("mark", url))?;
    let changed = conn.affected_rows() > 0;
    let last: Option<String> = conn.query_first("SELECT @@last_gtid").await.ok().flatten();
    match last {
        Some(g) if !g.is_empty() && changed => Ok(g),
        _ => position(conn, url).await,
    }
}

/// `SET GLOBAL read_only` (`--fence=read-only`): waits for running
/// transactions (at most `lock_wait_secs`); revdoor's account keeps writing
/// (it has `READ_ONLY ADMIN`).
pub async fn set_read_only(
    conn: &mut Conn,
    url: &str,
    on: bool,
    lock_wait_secs: u64,
) -> Result<(), Error> {
    conn.query_drop(format!(
        "SET SESSION lock_wait_timeout = {}",
        lock_wait_secs.max(1)
    ))
    .await
    .map_err(sql("set lock wait", url))?;
    conn.query_drop(format!(
        "SET GLOBAL read_only = {}",
        if on { "ON" } else { "OFF" }
    ))
    .await
    .map_err(sql("set read_only", url))
}

/// The server's binlog GTID position (MariaDB `@@gtid_binlog_pos`, MySQL
/// `@@gtid_executed`).
pub async fn position(conn: &mut Conn, url: &str) -> Result<String, Error> {
    let pos: Option<String> = match conn.query_first("SELECT @@global.gtid_binlog_pos").await {
        Ok(p) => p,
        Err(_) => conn
            .query_first("SELECT @@global.gtid_executed")
            .await
            .map_err(sql("read GTID position", url))?,
    };
    Ok(pos.unwrap_or_default())
}

/// The source position stream `(workflow, direction, partition)` has
/// applied on this destination (`_revdoor.stream_state.source_gtid`).
pub async fn applied_position(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    direction: &str,
    partition: i32,
) -> Result<Option<String>, Error> {
    conn.exec_first(
        "SELECT source_gtid FROM _revdoor.stream_state \
         WHERE workflow = ? AND direction = ? AND `partition` = ?",
        (workflow, direction, partition),
    )
    .await
    .or_else(|e| if no_table(&e) { Ok(None) } else { Err(e) })
    .map_err(sql("read stream_state", url))
}

/// Whether `_revdoor.stream_state` holds rows of `workflow` (a workflow of
/// that name ran here before).
pub async fn has_stream_state(conn: &mut Conn, url: &str, workflow: &str) -> Result<bool, Error> {
    let n: Option<u8> = conn
        .exec_first(
            "SELECT 1 FROM _revdoor.stream_state WHERE workflow = ? LIMIT 1",
            (workflow,),
        )
        .await
        .or_else(|e| if no_table(&e) { Ok(None) } else { Err(e) })
        .map_err(sql("read stream_state", url))?;
    Ok(n.is_some())
}

/// Delete `workflow`'s checkpoint and skip rows (after complete / cancel).
pub async fn delete_stream_state(conn: &mut Conn, url: &str, workflow: &str) -> Result<(), Error> {
    for table in [
        "stream_state",
        "stream_skips",
        "applied_txns",
        "holds",
        "ddls",
    ] {
        conn.exec_drop(
            format!("DELETE FROM _revdoor.{table} WHERE workflow = ?"),
            (workflow,),
        )
        .await
        .or_else(|e| if no_table(&e) { Ok(()) } else { Err(e) })
        .map_err(sql("delete stream state", url))?;
    }
    Ok(())
}

/// `CREATE TABLE` of `db.table` as the server has it, if the table exists.
pub async fn show_create(
    conn: &mut Conn,
    url: &str,
    db: &str,
    table: &str,
) -> Result<Option<String>, Error> {
    let row: Result<Option<(String, String)>, _> = conn
        .query_first(format!("SHOW CREATE TABLE {}.{}", ident(db), ident(table)))
        .await;
    match row {
        Ok(r) => Ok(r.map(|(_, ddl)| ddl)),
        Err(e) if no_table(&e) => Ok(None),
        Err(e) => Err(sql("SHOW CREATE TABLE", url)(e)),
    }
}

/// Create `db` if absent and run `create_table` in it.
pub async fn create_table(
    conn: &mut Conn,
    url: &str,
    db: &str,
    create_table: &str,
) -> Result<(), Error> {
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", ident(db)))
        .await
        .map_err(sql("create database", url))?;
    conn.query_drop(format!("USE {}", ident(db)))
        .await
        .map_err(sql("use database", url))?;
    conn.query_drop(create_table)
        .await
        .map_err(sql(&format!("create table in {db}"), url))
}

/// Whether `db.table` has at least one row.
pub async fn has_rows(conn: &mut Conn, url: &str, db: &str, table: &str) -> Result<bool, Error> {
    let one: Option<u8> = conn
        .query_first(format!(
            "SELECT 1 FROM {}.{} LIMIT 1",
            ident(db),
            ident(table)
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
            db_ = ident(db),
            t = ident(table),
            old = ident(&format!("_{table}_old"))
        )
    } else {
        format!("DROP TABLE IF EXISTS {}.{}", ident(db), ident(table))
    };
    match conn.query_drop(stmt).await {
        Ok(()) => Ok(()),
        // Renamed or dropped already (idempotent retry).
        Err(e) if no_table(&e) => Ok(()),
        Err(e) => Err(sql("drop table", url)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_names_fit_and_differ() {
        let a = trigger_name("wf", "db", "t", "bi");
        assert!(a.len() <= 64 && a.starts_with("_revdoor_fence_bi_"), "{a}");
        assert_ne!(a, trigger_name("wf", "db", "t2", "bi"));
        assert_ne!(a, trigger_name("wf2", "db", "t", "bi"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(redact("mysql://u:pw@h:1"), "mysql://u:***@h:1");
        assert_eq!(
            account("mysql://revdoor:pw@127.0.0.1:3306").expect("url"),
            "revdoor"
        );
    }
}
