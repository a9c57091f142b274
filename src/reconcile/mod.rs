//! The Kubernetes-free reconcile pass shared by the operator and the standalone commands.
pub mod config;
pub mod outcome;
pub mod outgoing;
pub mod ownership;
pub mod pass;
pub mod reason;
pub mod secondary;
pub mod snapshot;
pub mod soa;
pub mod status;
pub mod sync;
pub mod validation;
pub mod zone;
