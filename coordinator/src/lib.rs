//! Coordinator: the workflow registry and state machine in etcd, leader
//! election, stream assignment and the fenced cutover (DESIGN §6).
//!
//! - [`lock::LeaseLock`]: lease-backed locks with fencing tokens (leader
//!   election, stream ownership).
//! - [`registry`]: the JSON records under the etcd prefix; leader writes are
//!   guarded by the leader key.
//! - [`create`]: `keyspace add`, `workflow create` (validation first).
//! - [`amend`]: `keyspace set-shard`, `workflow set --on-ddl` — a record
//!   and every stream spec holding the value changed in one transaction.
//! - [`leader`]: `coordinator run` — election, the workflow loop, stream
//!   assignment to workers.
//! - [`switch`]: switch-traffic / reverse-traffic / complete / cancel,
//!   journaled step by step.
//! - [`shard`]: fences, positions and tables on the servers.
//! - [`vdiff`]: `revdoor vdiff` — compare source and target at one
//!   consistent point.

pub mod amend;
mod assign;
mod config;
pub mod create;
pub mod leader;
pub mod lock;
pub mod registry;
pub mod shard;
pub mod switch;
pub mod vdiff;

/// What can stop a coordinator operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is refused for the reason given; nothing was changed.
    #[error("{0}")]
    Refused(String),
    #[error("etcd: {0}")]
    Etcd(String),
    #[error("{0}")]
    Sql(String),
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("{0}")]
    Timeout(String),
    /// Leadership is gone: another coordinator leads; this one wrote nothing.
    #[error("no longer the leader: another coordinator took over")]
    Deposed,
    /// A guarded write found the record changed under it.
    #[error("record changed concurrently")]
    Conflict,
}

impl revdoor_core::policy::Classify for Error {
    /// A refusal needs an operator; a lost leadership is a newer owner;
    /// everything else (etcd, a server, Kafka, a timeout, a concurrent
    /// change) may pass on a retry.
    fn kind(&self) -> revdoor_core::policy::ErrorKind {
        use revdoor_core::policy::ErrorKind;
        match self {
            Error::Refused(_) => ErrorKind::Definite,
            Error::Deposed => ErrorKind::Fenced,
            Error::Etcd(_)
            | Error::Sql(_)
            | Error::Kafka(_)
            | Error::Timeout(_)
            | Error::Conflict => ErrorKind::Transient,
        }
    }
}
