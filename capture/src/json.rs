//! MySQL binary JSON (a `JSON` column in a row image) as JSON text, exactly.
//!
//! mysql_common parses the binary document's structure (headers, offsets,
//! the small and large storage formats); this module renders the values
//! itself. mysql_common's own conversion goes through `serde_json::Value`
//! and turns every DECIMAL into a string (`{"dec": 0.50}` became
//! `{"dec":"0.50"}`), which silently changed data on a MySQL source.
//!
//! # Spelling
//!
//! The text is the one MySQL's `SELECT json_col` returns
//! (`Json_wrapper::to_string`, `wrapper_to_string` in MySQL's
//! `sql-common/json_dom.cc`), so that rows copied with `SELECT` and rows
//! streamed from the binlog carry the same bytes:
//!
//! - `, ` between elements and members, `: ` between a key and its value:
//!   `{"a": 1, "b": [1, 2]}`; `{}` and `[]` when empty.
//! - Object members in their stored order, which is MySQL's canonical
//!   order (shorter keys first, then bytewise), as `SELECT` prints them.
//! - Integers (int16 … uint64) in decimal: `-9223372036854775808`,
//!   `18446744073709551615`.
//! - DECIMAL (an opaque value: precision, scale, then MySQL's packed
//!   decimal) with exactly `scale` fraction digits and no leading zeros,
//!   as `decimal2string` prints it: `0.50`, `-12.300`, `7`, and a negative
//!   zero is kept as `-0.00` as MySQL prints it.
//! - Doubles as MySQL's `my_gcvt(…, MY_GCVT_ARG_DOUBLE, 34, …)` prints them
//!   (`strings/dtoa.cc`), then `.0` appended when neither `.` nor `e` was
//!   written: the shortest digits that read back as the same double, fixed
//!   notation when the decimal exponent allows it (`0.1`, `100.0`,
//!   `0.000000000000001`, `123456789012345.0`), otherwise `1e300`,
//!   `5e-324`, `1.5e15`, `1e-16` (no `+`, no leading zeros in the
//!   exponent); `-0.0` for negative zero.
//! - Strings escaped as MySQL's `double_quote` does: `\"`, `\\`, `\b`,
//!   `\f`, `\n`, `\r`, `\t`, every other byte up to 0x1f as `\u00xx`
//!   (lowercase hex), everything else (including `/`, DEL and non-ASCII)
//!   as it is, in UTF-8.
//! - DATE, TIME, DATETIME and TIMESTAMP (opaque, packed) as quoted
//!   `"2015-01-15"`, `"23:24:25.000000"` (hours may exceed two digits,
//!   a negative time starts with `-`), `"2015-01-15 23:24:25.000000"`:
//!   `my_TIME_to_str` with 6 fraction digits.
//! - An opaque `VAR_STRING` as a plain JSON string; any other opaque value
//!   as `"base64:type<field type>:<base64>"`, the base64 with a newline
//!   (written `\n` in the JSON text) every 76 characters as MySQL's
//!   `base64_encode` does.
//! - An empty binary value (mysql_common reads it as null) is `null`, as
//!   MySQL reads it.
//!
//! Where this may differ from MySQL: MySQL takes a double's digits from
//! David Gay's `dtoa` (mode 4 with 34 digits allowed, which stops at the
//! shortest digits that read back as the double); here they come from
//! Rust's formatter, with a tie between two equally close candidates
//! settled as Gay's code settles it (see [`shortest`]). That was checked
//! against Gay's `dtoa` as CPython's `repr` uses it (6.7 million doubles,
//! random and tie-prone, no difference), and the notation rules against a
//! line-by-line transcription of `my_gcvt`, not against a MySQL server.
//! Malformed values MySQL never writes are errors here, where MySQL would
//! print something (a DECIMAL digit group out of range, a packed time with
//! more than 999999 microseconds, invalid UTF-8 in a string).
//!
//! # Errors
//!
//! A document that does not decode is a [`JsonError`] naming what is
//! wrong; nothing here panics on malformed input. Nesting deeper than
//! MySQL's own limit (100 arrays/objects, `JSON_DOCUMENT_MAX_DEPTH`) is
//! refused, as MySQL's `SELECT` refuses it.

use std::fmt::{Display, Write};

use mysql_common::binlog::jsonb::{Array, ComplexValue, Object, StorageFormat, Value};
use mysql_common::constants::ColumnType;

/// MySQL's `JSON_DOCUMENT_MAX_DEPTH`: arrays and objects nested deeper are
/// not printed by MySQL either.
const MAX_DEPTH: usize = 100;

/// Binary JSON that does not decode. The cause is in the message (the
/// stream's error carries only the text).
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// mysql_common found the structure broken (an offset, a size, a type).
    #[error("{0}")]
    Structure(std::io::Error),
    #[error("arrays and objects nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("double {0} is not a JSON number")]
    NotFinite(f64),
    #[error("DECIMAL opaque value of {0} bytes has no precision and scale")]
    DecimalHeader(usize),
    #[error("DECIMAL({precision},{scale}) is not a precision and scale")]
    DecimalType { precision: u8, scale: u8 },
    #[error("DECIMAL({precision},{scale}) takes {expected} bytes, the value has {len}")]
    DecimalSize {
        precision: u8,
        scale: u8,
        expected: usize,
        len: usize,
    },
    #[error("DECIMAL({precision},{scale}) has a digit group out of range")]
    DecimalDigits { precision: u8, scale: u8 },
    #[error("{kind} opaque value is {len} bytes, 8 expected")]
    TemporalSize { kind: &'static str, len: usize },
    #[error("{kind} opaque value has {micros} microseconds")]
    TemporalMicros { kind: &'static str, micros: u64 },
}

/// `value` as the text MySQL's `SELECT` prints for it (see the module
/// documentation).
pub(crate) fn to_text(value: &Value<'_>) -> Result<String, JsonError> {
    let mut out = String::new();
    write_value(value, 0, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value<'_>, depth: usize, out: &mut String) -> Result<(), JsonError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::I16(x) => push(out, x),
        Value::U16(x) => push(out, x),
        Value::I32(x) => push(out, x),
        Value::U32(x) => push(out, x),
        Value::I64(x) => push(out, x),
        Value::U64(x) => push(out, x),
        Value::F64(x) => write_double(*x, out)?,
        Value::String(s) => write_string(utf8(s.str_raw(), "string")?, out),
        Value::SmallArray(a) => write_array(a, depth, out)?,
        Value::LargeArray(a) => write_array(a, depth, out)?,
        Value::SmallObject(o) => write_object(o, depth, out)?,
        Value::LargeObject(o) => write_object(o, depth, out)?,
        Value::Opaque(o) => write_opaque(o.value_type(), o.data_raw(), out)?,
    }
    Ok(())
}

fn push(out: &mut String, x: impl Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{x}");
}

fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, JsonError> {
    std::str::from_utf8(bytes).map_err(|_| JsonError::NotUtf8(what))
}

/// The depth of a container's members, refused past MySQL's limit.
fn enter(depth: usize) -> Result<usize, JsonError> {
    if depth >= MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    Ok(depth + 1)
}

fn write_array<T: StorageFormat>(
    array: &ComplexValue<'_, T, Array>,
    depth: usize,
    out: &mut String,
) -> Result<(), JsonError> {
    let depth = enter(depth)?;
    out.push('[');
    for (i, element) in array.iter().enumerate() {
        let element = element.map_err(JsonError::Structure)?;
        if i > 0 {
            out.push_str(", ");
        }
        write_value(&element, depth, out)?;
    }
    out.push(']');
    Ok(())
}

fn write_object<T: StorageFormat>(
    object: &ComplexValue<'_, T, Object>,
    depth: usize,
    out: &mut String,
) -> Result<(), JsonError> {
    let depth = enter(depth)?;
    out.push('{');
    for (i, member) in object.iter().enumerate() {
        let (key, value) = member.map_err(JsonError::Structure)?;
        if i > 0 {
            out.push_str(", ");
        }
        write_string(utf8(key.value_raw(), "object key")?, out);
        out.push_str(": ");
        write_value(&value, depth, out)?;
    }
    out.push('}');
    Ok(())
}

/// A JSON string as MySQL's `double_quote` writes it.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // The byte is ASCII, so `i` is on a character boundary.
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            push(out, format_args!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// A double as MySQL's JSON writes it ([`revdoor_mysql::json::push_double`]).
fn write_double(x: f64, out: &mut String) -> Result<(), JsonError> {
    if revdoor_mysql::json::push_double(x, out) {
        Ok(())
    } else {
        Err(JsonError::NotFinite(x))
    }
}

fn write_opaque(kind: ColumnType, data: &[u8], out: &mut String) -> Result<(), JsonError> {
    match kind {
        ColumnType::MYSQL_TYPE_NEWDECIMAL => write_decimal(data, out)?,
        ColumnType::MYSQL_TYPE_DATE
        | ColumnType::MYSQL_TYPE_TIME
        | ColumnType::MYSQL_TYPE_DATETIME
        | ColumnType::MYSQL_TYPE_TIMESTAMP => {
            out.push('"');
            write_temporal(kind, data, out)?;
            out.push('"');
        }
        // MySQL prints a string kept as an opaque value as a string.
        ColumnType::MYSQL_TYPE_VAR_STRING => write_string(utf8(data, "string opaque value")?, out),
        _ => {
            let mut text = format!("base64:type{}:", u8::from(kind));
            push_base64(data, &mut text);
            write_string(&text, out);
        }
    }
    Ok(())
}

/// Bytes taken by 0..=9 decimal digits in MySQL's packed decimal.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// A DECIMAL opaque value (precision, scale, MySQL's packed decimal) as
/// MySQL's `decimal2string` writes it: a `-` if the sign says negative,
/// the integer digits without leading zeros (`0` if none), and exactly
/// `scale` fraction digits.
///
/// The packed form (`decimal2bin` in MySQL's `strings/decimal.cc`): the
/// integer digits in groups of nine (4 bytes each) with the leftover
/// leading digits first in 1–4 bytes, then the fraction digits in groups of
/// nine with the leftover trailing digits last; each group big-endian; a
/// negative number has every bit inverted; then the first bit is flipped.
fn write_decimal(data: &[u8], out: &mut String) -> Result<(), JsonError> {
    let [precision, scale, packed @ ..] = data else {
        return Err(JsonError::DecimalHeader(data.len()));
    };
    let (precision, scale) = (*precision, *scale);
    if precision == 0 || scale > precision {
        return Err(JsonError::DecimalType { precision, scale });
    }
    let intg = usize::from(precision - scale);
    let frac = usize::from(scale);
    let (lead, int_groups) = (intg % 9, intg / 9);
    let (frac_groups, tail) = (frac / 9, frac % 9);
    let expected = DIG2BYTES[lead] + 4 * int_groups + 4 * frac_groups + DIG2BYTES[tail];
    if packed.len() != expected {
        return Err(JsonError::DecimalSize {
            precision,
            scale,
            expected,
            len: packed.len(),
        });
    }
    let mut bytes = packed.to_vec();
    // The first bit is set for a positive number (checked before it is
    // flipped back), and precision ≥ 1 means there is a first byte.
    let negative = bytes.first().is_some_and(|b| b & 0x80 == 0);
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x80;
    }
    if negative {
        bytes.iter_mut().for_each(|b| *b = !*b);
    }

    let mut rest = bytes.as_slice();
    let mut group = |digits: usize, text: &mut String| -> Result<(), JsonError> {
        // The length was checked above; a short value stays an error.
        let (head, tail) =
            rest.split_at_checked(DIG2BYTES[digits])
                .ok_or(JsonError::DecimalSize {
                    precision,
                    scale,
                    expected,
                    len: packed.len(),
                })?;
        rest = tail;
        let value = head.iter().fold(0u64, |v, b| v << 8 | u64::from(*b));
        if value >= 10u64.pow(digits as u32) {
            return Err(JsonError::DecimalDigits { precision, scale });
        }
        push(text, format_args!("{value:0digits$}"));
        Ok(())
    };
    let mut int_digits = String::with_capacity(intg);
    if lead > 0 {
        group(lead, &mut int_digits)?;
    }
    for _ in 0..int_groups {
        group(9, &mut int_digits)?;
    }
    let mut frac_digits = String::with_capacity(frac);
    for _ in 0..frac_groups {
        group(9, &mut frac_digits)?;
    }
    if tail > 0 {
        group(tail, &mut frac_digits)?;
    }

    if negative {
        out.push('-');
    }
    match int_digits.trim_start_matches('0') {
        "" => out.push('0'),
        int => out.push_str(int),
    }
    if frac > 0 {
        out.push('.');
        out.push_str(&frac_digits);
    }
    Ok(())
}

/// A DATE, TIME, DATETIME or TIMESTAMP opaque value (MySQL's packed
/// 64-bit form, `TIME_to_longlong_packed`) as `my_TIME_to_str(…, 6)`
/// writes it. The packed form: sign; 40 bits of
/// `((year × 13 + month) << 5 | day) << 17 | hour << 12 | minute << 6 | second`
/// (a TIME has only the hour, 10 bits, and below); 24 bits of microseconds.
fn write_temporal(kind: ColumnType, data: &[u8], out: &mut String) -> Result<(), JsonError> {
    let name = match kind {
        ColumnType::MYSQL_TYPE_DATE => "DATE",
        ColumnType::MYSQL_TYPE_TIME => "TIME",
        ColumnType::MYSQL_TYPE_TIMESTAMP => "TIMESTAMP",
        _ => "DATETIME",
    };
    let packed: [u8; 8] = data.try_into().map_err(|_| JsonError::TemporalSize {
        kind: name,
        len: data.len(),
    })?;
    let packed = i64::from_le_bytes(packed);
    let magnitude = packed.unsigned_abs();
    let micros = magnitude % (1 << 24);
    let whole = magnitude >> 24;
    if micros > 999_999 {
        return Err(JsonError::TemporalMicros { kind: name, micros });
    }

    if kind == ColumnType::MYSQL_TYPE_TIME {
        let hour = (whole >> 12) % (1 << 10);
        let minute = (whole >> 6) % (1 << 6);
        let second = whole % (1 << 6);
        if packed < 0 {
            out.push('-');
        }
        push(
            out,
            format_args!("{hour:02}:{minute:02}:{second:02}.{micros:06}"),
        );
        return Ok(());
    }
    // MySQL prints no sign for a date, and "00" for a two-digit field of
    // 100 or more (a year past 9999).
    let two = |v: u64| if v < 100 { v } else { 0 };
    let ymd = whole >> 17;
    let ym = ymd >> 5;
    let (year, month, day) = (ym / 13, ym % 13, ymd % (1 << 5));
    push(
        out,
        format_args!(
            "{:02}{:02}-{month:02}-{day:02}",
            two(year / 100),
            two(year % 100)
        ),
    );
    if kind != ColumnType::MYSQL_TYPE_DATE {
        let hms = whole % (1 << 17);
        let (hour, minute, second) = (hms >> 12, (hms >> 6) % (1 << 6), hms % (1 << 6));
        push(
            out,
            format_args!(" {hour:02}:{minute:02}:{second:02}.{micros:06}"),
        );
    }
    Ok(())
}

/// Base64 as MySQL's `base64_encode` writes it: the standard alphabet with
/// `=` padding, and a newline before every 77th character of a line.
fn push_base64(data: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let char_at = |bits: u32| char::from(ALPHABET[(bits & 0x3f) as usize]);
    for (i, chunk) in data.chunks(3).enumerate() {
        // 76 characters a line: 19 groups of four.
        if i > 0 && i % 19 == 0 {
            out.push('\n');
        }
        let byte = |k: usize| u32::from(chunk.get(k).copied().unwrap_or(0));
        let bits = byte(0) << 16 | byte(1) << 8 | byte(2);
        out.push(char_at(bits >> 18));
        out.push(char_at(bits >> 12));
        out.push(if chunk.len() > 1 {
            char_at(bits >> 6)
        } else {
            '='
        });
        out.push(if chunk.len() > 2 { char_at(bits) } else { '=' });
    }
}

#[cfg(test)]
mod tests {
    //! Documents are built byte by byte by [`encode`], which follows MySQL's
    //! `json_binary.cc` (checked against fixed bytes below), then read by
    //! mysql_common as the binlog reader reads them and rendered here.

    use mysql_common::binlog::jsonb;
    use mysql_common::io::ParseBuf;
    use proptest::prelude::*;

    use super::*;

    /// A JSON document to encode in MySQL's binary format.
    #[derive(Debug, Clone)]
    enum J {
        Null,
        True,
        False,
        I16(i16),
        U16(u16),
        I32(i32),
        U32(u32),
        I64(i64),
        U64(u64),
        F64(f64),
        Str(Vec<u8>),
        Opaque(u8, Vec<u8>),
        Arr(Vec<J>),
        Obj(Vec<(Vec<u8>, J)>),
        /// A container forced into the large format (MySQL uses it when
        /// the small one would exceed 64 KiB).
        Large(Box<J>),
    }

    fn s(text: &str) -> J {
        J::Str(text.as_bytes().to_vec())
    }

    fn obj(members: Vec<(&str, J)>) -> J {
        J::Obj(
            members
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    fn type_byte(j: &J, large: bool) -> u8 {
        match j {
            J::Obj(_) => u8::from(large),
            J::Arr(_) => 2 + u8::from(large),
            J::Large(inner) => type_byte(inner, true),
            J::Null | J::True | J::False => 0x04,
            J::I16(_) => 0x05,
            J::U16(_) => 0x06,
            J::I32(_) => 0x07,
            J::U32(_) => 0x08,
            J::I64(_) => 0x09,
            J::U64(_) => 0x0a,
            J::F64(_) => 0x0b,
            J::Str(_) => 0x0c,
            J::Opaque(..) => 0x0f,
        }
    }

    /// The whole document: its type byte, then its value.
    fn encode(j: &J) -> Vec<u8> {
        let mut doc = encode_value(j);
        let large = matches!(j, J::Large(_)) || doc.len() > usize::from(u16::MAX);
        if large && !matches!(j, J::Large(_)) {
            doc = encode_value(&J::Large(Box::new(j.clone())));
        }
        let mut out = vec![type_byte(j, large && matches!(j, J::Arr(_) | J::Obj(_)))];
        out.extend(doc);
        out
    }

    /// MySQL's variable-length size: 7 bits a byte, low bits first.
    fn var_len(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A value without its type byte; containers take the small format
    /// unless it does not fit (as MySQL's serializer does).
    fn encode_value(j: &J) -> Vec<u8> {
        let mut out = Vec::new();
        match j {
            J::Null => out.push(0),
            J::True => out.push(1),
            J::False => out.push(2),
            J::I16(x) => out.extend(x.to_le_bytes()),
            J::U16(x) => out.extend(x.to_le_bytes()),
            J::I32(x) => out.extend(x.to_le_bytes()),
            J::U32(x) => out.extend(x.to_le_bytes()),
            J::I64(x) => out.extend(x.to_le_bytes()),
            J::U64(x) => out.extend(x.to_le_bytes()),
            J::F64(x) => out.extend(x.to_le_bytes()),
            J::Str(bytes) => {
                var_len(bytes.len(), &mut out);
                out.extend(bytes);
            }
            J::Opaque(kind, bytes) => {
                out.push(*kind);
                var_len(bytes.len(), &mut out);
                out.extend(bytes);
            }
            J::Arr(items) => {
                out = container(None, items, false)
                    .unwrap_or_else(|| container(None, items, true).expect("fits"))
            }
            J::Obj(members) => {
                let (keys, values): (Vec<_>, Vec<_>) = members.iter().cloned().unzip();
                out = container(Some(&keys), &values, false)
                    .unwrap_or_else(|| container(Some(&keys), &values, true).expect("fits"))
            }
            J::Large(inner) => match inner.as_ref() {
                J::Arr(items) => out = container(None, items, true).expect("fits"),
                J::Obj(members) => {
                    let (keys, values): (Vec<_>, Vec<_>) = members.iter().cloned().unzip();
                    out = container(Some(&keys), &values, true).expect("fits")
                }
                other => out = encode_value(other),
            },
        }
        out
    }

    /// The bytes a value inlined in its value entry takes, if it is.
    fn inlined(j: &J, large: bool) -> Option<Vec<u8>> {
        match j {
            J::Null => Some(vec![0]),
            J::True => Some(vec![1]),
            J::False => Some(vec![2]),
            J::I16(x) => Some(x.to_le_bytes().to_vec()),
            J::U16(x) => Some(x.to_le_bytes().to_vec()),
            J::I32(x) if large => Some(x.to_le_bytes().to_vec()),
            J::U32(x) if large => Some(x.to_le_bytes().to_vec()),
            _ => None,
        }
    }

    /// `element-count size key-entry* value-entry* key* value*`, offsets
    /// from the start of the container; `None` if it does not fit.
    fn container(keys: Option<&[Vec<u8>]>, values: &[J], large: bool) -> Option<Vec<u8>> {
        let width = if large { 4 } else { 2 };
        let offset = |n: usize, out: &mut Vec<u8>| -> Option<()> {
            if large {
                out.extend(u32::try_from(n).ok()?.to_le_bytes());
            } else {
                out.extend(u16::try_from(n).ok()?.to_le_bytes());
            }
            Some(())
        };
        let n = values.len();
        let header = 2 * width + keys.map_or(0, |_| n * (width + 2)) + n * (1 + width);
        let mut entries = Vec::new();
        let mut body = Vec::new();
        if let Some(keys) = keys {
            for key in keys {
                offset(header + body.len(), &mut entries)?;
                entries.extend(u16::try_from(key.len()).ok()?.to_le_bytes());
                body.extend(key);
            }
        }
        for value in values {
            let nested_large = matches!(value, J::Large(_));
            let encoded = encode_value(value);
            let large_child = nested_large
                || (matches!(value, J::Arr(_) | J::Obj(_))
                    && encoded.len() > usize::from(u16::MAX));
            entries.push(type_byte(value, large_child));
            match inlined(value, large) {
                Some(mut bytes) => {
                    bytes.resize(width, 0);
                    entries.extend(bytes);
                }
                None => {
                    offset(header + body.len(), &mut entries)?;
                    body.extend(encoded);
                }
            }
        }
        let mut out = Vec::new();
        offset(n, &mut out)?;
        offset(header + body.len(), &mut out)?;
        out.extend(entries);
        out.extend(body);
        Some(out)
    }

    /// MySQL's packed DECIMAL(precision, scale) opaque payload for the
    /// digits given (`int` exactly precision - scale digits, `frac` exactly
    /// scale digits), as `decimal2bin` writes it.
    fn decimal(negative: bool, int: &str, frac: &str) -> Vec<u8> {
        let (intg, scale) = (int.len(), frac.len());
        let mut out = vec![(intg + scale) as u8, scale as u8];
        let mut put = |digits: &str| {
            if digits.is_empty() {
                return;
            }
            let value: u32 = digits.parse().expect("digits");
            let n = DIG2BYTES[digits.len()];
            out.extend(&value.to_be_bytes()[4 - n..]);
        };
        let lead = intg % 9;
        put(&int[..lead]);
        for g in int.as_bytes()[lead..].chunks(9) {
            put(std::str::from_utf8(g).expect("ascii"));
        }
        for g in frac.as_bytes().chunks(9) {
            put(std::str::from_utf8(g).expect("ascii"));
        }
        if negative {
            out[2..].iter_mut().for_each(|b| *b = !*b);
        }
        if let Some(first) = out.get_mut(2) {
            *first ^= 0x80;
        }
        out
    }

    /// MySQL's packed temporal value (`TIME_to_longlong_*_packed`).
    fn datetime(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64, us: u64) -> Vec<u8> {
        let ymd = ((y * 13 + mo) << 5) | d;
        let hms = (h << 12) | (mi << 6) | s;
        let packed = (((ymd << 17) | hms) << 24) + us;
        (packed as i64).to_le_bytes().to_vec()
    }

    fn time(negative: bool, h: u64, mi: u64, s: u64, us: u64) -> Vec<u8> {
        let packed = ((((h << 12) | (mi << 6) | s) << 24) + us) as i64;
        (if negative { -packed } else { packed })
            .to_le_bytes()
            .to_vec()
    }

    const NEWDECIMAL: u8 = 246;
    const DATE: u8 = 10;
    const TIME: u8 = 11;
    const DATETIME: u8 = 12;
    const TIMESTAMP: u8 = 7;

    fn render_bytes(doc: &[u8]) -> Result<String, JsonError> {
        let value: jsonb::Value<'_> = ParseBuf(doc).parse(()).map_err(JsonError::Structure)?;
        to_text(&value)
    }

    fn render(j: &J) -> String {
        let text = render_bytes(&encode(j)).unwrap_or_else(|e| panic!("{j:?}: {e}"));
        // Whatever it is, it is JSON.
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
        text
    }

    fn double(x: f64) -> String {
        let mut out = String::new();
        write_double(x, &mut out).expect("finite");
        out
    }

    fn dec(negative: bool, int: &str, frac: &str) -> String {
        render(&J::Opaque(NEWDECIMAL, decimal(negative, int, frac)))
    }

    #[test]
    fn the_encoder_writes_mysqls_bytes() {
        // {"a": 1}: small object, one key entry (offset 11, length 1), the
        // int16 inlined in its value entry, then the key.
        assert_eq!(
            encode(&obj(vec![("a", J::I16(1))])),
            [0x00, 1, 0, 12, 0, 11, 0, 1, 0, 0x05, 1, 0, b'a']
        );
        // The examples in MySQL's decimal.cc: 1234567890.1234 as
        // DECIMAL(14,4), and its negative.
        assert_eq!(
            decimal(false, "1234567890", "1234")[2..],
            [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2]
        );
        assert_eq!(
            decimal(true, "1234567890", "1234")[2..],
            [0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D]
        );
    }

    /// Issue 13's silent data change: the decimal came through as a string.
    #[test]
    fn numbers_stay_numbers() {
        let doc = obj(vec![
            ("dbl", J::F64(0.5)),
            ("dec", J::Opaque(NEWDECIMAL, decimal(false, "0", "50"))),
        ]);
        assert_eq!(render(&doc), r#"{"dbl": 0.5, "dec": 0.50}"#);
        // As a binlog row value.
        let bytes = encode(&doc);
        let value: jsonb::Value<'_> = ParseBuf(&bytes).parse(()).expect("document");
        let column = crate::values::convert_value(
            mysql_common::binlog::value::BinlogValue::Jsonb(value),
            false,
        )
        .expect("converted");
        assert_eq!(
            column,
            revdoor_core::event::ColumnValue::Bytes(br#"{"dbl": 0.5, "dec": 0.50}"#.to_vec())
        );
    }

    #[test]
    fn decimals_keep_their_digits() {
        assert_eq!(dec(false, "0", "50"), "0.50");
        assert_eq!(dec(false, "1234567890", "1234"), "1234567890.1234");
        assert_eq!(dec(true, "1234567890", "1234"), "-1234567890.1234");
        assert_eq!(dec(true, "012", "300"), "-12.300");
        assert_eq!(dec(false, "7", ""), "7");
        assert_eq!(dec(false, "0000", ""), "0");
        assert_eq!(dec(false, "000", "000"), "0.000");
        // A negative zero is written as MySQL's decimal2string writes it.
        assert_eq!(dec(true, "0", "00"), "-0.00");
        assert_eq!(dec(false, "", "5"), "0.5");
        // DECIMAL(65,30): 35 integer digits (3 full groups and 8 more), 30
        // fraction digits (3 full groups and 3 more).
        let int = "12345678901234567890123456789012345";
        let frac = "100000000000000000000000000000";
        assert_eq!(dec(false, int, frac), format!("{int}.{frac}"));
        assert_eq!(dec(true, int, frac), format!("-{int}.{frac}"));
        let max = "9".repeat(35);
        let max_frac = "9".repeat(30);
        assert_eq!(dec(true, &max, &max_frac), format!("-{max}.{max_frac}"));
        let small = format!("{}1", "0".repeat(29));
        assert_eq!(dec(false, &"0".repeat(35), &small), format!("0.{small}"));
        // Leading zeros in the packed integer part are not printed.
        assert_eq!(dec(false, &format!("{}42", "0".repeat(33)), "0"), "42.0");
    }

    #[test]
    fn doubles_are_written_as_mysql_writes_them() {
        for (x, text) in [
            (0.1, "0.1"),
            (0.5, "0.5"),
            (-2.5, "-2.5"),
            (1e300, "1e300"),
            (-1e300, "-1e300"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (5e-324, "5e-324"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (f64::MAX, "1.7976931348623157e308"),
            (100.0, "100.0"),
            (1.0, "1.0"),
            (123.456, "123.456"),
            (1e14, "100000000000000.0"),
            (123456789012345.0, "123456789012345.0"),
            (1e15, "1e15"),
            (1.5e15, "1.5e15"),
            (1234567890123456.8, "1234567890123456.8"),
            (9007199254740992.0, "9.007199254740992e15"),
            (1e-5, "0.00001"),
            (1.5e-7, "0.00000015"),
            (1e-15, "0.000000000000001"),
            // 17 digits at the smallest fixed exponent: 33 characters, the
            // most my_gcvt's width leaves a negative number.
            (1.2345678901234568e-15, "0.0000000000000012345678901234568"),
            (
                -1.2345678901234568e-15,
                "-0.0000000000000012345678901234568",
            ),
            (1e-16, "1e-16"),
            (-1.25e-20, "-1.25e-20"),
            (1e22, "1e22"),
            (0.30000000000000004, "0.30000000000000004"),
            // Exactly halfway between two 17-digit candidates (…102.0625,
            // written as an exact sum): Gay's dtoa, and so MySQL, takes the
            // even last digit, Rust's formatter the higher one (…063).
            (-(29290947659102.0 + 0.0625), "-29290947659102.062"),
            (2156163594508435.0 + 0.25, "2156163594508435.2"),
            (-(628643006909686.0 + 0.25), "-628643006909686.2"),
        ] {
            assert_eq!(double(x), text, "{x:e}");
            let back: f64 = text.parse().expect("number");
            assert_eq!(back.to_bits(), x.to_bits(), "{text}");
        }
        assert!(matches!(
            write_double(f64::NAN, &mut String::new()),
            Err(JsonError::NotFinite(_))
        ));
        assert_eq!(
            render(&J::Arr(vec![J::F64(100.0), J::F64(1e300)])),
            "[100.0, 1e300]"
        );
    }

    #[test]
    fn integers_are_exact() {
        let doc = J::Arr(vec![
            J::I64(i64::MIN),
            J::I64(i64::MAX),
            J::U64(u64::MAX),
            J::I32(i32::MIN),
            J::U32(u32::MAX),
            J::I16(i16::MIN),
            J::U16(u16::MAX),
            J::I16(0),
        ]);
        assert_eq!(
            render(&doc),
            "[-9223372036854775808, 9223372036854775807, 18446744073709551615, \
             -2147483648, 4294967295, -32768, 65535, 0]"
        );
        assert_eq!(render(&J::U64(u64::MAX)), "18446744073709551615");
        // The large format inlines 32-bit integers too.
        assert_eq!(
            render(&J::Large(Box::new(J::Arr(vec![
                J::I32(-7),
                J::U32(7),
                J::True
            ])))),
            "[-7, 7, true]"
        );
    }

    #[test]
    fn literals() {
        assert_eq!(
            render(&J::Arr(vec![J::True, J::False, J::Null])),
            "[true, false, null]"
        );
        assert_eq!(render(&J::Null), "null");
        // An empty binary value is MySQL's JSON null.
        assert_eq!(render_bytes(&[]).expect("empty"), "null");
    }

    #[test]
    fn strings_are_escaped_as_mysql_escapes_them() {
        let text = "q\"b\\s/ \u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f} é 中文 🦀 \u{2028}";
        assert_eq!(
            render(&s(text)),
            "\"q\\\"b\\\\s/ \\b\\f\\n\\r\\t\\u0000\\u001f\u{7f} é 中文 🦀 \u{2028}\""
        );
        let back: String = serde_json::from_str(&render(&s(text))).expect("json");
        assert_eq!(back, text);
        assert_eq!(render(&s("")), "\"\"");
        // Keys are escaped the same way.
        assert_eq!(
            render(&obj(vec![("a\"\n", J::I16(1)), ("ключ", s("値"))])),
            "{\"a\\\"\\n\": 1, \"ключ\": \"値\"}"
        );
    }

    #[test]
    fn containers_nest_and_keep_their_order() {
        assert_eq!(render(&J::Arr(vec![])), "[]");
        assert_eq!(render(&J::Obj(vec![])), "{}");
        let doc = obj(vec![
            ("a", J::I16(1)),
            ("b", J::Arr(vec![J::I16(1), J::I16(2)])),
            // Stored order, not sorted here.
            (
                "zz",
                obj(vec![("y", J::Arr(vec![])), ("x", J::Obj(vec![]))]),
            ),
            ("aaa", J::Arr(vec![J::Arr(vec![J::Arr(vec![s("deep")])])])),
        ]);
        assert_eq!(
            render(&doc),
            r#"{"a": 1, "b": [1, 2], "zz": {"y": [], "x": {}}, "aaa": [[["deep"]]]}"#
        );
    }

    #[test]
    fn nesting_stops_where_mysql_stops() {
        let nest = |levels: usize| {
            let mut doc = J::I16(1);
            for _ in 0..levels {
                doc = J::Arr(vec![doc]);
            }
            doc
        };
        let text = render(&nest(MAX_DEPTH));
        assert_eq!(text, format!("{}1{}", "[".repeat(100), "]".repeat(100)));
        assert!(matches!(
            render_bytes(&encode(&nest(MAX_DEPTH + 1))),
            Err(JsonError::TooDeep)
        ));
    }

    #[test]
    fn large_documents() {
        // > 64 KiB: the outer array and object take the large format, the
        // small members inside stay small.
        let big = "x".repeat(70_000);
        let members: Vec<J> = (0..2_000)
            .map(|i| obj(vec![("id", J::I32(i)), ("v", s(&format!("value {i} ✓")))]))
            .collect();
        let doc = obj(vec![
            ("big", s(&big)),
            ("rows", J::Arr(members)),
            ("tail", J::Opaque(NEWDECIMAL, decimal(false, "3", "14"))),
        ]);
        let bytes = encode(&doc);
        assert!(bytes.len() > 64 * 1024);
        assert_eq!(bytes[0], 0x01, "a large object");
        let text = render(&doc);
        let expected_rows: Vec<String> = (0..2_000)
            .map(|i| format!(r#"{{"id": {i}, "v": "value {i} ✓"}}"#))
            .collect();
        assert_eq!(
            text,
            format!(
                r#"{{"big": "{big}", "rows": [{}], "tail": 3.14}}"#,
                expected_rows.join(", ")
            )
        );
        // A large array of large members.
        let doc = J::Arr(vec![s(&big), s(&big), J::F64(0.25)]);
        assert_eq!(render(&doc), format!(r#"["{big}", "{big}", 0.25]"#));
    }

    #[test]
    fn temporal_values_are_written_as_mysql_writes_them() {
        let doc = J::Arr(vec![
            J::Opaque(DATE, datetime(2015, 1, 15, 0, 0, 0, 0)),
            J::Opaque(TIME, time(false, 23, 24, 25, 0)),
            J::Opaque(DATETIME, datetime(2015, 1, 15, 23, 24, 25, 0)),
            J::Opaque(TIMESTAMP, datetime(2015, 1, 15, 23, 24, 25, 123_456)),
            J::Opaque(TIME, time(true, 838, 59, 59, 0)),
            J::Opaque(TIME, time(true, 0, 0, 0, 500_000)),
            J::Opaque(DATETIME, datetime(9999, 12, 31, 23, 59, 59, 999_999)),
            J::Opaque(DATE, datetime(0, 0, 0, 0, 0, 0, 0)),
        ]);
        assert_eq!(
            render(&doc),
            r#"["2015-01-15", "23:24:25.000000", "2015-01-15 23:24:25.000000", "#.to_owned()
                + r#""2015-01-15 23:24:25.123456", "-838:59:59.000000", "-00:00:00.500000", "#
                + r#""9999-12-31 23:59:59.999999", "0000-00-00"]"#
        );
    }

    #[test]
    fn other_opaque_values_are_base64() {
        // A BLOB (type 252) and a BIT (16) kept as opaque values.
        let doc = J::Arr(vec![
            J::Opaque(252, vec![1, 2]),
            J::Opaque(16, vec![0xff]),
            J::Opaque(15, b"abc".to_vec()),
            J::Opaque(252, vec![]),
        ]);
        assert_eq!(
            render(&doc),
            r#"["base64:type252:AQI=", "base64:type16:/w==", "base64:type15:YWJj", "base64:type252:"]"#
        );
        // MySQL's base64_encode breaks lines after 76 characters.
        let data: Vec<u8> = (0..=255).collect();
        let text = render(&J::Opaque(255, data.clone()));
        let b64 = text
            .strip_prefix("\"base64:type255:")
            .and_then(|t| t.strip_suffix('"'))
            .expect("quoted");
        let lines: Vec<&str> = b64.split("\\n").collect();
        assert_eq!(
            lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
            [76, 76, 76, 76, 40]
        );
        assert_eq!(lines[4], "5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==");
        assert!(lines[0].starts_with("AAECAwQFBgcICQoL"));
        // A string kept as an opaque VAR_STRING is a plain string.
        assert_eq!(
            render(&J::Opaque(253, "tab\there".as_bytes().to_vec())),
            r#""tab\there""#
        );
    }

    #[test]
    fn malformed_values_are_errors_that_say_what() {
        let err = |j: &J| render_bytes(&encode(j)).expect_err("malformed").to_string();
        assert_eq!(
            err(&J::Opaque(NEWDECIMAL, vec![3, 5, 0x80, 0])),
            "DECIMAL(3,5) is not a precision and scale"
        );
        assert_eq!(
            err(&J::Opaque(NEWDECIMAL, vec![3])),
            "DECIMAL opaque value of 1 bytes has no precision and scale"
        );
        assert_eq!(
            err(&J::Opaque(NEWDECIMAL, vec![3, 2, 0x80])),
            "DECIMAL(3,2) takes 2 bytes, the value has 1"
        );
        // 1 integer digit in one byte: 10 is not a digit.
        assert_eq!(
            err(&J::Opaque(NEWDECIMAL, vec![1, 0, 0x8a])),
            "DECIMAL(1,0) has a digit group out of range"
        );
        assert_eq!(
            err(&J::Opaque(DATETIME, vec![0; 7])),
            "DATETIME opaque value is 7 bytes, 8 expected"
        );
        assert_eq!(
            err(&J::Opaque(TIME, time(false, 1, 2, 3, 1_000_000))),
            "TIME opaque value has 1000000 microseconds"
        );
        assert_eq!(err(&J::Str(vec![b'a', 0xff])), "string is not UTF-8");
        assert_eq!(
            err(&J::Obj(vec![(vec![0xc3], J::Null)])),
            "object key is not UTF-8"
        );
        assert_eq!(
            err(&J::Arr(vec![J::F64(f64::INFINITY)])),
            "double inf is not a JSON number"
        );
        // A value offset pointing past the array: mysql_common's message.
        let mut bytes = encode(&J::Arr(vec![s("abc")]));
        bytes[6] = 0xff;
        let e = render_bytes(&bytes).expect_err("bad offset");
        assert!(matches!(e, JsonError::Structure(_)), "{e}");
        // An unknown type in a value entry.
        let mut bytes = encode(&J::Arr(vec![s("abc")]));
        bytes[5] = 0x0d;
        assert!(matches!(render_bytes(&bytes), Err(JsonError::Structure(_))));
    }

    /// The text MySQL writes for `j`, by a second, naive route (numbers
    /// through the functions tested above).
    fn expected(j: &J) -> String {
        match j {
            J::Null => "null".into(),
            J::True => "true".into(),
            J::False => "false".into(),
            J::I16(x) => x.to_string(),
            J::U16(x) => x.to_string(),
            J::I32(x) => x.to_string(),
            J::U32(x) => x.to_string(),
            J::I64(x) => x.to_string(),
            J::U64(x) => x.to_string(),
            J::F64(x) => double(*x),
            // serde_json escapes as MySQL does (lowercase \u00xx).
            J::Str(b) => {
                serde_json::to_string(std::str::from_utf8(b).expect("utf8")).expect("string")
            }
            J::Opaque(..) => unreachable!("not generated"),
            J::Arr(items) => format!(
                "[{}]",
                items.iter().map(expected).collect::<Vec<_>>().join(", ")
            ),
            J::Obj(members) => format!(
                "{{{}}}",
                members
                    .iter()
                    .map(|(k, v)| format!("{}: {}", expected(&J::Str(k.clone())), expected(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            J::Large(inner) => expected(inner),
        }
    }

    fn arb_doc() -> impl Strategy<Value = J> {
        let leaf = prop_oneof![
            Just(J::Null),
            Just(J::True),
            Just(J::False),
            any::<i16>().prop_map(J::I16),
            any::<u16>().prop_map(J::U16),
            any::<i32>().prop_map(J::I32),
            any::<u32>().prop_map(J::U32),
            any::<i64>().prop_map(J::I64),
            any::<u64>().prop_map(J::U64),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(J::F64),
            any::<String>().prop_map(|t| J::Str(t.into_bytes())),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(J::Arr),
                prop::collection::vec(("[a-z\u{e9}🦀]{0,6}", inner.clone()), 0..8).prop_map(
                    |members| J::Obj(
                        members
                            .into_iter()
                            .map(|(k, v): (String, J)| (k.into_bytes(), v))
                            .collect()
                    )
                ),
                inner.prop_map(|j| match j {
                    J::Arr(_) | J::Obj(_) => J::Large(Box::new(j)),
                    other => other,
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn documents_render_as_their_tree(doc in arb_doc()) {
            prop_assert_eq!(render(&doc), expected(&doc));
        }

        #[test]
        fn doubles_round_trip(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            prop_assume!(x.is_finite());
            let text = double(x);
            let back: f64 = text.parse().expect("number");
            prop_assert_eq!(back.to_bits(), x.to_bits(), "{}", text);
            // A JSON number, marked as a double.
            let parsed: serde_json::Value = serde_json::from_str(&text).expect("json");
            prop_assert!(parsed.is_number());
            prop_assert!(text.contains('.') || text.contains('e'));
        }

        #[test]
        fn strings_round_trip(text in any::<String>()) {
            let mut out = String::new();
            write_string(&text, &mut out);
            let back: String = serde_json::from_str(&out).expect("json");
            prop_assert_eq!(back, text);
            prop_assert!(!out.bytes().any(|b| b < 0x20));
        }

        #[test]
        fn decimals_round_trip(
            negative in any::<bool>(),
            digits in "[0-9]{1,65}",
            scale in 0usize..=30,
        ) {
            let scale = scale.min(digits.len());
            let (int, frac) = digits.split_at(digits.len() - scale);
            let text = dec(negative, int, frac);
            let int_text = match int.trim_start_matches('0') { "" => "0", t => t };
            let want = format!(
                "{}{int_text}{}{frac}",
                if negative { "-" } else { "" },
                if scale > 0 { "." } else { "" },
            );
            prop_assert_eq!(&text, &want);
            // mysql_common's own decimal reader agrees, except that it
            // drops the sign of a zero.
            let packed = decimal(negative, int, frac);
            let theirs = mysql_common::binlog::decimal::Decimal::read_packed(&packed[..], false)
                .expect("decimal")
                .to_string();
            prop_assert_eq!(theirs.trim_start_matches('-'), want.trim_start_matches('-'));
        }
    }
}
