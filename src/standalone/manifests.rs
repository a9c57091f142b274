//! Reading the manifests users `kubectl apply`, without a cluster: files, directories (their
//! `*.yaml`/`*.yml`/`*.json` files, sorted) or `-` for standard input, each a multi-document
//! YAML stream. DnsZone and ZoneSync objects are defaulted and validated against the generated
//! CRD schema exactly as the API server would, so a manifest `plan` accepts is one a cluster
//! accepts, and a refused one is refused with the same field paths.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::Value;

use crate::api::crd::crds;
use crate::api::dns_zone::RecordSet;
use crate::api::schema::{FieldError, apply_defaults, check_structure, crd_schema, validate};
use crate::api::shared::{GROUP, VERSION};
use crate::api::{DnsZone, ZoneSync};

use super::slices;

/// Why manifests could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: document {index}: {message}")]
    Parse {
        path: String,
        index: usize,
        message: String,
    },
    #[error("{path}: {kind} {name} is invalid: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        path: String,
        kind: String,
        name: String,
        errors: Vec<FieldError>,
    },
    #[error("{path}: {kind} {namespace}/{name} appears twice")]
    Duplicate {
        path: String,
        kind: String,
        namespace: String,
        name: String,
    },
}

/// Every object found, keyed by `namespace/name`.
#[derive(Debug, Default)]
pub struct Manifests {
    pub zones: BTreeMap<String, DnsZone>,
    pub syncs: Vec<ZoneSync>,
    pub secrets: BTreeMap<String, Secret>,
    pub config_maps: BTreeMap<String, ConfigMap>,
}

/// `namespace/name` of an object, with `default` for a missing namespace as kubectl does.
pub fn object_key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or("default"))
}

/// Manifests read but for the items of their big `records:` lists (see [`slices`]): every
/// object is there, a zone with such a list holding only its first item. What a zone's
/// connection needs is known before its records are, so its server can be asked meanwhile.
pub struct Reading {
    headers: Manifests,
    /// Every file's path and text: the lists' items are in them, and should a list not read
    /// apart, the files are read again the usual way.
    texts: Vec<(String, String)>,
    /// The lists left to read, by file.
    lists: Vec<(usize, PendingList)>,
}

/// The items of one big list: where they are in their file's text, and whose they are.
struct PendingList {
    /// `namespace/name` of the zone object.
    zone: String,
    /// Byte ranges of the text, each with its number of items.
    slices: Vec<(Range<usize>, usize)>,
}

impl Reading {
    /// The objects read so far; zones with big lists hold their first record only.
    pub fn headers(&self) -> &Manifests {
        &self.headers
    }

    /// Reads the lists' items into their zones.
    pub fn finish(self) -> Result<Manifests, ManifestError> {
        let Reading {
            mut headers,
            texts,
            lists,
        } = self;
        if lists.is_empty() {
            return Ok(headers);
        }
        let read = list_item_schema().and_then(|item_schema| {
            lists
                .iter()
                .try_for_each(|(file, list)| headers.read_list(item_schema, &texts[*file].1, list))
        });
        if read.is_some() {
            return Ok(headers);
        }
        let mut whole = Manifests::default();
        for (path, text) in &texts {
            whole.add_text(path, text)?;
        }
        Ok(whole)
    }
}

impl Manifests {
    /// Loads every path; `-` reads standard input.
    pub fn load(paths: &[PathBuf]) -> Result<Self, ManifestError> {
        Self::read(paths)?.finish()
    }

    /// Reads every path but the items of big `records:` lists, which [`Reading::finish`]
    /// reads.
    pub fn read(paths: &[PathBuf]) -> Result<Reading, ManifestError> {
        let mut texts = Vec::new();
        for path in paths {
            if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|source| ManifestError::Read {
                        path: "-".into(),
                        source,
                    })?;
                texts.push(("-".to_string(), text));
            } else {
                for file in files_below(path)? {
                    let text =
                        std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
                            path: file.display().to_string(),
                            source,
                        })?;
                    texts.push((file.display().to_string(), text));
                }
            }
        }
        let mut headers = Manifests::default();
        let mut lists = Vec::new();
        for (file, (path, text)) in texts.iter().enumerate() {
            let sliced = Self::headers_in_slices(path, text, slices::MIN_ITEMS)
                .and_then(|(objects, pending)| headers.take_all(objects).then_some(pending));
            match sliced {
                Some(pending) => lists.extend(pending.into_iter().map(|list| (file, list))),
                None => headers.add_text_whole(path, text)?,
            }
        }
        Ok(Reading {
            headers,
            texts,
            lists,
        })
    }

    /// Adds the objects of one YAML stream; `path` names it in errors.
    pub fn add_text(&mut self, path: &str, text: &str) -> Result<(), ManifestError> {
        if let Some(objects) = Self::read_in_slices(path, text, slices::MIN_ITEMS)
            && self.take_all(objects)
        {
            return Ok(());
        }
        self.add_text_whole(path, text)
    }

    /// The objects of a stream with big `spec.records` lists, each list read in slices (see
    /// [`slices`]); `None` when the stream has no such list, or anything about it is not as
    /// expected, errors included: the whole read then gives the answer and its messages.
    fn read_in_slices(path: &str, text: &str, min_items: usize) -> Option<Manifests> {
        let (mut out, lists) = Self::headers_in_slices(path, text, min_items)?;
        let item_schema = list_item_schema()?;
        for list in &lists {
            out.read_list(item_schema, text, list)?;
        }
        Some(out)
    }

    /// The objects of a stream with big `spec.records` lists, the lists' items not read yet:
    /// each zone with one holds its first item, and the list says where the others are.
    fn headers_in_slices(
        path: &str,
        text: &str,
        min_items: usize,
    ) -> Option<(Manifests, Vec<PendingList>)> {
        let docs = slices::documents(text)?;
        let cuts: Vec<Option<slices::Cut>> = docs
            .iter()
            .map(|(_, d)| slices::cut(d, min_items))
            .collect();
        if cuts.iter().all(Option::is_none) {
            return None;
        }
        list_item_schema()?;
        let mut out = Manifests::default();
        let mut lists = Vec::new();
        for ((offset, doc), cut) in docs.into_iter().zip(cuts) {
            match cut {
                None => {
                    let mut values = serde_yaml::Deserializer::from_str(doc);
                    if let Some(value) = values.next() {
                        let value: Value = serde::Deserialize::deserialize(value).ok()?;
                        if !value.is_null() {
                            out.add_object(path, 0, value).ok()?;
                        }
                    }
                    if values.next().is_some() {
                        return None;
                    }
                }
                Some(cut) => {
                    let value: Value = serde_yaml::from_str(&cut.rest).ok()?;
                    let ours = value["apiVersion"] == format!("{GROUP}/{VERSION}").as_str()
                        && value["kind"] == "DnsZone";
                    let first = slices::read_items(cut.first, 1)?;
                    if !ours || value["spec"]["records"].as_array() != Some(&first) {
                        return None;
                    }
                    let zone = object_key(
                        value["metadata"]["namespace"].as_str(),
                        value["metadata"]["name"]
                            .as_str()
                            .or_else(|| value["metadata"]["generateName"].as_str())
                            .unwrap_or_default(),
                    );
                    out.add_object(path, 0, value).ok()?;
                    let slices = cut.slices.into_iter();
                    lists.push(PendingList {
                        zone,
                        slices: slices
                            .map(|(r, count)| (offset + r.start..offset + r.end, count))
                            .collect(),
                    });
                }
            }
        }
        Some((out, lists))
    }

    /// Reads a list's items, each checked against the item schema, onto its zone; `None` on
    /// anything unexpected.
    fn read_list(&mut self, item_schema: &Value, text: &str, list: &PendingList) -> Option<()> {
        let mut records = Vec::new();
        for (range, count) in &list.slices {
            for item in slices::read_items(text.get(range.clone())?, *count)? {
                if !check_structure(item_schema, &item, "").is_empty() {
                    return None;
                }
                records.push(serde_json::from_value::<RecordSet>(item).ok()?);
            }
        }
        self.zones
            .get_mut(&list.zone)?
            .spec
            .records
            .append(&mut records);
        Some(())
    }

    /// Adds objects read apart, unless one is already here (`false`, nothing added): the
    /// whole read then reports the duplicate as usual.
    fn take_all(&mut self, objects: Manifests) -> bool {
        let clash = objects.zones.keys().any(|k| self.zones.contains_key(k))
            || objects.secrets.keys().any(|k| self.secrets.contains_key(k))
            || (objects.config_maps.keys()).any(|k| self.config_maps.contains_key(k));
        if clash {
            return false;
        }
        self.zones.extend(objects.zones);
        self.syncs.extend(objects.syncs);
        self.secrets.extend(objects.secrets);
        self.config_maps.extend(objects.config_maps);
        true
    }

    fn add_text_whole(&mut self, path: &str, text: &str) -> Result<(), ManifestError> {
        for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value: Value =
                serde::Deserialize::deserialize(doc).map_err(|e| ManifestError::Parse {
                    path: path.to_string(),
                    index,
                    message: e.to_string(),
                })?;
            if value.is_null() {
                continue;
            }
            self.add_object(path, index, value)?;
        }
        Ok(())
    }

    fn add_object(&mut self, path: &str, index: usize, value: Value) -> Result<(), ManifestError> {
        let parse_err = |message: String| ManifestError::Parse {
            path: path.to_string(),
            index,
            message,
        };
        let api_version = value["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        let name = value["metadata"]["name"]
            .as_str()
            .or_else(|| value["metadata"]["generateName"].as_str())
            .unwrap_or_default()
            .to_string();
        let namespace = value["metadata"]["namespace"].as_str().map(str::to_string);
        let key = object_key(namespace.as_deref(), &name);
        let duplicate = || ManifestError::Duplicate {
            path: path.to_string(),
            kind: kind.clone(),
            namespace: namespace.clone().unwrap_or_else(|| "default".into()),
            name: name.clone(),
        };
        match (api_version.as_str(), kind.as_str()) {
            (v, "DnsZone" | "ZoneSync") if v == format!("{GROUP}/{VERSION}") => {
                let value = admit(path, &kind, &name, value)?;
                if kind == "DnsZone" {
                    let zone: DnsZone =
                        serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))?;
                    if self.zones.insert(key, zone).is_some() {
                        return Err(duplicate());
                    }
                } else {
                    let sync: ZoneSync =
                        serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))?;
                    self.syncs.push(sync);
                }
            }
            ("v1", "Secret") => {
                let secret: Secret =
                    serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))?;
                if self.secrets.insert(key, secret).is_some() {
                    return Err(duplicate());
                }
            }
            ("v1", "ConfigMap") => {
                let cm: ConfigMap =
                    serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))?;
                if self.config_maps.insert(key, cm).is_some() {
                    return Err(duplicate());
                }
            }
            // Anything else (Argo CD Applications, Namespaces, ...) is not ours to read.
            _ => {}
        }
        Ok(())
    }

    /// The bytes of a Secret's key, from `data` (base64 in YAML) or `stringData`.
    pub fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<Vec<u8>> {
        let secret = self.secrets.get(&object_key(Some(namespace), name))?;
        if let Some(v) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
            return Some(v.as_bytes().to_vec());
        }
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.clone())
    }

    /// The text under a ConfigMap's key.
    pub fn config_map_value(&self, namespace: &str, name: &str, key: &str) -> Option<&str> {
        self.config_maps
            .get(&object_key(Some(namespace), name))?
            .data
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }
}

/// Defaults and validates one of our objects against its CRD schema.
/// Defaults and validates a DnsZone or ZoneSync. A DnsZone's `spec.records` list, nearly all
/// of a big object, is checked on its own when that is equivalent (see [`records_apart`]):
/// defaulting and the CEL rules each copy the object they check whole, which cost a
/// 100k-record list about three copies of its JSON tree.
fn admit(path: &str, kind: &str, name: &str, mut value: Value) -> Result<Value, ManifestError> {
    let schema = object_schema(path, kind, name)?;
    let Some(records_schema) = records_apart(schema) else {
        return admit_whole(path, kind, name, schema, value);
    };
    let big_list = value
        .pointer("/spec/records")
        .and_then(Value::as_array)
        .is_some_and(|r| r.len() > 1);
    if !big_list
        || !check_structure(records_schema, &value["spec"]["records"], "spec.records").is_empty()
    {
        // A refused list goes the whole way, so the errors are those (and in the order) of
        // one validation of the whole object.
        return admit_whole(path, kind, name, schema, value);
    }
    // The rest of the object meets its rules with a one-record stand-in: the spec rules only
    // ask whether the list is empty, and the record is one the list check accepted.
    let Some(list) = value.get_mut("spec").and_then(|s| s.get_mut("records")) else {
        return admit_whole(path, kind, name, schema, value);
    };
    let stand_in = list.as_array().and_then(|r| r.first()).cloned();
    let records = std::mem::replace(list, Value::Array(stand_in.into_iter().collect()));
    let mut admitted = admit_whole(path, kind, name, schema, value)?;
    if let Some(spec) = admitted.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("records".to_string(), records);
    }
    Ok(admitted)
}

/// `spec.records`' schema when checking the list apart is equivalent to checking it in place:
/// nothing inside the list has a default or a CEL rule, and the rules elsewhere only ask
/// whether the list is there and empty (`has(self.records)`, `size(self.records) == 0`).
fn records_apart(schema: &Value) -> Option<&Value> {
    let records = schema.pointer("/properties/spec/properties/records")?;
    let inside = records.to_string();
    if inside.contains("\"default\"") || inside.contains("x-kubernetes-validations") {
        return None;
    }
    let mut rules = Vec::new();
    collect_rules(schema, &mut rules);
    let other_uses = rules.iter().any(|rule| {
        rule.replace("recordsFrom", "")
            .replace("has(self.records)", "")
            .replace("size(self.records) == 0", "")
            .contains("records")
    });
    (!other_uses).then_some(records)
}

/// Every `x-kubernetes-validations` rule in a schema.
fn collect_rules(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "x-kubernetes-validations" {
                    let rules = value.as_array().into_iter().flatten();
                    out.extend(rules.filter_map(|r| r["rule"].as_str().map(str::to_string)));
                } else {
                    collect_rules(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_rules(v, out)),
        _ => {}
    }
}

/// The schema of one DnsZone `spec.records` item, when a list may be checked item by item
/// apart from its object ([`records_apart`]).
fn list_item_schema() -> Option<&'static Value> {
    let schema = object_schema("", "DnsZone", "").ok()?;
    records_apart(schema).and_then(slices::item_schema)
}

/// A kind's schema, built once per process: generating the CRDs takes ~3 ms, and a file with a
/// big `records:` list asks for the DnsZone schema three times (headers, items, the object).
fn object_schema(path: &str, kind: &str, name: &str) -> Result<&'static Value, ManifestError> {
    static SCHEMAS: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(|| {
        crds()
            .into_iter()
            .filter_map(|c| Some((c.spec.names.kind.clone(), crd_schema(&c, VERSION)?)))
            .collect()
    });
    schemas
        .iter()
        .find(|(k, _)| k == kind)
        .map(|(_, schema)| schema)
        .ok_or_else(|| ManifestError::Invalid {
            path: path.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            errors: vec![FieldError {
                path: "kind".into(),
                message: format!("no schema for {kind}"),
            }],
        })
}

fn admit_whole(
    path: &str,
    kind: &str,
    name: &str,
    schema: &Value,
    value: Value,
) -> Result<Value, ManifestError> {
    let invalid = |errors| ManifestError::Invalid {
        path: path.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        errors,
    };
    let defaulted = apply_defaults(schema, &value);
    // The input is not needed past defaulting: one tree less at the peak.
    drop(value);
    validate(schema, &defaulted, None).map_err(invalid)?;
    Ok(defaulted)
}

fn files_below(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let read_err = |source| ManifestError::Read {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let p = entry.path();
        if p.is_dir() {
            files.extend(files_below(&p)?);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_load_with_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let m = Manifests::load(&[dir]).unwrap();
        let zone = &m.zones["default/example-com"];
        assert_eq!(zone.spec.zone_name, "example.com.");
        assert_eq!(zone.spec.history_limit, 20);
        assert!(m.zones.contains_key("default/partner-example-net"));
        assert_eq!(m.syncs.len(), 1);
        assert_eq!(
            m.secret_value("default", "example-com-tsig", "algorithm")
                .as_deref(),
            Some(&b"hmac-sha256"[..])
        );
        assert!(
            m.config_map_value("default", "big-example-org-part1", "zone")
                .unwrap()
                .contains("$ORIGIN big.example.org.")
        );
    }

    #[test]
    fn an_invalid_zone_names_the_field() {
        let mut m = Manifests::default();
        let err = m
            .add_text(
                "zones.yaml",
                "apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\nmetadata: {name: z}\n\
                 spec: {zoneName: example.com, type: Primary, ttl: 0, backend: {server: '127.0.0.1:53'}}\n",
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("zones.yaml: DnsZone z is invalid"), "{err}");
        assert!(err.contains("spec.zoneName: Invalid value"), "{err}");
        assert!(err.contains("spec.ttl: Invalid value: 0"), "{err}");
    }

    #[test]
    fn a_zone_twice_is_refused() {
        let mut m = Manifests::default();
        let doc = "apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\nmetadata: {name: z}\n\
                   spec: {zoneName: example.com., type: Primary, backend: {server: '127.0.0.1:53'}}\n";
        m.add_text("a.yaml", doc).unwrap();
        assert!(matches!(
            m.add_text("b.yaml", doc),
            Err(ManifestError::Duplicate { .. })
        ));
    }

    fn zone_doc(zone_type: &str, extra: &str, records: &[(&str, &str)]) -> String {
        let mut doc = format!(
            "apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\nmetadata: {{name: z}}\n\
             spec:\n  zoneName: example.com.\n  type: {zone_type}\n{extra}  backend: {{server: '127.0.0.1:53'}}\n  records:\n"
        );
        for (name, rtype) in records {
            doc.push_str(&format!(
                "  - {{name: {name}, type: {rtype}, data: [\"192.0.2.1\"]}}\n"
            ));
        }
        doc
    }

    /// A records list checked apart from the object (today's DnsZone schema allows it) gets
    /// the verdicts of one validation of the whole object.
    #[test]
    fn a_records_list_checked_apart_gets_the_same_verdicts() {
        let schema = object_schema("-", "DnsZone", "z").unwrap();
        assert!(records_apart(schema).is_some());

        let mut m = Manifests::default();
        let records = [("a", "A"), ("b", "A"), ("c", "A")];
        m.add_text("ok.yaml", &zone_doc("Primary", "", &records))
            .unwrap();
        let names: Vec<&str> = m.zones["default/z"]
            .spec
            .records
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(m.zones["default/z"].spec.history_limit, 20);

        let bad = [("a", "A"), ("b", "A"), ("c", "BOGUS")];
        let err = Manifests::default()
            .add_text("bad.yaml", &zone_doc("Primary", "  ttl: 0\n", &bad))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("spec.records[2].type: Unsupported value"),
            "{err}"
        );
        assert!(err.contains("spec.ttl: Invalid value: 0"), "{err}");

        // The spec rule on a non-empty list still sees a non-empty list.
        let err = Manifests::default()
            .add_text(
                "secondary.yaml",
                &zone_doc("Secondary", "  masters: ['192.0.2.1:53']\n", &records),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("records and recordsFrom are only meaningful with type: Primary"),
            "{err}"
        );
    }

    /// A big list in the ways people write lists: block and flow entries, quoted wildcard
    /// names, text with `#` and `: `, comments between entries, an anchor used within a slice.
    fn big_stream(items: usize) -> String {
        let mut doc = String::from(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: k}\nstringData: {secret: s}\n---\n\
             apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\nmetadata: {name: z}\n\
             spec:\n  zoneName: example.com.\n  type: Primary\n\
             \x20 backend: {server: '127.0.0.1:53'}\n  records:\n",
        );
        for i in 0..items {
            doc.push_str(&match i % 5 {
                0 => format!("  - {{name: h{i}, type: A, data: [\"192.0.2.1\"]}}\n"),
                1 => format!(
                    "  - name: \"*.w{i}\"\n    type: A\n    ttl: 60\n    data:\n    - 192.0.2.2\n"
                ),
                2 => format!(
                    "  # entry {i}\n  - name: t{i}\n    type: TXT\n    data: ['a # b: c', \"d\"]\n"
                ),
                3 => format!("  - name: m{i}\n    type: MX\n    data: &mx{i}\n      - 10 mail\n"),
                _ => format!("  -\n    name: c{i}\n    type: CNAME\n    data: [\"h0\"]\n"),
            });
        }
        doc.push_str(
            "  management: {prune: true}\n---\napiVersion: v1\nkind: ConfigMap\n\
                      metadata: {name: c}\ndata: {zone: \"x\"}\n",
        );
        doc
    }

    fn json(zones: &BTreeMap<String, DnsZone>) -> Value {
        serde_json::to_value(zones).unwrap()
    }

    #[test]
    fn a_big_list_read_in_slices_is_the_list_read_whole() {
        let text = big_stream(1_500);
        let sliced = Manifests::read_in_slices("big.yaml", &text, 2).unwrap();
        let mut whole = Manifests::default();
        whole.add_text_whole("big.yaml", &text).unwrap();
        assert_eq!(json(&sliced.zones), json(&whole.zones));
        assert_eq!(sliced.secrets, whole.secrets);
        assert_eq!(sliced.config_maps, whole.config_maps);
        let zone = &sliced.zones["default/z"];
        assert_eq!(zone.spec.records.len(), 1_500);
        assert_eq!(zone.spec.records[1_499].data, ["h0"]);
        assert!(zone.spec.management.prune);
        // The real threshold takes the same road for a list this long.
        let mut loaded = Manifests::default();
        loaded.add_text("big.yaml", &text).unwrap();
        assert_eq!(json(&loaded.zones), json(&whole.zones));
    }

    #[test]
    fn what_slices_cannot_read_alone_is_read_whole_with_its_usual_errors() {
        // An alias to an anchor in another slice.
        let text = big_stream(1_500).replace(
            "  management:",
            "  - {name: last, type: MX, data: *mx3}\n  management:",
        );
        assert!(Manifests::read_in_slices("a.yaml", &text, 2).is_none());
        let mut m = Manifests::default();
        m.add_text("a.yaml", &text).unwrap();
        assert_eq!(m.zones["default/z"].spec.records[1_500].data, ["10 mail"]);

        let text =
            big_stream(1_500).replace("name: t702\n    type: TXT", "name: t702\n    type: BOGUS");
        assert!(Manifests::read_in_slices("b.yaml", &text, 2).is_none());
        let err = Manifests::default()
            .add_text("b.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "b.yaml: DnsZone z is invalid: spec.records[702].type: Unsupported value: \"BOGUS\""
            ),
            "{err}"
        );

        // A zone already loaded from another file is reported as before.
        let mut m = Manifests::default();
        m.add_text("c.yaml", &big_stream(1_100)).unwrap();
        assert!(matches!(
            m.add_text("d.yaml", &big_stream(1_100)),
            Err(ManifestError::Duplicate { .. })
        ));
    }

    #[test]
    fn a_reading_knows_the_zone_before_its_list_and_finishes_as_a_whole_read() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap();
            dir.path().join(name)
        };
        let text = big_stream(1_100);
        let paths = [write("big.yaml", &text)];
        let reading = Manifests::read(&paths).unwrap();
        let header = &reading.headers().zones["default/z"];
        assert_eq!(header.spec.backend.server, "127.0.0.1:53");
        assert_eq!(header.spec.records.len(), 1, "the list is not read yet");
        assert!(reading.headers().secrets.contains_key("default/k"));
        let read = reading.finish().unwrap();
        let mut whole = Manifests::default();
        whole.add_text_whole("big.yaml", &text).unwrap();
        assert_eq!(json(&read.zones), json(&whole.zones));
        assert_eq!(read.config_maps, whole.config_maps);

        // An item refused once its list is read: the files are read again the usual way, with
        // the usual message, and a zone another file repeats is still a duplicate.
        let bad = text.replace("name: t702\n    type: TXT", "name: t702\n    type: BOGUS");
        let paths = [write("bad.yaml", &bad)];
        let reading = Manifests::read(&paths).unwrap();
        let err = reading.finish().unwrap_err().to_string();
        assert!(
            err.contains("DnsZone z is invalid: spec.records[702].type: Unsupported value"),
            "{err}"
        );
        let paths = [write("c.yaml", &text), write("d.yaml", &text)];
        assert!(matches!(
            Manifests::read(&paths),
            Err(ManifestError::Duplicate { .. })
        ));
    }

    /// A rule that reads the list's contents or a default inside it makes the list be checked
    /// in place.
    #[test]
    fn records_are_checked_in_place_when_a_rule_reads_them() {
        let schema = object_schema("-", "DnsZone", "z").unwrap();
        let mut with_rule = schema.clone();
        with_rule["properties"]["spec"]["x-kubernetes-validations"] =
            serde_json::json!([{"rule": "size(self.records) < 10", "message": "m"}]);
        assert!(records_apart(&with_rule).is_none());
        let mut with_default = schema.clone();
        with_default["properties"]["spec"]["properties"]["records"]["items"]["properties"]["ttl"]
            ["default"] = serde_json::json!(300);
        assert!(records_apart(&with_default).is_none());
    }
}
