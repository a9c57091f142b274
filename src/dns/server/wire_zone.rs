//! A served zone version in wire form: what AXFR sends, kept as bytes.
//!
//! A [`Zone`] is built for editing and comparing (a map of RRsets, several allocations
//! per record); a version that is only served needs its records in transfer order and
//! nothing else. Each record is kept as its owner name relative to the origin (the origin
//! is written once per message and pointed at) followed by type, class, TTL and RDATA as
//! they go on the wire, in one run of large chunks: about the size of the zone's AXFR.

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, EncodeMode,
};

use super::handler::JournalEntry;
use crate::dns::model::Zone;

/// Bytes per chunk of records: big enough that chunks are few, small enough that the
/// unused tail of the last one does not matter.
const CHUNK: usize = 1 << 20;

/// Offset at which records that may hold names are re-encoded: hickory never compresses
/// against a name written at or beyond 0x4000, so names come out whole, in their case.
const NO_POINTERS: usize = 0x4000;

/// Owner length byte that marks a whole (absolute) owner name, its length next.
const ABSOLUTE: u8 = 0xff;

/// Why a zone could not be put in wire form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireZoneError {
    /// A record did not encode (or decode back).
    #[error("record of zone {zone} does not encode: {detail}")]
    Encode { zone: String, detail: String },
}

/// One zone version in wire form (see the module documentation).
#[derive(Debug, Clone)]
pub struct WireZone {
    origin: Name,
    /// The origin, uncompressed, in the case it was given.
    origin_wire: Vec<u8>,
    /// The apex SOA, decoded (SOA queries and IXFR need it as a record).
    soa: Option<Record>,
    /// The apex SOA as stored in `chunks`.
    soa_wire: Option<Vec<u8>>,
    /// Records in canonical order: `[owner length][owner][type class ttl rdlength rdata]`,
    /// where an owner below the origin is its labels without the origin, and any other
    /// owner is a whole name (ending with the root label).
    chunks: Vec<Vec<u8>>,
    records: usize,
    bytes: usize,
}

/// One record of a [`WireZone`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireRecord<'a> {
    /// Owner labels: relative to the origin unless [`Self::absolute`].
    pub owner: &'a [u8],
    /// Whether `owner` is a whole name rather than labels before the origin.
    pub absolute: bool,
    /// Type, class, TTL, RDATA length and RDATA, as on the wire.
    pub rest: &'a [u8],
}

impl WireRecord<'_> {
    /// The record type.
    pub fn rtype(&self) -> RecordType {
        RecordType::from(u16::from_be_bytes([self.rest[0], self.rest[1]]))
    }

    fn ttl(&self) -> &[u8] {
        &self.rest[4..8]
    }

    fn rdata(&self) -> &[u8] {
        &self.rest[10..]
    }
}

/// Uncompressed wire form of `name`, in its case.
pub(crate) fn name_wire(name: &Name, out: &mut Vec<u8>) {
    for label in name.iter() {
        // Labels of a valid name are at most 63 bytes.
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend_from_slice(label);
    }
    out.push(0);
}

/// Length of the uncompressed name at the start of `wire` (root label included).
fn name_end(wire: &[u8]) -> usize {
    let mut end = 0;
    while let Some(&l) = wire.get(end) {
        end += 1 + usize::from(l);
        if l == 0 {
            break;
        }
    }
    end
}

/// Whether a label of uncompressed wire `name` starts at `at`.
fn is_label_start(name: &[u8], at: usize) -> bool {
    let mut i = 0;
    while i < at {
        match name.get(i) {
            Some(&l) if l > 0 => i += 1 + usize::from(l),
            _ => return false,
        }
    }
    i == at
}

/// Start offsets of the labels in uncompressed wire `name` (root label excluded);
/// `None` when the bytes are not a sequence of labels.
fn label_starts(name: &[u8]) -> Option<Vec<usize>> {
    let mut starts = Vec::with_capacity(8);
    let mut i = 0;
    while i < name.len() {
        let len = usize::from(name[i]);
        if len == 0 {
            return (i + 1 == name.len()).then_some(starts);
        }
        if len > 63 {
            return None;
        }
        starts.push(i);
        i += 1 + len;
    }
    (i == name.len()).then_some(starts)
}

impl WireZone {
    /// Puts `zone` in wire form.
    pub fn from_zone(zone: &Zone) -> Result<Self, WireZoneError> {
        let origin = zone.origin().clone();
        let mut origin_wire = Vec::with_capacity(64);
        name_wire(&origin, &mut origin_wire);
        let mut this = Self {
            origin,
            origin_wire,
            soa: None,
            soa_wire: None,
            chunks: Vec::new(),
            records: 0,
            bytes: 0,
        };
        let mut scratch = Vec::with_capacity(NO_POINTERS + 512);
        let fail = |detail: String| WireZoneError::Encode {
            zone: zone.origin().to_ascii(),
            detail,
        };
        zone.write_records(|wire: &[u8]| -> Result<(), String> { this.push(wire, &mut scratch) })
            .map_err(fail)?;
        if let Some(last) = this.chunks.last_mut() {
            last.shrink_to_fit();
        }
        Ok(this)
    }

    /// Adds one whole uncompressed record as [`Zone::write_records`] gives it.
    fn push(&mut self, wire: &[u8], scratch: &mut Vec<u8>) -> Result<(), String> {
        let owner_end = name_end(wire);
        let rtype = match wire.get(owner_end..owner_end + 2) {
            Some(t) => RecordType::from(u16::from_be_bytes([t[0], t[1]])),
            None => return Err("record too short".to_string()),
        };
        // Data without names is stored as given; data that may hold names is encoded
        // again, because hickory compresses names against the owner (case kept by the
        // model comes that way) and a pointer would be wrong in any other message.
        let plain = matches!(rtype, RecordType::A | RecordType::AAAA | RecordType::TXT);
        let record = if plain {
            None
        } else {
            let mut decoder = BinDecoder::new(wire);
            Some(Record::read(&mut decoder).map_err(|e| e.to_string())?)
        };
        let whole: &[u8] = match &record {
            None => wire,
            Some(record) => {
                scratch.clear();
                scratch.resize(NO_POINTERS, 0);
                let mut encoder =
                    BinEncoder::with_offset(scratch, NO_POINTERS as u32, EncodeMode::Normal);
                record.emit(&mut encoder).map_err(|e| e.to_string())?;
                &scratch[NO_POINTERS..]
            }
        };
        let (owner, rest) = whole.split_at(name_end(whole).min(whole.len()));
        let suffix = owner.len() - self.origin_wire.len().min(owner.len());
        let relative = owner.ends_with(&self.origin_wire) && is_label_start(owner, suffix);
        let stored_owner = if relative { &owner[..suffix] } else { owner };
        let apex_soa = relative && suffix == 0 && rtype == RecordType::SOA;
        if apex_soa && self.soa.is_none() {
            self.soa = record;
            self.soa_wire = Some(rest.to_vec());
        }
        let need = 2 + stored_owner.len() + rest.len();
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.len() + need <= c.capacity());
        if !fits {
            if let Some(last) = self.chunks.last_mut() {
                last.shrink_to_fit();
            }
            self.chunks.push(Vec::with_capacity(CHUNK.max(need)));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            let len = u8::try_from(stored_owner.len()).map_err(|_| "owner too long")?;
            if relative {
                // At most 254: the origin takes at least the root's byte.
                chunk.push(len);
            } else {
                // Absolute owners are rare (never in a well-formed zone): a marker, then
                // the length.
                chunk.extend_from_slice(&[ABSOLUTE, len]);
            }
            chunk.extend_from_slice(stored_owner);
            chunk.extend_from_slice(rest);
        }
        self.records += 1;
        self.bytes += need;
        Ok(())
    }

    /// The zone's origin.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The origin in uncompressed wire form.
    pub fn origin_wire(&self) -> &[u8] {
        &self.origin_wire
    }

    /// The apex SOA.
    pub fn soa(&self) -> Option<&Record> {
        self.soa.as_ref()
    }

    /// The apex SOA's type, class, TTL and RDATA as stored.
    pub fn soa_rest(&self) -> Option<&[u8]> {
        self.soa_wire.as_deref()
    }

    /// The apex SOA's serial.
    pub fn soa_serial(&self) -> Option<u32> {
        match self.soa.as_ref().map(Record::data) {
            Some(RData::SOA(soa)) => Some(soa.serial()),
            _ => None,
        }
    }

    /// Number of records.
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// Bytes the records take.
    pub fn byte_len(&self) -> usize {
        self.bytes
    }

    /// Bytes allocated for the records (chunks' capacity).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>()
            + self.soa_wire.as_ref().map_or(0, Vec::capacity)
    }

    /// Every record in canonical order (the apex SOA included).
    pub fn records(&self) -> impl Iterator<Item = WireRecord<'_>> {
        self.chunks
            .iter()
            .flat_map(|chunk| Records { chunk, at: 0 })
    }

    /// The whole owner name of `record`, uncompressed.
    pub fn owner_wire(&self, record: &WireRecord<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(record.owner);
        if !record.absolute {
            out.extend_from_slice(&self.origin_wire);
        }
    }

    /// `record` decoded.
    pub fn decode(&self, record: &WireRecord<'_>) -> Result<Record, WireZoneError> {
        let mut wire = Vec::with_capacity(record.owner.len() + 64 + record.rest.len());
        self.owner_wire(record, &mut wire);
        wire.extend_from_slice(record.rest);
        let mut decoder = BinDecoder::new(&wire);
        Record::read(&mut decoder).map_err(|e| WireZoneError::Encode {
            zone: self.origin.to_ascii(),
            detail: e.to_string(),
        })
    }

    /// The version as a [`Zone`] (decodes every record: for editing, not serving).
    pub fn to_zone(&self) -> Result<Zone, WireZoneError> {
        let mut zone = Zone::new(self.origin.clone());
        for record in self.records() {
            zone.insert(self.decode(&record)?);
        }
        Ok(zone)
    }

    /// The journal entry leading from `old` to `new` (apex SOAs in its SOA fields, the
    /// rest as records removed and added), found by walking both in canonical order;
    /// `None` when either has no SOA.
    pub fn journal_entry(old: &Self, new: &Self) -> Option<JournalEntry> {
        let from_soa = old.soa.clone()?;
        let to_soa = new.soa.clone()?;
        let mut entry = JournalEntry {
            from_soa,
            to_soa,
            deleted: Vec::new(),
            added: Vec::new(),
        };
        let mut a = RRsets::new(old);
        let mut b = RRsets::new(new);
        let (mut x, mut y) = (a.next(), b.next());
        loop {
            let order = match (&x, &y) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                // Most RRsets are the same bytes in both versions: no key needed.
                (Some(p), Some(q)) if p.records == q.records => std::cmp::Ordering::Equal,
                (Some(p), Some(q)) => run_key(old, p).cmp(&run_key(new, q)),
            };
            match order {
                std::cmp::Ordering::Less => {
                    if let Some(p) = x.take() {
                        old.collect(&p.records, |_| true, &mut entry.deleted);
                    }
                    x = a.next();
                }
                std::cmp::Ordering::Greater => {
                    if let Some(q) = y.take() {
                        new.collect(&q.records, |_| true, &mut entry.added);
                    }
                    y = b.next();
                }
                std::cmp::Ordering::Equal => {
                    if let (Some(p), Some(q)) = (x.take(), y.take()) {
                        // A TTL change rewrites every record; otherwise only the difference.
                        let ttl_changed = p.records[0].ttl() != q.records[0].ttl();
                        let in_q =
                            |r: &WireRecord<'_>| q.records.iter().any(|s| s.rdata() == r.rdata());
                        let in_p =
                            |r: &WireRecord<'_>| p.records.iter().any(|s| s.rdata() == r.rdata());
                        old.collect(&p.records, |r| ttl_changed || !in_q(r), &mut entry.deleted);
                        new.collect(&q.records, |r| ttl_changed || !in_p(r), &mut entry.added);
                    }
                    x = a.next();
                    y = b.next();
                }
            }
        }
        Some(entry)
    }

    fn collect(
        &self,
        records: &[WireRecord<'_>],
        keep: impl Fn(&WireRecord<'_>) -> bool,
        out: &mut Vec<Record>,
    ) {
        for r in records.iter().filter(|r| keep(r)) {
            match self.decode(r) {
                Ok(record) => out.push(record),
                // Bytes this zone encoded itself decode; should one not, the journal
                // would be wrong, which is worse than a missing difference: say so.
                Err(e) => tracing::error!(error = %e, "served record does not decode"),
            }
        }
    }
}

/// Records of one chunk.
struct Records<'a> {
    chunk: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = WireRecord<'a>;

    fn next(&mut self) -> Option<WireRecord<'a>> {
        let bytes = self.chunk.get(self.at..)?;
        let &first = bytes.first()?;
        let (absolute, owner_len, skip) = if first == ABSOLUTE {
            (true, usize::from(*bytes.get(1)?), 2)
        } else {
            (false, usize::from(first), 1)
        };
        let owner = bytes.get(skip..skip + owner_len)?;
        let fixed = skip + owner_len;
        let rdlen = bytes.get(fixed + 8..fixed + 10)?;
        let rdlen = usize::from(u16::from_be_bytes([rdlen[0], rdlen[1]]));
        let rest = bytes.get(fixed..fixed + 10 + rdlen)?;
        self.at += fixed + 10 + rdlen;
        Some(WireRecord {
            owner,
            absolute,
            rest,
        })
    }
}

/// One RRset (records sharing owner and type, consecutive); [`run_key`] gives its model
/// key, whose byte order is the order the records are stored in.
struct RRsetRun<'a> {
    records: Vec<WireRecord<'a>>,
}

/// The model key of a run's owner and type.
fn run_key(zone: &WireZone, run: &RRsetRun<'_>) -> Vec<u8> {
    let first = &run.records[0];
    let mut name = Vec::with_capacity(first.owner.len() + zone.origin_wire.len());
    zone.owner_wire(first, &mut name);
    model_key(&name, first.rtype())
}

struct RRsets<'a> {
    records: std::iter::Peekable<Box<dyn Iterator<Item = WireRecord<'a>> + 'a>>,
}

impl<'a> RRsets<'a> {
    fn new(zone: &'a WireZone) -> Self {
        let records: Box<dyn Iterator<Item = WireRecord<'a>> + 'a> = Box::new(zone.records());
        Self {
            records: records.peekable(),
        }
    }
}

impl<'a> Iterator for RRsets<'a> {
    type Item = RRsetRun<'a>;

    fn next(&mut self) -> Option<RRsetRun<'a>> {
        loop {
            let first = self.records.next()?;
            let mut records = vec![first];
            while let Some(next) = self.records.peek() {
                let same = next.owner.eq_ignore_ascii_case(first.owner)
                    && next.absolute == first.absolute
                    && next.rest[..4] == first.rest[..4];
                if !same {
                    break;
                }
                records.extend(self.records.next());
            }
            // The apex SOA travels in the journal entry's SOA fields.
            if !first.absolute && first.owner.is_empty() && first.rtype() == RecordType::SOA {
                continue;
            }
            return Some(RRsetRun { records });
        }
    }
}

/// The zone map's key of a wire name and type (see `model::zone::write_key`): lower-case
/// labels from the root, each closed by `00 01` (a zero byte escaped as `00 ff`), the name
/// closed by `00 00`, then the type.
fn model_key(name: &[u8], rtype: RecordType) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 8);
    let starts = label_starts(name).unwrap_or_default();
    for &s in starts.iter().rev() {
        let len = usize::from(name[s]);
        for &b in &name[s + 1..s + 1 + len] {
            if b == 0 {
                key.extend_from_slice(&[0, 0xff]);
            } else {
                key.push(b.to_ascii_lowercase());
            }
        }
        key.extend_from_slice(&[0, 1]);
    }
    key.extend_from_slice(&[0, 0]);
    key.extend_from_slice(&u16::from(rtype).to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::server::handler::journal_entry;
    use hickory_proto::rr::rdata::{A, CNAME, MX, SOA};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn zone(serial: u32, extra: &[(&str, RData)]) -> Zone {
        let mut z = Zone::new(name("Example.com."));
        z.insert(Record::from_rdata(
            name("Example.com."),
            3600,
            RData::SOA(SOA::new(
                name("NS1.Example.com."),
                name("hostmaster.example.com."),
                serial,
                1,
                2,
                3,
                4,
            )),
        ));
        for (owner, data) in extra {
            z.insert(Record::from_rdata(name(owner), 300, data.clone()));
        }
        z
    }

    /// What goes in comes back, case of owners and embedded names included, and no
    /// stored record holds a compression pointer.
    #[test]
    fn wire_form_gives_the_zone_back() {
        let z = zone(
            7,
            &[
                ("www.Example.com.", RData::A(A::new(192, 0, 2, 1))),
                ("www.Example.com.", RData::A(A::new(192, 0, 2, 2))),
                (
                    "Alias.Example.com.",
                    RData::CNAME(CNAME(name("Target.Example.com."))),
                ),
                (
                    "Example.com.",
                    RData::MX(MX::new(10, name("MX.Example.com."))),
                ),
                ("outside.example.net.", RData::A(A::new(192, 0, 2, 3))),
            ],
        );
        let w = WireZone::from_zone(&z).unwrap();
        assert_eq!(w.record_count(), 6);
        assert_eq!(w.soa_serial(), Some(7));
        let back = w.to_zone().unwrap();
        assert_eq!(back, z);
        let alias = back
            .get_by(&name("alias.example.com."), RecordType::CNAME)
            .unwrap();
        assert_eq!(alias.name.to_ascii(), "Alias.Example.com.");
        let RData::CNAME(CNAME(t)) = &alias.rdatas[0] else {
            panic!()
        };
        assert_eq!(t.to_ascii(), "Target.Example.com.");
        let absolute: Vec<_> = w.records().filter(|r| r.absolute).collect();
        assert_eq!(
            absolute.len(),
            1,
            "the name outside the origin is kept whole"
        );
        for r in w.records() {
            // Each record decodes on its own: nothing points outside it.
            w.decode(&r).unwrap();
        }
    }

    /// The wire diff finds what the model diff finds.
    #[test]
    fn wire_journal_matches_the_model_journal() {
        let old = zone(
            1,
            &[
                ("a.Example.com.", RData::A(A::new(192, 0, 2, 1))),
                ("b.Example.com.", RData::A(A::new(192, 0, 2, 2))),
                ("b.Example.com.", RData::A(A::new(192, 0, 2, 3))),
                ("c.Example.com.", RData::A(A::new(192, 0, 2, 4))),
            ],
        );
        let mut new = zone(
            2,
            &[
                ("b.Example.com.", RData::A(A::new(192, 0, 2, 2))),
                ("b.Example.com.", RData::A(A::new(192, 0, 2, 9))),
                ("d.Example.com.", RData::A(A::new(192, 0, 2, 5))),
            ],
        );
        new.insert(Record::from_rdata(
            name("c.Example.com."),
            60,
            RData::A(A::new(192, 0, 2, 4)),
        ));
        let want = journal_entry(&old, &new).unwrap();
        let got = WireZone::journal_entry(
            &WireZone::from_zone(&old).unwrap(),
            &WireZone::from_zone(&new).unwrap(),
        )
        .unwrap();
        let text = |rs: &[Record]| {
            let mut v: Vec<String> = rs.iter().map(|r| r.to_string().to_lowercase()).collect();
            v.sort();
            v
        };
        assert_eq!(text(&got.deleted), text(&want.deleted));
        assert_eq!(text(&got.added), text(&want.added));
        assert_eq!(got.deleted.len(), 3, "a, b 192.0.2.3, c at the old TTL");
        assert_eq!(got.added.len(), 3, "b 192.0.2.9, c at the new TTL, d");
        assert_eq!(got.to_soa.to_string(), want.to_soa.to_string());
    }
}
