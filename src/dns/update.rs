//! RFC 2136 UPDATE: a list of RRset changes applied in TSIG-signed batches
//! sized by encoded bytes, each guarded by prerequisites, a few batches in
//! flight on one TCP connection, with an exact report of what landed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, EncodeMode};

use super::diff::Change;
use super::error::{BatchInfo, DnsError, DnsErrorKind, Operation};
use super::model::RRset;
use super::tsig::{self, ResponseVerifier, TsigKey};
use super::wire::{self, Ctx};

/// How to apply changes.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// Key to sign every UPDATE with.
    pub tsig: Option<TsigKey>,
    /// Deadline for connecting and for each answer.
    pub timeout: Duration,
    /// Upper bound of one UPDATE message's encoded size. hickory stops
    /// compressing after 64 names, so sizes are counted uncompressed: the
    /// real message is never bigger.
    pub max_batch_bytes: usize,
    /// UPDATEs sent ahead of their answers on the one connection.
    pub in_flight: usize,
    /// An RRset change with more records than this gets a batch of its own,
    /// so a server limit on RRset size (BIND's `max-records-per-type`) is
    /// reported against that RRset alone and spares the other changes.
    pub isolate_rrsets_over: usize,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        Self {
            tsig: None,
            timeout: Duration::from_secs(30),
            max_batch_bytes: 60_000,
            in_flight: 4,
            isolate_rrsets_over: 64,
        }
    }
}

/// One RRset change in wire terms. `old` empty: add; `new` empty: delete;
/// both: replace. Records carry their TTL; `old` is what was observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRsetChange {
    /// Owner name.
    pub name: Name,
    /// Type.
    pub rtype: RecordType,
    /// The RRset as observed (empty when it did not exist).
    pub old: Vec<Record>,
    /// The RRset wanted (empty to delete it).
    pub new: Vec<Record>,
}

impl From<&Change> for RRsetChange {
    fn from(change: &Change) -> Self {
        let records = |s: &RRset| s.records().collect::<Vec<_>>();
        match change {
            Change::Add(new) => Self {
                name: new.name.clone(),
                rtype: new.rtype,
                old: Vec::new(),
                new: records(new),
            },
            Change::Replace { old, new } => Self {
                name: new.name.clone(),
                rtype: new.rtype,
                old: records(old),
                new: records(new),
            },
            Change::Delete(old) => Self {
                name: old.name.clone(),
                rtype: old.rtype,
                old: records(old),
                new: Vec::new(),
            },
        }
    }
}

impl RRsetChange {
    fn describe(&self) -> String {
        let verb = match (self.old.is_empty(), self.new.is_empty()) {
            (true, _) => "add",
            (false, true) => "delete",
            (false, false) => "replace",
        };
        format!(
            "{verb} {} {} ({} records)",
            self.name,
            self.rtype,
            self.new.len().max(self.old.len())
        )
    }
}

/// What an apply did, exactly.
#[derive(Debug)]
pub struct ApplyReport {
    /// Changes the server confirmed.
    pub applied: usize,
    /// Batches the server confirmed.
    pub batches_ok: usize,
    /// Batches planned.
    pub batches_total: usize,
    /// Index ranges (into the input slice) of the changes confirmed.
    pub applied_ranges: Vec<Range<usize>>,
    /// The first failing batch (by index) and its error.
    pub failed: Option<(usize, DnsError)>,
    /// Batches sent whose answer never came (connection lost): they may or
    /// may not have been applied; re-observe before trusting anything.
    pub unknown: Vec<usize>,
    /// Batches the server answered with an error code: not applied (the
    /// first failure, by index, is in `failed`).
    pub batches_failed: Vec<usize>,
    /// Batches not sent because an earlier one failed.
    pub not_sent: usize,
    /// Wall time.
    pub duration: Duration,
}

impl ApplyReport {
    /// True when every change landed.
    pub fn is_complete(&self) -> bool {
        self.failed.is_none() && self.unknown.is_empty() && self.batches_ok == self.batches_total
    }

    /// True when the failure is a prerequisite failure (a concurrent writer).
    pub fn conflict(&self) -> bool {
        matches!(
            self.failed,
            Some((
                _,
                DnsError {
                    kind: DnsErrorKind::PrerequisiteFailed(_),
                    ..
                }
            ))
        )
    }
}

/// A batch as planned: which changes, and how they are described. Its message is built only
/// when it is sent, so a plan of 100k changes holds no hickory records.
struct Planned {
    range: Range<usize>,
    info: BatchInfo,
}

#[cfg(test)]
struct Batch {
    range: Range<usize>,
    message: Message,
    info: BatchInfo,
}

/// Encoded size of a record without compression: an upper bound of its
/// size in any message.
fn record_len(r: &Record, scratch: &mut Vec<u8>) -> Result<usize, String> {
    scratch.clear();
    let mut enc = BinEncoder::with_mode(scratch, EncodeMode::Normal);
    // A fresh encoder per record: hickory can only compress against names
    // written in the same encoder, so this is the uncompressed size.
    r.emit(&mut enc).map_err(|e| e.to_string())?;
    Ok(scratch.len())
}

/// Room for the header, zone section, EDNS and the TSIG record.
const OVERHEAD: usize = 12 + 255 + 4 + 11 + 600;

fn change_records(c: &RRsetChange) -> (Vec<Record>, Vec<Record>) {
    let mut prereqs = Vec::new();
    let mut updates = Vec::new();
    if c.old.is_empty() {
        // RFC 2136 §2.4.4: RRset does not exist.
        let mut p = Record::update0(c.name.clone(), 0, c.rtype);
        p.set_dns_class(DNSClass::NONE);
        prereqs.push(p);
    } else if c.rtype == RecordType::SOA {
        // §2.4.1: the SOA exists, whatever its values. Its serial needs no guard (servers
        // ignore an SOA whose serial does not move forward), and PowerDNS 4.7 never matches a
        // value-dependent SOA prerequisite whose RNAME has an escaped dot (`first\.last`).
        let mut p = Record::update0(c.name.clone(), 0, c.rtype);
        p.set_dns_class(DNSClass::ANY);
        prereqs.push(p);
    } else {
        // §2.4.2: RRset exists with exactly these values.
        for r in &c.old {
            let mut p = r.clone();
            p.set_ttl(0).set_dns_class(DNSClass::IN);
            prereqs.push(p);
        }
        // §2.5.2: delete the RRset. Not an SOA: servers ignore that delete (§3.4.2.3) and
        // replace the SOA with the one added (§3.4.2.2).
        if c.rtype != RecordType::SOA {
            let mut d = Record::update0(c.name.clone(), 0, c.rtype);
            d.set_dns_class(DNSClass::ANY);
            updates.push(d);
        }
    }
    for r in &c.new {
        let mut a = r.clone();
        a.set_dns_class(DNSClass::IN);
        updates.push(a);
    }
    (prereqs, updates)
}

fn new_message(zone: &Name) -> Message {
    // RFC 2136: the zone section is the question section, an SOA question.
    wire::request(zone, RecordType::SOA, OpCode::Update)
}

fn subject(changes: &[RRsetChange]) -> String {
    let mut s: Vec<String> = changes.iter().take(3).map(RRsetChange::describe).collect();
    if changes.len() > 3 {
        s.push(format!("and {} more", changes.len() - 3));
    }
    s.join(", ")
}

/// The UPDATE message of `changes`: each one's prerequisites and updates, in order.
fn batch_message(zone: &Name, changes: &[RRsetChange]) -> Message {
    let mut message = new_message(zone);
    for c in changes {
        let (prereqs, updates) = change_records(c);
        for p in prereqs {
            message.add_answer(p);
        }
        for u in updates {
            message.add_name_server(u);
        }
    }
    message
}

/// [`plan_ranges`] with each batch's message built.
#[cfg(test)]
fn plan_batches(
    ctx: &Ctx,
    zone: &Name,
    changes: &[RRsetChange],
    opts: &UpdateOptions,
) -> Result<Vec<Batch>, DnsError> {
    Ok(plan_ranges(ctx, changes, opts)?
        .into_iter()
        .map(|p| Batch {
            message: batch_message(zone, &changes[p.range.clone()]),
            range: p.range,
            info: p.info,
        })
        .collect())
}

/// Cuts `changes` into batches by encoded size. Fails on a change that cannot fit any UPDATE.
fn plan_ranges(
    ctx: &Ctx,
    changes: &[RRsetChange],
    opts: &UpdateOptions,
) -> Result<Vec<Planned>, DnsError> {
    let budget = opts.max_batch_bytes.min(65_535).saturating_sub(OVERHEAD);
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut cur: Option<(Range<usize>, usize)> = None;
    let mut scratch = Vec::with_capacity(512);
    for (i, c) in changes.iter().enumerate() {
        let (prereqs, updates) = change_records(c);
        let mut size = 0;
        for r in prereqs.iter().chain(updates.iter()) {
            size += record_len(r, &mut scratch)
                .map_err(|e| ctx.err(DnsErrorKind::Encode(format!("{}: {e}", c.describe()))))?;
        }
        if size > budget {
            return Err(ctx.err(DnsErrorKind::Encode(format!(
                "{} needs {size} bytes, more than one UPDATE can carry",
                c.describe()
            ))));
        }
        let isolate = c.old.len().max(c.new.len()) > opts.isolate_rrsets_over;
        let fits = matches!(&cur, Some((_, used)) if !isolate && used + size <= budget);
        if !fits {
            if let Some((r, _)) = cur.take() {
                ranges.push(r);
            }
            cur = Some((i..i, 0));
        }
        if let Some((r, used)) = cur.as_mut() {
            r.end = i + 1;
            *used += size;
        }
        if isolate && let Some((r, _)) = cur.take() {
            ranges.push(r);
        }
    }
    if let Some((r, _)) = cur.take() {
        ranges.push(r);
    }
    let total = ranges.len();
    Ok(ranges
        .into_iter()
        .enumerate()
        .map(|(index, range)| Planned {
            info: BatchInfo {
                index,
                total,
                changes: range.len(),
                subject: subject(&changes[range.clone()]),
            },
            range,
        })
        .collect())
}

/// Applies `changes` to `zone` at `server`.
///
/// Never returns early with a partial truth: every outcome, including a
/// failure to connect or to encode, is in the report.
pub async fn apply_changes(
    server: SocketAddr,
    zone: &Name,
    changes: &[RRsetChange],
    opts: &UpdateOptions,
) -> ApplyReport {
    let start = Instant::now();
    let ctx = Ctx {
        server,
        zone: zone.to_ascii(),
        op: Operation::Update,
    };
    let mut report = ApplyReport {
        applied: 0,
        batches_ok: 0,
        batches_total: 0,
        applied_ranges: Vec::new(),
        failed: None,
        unknown: Vec::new(),
        batches_failed: Vec::new(),
        not_sent: 0,
        duration: Duration::ZERO,
    };
    if changes.is_empty() {
        return report;
    }
    let batches = match plan_ranges(&ctx, changes, opts) {
        Ok(b) => b,
        Err(e) => {
            report.failed = Some((0, e));
            report.duration = start.elapsed();
            return report;
        }
    };
    report.batches_total = batches.len();
    run_batches(&ctx, zone, changes, batches, opts, &mut report).await;
    report.applied_ranges.sort_by_key(|r| r.start);
    report.applied_ranges = coalesce(std::mem::take(&mut report.applied_ranges));
    report.duration = start.elapsed();
    report
}

/// Merges adjacent sorted ranges.
fn coalesce(ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

async fn run_batches(
    ctx: &Ctx,
    zone: &Name,
    changes: &[RRsetChange],
    batches: Vec<Planned>,
    opts: &UpdateOptions,
    report: &mut ApplyReport,
) {
    let total = batches.len();
    let tcp = match wire::connect(ctx, opts.timeout).await {
        Ok(t) => t,
        Err(e) => {
            report.failed = Some((0, e.with_batch(batches[0].info.clone())));
            report.not_sent = total;
            return;
        }
    };
    let (mut rd, mut wr) = tcp.into_split();
    let mut inflight: HashMap<u16, (usize, Option<ResponseVerifier>)> = HashMap::new();
    let mut next = 0usize;
    let mut stop = false;
    let mut buf = Vec::with_capacity(512);
    let mut answer_deadline = Instant::now() + opts.timeout;
    let fail = |report: &mut ApplyReport, idx: usize, e: DnsError| {
        if report.failed.as_ref().is_none_or(|(i, _)| idx < *i) {
            report.failed = Some((idx, e));
        }
    };
    loop {
        while !stop && next < total && inflight.len() < opts.in_flight.max(1) {
            let b = &batches[next];
            let mut id = wire::random_id();
            while inflight.contains_key(&id) {
                id = wire::random_id();
            }
            let mut message = batch_message(zone, &changes[b.range.clone()]);
            message.set_id(id);
            let signed = match &opts.tsig {
                Some(k) => k
                    .sign(&mut message)
                    .map(|(w, v)| (w, Some(v)))
                    .map_err(|e| ctx.err(DnsErrorKind::AuthFailed(e.0))),
                None => message
                    .to_vec()
                    .map(|w| (w, None))
                    .map_err(|e| ctx.err(DnsErrorKind::Encode(e.to_string()))),
            };
            let sent = match signed {
                Ok((w, v)) => wire::write_framed(ctx, &mut wr, &w, opts.timeout)
                    .await
                    .map(|_| v),
                Err(e) => Err(e),
            };
            match sent {
                Ok(v) => {
                    if inflight.is_empty() {
                        answer_deadline = Instant::now() + opts.timeout;
                    }
                    inflight.insert(id, (next, v));
                }
                Err(e) => {
                    // A failed write may still have delivered the message.
                    report.unknown.push(next);
                    fail(report, next, e.with_batch(b.info.clone()));
                    stop = true;
                }
            }
            next += 1;
        }
        if inflight.is_empty() {
            break;
        }
        // The round-trip deadline runs from the last answer matched (or the
        // last send), not per read: a server that keeps sending answers to
        // ids we never used must not keep us here.
        let read = tokio::time::timeout_at(
            answer_deadline.into(),
            wire::read_framed(ctx, &mut rd, &mut buf, opts.timeout),
        )
        .await
        .unwrap_or_else(|_| Err(ctx.err(DnsErrorKind::Timeout(opts.timeout))));
        let got = match read {
            Ok(true) => Ok(()),
            Ok(false) => Err(ctx.protocol("server closed the connection")),
            Err(e) => Err(e),
        };
        if let Err(e) = got {
            let mut lost: Vec<usize> = inflight.values().map(|(i, _)| *i).collect();
            lost.sort_unstable();
            if let Some(&first) = lost.first() {
                fail(report, first, e.with_batch(batches[first].info.clone()));
            }
            report.unknown.extend(lost);
            inflight.clear();
            break;
        }
        let resp = match Message::from_vec(&buf) {
            Ok(m) => m,
            Err(e) => {
                // Cannot tell which batch it answers: all in flight are unknown.
                let mut lost: Vec<usize> = inflight.values().map(|(i, _)| *i).collect();
                lost.sort_unstable();
                if let Some(&first) = lost.first() {
                    fail(
                        report,
                        first,
                        ctx.protocol(format!("undecodable answer: {e}"))
                            .with_batch(batches[first].info.clone()),
                    );
                }
                report.unknown.extend(lost);
                inflight.clear();
                break;
            }
        };
        let Some((idx, verifier)) = inflight.remove(&resp.id()) else {
            continue;
        };
        answer_deadline = Instant::now() + opts.timeout;
        let b = &batches[idx];
        let outcome = check_answer(ctx, &buf, &resp, verifier, b);
        match outcome {
            Ok(()) => {
                report.applied += b.range.len();
                report.batches_ok += 1;
                report.applied_ranges.push(b.range.clone());
            }
            Err(e) => {
                // A NOERROR answer whose signature does not verify may still
                // mean the server applied the batch: its outcome is unknown.
                if wire::rcode_error(&resp, ctx.op).is_none() {
                    report.unknown.push(idx);
                } else {
                    report.batches_failed.push(idx);
                }
                fail(report, idx, e.with_batch(b.info.clone()));
                stop = true;
            }
        }
    }
    report.not_sent = total - next;
    report.unknown.sort_unstable();
    report.batches_failed.sort_unstable();
}

fn check_answer(
    ctx: &Ctx,
    wire_resp: &[u8],
    resp: &Message,
    verifier: Option<ResponseVerifier>,
    batch: &Planned,
) -> Result<(), DnsError> {
    if resp.message_type() != MessageType::Response || resp.op_code() != OpCode::Update {
        return Err(ctx.protocol("answer is not an UPDATE response"));
    }
    let mut verifier = verifier;
    if let Some(v) = verifier.as_mut()
        && tsig::claims_signature(resp)
    {
        // Verified before the rcode is believed: a forged signed error must
        // not pass for the server's word.
        v.verify(wire_resp, resp)
            .and_then(|_| v.finish())
            .map_err(|e| ctx.err(DnsErrorKind::AuthFailed(e.0)))?;
        verifier = None;
    }
    if let Some(kind) = wire::rcode_error(resp, ctx.op) {
        let kind = match kind {
            DnsErrorKind::ServFail(_) if batch.info.changes == 1 => {
                DnsErrorKind::ServFail(format!(
                    " on {}; a server limit on RRset size (BIND max-records-per-type) may be exceeded",
                    batch.info.subject
                ))
            }
            k => k,
        };
        return Err(ctx.err(kind));
    }
    if let Some(mut v) = verifier {
        v.verify(wire_resp, resp)
            .and_then(|_| v.finish())
            .map_err(|e| ctx.err(DnsErrorKind::AuthFailed(e.0)))?;
    }
    Ok(())
}

/// Applies planned changes (see [`apply_changes`]); the report's indices
/// and ranges refer to `changes`.
pub async fn apply(
    server: SocketAddr,
    zone: &Name,
    changes: &[Change],
    opts: &UpdateOptions,
) -> ApplyReport {
    let wire: Vec<RRsetChange> = changes.iter().map(RRsetChange::from).collect();
    apply_changes(server, zone, &wire, opts).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, TXT};

    fn a(name: &str, last: u8) -> Record {
        Record::from_rdata(
            Name::from_ascii(name).unwrap(),
            300,
            RData::A(A::new(10, 0, 0, last)),
        )
    }

    fn ctx() -> Ctx {
        Ctx {
            server: "127.0.0.1:53".parse().unwrap(),
            zone: "z.".into(),
            op: Operation::Update,
        }
    }

    #[test]
    fn batches_stay_under_the_byte_budget_whatever_the_types() {
        let zone = Name::from_ascii("z.").unwrap();
        let mut changes = Vec::new();
        for i in 0..5000u32 {
            let name = format!("host-{i}.z.");
            let new = if i % 2 == 0 {
                vec![a(&name, (i % 250) as u8)]
            } else {
                vec![Record::from_rdata(
                    Name::from_ascii(&name).unwrap(),
                    300,
                    RData::TXT(TXT::new(vec!["x".repeat(200)])),
                )]
            };
            changes.push(RRsetChange {
                name: Name::from_ascii(&name).unwrap(),
                rtype: new[0].record_type(),
                old: vec![],
                new,
            });
        }
        let opts = UpdateOptions::default();
        let mut batches = plan_batches(&ctx(), &zone, &changes, &opts).unwrap();
        assert!(batches.len() > 5);
        let mut covered = 0;
        let key = TsigKey::new("k.", "hmac-sha512", "c2VjcmV0").unwrap();
        for b in &mut batches {
            assert_eq!(b.range.start, covered);
            covered = b.range.end;
            b.message.set_id(1);
            let (wire, _) = key.sign(&mut b.message).unwrap();
            assert!(wire.len() <= 60_000, "batch of {} bytes", wire.len());
        }
        assert_eq!(covered, changes.len());
    }

    #[test]
    fn big_rrsets_get_their_own_batch_and_prereqs_match_the_change() {
        let zone = Name::from_ascii("z.").unwrap();
        let big: Vec<Record> = (0..150).map(|i| a("big.z.", i as u8)).collect();
        let changes = vec![
            RRsetChange {
                name: Name::from_ascii("a.z.").unwrap(),
                rtype: RecordType::A,
                old: vec![],
                new: vec![a("a.z.", 1)],
            },
            RRsetChange {
                name: Name::from_ascii("big.z.").unwrap(),
                rtype: RecordType::A,
                old: vec![],
                new: big,
            },
            RRsetChange {
                name: Name::from_ascii("c.z.").unwrap(),
                rtype: RecordType::A,
                old: vec![a("c.z.", 1)],
                new: vec![a("c.z.", 2)],
            },
            RRsetChange {
                name: Name::from_ascii("d.z.").unwrap(),
                rtype: RecordType::A,
                old: vec![a("d.z.", 1)],
                new: vec![],
            },
        ];
        let batches = plan_batches(&ctx(), &zone, &changes, &UpdateOptions::default()).unwrap();
        let ranges: Vec<_> = batches.iter().map(|b| b.range.clone()).collect();
        assert_eq!(ranges, vec![0..1, 1..2, 2..4]);
        assert!(batches[1].info.subject.contains("big.z."));
        let last = &batches[2].message;
        // replace: value prereq + delete rrset + add; delete: value prereq + delete rrset
        assert_eq!(last.answers().len(), 2);
        assert!(
            last.answers()
                .iter()
                .all(|r| r.dns_class() == DNSClass::IN && r.ttl() == 0)
        );
        assert_eq!(last.name_servers().len(), 3);
        let first = &batches[0].message;
        assert_eq!(first.answers()[0].dns_class(), DNSClass::NONE);
    }

    #[test]
    fn an_rrset_too_big_for_any_message_is_an_encode_error() {
        let zone = Name::from_ascii("z.").unwrap();
        let huge: Vec<Record> = (0..400)
            .map(|i| {
                Record::from_rdata(
                    Name::from_ascii("t.z.").unwrap(),
                    1,
                    RData::TXT(TXT::new(vec![format!("{i}{}", "y".repeat(200))])),
                )
            })
            .collect();
        let changes = vec![RRsetChange {
            name: Name::from_ascii("t.z.").unwrap(),
            rtype: RecordType::TXT,
            old: vec![],
            new: huge,
        }];
        let err = plan_batches(&ctx(), &zone, &changes, &UpdateOptions::default())
            .err()
            .unwrap();
        assert_eq!(err.reason(), "EncodeError");
        assert!(err.to_string().contains("t.z."));
    }

    #[test]
    fn an_soa_is_replaced_by_adding_it_under_a_value_independent_prerequisite() {
        let soa = |serial: u32| {
            Record::from_rdata(
                Name::from_ascii("z.").unwrap(),
                300,
                RData::SOA(hickory_proto::rr::rdata::SOA::new(
                    Name::from_ascii("ns.z.").unwrap(),
                    Name::from_ascii("first\\.last.z.").unwrap(),
                    serial,
                    3600,
                    600,
                    86400,
                    60,
                )),
            )
        };
        let (prereqs, updates) = change_records(&RRsetChange {
            name: Name::from_ascii("z.").unwrap(),
            rtype: RecordType::SOA,
            old: vec![soa(1)],
            new: vec![soa(2)],
        });
        // §2.4.1: class ANY, no data, whatever the served values are.
        assert_eq!(prereqs.len(), 1);
        assert_eq!(prereqs[0].dns_class(), DNSClass::ANY);
        assert_eq!(prereqs[0].record_type(), RecordType::SOA);
        assert!(hickory_proto::rr::RecordData::is_update(prereqs[0].data()));
        // No delete of the SOA: the added one replaces it.
        assert_eq!(
            updates,
            vec![{
                let mut r = soa(2);
                r.set_dns_class(DNSClass::IN);
                r
            }]
        );
    }
}
