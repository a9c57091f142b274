//! What the test API server refuses as a real cluster would: size limits, and (with a token
//! file and RBAC) who may do what. Exercised through the real `kube::Client` and `kubectl`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use zk_apiserver::{Options, TestApiServer, TokenUser};
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

fn token(token: &str, name: &str, groups: &[&str]) -> TokenUser {
    TokenUser {
        token: token.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

const SA: &str = "system:serviceaccount:zonekeeper:zonekeeper";

/// A server enforcing RBAC with an admin (`system:masters`), bob (group `devs`) and the
/// operator's ServiceAccount, the CRDs installed and namespace `team-a`.
async fn rbac_server() -> (TestApiServer, kube::Client) {
    let server = TestApiServer::start_with(Options {
        tokens: vec![
            token("admin-token", "admin", &["system:masters"]),
            token("bob-token", "bob", &["devs"]),
            token("sa-token", SA, &[]),
        ],
        rbac: true,
        tls: true,
        ..Options::default()
    })
    .await;
    server.install_crds(&zonekeeper::api::crd::crds()).await;
    let admin = server.client_with_token("admin-token").await;
    apply(
        &admin,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
    )
    .await;
    (server, admin)
}

/// Creates any object through the dynamic API, as `kubectl create` would.
async fn apply(client: &kube::Client, obj: serde_json::Value) {
    let obj: kube::api::DynamicObject = serde_json::from_value(obj).unwrap();
    let types = obj.types.clone().unwrap();
    let (group, version) = types
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &types.api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &types.kind);
    let plural = match types.kind.as_str() {
        "Namespace" => "namespaces",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "ConfigMap" => "configmaps",
        other => panic!("no plural for {other}"),
    };
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<kube::api::DynamicObject> = match &obj.metadata.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.create(&PostParams::default(), &obj).await.unwrap();
}

fn role(ns: &str, name: &str, rules: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn binding(ns: &str, role: &str, subject: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": format!("{role}-binding"), "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
           "subjects": [subject]})
}

fn zone_in(ns: &str, name: &str) -> DnsZone {
    serde_json::from_value(json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"zoneName": format!("{name}.example."), "type": "Primary",
                 "backend": {"server": "127.0.0.1:53"}},
    }))
    .unwrap()
}

#[tokio::test]
async fn tokens_anonymous_and_unknown_tokens() {
    let (server, admin) = rbac_server().await;
    let err = Api::<Secret>::default_namespaced(server.client_with_token("nope").await)
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(api_status(err), (401, "Unauthorized".into()));
    let err = Api::<Secret>::default_namespaced(server.client().await)
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (
            403,
            "secrets is forbidden: User \"system:anonymous\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\"".into()
        )
    );
    Api::<Secret>::all(admin)
        .list(&Default::default())
        .await
        .unwrap();
    let users: Vec<String> = server.requests().iter().map(|r| r.user.clone()).collect();
    assert!(users.contains(&"system:anonymous".to_string()), "{users:?}");
    assert!(users.contains(&"admin".to_string()), "{users:?}");

    let strict = TestApiServer::start_with(Options {
        tokens: vec![token("admin-token", "admin", &["system:masters"])],
        anonymous: false,
        ..Options::default()
    })
    .await;
    let err = Api::<Secret>::default_namespaced(strict.client().await)
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(api_status(err).0, 401);
}

#[tokio::test]
async fn a_read_only_user_cannot_create_a_zone() {
    let (server, admin) = rbac_server().await;
    apply(
        &admin,
        role(
            "team-a",
            "zone-reader",
            json!([{"apiGroups": ["dns.zonekeeper.io"],
        "resources": ["dnszones"], "verbs": ["get", "list", "watch"]}]),
        ),
    )
    .await;
    apply(
        &admin,
        binding(
            "team-a",
            "zone-reader",
            json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}),
        ),
    )
    .await;
    Api::<DnsZone>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &zone_in("team-a", "a"))
        .await
        .unwrap();

    let bob: Api<DnsZone> = Api::namespaced(server.client_with_token("bob-token").await, "team-a");
    assert_eq!(bob.list(&Default::default()).await.unwrap().items.len(), 1);
    bob.get("a").await.unwrap();
    let err = bob
        .create(&PostParams::default(), &zone_in("team-a", "b"))
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (403, "dnszones.dns.zonekeeper.io is forbidden: User \"bob\" cannot create resource \"dnszones\" in API group \"dns.zonekeeper.io\" in the namespace \"team-a\"".into())
    );
    let err = bob
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": 60}})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (403, "dnszones.dns.zonekeeper.io \"a\" is forbidden: User \"bob\" cannot patch resource \"dnszones\" in API group \"dns.zonekeeper.io\" in the namespace \"team-a\"".into())
    );
    // The binding is namespaced: nothing in default, nothing cluster-wide.
    let err = Api::<DnsZone>::all(server.client_with_token("bob-token").await)
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(api_status(err).0, 403);
    assert!(
        server
            .object("dns.zonekeeper.io", "dnszones", "team-a", "b")
            .is_none()
    );
}

#[tokio::test]
async fn subresources_resource_names_and_wildcards() {
    let (server, admin) = rbac_server().await;
    apply(&admin, role("team-a", "status-writer", json!([
        {"apiGroups": ["dns.zonekeeper.io"], "resources": ["dnszones/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tsig"], "verbs": ["get"]},
        {"apiGroups": ["*"], "resources": ["configmaps"], "verbs": ["*"]},
    ]))).await;
    apply(
        &admin,
        binding(
            "team-a",
            "status-writer",
            json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}),
        ),
    )
    .await;
    Api::<DnsZone>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &zone_in("team-a", "a"))
        .await
        .unwrap();
    for name in ["tsig", "other"] {
        let s = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Secret>::namespaced(admin.clone(), "team-a")
            .create(&PostParams::default(), &s)
            .await
            .unwrap();
    }
    let bob = server.client_with_token("bob-token").await;
    let zones: Api<DnsZone> = Api::namespaced(bob.clone(), "team-a");
    let status = json!({"status": {"serial": 7}});
    zones
        .patch_status("a", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    let err = zones
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": 60}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(err).0, 403);

    let secrets: Api<Secret> = Api::namespaced(bob.clone(), "team-a");
    secrets.get("tsig").await.unwrap();
    let err = secrets.get("other").await.unwrap_err();
    assert_eq!(
        api_status(err),
        (403, "secrets \"other\" is forbidden: User \"bob\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-a\"".into())
    );
    // resourceNames never allow a list.
    assert_eq!(
        api_status(secrets.list(&Default::default()).await.unwrap_err()).0,
        403
    );

    let cms: Api<ConfigMap> = Api::namespaced(bob, "team-a");
    cms.create(&PostParams::default(), &config_map("c", 1))
        .await
        .unwrap();
    cms.delete("c", &Default::default()).await.unwrap();
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_verb_and_service_accounts_get_their_groups() {
    let (server, admin) = rbac_server().await;
    apply(
        &admin,
        role(
            "team-a",
            "cm-reader",
            json!([{"apiGroups": [""],
        "resources": ["configmaps"], "verbs": ["list"]}]),
        ),
    )
    .await;
    // Bound to every ServiceAccount of namespace zonekeeper, by group.
    apply(
        &admin,
        binding(
            "team-a",
            "cm-reader",
            json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
               "name": "system:serviceaccounts:zonekeeper"}),
        ),
    )
    .await;
    let sa: Api<ConfigMap> = Api::namespaced(server.client_with_token("sa-token").await, "team-a");
    sa.list(&Default::default()).await.unwrap();

    // The admin acts as the ServiceAccount: same verdicts.
    let mut config = server.config_with_token("admin-token").await;
    config.auth_info.impersonate = Some(SA.into());
    let as_sa = kube::Client::try_from(config).unwrap();
    Api::<ConfigMap>::namespaced(as_sa.clone(), "team-a")
        .list(&Default::default())
        .await
        .unwrap();
    let err = Api::<Secret>::namespaced(as_sa, "team-a")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (
            403,
            format!(
                "secrets is forbidden: User \"{SA}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team-a\""
            )
        )
    );
    assert_eq!(server.requests().last().unwrap().user, SA);

    // bob may not impersonate until a ClusterRole says so.
    let mut config = server.config_with_token("bob-token").await;
    config.auth_info.impersonate = Some("alice".into());
    let bob_as_alice = kube::Client::try_from(config).unwrap();
    let err = Api::<ConfigMap>::namespaced(bob_as_alice.clone(), "team-a")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (403, "users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope".into())
    );
    apply(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "impersonator"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
                   "resourceNames": ["alice"]}]}),
    )
    .await;
    apply(&admin, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "bob-impersonates"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonator"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]})).await;
    // Now the request is alice's, who may not list ConfigMaps.
    let err = Api::<ConfigMap>::namespaced(bob_as_alice, "team-a")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(api_status(err).1.contains("User \"alice\" cannot list"));
}

#[tokio::test]
async fn block_owner_deletion_needs_update_on_the_owners_finalizers() {
    let (server, admin) = rbac_server().await;
    apply(
        &admin,
        role(
            "team-a",
            "cm-writer",
            json!([{"apiGroups": [""],
        "resources": ["configmaps"], "verbs": ["create", "update", "patch"]}]),
        ),
    )
    .await;
    apply(
        &admin,
        binding(
            "team-a",
            "cm-writer",
            json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}),
        ),
    )
    .await;
    let zone = Api::<DnsZone>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &zone_in("team-a", "a"))
        .await
        .unwrap();
    let mut cm = config_map("owned", 1);
    cm.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "dns.zonekeeper.io/v1alpha1".into(),
            kind: "DnsZone".into(),
            name: "a".into(),
            uid: zone.metadata.uid.clone().unwrap(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    ]);
    let bob: Api<ConfigMap> =
        Api::namespaced(server.client_with_token("bob-token").await, "team-a");
    let err = bob.create(&PostParams::default(), &cm).await.unwrap_err();
    assert_eq!(
        api_status(err),
        (403, "configmaps \"owned\" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: User \"bob\" cannot update resource \"dnszones/finalizers\" in API group \"dns.zonekeeper.io\" in the namespace \"team-a\"".into())
    );
    apply(
        &admin,
        role(
            "team-a",
            "zone-finalizers",
            json!([{"apiGroups": ["dns.zonekeeper.io"],
        "resources": ["dnszones/finalizers"], "verbs": ["update"]}]),
        ),
    )
    .await;
    apply(
        &admin,
        binding(
            "team-a",
            "zone-finalizers",
            json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}),
        ),
    )
    .await;
    bob.create(&PostParams::default(), &cm).await.unwrap();
}

/// What `kubectl auth can-i` asks: a SelfSubjectAccessReview as `client`.
async fn can_i(client: &kube::Client, attrs: serde_json::Value) -> bool {
    let gvk =
        kube::api::GroupVersionKind::gvk("authorization.k8s.io", "v1", "SelfSubjectAccessReview");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "selfsubjectaccessreviews");
    let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &ar);
    let review: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "metadata": {}, "spec": {"resourceAttributes": attrs}}))
    .unwrap();
    let answer = api.create(&PostParams::default(), &review).await.unwrap();
    answer.data["status"]["allowed"].as_bool().unwrap()
}

#[tokio::test]
async fn self_subject_access_reviews_answer_by_the_rules() {
    let (server, admin) = rbac_server().await;
    apply(
        &admin,
        role(
            "team-a",
            "syncs",
            json!([{"apiGroups": ["dns.zonekeeper.io"],
        "resources": ["zonesyncs"], "verbs": ["create", "list"]}]),
        ),
    )
    .await;
    apply(
        &admin,
        binding(
            "team-a",
            "syncs",
            json!({"kind": "ServiceAccount", "name": "zonekeeper", "namespace": "zonekeeper"}),
        ),
    )
    .await;
    let sa = server.client_with_token("sa-token").await;
    let attrs = |verb: &str, ns: &str| json!({"verb": verb, "group": "dns.zonekeeper.io", "resource": "zonesyncs", "namespace": ns});
    assert!(can_i(&sa, attrs("create", "team-a")).await);
    assert!(!can_i(&sa, attrs("delete", "team-a")).await);
    assert!(!can_i(&sa, attrs("create", "default")).await);
    assert!(can_i(&admin, attrs("delete", "default")).await);
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let cache = kubeconfig.with_file_name("cache");
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
async fn kubectl_as_bob_is_forbidden_and_can_i_answers_by_the_rules() {
    let (server, admin) = rbac_server().await;
    apply(
        &admin,
        role(
            "team-a",
            "syncs",
            json!([{"apiGroups": ["dns.zonekeeper.io"],
        "resources": ["zonesyncs"], "verbs": ["create", "list"]}]),
        ),
    )
    .await;
    apply(
        &admin,
        binding(
            "team-a",
            "syncs",
            json!({"kind": "ServiceAccount", "name": "zonekeeper", "namespace": "zonekeeper"}),
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    server
        .write_kubeconfig_with_token(&kc, "admin-token")
        .unwrap();
    let run = |args: &'static [&'static str]| {
        let kc = kc.clone();
        tokio::task::spawn_blocking(move || kubectl(&kc, args))
    };
    let (ok, out, err) = run(&["get", "secrets", "-A"]).await.unwrap();
    assert!(ok, "{out}{err}");
    let (ok, _, err) = run(&["--as=bob", "--as-group=devs", "get", "secrets", "-A"])
        .await
        .unwrap();
    assert!(!ok);
    assert!(
        err.contains("Error from server (Forbidden): secrets is forbidden: User \"bob\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"),
        "{err}"
    );
    let (ok, out, err) = run(&[
        "auth",
        "can-i",
        "create",
        "zonesyncs",
        "--as=system:serviceaccount:zonekeeper:zonekeeper",
        "-n",
        "team-a",
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "yes");
    let (ok, out, _) = run(&[
        "auth",
        "can-i",
        "delete",
        "zonesyncs",
        "--as=system:serviceaccount:zonekeeper:zonekeeper",
        "-n",
        "team-a",
    ])
    .await
    .unwrap();
    assert!(!ok);
    assert_eq!(out.trim(), "no");
    let (ok, out, err) = run(&[
        "auth",
        "can-i",
        "--list",
        "-n",
        "team-a",
        "--as=system:serviceaccount:zonekeeper:zonekeeper",
    ])
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("zonesyncs.dns.zonekeeper.io") && l.contains("[create list]")),
        "{out}"
    );
}
