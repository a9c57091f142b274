//! The ownership list: the RRsets an object manages, with the fingerprint of what it applied.

use std::io::{BufRead, Read, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use hickory_proto::rr::{Name, RecordType};

pub use crate::dns::model::Owned;
use crate::dns::model::owned_key;

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

/// The stored form: gzip over [`format_owned`]'s text, written line by line into the encoder
/// (the text of a 1M-RRset list is 40 MB that need not exist at once). Names repeat their
/// zone's suffix and fingerprints are 8 random bytes in 16 hex digits, so this is about 4x
/// smaller than the text.
pub fn encode_owned(owned: &Owned) -> Result<Vec<u8>, OwnershipError> {
    let encode_error = |e: std::io::Error| {
        OwnershipError::Compressed(crate::reconcile::snapshot::CodecError::Encode(
            e.to_string(),
        ))
    };
    let mut out = std::io::BufWriter::with_capacity(
        64 * 1024,
        GzEncoder::new(Vec::new(), Compression::fast()),
    );
    write_owned(owned, &mut out).map_err(encode_error)?;
    out.into_inner()
        .map_err(|e| encode_error(e.into_error()))?
        .finish()
        .map_err(encode_error)
}

/// Reads what [`encode_owned`] wrote, inflating to at most `limit` bytes, a line at a time.
pub fn decode_owned(bytes: &[u8], limit: u64) -> Result<Owned, OwnershipError> {
    use crate::reconcile::snapshot::CodecError;
    let mut reader = std::io::BufReader::with_capacity(
        64 * 1024,
        flate2::read::GzDecoder::new(bytes).take(limit.saturating_add(1)),
    );
    let mut total = 0u64;
    let mut line = Vec::new();
    let mut number = 0;
    let next = || -> Result<Option<(Vec<u8>, u64)>, OwnershipError> {
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| OwnershipError::Compressed(CodecError::Incomplete(e)))?;
            if n == 0 {
                return Ok(None);
            }
            total += n as u64;
            if total > limit {
                return Err(OwnershipError::Compressed(CodecError::TooLarge { limit }));
            }
            number += 1;
            let text = std::str::from_utf8(&line).map_err(|_| OwnershipError::NotUtf8)?;
            if let Some(entry) = parse_line(text, number)? {
                return Ok(Some(entry));
            }
        }
    };
    collect_entries(next)
}

/// Builds the list from `next` entries as they are parsed (no list of parsed lines beside
/// it), stopping at the first error.
fn collect_entries(
    mut next: impl FnMut() -> Result<Option<(Vec<u8>, u64)>, OwnershipError>,
) -> Result<Owned, OwnershipError> {
    let mut error = None;
    let owned = Owned::from_key_bytes(std::iter::from_fn(|| match next() {
        Ok(entry) => entry,
        Err(e) => {
            error = Some(e);
            None
        }
    }));
    match error {
        Some(e) => Err(e),
        None => Ok(owned),
    }
}

/// Reads ownership lines `name TYPE fingerprint` (hex).
pub fn parse_owned(text: &str) -> Result<Owned, OwnershipError> {
    let mut lines = text.lines().enumerate();
    collect_entries(|| {
        for (i, line) in lines.by_ref() {
            if let Some(entry) = parse_line(line, i + 1)? {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    })
}

/// One line as zone-map key bytes and fingerprint; `None` for a blank line.
fn parse_line(line: &str, number: usize) -> Result<Option<(Vec<u8>, u64)>, OwnershipError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(name), Some(rtype), Some(fp), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OwnershipError::Shape { line: number });
    };
    let name = Name::from_ascii(name).map_err(|source| OwnershipError::Name {
        line: number,
        source,
    })?;
    let rtype = rtype
        .parse::<RecordType>()
        .map_err(|source| OwnershipError::Type {
            line: number,
            source,
        })?;
    let fp = u64::from_str_radix(fp, 16).map_err(|source| OwnershipError::Fingerprint {
        line: number,
        source,
    })?;
    // The key lower-cases as it is written: no lower-cased copy of the name first.
    Ok(Some((owned_key(&name, rtype), fp)))
}

/// A digest of the list: whether it changed over a pass is told by comparing two of these
/// instead of keeping a copy of a million-RRset list for the whole pass.
pub fn digest(owned: &Owned) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    owned.len().hash(&mut h);
    for (k, fp) in owned.entries() {
        k.hash(&mut h);
        fp.hash(&mut h);
    }
    h.finish()
}

/// Writes what [`parse_owned`] reads.
pub fn write_owned(owned: &Owned, out: &mut impl Write) -> std::io::Result<()> {
    for (name, rtype, fp) in owned.texts() {
        writeln!(out, "{name} {rtype} {fp:016x}")?;
    }
    Ok(())
}

/// [`write_owned`] into a string.
pub fn format_owned(owned: &Owned) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and the text is ASCII/UTF-8 by construction.
    let _ = write_owned(owned, &mut out);
    String::from_utf8_lossy(&out).into_owned()
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
