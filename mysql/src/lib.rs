//! revdoor's MySQL/MariaDB layer: what every part that talks to a server
//! shares, in the spirit of Materialize's `mysql-util`.
//!
//! - [`ident`]: quoting identifiers and string literals;
//! - [`param`]: change-event values as statement parameters;
//! - [`json`]: MySQL's JSON numbers — doubles as MySQL writes them, and
//!   which numbers of a document were DECIMALs;
//! - [`codes`]: the server error codes revdoor reacts to, by name;
//! - [`conn`]: shard URLs as connection options, shown without password,
//!   their password inline or referenced ([`conn::Dsn`]);
//! - [`secret`]: [`secret::Secret`] (never shown) and [`secret::PasswordRef`]
//!   (`password_env` / `password_file`, resolved where revdoor connects);
//! - [`engine`]: MariaDB or MySQL;
//! - [`preflight`]: server settings and the account's privileges;
//! - [`positions`]: the server's GTID position and what apply checkpointed;
//! - [`tables`]: table definitions from `information_schema`, refused
//!   when revdoor cannot carry them;
//! - [`schema`]: revdoor's own `_revdoor` schema on every server — one place
//!   for its table names and DDL, used by capture (watermarks, the loop
//!   filter's checkpoint rows), apply (checkpoints, skips, parallel apply,
//!   DDL records, holds) and the coordinator (fences, vdiff holds).
//!
//! # Errors
//!
//! [`MysqlError::Query`] says what was being done and keeps the server's
//! error as its source; [`MysqlError::Refused`] is definite: the settings,
//! privileges or definitions must change.

pub mod codes;
pub mod conn;
pub mod engine;
pub mod ident;
pub mod json;
pub mod param;
pub mod positions;
pub mod preflight;
pub mod schema;
pub mod secret;
pub mod tables;
pub mod translate;

pub use ident::{quote_ident, quote_str};
pub use param::to_param;

/// What went wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    /// A statement failed (connection, server): the caller decides whether
    /// to retry (capture and the coordinator retry; [`codes`] names the
    /// refusals a retry can get past).
    #[error("{what}: {source}")]
    Query {
        /// What was being done (`"read binlog settings"`).
        what: String,
        #[source]
        source: mysql_async::Error,
    },
    /// A shard URL that does not parse (shown without its password).
    #[error("bad MySQL URL '{url}': {source}")]
    Url {
        url: String,
        #[source]
        source: mysql_async::UrlError,
    },
    /// The server's settings, the account's privileges or a table's
    /// definition are wrong for revdoor: the message says which and what to
    /// do.
    #[error("{0}")]
    Refused(String),
    /// A GTID position the server (or revdoor's own table) returned that
    /// does not parse.
    #[error("{what} returned GTID position {text:?}, which revdoor cannot read: {source}")]
    Position {
        what: String,
        text: String,
        #[source]
        source: revdoor_core::gtid::GtidError,
    },
}

impl MysqlError {
    pub fn query(what: impl Into<String>, source: mysql_async::Error) -> Self {
        MysqlError::Query {
            what: what.into(),
            source,
        }
    }
}
