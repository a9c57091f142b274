//! Talking to peers: NOTIFY with retries (RFC 1996) and SOA serial checks, both signed
//! with the peer's key. Built on the client code of `dns::notify` and `dns::query`.

use std::time::Duration;

use hickory_proto::rr::Name;

use super::peer::PeerAuth;
use crate::dns::error::{DnsError, DnsErrorKind, NotServed};
use crate::dns::query::{QueryOptions, query_soa};

/// How a NOTIFY is retried: over UDP, `attempts` sends, the wait for an answer
/// doubling from `first_wait` (5 from 1 s: given up after 31 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyRetry {
    /// Sends before giving up (at least 1).
    pub attempts: u32,
    /// Wait for the answer to the first send.
    pub first_wait: Duration,
}

impl Default for NotifyRetry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_wait: Duration::from_secs(1),
        }
    }
}

/// What became of a NOTIFY to one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// Acknowledged (NOERROR).
    Acked,
    /// Answered with an error rcode (e.g. `REFUSED`, `NOTAUTH`).
    Error(String),
    /// No answer after every retry (or the port is closed).
    NoAnswer,
    /// The peer has no single address to NOTIFY (a network).
    NoTarget,
}

impl NotifyOutcome {
    fn from_error(e: &DnsError) -> Self {
        match &e.kind {
            DnsErrorKind::Timeout(_) | DnsErrorKind::Connection(_) => Self::NoAnswer,
            DnsErrorKind::Refused => Self::Error("REFUSED".to_string()),
            DnsErrorKind::NotAuth => Self::Error("NOTAUTH".to_string()),
            DnsErrorKind::ServFail(_) => Self::Error("SERVFAIL".to_string()),
            DnsErrorKind::FormErr => Self::Error("FORMERR".to_string()),
            DnsErrorKind::NotImp => Self::Error("NOTIMP".to_string()),
            other => Self::Error(other.to_string()),
        }
    }
}

/// NOTIFYs `peer` that `origin` is at `serial`, signed with its key, retrying per `retry`.
pub async fn notify_peer(
    peer: &PeerAuth,
    origin: &Name,
    serial: u32,
    retry: NotifyRetry,
) -> NotifyOutcome {
    let Some(target) = peer.address.target() else {
        return NotifyOutcome::NoTarget;
    };
    let opts = QueryOptions {
        tsig: Some(peer.key.clone()),
        timeout: retry.first_wait,
        attempts: retry.attempts.max(1),
    };
    match crate::dns::notify::send_notify(target, origin, Some(serial), &opts).await {
        Ok(()) => NotifyOutcome::Acked,
        Err(e) => {
            tracing::warn!(zone = %origin, peer = %peer.name, %target, error = %e, "NOTIFY to peer failed");
            NotifyOutcome::from_error(&e)
        }
    }
}

/// NOTIFYs every peer at once; outcomes in the peers' order, with their names.
pub async fn notify_peers(
    peers: &[PeerAuth],
    origin: &Name,
    serial: u32,
    retry: NotifyRetry,
) -> Vec<(String, NotifyOutcome)> {
    let outcomes =
        futures::future::join_all(peers.iter().map(|p| notify_peer(p, origin, serial, retry)))
            .await;
    peers.iter().map(|p| p.name.clone()).zip(outcomes).collect()
}

/// A peer's answer to an SOA query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerSoa {
    /// It serves the zone at this serial.
    Serial(u32),
    /// No answer within the deadline (or no single address to ask).
    Unreachable(String),
    /// It answered, but not with the zone's SOA (REFUSED, NOTAUTH, not authoritative...).
    Refused(String),
}

/// Asks `peer` for the zone's SOA serial, signed with its key, within `deadline`.
pub async fn check_peer_soa(peer: &PeerAuth, origin: &Name, deadline: Duration) -> PeerSoa {
    let Some(target) = peer.address.target() else {
        return PeerSoa::Unreachable(format!("{} is a network", peer.address));
    };
    // Two tries within the deadline: one lost datagram does not make a peer unreachable.
    let opts = QueryOptions {
        tsig: Some(peer.key.clone()),
        timeout: deadline / 3,
        attempts: 2,
    };
    match tokio::time::timeout(deadline, query_soa(target, origin, &opts)).await {
        Err(_) => PeerSoa::Unreachable(format!("no answer from {target} within {deadline:?}")),
        Ok(Ok(serial)) => PeerSoa::Serial(serial),
        Ok(Err(e)) => match &e.kind {
            DnsErrorKind::Timeout(_) | DnsErrorKind::Connection(_) => {
                PeerSoa::Unreachable(e.to_string())
            }
            DnsErrorKind::ZoneNotServed(NotServed::Refused) => PeerSoa::Refused(e.to_string()),
            _ => PeerSoa::Refused(e.to_string()),
        },
    }
}
