//! Reading the partition into groups: messages decoded into whole source
//! transactions, several of them handed to the applier as one group.

use std::collections::HashSet;
use std::time::Duration;

use revdoor_core::avro::single_object_fingerprint;
use revdoor_core::event::{ChangeEvent, DdlEvent, Heartbeat};
use revdoor_core::registry::SCHEMAS_TOPIC;
use tokio_util::sync::CancellationToken;

use crate::fetch::Fetcher;
use crate::schemas::SchemaCache;
use crate::{now_ms, ApplyError, ApplyStream};

/// A group of source transactions is committed once no further message
/// arrives within this time…
pub(crate) const GROUP_IDLE: Duration = Duration::from_millis(2);

/// …or when it holds this many source transactions or events.
pub(crate) const GROUP_MAX_TXNS: usize = 200;
pub(crate) const GROUP_MAX_EVENTS: usize = 5000;

impl ApplyStream {
    /// Read and decode the partition into whole transactions, grouped, and
    /// hand the groups to the applier.
    pub(crate) async fn produce(
        &self,
        fetcher: &mut Fetcher,
        tx: &tokio::sync::mpsc::Sender<Batch>,
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
        loop {
            // Commit the group when nothing more is immediately available,
            // or when it is big enough.
            let wait = if complete > 0 { Some(GROUP_IDLE) } else { None };
            let msg = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                m = fetcher.recv_within(wait) => m,
            };
            let msg = match msg {
                None => {
                    if !hand_over(tx, &mut group, complete, None).await {
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
                if complete == group.len() {
                    // No transaction half-arrived: once the complete ones
                    // are applied we hold everything the source had
                    // committed up to the heartbeat's position; checkpoint
                    // that position (a switch waits for it).
                    if let Ok(hb) = serde_json::from_slice::<Heartbeat>(payload) {
                        let now = now_ms();
                        tracing::debug!(lag_ms = now.saturating_sub(hb.heartbeat_ms), position = %hb.position, "caught up");
                        if !hand_over(tx, &mut group, complete, Some((offset, hb))).await {
                            return Ok(());
                        }
                        complete = 0;
                        txns_in_group = 0;
                    }
                }
                continue;
            }
            if skips.contains(&offset) {
                tracing::warn!(topic = %topic, partition = self.partition, offset,
                    "skipping this message as an operator asked (revdoor stream skip)");
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
                if group.len() > complete {
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
                };
                if tx.send(batch).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            let fp = single_object_fingerprint(payload)
                .map_err(|e| poison(format!("not an Avro single-object message: {e}")))?;
            let codec = schemas.get(&self.brokers, fp).await?.ok_or_else(|| {
                poison(format!(
                    "unknown schema fingerprint {fp:016x} (not in {SCHEMAS_TOPIC})"
                ))
            })?;
            let ev = codec
                .decode_event(payload)
                .map_err(|e| poison(format!("cannot decode message: {e}")))?;
            if ev.txn.index == 0 && group.len() > complete {
                // A new transaction while the previous one is incomplete: its
                // end was a skipped message. Anything else is broken framing.
                if !skipped_in_txn {
                    return Err(poison(format!(
                        "transaction {} starts before the previous one ended",
                        ev.txn.gtid
                    )));
                }
                complete = group.len();
                txns_in_group += 1;
            }
            if ev.txn.index == 0 {
                skipped_in_txn = false;
            }
            let last_of_txn = ev.txn.last;
            group.push((offset, ev));
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
/// after them), from the reader to the applier.
pub(crate) struct Batch {
    pub(crate) events: Vec<(i64, ChangeEvent)>,
    pub(crate) heartbeat: Option<(i64, Heartbeat)>,
    /// A DDL record to run (alone in its batch).
    pub(crate) ddl: Option<(i64, DdlEvent)>,
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
    })
    .await
    .is_ok()
}
