//! Where a DnsZone's ownership list (which RRsets it manages) lives in the cluster: stored like
//! snapshots, the gzip of its text in chunks of at most [`super::snapshot::CHUNK_BYTES`],
//! named by a small pointer ConfigMap `<zone>-zonekeeper-owned`. One plain ConfigMap held 40 MB
//! for a 1M-record zone, where a cluster takes 1 MiB.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use super::owner::controller_ref;
use super::snapshot::{Before, Blob, ChunkError, ChunkedPointer};
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

fn pointer(client: &kube::Client, zone: &DnsZone) -> ChunkedPointer {
    ChunkedPointer {
        api: Api::namespaced(client.clone(), &zone.namespace().unwrap_or_default()),
        name: format!("{}{OWNED_SUFFIX}", zone.name_any()),
        owner: controller_ref(zone),
        label_of: LABEL_OWNED_OF,
        object: zone.name_any(),
        label_id: LABEL_OWNED_ID,
        pointer_labels: BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "zonekeeper".to_string(),
        )]),
    }
}

fn corrupt(store: &ChunkedPointer, detail: impl ToString) -> OwnershipStoreError {
    OwnershipStoreError::Corrupt {
        name: store.name.clone(),
        detail: detail.to_string(),
    }
}

fn chunk_error(store: &ChunkedPointer, e: ChunkError) -> OwnershipStoreError {
    match e {
        ChunkError::Kube(e) => OwnershipStoreError::Kube(e),
        other => corrupt(store, other),
    }
}

/// The zone's ownership list, empty when none was stored yet, and what the next save finds
/// stored: nothing when there was no pointer; otherwise not known for sure (an earlier
/// process may have left orphans), so its first save lists the chunks.
pub async fn load(
    client: &kube::Client,
    zone: &DnsZone,
) -> Result<(Owned, Before), OwnershipStoreError> {
    let store = pointer(client, zone);
    let Some(data) = store.get().await.map_err(|e| chunk_error(&store, e))? else {
        return Ok((Owned::new(), Before::Named(Vec::new())));
    };
    if !data.contains_key("id") {
        // Written before ownership was chunked: the text itself; the next save converts it.
        let text = data.get("rrsets").cloned().unwrap_or_default();
        let owned = parse_owned(&text).map_err(|e| corrupt(&store, e))?;
        return Ok((owned, Before::Unknown));
    }
    let blob = Blob::of(&data).ok_or_else(|| corrupt(&store, "pointer has no chunk count"))?;
    let bytes = store
        .read(&blob)
        .await
        .map_err(|e| chunk_error(&store, e))?;
    let owned = decode_owned(&bytes, MAX_OWNED_TEXT).map_err(|e| corrupt(&store, e))?;
    Ok((owned, Before::Unknown))
}

/// Stored as a [`ChunkedPointer`], so a crash at any point leaves the pointer naming a
/// complete list (old or new); an old single-ConfigMap list is replaced by the pointer in
/// the same write. Returns what the pointer names now, for the next save's `before`.
pub async fn save(
    client: &kube::Client,
    zone: &DnsZone,
    owned: &Owned,
    before: &Before,
) -> Result<Before, OwnershipStoreError> {
    let store = pointer(client, zone);
    let bytes = encode_owned(owned).map_err(|e| corrupt(&store, e))?;
    let extra = BTreeMap::from([("rrsetCount".to_string(), owned.len().to_string())]);
    let (blob, written) = store
        .save(&bytes, extra, before)
        .await
        .map_err(|e| chunk_error(&store, e))?;
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
    Ok(Before::Named(vec![blob]))
}
