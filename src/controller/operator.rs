//! `zonekeeper run`: metrics and health endpoints, optional leader election, and the
//! controllers, until a shutdown signal (or, with leader election, the loss of the lease).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::sync::watch;

use super::context::{self, Context, Settings};
use super::dns_zone;
use super::leader::{LeaderConfig, LeaderElector};
use super::outgoing::Outgoing;
use super::zone_lock::ZoneLocks;
use super::zone_sync::{self, SyncContext};
use crate::admission::server as webhook_server;
use crate::admission::{WebhookError, WebhookOptions};
use crate::dns::outgoing::{TransferOptions, TransferServer};
use crate::telemetry::{self, Metrics};

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct OperatorOptions {
    /// Namespaces to watch; empty = all.
    pub namespaces: Vec<String>,
    pub metrics_addr: SocketAddr,
    pub concurrency: u16,
    /// `Some` enables leader election.
    pub leader: Option<LeaderOptions>,
    pub settings: Settings,
    /// This instance's name (events, lease holder).
    pub identity: String,
    /// Where the transfer server for outgoing transfers listens (UDP and TCP); none when `None`.
    pub transfer_addr: Option<SocketAddr>,
    /// `Some`: serve the admission webhooks (on every replica, leader or not).
    pub webhook: Option<WebhookOptions>,
}

/// Where the leader Lease lives.
#[derive(Clone, Debug)]
pub struct LeaderOptions {
    pub lease_name: String,
    pub lease_namespace: String,
    pub lease_duration: Duration,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve transfers on {addr}: {source}")]
    Transfer {
        addr: SocketAddr,
        #[source]
        source: crate::dns::server::ServerError,
    },
    #[error("lost the leader lease; stopping so a standby takes over")]
    LostLeadership,
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

/// A running operator's handles, for tests and `main`.
pub struct Running {
    /// Where `/metrics`, `/livez` and `/readyz` are served.
    pub metrics_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    /// `true` while this instance may write.
    pub leader: watch::Receiver<bool>,
    /// Where the transfer server listens, when it runs.
    pub transfer_addr: Option<SocketAddr>,
    /// Where the admission webhooks are served, when enabled.
    pub webhook_addr: Option<SocketAddr>,
}

/// Aborts a spawned task when dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs until `shutdown` flips to true. `on_start` receives the bound addresses first.
pub async fn run(
    client: kube::Client,
    opts: OperatorOptions,
    mut shutdown: watch::Receiver<bool>,
    on_start: impl FnOnce(Running),
) -> Result<(), OperatorError> {
    let metrics = Arc::new(Metrics::default());
    let (metrics_addr, server) = telemetry::serve(opts.metrics_addr, metrics.clone())
        .await
        .map_err(|source| OperatorError::Metrics {
            addr: opts.metrics_addr,
            source,
        })?;
    // Aborted when `run` is dropped: a crashed (aborted) operator must neither keep serving
    // nor keep renewing its lease, or no standby could ever take over.
    let server = AbortOnDrop(tokio::spawn(server));
    // Every replica listens, so the Service never sends a peer to a closed port.
    let transfer = match opts.transfer_addr {
        Some(addr) => Some(
            TransferServer::start(addr, TransferOptions::default())
                .await
                .map_err(|source| OperatorError::Transfer { addr, source })?,
        ),
        None => None,
    };
    // Standbys refuse and count too: every replica exports its refusals from the start.
    if let Some(t) = &transfer {
        metrics.watch_outgoing(&t.handle());
    }
    let outgoing = transfer
        .as_ref()
        .map(|t| Arc::new(Outgoing::new(t.handle())));
    // Every replica answers admission reviews: the API server reaches any of them through the
    // Service, and a standby that refused would make zone edits fail at random.
    let webhook = match &opts.webhook {
        Some(w) => Some(webhook_server::start(client.clone(), w).await?),
        None => None,
    };
    let webhook_addr = webhook.as_ref().map(|w| w.addr);
    let _webhook_tasks = webhook.map(|w| (AbortOnDrop(w.serve), w.inject.map(AbortOnDrop)));

    let (leader_tx, leader_rx) = watch::channel(opts.leader.is_none());
    // Until it leads, a replica serves the outgoing zones as the leader saved them.
    let _replica = outgoing.as_ref().map(|o| {
        AbortOnDrop(tokio::spawn(o.replica(
            client.clone(),
            opts.namespaces.clone(),
            opts.identity.clone(),
            leader_rx.clone(),
        )))
    });
    // Without election the sender stays here, unused, so leadership never reads as lost.
    let mut leader_tx = Some(leader_tx);
    // The elector has its own stop signal, sent only once the controllers have ended: releasing
    // the lease while a reconcile still writes would let the standby write at the same time.
    let (elector_stop, elector_stop_rx) = watch::channel(false);
    let elector = opts
        .leader
        .as_ref()
        .zip(leader_tx.take())
        .map(|(l, leader_tx)| {
            let api: Api<Lease> = Api::namespaced(client.clone(), &l.lease_namespace);
            let elector = LeaderElector::new(
                api,
                LeaderConfig {
                    lease_name: l.lease_name.clone(),
                    identity: opts.identity.clone(),
                    lease_duration: l.lease_duration,
                },
            );
            AbortOnDrop(tokio::spawn(elector.run(leader_tx, elector_stop_rx)))
        });
    on_start(Running {
        metrics_addr,
        metrics: metrics.clone(),
        leader: leader_rx.clone(),
        transfer_addr: transfer.as_ref().map(|t| t.local_addr()),
        webhook_addr,
    });

    // Standby: wait for the lease (or shutdown). Leadership is not readiness: a standby
    // answers /readyz once it could serve, which for us is at once.
    if opts.leader.is_some() {
        metrics.set_ready();
    }
    let mut leader = leader_rx.clone();
    // Decided first, acted on after: no channel borrow may live across the awaits below.
    let leading = tokio::select! {
        r = leader.wait_for(|l| *l) => r.is_ok(),
        _ = shutdown.wait_for(|s| *s) => false,
    };
    if !leading {
        let _ = elector_stop.send(true);
        if let Some(mut e) = elector {
            let _ = (&mut e.0).await;
        }
        return Ok(());
    }
    metrics.leader.set(1);
    tracing::info!(identity = %opts.identity, "leading: starting the controllers");

    let stop = {
        let mut shutdown = shutdown.clone();
        let mut leader = leader_rx.clone();
        async move {
            let lost = async {
                if leader.wait_for(|l| !*l).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => {}
                _ = lost => {}
            }
        }
    };
    let stop = futures::future::FutureExt::shared(Box::pin(stop));
    let namespaces: Vec<Option<String>> = if opts.namespaces.is_empty() {
        vec![None]
    } else {
        opts.namespaces.iter().cloned().map(Some).collect()
    };
    // Both controllers of every namespace share one lock table: a sync and a pass of the
    // same zone never overlap.
    let locks = Arc::new(ZoneLocks::default());
    let controllers = namespaces.into_iter().map(|ns| {
        let client = client.clone();
        let metrics = metrics.clone();
        let settings = opts.settings.clone();
        let identity = opts.identity.clone();
        let stop = stop.clone();
        let locks = locks.clone();
        let outgoing = outgoing.clone();
        async move {
            let stopped = stop.clone();
            let wakes = outgoing.as_ref().map(|o| o.wakes());
            let zones = dns_zone::run(
                |stores| {
                    let mut ctx = Context::new(
                        client.clone(),
                        metrics.clone(),
                        settings,
                        stores,
                        locks.clone(),
                        identity.clone(),
                    );
                    ctx.outgoing = outgoing;
                    Arc::new(ctx)
                },
                wakes,
                client.clone(),
                ns.clone(),
                opts.concurrency,
                stop.clone(),
            );
            let syncs = zone_sync::run(
                |store| {
                    Arc::new(SyncContext::new(
                        client.clone(),
                        context::recorder(&client, identity.clone()),
                        metrics.clone(),
                        locks.clone(),
                        store,
                    ))
                },
                client.clone(),
                ns,
                opts.concurrency,
                stop,
            );
            // A controller ends by itself only when its watch stream ended: then nothing
            // reconciles any more and `/livez` must say so.
            let ended = |which: &'static str| {
                let stopped = stopped.clone();
                let metrics = metrics.clone();
                move |()| {
                    if stopped.peek().is_none() {
                        metrics.watchdog.controller_ended(which);
                    }
                }
            };
            let zones = zones.map(ended("DnsZone"));
            let syncs = syncs.map(ended("ZoneSync"));
            futures::join!(zones, syncs);
        }
    });
    // Shutdown drains: the controllers finish what they started. A lost lease does not: the
    // standby may already write, so every reconcile in flight is dropped (cancelled at its
    // next await, before any further write) instead of being allowed to finish.
    let lost_lease = {
        let mut leader = leader_rx.clone();
        async move {
            if leader.wait_for(|l| !*l).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = join_all(controllers) => {}
        _ = lost_lease => {
            tracing::warn!(identity = %opts.identity, "leadership lost: reconciles in flight cancelled");
        }
    }
    drop(leader_tx);
    metrics.leader.set(0);
    let lost = !*leader_rx.borrow() && !*shutdown.borrow();
    // Only now that nothing writes any more: release the lease, so a standby takes over at
    // once instead of after the lease expired. After a step-down the lease may still name us
    // (the renewals failed, nobody took over yet); the release checks the holder and the
    // resourceVersion, so a lease another instance holds is left alone.
    if let Some(mut e) = elector {
        let _ = elector_stop.send(true);
        let _ = (&mut e.0).await;
    }
    drop(server);
    drop(transfer);
    if lost {
        return Err(OperatorError::LostLeadership);
    }
    Ok(())
}
