//! The no-cluster mode: manifests from files, the same engine as the operator.
pub mod commands;
pub mod demo;
pub mod manifests;
pub mod state;
