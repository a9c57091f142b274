//! A DnsZone's metric series: its labels and what a pass reports into them.

use kube::ResourceExt;

use super::context::Context;
use crate::api::DnsZone;
use crate::reconcile::pass;

pub(super) fn zone_labels(zone: &DnsZone) -> crate::telemetry::ZoneLabels {
    crate::telemetry::ZoneLabels {
        namespace: zone.namespace().unwrap_or_default(),
        name: zone.name_any(),
        zone: zone.spec.zone_name.clone(),
    }
}

pub(super) fn record_metrics(ctx: &Context, zone: &DnsZone, report: &pass::PassReport) {
    let labels = zone_labels(zone);
    ctx.metrics
        .zone_records
        .get_or_create(&labels)
        .set(i64::try_from(report.record_count).unwrap_or(i64::MAX));
    ctx.metrics
        .drift_rrsets
        .get_or_create(&labels)
        .set(i64::try_from(report.plan.drifted.len()).unwrap_or(i64::MAX));
    if let Some(applied) = &report.applied {
        ctx.metrics
            .update_messages
            .inc_by(applied.batches_ok as u64);
        let rrs: usize = report.plan.changes.iter().map(|c| c.rr_count()).sum();
        ctx.metrics.update_rrs.inc_by(rrs as u64);
    }
    for t in &report.transfers {
        let method = crate::telemetry::MethodLabels {
            method: t.method.query_type().to_string(),
        };
        ctx.metrics
            .transfer_bytes
            .get_or_create(&method)
            .inc_by(t.bytes);
        ctx.metrics
            .transfer_duration
            .get_or_create(&method)
            .observe(t.duration.as_secs_f64());
    }
}
