//! Types shared by both custom resources.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// API group of both kinds.
pub const GROUP: &str = "dns.zonekeeper.io";
/// API version of both kinds.
pub const VERSION: &str = "v1alpha1";

/// A duration written the way Kubernetes users write them: `30s`, `10m`, `1h30m`, `500ms`, or `0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

/// The schema pattern for [`Duration`]; RE2-compatible, so a cluster enforces it too.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(ms|s|m|h))+)$";

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a duration like 30s, 10m or 1h30m")]
pub struct DurationParseError(pub String);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl FromStr for Duration {
    type Err = DurationParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationParseError(s.to_string());
        if s == "0" {
            return Ok(Self::default());
        }
        if s.is_empty() {
            return Err(err());
        }
        let mut total = std::time::Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err());
            }
            let value: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let (unit, len) = if rest.starts_with("ms") {
                (std::time::Duration::from_millis(1), 2)
            } else if rest.starts_with('s') {
                (std::time::Duration::from_secs(1), 1)
            } else if rest.starts_with('m') {
                (std::time::Duration::from_secs(60), 1)
            } else if rest.starts_with('h') {
                (std::time::Duration::from_secs(3600), 1)
            } else {
                return Err(err());
            };
            rest = &rest[len..];
            let part = u32::try_from(value)
                .ok()
                .and_then(|v| unit.checked_mul(v))
                .ok_or_else(err)?;
            total = total.checked_add(part).ok_or_else(err)?;
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0");
        }
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let secs = ms / 1000;
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// Record types users may write in `spec.records`. SOA is managed by the server, never by users.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[allow(clippy::upper_case_acronyms)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
    MX,
    TXT,
    SRV,
    CAA,
    NS,
    PTR,
    DS,
    TLSA,
    SSHFP,
    SVCB,
    HTTPS,
    NAPTR,
}

impl RecordType {
    /// Every supported type, in the order of the schema's enum.
    pub const ALL: [RecordType; 15] = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::MX,
        RecordType::TXT,
        RecordType::SRV,
        RecordType::CAA,
        RecordType::NS,
        RecordType::PTR,
        RecordType::DS,
        RecordType::TLSA,
        RecordType::SSHFP,
        RecordType::SVCB,
        RecordType::HTTPS,
        RecordType::NAPTR,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
            RecordType::CNAME => "CNAME",
            RecordType::MX => "MX",
            RecordType::TXT => "TXT",
            RecordType::SRV => "SRV",
            RecordType::CAA => "CAA",
            RecordType::NS => "NS",
            RecordType::PTR => "PTR",
            RecordType::DS => "DS",
            RecordType::TLSA => "TLSA",
            RecordType::SSHFP => "SSHFP",
            RecordType::SVCB => "SVCB",
            RecordType::HTTPS => "HTTPS",
            RecordType::NAPTR => "NAPTR",
        }
    }
}

/// The wire type of an API record type. Lives here so that `dns` needs nothing from `api`.
impl From<RecordType> for hickory_proto::rr::RecordType {
    fn from(t: RecordType) -> Self {
        use hickory_proto::rr::RecordType as Wire;
        match t {
            RecordType::A => Wire::A,
            RecordType::AAAA => Wire::AAAA,
            RecordType::CNAME => Wire::CNAME,
            RecordType::MX => Wire::MX,
            RecordType::TXT => Wire::TXT,
            RecordType::SRV => Wire::SRV,
            RecordType::CAA => Wire::CAA,
            RecordType::NS => Wire::NS,
            RecordType::PTR => Wire::PTR,
            RecordType::DS => Wire::DS,
            RecordType::TLSA => Wire::TLSA,
            RecordType::SSHFP => Wire::SSHFP,
            RecordType::SVCB => Wire::SVCB,
            RecordType::HTTPS => Wire::HTTPS,
            RecordType::NAPTR => Wire::NAPTR,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference to a Secret in the object's namespace holding a TSIG key under the keys
/// `name` (the key name), `algorithm` (e.g. `hmac-sha256`) and `secret` (base64).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A reference to a key of a ConfigMap in the object's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the ConfigMap's `data` whose value is zone-file text.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// What a recorded change was (VinylDNS `changeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ChangeType {
    Create,
    Update,
    Sync,
    Delete,
}

/// The state of one recorded change (VinylDNS change `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ChangeStatus {
    Pending,
    Complete,
    Failed,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_api_type_is_a_distinct_supported_wire_type() {
        let wire: std::collections::BTreeSet<hickory_proto::rr::RecordType> =
            RecordType::ALL.iter().map(|t| (*t).into()).collect();
        let supported: std::collections::BTreeSet<_> =
            crate::dns::model::SUPPORTED_TYPES.into_iter().collect();
        assert_eq!(wire, supported);
        assert_eq!(wire.len(), RecordType::ALL.len());
    }

    use super::*;

    #[test]
    fn durations_parse_and_print() {
        for (text, secs_ms) in [
            ("0", 0),
            ("30s", 30_000),
            ("10m", 600_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1h0m5s", 3_605_000),
        ] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.0.as_millis(), secs_ms, "{text}");
            let again: Duration = d.to_string().parse().unwrap();
            assert_eq!(again, d, "{text} round-trips through {d}");
        }
    }

    #[test]
    fn bad_durations_are_refused() {
        for text in ["", "10", "s", "10x", "-5s", "1.5h", "99999999999999999999s"] {
            assert!(
                text.parse::<Duration>().is_err(),
                "{text:?} must be refused"
            );
        }
    }

    #[test]
    fn duration_pattern_agrees_with_parser() {
        let re = regex::Regex::new(DURATION_PATTERN).unwrap();
        for text in ["0", "30s", "10m", "1h30m", "500ms", "", "10", "1.5h", "10x"] {
            assert_eq!(
                re.is_match(text),
                text.parse::<Duration>().is_ok(),
                "{text:?}"
            );
        }
    }
}
