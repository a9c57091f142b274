//! zonekeeper: DNS zones as Kubernetes custom resources.
pub mod admission;
pub mod api;
pub mod controller;
pub mod dns;
pub mod reconcile;
pub mod standalone;
pub mod telemetry;
