//! `complete` does not close the door on a broken stream (issue 17): with
//! the reverse apply halted, `workflow status` lists it first and exits 2,
//! `complete` is refused naming it, and `complete --force` completes only
//! after printing what the source will miss.

use std::time::Duration;

use revdoor_tests::door::Door;
use revdoor_tests::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complete_force_prints_what_the_source_will_miss() {
    let door = Door::create("force", 1, &[("-", 2)], 50).await;
    let (mut c, mut w) = door.started().await;
    let mut writer = door.writer("writer", 1, 100);
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &[]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    door.wait_streams_running(Duration::from_secs(30)).await;

    // The old side can no longer take the ledger's rows: the reverse apply
    // halts on a definite error while the writer goes on on the target.
    door.ctx
        .sql(
            door.source,
            &[&format!(
                "ALTER TABLE {}.ledger DROP COLUMN amount",
                door.ctx.db
            )],
        )
        .await;
    let wf = door.ctx.workflow.clone();
    wait_for("reverse apply halted", Duration::from_secs(60), || async {
        let st = door.status();
        let halted = st["streams"]
            .as_array()
            .and_then(|s| s.first())
            .is_some_and(|s| s["id"] == "reverse.apply.0" && s["status"]["state"] == "halted");
        Ok(halted.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; status: {}", door.status()));
    let status = door.cmd(&["workflow", "status", &wf]);
    assert!(!status.ok, "status exits non-zero: {}", status.stdout);
    assert!(
        status.stdout.contains("Unknown column") && status.stdout.contains("revdoor stream skip"),
        "the error and what unblocks it: {}",
        status.stdout
    );

    let out = door.cmd(&["workflow", "complete", &wf]);
    assert!(!out.ok, "complete on a halted stream: {}", out.stdout);
    assert!(
        out.stderr.contains("reverse.apply.0") && out.stderr.contains("--force"),
        "{}",
        out.stderr
    );
    assert_eq!(door.phase(), "switched");

    // Writes the source will miss keep landing on the target.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = door.cmd(&["workflow", "complete", &wf, "--force"]);
    assert!(out.ok, "complete --force: {}{}", out.stdout, out.stderr);
    eprintln!("complete --force printed:\n{}{}", out.stderr, out.stdout);
    let missing = out
        .stdout
        .lines()
        .find(|l| l.contains("from target shard -:"))
        .unwrap_or_else(|| panic!("what the source misses: {}", out.stdout));
    let n: u64 = missing
        .split("up to ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count of missing transactions: {missing}"));
    assert!(n > 0, "{missing}");
    assert!(
        out.stdout.contains("reverse.apply.0 (halted: "),
        "{}",
        out.stdout
    );
    assert_eq!(door.phase(), "completed");

    let _ = door.finish_load(&mut writer, "writer").await;
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
    c.assert_no_unexpected_errors(&[]);
    w.assert_no_unexpected_errors(&["Unknown column", "stream stopped"]);
}
