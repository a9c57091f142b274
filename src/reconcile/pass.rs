//! One reconcile pass over a primary zone, with no Kubernetes in it:
//! observe (SOA; IXFR/AXFR only when the serial moved) → pure plan → deletion guard →
//! apply (batched UPDATE) → observe again, so the report says what the server really holds.
//! The operator and the standalone commands both run exactly this.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::config::{Connection, Endpoint, ZoneConfig};
use super::reason::DnsReason;
use super::soa::{ServedSoaFields, SoaMemory};
use crate::api::dns_zone::DriftPolicy;
use crate::dns::diff::{self, Change, GuardViolation, Plan, ServedSoa, SoaWant};
use crate::dns::error::DnsError;
use crate::dns::model::{Desired, Owned, Zone, decode_key, owned_key};
use crate::dns::query::{QueryOptions, query_soa};
use crate::dns::transfer::{self, TransferOptions, TransferStats};
use crate::dns::update::{self, ApplyReport, UpdateOptions};

/// What the operator keeps between passes for one zone.
#[derive(Clone, Debug, Default)]
pub struct ZoneState {
    /// RRsets this object manages on the backend, with the fingerprint of what was applied.
    pub owned: Owned,
    /// The backend's zone as last transferred, at its SOA serial. Shared, so the drift
    /// baseline of a 1M-record zone is not a second copy; a transfer that changes it copies
    /// it only while someone else still holds the old version.
    pub snapshot: Option<Arc<Zone>>,
    /// What the passes learnt about the SOA's managed fields (kept in memory only).
    pub soa: SoaMemory,
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
    /// Why the observation was not acted on; `None` when it was trusted.
    pub suspect: Option<Suspect>,
    /// The first attempt, when a concurrent writer made the pass re-plan: what it landed
    /// stays on record.
    pub earlier: Option<Box<PassReport>>,
    /// Reading the zone back after the apply failed: what landed is in `applied`, the
    /// serial and record count are those from before the apply.
    pub recheck_error: Option<PassError>,
    /// The apex SOA as the server serves it after the pass.
    pub soa: Option<ServedSoa>,
    /// The server took an UPDATE of the SOA but still serves other managed fields than the
    /// spec's: what it serves and what the spec asks.
    pub soa_not_taken: Option<SoaNotTaken>,
}

/// SOA fields a server would not take over RFC 2136.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server serves SOA RNAME {served_rname} TTL {served_ttl} after an UPDATE asking for {wanted}; it does not take these fields over RFC 2136 (PowerDNS keeps an SOA's TTL): change them on the server"
)]
pub struct SoaNotTaken {
    pub served_rname: Name,
    pub served_ttl: u32,
    pub wanted: String,
}

impl PassReport {
    /// Whether the backend now matches the spec for every managed RRset.
    pub fn in_sync(&self) -> bool {
        if self.suspect.is_some() || self.recheck_error.is_some() || self.soa_not_taken.is_some() {
            return false;
        }
        self.plan.is_empty() || self.applied.as_ref().is_some_and(ApplyReport::is_complete)
    }
}

/// An observation not trusted enough to act on: one transfer must not delete or forget.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Suspect {
    #[error(
        "the transfer at serial {serial} holds only the zone's SOA/NS where {expected} other RRset(s) were known; nothing is changed or forgotten until the records are back (set allowMassDeletion: true if the zone was emptied on purpose)"
    )]
    Emptied { serial: u32, expected: usize },
    #[error(
        "{0}; nothing is changed or forgotten until a later transfer agrees (set allowMassDeletion: true to accept it)"
    )]
    Guard(GuardViolation),
}

fn is_apex_infrastructure(origin: &Name, name: &Name, rtype: RecordType) -> bool {
    name == origin && matches!(rtype, RecordType::SOA | RecordType::NS)
}

/// RRsets of `zone` other than its apex SOA and NS.
pub fn content_rrsets(zone: &Zone) -> usize {
    let origin = zone.origin();
    let apex = [RecordType::SOA, RecordType::NS]
        .into_iter()
        .filter(|t| zone.contains(origin, *t))
        .count();
    zone.rrset_count().saturating_sub(apex)
}

/// Whether `observed` is a zone emptied to its SOA/NS while more was known: owned RRsets,
/// or content in the previous observation (`known_before`).
pub fn emptied(observed: &Zone, owned: &Owned, known_before: usize) -> Option<Suspect> {
    if content_rrsets(observed) > 0 {
        return None;
    }
    let origin = observed.origin();
    let owned_content = owned
        .keys()
        .filter(|k| !is_apex_infrastructure(origin, &k.name, k.rtype))
        .count();
    let expected = owned_content.max(known_before);
    (expected > 0).then(|| Suspect::Emptied {
        serial: observed.soa_serial().unwrap_or(0),
        expected,
    })
}

/// Why a pass could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("cannot resolve server {server:?}: {detail}")]
    Resolve { server: String, detail: String },
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error("the observation of {server} was stopped")]
    Cancelled { server: String },
}

impl PassError {
    /// The condition reason.
    pub fn reason(&self) -> DnsReason {
        match self {
            PassError::Resolve { .. } | PassError::Cancelled { .. } => DnsReason::ConnectionFailed,
            PassError::Dns(e) => DnsReason::from(e),
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

/// The endpoint's transfer options; `expected_records` (the zone's size when last seen)
/// scales the default deadline.
pub(crate) fn transfer_options(endpoint: &Endpoint, expected_records: u64) -> TransferOptions {
    TransferOptions {
        tsig: endpoint.key.clone(),
        connect_timeout: endpoint.timeout,
        idle_timeout: endpoint.timeout,
        ..TransferOptions::bounded(endpoint.bounds, expected_records)
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
    Ok(transfer::axfr_zone(addr, origin, &transfer_options(endpoint, 0)).await?)
}

/// A full transfer diffed against the snapshot `old` as it arrives
/// ([`transfer::axfr_zone_diff`]).
pub async fn axfr_zone_diff(
    endpoint: &Endpoint,
    old: &Zone,
) -> Result<(Zone, Vec<Change>, TransferStats), PassError> {
    let addr = resolve_server(&endpoint.server).await?;
    let opts = transfer_options(endpoint, old.record_count() as u64);
    Ok(transfer::axfr_zone_diff(addr, old, &opts).await?)
}

/// Brings `snapshot` to the backend's `serial`: nothing when it is there already, IXFR from
/// its serial when possible, AXFR otherwise. Returns the transfer figures when one ran.
pub async fn refresh_snapshot(
    transfer_endpoint: &Endpoint,
    origin: &Name,
    serial: u32,
    snapshot: &mut Option<Arc<Zone>>,
) -> Result<Option<TransferStats>, PassError> {
    match snapshot.as_mut() {
        Some(zone) if zone.soa_serial() == Some(serial) => Ok(None),
        Some(zone) => {
            let zone = Arc::make_mut(zone);
            let addr = resolve_server(&transfer_endpoint.server).await?;
            let opts = transfer_options(transfer_endpoint, zone.record_count() as u64);
            let (_, stats) = transfer::ixfr_refresh(addr, zone, &opts).await?;
            Ok(Some(stats))
        }
        None => {
            let (zone, stats) = axfr_zone(transfer_endpoint, origin).await?;
            *snapshot = Some(Arc::new(zone));
            Ok(Some(stats))
        }
    }
}

/// Ownership once `changes` (those flagged in `applied`) landed: RRsets written are owned with
/// the fingerprint written, deleted ones are not owned any more. One merge, in place: no
/// second list beside the first.
fn record_applied(owned: &mut Owned, changes: &[Change], applied: &[bool]) {
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for (change, done) in changes.iter().zip(applied) {
        // The SOA is never owned: its serial is the server's, its fields the spec's.
        if !done || change.key().rtype == RecordType::SOA {
            continue;
        }
        match change {
            Change::Add(s) | Change::Replace { new: s, .. } => {
                set.push((Cow::Owned(owned_key(&s.name, s.rtype)), s.fingerprint()));
            }
            Change::Delete(s) => unset.push(Cow::Owned(owned_key(&s.name, s.rtype))),
        }
    }
    owned.update(set, unset);
}

/// Runs a long pure computation (resolving or planning a zone of a million records) without
/// stalling the async worker it was called on: on a multi-threaded runtime the worker's other
/// tasks (other zones, shutdown, lease renewal) move to another thread meanwhile; on a
/// current-thread runtime, where nothing else could run anyway, it simply runs.
pub fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Desired RRsets that already match the server are owned as they are. The batch is kept
/// as indexes into `desired` (12 bytes an RRset, not a copy of its key): for a million-RRset
/// zone adopted as it is, this runs beside the observed zone at the pass's peak.
fn own_matching(owned: &mut Owned, desired: &Desired, observed: &Zone) {
    let mut set: Vec<(u32, u64)> = Vec::new();
    for i in 0..desired.len() {
        // Told from the packed bytes where they can tell; decoded only where not.
        let held = match desired.held_fingerprint(i, observed) {
            Some(held) => held,
            None => desired
                .get(i)
                .filter(|want| observed.holds(want))
                .map(|want| want.fingerprint()),
        };
        let Some(fp) = held else {
            continue;
        };
        let (Ok(index), Some(key)) = (u32::try_from(i), desired.key_bytes(i)) else {
            continue;
        };
        // Already owned as it is (every pass after the first): nothing to merge.
        if owned.get_bytes(&key) != Some(fp) {
            set.push((index, fp));
        }
    }
    if set.is_empty() {
        return;
    }
    let key = |i: u32| desired.key_bytes(i as usize).unwrap_or_default();
    set.sort_by(|a, b| key(a.0).cmp(&key(b.0)));
    owned.merge(set.iter().map(|&(i, fp)| (key(i), fp)), &[] as &[&[u8]]);
}

/// The plan for what the server holds: the changes the spec asks for (drift corrections left
/// out under driftPolicy Report), and the deletion guard's verdict (waived by
/// allowMassDeletion).
pub fn plan_pass(
    cfg: &ZoneConfig,
    observed: &Zone,
    owned: &Owned,
) -> (Plan, Result<(), GuardViolation>) {
    let mut plan = diff::plan_desired(&cfg.desired, observed, owned, cfg.prune);
    if cfg.drift_policy == DriftPolicy::Report {
        plan = plan.without_drift_corrections();
    }
    let guard = if cfg.allow_mass_deletion {
        Ok(())
    } else {
        diff::check_guard(&plan, observed.record_count(), &cfg.guard)
    };
    (plan, guard)
}

/// Ownership after a pass that sent nothing: what the server already holds as desired is
/// owned, and owned RRsets gone from spec and server alike need no deletion any more.
fn settle_ownership(owned: &mut Owned, desired: &Desired, observed: &Zone) {
    own_matching(owned, desired, observed);
    let mut wanted: Vec<Cow<'_, [u8]>> = (0..desired.len())
        .filter_map(|i| desired.key_bytes(i))
        .collect();
    wanted.sort_unstable();
    // `retain` visits keys in order: one walk along `wanted` instead of a search per key.
    let mut next = wanted.iter().map(AsRef::as_ref).peekable();
    owned.retain(|key, _| {
        while next.next_if(|w| *w < key).is_some() {}
        next.peek() == Some(&key) || {
            // Rare (owned, no longer wanted): only then is the name decoded.
            let k = decode_key(key);
            observed.contains(&k.name, k.rtype)
        }
    });
}

/// Which of `len` changes the server confirmed, from the confirmed index ranges.
fn applied_mask(ranges: &[std::ops::Range<usize>], len: usize) -> Vec<bool> {
    let mut done = vec![false; len];
    for range in ranges {
        for i in range.clone() {
            if let Some(d) = done.get_mut(i) {
                *d = true;
            }
        }
    }
    done
}

/// Observe, plan, guard, and (in `Mode::Apply`) apply and re-observe. `state` is updated in
/// place: the snapshot always, ownership only for what the server confirmed.
pub async fn run(
    cfg: &ZoneConfig,
    state: &mut ZoneState,
    mode: Mode,
) -> Result<PassReport, PassError> {
    let observed = observe(cfg.connection(), state.snapshot.take(), Stop::never()).await;
    run_observed(cfg, state, observed, mode).await
}

/// The backend as a pass found it before planning: the snapshot brought up to the server's
/// serial, or why it could not be (the snapshot then as the attempt left it).
pub struct Observed {
    pub snapshot: Option<Arc<Zone>>,
    /// Content RRsets of the snapshot before the observation: what an emptied zone is
    /// measured against.
    known_before: usize,
    result: Result<(u32, Option<TransferStats>), PassError>,
}

/// Reads the backend's SOA serial and brings `snapshot` to it. It owns what it works on, so it
/// can run on a task of its own while the zone's records are resolved ([`Observing`]). A
/// `stop` requested while the SOA query is out ends it there, the snapshot untouched; a
/// transfer, once begun, is finished (the snapshot is changed in place).
pub async fn observe(
    connection: Connection,
    mut snapshot: Option<Arc<Zone>>,
    stop: Stop,
) -> Observed {
    let known_before = snapshot.as_deref().map_or(0, content_rrsets);
    let serial = tokio::select! {
        serial = soa_serial(&connection.backend, &connection.origin) => serial,
        () = stop.requested() => Err(PassError::Cancelled {
            server: connection.backend.server.clone(),
        }),
    };
    let result = match serial {
        Ok(serial) => refresh_snapshot(
            &connection.transfer,
            &connection.origin,
            serial,
            &mut snapshot,
        )
        .await
        .map(|transfer| (serial, transfer)),
        Err(e) => Err(e),
    };
    Observed {
        snapshot,
        known_before,
        result,
    }
}

/// How an [`Observing`] asks its task to stop.
pub struct Stop(Option<tokio::sync::oneshot::Receiver<()>>);

impl Stop {
    /// For an observation nothing will stop.
    pub fn never() -> Self {
        Stop(None)
    }

    async fn requested(self) {
        let asked = match self.0 {
            Some(asked) => asked.await.is_ok(),
            None => false,
        };
        if !asked {
            // No one can ask any more (the Observing is gone, and its task with it).
            std::future::pending::<()>().await;
        }
    }
}

/// An [`observe`] running on its own task; `E` is the host's error, should it first have to
/// read the snapshot it starts from. Dropped unfinished, it stops: nothing is left reading
/// from a server for a pass that will not use it.
pub struct Observing<E> {
    server: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<Observed, E>>>,
}

impl<E: Send + 'static> Observing<E> {
    /// Observes from a snapshot in hand.
    pub fn start(connection: Connection, snapshot: Option<Arc<Zone>>) -> Self {
        Self::spawn(connection.backend.server.clone(), |stop| async move {
            Ok(observe(connection, snapshot, stop).await)
        })
    }

    /// Runs `observation` (an [`observe`] after reading the snapshot it starts from, handed
    /// the [`Stop`]) on its own task; `server` names the backend should the task be cancelled.
    pub fn spawn<F>(server: String, observation: impl FnOnce(Stop) -> F) -> Self
    where
        F: Future<Output = Result<Observed, E>> + Send + 'static,
    {
        let (stop, asked) = tokio::sync::oneshot::channel();
        Self {
            server,
            stop: Some(stop),
            task: Some(tokio::spawn(observation(Stop(Some(asked))))),
        }
    }
}

impl<E> Observing<E> {
    pub async fn finish(mut self) -> Result<Observed, E> {
        let Some(task) = self.task.take() else {
            return Ok(self.cancelled());
        };
        match task.await {
            Ok(observed) => observed,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Ok(self.cancelled()),
            },
        }
    }

    /// What the observation has when it is no longer wanted: it ends at once while its SOA
    /// query is out (an unreachable server is not waited for), and finishes a transfer it
    /// began, so the snapshot it holds stays whole.
    pub async fn stop(mut self) -> Result<Observed, E> {
        if let Some(stop) = self.stop.take() {
            // An error: the task is done already.
            let _ = stop.send(());
        }
        self.finish().await
    }

    /// Only a runtime shutting down cancels the task while it is awaited.
    fn cancelled(&self) -> Observed {
        Observed {
            snapshot: None,
            known_before: 0,
            result: Err(PassError::Cancelled {
                server: self.server.clone(),
            }),
        }
    }
}

impl<E> Drop for Observing<E> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// [`run`] from an observation made beforehand: the snapshot it brought goes into `state`
/// whatever the outcome, as an observation made inside the pass would have left it.
pub async fn run_observed(
    cfg: &ZoneConfig,
    state: &mut ZoneState,
    observed: Observed,
    mode: Mode,
) -> Result<PassReport, PassError> {
    state.snapshot = observed.snapshot;
    let known_before = observed.known_before;
    let (serial_before, transfer) = observed.result?;
    let mut transfers: Vec<TransferStats> = transfer.into_iter().collect();
    let mut report = plan_and_apply(
        cfg,
        state,
        mode,
        serial_before,
        known_before,
        &mut transfers,
    )
    .await?;
    // A concurrent writer tripped a prerequisite: observe again and re-plan once. What the
    // first attempt landed travels along, also when the second attempt cannot run.
    let conflict = report.applied.as_ref().is_some_and(ApplyReport::conflict);
    if conflict && report.recheck_error.is_none() {
        let mut first = report;
        let again = observe(cfg.connection(), state.snapshot.take(), Stop::never()).await;
        state.snapshot = again.snapshot;
        let second = match again.result {
            Ok((serial, t)) => {
                transfers.extend(t);
                plan_and_apply(cfg, state, mode, serial, known_before, &mut transfers).await
            }
            Err(e) => Err(e),
        };
        report = match second {
            Ok(mut second) => {
                second.serial_before = first.serial_before;
                second.earlier = Some(Box::new(first));
                second
            }
            Err(e) => {
                first.recheck_error = Some(e);
                first
            }
        };
    }
    report.transfers = transfers;
    Ok(report)
}

async fn plan_and_apply(
    cfg: &ZoneConfig,
    state: &mut ZoneState,
    mode: Mode,
    serial_before: u32,
    known_before: usize,
    transfers: &mut Vec<TransferStats>,
) -> Result<PassReport, PassError> {
    let empty = Zone::new(cfg.origin.clone());
    let observed = state.snapshot.as_deref().unwrap_or(&empty);
    let (plan, guard) = off_worker(|| plan_pass(cfg, observed, &state.owned));
    let suspect = if cfg.allow_mass_deletion {
        None
    } else {
        emptied(observed, &state.owned, known_before)
    };
    let mut report = PassReport {
        serial_before,
        serial_after: serial_before,
        record_count: observed.record_count(),
        plan,
        guard,
        applied: None,
        transfers: Vec::new(),
        suspect,
        earlier: None,
        recheck_error: None,
        soa: ServedSoa::of(observed),
        soa_not_taken: None,
    };
    if report.suspect.is_none() {
        add_soa_change(&mut report.plan, cfg, observed, &state.soa);
    }
    if report.suspect.is_some() {
        // Nothing sent and nothing forgotten: ownership stays as it was, and the emptied
        // observation does not become the zone's snapshot (a state directory keeps the
        // stored one; the next pass transfers afresh).
        state.snapshot = None;
        return Ok(report);
    }
    if mode == Mode::Plan || report.plan.is_empty() || report.guard.is_err() {
        if mode == Mode::Apply {
            off_worker(|| settle_ownership(&mut state.owned, &cfg.desired, observed));
            report.soa_not_taken = settle_soa(&mut state.soa, &cfg.soa, report.soa.as_ref(), None);
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
    let done = applied_mask(&applied.applied_ranges, report.plan.changes.len());
    off_worker(|| {
        record_applied(&mut state.owned, &report.plan.changes, &done);
        if let Some(observed) = state.snapshot.as_ref() {
            own_matching(&mut state.owned, &cfg.desired, observed);
        }
    });
    // From here on something may have landed: the report is returned whatever happens.
    report.applied = Some(applied);
    // Read back what the server holds now, so status reports the truth.
    match reobserve(cfg, &mut state.snapshot, transfers).await {
        Ok(serial_after) => {
            report.serial_after = serial_after;
            report.record_count = state.snapshot.as_deref().map_or(0, Zone::record_count);
            let sent_serial = report
                .plan
                .changes
                .iter()
                .zip(&done)
                .find_map(|(c, d)| match c {
                    Change::Replace { new, .. } if *d => new.rdatas.iter().find_map(|r| match r {
                        hickory_proto::rr::RData::SOA(soa) => Some(soa.serial()),
                        _ => None,
                    }),
                    _ => None,
                });
            report.soa = state.snapshot.as_deref().and_then(ServedSoa::of);
            report.soa_not_taken =
                settle_soa(&mut state.soa, &cfg.soa, report.soa.as_ref(), sent_serial);
        }
        Err(e) => report.recheck_error = Some(e),
    }
    Ok(report)
}

/// Puts the SOA change the spec asks for first in `plan` (its prerequisite names the served
/// serial, which later batches move), unless the server ignored this very request before.
/// SOA drift is listed like a managed RRset's, and not corrected under driftPolicy Report.
fn add_soa_change(plan: &mut Plan, cfg: &ZoneConfig, observed: &Zone, memory: &SoaMemory) {
    if ServedSoa::of(observed).is_some_and(|served| memory.ignored(&cfg.soa, &served)) {
        return;
    }
    let Some((change, drifted)) = diff::plan_soa(&cfg.soa, observed, memory.applied) else {
        return;
    };
    if drifted {
        plan.drifted.push(change.key());
        if cfg.drift_policy == DriftPolicy::Report {
            return;
        }
    }
    plan.changes.insert(0, change);
}

/// What a pass learnt about the SOA from what the server serves now (`served`). `sent_serial`:
/// the serial of the SOA an UPDATE the server confirmed wrote, if one was sent. Returns the
/// fields the server would not take, while that lasts.
fn settle_soa(
    memory: &mut SoaMemory,
    want: &SoaWant,
    served: Option<&ServedSoa>,
    sent_serial: Option<u32>,
) -> Option<SoaNotTaken> {
    let served = served?;
    if want.matches(served) {
        *memory = SoaMemory {
            applied: Some(want.fingerprint()),
            not_taken: None,
        };
        return None;
    }
    // The server serves the serial written with the spec's fields, yet other fields: it took
    // the UPDATE and will not take them. (An SOA ignored for its serial, because a concurrent
    // change moved the zone's on, leaves another serial and is simply planned again.)
    if sent_serial == Some(served.serial) {
        memory.not_taken = Some((want.clone(), ServedSoaFields::from(served)));
    }
    memory.ignored(want, served).then(|| SoaNotTaken {
        served_rname: served.rname.clone(),
        served_ttl: served.ttl,
        wanted: format!(
            "RNAME {} TTL {}",
            want.rname
                .as_ref()
                .map_or_else(|| served.rname.to_string(), Name::to_string),
            want.ttl
        ),
    })
}

/// The backend's serial after an apply, with the snapshot brought to it.
async fn reobserve(
    cfg: &ZoneConfig,
    snapshot: &mut Option<Arc<Zone>>,
    transfers: &mut Vec<TransferStats>,
) -> Result<u32, PassError> {
    let serial = soa_serial(&cfg.backend, &cfg.origin).await?;
    transfers.extend(refresh_snapshot(&cfg.transfer, &cfg.origin, serial, snapshot).await?);
    Ok(serial)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_proto::rr::{Record, RecordType};

    use super::*;
    use crate::dns::diff::Guard;
    use crate::dns::model::{RRset, parse_rdata};

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    fn a(owner: &str, ip: &str) -> RRset {
        let rdata = parse_rdata(RecordType::A, &origin(), ip).unwrap();
        RRset::new(
            Name::from_ascii(format!("{owner}.example.com.")).unwrap(),
            RecordType::A,
            300,
            vec![rdata],
        )
    }

    fn zone(sets: &[RRset]) -> Zone {
        let mut z = Zone::new(origin());
        z.insert(Record::from_rdata(
            origin(),
            3600,
            crate::reconcile::sync::tests::soa_rdata(1),
        ));
        for set in sets {
            z.insert_rrset(set.clone());
        }
        z
    }

    fn config(desired: Vec<RRset>) -> ZoneConfig {
        let endpoint = Endpoint {
            server: "192.0.2.1:53".into(),
            key: None,
            timeout: Duration::from_secs(1),
            key_secret: None,
            bounds: Default::default(),
        };
        ZoneConfig {
            origin: origin(),
            zone_type: crate::api::dns_zone::ZoneType::Primary,
            backend: endpoint.clone(),
            transfer: endpoint,
            desired: desired.into(),
            prune: false,
            drift_policy: DriftPolicy::Correct,
            guard: Guard {
                max_deletes: 1000,
                max_delete_percent: 100,
            },
            allow_mass_deletion: false,
            masters: Vec::new(),
            soa: SoaWant {
                rname: None,
                ttl: 3600,
            },
        }
    }

    #[test]
    fn drift_is_corrected_or_only_reported_as_the_policy_says() {
        let want = a("www", "192.0.2.80");
        let observed = zone(&[a("www", "192.0.2.99")]);
        // We applied exactly `want` before; someone changed it on the server since.
        let owned = Owned::from([(want.key(), want.fingerprint())]);

        let mut cfg = config(vec![want.clone()]);
        let (plan, guard) = plan_pass(&cfg, &observed, &owned);
        assert_eq!(plan.drifted, [want.key()]);
        assert_eq!(plan.counts(), (0, 1, 0), "Correct: the spec is re-asserted");
        assert!(guard.is_ok());

        cfg.drift_policy = DriftPolicy::Report;
        let (plan, _) = plan_pass(&cfg, &observed, &owned);
        assert_eq!(plan.drifted, [want.key()], "still reported");
        assert!(plan.is_empty(), "Report: nothing is sent");
    }

    #[test]
    fn the_deletion_guard_refuses_a_mass_deletion_unless_allowed() {
        let extra: Vec<RRset> = (0..20).map(|i| a(&format!("h{i}"), "192.0.2.1")).collect();
        let observed = zone(&extra);
        let mut cfg = config(vec![a("www", "192.0.2.80")]);
        cfg.prune = true;
        cfg.guard = Guard {
            max_deletes: 5,
            max_delete_percent: 100,
        };
        let (plan, guard) = plan_pass(&cfg, &observed, &Owned::new());
        assert_eq!(plan.counts(), (1, 0, 20));
        let violation = guard.unwrap_err();
        assert_eq!(violation.deletes, 20);
        assert_eq!(violation.limit, "maxDeletes 5");

        cfg.allow_mass_deletion = true;
        let (plan, guard) = plan_pass(&cfg, &observed, &Owned::new());
        assert_eq!(plan.counts(), (1, 0, 20), "the same plan");
        assert!(guard.is_ok(), "allowMassDeletion waives the guard");
    }

    #[test]
    fn a_pass_that_sends_nothing_owns_what_matches_and_forgets_what_is_gone() {
        let www = a("www", "192.0.2.80");
        let left = a("left", "192.0.2.2");
        let gone = a("gone", "192.0.2.3");
        let observed = zone(&[www.clone(), left.clone()]);
        let mut owned = Owned::from([(left.key(), 7), (gone.key(), 9)]);
        settle_ownership(&mut owned, &Desired::from(vec![www.clone()]), &observed);
        assert_eq!(
            owned,
            Owned::from([
                (www.key(), www.fingerprint()),
                // Still on the server: prune may yet need to delete it, so it stays owned.
                (left.key(), 7),
            ])
        );
    }

    #[test]
    fn settling_many_keeps_wanted_or_served_ownership_and_owns_what_is_held() {
        let mx = RRset::new(
            Name::from_ascii("m.example.com.").unwrap(),
            RecordType::MX,
            300,
            vec![parse_rdata(RecordType::MX, &origin(), "10 mx.example.com.").unwrap()],
        );
        let (held_a, held_e) = (a("a", "192.0.2.1"), a("e", "192.0.2.5"));
        let changed_c = a("c", "192.0.2.3");
        let served_d = a("d", "192.0.2.4");
        let observed = zone(&[
            held_a.clone(),
            a("c", "192.0.2.33"),
            served_d.clone(),
            held_e.clone(),
            mx.clone(),
        ]);
        let desired = Desired::from(vec![
            held_e.clone(),
            mx.clone(),
            changed_c.clone(),
            held_a.clone(),
        ]);
        let mut owned = Owned::from([
            (a("b", "192.0.2.2").key(), 1),
            (changed_c.key(), 2),
            (served_d.key(), 3),
            (held_e.key(), 4),
            (a("z", "192.0.2.9").key(), 5),
        ]);
        settle_ownership(&mut owned, &desired, &observed);
        assert_eq!(
            owned,
            Owned::from([
                (held_a.key(), held_a.fingerprint()),
                // Wanted but not as served: kept with what was applied, for the plan to fix.
                (changed_c.key(), 2),
                // Not wanted, still served: prune may delete it.
                (served_d.key(), 3),
                (held_e.key(), held_e.fingerprint()),
                (mx.key(), mx.fingerprint()),
            ])
        );
    }

    #[test]
    fn only_confirmed_changes_change_ownership() {
        let added = a("new", "192.0.2.1");
        let deleted = a("old", "192.0.2.2");
        let unconfirmed = a("maybe", "192.0.2.3");
        let changes = vec![
            Change::Add(added.clone()),
            Change::Add(unconfirmed.clone()),
            Change::Delete(deleted.clone()),
        ];
        let done = applied_mask(&[0..1, 2..3, 7..9], changes.len());
        assert_eq!(
            done,
            [true, false, true],
            "out-of-range indexes are ignored"
        );
        let mut owned = Owned::from([(deleted.key(), 1)]);
        record_applied(&mut owned, &changes, &done);
        assert_eq!(owned, Owned::from([(added.key(), added.fingerprint())]));
    }

    #[test]
    fn the_soa_follows_the_spec_first_in_the_plan_with_the_serial_one_past_the_served() {
        let observed = zone(&[a("www", "192.0.2.80")]);
        let mut cfg = config(vec![a("new", "192.0.2.1")]);
        cfg.soa = SoaWant {
            rname: Some(crate::reconcile::soa::email_to_rname("first.last@example.com").unwrap()),
            ttl: 300,
        };
        let mut plan = plan_pass(&cfg, &observed, &Owned::new()).0;
        add_soa_change(&mut plan, &cfg, &observed, &SoaMemory::default());
        assert_eq!(plan.counts(), (1, 1, 0));
        assert_eq!(
            plan.changes[0].lines(),
            [
                "- example.com. 3600 IN SOA ns1.invalid. hostmaster.example.com. 1 3600 600 86400 60",
                "+ example.com. 300 IN SOA ns1.invalid. first\\.last.example.com. 2 3600 600 86400 60",
            ]
        );
        assert!(plan.drifted.is_empty(), "a spec change is not drift");
        assert_eq!(plan.deleted_rr_count(), 0, "no record of the zone goes");

        // Without spec.email the RNAME is the server's; a matching TTL plans nothing.
        cfg.soa = SoaWant {
            rname: None,
            ttl: 3600,
        };
        let mut plan = Plan::default();
        add_soa_change(&mut plan, &cfg, &observed, &SoaMemory::default());
        assert!(plan.is_empty());
    }

    #[test]
    fn soa_drift_is_reported_like_a_managed_rrset_and_left_alone_under_report() {
        let observed = zone(&[]);
        let mut cfg = config(Vec::new());
        cfg.soa.ttl = 300;
        // We had TTL 300 confirmed; someone set 3600 on the server.
        let memory = SoaMemory {
            applied: Some(cfg.soa.fingerprint()),
            not_taken: None,
        };
        let mut plan = Plan::default();
        add_soa_change(&mut plan, &cfg, &observed, &memory);
        assert_eq!(plan.drifted.len(), 1);
        assert_eq!(plan.drifted[0].rtype, RecordType::SOA);
        assert_eq!(plan.counts(), (0, 1, 0), "Correct: the spec is re-asserted");

        cfg.drift_policy = DriftPolicy::Report;
        let mut plan = Plan::default();
        add_soa_change(&mut plan, &cfg, &observed, &memory);
        assert_eq!(plan.drifted.len(), 1, "still reported");
        assert!(plan.is_empty(), "Report: nothing is sent");
    }

    #[test]
    fn a_server_that_took_the_update_but_kept_the_ttl_is_not_asked_again() {
        let before = ServedSoa::of(&zone(&[])).unwrap();
        let want = SoaWant {
            rname: None,
            ttl: 300,
        };
        // PowerDNS: the serial moved, the TTL stayed 3600.
        let after = ServedSoa {
            serial: 2,
            ..before.clone()
        };
        let mut memory = SoaMemory::default();
        // Ignored for its serial (a concurrent change moved the zone on): planned again.
        assert!(settle_soa(&mut memory, &want, Some(&after), Some(5)).is_none());
        assert!(memory.not_taken.is_none());
        let not_taken = settle_soa(&mut memory, &want, Some(&after), Some(2)).unwrap();
        assert!(not_taken.to_string().contains("TTL 3600"), "{not_taken}");
        let mut observed = zone(&[]);
        observed.set_soa_serial(2);
        let mut cfg = config(Vec::new());
        cfg.soa = want.clone();
        let mut plan = Plan::default();
        add_soa_change(&mut plan, &cfg, &observed, &memory);
        assert!(plan.is_empty(), "no serial bump on every pass");
        // Still reported on a pass that sends nothing.
        assert!(settle_soa(&mut memory, &want, Some(&after), None).is_some());
        // A server that serves what the spec asks clears it.
        let served = ServedSoa { ttl: 300, ..after };
        assert!(settle_soa(&mut memory, &want, Some(&served), None).is_none());
        assert_eq!(memory.applied, Some(want.fingerprint()));
        assert!(memory.not_taken.is_none());
    }
}
