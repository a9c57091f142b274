//! RFC 1996 NOTIFY sender.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

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
        let mut msg = Message::new();
        let mut q = Query::query(zone.clone(), RecordType::SOA);
        q.set_query_class(DNSClass::IN);
        msg.set_id(wire::random_id())
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Notify)
            .set_authoritative(true)
            .add_query(q);
        if let Some(serial) = serial {
            let root = Name::root();
            msg.add_answer(Record::from_rdata(
                zone.clone(),
                0,
                RData::SOA(SOA::new(root.clone(), root, serial, 0, 0, 0, 0)),
            ));
        }
        msg
    };
    let resp = exchange_udp(&ctx, build, opts).await?;
    if resp.op_code() != OpCode::Notify {
        return Err(ctx.protocol("NOTIFY answered with another opcode"));
    }
    match wire::rcode_error(&resp) {
        Some(kind) => Err(ctx.err(kind)),
        None => Ok(()),
    }
}
