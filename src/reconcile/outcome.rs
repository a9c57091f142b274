//! Folding what a reconcile found into the DnsZone's status — conditions, phase, counters and
//! history — and the events that go with it. Pure, so the operator and `zonekeeper apply`
//! print the same status for the same pass.

use crate::api::DnsZoneStatus;
use crate::api::dns_zone::{Drift, DriftPolicy, HistoryEntry, ZonePhase};
use crate::api::shared::{ChangeStatus, ChangeType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::config::ConfigError;
use super::pass::{PassError, PassReport, Suspect};
use super::reason::{BackendReason, DnsReason, ReadyReason, SyncedReason, TransferReason};
use super::secondary::SecondaryReport;
use super::soa::rname_to_email;
use super::status::{ConditionUpdate, condition, push_history, set_condition};
use crate::dns::diff::{Change, Plan, STATUS_LINE_MAX, cap_line};
use crate::dns::update::ApplyReport;

/// What one reconcile came to.
#[derive(Debug)]
pub enum Outcome {
    /// `spec.suspend: true`.
    Suspended,
    /// An older DnsZone manages the same zone on the same server.
    Conflict { winner: String },
    /// The spec or what it references is unusable.
    Invalid(ConfigError),
    /// The backend could not be observed.
    Failed(PassError),
    /// A pass ran; `rejected_connection` says why a changed connection failed its test (the
    /// last accepted one was used instead).
    Pass {
        // Boxed: a report is far bigger than every other outcome.
        report: Box<PassReport>,
        rejected_connection: Option<String>,
    },
    /// A secondary zone was checked against its masters.
    Secondary(SecondaryReport),
}

impl Outcome {
    /// Whether the zone is left in a state that a retry (with backoff) may fix.
    pub fn needs_retry(&self) -> bool {
        match self {
            Outcome::Invalid(_) | Outcome::Failed(_) => true,
            Outcome::Pass { report, .. } => !report.in_sync() && report.guard.is_ok(),
            Outcome::Suspended | Outcome::Conflict { .. } | Outcome::Secondary(_) => false,
        }
    }

    /// The primary pass's report, when one ran.
    pub fn pass_report(&self) -> Option<&PassReport> {
        match self {
            Outcome::Pass { report, .. } => Some(report.as_ref()),
            _ => None,
        }
    }
}

/// Facts about the object the fold needs.
#[derive(Clone, Debug)]
pub struct FoldContext<'a> {
    pub zone_name: &'a str,
    pub server: &'a str,
    pub uid: Option<&'a str>,
    pub generation: Option<i64>,
    pub user_id: Option<String>,
    pub history_limit: i32,
    pub drift_policy: DriftPolicy,
    pub now: Time,
}

/// An event to publish with the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

const SAMPLE: usize = 10;

fn cond(
    type_: &'static str,
    ok: bool,
    reason: impl Into<&'static str>,
    message: impl Into<String>,
) -> ConditionUpdate<'static> {
    ConditionUpdate {
        type_,
        status: ok,
        reason: reason.into(),
        message: message.into(),
    }
}

/// Applies `outcome` to `status`; returns the events to publish. `status` is left equal to its
/// old value when nothing changed, so the caller can skip the write.
pub fn fold(status: &mut DnsZoneStatus, outcome: &Outcome, cx: &FoldContext<'_>) -> Vec<ZoneEvent> {
    let before = status.clone();
    let g = cx.generation;
    let t = &cx.now;
    let mut events = Vec::new();
    let mut set = |status: &mut DnsZoneStatus, u: ConditionUpdate<'_>| {
        set_condition(&mut status.conditions, u, g, t);
    };
    if status.id.is_none() {
        status.id = cx.uid.map(str::to_string);
    }
    let spec_unchanged = status.observed_generation == g;
    status.observed_generation = g;
    match outcome {
        Outcome::Suspended => {
            status.phase = Some(ZonePhase::Suspended);
            set(
                status,
                cond(
                    condition::READY,
                    false,
                    ReadyReason::Suspended,
                    format!(
                        "zone {} is suspended: nothing is applied and syncs are rejected",
                        cx.zone_name
                    ),
                ),
            );
        }
        Outcome::Conflict { winner } => {
            status.phase = Some(ZonePhase::Error);
            set(
                status,
                cond(
                    condition::READY,
                    false,
                    ReadyReason::ZoneConflict,
                    format!(
                        "zone {} on {} is already managed by DnsZone {winner}; this object changes nothing",
                        cx.zone_name, cx.server
                    ),
                ),
            );
        }
        Outcome::Invalid(err) => {
            status.phase = Some(ZonePhase::Error);
            let message = format!("zone {}: {err}", cx.zone_name);
            let reason = err.reason();
            if err.is_connection_problem() {
                set(
                    status,
                    cond(
                        condition::BACKEND_REACHABLE,
                        false,
                        BackendReason::from(reason),
                        message.clone(),
                    ),
                );
            }
            withdraw_synced(status, SyncedReason::from(reason), &message, &mut set);
            set(
                status,
                cond(condition::READY, false, ReadyReason::from(reason), message),
            );
        }
        Outcome::Failed(err) => {
            status.phase = Some(ZonePhase::Error);
            let message = format!("zone {} on {}: {err}", cx.zone_name, cx.server);
            let reason = err.reason();
            if reason.is_transfer_failure() {
                set(
                    status,
                    cond(
                        condition::BACKEND_REACHABLE,
                        true,
                        BackendReason::Connected,
                        format!("SOA query to {} answered", cx.server),
                    ),
                );
                set(
                    status,
                    cond(
                        condition::TRANSFER_AUTHORIZED,
                        false,
                        TransferReason::from(reason),
                        message.clone(),
                    ),
                );
            } else {
                set(
                    status,
                    cond(
                        condition::BACKEND_REACHABLE,
                        false,
                        BackendReason::from(reason),
                        message.clone(),
                    ),
                );
            }
            withdraw_synced(status, SyncedReason::from(reason), &message, &mut set);
            set(
                status,
                cond(condition::READY, false, ReadyReason::from(reason), message),
            );
        }
        Outcome::Pass {
            report,
            rejected_connection,
        } => fold_pass(
            status,
            report,
            rejected_connection.as_deref(),
            cx,
            spec_unchanged,
            &mut events,
            &mut set,
        ),
        Outcome::Secondary(report) => {
            let serial = i64::from(report.backend_serial);
            if status.serial.is_some_and(|s| s != serial) {
                status.transferred_at = Some(cx.now.clone());
            }
            status.serial = Some(serial);
            status.phase = Some(ZonePhase::Active);
            set(
                status,
                cond(
                    condition::BACKEND_REACHABLE,
                    true,
                    BackendReason::Connected,
                    format!(
                        "SOA query to {} for {} answered with serial {serial}",
                        cx.server, cx.zone_name
                    ),
                ),
            );
            let (ok, reason, message) = match (report.in_sync(), report.master_serial) {
                (_, None) => (
                    false,
                    SyncedReason::MastersUnreachable,
                    format!(
                        "zone {}: no master answered: {}",
                        cx.zone_name,
                        report.unreachable.join("; ")
                    ),
                ),
                (true, Some(m)) => (
                    true,
                    SyncedReason::InSync,
                    format!(
                        "zone {} on {} serves serial {serial}, the masters' serial is {m}",
                        cx.zone_name, cx.server
                    ),
                ),
                (false, Some(m)) => (
                    false,
                    SyncedReason::Lagging,
                    format!(
                        "zone {} on {} serves serial {serial} behind the masters' {m}; NOTIFY sent",
                        cx.zone_name, cx.server
                    ),
                ),
            };
            set(status, cond(condition::SYNCED, ok, reason, message.clone()));
            set(
                status,
                cond(condition::READY, ok, ReadyReason::from(reason), message),
            );
        }
    }
    // Events on every transition of Ready (and of its reason), with the condition's words.
    if let Some(ready) = condition(&status.conditions, condition::READY) {
        let old = condition(&before.conditions, condition::READY);
        if old.map(|c| (&c.status, &c.reason)) != Some((&ready.status, &ready.reason)) {
            events.push(ZoneEvent {
                warning: ready.status != "True",
                reason: ready.reason.clone(),
                note: ready.message.clone(),
            });
        }
    }
    if *status == before {
        return Vec::new();
    }
    events
}

/// Nothing was compared with the server: a `Synced=True` left from an earlier pass would
/// claim a match next to a failing Ready, so it turns False with the same reason. A zone
/// never compared gets no Synced condition (absent reads as unknown).
fn withdraw_synced(
    status: &mut DnsZoneStatus,
    reason: SyncedReason,
    message: &str,
    set: &mut impl FnMut(&mut DnsZoneStatus, ConditionUpdate<'_>),
) {
    if condition(&status.conditions, condition::SYNCED).is_some() {
        set(
            status,
            cond(
                condition::SYNCED,
                false,
                reason,
                format!("not compared with the server: {message}"),
            ),
        );
    }
}

/// Who a history entry credits for an apply: zonekeeper itself when every change undoes
/// drift and the spec did not change since the last pass, the requester otherwise.
pub const DRIFT_CORRECTOR: &str = "zonekeeper";

fn fold_pass(
    status: &mut DnsZoneStatus,
    report: &PassReport,
    rejected_connection: Option<&str>,
    cx: &FoldContext<'_>,
    spec_unchanged: bool,
    events: &mut Vec<ZoneEvent>,
    set: &mut impl FnMut(&mut DnsZoneStatus, ConditionUpdate<'_>),
) {
    let zone = cx.zone_name;
    match rejected_connection {
        Some(why) => set(
            status,
            cond(
                condition::BACKEND_REACHABLE,
                false,
                BackendReason::Dns(DnsReason::ConnectionFailed),
                format!(
                    "zone {zone}: the new connection failed its test, the last accepted one is kept: {why}"
                ),
            ),
        ),
        None => set(
            status,
            cond(
                condition::BACKEND_REACHABLE,
                true,
                BackendReason::Connected,
                format!(
                    "SOA query to {} for {zone} answered with serial {}",
                    cx.server, report.serial_after
                ),
            ),
        ),
    }
    set(
        status,
        cond(
            condition::TRANSFER_AUTHORIZED,
            true,
            TransferReason::TransferAllowed,
            format!("zone {zone} transferred at serial {}", report.serial_after),
        ),
    );
    status.serial = Some(i64::from(report.serial_after));
    status.record_count = i64::try_from(report.record_count).ok();
    if let Some(soa) = &report.soa {
        status.email = rname_to_email(&soa.rname);
        status.ttl = Some(i64::from(soa.ttl));
    }

    let (added, updated, deleted) = report.plan.counts();
    let drifted = report.plan.drifted.len();
    status.drift = (drifted > 0 && cx.drift_policy == DriftPolicy::Report).then(|| Drift {
        rrsets: drifted as i64,
        sample: report
            .plan
            .drifted
            .iter()
            .take(SAMPLE)
            .map(|k| format!("{} {}", k.name, k.rtype))
            .collect(),
    });

    let mut ready = (
        true,
        ReadyReason::Applied,
        format!(
            "zone {zone} on {} matches the spec at serial {}",
            cx.server, report.serial_after
        ),
    );
    if let Some(suspect) = &report.suspect {
        ready = fold_suspect(status, suspect, cx, set);
    } else if let Err(violation) = &report.guard {
        let message = format!(
            "zone {zone}: {violation}; nothing was applied (set spec.management.allowMassDeletion: true to let this pass through)"
        );
        set(
            status,
            cond(
                condition::SYNCED,
                false,
                SyncedReason::DeletionGuard,
                message.clone(),
            ),
        );
        ready = (false, SyncedReason::DeletionGuard.into(), message);
    } else if let Some(applied) = &report.applied {
        let drift_correction = spec_unchanged
            && report
                .plan
                .changes
                .iter()
                .all(|c| report.plan.drifted.contains(&c.key()));
        let mut record = landed_record(report, applied);
        if drift_correction && record.status == ChangeStatus::Complete {
            record.message = format!(
                "undid drift: restored {} managed RRset(s) changed on the server outside zonekeeper, in {} UPDATE message(s)",
                report.plan.changes.len(),
                applied.batches_total
            );
        }
        let message = record.message.clone();
        let first_apply = status.history.is_empty() && status.created_at.is_none();
        let entry = HistoryEntry {
            id: new_change_id(),
            change_type: if first_apply {
                ChangeType::Create
            } else {
                ChangeType::Update
            },
            status: record.status,
            user_id: if drift_correction {
                Some(DRIFT_CORRECTOR.to_string())
            } else {
                cx.user_id.clone()
            },
            created: cx.now.clone(),
            serial_before: Some(i64::from(report.serial_before)),
            serial_after: Some(i64::from(report.serial_after)),
            added: added as i64 + record.earlier_counts.0,
            updated: updated as i64 + record.earlier_counts.1,
            deleted: deleted as i64 + record.earlier_counts.2,
            sample: record.sample,
            zone_sync_ref: None,
            message: Some(message.clone()),
        };
        push_history(&mut status.history, entry, cx.history_limit);
        status.version += 1;
        status.updated_at = Some(cx.now.clone());
        // Set by whichever pass first sees the zone work, so the next, unchanged pass finds
        // nothing to add (an unchanged pass writes no status).
        if status.created_at.is_none() {
            status.created_at = Some(cx.now.clone());
        }
        let complete = record.status == ChangeStatus::Complete;
        events.push(ZoneEvent {
            warning: !complete,
            reason: if complete {
                ReadyReason::Applied.to_string()
            } else {
                SyncedReason::ApplyFailed.to_string()
            },
            note: format!("zone {zone} on {}: {message}", cx.server),
        });
        if complete {
            set(
                status,
                cond(
                    condition::SYNCED,
                    true,
                    SyncedReason::InSync,
                    format!("managed RRsets of {zone} match the spec"),
                ),
            );
        } else {
            let reason = match (&applied.failed, &report.recheck_error) {
                (Some((_, e)), _) => SyncedReason::Dns(DnsReason::from(e)),
                (None, Some(e)) => SyncedReason::Dns(e.reason()),
                (None, None) => SyncedReason::ApplyFailed,
            };
            set(
                status,
                cond(condition::SYNCED, false, reason, message.clone()),
            );
            ready = (
                false,
                reason.into(),
                format!("zone {zone} on {}: {message}", cx.server),
            );
        }
    } else if drifted > 0 && cx.drift_policy == DriftPolicy::Report {
        let message = format!(
            "{drifted} managed RRset(s) of {zone} differ on {} (driftPolicy Report: not corrected)",
            cx.server
        );
        set(
            status,
            cond(
                condition::SYNCED,
                false,
                SyncedReason::Drifted,
                message.clone(),
            ),
        );
        ready = (false, SyncedReason::Drifted.into(), message);
    } else {
        if status.created_at.is_none() {
            status.created_at = Some(cx.now.clone());
        }
        set(
            status,
            cond(
                condition::SYNCED,
                true,
                SyncedReason::InSync,
                format!("managed RRsets of {zone} match the spec"),
            ),
        );
    }
    if let Some(not_taken) = &report.soa_not_taken
        && ready.0
    {
        let message = format!("zone {zone} on {}: {not_taken}", cx.server);
        set(
            status,
            cond(
                condition::SYNCED,
                false,
                SyncedReason::SoaNotTaken,
                message.clone(),
            ),
        );
        ready = (false, SyncedReason::SoaNotTaken.into(), message);
    }
    if rejected_connection.is_some() && ready.0 {
        ready = (
            false,
            ReadyReason::ConnectionFailed,
            format!(
                "zone {zone}: the changed connection failed its test; the last accepted one is in use"
            ),
        );
    }
    // Drift under driftPolicy Report is reported, not an error of the zone.
    status.phase = Some(
        if ready.0 || ready.1 == ReadyReason::Synced(SyncedReason::Drifted) {
            ZonePhase::Active
        } else {
            ZonePhase::Error
        },
    );
    set(status, cond(condition::READY, ready.0, ready.1, ready.2));
}

/// The longest message a history entry or condition holds; errors can quote a server.
const MESSAGE_MAX: usize = 1024;

/// What a history entry says about an apply: its status, its sentence, the sample of lines
/// (what landed first, then what did not), and the first attempt's landed counts when the
/// pass had to re-plan.
struct LandedRecord {
    status: ChangeStatus,
    message: String,
    sample: Vec<String>,
    earlier_counts: (i64, i64, i64),
}

/// The change lines of `plan` that `applied` confirmed, and those it did not.
fn landed_lines(plan: &Plan, applied: &ApplyReport) -> (Vec<String>, Vec<String>) {
    let mut done = vec![false; plan.changes.len()];
    for range in &applied.applied_ranges {
        for i in range.clone() {
            if let Some(d) = done.get_mut(i) {
                *d = true;
            }
        }
    }
    let mut landed = Vec::new();
    let mut missing = Vec::new();
    for (change, ok) in plan.changes.iter().zip(done) {
        let into = if ok { &mut landed } else { &mut missing };
        // Only the sample is kept: more lines than that are never rendered.
        if into.len() < SAMPLE {
            into.extend(change.lines().into_iter().take(SAMPLE));
        }
    }
    (landed, missing)
}

/// Whether the plan rewrites the SOA (always its first change when it does).
fn rewrites_soa(plan: &Plan) -> bool {
    plan.changes
        .first()
        .is_some_and(|c| c.key().rtype == hickory_proto::rr::RecordType::SOA)
}

fn apply_sentence(plan: &Plan, applied: &ApplyReport) -> String {
    let total = plan.changes.len();
    match &applied.failed {
        // The SOA is named apart: it is the zone's own record, not one the spec lists.
        None if applied.is_complete() && rewrites_soa(plan) => format!(
            "applied {} RRset change(s) and the SOA's RNAME/TTL in {} UPDATE message(s)",
            total - 1,
            applied.batches_total
        ),
        None if applied.is_complete() => format!(
            "applied {total} RRset change(s) in {} UPDATE message(s)",
            applied.batches_total
        ),
        None => format!(
            "applied {} of {total} RRset change(s); the answer to {} batch(es) never came",
            applied.applied,
            applied.unknown.len()
        ),
        Some((batch, err)) if applied.unknown.is_empty() => format!(
            "applied {} of {total} RRset change(s); batch {} of {} failed: {err}",
            applied.applied,
            batch + 1,
            applied.batches_total
        ),
        // A connection lost with batches in flight: the server may have applied them, and
        // the user must not read "applied N" as "nothing more landed".
        Some((batch, err)) => format!(
            "applied {} of {total} RRset change(s); batch {} of {} failed: {err}; the answer to {} batch(es) never came, they may have landed",
            applied.applied,
            batch + 1,
            applied.batches_total,
            applied.unknown.len()
        ),
    }
}

fn landed_record(report: &PassReport, applied: &ApplyReport) -> LandedRecord {
    let mut message = apply_sentence(&report.plan, applied);
    let mut complete = applied.is_complete();
    let mut landed = Vec::new();
    let mut missing = Vec::new();
    let mut earlier_counts = (0, 0, 0);
    if let Some(first) = &report.earlier
        && let Some(first_applied) = &first.applied
    {
        let (l, _) = landed_lines(&first.plan, first_applied);
        landed.extend(l);
        earlier_counts = landed_counts(&first.plan, first_applied);
        message = format!(
            "a concurrent change stopped the first attempt ({}); re-planned: {message}",
            apply_sentence(&first.plan, first_applied)
        );
    }
    let (l, m) = landed_lines(&report.plan, applied);
    landed.extend(l);
    missing.extend(m);
    if let Some(e) = &report.recheck_error {
        complete = false;
        message = format!("{message}; reading the zone back afterwards failed: {e}");
    }
    let sample = if complete && report.earlier.is_none() {
        report.plan.sample_lines(SAMPLE)
    } else {
        // Half each when both exist: with hundreds landed, what did not land would
        // otherwise never show in the sample.
        let keep_landed = if missing.is_empty() {
            SAMPLE
        } else {
            SAMPLE / 2
        };
        landed
            .into_iter()
            .take(keep_landed)
            .chain(missing.into_iter().map(|l| format!("not applied: {l}")))
            .take(SAMPLE)
            .map(|l| cap_line(&l, STATUS_LINE_MAX))
            .collect()
    };
    LandedRecord {
        status: if complete {
            ChangeStatus::Complete
        } else {
            ChangeStatus::Failed
        },
        message: cap_line(&message, MESSAGE_MAX),
        sample,
        earlier_counts,
    }
}

/// Counts `(added, updated, deleted)` of the changes in `plan` that `applied` confirmed.
fn landed_counts(plan: &Plan, applied: &ApplyReport) -> (i64, i64, i64) {
    let mut counts = (0, 0, 0);
    for range in &applied.applied_ranges {
        for change in plan.changes.get(range.clone()).into_iter().flatten() {
            match change {
                Change::Add(_) => counts.0 += 1,
                Change::Replace { .. } => counts.1 += 1,
                Change::Delete(_) => counts.2 += 1,
            }
        }
    }
    counts
}

/// A suspect observation: nothing was sent, `Synced` and `Ready` say why, and the history
/// records it once, when the zone becomes suspect.
fn fold_suspect(
    status: &mut DnsZoneStatus,
    suspect: &Suspect,
    cx: &FoldContext<'_>,
    set: &mut impl FnMut(&mut DnsZoneStatus, ConditionUpdate<'_>),
) -> (bool, ReadyReason, String) {
    let message = cap_line(
        &format!("zone {} on {}: {suspect}", cx.zone_name, cx.server),
        MESSAGE_MAX,
    );
    let already = condition(&status.conditions, condition::SYNCED)
        .is_some_and(|c| c.reason == SyncedReason::SuspectTransfer.as_str());
    if !already {
        let entry = HistoryEntry {
            id: new_change_id(),
            change_type: ChangeType::Update,
            status: ChangeStatus::Failed,
            user_id: cx.user_id.clone(),
            created: cx.now.clone(),
            serial_before: status.serial,
            serial_after: status.serial,
            added: 0,
            updated: 0,
            deleted: 0,
            sample: Vec::new(),
            zone_sync_ref: None,
            message: Some(message.clone()),
        };
        push_history(&mut status.history, entry, cx.history_limit);
    }
    set(
        status,
        cond(
            condition::SYNCED,
            false,
            SyncedReason::SuspectTransfer,
            message.clone(),
        ),
    );
    (false, SyncedReason::SuspectTransfer.into(), message)
}

/// A fresh change id.
pub fn new_change_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_proto::rr::{Name, RecordType};
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::dns::diff::{Change, GuardViolation, Plan};
    use crate::dns::error::{DnsError, DnsErrorKind, Operation};
    use crate::dns::model::{RRset, parse_rdata};
    use crate::dns::update::ApplyReport;
    use crate::reconcile::config::ConfigError;
    use crate::reconcile::status::condition as find;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn cx(second: i64, drift_policy: DriftPolicy) -> FoldContext<'static> {
        FoldContext {
            zone_name: "example.com.",
            server: "192.0.2.1:53",
            uid: Some("uid-1"),
            generation: Some(3),
            user_id: Some("alice".into()),
            history_limit: 20,
            drift_policy,
            now: at(second),
        }
    }

    fn www() -> RRset {
        let origin = Name::from_ascii("example.com.").unwrap();
        let rdata = parse_rdata(RecordType::A, &origin, "192.0.2.80").unwrap();
        RRset::new(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
            300,
            vec![rdata],
        )
    }

    fn www_aaaa() -> RRset {
        let origin = Name::from_ascii("example.com.").unwrap();
        let rdata = parse_rdata(RecordType::AAAA, &origin, "2001:db8::80").unwrap();
        RRset::new(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::AAAA,
            300,
            vec![rdata],
        )
    }

    fn report(changes: Vec<Change>, drifted: bool) -> PassReport {
        PassReport {
            serial_before: 10,
            serial_after: 10,
            plan: Plan {
                changes,
                drifted: if drifted { vec![www().key()] } else { vec![] },
            },
            guard: Ok(()),
            applied: None,
            record_count: 5,
            transfers: Vec::new(),
            suspect: None,
            earlier: None,
            recheck_error: None,
            soa: None,
            soa_not_taken: None,
        }
    }

    fn applied(ok: bool) -> ApplyReport {
        let dns = DnsError::new(
            "192.0.2.1:53".parse().unwrap(),
            "example.com.",
            Operation::Update,
            DnsErrorKind::Refused,
        );
        ApplyReport {
            applied: usize::from(ok),
            batches_ok: usize::from(ok),
            batches_total: 1,
            applied_ranges: if ok {
                std::iter::once(0..1).collect()
            } else {
                Vec::new()
            },
            failed: (!ok).then_some((0, dns)),
            unknown: Vec::new(),
            batches_failed: if ok { vec![] } else { vec![0] },
            not_sent: 0,
            duration: Duration::ZERO,
        }
    }

    fn dns_failure(kind: DnsErrorKind) -> Outcome {
        Outcome::Failed(PassError::Dns(DnsError::new(
            "192.0.2.1:53".parse().unwrap(),
            "example.com.",
            Operation::Axfr,
            kind,
        )))
    }

    fn pass(report: PassReport) -> Outcome {
        Outcome::Pass {
            report: Box::new(report),
            rejected_connection: None,
        }
    }

    /// `(type, status, reason)` of every condition, in the order they were first set.
    fn conditions(status: &DnsZoneStatus) -> Vec<(String, String, String)> {
        status
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    fn events(list: &[ZoneEvent]) -> Vec<(bool, &str)> {
        list.iter()
            .map(|e| (e.warning, e.reason.as_str()))
            .collect()
    }

    #[test]
    fn each_outcome_folds_into_its_conditions_phase_and_events() {
        /// `(type, status, reason)` of the conditions expected.
        type Conds = &'static [(&'static str, &'static str, &'static str)];
        /// `(warning, reason)` of the events expected.
        type Events = &'static [(bool, &'static str)];
        type Case = (&'static str, Outcome, DriftPolicy, ZonePhase, Conds, Events);
        let drifted_policy = DriftPolicy::Report;
        let cases: Vec<Case> = vec![
            (
                "suspended",
                Outcome::Suspended,
                DriftPolicy::Correct,
                ZonePhase::Suspended,
                &[("Ready", "False", "Suspended")],
                &[(true, "Suspended")],
            ),
            (
                "conflict",
                Outcome::Conflict {
                    winner: "ns/older".into(),
                },
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[("Ready", "False", "ZoneConflict")],
                &[(true, "ZoneConflict")],
            ),
            (
                "missing Secret: the connection is what fails",
                Outcome::Invalid(ConfigError::SecretNotFound {
                    name: "tsig".into(),
                }),
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[
                    ("BackendReachable", "False", "SecretNotFound"),
                    ("Ready", "False", "SecretNotFound"),
                ],
                &[(true, "SecretNotFound")],
            ),
            (
                "missing ConfigMap: the records are what fails",
                Outcome::Invalid(ConfigError::ConfigMapNotFound {
                    name: "part".into(),
                    key: "zone".into(),
                }),
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[("Ready", "False", "ConfigMapNotFound")],
                &[(true, "ConfigMapNotFound")],
            ),
            (
                "timeout",
                dns_failure(DnsErrorKind::Timeout(Duration::from_secs(5))),
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[
                    ("BackendReachable", "False", "Timeout"),
                    ("Ready", "False", "Timeout"),
                ],
                &[(true, "Timeout")],
            ),
            (
                "transfer refused: reachable, not authorized",
                dns_failure(DnsErrorKind::TransferRefused("REFUSED".into())),
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("TransferAuthorized", "False", "TransferRefused"),
                    ("Ready", "False", "TransferRefused"),
                ],
                &[(true, "TransferRefused")],
            ),
            (
                "unresolvable server",
                Outcome::Failed(PassError::Resolve {
                    server: "dns.invalid:53".into(),
                    detail: "no address".into(),
                }),
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[
                    ("BackendReachable", "False", "ConnectionFailed"),
                    ("Ready", "False", "ConnectionFailed"),
                ],
                &[(true, "ConnectionFailed")],
            ),
            (
                "nothing to do",
                pass(report(vec![], false)),
                DriftPolicy::Correct,
                ZonePhase::Active,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("TransferAuthorized", "True", "TransferAllowed"),
                    ("Synced", "True", "InSync"),
                    ("Ready", "True", "Applied"),
                ],
                &[(false, "Applied")],
            ),
            (
                "applied",
                pass(PassReport {
                    applied: Some(applied(true)),
                    ..report(vec![Change::Add(www())], false)
                }),
                DriftPolicy::Correct,
                ZonePhase::Active,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("TransferAuthorized", "True", "TransferAllowed"),
                    ("Synced", "True", "InSync"),
                    ("Ready", "True", "Applied"),
                ],
                &[(false, "Applied"), (false, "Applied")],
            ),
            (
                "an UPDATE refused",
                pass(PassReport {
                    applied: Some(applied(false)),
                    ..report(vec![Change::Add(www())], false)
                }),
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("TransferAuthorized", "True", "TransferAllowed"),
                    ("Synced", "False", "Refused"),
                    ("Ready", "False", "Refused"),
                ],
                &[(true, "ApplyFailed"), (true, "Refused")],
            ),
            (
                "deletion guard",
                pass(PassReport {
                    guard: Err(GuardViolation {
                        deletes: 20,
                        zone_records: 21,
                        limit: "maxDeletes 5".into(),
                    }),
                    ..report(vec![Change::Delete(www())], false)
                }),
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("TransferAuthorized", "True", "TransferAllowed"),
                    ("Synced", "False", "DeletionGuard"),
                    ("Ready", "False", "DeletionGuard"),
                ],
                &[(true, "DeletionGuard")],
            ),
            (
                "drift reported, not corrected: not an error of the zone",
                pass(report(vec![], true)),
                drifted_policy,
                ZonePhase::Active,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("TransferAuthorized", "True", "TransferAllowed"),
                    ("Synced", "False", "Drifted"),
                    ("Ready", "False", "Drifted"),
                ],
                &[(true, "Drifted")],
            ),
            (
                "a changed connection failed its test",
                Outcome::Pass {
                    report: Box::new(report(vec![], false)),
                    rejected_connection: Some("timed out (192.0.2.9:53)".into()),
                },
                DriftPolicy::Correct,
                ZonePhase::Error,
                &[
                    ("BackendReachable", "False", "ConnectionFailed"),
                    ("TransferAuthorized", "True", "TransferAllowed"),
                    ("Synced", "True", "InSync"),
                    ("Ready", "False", "ConnectionFailed"),
                ],
                &[(true, "ConnectionFailed")],
            ),
            (
                "secondary in sync",
                Outcome::Secondary(SecondaryReport {
                    backend_serial: 7,
                    master_serial: Some(7),
                    unreachable: vec![],
                    notified: false,
                }),
                DriftPolicy::Correct,
                ZonePhase::Active,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("Synced", "True", "InSync"),
                    ("Ready", "True", "InSync"),
                ],
                &[(false, "InSync")],
            ),
            (
                "secondary lagging",
                Outcome::Secondary(SecondaryReport {
                    backend_serial: 7,
                    master_serial: Some(8),
                    unreachable: vec![],
                    notified: true,
                }),
                DriftPolicy::Correct,
                ZonePhase::Active,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("Synced", "False", "Lagging"),
                    ("Ready", "False", "Lagging"),
                ],
                &[(true, "Lagging")],
            ),
            (
                "secondary without masters",
                Outcome::Secondary(SecondaryReport {
                    backend_serial: 7,
                    master_serial: None,
                    unreachable: vec!["192.0.2.5:53: timed out".into()],
                    notified: false,
                }),
                DriftPolicy::Correct,
                ZonePhase::Active,
                &[
                    ("BackendReachable", "True", "Connected"),
                    ("Synced", "False", "MastersUnreachable"),
                    ("Ready", "False", "MastersUnreachable"),
                ],
                &[(true, "MastersUnreachable")],
            ),
        ];
        for (case, outcome, policy, phase, want_conditions, want_events) in cases {
            let mut status = DnsZoneStatus::default();
            let got = fold(&mut status, &outcome, &cx(100, policy));
            assert_eq!(status.phase, Some(phase), "{case}");
            let want: Vec<(String, String, String)> = want_conditions
                .iter()
                .map(|(t, s, r)| (t.to_string(), s.to_string(), r.to_string()))
                .collect();
            assert_eq!(conditions(&status), want, "{case}");
            assert_eq!(events(&got), want_events, "{case}");
            assert!(
                status
                    .conditions
                    .iter()
                    .all(|c| c.last_transition_time == at(100) && c.observed_generation == Some(3)),
                "{case}"
            );
            assert_eq!(status.id.as_deref(), Some("uid-1"), "{case}");
            // The same outcome again changes nothing and says nothing (an apply is a new
            // change each time: that is the history test's).
            if !matches!(&outcome, Outcome::Pass { report, .. } if report.applied.is_some()) {
                let before = status.clone();
                let again = fold(&mut status, &outcome, &cx(200, policy));
                assert!(again.is_empty(), "{case}: {again:?}");
                assert_eq!(status, before, "{case}");
            }
        }
    }

    #[test]
    fn the_transition_time_moves_only_when_ready_flips() {
        let mut status = DnsZoneStatus::default();
        let ok = pass(report(vec![], false));
        fold(&mut status, &ok, &cx(100, DriftPolicy::Correct));
        assert_eq!(status.created_at, Some(at(100)));

        let timeout = dns_failure(DnsErrorKind::Timeout(Duration::from_secs(5)));
        let got = fold(&mut status, &timeout, &cx(200, DriftPolicy::Correct));
        assert_eq!(events(&got), [(true, "Timeout")]);
        let ready = find(&status.conditions, condition::READY).unwrap();
        assert_eq!(ready.last_transition_time, at(200));
        let transfer = find(&status.conditions, condition::TRANSFER_AUTHORIZED).unwrap();
        assert_eq!(
            (transfer.status.as_str(), &transfer.last_transition_time),
            ("True", &at(100)),
            "a condition the failure says nothing about is left as it was"
        );

        // Still failing, for another reason: an event, but no transition.
        let unresolvable = Outcome::Failed(PassError::Resolve {
            server: "dns.invalid:53".into(),
            detail: "no address".into(),
        });
        let got = fold(&mut status, &unresolvable, &cx(300, DriftPolicy::Correct));
        assert_eq!(events(&got), [(true, "ConnectionFailed")]);
        let ready = find(&status.conditions, condition::READY).unwrap();
        assert_eq!(ready.reason, "ConnectionFailed");
        assert_eq!(ready.last_transition_time, at(200));

        let got = fold(&mut status, &ok, &cx(400, DriftPolicy::Correct));
        assert_eq!(events(&got), [(false, "Applied")]);
        let ready = find(&status.conditions, condition::READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.clone()),
            ("True", at(400))
        );
        assert_eq!(status.created_at, Some(at(100)), "created once");
    }

    #[test]
    fn an_apply_is_recorded_in_history_with_who_and_what() {
        let mut status = DnsZoneStatus::default();
        let first = pass(PassReport {
            serial_after: 11,
            applied: Some(applied(true)),
            ..report(vec![Change::Add(www())], false)
        });
        fold(&mut status, &first, &cx(100, DriftPolicy::Correct));
        fold(&mut status, &first, &cx(200, DriftPolicy::Correct));
        let failed = pass(PassReport {
            applied: Some(applied(false)),
            ..report(vec![Change::Add(www())], false)
        });
        fold(&mut status, &failed, &cx(300, DriftPolicy::Correct));

        let summary: Vec<(ChangeType, ChangeStatus, i64, Option<&str>)> = status
            .history
            .iter()
            .map(|h| (h.change_type, h.status, h.added, h.user_id.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (ChangeType::Update, ChangeStatus::Failed, 1, Some("alice")),
                (ChangeType::Update, ChangeStatus::Complete, 1, Some("alice")),
                (ChangeType::Create, ChangeStatus::Complete, 1, Some("alice")),
            ],
            "newest first; only the very first apply is a Create"
        );
        assert_eq!(status.history[2].serial_after, Some(11));
        assert_eq!(
            status.history[2].sample,
            ["+ www.example.com. 300 IN A 192.0.2.80"]
        );
        assert_eq!(status.version, 3);
        assert_eq!(status.created_at, Some(at(100)));
        assert_eq!(status.updated_at, Some(at(300)));
    }

    #[test]
    fn a_correction_of_drift_alone_is_credited_to_zonekeeper() {
        let correction = || {
            pass(PassReport {
                applied: Some(applied(true)),
                ..report(vec![Change::Add(www())], true)
            })
        };
        // The first pass of a generation may carry a spec change: the requester's.
        let mut status = DnsZoneStatus::default();
        fold(&mut status, &correction(), &cx(100, DriftPolicy::Correct));
        assert_eq!(status.history[0].user_id.as_deref(), Some("alice"));
        // The same generation again: only drift is undone, by zonekeeper, and said so.
        fold(&mut status, &correction(), &cx(200, DriftPolicy::Correct));
        let entry = &status.history[0];
        assert_eq!(entry.user_id.as_deref(), Some(DRIFT_CORRECTOR));
        let message = entry.message.as_deref().unwrap_or_default();
        assert!(message.contains("undid drift"), "{message}");
        // A change that is not a drift correction stays the requester's.
        let mixed = pass(PassReport {
            applied: Some(applied(true)),
            ..report(vec![Change::Add(www()), Change::Delete(www_aaaa())], true)
        });
        fold(&mut status, &mixed, &cx(300, DriftPolicy::Correct));
        assert_eq!(status.history[0].user_id.as_deref(), Some("alice"));
    }

    #[test]
    fn synced_does_not_claim_a_match_when_nothing_was_compared() {
        let mut status = DnsZoneStatus::default();
        fold(
            &mut status,
            &pass(report(vec![], false)),
            &cx(100, DriftPolicy::Correct),
        );
        let synced = find(&status.conditions, "Synced").unwrap();
        assert_eq!(synced.status, "True");
        let invalid = Outcome::Invalid(ConfigError::InvalidRecords(Vec::new()));
        fold(&mut status, &invalid, &cx(200, DriftPolicy::Correct));
        let synced = find(&status.conditions, "Synced").unwrap();
        let ready = find(&status.conditions, "Ready").unwrap();
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "InvalidRecords")
        );
        assert!(
            synced.message.contains("not compared"),
            "{}",
            synced.message
        );
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidRecords")
        );
        // The same for a backend that cannot be observed.
        fold(
            &mut status,
            &pass(report(vec![], false)),
            &cx(300, DriftPolicy::Correct),
        );
        fold(
            &mut status,
            &dns_failure(DnsErrorKind::Timeout(Duration::from_secs(5))),
            &cx(400, DriftPolicy::Correct),
        );
        let synced = find(&status.conditions, "Synced").unwrap();
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "Timeout")
        );
    }

    #[test]
    fn needs_retry_only_for_what_a_retry_can_fix() {
        assert!(dns_failure(DnsErrorKind::Refused).needs_retry());
        assert!(Outcome::Invalid(ConfigError::SecretNotFound { name: "s".into() }).needs_retry());
        assert!(!pass(report(vec![], false)).needs_retry());
        let refused_update = pass(PassReport {
            applied: Some(applied(false)),
            ..report(vec![Change::Add(www())], false)
        });
        assert!(refused_update.needs_retry());
        let guarded = pass(PassReport {
            guard: Err(GuardViolation {
                deletes: 20,
                zone_records: 21,
                limit: "maxDeletes 5".into(),
            }),
            ..report(vec![Change::Delete(www())], false)
        });
        assert!(!guarded.needs_retry(), "the guard waits for a spec change");
        assert!(!Outcome::Suspended.needs_retry());
    }

    fn txt_10k(i: usize) -> RRset {
        let origin = Name::from_ascii("example.com.").unwrap();
        // 40 strings of 250 bytes: 10 KB of TXT data, as a DKIM-heavy zone holds.
        let data: String = (0..40)
            .map(|j| format!("\"{}\" ", format!("{i:04}{j:02}").repeat(42)))
            .collect();
        let rdata = parse_rdata(RecordType::TXT, &origin, &data).unwrap();
        RRset::new(
            Name::from_ascii(format!("t{i}.example.com.")).unwrap(),
            RecordType::TXT,
            300,
            vec![rdata],
        )
    }

    #[test]
    fn status_stays_under_256_kib_with_10_kb_txt_records_and_a_long_history() {
        let mut status = DnsZoneStatus::default();
        let mut cx = cx(100, DriftPolicy::Correct);
        cx.history_limit = 1000;
        for round in 0..200 {
            let changes: Vec<Change> = (0..20)
                .map(|i| Change::Add(txt_10k(round * 20 + i)))
                .collect();
            let n = changes.len();
            let done = PassReport {
                applied: Some(ApplyReport {
                    applied: n,
                    batches_ok: 1,
                    batches_total: 1,
                    applied_ranges: std::iter::once(0..n).collect(),
                    ..applied(true)
                }),
                ..report(changes, false)
            };
            fold(&mut status, &pass(done), &cx);
        }
        let bytes = serde_json::to_vec(&status).unwrap().len();
        assert!(bytes < 256 * 1024, "status is {bytes} bytes");
        assert!(
            status.history.len() > 10,
            "{} entries kept",
            status.history.len()
        );
        for entry in &status.history {
            assert_eq!(entry.sample.len(), SAMPLE);
            for line in &entry.sample {
                assert!(
                    line.chars().count() <= 256,
                    "{} characters",
                    line.chars().count()
                );
                assert!(line.contains("…(+"), "the cut is marked: {line}");
            }
        }
    }

    #[test]
    fn a_re_planned_pass_keeps_what_its_first_attempt_landed() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let other = RRset::new(
            Name::from_ascii("api.example.com.").unwrap(),
            RecordType::A,
            300,
            vec![parse_rdata(RecordType::A, &origin, "192.0.2.81").unwrap()],
        );
        let conflict = DnsError::new(
            "192.0.2.1:53".parse().unwrap(),
            "example.com.",
            Operation::Update,
            DnsErrorKind::PrerequisiteFailed("www.example.com. A changed".into()),
        );
        let first = PassReport {
            applied: Some(ApplyReport {
                applied: 1,
                batches_ok: 1,
                batches_total: 2,
                applied_ranges: std::iter::once(0..1).collect(),
                failed: Some((1, conflict)),
                batches_failed: vec![1],
                ..applied(true)
            }),
            ..report(vec![Change::Add(other.clone()), Change::Add(www())], false)
        };
        let second = PassReport {
            applied: Some(applied(true)),
            earlier: Some(Box::new(first)),
            ..report(vec![Change::Add(www())], false)
        };
        let mut status = DnsZoneStatus::default();
        fold(&mut status, &pass(second), &cx(100, DriftPolicy::Correct));
        let entry = &status.history[0];
        assert_eq!(entry.added, 2, "both attempts' landed changes are counted");
        assert_eq!(
            entry.sample,
            [
                "+ api.example.com. 300 IN A 192.0.2.81",
                "+ www.example.com. 300 IN A 192.0.2.80"
            ]
        );
        assert!(
            entry
                .message
                .as_deref()
                .is_some_and(|m| m.contains("first attempt (applied 1 of 2")),
            "{:?}",
            entry.message
        );
    }
}
