//! GTID positions: the server's own, and what apply checkpointed on a
//! destination (`_revdoor.stream_state`, read; deleted with apply's other
//! rows when a workflow ends).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use revdoor_core::gtid::StoredPosition;
use revdoor_core::names::{Direction, WorkflowName};
use revdoor_mysql::positions;

use super::{no_table, redact, sql};
use crate::Error;

/// The server's binlog GTID position (MariaDB `@@gtid_binlog_pos`, MySQL
/// `@@gtid_executed`).
pub async fn position(conn: &mut Conn, url: &str) -> Result<StoredPosition, Error> {
    positions::server_position(conn).await.map_err(on(url))
}

/// The source position stream `(workflow, direction, partition)` has
/// applied on this destination (`_revdoor.stream_state.source_gtid`).
pub async fn applied_position(
    conn: &mut Conn,
    url: &str,
    workflow: &WorkflowName,
    direction: Direction,
    partition: i32,
) -> Result<Option<StoredPosition>, Error> {
    positions::applied_position(conn, workflow, direction, partition)
        .await
        .map_err(on(url))
}

/// [`applied_position`] with the checkpoint's times.
pub async fn applied(
    conn: &mut Conn,
    url: &str,
    workflow: &WorkflowName,
    direction: Direction,
    partition: i32,
) -> Result<Option<positions::Applied>, Error> {
    positions::applied(conn, workflow, direction, partition)
        .await
        .map_err(on(url))
}

/// The GTID of this session's last transaction (MariaDB), else the
/// server's position, which includes it.
pub(super) async fn last_gtid_or_position(
    conn: &mut Conn,
    url: &str,
) -> Result<StoredPosition, Error> {
    match positions::last_gtid(conn).await.map_err(on(url))? {
        Some(g) => Ok(g),
        None => position(conn, url).await,
    }
}

fn on(url: &str) -> impl FnOnce(revdoor_mysql::MysqlError) -> Error + '_ {
    move |e| Error::Sql(format!("{e} (on {})", redact(url)))
}

/// Whether `_revdoor.stream_state` holds rows of `workflow` (a workflow of
/// that name ran here before).
pub async fn has_stream_state(conn: &mut Conn, url: &str, workflow: &str) -> Result<bool, Error> {
    let n: Option<u8> = conn
        .exec_first(
            "SELECT 1 FROM _revdoor.stream_state WHERE workflow = ? LIMIT 1",
            (workflow,),
        )
        .await
        .or_else(|e| if no_table(&e) { Ok(None) } else { Err(e) })
        .map_err(sql("read stream_state", url))?;
    Ok(n.is_some())
}

/// Delete `workflow`'s checkpoint and skip rows (after complete / cancel).
pub async fn delete_stream_state(conn: &mut Conn, url: &str, workflow: &str) -> Result<(), Error> {
    for table in [
        "stream_state",
        "stream_skips",
        "applied_txns",
        "holds",
        "ddls",
    ] {
        conn.exec_drop(
            format!("DELETE FROM _revdoor.{table} WHERE workflow = ?"),
            (workflow,),
        )
        .await
        .or_else(|e| if no_table(&e) { Ok(()) } else { Err(e) })
        .map_err(sql("delete stream state", url))?;
    }
    Ok(())
}
