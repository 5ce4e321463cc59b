//! Lease-backed locks in etcd.
//!
//! A [`LeaseLock`] is a key created under an etcd lease with a transaction
//! that succeeds only if the key does not exist (`create_revision == 0`).
//! Holding it means the lease is alive: a background task renews the lease
//! about every TTL/3, and [`LeaseLock::lost`] fires when renewal fails or
//! the lease expires. The key's create revision is the holder's
//! [`FenceToken`]: any later holder gets a larger one.
//!
//! # Fencing
//!
//! Losing the lease does not stop a paused process by itself. Everything the
//! holder writes elsewhere must carry its token (apply's checkpoint update,
//! the coordinator's guarded transactions), so a stale holder's writes are
//! refused after a successor exists.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
};
use revdoor_core::fence::FenceToken;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Errors talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("etcd: {what}: {source}")]
    Etcd {
        what: &'static str,
        #[source]
        source: etcd_client::Error,
    },
    #[error("lock {key} is held by '{holder}'; gave up after {waited:?}")]
    Timeout {
        key: String,
        holder: String,
        waited: Duration,
    },
    #[error("etcd returned no revision for {0}")]
    NoRevision(String),
}

fn etcd(what: &'static str) -> impl FnOnce(etcd_client::Error) -> LockError {
    move |source| LockError::Etcd { what, source }
}

/// A held lock. Dropping it stops renewal (the lease then expires);
/// [`LeaseLock::release`] deletes it at once.
pub struct LeaseLock {
    client: Client,
    key: String,
    lease_id: i64,
    token: FenceToken,
    lost: CancellationToken,
    keepalive: JoinHandle<()>,
}

impl LeaseLock {
    /// Take `key` if free. `holder` is stored as the value (who holds it).
    pub async fn try_acquire(
        client: &Client,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<LeaseLock>, LockError> {
        let mut c = client.clone();
        let ttl_secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let lease = c
            .lease_grant(ttl_secs, None)
            .await
            .map_err(etcd("grant lease"))?;
        let lease_id = lease.id();
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                holder,
                Some(PutOptions::new().with_lease(lease_id)),
            )]);
        let resp = match c.txn(txn).await {
            Ok(r) => r,
            Err(e) => {
                let _ = c.lease_revoke(lease_id).await;
                return Err(LockError::Etcd {
                    what: "take lock",
                    source: e,
                });
            }
        };
        if !resp.succeeded() {
            let _ = c.lease_revoke(lease_id).await;
            return Ok(None);
        }
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        let token = FenceToken::from_revision(revision)
            .ok_or_else(|| LockError::NoRevision(key.to_string()))?;
        let lost = CancellationToken::new();
        let keepalive = tokio::spawn(
            keep_alive(c.clone(), lease_id, ttl, lost.clone(), key.to_string())
                .instrument(tracing::info_span!("lease_keepalive", key = %key)),
        );
        Ok(Some(LeaseLock {
            client: c,
            key: key.to_string(),
            lease_id,
            token,
            lost,
            keepalive,
        }))
    }

    /// Take `key`, waiting up to `timeout` for the current holder to let go.
    pub async fn acquire(
        client: &Client,
        key: &str,
        holder: &str,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<LeaseLock, LockError> {
        let start = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(20);
        loop {
            if let Some(lock) = Self::try_acquire(client, key, holder, ttl).await? {
                return Ok(lock);
            }
            if start.elapsed() >= timeout {
                let holder = current_holder(client, key).await.unwrap_or_default();
                return Err(LockError::Timeout {
                    key: key.to_string(),
                    holder,
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// The holder's fencing token.
    pub fn token(&self) -> FenceToken {
        self.token
    }

    /// The lease the key lives under (other keys may share it).
    pub fn lease_id(&self) -> i64 {
        self.lease_id
    }

    /// The lock's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Fires when the lease could not be renewed or expired.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Give the lock up now (delete the key by revoking its lease).
    pub async fn release(mut self) -> Result<(), LockError> {
        self.keepalive.abort();
        self.client
            .lease_revoke(self.lease_id)
            .await
            .map_err(etcd("revoke lease"))?;
        Ok(())
    }
}

impl Drop for LeaseLock {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

/// The value stored at `key` (who holds the lock), if any.
pub async fn current_holder(client: &Client, key: &str) -> Result<String, LockError> {
    let mut c = client.clone();
    let resp = c.get(key, None).await.map_err(etcd("read lock"))?;
    Ok(resp
        .kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        .unwrap_or_default())
}

/// Why a lease's keep-alive stopped (logged; the lock is then lost).
#[derive(Debug, thiserror::Error)]
enum KeepAliveError {
    #[error("lease expired")]
    Expired,
    #[error("no renewal from etcd within the lease's TTL (last error: {0})")]
    Unconfirmed(String),
}

/// One renewal: `Ok(false)` when etcd says the lease is gone.
async fn renew(
    client: &mut Client,
    lease_id: i64,
    open: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
) -> Result<bool, etcd_client::Error> {
    if open.is_none() {
        *open = Some(client.lease_keep_alive(lease_id).await?);
    }
    let Some((keeper, stream)) = open.as_mut() else {
        return Ok(false);
    };
    keeper.keep_alive().await?;
    Ok(matches!(stream.message().await?, Some(resp) if resp.ttl() > 0))
}

/// Renew the lease every TTL/3 until etcd says it expired, or until no
/// renewal was confirmed for TTL − TTL/3 (the lease may have expired on the
/// server by then, and a successor may hold the lock). An etcd error in
/// between — a restart, a leader change, a dropped stream — is retried on a
/// new keep-alive stream, so a blip shorter than that rides through.
async fn keep_alive(
    mut client: Client,
    lease_id: i64,
    ttl: Duration,
    lost: CancellationToken,
    key: String,
) {
    let period = (ttl / 3).max(Duration::from_millis(200));
    let mut confirmed = tokio::time::Instant::now();
    let mut open = None;
    let mut last_error = String::new();
    let why = loop {
        let deadline = confirmed + ttl.saturating_sub(period);
        match tokio::time::timeout_at(deadline, renew(&mut client, lease_id, &mut open)).await {
            Ok(Ok(true)) => {
                if !last_error.is_empty() {
                    tracing::info!(key = %key, lease = lease_id, "lease renewed again after an etcd error");
                    last_error.clear();
                }
                confirmed = tokio::time::Instant::now();
                tokio::time::sleep(period).await;
            }
            Ok(Ok(false)) => break KeepAliveError::Expired,
            Ok(Err(e)) => {
                if last_error.is_empty() {
                    tracing::warn!(key = %key, lease = lease_id, error = %e,
                        "lease renewal failed; retrying until the lease's TTL runs out");
                }
                last_error = e.to_string();
                open = None;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep((period / 4).min(left)).await;
            }
            Err(_) => break KeepAliveError::Unconfirmed(last_error),
        }
    };
    tracing::warn!(key = %key, lease = lease_id, error = %why, "lock lost");
    // `return`: the holder is not told (a process that has not noticed yet,
    // e.g. paused between the loss and its next check); only the fencing
    // tokens stop it then (the deposed_coordinator test).
    fail::fail_point!("lock::blind", |_| {
        tracing::warn!(key = %key, "failpoint lock::blind: the holder is not told");
    });
    lost.cancel();
}
