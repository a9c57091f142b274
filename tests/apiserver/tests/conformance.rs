//! Conformance of the test API server, exercised through the real `kube::Client`,
//! kube-runtime's `watcher`/reflector/`Controller` and the real `kubectl`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use zk_apiserver::TestApiServer;
use zonekeeper::api::DnsZone;

const GROUP: &str = "dns.zonekeeper.io";

async fn server_with_crds() -> (TestApiServer, kube::Client) {
    let server = TestApiServer::start().await;
    server.install_crds(&zonekeeper::api::crd::crds()).await;
    let client = server.client().await;
    (server, client)
}

fn zone(name: &str) -> DnsZone {
    serde_json::from_value(json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "DnsZone",
        "metadata": {"name": name},
        "spec": {"zoneName": format!("{name}.example."), "type": "Primary",
                 "backend": {"server": "127.0.0.1:53"}},
    }))
    .unwrap()
}

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

/// Polls `check` until it holds or 15 s pass.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn api_code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_uid_timestamps_generate_name() {
    let (_server, client) = server_with_crds().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = cms
        .create(&PostParams::default(), &config_map("one", &[]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1: u64 = created.resource_version().unwrap().parse().unwrap();

    let again = cms
        .create(&PostParams::default(), &config_map("one", &[]))
        .await;
    assert_eq!(api_code(&again.unwrap_err()), 409);

    let mut got = cms.get("one").await.unwrap();
    assert_eq!(got.data.as_ref().unwrap()["k"], "v");
    got.data = Some(BTreeMap::from([("k".to_string(), "w".to_string())]));
    let replaced = cms
        .replace("one", &PostParams::default(), &got)
        .await
        .unwrap();
    let rv2: u64 = replaced.resource_version().unwrap().parse().unwrap();
    assert!(rv2 > rv1);
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    let mut generated = config_map("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(g.name_any().starts_with("gen-") && g.name_any().len() == 9);

    let names: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(names.len(), 2);
    cms.delete("one", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_code(&cms.get("one").await.unwrap_err()), 404);

    // A namespace that does not exist refuses content.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let e = elsewhere
        .create(&PostParams::default(), &config_map("x", &[]))
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), 404);

    // Custom resources are served once their CRD is installed; dry-run stores nothing.
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    zones.create(&dry, &zone("dry")).await.unwrap();
    assert_eq!(api_code(&zones.get("dry").await.unwrap_err()), 404);
    let z = zones
        .create(&PostParams::default(), &zone("a"))
        .await
        .unwrap();
    // Defaults from the schema are applied at admission.
    assert_eq!(z.spec.ttl, 3600);
}

#[tokio::test]
async fn optimistic_concurrency_conflict() {
    let (_server, client) = server_with_crds().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = cms
        .create(&PostParams::default(), &config_map("c", &[]))
        .await
        .unwrap();
    let mut a = first.clone();
    a.data = Some(BTreeMap::from([("k".to_string(), "a".to_string())]));
    cms.replace("c", &PostParams::default(), &a).await.unwrap();
    let mut stale = first.clone();
    stale.data = Some(BTreeMap::from([("k".to_string(), "b".to_string())]));
    let e = cms
        .replace("c", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), 409);
    let kube::Error::Api(s) = e else {
        unreachable!()
    };
    assert_eq!(s.reason, "Conflict");
    assert!(
        s.message.contains("the object has been modified"),
        "{}",
        s.message
    );

    // A merge patch carrying a stale resourceVersion conflicts too.
    let p = json!({"metadata": {"resourceVersion": first.resource_version()}, "data": {"k": "z"}});
    let e = cms
        .patch("c", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), 409);

    // Custom resources refuse an unconditional update.
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    let mut z = zones
        .create(&PostParams::default(), &zone("z"))
        .await
        .unwrap();
    z.metadata.resource_version = None;
    let e = zones
        .replace("z", &PostParams::default(), &z)
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), 422);
}

#[tokio::test]
async fn generation_only_moves_with_spec() {
    let (_server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    let z = zones
        .create(&PostParams::default(), &zone("g"))
        .await
        .unwrap();
    assert_eq!(z.metadata.generation, Some(1));
    let pp = PatchParams::default();
    let z = zones
        .patch(
            "g",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(z.metadata.generation, Some(1));
    let z = zones
        .patch_status(
            "g",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Active"}})),
        )
        .await
        .unwrap();
    assert_eq!(z.metadata.generation, Some(1));
    let rv_before = z.resource_version();
    let z = zones
        .patch("g", &pp, &Patch::Merge(json!({"spec": {"ttl": 60}})))
        .await
        .unwrap();
    assert_eq!(z.metadata.generation, Some(2));
    assert_ne!(z.resource_version(), rv_before);
    // A patch that changes nothing is no write: same resourceVersion, same generation.
    let same = zones
        .patch("g", &pp, &Patch::Merge(json!({"spec": {"ttl": 60}})))
        .await
        .unwrap();
    assert_eq!(same.resource_version(), z.resource_version());
    assert_eq!(same.metadata.generation, Some(2));
}

#[tokio::test]
async fn status_subresource_is_isolated_both_ways() {
    let (server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    let mut with_status = zone("s");
    with_status.status = Some(serde_json::from_value(json!({"phase": "Active"})).unwrap());
    let z = zones
        .create(&PostParams::default(), &with_status)
        .await
        .unwrap();
    assert!(z.status.is_none(), "status is dropped on create");
    let pp = PatchParams::default();
    let z = zones
        .patch(
            "s",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Active"}})),
        )
        .await
        .unwrap();
    assert!(z.status.is_none(), "main resource ignores status");
    let z = zones
        .patch_status(
            "s",
            &pp,
            &Patch::Merge(json!({"spec": {"ttl": 7}, "status": {"phase": "Active"}})),
        )
        .await
        .unwrap();
    assert_eq!(z.spec.ttl, 3600, "status subresource ignores spec");
    let stored = server.object(GROUP, "dnszones", "default", "s").unwrap();
    assert_eq!(stored["status"]["phase"], "Active");
    assert_eq!(stored["spec"]["ttl"], 3600);
}

#[tokio::test]
async fn server_side_apply_with_two_managers() {
    let (_server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    let intent = json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": "ssa", "labels": {"owner": "alice"}},
        "spec": {"zoneName": "ssa.example.", "type": "Primary",
                 "backend": {"server": "127.0.0.1:53"}, "ttl": 60},
    });
    let z = zones
        .patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&intent))
        .await
        .unwrap();
    assert_eq!(z.spec.ttl, 60, "apply creates a missing object");

    let bob = json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": "ssa"}, "spec": {"ttl": 120},
    });
    let e = zones
        .patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(&bob))
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), 409);
    let kube::Error::Api(s) = e else {
        unreachable!()
    };
    assert!(
        s.message.contains("conflict with \"alice\"") && s.message.contains(".spec.ttl"),
        "{}",
        s.message
    );

    let z = zones
        .patch(
            "ssa",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&bob),
        )
        .await
        .unwrap();
    assert_eq!(z.spec.ttl, 120);
    let managers: Vec<String> = z
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"alice".to_string()) && managers.contains(&"bob".to_string()));

    // Alice drops her label from her intent: the field she alone owned goes away.
    let mut alice2 = intent.clone();
    alice2["metadata"]["labels"] = json!({});
    alice2["spec"].as_object_mut().unwrap().remove("ttl");
    let z = zones
        .patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&alice2))
        .await
        .unwrap();
    assert!(z.labels().get("owner").is_none());
    assert_eq!(z.spec.ttl, 120, "bob's field stays");

    // Status through apply on the subresource.
    let status = json!({"apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
                        "status": {"phase": "Active"}});
    let z = zones
        .patch_status(
            "ssa",
            &PatchParams::apply("operator").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(z.status.unwrap()).unwrap()["phase"],
        "Active"
    );
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let (_server, client) = server_with_crds().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &config_map("p", &[("a", "1")]))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let c = cms
        .patch(
            "p",
            &pp,
            &Patch::Merge(json!({"data": {"k": null, "n": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        c.data.unwrap(),
        BTreeMap::from([("n".to_string(), "1".to_string())])
    );
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/data/m", "value": "2"},
        {"op": "remove", "path": "/metadata/labels/a"}
    ]))
    .unwrap();
    let c = cms.patch("p", &pp, &Patch::<()>::Json(jp)).await.unwrap();
    assert_eq!(c.data.as_ref().unwrap()["m"], "2");
    assert!(c.labels().is_empty());
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/m", "value": "9"}])).unwrap();
    assert_eq!(
        api_code(
            &cms.patch("p", &pp, &Patch::<()>::Json(failing))
                .await
                .unwrap_err()
        ),
        422
    );
    let c = cms
        .patch("p", &pp, &Patch::Strategic(json!({"data": {"s": "3"}})))
        .await
        .unwrap();
    assert_eq!(c.data.unwrap().len(), 3);
}

#[tokio::test]
async fn finalizers_and_garbage_collection() {
    let (server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client.clone(), "default");
    let mut z = zone("fin");
    z.metadata.finalizers = Some(vec!["zonekeeper.io/cleanup".into()]);
    let z = zones.create(&PostParams::default(), &z).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut child = config_map("child", &[]);
    child.metadata.owner_references = Some(vec![OwnerReference {
        api_version: DnsZone::api_version(&()).into(),
        kind: DnsZone::kind(&()).into(),
        name: "fin".into(),
        uid: z.uid().unwrap(),
        ..Default::default()
    }]);
    cms.create(&PostParams::default(), &child).await.unwrap();

    zones.delete("fin", &DeleteParams::default()).await.unwrap();
    let pending = zones.get("fin").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(pending.metadata.generation, Some(2));
    assert!(cms.get("child").await.is_ok(), "the owner still exists");
    let e = zones
        .patch(
            "fin",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["zonekeeper.io/cleanup", "x/y"]}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), 422, "no new finalizers while deleting");

    zones
        .patch(
            "fin",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(api_code(&zones.get("fin").await.unwrap_err()), 404);
    eventually("child collected", async || {
        server
            .object("", "configmaps", "default", "child")
            .is_none()
    })
    .await;

    // Foreground: the owner stays, marked, until its dependents are gone.
    let owner = cms
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await
        .unwrap();
    let mut dep = config_map("dep", &[]);
    dep.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: owner.uid().unwrap(),
        ..Default::default()
    }]);
    dep.metadata.finalizers = Some(vec!["x/hold".into()]);
    cms.create(&PostParams::default(), &dep).await.unwrap();
    cms.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    let waiting = cms.get("owner").await.unwrap();
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert_eq!(waiting.finalizers(), ["foregroundDeletion"]);
    assert!(
        cms.get("dep")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    cms.patch(
        "dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("owner released", async || {
        cms.get_opt("owner").await.unwrap().is_none()
    })
    .await;

    // Deleting a namespace deletes what is in it.
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "tmp"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, "tmp");
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    nss.delete("tmp", &DeleteParams::default()).await.unwrap();
    eventually("namespace gone", async || {
        nss.get_opt("tmp").await.unwrap().is_none()
    })
    .await;
    assert!(server.object("", "secrets", "tmp", "s").is_none());
}

#[tokio::test]
async fn label_and_field_selectors_and_pages() {
    let (_server, client) = server_with_crds().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, tier) in [
        ("a", "web"),
        ("b", "db"),
        ("c", "web"),
        ("d", "cache"),
        ("e", ""),
    ] {
        let labels: Vec<(&str, &str)> = if tier.is_empty() {
            vec![]
        } else {
            vec![("tier", tier)]
        };
        cms.create(&PostParams::default(), &config_map(name, &labels))
            .await
            .unwrap();
    }
    let names = async |lp: ListParams| -> Vec<String> {
        cms.list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|c| c.name_any())
            .collect()
    };
    assert_eq!(
        names(ListParams::default().labels("tier=web")).await,
        ["a", "c"]
    );
    assert_eq!(
        names(ListParams::default().labels("tier!=web")).await,
        ["b", "d", "e"]
    );
    assert_eq!(
        names(ListParams::default().labels("tier in (db,cache)")).await,
        ["b", "d"]
    );
    assert_eq!(names(ListParams::default().labels("!tier")).await, ["e"]);
    assert_eq!(
        names(ListParams::default().labels("tier,tier notin (web)")).await,
        ["b", "d"]
    );
    assert_eq!(
        names(ListParams::default().fields("metadata.name=c")).await,
        ["c"]
    );
    assert_eq!(
        names(ListParams::default().fields("metadata.namespace=default,metadata.name!=a")).await,
        ["b", "c", "d", "e"]
    );
    let all: Api<ConfigMap> = Api::all(client);
    assert_eq!(
        all.list(&ListParams::default().fields("metadata.namespace=kube-system"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );

    // Pages: limit and continue.
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().unwrap();
    let second = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let third = cms
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    let paged: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .chain(&third.items)
        .map(|c| c.name_any())
        .collect();
    assert_eq!(paged, ["a", "b", "c", "d", "e"]);
    assert!(
        third
            .metadata
            .continue_
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn watch_streams_events_and_bookmarks() {
    let (_server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    let list = zones.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = zones
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    zones
        .create(&PostParams::default(), &zone("w"))
        .await
        .unwrap();
    zones
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": 5}})),
        )
        .await
        .unwrap();
    zones.delete("w", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    let mut bookmark_rv = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while bookmark_rv.is_none() || seen.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "saw {seen:?}, bookmark {bookmark_rv:?}"
        );
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(z)))) => seen.push(format!("ADDED {}", z.name_any())),
            Ok(Ok(Some(WatchEvent::Modified(z)))) => seen.push(format!("MODIFIED {}", z.spec.ttl)),
            Ok(Ok(Some(WatchEvent::Deleted(z)))) => seen.push(format!("DELETED {}", z.name_any())),
            Ok(Ok(Some(WatchEvent::Bookmark(b)))) => {
                bookmark_rv = Some(b.metadata.resource_version)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED w", "MODIFIED 5", "DELETED w"]);
    let b: u64 = bookmark_rv.unwrap().parse().unwrap();
    assert!(b > rv.parse::<u64>().unwrap());
}

#[tokio::test]
async fn forced_410_makes_the_watcher_relist_and_the_store_matches() {
    let (server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    for i in 0..5 {
        zones
            .create(&PostParams::default(), &zone(&format!("z{i}")))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store::<DnsZone>();
    let stream = watcher(zones.clone(), watcher::Config::default().timeout(30))
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.unwrap();
    let matches = || {
        let mut ours: Vec<(String, String)> = reader
            .state()
            .iter()
            .map(|z| (z.name_any(), z.resource_version().unwrap()))
            .collect();
        ours.sort();
        let mut theirs: Vec<(String, String)> = server
            .objects(GROUP, "dnszones")
            .iter()
            .map(|o| {
                (
                    o["metadata"]["name"].as_str().unwrap().to_string(),
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        theirs.sort();
        ours == theirs
    };
    eventually("initial store", async || matches()).await;

    // Writes the watch cannot replay: history is compacted and the watch is dropped.
    server.reset_requests();
    zones.delete("z1", &DeleteParams::default()).await.unwrap();
    zones
        .create(&PostParams::default(), &zone("z9"))
        .await
        .unwrap();
    server.expire_resource_versions();
    server.drop_watches();
    zones
        .patch(
            "z2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": 9}})),
        )
        .await
        .unwrap();
    eventually("store matches after relist", async || matches()).await;
    let relisted = server
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path.ends_with("/dnszones") && !r.query.contains("watch="));
    assert!(
        relisted,
        "the watcher relisted after 410: {:?}",
        server.requests()
    );
    task.abort();
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::runtime::finalizer::Error<kube::Error>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reconciles_create_update_delete_and_after_dropped_watches() {
    let (server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client.clone(), "default");
    let log: Arc<Mutex<Vec<String>>> = Arc::default();

    struct Ctx {
        api: Api<DnsZone>,
        log: Arc<Mutex<Vec<String>>>,
    }
    let ctx = Arc::new(Ctx {
        api: zones.clone(),
        log: log.clone(),
    });
    async fn reconcile(z: Arc<DnsZone>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
        let log = ctx.log.clone();
        Ok(
            kube::runtime::finalizer(&ctx.api, "zonekeeper.io/test", z, async |event| {
                match event {
                    kube::runtime::finalizer::Event::Apply(z) => log.lock().unwrap().push(format!(
                        "apply {} gen {}",
                        z.name_any(),
                        z.metadata.generation.unwrap_or(0)
                    )),
                    kube::runtime::finalizer::Event::Cleanup(z) => log
                        .lock()
                        .unwrap()
                        .push(format!("cleanup {}", z.name_any())),
                }
                Ok::<_, kube::Error>(Action::await_change())
            })
            .await?,
        )
    }
    fn error_policy(_: Arc<DnsZone>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
        Action::requeue(Duration::from_millis(200))
    }
    let controller = Controller::new(zones.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    let task = tokio::spawn(controller);
    let seen = |entry: &'static str| {
        let log = log.clone();
        async move || log.lock().unwrap().iter().any(|l| l == entry)
    };

    zones
        .create(&PostParams::default(), &zone("ctl"))
        .await
        .unwrap();
    eventually("reconcile on create", seen("apply ctl gen 1")).await;
    zones
        .patch(
            "ctl",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": 30}})),
        )
        .await
        .unwrap();
    eventually("reconcile on update", seen("apply ctl gen 2")).await;

    server.drop_watches();
    zones
        .patch(
            "ctl",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": 31}})),
        )
        .await
        .unwrap();
    eventually("reconcile after dropped watches", seen("apply ctl gen 3")).await;

    zones.delete("ctl", &DeleteParams::default()).await.unwrap();
    eventually("cleanup on delete", seen("cleanup ctl")).await;
    eventually("finalizer released", async || {
        server.object(GROUP, "dnszones", "default", "ctl").is_none()
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn schema_admission_refuses_with_field_paths() {
    let (_server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    let mut bad = zone("bad");
    bad.spec.ttl = 0;
    let e = zones
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    let kube::Error::Api(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    assert!(
        s.message
            .starts_with("DnsZone.dns.zonekeeper.io \"bad\" is invalid: spec.ttl"),
        "{}",
        s.message
    );
    let causes = s.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.ttl");

    // Transition rules: zoneName is immutable.
    zones
        .create(&PostParams::default(), &zone("imm"))
        .await
        .unwrap();
    let e = zones
        .patch(
            "imm",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"zoneName": "other.example."}})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .ends_with("spec.zoneName: Invalid value: \"string\": zoneName is immutable"),
        "{}",
        s.message
    );
    // Names are RFC 1123 subdomains.
    let e = zones
        .create(&PostParams::default(), &zone("Upper"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), 422);
    let kube::Error::Api(s) = e else {
        unreachable!()
    };
    assert!(
        s.message
            .contains("metadata.name: Invalid value: \"Upper\""),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn fault_injection() {
    let (server, client) = server_with_crds().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    server.fail_next("/api/v1/namespaces/default/configmaps", 2, 500, None);
    assert_eq!(
        api_code(&cms.list(&ListParams::default()).await.unwrap_err()),
        500
    );
    assert_eq!(api_code(&cms.get("x").await.unwrap_err()), 500);
    assert_eq!(api_code(&cms.get("x").await.unwrap_err()), 404);
    // kube's client retries a 429 after its Retry-After.
    server.fail_next("/api/v1/namespaces/default/configmaps", 1, 429, Some(1));
    let started = Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 404, 429, 200]);
    let writes = server.requests().iter().filter(|r| r.is_write()).count();
    assert_eq!(writes, 0);
}

fn kubectl(
    kubeconfig: &std::path::Path,
    cache: &std::path::Path,
    args: &[&str],
) -> (bool, String, String) {
    let out = std::process::Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_patch_delete() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let cache = dir.path().join("cache");
    server.write_kubeconfig(&kc).unwrap();
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crds");
    let run = |args: Vec<String>| {
        let kc = kc.clone();
        let cache = cache.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kubectl(&kc, &cache, &args)
        })
    };
    let (ok, out, err) = run(vec!["apply".into(), "-f".into(), crds.into()])
        .await
        .unwrap();
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/dnszones.dns.zonekeeper.io created"
        ),
        "{out}"
    );

    let manifest = dir.path().join("zone.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\nmetadata:\n  name: example\nspec:\n  zoneName: example.com.\n  type: Primary\n  backend:\n    server: 127.0.0.1:53\n",
    )
    .unwrap();
    let m = manifest.to_str().unwrap().to_string();
    let (ok, out, err) = run(vec!["apply".into(), "-f".into(), m.clone()])
        .await
        .unwrap();
    assert!(
        ok && out.contains("dnszone.dns.zonekeeper.io/example created"),
        "{out}{err}"
    );
    let (ok, out, err) = run(vec!["apply".into(), "-f".into(), m.clone()])
        .await
        .unwrap();
    assert!(ok && out.contains("unchanged"), "{out}{err}");

    std::fs::write(
        &manifest,
        "apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\nmetadata:\n  name: example\nspec:\n  zoneName: example.com.\n  type: Primary\n  ttl: 300\n  backend:\n    server: 127.0.0.1:53\n",
    )
    .unwrap();
    let (ok, out, err) = run(vec!["apply".into(), "-f".into(), m.clone()])
        .await
        .unwrap();
    assert!(ok && out.contains("configured"), "{out}{err}");
    let (ok, out, err) = run(vec!["get".into(), "dnszones".into()]).await.unwrap();
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "ZONE", "TYPE", "PHASE", "SERIAL", "RECORDS", "READY", "AGE"
        ]
    );
    assert!(out.lines().nth(1).unwrap().starts_with("example "), "{out}");
    assert!(out.contains("example.com."), "{out}");

    let (ok, out, err) = run(vec![
        "get".into(),
        "dz".into(),
        "example".into(),
        "-o".into(),
        "yaml".into(),
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    let y: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(y["spec"]["ttl"].as_u64(), Some(300));
    assert_eq!(y["metadata"]["generation"].as_u64(), Some(2));

    let (ok, out, err) = run(vec![
        "patch".into(),
        "dnszone".into(),
        "example".into(),
        "--type=merge".into(),
        "-p".into(),
        r#"{"spec":{"ttl":60}}"#.into(),
    ])
    .await
    .unwrap();
    assert!(ok && out.contains("patched"), "{out}{err}");
    let z = server
        .object(GROUP, "dnszones", "default", "example")
        .unwrap();
    assert_eq!(z["spec"]["ttl"], 60);
    assert_eq!(z["metadata"]["generation"], 3);

    let long = "x".repeat(256);
    std::fs::write(
        &manifest,
        format!("apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\nmetadata:\n  name: bad\nspec:\n  zoneName: bad.com.\n  type: Primary\n  description: {long}\n  ttl: 0\n  backend:\n    server: 127.0.0.1:53\n"),
    )
    .unwrap();
    let (ok, out, err) = run(vec!["apply".into(), "-f".into(), m.clone()])
        .await
        .unwrap();
    assert!(!ok, "{out}");
    assert!(err.contains("The DnsZone \"bad\" is invalid"), "{err}");
    assert!(
        err.contains("spec.description: Too long: may not be more than 255 bytes"),
        "{err}"
    );
    assert!(err.contains("spec.ttl: Invalid value: 0"), "{err}");
    assert!(server.object(GROUP, "dnszones", "default", "bad").is_none());

    let (ok, out, err) = run(vec!["delete".into(), "dnszone".into(), "example".into()])
        .await
        .unwrap();
    assert!(ok && out.contains("deleted"), "{out}{err}");
    let (ok, out, err) = run(vec!["get".into(), "dnszones".into()]).await.unwrap();
    assert!(ok, "{err}");
    assert!(
        out.is_empty() && err.contains("No resources found"),
        "{out}{err}"
    );

    // Core kinds too: kubectl sends a strategic merge patch for them.
    let cm = dir.path().join("cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: \"1\"\n",
    )
    .unwrap();
    let (ok, out, err) = run(vec![
        "apply".into(),
        "-f".into(),
        cm.to_str().unwrap().into(),
    ])
    .await
    .unwrap();
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(vec![
        "patch".into(),
        "configmap".into(),
        "cm".into(),
        "-p".into(),
        r#"{"data":{"b":"2"}}"#.into(),
    ])
    .await
    .unwrap();
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(vec![
        "get".into(),
        "cm".into(),
        "cm".into(),
        "-o".into(),
        "jsonpath={.data.b}".into(),
    ])
    .await
    .unwrap();
    assert!(ok && out == "2", "{out}{err}");

    // Removing the CRDs withdraws the kind and its objects.
    run(vec!["apply".into(), "-f".into(), m.clone()])
        .await
        .unwrap();
    let (ok, out, err) = run(vec!["delete".into(), "-f".into(), crds.into()])
        .await
        .unwrap();
    assert!(ok, "{out}{err}");
    assert!(server.objects(GROUP, "dnszones").is_empty());
    let (ok, _, err) = run(vec!["get".into(), "dnszones".into()]).await.unwrap();
    assert!(!ok && err.contains("dnszones"), "{err}");
}

#[tokio::test]
async fn events_recorder_and_lease() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let (server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client.clone(), "default");
    let z = zones
        .create(&PostParams::default(), &zone("ev"))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "zonekeeper".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "Synced".into(),
        note: Some("zone in sync".into()),
        action: "Sync".into(),
        secondary: None,
    };
    recorder.publish(&ev, &z.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &z.object_ref(&())).await.unwrap();
    let events: Api<K8sEvent> = Api::namespaced(client.clone(), "default");
    let listed = events.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 1, "the second publish is a series patch");
    assert_eq!(listed[0].reason.as_deref(), Some("Synced"));
    assert_eq!(listed[0].series.as_ref().map(|s| s.count), Some(2));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.contains("/apis/events.k8s.io/v1/"))
    );

    // One store for both Event kinds, as in a cluster: `kubectl describe` reads core/v1.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let core_events = core
        .list(&ListParams::default().fields("involvedObject.name=ev,involvedObject.kind=DnsZone"))
        .await
        .unwrap()
        .items;
    assert_eq!(core_events.len(), 1);
    assert_eq!(core_events[0].message.as_deref(), Some("zone in sync"));

    // Leader election: create, then renew with a resourceVersion-checked replace.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "zonekeeper"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }))
    .unwrap();
    let held = leases.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(
        api_code(
            &leases
                .create(&PostParams::default(), &lease)
                .await
                .unwrap_err()
        ),
        409
    );
    let mut renew = held.clone();
    renew.spec.as_mut().unwrap().lease_transitions = Some(1);
    leases
        .replace("zonekeeper", &PostParams::default(), &renew)
        .await
        .unwrap();
    let mut usurp = held;
    usurp.spec.as_mut().unwrap().holder_identity = Some("b".into());
    assert_eq!(
        api_code(
            &leases
                .replace("zonekeeper", &PostParams::default(), &usurp)
                .await
                .unwrap_err()
        ),
        409
    );
}

#[tokio::test]
async fn kube_discovery_and_streaming_list_watcher() {
    let (_server, client) = server_with_crds().await;
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            GROUP, "v1alpha1", "DnsZone",
        ))
        .unwrap();
    assert_eq!(ar.plural, "dnszones");
    let subs: Vec<String> = caps
        .subresources
        .iter()
        .map(|(s, _)| s.plural.clone())
        .collect();
    assert!(subs.iter().any(|s| s.ends_with("status")), "{subs:?}");
    assert!(discovery.has_group("coordination.k8s.io") && discovery.has_group("events.k8s.io"));

    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    zones
        .create(&PostParams::default(), &zone("one"))
        .await
        .unwrap();
    let (reader, writer) = reflector::store::<DnsZone>();
    let stream = watcher(zones.clone(), watcher::Config::default().streaming_lists())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.unwrap();
    assert_eq!(reader.state().len(), 1);
    zones
        .create(&PostParams::default(), &zone("two"))
        .await
        .unwrap();
    eventually("second zone in store", async || reader.state().len() == 2).await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_imperative_commands_in_protobuf() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let cache = dir.path().join("cache");
    server.write_kubeconfig(&kc).unwrap();
    let run = |args: &'static [&'static str]| {
        let (kc, cache) = (kc.clone(), cache.clone());
        tokio::task::spawn_blocking(move || kubectl(&kc, &cache, args))
    };
    let (ok, out, err) = run(&["create", "namespace", "dns"]).await.unwrap();
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(&[
        "-n",
        "dns",
        "create",
        "secret",
        "generic",
        "tsig",
        "--from-literal=secret=abc",
    ])
    .await
    .unwrap();
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(&[
        "-n",
        "dns",
        "create",
        "configmap",
        "zone",
        "--from-literal=a=1",
    ])
    .await
    .unwrap();
    assert!(ok, "{out}{err}");
    let secret = server.object("", "secrets", "dns", "tsig").unwrap();
    assert_eq!(secret["data"]["secret"], "YWJj");
    assert_eq!(secret["type"], "Opaque");
    let cm = server.object("", "configmaps", "dns", "zone").unwrap();
    assert_eq!(cm["data"]["a"], "1");
    assert!(cm["metadata"].get("generateName").is_none());
    let (ok, out, err) = run(&["delete", "namespace", "dns"]).await.unwrap();
    assert!(ok, "{out}{err}");
    assert!(server.object("", "namespaces", "", "dns").is_none());
    assert!(server.objects("", "secrets").is_empty());
}

#[tokio::test]
async fn metadata_api_and_metadata_watcher() {
    let (_server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::namespaced(client, "default");
    let mut z = zone("meta");
    z.metadata.labels = Some(BTreeMap::from([("a".to_string(), "b".to_string())]));
    zones.create(&PostParams::default(), &z).await.unwrap();
    let m = zones.get_metadata("meta").await.unwrap();
    assert_eq!(m.labels()["a"], "b");
    let list = zones.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let (reader, writer) = reflector::store();
    let metas: Api<kube::core::PartialObjectMeta<DnsZone>> =
        Api::namespaced(zones.clone().into_client(), "default");
    let stream = watcher(metas, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.unwrap();
    zones
        .create(&PostParams::default(), &zone("meta2"))
        .await
        .unwrap();
    eventually("metadata store has both", async || {
        reader.state().len() == 2
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn written_kubeconfig_works_for_kube() {
    let (server, _) = server_with_crds().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    let zones: Api<DnsZone> = Api::default_namespaced(client);
    zones
        .create(&PostParams::default(), &zone("kc"))
        .await
        .unwrap();
    assert!(server.object(GROUP, "dnszones", "default", "kc").is_some());
}

/// The Controller's store reports ready: the lead's `wait_until_ready` never returned because
/// kube-runtime 5.0's `DelayedInit` keeps the waker of only the last task that polled it, and
/// the Controller's own runner waits on the same store, so a waiter that polled before it is
/// never woken (not a watch or list detail of this server). A waiter that polls again, as
/// here, sees the ready store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_store_becomes_ready_for_a_waiter_that_polls_again() {
    let (_server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::default_namespaced(client);
    zones
        .create(&PostParams::default(), &zone("a"))
        .await
        .unwrap();
    let controller = Controller::new(zones, watcher::Config::default().any_semantic());
    let store = controller.store();
    let waiter = tokio::spawn(async move {
        loop {
            let poll = tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready());
            if let Ok(ready) = poll.await {
                return ready.is_ok();
            }
        }
    });
    // Polls first, before the controller's runner does.
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::spawn(
        controller
            .run(
                |_z, _| async { Ok::<_, kube::Error>(Action::await_change()) },
                |_z, _e, _| Action::await_change(),
                Arc::new(()),
            )
            .for_each(|_| async {}),
    );
    let ready = tokio::time::timeout(Duration::from_secs(15), waiter).await;
    assert!(
        matches!(ready, Ok(Ok(true))),
        "store never ready: {ready:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_prints_the_crd_field_docs() {
    let (server, _client) = server_with_crds().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let cache = dir.path().join("cache");
    server.write_kubeconfig(&kc).unwrap();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        kubectl(&kc, &cache, &["explain", "dnszone.spec.records.data"])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("KIND:       DnsZone"), "{out}");
    assert!(out.contains("FIELD: data <[]string>"), "{out}");
    assert!(
        out.contains("The records' data in zone-file presentation format, one entry per record."),
        "{out}"
    );
}

/// Issue 17 point 12: kube-runtime's finalizer helper sends `test /metadata/finalizers null`
/// + `add` when its cached object has no finalizers. Sent from a stale cache (the finalizer
/// was just added by the previous reconcile, whose watch event has not arrived), a real
/// server refuses it with 422 and writes nothing, and so does this one; sent fresh, it passes.
#[tokio::test]
async fn finalizer_add_from_a_stale_cache_is_refused_like_a_real_server() {
    let (server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::default_namespaced(client);
    zones
        .create(&PostParams::default(), &zone("a"))
        .await
        .unwrap();
    let add = |name: &str| -> json_patch::Patch {
        serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [name]},
        ]))
        .unwrap()
    };
    let pp = PatchParams::default();
    zones
        .patch(
            "a",
            &pp,
            &Patch::<()>::Json(add("dns.zonekeeper.io/cleanup")),
        )
        .await
        .unwrap();
    let rv = server.resource_version();
    let err = zones
        .patch(
            "a",
            &pp,
            &Patch::<()>::Json(add("dns.zonekeeper.io/cleanup")),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 422);
    assert_eq!(server.resource_version(), rv);
    assert_eq!(
        zones.get("a").await.unwrap().finalizers(),
        ["dns.zonekeeper.io/cleanup"]
    );
}

#[tokio::test]
async fn status_writes_are_checked_against_the_status_schema() {
    let (_server, client) = server_with_crds().await;
    let zones: Api<DnsZone> = Api::default_namespaced(client);
    zones
        .create(&PostParams::default(), &zone("st"))
        .await
        .unwrap();
    let pp = PatchParams::default();
    zones
        .patch_status(
            "st",
            &pp,
            &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
        )
        .await
        .unwrap();
    let e = zones
        .patch_status(
            "st",
            &pp,
            &Patch::Merge(json!({"status": {"observedGeneration": "one"}})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!(s.code, 422);
    assert_eq!(
        s.details.unwrap().causes[0].field,
        "status.observedGeneration"
    );
    assert_eq!(
        zones
            .get_status("st")
            .await
            .unwrap()
            .status
            .unwrap()
            .observed_generation,
        Some(1)
    );
}

#[tokio::test]
async fn wait_all_answers_when_every_object_matches_at_once() {
    let (server, client) = server_with_crds().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let keys: Vec<(String, String)> = ["w0", "w1", "w2"]
        .iter()
        .map(|n| ("default".to_string(), n.to_string()))
        .collect();
    let done = |o: &serde_json::Value| o["data"]["done"] == "yes";
    let set = |v: &str| Patch::Merge(json!({"data": {"done": v}}));
    let (pp, patch) = (PostParams::default(), PatchParams::default());
    for name in ["w0", "w1"] {
        let mut cm = config_map(name, &[]);
        cm.data = Some(BTreeMap::from([("done".to_string(), "yes".to_string())]));
        cms.create(&pp, &cm).await.unwrap();
    }
    let short = Duration::from_millis(300);
    assert!(
        !server.wait_all("", "configmaps", &keys, done, short).await,
        "w2 does not exist yet"
    );
    cms.create(&pp, &config_map("w2", &[])).await.unwrap();

    // Woken by the writes: w2 starts to match while w1 stops, and w1 matches again later.
    let wait = async {
        let all = server
            .wait_all("", "configmaps", &keys, done, Duration::from_secs(30))
            .await;
        (
            all,
            Instant::now(),
            server.object("", "configmaps", "default", "w1"),
        )
    };
    let write = async {
        cms.patch("w1", &patch, &set("no")).await.unwrap();
        cms.patch("w2", &patch, &set("yes")).await.unwrap();
        // Time enough for a wait that forgot w1 stopped matching to answer too early.
        tokio::time::sleep(short).await;
        cms.patch("w1", &patch, &set("yes")).await.unwrap();
        Instant::now()
    };
    let ((all, answered, w1), last_write) = tokio::join!(wait, write);
    assert!(all);
    assert_eq!(
        w1.unwrap()["data"]["done"],
        "yes",
        "answered before w1 matched again"
    );
    assert!(
        answered.duration_since(last_write) < Duration::from_secs(5),
        "answered long after the write that completed it"
    );
}
