//! The object store and every write's semantics: resourceVersion, generation, status
//! isolation, admission, finalizers, garbage collection and the watch event log.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::fields::{self, Manager};
use crate::resources::{self, ResourceType};
use crate::{Fault, RequestRecord};

/// The finalizer that holds an owner during foreground deletion.
const FOREGROUND: &str = "foregroundDeletion";

/// ConfigMap and Secret payloads (`core.MaxConfigMapSize`, `core.MaxSecretSize`).
pub(crate) const MAX_DATA_BYTES: usize = 1 << 20;
/// All annotations of an object together (`TotalAnnotationSizeLimitB`); kubectl apply's
/// last-applied-configuration annotation meets it first.
pub(crate) const MAX_ANNOTATION_BYTES: usize = 256 << 10;
/// etcd's default `--max-request-bytes`: no stored object may be larger.
pub(crate) const MAX_STORED_BYTES: usize = 3 << 19;

/// How many events a watch can resume from; older resourceVersions get 410 Gone. More than
/// a watch may lag behind before it is closed (the broadcast's 4,096): a real server's watch
/// cache lets a client that lagged resume, and with 2,048 a busy operator watching 10,000
/// DnsZones relisted them all (n objects re-sent and re-read per relist).
pub(crate) const EVENT_WINDOW: usize = 20_000;

/// An object's key in its kind's store: (namespace, name), namespace empty when cluster-scoped.
pub(crate) type ObjectKey = (String, String);

/// The objects of one kind by key, with an index of their labels. Reads go through `Deref`
/// to the map; writes only through `insert` and `remove`, which keep the index in step.
/// A list by label then reads only the objects carrying it: with 10,000 DnsZones every
/// snapshot save lists its chunks by label, and a scan of every ConfigMap per list made
/// this server, not the operator, what a scale benchmark measured. Answers are a scan's.
#[derive(Debug, Default)]
pub(crate) struct Objects {
    by_key: BTreeMap<ObjectKey, Value>,
    /// (label, value) → the keys of the objects carrying it.
    by_label: HashMap<(String, String), BTreeSet<ObjectKey>>,
}

fn labels_of(o: &Value) -> impl Iterator<Item = (String, String)> + '_ {
    o["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
}

impl Objects {
    pub fn insert(&mut self, key: ObjectKey, object: Value) -> Option<Value> {
        for label in labels_of(&object) {
            self.by_label.entry(label).or_default().insert(key.clone());
        }
        let old = self.by_key.insert(key.clone(), object);
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        old
    }

    pub fn remove(&mut self, key: &ObjectKey) -> Option<Value> {
        let old = self.by_key.remove(key)?;
        self.unindex(key, &old);
        Some(old)
    }

    /// Drops `old`'s labels that the object now stored under `key` no longer carries.
    fn unindex(&mut self, key: &ObjectKey, old: &Value) {
        let current = self.by_key.get(key);
        for label in labels_of(old) {
            let kept = current.is_some_and(|o| {
                o["metadata"]["labels"]
                    .get(&label.0)
                    .and_then(Value::as_str)
                    == Some(label.1.as_str())
            });
            if kept {
                continue;
            }
            if let Some(keys) = self.by_label.get_mut(&label) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_label.remove(&label);
                }
            }
        }
    }

    /// The objects carrying `label`=`value`, in key order.
    pub fn labelled<'a>(
        &'a self,
        label: &str,
        value: &str,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a {
        self.by_label
            .get(&(label.to_string(), value.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|k| self.by_key.get_key_value(k))
    }
}

impl std::ops::Deref for Objects {
    type Target = BTreeMap<ObjectKey, Value>;

    fn deref(&self) -> &Self::Target {
        &self.by_key
    }
}

impl<'a> IntoIterator for &'a Objects {
    type Item = (&'a ObjectKey, &'a Value);
    type IntoIter = std::collections::btree_map::Iter<'a, ObjectKey, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.by_key.iter()
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub(crate) struct LogEvent {
    pub rv: u64,
    pub key: String,
    pub namespace: String,
    pub type_: &'static str,
    pub object: Value,
    /// The object before a MODIFIED, so selector watches can turn it into ADDED/DELETED.
    pub prev: Option<Value>,
}

/// A refusal, rendered as a `Status`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn details(mut self, d: Value) -> Self {
        self.details = Some(d);
        self
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
        )
        .details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified()
            ),
        )
        .details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        // etcd's own errors reach clients without a reason, as a bare 500.
        if !self.reason.is_empty() {
            s["reason"] = json!(self.reason);
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Per-request options that change how a write is done.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    /// `Strict`, `Warn` (the default) or `Ignore`.
    pub field_validation: String,
    pub warnings: Vec<String>,
    /// Who writes, when RBAC is enforced (owner-reference permission checks).
    pub user: Option<crate::auth::UserInfo>,
    /// Only compute the object that mutating admission webhooks are shown (patched, pruned,
    /// defaulted; not validated, not stored): their verdict comes before validation.
    pub prepare: bool,
}

pub(crate) struct State {
    pub rv: u64,
    /// The newest resourceVersion no longer in the event log.
    pub compacted: u64,
    pub types: Vec<ResourceType>,
    pub objects: HashMap<String, Objects>,
    pub log: VecDeque<Arc<LogEvent>>,
    pub events: broadcast::Sender<Arc<LogEvent>>,
    pub requests: Vec<RequestRecord>,
    pub faults: Vec<Fault>,
    uid_counter: u64,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn meta(o: &mut Value) -> &mut Map<String, Value> {
    if !o["metadata"].is_object() {
        o["metadata"] = json!({});
    }
    match o.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

fn ns_of(o: &Value) -> String {
    o["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// kube-apiserver labels every namespace with its name, which is what webhooks'
/// `namespaceSelector`s and network policies select namespaces by.
fn name_label(ns: &mut Value) {
    let name = json!(name_of(ns));
    let m = meta(ns);
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert("kubernetes.io/metadata.name".into(), name);
    }
}

pub(crate) fn name_of(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn finalizers(o: &Value) -> Vec<String> {
    o["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(String::from))
        .collect()
}

/// Whether `a` and `b` agree on every top-level field `skip` does not name, compared in place:
/// copying both objects to compare them was a tenth of a status write's cost.
fn same_except(a: &Value, b: &Value, skip: impl Fn(&str) -> bool) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let kept = |m: &Map<String, Value>| m.keys().filter(|k| !skip(k)).count();
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !skip(k))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Whether the two differ only in what never counts as a spec change.
fn same_spec(rt: &ResourceType, a: &Value, b: &Value) -> bool {
    same_except(a, b, |k| {
        matches!(k, "metadata" | "apiVersion" | "kind") || (rt.status_subresource && k == "status")
    })
}

/// Whether the two differ only in managedFields and resourceVersion.
fn same_but_volatile(a: &Value, b: &Value) -> bool {
    same_except(a, b, |k| k == "metadata")
        && a.get("metadata").is_some() == b.get("metadata").is_some()
        && same_except(&a["metadata"], &b["metadata"], |k| {
            matches!(k, "managedFields" | "resourceVersion")
        })
}

/// Removes fields the schema does not declare, as a structural schema's pruning does.
fn prune(schema: &Value, value: &mut Value, path: &str, pruned: &mut Vec<String>, root: bool) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    match value {
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let sub_path = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(sub) = props.and_then(|p| p.get(&k)) {
                    if let Some(v) = map.get_mut(&k) {
                        prune(sub, v, &sub_path, pruned, false);
                    }
                } else if let Some(add) = additional {
                    if let Some(v) = map.get_mut(&k) {
                        prune(add, v, &sub_path, pruned, false);
                    }
                } else if !preserve && (props.is_some() || schema["type"] == "object") {
                    map.remove(&k);
                    pruned.push(sub_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), pruned, false);
                }
            }
        }
        _ => {}
    }
}

/// Object names are DNS subdomains (RFC 1123), namespaces DNS labels, as a real server checks.
fn invalid_name(name: &str, label: bool) -> Option<&'static str> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    if label {
        return (!part_ok(name)).then_some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        );
    }
    (name.len() > 253 || !name.split('.').all(part_ok)).then_some(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    )
}

/// The byte length of a ConfigMap/Secret value as the server counts it: `binaryData` and
/// Secret `data` are base64 on the wire but limited by their decoded size.
fn payload_len(v: &Value, base64: bool) -> usize {
    let text = v.as_str().unwrap_or_default();
    if base64 {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(|b| b.len())
            .unwrap_or(text.len())
    } else {
        text.len()
    }
}

/// The size limits validation enforces on every kind (annotations) and on ConfigMap/Secret
/// payloads, worded as kube-apiserver words them.
fn size_error(rt: &ResourceType, obj: &Value) -> Option<ApiError> {
    let name = name_of(obj);
    let annotations: usize = obj["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if annotations > MAX_ANNOTATION_BYTES {
        return Some(invalid(
            rt,
            name,
            &[(
                "metadata.annotations".into(),
                format!("Too long: must have at most {MAX_ANNOTATION_BYTES} bytes"),
            )],
        ));
    }
    let sum = |field: &str, base64: bool| -> usize {
        obj[field]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, v)| payload_len(v, base64))
            .sum()
    };
    let (total, path) = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "ConfigMap") => (sum("data", false) + sum("binaryData", true), "[]"),
        ("", "Secret") => (sum("data", true) + sum("stringData", false), "data"),
        _ => return None,
    };
    (total > MAX_DATA_BYTES).then(|| {
        invalid(
            rt,
            name,
            &[(
                path.into(),
                format!("Too long: must have at most {MAX_DATA_BYTES} bytes"),
            )],
        )
    })
}

/// What etcd answers when asked to store an object over its request limit.
fn too_large_for_etcd(obj: &Value) -> Option<ApiError> {
    /// Counts what would be written: the size of every write without building its text.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut size = Count(0);
    // Writing to a counter cannot fail, and a Value always serializes.
    let _ = serde_json::to_writer(&mut size, obj);
    (size.0 > MAX_STORED_BYTES).then(|| ApiError::new(500, "", "etcdserver: request is too large"))
}

fn cause_reason(message: &str) -> &'static str {
    match message {
        m if m.starts_with("Required value") => "FieldValueRequired",
        m if m.starts_with("Unsupported value") => "FieldValueNotSupported",
        m if m.starts_with("Too long") => "FieldValueTooLong",
        m if m.starts_with("Too many") => "FieldValueTooMany",
        m if m.starts_with("Forbidden") => "FieldValueForbidden",
        _ => "FieldValueInvalid",
    }
}

/// A 422 Invalid, worded as a real server words it.
pub(crate) fn invalid(rt: &ResourceType, name: &str, errors: &[(String, String)]) -> ApiError {
    let list: Vec<String> = errors.iter().map(|(p, m)| format!("{p}: {m}")).collect();
    let joined = if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|(p, m)| json!({"reason": cause_reason(m), "message": m, "field": p}))
        .collect();
    ApiError::new(
        422,
        "Invalid",
        format!("{} \"{name}\" is invalid: {joined}", rt.qualified_kind()),
    )
    .details(json!({"name": name, "group": rt.group, "kind": rt.kind, "causes": causes}))
}

impl State {
    pub fn new(events: broadcast::Sender<Arc<LogEvent>>) -> Self {
        let mut s = State {
            rv: 1,
            compacted: 0,
            types: resources::builtins(),
            objects: HashMap::new(),
            log: VecDeque::new(),
            events,
            requests: Vec::new(),
            faults: Vec::new(),
            uid_counter: 0,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let rt = s.find("", "v1", "namespaces").cloned();
            if let Some(rt) = rt {
                let _ = s.create(&rt, "", obj, &mut WriteOpts::default(), None);
            }
        }
        s
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (nanos >> 32) as u32,
            (nanos >> 16) as u16,
            (nanos & 0xfff) as u16,
            (self.uid_counter >> 48) as u16 & 0xfff,
            self.uid_counter & 0xffff_ffff_ffff
        )
    }

    fn emit(
        &mut self,
        key: &str,
        namespace: &str,
        type_: &'static str,
        object: Value,
        prev: Option<Value>,
    ) {
        let ev = Arc::new(LogEvent {
            rv: self.rv,
            key: key.into(),
            namespace: namespace.into(),
            type_,
            object,
            prev,
        });
        self.log.push_back(ev.clone());
        while self.log.len() > EVENT_WINDOW {
            if let Some(old) = self.log.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.events.send(ev);
    }

    /// Makes every resourceVersion before now too old to watch from or continue a list at.
    pub fn expire(&mut self) {
        self.rv += 1;
        self.compacted = self.rv;
        self.log.clear();
    }

    fn store(&mut self, rt: &ResourceType) -> &mut Objects {
        self.objects.entry(rt.key()).or_default()
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        self.objects
            .get(&rt.key())
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .map(|o| self.present(rt, o))
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// The object as served at `rt`'s version.
    pub fn present(&self, rt: &ResourceType, o: &Value) -> Value {
        present(rt, o)
    }

    fn namespace_check(&self, rt: &ResourceType, ns: &str) -> ApiResult<()> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns_obj = self
            .objects
            .get("/namespaces")
            .and_then(|m| m.get(&(String::new(), ns.to_string())));
        match ns_obj {
            None => Err(
                ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
                    .details(json!({"name": ns, "kind": "namespaces"})),
            ),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.qualified()
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Pruning, defaulting and schema validation of a custom resource.
    fn admit(
        &self,
        rt: &ResourceType,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &mut WriteOpts,
    ) -> ApiResult<()> {
        let name = name_of(obj).to_string();
        if name.is_empty() {
            return Err(invalid(
                rt,
                &name,
                &[(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )],
            ));
        }
        // RBAC objects are named like `system:discovery`: only path segments are checked.
        let rbac = rt.group == "rbac.authorization.k8s.io";
        if rbac && (name == "." || name == ".." || name.contains(['/', '%'])) {
            return Err(invalid(
                rt,
                &name,
                &[(
                    "metadata.name".into(),
                    format!(
                        "Invalid value: \"{name}\": may not contain '/' or '%', or be '.' or '..'"
                    ),
                )],
            ));
        }
        if let Some(why) = invalid_name(&name, rt.kind == "Namespace").filter(|_| !rbac) {
            return Err(invalid(
                rt,
                &name,
                &[(
                    "metadata.name".into(),
                    format!("Invalid value: \"{name}\": {why}"),
                )],
            ));
        }
        if !opts.prepare
            && let Some(e) = size_error(rt, obj)
        {
            return Err(e);
        }
        if rt.group == crate::webhooks::GROUP {
            let errors = crate::webhooks::validate_configuration(obj);
            if !errors.is_empty() {
                return Err(invalid(rt, &name, &errors));
            }
        }
        let Some(compiled) = &rt.schema else {
            return Ok(());
        };
        let schema = compiled.json();
        let mut pruned = Vec::new();
        prune(schema, obj, "", &mut pruned, true);
        if !pruned.is_empty() {
            match opts.field_validation.as_str() {
                "Strict" => {
                    let list: Vec<String> = pruned
                        .iter()
                        .map(|p| format!("unknown field \"{p}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                        list.join(", "),
                        kind = rt.kind,
                        version = rt.version,
                    )));
                }
                "Ignore" => {}
                _ => opts
                    .warnings
                    .extend(pruned.iter().map(|p| format!("unknown field \"{p}\""))),
            }
        }
        let metadata = obj["metadata"].clone();
        let mut defaulted = zonekeeper::api::schema::apply_defaults(schema, obj);
        defaulted["metadata"] = metadata;
        *obj = defaulted;
        if opts.prepare {
            return Ok(());
        }
        if let Err(errors) = compiled.validate(obj, old) {
            let errs: Vec<(String, String)> =
                errors.into_iter().map(|e| (e.path, e.message)).collect();
            return Err(invalid(rt, &name, &errs));
        }
        Ok(())
    }

    /// POST. `managers` replaces the usual Update entry (server-side apply's create).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &mut WriteOpts,
        managers: Option<Vec<Manager>>,
    ) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        if let Some(k) = obj["kind"].as_str()
            && k != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({k}) does not match the resource ({})",
                rt.kind
            )));
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let m = meta(&mut obj);
        if m.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
            && let Some(prefix) = m
                .get("generateName")
                .and_then(Value::as_str)
                .map(String::from)
        {
            let suffix: String = (0..5)
                .map(|i| {
                    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
                    let n =
                        self.uid_counter.wrapping_mul(2654435761).wrapping_add(
                            chrono::Utc::now().timestamp_subsec_nanos() as u64 >> (i * 3),
                        ) as usize;
                    ALPHABET[(n + i * 7) % ALPHABET.len()] as char
                })
                .collect();
            self.uid_counter += 1;
            let m = meta(&mut obj);
            m.insert("name".into(), json!(format!("{prefix}{suffix}")));
        }
        let m = meta(&mut obj);
        if rt.namespaced {
            match m.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    m.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            m.remove("namespace");
        }
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            m.remove(k);
        }
        let name = name_of(&obj).to_string();
        self.namespace_check(rt, ns)?;
        if self
            .objects
            .get(&rt.key())
            .is_some_and(|s| s.contains_key(&(ns.to_string(), name.clone())))
        {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.qualified()),
            )
            .details(json!({"name": name, "group": rt.group, "kind": rt.plural})));
        }
        if rt.status_subresource
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        if rt.kind == "Secret" && obj["type"].as_str().unwrap_or_default().is_empty() {
            obj["type"] = json!("Opaque");
        }
        if rt.kind == "Namespace" {
            name_label(&mut obj);
            obj["status"] = json!({"phase": "Active"});
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        self.admit(rt, &mut obj, None, opts)?;
        if !opts.prepare {
            crate::auth::check_owner_references(self, rt, ns, None, &obj, opts)?;
        }
        if rt.kind == "CustomResourceDefinition" {
            obj["status"] = crd_status(&obj);
        }
        let now = now();
        let uid = self.new_uid();
        let m = meta(&mut obj);
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now));
        if rt.generation {
            m.insert("generation".into(), json!(1));
        }
        let mut managers = match managers {
            Some(ms) => ms,
            None => {
                let mut ms = Vec::new();
                fields::record_update(
                    &mut ms,
                    None,
                    &obj,
                    &opts.manager,
                    "",
                    &rt.api_version(),
                    &now,
                );
                ms
            }
        };
        for m in &mut managers {
            if m.time.is_empty() {
                m.time = now.clone();
            }
        }
        meta(&mut obj).insert("managedFields".into(), fields::encode(&managers));
        if opts.dry_run {
            return Ok(obj);
        }
        if let Some(e) = too_large_for_etcd(&obj) {
            return Err(e);
        }
        self.rv += 1;
        meta(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let obj = to_storage(rt, obj);
        self.store(rt).insert((ns.to_string(), name), obj.clone());
        self.emit(&rt.key(), ns, "ADDED", obj.clone(), None);
        if rt.kind == "CustomResourceDefinition" {
            self.refresh_types();
        }
        Ok(obj)
    }

    /// PUT: the body must carry the current resourceVersion (custom resources) or none.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        obj: Value,
        sub: &str,
        opts: &mut WriteOpts,
    ) -> ApiResult<Value> {
        let old = self.get(rt, ns, name)?;
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        let body_name = name_of(&obj);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        match obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
        {
            "" if rt.custom => {
                return Err(invalid(
                    rt,
                    name,
                    &[(
                        "metadata.resourceVersion".into(),
                        "Invalid value: 0x0: must be specified for an update".into(),
                    )],
                ));
            }
            "" => {}
            rv if Some(rv) != old["metadata"]["resourceVersion"].as_str() => {
                return Err(ApiError::conflict(rt, name));
            }
            _ => {}
        }
        self.finish_update(rt, ns, &old, obj, sub, opts, None)
    }

    /// The part every write to an existing object shares.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        old: &Value,
        candidate: Value,
        sub: &str,
        opts: &mut WriteOpts,
        managers: Option<Vec<Manager>>,
    ) -> ApiResult<Value> {
        let name = name_of(old).to_string();
        let mut new = if sub == "status" {
            let mut n = old.clone();
            match candidate.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    if let Some(o) = n.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            n
        } else {
            let mut n = candidate;
            if rt.status_subresource {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(o) = n.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            n
        };
        new["apiVersion"] = json!(rt.api_version());
        new["kind"] = json!(rt.kind);
        let m = meta(&mut new);
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old["metadata"].get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        m.remove("selfLink");
        if old["metadata"].get("deletionTimestamp").is_some() {
            let before = finalizers(old);
            if finalizers(&new).iter().any(|f| !before.contains(f)) {
                return Err(invalid(
                    rt,
                    &name,
                    &[(
                        "metadata.finalizers".into(),
                        "Forbidden: no new finalizers can be added if the object is being deleted"
                            .into(),
                    )],
                ));
            }
        }
        if rt.kind == "Namespace" {
            name_label(&mut new);
        }
        if rt.kind == "Namespace" && sub != "status" {
            new["status"] = old["status"].clone();
        }
        self.admit(rt, &mut new, Some(old), opts)?;
        if !opts.prepare {
            crate::auth::check_owner_references(self, rt, &ns_of(old), Some(old), &new, opts)?;
        }
        if rt.kind == "CustomResourceDefinition" {
            new["status"] = crd_status(&new);
        }
        if rt.generation && !same_spec(rt, old, &new) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta(&mut new).insert("generation".into(), json!(g));
        }
        let now = now();
        let mut managers = match managers {
            Some(ms) => ms,
            None => {
                let mut ms = fields::decode(old);
                fields::record_update(
                    &mut ms,
                    Some(old),
                    &new,
                    &opts.manager,
                    sub,
                    &rt.api_version(),
                    &now,
                );
                ms
            }
        };
        for m in &mut managers {
            if m.time.is_empty() {
                m.time = now.clone();
            }
        }
        meta(&mut new).insert("managedFields".into(), fields::encode(&managers));
        if same_but_volatile(&new, old) {
            // A write that changes nothing is not a write: no new resourceVersion, no event.
            return Ok(old.clone());
        }
        if opts.dry_run {
            return Ok(new);
        }
        if let Some(e) = too_large_for_etcd(&new) {
            return Err(e);
        }
        self.rv += 1;
        meta(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let new = to_storage(rt, new);
        let key = (ns.to_string(), name.clone());
        if !new["metadata"]["deletionTimestamp"].is_null() && finalizers(&new).is_empty() {
            self.store(rt).remove(&key);
            self.emit(&rt.key(), ns, "DELETED", new.clone(), None);
            self.after_delete(rt, &new);
            return Ok(new);
        }
        // The object replaced is the event's `prev`, as stored: no copy of `old` to make.
        let prev = self.store(rt).insert(key, new.clone());
        let prev = prev.unwrap_or_else(|| to_storage(rt, old.clone()));
        self.emit(&rt.key(), ns, "MODIFIED", new.clone(), Some(prev));
        if rt.kind == "CustomResourceDefinition" {
            self.refresh_types();
        }
        Ok(new)
    }

    /// DELETE with DeleteOptions (preconditions, propagationPolicy, dryRun).
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> ApiResult<Value> {
        let old = self.get(rt, ns, name)?;
        let pre = &options["preconditions"];
        if let Some(uid) = pre["uid"].as_str()
            && Some(uid) != old["metadata"]["uid"].as_str()
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    old["metadata"]["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = pre["resourceVersion"].as_str()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(rt, name));
        }
        if dry_run {
            return Ok(old);
        }
        let uid = old["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match options["propagationPolicy"].as_str() {
            Some("Orphan") => self.orphan(&uid),
            Some("Foreground") if !self.dependents_of(&uid).is_empty() => {
                // The owner waits, marked for deletion, until its dependents are gone.
                let key = (ns.to_string(), name.to_string());
                if let Some(mut stored) = self.store(rt).get(&key).cloned() {
                    let m = meta(&mut stored);
                    let list = m.entry("finalizers").or_insert_with(|| json!([]));
                    if let Some(a) = list.as_array_mut()
                        && !a.iter().any(|f| f == FOREGROUND)
                    {
                        a.push(json!(FOREGROUND));
                    }
                    self.store(rt).insert(key, stored);
                }
                self.delete_object(rt, ns, name);
                for (drt, dns, dname) in self.dependents_of(&uid) {
                    self.delete_object(&drt, &dns, &dname);
                }
                self.collect_garbage();
                return Ok(self.get(rt, ns, name).unwrap_or(old));
            }
            _ => {}
        }
        self.delete_object(rt, ns, name);
        Ok(self.get(rt, ns, name).unwrap_or(old))
    }

    /// Deletes now, or marks for deletion while finalizers remain.
    fn delete_object(&mut self, rt: &ResourceType, ns: &str, name: &str) {
        let key = (ns.to_string(), name.to_string());
        let Some(old) = self.store(rt).get(&key).cloned() else {
            return;
        };
        let is_ns = rt.kind == "Namespace";
        if !finalizers(&old).is_empty() || is_ns {
            if !old["metadata"]["deletionTimestamp"].is_null() {
                return;
            }
            let mut new = old.clone();
            let m = meta(&mut new);
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if rt.generation {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                m.insert("generation".into(), json!(g));
            }
            if is_ns {
                new["status"]["phase"] = json!("Terminating");
            }
            self.rv += 1;
            meta(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
            self.store(rt).insert(key, new.clone());
            self.emit(&rt.key(), ns, "MODIFIED", new, Some(old));
            if is_ns {
                self.empty_namespace(name);
            }
            return;
        }
        self.store(rt).remove(&key);
        self.rv += 1;
        let mut gone = old;
        meta(&mut gone).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.emit(&rt.key(), ns, "DELETED", gone.clone(), None);
        self.after_delete(rt, &gone);
    }

    fn after_delete(&mut self, rt: &ResourceType, gone: &Value) {
        if rt.kind == "CustomResourceDefinition" {
            self.drop_crd_objects(gone);
            self.refresh_types();
        }
        self.collect_garbage();
    }

    fn drop_crd_objects(&mut self, crd: &Value) {
        for rt in resources::from_crd(crd).into_iter().take(1) {
            let keys: Vec<(String, String)> = self.store(&rt).keys().cloned().collect();
            for (ns, name) in keys {
                if let Some(mut o) = self.store(&rt).remove(&(ns.clone(), name)) {
                    self.rv += 1;
                    meta(&mut o).insert("resourceVersion".into(), json!(self.rv.to_string()));
                    self.emit(&rt.key(), &ns, "DELETED", o, None);
                }
            }
        }
    }

    /// Deletes everything in a terminating namespace, then the namespace once it is empty.
    fn empty_namespace(&mut self, ns: &str) {
        let types: Vec<ResourceType> = self
            .unique_types()
            .into_iter()
            .filter(|t| t.namespaced)
            .collect();
        for rt in &types {
            let names: Vec<String> = self
                .store(rt)
                .keys()
                .filter(|(n, _)| n == ns)
                .map(|(_, name)| name.clone())
                .collect();
            for name in names {
                self.delete_object(rt, ns, &name);
            }
        }
        self.finish_namespaces();
    }

    fn finish_namespaces(&mut self) {
        let Some(ns_rt) = self.find("", "v1", "namespaces").cloned() else {
            return;
        };
        let terminating: Vec<String> = self
            .store(&ns_rt)
            .values()
            .filter(|n| !n["metadata"]["deletionTimestamp"].is_null() && finalizers(n).is_empty())
            .map(|n| name_of(n).to_string())
            .collect();
        for ns in terminating {
            let occupied = self
                .objects
                .iter()
                .filter(|(k, _)| k.as_str() != "/namespaces")
                .any(|(_, m)| m.keys().any(|(n, _)| n == &ns));
            if !occupied
                && let Some(mut o) = self.store(&ns_rt).remove(&(String::new(), ns.clone()))
            {
                self.rv += 1;
                meta(&mut o).insert("resourceVersion".into(), json!(self.rv.to_string()));
                self.emit(&ns_rt.key(), "", "DELETED", o, None);
            }
        }
    }

    /// One ResourceType per stored kind (the first served version).
    fn unique_types(&self) -> Vec<ResourceType> {
        let mut seen = std::collections::HashSet::new();
        self.types
            .iter()
            .filter(|t| seen.insert(t.key()))
            .cloned()
            .collect()
    }

    /// Background garbage collection: a dependent all of whose owners are gone is deleted.
    fn collect_garbage(&mut self) {
        loop {
            let uids: std::collections::HashSet<String> = self
                .objects
                .values()
                .flat_map(|m| m.values())
                .filter_map(|o| o["metadata"]["uid"].as_str().map(String::from))
                .collect();
            let mut doomed = Vec::new();
            for rt in self.unique_types() {
                for ((ns, name), o) in self.objects.get(&rt.key()).into_iter().flatten() {
                    let owners = o["metadata"]["ownerReferences"].as_array();
                    let Some(owners) = owners.filter(|a| !a.is_empty()) else {
                        continue;
                    };
                    let orphaned = owners
                        .iter()
                        .all(|r| !uids.contains(r["uid"].as_str().unwrap_or_default()));
                    if orphaned && o["metadata"]["deletionTimestamp"].is_null() {
                        doomed.push((rt.clone(), ns.clone(), name.clone()));
                    }
                }
            }
            if doomed.is_empty() {
                if self.release_foreground_owners() {
                    continue;
                }
                break;
            }
            for (rt, ns, name) in doomed {
                self.delete_object(&rt, &ns, &name);
            }
        }
        self.finish_namespaces();
    }

    /// Every object with an ownerReference to `uid`.
    fn dependents_of(&self, uid: &str) -> Vec<(ResourceType, String, String)> {
        let mut out = Vec::new();
        for rt in self.unique_types() {
            for ((ns, name), o) in self.objects.get(&rt.key()).into_iter().flatten() {
                let owned = o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|r| r["uid"] == uid));
                if owned {
                    out.push((rt.clone(), ns.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// Foreground deletion: an owner whose dependents are all gone loses its
    /// `foregroundDeletion` finalizer (and is deleted when none remains). True if any did.
    fn release_foreground_owners(&mut self) -> bool {
        let mut ready = Vec::new();
        for rt in self.unique_types() {
            for ((ns, name), o) in self.objects.get(&rt.key()).into_iter().flatten() {
                let uid = o["metadata"]["uid"].as_str().unwrap_or_default();
                if finalizers(o).iter().any(|f| f == FOREGROUND)
                    && self.dependents_of(uid).is_empty()
                {
                    ready.push((rt.clone(), ns.clone(), name.clone(), o.clone()));
                }
            }
        }
        for (rt, ns, name, old) in &ready {
            let mut new = old.clone();
            if let Some(a) = new["metadata"]["finalizers"].as_array_mut() {
                a.retain(|f| f != FOREGROUND);
            }
            self.rv += 1;
            meta(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
            let key = (ns.clone(), name.clone());
            if finalizers(&new).is_empty() {
                self.store(rt).remove(&key);
                self.emit(&rt.key(), ns, "DELETED", new.clone(), None);
                if rt.kind == "CustomResourceDefinition" {
                    self.drop_crd_objects(&new);
                    self.refresh_types();
                }
            } else {
                self.store(rt).insert(key, new.clone());
                self.emit(&rt.key(), ns, "MODIFIED", new, Some(old.clone()));
            }
        }
        !ready.is_empty()
    }

    /// `propagationPolicy: Orphan`: dependents lose their reference to the owner.
    fn orphan(&mut self, uid: &str) {
        for rt in self.unique_types() {
            let dependents: Vec<((String, String), Value)> = self
                .store(&rt)
                .iter()
                .filter(|(_, o)| {
                    o["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|r| r["uid"] == uid))
                })
                .map(|(k, o)| (k.clone(), o.clone()))
                .collect();
            for (key, old) in dependents {
                let mut new = old.clone();
                if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid);
                }
                self.rv += 1;
                meta(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
                self.store(&rt).insert(key.clone(), new.clone());
                self.emit(&rt.key(), &key.0, "MODIFIED", new, Some(old));
            }
        }
    }

    fn refresh_types(&mut self) {
        let mut types = resources::builtins();
        let crds: Vec<Value> = self
            .objects
            .get("apiextensions.k8s.io/customresourcedefinitions")
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for crd in &crds {
            types.extend(resources::from_crd(crd));
        }
        self.types = types;
    }
}

/// Renames between core/v1 Event (the stored form) and events.k8s.io/v1 Event: both kinds
/// are one store, as in a cluster, so `kubectl describe` shows what a Recorder published.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("reportingComponent", "reportingController"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(o: Value, to_core: bool) -> Value {
    let Value::Object(mut m) = o else { return o };
    for (core, new) in EVENT_RENAMES {
        let (from, to) = if to_core { (new, core) } else { (core, new) };
        if let Some(v) = m.remove(*from) {
            m.insert((*to).to_string(), v);
        }
    }
    Value::Object(m)
}

/// The stored form of an object written through `rt`.
pub(crate) fn to_storage(rt: &ResourceType, o: Value) -> Value {
    if rt.group == "events.k8s.io" {
        let mut o = rename(o, true);
        o["apiVersion"] = json!("v1");
        o
    } else {
        o
    }
}

/// A stored object as served at `rt`'s group and version.
pub(crate) fn present(rt: &ResourceType, o: &Value) -> Value {
    into_presented(rt, o.clone())
}

/// [`present`] for an object the caller owns: no copy.
pub(crate) fn into_presented(rt: &ResourceType, o: Value) -> Value {
    let mut o = if rt.group == "events.k8s.io" {
        rename(o, false)
    } else {
        o
    };
    o["apiVersion"] = json!(rt.api_version());
    o["kind"] = json!(rt.kind);
    o
}

fn crd_status(crd: &Value) -> Value {
    let t = now();
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    json!({
        "acceptedNames": crd["spec"]["names"],
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": t},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": t},
        ],
        "storedVersions": storage,
    })
}

/// A parsed label selector requirement.
#[derive(Debug)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// `labelSelector` and `fieldSelector` of a list or watch.
#[derive(Debug, Default)]
pub(crate) struct Selectors {
    labels: Vec<Requirement>,
    fields: Vec<(String, bool, String)>,
}

fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn set_values(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|v| v.trim().to_string())
        .collect()
}

impl Selectors {
    pub fn parse(labels: &str, fields: &str) -> ApiResult<Selectors> {
        let mut sel = Selectors::default();
        for part in split_top(labels) {
            let req = if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set_values(v))
            } else if let Some((k, v)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), set_values(v))
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if part.contains(['(', ' ', '<', '>']) {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: found '{part}'"
                )));
            } else {
                Requirement::Exists(part)
            };
            sel.labels.push(req);
        }
        for part in split_top(fields) {
            let (k, neg, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: '{part}'"
                )));
            };
            sel.fields.push((k.trim().into(), neg, v.trim().into()));
        }
        Ok(sel)
    }

    /// A `label=value` every match carries: a list need only read the objects labelled so.
    pub fn required_label(&self) -> Option<(&str, &str)> {
        self.labels.iter().find_map(|r| match r {
            Requirement::Eq(k, v) => Some((k.as_str(), v.as_str())),
            _ => None,
        })
    }

    pub fn matches(&self, o: &Value) -> bool {
        let labels = &o["metadata"]["labels"];
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            Requirement::Eq(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|(path, neg, want)| {
                let got = path
                    .split('.')
                    .try_fold(o, |v, k| v.get(k))
                    .map(|v| {
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_default();
                (got == *want) != *neg
            })
    }
}
