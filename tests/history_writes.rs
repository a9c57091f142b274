//! A status write that adds history is conditional on the object's resourceVersion and is
//! retried on a conflict: the entry lands exactly once.

mod support;

use std::time::Duration;

use serde_json::json;
use support::cluster::{Cluster, NS, is_ready, zone_manifest};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_on_the_history_write_still_records_the_change_once() {
    let bind = support::cluster::empty_bind().await;
    let (cluster, _op) = Cluster::with_operator("hist", &bind).await;
    let www = |ip: &str| json!([{"name": "www", "type": "A", "data": [ip]}]);
    cluster
        .apply_zone(zone_manifest("hist", &bind, www("192.0.2.1")))
        .await;
    let zone = cluster.wait_zone("hist", WAIT, is_ready).await;
    let before = zone.status.unwrap().history;
    assert_eq!(before.len(), 1, "the first apply: {before:?}");

    let status_path =
        format!("/apis/dns.zonekeeper.io/v1alpha1/namespaces/{NS}/dnszones/hist/status");
    cluster.api.fail_next(&status_path, 1, 409, None);
    cluster
        .patch_spec("hist", json!({"records": www("192.0.2.2")}))
        .await;
    let zone = cluster
        .wait_zone("hist", WAIT, |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() > 1)
        })
        .await;
    assert!(
        cluster
            .api
            .requests()
            .iter()
            .any(|r| r.path == status_path && r.status == 409),
        "the conflict was served"
    );
    let history = zone.status.unwrap().history;
    assert_eq!(
        history.len(),
        2,
        "one entry for the change, not two: {history:#?}"
    );
    assert_eq!(history[1].id, before[0].id, "the first entry kept");
    assert!(
        history[0].sample.iter().any(|l| l.contains("192.0.2.2")),
        "the new entry is the change: {:#?}",
        history[0]
    );
}
