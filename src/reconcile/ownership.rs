//! The ownership list: the RRsets an object manages, with the fingerprint of what it applied.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
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
    #[error("compressed ownership list: {0}")]
    Compressed(#[source] crate::reconcile::snapshot::CodecError),
    #[error("compressed ownership list is not UTF-8")]
    NotUtf8,
}

/// Largest decompressed ownership list [`decode_owned`] accepts: a 1M-RRset zone's list is
/// about 40 MB of text, so this leaves room for zones ten times that and no more.
pub const MAX_OWNED_TEXT: u64 = 512 * 1024 * 1024;

/// The stored form: gzip over [`format_owned`]'s text. Names repeat their zone's suffix and
/// fingerprints are 8 random bytes in 16 hex digits, so this is about 4x smaller than the text.
pub fn encode_owned(owned: &Owned) -> Result<Vec<u8>, OwnershipError> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(format_owned(owned).as_bytes())
        .and_then(|()| enc.finish())
        .map_err(|e| {
            OwnershipError::Compressed(crate::reconcile::snapshot::CodecError::Encode(
                e.to_string(),
            ))
        })
}

/// Reads what [`encode_owned`] wrote, inflating to at most `limit` bytes.
pub fn decode_owned(bytes: &[u8], limit: u64) -> Result<Owned, OwnershipError> {
    let raw = crate::reconcile::snapshot::gunzip_capped(bytes, limit)
        .map_err(OwnershipError::Compressed)?;
    let text = String::from_utf8(raw).map_err(|_| OwnershipError::NotUtf8)?;
    parse_owned(&text)
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

/// A digest of the list: whether it changed over a pass is told by comparing two of these
/// instead of keeping a copy of a million-RRset list for the whole pass.
pub fn digest(owned: &Owned) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    owned.len().hash(&mut h);
    for (k, fp) in owned {
        k.hash(&mut h);
        fp.hash(&mut h);
    }
    h.finish()
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

    #[test]
    fn the_compressed_form_round_trips_is_small_and_refuses_damage_and_bombs() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let owned: Owned = (0..30_000u32)
            .map(|i| {
                let rrset = RRset::new(
                    Name::from_ascii(format!("host-{i}.example.com.")).unwrap(),
                    RecordType::A,
                    300,
                    vec![
                        parse_rdata(
                            RecordType::A,
                            &origin,
                            &format!("10.{}.{}.1", i / 256, i % 256),
                        )
                        .unwrap(),
                    ],
                );
                (rrset.key(), rrset.fingerprint())
            })
            .collect();
        let text = format_owned(&owned);
        let bytes = encode_owned(&owned).unwrap();
        assert_eq!(decode_owned(&bytes, MAX_OWNED_TEXT).unwrap(), owned);
        // The plain text of 30k RRsets is over a ConfigMap's 1 MiB; compressed it is not.
        assert!(text.len() > 1024 * 1024, "{}", text.len());
        assert!(
            bytes.len() < text.len() / 2,
            "{} of {}",
            bytes.len(),
            text.len()
        );
        assert!(decode_owned(&bytes[..bytes.len() / 2], MAX_OWNED_TEXT).is_err());
        assert!(matches!(
            decode_owned(&bytes, 1024),
            Err(OwnershipError::Compressed(
                crate::reconcile::snapshot::CodecError::TooLarge { limit: 1024 }
            ))
        ));
        assert_eq!(
            decode_owned(&encode_owned(&Owned::new()).unwrap(), MAX_OWNED_TEXT).unwrap(),
            Owned::new()
        );
    }
}
