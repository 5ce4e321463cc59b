//! Coordinator: the workflow registry and state machine in etcd, leader
//! election, stream assignment and the fenced cutover (DESIGN §6).
//!
//! So far: [`lock::LeaseLock`], the lease-backed lock with fencing tokens that
//! leader election, stream ownership and the workflow lock are built on.

pub mod lock;
