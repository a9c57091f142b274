//! Presentation text to RDATA: each type's fields checked and built into wire form.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::{Name, RData, RecordType};

use super::canonical::{WireError, decode_rdata};
use super::lexer::{EscapeError, LexError, Token, decode_escape, tokenize};
use super::name::{NameError, parse_name, push_name};
use super::svcb::{SvcParamError, svcb_wire};
use super::{MAX_CHAR_STRING, MAX_RDATA_LEN};

/// Why one record's data was refused. The message names the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdataError {
    #[error("SOA records are managed by the server, not listed")]
    Soa,
    #[error("record type {0} is not supported")]
    Unsupported(RecordType),
    #[error("{text:?}: {source}")]
    Lex { text: String, source: LexError },
    #[error("{text:?} is not an {family} address")]
    NotAnAddress { text: String, family: &'static str },
    #[error("{text:?}: TXT needs at least one string")]
    NoTxtString { text: String },
    #[error("{text:?}: CAA tag {tag:?} must be 1 to 15 letters or digits")]
    CaaTag { text: String, tag: String },
    #[error("{text:?}: NAPTR flags {flags:?} must be letters or digits")]
    NaptrFlags { text: String, flags: String },
    /// One field is wrong; the text is shortened in the message.
    #[error("{}: {reason}", short(.text))]
    Field { text: String, reason: FieldError },
}

/// What is wrong with a field of a record's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("expected {what} ({n} field{}), found {found} field{}", plural(*.n), plural(*.found))]
    Count {
        what: &'static str,
        n: usize,
        found: usize,
    },
    #[error("expected {what} (at least {n} fields), found {found}")]
    TooFew {
        what: &'static str,
        n: usize,
        found: usize,
    },
    #[error("{field} {raw:?} is not a number from 0 to {max}")]
    NotANumber {
        field: &'static str,
        raw: String,
        max: &'static str,
    },
    #[error("a name cannot be quoted")]
    QuotedName,
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("{field} is {len} bytes, more than 255")]
    CharStringTooLong { field: &'static str, len: usize },
    #[error("{field} must be an even number of hexadecimal digits")]
    OddHex { field: &'static str },
    #[error("{field} is not hexadecimal")]
    NotHex { field: &'static str },
    #[error("{field} is {len} bytes, the digest type needs {want}")]
    Length {
        field: &'static str,
        len: usize,
        want: usize,
    },
    #[error("the data is {0} bytes, more than the 65535 a record can hold")]
    TooLong(usize),
    #[error(transparent)]
    Escape(#[from] EscapeError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    SvcParam(#[from] SvcParamError),
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A [`RdataError::Field`] for `text`.
pub(super) fn field_error(text: &str, reason: impl Into<FieldError>) -> RdataError {
    RdataError::Field {
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// The types the parser accepts (the API's `RecordType` enum, as wire types).
pub const SUPPORTED_TYPES: [RecordType; 15] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::NS,
    RecordType::PTR,
    RecordType::DS,
    RecordType::TLSA,
    RecordType::SSHFP,
    RecordType::SVCB,
    RecordType::HTTPS,
    RecordType::NAPTR,
];

pub(super) fn is_supported(rtype: RecordType) -> bool {
    SUPPORTED_TYPES.contains(&rtype)
}

/// Parses one record's data in zone-file presentation format. Relative names in the
/// data are completed with `origin`. The error is a sentence naming the text.
pub fn parse_rdata(rtype: RecordType, origin: &Name, text: &str) -> Result<RData, RdataError> {
    let lines = tokenize(text, true).map_err(|(_, source)| RdataError::Lex {
        text: text.to_string(),
        source,
    })?;
    let tokens: Vec<Token> = lines.into_iter().flat_map(|l| l.tokens).collect();
    rdata_from_tokens(rtype, origin, text, &tokens)
}

/// Parses one entry of `spec.records[].data`: presentation format, except that TXT
/// data without any `"` is one string (spaces kept), as users of YAML expect:
/// `v=spf1 include:_spf.example.net ~all` stays one SPF string instead of three.
/// Quote the strings (`'"part one" "part two"'`) to give several.
pub fn parse_spec_rdata(rtype: RecordType, origin: &Name, text: &str) -> Result<RData, RdataError> {
    let trimmed = text.trim();
    if rtype != RecordType::TXT || trimmed.is_empty() || trimmed.contains('"') {
        return parse_rdata(rtype, origin, text);
    }
    let raw = trimmed.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let (value, used) = decode_escape(&raw[i..]).map_err(|e| field_error(text, e))?;
            bytes.push(value);
            i += used;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    let token = Token {
        raw: trimmed,
        bytes: bytes.into(),
        quoted: true,
    };
    rdata_from_tokens(rtype, origin, text, &[token])
}

pub(super) fn rdata_from_tokens(
    rtype: RecordType,
    origin: &Name,
    text: &str,
    tokens: &[Token],
) -> Result<RData, RdataError> {
    if rtype == RecordType::SOA {
        return Err(RdataError::Soa);
    }
    if !is_supported(rtype) {
        return Err(RdataError::Unsupported(rtype));
    }
    let wire = match rtype {
        RecordType::A => {
            let t = exactly(tokens, 1, text, "an IPv4 address")?;
            let addr: Ipv4Addr = unquoted(&t[0])
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| RdataError::NotAnAddress {
                    text: text.to_string(),
                    family: "IPv4",
                })?;
            addr.octets().to_vec()
        }
        RecordType::AAAA => {
            let t = exactly(tokens, 1, text, "an IPv6 address")?;
            let addr: Ipv6Addr = unquoted(&t[0])
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| RdataError::NotAnAddress {
                    text: text.to_string(),
                    family: "IPv6",
                })?;
            addr.octets().to_vec()
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => {
            let t = exactly(tokens, 1, text, "a domain name")?;
            let mut wire = Vec::new();
            push_name(&mut wire, &name_field(&t[0], origin, text)?);
            wire
        }
        RecordType::MX => {
            let t = exactly(tokens, 2, text, "a preference and an exchange name")?;
            let mut wire = number::<u16>(&t[0], text, "preference")?
                .to_be_bytes()
                .to_vec();
            push_name(&mut wire, &name_field(&t[1], origin, text)?);
            wire
        }
        RecordType::SRV => {
            let t = exactly(tokens, 4, text, "priority, weight, port and target")?;
            let mut wire = Vec::new();
            for (tok, field) in t[..3].iter().zip(["priority", "weight", "port"]) {
                wire.extend_from_slice(&number::<u16>(tok, text, field)?.to_be_bytes());
            }
            push_name(&mut wire, &name_field(&t[3], origin, text)?);
            wire
        }
        RecordType::TXT => {
            if tokens.is_empty() {
                return Err(RdataError::NoTxtString {
                    text: text.to_string(),
                });
            }
            let mut wire = Vec::new();
            for tok in tokens {
                // Longer strings are split into 255-byte character-strings, as zone tools do.
                if tok.bytes.is_empty() {
                    wire.push(0);
                }
                for chunk in tok.bytes.chunks(MAX_CHAR_STRING) {
                    wire.push(chunk.len() as u8);
                    wire.extend_from_slice(chunk);
                }
            }
            wire
        }
        RecordType::CAA => {
            let t = exactly(tokens, 3, text, "flags, tag and value")?;
            let flags = number::<u8>(&t[0], text, "flags")?;
            let tag = &t[1].bytes;
            if tag.is_empty() || tag.len() > 15 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(RdataError::CaaTag {
                    text: text.to_string(),
                    tag: t[1].raw.to_string(),
                });
            }
            let mut wire = vec![flags, tag.len() as u8];
            wire.extend_from_slice(tag);
            wire.extend_from_slice(&t[2].bytes);
            wire
        }
        RecordType::NAPTR => {
            let t = exactly(
                tokens,
                6,
                text,
                "order, preference, flags, services, regexp and replacement",
            )?;
            let mut wire = number::<u16>(&t[0], text, "order")?.to_be_bytes().to_vec();
            wire.extend_from_slice(&number::<u16>(&t[1], text, "preference")?.to_be_bytes());
            if !t[2].bytes.iter().all(u8::is_ascii_alphanumeric) {
                return Err(RdataError::NaptrFlags {
                    text: text.to_string(),
                    flags: t[2].raw.to_string(),
                });
            }
            for (tok, field) in t[2..5].iter().zip(["flags", "services", "regexp"]) {
                push_char_string(&mut wire, &tok.bytes, text, field)?;
            }
            push_name(&mut wire, &name_field(&t[5], origin, text)?);
            wire
        }
        RecordType::DS => {
            let t = at_least(
                tokens,
                4,
                text,
                "key tag, algorithm, digest type and digest",
            )?;
            let mut wire = number::<u16>(&t[0], text, "key tag")?
                .to_be_bytes()
                .to_vec();
            wire.push(dnssec_algorithm(&t[1], text)?);
            let digest_type = number::<u8>(&t[2], text, "digest type")?;
            wire.push(digest_type);
            let digest = hex_field(&t[3..], text, "digest")?;
            let expected = match digest_type {
                1 => Some(20),
                2 => Some(32),
                4 => Some(48),
                _ => None,
            };
            check_len(digest.len(), expected, text, "digest")?;
            wire.extend_from_slice(&digest);
            wire
        }
        RecordType::TLSA => {
            let t = at_least(
                tokens,
                4,
                text,
                "usage, selector, matching type and certificate data",
            )?;
            let mut wire = vec![
                number::<u8>(&t[0], text, "usage")?,
                number::<u8>(&t[1], text, "selector")?,
                number::<u8>(&t[2], text, "matching type")?,
            ];
            let data = hex_field(&t[3..], text, "certificate data")?;
            let expected = match wire[2] {
                1 => Some(32),
                2 => Some(64),
                _ => None,
            };
            check_len(data.len(), expected, text, "certificate data")?;
            wire.extend_from_slice(&data);
            wire
        }
        RecordType::SSHFP => {
            let t = at_least(
                tokens,
                3,
                text,
                "algorithm, fingerprint type and fingerprint",
            )?;
            let mut wire = vec![
                number::<u8>(&t[0], text, "algorithm")?,
                number::<u8>(&t[1], text, "fingerprint type")?,
            ];
            let fp = hex_field(&t[2..], text, "fingerprint")?;
            let expected = match wire[1] {
                1 => Some(20),
                2 => Some(32),
                _ => None,
            };
            check_len(fp.len(), expected, text, "fingerprint")?;
            wire.extend_from_slice(&fp);
            wire
        }
        RecordType::SVCB | RecordType::HTTPS => svcb_wire(tokens, origin, text)?,
        _ => return Err(RdataError::Unsupported(rtype)),
    };
    if wire.len() > MAX_RDATA_LEN {
        return Err(field_error(text, FieldError::TooLong(wire.len())));
    }
    decode_rdata(rtype, &wire).map_err(|e| field_error(text, e))
}

/// The text, shortened for error messages.
pub(super) fn short(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return format!("{text:?}");
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}...", &text[..end])
}

pub(super) fn exactly<'t>(
    tokens: &'t [Token<'t>],
    n: usize,
    text: &str,
    what: &'static str,
) -> Result<&'t [Token<'t>], RdataError> {
    if tokens.len() != n {
        return Err(field_error(
            text,
            FieldError::Count {
                what,
                n,
                found: tokens.len(),
            },
        ));
    }
    Ok(tokens)
}

pub(super) fn at_least<'t>(
    tokens: &'t [Token<'t>],
    n: usize,
    text: &str,
    what: &'static str,
) -> Result<&'t [Token<'t>], RdataError> {
    if tokens.len() < n {
        return Err(field_error(
            text,
            FieldError::TooFew {
                what,
                n,
                found: tokens.len(),
            },
        ));
    }
    Ok(tokens)
}

pub(super) fn unquoted<'a>(tok: &Token<'a>) -> Option<&'a str> {
    (!tok.quoted && !tok.raw.contains('\\')).then_some(tok.raw)
}

pub(super) fn number<T: std::str::FromStr + Bounded>(
    tok: &Token,
    text: &str,
    field: &'static str,
) -> Result<T, RdataError> {
    unquoted(tok)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            field_error(
                text,
                FieldError::NotANumber {
                    field,
                    raw: tok.raw.to_string(),
                    max: T::MAX_TEXT,
                },
            )
        })
}

/// The largest value of a number type, for messages.
pub(super) trait Bounded {
    const MAX_TEXT: &'static str;
}
impl Bounded for u8 {
    const MAX_TEXT: &'static str = "255";
}
impl Bounded for u16 {
    const MAX_TEXT: &'static str = "65535";
}

pub(super) fn name_field(tok: &Token, origin: &Name, text: &str) -> Result<Name, RdataError> {
    if tok.quoted {
        return Err(field_error(text, FieldError::QuotedName));
    }
    parse_name(tok.raw, origin).map_err(|e| field_error(text, e))
}

pub(super) fn push_char_string(
    wire: &mut Vec<u8>,
    bytes: &[u8],
    text: &str,
    field: &'static str,
) -> Result<(), RdataError> {
    if bytes.len() > MAX_CHAR_STRING {
        return Err(field_error(
            text,
            FieldError::CharStringTooLong {
                field,
                len: bytes.len(),
            },
        ));
    }
    wire.push(bytes.len() as u8);
    wire.extend_from_slice(bytes);
    Ok(())
}

pub(super) fn hex_field(
    tokens: &[Token],
    text: &str,
    field: &'static str,
) -> Result<Vec<u8>, RdataError> {
    let joined: Vec<u8> = tokens
        .iter()
        .flat_map(|t| t.bytes.iter().copied())
        .collect();
    let bad = || field_error(text, FieldError::NotHex { field });
    if joined.is_empty() || !joined.len().is_multiple_of(2) {
        return Err(field_error(text, FieldError::OddHex { field }));
    }
    joined
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16).ok_or_else(bad)?;
            let lo = char::from(pair[1]).to_digit(16).ok_or_else(bad)?;
            Ok((hi * 16 + lo) as u8)
        })
        .collect()
}

pub(super) fn check_len(
    len: usize,
    expected: Option<usize>,
    text: &str,
    field: &'static str,
) -> Result<(), RdataError> {
    match expected {
        Some(want) if want != len => {
            Err(field_error(text, FieldError::Length { field, len, want }))
        }
        _ => Ok(()),
    }
}

pub(super) fn dnssec_algorithm(tok: &Token, text: &str) -> Result<u8, RdataError> {
    const MNEMONICS: [(&str, u8); 13] = [
        ("RSAMD5", 1),
        ("DH", 2),
        ("DSA", 3),
        ("RSASHA1", 5),
        ("DSA-NSEC3-SHA1", 6),
        ("RSASHA1-NSEC3-SHA1", 7),
        ("RSASHA256", 8),
        ("RSASHA512", 10),
        ("ECC-GOST", 12),
        ("ECDSAP256SHA256", 13),
        ("ECDSAP384SHA384", 14),
        ("ED25519", 15),
        ("ED448", 16),
    ];
    if let Some((_, v)) = MNEMONICS
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(tok.raw))
    {
        return Ok(*v);
    }
    number::<u8>(tok, text, "algorithm")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::test_support::*;
    use crate::dns::model::*;
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::{RData, RecordType};
    use proptest::prelude::*;

    #[test]
    fn long_txt_strings_split_into_255_byte_chunks() {
        let long = "x".repeat(600);
        let rdata = parse_rdata(RecordType::TXT, &origin(), &format!("\"{long}\"")).unwrap();
        let RData::TXT(txt) = &rdata else {
            panic!("not TXT")
        };
        let lens: Vec<usize> = txt.txt_data().iter().map(|s| s.len()).collect();
        assert_eq!(lens, vec![255, 255, 90]);
        assert_eq!(wire_round_trip(&rdata), rdata);
        // Tokens far longer than hickory's lexer allows (4095) are fine; RDLENGTH is the limit.
        let big = parse_rdata(RecordType::TXT, &origin(), &"z".repeat(5000)).unwrap();
        assert_eq!(wire_round_trip(&big), big);
        let err = parse_rdata(RecordType::TXT, &origin(), &"z".repeat(70_000))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("more than the 65535"),
            "{}",
            &err[..120.min(err.len())]
        );
        // The printed form parses back to the same data (no second split).
        let again = parse_rdata(RecordType::TXT, &origin(), &rdata_to_text(&rdata)).unwrap();
        assert_eq!(again, rdata);
        assert_eq!(
            again,
            RData::TXT(TXT::new(vec![
                "x".repeat(255),
                "x".repeat(255),
                "x".repeat(90)
            ]))
        );
    }

    #[test]
    fn malformed_data_of_every_type_is_refused_with_its_text() {
        let long_label = "a".repeat(64);
        let bad: Vec<(RecordType, &str, &str)> = vec![
            (RecordType::A, "192.0.2.300", "is not an IPv4 address"),
            (RecordType::A, "192.0.2.1 192.0.2.2", "found 2 fields"),
            (RecordType::AAAA, "2001:db8::g", "is not an IPv6 address"),
            (RecordType::CNAME, "a..b", "empty label"),
            (RecordType::CNAME, "", "found 0 fields"),
            (
                RecordType::MX,
                "ten mail",
                "preference \"ten\" is not a number from 0 to 65535",
            ),
            (
                RecordType::TXT,
                "\"unterminated",
                "unterminated quoted string",
            ),
            (RecordType::TXT, "", "at least one string"),
            (
                RecordType::SRV,
                "0 5 70000 sip",
                "port \"70000\" is not a number",
            ),
            (RecordType::CAA, "0 is-sue \"x\"", "CAA tag"),
            (RecordType::CAA, "256 issue \"x\"", "flags \"256\""),
            (RecordType::NS, "ns1 ns2", "found 2 fields"),
            (RecordType::PTR, long_label.as_str(), "longer than 63"),
            (
                RecordType::DS,
                "1 5 1 ABC",
                "even number of hexadecimal digits",
            ),
            (RecordType::DS, "1 5 2 ABCD", "needs 32"),
            (RecordType::TLSA, "3 1 1 zz", "not hexadecimal"),
            (RecordType::SSHFP, "1 1 abcd", "needs 20"),
            (RecordType::SVCB, "1 . port=99999", "port \"99999\""),
            (
                RecordType::SVCB,
                "1 . mandatory=port",
                "mandatory lists port",
            ),
            (RecordType::SVCB, "1 . port=1 port=2", "given twice"),
            (RecordType::HTTPS, "1 . alpn", "alpn needs a value"),
            (RecordType::HTTPS, "1 . foo=bar", "unknown SvcParam key"),
            (RecordType::NAPTR, "100 50 \"a-b\" \"\" \"\" .", "flags"),
            (
                RecordType::NAPTR,
                "100 50 \"a\" \"\" \"\"",
                "found 5 fields",
            ),
        ];
        let mut covered = std::collections::BTreeSet::new();
        for (t, text, want) in bad {
            covered.insert(t);
            let err = parse_rdata(t, &origin(), text)
                .expect_err(&format!("{t} {text:?} must be refused"))
                .to_string();
            assert!(err.contains(want), "{t} {text:?}: {err}");
            if !text.is_empty() && text.len() < 60 {
                assert!(
                    err.contains(&format!("{text:?}")),
                    "{t}: error names the text: {err}"
                );
            }
        }
        assert_eq!(
            covered.len(),
            SUPPORTED_TYPES.len(),
            "a malformed sample for every type"
        );
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![
                    Just("\\".to_string()),
                    Just("\"".to_string()),
                    Just("(".to_string()),
                    Just(")".to_string()),
                    Just(";".to_string()),
                    Just(" ".to_string()),
                    Just("\n".to_string()),
                    Just(".".to_string()),
                    Just("=".to_string()),
                    Just(",".to_string()),
                    Just("@".to_string()),
                    Just("1".to_string()),
                    Just("255".to_string()),
                    Just("alpn".to_string()),
                    Just("mandatory".to_string()),
                    Just("key65535".to_string()),
                    Just("ab".to_string()),
                    Just("é".to_string()),
                    "[a-z0-9]{1,70}",
                ],
                0..24
            )
            .prop_map(|v| v.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn parse_rdata_never_panics_and_output_reparses(text in any_text()) {
            for t in SUPPORTED_TYPES {
                let rtype = t;
                if let Ok(rdata) = parse_rdata(rtype, &origin(), &text) {
                    let printed = rdata_to_text(&rdata);
                    let again = parse_rdata(rtype, &origin(), &printed)
                        .map_err(|e| TestCaseError::fail(format!("{t} {text:?} printed {printed:?}: {e}")))?;
                    prop_assert_eq!(canonical_rdata(&again), canonical_rdata(&rdata));
                }
            }
            let _ = parse_zone_text(&origin(), 300, &text);
            if let Ok(r) = parse_spec_rdata(RecordType::TXT, &origin(), &text) {
                let again = parse_rdata(RecordType::TXT, &origin(), &rdata_to_text(&r)).unwrap();
                prop_assert_eq!(again, r);
            }
        }
        #[test]
        fn valid_prefix_then_noise_never_panics(
            (t, prefix) in prop_oneof![
                Just((RecordType::CAA, "0 issue ")),
                Just((RecordType::CAA, "128 Issue ")),
                Just((RecordType::CAA, "0 iodef ")),
                Just((RecordType::CAA, "0 issuewild ")),
                Just((RecordType::CAA, "0 issuemail ")),
                Just((RecordType::SVCB, "1 . ")),
                Just((RecordType::HTTPS, "1 svc ")),
                Just((RecordType::HTTPS, "1 . alpn=")),
                Just((RecordType::HTTPS, "1 . mandatory=")),
                Just((RecordType::HTTPS, "1 . key7=")),
                Just((RecordType::NAPTR, "100 50 ")),
                Just((RecordType::DS, "1 13 ")),
                Just((RecordType::TLSA, "3 1 ")),
                Just((RecordType::SSHFP, "1 ")),
                Just((RecordType::MX, "10 ")),
                Just((RecordType::SRV, "0 0 1 ")),
                Just((RecordType::TXT, "\"a\" ")),
            ],
            noise in any_text(),
        ) {
            let text = format!("{prefix}{noise}");
            let rtype = t;
            if let Ok(rdata) = parse_rdata(rtype, &origin(), &text) {
                let back = wire_round_trip(&rdata);
                prop_assert_eq!(canonical_rdata(&back), canonical_rdata(&rdata), "{}", text);
                let printed = rdata_to_text(&rdata);
                let again = parse_rdata(rtype, &origin(), &printed)
                    .map_err(|e| TestCaseError::fail(format!("{t} {text:?} printed {printed:?}: {e}")))?;
                prop_assert_eq!(canonical_rdata(&again), canonical_rdata(&rdata));
            }
        }
    }
}
