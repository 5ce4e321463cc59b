//! How a coordinator runs: the configuration the leader and the requests
//! it runs share.

use std::time::Duration;

/// How a coordinator runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Unique name (journal entries record who acted).
    pub id: String,
    /// Leader lease TTL: a standby takes over this long after the leader
    /// stopped renewing.
    pub lease_ttl: Duration,
    /// Kafka bootstrap servers (topics of reverse streams).
    pub brokers: String,
}
