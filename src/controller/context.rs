//! State of the DnsZone controller: the client, the event recorder, metrics, the stores it
//! reads other objects from, and what the operator remembers per zone between passes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::Mutex;

use super::events::ZoneEvents;
use super::operator::AbortOnDrop;
use super::references::NameIndex;
use super::settled::{Settled, Touched};
use super::zone_lock::ZoneLocks;
use crate::api::{DnsZone, DnsZoneStatus, ZoneSync};
use crate::reconcile::config::Endpoint;
use crate::reconcile::pass::ZoneState;
use crate::telemetry::{Metrics, ZoneLabels};

/// What the operator keeps in memory for one DnsZone.
#[derive(Debug, Default)]
pub struct ZoneRuntime {
    /// Ownership and the backend snapshot.
    pub state: ZoneState,
    /// Whether `state.owned` was read from its ConfigMap since the operator started.
    pub owned_loaded: bool,
    /// The last connection that passed its test: a failing new one is not taken.
    pub accepted_backend: Option<Endpoint>,
    /// Consecutive failed reconciles, for the backoff.
    pub failures: u32,
    /// The status last written, with the resourceVersion of the object it was computed
    /// from: while the watched object is still that version, the write is not in it yet.
    pub written: Option<(Option<String>, DnsZoneStatus)>,
    /// What the scheduled drift check compares the backend's serial with.
    pub drift_base: Option<DriftBase>,
    /// The object this state belongs to: a new object of the same name starts afresh.
    pub uid: Option<String>,
    /// The zone's metric labels, to drop its series once it is gone.
    pub labels: Option<ZoneLabels>,
    /// The status in `written` failed to reach the API server: the next pass starts from it
    /// and writes it even if it finds nothing new, so a recorded change is not lost.
    pub status_unwritten: bool,
    /// Saving `state.owned` failed: the next pass saves it even if ownership did not change.
    pub owned_unsaved: bool,
    /// What the ownership pointer names, as far as this process knows.
    pub owned_chunks: super::snapshot::Before,
    /// Set by a pass that succeeded: until the object or what it names changes, or the
    /// requeue is due, a reconcile has nothing to do.
    pub settled: Option<Settled>,
}

/// The serial (and, for a zone never synced, the zone at it) that zonekeeper has accounted
/// for: its own changes and recorded syncs move it, an out-of-band change does not.
#[derive(Debug)]
pub struct DriftBase {
    pub serial: i64,
    pub zone: Option<Arc<crate::dns::model::Zone>>,
}

impl ZoneRuntime {
    /// The status a pass starts from: the object's, unless this operator's own last write is
    /// newer than the object it was handed (a reconcile woken by a ZoneSync can run before the
    /// watch delivered that write), so a recorded change is never written away again.
    pub fn status_of(&self, zone: &DnsZone) -> DnsZoneStatus {
        match &self.written {
            Some((from, status))
                if self.status_unwritten || *from == zone.metadata.resource_version =>
            {
                status.clone()
            }
            _ => zone.status.clone().unwrap_or_default(),
        }
    }
}

/// Tunables of the operator.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a deleted zone's cleanup may keep failing before the finalizer lets go.
    pub cleanup_timeout: Duration,
    /// Requeue period when `spec.sync.interval` is 0.
    pub idle_requeue: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cleanup_timeout: Duration::from_secs(300),
            idle_requeue: Duration::from_secs(600),
        }
    }
}

/// Shared by every DnsZone reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Every DnsZone the controller sees, for conflict detection and reference mapping.
    pub zones: Store<DnsZone>,
    /// Every ZoneSync: the zone's sync history and whether a sync holds it are read here.
    pub syncs: Store<ZoneSync>,
    /// The zones' references and targets, from the same watch as `zones`.
    pub names: NameIndex,
    /// The zones woken by a Secret, ConfigMap, ZoneSync or the transfer server.
    pub touched: Touched,
    /// Shared with the ZoneSync controller.
    pub locks: Arc<ZoneLocks>,
    /// The transfer server's side of outgoing transfers; `None` without `--transfer-addr`.
    pub outgoing: Option<Arc<super::outgoing::Outgoing>>,
    /// Flips to true when the controller is told to stop: work that would hold the shutdown
    /// up (a zone's cleanup against a stuck server) gives up.
    pub stopping: tokio::sync::watch::Sender<bool>,
    runtime: Mutex<HashMap<String, Arc<Mutex<ZoneRuntime>>>>,
    /// The zones' Events, with what each zone needs to count a repeat.
    pub events: ZoneEvents,
}

/// Who this instance's Events say reported them.
fn reporter(instance: String) -> Reporter {
    Reporter {
        controller: "zonekeeper".into(),
        instance: Some(instance),
    }
}

/// The event recorder every controller of this instance reports as.
pub fn recorder(client: &Client, instance: String) -> Recorder {
    Recorder::new(client.clone(), reporter(instance))
}

/// How soon the state and metric series of a zone deleted without a finalizer go.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

impl Context {
    /// The controller's background work: flags `stopping` when `shutdown` fires and sweeps
    /// the state of zones gone without a finalizer. Ends when dropped, also when a lost lease
    /// drops the controller midway: the sweeper holds the context, and with it the zones'
    /// outgoing tasks, which must not outlive the lead.
    pub(super) fn background(
        ctx: &Arc<Self>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> AbortOnDrop<()> {
        let ctx = ctx.clone();
        AbortOnDrop(tokio::spawn(async move {
            let stopping = async {
                shutdown.await;
                ctx.stopping.send_replace(true);
            };
            let sweeping = async {
                loop {
                    tokio::time::sleep(SWEEP_INTERVAL).await;
                    ctx.forget_gone().await;
                }
            };
            futures::join!(stopping, sweeping);
        }))
    }

    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        settings: Settings,
        stores: (Store<DnsZone>, Store<ZoneSync>),
        locks: Arc<ZoneLocks>,
        instance: String,
    ) -> Self {
        Self {
            recorder: recorder(&client, instance.clone()),
            events: ZoneEvents::new(client.clone(), reporter(instance)),
            client,
            metrics,
            settings,
            zones: stores.0,
            syncs: stores.1,
            names: NameIndex::default(),
            touched: Touched::default(),
            locks,
            outgoing: None,
            stopping: tokio::sync::watch::Sender::new(false),
            runtime: Mutex::default(),
        }
    }

    /// The runtime state of one zone (`namespace/name`). kube-runtime never runs two
    /// reconciles of one object at once, so this lock is uncontended; it exists so the map
    /// lock is never held across an await.
    pub async fn runtime(&self, key: &str) -> Arc<Mutex<ZoneRuntime>> {
        self.runtime
            .lock()
            .await
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    /// Forgets a deleted zone.
    pub async fn forget(&self, key: &str) {
        self.events.forget(key);
        self.touched.take(&zone_ref(key));
        self.runtime.lock().await.remove(key);
        self.locks.forget(key);
    }

    /// Forgets every zone gone from the store, metric series included. Zones without a
    /// finalizer vanish without a last reconcile, so nothing else would.
    pub async fn forget_gone(&self) {
        let gone: Vec<(String, Arc<Mutex<ZoneRuntime>>)> = {
            let mut map = self.runtime.lock().await;
            let keys: Vec<String> = map
                .keys()
                .filter(|key| !self.in_store(key))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|key| map.remove(&key).map(|rt| (key, rt)))
                .collect()
        };
        for (key, rt) in gone {
            self.events.forget(&key);
            self.touched.take(&zone_ref(&key));
            self.locks.forget(&key);
            if let Some(labels) = rt.lock().await.labels.take() {
                self.metrics.zone_deleted(&labels);
            }
        }
    }

    fn in_store(&self, key: &str) -> bool {
        self.zones.get(&zone_ref(key)).is_some()
    }
}

/// The reference of the zone `namespace/name`.
pub fn zone_ref(key: &str) -> ObjectRef<DnsZone> {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    ObjectRef::new(name).within(ns)
}
