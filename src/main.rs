use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use zonekeeper::admission::WebhookOptions;
use zonekeeper::api::shared::Duration;
use zonekeeper::api::zone_sync::SyncMethod;
use zonekeeper::controller::context::Settings;
use zonekeeper::controller::operator::{self, LeaderOptions, OperatorOptions};
use zonekeeper::dns::transfer::BoundsOverride;
use zonekeeper::standalone::commands;
use zonekeeper::telemetry::{self, LogFormat};

/// zonekeeper: DNS zones as Kubernetes custom resources.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print both CRDs as multi-document YAML (the files in crds/ are this output).
    Crd {
        /// Write crds/ (and the chart's crds/ when present) instead of printing.
        #[arg(long)]
        write: bool,
    },
    /// Run the operator against the cluster of the current kubeconfig (or in-cluster).
    Run(Box<RunArgs>),
    /// Show what `apply` would change (exit 0: nothing, 2: changes pending, 1: error).
    Plan {
        #[command(flatten)]
        files: FileArgs,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "text")]
        output: commands::Output,
    },
    /// Apply DnsZone manifests to their servers without a cluster; prints each zone's status.
    Apply {
        #[command(flatten)]
        files: FileArgs,
    },
    /// Show zonekeeper at work with nothing installed: an embedded DNS server, the example
    /// zone planned, applied over the wire, changed out of band and synced.
    Demo {
        /// Keep the embedded server running afterwards (Ctrl-C to stop) and print how to dig it.
        #[arg(long)]
        serve: bool,
        /// Address of the embedded DNS server (UDP and TCP); port 0 picks a free port. The
        /// README's operator walkthrough uses 127.0.0.1:10053, as the examples do.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// A BIND key file the server accepts instead of the key in examples/tsig-secret.yaml
        /// (required when --listen is not a loopback address).
        #[arg(long)]
        tsig_key_file: Option<PathBuf>,
    },
    /// Transfer an existing zone (AXFR) and print a DnsZone manifest adopting it, plus a
    /// Secret template.
    Import {
        /// The server to transfer from, `host:port`.
        #[arg(long)]
        server: String,
        /// The zone.
        #[arg(long)]
        zone: String,
        /// A BIND key file (`key "name" { algorithm ...; secret "..."; };`) to sign with.
        #[arg(long)]
        tsig_key_file: Option<PathBuf>,
        /// DnsZone object name (default: the zone name, dots as dashes).
        #[arg(long)]
        name: Option<String>,
        /// Namespace of the objects.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Where to write recordsFrom ConfigMaps when the zone is too big for one object.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Keep the apex NS records in the manifest.
        #[arg(long)]
        include_apex_ns: bool,
        /// Where `plan`/`apply` keep their state: the imported RRsets are recorded there as
        /// managed, so a record later removed from the manifest is planned for deletion.
        #[arg(long, env = "ZONEKEEPER_STATE_DIR", default_value = ".zonekeeper")]
        state_dir: PathBuf,
        #[command(flatten)]
        bounds: BoundsArgs,
    },
    /// Sync zones from their servers (a ZoneSync without a cluster); prints the sync status.
    Sync {
        #[command(flatten)]
        files: FileArgs,
        /// Only this zone (zone name or DnsZone object name).
        zone: Option<String>,
        /// Always transfer the whole zone.
        #[arg(long)]
        axfr: bool,
        /// Report the difference, store nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        bounds: BoundsArgs,
    },
    /// Print a ZoneSync's complete change list (status keeps only the first 100 lines), read
    /// from the cluster of the current kubeconfig (or in-cluster), as `run` connects.
    Changes {
        /// Namespace of the ZoneSync.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// The ZoneSync's name.
        name: String,
    },
}

/// Transfer bounds; each replaces the manifest's `spec.transfer` value (or the default).
#[derive(clap::Args)]
struct BoundsArgs {
    /// Most records the transfer may carry (default 5000000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_records: Option<u64>,
    /// Most bytes of DNS messages the transfer may carry (default 1073741824).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_bytes: Option<u64>,
    /// Longest the transfer may take, e.g. `90s` or `10m` (default 10m).
    #[arg(long)]
    transfer_deadline: Option<Duration>,
}

impl BoundsArgs {
    fn into_override(self) -> BoundsOverride {
        BoundsOverride {
            deadline: self.transfer_deadline.map(|d| d.0).filter(|d| !d.is_zero()),
            max_records: self.max_records,
            max_bytes: self.max_bytes,
        }
    }
}

#[derive(clap::Args)]
struct FileArgs {
    /// Manifest files or directories (`-` for standard input); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Where ownership, snapshots and status are kept between runs.
    #[arg(long, env = "ZONEKEEPER_STATE_DIR", default_value = ".zonekeeper")]
    state_dir: PathBuf,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespace to watch; repeat for several. All namespaces when not given.
    #[arg(
        long = "namespace",
        env = "ZONEKEEPER_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Address of /metrics, /livez and /readyz.
    #[arg(long, env = "ZONEKEEPER_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Zones reconciled at once.
    #[arg(long, env = "ZONEKEEPER_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Log format.
    #[arg(
        long,
        env = "ZONEKEEPER_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    log_format: LogFormat,
    /// Elect a leader through a Lease; only the leader reconciles.
    #[arg(long, env = "ZONEKEEPER_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "ZONEKEEPER_LEASE_NAME", default_value = "zonekeeper")]
    lease_name: String,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// How long the lease is valid without renewal.
    #[arg(long, env = "ZONEKEEPER_LEASE_DURATION", default_value = "15s")]
    lease_duration: Duration,
    /// This instance's identity (lease holder, event reporter).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How long a deleted zone's record cleanup may fail before the object is let go.
    #[arg(long, env = "ZONEKEEPER_CLEANUP_TIMEOUT", default_value = "5m")]
    cleanup_timeout: Duration,
    /// Serve outgoing zone transfers (`spec.outgoing`) on this address, UDP and TCP.
    #[arg(long, env = "ZONEKEEPER_TRANSFER_ADDR")]
    transfer_addr: Option<SocketAddr>,
    #[command(flatten)]
    webhook: WebhookArgs,
}

/// The admission webhooks (all off unless `--webhook-addr` is given).
#[derive(clap::Args)]
struct WebhookArgs {
    /// Serve the admission webhooks (HTTPS) on this address, on every replica.
    #[arg(long, env = "ZONEKEEPER_WEBHOOK_ADDR")]
    webhook_addr: Option<SocketAddr>,
    /// A directory with tls.crt and tls.key (cert-manager's Secret), read at start. Without
    /// it a self-signed CA and certificate are made once, kept in --webhook-secret, and the
    /// CA is written into the webhook configurations' caBundle.
    #[arg(long, env = "ZONEKEEPER_WEBHOOK_CERT_DIR")]
    webhook_cert_dir: Option<PathBuf>,
    /// The base URL the API server calls (`https://host:port`), written into the webhook
    /// configurations' clientConfig.url (running outside the cluster). Without it they keep
    /// the chart's Service.
    #[arg(long, env = "ZONEKEEPER_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The Service in front of the webhooks (its DNS names go into the certificate).
    #[arg(
        long,
        env = "ZONEKEEPER_WEBHOOK_SERVICE",
        default_value = "zonekeeper-webhook"
    )]
    webhook_service: String,
    /// The Secret (in the operator's namespace) that keeps the self-signed certificate.
    #[arg(
        long,
        env = "ZONEKEEPER_WEBHOOK_SECRET",
        default_value = "zonekeeper-webhook-tls"
    )]
    webhook_secret: String,
    /// The operator's namespace (the Secret's and the Service's).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    webhook_namespace: String,
    /// The MutatingWebhookConfiguration to keep the caBundle (and URL) of.
    #[arg(
        long,
        env = "ZONEKEEPER_WEBHOOK_MUTATING_CONFIGURATION",
        default_value = "zonekeeper"
    )]
    webhook_mutating_configuration: String,
    /// The ValidatingWebhookConfiguration to keep the caBundle (and URL) of.
    #[arg(
        long,
        env = "ZONEKEEPER_WEBHOOK_VALIDATING_CONFIGURATION",
        default_value = "zonekeeper"
    )]
    webhook_validating_configuration: String,
    /// A user whose writes the webhooks pass unchanged (repeatable): the operator's own
    /// ServiceAccount, which creates the drift checks' ZoneSyncs.
    #[arg(long, env = "ZONEKEEPER_WEBHOOK_TRUSTED_USERS", value_delimiter = ',')]
    webhook_trusted_user: Vec<String>,
}

impl WebhookArgs {
    fn options(self) -> Option<WebhookOptions> {
        Some(WebhookOptions {
            addr: self.webhook_addr?,
            cert_dir: self.webhook_cert_dir,
            url: self.webhook_url,
            namespace: self.webhook_namespace,
            service: self.webhook_service,
            secret: self.webhook_secret,
            mutating_configuration: self.webhook_mutating_configuration,
            validating_configuration: self.webhook_validating_configuration,
            trusted_users: self.webhook_trusted_user,
        })
    }
}

fn write_crds() -> anyhow::Result<()> {
    for dir in ["crds", "charts/zonekeeper/crds"] {
        let dir = std::path::Path::new(dir);
        if !dir.exists() {
            continue;
        }
        for crd in zonekeeper::api::crd::crds() {
            let path = dir.join(zonekeeper::api::crd::file_name(&crd));
            std::fs::write(&path, zonekeeper::api::crd::crd_yaml(&crd)?)?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init_logging(args.log_format);
    let client = kube::Client::try_default().await?;
    let identity = args
        .identity
        .unwrap_or_else(|| format!("zonekeeper-{}", std::process::id()));
    let opts = OperatorOptions {
        namespaces: args.namespaces,
        metrics_addr: args.metrics_addr,
        concurrency: args.concurrency,
        leader: args.leader_election.then_some(LeaderOptions {
            lease_name: args.lease_name,
            lease_namespace: args.lease_namespace,
            lease_duration: args.lease_duration.0,
        }),
        settings: Settings {
            cleanup_timeout: args.cleanup_timeout.0,
            ..Settings::default()
        },
        identity,
        transfer_addr: args.transfer_addr,
        webhook: args.webhook.options(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: finishing the UPDATE batches in flight");
        let _ = stop_tx.send(true);
    });
    operator::run(client, opts, stop_rx, |running| {
        tracing::info!(metrics = %running.metrics_addr, transfers = ?running.transfer_addr, "zonekeeper started");
    })
    .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

/// Prints a command's output and exits with its code.
fn finish(code: i32, text: &str) -> anyhow::Result<()> {
    if code == 1 {
        std::io::stderr().write_all(text.as_bytes())?;
    } else {
        std::io::stdout().write_all(text.as_bytes())?;
    }
    std::process::exit(code);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { write: false } => {
            let yaml = zonekeeper::api::crd::crds_yaml()?;
            std::io::stdout().write_all(yaml.as_bytes())?;
        }
        Command::Crd { write: true } => write_crds()?,
        Command::Run(args) => run(*args).await?,
        Command::Plan { files, output } => {
            let (code, text) = commands::plan(&files.files, &files.state_dir, output).await;
            finish(code, &text)?;
        }
        Command::Apply { files } => {
            let (code, text) = commands::apply(&files.files, &files.state_dir).await;
            finish(code, &text)?;
        }
        Command::Import {
            server,
            zone,
            tsig_key_file,
            name,
            namespace,
            out_dir,
            include_apex_ns,
            state_dir,
            bounds,
        } => {
            use zonekeeper::standalone::import;
            let result = async {
                let key = match tsig_key_file {
                    Some(p) => Some(import::load_key_file(&p)?),
                    None => None,
                };
                let opts = import::ImportOptions {
                    server,
                    zone,
                    key,
                    name,
                    namespace,
                    out_dir,
                    include_apex_ns,
                    state_dir: Some(state_dir),
                    bounds: bounds.into_override(),
                };
                import::import(&opts).await
            }
            .await;
            match result {
                Ok((text, notes)) => {
                    for n in notes {
                        eprintln!("{n}");
                    }
                    finish(0, &text)?;
                }
                Err(e) => finish(1, &format!("error: {e}\n"))?,
            }
        }
        Command::Demo {
            serve,
            listen,
            tsig_key_file,
        } => {
            let key = match tsig_key_file {
                Some(path) => Some(zonekeeper::standalone::import::load_key_file(&path)?),
                None => None,
            };
            let opts = zonekeeper::standalone::demo::DemoOptions { serve, listen, key };
            let code = zonekeeper::standalone::demo::run(&opts).await?;
            std::process::exit(code);
        }
        Command::Sync {
            files,
            zone,
            axfr,
            dry_run,
            bounds,
        } => {
            let method = if axfr {
                SyncMethod::Axfr
            } else {
                SyncMethod::Auto
            };
            let (code, text) = commands::sync_zones(
                &files.files,
                &files.state_dir,
                zone.as_deref(),
                method,
                dry_run,
                bounds.into_override(),
            )
            .await;
            finish(code, &text)?;
        }
        Command::Changes { namespace, name } => {
            let result = async {
                let client = kube::Client::try_default().await?;
                let lines =
                    zonekeeper::standalone::changes::read_changes(&client, &namespace, &name)
                        .await?;
                anyhow::Ok(lines)
            }
            .await;
            match result {
                Ok(lines) => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    for line in lines {
                        writeln!(out, "{line}")?;
                    }
                    out.flush()?;
                }
                Err(e) => finish(1, &format!("error: {e}\n"))?,
            }
        }
    }
    Ok(())
}
