//! The CRDs generated from the types; `crds/*.yaml` and the chart's copies are this output.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{DnsZone, ZoneSync};

/// Both CRDs, DnsZone first.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![DnsZone::crd(), ZoneSync::crd()]
}

/// One CRD as the YAML document stored in `crds/<name>.yaml`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(crd)
}

/// Both CRDs as one multi-document YAML stream, as `zonekeeper crd` prints it.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}

/// The file name a CRD is stored under: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}
