//! Zone snapshots in ConfigMaps: the bytes of `reconcile::snapshot::encode` cut into chunks of
//! at most [`CHUNK_BYTES`] in ConfigMaps owned by the DnsZone; a pointer ConfigMap names the
//! complete set. A save writes every chunk first and flips the pointer last, so a crash
//! mid-write leaves the old snapshot readable and never a mix of two.

use hickory_proto::rr::Name;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use crate::dns::model::Zone;
use crate::reconcile::snapshot::{CodecError, SnapshotStore, decode, encode};

use super::status::FIELD_MANAGER;

/// Largest chunk stored in one ConfigMap: well under the 1 MiB object limit.
pub const CHUNK_BYTES: usize = 768 * 1024;

/// Why a snapshot could not be stored in or read from its ConfigMaps.
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
    Codec {
        zone: String,
        #[source]
        source: CodecError,
    },
}

/// Why a chunked blob could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("chunk {0} is missing")]
    Missing(String),
    #[error("chunk {0} is empty")]
    Empty(String),
}

/// Bytes too big for one ConfigMap, as ConfigMaps `<base>-<id>-<i>` of at most
/// [`CHUNK_BYTES`] each. The caller keeps `id` and the count in a pointer object it writes
/// after [`Chunks::write`] and before [`Chunks::remove_others`]: that order makes a save
/// crash-safe (readers follow the pointer to a complete set, old or new).
pub struct Chunks<'a> {
    pub api: &'a Api<ConfigMap>,
    pub base: String,
    pub owner: &'a OwnerReference,
    /// Label key naming the object the chunks belong to; its value is `object`.
    pub label_of: &'a str,
    pub object: &'a str,
    /// Label key carrying each chunk's save id.
    pub label_id: &'a str,
}

impl Chunks<'_> {
    fn name(&self, id: &str, index: usize) -> String {
        format!("{}-{id}-{index}", self.base)
    }

    /// A fresh id for a save.
    pub fn new_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
    }

    /// Writes `bytes` as the chunks of save `id`; returns how many.
    pub async fn write(&self, id: &str, bytes: &[u8]) -> Result<usize, ChunkError> {
        let pieces: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let name = self.name(id, i);
            let cm = serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "labels": {self.label_of: self.object, self.label_id: id},
                    "ownerReferences": [self.owner],
                },
                "data": {},
                "binaryData": {"chunk": ByteString(piece.to_vec())},
            });
            self.api
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&cm),
                )
                .await?;
        }
        Ok(pieces.len())
    }

    /// Reads back the `count` chunks of save `id`, concatenated.
    pub async fn read(&self, id: &str, count: usize) -> Result<Vec<u8>, ChunkError> {
        let mut bytes = Vec::new();
        for i in 0..count {
            let name = self.name(id, i);
            let Some(cm) = self.api.get_opt(&name).await? else {
                return Err(ChunkError::Missing(name));
            };
            let chunk = cm
                .binary_data
                .and_then(|b| b.get("chunk").cloned())
                .ok_or(ChunkError::Empty(name))?;
            bytes.extend_from_slice(&chunk.0);
        }
        Ok(bytes)
    }

    /// Removes the chunks of every save but `id` (earlier saves, and orphans of a crash);
    /// best effort, since leftovers are garbage, never read.
    pub async fn remove_others(&self, id: &str) {
        let selector = format!(
            "{}={},{},{}!={id}",
            self.label_of, self.object, self.label_id, self.label_id
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
    }
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

    fn chunk(&self, e: ChunkError) -> SnapshotError {
        match e {
            ChunkError::Kube(source) => self.err(source),
            other => self.corrupt(other.to_string()),
        }
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

    fn codec(&self, source: CodecError) -> SnapshotError {
        SnapshotError::Codec {
            zone: self.zone_object.clone(),
            source,
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

    fn chunks(&self) -> Chunks<'_> {
        Chunks {
            api: &self.api,
            base: self.pointer_name(),
            owner: &self.owner,
            label_of: LABEL_ZONE,
            object: &self.zone_object,
            label_id: LABEL_ID,
        }
    }

    /// Stores `zone` (chunks first, pointer last) and returns the new snapshot's id.
    pub async fn save_id(&self, zone: &Zone) -> Result<String, SnapshotError> {
        let staged = self.stage(zone).await?;
        self.commit(staged).await
    }

    /// Writes `zone`'s chunks without moving the pointer: readers still see the old snapshot
    /// until [`ConfigMapStore::commit`]. Staged chunks never committed are removed by the
    /// next commit.
    pub async fn stage(&self, zone: &Zone) -> Result<Staged, SnapshotError> {
        let bytes = encode(zone).map_err(|e| self.codec(e))?;
        let id = Chunks::new_id();
        let count = self
            .chunks()
            .write(&id, &bytes)
            .await
            .map_err(|e| self.chunk(e))?;
        Ok(Staged {
            id,
            chunks: count,
            serial: zone.soa_serial(),
            records: zone.record_count(),
            bytes: bytes.len(),
        })
    }

    /// Moves the pointer to a staged snapshot (the flip) and removes every other snapshot's
    /// chunks; returns the snapshot's id.
    pub async fn commit(&self, staged: Staged) -> Result<String, SnapshotError> {
        let Staged {
            id,
            chunks,
            serial,
            records,
            bytes,
        } = staged;
        let labels = serde_json::json!({LABEL_ZONE: self.zone_object});
        let data = serde_json::json!({
            "id": id,
            "chunks": chunks.to_string(),
            "serial": serial.map(|s| s.to_string()).unwrap_or_default(),
            "records": records.to_string(),
            "bytes": bytes.to_string(),
        });
        // The flip: from here on readers see the new snapshot.
        self.put(&self.pointer_name(), labels, data, serde_json::json!({}))
            .await?;
        // Old and orphaned chunks (from an earlier crash) go last; failing here loses nothing.
        self.chunks().remove_others(&id).await;
        Ok(id)
    }
}

/// A snapshot whose chunks are written and whose pointer has not moved yet.
#[derive(Debug, Clone)]
pub struct Staged {
    pub id: String,
    chunks: usize,
    serial: Option<u32>,
    records: usize,
    bytes: usize,
}

impl SnapshotStore for ConfigMapStore {
    type Error = SnapshotError;

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
        let bytes = self
            .chunks()
            .read(id, chunks)
            .await
            .map_err(|e| self.chunk(e))?;
        decode(origin, &bytes).map(Some).map_err(|e| self.codec(e))
    }

    async fn save(&self, zone: &Zone) -> Result<(), SnapshotError> {
        self.save_id(zone).await.map(|_| ())
    }
}
