//! Errors of capture, classified by what happens next.

/// Errors of a capture stream, classified by what happens next.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The data or configuration is wrong: stop the stream, tell the operator.
    #[error("{0}")]
    Definite(String),
    /// I/O, connection, broker: retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// A newer owner of the stream exists: stop, never retry.
    #[error("fenced: {0}")]
    Fenced(String),
    /// The Kafka producer is stuck in a transaction call it cannot finish
    /// (after a long broker outage: "Conflicting commit_transaction API
    /// call is already in progress"): retrying on it fails forever; the
    /// stream must drop it and open a new one, which fences it.
    #[error("{0}")]
    ProducerWedged(String),
}

impl CaptureError {
    pub(crate) fn transient(what: &str, e: impl std::fmt::Display) -> Self {
        CaptureError::Transient(format!("{what}: {e}"))
    }

    /// Whether retrying could help.
    pub fn is_transient(&self) -> bool {
        matches!(self, CaptureError::Transient(_))
    }
}

impl From<revdoor_mysql::MysqlError> for CaptureError {
    /// A failed statement is retried; a refusal or a bad URL stops the
    /// stream.
    fn from(e: revdoor_mysql::MysqlError) -> Self {
        match e {
            revdoor_mysql::MysqlError::Query { .. } => CaptureError::Transient(e.to_string()),
            revdoor_mysql::MysqlError::Refused(m) => CaptureError::Definite(m),
            revdoor_mysql::MysqlError::Url { .. } | revdoor_mysql::MysqlError::Position { .. } => {
                CaptureError::Definite(e.to_string())
            }
        }
    }
}

impl From<revdoor_kafka::KafkaError> for CaptureError {
    /// Topic administration failed: retried.
    fn from(e: revdoor_kafka::KafkaError) -> Self {
        CaptureError::Transient(e.0)
    }
}

impl revdoor_core::policy::Classify for CaptureError {
    fn kind(&self) -> revdoor_core::policy::ErrorKind {
        use revdoor_core::policy::ErrorKind;
        match self {
            CaptureError::Definite(_) => ErrorKind::Definite,
            CaptureError::Transient(_) | CaptureError::ProducerWedged(_) => ErrorKind::Transient,
            CaptureError::Fenced(_) => ErrorKind::Fenced,
        }
    }
}
