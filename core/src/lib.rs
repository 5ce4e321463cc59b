//! `revdoor-core`: the contract every revdoor part shares — change events,
//! GTID positions, shard key ranges and keyspace ids, topic / partition /
//! etcd key names, what happens after an error (`policy`). Pure logic
//! only: no I/O lives here.

pub mod avro;
pub mod event;
pub mod fence;
pub mod gtid;
pub mod keyrange;
pub mod keyspace_id;
pub mod metrics;
pub mod names;
pub mod policy;
pub mod progress;
pub mod registry;
pub mod sqltype;
pub mod workflow;
