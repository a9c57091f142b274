//! The no-cluster mode: manifests from files, the same engine as the operator.
pub mod manifests;
