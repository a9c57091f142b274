//! Shared helpers for the integration tests (see README.md in this directory).

pub mod cluster;
pub mod dns_servers;
pub mod hostile;
