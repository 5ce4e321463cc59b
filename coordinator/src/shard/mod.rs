//! What the coordinator does on a shard's server: fences, positions,
//! applied positions, table copies.
//!
//! # Fences (DESIGN §6 step 2, way (b))
//!
//! `workflow create` installs, on every moved table of both keyspaces,
//! `BEFORE INSERT/UPDATE/DELETE` triggers that read their side's one row in
//! `_revdoor.fences` (one per workflow and side on a server) in share mode,
//! SKIP LOCKED, and `SIGNAL SQLSTATE '45000'` with the row's message when
//! it is fenced — or when the row is being fenced or unfenced (skipped).
//! No account is exempt: only a session holding the side's current pass in
//! `@revdoor_fence_pass` (apply; rotated when the side is fenced) passes.
//! Fencing a shard is then one `UPDATE` of one row: it waits for every
//! in-flight writer of a moved table (each holds the shared lock until it
//! commits), so no write to a moved table can commit after the fence's own
//! GTID; writers that come later are refused, without ever waiting for the
//! row, so the fence cannot be part of a deadlock. The target is fenced
//! from `create` on; the source until a switch. docs/coordinator.md, "Who
//! can pass a fence".

mod fence;
mod positions;
mod tables;

pub use fence::{claim, install_fences, mark, remove_fences, set_fenced, set_read_only, FenceRow};
pub use positions::{applied, applied_position, delete_stream_state, has_stream_state, position};
pub use tables::{
    create_database, create_table, drop_database_if_empty, drop_table, has_rows, show_create,
};

use mysql_async::{Conn, Opts};

use crate::Error;

fn sql(what: &str, url: &str) -> impl FnOnce(mysql_async::Error) -> Error {
    let what = format!("{what} on {}", redact(url));
    move |e| Error::Sql(format!("{what}: {e}"))
}

// The table (or its database) does not exist: an idempotent step that
// finds nothing to do.
use revdoor_mysql::codes::is_missing_table as no_table;
use revdoor_mysql::conn;

pub(crate) use revdoor_mysql::conn::redact;

/// Connect to a shard's server.
pub async fn connect(url: &str) -> Result<Conn, Error> {
    let opts = conn::opts(url).map_err(|e| Error::Refused(e.to_string()))?;
    let opts: Opts = mysql_async::OptsBuilder::from_opts(opts)
        .conn_ttl(None)
        .into();
    Conn::new(opts).await.map_err(|e| {
        Error::Sql(format!(
            "cannot connect to {}: {e} — {}",
            redact(url),
            conn::connect_hint(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use revdoor_mysql::{quote_ident, quote_str};

    #[test]
    fn quoting() {
        assert_eq!(quote_str("it's"), "'it''s'");
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(redact("mysql://u:pw@h:1"), "mysql://u:***@h:1");
    }
}
