//! Single request/response exchanges (UDP with retries, TCP on truncation),
//! optionally TSIG-signed, and the SOA query built on them.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

use super::error::{DnsError, DnsErrorKind, NotServed, Operation};
use super::tsig::{self, ResponseVerifier, TsigKey};
use super::wire::{self, Ctx};

/// How to run a single exchange.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Key to sign the request and verify the response with.
    pub tsig: Option<TsigKey>,
    /// Deadline for one attempt.
    pub timeout: Duration,
    /// Attempts over UDP before giving up (at least 1); the wait doubles each time.
    pub attempts: u32,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            tsig: None,
            timeout: Duration::from_secs(2),
            attempts: 3,
        }
    }
}

/// Asks `server` for the SOA of `zone` and returns its serial.
///
/// UDP first; a truncated answer is asked again over TCP. The answer must be
/// authoritative and hold the zone's SOA.
pub async fn query_soa(
    server: SocketAddr,
    zone: &Name,
    opts: &QueryOptions,
) -> Result<u32, DnsError> {
    let ctx = Ctx {
        server,
        zone: zone.to_ascii(),
        op: Operation::Soa,
    };
    let build = || wire::request(zone, RecordType::SOA, OpCode::Query);
    let mut resp = exchange_udp(&ctx, build, opts).await?;
    if resp.truncated() {
        resp = exchange_tcp(&ctx, build(), opts).await?;
    }
    if let Some(kind) = wire::rcode_error(&resp, ctx.op) {
        // NOTAUTH stays itself: servers answer it to a key they do not accept as well.
        let kind = match kind {
            DnsErrorKind::Refused => DnsErrorKind::ZoneNotServed(NotServed::Refused),
            k => k,
        };
        return Err(ctx.err(kind));
    }
    if !resp.authoritative() {
        return Err(ctx.err(DnsErrorKind::ZoneNotServed(NotServed::NotAuthoritative)));
    }
    resp.answers()
        .iter()
        .find_map(|r| match r.data() {
            RData::SOA(soa) if r.name() == zone => Some(soa.serial()),
            _ => None,
        })
        .ok_or_else(|| ctx.err(DnsErrorKind::ZoneNotServed(NotServed::NoSoa)))
}

fn sign(
    ctx: &Ctx,
    msg: &mut Message,
    opts: &QueryOptions,
) -> Result<(Vec<u8>, Option<ResponseVerifier>), DnsError> {
    match &opts.tsig {
        Some(key) => {
            let (w, v) = key
                .sign(msg)
                .map_err(|e| ctx.err(DnsErrorKind::AuthFailed(e.0)))?;
            Ok((w, Some(v)))
        }
        None => Ok((
            msg.to_vec()
                .map_err(|e| ctx.err(DnsErrorKind::Encode(e.to_string())))?,
            None,
        )),
    }
}

/// Checks that `resp` answers `req` and, when signed, verifies it. Error
/// answers are verified when they carry a signature; unsigned ones (a TSIG
/// error, BADKEY, a plain refusal) are passed through for the caller's rcode
/// mapping, which never treats them as success.
fn check_response(
    ctx: &Ctx,
    req: &Message,
    wire_resp: &[u8],
    resp: &Message,
    verifier: Option<&mut ResponseVerifier>,
) -> Result<(), DnsError> {
    if resp.message_type() != MessageType::Response {
        return Err(ctx.protocol("answer is not a response"));
    }
    if resp.queries() != req.queries() && !resp.queries().is_empty() {
        return Err(ctx.protocol("answer is for another question"));
    }
    if let Some(v) = verifier
        && (wire::rcode_error(resp, ctx.op).is_none() || tsig::claims_signature(resp))
    {
        v.verify(wire_resp, resp)
            .and_then(|_| v.finish())
            .map_err(|e| ctx.err(DnsErrorKind::AuthFailed(e.0)))?;
    }
    Ok(())
}

pub(crate) async fn exchange_udp(
    ctx: &Ctx,
    build: impl Fn() -> Message,
    opts: &QueryOptions,
) -> Result<Message, DnsError> {
    let bind: SocketAddr = if ctx.server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| ctx.err(DnsErrorKind::Connection(e)))?;
    sock.connect(ctx.server)
        .await
        .map_err(|e| ctx.err(DnsErrorKind::Connection(e)))?;
    let mut wait = opts.timeout;
    let mut buf = vec![0u8; 65535];
    let attempts = opts.attempts.max(1);
    for attempt in 1..=attempts {
        let mut req = build();
        let (wire_req, mut verifier) = sign(ctx, &mut req, opts)?;
        sock.send(&wire_req)
            .await
            .map_err(|e| ctx.err(DnsErrorKind::Connection(e)))?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable shows up here: the server is down.
                Ok(Err(e)) => return Err(ctx.err(DnsErrorKind::Connection(e))),
                Ok(Ok(n)) => {
                    // Stray or late datagrams (an earlier attempt's answer
                    // included) are not ours: keep waiting.
                    let Ok(resp) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    if resp.id() != req.id() {
                        continue;
                    }
                    check_response(ctx, &req, &buf[..n], &resp, verifier.as_mut())?;
                    return Ok(resp);
                }
            }
        }
        if attempt < attempts {
            wait *= 2;
        }
    }
    Err(ctx.err(DnsErrorKind::Timeout(opts.timeout)))
}

async fn exchange_tcp(
    ctx: &Ctx,
    mut req: Message,
    opts: &QueryOptions,
) -> Result<Message, DnsError> {
    let mut tcp = wire::connect(ctx, opts.timeout).await?;
    let (wire_req, mut verifier) = sign(ctx, &mut req, opts)?;
    wire::write_framed(ctx, &mut tcp, &wire_req, opts.timeout).await?;
    let mut buf = Vec::new();
    if !wire::read_framed(ctx, &mut tcp, &mut buf, opts.timeout).await? {
        return Err(ctx.protocol("connection closed without an answer"));
    }
    let resp =
        Message::from_vec(&buf).map_err(|e| ctx.protocol(format!("undecodable answer: {e}")))?;
    if resp.id() != req.id() {
        return Err(ctx.protocol("answer with another id"));
    }
    check_response(ctx, &req, &buf, &resp, verifier.as_mut())?;
    Ok(resp)
}
