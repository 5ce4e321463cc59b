//! The one stream runner: `revdoor capture run`, `revdoor apply run` and
//! every stream task of a worker run their stream through [`StreamRun`].
//!
//! # Errors
//!
//! Transient errors are retried inside with capped backoff
//! (`revdoor_core::policy`); a definite or fenced one ends the run. A
//! capture is opened (fencing its earlier owners) once, and only its
//! streaming is retried.
//!
//! # Fencing
//!
//! With an [`owner`](StreamRun::owner), an apply stream writes with the
//! owner's token, and losing the owner's lease stops the run with
//! [`RunError::LeaseLost`]: a newer owner may run the stream now.

use revdoor_apply::{ApplyError, ApplyStream};
use revdoor_capture::{CaptureConfig, CaptureError};
use revdoor_coordinator::lock::LeaseLock;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use revdoor_core::metrics::Errors;

use crate::retry::{open_capture, with_retries};

/// One stream to run.
pub struct StreamRun {
    /// How logs and errors name the stream.
    pub name: String,
    pub stream: Stream,
    /// The stream's ownership lock, when it has one: its token replaces an
    /// apply stream's `fence_token`, and losing its lease stops the run.
    pub owner: Option<LeaseLock>,
    /// Stops the run (shutdown, or the stream was unassigned).
    pub cancel: CancellationToken,
}

/// What a [`StreamRun`] runs.
pub enum Stream {
    Capture(Box<CaptureConfig>),
    Apply(ApplyStream),
}

/// How a run ended other than by being cancelled.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The capture could not be opened.
    #[error("open capture stream {id}")]
    Open {
        /// The stream's transactional id.
        id: String,
        #[source]
        source: CaptureError,
    },
    #[error(transparent)]
    Capture(CaptureError),
    #[error(transparent)]
    Apply(ApplyError),
    /// The owner's lease expired or could not be renewed.
    #[error("{name}: lost the ownership lease; a newer owner may run it now")]
    LeaseLost { name: String },
}

impl StreamRun {
    /// Run until the stream ends, `cancel` fires or the owner's lease is
    /// lost.
    pub async fn run(self) -> Result<(), RunError> {
        let StreamRun {
            name,
            stream,
            owner,
            cancel,
        } = self;
        let run_cancel = cancel.child_token();
        if let Some(lock) = &owner {
            let (lost, stop, stream) = (lock.lost(), run_cancel.clone(), name.clone());
            let watch = async move {
                tokio::select! {
                    _ = lost.cancelled() => {
                        tracing::warn!(stream = %stream, "ownership lease lost: stopping");
                        stop.cancel();
                    }
                    _ = stop.cancelled() => {}
                }
            };
            tokio::spawn(watch.in_current_span());
        }
        // Boxed: the streams' futures are large.
        let result = match stream {
            Stream::Capture(cfg) => Box::pin(capture(&name, *cfg, &run_cancel)).await,
            Stream::Apply(mut apply) => {
                if let Some(lock) = &owner {
                    apply.fence_token = lock.token();
                }
                let progress = std::sync::Arc::clone(&apply.progress);
                let errors = Errors::new(apply.workflow.as_str(), apply.direction.as_str());
                Box::pin(with_retries(&name, &run_cancel, &progress, &errors, || {
                    apply.run(run_cancel.clone())
                }))
                .await
                .map_err(RunError::Apply)
            }
        };
        // Ends the lease watch.
        run_cancel.cancel();
        if let Some(lock) = owner {
            if lock.lost().is_cancelled() {
                return Err(RunError::LeaseLost { name });
            }
            // Boxed: etcd's future is large.
            let _ = Box::pin(lock.release()).await;
        }
        result
    }
}

/// Open the capture once (fencing its earlier owners), then stream,
/// retrying.
async fn capture(
    name: &str,
    cfg: CaptureConfig,
    cancel: &CancellationToken,
) -> Result<(), RunError> {
    let id = cfg.id.transactional_id();
    let progress = std::sync::Arc::clone(&cfg.progress);
    let errors = Errors::new(cfg.id.workflow.as_str(), cfg.id.direction.as_str());
    loop {
        let capture = match open_capture(cfg.clone(), cancel, &errors).await {
            Ok(Some(capture)) => capture,
            Ok(None) => return Ok(()),
            Err(source) => return Err(RunError::Open { id, source }),
        };
        // A wedged producer fails every retry the same way: leave the
        // retries, drop it and open a new one (its init fences the old).
        let wedged = std::sync::Mutex::new(None);
        let (capture_ref, wedged_ref) = (&capture, &wedged);
        let r = with_retries(name, cancel, &progress, &errors, move || async move {
            match capture_ref.stream(cancel.clone()).await {
                Err(CaptureError::ProducerWedged(why)) => {
                    if let Ok(mut w) = wedged_ref.lock() {
                        *w = Some(why);
                    }
                    Ok(())
                }
                other => other,
            }
        })
        .await;
        match wedged.into_inner().ok().flatten() {
            Some(why) if !cancel.is_cancelled() => {
                tracing::warn!(stream = name, error = %why,
                    "Kafka producer wedged: opening a new one (it fences the old)");
                progress.retrying(why);
                errors.count(revdoor_core::policy::ErrorKind::Transient);
                drop(capture);
            }
            _ => return r.map_err(RunError::Capture),
        }
    }
}
