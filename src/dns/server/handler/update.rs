//! RFC 2136 UPDATE in the embedded server: the zone check, prerequisites (RFC 2136 §3.2), the
//! prescan (§3.4.1) and the changes, applied to a copy and swapped in only when all ran.

#[allow(clippy::wildcard_imports)]
use super::*;

/// RFC 2136 UPDATE: zone check, prerequisites, prescan, then the changes applied to a copy
/// of the RRsets they touch, swapped into the zone only when all of them ran.
pub(super) fn update(shared: &Shared, request: &Message) -> (Vec<Message>, Option<(Name, u32)>) {
    let reply = |code| vec![response_to(request, code)];
    let [zq] = request.queries() else {
        return (reply(ResponseCode::FormErr), None);
    };
    if zq.query_type() != RecordType::SOA {
        return (reply(ResponseCode::FormErr), None);
    }
    let mut zones = shared.write();
    let Some(served) = zones.get_mut(&zone_key(zq.name())) else {
        return (reply(ResponseCode::NotAuth), None);
    };
    let origin = served.zone.origin().clone();
    if let Err(code) = check_prerequisites(&served.zone, request.answers()) {
        return (reply(code), None);
    }
    let updates = request.name_servers();
    if let Err(code) = prescan(&origin, updates) {
        return (reply(code), None);
    }
    // The updates run on a copy of the RRsets they can touch (every RRset at their names,
    // and the apex SOA); the served zone gets the result only when all of them ran, so a
    // panic half-way leaves it as it was. Copying only the touched part keeps an UPDATE as
    // cheap on a big zone as on a small one.
    let from_soa = soa_record(&served.zone);
    let old_serial = served.zone.soa_serial().unwrap_or(0);
    let mut copy = Zone::new(origin.clone());
    let mut before: BTreeMap<RRsetKey, Option<RRset>> = BTreeMap::new();
    let soa_key = zone_key(&origin);
    if let Some(soa) = served.zone.get(&soa_key) {
        copy.insert_rrset(soa.clone());
        before.insert(soa_key.clone(), Some(soa));
    }
    for record in updates {
        for set in served.zone.rrsets_at(record.name()) {
            if let std::collections::btree_map::Entry::Vacant(e) = before.entry(set.key()) {
                copy.insert_rrset(set.clone());
                e.insert(Some(set));
            }
        }
        before
            .entry(RRsetKey::new(record.name(), record.record_type()))
            .or_insert(None);
    }
    for record in updates {
        apply_one(&mut copy, record);
    }
    let changed = before.iter().any(|(key, old)| *old != copy.get(key));
    if !changed {
        return (reply(ResponseCode::NoError), None);
    }
    // An UPDATE that set a newer serial itself keeps it; otherwise the serial moves by one.
    let new_serial = match copy.soa_serial() {
        Some(s) if crate::dns::wire::serial_gt(s, old_serial) => s,
        _ => next_serial(old_serial),
    };
    copy.set_soa_serial(new_serial);
    // The swap: every RRset the copy covers replaces (or removes) the served one.
    for key in before.keys() {
        match copy.get(key) {
            Some(set) => Arc::make_mut(&mut served.zone).insert_rrset(set),
            None => {
                Arc::make_mut(&mut served.zone).remove_rrset(key);
            }
        }
    }
    if let (Some(from_soa), Some(to_soa)) = (from_soa, soa_record(&served.zone)) {
        let mut entry = JournalEntry {
            from_soa,
            to_soa,
            deleted: Vec::new(),
            added: Vec::new(),
        };
        for (key, old) in &before {
            rrset_delta(
                old.as_ref(),
                served.zone.get(key).as_ref(),
                &mut entry.deleted,
                &mut entry.added,
            );
        }
        push_journal(served, entry, shared.journal_limit);
    }
    (reply(ResponseCode::NoError), Some((origin, new_serial)))
}

fn next_serial(serial: u32) -> u32 {
    // Serial 0 is avoided because some secondaries treat it as "unset".
    match serial.wrapping_add(1) {
        0 => 1,
        s => s,
    }
}

fn name_in_use(zone: &Zone, name: &Name) -> bool {
    zone.rrsets_at(name).next().is_some()
}

/// RFC 2136 §3.2.
fn check_prerequisites(zone: &Zone, prereqs: &[Record]) -> Result<(), ResponseCode> {
    let origin = zone.origin();
    // Value-dependent prerequisites are compared as whole RRsets (§3.2.5).
    let mut wanted: BTreeMap<RRsetKey, Vec<RData>> = BTreeMap::new();
    for r in prereqs {
        if r.ttl() != 0 {
            return Err(ResponseCode::FormErr);
        }
        if !in_zone(r.name(), origin) {
            return Err(ResponseCode::NotZone);
        }
        let empty = matches!(r.data(), RData::Update0(_));
        match r.dns_class() {
            DNSClass::ANY => {
                if !empty {
                    return Err(ResponseCode::FormErr);
                }
                if r.record_type() == RecordType::ANY {
                    if !name_in_use(zone, r.name()) {
                        return Err(ResponseCode::NXDomain);
                    }
                } else if zone
                    .get(&RRsetKey::new(r.name(), r.record_type()))
                    .is_none()
                {
                    return Err(ResponseCode::NXRRSet);
                }
            }
            DNSClass::NONE => {
                if !empty {
                    return Err(ResponseCode::FormErr);
                }
                if r.record_type() == RecordType::ANY {
                    if name_in_use(zone, r.name()) {
                        return Err(ResponseCode::YXDomain);
                    }
                } else if zone
                    .get(&RRsetKey::new(r.name(), r.record_type()))
                    .is_some()
                {
                    return Err(ResponseCode::YXRRSet);
                }
            }
            DNSClass::IN => {
                if empty || r.record_type() == RecordType::ANY {
                    return Err(ResponseCode::FormErr);
                }
                wanted
                    .entry(RRsetKey::new(r.name(), r.record_type()))
                    .or_default()
                    .push(r.data().clone());
            }
            _ => return Err(ResponseCode::NotAuth),
        }
    }
    for (key, rdatas) in wanted {
        let want = RRset::new(key.name.clone(), key.rtype, 0, rdatas);
        match zone.get(&key) {
            Some(have) if have.same_data(&want) => {}
            _ => return Err(ResponseCode::NXRRSet),
        }
    }
    Ok(())
}

/// RFC 2136 §3.4.1: refuse the whole UPDATE before touching anything.
fn prescan(origin: &Name, updates: &[Record]) -> Result<(), ResponseCode> {
    for r in updates {
        if !in_zone(r.name(), origin) {
            return Err(ResponseCode::NotZone);
        }
        let rtype = r.record_type();
        let meta = matches!(
            rtype,
            RecordType::AXFR | RecordType::IXFR | RecordType::OPT | RecordType::TSIG
        ) || u16::from(rtype) == 254;
        let empty = matches!(r.data(), RData::Update0(_));
        match r.dns_class() {
            DNSClass::IN => {
                if rtype == RecordType::ANY || meta || empty {
                    return Err(ResponseCode::FormErr);
                }
            }
            DNSClass::ANY => {
                if r.ttl() != 0 || !empty || (meta && rtype != RecordType::ANY) {
                    return Err(ResponseCode::FormErr);
                }
            }
            DNSClass::NONE => {
                if r.ttl() != 0 || rtype == RecordType::ANY || meta || empty {
                    return Err(ResponseCode::FormErr);
                }
            }
            _ => return Err(ResponseCode::FormErr),
        }
    }
    Ok(())
}

/// RFC 2136 §3.4.2 for one update record (already prescanned).
fn apply_one(zone: &mut Zone, r: &Record) {
    let origin = zone.origin().clone();
    let at_apex = name_eq(r.name(), &origin);
    let rtype = r.record_type();
    match r.dns_class() {
        DNSClass::IN => {
            if rtype == RecordType::SOA {
                // Only the apex SOA, and only forward: a stale SOA is ignored (§3.4.2.2).
                if at_apex
                    && let (Some(new), Some(old)) = (soa_serial_of(r), zone.soa_serial())
                    && crate::dns::wire::serial_gt(new, old)
                {
                    zone.insert_rrset(RRset::new(
                        origin,
                        RecordType::SOA,
                        r.ttl(),
                        vec![r.data().clone()],
                    ));
                }
                return;
            }
            let has_cname = zone
                .get(&RRsetKey::new(r.name(), RecordType::CNAME))
                .is_some();
            let has_other = zone.rrsets_at(r.name()).any(|s| {
                !matches!(
                    s.rtype,
                    RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC
                )
            });
            // CNAME and other data cannot share a name (§3.4.2.2): the addition is ignored.
            if (rtype == RecordType::CNAME && has_other)
                || (rtype != RecordType::CNAME && has_cname)
            {
                return;
            }
            if rtype == RecordType::CNAME {
                zone.remove_rrset(&RRsetKey::new(r.name(), RecordType::CNAME));
            }
            // A new record's TTL becomes the RRset's, as BIND does.
            let key = RRsetKey::new(r.name(), rtype);
            let mut rdatas = zone.get(&key).map(|s| s.rdatas.clone()).unwrap_or_default();
            rdatas.push(r.data().clone());
            zone.insert_rrset(RRset::new(r.name().clone(), rtype, r.ttl(), rdatas));
        }
        DNSClass::ANY => {
            if rtype == RecordType::ANY {
                let keys: Vec<RRsetKey> = zone
                    .rrsets_at(r.name())
                    .filter(|s| !(at_apex && matches!(s.rtype, RecordType::SOA | RecordType::NS)))
                    .map(|s| s.key())
                    .collect();
                for key in keys {
                    zone.remove_rrset(&key);
                }
            } else if !(at_apex && matches!(rtype, RecordType::SOA | RecordType::NS)) {
                zone.remove_rrset(&RRsetKey::new(r.name(), rtype));
            }
        }
        DNSClass::NONE => {
            if rtype == RecordType::SOA {
                return;
            }
            if at_apex && rtype == RecordType::NS {
                let key = RRsetKey::new(r.name(), rtype);
                if zone.get(&key).is_some_and(|s| s.len() <= 1) {
                    return;
                }
            }
            zone.remove(r);
        }
        _ => {}
    }
}
