//! The lease-backed lock against the real etcd.

use std::time::Duration;

use revdoor_coordinator::lock::{current_holder, LeaseLock};
use revdoor_tests::{wait_for, TestCtx};

#[tokio::test]
async fn lock_is_exclusive_released_and_fenced_by_revision() {
    let ctx = TestCtx::new("etcd_lock");
    let etcd = ctx.etcd().await;
    let key = format!("{}revdoor/locks/wf", ctx.etcd_prefix);
    let ttl = Duration::from_secs(5);

    let a = LeaseLock::try_acquire(&etcd, &key, "holder-a", ttl)
        .await
        .expect("etcd")
        .expect("free lock");
    assert_eq!(current_holder(&etcd, &key).await.expect("read"), "holder-a");
    assert!(
        LeaseLock::try_acquire(&etcd, &key, "holder-b", ttl)
            .await
            .expect("etcd")
            .is_none(),
        "a held lock cannot be taken"
    );
    let err = LeaseLock::acquire(&etcd, &key, "holder-b", ttl, Duration::from_millis(300))
        .await
        .err()
        .expect("times out while held");
    assert!(
        err.to_string().contains("holder-a"),
        "timeout names the holder: {err}"
    );

    let token_a = a.token();
    a.release().await.expect("release");
    let b = LeaseLock::acquire(&etcd, &key, "holder-b", ttl, Duration::from_secs(5))
        .await
        .expect("free again");
    assert!(
        b.token() > token_a,
        "a later holder has a larger fencing token ({} > {token_a})",
        b.token()
    );
    assert_eq!(current_holder(&etcd, &key).await.expect("read"), "holder-b");
    b.release().await.expect("release");
    assert_eq!(
        current_holder(&etcd, &key).await.expect("read"),
        "",
        "released lock leaves no key"
    );
}

#[tokio::test]
async fn lock_expires_when_its_holder_stops_renewing() {
    let ctx = TestCtx::new("etcd_lock_expiry");
    let etcd = ctx.etcd().await;
    let key = format!("{}revdoor/locks/expiry", ctx.etcd_prefix);
    let a = LeaseLock::try_acquire(&etcd, &key, "holder-a", Duration::from_secs(2))
        .await
        .expect("etcd")
        .expect("free");
    let token_a = a.token();
    // Held across several TTLs while renewing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        current_holder(&etcd, &key).await.expect("read"),
        "holder-a",
        "renewal keeps the lock"
    );
    assert!(!a.lost().is_cancelled());
    // Dropping stops renewal without revoking: the lease must run out by itself.
    drop(a);
    let b = wait_for("lease to expire", Duration::from_secs(15), || async {
        Ok(LeaseLock::try_acquire(&etcd, &key, "holder-b", Duration::from_secs(2)).await?)
    })
    .await
    .expect("lock free after TTL");
    assert!(b.token() > token_a);
    b.release().await.expect("release");
}
