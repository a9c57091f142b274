//! A scriptable hostile DNS server: one zone on 127.0.0.1 (ephemeral port, UDP and TCP),
//! answering SOA queries and playing a [`Behaviour`] for AXFR/IXFR, switchable while it
//! runs. It counts the queries it gets and stops when dropped. Every loop is bounded
//! (a cap on messages per connection, the stop flag), and it serves loopback only.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use zonekeeper::dns::tsig::{RequestAuth, ResponseSigner, TsigKey, verify_request};

/// What the server does when asked for a transfer (and, for `Rcode` and `Delay`, for
/// every query).
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// A correct transfer of the zone: SOA, these records, SOA.
    Normal(Vec<Record>),
    /// SOA, then messages of 100 new A records each, never the closing SOA.
    EndlessRecords,
    /// SOA, then messages holding no record at all, without end.
    EndlessEmptyMessages,
    /// The first `n` messages of an endless transfer, then the connection closed.
    CloseMidTransfer(usize),
    /// A correct transfer signed with another key than the request's.
    WrongTsig,
    /// This response code to every query, SOA and UPDATE included.
    Rcode(ResponseCode),
    /// This response code to every query, signed with another key: a forged error.
    WrongTsigRcode(ResponseCode),
    /// Waits this long before every answer, then answers as `Normal` with the last
    /// records set (none if never set).
    Delay(Duration),
    /// The zone holding only its SOA: SOA, SOA.
    EmptyZone,
    /// As `Normal` with these records until an UPDATE arrives, then as
    /// `EndlessEmptyMessages`: only the client that sent the UPDATE gets stuck, in its
    /// re-reading of the zone.
    EndlessAfterUpdate(Vec<Record>),
}

/// Messages sent on one connection before the server gives up by itself: with the
/// stop flag, what keeps an endless behaviour from outliving its test.
const MAX_MESSAGES_PER_CONNECTION: u64 = 20_000_000;
const RECORDS_PER_MESSAGE: u32 = 100;

struct State {
    zone: Name,
    key: Option<TsigKey>,
    behaviour: Mutex<Behaviour>,
    normal_records: Mutex<Vec<Record>>,
    serial: AtomicU32,
    queries: AtomicUsize,
    transfers: AtomicUsize,
    /// Transfers asked for before an UPDATE turned `EndlessAfterUpdate` endless.
    endless_after: Mutex<Option<usize>>,
    /// Transfers still being sent, by number (the first is 1).
    open_transfers: Mutex<std::collections::BTreeSet<usize>>,
    stop: AtomicBool,
}

/// A running hostile server; dropping it stops it (listeners aborted, connections end
/// at their next message).
pub struct HostileServer {
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
}

impl HostileServer {
    /// Serves `zone` playing `behaviour`; signed requests are verified with `key` and
    /// answered signed with it (unsigned requests get unsigned answers).
    pub async fn start(zone: &str, key: Option<TsigKey>, behaviour: Behaviour) -> Self {
        let zone = Name::from_ascii(zone).unwrap();
        let (tcp, udp) = bind_pair().await;
        let addr = tcp.local_addr().unwrap();
        let normal = match &behaviour {
            Behaviour::Normal(r) | Behaviour::EndlessAfterUpdate(r) => r.clone(),
            _ => Vec::new(),
        };
        let state = Arc::new(State {
            zone,
            key,
            behaviour: Mutex::new(behaviour),
            normal_records: Mutex::new(normal),
            serial: AtomicU32::new(1),
            queries: AtomicUsize::new(0),
            transfers: AtomicUsize::new(0),
            endless_after: Mutex::default(),
            open_transfers: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        let tasks = vec![
            tokio::spawn(udp_loop(udp, state.clone())),
            tokio::spawn(tcp_loop(tcp, state.clone())),
        ];
        Self { addr, state, tasks }
    }

    /// Switches the behaviour; the serial moves so a client that polls sees a change.
    pub fn set(&self, behaviour: Behaviour) {
        if let Behaviour::Normal(r) | Behaviour::EndlessAfterUpdate(r) = &behaviour {
            *self.state.normal_records.lock().unwrap() = r.clone();
        }
        *self.state.behaviour.lock().unwrap() = behaviour;
        self.state.serial.fetch_add(1, Ordering::SeqCst);
    }

    /// Queries received (UDP and TCP messages, transfers included).
    pub fn queries(&self) -> usize {
        self.state.queries.load(Ordering::SeqCst)
    }

    /// AXFR/IXFR requests received.
    pub fn transfers(&self) -> usize {
        self.state.transfers.load(Ordering::SeqCst)
    }

    /// Transfers still being sent: an endless one ends when its client goes away.
    pub fn open_transfers(&self) -> usize {
        self.state.open_transfers.lock().unwrap().len()
    }

    /// With `EndlessAfterUpdate`: the transfers asked for before the UPDATE that made it
    /// endless, once one came.
    pub fn endless_after(&self) -> Option<usize> {
        *self.state.endless_after.lock().unwrap()
    }

    /// Whether a transfer asked for after the first `n` is still being sent.
    pub fn open_transfer_after(&self, n: usize) -> bool {
        self.state
            .open_transfers
            .lock()
            .unwrap()
            .last()
            .is_some_and(|&k| k > n)
    }

    /// The SOA serial it announces.
    pub fn serial(&self) -> u32 {
        self.state.serial.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn bind_pair() -> (TcpListener, UdpSocket) {
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        if let Ok(udp) = UdpSocket::bind(tcp.local_addr().unwrap()).await {
            return (tcp, udp);
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

fn soa(state: &State) -> Record {
    let zone = &state.zone;
    Record::from_rdata(
        zone.clone(),
        300,
        RData::SOA(SOA::new(
            Name::from_ascii("ns.hostile.invalid.").unwrap(),
            Name::from_ascii("hostmaster.hostile.invalid.").unwrap(),
            state.serial.load(Ordering::SeqCst),
            3600,
            600,
            86_400,
            60,
        )),
    )
}

/// 100 distinct A records, the `n`th batch: endless transfers never repeat a record,
/// so a reader that kept them would grow.
fn batch(zone: &Name, n: u64) -> Vec<Record> {
    (0..RECORDS_PER_MESSAGE)
        .map(|i| {
            let k = n * u64::from(RECORDS_PER_MESSAGE) + u64::from(i);
            Record::from_rdata(
                Name::from_ascii(format!("h{k}"))
                    .unwrap()
                    .append_domain(zone)
                    .unwrap(),
                300,
                RData::A(A::from(std::net::Ipv4Addr::from(k as u32))),
            )
        })
        .collect()
}

fn response(request: &Message, rcode: ResponseCode, with_question: bool) -> Message {
    let mut m = Message::new();
    m.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_authoritative(true)
        .set_response_code(rcode);
    if with_question {
        m.add_queries(request.queries().iter().cloned());
    }
    m
}

/// Signs the answers to one request as the behaviour says.
enum Signing {
    None,
    Chain(ResponseSigner),
    Wrong(TsigKey),
}

impl Signing {
    fn for_request(state: &State, wire: &[u8], request: &Message, wrong: bool) -> Self {
        let Some(key) = &state.key else {
            return Signing::None;
        };
        match verify_request(std::slice::from_ref(key), wire, request) {
            RequestAuth::Verified(_) if wrong => Signing::Wrong(
                TsigKey::new(
                    "another-key.",
                    "hmac-sha256",
                    "YW5vdGhlci1zZWNyZXQtYW5vdGhlci1zZWNyZXQ=",
                )
                .unwrap(),
            ),
            RequestAuth::Verified(signer) => Signing::Chain(signer),
            _ => Signing::None,
        }
    }

    fn encode(&mut self, mut message: Message) -> Vec<u8> {
        match self {
            Signing::None => message.to_vec().unwrap(),
            Signing::Chain(signer) => signer.sign(&mut message).unwrap(),
            Signing::Wrong(key) => key.sign(&mut message).unwrap().0,
        }
    }
}

fn behaviour(state: &State) -> Behaviour {
    state.behaviour.lock().unwrap().clone()
}

/// The one answer to a non-transfer query (SOA, anything else, UPDATE).
fn simple_answer(state: &State, request: &Message) -> Message {
    if let Behaviour::Rcode(code) | Behaviour::WrongTsigRcode(code) = behaviour(state) {
        return response(request, code, true);
    }
    let mut resp = response(request, ResponseCode::NoError, true);
    if request.op_code() == OpCode::Update {
        // Accepted (the zone's content stays as the behaviour says), and the serial moves as
        // a real server's does, so a client re-observes after its apply.
        state.serial.fetch_add(1, Ordering::SeqCst);
        let mut now = state.behaviour.lock().unwrap();
        if let Behaviour::EndlessAfterUpdate(_) = *now {
            *now = Behaviour::EndlessEmptyMessages;
            *state.endless_after.lock().unwrap() = Some(state.transfers.load(Ordering::SeqCst));
        }
    }
    let asks_soa = request
        .queries()
        .first()
        .is_some_and(|q| q.query_type() == RecordType::SOA && q.name() == &state.zone);
    if request.op_code() == OpCode::Query && asks_soa {
        resp.add_answer(soa(state));
    } else if request.op_code() == OpCode::Query {
        resp.add_name_server(soa(state));
    }
    resp
}

async fn delay_of(state: &State) {
    if let Behaviour::Delay(d) = behaviour(state) {
        tokio::time::sleep(d).await;
    }
}

async fn udp_loop(socket: UdpSocket, state: Arc<State>) {
    let mut buf = vec![0u8; 65_535];
    while !state.stop.load(Ordering::SeqCst) {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        state.queries.fetch_add(1, Ordering::SeqCst);
        let Ok(request) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if request.message_type() != MessageType::Query {
            continue;
        }
        delay_of(&state).await;
        let wrong = matches!(
            behaviour(&state),
            Behaviour::WrongTsig | Behaviour::WrongTsigRcode(_)
        );
        let mut signing = Signing::for_request(&state, &buf[..n], &request, wrong);
        let wire = signing.encode(simple_answer(&state, &request));
        let _ = socket.send_to(&wire, peer).await;
    }
}

async fn tcp_loop(listener: TcpListener, state: Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _ = serve(stream, &state).await;
        });
    }
}

async fn write(stream: &mut TcpStream, wire: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(wire.len()).map_err(std::io::Error::other)?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    stream.write_all(&framed).await
}

async fn serve(mut stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        stream.read_exact(&mut buf).await?;
        state.queries.fetch_add(1, Ordering::SeqCst);
        let Ok(request) = Message::from_vec(&buf) else {
            return Ok(());
        };
        delay_of(state).await;
        let now = behaviour(state);
        let wrong = matches!(now, Behaviour::WrongTsig | Behaviour::WrongTsigRcode(_));
        let mut signing = Signing::for_request(state, &buf, &request, wrong);
        let is_transfer = request.op_code() == OpCode::Query
            && request
                .queries()
                .first()
                .is_some_and(|q| matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR));
        if !is_transfer || matches!(now, Behaviour::Rcode(_) | Behaviour::WrongTsigRcode(_)) {
            write(&mut stream, &signing.encode(simple_answer(state, &request))).await?;
            continue;
        }
        let number = state.transfers.fetch_add(1, Ordering::SeqCst) + 1;
        state.open_transfers.lock().unwrap().insert(number);
        let sent = transfer(&mut stream, state, &request, &mut signing, now).await;
        state.open_transfers.lock().unwrap().remove(&number);
        sent?;
    }
}

async fn transfer(
    stream: &mut TcpStream,
    state: &State,
    request: &Message,
    signing: &mut Signing,
    now: Behaviour,
) -> std::io::Result<()> {
    let first = |records: Vec<Record>| {
        let mut m = response(request, ResponseCode::NoError, true);
        m.add_answers(records);
        m
    };
    let next = |records: Vec<Record>| {
        let mut m = response(request, ResponseCode::NoError, false);
        m.add_answers(records);
        m
    };
    let soa = soa(state);
    match now {
        Behaviour::Normal(_)
        | Behaviour::Delay(_)
        | Behaviour::WrongTsig
        | Behaviour::EndlessAfterUpdate(_) => {
            let mut records = vec![soa.clone()];
            records.extend(state.normal_records.lock().unwrap().iter().cloned());
            if records.len() == 1 {
                records.push(Record::from_rdata(
                    state.zone.clone(),
                    300,
                    RData::NS(NS(Name::from_ascii("ns.hostile.invalid.").unwrap())),
                ));
            }
            records.push(soa);
            let mut chunks = records.chunks(RECORDS_PER_MESSAGE as usize);
            if let Some(c) = chunks.next() {
                write(stream, &signing.encode(first(c.to_vec()))).await?;
            }
            for c in chunks {
                write(stream, &signing.encode(next(c.to_vec()))).await?;
            }
            Ok(())
        }
        Behaviour::EmptyZone => write(stream, &signing.encode(first(vec![soa.clone(), soa]))).await,
        Behaviour::EndlessRecords
        | Behaviour::EndlessEmptyMessages
        | Behaviour::CloseMidTransfer(_) => {
            write(stream, &signing.encode(first(vec![soa]))).await?;
            let limit = match now {
                Behaviour::CloseMidTransfer(n) => n.saturating_sub(1) as u64,
                _ => MAX_MESSAGES_PER_CONNECTION,
            };
            let empty = matches!(now, Behaviour::EndlessEmptyMessages);
            for n in 0..limit {
                if state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let records = if empty {
                    Vec::new()
                } else {
                    batch(&state.zone, n)
                };
                write(stream, &signing.encode(next(records))).await?;
            }
            // Closing mid-transfer (or after the cap) is the point: no closing SOA.
            stream.shutdown().await
        }
        Behaviour::Rcode(_) | Behaviour::WrongTsigRcode(_) => Ok(()),
    }
}
