//! The fuzz harnesses: one function per target, each taking the raw fuzz input.
//!
//! They live in a library (not in the targets) so that `tests/fuzz_corpora.rs` replays the
//! committed corpora through exactly the same code on stable Rust. Panics are findings:
//! besides "does not crash", each harness asserts a property the code promises (printed
//! data parses back to the same data, what we sign we verify, our server's answers decode).
//!
//! Several inputs are a byte of mode followed by *frames*: a big-endian u16 length and that
//! many bytes, the DNS-over-TCP framing, so the fuzzer can build message sequences.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use zonekeeper::dns::model::{
    Zone, canonical_rdata, parse_rdata, parse_spec_rdata, parse_zone_text, rdata_to_text,
};
use zonekeeper::dns::server::{Shared, Transport, handle, minimal_zone};
use zonekeeper::dns::transfer::{TransferOptions, axfr_zone, ixfr_refresh};
use zonekeeper::dns::tsig::{RequestAuth, TsigKey, verify_request};
use zonekeeper::dns::wire;

/// The zone every harness works on.
pub const ORIGIN: &str = "example.com.";
/// The key every harness signs with (32 bytes of 0x01, base64).
pub const KEY_SECRET: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
/// The key's name.
pub const KEY_NAME: &str = "fuzz-key";

/// The record types zonekeeper manages, indexed by the first byte of an rdata input.
pub use zonekeeper::dns::model::SUPPORTED_TYPES as RDATA_TYPES;

fn origin() -> Name {
    Name::from_ascii(ORIGIN).unwrap()
}

/// The harness key.
pub fn key() -> TsigKey {
    TsigKey::new(KEY_NAME, "hmac-sha256", KEY_SECRET).unwrap()
}

/// Splits `data` into u16-length-prefixed frames; a last frame cut short is returned as is.
pub fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        data = &rest[take..];
    }
    out
}

/// The inverse of [`frames`], for building seeds.
pub fn frame(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// Zone-file text (a `recordsFrom` ConfigMap): whatever parses must print back to text that
/// parses to the same record sets.
pub fn zone_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = origin();
    let Ok(sets) = parse_zone_text(&origin, 3600, text) else {
        return;
    };
    let dumped: String = sets
        .iter()
        .flat_map(|s| s.to_lines())
        .map(|l| format!("{l}\n"))
        .collect();
    let back = match parse_zone_text(&origin, 3600, &dumped) {
        Ok(b) => b,
        Err(e) => panic!(
            "printed zone does not parse back: {e}\n--- input\n{text}\n--- printed\n{dumped}"
        ),
    };
    assert_eq!(sets, back, "printed zone parses to other data:\n{dumped}");
}

/// One record's data: first byte picks the type, the rest is the text. Parsed data must
/// print as text that parses to the same data (what `rdata_to_text` promises).
pub fn rdata(data: &[u8]) {
    let Some((&t, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let rtype = RDATA_TYPES[usize::from(t) % RDATA_TYPES.len()];
    let origin = origin();
    for parsed in [
        parse_rdata(rtype, &origin, text).ok(),
        parse_spec_rdata(rtype, &origin, text).ok(),
    ]
    .into_iter()
    .flatten()
    {
        let printed = rdata_to_text(&parsed);
        let again = match parse_rdata(rtype, &origin, &printed) {
            Ok(a) => a,
            Err(e) => panic!("{rtype} {text:?} printed as {printed:?}, which does not parse: {e}"),
        };
        assert_eq!(
            canonical_rdata(&parsed),
            canonical_rdata(&again),
            "{rtype} {text:?} printed as {printed:?}, which parses to other data"
        );
    }
}

/// TSIG. Mode byte, then:
/// - mode 0: the rest is one request, checked as the server checks requests, then as
///   frames, each checked as a response to a signed request (wrong MACs, odd records);
/// - mode 1: the rest is a request; signed with our key, the server side must accept it;
/// - mode 2: the rest is frames: a signed request's responses, each signed by the server
///   side's signer; the client side must accept the chain. With bit 2 of the mode set every
///   other one is left unsigned instead, only exercised (the signer cannot leave one out).
pub fn tsig(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = key();
    let keys = [key.clone()];
    match mode % 3 {
        0 => {
            if let Ok(msg) = Message::from_vec(rest) {
                let _ = verify_request(&keys, rest, &msg);
            }
            let mut request = wire::request(&origin(), RecordType::AXFR, OpCode::Query);
            let Ok((_, mut verifier)) = key.sign(&mut request) else {
                panic!("signing a plain AXFR request failed");
            };
            for f in frames(rest) {
                if let Ok(msg) = Message::from_vec(f) {
                    let _ = verifier.verify(f, &msg);
                }
            }
            let _ = verifier.finish();
        }
        1 => {
            let Ok(mut msg) = Message::from_vec(rest) else {
                return;
            };
            msg.take_signature();
            let Ok((signed, _)) = key.sign(&mut msg) else {
                return;
            };
            let decoded = Message::from_vec(&signed).expect("a message we signed decodes");
            let auth = verify_request(&keys, &signed, &decoded);
            assert!(
                matches!(auth, RequestAuth::Verified(_)),
                "our signed request is not accepted: {auth:?}"
            );
        }
        _ => {
            let mut request = wire::request(&origin(), RecordType::AXFR, OpCode::Query);
            let (request_wire, mut verifier) = key.sign(&mut request).expect("signing a request");
            let decoded = Message::from_vec(&request_wire).expect("our request decodes");
            let RequestAuth::Verified(mut signer) = verify_request(&keys, &request_wire, &decoded)
            else {
                panic!("our signed request is not accepted");
            };
            let skip_some = mode & 4 != 0;
            let mut last_signed = false;
            for (i, f) in frames(rest).into_iter().take(16).enumerate() {
                let Ok(mut msg) = Message::from_vec(f) else {
                    continue;
                };
                msg.take_signature();
                let wire = if skip_some && i % 2 == 1 {
                    let Ok(w) = msg.to_vec() else {
                        continue;
                    };
                    last_signed = false;
                    w
                } else {
                    let Ok(w) = signer.sign(&mut msg) else {
                        continue;
                    };
                    last_signed = true;
                    w
                };
                let Ok(received) = Message::from_vec(&wire) else {
                    panic!("a message we encoded does not decode");
                };
                let verdict = verifier.verify(&wire, &received);
                // ResponseSigner signs every message and has no way to leave one out, so a
                // chain with gaps is only exercised, not expected to verify.
                if !skip_some {
                    assert!(
                        verdict.is_ok(),
                        "our signed response is refused: {verdict:?}"
                    );
                }
            }
            if last_signed && !skip_some {
                assert!(verifier.finish().is_ok());
            }
        }
    }
}

/// The zone the server handler serves: SOA serial 1, NS, and a few records to find.
fn served_zone() -> Zone {
    let origin = origin();
    let ns = Name::from_ascii("ns1.example.com.").unwrap();
    let mut zone = minimal_zone(&origin, &ns, 1);
    for (name, last) in [("www", 1), ("*.wild", 2), ("ns1", 53)] {
        let owner = Name::from_ascii(format!("{name}.{ORIGIN}")).unwrap();
        zone.insert(Record::from_rdata(
            owner,
            300,
            RData::A(A::new(192, 0, 2, last)),
        ));
    }
    zone
}

/// The embedded server's request handler. Mode byte (bit 0: TCP instead of UDP; bit 1: the
/// request is signed with the server's key first, which reaches UPDATE), then the request.
/// Every answer must decode. After the request, an AXFR and an IXFR from serial 1 must
/// still be answered: an UPDATE never leaves the zone unservable.
pub fn server_handler(data: &[u8]) {
    let Some((&mode, request)) = data.split_first() else {
        return;
    };
    let key = key();
    let shared = Shared::new(vec![key.clone()], vec![served_zone()], 4);
    let transport = if mode & 1 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let signed;
    let wire_in: &[u8] = if mode & 2 == 0 {
        request
    } else {
        let Ok(mut msg) = Message::from_vec(request) else {
            return;
        };
        msg.take_signature();
        let Ok((w, _)) = key.sign(&mut msg) else {
            return;
        };
        signed = w;
        &signed
    };
    if let Some(reply) = handle(&shared, wire_in, transport) {
        for m in &reply.messages {
            if let Err(e) = Message::from_vec(m) {
                panic!("the server's answer does not decode: {e}");
            }
        }
    }
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        let mut q = wire::request(&origin(), qtype, OpCode::Query);
        if qtype == RecordType::IXFR {
            q.add_name_server(wire::serial_soa(&origin(), 1));
        }
        let (w, _) = key.sign(&mut q).expect("signing a transfer request");
        let reply = handle(&shared, &w, Transport::Tcp).expect("a transfer is answered");
        assert!(!reply.messages.is_empty(), "{qtype} answered with nothing");
        for m in &reply.messages {
            Message::from_vec(m).expect("the server's transfer message decodes");
        }
    }
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The AXFR/IXFR reader, through a loopback TCP server that answers every connection with
/// the input's frames (each frame's first two bytes replaced by the request's id, as any
/// answer that gets past the id check would carry) and then closes. Mode byte: bit 0 picks
/// IXFR (from the serial in the next 4 bytes) over AXFR. The reader must end, with the
/// zone or an error, and never hand out a zone without its SOA.
pub fn transfer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (ixfr_from, script) = if mode & 1 == 1 {
        let Some((serial, script)) = rest.split_first_chunk::<4>() else {
            return;
        };
        (Some(u32::from_be_bytes(*serial)), script)
    } else {
        (None, rest)
    };
    let script = script.to_vec();
    runtime().block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // Two connections: a refused IXFR is followed by an AXFR.
            for _ in 0..2 {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                let mut len = [0u8; 2];
                if tcp.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if tcp.read_exact(&mut request).await.is_err() || request.len() < 2 {
                    return;
                }
                let mut out = Vec::with_capacity(script.len());
                let mut rest = &script[..];
                while rest.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    out.extend_from_slice(&rest[..2]);
                    let body = &rest[2..2 + len.min(rest.len() - 2)];
                    let start = out.len();
                    out.extend_from_slice(body);
                    if body.len() >= 2 {
                        out[start..start + 2].copy_from_slice(&request[..2]);
                    }
                    rest = &rest[2 + body.len()..];
                }
                let _ = tcp.write_all(&out).await;
                let _ = tcp.shutdown().await;
            }
        });
        let opts = TransferOptions {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            ..TransferOptions::default()
        };
        let origin = origin();
        let zone = match ixfr_from {
            None => axfr_zone(addr, &origin, &opts).await.map(|(z, _)| z),
            Some(serial) => {
                let ns = Name::from_ascii("ns1.example.com.").unwrap();
                let mut observed = minimal_zone(&origin, &ns, serial);
                ixfr_refresh(addr, &mut observed, &opts)
                    .await
                    .map(|_| observed)
            }
        };
        server.abort();
        if let Ok(zone) = zone {
            assert!(
                zone.soa_serial().is_some(),
                "a transferred zone without SOA"
            );
        }
    });
}
