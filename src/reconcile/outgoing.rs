//! Outgoing transfers, the Kubernetes-free part: which seed operation a spec edit is, what the
//! per-peer observations make of `status.outgoing`, the `Outgoing` condition and the events on
//! a peer's state change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::outcome::{ZoneEvent, new_change_id};
use super::status::{ConditionUpdate, push_history, set_condition};
use crate::api::DnsZoneStatus;
use crate::api::dns_zone::{
    ForceNotified, HistoryEntry, OutgoingSpec, OutgoingStatus, OutgoingTransferMethod, PeerState,
    PeerStatus,
};
use crate::api::shared::{ChangeStatus, ChangeType};

/// The condition type.
pub const CONDITION: &str = "Outgoing";

/// Reasons of the `Outgoing` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutgoingReason {
    /// Every enabled peer serves the served serial.
    PeersInSync,
    /// A peer does not answer.
    PeersUnreachable,
    /// A peer answers its SOA query with an error (REFUSED, NOTAUTH, a TSIG error).
    PeersRefused,
    /// A NOTIFY was not acknowledged.
    NotifyFailed,
    /// A peer serves an older serial.
    PeersLagging,
    /// `enabled: false`: nothing is served.
    Disabled,
    /// The backend's zone has not been read yet, so nothing is served.
    NotServing,
}

impl OutgoingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OutgoingReason::PeersInSync => "PeersInSync",
            OutgoingReason::PeersUnreachable => "PeersUnreachable",
            OutgoingReason::PeersRefused => "PeersRefused",
            OutgoingReason::NotifyFailed => "NotifyFailed",
            OutgoingReason::PeersLagging => "PeersLagging",
            OutgoingReason::Disabled => "Disabled",
            OutgoingReason::NotServing => "NotServing",
        }
    }
}

/// What a spec edit means, as the seed's operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `spec.outgoing` appeared (seed: create the outgoing config).
    Configure { enabled: bool },
    /// `enabled` turned true.
    Enable,
    /// `enabled` turned false: stop serving and NOTIFY, clear the backlog.
    Disable,
    /// A new `forceNotify` value: NOTIFY every peer now, clear the backlog.
    ForceNotify(String),
    /// Peers added or removed.
    Peers {
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// `spec.outgoing` removed (seed: delete the outgoing config).
    Remove,
}

impl Operation {
    fn message(&self, zone: &str) -> String {
        match self {
            Operation::Configure { enabled } => format!(
                "zone {zone}: outgoing transfers configured ({})",
                if *enabled { "enabled" } else { "disabled" }
            ),
            Operation::Enable => format!("zone {zone}: outgoing transfers enabled; peers notified"),
            Operation::Disable => format!(
                "zone {zone}: outgoing transfers disabled; peers are refused and the IXFR backlog is cleared"
            ),
            Operation::ForceNotify(value) => format!(
                "zone {zone}: NOTIFY forced to every peer (forceNotify {value:?}); IXFR backlog cleared"
            ),
            Operation::Peers { added, removed } => format!(
                "zone {zone}: outgoing peers changed (added: [{}], removed: [{}])",
                added.join(", "),
                removed.join(", ")
            ),
            Operation::Remove => {
                format!("zone {zone}: outgoing transfers removed; nothing is served any more")
            }
        }
    }

    fn change_type(&self) -> ChangeType {
        match self {
            Operation::Configure { .. } => ChangeType::Create,
            Operation::Remove => ChangeType::Delete,
            _ => ChangeType::Update,
        }
    }
}

/// The operations between what the status says was applied and the spec now. The status is
/// the record: after a restart an edit made meanwhile is still seen, and a handled
/// `forceNotify` value (kept in `status.outgoing.forceNotified`) is not repeated.
pub fn operations(status: Option<&OutgoingStatus>, spec: Option<&OutgoingSpec>) -> Vec<Operation> {
    match (status, spec) {
        (None, None) => Vec::new(),
        (Some(_), None) => vec![Operation::Remove],
        // A `forceNotify` value present at creation is configuration, not a request to notify.
        (None, Some(spec)) => vec![Operation::Configure {
            enabled: spec.enabled,
        }],
        (Some(st), Some(spec)) => {
            let mut ops = Vec::new();
            if st.enabled != spec.enabled {
                ops.push(if spec.enabled {
                    Operation::Enable
                } else {
                    Operation::Disable
                });
            }
            let handled = st.force_notified.as_ref().map(|f| f.value.as_str());
            if !spec.force_notify.is_empty() && handled != Some(spec.force_notify.as_str()) {
                ops.push(Operation::ForceNotify(spec.force_notify.clone()));
            }
            let before: Vec<&str> = st.peers.iter().map(|p| p.name.as_str()).collect();
            let added: Vec<String> = spec
                .peers
                .iter()
                .filter(|p| !before.contains(&p.name.as_str()))
                .map(|p| p.name.clone())
                .collect();
            let removed: Vec<String> = before
                .iter()
                .filter(|n| !spec.peers.iter().any(|p| p.name == **n))
                .map(|n| n.to_string())
                .collect();
            if !added.is_empty() || !removed.is_empty() {
                ops.push(Operation::Peers { added, removed });
            }
            ops
        }
    }
}

/// Who and when, for the history entries and timestamps of one reconcile.
pub struct Context<'a> {
    pub zone_name: &'a str,
    pub user_id: Option<String>,
    pub history_limit: i32,
    pub generation: Option<i64>,
    pub now: Time,
}

/// Records `ops` in the status: a history entry each, `status.outgoing` created, updated or
/// removed to match. Returns the events to publish.
pub fn record_operations(
    status: &mut DnsZoneStatus,
    spec: Option<&OutgoingSpec>,
    ops: &[Operation],
    cx: &Context<'_>,
) -> Vec<ZoneEvent> {
    let mut events = Vec::new();
    for op in ops {
        let message = op.message(cx.zone_name);
        push_history(
            &mut status.history,
            HistoryEntry {
                id: new_change_id(),
                change_type: op.change_type(),
                status: ChangeStatus::Complete,
                user_id: cx.user_id.clone(),
                created: cx.now.clone(),
                serial_before: None,
                serial_after: None,
                added: 0,
                updated: 0,
                deleted: 0,
                sample: Vec::new(),
                zone_sync_ref: None,
                message: Some(message.clone()),
            },
            cx.history_limit,
        );
        events.push(ZoneEvent {
            warning: false,
            reason: "Outgoing".into(),
            note: message,
        });
    }
    match spec {
        None => {
            status.outgoing = None;
            status.conditions.retain(|c| c.type_ != CONDITION);
        }
        Some(spec) => {
            let out = status.outgoing.get_or_insert_with(|| OutgoingStatus {
                created_time: Some(cx.now.clone()),
                ..OutgoingStatus::default()
            });
            out.enabled = spec.enabled;
            if !spec.enabled {
                out.ixfr_backlog = 0;
            }
            for op in ops {
                if let Operation::ForceNotify(value) = op {
                    out.force_notified = Some(ForceNotified {
                        value: value.clone(),
                        time: cx.now.clone(),
                    });
                    out.ixfr_backlog = 0;
                }
            }
            // The peer list follows the spec's order; a removed peer's status goes with it.
            let mut peers = Vec::with_capacity(spec.peers.len());
            for p in &spec.peers {
                let kept = out.peers.iter().find(|s| s.name == p.name).cloned();
                peers.push(kept.unwrap_or_else(|| PeerStatus {
                    name: p.name.clone(),
                    ..PeerStatus::default()
                }));
            }
            out.peers = peers;
        }
    }
    events
}

/// The answer to one SOA query to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCheck {
    Serial(u32),
    /// No answer, or the connection failed.
    Unreachable(String),
    /// An error answer.
    Refused(String),
}

/// What the outgoing task saw of one peer since the status was last written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerObservation {
    pub check: Option<(PeerCheck, Time)>,
    /// When the last NOTIFY was sent and, if it failed, why.
    pub notified: Option<(Time, Option<String>)>,
    pub transferred: Option<(Time, OutgoingTransferMethod)>,
}

/// What the outgoing task saw of the whole zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// The serial served, once the backend's zone was read.
    pub served_serial: Option<u32>,
    pub backlog: usize,
    pub checked: Option<Time>,
    /// Per peer, by name.
    pub peers: Vec<(String, PeerObservation)>,
}

/// The state a peer is in given its answer and the served serial.
pub fn peer_state(check: &PeerCheck, served: Option<u32>) -> PeerState {
    match check {
        PeerCheck::Unreachable(_) => PeerState::Unreachable,
        PeerCheck::Refused(_) => PeerState::Refused,
        PeerCheck::Serial(s) if Some(*s) == served => PeerState::InSync,
        // A peer ahead of us (serial arithmetic) holds a version we never served: it is not in
        // sync either, and the next NOTIFY brings it back.
        PeerCheck::Serial(_) => PeerState::Lagging,
    }
}

/// Folds an observation into `status.outgoing` and sets the `Outgoing` condition. Returns an
/// event per peer whose state changed. Does nothing without `status.outgoing` (not configured).
pub fn fold_observation(
    status: &mut DnsZoneStatus,
    obs: &Observation,
    cx: &Context<'_>,
) -> Vec<ZoneEvent> {
    let Some(out) = status.outgoing.as_mut() else {
        return Vec::new();
    };
    let mut events = Vec::new();
    if let Some(serial) = obs.served_serial {
        out.soa_serial = Some(i64::from(serial));
    }
    out.ixfr_backlog = if out.enabled {
        i64::try_from(obs.backlog).unwrap_or(i64::MAX)
    } else {
        0
    };
    if obs.checked.is_some() {
        out.checked_time = obs.checked.clone();
    }
    let served = out.soa_serial.and_then(|s| u32::try_from(s).ok());
    let mut notify_failures = Vec::new();
    for peer in out.peers.iter_mut() {
        let Some((_, o)) = obs.peers.iter().find(|(n, _)| *n == peer.name) else {
            continue;
        };
        if let Some((time, failure)) = &o.notified {
            peer.last_notified_time = Some(time.clone());
            if let Some(why) = failure {
                notify_failures.push(format!("{} ({why})", peer.name));
            }
        }
        if let Some((time, method)) = &o.transferred {
            peer.last_transferred_time = Some(time.clone());
            peer.last_transfer_method = Some(*method);
            if out
                .last_transferred_time
                .as_ref()
                .is_none_or(|t| t.0 < time.0)
            {
                out.last_transferred_time = Some(time.clone());
            }
        }
        if let Some((check, time)) = &o.check {
            let state = peer_state(check, served);
            peer.checked_time = Some(time.clone());
            peer.message = match check {
                PeerCheck::Serial(s) => {
                    peer.soa_serial = Some(i64::from(*s));
                    None
                }
                PeerCheck::Unreachable(why) | PeerCheck::Refused(why) => Some(why.clone()),
            };
            if peer.state != Some(state) {
                events.push(ZoneEvent {
                    warning: state != PeerState::InSync,
                    reason: format!("Peer{state:?}"),
                    note: format!(
                        "zone {}: peer {} is {state:?}{}",
                        cx.zone_name,
                        peer.name,
                        match check {
                            PeerCheck::Serial(s) => format!(
                                " at serial {s}{}",
                                served.map(|v| format!(" (served {v})")).unwrap_or_default()
                            ),
                            PeerCheck::Unreachable(why) | PeerCheck::Refused(why) =>
                                format!(": {why}"),
                        }
                    ),
                });
                peer.state = Some(state);
            }
        }
    }
    let (ok, reason, message) = verdict(out, served, &notify_failures);
    set_condition(
        &mut status.conditions,
        ConditionUpdate {
            type_: CONDITION,
            status: ok,
            reason: reason.as_str(),
            message: format!("zone {}: {message}", cx.zone_name),
        },
        cx.generation,
        &cx.now,
    );
    events
}

/// The condition's status, reason and message: the worst thing wrong, naming the peers.
fn verdict(
    out: &OutgoingStatus,
    served: Option<u32>,
    notify_failures: &[String],
) -> (bool, OutgoingReason, String) {
    if !out.enabled {
        return (
            false,
            OutgoingReason::Disabled,
            "outgoing transfers are disabled; peers are refused".into(),
        );
    }
    let Some(served) = served else {
        return (
            false,
            OutgoingReason::NotServing,
            "the backend's zone has not been read yet; nothing is served".into(),
        );
    };
    let named = |state: PeerState| -> Vec<String> {
        out.peers
            .iter()
            .filter(|p| p.state == Some(state))
            .map(|p| match &p.message {
                Some(m) => format!("{} ({m})", p.name),
                None => p.name.clone(),
            })
            .collect()
    };
    let unreachable = named(PeerState::Unreachable);
    if !unreachable.is_empty() {
        return (
            false,
            OutgoingReason::PeersUnreachable,
            format!("peers not answering: {}", unreachable.join(", ")),
        );
    }
    let refused = named(PeerState::Refused);
    if !refused.is_empty() {
        return (
            false,
            OutgoingReason::PeersRefused,
            format!("peers answering with an error: {}", refused.join(", ")),
        );
    }
    if !notify_failures.is_empty() {
        return (
            false,
            OutgoingReason::NotifyFailed,
            format!("NOTIFY not acknowledged by: {}", notify_failures.join(", ")),
        );
    }
    let lagging: Vec<String> = out
        .peers
        .iter()
        .filter(|p| p.state != Some(PeerState::InSync))
        .map(|p| match p.soa_serial {
            Some(s) => format!("{} at {s}", p.name),
            None => format!("{} (not checked yet)", p.name),
        })
        .collect();
    if !lagging.is_empty() {
        return (
            false,
            OutgoingReason::PeersLagging,
            format!(
                "serving serial {served}; peers behind: {}",
                lagging.join(", ")
            ),
        );
    }
    (
        true,
        OutgoingReason::PeersInSync,
        format!("every peer serves serial {served}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::dns_zone::Peer;
    use crate::api::shared::Duration;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(1_800_000_000 + s).unwrap())
    }

    fn spec(enabled: bool, peers: &[&str], force: &str) -> OutgoingSpec {
        OutgoingSpec {
            enabled,
            peers: peers
                .iter()
                .map(|n| Peer {
                    name: n.to_string(),
                    address: "192.0.2.1:53".into(),
                    tsig_key_secret_ref: None,
                })
                .collect(),
            force_notify: force.into(),
            check_interval: Duration::from_secs(60),
            ixfr_backlog: Default::default(),
        }
    }

    fn cx(now: i64) -> Context<'static> {
        Context {
            zone_name: "example.com.",
            user_id: Some("kubectl-edit".into()),
            history_limit: 20,
            generation: Some(3),
            now: t(now),
        }
    }

    fn apply(status: &mut DnsZoneStatus, spec: Option<&OutgoingSpec>, now: i64) -> Vec<Operation> {
        let ops = operations(status.outgoing.as_ref(), spec);
        record_operations(status, spec, &ops, &cx(now));
        ops
    }

    #[test]
    fn seed_operations_are_recorded_with_their_user_and_only_once() {
        let mut status = DnsZoneStatus::default();
        let s = spec(true, &["ns2", "ns3"], "a");
        assert_eq!(
            apply(&mut status, Some(&s), 0),
            vec![Operation::Configure { enabled: true }]
        );
        let out = status.outgoing.as_ref().unwrap();
        assert_eq!(out.created_time, Some(t(0)));
        assert_eq!(
            out.peers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["ns2", "ns3"]
        );
        // The value present at creation is configuration; a first change of it notifies.
        assert!(out.force_notified.is_none());
        assert_eq!(
            apply(&mut status, Some(&s), 1),
            vec![Operation::ForceNotify("a".into())]
        );
        assert_eq!(apply(&mut status, Some(&s), 2), vec![]);

        let off = spec(false, &["ns2", "ns3"], "a");
        assert_eq!(apply(&mut status, Some(&off), 3), vec![Operation::Disable]);
        assert_eq!(status.outgoing.as_ref().unwrap().ixfr_backlog, 0);
        assert!(!status.outgoing.as_ref().unwrap().enabled);

        let on = spec(true, &["ns2", "ns4"], "b");
        assert_eq!(
            apply(&mut status, Some(&on), 4),
            vec![
                Operation::Enable,
                Operation::ForceNotify("b".into()),
                Operation::Peers {
                    added: vec!["ns4".into()],
                    removed: vec!["ns3".into()]
                }
            ]
        );
        let out = status.outgoing.as_ref().unwrap();
        assert_eq!(out.force_notified.as_ref().unwrap().time, t(4));
        assert_eq!(out.created_time, Some(t(0)), "created time kept");

        assert_eq!(apply(&mut status, None, 5), vec![Operation::Remove]);
        assert!(status.outgoing.is_none());
        let types: Vec<ChangeType> = status.history.iter().map(|h| h.change_type).collect();
        assert_eq!(types.first(), Some(&ChangeType::Delete));
        assert_eq!(types.last(), Some(&ChangeType::Create));
        assert_eq!(status.history.len(), 7);
        assert!(
            status
                .history
                .iter()
                .all(|h| h.user_id.as_deref() == Some("kubectl-edit"))
        );
        assert!(
            status.history[1]
                .message
                .as_deref()
                .unwrap()
                .contains("removed: [ns3]")
        );
    }

    fn observe(peers: &[(&str, PeerCheck)], served: u32, now: i64) -> Observation {
        Observation {
            served_serial: Some(served),
            backlog: 2,
            checked: Some(t(now)),
            peers: peers
                .iter()
                .map(|(n, c)| {
                    (
                        n.to_string(),
                        PeerObservation {
                            check: Some((c.clone(), t(now))),
                            ..PeerObservation::default()
                        },
                    )
                })
                .collect(),
        }
    }

    fn cond(status: &DnsZoneStatus) -> (String, String, String) {
        let c = super::super::status::condition(&status.conditions, CONDITION).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    #[test]
    fn condition_names_the_peer_and_events_mark_each_state_change() {
        let mut status = DnsZoneStatus::default();
        apply(&mut status, Some(&spec(true, &["ns2", "ns3"], "")), 0);
        let ev = fold_observation(
            &mut status,
            &observe(
                &[("ns2", PeerCheck::Serial(7)), ("ns3", PeerCheck::Serial(6))],
                7,
                1,
            ),
            &cx(1),
        );
        assert_eq!(ev.len(), 2);
        let (s, r, m) = cond(&status);
        assert_eq!((s.as_str(), r.as_str()), ("False", "PeersLagging"));
        assert!(m.contains("ns3 at 6") && !m.contains("ns2"), "{m}");
        assert_eq!(status.outgoing.as_ref().unwrap().ixfr_backlog, 2);

        let ev = fold_observation(
            &mut status,
            &observe(
                &[
                    ("ns2", PeerCheck::Serial(7)),
                    ("ns3", PeerCheck::Unreachable("timed out".into())),
                ],
                7,
                2,
            ),
            &cx(2),
        );
        assert_eq!(ev.len(), 1, "ns2 unchanged: no event");
        assert!(ev[0].warning && ev[0].note.contains("ns3 is Unreachable"));
        let (s, r, m) = cond(&status);
        assert_eq!((s.as_str(), r.as_str()), ("False", "PeersUnreachable"));
        assert!(m.contains("ns3 (timed out)"), "{m}");

        let ev = fold_observation(
            &mut status,
            &observe(
                &[("ns2", PeerCheck::Serial(7)), ("ns3", PeerCheck::Serial(7))],
                7,
                3,
            ),
            &cx(3),
        );
        assert_eq!(ev.len(), 1);
        assert!(!ev[0].warning);
        assert_eq!(cond(&status).0, "True");
        let peers = &status.outgoing.as_ref().unwrap().peers;
        assert!(peers.iter().all(|p| p.state == Some(PeerState::InSync)
            && p.soa_serial == Some(7)
            && p.checked_time == Some(t(3))
            && p.message.is_none()));

        // Same observation again: nothing to write.
        let before = status.clone();
        let ev = fold_observation(
            &mut status,
            &observe(
                &[("ns2", PeerCheck::Serial(7)), ("ns3", PeerCheck::Serial(7))],
                7,
                3,
            ),
            &cx(3),
        );
        assert!(ev.is_empty());
        assert_eq!(status, before);
    }

    #[test]
    fn notify_failure_and_refusal_have_their_reasons_and_transfers_their_method() {
        let mut status = DnsZoneStatus::default();
        apply(&mut status, Some(&spec(true, &["ns2"], "")), 0);
        let mut obs = observe(&[("ns2", PeerCheck::Serial(7))], 7, 1);
        obs.peers[0].1.notified = Some((t(1), Some("NOTAUTH".into())));
        obs.peers[0].1.transferred = Some((t(1), OutgoingTransferMethod::Ixfr));
        fold_observation(&mut status, &obs, &cx(1));
        let (s, r, m) = cond(&status);
        assert_eq!((s.as_str(), r.as_str()), ("False", "NotifyFailed"));
        assert!(m.contains("ns2 (NOTAUTH)"), "{m}");
        let out = status.outgoing.as_ref().unwrap();
        assert_eq!(out.last_transferred_time, Some(t(1)));
        assert_eq!(
            out.peers[0].last_transfer_method,
            Some(OutgoingTransferMethod::Ixfr)
        );

        fold_observation(
            &mut status,
            &observe(&[("ns2", PeerCheck::Refused("REFUSED".into()))], 7, 2),
            &cx(2),
        );
        assert_eq!(cond(&status).1, "PeersRefused");

        apply(&mut status, Some(&spec(false, &["ns2"], "")), 3);
        fold_observation(&mut status, &observe(&[], 7, 3), &cx(3));
        assert_eq!(cond(&status).1, "Disabled");
        assert_eq!(status.outgoing.as_ref().unwrap().ixfr_backlog, 0);
    }

    #[test]
    fn a_peer_ahead_of_the_served_serial_is_not_in_sync() {
        assert_eq!(
            peer_state(&PeerCheck::Serial(8), Some(7)),
            PeerState::Lagging
        );
        assert_eq!(
            peer_state(&PeerCheck::Serial(7), Some(7)),
            PeerState::InSync
        );
        assert_eq!(peer_state(&PeerCheck::Serial(7), None), PeerState::Lagging);
    }
}
