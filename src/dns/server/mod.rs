//! The embedded authoritative DNS server: serves [`Zone`]s over UDP and TCP, answers
//! queries, AXFR and IXFR (from an in-memory journal), accepts TSIG-signed RFC 2136
//! UPDATEs and NOTIFYs its peers after each change. `zonekeeper demo` runs zonekeeper
//! against it; tests use it as a backend with nothing installed.

pub mod handler;
mod stream;
pub mod wire_zone;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub use handler::{AxfrStream, JournalEntry, Reply, Shared, Transport, handle, handle_with};
pub use wire_zone::{WireZone, WireZoneError};

use super::model::Zone;
use super::query::QueryOptions;
use super::tsig::TsigKey;

/// A zone holding only its apex SOA (`serial`, hostmaster@origin) and one NS (`ns`), TTL
/// 3600: what a freshly provisioned zone looks like before zonekeeper fills it.
pub fn minimal_zone(origin: &Name, ns: &Name, serial: u32) -> Zone {
    let mut zone = Zone::new(origin.clone());
    let rname = Name::from_ascii("hostmaster")
        .ok()
        .and_then(|h| h.append_domain(origin).ok())
        .unwrap_or_else(|| origin.clone());
    zone.insert(Record::from_rdata(
        origin.clone(),
        3600,
        RData::SOA(SOA::new(ns.clone(), rname, serial, 3600, 600, 86_400, 60)),
    ));
    zone.insert(Record::from_rdata(
        origin.clone(),
        3600,
        RData::NS(NS(ns.clone())),
    ));
    zone
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A zone has no SOA record.
    #[error("zone {0} has no SOA record")]
    NoSoa(String),
}

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Keys accepted for signed requests (required for AXFR, IXFR and UPDATE).
    pub keys: Vec<TsigKey>,
    /// Servers sent a NOTIFY after each change.
    pub notify: Vec<SocketAddr>,
    /// Journal entries kept per zone for IXFR.
    pub journal_limit: usize,
    /// A TCP connection idle this long is closed.
    pub tcp_idle: Duration,
    /// TCP connections served at once; more are closed on accept, so a client opening
    /// connections without end cannot exhaust tasks and file descriptors.
    pub max_tcp_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            notify: Vec::new(),
            journal_limit: 1000,
            tcp_idle: Duration::from_secs(30),
            max_tcp_connections: 128,
        }
    }
}

/// A running server; dropping it stops it.
pub struct EmbeddedServer {
    listeners: Listeners,
    shared: Arc<Shared>,
    notify: Arc<std::sync::RwLock<Vec<SocketAddr>>>,
}

impl EmbeddedServer {
    /// Starts serving `zones` on `addr` (port 0 picks one, the same for UDP and TCP) with
    /// the given keys and default options.
    pub async fn start(
        addr: SocketAddr,
        keys: Vec<TsigKey>,
        zones: Vec<Zone>,
    ) -> Result<Self, ServerError> {
        Self::start_with(
            addr,
            ServerOptions {
                keys,
                ..ServerOptions::default()
            },
            zones,
        )
        .await
    }

    /// Starts with explicit options.
    pub async fn start_with(
        addr: SocketAddr,
        opts: ServerOptions,
        zones: Vec<Zone>,
    ) -> Result<Self, ServerError> {
        for zone in &zones {
            if zone.soa_serial().is_none() {
                return Err(ServerError::NoSoa(zone.origin().to_ascii()));
            }
        }
        let shared = Shared::new(opts.keys.clone(), zones, opts.journal_limit.max(1));
        let notify = Arc::new(std::sync::RwLock::new(opts.notify.clone()));
        let service = Arc::new(Embedded {
            shared: shared.clone(),
            notify: notify.clone(),
        });
        let listeners = listen(addr, service, opts.tcp_idle, opts.max_tcp_connections).await?;
        Ok(Self {
            listeners,
            shared,
            notify,
        })
    }

    /// The address both sockets listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners.local_addr
    }

    /// The zone as served now.
    pub fn zone(&self, origin: &Name) -> Option<Zone> {
        self.shared.zone(origin)
    }

    /// The zone's serial as served now.
    pub fn serial(&self, origin: &Name) -> Option<u32> {
        self.shared.zone(origin).and_then(|z| z.soa_serial())
    }

    /// Replaces a zone's content (journaled for IXFR) and notifies the peers. The caller
    /// sets the new serial in the SOA.
    pub fn put_zone(&self, zone: Zone) {
        let origin = zone.origin().clone();
        if let Some(serial) = self.shared.put_zone(zone) {
            spawn_notify(&self.notify, origin, serial);
        }
    }

    /// Sets the servers sent a NOTIFY after each change.
    pub fn set_notify_peers(&self, peers: Vec<SocketAddr>) {
        *self.notify.write().unwrap_or_else(|e| e.into_inner()) = peers;
    }

    /// Stops listening and waits for the listeners to end.
    pub async fn shutdown(self) {
        self.listeners.shutdown().await;
    }
}

/// The UDP and TCP listener tasks of one server; dropping them stops them at once.
pub struct Listeners {
    /// The address both sockets listen on.
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Listeners {
    /// Stops listening and waits for the listeners to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds TCP and UDP on one port; with port 0 a free TCP port may be taken for UDP, so a
/// few ports are tried.
async fn bind_pair(addr: SocketAddr) -> Result<(TcpListener, UdpSocket), ServerError> {
    let mut last = None;
    for _ in 0..20 {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let bound = tcp
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        match UdpSocket::bind(bound).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(source) if addr.port() == 0 => last = Some(source),
            Err(source) => return Err(ServerError::Bind { addr, source }),
        }
    }
    Err(ServerError::Bind {
        addr,
        source: last.unwrap_or_else(|| std::io::Error::other("no free port")),
    })
}

fn spawn_notify(peers: &std::sync::RwLock<Vec<SocketAddr>>, origin: Name, serial: u32) {
    let peers = peers.read().unwrap_or_else(|e| e.into_inner()).clone();
    for peer in peers {
        let origin = origin.clone();
        tokio::spawn(async move {
            let opts = QueryOptions::default();
            if let Err(e) = super::notify::send_notify(peer, &origin, Some(serial), &opts).await {
                tracing::warn!(%peer, zone = %origin, error = %e, "NOTIFY not acknowledged");
            }
        });
    }
}

/// What the listeners run for each request: the embedded server and the outgoing
/// transfer server share the sockets, framing and connection cap, and differ only here.
pub trait Service: Send + Sync + 'static {
    /// Answers one request from `source`; `None` drops it.
    fn handle(&self, wire: &[u8], transport: Transport, source: SocketAddr) -> Option<Reply>;

    /// Runs after the reply went out (e.g. NOTIFY the peers of a changed zone).
    fn after(&self, _reply: &Reply) {}
}

struct Embedded {
    shared: Arc<Shared>,
    notify: Arc<std::sync::RwLock<Vec<SocketAddr>>>,
}

impl Service for Embedded {
    fn handle(&self, wire: &[u8], transport: Transport, _source: SocketAddr) -> Option<Reply> {
        handle_with(&self.shared, wire, transport, transport == Transport::Tcp)
    }

    fn after(&self, reply: &Reply) {
        if let Some((origin, serial)) = &reply.changed {
            spawn_notify(&self.notify, origin.clone(), *serial);
        }
    }
}

/// Binds UDP and TCP on `addr` and serves `service` until the listeners are shut down or
/// dropped.
pub async fn listen<S: Service>(
    addr: SocketAddr,
    service: Arc<S>,
    tcp_idle: Duration,
    max_tcp_connections: usize,
) -> Result<Listeners, ServerError> {
    let (stop_tx, stop) = watch::channel(false);
    let (tcp, udp) = bind_pair(addr).await?;
    let local_addr = tcp
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let tasks = vec![
        tokio::spawn(udp_loop(Arc::new(udp), service.clone(), stop.clone())),
        tokio::spawn(tcp_loop(
            tcp,
            service,
            stop,
            tcp_idle,
            Arc::new(Semaphore::new(max_tcp_connections.max(1))),
        )),
    ];
    Ok(Listeners {
        local_addr,
        stop: stop_tx,
        tasks,
    })
}

async fn udp_loop<S: Service>(
    socket: Arc<UdpSocket>,
    service: Arc<S>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier sends surface here on some systems: keep going.
                Err(_) => continue,
            },
            _ = stop.changed() => return,
        };
        let Some(reply) = service.handle(&buf[..n], Transport::Udp, peer) else {
            continue;
        };
        if let Some(first) = reply.messages.first() {
            let _ = socket.send_to(first, peer).await;
        }
        service.after(&reply);
    }
}

async fn tcp_loop<S: Service>(
    listener: TcpListener,
    service: Arc<S>,
    mut stop: watch::Receiver<bool>,
    idle: Duration,
    slots: Arc<Semaphore>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
            _ = stop.changed() => return,
        };
        // Over the cap the connection is dropped at once: the client sees it closed and
        // retries later, rather than piling up in the backlog.
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = service.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = serve_tcp(stream, peer, &*service, stop, idle).await;
            drop(permit);
        });
    }
}

async fn serve_tcp<S: Service>(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: &S,
    mut stop: watch::Receiver<bool>,
    idle: Duration,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        tokio::select! {
            r = tokio::time::timeout(idle, stream.read_exact(&mut len)) => match r {
                Ok(Ok(_)) => {}
                _ => return Ok(()),
            },
            _ = stop.changed() => return Ok(()),
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let Some(mut reply) = service.handle(&buf, Transport::Tcp, peer) else {
            continue;
        };
        // One write per batch of messages: transfers of big zones stay cheap.
        let mut out = Vec::new();
        for message in &reply.messages {
            let Ok(n) = u16::try_from(message.len()) else {
                return Ok(());
            };
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(message);
            if out.len() > 256 * 1024 {
                stream.write_all(&out).await?;
                out.clear();
            }
        }
        stream.write_all(&out).await?;
        if let Some(xfr) = reply.stream.take() {
            (*xfr).write_to(&mut stream).await?;
        }
        service.after(&reply);
    }
}
