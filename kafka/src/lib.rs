//! revdoor's Kafka administration, in one place: topics of workflows
//! (create, list, delete) — used by capture (its stream's topics before the
//! first transaction) and by the coordinator (the reverse topic at a switch,
//! leftovers at `create`, deletion at `complete` / `cancel`).
//!
//! # Errors
//!
//! [`KafkaError`] is transient: the broker was unreachable or refused for
//! now; callers retry or roll back.

pub mod admin;

pub use admin::{delete_workflow_topics, ensure_topics, workflow_topics};

/// A Kafka administration request failed (what was being done, and why).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KafkaError(pub String);

impl KafkaError {
    fn new(what: &str, e: impl std::fmt::Display) -> Self {
        KafkaError(format!("{what}: {e}"))
    }
}
