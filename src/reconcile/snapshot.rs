//! The stored snapshot of a zone: its full content at a serial, so syncs diff against what the
//! backend served last time and the next IXFR starts from there, across restarts.
//!
//! Encoding: the zone's records in DNS wire form (uncompressed names), gzip-compressed —
//! compact, and decoded far faster than zone-file text. Where the bytes live is the store's
//! business: files here ([`FileStore`]), ConfigMaps in the operator.

use std::io::{Read, Write};
use std::path::PathBuf;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};

use crate::dns::diff::Change;
use crate::dns::model::{RRset, RRsetKey, Zone};

/// Why snapshot bytes could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{0}")]
    Encode(String),
    #[error("record longer than 64 KiB")]
    RecordTooLong,
    #[error("not a complete snapshot: {0}")]
    Incomplete(#[source] std::io::Error),
    #[error("truncated record length")]
    TruncatedLength,
    #[error("truncated record")]
    TruncatedRecord,
    #[error("bad record: {0}")]
    BadRecord(#[source] hickory_proto::ProtoError),
    #[error("decompresses to more than {limit} bytes")]
    TooLarge { limit: u64 },
}

/// Largest decompressed snapshot [`decode`] accepts: far above a 1M-record zone's few hundred
/// MB, far below what a gzip bomb in a ConfigMap could inflate to.
pub const MAX_DECOMPRESSED: u64 = 2 * 1024 * 1024 * 1024;

/// Gunzips `bytes`, refusing to produce more than `limit` bytes: the input comes from objects
/// anyone with ConfigMap write access can edit, and a few KB of gzip can inflate to gigabytes.
pub fn gunzip_capped(bytes: &[u8], limit: u64) -> Result<Vec<u8>, CodecError> {
    let mut raw = Vec::new();
    GzDecoder::new(bytes)
        .take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(CodecError::Incomplete)?;
    if raw.len() as u64 > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(raw)
}

// `Zone::write_records` reports its own failures as text.
impl From<String> for CodecError {
    fn from(detail: String) -> Self {
        CodecError::Encode(detail)
    }
}

/// Why a file snapshot could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot of {zone}: {source}")]
    Corrupt {
        zone: String,
        #[source]
        source: CodecError,
    },
    #[error("snapshot of {zone}: {source}")]
    Io {
        zone: String,
        #[source]
        source: std::io::Error,
    },
}

/// Encodes a zone: gzip over a sequence of wire-form records.
pub fn encode(zone: &Zone) -> Result<Vec<u8>, CodecError> {
    // A buffer in front of the compressor: handing it each record's few bytes on their own
    // costs more than the compression itself.
    let mut out = std::io::BufWriter::with_capacity(
        256 * 1024,
        GzEncoder::new(Vec::new(), Compression::fast()),
    );
    zone.write_records(|record: &[u8]| -> Result<(), CodecError> {
        let len = u16::try_from(record.len()).map_err(|_| CodecError::RecordTooLong)?;
        out.write_all(&len.to_be_bytes())
            .and_then(|()| out.write_all(record))
            .map_err(|e| CodecError::Encode(e.to_string()))
    })?;
    out.into_inner()
        .map_err(|e| CodecError::Encode(e.error().to_string()))?
        .finish()
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes what [`encode`] wrote; any damage (gzip CRC, short record) is an error, never a
/// partial zone.
pub fn decode(origin: &Name, bytes: &[u8]) -> Result<Zone, CodecError> {
    decode_capped(origin, bytes, MAX_DECOMPRESSED)
}

/// [`decode`] with a chosen cap on the decompressed size.
pub fn decode_capped(origin: &Name, bytes: &[u8], limit: u64) -> Result<Zone, CodecError> {
    let raw = gunzip_capped(bytes, limit)?;
    records_into(Zone::new(origin.clone()), &raw)
}

/// Adds length-prefixed wire records to `zone`.
fn records_into(mut zone: Zone, mut rest: &[u8]) -> Result<Zone, CodecError> {
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(CodecError::TruncatedLength);
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = rest.get(2..2 + len).ok_or(CodecError::TruncatedRecord)?;
        let mut dec = BinDecoder::new(body);
        let record = Record::read(&mut dec).map_err(CodecError::BadRecord)?;
        zone.insert(record);
        rest = &rest[2 + len..];
    }
    Ok(zone)
}

/// What turns one stored snapshot into the next, RRset by RRset: the RRsets that went, and
/// the RRsets (whole, SOA included) that are new or replaced. Stored beside a base snapshot,
/// it costs what changed rather than what the zone holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub removed: Vec<RRsetKey>,
    pub set: Vec<RRset>,
}

impl Delta {
    /// The delta from a sync's change list to `after` (the zone the changes lead to); the
    /// SOA, which change lists leave out, is taken from `after`.
    pub fn from_changes(changes: &[Change], after: &Zone) -> Self {
        let mut delta = Delta {
            removed: Vec::new(),
            set: Vec::new(),
        };
        for change in changes {
            match change {
                Change::Add(new) | Change::Replace { new, .. } => delta.set.push(new.clone()),
                Change::Delete(old) => delta.removed.push(old.key()),
            }
        }
        match after.get_by(after.origin(), RecordType::SOA) {
            Some(soa) => delta.set.push(soa),
            None => delta
                .removed
                .push(RRsetKey::new(after.origin(), RecordType::SOA)),
        }
        delta
    }

    /// Brings `zone` forward by this delta.
    pub fn apply(self, zone: &mut Zone) {
        for key in &self.removed {
            zone.remove_rrset(key);
        }
        for set in self.set {
            zone.insert_rrset(set);
        }
    }

    /// Gzip over: the count of removed RRsets (u32), each as a length-prefixed wire name and
    /// its type; then the set RRsets' records as [`encode`] writes them.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let mut raw = Vec::new();
        let count = u32::try_from(self.removed.len()).map_err(|_| CodecError::RecordTooLong)?;
        raw.extend_from_slice(&count.to_be_bytes());
        for key in &self.removed {
            let name = key
                .name
                .to_bytes()
                .map_err(|e| CodecError::Encode(e.to_string()))?;
            let len = u16::try_from(name.len()).map_err(|_| CodecError::RecordTooLong)?;
            raw.extend_from_slice(&len.to_be_bytes());
            raw.extend_from_slice(&name);
            raw.extend_from_slice(&u16::from(key.rtype).to_be_bytes());
        }
        for set in &self.set {
            for record in set.records() {
                let wire = record
                    .to_bytes()
                    .map_err(|e| CodecError::Encode(e.to_string()))?;
                let len = u16::try_from(wire.len()).map_err(|_| CodecError::RecordTooLong)?;
                raw.extend_from_slice(&len.to_be_bytes());
                raw.extend_from_slice(&wire);
            }
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&raw)
            .map_err(|e| CodecError::Encode(e.to_string()))?;
        gz.finish().map_err(|e| CodecError::Encode(e.to_string()))
    }

    /// Decodes what [`Delta::encode`] wrote, decompressing at most `limit` bytes; damage is an
    /// error, never a partial delta.
    pub fn decode(origin: &Name, bytes: &[u8], limit: u64) -> Result<Self, CodecError> {
        let raw = gunzip_capped(bytes, limit)?;
        let (count, mut rest) = raw
            .split_first_chunk::<4>()
            .ok_or(CodecError::TruncatedLength)?;
        let mut removed = Vec::new();
        for _ in 0..u32::from_be_bytes(*count) {
            let (len, tail) = rest
                .split_first_chunk::<2>()
                .ok_or(CodecError::TruncatedLength)?;
            let len = usize::from(u16::from_be_bytes(*len));
            let name = tail.get(..len).ok_or(CodecError::TruncatedRecord)?;
            let name = Name::from_bytes(name).map_err(CodecError::BadRecord)?;
            let (rtype, tail) = tail[len..]
                .split_first_chunk::<2>()
                .ok_or(CodecError::TruncatedRecord)?;
            removed.push(RRsetKey::new(
                &name,
                RecordType::from(u16::from_be_bytes(*rtype)),
            ));
            rest = tail;
        }
        let sets = records_into(Zone::new(origin.clone()), rest)?;
        Ok(Delta {
            removed,
            set: sets.rrsets().collect(),
        })
    }
}

/// Where snapshots live: ConfigMaps in a cluster, files in standalone mode.
pub trait SnapshotStore {
    type Error: std::error::Error + Send + Sync + 'static;
    /// The stored snapshot, if any.
    fn load(&self, origin: &Name)
    -> impl Future<Output = Result<Option<Zone>, Self::Error>> + Send;
    /// Replaces the stored snapshot atomically.
    fn save(&self, zone: &Zone) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Snapshots as files (standalone mode): written to a temporary file and renamed over the old.
pub struct FileStore {
    pub path: PathBuf,
}

impl SnapshotStore for FileStore {
    type Error = SnapshotError;

    async fn load(&self, origin: &Name) -> Result<Option<Zone>, SnapshotError> {
        let zone = origin.to_string();
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => decode(origin, &bytes)
                .map(Some)
                .map_err(|source| SnapshotError::Corrupt { zone, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SnapshotError::Io { zone, source }),
        }
    }

    async fn save(&self, zone: &Zone) -> Result<(), SnapshotError> {
        let name = zone.origin().to_string();
        let bytes = encode(zone).map_err(|source| SnapshotError::Corrupt {
            zone: name.clone(),
            source,
        })?;
        let io = |source| SnapshotError::Io {
            zone: name.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let tmp = self.path.with_extension("tmp");
        tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &self.path).await.map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::dns::model::parse_rdata;

    #[test]
    fn encode_round_trips_and_damage_is_an_error_not_a_partial_zone() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let mut zone = Zone::new(origin.clone());
        zone.insert(Record::from_rdata(
            origin.clone(),
            3600,
            crate::reconcile::sync::tests::soa_rdata(7),
        ));
        for (owner, rtype, data) in [
            ("example.com.", RecordType::MX, "10 mx.example.com."),
            ("web.example.com.", RecordType::CNAME, "www.example.com."),
            ("t.example.com.", RecordType::TXT, "\"a b\" \"c\""),
        ] {
            let rdata = parse_rdata(rtype, &origin, data).unwrap();
            zone.insert(Record::from_rdata(
                Name::from_ascii(owner).unwrap(),
                300,
                rdata,
            ));
        }
        for i in 0..2000 {
            let rdata = parse_rdata(
                RecordType::A,
                &origin,
                &format!("10.0.{}.{}", i / 256, i % 256),
            )
            .unwrap();
            zone.insert(Record::from_rdata(
                Name::from_ascii(format!("h{i}.example.com.")).unwrap(),
                60,
                rdata,
            ));
        }
        // As a server may send it: case in the owner and in the target, which DNS ignores
        // in comparisons but a snapshot keeps.
        let www = Name::from_ascii("WWW.example.com.").unwrap();
        let target = Name::from_ascii("Web.Example.com.").unwrap();
        zone.insert(Record::from_rdata(
            www.clone(),
            300,
            hickory_proto::rr::RData::CNAME(hickory_proto::rr::rdata::CNAME(target.clone())),
        ));
        let bytes = encode(&zone).unwrap();
        let back = decode(&origin, &bytes).unwrap();
        assert_eq!(back, zone);
        assert_eq!(back.record_count(), 2005);
        let cname = back.get_by(&www, RecordType::CNAME).unwrap();
        assert_eq!(cname.name.to_ascii(), "WWW.example.com.");
        assert_eq!(
            cname.rdatas,
            [hickory_proto::rr::RData::CNAME(
                hickory_proto::rr::rdata::CNAME(target)
            )]
        );
        assert_eq!(
            format!("{:?}", cname.rdatas),
            format!(
                "{:?}",
                [hickory_proto::rr::RData::CNAME(
                    hickory_proto::rr::rdata::CNAME(Name::from_ascii("Web.Example.com.").unwrap())
                )]
            ),
            "case of the target kept"
        );
        assert!(decode(&origin, &bytes[..bytes.len() / 2]).is_err());
        assert!(decode(&origin, &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn a_delta_replayed_on_the_old_snapshot_gives_the_new_one_and_damage_is_an_error() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let rec = |owner: &str, rtype: RecordType, data: &str| {
            Record::from_rdata(
                Name::from_ascii(owner).unwrap(),
                300,
                parse_rdata(rtype, &origin, data).unwrap(),
            )
        };
        let mut old = Zone::new(origin.clone());
        old.insert(Record::from_rdata(
            origin.clone(),
            3600,
            crate::reconcile::sync::tests::soa_rdata(7),
        ));
        for i in 0..500 {
            old.insert(rec(
                &format!("h{i}.example.com."),
                RecordType::A,
                &format!("10.0.{}.{}", i / 256, i % 256),
            ));
        }
        let mut new = old.clone();
        new.remove_rrset(&RRsetKey::new(
            &Name::from_ascii("h1.example.com.").unwrap(),
            RecordType::A,
        ));
        new.insert(rec("h2.example.com.", RecordType::A, "192.0.2.2"));
        new.insert(rec("t.example.com.", RecordType::TXT, "\"a b\""));
        new.insert(rec(
            "Web.example.com.",
            RecordType::CNAME,
            "Www.Example.com.",
        ));
        new.set_soa_serial(8);
        let changes = crate::dns::diff::zone_diff(&old, &new);
        assert_eq!(changes.len(), 4, "{changes:?}");
        let delta = Delta::from_changes(&changes, &new);
        let bytes = delta.encode().unwrap();
        assert!(bytes.len() < 400, "{} bytes for 4 changes", bytes.len());
        let back = Delta::decode(&origin, &bytes, MAX_DECOMPRESSED).unwrap();
        let mut replayed = old.clone();
        back.apply(&mut replayed);
        assert_eq!(replayed, new);
        assert_eq!(replayed.soa_serial(), Some(8));
        assert_eq!(replayed.record_count(), new.record_count());
        assert!(Delta::decode(&origin, &bytes[..bytes.len() - 1], MAX_DECOMPRESSED).is_err());
        assert!(matches!(
            Delta::decode(&origin, &bytes, 8),
            Err(CodecError::TooLarge { limit: 8 })
        ));
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_cap_not_inflated() {
        // 64 MiB of zeros gzip to ~64 KB; the cap of 1 MiB stops it long before.
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
        let origin = Name::from_ascii("example.com.").unwrap();
        match decode_capped(&origin, &bomb, 1024 * 1024) {
            Err(CodecError::TooLarge { limit }) => assert_eq!(limit, 1024 * 1024),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // Exactly at the cap is still accepted.
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&[1, 2, 3, 4]).unwrap();
        let small = enc.finish().unwrap();
        assert_eq!(gunzip_capped(&small, 4).unwrap(), [1, 2, 3, 4]);
        assert!(matches!(
            gunzip_capped(&small, 3),
            Err(CodecError::TooLarge { limit: 3 })
        ));
    }
}
