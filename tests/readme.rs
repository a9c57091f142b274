//! The README's command blocks, run as a newcomer would copy them: the quick start and the
//! local operator walkthrough. Only `cargo run` is short-circuited to the binaries this test
//! run already built (cargo holds its build lock while tests run); every other line runs in
//! bash exactly as written.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ZK: &str = env!("CARGO_BIN_EXE_zonekeeper");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The lines of the ```sh block that follows `<!-- walkthrough:NAME -->` in README.md.
fn block(name: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- walkthrough:{name} -->");
    let start = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"));
    let rest = &readme[start..];
    let open = rest
        .find("```sh\n")
        .expect("no ```sh block after the marker")
        + 6;
    let close = rest[open..].find("```").expect("unclosed block") + open;
    rest[open..close].lines().map(str::to_string).collect()
}

/// bash with `cargo run [--release] [-p zk-apiserver] -- ARGS` mapped to the built binaries.
fn bash(script: &str, dir: &Path) -> Command {
    let apiserver = Path::new(ZK).with_file_name("test-apiserver");
    assert!(
        apiserver.exists(),
        "{} is not built: run the suite with `cargo test --workspace`",
        apiserver.display()
    );
    let prelude = format!(
        r#"cargo() {{
  case "$*" in
    "run -- "*) shift 2; exec "{zk}" "$@" ;;
    "run --release -- "*) shift 3; exec "{zk}" "$@" ;;
    "run -p zk-apiserver -- "*) shift 4; exec "{api}" "$@" ;;
    *) echo "README test: unexpected cargo $*" >&2; exit 99 ;;
  esac
}}
"#,
        zk = ZK,
        api = apiserver.display()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("{prelude}{script}"))
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("KUBECONFIG");
    cmd
}

/// A terminal left running; killed (with its process group) when dropped.
struct Terminal {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Terminal {
    fn start(script: &str, dir: &Path) -> Terminal {
        use std::os::unix::process::CommandExt;
        let mut child = bash(script, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Terminal {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`, as a reader watches the terminal.
    fn wait_for(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no {needle:?} within {within:?}; the terminal printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // The process group too: a line may have started children of its own.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits the block at its `# terminal N` comments.
fn terminals(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        if line.starts_with("# terminal") {
            out.push(String::new());
        } else if let Some(script) = out.last_mut() {
            script.push_str(line);
            script.push('\n');
        }
    }
    out
}

fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("examples"), dir.path().join("examples")).unwrap();
    dir
}

#[test]
fn quick_start_runs_as_written() {
    let lines = block("quickstart");
    let commands: Vec<&String> = lines
        .iter()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(commands.len(), 2, "{lines:?}");
    // The second command is the suite itself, which is what CI runs; running it from inside the
    // suite would recurse, so the test checks that CI runs exactly it.
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(
        ci.lines()
            .any(|l| l.trim() == format!("exec {}", commands[1].trim())),
        ".ci/run does not run the README's test command {:?}:\n{ci}",
        commands[1]
    );
    let dir = workdir();
    let out = bash(commands[0], dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("phase: Complete"), "{stdout}");
}

#[test]
fn operator_walkthrough_runs_as_written() {
    let scripts = terminals(&block("operator"));
    assert_eq!(
        scripts.len(),
        4,
        "the walkthrough has four terminals: {scripts:?}"
    );
    let dir = workdir();
    let mut dns = Terminal::start(&scripts[0], dir.path());
    dns.wait_for("Press Ctrl-C", Duration::from_secs(60));
    let mut api = Terminal::start(&scripts[1], dir.path());
    api.wait_for("serving on", Duration::from_secs(60));
    let mut operator = Terminal::start(&scripts[2], dir.path());
    let out = bash(&format!("set -e\n{}", scripts[3]), dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let context = format!(
        "terminal 4:\n{stdout}\n{}\noperator:\n{}\napi server:\n{}",
        String::from_utf8_lossy(&out.stderr),
        operator.output(),
        api.output()
    );
    assert_eq!(out.status.code(), Some(0), "{context}");
    assert!(
        stdout.contains("dnszone.dns.zonekeeper.io/example-com condition met"),
        "{context}"
    );
    let get = stdout
        .lines()
        .find(|l| l.starts_with("example-com "))
        .unwrap_or_else(|| panic!("kubectl get dnszones shows no example-com:\n{context}"));
    assert!(
        get.contains("Active") && get.contains("True"),
        "{get}\n{context}"
    );
    let answers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("192.0.2."))
        .collect();
    assert_eq!(
        answers.len(),
        2,
        "dig shows www's two A records:\n{context}"
    );
    assert!(answers.contains(&"192.0.2.10") && answers.contains(&"192.0.2.11"));
    // `--log-format text` into a pipe: plain text, no colour codes.
    let log = operator.output();
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal:\n{log}"
    );
    // A plain first apply is quiet: no failed reconcile on the way to Ready.
    assert!(!log.contains("reconcile failed"), "{log}");
    drop(operator);
    drop(api);
    drop(dns);
}
