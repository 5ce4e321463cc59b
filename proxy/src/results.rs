//! Result sets read whole from a backend, to be sent to the client or
//! merged across shards first.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

/// One result set (or OK) read from a backend.
pub struct ResultSet {
    pub columns: Option<Arc<[mysql_async::Column]>>,
    pub rows: Vec<Vec<Value>>,
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub info: String,
}

/// Run `sql` on `conn`, reading every result set.
pub async fn read_all(conn: &mut Conn, sql: &str) -> Result<Vec<ResultSet>, mysql_async::Error> {
    let mut qr = conn.query_iter(sql).await?;
    let mut sets = Vec::new();
    loop {
        let columns = qr.columns();
        let rows: Vec<mysql_async::Row> = qr.collect().await?;
        sets.push(ResultSet {
            columns,
            rows: rows.into_iter().map(mysql_async::Row::unwrap).collect(),
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
