//! A real BIND killed (SIGKILL, as a crash or an OOM kill) in the middle of the operator's work
//! and started again on the same port and files: nothing that landed is forgotten, nothing is
//! lost, and the next pass or sync finishes the job.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use serde_json::json;
use support::cluster::{Cluster, NS, condition, is_ready, zone_manifest};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};
use zonekeeper::api::ZoneSync;
use zonekeeper::api::dns_zone::DnsZone;
use zonekeeper::api::shared::ChangeStatus;
use zonekeeper::api::zone_sync::SyncPhase;
use zonekeeper::controller::snapshot::ConfigMapStore;

const WAIT: Duration = Duration::from_secs(300);
const RESTART: Duration = Duration::from_secs(120);

async fn start(zone: ZoneContent) -> DnsServer {
    tokio::task::spawn_blocking(move || {
        DnsServer::start(ServerKind::Bind, &zone, ServerOptions::default())
    })
    .await
    .unwrap()
}

fn host_count(server: &DnsServer, prefix: &str) -> usize {
    server
        .axfr_lines()
        .iter()
        .filter(|l| l.starts_with(prefix))
        .count()
}

/// Polls `cond` every millisecond on a blocking thread until it holds or `deadline` passes.
fn poll_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

fn ready_false_naming(zone: &DnsZone, server: &str) -> bool {
    zone.status.as_ref().is_some_and(|st| {
        st.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False" && c.message.contains(server))
    })
}

async fn owned_count(cluster: &Cluster, zone_object: &str) -> Option<usize> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    api.get_opt(&format!("{zone_object}-zonekeeper-owned"))
        .await
        .unwrap()?
        .data?
        .get("rrsetCount")?
        .parse()
        .ok()
}

/// (a) BIND killed while the operator sends a change of many UPDATE batches: the history
/// entry says `Failed` and lists what landed, Ready=False names the server; once BIND is
/// back, the next pass sends the rest, every record is there and every RRset is owned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_killed_mid_apply_records_what_landed_and_the_next_pass_completes() {
    const N: usize = 30_000;
    let mut server = start(ZoneContent::new("example.com.", vec![])).await;
    let initial = server.soa_serial().unwrap();
    let (cluster, op) = Cluster::with_operator("crash", &server).await;
    let mut text = String::from("$TTL 300\n");
    for i in 0..N {
        text.push_str(&format!("host-{i} IN A 10.{}.{}.1\n", i / 256, i % 256));
    }
    cluster.config_map("crash-records", "zone", &text).await;
    let mut manifest = zone_manifest("crash", &server, json!([]));
    // The fixture's SOA TTL: the apply is the records alone, no SOA change among them.
    manifest["spec"]["ttl"] = json!(3600);
    manifest["spec"]["recordsFrom"] =
        json!([{"configMapRef": {"name": "crash-records", "key": "zone"}}]);
    cluster.apply_zone(manifest).await;

    // The first batch moved the serial: kill BIND before the others land.
    let addr = server.addr;
    let moved = tokio::task::block_in_place(|| {
        poll_until(WAIT, || {
            support::dns_servers::query_soa_serial(addr, "example.com.", Duration::from_millis(500))
                .is_some_and(|s| s != initial)
        })
    });
    assert!(moved, "no UPDATE batch landed");
    tokio::task::block_in_place(|| server.kill());

    let server_name = addr.to_string();
    let failed = cluster
        .wait_zone("crash", WAIT, |z| ready_false_naming(z, &server_name))
        .await;
    let (_, reason) = condition(&failed, "Ready").unwrap();
    eprintln!("Ready=False reason {reason}");
    let failed = cluster
        .wait_zone("crash", WAIT, |z| {
            z.status
                .as_ref()
                .is_some_and(|st| st.history.iter().any(|h| h.status == ChangeStatus::Failed))
        })
        .await;
    let st = failed.status.clone().unwrap();
    let entry = st
        .history
        .iter()
        .find(|h| h.status == ChangeStatus::Failed)
        .unwrap()
        .clone();
    let message = entry.message.clone().unwrap_or_default();
    // "applied 823 of 30000 RRset change(s); batch 2 of 37 failed: ... 127.0.0.1:port ..."
    let landed_count: usize = message
        .strip_prefix("applied ")
        .and_then(|m| m.split_once(" of "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("the failed entry says how much landed: {message}"));
    assert!(
        landed_count < N && message.contains(&server_name),
        "{message}"
    );
    // The batch in flight when BIND died may have landed unconfirmed: the entry says so.
    assert!(
        message.contains("never came, they may have landed"),
        "{message}"
    );
    if landed_count > 0 {
        assert!(
            entry.sample.iter().any(|l| l.starts_with("+ host-"))
                && entry
                    .sample
                    .iter()
                    .any(|l| l.starts_with("not applied: + host-")),
            "the sample lists what landed and what did not: {:?}",
            entry.sample
        );
    }
    eprintln!("history: {message}");

    // Back on the same port with the same files: what landed is still there.
    tokio::task::block_in_place(|| server.restart(RESTART));
    let kept = tokio::task::block_in_place(|| host_count(&server, "host-"));
    assert!(
        kept >= landed_count && kept < N,
        "BIND kept {kept} records, the history says {landed_count} landed"
    );

    let done = cluster.wait_zone("crash", WAIT, is_ready).await;
    assert_eq!(
        tokio::task::block_in_place(|| host_count(&server, "host-")),
        N
    );
    let st = done.status.clone().unwrap();
    // The pass that finished the job sent only what had not landed: nothing twice, nothing lost.
    let newer: Vec<_> = st
        .history
        .iter()
        .take_while(|h| h.id != entry.id)
        .filter(|h| h.status == ChangeStatus::Complete)
        .map(|h| h.added)
        .collect();
    assert_eq!(
        newer.iter().sum::<i64>(),
        (N - kept) as i64,
        "completing entries after the failed one: {:?}",
        st.history
            .iter()
            .map(|h| (h.status, h.added, h.message.clone()))
            .collect::<Vec<_>>()
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let owned = owned_count(&cluster, "crash").await;
        if owned == Some(N) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "owned RRsets: {owned:?}, want {N}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    op.stop().await;
}

fn phase(s: &ZoneSync) -> Option<SyncPhase> {
    s.status.as_ref().and_then(|st| st.phase)
}

fn finished(s: &ZoneSync) -> bool {
    matches!(
        phase(s),
        Some(SyncPhase::Complete | SyncPhase::Failed | SyncPhase::Rejected)
    )
}

/// An established TCP connection from this machine to `addr` (the operator's transfer).
fn tcp_connection_to(addr: SocketAddr) -> bool {
    let port = format!("{:04X}", addr.port());
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // local, remote, state; 01 is ESTABLISHED. 0100007F is 127.0.0.1.
        f.len() > 3 && f[2] == format!("0100007F:{port}") && f[3] == "01"
    })
}

/// (b) BIND killed while a ZoneSync reads a full transfer: the sync fails with a named
/// reason, the stored snapshot stays; with BIND back, a new sync reports exactly the changes
/// made since the snapshot before the failed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_killed_mid_sync_keeps_the_snapshot_and_the_next_sync_reports_the_changes() {
    let mut server = start(ZoneContent::generated("example.com.", 150_000)).await;
    let (cluster, op) = Cluster::with_operator("xfr", &server).await;
    let mut manifest = zone_manifest("xfr", &server, json!([]));
    manifest["spec"]["sync"] = json!({"interval": "1h", "minInterval": "0"});
    cluster.apply_zone(manifest).await;
    cluster.wait_zone("xfr", WAIT, is_ready).await;
    let first = cluster.create_sync("xfr", json!({})).await;
    let first = cluster.wait_sync(&first, WAIT, finished).await;
    assert_eq!(phase(&first), Some(SyncPhase::Complete));

    let store = ConfigMapStore {
        api: Api::<ConfigMap>::namespaced(cluster.client.clone(), NS),
        zone_object: "xfr".into(),
        owner: OwnerReference::default(),
    };
    let before = store.pointer().await.unwrap().expect("a snapshot");

    server.nsupdate(
        "update add new1.example.com. 300 IN A 192.0.2.51\n\
         update add new2.example.com. 300 IN TXT \"hello\"\n\
         update delete r0.example.com. A\n",
    );

    // A whole-zone transfer, so there is a stream to cut: stop BIND as soon as the operator's
    // TCP connection is up (so the stream stops where it is), then kill it.
    let doomed = cluster.create_sync("xfr", json!({"method": "Axfr"})).await;
    let addr = server.addr;
    let connected = tokio::task::block_in_place(|| poll_until(WAIT, || tcp_connection_to(addr)));
    assert!(connected, "the sync never connected");
    server.pause(true);
    let mid = cluster.syncs().get(&doomed).await.unwrap();
    assert!(!finished(&mid), "the transfer ended before the kill");
    tokio::task::block_in_place(|| server.kill());

    let failed = cluster.wait_sync(&doomed, WAIT, finished).await;
    let st = failed.status.clone().unwrap();
    assert_eq!(st.phase, Some(SyncPhase::Failed), "{st:?}");
    let reason = st.reason.clone().unwrap_or_default();
    assert!(!reason.is_empty(), "a named reason: {st:?}");
    eprintln!(
        "failed sync: reason {reason}: {}",
        st.message.clone().unwrap_or_default()
    );
    assert_eq!(
        store.pointer().await.unwrap(),
        Some(before.clone()),
        "the snapshot stays"
    );

    tokio::task::block_in_place(|| server.restart(RESTART));
    // A sync asked for while the zone has no working connection is rejected
    // (`ZoneInactive`): wait until the zone's own pass has reached BIND again.
    cluster.wait_zone("xfr", WAIT, is_ready).await;
    let again = cluster.create_sync("xfr", json!({})).await;
    let again = cluster.wait_sync(&again, WAIT, finished).await;
    assert_eq!(
        phase(&again),
        Some(SyncPhase::Complete),
        "{}",
        serde_yaml::to_string(&again).unwrap()
    );
    let summary = again.status.clone().unwrap().summary.unwrap();
    assert_eq!(
        (summary.added, summary.updated, summary.deleted),
        (2, 0, 1),
        "exactly the changes since the snapshot"
    );
    assert_ne!(store.pointer().await.unwrap(), Some(before));
    op.stop().await;
}
