//! The ZoneSync reconciler (VinylDNS Sync Zone): one object is one sync request, run once, like a Job.
//! While it runs the zone is read-only: the sync holds the zone's runtime lock, so the
//! DnsZone reconciler's spec changes wait and are applied after it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::owner::controller_ref;
use super::references::fetch_lookup;
use super::snapshot::{CHUNK_BYTES, ConfigMapStore, DELTA_SHARE, Staged};
use super::status::{FIELD_MANAGER, apply_status};
use super::zone_lock::ZoneLocks;
use crate::api::dns_zone::ZonePhase;
use crate::api::shared::ChangeType;
use crate::api::zone_sync::{SyncPhase, ZoneSyncStatus};
use crate::api::{DnsZone, ZoneSync};
use crate::dns::diff::{change_lines, status_lines};
use crate::dns::model::Zone;
use crate::reconcile::config;
use crate::reconcile::outcome::new_change_id;
use crate::reconcile::reason::SyncReason;
use crate::reconcile::snapshot::{Delta, SnapshotStore};
use crate::reconcile::status::{self, ConditionUpdate, condition, requested_by, set_condition};
use crate::reconcile::sync::{self, SyncReport};
use crate::telemetry::Metrics;

/// Changes listed in `status.changes`; the complete list goes to a ConfigMap.
pub const STATUS_CHANGES: usize = 100;
/// Errors that make kube-runtime retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(e) => super::api_error::kind(e),
        }
    }
}

/// Shared by every ZoneSync reconcile.
pub struct SyncContext {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Shared with the DnsZone controller: a running sync holds its zone.
    pub locks: Arc<ZoneLocks>,
    /// Every ZoneSync, to find the zone's last sync without a list.
    pub syncs: Store<ZoneSync>,
    /// Per zone (`namespace/name`), the last snapshot a sync stored with the id of its
    /// pointer: a cache of the store, valid only while the stored pointer still names that id.
    synced: std::sync::Mutex<HashMap<String, (String, Zone)>>,
}

impl SyncContext {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        locks: Arc<ZoneLocks>,
        syncs: Store<ZoneSync>,
    ) -> Self {
        Self {
            client,
            recorder,
            metrics,
            locks,
            syncs,
            synced: std::sync::Mutex::default(),
        }
    }

    fn take_cached(&self, key: &str) -> Option<(String, Zone)> {
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
    }

    fn put_cached(&self, key: &str, cached: Option<(String, Zone)>) {
        if let Some(c) = cached {
            self.synced
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.to_string(), c);
        }
    }
}

/// Whether the sync has ended one way or another; it never runs again.
pub fn is_finished(phase: Option<SyncPhase>) -> bool {
    matches!(
        phase,
        Some(SyncPhase::Complete | SyncPhase::Failed | SyncPhase::Rejected)
    )
}

/// Runs the ZoneSync controller until `shutdown` resolves.
pub async fn run(
    ctx_builder: impl FnOnce(Store<ZoneSync>) -> Arc<SyncContext>,
    client: kube::Client,
    namespace: Option<String>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (syncs, zones): (Api<ZoneSync>, Api<DnsZone>) = match &namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let controller = Controller::new(syncs, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let store = controller.store();
    let ctx = ctx_builder(store.clone());
    controller
        // A sync waiting for its zone's pending update goes on when the zone's status says
        // the update is applied.
        .watches(zones, watcher::Config::default(), move |zone: DnsZone| {
            waiting_syncs(&store, &zone)
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "ZoneSync reconcile ended with an error");
            }
        })
        .await;
}

/// The unfinished syncs of a zone.
fn waiting_syncs(store: &Store<ZoneSync>, zone: &DnsZone) -> Vec<ObjectRef<ZoneSync>> {
    let ns = zone.namespace();
    let name = zone.name_any();
    store
        .state()
        .iter()
        .filter(|s| s.namespace() == ns && s.spec.zone_ref.name == name)
        .filter(|s| !is_finished(s.status.as_ref().and_then(|st| st.phase)))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// When the newest complete (stored) sync of the zone other than `except` ended.
fn last_synced(ctx: &SyncContext, ns: &str, zone: &str, except: &str) -> Option<Time> {
    ctx.syncs
        .state()
        .iter()
        .filter(|s| s.namespace().as_deref() == Some(ns) && s.spec.zone_ref.name == zone)
        .filter(|s| s.name_any() != except && !s.spec.dry_run)
        .filter_map(|s| s.status.as_ref())
        .filter(|st| st.phase == Some(SyncPhase::Complete))
        .filter_map(|st| st.completed_at.clone())
        .max_by_key(|t| t.0)
}

fn error_policy(_sync: Arc<ZoneSync>, error: &Error, ctx: Arc<SyncContext>) -> Action {
    tracing::warn!(error = %error, "ZoneSync reconcile failed");
    ctx.metrics
        .reconciled("ZoneSync", "error", error.reason(), 0.0);
    Action::requeue(Duration::from_secs(5))
}

async fn write_sync_status(
    api: &Api<ZoneSync>,
    name: &str,
    status: &ZoneSyncStatus,
) -> Result<(), Error> {
    apply_status(api, name, status).await?;
    Ok(())
}

async fn event<K: Resource<DynamicType = ()>>(
    ctx: &SyncContext,
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
        action: super::events::action_for("Sync", &note),
        note: Some(note),
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
pub async fn reconcile(sync: Arc<ZoneSync>, ctx: Arc<SyncContext>) -> Result<Action, Error> {
    let started = Instant::now();
    let ns = sync.namespace().unwrap_or_default();
    let name = sync.name_any();
    let api: Api<ZoneSync> = Api::namespaced(ctx.client.clone(), &ns);
    let zones: Api<DnsZone> = Api::namespaced(ctx.client.clone(), &ns);
    if is_finished(sync.status.as_ref().and_then(|s| s.phase)) {
        return Ok(Action::await_change());
    }
    // The cache can lag this controller's own writes: a reconcile queued by the sync's
    // Syncing write may start after the sync completed and still see it Syncing. A sync runs
    // once, so its phase is read from the API server before anything is done (the same object
    // is never reconciled twice at once, so the previous run's final write is visible here).
    let Some(fresh) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let mut st = fresh.status.clone().unwrap_or_default();
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
            SyncReason::ZoneNotFound.as_str(),
            format!("DnsZone {ns}/{} does not exist", sync.spec.zone_ref.name),
        );
        event(
            &ctx,
            sync.as_ref(),
            true,
            SyncReason::ZoneNotFound.as_str(),
            st.message.clone().unwrap_or_default(),
        )
        .await;
        write_sync_status(&api, &name, &st).await?;
        return Ok(Action::await_change());
    };
    // Registered once the zone is known: its transfer bounds are the sync's too.
    let _watched = ctx.metrics.watchdog.start(
        format!("ZoneSync {ns}/{name} (zone {})", zone.spec.zone_name),
        super::deletion::reconcile_limit(&zone),
    );
    let zone_status = zone.status.clone().unwrap_or_default();
    let zone_name = zone.spec.zone_name.clone();
    let rejection = if zone.spec.suspend {
        Some((
            SyncReason::ZoneInactive.as_str(),
            format!("zone {zone_name} is suspended"),
        ))
    } else if !status::is_true(&zone_status.conditions, condition::BACKEND_REACHABLE) {
        Some((
            SyncReason::ZoneInactive.as_str(),
            format!(
                "zone {zone_name} has no working connection to {}",
                zone.spec.backend.server
            ),
        ))
    } else if let Some(latest) = zone_status
        .latest_sync
        .clone()
        .into_iter()
        // The zone records a finished sync a moment after it ended; the sync's own object
        // knows at once.
        .chain(last_synced(&ctx, &ns, &zone.name_any(), &name))
        .max_by_key(|t| t.0)
        .filter(|l| {
            let age = k8s_openapi::jiff::Timestamp::now().duration_since(l.0);
            age.as_secs_f64() < zone.spec.sync.min_interval.0.as_secs_f64()
        })
    {
        Some((
            SyncReason::SyncedRecently.as_str(),
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
        prune(&ctx, &ns, &zone.name_any()).await;
        return Ok(Action::await_change());
    }
    // VinylDNS Sync Zone 409 (pending update): a spec change not yet applied goes first; the sync waits, visibly.
    if zone_status.observed_generation != zone.meta().generation {
        if st.reason.as_deref() != Some(SyncReason::PendingUpdate.as_str()) {
            // Pending, not Syncing (a sync resumed after a restart may have been): a Syncing
            // sync holds the zone, and the zone must apply the update this sync waits for.
            st.phase = Some(SyncPhase::Pending);
            st.reason = Some(SyncReason::PendingUpdate.to_string());
            st.message = Some(format!(
                "waiting for the pending update of zone {zone_name} to be applied"
            ));
            write_sync_status(&api, &name, &st).await?;
        }
        // The zone's status write that applies the update wakes this sync (see `run`).
        return Ok(Action::requeue(Duration::from_secs(60)));
    }

    let key = format!("{ns}/{}", zone.name_any());
    // Another sync of this zone is running: this one is refused, not queued (VinylDNS Sync Zone: 400 InvalidSyncState).
    let Some(claim) = ctx.locks.claim_sync(&key) else {
        let st = reject(
            st,
            SyncReason::InvalidSyncState.as_str(),
            format!("another sync of zone {zone_name} is running"),
        );
        event(
            &ctx,
            sync.as_ref(),
            true,
            SyncReason::InvalidSyncState.as_str(),
            st.message.clone().unwrap_or_default(),
        )
        .await;
        write_sync_status(&api, &name, &st).await?;
        return Ok(Action::await_change());
    };
    // From here the DnsZone controller holds off (read-only); a pass already in flight ends
    // first, as the lock is only granted after it.
    let lock = ctx.locks.lock(&key).await;

    st.phase = Some(SyncPhase::Syncing);
    st.reason = None;
    st.message = Some(format!("transferring zone {zone_name}"));
    st.started_at = Some(status::now());
    write_sync_status(&api, &name, &st).await?;

    let store = ConfigMapStore {
        api: Api::namespaced(ctx.client.clone(), &ns),
        zone_object: zone.name_any(),
        owner: controller_ref(&zone),
    };
    let mut cached = ctx.take_cached(&key);
    let result = run_sync(&ctx, &ns, &zone, &sync, &store, &mut cached).await;
    ctx.put_cached(&key, cached);
    // The backend work is done: the claim goes before the final status is written, so the
    // DnsZone reconcile that status wakes finds the zone unclaimed. The lock stays until the
    // snapshot pointer has moved: that reconcile and the next sync of the zone wait the one
    // write rather than read the old snapshot.
    drop(claim);

    let done = status::now();
    match result {
        Ok((mut report, staged)) => {
            let lines = change_lines(&report.changes);
            // The sync is over: the zone is writable again, as the DnsZone will say.
            report.fill_status(&mut st, &zone_name, Some(ZonePhase::Active));
            st.completed_at = Some(done.clone());
            st.changes = status_lines(&lines, STATUS_CHANGES);
            if lines.len() > STATUS_CHANGES {
                st.full_changes_ref = Some(store_full_changes(&ctx, &ns, &sync, &lines).await?);
            }
            let message = report.message(&zone_name, &zone.spec.backend.server, sync.spec.dry_run);
            st.message = Some(message.clone());
            set_sync_condition(&mut st, true, SyncReason::Synced.as_str(), &message, &done);
            // Events first: whoever sees the final status also finds them.
            event(
                &ctx,
                sync.as_ref(),
                false,
                SyncReason::Synced.as_str(),
                message.clone(),
            )
            .await;
            if !sync.spec.dry_run {
                event(&ctx, &zone, false, SyncReason::Synced.as_str(), message).await;
            }
            // The DnsZone controller records it in the zone's history from this status.
            // Until it is written the pointer stays where it was: a retry after a failed
            // write computes the same diff and reports the same changes.
            write_sync_status(&api, &name, &st).await?;
            let origin = report.snapshot.origin().clone();
            match staged {
                Save::Nothing => {}
                Save::Unchanged(id) => {
                    let snapshot = std::mem::replace(&mut report.snapshot, Zone::new(origin));
                    ctx.put_cached(&key, Some((id, snapshot)));
                }
                Save::Staged(staged) => {
                    let snapshot = std::mem::replace(&mut report.snapshot, Zone::new(origin));
                    if let Some(id) = commit_snapshot(&ctx, &sync, &store, staged).await {
                        ctx.put_cached(&key, Some((id, snapshot)));
                    }
                }
            }
            drop(lock);
            ctx.metrics
                .reconciled("ZoneSync", "ok", "", started.elapsed().as_secs_f64());
        }
        Err(failure) => {
            drop(lock);
            let message =
                sync::failed_message(&zone_name, &zone.spec.backend.server, &failure.message);
            st.phase = Some(SyncPhase::Failed);
            st.reason = Some(failure.reason.clone());
            st.message = Some(message.clone());
            st.completed_at = Some(done.clone());
            set_sync_condition(&mut st, false, &failure.reason, &message, &done);
            event(&ctx, sync.as_ref(), true, &failure.reason, message.clone()).await;
            event(&ctx, &zone, true, &failure.reason, message).await;
            // The DnsZone controller records it in the zone's history from this status.
            write_sync_status(&api, &name, &st).await?;
            ctx.metrics.reconciled(
                "ZoneSync",
                "failed",
                &failure.reason,
                started.elapsed().as_secs_f64(),
            );
        }
    }
    prune(&ctx, &ns, &zone.name_any()).await;
    Ok(Action::await_change())
}

/// What `status.transfer.method` says: the query type that carried the data.
/// A sync's failure, as a condition reason and a sentence.
struct Failure {
    reason: String,
    message: String,
}

async fn run_sync(
    ctx: &SyncContext,
    ns: &str,
    zone: &DnsZone,
    sync: &ZoneSync,
    store: &ConfigMapStore,
    cached: &mut Option<(String, Zone)>,
) -> Result<(SyncReport, Save), Failure> {
    let lookup = fetch_lookup(&ctx.client, ns, zone)
        .await
        .map_err(|e| Failure {
            reason: SyncReason::KubernetesApi.to_string(),
            message: e.to_string(),
        })?;
    let cfg = config::resolve(&zone.spec, &lookup).map_err(|e| Failure {
        reason: e.reason().to_string(),
        message: e.to_string(),
    })?;
    // The stored snapshot is the reference; the in-memory one is only a cache of it, used
    // while the pointer still names it (saves decoding a big zone on every sync).
    let stored = store.stored().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "snapshot pointer unreadable; syncing with a full transfer");
        None
    });
    let mut from_store = stored.is_some();
    let previous = match (&stored, cached.take()) {
        (Some(s), Some((cached_id, zone))) if s.version() == cached_id => Some(zone),
        (Some(_), _) => match store.load(&cfg.origin).await {
            Ok(z) => z,
            Err(e) => {
                tracing::warn!(error = %e, "stored snapshot unreadable; syncing with a full transfer");
                from_store = false;
                None
            }
        },
        // Never synced: the zone as the DnsZone controller last saw it, so the first sync
        // reports what changed since zonekeeper's own last look rather than the whole zone.
        (None, _) => ctx
            .locks
            .baseline(&format!("{ns}/{}", zone.name_any()))
            .map(|z| (*z).clone()),
    };
    let pointer_id = stored.as_ref().map(|s| s.version().to_string());
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
        return report.map(|r| (r, Save::Nothing)).map_err(failure);
    }
    // By value: an IXFR changes the big snapshot in place rather than copying it.
    let guard = sync::SyncGuard {
        guard: cfg.guard.clone(),
        allow_mass_deletion: cfg.allow_mass_deletion || sync.spec.allow_mass_deletion,
    };
    let synced = sync::sync_guarded(&cfg.transfer, &cfg.origin, previous, method, &guard).await;
    let report = match synced {
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
    let stored = stored.filter(|_| from_store);
    let up_to_date = report.incremental
        && report.changes.is_empty()
        && report.serial_before == Some(report.serial_after);
    if let Some(on) = stored.as_ref().filter(|_| up_to_date) {
        // The stored snapshot is this one already.
        return Ok((report, Save::Unchanged(on.version().to_string())));
    }
    // Only the chunks: the pointer moves after the change list and the status are written.
    // An incremental sync stores what it changed, as a delta on the stored snapshot.
    // A change of more than a share of the zone's RRsets would be compacted at once: it is
    // written as a new base without encoding the delta first.
    let small = report.changes.len().saturating_mul(DELTA_SHARE) <= report.snapshot.rrset_count();
    let staged = match stored.as_ref().filter(|_| report.incremental && small) {
        Some(on) => {
            let delta = Delta::from_changes(&report.changes, &report.snapshot);
            store.stage_delta(on, &delta, &report.snapshot).await
        }
        None => store.stage(&report.snapshot).await,
    }
    .map_err(|e| Failure {
        reason: SyncReason::SnapshotWriteFailed.to_string(),
        message: e.to_string(),
    })?;
    Ok((report, Save::Staged(staged)))
}

/// What a sync leaves to store once its status is written.
enum Save {
    /// A dry run: nothing.
    Nothing,
    /// The stored snapshot (this version) is already what the backend serves.
    Unchanged(String),
    /// Written, waiting for the pointer to move.
    Staged(Staged),
}

/// Moves the snapshot pointer once the sync's status says Complete; returns the snapshot id.
/// Should every attempt fail, the old snapshot stays and the next sync reports these changes
/// again: counted twice rather than lost.
async fn commit_snapshot(
    ctx: &SyncContext,
    sync: &ZoneSync,
    store: &ConfigMapStore,
    staged: Staged,
) -> Option<String> {
    let mut last = None;
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        match store.commit(staged.clone()).await {
            Ok(id) => return Some(id),
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        tracing::warn!(error = %e, "moving the snapshot pointer failed; the next sync reports these changes again");
        event(
            ctx,
            sync,
            true,
            SyncReason::SnapshotWriteFailed.as_str(),
            format!("{e}; the next sync of the zone reports these changes again"),
        )
        .await;
    }
    None
}

/// Writes the complete change list: one gzip stream cut into pieces of at most
/// [`CHUNK_BYTES`], each in its own ConfigMap (`changes.gz`). The first, named in
/// `status.fullChangesRef`, says how many there are (`chunks`); the others are named
/// `<first>-1`, `<first>-2`, …, and the pieces concatenated in that order are the stream.
/// The first is written last, so whoever finds it finds the whole list.
async fn store_full_changes(
    ctx: &SyncContext,
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
    let pieces: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let put = |cm_name: String, data: serde_json::Value, piece: &[u8]| {
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": cm_name, "ownerReferences": [controller_ref(sync)]},
            "data": data,
            "binaryData": {"changes.gz": ByteString(piece.to_vec())},
        });
        let api = api.clone();
        async move {
            api.patch(
                &cm_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&cm),
            )
            .await
        }
    };
    for (i, piece) in pieces.iter().enumerate().skip(1) {
        put(
            format!("{name}-{i}"),
            serde_json::json!({"chunk": i.to_string(), "of": name}),
            piece,
        )
        .await?;
    }
    put(
        name.clone(),
        serde_json::json!({
            "count": lines.len().to_string(),
            "chunks": pieces.len().max(1).to_string(),
            "format": "gzip, one change per line; changes.gz of this ConfigMap, then of <name>-1, <name>-2, … concatenated",
        }),
        pieces.first().copied().unwrap_or_default(),
    )
    .await?;
    Ok(name)
}

/// Keeps the newest finished ZoneSyncs of a zone, by count, like a CronJob's history limits.
/// A complete sync the zone has not recorded in its history yet is kept whatever the limit:
/// its object is where the record comes from.
async fn prune(ctx: &SyncContext, ns: &str, zone_object: &str) {
    let api: Api<ZoneSync> = Api::namespaced(ctx.client.clone(), ns);
    let zones: Api<DnsZone> = Api::namespaced(ctx.client.clone(), ns);
    let Ok(Some(zone)) = zones.get_opt(zone_object).await else {
        return;
    };
    let Ok(list) = api.list(&ListParams::default()).await else {
        return;
    };
    let zone_status = zone.status.clone().unwrap_or_default();
    let recorded = |s: &ZoneSync| {
        let Some(st) = s.status.as_ref() else {
            return false;
        };
        s.spec.dry_run
            || zone_status
                .history
                .iter()
                .any(|h| Some(&h.id) == st.id.as_ref())
            || st
                .completed_at
                .as_ref()
                .zip(zone_status.latest_sync.as_ref())
                .is_some_and(|(done, latest)| done.0 < latest.0)
    };
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for s in list
        .items
        .into_iter()
        .filter(|s| s.spec.zone_ref.name == zone_object)
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
            Some(SyncPhase::Complete) if recorded(&s) => ok.push((finished_at, s.name_any())),
            // Counted, never deleted: the newest ones are kept first anyway.
            Some(SyncPhase::Complete) => ok.push((finished_at, String::new())),
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
            if name.is_empty() {
                continue;
            }
            let _ = api.delete(&name, &DeleteParams::background()).await;
        }
    }
}
