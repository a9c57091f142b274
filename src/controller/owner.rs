//! The owner reference every object zonekeeper creates carries, so it goes with its owner.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

/// `obj` as the controlling owner (garbage collection waits for the owned object). Objects
/// read from the API always have the name and uid this needs; without them the reference is
/// empty and the API server refuses the write, which is the right outcome.
pub fn controller_ref<K: Resource<DynamicType = ()>>(obj: &K) -> OwnerReference {
    obj.controller_owner_ref(&()).unwrap_or_default()
}
