//! A test Kubernetes API server for zonekeeper's tests.
//!
//! No real kube-apiserver can run on the machines this project is built on, so the operator's
//! Kubernetes behaviour is tested against this one: the real `kube::Client`, the real
//! kube-runtime `Controller`/`watcher` and the real `kubectl` talk HTTP to it. It is faithful
//! where the operator and its users depend on it (see README.md for what it does not do).
//!
//! ```no_run
//! # async fn demo() {
//! let server = zk_apiserver::TestApiServer::start().await;
//! server.install_crds(&zonekeeper::api::crd::crds()).await;
//! let client = server.client().await;
//! # let _ = client;
//! # }
//! ```

mod auth;
mod fields;
mod protobuf;
mod resources;
mod server;
mod store;
mod table;
pub mod testing;
mod tls;
mod webhooks;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use tokio::task::JoinHandle;

pub use auth::{TokenFileError, TokenUser, parse_token_file};
use server::Inner;
use store::WriteOpts;

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: String,
    /// The URL path, e.g. `/apis/dns.zonekeeper.io/v1alpha1/namespaces/default/dnszones/a`.
    pub path: String,
    /// The raw query string, empty when there is none.
    pub query: String,
    /// The HTTP status answered (200 for a watch that was opened).
    pub status: u16,
    /// Who asked. With authentication on ([`Options::tokens`] or [`Options::rbac`]): the
    /// user the request acted as (after impersonation; `system:anonymous` without a token).
    /// Otherwise the `Impersonate-User` header (kube's `auth_info.impersonate`), empty when
    /// absent. Lets a test tell the operator's requests from its own.
    pub user: String,
}

impl RequestRecord {
    /// A request that changes state (POST, PUT, PATCH, DELETE).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// An injected failure: the next `remaining` requests under `path_prefix` fail.
#[derive(Clone, Debug)]
pub(crate) struct Fault {
    /// Only requests of this method (`GET`, `PATCH`, …) fail; any method when `None`.
    pub method: Option<String>,
    pub path_prefix: String,
    /// Matching requests let through before the failures start.
    pub skip: usize,
    pub remaining: usize,
    pub status: u16,
    pub retry_after: Option<u32>,
}

/// How a server authenticates and authorizes. The default allows every request, as before.
#[derive(Clone, Debug)]
pub struct Options {
    /// Bearer tokens and their users (kube-apiserver's `--token-auth-file`, see
    /// [`parse_token_file`]). Non-empty turns authentication on: an unknown token is 401.
    pub tokens: Vec<TokenUser>,
    /// `--authorization-mode=RBAC`: requests are checked against the stored Roles,
    /// ClusterRoles and bindings (bootstrapped with `cluster-admin` for `system:masters`,
    /// discovery and self-reviews for everyone authenticated).
    pub rbac: bool,
    /// A request without a token is `system:anonymous` (true, as kube-apiserver's default)
    /// or 401 (false).
    pub anonymous: bool,
    /// Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 (which the clients and
    /// kubeconfigs from this server trust). kubectl sends tokens and impersonation headers
    /// only over TLS. Needs the `openssl` command.
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tokens: Vec::new(),
            rbac: false,
            anonymous: true,
            tls: false,
        }
    }
}

/// A running test API server. It stops when dropped.
pub struct TestApiServer {
    addr: SocketAddr,
    /// The certificate served (PEM), when serving HTTPS.
    ca_pem: Option<Vec<u8>>,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl TestApiServer {
    /// Starts a server on `127.0.0.1` with an ephemeral port, in this process.
    pub async fn start() -> TestApiServer {
        match Self::start_on("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!())).await {
            Ok(s) => s,
            // A test cannot do anything useful without its server.
            Err(e) => panic!("test API server cannot listen on 127.0.0.1: {e}"),
        }
    }

    /// Starts a server on an ephemeral port of `127.0.0.1` that authenticates and authorizes
    /// as `options` say.
    pub async fn start_with(options: Options) -> TestApiServer {
        let addr = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        match Self::start_on_with(addr, options).await {
            Ok(s) => s,
            Err(e) => panic!("test API server cannot listen on 127.0.0.1: {e}"),
        }
    }

    /// Starts a server on `addr`.
    pub async fn start_on(addr: SocketAddr) -> io::Result<TestApiServer> {
        Self::start_on_with(addr, Options::default()).await
    }

    /// Starts a server on `addr` with `options`.
    pub async fn start_on_with(addr: SocketAddr, options: Options) -> io::Result<TestApiServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let auth = auth::AuthConfig {
            enabled: !options.tokens.is_empty(),
            tokens: options
                .tokens
                .iter()
                .map(|t| (t.token.clone(), t.clone()))
                .collect(),
            anonymous: options.anonymous,
            rbac: options.rbac,
        };
        let inner = Inner::new(auth);
        let shared = inner.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let inner = shared.clone();
            async move { server::handle(inner, req).await }
        });
        let (task, ca_pem) = if options.tls {
            let identity = tls::self_signed()?;
            let listener = tls::TlsListener::new(listener, identity.config)?;
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            (task, Some(identity.ca_pem))
        } else {
            let task = tokio::spawn(async move {
                // serve only returns on a listener error, which ends the server.
                let _ = axum::serve(listener, app).await;
            });
            (task, None)
        };
        Ok(TestApiServer {
            addr,
            ca_pem,
            inner,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://` with [`Options::tls`].
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA certificate (PEM) that signed the server's, with [`Options::tls`].
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// A `kube::Client` for this server without credentials, default namespace `default`.
    pub async fn client(&self) -> kube::Client {
        let config = if self.ca_pem.is_some() {
            // The kubeconfig carries the certificate to trust.
            let text = kubeconfig_for(&self.url(), self.ca_pem(), None);
            config_from(&text).await
        } else {
            let uri = match self.url().parse() {
                Ok(u) => u,
                Err(e) => panic!("server URL does not parse: {e}"),
            };
            kube::Config::new(uri)
        };
        match kube::Client::try_from(config) {
            Ok(c) => c,
            Err(e) => panic!("kube client for the test API server: {e}"),
        }
    }

    /// A `kube::Client` that sends `token` as its bearer token, default namespace `default`.
    pub async fn client_with_token(&self, token: &str) -> kube::Client {
        let config = self.config_with_token(token).await;
        match kube::Client::try_from(config) {
            Ok(c) => c,
            Err(e) => panic!("kube client for the test API server: {e}"),
        }
    }

    /// The `kube::Config` of [`Self::client_with_token`], to add impersonation and the like.
    pub async fn config_with_token(&self, token: &str) -> kube::Config {
        config_from(&kubeconfig_for(&self.url(), self.ca_pem(), Some(token))).await
    }

    /// Writes a kubeconfig (context `zk-test`, namespace `default`) for kubectl or zonekeeper.
    pub fn write_kubeconfig(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, kubeconfig_for(&self.url(), self.ca_pem(), None))
    }

    /// Writes a kubeconfig whose user sends `token` as bearer token.
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) -> io::Result<()> {
        std::fs::write(
            path,
            kubeconfig_for(&self.url(), self.ca_pem(), Some(token)),
        )
    }

    /// Creates or replaces CRDs, as `kubectl apply -f crds/` does. Their kinds are served at once.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) {
        let mut state = self.inner.lock();
        let Some(rt) = state
            .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .cloned()
        else {
            return;
        };
        for crd in crds {
            let Ok(obj) = serde_json::to_value(crd) else {
                continue;
            };
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut opts = WriteOpts {
                manager: "zk-apiserver".into(),
                ..WriteOpts::default()
            };
            let result = match state.get(&rt, "", &name) {
                Ok(old) => {
                    let mut new = obj.clone();
                    new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
                    state.update(&rt, "", &name, new, "", &mut opts)
                }
                Err(_) => state.create(&rt, "", obj, &mut opts, None),
            };
            if let Err(e) = result {
                panic!("installing CRD {name}: {}", e.message);
            }
        }
    }

    /// Routes webhooks whose `clientConfig.service` is `namespace/name` to `addr` (a
    /// [`testing::TestWebhook`]), as a cluster's Service would; the TLS name checked is
    /// still `<name>.<namespace>.svc`.
    pub fn map_service(&self, namespace: &str, name: &str, addr: SocketAddr) {
        self.inner
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((namespace.to_string(), name.to_string()), addr);
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn reset_requests(&self) {
        self.inner.lock().requests.clear();
    }

    /// The next `n` requests whose path starts with `path_prefix` fail with `status`
    /// (and a `Retry-After` header when given), before reaching the store.
    pub fn fail_next(&self, path_prefix: &str, n: usize, status: u16, retry_after: Option<u32>) {
        self.inner.lock().faults.push(Fault {
            method: None,
            path_prefix: path_prefix.into(),
            skip: 0,
            remaining: n,
            status,
            retry_after,
        });
    }

    /// As [`Self::fail_next`], for requests of `method` only (`PATCH` of a status, not the
    /// `GET`s of the same path).
    pub fn fail_next_method(
        &self,
        method: &str,
        path_prefix: &str,
        n: usize,
        status: u16,
        retry_after: Option<u32>,
    ) {
        self.inner.lock().faults.push(Fault {
            method: Some(method.to_ascii_uppercase()),
            path_prefix: path_prefix.into(),
            skip: 0,
            remaining: n,
            status,
            retry_after,
        });
    }

    /// As [`Self::fail_next_method`], after letting the first `skip` matching requests
    /// through: a test can fail the second status write of an object that does not exist
    /// yet, without racing the controller to see the first.
    pub fn fail_method_after(
        &self,
        method: &str,
        path_prefix: &str,
        skip: usize,
        n: usize,
        status: u16,
    ) {
        self.inner.lock().faults.push(Fault {
            method: Some(method.to_ascii_uppercase()),
            path_prefix: path_prefix.into(),
            skip,
            remaining: n,
            status,
            retry_after: None,
        });
    }

    /// Ends every open watch, as an API server restart or a load balancer timeout does.
    pub fn drop_watches(&self) {
        self.inner.drop_watches.send_modify(|n| *n += 1);
    }

    /// Compacts history: a watch or list continuation from any resourceVersion older than
    /// now gets `410 Gone` (an ERROR event with code 410 for a watch, like a real server).
    /// Open watches are not affected; pair it with [`Self::drop_watches`].
    pub fn expire_resource_versions(&self) {
        self.inner.lock().expire();
    }

    /// Prints every request (method, path, query, status) to stderr when `on`.
    pub fn log_requests(&self, on: bool) {
        self.inner
            .log_requests
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.lock().rv
    }

    /// A stored object as JSON (`group` empty for core), bypassing HTTP.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = self.inner.lock();
        let rt = state
            .types
            .iter()
            .find(|t| t.group == group && t.plural == plural)?;
        state
            .objects
            .get(&rt.key())?
            .get(&(namespace.to_string(), name.to_string()))
            .map(|o| store::present(rt, o))
    }

    /// Every stored object of a kind (`group` empty for core), bypassing HTTP, in the form
    /// that group serves (both Event kinds share one store).
    /// How many stored objects of a type `pred` holds for, read in place: a benchmark polling
    /// 10,000 objects must not copy them all (nor hold the lock that long) every round.
    /// Objects as stored: core types' `apiVersion` without the `core/` prefix is not restored.
    pub fn count_objects(&self, group: &str, plural: &str, pred: impl Fn(&Value) -> bool) -> usize {
        let state = self.inner.lock();
        let Some(rt) = state
            .types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
        else {
            return 0;
        };
        state
            .objects
            .get(&rt.key())
            .map_or(0, |m| m.values().filter(|o| pred(o)).count())
    }

    /// Waits until `pred` holds at once for every object of a type named in `keys`
    /// ((namespace, name)), or until `deadline`; true if it did. Woken by the store's own change
    /// events, as a watch is, instead of re-reading the objects on a timer: a benchmark waiting
    /// for 10,000 objects that re-read the pending ones every 100 ms spent a quarter of its
    /// process's CPU doing so (under the lock every request waits for), and knew the moment
    /// the last one was done only to within 100 ms. Now the answer comes within the time it
    /// takes this task to be scheduled after the write that completes it.
    pub async fn wait_all(
        &self,
        group: &str,
        plural: &str,
        keys: &[(String, String)],
        pred: impl Fn(&Value) -> bool,
        deadline: std::time::Duration,
    ) -> bool {
        use std::collections::HashSet;
        use tokio::sync::broadcast::error::RecvError;
        let end = tokio::time::Instant::now() + deadline;
        let wanted: HashSet<&(String, String)> = keys.iter().collect();
        let mut pending: HashSet<(String, String)> = HashSet::new();
        // Every object looked at again from the store: at the start, and after this task fell
        // behind the change events (some were dropped for it).
        let rescan = |pending: &mut HashSet<(String, String)>| {
            let state = self.inner.lock();
            let kind = state
                .types
                .iter()
                .find(|t| t.group == group && t.plural == plural)
                .map(|rt| rt.key());
            let objects = kind.as_ref().and_then(|k| state.objects.get(k));
            pending.clear();
            pending.extend(
                keys.iter()
                    .filter(|k| !objects.and_then(|o| o.get(*k)).is_some_and(&pred))
                    .cloned(),
            );
            // Subscribed under the same lock: no change falls between the scan and the events.
            (kind, state.events.subscribe())
        };
        let (mut kind, mut events) = rescan(&mut pending);
        while !pending.is_empty() {
            let event = match tokio::time::timeout_at(end, events.recv()).await {
                Err(_) => return false,
                Ok(Err(RecvError::Closed)) => return false,
                Ok(Err(RecvError::Lagged(_))) => {
                    (kind, events) = rescan(&mut pending);
                    continue;
                }
                Ok(Ok(event)) => event,
            };
            if kind.as_deref() != Some(event.key.as_str()) {
                // The kind may be installed after the wait began.
                if kind.is_none() {
                    (kind, events) = rescan(&mut pending);
                }
                continue;
            }
            let key = (
                event.namespace.clone(),
                store::name_of(&event.object).to_string(),
            );
            if !wanted.contains(&key) {
                continue;
            }
            if event.type_ != "DELETED" && pred(&event.object) {
                pending.remove(&key);
            } else {
                pending.insert(key);
            }
        }
        true
    }

    /// The number of requests answered so far, and how many of them were writes.
    pub fn request_counts(&self) -> (usize, usize) {
        let state = self.inner.lock();
        let writes = state.requests.iter().filter(|r| r.is_write()).count();
        (state.requests.len(), writes)
    }

    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        let state = self.inner.lock();
        let Some(rt) = state
            .types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
        else {
            return Vec::new();
        };
        state
            .objects
            .get(&rt.key())
            .map(|m| m.values().map(|o| store::present(rt, o)).collect())
            .unwrap_or_default()
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.drop_watches();
        self.task.abort();
    }
}

async fn config_from(kubeconfig: &str) -> kube::Config {
    let kc = match kube::config::Kubeconfig::from_yaml(kubeconfig) {
        Ok(k) => k,
        Err(e) => panic!("kubeconfig for the test API server: {e}"),
    };
    match kube::Config::from_custom_kubeconfig(kc, &Default::default()).await {
        Ok(c) => c,
        Err(e) => panic!("kube config for the test API server: {e}"),
    }
}

/// A kubeconfig pointing at `url`, trusting `ca_pem` and sending `token` when given.
pub fn kubeconfig_for(url: &str, ca_pem: Option<&[u8]>, token: Option<&str>) -> String {
    use base64::Engine;
    let mut text = kubeconfig(url);
    if let Some(ca) = ca_pem {
        let data = base64::engine::general_purpose::STANDARD.encode(ca);
        text = text.replace(
            &format!("    server: {url}\n"),
            &format!("    server: {url}\n    certificate-authority-data: {data}\n"),
        );
    }
    if let Some(token) = token {
        text = text.replace(
            "  user: {}\n",
            &format!("  user:\n    token: {}\n", serde_json::json!(token)),
        );
    }
    text
}

/// A kubeconfig pointing at `url` with no credentials.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: zk-test
  cluster:
    server: {url}
contexts:
- name: zk-test
  context:
    cluster: zk-test
    user: zk-test
    namespace: default
current-context: zk-test
preferences: {{}}
users:
- name: zk-test
  user: {{}}
"
    )
}
