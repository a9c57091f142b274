//! zonekeeper: DNS zones as Kubernetes custom resources.
pub mod api;
