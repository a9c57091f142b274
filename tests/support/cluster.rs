//! A whole operator under test: the in-repo test API server with our CRDs installed, and
//! `zonekeeper run`'s engine (`controller::operator::run`) started in-process against it.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_apiserver::TestApiServer;
use zonekeeper::api::{DnsZone, ZoneSync};
use zonekeeper::controller::context::Settings;
use zonekeeper::controller::operator::{self, LeaderOptions, OperatorError, OperatorOptions};

use super::dns_servers::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneContent};

pub const NS: &str = "dns";

/// One operator instance.
pub struct Operator {
    pub shutdown: watch::Sender<bool>,
    pub task: JoinHandle<Result<(), OperatorError>>,
    pub metrics_addr: SocketAddr,
    pub leader: watch::Receiver<bool>,
    pub metrics: std::sync::Arc<zonekeeper::telemetry::Metrics>,
}

impl Operator {
    /// Stops it gracefully and waits.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }

    /// Kills it as a crash would: no lease release, no graceful end.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Test API server + client.
pub struct Cluster {
    pub api: TestApiServer,
    /// An administrator's client (`system:masters` when RBAC is enforced).
    pub client: Client,
    /// With [`Cluster::start_with_chart_rbac`]: the chart ServiceAccount's client, which
    /// operators started by [`Cluster::operator`] use.
    pub operator_client: Option<Client>,
    /// The namespaces operators watch (empty: all).
    pub watch_namespaces: Vec<String>,
    /// The administrator's config under RBAC (for impersonating clients).
    admin_config: Option<kube::Config>,
}

/// Bearer tokens of a [`Cluster::start_with_chart_rbac`] cluster.
pub const ADMIN_TOKEN: &str = "admin-token";
pub const OPERATOR_TOKEN: &str = "operator-token";
/// User `reader`, bound to nothing by the chart.
pub const READER_TOKEN: &str = "reader-token";

fn helm_binary() -> std::path::PathBuf {
    let tools = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/bin/helm");
    if std::path::Path::new(tools).exists() {
        tools.into()
    } else {
        "helm".into()
    }
}

/// `helm template` of the chart with release namespace [`NS`], as the objects it renders.
pub fn render_chart(extra_args: &[&str]) -> Vec<Value> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/zonekeeper");
    let out = std::process::Command::new(helm_binary())
        .args(["template", "zonekeeper", chart, "--namespace", NS])
        .args(extra_args)
        .output()
        .expect("helm not found: run the suite with `bash tests/run.sh`, which installs it");
    assert!(
        out.status.success(),
        "helm template failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| v.is_object())
        .collect()
}

/// Creates `obj` (any kind the test API server serves) as `client`.
pub async fn create_object(client: &Client, obj: &Value) {
    let plural = match obj["kind"].as_str().unwrap() {
        "ServiceAccount" => "serviceaccounts",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "Namespace" => "namespaces",
        other => panic!("create_object: no plural for {other}"),
    };
    let obj: kube::api::DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    let types = obj.types.clone().unwrap();
    let (group, version) = types
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &types.api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &types.kind);
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<kube::api::DynamicObject> = match &obj.metadata.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("creating {} {:?}: {e}", types.kind, obj.metadata.name));
}

/// DnsZone `out` in namespace `dns`: a Primary of `example.com.` on `backend` (key in Secret
/// `backend-tsig`), no scheduled sync, served to `outgoing` (its `spec.outgoing`); `records`
/// as given.
pub fn outgoing_zone(backend: &DnsServer, records: Value, outgoing: Value) -> Value {
    json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "DnsZone",
        "metadata": {"name": "out", "namespace": NS},
        "spec": {
            "zoneName": "example.com.",
            "type": "Primary",
            "backend": {"server": backend.addr.to_string(), "tsigKeySecretRef": {"name": "backend-tsig"}, "timeout": "10s"},
            "records": records,
            "sync": {"interval": "1h", "minInterval": "0"},
            "outgoing": outgoing,
        }
    })
}

/// A BIND serving an empty `example.com.` (SOA and NS only), started off the async runtime.
pub async fn empty_bind() -> DnsServer {
    bind_serving("example.com.", &[]).await
}

/// A BIND serving `zone` with `records` (zone-file lines), started off the async runtime.
pub async fn bind_serving(zone: &str, records: &[&str]) -> DnsServer {
    let content = ZoneContent::new(zone, records.iter().map(|r| r.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        DnsServer::start(ServerKind::Bind, &content, ServerOptions::default())
    })
    .await
    .unwrap()
}

pub fn settings() -> Settings {
    Settings {
        cleanup_timeout: Duration::from_secs(3),
        idle_requeue: Duration::from_secs(600),
    }
}

impl Cluster {
    pub async fn start() -> Cluster {
        zonekeeper::telemetry::init_logging(zonekeeper::telemetry::LogFormat::Text);
        let api = TestApiServer::start().await;
        api.install_crds(&zonekeeper::api::crd::crds()).await;
        let client = api.client().await;
        let cluster = Cluster {
            api,
            client,
            operator_client: None,
            watch_namespaces: Vec::new(),
            admin_config: None,
        };
        cluster.namespace(NS).await;
        cluster
    }

    /// A cluster that enforces RBAC, with exactly the RBAC objects `helm template` renders for
    /// the chart (release namespace [`NS`]; `watch_namespaces` empty: cluster-wide mode), and
    /// operators that run as the chart's ServiceAccount. `client` is an administrator.
    pub async fn start_with_chart_rbac(watch_namespaces: &[&str]) -> Cluster {
        zonekeeper::telemetry::init_logging(zonekeeper::telemetry::LogFormat::Text);
        let mut args = vec![
            "--set".to_string(),
            "leaderElection.enabled=true".to_string(),
        ];
        if !watch_namespaces.is_empty() {
            args.push("--set-json".into());
            args.push(format!("watchNamespaces={}", json!(watch_namespaces)));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let rendered = render_chart(&args);
        let sa = rendered
            .iter()
            .find(|o| o["kind"] == "ServiceAccount")
            .expect("the chart renders a ServiceAccount");
        let sa_user = format!(
            "system:serviceaccount:{}:{}",
            sa["metadata"]["namespace"].as_str().unwrap_or(NS),
            sa["metadata"]["name"].as_str().unwrap()
        );
        let token = |token: &str, name: &str, groups: &[&str]| zk_apiserver::TokenUser {
            token: token.into(),
            name: name.into(),
            uid: format!("uid-{token}"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let api = TestApiServer::start_with(zk_apiserver::Options {
            tokens: vec![
                token(ADMIN_TOKEN, "admin", &["system:masters"]),
                token(OPERATOR_TOKEN, &sa_user, &[]),
                token(READER_TOKEN, "reader", &[]),
            ],
            rbac: true,
            ..Default::default()
        })
        .await;
        api.install_crds(&zonekeeper::api::crd::crds()).await;
        let admin_config = api.config_with_token(ADMIN_TOKEN).await;
        let client = Client::try_from(admin_config.clone()).unwrap();
        let operator_client = api.client_with_token(OPERATOR_TOKEN).await;
        let cluster = Cluster {
            api,
            client,
            operator_client: Some(operator_client),
            watch_namespaces: watch_namespaces.iter().map(|n| n.to_string()).collect(),
            admin_config: Some(admin_config),
        };
        cluster.namespace(NS).await;
        for ns in watch_namespaces {
            cluster.namespace(ns).await;
        }
        for obj in rendered.iter().filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "Role"
                        | "RoleBinding"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                )
            )
        }) {
            create_object(&cluster.client, obj).await;
        }
        cluster
    }

    /// Creates namespace `name` unless it exists.
    pub async fn namespace(&self, name: &str) {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        if namespaces.get_opt(name).await.unwrap().is_some() {
            return;
        }
        let ns = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    /// Starts an operator instance; with `lease` it takes part in leader election.
    pub async fn operator(&self, identity: &str, lease: Option<Duration>) -> Operator {
        let client = self.operator_client.as_ref().unwrap_or(&self.client);
        self.operator_with(identity, lease, client.clone()).await
    }

    /// A client whose requests the server records as made by `user` (it sends
    /// `Impersonate-User`, as `kubectl --as` does; as the administrator under RBAC).
    pub fn client_as(&self, user: &str) -> Client {
        let mut config = match &self.admin_config {
            Some(c) => c.clone(),
            None => kube::Config::new(self.api.url().parse().unwrap()),
        };
        config.auth_info.impersonate = Some(user.into());
        Client::try_from(config).unwrap()
    }

    /// A test API server holding `server`'s key as Secret `<zone>-tsig` (the one
    /// [`zone_manifest`] names), with one operator `zk-0` without leader election.
    pub async fn with_operator(zone: &str, server: &DnsServer) -> (Cluster, Operator) {
        let cluster = Cluster::start().await;
        cluster.secret(&format!("{zone}-tsig"), &server.key).await;
        let op = cluster.operator("zk-0", None).await;
        (cluster, op)
    }

    /// Starts an operator instance that talks through `client`.
    pub async fn operator_with(
        &self,
        identity: &str,
        lease: Option<Duration>,
        client: Client,
    ) -> Operator {
        self.operator_serving(identity, lease, client, None).await
    }

    /// Starts an operator instance whose transfer server listens on `transfer_addr`.
    pub async fn operator_serving(
        &self,
        identity: &str,
        lease: Option<Duration>,
        client: Client,
        transfer_addr: Option<SocketAddr>,
    ) -> Operator {
        let opts = OperatorOptions {
            namespaces: self.watch_namespaces.clone(),
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            concurrency: 16,
            leader: lease.map(|d| LeaderOptions {
                lease_name: "zonekeeper".into(),
                lease_namespace: NS.into(),
                lease_duration: d,
            }),
            settings: settings(),
            identity: identity.into(),
            transfer_addr,
            webhook: None,
        };
        let (shutdown, rx) = watch::channel(false);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            operator::run(client, opts, rx, move |running| {
                let _ = started_tx.send((
                    running.metrics_addr,
                    running.leader,
                    running.metrics.clone(),
                ));
            })
            .await
        });
        let (metrics_addr, leader, metrics) = started_rx.await.expect("operator started");
        Operator {
            shutdown,
            task,
            metrics_addr,
            leader,
            metrics,
        }
    }

    pub fn zones(&self) -> Api<DnsZone> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn syncs(&self) -> Api<ZoneSync> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Stores a TSIG key as the Secret layout zonekeeper reads.
    pub async fn secret(&self, name: &str, key: &TsigKey) {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), NS);
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "stringData": {"name": key.name, "algorithm": key.algorithm, "secret": key.secret_b64},
        }))
        .unwrap();
        api.patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
    }

    pub async fn config_map(&self, name: &str, key: &str, text: &str) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), NS);
        let cm: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS},
            "data": {key: text},
        }))
        .unwrap();
        api.patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
    }

    /// Applies a DnsZone manifest (server-side apply as kubectl would, manager `kubectl`).
    pub async fn apply_zone(&self, manifest: Value) -> DnsZone {
        let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
        self.zones()
            .patch(
                &name,
                &PatchParams::apply("kubectl").force(),
                &Patch::Apply(&manifest),
            )
            .await
            .unwrap_or_else(|e| panic!("apply {name}: {e}"))
    }

    /// Merge-patches a DnsZone's spec, as `kubectl patch --type merge` does.
    pub async fn patch_spec(&self, name: &str, spec: Value) {
        self.zones()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .unwrap_or_else(|e| panic!("patch {name}: {e}"));
    }

    pub async fn create_sync(&self, zone: &str, extra: Value) -> String {
        self.create_sync_with(
            zone,
            json!({"generateName": format!("{zone}-sync-")}),
            extra,
        )
        .await
    }

    /// As [`Cluster::create_sync`], named `name`: its paths are known before it exists.
    pub async fn create_named_sync(&self, zone: &str, name: &str, extra: Value) -> String {
        self.create_sync_with(zone, json!({"name": name}), extra)
            .await
    }

    async fn create_sync_with(&self, zone: &str, mut metadata: Value, extra: Value) -> String {
        let mut spec = json!({"zoneRef": {"name": zone}});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        metadata["namespace"] = json!(NS);
        let obj: ZoneSync = serde_json::from_value(json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "ZoneSync",
            "metadata": metadata,
            "spec": spec,
        }))
        .unwrap();
        let created = self
            .syncs()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
        created.metadata.name.unwrap()
    }

    /// Polls a DnsZone until `pred` holds; panics with its last status after `deadline`.
    pub async fn wait_zone(
        &self,
        name: &str,
        deadline: Duration,
        pred: impl Fn(&DnsZone) -> bool,
    ) -> DnsZone {
        let start = Instant::now();
        loop {
            let zone = self.zones().get_opt(name).await.unwrap();
            if let Some(z) = &zone
                && pred(z)
            {
                return z.clone();
            }
            if start.elapsed() > deadline {
                panic!(
                    "DnsZone {name}: condition not reached in {deadline:?}; last:\n{}",
                    serde_yaml::to_string(&zone).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_sync(
        &self,
        name: &str,
        deadline: Duration,
        pred: impl Fn(&ZoneSync) -> bool,
    ) -> ZoneSync {
        let start = Instant::now();
        loop {
            let sync = self.syncs().get_opt(name).await.unwrap();
            if let Some(s) = &sync
                && pred(s)
            {
                return s.clone();
            }
            if start.elapsed() > deadline {
                panic!(
                    "ZoneSync {name}: condition not reached in {deadline:?}; last:\n{}",
                    serde_yaml::to_string(&sync).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Events recorded for an object, as `reason: note` lines.
    pub fn events_for(&self, name: &str) -> Vec<String> {
        self.api
            .objects("events.k8s.io", "events")
            .into_iter()
            .filter(|e| e["regarding"]["name"] == name)
            .map(|e| {
                format!(
                    "{}: {}",
                    e["reason"].as_str().unwrap_or(""),
                    e["note"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

/// A condition's (status, reason) of a zone.
pub fn condition(zone: &DnsZone, type_: &str) -> Option<(String, String)> {
    zone.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

pub fn is_ready(zone: &DnsZone) -> bool {
    condition(zone, "Ready").is_some_and(|(s, _)| s == "True")
        && zone.status.as_ref().and_then(|s| s.observed_generation) == zone.metadata.generation
}

pub fn has_reason(zone: &DnsZone, type_: &str, reason: &str) -> bool {
    condition(zone, type_).is_some_and(|(_, r)| r == reason)
}

/// A DnsZone manifest for `server` with its key in Secret `name-tsig`.
pub fn zone_manifest(name: &str, server: &DnsServer, records: Value) -> Value {
    json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "DnsZone",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "zoneName": server.zone,
            "type": "Primary",
            "ttl": 300,
            "backend": {"server": server.addr.to_string(), "tsigKeySecretRef": {"name": format!("{name}-tsig")}, "timeout": "10s"},
            "records": records,
            "sync": {"interval": "1h", "minInterval": "0"},
        }
    })
}

/// `(status, body)` of a plain HTTP GET.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
