//! The embedded authoritative server against real clients: `dig`, `kdig`, `nsupdate`, our
//! own engine, and BIND as its secondary.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proptest::prelude::*;
use support::dns_servers::{
    DnsServer, ServerKind, ServerOptions, TsigKey as FixtureKey, ZoneContent, run_with_input,
};
use zonekeeper::dns::model::{RRset, Zone, parse_rdata};
use zonekeeper::dns::query::QueryOptions;
use zonekeeper::dns::server::{EmbeddedServer, Shared, Transport, handle, minimal_zone};
use zonekeeper::dns::transfer::{IxfrOutcome, TransferOptions, axfr, ixfr};
use zonekeeper::dns::tsig::TsigKey;
use zonekeeper::dns::update::{RRsetChange, UpdateOptions, apply_changes};

const ORIGIN: &str = "example.com.";
const KEY_NAME: &str = "embedded-key";
const SECRET: &str = "ZW1iZWRkZWQtc2VjcmV0LWZvci10ZXN0cy0xMjM0NTY=";

fn key() -> TsigKey {
    TsigKey::new(KEY_NAME, "hmac-sha256", SECRET).unwrap()
}

fn dig_key() -> String {
    format!("hmac-sha256:{KEY_NAME}:{SECRET}")
}

fn origin() -> Name {
    Name::from_ascii(ORIGIN).unwrap()
}

fn zone(lines: &[&str]) -> Zone {
    let origin = origin();
    let mut z = minimal_zone(&origin, &Name::from_ascii("ns1.example.com.").unwrap(), 100);
    let mut all = vec!["ns1 3600 A 192.0.2.1"];
    all.extend_from_slice(lines);
    for line in all {
        let mut parts = line.splitn(4, ' ');
        let owner = parts.next().unwrap();
        let ttl: u32 = parts.next().unwrap().parse().unwrap();
        let rtype: RecordType = parts.next().unwrap().parse().unwrap();
        let data = parts.next().unwrap();
        let name = if owner == "@" {
            origin.clone()
        } else {
            Name::from_ascii(format!("{owner}.{ORIGIN}")).unwrap()
        };
        let rdata = parse_rdata(rtype, &origin, data).unwrap();
        z.insert(Record::from_rdata(name, ttl, rdata));
    }
    z
}

fn base_zone() -> Zone {
    zone(&[
        "www 300 A 192.0.2.10",
        "www 300 A 192.0.2.11",
        "www 300 AAAA 2001:db8::10",
        "@ 300 MX 10 mx1.example.com.",
        "@ 300 TXT \"v=spf1 mx -all\"",
        "blog 300 CNAME www.example.com.",
        "a.b.c 300 A 192.0.2.99",
        "sub 300 NS ns.sub.example.com.",
        "*.wild 300 TXT \"wildcard\"",
    ])
}

async fn start(z: Zone) -> EmbeddedServer {
    EmbeddedServer::start("127.0.0.1:0".parse().unwrap(), vec![key()], vec![z])
        .await
        .unwrap()
}

/// Runs a DNS tool on a blocking thread so the server keeps answering.
async fn run(tool: &str, args: Vec<String>) -> (bool, String) {
    let tool = tool.to_string();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(&tool).args(&args).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

async fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let mut all = vec![
        format!("@{}", addr.ip()),
        "-p".into(),
        addr.port().to_string(),
        "+time=2".into(),
        "+tries=1".into(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    run("dig", all).await.1
}

/// Records of an AXFR printed by dig/kdig, SOA and TSIG lines left out, sorted, with
/// whitespace normalized.
fn transfer_lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| {
            let t = l.split(' ').nth(3).unwrap_or("");
            t != "TSIG" && t != "SOA"
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[tokio::test]
async fn dig_queries_and_axfr() {
    let server = start(base_zone()).await;
    let addr = server.local_addr();

    let soa = dig(addr, &[ORIGIN, "SOA", "+norec"]).await;
    assert!(soa.contains("status: NOERROR"), "{soa}");
    assert!(soa.contains(" aa"), "authoritative flag missing:\n{soa}");
    assert!(soa.contains("hostmaster.example.com. 100 3600"), "{soa}");

    let a = dig(addr, &["www.example.com.", "A", "+short"]).await;
    let mut got: Vec<&str> = a.lines().collect();
    got.sort();
    assert_eq!(got, vec!["192.0.2.10", "192.0.2.11"]);

    let tcp = dig(addr, &["www.example.com.", "AAAA", "+tcp", "+short"]).await;
    assert_eq!(tcp.trim(), "2001:db8::10");

    let nx = dig(addr, &["nope.example.com.", "A"]).await;
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("SOA"), "negative answer without SOA:\n{nx}");

    let nodata = dig(addr, &["www.example.com.", "MX"]).await;
    assert!(
        nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"),
        "{nodata}"
    );
    // An empty non-terminal exists: NODATA, not NXDOMAIN.
    let ent = dig(addr, &["b.c.example.com.", "A"]).await;
    assert!(ent.contains("status: NOERROR"), "{ent}");
    // Below a delegation: a referral, not authoritative.
    let referral = dig(addr, &["host.sub.example.com.", "A", "+norec"]).await;
    assert!(
        referral.contains("AUTHORITY: 1") && !referral.contains(" aa"),
        "{referral}"
    );
    let cname = dig(addr, &["blog.example.com.", "A", "+short"]).await;
    assert_eq!(cname.trim(), "www.example.com.");
    let wild = dig(addr, &["any.wild.example.com.", "TXT"]).await;
    assert!(
        wild.contains("any.wild.example.com.\t300\tIN\tTXT\t\"wildcard\""),
        "{wild}"
    );
    let wild_nodata = dig(addr, &["any.wild.example.com.", "A"]).await;
    assert!(
        wild_nodata.contains("status: NOERROR") && wild_nodata.contains("ANSWER: 0"),
        "{wild_nodata}"
    );
    let refused = dig(addr, &["example.org.", "SOA"]).await;
    assert!(refused.contains("status: REFUSED"), "{refused}");

    // AXFR needs the key.
    let unsigned = dig(addr, &[ORIGIN, "AXFR"]).await;
    assert!(
        !unsigned.contains("192.0.2.10"),
        "unsigned AXFR served:\n{unsigned}"
    );
    let signed = dig(addr, &["-y", &dig_key(), ORIGIN, "AXFR"]).await;
    assert!(!signed.contains("failed"), "{signed}");
    let lines = transfer_lines(&signed);
    let expected: Vec<String> = {
        let mut v: Vec<String> = base_zone()
            .rrsets()
            .filter(|s| s.rtype != RecordType::SOA)
            .flat_map(|s| s.to_lines())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        v.sort();
        v
    };
    assert_eq!(lines, expected, "dig AXFR:\n{signed}");
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_tsig_is_notauth() {
    let server = start(base_zone()).await;
    let addr = server.local_addr();
    let bad_secret = format!("hmac-sha256:{KEY_NAME}:c29tZS1vdGhlci1zZWNyZXQtdmFsdWUtMTIzNDU2Nzg=");
    let out = dig(addr, &["-y", &bad_secret, ORIGIN, "AXFR"]).await;
    assert!(!out.contains("192.0.2.10"), "{out}");
    assert!(out.contains("NOTAUTH") || out.contains("BADSIG"), "{out}");
    let bad_key = format!("hmac-sha256:other-key:{SECRET}");
    let out = dig(addr, &["-y", &bad_key, ORIGIN, "SOA"]).await;
    assert!(out.contains("NOTAUTH") || out.contains("BADKEY"), "{out}");

    // Our engine sees BADSIG as an authentication failure.
    let wrong = TsigKey::new(KEY_NAME, "hmac-sha256", "c29tZS1vdGhlci1zZWNyZXQ=").unwrap();
    let opts = TransferOptions {
        tsig: Some(wrong),
        ..TransferOptions::default()
    };
    let err = axfr(addr, &origin(), &opts, &mut |_| Ok(()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("BADSIG"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn nsupdate_add_delete_and_prerequisites() {
    let server = start(base_zone()).await;
    let addr = server.local_addr();
    let script = format!(
        "server 127.0.0.1 {}\nzone {ORIGIN}\nupdate add new.example.com. 60 A 198.51.100.7\nupdate delete www.example.com. AAAA\nsend\n",
        addr.port()
    );
    let (ok, out) = nsupdate(&script).await;
    assert!(ok, "{out}");
    assert_eq!(server.serial(&origin()), Some(101));
    let a = dig(addr, &["new.example.com.", "A", "+short"]).await;
    assert_eq!(a.trim(), "198.51.100.7");
    let gone = dig(addr, &["www.example.com.", "AAAA"]).await;
    assert!(gone.contains("ANSWER: 0"), "{gone}");

    // Prerequisite "name must not exist" on an existing name: YXDOMAIN, nothing changed.
    let script = format!(
        "server 127.0.0.1 {}\nzone {ORIGIN}\nprereq nxdomain www.example.com.\nupdate add other.example.com. 60 A 198.51.100.8\nsend\n",
        addr.port()
    );
    let (ok, out) = nsupdate(&script).await;
    assert!(!ok && out.contains("YXDOMAIN"), "{out}");
    // Value-dependent prerequisite that does not hold: NXRRSET.
    let script = format!(
        "server 127.0.0.1 {}\nzone {ORIGIN}\nprereq yxrrset www.example.com. A 192.0.2.10\nupdate add other.example.com. 60 A 198.51.100.8\nsend\n",
        addr.port()
    );
    let (ok, out) = nsupdate(&script).await;
    assert!(!ok && out.contains("NXRRSET"), "{out}");
    let script = format!(
        "server 127.0.0.1 {}\nzone {ORIGIN}\nprereq yxrrset www.example.com. A 192.0.2.10\nprereq yxrrset www.example.com. A 192.0.2.11\nupdate add other.example.com. 60 A 198.51.100.8\nsend\n",
        addr.port()
    );
    let (ok, out) = nsupdate(&script).await;
    assert!(ok, "{out}");
    assert_eq!(server.serial(&origin()), Some(102));

    // Unsigned UPDATE: refused.
    let script = format!(
        "server 127.0.0.1 {}\nzone {ORIGIN}\nupdate add x.example.com. 60 A 198.51.100.9\nsend\n",
        addr.port()
    );
    let (ok, out) = nsupdate_with(&script, None).await;
    assert!(!ok && out.contains("REFUSED"), "{out}");
    assert_eq!(server.serial(&origin()), Some(102));
    server.shutdown().await;
}

async fn nsupdate(script: &str) -> (bool, String) {
    nsupdate_with(script, Some(dig_key())).await
}

async fn nsupdate_with(script: &str, key: Option<String>) -> (bool, String) {
    let script = script.to_string();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("nsupdate");
        cmd.args(["-v", "-t", "5"]);
        if let Some(k) = key {
            cmd.args(["-y", &k]);
        }
        let (status, out) = run_with_input(&mut cmd, &script);
        (status.success(), out)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn kdig_axfr_and_ixfr() {
    let server = start(base_zone()).await;
    let addr = server.local_addr();
    let kdig = |args: Vec<String>| {
        let mut all = vec![
            format!("@{}", addr.ip()),
            "-p".into(),
            addr.port().to_string(),
            "-y".into(),
            dig_key(),
        ];
        all.extend(args);
        run("kdig", all)
    };
    let (ok, out) = kdig(vec![ORIGIN.into(), "AXFR".into()]).await;
    assert!(ok && out.contains("192.0.2.11"), "{out}");
    assert!(!out.contains("failed") && !out.contains("WARNING"), "{out}");

    let script = format!(
        "server 127.0.0.1 {}\nzone {ORIGIN}\nupdate add ixfr1.example.com. 60 A 198.51.100.1\nupdate delete www.example.com. A 192.0.2.10\nsend\n",
        addr.port()
    );
    let (ok, out) = nsupdate(&script).await;
    assert!(ok, "{out}");
    let (ok, out) = kdig(vec![ORIGIN.into(), "IXFR=100".into()]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("ixfr1.example.com.") && out.contains("192.0.2.10"),
        "{out}"
    );
    // The whole zone is not in an incremental answer.
    assert!(
        !out.contains("2001:db8::10"),
        "IXFR answered with the full zone:\n{out}"
    );
    // A serial older than the journal: AXFR-style answer.
    let (ok, out) = kdig(vec![ORIGIN.into(), "IXFR=50".into()]).await;
    assert!(ok && out.contains("2001:db8::10"), "{out}");
    server.shutdown().await;
}

#[tokio::test]
async fn our_engine_axfr_ixfr_update_notify() {
    let server = start(base_zone()).await;
    let addr = server.local_addr();
    let topts = TransferOptions {
        tsig: Some(key()),
        ..TransferOptions::default()
    };
    let mut got = Zone::new(origin());
    let stats = axfr(addr, &origin(), &topts, &mut |r| {
        got.insert(r);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(stats.serial, 100);
    assert_eq!(got, base_zone());

    // UPDATE through the batched client.
    let add = RRset::new(
        Name::from_ascii("api.example.com.").unwrap(),
        RecordType::A,
        120,
        vec![parse_rdata(RecordType::A, &origin(), "198.51.100.20").unwrap()],
    );
    let changes = vec![RRsetChange {
        name: add.name.clone(),
        rtype: RecordType::A,
        old: Vec::new(),
        new: add.records().collect(),
    }];
    let uopts = UpdateOptions {
        tsig: Some(key()),
        ..UpdateOptions::default()
    };
    let report = apply_changes(addr, &origin(), &changes, &uopts).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(server.serial(&origin()), Some(101));

    // IXFR from 100 gives exactly that change.
    let mut sink = |_r: Record| Ok(());
    let (outcome, _) = ixfr(addr, &origin(), 100, &topts, &mut sink).await.unwrap();
    match outcome {
        IxfrOutcome::Incremental(steps) => {
            assert_eq!(steps.len(), 1);
            assert_eq!(steps[0].from_serial, 100);
            assert_eq!(steps[0].to_serial, 101);
            assert!(steps[0].deleted.is_empty());
            assert_eq!(steps[0].added.len(), 1);
            assert_eq!(steps[0].added[0].name(), &add.name);
        }
        other => panic!("expected incremental, got {other:?}"),
    }

    // NOTIFY: the server sends one to a configured peer after a change.
    let listener = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    server.set_notify_peers(vec![listener.local_addr().unwrap()]);
    let del = RRsetChange {
        name: add.name.clone(),
        rtype: RecordType::A,
        old: add.records().collect(),
        new: Vec::new(),
    };
    assert!(
        apply_changes(addr, &origin(), &[del], &uopts)
            .await
            .is_complete()
    );
    let mut buf = [0u8; 4096];
    let (n, from) = tokio::task::spawn_blocking(move || {
        let r = listener.recv_from(&mut buf).unwrap();
        (r.0, (r.1, buf))
    })
    .await
    .unwrap();
    let msg = Message::from_vec(&from.1[..n]).unwrap();
    assert_eq!(msg.op_code(), OpCode::Notify);
    assert_eq!(msg.queries()[0].name(), &origin());

    // And it acknowledges a NOTIFY sent to it.
    zonekeeper::dns::notify::send_notify(addr, &origin(), Some(102), &QueryOptions::default())
        .await
        .unwrap();
    server.shutdown().await;
}

#[test]
fn bind_secondary_follows_the_embedded_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(start(base_zone()));
    let addr = server.local_addr();
    let fixture_key = FixtureKey {
        name: KEY_NAME.into(),
        algorithm: "hmac-sha256".into(),
        secret_b64: SECRET.into(),
    };
    let secondary = DnsServer::start(
        ServerKind::Bind,
        &ZoneContent::new(ORIGIN, Vec::new()),
        ServerOptions {
            secondary_of: Some(addr),
            key: Some(fixture_key),
            ..ServerOptions::default()
        },
    );
    assert!(secondary.wait_for_serial(100, Duration::from_secs(20)));
    let lines = secondary.axfr_lines();
    assert!(lines.iter().any(|l| l.contains("192.0.2.11")), "{lines:?}");

    server.set_notify_peers(vec![secondary.addr]);
    let mut z = server.zone(&origin()).unwrap();
    z.insert(Record::from_rdata(
        Name::from_ascii("late.example.com.").unwrap(),
        60,
        RData::A("198.51.100.77".parse().unwrap()),
    ));
    // put_zone journals and notifies; the SOA serial is the caller's to move.
    let soa = z
        .rrsets()
        .find(|s| s.rtype == RecordType::SOA)
        .unwrap()
        .clone();
    let RData::SOA(old) = &soa.rdatas[0] else {
        panic!()
    };
    let new = hickory_proto::rr::rdata::SOA::new(
        old.mname().clone(),
        old.rname().clone(),
        101,
        old.refresh(),
        old.retry(),
        old.expire(),
        old.minimum(),
    );
    z.insert_rrset(RRset::new(
        soa.name.clone(),
        RecordType::SOA,
        soa.ttl,
        vec![RData::SOA(new)],
    ));
    rt.block_on(async { server.put_zone(z) });
    let start = Instant::now();
    assert!(
        secondary.wait_for_serial(101, Duration::from_secs(20)),
        "secondary did not pick up serial 101 after NOTIFY:\n{}",
        secondary.log()
    );
    // The refresh timer is an hour: this came through the NOTIFY.
    assert!(start.elapsed() < Duration::from_secs(20));
    let lines = secondary.axfr_lines();
    assert!(
        lines.iter().any(|l| l.contains("198.51.100.77")),
        "{lines:?}"
    );
    rt.block_on(server.shutdown());
}

fn valid_packets() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (qtype, op) in [
        (RecordType::SOA, OpCode::Query),
        (RecordType::A, OpCode::Query),
        (RecordType::AXFR, OpCode::Query),
        (RecordType::IXFR, OpCode::Query),
        (RecordType::SOA, OpCode::Update),
        (RecordType::SOA, OpCode::Notify),
    ] {
        let mut m = Message::new();
        m.set_id(1)
            .set_message_type(MessageType::Query)
            .set_op_code(op)
            .add_query(Query::query(
                Name::from_ascii("www.example.com.").unwrap(),
                qtype,
            ));
        if op == OpCode::Update {
            m.add_name_server(Record::from_rdata(
                Name::from_ascii("x.example.com.").unwrap(),
                60,
                RData::A("192.0.2.1".parse().unwrap()),
            ));
        }
        out.push(m.to_vec().unwrap());
        let (wire, _) = key().sign(&mut m).unwrap();
        out.push(wire);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let shared = Shared::new(vec![key()], vec![base_zone()], 10);
        let _ = handle(&shared, &bytes, Transport::Udp);
        let _ = handle(&shared, &bytes, Transport::Tcp);
    }

    #[test]
    fn mutated_packets_never_panic(
        which in 0usize..12,
        flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
        cut in any::<u16>(),
    ) {
        let shared = Shared::new(vec![key()], vec![base_zone()], 10);
        let packets = valid_packets();
        let mut p = packets[which % packets.len()].clone();
        for (pos, val) in flips {
            let i = usize::from(pos) % p.len();
            p[i] = val;
        }
        if cut % 4 == 0 {
            p.truncate(usize::from(cut) % (p.len() + 1));
        }
        let reply = handle(&shared, &p, Transport::Tcp);
        // Whatever came back decodes.
        if let Some(r) = reply {
            for m in r.messages {
                prop_assert!(Message::from_vec(&m).is_ok());
            }
        }
    }
}

#[test]
fn valid_packets_are_answered() {
    let shared = Shared::new(vec![key()], vec![base_zone()], 10);
    for p in valid_packets() {
        let reply = handle(&shared, &p, Transport::Tcp).expect("answered");
        let m = Message::from_vec(&reply.messages[0]).unwrap();
        assert_ne!(m.response_code(), ResponseCode::FormErr, "{m:?}");
    }
}

/// A transfer of many messages: every one signed and chained (dig and our reader verify
/// each), nothing lost, and an IXFR of a few changes on top of it stays small.
#[tokio::test]
async fn big_zone_transfers_are_complete_and_signed() {
    let mut z = base_zone();
    for i in 0..20_000u32 {
        z.insert(Record::from_rdata(
            Name::from_ascii(format!("h{i}.example.com.")).unwrap(),
            300,
            RData::A(std::net::Ipv4Addr::from(0x0a00_0000 + i).into()),
        ));
    }
    let expected = z.record_count();
    let server = start(z).await;
    let addr = server.local_addr();
    let topts = TransferOptions {
        tsig: Some(key()),
        ..TransferOptions::default()
    };
    let started = Instant::now();
    let mut n = 0usize;
    let stats = axfr(addr, &origin(), &topts, &mut |_| {
        n += 1;
        Ok(())
    })
    .await
    .unwrap();
    let ours = started.elapsed();
    assert_eq!(n, expected);
    assert!(stats.messages > 10, "{stats:?}");

    let started = Instant::now();
    let out = dig(addr, &["-y", &dig_key(), ORIGIN, "AXFR", "+onesoa"]).await;
    let digs = started.elapsed();
    assert!(
        !out.contains("failed") && !out.contains("tsig"),
        "{}",
        &out[out.len().saturating_sub(500)..]
    );
    let records = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter(|l| l.split_whitespace().nth(3) != Some("TSIG"))
        .count();
    assert_eq!(records, expected);
    eprintln!(
        "AXFR of {expected} records: our reader {ours:?}, dig {digs:?}, {} messages",
        stats.messages
    );

    let script = format!(
        "server 127.0.0.1 {}\nzone {ORIGIN}\nupdate delete h7.example.com. A\nupdate add h7b.example.com. 60 A 198.51.100.1\nsend\n",
        addr.port()
    );
    let (ok, out) = nsupdate(&script).await;
    assert!(ok, "{out}");
    let mut sink = |_r: Record| Ok(());
    let (outcome, stats) = ixfr(addr, &origin(), 100, &topts, &mut sink).await.unwrap();
    assert!(
        matches!(outcome, IxfrOutcome::Incremental(_)),
        "{outcome:?}"
    );
    assert_eq!(stats.messages, 1);
    server.shutdown().await;
}

/// A request signed with the right key at the wrong time: NOTAUTH, signed, TSIG error
/// BADTIME (RFC 8945 §5.2.3).
#[test]
fn skewed_clock_is_badtime() {
    use hickory_proto::dnssec::rdata::tsig::{TSIG, make_tsig_record};
    use hickory_proto::dnssec::tsig::TSigner;
    let k = key();
    let signer = TSigner::new(k.secret.clone(), k.algorithm.clone(), k.name.clone(), 300).unwrap();
    let mut m = Message::new();
    m.set_id(9)
        .set_message_type(MessageType::Query)
        .add_query(Query::query(origin(), RecordType::SOA));
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let pre = TSIG::new(k.algorithm.clone(), old, 300, vec![], 9, 0, vec![]);
    let mac = signer.sign_message(&m, &pre).unwrap();
    m.add_tsig(make_tsig_record(k.name.clone(), pre.set_mac(mac)));
    let wire = m.to_vec().unwrap();
    let shared = Shared::new(vec![key()], vec![base_zone()], 10);
    let reply = handle(&shared, &wire, Transport::Udp).unwrap();
    let resp = Message::from_vec(&reply.messages[0]).unwrap();
    assert_eq!(resp.response_code(), ResponseCode::NotAuth);
    assert_eq!(zonekeeper::dns::tsig::response_tsig_error(&resp), 18);
    assert!(resp.answers().is_empty());
}

/// An answer too big for a plain UDP datagram comes back truncated (TC, no records); over
/// TCP it is whole.
#[test]
fn big_answers_truncate_over_udp() {
    let mut z = base_zone();
    for i in 0..100u8 {
        z.insert(Record::from_rdata(
            Name::from_ascii("many.example.com.").unwrap(),
            300,
            RData::A(std::net::Ipv4Addr::new(10, 1, 0, i).into()),
        ));
    }
    let shared = Shared::new(vec![key()], vec![z], 10);
    let mut m = Message::new();
    m.set_id(3)
        .set_message_type(MessageType::Query)
        .add_query(Query::query(
            Name::from_ascii("many.example.com.").unwrap(),
            RecordType::A,
        ));
    let wire = m.to_vec().unwrap();
    let udp = handle(&shared, &wire, Transport::Udp).unwrap();
    assert!(udp.messages[0].len() <= 512);
    let udp = Message::from_vec(&udp.messages[0]).unwrap();
    assert!(udp.truncated() && udp.answers().is_empty());
    let tcp = handle(&shared, &wire, Transport::Tcp).unwrap();
    let tcp = Message::from_vec(&tcp.messages[0]).unwrap();
    assert!(!tcp.truncated());
    assert_eq!(tcp.answers().len(), 100);
}

/// `reconcile::sync` against the embedded server: AXFR first, then IXFR that brings the
/// snapshot (SOA serial included) forward, then up to date.
#[tokio::test]
async fn sync_follows_the_journal() {
    use zonekeeper::api::zone_sync::SyncMethod;
    use zonekeeper::reconcile::config::Endpoint;
    use zonekeeper::reconcile::sync::sync;
    let server = start(base_zone()).await;
    let addr = server.local_addr();
    let ep = Endpoint {
        server: addr.to_string(),
        key: Some(key()),
        timeout: Duration::from_secs(5),
        key_secret: None,
        bounds: Default::default(),
    };
    let first = sync(&ep, &origin(), None, SyncMethod::Auto).await.unwrap();
    assert!(!first.incremental);
    assert_eq!(first.snapshot, base_zone());
    let script = format!(
        "server 127.0.0.1 {}\nzone {ORIGIN}\nupdate add s1.example.com. 60 A 198.51.100.1\nupdate delete blog.example.com. CNAME\nsend\n",
        addr.port()
    );
    let (ok, out) = nsupdate(&script).await;
    assert!(ok, "{out}");
    let second = sync(&ep, &origin(), Some(&first.snapshot), SyncMethod::Auto)
        .await
        .unwrap();
    assert!(second.incremental);
    assert_eq!(second.serial_before, Some(100));
    assert_eq!(second.snapshot.soa_serial(), Some(101));
    assert_eq!(Some(second.snapshot.clone()), server.zone(&origin()));
    assert_eq!(second.changes.len(), 2, "{:?}", second.changes);
    let third = sync(&ep, &origin(), Some(&second.snapshot), SyncMethod::Auto)
        .await
        .unwrap();
    assert_eq!(third.serial_before, Some(101));
    assert!(third.changes.is_empty());
    server.shutdown().await;
}

/// A zone with a TXT RRset of 60 records of 200 bytes at `big`: ~13 KB of answer.
fn zone_with_big_rrset() -> Zone {
    let mut z = base_zone();
    for i in 0..60 {
        z.insert(Record::from_rdata(
            Name::from_ascii("big.example.com.").unwrap(),
            300,
            RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![format!(
                "{i:03}{}",
                "x".repeat(197)
            )])),
        ));
    }
    z
}

/// The amplification case of issue 13: a 44-byte query claiming an EDNS size of 65535
/// got 51,936 bytes back. Now the answer stays within 1232 bytes, truncated (TC), and
/// the whole RRset comes over TCP.
#[tokio::test]
async fn a_small_query_claiming_a_huge_edns_size_gets_at_most_1232_bytes_with_tc() {
    use hickory_proto::op::Edns;
    let server = start(zone_with_big_rrset()).await;
    let mut m = Message::new();
    m.set_id(77)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .add_query(Query::query(
            Name::from_ascii("big.example.com.").unwrap(),
            RecordType::TXT,
        ));
    let mut edns = Edns::new();
    edns.set_max_payload(65_535).set_version(0);
    m.set_edns(edns);
    let query = m.to_vec().unwrap();
    assert_eq!(query.len(), 44, "the query of the report");
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&query, server.local_addr()).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(n <= 1232, "{n} bytes over UDP");
    let resp = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(resp.id(), 77);
    assert!(resp.truncated(), "cut answers carry TC");
    // The client's retry over TCP gets every record.
    let tcp = dig(server.local_addr(), &["big.example.com.", "TXT", "+tcp"]).await;
    assert_eq!(
        tcp.lines().filter(|l| l.contains("\tTXT\t")).count(),
        60,
        "{tcp}"
    );
}

/// RFC 8482: ANY is answered with one RRset of the name, not all of them.
#[test]
fn any_gets_a_minimal_answer() {
    let shared = Shared::new(vec![key()], vec![base_zone()], 10);
    let mut m = Message::new();
    m.set_id(5)
        .set_message_type(MessageType::Query)
        .add_query(Query::query(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::ANY,
        ));
    for transport in [Transport::Udp, Transport::Tcp] {
        let reply = handle(&shared, &m.to_vec().unwrap(), transport).unwrap();
        let resp = Message::from_vec(&reply.messages[0]).unwrap();
        assert_eq!(resp.response_code(), ResponseCode::NoError);
        let types: std::collections::BTreeSet<RecordType> =
            resp.answers().iter().map(|r| r.record_type()).collect();
        // www holds A (two records) and AAAA: one RRset of them, whole.
        assert_eq!(types.len(), 1, "{transport:?}: {:?}", resp.answers());
        let expected = if types.contains(&RecordType::A) { 2 } else { 1 };
        assert_eq!(resp.answers().len(), expected, "{transport:?}");
    }
}

/// Connections over the cap are closed on accept; a slot freed is usable again.
#[tokio::test]
async fn tcp_connections_over_the_cap_are_closed() {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;
    use zonekeeper::dns::server::ServerOptions as EmbeddedOptions;
    let server = EmbeddedServer::start_with(
        "127.0.0.1:0".parse().unwrap(),
        EmbeddedOptions {
            keys: vec![key()],
            max_tcp_connections: 2,
            ..EmbeddedOptions::default()
        },
        vec![base_zone()],
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let held1 = TcpStream::connect(addr).await.unwrap();
    let held2 = TcpStream::connect(addr).await.unwrap();
    // The two held connections are accepted in order; the third finds no slot.
    let closed_at_once = |mut s: TcpStream| async move {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    };
    let third = TcpStream::connect(addr).await.unwrap();
    assert!(closed_at_once(third).await, "a third connection is closed");
    // The held ones still work.
    let soa = dig(addr, &[ORIGIN, "SOA", "+tcp"]).await;
    assert!(
        !soa.contains("status: NOERROR"),
        "no slot for dig yet:\n{soa}"
    );
    drop(held1);
    drop(held2);
    // Slots come back when the connections end; poll with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let soa = dig(addr, &[ORIGIN, "SOA", "+tcp"]).await;
        if soa.contains("status: NOERROR") {
            break;
        }
        assert!(Instant::now() < deadline, "slots never freed:\n{soa}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
