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
    Crd,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            let yaml = zonekeeper::api::crd::crds_yaml()?;
            std::io::stdout().write_all(yaml.as_bytes())?;
        }
    }
    Ok(())
}
