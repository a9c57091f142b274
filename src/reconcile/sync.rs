//! One sync (VinylDNS Sync Zone): transfer the zone from its backend — IXFR from the stored snapshot's
//! serial when there is one, AXFR otherwise — and compute the change against that snapshot.
//! The backend is the source of truth: the new snapshot is exactly what it served.

use std::collections::BTreeSet;

use hickory_proto::rr::{Name, RecordType};

use super::config::Endpoint;
use super::pass::{
    PassError, Suspect, axfr_zone_diff, content_rrsets, resolve_server, transfer_options,
};
use super::reason::SyncReason;
use crate::api::dns_zone::ZonePhase;
use crate::api::zone_sync::{
    SyncMethod, SyncPhase, SyncSummary, SyncedZone, TransferFigures, ZoneSyncStatus,
};
use crate::dns::diff::{self, Change, Guard, StreamDiff};
use crate::dns::model::{RRsetKey, Zone};
use crate::dns::transfer::{self, IxfrOutcome, IxfrStep, TransferStats, retire};

/// Counts of a sync's change, in RRsets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub total: usize,
}

/// What a sync found.
#[derive(Debug)]
pub struct SyncReport {
    /// The serial of the previous snapshot.
    pub serial_before: Option<u32>,
    /// The serial the backend served.
    pub serial_after: u32,
    /// The transfer that ran.
    pub transfer: TransferStats,
    /// Whether the transfer was incremental.
    pub incremental: bool,
    /// Every RRset that changed, in canonical order.
    pub changes: Vec<Change>,
    pub summary: Summary,
    /// The zone as the backend serves it now.
    pub snapshot: Zone,
}

impl SyncReport {
    /// Records a completed sync in a ZoneSync status: phase, zone serials, transfer figures,
    /// summary counts. The change lines and message are the caller's (their cap differs).
    pub fn fill_status(
        &self,
        st: &mut ZoneSyncStatus,
        zone_name: &str,
        zone_phase: Option<ZonePhase>,
    ) {
        st.phase = Some(SyncPhase::Complete);
        st.reason = None;
        st.zone = Some(SyncedZone {
            name: zone_name.to_string(),
            status: zone_phase,
            serial_before: self.serial_before.map(i64::from),
            serial_after: Some(i64::from(self.serial_after)),
        });
        st.transfer = Some(TransferFigures {
            method: self.transfer.method.query_type().into(),
            messages: i64::try_from(self.transfer.messages).unwrap_or(i64::MAX),
            bytes: i64::try_from(self.transfer.bytes).unwrap_or(i64::MAX),
            duration_ms: i64::try_from(self.transfer.duration.as_millis()).unwrap_or(i64::MAX),
        });
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        st.summary = Some(SyncSummary {
            added: count(self.summary.added),
            updated: count(self.summary.updated),
            deleted: count(self.summary.deleted),
            unchanged: count(self.summary.unchanged),
            total: count(self.summary.total),
        });
    }
}

impl SyncReport {
    /// The sentence a finished sync is reported with: in the ZoneSync's status, its event and
    /// the zone's history, and by `zonekeeper sync`.
    pub fn message(&self, zone_name: &str, server: &str, dry_run: bool) -> String {
        format!(
            "zone {zone_name} synced from {server} by {} at serial {}: {} added, {} updated, {} deleted{}",
            self.transfer.method.query_type(),
            self.serial_after,
            self.summary.added,
            self.summary.updated,
            self.summary.deleted,
            if dry_run {
                " (dry run: nothing stored)"
            } else {
                ""
            }
        )
    }
}

/// The sentence a failed sync is reported with.
pub fn failed_message(zone_name: &str, server: &str, detail: impl std::fmt::Display) -> String {
    format!("zone {zone_name} on {server}: {detail}; the stored snapshot is unchanged")
}

/// The change between two snapshots restricted to `keys` (in canonical order, SOA excluded):
/// what [`diff::zone_diff`] finds when nothing else differs.
fn touched_diff(old: &Zone, new: &Zone, keys: &BTreeSet<RRsetKey>) -> Vec<Change> {
    keys.iter()
        .filter(|k| k.rtype != RecordType::SOA)
        .filter_map(|k| match (old.get(k), new.get(k)) {
            (None, Some(n)) => Some(Change::Add(n.clone())),
            (Some(o), None) => Some(Change::Delete(o.clone())),
            (Some(o), Some(n)) if o != n => Some(Change::Replace {
                old: o.clone(),
                new: n.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Counts the change between two snapshots.
pub fn summarize(changes: &[Change], after: &Zone) -> Summary {
    let mut s = Summary {
        total: after.rrset_count(),
        ..Summary::default()
    };
    for c in changes {
        match c {
            Change::Add(_) => s.added += 1,
            Change::Replace { .. } => s.updated += 1,
            Change::Delete(_) => s.deleted += 1,
        }
    }
    s.unchanged = s.total.saturating_sub(s.added + s.updated);
    s
}

/// Brings a zone forward by IXFR steps, oldest first: deletions, additions, then the step's
/// SOA, so the result carries the new serial exactly as an AXFR would.
pub fn apply_ixfr(zone: &mut Zone, steps: Vec<IxfrStep>) {
    for step in steps {
        for r in &step.deleted {
            zone.remove(r);
        }
        for r in step.added {
            zone.insert(r);
        }
        if let Some(soa) = step.soa {
            zone.remove_rrset(&RRsetKey::new(soa.name(), soa.record_type()));
            zone.insert(soa);
        }
    }
}

/// Transfers and diffs. `previous` is left untouched: the caller stores the new snapshot
/// only when it wants to (never on a dry run, never after a failure).
pub async fn sync(
    transfer_endpoint: &Endpoint,
    origin: &Name,
    previous: Option<&Zone>,
    method: SyncMethod,
) -> Result<SyncReport, PassError> {
    sync_owned(transfer_endpoint, origin, previous.cloned(), method)
        .await
        .map_err(|(e, _)| e)
}

/// [`sync`] taking the previous snapshot by value, so a big zone brought forward by IXFR is
/// changed in place instead of copied. On failure the previous snapshot is handed back.
pub async fn sync_owned(
    transfer_endpoint: &Endpoint,
    origin: &Name,
    previous: Option<Zone>,
    method: SyncMethod,
) -> Result<SyncReport, (PassError, Option<Zone>)> {
    let expected = previous.as_ref().map_or(0, |z| z.record_count() as u64);
    let opts = transfer_options(transfer_endpoint, expected);
    let serial_before = previous.as_ref().and_then(Zone::soa_serial);
    let report = |changes: Vec<Change>, snapshot: Zone, transfer: TransferStats, incremental| {
        let summary = summarize(&changes, &snapshot);
        SyncReport {
            serial_before,
            serial_after: transfer.serial,
            transfer,
            incremental,
            changes,
            summary,
            snapshot,
        }
    };
    match (previous, serial_before, method) {
        (Some(mut prev), Some(from), SyncMethod::Auto) => {
            let addr = match resolve_server(&transfer_endpoint.server).await {
                Ok(a) => a,
                Err(e) => return Err((e, Some(prev))),
            };
            // A server without the history answers with the whole zone: diffed as it comes.
            let mut full = StreamDiff::new(&prev);
            let ixfr = transfer::ixfr(addr, origin, from, &opts, &mut |record| {
                full.push(record);
                Ok(())
            })
            .await;
            let (outcome, stats) = match ixfr {
                Ok(x) => x,
                Err(e) => {
                    drop(full);
                    return Err((e.into(), Some(prev)));
                }
            };
            match outcome {
                IxfrOutcome::UpToDate => {
                    drop(full);
                    Ok(report(Vec::new(), prev, stats, true))
                }
                IxfrOutcome::Incremental(steps) => {
                    drop(full);
                    // Only the RRsets the steps touch can differ: keep those as they were,
                    // change the zone in place, and diff just them.
                    let touched: BTreeSet<RRsetKey> = steps
                        .iter()
                        .flat_map(|st| st.deleted.iter().chain(&st.added))
                        .map(|r| RRsetKey::new(r.name(), r.record_type()))
                        .collect();
                    let before = Zone::from_rrsets(
                        origin.clone(),
                        touched.iter().filter_map(|k| prev.get(k)),
                    );
                    apply_ixfr(&mut prev, steps);
                    let changes = touched_diff(&before, &prev, &touched);
                    Ok(report(changes, prev, stats, true))
                }
                IxfrOutcome::Full => {
                    let (full, changes) = full.finish();
                    retire(prev);
                    Ok(report(changes, full, stats, false))
                }
            }
        }
        (previous, _, _) => {
            let empty = Zone::new(origin.clone());
            let old = previous.as_ref().unwrap_or(&empty);
            match axfr_zone_diff(transfer_endpoint, old).await {
                Ok((zone, changes, stats)) => {
                    if let Some(previous) = previous {
                        retire(previous);
                    }
                    Ok(report(changes, zone, stats, false))
                }
                Err(e) => Err((e, previous)),
            }
        }
    }
}

/// Why a sync stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Pass(#[from] PassError),
    #[error(transparent)]
    Suspect(Suspect),
}

impl SyncError {
    /// The ZoneSync's reason.
    pub fn reason(&self) -> SyncReason {
        match self {
            SyncError::Pass(e) => SyncReason::Dns(e.reason()),
            SyncError::Suspect(_) => SyncReason::SuspectTransfer,
        }
    }
}

/// The zone's deletion guard, as it applies to a sync's observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGuard {
    pub guard: Guard,
    pub allow_mass_deletion: bool,
}

/// Whether a sync's observation is suspect: the zone emptied to its SOA/NS, or more records
/// gone than the deletion guard lets one pass delete. `content_before` and `records_before`
/// describe the previous snapshot.
pub fn check_sync(
    report: &SyncReport,
    content_before: usize,
    records_before: usize,
    guard: &SyncGuard,
) -> Result<(), Suspect> {
    if guard.allow_mass_deletion {
        return Ok(());
    }
    if content_before > 0 && content_rrsets(&report.snapshot) == 0 {
        return Err(Suspect::Emptied {
            serial: report.serial_after,
            expected: content_before,
        });
    }
    let deletes = report.changes.iter().map(Change::deleted_records).sum();
    diff::check_deletions(deletes, records_before, &guard.guard).map_err(Suspect::Guard)
}

/// [`sync_owned`] with the zone's deletion guard: a suspect observation is an error, and the
/// previous snapshot is not handed back then (an IXFR may have changed it in place), so the
/// caller reloads the stored one, which nothing replaced.
pub async fn sync_guarded(
    transfer_endpoint: &Endpoint,
    origin: &Name,
    previous: Option<Zone>,
    method: SyncMethod,
    guard: &SyncGuard,
) -> Result<SyncReport, (SyncError, Option<Zone>)> {
    let content_before = previous.as_ref().map_or(0, content_rrsets);
    let records_before = previous.as_ref().map_or(0, Zone::record_count);
    let report = sync_owned(transfer_endpoint, origin, previous, method)
        .await
        .map_err(|(e, z)| (SyncError::Pass(e), z))?;
    check_sync(&report, content_before, records_before, guard)
        .map_err(|s| (SyncError::Suspect(s), None))?;
    Ok(report)
}

#[cfg(test)]
pub(crate) mod tests {
    use hickory_proto::rr::Record;

    use super::*;
    use crate::dns::model::parse_rdata;

    pub(crate) fn soa_rdata(serial: u32) -> hickory_proto::rr::RData {
        hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
            Name::from_ascii("ns1.invalid.").unwrap(),
            Name::from_ascii("hostmaster.example.com.").unwrap(),
            serial,
            3600,
            600,
            86400,
            60,
        ))
    }

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    fn rec(owner: &str, ttl: u32, rtype: RecordType, data: &str) -> Record {
        let name = Name::from_ascii(owner).unwrap();
        Record::from_rdata(name, ttl, parse_rdata(rtype, &origin(), data).unwrap())
    }

    fn soa(serial: u32) -> Record {
        Record::from_rdata(origin(), 3600, soa_rdata(serial))
    }

    fn zone(records: Vec<Record>) -> Zone {
        let mut z = Zone::new(origin());
        for r in records {
            z.insert(r);
        }
        z
    }

    #[test]
    fn ixfr_steps_bring_the_snapshot_to_the_new_serial_and_diff_only_what_moved() {
        let mut before = vec![
            soa(1),
            rec("ns.example.com.", 60, RecordType::A, "192.0.2.53"),
        ];
        for i in 0..50 {
            before.push(rec(
                &format!("h{i}.example.com."),
                300,
                RecordType::A,
                &format!("10.0.0.{i}"),
            ));
        }
        let old = zone(before);
        let steps = vec![
            IxfrStep {
                from_serial: 1,
                to_serial: 2,
                deleted: vec![rec("h3.example.com.", 300, RecordType::A, "10.0.0.3")],
                added: vec![rec("new.example.com.", 300, RecordType::TXT, "\"x\"")],
                soa: Some(soa(2)),
            },
            IxfrStep {
                from_serial: 2,
                to_serial: 3,
                deleted: vec![rec("h4.example.com.", 300, RecordType::A, "10.0.0.4")],
                added: vec![rec("h4.example.com.", 60, RecordType::A, "10.0.0.4")],
                soa: Some(soa(3)),
            },
        ];
        let touched: BTreeSet<RRsetKey> = steps
            .iter()
            .flat_map(|s| s.deleted.iter().chain(&s.added))
            .map(|r| RRsetKey::new(r.name(), r.record_type()))
            .collect();
        let mut new = old.clone();
        apply_ixfr(&mut new, steps);
        assert_eq!(new.soa_serial(), Some(3));
        assert_eq!(new.record_count(), old.record_count());
        let changes = touched_diff(&old, &new, &touched);
        assert_eq!(changes, diff::zone_diff(&old, &new));
        let s = summarize(&changes, &new);
        assert_eq!((s.added, s.updated, s.deleted), (1, 1, 1));
        assert_eq!(s.total, new.rrset_count());
        assert_eq!(s.unchanged, s.total - 2);
    }
}
