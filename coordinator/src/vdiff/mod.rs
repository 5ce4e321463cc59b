//! VDiff (DESIGN §7): prove that the destination of a workflow's active
//! direction holds exactly the rows of its origin, at one consistent point,
//! while the workflow runs.
//!
//! # Consistent point
//!
//! 1. Every apply stream of the active direction is asked to hold
//!    (`_revdoor.holds` on its destination, `hold_gtid = ''`: apply nothing
//!    more). Apply reads its hold before each group it applies, so from
//!    here on nothing it applies was committed on the origin after now.
//! 2. Each origin shard opens a consistent snapshot and reads its GTID
//!    position `X` (MariaDB: `Binlog_snapshot_file/position` →
//!    `BINLOG_GTID_POS`, no lock; MySQL, which exposes no snapshot's
//!    position: a moment of `FLUSH TABLES WITH READ LOCK`, waiting at most
//!    [`ORIGIN_LOCK_WAIT`] for running statements; how long it blocked the
//!    origin's writes is recorded, `Pause::origin_locks`).
//! 3. Each hold becomes "up to `X` of the stream's origin"; a mark on each
//!    origin makes capture heartbeat at once. Each apply stream applies the
//!    rest of `X` and reports `held_gtid = X` when the next thing it sees is
//!    outside `X` (a transaction or a heartbeat past it).
//! 4. Each destination opens a consistent snapshot; the holds are deleted.
//!    The pause (1 → 4) is reported. A hold expires by itself after
//!    [`HOLD_TTL`], so a vdiff killed in between never wedges a stream.
//!
//! # Comparison
//!
//! Table by table in primary-key order, in chunks of `chunk_rows` rows (per
//! origin shard): a checksum of the chunk on every origin and every
//! destination shard (`COUNT`, and two 64-bit `BIT_XOR`s of the first 128
//! bits of each row's `SHA2(…, 256)` — MySQL 9.6 removed `MD5()`), over a
//! row text both engines print alike for equal values (`vdiff::table` docs),
//! combined per side; equal → the chunk matches. Otherwise the chunk's
//! rows are read from every shard and merged by key: missing on the
//! target, extra on the target, different. A table with a JSON column (on
//! either side) skips the checksum: every chunk's rows are read and merged,
//! the documents compared by value (`vdiff::json`) — its rows cross the network
//! from both sides, so it is compared at the rate of the row merge, not of
//! the servers' checksums. With several destination
//! shards every destination row's keyspace id is checked too: a row on a
//! shard that does not own it is "wrong shard" (counted per copy; the data
//! comparison uses the copy on the right shard if there is one).
//!
//! # The comparison rule (collation-aware, value-exact)
//!
//! Two values are equal when they are the same value, whatever the
//! columns' character sets and collations: strings are compared as the
//! characters they hold (both sides converted to utf8mb4, so a latin1 `é`
//! equals a utf8mb4 `é`), binary strings byte for byte, numbers and
//! temporal values by their exact text (FLOAT and DOUBLE by their bits),
//! JSON documents by value — whitespace and key order ignored, numbers by
//! exact numeric value (`0.50` = `0.5`, `1` = `1.0`), a number never equal
//! to a string (`vdiff::json` docs). A difference a collation would
//! hide is reported: `'abc'` vs `'ABC'` under a case-insensitive
//! collation, and `'abc'` vs `'abc '` in a `VARCHAR` (PAD SPACE collations
//! ignore trailing spaces in comparisons, but replication must keep them)
//! are "different". Rows are matched by primary key under the key's own
//! collation (the order `ORDER BY` gives), so rows keyed `'a'` and `'A'` in a
//! case-insensitive key are the same row, reported as different values.
//!
//! # State
//!
//! The record (`workflows/<wf>/vdiffs/<id>`) holds the report and the
//! resume point (table, last key compared), written after every chunk in
//! one etcd put; a vdiff killed midway resumes from there with a new
//! consistent point (`vdiff resume`). The running process holds
//! `workflows/<wf>/vdiff_runs/<id>` under a lease.

mod compare;
mod json;
mod point;
mod record;
mod run;
mod table;

pub use point::{HOLD_TTL, ORIGIN_LOCK_WAIT};
pub use record::{
    create, get, list, stop, KeyPart, Pause, Sample, TableReport, VdiffOptions, VdiffRecord,
    VdiffState, SAMPLES_PER_KIND,
};
pub use run::{run, RUN_LEASE_TTL};

use revdoor_core::names::WorkflowName;
use revdoor_core::workflow::{WorkflowSpec, WorkflowState};

use crate::registry::Registry;
use crate::shard::redact;
use crate::Error;

fn sql(what: &str, url: &str) -> impl FnOnce(mysql_async::Error) -> Error {
    let msg = format!("{what} on {}", redact(url));
    move |e| Error::Sql(format!("{msg}: {e}"))
}

/// A workflow's spec and state.
async fn workflow_records(
    reg: &Registry,
    workflow: &WorkflowName,
) -> Result<(WorkflowSpec, WorkflowState), Error> {
    let spec: WorkflowSpec = reg
        .value(&reg.prefix.workflow_spec(workflow))
        .await?
        .ok_or_else(|| Error::Refused(format!("workflow {workflow} does not exist")))?;
    let state: WorkflowState = reg
        .value(&reg.prefix.workflow_state(workflow))
        .await?
        .ok_or_else(|| Error::Refused(format!("workflow {workflow} has no state")))?;
    Ok((spec, state))
}
