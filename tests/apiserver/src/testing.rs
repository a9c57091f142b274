//! Test support: an admission webhook to configure on the server, whose answers a test
//! decides and whose reviews it reads back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use base64::Engine;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// What the [`TestWebhook`] answers to one AdmissionReview.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Allow,
    /// `allowed: false` with this `status.message` (and `status.code` when given).
    Deny {
        message: String,
        code: Option<u16>,
    },
    /// Allowed, with this RFC 6902 JSON patch (an array of operations) to apply.
    Patch(Value),
}

impl Answer {
    pub fn deny(message: impl Into<String>) -> Answer {
        Answer::Deny {
            message: message.into(),
            code: None,
        }
    }
}

type Decide = dyn Fn(&Value) -> Answer + Send + Sync;

/// An admission webhook serving HTTPS on 127.0.0.1 with a certificate of its own CA. It
/// records the `request` of every AdmissionReview it gets and answers it with the closure
/// it was started with. Stops when dropped, or with [`TestWebhook::stop`].
pub struct TestWebhook {
    addr: SocketAddr,
    ca_pem: Vec<u8>,
    reviews: Arc<Mutex<Vec<Value>>>,
    task: Option<JoinHandle<()>>,
}

impl TestWebhook {
    /// Serves on an ephemeral port; the certificate names `127.0.0.1` and `localhost`.
    pub async fn start(decide: impl Fn(&Value) -> Answer + Send + Sync + 'static) -> TestWebhook {
        Self::start_with_names(&[], Arc::new(decide)).await
    }

    /// As [`Self::start`], with `<name>.<namespace>.svc` in the certificate too, for a
    /// configuration's `clientConfig.service` (see `TestApiServer::map_service`).
    pub async fn start_for_service(
        namespace: &str,
        name: &str,
        decide: impl Fn(&Value) -> Answer + Send + Sync + 'static,
    ) -> TestWebhook {
        Self::start_with_names(&[format!("{name}.{namespace}.svc")], Arc::new(decide)).await
    }

    async fn start_with_names(names: &[String], decide: Arc<Decide>) -> TestWebhook {
        let identity = match crate::tls::self_signed_for(names) {
            Ok(i) => i,
            Err(e) => panic!("test webhook certificate: {e}"),
        };
        let tcp = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("test webhook listener: {e}"),
        };
        let addr = match tcp.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("test webhook address: {e}"),
        };
        let listener = match crate::tls::TlsListener::new(tcp, identity.config) {
            Ok(l) => l,
            Err(e) => panic!("test webhook TLS: {e}"),
        };
        let reviews = Arc::new(Mutex::new(Vec::new()));
        let seen = reviews.clone();
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let (seen, decide) = (seen.clone(), decide.clone());
            async move { answer(&body, &seen, decide.as_ref()) }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestWebhook {
            addr,
            ca_pem: identity.ca_pem,
            reviews,
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The CA certificate as a configuration's `caBundle` (base64 of the PEM).
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    /// `clientConfig` reaching this webhook at `path` by URL.
    pub fn client_config(&self, path: &str) -> Value {
        json!({"url": self.url(path), "caBundle": self.ca_bundle()})
    }

    /// The `request` of every AdmissionReview received, oldest first.
    pub fn reviews(&self) -> Vec<Value> {
        self.reviews
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Closes the port: calls to the webhook now fail (connection refused).
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for TestWebhook {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer(body: &[u8], seen: &Mutex<Vec<Value>>, decide: &Decide) -> Response<Body> {
    let review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let request = review["request"].clone();
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request.clone());
    let mut response = json!({"uid": request["uid"], "allowed": true});
    match decide(&request) {
        Answer::Allow => {}
        Answer::Deny { message, code } => {
            response["allowed"] = json!(false);
            response["status"] = json!({"message": message});
            if let Some(c) = code {
                response["status"]["code"] = json!(c);
            }
        }
        Answer::Patch(ops) => {
            response["patchType"] = json!("JSONPatch");
            response["patch"] =
                json!(base64::engine::general_purpose::STANDARD.encode(ops.to_string()));
        }
    }
    let out = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    let mut r = Response::new(Body::from(out.to_string()));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}
