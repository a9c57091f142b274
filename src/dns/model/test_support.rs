//! Helpers shared by the model's unit tests.

use std::str::FromStr;

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, Restrict};

pub(crate) fn upper(name: &Name) -> Name {
    let mut up = Name::from_labels(name.iter().map(<[u8]>::to_ascii_uppercase)).unwrap();
    up.set_fqdn(true);
    up
}

pub(crate) fn origin() -> Name {
    Name::from_str("example.com.").unwrap()
}

/// The SOA of `origin()` at `serial`.
pub(crate) fn soa(serial: u32) -> RData {
    let ns = Name::from_ascii("ns1.example.com.").unwrap();
    let mbox = Name::from_ascii("hostmaster.example.com.").unwrap();
    RData::SOA(hickory_proto::rr::rdata::SOA::new(
        ns, mbox, serial, 3600, 600, 86400, 300,
    ))
}

/// (type, input text, printed form) for every supported type.
pub(crate) fn samples() -> Vec<(RecordType, &'static str, &'static str)> {
    vec![
        (RecordType::A, "192.0.2.10", "192.0.2.10"),
        (RecordType::AAAA, "2001:DB8::1", "2001:db8::1"),
        (RecordType::CNAME, "target", "target.example.com."),
        (RecordType::MX, "10 mail", "10 mail.example.com."),
        (RecordType::MX, "0 .", "0 ."),
        (RecordType::TXT, "\"v=spf1 -all\"", "\"v=spf1 -all\""),
        (RecordType::TXT, "hello world", "\"hello\" \"world\""),
        (
            RecordType::TXT,
            r#""a\"b\\c\255\009" """#,
            r#""a\"b\\c\255\009" """#,
        ),
        (
            RecordType::SRV,
            "0 5 5060 sip.example.com.",
            "0 5 5060 sip.example.com.",
        ),
        (
            RecordType::CAA,
            "0 issue \"letsencrypt.org\"",
            "0 issue \"letsencrypt.org\"",
        ),
        (
            RecordType::CAA,
            "128 iodef \"mailto:sec@example.com\"",
            "128 iodef \"mailto:sec@example.com\"",
        ),
        (RecordType::CAA, "0 issuewild \";\"", "0 issuewild \";\""),
        (
            RecordType::CAA,
            "0 issue \"ca.example.net; account=230123\"",
            "0 issue \"ca.example.net; account=230123\"",
        ),
        (RecordType::NS, "ns1.example.net.", "ns1.example.net."),
        (RecordType::PTR, "host.example.com.", "host.example.com."),
        (
            RecordType::PTR,
            "we\\.ird\\032x",
            "we\\.ird\\032x.example.com.",
        ),
        (
            RecordType::DS,
            "60485 5 1 2BB183AF5F22588179A53B0A 98631FAD1A292118",
            "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
        ),
        (
            RecordType::DS,
            "12345 ECDSAP256SHA256 2 ( e2d3c916f6deeac73294e8268fb5885044a833fc5459588f4a9184cfc41a5766 )",
            "12345 13 2 E2D3C916F6DEEAC73294E8268FB5885044A833FC5459588F4A9184CFC41A5766",
        ),
        (
            RecordType::TLSA,
            "3 1 1 0b9fa5a59eed715c26c1020c711b4f6ec42d58b0015e14337a39dad301c5afc3",
            "3 1 1 0B9FA5A59EED715C26C1020C711B4F6EC42D58B0015E14337A39DAD301C5AFC3",
        ),
        (
            RecordType::SSHFP,
            "1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac",
            "1 1 DD465C09CFA51FB45020CC83316FFF21B9EC74AC",
        ),
        (
            RecordType::SVCB,
            "1 svc port=8443 alpn=h2,h3 ipv4hint=192.0.2.1,192.0.2.2 mandatory=port,alpn",
            "1 svc.example.com. mandatory=alpn,port alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1,192.0.2.2",
        ),
        (
            RecordType::SVCB,
            "0 pool.svc.example.net.",
            "0 pool.svc.example.net.",
        ),
        (
            RecordType::HTTPS,
            "1 . alpn=\"h3,h2\" no-default-alpn ech=AEX+DQBB ipv6hint=2001:db8::1 key65333=ex1",
            "1 . alpn=\"h3,h2\" no-default-alpn ech=\"AEX+DQBB\" ipv6hint=2001:db8::1 key65333=\"ex1\"",
        ),
        (
            RecordType::NAPTR,
            "100 50 \"s\" \"http+N2L+N2C+N2R\" \"\" www.example.com.",
            "100 50 \"s\" \"http+N2L+N2C+N2R\" \"\" www.example.com.",
        ),
        (
            RecordType::NAPTR,
            r#"100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" ."#,
            r#"100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" ."#,
        ),
    ]
}

pub(crate) fn wire_round_trip(rdata: &RData) -> RData {
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        rdata.emit(&mut enc).unwrap();
    }
    let mut dec = BinDecoder::new(&buf);
    let back = RData::read(
        &mut dec,
        rdata.record_type(),
        Restrict::new(buf.len() as u16),
    )
    .unwrap();
    assert_eq!(dec.index(), buf.len());
    back
}
