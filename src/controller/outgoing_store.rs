//! The served version of an outgoing zone and its IXFR backlog, kept like snapshots (chunks of
//! at most [`super::snapshot::CHUNK_BYTES`] named by a pointer ConfigMap
//! `<zone>-zonekeeper-outgoing`, owned by the DnsZone), so a restarted operator serves IXFR
//! from where the last one stopped instead of sending every peer an AXFR.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::owner::controller_ref;
use super::snapshot::{Before, Blob, ChunkError, ChunkedPointer};
use super::status::FIELD_MANAGER;
use crate::api::DnsZone;
use crate::dns::model::Zone;
use crate::dns::outgoing::{BacklogExport, TransferMethod};
use crate::reconcile::snapshot::{decode, encode};

const SUFFIX: &str = "-zonekeeper-outgoing";
const LABEL_OF: &str = "dns.zonekeeper.io/outgoing-of";
const LABEL_ID: &str = "dns.zonekeeper.io/outgoing-id";
/// A backlog decompresses to at most this: it is bounded far below by the engine's limits.
const MAX_BACKLOG_JSON: u64 = 512 << 20;

/// Why the served state could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum OutgoingStoreError {
    #[error("outgoing state {name}: Kubernetes API: {source}")]
    Kube {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("outgoing state {name}: {detail}")]
    Corrupt { name: String, detail: String },
}

/// What a pointer ConfigMap names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedPointer {
    /// Changes with every save (chunks are written under a new id each time).
    pub id: String,
    /// The served serial saved, when the pointer records it.
    pub serial: Option<u32>,
}

/// One saved state as read.
#[derive(Debug)]
pub struct Saved {
    /// The pointer id it was read under.
    pub id: String,
    pub zone: Zone,
    pub backlog: BacklogExport,
}

/// The DnsZone whose pointer ConfigMap is named `name` (chunks are not pointers).
pub fn zone_of_pointer(name: &str) -> Option<&str> {
    name.strip_suffix(SUFFIX).filter(|z| !z.is_empty())
}

/// Where one zone's served state lives.
#[derive(Clone, Debug)]
pub struct OutgoingStore {
    store: ChunkedPointer,
    namespace: String,
}

impl OutgoingStore {
    pub fn of(client: &kube::Client, zone: &DnsZone) -> Self {
        Self {
            namespace: zone.namespace().unwrap_or_default(),
            store: ChunkedPointer {
                api: Api::namespaced(client.clone(), &zone.namespace().unwrap_or_default()),
                name: format!("{}{SUFFIX}", zone.name_any()),
                owner: controller_ref(zone),
                label_of: LABEL_OF,
                object: zone.name_any(),
                label_id: LABEL_ID,
                pointer_labels: BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "zonekeeper".to_string(),
                )]),
            },
        }
    }

    fn corrupt(&self, detail: impl ToString) -> OutgoingStoreError {
        OutgoingStoreError::Corrupt {
            name: self.store.name.clone(),
            detail: detail.to_string(),
        }
    }

    fn chunk_error(&self, e: ChunkError) -> OutgoingStoreError {
        match e {
            ChunkError::Kube(source) => OutgoingStoreError::Kube {
                name: self.store.name.clone(),
                source,
            },
            other => self.corrupt(other),
        }
    }

    /// The served version and its backlog, as last saved.
    pub async fn load(
        &self,
        origin: &Name,
    ) -> Result<Option<(Zone, BacklogExport)>, OutgoingStoreError> {
        Ok(self.load_saved(origin).await?.map(|s| (s.zone, s.backlog)))
    }

    /// What the pointer names now, without reading the chunks: a replica compares it with
    /// what it serves before loading anything.
    pub async fn pointer(&self) -> Result<Option<SavedPointer>, OutgoingStoreError> {
        let Some(data) = self.store.get().await.map_err(|e| self.chunk_error(e))? else {
            return Ok(None);
        };
        self.parse_pointer(&data).map(Some)
    }

    fn parse_pointer(
        &self,
        data: &BTreeMap<String, String>,
    ) -> Result<SavedPointer, OutgoingStoreError> {
        let Some(blob) = Blob::of(data) else {
            return Err(self.corrupt("pointer without id or chunk count"));
        };
        Ok(SavedPointer {
            id: blob.id,
            serial: data.get("serial").and_then(|s| s.parse().ok()),
        })
    }

    /// The saved version, its backlog and the pointer id they were read under.
    pub async fn load_saved(&self, origin: &Name) -> Result<Option<Saved>, OutgoingStoreError> {
        let Some((data, bytes)) = self.store.load().await.map_err(|e| self.chunk_error(e))? else {
            return Ok(None);
        };
        let pointer = self.parse_pointer(&data)?;
        let (len, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| self.corrupt("truncated"))?;
        let len = usize::try_from(u64::from_be_bytes(*len)).map_err(|e| self.corrupt(e))?;
        if rest.len() < len {
            return Err(self.corrupt("truncated zone"));
        }
        let (zone_bytes, backlog_bytes) = rest.split_at(len);
        let zone = decode(origin, zone_bytes).map_err(|e| self.corrupt(e))?;
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(backlog_bytes)
            .take(MAX_BACKLOG_JSON)
            .read_to_end(&mut json)
            .map_err(|e| self.corrupt(e))?;
        let backlog = serde_json::from_slice(&json).map_err(|e| self.corrupt(e))?;
        Ok(Some(Saved {
            id: pointer.id,
            zone,
            backlog,
        }))
    }

    /// Chunks first, the pointer last, old chunks after: a crash leaves a complete old or new
    /// state, never a zone with another version's backlog.
    pub async fn save(
        &self,
        zone: &Zone,
        backlog: &BacklogExport,
    ) -> Result<(), OutgoingStoreError> {
        let zone_bytes = encode(zone).map_err(|e| self.corrupt(e))?;
        let json = serde_json::to_vec(backlog).map_err(|e| self.corrupt(e))?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&json).map_err(|e| self.corrupt(e))?;
        let backlog_bytes = gz.finish().map_err(|e| self.corrupt(e))?;
        let mut bytes = Vec::with_capacity(8 + zone_bytes.len() + backlog_bytes.len());
        bytes.extend_from_slice(&(zone_bytes.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&zone_bytes);
        bytes.extend_from_slice(&backlog_bytes);
        let extra = BTreeMap::from([
            (
                "serial".to_string(),
                zone.soa_serial().map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("backlog".to_string(), backlog.diffs.len().to_string()),
        ]);
        self.store
            .save(&bytes, extra, &Before::Unknown)
            .await
            .map_err(|e| self.chunk_error(e))?;
        Ok(())
    }

    /// Every standby's last transfers of the namespace's zones, from the ConfigMaps the
    /// standbys publish (found by label: the leader need not know who stands by).
    async fn namespace_transfers(&self) -> Result<Vec<ServedTransfer>, OutgoingStoreError> {
        let list = self
            .store
            .api
            .list(
                &ListParams::default().labels(&format!("{COMPONENT_LABEL}={TRANSFERS_COMPONENT}")),
            )
            .await
            .map_err(|source| OutgoingStoreError::Kube {
                name: format!("{TRANSFERS_PREFIX}*"),
                source,
            })?;
        let mut out = Vec::new();
        for cm in list {
            let Some(json) = cm.data.as_ref().and_then(|d| d.get(TRANSFERS_KEY)) else {
                continue;
            };
            // One replica's unreadable record must not hide the others'.
            match serde_json::from_str::<Vec<ServedTransfer>>(json) {
                Ok(records) => out.extend(records),
                Err(e) => {
                    tracing::debug!(configmap = %cm.name_any(), error = %e, "outgoing: unreadable transfer record skipped")
                }
            }
        }
        Ok(out)
    }

    /// `spec.outgoing` removed: the state goes too (best effort; the owner reference removes
    /// it with the zone anyway).
    pub async fn delete(&self) {
        self.store.delete().await;
    }
}

/// The standbys' records of a namespace are read at most this often for all its zones' tasks:
/// otherwise every round of every zone would list them all.
const STANDBY_READ_EVERY: Duration = Duration::from_secs(1);

/// The standbys' transfer records as last read, by namespace; shared by the zones' tasks.
#[derive(Clone, Debug, Default)]
pub struct StandbyTransfers(Arc<Mutex<StandbyCache>>);

type StandbyCache = HashMap<String, (Instant, Arc<Vec<ServedTransfer>>)>;

impl StandbyTransfers {
    /// Every standby's last transfer of `store`'s zone to each peer.
    pub async fn of_zone(
        &self,
        store: &OutgoingStore,
    ) -> Result<Vec<ServedTransfer>, OutgoingStoreError> {
        let fresh = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&store.namespace)
            .filter(|(at, _)| at.elapsed() < STANDBY_READ_EVERY)
            .map(|(_, r)| r.clone());
        let records = match fresh {
            Some(r) => r,
            None => {
                let r = Arc::new(store.namespace_transfers().await?);
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(store.namespace.clone(), (Instant::now(), r.clone()));
                r
            }
        };
        Ok(records
            .iter()
            .filter(|r| r.zone == store.store.object)
            .cloned()
            .collect())
    }
}

const TRANSFERS_PREFIX: &str = "zonekeeper-outgoing-transfers-";
const TRANSFERS_KEY: &str = "transfers";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
const TRANSFERS_COMPONENT: &str = "outgoing-transfers";

/// A peer's last transfer of a zone from a standby replica, as that replica publishes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedTransfer {
    /// The DnsZone's name (the ConfigMap is per namespace).
    pub zone: String,
    /// The zone origin served: a renamed zone's old records are not the new one's.
    pub origin: String,
    pub peer: String,
    pub method: TransferMethod,
    /// When it was answered, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// The ConfigMap of replica `identity` (pod names are valid ConfigMap names already; anything
/// else is made one).
fn transfers_name(identity: &str) -> String {
    let id: String = identity
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{TRANSFERS_PREFIX}{id}")
}

/// Publishes the transfers replica `identity` served of the zones in `namespace` (one
/// record per zone and peer, so the ConfigMap stays far below 1 MiB: ~150 bytes a record).
pub async fn publish_transfers(
    client: &kube::Client,
    namespace: &str,
    identity: &str,
    records: &[ServedTransfer],
) -> Result<(), OutgoingStoreError> {
    let name = transfers_name(identity);
    let json = serde_json::to_string(records).map_err(|e| OutgoingStoreError::Corrupt {
        name: name.clone(),
        detail: e.to_string(),
    })?;
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {
                COMPONENT_LABEL: TRANSFERS_COMPONENT,
                "app.kubernetes.io/managed-by": "zonekeeper",
            },
        },
        "data": {TRANSFERS_KEY: json},
    });
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .map_err(|source| OutgoingStoreError::Kube { name, source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_names_make_valid_configmap_names() {
        assert_eq!(
            transfers_name("zonekeeper-7d9f-abc"),
            "zonekeeper-outgoing-transfers-zonekeeper-7d9f-abc"
        );
        assert_eq!(
            transfers_name("Host_1:x"),
            "zonekeeper-outgoing-transfers-host-1-x"
        );
    }
}
