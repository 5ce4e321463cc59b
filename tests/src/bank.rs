//! The two-table bank transactions of the apply-over-latency benchmark and
//! test (issue 18 item 7): 100 `accounts`, and per transaction one
//! `accounts` UPDATE and one `ledger` INSERT, captured by one
//! `revdoor capture run` of both tables.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::{args, Revdoor, TestCtx};

/// Accounts the transactions spread over.
pub const ACCOUNTS: i64 = 100;

/// `accounts` (all at balance 0) and an empty `ledger` in the test's
/// database on each of `servers` (which `create_db` made).
pub async fn create_tables(ctx: &TestCtx, servers: &[usize]) {
    let db = &ctx.db;
    let fill: Vec<String> = (0..ACCOUNTS).map(|i| format!("({i}, 0)")).collect();
    for &server in servers {
        ctx.sql(
            server,
            &[
                &format!("CREATE TABLE {db}.accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)"),
                &format!("CREATE TABLE {db}.ledger (id BIGINT PRIMARY KEY, account BIGINT NOT NULL, amount BIGINT NOT NULL)"),
                &format!("INSERT INTO {db}.accounts VALUES {}", fill.join(", ")),
            ],
        )
        .await;
    }
}

/// Bank transaction `id` on the source: an `accounts` UPDATE and a
/// `ledger` INSERT.
pub async fn txn(src: &mut Conn, db: &str, id: i64) {
    let account = (id * 7919) % ACCOUNTS;
    src.query_drop(format!(
        "BEGIN; UPDATE {db}.accounts SET balance = balance + 1 WHERE id = {account}; \
         INSERT INTO {db}.ledger VALUES ({id}, {account}, 1); COMMIT"
    ))
    .await
    .expect("bank transaction");
}

/// `revdoor capture run` of both tables on `source` from GTID position
/// `start`.
pub fn capture(ctx: &TestCtx, source: usize, start: &str) -> Revdoor {
    let db = &ctx.db;
    ctx.spawn(
        "capture",
        &args(&ctx.capture_args(
            &ctx.revdoor_url(source),
            &format!("{db}.accounts,{db}.ledger"),
            start,
        )),
    )
}
