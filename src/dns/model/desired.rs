//! The RRsets a spec asks for, packed: one allocation per RRset instead of hickory's 80-byte
//! `Name` plus a 192-byte `RData` per record. A million-RRset spec is held for the whole of a
//! pass, so this is what the operator's memory is mostly made of.

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::canonical::decode_rdata;
use super::rrset::{RRset, fingerprint_canonical};
use super::zone::{Zone, key_name, key_type, owned_key};

/// Desired RRsets in the order they were given (duplicates are the caller's to refuse).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    sets: Vec<Packed>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Packed {
    /// `key length (u16) | zone map key | ttl (u32) | owner? | records`, where `owner?` is
    /// `0`, or `1` and the owner's labels as written (case kept) when the key's lower-case
    /// name would not give it back, and each record is `length (u16) | wire RDATA`.
    Bytes(Box<[u8]>),
    /// An RRset whose data does not read back from its wire form exactly: kept as it is.
    Plain(Box<RRset>),
}

impl Desired {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, set: RRset) {
        self.sets
            .push(pack(&set).map_or_else(|| Packed::Plain(Box::new(set)), Packed::Bytes));
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn clear(&mut self) {
        self.sets.clear();
    }

    /// Each RRset, decoded as it is reached, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = RRset> + Clone + '_ {
        self.sets.iter().map(unpack)
    }

    /// The RRset at `index`.
    pub fn get(&self, index: usize) -> Option<RRset> {
        self.sets.get(index).map(unpack)
    }

    /// The zone map key (canonical order under memcmp) of the RRset at `index`.
    pub(crate) fn key_bytes(&self, index: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
        Some(match self.sets.get(index)? {
            Packed::Bytes(b) => std::borrow::Cow::Borrowed(key_of(b)),
            Packed::Plain(set) => std::borrow::Cow::Owned(owned_key(&set.name, set.rtype)),
        })
    }

    /// Whether `observed` holds the RRset at `index` exactly ([`Zone::holds`]), told from
    /// its packed bytes without decoding it; `None` when they cannot tell: an RRset kept
    /// unpacked, or a type whose canonical form differs from the wire form kept here
    /// (embedded names are lower-cased in it). A no-change plan of a big zone is mostly this.
    pub(crate) fn held_by(&self, index: usize, observed: &Zone) -> Option<bool> {
        let (key, ttl, records) = self.canonical_parts(index)?;
        Some(observed.holds_canonical(key, ttl, records.into_iter()))
    }

    /// [`held_by`](Self::held_by) and, when held, the RRset's
    /// [`fingerprint`](RRset::fingerprint), both from the packed bytes; `None` when they
    /// cannot tell (as `held_by`). Adopting a million RRsets the server already holds is
    /// mostly this, and decoding each one took longer than the rest of the adoption.
    pub(crate) fn held_fingerprint(&self, index: usize, observed: &Zone) -> Option<Option<u64>> {
        let (key, ttl, records) = self.canonical_parts(index)?;
        let held = observed.holds_canonical(key, ttl, records.iter().copied());
        Some(held.then(|| fingerprint_canonical(ttl, records)))
    }

    /// The zone map key, TTL and records of the RRset at `index` when its packed records are
    /// their canonical form (types without names in their data) in canonical order.
    fn canonical_parts(&self, index: usize) -> Option<CanonicalParts<'_>> {
        let Packed::Bytes(bytes) = self.sets.get(index)? else {
            return None;
        };
        let key = key_of(bytes);
        // Data without names: the wire form is the canonical form.
        if !matches!(
            key_type(key),
            RecordType::A | RecordType::AAAA | RecordType::TXT
        ) {
            return None;
        }
        let mut at = 2 + key.len();
        let ttl = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if *bytes.get(at)? == 0 {
            at += 1;
        } else {
            at += 2;
            while *bytes.get(at)? != 0 {
                at += 1 + usize::from(bytes[at]);
            }
            at += 1;
        }
        let mut records = Vec::with_capacity(1);
        while at < bytes.len() {
            let len = usize::from(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
            records.push(bytes.get(at + 2..at + 2 + len)?);
            at += 2 + len;
        }
        // An RRset keeps its records sorted without duplicates; one built otherwise is
        // judged the long way.
        if !records.windows(2).all(|w| w[0] < w[1]) {
            return None;
        }
        Some((key, ttl, records))
    }

    pub fn to_vec(&self) -> Vec<RRset> {
        self.iter().collect()
    }
}

impl From<Vec<RRset>> for Desired {
    fn from(sets: Vec<RRset>) -> Self {
        sets.into_iter().collect()
    }
}

impl FromIterator<RRset> for Desired {
    fn from_iter<T: IntoIterator<Item = RRset>>(iter: T) -> Self {
        let mut desired = Desired::new();
        for set in iter {
            desired.push(set);
        }
        desired
    }
}

/// An RRset's zone map key, TTL and records in canonical form and order.
type CanonicalParts<'a> = (&'a [u8], u32, Vec<&'a [u8]>);

fn key_of(bytes: &[u8]) -> &[u8] {
    let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    &bytes[2..2 + len]
}

/// Whether the lower-case name of the zone map key gives `name` back.
fn owner_from_key(name: &Name) -> bool {
    name.is_fqdn() && !name.iter().any(|l| l.iter().any(u8::is_ascii_uppercase))
}

fn pack(set: &RRset) -> Option<Box<[u8]>> {
    let key = owned_key(&set.name, set.rtype);
    let mut out = Vec::with_capacity(key.len() + 16 + set.rdatas.len() * 8);
    out.extend_from_slice(&u16::try_from(key.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&key);
    out.extend_from_slice(&set.ttl.to_be_bytes());
    if owner_from_key(&set.name) {
        out.push(0);
    } else {
        out.push(1);
        out.push(u8::from(set.name.is_fqdn()));
        for label in set.name.iter() {
            out.push(u8::try_from(label.len()).ok()?);
            out.extend_from_slice(label);
        }
        out.push(0);
    }
    let mut wire = Vec::new();
    for rdata in &set.rdatas {
        // Addresses are their octets, and read back as they are: no encoder, no check.
        match rdata {
            RData::A(a) if set.rtype == RecordType::A => {
                out.extend_from_slice(&[0, 4]);
                out.extend_from_slice(&a.0.octets());
                continue;
            }
            RData::AAAA(a) if set.rtype == RecordType::AAAA => {
                out.extend_from_slice(&[0, 16]);
                out.extend_from_slice(&a.0.octets());
                continue;
            }
            _ => {}
        }
        wire.clear();
        let mut encoder = BinEncoder::new(&mut wire);
        rdata.emit(&mut encoder).ok()?;
        // Only what reads back exactly is packed (case of embedded names included).
        if decode_rdata(set.rtype, &wire).ok().as_ref() != Some(rdata) {
            return None;
        }
        out.extend_from_slice(&u16::try_from(wire.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&wire);
    }
    Some(out.into_boxed_slice())
}

fn unpack(packed: &Packed) -> RRset {
    match packed {
        Packed::Plain(set) => (**set).clone(),
        Packed::Bytes(bytes) => unpack_bytes(bytes),
    }
}

/// Reads what [`pack`] wrote (and checked): every read is in bounds of its own output.
fn unpack_bytes(bytes: &[u8]) -> RRset {
    let key = key_of(bytes);
    let rtype: RecordType = key_type(key);
    let mut at = 2 + key.len();
    let u16_at = |i: usize| usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
    let ttl = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    at += 4;
    let name = if bytes[at] == 0 {
        at += 1;
        key_name(key)
    } else {
        let fqdn = bytes[at + 1] == 1;
        at += 2;
        let mut labels: Vec<&[u8]> = Vec::new();
        while bytes[at] != 0 {
            let len = usize::from(bytes[at]);
            labels.push(&bytes[at + 1..at + 1 + len]);
            at += 1 + len;
        }
        at += 1;
        let mut name = Name::from_labels(labels).unwrap_or_else(|_| key_name(key));
        name.set_fqdn(fqdn);
        name
    };
    // Sized first: most RRsets hold one record, and a growing Vec of `RData` reserves four
    // (768 bytes) — 77 MB of a 100k-record apply's peak was those empty slots.
    let mut count = 0;
    let mut next = at;
    while next < bytes.len() {
        next += 2 + u16_at(next);
        count += 1;
    }
    let mut rdatas: Vec<RData> = Vec::with_capacity(count);
    while at < bytes.len() {
        let len = u16_at(at);
        let wire = &bytes[at + 2..at + 2 + len];
        at += 2 + len;
        if let Ok(rdata) = decode_rdata(rtype, wire) {
            rdatas.push(rdata);
        }
    }
    RRset {
        name,
        rtype,
        ttl,
        rdatas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::{parse_rdata, parse_zone_text};

    #[test]
    fn rrsets_read_back_as_given_case_order_and_all() {
        let origin = Name::from_ascii("Example.com.").unwrap();
        let text = "$TTL 300\nWWW IN A 192.0.2.1\nwww IN AAAA 2001:db8::1\n\
                    mail MX 10 MX1.Example.com.\nmail MX 20 mx2\n\
                    txt TXT \"a b\" \"c\"\n_svc._tcp SRV 0 5 443 Host.example.com.\n";
        let mut sets = parse_zone_text(&origin, 3600, text).unwrap();
        sets.push(RRset::new(
            Name::from_ascii("Alias.Example.com.").unwrap(),
            RecordType::CNAME,
            600,
            vec![parse_rdata(RecordType::CNAME, &origin, "Target.Example.com.").unwrap()],
        ));
        let mut relative = sets[0].clone();
        relative.name = Name::from_ascii("rel").unwrap();
        sets.push(relative);
        let desired: Desired = sets.clone().into();
        assert_eq!(desired.len(), sets.len());
        let back = desired.to_vec();
        for (want, got) in sets.iter().zip(&back) {
            assert_eq!(want, got);
            assert_eq!(
                want.name.to_string(),
                got.name.to_string(),
                "owner case kept"
            );
            assert_eq!(want.name.is_fqdn(), got.name.is_fqdn());
            assert_eq!(want.to_lines(), got.to_lines(), "data case kept");
        }
        assert!(
            desired.sets.iter().all(|p| matches!(p, Packed::Bytes(_))),
            "these all pack"
        );
        for (i, set) in sets.iter().enumerate() {
            assert_eq!(
                desired.key_bytes(i).unwrap().as_ref(),
                owned_key(&set.name, set.rtype)
            );
        }
    }

    #[test]
    fn held_by_answers_as_the_zone_holds_or_not_at_all() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let served = "$TTL 300\nwww A 192.0.2.1\nwww A 192.0.2.2\nWWW AAAA 2001:db8::1\n\
                      txt TXT \"a b\" \"c\"\nmail MX 10 mx1\n";
        let zone = Zone::from_rrsets(
            origin.clone(),
            parse_zone_text(&origin, 3600, served).unwrap(),
        );
        // Held as served, with case or order of its own, and not: TTL, data, a record
        // more or less, a name the zone lacks; an MX is not judged from its bytes.
        let asked = "$TTL 300\nWww A 192.0.2.2\nwww A 192.0.2.1\nwww AAAA 2001:db8::1\n\
                     txt TXT \"a b\" \"c\"\nmail MX 10 mx1\n\
                     a A 192.0.2.1\nb 60 TXT \"a b\" \"c\"\n";
        let mut sets = parse_zone_text(&origin, 3600, asked).unwrap();
        let www = sets
            .iter()
            .find(|s| s.rtype == RecordType::A && s.len() == 2)
            .unwrap()
            .clone();
        let asked_len = sets.len();
        let mut other = |f: &dyn Fn(&mut RRset)| {
            let mut s = www.clone();
            f(&mut s);
            sets.push(s)
        };
        other(&|s| s.ttl = 60);
        other(&|s| {
            s.rdatas.pop();
        });
        other(&|s| {
            s.rdatas
                .push(parse_rdata(RecordType::A, &origin, "192.0.2.9").unwrap())
        });
        let mut unsorted = www.clone();
        unsorted.rdatas.reverse();
        sets.push(unsorted);
        let desired: Desired = sets.clone().into();
        let mut told = 0;
        for (i, set) in sets.iter().enumerate() {
            // With the fingerprint the decoded RRset has, where held.
            let fingerprint = desired.held_fingerprint(i, &zone);
            assert_eq!(
                fingerprint,
                desired
                    .held_by(i, &zone)
                    .map(|held| held.then(|| set.fingerprint()))
            );
            match desired.held_by(i, &zone) {
                Some(held) => {
                    assert_eq!(held, zone.holds(set), "{set:?}");
                    told += 1;
                }
                None => assert!(
                    set.rtype == RecordType::MX || i == sets.len() - 1,
                    "{set:?} should be told from its bytes"
                ),
            }
        }
        assert_eq!(told, sets.len() - 2);
        let held = (0..asked_len).filter(|&i| desired.held_by(i, &zone) == Some(true));
        assert_eq!(held.count(), 3, "www A, www AAAA and txt TXT are held");
    }
}
