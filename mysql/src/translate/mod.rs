//! Table definitions across engines: a statement of one engine — the
//! source's `SHOW CREATE TABLE` at `workflow create`, a DDL statement
//! `on_ddl=exec` forwards — as the other engine must read it to mean the
//! same, or a refusal naming the table, the column (index, option) and why.
//!
//! Same engine: the statement as it is. MySQL ↔ MariaDB: the statement is
//! split into tokens by `sqlparser`'s tokenizer (MySQL dialect) and only
//! what must change is rewritten; every other byte is kept. The shapes it
//! understands are the ones servers print and DDL takes: `CREATE TABLE`
//! (columns, keys, constraints, table options, partitioning), `ALTER
//! TABLE` (`ADD`, `MODIFY`, `CHANGE`, `ALTER INDEX`, options), `CREATE
//! INDEX` and `CREATE`/`ALTER DATABASE`; in anything else only collations
//! and versioned comments are translated.
//!
//! # The mapping (docs/engines.md has it as a table)
//!
//! - Collations: [`collation`] (MySQL `utf8mb4_0900_*` ↔ MariaDB
//!   `utf8mb4_uca1400_*_nopad_*`, `utf8mb4_0900_bin` ↔ `utf8mb4_nopad_bin`,
//!   Croatian; the rest keep their names), wherever `COLLATE` names one.
//! - JSON: MySQL `json` stays `json` on MariaDB (its alias for `longtext`
//!   `utf8mb4_bin` with `CHECK (json_valid(col))`); MariaDB's `longtext`
//!   with a check that is exactly `json_valid(col)` — in the column or as
//!   a table constraint, the rule capture types columns by — becomes MySQL
//!   `json`, without its character set, collation and that check (other
//!   checks stay).
//! - Versioned comments: a body the source runs and the target would skip
//!   (MySQL 8 syntax in `/*!80023 … */` on MariaDB, `/*M!…*/` on MySQL)
//!   is translated where known — column `INVISIBLE` written out, index
//!   `INVISIBLE` as MariaDB's `IGNORED`, `NOT ENFORCED` checks dropped
//!   (MariaDB would enforce them), `AUTOEXTEND_SIZE` dropped (space
//!   allocation) — and refused otherwise (`SRID`, anything unknown). A body
//!   the source skipped and the target would run is removed.
//! - Defaults: MySQL needs expression defaults in parentheses and
//!   BLOB/TEXT/JSON/spatial literals as expressions: MariaDB's `DEFAULT
//!   uuid()` and `text DEFAULT 'x'` become `DEFAULT (uuid())` and `DEFAULT
//!   ('x')`. `current_timestamp()` is spelled the same on both.
//! - Generated columns: `VIRTUAL`/`STORED` as they are (MariaDB's
//!   `PERSISTENT` is `STORED`); system-versioning columns are refused;
//!   an expression using one engine's own functions fails on the target
//!   (`workflow create` then drops what it made).
//! - Keys: MySQL functional key parts `((expr))` are refused on MariaDB
//!   (index a generated column instead); index visibility as above.
//! - Types: MariaDB `INET4`, `INET6`, `UUID` and MySQL `VECTOR` are
//!   refused; spatial `SRID` too.
//! - Table options: the ones both engines share are kept; MariaDB's
//!   `PAGE_COMPRESSED`, `ENCRYPTED`, `SEQUENCE`, `WITH SYSTEM VERSIONING`,
//!   `PARTITION BY SYSTEM_TIME`, … and MySQL's `ENCRYPTION='Y'`,
//!   `COMPRESSION`, `SECONDARY_ENGINE`, … are refused by name; storage
//!   engines other than the common ones too.
//!
//! # Errors
//!
//! [`Refused`] lists every [`Refusal`] of the statement: the table, what
//! (column, index, option, clause) and why. It is definite: the definition
//! must change, or the table stay out of the workflow.

pub mod collation;
mod definition;
mod tokens;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use crate::engine::{Flavor, Server};
use tokens::{Edits, Tokens};

/// A statement for the target, and what changed (for the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub sql: String,
    /// `column `c`: collation a → b`, one line per change.
    pub notes: Vec<String>,
}

/// One thing the target engine cannot be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The table of the statement, as written (`t`, `db`.`t`).
    pub table: Option<String>,
    /// `column `c``, `index `k``, `table option PAGE_COMPRESSED`, …
    pub subject: String,
    pub why: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.table {
            write!(f, "table {t}, ")?;
        }
        write!(f, "{}: {}", self.subject, self.why)
    }
}

/// Everything in a statement the target engine cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused(pub Vec<Refusal>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// `sql`, written for a `from` server, as `to` must read it. When
/// `collations` holds the names `to` accepts
/// ([`collation::server_collations`]), a collation not among them is
/// refused too. The same engine gets `sql` unchanged.
pub fn translate(
    sql: &str,
    from: Flavor,
    to: &Server,
    collations: Option<&BTreeSet<String>>,
) -> Result<Translation, Refused> {
    if from == to.flavor {
        return Ok(Translation {
            sql: sql.to_string(),
            notes: Vec::new(),
        });
    }
    let t = Tokens::new(sql).map_err(|e| {
        Refused(vec![Refusal {
            table: None,
            subject: "statement".into(),
            why: format!("revdoor cannot read it to translate it from {from} to {to}: {e}"),
        }])
    })?;
    let mut ctx = Ctx {
        sql,
        handled: vec![false; t.comments.len()],
        t,
        from,
        to: *to,
        collations,
        edits: Edits::default(),
        notes: Vec::new(),
        refusals: Vec::new(),
        labels: Vec::new(),
        table: None,
    };
    ctx.statement();
    ctx.collations();
    ctx.comments();
    if !ctx.refusals.is_empty() {
        return Err(Refused(ctx.refusals));
    }
    let notes = ctx.notes;
    let sql = if ctx.edits.is_empty() {
        sql.to_string()
    } else {
        ctx.edits.apply(sql)
    };
    Ok(Translation { sql, notes })
}

/// One translation under way.
struct Ctx<'a> {
    sql: &'a str,
    t: Tokens,
    from: Flavor,
    to: Server,
    collations: Option<&'a BTreeSet<String>>,
    edits: Edits,
    notes: Vec<String>,
    refusals: Vec<Refusal>,
    /// Per versioned comment: translated (or refused) where it stands.
    handled: Vec<bool>,
    /// Token ranges and what they define (`column `c``), for messages.
    labels: Vec<(Range<usize>, String)>,
    /// The statement's table, as written.
    table: Option<String>,
}

impl Ctx<'_> {
    fn refuse(&mut self, subject: impl Into<String>, why: impl Into<String>) {
        self.refusals.push(Refusal {
            table: self.table.clone(),
            subject: subject.into(),
            why: why.into(),
        });
    }

    fn note(&mut self, subject: &str, what: impl fmt::Display) {
        self.notes.push(format!("{subject}: {what}"));
    }

    /// What token `i` belongs to, for messages.
    fn label(&self, i: usize) -> String {
        self.labels
            .iter()
            .rev()
            .find(|(r, _)| r.contains(&i))
            .map_or_else(|| "the table".to_string(), |(_, l)| l.clone())
    }

    /// The source text of tokens `first..=last` (whole comments).
    fn text(&self, first: usize, last: usize) -> &str {
        &self.sql[self.t.outer(first).start..self.t.outer(last).end]
    }

    /// Replace tokens `first..=last` (whole comments) by `text`.
    fn replace(&mut self, first: usize, last: usize, text: impl Into<String>) {
        let range = self.t.outer(first).start..self.t.outer(last).end;
        self.edits.replace(range, text);
    }

    /// Remove tokens `first..=last` (whole comments) with the space before
    /// them.
    fn remove(&mut self, first: usize, last: usize) {
        let start = match first.checked_sub(1) {
            Some(p) => self.t.outer(p).end.min(self.t.outer(first).start),
            None => self.t.outer(first).start,
        };
        self.edits.replace(start..self.t.outer(last).end, "");
    }

    /// Mark the versioned comment of token `i`, if any, as translated.
    fn handle(&mut self, i: usize) {
        if let Some(c) = self.t.toks[i].comment {
            self.handled[c] = true;
        }
    }

    /// Whether token `i` is in a comment the source runs and the target
    /// would skip.
    fn in_lost_comment(&self, i: usize) -> bool {
        self.t.toks[i]
            .comment
            .is_some_and(|c| self.t.comments[c].lost_on(self.from, &self.to))
    }

    /// Every `COLLATE [=] name` mapped for the target, and checked against
    /// its collations when known.
    fn collations(&mut self) {
        for i in 1..self.t.toks.len() {
            let after_collate = self.t.toks[i - 1].is("COLLATE")
                || (self.t.toks[i - 1].is_eq() && i >= 2 && self.t.toks[i - 2].is("COLLATE"));
            if !after_collate {
                continue;
            }
            let (name, quote) = match &self.t.toks[i].token {
                sqlparser::tokenizer::Token::Word(w) => (w.value.clone(), ""),
                sqlparser::tokenizer::Token::SingleQuotedString(s) => (s.clone(), "'"),
                _ => continue,
            };
            let label = self.label(i);
            let name = match collation::map(&name, self.from, &self.to) {
                collation::Mapped::Same => name,
                collation::Mapped::To(to, note) => {
                    self.note(&label, format!("collation {name} → {to}"));
                    if let Some(n) = note {
                        self.note(&label, n);
                    }
                    let range = self.t.toks[i].range.clone();
                    self.edits.replace(range, format!("{quote}{to}{quote}"));
                    to
                }
                collation::Mapped::Refused(why) => {
                    self.refuse(label, format!("collation {name}: {why}"));
                    continue;
                }
            };
            if let Some(known) = self.collations {
                if !known.contains(&name.to_ascii_lowercase()) {
                    self.refuse(
                        label,
                        format!(
                            "collation {name} does not exist on the target ({})",
                            self.to
                        ),
                    );
                }
            }
        }
    }

    /// Versioned comments: the ones the source skipped and the target would
    /// run are removed; the ones the source runs and the target would skip
    /// were translated where they stand, or are refused here.
    fn comments(&mut self) {
        for c in 0..self.t.comments.len() {
            let comment = self.t.comments[c].clone();
            let text = self.sql[comment.range.clone()].to_string();
            let source_runs = comment.runs_on(self.from, None);
            let target_runs = comment.runs_on(self.to.flavor, Some(self.to.version.id()));
            if !source_runs && target_runs {
                self.note(
                    "the table",
                    format!("removed {text}, which {} skipped", self.from),
                );
                self.edits.replace(comment.range, "");
            } else if source_runs && !target_runs && !self.handled[c] {
                let first = self.t.toks.iter().position(|t| t.comment == Some(c));
                let label = first.map_or_else(|| "the table".to_string(), |i| self.label(i));
                self.refuse(
                    label,
                    format!(
                        "{text} is {} syntax that {} would skip, and revdoor does not know \
                         what skipping it changes",
                        self.from, self.to
                    ),
                );
            }
        }
    }
}
