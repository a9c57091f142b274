//! `zonekeeper import`: transfer an existing zone (our own AXFR reader) and write the
//! DnsZone manifest that adopts it into Git, plus a Secret template for its TSIG key. Zones
//! too big for one object get their records as zone text in `recordsFrom` ConfigMaps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};

use super::progress::Progress;
use super::state::{StateError, ZoneDir};
use crate::api::shared;
use crate::dns::error::DnsReason;
use crate::dns::model::{RRset, Zone, name_eq, name_to_text, rdata_to_text};
use crate::dns::transfer::{BoundsOverride, TransferBounds, TransferOptions, axfr};
use crate::dns::tsig::TsigKey;
use crate::reconcile::pass::resolve_server;

/// Above this many bytes of records the DnsZone would crowd etcd's 1.5 MiB object limit
/// (status and history need room too): records go to ConfigMaps instead.
pub const INLINE_LIMIT: usize = 500_000;
/// Most zone text in one ConfigMap (the limit is 1 MiB).
pub const CONFIG_MAP_LIMIT: usize = 900_000;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Arguments(String),
    #[error("TSIG key file {path}: {detail}")]
    KeyFile { path: String, detail: String },
    #[error("{0}")]
    Transfer(String),
    /// The server refused the transfer and no key was given: the usual cause.
    #[error(
        "{0}\nhint: the server may require a TSIG key for transfers: pass it with --tsig-key-file"
    )]
    TransferRefusedWithoutKey(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "the zone's records need {bytes} bytes, more than fit one object: give --out-dir for the recordsFrom ConfigMaps"
    )]
    NeedsOutDir { bytes: usize },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What to import and how to name the result.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `host:port` of the server to transfer from.
    pub server: String,
    /// The zone.
    pub zone: String,
    /// Key to sign the transfer with.
    pub key: Option<TsigKey>,
    /// DnsZone object name (default: the zone name with dots as dashes).
    pub name: Option<String>,
    /// Namespace of the objects.
    pub namespace: String,
    /// Where `recordsFrom` ConfigMaps are written when needed.
    pub out_dir: Option<PathBuf>,
    /// Keep the apex NS RRset in the records (left to the server's operator otherwise).
    pub include_apex_ns: bool,
    /// Where `plan`/`apply` keep their state: the imported RRsets are recorded there as
    /// owned, so removing one from the manifest plans its deletion before any apply ran.
    pub state_dir: Option<PathBuf>,
    /// Bounds of the transfer; the ones set are also written into the manifest's
    /// `spec.transfer`, so the operator's transfers of the zone keep them.
    pub bounds: BoundsOverride,
}

/// Reads a BIND key file: `key "name" { algorithm hmac-sha256; secret "base64"; };`.
pub fn parse_key_file(text: &str) -> Result<TsigKey, String> {
    let clean = strip_named_comments(text);
    let grab = |pattern: &str| -> Option<String> {
        regex::Regex::new(pattern)
            .ok()?
            .captures(&clean)?
            .get(1)
            .map(|m| m.as_str().to_string())
    };
    let name = grab(r#"key\s+"?([^"\s{]+)"?\s*\{"#).ok_or("no `key \"name\" {` clause")?;
    let algorithm =
        grab(r#"algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;"#).ok_or("no `algorithm ...;` clause")?;
    let secret = grab(r#"secret\s+"([^"]+)"\s*;"#).ok_or("no `secret \"...\";` clause")?;
    TsigKey::new(&name, &algorithm, &secret).map_err(|e| e.to_string())
}

/// Drops `#`, `//` and `/* */` comments outside quoted strings: a base64 secret may
/// well contain `//`, so cutting lines at the first `//` would truncate it.
fn strip_named_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            quoted = c != '"';
            out.push(c);
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                out.push(c);
            }
            '#' => skip_line(&mut chars, &mut out),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut out),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

fn skip_line(chars: &mut impl Iterator<Item = char>, out: &mut String) {
    if chars.any(|c| c == '\n') {
        out.push('\n');
    }
}

/// Loads `--tsig-key-file`.
pub fn load_key_file(path: &Path) -> Result<TsigKey, ImportError> {
    let err = |detail: String| ImportError::KeyFile {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    parse_key_file(&text).map_err(err)
}

fn relative(name: &Name, origin: &Name) -> String {
    if name_eq(name, origin) {
        return "@".to_string();
    }
    let full = name_to_text(name);
    let suffix = format!(".{}", name_to_text(origin));
    match full.strip_suffix(&suffix) {
        Some(rel) if !rel.is_empty() => rel.to_string(),
        _ => full,
    }
}

fn supported(rtype: RecordType) -> bool {
    shared::RecordType::ALL
        .iter()
        .any(|t| t.as_str() == rtype.to_string())
}

/// Whether a manifest manages this RRset: not the apex SOA, not the apex NS unless asked,
/// and only types DnsZone supports.
fn is_managed(set: &RRset, origin: &Name, include_apex_ns: bool) -> bool {
    !left_to_server(set, origin, include_apex_ns) && supported(set.rtype)
}

/// The apex SOA, and the apex NS unless asked: the server's, not worth a note.
fn left_to_server(set: &RRset, origin: &Name, include_apex_ns: bool) -> bool {
    let apex = name_eq(&set.name, origin);
    apex && (set.rtype == RecordType::SOA || (set.rtype == RecordType::NS && !include_apex_ns))
}

/// The RRsets a manifest manages, decoded one at a time from the compact zone: a 1M-record
/// zone materialised as a `Vec<RRset>` alone costs several hundred MB.
fn managed_rrsets(zone: &Zone, include_apex_ns: bool) -> impl Iterator<Item = RRset> + '_ {
    let origin = zone.origin();
    zone.rrsets()
        .filter(move |set| is_managed(set, origin, include_apex_ns))
}

/// Notes for the RRsets left out because DnsZone does not support their type.
fn skipped_notes(zone: &Zone, include_apex_ns: bool) -> Vec<String> {
    let origin = zone.origin();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for set in zone
        .rrsets()
        .filter(|set| !left_to_server(set, origin, include_apex_ns) && !supported(set.rtype))
    {
        *skipped.entry(set.rtype.to_string()).or_default() += set.len();
    }
    skipped
        .into_iter()
        .map(|(t, n)| format!("{n} {t} record(s) skipped: type not supported by DnsZone"))
        .collect()
}

/// The import: transfers the zone and returns the manifests as YAML text (ConfigMaps, when
/// needed, are written to `out_dir` and only referenced), plus notes for standard error.
pub async fn import(opts: &ImportOptions) -> Result<(String, Vec<String>), ImportError> {
    let mut origin = Name::from_ascii(opts.zone.trim())
        .map_err(|e| ImportError::Arguments(format!("--zone {:?}: {e}", opts.zone)))?;
    origin.set_fqdn(true);
    let addr = resolve_server(&opts.server)
        .await
        .map_err(|e| ImportError::Transfer(e.to_string()))?;
    let topts = TransferOptions {
        tsig: opts.key.clone(),
        ..TransferOptions::bounded(TransferBounds::default().overridden(opts.bounds), 0)
    };
    let mut zone = Zone::new(origin.clone());
    let mut progress = Progress::new("AXFR", "records");
    axfr(addr, &origin, &topts, &mut |r| {
        zone.insert(r);
        progress.tick(1);
        Ok(())
    })
    .await
    .map_err(|e| {
        let refused = matches!(
            e.reason(),
            DnsReason::TransferRefused | DnsReason::NotAuth | DnsReason::Refused
        );
        if refused && opts.key.is_none() {
            ImportError::TransferRefusedWithoutKey(e.to_string())
        } else {
            ImportError::Transfer(e.to_string())
        }
    })?;
    progress.finish();
    let rendered = render(&zone, opts)?;
    if let Some(root) = &opts.state_dir {
        adopt(root, opts, &zone)?;
    }
    Ok(rendered)
}

/// The DnsZone object name: `--name`, or the zone name with dots as dashes.
fn object_name(opts: &ImportOptions, zone_text: &str) -> String {
    opts.name.clone().unwrap_or_else(|| {
        zone_text
            .trim_end_matches('.')
            .replace('.', "-")
            .to_ascii_lowercase()
    })
}

/// Records the RRsets the manifest manages as owned, with the fingerprint the server holds:
/// what an apply of the unchanged manifest would have recorded.
pub fn adopt(root: &Path, opts: &ImportOptions, zone: &Zone) -> Result<(), ImportError> {
    let object = object_name(opts, &name_to_text(zone.origin()));
    let dir = ZoneDir::new(root, &opts.namespace, &object);
    let mut owned = dir.load_owned()?;
    let managed =
        managed_rrsets(zone, opts.include_apex_ns).map(|set| (set.key(), set.fingerprint()));
    if owned.is_empty() {
        // The zone hands its RRsets out in canonical order, the list's own: written as they
        // come, the list is never held whole.
        dir.save_owned_lines(managed)?;
    } else {
        owned.extend(managed);
        dir.save_owned(&owned)?;
    }
    Ok(())
}

/// Builds the manifests for an already transferred zone.
pub fn render(zone: &Zone, opts: &ImportOptions) -> Result<(String, Vec<String>), ImportError> {
    let origin = zone.origin();
    let zone_text = name_to_text(origin);
    let object = object_name(opts, &zone_text);
    let secret_name = format!("{object}-tsig");
    let mut notes = skipped_notes(zone, opts.include_apex_ns);
    let default_ttl = zone
        .rrsets()
        .find(|s| s.rtype == RecordType::SOA)
        .map(|s| s.ttl)
        .unwrap_or(3600);

    let record_json = |set: &RRset| {
        json!({
            "name": relative(&set.name, origin),
            "type": set.rtype.to_string(),
            "ttl": set.ttl,
            "data": set.rdatas.iter().map(rdata_to_text).collect::<Vec<_>>(),
        })
    };
    // The size of the records as one JSON array (`[a,b,...]`), counted one record at a
    // time: only a zone that fits inline is ever held as JSON values.
    let mut set_count = 0usize;
    let mut inline_bytes = 2usize;
    for set in managed_rrsets(zone, opts.include_apex_ns) {
        if set_count > 0 {
            inline_bytes += 1;
        }
        set_count += 1;
        inline_bytes += serde_json::to_string(&record_json(&set))
            .map(|s| s.len())
            .unwrap_or(0);
    }

    let mut spec = json!({
        "zoneName": zone_text,
        "type": "Primary",
        "ttl": default_ttl,
        "backend": {
            "server": opts.server,
            "tsigKeySecretRef": {"name": secret_name},
        },
        "management": {"prune": false, "driftPolicy": "Correct"},
    });
    let b = opts.bounds;
    let mut transfer = serde_json::Map::new();
    if let Some(d) = b.deadline {
        transfer.insert("deadline".into(), json!(shared::Duration(d).to_string()));
    }
    if let Some(n) = b.max_records {
        transfer.insert("maxRecords".into(), json!(n));
    }
    if let Some(n) = b.max_bytes {
        transfer.insert("maxBytes".into(), json!(n));
    }
    if !transfer.is_empty() {
        spec["transfer"] = Value::Object(transfer);
    }
    let mut out = String::new();
    if inline_bytes <= INLINE_LIMIT {
        spec["records"] = Value::Array(
            managed_rrsets(zone, opts.include_apex_ns)
                .map(|set| record_json(&set))
                .collect(),
        );
    } else {
        let dir = opts.out_dir.as_ref().ok_or(ImportError::NeedsOutDir {
            bytes: inline_bytes,
        })?;
        std::fs::create_dir_all(dir).map_err(|source| ImportError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        // Each ConfigMap is written as soon as it is full: one part in memory at a time.
        let mut writer = PartWriter {
            dir,
            object: &object,
            namespace: &opts.namespace,
            refs: Vec::new(),
            notes: &mut notes,
        };
        let header = format!("$ORIGIN {zone_text}\n");
        let mut current = header.clone();
        let mut chunk = String::new();
        for set in managed_rrsets(zone, opts.include_apex_ns) {
            chunk.clear();
            for line in set.to_lines() {
                chunk.push_str(&line);
                chunk.push('\n');
            }
            // An RRset never straddles two ConfigMaps.
            if current.len() + chunk.len() > CONFIG_MAP_LIMIT && current.len() > header.len() {
                writer.write(&current)?;
                current.clone_from(&header);
            }
            current.push_str(&chunk);
        }
        if current.len() > header.len() {
            writer.write(&current)?;
        }
        spec["recordsFrom"] = Value::Array(writer.refs);
    }
    let key = opts.key.as_ref();
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": opts.namespace},
        "type": "Opaque",
        "stringData": {
            "name": key.map(|k| k.name.to_ascii()).unwrap_or_else(|| "zonekeeper-key.".into()),
            "algorithm": key.map(TsigKey::algorithm_name).unwrap_or_else(|| "hmac-sha256".into()),
            "secret": "REPLACE-WITH-THE-BASE64-SECRET",
        },
    });
    let dns_zone = json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "DnsZone",
        "metadata": {"name": object, "namespace": opts.namespace},
        "spec": spec,
    });
    let _ = writeln!(
        out,
        "# Imported from {} by `zonekeeper import`: {} RRsets of {zone_text} (SOA left to the server{}).",
        opts.server,
        set_count,
        if opts.include_apex_ns {
            ""
        } else {
            ", apex NS too"
        }
    );
    out.push_str(
        "# The Secret is a template: put the key's secret in it, and keep it out of Git.\n",
    );
    out.push_str("---\n");
    out.push_str(&serde_yaml::to_string(&secret).unwrap_or_default());
    out.push_str("---\n");
    out.push_str(&serde_yaml::to_string(&dns_zone).unwrap_or_default());
    Ok((out, notes))
}

/// Writes `recordsFrom` ConfigMaps one by one, numbered from 1.
struct PartWriter<'a> {
    dir: &'a Path,
    object: &'a str,
    namespace: &'a str,
    refs: Vec<Value>,
    notes: &'a mut Vec<String>,
}

impl PartWriter<'_> {
    fn write(&mut self, text: &str) -> Result<(), ImportError> {
        let cm_name = format!("{}-records-{}", self.object, self.refs.len() + 1);
        let cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": cm_name, "namespace": self.namespace},
            "data": {"zone": text},
        });
        let path = self.dir.join(format!("{cm_name}.yaml"));
        let yaml = serde_yaml::to_string(&cm).unwrap_or_default();
        std::fs::write(&path, yaml).map_err(|source| ImportError::Write {
            path: path.display().to_string(),
            source,
        })?;
        self.notes.push(format!(
            "wrote {} ({} bytes of zone text)",
            path.display(),
            text.len()
        ));
        self.refs
            .push(json!({"configMapRef": {"name": cm_name, "key": "zone"}}));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bind_key_files() {
        let text = r#"
            // generated by tsig-keygen
            key "zonekeeper-key" {
                algorithm hmac-sha256;
                secret "c2VjcmV0c2VjcmV0c2VjcmV0";
            };
        "#;
        let k = parse_key_file(text).unwrap();
        assert_eq!(k.name.to_ascii(), "zonekeeper-key.");
        assert_eq!(k.algorithm_name(), "hmac-sha256");
        assert_eq!(k.secret, b"secretsecretsecret");
        assert!(parse_key_file("key x { algorithm hmac-sha256; };").is_err());
        use base64::Engine as _;
        // `//` and `#` inside the quoted secret are base64, not comments.
        let slashes = parse_key_file(
            "key k { /* block\n comment */ algorithm hmac-sha256; # note\n secret \"ab//cd+/Zg==\"; };",
        )
        .unwrap();
        assert_eq!(slashes.name.to_ascii(), "k.");
        assert_eq!(
            slashes.secret,
            base64::engine::general_purpose::STANDARD
                .decode("ab//cd+/Zg==")
                .unwrap()
        );
        assert!(parse_key_file("key \"x\" { algorithm hmac-md5; secret \"AAAA\"; };").is_err());
    }

    /// A zone too big for one object goes to ConfigMaps, each under the limit, whose zone
    /// text parses back to exactly the zone's RRsets.
    #[test]
    fn big_zones_go_to_config_maps() {
        use crate::dns::model::{parse_rdata, parse_zone_text};
        use hickory_proto::rr::Record;
        let origin = Name::from_ascii("big.example.").unwrap();
        let mut zone = crate::dns::server::minimal_zone(
            &origin,
            &Name::from_ascii("ns1.big.example.").unwrap(),
            1,
        );
        for i in 0..20_000 {
            let name = Name::from_ascii(format!("host-{i:06}.big.example.")).unwrap();
            let data = format!("\"payload {i} abcdefghijklmnopqrstuvwxyz\"");
            let rdata = parse_rdata(RecordType::TXT, &origin, &data).unwrap();
            zone.insert(Record::from_rdata(name, 300, rdata));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ImportOptions {
            server: "127.0.0.1:53".into(),
            zone: "big.example.".into(),
            key: None,
            name: None,
            namespace: "default".into(),
            out_dir: None,
            include_apex_ns: false,
            state_dir: None,
            bounds: BoundsOverride::default(),
        };
        assert!(matches!(
            render(&zone, &opts),
            Err(ImportError::NeedsOutDir { .. })
        ));
        opts.out_dir = Some(dir.path().to_path_buf());
        let (text, notes) = render(&zone, &opts).unwrap();
        assert!(
            text.contains("recordsFrom") && !text.contains("records:"),
            "{text}"
        );
        assert!(text.len() < 10_000);
        let mut parsed = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 2, "{notes:?}");
        for f in files {
            let cm: serde_yaml::Value =
                serde_yaml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let zone_text = cm["data"]["zone"].as_str().unwrap();
            assert!(zone_text.len() < CONFIG_MAP_LIMIT);
            parsed.extend(parse_zone_text(&origin, 3600, zone_text).unwrap());
        }
        let expected: Vec<RRset> = managed_rrsets(&zone, false).collect();
        let got = Zone::from_rrsets(origin.clone(), parsed);
        let want = Zone::from_rrsets(origin, expected);
        assert_eq!(got, want);
    }

    #[test]
    fn names_become_relative() {
        let o = Name::from_ascii("example.com.").unwrap();
        assert_eq!(relative(&o, &o), "@");
        assert_eq!(
            relative(&Name::from_ascii("a.b.example.com.").unwrap(), &o),
            "a.b"
        );
        assert_eq!(
            relative(&Name::from_ascii("other.org.").unwrap(), &o),
            "other.org."
        );
    }
}
