//! `-- --scale`: many DnsZones against one BIND (issue 18). For n in 1,000 / 5,000 / 10,000
//! (`--scale-max N` stops early): BIND serving n empty zones from one named.conf, the test API
//! server in this process holding n DnsZones of 10 RRsets each, then `zonekeeper run` started as
//! its own process (so its CPU and memory are its own) and timed until every zone is Ready.
//! Then a quiet window (`--scale-quiet S`, default 60 s) in which nothing changes: the operator's
//! CPU, its API writes and the DNS queries BIND logged are counted.
//!
//! `bench scenario=scale-zones-<n> ready_s= per_zone_ms= peak_rss_mb= quiet_cpu_s=
//! quiet_api_writes= quiet_dns_queries=` plus where the CPU of the ready phase went
//! (`operator_cpu_s`, `apiserver_cpu_s` — this process: the test API server and the polling —
//! `bind_cpu_s`) and the operator's requests (`api_requests`, `api_writes`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use zk_apiserver::TestApiServer;
use zk_fixtures::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};
use zonekeeper::api::DnsZone;

const NS: &str = "scale";
const SIZES: [usize; 3] = [1_000, 5_000, 10_000];
/// The zones' `spec.sync.interval` (the CRD default): the only DNS queries a quiet operator
/// may make are these scheduled drift checks, none of them due within minutes of Ready.
const SYNC_INTERVAL: &str = "10m";

pub async fn scale_scenarios(args: &[String]) -> anyhow::Result<()> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let max = flag("--scale-max").unwrap_or(10_000) as usize;
    let quiet = Duration::from_secs(flag("--scale-quiet").unwrap_or(60));
    let mut sizes: Vec<usize> = SIZES.into_iter().filter(|n| *n <= max).collect();
    if sizes.is_empty() {
        sizes.push(max.max(1));
    }
    for n in sizes {
        scale_scenario(n, quiet).await?;
    }
    Ok(())
}

fn origin(i: usize) -> String {
    format!("z{i}.scale.test.")
}

/// Ten RRsets: eight A owners, an MX and a TXT at the apex.
fn records(i: usize) -> Value {
    let mut rrsets: Vec<Value> = (0..8)
        .map(|j| {
            json!({"name": format!("h{j}"), "type": "A",
                   "data": [format!("10.{}.{}.{j}", (i >> 8) & 255, i & 255)]})
        })
        .collect();
    rrsets.push(json!({"name": "@", "type": "MX", "data": [format!("10 mail.{}", origin(i))]}));
    rrsets.push(json!({"name": "@", "type": "TXT", "data": [format!("zone {i}")]}));
    Value::Array(rrsets)
}

fn manifest(i: usize, server: &DnsServer) -> anyhow::Result<DnsZone> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": format!("z{i}"), "namespace": NS},
        "spec": {
            "zoneName": origin(i),
            "type": "Primary",
            "ttl": 300,
            "backend": {"server": server.addr.to_string(),
                        "tsigKeySecretRef": {"name": "scale-tsig"}, "timeout": "10s"},
            "records": records(i),
            "sync": {"interval": SYNC_INTERVAL},
        }
    }))?)
}

/// Ready=True for the object's current generation, as `kubectl wait` would see it.
pub(super) fn is_ready(zone: &Value) -> bool {
    let status = &zone["status"];
    status["observedGeneration"] == zone["metadata"]["generation"]
        && status["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds of a process so far (`self` for this one).
pub(super) fn cpu_s(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state is the first, utime the 12th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clock_ticks()
}

pub(super) fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `zonekeeper run` against the test API server, logging to `dir/operator.log`.
pub(super) fn start_operator(dir: &Path, api: &TestApiServer) -> anyhow::Result<Child> {
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)?;
    let log = std::fs::File::create(dir.join("operator.log"))?;
    Ok(Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .args([
            "run",
            "--metrics-addr",
            "127.0.0.1:0",
            "--identity",
            "scale-bench",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

/// The operator's requests grouped as `METHOD resource[/name][/sub][?selector|watch]=count`,
/// most frequent first: which requests a zone costs, and which of them grow with n.
fn request_kinds(records: &[zk_apiserver::RequestRecord]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for r in records {
        // /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>]] or /apis/<g>/<v>/namespaces/...
        let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let rest = match parts.iter().position(|p| *p == "namespaces") {
            Some(i) if parts.len() > i + 2 => &parts[i + 2..],
            _ => &parts[parts.len().saturating_sub(1)..],
        };
        let mut kind = format!("{} {}", r.method, rest.first().copied().unwrap_or_default());
        if rest.len() > 1 {
            kind.push_str("/name");
        }
        if let Some(sub) = rest.get(2) {
            kind.push_str(&format!("/{sub}"));
        }
        for key in ["watch=true", "labelSelector", "fieldSelector"] {
            if r.query.contains(key) {
                kind.push_str(&format!("?{}", key.trim_end_matches("=true")));
            }
        }
        *counts.entry(kind).or_default() += 1;
    }
    let mut sorted: Vec<(String, usize)> = counts.into_iter().collect();
    sorted.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    sorted
        .iter()
        .map(|(k, c)| format!("{}={c}", k.replace(' ', "_")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polls until `pred` holds; false if `deadline` passed first.
pub(super) async fn poll_until(deadline: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scale_scenario(n: usize, quiet: Duration) -> anyhow::Result<()> {
    let t = Instant::now();
    let bind = tokio::task::spawn_blocking(move || {
        DnsServer::start(
            ServerKind::Bind,
            &ZoneContent::new("scale-main.test.", vec![]),
            ServerOptions {
                extra_zones: (0..n).map(origin).collect(),
                query_log: true,
                ..ServerOptions::default()
            },
        )
    })
    .await?;
    println!(
        "bench-detail scale-zones-{n} bind_start_s={:.1}",
        t.elapsed().as_secs_f64()
    );
    let api = TestApiServer::start().await;
    api.install_crds(&zonekeeper::api::crd::crds()).await;
    let client = api.client().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    let k = &bind.key;
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "scale-tsig", "namespace": NS},
                "stringData": {"name": k.name, "algorithm": k.algorithm, "secret": k.secret_b64},
            }))?,
        )
        .await?;
    let zones: Api<DnsZone> = Api::namespaced(client.clone(), NS);
    let t = Instant::now();
    let manifests = (0..n)
        .map(|i| manifest(i, &bind))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let post = PostParams::default();
    let created: Vec<_> = futures::stream::iter(manifests.iter())
        .map(|z| zones.create(&post, z))
        .buffer_unordered(16)
        .collect()
        .await;
    for r in created {
        r?;
    }
    drop(manifests);
    println!(
        "bench-detail scale-zones-{n} create_s={:.1}",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let (requests_before, writes_before) = api.request_counts();
    let bind_pid = bind.pid().map(|p| p.to_string()).unwrap_or_default();
    let (self_cpu0, bind_cpu0) = (cpu_s("self"), cpu_s(&bind_pid));
    let started = Instant::now();
    let mut operator = start_operator(dir.path(), &api)?;
    let pid = operator.id();
    println!("bench-detail scale-zones-{n} operator_pid={pid}");
    let keys: Vec<(String, String)> = (0..n).map(|i| (NS.into(), format!("z{i}"))).collect();
    let ready_count = || api.count_objects("dns.zonekeeper.io", "dnszones", is_ready);
    // Generous: main took 245 s for 10k zones; a hung operator still ends the scenario.
    let deadline = Duration::from_secs(120) + Duration::from_millis(n as u64 * 60);
    // Woken by the server's own change events, not a timer: ready_s is when this task saw the
    // write that made the last zone Ready (all of them Ready at once), which a re-read of the
    // pending zones every 100 ms cost a quarter of this process's CPU to learn to within 100 ms.
    // Checked in full once more at the end.
    let waited = api
        .wait_all("dns.zonekeeper.io", "dnszones", &keys, is_ready, deadline)
        .await;
    let ready_s = started.elapsed().as_secs_f64();
    let all_ready = waited && ready_count() == n;
    let operator_cpu = cpu_s(&pid.to_string());
    let apiserver_cpu = cpu_s("self") - self_cpu0;
    let bind_cpu = cpu_s(&bind_pid) - bind_cpu0;
    let (requests, writes) = api.request_counts();
    println!(
        "bench-detail scale-zones-{n} requests_by_kind {}",
        request_kinds(&api.requests()[requests_before..requests])
    );
    if !all_ready {
        println!(
            "bench-detail scale-zones-{n} not all Ready: {} of {n} after {ready_s:.1} s (log: {})",
            ready_count(),
            dir.path().join("operator.log").display()
        );
    }

    // The quiet window: nothing changes, so nothing should be written or asked.
    let (q_requests0, q_writes0) = api.request_counts();
    let q_queries0 = bind.logged_queries();
    let q_cpu0 = cpu_s(&pid.to_string());
    tokio::time::sleep(quiet).await;
    let quiet_cpu = cpu_s(&pid.to_string()) - q_cpu0;
    let (q_requests, q_writes) = api.request_counts();
    let quiet_queries = bind.logged_queries() - q_queries0;
    let peak = peak_rss_mb(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || operator.wait()).await;

    let ready_field = if all_ready {
        format!("{ready_s:.1}")
    } else {
        format!("timeout>{ready_s:.0}")
    };
    println!(
        "bench scenario=scale-zones-{n} ready_s={ready_field} per_zone_ms={:.2} \
         peak_rss_mb={peak:.1} quiet_cpu_s={quiet_cpu:.2} quiet_api_writes={} \
         quiet_dns_queries={quiet_queries} quiet_s={} operator_cpu_s={operator_cpu:.1} \
         apiserver_cpu_s={apiserver_cpu:.1} bind_cpu_s={bind_cpu:.1} api_requests={} \
         api_writes={} quiet_api_requests={}",
        ready_s * 1000.0 / n as f64,
        q_writes - q_writes0,
        quiet.as_secs(),
        requests - requests_before,
        writes - writes_before,
        q_requests - q_requests0,
    );
    Ok(())
}
