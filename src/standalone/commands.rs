//! `zonekeeper plan`, `apply`, `sync` and `import`: the operator's reconcile and sync run
//! against manifest files instead of a cluster, with state kept in `--state-dir`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use serde::Serialize;

use super::manifests::{ManifestError, Manifests};
use super::progress::Working;
use super::state::{StateError, ZoneDir};
use crate::api::DnsZone;
use crate::api::dns_zone::ZoneType;
use crate::api::shared::ChangeType;
use crate::api::zone_sync::{SyncMethod, SyncPhase, ZoneSyncStatus};
use crate::dns::diff::{Change, change_lines};
use crate::dns::transfer::BoundsOverride;
use crate::reconcile::config::{self, Connection, Lookup};
use crate::reconcile::outcome::{FoldContext, Outcome, fold, new_change_id};
use crate::reconcile::pass::{self, Mode, Observing, PassError, ZoneState};
use crate::reconcile::reason::SyncReason;
use crate::reconcile::status::{condition, is_true, now};
use crate::reconcile::sync;
use crate::reconcile::zone::{ZoneHost, reconcile_zone};

/// A zone reconciled from manifests, with its state in `--state-dir`. There is no earlier
/// accepted connection to fall back to, so the connection is taken as configured.
struct StateDirHost<'a> {
    manifests: &'a Manifests,
    namespace: String,
    dir: ZoneDir,
    state: Option<ZoneState>,
    /// Ownership and SOA memory, read on another worker while the zone's records are resolved.
    prefetch: Option<tokio::task::JoinHandle<Result<ZoneState, StateError>>>,
    /// An observation started before the manifests' records were read.
    early: Option<EarlyObservation>,
}

impl<'a> StateDirHost<'a> {
    /// A host for one zone object; its stored ownership starts loading at once, on another
    /// worker: it and the resolve of the manifest's records are independent.
    fn new(
        manifests: &'a Manifests,
        state_dir: &Path,
        namespace: &str,
        name: &str,
        early: Option<EarlyObservation>,
    ) -> Self {
        let dir = ZoneDir::new(state_dir, namespace, name);
        let stored = dir.clone();
        let prefetch = tokio::task::spawn_blocking(move || load_state(&stored));
        Self {
            manifests,
            namespace: namespace.to_string(),
            dir,
            state: None,
            prefetch: Some(prefetch),
            early,
        }
    }

    /// Writes back what an apply changed: ownership and the snapshot.
    async fn save(&self) -> Result<(), StateError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        self.dir.save_owned(&state.owned)?;
        self.dir.save_soa(&state.soa)?;
        if let Some(snapshot) = &state.snapshot {
            self.dir.save_snapshot(snapshot).await?;
        }
        Ok(())
    }
}

impl<'a> ZoneHost for StateDirHost<'a> {
    type Error = StateError;
    type Lookup = ManifestLookup<'a>;

    async fn lookup(&mut self) -> Result<ManifestLookup<'a>, StateError> {
        Ok(ManifestLookup {
            manifests: self.manifests,
            namespace: self.namespace.clone(),
        })
    }

    async fn test_connection(
        &mut self,
        _connection: &mut Connection,
    ) -> Result<Option<String>, PassError> {
        Ok(None)
    }

    fn observe(&mut self, connection: &Connection) -> Observing<StateError> {
        match self.early.take() {
            Some(early) if early.connection == *connection => early.observing,
            // Started for a connection the whole manifest does not have: dropped, it stops.
            _ => observe_stored(self.dir.clone(), connection.clone()),
        }
    }

    async fn state(&mut self, _origin: &Name) -> Result<&mut ZoneState, StateError> {
        let state = match (self.state.take(), self.prefetch.take()) {
            (Some(state), _) => state,
            (None, Some(task)) => match task.await {
                Ok(loaded) => loaded?,
                // The task panicked: read it here.
                Err(_) => load_state(&self.dir)?,
            },
            (None, None) => load_state(&self.dir)?,
        };
        Ok(self.state.insert(state))
    }
}

/// A zone's stored ownership and SOA memory; its snapshot is read by [`observe_stored`].
fn load_state(dir: &ZoneDir) -> Result<ZoneState, StateError> {
    Ok(ZoneState {
        owned: dir.load_owned()?,
        snapshot: None,
        soa: dir.load_soa()?,
    })
}

/// Observes a zone's backend from the snapshot stored for it, both on their own task.
fn observe_stored(dir: ZoneDir, connection: Connection) -> Observing<StateError> {
    Observing::spawn(connection.backend.server.clone(), |stop| async move {
        let snapshot = dir.load_snapshot(&connection.origin).await?;
        let snapshot = snapshot.map(std::sync::Arc::new);
        Ok(pass::observe(connection, snapshot, stop).await)
    })
}

/// The observation of the first zone to plan, started as soon as its connection is known:
/// reading a big `records:` list and transferring the zone then overlap.
pub struct EarlyObservation {
    /// `namespace/name` of the zone object.
    key: String,
    connection: Connection,
    observing: Observing<StateError>,
}

impl EarlyObservation {
    /// Starts observing the first primary of `headers` (manifests whose big lists are not read
    /// yet), when its connection resolves from them.
    fn start(headers: &Manifests, state_dir: &Path) -> Option<Self> {
        let zone = headers
            .zones
            .values()
            .find(|z| z.spec.zone_type == ZoneType::Primary && !z.spec.suspend)?;
        let (namespace, name) = zone_key(zone);
        let lookup = ManifestLookup {
            manifests: headers,
            namespace: namespace.clone(),
        };
        let connection = config::connection(&zone.spec, &lookup).ok()?;
        let dir = ZoneDir::new(state_dir, &namespace, &name);
        Some(Self {
            key: super::manifests::object_key(Some(&namespace), &name),
            observing: observe_stored(dir, connection.clone()),
            connection,
        })
    }

    /// This observation, if it is of the zone object `namespace/name`.
    fn of(early: &mut Option<Self>, namespace: &str, name: &str) -> Option<Self> {
        let key = super::manifests::object_key(Some(namespace), name);
        early.take_if(|e| e.key == key)
    }
}

/// Reads a zone's Secrets and ConfigMaps from the loaded manifests.
struct ManifestLookup<'a> {
    manifests: &'a Manifests,
    namespace: String,
}

impl Lookup for ManifestLookup<'_> {
    fn secret(&self, name: &str, key: &str) -> Option<Option<Vec<u8>>> {
        let exists = self
            .manifests
            .secrets
            .contains_key(&super::manifests::object_key(Some(&self.namespace), name));
        exists.then(|| self.manifests.secret_value(&self.namespace, name, key))
    }

    fn config_map(&self, name: &str, key: &str) -> Option<String> {
        self.manifests
            .config_map_value(&self.namespace, name, key)
            .map(str::to_string)
    }
}

/// Output format of `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// What `plan` found for one zone, as `-o json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZonePlan {
    pub object: String,
    pub zone: String,
    pub server: String,
    pub serial: Option<u32>,
    /// RRsets to add.
    pub added: usize,
    /// RRsets to replace.
    pub updated: usize,
    /// RRsets to delete whole.
    pub deleted: usize,
    /// Resource records removed, by deleted and by replaced RRsets: what the deletion guard
    /// counts.
    pub deleted_records: usize,
    pub guard: String,
    pub changes: Vec<String>,
    pub error: Option<String>,
}

fn zone_key(zone: &DnsZone) -> (String, String) {
    (
        zone.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        zone.metadata.name.clone().unwrap_or_default(),
    )
}

fn filtered<'a>(
    manifests: &'a Manifests,
    only: Option<&'a str>,
) -> impl Iterator<Item = &'a DnsZone> {
    manifests.zones.values().filter(move |z| {
        only.is_none_or(|o| {
            z.spec.zone_name == o
                || z.spec.zone_name.trim_end_matches('.') == o.trim_end_matches('.')
                || z.metadata.name.as_deref() == Some(o)
        })
    })
}

/// The diff lines of a plan: `+` added records, `-` removed ones.
pub fn plan_lines(changes: &[Change]) -> Vec<String> {
    change_lines(changes)
}

/// Loads manifests, the first zone's server observed while their big lists are read.
fn load_observing(
    paths: &[PathBuf],
    state_dir: &Path,
) -> Result<(Manifests, Option<EarlyObservation>), ManifestError> {
    let reading = Manifests::read(paths)?;
    let early = EarlyObservation::start(reading.headers(), state_dir);
    Ok((reading.finish()?, early))
}

/// `zonekeeper plan`: exit code 0 no changes, 2 changes pending, 1 error.
pub async fn plan(paths: &[PathBuf], state_dir: &Path, output: Output) -> (i32, String) {
    match load_observing(paths, state_dir) {
        Ok((m, early)) => plan_observing(&m, state_dir, output, early).await,
        Err(e) => (1, format!("error: {e}\n")),
    }
}

/// `plan` over manifests already loaded (the demo builds them in memory).
pub async fn plan_manifests(
    manifests: &Manifests,
    state_dir: &Path,
    output: Output,
) -> (i32, String) {
    plan_observing(manifests, state_dir, output, None).await
}

async fn plan_observing(
    manifests: &Manifests,
    state_dir: &Path,
    output: Output,
    mut early: Option<EarlyObservation>,
) -> (i32, String) {
    let mut plans = Vec::new();
    let mut code = 0;
    for zone in manifests.zones.values() {
        let (ns, name) = zone_key(zone);
        let mut p = ZonePlan {
            object: format!("{ns}/{name}"),
            zone: zone.spec.zone_name.clone(),
            server: zone.spec.backend.server.clone(),
            serial: None,
            added: 0,
            updated: 0,
            deleted: 0,
            deleted_records: 0,
            guard: "ok".into(),
            changes: Vec::new(),
            error: None,
        };
        // A plan covers what zonekeeper writes: primaries only.
        if zone.spec.zone_type == ZoneType::Secondary {
            plans.push(p);
            continue;
        }
        let early = EarlyObservation::of(&mut early, &ns, &name);
        let mut host = StateDirHost::new(manifests, state_dir, &ns, &name, early);
        match reconcile_zone(&mut host, &zone.spec, None, Mode::Plan).await {
            Ok(Outcome::Pass { report, .. }) => {
                let (a, u, d) = report.plan.counts();
                p.serial = Some(report.serial_before);
                (p.added, p.updated, p.deleted) = (a, u, d);
                p.deleted_records = report.plan.deleted_rr_count();
                if let Err(v) = &report.guard {
                    p.guard = format!("refused: {v}");
                }
                p.changes = plan_lines(&report.plan.changes);
                if !report.plan.is_empty() && code == 0 {
                    code = 2;
                }
            }
            Ok(Outcome::Invalid(e)) => {
                p.error = Some(e.to_string());
                code = 1;
            }
            Ok(Outcome::Failed(e)) => {
                p.error = Some(e.to_string());
                code = 1;
            }
            Err(e) => {
                p.error = Some(e.to_string());
                code = 1;
            }
            Ok(Outcome::Suspended | Outcome::Conflict { .. } | Outcome::Secondary(_)) => {}
        }
        plans.push(p);
    }
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&plans).unwrap_or_default() + "\n",
        Output::Text => render_plans(&plans),
    };
    (code, text)
}

/// `1 RRset`, `2 RRsets`.
fn counted(n: usize, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn render_plans(plans: &[ZonePlan]) -> String {
    let mut out = String::new();
    for p in plans {
        let _ = write!(out, "zone {} ({}) on {}", p.zone, p.object, p.server);
        if let Some(s) = p.serial {
            let _ = write!(out, " at serial {s}");
        }
        out.push('\n');
        if let Some(e) = &p.error {
            let _ = writeln!(out, "  error: {e}");
            continue;
        }
        for line in &p.changes {
            let _ = writeln!(out, "  {line}");
        }
        if p.changes.is_empty() {
            out.push_str("  no changes\n");
        } else {
            // RRsets and records are both counted: the counts are RRsets, the removed
            // records are what the deletion guard weighs (a replaced RRset removes some).
            let _ = writeln!(
                out,
                "  {} to add, {} to change, {} to delete; {} removed; deletion guard: {}",
                counted(p.added, "RRset"),
                counted(p.updated, "RRset"),
                counted(p.deleted, "RRset"),
                counted(p.deleted_records, "record"),
                p.guard
            );
        }
    }
    out
}

/// `zonekeeper apply`: runs the pass and prints each zone's resulting status as YAML.
/// Exit code 0 when every zone is Ready, 1 otherwise.
pub async fn apply(paths: &[PathBuf], state_dir: &Path) -> (i32, String) {
    match load_observing(paths, state_dir) {
        Ok((m, early)) => apply_observing(&m, state_dir, early).await,
        Err(e) => (1, format!("error: {e}\n")),
    }
}

/// `apply` over manifests already loaded.
pub async fn apply_manifests(manifests: &Manifests, state_dir: &Path) -> (i32, String) {
    apply_observing(manifests, state_dir, None).await
}

async fn apply_observing(
    manifests: &Manifests,
    state_dir: &Path,
    mut early: Option<EarlyObservation>,
) -> (i32, String) {
    let mut out = String::new();
    let mut code = 0;
    for zone in manifests.zones.values() {
        let (ns, name) = zone_key(zone);
        let dir = ZoneDir::new(state_dir, &ns, &name);
        let mut status = match dir.load_status() {
            Ok(s) => s,
            Err(e) => return (1, format!("error: {e}\n")),
        };
        let cx = FoldContext {
            zone_name: &zone.spec.zone_name,
            server: &zone.spec.backend.server,
            uid: None,
            generation: None,
            user_id: Some(std::env::var("USER").unwrap_or_else(|_| "zonekeeper-apply".into())),
            history_limit: zone.spec.history_limit,
            drift_policy: zone.spec.management.drift_policy,
            now: now(),
        };
        let early = EarlyObservation::of(&mut early, &ns, &name);
        let mut host = StateDirHost::new(manifests, state_dir, &ns, &name, early);
        let working = Working::start(format!("applying {}", zone.spec.zone_name));
        let outcome = reconcile_zone(&mut host, &zone.spec, None, Mode::Apply).await;
        drop(working);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => return (1, format!("error: {e}\n")),
        };
        if matches!(outcome, Outcome::Pass { .. })
            && let Err(e) = host.save().await
        {
            return (1, format!("error: {e}\n"));
        }
        fold(&mut status, &outcome, &cx);
        if let Err(e) = dir.save_status(&status) {
            return (1, format!("error: {e}\n"));
        }
        if !is_true(&status.conditions, condition::READY) {
            code = 1;
        }
        let doc = serde_json::json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1",
            "kind": "DnsZone",
            "metadata": {"name": name, "namespace": ns},
            "status": status,
        });
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&doc).unwrap_or_default());
    }
    (code, out)
}

/// `zonekeeper sync`: a ZoneSync without a cluster; prints its status as YAML.
pub async fn sync_zones(
    paths: &[PathBuf],
    state_dir: &Path,
    only: Option<&str>,
    method: SyncMethod,
    dry_run: bool,
    bounds: BoundsOverride,
) -> (i32, String) {
    match Manifests::load(paths) {
        Ok(m) => sync_manifests(&m, state_dir, only, method, dry_run, bounds).await,
        Err(e) => (1, format!("error: {e}\n")),
    }
}

/// `sync` over manifests already loaded.
pub async fn sync_manifests(
    manifests: &Manifests,
    state_dir: &Path,
    only: Option<&str>,
    method: SyncMethod,
    dry_run: bool,
    bounds: BoundsOverride,
) -> (i32, String) {
    let mut out = String::new();
    let mut code = 0;
    for zone in filtered(manifests, only) {
        let (ns, name) = zone_key(zone);
        let dir = ZoneDir::new(state_dir, &ns, &name);
        let lookup = ManifestLookup {
            manifests,
            namespace: ns.clone(),
        };
        let started = now();
        let mut st = ZoneSyncStatus {
            id: Some(new_change_id()),
            change_type: Some(ChangeType::Sync),
            user_id: Some(std::env::var("USER").unwrap_or_else(|_| "zonekeeper-sync".into())),
            created: Some(started.clone()),
            started_at: Some(started),
            ..ZoneSyncStatus::default()
        };
        let result = async {
            let mut cfg = config::resolve(&zone.spec, &lookup)
                .map_err(|e| (SyncReason::from(e.reason()), e.to_string()))?;
            cfg.transfer.bounds = cfg.transfer.bounds.overridden(bounds);
            let previous = dir
                .load_snapshot(&cfg.origin)
                .await
                .map_err(|e| (SyncReason::SnapshotUnreadable, e.to_string()))?;
            let working = Working::start(format!("syncing {}", cfg.origin));
            let guard = sync::SyncGuard {
                guard: cfg.guard.clone(),
                allow_mass_deletion: cfg.allow_mass_deletion,
            };
            let report =
                sync::sync_guarded(&cfg.transfer, &cfg.origin, previous, method, &guard).await;
            drop(working);
            let report = report.map_err(|(e, _)| (e.reason(), e.to_string()))?;
            if !dry_run {
                dir.save_snapshot(&report.snapshot)
                    .await
                    .map_err(|e| (SyncReason::SnapshotWriteFailed, e.to_string()))?;
            }
            Ok::<_, (SyncReason, String)>(report)
        }
        .await;
        st.completed_at = Some(now());
        match result {
            Ok(report) => {
                let lines = change_lines(&report.changes);
                report.fill_status(&mut st, &zone.spec.zone_name, None);
                st.changes = lines;
                st.message =
                    Some(report.message(&zone.spec.zone_name, &zone.spec.backend.server, dry_run));
            }
            Err((reason, message)) => {
                code = 1;
                st.phase = Some(SyncPhase::Failed);
                st.reason = Some(reason.to_string());
                st.message = Some(sync::failed_message(
                    &zone.spec.zone_name,
                    &zone.spec.backend.server,
                    message,
                ));
            }
        }
        let doc = serde_json::json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1",
            "kind": "ZoneSync",
            "metadata": {"name": format!("{name}-sync"), "namespace": ns},
            "spec": {"zoneRef": {"name": name}, "method": method, "dryRun": dry_run},
            "status": st,
        });
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&doc).unwrap_or_default());
    }
    (code, out)
}
