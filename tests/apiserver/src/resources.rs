//! The kinds the server knows: the built-in ones the operator and kubectl use, and those
//! added by CustomResourceDefinitions at run time.

use std::sync::Arc;

use serde_json::{Value, json};
use zonekeeper::api::schema::Schema;

/// One printer column of a Table response.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    /// JSONPath into the object; empty for the server-computed Name/Age columns.
    pub json_path: String,
}

/// A resource served at one group/version.
#[derive(Clone, Debug)]
pub(crate) struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource: status is isolated from the main resource both ways.
    pub status_subresource: bool,
    /// `metadata.generation` is maintained (custom resources and CRDs).
    pub generation: bool,
    /// openAPIV3Schema of a custom resource's version, compiled once per CRD write: every
    /// request clones its ResourceType, and every write of the kind is checked against it.
    pub schema: Option<Arc<Schema>>,
    pub columns: Vec<Column>,
    /// A custom resource (validated, pruned, `kind`/`apiVersion` always stored).
    pub custom: bool,
}

impl ResourceType {
    /// Storage key: one store per group and resource, whatever the version.
    pub fn key(&self) -> String {
        // Both Event kinds share one store, as in a cluster.
        if self.group == "events.k8s.io" && self.plural == "events" {
            return "/events".into();
        }
        format!("{}/{}", self.group, self.plural)
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `configmaps` or `dnszones.dns.zonekeeper.io`, as in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `DnsZone.dns.zonekeeper.io` or `ConfigMap`, as in "is invalid" messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The entries of this resource in an APIResourceList.
    pub fn discovery(&self) -> Vec<Value> {
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut out = vec![main];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

fn name_column() -> Column {
    Column {
        name: "Name".into(),
        type_: "string".into(),
        format: "name".into(),
        description: "Name must be unique within a namespace.".into(),
        priority: 0,
        json_path: String::new(),
    }
}

fn age_column() -> Column {
    Column {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    generation: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        status_subresource: status,
        generation,
        schema: None,
        columns: vec![name_column(), age_column()],
        custom: false,
    }
}

/// The built-in resources served from the start.
pub(crate) fn builtins() -> Vec<ResourceType> {
    let mut ns = builtin(
        "",
        "v1",
        "namespaces",
        "Namespace",
        false,
        &["ns"],
        true,
        false,
    );
    ns.columns.insert(
        1,
        Column {
            name: "Status".into(),
            type_: "string".into(),
            format: String::new(),
            description: "The status of the namespace".into(),
            priority: 0,
            json_path: ".status.phase".into(),
        },
    );
    let mut secrets = builtin("", "v1", "secrets", "Secret", true, &[], false, false);
    secrets.columns.insert(
        1,
        Column {
            name: "Type".into(),
            type_: "string".into(),
            format: String::new(),
            description: "The type of the secret".into(),
            priority: 0,
            json_path: ".type".into(),
        },
    );
    let mut crds = builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        true,
    );
    crds.categories = vec!["api-extensions".into()];
    crds.columns = vec![
        name_column(),
        Column {
            name: "Created At".into(),
            type_: "date".into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        },
    ];
    let column = |name: &str, type_: &str, path: &str| Column {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: path.into(),
    };
    let mut core_events = builtin("", "v1", "events", "Event", true, &["ev"], false, false);
    core_events.columns = vec![
        column(
            "Last Seen",
            "date",
            ".lastTimestamp|.series.lastObservedTime|.eventTime",
        ),
        column("Type", "string", ".type"),
        column("Reason", "string", ".reason"),
        column("Object", "string", ".involvedObject.name"),
        column("Message", "string", ".message"),
    ];
    let mut new_events = builtin(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        false,
    );
    new_events.columns = vec![
        column(
            "Last Seen",
            "date",
            ".deprecatedLastTimestamp|.series.lastObservedTime|.eventTime",
        ),
        column("Type", "string", ".type"),
        column("Reason", "string", ".reason"),
        column("Object", "string", ".regarding.name"),
        column("Message", "string", ".note"),
    ];
    let mut leases = builtin(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        &[],
        false,
        false,
    );
    leases
        .columns
        .insert(1, column("Holder", "string", ".spec.holderIdentity"));
    let mut out = vec![
        ns,
        secrets,
        builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
        ),
        core_events,
        new_events,
        leases,
        crds,
    ];
    // What the Helm chart renders, so `kubectl apply --dry-run=server` of the chart can be
    // tested. Schemaless: stored as sent, no defaulting, no validation, no controllers.
    for (group, plural, kind, namespaced, short) in [
        ("", "serviceaccounts", "ServiceAccount", true, "sa"),
        ("", "services", "Service", true, "svc"),
        ("apps", "deployments", "Deployment", true, "deploy"),
        (
            "policy",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            "pdb",
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            false,
            "",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            false,
            "",
        ),
        ("rbac.authorization.k8s.io", "roles", "Role", true, ""),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            "RoleBinding",
            true,
            "",
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterroles",
            "ClusterRole",
            false,
            "",
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            "",
        ),
    ] {
        let short: &[&str] = if short.is_empty() { &[] } else { &[short] };
        let status = matches!(kind, "Service" | "Deployment" | "PodDisruptionBudget");
        let generation = matches!(kind, "Deployment" | "PodDisruptionBudget");
        out.push(builtin(
            group, "v1", plural, kind, namespaced, short, status, generation,
        ));
    }
    // Reviews are answered, never stored: what `kubectl auth can-i` creates.
    for (plural, kind) in [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    ] {
        out.push(builtin(
            "authorization.k8s.io",
            "v1",
            plural,
            kind,
            false,
            &[],
            false,
            false,
        ));
    }
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The resources a CRD (as stored JSON) serves: one per served version.
pub(crate) fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let mut columns = vec![name_column()];
        let printer = v["additionalPrinterColumns"].as_array();
        for c in printer.into_iter().flatten() {
            columns.push(Column {
                name: c["name"].as_str().unwrap_or_default().into(),
                type_: c["type"].as_str().unwrap_or("string").into(),
                format: c["format"].as_str().unwrap_or_default().into(),
                description: c["description"].as_str().unwrap_or_default().into(),
                priority: c["priority"].as_i64().unwrap_or(0),
                json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
            });
        }
        // A CRD without printer columns gets Age, as a real server does.
        if printer.is_none_or(|p| p.is_empty()) {
            columns.push(age_column());
        }
        out.push(ResourceType {
            group: group.into(),
            version: v["name"].as_str().unwrap_or_default().into(),
            plural: plural.into(),
            singular: singular.clone(),
            kind: kind.into(),
            namespaced,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            status_subresource: v["subresources"].get("status").is_some(),
            generation: true,
            schema: v["schema"]
                .get("openAPIV3Schema")
                .map(|s| Arc::new(Schema::new(s))),
            columns,
            custom: true,
        });
    }
    out
}
