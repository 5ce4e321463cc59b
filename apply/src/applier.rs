//! The applier: whole source transactions of a group applied in one DB
//! transaction with the checkpoint (or split into parallel buckets first),
//! runs of row changes as multi-row statements, the rest row by row.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, TxOpts};
use revdoor_core::event::{ChangeEvent, Heartbeat};
use revdoor_core::gtid::StoredPosition;
use tokio_util::sync::CancellationToken;

use crate::error::classify_mysql;
use crate::group::{Batch, Piece};
use crate::keys::KeyCache;
use crate::sql::{batch_run, by_table, multi_statement, statements, Stmt};
use crate::{ApplyError, ApplyStream};

/// Every apply connection's session. Values arrive in canonical forms
/// (DESIGN §3): TIMESTAMPs as UTC text, zero dates kept, an explicit 0 in an
/// AUTO_INCREMENT column stays 0. Strict mode refuses anything that would
/// not fit. Strings are the bytes as stored on the source, in the column's
/// own character set: a binary connection stores them unconverted and
/// compares keys byte for byte. READ COMMITTED: an upsert's UPDATE of a key
/// not there yet takes no gap lock, so streams (and parallel connections)
/// applying disjoint keys into one server do not deadlock each other.
pub(crate) const SESSION_SETUP: [&str; 2] = [
    "SET NAMES binary, SESSION time_zone = '+00:00', \
     sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
];

impl ApplyStream {
    /// A connection set up for applying (see `prepare`), holding the
    /// destination side's fence pass.
    pub(crate) async fn open(&self) -> Result<Conn, ApplyError> {
        // Found rows, not changed rows: an upsert's UPDATE that matches a row
        // whose values are already right must not fall through to INSERT.
        let opts: Opts = mysql_async::OptsBuilder::from_opts(self.target.clone())
            .client_found_rows(true)
            .into();
        let mut conn = Conn::new(opts)
            .await
            .map_err(|e| ApplyError::transient("connect to destination", e))?;
        for stmt in SESSION_SETUP {
            conn.query_drop(stmt)
                .await
                .map_err(|e| ApplyError::transient("set apply session", e))?;
        }
        // Every connection that writes the destination passes its fence
        // (parallel buckets and DDL sessions are opened here too).
        revdoor_mysql::schema::set_fence_pass(&mut conn, &self.workflow, self.direction)
            .await
            .map_err(|e| match e {
                revdoor_mysql::MysqlError::Refused(why) => ApplyError::Definite(why),
                e => ApplyError::Transient(e.to_string()),
            })?;
        Ok(conn)
    }

    /// Apply the batches the reader hands over, in order, until it stops;
    /// `idle` while waiting for one.
    pub(crate) async fn applier(
        &self,
        conn: Conn,
        mut rx: tokio::sync::mpsc::Receiver<Batch>,
        idle: &std::sync::atomic::AtomicBool,
        cancel: CancellationToken,
    ) -> Result<(), ApplyError> {
        // conns[0] applies groups and checkpoints; the others join it for
        // parallel groups (opened on first use).
        let mut conns = vec![conn];
        let mut keys = KeyCache::default();
        loop {
            let waited = std::time::Instant::now();
            idle.store(true, std::sync::atomic::Ordering::SeqCst);
            let batch = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                b = rx.recv() => b,
            };
            idle.store(false, std::sync::atomic::Ordering::SeqCst);
            let Some(batch) = batch else { return Ok(()) };
            tracing::trace!(
                wait_us = waited.elapsed().as_micros() as u64,
                events = batch.events.len(),
                "group arrived"
            );
            if batch.piece != Piece::Whole {
                if !self
                    .apply_streamed(&mut conns, &mut keys, batch, &mut rx, &cancel)
                    .await?
                {
                    return Ok(());
                }
                continue;
            }
            if let Some((offset, ddl)) = &batch.ddl {
                if !self
                    .exec_ddl(&mut conns, &mut keys, *offset, ddl, &cancel)
                    .await?
                {
                    return Ok(());
                }
                continue;
            }
            let hb = batch.heartbeat.as_ref().map(|(o, h)| (*o, h));
            if !self
                .flush(&mut conns, &mut keys, &batch.events, hb, &cancel)
                .await?
            {
                return Ok(());
            }
        }
    }

    /// Apply whole source transactions and advance the checkpoint to the
    /// last of them (or to `heartbeat`). With one connection: one DB
    /// transaction. With K: the transactions are split by write set
    /// (tables, primary and unique keys of both images) into up to K
    /// independent buckets committed concurrently, each recording its
    /// transactions in `_revdoor.applied_txns`; then the checkpoint moves
    /// past all of them and those rows go. A restart skips what a bucket
    /// committed; any failure of a bucket is retried in order on one
    /// connection, which reports it exactly.
    pub(crate) async fn apply_group(
        &self,
        conns: &mut Vec<Conn>,
        keys: &mut KeyCache,
        events: &[(i64, ChangeEvent)],
        heartbeat: Option<(i64, &Heartbeat)>,
    ) -> Result<(), ApplyError> {
        let (last_offset, last_gtid, source_ts_ms, fetched_ms) = match (heartbeat, events.last()) {
            (Some((offset, hb)), _) => (
                offset,
                hb.position.to_string(),
                hb.heartbeat_ms,
                hb.fetched_ms,
            ),
            (None, Some((offset, ev))) => {
                (*offset, self.reached(&ev.txn.gtid), source_ts_ms(ev), 0)
            }
            (None, None) => return Ok(()),
        };
        let last_gtid = last_gtid.as_str();
        for (_, ev) in events {
            keys.ensure(&mut conns[0], &ev.source.db, &ev.source.table)
                .await?;
        }
        let txns = events.iter().filter(|(_, ev)| ev.txn.last).count();
        let stripped = keys.without_generated(events);
        let events = stripped.as_deref().unwrap_or(events);
        let all: Vec<&(i64, ChangeEvent)> = events.iter().collect();
        let rest = if self.parallelism > 1 {
            self.apply_parallel(conns, keys, &all).await?
        } else {
            all
        };
        let applying = std::time::Instant::now();
        let mut tx = conns[0]
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| ApplyError::transient("begin", e))?;
        self.apply_events(&mut tx, keys, &rest).await?;
        tracing::trace!(
            apply_us = applying.elapsed().as_micros() as u64,
            events = rest.len(),
            "group applied"
        );
        // A heartbeat carries a position; an event its transaction's GTID,
        // which reads as the position holding just it.
        let position = match heartbeat {
            Some((_, hb)) => Some(hb.position.clone()),
            None => last_gtid.parse().ok(),
        };
        self.commit_with_checkpoint(
            tx,
            last_offset,
            last_gtid,
            position,
            (events.len(), txns),
            (source_ts_ms, fetched_ms),
        )
        .await
    }

    /// Move the checkpoint to `last_offset` / `last_gtid` under the fence
    /// token in `tx` (forgetting parallel buckets' `applied_txns` rows up to
    /// it), commit, and report `events` applied (in `txns` source
    /// transactions) up to `position`; `times`: the checkpoint's source and
    /// fetch times.
    pub(crate) async fn commit_with_checkpoint(
        &self,
        mut tx: mysql_async::Transaction<'_>,
        last_offset: i64,
        last_gtid: &str,
        position: Option<StoredPosition>,
        (events, txns): (usize, usize),
        (source_ts_ms, fetched_ms): (u64, u64),
    ) -> Result<(), ApplyError> {
        if !self
            .advance_checkpoint(&mut tx, last_offset, last_gtid, (source_ts_ms, fetched_ms))
            .await?
        {
            let _ = tx.rollback().await;
            return Err(self.fenced());
        }
        if self.parallelism > 1 {
            tx.exec_drop(
                "DELETE FROM _revdoor.applied_txns WHERE workflow = ? AND direction = ? \
                 AND `partition` = ? AND kafka_offset <= ?",
                (
                    self.workflow.as_str(),
                    self.direction.as_str(),
                    self.partition,
                    last_offset,
                ),
            )
            .await
            .map_err(|e| ApplyError::transient("forget applied transactions", e))?;
        }
        fail::fail_point!(crate::failpoints::BEFORE_CHECKPOINT_COMMIT);
        let committing = std::time::Instant::now();
        tx.commit()
            .await
            .map_err(|e| ApplyError::transient("commit", e))?;
        tracing::trace!(
            commit_us = committing.elapsed().as_micros() as u64,
            "group committed"
        );
        fail::fail_point!(crate::failpoints::AFTER_COMMIT_BEFORE_ACK);
        self.metrics.rows.increment(events as u64);
        self.metrics.transactions.increment(txns as u64);
        if events > 0 {
            self.metrics.batch_rows.record(events as f64);
        }
        self.progress.update(|p| {
            if let Some(position) = position {
                p.position = position;
            }
            p.events += events as u64;
            p.source_ts_ms = p.source_ts_ms.max(source_ts_ms);
        });
        Ok(())
    }

    /// The source position the checkpoint records after transaction
    /// `gtid`: on MariaDB the GTID itself (a one-GTID list: the domain's
    /// sequence); on MySQL the position reached so far (the last heartbeat's
    /// and what followed) with `uuid:1-n`, so that it includes a fence's
    /// `@@gtid_executed` once the stream passed it
    /// ([`revdoor_core::gtid::Position::through_gtid`]).
    pub(crate) fn reached(&self, gtid: &str) -> String {
        if !gtid.contains(':') {
            return gtid.to_owned();
        }
        let before = self.progress.snapshot().position;
        before
            .position()
            .through_gtid(gtid)
            .map_or_else(|_| gtid.to_owned(), |p| p.to_string())
    }

    /// Apply `events` in a transaction, ordered by table where that is
    /// safe ([`by_table`]: runs then span the group's transactions, one
    /// statement per table and kind instead of a few per transaction), runs
    /// as multi-row statements.
    pub(crate) async fn apply_events(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        keys: &KeyCache,
        events: &[&(i64, ChangeEvent)],
    ) -> Result<(), ApplyError> {
        let events = &by_table(events, keys)[..];
        let mut i = 0;
        while i < events.len() {
            // A run of row changes into one table goes in one multi-row
            // statement (RunKind: inserts, upserts by key, deletes by key).
            // Any refusal (an insert's key already there after a replay, a
            // conflict, a type problem) rolls the attempt back and applies
            // the run row by row, which reports exactly.
            let (run, kind) = batch_run(&events[i..], keys);
            if run >= 2 {
                let (db, table) = (&events[i].1.source.db, &events[i].1.source.table);
                let (pk, json) = (keys.get(db, table), keys.json(db, table));
                if let Some((sql, params)) = multi_statement(&events[i..i + run], kind, pk, json) {
                    tx.query_drop("SAVEPOINT revdoor_run")
                        .await
                        .map_err(|e| ApplyError::transient("savepoint", e))?;
                    match tx.exec_drop(sql, params).await {
                        Ok(()) => {
                            i += run;
                            continue;
                        }
                        Err(mysql_async::Error::Server(_)) => {
                            tx.query_drop("ROLLBACK TO SAVEPOINT revdoor_run")
                                .await
                                .map_err(|e| ApplyError::transient("rollback to savepoint", e))?;
                        }
                        Err(e) => return Err(ApplyError::transient("multi-row statement", e)),
                    }
                }
            }
            for (offset, ev) in events[i..i + run.max(1)].iter().copied() {
                self.apply_one(tx, keys, *offset, ev).await?;
            }
            i += run.max(1);
        }
        Ok(())
    }

    /// Apply one event statement by statement.
    pub(crate) async fn apply_one(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        keys: &KeyCache,
        offset: i64,
        ev: &ChangeEvent,
    ) -> Result<(), ApplyError> {
        let pk = keys.get(&ev.source.db, &ev.source.table);
        let fail = |e: mysql_async::Error| {
            let where_ = format!(
                "{}/{}@{offset} (gtid {}, {}.{})",
                self.topic(),
                self.partition,
                ev.txn.gtid,
                ev.source.db,
                ev.source.table
            );
            classify_mysql(&where_, offset, e)
        };
        for stmt in statements(ev, pk, keys.json(&ev.source.db, &ev.source.table)) {
            match stmt {
                Stmt::Exec(sql, params) => tx.exec_drop(sql, params).await.map_err(fail)?,
                Stmt::Upsert { update, insert } => {
                    // Update by primary key; insert only if no row has
                    // that key. A conflict on any other unique key then
                    // fails loudly instead of rewriting an unrelated row
                    // (the INSERT … ON DUPLICATE KEY UPDATE / REPLACE trap).
                    tx.exec_drop(update.0, update.1).await.map_err(fail)?;
                    if tx.affected_rows() == 0 {
                        tx.exec_drop(insert.0, insert.1).await.map_err(fail)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// When the source committed `ev`: capture's time, bounded by the source's
/// commit second.
pub(crate) fn source_ts_ms(ev: &ChangeEvent) -> u64 {
    ev.ts_ms.min(u64::from(ev.source.ts_sec) * 1000 + 999)
}
