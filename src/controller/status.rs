//! The one Kubernetes write of status: server-side apply under zonekeeper's field manager.
//! What goes into a status is computed in `reconcile::status` and `reconcile::outcome`.

use kube::{Resource, ResourceExt};

use crate::api::dns_zone::HistoryEntry;
use crate::api::{DnsZone, DnsZoneStatus};
use crate::reconcile::status::push_history;

pub use crate::reconcile::status::FIELD_MANAGER;

/// Writes an object's whole status with server-side apply under [`FIELD_MANAGER`]. The whole
/// status every time: fields an apply omits would be dropped from the manager's set. Returns
/// the resourceVersion of the object as written.
pub async fn apply_status<K>(
    api: &kube::Api<K>,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<Option<String>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            name,
            &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
            &kube::api::Patch::Apply(&patch),
        )
        .await?;
    Ok(written.resource_version())
}

/// A DnsZone status as written.
#[derive(Debug)]
pub struct ZoneStatusWrite {
    /// The resourceVersion of the object the status was computed against.
    pub from: Option<String>,
    pub status: DnsZoneStatus,
    /// The object's resourceVersion after the write.
    pub written: Option<String>,
}

/// How many times a history write is tried against a changed object before the reconcile
/// fails (and is retried with backoff).
const HISTORY_WRITE_ATTEMPTS: usize = 3;

/// Writes a DnsZone's status computed from `base` (the status the reconcile started from).
/// A status that adds history entries is written only onto the object version it was
/// computed from (`resourceVersion` in the apply), so a stale cache cannot drop an entry
/// another writer added; on a conflict the object is read again, the new entries are put on
/// top of its history and the write is tried again.
pub async fn write_zone_status(
    api: &kube::Api<DnsZone>,
    zone: &DnsZone,
    base: &DnsZoneStatus,
    status: &DnsZoneStatus,
) -> Result<ZoneStatusWrite, kube::Error> {
    let name = zone.name_any();
    let added: Vec<&HistoryEntry> = status
        .history
        .iter()
        .filter(|e| !base.history.iter().any(|b| b.id == e.id))
        .collect();
    if added.is_empty() {
        let written = apply_status(api, &name, status).await?;
        return Ok(ZoneStatusWrite {
            from: zone.resource_version(),
            status: status.clone(),
            written,
        });
    }
    let mut version = zone.resource_version();
    let mut writing = status.clone();
    let mut attempt = 1;
    loop {
        let patch = serde_json::json!({
            "apiVersion": DnsZone::api_version(&()),
            "kind": DnsZone::kind(&()),
            "metadata": {"resourceVersion": version},
            "status": &writing,
        });
        let result = api
            .patch_status(
                &name,
                &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
                &kube::api::Patch::Apply(&patch),
            )
            .await;
        match result {
            Ok(written) => {
                return Ok(ZoneStatusWrite {
                    from: version,
                    status: writing,
                    written: written.resource_version(),
                });
            }
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < HISTORY_WRITE_ATTEMPTS => {
                attempt += 1;
                let fresh = api.get(&name).await?;
                tracing::info!(
                    zone = %zone.spec.zone_name,
                    server = %zone.spec.backend.server,
                    attempt,
                    "status changed since it was read; history write retried on the current object"
                );
                let mut history = fresh.status.clone().unwrap_or_default().history;
                for entry in added.iter().rev() {
                    if !history.iter().any(|h| h.id == entry.id) {
                        push_history(&mut history, (*entry).clone(), zone.spec.history_limit);
                    }
                }
                writing = DnsZoneStatus {
                    history,
                    ..status.clone()
                };
                version = fresh.resource_version();
            }
            Err(e) => return Err(e),
        }
    }
}
