//! The IXFR backlog of a served zone: the differences between consecutive served
//! serials, bounded by count and bytes, and its serialisable form for persistence.

use std::collections::VecDeque;

use base64::Engine;
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use crate::dns::server::JournalEntry;

/// How much history is kept.
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

/// The backlog; the oldest differences leave first when a limit is passed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Backlog {
    entries: VecDeque<(JournalEntry, usize)>,
    bytes: usize,
    limits: BacklogLimits,
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
    pub(crate) fn limits(&self) -> BacklogLimits {
        self.limits
    }

    pub(crate) fn set_limits(&mut self, limits: BacklogLimits) {
        self.limits = limits;
        self.trim();
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
        while self.entries.len() > self.limits.max_versions || self.bytes > self.limits.max_bytes {
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
