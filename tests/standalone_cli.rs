//! The standalone commands as users run them: the real binary against real BIND and Knot.

mod support;

use std::path::{Path, PathBuf};
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

fn secret_yaml(key: &TsigKey) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: example-com-tsig\n  namespace: default\ntype: Opaque\nstringData:\n  name: {}\n  algorithm: {}\n  secret: {}\n",
        key.name, key.algorithm, key.secret_b64
    )
}

/// The shipped example, pointed at `server`.
fn example_zone(server: &DnsServer) -> String {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/primary-zone.yaml"),
    )
    .unwrap();
    let replaced = example.replace("127.0.0.1:10053", &server.addr.to_string());
    assert_ne!(replaced, example);
    replaced
}

fn without_soa(lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .filter(|l| l.split(' ').nth(3) != Some("SOA"))
        .map(|l| l.to_ascii_lowercase())
        .collect();
    v.sort();
    v
}

/// A server holding an empty `example.com.`, a temporary directory, and its `manifests`
/// folder.
fn empty_zone_and_dirs(kind: ServerKind) -> (DnsServer, tempfile::TempDir, PathBuf) {
    let server = DnsServer::start(
        kind,
        &ZoneContent::new(ORIGIN, Vec::new()),
        ServerOptions::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    (server, dir, manifests)
}

fn plan_apply_plan(kind: ServerKind) {
    let (server, dir, manifests) = empty_zone_and_dirs(kind);
    std::fs::write(manifests.join("secret.yaml"), secret_yaml(&server.key)).unwrap();
    std::fs::write(manifests.join("zone.yaml"), example_zone(&server)).unwrap();
    let state = dir.path().join("state");
    let m = manifests.to_str().unwrap();
    let s = state.to_str().unwrap();

    let plan = zonekeeper(&["plan", "-f", m, "--state-dir", s]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_text.contains("+ www.example.com. 3600 IN A 192.0.2.10"),
        "{plan_text}"
    );

    let apply = zonekeeper(&["apply", "-f", m, "--state-dir", s]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let status: serde_yaml::Value = serde_yaml::Deserializer::from_slice(&apply.stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .find(|v: &serde_yaml::Value| !v.is_null())
        .unwrap();
    let served_serial = server.soa_serial().unwrap();
    assert_eq!(
        status["status"]["serial"].as_u64(),
        Some(u64::from(served_serial)),
        "{}",
        text(&apply)
    );
    let served = server.axfr_lines();
    // +onesoa: the SOA is printed once.
    assert_eq!(
        status["status"]["recordCount"].as_u64(),
        Some(served.len() as u64),
        "{}\n{served:#?}",
        text(&apply)
    );
    assert!(
        served
            .iter()
            .any(|l| l == "www.example.com. 3600 IN A 192.0.2.10")
    );
    let ready = status["status"]["conditions"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "{}", text(&apply));

    let again = zonekeeper(&["plan", "-f", m, "--state-dir", s]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("no changes"));

    // An invalid manifest: the schema's field path, exit 1, nothing changed.
    let broken = example_zone(&server).replace("ttl: 3600", "ttl: -5");
    std::fs::write(manifests.join("zone.yaml"), broken).unwrap();
    let before = server.soa_serial();
    let refused = zonekeeper(&["apply", "-f", m, "--state-dir", s]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("spec.ttl"), "{}", text(&refused));
    assert_eq!(server.soa_serial(), before);
    let plan_refused = zonekeeper(&["plan", "-f", m, "--state-dir", s]);
    assert_eq!(
        plan_refused.status.code(),
        Some(1),
        "{}",
        text(&plan_refused)
    );
}

/// `records` and `recordsFrom` are checked together: the same RRset from both would be two
/// changes for one key on every pass. Refused before any server is asked.
#[test]
fn plan_refuses_an_rrset_listed_in_records_and_records_from() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("zone.yaml");
    std::fs::write(
        &manifests,
        r#"apiVersion: dns.zonekeeper.io/v1alpha1
kind: DnsZone
metadata: {name: example-com, namespace: default}
spec:
  zoneName: example.com.
  type: Primary
  backend: {server: "127.0.0.1:9"}
  records:
    - {name: www, type: A, data: ["192.0.2.10"]}
  recordsFrom:
    - configMapRef: {name: zone-part1, key: zone}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: zone-part1, namespace: default}
data:
  zone: |
    $TTL 300
    mail IN A 192.0.2.25
    www IN A 192.0.2.11
"#,
    )
    .unwrap();
    let state = dir.path().join("state");
    let plan = zonekeeper(&[
        "plan",
        "-f",
        manifests.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(plan.status.code(), Some(1), "{}", text(&plan));
    assert!(
        text(&plan).contains(
            "error: 1 conflicting RRset(s): recordsFrom[0] (configmap zone-part1/zone line 3) \
             www.example.com. A duplicates records[0]\n"
        ),
        "{}",
        text(&plan)
    );
}

#[test]
fn plan_apply_plan_on_bind() {
    plan_apply_plan(ServerKind::Bind);
}

#[test]
fn plan_apply_plan_on_knot() {
    plan_apply_plan(ServerKind::Knot);
}

/// One RRset of every supported type.
fn every_type() -> Vec<String> {
    [
        "@ 300 IN MX 10 mx1.example.com.",
        "@ 300 IN MX 20 mx2.example.com.",
        "@ 3600 IN TXT \"v=spf1 mx -all\" \"second string\"",
        "@ 3600 IN CAA 0 issue \"letsencrypt.org\"",
        "@ 3600 IN NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.com.",
        "www 600 IN A 192.0.2.10",
        "www 600 IN A 192.0.2.11",
        "www 600 IN AAAA 2001:db8::10",
        "mx1 IN A 192.0.2.25",
        "mx2 IN A 192.0.2.26",
        "blog IN CNAME www.example.com.",
        "_sip._tcp IN SRV 10 60 5060 sip.example.com.",
        "sip IN A 192.0.2.50",
        "sub IN NS ns1.sub.example.com.",
        "ns1.sub IN A 192.0.2.53",
        "sub IN DS 12345 13 2 8F9C3C6E4D1A0B7E2F5A6C9D8E7F1A2B3C4D5E6F708192A3B4C5D6E7F8091A2B",
        "10 IN PTR www.example.com.",
        "_443._tcp.www IN TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
        "host1 IN SSHFP 4 2 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
        "svc IN SVCB 1 svc-pool.example.com. alpn=h2 port=8443",
        "app IN HTTPS 1 . alpn=h2,h3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A BIND serving `content` to import from and a BIND with the zone empty to apply the
/// import to, both with one fresh key.
fn import_pair(content: ZoneContent) -> (TsigKey, DnsServer, DnsServer) {
    let key = TsigKey::generate("import-key", "hmac-sha256");
    let opts = || ServerOptions {
        key: Some(key.clone()),
        ..ServerOptions::default()
    };
    let source = DnsServer::start(ServerKind::Bind, &content, opts());
    let target = DnsServer::start(
        ServerKind::Bind,
        &ZoneContent::new(ORIGIN, Vec::new()),
        opts(),
    );
    (key, source, target)
}

#[test]
fn import_then_apply_reproduces_the_zone() {
    let (key, source, target) = import_pair(ZoneContent::new(ORIGIN, every_type()));
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("import.key");
    std::fs::write(
        &key_file,
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            key.name, key.algorithm, key.secret_b64
        ),
    )
    .unwrap();
    let out = zonekeeper(&[
        "import",
        "--server",
        &source.addr.to_string(),
        "--zone",
        ORIGIN,
        "--tsig-key-file",
        key_file.to_str().unwrap(),
        "--state-dir",
        dir.path().join("import-state").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let manifest = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        manifest.contains("kind: DnsZone") && manifest.contains("kind: Secret"),
        "{manifest}"
    );
    assert!(
        manifest.contains("name: www"),
        "names are relative:\n{manifest}"
    );
    assert!(!manifest.contains("type: SOA"), "{manifest}");

    // The DnsZone document, pointed at the empty copy; the Secret template filled in.
    let zone_doc = manifest
        .split("\n---\n")
        .find(|d| d.contains("kind: DnsZone"))
        .unwrap()
        .replace(&source.addr.to_string(), &target.addr.to_string());
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("zone.yaml"), zone_doc).unwrap();
    std::fs::write(manifests.join("secret.yaml"), secret_yaml(&key)).unwrap();
    let state = dir.path().join("state");
    let apply = zonekeeper(&[
        "apply",
        "-f",
        manifests.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert_eq!(
        without_soa(&target.axfr_lines()),
        without_soa(&source.axfr_lines()),
        "{}",
        text(&apply)
    );
}

#[test]
fn demo_runs_and_shows_every_section() {
    let start = std::time::Instant::now();
    let out = zonekeeper(&["demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "1. zonekeeper plan",
        "+ www.example.com. 3600 IN A 192.0.2.10",
        "2. zonekeeper apply",
        "kind: DnsZone",
        "type: Ready",
        "history:",
        "3. an out-of-band change",
        "4. zonekeeper sync",
        "kind: ZoneSync",
        "+ ftp.example.com. 300 IN A 192.0.2.80",
        "- sip.example.com. 3600 IN A 192.0.2.50",
        "phase: Complete",
        // The snapshot apply stored was brought to the served serial.
        "serialBefore: 2",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?}:\n{stdout}");
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn demo_serve_answers_dig_until_interrupted() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args(["demo", "--serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.trim_start().starts_with("dig @") {
                let _ = tx.send(line.trim().to_string());
            }
        }
    });
    let command = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("demo --serve printed no dig command");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = Command::new("dig").args(&args).output().unwrap();
    let axfr = String::from_utf8_lossy(&out.stdout);
    assert!(
        axfr.contains("192.0.2.10") && axfr.contains("ftp.example.com."),
        "{command}\n{axfr}"
    );
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "demo --serve ignored Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A zone too big for one object: import writes recordsFrom ConfigMaps, and applying the
/// DnsZone with them to an empty copy reproduces the zone.
#[test]
fn import_of_a_big_zone_uses_config_maps() {
    let (key, source, target) = import_pair(ZoneContent::generated(ORIGIN, 12_000));
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("k.conf");
    std::fs::write(
        &key_file,
        format!(
            "key {} {{ algorithm {}; secret \"{}\"; }};\n",
            key.name, key.algorithm, key.secret_b64
        ),
    )
    .unwrap();
    let manifests = dir.path().join("m");
    let out = zonekeeper(&[
        "import",
        "--server",
        &source.addr.to_string(),
        "--zone",
        ORIGIN,
        "--tsig-key-file",
        key_file.to_str().unwrap(),
        "--out-dir",
        manifests.to_str().unwrap(),
        // The import adopts the zone on the source; the copy below goes to another server
        // with a state of its own (the same state would find the target suspiciously empty).
        "--state-dir",
        dir.path().join("source-state").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let manifest = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(manifest.contains("recordsFrom"), "{manifest}");
    let parts: Vec<_> = std::fs::read_dir(&manifests).unwrap().collect();
    assert!(!parts.is_empty());
    for p in &parts {
        let len = p.as_ref().unwrap().metadata().unwrap().len();
        assert!(len < 1_000_000, "{len}");
    }
    let zone_doc = manifest
        .split("\n---\n")
        .find(|d| d.contains("kind: DnsZone"))
        .unwrap()
        .replace(&source.addr.to_string(), &target.addr.to_string())
        // A loaded machine's BIND can take longer than the default 5 s over an 800-change batch.
        .replace("  backend:\n", "  backend:\n    timeout: 30s\n");
    assert!(zone_doc.contains("timeout: 30s"), "{zone_doc}");
    std::fs::write(manifests.join("zone.yaml"), zone_doc).unwrap();
    std::fs::write(manifests.join("secret.yaml"), secret_yaml(&key)).unwrap();
    let state = dir.path().join("state");
    let apply = zonekeeper(&[
        "apply",
        "-f",
        manifests.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let want = without_soa(&source.axfr_lines());
    assert_eq!(want.len(), 12_001);
    assert_eq!(without_soa(&target.axfr_lines()), want);
}

/// The most common first mistake: a zone name the server does not hold. `plan` and `apply`
/// say so and name what to check, and `plan` fails (a CI gate on it must not pass).
#[test]
fn a_zone_the_server_does_not_hold_is_reported_as_not_served() {
    let (server, dir, manifests) = empty_zone_and_dirs(ServerKind::Bind);
    std::fs::write(manifests.join("secret.yaml"), secret_yaml(&server.key)).unwrap();
    let zone =
        example_zone(&server).replace("zoneName: example.com.", "zoneName: missing.example.com.");
    std::fs::write(manifests.join("zone.yaml"), zone).unwrap();
    let m = manifests.to_str().unwrap();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let expected = format!(
        "at {}: server does not serve the zone (SOA query answered NXDOMAIN): check spec.zoneName and that the server is configured as primary for it",
        server.addr
    );

    let plan = zonekeeper(&["plan", "-f", m, "--state-dir", s]);
    assert_eq!(plan.status.code(), Some(1), "{}", text(&plan));
    let plan_text = text(&plan);
    assert!(plan_text.contains(&expected), "{}", text(&plan));
    assert!(
        plan_text.contains("missing.example.com."),
        "{}",
        text(&plan)
    );
    assert!(!plan_text.contains("no changes"), "{}", text(&plan));
    assert!(!plan_text.contains("changed since"), "{}", text(&plan));

    let apply = zonekeeper(&["apply", "-f", m, "--state-dir", s]);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    // A failed apply prints the status on stderr.
    let status: serde_yaml::Value = serde_yaml::Deserializer::from_slice(&apply.stderr)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .find(|v: &serde_yaml::Value| !v.is_null())
        .unwrap();
    let conditions = status["status"]["conditions"].as_sequence().unwrap();
    let backend = conditions
        .iter()
        .find(|c| c["type"] == "BackendReachable")
        .unwrap();
    assert_eq!(backend["status"], "False", "{}", text(&apply));
    assert_eq!(backend["reason"], "ZoneNotServed", "{}", text(&apply));
    assert!(
        backend["message"].as_str().unwrap().contains(&expected),
        "{}",
        text(&apply)
    );
}

fn write_key_file(path: &Path, key: &TsigKey) {
    std::fs::write(
        path,
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            key.name, key.algorithm, key.secret_b64
        ),
    )
    .unwrap();
}

/// `import` adopts: the RRsets it wrote into the manifest are recorded as managed in the state
/// dir, so removing one from the manifest shows its deletion in `plan` before any apply ran.
#[test]
fn import_adopts_so_a_removed_record_is_planned_for_deletion() {
    let key = TsigKey::generate("import-key", "hmac-sha256");
    let server = DnsServer::start(
        ServerKind::Bind,
        &ZoneContent::new(
            ORIGIN,
            vec![
                "www 600 IN A 192.0.2.10".to_string(),
                "mail 600 IN A 192.0.2.20".to_string(),
            ],
        ),
        ServerOptions {
            key: Some(key.clone()),
            ..ServerOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("import.key");
    write_key_file(&key_file, &key);
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let addr = server.addr.to_string();

    // Without the key the transfer is refused; the error says how to pass one.
    let refused = zonekeeper(&[
        "import",
        "--server",
        &addr,
        "--zone",
        ORIGIN,
        "--state-dir",
        s,
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--tsig-key-file"),
        "{}",
        text(&refused)
    );

    let out = zonekeeper(&[
        "import",
        "--server",
        &addr,
        "--zone",
        ORIGIN,
        "--tsig-key-file",
        key_file.to_str().unwrap(),
        "--state-dir",
        s,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let manifest = String::from_utf8_lossy(&out.stdout).to_string();
    let zone_doc = manifest
        .split("\n---\n")
        .find(|d| d.contains("kind: DnsZone"))
        .unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("zone.yaml"), zone_doc).unwrap();
    std::fs::write(manifests.join("secret.yaml"), secret_yaml(&key)).unwrap();
    let m = manifests.to_str().unwrap();

    let plan = zonekeeper(&["plan", "-f", m, "--state-dir", s]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(String::from_utf8_lossy(&plan.stdout).contains("no changes"));

    // Remove the mail record from the manifest, as a user editing it would.
    let mut doc: serde_yaml::Value = serde_yaml::from_str(zone_doc).unwrap();
    let records = doc["spec"]["records"].as_sequence_mut().unwrap();
    let before = records.len();
    records.retain(|r| r["name"] != "mail");
    assert_eq!(records.len(), before - 1, "{zone_doc}");
    std::fs::write(
        manifests.join("zone.yaml"),
        serde_yaml::to_string(&doc).unwrap(),
    )
    .unwrap();

    let plan = zonekeeper(&["plan", "-f", m, "--state-dir", s]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_text.contains("- mail.example.com. 600 IN A 192.0.2.20"),
        "{}",
        text(&plan)
    );
    assert!(!plan_text.contains("www.example.com."), "{}", text(&plan));
    assert!(
        plan_text.contains(
            "0 RRsets to add, 0 RRsets to change, 1 RRset to delete; 1 record removed; deletion guard: ok"
        ),
        "{}",
        text(&plan)
    );
}

/// A `records:` list long enough to be read in slices, after the zone's server is already
/// being asked: plan, apply, and a no-change plan with and without stored state read as with a
/// short list, and an item refused deep in the list is named by its field path.
#[test]
fn a_big_records_list_plans_and_applies_like_a_short_one() {
    let (server, dir, manifests) = empty_zone_and_dirs(ServerKind::Bind);
    let mut zone = format!(
        "apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\n\
         metadata: {{name: big, namespace: default}}\nspec:\n  zoneName: {ORIGIN}\n  type: Primary\n\
         \x20 backend:\n    server: \"{}\"\n    tsigKeySecretRef: {{name: example-com-tsig}}\n  records:\n",
        server.addr
    );
    for i in 0..1_500 {
        zone.push_str(&format!(
            "  - name: h{i}\n    type: A\n    data: [\"10.0.{}.{}\"]\n",
            i / 256,
            i % 256
        ));
    }
    // The Secret in a file read after the zone's: the zone's connection needs it all the same.
    std::fs::write(manifests.join("a-zone.yaml"), &zone).unwrap();
    std::fs::write(manifests.join("z-secret.yaml"), secret_yaml(&server.key)).unwrap();
    let m = manifests.to_str().unwrap();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let fresh = dir.path().join("fresh");
    let f = fresh.to_str().unwrap();

    let plan = zonekeeper(&["plan", "-f", m, "--state-dir", s]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains("1500 RRsets to add, 0 RRsets to change, 0 RRsets to delete"),
        "{}",
        text(&plan)
    );
    let apply = zonekeeper(&["apply", "-f", m, "--state-dir", s]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let served = server.axfr_lines();
    assert!(
        served
            .iter()
            .any(|l| l == "h1499.example.com. 3600 IN A 10.0.5.219"),
        "{served:#?}"
    );
    for state_dir in [s, f] {
        let again = zonekeeper(&["plan", "-f", m, "--state-dir", state_dir]);
        assert_eq!(again.status.code(), Some(0), "{}", text(&again));
        assert!(text(&again).contains("no changes"), "{}", text(&again));
    }

    let broken = zone.replace(
        "  - name: h1200\n    type: A\n",
        "  - name: h1200\n    type: BOGUS\n",
    );
    assert_ne!(broken, zone);
    std::fs::write(manifests.join("a-zone.yaml"), broken).unwrap();
    let before = server.soa_serial();
    let refused = zonekeeper(&["apply", "-f", m, "--state-dir", f]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("spec.records[1200].type: Unsupported value: \"BOGUS\""),
        "{}",
        text(&refused)
    );
    assert_eq!(server.soa_serial(), before);
}
