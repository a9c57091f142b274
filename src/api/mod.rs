//! The custom resource types. No I/O here: these become the CRDs (`zonekeeper crd`).
pub mod crd;
pub mod dns_zone;
pub mod schema;
pub mod shared;
pub mod zone_sync;

pub use dns_zone::{DnsZone, DnsZoneSpec, DnsZoneStatus};
pub use zone_sync::{ZoneSync, ZoneSyncSpec, ZoneSyncStatus};
