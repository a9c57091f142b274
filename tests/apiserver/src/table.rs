//! `as=Table` responses: the printer columns `kubectl get` shows.

use serde_json::{Value, json};

use crate::resources::{Column, ResourceType};

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `[n]`, `[*]` and
/// `[?(@.key=="value")]` filters. Returns every match.
pub(crate) fn json_path(object: &Value, path: &str) -> Vec<Value> {
    let mut current = vec![object.clone()];
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            if key.is_empty() {
                continue;
            }
            current = current.iter().filter_map(|v| v.get(key).cloned()).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = find_close(r) else {
                return vec![];
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            current = index(&current, inner);
        } else {
            return vec![];
        }
    }
    current
}

fn find_close(s: &str) -> Option<usize> {
    let mut depth = 0;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('(', None) => depth += 1,
            (')', None) => depth -= 1,
            (']', None) if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

fn index(current: &[Value], inner: &str) -> Vec<Value> {
    let items = current.iter().filter_map(Value::as_array).flatten();
    if inner == "*" {
        return items.cloned().collect();
    }
    if let Ok(n) = inner.parse::<i64>() {
        return current
            .iter()
            .filter_map(Value::as_array)
            .filter_map(|a| {
                let i = if n < 0 { a.len() as i64 + n } else { n };
                a.get(usize::try_from(i).ok()?).cloned()
            })
            .collect();
    }
    let Some(cond) = inner
        .strip_prefix("?(")
        .and_then(|c| c.strip_suffix(')'))
        .and_then(|c| c.strip_prefix('@'))
    else {
        return vec![];
    };
    let (lhs, op, rhs) = if let Some((l, r)) = cond.split_once("==") {
        (l, "==", Some(r))
    } else if let Some((l, r)) = cond.split_once("!=") {
        (l, "!=", Some(r))
    } else {
        (cond, "exists", None)
    };
    let rhs = rhs.map(|r| {
        let r = r.trim();
        let unquoted = r.trim_matches(|c| c == '"' || c == '\'');
        if unquoted.len() != r.len() {
            Value::String(unquoted.to_string())
        } else {
            serde_json::from_str(r).unwrap_or(Value::String(r.to_string()))
        }
    });
    items
        .filter(|item| {
            let found = json_path(item, lhs.trim()).into_iter().next();
            match (op, &found, &rhs) {
                ("==", Some(v), Some(r)) => v == r,
                ("!=", Some(v), Some(r)) => v != r,
                ("!=", None, _) => true,
                ("exists", Some(_), _) => true,
                _ => false,
            }
        })
        .cloned()
        .collect()
}

/// Human age as kubectl prints it: `45s`, `3m12s`, `5h`, `2d3h`.
pub(crate) fn age(timestamp: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(timestamp) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 8 * 86400 => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn cell(column: &Column, object: &Value) -> Value {
    if column.format == "name" {
        return object["metadata"]["name"].clone();
    }
    // `a|b`: the first path that has a value (used by built-in columns like Event's Last Seen).
    let found = column
        .json_path
        .split('|')
        .map(|p| json_path(object, p))
        .find(|f| !f.is_empty())
        .unwrap_or_default();
    let value = match found.len() {
        0 => return Value::Null,
        1 => found.into_iter().next().unwrap_or(Value::Null),
        _ => Value::String(
            found
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
    };
    // A real server turns date columns into ages before kubectl sees them.
    if column.type_ == "date" {
        return match value.as_str() {
            Some(ts) => Value::String(age(ts)),
            None => value,
        };
    }
    value
}

/// A `meta.k8s.io/v1` Table of `objects`.
pub(crate) fn table(
    rt: &ResourceType,
    objects: &[Value],
    list_meta: Value,
    include: &str,
) -> Value {
    let columns: Vec<Value> = rt
        .columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "type": c.type_, "format": c.format,
                "description": c.description, "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = rt.columns.iter().map(|c| cell(c, o)).collect();
            let object = match include {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                }),
            };
            json!({ "cells": cells, "object": object })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_fields() {
        let o = json!({"status": {"conditions": [
            {"type": "Synced", "status": "False"},
            {"type": "Ready", "status": "True"}]}, "spec": {"zoneName": "a."}});
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(json_path(&o, ".spec.zoneName"), vec![json!("a.")]);
        assert_eq!(
            json_path(&o, ".status.conditions[1].type"),
            vec![json!("Ready")]
        );
        assert!(json_path(&o, ".status.phase").is_empty());
    }
}
