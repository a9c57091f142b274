//! Outgoing transfers (issue 16), `-- --outgoing`:
//! - `outgoing-axfr-<n>-knot`: zonekeeper's transfer server serving the zone Knot serves
//!   (taken from Knot by AXFR, SOA included) to `kdig`, against Knot serving it to the
//!   same `kdig`.
//! - `outgoing-axfr-<n>-rss`: the zone's AXFR size (`wire_mb`), what the served version
//!   takes (`served_mb`, its wire-form buffers), and the RSS growth while serving an AXFR
//!   (`serve_growth_mb`).
//! - `outgoing-ixfr-10-on-<n>`: an IXFR of 10 changes from the backlog (target 5 ms).
//! - `outgoing-propagate-3-peers`: a change on the backend (BIND, NOTIFYing zonekeeper)
//!   until NSD, Knot and BIND, secondaries of zonekeeper, serve the new serial, following
//!   the operator's path (decode the served version, IXFR from the backend, publish,
//!   NOTIFY the peers, poll their SOA).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zk_fixtures::dns_servers::{
    DnsServer as Server, ServerKind as Kind, ServerOptions, TsigKey as FixtureKey, ZoneContent,
};
use zonekeeper::dns::outgoing::{
    NotifyRetry, NotifySources, PeerAuth, PeerSoa, TransferOptions as ServeOptions, TransferServer,
    check_peer_soa, notify_peers,
};
use zonekeeper::dns::transfer::{TransferOptions, axfr_zone, ixfr_refresh};
use zonekeeper::dns::tsig::TsigKey;
use zonekeeper::dns::update::{UpdateOptions, apply_changes};

use super::{ZONE, adds, external_xfr_at, human, key, line, peak_mb, reset_peak, start, zone};

fn mb(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub async fn outgoing_scenario(n: usize) -> anyhow::Result<()> {
    let knot = start(Kind::Knot, n);
    let k = key(&knot)?;
    let z = zone()?;
    let opts = TransferOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    };
    let (model, stats) = axfr_zone(knot.addr, &z, &opts).await?;
    let serial = model
        .soa_serial()
        .ok_or_else(|| anyhow::anyhow!("no SOA"))?;
    let server = TransferServer::start("127.0.0.1:0".parse()?, ServeOptions::default()).await?;
    let addr = server.local_addr();
    let handle = server.handle();
    handle.set_peers(
        &z,
        vec![PeerAuth {
            name: "kdig".into(),
            address: "127.0.0.1".parse()?,
            key: k.clone(),
        }],
    );
    handle.publish(model)?;
    let served = handle
        .served(&z)
        .ok_or_else(|| anyhow::anyhow!("not served"))?;
    let served_mb = mb(served.heap_bytes());
    drop(served);
    let fk = knot.key.clone();
    // kdig blocks: off the runtime's workers, which serve the transfer.
    let run = |addr: SocketAddr, qtype: String| {
        let fk = fk.clone();
        tokio::task::spawn_blocking(move || external_xfr_at("kdig", addr, &fk, &qtype))
    };
    run(knot.addr, "AXFR".into()).await??;
    run(addr, "AXFR".into()).await??;
    let runs = if n >= 1_000_000 { 1 } else { 3 };
    let mut floor = Duration::MAX;
    let mut ours = Duration::MAX;
    let mut serve_peak: f64 = 0.0;
    for _ in 0..runs {
        floor = floor.min(run(knot.addr, "AXFR".into()).await??);
        reset_peak();
        let base = peak_mb();
        ours = ours.min(run(addr, "AXFR".into()).await??);
        serve_peak = serve_peak.max(peak_mb() - base);
    }
    let size = human(n);
    let wire_mb = mb(stats.bytes as usize);
    // peak_rss_mb: growth while serving (the zone was published before).
    line(
        &format!("outgoing-axfr-{size}-knot"),
        ours,
        floor,
        serve_peak,
    );
    println!(
        "bench scenario=outgoing-axfr-{size}-rss wire_mb={wire_mb:.1} served_mb={served_mb:.1} \
         serve_growth_mb={serve_peak:.1} served_vs_wire={:.3}",
        (served_mb + serve_peak) / wire_mb
    );

    // The operator's path for a new version: the served one decoded, changed, published.
    let t = Instant::now();
    let served = handle
        .zone(&z)
        .ok_or_else(|| anyhow::anyhow!("not served"))?;
    // `zone()` decodes a fresh model: nobody else holds it.
    let mut next = std::sync::Arc::unwrap_or_clone(served);
    let decode = t.elapsed();
    for change in adds("x", 10)? {
        for record in change.new {
            next.insert(record);
        }
    }
    next.set_soa_serial(serial.wrapping_add(1));
    let t = Instant::now();
    let published = handle.publish(next)?;
    let publish = t.elapsed();
    anyhow::ensure!(published.journaled, "{published:?}");
    let ixfr_time = super::fastest_ixfr_of_10(addr, &z, serial, &opts, || Ok(())).await?;
    // The floor is the 5 ms target, not a measurement.
    line(
        &format!("outgoing-ixfr-10-on-{size}"),
        ixfr_time,
        Duration::from_millis(5),
        peak_mb(),
    );
    println!(
        "bench scenario=outgoing-publish-10-on-{size} ours_s={:.4} decode_s={:.4} \
         (served version decoded to a model; new version put in wire form and diffed into the backlog)",
        publish.as_secs_f64(),
        decode.as_secs_f64()
    );
    server.shutdown().await;
    Ok(())
}

/// Backend NOTIFY → every one of three peers serves the new serial.
pub async fn propagate_scenario(n: usize) -> anyhow::Result<()> {
    let z = zone()?;
    let server = TransferServer::start("127.0.0.1:0".parse()?, ServeOptions::default()).await?;
    let addr = server.local_addr();
    let handle = server.handle();
    let lines = (0..n)
        .map(|i| {
            let [a, b, c, d] = super::ip(i);
            format!("h{i} 300 IN A {a}.{b}.{c}.{d}")
        })
        .collect();
    let backend = Server::start(
        Kind::Bind,
        &ZoneContent::new(ZONE, lines),
        ServerOptions {
            notify_to: vec![addr],
            ..ServerOptions::default()
        },
    );
    let bk = key(&backend)?;
    let opts = TransferOptions {
        tsig: Some(bk.clone()),
        ..Default::default()
    };
    handle.set_notify_sources(
        &z,
        NotifySources {
            addresses: vec!["127.0.0.1".parse()?],
            keys: vec![bk.clone()],
        },
    );
    let (model, _) = axfr_zone(backend.addr, &z, &opts).await?;
    let first = model.soa_serial().unwrap_or(0);
    handle.publish(model)?;
    let kinds = [
        ("nsd", Kind::Nsd),
        ("knot", Kind::Knot),
        ("bind", Kind::Bind),
    ];
    let keys: Vec<FixtureKey> = kinds
        .iter()
        .map(|(name, _)| FixtureKey::generate(&format!("{name}-xfr"), "hmac-sha256"))
        .collect();
    let peer = |name: &str, address: String, k: &FixtureKey| -> anyhow::Result<PeerAuth> {
        Ok(PeerAuth {
            name: name.to_string(),
            address: address.parse()?,
            key: TsigKey::new(&k.name, &k.algorithm, &k.secret_b64)?,
        })
    };
    let all_local = kinds
        .iter()
        .zip(&keys)
        .map(|((name, _), k)| peer(name, "127.0.0.1".into(), k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    handle.set_peers(&z, all_local);
    let secondaries: Vec<Server> = tokio::task::block_in_place(|| {
        kinds
            .iter()
            .zip(&keys)
            .map(|((_, kind), k)| Server::start_secondary_at(*kind, addr, ZONE, k.clone()))
            .collect()
    });
    let peers = kinds
        .iter()
        .zip(&keys)
        .zip(&secondaries)
        .map(|(((name, _), k), s)| peer(name, s.addr.to_string(), k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    handle.set_peers(&z, peers.clone());
    let mut notifies = handle.incoming_notifies();
    // One change on the backend; the clock starts when its NOTIFY reaches zonekeeper.
    let update = UpdateOptions {
        tsig: Some(bk.clone()),
        ..Default::default()
    };
    let report = apply_changes(backend.addr, &z, &adds("p", 1)?, &update).await;
    anyhow::ensure!(
        report.applied == 1,
        "backend UPDATE failed: {:?}",
        report.failed
    );
    let started = loop {
        let notify = tokio::time::timeout(Duration::from_secs(30), notifies.recv()).await??;
        if notify.serial.is_none_or(|s| s != first) {
            break Instant::now();
        }
    };
    let served = handle
        .zone(&z)
        .ok_or_else(|| anyhow::anyhow!("not served"))?;
    let mut model = std::sync::Arc::unwrap_or_clone(served);
    ixfr_refresh(backend.addr, &mut model, &opts).await?;
    let serial = model
        .soa_serial()
        .ok_or_else(|| anyhow::anyhow!("no SOA"))?;
    anyhow::ensure!(serial != first, "the backend's change was not followed");
    handle.publish(model)?;
    notify_peers(&peers, &z, serial, NotifyRetry::default()).await;
    let deadline = started + Duration::from_secs(60);
    loop {
        let checks = futures::future::join_all(
            peers
                .iter()
                .map(|p| check_peer_soa(p, &z, Duration::from_secs(3))),
        )
        .await;
        if checks.iter().all(|c| *c == PeerSoa::Serial(serial)) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "peers did not follow: {checks:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    println!(
        "bench scenario=outgoing-propagate-3-peers ours_s={:.4} floor_s=2.0000 ratio={:.3} records={n}",
        took.as_secs_f64(),
        took.as_secs_f64() / 2.0
    );
    drop(secondaries);
    server.shutdown().await;
    Ok(())
}
