//! vdiff holds (`_revdoor.holds`): a stream stops exactly at a vdiff's
//! consistent point and waits there until the hold is released.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use revdoor_core::event::{ChangeEvent, Heartbeat};
use revdoor_core::gtid::Position;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::keys::KeyCache;
use crate::{ApplyError, ApplyStream};

/// How often a holding stream looks whether its hold was released.
pub(crate) const HOLD_POLL: Duration = Duration::from_millis(10);

impl ApplyStream {
    /// The hold a vdiff set on this stream, if any and not expired.
    pub(crate) async fn read_hold(
        &self,
        conn: &mut impl Queryable,
    ) -> Result<Option<(String, Position)>, ApplyError> {
        let hold: Option<String> = conn
            .exec_first(
                "SELECT hold_gtid FROM _revdoor.holds WHERE workflow = ? AND direction = ? \
                 AND `partition` = ? AND until > NOW(6)",
                (
                    self.workflow.as_str(),
                    self.direction.as_str(),
                    self.partition,
                ),
            )
            .await
            .map_err(|e| ApplyError::transient("read hold", e))?;
        Ok(hold.and_then(|text| match text.parse::<Position>() {
            Ok(p) => Some((text, p)),
            Err(e) => {
                tracing::warn!(hold = %text, error = %e, "ignoring a hold whose position does not parse");
                None
            }
        }))
    }

    /// Report that the stream holds exactly at hold `text` and wait until
    /// the hold is released, changed or expired; false when `cancel` fired.
    pub(crate) async fn wait_at_hold(
        &self,
        conn: &mut Conn,
        text: &str,
        cancel: &CancellationToken,
    ) -> Result<bool, ApplyError> {
        conn.exec_drop(
            "UPDATE _revdoor.holds SET held_gtid = ?, held_at = NOW(6) WHERE workflow = ? \
             AND direction = ? AND `partition` = ? AND hold_gtid = ?",
            (
                text,
                self.workflow.as_str(),
                self.direction.as_str(),
                self.partition,
                text,
            ),
        )
        .await
        .map_err(|e| ApplyError::transient("report hold", e))?;
        tracing::info!(topic = %self.topic(), partition = self.partition, hold = %text,
            "holding at a vdiff's consistent point");
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(false),
                _ = tokio::time::sleep(HOLD_POLL) => {}
            }
            if self.read_hold(conn).await?.map(|(t, _)| t).as_deref() != Some(text) {
                break;
            }
        }
        tracing::info!(topic = %self.topic(), partition = self.partition, "hold released");
        Ok(true)
    }

    /// Apply whole source transactions (and checkpoint `heartbeat`), but
    /// never past a vdiff's hold (DESIGN §7): with a hold at position `X`,
    /// apply the leading transactions inside `X`; once the stream holds
    /// everything of `X` (a transaction outside `X` is next, or a heartbeat
    /// at or past `X` arrived) report `held_gtid = X` and wait until the
    /// hold is released, changed or expired. Returns false when `cancel`
    /// fired while holding (nothing after the hold point was applied).
    pub(crate) async fn flush(
        &self,
        conns: &mut Vec<Conn>,
        keys: &mut KeyCache,
        events: &[(i64, ChangeEvent)],
        heartbeat: Option<(i64, &Heartbeat)>,
        cancel: &CancellationToken,
    ) -> Result<bool, ApplyError> {
        let mut events = events;
        let mut heartbeat = heartbeat;
        loop {
            let Some((text, hold)) = self.read_hold(&mut conns[0]).await? else {
                self.apply_group(conns, keys, events, heartbeat).await?;
                return Ok(true);
            };
            // Events of one transaction share its GTID: the prefix ends on
            // a transaction boundary.
            let inside = events
                .iter()
                .take_while(|(_, ev)| hold.contains_gtid(&ev.txn.gtid))
                .count();
            let heartbeat_past =
                heartbeat.is_some_and(|(_, hb)| hb.position.position().includes(&hold));
            if inside == events.len() && !heartbeat_past {
                // Not there yet.
                self.apply_group(conns, keys, events, heartbeat).await?;
                return Ok(true);
            }
            let hb_now = if inside == events.len() {
                heartbeat
            } else {
                None
            };
            self.apply_group(conns, keys, &events[..inside], hb_now)
                .await?;
            events = &events[inside..];
            if hb_now.is_some() {
                heartbeat = None;
            }
            if !self.wait_at_hold(&mut conns[0], &text, cancel).await? {
                return Ok(false);
            }
            if events.is_empty() && heartbeat.is_none() {
                return Ok(true);
            }
        }
    }
}
