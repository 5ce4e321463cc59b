//! Reading one shard's binlog and framing it into whole source transactions.
//!
//! The reader connects with `mysql_async`, checks the server settings revdoor
//! relies on, registers as a replica and streams binlog events from a GTID
//! position. Events are buffered per source transaction and handed on only at
//! the transaction's commit (XID event, or `COMMIT` query for non-transactional
//! engines), so downstream never sees half a transaction.
//!
//! # MariaDB specifics
//!
//! MariaDB does not speak `COM_BINLOG_DUMP_GTID`; the start position is given
//! with `SET @slave_connect_state='d-s-n,…'` before a plain `COM_BINLOG_DUMP`,
//! and `@mariadb_slave_capability=4` makes the server send its own GTID
//! events (0xA2), which mysql_common does not decode: we parse them from the
//! event body (u64 seq, u32 domain, u8 flags).
//!
//! # MySQL specifics (written to MySQL's protocol, not tested here: no
//! MySQL server can run on the project's machine)
//!
//! The start position is a GTID set (`uuid:1-42,…`) sent with
//! `COM_BINLOG_DUMP_GTID`; GTID events are decoded by mysql_common
//! (`uuid:gno`); a statement after a GTID event without `BEGIN` is a
//! standalone group (DDL). Preflight also wants `gtid_mode=ON`,
//! `enforce_gtid_consistency=ON`, `binlog_transaction_compression=OFF`
//! (compressed payload events are not decoded) and an empty
//! `binlog_row_value_options` (partial JSON updates carry no full after
//! image). Tagged GTIDs (8.3+) are refused.
//!
//! # Errors
//!
//! A bad server setting, a checksum mismatch or an undecodable row is a
//! [`CaptureError::Definite`]: the stream stops with a message naming the
//! position. Connection loss is [`CaptureError::Transient`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use mysql_async::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::{BinlogChecksumAlg, EventType};
use mysql_async::consts::ColumnFlags;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, GnoInterval, Opts, Sid};
use revdoor_core::event::{ddl_tag_of, ColumnValue, Op, Row};
use revdoor_core::gtid::{MysqlGtidSet, Position, ServerUuid};
use revdoor_core::names::{Direction, WorkflowName};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::ddl::{captured_tables_changed, Ddl};
use crate::rows::{decode_rows, RowError, RowLayout};
use crate::tablemap::TableMap;
use crate::values::convert_value;
use revdoor_mysql::engine::Flavor;
use revdoor_mysql::preflight;

use crate::CaptureError;

/// MariaDB's GTID event (not decoded by mysql_common).
const MARIADB_GTID_EVENT: u8 = 0xA2;
/// Flag of a MariaDB GTID event: the event group is a single statement
/// without BEGIN/COMMIT (DDL, or a non-transactional engine).
const FL_STANDALONE: u8 = 1;

/// Loop prevention (DESIGN §4): a source transaction that updates the
/// `_revdoor.stream_state` row of `workflow` in `direction` (or, from a
/// parallel apply bucket, writes its `_revdoor.applied_txns` row) was
/// written by revdoor's own apply of the opposite stream, so replicating it
/// back would loop. A DDL that apply ran carries the tag
/// [`revdoor_core::event::ddl_tag`] of its workflow and direction. Such transactions are dropped whole; all others pass, including
/// those of other workflows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopFilter {
    pub workflow: WorkflowName,
    /// The direction whose apply must not be echoed (the opposite of ours).
    pub direction: Direction,
}

const STATE_DB: &str = "_revdoor";
const STATE_TABLE: &str = "stream_state";
/// Parallel apply's buckets commit without the checkpoint row but with a
/// row here (same `workflow`, `direction` columns): also apply's own.
const APPLIED_TXNS_TABLE: &str = "applied_txns";
const WATERMARK_TABLE: &str = "watermarks";
/// Fence rows (`_revdoor.fences`): a transaction that changes them is a
/// switch's fence or unfence, after which capture flushes at once and sends
/// a heartbeat carrying its position on every partition, so the switch sees
/// the fenced side's final position applied without waiting for the next
/// idle heartbeat.
const FENCES_TABLE: &str = "fences";

/// One row change inside a source transaction, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub db: String,
    pub table: String,
    pub op: Op,
    pub before: Option<Row>,
    pub after: Option<Row>,
    /// The table map of a binlog row change: the table's definition when
    /// the row was written. `None` for copied rows (read as the table is now).
    pub map: Option<Arc<TableMap>>,
}

/// A committed source transaction, possibly with no row of interest
/// (it still advances the position).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTxn {
    /// `domain-server-seq`.
    pub gtid: String,
    pub timestamp: u32,
    pub changes: Vec<RowChange>,
    /// Dropped by the loop filter (its changes are cleared).
    pub looped: bool,
    /// A DDL statement that changes captured tables (the `on_ddl` policy
    /// decides what happens).
    pub ddl: Option<Ddl>,
    /// A copy watermark of this stream written by this transaction.
    pub watermark: Option<Watermark>,
    /// It changed `_revdoor.fences` (a switch fenced or unfenced this
    /// server): publish and heartbeat right after it.
    pub marker: bool,
}

/// A DBLog watermark row (`_revdoor.watermarks`) seen in the binlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    pub seq: u64,
    /// High (true) or low (false).
    pub high: bool,
}

/// Row changes the reader may have framed and handed on that the publisher
/// has not taken yet: with the publisher's own batch limit this bounds
/// capture's memory whatever the source's rate (a transaction counts as at
/// least one row; one bigger than this passes alone).
pub const QUEUED_ROWS: usize = 20_000;

/// Row changes of a source transaction after which they are handed on
/// before its commit ([`BinlogItem::Part`]).
pub const PART_ROWS: usize = 5_000;

/// The reader's end of the queue to the publisher.
#[derive(Clone)]
pub struct ItemSender {
    tx: mpsc::Sender<BinlogItem>,
    budget: Arc<Semaphore>,
}

/// The publisher's end; taking an item frees its rows' budget.
pub struct ItemReceiver {
    rx: mpsc::Receiver<BinlogItem>,
    budget: Arc<Semaphore>,
}

/// A queue of at most `items` items and [`QUEUED_ROWS`] row changes.
pub fn item_queue(items: usize) -> (ItemSender, ItemReceiver) {
    let (tx, rx) = mpsc::channel(items);
    let budget = Arc::new(Semaphore::new(QUEUED_ROWS));
    (
        ItemSender {
            tx,
            budget: Arc::clone(&budget),
        },
        ItemReceiver { rx, budget },
    )
}

fn item_rows(item: &BinlogItem) -> usize {
    match item {
        BinlogItem::Txn(t) | BinlogItem::Part(t) => t.changes.len().clamp(1, QUEUED_ROWS),
        BinlogItem::Heartbeat => 1,
    }
}

impl ItemSender {
    /// Hand `item` on once its rows fit the budget; false when the
    /// publisher is gone.
    pub async fn send(&self, item: BinlogItem) -> bool {
        let n = item_rows(&item) as u32;
        match self.budget.acquire_many(n).await {
            Ok(permit) => permit.forget(),
            Err(_) => return false,
        }
        self.tx.send(item).await.is_ok()
    }
}

impl ItemReceiver {
    pub async fn recv(&mut self) -> Option<BinlogItem> {
        let item = self.rx.recv().await?;
        self.budget.add_permits(item_rows(&item));
        Some(item)
    }

    pub fn try_recv(&mut self) -> Option<BinlogItem> {
        let item = self.rx.try_recv().ok()?;
        self.budget.add_permits(item_rows(&item));
        Some(item)
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

/// What the binlog reader hands on.
#[derive(Debug, Clone, PartialEq)]
pub enum BinlogItem {
    /// A committed source transaction (the rest of it, after `Part`s).
    Txn(SourceTxn),
    /// The first [`PART_ROWS`] (or next) row changes of a source
    /// transaction still being read: a big transaction is streamed into its
    /// Kafka transaction instead of held whole. Its `Txn` follows.
    Part(SourceTxn),
    /// The server had nothing to send for a heartbeat period: everything
    /// committed so far has been read.
    Heartbeat,
}

/// The replica server id a capture registers with: derived from the
/// stream's transactional id so that two streams reading one server never
/// share an id (a server drops the older of two replicas with the same id),
/// and kept out of the range real servers use (high bit set).
pub fn replica_server_id(transactional_id: &str) -> u32 {
    0x4000_0000 | (xxhash_rust::xxh3::xxh3_64(transactional_id.as_bytes()) as u32 & 0x3fff_ffff)
}

/// Reads one MariaDB server's binlog.
#[derive(Debug, Clone)]
pub struct BinlogReader {
    pub opts: Opts,
    /// Our replica server id; must differ from every real server's id.
    pub server_id: u32,
    /// `(database, table)` pairs to capture; other tables are skipped.
    pub tables: HashSet<(String, String)>,
    /// Heartbeat period asked from the server (lag stays measurable when idle).
    pub heartbeat: Duration,
    /// Drop transactions applied by the opposite stream of this workflow.
    pub loop_filter: Option<LoopFilter>,
    /// Report `_revdoor.watermarks` rows of this stream name (copy phase).
    pub watermark_stream: Option<String>,
}

impl BinlogReader {
    /// Stream committed transactions after `start` (a GTID position of the
    /// source's engine) into `out` until `cancel` fires or an error occurs.
    pub async fn run(
        &self,
        start: &Position,
        out: ItemSender,
        cancel: CancellationToken,
    ) -> Result<(), CaptureError> {
        let mut conn = Conn::new(self.opts.clone())
            .await
            .map_err(|e| CaptureError::transient("connect to source", e))?;
        preflight::binlog_settings(&mut conn).await?;
        let flavor = Flavor::of(&mut conn).await?;
        let heartbeat_ns = self.heartbeat.as_nanos().max(1_000_000);
        let session = match flavor {
            Flavor::Mariadb => vec![
                "SET @mariadb_slave_capability=4".to_string(),
                format!(
                    "SET @slave_connect_state='{}'",
                    sql_escape(&start.to_string())
                ),
                "SET @slave_gtid_strict_mode=1".to_string(),
                format!("SET @master_heartbeat_period={heartbeat_ns}"),
            ],
            Flavor::Mysql => vec![format!("SET @master_heartbeat_period={heartbeat_ns}")],
        };
        for stmt in session {
            conn.query_drop(&stmt)
                .await
                .map_err(|e| CaptureError::transient("prepare binlog session", e))?;
        }
        let request = match flavor {
            Flavor::Mariadb => BinlogStreamRequest::new(self.server_id),
            Flavor::Mysql => {
                let set = match start {
                    Position::Mysql(set) => set.clone(),
                    Position::Mariadb(list) if list.is_empty() => MysqlGtidSet::new(),
                    Position::Mariadb(_) => {
                        return Err(CaptureError::Definite(format!(
                        "start position '{start}' is a MariaDB position, but the source is MySQL"
                    )))
                    }
                };
                BinlogStreamRequest::new(self.server_id)
                    .with_gtid()
                    .with_gtid_set(mysql_sids(&set))
            }
        };
        let mut stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| CaptureError::transient("request binlog stream", e))?;

        let mut framer = Framer::new(
            &self.tables,
            self.loop_filter.as_ref(),
            self.watermark_stream.as_deref(),
        );
        loop {
            let item = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                item = stream.next() => item,
            };
            let event = match item {
                None => return Err(CaptureError::Transient("binlog stream ended".into())),
                Some(Err(e)) => return Err(classify_stream_error(start, framer.last_gtid(), e)),
                Some(Ok(event)) => event,
            };
            verify_checksum(&event).map_err(|m| {
                CaptureError::Definite(format!("{m} after GTID {}", framer.last_gtid()))
            })?;
            let item = if event.header().event_type_raw() == EventType::HEARTBEAT_EVENT as u8 {
                Some(BinlogItem::Heartbeat)
            } else {
                framer.push(&event)?.map(BinlogItem::Txn)
            };
            if let Some(part) = framer.take_part() {
                if !out.send(BinlogItem::Part(part)).await {
                    return Ok(());
                }
            }
            if let Some(item) = item {
                if !out.send(item).await {
                    return Ok(()); // the publisher is gone: shutting down
                }
            }
        }
    }
}

/// A GTID set as the SID list of `COM_BINLOG_DUMP_GTID`.
fn mysql_sids(set: &MysqlGtidSet) -> Vec<Sid<'static>> {
    set.intervals()
        .map(|(uuid, ivs)| {
            Sid::new(*uuid.as_bytes()).with_intervals(
                ivs.into_iter()
                    .map(|(start, end)| GnoInterval::new(start, end))
                    .collect(),
            )
        })
        .collect()
}

fn classify_stream_error(start: &Position, last: &str, e: mysql_async::Error) -> CaptureError {
    if let mysql_async::Error::Server(ref se) = e {
        if se.code == 1236 {
            let seen = if last.is_empty() {
                String::new()
            } else {
                format!(", last published {last}")
            };
            return CaptureError::Definite(format!(
                "the source cannot serve binlog from position '{start}'{seen}: {} — the binlog \
                 holding it was probably purged; re-create the stream with a new copy",
                se.message
            ));
        }
    }
    CaptureError::transient("read binlog", e)
}

/// A binlog event whose CRC32 does not match its bytes.
#[derive(Debug, thiserror::Error)]
#[error("binlog event checksum mismatch (type {event_type}, stored {stored:08x}, computed {computed:08x})")]
struct ChecksumMismatch {
    event_type: u8,
    stored: u32,
    computed: u32,
}

fn verify_checksum(event: &Event) -> Result<(), ChecksumMismatch> {
    let alg = match event.footer().get_checksum_alg() {
        Ok(Some(alg)) => alg,
        _ => return Ok(()),
    };
    if alg != BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32 {
        return Ok(());
    }
    if let Some(sum) = event.checksum() {
        let want = u32::from_le_bytes(sum);
        let got = event.calc_checksum(alg);
        if want != got {
            return Err(ChecksumMismatch {
                event_type: event.header().event_type_raw(),
                stored: want,
                computed: got,
            });
        }
    }
    Ok(())
}

/// Turns a stream of binlog events into committed transactions.
struct Framer<'a> {
    tables: &'a HashSet<(String, String)>,
    loop_filter: Option<&'a LoopFilter>,
    /// Watermarks of this stream name are reported (copy in progress).
    watermark_stream: Option<&'a str>,
    table_maps: HashMap<u64, TableMapEvent<'static>>,
    /// Row layouts of captured tables' maps, read on first use.
    layouts: HashMap<u64, Arc<RowLayout>>,
    /// The last layout of each captured table: a new map with the same
    /// definition shares it (and its definition keeps one identity).
    last_layouts: HashMap<(String, String), Arc<RowLayout>>,
    current: Option<SourceTxn>,
    standalone: bool,
    last_gtid: String,
}

impl<'a> Framer<'a> {
    fn new(
        tables: &'a HashSet<(String, String)>,
        loop_filter: Option<&'a LoopFilter>,
        watermark_stream: Option<&'a str>,
    ) -> Self {
        Framer {
            tables,
            loop_filter,
            watermark_stream,
            table_maps: HashMap::new(),
            layouts: HashMap::new(),
            last_layouts: HashMap::new(),
            current: None,
            standalone: false,
            last_gtid: String::new(),
        }
    }

    fn last_gtid(&self) -> &str {
        &self.last_gtid
    }

    fn push(&mut self, event: &Event) -> Result<Option<SourceTxn>, CaptureError> {
        let header = event.header();
        let raw_type = header.event_type_raw();
        if raw_type == MARIADB_GTID_EVENT {
            let body = event.data();
            if body.len() < 13 {
                return Err(CaptureError::Definite(format!(
                    "truncated MariaDB GTID event after {}",
                    self.last_gtid
                )));
            }
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&body[0..8]);
            let mut domain = [0u8; 4];
            domain.copy_from_slice(&body[8..12]);
            let gtid = format!(
                "{}-{}-{}",
                u32::from_le_bytes(domain),
                header.server_id(),
                u64::from_le_bytes(seq)
            );
            self.begin(gtid, header.timestamp(), body[12] & FL_STANDALONE != 0);
            return Ok(None);
        }
        let data = event.read_data().map_err(|e| {
            CaptureError::Definite(format!(
                "decode binlog event type {raw_type} after {}: {e}",
                self.last_gtid
            ))
        })?;
        match data {
            Some(EventData::TableMapEvent(tme)) => {
                // A new map of the id: its row layout is read again.
                self.layouts.remove(&tme.table_id());
                self.table_maps.insert(tme.table_id(), tme.into_owned());
                Ok(None)
            }
            Some(EventData::RowsEvent(rows)) => {
                self.push_rows(&rows)?;
                Ok(None)
            }
            Some(EventData::XidEvent(_)) => Ok(self.commit()),
            Some(EventData::GtidEvent(g)) => {
                // MySQL: `uuid:gno`. Without BEGIN next, the group is one
                // standalone statement (DDL).
                if g.tag().is_some() {
                    return Err(CaptureError::Definite(format!(
                        "tagged GTID after {} (MySQL 8.3+ `uuid:tag:n`): not supported; \
                         do not use tagged GTIDs on a captured server",
                        self.last_gtid
                    )));
                }
                let gtid = format!("{}:{}", ServerUuid::from_bytes(g.sid()), g.gno());
                self.begin(gtid, header.timestamp(), true);
                Ok(None)
            }
            Some(EventData::QueryEvent(q)) => {
                let query = q.query();
                if query.eq_ignore_ascii_case("COMMIT") {
                    Ok(self.commit())
                } else if query.eq_ignore_ascii_case("BEGIN") {
                    // A transaction follows (MariaDB flags this in its GTID
                    // event already; MySQL does not).
                    self.standalone = false;
                    Ok(None)
                } else if self.standalone {
                    // A statement on its own (DDL, or a non-transactional
                    // engine's DML): it ends its group.
                    let default_db = q.schema();
                    let tables = captured_tables_changed(&default_db, &query, self.tables);
                    let echoed = self.loop_filter.is_some_and(|f| {
                        ddl_tag_of(&query) == Some((f.workflow.as_str(), f.direction))
                    });
                    if let Some(txn) = self.current.as_mut() {
                        if echoed {
                            // The opposite direction's apply ran it here
                            // (on_ddl=exec): its origin has it already.
                            txn.looped = true;
                        } else if !tables.is_empty() {
                            txn.ddl = Some(Ddl {
                                statement: query.to_string(),
                                default_db: default_db.to_string(),
                                exec: false,
                                tables,
                            });
                        }
                    }
                    Ok(self.commit())
                } else {
                    Ok(None) // statement-based DML inside a transaction
                }
            }
            _ => Ok(None),
        }
    }

    /// The row changes read so far of a transaction that reached
    /// [`PART_ROWS`], to be streamed ahead of its commit. A transaction
    /// already known to be looped keeps nothing.
    fn take_part(&mut self) -> Option<SourceTxn> {
        let txn = self.current.as_mut()?;
        if txn.looped {
            txn.changes.clear();
            return None;
        }
        if txn.changes.len() < PART_ROWS {
            return None;
        }
        Some(SourceTxn {
            gtid: txn.gtid.clone(),
            timestamp: txn.timestamp,
            changes: std::mem::take(&mut txn.changes),
            looped: false,
            ddl: None,
            watermark: None,
            marker: false,
        })
    }

    /// A GTID event opened the group `gtid`.
    fn begin(&mut self, gtid: String, timestamp: u32, standalone: bool) {
        self.standalone = standalone;
        self.current = Some(SourceTxn {
            gtid,
            timestamp,
            changes: Vec::new(),
            looped: false,
            ddl: None,
            watermark: None,
            marker: false,
        });
    }

    fn commit(&mut self) -> Option<SourceTxn> {
        self.standalone = false;
        let mut txn = self.current.take()?;
        if txn.looped {
            txn.changes.clear();
        }
        self.last_gtid.clone_from(&txn.gtid);
        Some(txn)
    }

    fn push_rows(&mut self, rows: &RowsEventData<'_>) -> Result<(), CaptureError> {
        let Some(tme) = self.table_maps.get(&rows.table_id()) else {
            return Err(CaptureError::Definite(format!(
                "rows event for unknown table id {} after {}",
                rows.table_id(),
                self.last_gtid
            )));
        };
        let key = (
            tme.database_name().into_owned(),
            tme.table_name().into_owned(),
        );
        if key.0 == STATE_DB && (key.1 == STATE_TABLE || key.1 == APPLIED_TXNS_TABLE) {
            let tme = tme.clone();
            return self.check_loop(rows, &tme);
        }
        if key.0 == STATE_DB && key.1 == WATERMARK_TABLE {
            let tme = tme.clone();
            return self.check_watermark(rows, &tme);
        }
        if key.0 == STATE_DB && key.1 == FENCES_TABLE {
            if let Some(txn) = self.current.as_mut() {
                txn.marker = true;
            }
            return Ok(());
        }
        if !self.tables.contains(&key) {
            return Ok(());
        }
        let Some(txn) = self.current.as_mut() else {
            return Err(CaptureError::Definite(format!(
                "rows event outside a transaction after {}",
                self.last_gtid
            )));
        };
        let op = match rows {
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => Op::Create,
            RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_) => Op::Update,
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => Op::Delete,
            RowsEventData::PartialUpdateRowsEvent(_) => {
                return Err(CaptureError::Definite(format!(
                    "partial JSON update in {}.{} at {}: set binlog_row_value_options='' on the source",
                    key.0, key.1, txn.gtid
                )))
            }
        };
        let layout = match self.layouts.get(&rows.table_id()) {
            Some(l) => l,
            None => {
                let map = TableMap::of(tme).map_err(|e| {
                    CaptureError::Definite(format!("{}.{} in {}: {e}", key.0, key.1, txn.gtid))
                })?;
                let l = match self.last_layouts.get(&key) {
                    Some(last) if *last.map == map => Arc::clone(last),
                    _ => {
                        let l = Arc::new(RowLayout::from_map(map));
                        self.last_layouts.insert(key.clone(), Arc::clone(&l));
                        l
                    }
                };
                &*self.layouts.entry(rows.table_id()).or_insert(l)
            }
        };
        let decoded = decode_rows(rows, layout).map_err(|e| {
            CaptureError::Definite(format!(
                "decode row of {}.{} in {}: {e}",
                key.0, key.1, txn.gtid
            ))
        })?;
        txn.changes.reserve(decoded.len());
        for (before, after) in decoded {
            txn.changes.push(RowChange {
                db: key.0.clone(),
                table: key.1.clone(),
                op,
                before,
                after,
                map: Some(Arc::clone(&layout.map)),
            });
        }
        Ok(())
    }
}

impl Framer<'_> {
    /// Record a copy watermark of this stream written by the current
    /// transaction (DBLog; see `copy`).
    fn check_watermark(
        &mut self,
        rows: &RowsEventData<'_>,
        tme: &TableMapEvent<'_>,
    ) -> Result<(), CaptureError> {
        let Some(stream) = self.watermark_stream else {
            return Ok(());
        };
        let Some(txn) = self.current.as_mut() else {
            return Ok(());
        };
        for pair in rows.rows(tme) {
            let (_, after) = pair.map_err(|e| {
                CaptureError::Definite(format!(
                    "decode _revdoor.watermarks row in {}: {e}",
                    txn.gtid
                ))
            })?;
            let Some(image) = after else { continue };
            let row = convert_row(image)
                .map_err(|e| CaptureError::Definite(format!("{e} in {}", txn.gtid)))?;
            let ours = matches!(row.get("stream"), Some(ColumnValue::Bytes(b)) if b.as_slice() == stream.as_bytes());
            let seq = match row.get("seq") {
                Some(ColumnValue::Int(i)) => *i as u64,
                Some(ColumnValue::UInt(u)) => *u,
                _ => continue,
            };
            let high =
                matches!(row.get("kind"), Some(ColumnValue::Bytes(b)) if b.as_slice() == b"high");
            if ours {
                txn.watermark = Some(Watermark { seq, high });
            }
        }
        Ok(())
    }

    /// Mark the current transaction as looped if it wrote the checkpoint
    /// row of the filtered workflow and direction.
    fn check_loop(
        &mut self,
        rows: &RowsEventData<'_>,
        tme: &TableMapEvent<'_>,
    ) -> Result<(), CaptureError> {
        let Some(filter) = self.loop_filter else {
            return Ok(());
        };
        let Some(txn) = self.current.as_mut() else {
            return Ok(());
        };
        for pair in rows.rows(tme) {
            let (before, after) = pair.map_err(|e| {
                CaptureError::Definite(format!(
                    "decode a _revdoor checkpoint row in {}: {e}",
                    txn.gtid
                ))
            })?;
            for image in [before, after].into_iter().flatten() {
                let row = convert_row(image)
                    .map_err(|e| CaptureError::Definite(format!("{e} in {}", txn.gtid)))?;
                let is = |col: &str, want: &str| matches!(row.get(col), Some(ColumnValue::Bytes(b)) if b.as_slice() == want.as_bytes());
                if is("workflow", filter.workflow.as_str())
                    && is("direction", filter.direction.as_str())
                {
                    txn.looped = true;
                }
            }
        }
        Ok(())
    }
}

/// Convert a binlog row image into the event's row type.
fn convert_row(row: BinlogRow) -> Result<Row, RowError> {
    let columns = row.columns();
    let mut names = Vec::with_capacity(columns.len());
    let mut values = Vec::with_capacity(columns.len());
    for (i, value) in row.unwrap().into_iter().enumerate() {
        let col = columns.get(i).ok_or(RowError::ExtraValue(i))?;
        let name = col.name_str().into_owned();
        if name.is_empty() {
            return Err(RowError::NoColumnNames);
        }
        let unsigned = col.flags().contains(ColumnFlags::UNSIGNED_FLAG);
        names.push(name);
        values.push(convert_value(value, unsigned)?);
    }
    Ok(Row {
        columns: names.into(),
        values,
    })
}

fn sql_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_set_becomes_the_dump_requests_sid_list() {
        let set: MysqlGtidSet = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3:5,\
                                 4e11fa47-71ca-11e1-9e33-c80aa9429562:7"
            .parse()
            .expect("set");
        let sids = mysql_sids(&set);
        let text: Vec<String> = sids.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            text,
            [
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3:5",
                "4e11fa47-71ca-11e1-9e33-c80aa9429562:7"
            ]
        );
        // Intervals go on the wire end-exclusive.
        let ivs: Vec<(u64, u64)> = sids[0]
            .intervals()
            .iter()
            .map(|i| (i.start(), i.end()))
            .collect();
        assert_eq!(ivs, [(1, 4), (5, 6)]);
    }

    /// The stream's error carries these texts; they are what they were
    /// when they were strings.
    #[test]
    fn decode_errors_say_what_they_said() {
        let checksum = ChecksumMismatch {
            event_type: 30,
            stored: 0xab,
            computed: 0x1234_5678,
        };
        assert_eq!(
            checksum.to_string(),
            "binlog event checksum mismatch (type 30, stored 000000ab, computed 12345678)"
        );
        for (e, text) in [
            (
                RowError::NoColumnType(2),
                "column 2 of the table map has no type",
            ),
            (
                RowError::NoColumnNames,
                "binlog has no column names: set binlog_row_metadata=FULL on the source",
            ),
            (
                RowError::ColumnCount {
                    event: 3,
                    table_map: 4,
                },
                "rows event has 3 columns, its table map 4",
            ),
            (
                RowError::PartialImage {
                    present: 2,
                    columns: 5,
                },
                "row image has 2 of 5 columns: binlog_row_image must be FULL",
            ),
            (
                RowError::ExtraValue(7),
                "row has more values than columns (7)",
            ),
            (
                RowError::Convert(crate::values::ValueError::PartialJson),
                "partial JSON update: set binlog_row_value_options='' on the source",
            ),
            (
                RowError::ConvertColumn {
                    column: "doc".into(),
                    error: crate::values::ValueError::Json(crate::json::JsonError::DecimalType {
                        precision: 3,
                        scale: 5,
                    }),
                },
                "value of column doc: decode binary JSON: DECIMAL(3,5) is not a precision and scale",
            ),
        ] {
            assert_eq!(e.to_string(), text);
        }
        assert_eq!(
            crate::route::RouteError::NoShard(0x80).to_string(),
            "keyspace id 0000000000000080 is in no destination shard"
        );
    }
}
