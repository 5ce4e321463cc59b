//! The comparison over a consistent point's snapshots: chunk checksums,
//! row-by-row merging across shards, placement, and the table reports.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use revdoor_core::keyrange::KeyRange;
use revdoor_core::sqltype::{SqlType, TableSchema};
use revdoor_core::workflow::ShardSpec;

use super::point::Point;
use super::record::{KeyPart, Sample, TableReport};
use super::sql;
use super::table::{
    key_part, kind, ksid, ord_part, q, shown, shown_as, text, Kind, OrdPart, TableDef,
};
use crate::shard::redact;
use crate::Error;

/// One row read for the row-by-row comparison.
struct RowData {
    ord: Vec<OrdPart>,
    vals: Vec<Option<Vec<u8>>>,
    /// Destination shard index it is on (targets) / belongs on.
    shard: usize,
    owner: Option<usize>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sum {
    count: u64,
    a: u64,
    b: u64,
}

impl Point {
    pub(super) async fn estimate(&mut self, tables: &[TableReport]) -> Result<u64, Error> {
        let mut total = 0u64;
        for (s, c) in &mut self.sources {
            for t in tables {
                let (db, table) = t.table.split_once('.').unwrap_or(("", &t.table));
                let rows: Option<Option<u64>> = c
                    .exec_first(
                        "SELECT TABLE_ROWS FROM information_schema.TABLES \
                         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                        (db, table),
                    )
                    .await
                    .map_err(sql("estimate rows", &s.url))?;
                total += rows.flatten().unwrap_or(0);
            }
        }
        Ok(total)
    }

    pub(super) async fn table(
        &mut self,
        name: &str,
        sharding_key: Option<&Vec<String>>,
    ) -> Result<TableDef, Error> {
        let (db, table) = name
            .split_once('.')
            .ok_or_else(|| Error::Refused(format!("table {name} must be db.table")))?;
        let (s, c) = self
            .sources
            .first_mut()
            .ok_or_else(|| Error::Refused("source keyspace has no shards".into()))?;
        let schema: TableSchema = revdoor_mysql::tables::load_table_schema(c, db, table)
            .await
            .map_err(|e| Error::Refused(format!("vdiff of {name} on {}: {e}", redact(&s.url))))?;
        let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        let mut kinds: Vec<Kind> = schema.columns.iter().map(|c| kind(&c.sql_type)).collect();
        // A JSON column on either side (MySQL `JSON` facing a MariaDB
        // `LONGTEXT` without its `json_valid` check, or the reverse) is
        // compared as JSON.
        if let Some((t, c)) = self.targets.first_mut() {
            let target = revdoor_mysql::tables::load_table_schema(c, db, table)
                .await
                .map_err(|e| {
                    Error::Refused(format!("vdiff of {name} on {}: {e}", redact(&t.url)))
                })?;
            for col in target.columns {
                if col.sql_type == SqlType::Json {
                    if let Some(i) = names.iter().position(|n| *n == col.name) {
                        kinds[i] = Kind::Json;
                    }
                }
            }
        }
        let idx = |col: &str| names.iter().position(|n| n == col);
        let pk: Vec<usize> = schema.primary_key.iter().filter_map(|c| idx(c)).collect();
        for &i in &pk {
            let ok = match kinds[i] {
                Kind::Other | Kind::Float | Kind::Bit | Kind::Json => false,
                Kind::Decimal { precision, .. } => precision <= 38,
                Kind::Text => matches!(schema.columns[i].sql_type, SqlType::String { .. }),
                _ => true,
            };
            if !ok {
                return Err(Error::Refused(format!(
                    "vdiff cannot order {name} by its primary-key column {} ({:?}); compare this \
                     table with `CHECKSUM TABLE` instead, or leave it out with --tables",
                    names[i], schema.columns[i].sql_type
                )));
            }
        }
        let sharding: Vec<usize> = match sharding_key {
            Some(cols) => cols.iter().filter_map(|c| idx(c)).collect(),
            None => pk.clone(),
        };
        Ok(TableDef {
            from: format!("{}.{}", q(db), q(table)),
            names,
            kinds,
            pk,
            sharding,
            placement: self.targets.len() > 1,
        })
    }

    /// Compare the chunk after `last`; advance `last`. True when the table
    /// is done.
    pub(super) async fn chunk(
        &mut self,
        def: &TableDef,
        rows: u64,
        last: &mut Option<Vec<KeyPart>>,
        report: &mut TableReport,
    ) -> Result<bool, Error> {
        let upper = self.boundary(def, rows, last.as_deref()).await?;
        let upto = upper.as_ref().map(|(_, k)| k.as_slice());
        let (cond, params) = def.range(last.as_deref(), upto);
        let Some(checksum) = def.checksum_sql(&cond) else {
            // JSON: every row, compared by value.
            self.rows(def, &cond, &params, report).await?;
            return Ok(Self::advance(upper, last));
        };
        let (src, dst) = tokio::join!(
            side_sum(&mut self.sources, &checksum, &params),
            side_sum(&mut self.targets, &checksum, &params)
        );
        let (src, dst) = (src?, dst?);
        if src == dst {
            report.processed += src.count;
            report.matching += src.count;
            if def.placement {
                self.placement(def, &cond, &params, report).await?;
            }
        } else {
            self.rows(def, &cond, &params, report).await?;
        }
        Ok(Self::advance(upper, last))
    }

    /// Move `last` to the chunk's upper bound; true when the table is done.
    fn advance(
        upper: Option<(Vec<OrdPart>, Vec<KeyPart>)>,
        last: &mut Option<Vec<KeyPart>>,
    ) -> bool {
        match upper {
            Some((_, k)) => {
                *last = Some(k);
                false
            }
            None => true,
        }
    }

    /// The chunk's last key: the smallest, over the origin shards, of the
    /// `rows`-th key after `last` (None: the rest of the table).
    async fn boundary(
        &mut self,
        def: &TableDef,
        rows: u64,
        last: Option<&[KeyPart]>,
    ) -> Result<Option<(Vec<OrdPart>, Vec<KeyPart>)>, Error> {
        let (cond, params) = def.range(last, None);
        let order = def.order_exprs();
        let query = format!(
            "SELECT {}, {} FROM {} WHERE {cond} ORDER BY {} LIMIT 1 OFFSET {}",
            order.join(", "),
            def.pk_cols(),
            def.from,
            def.pk_cols(),
            rows.saturating_sub(1)
        );
        let n = def.pk.len();
        let mut best: Option<(Vec<OrdPart>, Vec<KeyPart>)> = None;
        for (s, c) in &mut self.sources {
            let row: Option<mysql_async::Row> = c
                .exec_first(query.as_str(), params.clone())
                .await
                .map_err(sql("find chunk boundary", &s.url))?;
            let Some(row) = row else { continue };
            let vals = row.unwrap();
            let mut ord = Vec::with_capacity(n);
            let mut key = Vec::with_capacity(n);
            for (j, &col) in def.pk.iter().enumerate() {
                ord.push(ord_part(def.kinds[col], &vals[j])?);
                key.push(key_part(def.kinds[col], &vals[n + j])?);
            }
            if best.as_ref().is_none_or(|(b, _)| ord < *b) {
                best = Some((ord, key));
            }
        }
        Ok(best)
    }

    /// With several destination shards: every destination row of the
    /// chunk is on the shard that owns its keyspace id.
    async fn placement(
        &mut self,
        def: &TableDef,
        cond: &str,
        params: &[Value],
        report: &mut TableReport,
    ) -> Result<(), Error> {
        let query = format!(
            "SELECT {}, {} FROM {} WHERE {cond}",
            def.pk_cols(),
            def.sharding_exprs().join(", "),
            def.from
        );
        let ranges: Vec<KeyRange> = self.targets.iter().map(|(s, _)| s.range).collect();
        let n = def.pk.len();
        for (i, (s, c)) in self.targets.iter_mut().enumerate() {
            let rows: Vec<mysql_async::Row> = c
                .exec(query.as_str(), params.to_vec())
                .await
                .map_err(sql("check placement", &s.url))?;
            for row in rows {
                let vals = row.unwrap();
                let id = ksid(def, &vals[n..]);
                if !ranges[i].contains(id) {
                    report.wrong_shard += 1;
                    let owner = ranges.iter().find(|r| r.contains(id));
                    let key = key_text(def, &vals[..n]);
                    report.sample(Sample {
                        kind: "wrong_shard".into(),
                        key,
                        shard: format!(
                            "found on {}, belongs on {}",
                            ranges[i],
                            owner.map(ToString::to_string).unwrap_or_default()
                        ),
                        source: None,
                        target: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Row-by-row comparison of a chunk whose checksums differ.
    async fn rows(
        &mut self,
        def: &TableDef,
        cond: &str,
        params: &[Value],
        report: &mut TableReport,
    ) -> Result<(), Error> {
        let mut select = def.order_exprs();
        select.extend(def.names.iter().map(|n| q(n)));
        if def.placement {
            select.extend(def.sharding_exprs());
        }
        let query = format!(
            "SELECT {} FROM {} WHERE {cond}",
            select.join(", "),
            def.from
        );
        let ranges: Vec<KeyRange> = self.targets.iter().map(|(s, _)| s.range).collect();
        let (src, dst) = tokio::join!(
            read_rows(def, &mut self.sources, &query, params, &ranges),
            read_rows(def, &mut self.targets, &query, params, &ranges)
        );
        let (src, dst) = (src?, dst?);
        // Group destination copies of one key; pick the one on its shard.
        let mut groups: Vec<&RowData> = Vec::new();
        let mut i = 0;
        while i < dst.len() {
            let mut j = i;
            while j < dst.len() && dst[j].ord == dst[i].ord {
                j += 1;
            }
            let copies = &dst[i..j];
            let mut chosen = &copies[0];
            for c in copies {
                if def.placement && c.owner != Some(c.shard) {
                    report.wrong_shard += 1;
                    report.sample(Sample {
                        kind: "wrong_shard".into(),
                        key: key_of(def, c),
                        shard: format!(
                            "found on {}, belongs on {}",
                            ranges[c.shard],
                            c.owner.map(|o| ranges[o].to_string()).unwrap_or_default()
                        ),
                        source: None,
                        target: Some(row_map(def, c)),
                    });
                } else {
                    chosen = c;
                }
            }
            groups.push(chosen);
            i = j;
        }
        let target_shard = |r: &RowData| {
            if def.placement {
                r.owner.map(|o| ranges[o].to_string()).unwrap_or_default()
            } else {
                ranges.first().map(ToString::to_string).unwrap_or_default()
            }
        };
        let (mut a, mut b) = (0, 0);
        while a < src.len() || b < groups.len() {
            let order = match (src.get(a), groups.get(b)) {
                (Some(s), Some(t)) => s.ord.cmp(&t.ord),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    let s = &src[a];
                    report.processed += 1;
                    report.row_by_row += 1;
                    report.missing += 1;
                    report.sample(Sample {
                        kind: "missing".into(),
                        key: key_of(def, s),
                        shard: target_shard(s),
                        source: Some(row_map(def, s)),
                        target: None,
                    });
                    a += 1;
                }
                Ordering::Greater => {
                    let t = groups[b];
                    report.extra += 1;
                    report.sample(Sample {
                        kind: "extra".into(),
                        key: key_of(def, t),
                        shard: ranges[t.shard].to_string(),
                        source: None,
                        target: Some(row_map(def, t)),
                    });
                    b += 1;
                }
                Ordering::Equal => {
                    let (s, t) = (&src[a], groups[b]);
                    report.processed += 1;
                    report.row_by_row += 1;
                    if def.same_values(&s.vals, &t.vals) {
                        report.matching += 1;
                    } else {
                        report.different += 1;
                        report.sample(Sample {
                            kind: "different".into(),
                            key: key_of(def, s),
                            shard: ranges[t.shard].to_string(),
                            source: Some(row_map(def, s)),
                            target: Some(row_map(def, t)),
                        });
                    }
                    a += 1;
                    b += 1;
                }
            }
        }
        Ok(())
    }
}

/// A chunk's rows from every shard of one side, in key order.
async fn read_rows(
    def: &TableDef,
    conns: &mut [(ShardSpec, Conn)],
    query: &str,
    params: &[Value],
    ranges: &[KeyRange],
) -> Result<Vec<RowData>, Error> {
    let mut out = Vec::new();
    for (i, (s, c)) in conns.iter_mut().enumerate() {
        let rows: Vec<mysql_async::Row> = c
            .exec(query, params.to_vec())
            .await
            .map_err(sql("read chunk rows", &s.url))?;
        for row in rows {
            out.push(row_data(def, row.unwrap(), i, ranges)?);
        }
    }
    out.sort_by(|a, b| a.ord.cmp(&b.ord));
    Ok(out)
}

async fn side_sum(
    conns: &mut [(ShardSpec, Conn)],
    query: &str,
    params: &[Value],
) -> Result<Sum, Error> {
    let mut total = Sum::default();
    for (s, c) in conns.iter_mut() {
        let row: Option<(u64, u64, u64)> = c
            .exec_first(query, params.to_vec())
            .await
            .map_err(sql("checksum chunk", &s.url))?;
        let (count, a, b) = row.unwrap_or_default();
        total.count += count;
        total.a ^= a;
        total.b ^= b;
    }
    Ok(total)
}

fn row_data(
    def: &TableDef,
    vals: Vec<Value>,
    shard: usize,
    ranges: &[KeyRange],
) -> Result<RowData, Error> {
    let n = def.pk.len();
    let cols = def.names.len();
    let mut ord = Vec::with_capacity(n);
    for (j, &col) in def.pk.iter().enumerate() {
        ord.push(ord_part(def.kinds[col], &vals[j])?);
    }
    let owner = if def.placement {
        let id = ksid(def, &vals[n + cols..]);
        ranges.iter().position(|r| r.contains(id))
    } else {
        None
    };
    Ok(RowData {
        ord,
        vals: vals[n..n + cols].iter().map(text).collect(),
        shard,
        owner,
    })
}

/// `col=value,…` of a primary key, from its values in key order.
fn key_text(def: &TableDef, vals: &[Value]) -> String {
    key_string(def, vals.iter().map(text))
}

/// `col=value,…` of a row's primary key.
fn key_of(def: &TableDef, r: &RowData) -> String {
    key_string(def, def.pk.iter().map(|&i| r.vals[i].clone()))
}

fn key_string(def: &TableDef, vals: impl Iterator<Item = Option<Vec<u8>>>) -> String {
    def.pk
        .iter()
        .zip(vals)
        .map(|(&i, v)| {
            format!(
                "{}={}",
                def.names[i],
                shown(&v).unwrap_or_else(|| "NULL".into())
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn row_map(def: &TableDef, r: &RowData) -> BTreeMap<String, Option<String>> {
    def.names
        .iter()
        .zip(&def.kinds)
        .zip(&r.vals)
        .map(|((n, k), v)| (n.clone(), shown_as(*k, v)))
        .collect()
}
