//! What the test API server refuses as a real cluster would: size limits, and (with a token
//! file and RBAC) who may do what. Exercised through the real `kube::Client` and `kubectl`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use zk_apiserver::TestApiServer;
use zonekeeper::api::DnsZone;

async fn server_with_crds() -> (TestApiServer, kube::Client) {
    let server = TestApiServer::start().await;
    server.install_crds(&zonekeeper::api::crd::crds()).await;
    let client = server.client().await;
    (server, client)
}

fn api_status(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn config_map(name: &str, bytes: usize) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("big".to_string(), "x".repeat(bytes))])),
        ..Default::default()
    }
}

#[tokio::test]
async fn config_map_and_secret_payloads_over_one_mib_are_refused() {
    let (server, client) = server_with_crds().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = cms
        .create(&PostParams::default(), &config_map("big", 2_000_000))
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (
            422,
            "ConfigMap \"big\" is invalid: []: Too long: must have at most 1048576 bytes".into()
        )
    );
    assert!(server.object("", "configmaps", "default", "big").is_none());
    // Exactly 1 MiB of data is still fine.
    cms.create(&PostParams::default(), &config_map("edge", 1 << 20))
        .await
        .unwrap();

    let secrets: Api<Secret> = Api::default_namespaced(client);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("big".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "key".to_string(),
            ByteString(vec![7u8; (1 << 20) + 1]),
        )])),
        ..Default::default()
    };
    let err = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (
            422,
            "Secret \"big\" is invalid: data: Too long: must have at most 1048576 bytes".into()
        )
    );
}

#[tokio::test]
async fn request_bodies_over_three_mib_are_refused_with_413() {
    let (server, client) = server_with_crds().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let err = cms
        .create(&PostParams::default(), &config_map("huge", 3_200_000))
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (413, "Request entity too large: limit is 3145728".into())
    );
    assert!(server.object("", "configmaps", "default", "huge").is_none());
}

#[tokio::test]
async fn a_status_write_that_makes_an_object_exceed_etcds_limit_is_refused() {
    let (server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::default_namespaced(client);
    let zone: DnsZone = serde_json::from_value(json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": "a"},
        "spec": {"zoneName": "a.example.", "type": "Primary", "backend": {"server": "127.0.0.1:53"}},
    }))
    .unwrap();
    zones.create(&PostParams::default(), &zone).await.unwrap();
    let condition = |bytes: usize| {
        json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Big",
            "message": "m".repeat(bytes), "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    };
    // 1.4 MB fits: etcd's limit is 1.5 MiB for the whole object.
    zones
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(condition(1_400_000)),
        )
        .await
        .unwrap();
    let before = server
        .object("dns.zonekeeper.io", "dnszones", "default", "a")
        .unwrap();
    let err = zones
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(condition(1_700_000)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (500, "etcdserver: request is too large".into())
    );
    let after = server
        .object("dns.zonekeeper.io", "dnszones", "default", "a")
        .unwrap();
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
}
