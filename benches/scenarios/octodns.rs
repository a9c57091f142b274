//! octoDNS side by side (issue 18): octoDNS 1.22 with octodns-bind 1.1 (its RFC 2136
//! provider: AXFR to read, UPDATE to write), the tool a user would pick instead for "DNS as
//! code" on such servers, against the same kind of BIND on the same machine in the same run.
//! `apply-<n>`: n new A records into an empty zone (`zonekeeper apply` of a `records:` list,
//! `octodns-sync --doit` of the same records in its YAML); `plan-<n>`: the no-change plan
//! that follows. Each tool gets its own fresh BIND.
//! Lines: `bench scenario=peer-octodns-<op>-<n> ours_s= floor_s=<octoDNS> ratio=
//! peak_rss_mb= peer_rss_mb=`. octoDNS is installed into a virtualenv under `target/` (pip,
//! from PyPI); when that fails the scenario prints `bench scenario=peer-octodns skipped
//! reason=<why>` and no numbers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::plan::{records_list_manifest, timed, zonekeeper_run};
use super::{Kind, Server, ZONE, ip, start};

const OCTODNS: &str = "octodns==1.22.0";
const OCTODNS_BIND: &str = "octodns-bind==1.1.0";

pub fn scenarios(max: usize) -> anyhow::Result<()> {
    let venv = match venv() {
        Ok(v) => v,
        Err(e) => {
            let why = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join("_");
            println!("bench scenario=peer-octodns skipped reason={why}");
            return Ok(());
        }
    };
    for n in [10_000, 100_000] {
        if n <= max {
            side_by_side(&venv, n)?;
        }
    }
    Ok(())
}

/// The virtualenv with octoDNS, made once under `target/`.
fn venv() -> anyhow::Result<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/octodns-venv");
    let sync = venv.join("bin/octodns-sync");
    let installed = Command::new(&sync)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("1.22"));
    if installed {
        return Ok(venv);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()?;
    anyhow::ensure!(made.success(), "python3 -m venv failed");
    let pip = Command::new("timeout")
        .arg("600")
        .arg(venv.join("bin/pip"))
        .args(["install", "-q", OCTODNS, OCTODNS_BIND])
        .status()?;
    anyhow::ensure!(pip.success(), "pip install {OCTODNS} {OCTODNS_BIND} failed");
    Ok(venv)
}

/// octoDNS's config: the records in its YAML, the server as an RFC 2136 target.
fn octodns_config(dir: &Path, server: &Server, n: usize) -> anyhow::Result<()> {
    let k = &server.key;
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones)?;
    let mut records = String::from("---\n");
    for i in 0..n {
        let [a, b, c, d] = ip(i);
        records.push_str(&format!(
            "h{i}:\n  ttl: 300\n  type: A\n  value: {a}.{b}.{c}.{d}\n"
        ));
    }
    std::fs::write(zones.join(format!("{ZONE}yaml")), records)?;
    std::fs::write(
        dir.join("octodns.yaml"),
        format!(
            "providers:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    \
             directory: ./zones\n    default_ttl: 300\n    enforce_order: false\n  bind:\n    \
             class: octodns_bind.Rfc2136Provider\n    host: {}\n    port: {}\n    \
             key_name: {}\n    key_secret: {}\n    key_algorithm: {}\n\
             zones:\n  {ZONE}:\n    sources: [config]\n    targets: [bind]\n",
            server.addr.ip(),
            server.addr.port(),
            k.name,
            k.secret_b64,
            k.algorithm
        ),
    )?;
    Ok(())
}

/// Whether the server answers the last record the way both tools were asked to write it.
fn holds_last(server: &Server, n: usize) -> anyhow::Result<bool> {
    let [a, b, c, d] = ip(n - 1);
    let out = Command::new("dig")
        .arg(format!("@{}", server.addr.ip()))
        .args(["-p", &server.addr.port().to_string(), "+short"])
        .arg(format!("h{}.{ZONE}", n - 1))
        .arg("A")
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == format!("{a}.{b}.{c}.{d}"))
}

fn peer_line(op: &str, n: usize, ours: (Duration, f64), peer: (Duration, f64)) {
    let (o, p) = (ours.0.as_secs_f64(), peer.0.as_secs_f64());
    println!(
        "bench scenario=peer-octodns-{op}-{n} ours_s={o:.4} floor_s={p:.4} ratio={:.3} \
         peak_rss_mb={:.1} peer_rss_mb={:.1}",
        o / p,
        ours.1,
        peer.1
    );
}

fn side_by_side(venv: &Path, n: usize) -> anyhow::Result<()> {
    let ours_server = start(Kind::Bind, 0);
    let ours_dir = tempfile::tempdir()?;
    std::fs::write(
        ours_dir.path().join("zone.yaml"),
        records_list_manifest(&ours_server, n),
    )?;
    let args = |cmd| [cmd, "-f", "zone.yaml", "--state-dir", "state"];
    let (t, rss, code) = zonekeeper_run(ours_dir.path(), &args("apply"), Stdio::null())?;
    anyhow::ensure!(code == 0, "zonekeeper apply exited {code}");
    anyhow::ensure!(
        holds_last(&ours_server, n)?,
        "zonekeeper apply wrote no records"
    );
    let ours_apply = (t, rss);
    let (t, rss, code) = zonekeeper_run(ours_dir.path(), &args("plan"), Stdio::null())?;
    anyhow::ensure!(code == 0, "zonekeeper plan after apply exited {code}");
    let ours_plan = (t, rss);

    let peer_server = start(Kind::Bind, 0);
    let peer_dir = tempfile::tempdir()?;
    octodns_config(peer_dir.path(), &peer_server, n)?;
    let sync = venv.join("bin/octodns-sync");
    let config = ["--config-file", "octodns.yaml"];
    let (t, rss, code) = timed(
        peer_dir.path(),
        &sync,
        &[config[0], config[1], "--doit"],
        Stdio::null(),
    )?;
    anyhow::ensure!(code == 0, "octodns-sync --doit exited {code}");
    anyhow::ensure!(
        holds_last(&peer_server, n)?,
        "octodns-sync wrote no records"
    );
    let peer_apply = (t, rss);
    let (t, rss, code) = timed(peer_dir.path(), &sync, &config, Stdio::null())?;
    anyhow::ensure!(code == 0, "octodns-sync plan exited {code}");
    let peer_plan = (t, rss);

    peer_line("apply", n, ours_apply, peer_apply);
    peer_line("plan", n, ours_plan, peer_plan);
    Ok(())
}
