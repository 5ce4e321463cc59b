//! `switch-traffic --fence=read-only` (whole servers move): besides the
//! moved tables' triggers, the fenced server is made read-only for everyone
//! but revdoor, and writable again when traffic returns or at `complete`.
//!
//! Its own test binary: it flips `read_only` on a shared test server, so no
//! other test may run beside it (test binaries run one after another).

use std::time::Duration;

use mysql_async::prelude::Queryable;
use revdoor_tests::door::Door;

const SOURCE: usize = 5;

/// Turns `read_only` off again even if the test fails midway.
struct Writable(String);

impl Drop for Writable {
    fn drop(&mut self) {
        revdoor_tests::admin_sql_blocking(&self.0, "SET GLOBAL read_only = OFF");
    }
}

async fn read_only(door: &Door) -> i64 {
    let mut c = door.ctx.conn(SOURCE).await;
    c.query_first("SELECT @@global.read_only")
        .await
        .expect("read")
        .unwrap_or(-1)
}

/// An application write to a table revdoor does not move.
async fn app_write(door: &Door) -> Result<(), mysql_async::Error> {
    let o = door.ctx.admin_opts(SOURCE);
    let opts: mysql_async::Opts = mysql_async::OptsBuilder::from_opts(o)
        .user(Some("app"))
        .pass(Some("app-pw"))
        .into();
    let mut c = mysql_async::Conn::new(opts).await?;
    c.query_drop(format!("INSERT INTO {}.unmoved VALUES ()", door.ctx.db))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_fence_blocks_the_whole_server_until_traffic_returns() {
    let door = Door::create("read_only", SOURCE, &[("-", 4)], 50).await;
    let _guard = Writable(door.ctx.stack.mysql[SOURCE - 1].clone());
    door.ctx
        .sql(
            SOURCE,
            &[&format!(
                "CREATE TABLE {}.unmoved (id INT AUTO_INCREMENT PRIMARY KEY)",
                door.ctx.db
            )],
        )
        .await;
    let out = door.create_workflow();
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let mut c = door.coordinator("c1", &[]);
    let mut w = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(30)).await;
    let mut writer = door.writer("writer", 1, 100);
    app_write(&door)
        .await
        .expect("the source takes writes before the switch");

    let out = door.cutover("switch-traffic", &["--fence", "read-only"]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("read_only"), "{}", out.stdout);
    assert_eq!(read_only(&door).await, 1, "the fenced server is read-only");
    let err = app_write(&door)
        .await
        .expect_err("read-only refuses the application");
    assert!(
        err.to_string().contains("read-only") || err.to_string().contains("read_only"),
        "{err}"
    );

    // Back: the server is writable again, the target is fenced by triggers.
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("reverse-traffic", &[]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        read_only(&door).await,
        0,
        "traffic returned: writable again"
    );
    app_write(&door).await.expect("writable after the reverse");

    // Again, then complete: read_only goes with the fences.
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &["--fence", "read-only"]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert_eq!(read_only(&door).await, 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = door.finish_load(&mut writer, "writer").await;
    door.wait_converged(Duration::from_secs(60)).await;
    door.check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    door.ok(&["workflow", "complete", &door.ctx.workflow]);
    assert_eq!(
        read_only(&door).await,
        0,
        "complete leaves the source writable"
    );
    refused_unknown_fence(&door);
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}

fn refused_unknown_fence(door: &Door) {
    let out = door.cutover("switch-traffic", &["--fence", "magic"]);
    assert!(
        !out.ok && out.stderr.contains("--fence magic"),
        "{}",
        out.stderr
    );
}
