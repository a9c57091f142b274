//! Replays the committed fuzz corpora (fuzz/corpus/<target>/) through the same harnesses
//! the cargo-fuzz targets run (fuzz/src/lib.rs), on stable Rust: an input that once
//! crashed, or that covered a path, fails here when a change breaks it again.
//!
//! `cargo test --test fuzz_corpora -- --ignored write_seeds` (re)writes the hand-made seeds
//! (`seed-*` files) the corpora grew from.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::fs;
use std::path::PathBuf;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use zonekeeper::dns::server::{Shared, Transport, handle, minimal_zone};
use zonekeeper::dns::wire;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Runs every file of the target's corpus through `run`; names the file that panics.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no corpus", dir.display());
    for file in &files {
        let data = fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} fails its harness", file.display());
    }
}

#[test]
fn transfer_corpus_replays() {
    replay("transfer", harness::transfer);
}

#[test]
fn tsig_corpus_replays() {
    replay("tsig", harness::tsig);
}

#[test]
fn server_handler_corpus_replays() {
    replay("server_handler", harness::server_handler);
}

#[test]
fn zone_text_corpus_replays() {
    replay("zone_text", harness::zone_text);
}

#[test]
fn rdata_corpus_replays() {
    replay("rdata", harness::rdata);
}

fn origin() -> Name {
    Name::from_ascii(harness::ORIGIN).unwrap()
}

fn request(qtype: RecordType, op: OpCode) -> Message {
    let mut q = Query::query(origin(), qtype);
    q.set_query_class(DNSClass::IN);
    let mut m = Message::new();
    m.set_id(4242)
        .set_message_type(MessageType::Query)
        .set_op_code(op)
        .add_query(q);
    m
}

/// Messages of a real transfer by the embedded server: `ixfr_from` None is an AXFR, else an
/// IXFR after one UPDATE (so there is a journal step to send).
fn served_transfer(ixfr_from: Option<u32>) -> Vec<Vec<u8>> {
    let key = harness::key();
    let ns = Name::from_ascii("ns1.example.com.").unwrap();
    let mut zone = minimal_zone(&origin(), &ns, 1);
    for i in 1..4u8 {
        let owner = Name::from_ascii(format!("h{i}.{}", harness::ORIGIN)).unwrap();
        zone.insert(Record::from_rdata(
            owner,
            300,
            RData::A(A::new(192, 0, 2, i)),
        ));
    }
    let shared = Shared::new(vec![key.clone()], vec![zone], 4);
    let mut update = request(RecordType::SOA, OpCode::Update);
    let owner = Name::from_ascii(format!("new.{}", harness::ORIGIN)).unwrap();
    update.add_name_server(Record::from_rdata(
        owner,
        60,
        RData::A(A::new(192, 0, 2, 99)),
    ));
    let (w, _) = key.sign(&mut update).unwrap();
    handle(&shared, &w, Transport::Tcp).unwrap();
    let mut q = request(
        if ixfr_from.is_some() {
            RecordType::IXFR
        } else {
            RecordType::AXFR
        },
        OpCode::Query,
    );
    if let Some(serial) = ixfr_from {
        q.add_name_server(wire::serial_soa(&origin(), serial));
    }
    // The server transfers to key holders only; the seeds carry no TSIG (the reader runs
    // without a key), so the signatures come off again.
    let (w, _) = key.sign(&mut q).unwrap();
    handle(&shared, &w, Transport::Tcp)
        .unwrap()
        .messages
        .iter()
        .map(|m| {
            let mut m = Message::from_vec(m).unwrap();
            m.take_signature();
            m.to_vec().unwrap()
        })
        .collect()
}

#[test]
#[ignore = "writes the seed files; run by hand"]
fn write_seeds() {
    let key = harness::key();
    let mut seeds: Vec<(&str, &str, Vec<u8>)> = Vec::new();

    let axfr = served_transfer(None);
    let ixfr = served_transfer(Some(1));
    seeds.push((
        "transfer",
        "axfr",
        [vec![0], harness::frame(&axfr)].concat(),
    ));
    let one_per_message: Vec<Vec<u8>> = {
        // The same AXFR split one record per message, as Knot sends small zones.
        let m = Message::from_vec(&axfr[0]).unwrap();
        m.answers()
            .iter()
            .map(|r| {
                let mut part = m.clone();
                part.take_answers();
                part.add_answer(r.clone());
                part.to_vec().unwrap()
            })
            .collect()
    };
    seeds.push((
        "transfer",
        "axfr-split",
        [vec![0], harness::frame(&one_per_message)].concat(),
    ));
    seeds.push((
        "transfer",
        "ixfr",
        [vec![1], 1u32.to_be_bytes().to_vec(), harness::frame(&ixfr)].concat(),
    ));
    seeds.push((
        "transfer",
        "ixfr-full",
        [vec![1], 7u32.to_be_bytes().to_vec(), harness::frame(&axfr)].concat(),
    ));

    let soa_query = request(RecordType::SOA, OpCode::Query).to_vec().unwrap();
    let mut signed_query = request(RecordType::SOA, OpCode::Query);
    let (signed_query, _) = key.sign(&mut signed_query).unwrap();
    seeds.push(("tsig", "request", [vec![0], signed_query.clone()].concat()));
    seeds.push((
        "tsig",
        "sign-request",
        [vec![1], soa_query.clone()].concat(),
    ));
    seeds.push((
        "tsig",
        "response-chain",
        [vec![2], harness::frame(&axfr)].concat(),
    ));
    seeds.push((
        "tsig",
        "response-chain-gaps",
        [vec![6], harness::frame(&one_per_message)].concat(),
    ));

    let mut www = request(RecordType::A, OpCode::Query);
    www.take_queries();
    let www_name = Name::from_ascii(format!("www.{}", harness::ORIGIN)).unwrap();
    www.add_query(Query::query(www_name, RecordType::A));
    let www = www.to_vec().unwrap();
    let mut add = request(RecordType::SOA, OpCode::Update);
    let owner = Name::from_ascii(format!("added.{}", harness::ORIGIN)).unwrap();
    add.add_name_server(Record::from_rdata(
        owner,
        60,
        RData::A(A::new(192, 0, 2, 7)),
    ));
    let add = add.to_vec().unwrap();
    let any = request(RecordType::ANY, OpCode::Query).to_vec().unwrap();
    let notify = request(RecordType::SOA, OpCode::Notify).to_vec().unwrap();
    let axfr_q = request(RecordType::AXFR, OpCode::Query).to_vec().unwrap();
    seeds.push(("server_handler", "soa-udp", [vec![0], soa_query].concat()));
    seeds.push(("server_handler", "www-udp", [vec![0], www].concat()));
    seeds.push(("server_handler", "any-tcp", [vec![1], any].concat()));
    seeds.push(("server_handler", "notify", [vec![0], notify].concat()));
    seeds.push(("server_handler", "axfr-signed", [vec![3], axfr_q].concat()));
    seeds.push(("server_handler", "update-signed", [vec![3], add].concat()));
    seeds.push((
        "server_handler",
        "signed-raw",
        [vec![0], signed_query].concat(),
    ));

    seeds.push((
        "zone_text",
        "basic",
        b"$TTL 1h\n@ IN NS ns1\nwww 300 IN A 192.0.2.1\n  IN AAAA 2001:db8::1\nmail MX 10 mx.example.net.\n_sip._tcp SRV 0 5 5060 sip ; comment\n".to_vec(),
    ));
    seeds.push((
        "zone_text",
        "multiline",
        b"$ORIGIN sub.example.com.\ntxt 1h30m TXT ( \"one\" \"two\\\" three\"\n  \"\\065\\066\" )\ncaa CAA 0 issue \"ca.example.net\"\nsvc SVCB 1 . alpn=h2,h3 port=443 ipv4hint=192.0.2.1\n".to_vec(),
    ));
    seeds.push((
        "zone_text",
        "types",
        b"ds DS 12345 13 2 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\ntlsa TLSA 3 1 1 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\nssh SSHFP 4 2 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\nnaptr NAPTR 100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .\nhttps HTTPS 1 . alpn=h2 ech=AEX+DQBB\nptr PTR host.example.net.\nalias CNAME www\n".to_vec(),
    ));
    let rdata_seeds: [(RecordType, &str); 15] = [
        (RecordType::A, "192.0.2.1"),
        (RecordType::AAAA, "2001:db8::1"),
        (RecordType::CNAME, "www"),
        (RecordType::MX, "10 mx.example.net."),
        (RecordType::TXT, "\"a b\" \"c\\\"d\" \\065"),
        (RecordType::SRV, "0 5 5060 sip.example.com."),
        (RecordType::CAA, "0 issue \"ca.example.net; account=1\""),
        (RecordType::NS, "ns1.example.net."),
        (RecordType::PTR, "host"),
        (
            RecordType::DS,
            "12345 13 2 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        ),
        (
            RecordType::TLSA,
            "3 1 1 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        ),
        (
            RecordType::SSHFP,
            "4 2 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        ),
        (
            RecordType::SVCB,
            "1 svc.example.net. alpn=h2,h3 port=443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1 mandatory=alpn",
        ),
        (RecordType::HTTPS, "0 alias.example.net."),
        (
            RecordType::NAPTR,
            "100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .",
        ),
    ];
    for (rtype, text) in rdata_seeds {
        let index = harness::RDATA_TYPES
            .iter()
            .position(|t| *t == rtype)
            .unwrap();
        seeds.push((
            "rdata",
            rtype.into(),
            [vec![index as u8], text.as_bytes().to_vec()].concat(),
        ));
    }
    seeds.push((
        "rdata",
        "TXT-spec",
        [vec![4], b"v=spf1 include:_spf.example.net ~all".to_vec()].concat(),
    ));

    for (target, name, data) in seeds {
        // The seed must pass its own harness before it is worth keeping.
        match target {
            "transfer" => harness::transfer(&data),
            "tsig" => harness::tsig(&data),
            "server_handler" => harness::server_handler(&data),
            "zone_text" => harness::zone_text(&data),
            _ => harness::rdata(&data),
        }
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}
