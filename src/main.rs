use std::io::Write;

use clap::{Parser, Subcommand};

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { write: false } => {
            let yaml = zonekeeper::api::crd::crds_yaml()?;
            std::io::stdout().write_all(yaml.as_bytes())?;
        }
        Command::Crd { write: true } => {
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
        }
    }
    Ok(())
}
