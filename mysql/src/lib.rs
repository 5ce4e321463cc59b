//! revdoor's MySQL/MariaDB layer: what every part that talks to a server
//! shares, in the spirit of Materialize's `mysql-util`.
//!
//! - [`ident`]: quoting identifiers and string literals;
//! - [`param`]: change-event values as statement parameters;
//! - [`codes`]: the server error codes revdoor reacts to, by name;
//! - [`schema`]: revdoor's own `_revdoor` schema on every server — one place
//!   for its table names and DDL, used by capture (watermarks, the loop
//!   filter's checkpoint rows), apply (checkpoints, skips, parallel apply,
//!   DDL records, holds) and the coordinator (fences, vdiff holds).
//!
//! # Errors
//!
//! [`MysqlError`] says what was being done and keeps the server's error as
//! its source; [`MysqlError::is_transient`] tells whether a retry can help.

pub mod codes;
pub mod ident;
pub mod param;
pub mod schema;

pub use ident::{quote_ident, quote_str};
pub use param::to_param;

/// A statement of revdoor's own failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct MysqlError {
    /// What was being done (`"create _revdoor schema"`).
    pub what: &'static str,
    #[source]
    pub source: mysql_async::Error,
}

impl MysqlError {
    pub fn new(what: &'static str, source: mysql_async::Error) -> Self {
        MysqlError { what, source }
    }

    /// Whether retrying could help: anything but a server's refusal, and
    /// of refusals only the ones [`codes::is_transient`] names.
    pub fn is_transient(&self) -> bool {
        match &self.source {
            mysql_async::Error::Server(se) => codes::is_transient(se.code),
            _ => true,
        }
    }
}
