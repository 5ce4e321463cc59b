//! `revdoor-worker`: runs capture and apply streams.
//!
//! - [`stream`]: the one stream runner ([`StreamRun`]) behind
//!   `revdoor capture run`, `revdoor apply run` and every worker task:
//!   transient errors retried with the core policy, apply fenced by its
//!   owner's token, stopped when the owner's lease is lost.
//! - [`run`]: `revdoor worker run` — registration under a lease, the
//!   streams the coordinator assigns, restarts with backoff, status
//!   reports.
//! - [`config`]: a capture's configuration from flags or a stream spec.
//! - [`ownership`]: taking a stream's ownership key before running it.

pub mod config;
pub mod ownership;
mod retry;
mod status;
pub mod stream;
mod supervisor;

pub use stream::{RunError, Stream, StreamRun};
pub use supervisor::{run, Config, WorkerError};
