//! Outgoing transfers with two replicas: the standby serves the version the leader saved
//! (so the Service may send a secondary to either), keeps serving while the leader dies and
//! it takes over, and then follows the backend itself. What the standby serves shows in the
//! leader's status.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::{Cluster, Operator, bind_serving, outgoing_zone};
use support::dns_servers::{DnsServer, ServerKind, TsigKey, dig_transfer_at, free_port};
use zonekeeper::api::DnsZone;
use zonekeeper::api::dns_zone::{OutgoingTransferMethod, PeerState};

const WAIT: Duration = Duration::from_secs(60);
const ZONE: &str = "example.com.";

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Polls `f` until it returns `Some`, failing after `deadline`.
async fn poll<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(t) = tokio::task::block_in_place(&mut f) {
            return t;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_soa(line: &str) -> bool {
    line.split_whitespace().nth(3) == Some("SOA")
}

fn records(lines: &[String]) -> Vec<String> {
    let mut l: Vec<String> = lines.iter().filter(|l| !is_soa(l)).cloned().collect();
    l.sort();
    l
}

fn soa_serial_of(lines: &[String]) -> Option<u32> {
    lines
        .iter()
        .find(|l| is_soa(l))
        .and_then(|l| l.split_whitespace().nth(6)?.parse().ok())
}

/// A whole-zone transfer from `addr` signed with `key`.
fn axfr(addr: SocketAddr, key: &TsigKey) -> Result<Vec<String>, String> {
    dig_transfer_at(addr, ZONE, Some(key), "AXFR", &["+onesoa"], "127.0.0.1")
}

fn peer_in_sync(zone: &DnsZone, serial: u32) -> bool {
    zone.status
        .as_ref()
        .and_then(|s| s.outgoing.as_ref())
        .is_some_and(|o| {
            o.soa_serial == Some(i64::from(serial))
                && o.peers.len() == 1
                && o.peers.iter().all(|p| {
                    p.state == Some(PeerState::InSync) && p.soa_serial == Some(i64::from(serial))
                })
        })
}

/// Peer nsd's last transfer as the leader's status shows it: (unix seconds, method).
fn nsd_transfer(zone: &DnsZone) -> Option<(i64, OutgoingTransferMethod)> {
    let peer = zone
        .status
        .as_ref()?
        .outgoing
        .as_ref()?
        .peers
        .iter()
        .find(|p| p.name == "nsd")?;
    Some((
        peer.last_transferred_time.as_ref()?.0.as_second(),
        peer.last_transfer_method?,
    ))
}

/// The writes `user` made, other than to its Lease.
fn writes_by(cluster: &Cluster, user: &str) -> Vec<String> {
    cluster
        .api
        .requests()
        .into_iter()
        .filter(|r| {
            r.user == user && r.is_write() && !r.path.starts_with("/apis/coordination.k8s.io/")
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn lease_calls_by(cluster: &Cluster, user: &str) -> usize {
    cluster
        .api
        .requests()
        .iter()
        .filter(|r| r.user == user && r.path.starts_with("/apis/coordination.k8s.io/"))
        .count()
}

fn is_leader(op: &Operator) -> bool {
    *op.leader.borrow()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_serves_the_saved_version_and_keeps_serving_while_it_takes_over() {
    let backend = bind_serving(ZONE, &["www 300 A 192.0.2.10"]).await;
    let cluster = Cluster::start().await;
    cluster.secret("backend-tsig", &backend.key).await;
    let lease = Duration::from_secs(3);
    let (addr_a, addr_b): (SocketAddr, SocketAddr) = (
        format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        format!("127.0.0.1:{}", free_port()).parse().unwrap(),
    );
    let a = cluster
        .operator_serving("zk-a", Some(lease), cluster.client_as("zk-a"), Some(addr_a))
        .await;
    let b = cluster
        .operator_serving("zk-b", Some(lease), cluster.client_as("zk-b"), Some(addr_b))
        .await;
    poll(WAIT, "one leader", || {
        (is_leader(&a) != is_leader(&b)).then_some(())
    })
    .await;
    let (leader, standby, standby_addr, standby_id) = if is_leader(&a) {
        (a, b, addr_b, "zk-b")
    } else {
        (b, a, addr_a, "zk-a")
    };

    let key = TsigKey::generate("nsd-xfr", "hmac-sha256");
    cluster.secret("nsd-xfr", &key).await;
    let outgoing = |port: u16| {
        json!({"enabled": true, "checkInterval": "2s", "peers": [
            {"name": "nsd", "address": format!("127.0.0.1:{port}"), "tsigKeySecretRef": {"name": "nsd-xfr"}}
        ]})
    };
    cluster
        .apply_zone(outgoing_zone(
            &backend,
            json!([{"name": "api", "type": "A", "data": ["192.0.2.20"]}]),
            outgoing(1),
        ))
        .await;

    // The standby never talked to the backend, yet serves exactly the backend's zone (once
    // zonekeeper's records are there), at the backend's serial.
    let mut seen = (None, None);
    let (first, served) = poll(WAIT, "the standby to serve the backend's version", || {
        let backend_serial = backend.soa_serial()?;
        let lines = axfr(standby_addr, &key).ok();
        let now = (
            Some(backend_serial),
            lines.as_ref().and_then(|l| soa_serial_of(l)),
        );
        if now != seen {
            eprintln!("backend serial, standby serial: {now:?}");
            seen = now;
        }
        let lines = lines?;
        (soa_serial_of(&lines) == Some(backend_serial)
            && lines.iter().any(|l| l.starts_with("api.")))
        .then_some((backend_serial, lines))
    })
    .await;
    assert_eq!(records(&served), records(&backend.axfr_lines()));
    let unsigned = dig_transfer_at(standby_addr, ZONE, None, "AXFR", &[], "127.0.0.1");
    assert!(unsigned.is_err(), "{unsigned:?}");

    // A secondary whose only primary is the standby: it holds the zone once started.
    let k = key.clone();
    let nsd =
        blocking(move || DnsServer::start_secondary_at(ServerKind::Nsd, standby_addr, ZONE, k))
            .await;
    cluster
        .patch_spec("out", json!({"outgoing": outgoing(nsd.addr.port())}))
        .await;
    cluster
        .wait_zone("out", WAIT, |z| peer_in_sync(z, first))
        .await;
    // Only the standby served nsd, yet the leader's status shows that transfer.
    let (axfr_at, _) = nsd_transfer(
        &cluster
            .wait_zone("out", WAIT, |z| {
                nsd_transfer(z).is_some_and(|(_, m)| m == OutgoingTransferMethod::Axfr)
            })
            .await,
    )
    .unwrap();

    // A change on the backend: the leader follows, saves, NOTIFYs; the secondary transfers
    // the new serial from the standby, by IXFR from the backlog the leader saved.
    backend.nsupdate(&format!("update add new.{ZONE} 300 A 192.0.2.99"));
    let second = backend.soa_serial().unwrap();
    assert_ne!(first, second);
    let peer = &nsd;
    assert!(
        tokio::task::block_in_place(|| peer.wait_for_serial(second, WAIT)),
        "{}",
        nsd.log()
    );
    let ixfr = dig_transfer_at(
        standby_addr,
        ZONE,
        Some(&key),
        &format!("IXFR={first}"),
        &[],
        "127.0.0.1",
    )
    .unwrap();
    assert!(
        ixfr.iter().filter(|l| is_soa(l)).count() >= 3
            && ixfr.iter().any(|l| l.starts_with(&format!("new.{ZONE}"))),
        "not an incremental answer: {ixfr:#?}"
    );
    cluster
        .wait_zone("out", WAIT, |z| peer_in_sync(z, second))
        .await;
    cluster
        .wait_zone("out", WAIT, |z| {
            nsd_transfer(z)
                .is_some_and(|(at, m)| m == OutgoingTransferMethod::Ixfr && at >= axfr_at)
        })
        .await;
    let published = writes_by(&cluster, standby_id);
    assert!(
        published
            .iter()
            .any(|w| w.contains("/configmaps/zonekeeper-outgoing-transfers-")),
        "the standby published nothing: {published:#?}"
    );

    // With nothing transferred the standby writes nothing: some window of more than two
    // publish periods (2 s), in which the standby was demonstrably running (it kept asking
    // for the lease), passes without a write.
    let end = Instant::now() + WAIT;
    loop {
        let before = writes_by(&cluster, standby_id);
        let leases = lease_calls_by(&cluster, standby_id);
        let window = Instant::now() + Duration::from_secs(5);
        poll(WAIT, "a window of the standby running", || {
            (Instant::now() >= window && lease_calls_by(&cluster, standby_id) >= leases + 3)
                .then_some(())
        })
        .await;
        let after = writes_by(&cluster, standby_id);
        if after.len() == before.len() {
            break;
        }
        assert!(
            Instant::now() < end,
            "the idle standby keeps writing: {:#?}",
            &after[before.len()..]
        );
    }

    // Kill the leader as a crash would: every transfer from the standby succeeds, at the
    // served serial, until it leads.
    leader.kill();
    let mut answered = 0;
    poll(WAIT, "the standby to lead", || {
        let lines = axfr(standby_addr, &key).expect("the standby keeps serving");
        assert_eq!(soa_serial_of(&lines), Some(second));
        answered += 1;
        is_leader(&standby).then_some(())
    })
    .await;
    assert!(answered >= 1);

    // Leading, it follows the backend itself: a new change reaches the secondary.
    backend.nsupdate(&format!("update add later.{ZONE} 300 A 192.0.2.98"));
    let third = backend.soa_serial().unwrap();
    assert!(
        tokio::task::block_in_place(|| peer.wait_for_serial(third, WAIT)),
        "{}",
        nsd.log()
    );
    cluster
        .wait_zone("out", WAIT, |z| peer_in_sync(z, third))
        .await;
    let lines = axfr(standby_addr, &key).unwrap();
    assert_eq!(records(&lines), records(&backend.axfr_lines()));
    standby.stop().await;
}
