//! Writing a whole-zone transfer while encoding it, message by message.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::handler::{AxfrStream, Packer, response_to, soa_record};
use crate::dns::model::name_eq;

/// Bytes gathered before one write: big enough for few system calls, small enough that
/// the encoded zone never piles up.
const WRITE_BATCH: usize = 256 * 1024;

/// Bytes per transfer message (see [`Packer::with_budget`]).
const MESSAGE_BUDGET: usize = 4_000;

impl AxfrStream {
    /// Encodes (and signs) the transfer and writes it, framed for TCP, to `out`.
    pub async fn write_to<W: AsyncWrite + Unpin>(mut self, out: &mut W) -> std::io::Result<()> {
        let zone = self.zone.clone();
        let request = &self.request;
        let mut buf = Vec::with_capacity(WRITE_BATCH + 65_536);
        let Some(soa) = soa_record(&zone) else {
            let mut resp = response_to(request, ResponseCode::ServFail);
            frame(&mut buf, encode_one(&mut resp, &mut self.signer)?)?;
            return out.write_all(&buf).await;
        };
        let mut packer = Packer::with_budget(request, MESSAGE_BUDGET);
        packer.push(soa.clone());
        for set in zone.rrsets() {
            if set.rtype == RecordType::SOA && name_eq(&set.name, zone.origin()) {
                continue;
            }
            for record in set.records() {
                packer.push(record);
            }
            for mut message in packer.take_full() {
                frame(&mut buf, encode_one(&mut message, &mut self.signer)?)?;
            }
            if buf.len() >= WRITE_BATCH {
                out.write_all(&buf).await?;
                buf.clear();
            }
        }
        packer.push(soa);
        for mut message in packer.finish() {
            frame(&mut buf, encode_one(&mut message, &mut self.signer)?)?;
        }
        out.write_all(&buf).await
    }
}

/// Encodes one transfer message; the packer's budget keeps it far below 64 KiB, so it
/// is not encoded a first time to check its size.
fn encode_one(
    message: &mut hickory_proto::op::Message,
    signer: &mut Option<crate::dns::tsig::ResponseSigner>,
) -> std::io::Result<Vec<u8>> {
    let wire = match signer {
        Some(s) => s.sign(message).map_err(|e| e.0),
        None => message.to_vec().map_err(|e| e.to_string()),
    };
    wire.map_err(|e| std::io::Error::other(format!("transfer message did not encode: {e}")))
}

fn frame(buf: &mut Vec<u8>, message: Vec<u8>) -> std::io::Result<()> {
    let n = u16::try_from(message.len())
        .map_err(|_| std::io::Error::other("transfer message over 64 KiB"))?;
    buf.extend_from_slice(&n.to_be_bytes());
    buf.extend_from_slice(&message);
    Ok(())
}
