//! The stack's MySQL servers (`deploy/stack up --mysql M`): the real MySQL
//! 9.7, the replication settings revdoor's preflight demands, and the three
//! accounts with MySQL's spelling of the MariaDB servers' privileges.

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use revdoor_tests::TestCtx;

/// The global privileges `SHOW GRANTS` lists for the session's account
/// (static and dynamic ones come on separate lines on MySQL).
async fn global_privileges(c: &mut Conn, who: &str) -> BTreeSet<String> {
    let lines: Vec<String> = c
        .query("SHOW GRANTS")
        .await
        .unwrap_or_else(|e| panic!("SHOW GRANTS as {who}: {e}"));
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("GRANT "))
        .filter_map(|l| l.split_once(" ON *.* TO "))
        .flat_map(|(privs, _)| privs.split(','))
        .map(|p| p.trim().to_string())
        .collect()
}

fn set(privs: &[&str]) -> BTreeSet<String> {
    privs.iter().map(|p| p.to_string()).collect()
}

async fn connect(opts: Opts, what: &str) -> Conn {
    Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("log in to {what}: {e}"))
}

#[tokio::test]
async fn mysql_servers_run_9_7_with_gtids_full_row_images_and_the_three_accounts() {
    let ctx = TestCtx::new("mysql_stack");
    let mysql = ctx.stack.mysql_servers();
    assert!(
        mysql.len() >= 2,
        "needs a stack with 2 MySQL servers (deploy/stack up --mariadb 5 --mysql 2); \
         REVDOOR_ENGINE_i name {} MySQL server(s)",
        mysql.len()
    );

    // REVDOOR_ENGINE_i tells the truth about every server, and server ids
    // are unique across engines.
    let mut server_ids = BTreeSet::new();
    for i in 1..=ctx.stack.servers.len() {
        let mut c = ctx.conn(i).await;
        let (version, server_id): (String, u32) = c
            .query_first("SELECT VERSION(), @@server_id")
            .await
            .expect("version")
            .expect("a row");
        assert_eq!(
            version.contains("MariaDB"),
            !mysql.contains(&i),
            "server #{i} runs {version}, REVDOOR_ENGINE_{i} says {:?}",
            ctx.stack.servers[i - 1].engine
        );
        assert!(
            server_ids.insert(server_id),
            "server #{i}: server_id {server_id} is used twice"
        );
    }

    let revdoor_grants = set(&[
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "CREATE",
        "DROP",
        "ALTER",
        "INDEX",
        "TRIGGER",
        "REFERENCES",
        "LOCK TABLES",
        "SHOW VIEW",
        // MariaDB's REPLICATION SLAVE, BINLOG MONITOR, READ_ONLY ADMIN:
        "REPLICATION SLAVE",
        "REPLICATION CLIENT",
        "SYSTEM_VARIABLES_ADMIN",
        "CONNECTION_ADMIN",
        // vdiff's FLUSH TABLES WITH READ LOCK on MySQL.
        "RELOAD",
    ]);
    let app_grants = set(&[
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX", "ALTER",
    ]);

    let mut uuids = BTreeSet::new();
    for &i in &mysql {
        let mut admin = ctx.conn(i).await;
        let row: (String, String, String, String, String, u8, String, String) = admin
            .query_first(
                "SELECT VERSION(), @@gtid_mode, @@enforce_gtid_consistency, \
                 @@binlog_row_metadata, @@binlog_row_image, @@log_bin, @@binlog_format, \
                 @@server_uuid",
            )
            .await
            .expect("settings")
            .expect("a row");
        let (version, gtid_mode, consistency, metadata, image, log_bin, format, uuid) = row;
        assert!(
            version.starts_with("9.7."),
            "server #{i}: version {version}"
        );
        assert_eq!(gtid_mode, "ON", "server #{i}: @@gtid_mode");
        assert_eq!(consistency, "ON", "server #{i}: @@enforce_gtid_consistency");
        assert_eq!(metadata, "FULL", "server #{i}: @@binlog_row_metadata");
        assert_eq!(image, "FULL", "server #{i}: @@binlog_row_image");
        assert_eq!(log_bin, 1, "server #{i}: @@log_bin");
        assert_eq!(format, "ROW", "server #{i}: @@binlog_format");
        assert!(
            uuids.insert(uuid.clone()),
            "server #{i}: server_uuid {uuid} twice"
        );
        let plugins: Vec<(String, String)> = admin
            .query(
                "SELECT user, plugin FROM mysql.user \
                 WHERE user IN ('admin', 'revdoor', 'app') AND host = '%' ORDER BY user",
            )
            .await
            .expect("accounts");
        let sha2 = "caching_sha2_password".to_string();
        assert_eq!(
            plugins,
            vec![
                ("admin".to_string(), sha2.clone()),
                ("app".to_string(), sha2.clone()),
                ("revdoor".to_string(), sha2),
            ],
            "server #{i}: the three accounts"
        );

        // revdoor's account logs in over TCP and holds exactly its grant.
        let url = ctx.revdoor_url(i);
        let opts = Opts::from_url(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let mut revdoor = connect(opts, &format!("server #{i} as revdoor")).await;
        assert_eq!(
            global_privileges(&mut revdoor, "revdoor").await,
            revdoor_grants,
            "server #{i}: revdoor's privileges"
        );
        // REPLICATION CLIENT at work: the binlog list and the GTID set.
        let logs: Vec<mysql_async::Row> = revdoor
            .query("SHOW BINARY LOGS")
            .await
            .unwrap_or_else(|e| panic!("server #{i}: SHOW BINARY LOGS as revdoor: {e}"));
        assert!(!logs.is_empty(), "server #{i}: binary logs");
        let _: Option<String> = revdoor
            .query_first("SELECT @@gtid_executed")
            .await
            .unwrap_or_else(|e| panic!("server #{i}: @@gtid_executed as revdoor: {e}"));

        // The application's account: plain DML and DDL, nothing else.
        let opts: Opts = OptsBuilder::from_opts(ctx.admin_opts(i))
            .user(Some("app"))
            .pass(Some("app-pw"))
            .into();
        let mut app = connect(opts, &format!("server #{i} as app")).await;
        assert_eq!(
            global_privileges(&mut app, "app").await,
            app_grants,
            "server #{i}: app's privileges"
        );
    }
}
