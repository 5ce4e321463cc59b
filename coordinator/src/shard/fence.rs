//! The fences of a workflow on one server ([`super`] docs, # Fences):
//! triggers and rows installed and removed, fencing and unfencing, the
//! unfenced mark, and the `read_only` fence.
//!
//! # A deposed leader changes no fence
//!
//! Every fence row carries the fencing token of the leader that last wrote
//! it (`token`: its leader key's etcd revision, which grows with every
//! election). A leader first claims every row of a workflow on every server
//! of both keyspaces ([`claim`]: `SET token = mine WHERE token < mine`)
//! before it acts on a request, and every fence or unfence it runs is
//! `WHERE token <= mine`. So a coordinator that lost its lease but runs on
//! (paused, cut off from etcd but not from MySQL) changes no fence once its
//! successor has claimed the rows: its statement changes nothing, it reads
//! the later token and stops ([`Error::Deposed`]). What it ran before the
//! claim is what a leader that died at that point would have left, which
//! recovery already handles (`docs/model/switch.pml`, `-DZOMBIE`).
//! `read_only` is a server variable, not a row: it is changed while
//! holding the side's fence row `FOR UPDATE` after checking its token, so
//! a claim waits for it and it cannot land after one.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use revdoor_core::fence::FenceToken;
use revdoor_core::gtid::StoredPosition;
use revdoor_core::policy::{decide, Backoff, Decision, ErrorKind};
use revdoor_mysql::engine::Flavor;

use super::positions::{last_gtid_or_position, position};
use revdoor_mysql::schema::{FENCES_DDL, MARK_SIDE};
use revdoor_mysql::{codes, quote_ident, quote_str};

use super::{no_table, sql};
use crate::Error;

/// Trigger name for (workflow, table, op): `_revdoor_fence_<op>_<hash>`
/// (trigger names are per schema and at most 64 characters).
fn trigger_name(workflow: &str, db: &str, table: &str, op: &str) -> String {
    let h = xxhash_rust::xxh3::xxh3_64(format!("{workflow}\0{db}\0{table}").as_bytes());
    format!("_revdoor_fence_{op}_{h:016x}")
}

/// The body of a fence trigger on a table of `side`. A session whose
/// `@revdoor_fence_pass` is the side's pass goes through (its read of the
/// pass is a plain read; InnoDB may take it shared inside an INSERT or
/// DELETE). Any other session reads the side's one fence row in share mode
/// with SKIP LOCKED — a lock it already holds is granted again, a row that a
/// fence or unfence holds or waits for is skipped — and is refused unless
/// it read the row unfenced. So an application never waits on the fence
/// row and no order in which it locks its own rows can close a cycle
/// through it: during a fence or unfence its write is refused at once (it
/// retries), and a missing row refuses too. No user name is exempt. (MariaDB
/// refuses NOWAIT inside a trigger; SKIP LOCKED works on both engines.)
fn trigger_body(flavor: Flavor, workflow: &str, side: &str) -> String {
    // MySQL refuses a MESSAGE_TEXT over 128 characters (error 1648 instead
    // of the fence's SQLSTATE): the message is cut there.
    let (share, cut) = match flavor {
        Flavor::Mariadb => ("LOCK IN SHARE MODE SKIP LOCKED", ""),
        Flavor::Mysql => ("FOR SHARE SKIP LOCKED", "SET m = LEFT(m, 128); "),
    };
    let row = format!(
        "FROM _revdoor.fences WHERE workflow = {} AND side = {}",
        quote_str(workflow),
        quote_str(side)
    );
    let busy = quote_str(&format!(
        "revdoor: workflow {workflow} is fencing or unfencing this table (or its fence row is missing); retry"
    ));
    format!(
        "BEGIN \
           DECLARE passed INT DEFAULT 0; \
           DECLARE f TINYINT DEFAULT 1; \
           DECLARE m VARCHAR(400) DEFAULT {busy}; \
           IF @revdoor_fence_pass IS NOT NULL THEN \
             SELECT COUNT(*) INTO passed {row} AND pass = @revdoor_fence_pass; \
           END IF; \
           IF passed = 0 THEN \
             SELECT fenced, message INTO f, m {row} {share}; \
             IF f <> 0 THEN {cut}SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = m; END IF; \
           END IF; \
         END"
    )
}

/// Create `_revdoor.fences` where it is missing. A table of the earlier
/// per-table layout (no `side` column) is replaced when it is empty and
/// refused, saying what to do, when a workflow still uses it; one without
/// the `token` column gets it (0: no leader wrote the row yet).
async fn ensure_fences_table(conn: &mut Conn, url: &str) -> Result<(), Error> {
    let layout: Vec<String> = conn
        .query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = '_revdoor' AND TABLE_NAME = 'fences'",
        )
        .await
        .map_err(sql("read the columns of _revdoor.fences", url))?;
    if !layout.is_empty() && !layout.iter().any(|c| c == "side") {
        let rows: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM _revdoor.fences")
            .await
            .map_err(sql("count _revdoor.fences", url))?;
        if rows.unwrap_or(0) > 0 {
            return Err(Error::Refused(format!(
                "_revdoor.fences on {} has the per-table layout of an earlier revdoor and is in use: \
                 complete or cancel its workflows with that revdoor, then DROP TABLE _revdoor.fences",
                super::redact(url)
            )));
        }
        conn.query_drop("DROP TABLE _revdoor.fences")
            .await
            .map_err(sql("replace the empty _revdoor.fences", url))?;
    }
    for ddl in FENCES_DDL {
        conn.query_drop(ddl)
            .await
            .map_err(sql("create _revdoor.fences", url))?;
    }
    if !layout.is_empty() && !layout.iter().any(|c| c == "token") {
        conn.query_drop("ALTER TABLE _revdoor.fences ADD COLUMN token BIGINT NOT NULL DEFAULT 0")
            .await
            .map_err(sql("add the token column to _revdoor.fences", url))?;
    }
    Ok(())
}

/// A fencing token as the `BIGINT` the rows store.
fn token_param(token: FenceToken) -> i64 {
    i64::try_from(token.get()).unwrap_or(i64::MAX)
}

/// The highest token on `workflow`'s fence rows here (of `side`, or of
/// every side); `None` where there is no row or no `_revdoor.fences`.
async fn row_token(
    conn: &mut Conn,
    workflow: &str,
    side: Option<&str>,
) -> Result<Option<i64>, mysql_async::Error> {
    let r = match side {
        Some(side) => {
            conn.exec_first(
                "SELECT token FROM _revdoor.fences WHERE workflow = ? AND side = ?",
                (workflow, side),
            )
            .await
        }
        None => conn
            .exec_first::<Option<i64>, _, _>(
                "SELECT MAX(token) FROM _revdoor.fences WHERE workflow = ?",
                (workflow,),
            )
            .await
            .map(Option::flatten),
    };
    match r {
        Err(e) if no_table(&e) => Ok(None),
        r => r,
    }
}

/// The error of a leader whose token a later leader's claim replaced.
fn deposed(url: &str, workflow: &str, mine: FenceToken, theirs: i64) -> Error {
    tracing::warn!(url = %super::redact(url), workflow, token = %mine, later = theirs,
        "a fence row here carries a later leader's token: this coordinator was deposed; changing nothing");
    Error::Deposed
}

/// Claim `workflow`'s fence rows on this server for the leader holding
/// `token` (module docs): from now on a statement of an earlier leader
/// changes none of them. [`Error::Deposed`] when a later leader's token is
/// already there.
pub async fn claim(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    token: FenceToken,
) -> Result<(), Error> {
    let mine = token_param(token);
    match conn
        .exec_drop(
            "UPDATE _revdoor.fences SET token = ? WHERE workflow = ? AND token < ?",
            (mine, workflow, mine),
        )
        .await
    {
        Err(e) if no_table(&e) => return Ok(()),
        r => r.map_err(sql("claim the fence rows", url))?,
    }
    match row_token(conn, workflow, None)
        .await
        .map_err(sql("read the fence rows' token", url))?
    {
        Some(t) if t > mine => Err(deposed(url, workflow, token, t)),
        _ => Ok(()),
    }
}

/// Install the fence row of `workflow`'s `side` on this server (fenced or
/// not, with `message` and a fresh pass) and the triggers on `tables`.
/// Idempotent: existing triggers stay; the row's state and message are set,
/// its pass kept.
#[allow(clippy::too_many_arguments)]
pub async fn install_fences(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    side: &str,
    tables: &[(String, String)],
    fenced: bool,
    message: &str,
) -> Result<(), Error> {
    ensure_fences_table(conn, url).await?;
    let flavor = Flavor::of(conn)
        .await
        .map_err(|e| Error::Sql(format!("read the engine of {}: {e}", super::redact(url))))?;
    conn.exec_drop(
        "INSERT INTO _revdoor.fences (workflow, side, fenced, message, pass) \
         VALUES (?, ?, ?, ?, RANDOM_BYTES(16)) \
         ON DUPLICATE KEY UPDATE fenced = VALUES(fenced), message = VALUES(message)",
        (workflow, side, fenced as u8, message),
    )
    .await
    .map_err(sql("write fence row", url))?;
    let body = trigger_body(flavor, workflow, side);
    for (db, table) in tables {
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
            let ddl = format!(
                "CREATE TRIGGER {db_}.{name_} BEFORE {event} ON {db_}.{table_} FOR EACH ROW {body}",
                db_ = quote_ident(db),
                name_ = quote_ident(&name),
                table_ = quote_ident(table),
            );
            conn.query_drop(ddl)
                .await
                .map_err(sql(&format!("create fence trigger on {db}.{table}"), url))?;
        }
    }
    Ok(())
}

/// Drop the fence triggers of `workflow` on `tables`, and its rows.
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

/// A write to the fence rows, run by [`write_row`].
enum RowWrite<'a> {
    /// Fence or unfence a side (a fence rotates the side's pass when it
    /// was unfenced: sessions opened before hold the old one).
    Fence {
        side: &'a str,
        fenced: bool,
        message: &'a str,
        token: FenceToken,
    },
    /// Rewrite the workflow's mark row.
    Mark { message: String },
}

impl RowWrite<'_> {
    fn what(&self) -> &'static str {
        match self {
            RowWrite::Fence { fenced: true, .. } => "fence",
            RowWrite::Fence { fenced: false, .. } => "unfence",
            RowWrite::Mark { .. } => "mark",
        }
    }

    /// One attempt; whether it changed a row.
    async fn once(
        &self,
        conn: &mut Conn,
        workflow: &str,
        lock_wait_secs: u64,
    ) -> Result<bool, mysql_async::Error> {
        conn.query_drop(format!(
            "SET SESSION innodb_lock_wait_timeout = {lock_wait_secs}"
        ))
        .await?;
        match self {
            // `pass` first: assignments see the values set before them.
            RowWrite::Fence {
                side,
                fenced,
                message,
                token,
            } => {
                let token = token_param(*token);
                conn.exec_drop(
                    "UPDATE _revdoor.fences \
                     SET pass = IF(? = 1 AND fenced = 0, RANDOM_BYTES(16), pass), fenced = ?, message = ?, \
                     token = ? WHERE workflow = ? AND side = ? AND token <= ?",
                    (*fenced as u8, *fenced as u8, *message, token, workflow, *side, token),
                )
                .await?
            }
            RowWrite::Mark { message } => {
                conn.exec_drop(
                    "INSERT INTO _revdoor.fences (workflow, side, fenced, message, pass) \
                     VALUES (?, ?, 0, ?, NULL) ON DUPLICATE KEY UPDATE message = VALUES(message)",
                    (workflow, MARK_SIDE, message),
                )
                .await?
            }
        }
        Ok(conn.affected_rows() > 0)
    }
}

/// What follows a failed statement of a step, by the core policy: lock
/// conflicts (deadlock, lock wait timeout) and a lost connection are
/// transient, any other refusal of the server is definite.
fn kind(e: &mysql_async::Error) -> ErrorKind {
    match e {
        mysql_async::Error::Server(s) if codes::is_transient(s.code) => ErrorKind::Transient,
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => ErrorKind::Transient,
        _ => ErrorKind::Definite,
    }
}

/// Run `w` until it succeeds, retrying transient errors (reconnecting
/// after a lost connection) while `deadline` allows; returns the GTID
/// position that includes it (on MariaDB the transaction's own GTID; the
/// server's position when it changed nothing — an earlier attempt did).
async fn write_row(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    w: RowWrite<'_>,
    deadline: Instant,
) -> Result<StoredPosition, Error> {
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let lock_wait = left.as_secs().clamp(1, 30);
        let err = match w.once(conn, workflow, lock_wait).await {
            Ok(true) => return last_gtid_or_position(conn, url).await,
            Ok(false) => {
                // Nothing changed: an earlier attempt did, or (a fence or
                // unfence) a later leader's token guards the row.
                if let RowWrite::Fence { side, token, .. } = &w {
                    match row_token(conn, workflow, Some(side)).await {
                        Ok(Some(t)) if t > token_param(*token) => {
                            return Err(deposed(url, workflow, *token, t))
                        }
                        Ok(_) => {}
                        Err(e) => return Err(sql("read the fence row's token", url)(e)),
                    }
                }
                return position(conn, url).await;
            }
            Err(e) => e,
        };
        let delay = match decide(kind(&err), false, &mut backoff) {
            Decision::Retry(d) if Instant::now() + d < deadline => d,
            _ => return Err(sql(w.what(), url)(err)),
        };
        tracing::warn!(url = %super::redact(url), step = w.what(), error = %err, retry_ms = delay.as_millis() as u64,
            "transient error; retrying within the step's deadline");
        tokio::time::sleep(delay).await;
        if !matches!(err, mysql_async::Error::Server(_)) {
            match super::connect(url).await {
                Ok(c) => *conn = c,
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!(url = %super::redact(url), error = %e, "reconnect failed; retrying");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// One side's fence row of a workflow on a server, and the fencing token
/// of the leader changing it.
#[derive(Debug, Clone, Copy)]
pub struct FenceRow<'a> {
    pub workflow: &'a str,
    pub side: &'a str,
    pub token: FenceToken,
}

/// Fence or unfence `row` on this server: one row, so one exclusive lock
/// waits for every in-flight writer of every moved table there; returns
/// the GTID position that includes it (on MariaDB the fence transaction's
/// own GTID). Fencing a side that was open rotates its pass. Transient
/// errors are retried until `deadline`; [`Error::Deposed`] when a later
/// leader's token is on the row.
pub async fn set_fenced(
    conn: &mut Conn,
    url: &str,
    row: FenceRow<'_>,
    fenced: bool,
    message: &str,
    deadline: Instant,
) -> Result<StoredPosition, Error> {
    let w = RowWrite::Fence {
        side: row.side,
        fenced,
        message,
        token: row.token,
    };
    write_row(conn, url, row.workflow, w, deadline).await
}

/// Write a mark into the binlog without fencing: rewrite the workflow's
/// mark row (no trigger reads it, so no writer waits for it) with a fresh
/// stamp. Capture heartbeats right after it like after a fence; returns its
/// GTID. Transient errors are retried until `deadline`.
pub async fn mark(
    conn: &mut Conn,
    url: &str,
    workflow: &str,
    message: &str,
    deadline: Instant,
) -> Result<StoredPosition, Error> {
    let message = format!("{message} (checked {})", revdoor_core::workflow::now_ms());
    write_row(conn, url, workflow, RowWrite::Mark { message }, deadline).await
}

/// `SET GLOBAL read_only` (`--fence=read-only`): waits for running
/// transactions (at most `lock_wait_secs`); revdoor's account keeps writing
/// (it has `READ_ONLY ADMIN`). With `row`, guarded by its token (module
/// docs): a second connection holds the row `FOR UPDATE` — a locking read,
/// which `read_only` does not wait for — from the token check until the
/// variable is set, so no claim can come between. Without (`complete`,
/// after the rows are gone) it is not guarded.
pub async fn set_read_only(
    conn: &mut Conn,
    url: &str,
    row: Option<FenceRow<'_>>,
    on: bool,
    lock_wait_secs: u64,
) -> Result<(), Error> {
    let mut held = None;
    if let Some(row) = row {
        let mut g = super::connect(url).await?;
        g.query_drop(format!(
            "SET SESSION innodb_lock_wait_timeout = {}",
            lock_wait_secs.max(1)
        ))
        .await
        .map_err(sql("set lock wait", url))?;
        g.query_drop("START TRANSACTION")
            .await
            .map_err(sql("begin the read_only guard", url))?;
        let t: Option<i64> = match g
            .exec_first(
                "SELECT token FROM _revdoor.fences WHERE workflow = ? AND side = ? FOR UPDATE",
                (row.workflow, row.side),
            )
            .await
        {
            Err(e) if no_table(&e) => None,
            r => r.map_err(sql("lock the fence row", url))?,
        };
        if let Some(t) = t.filter(|t| *t > token_param(row.token)) {
            let _ = g.query_drop("ROLLBACK").await;
            return Err(deposed(url, row.workflow, row.token, t));
        }
        held = Some(g);
    }
    conn.query_drop(format!(
        "SET SESSION lock_wait_timeout = {}",
        lock_wait_secs.max(1)
    ))
    .await
    .map_err(sql("set lock wait", url))?;
    let set = conn
        .query_drop(format!(
            "SET GLOBAL read_only = {}",
            if on { "ON" } else { "OFF" }
        ))
        .await
        .map_err(sql("set read_only", url));
    if let Some(mut g) = held {
        let _ = g.query_drop("ROLLBACK").await;
        let _ = g.disconnect().await;
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_user_name_is_exempt() {
        for flavor in [Flavor::Mariadb, Flavor::Mysql] {
            let b = trigger_body(flavor, "wf", "source");
            assert!(!b.contains("USER()"), "{b}");
            assert!(
                b.contains("@revdoor_fence_pass") && b.contains("SKIP LOCKED"),
                "{b}"
            );
            assert!(b.contains("side = 'source'"), "{b}");
            // MySQL's SIGNAL takes at most 128 characters of message.
            assert_eq!(b.contains("LEFT(m, 128)"), flavor == Flavor::Mysql, "{b}");
        }
    }

    #[test]
    fn lock_conflicts_and_lost_connections_are_retried() {
        let server = |code| {
            mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: String::new(),
                state: String::new(),
            })
        };
        assert_eq!(kind(&server(codes::LOCK_DEADLOCK)), ErrorKind::Transient);
        assert_eq!(
            kind(&server(codes::LOCK_WAIT_TIMEOUT)),
            ErrorKind::Transient
        );
        assert_eq!(kind(&server(codes::NO_SUCH_TABLE)), ErrorKind::Definite);
        let lost = mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed);
        assert_eq!(kind(&lost), ErrorKind::Transient);
    }

    #[test]
    fn trigger_names_fit_and_differ() {
        let a = trigger_name("wf", "db", "t", "bi");
        assert!(a.len() <= 64 && a.starts_with("_revdoor_fence_bi_"), "{a}");
        assert_ne!(a, trigger_name("wf", "db", "t2", "bi"));
        assert_ne!(a, trigger_name("wf2", "db", "t", "bi"));
    }
}
