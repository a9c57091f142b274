//! The outgoing transfer server: zonekeeper as the (hidden) primary of a zone's
//! secondaries. It serves SOA, AXFR and IXFR of published zone versions, only to each
//! zone's listed peers (source address and TSIG key), keeps a bounded IXFR backlog,
//! accepts NOTIFY from the backend, and sends NOTIFY / checks SOA of peers.
//!
//! The controller drives it through a cloneable [`TransferHandle`]; sockets, framing,
//! TSIG signing and AXFR/IXFR packing are the embedded server's (`dns::server`).

mod backlog;
mod peer;
mod serve;
mod talk;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use hickory_proto::rr::{Name, RecordType};
use tokio::sync::broadcast;

pub use backlog::{
    BacklogBounds, BacklogBytes, BacklogExport, BacklogImportError, BacklogLimits, ExportedDiff,
    PERCENT_FLOOR_BYTES,
};
pub use peer::{NotifySources, PeerAddress, PeerAddressError, PeerAuth};
pub use talk::{NotifyOutcome, NotifyRetry, PeerSoa, check_peer_soa, notify_peer, notify_peers};

use crate::dns::model::{RRsetKey, Zone};
use crate::dns::server::{Listeners, ServerError, WireZone, WireZoneError, listen};
use backlog::Backlog;

/// How the transfer server runs.
#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// A TCP connection idle this long is closed.
    pub tcp_idle: Duration,
    /// TCP connections served at once; more are closed on accept.
    pub max_tcp_connections: usize,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            tcp_idle: Duration::from_secs(30),
            max_tcp_connections: 128,
        }
    }
}

/// Why a request to the transfer server was refused; the label of
/// `zonekeeper_outgoing_refused_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalReason {
    /// The zone is not served here (not published, or unknown): REFUSED.
    NotServed,
    /// The zone's outgoing transfers are disabled: REFUSED.
    Disabled,
    /// The source address is not within any peer's address: REFUSED.
    Address,
    /// The request is not signed: REFUSED.
    Unsigned,
    /// Signed with a key no peer (at that address) has: NOTAUTH, TSIG BADKEY.
    BadKey,
    /// Signed with a peer's key name but the MAC does not verify: NOTAUTH, BADSIG.
    BadSignature,
    /// Signed outside the time window: NOTAUTH, BADTIME.
    BadTime,
    /// A query the transfer server does not answer (not SOA/AXFR/IXFR/NOTIFY): REFUSED.
    Unsupported,
    /// Undecodable: FORMERR or nothing.
    Malformed,
}

impl RefusalReason {
    /// Every reason, in label order.
    pub const ALL: [RefusalReason; 9] = [
        Self::NotServed,
        Self::Disabled,
        Self::Address,
        Self::Unsigned,
        Self::BadKey,
        Self::BadSignature,
        Self::BadTime,
        Self::Unsupported,
        Self::Malformed,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotServed => "not_served",
            Self::Disabled => "disabled",
            Self::Address => "unlisted_address",
            Self::Unsigned => "unsigned",
            Self::BadKey => "bad_key",
            Self::BadSignature => "bad_signature",
            Self::BadTime => "bad_time",
            Self::Unsupported => "unsupported",
            Self::Malformed => "malformed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a peer last transferred a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TransferMethod {
    /// Whole zone (AXFR, or IXFR answered with the whole zone).
    Axfr,
    /// Differences from the backlog.
    Ixfr,
}

/// A peer's last transfer of a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    /// Zone origin.
    pub zone: Name,
    /// Peer name.
    pub peer: String,
    /// AXFR or IXFR.
    pub method: TransferMethod,
    /// When it was answered.
    pub time: SystemTime,
    /// The serial sent.
    pub serial: u32,
}

/// A NOTIFY accepted from the backend: the zone may have changed there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingNotify {
    /// Zone origin.
    pub zone: Name,
    /// Who sent it.
    pub source: SocketAddr,
    /// The serial the NOTIFY announced, when it carried one.
    pub serial: Option<u32>,
}

/// Why a handle operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    /// A published zone has no SOA.
    #[error("zone {0} has no SOA record")]
    NoSoa(String),
    /// The zone is not published (backlog import needs the served version).
    #[error("zone {0} is not published")]
    NotPublished(String),
    /// The exported backlog is for another zone.
    #[error("backlog of {found} imported into zone {zone}")]
    WrongZone { zone: String, found: String },
    /// The exported backlog does not decode.
    #[error(transparent)]
    Import(#[from] BacklogImportError),
    /// The zone does not go into wire form (or come back from it).
    #[error(transparent)]
    Wire(#[from] WireZoneError),
}

/// What a publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The serial served now.
    pub serial: u32,
    /// The serial served before, if any.
    pub previous: Option<u32>,
    /// Whether a difference went into the backlog (false: first version, same serial,
    /// zone disabled, or a serial going backwards, which clears the backlog).
    pub journaled: bool,
}

#[derive(Debug)]
struct ZoneState {
    /// The version served, in wire form only: a served zone costs about its AXFR size.
    zone: Option<Arc<WireZone>>,
    backlog: Backlog,
    peers: Vec<PeerAuth>,
    enabled: bool,
    notify_sources: NotifySources,
}

impl Default for ZoneState {
    fn default() -> Self {
        Self {
            zone: None,
            backlog: Backlog::default(),
            peers: Vec::new(),
            enabled: true,
            notify_sources: NotifySources::default(),
        }
    }
}

#[derive(Debug)]
struct State {
    zones: RwLock<BTreeMap<RRsetKey, ZoneState>>,
    refusals: [AtomicU64; RefusalReason::ALL.len()],
    /// The same counts by zone: the served zone's name, or "" for names not configured here
    /// (so hostile queries cannot grow the metric's label set).
    zone_refusals: Mutex<BTreeMap<(String, RefusalReason), u64>>,
    transfers: Mutex<BTreeMap<(RRsetKey, String), TransferRecord>>,
    notify_tx: broadcast::Sender<IncomingNotify>,
}

fn key(origin: &Name) -> RRsetKey {
    RRsetKey::new(origin, RecordType::SOA)
}

impl State {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<RRsetKey, ZoneState>> {
        // Writers swap whole values in: a poisoned lock still guards consistent data.
        self.zones.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<RRsetKey, ZoneState>> {
        self.zones.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a refusal of a request whose zone is unknown.
    fn refuse(&self, reason: RefusalReason) {
        self.count_refusal(reason, String::new());
    }

    /// Counts a refusal of `request`, under its zone when that zone is configured here.
    fn refuse_for(&self, reason: RefusalReason, request: &hickory_proto::op::Message) {
        let zone = request.queries().first().and_then(|q| {
            self.read()
                .get_key_value(&key(q.name()))
                .map(|(k, _)| k.name.to_ascii())
        });
        self.count_refusal(reason, zone.unwrap_or_default());
    }

    fn count_refusal(&self, reason: RefusalReason, zone: String) {
        self.refusals[reason.index()].fetch_add(1, Ordering::Relaxed);
        *self
            .zone_refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((zone, reason))
            .or_default() += 1;
    }

    fn record_transfer(&self, record: TransferRecord) {
        let k = (key(&record.zone), record.peer.clone());
        self.transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k, record);
    }
}

/// The controller's handle on the served zones; cheap to clone, shared with the
/// listeners. Usable before (and without) a running [`TransferServer`].
#[derive(Clone, Debug)]
pub struct TransferHandle {
    state: Arc<State>,
}

impl Default for TransferHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl BacklogExport {
    /// The differences, decoded, when the export belongs to `origin`.
    fn entries_for(
        &self,
        origin: &Name,
    ) -> Result<Vec<crate::dns::server::JournalEntry>, OutgoingError> {
        let found = Name::from_ascii(&self.origin).ok();
        if !found.is_some_and(|f| crate::dns::model::name_eq(&f, origin)) {
            return Err(OutgoingError::WrongZone {
                zone: origin.to_ascii(),
                found: self.origin.clone(),
            });
        }
        Ok(self
            .diffs
            .iter()
            .map(ExportedDiff::to_entry)
            .collect::<Result<Vec<_>, _>>()?)
    }
}

impl TransferHandle {
    /// An empty handle serving nothing.
    pub fn new() -> Self {
        let (notify_tx, _) = broadcast::channel(256);
        Self {
            state: Arc::new(State {
                zones: RwLock::new(BTreeMap::new()),
                refusals: Default::default(),
                zone_refusals: Mutex::default(),
                transfers: Mutex::new(BTreeMap::new()),
                notify_tx,
            }),
        }
    }

    fn with_zone<T>(&self, origin: &Name, f: impl FnOnce(&mut ZoneState) -> T) -> T {
        let mut zones = self.state.write();
        f(zones.entry(key(origin)).or_default())
    }

    /// Serves `zone` (its SOA serial) from now on, as one whole version: a transfer in
    /// progress finishes with the version it started with. The difference from the
    /// version served before goes into the IXFR backlog when the serial moved forward;
    /// a serial going backwards clears the backlog.
    pub fn publish(&self, zone: Zone) -> Result<Published, OutgoingError> {
        let origin = zone.origin().clone();
        let Some(serial) = zone.soa_serial() else {
            return Err(OutgoingError::NoSoa(origin.to_ascii()));
        };
        // The model is dropped once in wire form: only the wire form is kept, and its size
        // is what a percentage bound of the backlog is taken of.
        let new = Arc::new(WireZone::from_zone(&zone)?);
        drop(zone);
        let zone_bytes = Some(new.byte_len());
        let old = self
            .state
            .read()
            .get(&key(&origin))
            .and_then(|z| z.zone.clone());
        let previous = old.as_ref().and_then(|z| z.soa_serial());
        // The difference is computed outside the lock: for a big zone it takes a while,
        // and transfers keep being served from the old version meanwhile.
        let entry = match (&old, previous) {
            (Some(old), Some(p)) if crate::dns::wire::serial_gt(serial, p) => {
                WireZone::journal_entry(old, &new)
            }
            _ => None,
        };
        let backwards = previous.is_some_and(|p| crate::dns::wire::serial_gt(p, serial));
        let journaled = self.with_zone(&origin, |z| {
            let same_base = match (&z.zone, &old) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same_base || backwards {
                // Another publish raced in, or history was rewritten: the kept
                // differences may not lead to this version.
                z.backlog.clear();
            }
            if let Some(bytes) = zone_bytes {
                z.backlog.set_zone_bytes(bytes);
            }
            // A disabled zone keeps no backlog (the seed's disable clears it): its peers
            // start over with AXFR once it is enabled again.
            let journaled = match entry.filter(|_| same_base && z.enabled) {
                Some(entry) => {
                    z.backlog.push(entry);
                    true
                }
                None => false,
            };
            z.zone = Some(new);
            journaled
        });
        Ok(Published {
            serial,
            previous,
            journaled,
        })
    }

    /// The version served now, as a model to edit: decoded from the wire form each
    /// time (about a second for a million records), so callers that only need the
    /// serial ask [`Self::serial`].
    pub fn zone(&self, origin: &Name) -> Option<Arc<Zone>> {
        let wire = self.served(origin)?;
        match wire.to_zone() {
            Ok(zone) => Some(Arc::new(zone)),
            Err(e) => {
                tracing::error!(zone = %origin, error = %e, "served version does not decode");
                None
            }
        }
    }

    /// The version served now, in wire form (cheap: shared).
    pub fn served(&self, origin: &Name) -> Option<Arc<WireZone>> {
        self.state
            .read()
            .get(&key(origin))
            .and_then(|z| z.zone.clone())
    }

    /// The serial served now.
    pub fn serial(&self, origin: &Name) -> Option<u32> {
        self.served(origin).and_then(|z| z.soa_serial())
    }

    /// The zones configured (published or not).
    pub fn zones(&self) -> Vec<Name> {
        self.state.read().keys().map(|k| k.name.clone()).collect()
    }

    /// Replaces the peers allowed to transfer the zone.
    pub fn set_peers(&self, origin: &Name, peers: Vec<PeerAuth>) {
        self.with_zone(origin, |z| z.peers = peers);
    }

    /// The peers allowed to transfer the zone.
    pub fn peers(&self, origin: &Name) -> Vec<PeerAuth> {
        self.state
            .read()
            .get(&key(origin))
            .map(|z| z.peers.clone())
            .unwrap_or_default()
    }

    /// Who may NOTIFY the zone's changes on the backend.
    pub fn set_notify_sources(&self, origin: &Name, sources: NotifySources) {
        self.with_zone(origin, |z| z.notify_sources = sources);
    }

    /// Enabled (the default) serves the zone to its peers; disabled answers REFUSED
    /// and clears the backlog.
    pub fn set_enabled(&self, origin: &Name, enabled: bool) {
        self.with_zone(origin, |z| {
            z.enabled = enabled;
            if !enabled {
                z.backlog.clear();
            }
        });
    }

    /// Whether the zone is enabled.
    pub fn enabled(&self, origin: &Name) -> bool {
        self.state
            .read()
            .get(&key(origin))
            .is_some_and(|z| z.enabled)
    }

    /// Forgets the backlog: the next transfer of every peer is AXFR.
    pub fn clear_backlog(&self, origin: &Name) {
        self.with_zone(origin, |z| z.backlog.clear());
    }

    /// Stops serving the zone and forgets everything about it.
    pub fn remove(&self, origin: &Name) {
        let k = key(origin);
        self.state.write().remove(&k);
        self.state
            .transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(z, _), _| z != &k);
    }

    /// Differences kept in the backlog.
    pub fn backlog_len(&self, origin: &Name) -> usize {
        self.state
            .read()
            .get(&key(origin))
            .map_or(0, |z| z.backlog.len())
    }

    /// Bytes kept in the backlog.
    pub fn backlog_bytes(&self, origin: &Name) -> usize {
        self.state
            .read()
            .get(&key(origin))
            .map_or(0, |z| z.backlog.bytes())
    }

    /// Bounds the backlog (the oldest differences leave first).
    pub fn backlog_limits(&self, origin: &Name, max_versions: usize, max_bytes: usize) {
        self.with_zone(origin, |z| {
            z.backlog.set_limits(BacklogLimits {
                max_versions,
                max_bytes,
            })
        });
    }

    /// Bounds the backlog as `spec.outgoing.ixfrBacklog` says (the oldest differences leave
    /// first); a percentage bound follows the size of each version published.
    pub fn set_backlog_bounds(&self, origin: &Name, bounds: BacklogBounds) {
        self.with_zone(origin, |z| {
            if let Some(bytes) = z.zone.as_ref().map(|w| w.byte_len()) {
                z.backlog.set_zone_bytes(bytes);
            }
            z.backlog.set_bounds(bounds);
        });
    }

    /// The bounds in effect (a percentage turned into bytes of the served version).
    pub fn backlog_effective_limits(&self, origin: &Name) -> BacklogLimits {
        self.state
            .read()
            .get(&key(origin))
            .map_or_else(|| Backlog::default().limits(), |z| z.backlog.limits())
    }

    /// The backlog in persistable form; `None` when the zone is not published.
    pub fn export_backlog(&self, origin: &Name) -> Option<BacklogExport> {
        let zones = self.state.read();
        let z = zones.get(&key(origin))?;
        let serial = z.zone.as_ref()?.soa_serial()?;
        Some(BacklogExport {
            origin: origin.to_ascii(),
            serial,
            diffs: z.backlog.export(),
        })
    }

    /// Loads a persisted backlog into a published zone (e.g. after a restart, or on
    /// another replica). Only differences leading up to the served serial are kept (a
    /// backlog for another version is useless); returns how many.
    pub fn import_backlog(
        &self,
        origin: &Name,
        export: &BacklogExport,
    ) -> Result<usize, OutgoingError> {
        let entries = export.entries_for(origin)?;
        self.with_zone(origin, |z| {
            let Some(serial) = z.zone.as_ref().and_then(|zone| zone.soa_serial()) else {
                return Err(OutgoingError::NotPublished(origin.to_ascii()));
            };
            let mut backlog = z.backlog.empty_like();
            for entry in entries {
                backlog.push(entry);
            }
            if backlog.newest_serial() != Some(serial) {
                backlog.clear();
            }
            z.backlog = backlog;
            Ok(z.backlog.len())
        })
    }

    /// Serves `zone` with `export` as its backlog, both swapped in under one lock: a
    /// transfer sees the old version with the old backlog or the new with the new, never a
    /// mix (a replica loading what the leader saved, or a restart). A backlog that does not
    /// lead up to `zone`'s serial is dropped (peers get AXFR). Returns the differences kept.
    pub fn install(&self, zone: Zone, export: &BacklogExport) -> Result<usize, OutgoingError> {
        let origin = zone.origin().clone();
        let Some(serial) = zone.soa_serial() else {
            return Err(OutgoingError::NoSoa(origin.to_ascii()));
        };
        let entries = export.entries_for(&origin)?;
        let zone = Arc::new(WireZone::from_zone(&zone)?);
        let zone_bytes = zone.byte_len();
        Ok(self.with_zone(&origin, |z| {
            let mut backlog = z.backlog.empty_like();
            backlog.set_zone_bytes(zone_bytes);
            for entry in entries {
                backlog.push(entry);
            }
            if backlog.newest_serial() != Some(serial) || !z.enabled {
                backlog.clear();
            }
            z.zone = Some(zone);
            z.backlog = backlog;
            z.backlog.len()
        }))
    }

    /// Each peer's last transfer of each zone.
    pub fn transfers(&self) -> Vec<TransferRecord> {
        self.state
            .transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Requests refused so far, by reason (every reason listed, zeros included).
    pub fn refusals(&self) -> Vec<(RefusalReason, u64)> {
        RefusalReason::ALL
            .iter()
            .map(|r| (*r, self.state.refusals[r.index()].load(Ordering::Relaxed)))
            .collect()
    }

    /// Requests refused so far, by zone (the served zone's name, or "" for a name not
    /// configured here) and reason; only counts above zero.
    pub fn refusals_by_zone(&self) -> Vec<(String, RefusalReason, u64)> {
        self.state
            .zone_refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((zone, reason), n)| (zone.clone(), *reason, *n))
            .collect()
    }

    /// NOTIFYs accepted from the backend from now on.
    pub fn incoming_notifies(&self) -> broadcast::Receiver<IncomingNotify> {
        self.state.notify_tx.subscribe()
    }
}

/// The running listeners; dropping stops them.
pub struct TransferServer {
    listeners: Listeners,
    handle: TransferHandle,
}

impl TransferServer {
    /// Listens on `addr` (UDP and TCP; port 0 picks one) with a new, empty handle.
    pub async fn start(addr: SocketAddr, opts: TransferOptions) -> Result<Self, ServerError> {
        Self::serve(addr, opts, TransferHandle::new()).await
    }

    /// Listens on `addr` serving what `handle` holds.
    pub async fn serve(
        addr: SocketAddr,
        opts: TransferOptions,
        handle: TransferHandle,
    ) -> Result<Self, ServerError> {
        let listeners = listen(
            addr,
            handle.state.clone(),
            opts.tcp_idle,
            opts.max_tcp_connections,
        )
        .await?;
        Ok(Self { listeners, handle })
    }

    /// The address both sockets listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners.local_addr
    }

    /// The handle on what is served.
    pub fn handle(&self) -> TransferHandle {
        self.handle.clone()
    }

    /// Stops listening and waits for the listeners to end.
    pub async fn shutdown(self) {
        self.listeners.shutdown().await;
    }
}
