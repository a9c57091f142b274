//! `zonekeeper plan`, `apply`, `sync` and `import`: the operator's reconcile and sync run
//! against manifest files instead of a cluster, with state kept in `--state-dir`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use serde::Serialize;

use super::manifests::Manifests;
use super::progress::Working;
use super::state::ZoneDir;
use crate::api::DnsZone;
use crate::api::dns_zone::ZoneType;
use crate::api::shared::ChangeType;
use crate::api::zone_sync::{SyncMethod, SyncPhase, ZoneSyncStatus};
use crate::dns::diff::{Change, change_lines};
use crate::reconcile::config::{self, Lookup};
use crate::reconcile::outcome::{FoldContext, Outcome, fold, new_change_id};
use crate::reconcile::pass::{self, Mode, PassReport, ZoneState};
use crate::reconcile::status::{condition, is_true, now};
use crate::reconcile::sync;

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
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
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

async fn load_state(dir: &ZoneDir, origin: &Name) -> Result<ZoneState, String> {
    Ok(ZoneState {
        owned: dir.load_owned().map_err(|e| e.to_string())?,
        snapshot: dir.load_snapshot(origin).await.map_err(|e| e.to_string())?,
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
        if zone.spec.zone_type == ZoneType::Secondary || zone.spec.suspend {
            plans.push(p);
            continue;
        }
        let lookup = ManifestLookup {
            manifests,
            namespace: ns.clone(),
        };
        let result = async {
            let cfg = config::resolve(&zone.spec, &lookup).map_err(|e| e.to_string())?;
            let dir = ZoneDir::new(state_dir, &ns, &name);
            let mut state = load_state(&dir, &cfg.origin).await?;
            pass::run(&cfg, &mut state, Mode::Plan)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(report) => {
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
            Err(e) => {
                p.error = Some(e);
                code = 1;
            }
        }
        plans.push(p);
    }
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&plans).unwrap_or_default() + "\n",
        Output::Text => render_plans(&plans),
    };
    (code, text)
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
            let _ = writeln!(
                out,
                "  {} to add, {} to change, {} to delete ({} records deleted); deletion guard: {}",
                p.added, p.updated, p.deleted, p.deleted_records, p.guard
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
            rejected_connection: None,
            now: now(),
        };
        let lookup = ManifestLookup {
            manifests,
            namespace: ns.clone(),
        };
        if zone.spec.suspend {
            fold(&mut status, &Outcome::Suspended, &cx);
        } else {
            match config::resolve(&zone.spec, &lookup) {
                Err(e) => {
                    fold(&mut status, &Outcome::Invalid(&e), &cx);
                }
                Ok(cfg) if cfg.zone_type == ZoneType::Secondary => {
                    match crate::reconcile::secondary::observe(&cfg).await {
                        Ok(r) => fold(&mut status, &Outcome::Secondary(&r), &cx),
                        Err(e) => fold(&mut status, &Outcome::Failed(&e), &cx),
                    };
                }
                Ok(cfg) => {
                    let mut state = match load_state(&dir, &cfg.origin).await {
                        Ok(s) => s,
                        Err(e) => return (1, format!("error: {e}\n")),
                    };
                    let working = Working::start(format!("applying {}", cfg.origin));
                    let result = pass::run(&cfg, &mut state, Mode::Apply).await;
                    drop(working);
                    match result {
                        Ok(report) => {
                            fold(&mut status, &Outcome::Pass(&report), &cx);
                            if let Err(e) = save_state(&dir, &state, &report).await {
                                return (1, format!("error: {e}\n"));
                            }
                        }
                        Err(e) => {
                            fold(&mut status, &Outcome::Failed(&e), &cx);
                        }
                    }
                }
            }
        }
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

async fn save_state(dir: &ZoneDir, state: &ZoneState, _report: &PassReport) -> Result<(), String> {
    dir.save_owned(&state.owned).map_err(|e| e.to_string())?;
    if let Some(snapshot) = &state.snapshot {
        dir.save_snapshot(snapshot)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `zonekeeper sync`: a ZoneSync without a cluster; prints its status as YAML.
pub async fn sync_zones(
    paths: &[PathBuf],
    state_dir: &Path,
    only: Option<&str>,
    method: SyncMethod,
    dry_run: bool,
) -> (i32, String) {
    match Manifests::load(paths) {
        Ok(m) => sync_manifests(&m, state_dir, only, method, dry_run).await,
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
            let cfg = config::resolve(&zone.spec, &lookup)
                .map_err(|e| (e.reason().to_string(), e.to_string()))?;
            let previous = dir
                .load_snapshot(&cfg.origin)
                .await
                .map_err(|e| ("SnapshotUnreadable".to_string(), e.to_string()))?;
            let working = Working::start(format!("syncing {}", cfg.origin));
            let report = sync::sync(&cfg.transfer, &cfg.origin, previous.as_ref(), method).await;
            drop(working);
            let report = report.map_err(|e| (e.reason().to_string(), e.to_string()))?;
            if !dry_run {
                dir.save_snapshot(&report.snapshot)
                    .await
                    .map_err(|e| ("SnapshotWriteFailed".to_string(), e.to_string()))?;
            }
            Ok::<_, (String, String)>(report)
        }
        .await;
        st.completed_at = Some(now());
        match result {
            Ok(report) => {
                let lines = change_lines(&report.changes);
                report.fill_status(&mut st, &zone.spec.zone_name, None);
                st.changes = lines;
                st.message = Some(format!(
                    "zone {} synced at serial {}{}",
                    zone.spec.zone_name,
                    report.serial_after,
                    if dry_run {
                        " (dry run: nothing stored)"
                    } else {
                        ""
                    }
                ));
            }
            Err((reason, message)) => {
                code = 1;
                st.phase = Some(SyncPhase::Failed);
                st.reason = Some(reason);
                st.message = Some(format!("{message}; the stored snapshot is unchanged"));
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
