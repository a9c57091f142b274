//! Pure planning: desired vs observed vs owned RRsets. No I/O.
//!
//! Changes come out in the order an RFC 2136 UPDATE must apply them: deletions
//! first, then replacements, then additions (each in canonical name order), so a
//! CNAME can take the place of other data at the same name within one message.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hickory_proto::rr::{Name, RData, RecordType};

use super::model::{RRset, RRsetKey, Zone};

/// One change to one RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The RRset does not exist on the server yet.
    Add(RRset),
    /// The RRset exists with another TTL or other data.
    Replace {
        /// What the server holds.
        old: RRset,
        /// What it should hold.
        new: RRset,
    },
    /// The RRset goes away.
    Delete(RRset),
}

impl Change {
    /// The key of the RRset changed.
    pub fn key(&self) -> RRsetKey {
        match self {
            Change::Add(s) | Change::Delete(s) => s.key(),
            Change::Replace { new, .. } => new.key(),
        }
    }

    /// Resource records this change removes and does not put back.
    pub fn deleted_rr_count(&self) -> usize {
        match self {
            Change::Add(_) => 0,
            Change::Delete(s) => s.len(),
            Change::Replace { old, new } => old.rdatas.iter().filter(|r| !new.contains(r)).count(),
        }
    }

    /// The change as zone-file lines with `+`/`-` in front. A Replace that keeps the TTL
    /// shows only the records that differ; one that changes the TTL shows all of them.
    pub fn lines(&self) -> Vec<String> {
        let plus = |s: &RRset| prefixed('+', s, |_| true);
        let minus = |s: &RRset| prefixed('-', s, |_| true);
        match self {
            Change::Add(s) => plus(s),
            Change::Delete(s) => minus(s),
            Change::Replace { old, new } if old.ttl != new.ttl => {
                let mut out = minus(old);
                out.extend(plus(new));
                out
            }
            Change::Replace { old, new } => {
                let mut out = prefixed('-', old, |r| !new.contains(r));
                out.extend(prefixed('+', new, |r| !old.contains(r)));
                out
            }
        }
    }
}

fn prefixed(sign: char, set: &RRset, keep: impl Fn(&RData) -> bool) -> Vec<String> {
    let kept = RRset {
        name: set.name.clone(),
        rtype: set.rtype,
        ttl: set.ttl,
        rdatas: set.rdatas.iter().filter(|r| keep(r)).cloned().collect(),
    };
    kept.to_lines()
        .into_iter()
        .map(|l| format!("{sign} {l}"))
        .collect()
}

/// What [`plan`] compares.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The RRsets the spec asks for.
    pub desired: &'a [RRset],
    /// What the server holds now.
    pub observed: &'a Zone,
    /// RRsets this object created or manages (from its status/ownership record).
    pub owned: &'a BTreeSet<RRsetKey>,
    /// Delete RRsets nobody asked for (apex SOA/NS excepted).
    pub prune: bool,
}

/// The changes that take the server to the desired state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Deletions, then replacements, then additions.
    pub changes: Vec<Change>,
    /// Owned RRsets whose content on the server differs from what is desired
    /// (changed or removed by someone else).
    pub drifted: Vec<RRsetKey>,
}

impl Plan {
    /// Resource records removed: every record of a Delete, and for a Replace the old
    /// records the new set does not keep.
    pub fn deleted_rr_count(&self) -> usize {
        self.changes.iter().map(Change::deleted_rr_count).sum()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// RRsets (added, updated, deleted).
    pub fn counts(&self) -> (usize, usize, usize) {
        change_counts(&self.changes)
    }

    /// The first `n` changed records as `+ www.example.com. 300 IN A 192.0.2.1` / `- ...`.
    pub fn sample_lines(&self, n: usize) -> Vec<String> {
        sample_lines(&self.changes, n)
    }
}

/// RRsets (added, updated, deleted) in a list of changes.
pub fn change_counts(changes: &[Change]) -> (usize, usize, usize) {
    changes.iter().fold((0, 0, 0), |(a, u, d), c| match c {
        Change::Add(_) => (a + 1, u, d),
        Change::Replace { .. } => (a, u + 1, d),
        Change::Delete(_) => (a, u, d + 1),
    })
}

/// The first `n` changed records of a list of changes, as `+`/`-` zone-file lines.
pub fn sample_lines(changes: &[Change], n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for change in changes {
        if out.len() >= n {
            break;
        }
        out.extend(change.lines().into_iter().take(n - out.len()));
    }
    out
}

/// Whether the server never lets us touch this RRset unasked: SOA always, apex NS
/// unless desired.
fn protected(key: &RRsetKey, apex: &Name) -> bool {
    key.rtype == RecordType::SOA || (key.rtype == RecordType::NS && key.name == *apex)
}

fn apex_of(zone: &Zone) -> Name {
    RRsetKey::new(zone.origin(), RecordType::NS).name
}

/// Compares desired, observed and owned RRsets and lists the changes.
///
/// - SOA is never touched; apex NS only when it is desired.
/// - Desired and absent: Add. Present with another TTL or data: Replace.
/// - Owned, no longer desired, still on the server: Delete.
/// - Neither desired nor owned: left alone, unless `prune` (then Delete).
/// - Owned and desired but different (or missing) on the server: drift.
pub fn plan(input: &PlanInput) -> Plan {
    let apex = apex_of(input.observed);
    let mut desired: BTreeMap<RRsetKey, &RRset> = BTreeMap::new();
    for set in input.desired {
        let key = set.key();
        if key.rtype != RecordType::SOA {
            desired.insert(key, set);
        }
    }
    let (mut deletes, mut replaces, mut adds) = (Vec::new(), Vec::new(), Vec::new());
    let mut drifted = Vec::new();
    for (key, want) in &desired {
        match input.observed.get(key) {
            None => {
                if input.owned.contains(key) {
                    drifted.push(key.clone());
                }
                adds.push(Change::Add((*want).clone()));
            }
            Some(have) if have.ttl == want.ttl && have.same_data(want) => {}
            Some(have) => {
                if input.owned.contains(key) {
                    drifted.push(key.clone());
                }
                replaces.push(Change::Replace {
                    old: have.clone(),
                    new: (*want).clone(),
                });
            }
        }
    }
    for have in input.observed.rrsets() {
        let key = have.key();
        if desired.contains_key(&key) || protected(&key, &apex) {
            continue;
        }
        if input.prune || input.owned.contains(&key) {
            deletes.push(Change::Delete(have.clone()));
        }
    }
    deletes.append(&mut replaces);
    deletes.append(&mut adds);
    Plan {
        changes: deletes,
        drifted,
    }
}

/// Limits on how much one pass may delete (`spec.management.deletionGuard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    /// Most resource records one pass may delete.
    pub max_deletes: u64,
    /// Most resource records one pass may delete, in percent of the zone.
    pub max_delete_percent: u32,
}

/// A plan deletes more than the guard allows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardViolation {
    /// More records than `maxDeletes`.
    #[error(
        "the change would delete {deletes} records, more than deletionGuard.maxDeletes ({max}); set management.allowMassDeletion to let it through once"
    )]
    TooMany {
        /// Records the plan deletes.
        deletes: u64,
        /// The limit.
        max: u64,
    },
    /// A bigger share of the zone than `maxDeletePercent`.
    #[error(
        "the change would delete {deletes} of the zone's {zone_records} records ({percent}%), more than deletionGuard.maxDeletePercent ({max_percent}%); set management.allowMassDeletion to let it through once"
    )]
    TooLarge {
        /// Records the plan deletes.
        deletes: u64,
        /// Records in the zone.
        zone_records: u64,
        /// `deletes` as a percentage of the zone, rounded up.
        percent: u64,
        /// The limit.
        max_percent: u32,
    },
}

/// Refuses a plan that deletes more resource records than `guard` allows, counted
/// against a zone of `zone_rr_count` records.
pub fn check_guard(plan: &Plan, zone_rr_count: usize, guard: &Guard) -> Result<(), GuardViolation> {
    let deletes = plan.deleted_rr_count() as u64;
    if deletes == 0 {
        return Ok(());
    }
    if deletes > guard.max_deletes {
        return Err(GuardViolation::TooMany {
            deletes,
            max: guard.max_deletes,
        });
    }
    let zone = zone_rr_count as u64;
    // Integer arithmetic so 30% of 10 records allows exactly 3.
    if zone > 0
        && deletes.saturating_mul(100) > u64::from(guard.max_delete_percent).saturating_mul(zone)
    {
        return Err(GuardViolation::TooLarge {
            deletes,
            zone_records: zone,
            percent: deletes.saturating_mul(100).div_ceil(zone),
            max_percent: guard.max_delete_percent,
        });
    }
    Ok(())
}

/// What changed between two versions of a zone (a sync: snapshot vs backend). SOA is
/// left out: its serial moves with every change and says nothing by itself.
pub fn zone_diff(old: &Zone, new: &Zone) -> Vec<Change> {
    let (mut deletes, mut replaces, mut adds) = (Vec::new(), Vec::new(), Vec::new());
    for was in old.rrsets() {
        let key = was.key();
        if key.rtype == RecordType::SOA {
            continue;
        }
        match new.get(&key) {
            None => deletes.push(Change::Delete(was.clone())),
            Some(is) if is.ttl == was.ttl && is.same_data(was) => {}
            Some(is) => replaces.push(Change::Replace {
                old: was.clone(),
                new: is.clone(),
            }),
        }
    }
    for is in new.rrsets() {
        let key = is.key();
        if key.rtype != RecordType::SOA && old.get(&key).is_none() {
            adds.push(Change::Add(is.clone()));
        }
    }
    deletes.append(&mut replaces);
    deletes.append(&mut adds);
    deletes
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Add(s) => write!(f, "add {}", s.key()),
            Change::Replace { new, .. } => write!(f, "replace {}", new.key()),
            Change::Delete(s) => write!(f, "delete {}", s.key()),
        }
    }
}
