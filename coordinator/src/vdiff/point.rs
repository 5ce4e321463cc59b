//! The consistent point ([`super`] docs, steps 1–4): apply streams held
//! through `_revdoor.holds`, origin snapshots at a GTID position, the
//! destinations' snapshots once the streams reached it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use revdoor_core::gtid::StoredPosition;
use revdoor_core::names::{Direction, WorkflowName};
use revdoor_core::workflow::{now_ms, KeyspaceSpec, ShardSpec, StreamKind, StreamSpec};
use revdoor_mysql::codes;

use super::record::Pause;
use super::sql;
use crate::shard::{self, redact};
use crate::Error;

/// A hold nobody released stops counting after this long.
pub const HOLD_TTL: Duration = Duration::from_secs(60);

/// How long `FLUSH TABLES WITH READ LOCK` may wait on a MySQL origin
/// (`lock_wait_timeout` of its session). It waits for running statements
/// to let go of the tables while already blocking every write, so a long
/// query would otherwise stop the origin's writes for as long as it runs;
/// past this the vdiff fails and says why. (Measured when nothing long
/// runs: 0–66 ms, median 5 ms, on a loaded 2-core machine; docs/vdiff.md.)
pub const ORIGIN_LOCK_WAIT: Duration = Duration::from_secs(5);

/// The snapshots of one consistent point.
pub(super) struct Point {
    pub(super) sources: Vec<(ShardSpec, Conn)>,
    pub(super) targets: Vec<(ShardSpec, Conn)>,
    pub(super) pause: Pause,
}

async fn session(url: &str) -> Result<Conn, Error> {
    let mut conn = shard::connect(url).await?;
    for stmt in [
        "SET NAMES utf8mb4, SESSION time_zone = '+00:00'",
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    ] {
        conn.query_drop(stmt)
            .await
            .map_err(sql("set vdiff session", url))?;
    }
    Ok(conn)
}

/// An origin's snapshot: its connection, its GTID position, and how long
/// the origin's writes were blocked to take it (MySQL only).
struct OriginSnapshot {
    conn: Conn,
    position: StoredPosition,
    locked: Option<Duration>,
}

/// Open a consistent snapshot on an origin shard and read its GTID
/// position.
///
/// MariaDB reports the binlog position of a snapshot
/// (`Binlog_snapshot_file/position`): no lock. MySQL (9.7 checked) has no
/// such status and exposes no snapshot's GTID set: `gtid_executed` read
/// inside a snapshot is the server's current set, and
/// `performance_schema.log_status` is a consistent instant of the binlog
/// and the engines, not of a transaction's read view. Bracketing the
/// snapshot between two equal reads of `gtid_executed` is not exact
/// either: a transaction is visible in InnoDB before its GTID joins
/// `gtid_executed`. So on MySQL writes are stopped for the instant of
/// opening the snapshot and reading `gtid_executed` (`FLUSH TABLES WITH
/// READ LOCK`, needs `RELOAD`), and that instant is measured.
async fn snapshot_source(url: &str) -> Result<OriginSnapshot, Error> {
    let mut conn = session(url).await?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(sql("start snapshot", url))?;
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(sql("read snapshot position", url))?;
    let find = |name: &str| {
        status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    if let (Some(file), Some(pos)) = (
        find("Binlog_snapshot_file"),
        find("Binlog_snapshot_position"),
    ) {
        // MariaDB: the binlog position of the snapshot, as a GTID position.
        let gtid: Option<String> = conn
            .exec_first(
                "SELECT BINLOG_GTID_POS(?, ?)",
                (file.as_str(), pos.parse::<u64>().unwrap_or(0)),
            )
            .await
            .map_err(sql("read snapshot GTID position", url))?;
        return match gtid {
            Some(g) => {
                let position = parse_position(url, "BINLOG_GTID_POS", g)?;
                Ok(OriginSnapshot {
                    conn,
                    position,
                    locked: None,
                })
            }
            None => Err(Error::Sql(format!(
                "{}: BINLOG_GTID_POS({file}, {pos}) is NULL; is the binary log on?",
                redact(url)
            ))),
        };
    }
    // MySQL: no snapshot position; hold writes for a moment instead.
    conn.query_drop("ROLLBACK")
        .await
        .map_err(sql("rollback", url))?;
    let mut lock = session(url).await?;
    lock.query_drop(format!(
        "SET SESSION lock_wait_timeout = {}",
        ORIGIN_LOCK_WAIT.as_secs()
    ))
    .await
    .map_err(sql("set lock_wait_timeout", url))?;
    let locked_at = Instant::now();
    let snapshot = async {
        lock.query_drop("FLUSH TABLES WITH READ LOCK")
            .await
            .map_err(|e| match e {
                mysql_async::Error::Server(s) if s.code == codes::LOCK_WAIT_TIMEOUT => {
                    Error::Timeout(format!(
                        "{}: FLUSH TABLES WITH READ LOCK waited {ORIGIN_LOCK_WAIT:?} for running \
                         statements (a long query, or DDL) while blocking the origin's writes, \
                         and gave up; run the vdiff when they have finished \
                         (SHOW PROCESSLIST on the origin)",
                        redact(url)
                    ))
                }
                e => sql("FLUSH TABLES WITH READ LOCK (needs RELOAD)", url)(e),
            })?;
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(sql("start snapshot", url))?;
        conn.query_first::<String, _>("SELECT @@global.gtid_executed")
            .await
            .map_err(sql("read GTID position", url))
    }
    .await;
    // Unlocked whatever happened (a failed FLUSH holds nothing).
    let unlocked = lock
        .query_drop("UNLOCK TABLES")
        .await
        .map_err(sql("unlock tables", url));
    let locked = locked_at.elapsed();
    let _ = lock.disconnect().await;
    let gtid = snapshot?;
    unlocked?;
    tracing::info!(server = %redact(url), locked_ms = u64::try_from(locked.as_millis()).unwrap_or(u64::MAX),
        "MySQL origin: writes blocked while the snapshot opened");
    let position = parse_position(url, "gtid_executed", gtid.unwrap_or_default())?;
    Ok(OriginSnapshot {
        conn,
        position,
        locked: Some(locked),
    })
}

fn parse_position(url: &str, what: &str, text: String) -> Result<StoredPosition, Error> {
    revdoor_mysql::positions::parse_position(what, text)
        .map_err(|e| Error::Sql(format!("{}: {e}", redact(url))))
}

pub(super) async fn consistent_point(
    workflow: &WorkflowName,
    direction: Direction,
    src: &KeyspaceSpec,
    dst: &KeyspaceSpec,
    streams: &[StreamSpec],
    hold_timeout: Duration,
) -> Result<Point, Error> {
    let applies: Vec<&StreamSpec> = streams
        .iter()
        .filter(|s| s.kind == StreamKind::Apply)
        .collect();
    let mut origin_of: BTreeMap<i32, String> = BTreeMap::new();
    for c in streams.iter().filter(|s| s.kind == StreamKind::Capture) {
        for (_, p) in &c.routes {
            origin_of.insert(*p, c.shard.to_string());
        }
    }
    if applies.is_empty() {
        return Err(Error::Refused(format!(
            "workflow {workflow} has no {direction} apply streams"
        )));
    }
    let wf = workflow.as_str();
    let dir = direction.as_str();
    // Control connections (holds) of the destinations that have streams.
    let mut ctl: BTreeMap<String, (String, Conn)> = BTreeMap::new();
    for a in &applies {
        if let std::collections::btree_map::Entry::Vacant(e) = ctl.entry(a.shard.to_string()) {
            let mut c = shard::connect(&a.url).await?;
            for ddl in revdoor_mysql::schema::DESTINATION_DDL {
                c.query_drop(ddl)
                    .await
                    .map_err(sql("create _revdoor.holds", &a.url))?;
            }
            e.insert((a.url.clone(), c));
        }
    }
    let started = Instant::now();
    let at_ms = now_ms();
    // 1. Hold everything.
    for a in &applies {
        let (url, c) = ctl.get_mut(&a.shard.to_string()).ok_or(Error::Conflict)?;
        put_hold(c, url, wf, dir, a.partition, "").await?;
    }
    let result = Box::pin(async {
        // 2. Snapshot the origins.
        let mut sources = Vec::new();
        let mut positions = BTreeMap::new();
        let mut origin_locks = BTreeMap::new();
        for s in &src.shards {
            let snap = snapshot_source(&s.url).await?;
            positions.insert(s.range.to_string(), snap.position);
            if let Some(d) = snap.locked {
                origin_locks.insert(
                    s.range.to_string(),
                    u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                );
            }
            sources.push((s.clone(), snap.conn));
        }
        // 3. Up to each origin's position; marks make captures heartbeat.
        let mut want: BTreeMap<(String, i32), StoredPosition> = BTreeMap::new();
        for a in &applies {
            let origin = origin_of.get(&a.partition).ok_or_else(|| {
                Error::Refused(format!(
                    "partition {} of workflow {workflow} has no capture stream",
                    a.partition
                ))
            })?;
            let pos = positions.get(origin).cloned().unwrap_or_default();
            let (url, c) = ctl.get_mut(&a.shard.to_string()).ok_or(Error::Conflict)?;
            put_hold(c, url, wf, dir, a.partition, pos.as_str()).await?;
            want.insert((a.shard.to_string(), a.partition), pos);
        }
        let deadline = Instant::now() + hold_timeout;
        for s in &src.shards {
            let mut c = shard::connect(&s.url).await?;
            shard::mark(
                &mut c,
                &s.url,
                wf,
                "revdoor: vdiff consistent point",
                deadline,
            )
            .await?;
        }
        loop {
            let mut behind = Vec::new();
            for ((range, partition), pos) in &want {
                let (url, c) = ctl.get_mut(range).ok_or(Error::Conflict)?;
                let held: Option<Option<String>> = c
                    .exec_first(
                        "SELECT held_gtid FROM _revdoor.holds WHERE workflow = ? AND direction = ? \
                         AND `partition` = ?",
                        (wf, dir, *partition),
                    )
                    .await
                    .map_err(sql("read hold", url))?;
                if held.flatten().as_deref() != Some(pos.as_str()) {
                    behind.push(format!("{dir}.apply.{partition} (into {range})"));
                }
            }
            if behind.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "vdiff: {} did not reach the consistent point within {:?}; are their workers \
                     running and caught up? (`revdoor workflow status {workflow}`)",
                    behind.join(", "),
                    hold_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // 4. Snapshot the destinations.
        let mut targets = Vec::new();
        for s in &dst.shards {
            let mut conn = session(&s.url).await?;
            conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                .await
                .map_err(sql("start snapshot", &s.url))?;
            targets.push((s.clone(), conn));
        }
        Ok((sources, targets, positions, origin_locks))
    })
    .await;
    // Release, whatever happened.
    for (url, c) in ctl.values_mut() {
        if let Err(e) = c
            .exec_drop(
                "DELETE FROM _revdoor.holds WHERE workflow = ? AND direction = ?",
                (wf, dir),
            )
            .await
        {
            tracing::warn!(server = %redact(url), error = %e,
                "could not release a vdiff hold; it expires by itself");
        }
    }
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (sources, targets, positions, origin_locks) = result?;
    Ok(Point {
        sources,
        targets,
        pause: Pause {
            at_ms,
            ms,
            positions,
            origin_locks,
        },
    })
}

async fn put_hold(
    c: &mut Conn,
    url: &str,
    wf: &str,
    dir: &str,
    partition: i32,
    hold: &str,
) -> Result<(), Error> {
    c.exec_drop(
        "INSERT INTO _revdoor.holds (workflow, direction, `partition`, hold_gtid, until, held_gtid, held_at) \
         VALUES (?, ?, ?, ?, NOW(6) + INTERVAL ? SECOND, NULL, NULL) \
         ON DUPLICATE KEY UPDATE hold_gtid = VALUES(hold_gtid), until = VALUES(until), \
         held_gtid = NULL, held_at = NULL",
        (wf, dir, partition, hold, HOLD_TTL.as_secs()),
    )
    .await
    .map_err(sql("set hold", url))
}
