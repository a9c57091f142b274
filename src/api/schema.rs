//! Validation of an object against a CRD's openAPIV3Schema, the way a Kubernetes API server
//! does it at admission: structural checks first (types, enums, patterns, bounds, required,
//! unknown fields), then the `x-kubernetes-validations` CEL rules. Errors carry the field path
//! so `zonekeeper plan` and the test API server refuse a bad manifest as a cluster would.

use std::collections::HashMap;
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
/// Compiles the schema for this one call: a caller checking many objects keeps a [`Schema`].
pub fn validate(
    schema: &Value,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), Vec<FieldError>> {
    Schema::new(schema).validate(object, old)
}

/// A CRD version's openAPIV3Schema made ready to check many objects, as a server keeps it:
/// the CEL rules compiled and the patterns built once. Compiling them on every write (a fresh
/// CEL environment, every rule parsed, every pattern's regex built) was a quarter of the test
/// API server's CPU with 10,000 DnsZones.
pub struct Schema {
    json: Value,
    patterns: Patterns,
    /// Every CEL rule, below the root's `metadata` (not modelled, as before).
    rules: Option<Rules>,
    /// Only the rules that read `oldSelf`: all an unchanged value is still held to.
    transition_rules: Option<Rules>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("patterns", &self.patterns.len())
            .field("rules", &self.rules.is_some())
            .finish_non_exhaustive()
    }
}

/// Each `pattern` of a schema, built once; one that does not compile is not here and is
/// reported where it is used.
type Patterns = HashMap<String, regex::Regex>;

/// Where a schema's CEL rules sit: kube-cel evaluates each subtree whose root carries rules
/// (with the whole schema below it, which the conversion of its value needs); the rule-free
/// nodes above are only walked through, and rule-free subtrees not at all. kube-cel's own walk
/// converts the value at every node it visits, the whole object at the root.
enum Rules {
    Evaluate(Box<kube_cel::CompiledSchema>),
    Descend {
        properties: Vec<(String, Rules)>,
        items: Option<Box<Rules>>,
    },
}

impl Rules {
    fn plan(mut node: kube_cel::CompiledSchema) -> Option<Rules> {
        let elsewhere = node.all_of.iter().any(has_rules)
            || node.one_of.iter().any(has_rules)
            || node.any_of.iter().any(has_rules)
            || node.additional_properties.as_deref().is_some_and(has_rules);
        if !node.validations.is_empty() || elsewhere {
            return Some(Rules::Evaluate(Box::new(node)));
        }
        let properties: Vec<(String, Rules)> = std::mem::take(&mut node.properties)
            .into_iter()
            .filter_map(|(key, child)| Rules::plan(child).map(|r| (key, r)))
            .collect();
        let items = node
            .items
            .take()
            .and_then(|i| Rules::plan(*i))
            .map(Box::new);
        (!properties.is_empty() || items.is_some()).then_some(Rules::Descend { properties, items })
    }

    fn property(&self, key: &str) -> Option<&Rules> {
        match self {
            Rules::Descend { properties, .. } => {
                properties.iter().find(|(k, _)| k == key).map(|(_, r)| r)
            }
            Rules::Evaluate(_) => None,
        }
    }

    fn items(&self) -> Option<&Rules> {
        match self {
            Rules::Descend { items, .. } => items.as_deref(),
            Rules::Evaluate(_) => None,
        }
    }
}

fn has_rules(node: &kube_cel::CompiledSchema) -> bool {
    !node.validations.is_empty()
        || node.properties.values().any(has_rules)
        || node.items.as_deref().is_some_and(has_rules)
        || node.additional_properties.as_deref().is_some_and(has_rules)
        || node.all_of.iter().any(has_rules)
        || node.one_of.iter().any(has_rules)
        || node.any_of.iter().any(has_rules)
}

/// Keeps only the rules reading `oldSelf`, everywhere below `node`.
fn keep_transition_rules(node: &mut kube_cel::CompiledSchema) {
    node.validations
        .retain(|v| v.as_ref().is_ok_and(|r| r.is_transition_rule));
    let children = node
        .properties
        .values_mut()
        .chain(node.items.as_deref_mut())
        .chain(node.additional_properties.as_deref_mut())
        .chain(node.all_of.iter_mut())
        .chain(node.one_of.iter_mut())
        .chain(node.any_of.iter_mut());
    for child in children {
        keep_transition_rules(child);
    }
}

fn collect_patterns(schema: &Value, patterns: &mut Patterns) {
    match schema {
        Value::Object(map) => {
            if let Some(p) = map.get("pattern").and_then(Value::as_str)
                && !patterns.contains_key(p)
                && let Ok(re) = regex::Regex::new(p)
            {
                patterns.insert(p.to_string(), re);
            }
            for child in map.values() {
                collect_patterns(child, patterns);
            }
        }
        Value::Array(items) => {
            for child in items {
                collect_patterns(child, patterns);
            }
        }
        _ => {}
    }
}

/// `base` + a path kube-cel reports relative to the subtree it evaluated.
fn below(base: &str, path: &str) -> String {
    match path {
        "" => base.to_string(),
        p if base.is_empty() => p.to_string(),
        p if p.starts_with(['.', '[']) => format!("{base}{p}"),
        p => format!("{base}.{p}"),
    }
}

impl Schema {
    pub fn new(schema: &Value) -> Schema {
        let mut cel_schema = schema.clone();
        if let Some(props) = cel_schema
            .get_mut("properties")
            .and_then(Value::as_object_mut)
        {
            // The CEL rules of our CRDs sit below the root; the root's metadata is not modelled.
            props.remove("metadata");
        }
        let mut transition = kube_cel::compile_schema(&cel_schema);
        keep_transition_rules(&mut transition);
        let mut patterns = Patterns::new();
        collect_patterns(schema, &mut patterns);
        Schema {
            json: schema.clone(),
            patterns,
            rules: Rules::plan(kube_cel::compile_schema(&cel_schema)),
            transition_rules: Rules::plan(transition),
        }
    }

    /// The schema as JSON.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// Validates `object` (with `old` on update) as [`validate`] does. On an update, a
    /// top-level field equal to the old one is not checked again and the CEL rules of an
    /// unchanged value are not run, except those reading `oldSelf`: a real server's validation
    /// ratcheting (a status write is not refused for its unchanged spec), and what keeps a
    /// status write from converting and checking the spec.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let (Some(props), Some(obj)) = (self.json.get("properties"), object.as_object()) {
            for (key, value) in obj {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                    || old.and_then(|o| o.get(key)) == Some(value)
                {
                    continue;
                }
                match props.get(key) {
                    Some(sub) => check(sub, value, key, &self.patterns, &mut errors),
                    None if preserves_unknown(&self.json) => {}
                    None => errors.push(unknown_field(key)),
                }
            }
            check_required(&self.json, obj, "", &mut errors);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if let Some(rules) = &self.rules {
            let mut cel_errors = Vec::new();
            if let Rules::Evaluate(_) = rules {
                // Rules on the root itself see the object without its metadata.
                let strip = |o: &Value| {
                    let mut o = o.clone();
                    if let Some(m) = o.as_object_mut() {
                        m.remove("metadata");
                    }
                    o
                };
                let old = old.map(strip);
                self.walk(
                    rules,
                    self.transition_rules.as_ref(),
                    &strip(object),
                    old.as_ref(),
                    "",
                    false,
                    &mut cel_errors,
                );
            } else {
                self.walk(
                    rules,
                    self.transition_rules.as_ref(),
                    object,
                    old,
                    "",
                    false,
                    &mut cel_errors,
                );
            }
            for (path, message) in cel_errors {
                // A real server names the JSON type of the refused value: `Invalid value: "string": ...`.
                let kind = value_at(object, &path).map_or("object", type_name);
                errors.push(FieldError {
                    path,
                    message: format!("Invalid value: \"{kind}\": {message}"),
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Runs the rules of `node` on `value`; `transition` is the same node among the transition
    /// rules, what is left to run once the value is found unchanged.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        node: &Rules,
        transition: Option<&Rules>,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        unchanged: bool,
        errors: &mut Vec<(String, String)>,
    ) {
        if !unchanged && old == Some(value) {
            if let Some(t) = transition {
                self.walk(t, None, value, old, path, true, errors);
            }
            return;
        }
        match node {
            Rules::Evaluate(compiled) => {
                if let Err(found) = kube_cel::validate_compiled(compiled, value, old) {
                    errors.extend(
                        found
                            .into_iter()
                            .map(|e| (below(path, &e.field_path), e.message)),
                    );
                }
            }
            Rules::Descend { properties, items } => {
                for (key, child) in properties {
                    if let Some(v) = value.get(key) {
                        self.walk(
                            child,
                            transition.and_then(|t| t.property(key)),
                            v,
                            old.and_then(|o| o.get(key)),
                            &join(path, key),
                            unchanged,
                            errors,
                        );
                    }
                }
                if let (Some(item), Some(list)) = (items, value.as_array()) {
                    let old_list = old.and_then(Value::as_array);
                    for (i, v) in list.iter().enumerate() {
                        self.walk(
                            item,
                            transition.and_then(Rules::items),
                            v,
                            old_list.and_then(|l| l.get(i)),
                            &format!("{path}[{i}]"),
                            unchanged,
                            errors,
                        );
                    }
                }
            }
        }
    }
}

/// The structural checks alone (types, enums, patterns, bounds, required, unknown fields)
/// of `value` against `schema`, with errors named from `path`: lets a caller check a big
/// list once on its own instead of inside copies of the whole object.
pub fn check_structure(schema: &Value, value: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check(schema, value, path, &Patterns::new(), &mut errors);
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

fn check(
    schema: &Value,
    value: &Value,
    path: &str,
    patterns: &Patterns,
    errors: &mut Vec<FieldError>,
) {
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
        Value::String(s) => check_string(schema, s, value, path, patterns, errors),
        Value::Number(n) => check_number(schema, n, value, path, errors),
        Value::Array(items) => check_array(schema, items, path, patterns, errors),
        Value::Object(obj) => check_object(schema, obj, path, patterns, errors),
        _ => {}
    }
}

fn check_string(
    schema: &Value,
    s: &str,
    value: &Value,
    path: &str,
    patterns: &Patterns,
    errors: &mut Vec<FieldError>,
) {
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
        let built;
        let re = match patterns.get(pattern) {
            Some(re) => Ok(re),
            None => {
                built = regex::Regex::new(pattern);
                built.as_ref()
            }
        };
        match re {
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

fn check_array(
    schema: &Value,
    items: &[Value],
    path: &str,
    patterns: &Patterns,
    errors: &mut Vec<FieldError>,
) {
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
            check(item_schema, item, &format!("{path}[{i}]"), patterns, errors);
        }
    }
}

fn check_object(
    schema: &Value,
    obj: &serde_json::Map<String, Value>,
    path: &str,
    patterns: &Patterns,
    errors: &mut Vec<FieldError>,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (key, value) in obj {
        let sub_path = join(path, key);
        if let Some(sub) = props.and_then(|p| p.get(key)) {
            check(sub, value, &sub_path, patterns, errors);
        } else if let Some(add) = additional.filter(|a| a.is_object()) {
            check(add, value, &sub_path, patterns, errors);
        } else if props.is_some() && !preserves_unknown(schema) {
            errors.push(unknown_field(&sub_path));
        }
    }
    check_required(schema, obj, path, errors);
}
