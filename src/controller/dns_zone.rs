//! The DnsZone reconciler: resolve references, test a changed connection, run the pass, write
//! status (only when it changed) and events, and clean up on deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event as Finalize, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::status::FIELD_MANAGER;
use crate::api::dns_zone::{DeletionPolicy, ZoneType};
use crate::api::{DnsZone, DnsZoneStatus};
use crate::dns::diff::GuardViolation;
use crate::dns::model::Owned;
use crate::reconcile::config::{self, ConfigError, Lookup, ZoneConfig};
use crate::reconcile::outcome::{FoldContext, ZoneEvent, fold};
use crate::reconcile::pass::{self, Mode, PassError, ZoneState};
use crate::reconcile::status::{self as zone_status, requested_by};
use crate::reconcile::zone::{ZoneHost, reconcile_zone};

/// Keeps a DnsZone until its cleanup ran (or gave up).
pub const FINALIZER: &str = "dns.zonekeeper.io/cleanup";
/// Suffix of the ConfigMap that records which RRsets a DnsZone manages.
pub const OWNED_SUFFIX: &str = "-zonekeeper-owned";

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

fn key_of(zone: &DnsZone) -> String {
    format!(
        "{}/{}",
        zone.namespace().unwrap_or_default(),
        zone.name_any()
    )
}

/// Runs the controller until `shutdown` resolves. `namespace` `None` watches every namespace.
pub async fn run(
    ctx_builder: impl FnOnce(kube::runtime::reflector::Store<DnsZone>) -> Arc<Context>,
    client: kube::Client,
    namespace: Option<String>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let zones: Api<DnsZone> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let secrets: Api<Secret> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let config_maps: Api<ConfigMap> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let zones_api = zones.clone();
    let controller = Controller::new(zones, watcher::Config::default().any_semantic())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let store = controller.store();
    let ctx = ctx_builder(store.clone());
    let secret_store = store.clone();
    let cm_store = store.clone();
    let metrics = ctx.metrics.clone();
    // Ready once DnsZones can be listed. The Controller's own store did not report ready here
    // (`wait_until_ready` never returned while reconciles ran; cause not found), so readiness
    // is checked against the API directly, retried until it answers.
    let ready_api = zones_api.clone();
    tokio::spawn(async move {
        let params = kube::api::ListParams::default().limit(1);
        let mut wait = Duration::from_millis(200);
        loop {
            match ready_api.list_metadata(&params).await {
                Ok(_) => {
                    metrics.set_ready();
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list DnsZones yet; not ready");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
    let syncs = super::zone_sync::run(
        ctx.clone(),
        namespace.clone(),
        concurrency,
        shutdown.clone(),
    );
    let zones = controller
        .watches(
            secrets,
            watcher::Config::default(),
            move |secret: Secret| {
                referencing(&secret_store, &secret.metadata, |z, name| {
                    z.spec
                        .backend
                        .tsig_key_secret_ref
                        .as_ref()
                        .is_some_and(|r| r.name == name)
                        || z.spec
                            .transfer
                            .as_ref()
                            .and_then(|t| t.tsig_key_secret_ref.as_ref())
                            .is_some_and(|r| r.name == name)
                })
            },
        )
        .watches(
            config_maps,
            watcher::Config::default(),
            move |cm: ConfigMap| {
                referencing(&cm_store, &cm.metadata, |z, name| {
                    z.spec
                        .records_from
                        .iter()
                        .any(|s| s.config_map_ref.name == name)
                })
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile ended with an error");
            }
        });
    futures::join!(zones, syncs);
}

fn referencing(
    store: &kube::runtime::reflector::Store<DnsZone>,
    meta: &ObjectMeta,
    refers: impl Fn(&DnsZone, &str) -> bool,
) -> Vec<ObjectRef<DnsZone>> {
    let (Some(name), ns) = (meta.name.as_deref(), meta.namespace.as_deref()) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|z| z.namespace().as_deref() == ns && refers(z, name))
        .map(|z| ObjectRef::from_obj(z.as_ref()))
        .collect()
}

/// Kubernetes API errors: retry with a growing delay.
pub fn error_policy(zone: Arc<DnsZone>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(zone = %zone.spec.zone_name, object = %key_of(&zone), error = %error, "reconcile failed");
    ctx.metrics
        .reconciled("DnsZone", "error", "KubernetesApi", 0.0);
    Action::requeue(Duration::from_secs(5))
}

/// One reconcile of one DnsZone.
#[tracing::instrument(skip_all, fields(zone = %zone.spec.zone_name, object = %key_of(&zone), server = %zone.spec.backend.server))]
pub async fn reconcile(zone: Arc<DnsZone>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let ns = zone.namespace().unwrap_or_default();
    let api: Api<DnsZone> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, zone, |event| async {
        match event {
            Finalize::Apply(zone) => apply(zone, &ctx).await,
            Finalize::Cleanup(zone) => cleanup(zone, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    if result.is_ok() {
        ctx.metrics
            .reconciled("DnsZone", "ok", "", started.elapsed().as_secs_f64());
    }
    result
}

/// Secrets and ConfigMaps of the zone's namespace, read once per reconcile.
pub struct Fetched {
    secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

impl Lookup for Fetched {
    fn secret(&self, name: &str, key: &str) -> Option<Option<Vec<u8>>> {
        let data = self.secrets.get(name)?.as_ref()?;
        Some(data.get(key).cloned())
    }

    fn config_map(&self, name: &str, key: &str) -> Option<String> {
        self.config_maps.get(name)?.as_ref()?.get(key).cloned()
    }
}

/// Reads the Secrets and ConfigMaps a DnsZone names.
pub async fn fetch_lookup(
    client: &kube::Client,
    ns: &str,
    zone: &DnsZone,
) -> Result<Fetched, kube::Error> {
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let cms_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut secret_names = BTreeSet::new();
    if let Some(r) = &zone.spec.backend.tsig_key_secret_ref {
        secret_names.insert(r.name.clone());
    }
    if let Some(r) = zone
        .spec
        .transfer
        .as_ref()
        .and_then(|t| t.tsig_key_secret_ref.as_ref())
    {
        secret_names.insert(r.name.clone());
    }
    let mut secrets = BTreeMap::new();
    for name in secret_names {
        let data = secrets_api.get_opt(&name).await?.map(|s| {
            let mut out: BTreeMap<String, Vec<u8>> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            for (k, v) in s.string_data.unwrap_or_default() {
                out.insert(k, v.into_bytes());
            }
            out
        });
        secrets.insert(name, data);
    }
    let mut config_maps = BTreeMap::new();
    for source in &zone.spec.records_from {
        let name = &source.config_map_ref.name;
        if !config_maps.contains_key(name) {
            let data = cms_api
                .get_opt(name)
                .await?
                .map(|c| c.data.unwrap_or_default());
            config_maps.insert(name.clone(), data);
        }
    }
    Ok(Fetched {
        secrets,
        config_maps,
    })
}

/// The older DnsZone managing the same zone on the same server, if any.
fn conflict_winner(zone: &DnsZone, ctx: &Context) -> Option<String> {
    let me = (
        zone.meta().creation_timestamp.clone().map(|t| t.0),
        key_of(zone),
    );
    ctx.zones
        .state()
        .iter()
        .filter(|other| {
            key_of(other) != me.1
                && other.spec.zone_name == zone.spec.zone_name
                && other.spec.backend.server == zone.spec.backend.server
                && other.meta().deletion_timestamp.is_none()
        })
        .map(|other| {
            (
                other.meta().creation_timestamp.clone().map(|t| t.0),
                key_of(other),
            )
        })
        .filter(|other| *other < me)
        .min()
        .map(|(_, key)| key)
}

fn owned_map_name(zone: &DnsZone) -> String {
    format!("{}{OWNED_SUFFIX}", zone.name_any())
}

async fn load_owned(ctx: &Context, zone: &DnsZone) -> Result<Owned, Error> {
    let ns = zone.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let name = owned_map_name(zone);
    let Some(cm) = api.get_opt(&name).await? else {
        return Ok(Owned::new());
    };
    let text = cm
        .data
        .and_then(|d| d.get("rrsets").cloned())
        .unwrap_or_default();
    crate::reconcile::ownership::parse_owned(&text).map_err(|e| Error::Ownership {
        name,
        detail: e.to_string(),
    })
}

async fn save_owned(ctx: &Context, zone: &DnsZone, owned: &Owned) -> Result<(), Error> {
    let ns = zone.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = OwnerReference {
        api_version: "dns.zonekeeper.io/v1alpha1".into(),
        kind: "DnsZone".into(),
        name: zone.name_any(),
        uid: zone.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": owned_map_name(zone),
            "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "zonekeeper"},
            "ownerReferences": [owner],
        },
        "data": {"rrsets": crate::reconcile::ownership::format_owned(owned)},
    });
    api.patch(
        &owned_map_name(zone),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

async fn publish(ctx: &Context, zone: &DnsZone, events: &[ZoneEvent], action: &str) {
    let reference = zone.object_ref(&());
    for e in events {
        let event = KubeEvent {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.clone(),
            note: Some(e.note.clone()),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(err) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %err, reason = %e.reason, "publishing an event failed");
        }
    }
}

async fn write_status(ctx: &Context, zone: &DnsZone, status: &DnsZoneStatus) -> Result<(), Error> {
    let ns = zone.namespace().unwrap_or_default();
    let api: Api<DnsZone> = Api::namespaced(ctx.client.clone(), &ns);
    Ok(super::status::apply_status(&api, &zone.name_any(), status).await?)
}

fn backoff(failures: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << failures.min(6));
    Duration::from_secs(secs.min(300))
}

async fn apply(zone: Arc<DnsZone>, ctx: &Context) -> Result<Action, Error> {
    let key = key_of(&zone);
    let ns = zone.namespace().unwrap_or_default();
    if let Some(action) = super::zone_sync::hold_for_sync(&zone, ctx).await? {
        return Ok(action);
    }
    let runtime = ctx.runtime(&key).await;
    let mut rt = runtime.lock().await;
    let current = super::zone_sync::current_status(&zone, ctx, &mut rt).await?;
    let mut status = current.clone();
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
    let interval = zone.spec.sync.interval;
    let healthy_requeue = if interval.is_zero() {
        ctx.settings.idle_requeue
    } else {
        interval.0
    };

    let mut host = OperatorHost {
        ctx,
        zone: &zone,
        ns: &ns,
        rt: &mut rt,
        owned_before: None,
    };
    let outcome = reconcile_zone(
        &mut host,
        &zone.spec,
        conflict_winner(&zone, ctx),
        Mode::Apply,
    )
    .await?;
    if let Some(before) = host.owned_before.take()
        && rt.state.owned != before
    {
        save_owned(ctx, &zone, &rt.state.owned).await?;
    }
    if let Some(report) = outcome.pass_report() {
        record_metrics(ctx, &zone, report);
    }
    let failed = outcome.needs_retry();
    let events = fold(&mut status, &outcome, &cx);
    // Events first: whoever sees the new status finds the event that goes with it.
    publish(ctx, &zone, &events, "Reconcile").await;
    if status != current {
        write_status(ctx, &zone, &status).await?;
    }
    if !failed && zone.spec.zone_type == ZoneType::Primary {
        super::zone_sync::scheduled_check(&zone, ctx, &status, &mut rt).await;
    }
    if failed {
        rt.failures = rt.failures.saturating_add(1);
        let reason = status
            .conditions
            .iter()
            .find(|c| c.type_ == zone_status::condition::READY)
            .map(|c| c.reason.clone())
            .unwrap_or_default();
        tracing::warn!(reason = %reason, failures = rt.failures, "zone not ready");
        Ok(Action::requeue(
            backoff(rt.failures - 1).min(healthy_requeue),
        ))
    } else {
        rt.failures = 0;
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
    /// Ownership as the pass found it, so it is written back only when it changed.
    owned_before: Option<Owned>,
}

impl ZoneHost for OperatorHost<'_> {
    type Error = Error;
    type Lookup = Fetched;

    async fn lookup(&mut self) -> Result<Fetched, Error> {
        Ok(fetch_lookup(&self.ctx.client, self.ns, self.zone).await?)
    }

    async fn test_connection(&mut self, cfg: &mut ZoneConfig) -> Result<Option<String>, PassError> {
        test_connection(self.rt, cfg).await
    }

    async fn state(&mut self, _origin: &Name) -> Result<&mut ZoneState, Error> {
        if !self.rt.owned_loaded {
            self.rt.state.owned = load_owned(self.ctx, self.zone).await?;
            self.rt.owned_loaded = true;
        }
        self.owned_before = Some(self.rt.state.owned.clone());
        Ok(&mut self.rt.state)
    }
}

/// Seed 002's "connection failed": a changed backend is tested with a TSIG-signed SOA query
/// before it is accepted; when it fails and an earlier one was accepted, the earlier one is
/// used and the failure is reported. Returns the rejection message, if any.
async fn test_connection(
    rt: &mut super::context::ZoneRuntime,
    cfg: &mut ZoneConfig,
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

fn record_metrics(ctx: &Context, zone: &DnsZone, report: &pass::PassReport) {
    let labels = crate::telemetry::ZoneLabels {
        namespace: zone.namespace().unwrap_or_default(),
        name: zone.name_any(),
        zone: zone.spec.zone_name.clone(),
    };
    ctx.metrics
        .zone_records
        .get_or_create(&labels)
        .set(i64::try_from(report.record_count).unwrap_or(i64::MAX));
    ctx.metrics
        .drift_rrsets
        .get_or_create(&labels)
        .set(i64::try_from(report.plan.drifted.len()).unwrap_or(i64::MAX));
    if let Some(applied) = &report.applied {
        ctx.metrics
            .update_messages
            .inc_by(applied.batches_ok as u64);
        let rrs: usize = report.plan.changes.iter().map(|c| c.rr_count()).sum();
        ctx.metrics.update_rrs.inc_by(rrs as u64);
    }
    for t in &report.transfers {
        let method = crate::telemetry::MethodLabels {
            method: t.method.query_type().to_string(),
        };
        ctx.metrics
            .transfer_bytes
            .get_or_create(&method)
            .inc_by(t.bytes);
        ctx.metrics
            .transfer_duration
            .get_or_create(&method)
            .observe(t.duration.as_secs_f64());
    }
}

async fn cleanup(zone: Arc<DnsZone>, ctx: &Context) -> Result<Action, Error> {
    let key = key_of(&zone);
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
        ctx.forget(&key).await;
        return Ok(Action::await_change());
    }
    let result = delete_records(&zone, ctx).await;
    match result {
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
            ctx.forget(&key).await;
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
                ctx.forget(&key).await;
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

/// Why deleting a zone's managed records did not (completely) happen.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ownership(Box<Error>),
    #[error(transparent)]
    Pass(#[from] PassError),
    #[error("{0}; set spec.management.allowMassDeletion: true to delete them")]
    Guard(#[source] GuardViolation),
    #[error("nothing deleted: {0}")]
    Suspect(pass::Suspect),
    #[error("deleted {applied} of {total} RRsets")]
    Incomplete { applied: usize, total: usize },
}

/// Deletes the RRsets the zone manages; returns the event note.
async fn delete_records(zone: &DnsZone, ctx: &Context) -> Result<String, CleanupError> {
    let ns = zone.namespace().unwrap_or_default();
    let fetched = fetch_lookup(&ctx.client, &ns, zone).await?;
    let mut cfg = config::resolve(&zone.spec, &fetched)?;
    cfg.desired.clear();
    cfg.prune = false;
    let runtime = ctx.runtime(&key_of(zone)).await;
    let mut rt = runtime.lock().await;
    if !rt.owned_loaded {
        rt.state.owned = load_owned(ctx, zone)
            .await
            .map_err(|e| CleanupError::Ownership(Box::new(e)))?;
        rt.owned_loaded = true;
    }
    let report = pass::run(&cfg, &mut rt.state, Mode::Apply).await?;
    if let Some(s) = report.suspect {
        return Err(CleanupError::Suspect(s));
    }
    if let Err(v) = report.guard {
        return Err(CleanupError::Guard(v));
    }
    match &report.applied {
        Some(a) if !a.is_complete() => Err(CleanupError::Incomplete {
            applied: a.applied,
            total: report.plan.changes.len(),
        }),
        _ => Ok(format!(
            "zone {}: deleted {} managed RRset(s) from {}",
            zone.spec.zone_name,
            report.plan.changes.len(),
            zone.spec.backend.server
        )),
    }
}
