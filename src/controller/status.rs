//! The one Kubernetes write of status: server-side apply under zonekeeper's field manager.
//! What goes into a status is computed in `reconcile::status` and `reconcile::outcome`.

pub use crate::reconcile::status::FIELD_MANAGER;

/// Writes an object's whole status with server-side apply under [`FIELD_MANAGER`]. The whole
/// status every time: fields an apply omits would be dropped from the manager's set.
pub async fn apply_status<K>(
    api: &kube::Api<K>,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
