//! MySQL values as revdoor [`ColumnValue`]s: the protocol's (copy reads)
//! and the binlog's (row images).

use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value;
use revdoor_core::event::ColumnValue;

/// A MySQL protocol or binlog value as a [`ColumnValue`] (temporal values as
/// text, TIME hours beyond 24 kept).
pub(crate) fn value_from_mysql(v: Value, unsigned: bool) -> ColumnValue {
    match v {
        Value::NULL => ColumnValue::Null,
        Value::Int(i) if unsigned => ColumnValue::UInt(i as u64),
        Value::Int(i) => ColumnValue::Int(i),
        Value::UInt(u) => ColumnValue::UInt(u),
        Value::Float(f) => ColumnValue::Float(f),
        Value::Double(d) => ColumnValue::Double(d),
        Value::Bytes(b) => ColumnValue::Bytes(b),
        Value::Date(y, m, d, h, i, s, us) => {
            ColumnValue::DateTime(format!("{y:04}-{m:02}-{d:02} {h:02}:{i:02}:{s:02}.{us:06}"))
        }
        Value::Time(neg, days, h, i, s, us) => {
            let hours = u64::from(days) * 24 + u64::from(h);
            let sign = if neg { "-" } else { "" };
            ColumnValue::Time(format!("{sign}{hours:02}:{i:02}:{s:02}.{us:06}"))
        }
    }
}

/// A binlog value revdoor cannot carry.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// Binary JSON that does not decode (the cause is in the message).
    #[error("decode binary JSON: {0}")]
    Json(#[from] crate::json::JsonError),
    #[error("partial JSON update: set binlog_row_value_options='' on the source")]
    PartialJson,
}

/// A binlog row value as a [`ColumnValue`] (binary JSON as the text MySQL's
/// `SELECT` prints for it, see [`crate::json`]; a partial JSON update is
/// refused).
pub(crate) fn convert_value(
    value: BinlogValue<'_>,
    unsigned: bool,
) -> Result<ColumnValue, ValueError> {
    Ok(match value {
        BinlogValue::Value(v) => value_from_mysql(v, unsigned),
        BinlogValue::Jsonb(j) => ColumnValue::Bytes(crate::json::to_text(&j)?.into_bytes()),
        BinlogValue::JsonDiff(_) => return Err(ValueError::PartialJson),
    })
}
