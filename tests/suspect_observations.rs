//! One observation never deletes or forgets, and every landed change is recorded: the pass
//! and the sync against the hostile server fixture, whose zone can empty on demand; an
//! invalid spec does not cost a zone its snapshot (against BIND).

mod support;

use std::time::Duration;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use support::dns_servers::{DnsServer, ServerKind, ServerOptions, ZoneContent};
use support::hostile::{Behaviour, HostileServer};
use zonekeeper::api::DnsZoneSpec;
use zonekeeper::api::DnsZoneStatus;
use zonekeeper::api::dns_zone::{DriftPolicy, ZoneType};
use zonekeeper::api::shared::ChangeStatus;
use zonekeeper::api::zone_sync::SyncMethod;
use zonekeeper::dns::diff::{Change, Guard, SoaWant};
use zonekeeper::dns::model::{Owned, RRset, Zone, parse_rdata};
use zonekeeper::dns::tsig::TsigKey;
use zonekeeper::reconcile::config::{Connection, Endpoint, Lookup, ZoneConfig};
use zonekeeper::reconcile::outcome::{FoldContext, Outcome, fold};
use zonekeeper::reconcile::pass::{self, Mode, Observing, PassError, Suspect, ZoneState};
use zonekeeper::reconcile::sync::{SyncError, SyncGuard, sync_guarded};
use zonekeeper::reconcile::zone::{ZoneHost, reconcile_zone};

const ORIGIN: &str = "example.com.";
const KEY_NAME: &str = "hostile-key.";
const SECRET: &str = "aG9zdGlsZS1zZWNyZXQtZm9yLXRoZS10ZXN0cy0xMjM=";

fn key() -> TsigKey {
    TsigKey::new(KEY_NAME, "hmac-sha256", SECRET).unwrap()
}

fn origin() -> Name {
    Name::from_ascii(ORIGIN).unwrap()
}

fn a(owner: &str, ip: &str) -> RRset {
    RRset::new(
        Name::from_ascii(format!("{owner}.{ORIGIN}")).unwrap(),
        RecordType::A,
        300,
        vec![parse_rdata(RecordType::A, &origin(), ip).unwrap()],
    )
}

fn records(sets: &[RRset]) -> Vec<Record> {
    sets.iter().flat_map(|s| s.records()).collect()
}

fn guard() -> Guard {
    Guard {
        max_deletes: 1000,
        max_delete_percent: 10,
    }
}

fn config(server: &HostileServer, desired: Vec<RRset>) -> ZoneConfig {
    let endpoint = Endpoint {
        server: server.addr.to_string(),
        key: Some(key()),
        timeout: Duration::from_secs(5),
        key_secret: None,
        bounds: Default::default(),
    };
    ZoneConfig {
        origin: origin(),
        zone_type: ZoneType::Primary,
        backend: endpoint.clone(),
        transfer: endpoint,
        desired: desired.into(),
        prune: false,
        drift_policy: DriftPolicy::Correct,
        guard: guard(),
        allow_mass_deletion: false,
        masters: Vec::new(),
        // The hostile server's SOA TTL: no SOA change in these passes.
        soa: SoaWant {
            rname: None,
            ttl: 300,
        },
    }
}

fn cx() -> FoldContext<'static> {
    FoldContext {
        zone_name: ORIGIN,
        server: "hostile",
        uid: Some("uid-1"),
        generation: Some(1),
        user_id: None,
        history_limit: 10,
        drift_policy: DriftPolicy::Correct,
        now: zonekeeper::reconcile::status::now(),
    }
}

fn condition(status: &DnsZoneStatus, type_: &str) -> (String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn an_emptied_transfer_deletes_and_forgets_nothing_and_says_so() {
    let (www, old) = (a("www", "192.0.2.80"), a("old", "192.0.2.81"));
    let server = HostileServer::start(
        ORIGIN,
        Some(key()),
        Behaviour::Normal(records(&[www.clone(), old.clone()])),
    )
    .await;
    let mut state = ZoneState::default();
    let first = pass::run(
        &config(&server, vec![www.clone(), old.clone()]),
        &mut state,
        Mode::Apply,
    )
    .await
    .unwrap();
    assert!(first.in_sync() && first.suspect.is_none());
    let owned = Owned::from([
        (www.key(), www.fingerprint()),
        (old.key(), old.fingerprint()),
    ]);
    assert_eq!(state.owned, owned);

    // The server serves its zone as SOA alone; meanwhile the spec stops listing `old`.
    server.set(Behaviour::EmptyZone);
    let updates_before = server.queries();
    let cfg = config(&server, vec![www.clone()]);
    let report = pass::run(&cfg, &mut state, Mode::Apply).await.unwrap();
    assert!(
        matches!(report.suspect, Some(Suspect::Emptied { expected: 2, .. })),
        "{:?}",
        report.suspect
    );
    assert!(report.applied.is_none(), "nothing is sent");
    assert_eq!(state.owned, owned, "nothing is forgotten");
    assert!(
        state.snapshot.as_ref().is_none_or(|z| z.record_count() > 1),
        "the emptied observation does not become the snapshot"
    );
    // SOA query and transfer only: no UPDATE went out.
    assert!(server.queries() - updates_before <= 3);
    let mut status = DnsZoneStatus::default();
    let outcome = Outcome::Pass {
        report: Box::new(report),
        rejected_connection: None,
    };
    let events = fold(&mut status, &outcome, &cx());
    assert_eq!(
        condition(&status, "Ready"),
        ("False".into(), "SuspectTransfer".into())
    );
    assert_eq!(
        condition(&status, "Synced"),
        ("False".into(), "SuspectTransfer".into())
    );
    assert!(
        events
            .iter()
            .any(|e| e.warning && e.reason == "SuspectTransfer"),
        "{events:?}"
    );
    assert_eq!(
        status.history.len(),
        1,
        "the history says why nothing happened"
    );
    assert_eq!(status.history[0].status, ChangeStatus::Failed);
    assert!(
        status.history[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("only the zone's SOA/NS")),
        "{:?}",
        status.history[0].message
    );

    // The records come back: `old`, still owned, is deleted as the spec says.
    server.set(Behaviour::Normal(records(&[www.clone(), old.clone()])));
    let report = pass::run(&cfg, &mut state, Mode::Plan).await.unwrap();
    assert!(report.suspect.is_none());
    assert_eq!(report.plan.changes, [Change::Delete(old.clone())]);

    // With deletionPolicy DeleteRecords the spec is emptied: an empty observation deletes
    // nothing and is not a success.
    server.set(Behaviour::EmptyZone);
    let cleanup = config(&server, Vec::new());
    let report = pass::run(&cleanup, &mut state, Mode::Apply).await.unwrap();
    assert!(report.suspect.is_some(), "not \"deleted 0\"");
    assert_eq!(state.owned, owned);

    // allowMassDeletion: the user says the emptied zone is real.
    let mut allowed = config(&server, vec![www.clone()]);
    allowed.allow_mass_deletion = true;
    let report = pass::run(&allowed, &mut state, Mode::Plan).await.unwrap();
    assert!(report.suspect.is_none());
    assert_eq!(report.plan.changes, [Change::Add(www.clone())]);
}

#[tokio::test]
async fn a_sync_that_sees_fifty_records_go_to_none_stores_nothing() {
    let fifty: Vec<RRset> = (0..50)
        .map(|i| a(&format!("h{i}"), &format!("10.0.0.{i}")))
        .collect();
    let server =
        HostileServer::start(ORIGIN, Some(key()), Behaviour::Normal(records(&fifty))).await;
    let cfg = config(&server, Vec::new());
    let sync_guard = SyncGuard {
        guard: guard(),
        allow_mass_deletion: false,
    };
    let first = sync_guarded(
        &cfg.transfer,
        &origin(),
        None,
        SyncMethod::Auto,
        &sync_guard,
    )
    .await
    .map_err(|(e, _)| e)
    .unwrap();
    assert_eq!(first.summary.added, 50);
    let snapshot = first.snapshot;

    server.set(Behaviour::EmptyZone);
    let (e, handed_back) = sync_guarded(
        &cfg.transfer,
        &origin(),
        Some(snapshot.clone()),
        SyncMethod::Auto,
        &sync_guard,
    )
    .await
    .expect_err("50 records to 0 is suspect");
    assert_eq!(e.reason().as_str(), "SuspectTransfer", "{e}");
    assert!(matches!(e, SyncError::Suspect(Suspect::Emptied { .. })));
    assert!(
        handed_back.is_none(),
        "the caller reloads the stored snapshot"
    );

    // 50 → 5 is not empty, but over the guard's 10%.
    server.set(Behaviour::Normal(records(&fifty[..5])));
    let (e, _) = sync_guarded(
        &cfg.transfer,
        &origin(),
        Some(snapshot.clone()),
        SyncMethod::Auto,
        &sync_guard,
    )
    .await
    .expect_err("45 of 50 deleted is over the guard");
    assert!(
        matches!(e, SyncError::Suspect(Suspect::Guard(ref v)) if v.deletes == 45),
        "{e}"
    );

    let allowed = SyncGuard {
        allow_mass_deletion: true,
        ..sync_guard
    };
    let report = sync_guarded(
        &cfg.transfer,
        &origin(),
        Some(snapshot),
        SyncMethod::Auto,
        &allowed,
    )
    .await
    .map_err(|(e, _)| e)
    .unwrap();
    assert_eq!(
        report.summary.deleted, 45,
        "allowMassDeletion lets it through"
    );
}

/// The zone at `serial` holding only its SOA and NS.
fn apex_zone(serial: u32) -> Zone {
    let mut z = Zone::new(origin());
    z.insert(Record::from_rdata(
        origin(),
        300,
        RData::SOA(SOA::new(
            Name::from_ascii("ns.hostile.invalid.").unwrap(),
            Name::from_ascii("hostmaster.hostile.invalid.").unwrap(),
            serial,
            3600,
            600,
            86_400,
            60,
        )),
    ));
    z.insert(Record::from_rdata(
        origin(),
        300,
        RData::NS(NS(Name::from_ascii("ns.hostile.invalid.").unwrap())),
    ));
    z
}

#[tokio::test]
async fn what_landed_is_recorded_when_reading_the_zone_back_fails() {
    // The UPDATE lands; the transfer that reads the zone back breaks off mid-way.
    let server = HostileServer::start(ORIGIN, Some(key()), Behaviour::CloseMidTransfer(1)).await;
    let www = a("www", "192.0.2.80");
    let cfg = config(&server, vec![www.clone()]);
    let mut state = ZoneState {
        owned: Owned::new(),
        snapshot: Some(std::sync::Arc::new(apex_zone(server.serial()))),
        ..ZoneState::default()
    };
    let report = pass::run(&cfg, &mut state, Mode::Apply)
        .await
        .expect("what landed is reported, not dropped");
    let applied = report.applied.as_ref().expect("the apply report travels");
    assert!(applied.is_complete());
    assert!(report.recheck_error.is_some());
    assert!(!report.in_sync());
    assert_eq!(
        state.owned,
        Owned::from([(www.key(), www.fingerprint())]),
        "what landed is owned"
    );

    let mut status = DnsZoneStatus::default();
    let outcome = Outcome::Pass {
        report: Box::new(report),
        rejected_connection: None,
    };
    fold(&mut status, &outcome, &cx());
    let entry = &status.history[0];
    assert_eq!(entry.status, ChangeStatus::Failed);
    assert_eq!(entry.added, 1);
    assert_eq!(entry.sample, ["+ www.example.com. 300 IN A 192.0.2.80"]);
    let message = entry.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("applied 1 RRset change(s)") && message.contains("reading the zone back"),
        "{message}"
    );
    assert_eq!(condition(&status, "Synced").0, "False");
}

/// A ZoneSync that sees the zone emptied fails with `SuspectTransfer` and stores nothing;
/// the same sync asked for with `allowMassDeletion: true` goes through, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_sync_passes_the_guard_only_with_allow_mass_deletion() {
    use support::cluster::Cluster;
    use zonekeeper::api::zone_sync::{SyncPhase, ZoneSync};

    const WAIT: Duration = Duration::from_secs(60);
    let fifty: Vec<RRset> = (0..50)
        .map(|i| a(&format!("h{i}"), &format!("10.0.0.{i}")))
        .collect();
    let server =
        HostileServer::start(ORIGIN, Some(key()), Behaviour::Normal(records(&fifty))).await;
    let cluster = Cluster::start().await;
    let _op = cluster.operator("zk-0", None).await;
    cluster
        .secret(
            "hostile-tsig",
            &support::dns_servers::TsigKey {
                name: KEY_NAME.into(),
                algorithm: "hmac-sha256".into(),
                secret_b64: SECRET.into(),
            },
        )
        .await;
    cluster
        .apply_zone(serde_json::json!({
            "apiVersion": "dns.zonekeeper.io/v1alpha1",
            "kind": "DnsZone",
            "metadata": {"name": "hostile", "namespace": support::cluster::NS},
            "spec": {
                "zoneName": ORIGIN,
                "type": "Primary",
                "backend": {"server": server.addr.to_string(), "tsigKeySecretRef": {"name": "hostile-tsig"}},
                "sync": {"interval": "0", "minInterval": "0"},
                // The hostile server's SOA TTL: it takes no SOA UPDATE.
                "ttl": 300,
            }
        }))
        .await;
    cluster
        .wait_zone("hostile", WAIT, support::cluster::is_ready)
        .await;
    let finished = |s: &ZoneSync| {
        matches!(
            s.status.as_ref().and_then(|st| st.phase),
            Some(SyncPhase::Complete | SyncPhase::Failed | SyncPhase::Rejected)
        )
    };
    let outcome = |s: &ZoneSync| {
        let st = s.status.clone().unwrap_or_default();
        (
            st.phase,
            st.reason.unwrap_or_default(),
            st.summary.map(|m| (m.added, m.deleted)),
        )
    };
    let name = cluster.create_sync("hostile", serde_json::json!({})).await;
    let first = cluster.wait_sync(&name, WAIT, finished).await;
    assert_eq!(
        outcome(&first).0,
        Some(SyncPhase::Complete),
        "{:?}",
        first.status
    );

    server.set(Behaviour::EmptyZone);
    let name = cluster.create_sync("hostile", serde_json::json!({})).await;
    let refused = cluster.wait_sync(&name, WAIT, finished).await;
    assert_eq!(
        (outcome(&refused).0, outcome(&refused).1.as_str()),
        (Some(SyncPhase::Failed), "SuspectTransfer"),
        "{:?}",
        refused.status
    );

    let name = cluster
        .create_sync("hostile", serde_json::json!({"allowMassDeletion": true}))
        .await;
    let allowed = cluster.wait_sync(&name, WAIT, finished).await;
    assert_eq!(
        (outcome(&allowed).0, outcome(&allowed).2),
        (Some(SyncPhase::Complete), Some((0, 50))),
        "allowMassDeletion lets the emptied zone through: {:?}",
        allowed.status
    );
}

/// A host keeping its state in memory, as the operator does; its one Secret, `tsig`, holds the
/// server's key.
struct MemoryHost {
    key: support::dns_servers::TsigKey,
    state: ZoneState,
}

struct KeyLookup(support::dns_servers::TsigKey);

impl Lookup for KeyLookup {
    fn secret(&self, name: &str, key: &str) -> Option<Option<Vec<u8>>> {
        let k = &self.0;
        (name == "tsig").then(|| match key {
            "name" => Some(k.name.clone().into_bytes()),
            "algorithm" => Some(k.algorithm.clone().into_bytes()),
            "secret" => Some(k.secret_b64.clone().into_bytes()),
            _ => None,
        })
    }
    fn config_map(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

impl ZoneHost for MemoryHost {
    type Error = std::convert::Infallible;
    type Lookup = KeyLookup;

    async fn lookup(&mut self) -> Result<KeyLookup, Self::Error> {
        Ok(KeyLookup(self.key.clone()))
    }
    async fn test_connection(&mut self, _: &mut Connection) -> Result<Option<String>, PassError> {
        Ok(None)
    }
    fn observe(&mut self, connection: &Connection) -> Observing<Self::Error> {
        Observing::start(connection.clone(), self.state.snapshot.take())
    }
    async fn state(&mut self, _: &Name) -> Result<&mut ZoneState, Self::Error> {
        Ok(&mut self.state)
    }
}

/// The observation runs beside the resolve of the records; when the records turn out
/// invalid, the snapshot it took is still the zone's (a big zone is not transferred whole
/// again once its typo is fixed), and a server that never answers is not waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_keeps_the_snapshot_its_observation_took() {
    let server = tokio::task::spawn_blocking(|| {
        let zone = ZoneContent::new(ORIGIN, vec![]);
        DnsServer::start(ServerKind::Bind, &zone, ServerOptions::default())
    })
    .await
    .unwrap();
    let spec = |server: String, data: &str| -> DnsZoneSpec {
        serde_json::from_value(serde_json::json!({
            "zoneName": ORIGIN,
            "type": "Primary",
            "backend": {"server": server, "tsigKeySecretRef": {"name": "tsig"}, "timeout": "120s"},
            "records": [{"name": "www", "type": "A", "data": [data]}],
        }))
        .unwrap()
    };
    let mut host = MemoryHost {
        key: server.key.clone(),
        state: ZoneState::default(),
    };
    let valid = spec(server.addr.to_string(), "192.0.2.10");
    let outcome = reconcile_zone(&mut host, &valid, None, Mode::Plan)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Pass { .. }), "{outcome:?}");
    let serial = host.state.snapshot.as_ref().and_then(|z| z.soa_serial());
    assert!(serial.is_some(), "the pass keeps what it transferred");

    let invalid = spec(server.addr.to_string(), "not-an-address");
    let outcome = reconcile_zone(&mut host, &invalid, None, Mode::Plan)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Invalid(_)), "{outcome:?}");
    let kept = host.state.snapshot.as_ref().and_then(|z| z.soa_serial());
    assert_eq!(kept, serial, "the snapshot outlives the invalid spec");

    // A server that never answers (its SOA query would wait out the 120 s timeout): the
    // invalid records are reported without waiting for it, and the snapshot is still kept.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let invalid = spec(silent.local_addr().unwrap().to_string(), "not-an-address");
    let started = std::time::Instant::now();
    let outcome = reconcile_zone(&mut host, &invalid, None, Mode::Plan)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Invalid(_)), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited {:?} for a server that does not answer",
        started.elapsed()
    );
    let kept = host.state.snapshot.as_ref().and_then(|z| z.soa_serial());
    assert_eq!(kept, serial, "the snapshot outlives the silent server too");
}
