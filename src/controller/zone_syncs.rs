//! What the DnsZone controller reads from and asks of ZoneSyncs: finished syncs recorded in
//! the zone's own status (history, `latestSync`, serial), and the scheduled drift check that
//! requests a sync when the backend's serial moved without zonekeeper.
//!
//! Everything here derives from the ZoneSync objects (the controller's reflector store), so a
//! restarted operator records exactly what the one before it left unrecorded.

use std::collections::BTreeMap;

use kube::api::{Api, PostParams};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};

use super::owner::controller_ref;
use super::snapshot::ConfigMapStore;
use super::zone_lock::ZoneLocks;
use super::zone_sync::is_finished;
use crate::api::dns_zone::HistoryEntry;
use crate::api::shared::{ChangeStatus, ChangeType};
use crate::api::zone_sync::SyncPhase;
use crate::api::{DnsZone, DnsZoneStatus, ZoneSync};
use crate::dns::model::Zone;
use crate::reconcile::snapshot::SnapshotStore;
use crate::reconcile::status::{self, push_history};

/// The userId of syncs the operator's scheduled drift check creates.
pub const SCHEDULED_USER: &str = "zonekeeper";
/// Change lines of a sync copied into the zone's history entry.
const SAMPLE_LINES: usize = 10;

/// The ZoneSyncs of `zone` in the store.
fn syncs_of(store: &Store<ZoneSync>, zone: &DnsZone) -> Vec<std::sync::Arc<ZoneSync>> {
    let ns = zone.namespace();
    let name = zone.name_any();
    store
        .state()
        .into_iter()
        .filter(|s| s.namespace() == ns && s.spec.zone_ref.name == name)
        .collect()
}

/// Whether a sync of the zone has not ended yet (it is pending or running).
pub fn has_unfinished(store: &Store<ZoneSync>, zone: &DnsZone) -> bool {
    syncs_of(store, zone)
        .iter()
        .any(|s| !is_finished(s.status.as_ref().and_then(|st| st.phase)))
}

/// Whether a sync of the zone is transferring (its object says Syncing): the zone is
/// read-only until that sync's final status arrives.
pub fn is_running(store: &Store<ZoneSync>, zone: &DnsZone) -> bool {
    syncs_of(store, zone)
        .iter()
        .any(|s| s.status.as_ref().and_then(|st| st.phase) == Some(SyncPhase::Syncing))
}

/// Records every complete, stored (not dry-run) sync of the zone the status does not hold
/// yet, oldest first. A sync is recorded once: its id is in the history, or it ended before
/// the newest recorded sync (then it was recorded and has since dropped out of the capped
/// history). Returns whether anything was recorded.
pub fn record_finished(
    store: &Store<ZoneSync>,
    zone: &DnsZone,
    status: &mut DnsZoneStatus,
) -> bool {
    let mut done: Vec<_> = syncs_of(store, zone)
        .into_iter()
        .filter(|s| !s.spec.dry_run)
        .filter_map(|s| {
            let st = s.status.clone()?;
            (st.phase == Some(SyncPhase::Complete)).then_some(())?;
            Some((st.completed_at.clone()?, s.name_any(), st))
        })
        .collect();
    done.sort_by(|a, b| (a.0.0, &a.1).cmp(&(b.0.0, &b.1)));
    let mut recorded = false;
    for (completed, name, st) in done {
        let Some(id) = st.id.clone() else { continue };
        if status.history.iter().any(|h| h.id == id)
            || status
                .latest_sync
                .as_ref()
                .is_some_and(|l| completed.0 < l.0)
        {
            continue;
        }
        let summary = st.summary.clone().unwrap_or_default();
        let synced = st.zone.clone().unwrap_or_default();
        push_history(
            &mut status.history,
            HistoryEntry {
                id,
                change_type: ChangeType::Sync,
                status: ChangeStatus::Complete,
                user_id: st.user_id.clone(),
                created: completed.clone(),
                serial_before: synced.serial_before,
                serial_after: synced.serial_after,
                added: summary.added,
                updated: summary.updated,
                deleted: summary.deleted,
                sample: st.changes.iter().take(SAMPLE_LINES).cloned().collect(),
                zone_sync_ref: Some(name),
                message: st.message.clone(),
            },
            zone.spec.history_limit,
        );
        status.latest_sync = Some(completed);
        if synced.serial_after.is_some() {
            status.serial = synced.serial_after;
        }
        recorded = true;
    }
    recorded
}

/// The scheduled drift check, run after a successful pass of a primary zone with
/// `spec.sync.interval` set. The pass's own SOA query is the check: when the serial it found
/// is the one zonekeeper recorded last (`recorded`), nothing more happens — no request, no
/// write. When the serial moved without zonekeeper, a ZoneSync is created (userId
/// `zonekeeper`) so the change is recorded like any other sync. A zone never synced gets the
/// zone as the controller saw it before (`baseline`) as the sync's starting point, so the
/// sync reports what changed rather than the whole zone. Failures are logged and retried at
/// the next move; they never fail the pass.
pub async fn drift_check(
    client: &kube::Client,
    syncs: &Store<ZoneSync>,
    zone: &DnsZone,
    recorded: Option<i64>,
    observed: u32,
    baseline: Option<std::sync::Arc<Zone>>,
) {
    let Some(recorded) = recorded else { return };
    if recorded == i64::from(observed) || has_unfinished(syncs, zone) {
        return;
    }
    let ns = zone.namespace().unwrap_or_default();
    if let Some(baseline) = baseline.filter(|b| b.soa_serial().map(i64::from) == Some(recorded)) {
        let store = ConfigMapStore {
            api: Api::namespaced(client.clone(), &ns),
            zone_object: zone.name_any(),
            owner: controller_ref(zone),
        };
        match store.pointer().await {
            Ok(None) => {
                if let Err(e) = store.save_first(&baseline).await {
                    tracing::warn!(error = %e, "drift check: storing the baseline failed");
                }
            }
            Ok(Some(_)) => {}
            Err(e) => tracing::warn!(error = %e, "drift check: snapshot pointer unreadable"),
        }
    }
    match create_scheduled(client, zone).await {
        Ok(name) => tracing::info!(
            zone_sync = %name,
            observed,
            recorded,
            "drift check: the backend's serial moved without zonekeeper; sync requested"
        ),
        Err(e) => tracing::warn!(error = %e, "drift check: creating a ZoneSync failed"),
    }
}

/// Stores the baseline (the zone as the DnsZone controller saw it, while it was never synced)
/// as the zone's snapshot, so a first sync after an operator restart still reports what
/// changed since zonekeeper's last look, not the whole zone. Only a baseline at the serial
/// the status recorded is stored (one seen after an out-of-band move is what the next sync
/// must report, not its starting point), and only once per serial: an unchanged pass costs
/// no API call; the first pass after a restart one GET. Failures are logged, never fatal.
pub async fn persist_baseline(
    client: &kube::Client,
    locks: &ZoneLocks,
    zone: &DnsZone,
    baseline: &Zone,
    recorded: Option<i64>,
    zonekeeper_wrote: bool,
) {
    let Some(serial) = baseline.soa_serial() else {
        return;
    };
    let key = format!(
        "{}/{}",
        zone.namespace().unwrap_or_default(),
        zone.name_any()
    );
    if recorded != Some(i64::from(serial)) || locks.persisted_baseline(&key) == Some(serial) {
        return;
    }
    let store = ConfigMapStore {
        api: Api::namespaced(client.clone(), &zone.namespace().unwrap_or_default()),
        zone_object: zone.name_any(),
        owner: controller_ref(zone),
    };
    let saved = match store.stored().await {
        Ok(Some(s)) if s.serial == Some(serial) => {
            locks.set_persisted_baseline(&key, serial);
            return;
        }
        // A stored baseline moves only with zonekeeper's own changes: a serial that moved
        // without zonekeeper is drift, which the first sync must report, not absorb.
        Ok(Some(_)) if !zonekeeper_wrote => return,
        Ok(Some(_)) => store.save(baseline).await,
        Ok(None) => store.save_first(baseline).await,
        Err(e) => {
            tracing::warn!(error = %e, "snapshot pointer unreadable");
            return;
        }
    };
    match saved {
        Ok(()) => locks.set_persisted_baseline(&key, serial),
        Err(e) => tracing::warn!(error = %e, "storing the sync baseline failed"),
    }
}

/// Creates a ZoneSync for the scheduled drift check, attributed to zonekeeper.
async fn create_scheduled(client: &kube::Client, zone: &DnsZone) -> Result<String, kube::Error> {
    let ns = zone.namespace().unwrap_or_default();
    let api: Api<ZoneSync> = Api::namespaced(client.clone(), &ns);
    let annotations = BTreeMap::from([(
        status::REQUESTED_BY_ANNOTATION.to_string(),
        SCHEDULED_USER.to_string(),
    )]);
    let obj: ZoneSync = serde_json::from_value(serde_json::json!({
        "apiVersion": ZoneSync::api_version(&()),
        "kind": ZoneSync::kind(&()),
        "metadata": {
            "generateName": format!("{}-sync-", zone.name_any()),
            "namespace": ns,
            "annotations": annotations,
        },
        "spec": {"zoneRef": {"name": zone.name_any()}, "method": "Auto"},
    }))
    .map_err(kube::Error::SerdeError)?;
    let created = api.create(&PostParams::default(), &obj).await?;
    Ok(created.name_any())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    use super::*;

    fn zone(history_limit: i32) -> DnsZone {
        let mut z: DnsZone = serde_json::from_value(serde_json::json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
            "metadata": {"name": "z", "namespace": "ns"},
            "spec": {"zoneName": "example.com.", "type": "Primary", "backend": {"server": "127.0.0.1:53"}},
        }))
        .unwrap();
        z.spec.history_limit = history_limit;
        z
    }

    fn sync(name: &str, zone: &str, id: &str, second: i64, phase: &str, dry_run: bool) -> ZoneSync {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "ZoneSync",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"zoneRef": {"name": zone}, "dryRun": dry_run},
            "status": {
                "id": id, "type": "Sync", "phase": phase, "userId": "alice",
                "completedAt": Time(Timestamp::from_second(second).unwrap()),
                "zone": {"name": "example.com.", "serialBefore": second, "serialAfter": second + 1},
                "summary": {"added": 2, "updated": 0, "deleted": 1, "unchanged": 0, "total": 3},
                "changes": ["+ a.example.com. 300 IN A 192.0.2.1"],
            },
        }))
        .unwrap()
    }

    fn store_of(syncs: Vec<ZoneSync>) -> Store<ZoneSync> {
        let (store, mut writer) = reflector::store();
        for s in syncs {
            writer.apply_watcher_event(&Event::Apply(s));
        }
        store
    }

    #[test]
    fn complete_stored_syncs_of_the_zone_are_recorded_once_oldest_first() {
        let store = store_of(vec![
            sync("s2", "z", "id2", 200, "Complete", false),
            sync("s1", "z", "id1", 100, "Complete", false),
            sync("dry", "z", "id3", 300, "Complete", true),
            sync("failed", "z", "id4", 300, "Failed", false),
            sync("other", "y", "id5", 300, "Complete", false),
        ]);
        let mut status = DnsZoneStatus::default();
        assert!(record_finished(&store, &zone(20), &mut status));
        let ids: Vec<_> = status.history.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(
            ids,
            ["id2", "id1"],
            "newest first, only complete stored syncs of z"
        );
        let newest = &status.history[0];
        assert_eq!(newest.change_type, ChangeType::Sync);
        assert_eq!(newest.zone_sync_ref.as_deref(), Some("s2"));
        assert_eq!((newest.added, newest.deleted), (2, 1));
        assert_eq!(newest.user_id.as_deref(), Some("alice"));
        assert_eq!(status.serial, Some(201));
        assert_eq!(
            status.latest_sync.as_ref().map(|t| t.0.as_second()),
            Some(200)
        );

        // Again, as after a restart: nothing new.
        assert!(!record_finished(&store, &zone(20), &mut status));
        assert_eq!(status.history.len(), 2);
    }

    #[test]
    fn a_sync_that_left_the_capped_history_is_not_recorded_again() {
        let store = store_of(vec![
            sync("s1", "z", "id1", 100, "Complete", false),
            sync("s2", "z", "id2", 200, "Complete", false),
        ]);
        let mut status = DnsZoneStatus::default();
        assert!(record_finished(&store, &zone(1), &mut status));
        assert_eq!(status.history.len(), 1);
        assert_eq!(status.history[0].id, "id2");
        assert!(!record_finished(&store, &zone(1), &mut status));
        assert_eq!(status.history[0].id, "id2");
    }
}
