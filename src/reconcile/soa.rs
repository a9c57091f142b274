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

impl SoaMemory {
    /// One line per fact, for the standalone state directory: `applied FINGERPRINT` and
    /// `not-taken WANT_RNAME|- WANT_TTL SERVED_RNAME SERVED_TTL`.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(fp) = self.applied {
            text.push_str(&format!("applied {fp}\n"));
        }
        if let Some((want, served)) = &self.not_taken {
            let rname = want
                .rname
                .as_ref()
                .map_or_else(|| "-".to_string(), Name::to_ascii);
            text.push_str(&format!(
                "not-taken {rname} {} {} {}\n",
                want.ttl,
                served.rname.to_ascii(),
                served.ttl
            ));
        }
        text
    }

    /// Reads what [`SoaMemory::to_text`] wrote.
    pub fn from_text(text: &str) -> Result<SoaMemory, String> {
        let mut memory = SoaMemory::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || format!("unreadable SOA memory line {line:?}");
            let f: Vec<&str> = line.split_whitespace().collect();
            let name = |t: &str| Name::from_ascii(t).map_err(|_| bad());
            let ttl = |t: &str| t.parse::<u32>().map_err(|_| bad());
            match f.as_slice() {
                ["applied", fp] => memory.applied = Some(fp.parse().map_err(|_| bad())?),
                ["not-taken", rname, want_ttl, served_rname, served_ttl] => {
                    let want = SoaWant {
                        rname: (*rname != "-").then(|| name(rname)).transpose()?,
                        ttl: ttl(want_ttl)?,
                    };
                    let served = ServedSoaFields {
                        rname: name(served_rname)?,
                        ttl: ttl(served_ttl)?,
                    };
                    memory.not_taken = Some((want, served));
                }
                _ => return Err(bad()),
            }
        }
        Ok(memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_reads_back_what_it_wrote() {
        let memory = SoaMemory {
            applied: Some(42),
            not_taken: Some((
                SoaWant {
                    rname: Some(email_to_rname("first.last@example.com").unwrap()),
                    ttl: 300,
                },
                ServedSoaFields {
                    rname: email_to_rname("first.last@example.com").unwrap(),
                    ttl: 3600,
                },
            )),
        };
        assert_eq!(SoaMemory::from_text(&memory.to_text()), Ok(memory));
        assert_eq!(SoaMemory::from_text(""), Ok(SoaMemory::default()));
        assert!(SoaMemory::from_text("applied x").is_err());
    }

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
