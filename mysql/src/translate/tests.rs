//! The translator on real `SHOW CREATE TABLE` outputs of MySQL 9.7.4 and
//! MariaDB 10.11.19 (`fixtures/mysql`, `fixtures/mariadb`, captured from
//! the stack's servers) against the expected translations
//! (`fixtures/expected/*`: statements the other server accepted, or the
//! refusal), and on DDL statements as `on_ddl=exec` forwards them.
//! `tests/tests/schema_translation.rs` runs the translations on the real
//! servers.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::*;

fn maria() -> Server {
    Server::from_version("10.11.19-MariaDB-0+deb12u1-log")
}

fn mysql() -> Server {
    Server::from_version("9.7.4-2")
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/translate/fixtures")
}

/// Every fixture of `dir` translated `from` → `to`, against
/// `expected/<dir>-to-<target>/<name>.sql` (or `.refused`). With
/// `REVDOOR_BLESS=1` the expected files are written instead.
fn golden(dir: &str, from: Flavor, to: Server, target: &str) {
    let expected = fixtures().join(format!("expected/{dir}-to-{target}"));
    let bless = std::env::var("REVDOOR_BLESS").is_ok_and(|v| v == "1");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .expect("fixtures")
        .map(|e| e.expect("fixture").path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let name = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let sql = std::fs::read_to_string(&path).expect("read fixture");
        let (file, got) = match translate(sql.trim_end(), from, &to, None) {
            Ok(t) => (format!("{name}.sql"), format!("{}\n", t.sql)),
            Err(e) => (format!("{name}.refused"), format!("{e}\n")),
        };
        let want_path = expected.join(&file);
        if bless {
            std::fs::create_dir_all(&expected).expect("mkdir");
            for ext in ["sql", "refused"] {
                let _ = std::fs::remove_file(expected.join(format!("{name}.{ext}")));
            }
            std::fs::write(&want_path, &got).expect("bless");
            continue;
        }
        let want = std::fs::read_to_string(&want_path)
            .unwrap_or_else(|e| panic!("{dir}/{name}: expected {}: {e}", want_path.display()));
        assert_eq!(got, want, "{dir}/{name} → {target}");
    }
}

#[test]
fn mysql_show_create_outputs_for_mariadb() {
    golden("mysql", Flavor::Mysql, maria(), "mariadb");
}

#[test]
fn mariadb_show_create_outputs_for_mysql() {
    golden("mariadb", Flavor::Mariadb, mysql(), "mysql");
}

#[test]
fn same_engine_is_unchanged() {
    for dir in ["mysql", "mariadb"] {
        for e in std::fs::read_dir(fixtures().join(dir)).expect("fixtures") {
            let sql = std::fs::read_to_string(e.expect("fixture").path()).expect("read");
            let (from, to) = if dir == "mysql" {
                (Flavor::Mysql, mysql())
            } else {
                (Flavor::Mariadb, maria())
            };
            let t = translate(&sql, from, &to, None).expect("same engine");
            assert_eq!(t.sql, sql);
            assert!(t.notes.is_empty());
        }
    }
    let odd = "ALTER TABLE t ADD x INET6 /*!80023 INVISIBLE */";
    assert_eq!(
        translate(odd, Flavor::Mariadb, &maria(), None)
            .expect("same")
            .sql,
        odd
    );
}

fn to_maria(sql: &str) -> Result<Translation, Refused> {
    translate(sql, Flavor::Mysql, &maria(), None)
}

fn to_mysql(sql: &str) -> Result<Translation, Refused> {
    translate(sql, Flavor::Mariadb, &mysql(), None)
}

fn refusal(r: Result<Translation, Refused>) -> String {
    match r {
        Ok(t) => panic!("expected a refusal, got {}", t.sql),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mysql_ddl_for_mariadb() {
    let t = to_maria(
        "ALTER TABLE `t` ADD COLUMN c VARCHAR(10) COLLATE utf8mb4_0900_ai_ci INVISIBLE AFTER b",
    )
    .expect("translates");
    assert_eq!(
        t.sql,
        "ALTER TABLE `t` ADD COLUMN c VARCHAR(10) COLLATE utf8mb4_uca1400_nopad_ai_ci INVISIBLE AFTER b"
    );
    assert_eq!(
        to_maria("ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_as_cs, ALGORITHM=INPLACE")
            .expect("translates")
            .sql,
        "ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_nopad_as_cs, ALGORITHM=INPLACE"
    );
    assert_eq!(
        to_maria("ALTER TABLE t ALTER INDEX k INVISIBLE")
            .expect("translates")
            .sql,
        "ALTER TABLE t ALTER INDEX k IGNORED"
    );
    assert_eq!(
        to_maria("ALTER TABLE t ADD j JSON, ADD KEY (a) /*!80000 INVISIBLE */")
            .expect("translates")
            .sql,
        "ALTER TABLE t ADD j JSON, ADD KEY (a) IGNORED"
    );
    assert_eq!(
        to_maria("ALTER TABLE t ENCRYPTION='N', ADD x INT")
            .expect("translates")
            .sql,
        "ALTER TABLE t ADD x INT"
    );
    assert_eq!(
        to_maria("ALTER TABLE t ADD x INT, AUTOEXTEND_SIZE=4M")
            .expect("translates")
            .sql,
        "ALTER TABLE t ADD x INT"
    );
    // MySQL 9.7's SHOW CREATE DATABASE.
    assert_eq!(
        to_maria(
            "CREATE DATABASE `xlat` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */ /*!80016 DEFAULT ENCRYPTION='N' */"
        )
        .expect("translates")
        .sql,
        "CREATE DATABASE `xlat` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_nopad_ai_ci */"
    );
    for unchanged in [
        "DROP TABLE `a`.`b`",
        "TRUNCATE TABLE t",
        "RENAME TABLE a TO b",
        "ALTER TABLE t DROP COLUMN c, ADD INDEX k (a, b)",
        "ALTER TABLE t RENAME COLUMN a TO b",
        "CREATE INDEX k ON t (a DESC, b(10))",
        "CREATE TABLE t2 (id INT PRIMARY KEY) ENGINE=InnoDB AS SELECT id FROM t1",
        "CREATE TABLE t2 LIKE t1",
    ] {
        assert_eq!(to_maria(unchanged).expect("translates").sql, unchanged);
    }
}

#[test]
fn mysql_ddl_refused_on_mariadb() {
    let e = refusal(to_maria("ALTER TABLE `db`.`t` ADD INDEX fx ((a + b))"));
    assert!(
        e.contains("table `db`.`t`, index fx: functional key part (a + b)"),
        "{e}"
    );
    let e = refusal(to_maria("CREATE INDEX fx ON t ((lower(s)))"));
    assert!(e.contains("table t, index fx: functional key part"), "{e}");
    let e = refusal(to_maria(
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT ENFORCED",
    ));
    assert!(e.contains("constraint c: a NOT ENFORCED check"), "{e}");
    let e = refusal(to_maria("ALTER TABLE t ADD v VECTOR(3)"));
    assert!(
        e.contains("column v: MariaDB 10.11.19 has no VECTOR type"),
        "{e}"
    );
    let e = refusal(to_maria(
        "CREATE TABLE t (id int NOT NULL /*!80021 ENGINE_ATTRIBUTE='{}' */, PRIMARY KEY (id))",
    ));
    assert!(
        e.contains("table t, column id: /*!80021 ENGINE_ATTRIBUTE='{}' */ is MySQL syntax"),
        "{e}"
    );
    let e = refusal(to_maria(
        "ALTER TABLE t MODIFY s VARCHAR(9) COLLATE utf8mb4_ja_0900_as_cs",
    ));
    assert!(
        e.contains("column s: collation utf8mb4_ja_0900_as_cs: MariaDB has no 'ja'"),
        "{e}"
    );
    let e = refusal(to_maria("ALTER TABLE t ENCRYPTION='Y'"));
    assert!(e.contains("table option ENCRYPTION"), "{e}");
    let e = refusal(to_maria(
        "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=ndbcluster",
    ));
    assert!(e.contains("storage engine NDBCLUSTER"), "{e}");
}

#[test]
fn mariadb_ddl_for_mysql() {
    assert_eq!(
        to_mysql("ALTER TABLE t ADD COLUMN u VARCHAR(36) DEFAULT uuid() AFTER id")
            .expect("translates")
            .sql,
        "ALTER TABLE t ADD COLUMN u VARCHAR(36) DEFAULT (uuid()) AFTER id"
    );
    assert_eq!(
        to_mysql("ALTER TABLE t ADD j LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin CHECK (json_valid(j))")
            .expect("translates")
            .sql,
        "ALTER TABLE t ADD j json"
    );
    assert_eq!(
        to_mysql("ALTER TABLE t MODIFY COLUMN n TEXT NOT NULL DEFAULT 'x' COMMENT 'c'")
            .expect("translates")
            .sql,
        "ALTER TABLE t MODIFY COLUMN n TEXT NOT NULL DEFAULT ('x') COMMENT 'c'"
    );
    assert_eq!(
        to_mysql("ALTER TABLE t CHANGE a b INT AS (c + 1) PERSISTENT")
            .expect("translates")
            .sql,
        "ALTER TABLE t CHANGE a b INT AS (c + 1) STORED"
    );
    assert_eq!(
        to_mysql("ALTER TABLE t ALTER INDEX k NOT IGNORED, ALTER INDEX l IGNORED")
            .expect("translates")
            .sql,
        "ALTER TABLE t ALTER INDEX k VISIBLE, ALTER INDEX l INVISIBLE"
    );
    // MariaDB skipped the MySQL 8 comment: MySQL must not run it.
    assert_eq!(
        to_mysql("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) /*!80016 NOT ENFORCED */")
            .expect("translates")
            .sql,
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) "
    );
    assert_eq!(
        to_mysql("ALTER TABLE t MODIFY s VARCHAR(9) COLLATE utf8mb4_uca1400_nopad_as_ci")
            .expect("translates")
            .sql,
        "ALTER TABLE t MODIFY s VARCHAR(9) COLLATE utf8mb4_0900_as_ci"
    );
}

#[test]
fn mariadb_ddl_refused_on_mysql() {
    let e = refusal(to_mysql("ALTER TABLE t ADD COLUMN a INET6"));
    assert!(
        e.contains("table t, column a: MySQL has no INET6 type"),
        "{e}"
    );
    let e = refusal(to_mysql("ALTER TABLE t ENGINE=Aria"));
    assert!(
        e.contains("table t, table option ENGINE: storage engine ARIA"),
        "{e}"
    );
    let e = refusal(to_mysql("ALTER TABLE t ADD SYSTEM VERSIONING"));
    assert!(e.contains("MySQL has no system-versioned tables"), "{e}");
    let e = refusal(to_mysql("CREATE SEQUENCE s START WITH 1"));
    assert!(e.contains("MySQL has no sequences"), "{e}");
    let e = refusal(to_mysql(
        "ALTER TABLE t MODIFY s VARCHAR(9) COLLATE utf8mb4_uca1400_ai_cs",
    ));
    assert!(
        e.contains("column s: collation utf8mb4_uca1400_ai_cs"),
        "{e}"
    );
    let e = refusal(to_mysql(
        "CREATE TABLE t (id INT PRIMARY KEY, s ROW_START_T TIMESTAMP(6) GENERATED ALWAYS AS ROW START)",
    ));
    assert!(e.contains("system-versioned"), "{e}");
}

#[test]
fn collations_checked_against_the_target() {
    let known: BTreeSet<String> = ["utf8mb4_general_ci", "utf8mb4_bin"]
        .into_iter()
        .map(String::from)
        .collect();
    let e = translate(
        "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(3) COLLATE utf8mb4_0900_ai_ci) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
        Flavor::Mysql,
        &maria(),
        Some(&known),
    )
    .expect_err("unknown there");
    assert_eq!(
        e.to_string(),
        "table t, column s: collation utf8mb4_uca1400_nopad_ai_ci does not exist on the target (MariaDB 10.11.19)"
    );
}

#[test]
fn older_targets() {
    let maria_10_5 = Server::from_version("10.5.21-MariaDB");
    let t = translate(
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, KEY k (a) /*!80000 INVISIBLE */) COLLATE=utf8mb4_0900_ai_ci",
        Flavor::Mysql,
        &maria_10_5,
        None,
    )
    .expect("translates");
    assert_eq!(
        t.sql,
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, KEY k (a)) COLLATE=utf8mb4_unicode_520_nopad_ci"
    );
    let mysql_5_7 = Server::from_version("5.7.44-log");
    let e = translate(
        "CREATE TABLE t (id INT PRIMARY KEY, a INT INVISIBLE)",
        Flavor::Mariadb,
        &mysql_5_7,
        None,
    )
    .expect_err("no invisible columns");
    assert!(
        e.to_string()
            .contains("column a: MySQL 5.7.44 has no invisible columns"),
        "{e}"
    );
}

#[test]
fn tokens_keep_every_byte_and_know_their_comments() {
    let sql = "CREATE TABLE `ä` (\n  `ö` int DEFAULT '7' /*!80023 INVISIBLE */,\n  x text -- c\n) /*M!100301 X=1*/";
    let t = tokens::Tokens::new(sql).expect("tokenizes");
    for tok in &t.toks {
        assert!(sql.is_char_boundary(tok.range.start) && sql.is_char_boundary(tok.range.end));
    }
    let invisible = t.toks.iter().find(|k| k.is("INVISIBLE")).expect("token");
    assert_eq!(&sql[invisible.range.clone()], "INVISIBLE");
    let c = &t.comments[invisible.comment.expect("in a comment")];
    assert_eq!(&sql[c.range.clone()], "/*!80023 INVISIBLE */");
    assert_eq!(c.version, 80023);
    assert!(c.runs_on(Flavor::Mysql, Some(90704)));
    assert!(!c.runs_on(Flavor::Mariadb, Some(101119)));
    let m = &t.comments[1];
    assert!(m.mariadb_only && m.version == 100301);
    assert!(!m.runs_on(Flavor::Mysql, None) && m.runs_on(Flavor::Mariadb, Some(101119)));
    let a = t.toks.iter().find(|k| k.word() == Some("ä")).expect("ä");
    assert_eq!(&sql[a.range.clone()], "`ä`");
}
