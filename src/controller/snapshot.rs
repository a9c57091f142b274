//! Zone snapshots in ConfigMaps: the bytes of `reconcile::snapshot::encode` cut into chunks of
//! at most [`CHUNK_BYTES`] in ConfigMaps owned by the DnsZone; a pointer ConfigMap names the
//! complete set. A save writes every chunk first and flips the pointer last, so a crash
//! mid-write leaves the old snapshot readable and never a mix of two.

use std::collections::BTreeMap;

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
    #[error("pointer {0} names no complete set of chunks (id and chunk count)")]
    Pointer(String),
}

/// One blob stored as chunks: the save id its chunks carry and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub id: String,
    pub chunks: usize,
}

impl Blob {
    /// The blob a pointer's `id` and `chunks` name.
    pub fn of(data: &BTreeMap<String, String>) -> Option<Blob> {
        Some(Blob {
            id: data.get("id")?.clone(),
            chunks: data.get("chunks")?.parse().ok()?,
        })
    }
}

/// "Chunked objects + a pointer written last", the one way zonekeeper stores anything that
/// may outgrow a ConfigMap (snapshots, ownership lists, served outgoing state).
///
/// A blob is cut into ConfigMaps `<name>-<id>-<i>` of at most [`CHUNK_BYTES`] each, labelled
/// `<label_of>=<object>` and `<label_id>=<id>`; the pointer ConfigMap `<name>` says which
/// blobs are current. A save writes every chunk first, moves the pointer, and only then
/// removes chunks the pointer no longer names: a crash at any point leaves the pointer naming
/// complete blobs (old or new), and leftovers are garbage that is never read.
#[derive(Clone)]
pub struct ChunkedPointer {
    pub api: Api<ConfigMap>,
    /// The pointer's name; chunks derive theirs from it.
    pub name: String,
    pub owner: OwnerReference,
    /// Label key naming the object the chunks belong to; its value is `object`.
    pub label_of: &'static str,
    pub object: String,
    /// Label key carrying each chunk's save id.
    pub label_id: &'static str,
    /// Labels of the pointer itself.
    pub pointer_labels: BTreeMap<String, String>,
}

impl std::fmt::Debug for ChunkedPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedPointer")
            .field("name", &self.name)
            .finish()
    }
}

impl ChunkedPointer {
    fn chunk_name(&self, id: &str, index: usize) -> String {
        format!("{}-{id}-{index}", self.name)
    }

    /// A fresh id for a save.
    pub fn new_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
    }

    /// The pointer's data, if the pointer exists.
    pub async fn get(&self) -> Result<Option<BTreeMap<String, String>>, ChunkError> {
        Ok(self
            .api
            .get_opt(&self.name)
            .await?
            .map(|cm| cm.data.unwrap_or_default()))
    }

    /// Writes `bytes` as the chunks of a new blob; nothing reads them until a pointer names it.
    pub async fn stage(&self, bytes: &[u8]) -> Result<Blob, ChunkError> {
        let id = Self::new_id();
        let pieces: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let name = self.chunk_name(&id, i);
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
        Ok(Blob {
            id,
            chunks: pieces.len(),
        })
    }

    /// Reads back a blob's chunks, concatenated.
    pub async fn read(&self, blob: &Blob) -> Result<Vec<u8>, ChunkError> {
        let mut bytes = Vec::new();
        for i in 0..blob.chunks {
            let name = self.chunk_name(&blob.id, i);
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

    /// Moves the pointer (the flip: from here on readers see `data`), then removes the chunks
    /// of every blob but `keep` (earlier saves, orphans of a crash). Returns the pointer as
    /// written.
    pub async fn flip(
        &self,
        data: &BTreeMap<String, String>,
        keep: &[&str],
    ) -> Result<ConfigMap, ChunkError> {
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "labels": self.pointer_labels,
                "ownerReferences": [self.owner],
            },
            "data": data,
        });
        let written = self
            .api
            .patch(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&cm),
            )
            .await?;
        self.remove_except(keep).await;
        Ok(written)
    }

    /// Stores `bytes` as the one blob the pointer names (`id`, `chunks`) beside `extra`.
    pub async fn save(
        &self,
        bytes: &[u8],
        extra: BTreeMap<String, String>,
    ) -> Result<(Blob, ConfigMap), ChunkError> {
        let blob = self.stage(bytes).await?;
        let mut data = extra;
        data.insert("id".into(), blob.id.clone());
        data.insert("chunks".into(), blob.chunks.to_string());
        let written = self.flip(&data, &[&blob.id]).await?;
        Ok((blob, written))
    }

    /// The pointer's data and the one blob it names, if there is a pointer.
    pub async fn load(&self) -> Result<Option<(BTreeMap<String, String>, Vec<u8>)>, ChunkError> {
        let Some(data) = self.get().await? else {
            return Ok(None);
        };
        let blob = Blob::of(&data).ok_or_else(|| ChunkError::Pointer(self.name.clone()))?;
        let bytes = self.read(&blob).await?;
        Ok(Some((data, bytes)))
    }

    /// Removes the chunks of every blob whose id is not in `keep`; best effort, since
    /// leftovers are never read.
    pub async fn remove_except(&self, keep: &[&str]) {
        let selector = format!("{}={},{}", self.label_of, self.object, self.label_id);
        let Ok(list) = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
        else {
            return;
        };
        for cm in list {
            let id = cm
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(self.label_id))
                .map(String::as_str);
            if id.is_some_and(|id| keep.contains(&id)) {
                continue;
            }
            if let Some(name) = cm.metadata.name {
                let _ = self.api.delete(&name, &DeleteParams::default()).await;
            }
        }
    }

    /// Removes the pointer and every chunk (best effort; owner references remove them with
    /// their owner anyway).
    pub async fn delete(&self) {
        let _ = self.api.delete(&self.name, &DeleteParams::default()).await;
        self.remove_except(&[]).await;
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

    fn chunked(&self) -> ChunkedPointer {
        ChunkedPointer {
            api: self.api.clone(),
            name: self.pointer_name(),
            owner: self.owner.clone(),
            label_of: LABEL_ZONE,
            object: self.zone_object.clone(),
            label_id: LABEL_ID,
            pointer_labels: BTreeMap::from([(LABEL_ZONE.to_string(), self.zone_object.clone())]),
        }
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
}

impl ConfigMapStore {
    /// The stored snapshot's id and serial, read from its pointer alone (one small GET).
    pub async fn pointer(&self) -> Result<Option<(String, Option<u32>)>, SnapshotError> {
        let Some(data) = self.chunked().get().await.map_err(|e| self.chunk(e))? else {
            return Ok(None);
        };
        let id = data
            .get("id")
            .cloned()
            .ok_or_else(|| self.corrupt("pointer has no id"))?;
        let serial = data.get("serial").and_then(|s| s.parse().ok());
        Ok(Some((id, serial)))
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
        let blob = self
            .chunked()
            .stage(&bytes)
            .await
            .map_err(|e| self.chunk(e))?;
        Ok(Staged {
            id: blob.id,
            chunks: blob.chunks,
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
        let data = BTreeMap::from([
            ("id".to_string(), id.clone()),
            ("chunks".to_string(), chunks.to_string()),
            (
                "serial".to_string(),
                serial.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("records".to_string(), records.to_string()),
            ("bytes".to_string(), bytes.to_string()),
        ]);
        self.chunked()
            .flip(&data, &[&id])
            .await
            .map_err(|e| self.chunk(e))?;
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
        let Some((_, bytes)) = self.chunked().load().await.map_err(|e| self.chunk(e))? else {
            return Ok(None);
        };
        decode(origin, &bytes).map(Some).map_err(|e| self.codec(e))
    }

    async fn save(&self, zone: &Zone) -> Result<(), SnapshotError> {
        self.save_id(zone).await.map(|_| ())
    }
}
