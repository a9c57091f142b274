//! The operator under RBAC enforcement, as the chart's ServiceAccount with exactly the RBAC
//! objects `helm template` renders (cluster-wide and `watchNamespaces` modes): a verb the
//! chart forgets fails here as it would in a cluster.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::cluster::{Cluster, NS, READER_TOKEN, is_ready, zone_manifest};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};
use zonekeeper::api::zone_sync::SyncPhase;
use zonekeeper::api::{DnsZone, ZoneSync};

const WAIT: Duration = Duration::from_secs(60);

async fn start_server() -> DnsServer {
    let zone = ZoneContent::new("example.com.", vec!["keep TXT \"kept\"".to_string()]);
    tokio::task::spawn_blocking(move || {
        DnsServer::start(ServerKind::Knot, &zone, ServerOptions::default())
    })
    .await
    .unwrap()
}

fn manifest(name: &str, server: &DnsServer, ns: &str) -> Value {
    let mut m = zone_manifest(
        name,
        server,
        json!([{"name": "www", "type": "A", "data": ["192.0.2.10"]}]),
    );
    m["metadata"]["namespace"] = json!(ns);
    m["spec"]["sync"] = json!({"interval": "2s", "minInterval": "0", "successfulHistoryLimit": 1});
    m
}

fn api_status(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Every request the operator made that the server refused for lack of permission.
fn forbidden_operator_requests(cluster: &Cluster) -> Vec<String> {
    cluster
        .api
        .requests()
        .into_iter()
        .filter(|r| r.user.starts_with("system:serviceaccount:") && r.status == 403)
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_drift_check_works_as_the_charts_service_account() {
    let server = start_server().await;
    let cluster = Cluster::start_with_chart_rbac(&[]).await;
    cluster.secret("sched-tsig", &server.key).await;
    let op = cluster
        .operator("zk-0", Some(Duration::from_secs(15)))
        .await;
    cluster.apply_zone(manifest("sched", &server, NS)).await;
    cluster.wait_zone("sched", WAIT, is_ready).await;
    // A change behind zonekeeper's back moves the serial: the drift check notices it.
    server.nsupdate("update add oob.example.com. 300 IN A 192.0.2.99\n");

    // The drift check creates ZoneSyncs as the operator (user id zonekeeper).
    let deadline = Instant::now() + WAIT;
    loop {
        let list = cluster.syncs().list(&Default::default()).await.unwrap();
        let done = list.items.iter().any(|s: &ZoneSync| {
            let st = s.status.as_ref();
            st.and_then(|st| st.phase) == Some(SyncPhase::Complete)
                && st.and_then(|st| st.user_id.as_deref()) == Some("zonekeeper")
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled sync completed; refused: {:?}",
            forbidden_operator_requests(&cluster)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    op.stop().await;
    assert_eq!(forbidden_operator_requests(&cluster), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_user_cannot_create_a_zone() {
    let server = start_server().await;
    let cluster = Cluster::start_with_chart_rbac(&[]).await;
    support::cluster::create_object(
        &cluster.client,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "zone-viewer", "namespace": NS},
            "rules": [{"apiGroups": ["dns.zonekeeper.io"], "resources": ["dnszones", "zonesyncs"],
                       "verbs": ["get", "list", "watch"]}]}),
    )
    .await;
    support::cluster::create_object(
        &cluster.client,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "reader-views-zones", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "zone-viewer"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "reader"}]}),
    )
    .await;
    let reader: Api<DnsZone> =
        Api::namespaced(cluster.api.client_with_token(READER_TOKEN).await, NS);
    assert!(
        reader
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let zone: DnsZone = serde_json::from_value(manifest("ro", &server, NS)).unwrap();
    let err = reader
        .create(&PostParams::default(), &zone)
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (
            403,
            format!(
                "dnszones.dns.zonekeeper.io is forbidden: User \"reader\" cannot create resource \"dnszones\" in API group \"dns.zonekeeper.io\" in the namespace \"{NS}\""
            )
        )
    );
    assert!(cluster.zones().get_opt("ro").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_namespaced_mode_the_operator_works_and_reads_no_secrets_elsewhere() {
    let server = start_server().await;
    let cluster = Cluster::start_with_chart_rbac(&["team-a"]).await;
    cluster.namespace("elsewhere").await;
    // The key the zone names, in the watched namespace.
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "team-a");
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ns-tsig"},
        "stringData": {"name": server.key.name, "algorithm": server.key.algorithm,
                       "secret": server.key.secret_b64},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut elsewhere = secret.clone();
    elsewhere.metadata.name = Some("other".into());
    Api::<Secret>::namespaced(cluster.client.clone(), "elsewhere")
        .create(&PostParams::default(), &elsewhere)
        .await
        .unwrap();

    let op = cluster
        .operator("zk-0", Some(Duration::from_secs(15)))
        .await;
    let zones: Api<DnsZone> = Api::namespaced(cluster.client.clone(), "team-a");
    let m = manifest("ns", &server, "team-a");
    zones
        .patch(
            "ns",
            &kube::api::PatchParams::apply("kubectl").force(),
            &kube::api::Patch::Apply(&m),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if is_ready(&zones.get("ns").await.unwrap()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "zone not Ready; refused: {:?}",
            forbidden_operator_requests(&cluster)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    op.stop().await;
    assert_eq!(forbidden_operator_requests(&cluster), Vec::<String>::new());

    let sa = cluster.operator_client.clone().unwrap();
    let err = Api::<Secret>::namespaced(sa.clone(), "elsewhere")
        .get("other")
        .await
        .unwrap_err();
    assert_eq!(api_status(err).0, 403);
    let err = Api::<Secret>::all(sa)
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(api_status(err).0, 403);
}
