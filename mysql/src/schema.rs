//! revdoor's own schema, `_revdoor`, on every server it touches: one place
//! for its table names and DDL.
//!
//! | table | on | written by | for |
//! | --- | --- | --- | --- |
//! | `stream_state` | destinations | apply | the checkpoint row of each stream, under its fence token, with the source and fetch times of its heartbeat (a switch's catch-up parts); capture's loop filter drops transactions that touch the opposite direction's rows |
//! | `stream_skips` | destinations | `revdoor stream skip` | messages apply passes over |
//! | `applied_txns` | destinations | parallel apply | transactions committed beyond the checkpoint |
//! | `ddls` | destinations | apply (`on_ddl=exec`) | intent and outcome of each DDL record |
//! | `holds` | destinations | vdiff, apply | where a stream stops for a vdiff |
//! | `watermarks` | origins | capture's copy | DBLog low/high watermarks |
//! | `fences` | both sides | the coordinator | one row per (workflow, side) that every fence trigger of that side reads, with the side's pass and the fencing token of the leader that last wrote it; and the workflow's mark row |

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use revdoor_core::names::{Direction, WorkflowName};

use crate::MysqlError;

/// The schema's name.
pub const DATABASE: &str = "_revdoor";
/// Checkpoint rows of apply streams (the loop filter's mark too).
pub const STREAM_STATE: &str = "stream_state";
/// The copy watermarks table.
pub const WATERMARKS: &str = "watermarks";

/// revdoor's tables on every destination: checkpoints (`stream_state`),
/// operator skips, parallel apply's transactions, DDL records, vdiff
/// holds.
pub const DESTINATION_DDL: [&str; 6] = [
    "CREATE DATABASE IF NOT EXISTS _revdoor",
    "CREATE TABLE IF NOT EXISTS _revdoor.stream_state (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        source_gtid  VARCHAR(4096) NOT NULL DEFAULT '',
        fence_token  BIGINT UNSIGNED NOT NULL DEFAULT 0,
        updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        source_ms    BIGINT NOT NULL DEFAULT 0,
        fetched_ms   BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (workflow, direction, `partition`)
    ) ENGINE=InnoDB",
    // Messages an operator chose to skip (`revdoor stream skip`).
    "CREATE TABLE IF NOT EXISTS _revdoor.stream_skips (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        reason       VARCHAR(1024) NOT NULL DEFAULT '',
        created_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // Transactions committed by parallel apply beyond the checkpoint
    // (identified by the offset of their last event); deleted when the
    // checkpoint passes them.
    "CREATE TABLE IF NOT EXISTS _revdoor.applied_txns (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // DDL records run by apply (`on_ddl=exec`): the intent (with a
    // fingerprint of the changed tables before the statement) is committed
    // before the statement runs, the outcome with the checkpoint that
    // passes it — so a restart knows whether it ran (docs/streams.md).
    "CREATE TABLE IF NOT EXISTS _revdoor.ddls (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        kafka_offset BIGINT       NOT NULL,
        gtid         VARCHAR(255) NOT NULL,
        statement    LONGTEXT     NOT NULL,
        fingerprint  VARCHAR(32)  NOT NULL,
        state        VARCHAR(32)  NOT NULL,
        updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (workflow, direction, `partition`, kafka_offset)
    ) ENGINE=InnoDB",
    // Holds asked for by a vdiff (`revdoor_coordinator::vdiff`): apply
    // nothing outside `hold_gtid` until `until`; `held_gtid` reports that
    // the stream stopped exactly there.
    "CREATE TABLE IF NOT EXISTS _revdoor.holds (
        workflow     VARCHAR(64)  NOT NULL,
        direction    VARCHAR(16)  NOT NULL,
        `partition`  INT          NOT NULL,
        hold_gtid    VARCHAR(4096) NOT NULL,
        until        DATETIME(6)  NOT NULL,
        held_gtid    VARCHAR(4096) NULL,
        held_at      DATETIME(6)  NULL,
        PRIMARY KEY (workflow, direction, `partition`)
    ) ENGINE=InnoDB",
];

/// The table holding copy watermarks on every origin.
pub const WATERMARKS_DDL: &str = "CREATE TABLE IF NOT EXISTS _revdoor.watermarks (
    stream VARCHAR(255) NOT NULL PRIMARY KEY,
    seq    BIGINT UNSIGNED NOT NULL,
    kind   VARCHAR(4) NOT NULL
) ENGINE=InnoDB";

/// The fence rows the write-deny triggers read: one per (workflow, side)
/// on a server — a server holds at most one shard of each side of a
/// workflow — so that one exclusive lock of it drains every writer of
/// every moved table there. `pass` is the side's fence pass (random,
/// rotated when the side is fenced): a session whose `@revdoor_fence_pass`
/// equals it passes the fence (apply, [`set_fence_pass`]). The row of side
/// [`MARK_SIDE`] is no fence: switches and vdiff rewrite it to mark the
/// binlog.
pub const FENCES_DDL: [&str; 2] = [
    "CREATE DATABASE IF NOT EXISTS _revdoor",
    "CREATE TABLE IF NOT EXISTS _revdoor.fences (
        workflow VARCHAR(64) NOT NULL,
        side     VARCHAR(8) NOT NULL,
        fenced   TINYINT NOT NULL,
        message  VARCHAR(400) NOT NULL,
        pass     VARBINARY(16) NULL,
        token    BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (workflow, side)
    ) ENGINE=InnoDB",
];

/// The fence row of the side a direction's applies write into: forward
/// writes the target, reverse the source.
pub fn fence_side(direction: Direction) -> &'static str {
    match direction {
        Direction::Forward => TARGET_SIDE,
        Direction::Reverse => SOURCE_SIDE,
    }
}

/// The `side` of the fence rows on the shards of a workflow's source and
/// target keyspaces.
pub const SOURCE_SIDE: &str = "source";
pub const TARGET_SIDE: &str = "target";

/// The `side` of a workflow's mark row (read by no trigger).
pub const MARK_SIDE: &str = "mark";

/// Prove this session to be `workflow`'s apply into the side `direction`
/// writes: `@revdoor_fence_pass` set to that side's current pass (NULL
/// where the server has no fence row, or no `_revdoor.fences`). A session
/// opened before the side was fenced again holds an older pass and is
/// refused by the fence like any application.
pub async fn set_fence_pass(
    conn: &mut Conn,
    workflow: &WorkflowName,
    direction: Direction,
) -> Result<(), MysqlError> {
    let r = conn
        .exec_drop(
            "SET @revdoor_fence_pass = \
             (SELECT pass FROM _revdoor.fences WHERE workflow = ? AND side = ?)",
            (workflow.as_str(), fence_side(direction)),
        )
        .await;
    match r {
        Err(e) if crate::codes::is_missing_table(&e) => Ok(()),
        Err(mysql_async::Error::Server(se)) if se.code == crate::codes::BAD_FIELD => {
            Err(MysqlError::Refused(format!(
                "_revdoor.fences on this server has the layout of an older revdoor ({}): \
                 `workflow create` replaces it when no workflow uses it; a workflow still \
                 fenced by it must be completed or cancelled first",
                se.message
            )))
        }
        r => r.map_err(|e| MysqlError::query("set the fence pass", e)),
    }
}

/// Columns `stream_state` gained after its first release, with their
/// definitions: a table an earlier revdoor made gets them.
const STREAM_STATE_ADDED: [(&str, &str); 2] = [
    ("source_ms", "BIGINT NOT NULL DEFAULT 0"),
    ("fetched_ms", "BIGINT NOT NULL DEFAULT 0"),
];

/// Create what is missing of the destination tables ([`DESTINATION_DDL`]),
/// and add to `stream_state` the columns an earlier revdoor's lacks.
pub async fn ensure_destination(conn: &mut Conn) -> Result<(), MysqlError> {
    for ddl in DESTINATION_DDL {
        conn.query_drop(ddl)
            .await
            .map_err(|e| MysqlError::query("create _revdoor schema", e))?;
    }
    let have: Vec<String> = conn
        .query(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = '_revdoor' AND table_name = 'stream_state'",
        )
        .await
        .map_err(|e| MysqlError::query("read _revdoor.stream_state's columns", e))?;
    for (column, definition) in STREAM_STATE_ADDED {
        if have.iter().any(|c| c.eq_ignore_ascii_case(column)) {
            continue;
        }
        match conn
            .query_drop(format!(
                "ALTER TABLE _revdoor.stream_state ADD COLUMN {column} {definition}"
            ))
            .await
        {
            // Another stream's apply added it first.
            Err(mysql_async::Error::Server(e)) if e.code == crate::codes::DUP_FIELDNAME => {}
            r => r.map_err(|e| MysqlError::query("add a column to _revdoor.stream_state", e))?,
        }
    }
    Ok(())
}
