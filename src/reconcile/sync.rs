//! One sync (seed 000): transfer the zone from its backend — IXFR from the stored snapshot's
//! serial when there is one, AXFR otherwise — and compute the change against that snapshot.
//! The backend is the source of truth: the new snapshot is exactly what it served.

use std::collections::BTreeSet;

use hickory_proto::rr::{Name, RecordType};

use super::config::Endpoint;
use super::pass::{PassError, axfr_zone, resolve_server};
use crate::api::zone_sync::SyncMethod;
use crate::dns::diff::{self, Change};
use crate::dns::model::{RRsetKey, Zone};
use crate::dns::transfer::{self, IxfrOutcome, IxfrStep, TransferOptions, TransferStats};

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
        if let Some(soa) = step.to_soa {
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
    let opts = TransferOptions {
        tsig: transfer_endpoint.key.clone(),
        connect_timeout: transfer_endpoint.timeout,
        idle_timeout: transfer_endpoint.timeout,
    };
    let serial_before = previous.and_then(Zone::soa_serial);
    let (snapshot, transfer, incremental) = match (previous, serial_before, method) {
        (Some(prev), Some(from), SyncMethod::Auto) => {
            let addr = resolve_server(&transfer_endpoint.server).await?;
            let mut full = Zone::new(origin.clone());
            let (outcome, stats) = transfer::ixfr(addr, origin, from, &opts, &mut |record| {
                full.insert(record);
                Ok(())
            })
            .await?;
            match outcome {
                IxfrOutcome::UpToDate => (prev.clone(), stats, true),
                IxfrOutcome::Incremental(steps) => {
                    // Only the RRsets the steps touch can differ: diff those, not the zone.
                    let touched: BTreeSet<RRsetKey> = steps
                        .iter()
                        .flat_map(|st| st.deleted.iter().chain(&st.added))
                        .map(|r| RRsetKey::new(r.name(), r.record_type()))
                        .collect();
                    let mut zone = prev.clone();
                    apply_ixfr(&mut zone, steps);
                    let changes = touched_diff(prev, &zone, &touched);
                    let summary = summarize(&changes, &zone);
                    return Ok(SyncReport {
                        serial_before,
                        serial_after: stats.serial,
                        transfer: stats,
                        incremental: true,
                        changes,
                        summary,
                        snapshot: zone,
                    });
                }
                IxfrOutcome::Full => (full, stats, false),
            }
        }
        _ => {
            let (zone, stats) = axfr_zone(transfer_endpoint, origin).await?;
            (zone, stats, false)
        }
    };
    let empty = Zone::new(origin.clone());
    let changes = diff::zone_diff(previous.unwrap_or(&empty), &snapshot);
    let summary = summarize(&changes, &snapshot);
    Ok(SyncReport {
        serial_before,
        serial_after: transfer.serial,
        transfer,
        incremental,
        changes,
        summary,
        snapshot,
    })
}
