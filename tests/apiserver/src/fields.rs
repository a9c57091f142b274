//! Field ownership for server-side apply (`metadata.managedFields`), simplified: objects are
//! recursed into, everything else (scalars and whole lists) is one owned leaf.

use serde_json::{Map, Value, json};

/// A field path from the object root, e.g. `["spec", "ttl"]`.
pub(crate) type FieldPath = Vec<String>;

/// Paths the server owns itself, never tracked per manager.
fn untracked(path: &[String]) -> bool {
    match path {
        [first] => matches!(first.as_str(), "apiVersion" | "kind" | "metadata"),
        [meta, second, ..] if meta == "metadata" => !matches!(
            second.as_str(),
            "labels" | "annotations" | "finalizers" | "ownerReferences"
        ),
        _ => false,
    }
}

/// Every leaf of `value`, skipping server-owned metadata.
pub(crate) fn leaves(value: &Value) -> Vec<FieldPath> {
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out.retain(|p| !untracked(p));
    out
}

fn walk(value: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
    match value {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (k, v) in map {
                prefix.push(k.clone());
                walk(v, prefix, out);
                prefix.pop();
            }
        }
        _ => out.push(prefix.clone()),
    }
}

/// The value at `path`, if any.
pub(crate) fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(k))
}

/// Removes the field at `path`, and parents it leaves empty.
pub(crate) fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if let Some(parent) = parents
        .iter()
        .try_fold(&mut *value, |v, k| v.get_mut(k))
        .and_then(Value::as_object_mut)
    {
        parent.remove(last);
        if parent.is_empty() && parents.len() > 1 {
            remove(value, parents);
        }
    }
}

/// Sets the field at `path`, creating objects on the way.
pub(crate) fn set(value: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        *value = new;
        return;
    };
    let mut cur = value;
    for k in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        cur = obj
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.insert(last.clone(), new);
    }
}

/// FieldsV1 form: `{"f:spec":{"f:ttl":{}}}`.
pub(crate) fn to_fields_v1(paths: &[FieldPath]) -> Value {
    let mut root = Value::Object(Map::new());
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            let Some(obj) = cur.as_object_mut() else {
                break;
            };
            cur = obj.entry(format!("f:{k}")).or_insert_with(|| json!({}));
        }
    }
    root
}

/// Paths back from FieldsV1.
pub(crate) fn from_fields_v1(fields: &Value) -> Vec<FieldPath> {
    let mut out = Vec::new();
    fn rec(v: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        let Some(map) = v.as_object() else { return };
        let children: Vec<_> = map.iter().filter(|(k, _)| k.starts_with("f:")).collect();
        if children.is_empty() && !prefix.is_empty() {
            out.push(prefix.clone());
            return;
        }
        for (k, child) in children {
            prefix.push(k[2..].to_string());
            rec(child, prefix, out);
            prefix.pop();
        }
    }
    rec(fields, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry, decoded.
#[derive(Clone, Debug)]
pub(crate) struct Manager {
    pub manager: String,
    pub operation: String,
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub paths: Vec<FieldPath>,
}

pub(crate) fn decode(object: &Value) -> Vec<Manager> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Manager {
            manager: e["manager"].as_str().unwrap_or_default().into(),
            operation: e["operation"].as_str().unwrap_or("Update").into(),
            subresource: e["subresource"].as_str().unwrap_or_default().into(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
            time: e["time"].as_str().unwrap_or_default().into(),
            paths: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

pub(crate) fn encode(managers: &[Manager]) -> Value {
    Value::Array(
        managers
            .iter()
            .filter(|m| !m.paths.is_empty())
            .map(|m| {
                let mut e = json!({
                    "manager": m.manager,
                    "operation": m.operation,
                    "apiVersion": m.api_version,
                    "time": m.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": to_fields_v1(&m.paths),
                });
                if !m.subresource.is_empty() {
                    e["subresource"] = json!(m.subresource);
                }
                e
            })
            .collect(),
    )
}

fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && a == &b[..a.len()]
}

/// Two paths overlap when one contains the other.
pub(crate) fn overlaps(a: &[String], b: &[String]) -> bool {
    is_prefix(a, b) || is_prefix(b, a)
}

/// After a non-apply write by `manager`: the fields it changed become its own and leave
/// every other manager; fields that disappeared leave everyone.
pub(crate) fn record_update(
    managers: &mut Vec<Manager>,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    now: &str,
) {
    let new_leaves = leaves(new);
    let changed: Vec<FieldPath> = new_leaves
        .iter()
        .filter(|p| old.and_then(|o| get(o, p)) != get(new, p))
        .filter(|p| subresource != "status" || p.first().is_some_and(|f| f == "status"))
        .cloned()
        .collect();
    for m in managers.iter_mut() {
        m.paths
            .retain(|p| get(new, p).is_some() && !changed.iter().any(|c| overlaps(c, p)));
    }
    if !changed.is_empty() {
        match managers.iter_mut().find(|m| {
            m.manager == manager && m.operation == "Update" && m.subresource == subresource
        }) {
            Some(m) => {
                m.paths.extend(changed);
                m.time = now.into();
            }
            None => managers.push(Manager {
                manager: manager.into(),
                operation: "Update".into(),
                subresource: subresource.into(),
                api_version: api_version.into(),
                time: now.into(),
                paths: changed,
            }),
        }
    }
    managers.retain(|m| !m.paths.is_empty());
}

/// A field another manager owns with a different value.
#[derive(Debug)]
pub(crate) struct Conflict {
    pub manager: String,
    pub path: FieldPath,
}

/// Server-side apply of `applied` by `manager` onto `live`: returns the new object and the
/// new managers, or the conflicts when `force` is not set.
pub(crate) fn apply(
    live: &Value,
    applied: &Value,
    managers: &[Manager],
    manager: &str,
    subresource: &str,
    force: bool,
) -> Result<(Value, Vec<Manager>), Vec<Conflict>> {
    let applied_paths = leaves(applied);
    // An applied empty map (`status: {}`) only asks for the map to exist: it claims nothing
    // inside it, neither from other managers nor from this manager's earlier fields.
    let empty_map =
        |a: &[String]| get(applied, a).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
    let claims = |a: &[String], p: &[String]| overlaps(a, p) && (a == p || !empty_map(a));
    let mut conflicts = Vec::new();
    for m in managers.iter().filter(|m| m.manager != manager) {
        for p in &m.paths {
            for a in applied_paths.iter().filter(|a| claims(a, p)) {
                let longer = if a.len() >= p.len() { a } else { p };
                if get(live, longer) != get(applied, longer) {
                    conflicts.push(Conflict {
                        manager: m.manager.clone(),
                        path: p.clone(),
                    });
                    break;
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let mut managers = managers.to_vec();
    if force {
        for m in managers.iter_mut().filter(|m| m.manager != manager) {
            m.paths.retain(|p| {
                !applied_paths
                    .iter()
                    .any(|a| claims(a, p) && get(live, p) != get(applied, p))
            });
        }
    }
    let mut object = live.clone();
    // Fields this manager applied before and no longer does are removed, unless shared.
    let previous: Vec<FieldPath> = managers
        .iter()
        .filter(|m| m.manager == manager && m.operation == "Apply" && m.subresource == subresource)
        .flat_map(|m| m.paths.clone())
        .collect();
    for p in previous {
        let still_applied = applied_paths.iter().any(|a| claims(a, &p));
        let shared = managers
            .iter()
            .filter(|m| !(m.manager == manager && m.operation == "Apply"))
            .any(|m| m.paths.iter().any(|q| overlaps(q, &p)));
        if !still_applied && !shared {
            remove(&mut object, &p);
        }
    }
    for p in &applied_paths {
        if empty_map(p) && get(&object, p).is_some_and(Value::is_object) {
            continue;
        }
        if let Some(v) = get(applied, p) {
            set(&mut object, p, v.clone());
        }
    }
    managers.retain(|m| {
        !(m.manager == manager && m.operation == "Apply" && m.subresource == subresource)
    });
    managers.push(Manager {
        manager: manager.into(),
        operation: "Apply".into(),
        subresource: subresource.into(),
        api_version: applied["apiVersion"].as_str().unwrap_or_default().into(),
        time: String::new(),
        paths: applied_paths,
    });
    Ok((object, managers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trip() {
        let o =
            json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"ttl": 5, "r": [1]}});
        let l = leaves(&o);
        assert_eq!(from_fields_v1(&to_fields_v1(&l)), l);
        assert!(!l.contains(&vec!["metadata".to_string(), "name".to_string()]));
    }

    #[test]
    fn apply_conflicts_and_removal() {
        let live = json!({"spec": {"a": 1, "b": 2}});
        let ms = vec![Manager {
            manager: "one".into(),
            operation: "Apply".into(),
            subresource: String::new(),
            api_version: "v1".into(),
            time: String::new(),
            paths: vec![
                vec!["spec".into(), "a".into()],
                vec!["spec".into(), "b".into()],
            ],
        }];
        assert!(apply(&live, &json!({"spec": {"a": 9}}), &ms, "two", "", false).is_err());
        let (o, _) = apply(&live, &json!({"spec": {"a": 1}}), &ms, "two", "", false).unwrap();
        assert_eq!(o, live);
        let (o, _) = apply(&live, &json!({"spec": {"a": 1}}), &ms, "one", "", false).unwrap();
        assert_eq!(o, json!({"spec": {"a": 1}}));
        // An empty map claims nothing inside: no conflict, and nothing of "one" is touched.
        let (o, _) = apply(&live, &json!({"spec": {}}), &ms, "two", "", false).unwrap();
        assert_eq!(o, live);
    }
}
