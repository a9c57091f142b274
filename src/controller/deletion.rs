//! Deleting a DnsZone never waits on the operator without need, and no reconcile runs
//! unnoticed past its limit.
//!
//! Which DnsZones carry the cleanup finalizer. Only a Primary zone with `deletionPolicy:
//! DeleteRecords` has work to do on deletion; any other zone is released by the API server
//! at once, so a wedged operator can never hold its deletion. A zone whose policy changed
//! to `Retain` has the finalizer taken off again.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::dns_zone::{Error, key_of};
use super::ownership_store;
use super::references::fetch_lookup;
use crate::dns::diff::GuardViolation;
use crate::dns::transfer::TransferOptions;
use crate::reconcile::config;
use crate::reconcile::config::ConfigError;
use crate::reconcile::pass::{self, Mode, PassError};

use super::dns_zone::FINALIZER;
use crate::api::DnsZone;
use crate::api::dns_zone::{DeletionPolicy, ZoneType};

/// Whether deleting `zone` deletes records, so must wait for the operator.
pub fn needs_finalizer(zone: &DnsZone) -> bool {
    zone.spec.deletion_policy == DeletionPolicy::DeleteRecords
        && zone.spec.zone_type == ZoneType::Primary
}

/// Whether `zone` carries zonekeeper's finalizer.
pub fn has_finalizer(zone: &DnsZone) -> bool {
    zone.finalizers().iter().any(|f| f == FINALIZER)
}

/// Takes zonekeeper's finalizer off `zone`. The patch tests the finalizer is still at the
/// index this copy shows, so a list changed meanwhile fails (422) instead of losing
/// another controller's finalizer; the retry reads the object again.
pub async fn remove_finalizer(api: &Api<DnsZone>, zone: &DnsZone) -> Result<(), kube::Error> {
    let Some(index) = zone.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let ops = serde_json::json!([
        {"op": "test", "path": path, "value": FINALIZER},
        {"op": "remove", "path": path},
    ]);
    let patch = serde_json::from_value(ops).map_err(kube::Error::SerdeError)?;
    api.patch::<DnsZone>(
        &zone.name_any(),
        &PatchParams::default(),
        &Patch::Json(patch),
    )
    .await?;
    tracing::info!(
        zone = %zone.spec.zone_name,
        server = %zone.spec.backend.server,
        object = %zone.meta().name.as_deref().unwrap_or_default(),
        "finalizer removed: deleting this zone leaves its records"
    );
    Ok(())
}

/// How often a running pass looks for its object's deletion in the controller's store.
const DELETION_POLL: Duration = Duration::from_millis(200);
/// The cleanup of a zone whose pass was cancelled runs this soon after.
pub const DELETION_REQUEUE: Duration = Duration::from_millis(100);

/// Resolves once `zone` is being deleted, gone, or replaced by a new object of its name.
pub async fn deleted(ctx: &Context, zone: &DnsZone) {
    let object = ObjectRef::from_obj(zone);
    let uid = zone.meta().uid.clone();
    loop {
        let gone = match ctx.zones.get(&object) {
            None => true,
            Some(now) => now.meta().deletion_timestamp.is_some() || now.meta().uid != uid,
        };
        if gone {
            return;
        }
        tokio::time::sleep(DELETION_POLL).await;
    }
}

/// Why a cleanup stopped before it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Cancelled {
    /// Nothing waits for it any more: the object is gone or replaced by a new one of its
    /// name, or our finalizer was taken off by hand. Going on could delete the records of a
    /// zone created again under the same name.
    #[error("cleanup cancelled: the object was released (finalizer removed by hand) or replaced")]
    Released,
    /// The operator stops; the finalizer stays, so the next operator runs the cleanup again.
    #[error("cleanup cancelled: the operator is stopping, the next one deletes the records")]
    Stopping,
}

/// Resolves once the cleanup of `zone` must stop (see [`Cancelled`]).
pub async fn cleanup_cancelled(ctx: &Context, zone: &DnsZone) -> Cancelled {
    let object = ObjectRef::from_obj(zone);
    let uid = zone.meta().uid.clone();
    let released = async {
        loop {
            let released = match ctx.zones.get(&object) {
                None => true,
                Some(now) => now.meta().uid != uid || !has_finalizer(&now),
            };
            if released {
                return;
            }
            tokio::time::sleep(DELETION_POLL).await;
        }
    };
    let mut stopping = ctx.stopping.subscribe();
    let stopping = async {
        // The sender lives in `ctx`, so `Err` (sender gone) cannot happen while we run.
        if stopping.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = released => Cancelled::Released,
        () = stopping => Cancelled::Stopping,
    }
}

/// Beyond its transfers (a refresh and a re-check, each bounded by the zone's deadline) a
/// pass waits on UPDATE round trips and API writes, each bounded by its own timeout.
const RECONCILE_GRACE: Duration = Duration::from_secs(15 * 60);

/// The longest a reconcile of `zone` may run before `/livez` reports the loop as stuck.
pub fn reconcile_limit(zone: &DnsZone) -> Duration {
    let records = zone
        .status
        .as_ref()
        .and_then(|s| s.record_count)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let deadline = TransferOptions::bounded(config::transfer_bounds(&zone.spec), records).deadline;
    deadline.saturating_mul(3).saturating_add(RECONCILE_GRACE)
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
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// Deletes the RRsets the zone manages; returns the event note. Bounded by the zone's
/// transfer deadline and UPDATE timeouts, and given up at once (its connection and the
/// zone's locks dropped) when the object is released or the operator stops.
pub(super) async fn delete_records(zone: &DnsZone, ctx: &Context) -> Result<String, CleanupError> {
    tokio::select! {
        result = delete_managed(zone, ctx) => result,
        why = cleanup_cancelled(ctx, zone) => Err(why.into()),
    }
}

async fn delete_managed(zone: &DnsZone, ctx: &Context) -> Result<String, CleanupError> {
    let ns = zone.namespace().unwrap_or_default();
    let fetched = fetch_lookup(&ctx.client, &ns, zone).await?;
    let mut cfg = config::resolve(&zone.spec, &fetched)?;
    cfg.desired.clear();
    cfg.prune = false;
    let runtime = ctx.runtime(&key_of(zone)).await;
    let mut rt = runtime.lock().await;
    // A running sync ends before the records go.
    let _zone_lock = ctx.locks.lock(&key_of(zone)).await;
    if !rt.owned_loaded {
        (rt.state.owned, rt.owned_chunks) = ownership_store::load(&ctx.client, zone)
            .await
            .map_err(|e| CleanupError::Ownership(Box::new(e.into())))?;
        rt.owned_loaded = true;
    }
    if rt.state.owned.is_empty() {
        // Nothing was ever applied (a first pass cancelled, say): no server traffic needed.
        return Ok(format!(
            "zone {}: no managed RRsets to delete on {}",
            zone.spec.zone_name, zone.spec.backend.server
        ));
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
