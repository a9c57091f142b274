//! The Kubernetes side: reconcilers, status bookkeeping, leader election.
pub mod leader;
pub mod status;
