//! The Kubernetes side: reconcilers, status bookkeeping, snapshots, leader election.
pub mod context;
pub mod dns_zone;
pub mod leader;
pub mod operator;
pub mod snapshot;
pub mod status;
pub mod zone_sync;
