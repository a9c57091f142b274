//! Pure planning: what to change on the server so the RRsets an object manages match its spec,
//! and the difference between two snapshots of a zone. No I/O.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::model::{
    Desired, Entry, Owned, RRset, RRsetKey, Zone, ZoneBuilder, canonical_rdata, decode_key,
    name_eq, owned_key,
};

/// One RRset change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The RRset does not exist yet.
    Add(RRset),
    /// The RRset exists (`old`, as observed) and becomes `new`.
    Replace { old: RRset, new: RRset },
    /// The RRset (as observed) goes.
    Delete(RRset),
}

impl Change {
    pub fn key(&self) -> RRsetKey {
        match self {
            Change::Add(s) | Change::Replace { new: s, .. } | Change::Delete(s) => s.key(),
        }
    }

    /// Resource records this change writes or removes on the wire.
    pub fn rr_count(&self) -> usize {
        match self {
            Change::Add(s) | Change::Delete(s) => s.len(),
            Change::Replace { old, new } => old.len() + new.len(),
        }
    }

    /// Records the change removes: all of a deleted RRset, those of a replaced one that the
    /// new set does not keep.
    pub fn deleted_records(&self) -> usize {
        match self {
            Change::Add(_) => 0,
            // A new SOA replaces the old one; no record of the zone goes.
            Change::Replace { new, .. } if new.rtype == RecordType::SOA => 0,
            Change::Delete(s) => s.len(),
            Change::Replace { old, new } => {
                let kept: BTreeSet<Vec<u8>> = new.rdatas.iter().map(canonical_rdata).collect();
                old.rdatas
                    .iter()
                    .filter(|r| !kept.contains(&canonical_rdata(r)))
                    .count()
            }
        }
    }

    /// Diff lines: `+ name ttl IN type data` for what comes, `- ...` for what goes.
    pub fn lines(&self) -> Vec<String> {
        let plus = |s: &RRset| s.to_lines().into_iter().map(|l| format!("+ {l}"));
        let minus = |s: &RRset| s.to_lines().into_iter().map(|l| format!("- {l}"));
        match self {
            Change::Add(s) => plus(s).collect(),
            Change::Delete(s) => minus(s).collect(),
            Change::Replace { old, new } => minus(old).chain(plus(new)).collect(),
        }
    }
}

/// Every diff line of a list of changes.
pub fn change_lines(changes: &[Change]) -> Vec<String> {
    changes.iter().flat_map(Change::lines).collect()
}

/// The longest change line a status holds: one 10 KB TXT record would otherwise make a
/// 28 KB line, and a few dozen of them an object etcd refuses.
pub const STATUS_LINE_MAX: usize = 256;

/// `line` cut to at most `max` bytes (so also `max` characters), ending in a marker that
/// says how much was left out. The full line lives in the change-list ConfigMaps.
pub fn cap_line(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    // The marker is longest when the cut-off part is the whole line.
    let marker_max = format!("…(+{} bytes)", line.len()).len();
    let mut cut = max.saturating_sub(marker_max);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…(+{} bytes)", &line[..cut], line.len() - cut)
}

/// The first `n` of `lines` as a status lists them: each cut to [`STATUS_LINE_MAX`].
pub fn status_lines(lines: &[String], n: usize) -> Vec<String> {
    lines
        .iter()
        .take(n)
        .map(|l| cap_line(l, STATUS_LINE_MAX))
        .collect()
}

/// What a plan is computed from.
pub struct PlanInput<'a> {
    /// The RRsets the spec wants.
    pub desired: &'a [RRset],
    /// The zone as the server serves it.
    pub observed: &'a Zone,
    /// The RRsets this object manages, with the fingerprint of what it applied.
    pub owned: &'a Owned,
    /// Delete server RRsets nobody asked for (apex SOA and NS excepted).
    pub prune: bool,
}

/// The changes that make the server match the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Managed RRsets someone else changed on the server since we applied them.
    pub drifted: Vec<RRsetKey>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// RRsets added, replaced and deleted.
    pub fn counts(&self) -> (usize, usize, usize) {
        self.changes.iter().fold((0, 0, 0), |(a, u, d), c| match c {
            Change::Add(_) => (a + 1, u, d),
            Change::Replace { .. } => (a, u + 1, d),
            Change::Delete(_) => (a, u, d + 1),
        })
    }

    /// Resource records the plan removes; what the deletion guard counts.
    pub fn deleted_rr_count(&self) -> usize {
        self.changes.iter().map(Change::deleted_records).sum()
    }

    /// The first `n` diff lines, each cut to [`STATUS_LINE_MAX`] bytes.
    pub fn sample_lines(&self, n: usize) -> Vec<String> {
        self.changes
            .iter()
            .flat_map(Change::lines)
            .take(n)
            .map(|l| cap_line(&l, STATUS_LINE_MAX))
            .collect()
    }

    /// Drops the corrections of drifted RRsets (driftPolicy `Report`): they are reported,
    /// not re-asserted.
    pub fn without_drift_corrections(mut self) -> Self {
        let drifted: BTreeSet<&RRsetKey> = self.drifted.iter().collect();
        self.changes.retain(|c| !drifted.contains(&c.key()));
        self
    }
}

/// Whether an RRset is never deleted unasked: SOA, apex NS, and the records a signing
/// server maintains itself (RRSIG, NSEC, NSEC3, NSEC3PARAM, DNSKEY, CDS, CDNSKEY and BIND's
/// private signing-state type 65534), which no spec can list.
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

/// Deletes first, then replaces, then adds, each in name order: one UPDATE can then turn an
/// A record into a CNAME at the same name.
fn order(change: &Change) -> (u8, RRsetKey) {
    let rank = match change {
        Change::Delete(_) => 0,
        Change::Replace { .. } => 1,
        Change::Add(_) => 2,
    };
    (rank, change.key())
}

/// Plans the changes. SOA is never touched; apex NS only when the spec lists it; under
/// `prune`, the records a signing server maintains are spared too.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let keys = sorted_keys(
        input
            .desired
            .iter()
            .map(|s| Cow::Owned(owned_key(&s.name, s.rtype))),
    );
    plan_core(
        input.desired.iter().cloned(),
        &keys,
        input.observed,
        input.owned,
        input.prune,
    )
}

/// [`plan`] for a packed desired set (what a pass holds): RRsets are decoded one at a time.
pub fn plan_desired(desired: &Desired, observed: &Zone, owned: &Owned, prune: bool) -> Plan {
    let keys = sorted_keys((0..desired.len()).filter_map(|i| desired.key_bytes(i)));
    // What the server holds as it is needs no decoding: only the rest goes the long way.
    let changed = (0..desired.len())
        .filter(|&i| desired.held_by(i, observed) != Some(true))
        .filter_map(|i| desired.get(i));
    plan_core(changed, &keys, observed, owned, prune)
}

/// Zone map keys, sorted for binary search: a sorted vector of (mostly borrowed) keys is a
/// fraction of a set's memory for a million RRsets, and compares with memcmp.
pub(crate) fn sorted_keys<'k>(keys: impl Iterator<Item = Cow<'k, [u8]>>) -> Vec<Cow<'k, [u8]>> {
    let mut keys: Vec<Cow<'k, [u8]>> = keys.collect();
    keys.sort_unstable();
    keys
}

fn has_key(keys: &[Cow<'_, [u8]>], key: &[u8]) -> bool {
    keys.binary_search_by(|k| k.as_ref().cmp(key)).is_ok()
}

fn plan_core(
    desired: impl Iterator<Item = RRset>,
    desired_keys: &[Cow<'_, [u8]>],
    observed: &Zone,
    owned: &Owned,
    prune: bool,
) -> Plan {
    let mut plan = Plan::default();
    for want in desired {
        if want.rtype == RecordType::SOA {
            continue;
        }
        if observed.holds(&want) {
            continue;
        }
        let key = want.key();
        let have = observed.get(&key);
        let fp = want.fingerprint();
        // We applied exactly this before and the server no longer has it: drift.
        if owned.get(&key) == Some(&fp) {
            plan.drifted.push(key.clone());
        }
        plan.changes.push(match have {
            None => Change::Add(want),
            Some(old) => Change::Replace { old, new: want },
        });
    }
    for (bytes, _) in owned.entries() {
        // Still desired (nearly all of them): no name to decode.
        if has_key(desired_keys, bytes) {
            continue;
        }
        let key = decode_key(bytes);
        if key.rtype == RecordType::SOA || has_key(desired_keys, &owned_key(&key.name, key.rtype)) {
            continue;
        }
        if let Some(have) = observed.get(&key) {
            plan.changes.push(Change::Delete(have));
        }
    }
    if prune {
        for entry in observed.entries() {
            if has_key(desired_keys, entry.key()) {
                continue;
            }
            let have = entry.to_rrset();
            let key = have.key();
            if has_key(desired_keys, &owned_key(&key.name, key.rtype))
                || owned.contains_key(&key)
                || protected(&key, observed.origin())
            {
                continue;
            }
            plan.changes.push(Change::Delete(have));
        }
    }
    plan.changes.sort_by_key(order);
    plan
}

/// What a spec manages of the zone's apex SOA: the RNAME (only when `spec.email` is set) and
/// the record's TTL. Serial, MNAME and timers stay the server's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoaWant {
    pub rname: Option<Name>,
    pub ttl: u32,
}

/// The SOA's managed fields as a server serves them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedSoa {
    pub rname: Name,
    pub ttl: u32,
    pub serial: u32,
}

impl ServedSoa {
    /// The apex SOA of `zone`, when it has one.
    pub fn of(zone: &Zone) -> Option<ServedSoa> {
        let set = zone.get_by(zone.origin(), RecordType::SOA)?;
        set.rdatas.iter().find_map(|r| match r {
            RData::SOA(soa) => Some(ServedSoa {
                rname: soa.rname().clone(),
                ttl: set.ttl,
                serial: soa.serial(),
            }),
            _ => None,
        })
    }
}

impl SoaWant {
    /// Whether `served` already has what the spec asks.
    pub fn matches(&self, served: &ServedSoa) -> bool {
        served.ttl == self.ttl
            && self
                .rname
                .as_ref()
                .is_none_or(|r| name_eq(r, &served.rname))
    }

    /// A stable fingerprint of the managed fields, kept to tell drift from a spec change.
    pub fn fingerprint(&self) -> u64 {
        let rname = self
            .rname
            .as_ref()
            .map(|n| n.to_lowercase().to_ascii())
            .unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.ttl.to_be_bytes().iter().chain(rname.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// The SOA RRset `served` becomes: the managed fields from the spec, everything else kept,
    /// and the serial one past the served one. A server ignores an SOA whose serial does not
    /// move forward (RFC 2136 §3.4.2.2; BIND, Knot and PowerDNS all do), and takes the one it
    /// is given without bumping it again, so the serial moves by exactly one.
    fn replacing(&self, served: &RRset) -> Option<RRset> {
        let rdatas = served
            .rdatas
            .iter()
            .map(|r| match r {
                RData::SOA(soa) => {
                    let mut serial = soa.serial().wrapping_add(1);
                    if serial == 0 {
                        // 0 is where RFC 1982 comparisons are most often got wrong.
                        serial = 1;
                    }
                    Some(RData::SOA(hickory_proto::rr::rdata::SOA::new(
                        soa.mname().clone(),
                        self.rname.clone().unwrap_or_else(|| soa.rname().clone()),
                        serial,
                        soa.refresh(),
                        soa.retry(),
                        soa.expire(),
                        soa.minimum(),
                    )))
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(RRset::new(
            served.name.clone(),
            RecordType::SOA,
            self.ttl,
            rdatas,
        ))
    }
}

/// The SOA change the spec asks for on `observed`, and whether it undoes drift: `applied` is
/// the fingerprint of the managed fields last confirmed on the server.
pub fn plan_soa(want: &SoaWant, observed: &Zone, applied: Option<u64>) -> Option<(Change, bool)> {
    let served = ServedSoa::of(observed)?;
    if want.matches(&served) {
        return None;
    }
    let old = observed.get_by(observed.origin(), RecordType::SOA)?;
    let new = want.replacing(&old)?;
    let drifted = applied == Some(want.fingerprint());
    Some((Change::Replace { old, new }, drifted))
}

/// Limits on one pass's deletions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    pub max_deletes: u64,
    pub max_delete_percent: u32,
}

/// The zone size from which the percentage limit applies; below it a single deletion would
/// already be a large share (octoDNS uses the same floor for its thresholds).
pub const PERCENT_FLOOR: usize = 10;

/// A pass refused by the deletion guard.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct GuardViolation {
    pub deletes: usize,
    pub zone_records: usize,
    pub limit: String,
}

impl fmt::Display for GuardViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the change would delete {} of {} records, over the deletion guard's {}",
            self.deletes, self.zone_records, self.limit
        )
    }
}

/// Checks a plan against the deletion guard.
pub fn check_guard(plan: &Plan, zone_records: usize, guard: &Guard) -> Result<(), GuardViolation> {
    check_deletions(plan.deleted_rr_count(), zone_records, guard)
}

/// Checks `deletes` records deleted from a zone of `zone_records` against the guard.
pub fn check_deletions(
    deletes: usize,
    zone_records: usize,
    guard: &Guard,
) -> Result<(), GuardViolation> {
    let violation = |limit: String| GuardViolation {
        deletes,
        zone_records,
        limit,
    };
    if deletes as u64 > guard.max_deletes {
        return Err(violation(format!("maxDeletes {}", guard.max_deletes)));
    }
    if zone_records >= PERCENT_FLOOR
        && (deletes as u128) * 100 > u128::from(guard.max_delete_percent) * zone_records as u128
    {
        return Err(violation(format!(
            "maxDeletePercent {}%",
            guard.max_delete_percent
        )));
    }
    Ok(())
}

/// The change from snapshot `old` to snapshot `new`, SOA excluded (its serial is reported
/// on its own).
pub fn zone_diff(old: &Zone, new: &Zone) -> Vec<Change> {
    let mut merge = Merge::new(old);
    for entry in new.entries() {
        merge.step(entry);
    }
    merge.finish()
}

/// [`zone_diff`] as one merge pass: both zones iterate in the byte order of their map keys,
/// so keys are compared with memcmp; RRsets are compared (as canonical bytes) only under
/// equal keys, and decoded only when they differ.
struct Merge<'o> {
    old: std::iter::Peekable<Box<dyn Iterator<Item = Entry<'o>> + Send + 'o>>,
    changes: Vec<Change>,
}

impl<'o> Merge<'o> {
    fn new(old: &'o Zone) -> Self {
        let entries: Box<dyn Iterator<Item = Entry<'o>> + Send + 'o> =
            Box::new(old.entries().filter(|e| e.rtype() != RecordType::SOA));
        Merge {
            old: entries.peekable(),
            changes: Vec::new(),
        }
    }

    /// The new zone's next entry, in key order.
    fn step(&mut self, y: Entry<'_>) {
        if y.rtype() == RecordType::SOA {
            return;
        }
        while let Some(x) = self.old.peek().copied() {
            match x.key().cmp(y.key()) {
                std::cmp::Ordering::Less => {
                    self.changes.push(Change::Delete(x.to_rrset()));
                    self.old.next();
                }
                std::cmp::Ordering::Equal => {
                    if !x.same(y) {
                        self.changes.push(Change::Replace {
                            old: x.to_rrset(),
                            new: y.to_rrset(),
                        });
                    }
                    self.old.next();
                    return;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        self.changes.push(Change::Add(y.to_rrset()));
    }

    /// The changes, once the new zone's entries are all stepped through.
    fn finish(mut self) -> Vec<Change> {
        for x in self.old {
            self.changes.push(Change::Delete(x.to_rrset()));
        }
        self.changes
    }
}

/// A zone arriving record by record (a transfer), built and diffed against the snapshot
/// `old` as it comes: servers send in canonical order, so each RRset is stepped through
/// [`zone_diff`]'s merge once it is whole, and the diff is ready when the last record is.
/// Should the order break (an RRset comes apart), the whole diff runs at the end instead.
pub struct StreamDiff<'o> {
    old: &'o Zone,
    builder: ZoneBuilder,
    /// `None` once the order broke.
    merge: Option<Merge<'o>>,
    /// How many of the builder's RRsets the merge has seen.
    merged: usize,
}

impl<'o> StreamDiff<'o> {
    pub fn new(old: &'o Zone) -> Self {
        StreamDiff {
            old,
            builder: ZoneBuilder::new(old.origin().clone()),
            merge: Some(Merge::new(old)),
            merged: 0,
        }
    }

    /// Adds one record, as [`ZoneBuilder::push`] does.
    pub fn push(&mut self, record: Record) {
        self.builder.push(record);
        if self.builder.packed() > self.merged {
            self.catch_up();
        }
    }

    fn catch_up(&mut self) {
        let Some(merge) = self.merge.as_mut() else {
            return;
        };
        match self.builder.final_entries(self.merged) {
            Some(entries) => entries.for_each(|e| merge.step(e)),
            None => self.merge = None,
        }
        self.merged = self.builder.packed();
    }

    /// The zone of every record pushed, and the change from `old` to it ([`zone_diff`]).
    pub fn finish(mut self) -> (Zone, Vec<Change>) {
        self.builder.flush();
        self.catch_up();
        let zone = self.builder.finish();
        let changes = match self.merge {
            Some(merge) => merge.finish(),
            None => zone_diff(self.old, &zone),
        };
        (zone, changes)
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::{Name, Record};

    use super::*;
    use crate::dns::model::parse_rdata;
    use crate::dns::model::test_support::soa;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    fn rrset(name: &str, rtype: RecordType, ttl: u32, data: &[&str]) -> RRset {
        let name = crate::dns::model::parse_owner(name, &origin()).unwrap();
        let rdatas = data
            .iter()
            .map(|d| parse_rdata(rtype, &origin(), d).unwrap())
            .collect();
        RRset::new(name, rtype, ttl, rdatas)
    }

    #[test]
    fn a_10_kb_txt_record_is_one_short_status_line_that_says_what_was_cut() {
        let long = format!("\"{}\"", "é".repeat(5000));
        let txt = rrset("big", RecordType::TXT, 300, &[long.as_str()]);
        let full = Change::Add(txt).lines();
        assert!(full[0].len() > 10_000, "the full line stays whole");
        let plan = Plan {
            changes: vec![Change::Add(rrset(
                "big",
                RecordType::TXT,
                300,
                &[long.as_str()],
            ))],
            drifted: Vec::new(),
        };
        let sample = plan.sample_lines(10);
        assert_eq!(sample.len(), 1);
        let line = &sample[0];
        assert!(line.len() <= STATUS_LINE_MAX, "{} bytes", line.len());
        assert!(line.starts_with("+ big.example.com. 300 IN TXT"), "{line}");
        let cut: usize = line
            .rsplit_once("…(+")
            .and_then(|(_, rest)| rest.strip_suffix(" bytes)"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no marker in {line}"));
        let kept = line.len() - format!("…(+{cut} bytes)").len();
        assert_eq!(
            kept + cut,
            full[0].len(),
            "the marker counts what was left out"
        );
        assert_eq!(cap_line("short", STATUS_LINE_MAX), "short");
    }

    fn zone(sets: &[RRset]) -> Zone {
        let mut z = Zone::new(origin());
        z.insert(Record::from_rdata(origin(), 300, soa(1)));
        z.insert(Record::from_rdata(
            origin(),
            300,
            parse_rdata(RecordType::NS, &origin(), "ns1").unwrap(),
        ));
        for s in sets {
            z.insert_rrset(s.clone());
        }
        z
    }

    fn owned(sets: &[&RRset]) -> Owned {
        sets.iter().map(|s| (s.key(), s.fingerprint())).collect()
    }

    #[test]
    fn adds_replaces_and_leaves_matching_rrsets() {
        let www = rrset("www", RecordType::A, 300, &["192.0.2.1"]);
        let api = rrset("api", RecordType::A, 300, &["192.0.2.2"]);
        let api_new = rrset("api", RecordType::A, 600, &["192.0.2.2"]);
        let mail = rrset("mail", RecordType::A, 300, &["192.0.2.3"]);
        let observed = zone(&[www.clone(), api.clone()]);
        let p = plan(&PlanInput {
            desired: &[www.clone(), api_new.clone(), mail.clone()],
            observed: &observed,
            owned: &owned(&[&www, &api]),
            prune: false,
        });
        assert_eq!(p.counts(), (1, 1, 0));
        assert!(p.changes.contains(&Change::Add(mail)));
        assert!(p.changes.contains(&Change::Replace {
            old: api,
            new: api_new
        }));
        assert!(p.drifted.is_empty(), "a spec change is not drift");
        assert_eq!(p.deleted_rr_count(), 0, "a TTL change keeps the record");
    }

    #[test]
    fn owned_rrsets_removed_from_spec_are_deleted_unowned_ones_left() {
        let www = rrset("www", RecordType::A, 300, &["192.0.2.1"]);
        let old = rrset("old", RecordType::A, 300, &["192.0.2.9", "192.0.2.8"]);
        let theirs = rrset("theirs", RecordType::TXT, 300, &["\"hand made\""]);
        let observed = zone(&[www.clone(), old.clone(), theirs.clone()]);
        let input = PlanInput {
            desired: std::slice::from_ref(&www),
            observed: &observed,
            owned: &owned(&[&www, &old]),
            prune: false,
        };
        let p = plan(&input);
        assert_eq!(p.changes, vec![Change::Delete(old.clone())]);
        assert_eq!(p.deleted_rr_count(), 2);

        let pruned = plan(&PlanInput {
            prune: true,
            ..input
        });
        assert_eq!(
            pruned.counts(),
            (0, 0, 2),
            "prune also removes unowned RRsets"
        );
        assert!(pruned.changes.contains(&Change::Delete(theirs)));
        assert!(
            pruned
                .changes
                .iter()
                .all(|c| !matches!(c.key().rtype, RecordType::SOA | RecordType::NS)),
            "apex SOA/NS survive prune"
        );
    }

    #[test]
    fn owned_rrset_changed_by_someone_else_is_drift() {
        let www = rrset("www", RecordType::A, 300, &["192.0.2.1"]);
        let tampered = rrset("www", RecordType::A, 300, &["203.0.113.66"]);
        let observed = zone(std::slice::from_ref(&tampered));
        let p = plan(&PlanInput {
            desired: std::slice::from_ref(&www),
            observed: &observed,
            owned: &owned(&[&www]),
            prune: false,
        });
        assert_eq!(p.drifted, vec![www.key()]);
        assert_eq!(
            p.changes,
            vec![Change::Replace {
                old: tampered,
                new: www.clone()
            }]
        );
        assert!(p.clone().without_drift_corrections().is_empty());
        // An owned RRset deleted out of band is drift too, corrected by an Add.
        let gone = zone(&[]);
        let p = plan(&PlanInput {
            desired: std::slice::from_ref(&www),
            observed: &gone,
            owned: &owned(&[&www]),
            prune: false,
        });
        assert_eq!(p.drifted, vec![www.key()]);
        assert_eq!(p.changes, vec![Change::Add(www)]);
    }

    #[test]
    fn apex_ns_and_soa_are_never_planned_unless_listed() {
        let observed = zone(&[]);
        let ns = rrset("@", RecordType::NS, 300, &["ns1", "ns2"]);
        let p = plan(&PlanInput {
            desired: std::slice::from_ref(&ns),
            observed: &observed,
            owned: &Owned::new(),
            prune: true,
        });
        assert_eq!(p.counts(), (0, 1, 0), "listed apex NS is managed");
        let p = plan(&PlanInput {
            desired: &[],
            observed: &observed,
            owned: &Owned::new(),
            prune: true,
        });
        assert!(p.is_empty());
    }

    #[test]
    fn guard_counts_records_and_percent() {
        let sets: Vec<RRset> = (0..20)
            .map(|i| rrset(&format!("h{i}"), RecordType::A, 300, &["192.0.2.1"]))
            .collect();
        let observed = zone(&sets);
        let refs: Vec<&RRset> = sets.iter().collect();
        let p = plan(&PlanInput {
            desired: &sets[..10],
            observed: &observed,
            owned: &owned(&refs),
            prune: false,
        });
        assert_eq!(p.deleted_rr_count(), 10);
        let g = Guard {
            max_deletes: 100,
            max_delete_percent: 30,
        };
        let err = check_guard(&p, observed.record_count(), &g).unwrap_err();
        assert!(err.to_string().contains("delete 10 of 22 records"), "{err}");
        assert!(err.to_string().contains("maxDeletePercent 30%"), "{err}");
        check_guard(
            &p,
            observed.record_count(),
            &Guard {
                max_deletes: 100,
                max_delete_percent: 50,
            },
        )
        .unwrap();
        let err = check_guard(
            &p,
            observed.record_count(),
            &Guard {
                max_deletes: 5,
                max_delete_percent: 100,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("maxDeletes 5"));
        // Small zones: the percentage does not apply below the floor.
        let small = zone(&sets[..3]);
        let p = plan(&PlanInput {
            desired: &sets[..1],
            observed: &small,
            owned: &owned(&refs[..3]),
            prune: false,
        });
        check_guard(&p, small.record_count(), &g).unwrap();
    }

    #[test]
    fn zone_diff_lists_every_change_but_the_soa() {
        let a = rrset("a", RecordType::A, 300, &["192.0.2.1"]);
        let b = rrset("b", RecordType::A, 300, &["192.0.2.2"]);
        let b2 = rrset("b", RecordType::A, 60, &["192.0.2.2"]);
        let c = rrset("c", RecordType::TXT, 300, &["\"new\""]);
        let old = zone(&[a.clone(), b.clone()]);
        let mut new = zone(&[b2.clone(), c.clone()]);
        new.insert(Record::from_rdata(origin(), 300, soa(2)));
        let d = zone_diff(&old, &new);
        assert_eq!(
            d,
            vec![
                Change::Delete(a),
                Change::Replace { old: b, new: b2 },
                Change::Add(c.clone())
            ]
        );
        assert_eq!(
            change_lines(&d[2..]),
            vec!["+ c.example.com. 300 IN TXT \"new\"".to_string()]
        );
        assert!(zone_diff(&new, &new).is_empty());
    }

    /// Whatever order a transfer sends in (canonical, as BIND and Knot do; arbitrary, with
    /// RRsets split; with upper case midway), the streamed diff gives the zone record
    /// inserts give and exactly `zone_diff` of it.
    #[test]
    fn a_streamed_diff_is_the_inserted_zone_and_its_zone_diff() {
        use crate::dns::model::test_support::upper;
        use proptest::prelude::*;
        let names = [
            "example.com.",
            "a.example.com.",
            "b.a.example.com.",
            "c.example.com.",
            "*.c.example.com.",
            "d.example.com.",
        ];
        let record = |(n, t, v, ttl, up): (usize, u8, u8, u32, bool)| {
            let mut name = Name::from_ascii(names[n]).unwrap();
            if up {
                name = upper(&name);
            }
            let (rtype, data) = match t {
                0 => (RecordType::A, format!("192.0.2.{v}")),
                1 => (RecordType::MX, format!("{v} mx{v}.example.com.")),
                2 => (RecordType::TXT, format!("\"t{v}\"")),
                _ => return Record::from_rdata(origin(), ttl, soa(u32::from(v))),
            };
            Record::from_rdata(name, ttl, parse_rdata(rtype, &origin(), &data).unwrap())
        };
        let inserted = |records: &[Record]| {
            let mut zone = Zone::new(origin());
            records.iter().for_each(|r| zone.insert(r.clone()));
            zone
        };
        let spec = (
            0..names.len(),
            0..4u8,
            0..3u8,
            1..3u32,
            proptest::bool::weighted(0.1),
        );
        let specs = || proptest::collection::vec(spec.clone(), 0..30);
        proptest!(ProptestConfig::with_cases(400), |(old in specs(), new in specs(), order in 0..3u8)| {
            let old = inserted(&old.into_iter().map(record).collect::<Vec<_>>());
            let mut stream: Vec<Record> = new.into_iter().map(record).collect();
            if order > 0 {
                // As a server sends it: each RRset whole, in canonical order.
                let zone = inserted(&stream);
                stream = zone.rrsets().flat_map(|s| s.records().collect::<Vec<_>>()).collect();
                if order == 1 {
                    for r in &mut stream {
                        r.set_name(r.name().to_lowercase());
                    }
                }
            }
            let mut streamed = StreamDiff::new(&old);
            stream.iter().for_each(|r| streamed.push(r.clone()));
            let (zone, changes) = streamed.finish();
            let expected = inserted(&stream);
            prop_assert_eq!(&zone, &expected);
            prop_assert_eq!(zone.record_count(), expected.record_count());
            prop_assert_eq!(changes, zone_diff(&old, &expected));
        });
    }
}
