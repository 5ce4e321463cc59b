//! What a client's text statement is to the proxy: a transaction boundary,
//! session state to carry onto backend connections, or a statement to route
//! by the tables it names (`sqlparser`, MySQL dialect).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::visit_relations;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// A statement by its leading keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `BEGIN`, `START TRANSACTION …`.
    Begin,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`, which is routed).
    Rollback,
    /// `USE db`.
    Use(String),
    /// `SET …` (session state); `Some(on)` when it sets `autocommit`.
    Set { autocommit: Option<bool> },
    /// Anything else: routed by its tables.
    Other,
}

/// The statement's words and symbols (no whitespace or comments), or
/// `None` when even the tokenizer refuses it.
fn tokens(sql: &str) -> Option<Vec<Token>> {
    let toks = Tokenizer::new(&MySqlDialect {}, sql).tokenize().ok()?;
    Some(
        toks.into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon))
            .collect(),
    )
}

fn word(t: Option<&Token>) -> Option<String> {
    match t {
        Some(Token::Word(w)) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Classify `sql` by its leading keywords.
pub fn kind(sql: &str) -> Kind {
    let Some(t) = tokens(sql) else {
        return Kind::Other;
    };
    let w0 = word(t.first());
    let w1 = word(t.get(1));
    match (w0.as_deref(), w1.as_deref()) {
        (Some("BEGIN"), None | Some("WORK")) if t.len() <= 2 => Kind::Begin,
        (Some("START"), Some("TRANSACTION")) => Kind::Begin,
        (Some("COMMIT"), _) if t.len() <= 2 => Kind::Commit,
        (Some("ROLLBACK"), None | Some("WORK")) if t.len() <= 2 => Kind::Rollback,
        (Some("USE"), _) if t.len() == 2 => match &t[1] {
            Token::Word(w) => Kind::Use(w.value.clone()),
            _ => Kind::Other,
        },
        (Some("SET"), _) => Kind::Set {
            autocommit: autocommit(&t[1..]),
        },
        _ => Kind::Other,
    }
}

/// `[SESSION | @@SESSION. | @@] autocommit = 0|1|ON|OFF|TRUE|FALSE`.
fn autocommit(t: &[Token]) -> Option<bool> {
    let names: Vec<String> = t
        .iter()
        .take_while(|t| !matches!(t, Token::Eq))
        .filter_map(|t| word(Some(t)))
        .collect();
    if names.last().map(String::as_str) != Some("AUTOCOMMIT") {
        return None;
    }
    let value = t.iter().skip_while(|t| !matches!(t, Token::Eq)).nth(1)?;
    match value {
        Token::Number(n, _) => Some(n != "0"),
        Token::Word(w) => match w.value.to_ascii_uppercase().as_str() {
            "ON" | "TRUE" => Some(true),
            "OFF" | "FALSE" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The tables a statement names, as (database or `None`, table).
#[derive(Debug, PartialEq, Eq)]
pub enum Tables {
    /// The parser read it: these tables.
    Parsed(BTreeSet<(Option<String>, String)>),
    /// The parser does not know it: every word of it, any of which may be
    /// a table (or the whole text when even the tokenizer refuses it).
    Unparsed(BTreeSet<String>),
}

/// The tables `sql` names.
pub fn tables(sql: &str) -> Tables {
    match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(stmts) => {
            let mut out = BTreeSet::new();
            let _ = visit_relations(&stmts, |name| {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
                    .collect();
                match parts.as_slice() {
                    [table] => {
                        out.insert((None, table.clone()));
                    }
                    [.., db, table] => {
                        out.insert((Some(db.clone()), table.clone()));
                    }
                    [] => {}
                }
                ControlFlow::<()>::Continue(())
            });
            Tables::Parsed(out)
        }
        Err(_) => match tokens(sql) {
            Some(t) => Tables::Unparsed(
                t.into_iter()
                    .filter_map(|t| match t {
                        Token::Word(w) => Some(w.value),
                        _ => None,
                    })
                    .collect(),
            ),
            None => Tables::Unparsed(BTreeSet::from([sql.to_string()])),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(sql: &str) -> Vec<(Option<String>, String)> {
        match tables(sql) {
            Tables::Parsed(t) => t.into_iter().collect(),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("BEGIN"), Kind::Begin);
        assert_eq!(kind("start transaction read write"), Kind::Begin);
        assert_eq!(kind("commit;"), Kind::Commit);
        assert_eq!(kind("ROLLBACK"), Kind::Rollback);
        assert_eq!(kind("ROLLBACK TO SAVEPOINT a"), Kind::Other);
        assert_eq!(kind("USE `bank`"), Kind::Use("bank".into()));
        assert_eq!(kind("SET NAMES utf8mb4"), Kind::Set { autocommit: None });
        assert_eq!(
            kind("SET autocommit=0"),
            Kind::Set {
                autocommit: Some(false)
            }
        );
        assert_eq!(
            kind("set @@session.autocommit = ON"),
            Kind::Set {
                autocommit: Some(true)
            }
        );
        assert_eq!(kind("SELECT 1"), Kind::Other);
    }

    #[test]
    fn tables_of_statements() {
        let t = |d: Option<&str>, n: &str| (d.map(String::from), n.to_string());
        assert_eq!(
            parsed("UPDATE `b`.accounts SET balance = balance + 1 WHERE id = 3"),
            vec![t(Some("b"), "accounts")]
        );
        assert_eq!(
            parsed("SELECT * FROM ledger l JOIN b.accounts a ON a.id = l.account_id WHERE l.op_id IN (SELECT x FROM other)"),
            vec![t(None, "ledger"), t(None, "other"), t(Some("b"), "accounts")]
        );
        assert_eq!(
            parsed("INSERT INTO b.ledger (op_id) VALUES (1)"),
            vec![t(Some("b"), "ledger")]
        );
        assert_eq!(parsed("SELECT 1"), vec![]);
        // The accounts column is no table.
        assert_eq!(parsed("SELECT accounts FROM b.t"), vec![t(Some("b"), "t")]);
        match tables("FROBNICATE b.accounts NOW") {
            Tables::Unparsed(w) => assert!(w.contains("accounts")),
            other => panic!("{other:?}"),
        }
    }
}
