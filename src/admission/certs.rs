//! The webhook's serving certificate without cert-manager: a self-signed CA and a leaf it
//! signs, made once and kept in a Secret so that every replica serves the same one, and
//! the CA written as `caBundle` into the webhook configurations.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::WebhookError;

/// PEM texts of one serving identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The CA that signed `cert` (the `caBundle`); with `--webhook-cert-dir` the file
    /// `ca.crt` when present.
    pub ca_pem: Option<String>,
    pub cert_pem: String,
    pub key_pem: String,
}

const CA_KEY: &str = "ca.crt";
const CERT_KEY: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";

/// A fresh CA and a serving certificate for `names` (DNS names or IP addresses).
pub fn generate(names: &[String]) -> Result<Identity, WebhookError> {
    let err = |e: rcgen::Error| WebhookError::Certificate(e.to_string());
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "zonekeeper-webhook-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().map_err(err)?;
    let mut leaf = CertificateParams::new(names.to_vec()).map_err(err)?;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, "zonekeeper-webhook");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;
    Ok(Identity {
        ca_pem: Some(ca_cert.pem()),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// `tls.crt`, `tls.key` (and `ca.crt` when present) of a directory, as cert-manager writes
/// a Certificate's Secret.
pub fn read_dir(dir: &std::path::Path) -> Result<Identity, WebhookError> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|source| WebhookError::CertFile {
            path: dir.join(name),
            source,
        })
    };
    Ok(Identity {
        ca_pem: read(CA_KEY).ok(),
        cert_pem: read(CERT_KEY)?,
        key_pem: read(KEY_KEY)?,
    })
}

fn from_secret(secret: &Secret) -> Option<Identity> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(Identity {
        ca_pem: text(CA_KEY),
        cert_pem: text(CERT_KEY)?,
        key_pem: text(KEY_KEY)?,
    })
}

/// The identity in Secret `namespace/name`; the first replica to start makes it, the
/// others (and restarts) read it back, so that one `caBundle` fits every replica.
pub async fn shared(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    names: &[String],
) -> Result<Identity, WebhookError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let api_err = |source: kube::Error| WebhookError::Secret {
        namespace: namespace.to_string(),
        name: name.to_string(),
        source,
    };
    let unreadable = || WebhookError::SecretContent {
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    if let Some(existing) = api.get_opt(name).await.map_err(api_err)? {
        return from_secret(&existing).ok_or_else(unreadable);
    }
    let identity = generate(names)?;
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    let mut data = BTreeMap::new();
    data.insert(CERT_KEY.to_string(), bytes(&identity.cert_pem));
    data.insert(KEY_KEY.to_string(), bytes(&identity.key_pem));
    if let Some(ca) = &identity.ca_pem {
        data.insert(CA_KEY.to_string(), bytes(ca));
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(identity),
        // Another replica was quicker: serve its certificate, not ours.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(name).await.map_err(api_err)?;
            from_secret(&existing).ok_or_else(unreadable)
        }
        Err(e) => Err(api_err(e)),
    }
}

/// Where the API server reaches the webhook: `url` (+ `path`) replaces the Service of the
/// chart when given; the CA goes into `caBundle`. Returns whether anything changed.
fn point_at(
    cc: &mut WebhookClientConfig,
    ca_pem: Option<&str>,
    url: Option<&str>,
    path: &str,
) -> bool {
    let before = cc.clone();
    if let Some(ca) = ca_pem {
        cc.ca_bundle = Some(ByteString(ca.as_bytes().to_vec()));
    }
    if let Some(base) = url {
        cc.url = Some(format!("{}{path}", base.trim_end_matches('/')));
        cc.service = None;
    }
    *cc != before
}

/// Writes the CA (self-signed mode) and `--webhook-url` into both webhook configurations;
/// a configuration that does not exist is reported, not created: the chart owns them.
pub async fn inject(
    client: &kube::Client,
    ca_pem: Option<&str>,
    url: Option<&str>,
    mutating: &str,
    validating: &str,
) -> Result<(), WebhookError> {
    let config_err = |name: &str| {
        let name = name.to_string();
        move |source: kube::Error| WebhookError::Configuration { name, source }
    };
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let mut m = api.get(mutating).await.map_err(config_err(mutating))?;
    let mut changed = false;
    for hook in m.webhooks.iter_mut().flatten() {
        changed |= point_at(&mut hook.client_config, ca_pem, url, super::MUTATE_PATH);
    }
    if changed {
        api.replace(mutating, &PostParams::default(), &m)
            .await
            .map_err(config_err(mutating))?;
        tracing::info!(configuration = mutating, "webhook CA bundle written");
    }
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mut v = api.get(validating).await.map_err(config_err(validating))?;
    let mut changed = false;
    for hook in v.webhooks.iter_mut().flatten() {
        changed |= point_at(&mut hook.client_config, ca_pem, url, super::VALIDATE_PATH);
    }
    if changed {
        api.replace(validating, &PostParams::default(), &v)
            .await
            .map_err(config_err(validating))?;
        tracing::info!(configuration = validating, "webhook CA bundle written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS handshake over an in-memory pipe, the client trusting only the CA.
    async fn handshake(id: &Identity, name: &str) -> Result<(), std::io::Error> {
        use rustls::pki_types::pem::PemObject;
        let server = super::super::server::server_config(&id.cert_pem, &id.key_pem).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        let ca = id.ca_pem.as_deref().unwrap();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let (a, b) = tokio::io::duplex(64 * 1024);
        let accept = tokio::spawn(async move {
            tokio_rustls::TlsAcceptor::from(server)
                .accept(b)
                .await
                .map(|_| ())
        });
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let connected = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client))
            .connect(name, a)
            .await
            .map(|_| ());
        let _ = accept.await;
        connected
    }

    #[tokio::test]
    async fn the_generated_leaf_is_trusted_for_its_names_only() {
        let id = generate(&["zk.dns.svc".into(), "127.0.0.1".into()]).unwrap();
        handshake(&id, "zk.dns.svc").await.unwrap();
        handshake(&id, "127.0.0.1").await.unwrap();
        assert!(handshake(&id, "other.dns.svc").await.is_err());
    }

    #[test]
    fn a_url_replaces_the_service() {
        let mut cc = WebhookClientConfig {
            service: Some(Default::default()),
            ..Default::default()
        };
        assert!(point_at(
            &mut cc,
            Some("PEM"),
            Some("https://127.0.0.1:9443/"),
            "/mutate"
        ));
        assert_eq!(cc.url.as_deref(), Some("https://127.0.0.1:9443/mutate"));
        assert!(cc.service.is_none());
        assert!(!point_at(
            &mut cc,
            Some("PEM"),
            Some("https://127.0.0.1:9443/"),
            "/mutate"
        ));
    }
}
