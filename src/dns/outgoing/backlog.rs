//! The IXFR backlog of a served zone: the differences between consecutive served
//! serials, bounded by count and bytes, and its serialisable form for persistence.

use std::collections::VecDeque;

use base64::Engine;
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use crate::dns::server::JournalEntry;

/// How much history is kept, in effect: both bounds are fixed numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BacklogLimits {
    /// Most versions (differences) kept.
    pub max_versions: usize,
    /// Most bytes (wire size of the records of all differences) kept.
    pub max_bytes: usize,
}

impl Default for BacklogLimits {
    fn default() -> Self {
        Self {
            max_versions: 50,
            max_bytes: 64 << 20,
        }
    }
}

/// The least a percentage bound allows: 10% of a zone of a few records would not hold
/// even one difference, and small zones should keep their recent history.
pub const PERCENT_FLOOR_BYTES: usize = 64 << 10;

/// The byte bound as configured (`spec.outgoing.ixfrBacklog`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BacklogBytes {
    /// At most this many bytes.
    Fixed(usize),
    /// At most this percentage of the served zone's wire size, and at least
    /// [`PERCENT_FLOOR_BYTES`].
    PercentOfZone(u32),
}

/// The backlog's bounds as configured; the default is `spec.outgoing.ixfrBacklog`'s
/// (50 versions, 10% of the zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BacklogBounds {
    /// Most versions (differences) kept.
    pub max_versions: usize,
    /// Most bytes kept.
    pub bytes: BacklogBytes,
}

impl Default for BacklogBounds {
    fn default() -> Self {
        Self {
            max_versions: 50,
            bytes: BacklogBytes::PercentOfZone(10),
        }
    }
}

/// The backlog; the oldest differences leave first when a bound is passed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Backlog {
    entries: VecDeque<(JournalEntry, usize)>,
    bytes: usize,
    bounds: BacklogBounds,
    /// Size of the served zone's records (`WireZone::byte_len`), the base of a percentage bound.
    zone_bytes: usize,
}

fn serial(record: &Record) -> Option<u32> {
    match record.data() {
        RData::SOA(soa) => Some(soa.serial()),
        _ => None,
    }
}

/// Wire size of a difference's records (uncompressed), the measure of the byte limit.
fn entry_bytes(entry: &JournalEntry) -> usize {
    std::iter::once(&entry.from_soa)
        .chain(std::iter::once(&entry.to_soa))
        .chain(&entry.deleted)
        .chain(&entry.added)
        .map(|r| r.name().len() + 10 + rdata_len(r.data()))
        .sum()
}

fn rdata_len(rdata: &RData) -> usize {
    match rdata {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        _ => crate::dns::model::canonical_rdata(rdata).len(),
    }
}

impl Backlog {
    /// The bounds in effect (a percentage turned into bytes).
    pub(crate) fn limits(&self) -> BacklogLimits {
        let max_bytes = match self.bounds.bytes {
            BacklogBytes::Fixed(n) => n,
            BacklogBytes::PercentOfZone(p) => {
                let share =
                    self.zone_bytes / 100 * p as usize + self.zone_bytes % 100 * p as usize / 100;
                share.max(PERCENT_FLOOR_BYTES)
            }
        };
        BacklogLimits {
            max_versions: self.bounds.max_versions,
            max_bytes,
        }
    }

    pub(crate) fn set_limits(&mut self, limits: BacklogLimits) {
        self.set_bounds(BacklogBounds {
            max_versions: limits.max_versions,
            bytes: BacklogBytes::Fixed(limits.max_bytes),
        });
    }

    pub(crate) fn set_bounds(&mut self, bounds: BacklogBounds) {
        self.bounds = bounds;
        self.trim();
    }

    /// The served zone's wire size changed (a new version is served).
    pub(crate) fn set_zone_bytes(&mut self, zone_bytes: usize) {
        self.zone_bytes = zone_bytes;
        self.trim();
    }

    /// An empty backlog with the same bounds.
    pub(crate) fn empty_like(&self) -> Self {
        Self {
            bounds: self.bounds,
            zone_bytes: self.zone_bytes,
            ..Self::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Appends a difference; one that does not continue from the newest kept serial
    /// starts a new history (the old one no longer leads to the served version).
    pub(crate) fn push(&mut self, entry: JournalEntry) {
        let continues = self
            .entries
            .back()
            .is_none_or(|(last, _)| serial(&last.to_soa) == serial(&entry.from_soa));
        if !continues {
            self.clear();
        }
        let size = entry_bytes(&entry);
        self.bytes += size;
        self.entries.push_back((entry, size));
        self.trim();
    }

    fn trim(&mut self) {
        let limits = self.limits();
        while self.entries.len() > limits.max_versions || self.bytes > limits.max_bytes {
            match self.entries.pop_front() {
                Some((_, size)) => self.bytes -= size,
                None => break,
            }
        }
    }

    /// The differences from `serial` on, oldest first; empty when it is not kept.
    pub(crate) fn since(&self, from: u32) -> Vec<JournalEntry> {
        let mut out = Vec::new();
        let mut found = false;
        for (entry, _) in &self.entries {
            found = found || serial(&entry.from_soa) == Some(from);
            if found {
                out.push(entry.clone());
            }
        }
        out
    }

    /// The serial the newest difference leads to.
    pub(crate) fn newest_serial(&self) -> Option<u32> {
        self.entries.back().and_then(|(e, _)| serial(&e.to_soa))
    }

    pub(crate) fn export(&self) -> Vec<ExportedDiff> {
        self.entries
            .iter()
            .filter_map(|(e, _)| ExportedDiff::from_entry(e))
            .collect()
    }
}

/// One difference in persistable form: the records in wire form (uncompressed,
/// concatenated), base64.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedDiff {
    /// Serial before.
    pub from_serial: u32,
    /// Serial after.
    pub to_serial: u32,
    /// SOA before, SOA after, then `deleted_count` removed and the added records.
    pub records: String,
    /// How many of the records after the two SOAs were removed.
    pub deleted_count: usize,
}

/// A zone's backlog in persistable form (e.g. JSON in a ConfigMap).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BacklogExport {
    /// Zone origin.
    pub origin: String,
    /// The serial the newest difference leads to (the served serial when exported).
    pub serial: u32,
    /// Differences, oldest first.
    pub diffs: Vec<ExportedDiff>,
}

/// Why an exported backlog cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum BacklogImportError {
    /// Not valid base64.
    #[error("backlog difference {from}->{to}: bad base64: {detail}")]
    Base64 { from: u32, to: u32, detail: String },
    /// The records do not decode.
    #[error("backlog difference {from}->{to}: bad record data: {detail}")]
    Records { from: u32, to: u32, detail: String },
}

impl ExportedDiff {
    fn from_entry(entry: &JournalEntry) -> Option<Self> {
        let mut buf = Vec::new();
        {
            let mut enc = BinEncoder::new(&mut buf);
            // Canonical form keeps names uncompressed, so records decode one by one.
            enc.set_canonical_names(true);
            for r in std::iter::once(&entry.from_soa)
                .chain(std::iter::once(&entry.to_soa))
                .chain(&entry.deleted)
                .chain(&entry.added)
            {
                r.emit(&mut enc).ok()?;
            }
        }
        Some(Self {
            from_serial: serial(&entry.from_soa)?,
            to_serial: serial(&entry.to_soa)?,
            records: base64::engine::general_purpose::STANDARD.encode(&buf),
            deleted_count: entry.deleted.len(),
        })
    }

    pub(crate) fn to_entry(&self) -> Result<JournalEntry, BacklogImportError> {
        let (from, to) = (self.from_serial, self.to_serial);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.records)
            .map_err(|e| BacklogImportError::Base64 {
                from,
                to,
                detail: e.to_string(),
            })?;
        let bad = |detail: String| BacklogImportError::Records { from, to, detail };
        let mut decoder = BinDecoder::new(&bytes);
        let mut records = Vec::new();
        while !decoder.is_empty() {
            records.push(Record::read(&mut decoder).map_err(|e| bad(e.to_string()))?);
        }
        if records.len() < 2 + self.deleted_count {
            return Err(bad("fewer records than announced".to_string()));
        }
        let mut it = records.into_iter();
        let (Some(from_soa), Some(to_soa)) = (it.next(), it.next()) else {
            return Err(bad("missing SOA".to_string()));
        };
        if serial(&from_soa) != Some(from) || serial(&to_soa) != Some(to) {
            return Err(bad("SOA serials do not match".to_string()));
        }
        let deleted: Vec<Record> = it.by_ref().take(self.deleted_count).collect();
        Ok(JournalEntry {
            from_soa,
            to_soa,
            deleted,
            added: it.collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, SOA};

    fn soa(serial: u32) -> Record {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        Record::from_rdata(
            n("example.com."),
            300,
            RData::SOA(SOA::new(
                n("ns.example.com."),
                n("admin.example.com."),
                serial,
                3600,
                600,
                86400,
                300,
            )),
        )
    }

    /// A difference adding `n` A records.
    fn diff(from: u32, n: u32) -> JournalEntry {
        JournalEntry {
            from_soa: soa(from),
            to_soa: soa(from + 1),
            deleted: Vec::new(),
            added: (0..n)
                .map(|i| {
                    Record::from_rdata(
                        Name::from_ascii(format!("h{from}-{i}.example.com.")).unwrap(),
                        300,
                        RData::A(A::from(std::net::Ipv4Addr::from(i))),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_percentage_bound_follows_the_zone_size_with_a_floor() {
        let mut backlog = Backlog::default();
        assert_eq!(backlog.bounds, BacklogBounds::default());
        backlog.set_zone_bytes(10_000_000);
        assert_eq!(backlog.limits().max_bytes, 1_000_000, "10% of the zone");
        backlog.set_zone_bytes(1000);
        assert_eq!(backlog.limits().max_bytes, PERCENT_FLOOR_BYTES);

        let size = entry_bytes(&diff(1, 3000));
        assert!(size > PERCENT_FLOOR_BYTES, "{size}");
        // Room for two and a half differences: the oldest of three leaves.
        backlog.set_zone_bytes(size * 25);
        for from in 1..4 {
            backlog.push(diff(from, 3000));
        }
        assert_eq!(backlog.len(), 2);
        assert_eq!(backlog.since(2).len(), 2);
        assert!(backlog.since(1).is_empty());
        // The zone shrank: the bound shrinks with it, to the floor, below one difference.
        backlog.set_zone_bytes(0);
        assert_eq!(backlog.len(), 0);

        // A fixed bound ignores the zone's size.
        backlog.set_bounds(BacklogBounds {
            max_versions: 1,
            bytes: BacklogBytes::Fixed(size * 10),
        });
        backlog.push(diff(10, 3000));
        backlog.push(diff(11, 3000));
        assert_eq!(backlog.len(), 1, "max_versions");
        assert_eq!(backlog.limits().max_bytes, size * 10);
    }
}
