//! A big source transaction streamed into one open DB transaction, part by
//! part as the reader hands it over (`group`'s "Big transactions"), so
//! apply's memory is bounded by a part, not by the transaction.
//!
//! # Atomicity and resumption
//!
//! Every part runs inside one DB transaction on the stream's first
//! connection; the checkpoint row moves (under the fence token) only with
//! the last part, in the same commit. Until then nothing of the
//! transaction is visible, and a crash anywhere in it — the process killed,
//! the connection lost — leaves the server to roll the whole DB transaction
//! back; the restart seeks to the checkpoint, before the transaction's
//! first event, and streams it again. A streamed transaction is never
//! split into parallel buckets: it is applied in order on one connection,
//! after everything before it was committed.
//!
//! # Holds
//!
//! Before each part the vdiff hold is read (inside the open transaction:
//! READ COMMITTED sees a hold set meanwhile). When the hold's position does
//! not contain the transaction, the stream holds there — on a connection of
//! its own, so that `held_gtid` is committed and seen by the vdiff — with
//! its transaction open and uncommitted, which the destination's consistent
//! snapshot does not see.

use mysql_async::{Conn, TxOpts};
use revdoor_core::event::ChangeEvent;
use tokio_util::sync::CancellationToken;

use crate::applier::source_ts_ms;
use crate::group::{Batch, Piece};
use crate::keys::KeyCache;
use crate::{ApplyError, ApplyStream};

impl ApplyStream {
    /// Stream the big transaction whose first piece is `first`, reading its
    /// further pieces from `rx`, and commit it with the checkpoint after
    /// its last part. False when `cancel` fired or the reader stopped
    /// (the DB transaction rolled back, nothing of it applied).
    pub(crate) async fn apply_streamed(
        &self,
        conns: &mut [Conn],
        keys: &mut KeyCache,
        first: Batch,
        rx: &mut tokio::sync::mpsc::Receiver<Batch>,
        cancel: &CancellationToken,
    ) -> Result<bool, ApplyError> {
        let (main, others) = conns
            .split_first_mut()
            .ok_or_else(|| ApplyError::Transient("no apply connection".into()))?;
        let mut tx = main
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| ApplyError::transient("begin", e))?;
        // The hold's connection: one of the parallel ones, else opened.
        let mut side: Option<Conn> = None;
        let mut batch = first;
        let mut events = 0usize;
        // Offset, GTID and commit time of the last event applied.
        let mut last: Option<(i64, String, u64)> = None;
        loop {
            if batch.piece == Piece::Abandon {
                tracing::info!(topic = %self.topic(), partition = self.partition,
                    "a big transaction was committed before a restart: rolled back its stream");
                let _ = tx.rollback().await;
                return Ok(true);
            }
            if let Some((_, ev)) = batch.events.first() {
                if let Some((text, hold)) = self.read_hold(&mut tx).await? {
                    if !hold.contains_gtid(&ev.txn.gtid) {
                        let conn = match others.first_mut() {
                            Some(c) => c,
                            None => side.insert(self.open().await?),
                        };
                        if !self.wait_at_hold(conn, &text, cancel).await? {
                            let _ = tx.rollback().await;
                            return Ok(false);
                        }
                    }
                }
            }
            for (_, ev) in &batch.events {
                keys.ensure(&mut tx, &ev.source.db, &ev.source.table)
                    .await?;
            }
            let stripped = keys.without_generated(&batch.events);
            let part = stripped.as_deref().unwrap_or(&batch.events);
            let refs: Vec<&(i64, ChangeEvent)> = part.iter().collect();
            self.apply_events(&mut tx, keys, &refs).await?;
            events += part.len();
            if let Some((offset, ev)) = batch.events.last() {
                last = Some((*offset, ev.txn.gtid.clone(), source_ts_ms(ev)));
            }
            tracing::debug!(events, "big transaction: part applied");
            fail::fail_point!(crate::failpoints::STREAMED_PART);
            if batch.piece == Piece::Last {
                break;
            }
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                b = rx.recv() => b,
            };
            let Some(next) = next else {
                let _ = tx.rollback().await;
                return Ok(false);
            };
            if next.piece == Piece::Whole {
                let _ = tx.rollback().await;
                return Err(ApplyError::Definite(format!(
                    "{}: whole transactions handed over before a streamed one ended \
                     (a bug in apply; the stream halts before committing it)",
                    self.name()
                )));
            }
            batch = next;
        }
        let Some((offset, gtid, ts)) = last else {
            let _ = tx.rollback().await;
            return Ok(true);
        };
        let reached = self.reached(&gtid);
        let position = reached.parse().ok();
        tracing::info!(topic = %self.topic(), partition = self.partition, offset, events,
            "big source transaction applied; committing");
        self.commit_with_checkpoint(tx, offset, &reached, position, (events, 1), (ts, 0))
            .await?;
        Ok(true)
    }
}
