//! Taking a stream's ownership key (a lease lock) before running it. Its
//! revision is the fence token apply writes with (see
//! [`StreamRun::owner`](crate::stream::StreamRun::owner)).
//!
//! Two keys exist: the one a worker takes for each assigned stream
//! (`workflows/<wf>/owners/<stream>`, taken as soon as a watch sees it
//! deleted), and the one
//! `revdoor apply run --own` waits for
//! (`workflows/<wf>/streams/<direction>/<partition>/apply-owner`, built by
//! `revdoor_core::names::EtcdPrefix::apply_owner`).

use std::time::Duration;

use etcd_client::Client;
use revdoor_coordinator::lock::{LeaseLock, LockError};
use tokio_util::sync::CancellationToken;

/// How long `apply run --own` waits for the current owner to let go.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// How often a worker tries a taken ownership key again when no change
/// of it was seen (its watch wakes it at once when the key goes).
const POLL: Duration = Duration::from_secs(1);

/// Ownership that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("connect to etcd at {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("take ownership of {name}")]
    Take {
        name: String,
        #[source]
        source: LockError,
    },
}

/// `revdoor apply run --own`: wait (up to 10 minutes) for `key` on the
/// etcd at `endpoint` and take it under a lease of `ttl`.
pub async fn wait(
    endpoint: &str,
    key: &str,
    ttl: Duration,
    name: &str,
) -> Result<LeaseLock, OwnershipError> {
    let client =
        Client::connect([endpoint], None)
            .await
            .map_err(|source| OwnershipError::Connect {
                endpoint: endpoint.to_string(),
                source,
            })?;
    let holder = format!("apply pid {}", std::process::id());
    tracing::info!(stream = name, key = %key, "waiting for stream ownership");
    let lock = LeaseLock::acquire(&client, key, &holder, ttl, WAIT_LIMIT)
        .await
        .map_err(|source| OwnershipError::Take {
            name: name.to_string(),
            source,
        })?;
    tracing::info!(stream = name, fence_token = %lock.token(), "stream owned");
    Ok(lock)
}

/// A worker's stream: take `key` for `holder` as soon as it is free;
/// `None` when `cancel` fires first. Errors are logged and tried again.
pub(crate) async fn poll(
    client: &Client,
    key: &str,
    holder: &str,
    ttl: Duration,
    name: &str,
    cancel: &CancellationToken,
) -> Option<LeaseLock> {
    // Watched before the first try: a release between the try and the
    // wait is seen.
    let mut gone = client
        .clone()
        .watch(key, None)
        .await
        .map_err(|e| tracing::warn!(stream = %name, error = %e, "watch the stream's ownership key"))
        .ok();
    let lock = loop {
        match LeaseLock::try_acquire(client, key, holder, ttl).await {
            Ok(Some(l)) => break l,
            Ok(None) => {}
            Err(e) => tracing::warn!(stream = %name, error = %e, "take stream ownership"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(POLL) => {}
            ended = deleted(&mut gone) => if ended {
                gone = None;
            },
        }
    };
    tracing::info!(stream = %name, token = %lock.token(), "stream owned");
    Some(lock)
}

/// Waits for a delete on `watch`: `false` when one came, `true` when the
/// watch ended (then the caller drops it and polls); never ready without
/// one.
async fn deleted(watch: &mut Option<etcd_client::WatchStream>) -> bool {
    let Some(w) = watch else {
        return std::future::pending().await;
    };
    loop {
        match w.message().await {
            Ok(Some(resp)) if !resp.canceled() => {
                if resp
                    .events()
                    .iter()
                    .any(|e| e.event_type() == etcd_client::EventType::Delete)
                {
                    return false;
                }
            }
            _ => return true,
        }
    }
}
