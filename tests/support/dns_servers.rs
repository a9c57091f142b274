//! Real authoritative DNS servers (BIND `named`, `knotd`, `nsd`) started for a test.
//!
//! Each [`DnsServer`] runs one daemon in the foreground, in its own process group,
//! with a generated configuration in a temporary directory, on 127.0.0.1 and an
//! ephemeral port. It serves one zone, lets one TSIG key transfer (and, for BIND
//! and Knot, update) it, and is killed, reaped and cleaned up on drop.
//!
//! Test code: failures panic with the server's log so the test output says why.
#![allow(dead_code)] // each test binary uses a different subset of the fixtures

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tempfile::TempDir;

/// Name of the key generated when [`ServerOptions::key`] is not set.
pub const DEFAULT_KEY_NAME: &str = "zonekeeper-test";
/// TTL given to the records the fixture writes itself (SOA, NS) and `$TTL` of the file.
pub const DEFAULT_TTL: u32 = 3600;
/// Name server of the SOA and NS records added when a zone lacks them. Out of zone
/// (RFC 6761 `.invalid`) because BIND refuses to load a zone whose in-zone NS target
/// has no address, and an extra glue record would show up in every transfer.
pub const DEFAULT_NS: &str = "ns1.invalid.";
/// Serial of the SOA record added when a zone has none.
pub const DEFAULT_SERIAL: u32 = 1;

/// How many times a start is retried when the chosen port turns out to be taken.
const START_ATTEMPTS: usize = 5;

/// A TSIG key shared by a server and the test talking to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigKey {
    /// Key name, without a trailing dot (e.g. `zonekeeper-test`).
    pub name: String,
    /// `hmac-sha256` or `hmac-sha512`, as BIND, Knot, NSD and `dig -y` spell it.
    pub algorithm: String,
    /// The secret, standard base64.
    pub secret_b64: String,
}

impl TsigKey {
    /// A key with a fresh random secret: 32 bytes for hmac-sha256, 64 for hmac-sha512.
    pub fn generate(name: &str, algorithm: &str) -> TsigKey {
        let len = match algorithm {
            "hmac-sha256" => 32,
            "hmac-sha512" => 64,
            other => panic!("unsupported TSIG algorithm {other:?} (hmac-sha256 | hmac-sha512)"),
        };
        TsigKey {
            name: name.trim_end_matches('.').to_string(),
            algorithm: algorithm.to_string(),
            secret_b64: base64::engine::general_purpose::STANDARD.encode(random_bytes(len)),
        }
    }

    /// The `-y` argument of `dig`/`nsupdate`: `algorithm:name:secret`.
    pub fn dig_arg(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret_b64)
    }

    /// The raw secret bytes.
    pub fn secret(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.secret_b64)
            .unwrap()
    }
}

/// Which daemon a [`DnsServer`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// ISC BIND 9 `named`.
    Bind,
    /// CZ.NIC `knotd`.
    Knot,
    /// NLnet Labs `nsd` (no dynamic update).
    Nsd,
}

impl ServerKind {
    /// All kinds, for tests run against every server.
    pub const ALL: [ServerKind; 3] = [ServerKind::Bind, ServerKind::Knot, ServerKind::Nsd];

    /// Whether the server accepts RFC 2136 UPDATE.
    pub fn supports_update(self) -> bool {
        !matches!(self, ServerKind::Nsd)
    }
}

/// The zone a primary serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneContent {
    /// Absolute origin, with its trailing dot (`example.com.`).
    pub origin: String,
    /// Zone-file lines, absolute or relative to `origin`, TTL and class optional
    /// (`$TTL 3600` is in effect). An apex SOA (`ns1.invalid. hostmaster.<origin>
    /// 1 3600 600 86400 60`) and an apex NS (`ns1.invalid.`), TTL 3600, are added
    /// if missing. One record per line (no parenthesised multi-line records).
    pub records: Vec<String>,
}

impl ZoneContent {
    /// A zone with the given records (SOA and NS added if missing).
    pub fn new(origin: &str, records: Vec<String>) -> Self {
        ZoneContent {
            origin: absolute(origin),
            records,
        }
    }

    /// SOA, NS and `n` more records cycling through A, AAAA and TXT, one owner each
    /// (`r0 A`, `r1 AAAA`, `r2 TXT`, ...). A transfer holds `n + 2` records.
    pub fn generated(origin: &str, n: usize) -> Self {
        let origin = absolute(origin);
        let mut records = Vec::with_capacity(n + 2);
        records.push(default_soa(&origin));
        records.push(default_ns());
        for i in 0..n {
            let line = match i % 3 {
                0 => format!(
                    "r{i} A 10.{}.{}.{}",
                    (i >> 16) & 0xff,
                    (i >> 8) & 0xff,
                    i & 0xff
                ),
                1 => format!("r{i} AAAA 2001:db8::{:x}:{:x}", i >> 16, i & 0xffff),
                _ => format!("r{i} TXT \"value {i}\""),
            };
            records.push(line);
        }
        ZoneContent { origin, records }
    }

    /// Number of records a full transfer returns (SOA once), counting added SOA/NS.
    pub fn expected_record_count(&self) -> usize {
        let (has_soa, has_ns) = self.apex_soa_ns();
        self.records
            .iter()
            .filter(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with(';') && !t.starts_with('$')
            })
            .count()
            + usize::from(!has_soa)
            + usize::from(!has_ns)
    }

    /// Whether the records already hold an apex SOA and an apex NS.
    fn apex_soa_ns(&self) -> (bool, bool) {
        let (mut soa, mut ns) = (false, false);
        let mut owner = String::from("@");
        for line in &self.records {
            if let Some((o, rtype)) = owner_and_type(line, &owner) {
                let apex = o == "@" || o.eq_ignore_ascii_case(&self.origin);
                if apex && rtype.eq_ignore_ascii_case("SOA") {
                    soa = true;
                }
                if apex && rtype.eq_ignore_ascii_case("NS") {
                    ns = true;
                }
                owner = o;
            }
        }
        (soa, ns)
    }

    /// Writes the zone file; buffered because generated zones reach 1M lines.
    fn write_zone_file(&self, path: &Path) {
        let (has_soa, has_ns) = self.apex_soa_ns();
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
        writeln!(w, "$ORIGIN {}", self.origin).unwrap();
        writeln!(w, "$TTL {DEFAULT_TTL}").unwrap();
        if !has_soa {
            writeln!(w, "{}", default_soa(&self.origin)).unwrap();
        }
        if !has_ns {
            writeln!(w, "{}", default_ns()).unwrap();
        }
        for line in &self.records {
            writeln!(w, "{line}").unwrap();
        }
        w.flush().unwrap();
    }
}

/// How a [`DnsServer`] is configured. `Default` is the usual primary.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The TSIG key may transfer (AXFR/IXFR) the zone; nobody else may. When false,
    /// every transfer is refused. Default true.
    pub allow_transfer: bool,
    /// The TSIG key may UPDATE the zone (BIND, Knot; ignored for NSD and secondaries).
    /// Default true.
    pub allow_update: bool,
    /// Keep an IXFR history: BIND `ixfr-from-differences` + journal, Knot
    /// `zonefile-load: difference` + `journal-content: changes`. Default true.
    pub ixfr: bool,
    /// Where to send TSIG-signed NOTIFYs when the zone changes (and on load).
    pub notify_to: Vec<SocketAddr>,
    /// Start as a secondary transferring the zone from this primary, with the key
    /// (`key`, or else the key of the fixture server listening there). The records
    /// of the [`ZoneContent`] are ignored; only its origin counts. Ready once the
    /// zone is transferred. Accepts NOTIFY from 127.0.0.1 (signed or not).
    pub secondary_of: Option<SocketAddr>,
    /// BIND `max-records-per-type` (BIND's own default is 100). Ignored by Knot/NSD.
    pub max_records_per_type: Option<u32>,
    /// The TSIG key; a fresh hmac-sha256 [`DEFAULT_KEY_NAME`] key when `None`.
    pub key: Option<TsigKey>,
    /// How long to wait for the first SOA answer. `None`: 20 s plus 1 s per 20k
    /// records for a primary, 60 s for a secondary.
    pub ready_timeout: Option<Duration>,
    /// BIND only: more primary zones (origins) served beside the main one, each with just
    /// SOA and NS, updatable and transferable with the same key.
    pub extra_zones: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            allow_transfer: true,
            allow_update: true,
            ixfr: true,
            notify_to: Vec::new(),
            secondary_of: None,
            max_records_per_type: None,
            key: None,
            ready_timeout: None,
            extra_zones: Vec::new(),
        }
    }
}

/// One running DNS server; stopped and cleaned up on drop.
pub struct DnsServer {
    /// Which daemon runs.
    pub kind: ServerKind,
    /// 127.0.0.1 and the port it listens on, UDP and TCP.
    pub addr: SocketAddr,
    /// The key allowed to transfer and update.
    pub key: TsigKey,
    /// The zone origin, absolute (`example.com.`).
    pub zone: String,
    dir: TempDir,
    child: Option<Child>,
}

/// Keys of the servers this process started, so a secondary finds its primary's key.
fn key_registry() -> &'static Mutex<HashMap<SocketAddr, TsigKey>> {
    static REGISTRY: OnceLock<Mutex<HashMap<SocketAddr, TsigKey>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

impl DnsServer {
    /// Starts `kind` serving `zone` and waits until it answers an SOA query.
    /// Panics with the server's log when it does not come up.
    pub fn start(kind: ServerKind, zone: &ZoneContent, opts: ServerOptions) -> DnsServer {
        let key = match (&opts.key, opts.secondary_of) {
            (Some(k), _) => k.clone(),
            (None, Some(primary)) => key_registry()
                .lock()
                .unwrap()
                .get(&primary)
                .cloned()
                .unwrap_or_else(|| {
                    panic!("no fixture server at {primary}: set ServerOptions::key to its key")
                }),
            (None, None) => TsigKey::generate(DEFAULT_KEY_NAME, "hmac-sha256"),
        };
        let timeout = opts.ready_timeout.unwrap_or_else(|| {
            if opts.secondary_of.is_some() {
                // The primary's size is unknown here; a 1M-record transfer fits.
                Duration::from_secs(60)
            } else {
                // Loading 1M records takes 8-20 s on a busy 2-core machine.
                Duration::from_secs(20) + Duration::from_millis(zone.records.len() as u64 / 20)
            }
        });

        let mut last_log = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("zk-dns-")
                .tempdir()
                .unwrap();
            let port = free_port();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let mut server = DnsServer {
                kind,
                addr,
                key: key.clone(),
                zone: zone.origin.clone(),
                dir,
                child: None,
            };
            server.write_config(zone, &opts);
            server.spawn();
            match server.wait_ready(timeout) {
                Ready::Yes => {
                    key_registry().lock().unwrap().insert(addr, key.clone());
                    return server;
                }
                Ready::PortTaken => {
                    last_log = server.log();
                    eprintln!("{kind:?} start attempt {attempt}: port {port} taken, retrying");
                }
                Ready::Failed(why) => {
                    panic!(
                        "{kind:?} did not start on {addr}: {why}\n--- log ---\n{}",
                        server.log()
                    )
                }
            }
        }
        panic!("{kind:?} could not find a free port in {START_ATTEMPTS} attempts\n{last_log}");
    }

    /// Starts `kind` as a secondary of `primary` for its zone, with its key.
    pub fn start_secondary_of(
        kind: ServerKind,
        primary: &DnsServer,
        opts: ServerOptions,
    ) -> DnsServer {
        let opts = ServerOptions {
            secondary_of: Some(primary.addr),
            key: Some(primary.key.clone()),
            ..opts
        };
        DnsServer::start(kind, &ZoneContent::new(&primary.zone, Vec::new()), opts)
    }

    /// The zone's SOA serial, from one UDP query; `None` without an authoritative answer.
    pub fn soa_serial(&self) -> Option<u32> {
        query_soa_serial(self.addr, &self.zone, Duration::from_secs(2))
    }

    /// Polls the SOA until its serial is `serial` (or, in serial arithmetic, later).
    pub fn wait_for_serial(&self, serial: u32, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        loop {
            if let Some(s) = self.soa_serial()
                && (s == serial || serial_gt(s, serial))
            {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The zone as `dig axfr` with our key prints it: one record per line, fields
    /// separated by one space (`www.example.com. 3600 IN A 192.0.2.1`, TXT as
    /// `"a b" "c"`, AAAA compressed), SOA once (first), no comments or TSIG.
    /// Panics if the transfer fails.
    pub fn axfr_lines(&self) -> Vec<String> {
        self.try_axfr_lines()
            .unwrap_or_else(|e| panic!("AXFR of {} from {:?} failed: {e}", self.zone, self.kind))
    }

    /// Like [`DnsServer::axfr_lines`], but a refused or broken transfer is an `Err`
    /// holding dig's output.
    pub fn try_axfr_lines(&self) -> Result<Vec<String>, String> {
        self.dig_transfer("AXFR", &["+onesoa"])
    }

    /// `dig ixfr=<from_serial>` with our key, lines as in [`DnsServer::axfr_lines`] but
    /// every SOA kept: an incremental answer is `new SOA, (old SOA, deletions, new SOA,
    /// additions)…, new SOA`; a server without that history answers with a full AXFR.
    pub fn try_ixfr_lines(&self, from_serial: u32) -> Result<Vec<String>, String> {
        self.dig_transfer(&format!("IXFR={from_serial}"), &[])
    }

    fn dig_transfer(&self, qtype: &str, extra: &[&str]) -> Result<Vec<String>, String> {
        let out = Command::new("dig")
            .args(["+nocmd", "+nocomments", "+nostats", "+noquestion"])
            .args(extra)
            .args(["+time=5", "+tries=1", "-b", "127.0.0.1"])
            .arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string()])
            .args(["-y", &self.key.dig_arg()])
            .args([qtype, &self.zone])
            .output()
            .unwrap();
        let (records, comments) = dig_record_lines(&out.stdout);
        // dig reports a refused or unverifiable transfer in comments and still exits 0.
        let failed = comments
            .iter()
            .any(|c| c.starts_with(";;") || c.contains("Transfer failed"));
        let soa_first = records
            .first()
            .is_some_and(|r| record_type_of(r) == Some("SOA"));
        if !out.status.success() || failed || !soa_first {
            return Err(format!(
                "dig exit {:?}\n{}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(records
            .into_iter()
            .filter(|l| record_type_of(l) != Some("TSIG"))
            .collect())
    }

    /// Runs `script` through `nsupdate -y` with our key against this server; panics
    /// with nsupdate's output when it fails. `server` and `zone` lines are prepended
    /// and a final `send` appended when the script lacks them.
    pub fn nsupdate(&self, script: &str) {
        if let Err(e) = self.try_nsupdate(script) {
            panic!("nsupdate against {:?} failed: {e}", self.kind);
        }
    }

    /// Like [`DnsServer::nsupdate`], returning nsupdate's output on failure
    /// (e.g. `update failed: REFUSED`).
    pub fn try_nsupdate(&self, script: &str) -> Result<(), String> {
        let has = |cmd: &str| {
            script
                .lines()
                .any(|l| l.split_whitespace().next() == Some(cmd))
        };
        let mut full = String::new();
        if !has("server") {
            writeln!(full, "server {} {}", self.addr.ip(), self.addr.port()).unwrap();
        }
        if !has("zone") {
            writeln!(full, "zone {}", self.zone).unwrap();
        }
        full.push_str(script);
        if !full.ends_with('\n') {
            full.push('\n');
        }
        if !has("send") {
            full.push_str("send\n");
        }
        let (status, out) = run_with_input(
            // TCP: a big UPDATE does not fit a datagram.
            Command::new("nsupdate").args(["-v", "-t", "10", "-y", &self.key.dig_arg()]),
            &full,
        );
        if status.success() {
            Ok(())
        } else {
            Err(format!("exit {:?}\n{out}", status.code()))
        }
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        let mut log = fs::read_to_string(self.path("server.log")).unwrap_or_default();
        if let Ok(extra) = fs::read_to_string(self.path("nsd.log")) {
            log.push_str(&extra);
        }
        log
    }

    /// The temporary directory holding config, zone file, journal and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the daemon process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn write_config(&self, zone: &ZoneContent, opts: &ServerOptions) {
        if opts.secondary_of.is_none() {
            zone.write_zone_file(&self.path("zone.db"));
        }
        for (i, origin) in opts.extra_zones.iter().enumerate() {
            ZoneContent::new(origin, vec![]).write_zone_file(&self.path(&format!("extra-{i}.db")));
        }
        let conf = match self.kind {
            ServerKind::Bind => self.bind_config(opts),
            ServerKind::Knot => self.knot_config(opts),
            ServerKind::Nsd => self.nsd_config(opts),
        };
        fs::write(self.path("server.conf"), conf).unwrap();
    }

    fn bind_config(&self, opts: &ServerOptions) -> String {
        let d = self.dir.path().display();
        let k = &self.key;
        let mut c = String::new();
        writeln!(
            c,
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    check-integrity no;
    minimal-responses yes;"#,
            port = self.addr.port()
        )
        .unwrap();
        if let Some(max) = opts.max_records_per_type {
            writeln!(c, "    max-records-per-type {max};").unwrap();
        }
        c.push_str("};\ncontrols { };\n");
        writeln!(
            c,
            "key \"{}\" {{ algorithm {}; secret \"{}\"; }};",
            k.name, k.algorithm, k.secret_b64
        )
        .unwrap();
        let transfer = if opts.allow_transfer {
            format!("key \"{}\";", k.name)
        } else {
            "none;".to_string()
        };
        writeln!(c, "zone \"{}\" {{", self.zone).unwrap();
        writeln!(c, "    allow-transfer {{ {transfer} }};").unwrap();
        if let Some(primary) = opts.secondary_of {
            writeln!(c, "    type secondary;\n    file \"secondary.db\";").unwrap();
            writeln!(
                c,
                "    primaries {{ {} port {} key \"{}\"; }};",
                primary.ip(),
                primary.port(),
                k.name
            )
            .unwrap();
            writeln!(c, "    allow-notify {{ 127.0.0.1; }};").unwrap();
        } else {
            writeln!(c, "    type primary;\n    file \"zone.db\";").unwrap();
            writeln!(c, "    journal \"zone.db.jnl\";").unwrap();
            let update = if opts.allow_update {
                format!("key \"{}\";", k.name)
            } else {
                "none;".to_string()
            };
            writeln!(c, "    allow-update {{ {update} }};").unwrap();
            let ixfr = if opts.ixfr { "yes" } else { "no" };
            writeln!(c, "    ixfr-from-differences {ixfr};").unwrap();
        }
        if opts.notify_to.is_empty() {
            writeln!(c, "    notify no;").unwrap();
        } else {
            let targets: String = opts
                .notify_to
                .iter()
                .map(|a| format!("{} port {} key \"{}\"; ", a.ip(), a.port(), k.name))
                .collect();
            // notify-delay defaults to 5 s, which would slow every NOTIFY test.
            writeln!(
                c,
                "    notify explicit;\n    notify-delay 0;\n    also-notify {{ {targets}}};"
            )
            .unwrap();
        }
        c.push_str("};\n");
        for (i, origin) in opts.extra_zones.iter().enumerate() {
            writeln!(
                c,
                "zone \"{origin}\" {{ type primary; file \"extra-{i}.db\"; journal \"extra-{i}.db.jnl\"; \
                 allow-update {{ key \"{name}\"; }}; allow-transfer {{ key \"{name}\"; }}; \
                 ixfr-from-differences yes; notify no; }};",
                name = k.name
            )
            .unwrap();
        }
        c
    }

    fn knot_config(&self, opts: &ServerOptions) -> String {
        let d = self.dir.path().display();
        let k = &self.key;
        let mut c = format!(
            r#"server:
    rundir: "{d}"
    pidfile: "{d}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 2
    background-workers: 1
control:
    listen: "{d}/knot.sock"
database:
    storage: "{d}"
    journal-db-max-size: 1G
log:
  - target: stderr
    any: info
key:
  - id: {name}
    algorithm: {alg}
    secret: {secret}
"#,
            port = self.addr.port(),
            name = k.name,
            alg = k.algorithm,
            secret = k.secret_b64,
        );
        let mut remotes = Vec::new();
        if let Some(p) = opts.secondary_of {
            remotes.push(("primary".to_string(), p));
        }
        for (i, a) in opts.notify_to.iter().enumerate() {
            remotes.push((format!("notify{i}"), *a));
        }
        if !remotes.is_empty() {
            c.push_str("remote:\n");
            for (id, a) in &remotes {
                writeln!(
                    c,
                    "  - id: {id}\n    address: {}@{}\n    key: {}",
                    a.ip(),
                    a.port(),
                    k.name
                )
                .unwrap();
            }
        }
        let mut actions = vec!["notify"];
        if opts.allow_transfer {
            actions.push("transfer");
        }
        if opts.allow_update && opts.secondary_of.is_none() {
            actions.push("update");
        }
        writeln!(
            c,
            "acl:\n  - id: with_key\n    key: {}\n    action: [{}]\n  - id: local_notify\n    address: 127.0.0.1\n    action: notify",
            k.name,
            actions.join(", ")
        )
        .unwrap();
        writeln!(c, "zone:\n  - domain: {}", self.zone).unwrap();
        writeln!(c, "    storage: \"{d}\"\n    semantic-checks: off").unwrap();
        writeln!(c, "    acl: [with_key, local_notify]").unwrap();
        if opts.secondary_of.is_some() {
            writeln!(c, "    file: \"secondary.db\"\n    master: primary").unwrap();
            writeln!(c, "    journal-content: changes").unwrap();
        } else {
            writeln!(c, "    file: \"zone.db\"").unwrap();
            if opts.ixfr {
                // Updates live in the journal only; rewriting a 1M-record file after
                // each UPDATE would dominate every test.
                writeln!(
                    c,
                    "    zonefile-load: difference\n    journal-content: changes\n    zonefile-sync: -1"
                )
                .unwrap();
            } else {
                writeln!(c, "    zonefile-load: whole\n    journal-content: none").unwrap();
            }
        }
        let notify: Vec<String> = (0..opts.notify_to.len())
            .map(|i| format!("notify{i}"))
            .collect();
        if !notify.is_empty() {
            writeln!(c, "    notify: [{}]", notify.join(", ")).unwrap();
        }
        c
    }

    fn nsd_config(&self, opts: &ServerOptions) -> String {
        let d = self.dir.path().display();
        let k = &self.key;
        let mut c = format!(
            r#"server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    database: ""
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    zonelistfile: "{d}/zone.list"
    logfile: "{d}/nsd.log"
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: no
key:
    name: "{name}"
    algorithm: {alg}
    secret: "{secret}"
zone:
    name: "{zone}"
"#,
            port = self.addr.port(),
            name = k.name,
            alg = k.algorithm,
            secret = k.secret_b64,
            zone = self.zone,
        );
        if let Some(p) = opts.secondary_of {
            writeln!(c, "    zonefile: \"secondary.db\"").unwrap();
            writeln!(c, "    request-xfr: {}@{} {}", p.ip(), p.port(), k.name).unwrap();
            writeln!(c, "    allow-notify: 127.0.0.1 NOKEY").unwrap();
            writeln!(c, "    allow-notify: 127.0.0.1 {}", k.name).unwrap();
        } else {
            writeln!(c, "    zonefile: \"zone.db\"").unwrap();
        }
        if opts.allow_transfer {
            writeln!(c, "    provide-xfr: 127.0.0.1 {}", k.name).unwrap();
        }
        for a in &opts.notify_to {
            writeln!(c, "    notify: {}@{} {}", a.ip(), a.port(), k.name).unwrap();
        }
        c
    }

    fn spawn(&mut self) {
        let conf = self.path("server.conf");
        let mut cmd = match self.kind {
            ServerKind::Bind => {
                let mut cmd = Command::new("named");
                cmd.arg("-g").arg("-n").arg("1").arg("-c").arg(&conf);
                cmd
            }
            ServerKind::Knot => {
                let mut cmd = Command::new("knotd");
                cmd.arg("-c").arg(&conf);
                cmd
            }
            ServerKind::Nsd => {
                let mut cmd = Command::new("nsd");
                cmd.arg("-d").arg("-c").arg(&conf);
                cmd
            }
        };
        let log = File::create(self.path("server.log")).unwrap();
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // NSD forks server and xfrd children: a group of its own lets drop kill them all.
            .process_group(0);
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.kind)),
        );
    }

    fn wait_ready(&mut self, timeout: Duration) -> Ready {
        let end = Instant::now() + timeout;
        loop {
            let log = self.log();
            if port_taken_in(&log) {
                self.stop();
                return Ready::PortTaken;
            }
            if let Some(fatal) = fatal_line(self.kind, &log) {
                return Ready::Failed(format!("fatal: {fatal}"));
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Ready::Failed(format!("exited with {status}"));
            }
            if query_soa_serial(self.addr, &self.zone, Duration::from_millis(200)).is_some() {
                return Ready::Yes;
            }
            if Instant::now() >= end {
                return Ready::Failed(format!("no SOA answer within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) the whole daemon: a server that is down and
    /// comes back, on the same port, as far as its clients can tell.
    pub fn pause(&self, paused: bool) {
        let Some(child) = self.child.as_ref() else {
            return;
        };
        let sig = if paused { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill")
            .args([sig, "--", &format!("-{}", child.id())])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} failed");
    }

    /// Kills the whole process group at once (nothing on disk needs a clean
    /// shutdown, and BIND would flush a big dynamic zone first), then waits until no
    /// member is left, so the port is closed when this returns.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let signal = |sig: &str| {
            Command::new("kill")
                .args([sig, "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        signal("-KILL");
        let _ = child.kill();
        let _ = child.wait();
        // NSD's server and xfrd children die on their own schedule; init reaps them.
        let end = Instant::now() + Duration::from_secs(10);
        while signal("-0") && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
        key_registry().lock().unwrap().remove(&self.addr);
    }
}

enum Ready {
    Yes,
    PortTaken,
    Failed(String),
}

fn port_taken_in(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address in use") || log.contains("address already in use")
}

/// dig's record lines with its column alignment (runs of tabs, with or without
/// spaces) made one space; spaces alone, as inside TXT strings, stay. A byte loop,
/// because a 1M-record transfer goes through it in a debug build (iterator chains
/// took 8 s there).
/// Also returns the comment lines (`;`), where dig reports errors.
fn dig_record_lines(raw: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut comments = Vec::new();
    for line in raw.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if line[0] == b';' {
            comments.push(String::from_utf8_lossy(line).into_owned());
            continue;
        }
        let mut out = Vec::with_capacity(line.len());
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'\t' || line[i] == b' ' {
                let start = i;
                let mut tab = false;
                while i < line.len() && (line[i] == b'\t' || line[i] == b' ') {
                    tab |= line[i] == b'\t';
                    i += 1;
                }
                if tab {
                    out.push(b' ');
                } else {
                    out.extend_from_slice(&line[start..i]);
                }
            } else {
                out.push(line[i]);
                i += 1;
            }
        }
        lines.push(String::from_utf8_lossy(&out).into_owned());
    }
    (lines, comments)
}

/// The type field of a single-spaced `owner ttl class type rdata` line.
fn record_type_of(line: &str) -> Option<&str> {
    line.split(' ').nth(3)
}

/// A log line saying the zone will not load, so a start can fail at once instead
/// of waiting for the whole ready timeout.
fn fatal_line(kind: ServerKind, log: &str) -> Option<&str> {
    let patterns: &[&str] = match kind {
        ServerKind::Bind => &["not loaded due to errors", "loading configuration: failure"],
        ServerKind::Knot => &["failed to load", "zone event 'load' failed"],
        // "zone example.com. file zone.db read with 1 errors"
        ServerKind::Nsd => &[" errors", "could not read zone"],
    };
    log.lines().find(|l| {
        patterns.iter().any(|p| l.contains(p))
            && !(kind == ServerKind::Nsd && l.contains(" 0 errors"))
    })
}

/// A port that is free for both UDP and TCP on 127.0.0.1 right now, and not handed
/// out before by this process (a server started on it may not have bound it yet).
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && handed_out.lock().unwrap().insert(port)
        {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// SOA serial of `zone` at `addr` from one UDP query, or `None` when there is no
/// authoritative NOERROR answer holding the SOA within `timeout`.
pub fn query_soa_serial(addr: SocketAddr, zone: &str, timeout: Duration) -> Option<u32> {
    let resp = udp_exchange(addr, zone, OpCode::Query, timeout)?;
    if resp.response_code() != ResponseCode::NoError || !resp.authoritative() {
        return None;
    }
    resp.answers().iter().find_map(|r| match r.data() {
        RData::SOA(soa) => Some(soa.serial()),
        _ => None,
    })
}

/// Sends an unsigned NOTIFY for `zone` (SOA) to `addr` from 127.0.0.1 over UDP; the
/// response code, or `None` without an answer within `timeout`.
pub fn send_notify(addr: SocketAddr, zone: &str, timeout: Duration) -> Option<ResponseCode> {
    udp_exchange(addr, zone, OpCode::Notify, timeout).map(|m| m.response_code())
}

/// One `zone`/SOA request with `op` over UDP from 127.0.0.1, and its matching response.
fn udp_exchange(addr: SocketAddr, zone: &str, op: OpCode, timeout: Duration) -> Option<Message> {
    let id = u16::from_be_bytes(random_bytes(2).try_into().unwrap());
    let mut msg = Message::new();
    msg.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(op)
        .set_authoritative(op == OpCode::Notify)
        .set_recursion_desired(false)
        .add_query(Query::query(
            Name::from_ascii(zone).unwrap(),
            RecordType::SOA,
        ));
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    sock.send_to(&msg.to_vec().unwrap(), addr).ok()?;
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        let (n, from) = sock.recv_from(&mut buf).ok()?;
        match Message::from_vec(&buf[..n]) {
            // Anything else is a stray datagram; keep waiting for ours.
            Ok(resp) if from == addr && resp.id() == id => return Some(resp),
            _ => continue,
        }
    }
    None
}

/// How a NOTIFY reached a [`NotifyListener`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A datagram (BIND, NSD).
    Udp,
    /// A TCP connection (Knot 3.2 sends NOTIFY over TCP only).
    Tcp,
}

/// A NOTIFY target on one 127.0.0.1 port, UDP and TCP, for `ServerOptions::notify_to`.
/// It does not answer: servers log the NOTIFY as failed, which tests can ignore.
pub struct NotifyListener {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl NotifyListener {
    /// Binds UDP and TCP on a port free for both.
    pub fn bind() -> NotifyListener {
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let (Ok(udp), Ok(tcp)) = (
                UdpSocket::bind((Ipv4Addr::LOCALHOST, port)),
                TcpListener::bind((Ipv4Addr::LOCALHOST, port)),
            ) else {
                continue;
            };
            udp.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            tcp.set_nonblocking(true).unwrap();
            return NotifyListener { udp, tcp };
        }
        panic!("no port for a NOTIFY listener");
    }

    /// Where servers should send NOTIFY.
    pub fn addr(&self) -> SocketAddr {
        self.udp.local_addr().unwrap()
    }

    /// The next NOTIFY for `zone` received within `deadline`, and how it came.
    pub fn receive(&self, zone: &str, deadline: Duration) -> Option<(Message, Transport)> {
        let end = Instant::now() + deadline;
        let mut buf = vec![0u8; 65535];
        while Instant::now() < end {
            if let Ok((n, _)) = self.udp.recv_from(&mut buf)
                && let Some(msg) = notify_for(&buf[..n], zone)
            {
                return Some((msg, Transport::Udp));
            }
            if let Ok((mut stream, _)) = self.tcp.accept()
                && let Some(msg) = read_tcp_message(&mut stream, &mut buf)
                    .and_then(|n| notify_for(&buf[..n], zone))
            {
                return Some((msg, Transport::Tcp));
            }
        }
        None
    }
}

fn notify_for(wire: &[u8], zone: &str) -> Option<Message> {
    let msg = Message::from_vec(wire).ok()?;
    let name = msg.query()?.name().to_ascii();
    (msg.op_code() == OpCode::Notify && name.eq_ignore_ascii_case(&absolute(zone))).then_some(msg)
}

/// One length-prefixed DNS message from a TCP stream into `buf`; its length.
fn read_tcp_message(stream: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let n = usize::from(u16::from_be_bytes(len));
    stream.read_exact(&mut buf[..n]).ok()?;
    Some(n)
}

/// Whether TCP and UDP on `addr` are both closed (connection refused / no answer).
pub fn port_closed(addr: SocketAddr, zone: &str) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err()
        && query_soa_serial(addr, zone, Duration::from_millis(300)).is_none()
}

/// RFC 1982 serial arithmetic: `a` is later than `b`.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// Runs `cmd` with `input` on its standard input; its exit status and what it printed
/// (stdout, then stderr).
pub fn run_with_input(cmd: &mut Command, input: &str) -> (std::process::ExitStatus, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    buf
}

fn absolute(origin: &str) -> String {
    if origin.ends_with('.') {
        origin.to_string()
    } else {
        format!("{origin}.")
    }
}

fn default_soa(origin: &str) -> String {
    format!(
        "@ {DEFAULT_TTL} IN SOA {DEFAULT_NS} hostmaster.{origin} {DEFAULT_SERIAL} 3600 600 86400 60"
    )
}

fn default_ns() -> String {
    format!("@ {DEFAULT_TTL} IN NS {DEFAULT_NS}")
}

/// Owner and type of a zone-file record line; `None` for blank, comment and `$` lines.
/// A line starting with whitespace inherits `prev_owner`, as in a zone file.
fn owner_and_type(line: &str, prev_owner: &str) -> Option<(String, String)> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('$') {
        return None;
    }
    let mut tokens = trimmed.split_whitespace();
    let owner = if line.starts_with(char::is_whitespace) {
        prev_owner.to_string()
    } else {
        tokens.next()?.to_string()
    };
    let rtype = tokens.find(|t| {
        !t.bytes().all(|b| b.is_ascii_digit())
            && !["IN", "CH", "HS"].contains(&t.to_ascii_uppercase().as_str())
    })?;
    Some((owner, rtype.to_string()))
}
