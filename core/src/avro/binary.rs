//! Avro's binary encoding, written and read directly (no `Value` tree, no
//! apache-avro writer or reader): what [`EventCodec`](super::EventCodec)
//! encodes and decodes events with.

use apache_avro::types::Value;
use serde_json::Value as Json;

use super::error::CodecError;
use super::schema::avro_type;
use crate::sqltype::SqlType;

/// Avro's `long` (and `int`): zig-zag, then 7 bits per byte, low first.
pub(super) fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Avro's `bytes` and `string`: length, then the bytes.
fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_bytes(out, s.as_bytes());
}

/// The binary encoding of the values [`to_avro`](super::to_avro) makes.
pub(super) fn write_avro(out: &mut Vec<u8>, v: &Value) -> Result<(), &'static str> {
    match v {
        Value::Null => {}
        Value::Boolean(b) => out.push(u8::from(*b)),
        Value::Int(i) => write_long(out, i64::from(*i)),
        Value::Long(l) | Value::TimestampMicros(l) | Value::TimeMicros(l) => write_long(out, *l),
        Value::Float(f) => out.extend_from_slice(&f.to_le_bytes()),
        Value::Double(d) => out.extend_from_slice(&d.to_le_bytes()),
        Value::Bytes(b) => write_bytes(out, b),
        Value::String(s) => write_str(out, s),
        Value::Decimal(d) => {
            let b = Vec::<u8>::try_from(d).map_err(|_| "bad decimal")?;
            write_bytes(out, &b);
        }
        _ => return Err("no binary encoding for this Avro value (revdoor bug)"),
    }
    Ok(())
}

/// The Avro type a column's values are written as ([`avro_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AvroKind {
    Int,
    Long,
    TimestampMicros,
    Float,
    Double,
    Bytes,
    Decimal,
    String,
}

impl AvroKind {
    pub(super) fn of(ty: &SqlType) -> AvroKind {
        let t = avro_type(ty);
        let (base, logical) = match &t {
            Json::String(s) => (s.as_str(), None),
            Json::Object(m) => (
                m.get("type").and_then(Json::as_str).unwrap_or(""),
                m.get("logicalType").and_then(Json::as_str),
            ),
            _ => ("", None),
        };
        match (base, logical) {
            ("int", _) => AvroKind::Int,
            ("long", Some("timestamp-micros")) => AvroKind::TimestampMicros,
            ("long", _) => AvroKind::Long,
            ("float", _) => AvroKind::Float,
            ("double", _) => AvroKind::Double,
            ("bytes", Some("decimal")) => AvroKind::Decimal,
            ("string", _) => AvroKind::String,
            _ => AvroKind::Bytes,
        }
    }
}

/// A cursor over an Avro binary datum (after the single-object header).
pub(super) struct Datum<'a> {
    pub(super) rest: &'a [u8],
    pub(super) fingerprint: u64,
    pub(super) len: usize,
}

impl<'a> Datum<'a> {
    fn truncated(&self) -> CodecError {
        CodecError::TruncatedDatum {
            fingerprint: self.fingerprint,
            len: self.len,
        }
    }

    pub(super) fn bad(&self, reason: &str) -> CodecError {
        CodecError::BadDatum {
            fingerprint: self.fingerprint,
            reason: reason.to_string(),
        }
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        let (b, rest) = self.rest.split_first().ok_or_else(|| self.truncated())?;
        self.rest = rest;
        Ok(*b)
    }

    pub(super) fn long(&mut self) -> Result<i64, CodecError> {
        let mut z: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift > 63 {
                return Err(self.bad("variable-length integer longer than 10 bytes"));
            }
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.rest.len() {
            return Err(self.truncated());
        }
        let (b, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(b)
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| self.bad("negative length"))?;
        self.take(n)
    }

    pub(super) fn string(&mut self) -> Result<&'a str, CodecError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.bad("string is not UTF-8"))
    }

    pub(super) fn boolean(&mut self) -> Result<bool, CodecError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.bad("boolean is neither 0 nor 1")),
        }
    }

    pub(super) fn value(&mut self, kind: AvroKind) -> Result<Value, CodecError> {
        Ok(match kind {
            AvroKind::Int => {
                Value::Int(i32::try_from(self.long()?).map_err(|_| self.bad("int out of range"))?)
            }
            AvroKind::Long => Value::Long(self.long()?),
            AvroKind::TimestampMicros => Value::TimestampMicros(self.long()?),
            AvroKind::Float => {
                let b = self.take(4)?;
                Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            AvroKind::Double => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Double(f64::from_le_bytes(a))
            }
            AvroKind::Bytes | AvroKind::Decimal => Value::Bytes(self.bytes()?.to_vec()),
            AvroKind::String => Value::String(self.string()?.to_string()),
        })
    }
}
