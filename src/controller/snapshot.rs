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
use crate::reconcile::snapshot::{
    CodecError, Delta, MAX_DECOMPRESSED, SnapshotStore, decode, encode,
};

use super::status::FIELD_MANAGER;

/// Largest chunk stored in one ConfigMap: well under the 1 MiB object limit.
pub const CHUNK_BYTES: usize = 768 * 1024;

/// How many times a read starts over from a pointer that moved under it before it gives up:
/// each restart means another save completed meanwhile, so a few cover any real pace.
const LOAD_RESTARTS: usize = 10;

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

/// What a save knows of the chunks stored under its pointer before it, which decides how the
/// chunks its new pointer does not name are found for removal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Before {
    /// Nothing for sure (an earlier process may have crashed mid-save, a save of this one may
    /// have failed midway): every chunk of the object is listed by label.
    #[default]
    Unknown,
    /// This process read or wrote the pointer last and it named these blobs (none: there was
    /// no pointer): only their chunks are removed, by name, without a list. Orphans of a crash
    /// before that read are left to the next save that lists; they are never read, and their
    /// owner reference removes them with the zone.
    Named(Vec<Blob>),
}

/// "Chunked objects + a pointer written last", the one way zonekeeper stores anything that
/// may outgrow a ConfigMap (snapshots, ownership lists, served outgoing state).
///
/// A blob is cut into ConfigMaps `<name>-<id>-<i>` of at most [`CHUNK_BYTES`] each, labelled
/// `<label_of>=<object>` and `<label_id>=<id>`; the pointer ConfigMap `<name>` says which
/// blobs are current. A save writes every chunk first, moves the pointer, and only then
/// removes chunks the pointer no longer names (found by label, or by name when the save knows
/// what the pointer named: [`Before`]): a crash at any point leaves the pointer naming
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
    /// of every blob but `keep` (earlier saves, orphans of a crash; see [`Before`]). Returns
    /// the pointer as written.
    pub async fn flip(
        &self,
        data: &BTreeMap<String, String>,
        keep: &[&str],
        before: &Before,
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
        match before {
            Before::Unknown => self.remove_except(keep).await,
            Before::Named(blobs) => self.remove_named(blobs, keep).await,
        }
        Ok(written)
    }

    /// Removes the chunks of `blobs` not in `keep`, by name; best effort, as
    /// [`ChunkedPointer::remove_except`].
    async fn remove_named(&self, blobs: &[Blob], keep: &[&str]) {
        for blob in blobs.iter().filter(|b| !keep.contains(&b.id.as_str())) {
            for i in 0..blob.chunks {
                let name = self.chunk_name(&blob.id, i);
                let _ = self.api.delete(&name, &DeleteParams::default()).await;
            }
        }
    }

    /// Stores `bytes` as the one blob the pointer names (`id`, `chunks`) beside `extra`.
    pub async fn save(
        &self,
        bytes: &[u8],
        extra: BTreeMap<String, String>,
        before: &Before,
    ) -> Result<(Blob, ConfigMap), ChunkError> {
        let blob = self.stage(bytes).await?;
        let mut data = extra;
        data.insert("id".into(), blob.id.clone());
        data.insert("chunks".into(), blob.chunks.to_string());
        let written = self.flip(&data, &[&blob.id], before).await?;
        Ok((blob, written))
    }

    /// The pointer's data and the one blob it names, if there is a pointer.
    pub async fn load(&self) -> Result<Option<(BTreeMap<String, String>, Vec<u8>)>, ChunkError> {
        let loaded = self
            .load_with(|data| Blob::of(data).map(|b| vec![b]))
            .await?;
        Ok(loaded.map(|(data, mut blobs)| (data, blobs.pop().unwrap_or_default())))
    }

    /// The pointer's data and the bytes of each blob `named` finds in it, in its order.
    ///
    /// A reader in another process (a standby replica, a test) can read the pointer just
    /// before a save moves it and removes the chunks it named: a missing chunk under a pointer
    /// that has moved since is that race, and the read starts over from the new pointer. A
    /// chunk missing under a pointer that still names it is a real loss.
    pub async fn load_with(
        &self,
        named: impl Fn(&BTreeMap<String, String>) -> Option<Vec<Blob>>,
    ) -> Result<Option<(BTreeMap<String, String>, Vec<Vec<u8>>)>, ChunkError> {
        let Some(mut data) = self.get().await? else {
            return Ok(None);
        };
        let mut restarts = 0;
        loop {
            let blobs = named(&data).ok_or_else(|| ChunkError::Pointer(self.name.clone()))?;
            let mut read = Vec::with_capacity(blobs.len());
            let mut missing = None;
            for blob in &blobs {
                match self.read(blob).await {
                    Ok(bytes) => read.push(bytes),
                    Err(ChunkError::Missing(name)) => {
                        missing = Some(name);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(name) = missing else {
                return Ok(Some((data, read)));
            };
            match self.get().await? {
                Some(newer) if newer != data && restarts < LOAD_RESTARTS => {
                    restarts += 1;
                    data = newer;
                }
                Some(_) => return Err(ChunkError::Missing(name)),
                None => return Ok(None),
            }
        }
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

/// Deltas kept before a new base is written: loading replays each one.
pub const MAX_DELTAS: usize = 16;
/// Deltas kept while their bytes stay under this share (1/N) of the base's: past it, a new
/// base costs less than what the deltas cost to read.
pub const DELTA_SHARE: usize = 4;

/// A stored snapshot as its pointer names it: a base and the deltas to replay on it, oldest
/// first. Pointers written before deltas existed name a base alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub base: Blob,
    pub base_bytes: usize,
    pub deltas: Vec<(Blob, usize)>,
    pub serial: Option<u32>,
}

impl Stored {
    /// Names this exact snapshot: the newest blob's id (it changes with every save).
    pub fn version(&self) -> &str {
        self.deltas
            .last()
            .map_or(self.base.id.as_str(), |(b, _)| b.id.as_str())
    }

    fn delta_bytes(&self) -> usize {
        self.deltas.iter().map(|(_, n)| n).sum()
    }

    fn parse(data: &BTreeMap<String, String>) -> Option<Stored> {
        let base = Blob::of(data)?;
        let mut deltas = Vec::new();
        for item in data
            .get("deltas")
            .map(String::as_str)
            .unwrap_or_default()
            .split_whitespace()
        {
            let mut parts = item.split(':');
            let id = parts.next()?.to_string();
            let chunks = parts.next()?.parse().ok()?;
            let bytes = parts.next()?.parse().ok()?;
            deltas.push((Blob { id, chunks }, bytes));
        }
        Some(Stored {
            base,
            base_bytes: data.get("bytes").and_then(|b| b.parse().ok()).unwrap_or(0),
            deltas,
            serial: data.get("serial").and_then(|s| s.parse().ok()),
        })
    }

    fn data(&self, records: usize) -> BTreeMap<String, String> {
        let deltas: Vec<String> = self
            .deltas
            .iter()
            .map(|(b, n)| format!("{}:{}:{n}", b.id, b.chunks))
            .collect();
        BTreeMap::from([
            ("id".to_string(), self.base.id.clone()),
            ("chunks".to_string(), self.base.chunks.to_string()),
            (
                "serial".to_string(),
                self.serial.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("records".to_string(), records.to_string()),
            ("bytes".to_string(), self.base_bytes.to_string()),
            ("deltas".to_string(), deltas.join(" ")),
        ])
    }

    fn ids(&self) -> Vec<&str> {
        std::iter::once(self.base.id.as_str())
            .chain(self.deltas.iter().map(|(b, _)| b.id.as_str()))
            .collect()
    }
}

impl ConfigMapStore {
    /// The stored snapshot's version and serial, read from its pointer alone (one small GET).
    pub async fn pointer(&self) -> Result<Option<(String, Option<u32>)>, SnapshotError> {
        Ok(self
            .stored()
            .await?
            .map(|s| (s.version().to_string(), s.serial)))
    }

    /// What the pointer names, without reading the blobs.
    pub async fn stored(&self) -> Result<Option<Stored>, SnapshotError> {
        let Some(data) = self.chunked().get().await.map_err(|e| self.chunk(e))? else {
            return Ok(None);
        };
        Stored::parse(&data)
            .map(Some)
            .ok_or_else(|| self.corrupt("pointer names no complete snapshot"))
    }

    /// Stores `zone` (chunks first, pointer last) and returns the new snapshot's version.
    pub async fn save_id(&self, zone: &Zone) -> Result<String, SnapshotError> {
        let staged = self.stage(zone).await?;
        self.commit(staged).await
    }

    /// Stores `zone` where its caller just found no pointer: nothing to list for removal.
    pub async fn save_first(&self, zone: &Zone) -> Result<(), SnapshotError> {
        let staged = self.stage(zone).await?;
        self.commit_after(staged, &Before::Named(Vec::new()))
            .await
            .map(|_| ())
    }

    /// Writes `zone` as a new base without moving the pointer: readers still see the old
    /// snapshot until [`ConfigMapStore::commit`]. Staged chunks never committed are removed
    /// by the next commit.
    pub async fn stage(&self, zone: &Zone) -> Result<Staged, SnapshotError> {
        let bytes = encode(zone).map_err(|e| self.codec(e))?;
        let blob = self
            .chunked()
            .stage(&bytes)
            .await
            .map_err(|e| self.chunk(e))?;
        Ok(Staged {
            stored: Stored {
                base: blob,
                base_bytes: bytes.len(),
                deltas: Vec::new(),
                serial: zone.soa_serial(),
            },
            records: zone.record_count(),
        })
    }

    /// Writes what leads from the stored snapshot `on` to `after` as a delta, or, once the
    /// deltas have grown past [`MAX_DELTAS`] or 1/[`DELTA_SHARE`] of the base's bytes, `after`
    /// as a new base (the compaction). The pointer does not move until
    /// [`ConfigMapStore::commit`].
    pub async fn stage_delta(
        &self,
        on: &Stored,
        delta: &Delta,
        after: &Zone,
    ) -> Result<Staged, SnapshotError> {
        let bytes = delta.encode().map_err(|e| self.codec(e))?;
        let grown = on.delta_bytes() + bytes.len();
        if on.deltas.len() >= MAX_DELTAS || grown.saturating_mul(DELTA_SHARE) > on.base_bytes {
            return self.stage(after).await;
        }
        let blob = self
            .chunked()
            .stage(&bytes)
            .await
            .map_err(|e| self.chunk(e))?;
        let mut stored = on.clone();
        stored.deltas.push((blob, bytes.len()));
        stored.serial = after.soa_serial();
        Ok(Staged {
            stored,
            records: after.record_count(),
        })
    }

    /// Moves the pointer to a staged snapshot (the flip) and removes the chunks it does not
    /// name; returns the snapshot's version.
    pub async fn commit(&self, staged: Staged) -> Result<String, SnapshotError> {
        self.commit_after(staged, &Before::Unknown).await
    }

    async fn commit_after(&self, staged: Staged, before: &Before) -> Result<String, SnapshotError> {
        let Staged { stored, records } = staged;
        self.chunked()
            .flip(&stored.data(records), &stored.ids(), before)
            .await
            .map_err(|e| self.chunk(e))?;
        Ok(stored.version().to_string())
    }
}

/// A snapshot whose chunks are written and whose pointer has not moved yet.
#[derive(Debug, Clone)]
pub struct Staged {
    stored: Stored,
    records: usize,
}

impl Staged {
    /// Whether this snapshot is a delta on the stored one (not a new base).
    pub fn is_delta(&self) -> bool {
        !self.stored.deltas.is_empty()
    }

    /// The version the pointer will name once committed.
    pub fn version(&self) -> &str {
        self.stored.version()
    }
}

impl SnapshotStore for ConfigMapStore {
    type Error = SnapshotError;

    async fn load(&self, origin: &Name) -> Result<Option<Zone>, SnapshotError> {
        let loaded = self
            .chunked()
            .load_with(|data| {
                let stored = Stored::parse(data)?;
                let deltas = stored.deltas.into_iter().map(|(blob, _)| blob);
                Some(std::iter::once(stored.base).chain(deltas).collect())
            })
            .await
            .map_err(|e| self.chunk(e))?;
        let Some((_, blobs)) = loaded else {
            return Ok(None);
        };
        let mut blobs = blobs.into_iter();
        let base = blobs.next().unwrap_or_default();
        let mut zone = decode(origin, &base).map_err(|e| self.codec(e))?;
        for bytes in blobs {
            Delta::decode(origin, &bytes, MAX_DECOMPRESSED)
                .map_err(|e| self.codec(e))?
                .apply(&mut zone);
        }
        Ok(Some(zone))
    }

    async fn save(&self, zone: &Zone) -> Result<(), SnapshotError> {
        self.save_id(zone).await.map(|_| ())
    }
}
