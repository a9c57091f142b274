//! Shared helpers for the integration tests (see README.md in this directory).

pub mod dns_servers;
