//! Answering requests at the transfer address: per-zone peer authorisation in front of
//! the embedded server's SOA/AXFR/IXFR answers, and NOTIFY from the backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use super::{IncomingNotify, RefusalReason, State, TransferMethod, TransferRecord, key};
use crate::dns::server::WireZone;
use crate::dns::server::handler::{
    Answer, decode_request, finish, ixfr, response_to, signer_or_reply,
};
use crate::dns::server::{AxfrStream, JournalEntry, Reply, Service, Transport};
use crate::dns::tsig::{self, RequestAuth, TsigKey, tsig_rcode};

fn plain(request: &Message, rcode: ResponseCode, transport: Transport) -> Option<Reply> {
    finish(request, vec![response_to(request, rcode)], None, transport)
}

fn serial_of(data: &RData) -> Option<u32> {
    match data {
        RData::SOA(soa) => Some(soa.serial()),
        _ => None,
    }
}

/// What a verified peer may be served, copied out of the lock.
struct Grant {
    zone: Arc<WireZone>,
    peer: String,
    backlog: Vec<JournalEntry>,
}

impl State {
    fn refused(
        &self,
        reason: RefusalReason,
        request: &Message,
        transport: Transport,
        source: SocketAddr,
    ) -> Option<Reply> {
        self.refuse_for(reason, request);
        let zone = request
            .queries()
            .first()
            .map(|q| q.name().to_ascii())
            .unwrap_or_default();
        tracing::debug!(%source, %zone, reason = reason.as_str(), "transfer server refused a request");
        plain(request, ResponseCode::Refused, transport)
    }

    /// Maps a TSIG outcome to the signer, or to the NOTAUTH answer (counted).
    fn check_tsig(
        &self,
        keys: &[TsigKey],
        wire: &[u8],
        request: &Message,
    ) -> Result<Option<tsig::ResponseSigner>, Option<Reply>> {
        let auth = tsig::verify_request(keys, wire, request);
        match &auth {
            RequestAuth::BadTime(_) => self.refuse_for(RefusalReason::BadTime, request),
            RequestAuth::Refused { error, .. } if *error == tsig_rcode::BADKEY => {
                self.refuse_for(RefusalReason::BadKey, request)
            }
            RequestAuth::Refused { .. } => self.refuse_for(RefusalReason::BadSignature, request),
            _ => {}
        }
        signer_or_reply(request, auth)
    }

    fn query(
        &self,
        wire: &[u8],
        request: &Message,
        transport: Transport,
        source: SocketAddr,
    ) -> Option<Reply> {
        let [q] = request.queries() else {
            self.refuse(RefusalReason::Malformed);
            return plain(request, ResponseCode::FormErr, transport);
        };
        let qtype = q.query_type();
        if !matches!(qtype, RecordType::SOA | RecordType::AXFR | RecordType::IXFR) {
            return self.refused(RefusalReason::Unsupported, request, transport, source);
        }
        // Keys of the peers at this address, and the served version, under one lock.
        let (keys, peers, zone, backlog) = {
            let zones = self.read();
            let served = zones.get(&key(q.name()));
            let Some((served, zone)) = served.and_then(|s| Some((s, s.zone.clone()?))) else {
                drop(zones);
                return self.refused(RefusalReason::NotServed, request, transport, source);
            };
            if !served.enabled {
                drop(zones);
                return self.refused(RefusalReason::Disabled, request, transport, source);
            }
            let peers: Vec<(String, TsigKey)> = served
                .peers
                .iter()
                .filter(|p| p.address.contains(source.ip()))
                .map(|p| (p.name.clone(), p.key.clone()))
                .collect();
            let client_serial = request
                .name_servers()
                .iter()
                .find_map(|r| serial_of(r.data()));
            let backlog = match (qtype, client_serial) {
                (RecordType::IXFR, Some(s)) => served.backlog.since(s),
                _ => Vec::new(),
            };
            let keys: Vec<TsigKey> = peers.iter().map(|(_, k)| k.clone()).collect();
            (keys, peers, zone, backlog)
        };
        if peers.is_empty() {
            return self.refused(RefusalReason::Address, request, transport, source);
        }
        let signer = match self.check_tsig(&keys, wire, request) {
            Ok(Some(s)) => s,
            Ok(None) => return self.refused(RefusalReason::Unsigned, request, transport, source),
            Err(early) => {
                tracing::debug!(%source, zone = %q.name(), "transfer request with a bad TSIG");
                return early;
            }
        };
        let peer = peers
            .iter()
            .find(|(_, k)| crate::dns::model::name_eq(&k.name, &signer.key().name))
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        let grant = Grant {
            zone,
            peer,
            backlog,
        };
        match self.answer(request, qtype, transport, &grant) {
            Answer::Messages(messages) => finish(request, messages, Some(signer), transport),
            Answer::Whole(zone) => Some(Reply {
                stream: Some(Box::new(AxfrStream {
                    request: request.clone(),
                    signer: Some(signer),
                    zone,
                })),
                ..Reply::default()
            }),
        }
    }

    fn answer(
        &self,
        request: &Message,
        qtype: RecordType,
        transport: Transport,
        grant: &Grant,
    ) -> Answer {
        let zone = &grant.zone;
        let serial = zone.soa_serial().unwrap_or(0);
        if qtype == RecordType::SOA {
            let mut resp = response_to(request, ResponseCode::NoError);
            resp.set_authoritative(true);
            if let Some(soa) = zone.soa().cloned() {
                resp.add_answer(soa);
            }
            return Answer::Messages(vec![resp]);
        }
        // Zone content leaves only over TCP; an IXFR over UDP gets the SOA (RFC 1995 2:
        // the client then retries over TCP).
        if transport == Transport::Udp {
            if qtype == RecordType::AXFR {
                return Answer::Messages(vec![response_to(request, ResponseCode::FormErr)]);
            }
            let mut resp = response_to(request, ResponseCode::NoError);
            resp.set_authoritative(true);
            if let Some(soa) = zone.soa().cloned() {
                resp.add_answer(soa);
            }
            return Answer::Messages(vec![resp]);
        }
        let incremental = match qtype {
            RecordType::IXFR => ixfr(request, zone.soa().cloned(), &grant.backlog),
            _ => None,
        };
        let (answer, method) = match incremental {
            // Only the SOA: the peer is up to date, nothing was transferred.
            Some(m) if m.len() == 1 && m[0].answers().len() <= 1 => (Answer::Messages(m), None),
            Some(m) => (Answer::Messages(m), Some(TransferMethod::Ixfr)),
            None => (Answer::Whole(zone.clone()), Some(TransferMethod::Axfr)),
        };
        if let Some(method) = method {
            tracing::info!(
                zone = %zone.origin(),
                peer = %grant.peer,
                ?method,
                serial,
                "outgoing transfer"
            );
            self.record_transfer(TransferRecord {
                zone: zone.origin().clone(),
                peer: grant.peer.clone(),
                method,
                time: SystemTime::now(),
                serial,
            });
        }
        answer
    }

    fn notify_in(
        &self,
        wire: &[u8],
        request: &Message,
        transport: Transport,
        source: SocketAddr,
    ) -> Option<Reply> {
        let Some(q) = request.queries().first() else {
            self.refuse(RefusalReason::Malformed);
            return plain(request, ResponseCode::FormErr, transport);
        };
        let zone = q.name().clone();
        let sources = self
            .read()
            .get(&key(&zone))
            .map(|z| z.notify_sources.clone());
        let Some(sources) = sources else {
            return self.refused(RefusalReason::NotServed, request, transport, source);
        };
        let signer = match self.check_tsig(&sources.keys, wire, request) {
            Ok(s) => s,
            Err(early) => return early,
        };
        let trusted_address = sources.addresses.iter().any(|a| a.contains(source.ip()));
        if signer.is_none() && !trusted_address {
            return self.refused(RefusalReason::Address, request, transport, source);
        }
        let serial = request.answers().iter().find_map(|r| serial_of(r.data()));
        tracing::debug!(%zone, %source, ?serial, "NOTIFY from the backend");
        // Nobody listening is fine: the controller also polls.
        let _ = self.notify_tx.send(IncomingNotify {
            zone: zone.clone(),
            source,
            serial,
        });
        let mut resp = response_to(request, ResponseCode::NoError);
        resp.set_authoritative(true).add_query(q.clone());
        finish(request, vec![resp], signer, transport)
    }
}

impl Service for State {
    fn handle(&self, wire: &[u8], transport: Transport, source: SocketAddr) -> Option<Reply> {
        let request = match decode_request(wire) {
            Ok(m) => m,
            Err(early) => {
                self.refuse(RefusalReason::Malformed);
                return early;
            }
        };
        match request.op_code() {
            OpCode::Query => self.query(wire, &request, transport, source),
            OpCode::Notify => self.notify_in(wire, &request, transport, source),
            _ => {
                self.refuse(RefusalReason::Unsupported);
                plain(&request, ResponseCode::NotImp, transport)
            }
        }
    }
}
