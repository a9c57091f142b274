//! The `action` of the Events zonekeeper publishes, and their publishing for DnsZones.
//!
//! kube-runtime's `Recorder` folds a repeated event into a series keyed by type, reason,
//! action and object, but not by the note: a second "Applied" event with another message would
//! only bump the first one's count and keep its stale message. The action therefore carries a
//! short digest of the note, so each distinct message is its own event while an exact repeat
//! (the same failure again) is still counted on one.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// `action` followed by a digest of `note`, e.g. `Reconcile-1a2b3c4d`.
pub fn action_for(action: &str, note: &str) -> String {
    let mut hasher = DefaultHasher::new();
    note.hash(&mut hasher);
    // 32 bits keep the action short; a collision only merges two events' counts.
    format!("{action}-{:08x}", hasher.finish() as u32)
}

/// How long an event may be counted again instead of created anew (kube-runtime's
/// `Recorder` keeps its cache as long).
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// An event published for a zone, as much as a repeat of it needs.
#[derive(Debug)]
struct Sent {
    type_: EventType,
    action: String,
    reason: String,
    /// The object version it regarded: kube-runtime's `Recorder` compares the whole reference,
    /// so a repeat about a newer version of the object is a new event, as here.
    regarding: ObjectReference,
    name: String,
    note: Option<String>,
    event_time: Timestamp,
    /// `None` until it is repeated.
    series: Option<(i32, Timestamp)>,
}

impl Sent {
    fn last_seen(&self) -> Timestamp {
        self.series.map_or(self.event_time, |(_, t)| t)
    }

    fn repeats(&self, ev: &Event, regarding: &ObjectReference) -> bool {
        self.type_ == ev.type_
            && self.action == ev.action
            && self.reason == ev.reason
            && ev.secondary.is_none()
            && self.regarding == *regarding
    }
}

/// Publishes the DnsZones' Events as kube-runtime's `Recorder` does (the same objects, an
/// exact repeat within six minutes counted on the first as a series), keeping per zone only
/// what a repeat needs. A `Recorder` per zone held a hash table of whole Event objects, about
/// 6 KB per zone for its two events, more than the zone itself; one shared by every zone
/// scanned all zones' events on each publish.
pub struct ZoneEvents {
    client: kube::Client,
    reporter: Reporter,
    sent: Mutex<HashMap<String, Vec<Sent>>>,
}

impl ZoneEvents {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            sent: Mutex::default(),
        }
    }

    fn sent(&self) -> MutexGuard<'_, HashMap<String, Vec<Sent>>> {
        // Whole-entry inserts and removes: a panic elsewhere leaves the map consistent.
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `ev` about the zone `key` (`namespace/name`), whose reference is `regarding`.
    pub async fn publish(
        &self,
        key: &str,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let repeat = {
            let mut sent = self.sent();
            let list = sent.entry(key.to_string()).or_default();
            list.retain(|s| s.last_seen() + SERIES_TTL > now);
            list.iter()
                .find(|s| s.repeats(ev, regarding))
                .map(|s| (s.name.clone(), s.note.clone(), s.event_time, s.series))
        };
        let ns = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), &ns);
        match repeat {
            Some((name, note, event_time, series)) => {
                let count = series.map_or(2, |(count, _)| count.saturating_add(1));
                let mut event = self.event(ev, regarding, name.clone(), event_time);
                event.note = note;
                event.series = Some(EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                });
                events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&event))
                    .await?;
                if let Some(s) = self
                    .sent()
                    .get_mut(key)
                    .and_then(|list| list.iter_mut().find(|s| s.name == name))
                {
                    s.series = Some((count, now));
                }
            }
            None => {
                let name = format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(&self.reporter.controller),
                    now.as_nanosecond()
                );
                let event = self.event(ev, regarding, name.clone(), now);
                events.create(&PostParams::default(), &event).await?;
                if ev.secondary.is_none() {
                    self.sent().entry(key.to_string()).or_default().push(Sent {
                        type_: ev.type_,
                        action: ev.action.clone(),
                        reason: ev.reason.clone(),
                        regarding: regarding.clone(),
                        name,
                        note: ev.note.clone(),
                        event_time: now,
                        series: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// The Event object kube-runtime's `Recorder` would send.
    fn event(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
        name: String,
        event_time: Timestamp,
    ) -> K8sEvent {
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(event_time)),
            regarding: Some(regarding.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(name),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            related: ev.secondary.clone(),
            ..K8sEvent::default()
        }
    }

    /// Forgets a zone's events (the zone is gone).
    pub fn forget(&self, key: &str) {
        self.sent().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_notes_get_distinct_actions_and_repeats_the_same() {
        let a = action_for(
            "Reconcile",
            "applied 19 RRset change(s) in 1 UPDATE message(s)",
        );
        let b = action_for(
            "Reconcile",
            "applied 3 RRset change(s) in 1 UPDATE message(s)",
        );
        assert_ne!(a, b);
        assert_eq!(
            a,
            action_for(
                "Reconcile",
                "applied 19 RRset change(s) in 1 UPDATE message(s)"
            )
        );
        assert!(a.starts_with("Reconcile-") && a.len() <= 128, "{a}");
    }
}
