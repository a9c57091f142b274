//! State shared by the reconcilers: the client, the event recorder, metrics, and what the
//! operator remembers per zone between passes.

use std::collections::HashMap;
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
        }
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
