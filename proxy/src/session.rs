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
use tokio::io::AsyncWrite;
use tokio::sync::watch;

use crate::accounts::Accounts;
use crate::routing::{Backend, Routing};
use crate::statement::{self, Kind, Tables};

/// What every session of a proxy shares.
pub struct Shared {
    pub accounts: Accounts,
    pub buffer_window: Duration,
    pub routing: watch::Receiver<Arc<Routing>>,
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

/// One result set (or OK) read from a backend.
struct ResultSet {
    columns: Option<Arc<[mysql_async::Column]>>,
    rows: Vec<mysql_async::Row>,
    affected_rows: u64,
    last_insert_id: u64,
    info: String,
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
            let opts = revdoor_mysql::conn::exact(&b.url)
                .map_err(|e| Fail::proxy(format!("backend {b:?}: bad URL: {e}")))?;
            let opts: Opts = OptsBuilder::from_opts(opts)
                .user(Some(user))
                .pass(Some(password))
                .db_name(None::<String>)
                .into();
            let conn = Conn::new(opts).await.map_err(|e| fail_of(e, b))?;
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
    fn route(&self, sql: &str, routing: &Routing) -> Result<Backend, Fail> {
        let qualify = |db: &Option<String>, t: &str| -> Option<String> {
            db.as_ref().or(self.db.as_ref()).map(|d| format!("{d}.{t}"))
        };
        let mut found: Option<(&str, &crate::routing::Moved)> = None;
        match statement::tables(sql) {
            Tables::Parsed(tables) => {
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
        match found {
            Some((k, m)) => m
                .serving
                .clone()
                .map_err(|e| Fail::proxy(format!("table {k}: {e}"))),
            None => routing.home.clone().map_err(Fail::proxy),
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
            let routed = self.route(sql, &routing)?;
            let first = matches!(self.txn, Txn::Idle);
            let b = match &self.txn {
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

async fn read_all(conn: &mut Conn, sql: &str) -> Result<Vec<ResultSet>, mysql_async::Error> {
    let mut qr = conn.query_iter(sql).await?;
    let mut sets = Vec::new();
    loop {
        let columns = qr.columns();
        let rows: Vec<mysql_async::Row> = qr.collect().await?;
        sets.push(ResultSet {
            columns,
            rows,
            affected_rows: qr.affected_rows(),
            last_insert_id: qr.last_insert_id().unwrap_or(0),
            info: qr.info().into_owned(),
        });
        if qr.is_empty() {
            break;
        }
    }
    Ok(sets)
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
                    for i in 0..row.len() {
                        match row.as_ref(i) {
                            None | Some(mysql_async::Value::NULL) => rw.write_col(None::<&[u8]>)?,
                            Some(mysql_async::Value::Bytes(b)) => rw.write_col(b.as_slice())?,
                            Some(v) => rw.write_col(v.as_sql(true).as_bytes())?,
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
