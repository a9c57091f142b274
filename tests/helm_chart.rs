//! The Helm chart lints strictly, renders with default values and with `watchNamespaces`,
//! carries the generated CRDs, and refuses values of the wrong type through values.schema.json.
//! helm is installed by tests/run.sh (see the README).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/zonekeeper")
}

fn helm(args: &[&str]) -> Output {
    Command::new("helm")
        .args(args)
        .output()
        .expect("helm not found: run the suite with `bash tests/run.sh`, which installs it")
}

fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "helm failed:\n{text}");
    text
}

fn kinds(rendered: &str) -> Vec<(String, String)> {
    serde_yaml::Deserializer::from_str(rendered)
        .filter_map(|doc| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).ok()?;
            let kind = v.get("kind")?.as_str()?.to_string();
            let ns = v
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string();
            Some((kind, ns))
        })
        .collect()
}

#[test]
fn chart_lints_strictly_with_default_and_namespaced_values() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    ok(&helm(&["lint", "--strict", chart]));
    ok(&helm(&[
        "lint",
        "--strict",
        chart,
        "--set",
        "watchNamespaces={dns,team-a}",
    ]));
}

#[test]
fn default_values_render_a_cluster_wide_operator() {
    let chart = chart();
    let out = ok(&helm(&[
        "template",
        "zk",
        chart.to_str().unwrap(),
        "--namespace",
        "zonekeeper",
    ]));
    let kinds = kinds(&out);
    for expected in [
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(
            kinds.iter().any(|(k, _)| k == expected),
            "{expected} missing: {kinds:?}"
        );
    }
    assert!(!kinds.iter().any(|(k, _)| k == "ServiceMonitor"));
    assert!(out.contains("replicas: 2"));
    assert!(out.contains("--leader-election"));
    assert!(out.contains("readOnlyRootFilesystem: true"));
    assert!(out.contains("runAsNonRoot: true"));
    assert!(out.contains("path: /livez") && out.contains("path: /readyz"));
}

#[test]
fn watch_namespaces_render_one_role_per_namespace() {
    let chart = chart();
    let out = ok(&helm(&[
        "template",
        "zk",
        chart.to_str().unwrap(),
        "--namespace",
        "zonekeeper",
        "--set",
        "watchNamespaces={dns,team-a}",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ]));
    let kinds = kinds(&out);
    assert!(!kinds.iter().any(|(k, _)| k == "ClusterRole"), "{kinds:?}");
    for ns in ["dns", "team-a"] {
        assert!(
            kinds.contains(&("Role".to_string(), ns.to_string())),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&("RoleBinding".to_string(), ns.to_string())),
            "{kinds:?}"
        );
        assert!(out.contains(&format!("--namespace={ns}")));
    }
    assert!(kinds.iter().any(|(k, _)| k == "ServiceMonitor"));
}

#[test]
fn values_of_the_wrong_type_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chart = chart();
    for (values, pointer) in [
        ("replicaCount: two\n", "/replicaCount"),
        ("watchNamespaces: dns\n", "/watchNamespaces"),
        ("logging: {format: xml}\n", "/logging/format"),
        ("metrics: {port: 70000}\n", "/metrics/port"),
    ] {
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, values).unwrap();
        let out = helm(&[
            "template",
            "zk",
            chart.to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{values} was accepted");
        assert!(stderr.contains(pointer), "{values}: {stderr}");
    }
}

#[test]
fn two_replicas_without_leader_election_are_refused() {
    let chart = chart();
    let out = helm(&[
        "template",
        "zk",
        chart.to_str().unwrap(),
        "--set",
        "replicaCount=2",
        "--set",
        "leaderElection.enabled=false",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "two writers were rendered");
    assert!(
        stderr.contains("replicaCount > 1 needs leaderElection.enabled=true"),
        "{stderr}"
    );
    ok(&helm(&[
        "template",
        "zk",
        chart.to_str().unwrap(),
        "--set",
        "replicaCount=2",
        "--set",
        "leaderElection.enabled=true",
    ]));
}

#[test]
fn chart_crds_are_the_generated_ones() {
    for crd in zonekeeper::api::crd::crds() {
        let path = chart()
            .join("crds")
            .join(zonekeeper::api::crd::file_name(&crd));
        let actual = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            actual,
            zonekeeper::api::crd::crd_yaml(&crd).unwrap(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn transfer_values_render_the_flag_the_ports_and_a_dns_service() {
    let chart = chart();
    let off = ok(&helm(&["template", "zk", chart.to_str().unwrap()]));
    assert!(!off.contains("--transfer-addr") && !off.contains("zk-zonekeeper-transfer"));
    let on = ok(&helm(&[
        "template",
        "zk",
        chart.to_str().unwrap(),
        "--set",
        "transfer.enabled=true",
        "--set",
        "transfer.service.type=LoadBalancer",
        "--set",
        "transfer.service.externalTrafficPolicy=Local",
    ]));
    assert!(on.contains("--transfer-addr=0.0.0.0:5353"), "{on}");
    let service = on
        .split("\n---")
        .find(|d| d.contains("kind: Service") && d.contains("-transfer"))
        .expect("transfer Service rendered");
    for needle in [
        "type: LoadBalancer",
        "externalTrafficPolicy: Local",
        "port: 53",
        "protocol: UDP",
        "protocol: TCP",
        "targetPort: transfer-udp",
        "targetPort: transfer-tcp",
    ] {
        assert!(service.contains(needle), "{needle}: {service}");
    }
    // ClusterIP has no externalTrafficPolicy; the API server would refuse it.
    let cluster_ip = ok(&helm(&[
        "template",
        "zk",
        chart.to_str().unwrap(),
        "--set",
        "transfer.enabled=true",
    ]));
    assert!(!cluster_ip.contains("externalTrafficPolicy"));
    let bad = helm(&[
        "template",
        "zk",
        chart.to_str().unwrap(),
        "--set",
        "transfer.service.externalTrafficPolicy=Sometimes",
    ]);
    assert!(!bad.status.success());
}

/// `helm template zk` (namespace zonekeeper) with `--set` pairs, as objects.
fn render(sets: &[&str]) -> Vec<serde_json::Value> {
    let chart = chart();
    let mut args = vec![
        "template",
        "zk",
        chart.to_str().unwrap(),
        "--namespace",
        "zonekeeper",
    ];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    let out = ok(&helm(&args));
    serde_yaml::Deserializer::from_str(&out)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &serde_json::Value| v.is_object())
        .collect()
}

fn find<'a>(
    objs: &'a [serde_json::Value],
    kind: &str,
    name: &str,
) -> Option<&'a serde_json::Value> {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn operator_args(objs: &[serde_json::Value]) -> Vec<String> {
    let d = find(objs, "Deployment", "zk-zonekeeper").expect("Deployment");
    d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn enabled_webhooks_render_behind_a_service_with_a_self_signed_certificate() {
    let objs = render(&["webhook.enabled=true"]);
    let service = find(&objs, "Service", "zk-zonekeeper-webhook").expect("webhook Service");
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "webhook");
    for (kind, name, path) in [
        (
            "MutatingWebhookConfiguration",
            "requested-by.dns.zonekeeper.io",
            "/mutate",
        ),
        (
            "ValidatingWebhookConfiguration",
            "acl.dns.zonekeeper.io",
            "/validate",
        ),
    ] {
        let config = find(&objs, kind, "zk-zonekeeper").unwrap_or_else(|| panic!("{kind}"));
        let hook = &config["webhooks"][0];
        assert_eq!(hook["name"], name);
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 5);
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["admissionReviewVersions"], serde_json::json!(["v1"]));
        assert_eq!(
            hook["namespaceSelector"]["matchExpressions"][0],
            serde_json::json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]})
        );
        assert_eq!(
            hook["clientConfig"]["service"],
            serde_json::json!({"name": "zk-zonekeeper-webhook", "namespace": "zonekeeper", "path": path, "port": 443})
        );
        assert_eq!(
            hook["rules"][0]["resources"],
            serde_json::json!(["dnszones", "zonesyncs"])
        );
        assert!(config["metadata"]["annotations"].is_null());
    }
    let args = operator_args(&objs);
    for expected in [
        "--webhook-addr=0.0.0.0:9443",
        "--webhook-secret=zk-zonekeeper-webhook-tls",
        "--webhook-mutating-configuration=zk-zonekeeper",
        "--webhook-validating-configuration=zk-zonekeeper",
        "--webhook-trusted-user=system:serviceaccount:zonekeeper:zk-zonekeeper",
    ] {
        assert!(
            args.iter().any(|a| a == expected),
            "{expected} missing: {args:?}"
        );
    }
    assert!(!args.iter().any(|a| a.starts_with("--webhook-cert-dir")));
    assert!(!objs.iter().any(|o| o["kind"] == "Certificate"));
    let role = find(&objs, "Role", "zk-zonekeeper-webhook").expect("webhook Role");
    assert_eq!(role["rules"][0]["verbs"], serde_json::json!(["create"]));
}

#[test]
fn cert_manager_serves_the_webhooks_and_injects_their_ca() {
    let objs = render(&[
        "webhook.enabled=true",
        "webhook.certManager.enabled=true",
        "webhook.failurePolicy=Ignore",
    ]);
    let cert = find(&objs, "Certificate", "zk-zonekeeper-webhook").expect("Certificate");
    assert_eq!(cert["spec"]["secretName"], "zk-zonekeeper-webhook-cert");
    assert!(
        cert["spec"]["dnsNames"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("zk-zonekeeper-webhook.zonekeeper.svc"))
    );
    assert!(find(&objs, "Issuer", "zk-zonekeeper-webhook").is_some());
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let config = find(&objs, kind, "zk-zonekeeper").unwrap();
        assert_eq!(
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "zonekeeper/zk-zonekeeper-webhook"
        );
        assert_eq!(config["webhooks"][0]["failurePolicy"], "Ignore");
    }
    let args = operator_args(&objs);
    assert!(
        args.iter()
            .any(|a| a == "--webhook-cert-dir=/etc/zonekeeper/webhook")
    );
    assert!(!args.iter().any(|a| a.starts_with("--webhook-secret")));
    let pod = &find(&objs, "Deployment", "zk-zonekeeper").unwrap()["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "zk-zonekeeper-webhook-cert"
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        "/etc/zonekeeper/webhook"
    );
}

#[test]
fn webhooks_are_opt_in_and_their_values_are_checked() {
    let objs = render(&[]);
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "Certificate",
    ] {
        assert!(!objs.iter().any(|o| o["kind"] == kind), "{kind} rendered");
    }
    assert!(find(&objs, "Service", "zk-zonekeeper-webhook").is_none());
    assert!(
        !operator_args(&objs)
            .iter()
            .any(|a| a.starts_with("--webhook"))
    );
    let chart = chart();
    for (set, pointer) in [
        ("webhook.failurePolicy=Sometimes", "/webhook/failurePolicy"),
        ("webhook.timeoutSeconds=31", "/webhook/timeoutSeconds"),
    ] {
        let out = helm(&["template", "zk", chart.to_str().unwrap(), "--set", set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set} was accepted");
        assert!(stderr.contains(pointer), "{set}: {stderr}");
    }
}
