//! The Kubernetes-free reconcile pass shared by the operator and the standalone commands.
pub mod config;
pub mod outcome;
pub mod ownership;
pub mod pass;
pub mod secondary;
pub mod sync;
pub mod validation;
