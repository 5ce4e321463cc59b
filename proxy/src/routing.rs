//! Where each table of the proxy's keyspace is served, from etcd: the
//! routing rules under `routing/<KS>/` and the keyspaces' shards, reloaded
//! whenever a watch on either prefix reports a change (no polling). When
//! etcd is unreachable the last routing known stays in force: the fences
//! make a stale route safe (it errors, it never writes to the wrong side).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use etcd_client::WatchOptions;
use revdoor_coordinator::registry::Registry;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::names::KeyspaceName;
use revdoor_core::workflow::{KeyspaceSpec, RoutingRule};
use tokio::sync::watch;

/// The backend a statement goes to: one shard of a keyspace.
#[derive(Clone, PartialEq, Eq)]
pub struct Backend {
    pub keyspace: KeyspaceName,
    /// The shard's key range (`-` when unsharded).
    pub shard: KeyRange,
    /// The shard's URL as registered (revdoor's account; the proxy
    /// connects with the client's).
    pub url: String,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} ({})",
            self.keyspace,
            self.shard,
            revdoor_mysql::conn::redact(&self.url)
        )
    }
}

/// A keyspace serving tables: its shards in key-range order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub keyspace: KeyspaceName,
    pub shards: Vec<Backend>,
}

impl Side {
    /// The one shard of an unsharded keyspace.
    pub fn unsharded(&self) -> Option<&Backend> {
        match self.shards.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The shard holding `keyspace_id`.
    pub fn shard_for(&self, keyspace_id: u64) -> Option<&Backend> {
        self.shards.iter().find(|b| b.shard.contains(keyspace_id))
    }
}

/// One moved table's route.
#[derive(Debug, Clone)]
pub struct Moved {
    pub workflow: String,
    /// Where it is served, or why the proxy cannot serve it.
    pub serving: Result<Side, String>,
    /// The table's sharding key columns (empty: its primary key).
    pub sharding_key: Vec<String>,
}

/// A routing snapshot.
#[derive(Debug, Clone)]
pub struct Routing {
    /// Bumped at every reload.
    pub version: u64,
    /// The proxy's keyspace, unsharded: everything not moved goes here.
    pub home: Result<Backend, String>,
    /// Moved tables by `db.table`.
    pub moved: HashMap<String, Moved>,
}

fn side(ks: &KeyspaceName, specs: &HashMap<String, KeyspaceSpec>) -> Result<Side, String> {
    let Some(spec) = specs.get(ks.as_str()) else {
        return Err(format!(
            "keyspace {ks} is not registered (revdoor keyspace add {ks} --shard -=URL)"
        ));
    };
    let mut shards: Vec<Backend> = spec
        .shards
        .iter()
        .map(|s| Backend {
            keyspace: ks.clone(),
            shard: s.range,
            url: s.url.clone(),
        })
        .collect();
    shards.sort_by_key(|b| b.shard.start());
    Ok(Side {
        keyspace: ks.clone(),
        shards,
    })
}

fn home(ks: &KeyspaceName, specs: &HashMap<String, KeyspaceSpec>) -> Result<Backend, String> {
    let s = side(ks, specs)?;
    s.unsharded().cloned().ok_or_else(|| {
        format!(
            "keyspace {ks} has {} shards; the proxy's own keyspace (--keyspace) must be unsharded (tables moved to sharded keyspaces are routed by key)",
            s.shards.len()
        )
    })
}

/// Read the routing of `keyspace` once.
pub async fn load(
    reg: &Registry,
    keyspace: &KeyspaceName,
    version: u64,
) -> anyhow::Result<Routing> {
    let specs: HashMap<String, KeyspaceSpec> = reg
        .list::<KeyspaceSpec>(&reg.prefix.keyspaces())
        .await
        .context("read the keyspaces from etcd")?
        .into_iter()
        .map(|(_, s)| (s.name.as_str().to_string(), s))
        .collect();
    let rules = reg
        .list::<RoutingRule>(&reg.prefix.routing_rules(keyspace))
        .await
        .context("read the routing rules from etcd")?;
    let moved = rules
        .into_iter()
        .map(|(_, r)| {
            let m = Moved {
                workflow: r.workflow.as_str().to_string(),
                serving: side(&r.serving, &specs),
                sharding_key: r.sharding_key,
            };
            (r.table, m)
        })
        .collect();
    Ok(Routing {
        version,
        home: home(keyspace, &specs),
        moved,
    })
}

/// Load the routing of `keyspace` (an error when etcd cannot be read now)
/// and keep it current in the background: every change under the routing
/// rules or the keyspaces reloads it.
pub async fn follow(
    reg: Registry,
    keyspace: KeyspaceName,
) -> anyhow::Result<watch::Receiver<Arc<Routing>>> {
    let first = load(&reg, &keyspace, 1).await?;
    tracing::info!(keyspace = %keyspace, moved = first.moved.len(), "routing loaded");
    let (tx, rx) = watch::channel(Arc::new(first));
    tokio::spawn(async move {
        let mut version = 1;
        loop {
            match watch_once(&reg, &keyspace, &tx, &mut version).await {
                Ok(()) => return, // every session and the listener are gone
                Err(e) => tracing::warn!(
                    "etcd watch lost, serving with the last routing known (version {version}): {e:#}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Ok(rx)
}

/// Watch both prefixes, then reload (so no change between the load and
/// the watch is missed), and reload at every event until the watch fails.
async fn watch_once(
    reg: &Registry,
    keyspace: &KeyspaceName,
    tx: &watch::Sender<Arc<Routing>>,
    version: &mut u64,
) -> anyhow::Result<()> {
    let mut client = reg.client.clone();
    let opts = || Some(WatchOptions::new().with_prefix());
    let mut rules = Box::pin(client.watch(reg.prefix.routing_rules(keyspace), opts()))
        .await
        .context("watch the routing rules")?;
    let mut keyspaces = Box::pin(client.watch(reg.prefix.keyspaces(), opts()))
        .await
        .context("watch the keyspaces")?;
    loop {
        *version += 1;
        let r = load(reg, keyspace, *version).await?;
        tracing::debug!(version = *version, "routing reloaded");
        if tx.send(Arc::new(r)).is_err() {
            return Ok(());
        }
        let event = tokio::select! {
            m = rules.message() => m,
            m = keyspaces.message() => m,
        };
        match event.context("etcd watch")? {
            Some(_) => {}
            None => anyhow::bail!("etcd closed the watch"),
        }
    }
}
