//! The parts of a table definition, in `CREATE TABLE`, `ALTER TABLE` and
//! `CREATE INDEX`: columns, keys and constraints, table options. Each is
//! found by its leading keywords and by parentheses; what is inside an
//! expression is left to the servers.

use std::collections::BTreeSet;
use std::ops::Range;

use sqlparser::tokenizer::Token;

use super::Ctx;
use crate::engine::{Flavor, Version};

/// Words that start a key or a constraint in a table's element list.
const KEY_STARTS: [&str; 10] = [
    "PRIMARY",
    "UNIQUE",
    "KEY",
    "INDEX",
    "FULLTEXT",
    "SPATIAL",
    "CONSTRAINT",
    "FOREIGN",
    "CHECK",
    "PERIOD",
];

/// Words that end a column default written without parentheses.
const COLUMN_ATTRIBUTES: [&str; 26] = [
    "NOT",
    "NULL",
    "ON",
    "COMMENT",
    "CHECK",
    "INVISIBLE",
    "VISIBLE",
    "COLLATE",
    "CHARACTER",
    "CHARSET",
    "AUTO_INCREMENT",
    "UNIQUE",
    "PRIMARY",
    "KEY",
    "REFERENCES",
    "GENERATED",
    "AS",
    "VIRTUAL",
    "STORED",
    "PERSISTENT",
    "COLUMN_FORMAT",
    "STORAGE",
    "FIRST",
    "AFTER",
    "SRID",
    "WITHOUT",
];

/// Column types MySQL gives a default only as an expression.
const EXPRESSION_DEFAULT_TYPES: [&str; 18] = [
    "TINYBLOB",
    "BLOB",
    "MEDIUMBLOB",
    "LONGBLOB",
    "TINYTEXT",
    "TEXT",
    "MEDIUMTEXT",
    "LONGTEXT",
    "JSON",
    "GEOMETRY",
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
    "GEOMCOLLECTION",
];

/// Table options both engines have.
const SHARED_OPTIONS: [&str; 24] = [
    "ENGINE",
    "TYPE",
    "AUTO_INCREMENT",
    "AVG_ROW_LENGTH",
    "CHARSET",
    "CHARACTER SET",
    "COLLATE",
    "CHECKSUM",
    "TABLE_CHECKSUM",
    "COMMENT",
    "CONNECTION",
    "DATA DIRECTORY",
    "INDEX DIRECTORY",
    "DELAY_KEY_WRITE",
    "INSERT_METHOD",
    "KEY_BLOCK_SIZE",
    "MAX_ROWS",
    "MIN_ROWS",
    "PACK_KEYS",
    "ROW_FORMAT",
    "STATS_AUTO_RECALC",
    "STATS_PERSISTENT",
    "STATS_SAMPLE_PAGES",
    "UNION",
];

/// Table options of one engine only, refused on the other (`ALTER TABLE`
/// specifications are recognised as options by these too).
const ENGINE_OPTIONS: [&str; 13] = [
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "ENCRYPTED",
    "ENCRYPTION_KEY_ID",
    "IETF_QUOTES",
    "SEQUENCE",
    "TRANSACTIONAL",
    "ENCRYPTION",
    "COMPRESSION",
    "AUTOEXTEND_SIZE",
    "SECONDARY_ENGINE",
    "ENGINE_ATTRIBUTE",
    "SECONDARY_ENGINE_ATTRIBUTE",
];

/// Storage engines both have.
const SHARED_ENGINES: [&str; 8] = [
    "INNODB",
    "MYISAM",
    "MEMORY",
    "HEAP",
    "CSV",
    "ARCHIVE",
    "BLACKHOLE",
    "MRG_MYISAM",
];

/// One column, key or constraint of an element list.
#[derive(Debug, Clone)]
struct Element {
    range: Range<usize>,
    /// Removable with its comma (in `CREATE TABLE`; not an `ALTER`
    /// specification).
    in_list: bool,
}

impl Ctx<'_> {
    fn tok_is(&self, i: usize, kw: &str) -> bool {
        self.t.toks.get(i).is_some_and(|t| t.is(kw))
    }

    /// Skip the words `kws` at `i` if they are all there.
    fn skip(&self, i: usize, kws: &[&str]) -> usize {
        if kws.iter().enumerate().all(|(k, kw)| self.tok_is(i + k, kw)) {
            i + kws.len()
        } else {
            i
        }
    }

    /// `name` or `db.name` at `i`: its text and the index after it.
    fn name_at(&self, i: usize) -> Option<(String, usize)> {
        self.t.toks.get(i)?.word()?;
        let mut end = i;
        while self
            .t
            .toks
            .get(end + 1)
            .is_some_and(|t| t.token == Token::Period)
            && self.t.toks.get(end + 2).is_some_and(|t| t.word().is_some())
        {
            end += 2;
        }
        Some((self.text(i, end).to_string(), end + 1))
    }

    /// The comma-separated elements of `range`.
    fn split(&self, range: Range<usize>, in_list: bool) -> Vec<Element> {
        self.t
            .split_commas(range)
            .into_iter()
            .map(|range| Element { range, in_list })
            .collect()
    }

    /// Dispatch on the statement's leading words.
    pub(super) fn statement(&mut self) {
        let mut i;
        if self.tok_is(0, "CREATE") {
            i = self.skip(1, &["OR", "REPLACE"]);
            for kw in [
                "TEMPORARY",
                "ONLINE",
                "OFFLINE",
                "UNIQUE",
                "FULLTEXT",
                "SPATIAL",
            ] {
                i = self.skip(i, &[kw]);
            }
            if self.tok_is(i, "TABLE") {
                self.create_table(i + 1);
            } else if self.tok_is(i, "DATABASE") || self.tok_is(i, "SCHEMA") {
                self.database(i + 1);
            } else if self.tok_is(i, "INDEX") {
                self.create_index(i + 1);
            } else if self.tok_is(i, "SEQUENCE") && self.to.flavor == Flavor::Mysql {
                self.refuse(
                    "CREATE SEQUENCE",
                    "MySQL has no sequences (MariaDB's SEQUENCE tables)",
                );
            }
        } else if self.tok_is(0, "ALTER") {
            i = self.skip(1, &["ONLINE"]);
            i = self.skip(i, &["IGNORE"]);
            if self.tok_is(i, "TABLE") {
                self.alter_table(i + 1);
            } else if self.tok_is(i, "DATABASE") || self.tok_is(i, "SCHEMA") {
                self.database(i + 1);
            }
        }
    }

    /// `CREATE`/`ALTER DATABASE [IF NOT EXISTS] name options`.
    fn database(&mut self, at: usize) {
        let at = self.skip(at, &["IF", "NOT", "EXISTS"]);
        let Some((_, i)) = self.name_at(at) else {
            return;
        };
        let n = self.t.toks.len();
        for dropped in self.options(i..n) {
            self.remove(dropped.start, dropped.end - 1);
        }
    }

    fn create_table(&mut self, at: usize) {
        let at = self.skip(at, &["IF", "NOT", "EXISTS"]);
        let Some((name, mut i)) = self.name_at(at) else {
            return;
        };
        self.table = Some(name);
        let n = self.t.toks.len();
        if self.t.toks.get(i).is_some_and(|t| t.is_lparen()) {
            let close = self.t.closing(i);
            let elements = self.split(i + 1..close, true);
            self.elements(&elements);
            i = close + 1;
        }
        if !self.tok_is(i, "LIKE") {
            for dropped in self.options(i..n) {
                self.remove(dropped.start, dropped.end - 1);
            }
        }
    }

    fn create_index(&mut self, at: usize) {
        let n = self.t.toks.len();
        if let Some(on) = self.t.find(at..n, |t| t.is("ON")) {
            if let Some((name, _)) = self.name_at(on + 1) {
                self.table = Some(name);
            }
        }
        let name = self.skip(at, &["IF", "NOT", "EXISTS"]);
        let label = match self.t.toks.get(name) {
            Some(t) if !t.is("ON") => format!("index {}", self.text(name, name)),
            _ => "index".to_string(),
        };
        self.key(
            &Element {
                range: at..n,
                in_list: false,
            },
            label,
        );
    }

    fn alter_table(&mut self, at: usize) {
        let at = self.skip(at, &["IF", "EXISTS"]);
        let Some((name, i)) = self.name_at(at) else {
            return;
        };
        self.table = Some(name);
        let n = self.t.toks.len();
        let specs = self.split(i..n, true);
        for k in 0..specs.len() {
            self.alter_spec(&specs, k);
        }
    }

    fn alter_spec(&mut self, specs: &[Element], k: usize) {
        let r = specs[k].range.clone();
        let first = r.start;
        let Some(kw) = self.t.toks[first].keyword() else {
            return;
        };
        match kw.as_str() {
            "ADD" => {
                let mut j = first + 1;
                let column = self.tok_is(j, "COLUMN");
                if column {
                    j += 1;
                }
                j = self.skip(j, &["IF", "NOT", "EXISTS"]);
                if j >= r.end {
                    return;
                }
                if self.t.toks[j].is_lparen() {
                    let close = self.t.closing(j).min(r.end);
                    let elements = self.split(j + 1..close, false);
                    self.elements(&elements);
                } else if self.tok_is(j, "SYSTEM") && self.to.flavor == Flavor::Mysql {
                    self.refuse(
                        "ADD SYSTEM VERSIONING",
                        "MySQL has no system-versioned tables",
                    );
                } else {
                    let e = Element {
                        range: j..r.end,
                        in_list: false,
                    };
                    if !column && KEY_STARTS.iter().any(|k| self.tok_is(j, k)) {
                        self.key_or_constraint(&e);
                    } else {
                        self.column(&e, &BTreeSet::new());
                    }
                }
            }
            "MODIFY" | "CHANGE" => {
                let mut j = self.skip(first + 1, &["COLUMN"]);
                j = self.skip(j, &["IF", "EXISTS"]);
                if kw == "CHANGE" {
                    j += 1;
                }
                if j < r.end {
                    self.column(
                        &Element {
                            range: j..r.end,
                            in_list: false,
                        },
                        &BTreeSet::new(),
                    );
                }
            }
            "ALTER" if self.tok_is(first + 1, "INDEX") || self.tok_is(first + 1, "KEY") => {
                let label = format!("index {}", self.text(first + 2, first + 2));
                self.labels.push((r.clone(), label.clone()));
                self.visibility(r, &label);
            }
            "WITH" | "WITHOUT" | "DROP"
                if self.to.flavor == Flavor::Mysql
                    && (self.tok_is(first + 1, "SYSTEM")
                        || (self.tok_is(first + 1, "PERIOD") && kw == "DROP")) =>
            {
                self.refuse(
                    self.text(first, r.end - 1).to_string(),
                    "MySQL has no system-versioned or application-time period tables",
                );
            }
            _ => {
                let name = option_name(&self.t.toks[first..r.end]);
                let known = SHARED_OPTIONS.contains(&name.as_str())
                    || ENGINE_OPTIONS.contains(&name.as_str())
                    || kw == "DEFAULT";
                if known {
                    for dropped in self.options(r.clone()) {
                        if dropped == (r.start..r.end) {
                            self.remove_element(specs, k);
                        } else {
                            self.remove(dropped.start, dropped.end - 1);
                        }
                    }
                }
            }
        }
    }

    /// The elements of a `CREATE TABLE` (or `ALTER TABLE … ADD (…)`).
    fn elements(&mut self, elements: &[Element]) {
        // MariaDB JSON written as a table constraint: `CHECK
        // (json_valid(col))` of a `longtext` column.
        let mut json = BTreeSet::new();
        if self.from == Flavor::Mariadb {
            let longtext: BTreeSet<String> = elements
                .iter()
                .filter(|e| !self.is_key(e.range.start))
                .filter(|e| self.tok_is(e.range.start + 1, "LONGTEXT"))
                .filter_map(|e| self.t.toks[e.range.start].word().map(str::to_string))
                .collect();
            for e in elements {
                if let Some(col) = self.json_check_of(e).filter(|c| longtext.contains(c)) {
                    json.insert(col);
                }
            }
        }
        for (k, e) in elements.iter().enumerate() {
            if self.is_key(e.range.start) {
                if self.from == Flavor::Mariadb
                    && self.json_check_of(e).is_some_and(|col| json.contains(&col))
                {
                    self.remove_element(elements, k);
                    continue;
                }
                if self.key_or_constraint(e) {
                    self.remove_element(elements, k);
                }
            } else {
                self.column(e, &json);
            }
        }
    }

    fn is_key(&self, i: usize) -> bool {
        KEY_STARTS.iter().any(|k| self.tok_is(i, k))
    }

    /// Remove element `k` of a list with its comma.
    fn remove_element(&mut self, elements: &[Element], k: usize) {
        let e = &elements[k];
        if !e.in_list {
            return;
        }
        if k > 0 {
            self.remove(e.range.start, e.range.end - 1);
            // The comma before it.
            let comma = elements[k - 1].range.end;
            let range = self.t.outer(comma);
            self.edits.replace(range, "");
        } else if let Some(next) = elements.get(k + 1) {
            let start = self.t.outer(e.range.start).start;
            let end = self.t.outer(next.range.start).start;
            self.edits.replace(start..end, "");
        } else {
            self.remove(e.range.start, e.range.end - 1);
        }
    }

    /// `[CONSTRAINT name] CHECK (json_valid(col))` exactly: the column, as
    /// written between its quotes.
    fn json_check_of(&self, e: &Element) -> Option<String> {
        let mut i = e.range.start;
        if self.tok_is(i, "CONSTRAINT") {
            i += if self.tok_is(i + 1, "CHECK") { 1 } else { 2 };
        }
        let col = self.json_valid_check_at(i)?;
        (i + 7 == e.range.end).then_some(col)
    }

    /// `CHECK ( json_valid ( col ) )` at `i`: the column.
    fn json_valid_check_at(&self, i: usize) -> Option<String> {
        let t = self.t.toks.get(i..i + 7)?;
        let ok = t[0].is("CHECK")
            && t[1].is_lparen()
            && t[2].is("JSON_VALID")
            && t[3].is_lparen()
            && t[5].is_rparen()
            && t[6].is_rparen();
        ok.then(|| t[4].word().map(str::to_string))?
    }

    /// A column definition: name, type, attributes.
    fn column(&mut self, e: &Element, json: &BTreeSet<String>) {
        let r = e.range.clone();
        let Some(name) = self.t.toks[r.start].word().map(str::to_string) else {
            return;
        };
        let label = format!("column {}", self.text(r.start, r.start));
        self.labels.push((r.clone(), label.clone()));
        let ty_at = r.start + 1;
        let Some(ty) = self.t.toks.get(ty_at).and_then(|t| t.keyword()) else {
            return;
        };
        match (self.to.flavor, ty.as_str()) {
            (Flavor::Mariadb, "VECTOR") => self.refuse(
                &label,
                format!("MariaDB {} has no VECTOR type", self.to.version),
            ),
            (Flavor::Mysql, "INET4" | "INET6" | "UUID") => self.refuse(
                &label,
                format!(
                    "MySQL has no {ty} type (MariaDB only); revdoor does not convert values \
                     between types — change the column to a type both engines have, or leave \
                     the table out"
                ),
            ),
            _ => {}
        }
        // MariaDB JSON: `longtext … CHECK (json_valid(col))`.
        let inline_json = if self.from == Flavor::Mariadb && ty == "LONGTEXT" {
            self.t
                .find(ty_at + 1..r.end, |t| t.is("CHECK"))
                .filter(|&c| self.json_valid_check_at(c).as_deref() == Some(name.as_str()))
        } else {
            None
        };
        let is_json = self.from == Flavor::Mariadb
            && ty == "LONGTEXT"
            && (inline_json.is_some() || json.contains(&name));
        let ty = if is_json {
            self.replace(ty_at, ty_at, "json");
            self.note(
                &label,
                "MariaDB JSON (longtext with json_valid) → MySQL json",
            );
            "JSON".to_string()
        } else {
            ty
        };
        if let Some(c) = inline_json.filter(|_| is_json) {
            self.remove(c, c + 6);
        }
        // Attributes, outside parentheses.
        let mut i = ty_at + 1;
        if self.t.toks.get(i).is_some_and(|t| t.is_lparen()) {
            i = self.t.closing(i) + 1;
        }
        while i < r.end {
            let t = &self.t.toks[i];
            if t.is_lparen() {
                i = self.t.closing(i) + 1;
                continue;
            }
            let Some(kw) = t.keyword() else {
                i += 1;
                continue;
            };
            match kw.as_str() {
                "CHARACTER" | "CHARSET" | "COLLATE" if is_json => {
                    let last = if kw == "CHARACTER" { i + 2 } else { i + 1 };
                    self.remove(i, last.min(r.end - 1));
                    i = last + 1;
                    continue;
                }
                "DEFAULT" if self.to.flavor == Flavor::Mysql => {
                    i = self.default_for_mysql(i, r.end, &ty, &label);
                    continue;
                }
                "INVISIBLE" => self.invisible_column(i, &label),
                "SRID" if self.to.flavor == Flavor::Mariadb => {
                    self.handle(i);
                    self.refuse(
                        &label,
                        "MariaDB has no SRID column constraint (its REF_SYSTEM_ID only labels the \
                         column: values of other SRIDs would be accepted); drop the SRID \
                         attribute or leave the table out",
                    );
                }
                "COMPRESSED" if self.to.flavor == Flavor::Mysql => {
                    self.handle(i);
                    self.refuse(
                        &label,
                        "MariaDB's column compression has no MySQL counterpart",
                    );
                }
                "PERSISTENT" if self.to.flavor == Flavor::Mysql => {
                    self.replace(i, i, "STORED");
                }
                "ROW"
                    if self.to.flavor == Flavor::Mysql
                        && (self.tok_is(i + 1, "START") || self.tok_is(i + 1, "END")) =>
                {
                    self.refuse(
                        &label,
                        "MySQL has no system-versioned tables (ROW START/END)",
                    );
                }
                "WITH" | "WITHOUT"
                    if self.to.flavor == Flavor::Mysql && self.tok_is(i + 1, "SYSTEM") =>
                {
                    self.refuse(&label, "MySQL has no system-versioned tables");
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// `DEFAULT …` of a MariaDB column at `at` for MySQL: an expression
    /// in parentheses, a literal of a BLOB/TEXT/JSON/spatial column as an
    /// expression. Returns the index after the default.
    fn default_for_mysql(&mut self, at: usize, end: usize, ty: &str, label: &str) -> usize {
        let v = at + 1;
        let Some(t) = self.t.toks.get(v).filter(|_| v < end) else {
            return end;
        };
        if t.is_lparen() {
            return self.t.closing(v) + 1;
        }
        let literal_end = match &t.token {
            Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::Number(..) => Some(v),
            Token::Minus | Token::Plus => Some(v + 1),
            Token::Word(w)
                if w.quote_style.is_none()
                    && w.value.starts_with('_')
                    && matches!(
                        self.t.toks.get(v + 1).map(|t| &t.token),
                        Some(Token::SingleQuotedString(_))
                    ) =>
            {
                Some(v + 1)
            }
            _ if t.is("NULL") || t.is("TRUE") || t.is("FALSE") => Some(v),
            _ => None,
        };
        if let Some(last) = literal_end {
            if EXPRESSION_DEFAULT_TYPES.contains(&ty) && !t.is("NULL") {
                let text = format!("({})", self.text(v, last));
                self.replace(v, last, text);
                self.note(label, "literal default written as an expression (MySQL)");
            }
            return last + 1;
        }
        let is_now = ["CURRENT_TIMESTAMP", "NOW", "LOCALTIME", "LOCALTIMESTAMP"]
            .iter()
            .any(|k| t.is(k));
        let call_end = if self.t.toks.get(v + 1).is_some_and(|n| n.is_lparen()) {
            self.t.closing(v + 1)
        } else {
            v
        };
        if is_now {
            return call_end + 1;
        }
        // A function call or an expression without parentheses: up to the
        // next attribute.
        let mut last = call_end;
        while last + 1 < end
            && !self.t.toks[last + 1]
                .keyword()
                .is_some_and(|k| COLUMN_ATTRIBUTES.contains(&k.as_str()))
        {
            last += 1;
            if self.t.toks[last].is_lparen() {
                last = self.t.closing(last);
            }
        }
        let text = format!("({})", self.text(v, last));
        self.replace(v, last, text);
        self.note(label, "default expression in parentheses (MySQL)");
        last + 1
    }

    /// A column's `INVISIBLE` (MariaDB 10.3, MySQL 8.0.23).
    fn invisible_column(&mut self, i: usize, label: &str) {
        let since = match self.to.flavor {
            Flavor::Mariadb => Version(10, 3, 3),
            Flavor::Mysql => Version(8, 0, 23),
        };
        self.handle(i);
        if self.to.version < since {
            self.refuse(
                label,
                format!("{} has no invisible columns (since {since})", self.to),
            );
        } else if self.in_lost_comment(i) {
            self.replace(i, i, "INVISIBLE");
        }
    }

    /// A key or constraint; true when it must go (a check MariaDB would
    /// enforce and MySQL does not).
    fn key_or_constraint(&mut self, e: &Element) -> bool {
        let r = e.range.clone();
        let mut i = r.start;
        let mut label = String::new();
        if self.tok_is(i, "CONSTRAINT") {
            if !self.tok_is(i + 1, "CHECK")
                && !self.tok_is(i + 1, "PRIMARY")
                && !self.tok_is(i + 1, "UNIQUE")
                && !self.tok_is(i + 1, "FOREIGN")
            {
                label = format!("constraint {}", self.text(i + 1, i + 1));
                i += 2;
            } else {
                i += 1;
            }
        }
        if self.tok_is(i, "CHECK") {
            if label.is_empty() {
                label = "check constraint".into();
            }
            self.labels.push((r.clone(), label.clone()));
            return self.check(i, r.end, e.in_list, &label);
        }
        if self.tok_is(i, "PERIOD") {
            self.labels.push((r.clone(), "PERIOD FOR".into()));
            if self.to.flavor == Flavor::Mysql {
                self.refuse(
                    self.text(r.start, r.end - 1).to_string(),
                    "MySQL has no system-versioned or application-time period tables",
                );
            }
            return false;
        }
        if self.tok_is(i, "FOREIGN") {
            if label.is_empty() {
                label = "foreign key".into();
            }
            self.labels.push((r.clone(), label));
            return false;
        }
        if label.is_empty() {
            label = if self.tok_is(i, "PRIMARY") {
                "primary key".into()
            } else {
                let mut j = i;
                for kw in ["UNIQUE", "FULLTEXT", "SPATIAL", "KEY", "INDEX"] {
                    j = self.skip(j, &[kw]);
                }
                match self.t.toks.get(j) {
                    Some(t) if j < r.end && t.word().is_some() && !t.is("USING") => {
                        format!("index {}", self.text(j, j))
                    }
                    _ => "index".into(),
                }
            };
        }
        self.key(
            &Element {
                range: i..r.end,
                ..e.clone()
            },
            label,
        );
        false
    }

    /// An index: its key parts and visibility.
    fn key(&mut self, e: &Element, label: String) {
        let r = e.range.clone();
        self.labels.push((r.clone(), label.clone()));
        let Some(open) = self.t.find(r.clone(), |t| t.is_lparen()) else {
            return;
        };
        let close = self.t.closing(open);
        if self.to.flavor == Flavor::Mariadb {
            for part in self.t.split_commas(open + 1..close) {
                if self.t.toks[part.start].is_lparen() {
                    self.refuse(
                        &label,
                        format!(
                            "functional key part {}: MariaDB indexes columns, not expressions \
                             (index a generated column instead, on both sides)",
                            self.text(part.start, part.end - 1)
                        ),
                    );
                }
            }
        }
        self.visibility(close + 1..r.end, &label);
    }

    /// Index visibility: MySQL `INVISIBLE`/`VISIBLE` ↔ MariaDB
    /// `IGNORED`/`NOT IGNORED` (10.6).
    fn visibility(&mut self, r: Range<usize>, label: &str) {
        let mut i = r.start;
        while i < r.end {
            let t = &self.t.toks[i];
            match self.to.flavor {
                Flavor::Mariadb if t.is("INVISIBLE") || t.is("VISIBLE") => {
                    let invisible = t.is("INVISIBLE");
                    self.handle(i);
                    if self.to.version >= Version(10, 6, 0) {
                        self.replace(i, i, if invisible { "IGNORED" } else { "NOT IGNORED" });
                    } else {
                        self.remove(i, i);
                        if invisible {
                            self.note(
                                label,
                                format!(
                                    "{} has no ignored indexes (10.6): the index is visible there",
                                    self.to
                                ),
                            );
                        }
                    }
                }
                Flavor::Mysql if t.is("NOT") && self.tok_is(i + 1, "IGNORED") => {
                    self.replace(i, i + 1, "VISIBLE");
                    i += 1;
                }
                Flavor::Mysql if t.is("IGNORED") => self.replace(i, i, "INVISIBLE"),
                _ => {}
            }
            i += 1;
        }
    }

    /// A check constraint at `check`; true when it must go.
    fn check(&mut self, check: usize, end: usize, removable: bool, label: &str) -> bool {
        if self.to.flavor != Flavor::Mariadb {
            return false;
        }
        let Some(not) = self.t.find(check + 1..end, |t| t.is("NOT")) else {
            return false;
        };
        if !self.tok_is(not + 1, "ENFORCED") {
            return false;
        }
        self.handle(not);
        if removable {
            self.note(
                label,
                "NOT ENFORCED check left out (MariaDB enforces every check constraint)",
            );
            true
        } else {
            self.refuse(
                label,
                "a NOT ENFORCED check: MariaDB enforces every check constraint",
            );
            false
        }
    }

    /// Table options (or option-like `ALTER TABLE` specifications) and
    /// the partitioning after them; returns the token ranges of the
    /// options to leave out.
    fn options(&mut self, r: Range<usize>) -> Vec<Range<usize>> {
        let mut dropped = Vec::new();
        let mut i = r.start;
        while i < r.end {
            let t = &self.t.toks[i];
            if t.is_comma() {
                i += 1;
                continue;
            }
            // `CREATE TABLE … [AS] SELECT …`: the query is left as it is.
            if t.is_lparen()
                || ["AS", "SELECT", "IGNORE", "REPLACE", "TABLE", "VALUES"]
                    .iter()
                    .any(|k| t.is(k))
            {
                return dropped;
            }
            if t.is("PARTITION") && self.tok_is(i + 1, "BY") {
                self.labels.push((i..r.end, "partitioning".into()));
                if self.to.flavor == Flavor::Mysql {
                    if let Some(s) = self.t.find(i..r.end, |t| t.is("SYSTEM_TIME")) {
                        self.handle(s);
                        self.refuse(
                            "partitioning",
                            "MySQL has no system-versioned tables (PARTITION BY SYSTEM_TIME)",
                        );
                    }
                }
                return dropped;
            }
            if t.is("WITH") && self.tok_is(i + 1, "SYSTEM") {
                if self.to.flavor == Flavor::Mysql {
                    self.refuse(
                        "WITH SYSTEM VERSIONING",
                        "MySQL has no system-versioned tables",
                    );
                }
                i += 3;
                continue;
            }
            let start = i;
            let name = option_name(&self.t.toks[i..r.end]);
            if t.word().is_none() {
                i += 1;
                continue;
            }
            // The name's words, `=`, the value.
            i += name.split(' ').count() + usize::from(self.tok_is(i, "DEFAULT"));
            if self.t.toks.get(i).is_some_and(|t| t.is_eq()) {
                i += 1;
            }
            if i >= r.end {
                break;
            }
            let last = if self.t.toks[i].is_lparen() {
                self.t.closing(i)
            } else {
                i
            };
            i = last + 1;
            let label = format!("table option {name}");
            self.labels.push((start..last + 1, label.clone()));
            if self.option(&name, start, last, &label) {
                dropped.push(start..last + 1);
            }
        }
        dropped
    }

    /// One table option, `start..=last`; true when it is left out.
    fn option(&mut self, name: &str, start: usize, last: usize, label: &str) -> bool {
        let value = self.t.toks[last]
            .word()
            .map(str::to_string)
            .or_else(|| match &self.t.toks[last].token {
                Token::SingleQuotedString(s) | Token::Number(s, _) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default()
            .to_ascii_uppercase();
        if name == "ENGINE" || name == "TYPE" {
            if !SHARED_ENGINES.contains(&value.as_str()) {
                self.refuse(
                    label,
                    format!(
                        "storage engine {value}: revdoor translates tables of the engines both \
                         MySQL and MariaDB have ({})",
                        SHARED_ENGINES.join(", ")
                    ),
                );
            }
            return false;
        }
        if SHARED_OPTIONS.contains(&name) {
            return false;
        }
        let drop = self.to.flavor == Flavor::Mariadb
            && (name == "AUTOEXTEND_SIZE" || (name == "ENCRYPTION" && value == "N"));
        for k in start..=last {
            self.handle(k);
        }
        if drop {
            let why = if name == "ENCRYPTION" {
                "left out (no encryption is MariaDB's default)"
            } else {
                "left out (how InnoDB grows the tablespace; MariaDB has no such setting)"
            };
            self.note(label, why);
        } else {
            let text = self.text(start, last).to_string();
            self.refuse(
                label,
                format!(
                    "{text} has no {} counterpart revdoor knows (storage, encryption, compression \
                     and versioning options of one engine are refused)",
                    self.to.flavor
                ),
            );
        }
        drop
    }
}

/// The option name at the start of `toks`, upper case: `DEFAULT
/// CHARSET` is `CHARSET`, `CHARACTER SET` and `DATA DIRECTORY` two words.
fn option_name(toks: &[super::tokens::Tok]) -> String {
    let mut toks = toks.iter();
    let mut first = toks.next();
    if first.is_some_and(|t| t.is("DEFAULT")) {
        first = toks.next();
    }
    let Some(first) = first.and_then(|t| t.word()) else {
        return String::new();
    };
    let first = first.to_ascii_uppercase();
    match (first.as_str(), toks.next()) {
        ("CHARACTER", Some(t)) if t.is("SET") => "CHARACTER SET".into(),
        ("DATA" | "INDEX", Some(t)) if t.is("DIRECTORY") => format!("{first} DIRECTORY"),
        _ => first,
    }
}
