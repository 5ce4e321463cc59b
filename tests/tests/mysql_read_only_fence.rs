//! `switch-traffic --fence=read-only` with MySQL as the fenced side (issue
//! 13, failure 6).
//!
//! - Without `CONNECTION_ADMIN` revdoor could set `read_only` but not apply
//!   the reverse stream under it: the switch is refused up front, in
//!   MySQL's own privilege names, with nothing fenced.
//! - With it, the server is read-only for the application and the reverse
//!   stream applies there.
//! - A stream that cannot apply (here: `super_read_only`, which no
//!   privilege passes) is reported as such by `workflow status`, never as
//!   "running", and `complete` is refused while it is stuck; it resumes by
//!   itself once the server takes writes again.
//!
//! Its own test binary: it changes the revdoor account's grants and
//! `read_only` on a shared MySQL server.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use revdoor_tests::door::Door;
use revdoor_tests::{stack, wait_for};

/// Gives the grant back and makes the server writable, even if the test
/// fails midway.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        revdoor_tests::admin_sql_blocking(
            &self.0,
            "GRANT CONNECTION_ADMIN ON *.* TO revdoor@'%'; \
                 SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF",
        );
    }
}

async fn global(door: &Door, var: &str) -> i64 {
    let mut c = door.ctx.conn(door.source).await;
    c.query_first(format!("SELECT @@global.{var}"))
        .await
        .expect("read")
        .unwrap_or(-1)
}

/// An application write to a table revdoor does not move.
async fn app_write(door: &Door) -> Result<(), mysql_async::Error> {
    let o = door.ctx.admin_opts(door.source);
    let opts: mysql_async::Opts = mysql_async::OptsBuilder::from_opts(o)
        .user(Some("app"))
        .pass(Some("app-pw"))
        .into();
    let mut c = mysql_async::Conn::new(opts).await?;
    c.query_drop(format!("INSERT INTO {}.unmoved VALUES ()", door.ctx.db))
        .await
}

/// The reverse apply stream's status record.
fn reverse_apply(door: &Door) -> serde_json::Value {
    door.status()["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|s| s["direction"] == "reverse" && s["kind"] == "apply")
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_read_only_fence_needs_connection_admin_and_reports_a_stuck_stream() {
    let my = stack().mysql_servers();
    assert!(
        my.len() >= 2,
        "needs two MySQL servers (deploy/stack up --mysql 2)"
    );
    let (source, target) = (my[1], my[0]);
    let door = Door::create("my_read_only", source, &[("-", target)], 50).await;
    let _restore = Restore(door.ctx.stack.servers[source - 1].url.clone());
    door.ctx
        .sql(
            source,
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

    // Without CONNECTION_ADMIN: refused before anything is fenced.
    door.ctx
        .sql(source, &["REVOKE CONNECTION_ADMIN ON *.* FROM revdoor@'%'"])
        .await;
    let out = door.cutover("switch-traffic", &["--fence", "read-only"]);
    assert!(!out.ok, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("CONNECTION_ADMIN") && out.stderr.contains("read-only"),
        "the refusal names MySQL's privilege: {}",
        out.stderr
    );
    assert_eq!(door.phase(), "running");
    assert_eq!(
        global(&door, "read_only").await,
        0,
        "nothing was made read-only"
    );
    assert!(
        door.fences(source)
            .await
            .iter()
            .all(|(_, fenced)| *fenced == 0),
        "no fence was installed: {:?}",
        door.fences(source).await
    );
    app_write(&door)
        .await
        .expect("the source still takes writes");

    // With it: read-only for the application, the reverse stream applies.
    door.ctx
        .sql(source, &["GRANT CONNECTION_ADMIN ON *.* TO revdoor@'%'"])
        .await;
    let mut writer = door.writer("writer", 1, 100);
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &["--fence", "read-only"]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        global(&door, "read_only").await,
        1,
        "the fenced server is read-only"
    );
    let err = app_write(&door)
        .await
        .expect_err("read-only refuses the application");
    assert!(err.to_string().contains("read-only"), "{err}");
    door.wait_streams_running(Duration::from_secs(30)).await;

    // A server that takes no writes at all: the reverse apply is not
    // "running" while it cannot apply, and resumes afterwards.
    door.ctx
        .sql(source, &["SET GLOBAL super_read_only = ON"])
        .await;
    wait_for(
        "reverse apply reported stuck",
        Duration::from_secs(60),
        || async {
            let s = reverse_apply(&door);
            let state = s["status"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let error = s["status"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Ok((state == "halted" && error.contains("super-read-only")).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    // `workflow status` lists the halted stream first, with its error and
    // what unblocks it, and exits non-zero.
    let out = door.cmd(&["workflow", "status", &door.ctx.workflow]);
    assert!(!out.ok, "status with a halted stream exits non-zero");
    let first = out
        .stdout
        .lines()
        .find(|l| l.contains(".capture.") || l.contains(".apply."))
        .unwrap_or_default();
    assert!(
        first.contains("reverse.apply.0")
            && first.contains("halted")
            && first.contains("super-read-only"),
        "the halted stream comes first, with its error:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("revdoor stream skip --workflow")
            && out.stderr.contains("1 stream(s) halted"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    // The door does not close on it (issue 17): complete is refused, naming
    // the stream, and nothing changes.
    let out = door.cmd(&["workflow", "complete", &door.ctx.workflow]);
    assert!(
        !out.ok,
        "complete on a stuck stream: {}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains("reverse.apply.0") && out.stderr.contains("--force"),
        "the refusal names the stream and the way out: {}",
        out.stderr
    );
    assert_eq!(door.phase(), "switched");
    door.ctx
        .sql(source, &["SET GLOBAL super_read_only = OFF"])
        .await;
    assert_eq!(global(&door, "read_only").await, 1, "read_only stays on");
    door.wait_streams_running(Duration::from_secs(60)).await;

    // Back, then converge and check every acknowledged write.
    let out = door.cutover("reverse-traffic", &[]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert_eq!(global(&door, "read_only").await, 0, "writable again");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = door.finish_load(&mut writer, "writer").await;
    door.wait_converged(Duration::from_secs(60)).await;
    door.check_invariants(&[door.acks_path("writer")])
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &[]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    door.ok(&["workflow", "complete", &door.ctx.workflow]);
    assert_eq!(
        global(&door, "read_only").await,
        0,
        "complete leaves the source writable"
    );
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
}
