//! Outgoing transfers, the operator side: one task per DnsZone with `spec.outgoing` follows the
//! backend (SOA poll every `checkInterval`, at once on the backend's NOTIFY and after
//! zonekeeper's own UPDATEs), publishes each new version to the transfer server, NOTIFYs the
//! peers and checks their SOA. What it sees is handed to the DnsZone reconcile, which folds it
//! into the status (the one status writer) and is woken when something changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::channel::mpsc;
use hickory_proto::rr::Name;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::{Notify, watch};

use super::outgoing_store::{OutgoingStore, StandbyTransfers};
use crate::api::DnsZone;
use crate::api::dns_zone::OutgoingTransferMethod;
use crate::dns::outgoing::{
    BacklogBounds, BacklogBytes, NotifyOutcome, NotifyRetry, NotifySources, PeerAddress, PeerAuth,
    PeerSoa, TransferHandle, TransferMethod, check_peer_soa, notify_peers,
};
use crate::dns::wire::serial_gt;
use crate::reconcile::config::Endpoint;
use crate::reconcile::outgoing::{Observation, PeerCheck, PeerObservation};
use crate::reconcile::pass;

/// How long a peer's SOA answer may take.
const PEER_CHECK_DEADLINE: Duration = Duration::from_secs(3);
/// After a NOTIFY, peers are checked this often until they all caught up (or the window ends):
/// a secondary transfers within a second or two, and the status should say so promptly.
const CATCH_UP_POLL: Duration = Duration::from_millis(500);
const CATCH_UP_WINDOW: Duration = Duration::from_secs(15);
/// When, after the first NOTIFY, peers still behind are NOTIFYed again.
const RENOTIFY_AFTER: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(6)];
/// A repeated NOTIFY goes to a peer that just answered: it is not retried for long.
const RENOTIFY_RETRY: NotifyRetry = NotifyRetry {
    attempts: 2,
    first_wait: Duration::from_secs(1),
};

/// What the reconcile hands the zone's task.
#[derive(Clone, Debug)]
pub struct TaskConfig {
    pub origin: Name,
    pub enabled: bool,
    pub peers: Vec<PeerAuth>,
    /// The zone's transfer connection: where versions are read from.
    pub transfer: Endpoint,
    pub check_interval: Duration,
    /// Bumped to have every peer NOTIFYed now (enable, forceNotify).
    pub notify_generation: u64,
    /// `spec.outgoing.ixfrBacklog`.
    pub backlog: BacklogBounds,
}

struct ZoneTask {
    config: watch::Sender<TaskConfig>,
    kick: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ZoneTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The transfer server's handle and every zone's task.
pub struct Outgoing {
    handle: TransferHandle,
    tasks: Mutex<HashMap<String, ZoneTask>>,
    observed: Arc<Mutex<HashMap<String, Observation>>>,
    wake: Wake,
    standbys: StandbyTransfers,
}

/// How a task asks for its zone's reconcile (which writes the status): one channel per
/// DnsZone controller (one per watched namespace).
type Wake = Arc<Mutex<Vec<mpsc::UnboundedSender<ObjectRef<DnsZone>>>>>;

impl Outgoing {
    pub fn new(handle: TransferHandle) -> Self {
        Self {
            handle,
            tasks: Mutex::default(),
            observed: Arc::default(),
            wake: Arc::default(),
            standbys: StandbyTransfers::default(),
        }
    }

    /// The zones whose status should be written again; for a DnsZone controller's
    /// `reconcile_on`.
    pub fn wakes(&self) -> mpsc::UnboundedReceiver<ObjectRef<DnsZone>> {
        let (tx, rx) = mpsc::unbounded();
        self.wake.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    pub fn handle(&self) -> &TransferHandle {
        &self.handle
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, ZoneTask>> {
        // Only whole entries are inserted or removed: a poisoned map is still consistent.
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the zone's task saw so far (empty before it ran).
    pub fn observation(&self, key: &str) -> Observation {
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Starts the zone's task, or hands the running one its new configuration.
    pub fn configure(
        &self,
        key: &str,
        zone_ref: ObjectRef<DnsZone>,
        store: Option<OutgoingStore>,
        cfg: TaskConfig,
    ) {
        self.handle.set_peers(&cfg.origin, cfg.peers.clone());
        self.handle.set_enabled(&cfg.origin, cfg.enabled);
        self.handle.set_backlog_bounds(&cfg.origin, cfg.backlog);
        self.handle
            .set_notify_sources(&cfg.origin, notify_sources(&cfg.transfer));
        let mut tasks = self.tasks();
        if let Some(t) = tasks.get(key) {
            t.config.send_if_modified(|old| {
                let changed =
                    old.enabled != cfg.enabled
                        || old.notify_generation != cfg.notify_generation
                        || old.check_interval != cfg.check_interval
                        || old.backlog != cfg.backlog
                        || old.transfer != cfg.transfer
                        || old.peers.len() != cfg.peers.len()
                        || old.peers.iter().zip(&cfg.peers).any(|(a, b)| {
                            a.name != b.name || a.address != b.address || a.key != b.key
                        });
                *old = cfg.clone();
                changed
            });
            return;
        }
        let (config, config_rx) = watch::channel(cfg);
        let kick = Arc::new(Notify::new());
        let runner = Runner {
            key: key.to_string(),
            zone_ref,
            handle: self.handle.clone(),
            config: config_rx,
            kick: kick.clone(),
            observed: self.observed.clone(),
            wake: self.wake.clone(),
            last_notify_generation: 0,
            last_peers: Vec::new(),
            store,
            persisted: None,
            standbys: self.standbys.clone(),
        };
        let task = tokio::spawn(runner.run());
        tasks.insert(key.to_string(), ZoneTask { config, kick, task });
    }

    /// zonekeeper changed the backend's zone: follow at once instead of at the next poll.
    pub fn kick(&self, key: &str) {
        if let Some(t) = self.tasks().get(key) {
            t.kick.notify_one();
        }
    }

    /// `spec.outgoing` removed or the zone deleted: stop the task and serve nothing.
    pub fn remove(&self, key: &str, origin: &Name) {
        self.tasks().remove(key);
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        self.handle.remove(origin);
    }

    /// Forgets the zone's backlog (forceNotify): every peer's next transfer is AXFR.
    pub fn clear_backlog(&self, origin: &Name) {
        self.handle.clear_backlog(origin);
    }

    /// The zone's task's NOTIFY generation (0 before it ran).
    pub fn notify_generation(&self, key: &str) -> u64 {
        self.tasks()
            .get(key)
            .map_or(0, |t| t.config.borrow().notify_generation)
    }
}

/// The backend may NOTIFY us from its address, or signed with the zone's transfer key.
pub(super) fn notify_sources(transfer: &Endpoint) -> NotifySources {
    let host = transfer
        .server
        .rsplit_once(':')
        .map_or(transfer.server.as_str(), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    NotifySources {
        addresses: host
            .parse()
            .ok()
            .map(PeerAddress::host)
            .into_iter()
            .collect(),
        keys: transfer.key.clone().into_iter().collect(),
    }
}

fn time(t: SystemTime) -> Time {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Time(
        k8s_openapi::jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0))
            .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now()),
    )
}

struct Runner {
    key: String,
    zone_ref: ObjectRef<DnsZone>,
    handle: TransferHandle,
    config: watch::Receiver<TaskConfig>,
    kick: Arc<Notify>,
    observed: Arc<Mutex<HashMap<String, Observation>>>,
    wake: Wake,
    last_notify_generation: u64,
    /// The peers (name, address) of the last round: a new or moved peer is NOTIFYed at once.
    last_peers: Vec<(String, String)>,
    store: Option<OutgoingStore>,
    /// Served serial and backlog length last saved.
    persisted: Option<(u32, usize)>,
    standbys: StandbyTransfers,
}

impl Runner {
    async fn run(mut self) {
        let mut backend_notifies = self.handle.incoming_notifies();
        // The first round NOTIFYs: peers may have missed versions while nobody served them.
        let mut notify_now = true;
        let origin = self.config.borrow().origin.clone();
        self.restore(&origin).await;
        loop {
            let cfg = self.config.borrow_and_update().clone();
            if cfg.notify_generation != self.last_notify_generation {
                self.last_notify_generation = cfg.notify_generation;
                notify_now = true;
            }
            let peers: Vec<(String, String)> = cfg
                .peers
                .iter()
                .map(|p| (p.name.clone(), p.address.to_string()))
                .collect();
            if peers != self.last_peers {
                self.last_peers = peers;
                notify_now = true;
            }
            let published = self.follow(&cfg).await;
            let served = self.handle.serial(&cfg.origin);
            let mut obs = self.current();
            obs.served_serial = served;
            obs.backlog = self.handle.backlog_len(&cfg.origin);
            // Saved before the NOTIFY: a peer sent to another replica by the Service finds
            // the new serial there as soon as that replica loaded it.
            self.persist(&cfg.origin).await;
            let notify = cfg.enabled && served.is_some() && (published || notify_now);
            if notify && let Some(serial) = served {
                notify_now = false;
                notify_and_record(
                    &cfg.peers,
                    &cfg.origin,
                    serial,
                    &mut obs,
                    NotifyRetry::default(),
                )
                .await;
            }
            self.check_peers(&cfg, &mut obs).await;
            self.store(obs.clone());
            if notify {
                self.catch_up(&cfg, obs).await;
            }
            let interval = cfg.check_interval.max(Duration::from_secs(1));
            if !self
                .wait(&cfg.origin, interval, &mut backend_notifies)
                .await
            {
                return;
            }
        }
    }

    /// Until the next round is due: the interval passed, a kick, a new configuration, or
    /// the backend's NOTIFY for this zone. `false` when the zone's task is to end.
    async fn wait(
        &mut self,
        origin: &Name,
        interval: Duration,
        notifies: &mut tokio::sync::broadcast::Receiver<crate::dns::outgoing::IncomingNotify>,
    ) -> bool {
        let sleep = tokio::time::sleep(interval);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                _ = self.kick.notified() => return true,
                changed = self.config.changed() => return changed.is_ok(),
                n = notifies.recv() => match n {
                    Ok(n) if !crate::dns::model::name_eq(&n.zone, origin) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        sleep.as_mut().await;
                        return true;
                    }
                    // Ours, or some were missed (which may have been ours).
                    _ => return true,
                },
            }
        }
    }

    /// After a restart (or on a new leader): serve the saved version with its backlog, so
    /// peers at a recent serial still get IXFR. The backend is followed from there. A
    /// replica that served the saved state while standing by goes on from what it serves,
    /// unless the store holds a later serial than it got to.
    async fn restore(&mut self, origin: &Name) {
        let Some(store) = &self.store else {
            return;
        };
        if let Some(served) = self.handle.serial(origin) {
            match store.pointer().await {
                Ok(Some(p)) if p.serial == Some(served) => {
                    self.persisted = Some((served, self.handle.backlog_len(origin)));
                    return;
                }
                Ok(Some(p)) if p.serial.is_some_and(|s| serial_gt(s, served)) => {}
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(zone = %origin, error = %e, "outgoing: saved state unreadable; going on from the served version");
                    return;
                }
            }
        }
        match store.load(origin).await {
            Ok(Some((zone, backlog))) => {
                let serial = zone.soa_serial();
                match self.handle.install(zone, &backlog) {
                    Ok(n) => {
                        tracing::info!(zone = %origin, serial = ?serial, backlog = n, "outgoing: serving the saved version");
                        self.persisted = serial.map(|s| (s, n));
                    }
                    Err(e) => {
                        tracing::warn!(zone = %origin, error = %e, "outgoing: saved version not served")
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(zone = %origin, error = %e, "outgoing: saved state unreadable; starting from the backend")
            }
        }
    }

    /// Saves the served version and backlog when either changed since the last save.
    async fn persist(&mut self, origin: &Name) {
        let Some(store) = &self.store else {
            return;
        };
        let Some(backlog) = self.handle.export_backlog(origin) else {
            return;
        };
        let now = (backlog.serial, backlog.diffs.len());
        if self.persisted == Some(now) {
            return;
        }
        // The served version is kept in wire form: decoded only when it is saved.
        let Some(zone) = self.handle.zone(origin) else {
            return;
        };
        if zone.soa_serial() != Some(backlog.serial) {
            return;
        }
        match store.save(&zone, &backlog).await {
            Ok(()) => self.persisted = Some(now),
            Err(e) => {
                tracing::warn!(zone = %origin, error = %e, "outgoing: saving the served version failed; a restart would send AXFR")
            }
        }
    }

    fn current(&self) -> Observation {
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&self.key)
            .cloned()
            .unwrap_or_default()
    }

    /// Reads the backend's serial and, when it moved, the new version; publishes it.
    /// Returns whether a new serial is served.
    async fn follow(&self, cfg: &TaskConfig) -> bool {
        let zone_name = cfg.origin.to_ascii();
        let serial = match pass::soa_serial(&cfg.transfer, &cfg.origin).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(zone = %zone_name, server = %cfg.transfer.server, error = %e, "outgoing: backend SOA query failed; serving the last version");
                return false;
            }
        };
        if self.handle.serial(&cfg.origin) == Some(serial) {
            return false;
        }
        // Decoded from the served wire form: only when the backend moved.
        let served = self.handle.zone(&cfg.origin);
        let mut snapshot = served;
        if let Err(e) =
            pass::refresh_snapshot(&cfg.transfer, &cfg.origin, serial, &mut snapshot).await
        {
            tracing::warn!(zone = %zone_name, server = %cfg.transfer.server, error = %e, "outgoing: transfer from the backend failed; serving the last version");
            return false;
        }
        let Some(zone) = snapshot else {
            return false;
        };
        match self.handle.publish(Arc::unwrap_or_clone(zone)) {
            Ok(p) => {
                tracing::info!(zone = %zone_name, server = %cfg.transfer.server, serial = p.serial, previous = ?p.previous, journaled = p.journaled, "outgoing: serving a new version");
                p.previous != Some(p.serial)
            }
            Err(e) => {
                tracing::warn!(zone = %zone_name, server = %cfg.transfer.server, error = %e, "outgoing: version not served");
                false
            }
        }
    }

    async fn check_peers(&self, cfg: &TaskConfig, obs: &mut Observation) {
        let checks = futures::future::join_all(
            cfg.peers
                .iter()
                .map(|p| check_peer_soa(p, &cfg.origin, PEER_CHECK_DEADLINE)),
        )
        .await;
        let now = crate::reconcile::status::now();
        obs.checked = Some(now.clone());
        for (peer, soa) in cfg.peers.iter().zip(checks) {
            let check = match soa {
                PeerSoa::Serial(s) => PeerCheck::Serial(s),
                PeerSoa::Unreachable(why) => PeerCheck::Unreachable(why),
                PeerSoa::Refused(why) => PeerCheck::Refused(why),
            };
            peer_mut(obs, &peer.name).check = Some((check, now.clone()));
        }
        // Per peer the newest transfer, whichever replica served it.
        let mut newest: HashMap<String, (SystemTime, TransferMethod)> = HashMap::new();
        let mut keep = |peer: &str, at: SystemTime, method: TransferMethod| {
            let e = newest.entry(peer.to_string()).or_insert((at, method));
            if at > e.0 {
                *e = (at, method);
            }
        };
        for record in self.handle.transfers() {
            if crate::dns::model::name_eq(&record.zone, &cfg.origin) {
                keep(&record.peer, record.time, record.method);
            }
        }
        if let Some(store) = &self.store {
            match self.standbys.of_zone(store).await {
                Ok(records) => {
                    for r in records {
                        let same_origin = Name::from_ascii(&r.origin)
                            .is_ok_and(|o| crate::dns::model::name_eq(&o, &cfg.origin));
                        if same_origin {
                            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(r.time_ms);
                            keep(&r.peer, at, r.method);
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(zone = %cfg.origin, error = %e, "outgoing: the standbys' transfers not read; next round")
                }
            }
        }
        for (peer, (at, method)) in newest {
            let method = match method {
                TransferMethod::Axfr => OutgoingTransferMethod::Axfr,
                TransferMethod::Ixfr => OutgoingTransferMethod::Ixfr,
            };
            peer_mut(obs, &peer).transferred = Some((time(at), method));
        }
        obs.peers
            .retain(|(name, _)| cfg.peers.iter().any(|p| p.name == *name));
    }

    /// After a NOTIFY: re-checks the peers until every one serves the served serial. A
    /// peer still behind after [`RENOTIFY_AFTER`] is NOTIFYed again: it may have asked
    /// a replica (through the Service) that had not loaded the new version yet, found
    /// nothing new and gone back to waiting for its refresh timer.
    async fn catch_up(&mut self, cfg: &TaskConfig, mut obs: Observation) {
        let start = tokio::time::Instant::now();
        let deadline = start + CATCH_UP_WINDOW;
        let mut renotify = RENOTIFY_AFTER.iter().peekable();
        while tokio::time::Instant::now() < deadline {
            let behind: Vec<PeerAuth> = cfg
                .peers
                .iter()
                .filter(|peer| {
                    !obs.peers.iter().any(|(name, p)| {
                        *name == peer.name
                            && matches!(&p.check, Some((PeerCheck::Serial(s), _)) if Some(*s) == obs.served_serial)
                    })
                })
                .cloned()
                .collect();
            if behind.is_empty() || self.config.has_changed().unwrap_or(true) {
                return;
            }
            // Only peers that answer at an older serial: an unreachable one would only
            // hold the round up with retries, and is NOTIFYed on the next version anyway.
            let answering: Vec<PeerAuth> = behind
                .into_iter()
                .filter(|peer| {
                    obs.peers.iter().any(|(name, p)| {
                        *name == peer.name && matches!(&p.check, Some((PeerCheck::Serial(_), _)))
                    })
                })
                .collect();
            if let Some(serial) = obs.served_serial
                && renotify
                    .next_if(|after| start.elapsed() >= **after)
                    .is_some()
                && !answering.is_empty()
            {
                notify_and_record(&answering, &cfg.origin, serial, &mut obs, RENOTIFY_RETRY).await;
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
            self.check_peers(cfg, &mut obs).await;
            self.store(obs.clone());
        }
    }

    /// Keeps the observation and wakes the reconcile when it differs in more than the times
    /// of the checks: a quiet zone costs no status writes.
    fn store(&self, obs: Observation) {
        let mut map = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        let changed = map
            .get(&self.key)
            .is_none_or(|old| significant(old) != significant(&obs));
        map.insert(self.key.clone(), obs);
        drop(map);
        if changed {
            let mut wakes = self.wake.lock().unwrap_or_else(|e| e.into_inner());
            wakes.retain(|tx| tx.unbounded_send(self.zone_ref.clone()).is_ok());
        }
    }
}

/// NOTIFYs `peers` of `serial` and records the outcome of each in `obs`.
async fn notify_and_record(
    peers: &[PeerAuth],
    origin: &Name,
    serial: u32,
    obs: &mut Observation,
    retry: NotifyRetry,
) {
    let outcomes = notify_peers(peers, origin, serial, retry).await;
    let now = crate::reconcile::status::now();
    for (name, outcome) in outcomes {
        let failure = match outcome {
            NotifyOutcome::Acked | NotifyOutcome::NoTarget => None,
            NotifyOutcome::Error(e) => Some(e),
            NotifyOutcome::NoAnswer => Some("no answer".to_string()),
        };
        peer_mut(obs, &name).notified = Some((now.clone(), failure));
    }
}

fn peer_mut<'a>(obs: &'a mut Observation, name: &str) -> &'a mut PeerObservation {
    if let Some(i) = obs.peers.iter().position(|(n, _)| n == name) {
        return &mut obs.peers[i].1;
    }
    obs.peers
        .push((name.to_string(), PeerObservation::default()));
    let last = obs.peers.len() - 1;
    &mut obs.peers[last].1
}

/// An observation without the check times.
fn significant(obs: &Observation) -> Observation {
    let mut o = obs.clone();
    o.checked = None;
    for (_, p) in &mut o.peers {
        if let Some((check, _)) = &p.check {
            p.check = Some((
                check.clone(),
                Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            ));
        }
    }
    o
}

/// Peers that cannot be served, with why.
pub(super) fn peer_auths(
    spec: &crate::api::dns_zone::OutgoingSpec,
    lookup: &dyn crate::reconcile::config::Lookup,
) -> (Vec<PeerAuth>, Vec<String>) {
    let mut peers = Vec::new();
    let mut problems = Vec::new();
    for p in &spec.peers {
        let address = match p.address.parse::<PeerAddress>() {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!("{}: {e}", p.name));
                continue;
            }
        };
        let Some(secret) = &p.tsig_key_secret_ref else {
            problems.push(format!(
                "{}: no tsigKeySecretRef (transfers must be signed)",
                p.name
            ));
            continue;
        };
        match crate::reconcile::config::tsig_key(lookup, &secret.name) {
            Ok(key) => peers.push(PeerAuth {
                name: p.name.clone(),
                address,
                key,
            }),
            Err(e) => problems.push(format!("{}: {e}", p.name)),
        }
    }
    (peers, problems)
}

/// `spec.outgoing.ixfrBacklog` for the transfer server (the schema keeps the numbers positive).
fn backlog_bounds(spec: &crate::api::dns_zone::IxfrBacklog) -> BacklogBounds {
    let positive = |n: i64| usize::try_from(n.max(1)).unwrap_or(usize::MAX);
    BacklogBounds {
        max_versions: positive(i64::from(spec.max_versions)),
        bytes: match spec.max_bytes {
            Some(b) => BacklogBytes::Fixed(positive(b)),
            None => BacklogBytes::PercentOfZone(spec.max_percent.clamp(1, 100).unsigned_abs()),
        },
    }
}

/// The zone's transfer connection as written: `spec.transfer`, defaulting to the backend.
pub(super) fn transfer_endpoint(
    spec: &crate::api::DnsZoneSpec,
    lookup: &dyn crate::reconcile::config::Lookup,
) -> Result<Endpoint, crate::reconcile::config::ConfigError> {
    crate::reconcile::config::endpoints(spec, lookup).map(|(_, transfer)| transfer)
}

/// The DnsZone reconcile's part: the spec edit recorded as the seed's operations, the zone's
/// task configured, and what the task saw folded into `status`. Returns the events.
pub async fn reconcile(
    out: Option<&Outgoing>,
    client: &kube::Client,
    zone: &DnsZone,
    status: &mut crate::api::DnsZoneStatus,
    backend_changed: bool,
) -> Vec<crate::reconcile::outcome::ZoneEvent> {
    use crate::reconcile::outgoing::{
        CONDITION, Context as Cx, Operation, fold_observation, operations, record_operations,
    };
    use crate::reconcile::status::{ConditionUpdate, requested_by, set_condition};
    use kube::{Resource, ResourceExt};

    let spec = zone.spec.outgoing.as_ref();
    if spec.is_none() && status.outgoing.is_none() {
        return Vec::new();
    }
    let key = format!(
        "{}/{}",
        zone.namespace().unwrap_or_default(),
        zone.name_any()
    );
    let zone_name = zone.spec.zone_name.as_str();
    let cx = Cx {
        zone_name,
        user_id: requested_by(zone.meta()),
        history_limit: zone.spec.history_limit,
        generation: zone.meta().generation,
        now: crate::reconcile::status::now(),
    };
    let ops = operations(status.outgoing.as_ref(), spec);
    let mut events = record_operations(status, spec, &ops, &cx);
    let Ok(origin) = Name::from_ascii(zone_name) else {
        return events;
    };
    let Some(spec) = spec else {
        if let Some(out) = out {
            out.remove(&key, &origin);
            OutgoingStore::of(client, zone).delete().await;
        }
        return events;
    };
    let condition = |status: &mut crate::api::DnsZoneStatus, reason: &str, message: String| {
        set_condition(
            &mut status.conditions,
            ConditionUpdate {
                type_: CONDITION,
                status: false,
                reason,
                message: format!("zone {zone_name}: {message}"),
            },
            cx.generation,
            &cx.now,
        );
    };
    let Some(out) = out else {
        condition(
            status,
            "NoTransferServer",
            "the operator runs without --transfer-addr; nothing is served".into(),
        );
        return events;
    };
    let lookup = match super::references::fetch_secrets_only(
        client,
        &zone.namespace().unwrap_or_default(),
        zone,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(zone = %zone_name, server = %zone.spec.backend.server, error = %e, "outgoing: reading Secrets failed");
            events.extend(fold_observation(status, &out.observation(&key), &cx));
            return events;
        }
    };
    let transfer = match transfer_endpoint(&zone.spec, &lookup) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(zone = %zone_name, server = %zone.spec.backend.server, error = %e, "outgoing: no transfer connection");
            condition(status, "ConfigInvalid", e.to_string());
            return events;
        }
    };
    let (peers, problems) = peer_auths(spec, &lookup);
    let notify_now = ops.iter().any(|op| {
        matches!(
            op,
            Operation::Enable | Operation::ForceNotify(_) | Operation::Configure { .. }
        )
    });
    if ops.iter().any(|op| matches!(op, Operation::ForceNotify(_))) {
        out.clear_backlog(&origin);
    }
    let generation = out.notify_generation(&key) + u64::from(notify_now);
    out.configure(
        &key,
        ObjectRef::from_obj(zone),
        Some(OutgoingStore::of(client, zone)),
        TaskConfig {
            origin,
            enabled: spec.enabled,
            peers,
            transfer,
            check_interval: spec.check_interval.0,
            notify_generation: generation,
            backlog: backlog_bounds(&spec.ixfr_backlog),
        },
    );
    if backend_changed {
        out.kick(&key);
    }
    events.extend(fold_observation(status, &out.observation(&key), &cx));
    if !problems.is_empty() {
        tracing::warn!(zone = %zone_name, server = %zone.spec.backend.server, problems = ?problems, "outgoing: peers left out");
        condition(
            status,
            "PeerConfigInvalid",
            format!("peers not served: {}", problems.join("; ")),
        );
    }
    events
}
