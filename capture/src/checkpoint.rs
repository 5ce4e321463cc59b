//! The checkpoint capture commits in the same Kafka transaction as its events.

use revdoor_core::gtid::{GtidError, StoredPosition};

use crate::copy::CopyState;

/// What capture stores in `revdoor.<wf>.offsets`, in the same Kafka
/// transaction as the events it covers: the GTID position published so far
/// and, during the copy phase, the copy progress.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub position: StoredPosition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyState>,
}

impl Checkpoint {
    /// Parse a stored checkpoint (JSON; a bare position, the oldest form, is
    /// accepted too). A position that does not parse is an error naming it.
    pub fn parse(text: &str) -> Result<Checkpoint, GtidError> {
        match serde_json::from_str(text) {
            Ok(checkpoint) => Ok(checkpoint),
            Err(_) => Ok(Checkpoint {
                position: text.parse()?,
                copy: None,
            }),
        }
    }

    /// The stored form.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.position.to_string())
    }
}
