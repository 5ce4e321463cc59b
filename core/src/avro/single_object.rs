//! Avro single-object encoding: the `C3 01` + fingerprint header, and a
//! datum written or read through apache-avro.

use std::io::Read;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;

use super::error::CodecError;

/// The two magic bytes that open an Avro single-object encoded message.
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];
/// Magic plus fingerprint.
pub const SINGLE_OBJECT_HEADER_LEN: usize = 10;

/// `C3 01` + fingerprint (little-endian) + the Avro binary datum of `value`.
pub fn encode_single(
    schema: &Schema,
    fingerprint: u64,
    value: &Value,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
    out.extend_from_slice(&fingerprint.to_le_bytes());
    let encode = |e| CodecError::Encode {
        fingerprint,
        source: e,
    };
    let writer = GenericDatumWriter::builder(schema)
        .build()
        .map_err(encode)?;
    writer.write_value_ref(&mut out, value).map_err(encode)?;
    Ok(out)
}

/// The fingerprint in a single-object message's header.
pub fn single_object_fingerprint(bytes: &[u8]) -> Result<u64, CodecError> {
    if bytes.len() >= 2 && bytes[..2] != SINGLE_OBJECT_MAGIC {
        return Err(CodecError::BadMagic {
            found: bytes[..2].to_vec(),
        });
    }
    let header: [u8; 8] = bytes
        .get(2..SINGLE_OBJECT_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(CodecError::Truncated { len: bytes.len() })?;
    Ok(u64::from_le_bytes(header))
}

/// Decode a single-object message with the schema `lookup` gives for its
/// fingerprint. Returns the fingerprint and the value.
pub fn decode_single<'s>(
    bytes: &[u8],
    lookup: impl Fn(u64) -> Option<&'s Schema>,
) -> Result<(u64, Value), CodecError> {
    let fingerprint = single_object_fingerprint(bytes)?;
    let schema = lookup(fingerprint).ok_or(CodecError::UnknownFingerprint { fingerprint })?;
    let datum_err = |e| CodecError::Datum {
        fingerprint,
        source: e,
    };
    let reader = GenericDatumReader::builder(schema)
        .build()
        .map_err(datum_err)?;
    read_datum(&reader, fingerprint, bytes)
}

/// Read the datum of single-object `bytes` (fingerprint already checked)
/// with a prepared reader.
pub(super) fn read_datum(
    reader: &GenericDatumReader<'_>,
    fingerprint: u64,
    bytes: &[u8],
) -> Result<(u64, Value), CodecError> {
    let datum = bytes
        .get(SINGLE_OBJECT_HEADER_LEN..)
        .ok_or(CodecError::Truncated { len: bytes.len() })?;
    let datum_err = |e| CodecError::Datum {
        fingerprint,
        source: e,
    };
    let mut input = EofTracking {
        rest: datum,
        hit_eof: false,
    };
    let value = reader.read_value(&mut input);
    // apache-avro 0.22 decodes a boolean, a string or a union index cut off
    // by the end of input as `null` instead of failing, so a truncated datum
    // can "decode": any read past the end means truncation.
    if input.hit_eof {
        return Err(CodecError::TruncatedDatum {
            fingerprint,
            len: datum.len(),
        });
    }
    let value = value.map_err(datum_err)?;
    if !input.rest.is_empty() {
        return Err(CodecError::TrailingBytes {
            fingerprint,
            extra: input.rest.len(),
        });
    }
    Ok((fingerprint, value))
}

/// A reader over a slice that remembers whether anyone read past its end.
struct EofTracking<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl Read for EofTracking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.hit_eof = true;
        }
        self.rest.read(buf)
    }
}
