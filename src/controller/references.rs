//! Which Secrets and ConfigMaps a DnsZone references, and reading them for one reconcile.
//! Both controllers resolve a zone's config through here; the DnsZone controller also maps a
//! changed Secret or ConfigMap back to the zones that name it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};

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

/// The zones of `store` in the object's namespace whose `names` include the object's name.
pub fn zones_naming<K: Resource>(
    store: &Store<DnsZone>,
    object: &K,
    names: impl Fn(&DnsZone) -> BTreeSet<String>,
) -> Vec<ObjectRef<DnsZone>> {
    let meta = object.meta();
    let (Some(name), ns) = (meta.name.as_deref(), meta.namespace.as_deref()) else {
        return Vec::new();
    };
    // Every ownership ConfigMap a pass writes comes through here: with 10,000 zones a copy
    // of the store (or of each zone's namespace) per event made the operator quadratic.
    store
        .state_filter(|z| z.meta().namespace.as_deref() == ns && names(z).contains(name))
        .iter()
        .map(|z| ObjectRef::from_obj(z.as_ref()))
        .collect()
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
