//! The CRDs in crds/ and in the chart are generated from the Rust types; these tests fail when
//! they drift, and check that kubectl accepts them as CRD manifests.

use std::path::Path;
use std::process::Command;

use zonekeeper::api::crd::{crd_yaml, crds, crds_yaml, file_name};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn crd_files_match_the_types() {
    let mut stale = Vec::new();
    for crd in crds() {
        let expected = crd_yaml(&crd).unwrap();
        for dir in ["crds", "charts/zonekeeper/crds"] {
            let dir = repo().join(dir);
            let path = dir.join(file_name(&crd));
            let actual = std::fs::read_to_string(&path).unwrap_or_default();
            if actual != expected {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated CRDs drifted from the types; regenerate with `cargo run -- crd --write`: {stale:?}"
    );
}

#[test]
fn crd_command_prints_both_crds() {
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), crds_yaml().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_accepts_the_crd_files() {
    // kubectl needs an API server for discovery even for a client-side dry run: the in-repo
    // test API server plays that part.
    let server = zk_apiserver::TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["create", "--dry-run=client", "-o", "yaml", "-f"])
            .arg(repo().join("crds"))
            .output()
            .expect("kubectl is installed on every machine of this project")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "kubectl refused crds/: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let echoed: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let names: Vec<_> = echoed
        .iter()
        .flat_map(|v| match v.get("items") {
            Some(items) => items.as_sequence().cloned().unwrap_or_default(),
            None => vec![v.clone()],
        })
        .filter_map(|v| v["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(
        names.contains(&"dnszones.dns.zonekeeper.io".to_string()),
        "{stdout}"
    );
    assert!(
        names.contains(&"zonesyncs.dns.zonekeeper.io".to_string()),
        "{stdout}"
    );
}

#[test]
fn crds_carry_names_columns_and_status_subresource() {
    for crd in crds() {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, "dns.zonekeeper.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(names.categories.as_deref(), Some(&["dns".to_string()][..]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        match names.kind.as_str() {
            "DnsZone" => {
                assert_eq!(names.short_names.as_deref(), Some(&["dz".to_string()][..]));
                assert_eq!(
                    columns,
                    ["Zone", "Type", "Phase", "Serial", "Records", "Ready", "Age"]
                );
            }
            "ZoneSync" => {
                assert_eq!(names.short_names.as_deref(), Some(&["zs".to_string()][..]));
                assert_eq!(
                    columns,
                    ["Zone", "Phase", "Added", "Updated", "Deleted", "Age"]
                );
            }
            other => panic!("unexpected kind {other}"),
        }
    }
}

/// Every example applies as it is: kubectl sends it to the test API server, which validates
/// our kinds against the installed CRDs (the Argo CD and Flux examples are other projects'
/// kinds and are only parsed, client-side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_apply_as_they_are() {
    let server = zk_apiserver::TestApiServer::start().await;
    server.install_crds(&zonekeeper::api::crd::crds()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = move |args: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args(&args)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let examples = repo().join("examples");
    let out = kubectl(vec![
        "apply".into(),
        "-f".into(),
        examples.display().to_string(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // zonesync.yaml uses generateName, which `apply` cannot take: kubectl says so and the
    // README tells users to `kubectl create` it.
    for name in [
        "dnszone.dns.zonekeeper.io/example-com",
        "dnszone.dns.zonekeeper.io/partner-example-net",
        "dnszone.dns.zonekeeper.io/big-example-org",
        "dnszone.dns.zonekeeper.io/example-net",
        "secret/example-com-tsig",
        "configmap/big-example-org-part1",
    ] {
        assert!(
            stdout.contains(name),
            "{name} not applied:\n{stdout}\n{stderr}"
        );
    }
    let out = kubectl(vec![
        "create".into(),
        "-f".into(),
        examples.join("zonesync.yaml").display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("zonesync.dns.zonekeeper.io/example-com-sync-")
    );
    // The GitOps examples are Argo CD's and Flux's kinds, which this server does not serve:
    // they are checked to parse and to point at the zones directory.
    for (file, kinds) in [
        ("argocd-application.yaml", vec!["Application"]),
        (
            "flux-kustomization.yaml",
            vec!["GitRepository", "Kustomization"],
        ),
    ] {
        let text = std::fs::read_to_string(examples.join("gitops").join(file)).unwrap();
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let found: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        assert_eq!(found, kinds, "{file}");
        assert!(text.contains("zones"), "{file} points at a zones directory");
    }
}
