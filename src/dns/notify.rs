//! RFC 1996 NOTIFY sender.

use std::net::SocketAddr;

use hickory_proto::op::OpCode;
use hickory_proto::rr::{Name, RecordType};

use super::error::{DnsError, Operation};
use super::query::{QueryOptions, exchange_udp};
use super::wire::{self, Ctx};

/// Sends a NOTIFY for `zone` (with `serial` as a hint when given) and waits
/// for the acknowledgement, retrying over UDP with a doubling wait.
pub async fn send_notify(
    server: SocketAddr,
    zone: &Name,
    serial: Option<u32>,
    opts: &QueryOptions,
) -> Result<(), DnsError> {
    let ctx = Ctx {
        server,
        zone: zone.to_ascii(),
        op: Operation::Notify,
    };
    let build = || {
        let mut msg = wire::request(zone, RecordType::SOA, OpCode::Notify);
        msg.set_authoritative(true);
        if let Some(serial) = serial {
            msg.add_answer(wire::serial_soa(zone, serial));
        }
        msg
    };
    let resp = exchange_udp(&ctx, build, opts).await?;
    if resp.op_code() != OpCode::Notify {
        return Err(ctx.protocol("NOTIFY answered with another opcode"));
    }
    match wire::rcode_error(&resp, ctx.op) {
        Some(kind) => Err(ctx.err(kind)),
        None => Ok(()),
    }
}
