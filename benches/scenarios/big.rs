//! `-- --big [--big-max N]`: one big zone through the operator (issue 18). For n in 100k / 1M
//! (`--big-max N` stops early): BIND serving n `host-<i> IN A` records, the records given to
//! a DnsZone as `recordsFrom` ConfigMaps cut as `zonekeeper import --out-dir` cuts them (the
//! test API server in this process), then `zonekeeper run` started as its own process and
//! timed from its start until the zone is Ready. Its peak RSS (VmHWM of its pid) is its own.
//! The floor is the engine's own sync of the same zone (AXFR into the model, diff against the
//! desired zone, as `axfr-sync-*`), with `dig axfr` alongside as `dig_s`.
//!
//! `bench scenario=operator-<n> ours_s= floor_s= ratio= operator_cpu_s=<start to Ready>
//! floor_cpu_s=<engine sync, this process> cpu_ratio= peak_rss_mb=<operator>
//! floor_rss_mb=<engine sync> apiserver_rss_mb=<this process> dig_s= configmaps=`, and a
//! `bench-detail` line with the operator's RSS second by second. On a loaded machine the wall
//! times move by 2x between runs; the CPU seconds much less.

use std::time::{Duration, Instant};

use hickory_proto::rr::rdata::{A, NS};
use hickory_proto::rr::{Name, RData, Record};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use zk_apiserver::TestApiServer;
use zonekeeper::api::DnsZone;
use zonekeeper::dns::model::Zone;

use super::scale::{cpu_s, is_ready, peak_rss_mb, poll_until, start_operator};
use super::{
    Kind, Server, ServerOptions, ZONE, ZoneContent, external_axfr, human, key, peak_mb, reset_peak,
    sync_once,
};

const NS_NAME: &str = "big";
const SIZES: [usize; 2] = [100_000, 1_000_000];
/// `$TTL` of the fixture's zone file: the same here, so the operator finds every record in
/// place instead of replacing n RRsets.
const TTL: u32 = zk_fixtures::dns_servers::DEFAULT_TTL;

pub async fn big_scenarios(args: &[String]) -> anyhow::Result<()> {
    let max = args
        .iter()
        .position(|a| a == "--big-max")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1_000_000);
    let mut sizes: Vec<usize> = SIZES.into_iter().filter(|n| *n <= max).collect();
    if sizes.is_empty() {
        sizes.push(max.max(1));
    }
    for n in sizes {
        big_scenario(n).await?;
    }
    Ok(())
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn ip(i: usize) -> [u8; 4] {
    [
        10,
        ((i >> 16) & 0xff) as u8,
        ((i >> 8) & 0xff) as u8,
        (i & 0xff) as u8,
    ]
}

fn line(i: usize) -> String {
    let [a, b, c, d] = ip(i);
    format!("host-{i} IN A {a}.{b}.{c}.{d}\n")
}

/// The zone as the operator will want it: the floor's sync diffs against it.
fn desired(n: usize) -> anyhow::Result<Zone> {
    let origin = Name::from_ascii(ZONE)?;
    let mut zone = Zone::new(origin.clone());
    for i in 0..n {
        let [a, b, c, d] = ip(i);
        zone.insert(Record::from_rdata(
            Name::from_ascii(format!("host-{i}.{ZONE}"))?,
            TTL,
            RData::A(A::new(a, b, c, d)),
        ));
    }
    zone.insert(Record::from_rdata(
        origin,
        TTL,
        RData::NS(NS(Name::from_ascii(zk_fixtures::dns_servers::DEFAULT_NS)?)),
    ));
    Ok(zone)
}

/// Zone text parts of at most `CONFIG_MAP_LIMIT` bytes, as `zonekeeper import --out-dir`.
fn parts(n: usize) -> Vec<String> {
    let limit = zonekeeper::standalone::import::CONFIG_MAP_LIMIT;
    let header = format!("$TTL {TTL}\n");
    let mut parts = vec![header.clone()];
    for i in 0..n {
        let l = line(i);
        if parts.last().is_some_and(|p| p.len() + l.len() > limit) {
            parts.push(header.clone());
        }
        if let Some(p) = parts.last_mut() {
            p.push_str(&l);
        }
    }
    parts
}

/// The engine's own sync of the zone (best of `runs`), its CPU seconds (this process, the
/// same run), its peak RSS (this process, the desired zone built beforehand counted, as in
/// `axfr-sync-*`) and `dig axfr`'s time.
async fn floor(server: &Server, n: usize) -> anyhow::Result<(Duration, f64, f64, Duration)> {
    let k = key(server)?;
    let desired = desired(n)?;
    let runs = if n >= 1_000_000 { 1 } else { 3 };
    external_axfr("dig", server, "AXFR")?;
    let (mut dig, mut sync, mut peak, mut cpu) = (Duration::MAX, Duration::MAX, 0.0f64, 0.0);
    for _ in 0..runs {
        dig = dig.min(external_axfr("dig", server, "AXFR")?);
        reset_peak();
        let (t, cpu_before) = (Instant::now(), cpu_s("self"));
        let (_snapshot, changes) = sync_once(server, &k, &desired).await?;
        if t.elapsed() < sync {
            (sync, cpu) = (t.elapsed(), cpu_s("self") - cpu_before);
        }
        peak = peak.max(peak_mb());
        anyhow::ensure!(changes == 0, "{changes} differences on an identical zone");
    }
    Ok((sync, cpu, peak, dig))
}

async fn setup_cluster(api: &TestApiServer, server: &Server, n: usize) -> anyhow::Result<usize> {
    let client = api.client().await;
    let pp = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": NS_NAME}}))?,
        )
        .await?;
    let k = &server.key;
    Api::<Secret>::namespaced(client.clone(), NS_NAME)
        .create(
            &pp,
            &serde_json::from_value(json!({
                "metadata": {"name": "big-tsig", "namespace": NS_NAME},
                "stringData": {"name": k.name, "algorithm": k.algorithm, "secret": k.secret_b64},
            }))?,
        )
        .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS_NAME);
    let texts = parts(n);
    let count = texts.len();
    for (p, text) in texts.into_iter().enumerate() {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("big-part{p}"), "namespace": NS_NAME},
            "data": {"zone": text},
        }))?;
        cms.create(&pp, &cm).await?;
    }
    let refs: Vec<Value> = (0..count)
        .map(|p| json!({"configMapRef": {"name": format!("big-part{p}"), "key": "zone"}}))
        .collect();
    let zone: DnsZone = serde_json::from_value(json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": "big", "namespace": NS_NAME},
        "spec": {
            "zoneName": ZONE,
            "type": "Primary",
            "ttl": TTL,
            "backend": {"server": server.addr.to_string(),
                        "tsigKeySecretRef": {"name": "big-tsig"}, "timeout": "60s"},
            "records": [],
            "recordsFrom": refs,
            "sync": {"interval": "1h", "minInterval": "0"},
        }
    }))?;
    Api::<DnsZone>::namespaced(client, NS_NAME)
        .create(&pp, &zone)
        .await?;
    Ok(count)
}

async fn big_scenario(n: usize) -> anyhow::Result<()> {
    let size = human(n);
    let t = Instant::now();
    let server = tokio::task::spawn_blocking(move || {
        let records = (0..n).map(|i| line(i).trim_end().to_string()).collect();
        Server::start(
            Kind::Bind,
            &ZoneContent::new(ZONE, records),
            ServerOptions::default(),
        )
    })
    .await?;
    println!(
        "bench-detail operator-{size} bind_start_s={:.1}",
        t.elapsed().as_secs_f64()
    );
    let (sync, floor_cpu, floor_rss, dig) = floor(&server, n).await?;

    let api = TestApiServer::start().await;
    api.install_crds(&zonekeeper::api::crd::crds()).await;
    let configmaps = setup_cluster(&api, &server, n).await?;

    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut operator = start_operator(dir.path(), &api)?;
    let pid = operator.id();
    // The operator's RSS by second (highest sample), to place its peak in the pass.
    let mut by_second: Vec<f64> = Vec::new();
    let ready = || {
        let second = started.elapsed().as_secs() as usize;
        if by_second.len() <= second {
            by_second.resize(second + 1, 0.0);
        }
        if let Some(slot) = by_second.get_mut(second) {
            *slot = slot.max(rss_mb(pid));
        }
        api.object("dns.zonekeeper.io", "dnszones", NS_NAME, "big")
            .is_some_and(|z| is_ready(&z))
    };
    // Generous: the debug build took 16 minutes at 1M; a hung operator still ends the run.
    let deadline = Duration::from_secs(120) + Duration::from_millis(n as u64 * 2);
    let is_ready_now = poll_until(deadline, ready).await;
    let ours = started.elapsed();
    let peak = peak_rss_mb(pid);
    let operator_cpu = cpu_s(&pid.to_string());
    let _ = operator.kill();
    let _ = tokio::task::spawn_blocking(move || operator.wait()).await;
    anyhow::ensure!(
        is_ready_now,
        "operator-{size}: not Ready after {:.0} s (log: {})",
        ours.as_secs_f64(),
        dir.keep().join("operator.log").display()
    );
    let apiserver = peak_rss_mb(std::process::id());
    let timeline: Vec<String> = by_second
        .iter()
        .enumerate()
        .map(|(s, mb)| format!("{s}:{mb:.0}"))
        .collect();
    println!(
        "bench-detail operator-{size} rss_mb_by_second={}",
        timeline.join(",")
    );
    let (o, f) = (ours.as_secs_f64(), sync.as_secs_f64());
    println!(
        "bench scenario=operator-{size} ours_s={o:.3} floor_s={f:.3} ratio={:.2} \
         operator_cpu_s={operator_cpu:.2} floor_cpu_s={floor_cpu:.2} cpu_ratio={:.2} \
         peak_rss_mb={peak:.1} floor_rss_mb={floor_rss:.1} apiserver_rss_mb={apiserver:.1} \
         dig_s={:.3} configmaps={configmaps}",
        if f > 0.0 { o / f } else { 0.0 },
        if floor_cpu > 0.0 {
            operator_cpu / floor_cpu
        } else {
            0.0
        },
        dig.as_secs_f64()
    );
    Ok(())
}
