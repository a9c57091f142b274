//! zonekeeper: DNS zones as Kubernetes custom resources.
pub mod api;
pub mod dns;
