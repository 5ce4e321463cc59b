//! Rows events decoded straight into revdoor rows.
//!
//! mysql_common's `RowsEventData::rows` builds, for every row image, a
//! `Column` per column with copies of the database, table and column names
//! and re-reads the table map's optional metadata — ≈ 15 % of capture's CPU
//! in the benchmark's profile, before revdoor copied the names once more.
//! Here the table map is read once into a [`RowLayout`] (types, metadata,
//! signedness, names shared by every row, and the table map read whole as
//! the table's definition of that moment, [`crate::tablemap`]) and each
//! image is parsed with mysql_common's own value parser, exactly as
//! `BinlogRow` does it, minus the per-row columns. Partial JSON updates are refused before this.

use std::sync::Arc;

use mysql_async::binlog::events::RowsEventData;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_common::io::ParseBuf;
use revdoor_core::event::Row;

use crate::tablemap::TableMap;
use crate::values::{convert_value, ValueError};

/// A rows event or row image that does not decode. Each message names
/// what was being read; the cause is part of it (not a `#[source]`), as
/// the stream's error carries only the text.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("column {column} of the table map: {error}")]
    ColumnType {
        column: usize,
        error: mysql_async::binlog::events::BadColumnType,
    },
    #[error("column {0} of the table map has no type")]
    NoColumnType(usize),
    #[error("table map metadata: {0}")]
    Metadata(std::io::Error),
    #[error("column names: {0}")]
    ColumnNames(std::io::Error),
    #[error("binlog has no column names: set binlog_row_metadata=FULL on the source")]
    NoColumnNames,
    #[error("rows event has {event} columns, its table map {table_map}")]
    ColumnCount { event: usize, table_map: usize },
    #[error("row image has {present} of {columns} columns: binlog_row_image must be FULL")]
    PartialImage { present: usize, columns: usize },
    #[error("row null bitmap: {0}")]
    NullBitmap(std::io::Error),
    #[error("value of column {column}: {error}")]
    Value {
        column: String,
        error: std::io::Error,
    },
    #[error("row has more values than columns ({0})")]
    ExtraValue(usize),
    #[error("value of column {column}: {error}")]
    ConvertColumn { column: String, error: ValueError },
    #[error(transparent)]
    Convert(#[from] ValueError),
}

/// What the rows of one table map decode with.
#[derive(Debug, Clone, PartialEq)]
pub struct RowLayout {
    types: Vec<ColumnType>,
    metas: Vec<Vec<u8>>,
    unsigned: Vec<bool>,
    /// Column names, shared by every row of this layout.
    pub names: Arc<[String]>,
    /// The table map it was read from: the table's definition at that
    /// point of the binlog (see [`crate::tablemap`]).
    pub map: Arc<TableMap>,
}

impl RowLayout {
    /// The layout of a table map read whole.
    pub fn from_map(map: TableMap) -> RowLayout {
        RowLayout {
            types: map.columns.iter().map(|c| c.ty).collect(),
            metas: map.columns.iter().map(|c| c.meta.clone()).collect(),
            unsigned: map.columns.iter().map(|c| c.unsigned).collect(),
            names: map.columns.iter().map(|c| c.name.clone()).collect(),
            map: Arc::new(map),
        }
    }
}

/// The `(before, after)` images of one row change.
pub type Images = (Option<Row>, Option<Row>);

/// The `(before, after)` images of every row of a rows event.
pub fn decode_rows<'a>(
    rows: &'a RowsEventData<'_>,
    layout: &'a RowLayout,
) -> Result<Vec<Images>, RowError> {
    let n = rows.num_columns() as usize;
    if n != layout.types.len() {
        return Err(RowError::ColumnCount {
            event: n,
            table_map: layout.types.len(),
        });
    }
    // Which images the event carries; each must have every column (the
    // column bitmaps are per event, so this is checked once, not per row).
    let present = |cols: Option<usize>| -> Result<bool, RowError> {
        match cols {
            None => Ok(false),
            Some(count) if count == n => Ok(true),
            Some(count) => Err(RowError::PartialImage {
                present: count,
                columns: n,
            }),
        }
    };
    let has_before = present(
        rows.columns_before_image()
            .map(|c| c.iter().take(n).filter(|b| **b).count()),
    )?;
    let has_after = present(
        rows.columns_after_image()
            .map(|c| c.iter().take(n).filter(|b| **b).count()),
    )?;
    let mut buf = ParseBuf(rows.rows_data());
    let mut out = Vec::new();
    while !buf.is_empty() {
        let before = if has_before {
            Some(image(&mut buf, layout)?)
        } else {
            None
        };
        let after = if has_after {
            Some(image(&mut buf, layout)?)
        } else {
            None
        };
        out.push((before, after));
    }
    Ok(out)
}

/// One full row image: the null bitmap, then the values.
fn image<'a>(buf: &mut ParseBuf<'a>, layout: &'a RowLayout) -> Result<Row, RowError> {
    let n = layout.types.len();
    let nulls: &[u8] = buf.parse(n.div_ceil(8)).map_err(RowError::NullBitmap)?;
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        let null = nulls[i / 8] & (1 << (i % 8)) != 0;
        let value = if null {
            BinlogValue::Value(mysql_async::Value::NULL)
        } else if layout.types[i] == ColumnType::MYSQL_TYPE_TIME2
            && matches!(layout.metas[i].first(), Some(1 | 2))
        {
            let bytes = buf.checked_eat(4).ok_or_else(|| RowError::Value {
                column: layout.names[i].clone(),
                error: std::io::ErrorKind::UnexpectedEof.into(),
            })?;
            BinlogValue::Value(time2_centis(bytes))
        } else {
            let ctx = (
                layout.types[i],
                layout.metas[i].as_slice(),
                layout.unsigned[i],
                false,
            );
            buf.parse::<BinlogValue<'a>>(ctx)
                .map_err(|error| RowError::Value {
                    column: layout.names[i].clone(),
                    error,
                })?
        };
        let value =
            convert_value(value, layout.unsigned[i]).map_err(|error| RowError::ConvertColumn {
                column: layout.names[i].clone(),
                error,
            })?;
        values.push(value);
    }
    Ok(Row {
        columns: Arc::clone(&layout.names),
        values,
    })
}

/// A `TIME(1)` or `TIME(2)` binlog value (3 bytes of `±HH:MM:SS`, 1 byte
/// of hundredths), read as MySQL's `my_time_packed_from_binary` reads it.
///
/// mysql_common 0.37 holds that byte unsigned and subtracts 0x100 from it
/// for a negative time with a fraction (`-00:00:00.1`): an overflow that
/// panics in a debug build and makes a wrong TIME in a release build.
/// A negative time is stored with its fraction reversed, for binary
/// sorting: `-00:00:01.10` is `7FFFFE.F6` (whole part -2, fraction 246),
/// so the whole part moves up one and the fraction is `frac - 0x100`.
fn time2_centis(b: &[u8]) -> mysql_async::Value {
    let mut int = ((i64::from(b[0]) << 16) | (i64::from(b[1]) << 8) | i64::from(b[2])) - 0x80_0000;
    let mut frac = i64::from(b[3]);
    if int < 0 && frac > 0 {
        int += 1;
        frac -= 0x100;
    }
    mysql_common::binlog::misc::time_from_packed((int << 24) + frac * 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_async::Value;

    /// `(disk bytes, time)`: MySQL's table in `my_time_packed_from_binary`
    /// (mysys/my_time.cc), and the edges.
    #[test]
    fn time2_with_one_or_two_fraction_digits() {
        let t = |neg, h, m, s, us| Value::Time(neg, 0, h, m, s, us);
        let cases = [
            ([0x80, 0x00, 0x00, 0x00], t(false, 0, 0, 0, 0)),
            ([0x7f, 0xff, 0xff, 0xff], t(true, 0, 0, 0, 10_000)),
            ([0x7f, 0xff, 0xff, 0x9d], t(true, 0, 0, 0, 990_000)),
            ([0x7f, 0xff, 0xff, 0x00], t(true, 0, 0, 1, 0)),
            ([0x7f, 0xff, 0xfe, 0xff], t(true, 0, 0, 1, 10_000)),
            ([0x7f, 0xff, 0xfe, 0xf6], t(true, 0, 0, 1, 100_000)),
            ([0x80, 0x00, 0x00, 0x0a], t(false, 0, 0, 0, 100_000)),
        ];
        for (bytes, want) in cases {
            assert_eq!(time2_centis(&bytes), want, "{bytes:02x?}");
        }
        // ±838:59:58.99 (838 h = 34 days 22 h).
        let packed = (838u32 << 12) | (59 << 6) | 58;
        let max = 0x80_0000 + packed;
        let bytes = [(max >> 16) as u8, (max >> 8) as u8, max as u8, 99];
        assert_eq!(
            time2_centis(&bytes),
            Value::Time(false, 34, 22, 59, 58, 990_000)
        );
        let min = 0x80_0000 - packed - 1;
        let bytes = [
            (min >> 16) as u8,
            (min >> 8) as u8,
            min as u8,
            (0x100 - 99) as u8,
        ];
        assert_eq!(
            time2_centis(&bytes),
            Value::Time(true, 34, 22, 59, 58, 990_000)
        );
    }
}
