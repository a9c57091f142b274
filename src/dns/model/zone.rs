//! The zone map: every RRset of a zone, stored compactly as canonical wire bytes.

use std::collections::BTreeMap;

use hickory_proto::rr::rdata::{CNAME, NS, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::canonical::{decode_rdata, try_canonical_rdata, wire_rdata};
use super::entry_set::EntrySet;
use super::packed_set::{View, pack};
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
/// Each RRset is one heap block of canonical wire bytes (see [`packed_set`]), handed out as
/// owned [`RRset`]s: a million-record zone is a few hundred megabytes smaller than one
/// holding hickory's 192-byte `RData` and 80-byte `Name` per record.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    /// RRsets as [`packed_set`] entries: their byte order is canonical order.
    rrsets: EntrySet,
    /// What canonical form lost, by map key, for the few RRsets that have some.
    verbatim: BTreeMap<Box<[u8]>, Verbatim>,
    /// Records over all RRsets, kept up to date by every mutation.
    records: usize,
}

impl PartialEq for Zone {
    // Case is not data (RFC 4343): what is kept verbatim does not count.
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin && self.records == other.records && self.rrsets == other.rrsets
    }
}

impl Eq for Zone {}

/// The parts of an RRset as received that canonical form loses: upper-case letters in the
/// owner name or in embedded names that canonical form lower-cases, and data hickory
/// cannot encode.
#[derive(Clone, Debug, Default)]
pub(super) struct Verbatim {
    owner: Option<Name>,
    /// Records by their canonical bytes.
    rdatas: Vec<(Box<[u8]>, RData)>,
}

impl Verbatim {
    fn is_empty(&self) -> bool {
        self.owner.is_none() && self.rdatas.is_empty()
    }
}

/// Canonical bytes of `rdata`, and whether decoding them would not give `rdata` back.
pub(super) fn encode_stored(rdata: &RData) -> (Box<[u8]>, bool) {
    let (bytes, differs) = encode_canonical(rdata);
    (bytes.into(), differs)
}

/// [`encode_stored`] without shrinking the buffer: for bytes about to be copied.
fn encode_canonical(rdata: &RData) -> (Vec<u8>, bool) {
    let Some(canonical) = try_canonical_rdata(rdata) else {
        return (wire_rdata(rdata), true);
    };
    let differs = embedded_names_have_upper(rdata);
    (canonical, differs)
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

/// The RRset of a packed entry, with what was kept verbatim for it.
fn to_rrset(view: View<'_>, verbatim: Option<&Verbatim>) -> RRset {
    let rtype = key_type(view.key);
    let name = verbatim
        .and_then(|v| v.owner.clone())
        .unwrap_or_else(|| key_name(view.key));
    let rdatas = view
        .rdatas()
        .map(|bytes| {
            verbatim
                .and_then(|v| v.rdatas.iter().find(|(b, _)| **b == *bytes))
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| decode_stored(rtype, bytes))
        })
        .collect();
    RRset {
        name,
        rtype,
        ttl: view.ttl,
        rdatas,
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

/// The byte spans of a [`write_key`] key's owner labels, from the root down as the key holds
/// them (`00 01` after each label, `00 ff` for a zero byte inside one, `00 00` at the end).
pub(super) fn key_label_spans(key: &[u8]) -> Vec<(usize, usize)> {
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
    spans
}

/// Appends the owner name of a [`write_key`] key in uncompressed wire form.
pub(super) fn key_name_wire(key: &[u8], out: &mut Vec<u8>) {
    // Wire form wants the labels leaf first: the key's spans, back to front.
    let spans = key_label_spans(key);
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
    view: View<'a>,
    verbatim: Option<&'a Verbatim>,
}

impl<'a> Entry<'a> {
    /// A packed RRset with nothing kept verbatim.
    pub(super) fn packed(entry: &'a [u8]) -> Self {
        Entry {
            view: View::of(entry),
            verbatim: None,
        }
    }

    /// The map key: byte order is canonical order.
    pub(crate) fn key(self) -> &'a [u8] {
        self.view.key
    }

    pub(crate) fn rtype(self) -> RecordType {
        key_type(self.view.key)
    }

    /// Same TTL and data (case aside).
    pub(crate) fn same(self, other: Entry<'_>) -> bool {
        self.view.value == other.view.value
    }

    pub(crate) fn to_rrset(self) -> RRset {
        to_rrset(self.view, self.verbatim)
    }
}

/// A record's parts for [`Zone::insert`].
struct Incoming<'k> {
    key: &'k [u8],
    owner: Name,
    ttl: u32,
    rdata: RData,
}

impl Zone {
    /// An empty zone.
    pub fn new(origin: Name) -> Self {
        let mut origin = origin;
        origin.set_fqdn(true);
        Self {
            origin,
            rrsets: EntrySet::default(),
            verbatim: BTreeMap::new(),
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

    /// A zone of packed entries, strictly ascending, holding `records` records in all (see
    /// `ZoneBuilder`).
    pub(super) fn from_sorted(origin: Name, entries: Vec<Box<[u8]>>, records: usize) -> Self {
        let mut zone = Self::new(origin);
        zone.rrsets = EntrySet::sorted(entries);
        zone.records = records;
        zone
    }

    /// The entry stored under `key`.
    fn find(&self, key: &[u8]) -> Option<&[u8]> {
        self.rrsets
            .from(key)
            .next()
            .filter(|entry| entry.starts_with(key))
    }

    /// The entry stored under `key`, copied out so the zone can change around it.
    fn find_owned(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.find(key).map(<[u8]>::to_vec)
    }

    /// Puts `new` in place of the entry `old` (both of one key).
    fn replace(&mut self, old: &[u8], new: Option<Box<[u8]>>) {
        match new {
            Some(new) => self.rrsets.replace(old, new),
            None => self.rrsets.remove(old),
        }
    }

    /// Adds one record, merging it into its RRset; a duplicate is ignored. When records
    /// of one RRset disagree on the TTL the lowest wins (RFC 2181 5.2).
    pub fn insert(&mut self, record: Record) {
        let rtype = record.record_type();
        let parts = record.into_parts();
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(&parts.name_labels, rtype, &mut stack, &mut heap);
        self.insert_parts(Incoming {
            key,
            owner: parts.name_labels,
            ttl: parts.ttl,
            rdata: parts.rdata,
        });
    }

    fn insert_parts(&mut self, incoming: Incoming<'_>) {
        let Incoming {
            key,
            owner,
            ttl,
            rdata,
        } = incoming;
        let (bytes, keep) = encode_canonical(&rdata);
        let Some(entry) = self.find_owned(key) else {
            self.rrsets.insert(pack(key, ttl, &[&bytes]));
            self.records += 1;
            let owner = has_upper(&owner).then_some(owner);
            if owner.is_some() || keep {
                let verbatim = Verbatim {
                    owner,
                    rdatas: keep
                        .then_some((bytes.into_boxed_slice(), rdata))
                        .into_iter()
                        .collect(),
                };
                self.verbatim.insert(key.into(), verbatim);
            }
            return;
        };
        let view = View::of(&entry);
        let mut rdatas: Vec<&[u8]> = view.rdatas().collect();
        // Servers usually send an RRset in canonical order: appending is the common case.
        let pos = match rdatas.last() {
            Some(last) if **last >= *bytes => rdatas.binary_search(&&bytes[..]).err(),
            _ => Some(rdatas.len()),
        };
        let lowest = view.ttl.min(ttl);
        if pos.is_none() && lowest == view.ttl {
            return;
        }
        if let Some(pos) = pos {
            rdatas.insert(pos, &bytes);
        }
        let new = pack(key, lowest, &rdatas);
        self.replace(&entry, Some(new));
        if pos.is_some() {
            self.records += 1;
            if keep {
                self.verbatim
                    .entry(key.into())
                    .or_default()
                    .rdatas
                    .push((bytes.into_boxed_slice(), rdata));
            }
        }
    }

    /// Removes one record (matched by data; TTL ignored); drops the RRset when it empties.
    pub fn remove(&mut self, record: &Record) {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(record.name(), record.record_type(), &mut stack, &mut heap);
        let Some(entry) = self.find_owned(key) else {
            return;
        };
        let (bytes, _) = encode_stored(record.data());
        let view = View::of(&entry);
        let before = view.rdatas().count();
        let rdatas: Vec<&[u8]> = view.rdatas().filter(|r| **r != *bytes).collect();
        if rdatas.len() == before {
            return;
        }
        self.records -= 1;
        if rdatas.is_empty() {
            self.replace(&entry, None);
            self.verbatim.remove(key);
            return;
        }
        let new = pack(key, view.ttl, &rdatas);
        self.replace(&entry, Some(new));
        if let Some(v) = self.verbatim.get_mut(key) {
            v.rdatas.retain(|(b, _)| *b != bytes);
            if v.is_empty() {
                self.verbatim.remove(key);
            }
        }
    }

    /// Puts a whole RRset in place of whatever the zone had under its key.
    pub fn insert_rrset(&mut self, rrset: RRset) {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(&rrset.name, rrset.rtype, &mut stack, &mut heap);
        let old = self.find_owned(key);
        if let Some(old) = &old {
            self.records -= View::of(old).rdatas().count();
        }
        self.verbatim.remove(key);
        let RRset {
            name, ttl, rdatas, ..
        } = rrset;
        let mut items: Vec<(Vec<u8>, Option<RData>)> = rdatas
            .into_iter()
            .map(|r| {
                let (bytes, keep) = encode_canonical(&r);
                (bytes, keep.then_some(r))
            })
            .collect();
        // Stable: of duplicates the first given is the one kept, as a record-by-record
        // insert would.
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items.dedup_by(|later, first| later.0 == first.0);
        let new = (!items.is_empty()).then(|| {
            let slices: Vec<&[u8]> = items.iter().map(|(b, _)| &b[..]).collect();
            pack(key, ttl, &slices)
        });
        match (old, new) {
            (Some(old), new) => self.replace(&old, new),
            (None, Some(new)) => self.rrsets.insert(new),
            (None, None) => {}
        }
        if items.is_empty() {
            return;
        }
        self.records += items.len();
        let verbatim = Verbatim {
            owner: has_upper(&name).then_some(name),
            rdatas: items
                .into_iter()
                .filter_map(|(b, r)| r.map(|r| (b.into_boxed_slice(), r)))
                .collect(),
        };
        if !verbatim.is_empty() {
            self.verbatim.insert(key.into(), verbatim);
        }
    }

    /// Removes a whole RRset.
    pub fn remove_rrset(&mut self, key: &RRsetKey) -> Option<RRset> {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let k = key_slice(&key.name, key.rtype, &mut stack, &mut heap);
        let entry = self.find_owned(k)?;
        let old = to_rrset(View::of(&entry), self.verbatim.get(k));
        self.records -= old.len();
        self.replace(&entry, None);
        self.verbatim.remove(k);
        Some(old)
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
        self.find(key)
            .map(|entry| to_rrset(View::of(entry), self.verbatim.get(key)))
    }

    /// Whether the zone holds exactly `rrset` (same TTL and data; case aside), without
    /// decoding what it holds.
    pub fn holds(&self, rrset: &RRset) -> bool {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        let key = key_slice(&rrset.name, rrset.rtype, &mut stack, &mut heap);
        self.find(key).map(View::of).is_some_and(|have| {
            have.ttl == rrset.ttl && have.rdatas().count() == rrset.len() && {
                let mut want: Vec<Vec<u8>> =
                    rrset.rdatas.iter().map(|r| encode_canonical(r).0).collect();
                want.sort();
                want.dedup();
                want.iter().map(|b| &b[..]).eq(have.rdatas())
            }
        })
    }

    /// [`Zone::holds`] for an RRset given by its zone map key, TTL and canonical RDATA in
    /// order without duplicates (as an RRset keeps them): no name or RDATA to encode.
    pub(crate) fn holds_canonical<'r>(
        &self,
        key: &[u8],
        ttl: u32,
        rdatas: impl Iterator<Item = &'r [u8]>,
    ) -> bool {
        self.find(key)
            .map(View::of)
            .is_some_and(|have| have.ttl == ttl && have.rdatas().eq(rdatas))
    }

    /// Whether the zone has an RRset of `name`/`rtype`.
    pub fn contains(&self, name: &Name, rtype: RecordType) -> bool {
        let mut stack = [0u8; KEY_STACK];
        let mut heap = Vec::new();
        self.find(key_slice(name, rtype, &mut stack, &mut heap))
            .is_some()
    }

    /// Every RRset in canonical name order, decoded as it is reached.
    pub fn rrsets(&self) -> impl Iterator<Item = RRset> + '_ {
        self.entries().map(Entry::to_rrset)
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
        for entry in self.entries() {
            if entry.verbatim.is_some() {
                for record in entry.to_rrset().records() {
                    buf.clear();
                    let mut encoder = BinEncoder::new(&mut buf);
                    record
                        .emit(&mut encoder)
                        .map_err(|e| E::from(e.to_string()))?;
                    out(&buf)?;
                }
                continue;
            }
            let view = entry.view;
            owner.clear();
            key_name_wire(view.key, &mut owner);
            let rtype = u16::from(key_type(view.key)).to_be_bytes();
            for rdata in view.rdatas() {
                let len = u16::try_from(rdata.len())
                    .map_err(|_| E::from(format!("{} bytes of record data", rdata.len())))?;
                buf.clear();
                buf.extend_from_slice(&owner);
                buf.extend_from_slice(&rtype);
                buf.extend_from_slice(&1u16.to_be_bytes());
                buf.extend_from_slice(&view.ttl.to_be_bytes());
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
        // The verbatim map is in key order too: walked beside the entries, not searched.
        let mut side = self.verbatim.iter().peekable();
        self.rrsets.iter().map(move |entry| {
            let view = View::of(entry);
            let mut verbatim = None;
            while let Some((k, v)) = side.peek() {
                match k[..].cmp(view.key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => verbatim = Some(*v),
                    std::cmp::Ordering::Greater => break,
                }
                side.next();
                if verbatim.is_some() {
                    break;
                }
            }
            Entry { view, verbatim }
        })
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
        // The name's keys are its labels, the closing `00 00`, then the type.
        let mut prefix = owned_key(name, RecordType::Unknown(0));
        prefix.truncate(prefix.len() - 2);
        self.rrsets
            .from(&prefix)
            .take_while(move |entry| entry.starts_with(&prefix))
            .map(|entry| {
                let view = View::of(entry);
                to_rrset(view, self.verbatim.get(view.key))
            })
    }

    /// Whether some RRset is owned by a name strictly below `name`: an empty non-terminal
    /// exists (NODATA, not NXDOMAIN). Descendants follow their ancestor in canonical order
    /// and share its key prefix (the labels, without the `00 00` that closes the name).
    pub fn has_descendants(&self, name: &Name) -> bool {
        let mut start = owned_key(name, RecordType::Unknown(0));
        start.truncate(start.len() - 4);
        let labels = start.len();
        // A child's next label starts with a byte above 00 or with `00 ff` (an escaped
        // zero): after `00 01`, which no key has there, and after the name's own `00 00`.
        start.extend_from_slice(&[0, 1]);
        self.rrsets
            .from(&start)
            .next()
            .is_some_and(|entry| entry.starts_with(&start[..labels]))
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
    /// Any sequence of record and RRset inserts and removals leaves the packed zone
    /// holding what a plain map of decoded RRsets holds: same RRsets in canonical order,
    /// same counts, names found under any case, descendants seen. Whether the zone starts
    /// empty or built from a transfer (a sorted vector that edits turn into a tree).
    #[test]
    fn packed_zone_matches_a_plain_map() {
        use proptest::prelude::*;
        use std::collections::{BTreeMap, BTreeSet};
        let names = [
            "example.com.",
            "a.example.com.",
            "B.a.example.com.",
            "c.example.com.",
            "*.c.example.com.",
        ];
        let op = (
            0..4u8,
            0..names.len(),
            any::<bool>(),
            0..3u8,
            0..4u8,
            1..4u32,
        );
        proptest!(ProptestConfig::with_cases(300), |(ops in proptest::collection::vec(op, 1..80), built in any::<bool>())| {
            let mut zone = Zone::new(origin());
            // key -> (ttl, canonical text of each record)
            let mut plain: BTreeMap<RRsetKey, (u32, BTreeSet<String>)> = BTreeMap::new();
            if built {
                let mut builder = super::super::ZoneBuilder::new(origin());
                for n in names {
                    let name = Name::from_ascii(n.to_ascii_lowercase()).unwrap();
                    let rdata = parse_rdata(RecordType::A, &origin(), "192.0.2.9").unwrap();
                    plain.insert(
                        RRsetKey::new(&name, RecordType::A),
                        (7, BTreeSet::from([rdata_to_text(&rdata)])),
                    );
                    builder.push(Record::from_rdata(name, 7, rdata));
                }
                zone = builder.finish();
                let sorted = matches!(zone.rrsets, EntrySet::Sorted { .. });
                prop_assert!(sorted, "a transfer's zone is a sorted vector");
            }
            for (kind, n, up, t, v, ttl) in ops {
                let mut name = Name::from_ascii(names[n]).unwrap();
                if up {
                    name = upper(&name);
                }
                let (rtype, data) = match t {
                    0 => (RecordType::A, format!("192.0.2.{v}")),
                    1 => (RecordType::MX, format!("{v} MX{v}.example.com.")),
                    _ => (RecordType::TXT, format!("\"t{v}\"")),
                };
                let rdata = parse_rdata(rtype, &origin(), &data).unwrap();
                let text = rdata_to_text(&rdata).to_ascii_lowercase();
                let key = RRsetKey::new(&name, rtype);
                match kind {
                    0 | 1 => {
                        zone.insert(Record::from_rdata(name, ttl, rdata));
                        let e = plain.entry(key).or_insert((ttl, BTreeSet::new()));
                        e.0 = e.0.min(ttl);
                        e.1.insert(text);
                    }
                    2 => {
                        zone.remove(&Record::from_rdata(name, ttl, rdata));
                        if let Some(e) = plain.get_mut(&key) {
                            e.1.remove(&text);
                            if e.1.is_empty() {
                                plain.remove(&key);
                            }
                        }
                    }
                    _ => {
                        if v == 0 {
                            zone.remove_rrset(&key);
                            plain.remove(&key);
                        } else {
                            zone.insert_rrset(RRset::new(name, rtype, ttl, vec![rdata.clone(), rdata]));
                            plain.insert(key, (ttl, BTreeSet::from([text])));
                        }
                    }
                }
            }
            let got: Vec<(RRsetKey, u32, BTreeSet<String>)> = zone
                .rrsets()
                .map(|s| {
                    let texts = s.rdatas.iter().map(|r| rdata_to_text(r).to_ascii_lowercase()).collect();
                    (s.key(), s.ttl, texts)
                })
                .collect();
            let want: Vec<(RRsetKey, u32, BTreeSet<String>)> =
                plain.iter().map(|(k, (ttl, t))| (k.clone(), *ttl, t.clone())).collect();
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(zone.rrset_count(), plain.len());
            prop_assert_eq!(zone.record_count(), plain.values().map(|v| v.1.len()).sum::<usize>());
            let mut copy = Zone::new(origin());
            zone.write_records(|wire: &[u8]| -> Result<(), String> {
                use hickory_proto::serialize::binary::BinDecodable as _;
                copy.insert(Record::read(&mut BinDecoder::new(wire)).map_err(|e| e.to_string())?);
                Ok(())
            }).unwrap();
            prop_assert!(copy == zone);
            for n in names {
                let name = upper(&Name::from_ascii(n).unwrap());
                let at: Vec<RRsetKey> = zone.rrsets_at(&name).map(|s| s.key()).collect();
                let want_at: Vec<RRsetKey> = plain.keys().filter(|k| name_eq(&k.name, &name)).cloned().collect();
                prop_assert_eq!(at, want_at);
                let below = plain.keys().any(|k| name.zone_of(&k.name) && !name_eq(&k.name, &name));
                prop_assert_eq!(zone.has_descendants(&name), below, "{}", n);
                for t in [RecordType::A, RecordType::MX, RecordType::TXT] {
                    let key = RRsetKey::new(&name, t);
                    prop_assert_eq!(zone.contains(&name, t), plain.contains_key(&key));
                    if let Some(set) = zone.get(&key) {
                        prop_assert!(zone.holds(&set));
                    }
                }
            }
        });
    }
}
