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
    /// Bearer tokens, as kube-apiserver's flag: CSV lines `token,user,uid,"group1,group2"`.
    /// The written kubeconfig uses the first line's token.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// `RBAC` checks every request against the stored Roles and bindings; `AlwaysAllow`
    /// (the default) allows everything.
    #[arg(long, default_value = "AlwaysAllow", value_parser = ["AlwaysAllow", "RBAC"])]
    authorization_mode: String,
    /// Whether a request without a token is `system:anonymous` (true) or 401 (false).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let tokens = match &args.token_auth_file {
        Some(path) => zk_apiserver::parse_token_file(path).map_err(std::io::Error::other)?,
        None => Vec::new(),
    };
    let first_token = tokens.first().map(|t| t.token.clone());
    let options = zk_apiserver::Options {
        tokens,
        rbac: args.authorization_mode == "RBAC",
        anonymous: args.anonymous_auth,
        // kubectl sends tokens only over TLS.
        tls: first_token.is_some(),
    };
    let server = zk_apiserver::TestApiServer::start_on_with(args.listen, options).await?;
    server.log_requests(args.log_requests);
    if args.install_crds {
        server.install_crds(&zonekeeper::api::crd::crds()).await;
    }
    match &first_token {
        Some(t) => server.write_kubeconfig_with_token(&args.kubeconfig, t)?,
        None => server.write_kubeconfig(&args.kubeconfig)?,
    }
    println!(
        "serving on {} (kubeconfig: {}); Ctrl-C to stop",
        server.url(),
        args.kubeconfig.display()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
