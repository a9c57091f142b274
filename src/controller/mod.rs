//! The Kubernetes side: reconcilers, status bookkeeping, snapshots, leader election.
pub mod api_error;
pub mod context;
pub mod deletion;
pub mod dns_zone;
pub mod events;
pub mod leader;
pub mod operator;
pub mod outgoing;
pub mod outgoing_store;
pub mod owner;
pub mod ownership_store;
pub mod references;
pub mod snapshot;
pub mod status;
pub mod zone_lock;
pub mod zone_sync;
pub mod zone_syncs;
