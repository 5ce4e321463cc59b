//! One client connection: authentication, session state carried onto its
//! backend connections, routing of each text statement, transactions kept
//! on one backend, and the hold-and-retry of a statement that meets a
//! switch's fence as the first statement of its transaction.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use opensrv_mysql::{
    AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, InitWriter, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter, StatusFlags,
};
use revdoor_core::sqltype::SqlType;
use tokio::io::AsyncWrite;
use tokio::sync::watch;

use crate::accounts::Accounts;
use crate::pool::Pool;
use crate::results::{read_all, ResultSet};
use crate::routing::{Backend, Routing, Side};
use crate::shard::{self, Merge};
use crate::statement::{self, Kind, Tables};

/// A sharded table's key columns and their types.
type KeyTypes = Arc<Vec<(String, SqlType)>>;

/// What every session of a proxy shares.
pub struct Shared {
    pub accounts: Accounts,
    pub buffer_window: Duration,
    pub routing: watch::Receiver<Arc<Routing>>,
    /// Sharding key types by `keyspace/db.table`, read once from a shard.
    pub key_types: Mutex<HashMap<String, KeyTypes>>,
    /// Backend connections between sessions.
    pub pool: Arc<Pool>,
}

/// Where a statement goes by its tables.
enum Route {
    One(Backend),
    /// A table served by a sharded keyspace: by its sharding key.
    Sharded {
        table: String,
        side: Side,
        key: Vec<String>,
    },
}

/// Where a statement goes, shards resolved.
enum Target {
    One(Backend),
    /// A read on every shard it may touch, its rows merged.
    Scatter(Vec<Backend>, Merge),
}

/// A backend connection of a session and the session state it has.
struct Link {
    conn: Conn,
    /// The database selected on it.
    db: Option<String>,
    /// How many of the session's `SET`s it has run.
    sets: usize,
}

/// The session's transaction.
enum Txn {
    /// None open on any backend (an explicit `BEGIN` may be pending).
    Idle,
    /// Open on this backend (URL).
    Open(Backend),
    /// Rolled back by the proxy after a fence; the client must end it.
    Aborted(String),
}

/// An error to send the client.
#[derive(Debug)]
struct Fail {
    code: u16,
    msg: String,
}

impl Fail {
    fn proxy(msg: impl Into<String>) -> Fail {
        Fail {
            code: 1105,
            msg: format!("revdoor proxy: {}", msg.into()),
        }
    }

    /// The trigger error of a switch's fence (SQLSTATE 45000).
    fn is_fence(&self) -> bool {
        self.code == 1644 && self.msg.starts_with("revdoor: workflow")
    }
}

pub struct Session {
    shared: Arc<Shared>,
    id: u32,
    salt: [u8; 20],
    /// The client's account once authenticated (user, password).
    account: Mutex<Option<(String, String)>>,
    routing: watch::Receiver<Arc<Routing>>,
    db: Option<String>,
    /// Session `SET`s in order, replayed on every backend connection.
    sets: Vec<String>,
    autocommit: bool,
    /// An explicit `BEGIN` not yet sent: it goes to the backend of the
    /// transaction's first statement.
    begin: Option<String>,
    txn: Txn,
    links: HashMap<String, Link>,
}

/// A scramble for `mysql_native_password`: 20 printable bytes, new for
/// every connection (std's randomly keyed hasher; no extra crate).
fn salt(id: u32) -> [u8; 20] {
    let mut out = [0u8; 20];
    let state = RandomState::new();
    for (i, b) in out.iter_mut().enumerate() {
        let mut h = state.build_hasher();
        h.write_u32(id);
        h.write_usize(i);
        let v = (h.finish() % 93) as u8 + 33; // '!' ..= '}'
        *b = if v == b'$' { b'%' } else { v };
    }
    out
}

/// Error codes opensrv-mysql knows by name (it panics on others); any
/// other backend error is sent as 1105 with its code in the message.
const KNOWN_CODES: &[u16] = &[
    1044, 1045, 1046, 1047, 1048, 1049, 1050, 1051, 1054, 1062, 1064, 1105, 1142, 1146, 1205, 1213,
    1290, 1295, 1317, 1644,
];

fn error_kind(code: u16) -> ErrorKind {
    if KNOWN_CODES.contains(&code) {
        ErrorKind::from(code)
    } else {
        ErrorKind::ER_UNKNOWN_ERROR
    }
}

fn fail_of(e: mysql_async::Error, backend: &Backend) -> Fail {
    match e {
        mysql_async::Error::Server(se) if KNOWN_CODES.contains(&se.code) => Fail {
            code: se.code,
            msg: se.message,
        },
        mysql_async::Error::Server(se) => Fail {
            code: 1105,
            msg: format!("error {} ({}): {}", se.code, se.state, se.message),
        },
        other => Fail::proxy(format!("backend {backend:?}: {other}")),
    }
}

impl Session {
    pub fn new(shared: Arc<Shared>, id: u32) -> Session {
        let routing = shared.routing.clone();
        Session {
            shared,
            id,
            salt: salt(id),
            account: Mutex::new(None),
            routing,
            db: None,
            sets: Vec::new(),
            autocommit: true,
            begin: None,
            txn: Txn::Idle,
            links: HashMap::new(),
        }
    }

    fn in_txn(&self) -> bool {
        self.begin.is_some() || !self.autocommit
    }

    /// The backend connection to `b` with the session's database and
    /// `SET`s applied.
    async fn link(&mut self, b: &Backend) -> Result<&mut Link, Fail> {
        if !self.links.contains_key(&b.url) {
            let (user, password) = self
                .account
                .lock()
                .ok()
                .and_then(|a| a.clone())
                .ok_or_else(|| Fail::proxy("not authenticated"))?;
            let conn = match self.shared.pool.take(&b.url, &user).await {
                Some(conn) => conn,
                None => {
                    let opts = revdoor_mysql::conn::exact(&b.url)
                        .map_err(|e| Fail::proxy(format!("backend {b:?}: bad URL: {e}")))?;
                    let opts: Opts = OptsBuilder::from_opts(opts)
                        .user(Some(user))
                        .pass(Some(password))
                        .db_name(None::<String>)
                        .into();
                    Conn::new(opts).await.map_err(|e| fail_of(e, b))?
                }
            };
            self.links.insert(
                b.url.clone(),
                Link {
                    conn,
                    db: None,
                    sets: 0,
                },
            );
        }
        let link = self
            .links
            .get_mut(&b.url)
            .ok_or_else(|| Fail::proxy("lost link"))?;
        if link.db != self.db {
            if let Some(db) = &self.db {
                let q = format!("USE {}", revdoor_mysql::ident::quote_ident(db));
                link.conn.query_drop(q).await.map_err(|e| fail_of(e, b))?;
            }
            link.db = self.db.clone();
        }
        while link.sets < self.sets.len() {
            let s = &self.sets[link.sets];
            link.conn.query_drop(s).await.map_err(|e| fail_of(e, b))?;
            link.sets += 1;
        }
        Ok(link)
    }

    /// Run `sql` on `b`, reading every result set.
    async fn exec(&mut self, b: &Backend, sql: &str) -> Result<Vec<ResultSet>, Fail> {
        let link = self.link(b).await?;
        let r = read_all(&mut link.conn, sql).await;
        if let Err(e) = &r {
            if !matches!(e, mysql_async::Error::Server(_)) {
                // A broken connection: a new one next time.
                self.links.remove(&b.url);
            }
        }
        r.map_err(|e| fail_of(e, b))
    }

    /// Where `sql` goes by its tables under `routing`.
    fn route(&self, sql: &str, routing: &Routing) -> Result<Route, Fail> {
        let qualify = |db: &Option<String>, t: &str| -> Option<String> {
            db.as_ref().or(self.db.as_ref()).map(|d| format!("{d}.{t}"))
        };
        let mut found: Option<(&str, &crate::routing::Moved)> = None;
        let mut named = 0;
        match statement::tables(sql) {
            Tables::Parsed(tables) => {
                named = tables.len();
                for (db, t) in &tables {
                    let Some(key) = qualify(db, t) else { continue };
                    if let Some((k, m)) = routing.moved.get_key_value(&key) {
                        if let Some((k0, m0)) = found {
                            if m0.workflow != m.workflow {
                                return Err(Fail::proxy(format!(
                                    "the statement names {k0} (workflow {}) and {k} (workflow {}), moved by two workflows; split it",
                                    m0.workflow, m.workflow
                                )));
                            }
                        }
                        found = Some((k.as_str(), m));
                    }
                }
            }
            Tables::Unparsed(words) => {
                if let Some((k, m)) = routing.moved.iter().find(|(k, _)| {
                    let table = k.rsplit('.').next().unwrap_or(k);
                    words
                        .iter()
                        .any(|w| w == table || w == k.as_str() || w.contains(k.as_str()))
                }) {
                    return Err(Fail::proxy(format!(
                        "the SQL parser does not understand this statement and it may name {k}, moved by workflow {}; the proxy cannot tell where it goes, so it is refused (send it to the serving side directly)",
                        m.workflow
                    )));
                }
            }
        }
        let Some((k, m)) = found else {
            return routing.home.clone().map(Route::One).map_err(Fail::proxy);
        };
        let side = m
            .serving
            .clone()
            .map_err(|e| Fail::proxy(format!("table {k}: {e}")))?;
        if let Some(b) = side.unsharded() {
            return Ok(Route::One(b.clone()));
        }
        if named > 1 {
            return Err(Fail::proxy(format!(
                "table {k} is served by keyspace {} in {} shards, and the statement names {named} tables: the proxy routes single-table statements on a sharded side; split it, or query the shards directly",
                side.keyspace,
                side.shards.len()
            )));
        }
        Ok(Route::Sharded {
            table: k.to_string(),
            side,
            key: m.sharding_key.clone(),
        })
    }

    /// The sharding key columns of `table` on `side` and their types
    /// (`key` empty: the primary key), read once from its first shard.
    async fn key_types(
        &mut self,
        table: &str,
        side: &Side,
        key: &[String],
    ) -> Result<KeyTypes, Fail> {
        let id = format!("{}/{table}", side.keyspace);
        if let Some(t) = self
            .shared
            .key_types
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
        {
            return Ok(t);
        }
        let b = side
            .shards
            .first()
            .cloned()
            .ok_or_else(|| Fail::proxy(format!("keyspace {} has no shard", side.keyspace)))?;
        let (db, t) = table.split_once('.').unwrap_or(("", table));
        let link = self.link(&b).await?;
        let schema = revdoor_mysql::tables::load_table_schema(&mut link.conn, db, t)
            .await
            .map_err(|e| {
                Fail::proxy(format!(
                    "table {table}: its sharding key's types on {b:?}: {e}"
                ))
            })?;
        let cols = if key.is_empty() {
            schema.primary_key.clone()
        } else {
            key.to_vec()
        };
        let types: Vec<(String, SqlType)> = cols
            .into_iter()
            .map(|c| match schema.column(&c) {
                Some(d) => Ok((c, d.sql_type.clone())),
                None => Err(Fail::proxy(format!(
                    "table {table}: sharding key column {c} is not a column of the table on {b:?}"
                ))),
            })
            .collect::<Result<_, _>>()?;
        let types = Arc::new(types);
        if let Ok(mut m) = self.shared.key_types.lock() {
            m.insert(id, Arc::clone(&types));
        }
        Ok(types)
    }

    /// The shards `sql` goes to on a sharded side: the shards of the keys
    /// it pins, or every shard for a read pinning none; a write must pin
    /// exactly one shard.
    async fn target(&mut self, sql: &str, route: Route) -> Result<Target, Fail> {
        let (table, side, key) = match route {
            Route::One(b) => return Ok(Target::One(b)),
            Route::Sharded { table, side, key } => (table, side, key),
        };
        let types = self.key_types(&table, &side, &key).await?;
        let names: Vec<String> = types.iter().map(|(n, _)| n.clone()).collect();
        let sharded = format!(
            "table {table} is sharded by ({}) across {} shards of keyspace {}",
            names.join(", "),
            side.shards.len(),
            side.keyspace
        );
        let plan = shard::plan(sql, &names).map_err(|e| Fail::proxy(format!("{sharded}: {e}")))?;
        let mut shards: Vec<Backend> = Vec::new();
        let mut unpinned = plan.keys.is_none();
        for k in plan.keys.iter().flatten() {
            let id = match shard::ksid(&types, k) {
                Ok(id) => id,
                Err(e) if plan.write => return Err(Fail::proxy(format!("{sharded}: {e}"))),
                Err(_) => {
                    unpinned = true;
                    break;
                }
            };
            let b = side.shard_for(id).ok_or_else(|| {
                Fail::proxy(format!("{sharded}: no shard holds keyspace id {id:016x}"))
            })?;
            if !shards.contains(b) {
                shards.push(b.clone());
            }
        }
        if unpinned {
            shards = side.shards.clone();
        } else if shards.is_empty() {
            // `IN ()` or contradicting conditions: no row anywhere.
            shards.extend(side.shards.first().cloned());
        }
        if plan.write && shards.len() != 1 {
            let why = if unpinned {
                "this write pins no shard (use WHERE key = literal or key IN (…) on one shard, or INSERT … VALUES naming the key)".to_string()
            } else {
                format!(
                    "its rows go to {} shards ({}); write each shard's rows in a statement of its own",
                    shards.len(),
                    shards.iter().map(|b| b.shard.to_string()).collect::<Vec<_>>().join(", ")
                )
            };
            return Err(Fail::proxy(format!(
                "write refused: {sharded}, a write goes to exactly one shard and {why}"
            )));
        }
        match shards.as_slice() {
            [one] => Ok(Target::One(one.clone())),
            _ => {
                let merge = plan
                    .merge
                    .map_err(|e| Fail::proxy(format!("{sharded} and this read reaches {} of them: {e}; pin the sharding key, or query the shards directly", shards.len())))?;
                Ok(Target::Scatter(shards, merge))
            }
        }
    }

    /// A routed statement, with the fence hold: a statement that meets a
    /// fence as the first of its transaction (or in autocommit) waits for
    /// routing to change (or `--buffer-window`) and is retried.
    async fn routed(&mut self, sql: &str) -> Result<Vec<ResultSet>, Fail> {
        if let Txn::Aborted(why) = &self.txn {
            return Err(Fail::proxy(format!(
                "{why}; this transaction is over: send ROLLBACK and retry it"
            )));
        }
        let started = Instant::now();
        let mut nap = Duration::from_millis(10);
        loop {
            let routing = Arc::clone(&self.routing.borrow_and_update());
            let route = self.route(sql, &routing)?;
            let routed = match self.target(sql, route).await? {
                Target::One(b) => b,
                Target::Scatter(shards, merge) => return self.scatter(sql, &shards, &merge).await,
            };
            let first = matches!(self.txn, Txn::Idle);
            let b = match &self.txn {
                Txn::Open(open) if open.keyspace == routed.keyspace && *open != routed => {
                    return Err(Fail::proxy(format!(
                        "statement refused: this transaction is on shard {open:?} and the statement goes to shard {routed:?}; a transaction stays on one shard (no cross-shard commit). The transaction is still open: COMMIT or ROLLBACK it, and send the other shard's statements in a transaction of their own"
                    )));
                }
                Txn::Open(open) if *open != routed => {
                    // Routing moved (a switch) or the statement mixes sides:
                    // roll back rather than commit half a transaction.
                    let open = open.clone();
                    let _ = self.exec(&open, "ROLLBACK").await;
                    let why = format!(
                        "this transaction runs on {open:?} but the statement goes to {routed:?} (a switch moved its tables, or it mixes sides); the proxy rolled it back, nothing of it committed"
                    );
                    self.txn = Txn::Aborted(why.clone());
                    return Err(Fail::proxy(format!("{why}; retry the transaction")));
                }
                _ => routed,
            };
            if first {
                if let Some(begin) = self.begin.clone() {
                    self.exec(&b, &begin).await?;
                }
            }
            let r = self.exec(&b, sql).await;
            match r {
                Ok(sets) => {
                    if first && self.in_txn() {
                        self.txn = Txn::Open(b);
                    }
                    return Ok(sets);
                }
                Err(f) if f.is_fence() && first => {
                    if self.in_txn() {
                        let _ = self.exec(&b, "ROLLBACK").await;
                    }
                    let left = self.shared.buffer_window.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(Fail {
                            code: f.code,
                            msg: format!(
                                "{} (held {} ms by revdoor proxy; routing did not change within --buffer-window)",
                                f.msg,
                                started.elapsed().as_millis()
                            ),
                        });
                    }
                    if routing.version == self.routing.borrow().version {
                        tracing::info!(session = self.id, backend = ?b, "fence met: statement held until routing changes");
                        // Routing flips before the new side is unfenced (no
                        // etcd event for that): wake on a change, or retry
                        // after a short, growing nap.
                        let _ = tokio::time::timeout(nap.min(left), self.routing.changed()).await;
                        nap = (nap * 2).min(Duration::from_millis(200));
                    }
                }
                Err(f) if f.is_fence() => {
                    let _ = self.exec(&b, "ROLLBACK").await;
                    let why = format!(
                        "the transaction met a switch's fence on {b:?} ({}); the proxy rolled it back, nothing of it committed",
                        f.msg
                    );
                    self.txn = Txn::Aborted(why.clone());
                    return Err(Fail {
                        code: f.code,
                        msg: format!("{why}; retry the transaction"),
                    });
                }
                Err(f) => {
                    if !first && !self.links.contains_key(&b.url) {
                        self.txn = Txn::Aborted(format!(
                            "the connection to {b:?} broke inside the transaction"
                        ));
                    }
                    return Err(f);
                }
            }
        }
    }

    /// A read sent to several shards, one after the other, merged.
    async fn scatter(
        &mut self,
        sql: &str,
        shards: &[Backend],
        merge: &Merge,
    ) -> Result<Vec<ResultSet>, Fail> {
        if self.in_txn() || !matches!(self.txn, Txn::Idle) {
            return Err(Fail::proxy(format!(
                "statement refused: this read reaches {} shards of keyspace {} and a transaction stays on one shard; pin the sharding key, or read outside the transaction",
                shards.len(),
                shards.first().map(|b| b.keyspace.to_string()).unwrap_or_default()
            )));
        }
        let mut answers = Vec::with_capacity(shards.len());
        for b in shards {
            answers.push(self.exec(b, sql).await?);
        }
        shard::merge(answers, merge).map_err(Fail::proxy)
    }

    /// `COMMIT` or `ROLLBACK` (`sql`) of the session's transaction.
    async fn end(&mut self, sql: &str, commit: bool) -> Result<Vec<ResultSet>, Fail> {
        self.begin = None;
        match std::mem::replace(&mut self.txn, Txn::Idle) {
            Txn::Idle => Ok(vec![]),
            Txn::Open(b) => self.exec(&b, sql).await,
            Txn::Aborted(why) if commit => Err(Fail::proxy(format!(
                "COMMIT refused: {why}; retry the transaction"
            ))),
            Txn::Aborted(_) => Ok(vec![]),
        }
    }

    /// A statement of the session's state (`USE`, `SET`): checked on the
    /// keyspace's home backend (or the open transaction's), then kept for
    /// every backend connection.
    async fn session_state(&mut self, sql: &str, kind: Kind) -> Result<Vec<ResultSet>, Fail> {
        let b = match &self.txn {
            Txn::Open(b) => b.clone(),
            _ => {
                let routing = Arc::clone(&self.routing.borrow());
                routing.home.clone().map_err(Fail::proxy)?
            }
        };
        match kind {
            Kind::Use(db) => {
                let q = format!("USE {}", revdoor_mysql::ident::quote_ident(&db));
                let link = self.link(&b).await?;
                link.conn.query_drop(q).await.map_err(|e| fail_of(e, &b))?;
                link.db = Some(db.clone());
                self.db = Some(db);
                Ok(vec![])
            }
            Kind::Set { autocommit } => {
                let sets = self.exec(&b, sql).await?;
                self.sets.push(sql.to_string());
                if let Some(l) = self.links.get_mut(&b.url) {
                    l.sets = self.sets.len();
                }
                if let Some(on) = autocommit {
                    if on && !self.autocommit && self.begin.is_none() {
                        // Turning autocommit on commits the open transaction.
                        self.txn = Txn::Idle;
                    }
                    self.autocommit = on;
                }
                Ok(sets)
            }
            _ => Err(Fail::proxy("not session state")),
        }
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<ResultSet>, Fail> {
        match statement::kind(sql) {
            Kind::Begin => {
                // BEGIN commits an open transaction, as on the server.
                if let Txn::Open(_) = self.txn {
                    self.end("COMMIT", true).await?;
                }
                self.txn = Txn::Idle;
                self.begin = Some(sql.to_string());
                Ok(vec![])
            }
            Kind::Commit => self.end(sql, true).await,
            Kind::Rollback => self.end(sql, false).await,
            k @ (Kind::Use(_) | Kind::Set { .. }) => self.session_state(sql, k).await,
            Kind::Other => self.routed(sql).await,
        }
    }
}

fn column(c: &mysql_async::Column) -> Column {
    Column {
        table: c.table_str().into_owned(),
        column: c.name_str().into_owned(),
        coltype: ColumnType::try_from(c.column_type() as u8)
            .unwrap_or(ColumnType::MYSQL_TYPE_VAR_STRING),
        colflags: ColumnFlags::from_bits_truncate(c.flags().bits()),
    }
}

async fn reply<W: AsyncWrite + Send + Unpin>(
    results: QueryResultWriter<'_, W>,
    r: Result<Vec<ResultSet>, Fail>,
    in_txn: bool,
) -> io::Result<()> {
    let sets = match r {
        Ok(sets) => sets,
        Err(f) => return results.error(error_kind(f.code), f.msg.as_bytes()).await,
    };
    let mut status = StatusFlags::empty();
    if in_txn {
        status |= StatusFlags::SERVER_STATUS_IN_TRANS;
    }
    let ok = |s: &ResultSet| OkResponse {
        affected_rows: s.affected_rows,
        last_insert_id: s.last_insert_id,
        status_flags: status,
        info: s.info.clone(),
        ..Default::default()
    };
    if sets.is_empty() {
        return results
            .completed(OkResponse {
                status_flags: status,
                ..Default::default()
            })
            .await;
    }
    let columns: Vec<Option<Vec<Column>>> = sets
        .iter()
        .map(|s| {
            s.columns
                .as_ref()
                .filter(|c| !c.is_empty())
                .map(|c| c.iter().map(column).collect())
        })
        .collect();
    // The writer borrows the columns: a binding of the shorter lifetime.
    let mut results = results;
    for (s, cols) in sets.iter().zip(&columns) {
        match cols {
            None => results = results.complete_one(ok(s)).await?,
            Some(cols) => {
                let mut rw = results.start(cols).await?;
                for row in &s.rows {
                    for v in row {
                        match v {
                            mysql_async::Value::NULL => rw.write_col(None::<&[u8]>)?,
                            mysql_async::Value::Bytes(b) => rw.write_col(b.as_slice())?,
                            v => rw.write_col(v.as_sql(true).as_bytes())?,
                        }
                    }
                    rw.end_row().await?;
                }
                results = rw.finish_one().await?;
            }
        }
    }
    results.no_more_results().await
}

/// The client left: its backend connections go back to the pool, except
/// one whose transaction did not end cleanly (open, or rolled back by the
/// proxy and not yet ended by the client, or any under `autocommit=0`),
/// which is closed: the server rolls that transaction back.
impl Drop for Session {
    fn drop(&mut self) {
        let Some((user, _)) = self.account.lock().ok().and_then(|a| a.clone()) else {
            return;
        };
        let unclean: Option<String> = match &self.txn {
            Txn::Open(b) => Some(b.url.clone()),
            _ => None,
        };
        for (url, link) in self.links.drain() {
            if unclean.as_deref() == Some(url.as_str()) || !self.autocommit {
                drop(link.conn);
            } else {
                self.shared.pool.give_back(url, user.clone(), link.conn);
            }
        }
    }
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin + 'static> AsyncMysqlShim<W> for Session {
    type Error = io::Error;

    fn version(&self) -> String {
        "8.0.0-revdoor-proxy".to_string()
    }

    fn connect_id(&self) -> u32 {
        self.id
    }

    fn salt(&self) -> [u8; 20] {
        self.salt
    }

    async fn authenticate(
        &self,
        auth_plugin: &str,
        username: &[u8],
        salt: &[u8],
        auth_data: &[u8],
    ) -> bool {
        let user = String::from_utf8_lossy(username).into_owned();
        if auth_plugin != "mysql_native_password" {
            tracing::info!(session = self.id, %user, auth_plugin, "refused: unsupported auth plugin");
            return false;
        }
        match self.shared.accounts.check(&user, salt, auth_data) {
            Some(password) => {
                if let Ok(mut a) = self.account.lock() {
                    *a = Some((user, password.to_string()));
                }
                true
            }
            None => {
                tracing::info!(session = self.id, %user, "refused: unknown account or wrong password");
                false
            }
        }
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.error(
            ErrorKind::ER_UNSUPPORTED_PS,
            b"revdoor proxy: prepared statements are not routed yet; send text statements (e.g. a client option to emulate prepares)",
        )
        .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        results
            .error(
                ErrorKind::ER_UNSUPPORTED_PS,
                b"revdoor proxy: prepared statements are not routed yet",
            )
            .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_query<'a>(
        &'a mut self,
        sql: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        let r = self.query(sql).await;
        let in_txn = !matches!(self.txn, Txn::Idle) || self.begin.is_some();
        reply(results, r, in_txn).await
    }

    async fn on_init<'a>(&'a mut self, db: &'a str, w: InitWriter<'a, W>) -> io::Result<()> {
        match self.session_state("", Kind::Use(db.to_string())).await {
            Ok(_) => w.ok().await,
            Err(f) => w.error(error_kind(f.code), f.msg.as_bytes()).await,
        }
    }
}
