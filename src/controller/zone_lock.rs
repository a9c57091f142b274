//! The one piece of in-process state both controllers share: a per-zone lock (a DnsZone pass
//! and a ZoneSync never touch the same zone's backend at once), the claim a running sync
//! holds on its zone (at most one sync per zone; the DnsZone controller leaves a claimed zone
//! alone instead of queueing behind the lock), and, for a zone never synced, the zone as the
//! DnsZone controller last saw it: a first sync reports what changed since then, not the
//! whole zone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::dns::model::Zone;

/// Locks and sync claims, keyed by `namespace/name` of the DnsZone.
#[derive(Default)]
pub struct ZoneLocks {
    locks: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
    syncing: Arc<StdMutex<HashSet<String>>>,
    baselines: StdMutex<HashMap<String, Arc<Zone>>>,
    /// The serial of the baseline this process last found stored (or stored itself), per
    /// zone: an unchanged pass then writes nothing and reads nothing.
    persisted: StdMutex<HashMap<String, u32>>,
}

impl ZoneLocks {
    /// Records (or, `None`, forgets) the zone as the DnsZone controller last saw it while it
    /// was never synced. Set under the zone's lock, so a sync waiting for that lock sees it.
    pub fn set_baseline(&self, key: &str, zone: Option<Arc<Zone>>) {
        let mut map = self.baselines.lock().unwrap_or_else(|p| p.into_inner());
        match zone {
            Some(z) => map.insert(key.to_string(), z),
            None => map.remove(key),
        };
    }

    /// The zone a first sync starts from, when this process saw it.
    pub fn baseline(&self, key: &str) -> Option<Arc<Zone>> {
        self.baselines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// The serial of the baseline known to be stored for the zone.
    pub fn persisted_baseline(&self, key: &str) -> Option<u32> {
        self.persisted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    /// Notes that the zone's stored baseline has `serial`.
    pub fn set_persisted_baseline(&self, key: &str, serial: u32) {
        self.persisted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), serial);
    }

    /// Waits for the zone's lock; a pass in flight ends first.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Marks a sync of the zone as running; `None` when one already is. The claim ends when
    /// the returned guard drops (also when the sync's future is dropped mid-way).
    pub fn claim_sync(&self, key: &str) -> Option<SyncClaim> {
        let mut set = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(key.to_string()).then(|| SyncClaim {
            syncing: self.syncing.clone(),
            key: key.to_string(),
        })
    }

    /// Whether a sync of the zone runs in this process, which makes the zone read-only.
    pub fn is_syncing(&self, key: &str) -> bool {
        self.syncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// Forgets a deleted zone's lock and baseline.
    pub fn forget(&self, key: &str) {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.set_baseline(key, None);
        self.persisted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// A running sync of one zone; dropping it ends the claim.
pub struct SyncClaim {
    syncing: Arc<StdMutex<HashSet<String>>>,
    key: String,
}

impl Drop for SyncClaim {
    fn drop(&mut self) {
        self.syncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_is_kept_per_zone_until_cleared_or_forgotten() {
        let locks = ZoneLocks::default();
        let zone = Arc::new(Zone::new(
            hickory_proto::rr::Name::from_ascii("a.").unwrap(),
        ));
        locks.set_baseline("ns/a", Some(zone.clone()));
        assert!(
            locks
                .baseline("ns/a")
                .is_some_and(|z| Arc::ptr_eq(&z, &zone))
        );
        assert!(locks.baseline("ns/b").is_none());
        locks.set_baseline("ns/a", None);
        assert!(locks.baseline("ns/a").is_none());
        locks.set_baseline("ns/a", Some(zone));
        locks.forget("ns/a");
        assert!(locks.baseline("ns/a").is_none());
    }

    #[test]
    fn one_claim_per_zone_until_it_drops() {
        let locks = ZoneLocks::default();
        let claim = locks.claim_sync("ns/a");
        assert!(claim.is_some());
        assert!(locks.is_syncing("ns/a"));
        assert!(locks.claim_sync("ns/a").is_none());
        assert!(locks.claim_sync("ns/b").is_some());
        drop(claim);
        assert!(!locks.is_syncing("ns/a"));
        assert!(locks.claim_sync("ns/a").is_some());
    }

    #[tokio::test]
    async fn the_lock_is_exclusive_per_zone() {
        let locks = ZoneLocks::default();
        let held = locks.lock("ns/a").await;
        let other = locks.lock("ns/b").await;
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("ns/a"));
        assert!(waiting.await.is_err(), "a second holder got the lock");
        drop((held, other));
        let again = tokio::time::timeout(std::time::Duration::from_secs(5), locks.lock("ns/a"));
        assert!(again.await.is_ok());
    }
}
