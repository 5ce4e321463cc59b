//! Capture: reads one shard's binlog and publishes whole source transactions
//! to a direction topic, exactly once (DESIGN §4).
//!
//! This is the walking skeleton: one origin shard, one partition, MariaDB
//! GTIDs, JSON events. [`run`] wires the [`binlog::BinlogReader`] to the
//! [`publish::Publisher`].
//!
//! # Resumption
//!
//! On start, capture reads its checkpoint from `revdoor.<workflow>.offsets`
//! (written in the same Kafka transaction as the events) and resumes the
//! binlog there. Without a checkpoint it starts at `start_position`, or at
//! the source's current position.

pub mod binlog;
mod checkpoint;
pub mod copy;
pub mod ddl;
mod error;
pub mod failpoints;
mod json;
pub mod publish;
pub mod route;
pub mod rows;
mod stream;
pub mod tablemap;
mod values;

pub use binlog::replica_server_id;
pub use checkpoint::Checkpoint;
pub use error::CaptureError;
pub use stream::{Capture, CaptureConfig};

use tokio_util::sync::CancellationToken;

/// Run one capture stream until `cancel` fires or a non-retryable error.
pub async fn run(cfg: CaptureConfig, cancel: CancellationToken) -> Result<(), CaptureError> {
    Capture::open(cfg).await?.stream(cancel).await
}
