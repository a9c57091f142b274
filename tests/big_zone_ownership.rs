//! Ownership of a zone with tens of thousands of managed RRsets: every ConfigMap the operator
//! writes stays under a cluster's 1 MiB (the test API server refuses more, as etcd would), and
//! the stored ownership still drives deletions.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde_json::json;
use support::cluster::{Cluster, NS, is_ready, zone_manifest};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};

// 30k RRsets through UPDATE on a shared 2-core machine: generous, returns as soon as it holds.
const WAIT: Duration = Duration::from_secs(600);
const RRSETS: usize = 30_000;
const PARTS: usize = 3;

fn part_text(part: usize) -> String {
    let mut text = String::from("$TTL 300\n");
    for i in (part * RRSETS / PARTS)..((part + 1) * RRSETS / PARTS) {
        text.push_str(&format!("host-{i} IN A 10.{}.{}.1\n", i / 256, i % 256));
    }
    text
}

fn stored_bytes(cm: &ConfigMap) -> usize {
    let data: usize = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let binary: usize = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.0.len())
        .sum();
    data + binary
}

/// How many chunk ConfigMaps of zone `big`'s ownership list there are.
fn owned_chunk_count<'a>(cms: impl IntoIterator<Item = &'a ConfigMap>) -> usize {
    cms.into_iter()
        .filter(|cm| {
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("big-zonekeeper-owned-"))
        })
        .count()
}

fn host_count(server: &DnsServer) -> usize {
    server
        .axfr_lines()
        .iter()
        .filter(|l| l.starts_with("host-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_of_thirty_thousand_rrsets_fits_in_configmaps_and_still_deletes() {
    let server = support::cluster::empty_bind().await;
    let (cluster, op) = Cluster::with_operator("big", &server).await;
    let refs: Vec<_> = (0..PARTS)
        .map(|p| json!({"configMapRef": {"name": format!("big-part{p}"), "key": "zone"}}))
        .collect();
    for p in 0..PARTS {
        cluster
            .config_map(&format!("big-part{p}"), "zone", &part_text(p))
            .await;
    }
    let mut manifest = zone_manifest("big", &server, json!([]));
    manifest["spec"]["recordsFrom"] = json!(refs);
    cluster.apply_zone(manifest).await;
    cluster.wait_zone("big", WAIT, is_ready).await;
    assert_eq!(host_count(&server), RRSETS);

    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let all = api.list(&ListParams::default()).await.unwrap();
    let ours: Vec<&ConfigMap> = all
        .items
        .iter()
        .filter(|cm| {
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("big-zonekeeper"))
        })
        .collect();
    let owned_chunks = owned_chunk_count(ours.iter().copied());
    assert!(owned_chunks >= 1, "ownership stored in chunks");
    for cm in &ours {
        assert!(
            stored_bytes(cm) < 1024 * 1024,
            "{:?} holds {} bytes",
            cm.metadata.name,
            stored_bytes(cm)
        );
    }

    // Removing one record from the spec deletes it: ownership was read back from the chunks
    // (after a restart, so not from memory).
    op.stop().await;
    let op = cluster.operator("second", None).await;
    let mut last = part_text(PARTS - 1);
    let gone = format!("host-{} IN A", RRSETS - 1);
    last = last
        .lines()
        .filter(|l| !l.starts_with(&gone))
        .map(|l| format!("{l}\n"))
        .collect();
    cluster
        .config_map(&format!("big-part{}", PARTS - 1), "zone", &last)
        .await;
    let deadline = std::time::Instant::now() + WAIT;
    while host_count(&server) != RRSETS - 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "host-{} was not deleted",
            RRSETS - 1
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !server
            .axfr_lines()
            .iter()
            .any(|l| l.starts_with(&format!("host-{}.", RRSETS - 1)))
    );
    // The ownership save follows the apply, and the old chunks go after the new pointer is
    // written: wait for both.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let pointer = api.get("big-zonekeeper-owned").await.unwrap();
        let count = pointer
            .data
            .as_ref()
            .and_then(|d| d.get("rrsetCount").cloned());
        let chunks_now = owned_chunk_count(&api.list(&ListParams::default()).await.unwrap().items);
        if count == Some((RRSETS - 1).to_string()) && chunks_now == owned_chunks {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ownership not saved with its old chunks removed: rrsetCount {count:?}, \
             {chunks_now} chunks where {owned_chunks} were before"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    op.stop().await;
}

/// An ownership ConfigMap from before chunking (the plain text under `rrsets`) is still read:
/// an RRset it lists is deleted once the spec drops it, and the next save converts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_stored_in_the_old_plain_form_is_read_and_converted() {
    let server = support::cluster::empty_bind().await;
    let (cluster, op) = Cluster::with_operator("old", &server).await;
    let records = json!([
        {"name": "keep", "type": "A", "data": ["192.0.2.1"]},
        {"name": "drop", "type": "A", "data": ["192.0.2.2"]},
    ]);
    cluster
        .apply_zone(zone_manifest("old", &server, records.clone()))
        .await;
    cluster
        .wait_zone("old", Duration::from_secs(60), is_ready)
        .await;
    op.stop().await;

    // Rewrite the stored ownership as an older zonekeeper left it: one ConfigMap, plain text.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let mut pointer = api.get("old-zonekeeper-owned").await.unwrap();
    let data = pointer.data.clone().unwrap();
    let chunks: usize = data["chunks"].parse().unwrap();
    let mut bytes = Vec::new();
    for i in 0..chunks {
        let chunk = api
            .get(&format!("old-zonekeeper-owned-{}-{i}", data["id"]))
            .await
            .unwrap();
        bytes.extend_from_slice(&chunk.binary_data.unwrap()["chunk"].0);
        api.delete(chunk.metadata.name.as_deref().unwrap(), &Default::default())
            .await
            .unwrap();
    }
    let owned = zonekeeper::reconcile::ownership::decode_owned(&bytes, 1 << 20).unwrap();
    assert_eq!(owned.len(), 2);
    pointer.data = Some(
        [(
            "rrsets".to_string(),
            zonekeeper::reconcile::ownership::format_owned(&owned),
        )]
        .into_iter()
        .collect(),
    );
    pointer.metadata.managed_fields = None;
    api.replace("old-zonekeeper-owned", &Default::default(), &pointer)
        .await
        .unwrap();

    let op = cluster.operator("upgraded", None).await;
    cluster
        .patch_spec("old", json!({"records": [records[0].clone()]}))
        .await;
    let zone = cluster
        .wait_zone("old", Duration::from_secs(60), |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() == 2)
        })
        .await;
    let entry = &zone.status.as_ref().unwrap().history[0];
    assert_eq!((entry.added, entry.deleted), (0, 1), "{entry:?}");
    let lines = server.axfr_lines();
    assert!(!lines.iter().any(|l| l.starts_with("drop.example.com.")));
    assert!(lines.iter().any(|l| l.starts_with("keep.example.com.")));
    let converted = api.get("old-zonekeeper-owned").await.unwrap();
    let data = converted.data.unwrap_or_default();
    assert!(data.contains_key("id"), "{data:?}");
    assert!(!data.contains_key("rrsets"), "{data:?}");
    op.stop().await;
}

/// A 1M-record zone through the operator, records in `recordsFrom` ConfigMaps cut as
/// `zonekeeper import --out-dir` cuts them (at most `CONFIG_MAP_LIMIT` bytes of zone text each),
/// against a BIND already serving them (1M UPDATEs would measure BIND, not zonekeeper). The
/// zone becomes Ready and every object zonekeeper writes stays under 1 MiB, as a real API
/// server demands (the test API server refuses more). Prints the time and the test process'
/// peak RSS (operator and test API server together; BIND is another process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_records_through_the_operator_fit_in_objects_under_a_mebibyte() {
    const N: usize = 1_000_000;
    let line = |i: usize| {
        format!(
            "host-{i} IN A 10.{}.{}.{}\n",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        )
    };
    let started = std::time::Instant::now();
    let server = tokio::task::spawn_blocking(move || {
        let records = (0..N).map(|i| line(i).trim_end().to_string()).collect();
        DnsServer::start(
            ServerKind::Bind,
            &ZoneContent::new("example.com.", records),
            ServerOptions::default(),
        )
    })
    .await
    .unwrap();
    eprintln!("BIND serving {N} records after {:?}", started.elapsed());
    let (cluster, op) = Cluster::with_operator("mega", &server).await;

    // The fixture's zone file has `$TTL 3600`: the same TTL here, so the pass finds the
    // records in place instead of replacing a million RRsets.
    let limit = zonekeeper::standalone::import::CONFIG_MAP_LIMIT;
    let mut parts = vec![String::from("$TTL 3600\n")];
    for i in 0..N {
        let l = line(i);
        if parts.last().is_some_and(|p| p.len() + l.len() > limit) {
            parts.push(String::from("$TTL 3600\n"));
        }
        if let Some(p) = parts.last_mut() {
            p.push_str(&l);
        }
    }
    for (p, text) in parts.iter().enumerate() {
        cluster
            .config_map(&format!("mega-part{p}"), "zone", text)
            .await;
    }
    let refs: Vec<_> = (0..parts.len())
        .map(|p| json!({"configMapRef": {"name": format!("mega-part{p}"), "key": "zone"}}))
        .collect();
    let mut manifest = zone_manifest("mega", &server, json!([]));
    manifest["spec"]["recordsFrom"] = json!(refs);
    manifest["spec"]["backend"]["timeout"] = json!("60s");
    let applied = std::time::Instant::now();
    cluster.apply_zone(manifest).await;
    let zone = cluster
        .wait_zone("mega", Duration::from_secs(1800), is_ready)
        .await;
    let took = applied.elapsed();

    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let all = api.list(&ListParams::default()).await.unwrap();
    let ours: Vec<&ConfigMap> = all
        .items
        .iter()
        .filter(|cm| {
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("mega-zonekeeper"))
        })
        .collect();
    assert!(!ours.is_empty(), "ownership stored");
    for cm in &ours {
        assert!(
            stored_bytes(cm) < 1024 * 1024,
            "{:?} holds {} bytes",
            cm.metadata.name,
            stored_bytes(cm)
        );
    }
    let object = serde_json::to_vec(&zone).unwrap().len();
    let status = serde_json::to_vec(&zone.status).unwrap().len();
    assert!(object < 1024 * 1024, "the DnsZone is {object} bytes");
    assert!(status < 256 * 1024, "its status is {status} bytes");
    let peak_kib: u64 = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    let owned = ours
        .iter()
        .find(|cm| cm.metadata.name.as_deref() == Some("mega-zonekeeper-owned"))
        .and_then(|cm| cm.data.as_ref()?.get("rrsetCount").cloned());
    eprintln!(
        "1M records: Ready {took:?} after the apply ({} recordsFrom ConfigMaps); {} zonekeeper ConfigMaps, largest {} bytes; owned RRsets {owned:?}; DnsZone {object} bytes; peak RSS of operator + test API server {} MiB",
        parts.len(),
        ours.len(),
        ours.iter().map(|cm| stored_bytes(cm)).max().unwrap_or(0),
        peak_kib / 1024
    );
    op.stop().await;
}
