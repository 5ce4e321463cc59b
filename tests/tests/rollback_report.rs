//! The journal reports what really happened (issue 17): a switch whose
//! fence step fails is rolled back; when that rollback itself fails midway
//! (failpoint `switch::rollback_unfence`, once), the same live coordinator
//! takes the request up again from the journal and finishes the rollback —
//! and the outcome says so, with the original reason, instead of claiming
//! that the coordinator stopped (which it never did).

use std::time::Duration;

use revdoor_tests::door::Door;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_rollback_is_reported_as_such() {
    let ma = revdoor_tests::stack().mariadb_servers();
    assert!(ma.len() >= 2, "needs two MariaDB servers");
    let door = Door::create("rollback_report", ma[0], &[("-", ma[1])], 20).await;
    let out = door.create_workflow();
    assert!(out.ok, "workflow create: {}{}", out.stdout, out.stderr);
    let mut c1 = door.coordinator(
        "c1",
        &[(
            "FAILPOINTS",
            "switch::after_fence=1*return;switch::rollback_unfence=1*return",
        )],
    );
    let mut w1 = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(60)).await;
    door.wait_streams_running(Duration::from_secs(30)).await;

    let out = door.cutover("switch-traffic", &["--timeout", "30s"]);
    assert!(!out.ok, "the switch should fail: {}", out.stdout);
    for want in [
        "failpoint switch::after_fence",
        "the rollback was interrupted and finished by c1",
    ] {
        assert!(
            out.stderr.contains(want),
            "the outcome lacks '{want}': {}",
            out.stderr
        );
    }
    assert!(
        !out.stderr.contains("stopped or lost its leadership"),
        "c1 never stopped: {}",
        out.stderr
    );
    assert_eq!(
        door.phase(),
        "running",
        "rolled back, the phase is unchanged"
    );
    assert!(
        door.fences(door.source).await.iter().all(|(_, f)| *f == 0),
        "the source was left fenced"
    );
    // The door still turns.
    door.wait_streams_running(Duration::from_secs(30)).await;
    let out = door.cutover("switch-traffic", &["--timeout", "30s"]);
    assert!(out.ok, "switch-traffic: {}{}", out.stdout, out.stderr);
    assert_eq!(door.phase(), "switched");

    c1.stop(Duration::from_secs(10));
    w1.stop(Duration::from_secs(30));
    c1.assert_no_unexpected_errors(&["failpoint switch::"]);
    w1.assert_no_unexpected_errors(&[]);
}
