//! Which Secrets and ConfigMaps a DnsZone references, and reading them for one reconcile.
//! Both controllers resolve a zone's config through here; the DnsZone controller also maps a
//! changed Secret or ConfigMap back to the zones that name it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::api::DnsZone;
use crate::reconcile::config::Lookup;

/// The Secrets a zone names: the backend's TSIG key and the transfer's, if separate.
pub fn secret_names(zone: &DnsZone) -> BTreeSet<String> {
    let backend = zone.spec.backend.tsig_key_secret_ref.as_ref();
    let transfer = zone
        .spec
        .transfer
        .as_ref()
        .and_then(|t| t.tsig_key_secret_ref.as_ref());
    // Peers' keys too: a rotated peer Secret must reach the transfer server.
    let peers = zone
        .spec
        .outgoing
        .iter()
        .flat_map(|o| &o.peers)
        .filter_map(|p| p.tsig_key_secret_ref.as_ref());
    backend
        .into_iter()
        .chain(transfer)
        .chain(peers)
        .map(|r| r.name.clone())
        .collect()
}

/// The ConfigMaps a zone takes records from.
pub fn config_map_names(zone: &DnsZone) -> BTreeSet<String> {
    zone.spec
        .records_from
        .iter()
        .map(|s| s.config_map_ref.name.clone())
        .collect()
}

/// What one zone names, as the index last saw it.
#[derive(Debug, Default)]
struct Named {
    secrets: BTreeSet<String>,
    config_maps: BTreeSet<String>,
    /// `spec.zoneName` and `spec.backend.server`: zones sharing both are in conflict.
    target: (String, String),
}

type ZoneKey = (String, String);

/// One generation of the index: the live one, or a relist being read.
#[derive(Debug, Default)]
struct Names {
    zones: HashMap<ZoneKey, Named>,
    /// (namespace, Secret) → the names of the zones of that namespace naming it.
    secrets: HashMap<ZoneKey, BTreeSet<String>>,
    config_maps: HashMap<ZoneKey, BTreeSet<String>>,
    /// (zoneName, server) → the zones (namespace, name) managing it.
    targets: HashMap<(String, String), BTreeSet<ZoneKey>>,
}

fn unlink(
    map: &mut HashMap<ZoneKey, BTreeSet<String>>,
    ns: &str,
    names: &BTreeSet<String>,
    zone: &str,
) {
    for name in names {
        let key = (ns.to_string(), name.clone());
        if let Some(zones) = map.get_mut(&key) {
            zones.remove(zone);
            if zones.is_empty() {
                map.remove(&key);
            }
        }
    }
}

fn link(
    map: &mut HashMap<ZoneKey, BTreeSet<String>>,
    ns: &str,
    names: &BTreeSet<String>,
    zone: &str,
) {
    for name in names {
        let zones = map.entry((ns.to_string(), name.clone())).or_default();
        zones.insert(zone.to_string());
    }
}

impl Names {
    fn remove(&mut self, key: &ZoneKey) {
        let Some(old) = self.zones.remove(key) else {
            return;
        };
        unlink(&mut self.secrets, &key.0, &old.secrets, &key.1);
        unlink(&mut self.config_maps, &key.0, &old.config_maps, &key.1);
        if let Some(zones) = self.targets.get_mut(&old.target) {
            zones.remove(key);
            if zones.is_empty() {
                self.targets.remove(&old.target);
            }
        }
    }

    fn insert(&mut self, zone: &DnsZone) {
        let key = zone_key(zone);
        self.remove(&key);
        let named = Named {
            secrets: secret_names(zone),
            config_maps: config_map_names(zone),
            target: (
                zone.spec.zone_name.clone(),
                zone.spec.backend.server.clone(),
            ),
        };
        link(&mut self.secrets, &key.0, &named.secrets, &key.1);
        link(&mut self.config_maps, &key.0, &named.config_maps, &key.1);
        self.targets
            .entry(named.target.clone())
            .or_default()
            .insert(key.clone());
        self.zones.insert(key, named);
    }
}

fn zone_key(zone: &DnsZone) -> ZoneKey {
    let meta = zone.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

#[derive(Debug, Default)]
struct IndexState {
    live: Names,
    /// A relist in progress: it replaces `live` whole once complete, as the store does.
    relist: Option<Names>,
}

/// Which zones name each Secret and ConfigMap, and which zones manage each (zoneName,
/// server), kept beside the DnsZone store from the same watch events. Every ownership
/// ConfigMap a pass writes is mapped back to zones, and every pass looks for a conflicting
/// zone: a scan of the store for each made the operator quadratic in the number of zones.
#[derive(Clone, Debug, Default)]
pub struct NameIndex(Arc<Mutex<IndexState>>);

impl NameIndex {
    fn state(&self) -> MutexGuard<'_, IndexState> {
        // Every change is one step on plain maps: a panic elsewhere leaves them consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one event of the DnsZone watch, as the reflector applies it to the store.
    pub fn apply(&self, event: &watcher::Event<DnsZone>) {
        let mut state = self.state();
        match event {
            watcher::Event::Apply(zone) => state.live.insert(zone),
            watcher::Event::Delete(zone) => state.live.remove(&zone_key(zone)),
            watcher::Event::Init => state.relist = Some(Names::default()),
            watcher::Event::InitApply(zone) => state.relist.get_or_insert_default().insert(zone),
            watcher::Event::InitDone => {
                if let Some(names) = state.relist.take() {
                    state.live = names;
                }
            }
        }
    }

    /// The zones of the Secret's namespace that name it.
    pub fn zones_naming_secret<K: Resource>(&self, secret: &K) -> Vec<ObjectRef<DnsZone>> {
        self.naming(secret, |names| &names.secrets)
    }

    /// The zones of the ConfigMap's namespace that take records from it.
    pub fn zones_naming_config_map<K: Resource>(&self, cm: &K) -> Vec<ObjectRef<DnsZone>> {
        self.naming(cm, |names| &names.config_maps)
    }

    fn naming<K: Resource>(
        &self,
        object: &K,
        map: impl Fn(&Names) -> &HashMap<ZoneKey, BTreeSet<String>>,
    ) -> Vec<ObjectRef<DnsZone>> {
        let meta = object.meta();
        let Some(name) = meta.name.as_deref() else {
            return Vec::new();
        };
        let ns = meta.namespace.clone().unwrap_or_default();
        let state = self.state();
        map(&state.live)
            .get(&(ns.clone(), name.to_string()))
            .into_iter()
            .flatten()
            .map(|zone| ObjectRef::new(zone).within(&ns))
            .collect()
    }

    /// The zones (`namespace`, `name`) managing `zone_name` on `server`, the asking one included.
    pub fn managing(&self, zone_name: &str, server: &str) -> Vec<ObjectRef<DnsZone>> {
        let state = self.state();
        state
            .live
            .targets
            .get(&(zone_name.to_string(), server.to_string()))
            .into_iter()
            .flatten()
            .map(|(ns, name)| ObjectRef::new(name).within(ns))
            .collect()
    }
}

/// Secrets and ConfigMaps of the zone's namespace, read once per reconcile.
pub struct Fetched {
    secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

impl Lookup for Fetched {
    fn secret(&self, name: &str, key: &str) -> Option<Option<Vec<u8>>> {
        let data = self.secrets.get(name)?.as_ref()?;
        Some(data.get(key).cloned())
    }

    fn config_map(&self, name: &str, key: &str) -> Option<String> {
        self.config_maps.get(name)?.as_ref()?.get(key).cloned()
    }
}

/// Reads the Secrets and ConfigMaps a DnsZone names.
pub async fn fetch_lookup(
    client: &kube::Client,
    ns: &str,
    zone: &DnsZone,
) -> Result<Fetched, kube::Error> {
    let secrets = fetch_secrets(client, ns, zone).await?;
    let cms_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut config_maps = BTreeMap::new();
    for name in config_map_names(zone) {
        let data = cms_api
            .get_opt(&name)
            .await?
            .map(|c| c.data.unwrap_or_default());
        config_maps.insert(name, data);
    }
    Ok(Fetched {
        secrets,
        config_maps,
    })
}

/// Only the Secrets a DnsZone names (no ConfigMaps, which can be big).
pub async fn fetch_secrets_only(
    client: &kube::Client,
    ns: &str,
    zone: &DnsZone,
) -> Result<Fetched, kube::Error> {
    Ok(Fetched {
        secrets: fetch_secrets(client, ns, zone).await?,
        config_maps: BTreeMap::new(),
    })
}

type SecretData = BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>;

async fn fetch_secrets(
    client: &kube::Client,
    ns: &str,
    zone: &DnsZone,
) -> Result<SecretData, kube::Error> {
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut secrets = BTreeMap::new();
    for name in secret_names(zone) {
        let data = secrets_api.get_opt(&name).await?.map(|s| {
            let mut out: BTreeMap<String, Vec<u8>> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            for (k, v) in s.string_data.unwrap_or_default() {
                out.insert(k, v.into_bytes());
            }
            out
        });
        secrets.insert(name, data);
    }
    Ok(secrets)
}

/// The API of `K` in the one watched namespace, or in all when none is set.
pub(super) fn scoped_api<K>(client: &kube::Client, namespace: &Option<String>) -> kube::Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher::Event;

    use super::*;

    fn zone(ns: &str, name: &str, origin: &str, secret: &str, cms: &[&str]) -> DnsZone {
        let records_from: Vec<_> = cms
            .iter()
            .map(|cm| serde_json::json!({"configMapRef": {"name": cm, "key": "zone"}}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"zoneName": origin, "type": "Primary",
                     "backend": {"server": "127.0.0.1:53", "tsigKeySecretRef": {"name": secret}},
                     "recordsFrom": records_from},
        }))
        .unwrap()
    }

    fn object<K: Resource<DynamicType = ()> + serde::de::DeserializeOwned>(
        ns: &str,
        name: &str,
    ) -> K {
        serde_json::from_value(serde_json::json!({
            "apiVersion": K::api_version(&()), "kind": K::kind(&()),
            "metadata": {"name": name, "namespace": ns},
        }))
        .unwrap()
    }

    fn names(refs: Vec<ObjectRef<DnsZone>>) -> Vec<String> {
        let mut out: Vec<String> = refs
            .iter()
            .map(|r| format!("{}/{}", r.namespace.clone().unwrap_or_default(), r.name))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn maps_secrets_config_maps_and_targets_to_the_zones_naming_them() {
        let index = NameIndex::default();
        index.apply(&Event::Apply(zone("a", "z1", "x.test.", "key", &["cm1"])));
        index.apply(&Event::Apply(zone("a", "z2", "x.test.", "key", &[])));
        index.apply(&Event::Apply(zone("b", "z3", "y.test.", "key", &["cm1"])));
        let secret: Secret = object("a", "key");
        assert_eq!(names(index.zones_naming_secret(&secret)), ["a/z1", "a/z2"]);
        let cm: ConfigMap = object("b", "cm1");
        assert_eq!(names(index.zones_naming_config_map(&cm)), ["b/z3"]);
        let unnamed: ConfigMap = object("a", "other");
        assert!(index.zones_naming_config_map(&unnamed).is_empty());
        assert_eq!(
            names(index.managing("x.test.", "127.0.0.1:53")),
            ["a/z1", "a/z2"]
        );

        // A zone that stops naming the ConfigMap, and a deleted zone, are gone from it.
        index.apply(&Event::Apply(zone("a", "z1", "x.test.", "other-key", &[])));
        index.apply(&Event::Delete(zone("a", "z2", "x.test.", "key", &[])));
        assert!(index.zones_naming_secret(&secret).is_empty());
        let cm1: ConfigMap = object("a", "cm1");
        assert!(index.zones_naming_config_map(&cm1).is_empty());
        assert_eq!(names(index.managing("x.test.", "127.0.0.1:53")), ["a/z1"]);
    }

    #[test]
    fn a_relist_replaces_the_index_once_complete() {
        let index = NameIndex::default();
        index.apply(&Event::Apply(zone("a", "old", "x.test.", "key", &[])));
        index.apply(&Event::Init);
        index.apply(&Event::InitApply(zone("a", "new", "x.test.", "key", &[])));
        let secret: Secret = object("a", "key");
        // Until the relist is done the index answers as the store does: from the last list.
        assert_eq!(names(index.zones_naming_secret(&secret)), ["a/old"]);
        index.apply(&Event::InitDone);
        assert_eq!(names(index.zones_naming_secret(&secret)), ["a/new"]);
    }
}
