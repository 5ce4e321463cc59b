//! Fencing tokens.
//!
//! A stream or lock owner holds a [`FenceToken`]: the etcd revision at which
//! its ownership key was created. Revisions only grow, so a later owner always
//! holds a larger token, and a write guarded by `stored_token <= mine` can
//! never come from an owner older than the newest one that wrote. Tokens are
//! compared, never computed (neon's `Generation`).

use serde::{Deserialize, Serialize};

/// The etcd create-revision of an ownership key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FenceToken(u64);

impl FenceToken {
    /// Wrap a revision read from etcd.
    pub fn from_revision(revision: i64) -> Option<Self> {
        u64::try_from(revision)
            .ok()
            .filter(|r| *r > 0)
            .map(FenceToken)
    }

    /// The token as stored in `_revdoor.stream_state.fence_token`.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for FenceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_revisions_are_tokens() {
        assert_eq!(FenceToken::from_revision(0), None);
        assert_eq!(FenceToken::from_revision(-3), None);
        let a = FenceToken::from_revision(5).expect("positive");
        let b = FenceToken::from_revision(9).expect("positive");
        assert!(a < b);
        assert_eq!(b.get(), 9);
    }
}
