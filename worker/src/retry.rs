//! The retry loops of a stream, both decided by `revdoor_core::policy`.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use revdoor_capture::{Capture, CaptureConfig, CaptureError};
use revdoor_core::metrics::Errors;
use revdoor_core::policy::{decide, Backoff, Classify, Decision};
use revdoor_core::progress::Progress;
use tokio_util::sync::CancellationToken;

/// Transient errors of a running stream: 100 ms, doubling up to 10 s.
const STREAM_RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));

/// An attempt that ran this long was healthy: the error that ends it is
/// retried from the first delay again (issue 18 item 6: after a few blips
/// every later one cost the full 10 s).
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Opening a capture: every second.
const OPEN_RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));

/// Run `attempt` again after each error the policy retries (reported in
/// `progress` until the stream gets somewhere again; every error met is
/// counted in `errors`), the backoff starting again after an attempt that
/// ran [`HEALTHY_RUN`]; stop when it
/// succeeds, when `cancel` fires during a wait (`Ok`), or with the error
/// the policy halts or stops on.
pub(crate) async fn with_retries<F, Fut, E>(
    name: &str,
    cancel: &CancellationToken,
    progress: &Progress,
    errors: &Errors,
    mut attempt: F,
) -> Result<(), E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display + Classify,
{
    let mut backoff = STREAM_RETRY;
    loop {
        let began = tokio::time::Instant::now();
        let Err(e) = attempt().await else {
            return Ok(());
        };
        if began.elapsed() >= HEALTHY_RUN {
            backoff.reset();
        }
        if !cancel.is_cancelled() {
            errors.count(e.kind());
        }
        match decide(e.kind(), cancel.is_cancelled(), &mut backoff) {
            Decision::Retry(after) => {
                tracing::warn!(stream = name, error = %e, retry_in = ?after, "transient error");
                progress.retrying(e.to_string());
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(after) => {}
                }
            }
            Decision::Halt | Decision::Stop => return Err(e),
        }
    }
}

/// Open a capture (fencing earlier owners), retrying transient errors;
/// `None` when cancelled first.
pub(crate) async fn open_capture(
    cfg: CaptureConfig,
    cancel: &CancellationToken,
    errors: &Errors,
) -> Result<Option<Capture>, CaptureError> {
    let progress = std::sync::Arc::clone(&cfg.progress);
    let name = cfg.id.transactional_id();
    let mut backoff = OPEN_RETRY;
    loop {
        let e = match Capture::open(cfg.clone()).await {
            Ok(c) => return Ok(Some(c)),
            Err(e) => e,
        };
        let shutdown = cancel.is_cancelled();
        if !shutdown {
            errors.count(e.kind());
        }
        match decide(e.kind(), shutdown, &mut backoff) {
            Decision::Retry(after) => {
                tracing::warn!(stream = %name, error = %e, "open capture; retrying");
                progress.retrying(format!("open capture: {e}"));
                tokio::time::sleep(after).await;
            }
            Decision::Stop if shutdown => return Ok(None),
            Decision::Halt | Decision::Stop => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use revdoor_core::policy::ErrorKind;

    struct Failure(ErrorKind);

    impl Classify for Failure {
        fn kind(&self) -> ErrorKind {
            self.0
        }
    }

    impl Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    /// Fails with `kinds` in turn, then succeeds; counts the attempts.
    async fn run(
        kinds: &[ErrorKind],
        cancel: &CancellationToken,
    ) -> (Result<(), ErrorKind>, usize) {
        let attempts = AtomicUsize::new(0);
        let errors = Errors::new("test", "forward");
        let result = with_retries("test", cancel, &Progress::default(), &errors, || {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            let r = kinds.get(n).map_or(Ok(()), |k| Err(Failure(*k)));
            async move { r }
        })
        .await;
        (result.map_err(|e| e.0), attempts.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_backoff() {
        let start = tokio::time::Instant::now();
        let transient = [ErrorKind::Transient; 3];
        let (result, attempts) = run(&transient, &CancellationToken::new()).await;
        assert_eq!((result, attempts), (Ok(()), 4));
        assert_eq!(start.elapsed(), Duration::from_millis(100 + 200 + 400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_run_starts_the_backoff_again() {
        // Three quick failures (100, 200, 400 ms), then a run that lasts
        // before failing: the next wait is the first delay, not 800 ms.
        let attempts = AtomicUsize::new(0);
        let waits = std::sync::Mutex::new(Vec::new());
        let last = std::sync::Mutex::new(tokio::time::Instant::now());
        let cancel = CancellationToken::new();
        let errors = Errors::new("test", "forward");
        let result = with_retries("test", &cancel, &Progress::default(), &errors, || {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            let now = tokio::time::Instant::now();
            if n > 0 {
                let mut l = last.lock().expect("lock");
                waits.lock().expect("lock").push(now - *l);
                *l = now;
            }
            async move {
                if n == 3 {
                    tokio::time::sleep(HEALTHY_RUN).await;
                }
                match n {
                    0..=4 => Err(Failure(ErrorKind::Transient)),
                    _ => Ok(()),
                }
            }
        })
        .await;
        assert!(result.is_ok());
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(
            *waits.lock().expect("lock"),
            vec![ms(100), ms(200), ms(400), HEALTHY_RUN + ms(100), ms(200)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn definite_and_fenced_errors_end_the_run() {
        let cancel = CancellationToken::new();
        for kind in [ErrorKind::Definite, ErrorKind::Fenced] {
            let (result, attempts) = run(&[ErrorKind::Transient, kind], &cancel).await;
            assert_eq!((result, attempts), (Err(kind), 2));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_a_retry_wait_ends_quietly() {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.cancel();
        });
        let (result, attempts) = run(&[ErrorKind::Transient; 5], &cancel).await;
        assert_eq!((result, attempts), (Ok(()), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_after_shutdown_is_not_retried() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let (result, attempts) = run(&[ErrorKind::Transient], &cancel).await;
        assert_eq!((result, attempts), (Err(ErrorKind::Transient), 1));
    }
}
