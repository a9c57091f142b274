//! The ZoneSync reconciler (seed 000): one object is one sync request, run once, like a Job.
//! While it runs the zone is read-only: the sync holds the zone's runtime lock, so the
//! DnsZone reconciler's spec changes wait and are applied after it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::dns_zone::fetch_lookup;
use super::snapshot::ConfigMapStore;
use super::status::{FIELD_MANAGER, apply_status};
use crate::api::dns_zone::{HistoryEntry, ZonePhase};
use crate::api::shared::{ChangeStatus, ChangeType};
use crate::api::zone_sync::{SyncPhase, ZoneSyncStatus};
use crate::api::{DnsZone, DnsZoneStatus, ZoneSync};
use crate::dns::diff::{change_lines, status_lines};
use crate::dns::model::Zone;
use crate::reconcile::config;
use crate::reconcile::outcome::new_change_id;
use crate::reconcile::reason::{ReadyReason, SyncReason};
use crate::reconcile::snapshot::SnapshotStore;
use crate::reconcile::status::{
    self, ConditionUpdate, condition, push_history, requested_by, set_condition,
};
use crate::reconcile::sync::{self, SyncReport};

/// Changes listed in `status.changes`; the complete list goes to a ConfigMap.
pub const STATUS_CHANGES: usize = 100;
/// The userId of syncs the operator's scheduled drift check creates.
pub const SCHEDULED_USER: &str = "zonekeeper";

/// Errors that make kube-runtime retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

fn is_finished(phase: Option<SyncPhase>) -> bool {
    matches!(
        phase,
        Some(SyncPhase::Complete | SyncPhase::Failed | SyncPhase::Rejected)
    )
}

/// Runs the ZoneSync controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let syncs: Api<ZoneSync> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    Controller::new(syncs, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "ZoneSync reconcile ended with an error");
            }
        })
        .await;
}

fn error_policy(_sync: Arc<ZoneSync>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %error, "ZoneSync reconcile failed");
    ctx.metrics
        .reconciled("ZoneSync", "error", "KubernetesApi", 0.0);
    Action::requeue(Duration::from_secs(5))
}

async fn write_sync_status(
    api: &Api<ZoneSync>,
    name: &str,
    status: &ZoneSyncStatus,
) -> Result<(), Error> {
    Ok(apply_status(api, name, status).await?)
}

async fn write_zone_status(
    api: &Api<DnsZone>,
    name: &str,
    status: &DnsZoneStatus,
) -> Result<(), Error> {
    Ok(apply_status(api, name, status).await?)
}

async fn event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    warning: bool,
    reason: &str,
    note: String,
) {
    let ev = KubeEvent {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        note: Some(note),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "publishing an event failed");
    }
}

fn set_sync_condition(
    status: &mut ZoneSyncStatus,
    ok: bool,
    reason: &str,
    message: &str,
    now: &Time,
) {
    let type_ = if ok { "Complete" } else { "Failed" };
    set_condition(
        &mut status.conditions,
        ConditionUpdate {
            type_,
            status: true,
            reason,
            message: message.to_string(),
        },
        None,
        now,
    );
}

/// One reconcile of one ZoneSync.
#[tracing::instrument(skip_all, fields(object = %format!("{}/{}", sync.namespace().unwrap_or_default(), sync.name_any()), zone_ref = %sync.spec.zone_ref.name))]
pub async fn reconcile(sync: Arc<ZoneSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let ns = sync.namespace().unwrap_or_default();
    let name = sync.name_any();
    let api: Api<ZoneSync> = Api::namespaced(ctx.client.clone(), &ns);
    let zones: Api<DnsZone> = Api::namespaced(ctx.client.clone(), &ns);
    let mut st = sync.status.clone().unwrap_or_default();
    if is_finished(st.phase) {
        return Ok(Action::await_change());
    }
    let now = status::now();
    if st.id.is_none() {
        st.id = Some(new_change_id());
        st.change_type = Some(ChangeType::Sync);
        st.created = Some(
            sync.meta()
                .creation_timestamp
                .clone()
                .unwrap_or_else(|| now.clone()),
        );
        st.user_id = requested_by(sync.meta());
        st.phase = Some(SyncPhase::Pending);
    }

    let reject = |mut st: ZoneSyncStatus, reason: &str, message: String| {
        st.phase = Some(SyncPhase::Rejected);
        st.reason = Some(reason.to_string());
        st.message = Some(message.clone());
        st.completed_at = Some(now.clone());
        set_sync_condition(&mut st, false, reason, &message, &now);
        st
    };

    let Some(zone) = zones.get_opt(&sync.spec.zone_ref.name).await? else {
        let st = reject(
            st,
            "ZoneNotFound",
            format!("DnsZone {ns}/{} does not exist", sync.spec.zone_ref.name),
        );
        event(
            &ctx,
            sync.as_ref(),
            true,
            "ZoneNotFound",
            st.message.clone().unwrap_or_default(),
        )
        .await;
        write_sync_status(&api, &name, &st).await?;
        return Ok(Action::await_change());
    };
    let zone_status = zone.status.clone().unwrap_or_default();
    let zone_name = zone.spec.zone_name.clone();
    let rejection = if zone.spec.suspend {
        Some(("ZoneInactive", format!("zone {zone_name} is suspended")))
    } else if !status::is_true(&zone_status.conditions, condition::BACKEND_REACHABLE) {
        Some((
            "ZoneInactive",
            format!(
                "zone {zone_name} has no working connection to {}",
                zone.spec.backend.server
            ),
        ))
    } else if let Some(latest) = zone_status.latest_sync.as_ref().filter(|l| {
        let age = k8s_openapi::jiff::Timestamp::now().duration_since(l.0);
        age.as_secs_f64() < zone.spec.sync.min_interval.0.as_secs_f64()
    }) {
        Some((
            "SyncedRecently",
            format!(
                "zone {zone_name} was synced at {}, less than {} ago",
                latest.0, zone.spec.sync.min_interval
            ),
        ))
    } else {
        None
    };
    if let Some((reason, message)) = rejection {
        let st = reject(st, reason, message.clone());
        event(&ctx, sync.as_ref(), true, reason, message).await;
        write_sync_status(&api, &name, &st).await?;
        prune(&ctx, &ns, &zone).await;
        return Ok(Action::await_change());
    }
    // Seed 409: a spec change not yet applied goes first; the sync waits, visibly.
    if zone_status.observed_generation != zone.meta().generation {
        if st.reason.as_deref() != Some(SyncReason::PendingUpdate.as_str()) {
            st.reason = Some(SyncReason::PendingUpdate.to_string());
            st.message = Some(format!(
                "waiting for the pending update of zone {zone_name} to be applied"
            ));
            write_sync_status(&api, &name, &st).await?;
        }
        return Ok(Action::requeue(Duration::from_millis(500)));
    }

    let key = format!("{ns}/{}", zone.name_any());
    // Another sync of this zone is running: this one is refused, not queued (seed 400).
    let Some(claim) = ctx.claim_sync(&key) else {
        let st = reject(
            st,
            "InvalidSyncState",
            format!("another sync of zone {zone_name} is running"),
        );
        event(
            &ctx,
            sync.as_ref(),
            true,
            "InvalidSyncState",
            st.message.clone().unwrap_or_default(),
        )
        .await;
        write_sync_status(&api, &name, &st).await?;
        return Ok(Action::await_change());
    };
    // From here the DnsZone reconciler holds off (read-only); a pass already in flight ends
    // first, as the lock is only granted after it.
    let runtime = ctx.runtime(&key).await;
    let mut rt = runtime.lock().await;

    st.phase = Some(SyncPhase::Syncing);
    st.reason = None;
    st.message = Some(format!("transferring zone {zone_name}"));
    st.started_at = Some(status::now());
    write_sync_status(&api, &name, &st).await?;
    // Read afresh: a pass may have written status while this sync waited for the lock.
    let mut zs = zones
        .get(&zone.name_any())
        .await?
        .status
        .unwrap_or_default();
    let phase_before = zs.phase;
    zs.phase = Some(ZonePhase::Syncing);
    write_zone_status(&zones, &zone.name_any(), &zs).await?;

    let store = ConfigMapStore {
        api: Api::namespaced(ctx.client.clone(), &ns),
        zone_object: zone.name_any(),
        owner: owner_of(&zone),
    };
    let result = run_sync(&ctx, &ns, &zone, &sync, &store, &mut rt.synced).await;

    let done = status::now();
    let mut zs = zones
        .get(&zone.name_any())
        .await?
        .status
        .unwrap_or_default();
    zs.phase = phase_before
        .filter(|p| *p != ZonePhase::Syncing)
        .or(Some(ZonePhase::Active));
    match result {
        Ok((report, records)) => {
            let summary = &report.summary;
            let lines = change_lines(&report.changes);
            report.fill_status(&mut st, &zone_name, Some(ZonePhase::Syncing));
            st.completed_at = Some(done.clone());
            st.changes = status_lines(&lines, STATUS_CHANGES);
            if lines.len() > STATUS_CHANGES {
                st.full_changes_ref = Some(store_full_changes(&ctx, &ns, &sync, &lines).await?);
            }
            let message = report.message(&zone_name, &zone.spec.backend.server, sync.spec.dry_run);
            st.message = Some(message.clone());
            set_sync_condition(&mut st, true, "Synced", &message, &done);
            if !sync.spec.dry_run {
                zs.latest_sync = Some(done.clone());
                zs.serial = Some(i64::from(report.serial_after));
                zs.record_count = i64::try_from(records).ok();
                push_history(
                    &mut zs.history,
                    HistoryEntry {
                        id: st.id.clone().unwrap_or_default(),
                        change_type: ChangeType::Sync,
                        status: ChangeStatus::Complete,
                        user_id: st.user_id.clone(),
                        created: done.clone(),
                        serial_before: report.serial_before.map(i64::from),
                        serial_after: Some(i64::from(report.serial_after)),
                        added: summary.added as i64,
                        updated: summary.updated as i64,
                        deleted: summary.deleted as i64,
                        sample: status_lines(&lines, 10),
                        zone_sync_ref: Some(name.clone()),
                        message: Some(message.clone()),
                    },
                    zone.spec.history_limit,
                );
            }
            // Events first: whoever sees the final status also finds them.
            event(&ctx, sync.as_ref(), false, "Synced", message.clone()).await;
            if !sync.spec.dry_run {
                event(&ctx, &zone, false, "Synced", message).await;
            }
            write_sync_status(&api, &name, &st).await?;
            write_zone_status(&zones, &zone.name_any(), &zs).await?;
            rt.status_stale = true;
            drop(rt);
            drop(claim);
            ctx.metrics
                .reconciled("ZoneSync", "ok", "", started.elapsed().as_secs_f64());
        }
        Err(failure) => {
            let message =
                sync::failed_message(&zone_name, &zone.spec.backend.server, &failure.message);
            st.phase = Some(SyncPhase::Failed);
            st.reason = Some(failure.reason.clone());
            st.message = Some(message.clone());
            st.completed_at = Some(done.clone());
            set_sync_condition(&mut st, false, &failure.reason, &message, &done);
            event(&ctx, sync.as_ref(), true, &failure.reason, message.clone()).await;
            event(&ctx, &zone, true, &failure.reason, message).await;
            write_sync_status(&api, &name, &st).await?;
            write_zone_status(&zones, &zone.name_any(), &zs).await?;
            rt.status_stale = true;
            drop(rt);
            drop(claim);
            ctx.metrics.reconciled(
                "ZoneSync",
                "failed",
                &failure.reason,
                started.elapsed().as_secs_f64(),
            );
        }
    }
    prune(&ctx, &ns, &zone).await;
    Ok(Action::await_change())
}

/// What `status.transfer.method` says: the query type that carried the data.
/// A sync's failure, as a condition reason and a sentence.
struct Failure {
    reason: String,
    message: String,
}

async fn run_sync(
    ctx: &Context,
    ns: &str,
    zone: &DnsZone,
    sync: &ZoneSync,
    store: &ConfigMapStore,
    cached: &mut Option<(String, Zone)>,
) -> Result<(SyncReport, usize), Failure> {
    let lookup = fetch_lookup(&ctx.client, ns, zone)
        .await
        .map_err(|e| Failure {
            reason: "KubernetesApi".into(),
            message: e.to_string(),
        })?;
    let cfg = config::resolve(&zone.spec, &lookup).map_err(|e| Failure {
        reason: e.reason().to_string(),
        message: e.to_string(),
    })?;
    // The stored snapshot is the reference; the in-memory one is only a cache of it, used
    // while the pointer still names it (saves decoding a big zone on every sync).
    let pointer = store.pointer().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "snapshot pointer unreadable; syncing with a full transfer");
        None
    });
    let previous = match (&pointer, cached.take()) {
        (Some((id, _)), Some((cached_id, zone))) if *id == cached_id => Some(zone),
        (Some(_), _) => match store.load(&cfg.origin).await {
            Ok(z) => z,
            Err(e) => {
                tracing::warn!(error = %e, "stored snapshot unreadable; syncing with a full transfer");
                None
            }
        },
        (None, _) => None,
    };
    let pointer_id = pointer.map(|(id, _)| id);
    let method = sync.spec.method;
    let failure = |e: crate::reconcile::pass::PassError| Failure {
        reason: e.reason().to_string(),
        message: e.to_string(),
    };
    if sync.spec.dry_run {
        // The snapshot stays as it is, and so does its cache.
        let report = sync::sync(&cfg.transfer, &cfg.origin, previous.as_ref(), method).await;
        if let (Some(id), Some(zone)) = (pointer_id, previous) {
            *cached = Some((id, zone));
        }
        let report = report.map_err(failure)?;
        let records = report.snapshot.record_count();
        return Ok((report, records));
    }
    // By value: an IXFR changes the big snapshot in place rather than copying it.
    let guard = sync::SyncGuard {
        guard: cfg.guard.clone(),
        allow_mass_deletion: cfg.allow_mass_deletion,
    };
    let synced = sync::sync_guarded(&cfg.transfer, &cfg.origin, previous, method, &guard).await;
    let mut report = match synced {
        Ok(r) => r,
        Err((e, previous)) => {
            if let (Some(id), Some(zone)) = (pointer_id, previous) {
                *cached = Some((id, zone));
            }
            return Err(Failure {
                reason: e.reason().to_string(),
                message: e.to_string(),
            });
        }
    };
    let id = store.save_id(&report.snapshot).await.map_err(|e| Failure {
        reason: "SnapshotWriteFailed".into(),
        message: e.to_string(),
    })?;
    let records = report.snapshot.record_count();
    let snapshot = std::mem::replace(&mut report.snapshot, Zone::new(cfg.origin.clone()));
    *cached = Some((id, snapshot));
    Ok((report, records))
}

fn owner_of<K: Resource<DynamicType = ()>>(obj: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: obj.meta().name.clone().unwrap_or_default(),
        uid: obj.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

async fn store_full_changes(
    ctx: &Context,
    ns: &str,
    sync: &ZoneSync,
    lines: &[String],
) -> Result<String, Error> {
    let name = format!("{}-changes", sync.name_any());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        // Writing into a Vec cannot fail.
        let _ = writeln!(gz, "{line}");
    }
    let bytes = gz.finish().unwrap_or_default();
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": [owner_of(sync)]},
        "data": {"count": lines.len().to_string(), "format": "gzip, one change per line"},
        "binaryData": {"changes.gz": ByteString(bytes)},
    });
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(name)
}

/// Keeps the newest finished ZoneSyncs of a zone, by count, like a CronJob's history limits.
async fn prune(ctx: &Context, ns: &str, zone: &DnsZone) {
    let api: Api<ZoneSync> = Api::namespaced(ctx.client.clone(), ns);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return;
    };
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for s in list
        .items
        .into_iter()
        .filter(|s| s.spec.zone_ref.name == zone.name_any())
    {
        // Timestamps have one-second resolution; the resourceVersion of the last write breaks
        // ties so "newest" is exact.
        let finished_at = (
            s.status
                .as_ref()
                .and_then(|st| st.completed_at.clone())
                .map(|t| t.0),
            s.metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok()),
        );
        match s.status.as_ref().and_then(|st| st.phase) {
            Some(SyncPhase::Complete) => ok.push((finished_at, s.name_any())),
            Some(SyncPhase::Failed | SyncPhase::Rejected) => bad.push((finished_at, s.name_any())),
            _ => {}
        }
    }
    let limits = [
        (ok, zone.spec.sync.successful_history_limit),
        (bad, zone.spec.sync.failed_history_limit),
    ];
    for (mut list, keep) in limits {
        list.sort();
        let keep = usize::try_from(keep).unwrap_or(0);
        let excess = list.len().saturating_sub(keep);
        for (_, name) in list.into_iter().take(excess) {
            let _ = api.delete(&name, &DeleteParams::background()).await;
        }
    }
}

/// Creates a ZoneSync for the scheduled drift check, attributed to zonekeeper.
pub async fn create_scheduled(
    client: &kube::Client,
    zone: &DnsZone,
) -> Result<String, kube::Error> {
    let ns = zone.namespace().unwrap_or_default();
    let api: Api<ZoneSync> = Api::namespaced(client.clone(), &ns);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        status::REQUESTED_BY_ANNOTATION.to_string(),
        SCHEDULED_USER.to_string(),
    );
    let obj: ZoneSync = serde_json::from_value(serde_json::json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "ZoneSync",
        "metadata": {
            "generateName": format!("{}-sync-", zone.name_any()),
            "namespace": ns,
            "annotations": annotations,
        },
        "spec": {"zoneRef": {"name": zone.name_any()}, "method": "Auto"},
    }))
    .map_err(kube::Error::SerdeError)?;
    let created = api.create(&kube::api::PostParams::default(), &obj).await?;
    Ok(created.name_any())
}

/// Called by the DnsZone reconciler before it takes the zone's lock: while a sync of the zone
/// runs the zone is read-only, so the pass waits (`Some(requeue)`). A spec edit made meanwhile
/// is shown as `Ready=False reason=Syncing` and applied after the sync ends.
pub async fn hold_for_sync(zone: &DnsZone, ctx: &Context) -> Result<Option<Action>, kube::Error> {
    let ns = zone.namespace().unwrap_or_default();
    if !ctx.is_syncing(&format!("{ns}/{}", zone.name_any())) {
        return Ok(None);
    }
    let current = zone.status.clone().unwrap_or_default();
    let pending = current.observed_generation != zone.meta().generation;
    let shown = status::condition(&current.conditions, condition::READY)
        .is_some_and(|c| c.status == "False" && c.reason == ReadyReason::Syncing.as_str());
    if pending && !shown {
        let mut conditions = current.conditions.clone();
        set_condition(
            &mut conditions,
            ConditionUpdate {
                type_: condition::READY,
                status: false,
                reason: ReadyReason::Syncing.as_str(),
                message: format!(
                    "zone {} is read-only while a ZoneSync runs; the spec change (generation {}) is applied after it",
                    zone.spec.zone_name,
                    zone.meta().generation.unwrap_or_default()
                ),
            },
            current.observed_generation,
            &status::now(),
        );
        // Only the conditions: the sync owns the rest of the status while it runs.
        let api: Api<DnsZone> = Api::namespaced(ctx.client.clone(), &ns);
        api.patch_status(
            &zone.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"conditions": conditions}})),
        )
        .await?;
    }
    Ok(Some(Action::requeue(Duration::from_millis(500))))
}

/// The status a DnsZone pass starts from: the object's, unless a sync wrote a newer one since
/// the object was read (then it is read afresh, so the sync's history is never overwritten).
pub async fn current_status(
    zone: &DnsZone,
    ctx: &Context,
    rt: &mut super::context::ZoneRuntime,
) -> Result<DnsZoneStatus, kube::Error> {
    if !std::mem::take(&mut rt.status_stale) {
        return Ok(zone.status.clone().unwrap_or_default());
    }
    let api: Api<DnsZone> =
        Api::namespaced(ctx.client.clone(), &zone.namespace().unwrap_or_default());
    Ok(api
        .get_opt(&zone.name_any())
        .await?
        .and_then(|z| z.status)
        .unwrap_or_default())
}

/// The scheduled drift check: once `spec.sync.interval` has passed since the last sync (or,
/// never synced, since the zone was created) and the backend's serial is not the stored
/// snapshot's, a ZoneSync is created (userId `zonekeeper`) so the sync is recorded like any
/// other. Failures are logged and retried at the next check; they never fail the pass.
pub async fn scheduled_check(
    zone: &DnsZone,
    ctx: &Context,
    status: &DnsZoneStatus,
    rt: &mut super::context::ZoneRuntime,
) {
    let interval = zone.spec.sync.interval.0;
    if interval.is_zero() || zone.spec.suspend {
        return;
    }
    if rt.drift_checked.is_some_and(|t| t.elapsed() < interval) {
        return;
    }
    let since = status
        .latest_sync
        .as_ref()
        .or(zone.meta().creation_timestamp.as_ref())
        .map(|t| k8s_openapi::jiff::Timestamp::now().duration_since(t.0));
    if since.is_some_and(|d| d.as_secs_f64() < interval.as_secs_f64()) {
        return;
    }
    let Some(backend_serial) = status.serial else {
        return;
    };
    rt.drift_checked = Some(Instant::now());
    let ns = zone.namespace().unwrap_or_default();
    let store = ConfigMapStore {
        api: Api::namespaced(ctx.client.clone(), &ns),
        zone_object: zone.name_any(),
        owner: owner_of(zone),
    };
    let stored = match store.pointer().await {
        Ok(p) => p.and_then(|(_, serial)| serial),
        Err(e) => {
            tracing::warn!(error = %e, "drift check: snapshot pointer unreadable");
            None
        }
    };
    if stored.map(i64::from) == Some(backend_serial) {
        return;
    }
    // One request at a time: an unfinished ZoneSync of this zone will do.
    let api: Api<ZoneSync> = Api::namespaced(ctx.client.clone(), &ns);
    match api.list(&ListParams::default()).await {
        Ok(list)
            if list.items.iter().any(|s| {
                s.spec.zone_ref.name == zone.name_any()
                    && !is_finished(s.status.as_ref().and_then(|st| st.phase))
            }) =>
        {
            return;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "drift check: listing ZoneSyncs failed");
            return;
        }
    }
    match create_scheduled(&ctx.client, zone).await {
        Ok(name) => tracing::info!(
            zone_sync = %name,
            backend_serial,
            stored_serial = ?stored,
            "drift check: backend serial differs from the stored snapshot; sync requested"
        ),
        Err(e) => tracing::warn!(error = %e, "drift check: creating a ZoneSync failed"),
    }
}
