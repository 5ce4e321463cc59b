//! Change-event values as statement parameters.

use mysql_async::Value;
use revdoor_core::event::ColumnValue;

/// A column value as a parameter: integers and floats as such, strings and
/// binaries as their bytes, temporal values as their canonical text.
pub fn to_param(v: &ColumnValue) -> Value {
    match v {
        ColumnValue::Null => Value::NULL,
        ColumnValue::Int(i) => Value::Int(*i),
        ColumnValue::UInt(u) => Value::UInt(*u),
        ColumnValue::Float(f) => Value::Float(*f),
        ColumnValue::Double(d) => Value::Double(*d),
        ColumnValue::Bytes(b) => Value::Bytes(b.clone()),
        ColumnValue::DateTime(s) | ColumnValue::Time(s) => Value::Bytes(s.as_bytes().to_vec()),
    }
}
