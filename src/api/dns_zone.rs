//! The `DnsZone` custom resource: one DNS zone on one backend server.

// kube-derive takes one `printcolumn(...)` per column, which this lint mistakes for repeats.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{ChangeStatus, ChangeType, ConfigMapKeyRef, Duration, RecordType, SecretRef};

/// RE2 pattern for an absolute, lower-case DNS name: labels of 1..63 characters, trailing dot.
pub const ZONE_NAME_PATTERN: &str = r"^([a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9_])?\.)+$";
/// RE2 pattern for an e-mail address (the SOA RNAME is derived from it).
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?$";
/// RE2 pattern for an ACL rule subject.
pub const SUBJECT_PATTERN: &str = r"^(user|group):.+$";
/// RE2 pattern for `host:port` (a DNS name, an IPv4 address, or a bracketed IPv6 address).
pub const HOST_PORT_PATTERN: &str =
    r"^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$";

/// A DNS zone managed on a backend server: the desired records, how to reach the server,
/// and how strictly to manage it. The operator reconciles it with RFC 2136 UPDATEs and
/// reports what it did in `status`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dns.zonekeeper.io",
    version = "v1alpha1",
    kind = "DnsZone",
    doc = "A DNS zone on a backend server, managed by zonekeeper.",
    plural = "dnszones",
    shortname = "dz",
    category = "dns",
    namespaced,
    status = "DnsZoneStatus",
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zoneName"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Serial", type_ = "integer", json_path = ".status.serial"),
    printcolumn(name = "Records", type_ = "integer", json_path = ".status.recordCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self.type == 'Secondary' || !has(self.masters) || size(self.masters) == 0").message("masters is only meaningful with type: Secondary").field_path(".masters"))]
#[x_kube(validation = Rule::new("self.type != 'Secondary' || (has(self.masters) && size(self.masters) > 0)").message("a Secondary zone needs at least one entry in masters").field_path(".masters"))]
#[x_kube(validation = Rule::new("self.type == 'Primary' || ((!has(self.records) || size(self.records) == 0) && (!has(self.recordsFrom) || size(self.recordsFrom) == 0))").message("records and recordsFrom are only meaningful with type: Primary").field_path(".records"))]
#[serde(rename_all = "camelCase")]
pub struct DnsZoneSpec {
    /// The zone's name: absolute (ending in a dot) and lower-case, e.g. `example.com.`.
    /// Immutable.
    #[schemars(length(min = 2, max = 254), regex(pattern = ZONE_NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("zoneName is immutable"))]
    pub zone_name: String,

    /// `Primary`: the operator writes the records. `Secondary`: the backend transfers the
    /// zone from `masters` and the operator only watches it. Immutable.
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("type is immutable"))]
    pub zone_type: ZoneType,

    /// Free text describing the zone, at most 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub description: Option<String>,

    /// Contact address of the zone; becomes the SOA RNAME (`first.last@example.com` →
    /// `first\.last.example.com.`), written with an RFC 2136 UPDATE of the SOA. When absent
    /// the RNAME is left as the server has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254), regex(pattern = EMAIL_PATTERN))]
    pub email: Option<String>,

    /// Default TTL in seconds for records that give none, and the TTL of the zone's SOA record
    /// (Primary zones; written with an RFC 2136 UPDATE of the SOA).
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub ttl: i64,

    /// Secondary zones only: the primaries (`host:port`) the backend transfers the zone from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = HOST_PORT_PATTERN)))]
    pub masters: Vec<String>,

    /// How to reach the DNS server that holds the zone (updates and SOA queries).
    pub backend: Connection,

    /// A separate connection for zone transfers; defaults to `backend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferConnection>,

    /// The RRsets this object manages (Primary zones only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordSet>,

    /// More records as zone-file text kept in ConfigMaps, for zones too big for one object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records_from: Vec<RecordsSource>,

    /// How strictly the zone is managed.
    #[serde(default)]
    pub management: Management,

    /// Scheduled drift checks and the limits on sync requests.
    #[serde(default)]
    pub sync: SyncSettings,

    /// Outgoing zone transfers to secondaries, served by the operator's transfer server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<OutgoingSpec>,

    /// Access rules for record changes by users outside `adminGroup`, enforced by the
    /// optional admission webhook (README "Who may change what").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,

    /// The Kubernetes group that administers the zone (VinylDNS `adminGroupId`): with the
    /// admission webhook, only its members may change anything outside `records`, sync the
    /// zone, or change RRsets the ACL does not grant them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub admin_group: Option<String>,

    /// VinylDNS shared zone: with the admission webhook, any user may add RRsets, and an
    /// RRset then belongs to its `ownerGroup`, whose members may change and delete it.
    #[serde(default)]
    pub shared: bool,

    /// `true` makes the zone inactive: nothing is applied and syncs are rejected.
    #[serde(default)]
    pub suspend: bool,

    /// What happens to the managed RRsets when this object is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// How many entries `status.history` keeps.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub history_limit: i32,
}

fn default_ttl() -> i64 {
    3600
}

fn default_history_limit() -> i32 {
    20
}

/// Whether the operator writes the zone or only watches a transferred copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ZoneType {
    #[default]
    Primary,
    Secondary,
}

/// What happens to the managed RRsets when the DnsZone is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Leave every record on the server.
    #[default]
    Retain,
    /// Delete the RRsets this object manages (through the deletion guard).
    DeleteRecords,
}

/// A connection to a DNS server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// `host:port` of the server; a DNS name is resolved each time it is used.
    #[schemars(regex(pattern = HOST_PORT_PATTERN))]
    pub server: String,
    /// Secret holding the TSIG key that signs every message; unsigned when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_key_secret_ref: Option<SecretRef>,
    /// How long to wait for one answer from the server.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The connection used for zone transfers and their bounds. The connection fields default
/// to the backend's; the bounds apply to every transfer of the zone (reconcile passes,
/// ZoneSyncs, drift checks, standalone `plan`/`apply`/`sync`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferConnection {
    /// `host:port` to transfer from; defaults to `backend.server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = HOST_PORT_PATTERN))]
    pub server: Option<String>,
    /// Secret holding the TSIG key for transfers; defaults to the backend's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_key_secret_ref: Option<SecretRef>,
    /// Longest one transfer may take before it ends with `TransferTimeout` (nothing of it
    /// kept). Default (also for `0`): `10m`, plus a minute per 100,000 records the zone held
    /// beyond a million.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
    /// Most records one transfer may carry before it ends with `TransferTooLarge`. Default
    /// 5,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_records: Option<i64>,
    /// Most bytes of DNS messages one transfer may carry before it ends with
    /// `TransferTooLarge`. Default 1073741824 (1 GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_bytes: Option<i64>,
}

/// One RRset: every record of one type at one name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordSet {
    /// Owner name: relative to the zone, `@` for the apex, or absolute inside the zone.
    #[schemars(length(min = 1, max = 254))]
    pub name: String,
    /// Record type.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// TTL in seconds; defaults to `spec.ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2147483647))]
    pub ttl: Option<i64>,
    /// The records' data in zone-file presentation format, one entry per record.
    #[schemars(length(min = 1))]
    pub data: Vec<String>,
    /// Shared zones: the group that owns this RRset; only its members and members of
    /// `spec.adminGroup` may change or delete it. Set by the admission webhook to the
    /// creator's group when absent. Not part of the DNS data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub owner_group: Option<String>,
}

/// Where more records come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordsSource {
    /// A ConfigMap key holding zone-file text (`$ORIGIN` is the zone, `$TTL` allowed).
    pub config_map_ref: ConfigMapKeyRef,
}

/// How strictly the zone is managed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Management {
    /// `true`: delete RRsets on the server that the spec does not list (apex SOA/NS excepted).
    #[serde(default)]
    pub prune: bool,
    /// What to do when a managed RRset differs on the server.
    #[serde(default)]
    pub drift_policy: DriftPolicy,
    /// Refuse a pass that would delete more than this.
    #[serde(default)]
    pub deletion_guard: DeletionGuard,
    /// Let one pass through the deletion guard; set deliberately.
    #[serde(default)]
    pub allow_mass_deletion: bool,
}

impl Default for Management {
    fn default() -> Self {
        Self {
            prune: false,
            drift_policy: DriftPolicy::Correct,
            deletion_guard: DeletionGuard::default(),
            allow_mass_deletion: false,
        }
    }
}

/// What to do when a managed RRset was changed on the server by someone else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DriftPolicy {
    /// Re-assert the spec's RRsets.
    #[default]
    Correct,
    /// Only report the drift in status.
    Report,
}

/// Limits on how much one pass may delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionGuard {
    /// Most resource records one pass may delete.
    #[serde(default = "default_max_deletes")]
    #[schemars(range(min = 0))]
    pub max_deletes: i64,
    /// Most resource records one pass may delete, as a percentage of the zone.
    #[serde(default = "default_max_delete_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub max_delete_percent: i32,
}

impl Default for DeletionGuard {
    fn default() -> Self {
        Self {
            max_deletes: default_max_deletes(),
            max_delete_percent: default_max_delete_percent(),
        }
    }
}

fn default_max_deletes() -> i64 {
    100
}

fn default_max_delete_percent() -> i32 {
    30
}

/// Scheduled drift checks and the limits on sync requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncSettings {
    /// How often to poll the SOA serial and sync when it moved; `0` turns it off.
    #[serde(default = "default_sync_interval")]
    pub interval: Duration,
    /// A ZoneSync is rejected (`SyncedRecently`) within this long of the last completed sync.
    #[serde(default = "default_min_interval")]
    pub min_interval: Duration,
    /// How many successful ZoneSync objects of this zone are kept.
    #[serde(default = "default_kept_syncs")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_history_limit: i32,
    /// How many failed or rejected ZoneSync objects of this zone are kept.
    #[serde(default = "default_kept_syncs")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_history_limit: i32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            interval: default_sync_interval(),
            min_interval: default_min_interval(),
            successful_history_limit: default_kept_syncs(),
            failed_history_limit: default_kept_syncs(),
        }
    }
}

fn default_sync_interval() -> Duration {
    Duration::from_secs(600)
}

fn default_min_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_kept_syncs() -> i32 {
    3
}

/// Outgoing zone transfers (Cloudflare secondary DNS "outgoing").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingSpec {
    /// Serve transfers and send NOTIFY; turning it off also clears the IXFR backlog.
    #[serde(default)]
    pub enabled: bool,
    /// The secondaries allowed to transfer the zone and notified on change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Peer>,
    /// Change this value (a timestamp, say) to NOTIFY every peer now; also clears the backlog.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub force_notify: String,
    /// How often the backend's SOA serial and every peer's are checked, besides NOTIFYs;
    /// values under 1s are taken as 1s.
    #[serde(default = "default_check_interval")]
    pub check_interval: Duration,
    /// How much history is kept for IXFR; a peer asking from a serial no longer kept gets
    /// the whole zone (AXFR, RFC 1995).
    #[serde(default)]
    pub ixfr_backlog: IxfrBacklog,
}

impl Default for OutgoingSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            peers: Vec::new(),
            force_notify: String::new(),
            check_interval: default_check_interval(),
            ixfr_backlog: IxfrBacklog::default(),
        }
    }
}

/// Bounds of the IXFR backlog: past either, the oldest differences are dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IxfrBacklog {
    /// Most differences (served versions) kept.
    #[serde(default = "default_backlog_versions")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_versions: i32,
    /// Most bytes of records (uncompressed wire size) kept over all differences; when set,
    /// `maxPercent` is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_bytes: Option<i64>,
    /// Without `maxBytes`: most bytes kept, as a percentage of the served zone's wire size,
    /// but never less than 64 KiB (so a small zone keeps its recent history).
    #[serde(default = "default_backlog_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub max_percent: i32,
}

impl Default for IxfrBacklog {
    fn default() -> Self {
        Self {
            max_versions: default_backlog_versions(),
            max_bytes: None,
            max_percent: default_backlog_percent(),
        }
    }
}

fn default_backlog_versions() -> i32 {
    50
}

fn default_backlog_percent() -> i32 {
    10
}

fn default_check_interval() -> Duration {
    Duration::from_secs(60)
}

/// RE2 pattern for a peer: an IP address, `IP:port` (`[IPv6]:port`), or a CIDR network.
pub const PEER_ADDRESS_PATTERN: &str = r"^([0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]{1,5}|/[0-9]{1,2})?|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?)$";

/// A secondary server that transfers the zone from us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    /// A name for the peer, unique in the list.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Where the peer transfers from: an IP address (NOTIFY and SOA checks go to port 53),
    /// `IP:port` (they go to that port; transfers may come from any port of that IP), or a
    /// CIDR network (any host of it may transfer; nothing is NOTIFYed or checked).
    #[schemars(regex(pattern = PEER_ADDRESS_PATTERN))]
    pub address: String,
    /// Secret holding the TSIG key the peer signs its transfer requests with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_key_secret_ref: Option<SecretRef>,
}

/// VinylDNS ACL rules (VinylDNS Update Zone).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Acl {
    /// The rules. Where several match one RRset, the most specific decides: rules naming
    /// the user, then the user's groups, then `group:system:authenticated`; then a
    /// `recordMask` before none; then fewer `recordTypes`; then the lesser access.
    #[serde(default)]
    pub rules: Vec<AclRule>,
}

/// One ACL rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    /// What the rule grants.
    pub access_level: AccessLevel,
    /// Who it applies to: `user:NAME` or `group:NAME` (Kubernetes user and group names).
    #[schemars(length(min = 1), inner(regex(pattern = SUBJECT_PATTERN)))]
    pub subjects: Vec<String>,
    /// A regular expression (Rust `regex` syntax) the whole record name relative to the
    /// zone must match (`@` for the apex); all names when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_mask: Option<String>,
    /// Record types the rule covers; all types when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_types: Vec<RecordType>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub description: Option<String>,
}

/// Access levels of ACL rules, as VinylDNS names them: `Write` adds and changes RRsets,
/// `Delete` also deletes them; `Read` and `NoAccess` allow no change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AccessLevel {
    NoAccess,
    Read,
    Write,
    Delete,
}

/// What the operator observed and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsZoneStatus {
    /// The zone's id: its `metadata.uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where the zone is in its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ZonePhase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The SOA serial last seen on the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<i64>,
    /// Primary zones: the contact address the backend's SOA RNAME stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Primary zones: the TTL of the backend's SOA record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// Bumped once per applied change.
    #[serde(default)]
    pub version: i64,
    /// Resource records in the backend zone at `serial`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_count: Option<i64>,
    /// RRsets this object manages on the backend.
    #[serde(
        rename = "managedRRsets",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub managed_rrsets: Option<i64>,
    /// When the zone was first applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// When a change was last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Time>,
    /// When the last sync completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_sync: Option<Time>,
    /// Secondary zones: when the backend's serial last moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferred_at: Option<Time>,
    /// Ready, BackendReachable, TransferAuthorized, Synced and Outgoing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Managed RRsets that differ on the server, when not (yet) corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// Outgoing transfer state, per zone and per peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<OutgoingStatus>,
    /// Recorded changes, newest first, at most `spec.historyLimit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// Where the zone is in its life (VinylDNS zone `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ZonePhase {
    Pending,
    Active,
    Syncing,
    Suspended,
    Error,
}

/// Managed RRsets that differ on the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// How many RRsets differ.
    pub rrsets: i64,
    /// A few of them, as `name type`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<String>,
}

/// Outgoing transfer state (Cloudflare secondary DNS, outgoing).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingStatus {
    /// Whether transfers are served.
    pub enabled: bool,
    /// The serial served to peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soa_serial: Option<i64>,
    /// When outgoing transfers were first configured for the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<Time>,
    /// When the backend and the peers were last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_time: Option<Time>,
    /// When any peer last transferred the zone from zonekeeper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transferred_time: Option<Time>,
    /// The last `forceNotify` value acted on, and when every peer was notified for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_notified: Option<ForceNotified>,
    /// Versions kept for IXFR (differences between consecutive served serials).
    #[serde(default)]
    pub ixfr_backlog: i64,
    /// Per-peer state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerStatus>,
}

/// A `forceNotify` value that was acted on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForceNotified {
    /// The `spec.outgoing.forceNotify` value.
    pub value: String,
    /// When every peer was notified and the backlog cleared for it.
    pub time: Time,
}

/// One peer's transfer state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// The peer's name from the spec.
    pub name: String,
    /// The serial the peer serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soa_serial: Option<i64>,
    /// When the peer's SOA was last queried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_time: Option<Time>,
    /// When the peer last transferred the zone from zonekeeper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transferred_time: Option<Time>,
    /// How that last transfer was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transfer_method: Option<OutgoingTransferMethod>,
    /// When the peer was last notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notified_time: Option<Time>,
    /// `InSync`, `Lagging`, `Unreachable` or `Refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<PeerState>,
    /// Why the peer is not in sync, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a peer compares with the served zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PeerState {
    /// The peer serves the served serial.
    InSync,
    /// The peer answers with an older serial.
    Lagging,
    /// The peer does not answer (SOA query or NOTIFY timed out, connection refused).
    Unreachable,
    /// The peer answers with an error (REFUSED, NOTAUTH, a TSIG error).
    Refused,
}

/// How a peer transferred the zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OutgoingTransferMethod {
    #[serde(rename = "AXFR")]
    Axfr,
    #[serde(rename = "IXFR")]
    Ixfr,
}

/// One recorded change to the zone (VinylDNS change).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The change's id (not the zone's).
    pub id: String,
    /// What kind of change.
    pub change_type: ChangeType,
    /// Whether it was applied.
    pub status: ChangeStatus,
    /// Who asked for it (see the README's "who made a change").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// When it was made.
    pub created: Time,
    /// The SOA serial before the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_before: Option<i64>,
    /// The SOA serial after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_after: Option<i64>,
    /// RRsets added.
    #[serde(default)]
    pub added: i64,
    /// RRsets replaced.
    #[serde(default)]
    pub updated: i64,
    /// RRsets deleted.
    #[serde(default)]
    pub deleted: i64,
    /// The first changes as zone-file lines with `+`/`-` in front.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<String>,
    /// The ZoneSync that made a `Sync` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_sync_ref: Option<String>,
    /// What happened, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
