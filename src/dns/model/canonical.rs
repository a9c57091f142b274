//! Wire forms of RDATA: canonical (RFC 4034 6.2), as written, and decoding.

use hickory_proto::rr::rdata::{CNAME, MX, NAPTR, NS, PTR, SRV};
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, Restrict};

/// Canonical wire form of one RDATA (RFC 4034 6.2): no name compression, and the
/// embedded names of NS, CNAME, PTR, MX, SRV and NAPTR lower-cased.
pub fn canonical_rdata(rdata: &RData) -> Vec<u8> {
    let lowered = match rdata {
        RData::NS(NS(n)) => Some(RData::NS(NS(n.to_lowercase()))),
        RData::CNAME(CNAME(n)) => Some(RData::CNAME(CNAME(n.to_lowercase()))),
        RData::PTR(PTR(n)) => Some(RData::PTR(PTR(n.to_lowercase()))),
        RData::MX(mx) => Some(RData::MX(MX::new(
            mx.preference(),
            mx.exchange().to_lowercase(),
        ))),
        RData::SRV(srv) => Some(RData::SRV(SRV::new(
            srv.priority(),
            srv.weight(),
            srv.port(),
            srv.target().to_lowercase(),
        ))),
        RData::NAPTR(n) => Some(RData::NAPTR(NAPTR::new(
            n.order(),
            n.preference(),
            n.flags().into(),
            n.services().into(),
            n.regexp().into(),
            n.replacement().to_lowercase(),
        ))),
        _ => None,
    };
    wire_rdata(lowered.as_ref().unwrap_or(rdata))
}

/// [`canonical_rdata`], or `None` when hickory cannot encode the data.
pub(super) fn try_canonical_rdata(rdata: &RData) -> Option<Vec<u8>> {
    let bytes = canonical_rdata(rdata);
    // The non-wire marker of `wire_rdata` starts with 0xff 0xff and then hickory's Debug
    // text; check by encoding again only when the bytes look like one.
    if bytes.starts_with(&[0xff, 0xff]) && !encodes(rdata) {
        return None;
    }
    Some(bytes)
}

pub(super) fn encodes(rdata: &RData) -> bool {
    let mut buf = Vec::new();
    let mut encoder = BinEncoder::new(&mut buf);
    rdata.emit(&mut encoder).is_ok()
}

/// Uncompressed wire form with names in their original case. Never fails: data hickory
/// cannot encode (which our parsers never produce) maps to a unique non-wire marker.
pub(super) fn wire_rdata(rdata: &RData) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    let ok = {
        let mut encoder = BinEncoder::new(&mut buf);
        encoder.set_canonical_names(true);
        rdata.emit(&mut encoder).is_ok()
    };
    if ok {
        buf
    } else {
        let mut marker = vec![0xff; 2];
        marker.extend_from_slice(format!("{rdata:?}").as_bytes());
        marker
    }
}

/// Why wire RDATA did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("record data is {0} bytes, more than 65535")]
    TooLong(usize),
    /// hickory's decoder refused it; its error is neither `Clone` nor `Eq`, so kept as text.
    #[error("invalid {rtype} data: {reason}")]
    Invalid { rtype: RecordType, reason: String },
    #[error("invalid {0} data: trailing bytes")]
    Trailing(RecordType),
}

/// Decodes wire RDATA of `rtype` with hickory, insisting every byte is used.
pub(super) fn decode_rdata(rtype: RecordType, wire: &[u8]) -> Result<RData, WireError> {
    let len = u16::try_from(wire.len()).map_err(|_| WireError::TooLong(wire.len()))?;
    let mut decoder = BinDecoder::new(wire);
    let rdata =
        RData::read(&mut decoder, rtype, Restrict::new(len)).map_err(|e| WireError::Invalid {
            rtype,
            reason: e.to_string(),
        })?;
    if decoder.index() != wire.len() {
        return Err(WireError::Trailing(rtype));
    }
    Ok(rdata)
}
