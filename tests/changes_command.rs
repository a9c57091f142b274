//! `zonekeeper changes`: a ZoneSync's complete change list read back from the cluster, as a
//! user with a kubeconfig runs it, against the operator's own chunked ConfigMaps.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::cluster::{Cluster, NS, is_ready, zone_manifest};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};
use zonekeeper::api::ZoneSync;
use zonekeeper::api::zone_sync::SyncPhase;

const WAIT: Duration = Duration::from_secs(120);
const BIN: &str = env!("CARGO_BIN_EXE_zonekeeper");

fn phase(s: &ZoneSync) -> Option<SyncPhase> {
    s.status.as_ref().and_then(|st| st.phase)
}

fn finished(s: &ZoneSync) -> bool {
    matches!(
        phase(s),
        Some(SyncPhase::Complete | SyncPhase::Failed | SyncPhase::Rejected)
    )
}

async fn sync_to_end(cluster: &Cluster, zone: &str) -> ZoneSync {
    let name = cluster.create_sync(zone, json!({})).await;
    let s = cluster.wait_sync(&name, WAIT, finished).await;
    assert_eq!(
        phase(&s),
        Some(SyncPhase::Complete),
        "{}",
        serde_yaml::to_string(&s).unwrap()
    );
    s
}

/// `zonekeeper changes -n dns NAME` with the test API server's kubeconfig: (exit code,
/// stdout lines, stderr).
fn changes_cli(kubeconfig: &std::path::Path, name: &str) -> (i32, Vec<String>, String) {
    let out = Command::new(BIN)
        .args(["changes", "-n", NS, name])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_prints_every_line_of_a_list_longer_than_status_keeps() {
    const ADDED: usize = 350;
    const DELETED: usize = 20;
    let mut records: Vec<String> = (0..DELETED)
        .map(|i| format!("old{i} A 192.0.2.{i}"))
        .collect();
    records.extend((0..200).map(|i| format!("pad{i} A 10.0.0.{}", i % 250)));
    let zone = ZoneContent::new("example.com.", records);
    let server = tokio::task::spawn_blocking(move || {
        DnsServer::start(ServerKind::Bind, &zone, ServerOptions::default())
    })
    .await
    .unwrap();
    let (cluster, op) = Cluster::with_operator("chg", &server).await;
    cluster
        .apply_zone(zone_manifest("chg", &server, json!([])))
        .await;
    cluster.wait_zone("chg", WAIT, is_ready).await;
    sync_to_end(&cluster, "chg").await;

    let mut script = String::new();
    for i in 0..ADDED {
        script.push_str(&format!(
            "update add new{i}.example.com. 300 IN TXT \"added {i}\"\n"
        ));
    }
    for i in 0..DELETED {
        script.push_str(&format!("update delete old{i}.example.com. A\n"));
    }
    tokio::task::block_in_place(|| server.nsupdate(&script));

    let big = sync_to_end(&cluster, "chg").await;
    let st = big.status.clone().unwrap();
    let summary = st.summary.clone().unwrap();
    assert_eq!(
        (summary.added, summary.deleted),
        (ADDED as i64, DELETED as i64)
    );
    assert!(
        st.full_changes_ref.is_some() && st.changes.len() < ADDED + DELETED,
        "status keeps part of the list and points at the rest: {} lines, ref {:?}",
        st.changes.len(),
        st.full_changes_ref
    );

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.api.write_kubeconfig(&kubeconfig).unwrap();
    let name = big.metadata.name.clone().unwrap();
    let (code, lines, stderr) = tokio::task::block_in_place(|| changes_cli(&kubeconfig, &name));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines.len(), ADDED + DELETED, "{stderr}");
    assert_eq!(
        &lines[..st.changes.len()],
        &st.changes[..],
        "the list begins with the lines status shows"
    );
    for i in 0..ADDED {
        let owner = format!("new{i}.example.com.");
        let hits: Vec<&String> = lines
            .iter()
            .filter(|l| {
                l.starts_with('+') && l.contains(&owner) && l.contains(&format!("\"added {i}\""))
            })
            .collect();
        assert_eq!(hits.len(), 1, "{owner} added once: {hits:?}");
    }
    for i in 0..DELETED {
        let owner = format!("old{i}.example.com.");
        let hits = lines
            .iter()
            .filter(|l| l.starts_with('-') && l.contains(&owner))
            .count();
        assert_eq!(hits, 1, "{owner} deleted once");
    }

    // A short list lives in status whole; the command prints it the same way.
    server.nsupdate("update add one.example.com. 300 IN A 192.0.2.200\n");
    let small = sync_to_end(&cluster, "chg").await;
    let st = small.status.clone().unwrap();
    assert_eq!(st.full_changes_ref, None);
    let (code, lines, stderr) = tokio::task::block_in_place(|| {
        changes_cli(&kubeconfig, small.metadata.name.as_deref().unwrap())
    });
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines, st.changes);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with('+') && lines[0].contains("one.example.com."));

    // A name that is not there: exit 1 and a message naming it.
    let (code, lines, stderr) =
        tokio::task::block_in_place(|| changes_cli(&kubeconfig, "no-such-sync"));
    assert_eq!(code, 1);
    assert!(lines.is_empty());
    assert!(
        stderr.contains("no-such-sync") && stderr.contains("not found"),
        "{stderr}"
    );
    op.stop().await;
}
