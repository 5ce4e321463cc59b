//! A statement as tokens with their byte ranges, from `sqlparser`'s
//! tokenizer in the MySQL dialect, and edits of byte ranges: everything no
//! edit touches is kept byte for byte.
//!
//! Versioned comments (`/*!80023 INVISIBLE */`, MariaDB's
//! `/*M!100301 COMPRESSED*/`) are kept as [`Comment`]s and their bodies
//! tokenized in place, each token knowing the comment it is in: whether a
//! server runs or skips the body depends on its engine and version
//! ([`Comment::runs_on`]). The MySQL dialect of `sqlparser` would splice
//! the bodies in without saying so; [`ServerDialect`] keeps them comments.

use std::any::TypeId;
use std::ops::Range;

use sqlparser::dialect::{Dialect, MySqlDialect};
use sqlparser::tokenizer::{Location, Token, Tokenizer, TokenizerError, Whitespace};

use crate::engine::{Flavor, Server};

/// `sqlparser`'s MySQL dialect, except that versioned comments stay
/// comments.
#[derive(Debug, Default)]
struct ServerDialect(MySqlDialect);

impl Dialect for ServerDialect {
    fn dialect(&self) -> TypeId {
        self.0.dialect()
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        self.0.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        self.0.is_identifier_part(ch)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.0.is_delimited_identifier_start(ch)
    }
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.0.identifier_quote_style(identifier)
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        self.0.supports_string_literal_backslash_escape()
    }
    fn ignores_wildcard_escapes(&self) -> bool {
        self.0.ignores_wildcard_escapes()
    }
    fn supports_numeric_prefix(&self) -> bool {
        self.0.supports_numeric_prefix()
    }
    fn supports_literal_prefix_in_qualified_name(&self) -> bool {
        self.0.supports_literal_prefix_in_qualified_name()
    }
    fn requires_single_line_comment_whitespace(&self) -> bool {
        self.0.requires_single_line_comment_whitespace()
    }
    fn supports_hash_comment(&self) -> bool {
        self.0.supports_hash_comment()
    }
    fn supports_multiline_comment_hints(&self) -> bool {
        false
    }
}

/// A versioned comment: `/*!NNNNN body */` (MySQL and MariaDB) or
/// `/*M!NNNNNN body */` (MariaDB only).
#[derive(Debug, Clone)]
pub(super) struct Comment {
    /// The whole comment, `/*` to `*/`.
    pub range: Range<usize>,
    /// 0 when the comment has none.
    pub version: u32,
    /// `/*M!`: MySQL never runs it.
    pub mariadb_only: bool,
}

impl Comment {
    /// Whether `engine` at version id `version` (see
    /// [`crate::engine::Version::id`]; `None`: as new as any comment it
    /// would have written) runs the body. MySQL runs `/*!N` for N up to its
    /// version; MariaDB too, except the five-digit versions 50700 to 99999
    /// (MySQL 5.7 and later), which it skips.
    pub fn runs_on(&self, engine: Flavor, version: Option<u32>) -> bool {
        let new_enough = version.is_none_or(|v| self.version <= v);
        match engine {
            Flavor::Mysql => !self.mariadb_only && new_enough,
            Flavor::Mariadb => {
                let mysql_only = !self.mariadb_only && (50_700..100_000).contains(&self.version);
                !mysql_only && new_enough
            }
        }
    }

    /// Whether the body means something on `from` that `to` would skip.
    pub fn lost_on(&self, from: Flavor, to: &Server) -> bool {
        self.runs_on(from, None) && !self.runs_on(to.flavor, Some(to.version.id()))
    }
}

/// One token of the statement (comments and white space left out).
#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub token: Token,
    /// Byte range in the statement.
    pub range: Range<usize>,
    /// The versioned comment it is in ([`Tokens::comments`] index).
    pub comment: Option<usize>,
}

impl Tok {
    /// An unquoted word equal to `kw`, ignoring case.
    pub fn is(&self, kw: &str) -> bool {
        matches!(&self.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }

    /// The word, quoted or not, as written between its quotes.
    pub fn word(&self) -> Option<&str> {
        match &self.token {
            Token::Word(w) => Some(&w.value),
            _ => None,
        }
    }

    /// An unquoted word, upper-cased.
    pub fn keyword(&self) -> Option<String> {
        match &self.token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    pub fn is_lparen(&self) -> bool {
        self.token == Token::LParen
    }
    pub fn is_rparen(&self) -> bool {
        self.token == Token::RParen
    }
    pub fn is_comma(&self) -> bool {
        self.token == Token::Comma
    }
    pub fn is_eq(&self) -> bool {
        self.token == Token::Eq
    }
}

/// A statement's tokens and versioned comments.
#[derive(Debug)]
pub(super) struct Tokens {
    pub toks: Vec<Tok>,
    pub comments: Vec<Comment>,
}

impl Tokens {
    /// Tokenize `sql`; the error is the tokenizer's.
    pub fn new(sql: &str) -> Result<Tokens, TokenizerError> {
        let mut out = Tokens {
            toks: Vec::new(),
            comments: Vec::new(),
        };
        out.push(sql, 0..sql.len(), None)?;
        Ok(out)
    }

    fn push(
        &mut self,
        sql: &str,
        part: Range<usize>,
        comment: Option<usize>,
    ) -> Result<(), TokenizerError> {
        let text = &sql[part.clone()];
        let dialect = ServerDialect::default();
        let tokens = Tokenizer::new(&dialect, text)
            .with_unescape(false)
            .tokenize_with_location()?;
        let lines = LineStarts::new(text);
        for t in tokens {
            let range = part.start + lines.offset(text, t.span.start)
                ..part.start + lines.offset(text, t.span.end);
            match t.token {
                Token::EOF => {}
                Token::Whitespace(Whitespace::MultiLineComment(body)) => {
                    let (mariadb_only, rest) = if let Some(r) = body.strip_prefix("M!") {
                        (true, r)
                    } else if let Some(r) = body.strip_prefix('!') {
                        (false, r)
                    } else {
                        continue;
                    };
                    let digits = rest.bytes().take_while(u8::is_ascii_digit).count().min(6);
                    let version = rest[..digits].parse().unwrap_or(0);
                    // `/*` + `M!` or `!` + digits.
                    let body_start = range.start + 2 + (body.len() - rest.len()) + digits;
                    let body_end = range.end - 2;
                    let index = self.comments.len();
                    self.comments.push(Comment {
                        range: range.clone(),
                        version,
                        mariadb_only,
                    });
                    self.push(sql, body_start..body_end, Some(index))?;
                }
                Token::Whitespace(_) => {}
                token => self.toks.push(Tok {
                    token,
                    range,
                    comment,
                }),
            }
        }
        Ok(())
    }

    /// The range an edit of token `i` must cover: the token, or the whole
    /// comment it is in.
    pub fn outer(&self, i: usize) -> Range<usize> {
        match self.toks[i].comment {
            Some(c) => self.comments[c].range.clone(),
            None => self.toks[i].range.clone(),
        }
    }

    /// Index of the parenthesis closing the one at `open`, or the last
    /// token when unbalanced.
    pub fn closing(&self, open: usize) -> usize {
        let mut depth = 0usize;
        for (i, t) in self.toks.iter().enumerate().skip(open) {
            if t.is_lparen() {
                depth += 1;
            } else if t.is_rparen() {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
        }
        self.toks.len().saturating_sub(1)
    }

    /// Split `range` at the commas outside parentheses, as token ranges
    /// (empty parts left out).
    pub fn split_commas(&self, range: Range<usize>) -> Vec<Range<usize>> {
        let mut parts = Vec::new();
        let mut depth = 0i32;
        let mut start = range.start;
        for i in range.clone() {
            let t = &self.toks[i];
            if t.is_lparen() {
                depth += 1;
            } else if t.is_rparen() {
                depth -= 1;
            } else if t.is_comma() && depth == 0 {
                if start < i {
                    parts.push(start..i);
                }
                start = i + 1;
            }
        }
        if start < range.end {
            parts.push(start..range.end);
        }
        parts
    }

    /// The first token at or after `from` (and before `end`) outside
    /// parentheses opened in between that satisfies `f`.
    pub fn find(&self, range: Range<usize>, f: impl Fn(&Tok) -> bool) -> Option<usize> {
        let mut depth = 0i32;
        for i in range {
            let t = &self.toks[i];
            if depth == 0 && f(t) {
                return Some(i);
            }
            if t.is_lparen() {
                depth += 1;
            } else if t.is_rparen() {
                depth -= 1;
            }
        }
        None
    }
}

/// Byte offsets of line starts, to turn the tokenizer's line and column
/// (in characters) into byte offsets.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineStarts(starts)
    }

    fn offset(&self, text: &str, at: Location) -> usize {
        let Some(&line) = usize::try_from(at.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|l| self.0.get(l))
        else {
            return text.len();
        };
        let column = usize::try_from(at.column).unwrap_or(1).saturating_sub(1);
        text[line..]
            .char_indices()
            .nth(column)
            .map_or(text.len(), |(i, _)| line + i)
    }
}

/// Replacements of byte ranges of one statement.
#[derive(Debug, Default)]
pub(super) struct Edits(Vec<(Range<usize>, String)>);

impl Edits {
    pub fn replace(&mut self, range: Range<usize>, text: impl Into<String>) {
        self.0.push((range, text.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `sql` with the edits made. Of overlapping edits the one starting
    /// first (the widest on a tie) wins: removing a clause removes the
    /// changes made inside it.
    pub fn apply(mut self, sql: &str) -> String {
        self.0
            .sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
        let mut out = String::with_capacity(sql.len());
        let mut at = 0;
        for (range, text) in self.0 {
            if range.start < at {
                continue;
            }
            out.push_str(&sql[at..range.start]);
            out.push_str(&text);
            at = range.end;
        }
        out.push_str(&sql[at..]);
        out
    }
}
