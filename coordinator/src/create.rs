//! `keyspace add` and `workflow create`: validate everything first, then
//! prepare the servers and write the registry (DESIGN §6, §8).

use std::collections::BTreeMap;

use revdoor_core::avro::EventCodec;
use revdoor_core::keyrange::{check_partition, KeyRange};
use revdoor_core::names::{Direction, KeyspaceName, WorkflowName};
use revdoor_core::workflow::{
    now_ms, plan_streams, Epoch, KeyspaceSpec, Phase, RoutingRule, ShardSpec, StreamKind,
    WorkflowSpec, WorkflowState,
};
use revdoor_mysql::engine::{Flavor, Server};
use revdoor_mysql::schema::{SOURCE_SIDE, TARGET_SIDE};
use revdoor_mysql::translate::{self, collation};
use revdoor_mysql::{preflight, tables};

use crate::registry::Registry;
use crate::shard::{self, redact};
use crate::Error;

/// Register a keyspace. Its shards must cover the key space without gaps
/// or overlaps, and each must be reachable.
pub async fn add_keyspace(
    reg: &Registry,
    name: &str,
    shards: Vec<(KeyRange, String)>,
) -> Result<KeyspaceSpec, Error> {
    let ks: KeyspaceName = name.parse().map_err(|e| Error::Refused(format!("{e}")))?;
    if shards.is_empty() {
        return Err(Error::Refused(format!(
            "keyspace {ks} needs at least one --shard <range>=<mysql-url> (`-` for unsharded)"
        )));
    }
    let ranges: Vec<KeyRange> = shards.iter().map(|(r, _)| *r).collect();
    check_partition(&ranges).map_err(|e| Error::Refused(format!("keyspace {ks}: {e}")))?;
    let shards = shards
        .into_iter()
        .map(|(range, url)| Ok((range, stored_url(&ks, range, &url)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    for (range, url) in &shards {
        let mut conn = shard::connect(url)
            .await
            .map_err(|e| Error::Refused(format!("keyspace {ks} shard {range}: {e}")))?;
        let _ = shard::position(&mut conn, url).await?;
        let _ = conn.disconnect().await;
    }
    let spec = KeyspaceSpec {
        name: ks.clone(),
        shards: shards
            .into_iter()
            .map(|(range, url)| ShardSpec { range, url })
            .collect(),
    };
    let key = reg.prefix.keyspace(&ks);
    if !reg
        .create(
            std::slice::from_ref(&key),
            vec![Registry::op_put(&key, &spec)],
        )
        .await?
    {
        return Err(Error::Refused(format!("keyspace {ks} already exists")));
    }
    Ok(spec)
}

/// The URL a shard record stores: refused when it holds a password — etcd
/// stores none; the URL names where each process reads it instead
/// (`?password_env=NAME` / `?password_file=PATH`, `revdoor_mysql::conn`).
pub(crate) fn stored_url(ks: &KeyspaceName, range: KeyRange, url: &str) -> Result<String, Error> {
    let dsn = revdoor_mysql::conn::Dsn::parse(url)
        .map_err(|e| Error::Refused(format!("keyspace {ks} shard {range}: {e}")))?;
    dsn.stored().ok_or_else(|| {
        Error::Refused(format!(
            "keyspace {ks} shard {range}: the URL {dsn} holds a password, and revdoor stores no \
             password in etcd: give the URL without it and the password with --password-env NAME \
             or --password-file PATH (the variable or file must be there wherever revdoor runs: \
             workers, coordinators and this command); nothing changed"
        ))
    })
}

/// Read a keyspace or say it is unknown.
pub async fn keyspace(reg: &Registry, name: &str) -> Result<KeyspaceSpec, Error> {
    let ks: KeyspaceName = name.parse().map_err(|e| Error::Refused(format!("{e}")))?;
    reg.value(&reg.prefix.keyspace(&ks)).await?.ok_or_else(|| {
        Error::Refused(format!(
            "unknown keyspace {ks}: register it with `revdoor keyspace add {ks} --shard <range>=<mysql-url>`"
        ))
    })
}

/// Refuse an `on_ddl` policy revdoor does not have.
pub(crate) fn check_on_ddl(on_ddl: &str) -> Result<(), Error> {
    if matches!(on_ddl, "stop" | "ignore" | "exec") {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "--on-ddl {on_ddl}: revdoor supports `stop` (halt the stream before the DDL), `ignore` \
         (reload the definition and go on) and `exec` (run the DDL on every destination too)"
    )))
}

/// What `workflow create` is asked.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: String,
    pub source: String,
    pub target: String,
    pub tables: Vec<String>,
    /// `db.table` → columns.
    pub sharding_keys: BTreeMap<String, Vec<String>>,
    pub on_ddl: String,
    /// Kafka bootstrap servers (leftover topics of the name are refused).
    pub brokers: String,
}

fn split_table(t: &str) -> Result<(String, String), Error> {
    match t.split_once('.') {
        Some((d, n)) if !d.is_empty() && !n.is_empty() => Ok((d.to_string(), n.to_string())),
        _ => Err(Error::Refused(format!(
            "table '{t}' must be written as database.table"
        ))),
    }
}

fn refused(where_: String) -> impl FnOnce(revdoor_mysql::MysqlError) -> Error {
    move |e| Error::Refused(format!("{where_}: {e}"))
}

/// Validate, create the target tables where absent (each translated for
/// its shard's engine, `revdoor_mysql::translate`), install the fences
/// (source open, target fenced), and register the workflow with its forward
/// streams (copy first). Nothing is written to the servers or etcd unless
/// every check passed — every table translates for every target shard; a
/// preparation step that still fails undoes what this create made (tables,
/// their databases, fences) and says so.
pub async fn create_workflow(reg: &Registry, req: CreateRequest) -> Result<WorkflowSpec, Error> {
    let wf: WorkflowName = req
        .name
        .parse()
        .map_err(|e| Error::Refused(format!("{e}")))?;
    check_on_ddl(&req.on_ddl)?;
    if reg
        .get::<serde_json::Value>(&reg.prefix.workflow_spec(&wf))
        .await?
        .is_some()
    {
        return Err(Error::Refused(format!(
            "workflow {wf} already exists (see `revdoor workflow status {wf}`)"
        )));
    }
    let source = keyspace(reg, &req.source).await?;
    let target = keyspace(reg, &req.target).await?;
    if source.name == target.name {
        return Err(Error::Refused(
            "--source and --target are the same keyspace".into(),
        ));
    }
    if req.tables.is_empty() {
        return Err(Error::Refused("--tables is empty".into()));
    }
    let mut tables: Vec<String> = req.tables.clone();
    tables.sort();
    tables.dedup();
    let pairs: Vec<(String, String)> = tables
        .iter()
        .map(|t| split_table(t))
        .collect::<Result<_, _>>()?;
    for k in req.sharding_keys.keys() {
        if !tables.contains(k) {
            return Err(Error::Refused(format!(
                "--sharding-key names {k}, which is not in --tables"
            )));
        }
    }

    // Source shards: binlog settings, privileges, every table loadable
    // (exists, has a primary key, types carried), sharding keys exist.
    // Each table's `CREATE TABLE` and the engine that wrote it.
    let mut create_ddl: BTreeMap<String, (String, Flavor)> = BTreeMap::new();
    for s in &source.shards {
        let at = format!(
            "source keyspace {} shard {} ({})",
            source.name,
            s.range,
            redact(&s.url)
        );
        let mut conn = shard::connect(&s.url)
            .await
            .map_err(|e| Error::Refused(format!("{at}: {e}")))?;
        preflight::binlog_settings(&mut conn)
            .await
            .map_err(refused(at.clone()))?;
        preflight::check_privileges(&mut conn)
            .await
            .map_err(refused(at.clone()))?;
        let engine = Server::of(&mut conn).await.map_err(refused(at.clone()))?;
        for ((db, t), name) in pairs.iter().zip(&tables) {
            let def = tables::load_table_schema(&mut conn, db, t)
                .await
                .map_err(refused(at.clone()))?;
            EventCodec::new(def.clone())
                .map_err(|e| Error::Refused(format!("{at}: table {name}: {e}")))?;
            if let Some(cols) = req.sharding_keys.get(name) {
                for c in cols {
                    if def.column(c).is_none() {
                        return Err(Error::Refused(format!(
                            "--sharding-key {name}={}: {name} has no column {c}",
                            cols.join("+")
                        )));
                    }
                }
            }
            if !create_ddl.contains_key(name) {
                if let Some(ddl) = shard::show_create(&mut conn, &s.url, db, t).await? {
                    create_ddl.insert(name.clone(), (ddl, engine.flavor));
                }
            }
        }
        let _ = conn.disconnect().await;
    }
    // Target shards: reachable, able to run the reverse capture later,
    // tables absent or empty; the absent ones translated for the shard's
    // engine, every refusal of every shard reported at once.
    let mut missing: Vec<Missing> = Vec::new();
    let mut untranslatable: Vec<String> = Vec::new();
    for (i, s) in target.shards.iter().enumerate() {
        let at = format!(
            "target keyspace {} shard {} ({})",
            target.name,
            s.range,
            redact(&s.url)
        );
        let mut conn = shard::connect(&s.url)
            .await
            .map_err(|e| Error::Refused(format!("{at}: {e}")))?;
        preflight::binlog_settings(&mut conn)
            .await
            .map_err(refused(format!("{at} (needed for the reverse stream)")))?;
        preflight::check_privileges(&mut conn)
            .await
            .map_err(refused(at.clone()))?;
        let engine = Server::of(&mut conn).await.map_err(refused(at.clone()))?;
        let mut collations = None;
        for ((db, t), name) in pairs.iter().zip(&tables) {
            match shard::show_create(&mut conn, &s.url, db, t).await? {
                None => {
                    let (ddl, from) = create_ddl.get(name).ok_or_else(|| {
                        Error::Refused(format!("no definition of {name} on the source"))
                    })?;
                    if *from != engine.flavor && collations.is_none() {
                        collations = Some(
                            collation::server_collations(&mut conn)
                                .await
                                .map_err(refused(at.clone()))?,
                        );
                    }
                    match translate::translate(ddl, *from, &engine, collations.as_ref()) {
                        Ok(t) => {
                            for note in &t.notes {
                                tracing::info!(table = %name, shard = %s.range, target = %engine,
                                    "create on the target as translated from {from}: {note}");
                            }
                            missing.push(Missing {
                                shard: i,
                                db: db.clone(),
                                table: name.clone(),
                                ddl: t.sql,
                            });
                        }
                        Err(refusal) => untranslatable.push(format!(
                            "{at} ({engine}): table {name} cannot be created from its {from} \
                             definition: {refusal}"
                        )),
                    }
                }
                Some(_) => {
                    if shard::has_rows(&mut conn, &s.url, db, t).await? {
                        return Err(Error::Refused(format!(
                            "{at}: table {name} already has rows; revdoor copies into empty \
                             tables only (empty or drop it, or pick another target)"
                        )));
                    }
                }
            }
        }
        let _ = conn.disconnect().await;
    }
    if !untranslatable.is_empty() {
        return Err(Error::Refused(format!(
            "{}\nnothing was created; change the definitions on the source (or leave those \
             tables out), see docs/engines.md",
            untranslatable.join("\n")
        )));
    }

    // A workflow of this name that ran before left its topics or
    // checkpoints: they would be read as this one's.
    let leftovers = revdoor_kafka::workflow_topics(&req.brokers, &wf)
        .await
        .map_err(|e| Error::Kafka(format!("{e}")))?;
    if !leftovers.is_empty() {
        return Err(Error::Refused(format!(
            "Kafka topics {} remain from an earlier workflow named {wf}; delete them \
             (kafka-topics.sh --delete) or pick another name",
            leftovers.join(", ")
        )));
    }
    for s in source.shards.iter().chain(&target.shards) {
        let mut conn = shard::connect(&s.url).await?;
        if shard::has_stream_state(&mut conn, &s.url, wf.as_str()).await? {
            return Err(Error::Refused(format!(
                "{} has checkpoints of an earlier workflow named {wf} in _revdoor.stream_state; \
                 delete them (DELETE FROM _revdoor.stream_state WHERE workflow = '{wf}') or pick another name",
                redact(&s.url)
            )));
        }
        let _ = conn.disconnect().await;
    }

    // Everything checked: prepare the servers. A step that fails undoes
    // what this create made before it.
    let mut made = Made::default();
    if let Err(e) = prepare(&mut made, wf.as_str(), &source, &target, &pairs, &missing).await {
        let cleanup = made.undo(wf.as_str(), &pairs).await;
        return Err(match e {
            Error::Refused(m) => Error::Refused(format!("{m}; {cleanup}")),
            Error::Sql(m) => Error::Sql(format!("{m}; {cleanup}")),
            other => Error::Sql(format!("{other}; {cleanup}")),
        });
    }

    let spec = WorkflowSpec {
        name: wf.clone(),
        source: source.name.clone(),
        target: target.name.clone(),
        tables: tables.clone(),
        sharding_keys: req.sharding_keys.clone(),
        on_ddl: req.on_ddl.clone(),
        created_ms: now_ms(),
    };
    let state = WorkflowState {
        phase: Phase::Copying,
        epoch: Epoch::INITIAL,
        resume: BTreeMap::new(),
        reverse_created: false,
        switches: Vec::new(),
        read_only: Default::default(),
        updated_ms: now_ms(),
    };
    let spec_key = reg.prefix.workflow_spec(&wf);
    let mut ops = vec![
        Registry::op_put(&spec_key, &spec),
        Registry::op_put(&reg.prefix.workflow_state(&wf), &state),
    ];
    for mut s in plan_streams(&spec, &source, &target, Direction::Forward) {
        s.copy = s.kind == StreamKind::Capture;
        ops.push(Registry::op_put(&reg.prefix.stream(&wf, &s.id()), &s));
    }
    ops.extend(routing_ops(reg, &spec, &source.name, Epoch::INITIAL)?);
    if !reg.create(std::slice::from_ref(&spec_key), ops).await? {
        return Err(Error::Refused(format!(
            "workflow {wf} was created concurrently"
        )));
    }
    Ok(spec)
}

/// A table to create on a target shard: its statement for that shard's
/// engine.
struct Missing {
    shard: usize,
    db: String,
    table: String,
    ddl: String,
}

/// Create the missing tables (and databases), install the fences (source
/// open, target fenced), noting in `made` everything made.
async fn prepare(
    made: &mut Made,
    wf: &str,
    source: &KeyspaceSpec,
    target: &KeyspaceSpec,
    pairs: &[(String, String)],
    missing: &[Missing],
) -> Result<(), Error> {
    for m in missing {
        let s = &target.shards[m.shard];
        let mut conn = shard::connect(&s.url).await?;
        if shard::create_database(&mut conn, &s.url, &m.db).await? {
            made.databases.push((s.url.clone(), m.db.clone()));
        }
        shard::create_table(&mut conn, &s.url, &m.db, &m.ddl)
            .await
            .map_err(|e| match e {
                Error::Sql(msg) => Error::Sql(format!("table {}: {msg}", m.table)),
                other => other,
            })?;
        made.tables.push((s.url.clone(), m.table.clone()));
        let _ = conn.disconnect().await;
    }
    let open_msg = format!("revdoor: workflow {wf} moves this table; it is served here");
    let fenced_msg = format!(
        "revdoor: workflow {wf} is moving this table here from keyspace {}; write there until traffic is switched",
        source.name
    );
    for (shards, side, fenced, msg) in [
        (&source.shards, SOURCE_SIDE, false, &open_msg),
        (&target.shards, TARGET_SIDE, true, &fenced_msg),
    ] {
        for s in shards {
            let mut conn = shard::connect(&s.url).await?;
            made.fenced.push(s.url.clone());
            shard::install_fences(&mut conn, &s.url, wf, side, pairs, fenced, msg).await?;
            let _ = conn.disconnect().await;
        }
    }
    Ok(())
}

/// What a `workflow create` made on the servers, so that a failed one
/// leaves nothing behind.
#[derive(Default)]
struct Made {
    /// (url, database) it created.
    databases: Vec<(String, String)>,
    /// (url, `db.table`) it created.
    tables: Vec<(String, String)>,
    /// Servers it installed (or began to install) fences on.
    fenced: Vec<String>,
}

impl Made {
    /// Undo everything, last made first; says what was cleaned up and what
    /// could not be.
    async fn undo(&self, wf: &str, pairs: &[(String, String)]) -> String {
        if self.databases.is_empty() && self.tables.is_empty() && self.fenced.is_empty() {
            return "nothing had been created".into();
        }
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for url in self.fenced.iter().rev() {
            match undo_fences(url, wf, pairs).await {
                Ok(()) => done.push(format!("removed the fences on {}", redact(url))),
                Err(e) => failed.push(format!("the fences on {}: {e}", redact(url))),
            }
        }
        for (url, name) in self.tables.iter().rev() {
            let r = async {
                let (db, t) = split_table(name)?;
                let mut conn = shard::connect(url).await?;
                shard::drop_table(&mut conn, url, &db, &t, false).await
            };
            match r.await {
                Ok(()) => done.push(format!("dropped table {name} on {}", redact(url))),
                Err(e) => failed.push(format!("table {name} on {}: {e}", redact(url))),
            }
        }
        for (url, db) in self.databases.iter().rev() {
            let r = async {
                let mut conn = shard::connect(url).await?;
                shard::drop_database_if_empty(&mut conn, url, db).await
            };
            match r.await {
                Ok(true) => done.push(format!("dropped database {db} on {}", redact(url))),
                Ok(false) => failed.push(format!(
                    "database {db} on {}: something else was created in it meanwhile",
                    redact(url)
                )),
                Err(e) => failed.push(format!("database {db} on {}: {e}", redact(url))),
            }
        }
        let mut out = format!("cleaned up: {}", done.join(", "));
        if !failed.is_empty() {
            out.push_str(&format!("; NOT cleaned up: {}", failed.join(", ")));
        }
        out
    }
}

async fn undo_fences(url: &str, wf: &str, pairs: &[(String, String)]) -> Result<(), Error> {
    let mut conn = shard::connect(url).await?;
    shard::remove_fences(&mut conn, url, wf, pairs).await
}

/// Routing rules of every moved table, for both keyspaces: `serving`, `epoch`.
pub fn routing_ops(
    reg: &Registry,
    spec: &WorkflowSpec,
    serving: &KeyspaceName,
    epoch: Epoch,
) -> Result<Vec<etcd_client::TxnOp>, Error> {
    let mut ops = Vec::new();
    for ks in [&spec.source, &spec.target] {
        for t in &spec.tables {
            let rule = RoutingRule {
                table: t.clone(),
                serving: serving.clone(),
                epoch,
                workflow: spec.name.clone(),
                sharding_key: spec.sharding_keys.get(t).cloned().unwrap_or_default(),
            };
            ops.push(Registry::op_put(&reg.prefix.routing(ks, t), &rule));
        }
    }
    Ok(ops)
}
