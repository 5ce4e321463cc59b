//! revdoor's own schema, `_revdoor`, on every server it touches: one place
//! for its table names and DDL.
//!
//! | table | on | written by | for |
//! | --- | --- | --- | --- |
//! | `stream_state` | destinations | apply | the checkpoint row of each stream, under its fence token; capture's loop filter drops transactions that touch the opposite direction's rows |
//! | `stream_skips` | destinations | `revdoor stream skip` | messages apply passes over |
//! | `applied_txns` | destinations | parallel apply | transactions committed beyond the checkpoint |
//! | `ddls` | destinations | apply (`on_ddl=exec`) | intent and outcome of each DDL record |
//! | `holds` | destinations | vdiff, apply | where a stream stops for a vdiff |
//! | `watermarks` | origins | capture's copy | DBLog low/high watermarks |
//! | `fences` | both sides | the coordinator | the rows the fence triggers read |

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

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

/// The fence rows the write-deny triggers read.
pub const FENCES_DDL: [&str; 2] = [
    "CREATE DATABASE IF NOT EXISTS _revdoor",
    "CREATE TABLE IF NOT EXISTS _revdoor.fences (
        workflow VARCHAR(64) NOT NULL,
        db       VARCHAR(64) NOT NULL,
        tbl      VARCHAR(64) NOT NULL,
        fenced   TINYINT NOT NULL,
        message  VARCHAR(400) NOT NULL,
        PRIMARY KEY (workflow, db, tbl)
    ) ENGINE=InnoDB",
];

/// Create what is missing of the destination tables ([`DESTINATION_DDL`]).
pub async fn ensure_destination(conn: &mut Conn) -> Result<(), MysqlError> {
    for ddl in DESTINATION_DDL {
        conn.query_drop(ddl)
            .await
            .map_err(|e| MysqlError::query("create _revdoor schema", e))?;
    }
    Ok(())
}
