//! One reconcile of one DnsZone, the same decisions for the operator and the standalone
//! commands: suspended? → managed by another object? → resolve the spec → test the
//! connection → check a secondary against its masters, or run a primary's pass. What differs
//! between the two (where Secrets and state live, how a changed connection is judged) is the
//! [`ZoneHost`]'s; what the result means for status and events is [`super::outcome::fold`]'s.

use hickory_proto::rr::Name;

use crate::api::DnsZoneSpec;
use crate::api::dns_zone::ZoneType;

use super::config::{self, Lookup, ZoneConfig};
use super::outcome::Outcome;
use super::pass::{self, Mode, PassError, ZoneState};
use super::secondary;

/// What a reconcile needs from where it runs.
pub trait ZoneHost {
    /// A failure of the host itself (API server, state files); the reconcile stops on it.
    type Error;
    type Lookup: Lookup;

    /// The Secrets and ConfigMaps the zone may reference.
    fn lookup(&mut self) -> impl Future<Output = Result<Self::Lookup, Self::Error>> + Send;

    /// Judges the resolved connection before anything is sent. `Ok(Some(why))`: a changed
    /// connection failed and `cfg` was set back to the last accepted one; `Err`: there is no
    /// usable connection at all.
    fn test_connection(
        &mut self,
        cfg: &mut ZoneConfig,
    ) -> impl Future<Output = Result<Option<String>, PassError>> + Send;

    /// The zone's ownership and snapshot, loaded when first needed.
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
    let mut cfg = match config::resolve(spec, &lookup) {
        Ok(cfg) => cfg,
        Err(e) => return Ok(Outcome::Invalid(e)),
    };
    let rejected_connection = match host.test_connection(&mut cfg).await {
        Ok(rejected) => rejected,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
    let state = host.state(&cfg.origin).await?;
    Ok(match cfg.zone_type {
        ZoneType::Secondary => match secondary::observe(&cfg, mode).await {
            Ok(report) => Outcome::Secondary(report),
            Err(e) => Outcome::Failed(e),
        },
        ZoneType::Primary => match pass::run(&cfg, state, mode).await {
            Ok(report) => Outcome::Pass {
                report: Box::new(report),
                rejected_connection,
            },
            Err(e) => Outcome::Failed(e),
        },
    })
}
