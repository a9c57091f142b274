//! Secondary zones: zonekeeper writes nothing; it compares the backend's SOA serial with the
//! masters' and sends the backend a NOTIFY when it lags, so it transfers at once.

use hickory_proto::rr::Name;

use super::config::{Endpoint, ZoneConfig};
use super::pass::{Mode, PassError, resolve_server, soa_serial};
use crate::dns::notify::send_notify;
use crate::dns::query::QueryOptions;
use crate::dns::wire::serial_gt;

/// What a secondary check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryReport {
    /// The serial the backend serves.
    pub backend_serial: u32,
    /// The highest serial among the masters that answered.
    pub master_serial: Option<u32>,
    /// Masters that did not answer, with why.
    pub unreachable: Vec<String>,
    /// Whether the backend was sent a NOTIFY because it lagged.
    pub notified: bool,
}

impl SecondaryReport {
    /// Whether the backend serves at least the masters' serial.
    pub fn in_sync(&self) -> bool {
        self.master_serial
            .is_none_or(|m| !serial_gt(m, self.backend_serial))
    }
}

/// Queries the backend and every master, and (in `Mode::Apply`) NOTIFYs a lagging backend.
pub async fn observe(cfg: &ZoneConfig, mode: Mode) -> Result<SecondaryReport, PassError> {
    let backend_serial = soa_serial(&cfg.backend, &cfg.origin).await?;
    let mut master_serial: Option<u32> = None;
    let mut unreachable = Vec::new();
    for master in &cfg.masters {
        let endpoint = Endpoint {
            server: master.clone(),
            ..cfg.transfer.clone()
        };
        match soa_serial(&endpoint, &cfg.origin).await {
            Ok(s) => {
                if master_serial.is_none_or(|m| serial_gt(s, m)) {
                    master_serial = Some(s);
                }
            }
            Err(e) => unreachable.push(format!("{master}: {e}")),
        }
    }
    let mut report = SecondaryReport {
        backend_serial,
        master_serial,
        unreachable,
        notified: false,
    };
    if !report.in_sync() && mode == Mode::Apply {
        notify(&cfg.backend, &cfg.origin, master_serial).await?;
        report.notified = true;
    }
    Ok(report)
}

async fn notify(endpoint: &Endpoint, origin: &Name, serial: Option<u32>) -> Result<(), PassError> {
    let addr = resolve_server(&endpoint.server).await?;
    let opts = QueryOptions {
        tsig: endpoint.key.clone(),
        timeout: endpoint.timeout,
        ..QueryOptions::default()
    };
    Ok(send_notify(addr, origin, serial, &opts).await?)
}
