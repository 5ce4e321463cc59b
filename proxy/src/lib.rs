//! `revdoor proxy`: unmodified MySQL clients follow the revolving door.
//!
//! A MySQL wire-protocol server (`opensrv-mysql`) that authenticates
//! clients against `--accounts-file` (`accounts`), routes each text
//! statement by the tables it names (`statement`) to the side that serves
//! them — routing rules followed from etcd with a watch (`routing`) — and
//! carries a session's state and transactions onto its backend
//! connections, holding a statement that meets a switch's fence as the
//! first of its transaction until routing flips, then retrying it on the
//! new side (`session`).

pub mod accounts;
pub mod pool;
pub mod results;
pub mod routing;
pub mod session;
pub mod shard;
pub mod statement;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use opensrv_mysql::AsyncMysqlIntermediary;
use revdoor_coordinator::registry::Registry;
use revdoor_core::names::KeyspaceName;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use accounts::Accounts;

/// What `revdoor proxy run` was given.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub keyspace: KeyspaceName,
    pub accounts: Accounts,
    /// How long a statement that met a fence is held for routing to flip.
    pub buffer_window: Duration,
}

/// Serve clients on `cfg.listen` until `stop` is cancelled.
pub async fn run(reg: Registry, cfg: Config, stop: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("--listen {}: cannot listen there", cfg.listen))?;
    let routing = routing::follow(reg, cfg.keyspace.clone())
        .await
        .context("the proxy needs etcd at start to learn the routing")?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(listen = %addr, keyspace = %cfg.keyspace, "proxy listening");
    let shared = Arc::new(session::Shared {
        accounts: cfg.accounts.clone(),
        buffer_window: cfg.buffer_window,
        routing,
        key_types: Default::default(),
        pool: Default::default(),
    });
    let ids = AtomicU32::new(1);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let shim = session::Session::new(Arc::clone(&shared), id);
        tokio::spawn(async move {
            let (r, w) = stream.into_split();
            if let Err(e) = Box::pin(AsyncMysqlIntermediary::run_on(shim, r, w)).await {
                tracing::debug!(%peer, "client connection ended: {e}");
            }
        });
    }
}
