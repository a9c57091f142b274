//! The outgoing transfer engine (`dns::outgoing`) against real secondaries: NSD, Knot and
//! BIND transfer from zonekeeper's transfer server with their own TSIG keys, follow it
//! by IXFR after a NOTIFY, and everyone else is refused and counted.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use support::dns_servers::{
    DnsServer, ServerKind, TsigKey as FixtureKey, dig_transfer_at, free_port,
};
use zonekeeper::dns::model::Zone;
use zonekeeper::dns::outgoing::{
    BacklogExport, IncomingNotify, NotifyOutcome, NotifyRetry, NotifySources, PeerAddress,
    PeerAuth, PeerSoa, RefusalReason, TransferHandle, TransferMethod, TransferOptions,
    TransferServer, check_peer_soa, notify_peers,
};
use zonekeeper::dns::transfer::{IxfrOutcome, TransferOptions as ClientOptions, ixfr};
use zonekeeper::dns::tsig::{self, TsigKey};

const ORIGIN: &str = "out.example.";

fn origin() -> Name {
    Name::from_ascii(ORIGIN).unwrap()
}

fn to_key(k: &FixtureKey) -> TsigKey {
    TsigKey::new(&k.name, &k.algorithm, &k.secret_b64).unwrap()
}

fn soa(serial: u32) -> Record {
    Record::from_rdata(
        origin(),
        3600,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.out.example.").unwrap(),
            Name::from_ascii("hostmaster.out.example.").unwrap(),
            serial,
            3600,
            600,
            86_400,
            60,
        )),
    )
}

/// A zone at `serial` with `n` A records `h<i>` and, for each of `extra`, `x<i>` A.
fn zone(serial: u32, n: u32, extra: std::ops::Range<u32>) -> Zone {
    let mut z = Zone::new(origin());
    z.insert(soa(serial));
    z.insert(Record::from_rdata(
        origin(),
        3600,
        RData::NS(NS(Name::from_ascii("ns1.out.example.").unwrap())),
    ));
    let a = |name: String, i: u32| {
        Record::from_rdata(
            Name::from_ascii(name).unwrap(),
            300,
            RData::A(std::net::Ipv4Addr::from(0x0a00_0000 + i).into()),
        )
    };
    for i in 0..n {
        z.insert(a(format!("h{i}.{ORIGIN}"), i));
    }
    for i in extra {
        z.insert(a(format!("x{i}.{ORIGIN}"), i));
    }
    z
}

fn peer(name: &str, address: &str, key: &FixtureKey) -> PeerAuth {
    PeerAuth {
        name: name.to_string(),
        address: address.parse().unwrap(),
        key: to_key(key),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn start(rt: &tokio::runtime::Runtime) -> (TransferServer, TransferHandle) {
    let server = rt
        .block_on(TransferServer::start(
            "127.0.0.1:0".parse().unwrap(),
            TransferOptions::default(),
        ))
        .unwrap();
    let handle = server.handle();
    (server, handle)
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

fn refusals(handle: &TransferHandle, reason: RefusalReason) -> u64 {
    handle
        .refusals()
        .into_iter()
        .find(|(r, _)| *r == reason)
        .map(|(_, n)| n)
        .unwrap()
}

/// One SOA query over UDP from `source`, signed with `key` when given; the response.
fn soa_query(server: SocketAddr, source: &str, key: Option<&TsigKey>) -> Option<Message> {
    let mut msg = Message::new();
    msg.set_id(4242)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .add_query(Query::query(origin(), RecordType::SOA));
    let wire = match key {
        Some(k) => k.sign(&mut msg).unwrap().0,
        None => msg.to_vec().unwrap(),
    };
    let sock = std::net::UdpSocket::bind(format!("{source}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(&wire, server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok()
}

#[test]
fn nsd_knot_and_bind_follow_the_transfer_server_by_ixfr() {
    let rt = runtime();
    let (server, handle) = start(&rt);
    let addr = server.local_addr();
    let kinds = [
        ("nsd", ServerKind::Nsd),
        ("knot", ServerKind::Knot),
        ("bind", ServerKind::Bind),
    ];
    let keys: Vec<FixtureKey> = kinds
        .iter()
        .map(|(n, _)| FixtureKey::generate(&format!("{n}-xfr"), "hmac-sha256"))
        .collect();
    handle.publish(zone(1000, 200, 0..0)).unwrap();
    // Addresses without a port first: the secondaries' ports are known once they run.
    handle.set_peers(
        &origin(),
        kinds
            .iter()
            .zip(&keys)
            .map(|((n, _), k)| peer(n, "127.0.0.1", k))
            .collect(),
    );
    let secondaries: Vec<DnsServer> = kinds
        .iter()
        .zip(&keys)
        .map(|((_, kind), k)| DnsServer::start_secondary_at(*kind, addr, ORIGIN, k.clone()))
        .collect();
    let ours = sorted(
        dig_transfer_at(
            addr,
            ORIGIN,
            Some(&keys[0]),
            "AXFR",
            &["+onesoa"],
            "127.0.0.1",
        )
        .unwrap(),
    );
    assert_eq!(ours.len(), 202, "SOA (once), NS and 200 A");
    for s in &secondaries {
        assert!(
            s.wait_for_serial(1000, Duration::from_secs(20)),
            "{:?}",
            s.kind
        );
        assert_eq!(
            sorted(s.axfr_lines()),
            ours,
            "{:?} serves what was published",
            s.kind
        );
    }
    let initial = handle.transfers();
    for (name, _) in &kinds {
        let t = initial.iter().find(|t| t.peer == *name).unwrap();
        assert_eq!((t.method, t.serial), (TransferMethod::Axfr, 1000), "{name}");
    }

    handle.set_peers(
        &origin(),
        kinds
            .iter()
            .zip(&keys)
            .zip(&secondaries)
            .map(|(((n, _), k), s)| peer(n, &s.addr.to_string(), k))
            .collect(),
    );
    // Ten changes: eight records added, two removed.
    let mut next = zone(1001, 200, 0..8);
    for i in [3u32, 4] {
        let gone = next
            .rrsets_at(&Name::from_ascii(format!("h{i}.{ORIGIN}")).unwrap())
            .next()
            .unwrap();
        next.remove_rrset(&gone.key());
    }
    let published = handle.publish(next).unwrap();
    assert!(published.journaled);
    assert_eq!(handle.backlog_len(&origin()), 1);
    let sent = Instant::now();
    let outcomes = rt.block_on(notify_peers(
        &handle.peers(&origin()),
        &origin(),
        1001,
        NotifyRetry::default(),
    ));
    for (name, outcome) in &outcomes {
        assert_eq!(outcome, &NotifyOutcome::Acked, "{name}");
    }
    for s in &secondaries {
        assert!(
            s.wait_for_serial(1001, Duration::from_secs(20)),
            "{:?} did not reach 1001:\n{}",
            s.kind,
            s.log()
        );
        let lines = s.axfr_lines();
        assert!(lines.iter().any(|l| l.starts_with("x7.out.example.")));
        assert!(!lines.iter().any(|l| l.starts_with("h3.out.example.")));
    }
    let took = sent.elapsed();
    let after = handle.transfers();
    for (name, _) in &kinds {
        let t = after.iter().find(|t| t.peer == *name).unwrap();
        assert_eq!((t.method, t.serial), (TransferMethod::Ixfr, 1001), "{name}");
    }
    for p in handle.peers(&origin()) {
        let soa = rt.block_on(check_peer_soa(&p, &origin(), Duration::from_secs(3)));
        assert_eq!(soa, PeerSoa::Serial(1001), "{}", p.name);
    }
    eprintln!("NOTIFY to all three secondaries at 1001: {took:?}");
    drop(secondaries);
    drop(server);
}

#[test]
fn strangers_unsigned_and_wrong_keys_are_refused_and_counted() {
    let rt = runtime();
    let (server, handle) = start(&rt);
    let addr = server.local_addr();
    let good = FixtureKey::generate("peer-key", "hmac-sha256");
    let wrong = FixtureKey::generate("other-key", "hmac-sha256");
    let forged = FixtureKey::generate("peer-key", "hmac-sha256");
    handle.publish(zone(7, 5, 0..0)).unwrap();
    handle.set_peers(&origin(), vec![peer("p", "127.0.0.1", &good)]);

    let ok = soa_query(addr, "127.0.0.1", Some(&to_key(&good))).unwrap();
    assert_eq!(ok.response_code(), ResponseCode::NoError);
    assert!(ok.authoritative());
    assert!(dig_transfer_at(addr, ORIGIN, Some(&good), "AXFR", &[], "127.0.0.1").is_ok());

    let unsigned = soa_query(addr, "127.0.0.1", None).unwrap();
    assert_eq!(unsigned.response_code(), ResponseCode::Refused);
    assert!(dig_transfer_at(addr, ORIGIN, None, "AXFR", &[], "127.0.0.1").is_err());
    assert_eq!(refusals(&handle, RefusalReason::Unsigned), 2);

    let badkey = soa_query(addr, "127.0.0.1", Some(&to_key(&wrong))).unwrap();
    assert_eq!(badkey.response_code(), ResponseCode::NotAuth);
    assert_eq!(tsig::response_tsig_error(&badkey), 17, "BADKEY");
    assert_eq!(refusals(&handle, RefusalReason::BadKey), 1);
    let badsig = soa_query(addr, "127.0.0.1", Some(&to_key(&forged))).unwrap();
    assert_eq!(badsig.response_code(), ResponseCode::NotAuth);
    assert_eq!(refusals(&handle, RefusalReason::BadSignature), 1);

    // 127.0.0.2 is loopback too, but not the listed address.
    let stranger = soa_query(addr, "127.0.0.2", Some(&to_key(&good))).unwrap();
    assert_eq!(stranger.response_code(), ResponseCode::Refused);
    assert!(dig_transfer_at(addr, ORIGIN, Some(&good), "AXFR", &[], "127.0.0.2").is_err());
    assert_eq!(refusals(&handle, RefusalReason::Address), 2);
    // A network admits it.
    handle.set_peers(&origin(), vec![peer("net", "127.0.0.0/24", &good)]);
    assert!(dig_transfer_at(addr, ORIGIN, Some(&good), "AXFR", &[], "127.0.0.2").is_ok());

    handle.publish(zone(8, 5, 0..1)).unwrap();
    assert_eq!(handle.backlog_len(&origin()), 1);
    handle.set_enabled(&origin(), false);
    assert_eq!(handle.backlog_len(&origin()), 0);
    let disabled = soa_query(addr, "127.0.0.1", Some(&to_key(&good))).unwrap();
    assert_eq!(disabled.response_code(), ResponseCode::Refused);
    assert!(dig_transfer_at(addr, ORIGIN, Some(&good), "AXFR", &[], "127.0.0.1").is_err());
    assert_eq!(refusals(&handle, RefusalReason::Disabled), 2);
    assert!(!handle.publish(zone(9, 5, 0..2)).unwrap().journaled);
    assert_eq!(
        handle.backlog_len(&origin()),
        0,
        "no backlog while disabled"
    );
    handle.set_enabled(&origin(), true);
    let lines = dig_transfer_at(addr, ORIGIN, Some(&good), "AXFR", &["+onesoa"], "127.0.0.1");
    assert_eq!(lines.unwrap().len(), 9);

    handle.remove(&origin());
    let gone = soa_query(addr, "127.0.0.1", Some(&to_key(&good))).unwrap();
    assert_eq!(gone.response_code(), ResponseCode::Refused);
    assert_eq!(refusals(&handle, RefusalReason::NotServed), 1);
    drop(server);
}

#[test]
fn hostile_packets_get_formerr_or_nothing_and_serving_goes_on() {
    let rt = runtime();
    let (server, handle) = start(&rt);
    let addr = server.local_addr();
    let good = FixtureKey::generate("peer-key", "hmac-sha256");
    handle.publish(zone(9, 3, 0..0)).unwrap();
    handle.set_peers(&origin(), vec![peer("p", "127.0.0.1", &good)]);

    let mut valid = Message::new();
    valid
        .set_id(77)
        .set_op_code(OpCode::Query)
        .add_query(Query::query(origin(), RecordType::AXFR));
    let valid = to_key(&good).sign(&mut valid).unwrap().0;
    let mut packets: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0],
        vec![0xff; 11],
        // Header announcing one question, no question.
        vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        // A response: never answered.
        vec![0, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    for cut in [3, 12, 20, valid.len() / 2, valid.len() - 1] {
        packets.push(valid[..cut].to_vec());
    }
    let mut flipped = valid.clone();
    flipped[valid.len() - 5] ^= 0x55;
    packets.push(flipped);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for p in &packets {
        sock.send_to(p, addr).unwrap();
        let mut buf = [0u8; 4096];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let answer = Message::from_vec(&buf[..n]).unwrap();
            assert!(
                matches!(
                    answer.response_code(),
                    ResponseCode::FormErr | ResponseCode::NotAuth | ResponseCode::Refused
                ),
                "{p:?} got {:?}",
                answer.response_code()
            );
        }
    }
    // The same over TCP, including a length prefix promising more than is sent.
    for p in &packets {
        use std::io::Write;
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        let mut framed = ((p.len() + 3) as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(p);
        tcp.write_all(&framed).unwrap();
    }
    let ok = soa_query(addr, "127.0.0.1", Some(&to_key(&good))).unwrap();
    assert_eq!(ok.response_code(), ResponseCode::NoError);
    assert!(dig_transfer_at(addr, ORIGIN, Some(&good), "AXFR", &[], "127.0.0.1").is_ok());
    assert!(refusals(&handle, RefusalReason::Malformed) > 0);
    drop(server);
}

#[test]
fn backlog_is_bounded_persisted_and_falls_back_to_axfr() {
    let rt = runtime();
    let (server, handle) = start(&rt);
    let addr = server.local_addr();
    let good = FixtureKey::generate("peer-key", "hmac-sha256");
    handle.set_peers(&origin(), vec![peer("p", "127.0.0.1", &good)]);
    handle.backlog_limits(&origin(), 3, 1 << 20);
    for v in 0..6u32 {
        handle.publish(zone(100 + v, 10, 0..v)).unwrap();
    }
    assert_eq!(handle.backlog_len(&origin()), 3, "versions limit");
    let opts = ClientOptions {
        tsig: Some(to_key(&good)),
        ..ClientOptions::default()
    };
    let ask = |server: SocketAddr, from: u32| {
        rt.block_on(async {
            let mut sink = |_r: Record| -> Result<(), String> { Ok(()) };
            ixfr(server, &origin(), from, &opts, &mut sink)
                .await
                .map(|(o, _)| o)
        })
        .unwrap()
    };
    match ask(addr, 102) {
        IxfrOutcome::Incremental(steps) => assert_eq!(steps.len(), 3),
        other => panic!("IXFR from 102: {other:?}"),
    }
    let last = |h: &TransferHandle| h.transfers().last().unwrap().method;
    assert_eq!(last(&handle), TransferMethod::Ixfr);
    assert!(matches!(ask(addr, 101), IxfrOutcome::Full));
    assert_eq!(last(&handle), TransferMethod::Axfr, "outside the backlog");

    // Persisted and loaded by another replica serving the same version.
    let export = handle.export_backlog(&origin()).unwrap();
    let json = serde_json::to_string(&export).unwrap();
    let back: BacklogExport = serde_json::from_str(&json).unwrap();
    let (replica, other) = start(&rt);
    other.set_peers(&origin(), vec![peer("p", "127.0.0.1", &good)]);
    other.publish(zone(105, 10, 0..5)).unwrap();
    assert_eq!(other.import_backlog(&origin(), &back).unwrap(), 3);
    match ask(replica.local_addr(), 103) {
        IxfrOutcome::Incremental(steps) => assert_eq!(steps.len(), 2),
        other => panic!("IXFR from 103 on the replica: {other:?}"),
    }
    // A backlog not leading to the served version is dropped, not served.
    let (_stale, third) = start(&rt);
    third.publish(zone(200, 10, 0..0)).unwrap();
    assert_eq!(third.import_backlog(&origin(), &back).unwrap(), 0);

    handle.backlog_limits(&origin(), 50, 1);
    assert_eq!(handle.backlog_len(&origin()), 0, "bytes limit");
    handle.publish(zone(106, 10, 0..6)).unwrap();
    handle.backlog_limits(&origin(), 50, 1 << 20);
    handle.publish(zone(107, 10, 0..7)).unwrap();
    assert_eq!(handle.backlog_len(&origin()), 1);
    handle.clear_backlog(&origin());
    assert_eq!(handle.backlog_len(&origin()), 0);
    drop(server);
    drop(replica);
}

#[test]
fn notify_from_the_backend_is_accepted_from_its_address_or_key() {
    let rt = runtime();
    let (server, handle) = start(&rt);
    let addr = server.local_addr();
    let backend = FixtureKey::generate("backend-key", "hmac-sha256");
    handle.set_notify_sources(
        &origin(),
        NotifySources {
            addresses: vec!["127.0.0.1".parse::<PeerAddress>().unwrap()],
            keys: vec![to_key(&backend)],
        },
    );
    let mut rx = handle.incoming_notifies();
    let notify = |source: &str, key: Option<&FixtureKey>| {
        let mut msg = Message::new();
        msg.set_id(99)
            .set_op_code(OpCode::Notify)
            .set_authoritative(true)
            .add_query(Query::query(origin(), RecordType::SOA))
            .add_answer(soa(55));
        let wire = match key {
            Some(k) => to_key(k).sign(&mut msg).unwrap().0,
            None => msg.to_vec().unwrap(),
        };
        let sock = std::net::UdpSocket::bind(format!("{source}:0")).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(&wire, addr).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        Message::from_vec(&buf[..n]).unwrap().response_code()
    };
    let mut next = || {
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), rx.recv()).await })
            .unwrap()
            .unwrap()
    };
    assert_eq!(notify("127.0.0.1", None), ResponseCode::NoError);
    let IncomingNotify { zone, serial, .. } = next();
    assert_eq!((zone, serial), (origin(), Some(55)));
    assert_eq!(notify("127.0.0.2", Some(&backend)), ResponseCode::NoError);
    assert_eq!(next().source.ip().to_string(), "127.0.0.2");
    assert_eq!(notify("127.0.0.2", None), ResponseCode::Refused);
    drop(server);
}

#[test]
fn notify_and_soa_check_report_silent_and_refusing_peers() {
    let rt = runtime();
    let (server, handle) = start(&rt);
    let key = FixtureKey::generate("peer-key", "hmac-sha256");
    let silent = format!("127.0.0.1:{}", free_port());
    let peers = vec![peer("silent", &silent, &key)];
    let retry = NotifyRetry {
        attempts: 2,
        first_wait: Duration::from_millis(200),
    };
    let outcomes = rt.block_on(notify_peers(&peers, &origin(), 5, retry));
    assert_eq!(
        outcomes,
        vec![("silent".to_string(), NotifyOutcome::NoAnswer)]
    );
    let soa = rt.block_on(check_peer_soa(&peers[0], &origin(), Duration::from_secs(1)));
    assert!(matches!(soa, PeerSoa::Unreachable(_)), "{soa:?}");

    // The transfer server itself as a peer that does not know the key: refused.
    handle.publish(zone(5, 1, 0..0)).unwrap();
    let refusing = peer("refusing", &server.local_addr().to_string(), &key);
    let soa = rt.block_on(check_peer_soa(&refusing, &origin(), Duration::from_secs(2)));
    assert!(matches!(soa, PeerSoa::Refused(_)), "{soa:?}");
    let outcomes = rt.block_on(notify_peers(&[refusing], &origin(), 5, retry));
    assert!(
        matches!(&outcomes[0].1, NotifyOutcome::Error(_)),
        "{outcomes:?}"
    );
    drop(server);
}
