//! Request handling of the embedded server, free of sockets: bytes in, response
//! messages out. Keeping it synchronous and I/O-free lets the property tests
//! drive it with arbitrary packets.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::dns::diff::{Change, zone_diff};
use crate::dns::model::{RRset, RRsetKey, Zone, canonical_rdata, in_zone, name_eq};
use crate::dns::tsig::{self, RequestAuth, ResponseSigner, TsigKey};

use super::wire_zone::WireZone;

mod update;
use update::update;

/// How a request arrived: UDP answers are limited in size, transfers need TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Datagram.
    Udp,
    /// Stream (length-prefixed messages).
    Tcp,
}

/// One journaled change: the records an UPDATE removed and added, between two SOAs.
#[derive(Clone, Debug)]
pub struct JournalEntry {
    /// The SOA before the change.
    pub from_soa: Record,
    /// The SOA after the change.
    pub to_soa: Record,
    /// Records removed (SOA excluded).
    pub deleted: Vec<Record>,
    /// Records added (SOA excluded).
    pub added: Vec<Record>,
}

/// A served zone and its recent history.
#[derive(Clone, Debug)]
pub struct ServedZone {
    /// The zone's content, SOA included; shared with transfers in progress, so an
    /// UPDATE copies it (on write) rather than change what they are sending.
    pub zone: Arc<Zone>,
    /// Changes oldest first, at most `journal_limit` of them.
    pub journal: Vec<JournalEntry>,
}

/// What the server serves and whom it trusts, shared by all its tasks.
#[derive(Debug)]
pub struct Shared {
    /// Zones by lower-cased origin.
    pub zones: RwLock<BTreeMap<RRsetKey, ServedZone>>,
    /// Keys accepted for signed requests.
    pub keys: Vec<TsigKey>,
    /// Journal entries kept per zone.
    pub journal_limit: usize,
}

/// The answer to one request.
#[derive(Debug, Default)]
pub struct Reply {
    /// Response messages in wire form (several for transfers).
    pub messages: Vec<Vec<u8>>,
    /// A zone whose serial changed: its peers must be notified.
    pub changed: Option<(Name, u32)>,
    /// A whole-zone transfer to encode while it is written (TCP listeners only), after
    /// `messages`.
    pub stream: Option<Box<AxfrStream>>,
}

/// A whole-zone answer (AXFR, or IXFR answered AXFR-style), encoded and signed message
/// by message as it is written: a big zone never sits encoded in memory, and the first
/// message leaves at once.
#[derive(Debug)]
pub struct AxfrStream {
    /// The request answered.
    pub request: Message,
    /// Signs every message when the request was signed.
    pub signer: Option<ResponseSigner>,
    /// The version sent.
    pub zone: Arc<WireZone>,
}

/// Largest UDP answer sent, whatever EDNS size the client claims; bigger ones go out
/// truncated (TC) so the client retries over TCP.
pub const MAX_UDP_PAYLOAD: usize = 1232;

/// Most bytes packed into one transfer message before starting the next.
const XFR_MESSAGE_BUDGET: usize = 16_000;

fn zone_key(origin: &Name) -> RRsetKey {
    RRsetKey::new(origin, RecordType::SOA)
}

impl Shared {
    /// A new state serving `zones`.
    pub fn new(keys: Vec<TsigKey>, zones: Vec<Zone>, journal_limit: usize) -> Arc<Self> {
        let map = zones
            .into_iter()
            .map(|zone| {
                (
                    zone_key(zone.origin()),
                    ServedZone {
                        zone: Arc::new(zone),
                        journal: Vec::new(),
                    },
                )
            })
            .collect();
        Arc::new(Self {
            zones: RwLock::new(map),
            keys,
            journal_limit,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<RRsetKey, ServedZone>> {
        // A panic cannot leave a zone half-updated (updates swap a finished copy in), so a
        // poisoned lock still guards consistent data.
        self.zones.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<RRsetKey, ServedZone>> {
        self.zones.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of a served zone.
    pub fn zone(&self, origin: &Name) -> Option<Zone> {
        self.read()
            .get(&zone_key(origin))
            .map(|z| Zone::clone(&z.zone))
    }

    /// Replaces (or adds) a zone's content, journaling the difference when it was served
    /// before; returns the new serial when it changed.
    pub fn put_zone(&self, zone: Zone) -> Option<u32> {
        let key = zone_key(zone.origin());
        let mut zones = self.write();
        match zones.get_mut(&key) {
            Some(served) => {
                let entry = journal_entry(&served.zone, &zone);
                served.zone = Arc::new(zone);
                if let Some(entry) = entry {
                    push_journal(served, entry, self.journal_limit);
                }
                served.zone.soa_serial()
            }
            None => {
                let serial = zone.soa_serial();
                zones.insert(
                    key,
                    ServedZone {
                        zone: Arc::new(zone),
                        journal: Vec::new(),
                    },
                );
                serial
            }
        }
    }

    /// The origin of the served zone holding `name` (the longest match).
    fn zone_for(&self, name: &Name) -> Option<Name> {
        let zones = self.read();
        let mut best: Option<&Name> = None;
        for served in zones.values() {
            let origin = served.zone.origin();
            if in_zone(name, origin) && best.is_none_or(|b| origin.num_labels() > b.num_labels()) {
                best = Some(origin);
            }
        }
        best.cloned()
    }
}

fn push_journal(served: &mut ServedZone, entry: JournalEntry, limit: usize) {
    served.journal.push(entry);
    if served.journal.len() > limit {
        let excess = served.journal.len() - limit;
        served.journal.drain(..excess);
    }
}

pub(crate) fn soa_record(zone: &Zone) -> Option<Record> {
    zone.get(&zone_key(zone.origin()))
        .and_then(|set| set.records().next())
}

fn soa_serial_of(record: &Record) -> Option<u32> {
    match record.data() {
        RData::SOA(soa) => Some(soa.serial()),
        _ => None,
    }
}

/// The journal entry leading from `old` to `new` (SOAs excluded from the lists); `None`
/// when either has no SOA.
pub(crate) fn journal_entry(old: &Zone, new: &Zone) -> Option<JournalEntry> {
    let from_soa = soa_record(old)?;
    let to_soa = soa_record(new)?;
    let mut deleted = Vec::new();
    let mut added = Vec::new();
    for change in zone_diff(old, new) {
        let (before, after) = match &change {
            Change::Add(set) => (None, Some(set)),
            Change::Delete(set) => (Some(set), None),
            Change::Replace { old, new } => (Some(old), Some(new)),
        };
        rrset_delta(before, after, &mut deleted, &mut added);
    }
    Some(JournalEntry {
        from_soa,
        to_soa,
        deleted,
        added,
    })
}

/// The records leaving and joining one RRset (SOA excluded: the journal's SOAs carry it).
fn rrset_delta(
    before: Option<&RRset>,
    after: Option<&RRset>,
    deleted: &mut Vec<Record>,
    added: &mut Vec<Record>,
) {
    if before.or(after).is_some_and(|s| s.rtype == RecordType::SOA) {
        return;
    }
    match (before, after) {
        (None, Some(new)) => added.extend(new.records()),
        (Some(old), None) => deleted.extend(old.records()),
        (Some(old), Some(new)) => {
            // A TTL change rewrites every record; otherwise only the difference moves.
            let ttl_changed = old.ttl != new.ttl;
            deleted.extend(
                old.records()
                    .filter(|r| ttl_changed || !new.contains(r.data())),
            );
            added.extend(
                new.records()
                    .filter(|r| ttl_changed || !old.contains(r.data())),
            );
        }
        (None, None) => {}
    }
}

/// Handles one request. `None` means drop it silently (too broken to answer).
pub fn handle(shared: &Shared, wire: &[u8], transport: Transport) -> Option<Reply> {
    handle_with(shared, wire, transport, false)
}

/// Like [`handle`]; with `stream`, whole-zone transfers come back as
/// [`Reply::stream`] rather than encoded in [`Reply::messages`].
pub fn handle_with(
    shared: &Shared,
    wire: &[u8],
    transport: Transport,
    stream: bool,
) -> Option<Reply> {
    let request = match decode_request(wire) {
        Ok(m) => m,
        Err(early) => return early,
    };
    let auth = tsig::verify_request(&shared.keys, wire, &request);
    let signer = match signer_or_reply(&request, auth) {
        Ok(s) => s,
        Err(early) => return early,
    };
    let (messages, changed) = match request.op_code() {
        OpCode::Query => match query(shared, &request, transport, signer.is_some()) {
            Answer::Messages(m) => (m, None),
            Answer::Whole(zone) => {
                let xfr = AxfrStream {
                    request,
                    signer,
                    zone,
                };
                if stream {
                    return Some(Reply {
                        stream: Some(Box::new(xfr)),
                        ..Reply::default()
                    });
                }
                return Some(Reply {
                    messages: xfr.messages().ok()?,
                    ..Reply::default()
                });
            }
        },
        OpCode::Update => {
            if signer.is_none() {
                (vec![response_to(&request, ResponseCode::Refused)], None)
            } else {
                update(shared, &request)
            }
        }
        // We are the primary: a NOTIFY has nothing to tell us, but acknowledging it keeps
        // the sender from retrying.
        OpCode::Notify => {
            let mut resp = response_to(&request, ResponseCode::NoError);
            resp.set_authoritative(true);
            (vec![resp], None)
        }
        _ => (vec![response_to(&request, ResponseCode::NotImp)], None),
    };
    let mut reply = finish(&request, messages, signer, transport)?;
    reply.changed = changed;
    Some(reply)
}

/// Decodes a request; `Err` carries what to answer instead (FORMERR for a request whose
/// header decodes, nothing for responses or garbage).
pub fn decode_request(wire: &[u8]) -> Result<Message, Option<Reply>> {
    let request = match Message::from_vec(wire) {
        Ok(m) => m,
        Err(_) => return Err(formerr_from_header(wire)),
    };
    if request.message_type() != MessageType::Query {
        // Never answer a response: that is how reflection loops start.
        return Err(None);
    }
    Ok(request)
}

/// The signer for the responses of a request whose TSIG was checked; `Err` carries the
/// NOTAUTH answer a bad signature gets (RFC 8945 5.2).
pub fn signer_or_reply(
    request: &Message,
    auth: RequestAuth,
) -> Result<Option<ResponseSigner>, Option<Reply>> {
    match auth {
        RequestAuth::Unsigned => Ok(None),
        RequestAuth::Verified(s) => Ok(Some(s)),
        RequestAuth::BadTime(mut signer) => {
            let mut resp = response_to(request, ResponseCode::NotAuth);
            Err(signer.sign(&mut resp).ok().map(|m| Reply {
                messages: vec![m],
                ..Reply::default()
            }))
        }
        RequestAuth::Refused {
            key_name,
            algorithm,
            error,
        } => {
            let mut resp = response_to(request, ResponseCode::NotAuth);
            resp.add_tsig(tsig::error_tsig_record(
                &key_name,
                &algorithm,
                request.id(),
                error,
            ));
            Err(resp.to_vec().ok().map(|m| Reply {
                messages: vec![m],
                ..Reply::default()
            }))
        }
    }
}

/// Encodes (and signs, when the request was signed) the response messages; a UDP answer
/// too big for the client goes out truncated.
pub fn finish(
    request: &Message,
    messages: Vec<Message>,
    mut signer: Option<ResponseSigner>,
    transport: Transport,
) -> Option<Reply> {
    let limit = match transport {
        // The client's EDNS size is believed only up to 1232 (the DNS flag day 2020
        // value): a spoofed source claiming 65535 must not get a 50x amplifier.
        Transport::Udp => usize::from(request.max_payload()).min(MAX_UDP_PAYLOAD),
        Transport::Tcp => usize::from(u16::MAX),
    };
    let mut out = Vec::with_capacity(messages.len());
    for mut message in messages {
        let wire = encode(&mut message, signer.as_mut(), limit, request)?;
        out.push(wire);
    }
    Some(Reply {
        messages: out,
        ..Reply::default()
    })
}

/// Encodes (and signs) one response; one too big for the transport goes out truncated.
pub(crate) fn encode(
    message: &mut Message,
    signer: Option<&mut ResponseSigner>,
    limit: usize,
    request: &Message,
) -> Option<Vec<u8>> {
    let plain = message.to_vec().ok()?;
    // Room for a TSIG record with a SHA-512 MAC.
    let reserve = if signer.is_some() { 160 } else { 0 };
    if plain.len() + reserve > limit {
        let mut truncated = response_to(request, message.response_code());
        truncated
            .set_authoritative(message.authoritative())
            .set_truncated(true);
        *message = truncated;
    }
    match signer {
        Some(s) => s.sign(message).ok(),
        None => message.to_vec().ok(),
    }
}

/// FORMERR for a request whose header at least decodes; nothing otherwise.
fn formerr_from_header(wire: &[u8]) -> Option<Reply> {
    let mut decoder = BinDecoder::new(wire);
    let header = Header::read(&mut decoder).ok()?;
    if header.message_type() != MessageType::Query {
        return None;
    }
    let mut resp = Message::new();
    resp.set_id(header.id())
        .set_message_type(MessageType::Response)
        .set_op_code(header.op_code())
        .set_response_code(ResponseCode::FormErr);
    Some(Reply {
        messages: vec![resp.to_vec().ok()?],
        ..Reply::default()
    })
}

/// An empty response to `request` with its question and `rcode`.
pub fn response_to(request: &Message, rcode: ResponseCode) -> Message {
    let mut resp = Message::new();
    resp.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_checking_disabled(request.checking_disabled())
        .set_response_code(rcode);
    if request.op_code() == OpCode::Query {
        resp.add_queries(request.queries().iter().cloned());
    }
    if let Some(edns) = request.extensions() {
        let mut e = Edns::new();
        e.set_max_payload(1232)
            .set_version(0)
            .set_dnssec_ok(edns.flags().dnssec_ok);
        resp.set_edns(e);
    }
    resp
}

/// What a query is answered with: messages, or the whole zone (AXFR).
pub(crate) enum Answer {
    Messages(Vec<Message>),
    Whole(Arc<WireZone>),
}

impl From<Vec<Message>> for Answer {
    fn from(m: Vec<Message>) -> Self {
        Answer::Messages(m)
    }
}

fn query(shared: &Shared, request: &Message, transport: Transport, signed: bool) -> Answer {
    let [q] = request.queries() else {
        return vec![response_to(request, ResponseCode::FormErr)].into();
    };
    if q.query_class() != DNSClass::IN && q.query_class() != DNSClass::ANY {
        return vec![response_to(request, ResponseCode::Refused)].into();
    }
    let Some(origin) = shared.zone_for(q.name()) else {
        return vec![response_to(request, ResponseCode::Refused)].into();
    };
    match q.query_type() {
        RecordType::AXFR | RecordType::IXFR => {
            // Zone content leaves only over TCP and to holders of a key.
            if transport == Transport::Udp || !signed || !name_eq(q.name(), &origin) {
                let code = if transport == Transport::Udp {
                    ResponseCode::FormErr
                } else if !signed {
                    ResponseCode::Refused
                } else {
                    ResponseCode::NotAuth
                };
                return vec![response_to(request, code)].into();
            }
            let zones = shared.read();
            let Some(served) = zones.get(&zone_key(&origin)) else {
                return vec![response_to(request, ResponseCode::Refused)].into();
            };
            if q.query_type() == RecordType::IXFR
                && let Some(messages) = ixfr(request, soa_record(&served.zone), &served.journal)
            {
                return messages.into();
            }
            let zone = served.zone.clone();
            drop(zones);
            // The embedded server keeps models (UPDATE edits them); a transfer puts one in
            // wire form first.
            match WireZone::from_zone(&zone) {
                Ok(wire) => Answer::Whole(Arc::new(wire)),
                Err(e) => {
                    tracing::warn!(error = %e, "zone not transferable");
                    vec![response_to(request, ResponseCode::ServFail)].into()
                }
            }
        }
        _ => {
            let zones = shared.read();
            let Some(served) = zones.get(&zone_key(&origin)) else {
                return vec![response_to(request, ResponseCode::Refused)].into();
            };
            vec![lookup(request, q, &served.zone)].into()
        }
    }
}

/// An authoritative answer from one zone.
fn lookup(request: &Message, q: &Query, zone: &Zone) -> Message {
    let origin = zone.origin();
    let name = q.name();
    let mut resp = response_to(request, ResponseCode::NoError);
    // A delegation at or above the name (below the apex) answers with a referral.
    let mut cut = name.clone();
    while cut.num_labels() > origin.num_labels() {
        if let Some(ns) = zone.get(&RRsetKey::new(&cut, RecordType::NS)) {
            let ds_here = name_eq(&cut, name) && q.query_type() == RecordType::DS;
            if !ds_here {
                resp.add_name_servers(ns.records());
                return resp;
            }
        }
        cut = cut.base_name();
    }
    resp.set_authoritative(true);
    let mut sets: Vec<RRset> = zone.rrsets_at(name).collect();
    let mut synthesized = false;
    if sets.is_empty()
        && !zone.has_descendants(name)
        && let Some(wild) = wildcard_source(zone, name)
    {
        // RFC 4592: the wildcard's RRsets answer under the queried name.
        sets = zone.rrsets_at(&wild).collect();
        synthesized = true;
    }
    let owned = |set: &RRset| -> Vec<Record> {
        if synthesized {
            set.records()
                .map(|mut r| {
                    r.set_name(name.clone());
                    r
                })
                .collect()
        } else {
            set.records().collect()
        }
    };
    let qtype = q.query_type();
    // RFC 8482: ANY gets one RRset, not the whole name; it is a favourite of amplifiers.
    let matching: Vec<&RRset> = if qtype == RecordType::ANY {
        sets.iter().take(1).collect()
    } else {
        sets.iter().filter(|s| s.rtype == qtype).collect()
    };
    if !matching.is_empty() {
        for set in matching {
            resp.add_answers(owned(set));
        }
        return resp;
    }
    if let Some(cname) = sets.iter().find(|s| s.rtype == RecordType::CNAME) {
        resp.add_answers(owned(cname));
        return resp;
    }
    if sets.is_empty() && !zone.has_descendants(name) {
        resp.set_response_code(ResponseCode::NXDomain);
    }
    if let Some(soa) = soa_record(zone) {
        resp.add_name_server(soa);
    }
    resp
}

/// The wildcard owner (`*.<closest encloser>`) that answers for a name that does not
/// exist, when the zone has one.
fn wildcard_source(zone: &Zone, name: &Name) -> Option<Name> {
    let origin = zone.origin();
    let mut encloser = name.base_name();
    while encloser.num_labels() >= origin.num_labels() && in_zone(&encloser, origin) {
        let exists = zone.rrsets_at(&encloser).next().is_some() || zone.has_descendants(&encloser);
        if exists {
            let wild = Name::from_ascii("*").ok()?.append_domain(&encloser).ok()?;
            return zone.rrsets_at(&wild).next().is_some().then_some(wild);
        }
        if encloser.num_labels() == 0 {
            break;
        }
        encloser = encloser.base_name();
    }
    None
}

/// Packs records into response messages of bounded size.
pub(crate) struct Packer<'a> {
    request: &'a Message,
    messages: Vec<Message>,
    current: Message,
    size: usize,
    budget: usize,
}

impl<'a> Packer<'a> {
    pub(crate) fn new(request: &'a Message) -> Self {
        let mut current = response_to(request, ResponseCode::NoError);
        current.set_authoritative(true);
        Self {
            request,
            messages: Vec::new(),
            current,
            size: 64,
            budget: XFR_MESSAGE_BUDGET,
        }
    }

    pub(crate) fn push(&mut self, record: Record) {
        // An estimate is enough: the budget leaves ample room under 64 KiB.
        let estimate = record.name().len() + 12 + rdata_len(record.data());
        if self.size + estimate > self.budget && !self.current.answers().is_empty() {
            let mut next = response_to(self.request, ResponseCode::NoError);
            next.set_authoritative(true).take_queries();
            let done = std::mem::replace(&mut self.current, next);
            self.messages.push(done);
            self.size = 64;
        }
        self.size += estimate;
        self.current.add_answer(record);
    }

    pub(crate) fn finish(mut self) -> Vec<Message> {
        self.messages.push(self.current);
        self.messages
    }
}

/// Names inside rdata are counted uncompressed by the canonical form: an upper bound.
fn rdata_len(rdata: &RData) -> usize {
    match rdata {
        // Most records of big zones: no encoding needed to know their size.
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        _ => canonical_rdata(rdata).len(),
    }
}

/// IXFR from the journal (RFC 1995), `current` being the served SOA; `None` when the journal does not reach back to the
/// client's serial: the caller answers AXFR-style, with the whole zone.
pub(crate) fn ixfr<'a, J>(
    request: &Message,
    current: Option<Record>,
    journal: J,
) -> Option<Vec<Message>>
where
    J: IntoIterator<Item = &'a JournalEntry>,
{
    let Some(current) = current else {
        return Some(vec![response_to(request, ResponseCode::ServFail)]);
    };
    let current_serial = soa_serial_of(&current).unwrap_or(0);
    let client_serial = request.name_servers().iter().find_map(soa_serial_of);
    let Some(client_serial) = client_serial else {
        return Some(vec![response_to(request, ResponseCode::FormErr)]);
    };
    if client_serial == current_serial || crate::dns::wire::serial_gt(client_serial, current_serial)
    {
        let mut resp = response_to(request, ResponseCode::NoError);
        resp.set_authoritative(true).add_answer(current);
        return Some(vec![resp]);
    }
    let mut entries = journal
        .into_iter()
        .skip_while(|e| soa_serial_of(&e.from_soa) != Some(client_serial))
        .peekable();
    entries.peek()?;
    let mut packer = Packer::new(request);
    packer.push(current.clone());
    for entry in entries {
        packer.push(entry.from_soa.clone());
        for r in &entry.deleted {
            packer.push(r.clone());
        }
        packer.push(entry.to_soa.clone());
        for r in &entry.added {
            packer.push(r.clone());
        }
    }
    packer.push(current);
    Some(packer.finish())
}
