//! The DnsZone controller end to end: the real kube-runtime controller (`zonekeeper run`'s
//! engine) against the test API server, writing to real BIND and Knot servers.

mod support;

use std::time::Duration;

use serde_json::json;
use support::cluster::{Cluster, condition, has_reason, http_get, is_ready, zone_manifest};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};

// Generous: the machine is shared; passing tests return as soon as the condition holds.
const WAIT: Duration = Duration::from_secs(60);

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
    let (cluster, op) = Cluster::with_operator("example", &server).await;
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
    // Each apply is its own event with its own message, not a count on the first one.
    let applied: Vec<String> = cluster
        .events_for("example")
        .into_iter()
        .filter(|e| e.starts_with("Applied"))
        .collect();
    assert!(
        applied
            .iter()
            .any(|e| e.contains("applied 20 RRset change(s)"))
            && applied
                .iter()
                .any(|e| e.contains("applied 4 RRset change(s)")),
        "{applied:?}"
    );
    // One UPDATE pass, one event: published once, not a series of two.
    let repeated: Vec<_> = cluster
        .api
        .objects("events.k8s.io", "events")
        .into_iter()
        .filter(|e| e["regarding"]["name"] == "example" && e["reason"] == "Applied")
        .filter(|e| e["series"]["count"].as_i64().unwrap_or(1) > 1)
        .collect();
    assert!(repeated.is_empty(), "{repeated:?}");
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
    let (cluster, op) = Cluster::with_operator("guarded", &server).await;
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

async fn bind_with(opts: ServerOptions) -> DnsServer {
    tokio::task::spawn_blocking(move || {
        DnsServer::start(
            ServerKind::Bind,
            &ZoneContent::new("example.com.", vec![]),
            opts,
        )
    })
    .await
    .unwrap()
}

fn www() -> serde_json::Value {
    json!([{"name": "www", "type": "A", "data": ["192.0.2.10"]}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_unreachable_server_and_refused_transfer_become_conditions_and_recover() {
    let server = primary(ServerKind::Bind).await;
    let cluster = Cluster::start().await;
    let op = cluster.operator("zk-0", None).await;

    // Wrong TSIG secret: the server answers NOTAUTH/BADSIG.
    let mut wrong = server.key.clone();
    wrong.secret_b64 = "c2VjcmV0IHRoYXQgaXMgbm90IHRoZSBzZXJ2ZXIncyBrZXk=".into();
    cluster.secret("badkey-tsig", &wrong).await;
    cluster
        .apply_zone(zone_manifest("badkey", &server, www()))
        .await;
    let zone = cluster
        .wait_zone("badkey", WAIT, |z| {
            condition(z, "BackendReachable").is_some_and(|(s, _)| s == "False")
        })
        .await;
    let (_, reason) = condition(&zone, "BackendReachable").unwrap();
    assert!(
        matches!(reason.as_str(), "AuthFailed" | "NotAuth"),
        "{reason}"
    );
    let message = &zone
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(
        message.contains("example.com.") && message.contains(&server.addr.to_string()),
        "{message}"
    );
    assert!(
        cluster
            .events_for("badkey")
            .iter()
            .any(|e| e.starts_with(&reason)),
        "{:?}",
        cluster.events_for("badkey")
    );

    // Fixing the Secret is picked up without restarting anything.
    cluster.secret("badkey-tsig", &server.key).await;
    cluster.wait_zone("badkey", WAIT, is_ready).await;
    assert!(has(
        &server.axfr_lines(),
        "www.example.com.",
        "A",
        "192.0.2.10"
    ));

    // A server nobody listens on.
    cluster.secret("down-tsig", &server.key).await;
    let mut manifest = zone_manifest("down", &server, www());
    let closed = support::dns_servers::free_port();
    manifest["spec"]["backend"]["server"] = json!(format!("127.0.0.1:{closed}"));
    manifest["spec"]["zoneName"] = json!("down.example.");
    cluster.apply_zone(manifest).await;
    let zone = cluster
        .wait_zone("down", WAIT, |z| {
            condition(z, "BackendReachable").is_some_and(|(s, _)| s == "False")
        })
        .await;
    let (_, reason) = condition(&zone, "BackendReachable").unwrap();
    assert!(
        matches!(reason.as_str(), "ConnectionFailed" | "Timeout"),
        "{reason}"
    );
    // The other zone is not blocked by it.
    assert!(is_ready(&cluster.zones().get("badkey").await.unwrap()));

    // A missing Secret.
    let mut manifest = zone_manifest("nosecret", &server, www());
    manifest["spec"]["zoneName"] = json!("nosecret.example.");
    cluster.apply_zone(manifest).await;
    cluster
        .wait_zone("nosecret", WAIT, |z| {
            has_reason(z, "BackendReachable", "SecretNotFound")
        })
        .await;

    // Invalid records are refused by name, nothing is sent.
    cluster.secret("badrecords-tsig", &server.key).await;
    let mut manifest = zone_manifest(
        "badrecords",
        &server,
        json!([{"name": "bad", "type": "A", "data": ["192.0.2.300"]}]),
    );
    manifest["spec"]["zoneName"] = json!("badrecords.example.");
    cluster.apply_zone(manifest).await;
    let zone = cluster
        .wait_zone("badrecords", WAIT, |z| {
            has_reason(z, "Ready", "InvalidRecords")
        })
        .await;
    let ready = zone
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready
            .message
            .contains("records[0] (bad A): \"192.0.2.300\" is not an IPv4 address"),
        "{}",
        ready.message
    );
    op.stop().await;

    // Transfers refused: TransferAuthorized says so.
    let refusing = bind_with(ServerOptions {
        allow_transfer: false,
        ..ServerOptions::default()
    })
    .await;
    let cluster = Cluster::start().await;
    let op = cluster.operator("zk-1", None).await;
    cluster.secret("refused-tsig", &refusing.key).await;
    cluster
        .apply_zone(zone_manifest("refused", &refusing, www()))
        .await;
    let zone = cluster
        .wait_zone("refused", WAIT, |z| {
            has_reason(z, "TransferAuthorized", "TransferRefused")
        })
        .await;
    assert_eq!(condition(&zone, "BackendReachable").unwrap().0, "True");
    assert_eq!(
        condition(&zone, "Ready").unwrap(),
        ("False".into(), "TransferRefused".into())
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_corrected_or_reported_after_the_interval() {
    let server = primary(ServerKind::Bind).await;
    let (cluster, op) = Cluster::with_operator("drift", &server).await;
    let mut manifest = zone_manifest("drift", &server, www());
    manifest["spec"]["sync"] = json!({"interval": "1s", "minInterval": "0"});
    cluster.apply_zone(manifest).await;
    cluster.wait_zone("drift", WAIT, is_ready).await;

    // Correct (the default): the tampered record comes back.
    server.nsupdate("update delete www.example.com. A\nupdate add www.example.com. 300 IN A 203.0.113.66\nsend\n");
    let deadline = std::time::Instant::now() + WAIT;
    while !has(&server.axfr_lines(), "www.example.com.", "A", "192.0.2.10") {
        assert!(
            std::time::Instant::now() < deadline,
            "drift not corrected: {:?}",
            server.axfr_lines()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!has(
        &server.axfr_lines(),
        "www.example.com.",
        "A",
        "203.0.113.66"
    ));
    // The correction is zonekeeper's own, not the last spec author's.
    // Scheduled syncs add their own entries: look for the apply.
    let correction = |z: &zonekeeper::api::DnsZone| {
        z.status.as_ref().and_then(|s| {
            s.history
                .iter()
                .find(|h| h.change_type == zonekeeper::api::shared::ChangeType::Update)
                .cloned()
        })
    };
    let zone = cluster
        .wait_zone("drift", WAIT, |z| correction(z).is_some())
        .await;
    let entry = correction(&zone).unwrap();
    assert_eq!(entry.user_id.as_deref(), Some("zonekeeper"), "{entry:?}");
    assert!(
        entry
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("undid drift")),
        "{entry:?}"
    );

    // Report: the drift is shown, not corrected.
    cluster
        .patch_spec("drift", json!({"management": {"driftPolicy": "Report"}}))
        .await;
    cluster.wait_zone("drift", WAIT, is_ready).await;
    server.nsupdate("update delete www.example.com. A\nupdate add www.example.com. 300 IN A 203.0.113.77\nsend\n");
    let zone = cluster
        .wait_zone("drift", WAIT, |z| has_reason(z, "Synced", "Drifted"))
        .await;
    let drift = zone.status.unwrap().drift.unwrap();
    assert_eq!(drift.rrsets, 1);
    assert_eq!(drift.sample, vec!["www.example.com. A".to_string()]);
    assert!(
        has(
            &server.axfr_lines(),
            "www.example.com.",
            "A",
            "203.0.113.77"
        ),
        "reported, not corrected"
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_policies_conflicts_and_suspend() {
    let server = bind_with(ServerOptions {
        extra_zones: vec!["retain.example.".into(), "delete.example.".into()],
        ..ServerOptions::default()
    })
    .await;
    let cluster = Cluster::start().await;
    let op = cluster.operator("zk-0", None).await;
    for name in ["retain", "delete", "first", "second"] {
        cluster.secret(&format!("{name}-tsig"), &server.key).await;
    }
    server.nsupdate(
        "zone delete.example.\nupdate add theirs.delete.example. 300 IN TXT \"not ours\"\nsend\n",
    );
    for (name, policy) in [("retain", "Retain"), ("delete", "DeleteRecords")] {
        let mut m = zone_manifest(name, &server, www());
        m["spec"]["zoneName"] = json!(format!("{name}.example."));
        m["spec"]["deletionPolicy"] = json!(policy);
        cluster.apply_zone(m).await;
        cluster.wait_zone(name, WAIT, is_ready).await;
    }
    for name in ["retain", "delete"] {
        cluster
            .zones()
            .delete(name, &Default::default())
            .await
            .unwrap();
    }
    for name in ["retain", "delete"] {
        let start = std::time::Instant::now();
        while cluster.zones().get_opt(name).await.unwrap().is_some() {
            assert!(start.elapsed() < WAIT, "{name} never went away");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let dig = |zone: &str| {
        let out = std::process::Command::new("dig")
            .args([
                "+noall",
                "+answer",
                "-p",
                &server.addr.port().to_string(),
                "@127.0.0.1",
                "-y",
                &server.key.dig_arg(),
                zone,
                "AXFR",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(
        dig("retain.example.").contains("www.retain.example."),
        "Retain keeps the records"
    );
    let deleted = dig("delete.example.");
    assert!(
        !deleted.contains("www.delete.example."),
        "DeleteRecords removes managed records:\n{deleted}"
    );
    assert!(
        deleted.contains("theirs.delete.example."),
        "and leaves the others:\n{deleted}"
    );
    assert!(
        cluster
            .events_for("delete")
            .iter()
            .any(|e| e.starts_with("RecordsDeleted"))
    );

    // Two objects for one zone on one server: the older wins, the newer changes nothing.
    cluster
        .apply_zone(zone_manifest("first", &server, www()))
        .await;
    cluster.wait_zone("first", WAIT, is_ready).await;
    cluster
        .apply_zone(zone_manifest(
            "second",
            &server,
            json!([{"name": "www", "type": "A", "data": ["198.51.100.1"]}]),
        ))
        .await;
    cluster
        .wait_zone("second", WAIT, |z| has_reason(z, "Ready", "ZoneConflict"))
        .await;
    assert!(!has(
        &server.axfr_lines(),
        "www.example.com.",
        "A",
        "198.51.100.1"
    ));
    assert!(is_ready(&cluster.zones().get("first").await.unwrap()));

    // suspend: nothing applied while suspended, applied after.
    cluster.patch_spec("first", json!({"suspend": true})).await;
    let zone = cluster
        .wait_zone("first", WAIT, |z| has_reason(z, "Ready", "Suspended"))
        .await;
    assert_eq!(
        zone.status.unwrap().phase,
        Some(zonekeeper::api::dns_zone::ZonePhase::Suspended)
    );
    cluster
        .patch_spec(
            "first",
            json!({"records": [{"name": "www", "type": "A", "data": ["192.0.2.77"]}]}),
        )
        .await;
    cluster
        .wait_zone("first", WAIT, |z| {
            has_reason(z, "Ready", "Suspended")
                && z.status.as_ref().and_then(|s| s.observed_generation) == z.metadata.generation
        })
        .await;
    assert!(!has(
        &server.axfr_lines(),
        "www.example.com.",
        "A",
        "192.0.2.77"
    ));
    cluster.patch_spec("first", json!({"suspend": false})).await;
    cluster.wait_zone("first", WAIT, is_ready).await;
    assert!(has(
        &server.axfr_lines(),
        "www.example.com.",
        "A",
        "192.0.2.77"
    ));
    op.stop().await;
}

async fn metric(addr: std::net::SocketAddr, name: &str) -> f64 {
    let (_, body) = http_get(addr, "/metrics").await;
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_zones_reconcile_and_an_unchanged_pass_writes_nothing() {
    let origins: Vec<String> = (0..100).map(|i| format!("z{i}.example.")).collect();
    let server = bind_with(ServerOptions {
        extra_zones: origins.clone(),
        ..ServerOptions::default()
    })
    .await;
    let cluster = Cluster::start().await;
    let op = cluster.operator("zk-0", None).await;
    cluster.secret("many-tsig", &server.key).await;
    for (i, origin) in origins.iter().enumerate() {
        let mut m = zone_manifest(&format!("z{i}"), &server, www());
        m["spec"]["zoneName"] = json!(origin);
        m["spec"]["backend"]["tsigKeySecretRef"] = json!({"name": "many-tsig"});
        m["spec"]["sync"] = json!({"interval": "2s", "minInterval": "0"});
        cluster.apply_zone(m).await;
    }
    for i in 0..100 {
        cluster
            .wait_zone(&format!("z{i}"), Duration::from_secs(120), is_ready)
            .await;
    }
    let updates = metric(op.metrics_addr, "zonekeeper_update_messages_total").await;
    let reconciles = metric(
        op.metrics_addr,
        "zonekeeper_reconciles_total{kind=\"DnsZone\",result=\"ok\"",
    )
    .await;
    cluster.api.reset_requests();
    // Wait for a full second pass over every zone (requeued after the 2 s interval).
    let start = std::time::Instant::now();
    while metric(
        op.metrics_addr,
        "zonekeeper_reconciles_total{kind=\"DnsZone\",result=\"ok\"",
    )
    .await
        < reconciles + 100.0
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "second pass did not happen"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        metric(op.metrics_addr, "zonekeeper_update_messages_total").await,
        updates,
        "no UPDATE on an unchanged pass"
    );
    let writes: Vec<_> = cluster
        .api
        .requests()
        .into_iter()
        .filter(|r| r.is_write() && !r.path.contains("/events"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        writes.is_empty(),
        "an unchanged pass writes nothing: {writes:?}"
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_410_and_restarts_apply_nothing_twice_and_lose_no_history() {
    let server = primary(ServerKind::Bind).await;
    let (cluster, op) = Cluster::with_operator("restart", &server).await;
    cluster
        .apply_zone(zone_manifest("restart", &server, www()))
        .await;
    cluster.wait_zone("restart", WAIT, is_ready).await;
    let serial = server.soa_serial().unwrap();

    // Watches dropped and resource versions expired: the watcher relists, edits still land.
    cluster.api.expire_resource_versions();
    cluster.api.drop_watches();
    cluster
        .patch_spec(
            "restart",
            json!({"records": [{"name": "www", "type": "A", "data": ["192.0.2.20"]}]}),
        )
        .await;
    let zone = cluster
        .wait_zone("restart", WAIT, |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() == 2)
        })
        .await;
    assert!(has(
        &server.axfr_lines(),
        "www.example.com.",
        "A",
        "192.0.2.20"
    ));
    let serial_after_edit = server.soa_serial().unwrap();
    assert!(serial_after_edit > serial);

    // A restart of the operator: no UPDATE is sent again, history is kept as it was.
    op.stop().await;
    let op = cluster.operator("zk-0b", None).await;
    cluster
        .zones()
        .patch(
            "restart",
            &Default::default(),
            &kube::api::Patch::Merge(&json!({"metadata": {"annotations": {"touch": "1"}}})),
        )
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while metric(
        op.metrics_addr,
        "zonekeeper_reconciles_total{kind=\"DnsZone\",result=\"ok\"",
    )
    .await
        < 1.0
    {
        assert!(
            start.elapsed() < WAIT,
            "restarted operator never reconciled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = cluster.zones().get("restart").await.unwrap();
    assert_eq!(
        after.status.as_ref().unwrap().history,
        zone.status.as_ref().unwrap().history
    );
    assert_eq!(
        server.soa_serial().unwrap(),
        serial_after_edit,
        "nothing applied twice"
    );
    assert_eq!(
        metric(op.metrics_addr, "zonekeeper_update_messages_total").await,
        0.0
    );

    // Removing a record after the restart still deletes it: ownership survived.
    cluster
        .patch_spec(
            "restart",
            json!({"records": [{"name": "api", "type": "A", "data": ["192.0.2.30"]}]}),
        )
        .await;
    cluster
        .wait_zone("restart", WAIT, |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.history.len() == 3)
        })
        .await;
    let lines = server.axfr_lines();
    assert!(
        !has(&lines, "www.example.com.", "A", "192.0.2.20"),
        "{lines:?}"
    );
    assert!(has(&lines, "api.example.com.", "A", "192.0.2.30"));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_new_connection_is_not_taken() {
    let server = primary(ServerKind::Bind).await;
    let (cluster, op) = Cluster::with_operator("conn", &server).await;
    cluster
        .apply_zone(zone_manifest("conn", &server, www()))
        .await;
    cluster.wait_zone("conn", WAIT, is_ready).await;
    // VinylDNS Update Zone "400 connection failed": the new server is tested first and refused; the
    // zone keeps working through the last accepted connection.
    let dead = format!("127.0.0.1:{}", support::dns_servers::free_port());
    cluster
        .patch_spec("conn", json!({"backend": {"server": dead}, "records": [{"name": "www", "type": "A", "data": ["192.0.2.44"]}]}))
        .await;
    let zone = cluster
        .wait_zone("conn", WAIT, |z| {
            has_reason(z, "BackendReachable", "ConnectionFailed")
        })
        .await;
    assert_eq!(
        condition(&zone, "Ready").unwrap(),
        ("False".into(), "ConnectionFailed".into())
    );
    assert!(
        has(&server.axfr_lines(), "www.example.com.", "A", "192.0.2.44"),
        "applied through the accepted connection"
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_zone_is_watched_and_notified() {
    let primary_server = primary(ServerKind::Bind).await;
    let p = primary_server.addr;
    let secondary = tokio::task::spawn_blocking(move || {
        DnsServer::start(
            ServerKind::Knot,
            &ZoneContent::new("example.com.", vec![]),
            ServerOptions {
                secondary_of: Some(p),
                ..ServerOptions::default()
            },
        )
    })
    .await
    .unwrap();
    let cluster = Cluster::start().await;
    cluster.secret("sec-tsig", &secondary.key).await;
    let op = cluster.operator("zk-0", None).await;
    let manifest = json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": "sec", "namespace": support::cluster::NS},
        "spec": {
            "zoneName": "example.com.", "type": "Secondary",
            "masters": [primary_server.addr.to_string()],
            "backend": {"server": secondary.addr.to_string(), "tsigKeySecretRef": {"name": "sec-tsig"}, "timeout": "2s"},
            "sync": {"interval": "1s", "minInterval": "0"}
        }
    });
    cluster.apply_zone(manifest).await;
    let zone = cluster.wait_zone("sec", WAIT, is_ready).await;
    let serial = zone.status.unwrap().serial.unwrap();
    // The primary moves on without notifying (its fixture sends no NOTIFY); zonekeeper sees
    // the secondary lag, NOTIFYs it, and it catches up.
    primary_server.nsupdate("update add new.example.com. 300 IN A 192.0.2.1\nsend\n");
    let zone = cluster
        .wait_zone("sec", WAIT, |z| {
            is_ready(z)
                && z.status
                    .as_ref()
                    .and_then(|s| s.serial)
                    .is_some_and(|s| s > serial)
        })
        .await;
    assert!(zone.status.as_ref().unwrap().transferred_at.is_some());
    assert_eq!(secondary.soa_serial(), primary_server.soa_serial());
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_and_comes_back_recovers_without_a_restart() {
    let server = primary(ServerKind::Bind).await;
    let (cluster, op) = Cluster::with_operator("flaky", &server).await;
    let mut manifest = zone_manifest("flaky", &server, www());
    manifest["spec"]["backend"]["timeout"] = json!("500ms");
    cluster.apply_zone(manifest).await;
    cluster.wait_zone("flaky", WAIT, is_ready).await;

    server.pause(true);
    cluster
        .patch_spec(
            "flaky",
            json!({"records": [{"name": "www", "type": "A", "data": ["192.0.2.88"]}]}),
        )
        .await;
    let zone = cluster
        .wait_zone("flaky", WAIT, |z| {
            has_reason(z, "BackendReachable", "Timeout")
        })
        .await;
    assert_eq!(
        zone.status.unwrap().phase,
        Some(zonekeeper::api::dns_zone::ZonePhase::Error)
    );
    assert!(
        cluster
            .events_for("flaky")
            .iter()
            .any(|e| e.starts_with("Timeout"))
    );

    server.pause(false);
    cluster
        .wait_zone("flaky", Duration::from_secs(60), is_ready)
        .await;
    assert!(has(
        &server.axfr_lines(),
        "www.example.com.",
        "A",
        "192.0.2.88"
    ));
    op.stop().await;
}

/// Polls `/metrics` until `check` holds on the whole text.
async fn metrics_until(addr: std::net::SocketAddr, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, body) = http_get(addr, "/metrics").await;
        if check(&body) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}; /metrics:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_dns_failures_as_errors_track_readiness_and_forget_deleted_zones() {
    let server = primary(ServerKind::Bind).await;
    let (cluster, op) = Cluster::with_operator("metered", &server).await;
    let mut manifest = zone_manifest("metered", &server, www());
    manifest["spec"]["backend"]["timeout"] = json!("500ms");
    cluster.apply_zone(manifest).await;
    cluster.wait_zone("metered", WAIT, is_ready).await;
    let not_ready = format!(
        "zonekeeper_zones_not_ready{{namespace=\"{}\"}} ",
        support::cluster::NS
    );
    let series = |body: &str, prefix: &str| -> Option<f64> {
        body.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let of_zone = |body: &str| {
        body.lines()
            .any(|l| l.starts_with("zonekeeper_zone_records{") && l.contains("name=\"metered\""))
    };
    metrics_until(op.metrics_addr, "a Ready zone counts as Ready", |b| {
        series(b, &not_ready) == Some(0.0) && of_zone(b)
    })
    .await;

    // The backend stops answering: the pass fails on the DNS side, which is an error with the
    // condition's reason, not a successful reconcile.
    server.pause(true);
    cluster
        .patch_spec(
            "metered",
            json!({"records": [{"name": "www", "type": "A", "data": ["192.0.2.88"]}]}),
        )
        .await;
    let zone = cluster
        .wait_zone("metered", WAIT, |z| {
            has_reason(z, "BackendReachable", "Timeout")
        })
        .await;
    let reason = condition(&zone, "Ready").unwrap().1;
    let failed = format!(
        "zonekeeper_reconciles_total{{kind=\"DnsZone\",result=\"error\",reason=\"{reason}\"}} "
    );
    metrics_until(
        op.metrics_addr,
        "the failed pass is counted as an error with its reason and the zone as not Ready",
        |b| series(b, &failed).is_some_and(|n| n >= 1.0) && series(b, &not_ready) == Some(1.0),
    )
    .await;

    server.pause(false);
    cluster
        .wait_zone("metered", Duration::from_secs(60), is_ready)
        .await;
    metrics_until(op.metrics_addr, "the recovered zone is Ready again", |b| {
        series(b, &not_ready) == Some(0.0)
    })
    .await;

    // Deleted: its per-zone series go with it.
    cluster
        .zones()
        .delete("metered", &Default::default())
        .await
        .unwrap();
    metrics_until(op.metrics_addr, "the deleted zone's series are gone", |b| {
        !of_zone(b) && series(b, &not_ready) == Some(0.0)
    })
    .await;
    op.stop().await;
}

/// The served SOA as `dig` prints it: `(ttl, rname)`.
fn served_soa(server: &DnsServer) -> (u32, String) {
    let out = std::process::Command::new("dig")
        .args(["+noall", "+answer", "+time=5", "+tries=1"])
        .arg(format!("@{}", server.addr.ip()))
        .args(["-p", &server.addr.port().to_string(), &server.zone, "SOA"])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert!(f.len() >= 7 && f[3] == "SOA", "dig: {line}");
    (f[1].parse().unwrap(), f[5].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_and_ttl_edited_with_kubectl_reach_the_served_soa() {
    let server = primary(ServerKind::Bind).await;
    let (cluster, op) = Cluster::with_operator("soa", &server).await;
    // The fixture serves `hostmaster.example.com.` with TTL 3600; the manifest asks TTL 300
    // and gives no email, so the RNAME stays the server's.
    cluster
        .apply_zone(zone_manifest("soa", &server, www()))
        .await;
    let zone = cluster.wait_zone("soa", WAIT, is_ready).await;
    let status = zone.status.unwrap();
    assert_eq!(served_soa(&server), (300, "hostmaster.example.com.".into()));
    assert_eq!(status.ttl, Some(300));
    assert_eq!(status.email.as_deref(), Some("hostmaster@example.com"));
    assert_eq!(status.serial, server.soa_serial().map(i64::from));

    cluster
        .patch_spec(
            "soa",
            json!({"email": "first.last@example.com", "ttl": 600}),
        )
        .await;
    let zone = cluster
        .wait_zone("soa", WAIT, |z| {
            is_ready(z) && z.status.as_ref().is_some_and(|s| s.ttl == Some(600))
        })
        .await;
    let status = zone.status.unwrap();
    assert_eq!(
        served_soa(&server),
        (600, "first\\.last.example.com.".into())
    );
    assert_eq!(status.email.as_deref(), Some("first.last@example.com"));
    assert_eq!(status.serial, server.soa_serial().map(i64::from));
    let entry = &status.history[0];
    assert_eq!(
        entry.change_type,
        zonekeeper::api::shared::ChangeType::Update
    );
    assert_eq!(entry.serial_after, status.serial);
    assert!(
        entry
            .sample
            .iter()
            .any(|l| l
                .starts_with("+ example.com. 600 IN SOA ns1.invalid. first\\.last.example.com.")),
        "{entry:?}"
    );
    // The record without a TTL of its own follows spec.ttl too.
    assert!(
        server
            .axfr_lines()
            .iter()
            .any(|l| l.starts_with("www.example.com. 600 IN A")),
        "{:?}",
        server.axfr_lines()
    );

    // Someone edits the SOA on the server: drift, put back like a managed RRset.
    let serial = server.soa_serial().unwrap();
    server.nsupdate(&format!(
        "update add example.com. 3600 SOA ns1.invalid. other.example.net. {} 3600 600 86400 60\n",
        serial + 1
    ));
    cluster
        .patch_spec("soa", json!({"description": "poke"}))
        .await;
    cluster
        .wait_zone("soa", WAIT, |z| {
            z.status.as_ref().is_some_and(|s| {
                s.serial.is_some_and(|n| n > i64::from(serial) + 1) && s.ttl == Some(600)
            })
        })
        .await;
    assert_eq!(
        served_soa(&server),
        (600, "first\\.last.example.com.".into())
    );
    op.stop().await;
}

/// The DnsZones' Events are the objects kube-runtime's `Recorder` makes: an exact repeat about
/// the same object version is counted on the first event (a series), another reason, or the
/// same one about a newer version of the object, is an event of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_events_count_exact_repeats_as_a_series() {
    use k8s_openapi::api::core::v1::ObjectReference;
    use kube::runtime::events::{Event, EventType, Reporter};
    use zonekeeper::controller::events::ZoneEvents;

    let cluster = Cluster::start().await;
    let reporter = Reporter {
        controller: "zonekeeper".into(),
        instance: Some("zk-events".into()),
    };
    let events = ZoneEvents::new(cluster.client.clone(), reporter);
    let regarding = |rv: &str| ObjectReference {
        api_version: Some("dns.zonekeeper.io/v1alpha1".into()),
        kind: Some("DnsZone".into()),
        name: Some("evz".into()),
        namespace: Some("default".into()),
        uid: Some("uid-1".into()),
        resource_version: Some(rv.into()),
        ..ObjectReference::default()
    };
    let event = |reason: &str| Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(format!("{reason} happened")),
        action: "Reconcile-0000".into(),
        secondary: None,
    };
    let key = "default/evz";
    // Three exact repeats, another reason, then the first reason about a newer version.
    for (reason, version) in [
        ("Unreachable", "1"),
        ("Unreachable", "1"),
        ("Unreachable", "1"),
        ("Refused", "1"),
        ("Unreachable", "2"),
    ] {
        events
            .publish(key, &event(reason), &regarding(version))
            .await
            .unwrap();
    }
    let mut seen: Vec<(String, String, i64)> = cluster
        .api
        .objects("events.k8s.io", "events")
        .into_iter()
        .filter(|e| e["regarding"]["name"] == "evz")
        .map(|e| {
            assert_eq!(e["reportingController"], "zonekeeper");
            assert_eq!(e["reportingInstance"], "zk-events");
            assert_eq!(e["type"], "Warning");
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["regarding"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["series"]["count"].as_i64().unwrap_or(1),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("Refused".into(), "1".into(), 1),
            ("Unreachable".into(), "1".into(), 3),
            ("Unreachable".into(), "2".into(), 1),
        ]
    );
}
