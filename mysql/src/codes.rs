//! The server error codes revdoor reacts to, by name (the same numbers on
//! MySQL and MariaDB).

/// `ER_DB_CREATE_EXISTS`: CREATE DATABASE of a database that exists.
pub const DB_CREATE_EXISTS: u16 = 1007;
/// `ER_TABLE_EXISTS_ERROR`: CREATE TABLE of a table that exists.
pub const TABLE_EXISTS: u16 = 1050;
/// `ER_BAD_TABLE_ERROR`: DROP TABLE of an unknown table.
pub const BAD_TABLE: u16 = 1051;
/// `ER_DUP_FIELDNAME`: ADD COLUMN of a column that exists.
pub const DUP_FIELDNAME: u16 = 1060;
/// `ER_DUP_KEYNAME`: CREATE INDEX of an index that exists.
pub const DUP_KEYNAME: u16 = 1061;
/// `ER_DUP_ENTRY`: a unique key already holds the value.
pub const DUP_ENTRY: u16 = 1062;
/// `ER_CANT_DROP_FIELD_OR_KEY`: DROP of a column or index that is gone.
pub const CANT_DROP_FIELD_OR_KEY: u16 = 1091;
/// `ER_BAD_DB_ERROR`: unknown database.
pub const BAD_DB: u16 = 1049;
/// `ER_BAD_FIELD_ERROR`: an unknown column.
pub const BAD_FIELD: u16 = 1054;
/// ER_ACCESS_DENIED_ERROR: wrong user or password.
pub const ACCESS_DENIED: u16 = 1045;
/// `ER_NO_SUCH_TABLE`: unknown table.
pub const NO_SUCH_TABLE: u16 = 1146;
/// `ER_LOCK_WAIT_TIMEOUT`: a row lock was not granted in time.
pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `ER_LOCK_DEADLOCK`: the transaction was chosen as a deadlock's victim.
pub const LOCK_DEADLOCK: u16 = 1213;
/// `ER_MASTER_FATAL_ERROR_READING_BINLOG`: the binlog dump cannot start
/// (a purged or unknown position).
pub const SOURCE_FATAL_ERROR_READING_BINLOG: u16 = 1236;
/// `ER_SIGNAL_EXCEPTION`: a trigger's `SIGNAL` (fences).
pub const SIGNAL_EXCEPTION: u16 = 1644;

/// Errors after which a DDL's effect is already there (duplicate column /
/// key / table, nothing to drop).
pub const DDL_ALREADY_DONE: [u16; 6] = [
    TABLE_EXISTS,
    BAD_TABLE,
    DUP_FIELDNAME,
    DUP_KEYNAME,
    CANT_DROP_FIELD_OR_KEY,
    NO_SUCH_TABLE,
];

/// A refusal that a retry of the same transaction can get past.
pub fn is_transient(code: u16) -> bool {
    matches!(code, LOCK_WAIT_TIMEOUT | LOCK_DEADLOCK)
}

/// The table, or its database, does not exist.
pub fn is_missing_table(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == NO_SUCH_TABLE || s.code == BAD_DB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lock_conflicts_are_transient() {
        assert!(is_transient(LOCK_DEADLOCK));
        assert!(is_transient(LOCK_WAIT_TIMEOUT));
        assert!(!is_transient(DUP_ENTRY));
        assert!(!is_transient(NO_SUCH_TABLE));
    }
}
