//! Small shared pieces of the wire protocol: TCP framing, message ids,
//! response code mapping, serial arithmetic.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{DnsError, DnsErrorKind, NotServed, Operation};
use super::tsig;

/// A message id that an off-path attacker cannot guess; std's RandomState
/// is seeded from the OS, which is all we need without another crate.
pub fn random_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish() as u16
}

/// A request about `zone` under `op`: one IN question of `qtype`, a fresh random id.
pub fn request(zone: &Name, qtype: RecordType, op: OpCode) -> Message {
    let mut q = Query::query(zone.clone(), qtype);
    q.set_query_class(DNSClass::IN);
    let mut msg = Message::new();
    msg.set_id(random_id())
        .set_message_type(MessageType::Query)
        .set_op_code(op)
        .add_query(q);
    msg
}

/// An SOA record that carries only `serial`: the client's version in an IXFR request
/// (RFC 1995) and the hint in a NOTIFY (RFC 1996).
pub fn serial_soa(zone: &Name, serial: u32) -> Record {
    let root = Name::root();
    Record::from_rdata(
        zone.clone(),
        0,
        RData::SOA(SOA::new(root.clone(), root, serial, 0, 0, 0, 0)),
    )
}

/// `a` is newer than `b` in RFC 1982 serial arithmetic.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// Where an operation happens, for building errors.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Server address.
    pub server: SocketAddr,
    /// Zone name.
    pub zone: String,
    /// Operation.
    pub op: Operation,
}

impl Ctx {
    /// An error in this context.
    pub fn err(&self, kind: DnsErrorKind) -> DnsError {
        DnsError::new(self.server, &self.zone, self.op, kind)
    }

    /// A protocol violation in this context.
    pub fn protocol(&self, detail: impl Into<String>) -> DnsError {
        self.err(DnsErrorKind::Protocol(detail.into()))
    }
}

/// Connects over TCP within `timeout`.
pub async fn connect(ctx: &Ctx, timeout: Duration) -> Result<TcpStream, DnsError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(ctx.server))
        .await
        .map_err(|_| ctx.err(DnsErrorKind::Timeout(timeout)))?
        .map_err(|e| ctx.err(DnsErrorKind::Connection(e)))?;
    // Latency matters more than packet count for request/response traffic.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Writes one length-prefixed message.
pub async fn write_framed<W: AsyncWriteExt + Unpin>(
    ctx: &Ctx,
    w: &mut W,
    wire: &[u8],
    timeout: Duration,
) -> Result<(), DnsError> {
    let len = u16::try_from(wire.len()).map_err(|_| {
        ctx.err(DnsErrorKind::Encode(format!(
            "message of {} bytes",
            wire.len()
        )))
    })?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    tokio::time::timeout(timeout, w.write_all(&framed))
        .await
        .map_err(|_| ctx.err(DnsErrorKind::Timeout(timeout)))?
        .map_err(|e| ctx.err(DnsErrorKind::Connection(e)))
}

/// Reads one length-prefixed message into `buf`. `Ok(false)` means the peer
/// closed the connection cleanly before a new message started.
pub async fn read_framed<R: AsyncReadExt + Unpin>(
    ctx: &Ctx,
    r: &mut R,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<bool, DnsError> {
    let mut len = [0u8; 2];
    let first = tokio::time::timeout(timeout, r.read(&mut len[..1]))
        .await
        .map_err(|_| ctx.err(DnsErrorKind::Timeout(timeout)))?
        .map_err(|e| ctx.err(DnsErrorKind::Connection(e)))?;
    if first == 0 {
        return Ok(false);
    }
    let truncated = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ctx.err(DnsErrorKind::TransferTruncated(
                "connection closed inside a message".into(),
            ))
        } else {
            ctx.err(DnsErrorKind::Connection(e))
        }
    };
    tokio::time::timeout(timeout, r.read_exact(&mut len[1..]))
        .await
        .map_err(|_| ctx.err(DnsErrorKind::Timeout(timeout)))?
        .map_err(truncated)?;
    let n = u16::from_be_bytes(len) as usize;
    buf.resize(n, 0);
    tokio::time::timeout(timeout, r.read_exact(buf))
        .await
        .map_err(|_| ctx.err(DnsErrorKind::Timeout(timeout)))?
        .map_err(truncated)?;
    Ok(true)
}

/// Maps a response's code (and TSIG error) to an error, `None` for NOERROR.
///
/// YXRRSET/NXRRSET/YXDOMAIN/NXDOMAIN are prerequisite failures only in answer to an
/// UPDATE; to a query or transfer of the zone, NXDOMAIN means the server has no such
/// zone, and reading it as "the zone changed" sent users the wrong way.
pub fn rcode_error(msg: &Message, op: Operation) -> Option<DnsErrorKind> {
    let tsig_err = tsig::response_tsig_error(msg);
    if tsig_err != 0 {
        let hint = match tsig_err {
            17 => ": key unknown to the server, or not allowed for this operation",
            16 => ": wrong secret or algorithm",
            18 => ": clocks differ by more than the fudge",
            _ => "",
        };
        return Some(DnsErrorKind::AuthFailed(format!(
            "server rejected our signature ({}{hint})",
            tsig::tsig_error_name(tsig_err)
        )));
    }
    let kind = match msg.response_code() {
        ResponseCode::NoError => return None,
        ResponseCode::Refused => DnsErrorKind::Refused,
        ResponseCode::NotAuth => DnsErrorKind::NotAuth,
        ResponseCode::ServFail => DnsErrorKind::ServFail(String::new()),
        ResponseCode::FormErr => DnsErrorKind::FormErr,
        ResponseCode::NotImp => DnsErrorKind::NotImp,
        ResponseCode::NotZone => DnsErrorKind::NotZone,
        ResponseCode::YXRRSet if op == Operation::Update => {
            DnsErrorKind::PrerequisiteFailed("YXRRSET".into())
        }
        ResponseCode::NXRRSet if op == Operation::Update => {
            DnsErrorKind::PrerequisiteFailed("NXRRSET".into())
        }
        ResponseCode::YXDomain if op == Operation::Update => {
            DnsErrorKind::PrerequisiteFailed("YXDOMAIN".into())
        }
        ResponseCode::NXDomain if op == Operation::Update => {
            DnsErrorKind::PrerequisiteFailed("NXDOMAIN".into())
        }
        ResponseCode::NXDomain => DnsErrorKind::ZoneNotServed(NotServed::NxDomain),
        ResponseCode::BADSIG | ResponseCode::BADKEY | ResponseCode::BADTIME => {
            DnsErrorKind::AuthFailed(msg.response_code().to_str().to_string())
        }
        c => DnsErrorKind::Rcode(c.to_str().to_string()),
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(1, 2));
        assert!(!serial_gt(5, 5));
        assert!(serial_gt(1, u32::MAX));
        assert!(!serial_gt(u32::MAX, 1));
    }

    #[test]
    fn nxdomain_is_a_prerequisite_failure_only_for_an_update() {
        let mut msg = Message::new();
        msg.set_response_code(ResponseCode::NXDomain);
        assert!(matches!(
            rcode_error(&msg, Operation::Update),
            Some(DnsErrorKind::PrerequisiteFailed(_))
        ));
        for op in [Operation::Soa, Operation::Axfr, Operation::Ixfr] {
            assert!(
                matches!(
                    rcode_error(&msg, op),
                    Some(DnsErrorKind::ZoneNotServed(NotServed::NxDomain))
                ),
                "{op}"
            );
        }
        msg.set_response_code(ResponseCode::YXRRSet);
        assert!(matches!(
            rcode_error(&msg, Operation::Soa),
            Some(DnsErrorKind::Rcode(_))
        ));
    }

    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..100).map(|_| random_id()).collect();
        assert!(ids.len() > 90);
    }
}
