//! Table definitions of the source, and the checks made before anything
//! starts.
//!
//! Capture reads each moved table's columns and primary key from
//! `information_schema` and turns them into a [`TableSchema`] (the Avro
//! schemas and value conversions derive from it): the table as it is now,
//! for copied rows and to refine the definitions capture reads from the
//! binlog's table maps, which rows are published with (capture's
//! `tablemap`). A table that is missing, is system-versioned (MariaDB),
//! has no primary key, or has a column type revdoor cannot carry without
//! loss is refused here with a definite error naming the table, the column
//! and what to do — before a single event is published.
//!
//! # MariaDB JSON
//!
//! MariaDB stores `JSON` as `LONGTEXT` with a `CHECK (json_valid(col))`
//! constraint; only `information_schema.CHECK_CONSTRAINTS` tells them apart.
//! On MySQL, `JSON` is its own `DATA_TYPE`.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use revdoor_core::sqltype::{ColumnDef, SqlType, TableSchema};

use crate::MysqlError;

/// Load and check the definition of `db.table`.
pub async fn load_table_schema(
    conn: &mut Conn,
    db: &str,
    table: &str,
) -> Result<TableSchema, MysqlError> {
    type ColRow = (String, String, String, Option<String>, String);
    let cols: Vec<ColRow> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, IS_NULLABLE \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(|e| MysqlError::query("read table columns", e))?;
    if cols.is_empty() {
        return Err(MysqlError::Refused(format!(
            "table {db}.{table} does not exist on the source (or the revdoor account cannot see it: \
             grant it SELECT on {db}.*)"
        )));
    }
    // MariaDB's `WITH SYSTEM VERSIONING`: its row_start / row_end period
    // columns are hidden from COLUMNS but part of the primary key, and its
    // history rows never reach the binlog as such. Refused by name.
    let table_type: Option<String> = conn
        .exec_first(
            "SELECT TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .map_err(|e| MysqlError::query("read table type", e))?;
    if table_type.as_deref() == Some("SYSTEM VERSIONED") {
        return Err(MysqlError::Refused(format!(
            "table {db}.{table} is system-versioned (WITH SYSTEM VERSIONING): revdoor moves current \
             rows only and cannot carry its history or its row_start/row_end period; move it \
             without history (`ALTER TABLE {db}.{table} DROP SYSTEM VERSIONING` drops the history: \
             keep a copy first if you need it), or leave it out of the workflow"
        )));
    }
    let primary_key: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(|e| MysqlError::query("read primary key", e))?;
    if primary_key.is_empty() {
        return Err(MysqlError::Refused(format!(
            "table {db}.{table} has no primary key: revdoor needs one to apply every change exactly \
             once; add a PRIMARY KEY (or a NOT NULL UNIQUE key promoted to primary) and retry"
        )));
    }
    // MariaDB only; on MySQL this table has no TABLE_NAME column and JSON is
    // a type of its own, so an error here just means "no such constraints".
    let json_checks: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .unwrap_or_default();
    let mut columns = Vec::with_capacity(cols.len());
    for (name, data_type, column_type, charset, nullable) in cols {
        let is_json = json_checks.iter().any(|c| {
            c.replace(' ', "")
                .eq_ignore_ascii_case(&format!("json_valid(`{name}`)"))
        });
        let sql_type = SqlType::from_information_schema_with_json_check(
            &data_type,
            &column_type,
            charset.as_deref(),
            is_json,
        )
        .map_err(|e| {
            MysqlError::Refused(format!(
                "column {db}.{table}.{name} ({column_type}) cannot be moved by revdoor: {e}; \
                 change its type or leave the table out of the workflow"
            ))
        })?;
        columns.push(ColumnDef::new(name, sql_type, nullable == "YES"));
    }
    let schema = TableSchema {
        db: db.to_string(),
        table: table.to_string(),
        columns,
        primary_key,
    };
    schema
        .validate()
        .map_err(|e| MysqlError::Refused(format!("table {db}.{table}: {e}")))?;
    Ok(schema)
}

/// The server's collations by id: the character set of each and its
/// longest character in bytes. Table maps name a character column's
/// collation by id (`binlog_row_metadata=FULL`); capture reads this once
/// per run to name the column's character set and its length in
/// characters.
pub async fn load_collations(
    conn: &mut Conn,
) -> Result<std::collections::HashMap<u16, (String, u32)>, MysqlError> {
    let rows: Vec<(u64, String, u64)> = conn
        .query(
            "SELECT co.ID, co.CHARACTER_SET_NAME, cs.MAXLEN \
             FROM information_schema.COLLATIONS co \
             JOIN information_schema.CHARACTER_SETS cs \
               ON cs.CHARACTER_SET_NAME = co.CHARACTER_SET_NAME \
             WHERE co.ID IS NOT NULL",
        )
        .await
        .map_err(|e| MysqlError::query("read the server's collations", e))?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, cs, maxlen)| {
            Some((
                u16::try_from(id).ok()?,
                (cs.to_ascii_lowercase(), maxlen as u32),
            ))
        })
        .collect())
}
