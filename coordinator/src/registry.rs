//! The registry: revdoor's JSON records in etcd (DESIGN §6), read and
//! written through one client.
//!
//! Operator commands write with [`Registry::put`] / create-only
//! transactions. The coordinator leader writes with [`Registry::commit`]
//! under a [`Guard`]: every transaction compares the leader key's create
//! revision, so a deposed leader (paused, partitioned, its lease expired and
//! the key re-created by a successor) writes nothing — its transaction fails
//! and it steps down.

use std::collections::BTreeMap;

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};
use serde::de::DeserializeOwned;
use serde::Serialize;

use revdoor_core::names::{EtcdPrefix, WorkflowName};
use revdoor_core::workflow::{StreamSpec, StreamStatus};

use crate::Error;

/// Leadership: the leader key and the create revision we hold it at.
#[derive(Debug, Clone)]
pub struct Guard {
    pub key: String,
    pub create_revision: i64,
    /// The same revision as the leader's fencing token, which guards its
    /// fence rows on the servers (`shard::claim`).
    pub token: revdoor_core::fence::FenceToken,
    /// Who we are (written into journal entries).
    pub id: String,
}

/// etcd client + key layout.
#[derive(Clone)]
pub struct Registry {
    pub client: Client,
    pub prefix: EtcdPrefix,
}

fn etcd(what: &str) -> impl FnOnce(etcd_client::Error) -> Error + '_ {
    move |e| {
        if unreachable(&e) {
            Error::Etcd(format!(
                "{what}: etcd does not answer ({e}): it is down, restarting or out of reach; \
                 try again once it answers (and check --etcd / REVDOOR_ETCD)"
            ))
        } else {
            Error::Etcd(format!("{what}: {e}"))
        }
    }
}

/// Whether etcd could not be reached at all (down, restarting, a cut
/// connection), as opposed to answering with an error.
pub fn unreachable(e: &etcd_client::Error) -> bool {
    // gRPC codes: 4 DEADLINE_EXCEEDED, 14 UNAVAILABLE; a reset connection
    // comes back as UNKNOWN "transport error".
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            matches!(s.code() as i32, 4 | 14) || s.message() == "transport error"
        }
        _ => false,
    }
}

/// A JSON value for etcd.
pub fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Registry {
    /// Connect to etcd at `endpoint` (e.g. `http://127.0.0.1:2379`).
    pub async fn connect(endpoint: &str, prefix: EtcdPrefix) -> Result<Registry, Error> {
        let endpoints: Vec<&str> = endpoint.split(',').collect();
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(10));
        let client = Client::connect(endpoints, Some(opts)).await.map_err(|e| {
            Error::Etcd(format!(
                "cannot reach etcd at {endpoint}: {e} (set --etcd or REVDOOR_ETCD)"
            ))
        })?;
        let r = Registry { client, prefix };
        // Fail now, not at the first real request, when etcd is down.
        r.client
            .clone()
            .get(r.prefix.leader(), None)
            .await
            .map_err(|e| Error::Etcd(format!("cannot reach etcd at {endpoint}: {e}")))?;
        Ok(r)
    }

    /// A record and its mod revision.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, i64)>, Error> {
        let resp = Box::pin(self.client.clone().get(key, None))
            .await
            .map_err(etcd(key))?;
        match resp.kvs().first() {
            None => Ok(None),
            Some(kv) => {
                let v = serde_json::from_slice(kv.value()).map_err(|e| {
                    Error::Etcd(format!("record {key} is not what revdoor wrote: {e}"))
                })?;
                Ok(Some((v, kv.mod_revision())))
            }
        }
    }

    /// A record's value, if present.
    pub async fn value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        Ok(self.get(key).await?.map(|(v, _)| v))
    }

    /// Every record under `prefix`, with its key's last segment(s) after
    /// the prefix.
    pub async fn list<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>, Error> {
        Ok(self
            .list_revisions(prefix)
            .await?
            .into_iter()
            .map(|(key, v, _)| {
                let rest = key.strip_prefix(prefix).unwrap_or(&key).to_string();
                (rest, v)
            })
            .collect())
    }

    /// Every record under `prefix` with its whole key and mod revision,
    /// for a transaction that compares what it read.
    pub async fn list_revisions<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T, i64)>, Error> {
        let resp = Box::pin(
            self.client
                .clone()
                .get(prefix, Some(GetOptions::new().with_prefix())),
        )
        .await
        .map_err(etcd(prefix))?;
        let mut out = Vec::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            match serde_json::from_slice(kv.value()) {
                Ok(v) => out.push((key, v, kv.mod_revision())),
                Err(e) => tracing::warn!(key = %key, error = %e, "skipping unreadable record"),
            }
        }
        Ok(out)
    }

    /// A workflow's stream specs.
    pub async fn stream_specs(&self, wf: &WorkflowName) -> Result<Vec<StreamSpec>, Error> {
        Ok(self
            .list::<StreamSpec>(&self.prefix.streams(wf))
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// What workers report about a workflow's streams, by stream id.
    pub async fn stream_statuses(
        &self,
        wf: &WorkflowName,
    ) -> Result<BTreeMap<String, StreamStatus>, Error> {
        Ok(self
            .list(&self.prefix.statuses(wf))
            .await?
            .into_iter()
            .collect())
    }

    /// Keys under `prefix` (after the prefix).
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let resp = Box::pin(self.client.clone().get(
            prefix,
            Some(GetOptions::new().with_prefix().with_keys_only()),
        ))
        .await
        .map_err(etcd(prefix))?;
        Ok(resp
            .kvs()
            .iter()
            .map(|kv| {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                key.strip_prefix(prefix).unwrap_or(&key).to_string()
            })
            .collect())
    }

    /// Unguarded write (operator commands, worker reports).
    pub async fn put<T: Serialize>(
        &self,
        key: &str,
        v: &T,
        lease: Option<i64>,
    ) -> Result<(), Error> {
        let opts = lease.map(|l| PutOptions::new().with_lease(l));
        Box::pin(self.client.clone().put(key, json(v), opts))
            .await
            .map_err(etcd(key))?;
        Ok(())
    }

    /// Write `ops` only if none of `absent` exists (create-only).
    pub async fn create(&self, absent: &[String], ops: Vec<TxnOp>) -> Result<bool, Error> {
        let cmp: Vec<Compare> = absent
            .iter()
            .map(|k| Compare::create_revision(k.as_str(), CompareOp::Equal, 0))
            .collect();
        let resp = Box::pin(self.client.clone().txn(Txn::new().when(cmp).and_then(ops)))
            .await
            .map_err(etcd("create"))?;
        Ok(resp.succeeded())
    }

    /// A leader's write: `ops` apply only while `guard` still holds the
    /// leader key (and `extra` compares hold). Fails with
    /// [`Error::Deposed`] when the leadership is gone.
    pub async fn commit(
        &self,
        guard: &Guard,
        extra: Vec<Compare>,
        ops: Vec<TxnOp>,
    ) -> Result<(), Error> {
        let mut cmp = vec![Compare::create_revision(
            guard.key.as_str(),
            CompareOp::Equal,
            guard.create_revision,
        )];
        let n_extra = extra.len();
        cmp.extend(extra);
        let check = TxnOp::get(guard.key.as_str(), None);
        let resp = Box::pin(
            self.client
                .clone()
                .txn(Txn::new().when(cmp).and_then(ops).or_else([check])),
        )
        .await
        .map_err(etcd("leader write"))?;
        if resp.succeeded() {
            return Ok(());
        }
        // Which compare failed: ours (deposed) or the caller's?
        let still_leader = resp.op_responses().into_iter().any(|r| match r {
            etcd_client::TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .is_some_and(|kv| kv.create_revision() == guard.create_revision),
            _ => false,
        });
        if still_leader && n_extra > 0 {
            Err(Error::Conflict)
        } else {
            Err(Error::Deposed)
        }
    }

    /// `TxnOp` putting a JSON record.
    pub fn op_put<T: Serialize>(key: &str, v: &T) -> TxnOp {
        TxnOp::put(key, json(v), None)
    }

    pub fn op_delete(key: &str) -> TxnOp {
        TxnOp::delete(key, None)
    }

    pub fn op_delete_prefix(prefix: &str) -> TxnOp {
        TxnOp::delete(
            prefix,
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
    }

    /// Names of every workflow with a spec.
    pub async fn workflow_names(&self) -> Result<Vec<WorkflowName>, Error> {
        let keys = self.keys(&self.prefix.workflows()).await?;
        let mut names: Vec<WorkflowName> = keys
            .iter()
            .filter_map(|k| k.strip_suffix("/spec"))
            .filter_map(|n| n.parse().ok())
            .collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(names)
    }
}
