//! Outgoing transfers on a replica that does not lead: it serves every outgoing zone at the
//! version the leader last saved (zone and IXFR backlog at one serial, swapped in together),
//! so the Service can send a peer to any replica. It watches DnsZones (peers, keys,
//! enabled), the peers' Secrets and the saved-state pointers, and loads a saved state when
//! its pointer changes. It neither polls the backend nor NOTIFYs nor writes status: that is
//! the leader's. What it writes is the transfers it served (one ConfigMap per namespace, at
//! most every [`PUBLISH_EVERY`] and only when one changed), which the leader merges into the
//! peers' status. Once this replica leads it stops; the zone tasks go on from what it serves.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, SystemTime};

use futures::stream::{BoxStream, SelectAll};
use futures::{StreamExt, future};
use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::watch;

use super::outgoing::{Outgoing, notify_sources, peer_auths, transfer_endpoint};
use super::outgoing_store::{OutgoingStore, ServedTransfer, publish_transfers, zone_of_pointer};
use super::references::{fetch_secrets_only, scoped_api as api, secret_names};
use crate::api::DnsZone;
use crate::dns::outgoing::TransferHandle;

/// A zone whose configuration or saved state could not be read is tried again this often
/// (the watches only say when something changes, not when the API server is back).
const RETRY: Duration = Duration::from_secs(5);
/// Transfers served are published at most this often: the leader's status follows within
/// a check round or so, and a busy standby does not write on every transfer.
const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// What woke the replica.
enum Touch {
    /// A DnsZone event from the watch of one scope (a namespace, or all of them).
    Zone(Option<String>, Box<watcher::Event<DnsZone>>),
    Secret {
        namespace: String,
        name: String,
    },
    Pointer {
        namespace: String,
        zone: String,
    },
}

/// Why the loop turned.
enum Wake {
    Touch(Touch),
    Publish,
}

/// What this replica serves of one zone.
struct Served {
    origin: Name,
    /// The zone's generation its peers were configured from.
    generation: Option<i64>,
    /// The pointer id of the saved state served.
    pointer: Option<String>,
}

impl Outgoing {
    /// Serves the leader's saved states until this replica leads (or the future is dropped).
    /// Started on every replica next to the transfer server; without leader election it
    /// ends at once, as the zone tasks do everything.
    pub fn replica(
        &self,
        client: kube::Client,
        namespaces: Vec<String>,
        identity: String,
        leader: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let replica = Replica {
            handle: self.handle().clone(),
            client,
            identity,
            published: HashMap::new(),
            zones: HashMap::new(),
            served: HashMap::new(),
            failed: HashSet::new(),
            relisted: HashMap::new(),
        };
        replica.run(namespaces, leader)
    }
}

struct Replica {
    handle: TransferHandle,
    client: kube::Client,
    /// Names this replica's transfer records.
    identity: String,
    /// The transfer records last published, by namespace.
    published: HashMap<String, Vec<ServedTransfer>>,
    /// Every DnsZone seen, by `namespace/name`.
    zones: HashMap<String, DnsZone>,
    served: HashMap<String, Served>,
    /// Zones to try again at the next [`RETRY`].
    failed: HashSet<String>,
    /// Zones listed so far by a watch that is (re)listing its scope.
    relisted: HashMap<Option<String>, HashSet<String>>,
}

fn zone_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The watches of one scope, merged.
fn watches(client: &kube::Client, scope: Option<String>) -> Vec<BoxStream<'static, Touch>> {
    let zones = {
        let scope = scope.clone();
        watcher(
            api::<DnsZone>(client, &scope),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .filter_map(move |e| future::ready(e.ok().map(|e| Touch::Zone(scope.clone(), Box::new(e)))))
        .boxed()
    };
    // Secrets and ConfigMaps only name zones: their metadata is all that is watched.
    let secrets = watcher(
        api::<PartialObjectMeta<Secret>>(client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .filter_map(|s| {
        future::ready(s.ok().map(|s| Touch::Secret {
            namespace: s.namespace().unwrap_or_default(),
            name: s.name_any(),
        }))
    })
    .boxed();
    let pointers = watcher(
        api::<PartialObjectMeta<ConfigMap>>(client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .filter_map(|cm| {
        future::ready(cm.ok().and_then(|cm| {
            let name = cm.name_any();
            zone_of_pointer(&name).map(|zone| Touch::Pointer {
                namespace: cm.namespace().unwrap_or_default(),
                zone: zone.to_string(),
            })
        }))
    })
    .boxed();
    vec![zones, secrets, pointers]
}

impl Replica {
    async fn run(mut self, namespaces: Vec<String>, mut leader: watch::Receiver<bool>) {
        if *leader.borrow() {
            return;
        }
        let scopes: Vec<Option<String>> = if namespaces.is_empty() {
            vec![None]
        } else {
            namespaces.into_iter().map(Some).collect()
        };
        let mut events: SelectAll<BoxStream<'static, Touch>> = futures::stream::select_all(
            scopes
                .into_iter()
                .flat_map(|scope| watches(&self.client, scope)),
        );
        let mut retry = tokio::time::interval(RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!("outgoing: standing by, serving the saved versions");
        loop {
            // Decided first, acted on after: no borrow of `leader` lives across the select.
            let touch = tokio::select! {
                // Leading (or shutting down): the zone tasks take over from what is served.
                _ = leader.wait_for(|l| *l) => None,
                t = events.next() => t.map(|t| Some(Wake::Touch(t))),
                _ = retry.tick() => Some(None),
                _ = publish.tick() => Some(Some(Wake::Publish)),
            };
            match touch {
                None => return,
                Some(Some(Wake::Publish)) => self.publish().await,
                Some(Some(Wake::Touch(t))) => self.touched(t, &leader).await,
                Some(None) => {
                    for key in std::mem::take(&mut self.failed) {
                        self.sync(&key, true, &leader).await;
                    }
                }
            }
        }
    }

    async fn touched(&mut self, touch: Touch, leader: &watch::Receiver<bool>) {
        match touch {
            Touch::Zone(scope, event) => match *event {
                watcher::Event::Apply(z) | watcher::Event::InitApply(z) => {
                    let key = zone_key(&z.namespace().unwrap_or_default(), &z.name_any());
                    if let Some(listed) = self.relisted.get_mut(&scope) {
                        listed.insert(key.clone());
                    }
                    let reconfigure = self.served.get(&key).is_none_or(|s| {
                        s.generation != z.meta().generation
                            || z.spec.zone_name != s.origin.to_ascii()
                    });
                    self.zones.insert(key.clone(), z);
                    if reconfigure {
                        self.sync(&key, true, leader).await;
                    }
                }
                watcher::Event::Delete(z) => {
                    let key = zone_key(&z.namespace().unwrap_or_default(), &z.name_any());
                    self.zones.remove(&key);
                    self.forget(&key);
                }
                watcher::Event::Init => {
                    self.relisted.insert(scope, HashSet::new());
                }
                watcher::Event::InitDone => {
                    let listed = self.relisted.remove(&scope).unwrap_or_default();
                    let gone: Vec<String> = self
                        .zones
                        .keys()
                        .filter(|k| in_scope(k, &scope) && !listed.contains(*k))
                        .cloned()
                        .collect();
                    for key in gone {
                        self.zones.remove(&key);
                        self.forget(&key);
                    }
                }
            },
            Touch::Secret { namespace, name } => {
                let keys: Vec<String> = self
                    .zones
                    .iter()
                    .filter(|(_, z)| {
                        z.namespace().as_deref() == Some(namespace.as_str())
                            && z.spec.outgoing.is_some()
                            && secret_names(z).contains(&name)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.sync(&key, true, leader).await;
                }
            }
            Touch::Pointer { namespace, zone } => {
                let key = zone_key(&namespace, &zone);
                if self.zones.contains_key(&key) {
                    self.sync(&key, false, leader).await;
                }
            }
        }
    }

    /// Stops serving the zone.
    fn forget(&mut self, key: &str) {
        self.failed.remove(key);
        if let Some(s) = self.served.remove(key) {
            self.handle.remove(&s.origin);
        }
    }

    /// Brings the zone's peers (when `reconfigure`) and served version up to date.
    async fn sync(&mut self, key: &str, reconfigure: bool, leader: &watch::Receiver<bool>) {
        let Some(zone) = self.zones.get(key).cloned() else {
            return self.forget(key);
        };
        let (Some(spec), Ok(origin)) = (
            zone.spec.outgoing.as_ref(),
            Name::from_ascii(&zone.spec.zone_name),
        ) else {
            return self.forget(key);
        };
        if self
            .served
            .get(key)
            .is_some_and(|s| !crate::dns::model::name_eq(&s.origin, &origin))
        {
            self.forget(key);
        }
        // Leading: the zone tasks own the handle now; nothing here may overwrite it.
        if *leader.borrow() {
            return;
        }
        if reconfigure || !self.served.contains_key(key) {
            let namespace = zone.namespace().unwrap_or_default();
            let lookup = match fetch_secrets_only(&self.client, &namespace, &zone).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(zone = %origin, error = %e, "outgoing replica: reading Secrets failed; trying again");
                    self.failed.insert(key.to_string());
                    return;
                }
            };
            let (peers, problems) = peer_auths(spec, &lookup);
            if !problems.is_empty() {
                tracing::debug!(zone = %origin, problems = ?problems, "outgoing replica: peers left out");
            }
            if *leader.borrow() {
                return;
            }
            self.handle.set_peers(&origin, peers);
            self.handle.set_enabled(&origin, spec.enabled);
            if let Ok(transfer) = transfer_endpoint(&zone.spec, &lookup) {
                self.handle
                    .set_notify_sources(&origin, notify_sources(&transfer));
            }
            let served = self.served.entry(key.to_string()).or_insert(Served {
                origin: origin.clone(),
                generation: None,
                pointer: None,
            });
            served.generation = zone.meta().generation;
        }
        if !spec.enabled {
            // Disabled serves nothing and keeps no backlog; the next enable loads afresh.
            if let Some(s) = self.served.get_mut(key) {
                s.pointer = None;
            }
            return;
        }
        self.load(key, &zone, &origin, leader).await;
    }

    /// Serves the saved state when its pointer moved since the last load.
    async fn load(
        &mut self,
        key: &str,
        zone: &DnsZone,
        origin: &Name,
        leader: &watch::Receiver<bool>,
    ) {
        let store = OutgoingStore::of(&self.client, zone);
        let loaded = self.served.get(key).and_then(|s| s.pointer.clone());
        match store.pointer().await {
            Ok(Some(p)) if Some(&p.id) == loaded.as_ref() => return,
            Ok(Some(_)) => {}
            // Nothing saved yet: the leader has not served the zone.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(zone = %origin, error = %e, "outgoing replica: reading the saved state failed; trying again");
                self.failed.insert(key.to_string());
                return;
            }
        }
        let saved = match store.load_saved(origin).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                // Often the leader replacing the chunks under us: its new pointer follows.
                tracing::debug!(zone = %origin, error = %e, "outgoing replica: saved state not readable; trying again");
                self.failed.insert(key.to_string());
                return;
            }
        };
        if *leader.borrow() {
            return;
        }
        let serial = saved.zone.soa_serial();
        match self.handle.install(saved.zone, &saved.backlog) {
            Ok(n) => {
                tracing::info!(zone = %origin, serial = ?serial, backlog = n, "outgoing replica: serving the saved version");
                if let Some(s) = self.served.get_mut(key) {
                    s.pointer = Some(saved.id);
                }
            }
            Err(e) => {
                tracing::warn!(zone = %origin, error = %e, "outgoing replica: saved version not served")
            }
        }
    }
}

impl Replica {
    /// The transfers served, by namespace, as the leader reads them.
    fn served_transfers(&self) -> HashMap<String, Vec<ServedTransfer>> {
        let mut out: HashMap<String, Vec<ServedTransfer>> = HashMap::new();
        for record in self.handle.transfers() {
            for (key, served) in &self.served {
                if !crate::dns::model::name_eq(&served.origin, &record.zone) {
                    continue;
                }
                let Some((namespace, zone)) = key.split_once('/') else {
                    continue;
                };
                let time_ms = record
                    .time
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                out.entry(namespace.to_string())
                    .or_default()
                    .push(ServedTransfer {
                        zone: zone.to_string(),
                        origin: served.origin.to_ascii(),
                        peer: record.peer.clone(),
                        method: record.method,
                        time_ms,
                    });
            }
        }
        for records in out.values_mut() {
            records.sort_by(|a, b| (&a.zone, &a.peer).cmp(&(&b.zone, &b.peer)));
        }
        out
    }

    /// Writes each namespace's records that changed since the last write; nothing when idle.
    async fn publish(&mut self) {
        let mut now = self.served_transfers();
        // A namespace whose zones went keeps an empty record rather than stale ones.
        for namespace in self.published.keys() {
            now.entry(namespace.clone()).or_default();
        }
        for (namespace, records) in now {
            if self.published.get(&namespace) == Some(&records) {
                continue;
            }
            match publish_transfers(&self.client, &namespace, &self.identity, &records).await {
                Ok(()) => {
                    self.published.insert(namespace, records);
                }
                Err(e) => {
                    tracing::warn!(namespace = %namespace, error = %e, "outgoing replica: publishing the transfers served failed; trying again")
                }
            }
        }
    }
}

fn in_scope(key: &str, scope: &Option<String>) -> bool {
    scope
        .as_ref()
        .is_none_or(|ns| key.split_once('/').is_some_and(|(k, _)| k == ns))
}
