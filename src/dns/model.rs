//! The DNS record model: owner names, RRsets, zones and their canonical form.
//!
//! Presentation-format text (what users write in `spec.records[].data` and in
//! zone-file ConfigMaps) is parsed here into hickory-proto [`RData`]. Every
//! parser builds the record's *wire* form and lets hickory's wire decoder turn
//! it into an [`RData`], so whatever we accept is exactly what hickory (and the
//! server) will encode. hickory 0.25's own text parsers (feature `text-parsing`)
//! are not used: its lexer panics on tokens longer than 4095 characters and
//! decodes `\DDD` wrongly, its name parser reads `\DDD` as octal and refuses
//! valid names with `_` through IDNA, its DS parser drops an odd trailing hex
//! digit, its SVCB parser ignores `$ORIGIN` and can panic on a malformed `alpn`,
//! and none of them refuses trailing fields.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Bound;

use base64::Engine as _;
use hickory_proto::rr::domain::Label;
use hickory_proto::rr::rdata::{CNAME, MX, NAPTR, NS, PTR, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, Restrict};

use crate::api::dns_zone::RecordSet;
use crate::api::shared;

/// Most bytes the RDATA of one record may have (RFC 1035: RDLENGTH is 16 bits).
pub const MAX_RDATA_LEN: usize = 65_535;
/// Most bytes of one `<character-string>` (RFC 1035 3.3).
pub const MAX_CHAR_STRING: usize = 255;

/// Identifies one RRset: owner name (lower-cased, absolute) and type. Ordered by
/// canonical name order (RFC 4034 6.1), then type; comparison ignores ASCII case.
#[derive(Clone, Debug)]
pub struct RRsetKey {
    /// Owner name, lower-cased and absolute.
    pub name: Name,
    /// Record type.
    pub rtype: RecordType,
}

impl RRsetKey {
    /// Builds a key, lower-casing the name and making it absolute.
    pub fn new(name: &Name, rtype: RecordType) -> Self {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        Self { name, rtype }
    }
}

// hickory's Name comparison costs far more than a byte compare (it rebuilds a Label
// per label per comparison); keys are compared in the hot path of million-record
// zones, so they compare label bytes directly.
impl PartialEq for RRsetKey {
    fn eq(&self, other: &Self) -> bool {
        self.rtype == other.rtype && name_eq(&self.name, &other.name)
    }
}

impl Eq for RRsetKey {}

impl std::hash::Hash for RRsetKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rtype.hash(state);
        for label in self.name.iter() {
            state.write_usize(label.len());
            for b in label {
                state.write_u8(b.to_ascii_lowercase());
            }
        }
    }
}

impl PartialOrd for RRsetKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RRsetKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        name_cmp(&self.name, &other.name).then_with(|| self.rtype.cmp(&other.rtype))
    }
}

/// Canonical DNS name order (RFC 4034 6.1): labels compared from the root, as
/// lower-cased bytes, a missing label first.
pub fn name_cmp(a: &Name, b: &Name) -> std::cmp::Ordering {
    let mut left = a.iter().rev();
    let mut right = b.iter().rev();
    loop {
        let ord = match (left.next(), right.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(l), Some(r)) => l
                .iter()
                .map(u8::to_ascii_lowercase)
                .cmp(r.iter().map(u8::to_ascii_lowercase)),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
}

/// Name equality ignoring ASCII case.
pub fn name_eq(a: &Name, b: &Name) -> bool {
    // `num_labels()` does not count a leading `*`; the iterator does.
    a.iter().len() == b.iter().len()
        && a.iter()
            .zip(b.iter())
            .all(|(l, r)| l.eq_ignore_ascii_case(r))
}

/// Whether `name` is `zone` or below it (ASCII case ignored).
pub fn in_zone(name: &Name, zone: &Name) -> bool {
    name.iter().len() >= zone.iter().len()
        && name
            .iter()
            .rev()
            .zip(zone.iter().rev())
            .all(|(l, r)| l.eq_ignore_ascii_case(r))
}

impl fmt::Display for RRsetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", name_to_text(&self.name), self.rtype)
    }
}

/// Every record of one type at one name, with one TTL.
///
/// `rdatas` is kept sorted by canonical wire form and free of duplicates (use
/// [`RRset::new`] or [`RRset::normalize`]), so `==` means "the same set".
#[derive(Clone, Debug)]
pub struct RRset {
    /// Owner name (absolute).
    pub name: Name,
    /// Record type.
    pub rtype: RecordType,
    /// TTL in seconds.
    pub ttl: u32,
    /// The records' data, sorted by canonical wire form, no duplicates.
    pub rdatas: Vec<RData>,
}

impl PartialEq for RRset {
    fn eq(&self, other: &Self) -> bool {
        self.rtype == other.rtype
            && self.ttl == other.ttl
            && name_eq(&self.name, &other.name)
            && self.same_data(other)
    }
}

impl Eq for RRset {}

impl RRset {
    /// Builds an RRset, sorting and deduplicating `rdatas`.
    pub fn new(name: Name, rtype: RecordType, ttl: u32, rdatas: Vec<RData>) -> Self {
        let mut set = Self {
            name,
            rtype,
            ttl,
            rdatas,
        };
        set.normalize();
        set
    }

    /// Sorts `rdatas` by canonical wire form and drops duplicates.
    pub fn normalize(&mut self) {
        let mut keyed: Vec<(Vec<u8>, RData)> = self
            .rdatas
            .drain(..)
            .map(|r| (canonical_rdata(&r), r))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        self.rdatas = keyed.into_iter().map(|(_, r)| r).collect();
    }

    /// The RRset's key.
    pub fn key(&self) -> RRsetKey {
        RRsetKey::new(&self.name, self.rtype)
    }

    /// The RRset as individual records.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.rdatas
            .iter()
            .map(|r| Record::from_rdata(self.name.clone(), self.ttl, r.clone()))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.rdatas.len()
    }

    /// Whether the RRset holds no record.
    pub fn is_empty(&self) -> bool {
        self.rdatas.is_empty()
    }

    /// Whether both sets hold the same data (TTL and owner-name case ignored).
    pub fn same_data(&self, other: &Self) -> bool {
        self.rdatas.len() == other.rdatas.len()
            && self
                .rdatas
                .iter()
                .zip(&other.rdatas)
                .all(|(a, b)| rdata_eq(a, b))
    }

    /// Whether the set holds this data.
    pub fn contains(&self, rdata: &RData) -> bool {
        let key = canonical_rdata(rdata);
        self.rdatas
            .binary_search_by(|r| canonical_rdata(r).cmp(&key))
            .is_ok()
    }

    /// Zone-file lines, one per record: `www.example.com. 300 IN A 192.0.2.10`.
    pub fn to_lines(&self) -> Vec<String> {
        let owner = name_to_text(&self.name);
        self.rdatas
            .iter()
            .map(|r| {
                format!(
                    "{owner} {} IN {} {}",
                    self.ttl,
                    self.rtype,
                    rdata_to_text(r)
                )
            })
            .collect()
    }

    /// A stable 64-bit fingerprint of TTL and records (FNV-1a over the canonical form). It is
    /// kept with ownership, so drift (the server changed what we applied) can be told apart
    /// from a spec change.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(&self.ttl.to_be_bytes());
        for r in &self.rdatas {
            let c = canonical_rdata(r);
            eat(&u32::try_from(c.len()).unwrap_or(u32::MAX).to_be_bytes());
            eat(&c);
        }
        h
    }

    /// Inserts one rdata keeping the order; returns false when it was already there.
    fn insert_sorted(&mut self, rdata: RData) -> bool {
        // Most RRsets of a big zone hold one record: skip encoding for them.
        if self.rdatas.is_empty() {
            self.rdatas.push(rdata);
            return true;
        }
        let key = canonical_rdata(&rdata);
        // Servers usually send an RRset in canonical order: appending is the common case.
        let after_last = self
            .rdatas
            .last()
            .is_none_or(|last| canonical_rdata(last) < key);
        if after_last {
            self.rdatas.push(rdata);
            return true;
        }
        match self
            .rdatas
            .binary_search_by(|r| canonical_rdata(r).cmp(&key))
        {
            Ok(_) => false,
            Err(pos) => {
                self.rdatas.insert(pos, rdata);
                true
            }
        }
    }
}

/// RData equality as DNS defines it: equal canonical wire forms.
fn rdata_eq(a: &RData, b: &RData) -> bool {
    match (a, b) {
        // hickory's PartialEq compares embedded names case-insensitively, which is the
        // canonical rule for every supported type except SVCB/HTTPS (RFC 9460 keeps case).
        (RData::SVCB(_), _) | (RData::HTTPS(_), _) => canonical_rdata(a) == canonical_rdata(b),
        _ => a == b,
    }
}

/// Bytes of the stack buffer a lookup key is built in; longer keys (impossible for names
/// within RFC 1035's 255-byte limit) fall back to the heap.
const KEY_STACK: usize = 600;

/// Writes the zone map's key for `name`/`rtype`: lower-cased labels from the root, each
/// followed by `00 01` (a zero byte in a label is escaped as `00 ff`), the name closed by
/// `00 00`, then the type big-endian. Byte-wise order of these keys is canonical name order
/// (RFC 4034 6.1), then type order, so the map compares keys with memcmp instead of walking
/// hickory labels.
fn write_key(name: &Name, rtype: RecordType, mut push: impl FnMut(u8)) {
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
fn key_slice<'b>(
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
struct Verbatim {
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
fn encode_stored(rdata: &RData) -> (Box<[u8]>, bool) {
    let Some(canonical) = try_canonical_rdata(rdata) else {
        return (wire_rdata(rdata).into(), true);
    };
    let differs = embedded_names_have_upper(rdata);
    (canonical.into(), differs)
}

/// Whether a name that canonical form lower-cases (hickory's encoder does so for NS,
/// CNAME, PTR, ANAME, MX, SRV and SOA; [`canonical_rdata`] for NAPTR) has upper case.
fn embedded_names_have_upper(rdata: &RData) -> bool {
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

fn has_upper(name: &Name) -> bool {
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
fn decode_stored(rtype: RecordType, bytes: &[u8]) -> RData {
    decode_rdata(rtype, bytes).unwrap_or_else(|_| RData::Unknown {
        code: rtype,
        rdata: hickory_proto::rr::rdata::NULL::with(bytes.to_vec()),
    })
}

/// The record type at the end of a [`write_key`] key.
fn key_type(key: &[u8]) -> RecordType {
    match key {
        [.., hi, lo] => RecordType::from(u16::from_be_bytes([*hi, *lo])),
        _ => RecordType::Unknown(0),
    }
}

/// The (lower-case) owner name of a [`write_key`] key.
fn key_name(key: &[u8]) -> Name {
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
fn key_name_wire(key: &[u8], out: &mut Vec<u8>) {
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
fn owned_key(name: &Name, rtype: RecordType) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    write_key(name, rtype, |b| key.push(b));
    key
}

// ---------------------------------------------------------------------------
// Canonical form
// ---------------------------------------------------------------------------

/// Canonical wire form of one RDATA (RFC 4034 6.2): no name compression, and the
/// embedded names of NS, CNAME, PTR, MX, SRV and NAPTR lower-cased.
pub fn canonical_rdata(rdata: &RData) -> Vec<u8> {
    let lowered = match rdata {
        RData::NS(NS(n)) => Some(RData::NS(NS(n.to_lowercase()))),
        RData::CNAME(CNAME(n)) => Some(RData::CNAME(CNAME(n.to_lowercase()))),
        RData::PTR(PTR(n)) => Some(RData::PTR(PTR(n.to_lowercase()))),
        RData::MX(mx) => Some(RData::MX(MX::new(
            mx.preference(),
            mx.exchange().to_lowercase(),
        ))),
        RData::SRV(srv) => Some(RData::SRV(SRV::new(
            srv.priority(),
            srv.weight(),
            srv.port(),
            srv.target().to_lowercase(),
        ))),
        RData::NAPTR(n) => Some(RData::NAPTR(NAPTR::new(
            n.order(),
            n.preference(),
            n.flags().into(),
            n.services().into(),
            n.regexp().into(),
            n.replacement().to_lowercase(),
        ))),
        _ => None,
    };
    wire_rdata(lowered.as_ref().unwrap_or(rdata))
}

/// [`canonical_rdata`], or `None` when hickory cannot encode the data.
fn try_canonical_rdata(rdata: &RData) -> Option<Vec<u8>> {
    let bytes = canonical_rdata(rdata);
    // The non-wire marker of `wire_rdata` starts with 0xff 0xff and then hickory's Debug
    // text; check by encoding again only when the bytes look like one.
    if bytes.starts_with(&[0xff, 0xff]) && !encodes(rdata) {
        return None;
    }
    Some(bytes)
}

fn encodes(rdata: &RData) -> bool {
    let mut buf = Vec::new();
    let mut encoder = BinEncoder::new(&mut buf);
    rdata.emit(&mut encoder).is_ok()
}

/// Uncompressed wire form with names in their original case. Never fails: data hickory
/// cannot encode (which our parsers never produce) maps to a unique non-wire marker.
fn wire_rdata(rdata: &RData) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    let ok = {
        let mut encoder = BinEncoder::new(&mut buf);
        encoder.set_canonical_names(true);
        rdata.emit(&mut encoder).is_ok()
    };
    if ok {
        buf
    } else {
        let mut marker = vec![0xff; 2];
        marker.extend_from_slice(format!("{rdata:?}").as_bytes());
        marker
    }
}

/// Decodes wire RDATA of `rtype` with hickory, insisting every byte is used.
fn decode_rdata(rtype: RecordType, wire: &[u8]) -> Result<RData, String> {
    let len = u16::try_from(wire.len())
        .map_err(|_| format!("record data is {} bytes, more than 65535", wire.len()))?;
    let mut decoder = BinDecoder::new(wire);
    let rdata = RData::read(&mut decoder, rtype, Restrict::new(len))
        .map_err(|e| format!("invalid {rtype} data: {e}"))?;
    if decoder.index() != wire.len() {
        return Err(format!("invalid {rtype} data: trailing bytes"));
    }
    Ok(rdata)
}

// ---------------------------------------------------------------------------
// Presentation format: tokens
// ---------------------------------------------------------------------------

/// One field of presentation text.
#[derive(Clone, Debug)]
struct Token {
    /// The text as written, quotes and escapes included.
    raw: String,
    /// The bytes it stands for (quotes removed, escapes decoded).
    bytes: Vec<u8>,
    /// Whether any part was quoted.
    quoted: bool,
}

/// A logical zone-file line: parentheses joined, comments removed.
#[derive(Debug)]
struct LogicalLine {
    /// 1-based number of the physical line it starts on.
    number: usize,
    /// Whether it starts with blank space (the owner is the previous one).
    leading_blank: bool,
    tokens: Vec<Token>,
}

/// Splits presentation text into logical lines of tokens (RFC 1035 5.1). With
/// `single_record`, newlines are plain blank space.
fn tokenize(text: &str, single_record: bool) -> Result<Vec<LogicalLine>, (usize, String)> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut line_no = 1usize;
    let mut current = LogicalLine {
        number: 1,
        leading_blank: matches!(bytes.first(), Some(b' ' | b'\t')),
        tokens: Vec::new(),
    };
    let mut depth = 0usize;
    let mut paren_line = 0usize;
    let mut i = 0usize;
    // The token being read: start offset, decoded bytes, quoted flag.
    let mut tok: Option<(usize, Vec<u8>, bool)> = None;
    let mut in_quote = false;

    fn finish(
        tok: &mut Option<(usize, Vec<u8>, bool)>,
        end: usize,
        text: &str,
        out: &mut Vec<Token>,
    ) {
        if let Some((start, bytes, quoted)) = tok.take() {
            out.push(Token {
                raw: text.get(start..end).unwrap_or_default().to_string(),
                bytes,
                quoted,
            });
        }
    }

    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            let (value, used) = decode_escape(&bytes[i..]).map_err(|e| (line_no, e))?;
            tok.get_or_insert_with(|| (i, Vec::new(), false))
                .1
                .push(value);
            i += used;
            continue;
        }
        if in_quote {
            if b == b'"' {
                in_quote = false;
            } else {
                if b == b'\n' {
                    line_no += 1;
                }
                if let Some(t) = tok.as_mut() {
                    t.1.push(b);
                }
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_quote = true;
                let t = tok.get_or_insert_with(|| (i, Vec::new(), true));
                t.2 = true;
            }
            b' ' | b'\t' | b'\r' => finish(&mut tok, i, text, &mut current.tokens),
            b'\n' => {
                finish(&mut tok, i, text, &mut current.tokens);
                line_no += 1;
                if depth == 0 && !single_record {
                    let next = LogicalLine {
                        number: line_no,
                        leading_blank: matches!(bytes.get(i + 1), Some(b' ' | b'\t')),
                        tokens: Vec::new(),
                    };
                    let done = std::mem::replace(&mut current, next);
                    if !done.tokens.is_empty() {
                        lines.push(done);
                    }
                }
            }
            b';' => {
                finish(&mut tok, i, text, &mut current.tokens);
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                finish(&mut tok, i, text, &mut current.tokens);
                if depth == 0 {
                    paren_line = line_no;
                }
                depth += 1;
            }
            b')' => {
                finish(&mut tok, i, text, &mut current.tokens);
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| (line_no, "\")\" without \"(\"".to_string()))?;
            }
            _ => tok.get_or_insert_with(|| (i, Vec::new(), false)).1.push(b),
        }
        i += 1;
    }
    if in_quote {
        return Err((line_no, "unterminated quoted string".to_string()));
    }
    if depth > 0 {
        return Err((paren_line, "\"(\" is never closed".to_string()));
    }
    finish(&mut tok, bytes.len(), text, &mut current.tokens);
    if !current.tokens.is_empty() {
        lines.push(current);
    }
    Ok(lines)
}

/// Decodes `\X` or `\DDD` at the start of `s`; returns the byte and how many bytes were used.
fn decode_escape(s: &[u8]) -> Result<(u8, usize), String> {
    match s.get(1) {
        None => Err("a lone \\ at the end".to_string()),
        Some(d) if d.is_ascii_digit() => {
            let digits = s.get(1..4).filter(|d| d.iter().all(u8::is_ascii_digit));
            let digits = digits.ok_or_else(|| "\\DDD needs three decimal digits".to_string())?;
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            let value = u8::try_from(value)
                .map_err(|_| format!("\\{value:03} is not a byte value (0-255)"))?;
            Ok((value, 4))
        }
        Some(&c) => Ok((c, 2)),
    }
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// Parses a domain name in presentation form; relative names get `origin` appended and
/// `@` is `origin` itself. Escapes are decimal (`\046`), as RFC 1035 says.
pub fn parse_name(text: &str, origin: &Name) -> Result<Name, String> {
    if text == "@" {
        return Ok(origin.clone());
    }
    if text == "." {
        return Ok(Name::root());
    }
    if text.is_empty() {
        return Err("an empty name".to_string());
    }
    let bytes = text.as_bytes();
    let mut labels: Vec<Label> = Vec::new();
    let mut label: Vec<u8> = Vec::new();
    let mut escaped = false;
    let mut absolute = false;
    let mut i = 0;
    let mut finish_label = |label: &mut Vec<u8>, escaped: &mut bool| -> Result<(), String> {
        if label.is_empty() {
            return Err(format!("{text:?} has an empty label"));
        }
        let made = if !*escaped && !label.is_ascii() {
            // Unicode labels become punycode (IDNA), as zone tools do.
            std::str::from_utf8(label)
                .map_err(|_| format!("{text:?} is not valid UTF-8"))
                .and_then(|s| Label::from_utf8(s).map_err(|e| format!("{text:?}: {e}")))?
        } else {
            Label::from_raw_bytes(label)
                .map_err(|_| format!("{text:?} has a label longer than 63 bytes"))?
        };
        if made.len() > 63 {
            return Err(format!("{text:?} has a label longer than 63 bytes"));
        }
        labels.push(made);
        label.clear();
        *escaped = false;
        Ok(())
    };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let (value, used) =
                    decode_escape(&bytes[i..]).map_err(|e| format!("{text:?}: {e}"))?;
                label.push(value);
                escaped = true;
                i += used;
                continue;
            }
            b'.' => {
                finish_label(&mut label, &mut escaped)?;
                if i + 1 == bytes.len() {
                    absolute = true;
                }
            }
            c if c.is_ascii_whitespace() || c.is_ascii_control() => {
                return Err(format!("{text:?} contains blank or control characters"));
            }
            c => label.push(c),
        }
        i += 1;
    }
    if !label.is_empty() {
        finish_label(&mut label, &mut escaped)?;
    }
    let mut name =
        Name::from_labels(labels).map_err(|e| format!("{text:?} is not a valid name: {e}"))?;
    if !absolute {
        // "mail.example.com" without the final dot inside example.com. means
        // mail.example.com.example.com.: nearly always a forgotten dot.
        if !origin.is_root() && in_zone(&name, origin) {
            return Err(format!(
                "{text:?} is relative, so it would mean {}; write {}",
                name_to_text(
                    &name
                        .clone()
                        .append_domain(origin)
                        .unwrap_or_else(|_| name.clone())
                ),
                name_to_text(&name)
            ));
        }
        name = name
            .append_domain(origin)
            .map_err(|_| format!("{text:?} is longer than 255 bytes once {origin} is appended"))?;
    }
    if name_wire_len(&name) > 255 {
        return Err(format!("{text:?} is longer than 255 bytes"));
    }
    Ok(name)
}

fn name_wire_len(name: &Name) -> usize {
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// Presentation form of a name (absolute, trailing dot, decimal escapes).
pub fn name_to_text(name: &Name) -> String {
    if name.is_root() {
        return ".".to_string();
    }
    let mut out = String::new();
    for label in name.iter() {
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b';' | b'(' | b')' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
    }
    out
}

fn push_name(wire: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
}

// ---------------------------------------------------------------------------
// Presentation format: parsing RDATA
// ---------------------------------------------------------------------------

/// The supported types.
fn is_supported(rtype: RecordType) -> bool {
    shared::RecordType::ALL
        .iter()
        .any(|t| to_wire_type(*t) == rtype)
}

/// The wire type of an API record type.
pub fn to_wire_type(t: shared::RecordType) -> RecordType {
    match t {
        shared::RecordType::A => RecordType::A,
        shared::RecordType::AAAA => RecordType::AAAA,
        shared::RecordType::CNAME => RecordType::CNAME,
        shared::RecordType::MX => RecordType::MX,
        shared::RecordType::TXT => RecordType::TXT,
        shared::RecordType::SRV => RecordType::SRV,
        shared::RecordType::CAA => RecordType::CAA,
        shared::RecordType::NS => RecordType::NS,
        shared::RecordType::PTR => RecordType::PTR,
        shared::RecordType::DS => RecordType::DS,
        shared::RecordType::TLSA => RecordType::TLSA,
        shared::RecordType::SSHFP => RecordType::SSHFP,
        shared::RecordType::SVCB => RecordType::SVCB,
        shared::RecordType::HTTPS => RecordType::HTTPS,
        shared::RecordType::NAPTR => RecordType::NAPTR,
    }
}

/// Parses one record's data in zone-file presentation format. Relative names in the
/// data are completed with `origin`. The error is a sentence naming the text.
pub fn parse_rdata(rtype: RecordType, origin: &Name, text: &str) -> Result<RData, String> {
    let lines = tokenize(text, true).map_err(|(_, e)| format!("{text:?}: {e}"))?;
    let tokens: Vec<Token> = lines.into_iter().flat_map(|l| l.tokens).collect();
    rdata_from_tokens(rtype, origin, text, &tokens)
}

/// Parses one entry of `spec.records[].data`: presentation format, except that TXT
/// data without any `"` is one string (spaces kept), as users of YAML expect:
/// `v=spf1 include:_spf.example.net ~all` stays one SPF string instead of three.
/// Quote the strings (`'"part one" "part two"'`) to give several.
pub fn parse_spec_rdata(rtype: RecordType, origin: &Name, text: &str) -> Result<RData, String> {
    let trimmed = text.trim();
    if rtype != RecordType::TXT || trimmed.is_empty() || trimmed.contains('"') {
        return parse_rdata(rtype, origin, text);
    }
    let raw = trimmed.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let (value, used) =
                decode_escape(&raw[i..]).map_err(|e| format!("{}: {e}", short(text)))?;
            bytes.push(value);
            i += used;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    let token = Token {
        raw: trimmed.to_string(),
        bytes,
        quoted: true,
    };
    rdata_from_tokens(rtype, origin, text, &[token])
}

fn rdata_from_tokens(
    rtype: RecordType,
    origin: &Name,
    text: &str,
    tokens: &[Token],
) -> Result<RData, String> {
    if rtype == RecordType::SOA {
        return Err("SOA records are managed by the server, not listed".to_string());
    }
    if !is_supported(rtype) {
        return Err(format!("record type {rtype} is not supported"));
    }
    let wire = match rtype {
        RecordType::A => {
            let t = exactly(tokens, 1, text, "an IPv4 address")?;
            let addr: Ipv4Addr = unquoted(&t[0])
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{text:?} is not an IPv4 address"))?;
            addr.octets().to_vec()
        }
        RecordType::AAAA => {
            let t = exactly(tokens, 1, text, "an IPv6 address")?;
            let addr: Ipv6Addr = unquoted(&t[0])
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{text:?} is not an IPv6 address"))?;
            addr.octets().to_vec()
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => {
            let t = exactly(tokens, 1, text, "a domain name")?;
            let mut wire = Vec::new();
            push_name(&mut wire, &name_field(&t[0], origin, text)?);
            wire
        }
        RecordType::MX => {
            let t = exactly(tokens, 2, text, "a preference and an exchange name")?;
            let mut wire = number::<u16>(&t[0], text, "preference")?
                .to_be_bytes()
                .to_vec();
            push_name(&mut wire, &name_field(&t[1], origin, text)?);
            wire
        }
        RecordType::SRV => {
            let t = exactly(tokens, 4, text, "priority, weight, port and target")?;
            let mut wire = Vec::new();
            for (tok, field) in t[..3].iter().zip(["priority", "weight", "port"]) {
                wire.extend_from_slice(&number::<u16>(tok, text, field)?.to_be_bytes());
            }
            push_name(&mut wire, &name_field(&t[3], origin, text)?);
            wire
        }
        RecordType::TXT => {
            if tokens.is_empty() {
                return Err(format!("{text:?}: TXT needs at least one string"));
            }
            let mut wire = Vec::new();
            for tok in tokens {
                // Longer strings are split into 255-byte character-strings, as zone tools do.
                if tok.bytes.is_empty() {
                    wire.push(0);
                }
                for chunk in tok.bytes.chunks(MAX_CHAR_STRING) {
                    wire.push(chunk.len() as u8);
                    wire.extend_from_slice(chunk);
                }
            }
            wire
        }
        RecordType::CAA => {
            let t = exactly(tokens, 3, text, "flags, tag and value")?;
            let flags = number::<u8>(&t[0], text, "flags")?;
            let tag = &t[1].bytes;
            if tag.is_empty() || tag.len() > 15 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(format!(
                    "{text:?}: CAA tag {:?} must be 1 to 15 letters or digits",
                    t[1].raw
                ));
            }
            let mut wire = vec![flags, tag.len() as u8];
            wire.extend_from_slice(tag);
            wire.extend_from_slice(&t[2].bytes);
            wire
        }
        RecordType::NAPTR => {
            let t = exactly(
                tokens,
                6,
                text,
                "order, preference, flags, services, regexp and replacement",
            )?;
            let mut wire = number::<u16>(&t[0], text, "order")?.to_be_bytes().to_vec();
            wire.extend_from_slice(&number::<u16>(&t[1], text, "preference")?.to_be_bytes());
            if !t[2].bytes.iter().all(u8::is_ascii_alphanumeric) {
                return Err(format!(
                    "{text:?}: NAPTR flags {:?} must be letters or digits",
                    t[2].raw
                ));
            }
            for (tok, field) in t[2..5].iter().zip(["flags", "services", "regexp"]) {
                push_char_string(&mut wire, &tok.bytes, text, field)?;
            }
            push_name(&mut wire, &name_field(&t[5], origin, text)?);
            wire
        }
        RecordType::DS => {
            let t = at_least(
                tokens,
                4,
                text,
                "key tag, algorithm, digest type and digest",
            )?;
            let mut wire = number::<u16>(&t[0], text, "key tag")?
                .to_be_bytes()
                .to_vec();
            wire.push(dnssec_algorithm(&t[1], text)?);
            let digest_type = number::<u8>(&t[2], text, "digest type")?;
            wire.push(digest_type);
            let digest = hex_field(&t[3..], text, "digest")?;
            let expected = match digest_type {
                1 => Some(20),
                2 => Some(32),
                4 => Some(48),
                _ => None,
            };
            check_len(digest.len(), expected, text, "digest")?;
            wire.extend_from_slice(&digest);
            wire
        }
        RecordType::TLSA => {
            let t = at_least(
                tokens,
                4,
                text,
                "usage, selector, matching type and certificate data",
            )?;
            let mut wire = vec![
                number::<u8>(&t[0], text, "usage")?,
                number::<u8>(&t[1], text, "selector")?,
                number::<u8>(&t[2], text, "matching type")?,
            ];
            let data = hex_field(&t[3..], text, "certificate data")?;
            let expected = match wire[2] {
                1 => Some(32),
                2 => Some(64),
                _ => None,
            };
            check_len(data.len(), expected, text, "certificate data")?;
            wire.extend_from_slice(&data);
            wire
        }
        RecordType::SSHFP => {
            let t = at_least(
                tokens,
                3,
                text,
                "algorithm, fingerprint type and fingerprint",
            )?;
            let mut wire = vec![
                number::<u8>(&t[0], text, "algorithm")?,
                number::<u8>(&t[1], text, "fingerprint type")?,
            ];
            let fp = hex_field(&t[2..], text, "fingerprint")?;
            let expected = match wire[1] {
                1 => Some(20),
                2 => Some(32),
                _ => None,
            };
            check_len(fp.len(), expected, text, "fingerprint")?;
            wire.extend_from_slice(&fp);
            wire
        }
        RecordType::SVCB | RecordType::HTTPS => svcb_wire(tokens, origin, text)?,
        _ => return Err(format!("record type {rtype} is not supported")),
    };
    if wire.len() > MAX_RDATA_LEN {
        return Err(format!(
            "{}: the data is {} bytes, more than the 65535 a record can hold",
            short(text),
            wire.len()
        ));
    }
    decode_rdata(rtype, &wire).map_err(|e| format!("{}: {e}", short(text)))
}

/// The text, shortened for error messages.
fn short(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return format!("{text:?}");
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}...", &text[..end])
}

fn exactly<'t>(
    tokens: &'t [Token],
    n: usize,
    text: &str,
    what: &str,
) -> Result<&'t [Token], String> {
    if tokens.len() != n {
        return Err(format!(
            "{}: expected {what} ({n} field{}), found {} field{}",
            short(text),
            if n == 1 { "" } else { "s" },
            tokens.len(),
            if tokens.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(tokens)
}

fn at_least<'t>(
    tokens: &'t [Token],
    n: usize,
    text: &str,
    what: &str,
) -> Result<&'t [Token], String> {
    if tokens.len() < n {
        return Err(format!(
            "{}: expected {what} (at least {n} fields), found {}",
            short(text),
            tokens.len()
        ));
    }
    Ok(tokens)
}

fn unquoted(tok: &Token) -> Option<&str> {
    (!tok.quoted && !tok.raw.contains('\\')).then_some(tok.raw.as_str())
}

fn number<T: std::str::FromStr + Bounded>(
    tok: &Token,
    text: &str,
    field: &str,
) -> Result<T, String> {
    unquoted(tok)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "{}: {field} {:?} is not a number from 0 to {}",
                short(text),
                tok.raw,
                T::MAX_TEXT
            )
        })
}

/// The largest value of a number type, for messages.
trait Bounded {
    const MAX_TEXT: &'static str;
}
impl Bounded for u8 {
    const MAX_TEXT: &'static str = "255";
}
impl Bounded for u16 {
    const MAX_TEXT: &'static str = "65535";
}

fn name_field(tok: &Token, origin: &Name, text: &str) -> Result<Name, String> {
    if tok.quoted {
        return Err(format!("{}: a name cannot be quoted", short(text)));
    }
    parse_name(&tok.raw, origin).map_err(|e| format!("{}: {e}", short(text)))
}

fn push_char_string(
    wire: &mut Vec<u8>,
    bytes: &[u8],
    text: &str,
    field: &str,
) -> Result<(), String> {
    if bytes.len() > MAX_CHAR_STRING {
        return Err(format!(
            "{}: {field} is {} bytes, more than 255",
            short(text),
            bytes.len()
        ));
    }
    wire.push(bytes.len() as u8);
    wire.extend_from_slice(bytes);
    Ok(())
}

fn hex_field(tokens: &[Token], text: &str, field: &str) -> Result<Vec<u8>, String> {
    let joined: Vec<u8> = tokens
        .iter()
        .flat_map(|t| t.bytes.iter().copied())
        .collect();
    let bad = || format!("{}: {field} is not hexadecimal", short(text));
    if joined.is_empty() || !joined.len().is_multiple_of(2) {
        return Err(format!(
            "{}: {field} must be an even number of hexadecimal digits",
            short(text)
        ));
    }
    joined
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16).ok_or_else(bad)?;
            let lo = char::from(pair[1]).to_digit(16).ok_or_else(bad)?;
            Ok((hi * 16 + lo) as u8)
        })
        .collect()
}

fn check_len(len: usize, expected: Option<usize>, text: &str, field: &str) -> Result<(), String> {
    match expected {
        Some(want) if want != len => Err(format!(
            "{}: {field} is {len} bytes, the digest type needs {want}",
            short(text)
        )),
        _ => Ok(()),
    }
}

fn dnssec_algorithm(tok: &Token, text: &str) -> Result<u8, String> {
    const MNEMONICS: [(&str, u8); 13] = [
        ("RSAMD5", 1),
        ("DH", 2),
        ("DSA", 3),
        ("RSASHA1", 5),
        ("DSA-NSEC3-SHA1", 6),
        ("RSASHA1-NSEC3-SHA1", 7),
        ("RSASHA256", 8),
        ("RSASHA512", 10),
        ("ECC-GOST", 12),
        ("ECDSAP256SHA256", 13),
        ("ECDSAP384SHA384", 14),
        ("ED25519", 15),
        ("ED448", 16),
    ];
    if let Some((_, v)) = MNEMONICS
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(&tok.raw))
    {
        return Ok(*v);
    }
    number::<u8>(tok, text, "algorithm")
}

/// SvcParamKey names (RFC 9460 14.3.2).
const SVC_KEYS: [&str; 7] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
];

fn svc_key(name: &str) -> Option<u16> {
    if let Some(pos) = SVC_KEYS.iter().position(|k| *k == name) {
        return u16::try_from(pos).ok();
    }
    let digits = name.strip_prefix("key")?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse::<u16>().ok().filter(|k| *k != 65535)
}

fn svc_key_name(key: u16) -> String {
    SVC_KEYS
        .get(usize::from(key))
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("key{key}"))
}

/// Splits an RFC 9460 value-list on commas; `\,` and `\\` stand for themselves.
fn split_value_list(value: &[u8]) -> Vec<Vec<u8>> {
    let mut items = vec![Vec::new()];
    let mut iter = value.iter();
    while let Some(&b) = iter.next() {
        match b {
            b'\\' => {
                if let (Some(&next), Some(item)) = (iter.next(), items.last_mut()) {
                    item.push(next);
                }
            }
            b',' => items.push(Vec::new()),
            _ => {
                if let Some(item) = items.last_mut() {
                    item.push(b);
                }
            }
        }
    }
    items
}

fn svcb_wire(tokens: &[Token], origin: &Name, text: &str) -> Result<Vec<u8>, String> {
    let t = at_least(tokens, 2, text, "priority and target name")?;
    let mut wire = number::<u16>(&t[0], text, "priority")?
        .to_be_bytes()
        .to_vec();
    push_name(&mut wire, &name_field(&t[1], origin, text)?);
    let err = |msg: String| format!("{}: {msg}", short(text));
    let mut params: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    for tok in &t[2..] {
        let (key_text, value) = match tok.bytes.iter().position(|b| *b == b'=') {
            Some(pos) => (&tok.bytes[..pos], Some(&tok.bytes[pos + 1..])),
            None => (&tok.bytes[..], None),
        };
        let key_text = String::from_utf8_lossy(key_text).to_string();
        let key =
            svc_key(&key_text).ok_or_else(|| err(format!("unknown SvcParam key {key_text:?}")))?;
        let need = |v: Option<&[u8]>| -> Result<Vec<u8>, String> {
            match v {
                Some(v) if !v.is_empty() => Ok(v.to_vec()),
                _ => Err(err(format!("{key_text} needs a value"))),
            }
        };
        let encoded: Vec<u8> = match key {
            0 => {
                let mut keys = Vec::new();
                for item in split_value_list(&need(value)?) {
                    let name = String::from_utf8_lossy(&item).to_string();
                    let k = svc_key(&name)
                        .ok_or_else(|| err(format!("unknown key {name:?} in mandatory")))?;
                    if k == 0 {
                        return Err(err("mandatory cannot list itself".to_string()));
                    }
                    keys.push(k);
                }
                keys.sort_unstable();
                let before = keys.len();
                keys.dedup();
                if keys.len() != before {
                    return Err(err("mandatory lists a key twice".to_string()));
                }
                keys.iter().flat_map(|k| k.to_be_bytes()).collect()
            }
            1 => {
                let mut out = Vec::new();
                for id in split_value_list(&need(value)?) {
                    if id.is_empty() || id.len() > MAX_CHAR_STRING {
                        return Err(err("each alpn id must be 1 to 255 bytes".to_string()));
                    }
                    out.push(id.len() as u8);
                    out.extend_from_slice(&id);
                }
                out
            }
            2 => {
                if value.is_some_and(|v| !v.is_empty()) {
                    return Err(err("no-default-alpn takes no value".to_string()));
                }
                Vec::new()
            }
            3 => {
                let v = need(value)?;
                let port = std::str::from_utf8(&v)
                    .ok()
                    .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u16>().ok())
                    .ok_or_else(|| {
                        err(format!(
                            "port {:?} is not a number from 0 to 65535",
                            String::from_utf8_lossy(&v)
                        ))
                    })?;
                port.to_be_bytes().to_vec()
            }
            4 => {
                let mut out = Vec::new();
                for item in split_value_list(&need(value)?) {
                    let addr: Ipv4Addr = std::str::from_utf8(&item)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| {
                            err(format!(
                                "{:?} is not an IPv4 address",
                                String::from_utf8_lossy(&item)
                            ))
                        })?;
                    out.extend_from_slice(&addr.octets());
                }
                out
            }
            5 => {
                let v = need(value)?;
                base64::engine::general_purpose::STANDARD
                    .decode(&v)
                    .map_err(|_| err("ech is not base64".to_string()))?
            }
            6 => {
                let mut out = Vec::new();
                for item in split_value_list(&need(value)?) {
                    let addr: Ipv6Addr = std::str::from_utf8(&item)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| {
                            err(format!(
                                "{:?} is not an IPv6 address",
                                String::from_utf8_lossy(&item)
                            ))
                        })?;
                    out.extend_from_slice(&addr.octets());
                }
                out
            }
            _ => value.map(<[u8]>::to_vec).unwrap_or_default(),
        };
        if encoded.len() > usize::from(u16::MAX) {
            return Err(err(format!("{key_text} value is too long")));
        }
        if params.insert(key, encoded).is_some() {
            return Err(err(format!("SvcParam {key_text} is given twice")));
        }
    }
    if let Some(mandatory) = params.get(&0) {
        for k in mandatory
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
        {
            if !params.contains_key(&k) {
                return Err(err(format!(
                    "mandatory lists {} but it is not given",
                    svc_key_name(k)
                )));
            }
        }
    }
    if params.contains_key(&2) && !params.contains_key(&1) {
        return Err(err("no-default-alpn needs alpn".to_string()));
    }
    // The wire form lists keys in increasing order (RFC 9460 2.2); the BTreeMap does that.
    for (key, value) in params {
        wire.extend_from_slice(&key.to_be_bytes());
        wire.extend_from_slice(&(value.len() as u16).to_be_bytes());
        wire.extend_from_slice(&value);
    }
    Ok(wire)
}

// ---------------------------------------------------------------------------
// Presentation format: printing RDATA
// ---------------------------------------------------------------------------

/// Presentation form of one RDATA, readable back by [`parse_rdata`] and by BIND.
pub fn rdata_to_text(rdata: &RData) -> String {
    let wire = wire_rdata(rdata);
    let rtype = rdata.record_type();
    format_wire(rtype, &wire).unwrap_or_else(|| generic_text(&wire))
}

/// RFC 3597 generic form: `\# 4 c0000201`.
fn generic_text(wire: &[u8]) -> String {
    format!("\\# {} {}", wire.len(), hex_upper(wire))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Reads wire data for printing.
struct WireReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> WireReader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = self.data.get(self.pos..).unwrap_or_default();
        self.pos = self.data.len();
        s
    }
    fn char_string(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn name(&mut self) -> Option<String> {
        let mut labels: Vec<&[u8]> = Vec::new();
        loop {
            let n = usize::from(self.u8()?);
            if n == 0 {
                break;
            }
            if n > 63 {
                return None;
            }
            labels.push(self.take(n)?);
        }
        Name::from_labels(labels).ok().map(|n| name_to_text(&n))
    }
    fn done(&self) -> bool {
        self.pos == self.data.len()
    }
}

/// A quoted character-string with `"` and `\` escaped and non-printables as `\DDD`.
fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

fn format_wire(rtype: RecordType, wire: &[u8]) -> Option<String> {
    let mut r = WireReader { data: wire, pos: 0 };
    let text = match rtype {
        RecordType::A => {
            let b: [u8; 4] = r.take(4)?.try_into().ok()?;
            Ipv4Addr::from(b).to_string()
        }
        RecordType::AAAA => {
            let b: [u8; 16] = r.take(16)?.try_into().ok()?;
            Ipv6Addr::from(b).to_string()
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => r.name()?,
        RecordType::MX => format!("{} {}", r.u16()?, r.name()?),
        RecordType::SRV => format!("{} {} {} {}", r.u16()?, r.u16()?, r.u16()?, r.name()?),
        RecordType::TXT => {
            let mut parts = Vec::new();
            while !r.done() {
                parts.push(quote(r.char_string()?));
            }
            parts.join(" ")
        }
        RecordType::CAA => {
            let flags = r.u8()?;
            let tag_len = usize::from(r.u8()?);
            let tag = r.take(tag_len)?;
            if !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            format!(
                "{flags} {} {}",
                String::from_utf8_lossy(tag),
                quote(r.rest())
            )
        }
        RecordType::NAPTR => format!(
            "{} {} {} {} {} {}",
            r.u16()?,
            r.u16()?,
            quote(r.char_string()?),
            quote(r.char_string()?),
            quote(r.char_string()?),
            r.name()?
        ),
        RecordType::DS => format!(
            "{} {} {} {}",
            r.u16()?,
            r.u8()?,
            r.u8()?,
            hex_upper(r.rest())
        ),
        RecordType::TLSA => format!(
            "{} {} {} {}",
            r.u8()?,
            r.u8()?,
            r.u8()?,
            hex_upper(r.rest())
        ),
        RecordType::SSHFP => format!("{} {} {}", r.u8()?, r.u8()?, hex_upper(r.rest())),
        RecordType::SVCB | RecordType::HTTPS => {
            let mut out = format!("{} {}", r.u16()?, r.name()?);
            while !r.done() {
                let key = r.u16()?;
                let len = usize::from(r.u16()?);
                let value = r.take(len)?;
                out.push(' ');
                out.push_str(&svc_param_text(key, value)?);
            }
            out
        }
        _ => return None,
    };
    r.done().then_some(text)
}

/// Escapes one value-list item: `,` and `\` get a backslash (RFC 9460 A.1).
fn list_item(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b',' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

fn svc_param_text(key: u16, value: &[u8]) -> Option<String> {
    let name = svc_key_name(key);
    let mut r = WireReader {
        data: value,
        pos: 0,
    };
    let text = match key {
        0 => {
            let mut keys = Vec::new();
            while !r.done() {
                keys.push(svc_key_name(r.u16()?));
            }
            format!("{name}={}", keys.join(","))
        }
        1 => {
            let mut items: Vec<Vec<u8>> = Vec::new();
            while !r.done() {
                items.push(list_item(r.char_string()?));
            }
            format!("{name}={}", quote(&items.join(&b',')))
        }
        2 => {
            if !value.is_empty() {
                return None;
            }
            name
        }
        3 => format!("{name}={}", r.u16()?),
        4 => {
            let mut items = Vec::new();
            while !r.done() {
                let b: [u8; 4] = r.take(4)?.try_into().ok()?;
                items.push(Ipv4Addr::from(b).to_string());
            }
            format!("{name}={}", items.join(","))
        }
        5 => format!(
            "{name}={}",
            quote(
                base64::engine::general_purpose::STANDARD
                    .encode(r.rest())
                    .as_bytes()
            )
        ),
        6 => {
            let mut items = Vec::new();
            while !r.done() {
                let b: [u8; 16] = r.take(16)?.try_into().ok()?;
                items.push(Ipv6Addr::from(b).to_string());
            }
            format!("{name}={}", items.join(","))
        }
        _ => {
            if value.is_empty() {
                name
            } else {
                format!("{name}={}", quote(r.rest()))
            }
        }
    };
    r.done().then_some(text)
}

// ---------------------------------------------------------------------------
// spec.records and zone text
// ---------------------------------------------------------------------------

/// One refused entry of `spec.records`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("records[{index}] ({name} {rtype}): {message}")]
pub struct RecordError {
    /// Index in `spec.records`.
    pub index: usize,
    /// The owner name as written.
    pub name: String,
    /// The record type.
    pub rtype: String,
    /// What is wrong.
    pub message: String,
}

/// One refused line of zone text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Why zone text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Some lines are wrong (at most the first 20 are kept).
    #[error("{}", join_errors(.0))]
    Lines(Vec<LineError>),
}

fn join_errors(errors: &[LineError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// How many errors are collected before giving up.
const MAX_ERRORS: usize = 20;

/// Resolves an owner name: `@`, relative to the zone, or absolute inside it.
pub fn parse_owner(text: &str, origin: &Name) -> Result<Name, String> {
    let name = parse_name(text, origin)?;
    if !in_zone(&name, origin) {
        return Err(format!(
            "owner name {} is outside the zone {}",
            name_to_text(&name),
            name_to_text(origin)
        ));
    }
    Ok(name)
}

/// Parses `spec.records` into RRsets, checking what the schema cannot. Every problem
/// is reported, each naming its entry.
pub fn parse_record_sets(
    origin: &Name,
    default_ttl: u32,
    records: &[RecordSet],
) -> Result<Vec<RRset>, Vec<RecordError>> {
    let mut errors = Vec::new();
    let mut sets: Vec<(usize, RRset)> = Vec::new();
    let mut seen: BTreeMap<RRsetKey, usize> = BTreeMap::new();
    for (index, rs) in records.iter().enumerate() {
        let err = |message: String| RecordError {
            index,
            name: rs.name.clone(),
            rtype: rs.record_type.to_string(),
            message,
        };
        let rtype = to_wire_type(rs.record_type);
        let owner = match parse_owner(&rs.name, origin) {
            Ok(n) => n,
            Err(e) => {
                errors.push(err(e));
                continue;
            }
        };
        let ttl = match rs.ttl {
            None => default_ttl,
            Some(t) => match u32::try_from(t).ok().filter(|t| *t <= i32::MAX as u32) {
                Some(t) => t,
                None => {
                    errors.push(err(format!("ttl {t} is not between 0 and 2147483647")));
                    continue;
                }
            },
        };
        if rs.data.is_empty() {
            errors.push(err("data lists no record".to_string()));
            continue;
        }
        let mut rdatas = Vec::with_capacity(rs.data.len());
        for text in &rs.data {
            match parse_spec_rdata(rtype, origin, text) {
                Ok(r) => rdatas.push(r),
                Err(e) => errors.push(err(e)),
            }
        }
        let set = RRset::new(owner, rtype, ttl, rdatas);
        if let Some(first) = seen.insert(set.key(), index) {
            errors.push(err(format!(
                "{} is already listed at records[{first}]; list each RRset once",
                set.key()
            )));
            continue;
        }
        sets.push((index, set));
    }
    for (index, message) in semantic_errors_indexed(origin, &sets) {
        let rs = &records[index];
        errors.push(RecordError {
            index,
            name: rs.name.clone(),
            rtype: rs.record_type.to_string(),
            message,
        });
    }
    if errors.is_empty() {
        Ok(sets.into_iter().map(|(_, s)| s).collect())
    } else {
        errors.sort_by_key(|e| e.index);
        Err(errors)
    }
}

/// Rules that span RRsets: CNAME beside other data, CNAME or DS at the apex, CNAME
/// with more than one record, SOA. Returns sentences naming the RRset.
pub fn semantic_errors(origin: &Name, rrsets: &[RRset]) -> Vec<String> {
    let indexed: Vec<(usize, RRset)> = rrsets.iter().cloned().enumerate().collect();
    semantic_errors_indexed(origin, &indexed)
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

fn semantic_errors_indexed(origin: &Name, sets: &[(usize, RRset)]) -> Vec<(usize, String)> {
    let mut errors = Vec::new();
    let apex = origin.to_lowercase();
    // Keyed by (name, ANY) to get the fast key comparison.
    let mut by_name: BTreeMap<RRsetKey, Vec<(usize, RecordType)>> = BTreeMap::new();
    for (index, set) in sets {
        let key = set.key();
        by_name
            .entry(RRsetKey::new(&key.name, RecordType::ANY))
            .or_default()
            .push((*index, set.rtype));
        if set.rtype == RecordType::SOA {
            errors.push((
                *index,
                "SOA is managed by the server and cannot be listed".to_string(),
            ));
        }
        if set.rtype == RecordType::CNAME {
            if name_eq(&key.name, &apex) {
                errors.push((*index, "a CNAME cannot be at the zone apex".to_string()));
            }
            if set.len() > 1 {
                errors.push((
                    *index,
                    format!(
                        "a CNAME RRset holds exactly one record, this one has {}",
                        set.len()
                    ),
                ));
            }
        }
        if set.rtype == RecordType::DS && name_eq(&key.name, &apex) {
            errors.push((
                *index,
                "DS records at the apex belong in the parent zone".to_string(),
            ));
        }
    }
    for (RRsetKey { name, .. }, entries) in by_name {
        if entries.len() > 1 && entries.iter().any(|(_, t)| *t == RecordType::CNAME) {
            let others: Vec<String> = entries
                .iter()
                .filter(|(_, t)| *t != RecordType::CNAME)
                .map(|(_, t)| t.to_string())
                .collect();
            for (index, t) in &entries {
                if *t == RecordType::CNAME {
                    errors.push((
                        *index,
                        format!(
                            "{} has a CNAME and other data ({}); a CNAME must stand alone",
                            name_to_text(&name),
                            others.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    errors
}

/// Parses zone-file text (a `spec.recordsFrom` ConfigMap): `$ORIGIN` (inside the zone),
/// `$TTL`, owner inheritance, parentheses, comments, optional class `IN`, TTLs with
/// units (`1h30m`). Records of one name and type merge into one RRset; SOA, other
/// types and `$INCLUDE` are refused.
pub fn parse_zone_text(
    origin: &Name,
    default_ttl: u32,
    text: &str,
) -> Result<Vec<RRset>, ModelError> {
    let lines = tokenize(text, false)
        .map_err(|(line, message)| ModelError::Lines(vec![LineError { line, message }]))?;
    let mut errors: Vec<LineError> = Vec::new();
    let mut current_origin = origin.clone();
    let mut ttl_default = default_ttl;
    let mut last_owner: Option<Name> = None;
    let mut sets: BTreeMap<RRsetKey, (usize, RRset)> = BTreeMap::new();
    for line in lines {
        if errors.len() >= MAX_ERRORS {
            break;
        }
        let mut fail = |message: String| {
            errors.push(LineError {
                line: line.number,
                message,
            })
        };
        let toks = &line.tokens;
        let first = &toks[0];
        if !line.leading_blank && !first.quoted && first.raw.starts_with('$') {
            match first.raw.to_ascii_uppercase().as_str() {
                "$ORIGIN" => match toks.get(1).map(|t| parse_name(&t.raw, &current_origin)) {
                    Some(Ok(n)) if in_zone(&n, origin) && toks.len() == 2 => current_origin = n,
                    Some(Ok(n)) if toks.len() == 2 => fail(format!(
                        "$ORIGIN {} is outside the zone {}",
                        name_to_text(&n),
                        name_to_text(origin)
                    )),
                    Some(Err(e)) => fail(format!("$ORIGIN: {e}")),
                    _ => fail("$ORIGIN takes one name".to_string()),
                },
                "$TTL" => match toks.get(1).and_then(|t| parse_ttl(&t.raw)) {
                    Some(t) if toks.len() == 2 => ttl_default = t,
                    _ => fail("$TTL takes one TTL like 3600 or 1h".to_string()),
                },
                "$INCLUDE" => fail("$INCLUDE is not supported".to_string()),
                other => fail(format!("unknown directive {other}")),
            }
            continue;
        }
        let mut rest: &[Token] = toks;
        let owner = if line.leading_blank {
            match &last_owner {
                Some(o) => o.clone(),
                None => {
                    fail("the first record needs an owner name".to_string());
                    continue;
                }
            }
        } else {
            rest = &toks[1..];
            match parse_owner(&first.raw, &current_origin) {
                Ok(n) if !first.quoted => n,
                Ok(_) => {
                    fail("an owner name cannot be quoted".to_string());
                    continue;
                }
                Err(e) => {
                    fail(e);
                    continue;
                }
            }
        };
        last_owner = Some(owner.clone());
        // [TTL] [class] type or [class] [TTL] type
        let mut ttl = None;
        let mut rtype = None;
        while let Some(tok) = rest.first() {
            rest = &rest[1..];
            let word = tok.raw.to_ascii_uppercase();
            if ttl.is_none() && tok.raw.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                match parse_ttl(&tok.raw) {
                    Some(t) => ttl = Some(t),
                    None => {
                        fail(format!("{:?} is not a TTL", tok.raw));
                        break;
                    }
                }
            } else if word == "IN" {
                continue;
            } else if matches!(word.as_str(), "CH" | "HS" | "CS" | "NONE" | "ANY") {
                fail(format!("class {word} is not supported, only IN"));
                break;
            } else {
                rtype = Some(word);
                break;
            }
        }
        let Some(type_text) = rtype else {
            if errors.last().is_none_or(|e| e.line != line.number) {
                errors.push(LineError {
                    line: line.number,
                    message: "no record type".to_string(),
                });
            }
            continue;
        };
        let Ok(rtype) = type_text.parse::<RecordType>() else {
            errors.push(LineError {
                line: line.number,
                message: format!("unknown record type {type_text}"),
            });
            continue;
        };
        if rtype == RecordType::SOA {
            errors.push(LineError {
                line: line.number,
                message: "SOA is managed by the server; leave it out of the records".to_string(),
            });
            continue;
        }
        let data_text = rest
            .iter()
            .map(|t| t.raw.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let rdata = match rdata_from_tokens(rtype, &current_origin, &data_text, rest) {
            Ok(r) => r,
            Err(message) => {
                errors.push(LineError {
                    line: line.number,
                    message,
                });
                continue;
            }
        };
        let ttl = ttl.unwrap_or(ttl_default);
        let key = RRsetKey::new(&owner, rtype);
        match sets.get_mut(&key) {
            Some((first_line, set)) => {
                if set.ttl != ttl {
                    errors.push(LineError {
                        line: line.number,
                        message: format!(
                            "TTL {ttl} differs from {} given for {key} on line {first_line}",
                            set.ttl
                        ),
                    });
                    continue;
                }
                set.insert_sorted(rdata);
            }
            None => {
                sets.insert(
                    key,
                    (line.number, RRset::new(owner, rtype, ttl, vec![rdata])),
                );
            }
        }
    }
    let indexed: Vec<(usize, RRset)> = sets.into_values().collect();
    for (line, message) in semantic_errors_indexed(origin, &indexed) {
        errors.push(LineError { line, message });
    }
    if errors.is_empty() {
        Ok(indexed.into_iter().map(|(_, s)| s).collect())
    } else {
        errors.sort_by_key(|e| e.line);
        errors.truncate(MAX_ERRORS);
        Err(ModelError::Lines(errors))
    }
}

/// A TTL: seconds, or BIND units (`1w2d3h4m5s`), at most 2147483647.
pub fn parse_ttl(text: &str) -> Option<u32> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u32>().ok().filter(|t| *t <= i32::MAX as u32);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !digits.is_empty() {
        return None;
    }
    u32::try_from(total).ok().filter(|t| *t <= i32::MAX as u32)
}

// ---------------------------------------------------------------------------
// Ownership
// ---------------------------------------------------------------------------

/// Ownership: the RRsets an object manages, with the fingerprint of what it applied.
pub type Owned = BTreeMap<RRsetKey, u64>;

/// Reads ownership lines `name TYPE fingerprint` (hex).
pub fn parse_owned(text: &str) -> Result<Owned, String> {
    let mut owned = Owned::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(rtype), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("line {}: expected `name TYPE fingerprint`", i + 1));
        };
        let name = Name::from_ascii(name).map_err(|e| format!("line {}: {e}", i + 1))?;
        let rtype = rtype
            .parse::<RecordType>()
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        let fp = u64::from_str_radix(fp, 16).map_err(|e| format!("line {}: {e}", i + 1))?;
        owned.insert(RRsetKey::new(&name, rtype), fp);
    }
    Ok(owned)
}

/// Writes what [`parse_owned`] reads.
pub fn format_owned(owned: &Owned) -> String {
    let mut out = String::new();
    for (k, fp) in owned {
        out.push_str(&format!(
            "{} {} {fp:016x}\n",
            name_to_text(&k.name),
            k.rtype
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::shared::RecordType as ApiType;
    use hickory_proto::rr::rdata::{A, SOA, TXT};
    use proptest::prelude::*;
    use std::str::FromStr;

    fn upper(name: &Name) -> Name {
        let mut up = Name::from_labels(name.iter().map(<[u8]>::to_ascii_uppercase)).unwrap();
        up.set_fqdn(true);
        up
    }

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

    fn origin() -> Name {
        Name::from_str("example.com.").unwrap()
    }

    fn rs(name: &str, t: ApiType, ttl: Option<i64>, data: &[&str]) -> RecordSet {
        RecordSet {
            name: name.to_string(),
            record_type: t,
            ttl,
            data: data.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// (type, input text, printed form) for every supported type.
    fn samples() -> Vec<(ApiType, &'static str, &'static str)> {
        vec![
            (ApiType::A, "192.0.2.10", "192.0.2.10"),
            (ApiType::AAAA, "2001:DB8::1", "2001:db8::1"),
            (ApiType::CNAME, "target", "target.example.com."),
            (ApiType::MX, "10 mail", "10 mail.example.com."),
            (ApiType::MX, "0 .", "0 ."),
            (ApiType::TXT, "\"v=spf1 -all\"", "\"v=spf1 -all\""),
            (ApiType::TXT, "hello world", "\"hello\" \"world\""),
            (
                ApiType::TXT,
                r#""a\"b\\c\255\009" """#,
                r#""a\"b\\c\255\009" """#,
            ),
            (
                ApiType::SRV,
                "0 5 5060 sip.example.com.",
                "0 5 5060 sip.example.com.",
            ),
            (
                ApiType::CAA,
                "0 issue \"letsencrypt.org\"",
                "0 issue \"letsencrypt.org\"",
            ),
            (
                ApiType::CAA,
                "128 iodef \"mailto:sec@example.com\"",
                "128 iodef \"mailto:sec@example.com\"",
            ),
            (ApiType::CAA, "0 issuewild \";\"", "0 issuewild \";\""),
            (
                ApiType::CAA,
                "0 issue \"ca.example.net; account=230123\"",
                "0 issue \"ca.example.net; account=230123\"",
            ),
            (ApiType::NS, "ns1.example.net.", "ns1.example.net."),
            (ApiType::PTR, "host.example.com.", "host.example.com."),
            (
                ApiType::PTR,
                "we\\.ird\\032x",
                "we\\.ird\\032x.example.com.",
            ),
            (
                ApiType::DS,
                "60485 5 1 2BB183AF5F22588179A53B0A 98631FAD1A292118",
                "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
            ),
            (
                ApiType::DS,
                "12345 ECDSAP256SHA256 2 ( e2d3c916f6deeac73294e8268fb5885044a833fc5459588f4a9184cfc41a5766 )",
                "12345 13 2 E2D3C916F6DEEAC73294E8268FB5885044A833FC5459588F4A9184CFC41A5766",
            ),
            (
                ApiType::TLSA,
                "3 1 1 0b9fa5a59eed715c26c1020c711b4f6ec42d58b0015e14337a39dad301c5afc3",
                "3 1 1 0B9FA5A59EED715C26C1020C711B4F6EC42D58B0015E14337A39DAD301C5AFC3",
            ),
            (
                ApiType::SSHFP,
                "1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac",
                "1 1 DD465C09CFA51FB45020CC83316FFF21B9EC74AC",
            ),
            (
                ApiType::SVCB,
                "1 svc port=8443 alpn=h2,h3 ipv4hint=192.0.2.1,192.0.2.2 mandatory=port,alpn",
                "1 svc.example.com. mandatory=alpn,port alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1,192.0.2.2",
            ),
            (
                ApiType::SVCB,
                "0 pool.svc.example.net.",
                "0 pool.svc.example.net.",
            ),
            (
                ApiType::HTTPS,
                "1 . alpn=\"h3,h2\" no-default-alpn ech=AEX+DQBB ipv6hint=2001:db8::1 key65333=ex1",
                "1 . alpn=\"h3,h2\" no-default-alpn ech=\"AEX+DQBB\" ipv6hint=2001:db8::1 key65333=\"ex1\"",
            ),
            (
                ApiType::NAPTR,
                "100 50 \"s\" \"http+N2L+N2C+N2R\" \"\" www.example.com.",
                "100 50 \"s\" \"http+N2L+N2C+N2R\" \"\" www.example.com.",
            ),
            (
                ApiType::NAPTR,
                r#"100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" ."#,
                r#"100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" ."#,
            ),
        ]
    }

    fn wire_round_trip(rdata: &RData) -> RData {
        let mut buf = Vec::new();
        {
            let mut enc = BinEncoder::new(&mut buf);
            rdata.emit(&mut enc).unwrap();
        }
        let mut dec = BinDecoder::new(&buf);
        let back = RData::read(
            &mut dec,
            rdata.record_type(),
            Restrict::new(buf.len() as u16),
        )
        .unwrap();
        assert_eq!(dec.index(), buf.len());
        back
    }

    #[test]
    fn every_type_round_trips_text_wire_text() {
        let mut covered = std::collections::BTreeSet::new();
        for (t, input, printed) in samples() {
            covered.insert(t);
            let rtype = to_wire_type(t);
            let rdata = parse_rdata(rtype, &origin(), input)
                .unwrap_or_else(|e| panic!("{t} {input:?}: {e}"));
            assert_eq!(rdata.record_type(), rtype);
            let back = wire_round_trip(&rdata);
            assert_eq!(
                canonical_rdata(&back),
                canonical_rdata(&rdata),
                "{t} {input}"
            );
            assert!(rdata_eq(&back, &rdata), "{t} {input}");
            let text = rdata_to_text(&back);
            assert_eq!(text, printed, "{t} {input}");
            let again = parse_rdata(rtype, &origin(), &text).unwrap();
            assert_eq!(
                canonical_rdata(&again),
                canonical_rdata(&rdata),
                "{t} {text}"
            );
        }
        assert_eq!(covered.len(), ApiType::ALL.len(), "a sample for every type");
    }

    #[test]
    fn long_txt_strings_split_into_255_byte_chunks() {
        let long = "x".repeat(600);
        let rdata = parse_rdata(RecordType::TXT, &origin(), &format!("\"{long}\"")).unwrap();
        let RData::TXT(txt) = &rdata else {
            panic!("not TXT")
        };
        let lens: Vec<usize> = txt.txt_data().iter().map(|s| s.len()).collect();
        assert_eq!(lens, vec![255, 255, 90]);
        assert_eq!(wire_round_trip(&rdata), rdata);
        // Tokens far longer than hickory's lexer allows (4095) are fine; RDLENGTH is the limit.
        let big = parse_rdata(RecordType::TXT, &origin(), &"z".repeat(5000)).unwrap();
        assert_eq!(wire_round_trip(&big), big);
        let err = parse_rdata(RecordType::TXT, &origin(), &"z".repeat(70_000)).unwrap_err();
        assert!(
            err.contains("more than the 65535"),
            "{}",
            &err[..120.min(err.len())]
        );
        // The printed form parses back to the same data (no second split).
        let again = parse_rdata(RecordType::TXT, &origin(), &rdata_to_text(&rdata)).unwrap();
        assert_eq!(again, rdata);
        assert_eq!(
            again,
            RData::TXT(TXT::new(vec![
                "x".repeat(255),
                "x".repeat(255),
                "x".repeat(90)
            ]))
        );
    }

    #[test]
    fn malformed_data_of_every_type_is_refused_with_its_text() {
        let long_label = "a".repeat(64);
        let bad: Vec<(ApiType, &str, &str)> = vec![
            (ApiType::A, "192.0.2.300", "is not an IPv4 address"),
            (ApiType::A, "192.0.2.1 192.0.2.2", "found 2 fields"),
            (ApiType::AAAA, "2001:db8::g", "is not an IPv6 address"),
            (ApiType::CNAME, "a..b", "empty label"),
            (ApiType::CNAME, "", "found 0 fields"),
            (
                ApiType::MX,
                "ten mail",
                "preference \"ten\" is not a number from 0 to 65535",
            ),
            (ApiType::TXT, "\"unterminated", "unterminated quoted string"),
            (ApiType::TXT, "", "at least one string"),
            (
                ApiType::SRV,
                "0 5 70000 sip",
                "port \"70000\" is not a number",
            ),
            (ApiType::CAA, "0 is-sue \"x\"", "CAA tag"),
            (ApiType::CAA, "256 issue \"x\"", "flags \"256\""),
            (ApiType::NS, "ns1 ns2", "found 2 fields"),
            (ApiType::PTR, long_label.as_str(), "longer than 63"),
            (
                ApiType::DS,
                "1 5 1 ABC",
                "even number of hexadecimal digits",
            ),
            (ApiType::DS, "1 5 2 ABCD", "needs 32"),
            (ApiType::TLSA, "3 1 1 zz", "not hexadecimal"),
            (ApiType::SSHFP, "1 1 abcd", "needs 20"),
            (ApiType::SVCB, "1 . port=99999", "port \"99999\""),
            (ApiType::SVCB, "1 . mandatory=port", "mandatory lists port"),
            (ApiType::SVCB, "1 . port=1 port=2", "given twice"),
            (ApiType::HTTPS, "1 . alpn", "alpn needs a value"),
            (ApiType::HTTPS, "1 . foo=bar", "unknown SvcParam key"),
            (ApiType::NAPTR, "100 50 \"a-b\" \"\" \"\" .", "flags"),
            (ApiType::NAPTR, "100 50 \"a\" \"\" \"\"", "found 5 fields"),
        ];
        let mut covered = std::collections::BTreeSet::new();
        for (t, text, want) in bad {
            covered.insert(t);
            let err = parse_rdata(to_wire_type(t), &origin(), text)
                .expect_err(&format!("{t} {text:?} must be refused"));
            assert!(err.contains(want), "{t} {text:?}: {err}");
            if !text.is_empty() && text.len() < 60 {
                assert!(
                    err.contains(&format!("{text:?}")),
                    "{t}: error names the text: {err}"
                );
            }
        }
        assert_eq!(
            covered.len(),
            ApiType::ALL.len(),
            "a malformed sample for every type"
        );
    }

    #[test]
    fn record_error_names_index_owner_and_type() {
        let records = vec![
            rs("@", ApiType::NS, None, &["ns1.example.net."]),
            rs("mail", ApiType::MX, None, &["10 mail"]),
            rs("x", ApiType::TXT, None, &["ok"]),
            rs("www", ApiType::A, None, &["192.0.2.300"]),
        ];
        let errs = parse_record_sets(&origin(), 300, &records).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "records[3] (www A): \"192.0.2.300\" is not an IPv4 address"
        );
    }

    #[test]
    fn owner_names_ttl_defaulting_and_case() {
        let records = vec![
            rs("@", ApiType::MX, None, &["10 mail"]),
            rs("WWW", ApiType::A, Some(60), &["192.0.2.1"]),
            rs("api.example.com.", ApiType::A, None, &["192.0.2.2"]),
            rs("*.dev", ApiType::A, None, &["192.0.2.3"]),
            rs("_sip._tcp", ApiType::SRV, None, &["0 5 5060 sip"]),
        ];
        let sets = parse_record_sets(&origin(), 3600, &records).unwrap();
        let names: Vec<String> = sets.iter().map(|s| name_to_text(&s.name)).collect();
        assert_eq!(
            names,
            [
                "example.com.",
                "WWW.example.com.",
                "api.example.com.",
                "*.dev.example.com.",
                "_sip._tcp.example.com."
            ]
        );
        let ttls: Vec<u32> = sets.iter().map(|s| s.ttl).collect();
        assert_eq!(ttls, [3600, 60, 3600, 3600, 3600]);
        assert_eq!(
            sets[1].key().name,
            Name::from_str("www.example.com.").unwrap()
        );
        assert_eq!(sets[1].to_lines(), ["WWW.example.com. 60 IN A 192.0.2.1"]);
    }

    #[test]
    fn unquoted_spec_txt_is_one_string() {
        let records = vec![
            rs(
                "@",
                ApiType::TXT,
                None,
                &["v=spf1 include:_spf.example.net ~all"],
            ),
            rs("q", ApiType::TXT, None, &["\"part one\" \"part two\""]),
            rs("e", ApiType::TXT, None, &["semi\\;colon \\200"]),
        ];
        let sets = parse_record_sets(&origin(), 300, &records).unwrap();
        let lines: Vec<String> = sets.iter().flat_map(|s| s.to_lines()).collect();
        assert_eq!(
            lines,
            [
                "example.com. 300 IN TXT \"v=spf1 include:_spf.example.net ~all\"",
                "q.example.com. 300 IN TXT \"part one\" \"part two\"",
                "e.example.com. 300 IN TXT \"semi;colon \\200\"",
            ]
        );
        // parse_rdata itself keeps zone-file rules: unquoted words are separate strings.
        let r = parse_rdata(RecordType::TXT, &origin(), "a b").unwrap();
        assert_eq!(rdata_to_text(&r), "\"a\" \"b\"");
    }

    #[test]
    fn owner_outside_the_zone_is_refused() {
        let records = vec![rs("www.example.org.", ApiType::A, None, &["192.0.2.1"])];
        let errs = parse_record_sets(&origin(), 300, &records).unwrap_err();
        assert!(
            errs[0]
                .to_string()
                .contains("www.example.org. is outside the zone example.com."),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn semantic_rules_are_enforced() {
        let cases: Vec<(Vec<RecordSet>, &str)> = vec![
            (
                vec![
                    rs("www", ApiType::A, None, &["192.0.2.1"]),
                    rs("www", ApiType::CNAME, None, &["other"]),
                ],
                "records[1] (www CNAME): www.example.com. has a CNAME and other data (A)",
            ),
            (
                vec![rs("@", ApiType::CNAME, None, &["other"])],
                "CNAME cannot be at the zone apex",
            ),
            (
                vec![rs("x", ApiType::CNAME, None, &["a", "b"])],
                "exactly one record",
            ),
            (
                vec![
                    rs("www", ApiType::A, None, &["192.0.2.1"]),
                    rs("WWW.example.com.", ApiType::A, None, &["192.0.2.2"]),
                ],
                "records[1] (WWW.example.com. A): www.example.com. A is already listed at records[0]",
            ),
            (
                vec![rs(
                    "@",
                    ApiType::DS,
                    None,
                    &["1 13 2 e2d3c916f6deeac73294e8268fb5885044a833fc5459588f4a9184cfc41a5766"],
                )],
                "parent zone",
            ),
            (
                vec![rs("x", ApiType::A, Some(-1), &["192.0.2.1"])],
                "ttl -1",
            ),
        ];
        for (records, want) in cases {
            let errs = parse_record_sets(&origin(), 300, &records).unwrap_err();
            let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
            assert!(all.iter().any(|e| e.contains(want)), "{want}: {all:?}");
        }
    }

    #[test]
    fn canonical_equality_ignores_name_case_and_order() {
        let a = RRset::new(
            origin(),
            RecordType::MX,
            300,
            vec![
                parse_rdata(RecordType::MX, &origin(), "20 MX2.Example.COM.").unwrap(),
                parse_rdata(RecordType::MX, &origin(), "10 mx1.example.com.").unwrap(),
            ],
        );
        let b = RRset::new(
            Name::from_str("EXAMPLE.com.").unwrap(),
            RecordType::MX,
            300,
            vec![
                parse_rdata(RecordType::MX, &origin(), "10 MX1.example.com.").unwrap(),
                parse_rdata(RecordType::MX, &origin(), "20 mx2.example.com.").unwrap(),
                parse_rdata(RecordType::MX, &origin(), "20 mx2.example.com.").unwrap(),
            ],
        );
        assert_eq!(a, b);
        assert_eq!(b.len(), 2, "duplicates dropped");
        assert_eq!(a.key(), b.key());
        // Canonical order: preference 10 sorts first.
        assert!(rdata_to_text(&a.rdatas[0]).starts_with("10 "));
        let c = RRset::new(origin(), RecordType::MX, 600, a.rdatas.clone());
        assert_ne!(a, c, "TTL matters");
        assert!(a.same_data(&c));
        // TXT case is data, not a name.
        let t1 = parse_rdata(RecordType::TXT, &origin(), "\"Hello\"").unwrap();
        let t2 = parse_rdata(RecordType::TXT, &origin(), "\"hello\"").unwrap();
        assert_ne!(canonical_rdata(&t1), canonical_rdata(&t2));
        // SVCB keeps the target's case in canonical form (RFC 9460), so case differs.
        let s1 = parse_rdata(RecordType::SVCB, &origin(), "1 A.example.com.").unwrap();
        let s2 = parse_rdata(RecordType::SVCB, &origin(), "1 a.example.com.").unwrap();
        assert!(!rdata_eq(&s1, &s2));
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

    #[test]
    fn zone_text_parses_directives_inheritance_and_parentheses() {
        let text = r#"
$TTL 1h
@       IN  NS   ns1.example.net.
        IN  NS   ns2.example.net. ; inherited owner
www 300 IN  A    192.0.2.1
www     300 A    192.0.2.2
$ORIGIN sub.example.com.
host    IN 2d TXT ( "part one"
                    "part two" )
mail    MX  10 @
"#;
        let sets = parse_zone_text(&origin(), 3600, text).unwrap();
        let lines: Vec<String> = sets.iter().flat_map(|s| s.to_lines()).collect();
        assert_eq!(
            lines,
            [
                "example.com. 3600 IN NS ns1.example.net.",
                "example.com. 3600 IN NS ns2.example.net.",
                "host.sub.example.com. 172800 IN TXT \"part one\" \"part two\"",
                "mail.sub.example.com. 3600 IN MX 10 sub.example.com.",
                "www.example.com. 300 IN A 192.0.2.1",
                "www.example.com. 300 IN A 192.0.2.2",
            ]
        );
    }

    #[test]
    fn zone_text_errors_name_their_lines() {
        let text = "www A 192.0.2.1\nwww 60 A 192.0.2.2\n@ SOA a. b. 1 2 3 4 5\n$INCLUDE other\n$ORIGIN example.org.\nbad A 1.2.3.999\nx HINFO a b\n";
        let err = parse_zone_text(&origin(), 300, text).unwrap_err();
        let ModelError::Lines(lines) = &err;
        let got: Vec<usize> = lines.iter().map(|l| l.line).collect();
        assert_eq!(got, [2, 3, 4, 5, 6, 7], "{err}");
        let msg = err.to_string();
        assert!(msg.contains("line 2: TTL 60 differs from 300"), "{msg}");
        assert!(
            msg.contains("line 3: SOA is managed by the server"),
            "{msg}"
        );
        assert!(
            msg.contains("line 6: \"1.2.3.999\" is not an IPv4 address"),
            "{msg}"
        );
        assert!(
            msg.contains("line 7: record type HINFO is not supported"),
            "{msg}"
        );
        // Cross-RRset rules apply to zone text too.
        let err = parse_zone_text(&origin(), 300, "www A 192.0.2.1\nwww CNAME x\n").unwrap_err();
        assert!(err.to_string().contains("CNAME and other data"), "{err}");
        // Parentheses that never close.
        assert!(parse_zone_text(&origin(), 300, "www TXT ( \"a\"\n").is_err());
    }

    #[test]
    fn names_use_decimal_escapes_and_refuse_overlong() {
        let n = parse_name("a\\065\\.b", &origin()).unwrap();
        assert_eq!(n.iter().next().unwrap(), b"aA.b");
        assert_eq!(name_to_text(&n), "aA\\.b.example.com.");
        assert!(parse_name("\\256", &origin()).is_err());
        let long = vec!["a".repeat(63); 4].join(".") + ".";
        assert!(parse_name(&long, &origin()).is_err(), "over 255 bytes");
        assert!(
            parse_name("dis_allowed", &origin()).is_ok(),
            "underscores are fine"
        );
        assert_eq!(
            name_to_text(&parse_name("bücher", &origin()).unwrap()),
            "xn--bcher-kva.example.com."
        );
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

    #[test]
    fn keys_sort_in_canonical_order_ignoring_case() {
        // RFC 4034 6.1 example order.
        let order = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let names: Vec<Name> = order
            .iter()
            .map(|n| parse_name(n, &Name::root()).unwrap())
            .collect();
        for pair in names.windows(2) {
            assert_eq!(
                name_cmp(&pair[0], &pair[1]),
                std::cmp::Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
        let a = RRsetKey {
            name: Name::from_str("WWW.example.com.").unwrap(),
            rtype: RecordType::A,
        };
        let b = RRsetKey::new(&Name::from_str("www.EXAMPLE.com.").unwrap(), RecordType::A);
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
        let hash = |k: &RRsetKey| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            k.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
        let wild = Name::from_str("*.example.com.").unwrap();
        assert!(!name_eq(&wild, &Name::from_str("x.example.com.").unwrap()));
        assert!(in_zone(&wild, &origin()));
        assert!(in_zone(&origin(), &Name::from_str("EXAMPLE.COM.").unwrap()));
        assert!(!in_zone(
            &Name::from_str("badexample.com.").unwrap(),
            &origin()
        ));
        assert!(!in_zone(&Name::from_str("com.").unwrap(), &origin()));
    }

    #[test]
    fn forgotten_final_dot_is_refused() {
        let err = parse_rdata(RecordType::MX, &origin(), "10 mail.example.com").unwrap_err();
        assert!(
            err.contains("would mean mail.example.com.example.com.; write mail.example.com."),
            "{err}"
        );
        let records = vec![rs("www.example.com", ApiType::A, None, &["192.0.2.1"])];
        assert!(parse_record_sets(&origin(), 300, &records).is_err());
        assert!(parse_rdata(RecordType::CNAME, &origin(), "www.example.net").is_ok());
    }

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("3600"), Some(3600));
        assert_eq!(parse_ttl("1h30m"), Some(5400));
        assert_eq!(parse_ttl("1w"), Some(604_800));
        assert_eq!(parse_ttl("1x"), None);
        assert_eq!(parse_ttl("1h5"), None);
        assert_eq!(parse_ttl("2147483648"), None);
    }

    /// BIND reads what we print, and what BIND prints back parses to the same RRsets.
    #[test]
    fn bind_agrees_with_printed_zone() {
        let mut sets: Vec<RRset> = Vec::new();
        for (i, (t, input, _)) in samples().into_iter().enumerate() {
            let rtype = to_wire_type(t);
            let owner = Name::from_str(&format!("n{i}.example.com.")).unwrap();
            let rdata = parse_rdata(rtype, &origin(), input).unwrap();
            sets.push(RRset::new(owner, rtype, 300, vec![rdata]));
        }
        let long = parse_rdata(
            RecordType::TXT,
            &origin(),
            &format!("\"{}\"", "y".repeat(600)),
        )
        .unwrap();
        sets.push(RRset::new(
            Name::from_str("long.example.com.").unwrap(),
            RecordType::TXT,
            300,
            vec![long],
        ));
        let mut text = String::from(
            "example.com. 300 IN SOA ns1.example.net. hostmaster.example.com. 1 3600 600 86400 300\nexample.com. 300 IN NS ns1.example.net.\n",
        );
        for set in &sets {
            for line in set.to_lines() {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zone");
        std::fs::write(&file, &text).unwrap();
        let out = std::process::Command::new("named-checkzone")
            .args([
                "-i",
                "local",
                "-k",
                "ignore",
                "-D",
                "-o",
                "-",
                "example.com",
            ])
            .arg(&file)
            .output()
            .expect("named-checkzone (bind9-utils) must be installed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "BIND refused:\n{text}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dumped: String = stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(3).is_none_or(|t| t != "SOA"))
            .filter(|l| !l.starts_with("zone ") && *l != "OK")
            .map(|l| format!("{l}\n"))
            .collect();
        let back =
            parse_zone_text(&origin(), 300, &dumped).unwrap_or_else(|e| panic!("{e}\n{dumped}"));
        sets.push(RRset::new(
            origin(),
            RecordType::NS,
            300,
            vec![parse_rdata(RecordType::NS, &origin(), "ns1.example.net.").unwrap()],
        ));
        let ours = Zone::from_rrsets(origin(), sets);
        let theirs = Zone::from_rrsets(origin(), back);
        for set in ours.rrsets() {
            assert_eq!(
                theirs.get(&set.key()),
                Some(set.clone()),
                "{}\n{dumped}",
                set.key()
            );
        }
        assert_eq!(ours.rrset_count(), theirs.rrset_count());
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![
                    Just("\\".to_string()),
                    Just("\"".to_string()),
                    Just("(".to_string()),
                    Just(")".to_string()),
                    Just(";".to_string()),
                    Just(" ".to_string()),
                    Just("\n".to_string()),
                    Just(".".to_string()),
                    Just("=".to_string()),
                    Just(",".to_string()),
                    Just("@".to_string()),
                    Just("1".to_string()),
                    Just("255".to_string()),
                    Just("alpn".to_string()),
                    Just("mandatory".to_string()),
                    Just("key65535".to_string()),
                    Just("ab".to_string()),
                    Just("é".to_string()),
                    "[a-z0-9]{1,70}",
                ],
                0..24
            )
            .prop_map(|v| v.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn parse_rdata_never_panics_and_output_reparses(text in any_text()) {
            for t in ApiType::ALL {
                let rtype = to_wire_type(t);
                if let Ok(rdata) = parse_rdata(rtype, &origin(), &text) {
                    let printed = rdata_to_text(&rdata);
                    let again = parse_rdata(rtype, &origin(), &printed)
                        .map_err(|e| TestCaseError::fail(format!("{t} {text:?} printed {printed:?}: {e}")))?;
                    prop_assert_eq!(canonical_rdata(&again), canonical_rdata(&rdata));
                }
            }
            let _ = parse_zone_text(&origin(), 300, &text);
            if let Ok(r) = parse_spec_rdata(RecordType::TXT, &origin(), &text) {
                let again = parse_rdata(RecordType::TXT, &origin(), &rdata_to_text(&r)).unwrap();
                prop_assert_eq!(again, r);
            }
        }
        #[test]
        fn valid_prefix_then_noise_never_panics(
            (t, prefix) in prop_oneof![
                Just((ApiType::CAA, "0 issue ")),
                Just((ApiType::CAA, "128 Issue ")),
                Just((ApiType::CAA, "0 iodef ")),
                Just((ApiType::CAA, "0 issuewild ")),
                Just((ApiType::CAA, "0 issuemail ")),
                Just((ApiType::SVCB, "1 . ")),
                Just((ApiType::HTTPS, "1 svc ")),
                Just((ApiType::HTTPS, "1 . alpn=")),
                Just((ApiType::HTTPS, "1 . mandatory=")),
                Just((ApiType::HTTPS, "1 . key7=")),
                Just((ApiType::NAPTR, "100 50 ")),
                Just((ApiType::DS, "1 13 ")),
                Just((ApiType::TLSA, "3 1 ")),
                Just((ApiType::SSHFP, "1 ")),
                Just((ApiType::MX, "10 ")),
                Just((ApiType::SRV, "0 0 1 ")),
                Just((ApiType::TXT, "\"a\" ")),
            ],
            noise in any_text(),
        ) {
            let text = format!("{prefix}{noise}");
            let rtype = to_wire_type(t);
            if let Ok(rdata) = parse_rdata(rtype, &origin(), &text) {
                let back = wire_round_trip(&rdata);
                prop_assert_eq!(canonical_rdata(&back), canonical_rdata(&rdata), "{}", text);
                let printed = rdata_to_text(&rdata);
                let again = parse_rdata(rtype, &origin(), &printed)
                    .map_err(|e| TestCaseError::fail(format!("{t} {text:?} printed {printed:?}: {e}")))?;
                prop_assert_eq!(canonical_rdata(&again), canonical_rdata(&rdata));
            }
        }
    }

    #[test]
    fn ownership_round_trips_and_fingerprints_follow_content() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let a = |d: &str| parse_rdata(RecordType::A, &origin, d).unwrap();
        let www = Name::from_ascii("www.example.com.").unwrap();
        let one = RRset::new(
            www.clone(),
            RecordType::A,
            300,
            vec![a("192.0.2.1"), a("192.0.2.2")],
        );
        let same = RRset::new(
            Name::from_ascii("WWW.example.com.").unwrap(),
            RecordType::A,
            300,
            vec![a("192.0.2.2"), a("192.0.2.1")],
        );
        let other_ttl = RRset::new(
            www.clone(),
            RecordType::A,
            60,
            vec![a("192.0.2.1"), a("192.0.2.2")],
        );
        assert_eq!(one.fingerprint(), same.fingerprint());
        assert_ne!(one.fingerprint(), other_ttl.fingerprint());
        let owned: Owned = [(one.key(), one.fingerprint())].into_iter().collect();
        assert_eq!(parse_owned(&format_owned(&owned)).unwrap(), owned);
        assert!(parse_owned("www.example.com. A").is_err());
        assert!(parse_owned("www.example.com. NOPE 00").is_err());
    }
}
