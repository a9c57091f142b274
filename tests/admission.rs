//! The admission webhooks end to end: the test API server (tokens, RBAC, and the webhook
//! configurations the chart renders) calls the operator's webhooks over HTTPS with the CA
//! the operator made and wrote into them; the zone lives on a real BIND.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::cluster::{NS, is_ready, render_chart, zone_manifest};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};
use tokio::sync::watch;
use zk_apiserver::{TestApiServer, TokenUser};
use zonekeeper::admission::WebhookOptions;
use zonekeeper::api::{DnsZone, ZoneSync};
use zonekeeper::controller::operator::{self, OperatorOptions};

const WAIT: Duration = Duration::from_secs(60);
const OPERATOR_USER: &str = "system:serviceaccount:dns:zonekeeper";
const REQUESTED_BY: &str = "dns.zonekeeper.io/requested-by";

struct Setup {
    api: TestApiServer,
    admin: Client,
    operator: Client,
    server: DnsServer,
    webhook_port: u16,
}

fn user(token: &str, name: &str, groups: &[&str]) -> TokenUser {
    TokenUser {
        token: token.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Creates any object as the admin through the dynamic API (`plural` given).
async fn create(client: &Client, obj: &Value, plural: &str) {
    let o: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    let types = o.types.clone().unwrap();
    let (group, version) = types
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &types.api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &types.kind);
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<DynamicObject> = match &o.metadata.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.create(&PostParams::default(), &o)
        .await
        .unwrap_or_else(|e| panic!("creating {} {:?}: {e}", types.kind, o.metadata.name));
}

fn plural(kind: &str) -> &'static str {
    match kind {
        "ServiceAccount" => "serviceaccounts",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "MutatingWebhookConfiguration" => "mutatingwebhookconfigurations",
        "ValidatingWebhookConfiguration" => "validatingwebhookconfigurations",
        other => panic!("no plural for {other}"),
    }
}

/// API server with users, the chart's RBAC and webhook configurations (release
/// `zonekeeper` in [`NS`]), every user allowed to edit zones by RBAC (the ACL refines).
async fn setup() -> Setup {
    zonekeeper::telemetry::init_logging(zonekeeper::telemetry::LogFormat::Text);
    let zone = ZoneContent::new("example.com.", vec![]);
    let server = tokio::task::spawn_blocking(move || {
        DnsServer::start(ServerKind::Bind, &zone, ServerOptions::default())
    })
    .await
    .unwrap();
    let api = TestApiServer::start_with(zk_apiserver::Options {
        tokens: vec![
            user("admin", "admin", &["system:masters"]),
            user("operator", OPERATOR_USER, &["system:serviceaccounts"]),
            user("alice", "alice", &["dns-admins", "system:authenticated"]),
            user("bob", "bob", &["devs", "system:authenticated"]),
            user("carol", "carol", &["system:authenticated"]),
            user("dave", "dave", &["ops", "system:authenticated"]),
        ],
        rbac: true,
        tls: true,
        ..Default::default()
    })
    .await;
    api.install_crds(&zonekeeper::api::crd::crds()).await;
    let admin = api.client_with_token("admin").await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
        .create(&PostParams::default(), &serde_json::from_value(ns).unwrap())
        .await
        .unwrap();
    for obj in render_chart(&["--set", "webhook.enabled=true"]) {
        let kind = obj["kind"].as_str().unwrap_or_default();
        if matches!(
            kind,
            "ServiceAccount"
                | "Role"
                | "RoleBinding"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "MutatingWebhookConfiguration"
                | "ValidatingWebhookConfiguration"
        ) {
            create(&admin, &obj, plural(kind)).await;
        }
    }
    create(
        &admin,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "zone-editor", "namespace": NS},
            "rules": [{"apiGroups": ["dns.zonekeeper.io"], "resources": ["dnszones", "zonesyncs"],
                       "verbs": ["get", "list", "watch", "create", "update", "patch"]}]}),
        "roles",
    )
    .await;
    create(
        &admin,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "everyone-edits-zones", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "zone-editor"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]}),
        "rolebindings",
    )
    .await;
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "ex-tsig", "namespace": NS},
        "stringData": {"name": server.key.name, "algorithm": server.key.algorithm, "secret": server.key.secret_b64}});
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
    let operator = api.client_with_token("operator").await;
    Setup {
        api,
        admin,
        operator,
        server,
        webhook_port: free_port(),
    }
}

struct Running {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), operator::OperatorError>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

impl Setup {
    fn webhook_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.webhook_port)
    }

    async fn start_operator(&self) -> Running {
        let opts = OperatorOptions {
            namespaces: Vec::new(),
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            concurrency: 4,
            leader: None,
            settings: support::cluster::settings(),
            identity: "zk-0".into(),
            transfer_addr: None,
            webhook: Some(WebhookOptions {
                addr: SocketAddr::from(([127, 0, 0, 1], self.webhook_port)),
                cert_dir: None,
                url: Some(self.webhook_url()),
                namespace: NS.into(),
                service: "zonekeeper-webhook".into(),
                secret: "zonekeeper-webhook-tls".into(),
                mutating_configuration: "zonekeeper".into(),
                validating_configuration: "zonekeeper".into(),
                trusted_users: vec![OPERATOR_USER.into()],
            }),
        };
        let (shutdown, rx) = watch::channel(false);
        let (tx, started) = tokio::sync::oneshot::channel();
        let client = self.operator.clone();
        let task = tokio::spawn(async move {
            operator::run(client, opts, rx, move |r| {
                let _ = tx.send(r.webhook_addr);
            })
            .await
        });
        let addr = started.await.expect("operator started");
        assert_eq!(addr.map(|a| a.port()), Some(self.webhook_port));
        Running { shutdown, task }
    }

    /// Waits until both configurations point at the operator with its CA.
    async fn wait_configured(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let done = [
                "mutatingwebhookconfigurations",
                "validatingwebhookconfigurations",
            ]
            .iter()
            .all(|p| {
                self.api
                    .object("admissionregistration.k8s.io", p, "", "zonekeeper")
                    .is_some_and(|c| {
                        let cc = &c["webhooks"][0]["clientConfig"];
                        cc["caBundle"].as_str().is_some_and(|b| !b.is_empty())
                            && cc["url"]
                                .as_str()
                                .is_some_and(|u| u.starts_with(&self.webhook_url()))
                    })
            });
            if done {
                return;
            }
            assert!(Instant::now() < deadline, "caBundle/url never written");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn zones_as(&self, token: &str) -> Api<DnsZone> {
        Api::namespaced(self.api.client_with_token(token).await, NS)
    }

    async fn wait_zone(&self, pred: impl Fn(&DnsZone) -> bool) -> DnsZone {
        let zones: Api<DnsZone> = Api::namespaced(self.admin.clone(), NS);
        let deadline = Instant::now() + WAIT;
        loop {
            let z = zones.get("ex").await.unwrap();
            if pred(&z) {
                return z;
            }
            assert!(
                Instant::now() < deadline,
                "zone never got there: {:?}",
                z.status
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `dig +short NAME TYPE` against BIND.
    fn dig(&self, name: &str, rtype: &str) -> String {
        let out = std::process::Command::new("dig")
            .args([
                &format!("@{}", self.server.addr.ip()),
                "-p",
                &self.server.addr.port().to_string(),
                "+short",
                &format!("{name}.example.com."),
                rtype,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// Merge-patches the zone as `token`'s user; `dry_run` as `--dry-run=server`. A 409 (the
/// operator wrote the object while the webhooks were asked) is retried, as kube-apiserver
/// retries a patch internally.
async fn patch_as(
    setup: &Setup,
    token: &str,
    patch: Value,
    dry_run: bool,
) -> Result<DnsZone, (u16, String)> {
    let params = PatchParams {
        dry_run,
        ..Default::default()
    };
    let zones = setup.zones_as(token).await;
    let mut attempts = 0;
    loop {
        match zones.patch("ex", &params, &Patch::Merge(&patch)).await {
            Ok(z) => return Ok(z),
            Err(kube::Error::Api(s)) if s.code == 409 && attempts < 5 => attempts += 1,
            Err(kube::Error::Api(s)) => return Err((s.code, s.message)),
            Err(other) => panic!("expected an API error, got {other:?}"),
        }
    }
}

/// `kubectl -n dns ARGS` as `token`'s user: (success, stdout + stderr).
async fn kubectl_as(setup: &Setup, token: &str, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    setup
        .api
        .write_kubeconfig_with_token(&kubeconfig, token)
        .unwrap();
    let mut cmd = std::process::Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["-n", NS])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("kubectl is installed"))
        .await
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn records(www: &str, extra: Value) -> Value {
    let mut r = vec![json!({"name": "www", "type": "A", "data": [www]})];
    r.extend(extra.as_array().cloned().unwrap_or_default());
    Value::Array(r)
}

fn acl(bob_write: bool) -> Value {
    let mut rules = vec![json!({"accessLevel": "Write", "subjects": ["group:devs"],
                                "recordMask": "^www", "recordTypes": ["A", "AAAA"]})];
    if !bob_write {
        rules.clear();
    }
    json!({"rules": rules})
}

fn denied_by_acl(result: Result<DnsZone, (u16, String)>, needle: &str) -> String {
    match result {
        Ok(_) => panic!("allowed; expected a denial mentioning {needle:?}"),
        Err((code, msg)) => {
            assert_eq!(code, 403, "{msg}");
            assert!(
                msg.starts_with("admission webhook \"acl.dns.zonekeeper.io\" denied the request: "),
                "{msg}"
            );
            assert!(msg.contains(needle), "{msg}");
            msg
        }
    }
}

fn generation(z: &DnsZone) -> i64 {
    z.metadata.generation.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_decides_edits_and_history_names_the_real_user() {
    let setup = setup().await;
    let op = setup.start_operator().await;
    setup.wait_configured().await;

    // alice (dns-admins) creates the zone; bob may Write www A/AAAA.
    let mut m = zone_manifest("ex", &setup.server, records("192.0.2.1", json!([])));
    m["spec"]["adminGroup"] = json!("dns-admins");
    m["spec"]["acl"] = acl(true);
    m["metadata"]["annotations"] = json!({REQUESTED_BY: "mallory"});
    let created = setup
        .zones_as("alice")
        .await
        .create(&PostParams::default(), &serde_json::from_value(m).unwrap())
        .await
        .unwrap();
    let a = created.metadata.annotations.clone().unwrap();
    assert_eq!(
        a[REQUESTED_BY], "alice",
        "the webhook overwrote the forged value"
    );
    assert_eq!(
        a["dns.zonekeeper.io/requested-by-groups"],
        "dns-admins,system:authenticated"
    );
    setup.wait_zone(is_ready).await;
    assert_eq!(setup.dig("www", "A"), "192.0.2.1");

    // bob changes www, forging alice as the requester: allowed, stamped bob, history bob.
    let z = patch_as(
        &setup,
        "bob",
        json!({"metadata": {"annotations": {REQUESTED_BY: "alice"}},
               "spec": {"records": records("192.0.2.2", json!([]))}}),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        z.metadata.annotations.as_ref().unwrap()[REQUESTED_BY],
        "bob"
    );
    let gen_ = generation(&z);
    let z = setup
        .wait_zone(|z| is_ready(z) && generation(z) == gen_)
        .await;
    assert_eq!(setup.dig("www", "A"), "192.0.2.2");
    let history = z.status.unwrap().history;
    assert_eq!(
        history.first().and_then(|h| h.user_id.as_deref()),
        Some("bob"),
        "{history:?}"
    );

    // bob deletes www: needs Delete. The same answer for a server-side dry run.
    let msg = denied_by_acl(
        patch_as(&setup, "bob", json!({"spec": {"records": []}}), false).await,
        "bob (groups devs)",
    );
    assert!(msg.contains("Delete"), "{msg}");
    let dry = denied_by_acl(
        patch_as(&setup, "bob", json!({"spec": {"records": []}}), true).await,
        "bob (groups devs)",
    );
    assert_eq!(dry, msg);
    let (ok, out) = kubectl_as(
        &setup,
        "bob",
        &[
            "patch",
            "dnszone",
            "ex",
            "--type",
            "merge",
            "--dry-run=server",
            "-p",
            r#"{"spec":{"records":[]}}"#,
        ],
    )
    .await;
    assert!(!ok, "kubectl dry run allowed: {out}");
    assert_eq!(out.trim(), format!("Error from server (Forbidden): {msg}"));

    // bob adds an MX: no rule grants it.
    denied_by_acl(
        patch_as(
            &setup,
            "bob",
            json!({"spec": {"records": records("192.0.2.2",
                json!([{"name": "@", "type": "MX", "data": ["10 mail.example.com."]}]))}}),
            false,
        )
        .await,
        "MX",
    );
    // carol has no rule at all.
    denied_by_acl(
        patch_as(
            &setup,
            "carol",
            json!({"spec": {"records": records("192.0.2.3", json!([]))}}),
            false,
        )
        .await,
        "carol",
    );
    // The ACL is the admins' own: bob may not widen it, alice may change it.
    denied_by_acl(
        patch_as(
            &setup,
            "bob",
            json!({"spec": {"acl": {"rules": [
            {"accessLevel": "Delete", "subjects": ["group:devs"]}]}}}),
            false,
        )
        .await,
        "bob",
    );
    patch_as(&setup, "alice", json!({"spec": {"acl": acl(false)}}), false)
        .await
        .unwrap();
    // A ZoneSync needs a zone admin.
    let sync = |name: &str| -> ZoneSync {
        serde_json::from_value(
            json!({"apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "ZoneSync",
            "metadata": {"name": name, "namespace": NS}, "spec": {"zoneRef": {"name": "ex"}}}),
        )
        .unwrap()
    };
    let bob_syncs = Api::<ZoneSync>::namespaced(setup.api.client_with_token("bob").await, NS);
    let alice_syncs = Api::<ZoneSync>::namespaced(setup.api.client_with_token("alice").await, NS);
    let err = bob_syncs
        .create(&PostParams::default(), &sync("by-bob"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403 && s.message.contains("acl.dns.zonekeeper.io")),
        "{err:?}"
    );
    alice_syncs
        .create(&PostParams::default(), &sync("by-alice"))
        .await
        .unwrap();

    // Webhook down (failurePolicy Fail): the edit is refused by the API server, nothing moves.
    op.stop().await;
    let before = setup.wait_zone(|_| true).await;
    let (code, msg) = patch_as(
        &setup,
        "alice",
        json!({"spec": {"records": records("192.0.2.9", json!([]))}}),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(code, 500, "{msg}");
    assert!(
        msg.contains("failed calling webhook \"requested-by.dns.zonekeeper.io\""),
        "{msg}"
    );
    let after = setup.wait_zone(|_| true).await;
    assert_eq!(generation(&after), generation(&before));
    assert_eq!(after.spec.records, before.spec.records);
    assert_eq!(setup.dig("www", "A"), "192.0.2.2");

    // Back up (the same certificate from the Secret): edits pass again.
    let op = setup.start_operator().await;
    let z = patch_as(
        &setup,
        "alice",
        json!({"spec": {"records": records("192.0.2.9", json!([]))}}),
        false,
    )
    .await
    .unwrap();
    let gen_ = generation(&z);
    setup
        .wait_zone(|z| is_ready(z) && generation(z) == gen_)
        .await;
    assert_eq!(setup.dig("www", "A"), "192.0.2.9");
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_shared_zone_records_belong_to_their_creators_group() {
    let setup = setup().await;
    let op = setup.start_operator().await;
    setup.wait_configured().await;
    let mut m = zone_manifest("ex", &setup.server, json!([]));
    m["spec"]["adminGroup"] = json!("dns-admins");
    m["spec"]["shared"] = json!(true);
    setup
        .zones_as("alice")
        .await
        .create(&PostParams::default(), &serde_json::from_value(m).unwrap())
        .await
        .unwrap();
    setup.wait_zone(is_ready).await;

    let api = |ip: &str| json!({"spec": {"records": [{"name": "api", "type": "A", "data": [ip]}]}});
    let z = patch_as(&setup, "bob", api("192.0.2.20"), false)
        .await
        .unwrap();
    assert_eq!(z.spec.records[0].owner_group.as_deref(), Some("devs"));
    let owned = |ip: &str| json!({"spec": {"records": [{"name": "api", "type": "A", "data": [ip], "ownerGroup": "devs"}]}});
    denied_by_acl(
        patch_as(&setup, "dave", owned("192.0.2.21"), false).await,
        "dave (groups ops)",
    );
    let z = patch_as(&setup, "alice", owned("192.0.2.22"), false)
        .await
        .unwrap();
    let gen_ = generation(&z);
    setup
        .wait_zone(|z| is_ready(z) && generation(z) == gen_)
        .await;
    assert_eq!(setup.dig("api", "A"), "192.0.2.22");

    // The operator's own ServiceAccount (--webhook-trusted-user) starts syncs for any zone
    // and names itself, as the scheduled drift check does.
    let sync: ZoneSync = serde_json::from_value(json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "ZoneSync",
        "metadata": {"name": "drift", "namespace": NS, "annotations": {REQUESTED_BY: "zonekeeper"}},
        "spec": {"zoneRef": {"name": "ex"}}}))
    .unwrap();
    let created = Api::<ZoneSync>::namespaced(setup.operator.clone(), NS)
        .create(&PostParams::default(), &sync)
        .await
        .unwrap();
    assert_eq!(
        created.metadata.annotations.unwrap()[REQUESTED_BY],
        "zonekeeper"
    );
    op.stop().await;
}
