//! Apply: consumes one stream's partition and applies each source
//! transaction to the destination database exactly once (DESIGN §5).
//!
//! A stream is a pipeline of modules, each one idea:
//! - `fetch`: a thread reads the partition (`read_committed`) in chunks;
//! - `group`: messages decoded (`schemas`) into whole source transactions,
//!   several handed on as one group, a big one in parts; heartbeats and DDL
//!   records;
//! - `applier`: a group applied in one DB transaction with the checkpoint,
//!   runs of row changes as multi-row statements (`sql`, `keys`);
//! - `streamed`: a big source transaction, handed over in parts, streamed
//!   into one open DB transaction and committed with the checkpoint after
//!   its last part (memory bounded by a part);
//! - `parallel`: a group split by write sets into buckets committed on K
//!   connections (`_revdoor.applied_txns`);
//! - `checkpoint`: the `_revdoor.stream_state` row — taken over with the
//!   fence token, moved with the rows — and operator skips;
//! - `hold`: stopping exactly at a vdiff's consistent point;
//! - `ddl`: DDL records run exactly once (`on_ddl=exec`);
//! - `error`: definite / transient / fenced.
//!
//! # Resumption
//!
//! The checkpoint row `_revdoor.stream_state(workflow, direction, partition)`
//! holds the Kafka offset of the last applied event. It is updated in the
//! same DB transaction as the rows, so on start the stream seeks to
//! `kafka_offset + 1` and neither loses nor repeats an effect. Kafka
//! consumer-group offsets are never used.
//!
//! # Fencing
//!
//! The checkpoint update carries the stream owner's fence token and matches
//! only while the stored token is not newer: `… WHERE fence_token <= :mine`.
//! Zero rows matched means a newer owner exists: roll back and stop.

pub mod failpoints;
pub mod schemas;

mod applier;
mod checkpoint;
mod ddl;
mod error;
mod fetch;
mod group;
mod hold;
mod keys;
mod parallel;
mod sql;
mod streamed;
#[cfg(test)]
mod tests;

pub use revdoor_core::metrics::ApplyMetrics;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Opts;
use revdoor_core::fence::FenceToken;
use revdoor_core::names::{self, Direction, WorkflowName};
use revdoor_core::progress::Progress;
use revdoor_core::workflow::now_ms;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use checkpoint::register_skip;
pub use error::ApplyError;
use fetch::Fetcher;
use group::Batch;
/// revdoor's tables on every destination (kept under its old name).
pub use revdoor_mysql::schema::DESTINATION_DDL as STREAM_STATE_DDL;

/// One apply stream.
#[derive(Debug, Clone)]
pub struct ApplyStream {
    pub brokers: String,
    pub workflow: WorkflowName,
    pub direction: Direction,
    pub partition: i32,
    pub target: Opts,
    /// The owner's fencing token (etcd revision of its ownership key).
    pub fence_token: FenceToken,
    /// Live progress, for status reports.
    pub progress: Arc<Progress>,
    /// Connections applying at once (write-set-parallel apply, K); 1 =
    /// one connection, each group committed with its checkpoint.
    pub parallelism: usize,
    /// Its metric handles ([`ApplyMetrics::new`] of the same workflow,
    /// direction and partition).
    pub metrics: ApplyMetrics,
}

impl ApplyStream {
    /// The error of a stream whose checkpoint row a newer owner took.
    fn fenced(&self) -> ApplyError {
        ApplyError::Fenced(format!(
            "{}: checkpoint row has a newer fence token than {}",
            self.name(),
            self.fence_token
        ))
    }

    fn topic(&self) -> String {
        names::topic(&self.workflow, self.direction)
    }

    /// The stream's name: `revdoor.<workflow>.<direction>/<partition>`.
    pub fn name(&self) -> String {
        names::topic_partition(&self.workflow, self.direction, self.partition)
    }

    /// Apply until `cancel` fires or an error stops the stream.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), ApplyError> {
        let mut conn = self.open().await?;
        let (last, done) = self.prepare(&mut conn).await?;
        let skips = self.skips(&mut conn, last).await?;
        let topic = self.topic();
        let fetcher = Fetcher::open(
            &self.brokers,
            &self.workflow,
            self.direction,
            &topic,
            self.partition,
            last + 1,
        )?;
        let connection_id: Option<u64> = conn
            .query_first("SELECT CONNECTION_ID()")
            .await
            .ok()
            .flatten();
        tracing::info!(topic = %topic, partition = self.partition, from = last + 1,
            fence_token = self.fence_token.get(), connection_id = connection_id.unwrap_or(0), "apply starting");

        // Decoding (here) and applying (a task of its own, with the
        // connections) overlap: while the destination works on one group,
        // the next is read and decoded. Groups stay in order.
        let mut fetcher = fetcher;
        let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(2);
        // Whether the applier waits for a group (see `produce`).
        let idle = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let applier = tokio::spawn(Box::pin(
            {
                let me = self.clone();
                let cancel = cancel.clone();
                let idle = std::sync::Arc::clone(&idle);
                async move { me.applier(conn, rx, &idle, cancel).await }
            }
            .instrument(tracing::info_span!("applier")),
        ));
        let produced = self
            .produce(&mut fetcher, &tx, &idle, &skips, &done, &cancel)
            .await;
        drop(tx);
        // What the applier hit first (it applied everything before it);
        // else what stopped the reader.
        let applied = applier
            .await
            .unwrap_or_else(|e| Err(ApplyError::Transient(format!("applier task: {e}"))));
        applied.and(produced)
    }
}
