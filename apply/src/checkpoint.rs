//! The checkpoint row `_revdoor.stream_state(workflow, direction,
//! partition)`: created and taken over with the owner's fence token at
//! start, moved in the same DB transaction as the rows it covers, and the
//! operator's skips (`revdoor stream skip`).

use std::collections::HashSet;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use revdoor_core::names::{self, Direction, WorkflowName};
use revdoor_mysql::schema;

use crate::{ApplyError, ApplyStream};

/// Register that the message at `offset` of a stream's partition is to be
/// skipped by its apply (which must not have applied past it). The skip is
/// logged by apply when it passes the message.
pub async fn register_skip(
    target: &Opts,
    workflow: &WorkflowName,
    direction: Direction,
    partition: i32,
    offset: i64,
    reason: &str,
) -> Result<(), ApplyError> {
    let mut conn = Conn::new(target.clone())
        .await
        .map_err(|e| ApplyError::transient("connect to destination", e))?;
    schema::ensure_destination(&mut conn)
        .await
        .map_err(|e| ApplyError::Transient(e.to_string()))?;
    let applied: Option<i64> = conn
        .exec_first(
            "SELECT kafka_offset FROM _revdoor.stream_state WHERE workflow = ? AND direction = ? AND `partition` = ?",
            (workflow.as_str(), direction.as_str(), partition),
        )
        .await
        .map_err(|e| ApplyError::transient("read checkpoint", e))?;
    if let Some(applied) = applied.filter(|a| *a >= offset) {
        return Err(ApplyError::Definite(format!(
            "offset {offset} of {} is already applied \
             (checkpoint at {applied}); nothing to skip",
            names::topic_partition(workflow, direction, partition)
        )));
    }
    conn.exec_drop(
        "INSERT IGNORE INTO _revdoor.stream_skips (workflow, direction, `partition`, kafka_offset, reason) \
         VALUES (?, ?, ?, ?, ?)",
        (
            workflow.as_str(),
            direction.as_str(),
            partition,
            offset,
            reason,
        ),
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
        schema::ensure_destination(conn)
            .await
            .map_err(|e| ApplyError::Transient(e.to_string()))?;
        conn.exec_drop(
            "INSERT IGNORE INTO _revdoor.stream_state (workflow, direction, `partition`, kafka_offset) \
             VALUES (?, ?, ?, -1)",
            (self.workflow.as_str(), self.direction.as_str(), self.partition),
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
                self.fence_token.get(),
                self.workflow.as_str(),
                self.direction.as_str(),
                self.partition,
                self.fence_token.get(),
            ),
        )
        .await
        .map_err(|e| ApplyError::transient("take over checkpoint", e))?;
        let row: Option<(i64, u64)> = conn
            .exec_first(
                "SELECT kafka_offset, fence_token FROM _revdoor.stream_state \
                 WHERE workflow = ? AND direction = ? AND `partition` = ?",
                (
                    self.workflow.as_str(),
                    self.direction.as_str(),
                    self.partition,
                ),
            )
            .await
            .map_err(|e| ApplyError::transient("read checkpoint", e))?;
        let (offset, token) =
            row.ok_or_else(|| ApplyError::Transient("checkpoint row vanished".into()))?;
        if token > self.fence_token.get() {
            return Err(ApplyError::Fenced(format!(
                "stream {}/{}/{} is owned by token {token}, ours is {}",
                self.workflow, self.direction, self.partition, self.fence_token
            )));
        }
        let done: Vec<i64> = conn
            .exec(
                "SELECT kafka_offset FROM _revdoor.applied_txns \
                 WHERE workflow = ? AND direction = ? AND `partition` = ? AND kafka_offset > ?",
                (
                    self.workflow.as_str(),
                    self.direction.as_str(),
                    self.partition,
                    offset,
                ),
            )
            .await
            .map_err(|e| ApplyError::transient("read applied transactions", e))?;
        Ok((offset, done.into_iter().collect()))
    }

    /// Move the checkpoint row to `offset` / `gtid` inside `tx`, guarded by
    /// the fence token: false when a newer owner holds the row. `times`:
    /// the checkpoint's source and fetch times (`source_ms`, `fetched_ms`
    /// of [`revdoor_mysql::positions::Applied`]; 0 where unknown).
    pub(crate) async fn advance_checkpoint(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        offset: i64,
        gtid: &str,
        times: (u64, u64),
    ) -> Result<bool, ApplyError> {
        let ms = |t: u64| i64::try_from(t).unwrap_or(0);
        tx.exec_drop(
            "UPDATE _revdoor.stream_state SET kafka_offset = ?, source_gtid = ?, fence_token = ?, \
             updated_at = NOW(6), source_ms = ?, fetched_ms = ? \
             WHERE workflow = ? AND direction = ? AND `partition` = ? AND fence_token <= ?",
            (
                offset,
                gtid,
                self.fence_token.get(),
                ms(times.0),
                ms(times.1),
                self.workflow.as_str(),
                self.direction.as_str(),
                self.partition,
                self.fence_token.get(),
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
                (
                    self.workflow.as_str(),
                    self.direction.as_str(),
                    self.partition,
                    last,
                ),
            )
            .await
            .map_err(|e| ApplyError::transient("read skips", e))?;
        Ok(skips.into_iter().collect())
    }
}
