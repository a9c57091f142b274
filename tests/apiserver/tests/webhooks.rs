//! Admission webhooks: the server calls the configured webhooks over HTTPS, as
//! kube-apiserver does, and a test webhook (`zk_apiserver::testing::TestWebhook`) sees the
//! reviews and answers them.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use zk_apiserver::testing::{Answer, TestWebhook};
use zk_apiserver::{Options, TestApiServer, TokenUser};
use zonekeeper::api::DnsZone;

fn zone(ns: &str, name: &str, ttl: i64) -> DnsZone {
    serde_json::from_value(json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "DnsZone",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"zoneName": format!("{name}.example."), "type": "Primary", "ttl": ttl,
                 "backend": {"server": "127.0.0.1:53"}},
    }))
    .unwrap()
}

fn api_status(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// One webhook of a configuration: `resources` of dns.zonekeeper.io, all operations.
fn hook(name: &str, client_config: Value, resources: &[&str], extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "clientConfig": client_config,
        "rules": [{"operations": ["*"], "apiGroups": ["dns.zonekeeper.io"],
                   "apiVersions": ["*"], "resources": resources}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "failurePolicy": "Fail",
        "timeoutSeconds": 5,
    });
    if let (Some(h), Some(extra)) = (h.as_object_mut(), extra.as_object()) {
        h.extend(extra.clone());
    }
    h
}

async fn validating(client: &kube::Client, name: &str, hooks: Vec<Value>) {
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": hooks,
    }))
    .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
}

async fn mutating(client: &kube::Client, name: &str, hooks: Vec<Value>) {
    let config: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": hooks,
    }))
    .unwrap();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
}

async fn plain_server() -> (TestApiServer, kube::Client) {
    let server = TestApiServer::start().await;
    server.install_crds(&zonekeeper::api::crd::crds()).await;
    let client = server.client().await;
    (server, client)
}

fn token(token: &str, name: &str, groups: &[&str]) -> TokenUser {
    TokenUser {
        token: token.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn groups(review: &Value) -> Vec<&str> {
    review["userInfo"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_webhook_sees_operation_user_and_old_object_of_each_write() {
    let server = TestApiServer::start_with(Options {
        // Without RBAC, anyone may impersonate and bob may write.
        tokens: vec![token("admin-token", "admin", &["system:masters"])],
        tls: true,
        ..Options::default()
    })
    .await;
    server.install_crds(&zonekeeper::api::crd::crds()).await;
    let admin = server.client_with_token("admin-token").await;
    let zones = TestWebhook::start(|_| Answer::Allow).await;
    let status_writes = TestWebhook::start(|_| Answer::Allow).await;
    let config_maps = TestWebhook::start(|_| Answer::Allow).await;
    let mut cm_hook = hook(
        "configmaps.zonekeeper.io",
        config_maps.client_config("/cm"),
        &["configmaps"],
        json!({}),
    );
    cm_hook["rules"][0]["apiGroups"] = json!([""]);
    let team_a = TestWebhook::start(|_| Answer::Allow).await;
    let labelled = TestWebhook::start(|_| Answer::Allow).await;
    validating(
        &admin,
        "audit",
        vec![
            hook(
                "zones.zonekeeper.io",
                zones.client_config("/zones"),
                &["dnszones"],
                json!({}),
            ),
            hook(
                "status.zonekeeper.io",
                status_writes.client_config("/status"),
                &["*/status"],
                json!({}),
            ),
            cm_hook,
            hook(
                "team-a.zonekeeper.io",
                team_a.client_config("/team-a"),
                &["dnszones"],
                json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}}),
            ),
            hook(
                "labelled.zonekeeper.io",
                labelled.client_config("/labelled"),
                &["dnszones"],
                json!({"objectSelector": {"matchExpressions": [
                    {"key": "audit", "operator": "In", "values": ["yes"]}]}}),
            ),
        ],
    )
    .await;
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let mut b = zone("team-a", "b", 300);
    b.metadata.labels = Some([("audit".to_string(), "yes".to_string())].into());
    Api::<DnsZone>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &b)
        .await
        .unwrap();

    let api: Api<DnsZone> = Api::namespaced(admin.clone(), "default");
    api.create(&PostParams::default(), &zone("default", "a", 300))
        .await
        .unwrap();
    let mut as_bob = server.config_with_token("admin-token").await;
    as_bob.auth_info.impersonate = Some("bob".into());
    as_bob.auth_info.impersonate_groups = Some(vec!["devs".into()]);
    let bob: Api<DnsZone> = Api::namespaced(kube::Client::try_from(as_bob).unwrap(), "default");
    bob.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"ttl": 600}})),
    )
    .await
    .unwrap();
    api.patch_status(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Active"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    let reviews: Vec<Value> = zones
        .reviews()
        .into_iter()
        .filter(|r| r["name"] == "a")
        .collect();
    let ops: Vec<&str> = reviews
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["CREATE", "UPDATE", "DELETE"]);
    let (create, update, delete) = (&reviews[0], &reviews[1], &reviews[2]);
    for r in &reviews {
        assert_eq!(
            r["kind"],
            json!({"group": "dns.zonekeeper.io", "version": "v1alpha1", "kind": "DnsZone"})
        );
        assert_eq!(
            r["resource"],
            json!({"group": "dns.zonekeeper.io", "version": "v1alpha1", "resource": "dnszones"})
        );
        assert_eq!(
            (r["namespace"].as_str(), r["name"].as_str()),
            (Some("default"), Some("a"))
        );
        assert_eq!(r["dryRun"], false);
        assert!(r["uid"].as_str().is_some_and(|u| !u.is_empty()));
    }
    assert_eq!(create["userInfo"]["username"], "admin");
    assert_eq!(create["userInfo"]["uid"], "uid-admin");
    assert!(groups(create).contains(&"system:masters"));
    assert!(create["oldObject"].is_null());
    assert_eq!(create["object"]["spec"]["ttl"], 300);
    assert_eq!(create["options"]["kind"], "CreateOptions");

    // The user after impersonation, not the token's.
    assert_eq!(update["userInfo"]["username"], "bob");
    assert_eq!(groups(update), ["devs", "system:authenticated"]);
    assert_eq!(update["oldObject"]["spec"]["ttl"], 300);
    assert_eq!(update["object"]["spec"]["ttl"], 600);
    assert_eq!(update["options"]["kind"], "UpdateOptions");

    assert!(delete["object"].is_null());
    assert_eq!(delete["oldObject"]["spec"]["ttl"], 600);
    assert_eq!(delete["options"]["kind"], "DeleteOptions");

    // `dnszones` does not cover its status; `*/status` covers only that.
    let status = status_writes.reviews();
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0]["subResource"], "status");
    assert_eq!(status[0]["object"]["status"]["phase"], "Active");
    assert!(config_maps.reviews().is_empty());
    // Selected by namespace labels, and by object labels: only zone b.
    for selective in [&team_a, &labelled] {
        let names: Vec<Value> = selective
            .reviews()
            .iter()
            .map(|r| r["name"].clone())
            .collect();
        assert_eq!(names, [json!("b")]);
    }
}

async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("/usr/bin/kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(kubeconfig.with_file_name("cache"))
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_patches_come_before_validation_and_denials_reach_kubectl() {
    // kubectl sends no request over TLS without credentials: it asks for a password.
    let server = TestApiServer::start_with(Options {
        tokens: vec![token("admin-token", "admin", &["system:masters"])],
        tls: true,
        ..Options::default()
    })
    .await;
    server.install_crds(&zonekeeper::api::crd::crds()).await;
    let client = server.client_with_token("admin-token").await;
    let marker = TestWebhook::start(|req| {
        let labels = &req["object"]["metadata"]["labels"];
        if labels["break"] == "yes" {
            return Answer::Patch(json!([{"op": "replace", "path": "/spec/ttl", "value": 0}]));
        }
        let mut ops = Vec::new();
        if req["object"]["metadata"]["annotations"].is_null() {
            ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
        }
        ops.push(
            json!({"op": "add", "path": "/metadata/annotations/zonekeeper.io~1reviewed",
                        "value": "yes"}),
        );
        Answer::Patch(Value::Array(ops))
    })
    .await;
    let policy = TestWebhook::start(|req| {
        if req["object"]["metadata"]["annotations"]["zonekeeper.io/reviewed"] != "yes" {
            return Answer::deny("not reviewed");
        }
        match req["object"]["spec"]["ttl"].as_i64() {
            Some(ttl) if ttl > 86400 => Answer::deny("ttl above one day is not allowed here"),
            Some(42) => Answer::Patch(json!([{"op": "replace", "path": "/spec/ttl", "value": 43}])),
            Some(7) => Answer::Deny {
                message: "seven is taken".into(),
                code: Some(409),
            },
            _ => Answer::Allow,
        }
    })
    .await;
    mutating(
        &client,
        "marker",
        vec![hook(
            "marker.zonekeeper.io",
            marker.client_config("/mutate"),
            &["dnszones"],
            json!({}),
        )],
    )
    .await;
    // Configured with kubectl, as a cluster admin would.
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    server
        .write_kubeconfig_with_token(&kc, "admin-token")
        .unwrap();
    let config = dir.path().join("policy.json");
    let policy_config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "policy"},
        "webhooks": [hook("ttl.zonekeeper.io", policy.client_config("/validate"),
                          &["dnszones"], json!({}))],
    });
    std::fs::write(&config, policy_config.to_string()).unwrap();
    let out = kubectl(&kc, &["apply", "-f", config.to_str().unwrap()]).await;
    assert!(out.status.success(), "{out:?}");
    let out = kubectl(&kc, &["get", "validatingwebhookconfigurations"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("policy ")),
        "{out:?}"
    );

    let api: Api<DnsZone> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &zone("default", "ok", 300))
        .await
        .unwrap();
    let stored = server
        .object("dns.zonekeeper.io", "dnszones", "default", "ok")
        .unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["zonekeeper.io/reviewed"],
        "yes"
    );
    // The validating webhook saw the mutated object.
    assert_eq!(
        policy.reviews()[0]["object"]["metadata"]["annotations"]["zonekeeper.io/reviewed"],
        "yes"
    );

    // A validating webhook's patch is ignored, as by kube-apiserver.
    api.create(&PostParams::default(), &zone("default", "answer", 42))
        .await
        .unwrap();
    let answer = server
        .object("dns.zonekeeper.io", "dnszones", "default", "answer")
        .unwrap();
    assert_eq!(answer["spec"]["ttl"], 42);

    // Server-side apply creating an object is a CREATE, patched as well.
    api.patch(
        "applied",
        &PatchParams::apply("zk-test"),
        &Patch::Apply(zone("default", "applied", 300)),
    )
    .await
    .unwrap();
    let applied = server
        .object("dns.zonekeeper.io", "dnszones", "default", "applied")
        .unwrap();
    assert_eq!(
        applied["metadata"]["annotations"]["zonekeeper.io/reviewed"],
        "yes"
    );
    assert!(
        applied["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "zk-test" && m["operation"] == "Apply")
    );
    assert_eq!(marker.reviews().last().unwrap()["operation"], "CREATE");

    let err = api
        .create(&PostParams::default(), &zone("default", "seven", 7))
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (
            409,
            "admission webhook \"ttl.zonekeeper.io\" denied the request: seven is taken".into()
        )
    );

    // A mutation that breaks the schema is refused by validation, before the validating
    // webhook is asked.
    let asked = policy.reviews().len();
    let mut broken = zone("default", "broken", 300);
    broken.metadata.labels = Some([("break".to_string(), "yes".to_string())].into());
    let err = api
        .create(&PostParams::default(), &broken)
        .await
        .unwrap_err();
    let (code, message) = api_status(err);
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("spec.ttl"), "{message}");
    assert_eq!(policy.reviews().len(), asked);

    let manifest = dir.path().join("zone.json");
    std::fs::write(
        &manifest,
        serde_json::to_string(&zone("default", "long", 100000)).unwrap(),
    )
    .unwrap();
    let out = kubectl(&kc, &["apply", "-f", manifest.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "admission webhook \"ttl.zonekeeper.io\" denied the request: ttl above one day is not allowed here"
        ),
        "{stderr}"
    );
    assert!(
        server
            .object("dns.zonekeeper.io", "dnszones", "default", "long")
            .is_none()
    );
}

#[tokio::test]
async fn failure_policy_decides_when_the_webhook_is_down() {
    let (server, client) = plain_server().await;
    let mut down = TestWebhook::start(|_| Answer::deny("never asked")).await;
    let client_config = down.client_config("/down");
    down.stop();
    validating(
        &client,
        "lenient",
        vec![hook(
            "lenient.zonekeeper.io",
            client_config.clone(),
            &["dnszones"],
            json!({"failurePolicy": "Ignore"}),
        )],
    )
    .await;
    let api: Api<DnsZone> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &zone("default", "through", 300))
        .await
        .unwrap();
    assert!(
        server
            .object("dns.zonekeeper.io", "dnszones", "default", "through")
            .is_some()
    );

    validating(
        &client,
        "strict",
        vec![hook(
            "strict.zonekeeper.io",
            client_config,
            &["dnszones"],
            json!({"failurePolicy": "Fail"}),
        )],
    )
    .await;
    let err = api
        .create(&PostParams::default(), &zone("default", "refused", 300))
        .await
        .unwrap_err();
    let (code, message) = api_status(err);
    assert_eq!(code, 500);
    assert!(
        message.starts_with(
            "Internal error occurred: failed calling webhook \"strict.zonekeeper.io\": failed to call webhook: Post \"https://127.0.0.1:"
        ),
        "{message}"
    );
    assert!(
        server
            .object("dns.zonekeeper.io", "dnszones", "default", "refused")
            .is_none()
    );
    assert!(down.reviews().is_empty());

    // A webhook that never answers is given up after its timeoutSeconds.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut hung = down.client_config("/hung");
    hung["url"] = json!(format!("https://{}/hung", silent.local_addr().unwrap()));
    validating(
        &client,
        "slow",
        vec![hook(
            "slow.zonekeeper.io",
            hung,
            &["dnszones"],
            json!({"timeoutSeconds": 1}),
        )],
    )
    .await;
    let started = std::time::Instant::now();
    // Configurations are called in name order: "slow" before "strict".
    let err = api
        .create(&PostParams::default(), &zone("default", "late", 300))
        .await
        .unwrap_err();
    let (code, message) = api_status(err);
    assert_eq!(code, 500);
    assert!(
        message.contains("failed calling webhook \"slow.zonekeeper.io\""),
        "{message}"
    );
    assert!(
        message.contains("?timeout=1s\": context deadline exceeded"),
        "{message}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(1) && waited < std::time::Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test]
async fn dry_run_reaches_webhooks_through_a_service_and_stores_nothing() {
    let (server, client) = plain_server().await;
    let pure = TestWebhook::start_for_service("webhooks", "pure", |_| Answer::Allow).await;
    server.map_service("webhooks", "pure", pure.addr());
    validating(
        &client,
        "pure",
        vec![hook(
            "pure.zonekeeper.io",
            json!({"service": {"namespace": "webhooks", "name": "pure", "path": "/validate"},
                   "caBundle": pure.ca_bundle()}),
            &["dnszones"],
            json!({"sideEffects": "None"}),
        )],
    )
    .await;
    let api: Api<DnsZone> = Api::default_namespaced(client.clone());
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&dry, &zone("default", "dry", 300))
        .await
        .unwrap();
    let reviews = pure.reviews();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["dryRun"], true);
    assert_eq!(reviews[0]["name"], "dry");
    assert!(
        server
            .object("dns.zonekeeper.io", "dnszones", "default", "dry")
            .is_none()
    );

    // v1 knows no webhooks with side effects (v1beta1's `Some`/`Unknown`): refused.
    let effects: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": "effects"},
        "webhooks": [hook("effects.zonekeeper.io", pure.client_config("/validate"),
                          &["dnszones"], json!({"sideEffects": "Some"}))],
    }))
    .unwrap();
    let err = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &effects)
        .await
        .unwrap_err();
    assert_eq!(
        api_status(err),
        (
            422,
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"effects\" is invalid: webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"".into()
        )
    );
    api.create(&PostParams::default(), &zone("default", "real", 300))
        .await
        .unwrap();
    assert_eq!(pure.reviews().len(), 2);
    assert_eq!(pure.reviews()[1]["dryRun"], false);
}
