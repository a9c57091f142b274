//! Outgoing transfers at the peer's end, through the operator: the IXFR backlog's bounds
//! (`spec.outgoing.ixfrBacklog`), refused requests counted on /metrics, a peer's TSIG Secret
//! rotated while the operator runs, and hostile packets at the transfer address. `dig`
//! stands in for the peer (a real client, its source address and key chosen per request).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::{Cluster, Operator, bind_serving, outgoing_zone};
use support::dns_servers::{DnsServer, ServerKind, TsigKey, dig_transfer_at, free_port};
use zonekeeper::api::DnsZone;

const WAIT: Duration = Duration::from_secs(60);
const ZONE: &str = "example.com.";
/// Both 127.0.0.0 and 127.0.0.1: a network, so nothing is NOTIFYed, and 127.0.0.2 (also
/// this host) is outside it.
const PEER_NET: &str = "127.0.0.0/31";

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

struct Setup {
    backend: DnsServer,
    cluster: Cluster,
    op: Operator,
    transfer: SocketAddr,
    key: TsigKey,
}

/// A BIND primary, the operator serving transfers, and zone `out` with one peer (`dig`, at
/// [`PEER_NET`], key in Secret `peer-xfr`), served at the backend's serial.
async fn setup(outgoing_extra: serde_json::Value) -> Setup {
    let backend = bind_serving(ZONE, &["www 300 A 192.0.2.10"]).await;
    let cluster = Cluster::start().await;
    cluster.secret("backend-tsig", &backend.key).await;
    let key = TsigKey::generate("peer-xfr", "hmac-sha256");
    cluster.secret("peer-xfr", &key).await;
    let transfer: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let op = cluster
        .operator_serving("zk-0", None, cluster.client.clone(), Some(transfer))
        .await;
    let mut outgoing = json!({
        "enabled": true,
        "peers": [{"name": "dig", "address": PEER_NET, "tsigKeySecretRef": {"name": "peer-xfr"}}],
        "checkInterval": "1s",
    });
    if let Some(extra) = outgoing_extra.as_object() {
        for (k, v) in extra {
            outgoing[k] = v.clone();
        }
    }
    cluster
        .apply_zone(outgoing_zone(&backend, json!([]), outgoing))
        .await;
    let setup = Setup {
        backend,
        cluster,
        op,
        transfer,
        key,
    };
    let serial = setup.backend.soa_serial().unwrap();
    served_at(&setup, serial).await;
    setup
}

fn outgoing_of(zone: &DnsZone) -> Option<&zonekeeper::api::dns_zone::OutgoingStatus> {
    zone.status.as_ref().and_then(|s| s.outgoing.as_ref())
}

/// Waits until the status says `serial` is served.
async fn served_at(s: &Setup, serial: u32) -> DnsZone {
    s.cluster
        .wait_zone("out", WAIT, |z| {
            outgoing_of(z).is_some_and(|o| o.soa_serial == Some(i64::from(serial)))
        })
        .await
}

/// A backend change the operator served (so it is one version of the backlog); the new serial.
async fn change(s: &Setup, name: &str) -> u32 {
    s.backend
        .nsupdate(&format!("update add {name}.{ZONE} 300 A 192.0.2.77"));
    let serial = s.backend.soa_serial().unwrap();
    served_at(s, serial).await;
    serial
}

fn record_type(line: &str) -> Option<&str> {
    line.split_whitespace().nth(3)
}

/// How the transfer server answered an IXFR from `from`, asked by `dig` from 127.0.0.1.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Differences (the second record is an SOA: RFC 1995 incremental form).
    Incremental,
    /// The whole zone (AXFR form), with the records.
    Whole(Vec<String>),
}

async fn ixfr_from(s: &Setup, from: u32) -> Answer {
    let (transfer, key) = (s.transfer, s.key.clone());
    let lines = blocking(move || {
        dig_transfer_at(
            transfer,
            ZONE,
            Some(&key),
            &format!("IXFR={from}"),
            &[],
            "127.0.0.1",
        )
    })
    .await
    .unwrap();
    if lines.get(1).and_then(|l| record_type(l)) == Some("SOA") {
        Answer::Incremental
    } else {
        Answer::Whole(lines)
    }
}

fn backlog_len(zone: &DnsZone) -> i64 {
    outgoing_of(zone).map_or(-1, |o| o.ixfr_backlog)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_keeps_max_versions_and_max_bytes_and_older_peers_get_axfr() {
    let s = setup(json!({"ixfrBacklog": {"maxVersions": 2}})).await;
    let first = s.backend.soa_serial().unwrap();
    let mut serials = vec![first];
    for name in ["one", "two", "three"] {
        serials.push(change(&s, name).await);
    }
    let zone = s
        .cluster
        .wait_zone("out", WAIT, |z| backlog_len(z) == 2)
        .await;
    assert_eq!(backlog_len(&zone), 2);

    // 3 versions behind: outside the backlog, so the whole zone (RFC 1995 fallback).
    match ixfr_from(&s, serials[0]).await {
        Answer::Whole(lines) => {
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("three.{ZONE}")))
            );
            assert!(lines.iter().any(|l| l.starts_with(&format!("www.{ZONE}"))));
        }
        other => panic!("IXFR from 3 versions back: {other:?}"),
    }
    // 2 and 1 behind: differences.
    assert_eq!(ixfr_from(&s, serials[1]).await, Answer::Incremental);
    assert_eq!(ixfr_from(&s, serials[2]).await, Answer::Incremental);

    // maxBytes below one difference: nothing is kept, and even 1 behind gets the zone.
    s.cluster
        .patch_spec(
            "out",
            json!({"outgoing": {"ixfrBacklog": {"maxVersions": 2, "maxBytes": 1}}}),
        )
        .await;
    s.cluster
        .wait_zone("out", WAIT, |z| backlog_len(z) == 0)
        .await;
    assert!(matches!(ixfr_from(&s, serials[2]).await, Answer::Whole(_)));
    // Room again: the next change is kept and served as a difference.
    s.cluster
        .patch_spec(
            "out",
            json!({"outgoing": {"ixfrBacklog": {"maxVersions": 2, "maxBytes": 100000}}}),
        )
        .await;
    let before = s.backend.soa_serial().unwrap();
    change(&s, "four").await;
    s.cluster
        .wait_zone("out", WAIT, |z| backlog_len(z) == 1)
        .await;
    assert_eq!(ixfr_from(&s, before).await, Answer::Incremental);
    s.op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_or_negative_backlog_bounds_are_refused_with_their_field_path() {
    let cluster = Cluster::start().await;
    let api: kube::Api<DnsZone> = cluster.zones();
    for (field, value) in [
        ("maxVersions", json!(0)),
        ("maxVersions", json!(-3)),
        ("maxBytes", json!(0)),
        ("maxBytes", json!(-1)),
        ("maxPercent", json!(0)),
        ("maxPercent", json!(101)),
    ] {
        let zone: DnsZone = serde_json::from_value(json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1",
            "kind": "DnsZone",
            "metadata": {"name": "bad-backlog", "namespace": "dns"},
            "spec": {
                "zoneName": ZONE,
                "type": "Primary",
                "backend": {"server": "127.0.0.1:53"},
                "outgoing": {"enabled": true, "ixfrBacklog": {field: value}},
            }
        }))
        .unwrap();
        let err = api
            .create(&kube::api::PostParams::default(), &zone)
            .await
            .expect_err(&format!("{field}: {value}"))
            .to_string();
        assert!(
            err.contains(&format!("spec.outgoing.ixfrBacklog.{field}")),
            "{field}: {value}: {err}"
        );
    }
    // The defaults, as the API server fills them in.
    let zone: DnsZone = serde_json::from_value(json!({
        "apiVersion": "dns.zonekeeper.io/v1alpha1",
        "kind": "DnsZone",
        "metadata": {"name": "good-backlog", "namespace": "dns"},
        "spec": {
            "zoneName": ZONE,
            "type": "Primary",
            "backend": {"server": "127.0.0.1:53"},
            "outgoing": {"enabled": true},
        }
    }))
    .unwrap();
    let created = api
        .create(&kube::api::PostParams::default(), &zone)
        .await
        .unwrap();
    let backlog = created.spec.outgoing.unwrap().ixfr_backlog;
    assert_eq!(
        (backlog.max_versions, backlog.max_bytes, backlog.max_percent),
        (50, None, 10)
    );
}

/// `dig` from `source`, optionally signed; the header's status (`NOERROR`, `REFUSED`...).
fn dig_status(
    transfer: SocketAddr,
    source: &str,
    key: Option<&TsigKey>,
    qtype: &str,
    zone: &str,
) -> String {
    let mut cmd = Command::new("dig");
    cmd.args(["+time=5", "+tries=1", "+norecurse", "-b", source])
        .arg(format!("@{}", transfer.ip()))
        .args(["-p", &transfer.port().to_string()]);
    if let Some(key) = key {
        cmd.args(["-y", &key.dig_arg()]);
    }
    let out = cmd.args([qtype, zone]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(str::to_string)
        .unwrap_or_else(|| format!("no status in: {text}"))
}

async fn metrics_body(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

fn series(body: &str, zone: &str, reason: &str) -> Option<f64> {
    let prefix =
        format!("zonekeeper_outgoing_refused_total{{zone=\"{zone}\",reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_unsigned_and_wrong_key_requests_are_refused_and_counted() {
    let s = setup(json!({})).await;
    let t = s.transfer;
    let key = s.key.clone();
    let wrong = TsigKey::generate("not-a-peer-key", "hmac-sha256");
    let (unlisted, unsigned, bad_key, not_served, allowed) = blocking(move || {
        (
            dig_status(t, "127.0.0.2", Some(&key), "SOA", ZONE),
            dig_status(t, "127.0.0.1", None, "SOA", ZONE),
            dig_status(t, "127.0.0.1", Some(&wrong), "SOA", ZONE),
            dig_status(t, "127.0.0.1", Some(&key), "SOA", "other.example."),
            dig_status(t, "127.0.0.1", Some(&key), "SOA", ZONE),
        )
    })
    .await;
    assert_eq!(unlisted, "REFUSED");
    assert_eq!(unsigned, "REFUSED");
    assert_eq!(bad_key, "NOTAUTH");
    assert_eq!(not_served, "REFUSED");
    assert_eq!(allowed, "NOERROR");

    let deadline = Instant::now() + WAIT;
    loop {
        let body = metrics_body(s.op.metrics_addr).await;
        let counts = [
            series(&body, ZONE, "unlisted_address"),
            series(&body, ZONE, "unsigned"),
            series(&body, ZONE, "bad_key"),
            // A name not served here is counted without it: hostile queries cannot grow
            // the label set.
            series(&body, "", "not_served"),
        ];
        if counts.iter().all(|c| c.is_some()) {
            assert_eq!(counts, [Some(1.0); 4], "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "refusals not on /metrics:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_peer_secret_takes_effect_without_a_restart() {
    let s = setup(json!({})).await;
    let axfr = |key: &TsigKey| {
        let (t, key) = (s.transfer, key.clone());
        blocking(move || dig_transfer_at(t, ZONE, Some(&key), "AXFR", &[], "127.0.0.1"))
    };
    let old = s.key.clone();
    assert!(axfr(&old).await.is_ok());

    // Same key name, new secret: what `kubectl create secret --dry-run | apply` of a
    // regenerated key does.
    let mut new = TsigKey::generate("peer-xfr", "hmac-sha256");
    new.name = old.name.clone();
    assert_ne!(new.secret_b64, old.secret_b64);
    let rotated = Instant::now();
    s.cluster.secret("peer-xfr", &new).await;
    loop {
        if axfr(&new).await.is_ok() {
            break;
        }
        assert!(rotated.elapsed() < WAIT, "the new key is not accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "rotated key accepted {:?} after the Secret changed",
        rotated.elapsed()
    );
    let (t, stale) = (s.transfer, old.clone());
    let status = blocking(move || dig_status(t, "127.0.0.1", Some(&stale), "SOA", ZONE)).await;
    assert_eq!(status, "NOTAUTH");
    assert!(axfr(&old).await.is_err());

    // A key under a new name: the old name is unknown now (BADKEY), the new one works.
    let renamed = TsigKey::generate("peer-xfr-2026", "hmac-sha256");
    s.cluster.secret("peer-xfr", &renamed).await;
    let deadline = Instant::now() + WAIT;
    while axfr(&renamed).await.is_err() {
        assert!(Instant::now() < deadline, "the renamed key is not accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(axfr(&new).await.is_err());
    let body = metrics_body(s.op.metrics_addr).await;
    assert!(
        series(&body, ZONE, "bad_key").is_some_and(|n| n >= 1.0),
        "{body}"
    );
    s.op.stop().await;
}

/// The fuzz corpus of the embedded server's handler (fuzz/corpus/server_handler): one
/// mode byte (bit 0: TCP), then a request.
fn corpus() -> Vec<(bool, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/server_handler");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let data = std::fs::read(p).unwrap();
            let (mode, request) = data.split_first()?;
            Some((mode & 1 == 1, request.to_vec()))
        })
        .collect()
}

/// A signed AXFR request as `dig` would send it, for truncating.
fn axfr_request(key: &TsigKey) -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut msg = Message::new();
    msg.set_id(777)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .add_query(Query::query(
            Name::from_ascii(ZONE).unwrap(),
            RecordType::AXFR,
        ));
    let key =
        zonekeeper::dns::tsig::TsigKey::new(&key.name, &key.algorithm, &key.secret_b64).unwrap();
    key.sign(&mut msg).unwrap().0
}

/// What came back for one packet: nothing, or a response's rcode (low 4 bits of byte 3)
/// and whether it carried answer records.
fn verdict(reply: &[u8]) -> (u8, bool) {
    assert!(reply.len() >= 12, "short reply {reply:?}");
    assert!(reply[2] & 0x80 != 0, "not a response: {reply:?}");
    let answers = u16::from_be_bytes([reply[6], reply[7]]);
    (reply[3] & 0x0f, answers > 0)
}

const FORMERR: u8 = 1;
const NOERROR: u8 = 0;

fn udp(transfer: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.2:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    sock.send_to(packet, transfer).unwrap();
    let mut buf = vec![0u8; 65535];
    sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

/// Sends `frames` (already length-prefixed or not: hostile) over one connection; the first
/// framed reply, if any, before the server closes or goes quiet.
fn tcp(transfer: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(transfer).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    if stream.write_all(bytes).is_err() {
        return None;
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).ok()?;
    Some(reply)
}

fn framed(packet: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(packet.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(packet);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_packets_get_formerr_or_nothing_and_serving_goes_on() {
    let s = setup(json!({})).await;
    let (t, key) = (s.transfer, s.key.clone());
    let (truncated, fuzzed) = blocking(move || {
        let request = axfr_request(&key);
        // Every cut of a signed AXFR request, by UDP and by TCP (framed as what was cut).
        let mut truncated = Vec::new();
        for cut in 0..request.len() {
            let part = &request[..cut];
            truncated.push(udp(t, part));
            truncated.push(tcp(t, &framed(part)));
            // A frame announcing more than follows.
            let mut short = framed(&request);
            short.truncate(2 + cut);
            truncated.push(tcp(t, &short));
        }
        let mut fuzzed = Vec::new();
        for (over_tcp, packet) in corpus() {
            fuzzed.push(if over_tcp {
                tcp(t, &framed(&packet))
            } else {
                udp(t, &packet)
            });
        }
        (truncated, fuzzed)
    })
    .await;
    // A cut request is undecodable or unsigned: FORMERR, or nothing at all.
    let mut formerr = 0;
    for reply in truncated.iter().flatten() {
        let (rcode, answers) = verdict(reply);
        assert!(!answers, "a cut request was answered with records");
        // Cut right after a whole question, the request is an unsigned AXFR from an
        // unlisted source (127.0.0.2) or an unsigned one (TCP from 127.0.0.1): REFUSED.
        assert!(
            rcode == FORMERR || rcode == 5,
            "cut request answered with rcode {rcode}"
        );
        formerr += usize::from(rcode == FORMERR);
    }
    assert!(formerr > 0, "no FORMERR for any cut request");
    // The corpus holds well-formed requests too: none of them may get the zone (no peer's
    // key signs them), whatever else they get.
    for reply in fuzzed.iter().flatten() {
        let (rcode, answers) = verdict(reply);
        assert!(
            rcode != NOERROR || !answers,
            "a fuzzed request got records: {reply:?}"
        );
    }
    eprintln!(
        "hostile: {} cut requests ({} answered), {} corpus packets ({} answered)",
        truncated.len(),
        truncated.iter().flatten().count(),
        fuzzed.len(),
        fuzzed.iter().flatten().count()
    );

    // The server keeps serving: a real AXFR and a real secondary right after.
    let key = s.key.clone();
    let lines = blocking(move || dig_transfer_at(t, ZONE, Some(&key), "AXFR", &[], "127.0.0.1"))
        .await
        .unwrap();
    assert!(lines.iter().any(|l| l.starts_with(&format!("www.{ZONE}"))));
    let key = s.key.clone();
    let secondary =
        blocking(move || DnsServer::start_secondary_at(ServerKind::Knot, t, ZONE, key)).await;
    let serial = s.backend.soa_serial().unwrap();
    assert!(secondary.wait_for_serial(serial, WAIT));
    s.op.stop().await;
}
