//! Checks the DNS server fixtures themselves: every other DNS test trusts them.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use support::dns_servers::{
    DnsServer, NotifyListener, ServerKind, ServerOptions, Transport, TsigKey, ZoneContent,
    port_closed, send_notify,
};

const ORIGIN: &str = "example.com.";

fn small_zone() -> ZoneContent {
    ZoneContent::new(
        ORIGIN,
        vec![
            "@ 300 IN SOA ns1 hostmaster 2024010101 3600 600 86400 60".into(),
            "@ 300 IN NS ns1.example.net.".into(),
            "www 300 IN A 192.0.2.1".into(),
            "www.example.com. 300 IN AAAA 2001:db8::1".into(),
            "txt 60 TXT \"hello world\"".into(),
            "mail IN MX 10 mx.example.net.".into(),
        ],
    )
}

/// The small zone as dig prints it.
fn small_zone_expected() -> BTreeSet<String> {
    [
        "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 60",
        "example.com. 300 IN NS ns1.example.net.",
        "www.example.com. 300 IN A 192.0.2.1",
        "www.example.com. 300 IN AAAA 2001:db8::1",
        "txt.example.com. 60 IN TXT \"hello world\"",
        "mail.example.com. 3600 IN MX 10 mx.example.net.",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn serves_small_zone(kind: ServerKind) {
    let server = DnsServer::start(kind, &small_zone(), ServerOptions::default());
    assert_eq!(server.soa_serial(), Some(2024010101), "{}", server.log());
    let lines = server.axfr_lines();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(lines[0].contains(" SOA "), "SOA first: {lines:#?}");
    let got: BTreeSet<String> = lines.into_iter().collect();
    assert_eq!(got, small_zone_expected());
}

#[test]
fn bind_serves_small_zone() {
    serves_small_zone(ServerKind::Bind);
}

#[test]
fn knot_serves_small_zone() {
    serves_small_zone(ServerKind::Knot);
}

#[test]
fn nsd_serves_small_zone() {
    serves_small_zone(ServerKind::Nsd);
}

#[test]
fn missing_soa_and_ns_are_added() {
    for kind in ServerKind::ALL {
        missing_soa_and_ns_are_added_on(kind);
    }
}

fn missing_soa_and_ns_are_added_on(kind: ServerKind) {
    let zone = ZoneContent::new("example.org", vec!["www A 192.0.2.7".into()]);
    assert_eq!(zone.expected_record_count(), 3);
    let server = DnsServer::start(kind, &zone, ServerOptions::default());
    assert_eq!(server.soa_serial(), Some(1), "{kind:?}");
    let got: BTreeSet<String> = server.axfr_lines().into_iter().collect();
    let want: BTreeSet<String> = [
        "example.org. 3600 IN SOA ns1.invalid. hostmaster.example.org. 1 3600 600 86400 60",
        "example.org. 3600 IN NS ns1.invalid.",
        "www.example.org. 3600 IN A 192.0.2.7",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want, "{kind:?}");
}

#[test]
fn generated_100k_zone_is_served_complete() {
    let zone = ZoneContent::generated(ORIGIN, 100_000);
    assert_eq!(zone.expected_record_count(), 100_002);
    for kind in ServerKind::ALL {
        let server = DnsServer::start(kind, &zone, ServerOptions::default());
        let lines = server.axfr_lines();
        assert_eq!(lines.len(), 100_002, "{kind:?}");
        let distinct: BTreeSet<&String> = lines.iter().collect();
        assert_eq!(distinct.len(), 100_002, "{kind:?}: duplicates");
        assert!(lines.contains(&"r99999.example.com. 3600 IN A 10.1.134.159".to_string()));
        assert!(lines.contains(&"r4.example.com. 3600 IN AAAA 2001:db8::4".to_string()));
        assert!(lines.contains(&"r5.example.com. 3600 IN TXT \"value 5\"".to_string()));
    }
}

#[test]
fn generating_a_million_records_is_fast() {
    let start = Instant::now();
    let zone = ZoneContent::generated(ORIGIN, 1_000_000);
    assert_eq!(zone.records.len(), 1_000_002);
    // Debug build on a shared 2-core machine: generous, but catches quadratic work.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

fn nsupdate_changes_serial(kind: ServerKind) {
    let key = TsigKey::generate("update-key", "hmac-sha512");
    let server = DnsServer::start(
        kind,
        &small_zone(),
        ServerOptions {
            key: Some(key),
            ..Default::default()
        },
    );
    server.nsupdate("update add new.example.com. 120 IN A 192.0.2.99\n");
    assert!(
        server.wait_for_serial(2024010102, Duration::from_secs(10)),
        "serial {:?}\n{}",
        server.soa_serial(),
        server.log()
    );
    let lines = server.axfr_lines();
    assert!(lines.contains(&"new.example.com. 120 IN A 192.0.2.99".to_string()));
    assert_eq!(lines.len(), 7);
}

#[test]
fn bind_nsupdate_changes_serial() {
    nsupdate_changes_serial(ServerKind::Bind);
}

#[test]
fn knot_nsupdate_changes_serial() {
    nsupdate_changes_serial(ServerKind::Knot);
}

#[test]
fn update_refused_when_not_allowed() {
    for kind in [ServerKind::Bind, ServerKind::Knot] {
        let server = DnsServer::start(
            kind,
            &small_zone(),
            ServerOptions {
                allow_update: false,
                ..Default::default()
            },
        );
        let err = server
            .try_nsupdate("update add new.example.com. 120 IN A 192.0.2.99\n")
            .unwrap_err();
        // BIND answers REFUSED; Knot NOTAUTH/BADKEY for a signed request no ACL allows.
        assert!(
            err.contains("REFUSED") || err.contains("NOTAUTH"),
            "{kind:?}: {err}"
        );
        assert_eq!(server.soa_serial(), Some(2024010101));
    }
}

/// The secondary transfers on start, and a NOTIFY from 127.0.0.1 makes it pick up
/// a change at once (the SOA refresh is an hour, so nothing else would).
fn secondary_follows_primary(primary_kind: ServerKind, secondary_kind: ServerKind) {
    let primary = DnsServer::start(primary_kind, &small_zone(), ServerOptions::default());
    let secondary = DnsServer::start(
        secondary_kind,
        &ZoneContent::new(ORIGIN, Vec::new()),
        ServerOptions {
            secondary_of: Some(primary.addr),
            ..Default::default()
        },
    );
    assert_eq!(secondary.key, primary.key);
    assert_eq!(secondary.soa_serial(), Some(2024010101));
    let got: BTreeSet<String> = secondary.axfr_lines().into_iter().collect();
    assert_eq!(got, small_zone_expected());

    primary.nsupdate("update add late.example.com. 300 IN A 192.0.2.50\n");
    assert!(primary.wait_for_serial(2024010102, Duration::from_secs(10)));
    assert_eq!(
        send_notify(secondary.addr, ORIGIN, Duration::from_secs(2)),
        Some(ResponseCode::NoError)
    );
    assert!(
        secondary.wait_for_serial(2024010102, Duration::from_secs(10)),
        "{}",
        secondary.log()
    );
    assert!(
        secondary
            .axfr_lines()
            .contains(&"late.example.com. 300 IN A 192.0.2.50".to_string())
    );
}

#[test]
fn bind_secondary_of_knot() {
    secondary_follows_primary(ServerKind::Knot, ServerKind::Bind);
}

#[test]
fn knot_secondary_of_bind() {
    secondary_follows_primary(ServerKind::Bind, ServerKind::Knot);
}

#[test]
fn nsd_secondary_of_bind_via_helper() {
    let primary = DnsServer::start(ServerKind::Bind, &small_zone(), ServerOptions::default());
    let secondary =
        DnsServer::start_secondary_of(ServerKind::Nsd, &primary, ServerOptions::default());
    let got: BTreeSet<String> = secondary.axfr_lines().into_iter().collect();
    assert_eq!(got, small_zone_expected());
}

/// Serial of the SOA a NOTIFY carries in its answer section, if any.
fn notify_serial(msg: &hickory_proto::op::Message) -> Option<u32> {
    msg.answers().iter().find_map(|r| match r.data() {
        hickory_proto::rr::RData::SOA(soa) => Some(soa.serial()),
        _ => None,
    })
}

#[test]
fn primaries_send_signed_notify() {
    for kind in ServerKind::ALL {
        let listener = NotifyListener::bind();
        let server = DnsServer::start(
            kind,
            &small_zone(),
            ServerOptions {
                notify_to: vec![listener.addr()],
                ..Default::default()
            },
        );
        // NSD cannot be updated: its NOTIFY on load is the one to see.
        let want = if kind.supports_update() {
            server.nsupdate("update add n.example.com. 300 IN A 192.0.2.3\n");
            assert!(server.wait_for_serial(2024010102, Duration::from_secs(10)));
            2024010102
        } else {
            2024010101
        };
        let end = Instant::now() + Duration::from_secs(10);
        let (msg, from) = loop {
            let left = end.saturating_duration_since(Instant::now());
            let (msg, from) = listener
                .receive(ORIGIN, left)
                .unwrap_or_else(|| panic!("{kind:?} sent no NOTIFY for {want}\n{}", server.log()));
            // Servers retry an unanswered NOTIFY, and BIND/Knot also notify on load.
            if notify_serial(&msg) == Some(want) {
                break (msg, from);
            }
        };
        let expected = match kind {
            ServerKind::Knot => Transport::Tcp,
            _ => Transport::Udp,
        };
        assert_eq!(from, expected, "{kind:?}");
        assert!(
            msg.signature()
                .iter()
                .any(|r| r.name().to_ascii() == "zonekeeper-test."),
            "{kind:?}: NOTIFY not signed"
        );
    }
}

#[test]
fn transfer_refused_when_not_allowed() {
    for kind in ServerKind::ALL {
        let server = DnsServer::start(
            kind,
            &small_zone(),
            ServerOptions {
                allow_transfer: false,
                ..Default::default()
            },
        );
        assert_eq!(server.soa_serial(), Some(2024010101));
        let err = server.try_axfr_lines().unwrap_err();
        assert!(
            err.contains("Transfer failed") || err.contains("REFUSED"),
            "{kind:?}: {err}"
        );
    }
}

#[test]
fn transfer_with_a_wrong_key_fails() {
    let mut server = DnsServer::start(ServerKind::Bind, &small_zone(), ServerOptions::default());
    server.key = TsigKey::generate(&server.key.name.clone(), "hmac-sha256");
    assert!(server.try_axfr_lines().is_err());
}

/// Command lines of the running processes that mention `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(text))
        .collect()
}

#[test]
fn servers_are_gone_after_drop() {
    for kind in ServerKind::ALL {
        let server = DnsServer::start(kind, &small_zone(), ServerOptions::default());
        let (addr, dir) = (server.addr, server.dir().to_path_buf());
        assert!(!port_closed(addr, ORIGIN));
        let dir_s = dir.to_string_lossy().into_owned();
        // Proves the /proc check below can see the daemon (NSD: main, xfrd, server).
        assert!(!processes_mentioning(&dir_s).is_empty(), "{kind:?}");
        drop(server);
        assert!(port_closed(addr, ORIGIN), "{kind:?} still listening");
        assert!(!dir.exists(), "{kind:?} left {dir:?}");
        let dir = dir.to_string_lossy().into_owned();
        let leftovers: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&dir))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{kind:?} left processes: {leftovers:?}"
        );
    }
}

#[test]
fn ixfr_after_update_is_incremental() {
    for kind in [ServerKind::Bind, ServerKind::Knot] {
        let server = DnsServer::start(
            kind,
            &ZoneContent::generated(ORIGIN, 1000),
            ServerOptions::default(),
        );
        server.nsupdate(
            "update delete r0.example.com. A\nupdate add x.example.com. 60 A 192.0.2.9\n",
        );
        assert!(server.wait_for_serial(2, Duration::from_secs(10)));
        let lines = server.try_ixfr_lines(1).unwrap();
        let soa = |serial: u32| {
            format!(
                "example.com. 3600 IN SOA ns1.invalid. hostmaster.example.com. {serial} 3600 600 86400 60"
            )
        };
        let want = vec![
            soa(2),
            soa(1),
            "r0.example.com. 3600 IN A 10.0.0.0".to_string(),
            soa(2),
            "x.example.com. 60 IN A 192.0.2.9".to_string(),
            soa(2),
        ];
        assert_eq!(lines, want, "{kind:?}");
    }
}

#[test]
fn bind_max_records_per_type() {
    let script: String = (1..=150)
        .map(|i| format!("update add big.example.com. 60 A 198.51.100.{i}\n"))
        .collect();
    let default = DnsServer::start(ServerKind::Bind, &small_zone(), ServerOptions::default());
    let err = default.try_nsupdate(&script).unwrap_err();
    assert!(err.contains("SERVFAIL"), "{err}");
    assert_eq!(default.soa_serial(), Some(2024010101));

    let raised = DnsServer::start(
        ServerKind::Bind,
        &small_zone(),
        ServerOptions {
            max_records_per_type: Some(1000),
            ..Default::default()
        },
    );
    raised.nsupdate(&script);
    assert!(raised.wait_for_serial(2024010102, Duration::from_secs(10)));
    assert_eq!(raised.axfr_lines().len(), 6 + 150);
}

/// Minutes of CPU on a shared machine: run by hand (`-- --ignored`) after touching
/// zone-file writing or start-up.
#[test]
#[ignore]
fn million_record_zones_start() {
    let start = Instant::now();
    let zone = ZoneContent::generated(ORIGIN, 1_000_000);
    eprintln!("generated in {:?}", start.elapsed());
    for kind in ServerKind::ALL {
        let start = Instant::now();
        let server = DnsServer::start(kind, &zone, ServerOptions::default());
        eprintln!("{kind:?} ready in {:?}", start.elapsed());
        let start = Instant::now();
        assert_eq!(server.axfr_lines().len(), 1_000_002, "{kind:?}");
        eprintln!("{kind:?} dig axfr in {:?}", start.elapsed());
    }
}
#[test]
fn a_broken_zone_fails_fast_with_the_log() {
    for kind in ServerKind::ALL {
        let start = Instant::now();
        let zone = ZoneContent::new(ORIGIN, vec!["www A not-an-ip".into()]);
        let panic = std::panic::catch_unwind(|| {
            DnsServer::start(kind, &zone, ServerOptions::default());
        })
        .unwrap_err();
        let msg = panic.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("not-an-ip") || msg.contains("line 5"),
            "{kind:?}: {msg}"
        );
        assert!(msg.contains("fatal:"), "{kind:?}: {msg}");
        assert!(start.elapsed() < Duration::from_secs(10), "{kind:?}");
    }
}
