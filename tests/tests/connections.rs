//! revdoor connects exactly where a URL says (issue 18, item 3): over TCP
//! to its host and port. mysql_async's default would move a connection to
//! a local server onto the Unix socket that server reports — on a machine
//! with several servers, possibly another server's.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use revdoor_tests::door::Door;

/// The client address of every session of revdoor's account on server
/// `i`: `host:port` over TCP, `localhost` through a socket.
async fn revdoor_sessions(door: &Door, i: usize) -> Vec<String> {
    let mut c = door.ctx.conn(i).await;
    c.exec(
        "SELECT host FROM information_schema.processlist WHERE user = ?",
        (door.ctx.stack.revdoor_user.as_str(),),
    )
    .await
    .expect("processlist")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_session_is_on_tcp_as_the_url_says() {
    let door = Door::create("conns", 3, &[("-", 4)], 50).await;
    let (mut c, mut w) = door.started().await;
    // Capture's binlog and apply's sessions are open now.
    for i in [door.source, door.target[0].1] {
        let hosts = revdoor_sessions(&door, i).await;
        assert!(!hosts.is_empty(), "no revdoor session on server {i}");
        assert!(
            hosts.iter().all(|h| h.starts_with("127.0.0.1:")),
            "server {i}: revdoor sessions not all on TCP: {hosts:?}"
        );
    }
    c.stop(Duration::from_secs(10));
    w.stop(Duration::from_secs(30));
    c.assert_no_unexpected_errors(&[]);
    w.assert_no_unexpected_errors(&[]);
}
