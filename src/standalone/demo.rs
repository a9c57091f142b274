//! `zonekeeper demo`: zonekeeper's main job with nothing installed. An embedded DNS server
//! on loopback plays the backend; the example manifests are planned, applied over the wire
//! (RFC 2136 UPDATE, TSIG), changed behind zonekeeper's back, and synced back — through the
//! same `plan`/`apply`/`sync` functions as the standalone commands.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::commands::{self, Output};
use super::manifests::Manifests;
use crate::api::zone_sync::SyncMethod;
use crate::dns::model::parse_rdata;
use crate::dns::server::{EmbeddedServer, minimal_zone};
use crate::dns::transfer::BoundsOverride;
use crate::dns::tsig::TsigKey;
use crate::dns::update::{RRsetChange, UpdateOptions, apply_changes};

/// The example DnsZone, as shipped in `examples/` (compiled in so the demo runs anywhere).
const ZONE_MANIFEST: &str = include_str!("../../examples/primary-zone.yaml");
/// The example TSIG Secret.
const SECRET_MANIFEST: &str = include_str!("../../examples/tsig-secret.yaml");

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("embedded DNS server: {0}")]
    Server(#[from] crate::dns::server::ServerError),
    #[error("example manifests: {0}")]
    Manifest(String),
    #[error("state directory {path}: {source}")]
    StateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("out-of-band UPDATE failed: {0}")]
    Update(String),
    #[error(
        "--listen {0} is not a loopback address: the example key is public, so give your own with --tsig-key-file"
    )]
    PublicKeyOffLoopback(SocketAddr),
}

/// A running demo backend: the embedded server, its key and the manifests aimed at it.
pub struct DemoBackend {
    /// The server (serving `example.com.`).
    pub server: EmbeddedServer,
    /// The generated key.
    pub key: TsigKey,
    /// The example manifests with `backend.server` and the Secret pointed at the server.
    pub manifests: Manifests,
    /// The zone's origin.
    pub origin: Name,
}

/// How `zonekeeper demo` runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Keep serving after the walk-through, until Ctrl-C.
    pub serve: bool,
    /// Where the embedded server listens (port 0: any free port).
    pub listen: SocketAddr,
    /// The key the server accepts; `None`: the key of `examples/tsig-secret.yaml`, so that the
    /// operator walkthrough can apply that Secret as it is.
    pub key: Option<TsigKey>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            serve: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            key: None,
        }
    }
}

/// The key in `examples/tsig-secret.yaml`.
pub fn example_key() -> Result<TsigKey, DemoError> {
    let bad =
        |e: &dyn std::fmt::Display| DemoError::Manifest(format!("examples/tsig-secret.yaml: {e}"));
    let secret: serde_yaml::Value = serde_yaml::from_str(SECRET_MANIFEST).map_err(|e| bad(&e))?;
    let field = |k: &str| {
        secret["stringData"][k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(&format!("stringData.{k} is missing")))
    };
    TsigKey::new(&field("name")?, &field("algorithm")?, &field("secret")?).map_err(|e| bad(&e))
}

/// The example manifests with the backend address and the Secret replaced, in memory.
pub fn demo_manifests(server: SocketAddr, key: &TsigKey) -> Result<Manifests, DemoError> {
    let bad = |e: serde_yaml::Error| DemoError::Manifest(e.to_string());
    let mut zone: serde_yaml::Value = serde_yaml::from_str(ZONE_MANIFEST).map_err(bad)?;
    zone["spec"]["backend"]["server"] = serde_yaml::Value::String(server.to_string());
    let mut secret: serde_yaml::Value = serde_yaml::from_str(SECRET_MANIFEST).map_err(bad)?;
    secret["stringData"]["name"] = serde_yaml::Value::String(key.name.to_ascii());
    secret["stringData"]["algorithm"] = serde_yaml::Value::String(key.algorithm_name());
    secret["stringData"]["secret"] = serde_yaml::Value::String(key.secret_base64());
    let mut manifests = Manifests::default();
    for (path, value) in [
        ("examples/tsig-secret.yaml", secret),
        ("examples/primary-zone.yaml", zone),
    ] {
        let text = serde_yaml::to_string(&value).map_err(bad)?;
        manifests
            .add_text(path, &text)
            .map_err(|e| DemoError::Manifest(e.to_string()))?;
    }
    Ok(manifests)
}

/// Starts the embedded server with an empty `example.com.` and builds the manifests.
pub async fn start_backend(opts: &DemoOptions) -> Result<DemoBackend, DemoError> {
    let key = match &opts.key {
        Some(key) => key.clone(),
        None => example_key()?,
    };
    // The example key is public: serving it beyond loopback would let anyone change the zone.
    if opts.key.is_none() && !opts.listen.ip().is_loopback() {
        return Err(DemoError::PublicKeyOffLoopback(opts.listen));
    }
    let origin =
        Name::from_ascii("example.com.").map_err(|e| DemoError::Manifest(e.to_string()))?;
    let ns =
        Name::from_ascii("ns1.example.com.").map_err(|e| DemoError::Manifest(e.to_string()))?;
    let server = EmbeddedServer::start(
        opts.listen,
        vec![key.clone()],
        vec![minimal_zone(&origin, &ns, 1)],
    )
    .await?;
    let manifests = demo_manifests(server.local_addr(), &key)?;
    Ok(DemoBackend {
        server,
        key,
        manifests,
        origin,
    })
}

/// What another tool does behind zonekeeper's back: one record added, one deleted.
async fn out_of_band_change(backend: &DemoBackend) -> Result<Vec<String>, DemoError> {
    let origin = &backend.origin;
    let name = |s: &str| Name::from_ascii(s).map_err(|e| DemoError::Update(e.to_string()));
    let ftp = name("ftp.example.com.")?;
    let ftp_data = parse_rdata(RecordType::A, origin, "192.0.2.80")
        .map_err(|e| DemoError::Update(e.to_string()))?;
    let sip = name("sip.example.com.")?;
    let observed: Vec<Record> = backend
        .server
        .zone(origin)
        .and_then(|z| {
            z.rrsets()
                .find(|s| s.rtype == RecordType::A && crate::dns::model::name_eq(&s.name, &sip))
                .map(|s| s.records().collect())
        })
        .unwrap_or_default();
    let changes = vec![
        RRsetChange {
            name: ftp.clone(),
            rtype: RecordType::A,
            old: Vec::new(),
            new: vec![Record::from_rdata(ftp, 300, ftp_data)],
        },
        RRsetChange {
            name: sip,
            rtype: RecordType::A,
            old: observed.clone(),
            new: Vec::new(),
        },
    ];
    let opts = UpdateOptions {
        tsig: Some(backend.key.clone()),
        ..UpdateOptions::default()
    };
    let report = apply_changes(backend.server.local_addr(), origin, &changes, &opts).await;
    if let Some((_, e)) = &report.failed {
        return Err(DemoError::Update(e.to_string()));
    }
    let mut lines = vec!["+ ftp.example.com. 300 IN A 192.0.2.80".to_string()];
    for r in observed {
        if let RData::A(a) = r.data() {
            lines.push(format!("- sip.example.com. {} IN A {a}", r.ttl()));
        }
    }
    Ok(lines)
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        "\n=== {title} {}",
        "=".repeat(70usize.saturating_sub(title.len()))
    );
}

/// Runs the demo; prints as it goes. Returns the exit code.
pub async fn run(opts: &DemoOptions) -> Result<i32, DemoError> {
    let backend = start_backend(opts).await?;
    let addr = backend.server.local_addr();
    let state_dir =
        std::env::temp_dir().join(format!("zonekeeper-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&state_dir).map_err(|source| DemoError::StateDir {
        path: state_dir.display().to_string(),
        source,
    })?;
    let result = steps(&backend, &state_dir).await;
    let _ = std::fs::remove_dir_all(&state_dir);
    let (code, text) = result?;
    print!("{text}");
    if opts.serve {
        let k = &backend.key;
        println!(
            "\nThe embedded server keeps serving example.com. on {addr} (UDP and TCP). Try:\n\n  dig @{} -p {} -y {}:{}:{} example.com AXFR\n\nPress Ctrl-C to stop.",
            addr.ip(),
            addr.port(),
            k.algorithm_name(),
            k.name.to_ascii().trim_end_matches('.'),
            k.secret_base64()
        );
        wait_for_stop().await;
    }
    backend.server.shutdown().await;
    Ok(code)
}

/// Ctrl-C, or SIGTERM from a process manager.
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn steps(backend: &DemoBackend, state_dir: &Path) -> Result<(i32, String), DemoError> {
    let addr = backend.server.local_addr();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "zonekeeper demo: an embedded authoritative DNS server on {addr} serves example.com.\n\
         with only its SOA and NS. The DnsZone in examples/primary-zone.yaml (TSIG key from\n\
         examples/tsig-secret.yaml) is applied to it over the wire with RFC 2136 UPDATEs,\n\
         exactly as the operator would."
    );
    section(&mut out, "1. zonekeeper plan");
    let (plan_code, plan) =
        commands::plan_manifests(&backend.manifests, state_dir, Output::Text).await;
    out.push_str(&plan);
    let _ = writeln!(out, "(plan exit code {plan_code}: 2 means changes pending)");

    section(&mut out, "2. zonekeeper apply: the DnsZone status");
    let (apply_code, status) = commands::apply_manifests(&backend.manifests, state_dir).await;
    out.push_str(&status);
    let serial = backend.server.serial(&backend.origin).unwrap_or(0);
    let count = backend
        .server
        .zone(&backend.origin)
        .map(|z| z.record_count())
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "(the server now serves {count} records at serial {serial})"
    );

    section(&mut out, "3. an out-of-band change (another tool's UPDATE)");
    for line in out_of_band_change(backend).await? {
        let _ = writeln!(out, "  {line}");
    }

    section(
        &mut out,
        "4. zonekeeper sync: the ZoneSync status and its change list",
    );
    let (sync_code, sync) = commands::sync_manifests(
        &backend.manifests,
        state_dir,
        None,
        SyncMethod::Auto,
        false,
        BoundsOverride::default(),
    )
    .await;
    out.push_str(&sync);

    section(
        &mut out,
        "5. zonekeeper plan again: the drift the next apply corrects",
    );
    let (_, plan2) = commands::plan_manifests(&backend.manifests, state_dir, Output::Text).await;
    out.push_str(&plan2);

    let code = if plan_code == 1 || apply_code != 0 || sync_code != 0 {
        1
    } else {
        0
    };
    Ok((code, out))
}
