//! The no-cluster mode: manifests from files, the same engine as the operator.
pub mod changes;
pub mod commands;
pub mod demo;
pub mod import;
pub mod manifests;
pub mod plain_items;
pub mod progress;
pub mod slices;
pub mod state;
