//! Pure planning: desired vs observed vs owned RRsets. No I/O.
//!
//! Changes come out in the order an RFC 2136 UPDATE must apply them: deletions
//! first, then replacements, then additions (each in canonical name order), so a
//! CNAME can take the place of other data at the same name within one message.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hickory_proto::rr::{Name, RData, RecordType};

use super::model::{RRset, RRsetKey, Zone, name_eq};

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

/// Whether an RRset is never deleted unasked: SOA, apex NS, and the records a signing
/// server maintains itself (RRSIG, NSEC, NSEC3, NSEC3PARAM, DNSKEY, CDS, CDNSKEY and
/// BIND's private signing-state type 65534), which no spec can list.
fn protected(key: &RRsetKey, apex: &Name) -> bool {
    matches!(
        key.rtype,
        RecordType::SOA
            | RecordType::RRSIG
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::NSEC3PARAM
            | RecordType::DNSKEY
            | RecordType::CDS
            | RecordType::CDNSKEY
    ) || key.rtype == RecordType::Unknown(65534)
        || (key.rtype == RecordType::NS && name_eq(&key.name, apex))
}

fn apex_of(zone: &Zone) -> Name {
    RRsetKey::new(zone.origin(), RecordType::NS).name
}

/// Compares desired, observed and owned RRsets and lists the changes.
///
/// - SOA is never touched; apex NS only when it is desired.
/// - Desired and absent: Add. Present with another TTL or data: Replace.
/// - Owned, no longer desired, still on the server: Delete.
/// - Neither desired nor owned: left alone, unless `prune` (then Delete; DNSSEC
///   records the server maintains are spared too).
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

/// Applies changes to a zone, as the server will once the UPDATE succeeds (keeps a
/// cached observation current without another transfer).
pub fn apply_changes(zone: &mut Zone, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Add(set) | Change::Replace { new: set, .. } => zone.insert_rrset(set.clone()),
            Change::Delete(set) => {
                zone.remove_rrset(&set.key());
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::parse_rdata;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::SOA;
    use std::str::FromStr;

    fn origin() -> Name {
        Name::from_str("example.com.").unwrap()
    }

    fn set(name: &str, rtype: RecordType, ttl: u32, data: &[&str]) -> RRset {
        let owner = if name == "@" {
            origin()
        } else {
            Name::from_str(&format!("{name}.example.com.")).unwrap()
        };
        let rdatas = data
            .iter()
            .map(|d| parse_rdata(rtype, &origin(), d).unwrap())
            .collect();
        RRset::new(owner, rtype, ttl, rdatas)
    }

    fn zone(sets: &[RRset]) -> Zone {
        let mut z = Zone::new(origin());
        let soa = SOA::new(
            Name::from_str("ns1.example.net.").unwrap(),
            Name::from_str("hostmaster.example.com.").unwrap(),
            7,
            3600,
            600,
            86400,
            300,
        );
        z.insert(Record::from_rdata(origin(), 3600, RData::SOA(soa)));
        z.insert_rrset(set(
            "@",
            RecordType::NS,
            3600,
            &["ns1.example.net.", "ns2.example.net."],
        ));
        for s in sets {
            z.insert_rrset(s.clone());
        }
        z
    }

    fn keys(v: &[RRset]) -> BTreeSet<RRsetKey> {
        v.iter().map(RRset::key).collect()
    }

    fn run(desired: &[RRset], observed: &Zone, owned: &BTreeSet<RRsetKey>, prune: bool) -> Plan {
        plan(&PlanInput {
            desired,
            observed,
            owned,
            prune,
        })
    }

    #[test]
    fn nothing_to_do_when_server_matches() {
        let www = set("www", RecordType::A, 300, &["192.0.2.1", "192.0.2.2"]);
        // Same data in another order and name case on the server is no change.
        let server = RRset::new(
            Name::from_str("WWW.example.com.").unwrap(),
            RecordType::A,
            300,
            vec![
                parse_rdata(RecordType::A, &origin(), "192.0.2.2").unwrap(),
                parse_rdata(RecordType::A, &origin(), "192.0.2.1").unwrap(),
            ],
        );
        let observed = zone(&[server]);
        let p = run(
            std::slice::from_ref(&www),
            &observed,
            &keys(std::slice::from_ref(&www)),
            true,
        );
        assert!(p.is_empty(), "{:?}", p.changes);
        assert!(p.drifted.is_empty());
        assert_eq!(p.counts(), (0, 0, 0));
        assert_eq!(p.deleted_rr_count(), 0);
    }

    #[test]
    fn absent_is_added() {
        let www = set("www", RecordType::A, 300, &["192.0.2.1"]);
        let observed = zone(&[]);
        let p = run(
            std::slice::from_ref(&www),
            &observed,
            &BTreeSet::new(),
            false,
        );
        assert_eq!(p.changes, [Change::Add(www)]);
        assert_eq!(p.counts(), (1, 0, 0));
        assert_eq!(
            p.sample_lines(10),
            ["+ www.example.com. 300 IN A 192.0.2.1"]
        );
        assert!(p.drifted.is_empty(), "not owned yet: no drift");
    }

    #[test]
    fn different_ttl_or_data_is_replaced() {
        let want = set("www", RecordType::A, 300, &["192.0.2.1", "192.0.2.2"]);
        let ttl_only = set("www", RecordType::A, 600, &["192.0.2.1", "192.0.2.2"]);
        let data_only = set("www", RecordType::A, 300, &["192.0.2.1", "192.0.2.9"]);
        for have in [ttl_only, data_only.clone()] {
            let observed = zone(std::slice::from_ref(&have));
            let p = run(
                std::slice::from_ref(&want),
                &observed,
                &BTreeSet::new(),
                false,
            );
            assert_eq!(
                p.changes,
                [Change::Replace {
                    old: have.clone(),
                    new: want.clone()
                }]
            );
            assert_eq!(p.counts(), (0, 1, 0));
        }
        let observed = zone(std::slice::from_ref(&data_only));
        let p = run(
            std::slice::from_ref(&want),
            &observed,
            &BTreeSet::new(),
            false,
        );
        assert_eq!(p.deleted_rr_count(), 1, "192.0.2.9 goes, 192.0.2.1 stays");
        assert_eq!(
            p.sample_lines(10),
            [
                "- www.example.com. 300 IN A 192.0.2.9",
                "+ www.example.com. 300 IN A 192.0.2.2"
            ]
        );
        let ttl_change = Change::Replace {
            old: set("x", RecordType::A, 600, &["192.0.2.1"]),
            new: set("x", RecordType::A, 300, &["192.0.2.1"]),
        };
        assert_eq!(ttl_change.deleted_rr_count(), 0);
        assert_eq!(
            ttl_change.lines(),
            [
                "- x.example.com. 600 IN A 192.0.2.1",
                "+ x.example.com. 300 IN A 192.0.2.1"
            ]
        );
    }

    #[test]
    fn owned_and_no_longer_desired_is_deleted_if_still_there() {
        let old = set("old", RecordType::TXT, 300, &["\"a\"", "\"b\""]);
        let gone = set("gone", RecordType::A, 300, &["192.0.2.1"]);
        let observed = zone(std::slice::from_ref(&old));
        let owned = keys(&[old.clone(), gone]);
        let p = run(&[], &observed, &owned, false);
        assert_eq!(
            p.changes,
            [Change::Delete(old)],
            "gone is not on the server: nothing"
        );
        assert_eq!(p.counts(), (0, 0, 1));
        assert_eq!(p.deleted_rr_count(), 2);
    }

    #[test]
    fn unowned_undesired_is_left_alone_unless_prune() {
        let foreign = set("foreign", RecordType::A, 300, &["192.0.2.7"]);
        let observed = zone(std::slice::from_ref(&foreign));
        let p = run(&[], &observed, &BTreeSet::new(), false);
        assert!(p.is_empty());
        let p = run(&[], &observed, &BTreeSet::new(), true);
        assert_eq!(
            p.changes,
            [Change::Delete(foreign)],
            "prune spares SOA and apex NS"
        );
    }

    #[test]
    fn soa_is_never_touched_and_apex_ns_only_when_desired() {
        let observed = zone(&[]);
        let owned: BTreeSet<RRsetKey> = [
            RRsetKey::new(&origin(), RecordType::SOA),
            RRsetKey::new(&origin(), RecordType::NS),
        ]
        .into();
        // Owned but not desired, prune on: still untouched.
        assert!(run(&[], &observed, &owned, true).is_empty());
        // A desired SOA is ignored.
        let soa = RRset::new(
            origin(),
            RecordType::SOA,
            60,
            vec![RData::SOA(SOA::new(origin(), origin(), 99, 1, 1, 1, 1))],
        );
        assert!(run(&[soa], &observed, &owned, true).is_empty());
        // A desired apex NS is managed like any RRset.
        let ns = set(
            "@",
            RecordType::NS,
            3600,
            &["ns1.example.net.", "ns3.example.net."],
        );
        let p = run(
            std::slice::from_ref(&ns),
            &observed,
            &BTreeSet::new(),
            false,
        );
        assert_eq!(p.counts(), (0, 1, 0));
        assert_eq!(p.deleted_rr_count(), 1);
        // NS below the apex (a delegation) is ordinary data for prune.
        let child = set("child", RecordType::NS, 300, &["ns.child.example.com."]);
        let observed = zone(std::slice::from_ref(&child));
        assert_eq!(
            run(&[], &observed, &BTreeSet::new(), true).changes,
            [Change::Delete(child)]
        );
    }

    #[test]
    fn owned_rrset_changed_or_removed_on_server_is_drift() {
        let want_a = set("a", RecordType::A, 300, &["192.0.2.1"]);
        let want_b = set("b", RecordType::A, 300, &["192.0.2.2"]);
        let want_c = set("c", RecordType::A, 300, &["192.0.2.3"]);
        let tampered = set("a", RecordType::A, 300, &["203.0.113.66"]);
        // b was deleted by someone; c is fine; a was changed.
        let observed = zone(&[tampered, want_c.clone()]);
        let desired = [want_a.clone(), want_b.clone(), want_c.clone()];
        let p = run(&desired, &observed, &keys(&desired), false);
        assert_eq!(p.drifted, [want_a.key(), want_b.key()]);
        assert_eq!(p.counts(), (1, 1, 0));
        // Unowned differences are plain changes, not drift.
        let p = run(&desired, &observed, &BTreeSet::new(), false);
        assert!(p.drifted.is_empty());
    }

    #[test]
    fn deletes_come_before_replaces_before_adds() {
        // www turns from A into CNAME: the A must go first in the same UPDATE.
        let a = set("www", RecordType::A, 300, &["192.0.2.1"]);
        let cname = set("www", RecordType::CNAME, 300, &["lb.example.net."]);
        let mx = set("@", RecordType::MX, 300, &["10 mail"]);
        let old_mx = set("@", RecordType::MX, 300, &["20 mail"]);
        let observed = zone(&[a.clone(), old_mx.clone()]);
        let desired = [cname.clone(), mx.clone()];
        let owned = keys(&[a.clone(), mx.clone()]);
        let p = run(&desired, &observed, &owned, false);
        assert_eq!(
            p.changes,
            [
                Change::Delete(a),
                Change::Replace {
                    old: old_mx,
                    new: mx
                },
                Change::Add(cname)
            ]
        );
        assert_eq!(p.sample_lines(2).len(), 2, "sample is capped");
        assert_eq!(
            p.sample_lines(2)[0],
            "- www.example.com. 300 IN A 192.0.2.1"
        );
    }

    #[test]
    fn guard_counts_records_and_percent() {
        let many: Vec<String> = (1..=10).map(|i| format!("192.0.2.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let big = set("big", RecordType::A, 300, &many);
        let observed = zone(std::slice::from_ref(&big));
        let p = run(&[], &observed, &keys(&[big]), false);
        assert_eq!(p.deleted_rr_count(), 10);
        let ok = Guard {
            max_deletes: 10,
            max_delete_percent: 100,
        };
        assert_eq!(check_guard(&p, 13, &ok), Ok(()));
        let few = Guard {
            max_deletes: 9,
            max_delete_percent: 100,
        };
        let err = check_guard(&p, 13, &few).unwrap_err();
        assert_eq!(
            err,
            GuardViolation::TooMany {
                deletes: 10,
                max: 9
            }
        );
        assert!(
            err.to_string()
                .contains("delete 10 records, more than deletionGuard.maxDeletes (9)"),
            "{err}"
        );
        let pct = Guard {
            max_deletes: 100,
            max_delete_percent: 30,
        };
        let err = check_guard(&p, 13, &pct).unwrap_err();
        assert!(
            err.to_string().contains("delete 10 of the zone's 13 records (77%), more than deletionGuard.maxDeletePercent (30%)"),
            "{err}"
        );
        // Exactly at the limit passes: 3 of 10 at 30%.
        let three = set(
            "t",
            RecordType::A,
            300,
            &["192.0.2.1", "192.0.2.2", "192.0.2.3"],
        );
        let observed = zone(std::slice::from_ref(&three));
        let p = run(&[], &observed, &keys(&[three]), false);
        assert_eq!(check_guard(&p, 10, &pct), Ok(()));
        assert!(check_guard(&p, 9, &pct).is_err());
        // Nothing deleted never trips the guard, even with zero limits.
        let zero = Guard {
            max_deletes: 0,
            max_delete_percent: 0,
        };
        assert_eq!(check_guard(&Plan::default(), 0, &zero), Ok(()));
    }

    #[test]
    fn replace_counts_only_records_not_kept_for_the_guard() {
        let have = set(
            "w",
            RecordType::A,
            300,
            &["192.0.2.1", "192.0.2.2", "192.0.2.3"],
        );
        let want = set("w", RecordType::A, 60, &["192.0.2.1"]);
        let observed = zone(std::slice::from_ref(&have));
        let p = run(
            std::slice::from_ref(&want),
            &observed,
            &BTreeSet::new(),
            false,
        );
        assert_eq!(p.deleted_rr_count(), 2);
    }

    #[test]
    fn zone_diff_lists_adds_replaces_deletes_without_soa() {
        let a = set("a", RecordType::A, 300, &["192.0.2.1"]);
        let b = set("b", RecordType::A, 300, &["192.0.2.2"]);
        let b2 = set("b", RecordType::A, 300, &["192.0.2.3"]);
        let c = set("c", RecordType::TXT, 300, &["\"new\""]);
        let old = zone(&[a.clone(), b.clone()]);
        let mut new = zone(&[b2.clone(), c.clone()]);
        let soa = SOA::new(origin(), origin(), 8, 1, 1, 1, 1);
        new.insert_rrset(RRset::new(
            origin(),
            RecordType::SOA,
            3600,
            vec![RData::SOA(soa)],
        ));
        let changes = zone_diff(&old, &new);
        assert_eq!(
            changes,
            [
                Change::Delete(a),
                Change::Replace { old: b, new: b2 },
                Change::Add(c)
            ]
        );
        assert_eq!(change_counts(&changes), (1, 1, 1));
        assert!(zone_diff(&old, &old).is_empty());
        let mut patched = old.clone();
        apply_changes(&mut patched, &changes);
        assert!(
            zone_diff(&patched, &new).is_empty(),
            "applying the diff yields the new zone"
        );
    }
    #[test]
    fn prune_spares_server_maintained_dnssec_records() {
        use hickory_proto::rr::rdata::NULL;
        let mut observed = zone(&[]);
        for rtype in [RecordType::NSEC3PARAM, RecordType::Unknown(65534)] {
            observed.insert_rrset(RRset::new(
                origin(),
                rtype,
                0,
                vec![RData::Unknown {
                    code: rtype,
                    rdata: NULL::with(vec![1, 0, 0, 0, 0]),
                }],
            ));
        }
        assert_eq!(observed.rrset_count(), 4);
        assert!(run(&[], &observed, &BTreeSet::new(), true).is_empty());
    }
}
