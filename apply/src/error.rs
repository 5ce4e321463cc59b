//! What goes wrong on an apply stream, classified by what happens next
//! (definite: halt; transient: retry; fenced: a newer owner has it).

/// Errors of an apply stream, classified by what happens next.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A message or the destination is wrong: the stream halts here.
    #[error("{0}")]
    Definite(String),
    /// Connection, deadlock, broker: retry.
    #[error("{0}")]
    Transient(String),
    /// A newer owner has the stream.
    #[error("fenced by a newer owner: {0}")]
    Fenced(String),
}

impl ApplyError {
    pub(crate) fn transient(what: &str, e: impl std::fmt::Display) -> Self {
        ApplyError::Transient(format!("{what}: {e}"))
    }
    /// Whether retrying could help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApplyError::Transient(_))
    }
}

impl revdoor_core::policy::Classify for ApplyError {
    fn kind(&self) -> revdoor_core::policy::ErrorKind {
        use revdoor_core::policy::ErrorKind;
        match self {
            ApplyError::Definite(_) => ErrorKind::Definite,
            ApplyError::Transient(_) => ErrorKind::Transient,
            ApplyError::Fenced(_) => ErrorKind::Fenced,
        }
    }
}

pub(crate) fn classify_mysql(where_: &str, offset: i64, e: mysql_async::Error) -> ApplyError {
    match &e {
        // Deadlock, lock wait timeout: retry.
        mysql_async::Error::Server(se) if revdoor_mysql::codes::is_transient(se.code) => {
            ApplyError::Transient(format!("{where_}: {e}"))
        }
        // The destination refuses the change (missing column or table,
        // constraint violation…): halt here, nothing after it is applied.
        mysql_async::Error::Server(_) => ApplyError::Definite(format!(
            "{where_}: {e}; the stream halts here — fix the destination, or skip this message \
             with `revdoor stream skip --offset {offset}`"
        )),
        _ => ApplyError::Transient(format!("{where_}: {e}")),
    }
}
