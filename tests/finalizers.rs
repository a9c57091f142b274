//! The cleanup finalizer is on a DnsZone only while its deletion has work to do
//! (`deletionPolicy: DeleteRecords`); with `Retain` there is none, and deletion never waits.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::{Cluster, is_ready, zone_manifest};
use zonekeeper::api::DnsZone;
use zonekeeper::controller::dns_zone::FINALIZER;

const WAIT: Duration = Duration::from_secs(60);

fn has_finalizer(zone: &DnsZone) -> bool {
    zone.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_finalizer_follows_the_deletion_policy() {
    let bind = support::cluster::empty_bind().await;
    let (cluster, _op) = Cluster::with_operator("kept", &bind).await;
    let www = json!([{"name": "www", "type": "A", "data": ["192.0.2.1"]}]);
    cluster.apply_zone(zone_manifest("kept", &bind, www)).await;
    let zone = cluster.wait_zone("kept", WAIT, is_ready).await;
    assert!(
        !has_finalizer(&zone),
        "Retain (the default): no finalizer: {:?}",
        zone.metadata.finalizers
    );

    cluster
        .patch_spec("kept", json!({"deletionPolicy": "DeleteRecords"}))
        .await;
    cluster.wait_zone("kept", WAIT, has_finalizer).await;

    cluster
        .patch_spec("kept", json!({"deletionPolicy": "Retain"}))
        .await;
    cluster
        .wait_zone("kept", WAIT, |z| !has_finalizer(z) && is_ready(z))
        .await;

    cluster
        .zones()
        .delete("kept", &Default::default())
        .await
        .unwrap();
    let deleted_at = Instant::now();
    while cluster.zones().get_opt("kept").await.unwrap().is_some() {
        assert!(
            deleted_at.elapsed() < Duration::from_secs(5),
            "a Retain zone is released by the API server at once"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = std::process::Command::new("dig")
        .args([
            "+short",
            "-p",
            &bind.addr.port().to_string(),
            "@127.0.0.1",
            "www.example.com.",
            "A",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "192.0.2.1",
        "Retain left the record"
    );
}
