use std::collections::HashSet;
use std::io::Write as _;
use std::net::Ipv6Addr;
use std::process::{Command, Stdio};

use apache_avro::types::Value;
use apache_avro::Schema;
use num_bigint::BigInt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value as Json};

use super::codec::op_str;
use super::values::{
    decimal_value, parse_civil, set_pack_len, time_micros, timestamp_micros_from_civil,
    timestamp_text, MAX_TIME_MICROS,
};
use super::*;
use crate::event::{ChangeEvent, ColumnValue, Op, Row, Source, TxnInfo};
use crate::sqltype::{BinaryKind, ColumnDef, SqlType, StringKind, TableSchema};

// ---------------------------------------------------------------------------
// Fixture: a table with every column type.
// ---------------------------------------------------------------------------

fn utf8(kind: StringKind) -> SqlType {
    SqlType::String {
        kind,
        charset: "utf8mb4".into(),
    }
}

fn set64() -> Vec<String> {
    (0..64).map(|i| format!("m{i}")).collect()
}

/// Every column type, nullable, after a composite primary key
/// (`region`, `id`) declared in the opposite order.
fn all_types_table() -> TableSchema {
    use SqlType::*;
    let mut columns = vec![
        ColumnDef::new("id", BigInt { unsigned: true }, false),
        ColumnDef::new("region", utf8(StringKind::VarChar(8)), false),
    ];
    let nullable: Vec<(&str, SqlType)> = vec![
        ("ti", TinyInt { unsigned: false }),
        ("tiu", TinyInt { unsigned: true }),
        ("si", SmallInt { unsigned: false }),
        ("siu", SmallInt { unsigned: true }),
        ("mi", MediumInt { unsigned: false }),
        ("miu", MediumInt { unsigned: true }),
        ("i", Int { unsigned: false }),
        ("iu", Int { unsigned: true }),
        ("bi", BigInt { unsigned: false }),
        ("biu", BigInt { unsigned: true }),
        (
            "dec65",
            Decimal {
                precision: 65,
                scale: 30,
            },
        ),
        (
            "dec5",
            Decimal {
                precision: 5,
                scale: 2,
            },
        ),
        (
            "dec1",
            Decimal {
                precision: 1,
                scale: 0,
            },
        ),
        (
            "dec20",
            Decimal {
                precision: 20,
                scale: 0,
            },
        ),
        ("f", Float),
        ("d", Double),
        ("dt", Date),
        ("dtm0", DateTime { fsp: 0 }),
        ("dtm3", DateTime { fsp: 3 }),
        ("dtm6", DateTime { fsp: 6 }),
        ("ts0", Timestamp { fsp: 0 }),
        ("ts6", Timestamp { fsp: 6 }),
        ("tm0", Time { fsp: 0 }),
        ("tm6", Time { fsp: 6 }),
        ("y", Year),
        ("b1", Bit { bits: 1 }),
        ("b13", Bit { bits: 13 }),
        ("b64", Bit { bits: 64 }),
        (
            "e",
            Enum {
                values: vec!["small".into(), "b'c".into(), "é😀".into()],
            },
        ),
        (
            "s",
            Set {
                values: vec!["x".into(), "y".into(), "z".into()],
            },
        ),
        ("s64", Set { values: set64() }),
        ("vc", utf8(StringKind::VarChar(255))),
        ("lt", utf8(StringKind::LongText)),
        (
            "txt_l1",
            SqlType::String {
                kind: StringKind::Text,
                charset: "latin1".into(),
            },
        ),
        (
            "ch_ascii",
            SqlType::String {
                kind: StringKind::Char(10),
                charset: "ascii".into(),
            },
        ),
        (
            "bin",
            Binary {
                kind: BinaryKind::Binary(16),
            },
        ),
        (
            "blob",
            Binary {
                kind: BinaryKind::Blob,
            },
        ),
        ("j", Json),
        ("g", Geometry),
        ("ip4", Inet4),
        ("ip6", Inet6),
        ("u", Uuid),
        ("weird name", Int { unsigned: false }),
        ("weird_name", Int { unsigned: false }),
        ("1st", SmallInt { unsigned: false }),
    ];
    columns.extend(
        nullable
            .into_iter()
            .map(|(n, t)| ColumnDef::new(n, t, true)),
    );
    TableSchema {
        db: "shop-db".into(),
        table: "orders".into(),
        columns,
        primary_key: vec!["region".into(), "id".into()],
    }
}

fn codec() -> EventCodec {
    EventCodec::new(all_types_table()).expect("codec")
}

fn b(s: &str) -> ColumnValue {
    ColumnValue::Bytes(s.as_bytes().to_vec())
}

// ---------------------------------------------------------------------------
// CRC-64-AVRO and the Parsing Canonical Form, pinned against fastavro.
// ---------------------------------------------------------------------------

/// (schema, Parsing Canonical Form, CRC-64-AVRO). Cross-checked with
/// fastavro 1.13.1: `to_parsing_canonical_form(parse_schema(s))` and
/// `fingerprint(pcf, "CRC-64-AVRO")` (which prints the little-endian bytes).
fn pinned_schemas() -> Vec<(Json, &'static str, u64)> {
    vec![
        (json!("int"), r#""int""#, 0x7275_d51a_3f39_5c8f),
        (
            json!({"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0}),
            r#""bytes""#,
            PIN_BYTES,
        ),
        (
            json!({"type": "long", "logicalType": "timestamp-micros", "doc": "x"}),
            r#""long""#,
            PIN_LONG,
        ),
        (
            json!({
                "type": "record", "name": "A", "namespace": "x.y", "doc": "d", "aliases": ["B"],
                "fields": [
                    {"name": "f", "type": {"type": "fixed", "name": "F", "size": 3}, "default": "abc"},
                    {"name": "g", "type": "F"},
                    {"name": "h", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}], "doc": "d", "revdoor.column": "h"},
                    {"name": "e", "type": {"type": "enum", "name": "other.E", "symbols": ["A", "B"]}},
                    {"name": "r", "type": {"type": "record", "name": "Inner", "fields": [{"name": "e2", "type": "other.E"}]}},
                    {"name": "a", "type": {"type": "array", "items": "x.y.Inner"}},
                    {"name": "m", "type": {"type": "map", "values": {"type": "string", "revdoor.type": "json"}}},
                ],
            }),
            PIN_RECORD_PCF,
            PIN_RECORD,
        ),
    ]
}

#[test]
fn crc64_matches_fastavro_and_the_spec() {
    for (schema, pcf, fp) in pinned_schemas() {
        assert_eq!(
            parsing_canonical_form(&schema).expect("pcf"),
            pcf,
            "{schema}"
        );
        assert_eq!(fingerprint_json(&schema).expect("fp"), fp, "{schema}");
    }
}

#[test]
fn envelope_and_key_fingerprints_match_fastavro() {
    let c = codec();
    assert_eq!(
        parsing_canonical_form(c.envelope().json()).expect("pcf"),
        PIN_ENVELOPE_PCF
    );
    assert_eq!(c.envelope().fingerprint(), PIN_ENVELOPE);
    assert_eq!(
        parsing_canonical_form(c.key().json()).expect("pcf"),
        PIN_KEY_PCF
    );
    assert_eq!(c.key().fingerprint(), PIN_KEY);
}

#[test]
fn fingerprint_of_a_parsed_schema_equals_that_of_its_json() {
    let c = codec();
    assert_eq!(
        fingerprint(c.envelope().schema()).expect("fp"),
        c.envelope().fingerprint()
    );
    assert_eq!(
        fingerprint(c.key().schema()).expect("fp"),
        c.key().fingerprint()
    );
}

#[test]
fn apache_avro_fingerprint_differs_only_where_logical_types_are() {
    use apache_avro::rabin::Rabin;
    let theirs = |s: &Schema| {
        let fp = s.fingerprint::<Rabin>();
        u64::from_le_bytes(fp.bytes.as_slice().try_into().expect("8 bytes"))
    };
    // Plain schema: both agree (a second implementation of CRC-64-AVRO).
    let plain = json!({"type": "record", "name": "a.R", "fields": [{"name": "x", "type": "long"}]});
    let s = Schema::parse(&plain).expect("parse");
    assert_eq!(theirs(&s), fingerprint_json(&plain).expect("fp"));
    // Logical types: apache-avro 0.22 keeps them in its canonical form
    // (DESIGN §11), which is why revdoor fingerprints itself.
    let dec = json!({"type": "record", "name": "a.R", "fields": [{"name": "x",
        "type": {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0}}]});
    let s = Schema::parse(&dec).expect("parse");
    assert_ne!(theirs(&s), fingerprint_json(&dec).expect("fp"));
}

#[test]
fn canonical_form_errors() {
    for bad in [
        json!(5),
        json!({"type": "record", "fields": []}),
        json!({"type": "record", "name": "R", "fields": [{"name": "x", "type": "Nope"}]}),
        json!({"type": "enum", "name": "E"}),
        json!({"type": "fixed", "name": "F"}),
        json!({"name": "x"}),
        json!(["int", {"type": "fixed", "name": "F", "size": 1}, {"type": "fixed", "name": "F", "size": 1}]),
    ] {
        assert!(
            matches!(
                parsing_canonical_form(&bad),
                Err(CodecError::CanonicalForm { .. })
            ),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------
// Schemas and names
// ---------------------------------------------------------------------------

#[test]
fn names_are_sanitised_without_collisions() {
    assert_eq!(sanitize_name("weird name"), "weird_name");
    assert_eq!(sanitize_name("1st"), "_1st");
    assert_eq!(sanitize_name(""), "_");
    assert_eq!(sanitize_name("é"), "_");
    assert_eq!(
        table_namespace("shop-db", "orders"),
        "revdoor.shop_db.orders"
    );
    let c = codec();
    let names = c.field_names();
    let pos = |n: &str| {
        c.table()
            .columns
            .iter()
            .position(|col| col.name == n)
            .expect("column")
    };
    assert_eq!(names[pos("weird_name")], "weird_name");
    assert_eq!(names[pos("weird name")], "weird_name_2");
    assert_eq!(names[pos("1st")], "_1st");
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    let cols = ["a b", "a-b", "a_b", "a_b_2"]
        .iter()
        .map(|n| ColumnDef::new(*n, SqlType::Year, true))
        .collect::<Vec<_>>();
    assert_eq!(field_names(&cols), ["a_b_3", "a_b_4", "a_b", "a_b_2"]);
}

#[test]
fn envelope_schema_shape() {
    let c = codec();
    let j = c.envelope().json();
    assert_eq!(j["name"], "revdoor.shop_db.orders.Envelope");
    assert_eq!(j["revdoor.db"], "shop-db");
    let fields: Vec<&str> = j["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(fields, ["before", "after", "source", "op", "ts_ms", "txn"]);
    let row = &j["fields"][0]["type"][1];
    assert_eq!(row["name"], "revdoor.shop_db.orders.Value");
    let field = |n: &str| {
        row["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f[PROP_COLUMN] == n)
            .cloned()
            .expect("field")
    };
    assert_eq!(
        field("id")["type"],
        json!({"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0, "revdoor.type": "bigint unsigned"})
    );
    assert_eq!(field("id")["doc"], "bigint unsigned not null");
    assert_eq!(field("biu")["type"][0], "null");
    assert_eq!(field("biu")["default"], Json::Null);
    assert_eq!(
        field("txt_l1")["type"][1],
        json!({"type": "bytes", "revdoor.charset": "latin1"})
    );
    assert_eq!(field("ch_ascii")["type"][1], "string");
    assert_eq!(field("ts6")["type"][1]["logicalType"], "timestamp-micros");
    assert_eq!(field("weird name")["name"], "weird_name_2");
    let key = c.key().json();
    assert_eq!(key["name"], "revdoor.shop_db.orders.Key");
    let key_fields: Vec<&str> = key["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(key_fields, ["region", "id"]);
}

#[test]
fn every_sql_type_has_the_documented_avro_type() {
    use SqlType::*;
    let cases: Vec<(SqlType, serde_json::Value)> = vec![
        (TinyInt { unsigned: true }, json!("int")),
        (MediumInt { unsigned: true }, json!("int")),
        (Int { unsigned: false }, json!("int")),
        (Int { unsigned: true }, json!("long")),
        (BigInt { unsigned: false }, json!("long")),
        (
            Decimal {
                precision: 65,
                scale: 30,
            },
            json!({"type": "bytes", "logicalType": "decimal", "precision": 65, "scale": 30}),
        ),
        (Float, json!("float")),
        (Double, json!("double")),
        (Date, json!({"type": "string", "revdoor.type": "date"})),
        (
            DateTime { fsp: 6 },
            json!({"type": "string", "revdoor.type": "datetime"}),
        ),
        (
            Timestamp { fsp: 6 },
            json!({"type": "long", "logicalType": "timestamp-micros"}),
        ),
        (
            Time { fsp: 6 },
            json!({"type": "long", "revdoor.type": "time-micros"}),
        ),
        (Year, json!({"type": "int", "revdoor.type": "year"})),
        (
            Bit { bits: 9 },
            json!({"type": "bytes", "revdoor.type": "bit", "revdoor.bits": 9}),
        ),
        (
            Enum {
                values: vec!["a".into()],
            },
            json!({"type": "string", "revdoor.type": "enum", "revdoor.symbols": ["a"]}),
        ),
        (
            Set {
                values: vec!["a".into()],
            },
            json!({"type": "string", "revdoor.type": "set", "revdoor.symbols": ["a"]}),
        ),
        (utf8(StringKind::Text), json!("string")),
        (
            Binary {
                kind: BinaryKind::LongBlob,
            },
            json!("bytes"),
        ),
        (Json, json!({"type": "string", "revdoor.type": "json"})),
        (
            Geometry,
            json!({"type": "bytes", "revdoor.type": "geometry"}),
        ),
        (Inet4, json!({"type": "string", "revdoor.type": "inet4"})),
        (Inet6, json!({"type": "string", "revdoor.type": "inet6"})),
        (Uuid, json!({"type": "string", "revdoor.type": "uuid"})),
    ];
    for (ty, expected) in cases {
        assert_eq!(avro_type(&ty), expected, "{ty}");
    }
}

#[test]
fn tables_without_a_usable_key_are_refused() {
    let mut t = all_types_table();
    t.primary_key.clear();
    assert!(matches!(
        EventCodec::new(t),
        Err(CodecError::NoPrimaryKey { .. })
    ));
    let mut t = all_types_table();
    t.primary_key = vec!["nope".into()];
    assert!(matches!(EventCodec::new(t), Err(CodecError::Table { .. })));
}

// ---------------------------------------------------------------------------
// Values, type by type
// ---------------------------------------------------------------------------

/// `input` encodes to `avro` and decodes to `canonical`.
#[track_caller]
fn check(ty: &SqlType, input: ColumnValue, avro: Value, canonical: ColumnValue) {
    let a = to_avro(ty, &input).unwrap_or_else(|e| panic!("{ty}: to_avro: {e}"));
    assert_eq!(a, avro, "{ty}: avro of {input:?}");
    let back = from_avro(ty, &a).unwrap_or_else(|e| panic!("{ty}: from_avro: {e}"));
    assert_eq!(back, canonical, "{ty}: canonical of {input:?}");
    assert_eq!(canonicalize(ty, &input).as_ref(), Ok(&canonical));
    assert_eq!(
        canonicalize(ty, &canonical).as_ref(),
        Ok(&canonical),
        "{ty}: idempotent"
    );
}

#[track_caller]
fn refused(ty: &SqlType, input: ColumnValue) {
    assert!(
        to_avro(ty, &input).is_err(),
        "{ty}: {input:?} should be refused"
    );
}

fn dec(n: impl Into<BigInt>) -> Value {
    decimal_value(&n.into())
}

#[test]
fn integers() {
    let t = SqlType::TinyInt { unsigned: false };
    check(
        &t,
        ColumnValue::Int(-128),
        Value::Int(-128),
        ColumnValue::Int(-128),
    );
    check(
        &t,
        ColumnValue::UInt(127),
        Value::Int(127),
        ColumnValue::Int(127),
    );
    check(&t, b("-5"), Value::Int(-5), ColumnValue::Int(-5));
    refused(&t, ColumnValue::Int(128));
    refused(&t, ColumnValue::UInt(200));
    refused(&t, b("x"));
    refused(&t, ColumnValue::Float(1.0));
    let t = SqlType::TinyInt { unsigned: true };
    check(
        &t,
        ColumnValue::Int(-1),
        Value::Int(255),
        ColumnValue::UInt(255),
    );
    check(
        &t,
        ColumnValue::UInt(255),
        Value::Int(255),
        ColumnValue::UInt(255),
    );
    refused(&t, ColumnValue::Int(-129));
    refused(&t, ColumnValue::UInt(256));
    let t = SqlType::MediumInt { unsigned: false };
    check(
        &t,
        ColumnValue::Int(-8_388_608),
        Value::Int(-8_388_608),
        ColumnValue::Int(-8_388_608),
    );
    refused(&t, ColumnValue::Int(8_388_608));
    let t = SqlType::MediumInt { unsigned: true };
    check(
        &t,
        ColumnValue::Int(-1),
        Value::Int(16_777_215),
        ColumnValue::UInt(16_777_215),
    );
    let t = SqlType::Int { unsigned: true };
    check(
        &t,
        ColumnValue::UInt(4_294_967_295),
        Value::Long(4_294_967_295),
        ColumnValue::UInt(4_294_967_295),
    );
    check(
        &t,
        ColumnValue::Int(-1),
        Value::Long(4_294_967_295),
        ColumnValue::UInt(4_294_967_295),
    );
    let t = SqlType::BigInt { unsigned: false };
    check(
        &t,
        ColumnValue::Int(i64::MIN),
        Value::Long(i64::MIN),
        ColumnValue::Int(i64::MIN),
    );
    check(
        &t,
        ColumnValue::Int(i64::MAX),
        Value::Long(i64::MAX),
        ColumnValue::Int(i64::MAX),
    );
    refused(&t, ColumnValue::UInt(u64::MAX));
    // Decoding never reads a negative number as unsigned.
    assert!(from_avro(&SqlType::Int { unsigned: true }, &Value::Long(-1)).is_err());
    assert!(from_avro(&SqlType::Int { unsigned: false }, &Value::Long(1 << 40)).is_err());
}

#[test]
fn bigint_unsigned_is_a_lossless_decimal() {
    let t = SqlType::BigInt { unsigned: true };
    let max = ColumnValue::UInt(u64::MAX);
    check(&t, ColumnValue::UInt(u64::MAX), dec(u64::MAX), max.clone());
    check(&t, ColumnValue::Int(-1), dec(u64::MAX), max.clone());
    check(&t, b("18446744073709551615"), dec(u64::MAX), max);
    check(&t, ColumnValue::Int(0), dec(0), ColumnValue::UInt(0));
    refused(&t, b("18446744073709551616"));
    assert!(from_avro(&t, &dec(-1)).is_err());
    assert!(from_avro(&t, &dec(BigInt::from(u64::MAX) + 1)).is_err());
    // The Avro bytes are the two's-complement big-endian number.
    let Value::Decimal(d) = to_avro(&t, &ColumnValue::UInt(u64::MAX)).expect("avro") else {
        panic!("not a decimal")
    };
    assert_eq!(
        Vec::<u8>::try_from(&d).expect("bytes"),
        [0, 255, 255, 255, 255, 255, 255, 255, 255]
    );
}

#[test]
fn decimals() {
    let t = SqlType::Decimal {
        precision: 65,
        scale: 30,
    };
    let max = format!("{}.{}", "9".repeat(35), "9".repeat(30));
    let unscaled: BigInt = "9".repeat(65).parse().expect("bigint");
    check(&t, b(&max), dec(unscaled.clone()), b(&max));
    check(
        &t,
        b(&format!("-{max}")),
        dec(-unscaled),
        b(&format!("-{max}")),
    );
    let zeros = "0".repeat(30);
    check(&t, b("-0.00"), dec(0), b(&format!("0.{zeros}")));
    check(
        &t,
        b("-1.5"),
        dec(-15 * BigInt::from(10).pow(29)),
        b(&format!("-1.5{}", "0".repeat(29))),
    );
    check(
        &t,
        b(".5"),
        dec(5 * BigInt::from(10).pow(29)),
        b(&format!("0.5{}", "0".repeat(29))),
    );
    check(
        &t,
        b(&format!("1.{zeros}0000")),
        dec(BigInt::from(10).pow(30)),
        b(&format!("1.{zeros}")),
    );
    refused(&t, b(&format!("0.{}1", "0".repeat(30))));
    refused(&t, b(&format!("1{}", "0".repeat(35))));
    refused(&t, b("1e5"));
    refused(&t, b("-"));
    refused(&t, b("1.2.3"));
    let t = SqlType::Decimal {
        precision: 5,
        scale: 2,
    };
    check(&t, ColumnValue::Int(-5), dec(-500), b("-5.00"));
    check(&t, b("999.99"), dec(99_999), b("999.99"));
    check(&t, b("+0.01"), dec(1), b("0.01"));
    refused(&t, b("1000"));
    assert!(
        from_avro(&t, &dec(100_000)).is_err(),
        "more digits than the precision"
    );
    let t = SqlType::Decimal {
        precision: 20,
        scale: 0,
    };
    check(
        &t,
        ColumnValue::UInt(u64::MAX),
        dec(u64::MAX),
        b("18446744073709551615"),
    );
}

#[test]
fn floats() {
    check(
        &SqlType::Float,
        ColumnValue::Float(1.5),
        Value::Float(1.5),
        ColumnValue::Float(1.5),
    );
    check(
        &SqlType::Float,
        ColumnValue::Double(0.25),
        Value::Float(0.25),
        ColumnValue::Float(0.25),
    );
    check(
        &SqlType::Float,
        b("3.5"),
        Value::Float(3.5),
        ColumnValue::Float(3.5),
    );
    check(
        &SqlType::Float,
        ColumnValue::Float(f32::MAX),
        Value::Float(f32::MAX),
        ColumnValue::Float(f32::MAX),
    );
    refused(&SqlType::Float, ColumnValue::Double(0.1));
    refused(&SqlType::Float, ColumnValue::Float(f32::NAN));
    check(
        &SqlType::Double,
        ColumnValue::Double(0.1),
        Value::Double(0.1),
        ColumnValue::Double(0.1),
    );
    check(
        &SqlType::Double,
        ColumnValue::Float(0.1),
        Value::Double(f64::from(0.1f32)),
        ColumnValue::Double(f64::from(0.1f32)),
    );
    check(
        &SqlType::Double,
        b("-2.5e300"),
        Value::Double(-2.5e300),
        ColumnValue::Double(-2.5e300),
    );
    refused(&SqlType::Double, ColumnValue::Double(f64::INFINITY));
}

#[test]
fn dates_and_datetimes_keep_zero_dates() {
    let dt = |s: &str| ColumnValue::DateTime(s.into());
    let s = |s: &str| Value::String(s.into());
    let t = SqlType::Date;
    check(&t, dt("0000-00-00"), s("0000-00-00"), dt("0000-00-00"));
    check(
        &t,
        dt("2024-00-15 00:00:00.000000"),
        s("2024-00-15"),
        dt("2024-00-15"),
    );
    check(&t, b("9999-12-31"), s("9999-12-31"), dt("9999-12-31"));
    check(&t, dt("2024-02-30"), s("2024-02-30"), dt("2024-02-30"));
    refused(&t, dt("2024-01-01 00:00:01"));
    refused(&t, dt("2024-13-01"));
    refused(&t, dt("24-01-01"));
    refused(&t, ColumnValue::Int(20240101));
    let t = SqlType::DateTime { fsp: 6 };
    check(
        &t,
        dt("0000-00-00 00:00:00.000000"),
        s("0000-00-00 00:00:00.000000"),
        dt("0000-00-00 00:00:00.000000"),
    );
    check(
        &t,
        dt("2024-01-02 03:04:05.5"),
        s("2024-01-02 03:04:05.500000"),
        dt("2024-01-02 03:04:05.500000"),
    );
    check(
        &t,
        dt("2024-01-02"),
        s("2024-01-02 00:00:00.000000"),
        dt("2024-01-02 00:00:00.000000"),
    );
    let t = SqlType::DateTime { fsp: 0 };
    check(
        &t,
        dt("2024-01-02 03:04:05.000000"),
        s("2024-01-02 03:04:05"),
        dt("2024-01-02 03:04:05"),
    );
    check(
        &t,
        dt("9999-12-31 23:59:59"),
        s("9999-12-31 23:59:59"),
        dt("9999-12-31 23:59:59"),
    );
    refused(&t, dt("2024-01-02 03:04:05.5"));
    refused(&t, dt("2024-01-02 24:00:00"));
    refused(&t, dt("2024-01-02 03:04:05.1234567"));
    refused(&t, dt("2024-01-02 03:04"));
    let t = SqlType::DateTime { fsp: 3 };
    check(
        &t,
        dt("2024-01-02 03:04:05.123000"),
        s("2024-01-02 03:04:05.123"),
        dt("2024-01-02 03:04:05.123"),
    );
    refused(&t, dt("2024-01-02 03:04:05.123400"));
    // Avro text that revdoor would not write is refused on decode.
    assert!(from_avro(&SqlType::DateTime { fsp: 0 }, &s("2024-01-02T03:04:05")).is_err());
}

#[test]
fn timestamps_are_utc_micros_with_zero_as_the_zero_timestamp() {
    let dt = |s: &str| ColumnValue::DateTime(s.into());
    let t = SqlType::Timestamp { fsp: 6 };
    check(
        &t,
        b("1700000000.123456"),
        Value::TimestampMicros(1_700_000_000_123_456),
        dt("2023-11-14 22:13:20.123456"),
    );
    check(
        &t,
        b("1700000000.5"),
        Value::TimestampMicros(1_700_000_000_500_000),
        dt("2023-11-14 22:13:20.500000"),
    );
    check(
        &t,
        b("0"),
        Value::TimestampMicros(0),
        dt("0000-00-00 00:00:00.000000"),
    );
    check(
        &t,
        dt("0000-00-00 00:00:00"),
        Value::TimestampMicros(0),
        dt("0000-00-00 00:00:00.000000"),
    );
    check(
        &t,
        b("2038-01-19 03:14:07.999999"),
        Value::TimestampMicros(2_147_483_647_999_999),
        dt("2038-01-19 03:14:07.999999"),
    );
    let t = SqlType::Timestamp { fsp: 0 };
    check(
        &t,
        b("2147483647"),
        Value::TimestampMicros(2_147_483_647_000_000),
        dt("2038-01-19 03:14:07"),
    );
    check(
        &t,
        ColumnValue::Int(1),
        Value::TimestampMicros(1_000_000),
        dt("1970-01-01 00:00:01"),
    );
    check(
        &t,
        ColumnValue::UInt(4_294_967_295),
        Value::TimestampMicros(4_294_967_295_000_000),
        dt("2106-02-07 06:28:15"),
    );
    check(
        &t,
        dt("2000-02-29 12:00:00"),
        Value::TimestampMicros(951_825_600_000_000),
        dt("2000-02-29 12:00:00"),
    );
    refused(&t, b("1700000000.5"));
    refused(&t, dt("1970-01-01 00:00:00"));
    refused(&t, dt("2023-02-29 00:00:00"));
    refused(&t, dt("2024-00-01 00:00:00"));
    refused(&t, dt("0000-00-00 00:00:01"));
    refused(&t, b("-1"));
    refused(&t, ColumnValue::Int(-1));
    assert!(from_avro(&t, &Value::TimestampMicros(-1)).is_err());
    assert!(
        from_avro(&t, &Value::TimestampMicros(1_500_000)).is_err(),
        "fraction beyond fsp"
    );
}

#[test]
fn times_are_signed_micros_beyond_24_hours() {
    let tm = |s: &str| ColumnValue::Time(s.into());
    let t = SqlType::Time { fsp: 6 };
    check(
        &t,
        tm("-838:59:59.000000"),
        Value::Long(-3_020_399_000_000),
        tm("-838:59:59.000000"),
    );
    check(
        &t,
        tm("838:59:59.999999"),
        Value::Long(3_020_399_999_999),
        tm("838:59:59.999999"),
    );
    check(
        &t,
        tm("-00:00:00.500000"),
        Value::Long(-500_000),
        tm("-00:00:00.500000"),
    );
    check(
        &t,
        tm("001:02:03.4"),
        Value::Long(3_723_400_000),
        tm("01:02:03.400000"),
    );
    check(
        &t,
        b("100:00:00"),
        Value::Long(360_000_000_000),
        tm("100:00:00.000000"),
    );
    let t = SqlType::Time { fsp: 0 };
    check(
        &t,
        tm("838:59:59"),
        Value::Long(3_020_399_000_000),
        tm("838:59:59"),
    );
    check(&t, tm("-0:00:01"), Value::Long(-1_000_000), tm("-00:00:01"));
    check(&t, tm("-00:00:00"), Value::Long(0), tm("00:00:00"));
    refused(&t, tm("839:00:00"));
    refused(&t, tm("01:60:00"));
    refused(&t, tm("1:2:3"));
    refused(&t, tm("1000:00:00"));
    refused(&t, tm("01:02:03.5"));
    assert!(from_avro(&t, &Value::Long(i64::MIN)).is_err());
}

#[test]
fn years() {
    let t = SqlType::Year;
    check(&t, b("2024"), Value::Int(2024), ColumnValue::Int(2024));
    check(&t, b("0000"), Value::Int(0), ColumnValue::Int(0));
    check(
        &t,
        ColumnValue::UInt(1901),
        Value::Int(1901),
        ColumnValue::Int(1901),
    );
    check(
        &t,
        ColumnValue::Int(2155),
        Value::Int(2155),
        ColumnValue::Int(2155),
    );
    // mysql_common renders a stored YEAR 0 as "1900".
    check(&t, b("1900"), Value::Int(0), ColumnValue::Int(0));
    check(
        &t,
        ColumnValue::Int(1900),
        Value::Int(0),
        ColumnValue::Int(0),
    );
    refused(&t, ColumnValue::Int(1899));
    refused(&t, ColumnValue::Int(2156));
}

#[test]
fn bits_are_big_endian_full_width() {
    let bytes = |v: &[u8]| ColumnValue::Bytes(v.to_vec());
    let t = SqlType::Bit { bits: 64 };
    check(
        &t,
        bytes(&[0xff; 8]),
        Value::Bytes(vec![0xff; 8]),
        bytes(&[0xff; 8]),
    );
    check(
        &t,
        ColumnValue::UInt(u64::MAX),
        Value::Bytes(vec![0xff; 8]),
        bytes(&[0xff; 8]),
    );
    check(
        &t,
        ColumnValue::Int(-1),
        Value::Bytes(vec![0xff; 8]),
        bytes(&[0xff; 8]),
    );
    check(
        &t,
        bytes(&[1]),
        Value::Bytes(vec![0, 0, 0, 0, 0, 0, 0, 1]),
        bytes(&[0, 0, 0, 0, 0, 0, 0, 1]),
    );
    refused(&t, bytes(&[1; 9]));
    let t = SqlType::Bit { bits: 1 };
    check(&t, bytes(&[1]), Value::Bytes(vec![1]), bytes(&[1]));
    check(&t, bytes(&[]), Value::Bytes(vec![0]), bytes(&[0]));
    refused(&t, bytes(&[2]));
    let t = SqlType::Bit { bits: 13 };
    check(
        &t,
        ColumnValue::UInt(0x1fff),
        Value::Bytes(vec![0x1f, 0xff]),
        bytes(&[0x1f, 0xff]),
    );
    check(
        &t,
        bytes(&[0, 0, 1]),
        Value::Bytes(vec![0, 1]),
        bytes(&[0, 1]),
    );
    refused(&t, ColumnValue::UInt(0x2000));
    refused(&t, ColumnValue::Int(-1));
    assert!(
        from_avro(&t, &Value::Bytes(vec![1])).is_err(),
        "not full width"
    );
}

#[test]
fn enums_carry_the_member_not_the_index() {
    let t = SqlType::Enum {
        values: vec!["small".into(), "b'c".into(), "é😀".into()],
    };
    let s = |v: &str| Value::String(v.into());
    check(&t, ColumnValue::Int(1), s("small"), b("small"));
    check(&t, ColumnValue::UInt(3), s("é😀"), b("é😀"));
    check(&t, ColumnValue::Int(0), s(""), b(""));
    check(&t, b("b'c"), s("b'c"), b("b'c"));
    refused(&t, ColumnValue::Int(4));
    refused(&t, ColumnValue::Int(-1));
    refused(&t, b("Small"));
    assert!(from_avro(&t, &s("gone")).is_err());
}

#[test]
fn sets_are_member_text_in_declaration_order() {
    let t = SqlType::Set {
        values: vec!["x".into(), "y".into(), "z".into()],
    };
    let s = |v: &str| Value::String(v.into());
    check(&t, ColumnValue::UInt(0b101), s("x,z"), b("x,z"));
    check(&t, ColumnValue::Int(0), s(""), b(""));
    check(&t, b("z,x,x"), s("x,z"), b("x,z"));
    refused(&t, ColumnValue::UInt(0b1000));
    refused(&t, b("x,w"));
    let t = SqlType::Set { values: set64() };
    let all = set64().join(",");
    check(&t, ColumnValue::UInt(u64::MAX), s(&all), b(&all));
    check(&t, ColumnValue::Int(-1), s(&all), b(&all));
    check(&t, ColumnValue::Int(i64::MIN), s("m63"), b("m63"));
}

#[test]
fn binlog_set_bytes_are_little_endian_bitmasks() {
    let bytes = |v: &[u8]| ColumnValue::Bytes(v.to_vec());
    let t = SqlType::Set {
        values: vec!["x".into(), "y".into(), "z".into()],
    };
    assert_eq!(
        from_binlog(&t, bytes(&[0b101])),
        Ok(ColumnValue::UInt(0b101))
    );
    assert!(from_binlog(&t, bytes(&[1, 0])).is_err());
    assert_eq!(
        from_binlog(&t, ColumnValue::UInt(3)),
        Ok(ColumnValue::UInt(3))
    );
    let t = SqlType::Set { values: set64() };
    assert_eq!(
        from_binlog(&t, bytes(&[0xff; 8])),
        Ok(ColumnValue::UInt(u64::MAX))
    );
    assert_eq!(
        from_binlog(&t, bytes(&[1, 0, 0, 0, 0, 0, 0, 0x80])),
        Ok(ColumnValue::UInt(1 | 1 << 63))
    );
    let t = SqlType::Set {
        values: (0..33).map(|i| format!("m{i}")).collect(),
    };
    assert_eq!(set_pack_len(33), 8);
    assert_eq!(
        from_binlog(&t, bytes(&[0, 0, 0, 0, 1, 0, 0, 0])),
        Ok(ColumnValue::UInt(1 << 32))
    );
    assert_eq!(set_pack_len(17), 3);
    // Other types pass unchanged, bytes included.
    assert_eq!(from_binlog(&SqlType::Year, b("1900")), Ok(b("1900")));
    // A whole row, by column name.
    let c = codec();
    let mut row = edge_row(c.table(), true);
    let s = c
        .table()
        .columns
        .iter()
        .position(|col| col.name == "s")
        .expect("s");
    let s64 = c
        .table()
        .columns
        .iter()
        .position(|col| col.name == "s64")
        .expect("s64");
    row.values[s] = bytes(&[0b110]);
    row.values[s64] = bytes(&[0xff; 8]);
    c.from_binlog_row(&mut row).expect("binlog row");
    assert_eq!(row.values[s], ColumnValue::UInt(0b110));
    assert_eq!(row.values[s64], ColumnValue::UInt(u64::MAX));
    row.values[s] = bytes(&[1, 2]);
    assert!(matches!(
        c.from_binlog_row(&mut row),
        Err(CodecError::Value { .. })
    ));
}

#[test]
fn strings_binaries_json_geometry() {
    let bytes = |v: &[u8]| ColumnValue::Bytes(v.to_vec());
    let t = utf8(StringKind::VarChar(10));
    check(&t, b("😀𝄞"), Value::String("😀𝄞".into()), b("😀𝄞"));
    check(&t, b(""), Value::String(String::new()), b(""));
    refused(&t, bytes(&[0xff]));
    refused(&t, ColumnValue::Int(1));
    let latin1: Vec<u8> = (0x80..=0xff).collect();
    let t = SqlType::String {
        kind: StringKind::Text,
        charset: "latin1".into(),
    };
    check(
        &t,
        bytes(&latin1),
        Value::Bytes(latin1.clone()),
        bytes(&latin1),
    );
    let t = SqlType::Binary {
        kind: BinaryKind::VarBinary(4),
    };
    check(
        &t,
        bytes(&[0, 1, 0xff]),
        Value::Bytes(vec![0, 1, 0xff]),
        bytes(&[0, 1, 0xff]),
    );
    check(&t, bytes(&[]), Value::Bytes(vec![]), bytes(&[]));
    check(
        &SqlType::Json,
        b(r#"{"a": [1, "é"]}"#),
        Value::String(r#"{"a": [1, "é"]}"#.into()),
        b(r#"{"a": [1, "é"]}"#),
    );
    refused(&SqlType::Json, bytes(&[0xc3]));
    let wkb = [
        0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40,
    ];
    check(
        &SqlType::Geometry,
        bytes(&wkb),
        Value::Bytes(wkb.to_vec()),
        bytes(&wkb),
    );
}

#[test]
fn mariadb_inet_and_uuid_are_text() {
    let bytes = |v: &[u8]| ColumnValue::Bytes(v.to_vec());
    let s = |v: &str| Value::String(v.into());
    check(
        &SqlType::Inet4,
        bytes(&[192, 168, 0, 1]),
        s("192.168.0.1"),
        b("192.168.0.1"),
    );
    check(&SqlType::Inet4, b("10.0.0.1"), s("10.0.0.1"), b("10.0.0.1"));
    refused(&SqlType::Inet4, bytes(&[1, 2, 3]));
    let mut one = [0u8; 16];
    one[15] = 1;
    check(&SqlType::Inet6, bytes(&one), s("::1"), b("::1"));
    check(
        &SqlType::Inet6,
        b("::ffff:1.2.3.4"),
        s("::ffff:1.2.3.4"),
        b("::ffff:1.2.3.4"),
    );
    refused(&SqlType::Inet6, b("nope"));
    let u = "123e4567-e89b-12d3-a456-426614174000";
    check(&SqlType::Uuid, b(u), s(u), b(u));
    refused(&SqlType::Uuid, bytes(&[7; 16]));
    refused(&SqlType::Uuid, b("123e4567"));
}

#[test]
fn null_is_null_for_every_type() {
    for c in &all_types_table().columns {
        assert_eq!(to_avro(&c.sql_type, &ColumnValue::Null), Ok(Value::Null));
        assert_eq!(
            from_avro(&c.sql_type, &Value::Union(0, Box::new(Value::Null))),
            Ok(ColumnValue::Null)
        );
    }
}

// ---------------------------------------------------------------------------
// Single-object framing and events
// ---------------------------------------------------------------------------

/// A row of edge values: maxima (`max == true`) or minima.
fn edge_row(table: &TableSchema, max: bool) -> Row {
    use SqlType::*;
    let values = table
        .columns
        .iter()
        .map(|c| match (&c.sql_type, max) {
            (BigInt { unsigned: true }, true) => ColumnValue::Int(-1),
            (BigInt { unsigned: true }, false) => ColumnValue::UInt(0),
            (BigInt { unsigned: false }, true) => ColumnValue::Int(i64::MAX),
            (BigInt { unsigned: false }, false) => ColumnValue::Int(i64::MIN),
            (TinyInt { unsigned: true }, m) => ColumnValue::UInt(if m { 255 } else { 0 }),
            (TinyInt { unsigned: false }, m) => ColumnValue::Int(if m { 127 } else { -128 }),
            (SmallInt { unsigned: true }, m) => ColumnValue::UInt(if m { 65_535 } else { 0 }),
            (SmallInt { unsigned: false }, m) => ColumnValue::Int(if m { 32_767 } else { -32_768 }),
            (MediumInt { unsigned: true }, m) => ColumnValue::UInt(if m { 16_777_215 } else { 0 }),
            (MediumInt { unsigned: false }, m) => {
                ColumnValue::Int(if m { 8_388_607 } else { -8_388_608 })
            }
            (Int { unsigned: true }, m) => ColumnValue::UInt(if m { 4_294_967_295 } else { 0 }),
            (Int { unsigned: false }, m) => {
                ColumnValue::Int(if m { 2_147_483_647 } else { -2_147_483_648 })
            }
            (Decimal { precision, scale }, m) => {
                let (p, s) = (usize::from(*precision), usize::from(*scale));
                let int = "9".repeat(p - s);
                let frac = if s == 0 {
                    std::string::String::new()
                } else {
                    format!(".{}", "9".repeat(s))
                };
                b(&format!("{}{int}{frac}", if m { "" } else { "-" }))
            }
            (Float, m) => ColumnValue::Float(if m { f32::MAX } else { -f32::MIN_POSITIVE }),
            (Double, m) => ColumnValue::Double(if m { f64::MAX } else { -f64::MIN_POSITIVE }),
            (Date, true) => ColumnValue::DateTime("9999-12-31".into()),
            (Date, false) => ColumnValue::DateTime("0000-00-00".into()),
            (DateTime { .. }, true) => ColumnValue::DateTime("9999-12-31 23:59:59.000000".into()),
            (DateTime { .. }, false) => ColumnValue::DateTime("0000-00-00 00:00:00.000000".into()),
            (Timestamp { .. }, true) => b("2147483647"),
            (Timestamp { .. }, false) => b("0"),
            (Time { .. }, true) => ColumnValue::Time("838:59:59.000000".into()),
            (Time { .. }, false) => ColumnValue::Time("-838:59:59.000000".into()),
            (Year, m) => ColumnValue::Int(if m { 2155 } else { 0 }),
            (Bit { bits }, m) => ColumnValue::UInt(if !m {
                0
            } else if *bits == 64 {
                u64::MAX
            } else {
                (1 << bits) - 1
            }),
            (Enum { values }, m) => ColumnValue::UInt(if m { values.len() as u64 } else { 0 }),
            (Set { values }, m) => ColumnValue::UInt(if !m {
                0
            } else if values.len() == 64 {
                u64::MAX
            } else {
                (1 << values.len()) - 1
            }),
            (SqlType::String { .. }, true)
                if c.sql_type.is_utf8_string() && c.name != "ch_ascii" =>
            {
                b("😀 é 𝄞 \u{10ffff}")
            }
            (SqlType::String { .. }, true) if c.name == "ch_ascii" => b("~ascii~"),
            (SqlType::String { .. }, true) => ColumnValue::Bytes((0x80..=0xff).collect()),
            (SqlType::String { .. }, false) => b(""),
            (Binary { .. } | Geometry, true) => ColumnValue::Bytes(vec![0xff; 16]),
            (Binary { .. } | Geometry, false) => ColumnValue::Bytes(vec![]),
            (Json, m) => b(if m {
                r#"{"k": ["😀", 1.5e300, null]}"#
            } else {
                "null"
            }),
            (Inet4, m) => b(if m { "255.255.255.255" } else { "0.0.0.0" }),
            (Inet6, m) => b(if m {
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
            } else {
                "::"
            }),
            (Uuid, m) => b(if m {
                "ffffffff-ffff-ffff-ffff-ffffffffffff"
            } else {
                "00000000-0000-0000-0000-000000000000"
            }),
        })
        .collect();
    Row {
        columns: table.columns.iter().map(|c| c.name.clone()).collect(),
        values,
    }
}

/// A row with NULL in every nullable column.
fn null_row(table: &TableSchema) -> Row {
    let mut row = edge_row(table, false);
    for (c, v) in table.columns.iter().zip(row.values.iter_mut()) {
        if c.nullable {
            *v = ColumnValue::Null;
        }
    }
    row
}

fn event(op: Op, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
    ChangeEvent {
        op,
        before,
        after,
        source: Source {
            shard: "-80".into(),
            db: "shop-db".into(),
            table: "orders".into(),
            ts_sec: u32::MAX,
        },
        txn: TxnInfo {
            gtid: "0-1-42".into(),
            index: u32::MAX,
            last: true,
        },
        ts_ms: i64::MAX as u64,
    }
}

/// The event as decode returns it: rows in table order, values canonical.
fn canonical_event(table: &TableSchema, ev: &ChangeEvent) -> ChangeEvent {
    let canon = |row: &Row| Row {
        columns: table.columns.iter().map(|c| c.name.clone()).collect(),
        values: table
            .columns
            .iter()
            .map(|c| {
                let v = row.get(&c.name).expect("column in row");
                canonicalize(&c.sql_type, v).expect("canonical")
            })
            .collect(),
    };
    ChangeEvent {
        before: ev.before.as_ref().map(canon),
        after: ev.after.as_ref().map(canon),
        ..ev.clone()
    }
}

fn key_of(table: &TableSchema, ev: &ChangeEvent) -> Row {
    let row = if ev.op == Op::Delete {
        &ev.before
    } else {
        &ev.after
    };
    let row = row.as_ref().expect("row");
    Row {
        columns: table.primary_key.clone().into(),
        values: table
            .primary_key
            .iter()
            .map(|k| {
                let c = table.column(k).expect("key column");
                canonicalize(&c.sql_type, row.get(k).expect("key value")).expect("canonical")
            })
            .collect(),
    }
}

#[test]
fn edge_events_roundtrip() {
    let c = codec();
    let t = c.table().clone();
    let max = edge_row(&t, true);
    let min = edge_row(&t, false);
    for ev in [
        event(Op::Create, None, Some(max.clone())),
        event(Op::Update, Some(min.clone()), Some(max.clone())),
        event(Op::Update, Some(null_row(&t)), Some(min.clone())),
        event(Op::Delete, Some(null_row(&t)), None),
        event(Op::Read, None, Some(min.clone())),
    ] {
        let (k, v) = c.encode_event(&ev).expect("encode");
        assert_eq!(&v[..2], &SINGLE_OBJECT_MAGIC);
        assert_eq!(v[2..10], c.envelope().fingerprint().to_le_bytes());
        assert_eq!(k[2..10], c.key().fingerprint().to_le_bytes());
        assert_eq!(
            c.decode_event(&v).expect("decode"),
            canonical_event(&t, &ev)
        );
        assert_eq!(c.decode_key(&k).expect("decode key"), key_of(&t, &ev));
    }
}

/// The direct binary encoding is byte for byte apache-avro's (which
/// validates each value against the schema) for every column type, edge
/// values and NULLs, every op, and a row given out of table order.
#[test]
fn direct_encoding_equals_apache_avro() {
    let c = codec();
    let t = c.table().clone();
    let max = edge_row(&t, true);
    let min = edge_row(&t, false);
    let mut shuffled = max.clone();
    shuffled.columns = shuffled.columns.iter().rev().cloned().collect();
    shuffled.values.reverse();
    for ev in [
        event(Op::Create, None, Some(max.clone())),
        event(Op::Update, Some(min.clone()), Some(max.clone())),
        event(Op::Update, Some(null_row(&t)), Some(min.clone())),
        event(Op::Delete, Some(null_row(&t)), None),
        event(Op::Read, None, Some(min.clone())),
        event(Op::Create, None, Some(shuffled)),
    ] {
        let (k, v) = c.encode_event(&ev).expect("direct");
        assert_eq!(
            (k, v.clone()),
            c.encode_event_generic(&ev).expect("apache-avro"),
            "{:?}",
            ev.op
        );
        assert_eq!(
            c.decode_event(&v).expect("direct decode"),
            c.decode_event_generic(&v).expect("apache-avro decode"),
        );
        // Every truncation is an error, never a panic or a short event.
        for cut in SINGLE_OBJECT_HEADER_LEN..v.len() {
            assert!(c.decode_event(&v[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = v.clone();
        longer.push(0);
        assert!(c.decode_event(&longer).is_err(), "trailing byte");
    }
}

#[test]
fn rows_are_matched_by_name() {
    let c = codec();
    let t = c.table().clone();
    let mut row = edge_row(&t, true);
    row.columns = row.columns.iter().rev().cloned().collect();
    row.values.reverse();
    let ev = event(Op::Create, None, Some(row));
    let (_, v) = c.encode_event(&ev).expect("encode");
    assert_eq!(
        c.decode_event(&v).expect("decode"),
        canonical_event(&t, &ev)
    );

    let mut extra = edge_row(&t, true);
    extra.columns = extra
        .columns
        .iter()
        .cloned()
        .chain(["added".to_string()])
        .collect();
    extra.values.push(ColumnValue::Int(1));
    let err = c
        .encode_event(&event(Op::Create, None, Some(extra)))
        .expect_err("unknown column");
    assert!(
        matches!(&err, CodecError::UnknownColumn { column, .. } if column == "added"),
        "{err}"
    );

    let mut missing = edge_row(&t, true);
    missing.columns = missing.columns[..missing.columns.len() - 1].into();
    missing.values.pop();
    let err = c
        .encode_event(&event(Op::Create, None, Some(missing)))
        .expect_err("missing column");
    assert!(
        matches!(&err, CodecError::MissingColumn { column, .. } if column == "1st"),
        "{err}"
    );
}

#[test]
fn bad_events_are_refused_with_context() {
    let c = codec();
    let t = c.table().clone();
    let mut row = edge_row(&t, true);
    row.values[0] = ColumnValue::Null;
    let err = c
        .encode_event(&event(Op::Create, None, Some(row)))
        .expect_err("NULL key");
    assert!(
        matches!(&err, CodecError::Value { column, .. } if column == "id"),
        "{err}"
    );
    assert!(err.to_string().contains("NOT NULL"), "{err}");

    let mut row = edge_row(&t, true);
    let e = t.columns.iter().position(|c| c.name == "e").expect("e");
    row.values[e] = ColumnValue::Int(9);
    let err = c
        .encode_event(&event(Op::Create, None, Some(row)))
        .expect_err("bad enum");
    assert!(err.to_string().contains("column `e`"), "{err}");

    let err = c
        .encode_event(&event(Op::Delete, None, None))
        .expect_err("delete without before");
    assert!(matches!(err, CodecError::Event { .. }), "{err}");
    let mut ev = event(Op::Create, None, Some(edge_row(&t, true)));
    ev.ts_ms = u64::MAX;
    assert!(matches!(c.encode_event(&ev), Err(CodecError::Event { .. })));
}

#[test]
fn single_object_errors() {
    let c = codec();
    let ev = event(Op::Create, None, Some(edge_row(c.table(), true)));
    let (k, v) = c.encode_event(&ev).expect("encode");
    let mut bad = v.clone();
    bad[0] = 0x7b;
    assert!(matches!(
        c.decode_event(&bad),
        Err(CodecError::BadMagic { .. })
    ));
    assert!(matches!(
        c.decode_event(b"{\"op\":1}"),
        Err(CodecError::BadMagic { .. })
    ));
    assert!(matches!(
        c.decode_event(&v[..7]),
        Err(CodecError::Truncated { len: 7 })
    ));
    assert!(matches!(
        c.decode_event(&[]),
        Err(CodecError::Truncated { len: 0 })
    ));
    let err = c.decode_event(&k).expect_err("key is not an envelope");
    assert!(
        matches!(err, CodecError::UnknownFingerprint { fingerprint } if fingerprint == c.key().fingerprint())
    );
    let r = c.decode_event(&v[..v.len() - 1]);
    assert!(matches!(r, Err(CodecError::TruncatedDatum { .. })), "{r:?}");
    assert!(matches!(
        c.decode_event(&v[..11]),
        Err(CodecError::TruncatedDatum { .. })
    ));
    // Every cut is refused, wherever it falls.
    for cut in SINGLE_OBJECT_HEADER_LEN..v.len() {
        let r = c.decode_event(&v[..cut]);
        assert!(
            matches!(r, Err(CodecError::TruncatedDatum { .. })),
            "cut at {cut}: {r:?}"
        );
    }
    for cut in SINGLE_OBJECT_HEADER_LEN..k.len() {
        let r = c.decode_key(&k[..cut]);
        assert!(
            matches!(r, Err(CodecError::TruncatedDatum { .. })),
            "key cut at {cut}: {r:?}"
        );
    }
    // Corrupt: a union index out of range.
    let mut corrupt = v.clone();
    corrupt[SINGLE_OBJECT_HEADER_LEN] = 0x7f;
    assert!(matches!(
        c.decode_event(&corrupt),
        Err(CodecError::BadDatum { .. })
    ));
    assert!(matches!(
        c.decode_event_generic(&corrupt),
        Err(CodecError::Datum { .. })
    ));
    let mut long = v.clone();
    long.extend_from_slice(&[0, 0]);
    assert!(matches!(
        c.decode_event(&long),
        Err(CodecError::TrailingBytes { extra: 2, .. })
    ));
    // decode_single with a lookup over several schemas.
    let (fp, value) = decode_single(&k, |fp| {
        [c.envelope(), c.key()]
            .into_iter()
            .find(|s| s.fingerprint() == fp)
            .map(PublishedSchema::schema)
    })
    .expect("decode");
    assert_eq!(fp, c.key().fingerprint());
    assert!(matches!(value, Value::Record(ref f) if f.len() == 2));
    // encode_single refuses a value that does not match the schema.
    assert!(matches!(
        encode_single(c.key().schema(), c.key().fingerprint(), &Value::Int(1)),
        Err(CodecError::Encode { .. })
    ));
}

// ---------------------------------------------------------------------------
// Property test: random values of every type roundtrip.
// ---------------------------------------------------------------------------

fn int_strategy(unsigned: bool, bits: u32) -> BoxedStrategy<ColumnValue> {
    if unsigned {
        let max = if bits == 64 {
            u64::MAX
        } else {
            (1 << bits) - 1
        };
        let edges = prop_oneof![Just(0u64), Just(max)];
        prop_oneof![any::<u64>().prop_map(move |u| u & max), edges]
            .prop_flat_map(move |u| {
                // Two's complement of the width, as the binlog may give it.
                let neg = if bits == 64 {
                    u as i64
                } else if u > max >> 1 {
                    u as i64 - (1i64 << bits)
                } else {
                    u as i64
                };
                prop_oneof![
                    Just(ColumnValue::UInt(u)),
                    Just(ColumnValue::Int(neg)),
                    Just(b(&u.to_string())),
                ]
            })
            .boxed()
    } else {
        let (min, max) = if bits == 64 {
            (i64::MIN, i64::MAX)
        } else {
            (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
        };
        prop_oneof![min..=max, Just(min), Just(max)]
            .prop_flat_map(|i| prop_oneof![Just(ColumnValue::Int(i)), Just(b(&i.to_string()))])
            .boxed()
    }
}

fn digits_strategy(max_len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..10, 0..=max_len)
        .prop_map(|d| d.into_iter().map(|x| char::from(b'0' + x)).collect())
}

fn civil_strategy(zero_parts: bool) -> impl Strategy<Value = (u32, u32, u32, u32, u32, u32, u32)> {
    let (lo_m, lo_d) = if zero_parts { (0, 0) } else { (1, 1) };
    (
        0u32..=9999,
        lo_m..=12u32,
        lo_d..=31u32,
        0u32..24,
        0u32..60,
        0u32..60,
        0u32..1_000_000,
    )
}

fn input_strategy(ty: &SqlType) -> BoxedStrategy<ColumnValue> {
    use SqlType::*;
    let ty2 = ty.clone();
    match ty {
        TinyInt { unsigned } => int_strategy(*unsigned, 8),
        SmallInt { unsigned } => int_strategy(*unsigned, 16),
        MediumInt { unsigned } => int_strategy(*unsigned, 24),
        Int { unsigned } => int_strategy(*unsigned, 32),
        BigInt { unsigned } => int_strategy(*unsigned, 64),
        Decimal { precision, scale } => {
            let (ip, sc) = (usize::from(*precision - *scale), usize::from(*scale));
            let max = format!(
                "{}{}",
                "9".repeat(ip),
                if sc > 0 {
                    format!(".{}", "9".repeat(sc))
                } else {
                    std::string::String::new()
                }
            );
            let neg_max = format!("-{max}");
            prop_oneof![
                (any::<bool>(), digits_strategy(ip), digits_strategy(sc)).prop_map(
                    |(neg, i, f)| {
                        let body = match (i.is_empty(), f.is_empty()) {
                            (true, true) => "0".to_owned(),
                            (_, true) => i,
                            _ => format!("{i}.{f}"),
                        };
                        b(&format!("{}{body}", if neg { "-" } else { "" }))
                    }
                ),
                Just(b(&max)),
                Just(b(&neg_max)),
            ]
            .boxed()
        }
        Float => {
            use proptest::num::f32 as f;
            (f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO)
                .prop_flat_map(|x| {
                    prop_oneof![
                        Just(ColumnValue::Float(x)),
                        Just(ColumnValue::Double(f64::from(x))),
                        Just(b(&x.to_string())),
                    ]
                })
                .boxed()
        }
        Double => {
            use proptest::num::f64 as f;
            (f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO)
                .prop_flat_map(|x| {
                    prop_oneof![Just(ColumnValue::Double(x)), Just(b(&x.to_string()))]
                })
                .boxed()
        }
        Date => (civil_strategy(true), any::<bool>())
            .prop_map(|((y, m, d, ..), long)| {
                let s = format!("{y:04}-{m:02}-{d:02}");
                ColumnValue::DateTime(if long {
                    format!("{s} 00:00:00.000000")
                } else {
                    s
                })
            })
            .boxed(),
        DateTime { fsp } => {
            let unit = 10u32.pow(6 - u32::from(*fsp));
            (civil_strategy(true), any::<bool>())
                .prop_map(move |((y, mo, d, h, mi, s, us), as_bytes)| {
                    // Capture's form: always 6 fraction digits.
                    let text = format!(
                        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:06}",
                        us - us % unit
                    );
                    if as_bytes {
                        b(&text)
                    } else {
                        ColumnValue::DateTime(text)
                    }
                })
                .boxed()
        }
        Timestamp { fsp } => {
            let unit = 10i64.pow(6 - u32::from(*fsp));
            let fsp = *fsp;
            let secs = prop_oneof![
                1i64..=i64::from(u32::MAX),
                Just(1),
                Just(i64::from(i32::MAX)),
                Just(i64::from(u32::MAX))
            ];
            prop_oneof![
                5 => (secs, 0i64..1_000_000, 0u8..3).prop_map(move |(s, us, form)| {
                    let us = us - us % unit;
                    match form {
                        0 => b(&format!("{s}.{us:06}")),
                        1 if fsp == 0 => b(&s.to_string()),
                        1 => b(&format!("{s}.{}", &format!("{us:06}")[..usize::from(fsp)])),
                        _ => ColumnValue::DateTime(timestamp_text(&ty2, s * 1_000_000 + us, 6).expect("text")),
                    }
                }),
                1 => Just(b("0")),
                1 => Just(ColumnValue::DateTime("0000-00-00 00:00:00.000000".into())),
            ]
            .boxed()
        }
        Time { fsp } => {
            let unit = 10i64.pow(6 - u32::from(*fsp));
            prop_oneof![
                (-MAX_TIME_MICROS..=MAX_TIME_MICROS, any::<bool>()).prop_map(move |(m, wide)| {
                    let m = m - m % unit;
                    let a = m.unsigned_abs();
                    let secs = a / 1_000_000;
                    let h = secs / 3600;
                    let hours = if wide {
                        format!("{h:03}")
                    } else {
                        h.to_string()
                    };
                    ColumnValue::Time(format!(
                        "{}{hours}:{:02}:{:02}.{:06}",
                        if m < 0 { "-" } else { "" },
                        secs / 60 % 60,
                        secs % 60,
                        a % 1_000_000
                    ))
                }),
                Just(ColumnValue::Time("-838:59:59.000000".into())),
                Just(ColumnValue::Time("838:59:59.000000".into())),
            ]
            .boxed()
        }
        Year => prop_oneof![Just(0i64), 1901i64..=2155]
            .prop_flat_map(|y| {
                prop_oneof![
                    Just(ColumnValue::Int(y)),
                    Just(ColumnValue::UInt(y as u64)),
                    Just(b(&format!("{y:04}")))
                ]
            })
            .boxed(),
        Bit { bits } => {
            let bits = *bits;
            let mask = if bits == 64 {
                u64::MAX
            } else {
                (1 << bits) - 1
            };
            let width = usize::from(bits).div_ceil(8);
            prop_oneof![
                any::<u64>().prop_map(move |u| u & mask),
                Just(mask),
                Just(0)
            ]
            .prop_flat_map(move |u| {
                let full = u.to_be_bytes()[8 - width..].to_vec();
                let minimal: Vec<u8> = full.iter().copied().skip_while(|x| *x == 0).collect();
                prop_oneof![
                    Just(ColumnValue::Bytes(full)),
                    Just(ColumnValue::Bytes(minimal)),
                    Just(ColumnValue::UInt(u))
                ]
            })
            .boxed()
        }
        Enum { values } => {
            let values = values.clone();
            (0..=values.len())
                .prop_flat_map(move |i| {
                    let text = if i == 0 {
                        std::string::String::new()
                    } else {
                        values[i - 1].clone()
                    };
                    prop_oneof![
                        Just(ColumnValue::Int(i as i64)),
                        Just(ColumnValue::UInt(i as u64)),
                        Just(b(&text))
                    ]
                })
                .boxed()
        }
        Set { values } => {
            let values = values.clone();
            let mask = if values.len() == 64 {
                u64::MAX
            } else {
                (1 << values.len()) - 1
            };
            prop_oneof![any::<u64>().prop_map(move |u| u & mask), Just(mask)]
                .prop_flat_map(move |u| {
                    let text: Vec<&str> = values
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| u >> i & 1 == 1)
                        .map(|(_, v)| v.as_str())
                        .collect();
                    prop_oneof![
                        Just(ColumnValue::UInt(u)),
                        Just(ColumnValue::Int(u as i64)),
                        Just(b(&text.join(",")))
                    ]
                })
                .boxed()
        }
        SqlType::String { charset, .. } if charset == "ascii" => {
            "[ -~]{0,10}".prop_map(|s| b(&s)).boxed()
        }
        SqlType::String { .. } if ty.is_utf8_string() => prop_oneof![
            any::<std::string::String>().prop_map(|s| b(&s)),
            Just(b("")),
            Just(b("😀\u{10ffff}")),
        ]
        .boxed(),
        SqlType::String { .. } => prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(ColumnValue::Bytes),
            Just(ColumnValue::Bytes((0x80..=0xff).collect())),
        ]
        .boxed(),
        Binary { .. } | Geometry => proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(ColumnValue::Bytes)
            .boxed(),
        Json => any::<std::string::String>()
            .prop_map(|s| b(&json!({ "k": s, "n": [1, null] }).to_string()))
            .boxed(),
        Inet4 => any::<u32>()
            .prop_flat_map(|a| {
                let ip = std::net::Ipv4Addr::from(a);
                prop_oneof![
                    Just(ColumnValue::Bytes(ip.octets().to_vec())),
                    Just(b(&ip.to_string()))
                ]
            })
            .boxed(),
        Inet6 => any::<u128>()
            .prop_flat_map(|a| {
                let ip = Ipv6Addr::from(a);
                prop_oneof![
                    Just(ColumnValue::Bytes(ip.octets().to_vec())),
                    Just(b(&ip.to_string()))
                ]
            })
            .boxed(),
        Uuid => (any::<u128>(), any::<bool>())
            .prop_map(|(u, upper)| {
                let h = format!("{u:032x}");
                let s = format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                );
                b(&if upper { s.to_uppercase() } else { s })
            })
            .boxed(),
    }
}

fn row_strategy(table: &TableSchema) -> BoxedStrategy<Row> {
    let names: Vec<std::string::String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let values: Vec<BoxedStrategy<ColumnValue>> = table
        .columns
        .iter()
        .map(|c| {
            let s = input_strategy(&c.sql_type);
            if c.nullable {
                prop_oneof![1 => Just(ColumnValue::Null), 4 => s].boxed()
            } else {
                s
            }
        })
        .collect();
    (values, any::<bool>())
        .prop_map(move |(values, reversed)| {
            let mut row = Row {
                columns: names.clone().into(),
                values,
            };
            if reversed {
                row.columns = row.columns.iter().rev().cloned().collect();
                row.values.reverse();
            }
            row
        })
        .boxed()
}

fn event_strategy(table: &TableSchema) -> BoxedStrategy<ChangeEvent> {
    let rows = row_strategy(table);
    (
        rows.clone(),
        rows,
        0u8..4,
        ("[-0-9a-f]{0,4}", "\\PC{0,8}", "\\PC{0,8}", any::<u32>()),
        ("[0-9a-f:-]{0,20}", any::<u32>(), any::<bool>()),
        0..=i64::MAX as u64,
    )
        .prop_map(
            |(r1, r2, op, (shard, db, table, ts_sec), (gtid, index, last), ts_ms)| {
                let (op, before, after) = match op {
                    0 => (Op::Create, None, Some(r2)),
                    1 => (Op::Update, Some(r1), Some(r2)),
                    2 => (Op::Delete, Some(r1), None),
                    _ => (Op::Read, None, Some(r2)),
                };
                ChangeEvent {
                    op,
                    before,
                    after,
                    source: Source {
                        shard,
                        db,
                        table,
                        ts_sec,
                    },
                    txn: TxnInfo { gtid, index, last },
                    ts_ms,
                }
            },
        )
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Garbage after a valid header is an error, never a panic.
    #[test]
    fn direct_decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let c = codec();
        let mut msg = SINGLE_OBJECT_MAGIC.to_vec();
        msg.extend_from_slice(&c.envelope().fingerprint().to_le_bytes());
        msg.extend_from_slice(&body);
        let _ = c.decode_event(&msg);
    }

    #[test]
    fn events_roundtrip_through_avro(ev in event_strategy(&all_types_table())) {
        let c = codec();
        let t = c.table();
        let (k, v) = c.encode_event(&ev).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // The direct encoding is apache-avro's, byte for byte, and the
        // direct decoding reads what apache-avro reads.
        let generic = c.encode_event_generic(&ev).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&generic, &(k.clone(), v.clone()));
        prop_assert_eq!(
            c.decode_event(&v).map_err(|e| TestCaseError::fail(e.to_string()))?,
            c.decode_event_generic(&v).map_err(|e| TestCaseError::fail(e.to_string()))?
        );
        let expected = canonical_event(t, &ev);
        prop_assert_eq!(c.decode_event(&v).map_err(|e| TestCaseError::fail(e.to_string()))?, expected.clone());
        prop_assert_eq!(c.decode_key(&k).map_err(|e| TestCaseError::fail(e.to_string()))?, key_of(t, &ev));
        // The canonical form is a fixed point and encodes to the same bytes.
        let (k2, v2) = c.encode_event(&expected).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(v2, v);
        prop_assert_eq!(k2, k);
    }
}

// ---------------------------------------------------------------------------
// Third-party decoder: fastavro via tests/avro/decode.py
// ---------------------------------------------------------------------------

/// What decode.py prints for a canonical value of a column type.
fn fastavro_view(ty: &SqlType, v: &ColumnValue) -> Json {
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<std::string::String>()
    };
    let text = |b: &[u8]| std::string::String::from_utf8(b.to_vec()).expect("utf8");
    match (ty, v) {
        (_, ColumnValue::Null) => Json::Null,
        (SqlType::BigInt { unsigned: true }, ColumnValue::UInt(u)) => json!(u.to_string()),
        (_, ColumnValue::Int(i)) => json!(i),
        (_, ColumnValue::UInt(u)) => json!(u),
        (_, ColumnValue::Float(f)) => json!(f64::from(*f)),
        (_, ColumnValue::Double(d)) => json!(d),
        (SqlType::Timestamp { .. }, ColumnValue::DateTime(s)) => {
            json!(
                timestamp_micros_from_civil(ty, &parse_civil(ty, s).expect("civil"))
                    .expect("micros")
            )
        }
        (_, ColumnValue::DateTime(s)) => json!(s),
        (_, ColumnValue::Time(s)) => json!(time_micros(ty, s).expect("micros")),
        (_, ColumnValue::Bytes(b)) => match avro_type(ty) {
            Json::String(t) if t == "bytes" => json!(hex(b)),
            Json::Object(m) if m["type"] == "bytes" && !m.contains_key("logicalType") => {
                json!(hex(b))
            }
            _ => json!(text(b)),
        },
    }
}

/// Compare decode.py's view of a row with the canonical row.
fn assert_row_matches(c: &EventCodec, decoded: &Json, row: &Row, what: &str) {
    for (col, name) in c.table().columns.iter().zip(c.field_names()) {
        let Some(v) = row.get(&col.name) else {
            continue;
        };
        let got = &decoded[name];
        let want = fastavro_view(&col.sql_type, v);
        match (&col.sql_type, v) {
            // Floats travel as repr() text, parsed exactly here.
            (SqlType::Float | SqlType::Double, ColumnValue::Float(_) | ColumnValue::Double(_)) => {
                let got: f64 = got
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN);
                assert_eq!(Some(got), want.as_f64(), "{what}: column {}", col.name);
            }
            _ => assert_eq!(got, &want, "{what}: column {} ({})", col.name, col.sql_type),
        }
    }
}

fn fastavro_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import fastavro"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("REVDOOR_REQUIRE_FASTAVRO").as_deref() != Ok("1"),
            "REVDOOR_REQUIRE_FASTAVRO=1 but `python3 -c 'import fastavro'` fails (pip install fastavro)"
        );
        eprintln!("NOTICE: skipping the fastavro cross-check: `python3 -c 'import fastavro'` fails (pip install fastavro)");
    }
    ok
}

#[test]
fn fastavro_decodes_every_type() {
    if !fastavro_available() {
        return;
    }
    let c = codec();
    let t = c.table().clone();
    let mut events = vec![
        event(Op::Create, None, Some(edge_row(&t, true))),
        event(Op::Update, Some(edge_row(&t, false)), Some(null_row(&t))),
        event(Op::Delete, Some(edge_row(&t, false)), None),
    ];
    // And random ones, reproducibly.
    let mut runner = TestRunner::deterministic();
    let strategy = event_strategy(&t);
    for _ in 0..40 {
        events.push(
            strategy
                .new_tree(&mut runner)
                .expect("value tree")
                .current(),
        );
    }

    let mut input = std::string::String::new();
    let mut encoded = Vec::new();
    for ev in &events {
        let (k, v) = c.encode_event(ev).expect("encode");
        let hex = |b: &[u8]| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<std::string::String>()
        };
        input.push_str(&json!({"schema": c.envelope().json(), "message_hex": hex(&v)}).to_string());
        input.push('\n');
        input.push_str(&json!({"schema": c.key().json(), "message_hex": hex(&k)}).to_string());
        input.push('\n');
        encoded.push(canonical_event(&t, ev));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/avro/decode.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start decode.py");
    // Feed stdin from another thread: decode.py answers line by line, so
    // writing everything before reading would fill both pipes and deadlock.
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("decode.py output");
    feeder
        .join()
        .expect("feeder thread")
        .expect("write to decode.py");
    let stdout = std::string::String::from_utf8(out.stdout).expect("utf8 output");
    assert!(
        out.status.success(),
        "decode.py failed: {}\n{}",
        std::string::String::from_utf8_lossy(&out.stderr),
        stdout
            .lines()
            .filter(|l| l.contains("\"error\""))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let lines: Vec<Json> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2 * events.len());
    for (i, ev) in encoded.iter().enumerate() {
        let value = &lines[2 * i];
        let key = &lines[2 * i + 1];
        let fp = |f: u64| {
            f.to_le_bytes()
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<std::string::String>()
        };
        assert_eq!(value["fingerprint"], json!(fp(c.envelope().fingerprint())));
        assert_eq!(key["fingerprint"], json!(fp(c.key().fingerprint())));
        let r = &value["record"];
        assert_eq!(r["op"], op_str(ev.op), "event {i}");
        assert_eq!(r["ts_ms"], json!(ev.ts_ms), "event {i}");
        assert_eq!(
            r["source"],
            json!({"shard": ev.source.shard, "db": ev.source.db, "table": ev.source.table, "ts_sec": ev.source.ts_sec}),
            "event {i}"
        );
        assert_eq!(
            r["txn"],
            json!({"gtid": ev.txn.gtid, "index": ev.txn.index, "last": ev.txn.last}),
            "event {i}"
        );
        for (image, row) in [("before", &ev.before), ("after", &ev.after)] {
            match row {
                None => assert_eq!(r[image], Json::Null, "event {i} {image}"),
                Some(row) => assert_row_matches(&c, &r[image], row, &format!("event {i} {image}")),
            }
        }
        let key_row = key_of(&t, ev);
        assert_row_matches(&c, &key["record"], &key_row, &format!("event {i} key"));
    }
}

/// Prints the schemas for pinning their canonical forms with fastavro:
/// `cargo test -p revdoor-core avro::tests::print_schemas -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_schemas() {
    let c = codec();
    println!("{}", c.envelope().json());
    println!("{}", c.key().json());
    for (s, ..) in pinned_schemas() {
        println!("{s}");
    }
}

// Pinned with fastavro 1.13.1 (see `print_schemas`): `to_parsing_canonical_form`,
// and `fingerprint(pcf, "CRC-64-AVRO")` read little-endian.
const PIN_ENVELOPE: u64 = 0x534d_ac9d_421f_5b11;
const PIN_ENVELOPE_PCF: &str = r#"{"name":"revdoor.shop_db.orders.Envelope","type":"record","fields":[{"name":"before","type":["null",{"name":"revdoor.shop_db.orders.Value","type":"record","fields":[{"name":"id","type":"bytes"},{"name":"region","type":"string"},{"name":"ti","type":["null","int"]},{"name":"tiu","type":["null","int"]},{"name":"si","type":["null","int"]},{"name":"siu","type":["null","int"]},{"name":"mi","type":["null","int"]},{"name":"miu","type":["null","int"]},{"name":"i","type":["null","int"]},{"name":"iu","type":["null","long"]},{"name":"bi","type":["null","long"]},{"name":"biu","type":["null","bytes"]},{"name":"dec65","type":["null","bytes"]},{"name":"dec5","type":["null","bytes"]},{"name":"dec1","type":["null","bytes"]},{"name":"dec20","type":["null","bytes"]},{"name":"f","type":["null","float"]},{"name":"d","type":["null","double"]},{"name":"dt","type":["null","string"]},{"name":"dtm0","type":["null","string"]},{"name":"dtm3","type":["null","string"]},{"name":"dtm6","type":["null","string"]},{"name":"ts0","type":["null","long"]},{"name":"ts6","type":["null","long"]},{"name":"tm0","type":["null","long"]},{"name":"tm6","type":["null","long"]},{"name":"y","type":["null","int"]},{"name":"b1","type":["null","bytes"]},{"name":"b13","type":["null","bytes"]},{"name":"b64","type":["null","bytes"]},{"name":"e","type":["null","string"]},{"name":"s","type":["null","string"]},{"name":"s64","type":["null","string"]},{"name":"vc","type":["null","string"]},{"name":"lt","type":["null","string"]},{"name":"txt_l1","type":["null","bytes"]},{"name":"ch_ascii","type":["null","string"]},{"name":"bin","type":["null","bytes"]},{"name":"blob","type":["null","bytes"]},{"name":"j","type":["null","string"]},{"name":"g","type":["null","bytes"]},{"name":"ip4","type":["null","string"]},{"name":"ip6","type":["null","string"]},{"name":"u","type":["null","string"]},{"name":"weird_name_2","type":["null","int"]},{"name":"weird_name","type":["null","int"]},{"name":"_1st","type":["null","int"]}]}]},{"name":"after","type":["null","revdoor.shop_db.orders.Value"]},{"name":"source","type":{"name":"revdoor.Source","type":"record","fields":[{"name":"shard","type":"string"},{"name":"db","type":"string"},{"name":"table","type":"string"},{"name":"ts_sec","type":"long"}]}},{"name":"op","type":"string"},{"name":"ts_ms","type":"long"},{"name":"txn","type":{"name":"revdoor.Txn","type":"record","fields":[{"name":"gtid","type":"string"},{"name":"index","type":"long"},{"name":"last","type":"boolean"}]}}]}"#;
const PIN_KEY: u64 = 0xd63f_0ca9_604e_5b41;
const PIN_KEY_PCF: &str = r#"{"name":"revdoor.shop_db.orders.Key","type":"record","fields":[{"name":"region","type":"string"},{"name":"id","type":"bytes"}]}"#;
const PIN_BYTES: u64 = 0x4fc0_16da_c320_1965;
const PIN_LONG: u64 = 0xd054_e144_93f4_1db7;
const PIN_RECORD: u64 = 0xac33_2fcf_588c_0daa;
const PIN_RECORD_PCF: &str = r#"{"name":"x.y.A","type":"record","fields":[{"name":"f","type":{"name":"x.y.F","type":"fixed","size":3}},{"name":"g","type":"x.y.F"},{"name":"h","type":["null","long"]},{"name":"e","type":{"name":"other.E","type":"enum","symbols":["A","B"]}},{"name":"r","type":{"name":"x.y.Inner","type":"record","fields":[{"name":"e2","type":"other.E"}]}},{"name":"a","type":{"type":"array","items":"x.y.Inner"}},{"name":"m","type":{"type":"map","values":"string"}}]}"#;

#[test]
fn binlog_mediumint_gets_its_sign_back() {
    let signed = SqlType::MediumInt { unsigned: false };
    assert_eq!(
        from_binlog(&signed, ColumnValue::Int(8_388_608)).expect("min"),
        ColumnValue::Int(-8_388_608)
    );
    assert_eq!(
        from_binlog(&signed, ColumnValue::Int(16_777_215)).expect("-1"),
        ColumnValue::Int(-1)
    );
    assert_eq!(
        from_binlog(&signed, ColumnValue::Int(8_388_607)).expect("max"),
        ColumnValue::Int(8_388_607)
    );
    assert_eq!(
        from_binlog(&signed, ColumnValue::Int(-5)).expect("already signed"),
        ColumnValue::Int(-5)
    );
    let unsigned = SqlType::MediumInt { unsigned: true };
    assert_eq!(
        from_binlog(&unsigned, ColumnValue::Int(16_777_215)).expect("max"),
        ColumnValue::Int(16_777_215)
    );
}

#[test]
fn binlog_binary_gets_its_trailing_zeros_back() {
    let t = SqlType::Binary {
        kind: BinaryKind::Binary(4),
    };
    assert_eq!(
        from_binlog(&t, ColumnValue::Bytes(vec![])).expect("pad"),
        ColumnValue::Bytes(vec![0; 4])
    );
    assert_eq!(
        from_binlog(&t, ColumnValue::Bytes(vec![7])).expect("pad"),
        ColumnValue::Bytes(vec![7, 0, 0, 0])
    );
    let v = SqlType::Binary {
        kind: BinaryKind::VarBinary(4),
    };
    assert_eq!(
        from_binlog(&v, ColumnValue::Bytes(vec![7])).expect("as is"),
        ColumnValue::Bytes(vec![7])
    );
}
