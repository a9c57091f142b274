//! Running zonekeeper for real: leader election between two instances, the metrics and health
//! endpoints, the chart's RBAC rules checked against every request the operator made, the
//! chart's objects accepted by an API server, and `zonekeeper run --help`.
//! helm is installed by tests/run.sh (see the README).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::{Cluster, NS, Operator, http_get, is_ready, zone_manifest};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent, run_with_input};
use zk_apiserver::RequestRecord;
use zonekeeper::api::shared::ChangeType;
use zonekeeper::api::zone_sync::SyncPhase;

const WAIT: Duration = Duration::from_secs(30);
/// What the operator is run as in the RBAC test, as the chart's ServiceAccount would be.
const SERVICE_ACCOUNT: &str = "system:serviceaccount:zonekeeper:zk-zonekeeper";

async fn bind() -> DnsServer {
    tokio::task::spawn_blocking(|| {
        DnsServer::start(
            ServerKind::Bind,
            &ZoneContent::new("example.com.", vec![]),
            ServerOptions::default(),
        )
    })
    .await
    .unwrap()
}

/// A BIND for `example.com.` and a test API server holding its TSIG key as `example-tsig`.
async fn bind_and_cluster() -> (DnsServer, Cluster) {
    let server = bind().await;
    let cluster = Cluster::start().await;
    cluster.secret("example-tsig", &server.key).await;
    (server, cluster)
}

/// An operator with leader election whose requests the API server records as `identity`.
async fn candidate(cluster: &Cluster, identity: &str, lease: Duration) -> Operator {
    cluster
        .operator_with(identity, Some(lease), cluster.client_as(identity))
        .await
}

/// Creates DnsZone `example` (`www A 192.0.2.1`) and waits for it to be Ready.
async fn example_zone_ready(cluster: &Cluster, server: &DnsServer) {
    cluster
        .apply_zone(zone_manifest(
            "example",
            server,
            json!([{"name": "www", "type": "A", "data": ["192.0.2.1"]}]),
        ))
        .await;
    cluster.wait_zone("example", WAIT, is_ready).await;
}

async fn axfr(server: &DnsServer) -> Vec<String> {
    tokio::task::block_in_place(|| server.axfr_lines())
}

async fn metrics(op: &Operator) -> String {
    let (status, body) = http_get(op.metrics_addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the sample whose name-and-labels part is exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().ok())?
    })
}

fn ok_reconciles(text: &str) -> f64 {
    sample(
        text,
        r#"zonekeeper_reconciles_total{kind="DnsZone",result="ok",reason=""}"#,
    )
    .unwrap_or(0.0)
}

fn lease_holder(cluster: &Cluster) -> Option<String> {
    let lease = cluster
        .api
        .object("coordination.k8s.io", "leases", NS, "zonekeeper")?;
    lease["spec"]["holderIdentity"].as_str().map(String::from)
}

fn is_leader(op: &Operator) -> bool {
    *op.leader.borrow()
}

fn history_len(cluster: &Cluster, name: &str) -> usize {
    cluster
        .api
        .object("dns.zonekeeper.io", "dnszones", NS, name)
        .and_then(|z| z["status"]["history"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Polls `f` every 50 ms until it returns `Some`; panics with `what` after `deadline`.
async fn poll<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates ZoneSyncs until one completes: one is refused while the zone's own scheduled sync
/// runs (phase Rejected, "another sync is running"), which is right and not what is tested here.
async fn completed_sync(cluster: &Cluster, zone: &str) {
    let start = Instant::now();
    loop {
        let name = cluster.create_sync(zone, json!({})).await;
        let sync = cluster
            .wait_sync(&name, WAIT, |s| {
                s.status.as_ref().is_some_and(|s| {
                    matches!(s.phase, Some(SyncPhase::Complete | SyncPhase::Rejected))
                })
            })
            .await;
        if sync.status.and_then(|s| s.phase) == Some(SyncPhase::Complete) {
            return;
        }
        assert!(start.elapsed() < WAIT, "no ZoneSync of {zone} completed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn requests_by(cluster: &Cluster, user: &str) -> Vec<RequestRecord> {
    cluster
        .api
        .requests()
        .into_iter()
        .filter(|r| r.user == user)
        .collect()
}

fn is_lease(r: &RequestRecord) -> bool {
    r.path.starts_with("/apis/coordination.k8s.io/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_reconciles_and_the_standby_takes_over_when_it_dies() {
    let (server, cluster) = bind_and_cluster().await;
    // Long enough that a loaded machine's slow renewal (the leader keeps the lead until 2/3
    // of it) does not hand the lead over while the test checks who reconciled.
    let lease = Duration::from_secs(6);
    let a = candidate(&cluster, "zk-a", lease).await;
    let b = candidate(&cluster, "zk-b", lease).await;

    // Exactly one holds the lease, and it is the one that says it leads.
    let holder = poll(WAIT, "a lease holder", || lease_holder(&cluster)).await;
    poll(WAIT, "the holder to lead", || {
        (is_leader(&a) != is_leader(&b)).then_some(())
    })
    .await;
    let (leader, leader_id, standby, standby_id) = if is_leader(&a) {
        (a, "zk-a", b, "zk-b")
    } else {
        (b, "zk-b", a, "zk-a")
    };
    assert_eq!(holder, leader_id);

    example_zone_ready(&cluster, &server).await;

    // Only the leader reconciled; the standby did nothing but take part in the election.
    let text = metrics(&leader).await;
    assert!(ok_reconciles(&text) >= 1.0, "{text}");
    assert_eq!(sample(&text, "zonekeeper_leader"), Some(1.0), "{text}");
    let text = metrics(&standby).await;
    assert!(!text.contains("zonekeeper_reconciles_total{"), "{text}");
    assert_eq!(sample(&text, "zonekeeper_leader"), Some(0.0), "{text}");
    let standby_calls = requests_by(&cluster, standby_id);
    assert!(!standby_calls.is_empty());
    let stray: Vec<_> = standby_calls.iter().filter(|r| !is_lease(r)).collect();
    assert!(stray.is_empty(), "the standby called: {stray:#?}");
    assert!(
        requests_by(&cluster, leader_id)
            .iter()
            .any(|r| r.is_write() && r.path.ends_with("/dnszones/example/status")),
        "the leader wrote the status"
    );
    assert_eq!(history_len(&cluster, "example"), 1);
    let serial = server.soa_serial();

    // Kill the leader as a crash would: the standby takes over once the lease expired (one
    // lease duration, plus up to one retry period of a third of it, plus a margin).
    let killed = Instant::now();
    leader.kill();
    poll(
        lease * 2 + Duration::from_secs(1),
        "the standby to take over",
        || {
            (is_leader(&standby) && lease_holder(&cluster).as_deref() == Some(standby_id))
                .then_some(())
        },
    )
    .await;
    // Not before the lease the dead leader last renewed (at most a renewal period, a third of
    // the lease, before the kill) can have expired: two leaders never overlap. The upper
    // bound is the poll's deadline above: a loaded machine may delay the standby's steps.
    let took = killed.elapsed();
    assert!(
        took >= lease * 2 / 3,
        "takeover after {took:?}, before the lease expired"
    );
    let calls_at_takeover = requests_by(&cluster, leader_id).len();

    // The new leader reconciles the zone, finds it in sync and applies nothing again.
    let start = Instant::now();
    while ok_reconciles(&metrics(&standby).await) < 1.0 {
        assert!(start.elapsed() < WAIT, "the new leader never reconciled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(history_len(&cluster, "example"), 1);
    assert_eq!(server.soa_serial(), serial, "nothing written on takeover");

    // A spec change is applied by the new leader, once.
    cluster
        .patch_spec(
            "example",
            json!({"records": [
                {"name": "www", "type": "A", "data": ["192.0.2.1"]},
                {"name": "new", "type": "A", "data": ["192.0.2.2"]},
            ]}),
        )
        .await;
    let zone = cluster
        .wait_zone("example", WAIT, |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() == 2)
        })
        .await;
    let history = &zone.status.as_ref().unwrap().history;
    assert_eq!(history[0].change_type, ChangeType::Update);
    assert_eq!((history[0].added, history[0].deleted), (1, 0));
    assert_eq!(history[1].change_type, ChangeType::Create);
    let lines = axfr(&server).await;
    let new: Vec<_> = lines.iter().filter(|l| l.starts_with("new.")).collect();
    assert_eq!(new.len(), 1, "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("www.")).count(),
        1,
        "{lines:#?}"
    );
    // Give a duplicate apply a chance to show, then check nothing more was written.
    let text = metrics(&standby).await;
    let updates = sample(&text, "zonekeeper_update_messages_total");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(history_len(&cluster, "example"), 2);
    assert_eq!(
        sample(&metrics(&standby).await, "zonekeeper_update_messages_total"),
        updates
    );
    assert_eq!(
        requests_by(&cluster, leader_id).len(),
        calls_at_takeover,
        "the killed instance is gone"
    );
    standby.stop().await;
}

/// A leader that finds its lease held by another (as after a network partition in which the
/// lease expired and the standby took it) steps down at its next renewal: its controllers stop,
/// `run` ends with `LostLeadership` (the pod restarts as a standby), it does not release a lease
/// that is no longer its own, and the new holder reconciles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lease_steps_down_and_exits() {
    let (server, cluster) = bind_and_cluster().await;
    let lease = Duration::from_secs(3);
    let a = candidate(&cluster, "zk-a", lease).await;
    poll(WAIT, "zk-a to lead", || is_leader(&a).then_some(())).await;
    let b = candidate(&cluster, "zk-b", lease).await;
    example_zone_ready(&cluster, &server).await;
    assert!(!is_leader(&b));

    // The lease now names zk-b, freshly renewed: what zk-a would find after a partition.
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(cluster.client.clone(), NS);
    let mut taken = leases.get("zonekeeper").await.unwrap();
    let spec = taken.spec.as_mut().unwrap();
    spec.holder_identity = Some("zk-b".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    leases
        .replace("zonekeeper", &Default::default(), &taken)
        .await
        .unwrap();

    // zk-a notices at its next renewal (every third of the lease) and ends.
    let ended = tokio::time::timeout(lease, a.task)
        .await
        .expect("zk-a stopped within one lease duration")
        .expect("zk-a did not panic");
    assert!(
        matches!(
            ended,
            Err(zonekeeper::controller::operator::OperatorError::LostLeadership)
        ),
        "{ended:?}"
    );
    assert_eq!(lease_holder(&cluster).as_deref(), Some("zk-b"));
    let released = requests_by(&cluster, "zk-a")
        .iter()
        .filter(|r| is_lease(r) && r.is_write())
        .count();

    // zk-b leads and reconciles a change; zk-a writes nothing more, not even to the lease.
    poll(WAIT, "zk-b to lead", || is_leader(&b).then_some(())).await;
    cluster
        .patch_spec(
            "example",
            json!({"records": [{"name": "www", "type": "A", "data": ["192.0.2.2"]}]}),
        )
        .await;
    poll(WAIT, "zk-b to apply the change", || {
        let lines = tokio::task::block_in_place(|| server.axfr_lines());
        lines.iter().any(|l| l.contains("192.0.2.2")).then_some(())
    })
    .await;
    let after: Vec<_> = requests_by(&cluster, "zk-a")
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    assert_eq!(
        after.iter().filter(|r| is_lease(r)).count(),
        released,
        "zk-a wrote the lease after it ended: {after:#?}"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_releases_the_lease_for_an_immediate_takeover() {
    let cluster = Cluster::start().await;
    // A long lease: waiting for it to expire would take far longer than the takeover may.
    let lease = Duration::from_secs(12);
    let a = cluster.operator("zk-a", Some(lease)).await;
    poll(WAIT, "zk-a to lead", || is_leader(&a).then_some(())).await;
    let b = candidate(&cluster, "zk-b", lease).await;
    // b has asked for the lease at least once, found it held, and stands by: it never wrote it.
    poll(WAIT, "zk-b to ask for the lease", || {
        requests_by(&cluster, "zk-b")
            .iter()
            .any(is_lease)
            .then_some(())
    })
    .await;
    assert!(
        !requests_by(&cluster, "zk-b")
            .iter()
            .any(|r| is_lease(r) && r.is_write()),
        "zk-b wrote a lease held by zk-a"
    );
    assert!(!is_leader(&b));

    let stopped = Instant::now();
    a.stop().await;
    assert_eq!(
        lease_holder(&cluster),
        None,
        "the lease is released on shutdown"
    );
    poll(lease / 2, "zk-b to take over", || {
        (is_leader(&b) && lease_holder(&cluster).as_deref() == Some("zk-b")).then_some(())
    })
    .await;
    assert!(stopped.elapsed() < lease / 2, "{:?}", stopped.elapsed());
    let lease_obj = cluster
        .api
        .object("coordination.k8s.io", "leases", NS, "zonekeeper")
        .unwrap();
    assert_eq!(lease_obj["spec"]["leaseTransitions"], 1, "{lease_obj}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_after_a_reconcile() {
    let (server, cluster) = bind_and_cluster().await;
    // Without leader election: readiness must not depend on the lease.
    let op = cluster.operator("zk-0", None).await;
    cluster
        .apply_zone(zone_manifest(
            "example",
            &server,
            json!([
                {"name": "www", "type": "A", "data": ["192.0.2.1", "192.0.2.2"]},
                {"name": "mail", "type": "MX", "data": ["10 mx.example.com."]},
            ]),
        ))
        .await;
    let zone = cluster.wait_zone("example", WAIT, is_ready).await;
    let records = zone.status.as_ref().unwrap().record_count.unwrap();
    completed_sync(&cluster, "example").await;

    assert_eq!(http_get(op.metrics_addr, "/livez").await.0, 200);
    let start = Instant::now();
    while http_get(op.metrics_addr, "/readyz").await.0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(5), "/readyz not 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sync is counted just after its status is written: poll.
    let sync_ok = r#"zonekeeper_reconciles_total{kind="ZoneSync",result="ok",reason=""}"#;
    let start = Instant::now();
    let text = loop {
        let text = metrics(&op).await;
        if sample(&text, sync_ok).is_some_and(|v| v >= 1.0) {
            break text;
        }
        assert!(
            start.elapsed() < WAIT,
            "no ZoneSync reconcile counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(ok_reconciles(&text) >= 1.0, "{text}");
    assert!(
        sample(
            &text,
            r#"zonekeeper_reconcile_duration_seconds_count{kind="DnsZone"}"#
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "zonekeeper_update_messages_total").is_some_and(|v| v >= 1.0),
        "{text}"
    );
    // Two A and one MX added.
    assert!(
        sample(&text, "zonekeeper_update_rrs_total").is_some_and(|v| v >= 3.0),
        "{text}"
    );
    assert!(
        sample(&text, r#"zonekeeper_transfer_bytes_total{method="AXFR"}"#).is_some_and(|v| v > 0.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"zonekeeper_transfer_duration_seconds_count{method="AXFR"}"#
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"zonekeeper_zone_records{namespace="dns",name="example",zone="example.com."}"#
        ),
        Some(records as f64),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"zonekeeper_drift_rrsets{namespace="dns",name="example",zone="example.com."}"#
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, "zonekeeper_leader"), Some(1.0), "{text}");
    op.stop().await;
}

// ---- RBAC ----------------------------------------------------------------------------------

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/zonekeeper")
}

fn helm_template(args: &[&str]) -> String {
    let chart = chart();
    let out = Command::new("helm")
        .args(["template", "zk", chart.to_str().unwrap()])
        .args(args)
        .output()
        .expect("helm not found: run the suite with `bash tests/run.sh`, which installs it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn documents(rendered: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(rendered)
        .filter_map(|doc| {
            let v: serde_json::Value = serde::Deserialize::deserialize(doc).ok()?;
            v.is_object().then_some(v)
        })
        .collect()
}

/// One permission: (API group, resource or `resource/subresource`, verb).
type Permission = (String, String, String);

fn rule_permissions(role: &serde_json::Value) -> BTreeSet<Permission> {
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for g in strs(&rule["apiGroups"]) {
            for r in strs(&rule["resources"]) {
                for v in strs(&rule["verbs"]) {
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

/// The permission a request needs, or an error for what RBAC rules of this kind cannot grant.
fn needed(r: &RequestRecord) -> Result<Permission, String> {
    let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => return Err(format!("non-resource URL {}", r.path)),
    };
    let rest = match rest {
        ["namespaces", _ns, more @ ..] if !more.is_empty() => more,
        other => other,
    };
    let (resource, name, sub) = match rest {
        [res] => (*res, None, None),
        [res, name] => (*res, Some(*name), None),
        [res, name, sub] => (*res, Some(*name), Some(*sub)),
        _ => return Err(format!("unexpected path {}", r.path)),
    };
    let watch = r
        .query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verb = match (r.method.as_str(), name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if watch => "watch",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        (m, _) => return Err(format!("method {m} on {}", r.path)),
    };
    let resource = match sub {
        Some(s) => format!("{resource}/{s}"),
        None => resource.to_string(),
    };
    Ok((group.to_string(), resource, verb.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_rbac_rules_are_exactly_what_the_operator_uses() {
    let (server, cluster) = bind_and_cluster().await;
    let op = cluster
        .operator_with(
            "zk-0",
            Some(Duration::from_secs(3)),
            cluster.client_as(SERVICE_ACCOUNT),
        )
        .await;
    poll(WAIT, "zk-0 to lead", || is_leader(&op).then_some(())).await;

    // Create, update, sync, rotate the key, delete with record cleanup.
    let mut manifest = zone_manifest(
        "example",
        &server,
        json!([{"name": "www", "type": "A", "data": ["192.0.2.1"]}]),
    );
    manifest["spec"]["deletionPolicy"] = json!("DeleteRecords");
    // The fixture's SOA TTL: both applies then send one RRset and read alike, so the second
    // is a repeated Event (the `patch` rule) rather than a new one.
    manifest["spec"]["ttl"] = json!(3600);
    // Small history limits, so the second completed sync prunes the first.
    manifest["spec"]["sync"]["successfulHistoryLimit"] = json!(1);
    manifest["spec"]["sync"]["failedHistoryLimit"] = json!(1);
    cluster.apply_zone(manifest).await;
    cluster.wait_zone("example", WAIT, is_ready).await;
    cluster
        .patch_spec(
            "example",
            json!({"records": [{"name": "www", "type": "A", "data": ["192.0.2.9"]}]}),
        )
        .await;
    cluster
        .wait_zone("example", WAIT, |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() == 2)
        })
        .await;
    completed_sync(&cluster, "example").await;
    completed_sync(&cluster, "example").await;
    cluster.secret("example-tsig", &server.key).await;
    cluster
        .zones()
        .delete("example", &Default::default())
        .await
        .unwrap();
    poll(WAIT, "the zone to be deleted", || {
        cluster
            .api
            .object("dns.zonekeeper.io", "dnszones", NS, "example")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        !axfr(&server).await.iter().any(|l| l.starts_with("www.")),
        "DeleteRecords removed the records"
    );
    op.stop().await;

    let rendered = documents(&helm_template(&["--namespace", "zonekeeper"]));
    let role = |kind: &str, name: &str| {
        rendered
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} not rendered"))
    };
    let cluster_rules = rule_permissions(role("ClusterRole", "zk-zonekeeper"));
    let lease_rules = rule_permissions(role("Role", "zk-zonekeeper-leader"));

    let mut denied = BTreeSet::new();
    let mut used = BTreeSet::new();
    let calls = requests_by(&cluster, SERVICE_ACCOUNT);
    assert!(calls.len() > 10, "{calls:#?}");
    for r in &calls {
        match needed(r) {
            Ok(p) => {
                let rules = if p.0 == "coordination.k8s.io" {
                    &lease_rules
                } else {
                    &cluster_rules
                };
                if !rules.contains(&p) {
                    denied.insert(format!("{p:?} for {} {}?{}", r.method, r.path, r.query));
                }
                used.insert(p);
            }
            Err(e) => {
                denied.insert(e);
            }
        }
    }
    // Two kinds of rule this scenario cannot see used, both enforced with real RBAC in
    // tests/rbac.rs: `update` on an owner's finalizers is never a request of its own (the
    // server checks it when a write sets blockOwnerDeletion), and only the scheduled drift
    // check creates ZoneSyncs.
    let implied = |p: &(String, String, String)| {
        p.1.ends_with("/finalizers") || (p.1 == "zonesyncs" && p.2 == "create")
    };
    let unused: Vec<_> = cluster_rules
        .iter()
        .chain(&lease_rules)
        .filter(|p| !used.contains(*p) && !implied(p))
        .collect();
    assert!(
        denied.is_empty() && unused.is_empty(),
        "requests the chart does not allow:\n{}\nrules nobody used: {unused:#?}",
        denied.into_iter().collect::<Vec<_>>().join("\n")
    );
}

// ---- chart objects -------------------------------------------------------------------------

fn kubectl_apply_dry_run(kubeconfig: &Path, cache: &Path, manifests: &str) -> (bool, String) {
    let (status, out) = run_with_input(
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .args(["apply", "--dry-run=server", "-f", "-"]),
        manifests,
    );
    (status.success(), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_chart_is_accepted_by_the_api_server() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.api.write_kubeconfig(&kubeconfig).unwrap();
    let cache = dir.path().join("cache");
    // Prometheus Operator's ServiceMonitor kind, as a cluster running it has (its schema is
    // not ours to check; that the object is well formed and points at our Service is).
    let crds: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(cluster.client.clone());
    crds.create(
        &Default::default(),
        &serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
            "spec": {
                "group": "monitoring.coreos.com",
                "scope": "Namespaced",
                "names": {"plural": "servicemonitors", "singular": "servicemonitor",
                          "kind": "ServiceMonitor", "listKind": "ServiceMonitorList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": {
                                  "type": "object",
                                  "x-kubernetes-preserve-unknown-fields": true}}}]
            }
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    for values in [
        &[][..],
        &["--set", "watchNamespaces={dns}"][..],
        &["--set", "metrics.serviceMonitor.enabled=true"][..],
    ] {
        let mut args = vec!["--namespace", NS, "--include-crds"];
        args.extend_from_slice(values);
        let rendered = helm_template(&args);
        let kinds: Vec<String> = documents(&rendered)
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or("").to_string())
            .collect();
        let (ok, out) =
            tokio::task::block_in_place(|| kubectl_apply_dry_run(&kubeconfig, &cache, &rendered));
        assert!(ok, "{values:?}:\n{out}");
        // One line per object, each accepted (nothing stored: it was a dry run).
        let accepted = out
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(accepted, kinds.len(), "{values:?}: {kinds:?}\n{out}");
        assert!(cluster.api.objects("apps", "deployments").is_empty());
        let docs = documents(&rendered);
        let monitor = docs.iter().find(|d| d["kind"] == "ServiceMonitor");
        assert_eq!(
            monitor.is_some(),
            values.len() == 2 && values[1].contains("serviceMonitor")
        );
        if let Some(monitor) = monitor {
            // It must select our metrics Service and name one of its ports, or Prometheus
            // silently scrapes nothing.
            let service = docs
                .iter()
                .find(|d| d["kind"] == "Service")
                .expect("a metrics Service");
            let labels = &service["metadata"]["labels"];
            let selector = monitor["spec"]["selector"]["matchLabels"]
                .as_object()
                .expect("matchLabels");
            assert!(!selector.is_empty());
            for (k, v) in selector {
                assert_eq!(&labels[k], v, "Service label {k}: {service}");
            }
            let ports: Vec<&serde_json::Value> = service["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| &p["name"])
                .collect();
            for endpoint in monitor["spec"]["endpoints"].as_array().unwrap() {
                assert!(
                    ports.contains(&&endpoint["port"]),
                    "{endpoint} not in {ports:?}"
                );
                assert_eq!(endpoint["path"], "/metrics");
            }
        }
    }
}

// ---- command line --------------------------------------------------------------------------

#[test]
fn run_help_lists_every_flag_with_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--namespace", "ZONEKEEPER_NAMESPACES"),
        ("--metrics-addr", "ZONEKEEPER_METRICS_ADDR"),
        ("--concurrency", "ZONEKEEPER_CONCURRENCY"),
        ("--log-format", "ZONEKEEPER_LOG_FORMAT"),
        ("--leader-election", "ZONEKEEPER_LEADER_ELECTION"),
        ("--lease-name", "ZONEKEEPER_LEASE_NAME"),
        ("--lease-namespace", "POD_NAMESPACE"),
        ("--lease-duration", "ZONEKEEPER_LEASE_DURATION"),
        ("--identity", "POD_NAME"),
        ("--cleanup-timeout", "ZONEKEEPER_CLEANUP_TIMEOUT"),
    ] {
        let block: String = help
            .split("\n  -")
            .find(|b| b.contains(flag))
            .unwrap_or_else(|| panic!("{flag} missing:\n{help}"))
            .to_string();
        assert!(
            block.contains(&format!("[env: {env}")),
            "{flag} has no {env} fallback:\n{help}"
        );
    }
}
