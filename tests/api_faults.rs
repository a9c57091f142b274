//! The operator against a Kubernetes API that fails: a 500 or a 429 with `Retry-After` on the
//! status write or on the ownership ConfigMap write, watches dropped, resource versions
//! expired (410 Gone) with a failing relist. Each time the zone still reaches Ready, the change
//! is recorded in history exactly once, and the operator keeps running.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::{Cluster, NS, Operator, empty_bind, is_ready, zone_manifest};
use support::dns_servers::DnsServer;
use zonekeeper::api::DnsZone;
use zonekeeper::api::shared::ChangeStatus;

const WAIT: Duration = Duration::from_secs(120);

/// The fixture's SOA TTL: a zone's first pass is the record alone, no SOA change with it.
fn manifest(name: &str, server: &DnsServer, records: Value) -> Value {
    let mut m = zone_manifest(name, server, records);
    m["spec"]["ttl"] = json!(3600);
    m
}

fn www(ip: &str) -> Value {
    json!([{"name": "www", "type": "A", "data": [ip]}])
}

fn has_www(server: &DnsServer, ip: &str) -> bool {
    server
        .axfr_lines()
        .iter()
        .any(|l| l.starts_with("www.example.com. ") && l.ends_with(ip))
}

/// Ready at the current generation with exactly `n` history entries.
fn ready_with_history(z: &DnsZone, n: usize) -> bool {
    is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() == n)
}

/// How many requests the server answered with `status` on a path starting with `prefix`.
fn answered(cluster: &Cluster, method: &str, prefix: &str, status: u16) -> usize {
    cluster
        .api
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix) && r.status == status)
        .count()
}

fn assert_running(op: &Operator) {
    assert!(!op.task.is_finished(), "the operator stopped");
}

fn status_path(name: &str) -> String {
    format!("/apis/dns.zonekeeper.io/v1alpha1/namespaces/{NS}/dnszones/{name}/status")
}

/// One fault injected on the first matching write of a new zone's first pass; the zone still
/// becomes Ready with one `Complete` history entry, and the record is on the server once.
async fn first_apply_survives(
    name: &str,
    method: &str,
    prefix: &str,
    code: u16,
    retry: Option<u32>,
) {
    let server = empty_bind().await;
    let (cluster, op) = Cluster::with_operator(name, &server).await;
    cluster.api.fail_next_method(method, prefix, 1, code, retry);
    cluster
        .apply_zone(manifest(name, &server, www("192.0.2.1")))
        .await;
    let zone = cluster
        .wait_zone(name, WAIT, |z| ready_with_history(z, 1))
        .await;
    assert_eq!(
        answered(&cluster, method, prefix, code),
        1,
        "the fault was injected once"
    );
    let entry = &zone.status.as_ref().unwrap().history[0];
    assert_eq!((entry.status, entry.added), (ChangeStatus::Complete, 1));
    assert!(tokio::task::block_in_place(|| has_www(
        &server,
        "192.0.2.1"
    )));
    // Another pass (a spec edit) adds one entry, not a replay of the first.
    cluster
        .patch_spec(name, json!({"records": www("192.0.2.2")}))
        .await;
    let zone = cluster
        .wait_zone(name, WAIT, |z| ready_with_history(z, 2))
        .await;
    let history = &zone.status.as_ref().unwrap().history;
    assert_eq!(
        history
            .iter()
            .map(|h| (h.status, h.added, h.updated))
            .collect::<Vec<_>>(),
        [
            (ChangeStatus::Complete, 0, 1),
            (ChangeStatus::Complete, 1, 0)
        ]
    );
    assert_running(&op);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_on_the_status_write_is_retried_and_history_recorded_once() {
    first_apply_survives("st500", "PATCH", &status_path("st500"), 500, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_on_the_status_write_is_retried_and_history_recorded_once() {
    first_apply_survives("st429", "PATCH", &status_path("st429"), 429, Some(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_on_the_ownership_configmap_write_is_retried_and_history_recorded_once() {
    let prefix = format!("/api/v1/namespaces/{NS}/configmaps/cm500-zonekeeper-owned");
    first_apply_survives("cm500", "PATCH", &prefix, 500, None).await;
}

/// Watches dropped while resource versions expire (410 Gone), and the relist that follows
/// fails twice with 500: the operator relists again, sees the edit and applies it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_and_a_failing_relist_still_deliver_the_edit_once() {
    let server = empty_bind().await;
    let (cluster, op) = Cluster::with_operator("gone", &server).await;
    cluster
        .apply_zone(manifest("gone", &server, www("192.0.2.1")))
        .await;
    cluster
        .wait_zone("gone", WAIT, |z| ready_with_history(z, 1))
        .await;

    let list = "/apis/dns.zonekeeper.io/v1alpha1/dnszones";
    cluster.api.fail_next_method("GET", list, 2, 500, None);
    cluster.api.expire_resource_versions();
    cluster.api.drop_watches();
    cluster
        .patch_spec("gone", json!({"records": www("192.0.2.9")}))
        .await;
    let zone = cluster
        .wait_zone("gone", WAIT, |z| ready_with_history(z, 2))
        .await;
    assert!(tokio::task::block_in_place(|| has_www(
        &server,
        "192.0.2.9"
    )));
    assert_eq!(zone.status.as_ref().unwrap().history[0].updated, 1);
    assert_eq!(
        answered(&cluster, "GET", list, 500),
        2,
        "both relists failed"
    );
    assert!(
        cluster
            .api
            .requests()
            .iter()
            .any(|r| r.path.starts_with(list) && r.status == 200 && !r.query.contains("watch")),
        "a relist succeeded afterwards"
    );
    assert_running(&op);
    op.stop().await;
}
