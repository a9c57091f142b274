//! `zonekeeper plan`, `apply`, `sync` and `import`: the operator's reconcile and sync run
//! against manifest files instead of a cluster, with state kept in `--state-dir`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use serde::Serialize;

use super::manifests::Manifests;
use super::progress::Working;
use super::state::{StateError, ZoneDir};
use crate::api::DnsZone;
use crate::api::dns_zone::ZoneType;
use crate::api::shared::ChangeType;
use crate::api::zone_sync::{SyncMethod, SyncPhase, ZoneSyncStatus};
use crate::dns::diff::{Change, change_lines};
use crate::dns::transfer::BoundsOverride;
use crate::reconcile::config::{self, Lookup, ZoneConfig};
use crate::reconcile::outcome::{FoldContext, Outcome, fold, new_change_id};
use crate::reconcile::pass::{Mode, PassError, ZoneState};
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
    /// The stored state being read for this origin while the zone's records are resolved.
    prefetch: Option<(Name, tokio::task::JoinHandle<Result<ZoneState, StateError>>)>,
}

impl<'a> StateDirHost<'a> {
    /// A host for one zone object; the stored state of `zone_name` starts loading at once, on
    /// another worker: it and the resolve of the manifest's records are independent, and each
    /// is a third of a big zone's plan.
    fn new(
        manifests: &'a Manifests,
        state_dir: &Path,
        namespace: &str,
        name: &str,
        zone_name: &str,
    ) -> Self {
        let prefetch = Name::from_ascii(zone_name).ok().map(|origin| {
            let dir = ZoneDir::new(state_dir, namespace, name);
            let task_origin = origin.clone();
            let task = tokio::spawn(async move { load_state(&dir, &task_origin).await });
            (origin, task)
        });
        Self {
            manifests,
            namespace: namespace.to_string(),
            dir: ZoneDir::new(state_dir, namespace, name),
            state: None,
            prefetch,
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
        _cfg: &mut ZoneConfig,
    ) -> Result<Option<String>, PassError> {
        Ok(None)
    }

    async fn state(&mut self, origin: &Name) -> Result<&mut ZoneState, StateError> {
        let prefetched = match self.prefetch.take() {
            Some((name, task)) if name == *origin => task.await.ok(),
            Some((_, task)) => {
                task.abort();
                None
            }
            None => None,
        };
        let state = match (self.state.take(), prefetched) {
            (Some(state), _) => state,
            (None, Some(loaded)) => loaded?,
            // No prefetch, or its task panicked: read it here.
            (None, None) => load_state(&self.dir, origin).await?,
        };
        Ok(self.state.insert(state))
    }
}

/// A zone's stored state: ownership, snapshot and SOA memory.
async fn load_state(dir: &ZoneDir, origin: &Name) -> Result<ZoneState, StateError> {
    Ok(ZoneState {
        owned: dir.load_owned()?,
        snapshot: dir.load_snapshot(origin).await?.map(std::sync::Arc::new),
        soa: dir.load_soa()?,
    })
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

/// `zonekeeper plan`: exit code 0 no changes, 2 changes pending, 1 error.
pub async fn plan(paths: &[PathBuf], state_dir: &Path, output: Output) -> (i32, String) {
    match Manifests::load(paths) {
        Ok(m) => plan_manifests(&m, state_dir, output).await,
        Err(e) => (1, format!("error: {e}\n")),
    }
}

/// `plan` over manifests already loaded (the demo builds them in memory).
pub async fn plan_manifests(
    manifests: &Manifests,
    state_dir: &Path,
    output: Output,
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
        let mut host = StateDirHost::new(manifests, state_dir, &ns, &name, &zone.spec.zone_name);
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
    match Manifests::load(paths) {
        Ok(m) => apply_manifests(&m, state_dir).await,
        Err(e) => (1, format!("error: {e}\n")),
    }
}

/// `apply` over manifests already loaded.
pub async fn apply_manifests(manifests: &Manifests, state_dir: &Path) -> (i32, String) {
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
        let mut host = StateDirHost::new(manifests, state_dir, &ns, &name, &zone.spec.zone_name);
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
