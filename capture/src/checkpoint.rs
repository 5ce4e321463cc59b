//! The checkpoint capture commits in the same Kafka transaction as its events.

use crate::copy::CopyState;

/// What capture stores in `revdoor.<wf>.offsets`, in the same Kafka
/// transaction as the events it covers: the GTID position published so far
/// and, during the copy phase, the copy progress.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub position: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyState>,
}

impl Checkpoint {
    /// Parse a stored checkpoint (JSON; a bare position is accepted too).
    pub fn parse(text: &str) -> Checkpoint {
        serde_json::from_str(text).unwrap_or_else(|_| Checkpoint {
            position: text.to_string(),
            copy: None,
        })
    }

    /// The stored form.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.position.clone())
    }
}
