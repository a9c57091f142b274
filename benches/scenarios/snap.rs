//! The ZoneSync scenarios (`-- --zonesync`): a ZoneSync's work without the API server.

use super::*;

/// A ZoneSync's work without the API server: AXFR (or IXFR) + diff against the previous
/// snapshot + change lines + snapshot encode (gzip wire records), on 100k records from Knot.
pub(crate) async fn zonesync_scenario(kind: Kind) -> anyhow::Result<()> {
    use zonekeeper::api::zone_sync::SyncMethod;
    use zonekeeper::reconcile::config::Endpoint;
    let server = start(kind, 100_000);
    let k = key(&server)?;
    let z = zone()?;
    let endpoint = Endpoint {
        server: server.addr.to_string(),
        key: Some(k.clone()),
        timeout: Duration::from_secs(10),
        key_secret: None,
        bounds: Default::default(),
    };
    let tool = if matches!(kind, Kind::Knot) {
        "kdig"
    } else {
        "dig"
    };
    external_axfr(tool, &server, "AXFR")?;
    // A first sync stores a full base; an incremental one stores a delta on it, as the
    // controller does (src/controller/zone_sync.rs).
    let run = |previous: Option<zonekeeper::dns::model::Zone>| {
        let endpoint = endpoint.clone();
        let z = z.clone();
        async move {
            let t = Instant::now();
            // By value, as the controller does: an IXFR changes the snapshot in place.
            let report =
                zonekeeper::reconcile::sync::sync_owned(&endpoint, &z, previous, SyncMethod::Auto)
                    .await
                    .map_err(|(e, _)| e)?;
            let synced = t.elapsed();
            let lines = zonekeeper::dns::diff::change_lines(&report.changes);
            let bytes = if report.incremental {
                zonekeeper::reconcile::snapshot::Delta::from_changes(
                    &report.changes,
                    &report.snapshot,
                )
                .encode()
            } else {
                zonekeeper::reconcile::snapshot::encode(&report.snapshot)
            }
            .map_err(anyhow::Error::msg)?;
            let took = t.elapsed();
            println!(
                "bench-detail transfer_s={:.4} transfer_and_diff_s={:.4} encode_s={:.4} snapshot_bytes={}",
                report.transfer.duration.as_secs_f64(),
                synced.as_secs_f64(),
                (took - synced).as_secs_f64(),
                bytes.len()
            );
            anyhow::ensure!(!bytes.is_empty());
            anyhow::Ok((took, report, lines.len()))
        }
    };
    let mut floor = Duration::MAX;
    let mut ours = Duration::MAX;
    let mut peak: f64 = 0.0;
    let mut snapshot = None;
    for _ in 0..3 {
        floor = floor.min(external_axfr(tool, &server, "AXFR")?);
        reset_peak();
        let (took, report, lines) = run(None).await?;
        ours = ours.min(took);
        peak = peak.max(peak_mb());
        anyhow::ensure!(
            lines > 100_000,
            "{lines} change lines from an empty snapshot"
        );
        snapshot = Some(report.snapshot);
    }
    line(
        &format!("zonesync-axfr-100k-{}", kind_name(kind)),
        ours,
        floor,
        peak,
    );

    let from = query_soa(
        server.addr,
        &z,
        &QueryOptions {
            tsig: Some(k.clone()),
            ..Default::default()
        },
    )
    .await?;
    let report = apply_changes(
        server.addr,
        &z,
        &adds("s", 10)?,
        &UpdateOptions {
            tsig: Some(k.clone()),
            ..Default::default()
        },
    )
    .await;
    anyhow::ensure!(report.is_complete(), "{report:?}");
    let mut floor = Duration::MAX;
    let mut ours = Duration::MAX;
    reset_peak();
    for _ in 0..5 {
        floor = floor.min(external_axfr(tool, &server, &format!("IXFR={from}"))?);
        let (took, report, lines) = run(snapshot.clone()).await?;
        ours = ours.min(took);
        anyhow::ensure!(
            report.transfer.method == zonekeeper::dns::transfer::TransferMethod::Ixfr,
            "{:?}",
            report.transfer.method
        );
        anyhow::ensure!(lines == 10, "{lines} change lines for 10 adds");
    }
    line(
        &format!("zonesync-ixfr-10-on-100k-{}", kind_name(kind)),
        ours,
        floor,
        peak_mb(),
    );
    Ok(())
}
