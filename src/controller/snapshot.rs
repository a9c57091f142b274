//! The stored snapshot of a zone: its full content at a serial, so syncs diff against what the
//! backend served last time and the next IXFR starts from there, across operator restarts.
//!
//! Encoding: the zone's records in DNS wire form (uncompressed names), gzip-compressed —
//! compact, and decoded far faster than zone-file text. In Kubernetes the bytes are cut into
//! chunks of at most [`CHUNK_BYTES`] in ConfigMaps owned by the DnsZone; a pointer ConfigMap
//! names the complete set. A save writes every chunk first and flips the pointer last, so a
//! crash mid-write leaves the old snapshot readable and never a mix of two.

use std::io::{Read, Write};
use std::path::PathBuf;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use crate::dns::model::Zone;

use super::status::FIELD_MANAGER;

/// Largest chunk stored in one ConfigMap: well under the 1 MiB object limit.
pub const CHUNK_BYTES: usize = 768 * 1024;

/// Why a snapshot could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot of {zone}: Kubernetes API: {source}")]
    Kube {
        zone: String,
        #[source]
        source: kube::Error,
    },
    #[error("snapshot of {zone}: {detail}")]
    Corrupt { zone: String, detail: String },
    #[error("snapshot of {zone}: {source}")]
    Io {
        zone: String,
        #[source]
        source: std::io::Error,
    },
}

/// Encodes a zone: gzip over a sequence of wire-form records.
pub fn encode(zone: &Zone) -> Result<Vec<u8>, String> {
    // A buffer in front of the compressor: handing it each record's few bytes on their own
    // costs more than the compression itself.
    let mut out = std::io::BufWriter::with_capacity(
        256 * 1024,
        GzEncoder::new(Vec::new(), Compression::fast()),
    );
    zone.write_records(|record: &[u8]| -> Result<(), String> {
        let len =
            u16::try_from(record.len()).map_err(|_| "record longer than 64 KiB".to_string())?;
        out.write_all(&len.to_be_bytes())
            .and_then(|()| out.write_all(record))
            .map_err(|e| e.to_string())
    })?;
    out.into_inner()
        .map_err(|e| e.error().to_string())?
        .finish()
        .map_err(|e| e.to_string())
}

/// Decodes what [`encode`] wrote; any damage (gzip CRC, short record) is an error, never a
/// partial zone.
pub fn decode(origin: &Name, bytes: &[u8]) -> Result<Zone, String> {
    let mut raw = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut raw)
        .map_err(|e| format!("not a complete snapshot: {e}"))?;
    let mut zone = Zone::new(origin.clone());
    let mut rest = &raw[..];
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err("truncated record length".into());
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = rest.get(2..2 + len).ok_or("truncated record")?;
        let mut dec = BinDecoder::new(body);
        let record = Record::read(&mut dec).map_err(|e| format!("bad record: {e}"))?;
        zone.insert(record);
        rest = &rest[2 + len..];
    }
    Ok(zone)
}

/// Where snapshots live: ConfigMaps in a cluster, files in standalone mode.
pub trait SnapshotStore {
    /// The stored snapshot, if any.
    fn load(
        &self,
        origin: &Name,
    ) -> impl Future<Output = Result<Option<Zone>, SnapshotError>> + Send;
    /// Replaces the stored snapshot atomically.
    fn save(&self, zone: &Zone) -> impl Future<Output = Result<(), SnapshotError>> + Send;
}

/// Snapshots in ConfigMaps owned by a DnsZone.
pub struct ConfigMapStore {
    pub api: Api<ConfigMap>,
    /// `metadata.name` of the DnsZone; names and labels derive from it.
    pub zone_object: String,
    pub owner: OwnerReference,
}

const LABEL_ZONE: &str = "dns.zonekeeper.io/snapshot-of";
const LABEL_ID: &str = "dns.zonekeeper.io/snapshot-id";

impl ConfigMapStore {
    fn pointer_name(&self) -> String {
        format!("{}-zonekeeper-snapshot", self.zone_object)
    }

    fn chunk_name(&self, id: &str, index: usize) -> String {
        format!("{}-zonekeeper-snapshot-{id}-{index}", self.zone_object)
    }

    fn err(&self, source: kube::Error) -> SnapshotError {
        SnapshotError::Kube {
            zone: self.zone_object.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: impl Into<String>) -> SnapshotError {
        SnapshotError::Corrupt {
            zone: self.zone_object.clone(),
            detail: detail.into(),
        }
    }

    async fn put(
        &self,
        name: &str,
        labels: serde_json::Value,
        data: serde_json::Value,
        binary: serde_json::Value,
    ) -> Result<(), SnapshotError> {
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels, "ownerReferences": [self.owner]},
            "data": data,
            "binaryData": binary,
        });
        self.api
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&cm),
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl ConfigMapStore {
    /// The stored snapshot's id and serial, read from its pointer alone (one small GET).
    pub async fn pointer(&self) -> Result<Option<(String, Option<u32>)>, SnapshotError> {
        let Some(pointer) = self
            .api
            .get_opt(&self.pointer_name())
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let data = pointer.data.unwrap_or_default();
        let id = data
            .get("id")
            .cloned()
            .ok_or_else(|| self.corrupt("pointer has no id"))?;
        let serial = data.get("serial").and_then(|s| s.parse().ok());
        Ok(Some((id, serial)))
    }

    /// Stores `zone` (chunks first, pointer last) and returns the new snapshot's id.
    pub async fn save_id(&self, zone: &Zone) -> Result<String, SnapshotError> {
        let bytes = encode(zone).map_err(|d| self.corrupt(d))?;
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let pieces: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let labels = serde_json::json!({LABEL_ZONE: self.zone_object, LABEL_ID: id});
            let binary = serde_json::json!({"chunk": ByteString(piece.to_vec())});
            self.put(
                &self.chunk_name(&id, i),
                labels,
                serde_json::json!({}),
                binary,
            )
            .await?;
        }
        let serial = zone.soa_serial().map(|s| s.to_string()).unwrap_or_default();
        let labels = serde_json::json!({LABEL_ZONE: self.zone_object});
        let data = serde_json::json!({
            "id": id,
            "chunks": pieces.len().to_string(),
            "serial": serial,
            "records": zone.record_count().to_string(),
            "bytes": bytes.len().to_string(),
        });
        // The flip: from here on readers see the new snapshot.
        self.put(&self.pointer_name(), labels, data, serde_json::json!({}))
            .await?;
        // Old and orphaned chunks (from an earlier crash) go last; failing here loses nothing.
        let selector = format!(
            "{LABEL_ZONE}={},{LABEL_ID},{LABEL_ID}!={id}",
            self.zone_object
        );
        if let Ok(list) = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
        {
            for cm in list {
                if let Some(name) = cm.metadata.name {
                    let _ = self.api.delete(&name, &DeleteParams::default()).await;
                }
            }
        }
        Ok(id)
    }
}

impl SnapshotStore for ConfigMapStore {
    async fn load(&self, origin: &Name) -> Result<Option<Zone>, SnapshotError> {
        let Some(pointer) = self
            .api
            .get_opt(&self.pointer_name())
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let data = pointer.data.unwrap_or_default();
        let id = data
            .get("id")
            .ok_or_else(|| self.corrupt("pointer has no id"))?;
        let chunks: usize = data
            .get("chunks")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| self.corrupt("pointer has no chunk count"))?;
        let mut bytes = Vec::new();
        for i in 0..chunks {
            let name = self.chunk_name(id, i);
            let cm = self
                .api
                .get_opt(&name)
                .await
                .map_err(|e| self.err(e))?
                .ok_or_else(|| self.corrupt(format!("chunk {name} is missing")))?;
            let chunk = cm
                .binary_data
                .and_then(|b| b.get("chunk").cloned())
                .ok_or_else(|| self.corrupt(format!("chunk {name} is empty")))?;
            bytes.extend_from_slice(&chunk.0);
        }
        decode(origin, &bytes)
            .map(Some)
            .map_err(|d| self.corrupt(d))
    }

    async fn save(&self, zone: &Zone) -> Result<(), SnapshotError> {
        self.save_id(zone).await.map(|_| ())
    }
}

/// Snapshots as files (standalone mode): written to a temporary file and renamed over the old.
pub struct FileStore {
    pub path: PathBuf,
}

impl SnapshotStore for FileStore {
    async fn load(&self, origin: &Name) -> Result<Option<Zone>, SnapshotError> {
        let zone = origin.to_string();
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => decode(origin, &bytes)
                .map(Some)
                .map_err(|detail| SnapshotError::Corrupt { zone, detail }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SnapshotError::Io { zone, source }),
        }
    }

    async fn save(&self, zone: &Zone) -> Result<(), SnapshotError> {
        let name = zone.origin().to_string();
        let bytes = encode(zone).map_err(|detail| SnapshotError::Corrupt {
            zone: name.clone(),
            detail,
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
}
