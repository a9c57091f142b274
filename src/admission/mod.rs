//! Admission control for DnsZone and ZoneSync writes: a mutating webhook that records who
//! made a change (and gives RRsets of shared zones their creator's group), and a validating
//! webhook (`acl.dns.zonekeeper.io`) that enforces the zone's ACL (VinylDNS semantics).
pub mod acl;
pub mod certs;
pub mod review;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the mutating webhook is served.
pub const MUTATE_PATH: &str = "/mutate";
/// Where the validating webhook is served.
pub const VALIDATE_PATH: &str = "/validate";

/// `zonekeeper run --webhook-*`.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    pub addr: SocketAddr,
    /// `tls.crt`/`tls.key` (cert-manager); `None`: self-signed, kept in `secret`.
    pub cert_dir: Option<PathBuf>,
    /// Base URL the API server calls (out of cluster); `None`: the chart's Service.
    pub url: Option<String>,
    /// The operator's namespace: the Secret and the Service live there.
    pub namespace: String,
    /// The Service in front of the webhook (its names go into the certificate).
    pub service: String,
    /// The Secret holding the self-signed CA and serving certificate.
    pub secret: String,
    pub mutating_configuration: String,
    pub validating_configuration: String,
    /// Users whose writes pass unchanged and unchecked: the operator's own ServiceAccount,
    /// which creates ZoneSyncs for drift checks and marks them as its own.
    pub trusted_users: Vec<String>,
}

impl WebhookOptions {
    /// The names the self-signed serving certificate is valid for: the Service's DNS names
    /// and the host of `url`.
    pub fn names(&self) -> Vec<String> {
        let (svc, ns) = (&self.service, &self.namespace);
        let mut names = vec![
            svc.clone(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local"),
        ];
        if let Some(host) = self.url.as_deref().and_then(url_host) {
            names.push(host);
        }
        names
    }
}

/// The host of an `https://host[:port][/path]` URL, IPv6 brackets removed.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Why the webhooks cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot make the webhook certificate: {0}")]
    Certificate(String),
    #[error("cannot read webhook certificate file {path}: {source}")]
    CertFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("webhook TLS: {0}")]
    Tls(String),
    #[error("webhook certificate Secret {namespace}/{name}: {source}")]
    Secret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("webhook certificate Secret {namespace}/{name} lacks tls.crt or tls.key")]
    SecretContent { namespace: String, name: String },
    #[error("webhook configuration {name}: {source}")]
    Configuration {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot serve the webhooks on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://127.0.0.1:9443/x").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("https://[::1]:9443").as_deref(), Some("::1"));
        assert_eq!(
            url_host("https://zk.example.com").as_deref(),
            Some("zk.example.com")
        );
    }
}
