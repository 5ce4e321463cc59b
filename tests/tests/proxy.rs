//! `revdoor proxy` (issue 14) on the real stack: unmodified clients that
//! know only the proxy's address follow switch-traffic and reverse-traffic.
//!
//! - `bank_writer_follows_switches_through_proxy`: the bank writer with
//!   `--url` of the proxy, a workflow moving 1 → 2 shards, across five
//!   switch/reverse round trips and a final switch: 0 client errors (no
//!   fence error ever reaches it: the proxy holds and retries), every
//!   acknowledged write present and the invariants on both sides (every
//!   row on its shard), and a prober of the fenced side that never
//!   succeeds.
//! - `sharded_routing_by_key`: on a sharded serving side, single-key reads
//!   and writes land on their shard (checked on the servers), `IN` over
//!   two shards and reads without a key reach both and are merged into
//!   what the unsharded source returns, writes without a key or across two
//!   shards are refused and change nothing, a transaction's statement that
//!   would cross to a second shard is refused and the transaction goes
//!   on.
//! - `pooled_connections_and_disconnect_mid_transaction`: a backend
//!   connection pooled after one session is taken by the next with no
//!   state of the first and its own replayed; a client gone
//!   mid-transaction has its backend connection closed, not pooled, and
//!   its write never commits.
//! - `transaction_across_fence_and_bad_input`: a transaction open when the
//!   fence lands gets a clear error and none of its writes commit, while a
//!   client starting after the fence waits and commits on the new side;
//!   unknown account and wrong password (refused: 1698, SQLSTATE 28000), prepared statements, malformed SQL
//!   and statements the parser does not know.
//!
//! Each test creates one workflow.

use std::net::TcpListener;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use revdoor_core::keyrange::KeyRange;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_tests::door::Door;
use revdoor_tests::{wait_for, Revdoor};

/// Start `revdoor proxy run` for keyspace `src` on a free port with the
/// stack's application account; its URL without credentials.
async fn proxy(door: &Door, name: &str) -> (Revdoor, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let accounts = door.ctx.logs.join(format!("{name}.accounts"));
    std::fs::write(&accounts, "# the stack's application account\napp:app-pw\n")
        .expect("write accounts file");
    let listen = format!("127.0.0.1:{port}");
    let p = door.ctx.spawn(
        name,
        &[
            "proxy",
            "run",
            "--listen",
            &listen,
            "--keyspace",
            "src",
            "--accounts-file",
            &accounts.to_string_lossy(),
            "--buffer-window",
            "20s",
        ],
    );
    let url = format!("mysql://{listen}");
    let u = &url;
    wait_for(
        "proxy accepts clients",
        Duration::from_secs(30),
        || async move { Ok(client(u, "app", "app-pw").await.ok().map(|_| ())) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.log_text()));
    (p, url)
}

async fn client(url: &str, user: &str, password: &str) -> Result<Conn, mysql_async::Error> {
    let opts = mysql_async::OptsBuilder::from_opts(Opts::from_url(url).expect("proxy URL"))
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    Conn::new(opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_writer_follows_switches_through_proxy() {
    let door = Door::create("proxy_bank", 1, &[("-80", 2), ("80-", 3)], 50).await;
    let (mut coordinator, mut worker) = door.started().await;
    let (mut px, url) = proxy(&door, "proxy").await;
    let mut writer = door.writer_with("writer", 1, 100, &["--url", &url]);
    let mut prober = door.prober("prober");
    tokio::time::sleep(Duration::from_secs(2)).await;

    for round in 0..5 {
        for (action, phase) in [
            ("switch-traffic", "switched"),
            ("reverse-traffic", "reversed"),
        ] {
            door.wait_streams_running(Duration::from_secs(60)).await;
            let out = door.cutover(action, &["--max-lag", "10s", "--timeout", "30s"]);
            assert!(
                out.ok,
                "round {round} {action}: {}{}",
                out.stdout, out.stderr
            );
            assert_eq!(door.phase(), phase);
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &[]);
    assert!(out.ok, "final switch: {}{}", out.stdout, out.stderr);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let w = door.finish_load(&mut writer, "writer").await;
    let p = door.finish_load(&mut prober, "prober").await;
    assert_eq!(
        p["violations"], 0,
        "a write succeeded on the fenced side: {p}"
    );
    assert!(p["probes_refused"].as_u64().unwrap_or(0) > 0, "{p}");
    // The client never saw an error: fence errors were held and retried by
    // the proxy, nothing else failed.
    assert_eq!(w["other_errors"], 0, "client errors through the proxy: {w}");
    assert_eq!(
        w["fenced_retries"], 0,
        "a fence error reached the client: {w}"
    );
    let acked = w["acked"].as_u64().unwrap_or(0);
    assert!(acked > 100, "too few operations through the proxy: {w}");

    door.wait_converged(Duration::from_secs(60)).await;
    let checked = door
        .check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("invariants: {e:#}"));
    assert_eq!(checked as u64, acked);
    eprintln!("through the proxy: {w}");

    px.assert_no_unexpected_errors(&[]);
    assert!(
        !px.log_text().contains("app-pw"),
        "the proxy logged a password"
    );
    px.stop(Duration::from_secs(10));
    writer.stop(Duration::from_secs(5));
    worker.stop(Duration::from_secs(10));
    coordinator.stop(Duration::from_secs(10));
}

/// The bank tables on server 1 moved 1 → 1 to server 2 (workflow not yet
/// created), and a table `notes` that no workflow moves.
async fn door_with_notes(name: &str) -> Door {
    let door = Door::create(name, 1, &[("-", 2)], 10).await;
    let db = &door.ctx.db;
    door.ctx
        .sql(
            1,
            &[&format!("CREATE TABLE {db}.notes (id INT PRIMARY KEY)")],
        )
        .await;
    door
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transaction_across_fence_and_bad_input() {
    let door = door_with_notes("proxy_txn").await;
    let db = door.ctx.db.clone();
    let (mut coordinator, mut worker) = door.started().await;
    let (mut px, url) = proxy(&door, "proxy").await;

    // Accounts: unknown and wrong password refused.
    for (user, pw) in [("nobody", "app-pw"), ("app", "wrong")] {
        match client(&url, user, pw).await {
            Err(mysql_async::Error::Server(se)) => {
                assert_eq!(
                    (se.code, se.state.as_str()),
                    (1698, "28000"),
                    "{user}: {se:?}"
                )
            }
            other => panic!("{user}/{pw} was not refused: {:?}", other.map(|_| ())),
        }
    }
    let mut a = client(&url, "app", "app-pw").await.expect("app logs in");
    a.query_drop(format!("USE {db}")).await.expect("USE");
    // Malformed SQL: the server's own error, from keyspace src.
    match a.query_drop("SELEC 1 FROM notes").await {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1064, "{se:?}"),
        other => panic!("malformed SQL: {other:?}"),
    }
    // The parser does not know it and it names a moved table: refused.
    match a.query_drop("HANDLER ledger OPEN").await {
        Err(mysql_async::Error::Server(se)) => assert!(
            se.message.contains("does not understand") && se.message.contains("ledger"),
            "{se:?}"
        ),
        other => panic!("unparsed statement on a moved table: {other:?}"),
    }
    // Prepared statements are refused clearly (not routed yet).
    match a.exec_drop("SELECT ?", (1,)).await {
        Err(mysql_async::Error::Server(se)) => {
            assert!(se.message.contains("prepared statements"), "{se:?}")
        }
        other => panic!("prepared statement: {other:?}"),
    }
    // Reads route to the serving side (the source before any switch).
    let n: Option<i64> = a
        .query_first("SELECT COUNT(*) FROM accounts")
        .await
        .expect("count through the proxy");
    assert_eq!(n, Some(10));

    // A transaction with a write, open when the fence lands.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("INSERT INTO notes VALUES (1)").await.unwrap();
    coordinator.stop(Duration::from_secs(10));
    let (mut paused, mut cli) = door.switch_paused_after_fence().await;
    // A client that starts after the fence: held, then committed on the
    // target once routing flips.
    let late = {
        let url = url.clone();
        let db = db.clone();
        tokio::spawn(async move {
            let mut b = client(&url, "app", "app-pw").await?;
            b.query_drop(format!(
                "INSERT INTO {db}.ledger (op_id, account_id, amount) VALUES (-2, 1, 0)"
            ))
            .await
        })
    };
    match a
        .query_drop("INSERT INTO ledger (op_id, account_id, amount) VALUES (-1, 1, 0)")
        .await
    {
        Err(mysql_async::Error::Server(se)) => {
            assert!(se.message.contains("nothing of it committed"), "{se:?}")
        }
        other => panic!("a transaction across the fence went on: {other:?}"),
    }
    match a.query_drop("COMMIT").await {
        Err(mysql_async::Error::Server(se)) => {
            assert!(se.message.contains("COMMIT refused"), "{se:?}")
        }
        other => panic!("COMMIT of the fenced transaction: {other:?}"),
    }
    a.query_drop("ROLLBACK")
        .await
        .expect("ROLLBACK after the refusal");
    late.await.unwrap().unwrap_or_else(|e| {
        panic!(
            "the client that started after the fence failed: {e}\n{}",
            px.log_text()
        )
    });
    assert_eq!(
        cli.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        cli.log_text()
    );
    assert_eq!(door.phase(), "switched");
    assert!(
        px.log_text().contains("held until routing changes"),
        "the late client was not held:\n{}",
        px.log_text()
    );

    // Nothing of the fenced transaction committed anywhere; the late write
    // is on the target.
    let notes = door.ctx.rows(1, "notes").await;
    assert!(
        notes.is_empty(),
        "the fenced transaction's write committed: {notes:?}"
    );
    let ids = |rows: Vec<Vec<Option<String>>>| -> Vec<String> {
        rows.into_iter().filter_map(|r| r[0].clone()).collect()
    };
    let target_ledger = ids(door.ctx.rows(2, "ledger").await);
    assert!(
        target_ledger.contains(&"-2".to_string()),
        "{target_ledger:?}"
    );
    assert!(
        !target_ledger.contains(&"-1".to_string()),
        "{target_ledger:?}"
    );
    assert!(!ids(door.ctx.rows(1, "ledger").await).contains(&"-1".to_string()));

    px.stop(Duration::from_secs(10));
    paused.stop(Duration::from_secs(10));
    worker.stop(Duration::from_secs(10));
}

/// The account ids of `door` whose keyspace id falls in `range`.
fn ids_in(door: &Door, range: &str) -> Vec<i64> {
    let range: KeyRange = range.parse().expect("key range");
    (1..=door.accounts)
        .filter(|id| range.contains(keyspace_id(&[KeyValue::Int(*id)])))
        .collect()
}

/// The server id a statement through the proxy ran on.
async fn server_id_of(c: &mut Conn, sql: &str) -> Vec<u32> {
    c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A statement through the proxy refused with a message holding `want`.
async fn refused(c: &mut Conn, sql: &str, want: &str) {
    match c.query_drop(sql).await {
        Err(mysql_async::Error::Server(se)) => {
            assert!(se.message.contains(want), "{sql}: {se:?}")
        }
        other => panic!("{sql} was not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sharded_routing_by_key() {
    let door = Door::create("proxy_shard", 1, &[("-80", 2), ("80-", 3)], 20).await;
    let db = door.ctx.db.clone();
    let (mut coordinator, mut worker) = door.started().await;
    let out = door.cutover("switch-traffic", &["--max-lag", "10s", "--timeout", "30s"]);
    assert!(out.ok, "switch-traffic: {}{}", out.stdout, out.stderr);
    let (mut px, url) = proxy(&door, "proxy").await;
    let mut c = client(&url, "app", "app-pw").await.expect("app logs in");
    c.query_drop(format!("USE {db}")).await.expect("USE");
    let mut server_ids = Vec::new();
    for i in [2, 3] {
        let id: Option<u32> = door
            .ctx
            .conn(i)
            .await
            .query_first("SELECT @@server_id")
            .await
            .unwrap();
        server_ids.push(id.expect("server id"));
    }
    let (low, high) = (ids_in(&door, "-80"), ids_in(&door, "80-"));
    assert!(!low.is_empty() && !high.is_empty(), "{low:?} {high:?}");
    let (a, b) = (low[0], high[0]);

    // Scatter reads return what the unsharded source holds (no writes yet).
    let mut src = door.ctx.conn(1).await;
    for sql in [
        "SELECT id, balance, ops FROM accounts ORDER BY id",
        "SELECT id FROM accounts ORDER BY id DESC LIMIT 3",
        "SELECT COUNT(*), SUM(balance), MIN(id), MAX(id) FROM accounts",
        "SELECT account_id, amount FROM ledger ORDER BY account_id, 2",
    ] {
        let direct: Vec<mysql_async::Row> = src
            .query(format!(
                "{} /* source */",
                sql.replace("FROM ", &format!("FROM {db}."))
            ))
            .await
            .unwrap_or_else(|e| panic!("{sql} on the source: {e}"));
        let proxied: Vec<mysql_async::Row> =
            c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let text = |rows: Vec<mysql_async::Row>| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|r| r.unwrap().iter().map(|v| v.as_sql(true)).collect())
                .collect()
        };
        assert_eq!(text(proxied), text(direct), "{sql}");
    }
    // A read with no key reaches both shards; one with a key, its shard.
    let mut both = server_id_of(&mut c, "SELECT @@server_id FROM accounts").await;
    both.sort();
    both.dedup();
    assert_eq!(both.len(), 2, "{both:?}");
    for (id, server) in [(a, server_ids[0]), (b, server_ids[1])] {
        let on = server_id_of(
            &mut c,
            &format!("SELECT @@server_id FROM accounts WHERE id = {id}"),
        )
        .await;
        assert_eq!(on, vec![server], "account {id}");
    }
    let on = server_id_of(
        &mut c,
        &format!("SELECT @@server_id FROM accounts WHERE id IN ({a}, {b}) ORDER BY 1"),
    )
    .await;
    let mut want = server_ids.clone();
    want.sort();
    assert_eq!(on, want, "IN over both shards: one shard each, merged");

    // Single-key writes land on their shard.
    c.query_drop(format!(
        "INSERT INTO ledger (op_id, account_id, amount) VALUES (-10, {a}, 0)"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO ledger (op_id, account_id, amount) VALUES (-11, {b}, 0), (-12, {b}, 0)"
    ))
    .await
    .unwrap();
    c.query_drop(format!("UPDATE accounts SET ops = ops + 7 WHERE id = {b}"))
        .await
        .unwrap();
    let ops = |rows: Vec<Vec<Option<String>>>| -> Vec<(String, String)> {
        rows.into_iter()
            .map(|r| {
                (
                    r[0].clone().unwrap_or_default(),
                    r[2].clone().unwrap_or_default(),
                )
            })
            .collect()
    };
    let ledger_ids = |rows: Vec<Vec<Option<String>>>| -> Vec<String> {
        rows.into_iter()
            .filter_map(|r| r[0].clone())
            .filter(|v| v.starts_with('-'))
            .collect()
    };
    assert_eq!(ledger_ids(door.ctx.rows(2, "ledger").await), vec!["-10"]);
    assert_eq!(
        ledger_ids(door.ctx.rows(3, "ledger").await),
        vec!["-12", "-11"]
    );
    assert!(ops(door.ctx.rows(3, "accounts").await).contains(&(b.to_string(), "7".to_string())));

    // Writes that pin no single shard are refused, and change nothing.
    refused(&mut c, "UPDATE accounts SET ops = 0", "pins no shard").await;
    refused(
        &mut c,
        &format!("DELETE FROM ledger WHERE account_id IN ({a}, {b})"),
        "go to 2 shards",
    )
    .await;
    refused(
        &mut c,
        &format!(
            "INSERT INTO ledger (op_id, account_id, amount) VALUES (-13, {a}, 0), (-14, {b}, 0)"
        ),
        "go to 2 shards",
    )
    .await;
    refused(
        &mut c,
        "SELECT account_id, COUNT(*) FROM ledger GROUP BY account_id",
        "GROUP BY",
    )
    .await;
    // A transaction stays on one shard: the crossing statement is refused,
    // the transaction goes on and commits what it did on its shard.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("UPDATE accounts SET ops = ops + 1 WHERE id = {a}"))
        .await
        .unwrap();
    refused(
        &mut c,
        &format!("UPDATE accounts SET ops = ops + 1 WHERE id = {b}"),
        "stays on one shard",
    )
    .await;
    refused(
        &mut c,
        "SELECT COUNT(*) FROM accounts",
        "stays on one shard",
    )
    .await;
    c.query_drop("COMMIT")
        .await
        .expect("COMMIT of the one-shard transaction");
    assert!(ops(door.ctx.rows(2, "accounts").await).contains(&(a.to_string(), "1".to_string())));
    assert!(ops(door.ctx.rows(3, "accounts").await).contains(&(b.to_string(), "7".to_string())));
    assert_eq!(ledger_ids(door.ctx.rows(2, "ledger").await), vec!["-10"]);
    assert_eq!(
        ledger_ids(door.ctx.rows(3, "ledger").await),
        vec!["-12", "-11"]
    );
    // Everything written through the proxy reaches the source (reverse
    // streams), and every row is on its shard there.
    door.wait_converged(Duration::from_secs(60)).await;

    px.assert_no_unexpected_errors(&[]);
    px.stop(Duration::from_secs(10));
    worker.stop(Duration::from_secs(10));
    coordinator.stop(Duration::from_secs(10));
}

/// The id of the backend connection a client's session uses.
async fn backend_id(c: &mut Conn) -> u64 {
    let id: Option<u64> = c
        .query_first("SELECT CONNECTION_ID()")
        .await
        .expect("CONNECTION_ID()");
    id.expect("a connection id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pooled_connections_and_disconnect_mid_transaction() {
    // Keyspaces only: no workflow, every table is the home keyspace's.
    let door = door_with_notes("proxy_pool").await;
    let db = door.ctx.db.clone();
    let (mut px, url) = proxy(&door, "proxy").await;

    // A session leaves state on its backend connection, then goes.
    let mut first = client(&url, "app", "app-pw").await.expect("app logs in");
    first.query_drop(format!("USE {db}")).await.unwrap();
    first
        .query_drop("SET @@session.sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    first.query_drop("SET @mark = 5").await.unwrap();
    let used = backend_id(&mut first).await;
    first.disconnect().await.unwrap();
    // Later sessions (held open, so they give nothing back meanwhile) get
    // that connection once it is reset, with none of that state and their
    // own replayed.
    let mut held = Vec::new();
    let mut reused = None;
    for _ in 0..50 {
        let mut c = client(&url, "app", "app-pw").await.expect("app logs in");
        c.query_drop(format!("USE {db}")).await.unwrap();
        if backend_id(&mut c).await == used {
            reused = Some(c);
            break;
        }
        held.push(c);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = reused.expect("the first session's backend connection was pooled and taken again");
    let (mark, mode, current): (Option<i64>, String, Option<String>) = c
        .query_first("SELECT @mark, @@session.sql_mode, DATABASE()")
        .await
        .unwrap()
        .expect("a row");
    assert_eq!(mark, None, "a user variable crossed sessions");
    assert!(
        !mode.contains("ANSI_QUOTES"),
        "sql_mode crossed sessions: {mode}"
    );
    assert_eq!(current.as_deref(), Some(db.as_str()), "USE not replayed");
    drop(held);

    // A client that disconnects mid-transaction: its connection is closed,
    // not pooled, and nothing of the transaction commits.
    let mut t = client(&url, "app", "app-pw").await.expect("app logs in");
    t.query_drop(format!("USE {db}")).await.unwrap();
    t.query_drop("BEGIN").await.unwrap();
    t.query_drop("INSERT INTO notes VALUES (2)").await.unwrap();
    let open = backend_id(&mut t).await;
    drop(t); // no COMMIT, no ROLLBACK, no COM_QUIT sent first
    let ctx = &door.ctx;
    wait_for(
        "the mid-transaction connection closed",
        Duration::from_secs(30),
        || async move {
            let mut a = ctx.conn(1).await;
            let n: Option<i64> = a
                .exec_first(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                    (open,),
                )
                .await?;
            Ok((n == Some(0)).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        door.ctx.rows(1, "notes").await.is_empty(),
        "the abandoned transaction committed"
    );
    c.query_drop("INSERT INTO notes VALUES (3)")
        .await
        .expect("the pooled connection works");
    assert_eq!(
        door.ctx.rows(1, "notes").await,
        vec![vec![Some("3".to_string())]]
    );

    px.assert_no_unexpected_errors(&[]);
    px.stop(Duration::from_secs(10));
}
