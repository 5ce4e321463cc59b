//! JSON documents compared by value, not by spelling (the comparison rule,
//! [`super`] docs).
//!
//! The same document is spelled differently by each engine: MySQL's `JSON`
//! type stores a binary form and prints it normalised (keys sorted, one
//! space after `:` and `,`, doubles shortest, DECIMALs with their scale),
//! while MariaDB's `JSON` is `LONGTEXT` holding the text as written. So two
//! documents are compared through a canonical text of their value:
//!
//! - whitespace outside strings is ignored;
//! - object members are ordered by key (bytes of the unescaped key);
//!   members with the same key are all kept, in their written order — a
//!   document whose duplicates were collapsed (MySQL keeps the last) is
//!   *different*, since a MariaDB reader sees the first;
//! - strings are compared as the characters they hold (`"\u00e9"` = `"é"`);
//! - **numbers by exact numeric value**, as RFC 8259 reads the text:
//!   `1`, `1.0`, `1e0` and `10e-1` are the same number, and so are `0.50`
//!   and `0.5` (MySQL keeps a DECIMAL's scale inside JSON, MariaDB stores
//!   the text as given); `-0` equals `0`. A number and a string holding its
//!   digits (`0.5` vs `"0.5"`) differ, as do `true` and `1`. No rounding
//!   through a binary double happens here: `0.1000000000000000055511`
//!   differs from `0.1`, so a value an engine could not hold exactly is
//!   reported.
//!
//! A document that does not parse is compared by its bytes.

use std::fmt::Write;

/// Nesting deeper than this is compared by its bytes (MySQL refuses
/// documents deeper than 100).
const MAX_DEPTH: usize = 512;

/// Whether two JSON documents hold the same value.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (canonical(a), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The canonical text of a document's value; `None` when it is not JSON.
pub(super) fn canonical(text: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(text).ok()?;
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let mut out = String::with_capacity(s.len());
    p.value(&mut out, 0)?;
    p.ws();
    (p.i == p.s.len()).then_some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str, out: &mut String) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.s.get(self.i..end)? == word.as_bytes()).then_some(())?;
        self.i = end;
        out.push_str(word);
        Some(())
    }

    fn value(&mut self, out: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => self.object(out, depth),
            b'[' => {
                self.i += 1;
                out.push('[');
                if !self.eat(b']') {
                    loop {
                        self.value(out, depth + 1)?;
                        if self.eat(b']') {
                            break;
                        }
                        self.eat(b',').then_some(())?;
                        out.push(',');
                    }
                }
                out.push(']');
                Some(())
            }
            b'"' => {
                let s = self.string()?;
                push_string(out, &s);
                Some(())
            }
            b't' => self.literal("true", out),
            b'f' => self.literal("false", out),
            b'n' => self.literal("null", out),
            _ => self.number(out),
        }
    }

    fn object(&mut self, out: &mut String, depth: usize) -> Option<()> {
        self.i += 1;
        let mut members: Vec<(String, String)> = Vec::new();
        if !self.eat(b'}') {
            loop {
                self.ws();
                let key = self.string()?;
                self.eat(b':').then_some(())?;
                let mut v = String::new();
                self.value(&mut v, depth + 1)?;
                members.push((key, v));
                if self.eat(b'}') {
                    break;
                }
                self.eat(b',').then_some(())?;
            }
        }
        // Stable: members with one key keep their written order.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        out.push('{');
        for (n, (k, v)) in members.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            push_string(out, k);
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
        Some(())
    }

    /// A string literal at `i`, unescaped.
    fn string(&mut self) -> Option<String> {
        (self.s.get(self.i) == Some(&b'"')).then_some(())?;
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while !matches!(self.s.get(self.i), Some(b'"' | b'\\') | None) {
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).ok()?);
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => {
                    self.i += 1;
                    let c = match *self.s.get(self.i)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi)
                                && self.s.get(self.i + 1..self.i + 3) == Some(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                            } else {
                                char::from_u32(hi)?
                            }
                        }
                        _ => return None,
                    };
                    self.i += 1;
                    out.push(c);
                }
            }
        }
    }

    /// The four hex digits after `\u` (`i` on the `u`); `i` ends on the
    /// last digit.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i + 1..self.i + 5)?;
        let v = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    /// A number as `[-]D…De<exp>`: its significant digits without leading
    /// or trailing zeros and the exponent that makes their value; zero is
    /// `0`.
    fn number(&mut self, out: &mut String) -> Option<()> {
        let neg = self.s.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let int = self.digits();
        if int.is_empty() {
            return None;
        }
        let frac = if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let f = self.digits();
            if f.is_empty() {
                return None;
            }
            f
        } else {
            &[]
        };
        let mut exp: i64 = 0;
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            let eneg = match self.s.get(self.i) {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let e = self.digits();
            if e.is_empty() {
                return None;
            }
            exp = std::str::from_utf8(e).ok()?.parse().ok()?;
            if eneg {
                exp = -exp;
            }
        }
        let all: Vec<u8> = int.iter().chain(frac).copied().collect();
        exp = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
        let first = all.iter().position(|&d| d != b'0');
        let Some(first) = first else {
            out.push('0');
            return Some(());
        };
        let last = all.iter().rposition(|&d| d != b'0')?;
        exp = exp.checked_add(i64::try_from(all.len() - 1 - last).ok()?)?;
        if neg {
            out.push('-');
        }
        out.push_str(std::str::from_utf8(&all[first..=last]).ok()?);
        write!(out, "e{exp}").ok()
    }

    fn digits(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
}

fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<String> {
        canonical(s.as_bytes())
    }

    fn same_s(a: &str, b: &str) -> bool {
        same(a.as_bytes(), b.as_bytes())
    }

    #[test]
    fn spelling_does_not_matter() {
        // MySQL's normalised print vs MariaDB's text as written.
        assert!(same_s(
            r#"{"a": [1, 2.5, {"y": null, "x": true}], "b": "é"}"#,
            "{ \"b\" :\"\\u00e9\",\n\t\"a\":[1,2.50,{\"x\":true,\"y\":null}] }"
        ));
        assert!(same_s("[]", " [ ] "));
        assert!(same_s("{}", "{ }"));
        assert!(same_s(r#""\ud83d\ude00""#, "\"😀\""));
        assert!(same_s(r#""a\/b""#, r#""a/b""#));
    }

    #[test]
    fn numbers_are_compared_by_exact_value() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "1e0"),
            ("1", "10e-1"),
            ("0.50", "0.5"),
            ("0.5", "5E-1"),
            ("-0", "0"),
            ("0.000", "0e10"),
            ("100", "1e2"),
            ("1.2345678901234568e20", "123456789012345680000"),
            ("-12.340", "-1234e-2"),
        ] {
            assert_eq!(c(a), c(b), "{a} = {b}");
        }
        for (a, b) in [
            ("0.5", "\"0.5\""),
            ("1", "true"),
            ("0.1", "0.1000000000000000055511"),
            ("18446744073709551616", "1.8446744073709552e19"),
            ("1", "-1"),
            ("0", "null"),
        ] {
            assert!(!same_s(a, b), "{a} ≠ {b}");
        }
        assert_eq!(c("0.50").as_deref(), Some("5e-1"));
        assert_eq!(c("-1200").as_deref(), Some("-12e2"));
    }

    #[test]
    fn members_are_ordered_by_key_and_duplicates_kept() {
        assert_eq!(
            c(r#"{"b":1,"a":2}"#).as_deref(),
            Some(r#"{"a":2e0,"b":1e0}"#)
        );
        // Collapsed duplicates are a change (MySQL keeps the last).
        assert!(!same_s(r#"{"a":1,"a":2}"#, r#"{"a":2}"#));
        assert!(same_s(r#"{"a":1,"b":0,"a":2}"#, r#"{"b":0,"a":1,"a":2}"#));
        assert!(!same_s(r#"{"a":1,"a":2}"#, r#"{"a":2,"a":1}"#));
        // Array order matters.
        assert!(!same_s("[1,2]", "[2,1]"));
    }

    #[test]
    fn what_does_not_parse_is_compared_by_bytes() {
        for bad in [
            "",
            "{",
            "[1,]",
            "01x",
            "1.",
            "-",
            "1e",
            "tru",
            "\"a",
            "{\"a\" 1}",
            "[1] 2",
            "\"\\x\"",
        ] {
            assert_eq!(c(bad), None, "{bad:?}");
        }
        assert!(same_s("{", "{"));
        assert!(!same_s("{", "{ "));
        assert_eq!(c(&"[".repeat(MAX_DEPTH + 2)), None);
        assert_eq!(c("1e99999999999999999999"), None);
    }
}
