//! Changes an operator makes to what is registered while workflows run:
//! `keyspace set-shard` (a shard's URL after a password rotation or a
//! server move) and `workflow set --on-ddl`.
//!
//! Each is validated first and changes nothing when refused. The new value
//! then replaces the old one everywhere it is held — the keyspace or
//! workflow record, every stream spec carrying it, and the workers'
//! assignments of those streams — in one etcd transaction that compares
//! the revision of every record it read, so a concurrent change makes it
//! fail instead of leaving a mix. A worker restarts a stream whose assigned
//! spec changed, and only that stream (`revdoor_worker::supervisor`), so
//! running streams pick the new value up without a process restart.
//!
//! # During a request
//!
//! Refused while a workflow concerned has a request in progress (switch,
//! reverse, complete, cancel): its steps read the keyspace and the stream
//! specs as they go. The transaction compares each such request key's
//! absence, so a request put meanwhile makes it fail too; run the command
//! again once the request is done.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use revdoor_core::keyrange::KeyRange;
use revdoor_core::names::{Direction, KeyspaceName, WorkflowName};
use revdoor_core::workflow::{KeyspaceSpec, Request, StreamKind, StreamSpec, WorkflowSpec};
use revdoor_mysql::preflight;

use crate::create::check_on_ddl;
use crate::registry::Registry;
use crate::shard::{self, redact};
use crate::Error;

/// What an amendment changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amended {
    /// `<workflow>/<stream id>` of every stream spec rewritten: the workers
    /// running them restart them with the new spec.
    pub streams: Vec<String>,
    /// Whether anything changed at all (the value may already be set).
    pub changed: bool,
}

/// Point shard `range` of keyspace `name` at `url` (refused when it holds a
/// password: etcd stores none; a record an earlier revdoor wrote with one
/// is rewritten without it by this). The URL is checked as
/// `workflow create` checks a shard — it connects exactly where it says,
/// the server's binlog settings, the account's privileges — before anything
/// is written; then the keyspace record and the URL of every stream on that
/// shard, in every workflow using the keyspace, change together.
pub async fn set_shard(
    reg: &Registry,
    name: &str,
    range: KeyRange,
    url: &str,
) -> Result<Amended, Error> {
    let ks: KeyspaceName = name.parse().map_err(|e| Error::Refused(format!("{e}")))?;
    let key = reg.prefix.keyspace(&ks);
    let (mut spec, rev) = reg.get::<KeyspaceSpec>(&key).await?.ok_or_else(|| {
        Error::Refused(format!(
            "unknown keyspace {ks}: set-shard changes a registered keyspace (see `revdoor keyspace show`)"
        ))
    })?;
    let ranges: Vec<String> = spec.shards.iter().map(|s| s.range.to_string()).collect();
    let Some(shard) = spec.shards.iter_mut().find(|s| s.range == range) else {
        return Err(Error::Refused(format!(
            "keyspace {ks} has no shard {range} (its shards: {}): set-shard changes the URL of an \
             existing shard; shards are not added or split",
            ranges.join(", ")
        )));
    };
    let url = crate::create::stored_url(&ks, range, url)?;
    let url = url.as_str();
    // Checked even when unchanged: the operator learns whether it works.
    check_shard(&ks, range, url).await?;
    if shard.url == url {
        return Ok(Amended::default());
    }
    shard.url = url.to_string();
    let mut rw = Rewrite::default();
    rw.put(key, &spec, rev);
    for wf in reg.workflow_names().await? {
        let Some(w) = reg
            .value::<WorkflowSpec>(&reg.prefix.workflow_spec(&wf))
            .await?
        else {
            continue;
        };
        if w.source != ks && w.target != ks {
            continue;
        }
        rw.streams(reg, &wf, |s| {
            let on_source = (s.direction == Direction::Forward) == (s.kind == StreamKind::Capture);
            let stream_ks = if on_source { &w.source } else { &w.target };
            if stream_ks != &ks || s.shard != range {
                return false;
            }
            s.url = url.to_string();
            true
        })
        .await?;
    }
    rw.commit(reg, &format!("keyspace set-shard {ks} {range}"))
        .await
}

/// Connect exactly where `url` says and check what every stream on a shard
/// needs: the server's GTID position, its binlog settings (a shard is an
/// origin once traffic is switched) and the account's privileges.
async fn check_shard(ks: &KeyspaceName, range: KeyRange, url: &str) -> Result<(), Error> {
    let at = format!("keyspace {ks} shard {range} ({})", redact(url));
    let refused = |e: &dyn std::fmt::Display| Error::Refused(format!("{at}: {e}; nothing changed"));
    let mut conn = shard::connect(url).await.map_err(|e| refused(&e))?;
    let checked = async {
        shard::position(&mut conn, url)
            .await
            .map_err(|e| refused(&e))?;
        preflight::binlog_settings(&mut conn)
            .await
            .map_err(|e| refused(&e))?;
        preflight::check_privileges(&mut conn)
            .await
            .map_err(|e| refused(&e))
    }
    .await;
    let _ = conn.disconnect().await;
    checked
}

/// Set the `on_ddl` policy of workflow `name`: its record and its capture
/// streams (apply streams do not read it), which restart with it — a
/// capture halted on a DDL under `stop` resumes from its checkpoint, before
/// the DDL, and handles it under the new policy.
pub async fn set_on_ddl(reg: &Registry, name: &str, on_ddl: &str) -> Result<Amended, Error> {
    let wf: WorkflowName = name.parse().map_err(|e| Error::Refused(format!("{e}")))?;
    check_on_ddl(on_ddl)?;
    let key = reg.prefix.workflow_spec(&wf);
    let (mut spec, rev) = reg.get::<WorkflowSpec>(&key).await?.ok_or_else(|| {
        Error::Refused(format!(
            "unknown workflow {wf}: workflow set changes a created workflow (see `revdoor workflow status {wf}`)"
        ))
    })?;
    let mut rw = Rewrite::default();
    if spec.on_ddl != on_ddl {
        spec.on_ddl = on_ddl.to_string();
        rw.put(key, &spec, rev);
    }
    rw.streams(reg, &wf, |s| {
        if s.kind != StreamKind::Capture || s.on_ddl == on_ddl {
            return false;
        }
        s.on_ddl = on_ddl.to_string();
        true
    })
    .await?;
    rw.commit(reg, &format!("workflow set {wf}")).await
}

/// One transaction under construction: what it read (compared), what it
/// writes, the workflows whose requests must be absent.
#[derive(Default)]
struct Rewrite {
    compares: Vec<Compare>,
    ops: Vec<TxnOp>,
    workflows: BTreeSet<WorkflowName>,
    /// `(workflow, stream id)` → its new spec.
    streams: BTreeMap<(String, String), StreamSpec>,
}

impl Rewrite {
    fn put<T: serde::Serialize>(&mut self, key: String, v: &T, mod_revision: i64) {
        self.compares.push(Compare::mod_revision(
            key.as_str(),
            CompareOp::Equal,
            mod_revision,
        ));
        self.ops.push(Registry::op_put(&key, v));
    }

    /// Rewrite the stream specs of `wf` that `change` changes (it returns
    /// whether it did).
    async fn streams(
        &mut self,
        reg: &Registry,
        wf: &WorkflowName,
        mut change: impl FnMut(&mut StreamSpec) -> bool,
    ) -> Result<(), Error> {
        self.workflows.insert(wf.clone());
        for (key, mut s, rev) in reg
            .list_revisions::<StreamSpec>(&reg.prefix.streams(wf))
            .await?
        {
            if change(&mut s) {
                self.put(key, &s, rev);
                self.streams.insert((wf.to_string(), s.id()), s);
            }
        }
        Ok(())
    }

    /// Also rewrite the assignments of the changed streams, refuse while a
    /// request is in progress, and commit.
    async fn commit(mut self, reg: &Registry, what: &str) -> Result<Amended, Error> {
        if self.ops.is_empty() {
            return Ok(Amended::default());
        }
        for wf in &self.workflows {
            let key = reg.prefix.request(wf);
            if let Some(r) = reg.value::<Request>(&key).await? {
                return Err(Error::Refused(format!(
                    "{what}: workflow {wf} has a {} request in progress; nothing changed — run \
                     the command again once it is done (`revdoor workflow status {wf}`)",
                    r.action.name()
                )));
            }
            self.compares
                .push(Compare::create_revision(key.as_str(), CompareOp::Equal, 0));
        }
        let assigned = reg
            .list_revisions::<StreamSpec>(&reg.prefix.all_assignments())
            .await?;
        for (key, s, rev) in assigned {
            if let Some(new) = self.streams.get(&(s.workflow.to_string(), s.id())) {
                if new != &s {
                    let new = new.clone();
                    self.put(key, &new, rev);
                }
            }
        }
        let txn = Txn::new().when(self.compares).and_then(self.ops);
        let resp = Box::pin(reg.client.clone().txn(txn))
            .await
            .map_err(|e| Error::Etcd(format!("{what}: {e}")))?;
        if !resp.succeeded() {
            return Err(Error::Refused(format!(
                "{what}: a record it reads changed meanwhile (a coordinator or another operator \
                 command, or a request started); nothing changed — run the command again"
            )));
        }
        Ok(Amended {
            streams: self
                .streams
                .keys()
                .map(|(wf, id)| format!("{wf}/{id}"))
                .collect(),
            changed: true,
        })
    }
}
