//! Manifests are validated against the generated openAPIV3Schema (structure and CEL rules),
//! as a cluster validates them at admission: good examples pass, each bad one is refused at the
//! right field path.

use serde_json::{Value, json};
use zonekeeper::api::crd::crds;
use zonekeeper::api::schema::{FieldError, apply_defaults, crd_schema, validate};

fn schema_for(kind: &str) -> Value {
    let crd = crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    crd_schema(&crd, "v1alpha1").unwrap()
}

fn check(object: &Value, old: Option<&Value>) -> Result<(), Vec<FieldError>> {
    let schema = schema_for(object["kind"].as_str().unwrap());
    let object = apply_defaults(&schema, object);
    let old = old.map(|o| apply_defaults(&schema, o));
    validate(&schema, &object, old.as_ref())
}

fn zone() -> Value {
    json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "DnsZone",
        "metadata": {"name": "example-com", "namespace": "dns"},
        "spec": {
            "zoneName": "example.com.",
            "type": "Primary",
            "backend": {"server": "127.0.0.1:53"},
            "records": [{"name": "www", "type": "A", "data": ["192.0.2.10"]}]
        }
    })
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = base.pointer_mut(parent).unwrap();
    match target {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        _ => panic!("{parent} is not a container"),
    }
    base
}

#[test]
fn example_manifests_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            let kind = value["kind"].as_str().unwrap_or_default();
            if value["apiVersion"] == "dns.zonekeeper.io/v1alpha1" {
                assert!(matches!(kind, "DnsZone" | "ZoneSync"));
                if let Err(errors) = check(&value, None) {
                    panic!("{} is refused: {errors:?}", path.display());
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "only {checked} example objects found");
}

#[test]
fn bad_manifests_are_refused_at_the_field_path() {
    let long = "x".repeat(256);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "description of 256 characters",
            with(zone(), "/spec/description", json!(long)),
            "spec.description",
            "Too long: may not be more than 255",
        ),
        (
            "relative zoneName",
            with(zone(), "/spec/zoneName", json!("example.com")),
            "spec.zoneName",
            "should match",
        ),
        (
            "upper-case zoneName",
            with(zone(), "/spec/zoneName", json!("Example.COM.")),
            "spec.zoneName",
            "should match",
        ),
        (
            "label longer than 63",
            with(
                zone(),
                "/spec/zoneName",
                json!(format!("{}.com.", "a".repeat(64))),
            ),
            "spec.zoneName",
            "should match",
        ),
        (
            "ttl 0",
            with(zone(), "/spec/ttl", json!(0)),
            "spec.ttl",
            "greater than or equal to 1",
        ),
        (
            "ttl above 2^31-1",
            with(zone(), "/spec/ttl", json!(2147483648u64)),
            "spec.ttl",
            "less than or equal to 2147483647",
        ),
        (
            "unknown record type",
            with(zone(), "/spec/records/0/type", json!("SPF")),
            "spec.records[0].type",
            "Unsupported value: \"SPF\"",
        ),
        (
            "SOA is not a record users write",
            with(zone(), "/spec/records/0/type", json!("SOA")),
            "spec.records[0].type",
            "Unsupported value",
        ),
        (
            "empty data",
            with(zone(), "/spec/records/0/data", json!([])),
            "spec.records[0].data",
            "at least 1 items",
        ),
        (
            "masters on a Primary",
            with(zone(), "/spec/masters", json!(["192.0.2.1:53"])),
            "spec.masters",
            "only meaningful with type: Secondary",
        ),
        (
            "email that is no address",
            with(zone(), "/spec/email", json!("hostmaster")),
            "spec.email",
            "should match",
        ),
        (
            "duration without unit",
            with(zone(), "/spec/sync", json!({"interval": "10"})),
            "spec.sync.interval",
            "should match",
        ),
        (
            "unknown zone type",
            with(zone(), "/spec/type", json!("Stub")),
            "spec.type",
            "Unsupported value",
        ),
        (
            "ttl as a string",
            with(zone(), "/spec/ttl", json!("3600")),
            "spec.ttl",
            "must be of type integer",
        ),
        (
            "missing backend",
            {
                let mut z = zone();
                z["spec"].as_object_mut().unwrap().remove("backend");
                z
            },
            "spec.backend",
            "Required value",
        ),
        (
            "unknown field",
            with(zone(), "/spec/recrods", json!([])),
            "spec.recrods",
            "field not declared in schema",
        ),
        (
            "ACL subject that is neither user: nor group:",
            with(
                zone(),
                "/spec/acl",
                json!({"rules": [{"accessLevel": "Write", "subjects": ["devs"]}]}),
            ),
            "spec.acl.rules[0].subjects[0]",
            "should match",
        ),
        (
            "server without port",
            with(zone(), "/spec/backend/server", json!("ns1.example.com")),
            "spec.backend.server",
            "should match",
        ),
    ];
    for (what, manifest, path, message) in cases {
        let errors = check(&manifest, None).expect_err(what);
        assert!(
            errors
                .iter()
                .any(|e| e.path == path && e.message.contains(message)),
            "{what}: expected {path}: ...{message}..., got {errors:?}"
        );
    }
}

#[test]
fn secondary_zone_needs_masters_and_no_records() {
    let secondary = with(zone(), "/spec/type", json!("Secondary"));
    let errors = check(&secondary, None).unwrap_err();
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"spec.masters"), "{errors:?}");
    assert!(paths.contains(&"spec.records"), "{errors:?}");

    let mut ok = with(secondary, "/spec/masters", json!(["192.0.2.1:53"]));
    ok["spec"].as_object_mut().unwrap().remove("records");
    check(&ok, None).unwrap();
}

#[test]
fn zone_name_type_and_sync_spec_are_immutable() {
    let old = zone();
    check(&old, Some(&old)).unwrap();
    let renamed = with(zone(), "/spec/zoneName", json!("example.org."));
    let errors = check(&renamed, Some(&old)).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.path == "spec.zoneName" && e.message.contains("immutable")),
        "{errors:?}"
    );
    let retyped = with(
        with(
            with(zone(), "/spec/type", json!("Secondary")),
            "/spec/masters",
            json!(["192.0.2.1:53"]),
        ),
        "/spec/records",
        json!([]),
    );
    let errors = check(&retyped, Some(&old)).unwrap_err();
    assert!(errors.iter().any(|e| e.path == "spec.type"), "{errors:?}");

    // Other fields stay editable.
    let described = with(zone(), "/spec/description", json!("edited"));
    check(&described, Some(&old)).unwrap();

    let sync = json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "ZoneSync",
        "metadata": {"name": "s1"},
        "spec": {"zoneRef": {"name": "example-com"}}
    });
    check(&sync, None).unwrap();
    let changed = with(sync.clone(), "/spec/dryRun", json!(true));
    let errors = check(&changed, Some(&sync)).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.path == "spec" && e.message.contains("immutable")),
        "{errors:?}"
    );
}

#[test]
fn defaults_are_filled_in() {
    let schema = schema_for("DnsZone");
    let defaulted = apply_defaults(&schema, &zone());
    assert_eq!(defaulted["spec"]["ttl"], 3600);
    assert_eq!(defaulted["spec"]["historyLimit"], 20);
    assert_eq!(defaulted["spec"]["backend"]["timeout"], "5s");
}

#[test]
fn an_unchanged_field_is_not_refused_again() {
    // Validation ratcheting, as a real server: a status write is not refused for a spec that
    // was stored before a rule refused it, and is itself still checked.
    let schema = schema_for("DnsZone");
    let mut stored = apply_defaults(
        &schema,
        &with(zone(), "/spec/masters", json!(["192.0.2.1:53"])),
    );
    assert!(validate(&schema, &stored, None).is_err());
    stored["status"] = json!({"observedGeneration": 1});
    let status_write = with(stored.clone(), "/status/observedGeneration", json!(2));
    validate(&schema, &status_write, Some(&stored)).unwrap();
    let bad_status = with(stored.clone(), "/status/observedGeneration", json!("two"));
    let errors = validate(&schema, &bad_status, Some(&stored)).unwrap_err();
    assert_eq!(errors[0].path, "status.observedGeneration", "{errors:?}");
    // A spec write is checked in full, rules that read oldSelf included.
    let edited = with(stored.clone(), "/spec/description", json!("edited"));
    let errors = validate(&schema, &edited, Some(&stored)).unwrap_err();
    assert!(
        errors.iter().any(|e| e.path == "spec.masters"),
        "{errors:?}"
    );
    let renamed = with(stored.clone(), "/spec/zoneName", json!("example.org."));
    let errors = validate(&schema, &renamed, Some(&stored)).unwrap_err();
    assert!(
        errors.iter().any(|e| e.path == "spec.zoneName"),
        "{errors:?}"
    );
}

#[test]
fn rules_reading_old_self_still_hold_an_unchanged_value() {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"n": {"type": "integer",
                    "x-kubernetes-validations": [{"rule": "self != oldSelf", "message": "must change"}]}},
                "x-kubernetes-validations": [{"rule": "self.n < 10", "message": "too big"}]
            },
            "status": {"type": "object", "properties": {"x": {"type": "integer"}}}
        }
    });
    let old = json!({"spec": {"n": 20}, "status": {"x": 1}});
    let new = json!({"spec": {"n": 20}, "status": {"x": 2}});
    let errors = validate(&schema, &new, Some(&old)).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "spec.n");
    assert!(errors[0].message.contains("must change"), "{errors:?}");
    let errors = validate(&schema, &json!({"spec": {"n": 21}}), Some(&old)).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "spec");
    assert!(errors[0].message.contains("too big"), "{errors:?}");
}
