//! The DnsZone controller end to end: the real kube-runtime controller (`zonekeeper run`'s
//! engine) against the test API server, writing to real BIND and Knot servers.

mod support;

use std::time::Duration;

use serde_json::json;
use support::cluster::{Cluster, condition, has_reason, is_ready, zone_manifest};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};

const WAIT: Duration = Duration::from_secs(30);

fn mixed_records() -> serde_json::Value {
    json!([
        {"name": "@", "type": "MX", "data": ["10 mx1.example.com.", "20 mx2.example.com."]},
        {"name": "@", "type": "TXT", "data": ["v=spf1 mx -all"]},
        {"name": "@", "type": "CAA", "data": ["0 issue \"letsencrypt.org\""]},
        {"name": "www", "type": "A", "ttl": 60, "data": ["192.0.2.10", "192.0.2.11"]},
        {"name": "www", "type": "AAAA", "data": ["2001:db8::10"]},
        {"name": "mx1", "type": "A", "data": ["192.0.2.25"]},
        {"name": "mx2", "type": "A", "data": ["192.0.2.26"]},
        {"name": "blog", "type": "CNAME", "data": ["www.example.com."]},
        {"name": "_sip._tcp", "type": "SRV", "data": ["10 60 5060 sip.example.com."]},
        {"name": "sip", "type": "A", "data": ["192.0.2.50"]},
        {"name": "sub", "type": "NS", "data": ["ns1.sub.example.com."]},
        {"name": "ns1.sub", "type": "A", "data": ["192.0.2.53"]},
        {"name": "sub", "type": "DS", "data": ["12345 13 2 8F9C3C6E4D1A0B7E2F5A6C9D8E7F1A2B3C4D5E6F708192A3B4C5D6E7F8091A2B"]},
        {"name": "10", "type": "PTR", "data": ["www.example.com."]},
        {"name": "_443._tcp.www", "type": "TLSA", "data": ["3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"]},
        {"name": "host1", "type": "SSHFP", "data": ["4 2 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"]},
        {"name": "svc", "type": "SVCB", "data": ["1 svc-pool.example.com. alpn=h2"]},
        {"name": "app", "type": "HTTPS", "data": ["1 . alpn=h2,h3"]},
        {"name": "@", "type": "NAPTR", "data": ["100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.com."]},
        {"name": "txt", "type": "TXT", "data": ["\"hello world\" \"second\""]}
    ])
}

fn has(lines: &[String], owner: &str, rtype: &str, data: &str) -> bool {
    lines.iter().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 5
            && f[0].eq_ignore_ascii_case(owner)
            && f[3] == rtype
            && f[4..].join(" ").contains(data)
    })
}

async fn primary(kind: ServerKind) -> DnsServer {
    tokio::task::spawn_blocking(move || {
        DnsServer::start(
            kind,
            &ZoneContent::new("example.com.", vec![]),
            ServerOptions::default(),
        )
    })
    .await
    .unwrap()
}

async fn create_update_and_serve(kind: ServerKind) {
    let server = primary(kind).await;
    let cluster = Cluster::start().await;
    cluster.secret("example-tsig", &server.key).await;
    let op = cluster.operator("zk-0", None).await;
    cluster
        .apply_zone(zone_manifest("example", &server, mixed_records()))
        .await;
    let zone = cluster.wait_zone("example", WAIT, is_ready).await;
    let status = zone.status.clone().unwrap();

    // Everything is served, and status tells the server's truth.
    let lines = server.axfr_lines();
    for (owner, rtype, data) in [
        ("www.example.com.", "A", "192.0.2.11"),
        ("www.example.com.", "AAAA", "2001:db8::10"),
        ("example.com.", "MX", "20 mx2.example.com."),
        ("blog.example.com.", "CNAME", "www.example.com."),
        ("_sip._tcp.example.com.", "SRV", "5060 sip.example.com."),
        ("sub.example.com.", "DS", "12345 13 2"),
        ("app.example.com.", "HTTPS", "alpn"),
        ("example.com.", "NAPTR", "SIP+D2U"),
        ("txt.example.com.", "TXT", "\"hello world\" \"second\""),
    ] {
        assert!(
            has(&lines, owner, rtype, data),
            "{owner} {rtype} {data} not served:\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(status.serial, server.soa_serial().map(i64::from));
    assert_eq!(status.record_count, Some(lines.len() as i64));
    assert_eq!(status.history.len(), 1);
    assert_eq!(
        status.history[0].change_type,
        zonekeeper::api::shared::ChangeType::Create
    );
    assert_eq!(status.history[0].added, 20);
    assert_eq!(status.history[0].user_id.as_deref(), Some("kubectl"));
    assert!(has_reason(&zone, "BackendReachable", "Connected"));
    assert!(
        cluster
            .events_for("example")
            .iter()
            .any(|e| e.starts_with("Applied"))
    );

    // Edit: add, change TTL, change data, remove; plus a record added out of band.
    server.nsupdate("update add handmade.example.com. 300 IN TXT \"not ours\"\nsend\n");
    let mut records = mixed_records();
    let list = records.as_array_mut().unwrap();
    list.retain(|r| r["name"] != "host1"); // remove SSHFP
    list.push(json!({"name": "new", "type": "A", "data": ["192.0.2.99"]})); // add
    for r in list.iter_mut() {
        if r["name"] == "mx1" {
            r["ttl"] = json!(900); // TTL
        }
        if r["name"] == "sip" {
            r["data"] = json!(["192.0.2.51"]); // data
        }
    }
    cluster
        .patch_spec("example", json!({"records": records}))
        .await;
    let zone = cluster
        .wait_zone("example", WAIT, |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() == 2)
        })
        .await;
    let entry = &zone.status.as_ref().unwrap().history[0];
    assert_eq!(
        entry.change_type,
        zonekeeper::api::shared::ChangeType::Update
    );
    assert_eq!(
        (entry.added, entry.updated, entry.deleted),
        (1, 2, 1),
        "{entry:?}"
    );
    let lines = server.axfr_lines();
    assert!(has(&lines, "new.example.com.", "A", "192.0.2.99"));
    assert!(has(&lines, "sip.example.com.", "A", "192.0.2.51"));
    assert!(!has(&lines, "sip.example.com.", "A", "192.0.2.50"));
    assert!(
        lines.iter().any(
            |l| l.starts_with("mx1.example.com.") && l.split_whitespace().nth(1) == Some("900")
        )
    );
    assert!(!lines.iter().any(|l| l.contains("SSHFP")));
    assert!(
        has(&lines, "handmade.example.com.", "TXT", "not ours"),
        "unmanaged records stay"
    );

    // prune: true removes what nobody declared.
    cluster
        .patch_spec("example", json!({"management": {"prune": true}}))
        .await;
    cluster
        .wait_zone("example", WAIT, |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() == 3)
        })
        .await;
    assert!(!has(
        &server.axfr_lines(),
        "handmade.example.com.",
        "TXT",
        "not ours"
    ));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_is_created_updated_and_pruned_on_bind() {
    create_update_and_serve(ServerKind::Bind).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_is_created_updated_and_pruned_on_knot() {
    create_update_and_serve(ServerKind::Knot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_guard_refuses_then_allow_mass_deletion_lets_it_through() {
    let server = primary(ServerKind::Bind).await;
    let cluster = Cluster::start().await;
    cluster.secret("guarded-tsig", &server.key).await;
    let op = cluster.operator("zk-0", None).await;
    let many: Vec<_> = (0..30)
        .map(|i| json!({"name": format!("h{i}"), "type": "A", "data": [format!("192.0.2.{i}")]}))
        .collect();
    cluster
        .apply_zone(zone_manifest("guarded", &server, json!(many)))
        .await;
    cluster.wait_zone("guarded", WAIT, is_ready).await;

    cluster
        .patch_spec("guarded", json!({"records": many[..5].to_vec()}))
        .await;
    let zone = cluster
        .wait_zone("guarded", WAIT, |z| {
            has_reason(z, "Synced", "DeletionGuard")
        })
        .await;
    assert_eq!(
        condition(&zone, "Ready").unwrap(),
        ("False".into(), "DeletionGuard".into())
    );
    assert_eq!(
        server
            .axfr_lines()
            .iter()
            .filter(|l| l.starts_with('h'))
            .count(),
        30,
        "nothing applied"
    );
    assert!(
        cluster
            .events_for("guarded")
            .iter()
            .any(|e| e.starts_with("DeletionGuard") && e.contains("delete 25 of"))
    );

    cluster
        .patch_spec(
            "guarded",
            json!({"management": {"allowMassDeletion": true}}),
        )
        .await;
    cluster.wait_zone("guarded", WAIT, is_ready).await;
    assert_eq!(
        server
            .axfr_lines()
            .iter()
            .filter(|l| l.starts_with('h'))
            .count(),
        5
    );
    op.stop().await;
}
