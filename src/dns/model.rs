//! The record model: names, RRsets and zones in canonical form, parsed from the records users
//! write (`spec.records`, `recordsFrom` zone text) and filled from transfers.
//!
//! Owner names are stored lower-cased and absolute; an RRset keeps its records sorted by their
//! canonical wire form without duplicates, so `==` on two RRsets means "same TTL and same set of
//! records" whatever the order or case they were written in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::str::FromStr;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, EncodeMode};
use hickory_proto::serialize::txt::Parser;

use crate::api::dns_zone::RecordSet;
use crate::api::shared::RecordType as ApiRecordType;

/// Identifies an RRset: owner name (lower-case, absolute) and type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RRsetKey {
    pub name: Name,
    pub rtype: RecordType,
}

impl fmt::Display for RRsetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
    }
}

/// Every record of one type at one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RRset {
    pub name: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    /// Sorted by canonical wire form, no duplicates.
    pub rdatas: Vec<RData>,
}

/// The canonical wire form of record data (RFC 4034 §6.2): uncompressed, names lower-cased.
/// Data that cannot be encoded sorts first and compares by its debug form.
pub fn canonical_rdata(rdata: &RData) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32);
    let mut enc = BinEncoder::with_mode(&mut buf, EncodeMode::Signing);
    enc.set_canonical_names(true);
    if rdata.emit(&mut enc).is_err() {
        return format!("{rdata:?}").into_bytes();
    }
    buf
}

impl RRset {
    /// An empty RRset.
    pub fn new(name: Name, rtype: RecordType, ttl: u32) -> Self {
        Self {
            name: name.to_lowercase(),
            rtype,
            ttl,
            rdatas: Vec::new(),
        }
    }

    pub fn key(&self) -> RRsetKey {
        RRsetKey {
            name: self.name.clone(),
            rtype: self.rtype,
        }
    }

    /// Adds one record's data, keeping the set sorted; returns false for a duplicate.
    pub fn add(&mut self, rdata: RData) -> bool {
        let c = canonical_rdata(&rdata);
        match self
            .rdatas
            .binary_search_by(|probe| canonical_rdata(probe).cmp(&c))
        {
            Ok(_) => false,
            Err(at) => {
                self.rdatas.insert(at, rdata);
                true
            }
        }
    }

    /// Removes one record's data; returns whether it was there.
    pub fn remove(&mut self, rdata: &RData) -> bool {
        let c = canonical_rdata(rdata);
        match self
            .rdatas
            .binary_search_by(|probe| canonical_rdata(probe).cmp(&c))
        {
            Ok(at) => {
                self.rdatas.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub fn len(&self) -> usize {
        self.rdatas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rdatas.is_empty()
    }

    /// The RRset as wire records.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.rdatas
            .iter()
            .map(|r| Record::from_rdata(self.name.clone(), self.ttl, r.clone()))
    }

    /// Zone-file lines, one per record: `www.example.com. 300 IN A 192.0.2.10`.
    pub fn to_lines(&self) -> Vec<String> {
        self.rdatas
            .iter()
            .map(|r| {
                format!(
                    "{} {} IN {} {}",
                    self.name,
                    self.ttl,
                    self.rtype,
                    presentation(r)
                )
            })
            .collect()
    }

    /// A stable 64-bit fingerprint of TTL and records (FNV-1a over the canonical form), kept
    /// with ownership so drift (the server changed what we applied) can be told apart from a
    /// spec change.
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
            eat(&(c.len() as u32).to_be_bytes());
            eat(&c);
        }
        h
    }
}

/// The presentation (zone-file) form of record data. hickory's `Display` prints TXT strings
/// unquoted, which does not parse back; character-strings are quoted and escaped here.
pub fn presentation(rdata: &RData) -> String {
    match rdata {
        RData::TXT(txt) => quote_strings(txt.txt_data()),
        other => other.to_string(),
    }
}

fn quote_strings(strings: &[Box<[u8]>]) -> String {
    let mut out = String::new();
    for (i, s) in strings.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        for &b in s.iter() {
            match b {
                b'"' | b'\\' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x20..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('"');
    }
    out
}

/// A zone: its origin and RRsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    origin: Name,
    rrsets: BTreeMap<RRsetKey, RRset>,
    records: usize,
}

impl Zone {
    pub fn new(origin: Name) -> Self {
        Self {
            origin: origin.to_lowercase(),
            rrsets: BTreeMap::new(),
            records: 0,
        }
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Adds a record (streaming from a transfer): merged into its RRset, duplicates dropped.
    /// The RRset takes the TTL of the record added last, as servers keep one TTL per RRset.
    pub fn insert(&mut self, record: Record) {
        let rtype = record.record_type();
        let name = record.name().to_lowercase();
        let ttl = record.ttl();
        let key = RRsetKey {
            name: name.clone(),
            rtype,
        };
        let set = self
            .rrsets
            .entry(key)
            .or_insert_with(|| RRset::new(name, rtype, ttl));
        set.ttl = ttl;
        if rtype == RecordType::SOA {
            // One SOA per zone: a newer one replaces the old.
            self.records -= set.rdatas.len();
            set.rdatas.clear();
        }
        if set.add(record.into_data()) {
            self.records += 1;
        }
    }

    /// Removes a record; an RRset left empty disappears.
    pub fn remove(&mut self, record: &Record) {
        let key = RRsetKey {
            name: record.name().to_lowercase(),
            rtype: record.record_type(),
        };
        if let Some(set) = self.rrsets.get_mut(&key) {
            if set.remove(record.data()) {
                self.records -= 1;
            }
            if set.is_empty() {
                self.rrsets.remove(&key);
            }
        }
    }

    /// Puts a whole RRset in place of whatever was there.
    pub fn put(&mut self, set: RRset) {
        let key = set.key();
        self.records += set.len();
        if let Some(old) = self.rrsets.insert(key, set) {
            self.records -= old.len();
        }
    }

    /// Removes a whole RRset.
    pub fn take(&mut self, key: &RRsetKey) -> Option<RRset> {
        let old = self.rrsets.remove(key)?;
        self.records -= old.len();
        Some(old)
    }

    pub fn get(&self, key: &RRsetKey) -> Option<&RRset> {
        self.rrsets.get(key)
    }

    /// RRsets in canonical order.
    pub fn rrsets(&self) -> impl Iterator<Item = &RRset> {
        self.rrsets.values()
    }

    /// Resource records in the zone (the SOA included).
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// The serial of the zone's SOA, if it has one.
    pub fn soa_serial(&self) -> Option<u32> {
        let key = RRsetKey {
            name: self.origin.clone(),
            rtype: RecordType::SOA,
        };
        self.rrsets.get(&key)?.rdatas.iter().find_map(|r| match r {
            RData::SOA(soa) => Some(soa.serial()),
            _ => None,
        })
    }
}

/// The wire type of an API record type.
pub fn to_wire_type(t: ApiRecordType) -> RecordType {
    match t {
        ApiRecordType::A => RecordType::A,
        ApiRecordType::AAAA => RecordType::AAAA,
        ApiRecordType::CNAME => RecordType::CNAME,
        ApiRecordType::MX => RecordType::MX,
        ApiRecordType::TXT => RecordType::TXT,
        ApiRecordType::SRV => RecordType::SRV,
        ApiRecordType::CAA => RecordType::CAA,
        ApiRecordType::NS => RecordType::NS,
        ApiRecordType::PTR => RecordType::PTR,
        ApiRecordType::DS => RecordType::DS,
        ApiRecordType::TLSA => RecordType::TLSA,
        ApiRecordType::SSHFP => RecordType::SSHFP,
        ApiRecordType::SVCB => RecordType::SVCB,
        ApiRecordType::HTTPS => RecordType::HTTPS,
        ApiRecordType::NAPTR => RecordType::NAPTR,
    }
}

/// Why the records of a spec were refused; names the record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("records[{index}] ({name} {rtype}): {message}")]
pub struct RecordError {
    pub index: usize,
    pub name: String,
    pub rtype: String,
    pub message: String,
}

/// Why zone-file text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

/// The longest character-string DNS allows (RFC 1035 §3.3).
const MAX_STRING: usize = 255;

/// Resolves an owner name: `@`, relative to the zone, or absolute inside it.
pub fn owner_name(origin: &Name, name: &str) -> Result<Name, String> {
    if name == "@" {
        return Ok(origin.to_lowercase());
    }
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("{name:?} is not a DNS name"));
    }
    let parsed = Name::from_ascii(name).map_err(|e| format!("{name:?} is not a DNS name: {e}"))?;
    let absolute = if parsed.is_fqdn() {
        parsed
    } else {
        parsed
            .append_domain(origin)
            .map_err(|e| format!("{name:?} is too long inside {origin}: {e}"))?
    };
    if !origin.zone_of(&absolute) {
        return Err(format!("{absolute} is outside the zone {origin}"));
    }
    Ok(absolute.to_lowercase())
}

fn refuse_directives(text: &str) -> Result<(), String> {
    for line in text.lines() {
        let l = line.trim_start();
        if l.len() >= 8 && l[..8].eq_ignore_ascii_case("$INCLUDE") {
            return Err("$INCLUDE is not allowed".into());
        }
    }
    Ok(())
}

/// Parses record data in presentation format; relative names are relative to `origin`.
pub fn parse_rdata(rtype: RecordType, origin: &Name, text: &str) -> Result<RData, String> {
    if text.contains(['\n', '\r']) {
        return Err("data must be on one line".into());
    }
    if text.trim().is_empty() {
        return Err("data is empty".into());
    }
    // One line of zone-file text through hickory's parser: it handles quoting, escapes and
    // relative names exactly as a zone file would.
    let zone_text = format!("@ 3600 IN {rtype} {text}\n");
    let parsed = Parser::new(zone_text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| e.to_string())?;
    let mut sets = parsed.1.into_values();
    let set = sets.next().ok_or("no record parsed")?;
    if sets.next().is_some() || set.record_type() != rtype {
        return Err(format!("not one {rtype} record"));
    }
    let mut records = set.records_without_rrsigs();
    let record = records.next().ok_or("no record parsed")?;
    if records.next().is_some() {
        return Err("more than one record".into());
    }
    let rdata = split_long_strings(record.data().clone());
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    rdata
        .emit(&mut enc)
        .map_err(|e| format!("cannot be encoded: {e}"))?;
    if buf.len() > usize::from(u16::MAX) {
        return Err("longer than 65535 bytes on the wire".into());
    }
    Ok(rdata)
}

/// TXT strings longer than 255 bytes are split into 255-byte strings, as zone files do.
fn split_long_strings(rdata: RData) -> RData {
    match rdata {
        RData::TXT(txt) if txt.txt_data().iter().any(|s| s.len() > MAX_STRING) => {
            let parts: Vec<&[u8]> = txt
                .txt_data()
                .iter()
                .flat_map(|s| s.chunks(MAX_STRING))
                .collect();
            RData::TXT(TXT::from_bytes(parts))
        }
        other => other,
    }
}

fn data_error(rtype: RecordType, data: &str, detail: &str) -> String {
    match rtype {
        RecordType::A => format!("{data:?} is not an IPv4 address"),
        RecordType::AAAA => format!("{data:?} is not an IPv6 address"),
        _ => format!("{data:?} is not valid {rtype} data: {detail}"),
    }
}

/// Parses `spec.records`. Every bad record is reported, each naming its index, name and type.
pub fn parse_record_sets(
    origin: &Name,
    default_ttl: u32,
    records: &[RecordSet],
) -> Result<Vec<RRset>, Vec<RecordError>> {
    let mut errors = Vec::new();
    let mut sets: Vec<(usize, RRset)> = Vec::new();
    let mut seen: BTreeMap<RRsetKey, usize> = BTreeMap::new();
    for (index, r) in records.iter().enumerate() {
        let rtype = to_wire_type(r.record_type);
        let err = |message: String| RecordError {
            index,
            name: r.name.clone(),
            rtype: rtype.to_string(),
            message,
        };
        let name = match owner_name(origin, &r.name) {
            Ok(n) => n,
            Err(e) => {
                errors.push(err(e));
                continue;
            }
        };
        let ttl = match r.ttl {
            None => default_ttl,
            Some(t) => match u32::try_from(t) {
                Ok(t) if t <= i32::MAX as u32 => t,
                _ => {
                    errors.push(err(format!("ttl {t} is outside 0..2147483647")));
                    continue;
                }
            },
        };
        if r.data.is_empty() {
            errors.push(err("data is empty".into()));
            continue;
        }
        let mut set = RRset::new(name.clone(), rtype, ttl);
        let mut ok = true;
        for data in &r.data {
            match parse_rdata(rtype, origin, data) {
                Ok(rdata) => {
                    set.add(rdata);
                }
                Err(detail) => {
                    errors.push(err(data_error(rtype, data, &detail)));
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        if rtype == RecordType::CNAME && set.len() > 1 {
            errors.push(err("a CNAME RRset holds exactly one record".into()));
            continue;
        }
        if rtype == RecordType::CNAME && name == *origin {
            errors.push(err("a CNAME cannot be at the zone apex".into()));
            continue;
        }
        if let Some(first) = seen.insert(set.key(), index) {
            errors.push(err(format!(
                "duplicate RRset: records[{first}] is the same name and type"
            )));
            continue;
        }
        sets.push((index, set));
    }
    errors.extend(cname_conflicts(&sets));
    if errors.is_empty() {
        Ok(sets.into_iter().map(|(_, s)| s).collect())
    } else {
        errors.sort_by_key(|e| e.index);
        Err(errors)
    }
}

/// RFC 1034 §3.6.2: a name with a CNAME has no other data.
fn cname_conflicts(sets: &[(usize, RRset)]) -> Vec<RecordError> {
    let cnames: BTreeMap<&Name, usize> = sets
        .iter()
        .filter(|(_, s)| s.rtype == RecordType::CNAME)
        .map(|(i, s)| (&s.name, *i))
        .collect();
    sets.iter()
        .filter(|(_, s)| s.rtype != RecordType::CNAME)
        .filter_map(|(i, s)| {
            cnames.get(&s.name).map(|c| RecordError {
                index: *i,
                name: s.name.to_string(),
                rtype: s.rtype.to_string(),
                message: format!("records[{c}] is a CNAME at the same name; a CNAME cannot stand beside other data"),
            })
        })
        .collect()
}

/// Parses zone-file text (`recordsFrom` ConfigMaps): `$ORIGIN` defaults to the zone, `$TTL`
/// to `default_ttl`; SOA is refused (the server owns it), as are names outside the zone.
pub fn parse_zone_text(
    origin: &Name,
    default_ttl: u32,
    text: &str,
) -> Result<Vec<RRset>, ModelError> {
    refuse_directives(text).map_err(ModelError)?;
    let with_ttl = format!("$TTL {default_ttl}\n{text}\n");
    let (_, sets) = Parser::new(with_ttl, None, Some(origin.clone()))
        .parse()
        .map_err(|e| ModelError(e.to_string()))?;
    let mut out = Vec::with_capacity(sets.len());
    for (_, set) in sets {
        let rtype = set.record_type();
        let name = set.name().to_lowercase();
        if rtype == RecordType::SOA {
            return Err(ModelError(
                "SOA records are managed by the server, not written".into(),
            ));
        }
        if !origin.zone_of(&name) {
            return Err(ModelError(format!("{name} is outside the zone {origin}")));
        }
        let mut rrset = RRset::new(name, rtype, set.ttl());
        for r in set.records_without_rrsigs() {
            rrset.add(split_long_strings(r.data().clone()));
        }
        out.push(rrset);
    }
    Ok(out)
}

/// Ownership: the RRsets an object manages, with the fingerprint of what was applied.
pub type Owned = BTreeMap<RRsetKey, u64>;

/// Reads ownership lines `name TYPE fingerprint`.
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
        let rtype = RecordType::from_str(rtype).map_err(|e| format!("line {}: {e}", i + 1))?;
        let fp = u64::from_str_radix(fp, 16).map_err(|e| format!("line {}: {e}", i + 1))?;
        owned.insert(
            RRsetKey {
                name: name.to_lowercase(),
                rtype,
            },
            fp,
        );
    }
    Ok(owned)
}

/// Writes what [`parse_owned`] reads.
pub fn format_owned(owned: &Owned) -> String {
    let mut out = String::new();
    for (k, fp) in owned {
        let _ = writeln!(out, "{} {} {fp:016x}", k.name, k.rtype);
    }
    out
}

/// The keys of an ownership map.
pub fn owned_keys(owned: &Owned) -> BTreeSet<RRsetKey> {
    owned.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    use proptest::prelude::*;

    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    /// One datum per supported type, in presentation form.
    const SAMPLES: [(ApiRecordType, &str); 15] = [
        (ApiRecordType::A, "192.0.2.10"),
        (ApiRecordType::AAAA, "2001:db8::10"),
        (ApiRecordType::CNAME, "www.example.com."),
        (ApiRecordType::MX, "10 mx1.example.com."),
        (
            ApiRecordType::TXT,
            "\"v=spf1 mx -all\" \"second \\\"quoted\\\" string\"",
        ),
        (ApiRecordType::SRV, "10 60 5060 sip.example.com."),
        (ApiRecordType::CAA, "0 issue \"letsencrypt.org\""),
        (ApiRecordType::NS, "ns1.sub.example.com."),
        (ApiRecordType::PTR, "www.example.com."),
        (
            ApiRecordType::DS,
            "12345 13 2 8F9C3C6E4D1A0B7E2F5A6C9D8E7F1A2B3C4D5E6F708192A3B4C5D6E7F8091A2B",
        ),
        (
            ApiRecordType::TLSA,
            "3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
        ),
        (
            ApiRecordType::SSHFP,
            "4 2 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
        ),
        (ApiRecordType::SVCB, "1 svc-pool.example.com. alpn=h2"),
        (ApiRecordType::HTTPS, "1 . alpn=h2,h3"),
        (
            ApiRecordType::NAPTR,
            "100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.com.",
        ),
    ];

    #[test]
    fn every_type_round_trips_text_model_wire_text() {
        for (api_type, text) in SAMPLES {
            let rtype = to_wire_type(api_type);
            let rdata = parse_rdata(rtype, &origin(), text)
                .unwrap_or_else(|e| panic!("{rtype} {text}: {e}"));
            // wire
            let record = Record::from_rdata(origin(), 300, rdata.clone());
            let mut buf = Vec::new();
            record.emit(&mut BinEncoder::new(&mut buf)).unwrap();
            let back = Record::read(&mut BinDecoder::new(&buf)).unwrap();
            assert_eq!(
                canonical_rdata(back.data()),
                canonical_rdata(&rdata),
                "{rtype} wire"
            );
            // text again
            let printed = presentation(back.data());
            let again = parse_rdata(rtype, &origin(), &printed)
                .unwrap_or_else(|e| panic!("{rtype} reprint {printed:?}: {e}"));
            assert_eq!(
                canonical_rdata(&again),
                canonical_rdata(&rdata),
                "{rtype}: {text} -> {printed}"
            );
        }
    }

    fn set(name: &str, t: ApiRecordType, data: &[&str]) -> RecordSet {
        RecordSet {
            name: name.into(),
            record_type: t,
            ttl: None,
            data: data.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn records_parse_with_names_ttls_and_canonical_order() {
        let sets = parse_record_sets(
            &origin(),
            3600,
            &[
                set("@", ApiRecordType::MX, &["20 MX2.example.com.", "10 mx1"]),
                set(
                    "WWW",
                    ApiRecordType::A,
                    &["192.0.2.2", "192.0.2.1", "192.0.2.2"],
                ),
                set("api.example.com.", ApiRecordType::AAAA, &["2001:db8::1"]),
            ],
        )
        .unwrap();
        assert_eq!(sets[0].name, origin());
        assert_eq!(sets[0].ttl, 3600);
        assert_eq!(sets[1].name.to_string(), "www.example.com.");
        assert_eq!(sets[1].len(), 2, "duplicates collapse");
        assert_eq!(sets[2].name.to_string(), "api.example.com.");
        // Same set written differently compares equal.
        let other = parse_record_sets(
            &origin(),
            3600,
            &[set(
                "www.EXAMPLE.com.",
                ApiRecordType::A,
                &["192.0.2.1", "192.0.2.2"],
            )],
        )
        .unwrap();
        assert_eq!(other[0], sets[1]);
        assert_eq!(other[0].fingerprint(), sets[1].fingerprint());
        assert_eq!(
            sets[0].to_lines()[0],
            "example.com. 3600 IN MX 10 mx1.example.com."
        );
    }

    #[test]
    fn malformed_records_are_named() {
        let err = parse_record_sets(
            &origin(),
            3600,
            &[
                set("ok", ApiRecordType::A, &["192.0.2.1"]),
                set("www", ApiRecordType::A, &["192.0.2.300"]),
                set("v6", ApiRecordType::AAAA, &["192.0.2.1"]),
                set("mail", ApiRecordType::MX, &["mx1.example.com."]),
                set("x.example.org.", ApiRecordType::A, &["192.0.2.1"]),
                set("alias", ApiRecordType::CNAME, &["www"]),
                set("alias", ApiRecordType::TXT, &["\"hi\""]),
                set("ok", ApiRecordType::A, &["192.0.2.9"]),
                set("@", ApiRecordType::CNAME, &["www"]),
            ],
        )
        .unwrap_err();
        let text: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert!(
            text.contains(
                &"records[1] (www A): \"192.0.2.300\" is not an IPv4 address".to_string()
            ),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("records[2] (v6 AAAA)")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("records[3] (mail MX)")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("records[4] (x.example.org. A)")
                    && t.contains("outside the zone")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("records[6]") && t.contains("CNAME")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("records[7]") && t.contains("duplicate")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("records[8]") && t.contains("apex")),
            "{text:?}"
        );
    }

    #[test]
    fn long_txt_strings_are_split_at_255_bytes() {
        let long = "a".repeat(600);
        let rdata = parse_rdata(RecordType::TXT, &origin(), &format!("\"{long}\"")).unwrap();
        let RData::TXT(txt) = rdata else { panic!() };
        let lens: Vec<usize> = txt.txt_data().iter().map(|s| s.len()).collect();
        assert_eq!(lens, [255, 255, 90]);
    }

    #[test]
    fn zone_text_parses_and_refuses_soa_include_and_outsiders() {
        let sets =
            parse_zone_text(&origin(), 300, "www IN A 192.0.2.1\nmail 60 IN MX 10 mx\n").unwrap();
        assert_eq!(sets.len(), 2);
        assert!(
            sets.iter()
                .any(|s| s.rtype == RecordType::A && s.ttl == 300)
        );
        assert!(parse_zone_text(&origin(), 300, "@ IN SOA ns hostmaster 1 2 3 4 5\n").is_err());
        assert!(parse_zone_text(&origin(), 300, "$INCLUDE /etc/passwd\n").is_err());
        assert!(parse_zone_text(&origin(), 300, "x.example.org. IN A 192.0.2.1\n").is_err());
    }

    #[test]
    fn zone_tracks_rrsets_records_and_serial() {
        let mut zone = Zone::new(origin());
        let soa = parse_rdata(
            RecordType::SOA,
            &origin(),
            "ns1 hostmaster 42 3600 600 86400 300",
        )
        .unwrap();
        zone.insert(Record::from_rdata(origin(), 300, soa));
        let a = parse_rdata(RecordType::A, &origin(), "192.0.2.1").unwrap();
        let www = Name::from_ascii("WWW.example.com.").unwrap();
        zone.insert(Record::from_rdata(www.clone(), 60, a.clone()));
        zone.insert(Record::from_rdata(www.clone(), 60, a.clone()));
        assert_eq!(zone.record_count(), 2);
        assert_eq!(zone.soa_serial(), Some(42));
        zone.remove(&Record::from_rdata(www, 60, a));
        assert_eq!(zone.record_count(), 1);
        assert_eq!(zone.rrsets().count(), 1);
    }

    #[test]
    fn ownership_round_trips() {
        let sets = parse_record_sets(
            &origin(),
            300,
            &[
                set("www", ApiRecordType::A, &["192.0.2.1"]),
                set("@", ApiRecordType::TXT, &["\"x\""]),
            ],
        )
        .unwrap();
        let owned: Owned = sets.iter().map(|s| (s.key(), s.fingerprint())).collect();
        assert_eq!(parse_owned(&format_owned(&owned)).unwrap(), owned);
        assert!(parse_owned("www.example.com. A").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn parse_rdata_never_panics(text in "\\PC{0,60}", idx in 0usize..15) {
            let rtype = to_wire_type(SAMPLES[idx].0);
            let _ = parse_rdata(rtype, &origin(), &text);
        }

        #[test]
        fn parse_rdata_never_panics_on_plausible_tokens(text in "[0-9a-zA-Z.:\" =,\\\\-]{0,40}", idx in 0usize..15) {
            let rtype = to_wire_type(SAMPLES[idx].0);
            let _ = parse_rdata(rtype, &origin(), &text);
        }
    }
}
