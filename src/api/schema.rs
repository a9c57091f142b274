//! Validation of an object against a CRD's openAPIV3Schema, the way a Kubernetes API server
//! does it at admission: structural checks first (types, enums, patterns, bounds, required,
//! unknown fields), then the `x-kubernetes-validations` CEL rules. Errors carry the field path
//! so `zonekeeper plan` and the test API server refuse a bad manifest as a cluster would.

use std::fmt;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// One refused field, e.g. `spec.description: Too long: may not be more than 255 bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path from the object's root: `spec.records[2].data`.
    pub path: String,
    /// What is wrong, in Kubernetes' words.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The openAPIV3Schema of a CRD's served version, as JSON.
pub fn crd_schema(crd: &CustomResourceDefinition, version: &str) -> Option<Value> {
    let v = crd.spec.versions.iter().find(|v| v.name == version)?;
    let schema = v.schema.as_ref()?.open_api_v3_schema.as_ref()?;
    serde_json::to_value(schema).ok()
}

/// Fills in the schema's `default` values, as the API server does before validation.
pub fn apply_defaults(schema: &Value, object: &Value) -> Value {
    kube_cel::apply_defaults(schema, object)
}

/// Validates `object` (with `old` for transition rules on update) against `schema`.
/// `metadata`, `apiVersion` and `kind` are the API server's business and are not checked here.
pub fn validate(
    schema: &Value,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if let (Some(props), Some(obj)) = (schema.get("properties"), object.as_object()) {
        for (key, value) in obj {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.get(key) {
                Some(sub) => check(sub, value, key, &mut errors),
                None if preserves_unknown(schema) => {}
                None => errors.push(unknown_field(key)),
            }
        }
        check_required(schema, obj, "", &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut cel_object = object.clone();
    if let Some(obj) = cel_object.as_object_mut() {
        // The CEL rules of our CRDs sit below the root; the root's metadata is not modelled.
        obj.remove("metadata");
    }
    let old_object = old.map(|o| {
        let mut o = o.clone();
        if let Some(obj) = o.as_object_mut() {
            obj.remove("metadata");
        }
        o
    });
    let mut cel_schema = schema.clone();
    if let Some(props) = cel_schema
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    {
        props.remove("metadata");
    }
    if let Err(cel_errors) =
        kube_cel::Validator::new().validate(&cel_schema, &cel_object, old_object.as_ref())
    {
        for e in cel_errors.iter() {
            // A real server names the JSON type of the refused value: `Invalid value: "string": ...`.
            let kind = value_at(object, &e.field_path).map_or("object", type_name);
            errors.push(FieldError {
                path: e.field_path.clone(),
                message: format!("Invalid value: \"{kind}\": {}", e.message),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The structural checks alone (types, enums, patterns, bounds, required, unknown fields)
/// of `value` against `schema`, with errors named from `path`: lets a caller check a big
/// list once on its own instead of inside copies of the whole object.
pub fn check_structure(schema: &Value, value: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check(schema, value, path, &mut errors);
    errors
}

/// The value at a path such as `spec.records[2].data`.
fn value_at<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = object;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            current = current.get(key)?;
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            current = current.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(current)
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn unknown_field(path: &str) -> FieldError {
    FieldError {
        path: path.to_string(),
        message: "field not declared in schema".to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_required(
    schema: &Value,
    obj: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    for req in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !obj.contains_key(req) {
            errors.push(FieldError {
                path: join(path, req),
                message: "Required value".to_string(),
            });
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid(path: &str, value: &Value, why: String) -> FieldError {
    FieldError {
        path: path.to_string(),
        message: format!("Invalid value: {value}: {path} in body {why}"),
    }
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if !schema
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            errors.push(invalid(path, value, "must not be null".to_string()));
        }
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = actual == expected
            || (expected == "number" && actual == "integer")
            || (int_or_string && matches!(actual, "integer" | "string"));
        if !ok {
            errors.push(invalid(
                path,
                &Value::String(actual.to_string()),
                format!("must be of type {expected}: {value}"),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(FieldError {
            path: path.to_string(),
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
        });
    }
    match value {
        Value::String(s) => check_string(schema, s, value, path, errors),
        Value::Number(n) => check_number(schema, n, value, path, errors),
        Value::Array(items) => check_array(schema, items, path, errors),
        Value::Object(obj) => check_object(schema, obj, path, errors),
        _ => {}
    }
}

fn check_string(schema: &Value, s: &str, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && s.chars().count() as u64 > max
    {
        errors.push(FieldError {
            path: path.to_string(),
            message: format!("Too long: may not be more than {max} bytes"),
        });
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && (s.chars().count() as u64) < min
    {
        errors.push(invalid(
            path,
            value,
            format!("should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => errors.push(invalid(path, value, format!("should match '{pattern}'"))),
            Err(e) => errors.push(FieldError {
                path: path.to_string(),
                message: format!("schema pattern {pattern:?} does not compile: {e}"),
            }),
        }
    }
}

fn check_number(
    schema: &Value,
    n: &serde_json::Number,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let Some(x) = n.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && x < min
    {
        errors.push(invalid(
            path,
            value,
            format!(
                "should be greater than or equal to {}",
                Value::from(min_int(min))
            ),
        ));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && x > max
    {
        errors.push(invalid(
            path,
            value,
            format!(
                "should be less than or equal to {}",
                Value::from(min_int(max))
            ),
        ));
    }
}

// Bounds are written as integers in our schemas; print them without a fraction.
fn min_int(x: f64) -> i64 {
    x as i64
}

fn check_array(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        errors.push(invalid(
            path,
            &Value::from(items.len()),
            format!("should have at least {min} items"),
        ));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        errors.push(FieldError {
            path: path.to_string(),
            message: format!("Too many: {}: must have at most {max} items", items.len()),
        });
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), errors);
        }
    }
}

fn check_object(
    schema: &Value,
    obj: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (key, value) in obj {
        let sub_path = join(path, key);
        if let Some(sub) = props.and_then(|p| p.get(key)) {
            check(sub, value, &sub_path, errors);
        } else if let Some(add) = additional.filter(|a| a.is_object()) {
            check(add, value, &sub_path, errors);
        } else if props.is_some() && !preserves_unknown(schema) {
            errors.push(unknown_field(&sub_path));
        }
    }
    check_required(schema, obj, path, errors);
}
