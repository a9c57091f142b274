//! Serving both webhooks over HTTPS (rustls): `POST /mutate` and `POST /validate`, one
//! AdmissionReview v1 each.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use kube::Api;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::review::{self, ZoneLookup};
use super::{MUTATE_PATH, VALIDATE_PATH, WebhookError, WebhookOptions, certs};
use crate::api::DnsZone;

/// AdmissionReviews carry the object twice (old and new); a DnsZone may be ~1.5 MiB.
const BODY_LIMIT: usize = 8 * 1024 * 1024;
/// How often the `caBundle` is checked: a `helm upgrade` resets it to the chart's empty one.
const INJECT_EVERY: Duration = Duration::from_secs(30);

/// rustls serving `cert_pem` (the chain) with `key_pem`, HTTP/1.1 only.
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, WebhookError> {
    let tls = |why: String| WebhookError::Tls(why);
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(format!("certificate PEM: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| tls(format!("key PEM: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections and hands out those whose TLS handshake succeeded; handshakes
/// run in their own tasks so a slow client does not hold up the API server's calls.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "webhook accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match acceptor.accept(stream).await {
                        Ok(tls) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "webhook TLS handshake failed")
                        }
                    }
                });
            }
        });
        Ok(TlsListener {
            rx,
            addr,
            accepting,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

#[derive(Clone)]
struct Shared {
    client: kube::Client,
    trusted: Arc<Vec<String>>,
}

/// The AdmissionReview as JSON; a review that cannot be serialized (never expected) is a
/// 500, which the API server reports as a failed webhook call.
fn reply(answer: AdmissionResponse) -> Response {
    match review_json(answer) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// kube-core serializes `response.patch` (Go `[]byte`) as an array of numbers; the API
/// sends and documents it as a base64 string, which is what every client expects.
fn review_json(answer: AdmissionResponse) -> Result<Vec<u8>, serde_json::Error> {
    let mut review = serde_json::to_value(answer.into_review())?;
    if let Some(patch) = review.pointer_mut("/response/patch")
        && let Some(bytes) = patch.as_array().map(|a| {
            a.iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Vec<u8>>()
        })
    {
        *patch = serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    serde_json::to_vec(&review)
}

/// The request of a review; the answer to send instead when there is none.
fn request_of(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, Box<AdmissionResponse>> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).map_err(|e| {
        Box::new(AdmissionResponse::invalid(format!(
            "not an AdmissionReview: {e}"
        )))
    })?;
    review
        .try_into()
        .map_err(|e| Box::new(AdmissionResponse::invalid(e)))
}

async fn mutate(State(s): State<Shared>, body: Bytes) -> Response {
    let req = match request_of(&body) {
        Ok(r) => r,
        Err(answer) => return reply(*answer),
    };
    reply(review::mutate(&req, &s.trusted))
}

async fn validate(State(s): State<Shared>, body: Bytes) -> Response {
    let req = match request_of(&body) {
        Ok(r) => r,
        Err(answer) => return reply(*answer),
    };
    let lookup = match review::zone_to_look_up(&req) {
        None => ZoneLookup::NotNeeded,
        Some(zone) => {
            let ns = req.namespace.clone().unwrap_or_default();
            let api: Api<DnsZone> = Api::namespaced(s.client.clone(), &ns);
            match api.get_opt(&zone).await {
                Ok(Some(z)) => ZoneLookup::Found(Box::new(z.spec)),
                Ok(None) => ZoneLookup::Missing,
                Err(e) => {
                    // Unknown ACL: refusing is the only answer that cannot let a non-admin through.
                    tracing::warn!(zone = %zone, namespace = %ns, error = %e,
                        "webhook cannot read the DnsZone of a ZoneSync");
                    let answer = AdmissionResponse::from(&req).deny(format!(
                        "cannot read DnsZone {ns}/{zone} to check its ACL: {e}"
                    ));
                    return reply(answer);
                }
            }
        }
    };
    let answer = review::validate(&req, lookup, &s.trusted);
    if !answer.allowed {
        tracing::info!(
            user = req.user_info.username.as_deref().unwrap_or_default(),
            namespace = req.namespace.as_deref().unwrap_or_default(),
            name = %req.name,
            kind = %req.kind.kind,
            reason = %answer.result.message,
            "admission denied"
        );
    }
    reply(answer)
}

/// The serving identity: the files of `--webhook-cert-dir`, or the Secret shared by all
/// replicas (made on first start) for the Service's names and the URL's host.
async fn identity(
    client: &kube::Client,
    opts: &WebhookOptions,
) -> Result<certs::Identity, WebhookError> {
    if let Some(dir) = &opts.cert_dir {
        return certs::read_dir(dir);
    }
    certs::shared(client, &opts.namespace, &opts.secret, &opts.names()).await
}

/// A started webhook server.
pub struct Started {
    pub addr: SocketAddr,
    /// Serves until dropped (aborted with the operator).
    pub serve: tokio::task::JoinHandle<()>,
    /// Keeps the `caBundle` (self-signed mode) and the `--webhook-url` written.
    pub inject: Option<tokio::task::JoinHandle<()>>,
}

/// Binds `opts.addr` and serves both webhooks; in self-signed mode also keeps the CA in
/// the webhook configurations.
pub async fn start(client: kube::Client, opts: &WebhookOptions) -> Result<Started, WebhookError> {
    let identity = identity(&client, opts).await?;
    let config = server_config(&identity.cert_pem, &identity.key_pem)?;
    let tcp = TcpListener::bind(opts.addr)
        .await
        .map_err(|source| WebhookError::Bind {
            addr: opts.addr,
            source,
        })?;
    let listener = TlsListener::new(tcp, config).map_err(|source| WebhookError::Bind {
        addr: opts.addr,
        source,
    })?;
    let addr = listener.addr;
    let shared = Shared {
        client: client.clone(),
        trusted: Arc::new(opts.trusted_users.clone()),
    };
    let app = axum::Router::new()
        .route(MUTATE_PATH, post(mutate))
        .route(VALIDATE_PATH, post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared);
    let serve = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "webhook server stopped");
        }
    });
    // With --webhook-cert-dir, cert-manager's CA injector owns `caBundle`: a CA read once at
    // start would fight its rotations.
    let ca = identity.ca_pem.filter(|_| opts.cert_dir.is_none());
    let inject = match (&ca, &opts.url) {
        (None, None) => None,
        _ => {
            let opts = opts.clone();
            Some(tokio::spawn(async move {
                loop {
                    if let Err(e) = certs::inject(
                        &client,
                        ca.as_deref(),
                        opts.url.as_deref(),
                        &opts.mutating_configuration,
                        &opts.validating_configuration,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "cannot write the webhook CA bundle; retrying");
                    }
                    tokio::time::sleep(INJECT_EVERY).await;
                }
            }))
        }
    };
    tracing::info!(%addr, "admission webhooks serving");
    Ok(Started {
        addr,
        serve,
        inject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_sent_as_base64() {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "X"},
                        "resource": {"group": "", "version": "v1", "resource": "xs"},
                        "operation": "CREATE", "userInfo": {}}}))
        .unwrap();
        let req: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
        let patch: json_patch::Patch =
            serde_json::from_str(r#"[{"op":"remove","path":"/a"}]"#).unwrap();
        let answer = AdmissionResponse::from(&req).with_patch(patch).unwrap();
        let body: serde_json::Value =
            serde_json::from_slice(&review_json(answer).unwrap()).unwrap();
        let sent = body["response"]["patch"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(sent)
            .unwrap();
        assert_eq!(decoded, br#"[{"op":"remove","path":"/a"}]"#);
        assert_eq!(body["response"]["patchType"], "JSONPatch");
    }

    /// `--webhook-cert-dir`: the files serve TLS, no Secret or configuration is touched (the
    /// client points nowhere), and a review sent over HTTPS is answered.
    #[tokio::test]
    async fn a_cert_dir_serves_reviews_over_https() {
        use rustls::pki_types::pem::PemObject;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let dir = tempfile::tempdir().unwrap();
        let id = certs::generate(&["127.0.0.1".into()]).unwrap();
        std::fs::write(dir.path().join("tls.crt"), &id.cert_pem).unwrap();
        std::fs::write(dir.path().join("tls.key"), &id.key_pem).unwrap();
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()))
                .unwrap();
        let opts = WebhookOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            cert_dir: Some(dir.path().to_path_buf()),
            url: None,
            namespace: "dns".into(),
            service: "zk".into(),
            secret: "unused".into(),
            mutating_configuration: "unused".into(),
            validating_configuration: "unused".into(),
            trusted_users: Vec::new(),
        };
        let started = start(client, &opts).await.unwrap();
        assert!(started.inject.is_none());

        let mut roots = rustls::RootCertStore::empty();
        let ca = id.ca_pem.unwrap();
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(started.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1",
                "kind": {"group": "dns.zonekeeper.io", "version": "v1alpha1", "kind": "ZoneSync"},
                "resource": {"group": "dns.zonekeeper.io", "version": "v1alpha1", "resource": "zonesyncs"},
                "name": "s", "namespace": "dns", "operation": "CREATE",
                "userInfo": {"username": "bob", "groups": ["devs"]},
                "object": {"metadata": {"name": "s"}, "spec": {"zoneRef": {"name": "z"}}}}})
        .to_string();
        let head = format!(
            "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(body.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let (_, json) = text.split_once("\r\n\r\n").unwrap();
        let answer: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(answer["response"]["uid"], "u1");
        assert_eq!(answer["response"]["allowed"], true);
        let patch = base64::engine::general_purpose::STANDARD
            .decode(answer["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: serde_json::Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(
            patch[0]["value"]["dns.zonekeeper.io/requested-by"], "bob",
            "{patch}"
        );
        started.serve.abort();
    }
}
