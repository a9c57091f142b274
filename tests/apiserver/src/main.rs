//! `test-apiserver`: the test Kubernetes API server on its own, for kubectl and `zonekeeper run`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Serve the zonekeeper test Kubernetes API server until stopped.
#[derive(Parser)]
struct Args {
    /// Address to listen on (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write a kubeconfig pointing at the server.
    #[arg(long, default_value = "./kubeconfig")]
    kubeconfig: PathBuf,
    /// Install zonekeeper's CRDs at start (otherwise `kubectl apply -f crds/`).
    #[arg(long)]
    install_crds: bool,
    /// Print every request to stderr.
    #[arg(long)]
    log_requests: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server = zk_apiserver::TestApiServer::start_on(args.listen).await?;
    server.log_requests(args.log_requests);
    if args.install_crds {
        server.install_crds(&zonekeeper::api::crd::crds()).await;
    }
    server.write_kubeconfig(&args.kubeconfig)?;
    println!(
        "serving on {} (kubeconfig: {}); Ctrl-C to stop",
        server.url(),
        args.kubeconfig.display()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
