//! One wedged zone stalls nothing else: a pass stuck in a transfer from an endless server
//! is cancelled when its DnsZone is deleted (not waited for until its deadline), and
//! another zone on a good BIND becomes Ready meanwhile.

mod support;

use std::time::{Duration, Instant};

use kube::ResourceExt;
use serde_json::json;
use support::cluster::{Cluster, http_get, is_ready, zone_manifest};
use support::dns_servers::TsigKey;
use support::hostile::{Behaviour, HostileServer};
use zonekeeper::api::zone_sync::SyncPhase;
use zonekeeper::controller::dns_zone::FINALIZER;
use zonekeeper::controller::zone_sync::is_finished;

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

/// A DnsZone of the hostile server's zone, keyed by Secret `wedged-tsig`; bounds far away,
/// so only a cancellation or the server going away ends a transfer within a test's time.
fn hostile_zone(
    name: &str,
    hostile: &HostileServer,
    records: serde_json::Value,
) -> serde_json::Value {
    json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "DnsZone",
        "metadata": {"name": name, "namespace": support::cluster::NS},
        "spec": {
            "zoneName": WEDGED_ZONE,
            "type": "Primary",
            "ttl": 300,
            "backend": {
                "server": hostile.addr.to_string(),
                "tsigKeySecretRef": {"name": "wedged-tsig"},
                "timeout": "10s",
            },
            "records": records,
            "deletionPolicy": "DeleteRecords",
            "transfer": {"deadline": "10m", "maxRecords": 20_000_000},
            "sync": {"interval": "1h", "minInterval": "0"},
        }
    })
}

async fn hostile_cluster(
    behaviour: Behaviour,
) -> (HostileServer, Cluster, support::cluster::Operator) {
    let key = zonekeeper::dns::tsig::TsigKey::new(KEY_NAME, "hmac-sha256", SECRET).unwrap();
    let hostile = HostileServer::start(WEDGED_ZONE, Some(key), behaviour).await;
    let cluster = Cluster::start().await;
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
    let op = cluster.operator("zk-0", None).await;
    (hostile, cluster, op)
}

fn www() -> hickory_proto::rr::Record {
    use hickory_proto::rr::{Name, RData, Record, rdata::A};
    Record::from_rdata(
        Name::from_ascii(format!("www.{WEDGED_ZONE}")).unwrap(),
        300,
        RData::A(A::new(192, 0, 2, 1)),
    )
}

fn www_spec() -> serde_json::Value {
    json!([{"name": "www", "type": "A", "data": ["192.0.2.1"]}])
}

/// Polls until `done` holds; panics naming `what` after `deadline`.
async fn wait_for(what: &str, deadline: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A zone whose records were applied is deleted (DeleteRecords); the cleanup's UPDATE makes
/// the server stream endlessly: the cleanup is stuck re-reading the zone when this returns.
async fn delete_into_a_stuck_cleanup(cluster: &Cluster, hostile: &HostileServer) {
    cluster
        .apply_zone(hostile_zone("stuck", hostile, www_spec()))
        .await;
    cluster.wait_zone("stuck", WAIT, is_ready).await;
    // Passes of a zone matching its spec send no UPDATE: only the cleanup's turns it endless,
    // so a transfer asked for after it is the cleanup's.
    hostile.set(Behaviour::EndlessAfterUpdate(vec![www()]));
    cluster
        .zones()
        .delete("stuck", &Default::default())
        .await
        .unwrap();
    wait_for(
        "the cleanup's transfer after its UPDATE",
        WAIT,
        async || {
            hostile
                .endless_after()
                .is_some_and(|n| hostile.open_transfer_after(n))
        },
    )
    .await;
    let held = cluster.zones().get("stuck").await.unwrap();
    assert!(
        held.metadata.deletion_timestamp.is_some()
            && held.finalizers().iter().any(|f| f == FINALIZER),
        "the finalizer holds the object while its cleanup runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_sync_wedged_past_its_limit_fails_livez_until_it_ends() {
    let (hostile, cluster, op) = hostile_cluster(Behaviour::Normal(vec![www()])).await;
    cluster
        .apply_zone(hostile_zone("wedged", &hostile, www_spec()))
        .await;
    cluster.wait_zone("wedged", WAIT, is_ready).await;
    let (code, body) = http_get(op.metrics_addr, "/livez").await;
    assert_eq!(code, 200, "{body}");

    // The zone's own bounds allow this sync half an hour; a short cap makes "wedged" a
    // matter of seconds.
    op.metrics.watchdog.cap_limits(Some(Duration::from_secs(2)));
    hostile.set(Behaviour::EndlessEmptyMessages);
    let sync = cluster.create_sync("wedged", json!({})).await;
    let mut last = (0, String::new());
    wait_for("/livez failing on the wedged sync", WAIT, async || {
        last = http_get(op.metrics_addr, "/livez").await;
        last.0 == 503
            && last.1.contains(&format!(
                "reconcile of ZoneSync dns/{sync} (zone {WEDGED_ZONE}) running"
            ))
    })
    .await;
    eprintln!("/livez: {}", last.1);
    let running = cluster.syncs().get(&sync).await.unwrap();
    assert!(
        !is_finished(running.status.and_then(|s| s.phase)),
        "the sync is still running"
    );

    // The server goes away mid-stream: the sync ends (truncated) and the loop is live again.
    drop(hostile);
    cluster
        .wait_sync(&sync, WAIT, |s| {
            s.status
                .as_ref()
                .and_then(|st| st.phase)
                .is_some_and(|p| p == SyncPhase::Failed)
        })
        .await;
    wait_for("/livez answering ok again", WAIT, async || {
        http_get(op.metrics_addr, "/livez").await.0 == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_cleanup_ends_when_its_finalizer_is_removed_by_hand() {
    let (hostile, cluster, _op) = hostile_cluster(Behaviour::Normal(vec![www()])).await;
    delete_into_a_stuck_cleanup(&cluster, &hostile).await;

    // What `kubectl patch --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'` does.
    let remove: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/metadata/finalizers"}])).unwrap();
    cluster
        .zones()
        .patch(
            "stuck",
            &Default::default(),
            &kube::api::Patch::Json::<()>(remove),
        )
        .await
        .unwrap();
    wait_for("the released object gone", WAIT, async || {
        cluster.zones().get_opt("stuck").await.unwrap().is_none()
    })
    .await;
    wait_for("the stuck cleanup's connection closed", WAIT, async || {
        hostile.open_transfers() == 0
    })
    .await;

    // The name is free again: a new zone of that name is served at once, not after the old
    // cleanup's deadline (kube-runtime runs one reconcile per name at a time).
    hostile.set(Behaviour::Normal(vec![www()]));
    cluster
        .apply_zone(hostile_zone("stuck", &hostile, www_spec()))
        .await;
    let again = cluster.wait_zone("stuck", WAIT, is_ready).await;
    assert!(again.finalizers().iter().any(|f| f == FINALIZER));
    assert!(
        cluster
            .events_for("stuck")
            .iter()
            .all(|e| !e.starts_with("RecordsDeleted") && !e.starts_with("Cleanup")),
        "the cancelled cleanup claimed nothing: {:?}",
        cluster.events_for("stuck")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_operator_cancels_a_stuck_cleanup_and_the_next_one_finishes_it() {
    let (hostile, cluster, op) = hostile_cluster(Behaviour::Normal(vec![www()])).await;
    delete_into_a_stuck_cleanup(&cluster, &hostile).await;

    let _ = op.shutdown.send(true);
    let stopping = Instant::now();
    // Without cancellation the drain waits for the cleanup's 10-minute transfer deadline.
    let ended = tokio::time::timeout(WAIT, op.task).await;
    assert!(
        ended.is_ok(),
        "the operator did not stop within {WAIT:?} of its shutdown"
    );
    eprintln!(
        "operator stopped {:?} after its shutdown",
        stopping.elapsed()
    );
    wait_for("the stuck cleanup's connection closed", WAIT, async || {
        hostile.open_transfers() == 0
    })
    .await;
    let held = cluster.zones().get("stuck").await.unwrap();
    assert!(
        held.finalizers().iter().any(|f| f == FINALIZER),
        "the records were not deleted, so the finalizer stays for the next operator"
    );

    hostile.set(Behaviour::Normal(vec![www()]));
    let _next = cluster.operator("zk-1", None).await;
    wait_for("the next operator's cleanup", WAIT, async || {
        cluster.zones().get_opt("stuck").await.unwrap().is_none()
    })
    .await;
    let events = cluster.events_for("stuck");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("RecordsDeleted") && e.contains("deleted 1 managed RRset")),
        "{events:?}"
    );
}
