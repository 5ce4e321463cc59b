//! What happens after an error: one policy for every stream.
//!
//! Each crate's error says which [`ErrorKind`] it is ([`Classify`]);
//! [`decide`] turns the kind into what the loop running the stream does
//! next; a [`Backoff`] spaces the retries.
//!
//! | kind | shutdown requested | decision |
//! | --- | --- | --- |
//! | transient | no | [`Decision::Retry`] after the backoff's next delay |
//! | definite | no | [`Decision::Halt`]: the stream stops with the error, for an operator to act on |
//! | fenced | no | [`Decision::Stop`]: a newer owner has the stream; never retried |
//! | any | yes | [`Decision::Stop`] |

use std::time::Duration;

/// What kind of error a stream met, by what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The data or the configuration is wrong: retrying cannot help.
    Definite,
    /// I/O, connection, deadlock, broker or leader change: retrying may.
    Transient,
    /// A newer owner has the stream: this one must not write again.
    Fenced,
}

/// Implemented by each crate's error to say its kind.
pub trait Classify {
    fn kind(&self) -> ErrorKind;
}

/// What the loop running a stream does after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long.
    Retry(Duration),
    /// Stop the stream with the error: someone must fix the data or the
    /// configuration.
    Halt,
    /// Stop without retrying: shutdown was requested, or the stream has a
    /// newer owner.
    Stop,
}

/// The one place that decides what follows an error of `kind`; a retry
/// takes `backoff`'s next delay.
pub fn decide(kind: ErrorKind, shutdown: bool, backoff: &mut Backoff) -> Decision {
    match kind {
        _ if shutdown => Decision::Stop,
        ErrorKind::Transient => Decision::Retry(backoff.next_delay()),
        ErrorKind::Definite => Decision::Halt,
        ErrorKind::Fenced => Decision::Stop,
    }
}

/// Capped exponential backoff: `first`, twice that, … up to `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Delays from `first` doubling up to `max` (`first` is capped too).
    pub const fn new(first: Duration, max: Duration) -> Self {
        let first = if first.as_nanos() > max.as_nanos() {
            max
        } else {
            first
        };
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the one after is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = now.saturating_mul(2).min(self.max);
        now
    }

    /// Start again from the first delay.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn decision_table() {
        use Decision::*;
        use ErrorKind::*;
        let mut b = Backoff::new(100 * MS, 10_000 * MS);
        assert_eq!(decide(Transient, false, &mut b), Retry(100 * MS));
        assert_eq!(decide(Definite, false, &mut b), Halt);
        assert_eq!(decide(Fenced, false, &mut b), Stop);
        for kind in [Transient, Definite, Fenced] {
            assert_eq!(decide(kind, true, &mut b), Stop, "{kind:?} at shutdown");
        }
        // Only retries use up a delay.
        assert_eq!(decide(Transient, false, &mut b), Retry(200 * MS));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::new(100 * MS, 1_000 * MS);
        let delays: Vec<Duration> = (0..7).map(|_| b.next_delay()).collect();
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
    }

    #[test]
    fn a_constant_backoff_and_a_first_delay_above_the_cap() {
        let mut same = Backoff::new(1_000 * MS, 1_000 * MS);
        assert_eq!(same.next_delay(), 1_000 * MS);
        assert_eq!(same.next_delay(), 1_000 * MS);
        let mut capped = Backoff::new(5_000 * MS, 1_000 * MS);
        assert_eq!(capped.next_delay(), 1_000 * MS);
        let mut huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.next_delay(), Duration::MAX);
        assert_eq!(huge.next_delay(), Duration::MAX);
    }

    #[test]
    fn reset_starts_again_from_the_first_delay() {
        let mut b = Backoff::new(2_000 * MS, 30_000 * MS);
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), 30_000 * MS);
        b.reset();
        assert_eq!(b.next_delay(), 2_000 * MS);
        assert_eq!(b.next_delay(), 4_000 * MS);
    }
}
