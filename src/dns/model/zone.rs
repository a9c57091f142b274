//! The zone map: every RRset of a zone, stored compactly as canonical wire bytes.

use std::collections::BTreeMap;
use std::ops::Bound;

use hickory_proto::rr::rdata::{CNAME, NS, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::canonical::{decode_rdata, try_canonical_rdata, wire_rdata};
use super::rrset::{RRset, RRsetKey};

/// Bytes of the stack buffer a lookup key is built in; longer keys (impossible for names
/// within RFC 1035's 255-byte limit) fall back to the heap.
pub(super) const KEY_STACK: usize = 600;

/// Writes the zone map's key for `name`/`rtype`: lower-cased labels from the root, each
/// followed by `00 01` (a zero byte in a label is escaped as `00 ff`), the name closed by
/// `00 00`, then the type big-endian. Byte-wise order of these keys is canonical name order
/// (RFC 4034 6.1), then type order, so the map compares keys with memcmp instead of walking
/// hickory labels.
pub(super) fn write_key(name: &Name, rtype: RecordType, mut push: impl FnMut(u8)) {
    for label in name.iter().rev() {
        for &b in label {
            if b == 0 {
                push(0);
                push(0xff);
            } else {
                push(b.to_ascii_lowercase());
            }
        }
        push(0);
        push(1);
    }
    push(0);
    push(0);
    let [hi, lo] = u16::from(rtype).to_be_bytes();
    push(hi);
    push(lo);
}

/// The key of `name`/`rtype`, built in `stack` (or `heap` when it does not fit): no
/// allocation for a lookup.
pub(super) fn key_slice<'b>(
    name: &Name,
    rtype: RecordType,
    stack: &'b mut [u8; KEY_STACK],
    heap: &'b mut Vec<u8>,
) -> &'b [u8] {
    let mut len = 0usize;
    let mut fits = true;
    write_key(name, rtype, |b| {
        if let Some(slot) = stack.get_mut(len) {
            *slot = b;
            len += 1;
        } else {
            fits = false;
        }
    });
    if fits {
        &stack[..len]
    } else {
        write_key(name, rtype, |b| heap.push(b));
        heap
    }
}

/// A zone's content: its origin and every RRset, SOA included.
///
/// RRsets are kept compact, as canonical wire bytes (see [`Stored`]), and handed out as
/// owned [`RRset`]s: a million-record zone is a few hundred megabytes smaller than one
/// holding hickory's 192-byte `RData` and 80-byte `Name` per record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    origin: Name,
    /// RRsets by [`write_key`] bytes, hence in canonical order.
    rrsets: BTreeMap<Box<[u8]>, Stored>,
    /// Records over all RRsets, kept up to date by every mutation.
    records: usize,
}

/// One RRset inside a [`Zone`]: its TTL and the canonical wire RDATA (RFC 4034 6.2) of each
/// record. Owner name and type are in the map key. Canonical bytes are what DNS compares,
/// so equality and the diff are memcmp.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    ttl: u32,
    /// Canonical RDATA of each record, sorted, no duplicates.
    rdatas: Vec<Box<[u8]>>,
    /// What the canonical bytes would not give back, kept only when there is some.
    verbatim: Option<Box<Verbatim>>,
}

/// The parts of an RRset as received that canonical form loses: upper-case letters in the
/// owner name or in embedded names that canonical form lower-cases, and data hickory
/// cannot encode.
#[derive(Clone, Debug, Default)]
pub(super) struct Verbatim {
    owner: Option<Name>,
    /// Records by their canonical bytes.
    rdatas: Vec<(Box<[u8]>, RData)>,
}

impl PartialEq for Stored {
    // Case is not data (RFC 4343): the verbatim parts do not count.
    fn eq(&self, other: &Self) -> bool {
        self.ttl == other.ttl && self.rdatas == other.rdatas
    }
}

impl Eq for Stored {}

/// Canonical bytes of `rdata`, and whether decoding them would not give `rdata` back.
pub(super) fn encode_stored(rdata: &RData) -> (Box<[u8]>, bool) {
    let Some(canonical) = try_canonical_rdata(rdata) else {
        return (wire_rdata(rdata).into(), true);
    };
    let differs = embedded_names_have_upper(rdata);
    (canonical.into(), differs)
}

/// Whether a name that canonical form lower-cases (hickory's encoder does so for NS,
/// CNAME, PTR, ANAME, MX, SRV and SOA; [`canonical_rdata`] for NAPTR) has upper case.
pub(super) fn embedded_names_have_upper(rdata: &RData) -> bool {
    let names: [Option<&Name>; 2] = match rdata {
        RData::NS(NS(n)) | RData::CNAME(CNAME(n)) | RData::PTR(PTR(n)) => [Some(n), None],
        RData::ANAME(a) => [Some(&a.0), None],
        RData::MX(mx) => [Some(mx.exchange()), None],
        RData::SRV(srv) => [Some(srv.target()), None],
        RData::NAPTR(n) => [Some(n.replacement()), None],
        RData::SOA(soa) => [Some(soa.mname()), Some(soa.rname())],
        _ => [None, None],
    };
    names.into_iter().flatten().any(has_upper)
}

pub(super) fn has_upper(name: &Name) -> bool {
    name.iter().any(|l| l.iter().any(u8::is_ascii_uppercase))
}

impl Stored {
    fn new(owner: &Name, ttl: u32) -> Self {
        Self {
            ttl,
            rdatas: Vec::new(),
            verbatim: has_upper(owner).then(|| {
                Box::new(Verbatim {
                    owner: Some(owner.clone()),
                    rdatas: Vec::new(),
                })
            }),
        }
    }

    fn from_rrset(rrset: RRset) -> Self {
        let mut stored = Self::new(&rrset.name, rrset.ttl);
        for rdata in rrset.rdatas {
            stored.insert(rdata);
        }
        stored
    }

    /// Adds one record keeping the order; false when it was already there.
    fn insert(&mut self, rdata: RData) -> bool {
        let (bytes, keep) = encode_stored(&rdata);
        // Servers usually send an RRset in canonical order: appending is the common case.
        let pos = match self.rdatas.last() {
            None => 0,
            Some(last) if **last < *bytes => self.rdatas.len(),
            Some(_) => match self.rdatas.binary_search(&bytes) {
                Ok(_) => return false,
                Err(pos) => pos,
            },
        };
        if keep {
            self.verbatim
                .get_or_insert_with(Box::default)
                .rdatas
                .push((bytes.clone(), rdata));
        }
        self.rdatas.insert(pos, bytes);
        true
    }

    /// Removes one record; false when it was not there.
    fn remove(&mut self, rdata: &RData) -> bool {
        let (bytes, _) = encode_stored(rdata);
        let Ok(pos) = self.rdatas.binary_search(&bytes) else {
            return false;
        };
        self.rdatas.remove(pos);
        if let Some(v) = self.verbatim.as_mut() {
            v.rdatas.retain(|(b, _)| *b != bytes);
        }
        true
    }

    fn len(&self) -> usize {
        self.rdatas.len()
    }

    /// The RRset stored under `key`.
    fn to_rrset(&self, key: &[u8]) -> RRset {
        let rtype = key_type(key);
        let verbatim = self.verbatim.as_deref();
        let name = verbatim
            .and_then(|v| v.owner.clone())
            .unwrap_or_else(|| key_name(key));
        let rdatas = self
            .rdatas
            .iter()
            .map(|bytes| {
                verbatim
                    .and_then(|v| v.rdatas.iter().find(|(b, _)| b == bytes))
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| decode_stored(rtype, bytes))
            })
            .collect();
        RRset {
            name,
            rtype,
            ttl: self.ttl,
            rdatas,
        }
    }
}

/// Decodes canonical bytes that hickory encoded itself. Should hickory not read back what
/// it wrote, the bytes are kept as opaque data of the type (RFC 3597), never dropped.
pub(super) fn decode_stored(rtype: RecordType, bytes: &[u8]) -> RData {
    decode_rdata(rtype, bytes).unwrap_or_else(|_| RData::Unknown {
        code: rtype,
        rdata: hickory_proto::rr::rdata::NULL::with(bytes.to_vec()),
    })
}

/// The record type at the end of a [`write_key`] key.
pub(super) fn key_type(key: &[u8]) -> RecordType {
    match key {
        [.., hi, lo] => RecordType::from(u16::from_be_bytes([*hi, *lo])),
        _ => RecordType::Unknown(0),
    }
}

/// The (lower-case) owner name of a [`write_key`] key.
pub(super) fn key_name(key: &[u8]) -> Name {
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut bytes = key.iter();
    while let Some(&b) = bytes.next() {
        if b != 0 {
            label.push(b);
            continue;
        }
        match bytes.next() {
            Some(0xff) => label.push(0),
            Some(1) => labels.push(std::mem::take(&mut label)),
            _ => break,
        }
    }
    labels.reverse();
    // The key was written from a valid name, so its labels make one again.
    let mut name = Name::from_labels(labels).unwrap_or_else(|_| Name::root());
    name.set_fqdn(true);
    name
}

/// Appends the owner name of a [`write_key`] key in uncompressed wire form.
pub(super) fn key_name_wire(key: &[u8], out: &mut Vec<u8>) {
    // Labels sit in the key from the root down; wire form wants them the other way round,
    // so find each label's span, then write them back to front.
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(8);
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = key.get(i) {
        if b != 0 {
            i += 1;
            continue;
        }
        match key.get(i + 1) {
            Some(0xff) => i += 2,
            Some(1) => {
                spans.push((start, i));
                i += 2;
                start = i;
            }
            // `00 00`: the name ends, the type follows.
            _ => break,
        }
    }
    for &(from, to) in spans.iter().rev() {
        let len_at = out.len();
        out.push(0);
        let mut j = from;
        while j < to {
            out.push(key[j]);
            // `00 ff` stands for a zero byte.
            j += if key[j] == 0 { 2 } else { 1 };
        }
        out[len_at] = u8::try_from(out.len() - len_at - 1).unwrap_or(63);
    }
    out.push(0);
}

/// One RRset of a zone as [`Zone::entries`] hands it out: compared without decoding.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    key: &'a [u8],
    stored: &'a Stored,
}

impl<'a> Entry<'a> {
    /// The map key: byte order is canonical order.
    pub(crate) fn key(self) -> &'a [u8] {
        self.key
    }

    pub(crate) fn rtype(self) -> RecordType {
        key_type(self.key)
    }

    /// Same TTL and data (case aside).
    pub(crate) fn same(self, other: Entry<'_>) -> bool {
        self.stored == other.stored
    }

    pub(crate) fn to_rrset(self) -> RRset {
        self.stored.to_rrset(self.key)
    }
}

impl Zone {
    /// An empty zone.
    pub fn new(origin: Name) -> Self {
        let mut origin = origin;
        origin.set_fqdn(true);
        Self {
            origin,
            rrsets: BTreeMap::new(),
            records: 0,
        }
    }

    /// Builds a zone from whole RRsets (a later RRset of the same key replaces an earlier one).
    pub fn from_rrsets(origin: Name, rrsets: impl IntoIterator<Item = RRset>) -> Self {
        let mut zone = Self::new(origin);
        for set in rrsets {
            zone.insert_rrset(set);
        }
        zone
    }

    /// Adds one record, merging it into its RRset; a duplicate is ignored. When records
    /// of one RRset disagree on the TTL the lowest wins (RFC 2181 5.2).
    pub fn insert(&mut self, record: Record) {
        let rtype = record.record_type();
        let parts = record.into_parts();
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(&parts.name_labels, rtype, &mut stack, &mut heap);
        if let Some(set) = self.rrsets.get_mut(key) {
            set.ttl = set.ttl.min(parts.ttl);
            if set.insert(parts.rdata) {
                self.records += 1;
            }
            return;
        }
        let mut set = Stored::new(&parts.name_labels, parts.ttl);
        set.insert(parts.rdata);
        self.rrsets.insert(key.into(), set);
        self.records += 1;
    }

    /// Removes one record (matched by data; TTL ignored); drops the RRset when it empties.
    pub fn remove(&mut self, record: &Record) {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(record.name(), record.record_type(), &mut stack, &mut heap);
        if let Some(set) = self.rrsets.get_mut(key) {
            if set.remove(record.data()) {
                self.records -= 1;
            }
            if set.rdatas.is_empty() {
                self.rrsets.remove(key);
            }
        }
    }

    /// Puts a whole RRset in place of whatever the zone had under its key.
    pub fn insert_rrset(&mut self, rrset: RRset) {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(&rrset.name, rrset.rtype, &mut stack, &mut heap);
        let stored = Stored::from_rrset(rrset);
        let added = stored.len();
        let old = if added == 0 {
            self.rrsets.remove(key)
        } else {
            self.rrsets.insert(key.into(), stored)
        };
        self.records = self.records + added - old.map_or(0, |s| s.len());
    }

    /// Removes a whole RRset.
    pub fn remove_rrset(&mut self, key: &RRsetKey) -> Option<RRset> {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let k = key_slice(&key.name, key.rtype, &mut stack, &mut heap);
        let old = self.rrsets.remove(k)?;
        self.records -= old.len();
        Some(old.to_rrset(k))
    }

    /// The RRset under `key`.
    pub fn get(&self, key: &RRsetKey) -> Option<RRset> {
        self.get_by(&key.name, key.rtype)
    }

    /// The RRset of `name`/`rtype` (ASCII case ignored), without building an [`RRsetKey`].
    pub fn get_by(&self, name: &Name, rtype: RecordType) -> Option<RRset> {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(name, rtype, &mut stack, &mut heap);
        self.rrsets.get(key).map(|s| s.to_rrset(key))
    }

    /// Whether the zone holds exactly `rrset` (same TTL and data; case aside), without
    /// decoding what it holds.
    pub fn holds(&self, rrset: &RRset) -> bool {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(&rrset.name, rrset.rtype, &mut stack, &mut heap);
        self.rrsets.get(key).is_some_and(|have| {
            have.ttl == rrset.ttl && have.len() == rrset.len() && {
                let mut want: Vec<Box<[u8]>> =
                    rrset.rdatas.iter().map(|r| encode_stored(r).0).collect();
                want.sort();
                want.dedup();
                want == have.rdatas
            }
        })
    }

    /// Whether the zone has an RRset of `name`/`rtype`.
    pub fn contains(&self, name: &Name, rtype: RecordType) -> bool {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        self.rrsets
            .contains_key(key_slice(name, rtype, &mut stack, &mut heap))
    }

    /// Every RRset in canonical name order, decoded as it is reached.
    pub fn rrsets(&self) -> impl Iterator<Item = RRset> + '_ {
        self.rrsets.iter().map(|(k, s)| s.to_rrset(k))
    }

    /// Hands `out` every record in wire form (owner name uncompressed, class IN), in
    /// canonical order. Records are written from the stored bytes; only those with case
    /// kept aside go through hickory's encoder.
    pub fn write_records<E>(&self, mut out: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E>
    where
        E: From<String>,
    {
        let mut buf = Vec::with_capacity(512);
        let mut owner = Vec::with_capacity(256);
        for (key, stored) in &self.rrsets {
            if stored.verbatim.is_some() {
                for record in stored.to_rrset(key).records() {
                    buf.clear();
                    let mut encoder = BinEncoder::new(&mut buf);
                    record
                        .emit(&mut encoder)
                        .map_err(|e| E::from(e.to_string()))?;
                    out(&buf)?;
                }
                continue;
            }
            owner.clear();
            key_name_wire(key, &mut owner);
            let rtype = u16::from(key_type(key)).to_be_bytes();
            for rdata in &stored.rdatas {
                let len = u16::try_from(rdata.len())
                    .map_err(|_| E::from(format!("{} bytes of record data", rdata.len())))?;
                buf.clear();
                buf.extend_from_slice(&owner);
                buf.extend_from_slice(&rtype);
                buf.extend_from_slice(&1u16.to_be_bytes());
                buf.extend_from_slice(&stored.ttl.to_be_bytes());
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(rdata);
                out(&buf)?;
            }
        }
        Ok(())
    }

    /// Every RRset in canonical order, undecoded: two zones' entries can be merged by
    /// comparing the keys' bytes.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.rrsets
            .iter()
            .map(|(key, stored)| Entry { key, stored })
    }

    /// Number of RRsets.
    pub fn rrset_count(&self) -> usize {
        self.rrsets.len()
    }

    /// Number of resource records (kept as the zone changes, O(1)).
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// The apex SOA's serial, when the zone holds one.
    pub fn soa_serial(&self) -> Option<u32> {
        let set = self.get_by(&self.origin, RecordType::SOA)?;
        set.rdatas.iter().find_map(|r| match r {
            RData::SOA(soa) => Some(soa.serial()),
            _ => None,
        })
    }

    /// The zone's origin.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Rewrites the apex SOA's serial (nothing when the zone has no SOA). IXFR steps leave
    /// the SOA out, so a snapshot brought forward incrementally takes the new serial here.
    pub fn set_soa_serial(&mut self, serial: u32) {
        let Some(mut set) = self.get_by(&self.origin, RecordType::SOA) else {
            return;
        };
        for rdata in &mut set.rdatas {
            if let RData::SOA(soa) = rdata {
                *soa = hickory_proto::rr::rdata::SOA::new(
                    soa.mname().clone(),
                    soa.rname().clone(),
                    serial,
                    soa.refresh(),
                    soa.retry(),
                    soa.expire(),
                    soa.minimum(),
                );
            }
        }
        self.insert_rrset(set);
    }

    /// Every RRset owned by `name` (ASCII case ignored), in type order.
    pub fn rrsets_at<'a>(&'a self, name: &Name) -> impl Iterator<Item = RRset> + use<'a> {
        let low = owned_key(name, RecordType::Unknown(0));
        let high = owned_key(name, RecordType::Unknown(u16::MAX));
        self.rrsets
            .range::<[u8], _>((Bound::Included(&low[..]), Bound::Included(&high[..])))
            .map(|(key, set)| set.to_rrset(key))
    }

    /// Whether some RRset is owned by a name strictly below `name`: an empty non-terminal
    /// exists (NODATA, not NXDOMAIN). Descendants follow their ancestor in canonical order
    /// and share its key prefix (the labels, without the `00 00` that closes the name).
    pub fn has_descendants(&self, name: &Name) -> bool {
        let high = owned_key(name, RecordType::Unknown(u16::MAX));
        let prefix = &high[..high.len() - 4];
        self.rrsets
            .range::<[u8], _>((Bound::Excluded(&high[..]), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix) && !k[prefix.len()..].starts_with(&[0, 0]))
    }
}

/// The map key of `name`/`rtype` on the heap, for range bounds.
pub(crate) fn owned_key(name: &Name, rtype: RecordType) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    write_key(name, rtype, |b| key.push(b));
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::test_support::*;
    use crate::dns::model::*;
    use hickory_proto::rr::rdata::{A, CNAME, MX, SOA, TXT};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use hickory_proto::serialize::binary::BinDecoder;
    use std::str::FromStr;

    #[test]
    fn zone_keys_follow_canonical_order_and_count_records() {
        let labels: Vec<Vec<&[u8]>> = vec![
            vec![b"example", b"com"],
            vec![b"a", b"example", b"com"],
            vec![b"A\x00", b"example", b"com"],
            vec![b"a\x01", b"example", b"com"],
            vec![b"a\x00b", b"example", b"com"],
            vec![b"Z", b"a", b"example", b"com"],
            vec![b"*", b"z", b"example", b"com"],
            vec![b"\xff", b"example", b"com"],
            vec![b"ab", b"example", b"com"],
            vec![b"b", b"example", b"com"],
            vec![b"example", b"net"],
        ];
        let mut zone = Zone::new(origin());
        let mut keys = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            let mut name = Name::from_labels(l.iter().copied()).unwrap();
            name.set_fqdn(true);
            for rtype in [RecordType::TXT, RecordType::A] {
                let octet = u8::try_from(i).unwrap();
                let data = if rtype == RecordType::A {
                    RData::A(A::new(192, 0, 2, octet))
                } else {
                    RData::TXT(TXT::new(vec![format!("t{i}")]))
                };
                zone.insert(Record::from_rdata(name.clone(), 300, data.clone()));
                // A duplicate is ignored and not counted.
                zone.insert(Record::from_rdata(upper(&name), 300, data));
                keys.push(RRsetKey::new(&name, rtype));
            }
        }
        keys.sort();
        let got: Vec<RRsetKey> = zone.rrsets().map(|s| s.key()).collect();
        assert_eq!(got, keys);
        assert_eq!(zone.record_count(), keys.len());
        let first = keys[0].clone();
        let second = Name::from_ascii("a.example.com.").unwrap();
        zone.insert(Record::from_rdata(
            second.clone(),
            300,
            RData::A(A::new(192, 0, 2, 200)),
        ));
        assert_eq!(zone.record_count(), keys.len() + 1);
        zone.remove(&Record::from_rdata(
            upper(&second),
            1,
            RData::A(A::new(192, 0, 2, 200)),
        ));
        assert_eq!(zone.record_count(), keys.len());
        assert!(zone.remove_rrset(&first).is_some());
        assert_eq!(zone.record_count(), keys.len() - 1);
        zone.insert_rrset(RRset::new(
            second.clone(),
            RecordType::A,
            60,
            vec![
                RData::A(A::new(192, 0, 2, 7)),
                RData::A(A::new(192, 0, 2, 8)),
            ],
        ));
        assert_eq!(zone.record_count(), keys.len());
        zone.insert_rrset(RRset::new(second.clone(), RecordType::A, 60, vec![]));
        assert_eq!(zone.record_count(), keys.len() - 2);
        let total: usize = zone.rrsets().map(|s| s.len()).sum();
        assert_eq!(zone.record_count(), total);
    }

    #[test]
    fn zone_streams_records_into_rrsets() {
        let mut zone = Zone::new(origin());
        let soa = SOA::new(
            Name::from_str("ns1.example.com.").unwrap(),
            Name::from_str("hostmaster.example.com.").unwrap(),
            42,
            3600,
            600,
            86400,
            300,
        );
        zone.insert(Record::from_rdata(origin(), 3600, RData::SOA(soa.clone())));
        let www = Name::from_str("www.example.com.").unwrap();
        for ip in ["192.0.2.2", "192.0.2.1", "192.0.2.3", "192.0.2.1"] {
            let r = parse_rdata(RecordType::A, &origin(), ip).unwrap();
            zone.insert(Record::from_rdata(www.clone(), 300, r));
        }
        zone.insert(Record::from_rdata(origin(), 3600, RData::SOA(soa)));
        assert_eq!(zone.soa_serial(), Some(42));
        assert_eq!(zone.record_count(), 4);
        assert_eq!(zone.rrset_count(), 2);
        let key = RRsetKey::new(&Name::from_str("WWW.Example.Com.").unwrap(), RecordType::A);
        let set = zone.get(&key).unwrap();
        assert_eq!(
            set.to_lines(),
            [
                "www.example.com. 300 IN A 192.0.2.1",
                "www.example.com. 300 IN A 192.0.2.2",
                "www.example.com. 300 IN A 192.0.2.3"
            ]
        );
        let records: Vec<Record> = set.records().collect();
        assert_eq!(records.len(), 3);
        for r in &records {
            zone.remove(r);
        }
        assert!(zone.get(&key).is_none(), "empty RRset dropped");
        assert_eq!(zone.record_count(), 1);
    }

    /// The compact store gives back what it was given: owner and embedded-name case,
    /// odd label bytes, every record; compares and answers `holds` ignoring case.
    #[test]
    fn zone_store_gives_back_what_it_was_given() {
        let mut zone = Zone::new(origin());
        let odd = Name::from_labels(vec![&b"A\x00b."[..], b"Example", b"com"]).unwrap();
        // Built directly: as a server sends them, with upper case in embedded names.
        let cname = RData::CNAME(CNAME(Name::from_ascii("Target.Example.com.").unwrap()));
        let mx = RData::MX(MX::new(10, Name::from_ascii("MX.example.com.").unwrap()));
        let txt = parse_rdata(RecordType::TXT, &origin(), "\"Mixed Case\"").unwrap();
        zone.insert(Record::from_rdata(odd.clone(), 300, cname.clone()));
        let www = Name::from_str("www.example.com.").unwrap();
        zone.insert(Record::from_rdata(www.clone(), 60, mx.clone()));
        zone.insert(Record::from_rdata(www.clone(), 60, txt.clone()));
        let got = zone.get_by(&odd, RecordType::CNAME).unwrap();
        assert_eq!(
            got.name.to_ascii(),
            odd.to_ascii(),
            "owner case and bytes kept"
        );
        // (Presentation text is canonical, lower case; the data keeps the case.)
        let RData::CNAME(CNAME(target)) = &got.rdatas[0] else {
            panic!("{:?}", got.rdatas)
        };
        assert_eq!(target.to_ascii(), "Target.Example.com.");
        let got = zone.get_by(&www, RecordType::MX).unwrap();
        assert_eq!(got.name.to_ascii(), "www.example.com.");
        let RData::MX(got_mx) = &got.rdatas[0] else {
            panic!("{:?}", got.rdatas)
        };
        assert_eq!(got_mx.exchange().to_ascii(), "MX.example.com.");
        assert_eq!(
            rdata_to_text(&zone.get_by(&www, RecordType::TXT).unwrap().rdatas[0]),
            "\"Mixed Case\""
        );
        // Equality and `holds` ignore name case, not TXT case.
        let lower = RRset::new(
            odd.to_lowercase(),
            RecordType::CNAME,
            300,
            vec![parse_rdata(RecordType::CNAME, &origin(), "target.example.com.").unwrap()],
        );
        assert!(zone.holds(&lower));
        let mut other = Zone::new(origin());
        other.insert_rrset(lower.clone());
        other.insert_rrset(zone.get_by(&www, RecordType::MX).unwrap());
        other.insert_rrset(zone.get_by(&www, RecordType::TXT).unwrap());
        assert_eq!(zone, other);
        let mut changed = other.clone();
        changed.insert_rrset(RRset::new(
            www.clone(),
            RecordType::TXT,
            60,
            vec![parse_rdata(RecordType::TXT, &origin(), "\"mixed case\"").unwrap()],
        ));
        assert_ne!(zone, changed);
        assert!(
            !zone.holds(&RRset {
                ttl: 301,
                ..lower.clone()
            }),
            "TTL counts"
        );
        // Removing the case-kept record by a lower-case copy empties the RRset.
        zone.remove(&Record::from_rdata(
            odd.to_lowercase(),
            300,
            lower.rdatas[0].clone(),
        ));
        assert!(!zone.contains(&odd, RecordType::CNAME));
        assert_eq!(zone.record_count(), 2);
        // Wire records come straight from the stored bytes, odd label bytes included.
        let odd_lower =
            Name::from_labels(vec![&b"a\x00b.\xff"[..], b"x", b"example", b"com"]).unwrap();
        zone.insert(Record::from_rdata(
            odd_lower.clone(),
            5,
            RData::A(A::new(192, 0, 2, 9)),
        ));
        let mut read_back = Zone::new(origin());
        zone.write_records(|wire: &[u8]| -> Result<(), String> {
            let mut decoder = BinDecoder::new(wire);
            use hickory_proto::serialize::binary::BinDecodable as _;
            read_back.insert(Record::read(&mut decoder).map_err(|e| e.to_string())?);
            Ok(())
        })
        .unwrap();
        assert_eq!(read_back, zone);
        assert_eq!(
            read_back
                .get_by(&odd_lower, RecordType::A)
                .unwrap()
                .name
                .to_ascii(),
            odd_lower.to_ascii()
        );
        zone.remove_rrset(&RRsetKey::new(&odd_lower, RecordType::A));
        // The SOA serial is rewritten in place, the rest of the SOA kept.
        let soa = SOA::new(
            Name::from_ascii("NS1.example.com.").unwrap(),
            Name::from_str("hostmaster.example.com.").unwrap(),
            7,
            3600,
            600,
            86400,
            300,
        );
        zone.insert(Record::from_rdata(origin(), 3600, RData::SOA(soa)));
        zone.set_soa_serial(8);
        assert_eq!(zone.soa_serial(), Some(8));
        let soa = zone.get_by(&origin(), RecordType::SOA).unwrap();
        let RData::SOA(got_soa) = &soa.rdatas[0] else {
            panic!("{:?}", soa.rdatas)
        };
        assert_eq!(got_soa.mname().to_ascii(), "NS1.example.com.");
        assert_eq!(
            (got_soa.serial(), got_soa.refresh(), got_soa.minimum()),
            (8, 3600, 300)
        );
    }
}
