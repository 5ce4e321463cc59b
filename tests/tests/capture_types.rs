//! Every column type crosses without loss (issue 3, "Type round trip";
//! issue 13, "Type round trip on a MySQL source").
//!
//! A table with every MySQL/MariaDB column type gets rows of edge values
//! (min, max, NULL, empty, multibyte, zero dates and dates with a zero
//! part, negative TIME down to a microsecond, TIME/DATETIME/TIMESTAMP of
//! every fractional width the binlog packs differently, BIT(64) all ones,
//! BIT(10), DECIMAL(65,30) and DECIMAL(30,30), an ENUM of 300 members and a
//! SET of 9), then updates and a delete. Checked four ways: each decoded
//! event equals the source row as a text-protocol SELECT shows it (both in
//! canonical form); an independent Avro implementation (fastavro,
//! `tests/avro/decode.py`) decodes every message with the published schema
//! and agrees on key values, edge values, JSON text and geometry bytes;
//! after apply every target equals the source row for row (the text every
//! column's `SELECT` gives, binary values as bytes); and a second capture
//! copying the table (`--copy`) reads every row as the stream carried it.
//!
//! The sources and targets:
//! - MariaDB → MariaDB.
//! - MySQL → MySQL and MySQL → MariaDB: one capture, two applies of its
//!   topic. The MySQL rows add what MySQL stores its own way: binary JSON
//!   (DECIMAL(65,30), `0.50` and `2.500` inside documents, the doubles
//!   1e300, 5e-324 and -0.0, 18446744073709551615 and -9223372036854775808,
//!   nested arrays, emoji, CJK, Cyrillic and empty keys, control
//!   characters, temporal and binary values, a document and an array over
//!   64 KiB — the large format —, 5,000 DECIMALs in one document, a
//!   document 31 deep, a DECIMAL and a -0.0 as the whole document), a
//!   POLYGON with SRID 4326 and a POINT, BIT(64) all ones, TIME(6)
//!   '-838:59:59.000000', YEAR 1901 and 2155, DATETIME(6) and TIMESTAMP(6)
//!   with microseconds, ENUM/SET, BIGINT UNSIGNED max.
//! - MySQL → MySQL with a document 100 deep, as deep as MySQL parses.
//!
//! Where the engines differ, and what the rule is then:
//! - Zero dates: MySQL's default `sql_mode` (`NO_ZERO_DATE`,
//!   `NO_ZERO_IN_DATE`, strict) refuses `'0000-00-00'` and `'2024-00-00'`;
//!   the MySQL source session runs with MariaDB's default mode (strict,
//!   zero dates allowed), so both sources hold the same rows. Apply's own
//!   `sql_mode` allows zero dates, so both target engines take them.
//! - JSON on MySQL is binary: capture prints it as MySQL's `SELECT` does, so
//!   a decoded event equals the source's text. A MySQL target parses that
//!   text back into binary JSON, its DECIMALs set back in as DECIMALs: the
//!   target's `SELECT` gives the source's text byte for byte, and
//!   `JSON_TYPE` keeps DECIMAL, DOUBLE, INTEGER and UNSIGNED INTEGER. What
//!   JSON text cannot say is lost on a MySQL target, the text staying the
//!   same: a temporal or binary value's type (`"2024-01-02
//!   03:04:05.123456"` is a STRING there, not a DATETIME; `"base64:type15:…"`
//!   a STRING, not a BLOB), and the type of a DECIMAL whose digits are also
//!   how a double prints (`2.25` from `DECIMAL(3,2)` becomes a DOUBLE).
//! - MariaDB's JSON is `LONGTEXT` and keeps the text it is given: a MariaDB
//!   target holds MySQL's `SELECT` text, equal again. Its `JSON_VALID`
//!   refuses documents 32 or more levels deep, so a deeper MySQL document
//!   cannot go into a MariaDB `JSON` column (ERROR 4025 from its `CHECK`;
//!   the stream halts there): only the MySQL target gets the 100-deep one.
//! - Target tables are made from this test's own DDL on each engine, which
//!   names no collation (each engine's default applies); `SHOW CREATE
//!   TABLE` on MySQL names `utf8mb4_0900_ai_ci`, which MariaDB lacks.
//! - Servers are chosen by engine (`REVDOOR_ENGINE_i`), so the tests run on
//!   CI's stack (5 MariaDB, 2 MySQL) and on any with two servers of each
//!   engine.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_core::avro::{canonicalize, single_object_fingerprint};
use revdoor_core::event::{ChangeEvent, ColumnValue, Op, Row};
use revdoor_core::registry::{SchemaRecord, SCHEMAS_TOPIC};
use revdoor_core::sqltype::TableSchema;
use revdoor_tests::{args, gtid_pos, read_changes, read_partition, repo_root, stack, TestCtx};

/// The table: every type, then odd widths and precisions. `e300` is an
/// ENUM of 300 members `v0`..`v299` (two bytes in the binlog), added by
/// [`ddl`].
const DDL: &str = "CREATE TABLE alltypes (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d52 DECIMAL(5,2), f FLOAT, dbl DOUBLE,
  dt DATE, dtm0 DATETIME, dtm6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  tm TIME, tm6 TIME(6), y YEAR,
  b1 BIT(1), b64 BIT(64), e ENUM('a','b','c'), st SET('x','y','z'),
  c CHAR(10) CHARACTER SET utf8mb4, vc VARCHAR(100) CHARACTER SET utf8mb4,
  vl VARCHAR(100) CHARACTER SET latin1, tx TEXT CHARACTER SET utf8mb4,
  bn BINARY(4), vbn VARBINARY(20), bl BLOB,
  j JSON, g GEOMETRY,
  tm1 TIME(1), tm3 TIME(3), dtm3 DATETIME(3), ts2 TIMESTAMP(2) NULL DEFAULT NULL,
  d0 DECIMAL(20,0), d30 DECIMAL(30,30), b10 BIT(10), st9 SET('a','b','c','d','e','f','g','h','i'),
  e300 ENUM(E300)
)";

fn ddl() -> String {
    let members: Vec<String> = (0..300).map(|i| format!("'v{i}'")).collect();
    DDL.replace("ENUM(E300)", &format!("ENUM({})", members.join(",")))
}

const MIN_ROW: &str = "INSERT INTO alltypes VALUES (1,
  -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
  -9223372036854775808, 0,
  '-99999999999999999999999999999999999.999999999999999999999999999999', -999.99, -0.25, -0.125,
  '0000-00-00', '0000-00-00 00:00:00', '1000-01-01 00:00:00.000000',
  '1970-01-01 00:00:01', '1970-01-01 00:00:01.000001',
  '-838:59:59', '-838:59:58.999999', 0,
  b'0', b'0', 'a', '',
  '', '', '', '',
  x'00000000', '', '',
  '{}', ST_GeomFromText('POINT(0 0)'),
  '-838:59:58.9', '-838:59:58.999', '1000-01-01 00:00:00.000', '1970-01-01 00:00:01.01',
  -99999999999999999999, -0.999999999999999999999999999999, b'0', '', 'v0')";

const MAX_ROW: &str = "INSERT INTO alltypes VALUES (2,
  127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
  9223372036854775807, 18446744073709551615,
  '99999999999999999999999999999999999.999999999999999999999999999999', 999.99, 1.5, 12345.5,
  '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999',
  '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999',
  '838:59:59', '838:59:59.000000', 2155,
  b'1', x'FFFFFFFFFFFFFFFF', 'c', 'x,y,z',
  'ü🚪', '🚪 door ünïcødé', x'e9e8ff', REPEAT('ü🚪', 500),
  x'ffffffff', x'00ff00ff', x'000102fffefd',
  '{\"a\":[1,2.5,\"ü\",null,true]}', ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'),
  '838:59:58.9', '838:59:59.000', '9999-12-31 23:59:59.999', '2038-01-19 03:14:07.99',
  99999999999999999999, 0.999999999999999999999999999999, b'1111111111', 'a,b,c,d,e,f,g,h,i', 'v299')";

const NULL_ROW: &str = "INSERT INTO alltypes (id) VALUES (3)";

/// Negative times within a second and odd fractional precisions (the
/// binlog packs 1-2, 3-4 and 5-6 digits in 1, 2 and 3 bytes), dates with
/// a zero part, the smallest DECIMAL(30,30), one-byte-boundary ENUM and SET
/// members.
const FRACTION_ROW: &str = "INSERT INTO alltypes (id, tm6, tm1, tm3, dtm3, ts2, dtm6, dt, dtm0, d0, d30, b10, st9, e300) VALUES (8,
  '-00:00:00.000001', '-00:00:00.1', '-00:00:01.001', '2024-02-29 00:00:00.001', '2001-02-03 04:05:06.01',
  '0000-00-00 00:00:00.000000', '2024-00-00', '2024-02-00 01:02:03',
  -1, 0.000000000000000000000000000001, b'1000000000', 'i', 'v255')";

/// A text-protocol row as the codec's canonical values.
fn canonical_row(schema: &TableSchema, row: &mysql_async::Row) -> Vec<(String, ColumnValue)> {
    schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let v = match row.as_ref(i) {
                Some(mysql_async::Value::Bytes(b)) => ColumnValue::Bytes(b.clone()),
                _ => ColumnValue::Null,
            };
            let c = canonicalize(&col.sql_type, &v)
                .unwrap_or_else(|e| panic!("canonicalize {} ({}): {e}", col.name, col.sql_type));
            (col.name.clone(), c)
        })
        .collect()
}

/// Equal rows, or a panic listing only the columns that differ.
fn assert_rows(label: &str, got: Vec<(String, ColumnValue)>, want: Vec<(String, ColumnValue)>) {
    let diff: Vec<String> = got
        .iter()
        .zip(want.iter())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{}: event {:?} != source {:?}", a.0, a.1, b.1))
        .collect();
    assert!(
        diff.is_empty() && got.len() == want.len(),
        "{label}:\n{}",
        diff.join("\n")
    );
}

fn event_row(row: &Row) -> Vec<(String, ColumnValue)> {
    row.columns
        .iter()
        .cloned()
        .zip(row.values.iter().cloned())
        .collect()
}

/// The common update (of the min row) and delete (of the NULL row).
const UPDATE_MIN: &str = "UPDATE alltypes SET ti = 5, biu = 1, d65 = 0.5, dtm6 = '2024-02-29 12:00:00.5', tm = '-00:00:01', \
     st = 'y', e = 'b', vc = NULL, b64 = b'101', j = '[]', ts6 = '2001-02-03 04:05:06.7' WHERE id = 1";
const DELETED: u32 = 3;

/// MySQL's rows beyond the common ones: binary JSON, spatial values with
/// an SRID, and the temporal and numeric edges MySQL stores its own way.
const MYSQL_EDGE_ROW: &str = "INSERT INTO alltypes (id, biu, b64, tm6, y, dtm6, ts6, e, st, j, g) VALUES (4,
  18446744073709551615, x'FFFFFFFFFFFFFFFF', '-838:59:59.000000', 1901,
  '2024-02-29 23:59:59.123456', '2001-02-03 04:05:06.654321', 'b', 'x,z',
  JSON_OBJECT(
    'dec65', CAST('-99999999999999999999999999999999999.999999999999999999999999999999' AS DECIMAL(65,30)),
    'half', CAST(0.50 AS DECIMAL(3,2)),
    'doubles', JSON_ARRAY(1e300, 5e-324, -0.0e0, 0.1e0, 2.5e0),
    'ints', JSON_ARRAY(18446744073709551615, -9223372036854775808, 9223372036854775807, 0),
    'nested', JSON_ARRAY(1, JSON_ARRAY(2, JSON_ARRAY(3, JSON_ARRAY(JSON_OBJECT('d', CAST(2.500 AS DECIMAL(4,3))), JSON_ARRAY())))),
    'unicode', '😀 中文 ünïcødé 🚪 \\\"quoted\\\"',
    't', CAST('2024-01-02 03:04:05.123456' AS DATETIME(6)),
    'ctl', CONCAT('tab', CHAR(9 USING utf8mb4), 'nul', CHAR(0 USING utf8mb4), 'bell', CHAR(7 USING utf8mb4), 'nl\n\\\\ / é'),
    '', JSON_OBJECT('ключ', 1, '键 🚪', 2, 'a\\\"b', 3),
    'opaque', JSON_ARRAY(CAST('2024-02-29' AS DATE), CAST('-838:59:58.5' AS TIME(1)), x'00ff', UNHEX(REPEAT('00ff7f80', 30)))),
  ST_GeomFromText('POLYGON((0 0,0 1,1 1,0 0))', 4326))";
/// A document over 64 KiB: MySQL's large binary JSON format.
const MYSQL_LARGE_ROW: &str = "INSERT INTO alltypes (id, y, g, j) VALUES (5, 2155,
  ST_GeomFromText('POINT(1.5 -2.25)'),
  JSON_OBJECT('big', REPEAT('ü中😀', 10000), 'dec', CAST(0.50 AS DECIMAL(3,2)), 'n', -1,
    'arr', JSON_ARRAY(1e300, CAST(1.10 AS DECIMAL(3,2)), JSON_ARRAY(18446744073709551615))))";
/// An array over 64 KiB (the large format's 4-byte offsets), a DECIMAL
/// appended to it.
const MYSQL_LARGE_ARRAY_ROW: &str = "INSERT INTO alltypes (id, j) VALUES (9,
  JSON_ARRAY_APPEND(CAST(CONCAT('[', REPEAT('\"ü\", 1.5, ', 8000), '[-0.0, 18446744073709551615, {\"k\": [1e300]}]]') AS JSON),
    '$', CAST(0.50 AS DECIMAL(3,2))))";
/// A document of 5,000 DECIMALs (prices with a trailing zero, which no
/// double prints as): each is set back into a MySQL target as a DECIMAL.
const MYSQL_MANY_DECIMALS_ROW: &str = "INSERT INTO alltypes (id, j)
  SELECT 10, JSON_ARRAYAGG(CAST(n + 0.10 AS DECIMAL(10,2)))
  FROM (WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5000) SELECT n FROM s) t";
/// A document 31 deep (MariaDB's `JSON_VALID` refuses 32 levels), a DECIMAL
/// at the bottom.
const MYSQL_DEEP_ROW: &str = "INSERT INTO alltypes (id, j) VALUES (11,
  JSON_ARRAY_APPEND(CAST(CONCAT(REPEAT('[', 30), REPEAT(']', 30)) AS JSON),
    CONCAT('$', REPEAT('[0]', 29)), CAST(0.50 AS DECIMAL(3,2))))";
/// The deepest document MySQL parses (100 levels), a DECIMAL at the bottom.
const MYSQL_DEEPEST_ROW: &str = "INSERT INTO alltypes (id, j) VALUES (12,
  JSON_ARRAY_APPEND(CAST(CONCAT(REPEAT('[', 99), REPEAT(']', 99)) AS JSON),
    CONCAT('$', REPEAT('[0]', 98)), CAST(0.50 AS DECIMAL(3,2))))";
/// Whole documents that are one number: a DECIMAL and a negative zero.
const MYSQL_SCALAR_ROWS: [&str; 2] = [
    "INSERT INTO alltypes (id, j) VALUES (6, CAST(CAST(-0.50 AS DECIMAL(3,2)) AS JSON))",
    "INSERT INTO alltypes (id, j) VALUES (7, CAST(-0.0e0 AS JSON))",
];
const MYSQL_UPDATE_LARGE: &str = "UPDATE alltypes SET j = JSON_SET(j, '$.n', 2, '$.dec', CAST(2.25 AS DECIMAL(3,2))) WHERE id = 5";

/// One source, its rows and changes, and the targets they are applied to.
struct Case {
    name: &'static str,
    source: usize,
    targets: Vec<usize>,
    /// Run on the source session before any row is written.
    session: &'static [&'static str],
    /// `(id, INSERT …)`, then `(id, UPDATE …)`; then row [`DELETED`] is
    /// deleted.
    inserts: Vec<(u32, &'static str)>,
    updates: Vec<(u32, &'static str)>,
}

/// What a round trip leaves for the engine's own spot checks.
struct RoundTrip {
    ctx: TestCtx,
    events: Vec<ChangeEvent>,
    /// fastavro's output: value of event k at `2k`, its key at `2k + 1`.
    fastavro: Vec<serde_json::Value>,
    /// The source rows as they were inserted, by id.
    inserted: HashMap<u32, mysql_async::Row>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A column of a text-protocol row as bytes (`None` for NULL).
fn bytes_of(row: &mysql_async::Row, col: &str) -> Option<Vec<u8>> {
    let i = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str() == col)
        .unwrap_or_else(|| panic!("no column {col}"));
    match row.as_ref(i) {
        Some(mysql_async::Value::Bytes(b)) => Some(b.clone()),
        _ => None,
    }
}

/// Create the table on the source and every target, write the case's rows,
/// capture and apply them, and check events, fastavro and targets.
async fn round_trip(case: Case) -> RoundTrip {
    let ctx = TestCtx::new(case.name);
    let db = ctx.db.clone();
    let mut servers = vec![case.source];
    servers.extend(&case.targets);
    ctx.create_db(&servers).await;
    for &i in &servers {
        ctx.sql(i, &[&format!("USE {db}"), &ddl()]).await;
    }
    let mut src = ctx.conn(case.source).await;
    src.query_drop(format!("USE {db}")).await.expect("use");
    // Text-protocol reads of TIMESTAMP in UTC, as apply binds them.
    src.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("tz");
    // ...and strings as stored, not transcoded to the connection's charset.
    src.query_drop("SET character_set_results = binary")
        .await
        .expect("charset");
    for stmt in case.session {
        src.query_drop(*stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let start = gtid_pos(&mut src).await;
    let source = ctx.revdoor_url(case.source);
    let table = format!("{db}.alltypes");
    let mut capture = ctx.spawn("capture", &args(&ctx.capture_args(&source, &table, &start)));
    let mut applies: Vec<(usize, revdoor_tests::Revdoor)> = case
        .targets
        .iter()
        .map(|&t| {
            let url = ctx.revdoor_url(t);
            (
                t,
                ctx.spawn(&format!("apply-{t}"), &args(&ctx.apply_args(&url))),
            )
        })
        .collect();

    // Source rows right after each statement: what the events must carry.
    let select = |id: u32| format!("SELECT * FROM alltypes WHERE id = {id}");
    let mut inserted: HashMap<u32, mysql_async::Row> = HashMap::new();
    let mut current: HashMap<u32, mysql_async::Row> = HashMap::new();
    for &(id, stmt) in &case.inserts {
        src.query_drop(stmt)
            .await
            .unwrap_or_else(|e| panic!("insert row {id}: {e}"));
        let r: Option<mysql_async::Row> = src.query_first(select(id)).await.expect("select");
        let r = r.expect("row");
        inserted.insert(id, r.clone());
        current.insert(id, r);
    }
    // (before, after) of each update.
    let mut updated: Vec<(mysql_async::Row, mysql_async::Row)> = Vec::new();
    for &(id, stmt) in &case.updates {
        src.query_drop(stmt)
            .await
            .unwrap_or_else(|e| panic!("update row {id}: {e}"));
        let after: mysql_async::Row = src
            .query_first(select(id))
            .await
            .expect("select")
            .expect("row");
        let before = current
            .insert(id, after.clone())
            .expect("updated row exists");
        updated.push((before, after));
    }
    src.query_drop(format!("DELETE FROM alltypes WHERE id = {DELETED}"))
        .await
        .expect("delete");
    let deleted = current.remove(&DELETED).expect("deleted row exists");

    let n = case.inserts.len() + case.updates.len() + 1;
    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let events = wait_events(&ctx, &topic, n, &mut capture).await;
    assert_eq!(events.len(), n, "inserts, updates, 1 delete");
    let ops: Vec<Op> = events.iter().map(|e| e.op).collect();
    let mut want_ops = vec![Op::Create; case.inserts.len()];
    want_ops.extend(vec![Op::Update; case.updates.len()]);
    want_ops.push(Op::Delete);
    assert_eq!(ops, want_ops);

    // 1. Decoded events equal the source rows.
    let schemas = read_partition(&ctx.stack.kafka, SCHEMAS_TOPIC, 0)
        .await
        .expect("registry");
    let records: Vec<SchemaRecord> = schemas
        .iter()
        .filter_map(|(_, _, p)| serde_json::from_slice(p).ok())
        .collect();
    let record = records
        .iter()
        .rev()
        .find(|r| r.table.db == db && r.table.table == "alltypes")
        .expect("schema record of alltypes published");
    let schema = &record.table;
    // Capture reads the definition from the binlog's table maps, refined
    // by information_schema where a column still matches: for a table that
    // did not change that is exactly information_schema's definition, for
    // every type (MariaDB's JSON included), and one record.
    let n_defs = records
        .iter()
        .filter(|r| r.table.db == db && r.table.table == "alltypes")
        .count();
    assert_eq!(n_defs, 1, "one definition of alltypes published");
    let mut admin = ctx.conn(case.source).await;
    let now = revdoor_mysql::tables::load_table_schema(&mut admin, &db, "alltypes")
        .await
        .expect("information_schema definition");
    assert_eq!(
        schema, &now,
        "the table-map definition equals information_schema's"
    );
    for (k, (id, _)) in case.inserts.iter().enumerate() {
        let after = events[k].after.as_ref().expect("after image");
        assert_rows(
            &format!("insert of row {id}"),
            event_row(after),
            canonical_row(schema, &inserted[id]),
        );
    }
    for (j, ((id, _), (before, after))) in case.updates.iter().zip(&updated).enumerate() {
        let upd = &events[case.inserts.len() + j];
        assert_rows(
            &format!("update of row {id}, before"),
            event_row(upd.before.as_ref().expect("before")),
            canonical_row(schema, before),
        );
        assert_rows(
            &format!("update of row {id}, after"),
            event_row(upd.after.as_ref().expect("after")),
            canonical_row(schema, after),
        );
    }
    assert_rows(
        "delete",
        event_row(events[n - 1].before.as_ref().expect("before")),
        canonical_row(schema, &deleted),
    );
    // Spot checks of the edges, in canonical form.
    let max = event_row(events[1].after.as_ref().expect("after"));
    assert_eq!(get(&max, "biu"), Some(ColumnValue::UInt(u64::MAX)));
    assert_eq!(get(&max, "b64"), Some(ColumnValue::Bytes(vec![0xff; 8])));
    assert_eq!(
        get(&max, "vl"),
        Some(ColumnValue::Bytes(vec![0xe9, 0xe8, 0xff])),
        "latin1 bytes as stored"
    );
    let min = event_row(events[0].after.as_ref().expect("after"));
    assert_eq!(
        get(&min, "tm"),
        Some(ColumnValue::Time("-838:59:59".into()))
    );
    assert_eq!(
        get(&min, "dtm0"),
        Some(ColumnValue::DateTime("0000-00-00 00:00:00".into()))
    );
    let k8 = case
        .inserts
        .iter()
        .position(|(id, _)| *id == 8)
        .expect("the fraction row");
    let frac = event_row(events[k8].after.as_ref().expect("after"));
    for (col, t) in [
        ("tm6", "-00:00:00.000001"),
        ("tm1", "-00:00:00.1"),
        ("tm3", "-00:00:01.001"),
    ] {
        assert_eq!(get(&frac, col), Some(ColumnValue::Time(t.into())), "{col}");
    }

    // 2. fastavro decodes the very same messages with the published schema.
    let raw = read_partition(&ctx.stack.kafka, &topic, 0)
        .await
        .expect("raw messages");
    let by_fp: HashMap<u64, &SchemaRecord> = records
        .iter()
        .filter_map(|r| u64::from_str_radix(&r.fingerprint, 16).ok().map(|f| (f, r)))
        .collect();
    let mut input = String::new();
    for (_, key, value) in raw.iter().filter(|(_, _, v)| v.first() != Some(&b'{')) {
        let fp = single_object_fingerprint(value).expect("single-object header");
        let rec = by_fp.get(&fp).expect("schema for message");
        input.push_str(
            &serde_json::json!({"schema": rec.envelope, "message_hex": hex(value)}).to_string(),
        );
        input.push('\n');
        input
            .push_str(&serde_json::json!({"schema": rec.key, "message_hex": hex(key)}).to_string());
        input.push('\n');
    }
    let mut child = Command::new("python3")
        .arg(repo_root().join("tests/avro/decode.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 tests/avro/decode.py (needs fastavro: deploy/test installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("decode.py");
    feeder.join().expect("feeder").expect("write to decode.py");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "fastavro failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(decoded.len(), 2 * n, "{n} values and {n} keys");
    let max_rec = &decoded[2]["record"]["after"];
    assert_eq!(max_rec["id"], 2);
    assert_eq!(max_rec["biu"], "18446744073709551615");
    assert_eq!(
        max_rec["d65"],
        "99999999999999999999999999999999999.999999999999999999999999999999"
    );
    assert_eq!(max_rec["vc"], "🚪 door ünïcødé");
    assert_eq!(max_rec["vl"], "e9e8ff");
    assert_eq!(max_rec["b64"], "ffffffffffffffff");
    assert_eq!(max_rec["b10"], "03ff");
    assert_eq!(max_rec["d30"], "0.999999999999999999999999999999");
    assert_eq!(max_rec["st9"], "a,b,c,d,e,f,g,h,i");
    assert_eq!(max_rec["e300"], "v299");
    assert_eq!(
        decoded[0]["record"]["after"]["tm"],
        -(838i64 * 3600 + 59 * 60 + 59) * 1_000_000
    );
    assert_eq!(
        decoded[3]["record"]["id"], 2,
        "keys are records of the primary key"
    );
    assert_eq!(decoded[2 * n - 1]["record"]["id"], DELETED);
    let frac_rec = &decoded[2 * k8]["record"]["after"];
    assert_eq!(
        (&frac_rec["tm6"], &frac_rec["tm1"], &frac_rec["tm3"]),
        (&(-1).into(), &(-100_000).into(), &(-1_001_000).into()),
        "negative TIMEs within a second, in microseconds"
    );
    // Every inserted document and geometry, as the source has it.
    for (k, (id, _)) in case.inserts.iter().enumerate() {
        let after = &decoded[2 * k]["record"]["after"];
        let j = bytes_of(&inserted[id], "j").map(|b| String::from_utf8(b).expect("JSON is UTF-8"));
        assert_eq!(after["j"].as_str(), j.as_deref(), "fastavro: j of row {id}");
        let g = bytes_of(&inserted[id], "g").map(|b| hex(&b));
        assert_eq!(after["g"].as_str(), g.as_deref(), "fastavro: g of row {id}");
    }

    // 3. Apply writes exactly the source rows, on every target.
    let want = ctx.rows(case.source, "alltypes").await;
    for (target, apply) in &mut applies {
        let deadline = Instant::now() + Duration::from_secs(60);
        while ctx.rows(*target, "alltypes").await != want {
            assert!(
                apply.exited().is_none(),
                "apply to #{target} died:\n{}",
                apply.log_text()
            );
            assert!(
                Instant::now() < deadline,
                "target #{target} never equalled source:\n{}",
                apply.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // 4. A copy of the same table (a second workflow's capture with
    // `--copy`) reads every row as the stream carried it.
    let copy_workflow = format!("{}_copy", ctx.workflow);
    let copy_args = [
        "capture",
        "run",
        "--workflow",
        &copy_workflow,
        "--source",
        &source,
        "--tables",
        &table,
        "--copy",
    ];
    let mut copier = ctx.spawn("capture-copy", &copy_args);
    let copy_topic = format!("revdoor.{copy_workflow}.forward");
    let copied = wait_events(&ctx, &copy_topic, current.len(), &mut copier).await;
    assert_eq!(copied.len(), current.len(), "one read per row");
    for ev in &copied {
        assert_eq!(ev.op, Op::Read);
        let after = ev.after.as_ref().expect("after image");
        let id = match after.get("id") {
            Some(ColumnValue::Int(id)) => u32::try_from(*id).expect("id"),
            other => panic!("copied row without an id: {other:?}"),
        };
        assert_rows(
            &format!("copy of row {id}"),
            event_row(after),
            canonical_row(schema, &current[&id]),
        );
    }
    copier.stop(Duration::from_secs(20));
    copier.assert_no_unexpected_errors(&[]);
    capture.stop(Duration::from_secs(20));
    capture.assert_no_unexpected_errors(&[]);
    for (_, apply) in &mut applies {
        apply.stop(Duration::from_secs(20));
        apply.assert_no_unexpected_errors(&[]);
    }
    RoundTrip {
        ctx,
        events,
        fastavro: decoded,
        inserted,
    }
}

/// The change events of `topic` once there are at least `n`, while
/// `capture` runs (60 s at most).
async fn wait_events(
    ctx: &TestCtx,
    topic: &str,
    n: usize,
    capture: &mut revdoor_tests::Revdoor,
) -> Vec<ChangeEvent> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<ChangeEvent> = read_changes(&ctx.stack.kafka, topic, 0)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            capture.exited().is_none(),
            "{} died:\n{}",
            capture.name,
            capture.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "only {} events of {n}:\n{}",
            got.len(),
            capture.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn get(row: &[(String, ColumnValue)], c: &str) -> Option<ColumnValue> {
    row.iter().find(|(n, _)| n == c).map(|(_, v)| v.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_roundtrips_through_kafka() {
    let maria = stack().mariadb_servers();
    assert!(
        maria.len() >= 2,
        "needs two MariaDB servers (deploy/stack up --mariadb 2)"
    );
    round_trip(Case {
        name: "capture_types",
        source: maria[0],
        targets: vec![maria[1]],
        session: &[],
        inserts: vec![(1, MIN_ROW), (2, MAX_ROW), (3, NULL_ROW), (8, FRACTION_ROW)],
        updates: vec![(1, UPDATE_MIN)],
    })
    .await;
}

/// The MySQL source session: MariaDB 10.11's default `sql_mode` (strict,
/// zero dates allowed), and recursion enough for 5,000 DECIMALs.
const MYSQL_SESSION: &[&str] = &[
    "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION cte_max_recursion_depth = 5000",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mysql_column_type_roundtrips_to_mysql_and_mariadb() {
    let (my, maria) = (stack().mysql_servers(), stack().mariadb_servers());
    assert!(
        my.len() >= 2 && !maria.is_empty(),
        "needs two MySQL servers and a MariaDB one (deploy/stack up --mariadb 1 --mysql 2)"
    );
    let rt = round_trip(Case {
        name: "capture_types_mysql",
        source: my[0],
        targets: vec![my[1], maria[0]],
        // MariaDB 10.11's default sql_mode: strict, zero dates allowed.
        session: MYSQL_SESSION,
        inserts: vec![
            (1, MIN_ROW),
            (2, MAX_ROW),
            (3, NULL_ROW),
            (4, MYSQL_EDGE_ROW),
            (5, MYSQL_LARGE_ROW),
            (6, MYSQL_SCALAR_ROWS[0]),
            (7, MYSQL_SCALAR_ROWS[1]),
            (8, FRACTION_ROW),
            (9, MYSQL_LARGE_ARRAY_ROW),
            (10, MYSQL_MANY_DECIMALS_ROW),
            (11, MYSQL_DEEP_ROW),
        ],
        updates: vec![(1, UPDATE_MIN), (5, MYSQL_UPDATE_LARGE)],
    })
    .await;
    let text = |id: u32| {
        String::from_utf8(bytes_of(&rt.inserted[&id], "j").expect("a document")).expect("UTF-8")
    };
    // The source holds what the rows claim to test: MySQL's own text.
    let edge = text(4);
    for part in [
        r#""dec65": -99999999999999999999999999999999999.999999999999999999999999999999"#,
        r#""half": 0.50"#,
        "[1e300, 5e-324, -0.0, 0.1, 2.5]",
        "[18446744073709551615, -9223372036854775808, 9223372036854775807, 0]",
        r#"[1, [2, [3, [{"d": 2.500}, []]]]]"#,
        "😀 中文 ünïcødé 🚪",
        r#""t": "2024-01-02 03:04:05.123456""#,
    ] {
        assert!(edge.contains(part), "source document lacks {part}: {edge}");
    }
    assert!(
        edge.contains(
            r#""opaque": ["2024-02-29", "-838:59:58.500000", "base64:type15:AP8=", "base64:type15:"#
        ),
        "{edge}"
    );
    assert!(text(5).len() > 65_536, "row 5 is a large-format document");
    assert!(
        text(11).starts_with(&"[".repeat(30))
            && text(11).contains(&format!("[0.50]{}", "]".repeat(29))),
        "row 11 is 31 deep: {}",
        text(11)
    );
    assert!(
        text(10).starts_with('[') && text(10).matches(".10").count() == 5000,
        "row 10 holds 5,000 DECIMALs"
    );
    let array = text(9);
    assert!(
        array.len() > 65_536
            && array.ends_with(r#"[-0.0, 18446744073709551615, {"k": [1e300]}], 0.50]"#),
        "row 9 is a large-format array ending in a DECIMAL: …{}",
        &array[array.len().saturating_sub(80)..]
    );
    assert_eq!(text(6), "-0.50");
    assert_eq!(text(7), "-0.0");
    let g = bytes_of(&rt.inserted[&4], "g").expect("geometry");
    assert_eq!(g[..4], 4326u32.to_le_bytes(), "SRID 4326 leads the value");

    // Events, in canonical form.
    let row4 = event_row(rt.events[3].after.as_ref().expect("after"));
    assert_eq!(get(&row4, "biu"), Some(ColumnValue::UInt(u64::MAX)));
    assert_eq!(get(&row4, "b64"), Some(ColumnValue::Bytes(vec![0xff; 8])));
    assert_eq!(
        get(&row4, "tm6"),
        Some(ColumnValue::Time("-838:59:59.000000".into()))
    );
    assert_eq!(get(&row4, "y"), Some(ColumnValue::Int(1901)));
    assert_eq!(
        get(&row4, "dtm6"),
        Some(ColumnValue::DateTime("2024-02-29 23:59:59.123456".into()))
    );
    assert_eq!(
        get(&row4, "ts6"),
        Some(ColumnValue::DateTime("2001-02-03 04:05:06.654321".into()))
    );
    assert_eq!(get(&row4, "e"), Some(ColumnValue::Bytes(b"b".to_vec())));
    assert_eq!(get(&row4, "st"), Some(ColumnValue::Bytes(b"x,z".to_vec())));
    assert_eq!(get(&row4, "g"), Some(ColumnValue::Bytes(g)));
    let row5 = event_row(rt.events[4].after.as_ref().expect("after"));
    assert_eq!(get(&row5, "y"), Some(ColumnValue::Int(2155)));

    // fastavro agrees.
    let fa4 = &rt.fastavro[2 * 3]["record"]["after"];
    assert_eq!(fa4["id"], 4);
    assert_eq!(fa4["biu"], "18446744073709551615");
    assert_eq!(fa4["b64"], "ffffffffffffffff");
    assert_eq!(fa4["tm6"], -(838i64 * 3600 + 59 * 60 + 59) * 1_000_000);
    assert_eq!(fa4["y"], 1901);
    assert_eq!(fa4["dtm6"], "2024-02-29 23:59:59.123456");
    assert_eq!(
        fa4["ts6"], 981_173_106_654_321i64,
        "2001-02-03 04:05:06.654321 UTC"
    );
    assert_eq!(fa4["e"], "b");
    assert_eq!(fa4["st"], "x,z");
    assert_eq!(rt.fastavro[2 * 4]["record"]["after"]["y"], 2155);

    // The MySQL target keeps every number's JSON type (its text is already
    // compared byte for byte) but 2.25's; temporal and binary values become
    // strings.
    let types = |server: usize| {
        let ctx = &rt.ctx;
        async move {
            let mut c = ctx.conn(server).await;
            let q = format!(
                "SELECT id, JSON_TYPE(JSON_EXTRACT(j, '$.dec65')), JSON_TYPE(JSON_EXTRACT(j, '$.half')), \
                 JSON_TYPE(JSON_EXTRACT(j, '$.doubles[0]')), JSON_TYPE(JSON_EXTRACT(j, '$.doubles[2]')), \
                 JSON_TYPE(JSON_EXTRACT(j, '$.ints[0]')), JSON_TYPE(JSON_EXTRACT(j, '$.ints[1]')), \
                 JSON_TYPE(JSON_EXTRACT(j, '$.nested[1][1][1][0].d')), JSON_TYPE(JSON_EXTRACT(j, '$.dec')), \
                 JSON_TYPE(JSON_EXTRACT(j, '$.arr[1]')), JSON_TYPE(j), JSON_TYPE(JSON_EXTRACT(j, '$.t')), \
                 JSON_TYPE(JSON_EXTRACT(j, '$.opaque[0]')), JSON_TYPE(JSON_EXTRACT(j, '$.opaque[2]')) \
                 FROM {}.alltypes WHERE id IN (4, 5, 6, 7) ORDER BY id",
                ctx.db
            );
            let rows: Vec<mysql_async::Row> = c.query(q).await.expect("JSON types");
            rows.into_iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| match r.as_ref(i) {
                            Some(mysql_async::Value::Bytes(b)) => {
                                String::from_utf8_lossy(b).into_owned()
                            }
                            Some(mysql_async::Value::Int(n)) => n.to_string(),
                            _ => "NULL".to_owned(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
        }
    };
    let on_source = types(my[0]).await;
    assert_eq!(
        on_source,
        [
            "4 DECIMAL DECIMAL DOUBLE DOUBLE UNSIGNED INTEGER INTEGER DECIMAL NULL NULL OBJECT DATETIME DATE BLOB",
            "5 NULL NULL NULL NULL NULL NULL NULL DECIMAL DECIMAL OBJECT NULL NULL NULL",
            "6 NULL NULL NULL NULL NULL NULL NULL NULL NULL DECIMAL NULL NULL NULL",
            "7 NULL NULL NULL NULL NULL NULL NULL NULL NULL DOUBLE NULL NULL NULL",
        ]
    );
    assert_eq!(
        types(my[1]).await,
        [
            "4 DECIMAL DECIMAL DOUBLE DOUBLE UNSIGNED INTEGER INTEGER DECIMAL NULL NULL OBJECT STRING STRING STRING",
            "5 NULL NULL NULL NULL NULL NULL NULL DOUBLE DECIMAL OBJECT NULL NULL NULL",
            "6 NULL NULL NULL NULL NULL NULL NULL NULL NULL DECIMAL NULL NULL NULL",
            "7 NULL NULL NULL NULL NULL NULL NULL NULL NULL DOUBLE NULL NULL NULL",
        ],
        "JSON types on the MySQL target: the same but for temporal and binary values \
         (strings) and the DECIMAL 2.25 (a double prints so too)"
    );
}

/// A document as deep as MySQL parses (100 levels) goes MySQL → MySQL
/// only: MariaDB's `JSON_VALID` refuses 32 levels, so a MariaDB target's
/// `CHECK (json_valid(j))` would refuse it (ERROR 4025, the stream halts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deepest_mysql_json_roundtrips_to_mysql() {
    let my = stack().mysql_servers();
    assert!(
        my.len() >= 2,
        "needs two MySQL servers (deploy/stack up --mysql 2)"
    );
    let rt = round_trip(Case {
        name: "capture_types_deep",
        source: my[0],
        targets: vec![my[1]],
        session: MYSQL_SESSION,
        inserts: vec![
            (1, MIN_ROW),
            (2, MAX_ROW),
            (3, NULL_ROW),
            (8, FRACTION_ROW),
            (12, MYSQL_DEEPEST_ROW),
        ],
        updates: vec![(1, UPDATE_MIN)],
    })
    .await;
    let deep =
        String::from_utf8(bytes_of(&rt.inserted[&12], "j").expect("a document")).expect("UTF-8");
    assert!(
        deep.starts_with(&"[".repeat(99)) && deep.contains(&format!("[0.50]{}", "]".repeat(98))),
        "row 12 is 100 deep: {deep}"
    );
}
