//! One reconcile of one DnsZone, the same decisions for the operator and the standalone
//! commands: suspended? → managed by another object? → resolve the connection → test it →
//! resolve the records while a primary's backend is observed → check a secondary against its
//! masters, or run a primary's pass. What differs between the two (where Secrets and state
//! live, how a changed connection is judged) is the [`ZoneHost`]'s; what the result means for
//! status and events is [`super::outcome::fold`]'s.

use hickory_proto::rr::Name;

use crate::api::DnsZoneSpec;
use crate::api::dns_zone::ZoneType;

use super::config::{self, Connection, Lookup};
use super::outcome::Outcome;
use super::pass::{self, Mode, Observing, PassError, PassReport, Stop, ZoneState};
use super::secondary;

/// What a reconcile needs from where it runs.
pub trait ZoneHost {
    /// A failure of the host itself (API server, state files); the reconcile stops on it.
    type Error;
    type Lookup: Lookup;

    /// The Secrets and ConfigMaps the zone may reference.
    fn lookup(&mut self) -> impl Future<Output = Result<Self::Lookup, Self::Error>> + Send;

    /// Judges the resolved connection before anything is sent. `Ok(Some(why))`: a changed
    /// connection failed and `connection` was set back to the last accepted one; `Err`: there
    /// is no usable connection at all.
    fn test_connection(
        &mut self,
        connection: &mut Connection,
    ) -> impl Future<Output = Result<Option<String>, PassError>> + Send;

    /// Starts observing a primary's backend from the snapshot the host keeps for the zone;
    /// the observation holds the snapshot until the pass puts the observed one into
    /// [`ZoneHost::state`].
    fn observe(&mut self, connection: &Connection) -> Observing<Self::Error>;

    /// The zone's ownership and SOA memory (and, after a pass, its snapshot), loaded when
    /// first needed.
    fn state(
        &mut self,
        origin: &Name,
    ) -> impl Future<Output = Result<&mut ZoneState, Self::Error>> + Send;
}

/// Runs the decision tree. `conflict` names the older object managing the same zone on the same
/// server, if any (only a cluster can know). `Mode::Plan` sends nothing that changes a server.
pub async fn reconcile_zone<H: ZoneHost>(
    host: &mut H,
    spec: &DnsZoneSpec,
    conflict: Option<String>,
    mode: Mode,
) -> Result<Outcome, H::Error> {
    if spec.suspend {
        return Ok(Outcome::Suspended);
    }
    if let Some(winner) = conflict {
        return Ok(Outcome::Conflict { winner });
    }
    let lookup = host.lookup().await?;
    let mut connection = match config::connection(spec, &lookup) {
        Ok(connection) => connection,
        Err(e) => return Ok(Outcome::Invalid(e)),
    };
    let tested = host.test_connection(&mut connection).await;
    // A primary's backend is observed while its records are resolved: for a big zone the
    // transfer and the resolve are each a good part of the pass.
    let observing = match (&tested, spec.zone_type) {
        (Ok(_), ZoneType::Primary) => Some(host.observe(&connection)),
        _ => None,
    };
    let origin = connection.origin.clone();
    let resolved = pass::off_worker(|| config::resolve_with(spec, &lookup, connection));
    // The ConfigMap texts (28 MB for a 1M-record zone) are parsed: not held through the pass.
    drop(lookup);
    let cfg = match resolved {
        Ok(cfg) => cfg,
        Err(e) => {
            // The snapshot the observation took is the zone's all the same.
            if let Some(observing) = observing {
                let observed = observing.stop().await?;
                host.state(&origin).await?.snapshot = observed.snapshot;
            }
            return Ok(Outcome::Invalid(e));
        }
    };
    let rejected_connection = match tested {
        Ok(rejected) => rejected,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
    let state = host.state(&cfg.origin).await?;
    Ok(match cfg.zone_type {
        ZoneType::Secondary => match secondary::observe(&cfg, mode).await {
            Ok(report) => Outcome::Secondary(report),
            Err(e) => Outcome::Failed(e),
        },
        ZoneType::Primary => {
            let observed = match observing {
                Some(observing) => observing.finish().await?,
                None => {
                    let snapshot = state.snapshot.take();
                    pass::observe(cfg.connection(), snapshot, Stop::never()).await
                }
            };
            match pass::run_observed(&cfg, state, observed, mode).await {
                Ok(report) => {
                    log_applied(&cfg.origin, &cfg.backend.server, &report);
                    Outcome::Pass {
                        report: Box::new(report),
                        rejected_connection,
                    }
                }
                Err(e) => Outcome::Failed(e),
            }
        }
    })
}

/// One info line per change set sent: a successful apply is otherwise silent at the default
/// level, and the operator's log is where "what did it just do to my server" is looked up.
fn log_applied(origin: &Name, server: &str, report: &PassReport) {
    if let Some(not_taken) = &report.soa_not_taken {
        tracing::warn!(zone = %origin, server, "{not_taken}");
    }
    let Some(applied) = &report.applied else {
        return;
    };
    let (added, updated, deleted) = report.plan.counts();
    if applied.is_complete() {
        tracing::info!(
            zone = %origin,
            server,
            added,
            updated,
            deleted,
            serial = report.serial_after,
            batches = applied.batches_total,
            "applied RRset changes"
        );
    } else {
        tracing::warn!(
            zone = %origin,
            server,
            planned = report.plan.changes.len(),
            applied = applied.applied,
            serial = report.serial_after,
            "applied part of the RRset changes"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::dns::diff::{Change, Plan};
    use crate::dns::model::{RRset, parse_rdata};
    use crate::dns::update::ApplyReport;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_applied_change_set_is_logged_at_info_with_zone_server_and_counts() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let rdata = parse_rdata(RecordType::A, &origin, "192.0.2.80").unwrap();
        let www = RRset::new(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
            300,
            vec![rdata],
        );
        let report = |applied: Option<ApplyReport>| PassReport {
            serial_before: 10,
            serial_after: 11,
            plan: Plan {
                changes: vec![Change::Add(www.clone())],
                drifted: Vec::new(),
            },
            guard: Ok(()),
            applied,
            record_count: 3,
            transfers: Vec::new(),
            suspect: None,
            earlier: None,
            recheck_error: None,
            soa: None,
            soa_not_taken: None,
        };
        let done = ApplyReport {
            applied: 1,
            batches_ok: 1,
            batches_total: 1,
            applied_ranges: std::iter::once(0..1).collect(),
            failed: None,
            unknown: Vec::new(),
            batches_failed: Vec::new(),
            not_sent: 0,
            duration: Duration::ZERO,
        };
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            log_applied(&origin, "127.0.0.1:10053", &report(None));
            log_applied(&origin, "127.0.0.1:10053", &report(Some(done)));
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "nothing sent, nothing logged:\n{text}");
        for part in [
            "INFO",
            "applied RRset changes",
            "zone=example.com.",
            "server=\"127.0.0.1:10053\"",
            "added=1",
            "updated=0",
            "deleted=0",
            "serial=11",
        ] {
            assert!(lines[0].contains(part), "{part} missing: {text}");
        }
    }
}
