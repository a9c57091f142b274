//! `spec.email` and `spec.ttl` reach the served SOA: `zonekeeper plan` shows the SOA change,
//! `zonekeeper apply` writes it with an RFC 2136 UPDATE, and `dig` sees the new RNAME and TTL,
//! on BIND, Knot and PowerDNS.

mod support;

use std::process::{Command, Output};

use support::dns_servers::{DnsServer, ServerKind, ServerOptions, TsigKey, ZoneContent};

const ORIGIN: &str = "example.com.";
const BIN: &str = env!("CARGO_BIN_EXE_zonekeeper");

fn zonekeeper(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn manifests(server: &DnsServer, key: &TsigKey, email: &str, ttl: u32) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: example-com-tsig, namespace: default}}\n\
         type: Opaque\nstringData: {{name: {}, algorithm: {}, secret: {}}}\n---\n\
         apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\n\
         metadata: {{name: example-com, namespace: default}}\n\
         spec:\n  zoneName: {ORIGIN}\n  type: Primary\n  email: {email}\n  ttl: {ttl}\n\
         \x20 backend: {{server: \"{}\", tsigKeySecretRef: {{name: example-com-tsig}}, timeout: 10s}}\n\
         \x20 records:\n    - {{name: www, type: A, data: [\"192.0.2.10\"]}}\n",
        key.name, key.algorithm, key.secret_b64, server.addr
    )
}

/// The served SOA as `dig` prints it: `(ttl, rname, serial)`.
fn dig_soa(server: &DnsServer) -> (u32, String, u32) {
    let out = Command::new("dig")
        .args(["+noall", "+answer", "+time=5", "+tries=1"])
        .arg(format!("@{}", server.addr.ip()))
        .args(["-p", &server.addr.port().to_string(), ORIGIN, "SOA"])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert!(f.len() >= 7 && f[3] == "SOA", "dig: {line}");
    (
        f[1].parse().unwrap(),
        f[5].to_string(),
        f[6].parse().unwrap(),
    )
}

/// The status `apply` printed: on stdout, or on stderr when the zone is not Ready.
fn status_of(apply: &Output) -> serde_yaml::Value {
    let printed = if apply.status.success() {
        &apply.stdout
    } else {
        &apply.stderr
    };
    serde_yaml::Deserializer::from_slice(printed)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .find(|v: &serde_yaml::Value| !v.is_null())
        .unwrap_or_else(|| panic!("no status printed: {}", text(apply)))["status"]
        .clone()
}

fn ready_reason(status: &serde_yaml::Value) -> (String, String) {
    status["conditions"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .unwrap()
}

fn start(kind: ServerKind) -> (DnsServer, tempfile::TempDir) {
    let server = DnsServer::start(
        kind,
        &ZoneContent::new(ORIGIN, Vec::new()),
        ServerOptions::default(),
    );
    (server, tempfile::tempdir().unwrap())
}

/// Plan shows the SOA change, apply writes it, dig and status see it, and a second plan is
/// empty. Returns the server and the file paths for more steps.
fn email_and_ttl_reach_the_soa(kind: ServerKind) {
    let (server, dir) = start(kind);
    let file = dir.path().join("zone.yaml");
    std::fs::write(
        &file,
        manifests(&server, &server.key, "first.last@example.com", 300),
    )
    .unwrap();
    let state = dir.path().join("state");
    let (f, s) = (file.to_str().unwrap(), state.to_str().unwrap());
    assert_eq!(
        dig_soa(&server),
        (3600, "hostmaster.example.com.".into(), 1)
    );

    let plan = zonekeeper(&["plan", "-f", f, "--state-dir", s]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    for line in [
        "- example.com. 3600 IN SOA ns1.invalid. hostmaster.example.com. 1 3600 600 86400 60",
        "+ example.com. 300 IN SOA ns1.invalid. first\\.last.example.com. 2 3600 600 86400 60",
        "+ www.example.com. 300 IN A 192.0.2.10",
    ] {
        assert!(plan_text.contains(line), "{line} not in:\n{plan_text}");
    }
    assert_eq!(dig_soa(&server).2, 1, "plan sends nothing");

    let apply = zonekeeper(&["apply", "-f", f, "--state-dir", s]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let (ttl, rname, serial) = dig_soa(&server);
    assert_eq!((ttl, rname.as_str()), (300, "first\\.last.example.com."));
    assert!(serial > 1, "the serial moved forward: {serial}");
    let status = status_of(&apply);
    assert_eq!(status["email"].as_str(), Some("first.last@example.com"));
    assert_eq!(status["ttl"].as_u64(), Some(300));
    assert_eq!(status["serial"].as_u64(), Some(u64::from(serial)));
    let entry = &status["history"][0];
    assert!(
        entry["message"]
            .as_str()
            .unwrap()
            .contains("applied 1 RRset change(s) and the SOA's RNAME/TTL"),
        "{entry:?}"
    );

    let again = zonekeeper(&["plan", "-f", f, "--state-dir", s]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // Someone edits the SOA on the server: the next plan puts the spec's fields back.
    server.nsupdate(&format!(
        "update add {ORIGIN} 600 SOA ns1.invalid. other.example.net. {} 3600 600 86400 60\n",
        serial + 1
    ));
    assert_eq!(dig_soa(&server).1, "other.example.net.");
    let drifted = zonekeeper(&["plan", "-f", f, "--state-dir", s]);
    assert_eq!(drifted.status.code(), Some(2), "{}", text(&drifted));
    let apply = zonekeeper(&["apply", "-f", f, "--state-dir", s]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let (ttl, rname, after) = dig_soa(&server);
    assert_eq!((ttl, rname.as_str()), (300, "first\\.last.example.com."));
    assert!(after > serial + 1, "never backwards: {after}");
}

#[test]
fn email_and_ttl_reach_the_soa_on_bind() {
    email_and_ttl_reach_the_soa(ServerKind::Bind);
}

#[test]
fn email_and_ttl_reach_the_soa_on_knot() {
    email_and_ttl_reach_the_soa(ServerKind::Knot);
}

/// PowerDNS takes an UPDATE of the SOA's data but keeps the SOA record's TTL (its RFC 2136
/// handler replaces the content of the stored SOA only). The RNAME follows the spec; the
/// TTL cannot, and the zone says so instead of bumping the serial on every pass.
#[test]
fn email_reaches_the_soa_on_powerdns_and_a_kept_ttl_is_reported() {
    let (server, dir) = start(ServerKind::PowerDns);
    let file = dir.path().join("zone.yaml");
    let state = dir.path().join("state");
    let (f, s) = (file.to_str().unwrap(), state.to_str().unwrap());
    assert_eq!(
        dig_soa(&server),
        (3600, "hostmaster.example.com.".into(), 1)
    );

    // The TTL the server has: everything follows the spec.
    std::fs::write(
        &file,
        manifests(&server, &server.key, "first.last@example.com", 3600),
    )
    .unwrap();
    let plan = zonekeeper(&["plan", "-f", f, "--state-dir", s]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stdout)
            .contains("+ example.com. 3600 IN SOA ns1.invalid. first\\.last.example.com. 2"),
        "{}",
        text(&plan)
    );
    let apply = zonekeeper(&["apply", "-f", f, "--state-dir", s]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let (ttl, rname, serial) = dig_soa(&server);
    assert_eq!((ttl, rname.as_str()), (3600, "first\\.last.example.com."));
    assert!(serial > 1, "{serial}");
    let status = status_of(&apply);
    assert_eq!(status["email"].as_str(), Some("first.last@example.com"));
    assert_eq!(status["serial"].as_u64(), Some(u64::from(serial)));
    let again = zonekeeper(&["plan", "-f", f, "--state-dir", s]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // A TTL PowerDNS will not take: the UPDATE lands (serial moves), the TTL stays, and the
    // zone is not Ready with a reason that says why.
    std::fs::write(
        &file,
        manifests(&server, &server.key, "first.last@example.com", 300),
    )
    .unwrap();
    let apply = zonekeeper(&["apply", "-f", f, "--state-dir", s]);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    let (ttl, _, after) = dig_soa(&server);
    assert_eq!(ttl, 3600, "PowerDNS kept the SOA TTL");
    assert!(
        after > serial,
        "the UPDATE was taken: {after}\n{}\n{}",
        text(&apply),
        server.log()
    );
    let status = status_of(&apply);
    assert_eq!(
        status["ttl"].as_u64(),
        Some(3600),
        "status shows the served TTL"
    );
    let (ready, reason) = ready_reason(&status);
    assert_eq!((ready.as_str(), reason.as_str()), ("False", "SoaNotTaken"));
    // Not sent again: the state directory remembers the server ignored it.
    let again = zonekeeper(&["apply", "-f", f, "--state-dir", s]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert_eq!(dig_soa(&server).2, after, "no serial bump per run");
    let (ready, reason) = ready_reason(&status_of(&again));
    assert_eq!((ready.as_str(), reason.as_str()), ("False", "SoaNotTaken"));
    assert!(
        String::from_utf8_lossy(&server.log().into_bytes()).contains("Replacing SOA record"),
        "PowerDNS logged the SOA replaced:\n{}",
        server.log()
    );
}
