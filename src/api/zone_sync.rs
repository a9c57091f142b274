//! The `ZoneSync` custom resource: one request to sync a zone from its backend (VinylDNS Sync Zone).

// kube-derive takes one `printcolumn(...)` per column, which this lint mistakes for repeats.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dns_zone::ZonePhase;
use super::shared::ChangeType;

/// One sync request: transfer the zone from its backend, make the stored snapshot exactly
/// what the backend serves, and record the difference. Like a Job, its spec is immutable.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dns.zonekeeper.io",
    version = "v1alpha1",
    kind = "ZoneSync",
    doc = "One request to sync a zone from its backend DNS server.",
    plural = "zonesyncs",
    shortname = "zs",
    category = "dns",
    namespaced,
    status = "ZoneSyncStatus",
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zoneRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Added", type_ = "integer", json_path = ".status.summary.added"),
    printcolumn(
        name = "Updated",
        type_ = "integer",
        json_path = ".status.summary.updated"
    ),
    printcolumn(
        name = "Deleted",
        type_ = "integer",
        json_path = ".status.summary.deleted"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("ZoneSync spec is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct ZoneSyncSpec {
    /// The DnsZone to sync, in the same namespace.
    pub zone_ref: ZoneRef,
    /// `Auto`: IXFR from the last stored serial, AXFR when that is not possible. `Axfr`: always
    /// a full transfer.
    #[serde(default)]
    pub method: SyncMethod,
    /// Compute and report the difference, store nothing and record no history.
    #[serde(default)]
    pub dry_run: bool,
    /// Accept this one sync although it looks suspect (the zone shrank to its SOA/NS, or
    /// lost more than the DnsZone's `management.deletionGuard` allows), which otherwise fails
    /// with `SuspectTransfer` and keeps the stored snapshot.
    #[serde(default)]
    pub allow_mass_deletion: bool,
}

/// A reference to a DnsZone in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneRef {
    /// The DnsZone's `metadata.name`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// How the zone is transferred.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SyncMethod {
    #[default]
    Auto,
    Axfr,
}

/// What the sync did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneSyncStatus {
    /// The change id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `Sync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_type: Option<ChangeType>,
    /// Where the request is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SyncPhase>,
    /// Why it is waiting, rejected or failed, in CamelCase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A sentence saying what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who asked for the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// When the request was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Time>,
    /// When the transfer started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the sync ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// The zone as the sync saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<SyncedZone>,
    /// Figures of the transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferFigures>,
    /// Counts of the change, in RRsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SyncSummary>,
    /// The first 100 changed resource records as zone-file lines with `+`/`-` in front: one
    /// line per record, so these count records while `summary` counts RRsets (a replaced
    /// RRset is its removed and its added records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// When there are more than 100 changes: the ConfigMap holding the complete list, gzipped
    /// and cut into pieces under 1 MiB (`chunks` says how many; the others are `<name>-1`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_changes_ref: Option<String>,
    /// Standard conditions (`Complete`, `Failed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Where a sync request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SyncPhase {
    Pending,
    Syncing,
    Complete,
    Failed,
    Rejected,
}

/// The zone as the sync saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncedZone {
    /// The zone's name.
    pub name: String,
    /// The zone's phase during the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ZonePhase>,
    /// The serial of the stored snapshot before the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_before: Option<i64>,
    /// The serial the backend served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_after: Option<i64>,
}

/// Figures of one transfer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferFigures {
    /// `IXFR` or `AXFR`: the method that ran.
    pub method: String,
    /// DNS messages received.
    pub messages: i64,
    /// Bytes received.
    pub bytes: i64,
    /// How long the transfer took.
    pub duration_ms: i64,
}

/// Counts of one sync's change, in RRsets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    /// RRsets the backend has that the previous snapshot did not.
    pub added: i64,
    /// RRsets whose records or TTL changed.
    pub updated: i64,
    /// RRsets the backend no longer has.
    pub deleted: i64,
    /// RRsets that did not change.
    pub unchanged: i64,
    /// RRsets in the zone after the sync.
    pub total: i64,
}
