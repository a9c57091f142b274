//! RRsets and their keys: what one name and type hold, compared the way DNS compares.

use std::fmt;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::canonical::canonical_rdata;
use super::name::{name_cmp, name_eq, name_to_text};
use super::rdata_text::rdata_to_text;

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
        // One record is in order; its canonical form need not be computed for that.
        if self.rdatas.len() < 2 {
            return;
        }
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
        fingerprint_canonical(self.ttl, self.rdatas.iter().map(canonical_rdata))
    }

    /// Inserts one rdata keeping the order; returns false when it was already there.
    pub(super) fn insert_sorted(&mut self, rdata: RData) -> bool {
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
pub(super) fn rdata_eq(a: &RData, b: &RData) -> bool {
    match (a, b) {
        // hickory's PartialEq compares embedded names case-insensitively, which is the
        // canonical rule for every supported type except SVCB/HTTPS (RFC 9460 keeps case).
        (RData::SVCB(_), _) | (RData::HTTPS(_), _) => canonical_rdata(a) == canonical_rdata(b),
        _ => a == b,
    }
}

/// [`RRset::fingerprint`] of a TTL and records already in canonical form and order: FNV-1a
/// over the TTL, then each record's length (u32) and bytes.
pub(super) fn fingerprint_canonical<R: AsRef<[u8]>>(
    ttl: u32,
    records: impl IntoIterator<Item = R>,
) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&ttl.to_be_bytes());
    for r in records {
        let c = r.as_ref();
        eat(&u32::try_from(c.len()).unwrap_or(u32::MAX).to_be_bytes());
        eat(c);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::test_support::*;
    use crate::dns::model::*;
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;

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
}
