//! Benchmark of the DNS engine against real servers on loopback.
//!
//! Prints one line per scenario:
//! `bench scenario=<name> ours_s=<x> floor_s=<y> ratio=<x/y> peak_rss_mb=<z>`
//! where the floor is measured in the same run on the same server (`dig
//! axfr` / `kdig axfr`, single-record UPDATEs, `dig ixfr`). peak_rss_mb is
//! this process's peak resident memory during "ours" (reset before each;
//! the previous snapshot, built beforehand as a ZoneSync would hold it, counts).
//! `axfr-sync-*` is a ZoneSync's sync: transfer + zone model + diff against the previous
//! snapshot (`transfer::axfr_zone_diff`), until the zone and changes are in hand and freed;
//! `axfr-raw-*` is the transfer alone (records counted and dropped), whose
//! peak_rss_mb is the growth during the transfer.
//!
//! Run: `cargo bench --bench zonekeeper-bench [-- --max 1000000]`; `-- --zonesync`
//! runs only the ZoneSync scenarios (100k-record sync from Knot, then an IXFR sync of 10);
//! `-- --webhook` only `webhook-1000`: one edit of a 1,000-RRset DnsZone (with an ACL) sent
//! to both admission webhooks over HTTPS, a new TLS connection per call as kube-apiserver
//! makes when it has none idle; `bench scenario=webhook-1000 ours_ms=<median> p90_ms=<x>`.
//! `-- --acl` only the ACL review of a 1,000-RRset edit
//! (`bench scenario=acl-review-1000 ours_ms=<x>`, no server involved, no floor).
//! `-- --standalone` only the standalone commands on big zones (issue 18): `import-1m-bind`
//! and `plan-100k-records-{list,from}-bind`, the `zonekeeper` binary run as a user would,
//! its peak_rss_mb read by `/usr/bin/time`, the floor a `dig axfr` of the same zone (both
//! commands transfer the whole zone; a no-change plan then only compares).
//! `-- --scale [--scale-max N] [--scale-quiet S]` only the many-zones scenarios (issue 18,
//! benches/scenarios/scale.rs): `scale-zones-<n>`, n DnsZones Ready through `zonekeeper run`.
//! `-- --big [--big-max N]` only `operator-{100k,1m}`: one big recordsFrom zone Ready through
//! `zonekeeper run` beside the engine's own sync of it (benches/scenarios/big.rs).
//! `-- --octodns` only `peer-octodns-{apply,plan}-{10000,100000}`: the same work by octoDNS
//! (benches/scenarios/octodns.rs).
//! `-- --sync [--max N]` only `axfr-sync-*`/`axfr-raw-*` at 100k and 1M and the zone model's
//! bytes per RRset (benches/scenarios/mem.rs).

#![allow(clippy::print_stdout)]

#[path = "scenarios/mem.rs"]
mod mem;
#[path = "scenarios/octodns.rs"]
mod octodns;
#[path = "scenarios/plan.rs"]
mod plan;
#[path = "scenarios/snap.rs"]
mod snap;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use zk_fixtures::dns_servers::{
    DnsServer as Server, ServerKind as Kind, ServerOptions, TsigKey as FixtureKey, ZoneContent,
};
use zonekeeper::dns::model::Zone;
use zonekeeper::dns::query::{QueryOptions, query_soa};
use zonekeeper::dns::transfer::{IxfrOutcome, TransferOptions, axfr, axfr_zone_diff, ixfr};
use zonekeeper::dns::tsig::TsigKey;
use zonekeeper::dns::update::{RRsetChange, UpdateOptions, apply_changes};

#[path = "scenarios/axfr.rs"]
mod axfr;
#[path = "scenarios/big.rs"]
mod big;
#[path = "scenarios/scale.rs"]
mod scale;

const ZONE: &str = "bench.test.";

/// Our key type from the fixture server's.
fn key(server: &Server) -> anyhow::Result<TsigKey> {
    let k = &server.key;
    Ok(TsigKey::new(&k.name, &k.algorithm, &k.secret_b64)?)
}

/// `n` A records `h<i>` (the fixture adds SOA and NS).
fn start(kind: Kind, n: usize) -> Server {
    let lines = (0..n)
        .map(|i| {
            let [a, b, c, d] = ip(i);
            format!("h{i} 300 IN A {a}.{b}.{c}.{d}")
        })
        .collect();
    Server::start(
        kind,
        &ZoneContent::new(ZONE, lines),
        ServerOptions::default(),
    )
}

fn zone() -> anyhow::Result<Name> {
    Ok(Name::from_ascii(ZONE)?)
}

fn reset_peak() {
    // Linux: writing 5 resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn line(name: &str, ours: Duration, floor: Duration, peak: f64) {
    let (o, f) = (ours.as_secs_f64(), floor.as_secs_f64());
    println!(
        "bench scenario={name} ours_s={o:.4} floor_s={f:.4} ratio={:.3} peak_rss_mb={peak:.1}",
        if f > 0.0 { o / f } else { 0.0 }
    );
}

fn ip(i: usize) -> [u8; 4] {
    [
        10,
        ((i >> 16) & 255) as u8,
        ((i >> 8) & 255) as u8,
        (i & 255) as u8,
    ]
}

/// Wall time of an external transfer client writing to /dev/null.
fn external_axfr(tool: &str, server: &Server, qtype: &str) -> anyhow::Result<Duration> {
    external_xfr_at(tool, server.addr, &server.key, qtype)
}

/// Like [`external_axfr`], against any server.
fn external_xfr_at(
    tool: &str,
    addr: SocketAddr,
    key: &FixtureKey,
    qtype: &str,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let status = Command::new(tool)
        .arg("-p")
        .arg(addr.port().to_string())
        .arg("-y")
        .arg(key.dig_arg())
        .arg(format!("@{}", addr.ip()))
        .arg(ZONE)
        .arg(qtype)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "{tool} failed");
    Ok(t.elapsed())
}

/// AXFR into the zone model, diffed against the previous snapshot as it arrives: a
/// ZoneSync's sync. Returns the new snapshot, which a ZoneSync keeps (the previous one it
/// frees on a blocking thread), and the number of changes found.
async fn sync_once(server: &Server, k: &TsigKey, previous: &Zone) -> anyhow::Result<(Zone, usize)> {
    let opts = TransferOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    };
    let (observed, changes, _) = axfr_zone_diff(server.addr, previous, &opts).await?;
    Ok((observed, changes.len()))
}

/// The transfer alone: records counted and dropped as they arrive.
async fn raw_once(server: &Server, k: &TsigKey) -> anyhow::Result<u64> {
    let opts = TransferOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    };
    let mut n = 0u64;
    axfr(server.addr, &zone()?, &opts, &mut |_r: Record| {
        n += 1;
        Ok(())
    })
    .await?;
    Ok(n)
}

async fn axfr_scenario(kind: Kind, n: usize) -> anyhow::Result<()> {
    let server = start(kind, n);
    let k = key(&server)?;
    let z = zone()?;
    // The previous snapshot: the zone as the server holds it, SOA aside.
    let mut previous = Zone::new(z.clone());
    for i in 0..n {
        let [a, b, c, d] = ip(i);
        previous.insert(Record::from_rdata(
            Name::from_ascii(format!("h{i}.{ZONE}"))?,
            300,
            RData::A(A::new(a, b, c, d)),
        ));
    }
    previous.insert(Record::from_rdata(
        z.clone(),
        3600,
        RData::NS(hickory_proto::rr::rdata::NS(Name::from_ascii(
            "ns1.invalid.",
        )?)),
    ));
    let tool = if matches!(kind, Kind::Knot) {
        "kdig"
    } else {
        "dig"
    };
    // Warm the server once, then best of three for each, taken in turns: at 1M a single
    // run of each varied by ±5 % between runs, as much as the gap being measured.
    let runs = 3;
    external_axfr(tool, &server, "AXFR")?;
    let mut floor = Duration::MAX;
    let mut ours = Duration::MAX;
    let mut raw = Duration::MAX;
    let mut peak: f64 = 0.0;
    let mut raw_peak: f64 = 0.0;
    for _ in 0..runs {
        floor = floor.min(external_axfr(tool, &server, "AXFR")?);
        reset_peak();
        let base = peak_mb();
        let t = Instant::now();
        let count = raw_once(&server, &k).await?;
        raw = raw.min(t.elapsed());
        raw_peak = raw_peak.max(peak_mb() - base);
        anyhow::ensure!(count as usize == n + 2, "raw transfer counted {count}");
        reset_peak();
        let t = Instant::now();
        let (observed, changes) = sync_once(&server, &k, &previous).await?;
        ours = ours.min(t.elapsed());
        peak = peak.max(peak_mb());
        anyhow::ensure!(changes == 0, "{changes} differences on an identical zone");
        let got = observed.record_count();
        anyhow::ensure!(got == n + 2, "the sync observed {got} records");
    }
    let size = human(n);
    let kn = kind_name(kind);
    line(&format!("axfr-sync-{size}-{kn}"), ours, floor, peak);
    // peak_rss_mb here is the growth over the process's RSS at the start.
    line(&format!("axfr-raw-{size}-{kn}"), raw, floor, raw_peak);
    Ok(())
}

fn human(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{}m", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bind => "bind",
        Kind::Knot => "knot",
        Kind::Nsd => "nsd",
        Kind::PowerDns => "powerdns",
    }
}

fn adds(prefix: &str, n: usize) -> anyhow::Result<Vec<RRsetChange>> {
    (0..n)
        .map(|i| {
            let name = Name::from_ascii(format!("{prefix}{i}.{ZONE}"))?;
            let [a, b, c, d] = ip(i);
            Ok(RRsetChange {
                name: name.clone(),
                rtype: RecordType::A,
                old: vec![],
                new: vec![Record::from_rdata(name, 300, RData::A(A::new(a, b, c, d)))],
            })
        })
        .collect()
}

async fn update_scenario() -> anyhow::Result<()> {
    let server = start(Kind::Bind, 10_000);
    let k = key(&server)?;
    let z = zone()?;
    let opts = UpdateOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    };
    // Floor: the same number of changes, one UPDATE each, one at a time.
    let single = UpdateOptions {
        max_batch_bytes: 1,
        in_flight: 1,
        ..opts.clone()
    };
    let floor_changes = adds("s", 10_000)?;
    let t = Instant::now();
    let r = apply_single(&server, &z, &floor_changes, &single).await?;
    let floor = t.elapsed();
    anyhow::ensure!(r == 10_000, "floor applied {r}");
    let changes = adds("u", 10_000)?;
    reset_peak();
    let t = Instant::now();
    let report = apply_changes(server.addr, &z, &changes, &opts).await;
    let ours = t.elapsed();
    anyhow::ensure!(report.is_complete(), "{report:?}");
    line("update-10k-bind", ours, floor, peak_mb());
    Ok(())
}

/// One UPDATE per change (plan_batches puts an over-budget change alone in a
/// batch only if it fits 64 KiB, so send them one by one).
async fn apply_single(
    server: &Server,
    z: &Name,
    changes: &[RRsetChange],
    opts: &UpdateOptions,
) -> anyhow::Result<usize> {
    let opts = UpdateOptions {
        max_batch_bytes: 60_000,
        ..opts.clone()
    };
    let mut n = 0;
    for c in changes {
        let r = apply_changes(server.addr, z, std::slice::from_ref(c), &opts).await;
        anyhow::ensure!(r.is_complete(), "{r:?}");
        n += r.applied;
    }
    Ok(n)
}

/// The fastest of five IXFRs from serial `from`, each checked to carry exactly the 10 changes
/// made since; `before_each` runs before each (a floor tool's own IXFR, say).
async fn fastest_ixfr_of_10(
    addr: SocketAddr,
    zone: &Name,
    from: u32,
    opts: &TransferOptions,
    mut before_each: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let mut fastest = Duration::MAX;
    for _ in 0..5 {
        before_each()?;
        let t = Instant::now();
        let (outcome, _) = ixfr(addr, zone, from, opts, &mut |_| Ok(())).await?;
        fastest = fastest.min(t.elapsed());
        match outcome {
            IxfrOutcome::Incremental(steps) => {
                let n: usize = steps.iter().map(|s| s.added.len() + s.deleted.len()).sum();
                anyhow::ensure!(n == 10, "IXFR carried {n} records");
            }
            o => anyhow::bail!("expected incremental, got {o:?}"),
        }
    }
    Ok(fastest)
}

async fn ixfr_scenario(kind: Kind) -> anyhow::Result<()> {
    let server = start(kind, 100_000);
    let k = key(&server)?;
    let z = zone()?;
    let qo = QueryOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    };
    let from = query_soa(server.addr, &z, &qo).await?;
    let changes = adds("x", 10)?;
    let report = apply_changes(
        server.addr,
        &z,
        &changes,
        &UpdateOptions {
            tsig: Some(k.clone()),
            ..Default::default()
        },
    )
    .await;
    anyhow::ensure!(report.is_complete(), "{report:?}");
    let opts = TransferOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    };
    let tool = if matches!(kind, Kind::Knot) {
        "kdig"
    } else {
        "dig"
    };
    let mut floor = Duration::MAX;
    reset_peak();
    let ours = fastest_ixfr_of_10(server.addr, &z, from, &opts, || {
        floor = floor.min(external_axfr(tool, &server, &format!("IXFR={from}"))?);
        Ok(())
    })
    .await?;
    line(
        &format!("ixfr-10-on-100k-{}", kind_name(kind)),
        ours,
        floor,
        peak_mb(),
    );
    Ok(())
}

/// One HTTP/1.1 POST over a fresh TLS connection; the response body.
async fn https_post(
    addr: std::net::SocketAddr,
    tls: std::sync::Arc<rustls::ClientConfig>,
    path: &str,
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP response"))?;
    anyhow::ensure!(
        raw.starts_with(b"HTTP/1.1 200"),
        "webhook answered {:?}",
        String::from_utf8_lossy(&raw[..split])
    );
    Ok(raw[split + 4..].to_vec())
}

async fn webhook_scenario() -> anyhow::Result<()> {
    use rustls::pki_types::pem::PemObject;
    use serde_json::json;
    use zonekeeper::admission::{WebhookOptions, certs, server};

    let dir = tempfile::tempdir()?;
    let id = certs::generate(&["127.0.0.1".to_string()])?;
    std::fs::write(dir.path().join("tls.crt"), &id.cert_pem)?;
    std::fs::write(dir.path().join("tls.key"), &id.key_pem)?;
    // No API server is asked for a DnsZone edit: the client is never used.
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse()?))?;
    let opts = WebhookOptions {
        addr: "127.0.0.1:0".parse()?,
        cert_dir: Some(dir.path().to_path_buf()),
        url: None,
        namespace: "dns".into(),
        service: "zonekeeper-webhook".into(),
        secret: "unused".into(),
        mutating_configuration: "unused".into(),
        validating_configuration: "unused".into(),
        trusted_users: Vec::new(),
    };
    let started = server::start(client, &opts).await?;
    let mut roots = rustls::RootCertStore::empty();
    let ca = id.ca_pem.clone().unwrap_or_default();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(
        ca.as_bytes(),
    )?)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let zone = |www: &str| {
        let mut records: Vec<serde_json::Value> = (0..999)
            .map(|i| json!({"name": format!("host{i}"), "type": "A", "data": [format!("10.0.{}.{}", i / 250, i % 250)]}))
            .collect();
        records.push(json!({"name": "www", "type": "A", "data": [www]}));
        json!({"apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
            "metadata": {"name": "big", "namespace": "dns", "annotations": {"dns.zonekeeper.io/requested-by": "alice"}},
            "spec": {"zoneName": "example.com.", "type": "Primary", "ttl": 300,
                     "backend": {"server": "127.0.0.1:53"}, "adminGroup": "dns-admins",
                     "acl": {"rules": [{"accessLevel": "Write", "subjects": ["group:devs"],
                                        "recordMask": "^www", "recordTypes": ["A", "AAAA"]}]},
                     "records": records}})
    };
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "bench",
            "kind": {"group": "dns.zonekeeper.io", "version": "v1alpha1", "kind": "DnsZone"},
            "resource": {"group": "dns.zonekeeper.io", "version": "v1alpha1", "resource": "dnszones"},
            "name": "big", "namespace": "dns", "operation": "UPDATE",
            "userInfo": {"username": "bob", "groups": ["devs", "system:authenticated"]},
            "object": zone("192.0.2.2"), "oldObject": zone("192.0.2.1")}});
    let body = serde_json::to_vec(&review)?;
    let mut times = Vec::new();
    for i in 0..60 {
        let t = Instant::now();
        let m = https_post(started.addr, tls.clone(), "/mutate", &body).await?;
        let v = https_post(started.addr, tls.clone(), "/validate", &body).await?;
        let elapsed = t.elapsed();
        let (m, v): (serde_json::Value, serde_json::Value) =
            (serde_json::from_slice(&m)?, serde_json::from_slice(&v)?);
        anyhow::ensure!(
            m["response"]["allowed"] == true && v["response"]["allowed"] == true,
            "bob's www edit was not allowed: {v}"
        );
        // The first calls warm up (allocator, regex compilation); they are not counted.
        if i >= 10 {
            times.push(elapsed);
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "bench scenario=webhook-1000 ours_ms={:.2} p90_ms={:.2} request_kb={}",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        body.len() / 1024
    );
    started.serve.abort();
    Ok(())
}

/// The admission webhook's decision for a non-admin changing every RRset of a 1,000-RRset
/// shared zone with ten ACL rules: the per-request cost the webhook adds to a `kubectl apply`.
fn acl_scenario() -> anyhow::Result<()> {
    use zonekeeper::admission::acl::{Requester, Verdict, default_owner_groups, review_zone};
    use zonekeeper::api::dns_zone::DnsZoneSpec;
    let mut rules: Vec<serde_json::Value> = (0..9)
        .map(|i| {
            serde_json::json!({"accessLevel": "Delete", "subjects": [format!("group:team{i}")],
                "recordMask": format!("team{i}-.*")})
        })
        .collect();
    rules.push(
        serde_json::json!({"accessLevel": "Write", "subjects": ["group:devs"],
        "recordMask": "h[0-9]+", "recordTypes": ["A", "AAAA"]}),
    );
    let records = |ttl: u32| -> Vec<serde_json::Value> {
        (0..1000)
            .map(|i| {
                let [a, b, c, d] = ip(i);
                serde_json::json!({"name": format!("h{i}"), "type": "A", "ttl": ttl,
                    "data": [format!("{a}.{b}.{c}.{d}")], "ownerGroup": "ops"})
            })
            .collect()
    };
    let spec = |ttl: u32| -> anyhow::Result<DnsZoneSpec> {
        Ok(serde_json::from_value(serde_json::json!({
            "zoneName": ZONE, "type": "Primary", "backend": {"server": "127.0.0.1:53"},
            "adminGroup": "dns-admins", "shared": true, "acl": {"rules": rules},
            "records": records(ttl),
        }))?)
    };
    let (old, new) = (spec(300)?, spec(60)?);
    let groups = vec!["devs".to_string(), "system:authenticated".to_string()];
    let bob = Requester {
        username: "bob",
        groups: &groups,
    };
    let (mut best, mut best_fill) = (Duration::MAX, Duration::MAX);
    for _ in 0..50 {
        let mut new = new.clone();
        let t = Instant::now();
        default_owner_groups(Some(&old), &mut new, &bob);
        let filled = t.elapsed();
        let verdict = review_zone(Some(&old), &new, &bob);
        best = best.min(t.elapsed());
        best_fill = best_fill.min(filled);
        anyhow::ensure!(verdict == Verdict::Allowed, "{verdict:?}");
    }
    println!(
        "bench scenario=acl-review-1000 ours_ms={:.3}",
        best.as_secs_f64() * 1000.0
    );
    println!(
        "bench-detail owner_groups_ms={:.3}",
        best_fill.as_secs_f64() * 1000.0
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: cargo bench --bench zonekeeper-bench [-- --max N | --zonesync | --outgoing | --acl | --webhook | --standalone | --octodns]\n\
             \x20 --max N     skip scenarios with zones over N records (default 1000000)\n\
             \x20 --zonesync  only the ZoneSync scenarios (100k-record sync from Knot)\n\
             \x20 --outgoing  only the transfer server scenarios (AXFR to kdig vs Knot, IXFR, NOTIFY to 3 peers)\n\
             \x20 --acl       only the ACL review of a 1,000-RRset edit\n\
             \x20 --webhook   only the admission webhook answer for a 1,000-record zone edit\n\
             \x20 --standalone  only import/plan of big zones by the zonekeeper binary\n\
             \x20 --scale     only 1k/5k/10k DnsZones through the operator (--scale-max N, --scale-quiet S)\n\
             \x20 --big       only a 100k/1M-record zone through the operator (--big-max N)\n\
             \x20 --octodns   only zonekeeper apply/plan beside octoDNS 1.22 (installed under target/)\n\
             \x20 --sync      only the AXFR sync scenarios (100k, 1M up to --max) and the zone model's bytes per RRset"
        );
        return Ok(());
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this main with no
    // argument at all, and should not start a benchmark of several minutes.
    if args.len() == 1 {
        println!("zonekeeper-bench: run it with `cargo bench --bench zonekeeper-bench`");
        return Ok(());
    }
    if args.iter().any(|a| a == "--scale") {
        return scale::scale_scenarios(&args).await;
    }
    if args.iter().any(|a| a == "--big") {
        return big::big_scenarios(&args).await;
    }
    if args.iter().any(|a| a == "--zonesync") {
        return snap::zonesync_scenario(Kind::Knot).await;
    }
    if args.iter().any(|a| a == "--webhook") {
        return webhook_scenario().await;
    }
    acl_scenario()?;
    if args.iter().any(|a| a == "--acl") {
        return Ok(());
    }
    let max = args
        .iter()
        .position(|a| a == "--max")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1_000_000);
    let outgoing_sizes = [100_000, 1_000_000]
        .into_iter()
        .filter(|n| *n <= max.max(1));
    if args.iter().any(|a| a == "--outgoing") {
        // With --max below 100k, that size alone (a quick check of the scenario).
        let sizes: Vec<usize> = outgoing_sizes.collect();
        for n in if sizes.is_empty() { vec![max] } else { sizes } {
            axfr::outgoing_scenario(n).await?;
        }
        return axfr::propagate_scenario(10_000.min(max.max(1))).await;
    }
    if args.iter().any(|a| a == "--standalone") {
        return plan::standalone_scenarios(max).await;
    }
    if args.iter().any(|a| a == "--octodns") {
        return octodns::scenarios(max);
    }
    if args.iter().any(|a| a == "--sync") {
        return mem::sync_scenarios(&args, max).await;
    }
    // Small scenarios first: RSS freed by a big one is not always returned
    // to the OS, and the peak of a later scenario can only start there.
    webhook_scenario().await?;
    update_scenario().await?;
    ixfr_scenario(Kind::Bind).await?;
    ixfr_scenario(Kind::Knot).await?;
    for n in [10_000, 100_000, 1_000_000] {
        if n > max {
            continue;
        }
        for kind in [Kind::Knot, Kind::Bind] {
            axfr_scenario(kind, n).await?;
        }
    }
    for n in outgoing_sizes {
        axfr::outgoing_scenario(n).await?;
    }
    axfr::propagate_scenario(10_000.min(max.max(1))).await
}
