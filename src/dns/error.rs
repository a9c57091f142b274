//! Errors of the DNS engine.
//!
//! Every error carries the server, the zone and the operation, so a message
//! shown in a condition or an event is actionable without the logs.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Which operation an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Full zone transfer.
    Axfr,
    /// Incremental zone transfer.
    Ixfr,
    /// SOA query.
    Soa,
    /// RFC 1996 NOTIFY.
    Notify,
    /// RFC 2136 UPDATE.
    Update,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Axfr => "AXFR",
            Self::Ixfr => "IXFR",
            Self::Soa => "SOA query",
            Self::Notify => "NOTIFY",
            Self::Update => "UPDATE",
        })
    }
}

/// The UPDATE batch an error happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Zero-based index of the batch.
    pub index: usize,
    /// Number of batches in the plan.
    pub total: usize,
    /// Number of changes in the batch.
    pub changes: usize,
    /// The RRsets the batch touches, as `name TYPE (n records)`, abbreviated
    /// after a few so the message stays short.
    pub subject: String,
}

impl fmt::Display for BatchInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            " batch {}/{} ({} changes: {})",
            self.index + 1,
            self.total,
            self.changes,
            self.subject
        )
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum DnsErrorKind {
    /// TCP connect or socket I/O failed.
    #[error("connection failed: {0}")]
    Connection(#[source] std::io::Error),
    /// No answer within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The server answered REFUSED.
    #[error("server refused (REFUSED)")]
    Refused,
    /// The server answered NOTAUTH without a TSIG error: not authoritative, or
    /// the operation is not allowed for this client.
    #[error("server is not authoritative or the client is not authorized (NOTAUTH)")]
    NotAuth,
    /// TSIG failed: the server rejected our key/signature, or the response's
    /// signature did not verify.
    #[error("TSIG authentication failed: {0}")]
    AuthFailed(String),
    /// SERVFAIL.
    #[error("server failure (SERVFAIL){0}")]
    ServFail(String),
    /// FORMERR: the server could not parse what we sent.
    #[error("server reported a format error (FORMERR)")]
    FormErr,
    /// NOTIMP.
    #[error("operation not implemented by the server (NOTIMP)")]
    NotImp,
    /// The transfer was refused (REFUSED/NOTAUTH to AXFR).
    #[error("zone transfer refused ({0})")]
    TransferRefused(String),
    /// The transfer stream ended before the closing SOA.
    #[error("zone transfer truncated: {0}")]
    TransferTruncated(String),
    /// The whole transfer did not end within its deadline (a server that
    /// streams forever, or trickles).
    #[error("zone transfer did not finish within {0:?}")]
    TransferTimeout(Duration),
    /// The transfer went over a record, byte or message cap: what is read
    /// is discarded rather than growing memory without end.
    #[error("zone transfer too large: {0}")]
    TransferTooLarge(String),
    /// A message could not be decoded, or broke the protocol (wrong id,
    /// missing SOA, serial mismatch...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// YXRRSET/NXRRSET/YXDOMAIN/NXDOMAIN on an UPDATE: someone else changed
    /// the zone since it was observed.
    #[error("prerequisite failed ({0}): the zone changed since it was observed")]
    PrerequisiteFailed(String),
    /// The server answered a query for the zone's SOA as one that does not hold the
    /// zone: the most common first mistake (a typo in the zone name, or a server not
    /// configured as primary for it), so the message names what to check.
    #[error(
        "server does not serve the zone ({0}): check spec.zoneName and that the server is configured as primary for it"
    )]
    ZoneNotServed(NotServed),
    /// NOTZONE: a name in the UPDATE is outside the zone.
    #[error("name outside the zone (NOTZONE)")]
    NotZone,
    /// Any other response code.
    #[error("unexpected response code {0}")]
    Rcode(String),
    /// A change cannot be encoded into an UPDATE (e.g. one RRset over 64 KiB).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// How a server showed that it does not hold a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotServed {
    /// NXDOMAIN: the name does not exist in a zone the server does hold (a parent).
    NxDomain,
    /// REFUSED: the server holds no such zone, or its ACL refuses us the zone.
    Refused,
    /// An answer without the AA bit: the server is not authoritative for the zone.
    NotAuthoritative,
    /// NOERROR without the zone's SOA: the name exists inside another zone.
    NoSoa,
}

impl fmt::Display for NotServed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NxDomain => "SOA query answered NXDOMAIN",
            Self::Refused => {
                "SOA query answered REFUSED, as it does to a client its allow-query refuses"
            }
            Self::NotAuthoritative => "SOA answer not authoritative",
            Self::NoSoa => "answer holds no SOA for the zone",
        })
    }
}

/// An error of the DNS engine, naming server, zone and operation.
#[derive(Debug, thiserror::Error)]
#[error("{op} of zone {zone} at {server}{}: {kind}", batch.as_ref().map(|b| b.to_string()).unwrap_or_default())]
pub struct DnsError {
    /// The server spoken to.
    pub server: SocketAddr,
    /// The zone (FQDN).
    pub zone: String,
    /// The operation.
    pub op: Operation,
    /// The UPDATE batch, for UPDATE errors.
    pub batch: Option<Box<BatchInfo>>,
    /// What went wrong.
    #[source]
    pub kind: DnsErrorKind,
}

impl DnsError {
    /// Builds an error.
    pub fn new(
        server: SocketAddr,
        zone: impl fmt::Display,
        op: Operation,
        kind: DnsErrorKind,
    ) -> Self {
        Self {
            server,
            zone: zone.to_string(),
            op,
            batch: None,
            kind,
        }
    }

    /// Attaches the batch this error happened in.
    pub fn with_batch(mut self, batch: BatchInfo) -> Self {
        self.batch = Some(Box::new(batch));
        self
    }

    /// A short CamelCase reason, usable as a Kubernetes condition reason or a
    /// metric label.
    pub fn reason(&self) -> DnsReason {
        match &self.kind {
            DnsErrorKind::Connection(_) => DnsReason::ConnectionFailed,
            DnsErrorKind::Timeout(_) => DnsReason::Timeout,
            DnsErrorKind::Refused => DnsReason::Refused,
            DnsErrorKind::NotAuth => DnsReason::NotAuth,
            DnsErrorKind::AuthFailed(_) => DnsReason::AuthFailed,
            DnsErrorKind::ServFail(_) => DnsReason::ServFail,
            DnsErrorKind::FormErr => DnsReason::FormErr,
            DnsErrorKind::NotImp => DnsReason::NotImplemented,
            DnsErrorKind::TransferRefused(_) => DnsReason::TransferRefused,
            DnsErrorKind::TransferTruncated(_) => DnsReason::TransferTruncated,
            DnsErrorKind::TransferTimeout(_) => DnsReason::TransferTimeout,
            DnsErrorKind::TransferTooLarge(_) => DnsReason::TransferTooLarge,
            DnsErrorKind::Protocol(_) => DnsReason::ProtocolError,
            DnsErrorKind::PrerequisiteFailed(_) => DnsReason::PrerequisiteFailed,
            // A refusal may equally be an ACL, and alerts already match this word.
            DnsErrorKind::ZoneNotServed(NotServed::Refused) => DnsReason::Refused,
            DnsErrorKind::ZoneNotServed(_) => DnsReason::ZoneNotServed,
            DnsErrorKind::NotZone => DnsReason::NotZone,
            DnsErrorKind::Rcode(_) => DnsReason::UnexpectedRcode,
            DnsErrorKind::Encode(_) => DnsReason::EncodeError,
        }
    }
}

/// Why talking to a DNS server failed, in the words of condition reasons (CamelCase, what
/// users and alerts match on): the only place these are spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsReason {
    ConnectionFailed,
    Timeout,
    Refused,
    NotAuth,
    AuthFailed,
    ServFail,
    FormErr,
    NotImplemented,
    TransferRefused,
    TransferTruncated,
    TransferTimeout,
    TransferTooLarge,
    ProtocolError,
    PrerequisiteFailed,
    ZoneNotServed,
    NotZone,
    UnexpectedRcode,
    EncodeError,
}

impl DnsReason {
    /// The reason as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsReason::ConnectionFailed => "ConnectionFailed",
            DnsReason::Timeout => "Timeout",
            DnsReason::Refused => "Refused",
            DnsReason::NotAuth => "NotAuth",
            DnsReason::AuthFailed => "AuthFailed",
            DnsReason::ServFail => "ServFail",
            DnsReason::FormErr => "FormErr",
            DnsReason::NotImplemented => "NotImplemented",
            DnsReason::TransferRefused => "TransferRefused",
            DnsReason::TransferTruncated => "TransferTruncated",
            DnsReason::TransferTimeout => "TransferTimeout",
            DnsReason::TransferTooLarge => "TransferTooLarge",
            DnsReason::ProtocolError => "ProtocolError",
            DnsReason::PrerequisiteFailed => "PrerequisiteFailed",
            DnsReason::ZoneNotServed => "ZoneNotServed",
            DnsReason::NotZone => "NotZone",
            DnsReason::UnexpectedRcode => "UnexpectedRcode",
            DnsReason::EncodeError => "EncodeError",
        }
    }

    /// The server answered but would not (completely) hand over the zone: the connection
    /// works, the transfer permission or the stream does not.
    pub fn is_transfer_failure(self) -> bool {
        matches!(
            self,
            DnsReason::TransferRefused
                | DnsReason::TransferTruncated
                | DnsReason::TransferTimeout
                | DnsReason::TransferTooLarge
        )
    }
}

impl fmt::Display for DnsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for DnsReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<&DnsError> for DnsReason {
    fn from(e: &DnsError) -> Self {
        e.reason()
    }
}

/// A TSIG key that could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum TsigKeyError {
    /// The key name is not a valid domain name.
    #[error("invalid TSIG key name {name:?}: {detail}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is invalid.
        detail: String,
    },
    /// The algorithm is not one we support.
    #[error("unsupported TSIG algorithm {0:?} (supported: hmac-sha256, hmac-sha384, hmac-sha512)")]
    UnsupportedAlgorithm(String),
    /// The secret is not valid base64. The decoder's own message is left
    /// out: it quotes a character of the secret and its offset, and this
    /// text ends up in conditions and events.
    #[error("TSIG secret of key {name} is not valid base64")]
    InvalidSecret {
        /// The key name.
        name: String,
    },
    /// The secret still holds a template placeholder (`<base64 secret>`,
    /// `REPLACE_ME`...): the most common cause of a non-base64 secret.
    #[error(
        "TSIG secret of key {name} still holds a template placeholder: replace it with the key's base64 secret"
    )]
    PlaceholderSecret {
        /// The key name.
        name: String,
    },
    /// The secret is empty.
    #[error("TSIG secret of key {0} is empty")]
    EmptySecret(String),
}
