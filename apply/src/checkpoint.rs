//! The checkpoint row `_revdoor.stream_state(workflow, direction,
//! partition)`: created and taken over with the owner's fence token at
//! start, moved in the same DB transaction as the rows it covers, and the
//! operator's skips (`revdoor stream skip`).

use std::collections::HashSet;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use crate::{ApplyError, ApplyStream};

/// DDL of revdoor's own schema on every destination.
pub const STREAM_STATE_DDL: [&str; 6] = [
    "CREATE DATABASE IF NOT EXISTS _revdoor",
    "CREATE TABLE IF NOT EXISTS _revdoor.stream_state (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        source_gtid  VARCHAR(4096) NOT NULL DEFAULT '',
        fence_token  BIGINT UNSIGNED NOT NULL DEFAULT 0,
        updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (workflow, direction, `partition`)
    ) ENGINE=InnoDB",
    // Messages an operator chose to skip (`revdoor stream skip`).
    "CREATE TABLE IF NOT EXISTS _revdoor.stream_skips (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        reason       VARCHAR(1024) NOT NULL DEFAULT '',
        created_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // Transactions committed by parallel apply beyond the checkpoint
    // (identified by the offset of their last event); deleted when the
    // checkpoint passes them.
    "CREATE TABLE IF NOT EXISTS _revdoor.applied_txns (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // DDL records run by apply (`on_ddl=exec`): the intent (with a
    // fingerprint of the changed tables before the statement) is committed
    // before the statement runs, the outcome with the checkpoint that
    // passes it — so a restart knows whether it ran (docs/streams.md).
    "CREATE TABLE IF NOT EXISTS _revdoor.ddls (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        gtid         VARCHAR(255) NOT NULL,
        statement    LONGTEXT     NOT NULL,
        fingerprint  VARCHAR(32)  NOT NULL,
        state        VARCHAR(32)  NOT NULL,
        updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // Holds asked for by a vdiff (`revdoor_coordinator::vdiff`): apply
    // nothing outside `hold_gtid` until `until`; `held_gtid` reports that
    // the stream stopped exactly there.
    "CREATE TABLE IF NOT EXISTS _revdoor.holds (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        hold_gtid    VARCHAR(4096) NOT NULL,
        until        DATETIME(6)  NOT NULL,
        held_gtid    VARCHAR(4096) NULL,
        held_at      DATETIME(6)  NULL,
        PRIMARY KEY (workflow, direction, `partition`)
    ) ENGINE=InnoDB",
];

/// Register that the message at `offset` of a stream's partition is to be
/// skipped by its apply (which must not have applied past it). The skip is
/// logged by apply when it passes the message.
pub async fn register_skip(
    target: &Opts,
    workflow: &str,
    direction: &str,
    partition: i32,
    offset: i64,
    reason: &str,
) -> Result<(), ApplyError> {
    let mut conn = Conn::new(target.clone())
        .await
        .map_err(|e| ApplyError::transient("connect to destination", e))?;
    for ddl in STREAM_STATE_DDL {
        conn.query_drop(ddl)
            .await
            .map_err(|e| ApplyError::transient("create _revdoor schema", e))?;
    }
    let applied: Option<i64> = conn
        .exec_first(
            "SELECT kafka_offset FROM _revdoor.stream_state WHERE workflow = ? AND direction = ? AND `partition` = ?",
            (workflow, direction, partition),
        )
        .await
        .map_err(|e| ApplyError::transient("read checkpoint", e))?;
    if let Some(applied) = applied.filter(|a| *a >= offset) {
        return Err(ApplyError::Definite(format!(
            "offset {offset} of revdoor.{workflow}.{direction}/{partition} is already applied \
             (checkpoint at {applied}); nothing to skip"
        )));
    }
    conn.exec_drop(
        "INSERT IGNORE INTO _revdoor.stream_skips (workflow, direction, `partition`, kafka_offset, reason) \
         VALUES (?, ?, ?, ?, ?)",
        (workflow, direction, partition, offset, reason),
    )
    .await
    .map_err(|e| ApplyError::transient("register skip", e))?;
    Ok(())
}

impl ApplyStream {
    /// Create `_revdoor.stream_state` and this stream's row, take it over
    /// (fence token); return the offset of the last applied event (-1 if
    /// none) and the transactions parallel apply committed beyond it.
    pub(crate) async fn prepare(&self, conn: &mut Conn) -> Result<(i64, HashSet<i64>), ApplyError> {
        for ddl in STREAM_STATE_DDL {
            conn.query_drop(ddl)
                .await
                .map_err(|e| ApplyError::transient("create _revdoor schema", e))?;
        }
        conn.exec_drop(
            "INSERT IGNORE INTO _revdoor.stream_state (workflow, direction, `partition`, kafka_offset) \
             VALUES (?, ?, ?, -1)",
            (&self.workflow, &self.direction, self.partition),
        )
        .await
        .map_err(|e| ApplyError::transient("create checkpoint row", e))?;
        // Take the stream over: raise the row's fence token to ours. This
        // waits for a previous owner's transaction in flight, and once it
        // commits, that owner's next checkpoint (or parallel transaction)
        // finds a newer token and stops. Only then is the offset read.
        conn.exec_drop(
            "UPDATE _revdoor.stream_state SET fence_token = ? \
             WHERE workflow = ? AND direction = ? AND `partition` = ? AND fence_token <= ?",
            (
                self.fence_token,
                &self.workflow,
                &self.direction,
                self.partition,
                self.fence_token,
            ),
        )
        .await
        .map_err(|e| ApplyError::transient("take over checkpoint", e))?;
        let row: Option<(i64, u64)> = conn
            .exec_first(
                "SELECT kafka_offset, fence_token FROM _revdoor.stream_state \
                 WHERE workflow = ? AND direction = ? AND `partition` = ?",
                (&self.workflow, &self.direction, self.partition),
            )
            .await
            .map_err(|e| ApplyError::transient("read checkpoint", e))?;
        let (offset, token) =
            row.ok_or_else(|| ApplyError::Transient("checkpoint row vanished".into()))?;
        if token > self.fence_token {
            return Err(ApplyError::Fenced(format!(
                "stream {}/{}/{} is owned by token {token}, ours is {}",
                self.workflow, self.direction, self.partition, self.fence_token
            )));
        }
        let done: Vec<i64> = conn
            .exec(
                "SELECT kafka_offset FROM _revdoor.applied_txns \
                 WHERE workflow = ? AND direction = ? AND `partition` = ? AND kafka_offset > ?",
                (&self.workflow, &self.direction, self.partition, offset),
            )
            .await
            .map_err(|e| ApplyError::transient("read applied transactions", e))?;
        Ok((offset, done.into_iter().collect()))
    }

    /// Move the checkpoint row to `offset` / `gtid` inside `tx`, guarded by
    /// the fence token: false when a newer owner holds the row.
    pub(crate) async fn advance_checkpoint(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        offset: i64,
        gtid: &str,
    ) -> Result<bool, ApplyError> {
        tx.exec_drop(
            "UPDATE _revdoor.stream_state SET kafka_offset = ?, source_gtid = ?, fence_token = ?, \
             updated_at = NOW(6) WHERE workflow = ? AND direction = ? AND `partition` = ? \
             AND fence_token <= ?",
            (
                offset,
                gtid,
                self.fence_token,
                &self.workflow,
                &self.direction,
                self.partition,
                self.fence_token,
            ),
        )
        .await
        .map_err(|e| ApplyError::transient("update checkpoint", e))?;
        Ok(tx.affected_rows() > 0)
    }

    /// Offsets an operator chose to skip beyond `last`.
    pub(crate) async fn skips(
        &self,
        conn: &mut Conn,
        last: i64,
    ) -> Result<HashSet<i64>, ApplyError> {
        let skips: Vec<i64> = conn
            .exec(
                "SELECT kafka_offset FROM _revdoor.stream_skips \
                 WHERE workflow = ? AND direction = ? AND `partition` = ? AND kafka_offset > ?",
                (&self.workflow, &self.direction, self.partition, last),
            )
            .await
            .map_err(|e| ApplyError::transient("read skips", e))?;
        Ok(skips.into_iter().collect())
    }
}
