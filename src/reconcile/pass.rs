//! One reconcile pass over a primary zone, with no Kubernetes in it:
//! observe (SOA; IXFR/AXFR only when the serial moved) → pure plan → deletion guard →
//! apply (batched UPDATE) → observe again, so the report says what the server really holds.
//! The operator and the standalone commands both run exactly this.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use hickory_proto::rr::Name;

use super::config::{Endpoint, ZoneConfig};
use crate::api::dns_zone::DriftPolicy;
use crate::dns::diff::{self, Change, GuardViolation, Plan, PlanInput};
use crate::dns::error::DnsError;
use crate::dns::model::{Owned, RRset, RRsetKey, Zone};
use crate::dns::query::{QueryOptions, query_soa};
use crate::dns::transfer::{self, TransferOptions, TransferStats};
use crate::dns::update::{self, ApplyReport, UpdateOptions};

/// What the operator keeps between passes for one zone.
#[derive(Clone, Debug, Default)]
pub struct ZoneState {
    /// RRsets this object manages on the backend, with the fingerprint of what was applied.
    pub owned: Owned,
    /// The backend's zone as last transferred, at its SOA serial.
    pub snapshot: Option<Zone>,
}

/// Plan only (`zonekeeper plan`) or apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plan,
    Apply,
}

/// Everything a pass found and did.
#[derive(Debug)]
pub struct PassReport {
    /// The serial before the pass.
    pub serial_before: u32,
    /// The serial after the pass (re-observed after an apply).
    pub serial_after: u32,
    /// The change planned.
    pub plan: Plan,
    /// The deletion guard's verdict on the plan.
    pub guard: Result<(), GuardViolation>,
    /// What the apply did; `None` when nothing was sent.
    pub applied: Option<ApplyReport>,
    /// Resource records in the zone after the pass.
    pub record_count: usize,
    /// The transfers this pass needed.
    pub transfers: Vec<TransferStats>,
}

impl PassReport {
    /// Whether the backend now matches the spec for every managed RRset.
    pub fn in_sync(&self) -> bool {
        self.plan.is_empty() || self.applied.as_ref().is_some_and(ApplyReport::is_complete)
    }
}

/// Why a pass could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("cannot resolve server {server:?}: {detail}")]
    Resolve { server: String, detail: String },
    #[error(transparent)]
    Dns(#[from] DnsError),
}

impl PassError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            PassError::Resolve { .. } => "ConnectionFailed",
            PassError::Dns(e) => e.reason(),
        }
    }
}

/// Resolves `host:port`, which may name the host, at the time of use.
pub async fn resolve_server(server: &str) -> Result<SocketAddr, PassError> {
    let err = |detail: String| PassError::Resolve {
        server: server.to_string(),
        detail,
    };
    let mut addrs = tokio::net::lookup_host(server)
        .await
        .map_err(|e| err(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| err("no address found".to_string()))
}

fn query_options(endpoint: &Endpoint) -> QueryOptions {
    QueryOptions {
        tsig: endpoint.key.clone(),
        timeout: endpoint.timeout,
        ..QueryOptions::default()
    }
}

fn transfer_options(endpoint: &Endpoint) -> TransferOptions {
    TransferOptions {
        tsig: endpoint.key.clone(),
        connect_timeout: endpoint.timeout,
        idle_timeout: endpoint.timeout,
        ..TransferOptions::default()
    }
}

/// The backend's SOA serial, TSIG-signed with the backend key: the connection test.
pub async fn soa_serial(endpoint: &Endpoint, origin: &Name) -> Result<u32, PassError> {
    let addr = resolve_server(&endpoint.server).await?;
    Ok(query_soa(addr, origin, &query_options(endpoint)).await?)
}

/// A full transfer into a fresh zone.
pub async fn axfr_zone(
    endpoint: &Endpoint,
    origin: &Name,
) -> Result<(Zone, TransferStats), PassError> {
    let addr = resolve_server(&endpoint.server).await?;
    Ok(transfer::axfr_zone(addr, origin, &transfer_options(endpoint)).await?)
}

/// Brings `snapshot` to the backend's `serial`: nothing when it is there already, IXFR from
/// its serial when possible, AXFR otherwise. Returns the transfer figures when one ran.
pub async fn refresh_snapshot(
    transfer_endpoint: &Endpoint,
    origin: &Name,
    serial: u32,
    snapshot: &mut Option<Zone>,
) -> Result<Option<TransferStats>, PassError> {
    match snapshot.as_mut() {
        Some(zone) if zone.soa_serial() == Some(serial) => Ok(None),
        Some(zone) => {
            let addr = resolve_server(&transfer_endpoint.server).await?;
            let (_, stats) =
                transfer::ixfr_refresh(addr, zone, &transfer_options(transfer_endpoint)).await?;
            Ok(Some(stats))
        }
        None => {
            let (zone, stats) = axfr_zone(transfer_endpoint, origin).await?;
            *snapshot = Some(zone);
            Ok(Some(stats))
        }
    }
}

/// Ownership once `changes` (those flagged in `applied`) landed: RRsets written are owned with
/// the fingerprint written, deleted ones are not owned any more.
fn owned_after(owned: &Owned, changes: &[Change], applied: &[bool]) -> Owned {
    let mut next = owned.clone();
    for (change, done) in changes.iter().zip(applied) {
        if !done {
            continue;
        }
        match change {
            Change::Add(set) | Change::Replace { new: set, .. } => {
                next.insert(set.key(), set.fingerprint());
            }
            Change::Delete(set) => {
                next.remove(&set.key());
            }
        }
    }
    next
}

/// Desired RRsets that already match the server are owned as they are.
fn own_matching(owned: &mut Owned, desired: &[RRset], observed: &Zone) {
    for want in desired {
        let key = want.key();
        if observed.holds(want) {
            owned.insert(key, want.fingerprint());
        }
    }
}

/// Observe, plan, guard, and (in `Mode::Apply`) apply and re-observe. `state` is updated in
/// place: the snapshot always, ownership only for what the server confirmed.
pub async fn run(
    cfg: &ZoneConfig,
    state: &mut ZoneState,
    mode: Mode,
) -> Result<PassReport, PassError> {
    let serial_before = soa_serial(&cfg.backend, &cfg.origin).await?;
    let mut transfers = Vec::new();
    if let Some(t) = refresh_snapshot(
        &cfg.transfer,
        &cfg.origin,
        serial_before,
        &mut state.snapshot,
    )
    .await?
    {
        transfers.push(t);
    }
    let mut report = plan_and_apply(cfg, state, mode, serial_before, &mut transfers).await?;
    // A concurrent writer tripped a prerequisite: observe again and re-plan once.
    if report.applied.as_ref().is_some_and(ApplyReport::conflict) {
        let serial = soa_serial(&cfg.backend, &cfg.origin).await?;
        if let Some(t) =
            refresh_snapshot(&cfg.transfer, &cfg.origin, serial, &mut state.snapshot).await?
        {
            transfers.push(t);
        }
        let first = report;
        report = plan_and_apply(cfg, state, mode, serial, &mut transfers).await?;
        report.serial_before = first.serial_before;
    }
    report.transfers = transfers;
    Ok(report)
}

async fn plan_and_apply(
    cfg: &ZoneConfig,
    state: &mut ZoneState,
    mode: Mode,
    serial_before: u32,
    transfers: &mut Vec<TransferStats>,
) -> Result<PassReport, PassError> {
    let empty = Zone::new(cfg.origin.clone());
    let observed = state.snapshot.as_ref().unwrap_or(&empty);
    let mut plan = diff::plan(&PlanInput {
        desired: &cfg.desired,
        observed,
        owned: &state.owned,
        prune: cfg.prune,
    });
    if cfg.drift_policy == DriftPolicy::Report {
        plan = plan.without_drift_corrections();
    }
    let guard = if cfg.allow_mass_deletion {
        Ok(())
    } else {
        diff::check_guard(&plan, observed.record_count(), &cfg.guard)
    };
    let mut report = PassReport {
        serial_before,
        serial_after: serial_before,
        record_count: observed.record_count(),
        plan,
        guard,
        applied: None,
        transfers: Vec::new(),
    };
    if mode == Mode::Plan || report.plan.is_empty() || report.guard.is_err() {
        if mode == Mode::Apply {
            own_matching(&mut state.owned, &cfg.desired, observed);
            // Owned RRsets gone from spec and server alike need no deletion any more.
            let desired: BTreeSet<RRsetKey> = cfg.desired.iter().map(RRset::key).collect();
            let observed_zone = observed;
            state
                .owned
                .retain(|k, _| desired.contains(k) || observed_zone.get(k).is_some());
        }
        return Ok(report);
    }
    let addr = resolve_server(&cfg.backend.server).await?;
    let opts = UpdateOptions {
        tsig: cfg.backend.key.clone(),
        timeout: cfg.backend.timeout,
        ..UpdateOptions::default()
    };
    let applied = update::apply(addr, &cfg.origin, &report.plan.changes, &opts).await;
    let mut done = vec![false; report.plan.changes.len()];
    for range in &applied.applied_ranges {
        for i in range.clone() {
            if let Some(d) = done.get_mut(i) {
                *d = true;
            }
        }
    }
    state.owned = owned_after(&state.owned, &report.plan.changes, &done);
    if let Some(observed) = state.snapshot.as_ref() {
        own_matching(&mut state.owned, &cfg.desired, observed);
    }
    // Read back what the server holds now, so status reports the truth.
    let serial_after = soa_serial(&cfg.backend, &cfg.origin).await?;
    if let Some(t) = refresh_snapshot(
        &cfg.transfer,
        &cfg.origin,
        serial_after,
        &mut state.snapshot,
    )
    .await?
    {
        transfers.push(t);
    }
    report.serial_after = serial_after;
    report.record_count = state.snapshot.as_ref().map_or(0, Zone::record_count);
    report.applied = Some(applied);
    Ok(report)
}
