//! Who is asking and whether they may: kube-apiserver's `--token-auth-file` authentication,
//! anonymous requests, impersonation, and the RBAC authorizer over the stored Roles,
//! ClusterRoles and their bindings.

use std::collections::HashMap;
use std::path::Path;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::store::{ApiError, State, WriteOpts};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
pub(crate) const ANONYMOUS: &str = "system:anonymous";
const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const MASTERS: &str = "system:masters";
const SA_PREFIX: &str = "system:serviceaccount:";

/// A user of a bearer token (one line of a token file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUser {
    pub token: String,
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: need at least token,user,uid")]
    Short { path: String, line: usize },
}

/// One CSV line: fields split at commas outside double quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

/// Parses a kube-apiserver token file: `token,user,uid,"group1,group2"` per line.
pub fn parse_token_file(path: &Path) -> Result<Vec<TokenUser>, TokenFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let f = csv_fields(line);
        if f.len() < 3 {
            return Err(TokenFileError::Short {
                path: path.display().to_string(),
                line: i + 1,
            });
        }
        let groups = f
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        out.push(TokenUser {
            token: f[0].clone(),
            name: f[1].clone(),
            uid: f[2].clone(),
            groups,
        });
    }
    Ok(out)
}

/// How requests are authenticated and authorized.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthConfig {
    /// Authentication is on: bearer tokens are checked, a request without one is anonymous.
    pub enabled: bool,
    pub tokens: HashMap<String, TokenUser>,
    pub anonymous: bool,
    pub rbac: bool,
}

/// The authenticated (and possibly impersonated) user of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The groups a user gets implicitly: every ServiceAccount is in `system:serviceaccounts`
/// and its namespace's group; everyone but anonymous is `system:authenticated`.
fn implicit_groups(name: &str, mut groups: Vec<String>) -> Vec<String> {
    let mut add = |g: String| {
        if !groups.contains(&g) {
            groups.push(g);
        }
    };
    if let Some(rest) = name.strip_prefix(SA_PREFIX)
        && let Some((ns, _)) = rest.split_once(':')
    {
        add("system:serviceaccounts".into());
        add(format!("system:serviceaccounts:{ns}"));
    }
    if name == ANONYMOUS {
        add(UNAUTHENTICATED.into());
    } else {
        add(AUTHENTICATED.into());
    }
    groups
}

/// The user of a request from its bearer token; `Err` is the 401 to answer.
pub(crate) fn authenticate(cfg: &AuthConfig, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let unauthorized = || ApiError::new(401, "Unauthorized", "Unauthorized");
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match bearer {
        Some(token) => {
            // A token that is presented but unknown is refused even when anonymous is on.
            let u = cfg.tokens.get(token).ok_or_else(unauthorized)?;
            Ok(UserInfo {
                name: u.name.clone(),
                uid: u.uid.clone(),
                groups: implicit_groups(&u.name, u.groups.clone()),
            })
        }
        None if cfg.anonymous => Ok(UserInfo {
            name: ANONYMOUS.into(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED.into()],
        }),
        None => Err(unauthorized()),
    }
}

/// What a request asks to do, as the authorizer sees it.
#[derive(Clone, Debug)]
pub(crate) enum Attributes {
    Resource {
        verb: String,
        group: String,
        resource: String,
        sub: String,
        ns: String,
        name: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Attributes {
    /// The real authorizer's wording of a denial, and the resource and name of the Status.
    pub fn forbidden(&self, user: &str) -> ApiError {
        match self {
            Attributes::Resource {
                verb,
                group,
                resource,
                sub,
                ns,
                name,
            } => {
                let qualified = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                let subject = if name.is_empty() {
                    qualified
                } else {
                    format!("{qualified} \"{name}\"")
                };
                let combined = if sub.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{sub}")
                };
                let scope = if ns.is_empty() {
                    "at the cluster scope".to_string()
                } else {
                    format!("in the namespace \"{ns}\"")
                };
                ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{combined}\" in API group \"{group}\" {scope}"
                    ),
                )
                .details(json!({"name": name, "group": group, "kind": resource}))
            }
            Attributes::NonResource { verb, path } => ApiError::new(
                403,
                "Forbidden",
                format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\""),
            )
            .details(json!({})),
        }
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verbs = strings(&rule["verbs"]);
    let verb_ok = |v: &str| verbs.iter().any(|r| *r == "*" || *r == v);
    match attrs {
        Attributes::Resource {
            verb,
            group,
            resource,
            sub,
            name,
            ..
        } => {
            if !verb_ok(verb) {
                return false;
            }
            let groups = strings(&rule["apiGroups"]);
            if !groups.iter().any(|g| *g == "*" || g == group) {
                return false;
            }
            let combined = if sub.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{sub}")
            };
            let resources = strings(&rule["resources"]);
            let resource_ok = resources.iter().any(|r| {
                *r == "*"
                    || *r == combined
                    || (!sub.is_empty() && r.strip_prefix("*/") == Some(sub.as_str()))
            });
            if !resource_ok {
                return false;
            }
            let names = strings(&rule["resourceNames"]);
            names.is_empty() || names.iter().any(|n| n == name)
        }
        Attributes::NonResource { verb, path } => {
            if !verb_ok(verb) {
                return false;
            }
            strings(&rule["nonResourceURLs"]).iter().any(|u| {
                *u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
            })
        }
    }
}

fn subject_matches(subject: &Value, user: &UserInfo) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str().unwrap_or_default() {
        "User" => name == user.name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject["namespace"].as_str().unwrap_or_default();
            user.name == format!("{SA_PREFIX}{ns}:{name}")
        }
        _ => false,
    }
}

fn stored<'a>(state: &'a State, plural: &str) -> impl Iterator<Item = (&'a str, &'a Value)> {
    state
        .objects
        .get(&format!("{RBAC_GROUP}/{plural}"))
        .into_iter()
        .flatten()
        .map(|((ns, _), o)| (ns.as_str(), o))
}

fn role_rules<'a>(state: &'a State, role_ref: &Value, ns: &str) -> Vec<&'a Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    let (plural, ns) = match role_ref["kind"].as_str() {
        Some("ClusterRole") => ("clusterroles", ""),
        _ => ("roles", ns),
    };
    state
        .objects
        .get(&format!("{RBAC_GROUP}/{plural}"))
        .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
        .map(|r| r["rules"].as_array().into_iter().flatten().collect())
        .unwrap_or_default()
}

/// Every rule that applies to `user` in namespace `ns` (cluster-wide ones when `ns` is empty).
pub(crate) fn rules_for<'a>(state: &'a State, user: &UserInfo, ns: &str) -> Vec<&'a Value> {
    let mut rules = Vec::new();
    let bound = |b: &Value| {
        strings_of(&b["subjects"])
            .iter()
            .any(|s| subject_matches(s, user))
    };
    for (_, b) in stored(state, "clusterrolebindings") {
        if bound(b) {
            rules.extend(role_rules(state, &b["roleRef"], ""));
        }
    }
    if !ns.is_empty() {
        for (bns, b) in stored(state, "rolebindings") {
            if bns == ns && bound(b) {
                rules.extend(role_rules(state, &b["roleRef"], ns));
            }
        }
    }
    rules
}

fn strings_of(v: &Value) -> Vec<&Value> {
    v.as_array().into_iter().flatten().collect()
}

/// RBAC: allowed if any rule bound to the user allows it; `system:masters` may do anything.
pub(crate) fn allowed(state: &State, user: &UserInfo, attrs: &Attributes) -> bool {
    if user.groups.iter().any(|g| g == MASTERS) {
        return true;
    }
    let ns = match attrs {
        Attributes::Resource { ns, .. } => ns.as_str(),
        Attributes::NonResource { .. } => "",
    };
    rules_for(state, user, ns)
        .into_iter()
        .any(|r| rule_allows(r, attrs))
}

/// Applies `Impersonate-*` headers after checking the `impersonate` verb, as kube-apiserver's
/// impersonation filter does. Returns the user the request then acts as.
pub(crate) fn impersonate(
    state: &State,
    cfg: &AuthConfig,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let header = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let Some(target) = header("impersonate-user").into_iter().next() else {
        return Ok(user);
    };
    let groups = header("impersonate-group");
    let uid = header("impersonate-uid").into_iter().next();
    if cfg.rbac {
        let mut checks = Vec::new();
        match target
            .strip_prefix(SA_PREFIX)
            .and_then(|r| r.split_once(':'))
        {
            Some((ns, name)) => checks.push(("serviceaccounts", ns.to_string(), name.to_string())),
            None => checks.push(("users", String::new(), target.clone())),
        }
        for g in &groups {
            checks.push(("groups", String::new(), g.clone()));
        }
        if let Some(u) = &uid {
            checks.push(("uids", String::new(), u.clone()));
        }
        for (resource, ns, name) in checks {
            let attrs = Attributes::Resource {
                verb: "impersonate".into(),
                group: String::new(),
                resource: resource.into(),
                sub: String::new(),
                ns,
                name,
            };
            if !allowed(state, &user, &attrs) {
                return Err(attrs.forbidden(&user.name));
            }
        }
    }
    Ok(UserInfo {
        groups: implicit_groups(&target, groups),
        name: target,
        uid: uid.unwrap_or_default(),
    })
}

/// The authorizer's view of a resource request.
pub(crate) fn resource_verb(method: &str, name: &str, watch: bool) -> &'static str {
    match (method, name.is_empty()) {
        ("GET", true) if watch => "watch",
        ("GET", true) => "list",
        ("GET", false) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "deletecollection",
        ("DELETE", false) => "delete",
        _ => "unknown",
    }
}

/// OwnerReferencesPermissionEnforcement: setting `blockOwnerDeletion` on a reference needs
/// `update` on the owner's `finalizers` subresource.
pub(crate) fn check_owner_references(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    old: Option<&Value>,
    new: &Value,
    opts: &WriteOpts,
) -> Result<(), ApiError> {
    let Some(user) = &opts.user else {
        return Ok(());
    };
    let blocking = |o: &Value| -> Vec<Value> {
        o["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["blockOwnerDeletion"].as_bool() == Some(true))
            .cloned()
            .collect()
    };
    let before = old.map(blocking).unwrap_or_default();
    for r in blocking(new) {
        if before.contains(&r) {
            continue;
        }
        let api_version = r["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = r["kind"].as_str().unwrap_or_default();
        let Some(owner) = state
            .types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
        else {
            continue;
        };
        let attrs = Attributes::Resource {
            verb: "update".into(),
            group: group.into(),
            resource: owner.plural.clone(),
            sub: "finalizers".into(),
            ns: if owner.namespaced {
                ns.into()
            } else {
                String::new()
            },
            name: r["name"].as_str().unwrap_or_default().into(),
        };
        if !allowed(state, user, &attrs) {
            let why = attrs.forbidden(&user.name).message;
            let why = why
                .split_once("is forbidden: ")
                .map_or(why.as_str(), |(_, w)| w);
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{}\" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: {why}",
                    rt.qualified(),
                    crate::store::name_of(new)
                ),
            ));
        }
    }
    Ok(())
}

/// `SelfSubjectAccessReview` and `SelfSubjectRulesReview`: what `kubectl auth can-i` asks.
pub(crate) fn review(state: &State, kind: &str, user: &UserInfo, body: &Value) -> Value {
    let spec = &body["spec"];
    let status = if kind == "SelfSubjectRulesReview" {
        let ns = spec["namespace"].as_str().unwrap_or_default();
        let masters = user.groups.iter().any(|g| g == MASTERS);
        let mut resource_rules = Vec::new();
        let mut non_resource_rules = Vec::new();
        if masters {
            resource_rules.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
            non_resource_rules.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
        }
        for r in rules_for(state, user, ns) {
            if r.get("nonResourceURLs").is_some() {
                non_resource_rules
                    .push(json!({"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}));
            } else {
                let mut rule = json!({"verbs": r["verbs"], "apiGroups": r["apiGroups"], "resources": r["resources"]});
                if r.get("resourceNames").is_some() {
                    rule["resourceNames"] = r["resourceNames"].clone();
                }
                resource_rules.push(rule);
            }
        }
        json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
    } else {
        let attrs = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
            let s = |k: &str| ra[k].as_str().unwrap_or_default().to_string();
            Attributes::Resource {
                verb: s("verb"),
                group: s("group"),
                resource: s("resource"),
                sub: s("subresource"),
                ns: s("namespace"),
                name: s("name"),
            }
        } else {
            let nra = &spec["nonResourceAttributes"];
            Attributes::NonResource {
                verb: nra["verb"].as_str().unwrap_or_default().into(),
                path: nra["path"].as_str().unwrap_or_default().into(),
            }
        };
        let ok = allowed(state, user, &attrs);
        let mut st = json!({"allowed": ok});
        if ok && !user.groups.iter().any(|g| g == MASTERS) {
            st["reason"] = json!("RBAC: allowed by a binding");
        }
        st
    };
    let mut out = body.clone();
    out["status"] = status;
    out
}

/// The ClusterRoles and bindings every cluster bootstraps, so discovery and `can-i` work.
pub(crate) fn bootstrap_objects() -> Vec<(&'static str, Value)> {
    let cr = |name: &str, rules: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
               "rules": rules})
    };
    let crb = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"kind": "Group", "apiGroup": RBAC_GROUP, "name": g}))
            .collect();
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
               "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
               "subjects": subjects})
    };
    vec![
        (
            "clusterroles",
            cr(
                "cluster-admin",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                       {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            ),
        ),
        ("clusterrolebindings", crb("cluster-admin", &[MASTERS])),
        (
            "clusterroles",
            cr(
                "system:discovery",
                json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz",
                        "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                        "verbs": ["get"]}]),
            ),
        ),
        (
            "clusterrolebindings",
            crb("system:discovery", &[AUTHENTICATED]),
        ),
        (
            "clusterroles",
            cr(
                "system:basic-user",
                json!([{"apiGroups": ["authorization.k8s.io"],
                        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                        "verbs": ["create"]}]),
            ),
        ),
        (
            "clusterrolebindings",
            crb("system:basic-user", &[AUTHENTICATED]),
        ),
        (
            "clusterroles",
            cr(
                "system:public-info-viewer",
                json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                        "verbs": ["get"]}]),
            ),
        ),
        (
            "clusterrolebindings",
            crb(
                "system:public-info-viewer",
                &[AUTHENTICATED, UNAUTHENTICATED],
            ),
        ),
    ]
}
