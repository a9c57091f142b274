//! Writing a whole-zone transfer straight from a [`WireZone`]: records are copied into
//! message buffers with owner names compressed against a per-message table, and each
//! message is signed as bytes. No hickory message is built: its name compression
//! searches every name already written, which made big transfers slow.

use std::collections::HashMap;

use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinEncodable;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::handler::AxfrStream;
use super::wire_zone::{WireRecord, WireZone};
use crate::dns::tsig::ResponseSigner;

/// Bytes gathered before one write: big enough for few system calls, small enough that
/// the encoded zone never piles up.
const WRITE_BATCH: usize = 256 * 1024;

/// Bytes of records per message before starting the next. Below 0x4000, so that every
/// name written can be pointed at (pointers have 14 bits).
const MESSAGE_BUDGET: usize = 16_000;

/// Largest offset a compression pointer can hold.
const MAX_POINTER: usize = 0x3fff;

/// Room kept for the TSIG record (a SHA-512 MAC, long key and algorithm names).
const TSIG_ROOM: usize = 400;

impl AxfrStream {
    /// Encodes (and signs) the transfer and writes it, framed for TCP, to `out`.
    pub async fn write_to<W: AsyncWrite + Unpin>(self, out: &mut W) -> std::io::Result<()> {
        let zone = self.zone.clone();
        let mut writer = AxfrWriter::new(&self.request, &zone, self.signer)?;
        let Some(soa) = writer.soa() else {
            writer.servfail()?;
            return out.write_all(&writer.framed).await;
        };
        writer.push(soa)?;
        for record in zone.records() {
            if is_apex_soa(&record) {
                continue;
            }
            writer.push(record)?;
            if writer.framed.len() >= WRITE_BATCH {
                out.write_all(&writer.framed).await?;
                writer.framed.clear();
            }
        }
        writer.push(soa)?;
        writer.flush()?;
        out.write_all(&writer.framed).await
    }

    /// The transfer's messages, encoded and signed, all at once (for callers without a
    /// socket: the handler's tests and fuzzing).
    pub fn messages(self) -> std::io::Result<Vec<Vec<u8>>> {
        let zone = self.zone.clone();
        let mut writer = AxfrWriter::new(&self.request, &zone, self.signer)?;
        match writer.soa() {
            None => writer.servfail()?,
            Some(soa) => {
                writer.push(soa)?;
                for record in zone.records().filter(|r| !is_apex_soa(r)) {
                    writer.push(record)?;
                }
                writer.push(soa)?;
                writer.flush()?;
            }
        }
        let mut messages = Vec::new();
        let mut rest = &writer.framed[..];
        while let [hi, lo, tail @ ..] = rest {
            let n = usize::from(u16::from_be_bytes([*hi, *lo]));
            messages.push(tail[..n].to_vec());
            rest = &tail[n..];
        }
        Ok(messages)
    }
}

fn is_apex_soa(record: &WireRecord<'_>) -> bool {
    !record.absolute
        && record.owner.is_empty()
        && record.rtype() == hickory_proto::rr::RecordType::SOA
}

fn other(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("transfer message did not encode: {what}"))
}

/// Fills messages one after the other; finished ones are framed into `framed`.
struct AxfrWriter<'z> {
    zone: &'z WireZone,
    signer: Option<ResponseSigner>,
    /// The header every message starts with (counts are set when it is finished).
    header: [u8; 12],
    /// The question, for the first message only.
    question: Option<Vec<u8>>,
    /// The OPT record every message ends with when the request had EDNS.
    opt: Option<[u8; 11]>,
    message: Vec<u8>,
    answers: u16,
    /// Where each owner suffix was written in this message: relative labels (with the
    /// origin after them), or a whole name.
    names: HashMap<(&'z [u8], bool), u16>,
    /// Where the origin was written in this message.
    origin_at: Option<u16>,
    framed: Vec<u8>,
    soa_rest: Option<&'z [u8]>,
}

impl<'z> AxfrWriter<'z> {
    fn new(
        request: &Message,
        zone: &'z WireZone,
        signer: Option<ResponseSigner>,
    ) -> std::io::Result<Self> {
        let mut header = [0u8; 12];
        header[..2].copy_from_slice(&request.id().to_be_bytes());
        let opcode = u8::from(request.op_code());
        // QR, the request's opcode, AA, and RD as asked.
        header[2] = 0x80 | (opcode << 3) | 0x04 | u8::from(request.recursion_desired());
        header[3] = if request.checking_disabled() { 0x10 } else { 0 };
        let question = match request.queries().first() {
            Some(q) => Some(q.to_bytes().map_err(other)?),
            None => None,
        };
        let opt = request.extensions().as_ref().map(|edns| {
            let mut opt = [0u8; 11];
            // Root owner, type OPT, our payload size, no extended rcode, version 0, DO
            // as asked, no options.
            opt[1..3].copy_from_slice(&41u16.to_be_bytes());
            opt[3..5].copy_from_slice(&1232u16.to_be_bytes());
            if edns.flags().dnssec_ok {
                opt[7] = 0x80;
            }
            opt
        });
        let mut writer = Self {
            zone,
            signer,
            header,
            question,
            opt,
            message: Vec::with_capacity(MESSAGE_BUDGET + 1024),
            answers: 0,
            names: HashMap::with_capacity(1024),
            origin_at: None,
            framed: Vec::with_capacity(WRITE_BATCH + 2 * MESSAGE_BUDGET),
            soa_rest: zone.soa_rest(),
        };
        writer.start();
        Ok(writer)
    }

    fn soa(&self) -> Option<WireRecord<'z>> {
        self.soa_rest.map(|rest| WireRecord {
            owner: &[],
            absolute: false,
            rest,
        })
    }

    fn start(&mut self) {
        self.message.clear();
        self.message.extend_from_slice(&self.header);
        self.answers = 0;
        self.names.clear();
        self.origin_at = None;
        if let Some(q) = &self.question {
            self.message[5] = 1;
            self.message.extend_from_slice(q);
            // The question is usually the origin itself: owners point at it.
            let name = &q[..q.len().saturating_sub(4)];
            if name == self.zone.origin_wire() {
                self.origin_at = Some(12);
            }
        }
    }

    /// A SERVFAIL (the zone has no SOA).
    fn servfail(&mut self) -> std::io::Result<()> {
        self.message[3] = (self.message[3] & 0xf0) | 2;
        self.message[2] &= !0x04;
        self.flush()
    }

    fn push(&mut self, record: WireRecord<'z>) -> std::io::Result<()> {
        let estimate = record.owner.len() + record.rest.len() + 2;
        if self.answers > 0 && self.message.len() + estimate > MESSAGE_BUDGET {
            self.flush()?;
        }
        self.write_owner(&record);
        self.message.extend_from_slice(record.rest);
        self.answers += 1;
        Ok(())
    }

    /// Writes the owner name, pointing at the longest suffix already in the message.
    fn write_owner(&mut self, record: &WireRecord<'z>) {
        let owner = record.owner;
        let mut at = 0;
        let mut pointer = None;
        while at < owner.len() {
            let suffix = &owner[at..];
            if record.absolute && suffix == [0] {
                break;
            }
            if let Some(&p) = self.names.get(&(suffix, record.absolute)) {
                pointer = Some(p);
                break;
            }
            let here = self.message.len();
            if here <= MAX_POINTER {
                self.names.insert((suffix, record.absolute), here as u16);
            }
            let len = 1 + usize::from(owner[at]);
            self.message.extend_from_slice(&owner[at..at + len]);
            at += len;
        }
        if pointer.is_none() && !record.absolute {
            pointer = self.origin_at;
            if pointer.is_none() {
                let here = self.message.len();
                if here <= MAX_POINTER {
                    self.origin_at = Some(here as u16);
                }
                self.message.extend_from_slice(self.zone.origin_wire());
                return;
            }
        }
        match pointer {
            Some(p) => self.message.extend_from_slice(&(0xc000 | p).to_be_bytes()),
            // An absolute name written to its end: close it with the root label.
            None => self.message.push(0),
        }
    }

    /// Finishes the message being filled: counts, OPT, signature, frame.
    fn flush(&mut self) -> std::io::Result<()> {
        self.message[6..8].copy_from_slice(&self.answers.to_be_bytes());
        if let Some(opt) = &self.opt {
            self.message.extend_from_slice(opt);
            self.message[11] = 1;
        }
        if self.message.len() + TSIG_ROOM > usize::from(u16::MAX) {
            return Err(other("a record too big for one message"));
        }
        if let Some(signer) = self.signer.as_mut() {
            signer.sign_raw(&mut self.message).map_err(other)?;
        }
        let n = u16::try_from(self.message.len()).map_err(|_| other("message over 64 KiB"))?;
        self.framed.extend_from_slice(&n.to_be_bytes());
        self.framed.extend_from_slice(&self.message);
        // Later messages carry no question (as BIND and Knot send them).
        self.question = None;
        self.start();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::Zone;
    use crate::dns::tsig::{RequestAuth, TsigKey, verify_request};
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::rdata::{A, CNAME, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::sync::Arc;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn big_zone() -> Zone {
        let mut z = Zone::new(name("Example.com."));
        z.insert(Record::from_rdata(
            name("Example.com."),
            3600,
            RData::SOA(SOA::new(
                name("ns1.example.com."),
                name("hostmaster.example.com."),
                42,
                1,
                2,
                3,
                4,
            )),
        ));
        for i in 0..3000u32 {
            let owner = name(&format!("h{i}.Sub{}.Example.com.", i % 7));
            let [_, _, c, d] = i.to_be_bytes();
            z.insert(Record::from_rdata(
                owner,
                300,
                RData::A(A::new(10, 0, c, d)),
            ));
        }
        z.insert(Record::from_rdata(
            name("alias.Example.com."),
            300,
            RData::CNAME(CNAME(name("Target.example.com."))),
        ));
        z.insert(Record::from_rdata(
            name("stray.example.net."),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        z
    }

    /// A signed AXFR written from the wire form: several messages, each decodes with
    /// its compressed names, the TSIG chain verifies, and the records are the zone's
    /// (SOA first and last).
    #[test]
    fn signed_transfer_decodes_verifies_and_carries_the_zone() {
        let zone = big_zone();
        let key = TsigKey::new("xfr.", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0").unwrap();
        let mut request = Message::new();
        request
            .set_id(4711)
            .add_query(Query::query(name("example.com."), RecordType::AXFR));
        request.set_edns(Edns::new());
        let (wire, mut verifier) = key.sign(&mut request).unwrap();
        let decoded = Message::from_vec(&wire).unwrap();
        let RequestAuth::Verified(signer) =
            verify_request(std::slice::from_ref(&key), &wire, &decoded)
        else {
            panic!("request does not verify")
        };
        let xfr = AxfrStream {
            request: decoded,
            signer: Some(signer),
            zone: Arc::new(WireZone::from_zone(&zone).unwrap()),
        };
        let messages = xfr.messages().unwrap();
        assert!(messages.len() > 3, "{} messages", messages.len());
        let mut records = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            assert!(m.len() < 17_000, "message {i} is {} bytes", m.len());
            let message = Message::from_vec(m).unwrap();
            verifier.verify(m, &message).unwrap();
            assert_eq!(message.id(), 4711);
            assert!(message.authoritative());
            assert_eq!(message.queries().len(), usize::from(i == 0));
            assert!(message.extensions().is_some(), "EDNS asked, EDNS answered");
            records.extend(message.answers().iter().cloned());
        }
        verifier.finish().unwrap();
        assert_eq!(
            records.first().map(Record::record_type),
            Some(RecordType::SOA)
        );
        assert_eq!(
            records.last().map(Record::record_type),
            Some(RecordType::SOA)
        );
        records.pop();
        let mut back = Zone::new(zone.origin().clone());
        for r in records {
            back.insert(r);
        }
        assert_eq!(back, zone);
        let alias = back
            .get_by(&name("alias.example.com."), RecordType::CNAME)
            .unwrap();
        assert_eq!(
            alias.name.to_ascii(),
            "alias.Example.com.",
            "owner case kept"
        );
    }

    /// Without a key nothing is signed; a zone without SOA gets SERVFAIL.
    #[test]
    fn unsigned_transfers_and_zones_without_soa() {
        let mut request = Message::new();
        request
            .set_id(1)
            .add_query(Query::query(name("example.com."), RecordType::AXFR));
        let zone = big_zone();
        let messages = AxfrStream {
            request: request.clone(),
            signer: None,
            zone: Arc::new(WireZone::from_zone(&zone).unwrap()),
        }
        .messages()
        .unwrap();
        let count: usize = messages
            .iter()
            .map(|m| {
                let m = Message::from_vec(m).unwrap();
                assert!(m.signature().is_empty());
                m.answers().len()
            })
            .sum();
        assert_eq!(count, zone.record_count() + 1);
        let empty = Zone::new(name("example.com."));
        let messages = AxfrStream {
            request,
            signer: None,
            zone: Arc::new(WireZone::from_zone(&empty).unwrap()),
        }
        .messages()
        .unwrap();
        assert_eq!(messages.len(), 1);
        let m = Message::from_vec(&messages[0]).unwrap();
        assert_eq!(m.response_code(), hickory_proto::op::ResponseCode::ServFail);
    }
}
