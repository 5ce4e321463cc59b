//! Statements on a sharded serving side: which shards a statement goes to
//! (DESIGN §2: the keyspace id of its sharding key), and how the rows of a
//! read sent to several shards are merged.
//!
//! A statement pins its sharding key when its `WHERE` holds, AND-ed at the
//! top, `key = literal` or `key IN (literal, …)` for every key column, or
//! when it is an `INSERT … VALUES` naming every key column with literal
//! values. Anything else pins nothing: a read then goes to every shard, a
//! write is refused. Only single-table statements are planned here (the
//! session refuses the others on a sharded side).
//!
//! # Merging
//!
//! The rows of a read sent to several shards are merged when the merge is
//! exact: plain selects (rows concatenated), `ORDER BY` of selected
//! columns (merge-sorted) with `LIMIT n` (each shard returns at most `n`,
//! the merge keeps the first `n`), and selects of only `COUNT` / `SUM` /
//! `MIN` / `MAX` without `GROUP BY` (one row, the shards' values added or
//! compared). `GROUP BY`, `DISTINCT`, `HAVING`, `AVG`, `OFFSET`, joins,
//! unions and subqueries are refused on a read that reaches more than one
//! shard, saying so. Strings are ordered by their bytes (a binary
//! collation), numbers by value.

use std::cmp::Ordering;

use mysql_async::consts::ColumnType;
use mysql_async::Value;
use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_core::sqltype::SqlType;
use sqlparser::ast::{
    BinaryOperator, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, InTarget, LimitClause, OrderByKind, OrderBySort, Query, SelectItem, SetExpr,
    Statement, UnaryOperator, Value as SqlValue,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::results::ResultSet;

/// A literal of a statement, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lit {
    Null,
    /// A number's text, sign included.
    Num(String),
    Str(String),
}

/// Where a statement on a sharded table goes.
#[derive(Debug)]
pub struct Plan {
    /// `true` for `INSERT` / `REPLACE` / `UPDATE` / `DELETE`.
    pub write: bool,
    /// The sharding keys it pins (one value per key column each), or
    /// `None`: every shard.
    pub keys: Option<Vec<Vec<Lit>>>,
    /// How a read's rows from several shards merge, or why they cannot.
    pub merge: Result<Merge, String>,
}

/// How the rows of a read from several shards merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// Concatenated, then ordered by these columns (descending when
    /// `true`) and cut at `limit`.
    Rows {
        order: Vec<(OrderKey, bool)>,
        limit: Option<u64>,
    },
    /// One row of aggregates.
    Aggregates(Vec<Agg>),
}

/// A column of `ORDER BY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKey {
    /// A selected column by name (or alias).
    Name(String),
    /// `ORDER BY 2`: the second selected column.
    Position(usize),
}

/// An aggregate column of a scatter read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// `COUNT` and `SUM`: the shards' values added.
    Sum,
    Min,
    Max,
}

/// The plan of `sql`, a statement on one table sharded by `key`.
pub fn plan(sql: &str, key: &[String]) -> Result<Plan, String> {
    let stmts = Parser::parse_sql(&MySqlDialect {}, sql).map_err(|e| e.to_string())?;
    let [stmt] = stmts.as_slice() else {
        return Err("several statements in one query; send them one by one".into());
    };
    let not_mergeable = |why: &str| Err(format!("{why} cannot be merged across shards"));
    Ok(match stmt {
        Statement::Query(q) => Plan {
            write: false,
            keys: match q.body.as_ref() {
                SetExpr::Select(s) => s.selection.as_ref().and_then(|w| pinned(w, key)),
                _ => None,
            },
            merge: merge_of(q),
        },
        Statement::Insert(i) => Plan {
            write: true,
            keys: Some(insert_keys(i, key)?),
            merge: not_mergeable("a write"),
        },
        Statement::Update(u) => Plan {
            write: true,
            keys: u.selection.as_ref().and_then(|w| pinned(w, key)),
            merge: not_mergeable("a write"),
        },
        Statement::Delete(d) => Plan {
            write: true,
            keys: d.selection.as_ref().and_then(|w| pinned(w, key)),
            merge: not_mergeable("a write"),
        },
        _ => {
            return Err(
                "only SELECT, INSERT, REPLACE, UPDATE and DELETE are routed on a sharded side"
                    .into(),
            )
        }
    })
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Identifier(i) => Some(&i.value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
        Expr::Nested(e) => column_name(e),
        _ => None,
    }
}

/// A literal, or `None` for any other expression.
pub fn literal(e: &Expr) -> Option<Lit> {
    match e {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(n, _) => Some(Lit::Num(n.to_string())),
            SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => {
                Some(Lit::Str(s.clone()))
            }
            SqlValue::Null => Some(Lit::Null),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr)? {
            Lit::Num(n) if !n.starts_with('-') => Some(Lit::Num(format!("-{n}"))),
            _ => None,
        },
        Expr::Nested(e) => literal(e),
        _ => None,
    }
}

/// The values each key column is pinned to by the AND-ed conjuncts of
/// `w`, as every combination; `None` unless every column is pinned.
fn pinned(w: &Expr, key: &[String]) -> Option<Vec<Vec<Lit>>> {
    let mut values: Vec<Option<Vec<Lit>>> = vec![None; key.len()];
    conjuncts(w, key, &mut values);
    let mut keys: Vec<Vec<Lit>> = vec![vec![]];
    for v in values {
        let v = v?;
        keys = keys
            .into_iter()
            .flat_map(|k| {
                v.iter().map(move |x| {
                    let mut k = k.clone();
                    k.push(x.clone());
                    k
                })
            })
            .collect();
        if keys.len() > 10_000 {
            return None;
        }
    }
    Some(keys)
}

fn conjuncts(e: &Expr, key: &[String], values: &mut [Option<Vec<Lit>>]) {
    let col =
        |e: &Expr| column_name(e).and_then(|n| key.iter().position(|k| k.eq_ignore_ascii_case(n)));
    let mut pin = |i: usize, lits: Vec<Lit>| {
        // Two conditions on one column: the values both allow.
        values[i] = Some(match values[i].take() {
            None => lits,
            Some(old) => old.into_iter().filter(|l| lits.contains(l)).collect(),
        });
    };
    match e {
        Expr::Nested(e) => conjuncts(e, key, values),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, key, values);
            conjuncts(right, key, values);
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (col(left), literal(right), col(right), literal(left)) {
            (Some(i), Some(l), _, _) | (_, _, Some(i), Some(l)) => pin(i, vec![l]),
            _ => {}
        },
        Expr::In {
            expr,
            target: InTarget::List(list),
            negated: false,
            ..
        } => {
            if let Some(i) = col(expr) {
                let lits: Option<Vec<Lit>> = list.iter().map(literal).collect();
                if let Some(lits) = lits {
                    pin(i, lits);
                }
            }
        }
        _ => {}
    }
}

fn insert_keys(i: &sqlparser::ast::Insert, key: &[String]) -> Result<Vec<Vec<Lit>>, String> {
    let names: Vec<String> = i
        .columns
        .iter()
        .map(|c| c.to_string().trim_matches('`').to_string())
        .collect();
    let positions: Vec<usize> = key
        .iter()
        .map(|k| {
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(k))
                .ok_or_else(|| {
                    format!(
                        "the INSERT does not name sharding key column {k}; name the columns, key included"
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let Some(SetExpr::Values(values)) = i.source.as_ref().map(|q| q.body.as_ref()) else {
        return Err(
            "only INSERT … VALUES is routed on a sharded side (not INSERT … SELECT)".into(),
        );
    };
    values
        .rows
        .iter()
        .map(|row| {
            positions
                .iter()
                .map(|&p| {
                    row.content.get(p).and_then(literal).ok_or_else(|| {
                        format!(
                            "the INSERT's value of sharding key column {} is not a literal",
                            names[p]
                        )
                    })
                })
                .collect()
        })
        .collect()
}

fn merge_of(q: &Query) -> Result<Merge, String> {
    let refuse = |what: &str| -> Result<Merge, String> {
        Err(format!("a read with {what} cannot be merged across shards"))
    };
    let SetExpr::Select(s) = q.body.as_ref() else {
        return refuse("UNION or a table constructor");
    };
    if q.with.is_some() {
        return refuse("WITH");
    }
    if s.distinct.is_some() {
        return refuse("DISTINCT");
    }
    if s.having.is_some() {
        return refuse("HAVING");
    }
    if !matches!(&s.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty()) {
        return refuse("GROUP BY");
    }
    if s.from.len() != 1 || !s.from[0].joins.is_empty() {
        return refuse("a join");
    }
    let aggs: Vec<Option<Agg>> = s
        .projection
        .iter()
        .map(|p| match p {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => aggregate(e),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    if aggs.iter().all(Option::is_some) {
        return Ok(Merge::Aggregates(aggs.into_iter().flatten().collect()));
    }
    if aggs.iter().any(Option::is_some) {
        return refuse("aggregates beside plain columns");
    }
    let limit = match &q.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset {
            limit: None,
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => None,
        Some(LimitClause::LimitOffset {
            limit: Some(e),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => match literal(e) {
            Some(Lit::Num(n)) => Some(n.parse::<u64>().map_err(|e| format!("LIMIT {n}: {e}"))?),
            _ => return refuse("a LIMIT that is not a number"),
        },
        Some(_) => return refuse("OFFSET"),
    };
    let mut order = Vec::new();
    if let Some(o) = &q.order_by {
        let OrderByKind::Expressions(exprs) = &o.kind else {
            return refuse("ORDER BY ALL");
        };
        for e in exprs {
            let k = match (&e.expr, column_name(&e.expr)) {
                (_, Some(n)) => OrderKey::Name(n.to_string()),
                (e, None) => match literal(e) {
                    Some(Lit::Num(n)) => match n.parse::<usize>() {
                        Ok(p) if p >= 1 => OrderKey::Position(p - 1),
                        _ => return refuse("ORDER BY of a bad column position"),
                    },
                    _ => return refuse("ORDER BY of an expression (order by a selected column)"),
                },
            };
            order.push((k, matches!(e.options.sort, Some(OrderBySort::Desc))));
        }
    }
    Ok(Merge::Rows { order, limit })
}

/// `COUNT(…)`, `SUM(…)`, `MIN(…)`, `MAX(…)`: how it merges; `None` for a
/// plain column; an error for an aggregate that does not merge.
fn aggregate(e: &Expr) -> Result<Option<Agg>, String> {
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    let name = f.name.to_string().to_ascii_uppercase();
    let distinct = matches!(
        &f.args,
        FunctionArguments::List(l) if matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct))
    );
    let agg = match name.as_str() {
        "COUNT" | "SUM" => Agg::Sum,
        "MIN" => Agg::Min,
        "MAX" => Agg::Max,
        "AVG" | "GROUP_CONCAT" | "STD" | "STDDEV" | "VARIANCE" | "BIT_AND" | "BIT_OR"
        | "BIT_XOR" | "JSON_ARRAYAGG" | "JSON_OBJECTAGG" => {
            return Err(format!(
                "a read with {name} cannot be merged across shards (COUNT, SUM, MIN and MAX can)"
            ))
        }
        _ => return Ok(None),
    };
    if distinct && agg == Agg::Sum {
        return Err(format!(
            "a read with {name}(DISTINCT …) cannot be merged across shards"
        ));
    }
    // `COUNT(*)` and friends: no argument to check.
    if let FunctionArguments::List(l) = &f.args {
        if l.args.iter().any(|a| {
            matches!(
                a,
                FunctionArg::Unnamed(FunctionArgExpr::QualifiedWildcard(_))
            )
        }) {
            return Err("COUNT(t.*) cannot be merged across shards".into());
        }
    }
    Ok(Some(agg))
}

/// The keyspace id of `key` for key columns of types `types`, or why the
/// proxy cannot compute it.
pub fn ksid(types: &[(String, SqlType)], key: &[Lit]) -> Result<u64, String> {
    let mut values = Vec::with_capacity(key.len());
    for ((name, ty), lit) in types.iter().zip(key) {
        let int = matches!(
            ty,
            SqlType::TinyInt { .. }
                | SqlType::SmallInt { .. }
                | SqlType::MediumInt { .. }
                | SqlType::Int { .. }
                | SqlType::BigInt { .. }
        );
        let unsigned = matches!(
            ty,
            SqlType::TinyInt { unsigned: true }
                | SqlType::SmallInt { unsigned: true }
                | SqlType::MediumInt { unsigned: true }
                | SqlType::Int { unsigned: true }
                | SqlType::BigInt { unsigned: true }
        );
        let text = match lit {
            Lit::Null => {
                values.push(KeyValue::Null);
                continue;
            }
            Lit::Num(t) | Lit::Str(t) => t,
        };
        let bad = |what: &str| format!("sharding key column {name} ({ty:?}): {text:?} {what}");
        values.push(match ty {
            _ if int && unsigned => KeyValue::UInt(text.trim().parse().map_err(|_| bad("is not an unsigned integer"))?),
            _ if int => KeyValue::Int(text.trim().parse().map_err(|_| bad("is not an integer"))?),
            SqlType::String { charset, .. }
                if ["utf8", "utf8mb3", "utf8mb4", "ascii"].contains(&charset.as_str()) =>
            {
                KeyValue::Bytes(text.as_bytes())
            }
            SqlType::Binary { .. } => KeyValue::Bytes(text.as_bytes()),
            other => {
                return Err(format!(
                    "sharding key column {name} is {other:?}: the proxy computes keyspace ids of integer and UTF-8 string keys only; query its shards directly"
                ))
            }
        });
    }
    Ok(keyspace_id(&values))
}

/// Compare two values of a column of type `ty` (text protocol): numbers by
/// value, anything else by its bytes; NULL first.
fn compare(ty: ColumnType, a: &Value, b: &Value) -> Ordering {
    let bytes = |v: &Value| match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(b.clone()),
        other => Some(other.as_sql(true).into_bytes()),
    };
    let (a, b) = (bytes(a), bytes(b));
    let numeric = matches!(
        ty,
        ColumnType::MYSQL_TYPE_TINY
            | ColumnType::MYSQL_TYPE_SHORT
            | ColumnType::MYSQL_TYPE_LONG
            | ColumnType::MYSQL_TYPE_INT24
            | ColumnType::MYSQL_TYPE_LONGLONG
            | ColumnType::MYSQL_TYPE_DECIMAL
            | ColumnType::MYSQL_TYPE_NEWDECIMAL
            | ColumnType::MYSQL_TYPE_FLOAT
            | ColumnType::MYSQL_TYPE_DOUBLE
            | ColumnType::MYSQL_TYPE_YEAR
    );
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) if numeric => {
            let n = |b: &[u8]| {
                String::from_utf8_lossy(b)
                    .parse::<f64>()
                    .unwrap_or(f64::NAN)
            };
            match (Decimal::parse(&a), Decimal::parse(&b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => n(&a).total_cmp(&n(&b)),
            }
        }
        (Some(a), Some(b)) => a.cmp(&b),
    }
}

/// An exact decimal: digits scaled by 10^scale.
#[derive(Debug, Clone, Copy)]
struct Decimal {
    units: i128,
    scale: u32,
}

impl Decimal {
    fn parse(t: &[u8]) -> Option<Decimal> {
        let t = std::str::from_utf8(t).ok()?.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t),
        };
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            || frac.len() > 30
        {
            return None;
        }
        let units: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Decimal {
            units: if neg { -units } else { units },
            scale: frac.len() as u32,
        })
    }

    fn rescale(self, scale: u32) -> Option<i128> {
        self.units
            .checked_mul(10i128.checked_pow(scale - self.scale)?)
    }

    fn add(self, o: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(o.scale);
        Some(Decimal {
            units: self.rescale(scale)?.checked_add(o.rescale(scale)?)?,
            scale,
        })
    }

    fn cmp(&self, o: &Decimal) -> Ordering {
        let scale = self.scale.max(o.scale);
        match (self.rescale(scale), o.rescale(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => Ordering::Equal,
        }
    }

    fn text(self) -> String {
        let digits = self.units.unsigned_abs().to_string();
        let sign = if self.units < 0 { "-" } else { "" };
        if self.scale == 0 {
            return format!("{sign}{digits}");
        }
        let s = self.scale as usize;
        let digits = format!("{digits:0>width$}", width = s + 1);
        let (i, f) = digits.split_at(digits.len() - s);
        format!("{sign}{i}.{f}")
    }
}

/// The first result set of each shard's answer merged by `merge`.
pub fn merge(answers: Vec<Vec<ResultSet>>, merge: &Merge) -> Result<Vec<ResultSet>, String> {
    let mut sets = answers.into_iter().filter_map(|a| a.into_iter().next());
    let Some(mut out) = sets.next() else {
        return Ok(vec![]);
    };
    let columns = out.columns.clone().unwrap_or_else(|| Vec::new().into());
    let rest: Vec<ResultSet> = sets.collect();
    match merge {
        Merge::Rows { order, limit } => {
            for s in rest {
                out.rows.extend(s.rows);
            }
            let keys: Vec<(usize, bool)> = order
                .iter()
                .map(|(k, desc)| {
                    let i = match k {
                        OrderKey::Position(p) => Some(*p).filter(|p| *p < columns.len()),
                        OrderKey::Name(n) => columns
                            .iter()
                            .position(|c| c.name_str().eq_ignore_ascii_case(n)),
                    };
                    i.map(|i| (i, *desc)).ok_or_else(|| {
                        format!("ORDER BY {k:?}: order a scatter read by selected columns")
                    })
                })
                .collect::<Result<_, _>>()?;
            out.rows.sort_by(|a, b| {
                keys.iter()
                    .map(|&(i, desc)| {
                        let o = compare(columns[i].column_type(), &a[i], &b[i]);
                        if desc {
                            o.reverse()
                        } else {
                            o
                        }
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
            if let Some(n) = limit {
                out.rows.truncate(usize::try_from(*n).unwrap_or(usize::MAX));
            }
        }
        Merge::Aggregates(aggs) => {
            let Some(row) = out.rows.first_mut() else {
                return Ok(vec![out]);
            };
            for s in rest {
                let Some(other) = s.rows.into_iter().next() else {
                    continue;
                };
                for (i, agg) in aggs.iter().enumerate() {
                    let (a, b) = (&row[i], &other[i]);
                    let ty = columns[i].column_type();
                    let v = match (agg, a, b) {
                        (_, _, Value::NULL) => continue,
                        (_, Value::NULL, b) => b.clone(),
                        (Agg::Sum, Value::Bytes(x), Value::Bytes(y)) => {
                            match Decimal::parse(x).zip(Decimal::parse(y)) {
                                Some((x, y)) => Value::Bytes(
                                    x.add(y).ok_or("a SUM overflows")?.text().into_bytes(),
                                ),
                                None => {
                                    let f = |b: &[u8]| {
                                        String::from_utf8_lossy(b).parse::<f64>().unwrap_or(0.0)
                                    };
                                    Value::Bytes((f(x) + f(y)).to_string().into_bytes())
                                }
                            }
                        }
                        (Agg::Sum, _, _) => return Err("a SUM of an unexpected value".into()),
                        (Agg::Min, a, b) if compare(ty, b, a).is_lt() => b.clone(),
                        (Agg::Max, a, b) if compare(ty, b, a).is_gt() => b.clone(),
                        _ => continue,
                    };
                    row[i] = v;
                }
            }
        }
    }
    Ok(vec![out])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn n(v: &str) -> Lit {
        Lit::Num(v.into())
    }

    #[test]
    fn pins() {
        let id = key(&["id"]);
        let p = plan("SELECT * FROM t WHERE id = 5", &id).unwrap();
        assert_eq!((p.write, p.keys), (false, Some(vec![vec![n("5")]])));
        let p = plan("SELECT * FROM t WHERE x > 1 AND (t.id IN (1, -2))", &id).unwrap();
        assert_eq!(p.keys, Some(vec![vec![n("1")], vec![n("-2")]]));
        // OR pins nothing; neither does a non-literal.
        assert_eq!(
            plan("SELECT * FROM t WHERE id = 1 OR x = 2", &id)
                .unwrap()
                .keys,
            None
        );
        assert_eq!(plan("DELETE FROM t WHERE id = x", &id).unwrap().keys, None);
        assert_eq!(plan("UPDATE t SET a = 1", &id).unwrap().keys, None);
        let p = plan("UPDATE t SET a = 1 WHERE 'k' = id", &id).unwrap();
        assert_eq!(
            (p.write, p.keys),
            (true, Some(vec![vec![Lit::Str("k".into())]]))
        );
        // A two-column key needs both.
        let ab = key(&["a", "b"]);
        assert_eq!(plan("SELECT * FROM t WHERE a = 1", &ab).unwrap().keys, None);
        assert_eq!(
            plan("SELECT * FROM t WHERE b IN (2, 3) AND a = 1", &ab)
                .unwrap()
                .keys,
            Some(vec![vec![n("1"), n("2")], vec![n("1"), n("3")]])
        );
        let p = plan(
            "INSERT INTO d.ledger (op_id, account_id, amount) VALUES (1, 7, 0), (2, 8, -1)",
            &key(&["account_id"]),
        )
        .unwrap();
        assert_eq!(
            (p.write, p.keys),
            (true, Some(vec![vec![n("7")], vec![n("8")]]))
        );
        assert!(plan("INSERT INTO t VALUES (1)", &id)
            .unwrap_err()
            .contains("name the columns"));
        assert!(plan("INSERT INTO t (id) SELECT 1", &id)
            .unwrap_err()
            .contains("INSERT … SELECT"));
        assert!(plan("LOCK TABLES t READ", &id).is_err());
    }

    #[test]
    fn merges() {
        let m = |sql: &str| plan(sql, &key(&["id"])).unwrap().merge;
        assert_eq!(
            m("SELECT id, b FROM t ORDER BY b DESC, 1 LIMIT 3"),
            Ok(Merge::Rows {
                order: vec![
                    (OrderKey::Name("b".into()), true),
                    (OrderKey::Position(0), false)
                ],
                limit: Some(3)
            })
        );
        assert_eq!(
            m("SELECT COUNT(*), SUM(b) AS s, min(b), MAX(b) FROM t"),
            Ok(Merge::Aggregates(vec![
                Agg::Sum,
                Agg::Sum,
                Agg::Min,
                Agg::Max
            ]))
        );
        for (sql, why) in [
            ("SELECT b, COUNT(*) FROM t GROUP BY b", "GROUP BY"),
            ("SELECT DISTINCT b FROM t", "DISTINCT"),
            ("SELECT AVG(b) FROM t", "AVG"),
            ("SELECT b FROM t LIMIT 2 OFFSET 1", "OFFSET"),
            ("SELECT b FROM t LIMIT 1, 2", "OFFSET"),
            ("SELECT b, COUNT(*) FROM t", "aggregates beside"),
            ("SELECT b FROM t ORDER BY b + 1", "expression"),
        ] {
            let e = m(sql).unwrap_err();
            assert!(e.contains(why), "{sql}: {e}");
        }
    }

    #[test]
    fn decimals() {
        let d = |t: &str| Decimal::parse(t.as_bytes()).unwrap();
        assert_eq!(d("12.5").add(d("-0.75")).unwrap().text(), "11.75");
        assert_eq!(d("-3").add(d("1")).unwrap().text(), "-2");
        assert_eq!(d("0.05").add(d("0.01")).unwrap().text(), "0.06");
        assert!(d("2").cmp(&d("10")).is_lt());
        assert!(Decimal::parse(b"1e5").is_none());
    }

    #[test]
    fn key_ids_follow_the_contract() {
        let int = vec![("id".to_string(), SqlType::BigInt { unsigned: false })];
        assert_eq!(
            ksid(&int, &[n("-7")]).unwrap(),
            keyspace_id(&[KeyValue::Int(-7)])
        );
        // A quoted number is the number, as MySQL compares it.
        assert_eq!(
            ksid(&int, &[Lit::Str("42".into())]).unwrap(),
            keyspace_id(&[KeyValue::Int(42)])
        );
        assert!(ksid(&int, &[Lit::Str("x".into())])
            .unwrap_err()
            .contains("not an integer"));
        let s = vec![(
            "k".to_string(),
            SqlType::String {
                kind: revdoor_core::sqltype::StringKind::VarChar(10),
                charset: "utf8mb4".into(),
            },
        )];
        assert_eq!(
            ksid(&s, &[Lit::Str("ab".into())]).unwrap(),
            keyspace_id(&[KeyValue::Bytes(b"ab")])
        );
        let dec = vec![(
            "d".to_string(),
            SqlType::Decimal {
                precision: 5,
                scale: 2,
            },
        )];
        assert!(ksid(&dec, &[n("1.5")])
            .unwrap_err()
            .contains("integer and UTF-8 string"));
    }
}
