//! HTTP: routing, discovery, list/watch and the translation of requests into store writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::RequestRecord;
use crate::auth::{self, Attributes, AuthConfig, UserInfo};
use crate::fields;
use crate::resources::ResourceType;
use crate::store::{ApiError, ApiResult, LogEvent, Selectors, State, WriteOpts, name_of};
use crate::table;

/// kube-apiserver's `MaxRequestBodyBytes`: twice etcd's limit, since JSON is larger than the
/// protobuf that is stored.
const MAX_REQUEST_BYTES: usize = 3 << 20;

/// Everything the handlers share.
pub(crate) struct Inner {
    pub state: Mutex<State>,
    /// Bumped by `drop_watches`: every open watch ends.
    pub drop_watches: watch::Sender<u64>,
    /// How often watches send a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Print every request to stderr (the standalone binary's `--log-requests`).
    pub log_requests: std::sync::atomic::AtomicBool,
    pub auth: AuthConfig,
    /// `clientConfig.service` of webhooks → where the test runs that service.
    pub services: Mutex<crate::webhooks::ServiceMap>,
}

impl Inner {
    pub fn new(auth: AuthConfig) -> Arc<Inner> {
        let (tx, _) = broadcast::channel(4096);
        let (drop_tx, _) = watch::channel(0);
        let mut state = State::new(tx);
        if auth.rbac {
            for (plural, obj) in crate::auth::bootstrap_objects() {
                if let Some(rt) = state
                    .find("rbac.authorization.k8s.io", "v1", plural)
                    .cloned()
                {
                    let _ = state.create(&rt, "", obj, &mut WriteOpts::default(), None);
                }
            }
        }
        Arc::new(Inner {
            state: Mutex::new(state),
            drop_watches: drop_tx,
            bookmark_interval: Duration::from_secs(1),
            log_requests: std::sync::atomic::AtomicBool::new(false),
            auth,
            services: Mutex::new(Default::default()),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked leaves consistent data behind: every write is one step.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Params(HashMap<String, String>);

impl Params {
    fn parse(query: &str) -> Params {
        Params(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or_default()
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), "true" | "1")
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status())
}

/// The handler for every request.
pub(crate) async fn handle(inner: Arc<Inner>, req: Request<Body>) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b.to_vec(),
        Err(e) => return error_response(&ApiError::bad_request(format!("reading body: {e}"))),
    };
    let mut user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut user_info = None;
    if inner.auth.enabled || inner.auth.rbac {
        let who = auth::authenticate(&inner.auth, &headers).and_then(|u| {
            let state = inner.lock();
            auth::impersonate(&state, &inner.auth, u, &headers)
        });
        match who {
            Ok(u) => {
                user = u.name.clone();
                user_info = Some(u);
            }
            Err(e) => {
                let resp = error_response(&e);
                inner.lock().requests.push(RequestRecord {
                    method,
                    path,
                    query,
                    status: e.code,
                    user,
                });
                return resp;
            }
        }
    }
    if let Some(resp) = injected_fault(&inner, &method, &path, &query, &user) {
        return resp;
    }
    let params = Params::parse(&query);
    let resp = if body.len() > MAX_REQUEST_BYTES {
        error_response(&ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {MAX_REQUEST_BYTES}"),
        ))
    } else {
        let req = RequestInfo {
            method: &method,
            path: &path,
            params: &params,
            headers: &headers,
            user: user_info.as_ref(),
        };
        route(&inner, &req, body).await
    };
    if inner
        .log_requests
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        let sep = if query.is_empty() { "" } else { "?" };
        eprintln!("{method} {path}{sep}{query} {}", resp.status().as_u16());
    }
    inner.lock().requests.push(RequestRecord {
        method,
        path,
        query,
        status: resp.status().as_u16(),
        user,
    });
    resp
}

fn injected_fault(
    inner: &Inner,
    method: &str,
    path: &str,
    query: &str,
    user: &str,
) -> Option<Response<Body>> {
    let mut state = inner.lock();
    let fault = state.faults.iter_mut().find(|f| {
        f.remaining > 0
            && path.starts_with(&f.path_prefix)
            && f.method.as_deref().is_none_or(|m| m == method)
    })?;
    if fault.skip > 0 {
        fault.skip -= 1;
        return None;
    }
    fault.remaining -= 1;
    let (code, retry_after) = (fault.status, fault.retry_after);
    state.faults.retain(|f| f.remaining > 0);
    state.requests.push(RequestRecord {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        status: code,
        user: user.into(),
    });
    let reason = match code {
        429 => "TooManyRequests",
        409 => "Conflict",
        404 => "NotFound",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    let mut resp = error_response(&ApiError::new(
        code,
        reason,
        format!("injected fault: {code}"),
    ));
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(resp)
}

enum Target {
    Resource {
        rt: Box<ResourceType>,
        ns: String,
        name: String,
        sub: String,
    },
    Json(Value),
}

fn version_info() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-zk-apiserver",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn groups(state: &State) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in state.types.iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
            Some(_) => {}
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    out
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

fn resource_list(state: &State, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = state
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .flat_map(|t| t.discovery())
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"))
}

/// `apidiscovery.k8s.io/v2` for `/api` (core) or `/apis` (every group), as kubectl prefers.
fn aggregated_discovery(state: &State, core: bool) -> Value {
    let mut items: Vec<Value> = Vec::new();
    let mut group_names: Vec<String> = Vec::new();
    for t in &state.types {
        if (t.group.is_empty()) == core && !group_names.contains(&t.group) {
            group_names.push(t.group.clone());
        }
    }
    for g in group_names {
        let mut versions: Vec<Value> = Vec::new();
        let mut version_names: Vec<String> = Vec::new();
        for t in state.types.iter().filter(|t| t.group == g) {
            if !version_names.contains(&t.version) {
                version_names.push(t.version.clone());
            }
        }
        for v in version_names {
            let resources: Vec<Value> = state
                .types
                .iter()
                .filter(|t| t.group == g && t.version == v)
                .map(|t| {
                    let kind = json!({"group": t.group, "version": t.version, "kind": t.kind});
                    let mut r = json!({
                        "resource": t.plural,
                        "responseKind": kind,
                        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": t.singular,
                        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                    });
                    if !t.short_names.is_empty() {
                        r["shortNames"] = json!(t.short_names);
                    }
                    if !t.categories.is_empty() {
                        r["categories"] = json!(t.categories);
                    }
                    if t.status_subresource {
                        r["subresources"] = json!([{"subresource": "status", "responseKind": kind,
                                                     "verbs": ["get", "patch", "update"]}]);
                    }
                    r
                })
                .collect();
            versions.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        items.push(json!({"metadata": {"name": g}, "versions": versions}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// `/openapi/v3`: one document per group/version, so kubectl finds out that the server
/// validates fields itself (`fieldValidation`) instead of validating client-side, and finds
/// the custom resources' schemas for `kubectl explain`.
fn openapi_index(state: &State) -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(String, String)> = state
        .types
        .iter()
        .map(|t| (t.group.clone(), t.version.clone()))
        .collect();
    gvs.dedup();
    for (g, v) in gvs {
        let p = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", state.rv)}),
        );
    }
    json!({"paths": paths})
}

/// `io.zonekeeper.dns.v1alpha1.DnsZone`: the name a real server gives a CRD's schema.
fn schema_name(rt: &ResourceType) -> String {
    let mut parts: Vec<&str> = rt.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), rt.version, rt.kind)
}

/// A custom resource's openAPIV3Schema as kube-apiserver publishes it: with `apiVersion`,
/// `kind` and `metadata` described, and tagged with its group/version/kind (which is how
/// `kubectl explain` finds it).
fn published_schema(rt: &ResourceType, schema: &Value) -> Value {
    let mut s = schema.clone();
    s["properties"]["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"});
    s["properties"]["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"});
    s["properties"]["metadata"] = json!({"type": "object", "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"});
    s["x-kubernetes-group-version-kind"] =
        json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]);
    s
}

fn openapi_doc(state: &State, group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
        .iter()
        .map(|n| json!({"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": true}))
        .collect();
    for t in state
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        if let Some(schema) = &t.schema {
            schemas.insert(schema_name(t), published_schema(t, schema.json()));
        }
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}", t.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            }}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn resolve(state: &State, path: &str) -> ApiResult<Target> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Ok(Target::Json(version_info())),
        ["api"] => {
            return Ok(Target::Json(json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
            })));
        }
        ["apis"] => {
            let gs: Vec<Value> = groups(state)
                .iter()
                .map(|(g, vs)| api_group(g, vs))
                .collect();
            return Ok(Target::Json(
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}),
            ));
        }
        ["apis", g] => {
            let found = groups(state).into_iter().find(|(name, _)| name == g);
            return match found {
                Some((g, vs)) => {
                    let mut v = api_group(&g, &vs);
                    v["kind"] = json!("APIGroup");
                    v["apiVersion"] = json!("v1");
                    Ok(Target::Json(v))
                }
                None => Err(not_found()),
            };
        }
        ["openapi", "v3"] => return Ok(Target::Json(openapi_index(state))),
        ["openapi", "v3", "api", v] => {
            return openapi_doc(state, "", v)
                .ok_or_else(not_found)
                .map(Target::Json);
        }
        ["openapi", "v3", "apis", g, v] => {
            return openapi_doc(state, g, v)
                .ok_or_else(not_found)
                .map(Target::Json);
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found()),
    };
    if rest.is_empty() {
        return resource_list(state, group, version)
            .map(Target::Json)
            .ok_or_else(not_found);
    }
    let find = |plural: &str| {
        state
            .find(group, version, plural)
            .cloned()
            .ok_or_else(not_found)
    };
    let (rt, ns, name, sub) = match rest {
        [plural] => (find(plural)?, "", "", ""),
        [plural, name] => (find(plural)?, "", *name, ""),
        ["namespaces", ns, third]
            if group.is_empty() && version == "v1" && matches!(*third, "status" | "finalize") =>
        {
            (find("namespaces")?, "", *ns, *third)
        }
        ["namespaces", ns, plural] => (find(plural)?, *ns, "", ""),
        [plural, name, sub] => (find(plural)?, "", *name, *sub),
        ["namespaces", ns, plural, name] => (find(plural)?, *ns, *name, ""),
        ["namespaces", ns, plural, name, sub] => (find(plural)?, *ns, *name, *sub),
        _ => return Err(not_found()),
    };
    let sub_ok = match sub {
        "" => true,
        "status" => rt.status_subresource,
        "finalize" => rt.kind == "Namespace",
        _ => false,
    };
    if !sub_ok {
        return Err(not_found());
    }
    if !rt.namespaced && !ns.is_empty() {
        return Err(not_found());
    }
    Ok(Target::Resource {
        rt: Box::new(rt),
        ns: ns.to_string(),
        name: name.to_string(),
        sub: sub.to_string(),
    })
}

fn write_opts(params: &Params, headers: &HeaderMap) -> WriteOpts {
    let manager = match params.get("fieldManager") {
        "" => headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string(),
        m => m.to_string(),
    };
    WriteOpts {
        manager,
        dry_run: params.get("dryRun") == "All",
        field_validation: match params.get("fieldValidation") {
            "" => "Warn".to_string(),
            v => v.to_string(),
        },
        warnings: Vec::new(),
        user: None,
        prepare: false,
    }
}

fn parse_body(body: &[u8], headers: &HeaderMap) -> ApiResult<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") {
        return crate::protobuf::decode(body).map_err(|why| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format - {why}"),
            )
        });
    }
    if ct.contains("cbor") {
        // Only JSON (and YAML) bodies are understood; client-go then falls back to JSON.
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {ct})"
            ),
        ));
    }
    if ct.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else if body.is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"))
}

/// The `meta.k8s.io/v1` PartialObjectMetadata of an object (`kube`'s metadata API).
fn partial(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
}

/// How objects are rendered for this request.
#[derive(Clone)]
enum Render {
    Full,
    Table(String),
    Metadata,
}

fn render_mode(headers: &HeaderMap, params: &Params) -> Render {
    if wants_table(headers) {
        Render::Table(params.get("includeObject").to_string())
    } else if wants_metadata(headers) {
        Render::Metadata
    } else {
        Render::Full
    }
}

fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

/// One request, as routing and authorization see it.
struct RequestInfo<'a> {
    method: &'a str,
    path: &'a str,
    params: &'a Params,
    headers: &'a HeaderMap,
    /// The authenticated user, when authentication or authorization is on.
    user: Option<&'a UserInfo>,
}

/// RBAC's verdict on a request; `None` when it may go on.
fn authorize(inner: &Inner, req: &RequestInfo, target: &Target) -> Option<Response<Body>> {
    if !inner.auth.rbac {
        return None;
    }
    let attrs = match target {
        Target::Json(_) => Attributes::NonResource {
            verb: req.method.to_lowercase(),
            path: req.path.to_string(),
        },
        Target::Resource { rt, ns, name, sub } => {
            // A namespace is its own namespace, so RoleBindings in it cover it.
            let ns = if rt.kind == "Namespace" && rt.group.is_empty() {
                name.clone()
            } else {
                ns.clone()
            };
            Attributes::Resource {
                verb: auth::resource_verb(req.method, name, req.params.flag("watch")).into(),
                group: rt.group.clone(),
                resource: rt.plural.clone(),
                sub: sub.clone(),
                ns,
                name: name.clone(),
            }
        }
    };
    let anonymous = UserInfo {
        name: auth::ANONYMOUS.into(),
        ..UserInfo::default()
    };
    let user = req.user.unwrap_or(&anonymous);
    if auth::allowed(&inner.lock(), user, &attrs) {
        None
    } else {
        Some(error_response(&attrs.forbidden(&user.name)))
    }
}

async fn route(inner: &Arc<Inner>, req: &RequestInfo<'_>, body: Vec<u8>) -> Response<Body> {
    let (method, path, params, headers) = (req.method, req.path, req.params, req.headers);
    let target = {
        let state = inner.lock();
        resolve(&state, path)
    };
    if let Ok(t) = &target
        && let Some(denied) = authorize(inner, req, t)
    {
        return denied;
    }
    let (rt, ns, name, sub) = match target {
        Ok(Target::Json(v)) if method == "GET" => {
            if matches!(path.trim_end_matches('/'), "/api" | "/apis") && wants_aggregated(headers) {
                let doc = aggregated_discovery(&inner.lock(), path.trim_end_matches('/') == "/api");
                let mut r = json_response(200, &doc);
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(AGGREGATED_CONTENT_TYPE),
                );
                return r;
            }
            return json_response(200, &v);
        }
        Ok(Target::Json(_)) => {
            return error_response(&ApiError::new(
                405,
                "MethodNotAllowed",
                "method not allowed",
            ));
        }
        Ok(Target::Resource { rt, ns, name, sub }) => (*rt, ns, name, sub),
        Err(e) => return error_response(&e),
    };
    if name.is_empty() && method == "GET" && params.flag("watch") {
        return watch_response(inner.clone(), rt, ns, params, render_mode(headers, params));
    }
    let mut opts = write_opts(params, headers);
    if inner.auth.rbac {
        opts.user = req.user.cloned();
    }
    if rt.group == "authorization.k8s.io" {
        if method != "POST" {
            return error_response(&ApiError::new(
                405,
                "MethodNotAllowed",
                "method not allowed",
            ));
        }
        let masters = UserInfo {
            name: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
        };
        // Without RBAC everyone may do everything, and a review says so.
        let user = if inner.auth.rbac {
            req.user.unwrap_or(&masters)
        } else {
            &masters
        };
        return match parse_body(&body, headers) {
            Ok(b) => {
                let mut out = auth::review(&inner.lock(), &rt.kind, user, &b);
                out["apiVersion"] = json!(rt.api_version());
                out["kind"] = json!(rt.kind);
                json_response(201, &out)
            }
            Err(e) => error_response(&e),
        };
    }
    let hooked = matches!(
        (method, name.is_empty()),
        ("POST", true) | ("PUT" | "PATCH" | "DELETE", false)
    ) && crate::webhooks::any_configured(&inner.lock());
    let result: ApiResult<(u16, Value)> = match (method, name.as_str()) {
        _ if hooked => {
            let target = WriteTarget {
                rt: &rt,
                ns: &ns,
                name: &name,
                sub: &sub,
            };
            admitted_write(inner, req, &target, &body, &mut opts).await
        }
        ("GET", "") => list(&inner.lock(), &rt, &ns, params, headers),
        ("POST", "") => parse_body(&body, headers)
            .and_then(|b| inner.lock().create(&rt, &ns, b, &mut opts, None))
            .map(|o| (201, o)),
        ("DELETE", "") => delete_collection(&mut inner.lock(), &rt, &ns, params),
        ("GET", name) => {
            let state = inner.lock();
            state
                .get(&rt, &ns, name)
                .map(|o| match render_mode(headers, params) {
                    Render::Table(include) => {
                        let meta = json!({"resourceVersion": o["metadata"]["resourceVersion"]});
                        (200, table::table(&rt, &[o], meta, &include))
                    }
                    Render::Metadata => (200, partial(&o)),
                    Render::Full => (200, o),
                })
        }
        ("PUT", name) => parse_body(&body, headers)
            .and_then(|b| inner.lock().update(&rt, &ns, name, b, &sub, &mut opts))
            .map(|o| (200, o)),
        ("PATCH", name) => patch(
            &mut inner.lock(),
            &rt,
            &ns,
            name,
            &sub,
            &body,
            headers,
            params,
            &mut opts,
        ),
        ("DELETE", name) => inner
            .lock()
            .delete(&rt, &ns, name, &delete_options(&body, params), opts.dry_run)
            .map(|o| (200, o)),
        _ => Err(ApiError::new(405, "MethodNotAllowed", "method not allowed")),
    };
    match result {
        Ok((code, v)) => {
            let v = if v["kind"] == "Table"
                || v["kind"] == "PartialObjectMetadata"
                || v["kind"].as_str().is_some_and(|k| k.ends_with("List"))
            {
                v
            } else {
                crate::store::into_presented(&rt, v)
            };
            with_warnings(json_response(code, &v), &opts.warnings)
        }
        Err(e) => error_response(&e),
    }
}

fn delete_options(body: &[u8], params: &Params) -> Value {
    let mut options = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).unwrap_or(json!({}))
    };
    let policy = params.get("propagationPolicy");
    if !policy.is_empty() {
        options["propagationPolicy"] = json!(policy);
    }
    options
}

/// The object a write addresses.
struct WriteTarget<'a> {
    rt: &'a ResourceType,
    ns: &'a str,
    name: &'a str,
    sub: &'a str,
}

/// POST, PUT or PATCH of one object, as the request alone makes it.
fn write(
    state: &mut State,
    t: &WriteTarget,
    req: &RequestInfo,
    body: &[u8],
    opts: &mut WriteOpts,
) -> ApiResult<(u16, Value)> {
    match req.method {
        "POST" => parse_body(body, req.headers)
            .and_then(|b| state.create(t.rt, t.ns, b, opts, None))
            .map(|o| (201, o)),
        "PUT" => parse_body(body, req.headers)
            .and_then(|b| state.update(t.rt, t.ns, t.name, b, t.sub, opts))
            .map(|o| (200, o)),
        _ => patch(
            state,
            t.rt,
            t.ns,
            t.name,
            t.sub,
            body,
            req.headers,
            req.params,
            opts,
        ),
    }
}

/// Writes `obj` (already made from the request) as a create (no `old`) or as an update of
/// `old`, which must not have changed since the webhooks saw it.
fn commit(
    state: &mut State,
    t: &WriteTarget,
    old: Option<&Value>,
    obj: Value,
    opts: &mut WriteOpts,
) -> ApiResult<Value> {
    // The entries the request's own write made (server-side apply's `Apply` among them).
    let managers = Some(fields::decode(&obj));
    match old {
        None => state.create(t.rt, t.ns, obj, opts, managers),
        Some(old) => {
            let name = name_of(old);
            let current = state.get(t.rt, t.ns, name)?;
            if current["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"] {
                return Err(ApiError::conflict(t.rt, name));
            }
            state.finish_update(t.rt, t.ns, &current, obj, t.sub, opts, managers)
        }
    }
}

/// The user webhooks are told about; without authentication, whoever the request claims.
fn webhook_user(inner: &Inner, req: &RequestInfo) -> UserInfo {
    if let Some(u) = req.user {
        return u.clone();
    }
    let claimed = req
        .headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if claimed.is_empty() || inner.auth.enabled {
        UserInfo {
            name: auth::ANONYMOUS.into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        }
    } else {
        UserInfo {
            name: claimed.into(),
            uid: String::new(),
            groups: vec!["system:authenticated".into()],
        }
    }
}

/// A write with admission webhooks, in kube-apiserver's order: mutating webhooks (their
/// JSON patches applied) → pruning, defaulting, schema and CEL validation → validating
/// webhooks → storage. The state is not locked while a webhook is asked (it may call
/// back); an object changed meanwhile makes the write a 409 Conflict.
async fn admitted_write(
    inner: &Arc<Inner>,
    req: &RequestInfo<'_>,
    t: &WriteTarget<'_>,
    body: &[u8],
    opts: &mut WriteOpts,
) -> ApiResult<(u16, Value)> {
    use crate::webhooks::{self, Attributes, Phase};
    let user = webhook_user(inner, req);
    let services = inner
        .services
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if req.method == "DELETE" {
        let options = delete_options(body, req.params);
        let old = inner.lock().get(t.rt, t.ns, t.name)?;
        let mut shown = options.clone();
        shown["kind"] = json!("DeleteOptions");
        shown["apiVersion"] = json!("meta.k8s.io/v1");
        let a = Attributes {
            rt: t.rt,
            sub: t.sub,
            ns: t.ns,
            name: t.name,
            operation: "DELETE",
            user: &user,
            dry_run: opts.dry_run,
            options: shown,
        };
        for phase in [Phase::Mutating, Phase::Validating] {
            let hooks = webhooks::matching(&inner.lock(), phase, &a, None, Some(&old));
            webhooks::admit(
                phase,
                &hooks,
                &services,
                &a,
                &mut None,
                Some(&old),
                &mut opts.warnings,
            )
            .await?;
        }
        return inner
            .lock()
            .delete(t.rt, t.ns, t.name, &options, opts.dry_run)
            .map(|o| (200, o));
    }
    let mut prepare = opts.clone();
    prepare.prepare = true;
    prepare.dry_run = true;
    let (old, code, candidate) = {
        let mut state = inner.lock();
        let old = match req.method {
            "POST" => None,
            _ => state.get(t.rt, t.ns, t.name).ok(),
        };
        let (code, candidate) = write(&mut state, t, req, body, &mut prepare)?;
        (old, code, candidate)
    };
    // Unknown fields were pruned here, once: their warnings are this request's.
    opts.warnings.append(&mut prepare.warnings);
    let name = name_of(&candidate).to_string();
    let (operation, options_kind) = match old {
        Some(_) => ("UPDATE", "UpdateOptions"),
        None => ("CREATE", "CreateOptions"),
    };
    let mut options = json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
    if opts.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    if !req.params.get("fieldManager").is_empty() {
        options["fieldManager"] = json!(req.params.get("fieldManager"));
    }
    let a = Attributes {
        rt: t.rt,
        sub: t.sub,
        ns: t.ns,
        name: &name,
        operation,
        user: &user,
        dry_run: opts.dry_run,
        options,
    };
    let hooks = webhooks::matching(
        &inner.lock(),
        Phase::Mutating,
        &a,
        Some(&candidate),
        old.as_ref(),
    );
    let mut object = Some(candidate);
    webhooks::admit(
        Phase::Mutating,
        &hooks,
        &services,
        &a,
        &mut object,
        old.as_ref(),
        &mut opts.warnings,
    )
    .await?;
    let mutated = object.unwrap_or_default();
    let mut check = opts.clone();
    check.dry_run = true;
    check.warnings.clear();
    let (checked, hooks) = {
        let mut state = inner.lock();
        let checked = commit(&mut state, t, old.as_ref(), mutated.clone(), &mut check)?;
        let hooks = webhooks::matching(&state, Phase::Validating, &a, Some(&checked), old.as_ref());
        (checked, hooks)
    };
    let mut shown = Some(checked);
    webhooks::admit(
        Phase::Validating,
        &hooks,
        &services,
        &a,
        &mut shown,
        old.as_ref(),
        &mut opts.warnings,
    )
    .await?;
    let stored = commit(&mut inner.lock(), t, old.as_ref(), mutated, opts)?;
    Ok((code, stored))
}

#[allow(clippy::too_many_arguments)]
fn patch(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: &str,
    body: &[u8],
    headers: &HeaderMap,
    params: &Params,
    opts: &mut WriteOpts,
) -> ApiResult<(u16, Value)> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ct = ct.split(';').next().unwrap_or_default().trim();
    if ct == "application/apply-patch+yaml" {
        return server_side_apply(state, rt, ns, name, sub, body, params, opts);
    }
    let old = state.get(rt, ns, name)?;
    let mut doc = old.clone();
    match ct {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            for op in p.0 {
                // As the real server: `test` of null passes where the path is absent
                // (kube-runtime's finalizer helper relies on it).
                if let json_patch::PatchOperation::Test(t) = &op
                    && t.value.is_null()
                    && doc.pointer(t.path.as_str()).is_none()
                {
                    continue;
                }
                json_patch::patch(&mut doc, &[op]).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
            }
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let mut p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding merge patch: {e}")))?;
            strip_directives(&mut p);
            json_patch::merge(&mut doc, &p);
        }
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"
                ),
            ));
        }
    }
    if let Some(rv) = doc["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(rt, name));
    }
    state
        .finish_update(rt, ns, &old, doc, sub, opts, None)
        .map(|o| (200, o))
}

/// Strategic merge patch is served as a JSON merge patch: its `$` directives are dropped.
fn strip_directives(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, _| !k.starts_with('$'));
        for child in m.values_mut() {
            strip_directives(child);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn server_side_apply(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: &str,
    body: &[u8],
    params: &Params,
    opts: &mut WriteOpts,
) -> ApiResult<(u16, Value)> {
    let manager = params.get("fieldManager");
    if manager.is_empty() {
        return Err(ApiError::bad_request(
            "PATCH, PUT or POST requests with apply content type must have fieldManager set",
        ));
    }
    // kube-rs and kubectl send apply bodies as JSON, which is YAML: read as JSON they cost a
    // tenth of what serde_yaml took (a quarter of a status apply); anything else as YAML.
    let mut applied: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
    };
    if !applied.is_object() {
        return Err(ApiError::bad_request("apply body must be an object"));
    }
    let applied_name = name_of(&applied);
    if !applied_name.is_empty() && applied_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({applied_name}) does not match the name on the URL ({name})"
        )));
    }
    applied["metadata"]["name"] = json!(name);
    if let Some(k) = applied["kind"].as_str()
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({k}) does not match the resource ({})",
            rt.kind
        )));
    }
    let force = params.flag("force");
    let scoped = if sub == "status" {
        json!({"apiVersion": applied["apiVersion"], "status": applied["status"]})
    } else {
        let mut a = applied.clone();
        if rt.status_subresource
            && let Some(o) = a.as_object_mut()
        {
            o.remove("status");
        }
        a
    };
    let old = match state.get(rt, ns, name) {
        Ok(o) => o,
        Err(e) if e.code == 404 && sub.is_empty() => {
            let (_, managers) = fields::apply(&json!({}), &scoped, &[], manager, sub, force)
                .unwrap_or_else(|_| (Value::Null, Vec::new()));
            return state
                .create(rt, ns, applied, opts, Some(managers))
                .map(|o| (201, o));
        }
        Err(e) => return Err(e),
    };
    if let Some(rv) = applied["metadata"]["resourceVersion"].as_str()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(rt, name));
    }
    let managers = fields::decode(&old);
    match fields::apply(&old, &scoped, &managers, manager, sub, force) {
        Ok((new, managers)) => state
            .finish_update(rt, ns, &old, new, sub, opts, Some(managers))
            .map(|o| (200, o)),
        Err(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| {
                    json!({"reason": "FieldManagerConflict",
                           "message": format!("conflict with \"{}\"", c.manager),
                           "field": format!(".{}", c.path.join("."))})
                })
                .collect();
            let lines: Vec<String> = conflicts
                .iter()
                .map(|c| format!("conflict with \"{}\": .{}", c.manager, c.path.join(".")))
                .collect();
            let message = if lines.len() == 1 {
                format!("Apply failed with 1 conflict: {}", lines[0])
            } else {
                format!(
                    "Apply failed with {} conflicts: {}",
                    lines.len(),
                    lines.join("\n")
                )
            };
            Err(ApiError::new(409, "Conflict", message).details(
                json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}),
            ))
        }
    }
}

fn continue_token(rv: u64, ns: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{rv}\n{ns}\n{name}"))
}

fn parse_continue(token: &str) -> Option<(u64, String, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, '\n');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.into(),
        parts.next()?.into(),
    ))
}

fn list(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    params: &Params,
    headers: &HeaderMap,
) -> ApiResult<(u16, Value)> {
    let sel = Selectors::parse(params.get("labelSelector"), params.get("fieldSelector"))?;
    let mut list_rv = state.rv;
    let mut after: Option<(String, String)> = None;
    let token = params.get("continue");
    if !token.is_empty() {
        let (rv, tns, tname) = parse_continue(token)
            .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
        if rv < state.compacted {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        list_rv = rv;
        after = Some((tns, tname));
    }
    let rv_param = params.get("resourceVersion");
    if params.get("resourceVersionMatch") == "Exact" && rv_param != state.rv.to_string() {
        return Err(ApiError::gone(format!(
            "too old resource version: {rv_param} ({})",
            state.rv
        )));
    }
    if let Ok(n) = rv_param.parse::<u64>()
        && n > state.rv
    {
        return Err(ApiError::new(
            504,
            "Timeout",
            format!("Too large resource version: {n}, current: {}", state.rv),
        ));
    }
    let limit: usize = params.get("limit").parse().unwrap_or(0);
    let mut items = Vec::new();
    let mut more = 0usize;
    let mut last_key = None;
    let stored = state.objects.get(&rt.key());
    let candidates: Box<dyn Iterator<Item = (&(String, String), &Value)>> =
        match (stored, sel.required_label()) {
            (Some(objects), Some((label, value))) => Box::new(objects.labelled(label, value)),
            (Some(objects), None) => Box::new(objects.iter()),
            (None, _) => Box::new(std::iter::empty()),
        };
    for ((ons, oname), o) in candidates {
        if rt.namespaced && !ns.is_empty() && ons != ns {
            continue;
        }
        if after.as_ref().is_some_and(|(a, b)| (ons, oname) <= (a, b)) {
            continue;
        }
        if !sel.matches(o) {
            continue;
        }
        if limit > 0 && items.len() >= limit {
            more += 1;
            continue;
        }
        last_key = Some((ons.clone(), oname.clone()));
        items.push(state.present(rt, o));
    }
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if more > 0
        && let Some((a, b)) = last_key
    {
        meta["continue"] = json!(continue_token(list_rv, &a, &b));
        meta["remainingItemCount"] = json!(more);
    }
    match render_mode(headers, params) {
        Render::Table(include) => return Ok((200, table::table(rt, &items, meta, &include))),
        Render::Metadata => {
            let items: Vec<Value> = items.iter().map(partial).collect();
            return Ok((
                200,
                json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                       "metadata": meta, "items": items}),
            ));
        }
        Render::Full => {}
    }
    Ok((
        200,
        json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": meta, "items": items}),
    ))
}

fn delete_collection(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    params: &Params,
) -> ApiResult<(u16, Value)> {
    let (_, listed) = list(state, rt, ns, params, &HeaderMap::new())?;
    let mut deleted = Vec::new();
    for o in listed["items"].as_array().into_iter().flatten() {
        let ons = o["metadata"]["namespace"].as_str().unwrap_or_default();
        if let Ok(d) = state.delete(
            rt,
            ons,
            name_of(o),
            &json!({}),
            params.get("dryRun") == "All",
        ) {
            deleted.push(d);
        }
    }
    Ok((
        200,
        json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
               "metadata": {"resourceVersion": state.rv.to_string()}, "items": deleted}),
    ))
}

/// What one watch sends for one logged change, if anything.
fn watch_line(
    ev: &LogEvent,
    rt: &ResourceType,
    ns: &str,
    sel: &Selectors,
    render: &Render,
) -> Option<String> {
    if ev.key != rt.key() || (rt.namespaced && !ns.is_empty() && ev.namespace != ns) {
        return None;
    }
    let now = sel.matches(&ev.object);
    let before = ev.prev.as_ref().is_some_and(|p| sel.matches(p));
    let type_ = match (ev.type_, now, before) {
        ("MODIFIED", true, false) => "ADDED",
        ("MODIFIED", false, true) => "DELETED",
        ("MODIFIED", false, false) => return None,
        (t, true, _) => t,
        _ => return None,
    };
    Some(event_line(
        rt,
        type_,
        crate::store::present(rt, &ev.object),
        render,
    ))
}

/// One watch event; a one-row Table when the client asked for tables (`kubectl get -w`).
fn event_line(rt: &ResourceType, type_: &str, obj: Value, render: &Render) -> String {
    let obj = match render {
        Render::Table(include) => {
            let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
            table::table(rt, &[obj], meta, include)
        }
        Render::Metadata => partial(&obj),
        Render::Full => obj,
    };
    format!("{}\n", json!({"type": type_, "object": obj}))
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> String {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    format!(
        "{}\n",
        json!({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}})
    )
}

fn watch_response(
    inner: Arc<Inner>,
    rt: ResourceType,
    ns: String,
    params: &Params,
    render: Render,
) -> Response<Body> {
    let sel = match Selectors::parse(params.get("labelSelector"), params.get("fieldSelector")) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let bookmarks = params.flag("allowWatchBookmarks");
    let send_initial = params.flag("sendInitialEvents");
    let timeout = params
        .get("timeoutSeconds")
        .parse::<u64>()
        .ok()
        .filter(|t| *t > 0)
        .unwrap_or(1800);
    let rv_param = params.get("resourceVersion").to_string();
    let (tx, rx) = mpsc::channel::<String>(256);
    let mut initial: Vec<String> = Vec::new();
    let (mut events, start_rv) = {
        let state = inner.lock();
        let events = state.events.subscribe();
        if rv_param.is_empty() || rv_param == "0" || send_initial {
            for o in state
                .objects
                .get(&rt.key())
                .into_iter()
                .flat_map(|m| m.values())
            {
                let ons = o["metadata"]["namespace"].as_str().unwrap_or_default();
                if (!rt.namespaced || ns.is_empty() || ons == ns) && sel.matches(o) {
                    let obj = state.present(&rt, o);
                    initial.push(event_line(&rt, "ADDED", obj, &render));
                }
            }
            if send_initial && bookmarks {
                initial.push(bookmark(&rt, state.rv, true));
            }
        } else {
            match rv_param.parse::<u64>() {
                Ok(from) if from >= state.compacted => {
                    for ev in state.log.iter().filter(|e| e.rv > from) {
                        if let Some(line) = watch_line(ev, &rt, &ns, &sel, &render) {
                            initial.push(line);
                        }
                    }
                }
                _ => {
                    // As a real server: 200, then an ERROR event carrying 410 Expired.
                    let status = ApiError::gone(format!(
                        "too old resource version: {rv_param} ({})",
                        state.compacted
                    ))
                    .status();
                    initial.push(format!("{}\n", json!({"type": "ERROR", "object": status})));
                    drop(state);
                    return stream_response(initial, None);
                }
            }
        }
        (events, state.rv)
    };
    let mut dropped = inner.drop_watches.subscribe();
    let interval = inner.bookmark_interval;
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        let mut last_rv = start_rv;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = dropped.changed() => return,
                _ = tx.closed() => return,
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv { continue; }
                        last_rv = ev.rv;
                        if let Some(line) = watch_line(&ev, &rt, &ns, &sel, &render)
                            && tx.send(line).await.is_err() {
                            return;
                        }
                    }
                    // A watcher too slow to keep up is closed; the client resumes or relists.
                    Err(_) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let current = inner.lock().rv;
                    // Everything up to `current` is already in the channel: send it first so
                    // the bookmark never skips an event.
                    loop {
                        match events.try_recv() {
                            Ok(ev) => {
                                if ev.rv <= last_rv { continue; }
                                last_rv = ev.rv;
                                if let Some(line) = watch_line(&ev, &rt, &ns, &sel, &render)
                                    && tx.send(line).await.is_err() {
                                    return;
                                }
                            }
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(_) => return,
                        }
                    }
                    last_rv = last_rv.max(current);
                    if tx.send(bookmark(&rt, last_rv, false)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    stream_response(Vec::new(), Some(rx))
}

fn stream_response(lines: Vec<String>, rx: Option<mpsc::Receiver<String>>) -> Response<Body> {
    let head = futures::stream::iter(lines.into_iter().map(Ok::<_, std::io::Error>));
    let tail = futures::stream::unfold(rx, |rx| async move {
        let mut rx = rx?;
        let line = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(line), Some(rx)))
    });
    use futures::StreamExt;
    let mut r = Response::new(Body::from_stream(head.chain(tail)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}
