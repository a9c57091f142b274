//! SVCB and HTTPS (RFC 9460): SvcParams from text to wire and back.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use hickory_proto::rr::Name;

use super::MAX_CHAR_STRING;
use super::lexer::Token;
use super::name::push_name;
use super::rdata_parse::{RdataError, at_least, field_error, name_field, number};
use super::rdata_text::{WireReader, quote};

/// Why the SvcParams of an SVCB or HTTPS record were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvcParamError {
    #[error("unknown SvcParam key {0:?}")]
    UnknownKey(String),
    #[error("{0} needs a value")]
    NeedsValue(String),
    #[error("unknown key {0:?} in mandatory")]
    UnknownMandatoryKey(String),
    #[error("mandatory cannot list itself")]
    MandatoryListsItself,
    #[error("mandatory lists a key twice")]
    MandatoryListsTwice,
    #[error("each alpn id must be 1 to 255 bytes")]
    AlpnLength,
    #[error("no-default-alpn takes no value")]
    NoDefaultAlpnValue,
    #[error("port {0:?} is not a number from 0 to 65535")]
    Port(String),
    #[error("{0:?} is not an IPv4 address")]
    NotIpv4(String),
    #[error("{0:?} is not an IPv6 address")]
    NotIpv6(String),
    #[error("ech is not base64")]
    EchNotBase64,
    #[error("{0} value is too long")]
    TooLong(String),
    #[error("SvcParam {0} is given twice")]
    Twice(String),
    #[error("mandatory lists {0} but it is not given")]
    MandatoryMissing(String),
    #[error("no-default-alpn needs alpn")]
    NoDefaultAlpnWithoutAlpn,
}

/// SvcParamKey names (RFC 9460 14.3.2).
pub(super) const SVC_KEYS: [&str; 7] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
];

pub(super) fn svc_key(name: &str) -> Option<u16> {
    if let Some(pos) = SVC_KEYS.iter().position(|k| *k == name) {
        return u16::try_from(pos).ok();
    }
    let digits = name.strip_prefix("key")?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse::<u16>().ok().filter(|k| *k != 65535)
}

pub(super) fn svc_key_name(key: u16) -> String {
    SVC_KEYS
        .get(usize::from(key))
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("key{key}"))
}

/// Splits an RFC 9460 value-list on commas; `\,` and `\\` stand for themselves.
pub(super) fn split_value_list(value: &[u8]) -> Vec<Vec<u8>> {
    let mut items = vec![Vec::new()];
    let mut iter = value.iter();
    while let Some(&b) = iter.next() {
        match b {
            b'\\' => {
                if let (Some(&next), Some(item)) = (iter.next(), items.last_mut()) {
                    item.push(next);
                }
            }
            b',' => items.push(Vec::new()),
            _ => {
                if let Some(item) = items.last_mut() {
                    item.push(b);
                }
            }
        }
    }
    items
}

pub(super) fn svcb_wire(
    tokens: &[Token],
    origin: &Name,
    text: &str,
) -> Result<Vec<u8>, RdataError> {
    let t = at_least(tokens, 2, text, "priority and target name")?;
    let mut wire = number::<u16>(&t[0], text, "priority")?
        .to_be_bytes()
        .to_vec();
    push_name(&mut wire, &name_field(&t[1], origin, text)?);
    let err = |e: SvcParamError| field_error(text, e);
    let mut params: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    for tok in &t[2..] {
        let (key_text, value) = match tok.bytes.iter().position(|b| *b == b'=') {
            Some(pos) => (&tok.bytes[..pos], Some(&tok.bytes[pos + 1..])),
            None => (&tok.bytes[..], None),
        };
        let key_text = String::from_utf8_lossy(key_text).to_string();
        let key =
            svc_key(&key_text).ok_or_else(|| err(SvcParamError::UnknownKey(key_text.clone())))?;
        let need = |v: Option<&[u8]>| -> Result<Vec<u8>, RdataError> {
            match v {
                Some(v) if !v.is_empty() => Ok(v.to_vec()),
                _ => Err(err(SvcParamError::NeedsValue(key_text.clone()))),
            }
        };
        let encoded: Vec<u8> = match key {
            0 => {
                let mut keys = Vec::new();
                for item in split_value_list(&need(value)?) {
                    let name = String::from_utf8_lossy(&item).to_string();
                    let k = svc_key(&name)
                        .ok_or_else(|| err(SvcParamError::UnknownMandatoryKey(name.clone())))?;
                    if k == 0 {
                        return Err(err(SvcParamError::MandatoryListsItself));
                    }
                    keys.push(k);
                }
                keys.sort_unstable();
                let before = keys.len();
                keys.dedup();
                if keys.len() != before {
                    return Err(err(SvcParamError::MandatoryListsTwice));
                }
                keys.iter().flat_map(|k| k.to_be_bytes()).collect()
            }
            1 => {
                let mut out = Vec::new();
                for id in split_value_list(&need(value)?) {
                    if id.is_empty() || id.len() > MAX_CHAR_STRING {
                        return Err(err(SvcParamError::AlpnLength));
                    }
                    out.push(id.len() as u8);
                    out.extend_from_slice(&id);
                }
                out
            }
            2 => {
                if value.is_some_and(|v| !v.is_empty()) {
                    return Err(err(SvcParamError::NoDefaultAlpnValue));
                }
                Vec::new()
            }
            3 => {
                let v = need(value)?;
                let port = std::str::from_utf8(&v)
                    .ok()
                    .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u16>().ok())
                    .ok_or_else(|| {
                        err(SvcParamError::Port(String::from_utf8_lossy(&v).to_string()))
                    })?;
                port.to_be_bytes().to_vec()
            }
            4 => {
                let mut out = Vec::new();
                for item in split_value_list(&need(value)?) {
                    let addr: Ipv4Addr = std::str::from_utf8(&item)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| {
                            err(SvcParamError::NotIpv4(
                                String::from_utf8_lossy(&item).to_string(),
                            ))
                        })?;
                    out.extend_from_slice(&addr.octets());
                }
                out
            }
            5 => {
                let v = need(value)?;
                base64::engine::general_purpose::STANDARD
                    .decode(&v)
                    .map_err(|_| err(SvcParamError::EchNotBase64))?
            }
            6 => {
                let mut out = Vec::new();
                for item in split_value_list(&need(value)?) {
                    let addr: Ipv6Addr = std::str::from_utf8(&item)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| {
                            err(SvcParamError::NotIpv6(
                                String::from_utf8_lossy(&item).to_string(),
                            ))
                        })?;
                    out.extend_from_slice(&addr.octets());
                }
                out
            }
            _ => value.map(<[u8]>::to_vec).unwrap_or_default(),
        };
        if encoded.len() > usize::from(u16::MAX) {
            return Err(err(SvcParamError::TooLong(key_text.clone())));
        }
        if params.insert(key, encoded).is_some() {
            return Err(err(SvcParamError::Twice(key_text.clone())));
        }
    }
    if let Some(mandatory) = params.get(&0) {
        for k in mandatory
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
        {
            if !params.contains_key(&k) {
                return Err(err(SvcParamError::MandatoryMissing(svc_key_name(k))));
            }
        }
    }
    if params.contains_key(&2) && !params.contains_key(&1) {
        return Err(err(SvcParamError::NoDefaultAlpnWithoutAlpn));
    }
    // The wire form lists keys in increasing order (RFC 9460 2.2); the BTreeMap does that.
    for (key, value) in params {
        wire.extend_from_slice(&key.to_be_bytes());
        wire.extend_from_slice(&(value.len() as u16).to_be_bytes());
        wire.extend_from_slice(&value);
    }
    Ok(wire)
}

/// Escapes one value-list item: `,` and `\` get a backslash (RFC 9460 A.1).
pub(super) fn list_item(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b',' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

pub(super) fn svc_param_text(key: u16, value: &[u8]) -> Option<String> {
    let name = svc_key_name(key);
    let mut r = WireReader {
        data: value,
        pos: 0,
    };
    let text = match key {
        0 => {
            let mut keys = Vec::new();
            while !r.done() {
                keys.push(svc_key_name(r.u16()?));
            }
            format!("{name}={}", keys.join(","))
        }
        1 => {
            let mut items: Vec<Vec<u8>> = Vec::new();
            while !r.done() {
                items.push(list_item(r.char_string()?));
            }
            format!("{name}={}", quote(&items.join(&b',')))
        }
        2 => {
            if !value.is_empty() {
                return None;
            }
            name
        }
        3 => format!("{name}={}", r.u16()?),
        4 => {
            let mut items = Vec::new();
            while !r.done() {
                let b: [u8; 4] = r.take(4)?.try_into().ok()?;
                items.push(Ipv4Addr::from(b).to_string());
            }
            format!("{name}={}", items.join(","))
        }
        5 => format!(
            "{name}={}",
            quote(
                base64::engine::general_purpose::STANDARD
                    .encode(r.rest())
                    .as_bytes()
            )
        ),
        6 => {
            let mut items = Vec::new();
            while !r.done() {
                let b: [u8; 16] = r.take(16)?.try_into().ok()?;
                items.push(Ipv6Addr::from(b).to_string());
            }
            format!("{name}={}", items.join(","))
        }
        _ => {
            if value.is_empty() {
                name
            } else {
                format!("{name}={}", quote(r.rest()))
            }
        }
    };
    r.done().then_some(text)
}
