//! Turning a DnsZone spec plus the Secrets and ConfigMaps it names into a resolved, typed
//! configuration. Pure: the caller hands in lookups, so the operator (API reads) and the
//! standalone mode (manifest files) resolve identically.

use std::time::Duration;

use hickory_proto::rr::Name;

use crate::api::DnsZoneSpec;
use crate::api::dns_zone::{DriftPolicy, ZoneType};
use crate::dns::diff::Guard;
use crate::dns::model::{self, RRset};
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
}

/// Everything one reconcile pass needs, resolved and validated.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    pub origin: Name,
    pub zone_type: ZoneType,
    pub backend: Endpoint,
    pub transfer: Endpoint,
    /// Desired RRsets from `records` and `recordsFrom`, canonical.
    pub desired: Vec<RRset>,
    pub prune: bool,
    pub drift_policy: DriftPolicy,
    pub guard: Guard,
    pub allow_mass_deletion: bool,
    /// Secondary zones: the primaries as written.
    pub masters: Vec<String>,
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
}

impl ConfigError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ConfigError::SecretNotFound { .. } => "SecretNotFound",
            ConfigError::InvalidKey { .. } => "InvalidKey",
            ConfigError::ConfigMapNotFound { .. } => "ConfigMapNotFound",
            ConfigError::InvalidZoneName(..) => "InvalidZoneName",
            ConfigError::InvalidRecords(_) | ConfigError::InvalidZoneText { .. } => {
                "InvalidRecords"
            }
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

/// Resolves a spec. Record errors are all collected, so a user sees every bad record at once.
pub fn resolve(spec: &DnsZoneSpec, lookup: &dyn Lookup) -> Result<ZoneConfig, ConfigError> {
    let origin = Name::from_ascii(&spec.zone_name)
        .map_err(|e| ConfigError::InvalidZoneName(spec.zone_name.clone(), e.to_string()))?;
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
            }
        }
    };
    let default_ttl = u32::try_from(spec.ttl).unwrap_or(3600);
    let mut desired = validation::parse_record_sets(&origin, default_ttl, &spec.records)
        .map_err(ConfigError::InvalidRecords)?;
    for source in &spec.records_from {
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
        desired.extend(more);
    }
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
    })
}
