//! State shared by the reconcilers: the client, the event recorder, metrics, and what the
//! operator remembers per zone between passes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use tokio::sync::Mutex;

use crate::api::DnsZone;
use crate::reconcile::config::Endpoint;
use crate::reconcile::pass::ZoneState;
use crate::telemetry::Metrics;

/// What the operator keeps in memory for one DnsZone.
#[derive(Debug, Default)]
pub struct ZoneRuntime {
    /// Ownership and the backend snapshot.
    pub state: ZoneState,
    /// Whether `state.owned` was read from its ConfigMap since the operator started.
    pub owned_loaded: bool,
    /// The last connection that passed its test (seed 002: a failing new one is not taken).
    pub accepted_backend: Option<Endpoint>,
    /// Consecutive failed reconciles, for the backoff.
    pub failures: u32,
    /// Set by a ZoneSync after it wrote the zone's status: the next DnsZone pass reads the
    /// status afresh instead of trusting the (older) object it was handed.
    pub status_stale: bool,
    /// The last snapshot a ZoneSync stored, with the id of its pointer: a cache of the store,
    /// valid only while the stored pointer still names that id.
    pub synced: Option<(String, crate::dns::model::Zone)>,
    /// When the scheduled drift check last looked at this zone.
    pub drift_checked: Option<std::time::Instant>,
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

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Every DnsZone the controller sees, for conflict detection and reference mapping.
    pub zones: Store<DnsZone>,
    runtime: Mutex<HashMap<String, Arc<Mutex<ZoneRuntime>>>>,
    /// Zones (`namespace/name`) a ZoneSync is running for; at most one sync per zone.
    syncing: std::sync::Mutex<HashSet<String>>,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        settings: Settings,
        zones: Store<DnsZone>,
        instance: String,
    ) -> Self {
        let reporter = Reporter {
            controller: "zonekeeper".into(),
            instance: Some(instance),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            settings,
            zones,
            runtime: Mutex::default(),
            syncing: std::sync::Mutex::default(),
        }
    }

    /// Marks a sync of the zone as running; `None` when one already is. The claim ends when
    /// the returned guard drops (also when the sync's future is dropped mid-way).
    pub fn claim_sync(&self, key: &str) -> Option<SyncClaim<'_>> {
        let mut set = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(key.to_string()).then(|| SyncClaim {
            ctx: self,
            key: key.to_string(),
        })
    }

    /// Whether a ZoneSync of the zone is running, which makes the zone read-only.
    pub fn is_syncing(&self, key: &str) -> bool {
        self.syncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// The runtime state of one zone (`namespace/name`). kube-runtime never runs two
    /// reconciles of one object at once, so the per-zone lock is uncontended; it exists so
    /// the map lock is never held across an await.
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
        self.runtime.lock().await.remove(key);
    }
}

/// A running sync of one zone; dropping it ends the claim.
pub struct SyncClaim<'a> {
    ctx: &'a Context,
    key: String,
}

impl Drop for SyncClaim<'_> {
    fn drop(&mut self) {
        self.ctx
            .syncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}
