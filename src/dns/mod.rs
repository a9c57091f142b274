//! Everything that speaks DNS. `model` and `diff` are pure (no I/O);
//! transfers, SOA queries, NOTIFY, UPDATE and TSIG do the talking.
pub mod diff;
pub mod error;
pub mod model;
pub mod notify;
pub mod outgoing;
pub mod query;
pub mod server;
pub mod transfer;
pub mod tsig;
pub mod update;
pub mod wire;
