//! Write-set-parallel apply: a group's transactions split by the keys
//! they write into independent buckets, committed on their own
//! connections once every bucket got through (`_revdoor.applied_txns`).

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, TxOpts, Value};
use revdoor_core::event::ChangeEvent;

use crate::keys::{key_hash, KeyCache};
use crate::{ApplyError, ApplyStream};

impl ApplyStream {
    /// Commit the independent parts of a group concurrently (see
    /// `apply_group`); the events still to apply, in order.
    pub(crate) async fn apply_parallel<'e>(
        &self,
        conns: &mut Vec<Conn>,
        keys: &KeyCache,
        events: &[&'e (i64, ChangeEvent)],
    ) -> Result<Vec<&'e (i64, ChangeEvent)>, ApplyError> {
        let txns = transactions(events);
        let buckets = buckets(events, &txns, keys, self.parallelism);
        if buckets.len() < 2 {
            return Ok(events.to_vec());
        }
        tracing::debug!(txns = txns.len(), buckets = buckets.len(), "parallel group");
        // conns[0] stays for the checkpoint and the in-order fallback; the
        // buckets get their own connections, whose lock waits are short: a
        // bucket waiting for a lock another bucket holds (a unique index's
        // gap, which write sets cannot see) would otherwise wait for a
        // bucket that waits for it at the gate.
        while conns.len() < buckets.len() + 1 {
            let mut c = self.open().await?;
            c.query_drop("SET SESSION innodb_lock_wait_timeout = 1")
                .await
                .map_err(|e| ApplyError::transient("set lock wait timeout", e))?;
            conns.push(c);
        }
        // Every bucket runs its statements; only when all of them got
        // there do they commit. If any failed, all roll back and the whole
        // group is applied in order on one connection, which stops exactly
        // at the failing transaction with nothing after it applied.
        let gate = Gate {
            barrier: tokio::sync::Barrier::new(buckets.len()),
            failed: std::sync::atomic::AtomicBool::new(false),
        };
        let work = conns
            .iter_mut()
            .skip(1)
            .zip(&buckets)
            .map(|(conn, bucket)| {
                let evs: Vec<&(i64, ChangeEvent)> = bucket
                    .iter()
                    .flat_map(|&t| events[txns[t].clone()].iter().copied())
                    .collect();
                let ends: Vec<i64> = bucket.iter().map(|&t| events[txns[t].end - 1].0).collect();
                let gate = &gate;
                async move { self.apply_bucket(conn, keys, &evs, &ends, gate).await }
            });
        let results = futures_util::future::join_all(work).await;
        let mut failed: Vec<usize> = Vec::new();
        let mut fenced = None;
        for (bucket, r) in buckets.iter().zip(results) {
            match r {
                Ok(()) => {}
                Err(e @ ApplyError::Fenced(_)) => fenced = Some(e),
                Err(e) => {
                    if !matches!(e, ApplyError::Transient(ref m) if m == GATE_CLOSED) {
                        tracing::warn!(topic = %self.topic(), partition = self.partition, error = %e,
                            "a parallel part failed; applying the group again in order on one connection");
                    }
                    failed.extend(bucket);
                }
            }
        }
        if let Some(e) = fenced {
            return Err(e);
        }
        if !failed.is_empty() {
            // A connection may be broken: open afresh next time.
            for c in conns.drain(1..) {
                let _ = c.disconnect().await;
            }
        }
        failed.sort_unstable();
        Ok(failed
            .into_iter()
            .flat_map(|t| events[txns[t].clone()].iter().copied())
            .collect())
    }

    /// One bucket of a parallel group: its transactions and their
    /// `applied_txns` rows in one DB transaction, under the fence token,
    /// committed once every bucket of the group got through (`gate`).
    pub(crate) async fn apply_bucket(
        &self,
        conn: &mut Conn,
        keys: &KeyCache,
        events: &[&(i64, ChangeEvent)],
        ends: &[i64],
        gate: &Gate,
    ) -> Result<(), ApplyError> {
        use std::sync::atomic::Ordering;
        let mut tx = match conn.start_transaction(TxOpts::default()).await {
            Ok(tx) => tx,
            Err(e) => {
                gate.failed.store(true, Ordering::SeqCst);
                gate.barrier.wait().await;
                return Err(ApplyError::transient("begin", e));
            }
        };
        let r = self.bucket_body(&mut tx, keys, events, ends).await;
        if r.is_err() {
            gate.failed.store(true, Ordering::SeqCst);
        }
        gate.barrier.wait().await;
        // Roll back explicitly on any failure: the group is retried on
        // another connection, which must not wait for this one's locks.
        match r {
            Ok(()) if !gate.failed.load(Ordering::SeqCst) => tx
                .commit()
                .await
                .map_err(|e| ApplyError::transient("commit", e)),
            Ok(()) => {
                let _ = tx.rollback().await;
                Err(ApplyError::Transient(GATE_CLOSED.into()))
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    pub(crate) async fn bucket_body(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        keys: &KeyCache,
        events: &[&(i64, ChangeEvent)],
        ends: &[i64],
    ) -> Result<(), ApplyError> {
        // A shared lock on the checkpoint row: buckets do not block each
        // other, and a new owner's takeover waits for them, after which
        // this owner reads the newer token here and stops.
        let token: Option<u64> = tx
            .exec_first(
                "SELECT fence_token FROM _revdoor.stream_state WHERE workflow = ? \
                 AND direction = ? AND `partition` = ? LOCK IN SHARE MODE",
                (
                    self.workflow.as_str(),
                    self.direction.as_str(),
                    self.partition,
                ),
            )
            .await
            .map_err(|e| ApplyError::transient("read fence token", e))?;
        if token.unwrap_or(u64::MAX) > self.fence_token.get() {
            return Err(self.fenced());
        }
        self.apply_events(tx, keys, events).await?;
        let values = vec!["(?, ?, ?, ?)"; ends.len()].join(", ");
        let mut params: Vec<Value> = Vec::with_capacity(ends.len() * 4);
        for end in ends {
            params.push(Value::from(self.workflow.as_str()));
            params.push(Value::from(self.direction.as_str()));
            params.push(Value::from(self.partition));
            params.push(Value::from(*end));
        }
        tx.exec_drop(
            format!(
                "INSERT INTO _revdoor.applied_txns (workflow, direction, `partition`, kafka_offset) \
                 VALUES {values}"
            ),
            params,
        )
        .await
        .map_err(|e| ApplyError::transient("record applied transactions", e))?;
        fail::fail_point!(crate::failpoints::BUCKET_ERROR, |_| Err(
            ApplyError::Transient("failpoint apply::bucket_error".into())
        ));
        fail::fail_point!(crate::failpoints::BEFORE_CHECKPOINT_COMMIT);
        Ok(())
    }
}

/// The buckets of one parallel group meet here before committing.
pub(crate) struct Gate {
    pub(crate) barrier: tokio::sync::Barrier,
    pub(crate) failed: std::sync::atomic::AtomicBool,
}

/// A bucket rolled back because another bucket of its group failed.
pub(crate) const GATE_CLOSED: &str = "another part of the group failed";

/// The events of each source transaction of a group (index ranges).
pub(crate) fn transactions(events: &[&(i64, ChangeEvent)]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, (_, ev)) in events.iter().copied().enumerate() {
        if ev.txn.last {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < events.len() {
        out.push(start..events.len());
    }
    out
}

/// Split transactions into at most `k` buckets with disjoint write sets:
/// transactions sharing a key (union-find) stay in one bucket, in order;
/// groups go to the least loaded bucket, biggest first. Empty buckets are
/// dropped; each bucket lists transaction indices ascending.
pub(crate) fn buckets(
    events: &[&(i64, ChangeEvent)],
    txns: &[std::ops::Range<usize>],
    keys: &KeyCache,
    k: usize,
) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..txns.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut first: HashMap<u64, usize> = HashMap::new();
    for (t, r) in txns.iter().enumerate() {
        for (_, ev) in events[r.clone()].iter().copied() {
            for key in write_set(ev, keys) {
                let other = *first.entry(key).or_insert(t);
                let (a, b) = (find(&mut parent, t), find(&mut parent, other));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut groups: HashMap<usize, (usize, Vec<usize>)> = HashMap::new();
    for (t, r) in txns.iter().enumerate() {
        let root = find(&mut parent, t);
        let g = groups.entry(root).or_default();
        g.0 += r.len();
        g.1.push(t);
    }
    let mut groups: Vec<(usize, Vec<usize>)> = groups.into_values().collect();
    groups.sort_by(|a, b| b.0.cmp(&a.0).then(a.1[0].cmp(&b.1[0])));
    let mut out: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); k.max(1)];
    for (size, txns) in groups {
        if let Some(b) = out.iter_mut().min_by_key(|b| b.0) {
            b.0 += size;
            b.1.extend(txns);
        }
    }
    out.into_iter()
        .filter(|b| !b.1.is_empty())
        .map(|(_, mut t)| {
            t.sort_unstable();
            t
        })
        .collect()
}

/// What a row change writes, as keys two transactions conflict on:
/// - its primary key in both images ([`key_hash`]: folded, so that keys a
///   case-insensitive collation equates collide here too);
/// - each other unique index whose entries it changes (an insert, a
///   delete, an update of the index's columns or of the primary key), as
///   a whole: InnoDB's duplicate checks lock neighbouring entries of such
///   an index too, so two changes of different values can still wait for
///   each other;
/// - one key shared by every table in a foreign-key relation (or whose keys
///   are unknown).
pub(crate) fn write_set(ev: &ChangeEvent, keys: &KeyCache) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    let hash = |what: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&ev.source.db, &ev.source.table).hash(&mut h);
        what(&mut h);
        h.finish() | 1
    };
    let info = keys.info(&ev.source.db, &ev.source.table);
    let mut out = Vec::new();
    let Some(info) = info.filter(|i| !i.foreign_keys) else {
        out.push(0);
        return out;
    };
    for image in [ev.before.as_ref(), ev.after.as_ref()]
        .into_iter()
        .flatten()
    {
        out.push(hash(&|h| {
            "pk".hash(h);
            key_hash(info.primary.iter().map(|c| image.get(c))).hash(h);
        }));
    }
    for (n, cols) in info.uniques.iter().enumerate().skip(1) {
        // A primary-key change is a delete and an insert: every index.
        let changed = match (ev.before.as_ref(), ev.after.as_ref()) {
            (Some(b), Some(a)) => cols
                .iter()
                .chain(&info.primary)
                .any(|c| b.get(c) != a.get(c)),
            _ => true,
        };
        if changed {
            out.push(hash(&|h| ("unique", n).hash(h)));
        }
    }
    out
}
