//! The 1M-record sync's memory (issue 18), `-- --sync [--max N]`: `axfr-sync-<n>-{knot,bind}`
//! and `axfr-raw-*` alone (100k and 1M, up to N), after a `bench-detail zone-model-<n>` line
//! giving what the zone model takes per RRset (RSS growth while one zone of n single-record
//! A RRsets is built, divided by n, in a child process of its own: pages a freed zone
//! leaves to the allocator would hide the growth).

use std::time::Instant;

use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record};
use zonekeeper::dns::model::Zone;

use super::{Kind, ZONE, axfr_scenario, human, ip};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// RSS growth per RRset while a zone of `n` RRsets is built in the order BIND would not
/// send them (every insert somewhere in the middle), as an observed zone is.
fn model_bytes(n: usize) -> anyhow::Result<()> {
    let before = rss_kb();
    let t = Instant::now();
    let mut zone = Zone::new(Name::from_ascii(ZONE)?);
    // A stride coprime with n visits every index once, out of order.
    let stride = 7919;
    for j in 0..n {
        let i = (j * stride) % n;
        let [a, b, c, d] = ip(i);
        zone.insert(Record::from_rdata(
            Name::from_ascii(format!("h{i}.{ZONE}"))?,
            300,
            RData::A(A::new(a, b, c, d)),
        ));
    }
    let build = t.elapsed();
    let grown = rss_kb().saturating_sub(before) as f64 * 1024.0;
    anyhow::ensure!(zone.rrset_count() == n, "{} RRsets", zone.rrset_count());
    println!(
        "bench-detail zone-model-{} bytes_per_rrset={:.1} build_s={:.3}",
        human(n),
        grown / n as f64,
        build.as_secs_f64()
    );
    Ok(())
}

pub async fn sync_scenarios(args: &[String], max: usize) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "--zone-model") {
        return model_bytes(max.clamp(1, 1_000_000));
    }
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(["--bench", "--sync", "--zone-model", "--max"])
        .arg(max.to_string())
        .output()?;
    anyhow::ensure!(
        child.status.success(),
        "zone model measure failed: {child:?}"
    );
    // The child runs main's preamble (the ACL line) too: only its own line is passed on.
    for l in String::from_utf8_lossy(&child.stdout).lines() {
        if l.starts_with("bench-detail zone-model") {
            println!("{l}");
        }
    }
    for n in [100_000, 1_000_000]
        .into_iter()
        .filter(|n| *n <= max.max(1))
    {
        for kind in [Kind::Knot, Kind::Bind] {
            axfr_scenario(kind, n).await?;
        }
    }
    Ok(())
}
