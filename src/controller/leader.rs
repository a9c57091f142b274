//! Leader election on a `coordination.k8s.io/v1` Lease (kube-runtime 5 has none built in).
//!
//! One step either creates the lease, renews it (a replace checked by resourceVersion, so two
//! candidates can never both win), or takes it over once it expired. The holder renews every
//! third of the lease duration, each renewal bounded by that third, and steps down as soon as
//! a renewal fails or runs late, before the lease can expire for the others, so at most one
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

    /// One election step: returns whether this instance holds the lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaderError> {
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
                    Ok(_) => Ok(true),
                    Err(e) if is_conflict(&e) => Ok(false),
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
            return Ok(false);
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
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
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

    /// Runs the election until `shutdown` fires, publishing leadership on `leader`. A failed
    /// renewal (conflict or API error) publishes `false` at once: stepping down early is safe,
    /// holding on while unsure is not.
    pub async fn run(self, leader: watch::Sender<bool>, mut shutdown: watch::Receiver<bool>) {
        let retry = (self.config.lease_duration / 3).max(Duration::from_millis(100));
        loop {
            // A renewal that takes longer than a third of the lease may land after the others
            // saw it expire: it counts as failed.
            let held = match tokio::time::timeout(retry, self.try_acquire_or_renew()).await {
                Ok(Ok(held)) => held,
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.config.lease_name, error = %e, "leader election step failed");
                    false
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.lease_name, deadline = ?retry, "leader election step timed out");
                    false
                }
            };
            leader.send_if_modified(|was| {
                let changed = *was != held;
                if changed {
                    tracing::info!(lease = %self.config.lease_name, identity = %self.config.identity, leader = held, "leadership changed");
                }
                *was = held;
                changed
            });
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => break,
            }
        }
        leader.send_replace(false);
        if let Err(e) = self.release().await {
            tracing::warn!(error = %e, "releasing the leader lease failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
