//! Telling a reconcile with work to do from one woken by the zone's own status write.
//!
//! Every status write comes back through the DnsZone watch and wakes the zone again; that
//! reconcile used to run a whole pass (the Secrets read again, an SOA query) to find nothing.
//! A zone is settled after a pass that succeeded: while its object is still the version the
//! pass left, nothing it references was touched and its requeue is not due, a reconcile has
//! nothing to do.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use crate::api::DnsZone;

/// What a successful pass left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The object's resourceVersion after the pass (after its status write, if it wrote one):
    /// any later change of the object, spec, metadata or someone else's status, moves it.
    pub resource_version: String,
    /// The generation (spec) the pass worked from. A spec change that lands while the pass
    /// runs is folded into the version its status write returns, so the version alone would
    /// call the zone settled on a spec it never applied.
    pub generation: Option<i64>,
    /// When the pass asked to run again (the drift check, the idle requeue).
    pub due: Instant,
}

impl Settled {
    /// How long the zone has nothing to do, if it is settled on `zone` at `now`: the rest of
    /// the wait until its requeue is due.
    pub fn quiet_for(&self, zone: &DnsZone, now: Instant) -> Option<Duration> {
        let same = zone.metadata.resource_version.as_deref() == Some(&self.resource_version)
            && zone.metadata.generation == self.generation;
        let left = self
            .due
            .checked_duration_since(now)
            .filter(|d| !d.is_zero());
        left.filter(|_| same && zone.metadata.deletion_timestamp.is_none())
    }
}

/// The zones woken by something other than their own object since their last pass started:
/// a Secret or ConfigMap they name, a ZoneSync of theirs, the transfer server. Their next
/// reconcile runs a pass whatever their object says.
#[derive(Clone, Debug, Default)]
pub struct Touched(Arc<Mutex<HashSet<ObjectRef<DnsZone>>>>);

impl Touched {
    fn set(&self) -> MutexGuard<'_, HashSet<ObjectRef<DnsZone>>> {
        // Inserts and removes only: a panic elsewhere leaves the set consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the zones a watch maps an event to, and hands them on to the controller.
    pub fn mark(&self, zones: Vec<ObjectRef<DnsZone>>) -> Vec<ObjectRef<DnsZone>> {
        self.set().extend(zones.iter().cloned());
        zones
    }

    /// Marks one zone.
    pub fn mark_one(&self, zone: ObjectRef<DnsZone>) -> ObjectRef<DnsZone> {
        self.set().insert(zone.clone());
        zone
    }

    /// Whether the zone was touched, clearing the mark: called as a reconcile starts, so a
    /// touch during its pass is seen by the reconcile that follows it.
    pub fn take(&self, zone: &ObjectRef<DnsZone>) -> bool {
        self.set().remove(zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(rv: &str, deleting: bool) -> DnsZone {
        zone_at(rv, 3, deleting)
    }

    fn zone_at(rv: &str, generation: i64, deleting: bool) -> DnsZone {
        let mut meta = serde_json::json!({"name": "z", "namespace": "ns", "resourceVersion": rv,
                                          "generation": generation});
        if deleting {
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone", "metadata": meta,
            "spec": {"zoneName": "z.test.", "type": "Primary",
                     "backend": {"server": "127.0.0.1:53"}},
        }))
        .unwrap()
    }

    #[test]
    fn settled_only_on_the_version_it_left_and_until_it_is_due() {
        let now = Instant::now();
        let settled = Settled {
            resource_version: "7".into(),
            generation: Some(3),
            due: now + Duration::from_secs(600),
        };
        // A spec change that landed during the pass: its status write returned version 7,
        // which already holds generation 4 — not applied, so not settled.
        assert_eq!(settled.quiet_for(&zone_at("7", 4, false), now), None);
        assert_eq!(
            settled.quiet_for(&zone("7", false), now + Duration::from_secs(100)),
            Some(Duration::from_secs(500))
        );
        // Someone changed the object, or it is being deleted, or the requeue is due: a pass.
        assert_eq!(settled.quiet_for(&zone("8", false), now), None);
        assert_eq!(settled.quiet_for(&zone("7", true), now), None);
        assert_eq!(
            settled.quiet_for(&zone("7", false), now + Duration::from_secs(600)),
            None
        );
    }

    #[test]
    fn a_touch_is_seen_once() {
        let touched = Touched::default();
        let z = ObjectRef::<DnsZone>::new("z").within("ns");
        let other = ObjectRef::<DnsZone>::new("other").within("ns");
        assert_eq!(touched.mark(vec![z.clone()]), vec![z.clone()]);
        assert!(!touched.take(&other));
        assert!(touched.take(&z));
        assert!(!touched.take(&z));
        touched.mark_one(other.clone());
        assert!(touched.take(&other));
    }
}
