//! The fences of a workflow on one server ([`super`] docs, # Fences):
//! triggers and rows installed and removed, fencing and unfencing, the
//! unfenced mark, and the `read_only` fence.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use revdoor_core::gtid::StoredPosition;

use super::positions::{last_gtid_or_position, position};
use revdoor_mysql::schema::FENCES_DDL;
use revdoor_mysql::{quote_ident, quote_str};

use super::{account, no_table, sql};
use crate::Error;

/// Trigger name for (workflow, table, op): `_revdoor_fence_<op>_<hash>`
/// (trigger names are per schema and at most 64 characters).
fn trigger_name(workflow: &str, db: &str, table: &str, op: &str) -> String {
    let h = xxhash_rust::xxh3::xxh3_64(format!("{workflow}\0{db}\0{table}").as_bytes());
    format!("_revdoor_fence_{op}_{h:016x}")
}

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
                db_ = quote_ident(db),
                name_ = quote_ident(&name),
                table_ = quote_ident(table),
                exempt_ = quote_str(&exempt),
                wf_ = quote_str(workflow),
                dbq = quote_str(db),
                tq = quote_str(table),
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
                quote_ident(db),
                quote_ident(&name)
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
) -> Result<StoredPosition, Error> {
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
    last_gtid_or_position(conn, url).await
}

/// Write a mark into the binlog without fencing: rewrite the (unfenced)
/// fence rows' message with a fresh stamp. Capture heartbeats right after
/// it like after a fence; returns its GTID.
pub async fn mark(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    message: &str,
) -> Result<StoredPosition, Error> {
    let stamped = format!("{message} (checked {})", revdoor_core::workflow::now_ms());
    conn.exec_drop(
        "UPDATE _revdoor.fences SET message = ? WHERE workflow = ? AND fenced = 0",
        (&stamped, workflow),
    )
    .await
    .map_err(sql("mark", url))?;
    if conn.affected_rows() == 0 {
        return position(conn, url).await;
    }
    last_gtid_or_position(conn, url).await
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
}
