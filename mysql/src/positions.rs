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
    let text: Option<String> = conn
        .exec_first(
            "SELECT source_gtid FROM _revdoor.stream_state \
             WHERE workflow = ? AND direction = ? AND `partition` = ?",
            (workflow.as_str(), direction.as_str(), partition),
        )
        .await
        .or_else(|e| {
            if is_missing_table(&e) {
                Ok(None)
            } else {
                Err(e)
            }
        })
        .map_err(|e| MysqlError::query("read stream_state", e))?;
    text.map(|t| parse_position("_revdoor.stream_state.source_gtid", t))
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
