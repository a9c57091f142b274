//! The ownership list: the RRsets an object manages, with the fingerprint of what it applied.

use hickory_proto::rr::{Name, RecordType};

pub use crate::dns::model::Owned;
use crate::dns::model::{RRsetKey, name_to_text};

/// Why a stored ownership list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("line {line}: expected `name TYPE fingerprint`")]
    Shape { line: usize },
    #[error("line {line}: {source}")]
    Name {
        line: usize,
        source: hickory_proto::ProtoError,
    },
    #[error("line {line}: {source}")]
    Type {
        line: usize,
        source: hickory_proto::ProtoError,
    },
    #[error("line {line}: {source}")]
    Fingerprint {
        line: usize,
        source: std::num::ParseIntError,
    },
}
/// Reads ownership lines `name TYPE fingerprint` (hex).
pub fn parse_owned(text: &str) -> Result<Owned, OwnershipError> {
    let mut owned = Owned::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(rtype), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OwnershipError::Shape { line: i + 1 });
        };
        let name = Name::from_ascii(name).map_err(|source| OwnershipError::Name {
            line: i + 1,
            source,
        })?;
        let rtype = rtype
            .parse::<RecordType>()
            .map_err(|source| OwnershipError::Type {
                line: i + 1,
                source,
            })?;
        let fp = u64::from_str_radix(fp, 16).map_err(|source| OwnershipError::Fingerprint {
            line: i + 1,
            source,
        })?;
        owned.insert(RRsetKey::new(&name, rtype), fp);
    }
    Ok(owned)
}

/// Writes what [`parse_owned`] reads.
pub fn format_owned(owned: &Owned) -> String {
    let mut out = String::new();
    for (k, fp) in owned {
        out.push_str(&format!(
            "{} {} {fp:016x}\n",
            name_to_text(&k.name),
            k.rtype
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::*;

    #[test]
    fn ownership_round_trips_and_fingerprints_follow_content() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let a = |d: &str| parse_rdata(RecordType::A, &origin, d).unwrap();
        let www = Name::from_ascii("www.example.com.").unwrap();
        let one = RRset::new(
            www.clone(),
            RecordType::A,
            300,
            vec![a("192.0.2.1"), a("192.0.2.2")],
        );
        let same = RRset::new(
            Name::from_ascii("WWW.example.com.").unwrap(),
            RecordType::A,
            300,
            vec![a("192.0.2.2"), a("192.0.2.1")],
        );
        let other_ttl = RRset::new(
            www.clone(),
            RecordType::A,
            60,
            vec![a("192.0.2.1"), a("192.0.2.2")],
        );
        assert_eq!(one.fingerprint(), same.fingerprint());
        assert_ne!(one.fingerprint(), other_ttl.fingerprint());
        let owned: Owned = [(one.key(), one.fingerprint())].into_iter().collect();
        assert_eq!(parse_owned(&format_owned(&owned)).unwrap(), owned);
        assert!(parse_owned("www.example.com. A").is_err());
        assert!(parse_owned("www.example.com. NOPE 00").is_err());
    }
}
