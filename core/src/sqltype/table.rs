//! A table's definition: its columns and primary key.

use super::{SqlType, SqlTypeError};

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub nullable: bool,
}

impl ColumnDef {
    pub fn new(name: impl Into<String>, sql_type: SqlType, nullable: bool) -> Self {
        ColumnDef {
            name: name.into(),
            sql_type,
            nullable,
        }
    }
}

/// A table's columns (in table order) and primary key (in key order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableSchema {
    pub db: String,
    pub table: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
}

impl TableSchema {
    /// A column by name (exact match, as the binlog's column names are).
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Check that column names are unique (MySQL compares them
    /// case-insensitively) and that every primary-key column exists.
    pub fn validate(&self) -> Result<(), SqlTypeError> {
        for (i, c) in self.columns.iter().enumerate() {
            if self.columns[..i]
                .iter()
                .any(|d| d.name.eq_ignore_ascii_case(&c.name))
            {
                return Err(SqlTypeError::DuplicateColumn {
                    db: self.db.clone(),
                    table: self.table.clone(),
                    column: c.name.clone(),
                });
            }
        }
        for k in &self.primary_key {
            if self.column(k).is_none() {
                return Err(SqlTypeError::UnknownKeyColumn {
                    db: self.db.clone(),
                    table: self.table.clone(),
                    column: k.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_validation() {
        let t = |cols: &[&str], pk: &[&str]| TableSchema {
            db: "d".into(),
            table: "t".into(),
            columns: cols
                .iter()
                .map(|c| ColumnDef::new(*c, SqlType::Int { unsigned: false }, false))
                .collect(),
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(t(&["id", "v"], &["id"]).validate(), Ok(()));
        assert!(matches!(
            t(&["id", "ID"], &["id"]).validate(),
            Err(SqlTypeError::DuplicateColumn { .. })
        ));
        assert!(matches!(
            t(&["id"], &["nope"]).validate(),
            Err(SqlTypeError::UnknownKeyColumn { .. })
        ));
        assert_eq!(
            t(&["id"], &["id"]).column("id").map(|c| c.nullable),
            Some(false)
        );
    }
}
