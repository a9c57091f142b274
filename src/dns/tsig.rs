//! TSIG (RFC 8945): keys, request signing and response verification,
//! including the chained verification of multi-message transfers.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::rdata::tsig::{
    TSIG, TsigAlgorithm, make_tsig_record, signed_bitmessage_to_buf,
};
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::error::TsigKeyError;

/// Seconds of clock skew accepted in both directions (RFC 8945 recommends 300).
pub const FUDGE: u16 = 300;

/// RFC 8945 §5.3.1: a transfer may leave up to 99 messages unsigned between
/// two signed ones; more is an attack or a broken server.
pub const MAX_UNSIGNED_RUN: usize = 99;

/// A shared TSIG key.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// Key name, as configured on the server (FQDN).
    pub name: Name,
    /// MAC algorithm.
    pub algorithm: TsigAlgorithm,
    /// The decoded secret.
    pub secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    // The secret never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    /// Builds a key from its configuration: name, algorithm name (as in BIND's
    /// `algorithm` clause, e.g. `hmac-sha256`) and base64 secret.
    pub fn new(name: &str, algorithm: &str, secret_base64: &str) -> Result<Self, TsigKeyError> {
        let mut key_name = Name::from_ascii(name).map_err(|e| TsigKeyError::InvalidName {
            name: name.to_string(),
            detail: e.to_string(),
        })?;
        if key_name.is_root() || name.trim().is_empty() {
            return Err(TsigKeyError::InvalidName {
                name: name.to_string(),
                detail: "empty name".to_string(),
            });
        }
        key_name.set_fqdn(true);
        let algorithm = match algorithm
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .as_str()
        {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            _ => return Err(TsigKeyError::UnsupportedAlgorithm(algorithm.to_string())),
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_base64.trim())
            .map_err(|_| {
                if looks_like_placeholder(secret_base64) {
                    TsigKeyError::PlaceholderSecret {
                        name: name.to_string(),
                    }
                } else {
                    TsigKeyError::InvalidSecret {
                        name: name.to_string(),
                    }
                }
            })?;
        if secret.is_empty() {
            return Err(TsigKeyError::EmptySecret(name.to_string()));
        }
        Ok(Self {
            name: key_name,
            algorithm,
            secret,
        })
    }

    /// The algorithm's name as written in server configurations.
    pub fn algorithm_name(&self) -> String {
        self.algorithm
            .to_name()
            .to_ascii()
            .trim_end_matches('.')
            .to_string()
    }

    /// The secret in base64, for writing server configurations.
    pub fn secret_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.secret)
    }

    fn signer(&self) -> Result<TSigner, TsigError> {
        TSigner::new(
            self.secret.clone(),
            self.algorithm.clone(),
            self.name.clone(),
            FUDGE,
        )
        .map_err(|e| TsigError(e.to_string()))
    }

    /// Signs `message` (which must be complete, its id set) and returns its
    /// wire form plus the verifier for the response(s).
    pub fn sign(&self, message: &mut Message) -> Result<(Vec<u8>, ResponseVerifier), TsigError> {
        let signer = self.signer()?;
        let now = unix_now();
        let pre = TSIG::new(
            self.algorithm.clone(),
            now,
            FUDGE,
            Vec::new(),
            message.id(),
            0,
            Vec::new(),
        );
        let mac = signer
            .sign_message(message, &pre)
            .map_err(|e| TsigError(e.to_string()))?;
        message.add_tsig(make_tsig_record(
            self.name.clone(),
            pre.set_mac(mac.clone()),
        ));
        let wire = message.to_vec().map_err(|e| TsigError(e.to_string()))?;
        Ok((
            wire,
            ResponseVerifier {
                signer,
                prev_mac: mac,
                unsigned: Vec::new(),
                unsigned_count: 0,
                first: true,
                last_time: 0,
            },
        ))
    }
}

/// Whether a secret that is not base64 is an unfilled template value: angle
/// brackets never occur in base64, and `REPLACE`/`CHANGE` words are what
/// templates and docs put there.
fn looks_like_placeholder(secret: &str) -> bool {
    let upper = secret.to_ascii_uppercase();
    secret.contains('<')
        || secret.contains('>')
        || ["REPLACE", "CHANGE_ME", "CHANGEME", "YOUR_", "TODO"]
            .iter()
            .any(|w| upper.contains(w))
}

/// A TSIG failure (bad MAC, wrong key, bad time, missing signature).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TsigError(pub String);

/// Verifies the response(s) to one signed request, message after message.
///
/// The first response message must be signed; later ones may be unsigned
/// (up to [`MAX_UNSIGNED_RUN`] in a row) and are then covered by the next
/// signed message's MAC, whose digest includes them verbatim (RFC 8945
/// §5.3.1). The stream must end on a signed message ([`Self::finish`]).
pub struct ResponseVerifier {
    signer: TSigner,
    prev_mac: Vec<u8>,
    unsigned: Vec<u8>,
    unsigned_count: usize,
    first: bool,
    last_time: u64,
}

impl ResponseVerifier {
    /// Verifies one response message given as received (`wire`) and decoded
    /// (`message`).
    pub fn verify(&mut self, wire: &[u8], message: &Message) -> Result<(), TsigError> {
        let Some(record) = message.signature().last() else {
            if self.first {
                return Err(TsigError("response is not signed".to_string()));
            }
            self.unsigned_count += 1;
            if self.unsigned_count > MAX_UNSIGNED_RUN {
                return Err(TsigError(format!(
                    "more than {MAX_UNSIGNED_RUN} unsigned messages in a row"
                )));
            }
            self.unsigned.extend_from_slice(wire);
            return Ok(());
        };
        let tsig = tsig_of(record)?;
        let error = tsig_error_field(tsig);
        if error != 0 {
            return Err(TsigError(format!(
                "server reported TSIG error {}",
                tsig_error_name(error)
            )));
        }
        if record.name() != self.signer.signer_name() {
            return Err(TsigError(format!(
                "response signed with key {} instead of {}",
                record.name(),
                self.signer.signer_name()
            )));
        }
        if tsig.algorithm() != self.signer.algorithm() {
            return Err(TsigError(format!(
                "response signed with algorithm {} instead of {}",
                tsig.algorithm(),
                self.signer.algorithm()
            )));
        }
        if tsig.mac().len()
            < tsig
                .algorithm()
                .output_len()
                .map_err(|e| TsigError(e.to_string()))?
        {
            return Err(TsigError("truncated MAC".to_string()));
        }
        // The digest is: prior MAC, every unsigned message since, then this
        // message without its TSIG and the TSIG variables (all of them for the
        // first message, only the timers afterwards).
        let (tail, _) = signed_bitmessage_to_buf(None, wire, self.first)
            .map_err(|e| TsigError(format!("cannot rebuild signed data: {e}")))?;
        let mut tbv =
            Vec::with_capacity(2 + self.prev_mac.len() + self.unsigned.len() + tail.len());
        tbv.extend_from_slice(&(self.prev_mac.len() as u16).to_be_bytes());
        tbv.extend_from_slice(&self.prev_mac);
        tbv.extend_from_slice(&self.unsigned);
        tbv.extend_from_slice(&tail);
        self.signer
            .verify(&tbv, tsig.mac())
            .map_err(|_| TsigError("response MAC does not verify".to_string()))?;
        let now = unix_now();
        let fudge = u64::from(tsig.fudge());
        if tsig.time() + fudge < now || tsig.time() > now + fudge {
            return Err(TsigError(format!(
                "response signed at {} outside the accepted window around {now}",
                tsig.time()
            )));
        }
        if tsig.time() < self.last_time {
            return Err(TsigError(
                "response signature time went backwards".to_string(),
            ));
        }
        self.last_time = tsig.time();
        self.prev_mac = tsig.mac().to_vec();
        self.unsigned.clear();
        self.unsigned_count = 0;
        self.first = false;
        Ok(())
    }

    /// Checks that the last message verified was signed.
    pub fn finish(&self) -> Result<(), TsigError> {
        if self.first || self.unsigned_count > 0 {
            Err(TsigError(
                "last message of the response is not signed".to_string(),
            ))
        } else {
            Ok(())
        }
    }
}

/// The outcome of checking a request's TSIG on the server side.
#[derive(Debug)]
pub enum RequestAuth {
    /// The request carries no TSIG record.
    Unsigned,
    /// Signed with a configured key and the MAC verifies: responses must be
    /// signed with the returned signer.
    Verified(ResponseSigner),
    /// The MAC verifies but the time is outside the window: answer NOTAUTH,
    /// signed with this signer, whose TSIG carries BADTIME and our time
    /// (RFC 8945 §5.2.3).
    BadTime(ResponseSigner),
    /// Signed, but refused: answer NOTAUTH with this TSIG error (BADKEY,
    /// BADSIG), the error carried in an unsigned TSIG record.
    Refused {
        /// Key name the request named.
        key_name: Name,
        /// Algorithm the request named.
        algorithm: TsigAlgorithm,
        /// RFC 8945 error code.
        error: u16,
    },
}

/// RFC 8945 error codes used by the server.
pub mod tsig_rcode {
    /// The MAC does not verify.
    pub const BADSIG: u16 = 16;
    /// Unknown key or algorithm.
    pub const BADKEY: u16 = 17;
    /// Signed outside the time window.
    pub const BADTIME: u16 = 18;
}

/// Checks the TSIG of a request received as `wire` and decoded as `message`
/// against the configured `keys` (server side, RFC 8945 §5.2).
pub fn verify_request(keys: &[TsigKey], wire: &[u8], message: &Message) -> RequestAuth {
    let Some(record) = message.signature().last() else {
        return RequestAuth::Unsigned;
    };
    let Ok(tsig) = tsig_of(record) else {
        return RequestAuth::Unsigned;
    };
    let refused = |error| RequestAuth::Refused {
        key_name: record.name().clone(),
        algorithm: tsig.algorithm().clone(),
        error,
    };
    let Some(key) = keys.iter().find(|k| {
        super::model::name_eq(&k.name, record.name()) && &k.algorithm == tsig.algorithm()
    }) else {
        return refused(tsig_rcode::BADKEY);
    };
    let Ok(signer) = key.signer() else {
        return refused(tsig_rcode::BADKEY);
    };
    let Ok((tbs, _)) = signed_bitmessage_to_buf(None, wire, true) else {
        return refused(tsig_rcode::BADSIG);
    };
    let too_short = tsig
        .algorithm()
        .output_len()
        .map(|n| tsig.mac().len() < n)
        .unwrap_or(true);
    if too_short || signer.verify(&tbs, tsig.mac()).is_err() {
        return refused(tsig_rcode::BADSIG);
    }
    let now = unix_now();
    let fudge = u64::from(tsig.fudge());
    let mut response_signer = ResponseSigner {
        key: key.clone(),
        signer,
        prev_mac: tsig.mac().to_vec(),
        first: true,
        error: 0,
        other: Vec::new(),
    };
    if tsig.time() + fudge < now || tsig.time() > now + fudge {
        response_signer.error = tsig_rcode::BADTIME;
        // Other Data: our time as 48 bits, so the client can see the skew.
        response_signer.other = now.to_be_bytes()[2..].to_vec();
        return RequestAuth::BadTime(response_signer);
    }
    RequestAuth::Verified(response_signer)
}

/// Signs the response messages to one verified request, chaining each MAC to
/// the previous one (RFC 8945 §5.3.1); every message is signed.
pub struct ResponseSigner {
    key: TsigKey,
    signer: TSigner,
    prev_mac: Vec<u8>,
    first: bool,
    error: u16,
    other: Vec<u8>,
}

impl fmt::Debug for ResponseSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseSigner")
            .field("key", &self.key)
            .field("first", &self.first)
            .finish()
    }
}

impl ResponseSigner {
    /// The key the request was signed with.
    pub fn key(&self) -> &TsigKey {
        &self.key
    }

    /// Signs `message` (complete, id set) and returns its wire form.
    pub fn sign(&mut self, message: &mut Message) -> Result<Vec<u8>, TsigError> {
        self.sign_at(message, unix_now())
    }

    fn sign_at(&mut self, message: &mut Message, now: u64) -> Result<Vec<u8>, TsigError> {
        let pre = TSIG::new(
            self.key.algorithm.clone(),
            now,
            FUDGE,
            Vec::new(),
            message.id(),
            self.error,
            self.other.clone(),
        );
        let mut tbs = Vec::with_capacity(512);
        tbs.extend_from_slice(&(self.prev_mac.len() as u16).to_be_bytes());
        tbs.extend_from_slice(&self.prev_mac);
        let mut body = Vec::with_capacity(512);
        {
            let mut enc = BinEncoder::new(&mut body);
            message
                .emit(&mut enc)
                .map_err(|e| TsigError(e.to_string()))?;
            if self.first {
                pre.emit_tsig_for_mac(&mut enc, &self.key.name)
                    .map_err(|e| TsigError(e.to_string()))?;
            } else {
                // Later messages cover the timers only (RFC 8945 §5.3.1).
                let emitted = enc
                    .emit_u16((now >> 32) as u16)
                    .and_then(|_| enc.emit_u32(now as u32))
                    .and_then(|_| enc.emit_u16(FUDGE));
                emitted.map_err(|e| TsigError(e.to_string()))?;
            }
        }
        tbs.extend_from_slice(&body);
        let mac = self
            .signer
            .sign(&tbs)
            .map_err(|e| TsigError(e.to_string()))?;
        self.prev_mac = mac.clone();
        self.first = false;
        message.add_tsig(make_tsig_record(self.key.name.clone(), pre.set_mac(mac)));
        message.to_vec().map_err(|e| TsigError(e.to_string()))
    }
}

impl ResponseSigner {
    /// Signs a response already in wire form (`message`, complete but for its TSIG),
    /// appending the TSIG record and counting it in ARCOUNT: the same signature as
    /// [`Self::sign`] without decoding the message into hickory's types. Chained like
    /// it: the first message covers the request MAC and every TSIG variable, later ones
    /// the previous MAC and the timers only (RFC 8945 5.3.1).
    pub fn sign_raw(&mut self, message: &mut Vec<u8>) -> Result<(), TsigError> {
        self.sign_raw_at(message, unix_now())
    }

    fn sign_raw_at(&mut self, message: &mut Vec<u8>, now: u64) -> Result<(), TsigError> {
        if message.len() < 12 {
            return Err(TsigError("message shorter than its header".to_string()));
        }
        let id = [message[0], message[1]];
        let mut key_name = Vec::with_capacity(64);
        canonical_name_wire(&self.key.name, &mut key_name);
        let mut algorithm = Vec::with_capacity(32);
        canonical_name_wire(&self.key.algorithm.to_name(), &mut algorithm);
        let time = &now.to_be_bytes()[2..];
        let other_len = u16::try_from(self.other.len())
            .map_err(|_| TsigError("TSIG other data too long".to_string()))?;
        let mut tbs = Vec::with_capacity(2 + self.prev_mac.len() + message.len() + 128);
        tbs.extend_from_slice(&(self.prev_mac.len() as u16).to_be_bytes());
        tbs.extend_from_slice(&self.prev_mac);
        tbs.extend_from_slice(message);
        if self.first {
            tbs.extend_from_slice(&key_name);
            tbs.extend_from_slice(&TSIG_CLASS_ANY.to_be_bytes());
            tbs.extend_from_slice(&0u32.to_be_bytes());
            tbs.extend_from_slice(&algorithm);
            tbs.extend_from_slice(time);
            tbs.extend_from_slice(&FUDGE.to_be_bytes());
            tbs.extend_from_slice(&self.error.to_be_bytes());
            tbs.extend_from_slice(&other_len.to_be_bytes());
            tbs.extend_from_slice(&self.other);
        } else {
            tbs.extend_from_slice(time);
            tbs.extend_from_slice(&FUDGE.to_be_bytes());
        }
        let mac = self
            .signer
            .sign(&tbs)
            .map_err(|e| TsigError(e.to_string()))?;
        let mac_len =
            u16::try_from(mac.len()).map_err(|_| TsigError("MAC too long".to_string()))?;
        let rdlen = algorithm.len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2 + self.other.len();
        let rdlen = u16::try_from(rdlen).map_err(|_| TsigError("TSIG too long".to_string()))?;
        message.extend_from_slice(&key_name);
        message.extend_from_slice(&TSIG_TYPE.to_be_bytes());
        message.extend_from_slice(&TSIG_CLASS_ANY.to_be_bytes());
        message.extend_from_slice(&0u32.to_be_bytes());
        message.extend_from_slice(&rdlen.to_be_bytes());
        message.extend_from_slice(&algorithm);
        message.extend_from_slice(time);
        message.extend_from_slice(&FUDGE.to_be_bytes());
        message.extend_from_slice(&mac_len.to_be_bytes());
        message.extend_from_slice(&mac);
        message.extend_from_slice(&id);
        message.extend_from_slice(&self.error.to_be_bytes());
        message.extend_from_slice(&other_len.to_be_bytes());
        message.extend_from_slice(&self.other);
        let arcount = u16::from_be_bytes([message[10], message[11]]).wrapping_add(1);
        message[10..12].copy_from_slice(&arcount.to_be_bytes());
        if message.len() > usize::from(u16::MAX) {
            return Err(TsigError("signed message over 64 KiB".to_string()));
        }
        self.prev_mac = mac;
        self.first = false;
        Ok(())
    }
}

/// TSIG's RR type and class (RFC 8945 4.2).
const TSIG_TYPE: u16 = 250;
const TSIG_CLASS_ANY: u16 = 255;

/// Canonical (lower-case, uncompressed) wire form of a name, as TSIG digests it.
fn canonical_name_wire(name: &Name, out: &mut Vec<u8>) {
    for label in name.iter() {
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
}

/// The unsigned TSIG record of an error answer (BADKEY/BADSIG/BADTIME):
/// empty MAC, the error code set, as BIND sends it.
pub fn error_tsig_record(
    key_name: &Name,
    algorithm: &TsigAlgorithm,
    original_id: u16,
    error: u16,
) -> Record {
    let tsig = TSIG::new(
        algorithm.clone(),
        unix_now(),
        FUDGE,
        Vec::new(),
        original_id,
        error,
        Vec::new(),
    );
    make_tsig_record(key_name.clone(), tsig)
}

fn tsig_of(record: &Record) -> Result<&TSIG, TsigError> {
    match record.data() {
        RData::DNSSEC(DNSSECRData::TSIG(t)) => Ok(t),
        _ => Err(TsigError("signature record is not TSIG".to_string())),
    }
}

/// The TSIG error field of a response's TSIG record, if any (0 = none).
pub fn response_tsig_error(message: &Message) -> u16 {
    message
        .signature()
        .last()
        .and_then(|r| tsig_of(r).ok())
        .map(tsig_error_field)
        .unwrap_or(0)
}

/// Whether a response carries a TSIG that claims to sign it (a MAC and no TSIG
/// error). Such a response is verified whatever its rcode: an error answer
/// must not be trusted on the strength of a signature nobody checked. TSIG
/// error answers (BADKEY, BADSIG) come with an empty MAC and cannot be.
pub fn claims_signature(message: &Message) -> bool {
    message
        .signature()
        .last()
        .and_then(|r| tsig_of(r).ok())
        .is_some_and(|t| tsig_error_field(t) == 0 && !t.mac().is_empty())
}

/// hickory keeps the TSIG error field private: read it back from the rdata's
/// wire form (algorithm name, 6 time, 2 fudge, 2+n MAC, 2 original id, 2 error).
fn tsig_error_field(tsig: &TSIG) -> u16 {
    let mut buf = Vec::with_capacity(128);
    {
        let mut enc = BinEncoder::new(&mut buf);
        if tsig.emit(&mut enc).is_err() {
            return 0;
        }
    }
    let mut i = 0;
    while let Some(&len) = buf.get(i) {
        i += 1 + len as usize;
        if len == 0 {
            break;
        }
    }
    i += 8;
    let mac_len = match buf.get(i..i + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
        None => return 0,
    };
    i += 2 + mac_len + 2;
    buf.get(i..i + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .unwrap_or(0)
}

/// The RFC 8945 name of a TSIG error code.
pub fn tsig_error_name(code: u16) -> String {
    match code {
        16 => "BADSIG".to_string(),
        17 => "BADKEY".to_string(),
        18 => "BADTIME".to_string(),
        22 => "BADTRUNC".to_string(),
        c => format!("code {c}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, Query};
    use hickory_proto::rr::RecordType;

    fn key() -> TsigKey {
        TsigKey::new("k.", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0").unwrap()
    }

    #[test]
    fn parses_and_rejects_keys() {
        let k = key();
        assert_eq!(k.name.to_ascii(), "k.");
        assert_eq!(k.algorithm_name(), "hmac-sha256");
        assert!(TsigKey::new("k", "hmac-sha512", "AAAA").is_ok());
        assert!(matches!(
            TsigKey::new("k", "hmac-md5", "AAAA"),
            Err(TsigKeyError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            TsigKey::new("k", "hmac-sha256", "!!!"),
            Err(TsigKeyError::InvalidSecret { .. })
        ));
        assert!(matches!(
            TsigKey::new("", "hmac-sha256", "AAAA"),
            Err(TsigKeyError::InvalidName { .. })
        ));
        assert!(!format!("{k:?}").contains("c2Vj"));
    }

    #[test]
    fn a_bad_secret_is_named_without_quoting_it() {
        // The decoder would say "Invalid last symbol 112, offset 42": a secret character.
        let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vjp";
        let e = TsigKey::new("k", "hmac-sha256", secret).unwrap_err();
        let text = e.to_string();
        assert_eq!(text, "TSIG secret of key k is not valid base64");
        assert!(!text.contains("112") && !text.contains("42"), "{text}");
        for placeholder in ["<base64 secret>", "REPLACE_ME"] {
            let e = TsigKey::new("k", "hmac-sha256", placeholder).unwrap_err();
            assert!(
                matches!(e, TsigKeyError::PlaceholderSecret { .. }),
                "{placeholder}: {e}"
            );
            assert!(e.to_string().contains("placeholder"), "{e}");
        }
    }

    /// Signs a response chain as a server would (first message over the
    /// request MAC and all TSIG variables, later ones over the prior MAC and
    /// timers) and checks verification, including unsigned messages.
    #[test]
    fn verifies_chains_and_detects_tampering() {
        let k = key();
        let mut req = Message::new();
        req.set_id(7).add_query(Query::query(
            Name::from_ascii("z.").unwrap(),
            RecordType::AXFR,
        ));
        let (_, mut verifier) = k.sign(&mut req).unwrap();
        let request_mac = tsig_of(req.signature().last().unwrap())
            .unwrap()
            .mac()
            .to_vec();

        let signer = k.signer().unwrap();
        let now = unix_now();
        let mut prev = request_mac;
        let mut pending_unsigned: Vec<u8> = Vec::new();
        let mut wires = Vec::new();
        for i in 0..4u16 {
            let mut m = Message::new();
            m.set_id(7).set_message_type(MessageType::Response);
            m.add_answer(Record::from_rdata(
                Name::from_ascii(format!("a{i}.z.")).unwrap(),
                60,
                RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, i as u8)),
            ));
            if i == 1 {
                // unsigned intermediate message
                let w = m.to_vec().unwrap();
                pending_unsigned.extend_from_slice(&w);
                wires.push((w, m));
                continue;
            }
            let pre = TSIG::new(k.algorithm.clone(), now, FUDGE, vec![], 7, 0, vec![]);
            let mut tbs = Vec::new();
            tbs.extend_from_slice(&(prev.len() as u16).to_be_bytes());
            tbs.extend_from_slice(&prev);
            tbs.extend_from_slice(&pending_unsigned);
            let mut body = Vec::new();
            {
                // BinEncoder writes from offset 0 of its buffer.
                let mut enc = BinEncoder::new(&mut body);
                m.emit(&mut enc).unwrap();
                if i == 0 {
                    pre.emit_tsig_for_mac(&mut enc, &k.name).unwrap();
                } else {
                    enc.emit_u16((now >> 32) as u16).unwrap();
                    enc.emit_u32(now as u32).unwrap();
                    enc.emit_u16(FUDGE).unwrap();
                }
            }
            tbs.extend_from_slice(&body);
            let mac = signer.sign(&tbs).unwrap();
            pending_unsigned.clear();
            prev = mac.clone();
            m.add_tsig(make_tsig_record(k.name.clone(), pre.set_mac(mac)));
            let w = m.to_vec().unwrap();
            let m = Message::from_vec(&w).unwrap();
            wires.push((w, m));
        }
        for (i, (w, m)) in wires.iter().enumerate() {
            verifier
                .verify(w, m)
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
        }
        verifier.finish().unwrap();

        // Same chain with the unsigned message altered: the next MAC fails.
        let mut tampered = wires.clone();
        let last = tampered[1].0.len() - 1;
        tampered[1].0[last] ^= 1;
        let (_, mut v3) = {
            // rebuild a verifier with the original request MAC
            let mut r = Message::new();
            r.set_id(7);
            k.sign(&mut r).unwrap()
        };
        v3.prev_mac = tsig_of(req.signature().last().unwrap())
            .unwrap()
            .mac()
            .to_vec();
        let mut failed = false;
        for (w, m) in &tampered {
            if v3.verify(w, m).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "tampered unsigned message must break the chain");
    }

    /// The raw signer writes what hickory's message signer writes, byte for byte, and
    /// our verifier accepts a chain of raw-signed messages.
    #[test]
    fn raw_signing_matches_message_signing() {
        let k = key();
        let mut req = Message::new();
        req.set_id(9).add_query(Query::query(
            Name::from_ascii("z.").unwrap(),
            RecordType::AXFR,
        ));
        let (wire, mut verifier) = k.sign(&mut req).unwrap();
        let request = Message::from_vec(&wire).unwrap();
        let RequestAuth::Verified(mut by_message) =
            verify_request(std::slice::from_ref(&k), &wire, &request)
        else {
            panic!("request does not verify")
        };
        let RequestAuth::Verified(mut raw) =
            verify_request(std::slice::from_ref(&k), &wire, &request)
        else {
            panic!("request does not verify")
        };
        let now = unix_now();
        for i in 0..3u8 {
            let mut m = Message::new();
            m.set_id(9).set_message_type(MessageType::Response);
            m.add_answer(Record::from_rdata(
                Name::from_ascii(format!("a{i}.z.")).unwrap(),
                60,
                RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, i)),
            ));
            let mut bytes = m.to_vec().unwrap();
            let expected = by_message.sign_at(&mut m, now).unwrap();
            raw.sign_raw_at(&mut bytes, now).unwrap();
            assert_eq!(bytes, expected, "message {i}");
            let decoded = Message::from_vec(&bytes).unwrap();
            verifier.verify(&bytes, &decoded).unwrap();
        }
        verifier.finish().unwrap();
    }
}
