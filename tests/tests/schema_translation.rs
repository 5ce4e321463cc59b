//! Schema translation across engines (issue 13, failure 1 and "Schema
//! translation across engines"): `workflow create` MySQL 9.7 → MariaDB
//! 10.11 creates the target tables translated (it failed with `ERROR 1273
//! Unknown collation: 'utf8mb4_0900_ai_ci'` and left an empty database
//! behind), MariaDB → MySQL turns MariaDB JSON into MySQL `JSON`, an
//! untranslatable definition is refused before anything is created, a
//! create that fails midway leaves nothing; the collation mapping names
//! collations that exist on the real servers, and the translated
//! `SHOW CREATE TABLE` fixtures of the unit tests run on them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use revdoor_mysql::translate::collation;
use revdoor_tests::door::{Door, Out};
use revdoor_tests::{wait_for, TestCtx};

/// Keyspaces `src` (unsharded on `source`) and `dst` (`targets`).
fn keyspaces(ctx: TestCtx, source: usize, targets: &[(&str, usize)]) -> Door {
    let door = Door {
        source,
        target: targets.iter().map(|(r, s)| (r.to_string(), *s)).collect(),
        accounts: 0,
        ctx,
    };
    door.ok(&[
        "keyspace",
        "add",
        "src",
        "--shard",
        &format!("-={}", door.ctx.revdoor_shard_url(source)),
    ]);
    let mut args = vec!["keyspace".to_string(), "add".into(), "dst".into()];
    for (r, s) in &door.target {
        args.push("--shard".into());
        args.push(format!("{r}={}", door.ctx.revdoor_shard_url(*s)));
    }
    door.ok(&revdoor_tests::args(&args));
    door
}

/// The test's database on `source`, holding what `statements` create
/// (`{db}` stands for the database's name); the name.
async fn source_tables(ctx: &TestCtx, source: usize, statements: &[&str]) -> String {
    ctx.create_db(&[source]).await;
    let db = ctx.db.clone();
    let statements: Vec<String> = statements.iter().map(|s| s.replace("{db}", &db)).collect();
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    ctx.sql(source, &statements).await;
    db
}

/// `workflow create` of `tables` of the test's database.
fn create(door: &Door, tables: &[&str], extra: &[&str]) -> Out {
    let tables: Vec<String> = tables
        .iter()
        .map(|t| format!("{}.{t}", door.ctx.db))
        .collect();
    let joined = tables.join(",");
    let mut args = vec![
        "workflow",
        "create",
        &door.ctx.workflow,
        "--source",
        "src",
        "--target",
        "dst",
        "--tables",
        &joined,
    ];
    args.extend_from_slice(extra);
    door.cmd(&args)
}

fn first(servers: Vec<usize>, n: usize, what: &str) -> Vec<usize> {
    assert!(
        servers.len() >= n,
        "needs {n} {what} server(s) in the stack (deploy/stack up --mariadb 5 --mysql 2), has {}",
        servers.len()
    );
    servers[..n].to_vec()
}

/// (DATA_TYPE, COLLATION_NAME, EXTRA, COLUMN_DEFAULT) of a column.
type Column = (String, Option<String>, String, Option<String>);

/// A row of `information_schema.COLUMNS`: the name, then a [`Column`].
type ColumnRow = (String, String, Option<String>, String, Option<String>);

/// Column name → its [`Column`] of `db.table` on a server.
async fn columns(c: &mut Conn, db: &str, table: &str) -> BTreeMap<String, Column> {
    let rows: Vec<ColumnRow> = c
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLLATION_NAME, EXTRA, COLUMN_DEFAULT \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .expect("read columns");
    rows.into_iter()
        .map(|(n, t, c, e, d)| (n, (t, c, e, d)))
        .collect()
}

async fn table_collation(c: &mut Conn, db: &str, table: &str) -> Option<String> {
    c.exec_first(
        "SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        (db, table),
    )
    .await
    .expect("read table collation")
}

/// Whether `db` exists on a server, and its tables.
async fn leftovers(c: &mut Conn, db: &str) -> (bool, Vec<String>) {
    let schema: Option<String> = c
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (db,),
        )
        .await
        .expect("read schemata");
    let tables: Vec<String> = c
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (db,),
        )
        .await
        .expect("read tables");
    (schema.is_some(), tables)
}

/// Nothing of the test's workflow anywhere: no database on the targets,
/// no fence triggers, no registry keys.
async fn nothing_left(door: &Door, targets: &[usize], out: &Out) {
    for &t in targets {
        let mut c = door.ctx.conn(t).await;
        assert_eq!(
            leftovers(&mut c, &door.ctx.db).await,
            (false, vec![]),
            "server #{t} kept what a failed create made:\n{}",
            out.stderr
        );
    }
    assert_eq!(
        door.triggers(door.source).await,
        0,
        "fence triggers left on the source"
    );
    assert!(
        door.etcd_keys(&format!("workflows/{}", door.ctx.workflow))
            .await
            .is_empty(),
        "a failed create left registry keys"
    );
}

const RICH_MYSQL: &str = "CREATE TABLE {db}.rich (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    code VARCHAR(16) COLLATE utf8mb4_0900_as_cs NOT NULL,
    raw VARCHAR(16) COLLATE utf8mb4_0900_bin,
    doc JSON,
    secret INT INVISIBLE DEFAULT 7,
    created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    price DECIMAL(10,2) DEFAULT (10 * 2),
    tag VARCHAR(36) DEFAULT (uuid()),
    name_len INT GENERATED ALWAYS AS (char_length(name)) VIRTUAL,
    name_up VARCHAR(64) AS (upper(name)) STORED,
    UNIQUE KEY uk_code (code),
    KEY k_len (name_len),
    CONSTRAINT chk_price CHECK (price >= 0)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci";

const PLAIN_MYSQL: &str = "CREATE TABLE {db}.plain (
    id BIGINT NOT NULL PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    code VARCHAR(16) COLLATE utf8mb4_0900_as_cs NOT NULL,
    doc JSON,
    secret INT INVISIBLE DEFAULT 7,
    created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    tag VARCHAR(36) DEFAULT (uuid())
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci";

/// Failure 1: MySQL → MariaDB `workflow create` of tables using
/// `utf8mb4_0900_ai_ci` (table default and per column), JSON, an invisible
/// column, generated columns and expression defaults: created translated,
/// rows copy — into `rich` too, whose generated columns apply leaves to
/// the target server (both engines refuse a value for one, ERROR 1906 /
/// 3105) — and a forwarded `ALTER TABLE` (`on_ddl=exec`) is translated
/// too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_to_mariadb_create_translates_and_copies() {
    let ctx = TestCtx::new("xlat_my_ma");
    let source = first(ctx.stack.mysql_servers(), 1, "MySQL")[0];
    let target = first(ctx.stack.mariadb_servers(), 1, "MariaDB")[0];
    let db = source_tables(
        &ctx,
        source,
        &[
            RICH_MYSQL,
            PLAIN_MYSQL,
            "INSERT INTO {db}.plain (id, name, code, doc, secret, created, tag) VALUES \
             (1, 'Ünïcode', 'Ab', '{\"k\": [1, \"two\"]}', 42, '2024-02-29 12:34:56.789012', 'fixed')",
            "INSERT INTO {db}.rich (name, code, raw, doc, price) VALUES ('abc', 'X1', 'r', '[1]', 5.00)",
        ],
    )
    .await;
    let door = keyspaces(ctx, source, &[("-", target)]);
    let out = create(&door, &["plain", "rich"], &["--on-ddl", "exec"]);
    assert!(
        out.ok,
        "workflow create MySQL → MariaDB: {}{}",
        out.stdout, out.stderr
    );

    let mut t = door.ctx.conn(target).await;
    for table in ["rich", "plain"] {
        assert_eq!(
            table_collation(&mut t, &db, table).await.as_deref(),
            Some("utf8mb4_uca1400_nopad_ai_ci"),
            "{table}: table default collation"
        );
    }
    let cols = columns(&mut t, &db, "rich").await;
    let col = |n: &str| {
        cols.get(n)
            .unwrap_or_else(|| panic!("column {n}: {cols:?}"))
    };
    assert_eq!(
        col("name").1.as_deref(),
        Some("utf8mb4_uca1400_nopad_ai_ci")
    );
    assert_eq!(
        col("code").1.as_deref(),
        Some("utf8mb4_uca1400_nopad_as_cs")
    );
    assert_eq!(col("raw").1.as_deref(), Some("utf8mb4_nopad_bin"));
    // MariaDB's JSON: longtext utf8mb4_bin with CHECK (json_valid(doc)).
    assert_eq!(col("doc").0, "longtext");
    assert_eq!(col("doc").1.as_deref(), Some("utf8mb4_bin"));
    let json_check: Option<String> = t
        .exec_first(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = 'rich' AND CONSTRAINT_NAME = 'doc'",
            (&db,),
        )
        .await
        .expect("checks");
    assert_eq!(json_check.as_deref(), Some("json_valid(`doc`)"));
    assert_eq!(col("secret").2, "INVISIBLE");
    assert_eq!(col("created").3.as_deref(), Some("current_timestamp(6)"));
    assert_eq!(col("created").2, "on update current_timestamp(6)");
    assert_eq!(col("price").3.as_deref(), Some("(10 * 2)"));
    assert_eq!(col("tag").3.as_deref(), Some("uuid()"));
    assert_eq!(col("name_len").2, "VIRTUAL GENERATED");
    assert_eq!(col("name_up").2, "STORED GENERATED");
    let uk: Option<String> = t
        .exec_first(
            "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = 'rich' AND INDEX_NAME = 'uk_code' AND NON_UNIQUE = 0",
            (&db,),
        )
        .await
        .expect("indexes");
    assert_eq!(uk.as_deref(), Some("uk_code"));

    // A row copies (the invisible column too).
    let _c = door.coordinator("c0", &[]);
    let _w = door.worker("w1");
    let row: (i64, String, String, String, i32, String, String) = wait_for(
        "the row copied to MariaDB",
        Duration::from_secs(90),
        || async {
            let mut t = door.ctx.conn(target).await;
            Ok(t.query_first(format!(
                "SELECT id, name, code, doc, secret, CAST(created AS CHAR), tag FROM {db}.plain"
            ))
            .await?)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    assert_eq!(
        row,
        (
            1,
            "Ünïcode".to_string(),
            "Ab".to_string(),
            r#"{"k": [1, "two"]}"#.to_string(),
            42,
            "2024-02-29 12:34:56.789012".to_string(),
            "fixed".to_string()
        )
    );

    // Generated columns: computed by the target, not written by apply.
    let generated: (String, i64, String) = wait_for(
        "the row with generated columns copied to MariaDB",
        Duration::from_secs(60),
        || async {
            let mut t = door.ctx.conn(target).await;
            Ok(
                t.query_first(format!("SELECT name, name_len, name_up FROM {db}.rich"))
                    .await?,
            )
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    assert_eq!(generated, ("abc".to_string(), 3, "ABC".to_string()));

    // A forwarded ALTER TABLE in MySQL's spelling runs translated.
    door.wait_streams_running(Duration::from_secs(60)).await;
    door.ctx
        .sql(
            source,
            &[&format!(
                "ALTER TABLE {db}.plain ADD COLUMN nick VARCHAR(16) COLLATE utf8mb4_0900_as_ci \
                 INVISIBLE AFTER name, ADD INDEX k_nick (nick) INVISIBLE"
            )],
        )
        .await;
    let nick = wait_for(
        "the ALTER TABLE run on MariaDB",
        Duration::from_secs(60),
        || async {
            let mut t = door.ctx.conn(target).await;
            Ok(columns(&mut t, &db, "plain").await.remove("nick"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    assert_eq!(nick.1.as_deref(), Some("utf8mb4_uca1400_nopad_as_ci"));
    assert_eq!(nick.2, "INVISIBLE");
    let ignored: Option<String> = t
        .exec_first(
            "SELECT IGNORED FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = 'plain' AND INDEX_NAME = 'k_nick'",
            (&db,),
        )
        .await
        .expect("index");
    assert_eq!(
        ignored.as_deref(),
        Some("YES"),
        "MySQL's INVISIBLE index as IGNORED"
    );
}

/// MariaDB → MySQL: MariaDB JSON (`longtext … CHECK (json_valid(c))`,
/// inline or as a table constraint) becomes MySQL `JSON` without that
/// check (others stay); `uca1400` collations become `0900` ones;
/// `DEFAULT uuid()` and a TEXT literal default become expressions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_to_mysql_create_makes_json_and_0900_collations() {
    let ctx = TestCtx::new("xlat_ma_my");
    let source = first(ctx.stack.mariadb_servers(), 1, "MariaDB")[0];
    let target = first(ctx.stack.mysql_servers(), 1, "MySQL")[0];
    let db = source_tables(
        &ctx,
        source,
        &["CREATE TABLE {db}.docs (
                id INT PRIMARY KEY,
                doc JSON,
                doc2 LONGTEXT,
                other LONGTEXT CHECK (json_valid(other) OR other IS NULL),
                name VARCHAR(32) COLLATE utf8mb4_uca1400_swedish_nopad_as_cs,
                tag VARCHAR(36) DEFAULT uuid(),
                note TEXT DEFAULT 'none',
                hidden INT INVISIBLE DEFAULT 1,
                CONSTRAINT doc2_json CHECK (json_valid(doc2)),
                CONSTRAINT positive CHECK (id > 0)
            ) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_uca1400_nopad_ai_ci"],
    )
    .await;
    let door = keyspaces(ctx, source, &[("-", target)]);
    let out = create(&door, &["docs"], &[]);
    assert!(
        out.ok,
        "workflow create MariaDB → MySQL: {}{}",
        out.stdout, out.stderr
    );

    let mut t = door.ctx.conn(target).await;
    assert_eq!(
        table_collation(&mut t, &db, "docs").await.as_deref(),
        Some("utf8mb4_0900_ai_ci")
    );
    let cols = columns(&mut t, &db, "docs").await;
    let col = |n: &str| {
        cols.get(n)
            .unwrap_or_else(|| panic!("column {n}: {cols:?}"))
    };
    assert_eq!(col("doc").0, "json");
    assert_eq!(col("doc2").0, "json");
    assert_eq!(
        col("other").0,
        "longtext",
        "a check that is not exactly json_valid stays"
    );
    assert_eq!(col("name").1.as_deref(), Some("utf8mb4_sv_0900_as_cs"));
    assert_eq!(col("tag").2, "DEFAULT_GENERATED");
    assert_eq!(col("tag").3.as_deref(), Some("uuid()"));
    assert_eq!(col("note").3.as_deref(), Some("_utf8mb4\\'none\\'"));
    assert_eq!(col("hidden").2, "INVISIBLE");
    let checks: Vec<String> = t
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS c \
             JOIN information_schema.TABLE_CONSTRAINTS USING (CONSTRAINT_SCHEMA, CONSTRAINT_NAME) \
             WHERE c.CONSTRAINT_SCHEMA = ? AND TABLE_NAME = 'docs' ORDER BY CHECK_CLAUSE",
            (&db,),
        )
        .await
        .expect("checks");
    assert_eq!(
        checks,
        vec![
            "(`id` > 0)".to_string(),
            "(json_valid(`other`) or (`other` is null))".to_string()
        ],
        "the json_valid checks of the JSON columns go, the others stay"
    );
}

/// MySQL → {MariaDB, MySQL}: each target shard gets the definition for its
/// engine — translated on the MariaDB shard, word for word on the MySQL one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_target_shards_get_each_their_engines_definition() {
    let ctx = TestCtx::new("xlat_mixed");
    let [my_src, my_dst] = first(ctx.stack.mysql_servers(), 2, "MySQL")[..] else {
        unreachable!()
    };
    let maria = first(ctx.stack.mariadb_servers(), 1, "MariaDB")[0];
    let db = source_tables(&ctx, my_src, &[PLAIN_MYSQL]).await;
    let door = keyspaces(ctx, my_src, &[("-80", maria), ("80-", my_dst)]);
    let out = create(&door, &["plain"], &[]);
    assert!(
        out.ok,
        "workflow create MySQL → {{MariaDB, MySQL}}: {}{}",
        out.stdout, out.stderr
    );
    let mut source = door.ctx.conn(my_src).await;
    let (_, want): (String, String) = source
        .query_first(format!("SHOW CREATE TABLE {db}.plain"))
        .await
        .expect("show create")
        .expect("table");
    let mut mysql = door.ctx.conn(my_dst).await;
    let (_, got): (String, String) = mysql
        .query_first(format!("SHOW CREATE TABLE {db}.plain"))
        .await
        .expect("show create")
        .expect("table on the MySQL shard");
    assert_eq!(got, want, "the MySQL shard's table is the source's");
    let mut maria = door.ctx.conn(maria).await;
    assert_eq!(
        table_collation(&mut maria, &db, "plain").await.as_deref(),
        Some("utf8mb4_uca1400_nopad_ai_ci")
    );
    let cols = columns(&mut maria, &db, "plain").await;
    assert_eq!(
        cols["code"].1.as_deref(),
        Some("utf8mb4_uca1400_nopad_as_cs")
    );
    assert_eq!(cols["secret"].2, "INVISIBLE");
}

/// An untranslatable definition is refused at `workflow create`, naming
/// the table, the column or index and why, before anything is created —
/// on any shard, also where a target of the source's engine would have
/// taken it (MySQL → {MariaDB, MySQL}).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn untranslatable_definitions_are_refused_before_anything_is_created() {
    // MySQL functional index → MariaDB and MySQL shards.
    let ctx = TestCtx::new("xlat_refuse_my");
    let [my_src, my_dst] = first(ctx.stack.mysql_servers(), 2, "MySQL")[..] else {
        unreachable!()
    };
    let maria = first(ctx.stack.mariadb_servers(), 1, "MariaDB")[0];
    let db = source_tables(
        &ctx,
        my_src,
        &[
            "CREATE TABLE {db}.fine (id INT PRIMARY KEY, s VARCHAR(8))",
            "CREATE TABLE {db}.fx (id INT PRIMARY KEY, a INT, b INT, KEY fx_sum ((a + b)))",
        ],
    )
    .await;
    let door = keyspaces(ctx, my_src, &[("-80", maria), ("80-", my_dst)]);
    let out = create(&door, &["fine", "fx"], &[]);
    assert!(!out.ok, "expected a refusal, got:\n{}", out.stdout);
    assert!(
        out.stderr
            .contains(&format!("table {db}.fx cannot be created"))
            && out.stderr.contains("index `fx_sum`: functional key part")
            && out.stderr.contains("MariaDB 10.11")
            && out.stderr.contains("nothing was created"),
        "refusal names table, index, engine:\n{}",
        out.stderr
    );
    nothing_left(&door, &[maria, my_dst], &out).await;

    // MariaDB INET6 → MySQL.
    let ctx = TestCtx::new("xlat_refuse_ma");
    let ma_src = first(ctx.stack.mariadb_servers(), 1, "MariaDB")[0];
    let db = source_tables(
        &ctx,
        ma_src,
        &["CREATE TABLE {db}.hosts (id INT PRIMARY KEY, addr INET6, seen DATETIME)"],
    )
    .await;
    let door = keyspaces(ctx, ma_src, &[("-", my_dst)]);
    let out = create(&door, &["hosts"], &[]);
    assert!(!out.ok, "expected a refusal, got:\n{}", out.stdout);
    assert!(
        out.stderr
            .contains(&format!("table {db}.hosts cannot be created"))
            && out
                .stderr
                .contains("column `addr`: MySQL has no INET6 type"),
        "refusal names table and column:\n{}",
        out.stderr
    );
    nothing_left(&door, &[my_dst], &out).await;
}

/// A create that fails midway — the second table's default calls a
/// function MariaDB does not have, which translation leaves to the server —
/// drops the first table and the database it made, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_failing_midway_leaves_nothing() {
    let ctx = TestCtx::new("xlat_midway");
    let source = first(ctx.stack.mysql_servers(), 1, "MySQL")[0];
    let target = first(ctx.stack.mariadb_servers(), 1, "MariaDB")[0];
    let db = source_tables(
        &ctx,
        source,
        &[
            "CREATE TABLE {db}.a_first (id INT PRIMARY KEY, s VARCHAR(8))",
            "CREATE TABLE {db}.b_second (id INT PRIMARY KEY, u BINARY(16) DEFAULT (uuid_to_bin(uuid())))",
        ],
    )
    .await;
    let door = keyspaces(ctx, source, &[("-", target)]);
    let out = create(&door, &["a_first", "b_second"], &[]);
    assert!(!out.ok, "expected a failure, got:\n{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("table {db}.b_second"))
            && out.stderr.contains("uuid_to_bin")
            && out.stderr.contains(&format!("dropped table {db}.a_first"))
            && out.stderr.contains(&format!("dropped database {db}")),
        "the error and what was cleaned up:\n{}",
        out.stderr
    );
    nothing_left(&door, &[target], &out).await;
}

/// The collation mapping names collations the real servers have, with the
/// pad attribute it claims; names both servers have are one collation
/// (same id) except Croatian, which the mapping renames.
#[tokio::test]
async fn collation_mapping_names_exist_on_the_real_servers() {
    let ctx = TestCtx::new("xlat_collations");
    let my = first(ctx.stack.mysql_servers(), 1, "MySQL")[0];
    let ma = first(ctx.stack.mariadb_servers(), 1, "MariaDB")[0];
    let mut my_c = ctx.conn(my).await;
    let mut ma_c = ctx.conn(ma).await;
    let mysql: BTreeMap<String, (u64, String)> = my_c
        .query::<(String, u64, String), _>(
            "SELECT COLLATION_NAME, ID, PAD_ATTRIBUTE FROM information_schema.COLLATIONS",
        )
        .await
        .expect("MySQL collations")
        .into_iter()
        .map(|(n, id, pad)| (n, (id, pad)))
        .collect();
    let mariadb = collation::server_collations(&mut ma_c)
        .await
        .expect("MariaDB collations");
    for (my_name, ma_name) in collation::uca_pairs() {
        let (_, pad) = mysql
            .get(&my_name)
            .unwrap_or_else(|| panic!("MySQL 9.7 has no {my_name}"));
        assert!(mariadb.contains(&ma_name), "MariaDB 10.11 has no {ma_name}");
        if my_name.contains("0900") {
            assert_eq!(pad, "NO PAD", "{my_name}");
            assert!(ma_name.contains("nopad"), "{ma_name} keeps NO PAD");
        }
    }
    let ma_ids: BTreeMap<String, Option<u64>> = ma_c
        .query::<(String, Option<u64>), _>(
            "SELECT COLLATION_NAME, ID FROM information_schema.COLLATIONS",
        )
        .await
        .expect("MariaDB ids")
        .into_iter()
        .collect();
    let mut differ: Vec<&str> = mysql
        .iter()
        .filter(|(n, (id, _))| ma_ids.get(*n).is_some_and(|m| *m != Some(*id)))
        .map(|(n, _)| n.as_str())
        .collect();
    differ.sort();
    assert_eq!(
        differ,
        vec![
            "ucs2_croatian_ci",
            "utf16_croatian_ci",
            "utf32_croatian_ci",
            "utf8mb3_croatian_ci",
            "utf8mb4_croatian_ci"
        ],
        "collations of one name but different ids on MySQL and MariaDB"
    );
}

/// The translated `SHOW CREATE TABLE` fixtures of the unit tests
/// (`mysql/src/translate/fixtures/expected`) run on the real target
/// engine.
#[tokio::test]
async fn translated_fixtures_run_on_the_real_targets() {
    let ctx = TestCtx::new("xlat_fixtures");
    let my = first(ctx.stack.mysql_servers(), 1, "MySQL")[0];
    let ma = first(ctx.stack.mariadb_servers(), 1, "MariaDB")[0];
    let expected =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mysql/src/translate/fixtures/expected");
    for (dir, server) in [("mysql-to-mariadb", ma), ("mariadb-to-mysql", my)] {
        ctx.create_db(&[server]).await;
        let mut c = ctx.conn(server).await;
        c.query_drop(format!("USE {}", ctx.db)).await.expect("use");
        c.query_drop("SET SESSION foreign_key_checks = 0")
            .await
            .expect("fk");
        let mut n = 0;
        for e in std::fs::read_dir(expected.join(dir)).expect("expected fixtures") {
            let path = e.expect("fixture").path();
            if path.extension().is_some_and(|x| x == "sql") {
                let sql = std::fs::read_to_string(&path).expect("read");
                c.query_drop(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}\n{sql}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 3, "{dir}: {n} fixtures");
        c.query_drop(format!("DROP DATABASE {}", ctx.db))
            .await
            .expect("drop");
    }
}
