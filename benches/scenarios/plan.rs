//! The standalone commands on big zones (issue 18): `import-1m-bind` and
//! `plan-100k-records-{list,from}-bind`, the `zonekeeper` binary run as a user would, its
//! peak_rss_mb read by `/usr/bin/time`, the floor a `dig axfr` of the same zone (both commands
//! transfer the whole zone; a no-change plan then only compares).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Kind, Server, ZONE, external_axfr, ip, line, start};

/// Runs the `zonekeeper` binary under `/usr/bin/time`: wall time, peak RSS in MB, exit code.
pub fn zonekeeper_run(
    dir: &Path,
    args: &[&str],
    stdout: Stdio,
) -> anyhow::Result<(Duration, f64, i32)> {
    timed(
        dir,
        Path::new(env!("CARGO_BIN_EXE_zonekeeper")),
        args,
        stdout,
    )
}

/// A command under `/usr/bin/time`: wall time, peak RSS in MB, exit code.
pub fn timed(
    dir: &Path,
    program: &Path,
    args: &[&str],
    stdout: Stdio,
) -> anyhow::Result<(Duration, f64, i32)> {
    let rss = dir.join("rss.txt");
    let t = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss)
        .arg(program)
        .args(args)
        .current_dir(dir)
        .stdout(stdout)
        .stderr(Stdio::null())
        .status()?;
    let elapsed = t.elapsed();
    let kb: f64 = std::fs::read_to_string(&rss)?
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .parse()?;
    Ok((elapsed, kb / 1024.0, status.code().unwrap_or(-1)))
}

/// Secret and DnsZone for the fixture's zone, the records given as a `records:` list.
pub fn records_list_manifest(server: &Server, n: usize) -> String {
    let k = &server.key;
    let mut doc = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: bench-tsig, namespace: default}}\n\
         stringData: {{name: {}, algorithm: {}, secret: {}}}\n---\n\
         apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\n\
         metadata: {{name: bench-test, namespace: default}}\nspec:\n  zoneName: {ZONE}\n\
         \x20 type: Primary\n  backend:\n    server: \"{}\"\n    tsigKeySecretRef: {{name: bench-tsig}}\n\
         \x20 management: {{prune: false}}\n  records:\n",
        k.name, k.algorithm, k.secret_b64, server.addr
    );
    for i in 0..n {
        let [a, b, c, d] = ip(i);
        doc.push_str(&format!(
            "  - name: h{i}\n    type: A\n    ttl: 300\n    data: [\"{a}.{b}.{c}.{d}\"]\n"
        ));
    }
    doc
}

/// `import` of the fixture's zone into `dir` (ConfigMaps under `dir/cms`), the Secret
/// template filled in so the manifest plans as is.
fn import_into(server: &Server, dir: &Path) -> anyhow::Result<(Duration, f64)> {
    let k = &server.key;
    std::fs::write(
        dir.join("key.conf"),
        format!(
            "key \"{}\" {{ algorithm {}; secret \"{}\"; }};\n",
            k.name, k.algorithm, k.secret_b64
        ),
    )?;
    let addr = server.addr.to_string();
    let out = dir.join("import.out");
    let args = [
        "import",
        "--server",
        &addr,
        "--zone",
        ZONE,
        "--tsig-key-file",
        "key.conf",
        "--out-dir",
        "cms",
        "--state-dir",
        "state",
    ];
    let (elapsed, peak, code) = zonekeeper_run(dir, &args, std::fs::File::create(&out)?.into())?;
    anyhow::ensure!(code == 0, "zonekeeper import exited {code}");
    let manifest =
        std::fs::read_to_string(&out)?.replace("REPLACE-WITH-THE-BASE64-SECRET", &k.secret_b64);
    std::fs::write(dir.join("cms").join("zone.yaml"), manifest)?;
    std::fs::remove_file(&out)?;
    Ok((elapsed, peak))
}

/// The standalone commands on big zones (issue 18).
pub async fn standalone_scenarios(max: usize) -> anyhow::Result<()> {
    if max >= 100_000 {
        let server = start(Kind::Bind, 100_000);
        let floor = external_axfr("dig", &server, "AXFR")?;
        let dir = tempfile::tempdir()?;
        import_into(&server, dir.path())?;
        let (mut ours, mut peak) = (Duration::MAX, 0.0f64);
        for _ in 0..3 {
            let (t, rss, code) = zonekeeper_run(
                dir.path(),
                &["plan", "-f", "cms", "--state-dir", "state"],
                Stdio::null(),
            )?;
            anyhow::ensure!(code == 0, "plan of the imported zone exited {code}");
            ours = ours.min(t);
            peak = peak.max(rss);
        }
        line("plan-100k-records-from-bind", ours, floor, peak);
        let list = tempfile::tempdir()?;
        std::fs::write(
            list.path().join("zone.yaml"),
            records_list_manifest(&server, 100_000),
        )?;
        let (mut ours, mut peak) = (Duration::MAX, 0.0f64);
        for _ in 0..3 {
            let (t, rss, code) = zonekeeper_run(
                list.path(),
                &["plan", "-f", "zone.yaml", "--state-dir", "state"],
                Stdio::null(),
            )?;
            anyhow::ensure!(code == 0, "plan of the records list exited {code}");
            ours = ours.min(t);
            peak = peak.max(rss);
        }
        line("plan-100k-records-list-bind", ours, floor, peak);
    }
    if max >= 1_000_000 {
        let server = start(Kind::Bind, 1_000_000);
        let floor = external_axfr("dig", &server, "AXFR")?;
        let dir = tempfile::tempdir()?;
        let (ours, peak) = import_into(&server, dir.path())?;
        line("import-1m-bind", ours, floor, peak);
    }
    Ok(())
}
