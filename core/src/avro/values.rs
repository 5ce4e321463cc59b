//! Column values: the one canonical [`ColumnValue`] per SQL type, and the
//! conversions from binlog values and to and from Avro values.

use std::net::{Ipv4Addr, Ipv6Addr};

use apache_avro::types::Value;
use apache_avro::Decimal;
use num_bigint::{BigInt, Sign};

use super::error::{verr, ValueError};
use crate::event::ColumnValue;
use crate::sqltype::{BinaryKind, SqlType};

pub(super) const MAX_TIME_MICROS: i64 = ((838 * 60 + 59) * 60 + 59) * 1_000_000 + 999_999;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn text<'a>(ty: &SqlType, b: &'a [u8]) -> Result<&'a str, ValueError> {
    std::str::from_utf8(b).map_err(|_| verr(ty, "text value is not UTF-8"))
}

fn shape(ty: &SqlType, v: &ColumnValue) -> ValueError {
    let kind = match v {
        ColumnValue::Null => "NULL",
        ColumnValue::Int(_) => "Int",
        ColumnValue::UInt(_) => "UInt",
        ColumnValue::Float(_) => "Float",
        ColumnValue::Double(_) => "Double",
        ColumnValue::Bytes(_) => "Bytes",
        ColumnValue::DateTime(_) => "DateTime",
        ColumnValue::Time(_) => "Time",
    };
    verr(ty, format!("cannot take a {kind} value"))
}

/// Signed integer in `[min, max]` from Int, UInt or text.
fn signed(ty: &SqlType, v: &ColumnValue, min: i64, max: i64) -> Result<i64, ValueError> {
    let i = match v {
        ColumnValue::Int(i) => *i,
        ColumnValue::UInt(u) => i64::try_from(*u).map_err(|_| verr(ty, "value out of range"))?,
        ColumnValue::Bytes(b) => text(ty, b)?
            .parse::<i64>()
            .map_err(|_| verr(ty, "text is not an integer"))?,
        other => return Err(shape(ty, other)),
    };
    if i < min || i > max {
        return Err(verr(ty, "value out of range"));
    }
    Ok(i)
}

/// Unsigned integer of `bits` width; a negative Int is the two's complement.
fn unsigned(ty: &SqlType, v: &ColumnValue, bits: u32) -> Result<u64, ValueError> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let u = match v {
        ColumnValue::UInt(u) => *u,
        ColumnValue::Int(i) if *i >= 0 => *i as u64,
        ColumnValue::Int(i) => {
            let min = if bits == 64 {
                i64::MIN
            } else {
                -(1i64 << (bits - 1))
            };
            if *i < min {
                return Err(verr(
                    ty,
                    "negative value out of range for an unsigned column",
                ));
            }
            (*i as u64) & max
        }
        ColumnValue::Bytes(b) => text(ty, b)?
            .parse::<u64>()
            .map_err(|_| verr(ty, "text is not an unsigned integer"))?,
        other => return Err(shape(ty, other)),
    };
    if u > max {
        return Err(verr(ty, "value out of range"));
    }
    Ok(u)
}

fn int_bounds(ty: &SqlType) -> Option<(bool, u32)> {
    match ty {
        SqlType::TinyInt { unsigned } => Some((*unsigned, 8)),
        SqlType::SmallInt { unsigned } => Some((*unsigned, 16)),
        SqlType::MediumInt { unsigned } => Some((*unsigned, 24)),
        SqlType::Int { unsigned } => Some((*unsigned, 32)),
        SqlType::BigInt { unsigned } => Some((*unsigned, 64)),
        _ => None,
    }
}

/// Parse decimal text into the unscaled integer at `scale`, checking
/// `precision`.
fn parse_decimal(ty: &SqlType, s: &str, precision: u8, scale: u8) -> Result<BigInt, ValueError> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(verr(ty, "text is not a decimal number"));
    }
    let int_part = int_part.trim_start_matches('0');
    let scale = usize::from(scale);
    if int_part.len() > usize::from(precision).saturating_sub(scale) {
        return Err(verr(ty, "value has more integer digits than the column"));
    }
    let (kept, dropped) = frac_part.split_at(frac_part.len().min(scale));
    if dropped.bytes().any(|c| c != b'0') {
        return Err(verr(ty, "value has more fraction digits than the column"));
    }
    let mut digits = String::with_capacity(int_part.len() + scale + 1);
    digits.push_str(int_part);
    digits.push_str(kept);
    digits.push_str(&"0".repeat(scale - kept.len()));
    let magnitude = if digits.is_empty() {
        BigInt::from(0)
    } else {
        BigInt::parse_bytes(digits.as_bytes(), 10)
            .ok_or_else(|| verr(ty, "text is not a decimal number"))?
    };
    Ok(if neg { -magnitude } else { magnitude })
}

/// Format an unscaled integer with `scale` fraction digits, checking
/// `precision`.
fn format_decimal(
    ty: &SqlType,
    unscaled: &BigInt,
    precision: u8,
    scale: u8,
) -> Result<String, ValueError> {
    let digits = unscaled.magnitude().to_string();
    if digits.len() > usize::from(precision) && unscaled.sign() != Sign::NoSign {
        return Err(verr(
            ty,
            "value has more digits than the column's precision",
        ));
    }
    let scale = usize::from(scale);
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    let sign = if unscaled.sign() == Sign::Minus {
        "-"
    } else {
        ""
    };
    Ok(if scale == 0 {
        format!("{sign}{i}")
    } else {
        format!("{sign}{i}.{f}")
    })
}

/// Calendar parts of a DATE / DATETIME / TIMESTAMP text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |n, d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Parse `.f` (1 to 6 digits) into microseconds.
fn fraction(ty: &SqlType, b: &[u8]) -> Result<u32, ValueError> {
    if b.is_empty() {
        return Ok(0);
    }
    let Some(f) = b.strip_prefix(b".") else {
        return Err(verr(ty, "bad fractional seconds"));
    };
    if f.is_empty() || f.len() > 6 {
        return Err(verr(ty, "fractional seconds need 1 to 6 digits"));
    }
    let n = digits(f).ok_or_else(|| verr(ty, "bad fractional seconds"))?;
    Ok(n * 10u32.pow(6 - f.len() as u32))
}

/// `YYYY-MM-DD[( |T)HH:MM:SS[.f]]`; zero parts allowed (MySQL zero dates).
pub(super) fn parse_civil(ty: &SqlType, s: &str) -> Result<Civil, ValueError> {
    let b = s.as_bytes();
    let bad = || verr(ty, "text is not YYYY-MM-DD[ HH:MM:SS[.ffffff]]");
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let year = digits(&b[0..4]).ok_or_else(bad)?;
    let month = digits(&b[5..7]).ok_or_else(bad)?;
    let day = digits(&b[8..10]).ok_or_else(bad)?;
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
    if b.len() > 10 {
        if b.len() < 19 || !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' || b[16] != b':' {
            return Err(bad());
        }
        hour = digits(&b[11..13]).ok_or_else(bad)?;
        minute = digits(&b[14..16]).ok_or_else(bad)?;
        second = digits(&b[17..19]).ok_or_else(bad)?;
        micros = fraction(ty, &b[19..])?;
    }
    if month > 12 || day > 31 || hour > 23 || minute > 59 || second > 59 {
        return Err(verr(ty, "date or time part out of range"));
    }
    Ok(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    })
}

/// `.f` with `fsp` digits, refusing precision the column does not keep.
fn format_fraction(ty: &SqlType, micros: u32, fsp: u8) -> Result<String, ValueError> {
    let unit = 10u32.pow(6 - u32::from(fsp));
    if !micros.is_multiple_of(unit) {
        return Err(verr(
            ty,
            "value has more fractional-second digits than the column",
        ));
    }
    Ok(if fsp == 0 {
        String::new()
    } else {
        format!(".{:0width$}", micros / unit, width = usize::from(fsp))
    })
}

fn format_civil(ty: &SqlType, c: &Civil, fsp: u8) -> Result<String, ValueError> {
    Ok(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        format_fraction(ty, c.micros, fsp)?
    ))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// TIMESTAMP text (UTC) to microseconds since the epoch; the zero
/// timestamp is 0.
pub(super) fn timestamp_micros_from_civil(ty: &SqlType, c: &Civil) -> Result<i64, ValueError> {
    if c.year == 0 && c.month == 0 && c.day == 0 {
        if (c.hour, c.minute, c.second, c.micros) == (0, 0, 0, 0) {
            return Ok(0);
        }
        return Err(verr(ty, "zero date with a non-zero time"));
    }
    let y = i64::from(c.year);
    if c.month == 0 || c.day == 0 || c.day > days_in_month(y, c.month) {
        return Err(verr(
            ty,
            "not a calendar date (TIMESTAMP keeps no zero parts)",
        ));
    }
    let micros = days_from_civil(y, c.month, c.day) * MICROS_PER_DAY
        + (i64::from(c.hour) * 3600 + i64::from(c.minute) * 60 + i64::from(c.second)) * 1_000_000
        + i64::from(c.micros);
    if micros <= 0 {
        return Err(verr(ty, "TIMESTAMP before 1970-01-01 00:00:00 UTC"));
    }
    Ok(micros)
}

pub(super) fn timestamp_text(ty: &SqlType, micros: i64, fsp: u8) -> Result<String, ValueError> {
    if micros < 0 {
        return Err(verr(ty, "negative TIMESTAMP"));
    }
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rest = micros.rem_euclid(MICROS_PER_DAY);
    let (y, month, day) = if micros == 0 {
        (0, 0, 0)
    } else {
        civil_from_days(days)
    };
    if y > 9999 {
        return Err(verr(ty, "TIMESTAMP after year 9999"));
    }
    let secs = rest / 1_000_000;
    let c = Civil {
        year: y as u32,
        month,
        day,
        hour: (secs / 3600) as u32,
        minute: (secs / 60 % 60) as u32,
        second: (secs % 60) as u32,
        micros: (rest % 1_000_000) as u32,
    };
    format_civil(ty, &c, fsp)
}

/// Epoch seconds text `S[.f]` (the binlog's TIMESTAMP form).
fn epoch_text_micros(ty: &SqlType, s: &str) -> Result<i64, ValueError> {
    let (secs, frac) = match s.find('.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let secs = secs
        .parse::<u64>()
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .filter(|n| *n < i64::MAX / 1_000_000)
        .ok_or_else(|| verr(ty, "text is not epoch seconds"))?;
    Ok(secs * 1_000_000 + i64::from(fraction(ty, frac.as_bytes())?))
}

/// TIME text `[-]H:MM:SS[.f]` (1 to 3 hour digits) to signed microseconds.
pub(super) fn time_micros(ty: &SqlType, s: &str) -> Result<i64, ValueError> {
    let bad = || verr(ty, "text is not [-]HH:MM:SS[.ffffff]");
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let b = body.as_bytes();
    let colon = body.find(':').ok_or_else(bad)?;
    if colon == 0 || colon > 3 || b.len() < colon + 6 || b[colon + 3] != b':' {
        return Err(bad());
    }
    let h = digits(&b[..colon]).ok_or_else(bad)?;
    let m = digits(&b[colon + 1..colon + 3]).ok_or_else(bad)?;
    let sec = digits(&b[colon + 4..colon + 6]).ok_or_else(bad)?;
    if m > 59 || sec > 59 {
        return Err(verr(ty, "minutes or seconds out of range"));
    }
    let f = fraction(ty, &b[colon + 6..])?;
    let abs = (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(sec)) * 1_000_000 + i64::from(f);
    if abs > MAX_TIME_MICROS {
        return Err(verr(ty, "TIME out of range (±838:59:59.999999)"));
    }
    Ok(if neg { -abs } else { abs })
}

fn time_text(ty: &SqlType, micros: i64, fsp: u8) -> Result<String, ValueError> {
    if micros.unsigned_abs() > MAX_TIME_MICROS.unsigned_abs() {
        return Err(verr(ty, "TIME out of range (±838:59:59.999999)"));
    }
    let abs = micros.unsigned_abs();
    let secs = abs / 1_000_000;
    Ok(format!(
        "{}{:02}:{:02}:{:02}{}",
        if micros < 0 { "-" } else { "" },
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        format_fraction(ty, (abs % 1_000_000) as u32, fsp)?
    ))
}

fn bit_bytes(ty: &SqlType, v: &ColumnValue, bits: u8) -> Result<Vec<u8>, ValueError> {
    let width = usize::from(bits).div_ceil(8);
    let mut out = match v {
        ColumnValue::Bytes(b) => {
            let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            let significant = &b[first..];
            if significant.len() > width {
                return Err(verr(ty, "value wider than the column"));
            }
            let mut out = vec![0u8; width - significant.len()];
            out.extend_from_slice(significant);
            out
        }
        ColumnValue::UInt(_) | ColumnValue::Int(_) => {
            let u = match v {
                ColumnValue::UInt(u) => *u,
                ColumnValue::Int(i) if *i >= 0 || bits == 64 => *i as u64,
                _ => return Err(verr(ty, "negative value")),
            };
            u.to_be_bytes()[8 - width..].to_vec()
        }
        other => return Err(shape(ty, other)),
    };
    let spare = width * 8 - usize::from(bits);
    if spare > 0 && out.first().is_some_and(|b| b >> (8 - spare) != 0) {
        return Err(verr(ty, "value wider than the column"));
    }
    out.shrink_to_fit();
    Ok(out)
}

fn enum_member(ty: &SqlType, values: &[String], v: &ColumnValue) -> Result<Vec<u8>, ValueError> {
    let index = match v {
        ColumnValue::Int(i) => u64::try_from(*i).map_err(|_| verr(ty, "negative ENUM index"))?,
        ColumnValue::UInt(u) => *u,
        ColumnValue::Bytes(b) => {
            let s = text(ty, b)?;
            if s.is_empty() || values.iter().any(|m| m == s) {
                return Ok(b.clone());
            }
            return Err(verr(ty, "text is not a member (did the ENUM change?)"));
        }
        other => return Err(shape(ty, other)),
    };
    if index == 0 {
        return Ok(Vec::new());
    }
    usize::try_from(index - 1)
        .ok()
        .and_then(|i| values.get(i))
        .map(|m| m.as_bytes().to_vec())
        .ok_or_else(|| {
            verr(
                ty,
                format!(
                    "ENUM index beyond its {} members (did the ENUM change?)",
                    values.len()
                ),
            )
        })
}

fn set_text(ty: &SqlType, values: &[String], mask: u64) -> Result<Vec<u8>, ValueError> {
    if values.len() < 64 && mask >> values.len() != 0 {
        return Err(verr(
            ty,
            format!(
                "SET bitmask beyond its {} members (did the SET change?)",
                values.len()
            ),
        ));
    }
    let members: Vec<&str> = values
        .iter()
        .enumerate()
        .filter(|(i, _)| mask >> i & 1 == 1)
        .map(|(_, m)| m.as_str())
        .collect();
    Ok(members.join(",").into_bytes())
}

fn set_members(ty: &SqlType, values: &[String], v: &ColumnValue) -> Result<Vec<u8>, ValueError> {
    let mask = match v {
        ColumnValue::Int(i) => *i as u64,
        ColumnValue::UInt(u) => *u,
        ColumnValue::Bytes(b) => {
            let s = text(ty, b)?;
            let mut mask = 0u64;
            if !s.is_empty() {
                for part in s.split(',') {
                    let i = values
                        .iter()
                        .position(|m| m == part)
                        .ok_or_else(|| verr(ty, "text has a non-member (did the SET change?)"))?;
                    mask |= 1 << i;
                }
            }
            mask
        }
        other => return Err(shape(ty, other)),
    };
    set_text(ty, values, mask)
}

fn is_uuid_text(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        36 => b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        }),
        32 => b.iter().all(u8::is_ascii_hexdigit),
        _ => false,
    }
}

fn bytes_of<'a>(ty: &SqlType, v: &'a ColumnValue) -> Result<&'a Vec<u8>, ValueError> {
    match v {
        ColumnValue::Bytes(b) => Ok(b),
        other => Err(shape(ty, other)),
    }
}

fn utf8_bytes(ty: &SqlType, v: &ColumnValue) -> Result<Vec<u8>, ValueError> {
    let b = bytes_of(ty, v)?;
    text(ty, b)?;
    Ok(b.clone())
}

/// Text of a DATE / DATETIME / TIME / TIMESTAMP value given as text.
fn temporal_text<'a>(ty: &SqlType, v: &'a ColumnValue) -> Result<&'a str, ValueError> {
    match v {
        ColumnValue::DateTime(s) | ColumnValue::Time(s) => Ok(s),
        ColumnValue::Bytes(b) => text(ty, b),
        other => Err(shape(ty, other)),
    }
}

/// The canonical form of a value for its column type (see the module docs):
/// what [`from_avro`] returns and what apply binds. `NULL` stays `NULL`.
pub fn canonicalize(ty: &SqlType, v: &ColumnValue) -> Result<ColumnValue, ValueError> {
    if matches!(v, ColumnValue::Null) {
        return Ok(ColumnValue::Null);
    }
    Ok(match ty {
        SqlType::TinyInt { .. }
        | SqlType::SmallInt { .. }
        | SqlType::MediumInt { .. }
        | SqlType::Int { .. }
        | SqlType::BigInt { .. } => {
            let (is_unsigned, bits) =
                int_bounds(ty).ok_or_else(|| verr(ty, "not an integer type"))?;
            if is_unsigned {
                ColumnValue::UInt(unsigned(ty, v, bits)?)
            } else if bits == 64 {
                ColumnValue::Int(signed(ty, v, i64::MIN, i64::MAX)?)
            } else {
                let max = (1i64 << (bits - 1)) - 1;
                ColumnValue::Int(signed(ty, v, -max - 1, max)?)
            }
        }
        SqlType::Decimal { precision, scale } => {
            let unscaled = match v {
                ColumnValue::Bytes(b) => parse_decimal(ty, text(ty, b)?, *precision, *scale)?,
                ColumnValue::Int(i) => parse_decimal(ty, &i.to_string(), *precision, *scale)?,
                ColumnValue::UInt(u) => parse_decimal(ty, &u.to_string(), *precision, *scale)?,
                other => return Err(shape(ty, other)),
            };
            ColumnValue::Bytes(format_decimal(ty, &unscaled, *precision, *scale)?.into_bytes())
        }
        SqlType::Float => {
            let f = match v {
                ColumnValue::Float(f) => *f,
                ColumnValue::Double(d) if f64::from(*d as f32) == *d || d.is_nan() => *d as f32,
                ColumnValue::Double(_) => return Err(verr(ty, "DOUBLE value not exact as FLOAT")),
                ColumnValue::Bytes(b) => text(ty, b)?
                    .parse::<f32>()
                    .map_err(|_| verr(ty, "text is not a number"))?,
                other => return Err(shape(ty, other)),
            };
            if !f.is_finite() {
                return Err(verr(ty, "not a finite number"));
            }
            ColumnValue::Float(f)
        }
        SqlType::Double => {
            let d = match v {
                ColumnValue::Double(d) => *d,
                ColumnValue::Float(f) => f64::from(*f),
                ColumnValue::Bytes(b) => text(ty, b)?
                    .parse::<f64>()
                    .map_err(|_| verr(ty, "text is not a number"))?,
                other => return Err(shape(ty, other)),
            };
            if !d.is_finite() {
                return Err(verr(ty, "not a finite number"));
            }
            ColumnValue::Double(d)
        }
        SqlType::Date => {
            let c = parse_civil(ty, temporal_text(ty, v)?)?;
            if (c.hour, c.minute, c.second, c.micros) != (0, 0, 0, 0) {
                return Err(verr(ty, "DATE with a non-zero time"));
            }
            ColumnValue::DateTime(format!("{:04}-{:02}-{:02}", c.year, c.month, c.day))
        }
        SqlType::DateTime { fsp } => {
            let c = parse_civil(ty, temporal_text(ty, v)?)?;
            ColumnValue::DateTime(format_civil(ty, &c, *fsp)?)
        }
        SqlType::Timestamp { fsp } => {
            ColumnValue::DateTime(timestamp_text(ty, timestamp_micros(ty, v)?, *fsp)?)
        }
        SqlType::Time { fsp } => {
            let micros = time_micros(ty, temporal_text(ty, v)?)?;
            ColumnValue::Time(time_text(ty, micros, *fsp)?)
        }
        SqlType::Year => {
            let y = match v {
                ColumnValue::Bytes(b) => text(ty, b)?
                    .parse::<i64>()
                    .map_err(|_| verr(ty, "text is not a year"))?,
                other => signed(ty, other, i64::MIN, i64::MAX)?,
            };
            match y {
                // mysql_common's binlog decoder renders YEAR 0000 as 1900.
                0 | 1900 => ColumnValue::Int(0),
                1901..=2155 => ColumnValue::Int(y),
                _ => return Err(verr(ty, "YEAR out of range (0, 1901..=2155)")),
            }
        }
        SqlType::Bit { bits } => ColumnValue::Bytes(bit_bytes(ty, v, *bits)?),
        SqlType::Enum { values } => ColumnValue::Bytes(enum_member(ty, values, v)?),
        SqlType::Set { values } => ColumnValue::Bytes(set_members(ty, values, v)?),
        SqlType::String { .. } if ty.is_utf8_string() => ColumnValue::Bytes(utf8_bytes(ty, v)?),
        SqlType::String { .. } | SqlType::Binary { .. } | SqlType::Geometry => {
            ColumnValue::Bytes(bytes_of(ty, v)?.clone())
        }
        SqlType::Json => ColumnValue::Bytes(utf8_bytes(ty, v)?),
        SqlType::Inet4 => {
            let b = bytes_of(ty, v)?;
            match std::str::from_utf8(b)
                .ok()
                .filter(|s| s.parse::<Ipv4Addr>().is_ok())
            {
                Some(_) => ColumnValue::Bytes(b.clone()),
                None => match <[u8; 4]>::try_from(b.as_slice()) {
                    Ok(a) => ColumnValue::Bytes(Ipv4Addr::from(a).to_string().into_bytes()),
                    Err(_) => return Err(verr(ty, "neither IPv4 text nor 4 bytes")),
                },
            }
        }
        SqlType::Inet6 => {
            let b = bytes_of(ty, v)?;
            match std::str::from_utf8(b)
                .ok()
                .filter(|s| s.parse::<Ipv6Addr>().is_ok())
            {
                Some(_) => ColumnValue::Bytes(b.clone()),
                None => match <[u8; 16]>::try_from(b.as_slice()) {
                    Ok(a) => ColumnValue::Bytes(Ipv6Addr::from(a).to_string().into_bytes()),
                    Err(_) => return Err(verr(ty, "neither IPv6 text nor 16 bytes")),
                },
            }
        }
        SqlType::Uuid => {
            let b = bytes_of(ty, v)?;
            match std::str::from_utf8(b) {
                Ok(s) if is_uuid_text(s) => ColumnValue::Bytes(b.clone()),
                _ if b.len() == 16 => {
                    return Err(verr(
                        ty,
                        "binary UUID (MariaDB's storage form, segments swapped): capture must send the text form",
                    ))
                }
                _ => return Err(verr(ty, "not UUID text")),
            }
        }
    })
}

/// Microseconds since the epoch of a TIMESTAMP value in any accepted form.
fn timestamp_micros(ty: &SqlType, v: &ColumnValue) -> Result<i64, ValueError> {
    match v {
        ColumnValue::Bytes(b) => {
            let s = text(ty, b)?;
            if s.contains(['-', ':', ' ']) {
                timestamp_micros_from_civil(ty, &parse_civil(ty, s)?)
            } else {
                epoch_text_micros(ty, s)
            }
        }
        ColumnValue::DateTime(s) => timestamp_micros_from_civil(ty, &parse_civil(ty, s)?),
        ColumnValue::Int(_) | ColumnValue::UInt(_) => {
            let secs = signed(ty, v, 0, i64::MAX / 1_000_000 - 1)?;
            Ok(secs * 1_000_000)
        }
        other => Err(shape(ty, other)),
    }
}

pub(super) fn decimal_value(unscaled: &BigInt) -> Value {
    Value::Decimal(Decimal::from(unscaled.to_signed_bytes_be()))
}

fn into_string(ty: &SqlType, b: Vec<u8>) -> Result<Value, ValueError> {
    String::from_utf8(b)
        .map(Value::String)
        .map_err(|_| verr(ty, "text value is not UTF-8"))
}

/// Bytes MySQL packs a `SET` of `members` into (1 to 4, or 8).
pub(super) fn set_pack_len(members: usize) -> usize {
    match members.div_ceil(8) {
        n @ 0..=4 => n,
        _ => 8,
    }
}

/// Turn a value as mysql_common's binlog decoder gives it into one
/// [`to_avro`] reads unambiguously: a `SET`'s raw little-endian bitmask
/// bytes become a `UInt` bitmask, a signed `MEDIUMINT` read without sign
/// extension gets its sign back, and a `BINARY(n)` gets back the trailing
/// zero bytes the binlog drops. Other values pass unchanged.
pub fn from_binlog(ty: &SqlType, v: ColumnValue) -> Result<ColumnValue, ValueError> {
    match (ty, v) {
        (SqlType::Set { values }, ColumnValue::Bytes(b)) => {
            let want = set_pack_len(values.len());
            if b.len() != want {
                return Err(verr(
                    ty,
                    format!("binlog SET value of {} bytes, expected {want}", b.len()),
                ));
            }
            let mut le = [0u8; 8];
            le[..b.len()].copy_from_slice(&b);
            Ok(ColumnValue::UInt(u64::from_le_bytes(le)))
        }
        // The binlog stores BINARY(n) without its trailing zero bytes; the
        // column's value is always n bytes.
        (
            SqlType::Binary {
                kind: BinaryKind::Binary(n),
            },
            ColumnValue::Bytes(mut b),
        ) if b.len() < *n as usize => {
            b.resize(*n as usize, 0);
            Ok(ColumnValue::Bytes(b))
        }
        // mysql_common reads a signed MEDIUMINT's 3 bytes without sign
        // extension: -8388608 arrives as 8388608.
        (SqlType::MediumInt { unsigned: false }, ColumnValue::Int(i))
            if (0x80_0000..0x100_0000).contains(&i) =>
        {
            Ok(ColumnValue::Int(i - 0x100_0000))
        }
        (SqlType::MediumInt { unsigned: false }, ColumnValue::UInt(u))
            if (0x80_0000..0x100_0000).contains(&u) =>
        {
            Ok(ColumnValue::Int(u as i64 - 0x100_0000))
        }
        (_, v) => Ok(v),
    }
}

/// The Avro value of a column value (without the `["null", T]` union: a
/// `NULL` becomes `Value::Null`).
pub fn to_avro(ty: &SqlType, v: &ColumnValue) -> Result<Value, ValueError> {
    let c = canonicalize(ty, v)?;
    canonical_to_avro(ty, c)
}

fn canonical_to_avro(ty: &SqlType, c: ColumnValue) -> Result<Value, ValueError> {
    Ok(match (ty, c) {
        (_, ColumnValue::Null) => Value::Null,
        (SqlType::BigInt { unsigned: true }, ColumnValue::UInt(u)) => {
            decimal_value(&BigInt::from(u))
        }
        (SqlType::Int { unsigned: true }, ColumnValue::UInt(u)) => Value::Long(u as i64),
        (SqlType::BigInt { unsigned: false }, ColumnValue::Int(i)) => Value::Long(i),
        (
            SqlType::TinyInt { .. } | SqlType::SmallInt { .. } | SqlType::MediumInt { .. },
            ColumnValue::UInt(u),
        ) => Value::Int(i32::try_from(u).map_err(|_| verr(ty, "value out of range"))?),
        (
            SqlType::TinyInt { .. }
            | SqlType::SmallInt { .. }
            | SqlType::MediumInt { .. }
            | SqlType::Int { .. },
            ColumnValue::Int(i),
        )
        | (SqlType::Year, ColumnValue::Int(i)) => {
            Value::Int(i32::try_from(i).map_err(|_| verr(ty, "value out of range"))?)
        }
        (SqlType::Decimal { precision, scale }, ColumnValue::Bytes(b)) => {
            decimal_value(&parse_decimal(ty, text(ty, &b)?, *precision, *scale)?)
        }
        (SqlType::Float, ColumnValue::Float(f)) => Value::Float(f),
        (SqlType::Double, ColumnValue::Double(d)) => Value::Double(d),
        (SqlType::Date | SqlType::DateTime { .. }, ColumnValue::DateTime(s)) => Value::String(s),
        (SqlType::Timestamp { .. }, ColumnValue::DateTime(s)) => {
            Value::TimestampMicros(timestamp_micros_from_civil(ty, &parse_civil(ty, &s)?)?)
        }
        (SqlType::Time { .. }, ColumnValue::Time(s)) => Value::Long(time_micros(ty, &s)?),
        (
            SqlType::Enum { .. }
            | SqlType::Set { .. }
            | SqlType::Json
            | SqlType::Inet4
            | SqlType::Inet6
            | SqlType::Uuid,
            ColumnValue::Bytes(b),
        ) => into_string(ty, b)?,
        (SqlType::String { .. }, ColumnValue::Bytes(b)) if ty.is_utf8_string() => {
            into_string(ty, b)?
        }
        (
            SqlType::String { .. }
            | SqlType::Binary { .. }
            | SqlType::Geometry
            | SqlType::Bit { .. },
            ColumnValue::Bytes(b),
        ) => Value::Bytes(b),
        (_, other) => return Err(shape(ty, &other)),
    })
}

fn decimal_of(ty: &SqlType, v: &Value) -> Result<BigInt, ValueError> {
    match v {
        Value::Decimal(d) => Vec::<u8>::try_from(d)
            .map(|b| BigInt::from_signed_bytes_be(&b))
            .map_err(|_| verr(ty, "bad Avro decimal")),
        Value::Bytes(b) => Ok(BigInt::from_signed_bytes_be(b)),
        _ => Err(verr(ty, "expected an Avro decimal")),
    }
}

/// The canonical column value of an Avro value (a `["null", T]` union is
/// unwrapped; Avro `null` is `NULL`).
pub fn from_avro(ty: &SqlType, v: &Value) -> Result<ColumnValue, ValueError> {
    let v = match v {
        Value::Union(_, inner) => inner.as_ref(),
        other => other,
    };
    let wrong = || verr(ty, "Avro value of the wrong type for the column");
    let raw = match (ty, v) {
        (_, Value::Null) => return Ok(ColumnValue::Null),
        (SqlType::BigInt { unsigned: true }, v) => {
            let n = decimal_of(ty, v)?;
            ColumnValue::UInt(u64::try_from(&n).map_err(|_| verr(ty, "value out of range"))?)
        }
        (SqlType::Decimal { precision, scale }, v) => {
            let n = decimal_of(ty, v)?;
            return Ok(ColumnValue::Bytes(
                format_decimal(ty, &n, *precision, *scale)?.into_bytes(),
            ));
        }
        (SqlType::Timestamp { fsp }, Value::TimestampMicros(m) | Value::Long(m)) => {
            return Ok(ColumnValue::DateTime(timestamp_text(ty, *m, *fsp)?));
        }
        (SqlType::Time { fsp }, Value::Long(m) | Value::TimeMicros(m)) => {
            return Ok(ColumnValue::Time(time_text(ty, *m, *fsp)?));
        }
        (SqlType::Year, Value::Int(i)) => ColumnValue::Int(i64::from(*i)),
        (_, Value::Int(_) | Value::Long(_)) if int_bounds(ty).is_some() => {
            let i = match v {
                Value::Int(i) => i64::from(*i),
                Value::Long(i) => *i,
                _ => return Err(wrong()),
            };
            // No two's-complement reading here: revdoor never writes a
            // negative number for an unsigned column.
            if i < 0 && int_bounds(ty).is_some_and(|(u, _)| u) {
                return Err(verr(ty, "negative value for an unsigned column"));
            }
            ColumnValue::Int(i)
        }
        (SqlType::Float, Value::Float(f)) => ColumnValue::Float(*f),
        (SqlType::Double, Value::Double(d)) => ColumnValue::Double(*d),
        (SqlType::Date | SqlType::DateTime { .. }, Value::String(s)) => {
            ColumnValue::DateTime(s.clone())
        }
        (_, Value::String(s)) => ColumnValue::Bytes(s.as_bytes().to_vec()),
        (_, Value::Bytes(b)) => ColumnValue::Bytes(b.clone()),
        _ => return Err(wrong()),
    };
    // Validate (ENUM membership, ranges, widths) and normalise.
    let c = canonicalize(ty, &raw)?;
    // The canonical form must be what was in Avro, or the Avro value was not
    // one revdoor writes (e.g. a DATETIME with more digits than `fsp`).
    match (&raw, &c) {
        (ColumnValue::Bytes(a), ColumnValue::Bytes(b)) if a != b => {
            Err(verr(ty, "Avro value not in canonical form"))
        }
        (ColumnValue::DateTime(a), ColumnValue::DateTime(b)) if a != b => {
            Err(verr(ty, "Avro value not in canonical form"))
        }
        _ => Ok(c),
    }
}
