//! `zonekeeper changes`: a ZoneSync's complete change list, read back from the cluster.
//!
//! Status keeps the first 100 lines; the operator writes the whole list as one gzip stream cut
//! into ConfigMaps (see `controller::zone_sync::store_full_changes`): the first, named in
//! `status.fullChangesRef`, holds `chunks`; the others are `<first>-1`, `<first>-2`, … and
//! their `changes.gz` pieces, concatenated in that order, are the stream.

use std::io::Read;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use crate::api::ZoneSync;

/// What the change list may grow to once decompressed: 1M changes of 256-byte lines are
/// 256 MB; a bigger stream is not one zonekeeper wrote (a gzip bomb in a ConfigMap).
pub const MAX_CHANGES_TEXT: u64 = 1024 * 1024 * 1024;

/// Why the change list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("reading {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("ZoneSync {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    #[error("ZoneSync {namespace}/{name} has no status yet: it has not run")]
    NoStatus { namespace: String, name: String },
    #[error("change list ConfigMap {name}: {detail}")]
    Corrupt { name: String, detail: String },
}

/// The complete change list of ZoneSync `namespace/name`, one change per line (`+`/`-` and a
/// zone-file record), in the order the operator recorded them.
pub async fn read_changes(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<String>, ChangesError> {
    let syncs: Api<ZoneSync> = Api::namespaced(client.clone(), namespace);
    let sync = syncs
        .get_opt(name)
        .await
        .map_err(|source| ChangesError::Api {
            what: format!("ZoneSync {namespace}/{name}"),
            source,
        })?
        .ok_or_else(|| ChangesError::NotFound {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let status = sync.status.ok_or_else(|| ChangesError::NoStatus {
        namespace: namespace.into(),
        name: name.into(),
    })?;
    match status.full_changes_ref {
        // Short lists live in status whole.
        None => Ok(status.changes),
        Some(first) => read_chunked(client, namespace, &first).await,
    }
}

async fn read_chunked(
    client: &Client,
    namespace: &str,
    first: &str,
) -> Result<Vec<String>, ChangesError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let get = |cm_name: String| {
        let api = api.clone();
        let namespace = namespace.to_string();
        async move {
            api.get_opt(&cm_name)
                .await
                .map_err(|source| ChangesError::Api {
                    what: format!("ConfigMap {namespace}/{cm_name}"),
                    source,
                })?
                .ok_or_else(|| ChangesError::Corrupt {
                    name: cm_name.clone(),
                    detail: "missing (deleted with its ZoneSync, or not written yet)".into(),
                })
        }
    };
    let head = get(first.to_string()).await?;
    let corrupt = |name: &str, detail: &str| ChangesError::Corrupt {
        name: name.into(),
        detail: detail.into(),
    };
    let chunks: usize = head
        .data
        .as_ref()
        .and_then(|d| d.get("chunks"))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| corrupt(first, "no `chunks` count"))?;
    let expected: Option<usize> = head
        .data
        .as_ref()
        .and_then(|d| d.get("count"))
        .and_then(|c| c.parse().ok());
    let mut gz = Vec::new();
    for i in 0..chunks {
        let (cm_name, cm) = if i == 0 {
            (first.to_string(), head.clone())
        } else {
            let n = format!("{first}-{i}");
            (n.clone(), get(n).await?)
        };
        let piece = cm
            .binary_data
            .as_ref()
            .and_then(|b| b.get("changes.gz"))
            .ok_or_else(|| corrupt(&cm_name, "no `changes.gz`"))?;
        gz.extend_from_slice(&piece.0);
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .take(MAX_CHANGES_TEXT + 1)
        .read_to_string(&mut text)
        .map_err(|e| corrupt(first, &format!("gzip stream: {e}")))?;
    if text.len() as u64 > MAX_CHANGES_TEXT {
        return Err(corrupt(
            first,
            &format!("decompresses to more than {MAX_CHANGES_TEXT} bytes"),
        ));
    }
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some(n) = expected
        && n != lines.len()
    {
        return Err(corrupt(
            first,
            &format!("says {n} changes, the pieces hold {}", lines.len()),
        ));
    }
    Ok(lines)
}
