//! The DnsZone reconciler: resolve references, test a changed connection, run the pass, write
//! status (only when it changed) and events, and clean up on deletion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event as Finalize, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::context::{Context, DriftBase, ZoneRuntime};
use super::deletion::{self, CleanupError, DELETION_REQUEUE, delete_records, deleted};
use super::operator::AbortOnDrop;
use super::ownership_store::{self, OwnershipStoreError};
use super::references::{Fetched, fetch_lookup};
use super::settled::Settled;
use super::zone_metrics::{record_metrics, zone_labels};
use super::zone_syncs;
use crate::api::dns_zone::{DeletionPolicy, ZonePhase, ZoneType};
use crate::api::{DnsZone, DnsZoneStatus, ZoneSync};
use crate::reconcile::config::Connection;
use crate::reconcile::outcome::{FoldContext, ZoneEvent, fold};
use crate::reconcile::ownership;
use crate::reconcile::pass::{self, Mode, Observing, PassError, ZoneState};
use crate::reconcile::reason::ReadyReason;
use crate::reconcile::status::{
    self as zone_status, ConditionUpdate, condition, requested_by, set_condition,
};
use crate::reconcile::zone::{ZoneHost, reconcile_zone};

/// Keeps a DnsZone until its cleanup ran (or gave up).
pub const FINALIZER: &str = "dns.zonekeeper.io/cleanup";

/// Errors that make kube-runtime retry with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("zone {zone}: cleanup failed, will retry: {detail}")]
    Cleanup {
        zone: String,
        #[source]
        detail: CleanupError,
    },
    #[error("ownership ConfigMap {name}: {detail}")]
    Ownership { name: String, detail: String },
}

impl From<OwnershipStoreError> for Error {
    fn from(e: OwnershipStoreError) -> Self {
        match e {
            OwnershipStoreError::Kube(e) => Error::Kube(e),
            OwnershipStoreError::Corrupt { name, detail } => Error::Ownership { name, detail },
        }
    }
}

pub(super) fn key_of(zone: &DnsZone) -> String {
    format!(
        "{}/{}",
        zone.namespace().unwrap_or_default(),
        zone.name_any()
    )
}

/// The stores the controller reads: DnsZones (its own) and ZoneSyncs.
pub type Stores = (Store<DnsZone>, Store<ZoneSync>);

/// Runs the controller until `shutdown` resolves. `namespace` `None` watches every namespace.
pub async fn run(
    ctx_builder: impl FnOnce(Stores) -> Arc<Context>,
    wakes: Option<futures::channel::mpsc::UnboundedReceiver<ObjectRef<DnsZone>>>,
    client: kube::Client,
    namespace: Option<String>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    use super::references::scoped_api as api;
    let zones: Api<DnsZone> = api(&client, &namespace);
    let (store, writer) = reflector::store::<DnsZone>();
    // The ZoneSync store is updated before the event that wakes a zone is handed on, so the
    // reconcile it starts sees the sync as it is now.
    let (sync_store, sync_writer) = reflector::store::<ZoneSync>();
    let sync_events = watcher(
        api::<ZoneSync>(&client, &namespace),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(sync_writer)
    .touched_objects();
    let ctx = ctx_builder((store.clone(), sync_store));
    // What Controller::new builds, with the name index fed from the same events: it is
    // updated before the store, so whatever the store shows the index has too.
    let names = ctx.names.clone();
    let zone_events = watcher(zones, watcher::Config::default().any_semantic())
        .modify(|zone| zone_status::slim_metadata(&mut zone.metadata))
        .inspect_ok(move |event| names.apply(event))
        .reflect(writer)
        .applied_objects();
    let controller = Controller::for_stream(zone_events, store.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let metrics = ctx.metrics.clone();
    let _background = Context::background(&ctx, shutdown.clone());
    // Ready once the controller's store holds the first full list of DnsZones. kube-runtime
    // 5.0's `DelayedInit` keeps only the last poller's waker and the Controller's own runner
    // waits on the same store, so a waiter that polled first may never be woken: the wait is
    // re-polled in short rounds instead of awaited once.
    let ready_store = store.clone();
    let _ready = AbortOnDrop(tokio::spawn(async move {
        while tokio::time::timeout(Duration::from_millis(100), ready_store.wait_until_ready())
            .await
            .is_err()
        {}
        metrics.set_ready();
    }));
    // Secrets and ConfigMaps only map names to zones: their metadata is all that is watched.
    let secret_events = watcher(
        api::<PartialObjectMeta<Secret>>(&client, &namespace),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let cm_events = watcher(
        api::<PartialObjectMeta<ConfigMap>>(&client, &namespace),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let (secret_zones, cm_zones) = (ctx.names.clone(), ctx.names.clone());
    // Whatever wakes a zone from outside its own object is marked, so its reconcile does not
    // take it for the echo of its own status write.
    let touched = ctx.touched.clone();
    let (sync_touched, secret_touched, cm_touched) =
        (touched.clone(), touched.clone(), touched.clone());
    let wakes = wakes.map(|w| w.map(move |zone| touched.mark_one(zone)));
    controller
        .watches_stream(sync_events, move |sync: ZoneSync| {
            let ns = sync.namespace().unwrap_or_default();
            let zone = ObjectRef::<DnsZone>::new(&sync.spec.zone_ref.name).within(&ns);
            Some(sync_touched.mark_one(zone))
        })
        .watches_stream(secret_events, move |secret| {
            secret_touched.mark(secret_zones.zones_naming_secret(&secret))
        })
        .watches_stream(cm_events, move |cm| {
            cm_touched.mark(cm_zones.zones_naming_config_map(&cm))
        })
        .reconcile_on(wakes.map_or_else(|| futures::stream::empty().boxed(), |w| w.boxed()))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile ended with an error");
            }
        })
        .await;
}

impl Error {
    /// The metric label: what kind of failure this was.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(e) => super::api_error::kind(e),
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.reason(),
                kube::runtime::finalizer::Error::AddFinalizer(e)
                | kube::runtime::finalizer::Error::RemoveFinalizer(e) => super::api_error::kind(e),
                _ => "Finalizer",
            },
            Error::Cleanup { .. } => "CleanupFailed",
            Error::Ownership { .. } => "OwnershipUnreadable",
        }
    }
}

/// Failed reconciles: retry with a delay.
pub fn error_policy(zone: Arc<DnsZone>, error: &Error, ctx: Arc<Context>) -> Action {
    if stale_finalizer_patch(error) {
        // The finalizer was added from a cache that had not yet seen our own last write: the
        // server rightly refused the patch's `test` op. The watch event is on its way; retry
        // soon, without alarming anyone.
        tracing::debug!(zone = %zone.spec.zone_name, object = %key_of(&zone), error = %error, "finalizer patch raced the cache; retrying");
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(zone = %zone.spec.zone_name, object = %key_of(&zone), error = %error, "reconcile failed");
    ctx.metrics
        .reconciled("DnsZone", "error", error.reason(), 0.0);
    Action::requeue(Duration::from_secs(5))
}

/// kube-runtime's finalizer helper adds the finalizer with a JSON patch whose `test` op is
/// built from the cached object; a cache a write behind gets 422 (or 409) for it.
fn stale_finalizer_patch(error: &Error) -> bool {
    use kube::runtime::finalizer::Error as F;
    matches!(
        error,
        Error::Finalizer(e) if matches!(
            e.as_ref(),
            F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s))
                if s.code == 422 || s.code == 409
        )
    )
}

/// One reconcile of one DnsZone.
#[tracing::instrument(skip_all, fields(zone = %zone.spec.zone_name, object = %key_of(&zone), server = %zone.spec.backend.server))]
pub async fn reconcile(zone: Arc<DnsZone>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let _watched = ctx.metrics.watchdog.start(
        format!("DnsZone {} (zone {})", key_of(&zone), zone.spec.zone_name),
        deletion::reconcile_limit(&zone),
    );
    let ns = zone.namespace().unwrap_or_default();
    let api: Api<DnsZone> = Api::namespaced(ctx.client.clone(), &ns);
    let failure = Failure::default();
    let result = if deletion::needs_finalizer(&zone) {
        finalizer(&api, FINALIZER, zone, |event| async {
            match event {
                Finalize::Apply(zone) => apply(zone, &ctx, &failure).await,
                Finalize::Cleanup(zone) => cleanup(zone, &ctx).await,
            }
        })
        .await
        .map_err(|e| Error::Finalizer(Box::new(e)))
    } else {
        without_finalizer(&api, zone, &ctx, &failure).await
    };
    if result.is_ok() {
        // A pass that ran but left the zone not Ready (DNS side) is an error with its reason;
        // Kubernetes failures are counted by `error_policy`.
        let (outcome, reason) = match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(reason) => ("error", reason),
            None => ("ok", String::new()),
        };
        ctx.metrics
            .reconciled("DnsZone", outcome, &reason, started.elapsed().as_secs_f64());
    }
    result
}

/// A zone whose deletion leaves its records: no finalizer (one left from an earlier
/// `DeleteRecords` policy is removed), so its deletion never waits for the operator.
async fn without_finalizer(
    api: &Api<DnsZone>,
    zone: Arc<DnsZone>,
    ctx: &Context,
    failure: &Failure,
) -> Result<Action, Error> {
    let ours = deletion::has_finalizer(&zone);
    if zone.meta().deletion_timestamp.is_some() {
        // Still here: held by our old finalizer (the Retained event) or by someone else's.
        let action = if ours {
            cleanup(zone.clone(), ctx).await?
        } else {
            forget(ctx, &zone).await;
            Action::await_change()
        };
        deletion::remove_finalizer(api, &zone).await?;
        return Ok(action);
    }
    if ours {
        deletion::remove_finalizer(api, &zone).await?;
    }
    apply(zone, ctx, failure).await
}

/// The older DnsZone managing the same zone on the same server, if any.
fn conflict_winner(zone: &DnsZone, ctx: &Context) -> Option<String> {
    let me = (
        zone.meta().creation_timestamp.clone().map(|t| t.0),
        key_of(zone),
    );
    // Only the zones the index has on this target: a scan of the store per pass made the
    // passes of n zones cost n² comparisons. The store's copy decides, the index may lag.
    ctx.names
        .managing(&zone.spec.zone_name, &zone.spec.backend.server)
        .iter()
        .filter_map(|r| ctx.zones.get(r))
        .filter(|other| {
            other.spec.zone_name == zone.spec.zone_name
                && other.spec.backend.server == zone.spec.backend.server
                && other.meta().deletion_timestamp.is_none()
                && key_of(other) != me.1
        })
        .map(|other| {
            (
                other.meta().creation_timestamp.clone().map(|t| t.0),
                key_of(&other),
            )
        })
        .filter(|other| *other < me)
        .min()
        .map(|(_, key)| key)
}

async fn publish(ctx: &Context, zone: &DnsZone, events: &[ZoneEvent], action: &str) {
    let reference = zone.object_ref(&());
    let key = key_of(zone);
    for e in events {
        let event = KubeEvent {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.clone(),
            note: Some(e.note.clone()),
            action: super::events::action_for(action, &e.note),
            secondary: None,
        };
        if let Err(err) = ctx.events.publish(&key, &event, &reference).await {
            tracing::warn!(error = %err, reason = %e.reason, "publishing an event failed");
        }
    }
}

async fn write_status(
    ctx: &Context,
    zone: &DnsZone,
    (base, status): (&DnsZoneStatus, &DnsZoneStatus),
    rt: &mut super::context::ZoneRuntime,
) -> Result<Option<String>, Error> {
    let ns = zone.namespace().unwrap_or_default();
    let api: Api<DnsZone> = Api::namespaced(ctx.client.clone(), &ns);
    let result = super::status::write_zone_status(&api, zone, base, status).await;
    match result {
        Ok(w) => {
            rt.written = Some((w.from, w.status));
            rt.status_unwritten = false;
            Ok(w.written)
        }
        Err(e) => {
            // Kept even when the write failed: it may hold a history entry for changes that
            // landed, which the next pass would not find again.
            rt.written = Some((zone.resource_version(), status.clone()));
            rt.status_unwritten = true;
            Err(e.into())
        }
    }
}

fn backoff(failures: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << failures.min(6));
    Duration::from_secs(secs.min(300))
}

/// While a ZoneSync runs the zone is read-only: its phase says Syncing, and a spec edit made
/// meanwhile shows as `Ready=False reason=Syncing` until it is applied after the sync.
fn hold_for_sync(zone: &DnsZone, status: &mut DnsZoneStatus) {
    status.phase = Some(ZonePhase::Syncing);
    if status.observed_generation != zone.meta().generation {
        set_condition(
            &mut status.conditions,
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
            status.observed_generation,
            &zone_status::now(),
        );
    }
}

/// The reason of a pass that ended without the zone Ready, for the reconcile metric.
type Failure = std::sync::Mutex<Option<String>>;

async fn apply(zone: Arc<DnsZone>, ctx: &Context, failure: &Failure) -> Result<Action, Error> {
    let key = key_of(&zone);
    let ns = zone.namespace().unwrap_or_default();
    let runtime = ctx.runtime(&key).await;
    let mut rt = runtime.lock().await;
    if rt.uid != zone.meta().uid {
        // Deleted and created again under its name: nothing of the old object applies.
        *rt = ZoneRuntime {
            uid: zone.meta().uid.clone(),
            ..ZoneRuntime::default()
        };
    }
    rt.labels = Some(zone_labels(&zone));
    // Taken whatever follows, so a touch during this pass wakes the zone again after it.
    let touched = ctx.touched.take(&ObjectRef::from_obj(zone.as_ref()));
    let settled = rt.settled.take();
    if let Some(quiet) = settled
        .as_ref()
        .filter(|_| !touched)
        .and_then(|s| s.quiet_for(&zone, Instant::now()))
    {
        rt.settled = settled;
        // Once the object is past the version it was computed from, the copy kept for a
        // lagging cache is never read again (`status_of`): a status per zone less in memory.
        let behind = |(from, _): &(Option<String>, _)| *from == zone.metadata.resource_version;
        rt.written = rt.written.take().filter(behind);
        return Ok(Action::requeue(quiet));
    }
    let current = rt.status_of(&zone);
    let mut status = current.clone();
    if zone_syncs::record_finished(&ctx.syncs, &zone, &mut status) {
        // A recorded sync accounts for the backend up to its serial.
        rt.drift_base = status.serial.map(|serial| DriftBase { serial, zone: None });
        ctx.locks.set_baseline(&key, None);
    }
    let interval = zone.spec.sync.interval;
    let healthy_requeue = if interval.is_zero() {
        ctx.settings.idle_requeue
    } else {
        interval.0
    };
    // The claim covers a sync from its start, the object until its final status is in the
    // store, so the pass after a sync always sees that sync recorded first.
    if ctx.locks.is_syncing(&key) || zone_syncs::is_running(&ctx.syncs, &zone) {
        hold_for_sync(&zone, &mut status);
        if status != current || rt.status_unwritten {
            write_status(ctx, &zone, (&current, &status), &mut rt).await?;
        }
        // The sync's final status wakes this zone again; the requeue is only a safety net.
        return Ok(Action::requeue(healthy_requeue));
    }
    let _zone_lock = ctx.locks.lock(&key).await;
    // The check is due once an interval has passed since the last sync (or, never synced,
    // since the zone was created), as the API promises. A move seen by a pass before that
    // stays unaccounted (the base is kept) until the check runs.
    let since = status
        .latest_sync
        .as_ref()
        .or(zone.meta().creation_timestamp.as_ref())
        .map(|t| k8s_openapi::jiff::Timestamp::now().duration_since(t.0));
    let drift_on =
        zone.spec.zone_type == ZoneType::Primary && !interval.is_zero() && !zone.spec.suspend;
    let drift_due = drift_on && since.is_none_or(|d| d.as_secs_f64() >= interval.0.as_secs_f64());
    if drift_on && rt.drift_base.is_none() {
        // After a restart: the serial the status recorded; the zone itself is not known.
        rt.drift_base = status.serial.map(|serial| DriftBase { serial, zone: None });
    }
    // After a failed pass the serial may have moved by zonekeeper's own UPDATEs that landed
    // unrecorded; a sync then would report them as out-of-band. The serial is taken as it is.
    let after_failure = rt.failures > 0;
    let cx = FoldContext {
        zone_name: &zone.spec.zone_name,
        server: &zone.spec.backend.server,
        uid: zone.meta().uid.as_deref(),
        generation: zone.meta().generation,
        user_id: requested_by(zone.meta()),
        history_limit: zone.spec.history_limit,
        drift_policy: zone.spec.management.drift_policy,
        now: zone_status::now(),
    };

    let mut host = OperatorHost {
        ctx,
        zone: &zone,
        ns: &ns,
        rt: &mut rt,
        owned_before: None,
    };
    let pass = reconcile_zone(
        &mut host,
        &zone.spec,
        conflict_winner(&zone, ctx),
        Mode::Apply,
    );
    // A deletion must not wait for a pass against a slow or endless server: the pass is
    // dropped (its connection and the zone's locks with it) and the cleanup runs next.
    let outcome = tokio::select! {
        outcome = pass => outcome?,
        () = deleted(ctx, &zone) => {
            tracing::info!(zone = %zone.spec.zone_name, server = %zone.spec.backend.server, "pass cancelled: the object is being deleted");
            return Ok(Action::requeue(DELETION_REQUEUE));
        }
    };
    let owned_changed = host
        .owned_before
        .take()
        .is_some_and(|before| ownership::digest(&rt.state.owned) != before);
    // A failed save must not drop the pass's status (its history entry records UPDATEs that
    // landed): the status is written first, the error returned after, the save retried.
    let mut owned_error = None;
    if owned_changed || rt.owned_unsaved {
        let saved = ownership_store::save(&ctx.client, &zone, &rt.state.owned, &rt.owned_chunks);
        match saved.await {
            Ok(now) => (rt.owned_unsaved, rt.owned_chunks) = (false, now),
            Err(e) => {
                tracing::warn!(error = %e, "saving ownership failed; retried on the next pass");
                // It may have left chunks no pointer names: the next save lists them.
                (rt.owned_unsaved, rt.owned_chunks) = (true, Default::default());
                owned_error = Some(e);
            }
        }
    }
    let observed_serial = outcome.pass_report().map(|report| {
        record_metrics(ctx, &zone, report);
        report.serial_before
    });
    let failed = outcome.needs_retry();
    let mut events = fold(&mut status, &outcome, &cx);
    let changed_backend = outcome
        .pass_report()
        .and_then(|r| r.applied.as_ref())
        .is_some_and(|a| a.batches_ok > 0);
    events.extend(
        super::outgoing::reconcile(
            ctx.outgoing.as_deref(),
            &ctx.client,
            &zone,
            &mut status,
            changed_backend,
        )
        .await,
    );
    // Events first: whoever sees the new status finds the event that goes with it.
    publish(ctx, &zone, &events, "Reconcile").await;
    let mut left_version = zone.resource_version();
    if status != current || rt.status_unwritten {
        left_version = write_status(ctx, &zone, (&current, &status), &mut rt).await?;
    }
    if let Some(e) = owned_error {
        return Err(e.into());
    }
    let ready = zone_status::is_true(&status.conditions, condition::READY);
    ctx.metrics.zone_readiness(&zone_labels(&zone), ready);
    if let Some(observed) = observed_serial.filter(|_| drift_on && !failed) {
        let base = rt.drift_base.take();
        let moved = base
            .as_ref()
            .is_some_and(|b| b.serial != i64::from(observed));
        if moved && !after_failure && !drift_due {
            rt.drift_base = base;
        } else {
            let base = match base {
                Some(b) if moved && !after_failure => {
                    zone_syncs::drift_check(
                        &ctx.client,
                        &ctx.syncs,
                        &zone,
                        Some(b.serial),
                        observed,
                        b.zone.clone(),
                    )
                    .await;
                    // The requested sync must report the drift: its starting point stays the
                    // zone as zonekeeper last saw it, now under the serial the status holds.
                    status.serial.map(|serial| DriftBase {
                        serial,
                        zone: b.zone,
                    })
                }
                other => other,
            };
            // The new base: the serial after this pass, and while the zone was never synced
            // the zone itself, which a first sync will start from.
            let reuse = base
                .filter(|b| Some(b.serial) == status.serial)
                .and_then(|b| b.zone);
            let never_synced = status.latest_sync.is_none();
            rt.drift_base = status.serial.map(|serial| DriftBase {
                serial,
                zone: never_synced
                    .then(|| reuse.or_else(|| rt.state.snapshot.clone()))
                    .flatten(),
            });
            // A sync someone creates by hand starts from it too (it waits for this lock).
            ctx.locks
                .set_baseline(&key, rt.drift_base.as_ref().and_then(|b| b.zone.clone()));
            if let Some(b) = rt.drift_base.as_ref().and_then(|b| b.zone.clone()) {
                zone_syncs::persist_baseline(
                    &ctx.client,
                    &ctx.locks,
                    &zone,
                    &b,
                    status.serial,
                    changed_backend,
                )
                .await;
            }
        }
    }
    if failed {
        rt.failures = rt.failures.saturating_add(1);
        let reason = zone_status::condition(&status.conditions, condition::READY)
            .map(|c| c.reason.clone())
            .unwrap_or_default();
        tracing::warn!(reason = %reason, failures = rt.failures, "zone not ready");
        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        Ok(Action::requeue(
            backoff(rt.failures - 1).min(healthy_requeue),
        ))
    } else {
        rt.failures = 0;
        rt.settled = left_version.map(|resource_version| Settled {
            resource_version,
            generation: zone.metadata.generation,
            due: Instant::now() + healthy_requeue,
        });
        Ok(Action::requeue(healthy_requeue))
    }
}

/// The Kubernetes side of a reconcile: Secrets and ConfigMaps from the API, ownership from its
/// ConfigMap, the connection judged against the last accepted one.
struct OperatorHost<'a> {
    ctx: &'a Context,
    zone: &'a DnsZone,
    ns: &'a str,
    rt: &'a mut super::context::ZoneRuntime,
    /// The digest of ownership as the pass found it, so it is written back only when it
    /// changed (a copy of a million-RRset list would cost more than the list's own memory).
    owned_before: Option<u64>,
}

impl ZoneHost for OperatorHost<'_> {
    type Error = Error;
    type Lookup = Fetched;

    async fn lookup(&mut self) -> Result<Fetched, Error> {
        Ok(fetch_lookup(&self.ctx.client, self.ns, self.zone).await?)
    }

    async fn test_connection(
        &mut self,
        connection: &mut Connection,
    ) -> Result<Option<String>, PassError> {
        test_connection(self.rt, connection).await
    }

    fn observe(&mut self, connection: &Connection) -> Observing<Error> {
        Observing::start(connection.clone(), self.rt.state.snapshot.take())
    }

    async fn state(&mut self, _origin: &Name) -> Result<&mut ZoneState, Error> {
        if !self.rt.owned_loaded {
            (self.rt.state.owned, self.rt.owned_chunks) =
                ownership_store::load(&self.ctx.client, self.zone).await?;
            self.rt.owned_loaded = true;
        }
        self.owned_before = Some(ownership::digest(&self.rt.state.owned));
        Ok(&mut self.rt.state)
    }
}

/// VinylDNS Update Zone's "400 connection failed": a changed backend is tested with a TSIG-signed SOA query
/// before it is accepted; when it fails and an earlier one was accepted, the earlier one is
/// used and the failure is reported. Returns the rejection message, if any.
async fn test_connection(
    rt: &mut super::context::ZoneRuntime,
    cfg: &mut Connection,
) -> Result<Option<String>, PassError> {
    if rt.accepted_backend.as_ref() == Some(&cfg.backend) {
        return Ok(None);
    }
    match pass::soa_serial(&cfg.backend, &cfg.origin).await {
        Ok(_) => {
            rt.accepted_backend = Some(cfg.backend.clone());
            Ok(None)
        }
        Err(e) => match rt.accepted_backend.clone() {
            Some(old) if old.server != cfg.backend.server || old.key != cfg.backend.key => {
                let message = format!("{} ({})", e, cfg.backend.server);
                if cfg.transfer == cfg.backend {
                    cfg.transfer = old.clone();
                }
                cfg.backend = old;
                Ok(Some(message))
            }
            _ => Err(e),
        },
    }
}

/// Drops what the operator kept for a deleted zone, its metric series included.
async fn forget(ctx: &Context, zone: &DnsZone) {
    if let (Some(out), Ok(origin)) = (&ctx.outgoing, Name::from_ascii(&zone.spec.zone_name)) {
        out.remove(&key_of(zone), &origin);
    }
    ctx.forget(&key_of(zone)).await;
    ctx.metrics.zone_deleted(&zone_labels(zone));
}

async fn cleanup(zone: Arc<DnsZone>, ctx: &Context) -> Result<Action, Error> {
    let name = zone.spec.zone_name.clone();
    if zone.spec.deletion_policy == DeletionPolicy::Retain
        || zone.spec.zone_type == ZoneType::Secondary
    {
        publish(
            ctx,
            &zone,
            &[ZoneEvent {
                warning: false,
                reason: "Retained".into(),
                note: format!(
                    "zone {name}: records left on {} (deletionPolicy Retain)",
                    zone.spec.backend.server
                ),
            }],
            "Delete",
        )
        .await;
        forget(ctx, &zone).await;
        return Ok(Action::await_change());
    }
    let result = delete_records(&zone, ctx).await;
    match result {
        Err(CleanupError::Cancelled(why)) => {
            // No event: the object is gone, or the next operator carries on. An error (not
            // Ok) keeps kube-runtime from taking a finalizer off a new object of the name.
            tracing::info!(zone = %name, server = %zone.spec.backend.server, "{why}");
            Err(Error::Cleanup {
                zone: name,
                detail: why.into(),
            })
        }
        Ok(note) => {
            publish(
                ctx,
                &zone,
                &[ZoneEvent {
                    warning: false,
                    reason: "RecordsDeleted".into(),
                    note,
                }],
                "Delete",
            )
            .await;
            forget(ctx, &zone).await;
            Ok(Action::await_change())
        }
        Err(detail) => {
            let since = zone
                .meta()
                .deletion_timestamp
                .as_ref()
                .map(|t| {
                    k8s_openapi::jiff::Timestamp::now()
                        .duration_since(t.0)
                        .as_secs()
                })
                .unwrap_or(0);
            let limit = i64::try_from(ctx.settings.cleanup_timeout.as_secs()).unwrap_or(i64::MAX);
            if since >= limit {
                let note = format!(
                    "zone {name}: giving up deleting records on {} after {since}s, the object is released and the records are left: {detail}",
                    zone.spec.backend.server
                );
                publish(
                    ctx,
                    &zone,
                    &[ZoneEvent {
                        warning: true,
                        reason: "CleanupAbandoned".into(),
                        note,
                    }],
                    "Delete",
                )
                .await;
                forget(ctx, &zone).await;
                Ok(Action::await_change())
            } else {
                publish(
                    ctx,
                    &zone,
                    &[ZoneEvent {
                        warning: true,
                        reason: "CleanupFailed".into(),
                        note: format!("zone {name}: {detail}; retrying"),
                    }],
                    "Delete",
                )
                .await;
                Err(Error::Cleanup { zone: name, detail })
            }
        }
    }
}
