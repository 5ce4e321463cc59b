//! `on_ddl=exec` (issue 3, "DDL"): a DDL on a moved table is published as a
//! DDL record and run by apply on the destination in stream order, exactly
//! once — also when apply crashes right before or right after running it —
//! and the DDL apply ran is not sent back by the opposite direction's
//! capture.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use revdoor_tests::{args, gtid_pos, read_changes, Revdoor, TestCtx};

async fn wait_rows(ctx: &TestCtx, server: usize, n: usize, apply: &mut Revdoor) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = ctx.rows(server, "t").await;
        if rows.len() == n {
            return;
        }
        assert!(
            apply.exited().is_none(),
            "apply died:\n{}",
            apply.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "expected {n} rows on #{server}, have {rows:?}\n{}",
            apply.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `SHOW CREATE TABLE` without the AUTO_INCREMENT counter.
async fn definition(ctx: &TestCtx, server: usize) -> String {
    let mut c = ctx.conn(server).await;
    let (_, create): (String, String) = c
        .query_first(format!("SHOW CREATE TABLE {}.t", ctx.db))
        .await
        .expect("show create")
        .expect("table exists");
    create
}

async fn columns(ctx: &TestCtx, server: usize) -> Vec<String> {
    let mut c = ctx.conn(server).await;
    c.exec(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? \
         AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION",
        (&ctx.db,),
    )
    .await
    .expect("columns")
}

async fn indexes(ctx: &TestCtx, server: usize) -> Vec<String> {
    let mut c = ctx.conn(server).await;
    let mut v: Vec<String> = c
        .exec(
            "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = 't'",
            (&ctx.db,),
        )
        .await
        .expect("indexes");
    v.sort();
    v
}

async fn crash_at(ctx: &TestCtx, name: &str, apply_args: &[String], failpoint: &str) -> String {
    let spec = format!("{failpoint}=panic(failpoint {failpoint})");
    let mut apply = ctx.spawn_env(name, &args(apply_args), &[("FAILPOINTS", &spec)]);
    let code = apply.wait_exit(Duration::from_secs(60)).await;
    let log = apply.log_text();
    assert_ne!(code, Some(0), "apply must crash at {failpoint}:\n{log}");
    assert!(
        log.contains(&format!("failpoint {failpoint}")),
        "crashed at the failpoint:\n{log}"
    );
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_runs_on_the_destination_once_in_order_across_crashes() {
    let ctx = TestCtx::new("ddl_exec");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2]).await;
    let create = "CREATE TABLE t (id INT PRIMARY KEY, a INT NOT NULL)";
    ctx.sql(1, &[&format!("USE {db}"), create]).await;
    ctx.sql(2, &[&format!("USE {db}"), create]).await;
    let mut src = ctx.conn(1).await;
    let start = gtid_pos(&mut src).await;
    let mut dst = ctx.conn(2).await;
    let dst_start = gtid_pos(&mut dst).await;
    let mut capture_args = ctx.capture_args(&ctx.revdoor_url(1), &format!("{db}.t"), &start);
    capture_args.extend(["--on-ddl".to_string(), "exec".to_string()]);
    let mut capture = ctx.spawn("capture", &args(&capture_args));
    let apply_args = ctx.apply_args(&ctx.revdoor_url(2));

    let mut apply = ctx.spawn("apply-0", &args(&apply_args));
    src.query_drop(format!("INSERT INTO {db}.t VALUES (1, 10), (2, 20)"))
        .await
        .expect("insert");
    wait_rows(&ctx, 2, 2, &mut apply).await;
    apply.stop(Duration::from_secs(20));

    // 1. Crash right after the DDL ran, before the checkpoint passed it.
    for stmt in [
        format!("ALTER TABLE {db}.t ADD COLUMN b VARCHAR(20) NOT NULL DEFAULT 'x'"),
        format!("INSERT INTO {db}.t VALUES (3, 30, 'three')"),
        format!("UPDATE {db}.t SET b = 'one' WHERE id = 1"),
    ] {
        src.query_drop(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    crash_at(&ctx, "apply-1", &apply_args, "apply::ddl_after_exec").await;
    assert_eq!(columns(&ctx, 2).await, ["id", "a", "b"], "the DDL ran");
    assert_eq!(ctx.rows(2, "t").await.len(), 2, "nothing after it applied");
    // Restarted: it is not run again (a second ADD COLUMN would fail), and
    // the rows after it apply.
    let mut apply = ctx.spawn("apply-2", &args(&apply_args));
    wait_rows(&ctx, 2, 3, &mut apply).await;
    apply.stop(Duration::from_secs(20));
    let log = apply.log_text();
    assert!(
        log.contains("DDL already ran before a restart"),
        "the restart saw that the DDL had run:\n{log}"
    );
    apply.assert_no_unexpected_errors(&[]);

    // 2. Crash after the intent, before the DDL ran.
    for stmt in [
        format!("CREATE INDEX ib ON {db}.t (b)"),
        format!("INSERT INTO {db}.t VALUES (4, 40, 'four')"),
    ] {
        src.query_drop(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    crash_at(&ctx, "apply-3", &apply_args, "apply::ddl_before_exec").await;
    assert_eq!(indexes(&ctx, 2).await, ["PRIMARY"], "the DDL did not run");
    let mut apply = ctx.spawn("apply-4", &args(&apply_args));
    wait_rows(&ctx, 2, 4, &mut apply).await;
    assert_eq!(
        indexes(&ctx, 2).await,
        ["PRIMARY", "ib"],
        "ran after the restart"
    );

    // 3. While apply runs: a column dropped, rows in the new shape.
    for stmt in [
        format!("ALTER TABLE {db}.t DROP COLUMN a"),
        format!("INSERT INTO {db}.t VALUES (5, 'five')"),
        format!("DELETE FROM {db}.t WHERE id = 2"),
        format!("INSERT INTO {db}.t VALUES (6, 'six')"),
    ] {
        src.query_drop(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    wait_rows(&ctx, 2, 5, &mut apply).await;
    assert_eq!(ctx.rows(2, "t").await, ctx.rows(1, "t").await, "rows");
    assert_eq!(
        definition(&ctx, 2).await,
        definition(&ctx, 1).await,
        "definitions"
    );
    let mut states: Vec<(String, String)> = dst
        .exec(
            "SELECT state, statement FROM _revdoor.ddls WHERE workflow = ? ORDER BY kafka_offset",
            (&ctx.workflow,),
        )
        .await
        .expect("ddls");
    for (_, s) in &mut states {
        s.truncate(12);
    }
    assert_eq!(
        states,
        [
            ("found done".to_string(), "ALTER TABLE ".to_string()),
            ("ran".to_string(), "CREATE INDEX".to_string()),
            ("ran".to_string(), "ALTER TABLE ".to_string()),
        ],
        "each DDL's outcome"
    );
    apply.stop(Duration::from_secs(20));
    apply.assert_no_unexpected_errors(&[]);
    assert!(capture.exited().is_none(), "{}", capture.log_text());
    capture.stop(Duration::from_secs(20));
    capture.assert_no_unexpected_errors(&[]);

    // 4. The destination's binlog has the DDLs apply ran, tagged: the
    // reverse capture of the same workflow (on_ddl=stop, which would halt
    // on an untagged DDL) passes them and publishes only what the
    // application wrote there (apply's own row transactions are dropped
    // by the loop filter).
    let mut reverse_args = ctx.capture_args(&ctx.revdoor_url(2), &format!("{db}.t"), &dst_start);
    reverse_args.extend(["--direction".to_string(), "reverse".to_string()]);
    let mut reverse = ctx.spawn("capture-reverse", &args(&reverse_args));
    dst.query_drop(format!("INSERT INTO {db}.t VALUES (100, 'app')"))
        .await
        .expect("insert on the destination");
    let topic = format!("revdoor.{}.reverse", ctx.workflow);
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let evs = read_changes(&ctx.stack.kafka, &topic, 0)
            .await
            .unwrap_or_default();
        if !evs.is_empty() {
            break evs;
        }
        assert!(
            reverse.exited().is_none(),
            "reverse capture stopped:\n{}",
            reverse.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "the application's row never reached {topic}:\n{}",
            reverse.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ids: Vec<String> = events
        .iter()
        .filter_map(|(_, e)| e.after.as_ref())
        .map(|r| format!("{:?}", r.values.first()))
        .collect();
    assert_eq!(ids, ["Some(Int(100))"], "only the application's row");
    reverse.stop(Duration::from_secs(20));
    reverse.assert_no_unexpected_errors(&[]);
}

/// Two origins feed one destination (2 → 1): each origin's stream brings its
/// own copy of the DDL; the first copy runs, the second is recognised as
/// done by its sibling stream, and rows of both origins in the new shape
/// apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_from_two_origins_runs_once_on_their_destination() {
    let ctx = TestCtx::new("ddl_exec_merge");
    let db = ctx.db.clone();
    ctx.create_db(&[1, 2, 3]).await;
    let create = "CREATE TABLE t (id INT PRIMARY KEY, a INT NOT NULL)";
    for server in [1, 2, 3] {
        ctx.sql(server, &[&format!("USE {db}"), create]).await;
    }
    let mut captures = Vec::new();
    let mut applies = Vec::new();
    let mut origins = Vec::new();
    for (i, (server, shard)) in [(1usize, "-80"), (3, "80-")].into_iter().enumerate() {
        let mut conn = ctx.conn(server).await;
        let start = gtid_pos(&mut conn).await;
        let mut a = ctx.capture_args(&ctx.revdoor_url(server), &format!("{db}.t"), &start);
        let partition = i.to_string();
        a.extend(
            [
                "--on-ddl",
                "exec",
                "--shard",
                shard,
                "--partition",
                &partition,
                "--partitions",
                "2",
            ]
            .map(String::from),
        );
        captures.push(ctx.spawn(&format!("capture-{shard}"), &args(&a)));
        let mut a = ctx.apply_args(&ctx.revdoor_url(2));
        a.extend(["--partition".to_string(), partition]);
        applies.push(ctx.spawn(&format!("apply-{i}"), &args(&a)));
        origins.push(conn);
    }
    // Capture reads table definitions when it starts (docs/streams.md, "Not
    // built yet"): let both streams carry a row before the DDL.
    for (i, conn) in origins.iter_mut().enumerate() {
        conn.query_drop(format!("INSERT INTO {db}.t VALUES ({}, 1)", i * 10))
            .await
            .expect("insert");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctx.rows(2, "t").await.len() < 2 {
        assert!(Instant::now() < deadline, "first rows never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, conn) in origins.iter_mut().enumerate() {
        let id = i * 10;
        for stmt in [
            format!("ALTER TABLE {db}.t ADD COLUMN b INT NOT NULL DEFAULT 5"),
            format!("INSERT INTO {db}.t VALUES ({}, 2, 6)", id + 1),
        ] {
            conn.query_drop(&stmt)
                .await
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = ctx.rows(2, "t").await;
        if rows.len() == 4 {
            break;
        }
        for p in &mut applies {
            assert!(p.exited().is_none(), "apply died:\n{}", p.log_text());
        }
        assert!(Instant::now() < deadline, "rows on #2: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut union = ctx.rows(1, "t").await;
    union.extend(ctx.rows(3, "t").await);
    union.sort();
    assert_eq!(
        ctx.rows(2, "t").await,
        union,
        "the destination holds both origins' rows"
    );
    let mut dst = ctx.conn(2).await;
    let mut states: Vec<String> = dst
        .exec(
            "SELECT state FROM _revdoor.ddls WHERE workflow = ?",
            (&ctx.workflow,),
        )
        .await
        .expect("ddls");
    states.sort();
    assert_eq!(states, ["done by a sibling stream", "ran"], "one copy ran");
    for mut p in applies.into_iter().chain(captures) {
        p.stop(Duration::from_secs(20));
        p.assert_no_unexpected_errors(&[]);
    }
}
