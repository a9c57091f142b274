//! Pure status bookkeeping shared by the controllers and the standalone mode: conditions whose
//! `lastTransitionTime` only moves on a real transition, the capped change history, and who made
//! a change (`userId`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, ManagedFieldsEntry, ObjectMeta, Time,
};
use k8s_openapi::jiff::Timestamp;

use crate::api::dns_zone::HistoryEntry;
use crate::dns::diff::cap_line;

/// The field manager zonekeeper writes under. Defined here, not beside the write, because
/// [`requested_by`] must skip zonekeeper's own `managedFields` entries.
pub const FIELD_MANAGER: &str = "zonekeeper";

/// The annotation the optional mutating webhook stamps with the requesting user.
pub const REQUESTED_BY_ANNOTATION: &str = "dns.zonekeeper.io/requested-by";

/// Condition types of a DnsZone.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const BACKEND_REACHABLE: &str = "BackendReachable";
    pub const TRANSFER_AUTHORIZED: &str = "TransferAuthorized";
    pub const SYNCED: &str = "Synced";
}

/// The current time as a Kubernetes timestamp, truncated to seconds as the API server stores it.
pub fn now() -> Time {
    let ts = Timestamp::now();
    Time(Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// A condition as the reconcile computed it, before it is merged into the stored list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
}

/// Sets one condition. `lastTransitionTime` moves only when the status flips; reason, message
/// and observedGeneration are refreshed in place. Returns whether anything changed, so an
/// unchanged zone writes no status.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    update: ConditionUpdate<'_>,
    generation: Option<i64>,
    now: &Time,
) -> bool {
    let mut update = update;
    update.message = cap_line(&update.message, CONDITION_MESSAGE_MAX);
    let status = if update.status { "True" } else { "False" }.to_string();
    match conditions.iter_mut().find(|c| c.type_ == update.type_) {
        Some(existing) => {
            let mut changed = false;
            if existing.status != status {
                existing.status = status;
                existing.last_transition_time = now.clone();
                changed = true;
            }
            if existing.reason != update.reason {
                existing.reason = update.reason.to_string();
                changed = true;
            }
            if existing.message != update.message {
                existing.message = update.message;
                changed = true;
            }
            if existing.observed_generation != generation {
                existing.observed_generation = generation;
                changed = true;
            }
            changed
        }
        None => {
            conditions.push(Condition {
                type_: update.type_.to_string(),
                status,
                reason: update.reason.to_string(),
                message: update.message,
                observed_generation: generation,
                last_transition_time: now.clone(),
            });
            true
        }
    }
}

/// The stored condition of a type, if any.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether a condition of that type is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| c.status == "True")
}

/// The longest condition message: errors quote servers and names.
pub const CONDITION_MESSAGE_MAX: usize = 1024;

/// The bytes the history may take in a status, whatever `historyLimit` says: the whole
/// status must stay under 256 KiB.
pub const HISTORY_BYTES_MAX: usize = 160 * 1024;

/// An upper estimate of an entry's bytes in JSON (fields other than the strings are small).
fn entry_bytes(entry: &HistoryEntry) -> usize {
    const FIXED: usize = 512;
    let quoted = |s: &str| s.len() + 8;
    FIXED
        + entry.sample.iter().map(|l| quoted(l)).sum::<usize>()
        + entry.message.as_deref().map_or(0, quoted)
        + entry.user_id.as_deref().map_or(0, quoted)
        + entry.zone_sync_ref.as_deref().map_or(0, quoted)
}

/// Puts `entry` first and drops the oldest entries beyond `limit` or beyond
/// [`HISTORY_BYTES_MAX`] (at least one is kept).
pub fn push_history(history: &mut Vec<HistoryEntry>, entry: HistoryEntry, limit: i32) {
    history.insert(0, entry);
    let limit = usize::try_from(limit.max(1)).unwrap_or(1);
    history.truncate(limit);
    let mut bytes = 0;
    let keep = history
        .iter()
        .take_while(|e| {
            bytes += entry_bytes(e);
            bytes <= HISTORY_BYTES_MAX
        })
        .count();
    history.truncate(keep.max(1));
}

/// Who made the last change to an object: the webhook's annotation when present, otherwise
/// the field manager of the newest `managedFields` entry that owns spec fields and is not
/// zonekeeper itself. Kubernetes does not tell a controller the requesting user, so this is the best
/// honest answer without the webhook.
pub fn requested_by(meta: &ObjectMeta) -> Option<String> {
    if let Some(user) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUESTED_BY_ANNOTATION))
        .filter(|u| !u.is_empty())
    {
        return Some(user.clone());
    }
    last_spec_manager(meta).and_then(|m| m.manager.clone())
}

/// The newest `managedFields` entry of a manager of spec fields other than zonekeeper.
fn last_spec_manager(meta: &ObjectMeta) -> Option<&ManagedFieldsEntry> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref().unwrap_or("") != "status")
        .filter(|m| m.manager.as_deref().is_some_and(|n| n != FIELD_MANAGER))
        // Only a manager of spec fields made the change; finalizer and label edits do not count.
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_none_or(|f| f.0.get("f:spec").is_some())
        })
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
}

/// Drops what a controller's cache never reads: of `managedFields` only the entry
/// [`requested_by`] answers from is kept (its manager and time, without its field set), and
/// kubectl's copy of the last applied manifest goes. Both are a few KB per object, more than
/// the rest of a small DnsZone, kept for every zone in the watch cache.
pub fn slim_metadata(meta: &mut ObjectMeta) {
    let kept = last_spec_manager(meta).map(|m| ManagedFieldsEntry {
        manager: m.manager.clone(),
        time: m.time.clone(),
        ..ManagedFieldsEntry::default()
    });
    meta.managed_fields = kept.map(|m| vec![m]);
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// Where `kubectl apply` (client side) keeps the whole manifest it applied last.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::shared::{ChangeStatus, ChangeType};

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn ready(status: bool, reason: &str) -> ConditionUpdate<'_> {
        ConditionUpdate {
            type_: condition::READY,
            status,
            reason,
            message: format!("{reason} happened"),
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let mut conds = Vec::new();
        assert!(set_condition(
            &mut conds,
            ready(false, "Pending"),
            Some(1),
            &at(100)
        ));
        assert_eq!(conds[0].last_transition_time, at(100));

        // Same status, new reason: refreshed, but the transition time stays.
        assert!(set_condition(
            &mut conds,
            ready(false, "ConnectionFailed"),
            Some(1),
            &at(200)
        ));
        assert_eq!(conds[0].reason, "ConnectionFailed");
        assert_eq!(conds[0].last_transition_time, at(100));

        // Identical: nothing changes, so nothing needs writing.
        assert!(!set_condition(
            &mut conds,
            ready(false, "ConnectionFailed"),
            Some(1),
            &at(300)
        ));

        // A flip moves it.
        assert!(set_condition(
            &mut conds,
            ready(true, "Applied"),
            Some(2),
            &at(400)
        ));
        assert_eq!(conds[0].status, "True");
        assert_eq!(conds[0].last_transition_time, at(400));
        assert_eq!(conds[0].observed_generation, Some(2));
        assert_eq!(conds.len(), 1);
        assert!(is_true(&conds, condition::READY));
        assert!(!is_true(&conds, condition::SYNCED));
    }

    fn entry(n: i64) -> HistoryEntry {
        HistoryEntry {
            id: format!("c{n}"),
            change_type: ChangeType::Update,
            status: ChangeStatus::Complete,
            user_id: None,
            created: at(n),
            serial_before: None,
            serial_after: None,
            added: n,
            updated: 0,
            deleted: 0,
            sample: vec![],
            zone_sync_ref: None,
            message: None,
        }
    }

    #[test]
    fn history_is_newest_first_and_capped() {
        let mut history = Vec::new();
        for n in 0..25 {
            push_history(&mut history, entry(n), 20);
        }
        assert_eq!(history.len(), 20);
        assert_eq!(history[0].id, "c24");
        assert_eq!(history[19].id, "c5");
        push_history(&mut history, entry(99), 0);
        assert_eq!(history.len(), 1);
    }

    fn managed(manager: &str, second: i64, subresource: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_string()),
            operation: Some("Update".to_string()),
            time: Some(at(second)),
            subresource: subresource.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn requested_by_prefers_the_annotation_then_the_newest_manager() {
        let mut meta = ObjectMeta {
            managed_fields: Some(vec![
                managed("kubectl-client-side-apply", 10, None),
                managed("argocd-controller", 20, None),
                managed(FIELD_MANAGER, 30, Some("status")),
                managed(FIELD_MANAGER, 40, None),
                ManagedFieldsEntry {
                    fields_v1: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
                        serde_json::json!({"f:metadata": {"f:finalizers": {}}}),
                    )),
                    ..managed("finalizer-adder", 50, None)
                },
            ]),
            ..Default::default()
        };
        assert_eq!(requested_by(&meta).as_deref(), Some("argocd-controller"));

        meta.annotations = Some(BTreeMap::from([(
            REQUESTED_BY_ANNOTATION.to_string(),
            "alice@example.com".to_string(),
        )]));
        assert_eq!(requested_by(&meta).as_deref(), Some("alice@example.com"));

        assert_eq!(requested_by(&ObjectMeta::default()), None);
    }

    #[test]
    fn slim_metadata_keeps_who_requested_the_change_and_nothing_else() {
        let mut meta = ObjectMeta {
            managed_fields: Some(vec![
                ManagedFieldsEntry {
                    fields_v1: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
                        serde_json::json!({"f:spec": {"f:records": {}}}),
                    )),
                    ..managed("argocd-controller", 20, None)
                },
                managed("kubectl-client-side-apply", 10, None),
                managed(FIELD_MANAGER, 30, Some("status")),
            ]),
            annotations: Some(BTreeMap::from([(
                LAST_APPLIED_ANNOTATION.to_string(),
                "{\"spec\": {}}".to_string(),
            )])),
            ..Default::default()
        };
        slim_metadata(&mut meta);
        assert_eq!(requested_by(&meta).as_deref(), Some("argocd-controller"));
        let kept = meta.managed_fields.as_deref().unwrap_or_default();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].fields_v1, None);
        assert_eq!(meta.annotations, None);

        // The webhook's annotation stays: it is the first answer of requested_by.
        meta.annotations = Some(BTreeMap::from([(
            REQUESTED_BY_ANNOTATION.to_string(),
            "alice@example.com".to_string(),
        )]));
        slim_metadata(&mut meta);
        assert_eq!(requested_by(&meta).as_deref(), Some("alice@example.com"));

        let mut only_ours = ObjectMeta {
            managed_fields: Some(vec![managed(FIELD_MANAGER, 30, Some("status"))]),
            ..Default::default()
        };
        slim_metadata(&mut only_ours);
        assert_eq!(only_ours.managed_fields, None);
        assert_eq!(requested_by(&only_ours), None);
    }
}
