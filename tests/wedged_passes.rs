//! One wedged zone stalls nothing else: a pass stuck in a transfer from an endless server
//! is cancelled when its DnsZone is deleted (not waited for until its deadline), and
//! another zone on a good BIND becomes Ready meanwhile.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::{Cluster, is_ready, zone_manifest};
use support::dns_servers::TsigKey;
use support::hostile::{Behaviour, HostileServer};

const WAIT: Duration = Duration::from_secs(60);
const WEDGED_ZONE: &str = "wedged.example.";
const KEY_NAME: &str = "wedged-key";
const SECRET: &str = "d2VkZ2VkLXNlY3JldC1mb3ItdGhlLXRlc3RzLTEyMzQ=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_zone_cancels_its_wedged_pass_and_other_zones_carry_on() {
    let bind = support::cluster::empty_bind().await;
    let key = zonekeeper::dns::tsig::TsigKey::new(KEY_NAME, "hmac-sha256", SECRET).unwrap();
    let hostile =
        HostileServer::start(WEDGED_ZONE, Some(key), Behaviour::EndlessEmptyMessages).await;
    let (cluster, _op) = Cluster::with_operator("good", &bind).await;
    cluster
        .secret(
            "wedged-tsig",
            &TsigKey {
                name: KEY_NAME.into(),
                algorithm: "hmac-sha256".into(),
                secret_b64: SECRET.into(),
            },
        )
        .await;

    // Bounds far away: only a cancellation ends this pass within the test's time.
    let mut wedged = zone_manifest("wedged", &bind, json!([]));
    wedged["spec"]["zoneName"] = json!(WEDGED_ZONE);
    wedged["spec"]["backend"]["server"] = json!(hostile.addr.to_string());
    // DeleteRecords: the finalizer holds the object until the operator let go of it.
    wedged["spec"]["deletionPolicy"] = json!("DeleteRecords");
    wedged["spec"]["transfer"] = json!({"deadline": "10m", "maxRecords": 20_000_000});
    cluster.apply_zone(wedged).await;
    let started = Instant::now();
    while hostile.transfers() == 0 {
        assert!(
            started.elapsed() < WAIT,
            "the operator never asked for the zone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let good = zone_manifest(
        "good",
        &bind,
        json!([{"name": "www", "type": "A", "data": ["192.0.2.1"]}]),
    );
    cluster.apply_zone(good).await;
    let zone = cluster.wait_zone("good", WAIT, is_ready).await;
    assert!(zone.status.unwrap().version >= 1, "www was applied");
    let wedged = cluster.zones().get("wedged").await.unwrap();
    assert!(
        !is_ready(&wedged),
        "the wedged pass is still in its transfer while the good zone got Ready"
    );

    cluster
        .zones()
        .delete("wedged", &Default::default())
        .await
        .unwrap();
    let deleted_at = Instant::now();
    while cluster.zones().get_opt("wedged").await.unwrap().is_some() {
        // Without cancellation the pass reads 20M empty messages or runs 10 minutes first.
        assert!(
            deleted_at.elapsed() < Duration::from_secs(15),
            "the wedged zone was not released: {:?}",
            cluster.events_for("wedged")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "wedged zone gone {:?} after its deletion",
        deleted_at.elapsed()
    );
    assert!(
        cluster
            .events_for("wedged")
            .iter()
            .all(|e| !e.starts_with("TransferTooLarge") && !e.starts_with("TransferTimeout")),
        "the pass was cancelled, not ended by its bounds: {:?}",
        cluster.events_for("wedged")
    );
}
