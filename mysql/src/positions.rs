//! GTID positions on a server: its own binlog position, and the source
//! position an apply stream checkpointed here (`_revdoor.stream_state`).
//! Both come back as [`StoredPosition`]s: the server's text kept, parsed
//! once, an unparsable one refused here naming it.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use revdoor_core::gtid::StoredPosition;
use revdoor_core::names::{Direction, WorkflowName};

use crate::codes::is_missing_table;
use crate::engine::Flavor;
use crate::MysqlError;

/// The server's binlog GTID position: MariaDB `@@gtid_binlog_pos`, MySQL
/// `@@gtid_executed` (its text as the server writes it, newlines included).
pub async fn server_position(conn: &mut Conn) -> Result<StoredPosition, MysqlError> {
    let var = match Flavor::of(conn).await? {
        Flavor::Mariadb => "gtid_binlog_pos",
        Flavor::Mysql => "gtid_executed",
    };
    let text: Option<String> = conn
        .query_first(format!("SELECT @@global.{var}"))
        .await
        .map_err(|e| MysqlError::query(format!("read {var}"), e))?;
    parse_position(var, text.unwrap_or_default())
}

/// The GTID of this session's last transaction where the server tells it
/// (MariaDB `@@last_gtid`), as a position; `None` on MySQL or when the
/// session wrote nothing.
pub async fn last_gtid(conn: &mut Conn) -> Result<Option<StoredPosition>, MysqlError> {
    let last: Option<String> = conn.query_first("SELECT @@last_gtid").await.ok().flatten();
    match last {
        Some(g) if !g.is_empty() => parse_position("@@last_gtid", g).map(Some),
        _ => Ok(None),
    }
}

/// The source position stream `(workflow, direction, partition)` has
/// applied on this destination (`_revdoor.stream_state.source_gtid`);
/// `None` before its first checkpoint.
pub async fn applied_position(
    conn: &mut Conn,
    workflow: &WorkflowName,
    direction: Direction,
    partition: i32,
) -> Result<Option<StoredPosition>, MysqlError> {
    Ok(applied(conn, workflow, direction, partition)
        .await?
        .map(|a| a.position))
}

/// A stream's checkpoint on its destination: the source position applied,
/// and when the checkpoint's heartbeat was made and read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub position: StoredPosition,
    /// Capture's clock (ms since the epoch): when it had read the source up
    /// to the heartbeat this checkpoint is at, or the newest transaction's
    /// commit time when it is at a transaction; 0 before the first.
    pub source_ms: u64,
    /// Apply's clock: when it read that heartbeat from Kafka; 0 when the
    /// checkpoint is at a transaction.
    pub fetched_ms: u64,
}

/// [`applied_position`] with the checkpoint's times ([`Applied`]).
pub async fn applied(
    conn: &mut Conn,
    workflow: &WorkflowName,
    direction: Direction,
    partition: i32,
) -> Result<Option<Applied>, MysqlError> {
    let params = (workflow.as_str(), direction.as_str(), partition);
    let mut row: Result<Option<(String, i64, i64)>, _> = conn
        .exec_first(
            "SELECT source_gtid, source_ms, fetched_ms FROM _revdoor.stream_state \
             WHERE workflow = ? AND direction = ? AND `partition` = ?",
            params,
        )
        .await;
    if matches!(&row, Err(mysql_async::Error::Server(e)) if e.code == crate::codes::BAD_FIELD) {
        // An earlier revdoor's table, before its apply added the columns.
        row = conn
            .exec_first(
                "SELECT source_gtid, 0, 0 FROM _revdoor.stream_state \
                 WHERE workflow = ? AND direction = ? AND `partition` = ?",
                params,
            )
            .await;
    }
    let row = row
        .or_else(|e| {
            if is_missing_table(&e) {
                Ok(None)
            } else {
                Err(e)
            }
        })
        .map_err(|e| MysqlError::query("read stream_state", e))?;
    row.map(|(text, source_ms, fetched_ms)| {
        Ok(Applied {
            position: parse_position("_revdoor.stream_state.source_gtid", text)?,
            source_ms: u64::try_from(source_ms).unwrap_or(0),
            fetched_ms: u64::try_from(fetched_ms).unwrap_or(0),
        })
    })
    .transpose()
}

/// `text`, which `what` returned, as a position; refused naming both.
pub fn parse_position(what: &str, text: String) -> Result<StoredPosition, MysqlError> {
    text.parse().map_err(|source| MysqlError::Position {
        what: what.to_owned(),
        text,
        source,
    })
}
