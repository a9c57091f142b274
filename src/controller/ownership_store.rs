//! Where a DnsZone's ownership list (which RRsets it manages) lives in the cluster: stored like
//! snapshots, the gzip of its text in chunks of at most [`super::snapshot::CHUNK_BYTES`],
//! named by a small pointer ConfigMap `<zone>-zonekeeper-owned`. One plain ConfigMap held 40 MB
//! for a 1M-record zone, where a cluster takes 1 MiB.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use super::owner::controller_ref;
use super::snapshot::{ChunkError, Chunks};
use super::status::FIELD_MANAGER;
use crate::api::DnsZone;
use crate::dns::model::Owned;
use crate::reconcile::ownership::{MAX_OWNED_TEXT, decode_owned, encode_owned, parse_owned};

/// Suffix of the ConfigMap that records which RRsets a DnsZone manages.
pub const OWNED_SUFFIX: &str = "-zonekeeper-owned";
const LABEL_OWNED_OF: &str = "dns.zonekeeper.io/owned-of";
const LABEL_OWNED_ID: &str = "dns.zonekeeper.io/owned-id";

/// Why the ownership list could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipStoreError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("ownership ConfigMap {name}: {detail}")]
    Corrupt { name: String, detail: String },
}

/// The pointer ConfigMap, its chunks and the zone they belong to.
struct Store {
    api: Api<ConfigMap>,
    name: String,
    object: String,
    owner: OwnerReference,
}

impl Store {
    fn of(client: &kube::Client, zone: &DnsZone) -> Self {
        Self {
            api: Api::namespaced(client.clone(), &zone.namespace().unwrap_or_default()),
            name: format!("{}{OWNED_SUFFIX}", zone.name_any()),
            object: zone.name_any(),
            owner: controller_ref(zone),
        }
    }

    fn chunks(&self) -> Chunks<'_> {
        Chunks {
            api: &self.api,
            base: self.name.clone(),
            owner: &self.owner,
            label_of: LABEL_OWNED_OF,
            object: &self.object,
            label_id: LABEL_OWNED_ID,
        }
    }

    fn corrupt(&self, detail: impl ToString) -> OwnershipStoreError {
        OwnershipStoreError::Corrupt {
            name: self.name.clone(),
            detail: detail.to_string(),
        }
    }

    fn chunk_error(&self, e: ChunkError) -> OwnershipStoreError {
        match e {
            ChunkError::Kube(e) => OwnershipStoreError::Kube(e),
            other => self.corrupt(other),
        }
    }
}

/// The zone's ownership list; empty when none was stored yet.
pub async fn load(client: &kube::Client, zone: &DnsZone) -> Result<Owned, OwnershipStoreError> {
    let store = Store::of(client, zone);
    let Some(cm) = store.api.get_opt(&store.name).await? else {
        return Ok(Owned::new());
    };
    let data = cm.data.unwrap_or_default();
    let Some(id) = data.get("id") else {
        // Written before ownership was chunked: the text itself; the next save converts it.
        let text = data.get("rrsets").cloned().unwrap_or_default();
        return parse_owned(&text).map_err(|e| store.corrupt(e));
    };
    let count: usize = data
        .get("chunks")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| store.corrupt("pointer has no chunk count"))?;
    let bytes = store
        .chunks()
        .read(id, count)
        .await
        .map_err(|e| store.chunk_error(e))?;
    decode_owned(&bytes, MAX_OWNED_TEXT).map_err(|e| store.corrupt(e))
}

/// Chunks first, then the pointer, then the old chunks: a crash at any point leaves the
/// pointer naming a complete list (old or new), and an old single-ConfigMap list is
/// replaced by the pointer in the same write.
pub async fn save(
    client: &kube::Client,
    zone: &DnsZone,
    owned: &Owned,
) -> Result<(), OwnershipStoreError> {
    let store = Store::of(client, zone);
    let bytes = encode_owned(owned).map_err(|e| store.corrupt(e))?;
    let chunks = store.chunks();
    let id = Chunks::new_id();
    let count = chunks
        .write(&id, &bytes)
        .await
        .map_err(|e| store.chunk_error(e))?;
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": store.name,
            "namespace": zone.namespace().unwrap_or_default(),
            "labels": {"app.kubernetes.io/managed-by": "zonekeeper"},
            "ownerReferences": [store.owner],
        },
        "data": {
            "id": id,
            "chunks": count.to_string(),
            "rrsetCount": owned.len().to_string(),
        },
    });
    let written = store
        .api
        .patch(
            &store.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await?;
    // Apply drops the old plain list only if our field manager wrote it; one edited by hand
    // (or restored from a backup) would stay beside the pointer, so remove it explicitly.
    if written.data.is_some_and(|d| d.contains_key("rrsets")) {
        store
            .api
            .patch(
                &store.name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"data": {"rrsets": null}})),
            )
            .await?;
    }
    chunks.remove_others(&id).await;
    Ok(())
}
