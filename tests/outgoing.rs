//! Outgoing transfers through the operator: a BIND backend primary, zonekeeper's transfer
//! server as the hidden primary of NSD, Knot and BIND secondaries (each with its own key),
//! and `spec.outgoing` edits as the seed's operations.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::cluster::{Cluster, bind_serving, condition, outgoing_zone};
use support::dns_servers::{DnsServer, ServerKind, TsigKey, dig_transfer_at, free_port};
use zonekeeper::api::DnsZone;
use zonekeeper::api::dns_zone::{OutgoingTransferMethod, PeerState};

const WAIT: Duration = Duration::from_secs(60);
const ZONE: &str = "example.com.";

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn peers_at(zone: &DnsZone, serial: u32, state: PeerState) -> bool {
    zone.status
        .as_ref()
        .and_then(|s| s.outgoing.as_ref())
        .is_some_and(|o| {
            o.soa_serial == Some(i64::from(serial))
                && !o.peers.is_empty()
                && o.peers
                    .iter()
                    .all(|p| p.state == Some(state) && p.soa_serial == Some(i64::from(serial)))
        })
}

fn records(lines: Vec<String>) -> Vec<String> {
    let mut l: Vec<String> = lines
        .into_iter()
        .filter(|l| !l.contains("\tSOA\t") && !l.contains(" SOA "))
        .collect();
    l.sort();
    l
}

struct Peer {
    name: &'static str,
    server: DnsServer,
    key: TsigKey,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondaries_follow_the_backend_through_zonekeeper_and_status_shows_each_peer() {
    let backend = bind_serving(ZONE, &["www 300 A 192.0.2.10"]).await;
    let cluster = Cluster::start().await;
    cluster.secret("backend-tsig", &backend.key).await;
    let transfer: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let op = cluster
        .operator_serving("zk-0", None, cluster.client.clone(), Some(transfer))
        .await;

    // The secondaries pick their own ports and start only once they hold the zone: the zone
    // is served first to peers known by address and key (the port only says where NOTIFYs go),
    // and the ports are filled in after.
    let keys: Vec<(&str, ServerKind, TsigKey)> = [
        ("nsd", ServerKind::Nsd),
        ("knot", ServerKind::Knot),
        ("bind", ServerKind::Bind),
    ]
    .into_iter()
    .map(|(n, k)| (n, k, TsigKey::generate(&format!("{n}-xfr"), "hmac-sha256")))
    .collect();
    for (name, _, key) in &keys {
        cluster.secret(&format!("{name}-xfr"), key).await;
    }
    let spec_of = |ports: &[u16]| -> Vec<serde_json::Value> {
        keys.iter()
            .zip(ports)
            .map(|((n, _, _), port)| json!({"name": n, "address": format!("127.0.0.1:{port}"), "tsigKeySecretRef": {"name": format!("{n}-xfr")}}))
            .collect()
    };
    cluster
        .apply_zone(outgoing_zone(
            &backend,
            json!([{"name": "api", "type": "A", "data": ["192.0.2.20"]}]),
            json!({"enabled": true, "peers": spec_of(&[1, 1, 1]), "checkInterval": "2s"}),
        ))
        .await;
    let mut peers = Vec::new();
    for (name, kind, key) in &keys {
        let (kind, k) = (*kind, key.clone());
        let server = blocking(move || DnsServer::start_secondary_at(kind, transfer, ZONE, k)).await;
        peers.push(Peer {
            name,
            server,
            key: key.clone(),
        });
    }
    let ports: Vec<u16> = peers.iter().map(|p| p.server.addr.port()).collect();
    let peer_specs = spec_of(&ports);
    cluster
        .patch_spec(
            "out",
            json!({"outgoing": {"enabled": true, "peers": peer_specs, "checkInterval": "2s"}}),
        )
        .await;

    // Initial AXFR: every secondary serves exactly the backend's zone, at its serial.
    let zone = cluster
        .wait_zone("out", WAIT, |z| {
            z.status
                .as_ref()
                .and_then(|s| s.outgoing.as_ref())
                .and_then(|o| o.soa_serial)
                .is_some_and(|s| peers_at(z, s as u32, PeerState::InSync))
        })
        .await;
    let first = backend.soa_serial().unwrap();
    let served = zone.status.as_ref().unwrap().outgoing.as_ref().unwrap();
    let backend_records = records(backend.axfr_lines());
    assert!(backend_records.iter().any(|l| l.starts_with("api.")));
    for p in &peers {
        assert!(
            p.server
                .wait_for_serial(served.soa_serial.unwrap() as u32, WAIT)
        );
        assert_eq!(
            records(p.server.axfr_lines()),
            backend_records,
            "{}",
            p.name
        );
    }
    assert_eq!(
        condition(&zone, "Outgoing").unwrap(),
        ("True".into(), "PeersInSync".into())
    );
    assert!(served.created_time.is_some() && served.checked_time.is_some());

    // A change on the backend reaches every secondary, by IXFR from zonekeeper's backlog.
    backend.nsupdate(&format!("update add new.{ZONE} 300 A 192.0.2.99"));
    let second = backend.soa_serial().unwrap();
    assert_ne!(first, second);
    let zone = cluster
        .wait_zone("out", WAIT, |z| {
            peers_at(z, second, PeerState::InSync)
                && z.status
                    .as_ref()
                    .unwrap()
                    .outgoing
                    .as_ref()
                    .unwrap()
                    .peers
                    .iter()
                    .all(|p| p.last_transfer_method == Some(OutgoingTransferMethod::Ixfr))
        })
        .await;
    let out = zone.status.as_ref().unwrap().outgoing.as_ref().unwrap();
    assert!(out.ixfr_backlog >= 1, "{out:?}");
    assert!(out.last_transferred_time.is_some());
    for p in &peers {
        assert!(
            p.server
                .axfr_lines()
                .iter()
                .any(|l| l.starts_with(&format!("new.{ZONE}"))),
            "{}",
            p.name
        );
    }

    // The operator restarted between two changes: the saved version and backlog are served
    // again, so every peer's next transfer is still IXFR.
    op.stop().await;
    backend.nsupdate(&format!("update add later.{ZONE} 300 A 192.0.2.98"));
    let third = backend.soa_serial().unwrap();
    let restarted = k8s_openapi::jiff::Timestamp::now();
    let op = cluster
        .operator_serving("zk-1", None, cluster.client.clone(), Some(transfer))
        .await;
    cluster
        .wait_zone("out", WAIT, |z| {
            peers_at(z, third, PeerState::InSync)
                && z.status
                    .as_ref()
                    .unwrap()
                    .outgoing
                    .as_ref()
                    .unwrap()
                    .peers
                    .iter()
                    .all(|p| {
                        p.last_transfer_method == Some(OutgoingTransferMethod::Ixfr)
                            && p.last_transferred_time
                                .as_ref()
                                .is_some_and(|t| t.0.as_second() >= restarted.as_second())
                    })
        })
        .await;
    let second = third;

    // A stopped peer is Unreachable, named in the condition; back, it is InSync again.
    peers[0].server.pause(true);
    let zone = cluster
        .wait_zone("out", WAIT, |z| {
            condition(z, "Outgoing").is_some_and(|(s, r)| s == "False" && r == "PeersUnreachable")
        })
        .await;
    let message = zone
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Outgoing")
        .unwrap()
        .message
        .clone();
    assert!(message.contains("nsd"), "{message}");
    assert!(
        cluster
            .events_for("out")
            .iter()
            .any(|e| e.contains("peer nsd is Unreachable"))
    );
    peers[0].server.pause(false);
    cluster
        .wait_zone("out", WAIT, |z| {
            peers_at(z, second, PeerState::InSync)
                && condition(z, "Outgoing").is_some_and(|(s, _)| s == "True")
        })
        .await;

    // enabled: false → peers are refused, backlog 0.
    cluster
        .patch_spec(
            "out",
            json!({"outgoing": {"enabled": false, "peers": peer_specs, "checkInterval": "2s"}}),
        )
        .await;
    let zone = cluster
        .wait_zone("out", WAIT, |z| {
            condition(z, "Outgoing").is_some_and(|(_, r)| r == "Disabled")
        })
        .await;
    assert_eq!(
        zone.status
            .as_ref()
            .unwrap()
            .outgoing
            .as_ref()
            .unwrap()
            .ixfr_backlog,
        0
    );
    let key = peers[1].key.clone();
    let refused =
        blocking(move || dig_transfer_at(transfer, ZONE, Some(&key), "AXFR", &[], "127.0.0.1"))
            .await;
    assert!(refused.is_err(), "{refused:?}");

    // enabled again with a forceNotify value: every peer NOTIFYed, the time recorded.
    cluster
        .patch_spec("out", json!({"outgoing": {"enabled": true, "peers": peer_specs, "checkInterval": "2s", "forceNotify": "now-1"}}))
        .await;
    let zone = cluster
        .wait_zone("out", WAIT, |z| {
            let o = z.status.as_ref().and_then(|s| s.outgoing.as_ref());
            o.is_some_and(|o| {
                o.force_notified
                    .as_ref()
                    .is_some_and(|f| f.value == "now-1")
                    && o.peers.iter().all(|p| {
                        p.last_notified_time
                            .as_ref()
                            .is_some_and(|t| t.0 >= f_time(o))
                    })
            }) && peers_at(z, second, PeerState::InSync)
        })
        .await;
    let history: Vec<String> = zone
        .status
        .as_ref()
        .unwrap()
        .history
        .iter()
        .filter_map(|h| h.message.clone())
        .collect();
    for needle in ["configured", "disabled", "enabled", "NOTIFY forced"] {
        assert!(
            history.iter().any(|m| m.contains(needle)),
            "{needle}: {history:?}"
        );
    }

    // Removing spec.outgoing stops serving and removes status.outgoing.
    cluster.patch_spec("out", json!({"outgoing": null})).await;
    cluster
        .wait_zone("out", WAIT, |z| {
            z.status.as_ref().is_some_and(|s| s.outgoing.is_none())
                && condition(z, "Outgoing").is_none()
        })
        .await;
    let key = peers[2].key.clone();
    let refused =
        blocking(move || dig_transfer_at(transfer, ZONE, Some(&key), "AXFR", &[], "127.0.0.1"))
            .await;
    assert!(refused.is_err(), "{refused:?}");
    op.stop().await;
}

fn f_time(o: &zonekeeper::api::dns_zone::OutgoingStatus) -> k8s_openapi::jiff::Timestamp {
    o.force_notified
        .as_ref()
        .map(|f| f.time.0)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outgoing_example_applies_as_it_is() {
    let cluster = Cluster::start().await;
    cluster.namespace("default").await;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/outgoing-peers.yaml"),
    )
    .unwrap();
    let manifest: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let api: kube::Api<DnsZone> = kube::Api::namespaced(cluster.client.clone(), "default");
    let zone: DnsZone = serde_json::from_value(manifest).unwrap();
    let created = api
        .create(&kube::api::PostParams::default(), &zone)
        .await
        .unwrap();
    let out = created.spec.outgoing.unwrap();
    assert!(out.enabled);
    assert_eq!(out.peers.len(), 3);
    assert_eq!(out.check_interval.0, Duration::from_secs(60));
    // A peer address that is neither an IP, IP:port nor a network is refused at admission.
    let mut bad = zone.clone();
    bad.metadata.name = Some("bad-peer".into());
    bad.spec.outgoing.as_mut().unwrap().peers[0].address = "ns2.example.net:53".into();
    let err = api
        .create(&kube::api::PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("address"), "{err}");
}
