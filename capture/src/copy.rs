//! The copy phase: existing rows, read without locks while the binlog
//! streams, with Netflix DBLog's watermark algorithm.
//!
//! For each table, in primary-key order, chunk by chunk, the copier
//!
//! 1. writes a *low* watermark row for this stream in
//!    `_revdoor.watermarks` (it shows up in the binlog),
//! 2. selects the next chunk (`WHERE (pk) > (last) ORDER BY pk LIMIT n`),
//! 3. writes a *high* watermark row,
//!
//! and hands the chunk to the stream loop, which has been reading the
//! binlog meanwhile. Between the low and the high watermark the loop notes
//! every key changed in the binlog; at the high watermark it drops those
//! keys from the chunk (the binlog already carries a newer image of them)
//! and publishes the rest as `op=r` events at that point of the stream. So
//! a row's copy never overwrites a later change, with no table lock.
//!
//! # Resumption
//!
//! Copy progress (per table: the last key copied, done or not, rows) is
//! part of the capture checkpoint, written in the same Kafka transaction as
//! the chunk's events. A restarted capture continues after the last chunk
//! that was published; a chunk whose high watermark was not processed is
//! simply read again under a new watermark sequence number.

use std::collections::{BTreeMap, HashSet};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Value};
use revdoor_core::avro::{self, EventCodec};
use revdoor_core::event::{ColumnValue, Op, Row};
use revdoor_core::progress::Progress;
use revdoor_core::sqltype::{is_utf8_charset, SqlType, TableSchema};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use revdoor_mysql::schema::WATERMARKS_DDL;
use revdoor_mysql::to_param;

use crate::binlog::{BinlogReader, RowChange, SourceTxn};
use crate::publish::Codecs;
use crate::values::value_from_mysql;
use crate::CaptureError;

/// Copy progress of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableCopy {
    /// Primary-key values of the last row copied.
    pub last_key: Option<Vec<ColumnValue>>,
    pub done: bool,
    pub rows: u64,
}

/// Copy progress of a stream, by `db.table`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CopyState {
    pub tables: BTreeMap<String, TableCopy>,
}

impl CopyState {
    /// Whether every table is copied.
    pub fn done(&self) -> bool {
        self.tables.values().all(|t| t.done)
    }
}

/// One chunk read between a low and a high watermark.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub seq: u64,
    pub db: String,
    pub table: String,
    pub rows: Vec<Row>,
    pub last_key: Option<Vec<ColumnValue>>,
    pub done: bool,
}

/// Reads the chunks of one stream's tables.
pub struct Copier {
    pub opts: Opts,
    /// Name written in the watermark rows (the stream's transactional id).
    pub stream: String,
    pub chunk_rows: usize,
    pub tables: Vec<TableSchema>,
    /// Watermark sequence numbers start above this (older ones in the
    /// binlog belong to an earlier run and are ignored).
    pub first_seq: u64,
}

impl Copier {
    /// Copy every table not done in `state`, one chunk at a time: each is
    /// sent on `out`, and the next is read only after `ack` says the stream
    /// loop has processed it.
    pub async fn run(
        self,
        mut state: CopyState,
        out: mpsc::Sender<Chunk>,
        mut ack: mpsc::Receiver<()>,
        cancel: CancellationToken,
    ) -> Result<(), CaptureError> {
        let mut conn = Conn::new(self.opts.clone())
            .await
            .map_err(|e| CaptureError::transient("connect to source for copy", e))?;
        for stmt in [
            "CREATE DATABASE IF NOT EXISTS _revdoor",
            WATERMARKS_DDL,
            // Temporal values in UTC, as the binlog gives TIMESTAMPs.
            "SET SESSION time_zone = '+00:00'",
            // Strings as stored, in their column's own character set, as
            // the binlog gives them (not converted to the connection's:
            // a latin1 'é' is one byte E9, and apply writes it unchanged).
            "SET SESSION character_set_results = binary",
        ] {
            conn.query_drop(stmt)
                .await
                .map_err(|e| CaptureError::transient("prepare copy session", e))?;
        }
        let mut seq = self.first_seq;
        for table in &self.tables {
            let name = format!("{}.{}", table.db, table.table);
            let progress = state.tables.entry(name.clone()).or_default();
            while !progress.done {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                seq += 1;
                let chunk = self
                    .read_chunk(&mut conn, table, progress.last_key.as_deref(), seq)
                    .await?;
                progress.last_key.clone_from(&chunk.last_key);
                progress.done = chunk.done;
                progress.rows += chunk.rows.len() as u64;
                if out.send(chunk).await.is_err() {
                    return Ok(()); // the stream loop stopped
                }
                if ack.recv().await.is_none() {
                    return Ok(());
                }
            }
            tracing::info!(table = %name, rows = progress.rows, "table copied");
        }
        Ok(())
    }

    async fn watermark(&self, conn: &mut Conn, seq: u64, kind: &str) -> Result<(), CaptureError> {
        conn.exec_drop(
            "INSERT INTO _revdoor.watermarks (stream, seq, kind) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE seq = VALUES(seq), kind = VALUES(kind)",
            (&self.stream, seq, kind),
        )
        .await
        .map_err(|e| CaptureError::transient("write copy watermark", e))
    }

    async fn read_chunk(
        &self,
        conn: &mut Conn,
        table: &TableSchema,
        after: Option<&[ColumnValue]>,
        seq: u64,
    ) -> Result<Chunk, CaptureError> {
        let q = |s: &str| format!("`{}`", s.replace('`', "``"));
        let cols: Vec<String> = table.columns.iter().map(|c| q(&c.name)).collect();
        let pk: Vec<String> = table.primary_key.iter().map(|c| q(c)).collect();
        let mut sql = format!(
            "SELECT {} FROM {}.{}",
            cols.join(", "),
            q(&table.db),
            q(&table.table)
        );
        let mut params: Vec<Value> = Vec::new();
        if let Some(last) = after {
            // The last key's strings are stored bytes too: a column of a
            // non-UTF-8 character set reads them as such.
            let marks = table
                .primary_key
                .iter()
                .map(|k| {
                    match table
                        .columns
                        .iter()
                        .find(|c| &c.name == k)
                        .map(|c| &c.sql_type)
                    {
                        Some(SqlType::String { charset, .. })
                            if !is_utf8_charset(charset)
                                && charset
                                    .chars()
                                    .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                        {
                            format!("CONVERT(CAST(? AS BINARY) USING {charset})")
                        }
                        _ => "?".to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(" WHERE ({}) > ({marks})", pk.join(", ")));
            params = last.iter().map(to_param).collect();
        }
        sql.push_str(&format!(
            " ORDER BY {} LIMIT {}",
            pk.join(", "),
            self.chunk_rows
        ));

        self.watermark(conn, seq, "low").await?;
        fail::fail_point!(crate::failpoints::BETWEEN_WATERMARKS);
        let rows: Vec<mysql_async::Row> = conn.exec(sql.as_str(), params).await.map_err(|e| {
            CaptureError::transient(&format!("copy chunk of {}.{}", table.db, table.table), e)
        })?;
        self.watermark(conn, seq, "high").await?;

        let done = rows.len() < self.chunk_rows;
        let mut out = Vec::with_capacity(rows.len());
        let names: std::sync::Arc<[String]> =
            table.columns.iter().map(|c| c.name.clone()).collect();
        for mut r in rows {
            let values = (0..table.columns.len())
                .map(|i| value_from_mysql(r.take::<Value, _>(i).unwrap_or(Value::NULL), false))
                .collect();
            out.push(Row {
                columns: std::sync::Arc::clone(&names),
                values,
            });
        }
        let last_key = out.last().map(|row| {
            table
                .primary_key
                .iter()
                .map(|k| row.get(k).cloned().unwrap_or(ColumnValue::Null))
                .collect()
        });
        let last_key = last_key.or_else(|| after.map(<[ColumnValue]>::to_vec));
        Ok(Chunk {
            seq,
            db: table.db.clone(),
            table: table.table.clone(),
            rows: out,
            last_key,
            done,
        })
    }
}

/// Keys changed in the binlog between a low and a high watermark.
pub(crate) struct Window {
    pub(crate) seq: u64,
    /// `(db, table, canonical key as text)`.
    changed: HashSet<(String, String, String)>,
}

impl Window {
    pub(crate) fn new(seq: u64) -> Self {
        Window {
            seq,
            changed: HashSet::new(),
        }
    }

    pub(crate) fn note_changes(&mut self, codecs: &Codecs, txn: &SourceTxn) {
        for ch in &txn.changes {
            let Some(codec) = codecs.of_change(&ch.db, &ch.table, ch.map.as_ref()) else {
                continue;
            };
            for row in [ch.before.as_ref(), ch.after.as_ref()]
                .into_iter()
                .flatten()
            {
                if let Some(k) = canonical_key(codec, row, true) {
                    self.changed
                        .insert((ch.db.clone(), ch.table.clone(), format!("{k:?}")));
                }
            }
        }
    }

    /// The chunk's rows not changed inside the window, as `op=r` events
    /// at the high watermark's place in the stream; advances `copy`.
    pub(crate) fn chunk_txn(
        self,
        codecs: &Codecs,
        chunk: Chunk,
        gtid: String,
        copy: Option<&mut CopyState>,
    ) -> (SourceTxn, usize) {
        let codec = codecs.current(&chunk.db, &chunk.table);
        let mut changes = Vec::with_capacity(chunk.rows.len());
        for row in chunk.rows {
            let key = codec.and_then(|c| canonical_key(c, &row, false));
            if key.is_some_and(|k| {
                self.changed
                    .contains(&(chunk.db.clone(), chunk.table.clone(), format!("{k:?}")))
            }) {
                continue; // the binlog holds a newer image of this row
            }
            changes.push(RowChange {
                db: chunk.db.clone(),
                table: chunk.table.clone(),
                op: Op::Read,
                before: None,
                after: Some(row),
                map: None,
            });
        }
        if let Some(state) = copy {
            let t = state
                .tables
                .entry(format!("{}.{}", chunk.db, chunk.table))
                .or_default();
            t.rows += changes.len() as u64;
            t.last_key = chunk.last_key;
            t.done = chunk.done;
        }
        let kept = changes.len();
        (
            SourceTxn {
                gtid,
                timestamp: 0,
                changes,
                looped: false,
                ddl: None,
                watermark: None,
                marker: false,
            },
            kept,
        )
    }
}

/// The primary-key values of `row` in canonical form (binlog values are
/// first made unambiguous), or `None` if a key column is missing.
fn canonical_key(codec: &EventCodec, row: &Row, from_binlog: bool) -> Option<Vec<ColumnValue>> {
    let table = codec.table();
    table
        .primary_key
        .iter()
        .map(|k| {
            let col = table.column(k)?;
            let v = row.get(k)?.clone();
            let v = if from_binlog {
                avro::from_binlog(&col.sql_type, v).ok()?
            } else {
                v
            };
            avro::canonicalize(&col.sql_type, &v).ok()
        })
        .collect()
}

pub(crate) fn report_copy(progress: &Progress, copy: Option<&CopyState>) {
    progress.update(|p| match copy {
        Some(c) => {
            p.copy_rows = c.tables.values().map(|t| t.rows).sum();
            p.copy_done = c.done();
        }
        None => p.copy_done = true,
    });
}

/// The captured tables' row count estimate (`information_schema`), for
/// copy progress; 0 when unknown.
pub(crate) async fn estimate_rows(reader: &BinlogReader) -> u64 {
    let Ok(mut conn) = mysql_async::Conn::new(reader.opts.clone()).await else {
        return 0;
    };
    let mut total = 0u64;
    for (db, table) in &reader.tables {
        let n: Option<Option<u64>> = conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (db, table),
            )
            .await
            .ok()
            .flatten();
        total += n.flatten().unwrap_or(0);
    }
    let _ = conn.disconnect().await;
    total
}
