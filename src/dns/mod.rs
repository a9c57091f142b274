//! Everything that speaks DNS: transfers, SOA queries, NOTIFY, UPDATE, TSIG.
pub mod error;
pub mod tsig;
