//! Everything that speaks DNS: transfers, SOA queries, NOTIFY, UPDATE, TSIG.
pub mod diff;
pub mod error;
pub mod model;
pub mod notify;
pub mod query;
pub mod server;
pub mod transfer;
pub mod tsig;
pub mod update;
pub mod wire;
