//! Admission webhooks: which configured webhooks a write matches, the AdmissionReview v1
//! exchange with each over HTTPS (trusting only its `caBundle`), and the verdicts turned
//! into the errors kube-apiserver answers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::UserInfo;
use crate::resources::ResourceType;
use crate::store::{ApiError, State};

pub(crate) const GROUP: &str = "admissionregistration.k8s.io";
const MUTATING: &str = "mutatingwebhookconfigurations";
const VALIDATING: &str = "validatingwebhookconfigurations";

/// Why one webhook could not be asked; becomes `failed calling webhook "<name>": ...`.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("failed to call webhook: Post \"{url}\": {why}")]
    Transport { url: String, why: String },
    #[error("received invalid webhook response: {0}")]
    Response(String),
    #[error("{0}")]
    Config(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    Mutating,
    Validating,
}

/// What a write looks like to webhook rules and reviews.
pub(crate) struct Attributes<'a> {
    pub rt: &'a ResourceType,
    pub sub: &'a str,
    pub ns: &'a str,
    pub name: &'a str,
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: &'a str,
    pub user: &'a UserInfo,
    pub dry_run: bool,
    pub options: Value,
}

/// One webhook of a configuration, as stored.
#[derive(Clone)]
pub(crate) struct Hook {
    pub name: String,
    spec: Value,
}

impl Hook {
    fn failure_ignored(&self) -> bool {
        self.spec["failurePolicy"].as_str() == Some("Ignore")
    }

    fn timeout(&self) -> Duration {
        let secs = self.spec["timeoutSeconds"]
            .as_u64()
            .unwrap_or(10)
            .clamp(1, 30);
        Duration::from_secs(secs)
    }
}

/// Whether any webhook is configured at all (the common case is not, and costs nothing).
pub(crate) fn any_configured(state: &State) -> bool {
    [MUTATING, VALIDATING].iter().any(|p| {
        state
            .objects
            .get(&format!("{GROUP}/{p}"))
            .is_some_and(|m| !m.is_empty())
    })
}

fn list_matches(list: &Value, value: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .any(|v| v == "*" || v == value)
}

fn resource_matches(list: &Value, plural: &str, sub: &str) -> bool {
    list.as_array().into_iter().flatten().any(|r| {
        let r = r.as_str().unwrap_or_default();
        if r == "*/*" {
            return true;
        }
        // `dnszones` or `*` name no subresource: `*/status` must be listed to see status.
        let (res, rsub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == plural) && (rsub == "*" || rsub == sub)
    })
}

fn rule_matches(rule: &Value, a: &Attributes) -> bool {
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Namespaced" => a.rt.namespaced,
        "Cluster" => !a.rt.namespaced,
        _ => true,
    };
    scope_ok
        && list_matches(&rule["operations"], a.operation)
        && list_matches(&rule["apiGroups"], &a.rt.group)
        && list_matches(&rule["apiVersions"], &a.rt.version)
        && resource_matches(&rule["resources"], &a.rt.plural, a.sub)
}

/// A metav1.LabelSelector against labels; an absent or empty selector matches everything.
fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let match_labels = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    match_labels
        && sel["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| {
                let key = e["key"].as_str().unwrap_or_default();
                let values: Vec<&str> = e["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                match e["operator"].as_str().unwrap_or_default() {
                    "In" => label(key).is_some_and(|v| values.contains(&v)),
                    "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                    "Exists" => label(key).is_some(),
                    "DoesNotExist" => label(key).is_none(),
                    _ => false,
                }
            })
}

/// The webhooks of one phase that this write matches, in the order kube-apiserver calls
/// them (configurations by name, webhooks in their order). `object`/`old` decide the
/// `objectSelector` (either may match).
pub(crate) fn matching(
    state: &State,
    phase: Phase,
    a: &Attributes,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Vec<Hook> {
    // Webhooks are never called for webhook configurations: they could lock themselves out.
    if a.rt.group == GROUP {
        return Vec::new();
    }
    let plural = match phase {
        Phase::Mutating => MUTATING,
        Phase::Validating => VALIDATING,
    };
    let Some(configs) = state.objects.get(&format!("{GROUP}/{plural}")) else {
        return Vec::new();
    };
    let ns_labels = if a.rt.group.is_empty() && a.rt.plural == "namespaces" {
        object.or(old).map(|o| o["metadata"]["labels"].clone())
    } else if a.rt.namespaced {
        state
            .objects
            .get("/namespaces")
            .and_then(|m| m.get(&(String::new(), a.ns.to_string())))
            .map(|n| n["metadata"]["labels"].clone())
    } else {
        None
    };
    let mut out = Vec::new();
    for config in configs.values() {
        for hook in config["webhooks"].as_array().into_iter().flatten() {
            if !hook["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| rule_matches(r, a))
            {
                continue;
            }
            if let Some(labels) = &ns_labels
                && !selector_matches(&hook["namespaceSelector"], labels)
            {
                continue;
            }
            let object_ok = [object, old]
                .iter()
                .flatten()
                .any(|o| selector_matches(&hook["objectSelector"], &o["metadata"]["labels"]))
                || (object.is_none() && old.is_none());
            if !object_ok {
                continue;
            }
            out.push(Hook {
                name: hook["name"].as_str().unwrap_or_default().to_string(),
                spec: hook.clone(),
            });
        }
    }
    out
}

/// admissionregistration/v1's validation of a Mutating/ValidatingWebhookConfiguration, as
/// (field path, message) pairs. v1 has no webhooks with side effects: `Some` and `Unknown`
/// were v1beta1's.
pub(crate) fn validate_configuration(config: &Value) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, hook) in config["webhooks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = |field: &str| format!("webhooks[{i}].{field}");
        let name = hook["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            errors.push((at("name"), "Required value".into()));
        } else if name.split('.').filter(|s| !s.is_empty()).count() < 3 {
            errors.push((
                at("name"),
                format!(
                    "Invalid value: \"{name}\": should be a domain with at least three segments separated by dots"
                ),
            ));
        } else if names.contains(&name) {
            errors.push((at("name"), format!("Duplicate value: \"{name}\"")));
        }
        names.push(name);
        match hook["sideEffects"].as_str() {
            Some("None" | "NoneOnDryRun") => {}
            None => errors.push((
                at("sideEffects"),
                "Required value: must specify one of None, NoneOnDryRun".into(),
            )),
            Some(other) => errors.push((
                at("sideEffects"),
                format!(
                    "Unsupported value: \"{other}\": supported values: \"None\", \"NoneOnDryRun\""
                ),
            )),
        }
        let versions = hook["admissionReviewVersions"].as_array();
        if versions.is_none_or(|v| v.is_empty()) {
            errors.push((
                at("admissionReviewVersions"),
                "Required value: must specify one of v1, v1beta1".into(),
            ));
        } else if !list_matches(&hook["admissionReviewVersions"], "v1") {
            // Only v1 reviews are sent: a webhook that cannot read them would fail anyway.
            errors.push((
                at("admissionReviewVersions"),
                "Invalid value: must include at least one of v1".into(),
            ));
        }
        if let Some(p) = hook["failurePolicy"].as_str()
            && !matches!(p, "Fail" | "Ignore")
        {
            errors.push((
                at("failurePolicy"),
                format!("Unsupported value: \"{p}\": supported values: \"Fail\", \"Ignore\""),
            ));
        }
        if let Some(t) = hook["timeoutSeconds"].as_i64()
            && !(1..=30).contains(&t)
        {
            errors.push((
                at("timeoutSeconds"),
                format!("Invalid value: {t}: the timeout value must be between 1 and 30 seconds"),
            ));
        }
        let cc = &hook["clientConfig"];
        match (cc["url"].as_str(), cc["service"].is_object()) {
            (Some(_), true) | (None, false) => errors.push((
                at("clientConfig"),
                "Required value: exactly one of url or service is required".into(),
            )),
            (Some(url), false) if !url.starts_with("https://") => errors.push((
                at("clientConfig.url"),
                format!("Invalid value: \"{url}\": 'https' is the only allowed URL scheme"),
            )),
            _ => {}
        }
    }
    errors
}

/// Test-only routing of `clientConfig.service` to local addresses.
pub(crate) type ServiceMap = HashMap<(String, String), SocketAddr>;

fn review(a: &Attributes, uid: &str, object: Option<&Value>, old: Option<&Value>) -> Value {
    let kind = json!({"group": a.rt.group, "version": a.rt.version, "kind": a.rt.kind});
    let resource = json!({"group": a.rt.group, "version": a.rt.version, "resource": a.rt.plural});
    let mut user = json!({"username": a.user.name, "groups": a.user.groups});
    if !a.user.uid.is_empty() {
        user["uid"] = json!(a.user.uid);
    }
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": a.name,
        "operation": a.operation,
        "userInfo": user,
        "object": object.cloned().unwrap_or(Value::Null),
        "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": a.dry_run,
        "options": a.options,
    });
    if !a.sub.is_empty() {
        request["subResource"] = json!(a.sub);
        request["requestSubResource"] = json!(a.sub);
    }
    if a.rt.namespaced {
        request["namespace"] = json!(a.ns);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// Where a webhook is reached: (URL as shown in errors, address to connect to, TLS name, path).
fn endpoint(
    hook: &Hook,
    services: &ServiceMap,
) -> Result<(String, SocketAddr, String, String), CallError> {
    let cc = &hook.spec["clientConfig"];
    let timeout = hook.timeout().as_secs();
    if let Some(url) = cc["url"].as_str() {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| CallError::Config(format!("webhook URL must be https: {url}")))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().unwrap_or(443)),
            None => (hostport, 443),
        };
        let ip = if host == "localhost" {
            "127.0.0.1"
        } else {
            host.trim_matches(['[', ']'])
        };
        let addr: SocketAddr = format!("{ip}:{port}")
            .parse()
            .or_else(|_| format!("[{ip}]:{port}").parse())
            .map_err(|_| CallError::Config(format!("webhook host must be an IP: {host}")))?;
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}timeout={timeout}s");
        return Ok((
            format!("https://{hostport}{path}"),
            addr,
            host.trim_matches(['[', ']']).to_string(),
            path,
        ));
    }
    let svc = &cc["service"];
    let (ns, name) = (
        svc["namespace"].as_str().unwrap_or_default(),
        svc["name"].as_str().unwrap_or_default(),
    );
    let port = svc["port"].as_u64().unwrap_or(443);
    let path = svc["path"].as_str().unwrap_or("/");
    let path = format!("{path}?timeout={timeout}s");
    let host = format!("{name}.{ns}.svc");
    let url = format!("https://{host}:{port}{path}");
    let addr = services
        .get(&(ns.to_string(), name.to_string()))
        .copied()
        .ok_or_else(|| CallError::Transport {
            url: url.clone(),
            why: format!("service \"{ns}/{name}\" not found"),
        })?;
    Ok((url, addr, host, path))
}

fn tls_config(hook: &Hook) -> Result<Arc<rustls::ClientConfig>, CallError> {
    let bundle = hook.spec["clientConfig"]["caBundle"]
        .as_str()
        .unwrap_or_default();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(bundle)
        .map_err(|e| CallError::Config(format!("caBundle is not base64: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CallError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One HTTP/1.1 POST over TLS, `Connection: close`: the status and the body.
async fn post(
    hook: &Hook,
    services: &ServiceMap,
    body: &[u8],
) -> Result<(u16, Vec<u8>), CallError> {
    let (url, addr, host, path) = endpoint(hook, services)?;
    let transport = |why: String| CallError::Transport {
        url: url.clone(),
        why,
    };
    let config = tls_config(hook)?;
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| CallError::Config(format!("webhook host {host}: {e}")))?;
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| transport(format!("dial tcp {addr}: connect: {e}")))?;
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(|e| transport(format!("tls: {e}")))?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, */*\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes())
            .await
            .map_err(|e| transport(e.to_string()))?;
        tls.write_all(body)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let mut raw = Vec::new();
        // A server closing without close_notify still sent a complete response.
        if let Err(e) = tls.read_to_end(&mut raw).await
            && raw.is_empty()
        {
            return Err(transport(e.to_string()));
        }
        parse_response(&raw).map_err(CallError::Response)
    };
    match tokio::time::timeout(hook.timeout(), exchange).await {
        Ok(r) => r,
        Err(_) => Err(transport(
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into(),
        )),
    }
}

fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP response header")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        rest = &rest[eol + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    Ok((status, out))
}

/// One webhook's answer.
enum Verdict {
    Allowed { patch: Option<Vec<u8>> },
    Denied(ApiError),
}

async fn call(
    hook: &Hook,
    services: &ServiceMap,
    a: &Attributes<'_>,
    object: Option<&Value>,
    old: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<Verdict, CallError> {
    let uid = format!(
        "{:032x}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128
    );
    let body = review(a, &uid, object, old).to_string();
    let (status, body) = post(hook, services, body.as_bytes()).await?;
    if status != 200 {
        return Err(CallError::Response(format!("HTTP status code {status}")));
    }
    let answer: Value = serde_json::from_slice(&body)
        .map_err(|e| CallError::Response(format!("decoding response: {e}")))?;
    let response = &answer["response"];
    if answer["apiVersion"] != "admission.k8s.io/v1" || answer["kind"] != "AdmissionReview" {
        return Err(CallError::Response(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {}, Kind={}",
            answer["apiVersion"].as_str().unwrap_or_default(),
            answer["kind"].as_str().unwrap_or_default()
        )));
    }
    if response["uid"] != uid.as_str() {
        return Err(CallError::Response(format!(
            "expected response.uid=\"{uid}\", got \"{}\"",
            response["uid"].as_str().unwrap_or_default()
        )));
    }
    warnings.extend(
        response["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from),
    );
    if response["allowed"].as_bool() != Some(true) {
        return Ok(Verdict::Denied(denial(&hook.name, &response["status"])));
    }
    let patch = match response["patch"].as_str() {
        Some(p) if !p.is_empty() => {
            if response["patchType"].as_str() != Some("JSONPatch") {
                return Err(CallError::Response(format!(
                    "webhook returned response.patch but not response.patchType: {}",
                    response["patchType"]
                )));
            }
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(p)
                    .map_err(|e| CallError::Response(format!("response.patch: {e}")))?,
            )
        }
        _ => None,
    };
    Ok(Verdict::Allowed { patch })
}

/// kube-apiserver's ToStatusErr: the webhook's status, its message prefixed, never below 400.
fn denial(name: &str, status: &Value) -> ApiError {
    let denied = format!("admission webhook \"{name}\" denied the request");
    let message = status["message"].as_str().unwrap_or_default();
    let reason = status["reason"].as_str().unwrap_or_default();
    let text = if !message.is_empty() {
        format!("{denied}: {message}")
    } else if !reason.is_empty() {
        format!("{denied}: {reason}")
    } else {
        format!("{denied} without explanation")
    };
    let code = status["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    // The webhook's reason is passed on; only the ones clients know are kept.
    const REASONS: [&str; 8] = [
        "Forbidden",
        "BadRequest",
        "Invalid",
        "Conflict",
        "NotFound",
        "Unauthorized",
        "TooManyRequests",
        "InternalError",
    ];
    let reason = REASONS
        .iter()
        .find(|r| **r == reason)
        .copied()
        .unwrap_or("");
    let mut e = ApiError::new(code, reason, text);
    if !status["details"].is_null() {
        e = e.details(status["details"].clone());
    }
    e
}

fn failed(name: &str, e: &CallError) -> ApiError {
    ApiError::new(
        500,
        "InternalError",
        format!("Internal error occurred: failed calling webhook \"{name}\": {e}"),
    )
    .details(json!({"causes": [{"message": format!("failed calling webhook \"{name}\": {e}")}]}))
}

/// Runs `hooks` of one phase in order. Dry runs call them all: v1 only admits webhooks
/// without side effects (`None`, `NoneOnDryRun`), so none has to be refused. Mutating webhooks' JSON patches are applied to
/// `object` (and the next webhook sees the result); a denial or a failure under
/// `failurePolicy: Fail` ends admission with kube-apiserver's error.
pub(crate) async fn admit(
    phase: Phase,
    hooks: &[Hook],
    services: &ServiceMap,
    a: &Attributes<'_>,
    object: &mut Option<Value>,
    old: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    for hook in hooks {
        let result = call(hook, services, a, object.as_ref(), old, warnings).await;
        let result = result.and_then(|v| match v {
            // Validating webhooks cannot change the object: kube-apiserver ignores a patch.
            Verdict::Allowed { patch: Some(_) } if phase == Phase::Validating => {
                Ok(Verdict::Allowed { patch: None })
            }
            Verdict::Allowed { patch: Some(p) } => {
                let Some(obj) = object.as_mut() else {
                    // DELETE has no object to patch; as kube-apiserver, the patch is ignored.
                    return Ok(Verdict::Allowed { patch: None });
                };
                let patch: json_patch::Patch = serde_json::from_slice(&p)
                    .map_err(|e| CallError::Response(format!("response.patch: {e}")))?;
                json_patch::patch(obj, &patch)
                    .map_err(|e| CallError::Response(format!("applying patch: {e}")))?;
                Ok(Verdict::Allowed { patch: None })
            }
            v => Ok(v),
        });
        match result {
            Ok(Verdict::Allowed { .. }) => {}
            Ok(Verdict::Denied(e)) => return Err(e),
            // As kube-apiserver: logged there, invisible to the client.
            Err(_) if hook.failure_ignored() => {}
            Err(e) => return Err(failed(&hook.name, &e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_subresources_only_when_listed() {
        let list = json!(["*"]);
        assert!(resource_matches(&list, "dnszones", ""));
        assert!(!resource_matches(&list, "dnszones", "status"));
        assert!(resource_matches(&json!(["*/status"]), "dnszones", "status"));
        assert!(!resource_matches(&json!(["*/status"]), "dnszones", ""));
        assert!(resource_matches(&json!(["*/*"]), "dnszones", "status"));
        assert!(!resource_matches(&json!(["zonesyncs"]), "dnszones", ""));
    }

    #[test]
    fn label_selectors() {
        let labels = json!({"team": "a", "tier": "dns"});
        assert!(selector_matches(&Value::Null, &labels));
        assert!(selector_matches(
            &json!({"matchLabels": {"team": "a"}}),
            &labels
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"team": "b"}}),
            &labels
        ));
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "team", "operator": op, "values": values}]});
        assert!(selector_matches(&expr("In", json!(["a", "b"])), &labels));
        assert!(!selector_matches(&expr("NotIn", json!(["a"])), &labels));
        assert!(selector_matches(&expr("Exists", json!([])), &labels));
        assert!(!selector_matches(&expr("DoesNotExist", json!([])), &labels));
        assert!(selector_matches(&expr("NotIn", json!(["a"])), &json!({})));
    }

    #[test]
    fn configurations_are_validated_as_v1() {
        let hook = json!({"name": "a.b.c", "clientConfig": {"url": "https://127.0.0.1:1/"},
                          "sideEffects": "None", "admissionReviewVersions": ["v1"]});
        assert!(validate_configuration(&json!({"webhooks": [hook.clone()]})).is_empty());
        let mut bad = hook.clone();
        bad["name"] = json!("short.name");
        bad["clientConfig"] = json!({"url": "http://127.0.0.1:1/"});
        bad["timeoutSeconds"] = json!(31);
        let fields: Vec<String> = validate_configuration(&json!({"webhooks": [hook, bad]}))
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "webhooks[1].name",
                "webhooks[1].timeoutSeconds",
                "webhooks[1].clientConfig.url"
            ]
        );
    }

    #[test]
    fn denials_read_like_kube_apiserver() {
        let e = denial(
            "acl.zonekeeper.io",
            &json!({"message": "not yours", "code": 403}),
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "admission webhook \"acl.zonekeeper.io\" denied the request: not yours"
        );
        let e = denial("x", &Value::Null);
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "admission webhook \"x\" denied the request without explanation"
        );
    }
}
