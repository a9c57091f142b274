//! The zone's SOA as the spec manages it: `spec.email` ↔ RNAME, and what a pass remembers so
//! drift on the SOA is told from a spec change and a server that will not take a field is not
//! asked again on every pass.

use hickory_proto::rr::Name;
use hickory_proto::rr::domain::Label;

use crate::dns::diff::{ServedSoa, SoaWant};

/// Why `spec.email` cannot become an RNAME.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.email {email:?} cannot be an SOA RNAME: {detail}")]
pub struct EmailError {
    pub email: String,
    pub detail: String,
}

/// `first.last@example.com` → `first\.last.example.com.`: the local part is one label, its dots
/// escaped (RFC 1035 §8), the domain follows.
pub fn email_to_rname(email: &str) -> Result<Name, EmailError> {
    let err = |detail: String| EmailError {
        email: email.to_string(),
        detail,
    };
    let (local, domain) = email
        .rsplit_once('@')
        .ok_or_else(|| err("no @ in it".to_string()))?;
    let local =
        Label::from_raw_bytes(local.as_bytes()).map_err(|e| err(format!("local part: {e}")))?;
    let mut domain = Name::from_ascii(domain).map_err(|e| err(format!("domain: {e}")))?;
    domain.set_fqdn(true);
    let mut labels = vec![local];
    labels.extend(
        domain
            .iter()
            .map(Label::from_raw_bytes)
            .filter_map(Result::ok),
    );
    let mut name = Name::from_labels(labels).map_err(|e| err(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The address an RNAME stands for: the first label (dots and all) `@` the rest, no trailing
/// dot. `None` for the root name.
pub fn rname_to_email(rname: &Name) -> Option<String> {
    let mut labels = rname.iter();
    let local = String::from_utf8_lossy(labels.next()?).into_owned();
    let domain: Vec<String> = labels
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    Some(format!("{local}@{}", domain.join(".")))
}

/// What a pass keeps between passes about the SOA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SoaMemory {
    /// Fingerprint of the managed fields last seen on the server as the spec wanted them.
    pub applied: Option<u64>,
    /// The server took an SOA UPDATE (serial moved) but still serves other managed fields
    /// (PowerDNS keeps the SOA's TTL): what was asked and what it serves since. Not asked again
    /// while both stay the same.
    pub not_taken: Option<(SoaWant, ServedSoaFields)>,
}

/// The managed fields of a served SOA, serial left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedSoaFields {
    pub rname: Name,
    pub ttl: u32,
}

impl From<&ServedSoa> for ServedSoaFields {
    fn from(s: &ServedSoa) -> Self {
        ServedSoaFields {
            rname: s.rname.clone(),
            ttl: s.ttl,
        }
    }
}

impl SoaMemory {
    /// Whether asking again would only bump the serial: the server already ignored this very
    /// request on this very SOA.
    pub fn ignored(&self, want: &SoaWant, served: &ServedSoa) -> bool {
        self.not_taken
            .as_ref()
            .is_some_and(|(w, s)| w == want && *s == ServedSoaFields::from(served))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_becomes_the_rname_with_the_local_part_as_one_label() {
        let rname = email_to_rname("first.last@example.com").unwrap();
        assert_eq!(rname.to_ascii(), "first\\.last.example.com.");
        assert_eq!(rname.num_labels(), 3);
        assert_eq!(
            email_to_rname("hostmaster@example.com.")
                .unwrap()
                .to_ascii(),
            "hostmaster.example.com."
        );
        assert_eq!(
            rname_to_email(&rname).as_deref(),
            Some("first.last@example.com")
        );
        let long = format!("{}@example.com", "a".repeat(64));
        let err = email_to_rname(&long).unwrap_err();
        assert!(err.to_string().contains("local part"), "{err}");
        assert!(email_to_rname("no-at-sign").is_err());
    }
}
