//! Owner and embedded names: presentation form both ways and the comparisons DNS uses.

use hickory_proto::rr::Name;
use hickory_proto::rr::domain::Label;

use super::lexer::{EscapeError, decode_escape};

/// Why a name was refused; each names the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("an empty name")]
    Empty,
    #[error("{text:?} has an empty label")]
    EmptyLabel { text: String },
    #[error("{text:?} is not valid UTF-8")]
    NotUtf8 { text: String },
    /// IDNA refused a Unicode label.
    #[error("{text:?}: {reason}")]
    Idna { text: String, reason: String },
    #[error("{text:?} has a label longer than 63 bytes")]
    LabelTooLong { text: String },
    #[error("{text:?}: {source}")]
    Escape { text: String, source: EscapeError },
    #[error("{text:?} contains blank or control characters")]
    Blank { text: String },
    #[error("{text:?} is not a valid name: {reason}")]
    Invalid { text: String, reason: String },
    /// A name inside the zone written without its final dot.
    #[error("{text:?} is relative, so it would mean {}; write {}", name_to_text(.meant), name_to_text(.absolute))]
    ForgottenDot {
        text: String,
        meant: Box<Name>,
        absolute: Box<Name>,
    },
    #[error("{text:?} is longer than 255 bytes once {origin} is appended")]
    TooLongWithOrigin { text: String, origin: Box<Name> },
    #[error("{text:?} is longer than 255 bytes")]
    TooLong { text: String },
    #[error("owner name {} is outside the zone {}", name_to_text(.name), name_to_text(.zone))]
    OutsideZone { name: Box<Name>, zone: Box<Name> },
}

/// Canonical DNS name order (RFC 4034 6.1): labels compared from the root, as
/// lower-cased bytes, a missing label first.
pub fn name_cmp(a: &Name, b: &Name) -> std::cmp::Ordering {
    let mut left = a.iter().rev();
    let mut right = b.iter().rev();
    loop {
        let ord = match (left.next(), right.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(l), Some(r)) => l
                .iter()
                .map(u8::to_ascii_lowercase)
                .cmp(r.iter().map(u8::to_ascii_lowercase)),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
}

/// Name equality ignoring ASCII case.
pub fn name_eq(a: &Name, b: &Name) -> bool {
    // `num_labels()` does not count a leading `*`; the iterator does.
    a.iter().len() == b.iter().len()
        && a.iter()
            .zip(b.iter())
            .all(|(l, r)| l.eq_ignore_ascii_case(r))
}

/// Whether `name` is `zone` or below it (ASCII case ignored).
pub fn in_zone(name: &Name, zone: &Name) -> bool {
    name.iter().len() >= zone.iter().len()
        && name
            .iter()
            .rev()
            .zip(zone.iter().rev())
            .all(|(l, r)| l.eq_ignore_ascii_case(r))
}

/// Parses a domain name in presentation form; relative names get `origin` appended and
/// `@` is `origin` itself. Escapes are decimal (`\046`), as RFC 1035 says.
pub fn parse_name(text: &str, origin: &Name) -> Result<Name, NameError> {
    if text == "@" {
        return Ok(origin.clone());
    }
    if text == "." {
        return Ok(Name::root());
    }
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    let bytes = text.as_bytes();
    let mut labels: Vec<Label> = Vec::new();
    let mut label: Vec<u8> = Vec::new();
    let mut escaped = false;
    let mut absolute = false;
    let mut i = 0;
    let mut finish_label = |label: &mut Vec<u8>, escaped: &mut bool| -> Result<(), NameError> {
        if label.is_empty() {
            return Err(NameError::EmptyLabel { text: text.into() });
        }
        let made = if !*escaped && !label.is_ascii() {
            // Unicode labels become punycode (IDNA), as zone tools do.
            std::str::from_utf8(label)
                .map_err(|_| NameError::NotUtf8 { text: text.into() })
                .and_then(|s| {
                    Label::from_utf8(s).map_err(|e| NameError::Idna {
                        text: text.into(),
                        reason: e.to_string(),
                    })
                })?
        } else {
            Label::from_raw_bytes(label)
                .map_err(|_| NameError::LabelTooLong { text: text.into() })?
        };
        if made.len() > 63 {
            return Err(NameError::LabelTooLong { text: text.into() });
        }
        labels.push(made);
        label.clear();
        *escaped = false;
        Ok(())
    };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let (value, used) =
                    decode_escape(&bytes[i..]).map_err(|source| NameError::Escape {
                        text: text.into(),
                        source,
                    })?;
                label.push(value);
                escaped = true;
                i += used;
                continue;
            }
            b'.' => {
                finish_label(&mut label, &mut escaped)?;
                if i + 1 == bytes.len() {
                    absolute = true;
                }
            }
            c if c.is_ascii_whitespace() || c.is_ascii_control() => {
                return Err(NameError::Blank { text: text.into() });
            }
            c => label.push(c),
        }
        i += 1;
    }
    if !label.is_empty() {
        finish_label(&mut label, &mut escaped)?;
    }
    let mut name = Name::from_labels(labels).map_err(|e| NameError::Invalid {
        text: text.into(),
        reason: e.to_string(),
    })?;
    if !absolute {
        // "mail.example.com" without the final dot inside example.com. means
        // mail.example.com.example.com.: nearly always a forgotten dot.
        if !origin.is_root() && in_zone(&name, origin) {
            return Err(NameError::ForgottenDot {
                text: text.into(),
                meant: Box::new(
                    name.clone()
                        .append_domain(origin)
                        .unwrap_or_else(|_| name.clone()),
                ),
                absolute: Box::new(name),
            });
        }
        name = name
            .append_domain(origin)
            .map_err(|_| NameError::TooLongWithOrigin {
                text: text.into(),
                origin: Box::new(origin.clone()),
            })?;
    }
    if name_wire_len(&name) > 255 {
        return Err(NameError::TooLong { text: text.into() });
    }
    Ok(name)
}

pub(super) fn name_wire_len(name: &Name) -> usize {
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// Presentation form of a name (absolute, trailing dot, decimal escapes).
pub fn name_to_text(name: &Name) -> String {
    if name.is_root() {
        return ".".to_string();
    }
    let mut out = String::new();
    for label in name.iter() {
        push_label_text(label.iter().copied(), &mut out);
    }
    out
}

/// Appends one label in presentation form, escaped as a zone file needs it, and its dot.
pub(super) fn push_label_text(label: impl Iterator<Item = u8>, out: &mut String) {
    for b in label {
        match b {
            b'.' | b'\\' | b'"' | b';' | b'(' | b')' | b'@' | b'$' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7e => out.push(char::from(b)),
            _ => {
                out.push('\\');
                out.push(char::from(b'0' + b / 100));
                out.push(char::from(b'0' + b / 10 % 10));
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    out.push('.');
}

pub(super) fn push_name(wire: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
}

/// Resolves an owner name: `@`, relative to the zone, or absolute inside it.
pub fn parse_owner(text: &str, origin: &Name) -> Result<Name, NameError> {
    let name = parse_name(text, origin)?;
    if !in_zone(&name, origin) {
        return Err(NameError::OutsideZone {
            name: Box::new(name),
            zone: Box::new(origin.clone()),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::model::test_support::*;

    #[test]
    fn names_use_decimal_escapes_and_refuse_overlong() {
        let n = parse_name("a\\065\\.b", &origin()).unwrap();
        assert_eq!(n.iter().next().unwrap(), b"aA.b");
        assert_eq!(name_to_text(&n), "aA\\.b.example.com.");
        assert!(parse_name("\\256", &origin()).is_err());
        let long = vec!["a".repeat(63); 4].join(".") + ".";
        assert!(parse_name(&long, &origin()).is_err(), "over 255 bytes");
        assert!(
            parse_name("dis_allowed", &origin()).is_ok(),
            "underscores are fine"
        );
        assert_eq!(
            name_to_text(&parse_name("bücher", &origin()).unwrap()),
            "xn--bcher-kva.example.com."
        );
    }
}
