//! A small launcher for real BIND, Knot and NSD instances on loopback
//! ephemeral ports, used by the engine tests until the shared fixtures
//! (tests/support/dns_servers.rs) are merged. Each instance lives in its own
//! temp dir and is killed on drop.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use zonekeeper::dns::query::{QueryOptions, query_soa};
use zonekeeper::dns::tsig::TsigKey;

/// Which server software.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Knot,
    Nsd,
}

/// How to configure the instance.
#[derive(Debug, Clone)]
pub struct Opts {
    /// TSIG key allowed to transfer and update (and required for both).
    pub key: TsigKey,
    /// Allow AXFR/IXFR with the key.
    pub allow_transfer: bool,
    /// BIND `max-records-per-type` (None: server default).
    pub max_records_per_type: Option<u32>,
    /// Secondary of this primary instead of a primary.
    pub primary: Option<SocketAddr>,
    /// Keep a journal / IXFR history (BIND `ixfr-from-differences`, Knot
    /// journal). NSD never serves IXFR of its own.
    pub journal: bool,
}

impl Opts {
    pub fn new(key: &TsigKey) -> Self {
        Self {
            key: key.clone(),
            allow_transfer: true,
            max_records_per_type: None,
            primary: None,
            journal: true,
        }
    }
}

/// A scratch directory removed on drop (no tempfile: the benchmark binary
/// reuses this file and has no dev-dependencies).
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "zk-engine-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub zone: Name,
    child: Child,
    pub dir: ScratchDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on both TCP and UDP at the time of asking.
pub fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The standard test zone head: SOA serial 1, NS, glue; `body` follows.
pub fn zone_text(zone: &str, serial: u32, body: &str) -> String {
    format!(
        "$ORIGIN {zone}\n$TTL 300\n@ 3600 IN SOA ns1.{zone} hostmaster.{zone} {serial} 3600 600 86400 300\n@ 3600 IN NS ns1.{zone}\nns1 300 IN A 127.0.0.1\n{body}"
    )
}

impl Server {
    /// Starts `kind` serving `zone` with `zone_text` (ignored for a
    /// secondary) and waits until it answers the zone's SOA.
    pub async fn start(kind: Kind, zone: &str, zone_text: &str, opts: Opts) -> Server {
        let dir = ScratchDir::new();
        let d = dir.path().to_path_buf();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let zfile = d.join("zone.db");
        if opts.primary.is_none() {
            std::fs::write(&zfile, zone_text).unwrap();
        }
        let key = &opts.key;
        let kname = key.name.to_ascii();
        let kname = kname.trim_end_matches('.');
        let alg = key.algorithm_name();
        let secret = key.secret_base64();
        let child = match kind {
            Kind::Bind => {
                let xfer = if opts.allow_transfer {
                    format!("key {kname};")
                } else {
                    "none;".into()
                };
                let mrpt = opts
                    .max_records_per_type
                    .map(|n| format!("max-records-per-type {n};"))
                    .unwrap_or_default();
                let zone_stmt = match opts.primary {
                    None => format!(
                        "zone \"{zone}\" {{ type primary; file \"{}\"; allow-transfer {{ {xfer} }}; allow-update {{ key {kname}; }}; {} }};",
                        zfile.display(),
                        if opts.journal {
                            "ixfr-from-differences yes;"
                        } else {
                            ""
                        }
                    ),
                    Some(p) => format!(
                        "zone \"{zone}\" {{ type secondary; primaries {{ {} port {} key {kname}; }}; file \"{}\"; allow-notify {{ any; }}; allow-transfer {{ {xfer} }}; }};",
                        p.ip(),
                        p.port(),
                        zfile.display()
                    ),
                };
                let conf = format!(
                    "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/session.key\"; recursion no; notify no; dnssec-validation no; {mrpt} }};\nkey {kname} {{ algorithm {alg}; secret \"{secret}\"; }};\ncontrols {{ }};\n{zone_stmt}\n",
                    d = d.display()
                );
                std::fs::write(d.join("named.conf"), conf).unwrap();
                spawn(
                    Command::new("named")
                        .args(["-g", "-u", "root", "-c"])
                        .arg(d.join("named.conf")),
                    &d,
                )
            }
            Kind::Knot => {
                let acl_actions = if opts.allow_transfer {
                    "[transfer, update, notify]"
                } else {
                    "[update, notify]"
                };
                let zone_part = match opts.primary {
                    None => format!(
                        "    file: {}\n    zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: {}\n",
                        zfile.display(),
                        if opts.journal { "changes" } else { "none" }
                    ),
                    Some(_) => format!(
                        "    file: {}\n    master: primary\n    zonefile-sync: -1\n    journal-content: changes\n",
                        zfile.display()
                    ),
                };
                let remote = match opts.primary {
                    Some(p) => format!(
                        "remote:\n  - id: primary\n    address: {}@{}\n    key: {kname}\n",
                        p.ip(),
                        p.port()
                    ),
                    None => String::new(),
                };
                let conf = format!(
                    "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n    background-workers: 1\n    tcp-workers: 2\n    udp-workers: 1\n\ndatabase:\n    storage: {d}\n\nlog:\n  - target: stderr\n    any: info\n\nkey:\n  - id: {kname}\n    algorithm: {alg}\n    secret: {secret}\n\n{remote}acl:\n  - id: withkey\n    key: {kname}\n    action: {acl_actions}\n  - id: notifier\n    address: 127.0.0.1\n    action: notify\n\nzone:\n  - domain: {zone}\n    storage: {d}\n    acl: [withkey, notifier]\n{zone_part}",
                    d = d.display()
                );
                std::fs::write(d.join("knot.conf"), conf).unwrap();
                spawn(Command::new("knotd").arg("-c").arg(d.join("knot.conf")), &d)
            }
            Kind::Nsd => {
                let provide = if opts.allow_transfer {
                    format!("    provide-xfr: 127.0.0.1 {kname}\n")
                } else {
                    String::new()
                };
                let conf = format!(
                    "server:\n    ip-address: 127.0.0.1@{port}\n    port: {port}\n    username: \"\"\n    chroot: \"\"\n    database: \"\"\n    zonesdir: \"{d}\"\n    pidfile: \"{d}/nsd.pid\"\n    xfrdfile: \"{d}/xfrd.state\"\n    zonelistfile: \"{d}/zone.list\"\n    xfrdir: \"{d}\"\n    server-count: 1\n    verbosity: 1\n\nremote-control:\n    control-enable: no\n\nkey:\n    name: \"{kname}\"\n    algorithm: {alg}\n    secret: \"{secret}\"\n\nzone:\n    name: \"{zone}\"\n    zonefile: \"{}\"\n{provide}",
                    zfile.display(),
                    d = d.display()
                );
                std::fs::write(d.join("nsd.conf"), conf).unwrap();
                spawn(
                    Command::new("nsd")
                        .args(["-d", "-c"])
                        .arg(d.join("nsd.conf")),
                    &d,
                )
            }
        };
        let mut server = Server {
            kind,
            addr,
            zone: Name::from_ascii(zone).unwrap(),
            dir,
            child,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        let opts = QueryOptions {
            tsig: None,
            timeout: Duration::from_millis(300),
            attempts: 1,
        };
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{:?} exited with {status}: {}", self.kind, self.log());
            }
            if query_soa(self.addr, &self.zone, &opts).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} not ready: {}",
                self.kind,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Serial as the server answers it now.
    pub async fn serial(&self) -> u32 {
        query_soa(self.addr, &self.zone, &QueryOptions::default())
            .await
            .unwrap()
    }

    /// Runs `nsupdate` with `script` (server and zone lines are added).
    pub fn nsupdate(&self, key: &TsigKey, script: &str) {
        let full = format!(
            "server {} {}\nzone {}\n{script}\nsend\n",
            self.addr.ip(),
            self.addr.port(),
            self.zone
        );
        let path = self.dir.path().join("nsupdate.txt");
        std::fs::write(&path, full).unwrap();
        let out = Command::new("nsupdate")
            .arg("-y")
            .arg(format!(
                "{}:{}:{}",
                key.algorithm_name(),
                key.name.to_ascii().trim_end_matches('.'),
                key.secret_base64()
            ))
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nsupdate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `dig axfr` record lines (SOA once), for a reference count.
    pub fn dig_axfr_count(&self, key: &TsigKey) -> usize {
        let out = Command::new("dig")
            .args([
                "+noall",
                "+answer",
                "+onesoa",
                "-p",
                &self.addr.port().to_string(),
                "-y",
            ])
            .arg(format!(
                "{}:{}:{}",
                key.algorithm_name(),
                key.name.to_ascii().trim_end_matches('.'),
                key.secret_base64()
            ))
            .arg(format!("@{}", self.addr.ip()))
            .arg(self.zone.to_ascii())
            .arg("axfr")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
            .count()
    }
}

fn spawn(cmd: &mut Command, dir: &std::path::Path) -> Child {
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let err = log.try_clone().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap()
}

pub fn tmp_path(s: &Server, name: &str) -> PathBuf {
    s.dir.path().join(name)
}
