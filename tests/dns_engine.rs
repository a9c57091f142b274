//! The DNS engine against real BIND, Knot and NSD on loopback ports, each
//! test on its own server instance.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use support::dns_servers::{
    DnsServer as Server, ServerKind as Kind, ServerOptions, TsigKey as FixtureKey, ZoneContent,
};
use zonekeeper::dns::error::DnsError;
use zonekeeper::dns::notify::send_notify;
use zonekeeper::dns::query::{QueryOptions, query_soa};
use zonekeeper::dns::transfer::{
    IxfrOutcome, TransferMethod, TransferOptions, TransferStats, axfr, ixfr,
};
use zonekeeper::dns::tsig::TsigKey;
use zonekeeper::dns::update::{RRsetChange, UpdateOptions, apply_changes};

const ZONE: &str = "engine.test.";

/// Our key type from the fixture's.
fn engine_key(k: &FixtureKey) -> TsigKey {
    TsigKey::new(&k.name, &k.algorithm, &k.secret_b64).unwrap()
}

/// The zone as the fixture serves it: our own SOA (so the serial is ours)
/// and NS, then `body`. Returns the zone-file text too, for parsing the
/// expected records.
fn content(serial: u32, body: &str) -> (ZoneContent, String) {
    let mut lines = vec![
        format!("@ 3600 IN SOA ns1.invalid. hostmaster.{ZONE} {serial} 3600 600 86400 300"),
        "@ 3600 IN NS ns1.invalid.".to_string(),
    ];
    lines.extend(
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string),
    );
    let text = format!(
        "$ORIGIN {ZONE}
$TTL 3600
{}
",
        lines.join(
            "
"
        )
    );
    (ZoneContent::new(ZONE, lines), text)
}

/// Starts `kind` serving `body`: the server, its key (ours), the zone text.
fn start(kind: Kind, serial: u32, body: &str, opts: ServerOptions) -> (Server, TsigKey, String) {
    let (zc, text) = content(serial, body);
    let server = Server::start(kind, &zc, opts);
    let k = engine_key(&server.key);
    (server, k, text)
}

fn zone() -> Name {
    Name::from_ascii(ZONE).unwrap()
}

fn xfr_opts(k: &TsigKey) -> TransferOptions {
    TransferOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    }
}

/// AXFR into a record list, handed out only when the transfer is complete.
async fn fetch(server: &Server, k: &TsigKey) -> Result<(Vec<Record>, TransferStats), DnsError> {
    let mut records = Vec::new();
    let stats = axfr(server.addr, &zone(), &xfr_opts(k), &mut |r| {
        records.push(r);
        Ok(())
    })
    .await?;
    Ok((records, stats))
}

fn canon(records: &[Record]) -> BTreeSet<String> {
    records.iter().map(|r| r.to_string()).collect()
}

fn parse_zone(text: &str) -> Vec<Record> {
    let (_, sets) = Parser::new(text, None, Some(zone())).parse().unwrap();
    sets.values()
        .flat_map(|s| s.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .map(|mut r| {
            // hickory's zone parser gives the SOA the expire value as TTL
            // (86400) instead of the explicit 3600 content() writes.
            if r.record_type() == RecordType::SOA {
                r.set_ttl(3600);
            }
            r
        })
        .collect()
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.{ZONE}")).unwrap()
}

fn a(owner: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        name(owner),
        300,
        RData::A(A::new(ip[0], ip[1], ip[2], ip[3])),
    )
}

fn txt(owner: &str, s: &str) -> Record {
    Record::from_rdata(name(owner), 300, RData::TXT(TXT::new(vec![s.to_string()])))
}

/// Every record type the model supports, in one zone.
const ALL_TYPES: &str = r#"www 300 IN A 192.0.2.1
www 300 IN A 192.0.2.2
www 300 IN AAAA 2001:db8::1
alias 300 IN CNAME www.engine.test.
@ 300 IN MX 10 mail.engine.test.
@ 300 IN MX 20 mail2.engine.test.
mail 300 IN A 192.0.2.25
txt 300 IN TXT "v=spf1 -all"
txt 300 IN TXT "two" "strings with spaces" "and a \"quote\""
_sip._tcp 300 IN SRV 10 60 5060 sip.engine.test.
@ 300 IN CAA 0 issue "letsencrypt.org"
ptr 300 IN PTR host.example.org.
sub 300 IN NS ns.sub.engine.test.
ns.sub 300 IN A 192.0.2.53
sub 300 IN DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE4D9D5C4D5F6A1B2C3D4E5F60
ssh 300 IN SSHFP 4 2 123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789
_443._tcp.www 300 IN TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
naptr 300 IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.engine.test.
hinfo 300 IN HINFO "PC" "Linux"
"#;

async fn round_trip(kind: Kind) {
    let (server, k, text) = start(kind, 1, ALL_TYPES, ServerOptions::default());
    let (records, stats) = fetch(&server, &k).await.unwrap();
    assert_eq!(stats.serial, 1);
    assert_eq!(stats.method, TransferMethod::Axfr);
    let expected = canon(&parse_zone(&text));
    let got = canon(&records);
    assert_eq!(records.len(), got.len(), "{kind:?}: duplicate records");
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{kind:?}: missing {missing:#?}\nextra {extra:#?}"
    );
}

#[tokio::test]
async fn axfr_of_every_type_round_trips_from_bind() {
    round_trip(Kind::Bind).await;
}

#[tokio::test]
async fn axfr_of_every_type_round_trips_from_knot() {
    round_trip(Kind::Knot).await;
}

#[tokio::test]
async fn axfr_of_every_type_round_trips_from_nsd() {
    round_trip(Kind::Nsd).await;
}

fn big_body(n: usize) -> String {
    let mut s = String::with_capacity(n * 32);
    for i in 0..n {
        s.push_str(&format!(
            "h{i} 300 IN A 10.{}.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    s
}

async fn big_transfer(kind: Kind, algorithm: &str) {
    let n = 200_000;
    let opts = ServerOptions {
        key: Some(FixtureKey::generate("engine-big", algorithm)),
        ..Default::default()
    };
    let (server, k, _) = start(kind, 1, &big_body(n), opts);
    let (records, stats) = fetch(&server, &k).await.unwrap();
    // SOA, NS and the generated records.
    assert_eq!(records.len(), n + 2);
    assert_eq!(stats.records as usize, n + 2);
    assert!(stats.messages > 100, "{stats:?}");
    assert_eq!(canon(&records).len(), n + 2);
}

#[tokio::test]
async fn a_200k_zone_transfers_complete_from_knot_with_tsig() {
    big_transfer(Kind::Knot, "hmac-sha256").await;
}

#[tokio::test]
async fn a_200k_zone_transfers_complete_from_bind_with_tsig_sha512() {
    big_transfer(Kind::Bind, "hmac-sha512").await;
}

async fn ixfr_after_updates(kind: Kind) {
    // Enough other records that an IXFR is smaller than the zone: BIND
    // answers AXFR-style otherwise (max-ixfr-ratio).
    let body = format!(
        "h1 300 IN A 10.0.0.1\nh2 300 IN A 10.0.0.2\nt 300 IN TXT \"old\"\n{}",
        big_body(200)
    );
    let (server, k, _) = start(kind, 1, &body, ServerOptions::default());
    server.nsupdate(
        "update delete h1.engine.test. A\nupdate add n1.engine.test. 300 TXT \"hello world\"",
    );
    server.nsupdate("update delete t.engine.test. TXT \"old\"\nupdate add t.engine.test. 300 TXT \"new\"\nupdate add n2.engine.test. 300 A 192.0.2.9");
    let new_serial = server.soa_serial().unwrap();
    let mut full = 0;
    let (outcome, stats) = ixfr(server.addr, &zone(), 1, &xfr_opts(&k), &mut |_| {
        full += 1;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(full, 0);
    assert_eq!(stats.method, TransferMethod::Ixfr);
    assert_eq!(stats.serial, new_serial);
    let IxfrOutcome::Incremental(steps) = outcome else {
        panic!("{kind:?}: expected incremental, got {outcome:?}");
    };
    assert_eq!(steps.first().unwrap().from_serial, 1);
    assert_eq!(steps.last().unwrap().to_serial, new_serial);
    for w in steps.windows(2) {
        assert_eq!(w[0].to_serial, w[1].from_serial);
    }
    let deleted: Vec<Record> = steps.iter().flat_map(|s| s.deleted.clone()).collect();
    let added: Vec<Record> = steps.iter().flat_map(|s| s.added.clone()).collect();
    assert_eq!(
        canon(&deleted),
        canon(&[a("h1", [10, 0, 0, 1]), txt("t", "old")]),
        "{kind:?}"
    );
    assert_eq!(
        canon(&added),
        canon(&[
            txt("n1", "hello world"),
            txt("t", "new"),
            a("n2", [192, 0, 2, 9])
        ]),
        "{kind:?}"
    );
    // Asking from the current serial: nothing to do, one message.
    let (outcome, stats) = ixfr(server.addr, &zone(), new_serial, &xfr_opts(&k), &mut |_| {
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(outcome, IxfrOutcome::UpToDate);
    assert_eq!(stats.messages, 1);
}

#[tokio::test]
async fn ixfr_after_updates_returns_exactly_those_changes_from_bind() {
    ixfr_after_updates(Kind::Bind).await;
}

#[tokio::test]
async fn ixfr_after_updates_returns_exactly_those_changes_from_knot() {
    ixfr_after_updates(Kind::Knot).await;
}

async fn ixfr_falls_back(kind: Kind, opts: ServerOptions) {
    let (server, k, text) = start(kind, 5, ALL_TYPES, opts);
    let mut records = Vec::new();
    let (outcome, stats) = ixfr(server.addr, &zone(), 2, &xfr_opts(&k), &mut |r| {
        records.push(r);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(outcome, IxfrOutcome::Full, "{kind:?}");
    assert!(
        matches!(
            stats.method,
            TransferMethod::IxfrFullAnswer | TransferMethod::AxfrFallback
        ),
        "{stats:?}"
    );
    assert_eq!(canon(&records), canon(&parse_zone(&text)), "{kind:?}");
}

#[tokio::test]
async fn ixfr_without_history_falls_back_to_the_full_zone_nsd() {
    ixfr_falls_back(Kind::Nsd, ServerOptions::default()).await;
}

#[tokio::test]
async fn ixfr_without_journal_falls_back_to_the_full_zone_bind() {
    let o = ServerOptions {
        ixfr: false,
        ..Default::default()
    };
    ixfr_falls_back(Kind::Bind, o).await;
}

async fn transfer_errors(kind: Kind) {
    let (server, k, _) = start(kind, 1, ALL_TYPES, ServerOptions::default());
    let wrong_secret = TsigKey::new(
        &k.name.to_ascii(),
        "hmac-sha256",
        "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==",
    )
    .unwrap();
    let e = fetch(&server, &wrong_secret).await.unwrap_err();
    assert_eq!(e.reason(), "AuthFailed", "{kind:?} wrong secret: {e}");
    assert!(
        e.to_string().contains(ZONE) && e.to_string().contains(&server.addr.to_string()),
        "{e}"
    );
    let unknown = TsigKey::new(
        "nobody-knows-me",
        "hmac-sha256",
        "ZW5naW5lLXNlY3JldC1mb3ItdGVzdHMtb25seS0xMjM=",
    )
    .unwrap();
    let e = fetch(&server, &unknown).await.unwrap_err();
    assert_eq!(e.reason(), "AuthFailed", "{kind:?} unknown key: {e}");
    // SOA queries with the wrong key fail the same way.
    let e = query_soa(
        server.addr,
        &zone(),
        &QueryOptions {
            tsig: Some(wrong_secret),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason(), "AuthFailed", "{kind:?} SOA wrong secret: {e}");
    // And with the right one, the serial.
    let serial = query_soa(
        server.addr,
        &zone(),
        &QueryOptions {
            tsig: Some(k.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(serial, 1);
    // Down: typed, transient.
    let addr = server.addr;
    drop(server);
    let mut seen = 0;
    let e = axfr(addr, &zone(), &xfr_opts(&k), &mut |_| {
        seen += 1;
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(e.reason(), "ConnectionFailed", "{e}");
    assert_eq!(seen, 0);
    let e = query_soa(
        addr,
        &zone(),
        &QueryOptions {
            tsig: Some(k),
            timeout: Duration::from_millis(200),
            attempts: 2,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e.reason().as_str(), "ConnectionFailed" | "Timeout"),
        "{e}"
    );
}

#[tokio::test]
async fn transfer_errors_are_typed_bind() {
    transfer_errors(Kind::Bind).await;
}

#[tokio::test]
async fn transfer_errors_are_typed_knot() {
    transfer_errors(Kind::Knot).await;
}

#[tokio::test]
async fn transfer_errors_are_typed_nsd() {
    transfer_errors(Kind::Nsd).await;
}

async fn transfer_not_allowed(kind: Kind) {
    let o = ServerOptions {
        allow_transfer: false,
        ..Default::default()
    };
    let (server, k, _) = start(kind, 1, ALL_TYPES, o);
    let e = fetch(&server, &k).await.unwrap_err();
    if kind == Kind::Knot {
        // Knot answers a signed request its ACL denies with NOTAUTH/BADKEY,
        // the same answer as for a key it does not know.
        assert_eq!(e.reason(), "AuthFailed", "{kind:?}: {e}");
        assert!(e.to_string().contains("BADKEY"), "{e}");
    } else {
        assert_eq!(e.reason(), "TransferRefused", "{kind:?}: {e}");
    }
    // Unsigned, every server refuses plainly.
    let mut seen = 0;
    let e = axfr(
        server.addr,
        &zone(),
        &TransferOptions::default(),
        &mut |_| {
            seen += 1;
            Ok(())
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason(), "TransferRefused", "{kind:?}: {e}");
    assert_eq!(seen, 0);
}

#[tokio::test]
async fn transfer_not_allowed_is_refused_bind() {
    transfer_not_allowed(Kind::Bind).await;
}

#[tokio::test]
async fn transfer_not_allowed_is_refused_knot() {
    transfer_not_allowed(Kind::Knot).await;
}

#[tokio::test]
async fn transfer_not_allowed_is_refused_nsd() {
    transfer_not_allowed(Kind::Nsd).await;
}

fn up_opts(k: &TsigKey) -> UpdateOptions {
    UpdateOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    }
}

fn add(r: Vec<Record>) -> RRsetChange {
    RRsetChange {
        name: r[0].name().clone(),
        rtype: r[0].record_type(),
        old: vec![],
        new: r,
    }
}

async fn ten_thousand_changes(kind: Kind) {
    let existing = 3000usize;
    let mut body = String::new();
    for i in 0..existing {
        body.push_str(&format!("r{i} 300 IN A 10.1.{}.{}\n", i >> 8, i & 255));
    }
    let (server, k, text) = start(kind, 1, &body, ServerOptions::default());
    let mut expected = canon(&parse_zone(&text));
    let mut changes = Vec::new();
    // 4000 A adds, 3000 TXT adds (bigger records), 2000 replaces, 1000 deletes.
    for i in 0..4000u32 {
        changes.push(add(vec![a(
            &format!("a{i}"),
            [10, 2, (i >> 8) as u8, i as u8],
        )]));
    }
    for i in 0..3000u32 {
        changes.push(add(vec![txt(
            &format!("t{i}"),
            &format!("text record number {i} {}", "x".repeat(60)),
        )]));
    }
    for i in 0..2000usize {
        let old = vec![a(&format!("r{i}"), [10, 1, (i >> 8) as u8, i as u8])];
        let new = vec![
            a(&format!("r{i}"), [10, 3, (i >> 8) as u8, i as u8]),
            a(&format!("r{i}"), [10, 4, 0, 1]),
        ];
        changes.push(RRsetChange {
            name: name(&format!("r{i}")),
            rtype: RecordType::A,
            old,
            new,
        });
    }
    for i in 2000..3000usize {
        let old = vec![a(&format!("r{i}"), [10, 1, (i >> 8) as u8, i as u8])];
        changes.push(RRsetChange {
            name: name(&format!("r{i}")),
            rtype: RecordType::A,
            old,
            new: vec![],
        });
    }
    for c in &changes {
        for r in &c.old {
            expected.remove(&r.to_string());
        }
        for r in &c.new {
            expected.insert(r.to_string());
        }
    }
    let report = apply_changes(server.addr, &zone(), &changes, &up_opts(&k)).await;
    assert!(report.is_complete(), "{kind:?}: {report:?}");
    assert_eq!(report.applied, 10_000);
    assert!(report.batches_total > 5, "byte-sized batches: {report:?}");
    let (records, _) = fetch(&server, &k).await.unwrap();
    let mut got = canon(&records);
    // The SOA serial moved on: compare everything else exactly.
    got.retain(|r| !r.contains(" SOA "));
    expected.retain(|r| !r.contains(" SOA "));
    assert_eq!(got.len(), expected.len(), "{kind:?}");
    assert!(got == expected, "{kind:?}: zone differs after UPDATE");
}

#[tokio::test]
async fn update_of_10k_changes_lands_exactly_bind() {
    ten_thousand_changes(Kind::Bind).await;
}

#[tokio::test]
async fn update_of_10k_changes_lands_exactly_knot() {
    ten_thousand_changes(Kind::Knot).await;
}

/// The desired state of the concurrency test: `c1` and `c2` hold these.
fn desired() -> Vec<Record> {
    vec![a("c1", [192, 0, 2, 100]), a("c2", [192, 0, 2, 200])]
}

/// The real planner over the zone model: c1 and c2 as desired, both owned.
fn plan_against(observed: &zonekeeper::dns::model::Zone) -> Vec<zonekeeper::dns::diff::Change> {
    use zonekeeper::dns::diff::{PlanInput, plan};
    use zonekeeper::dns::model::RRset;
    let want: Vec<RRset> = desired()
        .into_iter()
        .map(|r| {
            RRset::new(
                r.name().clone(),
                r.record_type(),
                r.ttl(),
                vec![r.into_data()],
            )
        })
        .collect();
    let owned = want.iter().map(|s| (s.key(), s.fingerprint())).collect();
    plan(&PlanInput {
        desired: &want,
        observed,
        owned: &owned,
        prune: false,
    })
    .changes
}

#[tokio::test]
async fn a_concurrent_writer_is_detected_by_prerequisites_and_replanned_once() {
    use zonekeeper::dns::transfer::axfr_zone;
    use zonekeeper::dns::update::apply;
    let body = "c1 300 IN A 192.0.2.1\n";
    let (server, k, _) = start(Kind::Bind, 1, body, ServerOptions::default());
    let (observed, _) = axfr_zone(server.addr, &zone(), &xfr_opts(&k))
        .await
        .unwrap();
    let changes = plan_against(&observed);
    assert_eq!(changes.len(), 2);
    // Someone else writes between observe and apply.
    server.nsupdate("update delete c1.engine.test. A\nupdate add c1.engine.test. 300 A 192.0.2.77");
    let report = apply(server.addr, &zone(), &changes, &up_opts(&k)).await;
    assert!(report.conflict(), "{report:?}");
    assert_eq!(report.applied, 0);
    let (e_batch, e) = report.failed.as_ref().unwrap();
    assert_eq!(*e_batch, 0);
    assert_eq!(e.reason(), "PrerequisiteFailed");
    assert!(e.to_string().contains("c1.engine.test."), "{e}");
    // Nothing of the batch landed (atomic): the other writer's value stays.
    let (now, _) = fetch(&server, &k).await.unwrap();
    assert!(canon(&now).contains(&a("c1", [192, 0, 2, 77]).to_string()));
    assert!(!canon(&now).iter().any(|r| r.starts_with("c2.")));

    // observe → plan → apply with one replan: the writer strikes once more
    // after the first observation, the second round lands.
    let reports = apply_replanning_once(&server, &k, |round, phase| {
        if round == 1 && phase == Phase::AfterObserve {
            server.nsupdate(
                "update delete c1.engine.test. A\nupdate add c1.engine.test. 300 A 192.0.2.78",
            );
        }
    })
    .await;
    assert_eq!(reports.len(), 2);
    assert!(reports[0].conflict(), "{:?}", reports[0]);
    assert!(reports[1].is_complete(), "{:?}", reports[1]);
    let (now, _) = fetch(&server, &k).await.unwrap();
    for want in desired() {
        assert!(canon(&now).contains(&want.to_string()));
    }
    // A writer that keeps racing is reported after the one replan: each
    // observation sees its value, and it writes again before we apply.
    let reports = apply_replanning_once(&server, &k, |round, phase| {
        let last = match phase {
            Phase::BeforeObserve => round,
            Phase::AfterObserve => round + 10,
        };
        server.nsupdate(&format!(
            "update delete c1.engine.test. A\nupdate add c1.engine.test. 300 A 192.0.2.{last}"
        ));
    })
    .await;
    assert_eq!(reports.len(), 2);
    assert!(
        reports[0].conflict() && reports[1].conflict(),
        "{reports:?}"
    );
    assert_eq!(reports.iter().map(|r| r.applied).sum::<usize>(), 0);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    BeforeObserve,
    AfterObserve,
}

/// The sequence `reconcile::pass::run` follows on a concurrent writer, with the
/// writer given its turns: observe (AXFR), plan, apply; on a prerequisite
/// failure observe and plan once more and apply that. The reports of the
/// rounds made.
async fn apply_replanning_once(
    server: &Server,
    k: &TsigKey,
    mut writer: impl FnMut(u32, Phase),
) -> Vec<zonekeeper::dns::update::ApplyReport> {
    use zonekeeper::dns::transfer::axfr_zone;
    use zonekeeper::dns::update::apply;
    let mut reports = Vec::new();
    for round in 1..=2 {
        writer(round, Phase::BeforeObserve);
        let (observed, _) = axfr_zone(server.addr, &zone(), &xfr_opts(k)).await.unwrap();
        writer(round, Phase::AfterObserve);
        let report = apply(server.addr, &zone(), &plan_against(&observed), &up_opts(k)).await;
        let conflict = report.conflict();
        reports.push(report);
        if !conflict {
            break;
        }
    }
    reports
}

#[tokio::test]
async fn an_rrset_over_bind_max_records_per_type_is_named_and_earlier_batches_reported() {
    let o = ServerOptions {
        max_records_per_type: Some(50),
        ..Default::default()
    };
    let (server, k, _) = start(Kind::Bind, 1, "", o);
    let mut changes: Vec<RRsetChange> = (0..3000u32)
        .map(|i| add(vec![a(&format!("p{i}"), [10, 5, (i >> 8) as u8, i as u8])]))
        .collect();
    let big: Vec<Record> = (0..80u8).map(|i| a("big", [10, 6, 0, i])).collect();
    changes.insert(2500, add(big));
    let mut opts = up_opts(&k);
    // One batch at a time so "earlier" and "later" are unambiguous.
    opts.in_flight = 1;
    let report = apply_changes(server.addr, &zone(), &changes, &opts).await;
    let (idx, e) = report.failed.as_ref().expect("must fail");
    assert_eq!(e.reason(), "ServFail", "{e}");
    assert!(e.to_string().contains("big.engine.test."), "{e}");
    assert!(*idx > 0);
    assert_eq!(report.batches_ok, *idx, "{report:?}");
    assert_eq!(report.applied, 2500);
    assert_eq!(report.applied_ranges, vec![0..2500]);
    // The truth at the server matches the report.
    let (now, _) = fetch(&server, &k).await.unwrap();
    let names: BTreeSet<String> = now.iter().map(|r| r.name().to_ascii()).collect();
    assert!(names.contains("p2499.engine.test."));
    assert!(!names.contains("p2500.engine.test."));
    assert!(!names.contains("big.engine.test."));
}

async fn notify_secondary(kind: Kind) {
    let (primary, k, _) = start(
        Kind::Bind,
        1,
        "x 300 IN A 192.0.2.1",
        ServerOptions::default(),
    );
    let secondary = Server::start_secondary_of(kind, &primary, ServerOptions::default());
    assert_eq!(secondary.soa_serial(), Some(1));
    primary.nsupdate("update add y.engine.test. 300 A 192.0.2.2");
    let new_serial = primary.soa_serial().unwrap();
    assert_ne!(new_serial, 1);
    let qo = QueryOptions {
        tsig: Some(k.clone()),
        ..Default::default()
    };
    send_notify(secondary.addr, &zone(), Some(new_serial), &qo)
        .await
        .unwrap();
    // SOA refresh is an hour: only the NOTIFY can make this happen in time.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = query_soa(secondary.addr, &zone(), &qo).await.unwrap();
        if s == new_serial {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{kind:?} secondary still at {s}: {}",
            secondary.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn notify_makes_a_bind_secondary_pick_up_the_new_serial() {
    notify_secondary(Kind::Bind).await;
}

#[tokio::test]
async fn notify_makes_a_knot_secondary_pick_up_the_new_serial() {
    notify_secondary(Kind::Knot).await;
}

/// The zone model end to end: a zone observed by AXFR, brought up to date
/// by IXFR after UPDATEs, equals a fresh AXFR; a plan computed by
/// `diff::plan` and applied by `update::apply` lands exactly.
async fn model_round_trip(kind: Kind) {
    use zonekeeper::dns::diff::{PlanInput, plan, zone_diff};
    use zonekeeper::dns::model::{RRset, RRsetKey};
    use zonekeeper::dns::transfer::{axfr_zone, ixfr_refresh};
    use zonekeeper::dns::update::apply;

    let body = format!("{ALL_TYPES}{}", big_body(300));
    let (server, k, _) = start(kind, 1, &body, ServerOptions::default());
    let (mut observed, _) = axfr_zone(server.addr, &zone(), &xfr_opts(&k))
        .await
        .unwrap();
    assert_eq!(observed.soa_serial(), Some(1));

    // Desired: www gets another address set, a new TXT, h7 goes away (owned).
    let www = RRset::new(
        name("www"),
        RecordType::A,
        120,
        vec![RData::A(A::new(198, 51, 100, 1))],
    );
    let fresh = RRset::new(
        name("fresh"),
        RecordType::TXT,
        300,
        vec![RData::TXT(TXT::new(vec!["made by plan".into()]))],
    );
    let mut desired: Vec<RRset> = observed
        .rrsets()
        .filter(|s| s.rtype != RecordType::SOA && s.name != name("www") && s.name != name("h7"))
        .collect();
    desired.push(www.clone());
    desired.push(fresh.clone());
    // h7 was applied by us (any fingerprint): no longer desired, so it is deleted.
    let owned: zonekeeper::dns::model::Owned =
        [(RRsetKey::new(&name("h7"), RecordType::A), 0)].into();
    let p = plan(&PlanInput {
        desired: &desired,
        observed: &observed,
        owned: &owned,
        prune: false,
    });
    let (added, updated, deleted) = p.counts();
    assert_eq!((added, updated, deleted), (1, 1, 1), "{:?}", p.changes);
    let report = apply(server.addr, &zone(), &p.changes, &up_opts(&k)).await;
    assert!(report.is_complete(), "{report:?}");

    // IXFR brings the observation to what a fresh AXFR says.
    let (changed, stats) = ixfr_refresh(server.addr, &mut observed, &xfr_opts(&k))
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(stats.method, TransferMethod::Ixfr, "{kind:?}");
    let (fresh_zone, _) = axfr_zone(server.addr, &zone(), &xfr_opts(&k))
        .await
        .unwrap();
    assert!(
        zone_diff(&observed, &fresh_zone).is_empty(),
        "{kind:?}: {:?}",
        zone_diff(&observed, &fresh_zone)
    );
    assert_eq!(observed.soa_serial(), fresh_zone.soa_serial());
    // And nothing is left to do.
    let again = plan(&PlanInput {
        desired: &desired,
        observed: &fresh_zone,
        owned: &owned,
        prune: false,
    });
    assert!(again.is_empty(), "{:?}", again.changes);
}

#[tokio::test]
async fn the_zone_model_round_trips_through_plan_update_and_ixfr_bind() {
    model_round_trip(Kind::Bind).await;
}

#[tokio::test]
async fn the_zone_model_round_trips_through_plan_update_and_ixfr_knot() {
    model_round_trip(Kind::Knot).await;
}

/// UPDATE answers other than NOERROR become typed errors naming server,
/// zone and batch, and nothing is reported applied.
async fn update_errors(kind: Kind) {
    let o = ServerOptions {
        allow_update: false,
        ..Default::default()
    };
    let (server, k, _) = start(kind, 1, "x 300 IN A 192.0.2.1", o);
    let changes = vec![add(vec![a("new", [192, 0, 2, 5])])];
    let report = apply_changes(server.addr, &zone(), &changes, &up_opts(&k)).await;
    let (idx, e) = report
        .failed
        .as_ref()
        .expect("update not allowed must fail");
    assert_eq!(*idx, 0);
    assert!(
        matches!(e.reason().as_str(), "Refused" | "NotAuth" | "AuthFailed"),
        "{kind:?}: {e}"
    );
    let text = e.to_string();
    assert!(
        text.contains(ZONE)
            && text.contains(&server.addr.to_string())
            && text.contains("batch 1/1"),
        "{text}"
    );
    assert_eq!(report.applied, 0);
    assert!(report.unknown.is_empty());

    let (server, k, _) = start(kind, 1, "x 300 IN A 192.0.2.1", ServerOptions::default());
    let wrong = TsigKey::new(
        &k.name.to_ascii(),
        "hmac-sha256",
        "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==",
    )
    .unwrap();
    let report = apply_changes(server.addr, &zone(), &changes, &up_opts(&wrong)).await;
    let (_, e) = report.failed.as_ref().expect("wrong key must fail");
    assert_eq!(e.reason(), "AuthFailed", "{kind:?}: {e}");
    assert_eq!(report.applied, 0);

    // A name outside the zone.
    let outside = Record::from_rdata(
        Name::from_ascii("elsewhere.example.").unwrap(),
        300,
        RData::A(A::new(192, 0, 2, 9)),
    );
    let report = apply_changes(server.addr, &zone(), &[add(vec![outside])], &up_opts(&k)).await;
    let (_, e) = report.failed.as_ref().expect("out-of-zone must fail");
    assert!(
        matches!(e.reason().as_str(), "NotZone" | "Refused" | "FormErr"),
        "{kind:?}: {e}"
    );
    assert_eq!(report.applied, 0);
    // Nothing of it reached the zone.
    let (now, _) = fetch(&server, &k).await.unwrap();
    assert!(!canon(&now).iter().any(|r| r.starts_with("new.")));
}

#[tokio::test]
async fn update_errors_are_typed_bind() {
    update_errors(Kind::Bind).await;
}

#[tokio::test]
async fn update_errors_are_typed_knot() {
    update_errors(Kind::Knot).await;
}
