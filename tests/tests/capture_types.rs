//! Every column type crosses without loss (issue 3, "Type round trip").
//!
//! A table with every MySQL/MariaDB column type gets rows of edge values
//! (min, max, NULL, empty, multibyte, zero dates, negative TIME, BIT(64) all
//! ones, DECIMAL(65,30)), then an update and a delete. Checked three ways:
//! each decoded event equals the source row as a text-protocol SELECT shows
//! it (both in canonical form); an independent Avro implementation
//! (fastavro, `tests/avro/decode.py`) decodes every message with the
//! published schema and agrees on key values; and after apply the target
//! equals the source row for row.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_core::avro::{canonicalize, single_object_fingerprint};
use revdoor_core::event::{ChangeEvent, ColumnValue, Op, Row};
use revdoor_core::registry::{SchemaRecord, SCHEMAS_TOPIC};
use revdoor_core::sqltype::TableSchema;
use revdoor_tests::{args, gtid_pos, read_changes, read_partition, repo_root, TestCtx};

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
  j JSON, g GEOMETRY
)";

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
  '{}', ST_GeomFromText('POINT(0 0)'))";

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
  '{\"a\":[1,2.5,\"ü\",null,true]}', ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'))";

const NULL_ROW: &str = "INSERT INTO alltypes (id) VALUES (3)";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_roundtrips_through_kafka() {
    let ctx = TestCtx::new("capture_types");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2]).await;
    ctx.sql(1, &[&format!("USE {db}"), DDL]).await;
    ctx.sql(2, &[&format!("USE {db}"), DDL]).await;
    let mut src = ctx.conn(1).await;
    src.query_drop(format!("USE {db}")).await.expect("use");
    // Text-protocol reads of TIMESTAMP in UTC, as apply binds them.
    src.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("tz");
    // ...and strings as stored, not transcoded to the connection's charset.
    src.query_drop("SET character_set_results = binary")
        .await
        .expect("charset");
    let start = gtid_pos(&mut src).await;
    let source = ctx.revdoor_url(1);
    let target = ctx.revdoor_url(2);
    let table = format!("{db}.alltypes");
    let mut capture = ctx.spawn("capture", &args(&ctx.capture_args(&source, &table, &start)));
    let mut apply = ctx.spawn("apply", &args(&ctx.apply_args(&target)));

    // Source rows right after each insert: what the `c` events must carry.
    let mut inserted: Vec<mysql_async::Row> = Vec::new();
    for (id, stmt) in [(1, MIN_ROW), (2, MAX_ROW), (3, NULL_ROW)] {
        src.query_drop(stmt)
            .await
            .unwrap_or_else(|e| panic!("insert row {id}: {e}"));
        let r: Option<mysql_async::Row> = src
            .query_first(format!("SELECT * FROM alltypes WHERE id = {id}"))
            .await
            .expect("select");
        inserted.push(r.expect("row"));
    }
    src.query_drop(
        "UPDATE alltypes SET ti = 5, biu = 1, d65 = 0.5, dtm6 = '2024-02-29 12:00:00.5', tm = '-00:00:01', \
         st = 'y', e = 'b', vc = NULL, b64 = b'101', j = '[]', ts6 = '2001-02-03 04:05:06.7' WHERE id = 1",
    )
    .await
    .expect("update");
    let updated: mysql_async::Row = src
        .query_first("SELECT * FROM alltypes WHERE id = 1")
        .await
        .expect("select")
        .expect("row");
    src.query_drop("DELETE FROM alltypes WHERE id = 3")
        .await
        .expect("delete");

    let topic = format!("revdoor.{}.forward", ctx.workflow);
    let deadline = Instant::now() + Duration::from_secs(60);
    let events: Vec<ChangeEvent> = loop {
        let got: Vec<ChangeEvent> = read_changes(&ctx.stack.kafka, &topic, 0)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        if got.len() >= 5 {
            break got;
        }
        assert!(
            capture.exited().is_none(),
            "capture died:\n{}",
            capture.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "only {} events:\n{}",
            got.len(),
            capture.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(events.len(), 5, "3 inserts, 1 update, 1 delete");
    let ops: Vec<Op> = events.iter().map(|e| e.op).collect();
    assert_eq!(
        ops,
        [Op::Create, Op::Create, Op::Create, Op::Update, Op::Delete]
    );

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
    for (i, src_row) in inserted.iter().enumerate() {
        let after = events[i].after.as_ref().expect("after image");
        assert_rows(
            &format!("insert of row {}", i + 1),
            event_row(after),
            canonical_row(schema, src_row),
        );
    }
    let upd = &events[3];
    assert_rows(
        "update, before",
        event_row(upd.before.as_ref().expect("before")),
        canonical_row(schema, &inserted[0]),
    );
    assert_rows(
        "update, after",
        event_row(upd.after.as_ref().expect("after")),
        canonical_row(schema, &updated),
    );
    assert_rows(
        "delete",
        event_row(events[4].before.as_ref().expect("before")),
        canonical_row(schema, &inserted[2]),
    );
    // Spot checks of the edges, in canonical form.
    let max = event_row(events[1].after.as_ref().expect("after"));
    let get = |row: &[(String, ColumnValue)], c: &str| {
        row.iter().find(|(n, _)| n == c).map(|(_, v)| v.clone())
    };
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
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
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
    assert_eq!(decoded.len(), 10, "5 values and 5 keys");
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
    assert_eq!(
        decoded[0]["record"]["after"]["tm"],
        -(838i64 * 3600 + 59 * 60 + 59) * 1_000_000
    );
    assert_eq!(
        decoded[3]["record"]["id"], 2,
        "keys are records of the primary key"
    );
    assert_eq!(decoded[9]["record"]["id"], 3);

    // 3. Apply writes exactly the source rows.
    let want = ctx.rows(1, "alltypes").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctx.rows(2, "alltypes").await != want {
        assert!(
            apply.exited().is_none(),
            "apply died:\n{}",
            apply.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "target never equalled source:\n{}",
            apply.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    capture.stop(Duration::from_secs(20));
    apply.stop(Duration::from_secs(20));
    capture.assert_no_unexpected_errors(&[]);
    apply.assert_no_unexpected_errors(&[]);
}
