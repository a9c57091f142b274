//! Our own AXFR/IXFR client.
//!
//! hickory's `zone_transfer()` silently drops messages of big transfers
//! (bounded channel with `try_send`, hickory-dns#2049), so we read the TCP
//! stream ourselves: 2-byte length prefix, `read_exact`, one message decoded
//! at a time and checked (id, rcode, question, TSIG chain, SOA first and
//! last, serials). Records go to the caller's sink as they arrive; no raw
//! message is kept after it has been decoded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::TcpStream;

use super::diff::{Change, StreamDiff};
use super::error::{DnsError, DnsErrorKind, Operation};
use super::model::{Zone, ZoneBuilder};
use super::tsig::{self, ResponseVerifier, TsigKey};
use super::wire::{self, Ctx};

/// How to run a transfer.
///
/// Every transfer is bounded: a server that streams records or empty messages
/// forever, or trickles them, ends with `TransferTimeout`/`TransferTooLarge`
/// instead of holding memory and the zone's lock without end.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Key to sign the request and verify every response message with.
    pub tsig: Option<TsigKey>,
    /// Deadline for the TCP connection.
    pub connect_timeout: Duration,
    /// Deadline for each read: a server silent this long is given up on.
    pub idle_timeout: Duration,
    /// Deadline for the whole transfer, IXFR-to-AXFR fallback included.
    pub deadline: Duration,
    /// Most records accepted (the SOA counted once).
    pub max_records: u64,
    /// Most response bytes accepted (without length prefixes).
    pub max_bytes: u64,
    /// Most response messages accepted. A message of a real transfer holds at
    /// least one record, so this only bites a server sending empty messages.
    pub max_messages: u64,
}

/// The whole-transfer deadline when nothing is known about the zone's size.
pub const DEFAULT_TRANSFER_DEADLINE: Duration = Duration::from_secs(600);
/// Five times the biggest zone the project is tested with (1M records).
pub const DEFAULT_MAX_RECORDS: u64 = 5_000_000;
/// 1 GiB: a 5M-record zone of ordinary records is far below.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// The per-zone bounds of every transfer (the DnsZone's `spec.transfer`, or the
/// standalone commands' flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferBounds {
    /// Deadline for the whole transfer; `None` scales the default to the zone's size.
    pub deadline: Option<Duration>,
    /// Most records accepted.
    pub max_records: u64,
    /// Most response bytes accepted.
    pub max_bytes: u64,
}

impl Default for TransferBounds {
    fn default() -> Self {
        Self {
            deadline: None,
            max_records: DEFAULT_MAX_RECORDS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Bounds given on a command line, each replacing the manifest's (or the default) when set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundsOverride {
    pub deadline: Option<Duration>,
    pub max_records: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl TransferBounds {
    /// These bounds with the set fields of `o` in their place.
    pub fn overridden(self, o: BoundsOverride) -> Self {
        Self {
            deadline: o.deadline.or(self.deadline),
            max_records: o.max_records.unwrap_or(self.max_records),
            max_bytes: o.max_bytes.unwrap_or(self.max_bytes),
        }
    }
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            tsig: None,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            deadline: DEFAULT_TRANSFER_DEADLINE,
            max_records: DEFAULT_MAX_RECORDS,
            max_bytes: DEFAULT_MAX_BYTES,
            max_messages: DEFAULT_MAX_RECORDS + 1,
        }
    }
}

impl TransferOptions {
    /// Options bounded by `bounds`; a zone expected to hold `expected_records` gets more
    /// time when no deadline is set. The message cap follows the record cap: a message of a
    /// real transfer holds at least one record.
    pub fn bounded(bounds: TransferBounds, expected_records: u64) -> Self {
        let base = Self {
            max_records: bounds.max_records,
            max_bytes: bounds.max_bytes,
            max_messages: bounds.max_records.saturating_add(1),
            ..Self::default()
        };
        match bounds.deadline {
            Some(deadline) => Self { deadline, ..base },
            None => base.scaled_for(expected_records),
        }
    }

    /// Scales the deadline to a zone expected to hold `records` records: a
    /// minute more per 100,000 records beyond the first million (a loaded
    /// 2-core machine reads well over 20,000 records a second, so the default
    /// 10 minutes covers a million with room to spare).
    pub fn scaled_for(mut self, records: u64) -> Self {
        let extra = records.saturating_sub(1_000_000) / 100_000;
        self.deadline += Duration::from_secs(60 * extra);
        self
    }
}

/// How the zone content was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMethod {
    /// Full transfer asked for.
    Axfr,
    /// Incremental transfer.
    Ixfr,
    /// IXFR asked for, the server sent the full zone in its answer.
    IxfrFullAnswer,
    /// IXFR refused or not implemented; a separate AXFR was made.
    AxfrFallback,
    /// IXFR answered with a single SOA: nothing changed.
    UpToDate,
}

/// Figures about one transfer.
impl TransferMethod {
    /// The query type that carried the data: what status and metrics call the method.
    pub fn query_type(self) -> &'static str {
        match self {
            TransferMethod::Ixfr | TransferMethod::UpToDate => "IXFR",
            TransferMethod::Axfr
            | TransferMethod::AxfrFallback
            | TransferMethod::IxfrFullAnswer => "AXFR",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferStats {
    /// How the content was obtained.
    pub method: TransferMethod,
    /// Response messages read.
    pub messages: usize,
    /// Response bytes read (without length prefixes).
    pub bytes: u64,
    /// Records handed to the sink or to the IXFR steps (SOA counted once).
    pub records: u64,
    /// The zone's serial at the server.
    pub serial: u32,
    /// Wall time from connect to the last message.
    pub duration: Duration,
}

/// One serial step of an IXFR answer, SOA records left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IxfrStep {
    /// Serial the step starts from.
    pub from_serial: u32,
    /// Serial the step leads to.
    pub to_serial: u32,
    /// Records removed.
    pub deleted: Vec<Record>,
    /// Records added.
    pub added: Vec<Record>,
    /// The SOA record of `to_serial`.
    pub soa: Option<Record>,
}

/// The result of an IXFR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IxfrOutcome {
    /// The server's serial is not newer than ours.
    UpToDate,
    /// The changes since our serial, oldest step first.
    Incremental(Vec<IxfrStep>),
    /// The full zone was streamed into the sink (IXFR answered AXFR-style,
    /// or refused and followed by an AXFR).
    Full,
}

/// Receives records as they arrive. An `Err` aborts the transfer.
pub type RecordSink<'a> = dyn FnMut(Record) -> Result<(), String> + Send + 'a;

/// Transfers `zone` by AXFR, handing every record (the SOA once) to `sink`.
///
/// On error the sink has seen a partial zone: the caller must discard what
/// it built.
pub async fn axfr(
    server: SocketAddr,
    zone: &Name,
    opts: &TransferOptions,
    sink: &mut RecordSink<'_>,
) -> Result<TransferStats, DnsError> {
    let ctx = Ctx {
        server,
        zone: zone.to_ascii(),
        op: Operation::Axfr,
    };
    let deadline = tokio::time::Instant::now() + opts.deadline;
    within(&ctx, deadline, opts, axfr_until(&ctx, zone, opts, sink)).await
}

/// Runs a transfer until `deadline`; dropping it there drops the connection
/// and whatever the caller's sink holds goes with the error.
async fn within<T>(
    ctx: &Ctx,
    deadline: tokio::time::Instant,
    opts: &TransferOptions,
    transfer: impl Future<Output = Result<T, DnsError>>,
) -> Result<T, DnsError> {
    tokio::time::timeout_at(deadline, transfer)
        .await
        .unwrap_or_else(|_| Err(ctx.err(DnsErrorKind::TransferTimeout(opts.deadline))))
}

async fn axfr_until(
    ctx: &Ctx,
    zone: &Name,
    opts: &TransferOptions,
    sink: &mut RecordSink<'_>,
) -> Result<TransferStats, DnsError> {
    let ctx = ctx.clone();
    let start = Instant::now();
    let mut conn = Conn::open(&ctx, zone, RecordType::AXFR, None, opts).await?;
    let mut stats = TransferStats {
        method: TransferMethod::Axfr,
        messages: 0,
        bytes: 0,
        records: 0,
        serial: 0,
        duration: Duration::ZERO,
    };
    let mut serial: Option<u32> = None;
    let mut done = false;
    while !done {
        let msg = conn.next(&ctx, &mut stats, opts).await?;
        for record in msg.into_parts().answers {
            if done {
                return Err(ctx.protocol("records after the closing SOA"));
            }
            match (serial, soa_serial(&record)) {
                (None, Some(s)) => {
                    if record.name() != zone {
                        return Err(ctx.protocol(format!(
                            "first SOA is for {} instead of the zone",
                            record.name()
                        )));
                    }
                    serial = Some(s);
                    count_records(&ctx, &mut stats, opts, 1)?;
                    sink(record).map_err(|e| ctx.protocol(format!("record rejected: {e}")))?;
                }
                (None, None) => {
                    return Err(ctx.protocol(format!(
                        "transfer does not start with the SOA but with {} {}",
                        record.name(),
                        record.record_type()
                    )));
                }
                (Some(first), Some(s)) => {
                    if s != first || record.name() != zone {
                        return Err(ctx.protocol(format!(
                            "SOA serial {s} of {} inside a transfer of serial {first}",
                            record.name()
                        )));
                    }
                    done = true;
                }
                (Some(_), None) => {
                    count_records(&ctx, &mut stats, opts, 1)?;
                    sink(record).map_err(|e| ctx.protocol(format!("record rejected: {e}")))?;
                }
            }
        }
    }
    conn.finish(&ctx)?;
    stats.serial = serial.unwrap_or(0);
    stats.duration = start.elapsed();
    Ok(stats)
}

/// Transfers `zone` by AXFR into the zone model, records merged into their
/// RRsets as they arrive. An error never yields a partial zone.
pub async fn axfr_zone(
    server: SocketAddr,
    zone: &Name,
    opts: &TransferOptions,
) -> Result<(Zone, TransferStats), DnsError> {
    let mut model = ZoneBuilder::new(zone.clone());
    let stats = axfr(server, zone, opts, &mut |r| {
        model.push(r);
        Ok(())
    })
    .await?;
    Ok((model.finish(), stats))
}

/// [`axfr_zone`] diffed against the snapshot `old` while it arrives: the zone and
/// [`zone_diff`](super::diff::zone_diff)`(old, zone)`, the diff ready with the last record.
pub async fn axfr_zone_diff(
    server: SocketAddr,
    old: &Zone,
    opts: &TransferOptions,
) -> Result<(Zone, Vec<Change>, TransferStats), DnsError> {
    let mut model = StreamDiff::new(old);
    let stats = axfr(server, old.origin(), opts, &mut |r| {
        model.push(r);
        Ok(())
    })
    .await?;
    let (zone, changes) = model.finish();
    Ok((zone, changes, stats))
}

/// RRsets from which a replaced snapshot is freed on a blocking thread.
const RETIRE_IN_BACKGROUND: usize = 10_000;

/// Frees a snapshot a transfer replaced. A million RRsets are a million blocks to free
/// (20 ms), which would hold up the async worker and every other zone's reconcile on it.
pub(crate) fn retire(zone: Zone) {
    if zone.rrset_count() < RETIRE_IN_BACKGROUND {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(move || drop(zone));
    }
}

/// Brings `observed` up to date by IXFR from its SOA serial: the steps are
/// applied to it in order, or it is replaced by the full zone when the
/// server answers with one. Returns whether anything changed. On error
/// `observed` is left as it was.
pub async fn ixfr_refresh(
    server: SocketAddr,
    observed: &mut Zone,
    opts: &TransferOptions,
) -> Result<(bool, TransferStats), DnsError> {
    let name = observed.origin().clone();
    let ctx = Ctx {
        server,
        zone: name.to_ascii(),
        op: Operation::Ixfr,
    };
    let Some(serial) = observed.soa_serial() else {
        let (full, stats) = axfr_zone(server, &name, opts).await?;
        retire(std::mem::replace(observed, full));
        return Ok((true, stats));
    };
    let mut full = ZoneBuilder::new(name.clone());
    let (outcome, stats) = ixfr(server, &name, serial, opts, &mut |r| {
        full.push(r);
        Ok(())
    })
    .await?;
    match outcome {
        IxfrOutcome::UpToDate => Ok((false, stats)),
        IxfrOutcome::Full => {
            retire(std::mem::replace(observed, full.finish()));
            Ok((true, stats))
        }
        IxfrOutcome::Incremental(steps) => {
            let mut next = observed.clone();
            for step in steps {
                for r in &step.deleted {
                    next.remove(r);
                }
                for r in step.added {
                    next.insert(r);
                }
                let soa = step
                    .soa
                    .ok_or_else(|| ctx.protocol("IXFR step without its SOA"))?;
                next.remove_rrset(&super::model::RRsetKey::new(&name, RecordType::SOA));
                next.insert(soa);
            }
            retire(std::mem::replace(observed, next));
            Ok((true, stats))
        }
    }
}

/// Asks for the changes since `from_serial` by IXFR.
///
/// A server that answers with the full zone, or refuses IXFR (REFUSED,
/// NOTIMP, FORMERR), has the full zone streamed into `full_sink` (after a
/// separate AXFR in the second case) and [`IxfrOutcome::Full`] returned.
pub async fn ixfr(
    server: SocketAddr,
    zone: &Name,
    from_serial: u32,
    opts: &TransferOptions,
    full_sink: &mut RecordSink<'_>,
) -> Result<(IxfrOutcome, TransferStats), DnsError> {
    let ctx = Ctx {
        server,
        zone: zone.to_ascii(),
        op: Operation::Ixfr,
    };
    let deadline = tokio::time::Instant::now() + opts.deadline;
    within(
        &ctx,
        deadline,
        opts,
        ixfr_until(&ctx, zone, from_serial, opts, full_sink),
    )
    .await
}

async fn ixfr_until(
    ctx: &Ctx,
    zone: &Name,
    from_serial: u32,
    opts: &TransferOptions,
    full_sink: &mut RecordSink<'_>,
) -> Result<(IxfrOutcome, TransferStats), DnsError> {
    let server = ctx.server;
    let ctx = ctx.clone();
    let start = Instant::now();
    let mut stats = TransferStats {
        method: TransferMethod::Ixfr,
        messages: 0,
        bytes: 0,
        records: 0,
        serial: 0,
        duration: Duration::ZERO,
    };
    let mut conn = match Conn::open(&ctx, zone, RecordType::IXFR, Some(from_serial), opts).await {
        Ok(c) => c,
        Err(e) => return Err(e),
    };
    let first = match conn.next(&ctx, &mut stats, opts).await {
        Ok(m) => m,
        Err(e)
            if matches!(
                e.kind,
                DnsErrorKind::TransferRefused(_) | DnsErrorKind::NotImp | DnsErrorKind::FormErr
            ) =>
        {
            drop(conn);
            // Same deadline as the IXFR: the caller's `within` still runs.
            let axfr_ctx = Ctx {
                server,
                zone: ctx.zone.clone(),
                op: Operation::Axfr,
            };
            let mut s = axfr_until(&axfr_ctx, zone, opts, full_sink).await?;
            s.method = TransferMethod::AxfrFallback;
            s.messages += stats.messages;
            s.bytes += stats.bytes;
            s.duration = start.elapsed();
            return Ok((IxfrOutcome::Full, s));
        }
        Err(e) => return Err(e),
    };

    let mut state = IxState::Start;
    let mut new_serial = 0u32;
    let mut steps: Vec<IxfrStep> = Vec::new();
    let mut pending = Some(first);
    loop {
        let msg = match pending.take() {
            Some(m) => m,
            None => conn.next(&ctx, &mut stats, opts).await?,
        };
        let answers = msg.into_parts().answers;
        let count = answers.len();
        for (i, record) in answers.into_iter().enumerate() {
            let last_in_msg = i + 1 == count;
            let serial = soa_serial(&record);
            // Every SOA of an IXFR answer delimits steps of this zone: one at another owner
            // would replace the zone's SOA with a foreign one (found by fuzzing).
            if serial.is_some() && record.name() != zone && !matches!(state, IxState::Start) {
                return Err(ctx.protocol(format!(
                    "SOA record of {} inside an IXFR of the zone",
                    record.name()
                )));
            }
            state = match state {
                IxState::Start => {
                    let Some(s) = serial.filter(|_| record.name() == zone) else {
                        return Err(ctx.protocol("IXFR answer does not start with the zone's SOA"));
                    };
                    new_serial = s;
                    stats.serial = s;
                    if !wire::serial_gt(s, from_serial) && last_in_msg && stats.messages == 1 {
                        conn.finish(&ctx)?;
                        stats.method = TransferMethod::UpToDate;
                        stats.duration = start.elapsed();
                        return Ok((IxfrOutcome::UpToDate, stats));
                    }
                    IxState::AfterFirst(Box::new(record))
                }
                IxState::AfterFirst(first_soa) => match serial {
                    Some(s) if s == new_serial => {
                        // AXFR-style answer of a zone holding only its SOA.
                        count_records(&ctx, &mut stats, opts, 1)?;
                        full_sink(*first_soa).map_err(|e| ctx.protocol(e))?;
                        IxState::Done
                    }
                    Some(s) => {
                        if s != from_serial {
                            return Err(ctx.protocol(format!(
                                "IXFR starts from serial {s}, asked from {from_serial}"
                            )));
                        }
                        IxState::Deleting(IxfrStep {
                            from_serial: s,
                            to_serial: s,
                            deleted: Vec::new(),
                            added: Vec::new(),
                            soa: None,
                        })
                    }
                    None => {
                        stats.method = TransferMethod::IxfrFullAnswer;
                        count_records(&ctx, &mut stats, opts, 2)?;
                        full_sink(*first_soa).map_err(|e| ctx.protocol(e))?;
                        full_sink(record).map_err(|e| ctx.protocol(e))?;
                        IxState::Full
                    }
                },
                IxState::Deleting(mut step) => match serial {
                    Some(s) => {
                        step.to_serial = s;
                        step.soa = Some(record);
                        IxState::Adding(step)
                    }
                    None => {
                        count_records(&ctx, &mut stats, opts, 1)?;
                        step.deleted.push(record);
                        IxState::Deleting(step)
                    }
                },
                IxState::Adding(mut step) => match serial {
                    Some(s) => {
                        let to = step.to_serial;
                        steps.push(step);
                        if s == new_serial && to == new_serial {
                            IxState::Done
                        } else if s == to {
                            IxState::Deleting(IxfrStep {
                                from_serial: s,
                                to_serial: s,
                                deleted: Vec::new(),
                                added: Vec::new(),
                                soa: None,
                            })
                        } else {
                            return Err(ctx.protocol(format!(
                                "IXFR step to serial {to} followed by a step from {s}"
                            )));
                        }
                    }
                    None => {
                        count_records(&ctx, &mut stats, opts, 1)?;
                        step.added.push(record);
                        IxState::Adding(step)
                    }
                },
                IxState::Full => match serial {
                    Some(s) if s == new_serial && record.name() == zone => IxState::Done,
                    Some(s) => {
                        return Err(ctx.protocol(format!(
                            "SOA serial {s} inside a full answer of serial {new_serial}"
                        )));
                    }
                    None => {
                        count_records(&ctx, &mut stats, opts, 1)?;
                        full_sink(record).map_err(|e| ctx.protocol(e))?;
                        IxState::Full
                    }
                },
                IxState::Done => return Err(ctx.protocol("records after the closing SOA")),
            };
        }
        if matches!(state, IxState::Done) {
            break;
        }
    }
    conn.finish(&ctx)?;
    stats.duration = start.elapsed();
    if stats.method == TransferMethod::IxfrFullAnswer || steps.is_empty() {
        stats.method = TransferMethod::IxfrFullAnswer;
        return Ok((IxfrOutcome::Full, stats));
    }
    Ok((IxfrOutcome::Incremental(steps), stats))
}

enum IxState {
    Start,
    AfterFirst(Box<Record>),
    Deleting(IxfrStep),
    Adding(IxfrStep),
    Full,
    Done,
}

/// Counts `n` more records against the cap, before they reach a sink.
fn count_records(
    ctx: &Ctx,
    stats: &mut TransferStats,
    opts: &TransferOptions,
    n: u64,
) -> Result<(), DnsError> {
    stats.records += n;
    if stats.records > opts.max_records {
        return Err(ctx.err(DnsErrorKind::TransferTooLarge(format!(
            "more than {} records (the limit; {} messages, {} bytes read)",
            opts.max_records, stats.messages, stats.bytes
        ))));
    }
    Ok(())
}

fn soa_serial(record: &Record) -> Option<u32> {
    match record.data() {
        RData::SOA(soa) => Some(soa.serial()),
        _ => None,
    }
}

/// One transfer connection: the request sent, responses read and checked.
struct Conn {
    tcp: TcpStream,
    id: u16,
    zone: Name,
    qtype: RecordType,
    verifier: Option<ResponseVerifier>,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(
        ctx: &Ctx,
        zone: &Name,
        qtype: RecordType,
        ixfr_serial: Option<u32>,
        opts: &TransferOptions,
    ) -> Result<Self, DnsError> {
        let mut tcp = wire::connect(ctx, opts.connect_timeout).await?;
        let mut msg = wire::request(zone, qtype, OpCode::Query);
        let id = msg.id();
        if let Some(serial) = ixfr_serial {
            msg.add_name_server(wire::serial_soa(zone, serial));
        }
        let (wire_msg, verifier) = match &opts.tsig {
            Some(key) => {
                let (w, v) = key
                    .sign(&mut msg)
                    .map_err(|e| ctx.err(DnsErrorKind::AuthFailed(e.0)))?;
                (w, Some(v))
            }
            None => (
                msg.to_vec()
                    .map_err(|e| ctx.err(DnsErrorKind::Encode(e.to_string())))?,
                None,
            ),
        };
        wire::write_framed(ctx, &mut tcp, &wire_msg, opts.idle_timeout).await?;
        Ok(Self {
            tcp,
            id,
            zone: zone.clone(),
            qtype,
            verifier,
            buf: Vec::with_capacity(65535),
        })
    }

    /// Reads and checks the next response message.
    async fn next(
        &mut self,
        ctx: &Ctx,
        stats: &mut TransferStats,
        opts: &TransferOptions,
    ) -> Result<Message, DnsError> {
        let got = wire::read_framed(ctx, &mut self.tcp, &mut self.buf, opts.idle_timeout).await?;
        if !got {
            return Err(ctx.err(DnsErrorKind::TransferTruncated(format!(
                "connection closed after {} messages, before the closing SOA",
                stats.messages
            ))));
        }
        stats.messages += 1;
        stats.bytes += self.buf.len() as u64;
        if stats.bytes > opts.max_bytes {
            return Err(ctx.err(DnsErrorKind::TransferTooLarge(format!(
                "more than {} bytes (the limit; {} messages, {} records read)",
                opts.max_bytes, stats.messages, stats.records
            ))));
        }
        if stats.messages as u64 > opts.max_messages {
            return Err(ctx.err(DnsErrorKind::TransferTooLarge(format!(
                "more than {} messages (the limit; {} records read)",
                opts.max_messages, stats.records
            ))));
        }
        let msg = Message::from_vec(&self.buf).map_err(|e| {
            ctx.protocol(format!("message {} cannot be decoded: {e}", stats.messages))
        })?;
        if msg.id() != self.id {
            return Err(ctx.protocol(format!(
                "message {} has id {} instead of {}",
                stats.messages,
                msg.id(),
                self.id
            )));
        }
        if msg.message_type() != MessageType::Response || msg.op_code() != OpCode::Query {
            return Err(ctx.protocol(format!(
                "message {} is not a query response",
                stats.messages
            )));
        }
        if let Some(v) = self.verifier.as_mut()
            && (wire::rcode_error(&msg, ctx.op).is_none() || tsig::claims_signature(&msg))
        {
            // Verified before the rcode is believed: a forged signed refusal
            // must not pass for the server's word.
            v.verify(&self.buf, &msg).map_err(|e| {
                ctx.err(DnsErrorKind::AuthFailed(format!(
                    "message {}: {}",
                    stats.messages, e.0
                )))
            })?;
        }
        if let Some(kind) = wire::rcode_error(&msg, ctx.op) {
            // A refusal comes in the first message; later it is a broken stream.
            let kind = match kind {
                DnsErrorKind::Refused => DnsErrorKind::TransferRefused("REFUSED".into()),
                DnsErrorKind::NotAuth => DnsErrorKind::TransferRefused("NOTAUTH".into()),
                k => k,
            };
            return Err(ctx.err(kind));
        }
        if msg.truncated() {
            return Err(ctx.protocol("truncated (TC) message in a TCP transfer"));
        }
        if let Some(q) = msg.queries().first()
            && (q.name() != &self.zone || q.query_type() != self.qtype)
        {
            return Err(ctx.protocol(format!(
                "message {} answers {} {} instead of the zone",
                stats.messages,
                q.name(),
                q.query_type()
            )));
        }
        Ok(msg)
    }

    fn finish(&self, ctx: &Ctx) -> Result<(), DnsError> {
        if let Some(v) = &self.verifier {
            v.finish()
                .map_err(|e| ctx.err(DnsErrorKind::AuthFailed(e.0)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_options_take_the_zone_bounds_and_scale_only_a_default_deadline() {
        let bounds = TransferBounds {
            deadline: None,
            max_records: 1000,
            max_bytes: 4096,
        };
        let o = TransferOptions::bounded(bounds, 0);
        assert_eq!(
            (o.max_records, o.max_bytes, o.max_messages),
            (1000, 4096, 1001)
        );
        assert_eq!(o.deadline, DEFAULT_TRANSFER_DEADLINE);
        let big = TransferOptions::bounded(bounds, 2_000_000);
        assert_eq!(
            big.deadline,
            DEFAULT_TRANSFER_DEADLINE + Duration::from_secs(600)
        );
        let set = TransferBounds {
            deadline: Some(Duration::from_secs(3)),
            ..bounds
        };
        assert_eq!(
            TransferOptions::bounded(set, 2_000_000).deadline,
            Duration::from_secs(3),
            "a deadline the user set is kept as it is"
        );
        let o = BoundsOverride {
            max_bytes: Some(1),
            ..BoundsOverride::default()
        };
        assert_eq!(
            set.overridden(o),
            TransferBounds {
                max_bytes: 1,
                ..set
            }
        );
    }
}
