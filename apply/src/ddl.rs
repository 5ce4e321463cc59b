//! DDL records (`on_ddl=exec`) run on the destination exactly once: an
//! intent with the tables' fingerprint, the statement, then the checkpoint
//! (`_revdoor.ddls`).

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, TxOpts};
use revdoor_core::event::{ddl_tag, DdlEvent};
use tokio_util::sync::CancellationToken;

use crate::error::classify_mysql;
use crate::keys::KeyCache;
use crate::{ApplyError, ApplyStream};
use revdoor_mysql::engine::{Flavor, Server};
use revdoor_mysql::translate::translate;
use revdoor_mysql::{codes, quote_ident};

impl ApplyStream {
    /// Run a DDL record (`on_ddl=exec`) on the destination, exactly once,
    /// then move the checkpoint past it. A DDL commits implicitly, so it
    /// cannot share a transaction with the checkpoint; instead, under a
    /// named lock of the stream (a zombie holding it is killed):
    /// 1. an intent row with a fingerprint of the changed tables is
    ///    committed, guarded by the fence token;
    /// 2. the statement runs (tagged, so the opposite direction's capture
    ///    does not send it back);
    /// 3. the checkpoint passes it, guarded by the token.
    ///
    /// A restart finds the intent: if the tables' fingerprint differs from
    /// the intent's, the statement ran and is not run again; if not, it
    /// did not run (or changed no definition, e.g. `TRUNCATE`, which is
    /// safe to repeat since nothing after it was applied).
    /// Returns false when `cancel` fired while held by a vdiff.
    pub(crate) async fn exec_ddl(
        &self,
        conns: &mut [Conn],
        keys: &mut KeyCache,
        offset: i64,
        ddl: &DdlEvent,
        cancel: &CancellationToken,
    ) -> Result<bool, ApplyError> {
        if let Some((text, hold)) = self.read_hold(&mut conns[0]).await? {
            if !hold.contains_gtid(&ddl.gtid)
                && !self.wait_at_hold(&mut conns[0], &text, cancel).await?
            {
                return Ok(false);
            }
        }
        let lock = format!(
            "revdoor-ddl-{:016x}",
            xxhash_rust::xxh3::xxh3_64(
                format!("{}/{}/{}", self.workflow, self.direction, self.partition).as_bytes()
            )
        );
        let conn = &mut conns[0];
        loop {
            let got: Option<Option<i64>> = conn
                .exec_first("SELECT GET_LOCK(?, 5)", (&lock,))
                .await
                .map_err(|e| ApplyError::transient("take the stream's DDL lock", e))?;
            if got == Some(Some(1)) {
                break;
            }
            let holder: Option<Option<u64>> = conn
                .exec_first("SELECT IS_USED_LOCK(?)", (&lock,))
                .await
                .map_err(|e| ApplyError::transient("look up the DDL lock", e))?;
            if let Some(Some(id)) = holder {
                tracing::warn!(topic = %self.topic(), partition = self.partition, connection = id,
                    "a previous owner of this stream holds its DDL lock: ending its connection");
                if let Err(e) = conn.query_drop(format!("KILL CONNECTION {id}")).await {
                    tracing::warn!(error = %e, "kill the previous owner's connection");
                }
            }
        }
        let result = self.exec_ddl_locked(conn, keys, offset, ddl).await;
        if let Err(e) = conn.exec_drop("DO RELEASE_LOCK(?)", (&lock,)).await {
            tracing::debug!(error = %e, "release the DDL lock");
        }
        result.map(|()| true)
    }

    pub(crate) async fn exec_ddl_locked(
        &self,
        conn: &mut Conn,
        keys: &mut KeyCache,
        offset: i64,
        ddl: &DdlEvent,
    ) -> Result<(), ApplyError> {
        let at = format!("{}/{}@{offset}", self.topic(), self.partition);
        let key = (
            self.workflow.as_str(),
            self.direction.as_str(),
            self.partition,
            offset,
        );
        let now = tables_fingerprint(conn, &ddl.tables).await?;
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| ApplyError::transient("begin", e))?;
        let row: Option<(i64, u64)> = tx
            .exec_first(
                "SELECT kafka_offset, fence_token FROM _revdoor.stream_state \
                 WHERE workflow = ? AND direction = ? AND `partition` = ? FOR UPDATE",
                (
                    self.workflow.as_str(),
                    self.direction.as_str(),
                    self.partition,
                ),
            )
            .await
            .map_err(|e| ApplyError::transient("read checkpoint", e))?;
        let (applied, token) =
            row.ok_or_else(|| ApplyError::Transient("checkpoint row vanished".into()))?;
        if token > self.fence_token.get() {
            let _ = tx.rollback().await;
            return Err(self.fenced());
        }
        if applied >= offset {
            let _ = tx.rollback().await;
            return Ok(());
        }
        let intent: Option<String> = tx
            .exec_first(
                "SELECT fingerprint FROM _revdoor.ddls WHERE workflow = ? AND direction = ? \
                 AND `partition` = ? AND kafka_offset = ?",
                key,
            )
            .await
            .map_err(|e| ApplyError::transient("read DDL intent", e))?;
        let before = match intent {
            Some(fp) => fp,
            None => {
                tx.exec_drop(
                    "INSERT INTO _revdoor.ddls (workflow, direction, `partition`, kafka_offset, \
                     gtid, statement, fingerprint, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'intent')",
                    (
                        self.workflow.as_str(),
                        self.direction.as_str(),
                        self.partition,
                        offset,
                        &ddl.gtid,
                        &ddl.statement,
                        &now,
                    ),
                )
                .await
                .map_err(|e| ApplyError::transient("record DDL intent", e))?;
                now.clone()
            }
        };
        tx.commit()
            .await
            .map_err(|e| ApplyError::transient("commit DDL intent", e))?;
        fail::fail_point!(crate::failpoints::DDL_BEFORE_EXEC);
        let state = if now != before {
            tracing::info!(at = %at, gtid = %ddl.gtid,
                "DDL already ran before a restart (its tables changed since its intent): not running it again");
            "found done"
        } else {
            if !ddl.default_db.is_empty() {
                conn.query_drop(format!("USE {}", quote_ident(&ddl.default_db)))
                    .await
                    .map_err(|e| classify_mysql(&format!("{at}: USE for DDL"), offset, e))?;
            }
            let statement = for_destination(conn, ddl, &at, offset).await?;
            let sql = format!("{}{}", ddl_tag(&self.workflow, self.direction), statement);
            match conn.query_drop(&sql).await {
                Ok(()) => {
                    tracing::info!(at = %at, gtid = %ddl.gtid, statement = %ddl.statement, "ran DDL (on_ddl=exec)");
                    "ran"
                }
                Err(mysql_async::Error::Server(se))
                    if codes::DDL_ALREADY_DONE.contains(&se.code)
                        && self.sibling_ran(conn, &ddl.statement).await? =>
                {
                    tracing::info!(at = %at, gtid = %ddl.gtid, error = %se.message,
                        "DDL already run by another stream into this destination (several origins): done");
                    "done by a sibling stream"
                }
                Err(e) => {
                    return Err(classify_mysql(
                        &format!(
                            "{at}: DDL `{}` (GTID {}) failed on the destination",
                            ddl.statement, ddl.gtid
                        ),
                        offset,
                        e,
                    ))
                }
            }
        };
        fail::fail_point!(crate::failpoints::DDL_AFTER_EXEC);
        for t in &ddl.tables {
            if let Some((db, table)) = t.split_once('.') {
                keys.forget(db, table);
            }
        }
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| ApplyError::transient("begin", e))?;
        if !self
            .advance_checkpoint(&mut tx, offset, &ddl.gtid, (0, 0))
            .await?
        {
            let _ = tx.rollback().await;
            return Err(self.fenced());
        }
        tx.exec_drop(
            "UPDATE _revdoor.ddls SET state = ?, updated_at = NOW(6) WHERE workflow = ? \
             AND direction = ? AND `partition` = ? AND kafka_offset = ?",
            (
                state,
                self.workflow.as_str(),
                self.direction.as_str(),
                self.partition,
                offset,
            ),
        )
        .await
        .map_err(|e| ApplyError::transient("record DDL outcome", e))?;
        tx.commit()
            .await
            .map_err(|e| ApplyError::transient("commit", e))?;
        let position = ddl.gtid.parse().ok();
        self.progress.update(|p| {
            if let Some(position) = position {
                p.position = position;
            }
            p.events += 1;
        });
        Ok(())
    }

    /// Whether another stream of this workflow and direction ran the same
    /// statement on this destination (or is about to record that it did:
    /// its intent row says `intent` between its DDL and its checkpoint).
    pub(crate) async fn sibling_ran(
        &self,
        conn: &mut Conn,
        statement: &str,
    ) -> Result<bool, ApplyError> {
        let n: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM _revdoor.ddls WHERE workflow = ? AND direction = ? \
                 AND `partition` <> ? AND statement = ? AND state IN ('intent', 'ran')",
                (
                    self.workflow.as_str(),
                    self.direction.as_str(),
                    self.partition,
                    statement,
                ),
            )
            .await
            .map_err(|e| ApplyError::transient("look for the DDL of a sibling stream", e))?;
        Ok(n.unwrap_or(0) > 0)
    }
}

/// The statement of `ddl` as the destination's engine must read it
/// (`revdoor_mysql::translate`; the origin's engine is the one its GTID
/// names): unchanged on the same engine. What cannot be translated halts
/// the stream, as a statement the destination refuses would.
async fn for_destination(
    conn: &mut Conn,
    ddl: &DdlEvent,
    at: &str,
    offset: i64,
) -> Result<String, ApplyError> {
    let from = Flavor::of_gtid(&ddl.gtid);
    let to = Server::of(conn)
        .await
        .map_err(|e| ApplyError::transient("read the destination's version", e))?;
    match translate(&ddl.statement, from, &to, None) {
        Ok(t) => {
            if t.sql != ddl.statement {
                tracing::info!(at = %at, gtid = %ddl.gtid, statement = %t.sql, notes = ?t.notes,
                    "DDL translated from {from} for the destination ({to})");
            }
            Ok(t.sql)
        }
        Err(refused) => Err(ApplyError::Definite(format!(
            "{at}: DDL `{}` (GTID {}) of a {from} origin cannot run on the destination ({to}): \
             {refused}; the stream halts here — run an equivalent statement on the destination, \
             then skip this message with `revdoor stream skip --offset {offset}`",
            ddl.statement, ddl.gtid
        ))),
    }
}

/// A fingerprint of the definitions of `tables` (`db.table`) on the
/// destination: `SHOW CREATE TABLE` without its `AUTO_INCREMENT` counter,
/// "absent" for a table that does not exist.
pub(crate) async fn tables_fingerprint(
    conn: &mut Conn,
    tables: &[String],
) -> Result<String, ApplyError> {
    let mut text = String::new();
    for t in tables {
        let Some((db, table)) = t.split_once('.') else {
            continue;
        };
        let sql = format!(
            "SHOW CREATE TABLE {}.{}",
            quote_ident(db),
            quote_ident(table)
        );
        let def: Option<(String, String)> = match conn.query_first(sql).await {
            Ok(row) => row,
            Err(e) if codes::is_missing_table(&e) => None,
            Err(e) => return Err(ApplyError::transient("read table definition", e)),
        };
        text.push_str(t);
        text.push('\n');
        match def {
            Some((_, create)) => text.push_str(&without_auto_increment(&create)),
            None => text.push_str("absent"),
        }
        text.push('\n');
    }
    Ok(format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    ))
}

/// `SHOW CREATE TABLE` text without ` AUTO_INCREMENT=n` (a counter, not
/// the definition).
pub(crate) fn without_auto_increment(create: &str) -> String {
    let mut out = String::with_capacity(create.len());
    let mut rest = create;
    while let Some(i) = rest.find(" AUTO_INCREMENT=") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " AUTO_INCREMENT=".len()..];
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}
