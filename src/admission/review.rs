//! The two admission answers, as functions of the AdmissionReview request: what the mutating
//! webhook patches and what the validating webhook decides. The only I/O (reading a
//! ZoneSync's DnsZone) is done by the caller, so these are tested without a server.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::Value;

use super::acl::{self, Requester, Verdict};
use crate::api::dns_zone::DnsZoneSpec;
use crate::reconcile::status::REQUESTED_BY_ANNOTATION;

/// The groups of the user behind the last spec change, comma-separated.
pub const REQUESTED_BY_GROUPS_ANNOTATION: &str = "dns.zonekeeper.io/requested-by-groups";

/// The kinds the webhooks look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    DnsZone,
    ZoneSync,
}

impl Kind {
    pub fn of<T: kube::Resource>(req: &AdmissionRequest<T>) -> Option<Kind> {
        if req.kind.group != "dns.zonekeeper.io" {
            return None;
        }
        match req.kind.kind.as_str() {
            "DnsZone" => Some(Kind::DnsZone),
            "ZoneSync" => Some(Kind::ZoneSync),
            _ => None,
        }
    }
}

/// The requester of an admission request, owned.
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn of<T: kube::Resource>(req: &AdmissionRequest<T>) -> User {
        User {
            name: req.user_info.username.clone().unwrap_or_default(),
            groups: req.user_info.groups.clone().unwrap_or_default(),
        }
    }

    fn requester(&self) -> Requester<'_> {
        Requester {
            username: &self.name,
            groups: &self.groups,
        }
    }
}

fn spec_value(obj: Option<&DynamicObject>) -> Option<&Value> {
    obj.and_then(|o| o.data.get("spec"))
}

/// `Some` when the object's spec reads as a DnsZone spec. The mutating webhook runs before
/// the schema is checked, so an unreadable spec is left to the schema to refuse.
fn zone_spec(obj: Option<&DynamicObject>) -> Option<DnsZoneSpec> {
    spec_value(obj).and_then(|s| serde_json::from_value(s.clone()).ok())
}

fn annotation<'a>(obj: Option<&'a DynamicObject>, key: &str) -> Option<&'a String> {
    obj.and_then(|o| o.metadata.annotations.as_ref())
        .and_then(|a| a.get(key))
}

/// JSON pointer token escaping (RFC 6901) of one annotation key.
fn annotation_path(key: &str) -> PointerBuf {
    PointerBuf::from_tokens(["metadata", "annotations", key])
}

/// The patch operations that leave exactly `want` (key → value, `None` = absent) in the
/// object's annotations.
fn annotation_ops(obj: &DynamicObject, want: &[(&str, Option<String>)]) -> Vec<PatchOperation> {
    let Some(current) = obj.metadata.annotations.as_ref() else {
        let map: serde_json::Map<String, Value> = want
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), Value::String(v))))
            .collect();
        if map.is_empty() {
            return Vec::new();
        }
        return vec![PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["metadata", "annotations"]),
            value: Value::Object(map),
        })];
    };
    let mut ops = Vec::new();
    for (key, value) in want {
        match (current.get(*key), value) {
            (Some(have), Some(v)) if have == v => {}
            (_, Some(v)) => ops.push(PatchOperation::Add(AddOperation {
                path: annotation_path(key),
                value: Value::String(v.clone()),
            })),
            (Some(_), None) => ops.push(PatchOperation::Remove(RemoveOperation {
                path: annotation_path(key),
            })),
            (None, None) => {}
        }
    }
    ops
}

/// The mutating webhook: stamps who made a spec change, and on shared zones gives new
/// RRsets their creator's group. `trusted` users (the operator itself) keep what they wrote.
pub fn mutate(req: &AdmissionRequest<DynamicObject>, trusted: &[String]) -> AdmissionResponse {
    let response = AdmissionResponse::from(req);
    let Some(kind) = Kind::of(req) else {
        return response;
    };
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let Some(object) = req.object.as_ref() else {
        return response;
    };
    let user = User::of(req);
    if trusted.contains(&user.name) {
        return response;
    }
    let old = req.old_object.as_ref();
    let spec_changed =
        req.operation == Operation::Create || spec_value(old) != spec_value(Some(object));
    // A metadata-only write (a label, the operator's finalizer) did not change the zone: the
    // last spec change's author stays, and nobody can rewrite it on the way.
    let want = if spec_changed {
        vec![
            (REQUESTED_BY_ANNOTATION, Some(user.name.clone())),
            (REQUESTED_BY_GROUPS_ANNOTATION, Some(user.groups.join(","))),
        ]
    } else {
        vec![
            (
                REQUESTED_BY_ANNOTATION,
                annotation(old, REQUESTED_BY_ANNOTATION).cloned(),
            ),
            (
                REQUESTED_BY_GROUPS_ANNOTATION,
                annotation(old, REQUESTED_BY_GROUPS_ANNOTATION).cloned(),
            ),
        ]
    };
    let mut ops = annotation_ops(object, &want);
    if kind == Kind::DnsZone
        && spec_changed
        && let Some(mut spec) = zone_spec(Some(object))
    {
        let old_spec = zone_spec(old);
        if acl::default_owner_groups(old_spec.as_ref(), &mut spec, &user.requester()) {
            match serde_json::to_value(&spec.records) {
                Ok(records) => ops.push(PatchOperation::Add(AddOperation {
                    path: PointerBuf::from_tokens(["spec", "records"]),
                    value: records,
                })),
                Err(e) => return AdmissionResponse::from(req).deny(format!("records: {e}")),
            }
        }
    }
    if ops.is_empty() {
        return response;
    }
    match response.with_patch(Patch(ops)) {
        Ok(r) => r,
        Err(e) => AdmissionResponse::from(req).deny(e.to_string()),
    }
}

/// What the validating webhook needs besides the request: for a ZoneSync, its DnsZone.
pub enum ZoneLookup {
    /// Not a ZoneSync creation: nothing was looked up.
    NotNeeded,
    /// The referenced DnsZone's spec.
    Found(Box<DnsZoneSpec>),
    /// No such DnsZone: the sync fails on its own, with nothing to guard.
    Missing,
}

/// The name of the DnsZone a ZoneSync creation needs looked up.
pub fn zone_to_look_up(req: &AdmissionRequest<DynamicObject>) -> Option<String> {
    if Kind::of(req) != Some(Kind::ZoneSync) || req.operation != Operation::Create {
        return None;
    }
    req.object
        .as_ref()
        .and_then(|o| o.data["spec"]["zoneRef"]["name"].as_str())
        .map(String::from)
}

fn denied(req: &AdmissionRequest<DynamicObject>, message: String) -> AdmissionResponse {
    let mut r = AdmissionResponse::from(req).deny(message);
    r.result.code = 403;
    r.result.reason = "Forbidden".into();
    r
}

/// The validating webhook (`acl.dns.zonekeeper.io`): the zone's ACL decides.
pub fn validate(
    req: &AdmissionRequest<DynamicObject>,
    zone: ZoneLookup,
    trusted: &[String],
) -> AdmissionResponse {
    let response = AdmissionResponse::from(req);
    let user = User::of(req);
    if trusted.contains(&user.name) {
        return response;
    }
    let verdict = match (Kind::of(req), &req.operation, zone) {
        (Some(Kind::DnsZone), Operation::Create | Operation::Update, _) => {
            let old_value = spec_value(req.old_object.as_ref());
            let new_value = spec_value(req.object.as_ref());
            if req.operation == Operation::Update && old_value == new_value {
                return response;
            }
            let Some(new) = zone_spec(req.object.as_ref()) else {
                return denied(req, "spec is not a valid DnsZone spec".into());
            };
            let old = zone_spec(req.old_object.as_ref());
            acl::review_zone(old.as_ref(), &new, &user.requester())
        }
        (Some(Kind::ZoneSync), Operation::Create, ZoneLookup::Found(zone)) => {
            acl::review_zone_sync(&zone, &user.requester())
        }
        _ => Verdict::Allowed,
    };
    match verdict {
        Verdict::Allowed => response,
        Verdict::Denied(why) => denied(req, why),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::admission::AdmissionReview;
    use serde_json::json;

    use super::*;

    fn request(
        kind: &str,
        op: &str,
        object: Value,
        old: Value,
        user: &str,
    ) -> AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u1",
                "kind": {"group": "dns.zonekeeper.io", "version": "v1alpha1", "kind": kind},
                "resource": {"group": "dns.zonekeeper.io", "version": "v1alpha1", "resource": "dnszones"},
                "name": "z", "namespace": "dns", "operation": op,
                "userInfo": {"username": user, "groups": ["devs", "system:authenticated"]},
                "object": object, "oldObject": old,
            }
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    fn zone(spec_ttl: i64, annotations: Value) -> Value {
        json!({"apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
               "metadata": {"name": "z", "namespace": "dns", "annotations": annotations},
               "spec": {"zoneName": "example.com.", "type": "Primary", "ttl": spec_ttl,
                        "backend": {"server": "127.0.0.1:53"}}})
    }

    fn patched(req: &AdmissionRequest<DynamicObject>, r: &AdmissionResponse) -> Value {
        let mut obj = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
        if let Some(p) = &r.patch {
            let patch: Patch = serde_json::from_slice(p).unwrap();
            json_patch::patch(&mut obj, &patch).unwrap();
        }
        obj
    }

    #[test]
    fn a_forged_requester_is_overwritten_on_a_spec_change() {
        let req = request(
            "DnsZone",
            "UPDATE",
            zone(
                60,
                json!({REQUESTED_BY_ANNOTATION: "alice", "other": "kept"}),
            ),
            zone(300, json!({REQUESTED_BY_ANNOTATION: "carol"})),
            "bob",
        );
        let r = mutate(&req, &[]);
        assert!(r.allowed);
        let obj = patched(&req, &r);
        let a = &obj["metadata"]["annotations"];
        assert_eq!(a[REQUESTED_BY_ANNOTATION], "bob");
        assert_eq!(
            a[REQUESTED_BY_GROUPS_ANNOTATION],
            "devs,system:authenticated"
        );
        assert_eq!(a["other"], "kept");
    }

    #[test]
    fn a_metadata_only_write_keeps_the_last_author() {
        let req = request(
            "DnsZone",
            "UPDATE",
            zone(300, json!({REQUESTED_BY_ANNOTATION: "mallory"})),
            zone(
                300,
                json!({REQUESTED_BY_ANNOTATION: "carol", REQUESTED_BY_GROUPS_ANNOTATION: "ops"}),
            ),
            "bob",
        );
        let obj = patched(&req, &mutate(&req, &[]));
        let a = &obj["metadata"]["annotations"];
        assert_eq!(a[REQUESTED_BY_ANNOTATION], "carol");
        assert_eq!(a[REQUESTED_BY_GROUPS_ANNOTATION], "ops");
    }

    #[test]
    fn a_create_without_annotations_gets_them() {
        let mut object = zone(300, json!(null));
        object["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        let req = request("DnsZone", "CREATE", object, Value::Null, "alice");
        let obj = patched(&req, &mutate(&req, &[]));
        assert_eq!(
            obj["metadata"]["annotations"][REQUESTED_BY_ANNOTATION],
            "alice"
        );
    }

    #[test]
    fn trusted_users_keep_what_they_wrote() {
        let req = request(
            "ZoneSync",
            "CREATE",
            json!({"metadata": {"name": "s", "annotations": {REQUESTED_BY_ANNOTATION: "zonekeeper"}},
                   "spec": {"zoneRef": {"name": "z"}}}),
            Value::Null,
            "system:serviceaccount:dns:zonekeeper",
        );
        let r = mutate(&req, &["system:serviceaccount:dns:zonekeeper".into()]);
        assert!(r.allowed && r.patch.is_none());
        let r = mutate(&req, &[]);
        let obj = patched(&req, &r);
        assert_eq!(
            obj["metadata"]["annotations"][REQUESTED_BY_ANNOTATION],
            "system:serviceaccount:dns:zonekeeper"
        );
    }

    #[test]
    fn zone_syncs_name_the_zone_to_look_up_on_create_only() {
        let sync = json!({"metadata": {"name": "s"}, "spec": {"zoneRef": {"name": "z"}}});
        let req = request("ZoneSync", "CREATE", sync.clone(), Value::Null, "bob");
        assert_eq!(zone_to_look_up(&req).as_deref(), Some("z"));
        let req = request("ZoneSync", "UPDATE", sync.clone(), sync, "bob");
        assert_eq!(zone_to_look_up(&req), None);
    }
}
