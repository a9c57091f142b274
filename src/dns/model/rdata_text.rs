//! RDATA to presentation text, readable back by the parser and by BIND.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::{Name, RData, RecordType};

use super::canonical::wire_rdata;
use super::name::name_to_text;
use super::svcb::svc_param_text;

/// Presentation form of one RDATA, readable back by [`parse_rdata`] and by BIND.
pub fn rdata_to_text(rdata: &RData) -> String {
    let wire = wire_rdata(rdata);
    let rtype = rdata.record_type();
    format_wire(rtype, &wire).unwrap_or_else(|| generic_text(&wire))
}

/// RFC 3597 generic form: `\# 4 c0000201`.
pub(super) fn generic_text(wire: &[u8]) -> String {
    format!("\\# {} {}", wire.len(), hex_upper(wire))
}

pub(super) fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Reads wire data for printing.
pub(super) struct WireReader<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> WireReader<'a> {
    pub(super) fn u8(&mut self) -> Option<u8> {
        let v = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    pub(super) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    pub(super) fn rest(&mut self) -> &'a [u8] {
        let s = self.data.get(self.pos..).unwrap_or_default();
        self.pos = self.data.len();
        s
    }
    pub(super) fn char_string(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    pub(super) fn name(&mut self) -> Option<String> {
        let mut labels: Vec<&[u8]> = Vec::new();
        loop {
            let n = usize::from(self.u8()?);
            if n == 0 {
                break;
            }
            if n > 63 {
                return None;
            }
            labels.push(self.take(n)?);
        }
        Name::from_labels(labels).ok().map(|n| name_to_text(&n))
    }
    pub(super) fn done(&self) -> bool {
        self.pos == self.data.len()
    }
}

/// A quoted character-string with `"` and `\` escaped and non-printables as `\DDD`.
pub(super) fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

pub(super) fn format_wire(rtype: RecordType, wire: &[u8]) -> Option<String> {
    let mut r = WireReader { data: wire, pos: 0 };
    let text = match rtype {
        RecordType::A => {
            let b: [u8; 4] = r.take(4)?.try_into().ok()?;
            Ipv4Addr::from(b).to_string()
        }
        RecordType::AAAA => {
            let b: [u8; 16] = r.take(16)?.try_into().ok()?;
            Ipv6Addr::from(b).to_string()
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => r.name()?,
        RecordType::MX => format!("{} {}", r.u16()?, r.name()?),
        // A plan that rewrites the SOA shows it like any record.
        RecordType::SOA => {
            let (mname, rname) = (r.name()?, r.name()?);
            let mut n = [0u32; 5];
            for v in &mut n {
                *v = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
            }
            format!(
                "{mname} {rname} {} {} {} {} {}",
                n[0], n[1], n[2], n[3], n[4]
            )
        }
        RecordType::SRV => format!("{} {} {} {}", r.u16()?, r.u16()?, r.u16()?, r.name()?),
        RecordType::TXT => {
            let mut parts = Vec::new();
            while !r.done() {
                parts.push(quote(r.char_string()?));
            }
            parts.join(" ")
        }
        RecordType::CAA => {
            let flags = r.u8()?;
            let tag_len = usize::from(r.u8()?);
            let tag = r.take(tag_len)?;
            if !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            format!(
                "{flags} {} {}",
                String::from_utf8_lossy(tag),
                quote(r.rest())
            )
        }
        RecordType::NAPTR => format!(
            "{} {} {} {} {} {}",
            r.u16()?,
            r.u16()?,
            quote(r.char_string()?),
            quote(r.char_string()?),
            quote(r.char_string()?),
            r.name()?
        ),
        RecordType::DS => format!(
            "{} {} {} {}",
            r.u16()?,
            r.u8()?,
            r.u8()?,
            hex_upper(r.rest())
        ),
        RecordType::TLSA => format!(
            "{} {} {} {}",
            r.u8()?,
            r.u8()?,
            r.u8()?,
            hex_upper(r.rest())
        ),
        RecordType::SSHFP => format!("{} {} {}", r.u8()?, r.u8()?, hex_upper(r.rest())),
        RecordType::SVCB | RecordType::HTTPS => {
            let mut out = format!("{} {}", r.u16()?, r.name()?);
            while !r.done() {
                let key = r.u16()?;
                let len = usize::from(r.u16()?);
                let value = r.take(len)?;
                out.push(' ');
                out.push_str(&svc_param_text(key, value)?);
            }
            out
        }
        _ => return None,
    };
    r.done().then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::rrset::rdata_eq;
    use crate::dns::model::test_support::*;
    use crate::dns::model::*;

    #[test]
    fn every_type_round_trips_text_wire_text() {
        let mut covered = std::collections::BTreeSet::new();
        for (t, input, printed) in samples() {
            covered.insert(t);
            let rtype = t;
            let rdata = parse_rdata(rtype, &origin(), input)
                .unwrap_or_else(|e| panic!("{t} {input:?}: {e}"));
            assert_eq!(rdata.record_type(), rtype);
            let back = wire_round_trip(&rdata);
            assert_eq!(
                canonical_rdata(&back),
                canonical_rdata(&rdata),
                "{t} {input}"
            );
            assert!(rdata_eq(&back, &rdata), "{t} {input}");
            let text = rdata_to_text(&back);
            assert_eq!(text, printed, "{t} {input}");
            let again = parse_rdata(rtype, &origin(), &text).unwrap();
            assert_eq!(
                canonical_rdata(&again),
                canonical_rdata(&rdata),
                "{t} {text}"
            );
        }
        assert_eq!(
            covered.len(),
            SUPPORTED_TYPES.len(),
            "a sample for every type"
        );
    }
}
