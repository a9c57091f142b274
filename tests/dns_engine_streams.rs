//! The AXFR reader against tiny scripted TCP servers that misbehave: a
//! stream cut in the middle, a garbled message, a forged (re-written)
//! message inside a TSIG-signed stream, a wrong message id, a server down.
//! Each must end in a typed error, with no zone handed out and no panic.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::rdata::tsig::{TSIG, make_tsig_record};
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use zonekeeper::dns::transfer::{TransferOptions, axfr};
use zonekeeper::dns::tsig::TsigKey;

const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";

fn key() -> TsigKey {
    TsigKey::new("xfr-key", "hmac-sha256", SECRET).unwrap()
}

fn zone() -> Name {
    Name::from_ascii("stream.test.").unwrap()
}

fn soa(serial: u32) -> Record {
    let z = zone();
    Record::from_rdata(
        z.clone(),
        300,
        RData::SOA(SOA::new(
            Name::from_ascii("ns.stream.test.").unwrap(),
            Name::from_ascii("host.stream.test.").unwrap(),
            serial,
            3600,
            600,
            86400,
            300,
        )),
    )
}

/// A full zone: SOA, 300 A records, SOA, cut into 3 messages of 100.
fn messages() -> Vec<Vec<Record>> {
    let mut all = vec![soa(7)];
    for i in 0..300u32 {
        all.push(Record::from_rdata(
            Name::from_ascii(format!("h{i}.stream.test.")).unwrap(),
            300,
            RData::A(A::new(10, 0, (i >> 8) as u8, i as u8)),
        ));
    }
    all.push(soa(7));
    all.chunks(101).map(|c| c.to_vec()).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Misbehave {
    /// Send only the first `n` messages, then close.
    CutAfter(usize),
    /// Cut inside the second message (after its length prefix).
    CutInsideMessage,
    /// Replace message 2's bytes with garbage of the same length.
    Garble,
    /// Change an address in message 2 after it was signed.
    Forge,
    /// Give message 2 another id.
    WrongId,
    /// Answer IXFR with NOTIMP (AXFR is served normally).
    NoIxfr,
    /// Behave.
    None,
}

/// Serves one AXFR per connection, signing like a real server (RFC 8945
/// §5.3.1 chaining) when the request is signed.
async fn scripted_server(mode: Misbehave) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if sock.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut req = vec![0u8; u16::from_be_bytes(len) as usize];
                sock.read_exact(&mut req).await.unwrap();
                let req = Message::from_vec(&req).unwrap();
                if mode == Misbehave::NoIxfr
                    && req.queries().first().map(|q| q.query_type())
                        == Some(hickory_proto::rr::RecordType::IXFR)
                {
                    let mut m = Message::new();
                    m.set_id(req.id())
                        .set_message_type(MessageType::Response)
                        .set_op_code(OpCode::Query)
                        .set_response_code(hickory_proto::op::ResponseCode::NotImp)
                        .add_queries(req.queries().to_vec());
                    let wire = m.to_vec().unwrap();
                    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&wire);
                    let _ = sock.write_all(&framed).await;
                    return;
                }
                let mut prev_mac: Option<Vec<u8>> =
                    req.signature().last().map(|r| match r.data() {
                        RData::DNSSEC(DNSSECRData::TSIG(t)) => t.mac().to_vec(),
                        _ => panic!("not tsig"),
                    });
                let k = key();
                let signer =
                    TSigner::new(k.secret.clone(), k.algorithm.clone(), k.name.clone(), 300)
                        .unwrap();
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                for (i, records) in messages().into_iter().enumerate() {
                    if let Misbehave::CutAfter(n) = mode
                        && i >= n
                    {
                        return;
                    }
                    let mut m = Message::new();
                    m.set_id(if mode == Misbehave::WrongId && i == 1 {
                        req.id().wrapping_add(1)
                    } else {
                        req.id()
                    })
                    .set_message_type(MessageType::Response)
                    .set_op_code(OpCode::Query)
                    .set_authoritative(true);
                    if i == 0 {
                        m.add_queries(req.queries().to_vec());
                    }
                    m.add_answers(records);
                    if let Some(prev) = prev_mac.as_mut() {
                        let pre =
                            TSIG::new(k.algorithm.clone(), now, 300, vec![], req.id(), 0, vec![]);
                        let mut body = Vec::new();
                        {
                            let mut enc = BinEncoder::new(&mut body);
                            m.emit(&mut enc).unwrap();
                            if i == 0 {
                                pre.emit_tsig_for_mac(&mut enc, &k.name).unwrap();
                            } else {
                                enc.emit_u16((now >> 32) as u16).unwrap();
                                enc.emit_u32(now as u32).unwrap();
                                enc.emit_u16(300).unwrap();
                            }
                        }
                        let mut tbs = (prev.len() as u16).to_be_bytes().to_vec();
                        tbs.extend_from_slice(prev);
                        tbs.extend_from_slice(&body);
                        let mac = signer.sign(&tbs).unwrap();
                        *prev = mac.clone();
                        m.add_tsig(make_tsig_record(k.name.clone(), pre.set_mac(mac)));
                    }
                    let mut wire = m.to_vec().unwrap();
                    if i == 1 {
                        match mode {
                            Misbehave::Garble => {
                                for (j, b) in wire.iter_mut().enumerate().skip(12) {
                                    *b = (j * 7) as u8;
                                }
                            }
                            Misbehave::Forge => {
                                // the last A record's address: 4 bytes before
                                // the TSIG record; find 10.0.x.y of h199
                                let needle = [10u8, 0, 0, 199];
                                if let Some(p) = wire.windows(4).position(|w| w == needle) {
                                    wire[p + 3] = 99;
                                } else {
                                    panic!("record to forge not found");
                                }
                            }
                            Misbehave::CutInsideMessage => {
                                sock.write_all(&(wire.len() as u16).to_be_bytes())
                                    .await
                                    .unwrap();
                                sock.write_all(&wire[..wire.len() / 2]).await.unwrap();
                                return;
                            }
                            _ => {}
                        }
                    }
                    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&wire);
                    if sock.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn run(
    mode: Misbehave,
    signed: bool,
) -> (
    Result<zonekeeper::dns::transfer::TransferStats, zonekeeper::dns::error::DnsError>,
    usize,
) {
    let server = scripted_server(mode).await;
    let opts = TransferOptions {
        tsig: signed.then(key),
        ..Default::default()
    };
    let mut seen = 0usize;
    let r = axfr(server, &zone(), &opts, &mut |_r| {
        seen += 1;
        Ok(())
    })
    .await;
    (r, seen)
}

#[tokio::test]
async fn a_well_behaved_stream_is_read_whole_with_and_without_tsig() {
    for signed in [false, true] {
        let (r, seen) = run(Misbehave::None, signed).await;
        let stats = r.unwrap();
        assert_eq!(seen, 301);
        assert_eq!(stats.records, 301);
        assert_eq!(stats.messages, 3);
        assert_eq!(stats.serial, 7);
    }
}

#[tokio::test]
async fn a_stream_closed_between_messages_is_truncated() {
    for n in [0, 1, 2] {
        let (r, _) = run(Misbehave::CutAfter(n), true).await;
        let e = r.unwrap_err();
        assert_eq!(e.reason(), "TransferTruncated", "cut after {n}: {e}");
        assert!(e.to_string().contains("stream.test."), "{e}");
    }
}

#[tokio::test]
async fn a_stream_cut_inside_a_message_is_truncated() {
    let (r, _) = run(Misbehave::CutInsideMessage, false).await;
    assert_eq!(r.unwrap_err().reason(), "TransferTruncated");
}

#[tokio::test]
async fn a_garbled_message_is_a_protocol_error() {
    let (r, _) = run(Misbehave::Garble, false).await;
    let e = r.unwrap_err();
    assert_eq!(e.reason(), "ProtocolError", "{e}");
}

#[tokio::test]
async fn a_forged_message_in_a_signed_stream_fails_tsig() {
    let (r, _) = run(Misbehave::Forge, true).await;
    let e = r.unwrap_err();
    assert_eq!(e.reason(), "AuthFailed", "{e}");
    assert!(e.to_string().contains("message 2"), "{e}");
    // Unsigned, the forgery cannot be seen: the stream is complete.
    let (r, _) = run(Misbehave::Forge, false).await;
    assert!(r.is_ok());
}

#[tokio::test]
async fn a_message_with_another_id_is_rejected() {
    let (r, _) = run(Misbehave::WrongId, false).await;
    let e = r.unwrap_err();
    assert_eq!(e.reason(), "ProtocolError", "{e}");
}

#[tokio::test]
async fn a_server_down_is_a_connection_error() {
    // Bind then drop a listener: the port is closed.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let mut seen = 0;
    let e = axfr(addr, &zone(), &TransferOptions::default(), &mut |_| {
        seen += 1;
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(e.reason(), "ConnectionFailed");
    assert!(e.to_string().contains(&addr.to_string()));
    assert_eq!(seen, 0);
}

#[tokio::test]
async fn ixfr_not_implemented_falls_back_to_axfr() {
    let server = scripted_server(Misbehave::NoIxfr).await;
    for signed in [false, true] {
        let opts = TransferOptions {
            tsig: signed.then(key),
            ..Default::default()
        };
        let mut seen = 0usize;
        let (outcome, stats) =
            zonekeeper::dns::transfer::ixfr(server, &zone(), 3, &opts, &mut |_r| {
                seen += 1;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(outcome, zonekeeper::dns::transfer::IxfrOutcome::Full);
        assert_eq!(
            stats.method,
            zonekeeper::dns::transfer::TransferMethod::AxfrFallback
        );
        assert_eq!(seen, 301);
        assert_eq!(stats.serial, 7);
    }
}
