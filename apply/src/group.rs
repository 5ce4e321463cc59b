//! Reading the partition into groups: messages decoded into whole source
//! transactions, several of them handed to the applier as one group.
//!
//! # Big transactions
//!
//! A source transaction that grows past [`STREAM_PART_EVENTS`] events or
//! [`STREAM_PART_BYTES`] bytes of messages before its last event is not
//! held whole: it is handed over in parts of at most that size
//! ([`Piece::Part`], then [`Piece::Last`]), which the applier streams into
//! one open DB transaction and commits with the checkpoint after the last
//! part. Smaller transactions are grouped as before. While a transaction
//! streams, heartbeats are not checkpointed (half of a transaction is
//! applied, uncommitted), and a DDL record inside it is a framing error, as
//! in a whole transaction.

use std::collections::HashSet;
use std::time::Duration;

use revdoor_core::avro::single_object_fingerprint;
use revdoor_core::event::{ChangeEvent, DdlEvent, Heartbeat};
use revdoor_core::registry::SCHEMAS_TOPIC;
use tokio_util::sync::CancellationToken;

use crate::fetch::Fetcher;
use crate::schemas::SchemaCache;
use crate::{now_ms, ApplyError, ApplyStream};

/// A group of source transactions is handed to the applier once no further
/// message arrives within this time and the applier waits for it…
pub(crate) const GROUP_IDLE: Duration = Duration::from_millis(2);

/// …or when it holds this many source transactions or events. (A group
/// grows only while the applier is busy with the one before: on a slow
/// destination a group's round trips are what bounds the apply, so the
/// group must carry what arrived meanwhile — at 100 ms a group of bank
/// transactions takes ≈ 1.5 s; 200 transactions held it to ≈ 130/s.)
pub(crate) const GROUP_MAX_TXNS: usize = 1000;
pub(crate) const GROUP_MAX_EVENTS: usize = 5000;

/// A transaction still arriving is streamed (handed over in parts) once it
/// holds this many events…
pub(crate) const STREAM_PART_EVENTS: usize = 5000;
/// …or this many bytes of messages (wide rows: a part's decoded events are
/// a few times its message bytes).
pub(crate) const STREAM_PART_BYTES: usize = 16 << 20;

impl ApplyStream {
    /// Read and decode the partition into whole transactions, grouped, and
    /// hand the groups to the applier (`idle` while it waits for one).
    pub(crate) async fn produce(
        &self,
        fetcher: &mut Fetcher,
        tx: &tokio::sync::mpsc::Sender<Batch>,
        idle: &std::sync::atomic::AtomicBool,
        skips: &HashSet<i64>,
        done: &HashSet<i64>,
        cancel: &CancellationToken,
    ) -> Result<(), ApplyError> {
        let mut schemas = SchemaCache::default();
        // Whether the transaction now arriving lost a message to a skip.
        let mut skipped_in_txn = false;
        let topic = self.topic();
        // Events of complete source transactions not yet committed, and of
        // the transaction still arriving.
        let mut group: Vec<(i64, ChangeEvent)> = Vec::new();
        let mut complete = 0usize; // events of `group` that end a whole transaction
        let mut txns_in_group = 0usize;
        // Message bytes of the transaction arriving (of its part not yet
        // handed over, once it streams).
        let mut arriving_bytes = 0usize;
        // Whether the transaction arriving is streaming: parts of it were
        // handed over; `group` holds only its events since the last part.
        let mut streaming = false;
        // A heartbeat after the group's complete transactions, not handed
        // over yet: a run of heartbeats (an idle source's, read as a
        // backlog) is checkpointed once, at the last of them — its position
        // holds the earlier ones' —, instead of a DB transaction each.
        let mut beat: Option<(i64, Heartbeat)> = None;
        loop {
            // Commit the group when nothing more is immediately available,
            // or when it is big enough.
            let wait = if complete > 0 || beat.is_some() {
                Some(GROUP_IDLE)
            } else {
                None
            };
            let msg = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                m = fetcher.recv_within(wait) => m,
            };
            let msg = match msg {
                None => {
                    // The applier stopped (on an error it reports): so does
                    // the reader, which would otherwise read on forever
                    // holding a group it can no longer hand over.
                    if tx.is_closed() {
                        return Ok(());
                    }
                    // The applier is busy (applying, or a group waits for
                    // it): read on into this group (up to its limits)
                    // rather than queue a small one. On a slow destination
                    // a group then carries what arrived while the one
                    // before was applied, and shares its round trips.
                    if tx.capacity() < tx.max_capacity()
                        || !idle.load(std::sync::atomic::Ordering::SeqCst)
                    {
                        continue;
                    }
                    if !hand_over(tx, &mut group, complete, beat.take()).await {
                        return Ok(());
                    }
                    complete = 0;
                    txns_in_group = 0;
                    continue;
                }
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consume");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let offset = msg.offset;
            let payload = msg.payload.as_slice();
            if msg.heartbeat {
                if complete == group.len() && !streaming {
                    // No transaction half-arrived: once the complete ones
                    // are applied we hold everything the source had
                    // committed up to the heartbeat's position; checkpoint
                    // that position (a switch waits for it).
                    // It goes with the group, handed over once the
                    // applier waits or anything else follows.
                    if let Ok(mut hb) = serde_json::from_slice::<Heartbeat>(payload) {
                        let now = now_ms();
                        hb.fetched_ms = now;
                        tracing::debug!(lag_ms = now.saturating_sub(hb.heartbeat_ms), position = %hb.position, "caught up");
                        beat = Some((offset, hb));
                    }
                }
                continue;
            }
            if beat.is_some() {
                // The group ends at its heartbeat: what follows is
                // checkpointed at positions after it.
                if !hand_over(tx, &mut group, complete, beat.take()).await {
                    return Ok(());
                }
                complete = 0;
                txns_in_group = 0;
            }
            if skips.contains(&offset) {
                tracing::warn!(topic = %topic, partition = self.partition, offset,
                    "skipping this message as an operator asked (revdoor stream skip)");
                self.metrics.skipped.increment(1);
                skipped_in_txn = true;
                continue;
            }
            let poison = |why: String| {
                ApplyError::Definite(format!(
                    "{topic}/{}@{offset}: {why}; the stream halts here — fix the cause, or skip \
                     this message with `revdoor stream skip --offset {offset}`",
                    self.partition
                ))
            };
            if msg.ddl {
                // A DDL (on_ddl=exec) runs on its own, after everything
                // before it is applied.
                if group.len() > complete || streaming {
                    return Err(poison("a DDL record inside a source transaction".into()));
                }
                let ddl: DdlEvent = serde_json::from_slice(payload)
                    .map_err(|e| poison(format!("undecodable DDL record: {e}")))?;
                if !hand_over(tx, &mut group, complete, None).await {
                    return Ok(());
                }
                complete = 0;
                txns_in_group = 0;
                let batch = Batch {
                    events: Vec::new(),
                    heartbeat: None,
                    ddl: Some((offset, ddl)),
                    piece: Piece::Whole,
                };
                if tx.send(batch).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            let fp = single_object_fingerprint(payload)
                .map_err(|e| poison(format!("not an Avro single-object message: {e}")))?;
            let codec = schemas
                .get(&self.brokers, fp, &self.progress)
                .await?
                .ok_or_else(|| {
                    poison(format!(
                        "unknown schema fingerprint {fp:016x} (not in {SCHEMAS_TOPIC})"
                    ))
                })?;
            let ev = codec
                .decode_event(payload)
                .map_err(|e| poison(format!("cannot decode message: {e}")))?;
            if ev.txn.index == 0 && (group.len() > complete || streaming) {
                // A new transaction while the previous one is incomplete: its
                // end was a skipped message. Anything else is broken framing.
                if !skipped_in_txn {
                    return Err(poison(format!(
                        "transaction {} starts before the previous one ended",
                        ev.txn.gtid
                    )));
                }
                if streaming {
                    streaming = false;
                    if !hand_part(tx, &mut group, Piece::Last).await {
                        return Ok(());
                    }
                } else {
                    complete = group.len();
                    txns_in_group += 1;
                }
            }
            if ev.txn.index == 0 {
                skipped_in_txn = false;
                arriving_bytes = 0;
            }
            let last_of_txn = ev.txn.last;
            arriving_bytes += payload.len();
            group.push((offset, ev));
            if streaming && last_of_txn {
                streaming = false;
                // Committed by parallel apply before a restart (by a
                // version that grouped it whole): roll the stream back.
                let piece = if done.contains(&offset) {
                    Piece::Abandon
                } else {
                    Piece::Last
                };
                if !hand_part(tx, &mut group, piece).await {
                    return Ok(());
                }
                continue;
            }
            if !last_of_txn
                && (group.len() - complete >= STREAM_PART_EVENTS
                    || arriving_bytes >= STREAM_PART_BYTES)
            {
                // Too big to hold whole: the complete transactions go first,
                // then this one in parts.
                if !streaming {
                    if !hand_over(tx, &mut group, complete, None).await {
                        return Ok(());
                    }
                    complete = 0;
                    txns_in_group = 0;
                    streaming = true;
                    tracing::info!(topic = %topic, partition = self.partition, from = group[0].0,
                        gtid = %group[0].1.txn.gtid, "streaming a big source transaction into one DB transaction");
                }
                arriving_bytes = 0;
                if !hand_part(tx, &mut group, Piece::Part).await {
                    return Ok(());
                }
                continue;
            }
            if last_of_txn && done.contains(&offset) {
                // Committed by parallel apply before a restart: drop it.
                group.truncate(complete);
                continue;
            }
            if last_of_txn {
                complete = group.len();
                txns_in_group += 1;
                if txns_in_group >= GROUP_MAX_TXNS || complete >= GROUP_MAX_EVENTS {
                    if !hand_over(tx, &mut group, complete, None).await {
                        return Ok(());
                    }
                    complete = 0;
                    txns_in_group = 0;
                }
            }
        }
    }
}

/// A group of whole source transactions (and a heartbeat to checkpoint
/// after them), or a part of a streamed one, from the reader to the
/// applier.
pub(crate) struct Batch {
    pub(crate) events: Vec<(i64, ChangeEvent)>,
    pub(crate) heartbeat: Option<(i64, Heartbeat)>,
    /// A DDL record to run (alone in its batch).
    pub(crate) ddl: Option<(i64, DdlEvent)>,
    /// What `events` are: whole transactions, or part of a big one.
    pub(crate) piece: Piece,
}

/// Whole transactions, or a part of one big transaction being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Whole source transactions (a group).
    Whole,
    /// Events of a big transaction, more to come: the first part opens its
    /// DB transaction.
    Part,
    /// Its last events (maybe none, when its last message was skipped):
    /// commit with the checkpoint.
    Last,
    /// Its end, but a parallel bucket had committed it before a restart:
    /// roll back.
    Abandon,
}

/// Hand the complete part of `group` (and a heartbeat) to the applier;
/// false when the applier has stopped.
pub(crate) async fn hand_over(
    tx: &tokio::sync::mpsc::Sender<Batch>,
    group: &mut Vec<(i64, ChangeEvent)>,
    complete: usize,
    heartbeat: Option<(i64, Heartbeat)>,
) -> bool {
    let events: Vec<(i64, ChangeEvent)> = group.drain(..complete).collect();
    if events.is_empty() && heartbeat.is_none() {
        return true;
    }
    tx.send(Batch {
        events,
        heartbeat,
        ddl: None,
        piece: Piece::Whole,
    })
    .await
    .is_ok()
}

/// Hand the events of `group` over as `piece` of a streamed transaction;
/// false when the applier has stopped.
async fn hand_part(
    tx: &tokio::sync::mpsc::Sender<Batch>,
    group: &mut Vec<(i64, ChangeEvent)>,
    piece: Piece,
) -> bool {
    tx.send(Batch {
        events: std::mem::take(group),
        heartbeat: None,
        ddl: None,
        piece,
    })
    .await
    .is_ok()
}
