//! DDL on moved tables, and the workflow's `on_ddl` policy (DESIGN §4).
//!
//! A statement-based event in the binlog (a standalone GTID group) is
//! examined here: which tables does it change the shape of? If one of them
//! is captured, the stream applies its policy:
//!
//! - `stop` (default): publish everything before the statement, then halt
//!   with a definite error naming the statement, the table and the GTID.
//!   The stream's position stays before the DDL, so a restart halts again
//!   until the operator has changed the target the same way and restarts
//!   with `--on-ddl ignore`.
//! - `ignore`: go on. Rows after the DDL carry their new definition in
//!   their table maps (`crate::tablemap`), published under a new schema
//!   before the first event that uses it — also when several DDLs on one
//!   table are still to be read (a backlog). The table's definition in
//!   `information_schema` is re-read too: it serves copied rows and refines
//!   the table maps' definitions where a column still matches.
//! - `exec`: as `ignore`, and the statement is published as a DDL record
//!   (`revdoor-ddl` header, [`revdoor_core::event::DdlEvent`]) on every
//!   partition this origin feeds, in the same Kafka transaction as the
//!   checkpoint that passes it; each destination's apply runs it in stream
//!   order, exactly once (docs/streams.md "DDL"). A DDL that apply itself
//!   ran for this workflow carries its tag and is not sent back by the
//!   opposite direction's capture.
//!
//! Triggers never change row images: `CREATE/DROP TRIGGER` pass, including
//! revdoor's own fence triggers (named `_revdoor_fence…`).

use std::collections::HashSet;
use std::str::FromStr;

/// What to do when a captured table's definition changes mid-stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDdl {
    #[default]
    Stop,
    Ignore,
    Exec,
}

/// An `on_ddl` policy that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("on_ddl must be stop, ignore or exec, not '{0}'")]
pub struct OnDdlError(pub String);

impl FromStr for OnDdl {
    type Err = OnDdlError;
    fn from_str(s: &str) -> Result<Self, OnDdlError> {
        match s {
            "stop" => Ok(OnDdl::Stop),
            "ignore" => Ok(OnDdl::Ignore),
            "exec" => Ok(OnDdl::Exec),
            other => Err(OnDdlError(other.to_owned())),
        }
    }
}

/// A DDL statement seen in the binlog that touches captured tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ddl {
    pub statement: String,
    /// The statement's default database (`USE`) on the origin.
    pub default_db: String,
    /// Publish it for the destinations to run (`on_ddl=exec`).
    pub exec: bool,
    /// The captured tables it changes, `(database, table)`.
    pub tables: Vec<(String, String)>,
}

/// The tables whose definition `sql` changes (run with default database
/// `default_db`), or an empty list when it changes none (DML, grants,
/// triggers, other objects).
pub fn tables_changed(default_db: &str, sql: &str) -> Vec<(String, String)> {
    let toks = tokenize(sql);
    let up = |i: usize| toks.get(i).map(|t| t.upper.as_str()).unwrap_or("");
    let mut i;
    let mut out = Vec::new();
    let name_at =
        |i: usize| -> Option<((String, String), usize)> { qualified_name(&toks, i, default_db) };
    match up(0) {
        "ALTER" => {
            i = 1;
            while matches!(up(i), "ONLINE" | "IGNORE") {
                i += 1;
            }
            if up(i) == "TABLE" {
                if let Some((n, _)) = name_at(skip_if_exists(&toks, i + 1)) {
                    out.push(n);
                }
            }
        }
        "DROP" => {
            i = 1;
            if up(i) == "TEMPORARY" {
                i += 1;
            }
            match up(i) {
                "TABLE" | "TABLES" => {
                    let mut j = skip_if_exists(&toks, i + 1);
                    while let Some((n, next)) = name_at(j) {
                        out.push(n);
                        if up(next) == "," {
                            j = next + 1;
                        } else {
                            break;
                        }
                    }
                }
                "INDEX" => {
                    if let Some(on) = (i..toks.len()).find(|&k| up(k) == "ON") {
                        if let Some((n, _)) = name_at(on + 1) {
                            out.push(n);
                        }
                    }
                }
                _ => {}
            }
        }
        "RENAME" if up(1) == "TABLE" || up(1) == "TABLES" => {
            let mut j = 2;
            while let Some((from, next)) = name_at(j) {
                out.push(from);
                if up(next) != "TO" {
                    break;
                }
                let Some((to, after)) = name_at(next + 1) else {
                    break;
                };
                out.push(to);
                if up(after) == "," {
                    j = after + 1;
                } else {
                    break;
                }
            }
        }
        "TRUNCATE" => {
            let j = if up(1) == "TABLE" { 2 } else { 1 };
            if let Some((n, _)) = name_at(j) {
                out.push(n);
            }
        }
        "CREATE" => {
            i = 1;
            if up(i) == "OR" && up(i + 1) == "REPLACE" {
                i += 2;
            }
            if up(i) == "TEMPORARY" {
                i += 1;
            }
            if matches!(up(i), "UNIQUE" | "FULLTEXT" | "SPATIAL") {
                i += 1;
            }
            match up(i) {
                "TABLE" => {
                    let j = skip_if_not_exists(&toks, i + 1);
                    if let Some((n, _)) = name_at(j) {
                        out.push(n);
                    }
                }
                "INDEX" => {
                    if let Some(on) = (i..toks.len()).find(|&k| up(k) == "ON") {
                        if let Some((n, _)) = name_at(on + 1) {
                            out.push(n);
                        }
                    }
                }
                _ => {} // TRIGGER, VIEW, PROCEDURE, USER, DATABASE…
            }
        }
        _ => {}
    }
    out
}

/// The captured tables among those `sql` changes.
pub fn captured_tables_changed(
    default_db: &str,
    sql: &str,
    captured: &HashSet<(String, String)>,
) -> Vec<(String, String)> {
    tables_changed(default_db, sql)
        .into_iter()
        .filter(|t| captured.contains(t))
        .collect()
}

struct Token {
    text: String,
    upper: String,
    quoted: bool,
}

fn skip_if_exists(toks: &[Token], i: usize) -> usize {
    let up = |k: usize| toks.get(k).map(|t| t.upper.as_str()).unwrap_or("");
    if up(i) == "IF" && up(i + 1) == "EXISTS" {
        i + 2
    } else {
        i
    }
}

fn skip_if_not_exists(toks: &[Token], i: usize) -> usize {
    let up = |k: usize| toks.get(k).map(|t| t.upper.as_str()).unwrap_or("");
    if up(i) == "IF" && up(i + 1) == "NOT" && up(i + 2) == "EXISTS" {
        i + 3
    } else {
        i
    }
}

/// `db.table`, `` `db`.`table` `` or `table` at token `i`; returns the name
/// and the index after it.
fn qualified_name(toks: &[Token], i: usize, default_db: &str) -> Option<((String, String), usize)> {
    let first = toks.get(i)?;
    if !first.quoted && !is_ident(&first.text) {
        return None;
    }
    if toks.get(i + 1).is_some_and(|t| !t.quoted && t.text == ".") {
        let second = toks.get(i + 2)?;
        if !second.quoted && !is_ident(&second.text) {
            return None;
        }
        return Some(((first.text.clone(), second.text.clone()), i + 3));
    }
    Some(((default_db.to_string(), first.text.clone()), i + 1))
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Words, quoted identifiers (without their quotes) and punctuation;
/// comments and string literals are dropped.
fn tokenize(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let push = |out: &mut Vec<Token>, text: String, quoted: bool| {
        let upper = if quoted {
            String::new()
        } else {
            text.to_ascii_uppercase()
        };
        out.push(Token {
            text,
            upper,
            quoted,
        });
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // MySQL executable comments /*!50100 … */ hold real SQL: keep their body.
            if chars.get(i + 2) == Some(&'!') {
                i += 3;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                continue;
            }
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '*' && chars.get(i + 1) == Some(&'/') {
            i += 2; // end of an executable comment
        } else if c == '#' || (c == '-' && chars.get(i + 1) == Some(&'-')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '`' {
                    if chars.get(i + 1) == Some(&'`') {
                        s.push('`');
                        i += 2;
                        continue;
                    }
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            push(&mut out, s, true);
        } else if c == '\'' || c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            push(&mut out, "''".into(), false);
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            push(&mut out, chars[start..i].iter().collect(), false);
        } else {
            push(&mut out, c.to_string(), false);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(db: &str, table: &str) -> (String, String) {
        (db.to_string(), table.to_string())
    }

    #[test]
    fn finds_the_tables_ddl_changes() {
        assert_eq!(
            tables_changed("d", "ALTER TABLE t ADD COLUMN c INT"),
            vec![t("d", "t")]
        );
        assert_eq!(
            tables_changed("d", "alter online table `x`.`we.ird` drop c"),
            vec![t("x", "we.ird")]
        );
        assert_eq!(
            tables_changed("d", "DROP TABLE IF EXISTS a, e.b /* generated by server */"),
            vec![t("d", "a"), t("e", "b")]
        );
        assert_eq!(
            tables_changed("d", "RENAME TABLE a TO b, x.c TO x.d"),
            vec![t("d", "a"), t("d", "b"), t("x", "c"), t("x", "d")]
        );
        assert_eq!(tables_changed("d", "TRUNCATE TABLE t"), vec![t("d", "t")]);
        assert_eq!(tables_changed("d", "truncate t"), vec![t("d", "t")]);
        assert_eq!(
            tables_changed("d", "CREATE TABLE IF NOT EXISTS n (id int)"),
            vec![t("d", "n")]
        );
        assert_eq!(
            tables_changed("d", "CREATE UNIQUE INDEX i ON t (c)"),
            vec![t("d", "t")]
        );
        assert_eq!(
            tables_changed("d", "DROP INDEX i ON x.t"),
            vec![t("x", "t")]
        );
        assert_eq!(
            tables_changed("d", "/*!40000 ALTER TABLE t DISABLE KEYS */"),
            vec![t("d", "t")]
        );
        assert_eq!(
            tables_changed("d", "-- note\nALTER TABLE t FORCE"),
            vec![t("d", "t")]
        );
    }

    #[test]
    fn ignores_what_does_not_change_row_images() {
        for sql in [
            "CREATE TRIGGER _revdoor_fence_t BEFORE INSERT ON t FOR EACH ROW SIGNAL SQLSTATE '45000'",
            "CREATE DEFINER=`root`@`%` TRIGGER tr AFTER UPDATE ON t FOR EACH ROW SET @x = 1",
            "DROP TRIGGER IF EXISTS _revdoor_fence_t",
            "GRANT SELECT ON d.t TO u",
            "CREATE DATABASE x",
            "FLUSH PRIVILEGES",
            "INSERT INTO t VALUES ('ALTER TABLE t')",
        ] {
            assert!(tables_changed("d", sql).is_empty(), "{sql}");
        }
    }

    #[test]
    fn only_captured_tables_count() {
        let captured: HashSet<(String, String)> = [t("d", "t")].into_iter().collect();
        assert_eq!(
            captured_tables_changed("d", "DROP TABLE a, t", &captured),
            vec![t("d", "t")]
        );
        assert!(captured_tables_changed("other", "ALTER TABLE t ADD c INT", &captured).is_empty());
    }

    #[test]
    fn policies_parse() {
        assert_eq!("stop".parse::<OnDdl>(), Ok(OnDdl::Stop));
        assert_eq!("ignore".parse::<OnDdl>(), Ok(OnDdl::Ignore));
        assert_eq!("exec".parse::<OnDdl>(), Ok(OnDdl::Exec));
        assert!("sometimes".parse::<OnDdl>().is_err());
    }
}
