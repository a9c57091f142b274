//! Shared helpers for the integration tests (see README.md in this directory).

pub mod cluster;
/// The DNS server fixtures live in the `zk-fixtures` crate (tests/fixtures) so the benchmark can
/// use them too; re-exported here so test files keep their `support::dns_servers` paths.
pub use zk_fixtures::dns_servers;
pub mod hostile;
