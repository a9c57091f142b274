//! Just enough of Kubernetes' protobuf encoding to accept what kubectl's imperative commands
//! send (`kubectl create namespace|configmap|secret`, `kubectl auth can-i`): those bodies are
//! decoded to JSON.
//! Any other kind in protobuf is refused with 415.

use base64::Engine;
use serde_json::{Map, Value, json};

/// One wire-format field.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<(u64, Wire<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => out.push((num, Wire::Varint(varint(buf, &mut pos)?))),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                out.push((num, Wire::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => pos += 8,
            5 => pos += 4,
            _ => return None,
        }
    }
    Some(out)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// A `map<string, V>` entry: key 1, value 2.
fn map_entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Bytes(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (2, Wire::Bytes(v)) => value = if bytes_value { b64(v) } else { text(v) },
            _ => {}
        }
    }
    Some((key, value))
}

fn insert_entry(
    obj: &mut Map<String, Value>,
    field: &str,
    b: &[u8],
    bytes_value: bool,
) -> Option<()> {
    let (k, v) = map_entry(b, bytes_value)?;
    let m = obj.entry(field).or_insert_with(|| json!({}));
    m.as_object_mut()?.insert(k, v);
    Some(())
}

fn push(obj: &mut Map<String, Value>, field: &str, v: Value) -> Option<()> {
    obj.entry(field)
        .or_insert_with(|| json!([]))
        .as_array_mut()?
        .push(v);
    Some(())
}

fn owner_reference(b: &[u8]) -> Option<Value> {
    let mut o = Map::new();
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Bytes(v)) => _ = o.insert("kind".into(), text(v)),
            (3, Wire::Bytes(v)) => _ = o.insert("name".into(), text(v)),
            (4, Wire::Bytes(v)) => _ = o.insert("uid".into(), text(v)),
            (5, Wire::Bytes(v)) => _ = o.insert("apiVersion".into(), text(v)),
            (6, Wire::Varint(v)) => _ = o.insert("controller".into(), json!(v != 0)),
            (7, Wire::Varint(v)) => _ = o.insert("blockOwnerDeletion".into(), json!(v != 0)),
            _ => {}
        }
    }
    Some(Value::Object(o))
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Bytes(v)) => _ = m.insert("name".into(), text(v)),
            (2, Wire::Bytes(v)) => _ = m.insert("generateName".into(), text(v)),
            (3, Wire::Bytes(v)) => _ = m.insert("namespace".into(), text(v)),
            (6, Wire::Bytes(v)) => _ = m.insert("resourceVersion".into(), text(v)),
            (11, Wire::Bytes(v)) => insert_entry(&mut m, "labels", v, false)?,
            (12, Wire::Bytes(v)) => insert_entry(&mut m, "annotations", v, false)?,
            (13, Wire::Bytes(v)) => push(&mut m, "ownerReferences", owner_reference(v)?)?,
            (14, Wire::Bytes(v)) => push(&mut m, "finalizers", text(v))?,
            _ => {}
        }
    }
    // proto2 writes empty strings that JSON would omit.
    m.retain(|_, v| v.as_str() != Some(""));
    Some(Value::Object(m))
}

/// A message of string fields only, as `(number, JSON name)`.
fn strings_message(b: &[u8], names: &[(u64, &str)]) -> Option<Value> {
    let mut o = Map::new();
    for (n, w) in fields(b)? {
        if let (Some((_, name)), Wire::Bytes(v)) = (names.iter().find(|(num, _)| *num == n), w) {
            o.insert((*name).into(), text(v));
        }
    }
    Some(Value::Object(o))
}

/// `spec` of SelfSubjectAccessReview (attributes) and SelfSubjectRulesReview (namespace).
fn review_spec(kind: &str, b: &[u8]) -> Option<Value> {
    if kind == "SelfSubjectRulesReview" {
        return strings_message(b, &[(1, "namespace")]);
    }
    let mut spec = Map::new();
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Bytes(v)) => {
                let names = [
                    (1, "namespace"),
                    (2, "verb"),
                    (3, "group"),
                    (4, "version"),
                    (5, "resource"),
                    (6, "subresource"),
                    (7, "name"),
                ];
                spec.insert("resourceAttributes".into(), strings_message(v, &names)?);
            }
            (2, Wire::Bytes(v)) => {
                let names = [(1, "path"), (2, "verb")];
                spec.insert("nonResourceAttributes".into(), strings_message(v, &names)?);
            }
            _ => {}
        }
    }
    Some(Value::Object(spec))
}

fn object(kind: &str, raw: &[u8]) -> Option<Value> {
    let mut o = Map::new();
    for (n, w) in fields(raw)? {
        let Wire::Bytes(v) = w else {
            match (kind, n, w) {
                ("ConfigMap", 4, Wire::Varint(x)) | ("Secret", 5, Wire::Varint(x)) => {
                    o.insert("immutable".into(), json!(x != 0));
                }
                _ => {}
            }
            continue;
        };
        match (kind, n) {
            (_, 1) => _ = o.insert("metadata".into(), object_meta(v)?),
            ("ConfigMap", 2) => insert_entry(&mut o, "data", v, false)?,
            ("ConfigMap", 3) => insert_entry(&mut o, "binaryData", v, true)?,
            ("Secret", 2) => insert_entry(&mut o, "data", v, true)?,
            ("Secret", 3) => _ = o.insert("type".into(), text(v)),
            ("Secret", 4) => insert_entry(&mut o, "stringData", v, false)?,
            ("SelfSubjectAccessReview" | "SelfSubjectRulesReview", 2) => {
                _ = o.insert("spec".into(), review_spec(kind, v)?)
            }
            _ => {}
        }
    }
    Some(Value::Object(o))
}

/// Decodes a `k8s\0`-prefixed protobuf body of a Namespace, ConfigMap or Secret.
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or("protobuf body without the k8s envelope")?;
    let envelope = fields(rest).ok_or("malformed protobuf envelope")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (n, w) in envelope {
        match (n, w) {
            (1, Wire::Bytes(tm)) => {
                for (tn, tw) in fields(tm).ok_or("malformed TypeMeta")? {
                    match (tn, tw) {
                        (1, Wire::Bytes(v)) => api_version = String::from_utf8_lossy(v).into(),
                        (2, Wire::Bytes(v)) => kind = String::from_utf8_lossy(v).into(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = Some(r),
            _ => {}
        }
    }
    if !matches!(
        kind.as_str(),
        "Namespace" | "ConfigMap" | "Secret" | "SelfSubjectAccessReview" | "SelfSubjectRulesReview"
    ) {
        return Err(format!(
            "protobuf is only understood for Namespace, ConfigMap, Secret and self-reviews, not {kind:?}"
        ));
    }
    let mut obj = object(&kind, raw.unwrap_or_default()).ok_or("malformed protobuf object")?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}
