//! Leader election on a `coordination.k8s.io/v1` Lease (kube-runtime 5 has none built in).
//!
//! One step either creates the lease, renews it (a replace checked by resourceVersion, so two
//! candidates can never both win), or takes it over once it expired. The holder renews every
//! third of the lease duration. As in client-go, one slow or failed renewal does not end the
//! leadership: the holder retries until its renew deadline (two thirds of the lease, counted
//! from the start of the last renewal that succeeded) and steps down only then, or at once when
//! another candidate holds the lease. The others can take over no sooner than a full lease after
//! that renewal, so the last third is the margin in which the holder stops writing: at most one
//! instance writes at any time. Expiry is judged as client-go does: by how long the lease has
//! gone unchanged on this candidate's own clock, never by comparing the holder's `renewTime`
//! with it (two machines' clocks may disagree by more than a lease).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// Errors of the election loop.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease {name}: {source}")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Settings of one candidate.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Name of the Lease object.
    pub lease_name: String,
    /// This instance's identity (the pod name).
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub lease_duration: Duration,
}

/// A candidate for leadership.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderConfig,
    observed: Mutex<LeaseObservation>,
}

/// The lease as this candidate last saw it, and when by its own clock.
#[derive(Debug, Default)]
pub struct LeaseObservation {
    seen: Option<(Option<String>, Option<Timestamp>, Option<i32>)>,
    since: Option<Instant>,
}

impl LeaseObservation {
    /// Whether the holder has let the lease lapse: it has not changed here for its duration.
    /// The first sight of a lease starts the count, so a new candidate waits a full duration
    /// before it takes over a lease it never saw renewed.
    pub fn expired(&mut self, spec: &LeaseSpec, now: Instant) -> bool {
        let key = (
            spec.holder_identity.clone(),
            spec.renew_time.as_ref().map(|t| t.0),
            spec.lease_duration_seconds,
        );
        let since = match self.since {
            Some(since) if self.seen.as_ref() == Some(&key) => since,
            _ => {
                self.seen = Some(key);
                self.since = Some(now);
                now
            }
        };
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        now.saturating_duration_since(since) > duration
    }
}

/// What one election step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// This instance holds the lease (created, renewed or taken over).
    Held,
    /// Another candidate holds a lease that has not expired.
    HeldByOther,
    /// The lease changed between read and write: nothing is known, try again.
    Conflict,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl LeaderElector {
    pub fn new(api: Api<Lease>, config: LeaderConfig) -> Self {
        Self {
            api,
            config,
            observed: Mutex::new(LeaseObservation::default()),
        }
    }

    fn err(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            name: self.config.lease_name.clone(),
            source,
        }
    }

    fn held_spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One election step.
    pub async fn try_acquire_or_renew(&self) -> Result<Step, LeaderError> {
        let name = &self.config.lease_name;
        let current = match self.api.get(name).await {
            Ok(lease) => lease,
            Err(e) if is_not_found(&e) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.held_spec(0, None)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(Step::Held),
                    Err(e) if is_conflict(&e) => Ok(Step::Conflict),
                    Err(e) => Err(self.err(e)),
                };
            }
            Err(e) => return Err(self.err(e)),
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let mine = holder == self.config.identity;
        let expired = holder.is_empty()
            || self
                .observed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .expired(&spec, Instant::now());
        if !mine && !expired {
            return Ok(Step::HeldByOther);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine {
            spec.acquire_time.clone()
        } else {
            None
        };
        let mut next = current.clone();
        next.spec = Some(self.held_spec(transitions, acquired));
        match self.api.replace(name, &PostParams::default(), &next).await {
            Ok(_) => Ok(Step::Held),
            Err(e) if is_conflict(&e) => Ok(Step::Conflict),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Gives the lease up so a standby can take over at once (on graceful shutdown).
    pub async fn release(&self) -> Result<(), LeaderError> {
        let name = &self.config.lease_name;
        let mut lease = match self.api.get(name).await {
            Ok(lease) => lease,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(self.err(e)),
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Runs the election until `shutdown` fires, publishing leadership on `leader`; releases the
    /// lease on the way out.
    pub async fn run(self, leader: watch::Sender<bool>, mut shutdown: watch::Receiver<bool>) {
        let period = (self.config.lease_duration / 3).max(Duration::from_millis(100));
        let mut term = Term::new(self.config.lease_duration);
        loop {
            let started = Instant::now();
            // Not even a slow request may carry the leadership past the renew deadline.
            let budget = term.budget(started).unwrap_or(period);
            let step = match tokio::time::timeout(budget, self.try_acquire_or_renew()).await {
                Ok(Ok(step)) => Some(step),
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.config.lease_name, error = %e, "leader election step failed");
                    None
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.lease_name, deadline = ?budget, "leader election step timed out");
                    None
                }
            };
            let held = term.record(step, started, Instant::now());
            leader.send_if_modified(|was| {
                let changed = *was != held;
                if changed {
                    tracing::info!(lease = %self.config.lease_name, identity = %self.config.identity, leader = held, "leadership changed");
                }
                *was = held;
                changed
            });
            // A holder whose renewal failed retries soon: its deadline is running.
            let pause = match (held, step) {
                (true, Some(Step::Held)) | (false, _) => period,
                (true, _) => term.retry_pause(Instant::now()),
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => break,
            }
        }
        leader.send_replace(false);
        if let Err(e) = self.release().await {
            tracing::warn!(error = %e, "releasing the leader lease failed");
        }
    }
}

/// The holder's side of the lease: when it last renewed, so when it must stop writing.
#[derive(Debug)]
struct Term {
    renew_deadline: Duration,
    /// Start of the last renewal that succeeded, while leading.
    renewed: Option<Instant>,
}

impl Term {
    fn new(lease_duration: Duration) -> Self {
        Self {
            renew_deadline: lease_duration * 2 / 3,
            renewed: None,
        }
    }

    /// While leading: the time left before the renew deadline.
    fn budget(&self, now: Instant) -> Option<Duration> {
        let renewed = self.renewed?;
        Some(
            self.renew_deadline
                .saturating_sub(now.saturating_duration_since(renewed))
                .max(Duration::from_millis(1)),
        )
    }

    /// Takes one step's outcome (`None`: failed or timed out) and says whether this instance
    /// leads now. A success counts from when its request started: the server may have applied
    /// it at any time after.
    fn record(&mut self, step: Option<Step>, started: Instant, now: Instant) -> bool {
        match step {
            Some(Step::Held) => self.renewed = Some(started),
            Some(Step::HeldByOther) => self.renewed = None,
            Some(Step::Conflict) | None => {
                if self
                    .renewed
                    .is_some_and(|r| now.saturating_duration_since(r) >= self.renew_deadline)
                {
                    self.renewed = None;
                }
            }
        }
        self.renewed.is_some()
    }

    /// How long a holder whose renewal failed waits before it tries again.
    fn retry_pause(&self, now: Instant) -> Duration {
        let left = self.budget(now).unwrap_or_default();
        (left / 4).clamp(Duration::from_millis(50), Duration::from_secs(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_renewal_keeps_the_lead_until_the_renew_deadline_only() {
        let mut term = Term::new(Duration::from_secs(15));
        let t0 = Instant::now();
        assert!(!term.record(None, t0, t0), "no lease, no leadership");
        assert!(term.record(Some(Step::Held), t0, t0 + Duration::from_secs(1)));
        // Renewals time out or conflict: still leading while the deadline (10 s) is ahead.
        assert!(term.record(
            None,
            t0 + Duration::from_secs(5),
            t0 + Duration::from_secs(9)
        ));
        assert!(term.record(
            Some(Step::Conflict),
            t0 + Duration::from_secs(9),
            t0 + Duration::from_millis(9_900)
        ));
        assert_eq!(
            term.budget(t0 + Duration::from_millis(9_900)),
            Some(Duration::from_millis(100))
        );
        assert!(!term.record(
            None,
            t0 + Duration::from_secs(9),
            t0 + Duration::from_secs(10)
        ));
        // A renewal that succeeds counts from when it was sent, not when it came back.
        let t1 = t0 + Duration::from_secs(20);
        assert!(term.record(Some(Step::Held), t1, t1 + Duration::from_secs(4)));
        assert_eq!(
            term.budget(t1 + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        // Another holder: step down at once, whatever the deadline says.
        assert!(!term.record(
            Some(Step::HeldByOther),
            t1 + Duration::from_secs(5),
            t1 + Duration::from_secs(5)
        ));
    }

    #[test]
    fn a_lease_expires_after_its_duration_unchanged_on_our_clock() {
        // The holder's clock runs an hour behind ours: its renewTime says nothing about expiry.
        let behind = Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(1);
        let mut spec = LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(behind)),
            ..Default::default()
        };
        let mut seen = LeaseObservation::default();
        let t0 = Instant::now();
        assert!(!seen.expired(&spec, t0), "first sight starts the count");
        assert!(!seen.expired(&spec, t0 + Duration::from_secs(15)));
        assert!(seen.expired(&spec, t0 + Duration::from_secs(16)));
        // A renewal (a new renewTime, whatever its value) starts the count again.
        spec.renew_time = Some(MicroTime(
            behind + k8s_openapi::jiff::SignedDuration::from_secs(5),
        ));
        assert!(!seen.expired(&spec, t0 + Duration::from_secs(20)));
        assert!(seen.expired(&spec, t0 + Duration::from_secs(36)));
    }
}
