//! The transfer reader, `zonekeeper import` and `zonekeeper plan` against the hostile
//! server fixture: every transfer ends within its deadline or at its caps with a named
//! reason, keeps nothing, and stays small in memory.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use support::hostile::{Behaviour, HostileServer};
use zonekeeper::dns::query::{QueryOptions, query_soa};
use zonekeeper::dns::transfer::{TransferOptions, axfr, axfr_zone, ixfr, ixfr_refresh};
use zonekeeper::dns::tsig::TsigKey;
use zonekeeper::dns::update::{RRsetChange, UpdateOptions, apply_changes};

const BIN: &str = env!("CARGO_BIN_EXE_zonekeeper");
const ORIGIN: &str = "example.com.";
const KEY_NAME: &str = "hostile-key.";
const SECRET: &str = "aG9zdGlsZS1zZWNyZXQtZm9yLXRoZS10ZXN0cy0xMjM=";

fn key() -> TsigKey {
    TsigKey::new(KEY_NAME, "hmac-sha256", SECRET).unwrap()
}

fn origin() -> Name {
    Name::from_ascii(ORIGIN).unwrap()
}

async fn hostile(behaviour: Behaviour) -> HostileServer {
    HostileServer::start(ORIGIN, Some(key()), behaviour).await
}

fn opts() -> TransferOptions {
    TransferOptions {
        tsig: Some(key()),
        idle_timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(60),
        max_records: 50_000,
        max_bytes: 64 << 20,
        max_messages: 5_000,
        ..TransferOptions::default()
    }
}

/// An AXFR counted into a sink; the error, the records seen and the time taken.
async fn read_axfr(
    server: &HostileServer,
    opts: &TransferOptions,
) -> (zonekeeper::dns::error::DnsError, u64, Duration) {
    let started = Instant::now();
    let mut seen = 0u64;
    let e = axfr(server.addr, &origin(), opts, &mut |_| {
        seen += 1;
        Ok(())
    })
    .await
    .expect_err("a hostile transfer must fail");
    (e, seen, started.elapsed())
}

fn names_zone_and_server(e: &impl std::fmt::Display, server: &HostileServer) {
    let text = e.to_string();
    assert!(
        text.contains(ORIGIN) && text.contains(&server.addr.to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn endless_records_stop_at_the_record_cap() {
    let server = hostile(Behaviour::EndlessRecords).await;
    let o = opts();
    let (e, seen, took) = read_axfr(&server, &o).await;
    assert_eq!(e.reason(), "TransferTooLarge", "{e}");
    assert!(e.to_string().contains("50000 records"), "{e}");
    names_zone_and_server(&e, &server);
    // The sink never got more than the cap.
    assert!(seen <= o.max_records, "{seen}");
    assert!(took < o.deadline, "{took:?}");
    // The zone model is never handed out.
    assert!(axfr_zone(server.addr, &origin(), &o).await.is_err());
}

#[tokio::test]
async fn endless_records_over_ixfr_stop_at_the_record_cap_too() {
    let server = hostile(Behaviour::EndlessRecords).await;
    let mut kept = 0u64;
    let e = ixfr(server.addr, &origin(), 0, &opts(), &mut |_| {
        kept += 1;
        Ok(())
    })
    .await
    .expect_err("endless IXFR");
    assert_eq!(e.reason(), "TransferTooLarge", "{e}");
    assert!(kept <= 50_000);
}

#[tokio::test]
async fn a_byte_cap_ends_a_transfer_of_big_messages() {
    let server = hostile(Behaviour::EndlessRecords).await;
    let o = TransferOptions {
        max_records: u64::MAX,
        max_bytes: 1 << 20,
        ..opts()
    };
    let (e, _, _) = read_axfr(&server, &o).await;
    assert_eq!(e.reason(), "TransferTooLarge", "{e}");
    assert!(e.to_string().contains("bytes"), "{e}");
}

#[tokio::test]
async fn endless_empty_messages_stop_at_the_message_cap() {
    let server = hostile(Behaviour::EndlessEmptyMessages).await;
    let o = opts();
    let (e, seen, took) = read_axfr(&server, &o).await;
    assert_eq!(e.reason(), "TransferTooLarge", "{e}");
    assert!(e.to_string().contains("5000 messages"), "{e}");
    names_zone_and_server(&e, &server);
    assert_eq!(seen, 1, "only the opening SOA is a record");
    assert!(took < o.deadline, "{took:?}");
}

#[tokio::test]
async fn endless_streams_end_at_the_deadline_when_no_cap_is_reached() {
    for behaviour in [Behaviour::EndlessEmptyMessages, Behaviour::EndlessRecords] {
        let server = hostile(behaviour.clone()).await;
        let o = TransferOptions {
            deadline: Duration::from_secs(2),
            max_records: u64::MAX,
            max_bytes: u64::MAX,
            max_messages: u64::MAX,
            ..opts()
        };
        let (e, _, took) = read_axfr(&server, &o).await;
        assert_eq!(e.reason(), "TransferTimeout", "{behaviour:?}: {e}");
        names_zone_and_server(&e, &server);
        // Ends at the deadline; the margin only covers scheduling on a loaded machine.
        assert!(
            took >= o.deadline && took < o.deadline + Duration::from_secs(3),
            "{behaviour:?}: {took:?}"
        );
    }
}

#[tokio::test]
async fn a_server_that_stalls_longer_than_the_deadline_times_out() {
    let server = hostile(Behaviour::Delay(Duration::from_secs(30))).await;
    let o = TransferOptions {
        deadline: Duration::from_secs(1),
        ..opts()
    };
    let (e, seen, took) = read_axfr(&server, &o).await;
    assert_eq!(e.reason(), "TransferTimeout", "{e}");
    assert_eq!(seen, 0);
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn a_connection_closed_mid_transfer_is_truncated() {
    let server = hostile(Behaviour::CloseMidTransfer(3)).await;
    let (e, seen, _) = read_axfr(&server, &opts()).await;
    assert_eq!(e.reason(), "TransferTruncated", "{e}");
    assert!(e.to_string().contains("after 3 messages"), "{e}");
    assert_eq!(seen, 1 + 200, "SOA and two messages of 100 records");
    assert!(axfr_zone(server.addr, &origin(), &opts()).await.is_err());
}

#[tokio::test]
async fn a_transfer_signed_with_another_key_is_an_auth_failure() {
    let server = hostile(Behaviour::WrongTsig).await;
    let (e, seen, _) = read_axfr(&server, &opts()).await;
    assert_eq!(e.reason(), "AuthFailed", "{e}");
    assert!(e.to_string().contains("another-key"), "{e}");
    assert_eq!(seen, 0);
    // The same server, answering correctly, transfers: the failure was the signature.
    server.set(Behaviour::Normal(Vec::new()));
    let (zone, _) = axfr_zone(server.addr, &origin(), &opts()).await.unwrap();
    assert_eq!(zone.soa_serial(), Some(server.serial()));
}

#[tokio::test]
async fn each_error_rcode_maps_to_its_reason() {
    let server = hostile(Behaviour::Normal(Vec::new())).await;
    let cases = [
        (ResponseCode::Refused, "TransferRefused", "Refused"),
        (ResponseCode::NotAuth, "TransferRefused", "NotAuth"),
        (ResponseCode::ServFail, "ServFail", "ServFail"),
    ];
    let qopts = QueryOptions {
        tsig: Some(key()),
        ..QueryOptions::default()
    };
    for (code, transfer_reason, soa_reason) in cases {
        server.set(Behaviour::Rcode(code));
        let before = server.queries();
        let (e, seen, _) = read_axfr(&server, &opts()).await;
        assert_eq!(e.reason(), transfer_reason, "{code:?}: {e}");
        assert_eq!(seen, 0);
        names_zone_and_server(&e, &server);
        let e = query_soa(server.addr, &origin(), &qopts)
            .await
            .expect_err("error rcode");
        assert_eq!(e.reason(), soa_reason, "{code:?}: {e}");
        assert_eq!(server.queries(), before + 2, "one AXFR, one SOA query");
    }
}

#[tokio::test]
async fn an_error_answer_with_a_forged_signature_is_an_auth_failure() {
    // Refusals signed with another key must not be believed as the server's word.
    let server = hostile(Behaviour::WrongTsigRcode(ResponseCode::Refused)).await;
    let qopts = QueryOptions {
        tsig: Some(key()),
        ..QueryOptions::default()
    };
    let e = query_soa(server.addr, &origin(), &qopts)
        .await
        .expect_err("forged");
    assert_eq!(e.reason(), "AuthFailed", "{e}");
    let (e, _, _) = read_axfr(&server, &opts()).await;
    assert_eq!(e.reason(), "AuthFailed", "{e}");
    let report = apply_changes(server.addr, &origin(), &[one_change()], &update_opts()).await;
    let (_, e) = report.failed.as_ref().expect("forged refusal");
    assert_eq!(e.reason(), "AuthFailed", "{e}");
    // Signed correctly, the same refusals are the server's: their own reasons.
    server.set(Behaviour::Rcode(ResponseCode::Refused));
    let e = query_soa(server.addr, &origin(), &qopts)
        .await
        .expect_err("refused");
    assert_eq!(e.reason(), "Refused", "{e}");
    let report = apply_changes(server.addr, &origin(), &[one_change()], &update_opts()).await;
    let (_, e) = report.failed.as_ref().expect("refused");
    assert_eq!(e.reason(), "Refused", "{e}");
}

fn update_opts() -> UpdateOptions {
    UpdateOptions {
        tsig: Some(key()),
        timeout: Duration::from_secs(5),
        ..UpdateOptions::default()
    }
}

fn one_change() -> RRsetChange {
    let name = Name::from_ascii("www.example.com.").unwrap();
    RRsetChange {
        name: name.clone(),
        rtype: RecordType::A,
        old: Vec::new(),
        new: vec![Record::from_rdata(
            name,
            300,
            RData::A(A::new(192, 0, 2, 1)),
        )],
    }
}

#[tokio::test]
async fn an_empty_zone_transfers_as_its_soa_alone() {
    let server = hostile(Behaviour::EmptyZone).await;
    let (zone, stats) = axfr_zone(server.addr, &origin(), &opts()).await.unwrap();
    assert_eq!(stats.records, 1);
    assert_eq!(zone.record_count(), 1);
}

// --- the command line ----------------------------------------------------------------

/// Runs the binary under `/usr/bin/time`; returns its output and peak RSS in KiB.
fn run_capped(args: &[&str]) -> (Output, u64, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f").arg("maxrss=%M").arg(BIN).args(args);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("/usr/bin/time runs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("maxrss="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {stderr}"));
    (out, rss, took)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn key_file(dir: &Path) -> String {
    let path = dir.join("key.conf");
    std::fs::write(
        &path,
        format!("key \"{KEY_NAME}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// The CLI runs in another process: the server runs on a runtime of its own so the
/// blocking wait for the child does not starve it.
fn hostile_on_runtime(behaviour: Behaviour) -> (tokio::runtime::Runtime, HostileServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(hostile(behaviour));
    (rt, server)
}

/// A record cap of 100,000: the whole zone model of that many A records is ~30 MB, so
/// peak RSS stays under 2x that plus the process' own ~40 MB.
const CLI_MAX_RECORDS: &str = "100000";
const CLI_RSS_LIMIT_KIB: u64 = 160 * 1024;

#[test]
fn import_ends_on_endless_records_and_endless_messages_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    for (behaviour, phrase) in [
        (Behaviour::EndlessRecords, "more than 100000 records"),
        // The message cap follows the record cap.
        (Behaviour::EndlessEmptyMessages, "more than 100001 messages"),
    ] {
        let (_rt, server) = hostile_on_runtime(behaviour.clone());
        let addr = server.addr.to_string();
        let (out, rss, took) = run_capped(&[
            "import",
            "--server",
            &addr,
            "--zone",
            ORIGIN,
            "--tsig-key-file",
            &key,
            "--max-records",
            CLI_MAX_RECORDS,
            "--transfer-deadline",
            "60s",
        ]);
        assert_eq!(out.status.code(), Some(1), "{behaviour:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("zone transfer too large") && err.contains(phrase),
            "{behaviour:?}: {}",
            text(&out)
        );
        assert!(
            err.contains(ORIGIN) && err.contains(&addr),
            "{}",
            text(&out)
        );
        assert!(out.stdout.is_empty(), "nothing written: {}", text(&out));
        assert!(rss < CLI_RSS_LIMIT_KIB, "{behaviour:?}: peak RSS {rss} KiB");
        assert!(took < Duration::from_secs(60), "{took:?}");
        eprintln!("import vs {behaviour:?}: {took:?}, peak RSS {rss} KiB");
    }
}

#[test]
fn import_ends_at_the_deadline_on_an_endless_stream() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let (_rt, server) = hostile_on_runtime(Behaviour::EndlessEmptyMessages);
    let addr = server.addr.to_string();
    let (out, _, took) = run_capped(&[
        "import",
        "--server",
        &addr,
        "--zone",
        ORIGIN,
        "--tsig-key-file",
        &key,
        "--transfer-deadline",
        "3s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not finish within 3s"), "{}", text(&out));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

fn plan_manifests(dir: &Path, server: &HostileServer) -> String {
    let m = dir.join("manifests");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: example-com-tsig\n  namespace: default\ntype: Opaque\nstringData:\n  name: {KEY_NAME}\n  algorithm: hmac-sha256\n  secret: {SECRET}\n"
        ),
    )
    .unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/primary-zone.yaml"),
    )
    .unwrap();
    let zone = example
        .replace("127.0.0.1:10053", &server.addr.to_string())
        .replace(
            "  records:\n",
            &format!("  transfer: {{maxRecords: {CLI_MAX_RECORDS}, deadline: 60s}}\n  records:\n"),
        );
    assert!(zone.contains("maxRecords"), "{zone}");
    std::fs::write(m.join("zone.yaml"), zone).unwrap();
    m.to_str().unwrap().to_string()
}

#[test]
fn plan_ends_on_endless_records_and_endless_messages() {
    for (behaviour, phrase) in [
        (Behaviour::EndlessRecords, "more than 100000 records"),
        // The message cap follows the record cap.
        (Behaviour::EndlessEmptyMessages, "more than 100001 messages"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, server) = hostile_on_runtime(behaviour.clone());
        let m = plan_manifests(dir.path(), &server);
        let state = dir.path().join("state");
        let (out, rss, took) =
            run_capped(&["plan", "-f", &m, "--state-dir", state.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{behaviour:?}: {}", text(&out));
        let all = text(&out);
        assert!(
            all.contains("zone transfer too large") && all.contains(phrase),
            "{behaviour:?}: {all}"
        );
        assert!(rss < CLI_RSS_LIMIT_KIB, "{behaviour:?}: peak RSS {rss} KiB");
        assert!(took < Duration::from_secs(60), "{took:?}");
        assert!(server.transfers() >= 1, "the plan asked for the zone");
        eprintln!("plan vs {behaviour:?}: {took:?}, peak RSS {rss} KiB");
    }
}

#[tokio::test]
async fn soa_queries_and_updates_to_a_stalled_server_end_at_their_deadlines() {
    let server = hostile(Behaviour::Delay(Duration::from_secs(60))).await;
    let qopts = QueryOptions {
        tsig: Some(key()),
        timeout: Duration::from_millis(300),
        attempts: 2,
    };
    let started = Instant::now();
    let e = query_soa(server.addr, &origin(), &qopts)
        .await
        .expect_err("stalled");
    assert_eq!(e.reason(), "Timeout", "{e}");
    // 300 ms, then 600 ms: the attempts' deadlines, plus scheduling slack.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let uopts = UpdateOptions {
        timeout: Duration::from_secs(1),
        ..update_opts()
    };
    let started = Instant::now();
    let report = apply_changes(server.addr, &origin(), &[one_change()], &uopts).await;
    let (_, e) = report.failed.as_ref().expect("stalled");
    assert_eq!(e.reason(), "Timeout", "{e}");
    assert_eq!(
        report.unknown,
        vec![0],
        "sent, never answered: outcome unknown"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_failed_refresh_leaves_the_observed_zone_as_it_was() {
    let name = Name::from_ascii("www.example.com.").unwrap();
    let records = vec![Record::from_rdata(
        name,
        300,
        RData::A(A::new(192, 0, 2, 7)),
    )];
    let server = hostile(Behaviour::Normal(records)).await;
    let (mut observed, _) = axfr_zone(server.addr, &origin(), &opts()).await.unwrap();
    let before = observed.clone();
    assert_eq!(before.record_count(), 2, "SOA and www");
    for behaviour in [
        Behaviour::EndlessRecords,
        Behaviour::EndlessEmptyMessages,
        Behaviour::CloseMidTransfer(2),
        Behaviour::WrongTsig,
    ] {
        server.set(behaviour.clone());
        let e = ixfr_refresh(server.addr, &mut observed, &opts())
            .await
            .expect_err("hostile refresh");
        assert!(
            matches!(
                e.reason().as_str(),
                "TransferTooLarge" | "TransferTruncated" | "AuthFailed"
            ),
            "{behaviour:?}: {e}"
        );
        assert!(observed == before, "{behaviour:?}: the zone changed");
    }
}
