//! MySQL's JSON numbers: how MySQL writes a double, and which numbers of a
//! document's text were DECIMALs.
//!
//! MySQL's binary JSON keeps a number's type: `0.50` from a `DECIMAL(3,2)`
//! stays a DECIMAL with its scale; a double is printed with the shortest
//! digits that read back as it ([`push_double`]). Its JSON *text* parser,
//! however, reads every number with a fraction or exponent as a double —
//! so writing a document into a MySQL `JSON` column as text would turn
//! `-12345678901234567890.123456789012345678901234567890` into
//! `-1.2345678901234567e19`. [`decimals`] finds the numbers of a document
//! (as MySQL wrote it) that no double prints as: apply puts them back as
//! DECIMALs (`JSON_SET(doc, path, CAST(digits AS DECIMAL(p, s)))`), so the
//! document reads back exactly. A DECIMAL that prints like a double (`0.5`
//! from `DECIMAL(1,1)`) arrives as that double: the same value and the same
//! text, only `JSON_TYPE` tells.

/// A double as MySQL writes it: `my_gcvt` with the width
/// `MY_GCVT_MAX_FIELD_WIDTH` (34), then `.0` if that has neither a point
/// nor an exponent.
///
/// `my_gcvt` takes the shortest round-tripping digits (see [`shortest`])
/// and writes them in fixed notation when the decimal point position
/// `decpt` (value = 0.d1d2… × 10^decpt) is in -14..=15, or inside the
/// digits; otherwise as `d1[.d2…]e[-]x`. With 17 digits at most, the
/// field width never forces rounding, so these two rules are all of it.
///
/// Returns false, writing nothing, for a NaN or an infinity (which JSON
/// cannot hold).
pub fn push_double(x: f64, out: &mut String) -> bool {
    if !x.is_finite() {
        return false;
    }
    // The sign of -0.0 too, as dtoa reports it.
    if x.is_sign_negative() {
        out.push('-');
    }
    let (digits, decpt) = shortest(x.abs());
    let len = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if (-14..=15).contains(&decpt) || (decpt > 0 && decpt < len) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
            out.push_str(&digits);
        } else if decpt < len {
            let (int, frac) = digits.split_at(decpt.unsigned_abs() as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n(
                '0',
                (decpt - len).unsigned_abs() as usize,
            ));
            // No point and no exponent: MySQL marks it a double.
            out.push_str(".0");
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push_str(&(decpt - 1).to_string());
    }
    true
}

/// The shortest digits that read back as `x` (finite, not negative), and
/// the decimal point position: x ≈ 0.d1d2… × 10^decpt. MySQL takes them
/// from David Gay's `dtoa` (mode 4 with 34 digits allowed, which stops at
/// the shortest); among equally short strings both it and Rust take the
/// one closest to `x`, but when two are exactly as close Gay's takes the
/// even last digit and Rust's formatter the higher one
/// (29290947659102.0625 is `29290947659102.062` in MySQL), so that tie is
/// settled here as Gay settles it.
fn shortest(x: f64) -> (String, i32) {
    // `{:e}` writes the shortest round-tripping digits: `1.2345e-7`,
    // `5e-324`, `0e0`.
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let decpt = exponent.parse::<i32>().unwrap_or(0) + 1;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // A tie needs a candidate a half unit of its last digit away to read
    // back as `x`, so at least 16 digits (a double has 15.95).
    if digits.len() >= 16 {
        if let Some(even) = even_of_tie(x, &digits, decpt) {
            return (even, decpt);
        }
    }
    (digits, decpt)
}

/// If `x` lies exactly halfway between `digits` and its neighbour of the
/// same length, and the neighbour with the even last digit reads back as
/// `x`, that neighbour.
fn even_of_tie(x: f64, digits: &str, decpt: i32) -> Option<String> {
    let (exact, exact_decpt) = exact_digits(x)?;
    let low = exact.strip_suffix('5')?;
    if low.len() != digits.len() || exact_decpt != decpt {
        return None;
    }
    let high = increment(low)?;
    let even = if low.bytes().last()? % 2 == 0 {
        low.to_owned()
    } else {
        high.clone()
    };
    if even == digits || (digits != low && digits != high) {
        return None;
    }
    let back: f64 = format!("0.{even}e{decpt}").parse().ok()?;
    (back == x).then_some(even)
}

/// The exact decimal digits of `x` (finite, positive) without trailing
/// zeros and their point position, when they are 18 digits or fewer (the
/// only case a tie of 16 or 17 digits can arise); `None` otherwise.
fn exact_digits(x: f64) -> Option<(String, i32)> {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exp2) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased - 1075)
    };
    if mantissa == 0 {
        return None;
    }
    // x = odd × 2^exp2
    let zeros = mantissa.trailing_zeros();
    let (odd, exp2) = (u128::from(mantissa >> zeros), exp2 + zeros as i32);
    // An integer below 2^127, or odd × 5^k / 10^k with 5^k × 2^53 below
    // 2^128.
    let (value, point) = match exp2 {
        0..=74 => (odd << exp2, 0),
        -25..=-1 => (odd * 5u128.pow(exp2.unsigned_abs()), -exp2),
        // Below: odd × 5^k with k ≥ 26 has 19 digits or more. Above: an
        // integer whose last significant digit is even, or which has at
        // most 16 significant digits. No tie either way.
        _ => return None,
    };
    let text = value.to_string();
    let decpt = i32::try_from(text.len()).ok()? - point;
    let trimmed = text.trim_end_matches('0');
    (trimmed.len() <= 18).then(|| (trimmed.to_owned(), decpt))
}

/// `digits` + 1 in the last place, `None` if that carries into a new digit.
fn increment(digits: &str) -> Option<String> {
    let mut bytes = digits.as_bytes().to_vec();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// A number of a JSON document that MySQL stored as a DECIMAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    /// Where it is, as a MySQL JSON path (`$."a"[2]`).
    pub path: String,
    /// Its digits as written (`-0.50`): an optional `-`, digits, a point,
    /// digits.
    pub text: String,
    /// `DECIMAL(precision, scale)` holding exactly those digits.
    pub precision: u32,
    pub scale: u32,
}

/// The numbers of `doc` (JSON text as MySQL writes it) with a fraction
/// that no double prints as: DECIMALs, with their paths. A number with an
/// exponent is a double; one without a fraction an integer. Text that is
/// not JSON yields what was found before the fault (the server refuses the
/// document anyway).
pub fn decimals(doc: &str) -> Vec<Decimal> {
    let mut scan = Scan {
        doc: doc.as_bytes(),
        at: 0,
        found: Vec::new(),
    };
    let mut path = String::from("$");
    let _ = scan.value(&mut path, 0);
    scan.found
}

struct Scan<'a> {
    doc: &'a [u8],
    at: usize,
    found: Vec<Decimal>,
}

impl Scan<'_> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.doc.get(self.at) {
            self.at += 1;
        }
        self.doc.get(self.at).copied()
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.at += 1)
    }

    /// One value at `path`; `None` where the text is not JSON.
    fn value(&mut self, path: &mut String, depth: usize) -> Option<()> {
        if depth > 100 {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.at += 1;
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    let key = self.string()?.to_owned();
                    self.eat(b':')?;
                    let len = path.len();
                    path.push_str(".\"");
                    path.push_str(&key);
                    path.push('"');
                    self.value(path, depth + 1)?;
                    path.truncate(len);
                    if self.eat(b',').is_none() {
                        return self.eat(b'}');
                    }
                }
            }
            b'[' => {
                self.at += 1;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                for i in 0usize.. {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.value(path, depth + 1)?;
                    path.truncate(len);
                    if self.eat(b',').is_none() {
                        return self.eat(b']');
                    }
                }
                None
            }
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') =
                    self.doc.get(self.at)
                {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.doc[start..self.at]).ok()?;
                if let Some(d) = decimal(text, path) {
                    self.found.push(d);
                }
                Some(())
            }
            b't' | b'f' | b'n' => {
                while self.doc.get(self.at).is_some_and(u8::is_ascii_alphabetic) {
                    self.at += 1;
                }
                Some(())
            }
            _ => None,
        }
    }

    /// A string's text between its quotes, escapes as written.
    fn string(&mut self) -> Option<&str> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            match self.doc.get(self.at)? {
                b'\\' => self.at += 2,
                b'"' => break,
                _ => self.at += 1,
            }
        }
        let text = std::str::from_utf8(self.doc.get(start..self.at)?).ok()?;
        self.at += 1;
        Some(text)
    }
}

/// `text` as a DECIMAL at `path`, when it has a fraction, no exponent, and
/// is not how a double prints.
fn decimal(text: &str, path: &str) -> Option<Decimal> {
    if text.contains(['e', 'E']) {
        return None;
    }
    let (int, frac) = text.trim_start_matches('-').split_once('.')?;
    let x: f64 = text.parse().ok()?;
    let mut as_double = String::new();
    if push_double(x, &mut as_double) && as_double == text {
        return None;
    }
    let scale = u32::try_from(frac.len()).ok()?;
    let precision = u32::try_from(int.trim_start_matches('0').len()).ok()? + scale;
    // MySQL's DECIMAL holds 65 digits, 30 after the point.
    (precision <= 65 && scale <= 30).then(|| Decimal {
        path: path.to_owned(),
        text: text.to_owned(),
        precision: precision.max(1),
        scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: f64) -> String {
        let mut out = String::new();
        assert!(push_double(x, &mut out));
        out
    }

    #[test]
    fn doubles_as_mysql_writes_them() {
        assert_eq!(double(0.5), "0.5");
        assert_eq!(double(100.0), "100.0");
        assert_eq!(double(1e300), "1e300");
        assert_eq!(double(-0.0), "-0.0");
        assert!(!push_double(f64::INFINITY, &mut String::new()));
    }

    #[test]
    fn decimals_are_the_numbers_no_double_prints_as() {
        let doc = r#"{"dbl": 0.5, "dec": 0.50, "a": [1, 1e300, -12345678901234567890.123456789012345678901234567890, {"k\"q": 100.0, "z": 2.10}], "s": "0.50", "t": true}"#;
        let found = decimals(doc);
        let got: Vec<(&str, &str, u32, u32)> = found
            .iter()
            .map(|d| (d.path.as_str(), d.text.as_str(), d.precision, d.scale))
            .collect();
        assert_eq!(
            got,
            [
                (r#"$."dec""#, "0.50", 2, 2),
                (
                    r#"$."a"[2]"#,
                    "-12345678901234567890.123456789012345678901234567890",
                    50,
                    30
                ),
                (r#"$."a"[3]."z""#, "2.10", 3, 2),
            ]
        );
        assert!(decimals(r#"[0.1, 5e-324, 29290947659102.062, -0.0]"#).is_empty());
        assert!(decimals("not json").is_empty());
        assert_eq!(decimals("[0.50, oops").len(), 1);
    }
}
