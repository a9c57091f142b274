//! HTTPS serving. kubectl (client-go) only sends bearer tokens and impersonates over TLS,
//! so a server that authenticates must serve HTTPS, with a self-signed certificate for
//! 127.0.0.1 that the written kubeconfig trusts.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The CA certificate (PEM) clients trust and the rustls configuration serving its leaf.
pub(crate) struct Identity {
    pub ca_pem: Vec<u8>,
    pub config: Arc<rustls::ServerConfig>,
}

const OPENSSL_CONFIG: &str = "[req]
distinguished_name = dn
prompt = no
[dn]
CN = zk-apiserver
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign
subjectKeyIdentifier = hash
[leaf]
subjectAltName = IP:127.0.0.1,DNS:localhost{extra}
basicConstraints = critical,CA:FALSE
extendedKeyUsage = serverAuth
keyUsage = critical,digitalSignature
";

fn openssl(dir: &std::path::Path, args: &[&str]) -> io::Result<()> {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// A fresh CA and a P-256 serving certificate it signed for `127.0.0.1` and `localhost`
/// (clients refuse a CA certificate as a server's own), made by the `openssl` command: no
/// certificate-generation crate is available to the build.
pub(crate) fn self_signed() -> io::Result<Identity> {
    self_signed_for(&[])
}

/// As [`self_signed`], with more DNS names in the certificate (a webhook's
/// `<service>.<namespace>.svc`).
pub(crate) fn self_signed_for(dns_names: &[String]) -> io::Result<Identity> {
    let dir = std::env::temp_dir().join(format!(
        "zk-apiserver-tls-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir)?;
    let extra: String = dns_names.iter().map(|n| format!(",DNS:{n}")).collect();
    std::fs::write(
        dir.join("openssl.cnf"),
        OPENSSL_CONFIG.replace("{extra}", &extra),
    )?;
    let common = [
        "-config",
        "openssl.cnf",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "3650",
    ];
    let ca_args = [
        "req",
        "-x509",
        "-extensions",
        "ca",
        "-subj",
        "/CN=zk-apiserver-ca",
    ];
    let ca_out = ["-keyout", "ca.key", "-out", "ca.pem"];
    openssl(&dir, &[&ca_args[..], &common[..], &ca_out[..]].concat())?;
    let leaf_args = [
        "req",
        "-x509",
        "-extensions",
        "leaf",
        "-subj",
        "/CN=zk-apiserver",
    ];
    let leaf_out = [
        "-CA", "ca.pem", "-CAkey", "ca.key", "-keyout", "key.pem", "-out", "cert.pem",
    ];
    openssl(&dir, &[&leaf_args[..], &common[..], &leaf_out[..]].concat())?;
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let ca_pem = std::fs::read(dir.join("ca.pem"))?;
    let cert_pem = std::fs::read(&cert)?;
    let key_pem = std::fs::read(&key)?;
    let _ = std::fs::remove_dir_all(&dir);
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io::Error::other(format!("certificate PEM: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| io::Error::other(format!("key PEM: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
    // Only HTTP/1.1 is served; without this, Go clients would still fall back, but say so.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        ca_pem,
        config: Arc::new(config),
    })
}

/// Accepts TCP connections and hands out those whose TLS handshake succeeded. Handshakes
/// run in their own tasks, so a slow or broken client does not hold up the others.
pub(crate) struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Closes the listening socket with the server.
        self.accepting.abort();
    }
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            rx,
            addr,
            accepting,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop only ends with the server; wait for the abort.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
