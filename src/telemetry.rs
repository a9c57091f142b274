//! Logs, Prometheus metrics and the health endpoints (`/metrics`, `/livez`, `/readyz`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global tracing subscriber; the filter comes from `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colour codes are for people at a terminal; in a file or a log collector they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests start several operators in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Labels of a reconcile outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: String,
    pub result: String,
    pub reason: String,
}

/// Labels naming an object kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// Labels naming a transfer method (`AXFR`, `IXFR`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

/// Labels naming a zone object.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    pub namespace: String,
    pub name: String,
    pub zone: String,
}

/// Labels of a request the transfer server refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// The served zone asked for; empty for a name not configured for outgoing transfers.
    pub zone: String,
    /// `unlisted_address`, `unsigned`, `bad_key`, `bad_signature`, `bad_time`, `not_served`,
    /// `disabled`, `unsupported` or `malformed`.
    pub reason: String,
}

/// Labels naming a namespace.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub update_messages: Counter,
    pub update_rrs: Counter,
    pub transfer_bytes: Family<MethodLabels, Counter>,
    pub transfer_duration: Family<MethodLabels, Histogram>,
    pub zone_records: Family<ZoneLabels, Gauge>,
    pub drift_rrsets: Family<ZoneLabels, Gauge>,
    pub leader: Gauge,
    /// Requests refused by the transfer server, by zone and reason; copied from the
    /// transfer server's own counters whenever the metrics are read.
    pub outgoing_refused: Family<RefusedLabels, Counter>,
    /// Held while copying, so two scrapes at once do not both add the same difference.
    outgoing: std::sync::Mutex<Option<crate::dns::outgoing::TransferHandle>>,
    /// DnsZones whose Ready condition is not True, per namespace.
    pub zones_not_ready: Family<NamespaceLabels, Gauge>,
    /// Whether each zone (`namespace`, `name`) was Ready at its last reconcile: the source of
    /// `zones_not_ready`.
    zone_ready: std::sync::Mutex<std::collections::BTreeMap<(String, String), bool>>,
    ready: AtomicBool,
    /// What `/livez` judges.
    pub watchdog: Arc<Watchdog>,
}

/// Whether the reconcile loops make progress: every reconcile registers itself with the
/// longest it may take, and a controller whose event stream ended says so. `/livez` fails
/// (so the kubelet restarts the pod) on a reconcile past its limit or an ended controller.
#[derive(Debug, Default)]
pub struct Watchdog {
    state: std::sync::Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    next: u64,
    running: std::collections::BTreeMap<u64, Running>,
    ended: Vec<String>,
    cap: Option<Duration>,
}

#[derive(Debug)]
struct Running {
    what: String,
    started: Instant,
    limit: Duration,
}

/// A registered reconcile; dropping it (the reconcile ended or was cancelled) unregisters it.
#[derive(Debug)]
pub struct Watched {
    watchdog: Arc<Watchdog>,
    id: u64,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.watchdog.lock().running.remove(&self.id);
    }
}

impl Watchdog {
    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a reconcile of `what` that must end within `limit`.
    pub fn start(self: &Arc<Self>, what: String, limit: Duration) -> Watched {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.running.insert(
            id,
            Running {
                what,
                started: Instant::now(),
                limit,
            },
        );
        Watched {
            watchdog: self.clone(),
            id,
        }
    }

    /// Holds every reconcile, running or to come, to at most `cap` (`None`: each to its own
    /// limit). The limits derived from a zone's bounds are minutes long; an embedder (or a
    /// test) that wants a stuck loop noticed sooner tightens them here.
    pub fn cap_limits(&self, cap: Option<Duration>) {
        self.lock().cap = cap;
    }

    /// Notes that a controller stopped although the operator did not ask it to.
    pub fn controller_ended(&self, which: &str) {
        tracing::error!(
            controller = which,
            "controller stopped: /livez fails from now on"
        );
        self.lock().ended.push(which.to_string());
    }

    /// `Err(why)` when the loops made no progress: a controller ended, or a reconcile runs
    /// past its limit at `now`.
    pub fn verdict(&self, now: Instant) -> Result<(), String> {
        let state = self.lock();
        let mut why: Vec<String> = state
            .ended
            .iter()
            .map(|c| format!("{c} controller stopped"))
            .collect();
        why.extend(state.running.values().filter_map(|r| {
            let took = now.saturating_duration_since(r.started);
            let limit = state.cap.map_or(r.limit, |cap| cap.min(r.limit));
            (took > limit).then(|| {
                format!(
                    "reconcile of {} running for {}s, limit {}s",
                    r.what,
                    took.as_secs(),
                    limit.as_secs()
                )
            })
        }));
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("; "))
        }
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("zonekeeper");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration =
            Family::<KindLabels, Histogram>::new_with_constructor(duration_histogram as fn() -> _);
        let update_messages = Counter::default();
        let update_rrs = Counter::default();
        let transfer_bytes = Family::<MethodLabels, Counter>::default();
        let transfer_duration = Family::<MethodLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> _,
        );
        let zone_records = Family::<ZoneLabels, Gauge>::default();
        let drift_rrsets = Family::<ZoneLabels, Gauge>::default();
        let leader = Gauge::default();
        let zones_not_ready = Family::<NamespaceLabels, Gauge>::default();
        let outgoing_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "outgoing_refused",
            "Requests the transfer server refused, by zone and reason",
            outgoing_refused.clone(),
        );
        registry.register(
            "zones_not_ready",
            "DnsZones whose Ready condition is not True, by namespace",
            zones_not_ready.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles by kind, result and condition reason",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            reconcile_duration.clone(),
        );
        registry.register(
            "update_messages",
            "RFC 2136 UPDATE messages sent",
            update_messages.clone(),
        );
        registry.register(
            "update_rrs",
            "Resource records added or deleted by UPDATEs",
            update_rrs.clone(),
        );
        registry.register(
            "transfer_bytes",
            "Bytes received in zone transfers",
            transfer_bytes.clone(),
        );
        registry.register(
            "transfer_duration_seconds",
            "Time one zone transfer took",
            transfer_duration.clone(),
        );
        registry.register(
            "zone_records",
            "Resource records in the backend zone",
            zone_records.clone(),
        );
        registry.register(
            "drift_rrsets",
            "Managed RRsets that differ on the backend",
            drift_rrsets.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance holds the leader lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            update_messages,
            update_rrs,
            transfer_bytes,
            transfer_duration,
            zone_records,
            drift_rrsets,
            leader,
            zones_not_ready,
            outgoing_refused,
            outgoing: std::sync::Mutex::default(),
            zone_ready: std::sync::Mutex::default(),
            ready: AtomicBool::new(false),
            watchdog: Arc::default(),
        }
    }
}

impl Metrics {
    /// Counts one reconcile outcome.
    pub fn reconciled(&self, kind: &str, result: &str, reason: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.to_string(),
                result: result.to_string(),
                reason: reason.to_string(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .observe(seconds);
    }

    /// Marks the caches as synced: `/readyz` answers 200 from now on.
    /// Notes whether a zone is Ready after its reconcile.
    pub fn zone_readiness(&self, labels: &ZoneLabels, ready: bool) {
        let mut zones = self.zone_ready.lock().unwrap_or_else(|p| p.into_inner());
        let before = zones.insert((labels.namespace.clone(), labels.name.clone()), ready);
        // The count moves by this zone's change (under the map's lock): a count of every zone
        // on every pass cost O(zones) a pass.
        let gauge = self.not_ready_gauge(&labels.namespace);
        match (before, ready) {
            (Some(false), true) => {
                gauge.dec();
            }
            (None | Some(true), false) => {
                gauge.inc();
            }
            _ => {}
        }
    }

    /// Drops every per-zone series of a deleted zone.
    pub fn zone_deleted(&self, labels: &ZoneLabels) {
        self.zone_records.remove(labels);
        self.drift_rrsets.remove(labels);
        let mut zones = self.zone_ready.lock().unwrap_or_else(|p| p.into_inner());
        let before = zones.remove(&(labels.namespace.clone(), labels.name.clone()));
        let gauge = self.not_ready_gauge(&labels.namespace);
        if before == Some(false) {
            gauge.dec();
        }
    }

    fn not_ready_gauge(&self, namespace: &str) -> Gauge {
        self.zones_not_ready
            .get_or_create(&NamespaceLabels {
                namespace: namespace.to_string(),
            })
            .clone()
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Exports the transfer server's refusal counts (from the first handle given; one
    /// operator has one transfer server).
    pub fn watch_outgoing(&self, handle: &crate::dns::outgoing::TransferHandle) {
        self.outgoing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| handle.clone());
    }

    /// Brings `outgoing_refused` up to the transfer server's counts: the server counts on its
    /// hot path without knowing about metrics, and is read only when someone asks.
    fn sync_outgoing(&self) {
        let handle = self.outgoing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(handle) = handle.as_ref() else {
            return;
        };
        for (zone, reason, count) in handle.refusals_by_zone() {
            let counter = self.outgoing_refused.get_or_create(&RefusedLabels {
                zone,
                reason: reason.as_str().to_string(),
            });
            let seen = counter.get();
            if count > seen {
                counter.inc_by(count - seen);
            }
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        self.sync_outgoing();
        let mut out = String::new();
        // Encoding into a String cannot fail for want of space; an error would be a
        // formatting bug in a metric, which the tests of /metrics catch.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The health and metrics router.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/livez", get(serve_live))
        .route("/readyz", get(serve_ready))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

async fn serve_live(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    match metrics.watchdog.verdict(Instant::now()) {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => {
            tracing::error!(reason = %why, "/livez fails");
            (StatusCode::SERVICE_UNAVAILABLE, why)
        }
    }
}

async fn serve_ready(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet")
    }
}

/// Binds the metrics address; the returned future serves until the process stops.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, async move {
        axum::serve(listener, router(metrics)).await
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_answer_and_metrics_carry_labels() {
        let metrics = Arc::new(Metrics::default());
        let (addr, server) = serve("127.0.0.1:0".parse().unwrap(), metrics.clone())
            .await
            .unwrap();
        let task = tokio::spawn(server);
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            let mut body = String::new();
            stream.read_to_string(&mut body).await.unwrap();
            body
        };
        assert!(get("/livez").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        metrics.set_ready();
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));

        metrics.reconciled("DnsZone", "error", "ConnectionFailed", 0.01);
        metrics.leader.set(1);
        let text = get("/metrics").await;
        assert!(text.contains(
            r#"zonekeeper_reconciles_total{kind="DnsZone",result="error",reason="ConnectionFailed"} 1"#
        ), "{text}");
        assert!(text.contains("zonekeeper_leader 1"), "{text}");
        let stuck = metrics
            .watchdog
            .start("DnsZone dns/x".into(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let live = get("/livez").await;
        assert!(live.starts_with("HTTP/1.1 503"), "{live}");
        assert!(
            live.contains("reconcile of DnsZone dns/x running"),
            "{live}"
        );
        drop(stuck);
        assert!(get("/livez").await.starts_with("HTTP/1.1 200"));
        assert!(
            text.contains("zonekeeper_reconcile_duration_seconds_count{kind=\"DnsZone\"} 1"),
            "{text}"
        );
        task.abort();
    }

    #[test]
    fn the_watchdog_fails_on_an_overdue_reconcile_or_an_ended_controller_only() {
        let dog = Arc::new(Watchdog::default());
        let t0 = Instant::now();
        assert_eq!(dog.verdict(t0), Ok(()), "nothing running");
        let a = dog.start("DnsZone dns/a".into(), Duration::from_secs(60));
        let b = dog.start("DnsZone dns/b".into(), Duration::from_secs(600));
        assert_eq!(
            dog.verdict(t0 + Duration::from_secs(59)),
            Ok(()),
            "within limits"
        );
        let why = dog.verdict(t0 + Duration::from_secs(120)).unwrap_err();
        assert!(why.contains("DnsZone dns/a running for 1"), "{why}");
        assert!(!why.contains("dns/b"), "b is within its own limit: {why}");
        drop(a);
        assert_eq!(
            dog.verdict(t0 + Duration::from_secs(120)),
            Ok(()),
            "the overdue reconcile ended: progress again"
        );
        drop(b);
        dog.controller_ended("ZoneSync");
        assert_eq!(
            dog.verdict(t0),
            Err("ZoneSync controller stopped".to_string())
        );
    }

    #[test]
    fn a_cap_tightens_every_limit_running_or_to_come_and_lifts_again() {
        let dog = Arc::new(Watchdog::default());
        let _sync = dog.start("ZoneSync dns/s (zone a.)".into(), Duration::from_secs(600));
        let _short = dog.start("DnsZone dns/b".into(), Duration::from_secs(1));
        let t0 = Instant::now();
        let at = t0 + Duration::from_secs(5);
        let why = dog.verdict(at).unwrap_err();
        assert!(!why.contains("ZoneSync"), "within its own limit: {why}");
        dog.cap_limits(Some(Duration::from_secs(2)));
        let why = dog.verdict(at).unwrap_err();
        assert!(
            why.contains("ZoneSync dns/s (zone a.) running for 5s, limit 2s"),
            "{why}"
        );
        assert!(
            why.contains("DnsZone dns/b running for 5s, limit 1s"),
            "a cap never loosens a shorter limit: {why}"
        );
        dog.cap_limits(None);
        assert!(!dog.verdict(at).unwrap_err().contains("ZoneSync"));
    }
}
