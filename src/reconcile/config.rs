//! Turning a DnsZone spec plus the Secrets and ConfigMaps it names into a resolved, typed
//! configuration. Pure: the caller hands in lookups, so the operator (API reads) and the
//! standalone mode (manifest files) resolve identically.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};

use crate::api::DnsZoneSpec;
use crate::api::dns_zone::{DriftPolicy, ZoneType};
use crate::dns::diff::{Guard, SoaWant};
use crate::dns::model::{self, Desired, RRsetKey};
use crate::dns::transfer::TransferBounds;

use super::reason::ConfigReason;
use super::soa::{EmailError, email_to_rname};
use crate::dns::tsig::TsigKey;
use crate::reconcile::validation::{self, RecordError};

/// A server and how to talk to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` as written; a name is resolved each time it is used.
    pub server: String,
    /// The key every message is signed with; unsigned when absent.
    pub key: Option<TsigKey>,
    pub timeout: Duration,
    /// Name of the Secret the key came from, for messages.
    pub key_secret: Option<String>,
    /// The bounds of every transfer from this endpoint (`spec.transfer`).
    pub bounds: TransferBounds,
}

/// Everything one reconcile pass needs, resolved and validated.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    pub origin: Name,
    pub zone_type: ZoneType,
    pub backend: Endpoint,
    pub transfer: Endpoint,
    /// Desired RRsets from `records` and `recordsFrom`, canonical, packed (a million of them
    /// are held for a whole pass).
    pub desired: Desired,
    pub prune: bool,
    pub drift_policy: DriftPolicy,
    pub guard: Guard,
    pub allow_mass_deletion: bool,
    /// Secondary zones: the primaries as written.
    pub masters: Vec<String>,
    /// What the spec manages of the apex SOA (Primary zones).
    pub soa: SoaWant,
}

impl ZoneConfig {
    /// The zone's connection, as [`connection`] resolved it (or a host set it back).
    pub fn connection(&self) -> Connection {
        Connection {
            origin: self.origin.clone(),
            backend: self.backend.clone(),
            transfer: self.transfer.clone(),
        }
    }
}

/// Why a spec could not be resolved; each maps to a condition reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Secret {name} not found")]
    SecretNotFound { name: String },
    #[error("Secret {name} does not hold a usable TSIG key: {detail}")]
    InvalidKey { name: String, detail: String },
    #[error("ConfigMap {name} has no key {key}")]
    ConfigMapNotFound { name: String, key: String },
    #[error("zoneName {0:?} is not a DNS name: {1}")]
    InvalidZoneName(String, String),
    #[error("{} invalid record(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidRecords(Vec<RecordError>),
    #[error("recordsFrom ConfigMap {name} key {key}: {detail}")]
    InvalidZoneText {
        name: String,
        key: String,
        detail: String,
    },
    /// Each source is fine on its own; together they clash.
    #[error("{} conflicting RRset(s): {}", .0.len(), list_conflicts(.0))]
    ConflictingSources(Vec<SourceConflict>),
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
}

/// How many conflicts a message lists (and locates: finding a line costs parses of the text).
const SHOWN_CONFLICTS: usize = 20;

fn list_conflicts(conflicts: &[SourceConflict]) -> String {
    let mut text = conflicts
        .iter()
        .take(SHOWN_CONFLICTS)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if conflicts.len() > SHOWN_CONFLICTS {
        text.push_str(&format!("; and {} more", conflicts.len() - SHOWN_CONFLICTS));
    }
    text
}

/// Where a desired RRset was written, for messages that must point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// `spec.records[i]`.
    Records(usize),
    /// `spec.recordsFrom[index]`, the ConfigMap `name` key `key`, at `line` of its text.
    RecordsFrom {
        index: usize,
        name: String,
        key: String,
        line: Option<usize>,
    },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Records(i) => write!(f, "records[{i}]"),
            Place::RecordsFrom {
                index,
                name,
                key,
                line,
            } => {
                write!(f, "recordsFrom[{index}] (configmap {name}/{key}")?;
                if let Some(line) = line {
                    write!(f, " line {line}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Two sources of desired RRsets that cannot both hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceConflict {
    /// The same RRset (name and type) from two places: each pass would write it twice.
    #[error("{place} {key} duplicates {first}")]
    Duplicate {
        place: Place,
        key: RRsetKey,
        first: Place,
    },
    /// A CNAME from one place beside other data at its name from another.
    #[error("{place} {key} stands beside {other} {other_key}; a CNAME must stand alone")]
    CnameBesideData {
        place: Place,
        key: RRsetKey,
        other: Place,
        other_key: RRsetKey,
    },
}

impl ConfigError {
    /// The condition reason.
    pub fn reason(&self) -> ConfigReason {
        match self {
            ConfigError::SecretNotFound { .. } => ConfigReason::SecretNotFound,
            ConfigError::InvalidKey { .. } => ConfigReason::InvalidKey,
            ConfigError::ConfigMapNotFound { .. } => ConfigReason::ConfigMapNotFound,
            ConfigError::InvalidZoneName(..) => ConfigReason::InvalidZoneName,
            ConfigError::InvalidEmail(_) => ConfigReason::InvalidEmail,
            ConfigError::InvalidRecords(_)
            | ConfigError::InvalidZoneText { .. }
            | ConfigError::ConflictingSources(_) => ConfigReason::InvalidRecords,
        }
    }

    /// Whether the failure is about reaching the backend (BackendReachable) rather than about
    /// the records (Ready).
    pub fn is_connection_problem(&self) -> bool {
        matches!(
            self,
            ConfigError::SecretNotFound { .. } | ConfigError::InvalidKey { .. }
        )
    }
}

/// Reads Secrets and ConfigMaps of the zone's namespace.
pub trait Lookup {
    /// The bytes under `key` of Secret `name`; `None` when the Secret does not exist, and
    /// `Some(None)` when it exists without that key.
    fn secret(&self, name: &str, key: &str) -> Option<Option<Vec<u8>>>;
    /// The text under `key` of ConfigMap `name`.
    fn config_map(&self, name: &str, key: &str) -> Option<String>;
}

/// Reads a TSIG key from a Secret with keys `name`, `algorithm` (default `hmac-sha256`)
/// and `secret` (base64).
pub fn tsig_key(lookup: &dyn Lookup, secret_name: &str) -> Result<TsigKey, ConfigError> {
    let text = |key: &str| -> Result<Option<String>, ConfigError> {
        match lookup.secret(secret_name, key) {
            None => Err(ConfigError::SecretNotFound {
                name: secret_name.to_string(),
            }),
            Some(None) => Ok(None),
            Some(Some(bytes)) => String::from_utf8(bytes)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|_| ConfigError::InvalidKey {
                    name: secret_name.to_string(),
                    detail: format!("key {key} is not UTF-8 text"),
                }),
        }
    };
    let missing = |key: &str| ConfigError::InvalidKey {
        name: secret_name.to_string(),
        detail: format!("it has no key {key:?}"),
    };
    let name = text("name")?.ok_or_else(|| missing("name"))?;
    let algorithm = text("algorithm")?.unwrap_or_else(|| "hmac-sha256".to_string());
    let secret = text("secret")?.ok_or_else(|| missing("secret"))?;
    TsigKey::new(&name, &algorithm, &secret).map_err(|e| ConfigError::InvalidKey {
        name: secret_name.to_string(),
        detail: e.to_string(),
    })
}

/// `spec.transfer`'s bounds, the defaults where a field is absent (or a deadline `0`).
pub fn transfer_bounds(spec: &DnsZoneSpec) -> TransferBounds {
    let default = TransferBounds::default();
    let Some(t) = &spec.transfer else {
        return default;
    };
    let positive = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0);
    TransferBounds {
        deadline: t.deadline.map(|d| d.0).filter(|d| !d.is_zero()),
        max_records: positive(t.max_records).unwrap_or(default.max_records),
        max_bytes: positive(t.max_bytes).unwrap_or(default.max_bytes),
    }
}

/// The zone's backend connection and its transfer connection (`spec.transfer`, each part
/// defaulting to the backend's), keys read from their Secrets.
pub fn endpoints(
    spec: &DnsZoneSpec,
    lookup: &dyn Lookup,
) -> Result<(Endpoint, Endpoint), ConfigError> {
    let backend_key = spec
        .backend
        .tsig_key_secret_ref
        .as_ref()
        .map(|r| tsig_key(lookup, &r.name).map(|k| (k, r.name.clone())))
        .transpose()?;
    let backend = Endpoint {
        server: spec.backend.server.clone(),
        key: backend_key.as_ref().map(|(k, _)| k.clone()),
        timeout: spec.backend.timeout.0,
        key_secret: backend_key.map(|(_, n)| n),
        bounds: transfer_bounds(spec),
    };
    let transfer = match &spec.transfer {
        None => backend.clone(),
        Some(t) => {
            let key = match &t.tsig_key_secret_ref {
                Some(r) => Some((tsig_key(lookup, &r.name)?, r.name.clone())),
                None => backend.key.clone().zip(backend.key_secret.clone()),
            };
            Endpoint {
                server: t.server.clone().unwrap_or_else(|| backend.server.clone()),
                key: key.as_ref().map(|(k, _)| k.clone()),
                timeout: backend.timeout,
                key_secret: key.map(|(_, n)| n),
                bounds: backend.bounds,
            }
        }
    };
    Ok((backend, transfer))
}

/// Where a zone is and how to reach it: all its observation needs, resolved apart from its
/// records so that the two can run side by side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub origin: Name,
    pub backend: Endpoint,
    pub transfer: Endpoint,
}

/// Resolves the zone name and the endpoints of a spec: the first of its checks, so a bad name
/// or a missing Secret is reported before any record is read.
pub fn connection(spec: &DnsZoneSpec, lookup: &dyn Lookup) -> Result<Connection, ConfigError> {
    let origin = Name::from_ascii(&spec.zone_name)
        .map_err(|e| ConfigError::InvalidZoneName(spec.zone_name.clone(), e.to_string()))?;
    let (backend, transfer) = endpoints(spec, lookup)?;
    Ok(Connection {
        origin,
        backend,
        transfer,
    })
}

/// Resolves a spec. Record errors are all collected, so a user sees every bad record at once.
pub fn resolve(spec: &DnsZoneSpec, lookup: &dyn Lookup) -> Result<ZoneConfig, ConfigError> {
    resolve_with(spec, lookup, connection(spec, lookup)?)
}

/// Resolves the rest of a spec onto its [`connection`].
pub fn resolve_with(
    spec: &DnsZoneSpec,
    lookup: &dyn Lookup,
    connection: Connection,
) -> Result<ZoneConfig, ConfigError> {
    let Connection {
        origin,
        backend,
        transfer,
    } = connection;
    let default_ttl = u32::try_from(spec.ttl).unwrap_or(3600);
    let records = validation::parse_record_sets(&origin, default_ttl, &spec.records)
        .map_err(ConfigError::InvalidRecords)?;
    // Packed as each source is parsed, so the unpacked RRsets of one ConfigMap at most are
    // alive at once, and no ConfigMap text is kept.
    let mut desired = Desired::new();
    let mut sources: Vec<Source> = Vec::new();
    for (i, set) in records.into_iter().enumerate() {
        desired.push(set);
        sources.push(Source::Records(i));
    }
    for (index, source) in spec.records_from.iter().enumerate() {
        let r = &source.config_map_ref;
        let text =
            lookup
                .config_map(&r.name, &r.key)
                .ok_or_else(|| ConfigError::ConfigMapNotFound {
                    name: r.name.clone(),
                    key: r.key.clone(),
                })?;
        let more = model::parse_zone_text(&origin, default_ttl, &text).map_err(|e| {
            ConfigError::InvalidZoneText {
                name: r.name.clone(),
                key: r.key.clone(),
                detail: e.to_string(),
            }
        })?;
        drop(text);
        for set in more {
            desired.push(set);
            sources.push(Source::RecordsFrom(index));
        }
    }
    check_merged(&desired, &sources).map_err(|clashes| {
        let place = |n: usize, source: Source, key: &RRsetKey| match source {
            Source::Records(i) => Place::Records(i),
            Source::RecordsFrom(index) => {
                let r = &spec.records_from[index].config_map_ref;
                Place::RecordsFrom {
                    index,
                    name: r.name.clone(),
                    key: r.key.clone(),
                    line: (n < SHOWN_CONFLICTS)
                        .then(|| {
                            let text = lookup.config_map(&r.name, &r.key)?;
                            first_line(&origin, default_ttl, &text, key)
                        })
                        .flatten(),
                }
            }
        };
        let conflicts = clashes
            .into_iter()
            .enumerate()
            .map(|(n, clash)| match clash {
                Clash::Duplicate { source, key, first } => SourceConflict::Duplicate {
                    place: place(n, source, &key),
                    first: place(n, first, &key),
                    key,
                },
                Clash::CnameBesideData {
                    source,
                    key,
                    other,
                    other_key,
                } => SourceConflict::CnameBesideData {
                    place: place(n, source, &key),
                    other: place(n, other, &other_key),
                    key,
                    other_key,
                },
            })
            .collect();
        ConfigError::ConflictingSources(conflicts)
    })?;
    let soa = SoaWant {
        rname: spec.email.as_deref().map(email_to_rname).transpose()?,
        ttl: default_ttl,
    };
    let guard = &spec.management.deletion_guard;
    Ok(ZoneConfig {
        origin,
        zone_type: spec.zone_type,
        backend,
        transfer,
        desired,
        prune: spec.management.prune,
        drift_policy: spec.management.drift_policy,
        guard: Guard {
            max_deletes: u64::try_from(guard.max_deletes).unwrap_or(0),
            max_delete_percent: u32::try_from(guard.max_delete_percent).unwrap_or(0),
        },
        allow_mass_deletion: spec.management.allow_mass_deletion,
        masters: spec.masters.clone(),
        soa,
    })
}

/// Which source a desired RRset came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Records(usize),
    RecordsFrom(usize),
}

impl Source {
    /// Whether both are the same list: all of `records`, or one `recordsFrom` entry.
    fn same_as(self, other: Source) -> bool {
        match (self, other) {
            (Source::Records(_), Source::Records(_)) => true,
            (Source::RecordsFrom(a), Source::RecordsFrom(b)) => a == b,
            _ => false,
        }
    }
}

/// A conflict between sources, before it is located for a message.
enum Clash {
    Duplicate {
        source: Source,
        key: RRsetKey,
        first: Source,
    },
    CnameBesideData {
        source: Source,
        key: RRsetKey,
        other: Source,
        other_key: RRsetKey,
    },
}

/// Each source was checked on its own; this checks them together: one RRset per key, and a
/// CNAME alone at its name. Sorting indices by the zone map's byte key (canonical order,
/// memcmp) costs 4 bytes an RRset; a map keyed by hickory names was what made resolving a
/// million records take minutes.
fn check_merged(desired: &Desired, sources: &[Source]) -> Result<(), Vec<Clash>> {
    let keys: Vec<Cow<'_, [u8]>> = (0..desired.len())
        .map(|i| desired.key_bytes(i).unwrap_or_default())
        .collect();
    let mut order: Vec<u32> = (0..u32::try_from(keys.len()).unwrap_or(u32::MAX)).collect();
    // Stable: among equal keys the first given comes first, and is the one kept.
    order.sort_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
    let source = |i: usize| sources.get(i).copied().unwrap_or(Source::Records(i));
    let key = |i: usize| desired.get(i).map(|s| s.key());
    let mut duplicates: Vec<(usize, Clash)> = Vec::new();
    for same in order.chunk_by(|a, b| keys[*a as usize] == keys[*b as usize]) {
        let first = same[0] as usize;
        for &later in &same[1..] {
            let later = later as usize;
            if let Some(key) = key(later) {
                duplicates.push((
                    later,
                    Clash::Duplicate {
                        source: source(later),
                        key,
                        first: source(first),
                    },
                ));
            }
        }
    }
    // Reported in the order the duplicates were given.
    duplicates.sort_by_key(|(i, _)| *i);
    let mut clashes: Vec<Clash> = duplicates.into_iter().map(|(_, c)| c).collect();
    // In canonical order the RRsets of one name are neighbours; a key ends with its type.
    let name_of = |i: &u32| {
        let k = &keys[*i as usize];
        &k[..k.len().saturating_sub(2)]
    };
    let rtype_of = |i: usize| {
        RecordType::from(u16::from_be_bytes(
            keys[i]
                .get(keys[i].len().saturating_sub(2)..)
                .and_then(|t| t.try_into().ok())
                .unwrap_or([0, 0]),
        ))
    };
    let mut unique = order.clone();
    unique.dedup_by(|a, b| keys[*a as usize] == keys[*b as usize]);
    for group in unique.chunk_by(|a, b| name_of(a) == name_of(b)) {
        let Some(&cname) = group
            .iter()
            .find(|i| rtype_of(**i as usize) == RecordType::CNAME)
        else {
            continue;
        };
        let cname = cname as usize;
        for &other in group
            .iter()
            .filter(|i| rtype_of(**i as usize) != RecordType::CNAME)
        {
            let other = other as usize;
            // Within one source the model's own check already refused it.
            if source(cname).same_as(source(other)) {
                continue;
            }
            if let (Some(key), Some(other_key)) = (key(cname), key(other)) {
                clashes.push(Clash::CnameBesideData {
                    source: source(cname),
                    key,
                    other: source(other),
                    other_key,
                });
            }
        }
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(clashes)
    }
}

/// The line of `text` where the RRset `key` is first complete: the shortest prefix of whole
/// lines that parses and holds it. The zone-text parser does not hand out line numbers, and
/// this runs only for messages, so it bisects (a prefix cut inside parentheses does not parse;
/// the next one that does is taken, which keeps the search monotone).
fn first_line(origin: &Name, default_ttl: u32, text: &str, key: &RRsetKey) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let holds = |n: usize| -> Option<(usize, bool)> {
        (n..=lines.len()).find_map(|m| {
            model::parse_zone_text(origin, default_ttl, &lines[..m].join("\n"))
                .ok()
                .map(|sets| (m, sets.iter().any(|s| s.key() == *key)))
        })
    };
    let (mut lo, mut hi) = (1, lines.len());
    let mut found = None;
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        match holds(mid)? {
            (m, true) => {
                found = Some(m);
                hi = mid - 1;
            }
            (m, false) => lo = m + 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";

    #[derive(Default)]
    struct Maps {
        secrets: BTreeMap<String, BTreeMap<String, String>>,
        config_maps: BTreeMap<(String, String), String>,
    }

    impl Maps {
        fn secret(mut self, name: &str, pairs: &[(&str, &str)]) -> Self {
            let data = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            self.secrets.insert(name.to_string(), data);
            self
        }

        fn config_map(mut self, name: &str, key: &str, text: &str) -> Self {
            self.config_maps
                .insert((name.to_string(), key.to_string()), text.to_string());
            self
        }
    }

    impl Lookup for Maps {
        fn secret(&self, name: &str, key: &str) -> Option<Option<Vec<u8>>> {
            let data = self.secrets.get(name)?;
            Some(data.get(key).map(|v| v.clone().into_bytes()))
        }

        fn config_map(&self, name: &str, key: &str) -> Option<String> {
            self.config_maps
                .get(&(name.to_string(), key.to_string()))
                .cloned()
        }
    }

    fn spec(extra: serde_json::Value) -> DnsZoneSpec {
        let mut base = serde_json::json!({
            "zoneName": "example.com.",
            "type": "Primary",
            "backend": {"server": "192.0.2.1:53"},
        });
        if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
            base.extend(extra);
        }
        serde_json::from_value(base).unwrap()
    }

    fn key_secret(name: &str) -> Maps {
        Maps::default().secret(name, &[("name", "k1."), ("secret", SECRET)])
    }

    #[test]
    fn secrets_missing_or_unusable_are_named_with_their_reason() {
        let keyed = spec(serde_json::json!({
            "backend": {"server": "192.0.2.1:53", "tsigKeySecretRef": {"name": "tsig"}},
        }));
        let cases: Vec<(&str, Maps, ConfigReason, &str)> = vec![
            (
                "no Secret",
                Maps::default(),
                ConfigReason::SecretNotFound,
                "Secret tsig not found",
            ),
            (
                "no secret key",
                Maps::default().secret("tsig", &[("name", "k1.")]),
                ConfigReason::InvalidKey,
                "Secret tsig does not hold a usable TSIG key: it has no key \"secret\"",
            ),
            (
                "no name key",
                Maps::default().secret("tsig", &[("secret", SECRET)]),
                ConfigReason::InvalidKey,
                "it has no key \"name\"",
            ),
            (
                "unknown algorithm",
                Maps::default().secret(
                    "tsig",
                    &[
                        ("name", "k1."),
                        ("secret", SECRET),
                        ("algorithm", "hmac-md4"),
                    ],
                ),
                ConfigReason::InvalidKey,
                "hmac-md4",
            ),
        ];
        for (case, lookup, reason, message) in cases {
            let err = resolve(&keyed, &lookup).unwrap_err();
            assert_eq!(err.reason(), reason, "{case}: {err}");
            assert!(err.to_string().contains(message), "{case}: {err}");
            assert!(err.is_connection_problem(), "{case}");
        }
    }

    #[test]
    fn transfer_bounds_come_from_the_spec_and_default_where_absent() {
        let lookup = Maps::default();
        let cfg = resolve(&spec(serde_json::json!({})), &lookup).unwrap();
        assert_eq!(cfg.transfer.bounds, TransferBounds::default());
        let cfg = resolve(
            &spec(serde_json::json!({
                "transfer": {"deadline": "90s", "maxRecords": 1000, "maxBytes": 65536}
            })),
            &lookup,
        )
        .unwrap();
        let set = TransferBounds {
            deadline: Some(Duration::from_secs(90)),
            max_records: 1000,
            max_bytes: 65536,
        };
        assert_eq!(cfg.transfer.bounds, set, "the transfer endpoint's");
        assert_eq!(cfg.backend.bounds, set, "the same zone, the same bounds");
        let cfg = resolve(
            &spec(serde_json::json!({"transfer": {"deadline": "0", "maxBytes": 10}})),
            &lookup,
        )
        .unwrap();
        assert_eq!(cfg.transfer.bounds.deadline, None, "0: the default");
        assert_eq!(
            cfg.transfer.bounds.max_records,
            TransferBounds::default().max_records
        );
        assert_eq!(cfg.transfer.bounds.max_bytes, 10);
    }

    #[test]
    fn the_transfer_connection_defaults_to_the_backend_and_inherits_its_key() {
        let lookup = key_secret("tsig").secret("xfr", &[("name", "k2."), ("secret", SECRET)]);
        let backend = serde_json::json!({
            "server": "192.0.2.1:53",
            "tsigKeySecretRef": {"name": "tsig"},
            "timeout": "3s",
        });

        let cfg = resolve(&spec(serde_json::json!({"backend": backend})), &lookup).unwrap();
        assert_eq!(
            cfg.transfer, cfg.backend,
            "no transfer block: the backend itself"
        );
        assert_eq!(cfg.backend.key_secret.as_deref(), Some("tsig"));
        assert_eq!(cfg.backend.timeout, Duration::from_secs(3));

        let cfg = resolve(
            &spec(serde_json::json!({
                "backend": backend,
                "transfer": {"server": "192.0.2.2:53"},
            })),
            &lookup,
        )
        .unwrap();
        assert_eq!(cfg.transfer.server, "192.0.2.2:53");
        assert_eq!(
            cfg.transfer.key, cfg.backend.key,
            "the backend's key is inherited"
        );
        assert_eq!(cfg.transfer.key_secret.as_deref(), Some("tsig"));
        assert_eq!(cfg.transfer.timeout, cfg.backend.timeout);

        let cfg = resolve(
            &spec(serde_json::json!({
                "backend": backend,
                "transfer": {"tsigKeySecretRef": {"name": "xfr"}},
            })),
            &lookup,
        )
        .unwrap();
        assert_eq!(
            cfg.transfer.server, "192.0.2.1:53",
            "server defaults to the backend"
        );
        assert_eq!(cfg.transfer.key_secret.as_deref(), Some("xfr"));
        assert_ne!(cfg.transfer.key, cfg.backend.key);
    }

    #[test]
    fn records_from_adds_the_configmap_records_to_the_spec_records() {
        let lookup = Maps::default().config_map(
            "part1",
            "zone",
            "$TTL 60\nmail IN A 192.0.2.25\n     IN AAAA 2001:db8::25\n",
        );
        let cfg = resolve(
            &spec(serde_json::json!({
                "records": [{"name": "www", "type": "A", "data": ["192.0.2.80"]}],
                "recordsFrom": [{"configMapRef": {"name": "part1", "key": "zone"}}],
            })),
            &lookup,
        )
        .unwrap();
        let got: Vec<(String, u32)> = cfg
            .desired
            .iter()
            .map(|s| (s.key().to_string(), s.ttl))
            .collect();
        assert_eq!(
            got,
            [
                ("www.example.com. A".to_string(), 3600),
                ("mail.example.com. A".to_string(), 60),
                ("mail.example.com. AAAA".to_string(), 60),
            ]
        );

        let missing = resolve(
            &spec(serde_json::json!({
                "recordsFrom": [{"configMapRef": {"name": "part2", "key": "zone"}}],
            })),
            &lookup,
        )
        .unwrap_err();
        assert_eq!(missing.reason(), ConfigReason::ConfigMapNotFound);
        assert_eq!(missing.to_string(), "ConfigMap part2 has no key zone");
        assert!(!missing.is_connection_problem());
    }

    #[test]
    fn the_same_rrset_from_records_and_records_from_is_refused_naming_both_places() {
        let text = "; part 1\n$TTL 300\nftp IN A 192.0.2.21\n\n\nwww IN A 192.0.2.80\n";
        let lookup = Maps::default()
            .config_map("zone-part1", "zone", text)
            .config_map("zone-part2", "zone", "ftp 300 IN A 192.0.2.22\n");
        let err = resolve(
            &spec(serde_json::json!({
                "records": [
                    {"name": "a", "type": "A", "data": ["192.0.2.1"]},
                    {"name": "b", "type": "A", "data": ["192.0.2.2"]},
                    {"name": "c", "type": "A", "data": ["192.0.2.3"]},
                    {"name": "www", "type": "A", "data": ["192.0.2.80"]},
                ],
                "recordsFrom": [
                    {"configMapRef": {"name": "zone-part1", "key": "zone"}},
                    {"configMapRef": {"name": "zone-part2", "key": "zone"}},
                ],
            })),
            &lookup,
        )
        .unwrap_err();
        assert_eq!(err.reason(), ConfigReason::InvalidRecords);
        assert_eq!(
            err.to_string(),
            "2 conflicting RRset(s): \
             recordsFrom[0] (configmap zone-part1/zone line 6) www.example.com. A duplicates records[3]; \
             recordsFrom[1] (configmap zone-part2/zone line 1) ftp.example.com. A duplicates \
             recordsFrom[0] (configmap zone-part1/zone line 3)"
        );
    }

    #[test]
    fn many_conflicts_are_counted_and_the_first_ones_listed() {
        let text: String = (0..25)
            .map(|i| format!("h{i} 300 IN A 192.0.2.1\n"))
            .collect();
        let records: Vec<serde_json::Value> = (0..25)
            .map(|i| serde_json::json!({"name": format!("h{i}"), "type": "A", "data": ["192.0.2.1"]}))
            .collect();
        let err = resolve(
            &spec(serde_json::json!({
                "records": records,
                "recordsFrom": [{"configMapRef": {"name": "part1", "key": "zone"}}],
            })),
            &Maps::default().config_map("part1", "zone", &text),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("25 conflicting RRset(s): "),
            "{message}"
        );
        assert!(message.ends_with("; and 5 more"), "{message}");
        assert_eq!(message.matches(" duplicates ").count(), SHOWN_CONFLICTS);
        assert!(message.contains("recordsFrom[0] (configmap part1/zone line 20) h19.example.com. A duplicates records[19]"), "{message}");
    }

    #[test]
    fn a_cname_from_one_source_beside_data_from_another_is_refused() {
        let lookup = Maps::default().config_map(
            "part1",
            "zone",
            "$ORIGIN example.com.\nwww IN CNAME (\n  web.example.com. )\n",
        );
        let err = resolve(
            &spec(serde_json::json!({
                "records": [{"name": "www", "type": "TXT", "data": ["\"hello\""]}],
                "recordsFrom": [{"configMapRef": {"name": "part1", "key": "zone"}}],
            })),
            &lookup,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 conflicting RRset(s): recordsFrom[0] (configmap part1/zone line 3) \
             www.example.com. CNAME stands beside records[0] www.example.com. TXT; \
             a CNAME must stand alone"
        );
    }
}
