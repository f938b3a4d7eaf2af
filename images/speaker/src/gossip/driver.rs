//! The UDP side of gossip: one socket, one task. Receives and authenticates datagrams, feeds
//! the [`Membership`] state machine, sends what it returns, runs its timers, and publishes the
//! [`Liveness`] view on every change. A stop request sends `leave` before returning.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::Liveness;
use super::codec::{self, Envelope, KeyRing, ReplayGuard};
use super::membership::{MemberState, Membership, Outgoing, Tuning};
use crate::metrics::{Metrics, ReasonLabel, StateLabel};

/// Largest datagram accepted: the UDP maximum, so a full-view reply is never truncated.
const MAX_DATAGRAM: usize = 65_535;

/// Gossip settings.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// This node's name, the member name.
    pub node: String,
    /// Local address and port of the UDP socket.
    pub bind: SocketAddr,
    /// Static peers to join through (this node's own address may be among them).
    pub peers: Vec<SocketAddr>,
    /// The keys in force.
    pub keys: KeyRing,
    /// Where the ring was read from ([`KeyRing::from_file`]); re-read every
    /// `key_reload_interval`, so a rotated Secret applies without a restart.
    pub key_file: Option<PathBuf>,
    /// How often the key ring is re-read. 5 s: the kubelet itself updates mounted Secrets
    /// only about once a minute, and reading two small files costs nothing.
    pub key_reload_interval: Duration,
    /// Protocol timing.
    pub tuning: Tuning,
    /// How long nodes never seen count as live after start ([`Liveness`]). 5 s: static peers
    /// are pinged every second, so a running peer is seen within one or two seconds.
    pub join_grace: Duration,
    /// The incarnation base: `None` reads the wall clock at bind (tests set a past time to
    /// play a speaker whose clock went backwards across a restart).
    pub boot_ms: Option<u64>,
    /// Accepted clock difference between speakers, either way. 10 s: node clocks run NTP
    /// (skew of milliseconds), and a replayed recording older than this is dropped.
    pub replay_window: Duration,
}

impl GossipConfig {
    /// Settings with the default timing and a fixed ring.
    pub fn new(node: String, bind: SocketAddr, peers: Vec<SocketAddr>, keys: KeyRing) -> Self {
        Self {
            node,
            bind,
            peers,
            keys,
            key_file: None,
            key_reload_interval: Duration::from_secs(5),
            tuning: Tuning::default(),
            join_grace: Duration::from_secs(5),
            boot_ms: None,
            replay_window: Duration::from_secs(10),
        }
    }
}

/// Why gossip could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The UDP socket could not be bound.
    #[error("cannot bind the gossip socket to {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Receiving failed for good.
    #[error("gossip socket receive failed")]
    Receive(#[source] std::io::Error),
}

/// A bound gossip member, ready to [`Gossip::run`].
#[derive(Debug)]
pub struct Gossip {
    socket: UdpSocket,
    keys: KeyRing,
    key_file: Option<PathBuf>,
    key_reload_interval: Duration,
    /// The last key ring reload error logged, so that it is logged once.
    key_problem: Option<String>,
    /// This run's life ([`Envelope::life`]).
    life: u64,
    membership: Membership,
    guard: ReplayGuard,
    metrics: Arc<Metrics>,
    view: watch::Sender<Arc<Liveness>>,
    seq: u64,
    grace_end: Option<Instant>,
    /// Whether the last published view had a majority.
    quorum: bool,
    /// Peers discovered at run time (the Kubernetes source's speaker pods), if any.
    seed_updates: Option<watch::Receiver<Vec<SocketAddr>>>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Gossip {
    /// Binds the socket. The view starts as "everyone live" (join grace).
    pub async fn bind(config: GossipConfig, metrics: Arc<Metrics>) -> Result<Self, GossipError> {
        let socket = UdpSocket::bind(config.bind)
            .await
            .map_err(|source| GossipError::Bind { addr: config.bind, source })?;
        let local = socket.local_addr().ok();
        let peers = config.peers.into_iter().filter(|p| Some(*p) != local).collect();
        let boot = config.boot_ms.unwrap_or_else(unix_ms);
        let now = Instant::now();
        // Boot time as incarnation: a restarted speaker outranks its previous life in every
        // peer's view without remembering anything. Should its clock have gone backwards, the
        // peers tell it about its previous life's incarnation and it refutes above that; its
        // datagrams are a new life for their replay guards either way.
        let membership =
            Membership::new(config.node.clone(), boot, peers, config.tuning, now.into_std());
        let millis = u64::try_from(config.replay_window.as_millis()).unwrap_or(u64::MAX);
        let quorum = membership.quorum();
        let (view, _) =
            watch::channel(Arc::new(Liveness::new(membership.view(), true, quorum.is_majority())));
        let gossip = Self {
            socket,
            keys: config.keys,
            key_file: config.key_file,
            key_reload_interval: config.key_reload_interval,
            key_problem: None,
            life: random_life(),
            membership,
            guard: ReplayGuard::new(millis),
            metrics,
            view,
            seq: 0,
            grace_end: Some(now + config.join_grace),
            quorum: quorum.is_majority(),
            seed_updates: None,
        };
        gossip.update_metrics();
        gossip.metrics.set_gossip_health(quorum.reached, quorum.known, gossip.quorum);
        Ok(gossip)
    }

    /// Follows `seeds`: every change replaces the seed list, static peers included (this
    /// node's own address is skipped).
    pub fn with_seed_updates(mut self, seeds: watch::Receiver<Vec<SocketAddr>>) -> Self {
        self.seed_updates = Some(seeds);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The liveness view, updated on every membership change.
    pub fn liveness(&self) -> watch::Receiver<Arc<Liveness>> {
        self.view.subscribe()
    }

    /// Runs until `stop` fires (or its sender is dropped), then announces the departure.
    pub async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), GossipError> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut reload = tokio::time::interval(self.key_reload_interval);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(node = %self.membership.me(), addr = ?self.local_addr().ok(), "gossip started");
        loop {
            let mut deadline = Instant::from_std(self.membership.next_deadline());
            if let Some(grace) = self.grace_end {
                deadline = deadline.min(grace);
            }
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, source)) => {
                        let out = self.receive(&buf[..len], source);
                        self.send(out).await;
                    }
                    // ICMP port unreachable from a dead peer surfaces here on Linux; it says
                    // nothing about our socket.
                    Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(error) => return Err(GossipError::Receive(error)),
                },
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    if self.grace_end.is_some_and(|g| now >= g) {
                        self.grace_end = None;
                        if self.membership.view().len() > 1 {
                            tracing::info!("join grace over: nodes never seen in gossip count as dead");
                        } else {
                            tracing::warn!(
                                "join grace over and no other speaker heard from: taking over \
                                 nothing until one is (check that the gossip port is open \
                                 between the nodes and that every speaker has the same key)"
                            );
                        }
                    }
                    let out = self.membership.tick(now.into_std());
                    self.send(out).await;
                }
                _ = reload.tick(), if self.key_file.is_some() => self.reload_keys(),
                Some(seeds) = next_seeds(&mut self.seed_updates) => {
                    let local = self.local_addr().ok();
                    let seeds = seeds.into_iter().filter(|s| Some(*s) != local).collect();
                    self.membership.set_seeds(seeds, Instant::now().into_std());
                }
                _ = &mut stop => {
                    let out = self.membership.leave();
                    tracing::info!(peers = out.len(), "gossip leaving");
                    self.send(out).await;
                    self.publish();
                    return Ok(());
                }
            }
            self.publish();
        }
    }

    /// Re-reads the key ring; a failure keeps the ring in force, counted and logged once.
    fn reload_keys(&mut self) {
        let Some(path) = &self.key_file else { return };
        match KeyRing::from_file(path) {
            Ok(ring) => {
                if self.key_problem.take().is_some() {
                    tracing::info!(path = %path.display(), "gossip key ring readable again");
                }
                if ring != self.keys {
                    tracing::info!(path = %path.display(), keys = ring.len(), "gossip key ring reloaded");
                    self.keys = ring;
                }
            }
            Err(error) => {
                let text = crate::error_chain(&error);
                if self.key_problem.as_ref() != Some(&text) {
                    self.metrics.key_errors.inc();
                    tracing::warn!(error = %text, "cannot reload the gossip key ring; keeping the keys in force");
                    self.key_problem = Some(text);
                }
            }
        }
    }

    fn receive(&mut self, datagram: &[u8], source: SocketAddr) -> Vec<Outgoing> {
        let local =
            self.socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let checked = codec::open(&self.keys, local, datagram)
            .and_then(|envelope| self.guard.check(&envelope, unix_ms()).map(|()| envelope));
        match checked {
            Ok(envelope) => {
                self.membership.receive(source, envelope.message, Instant::now().into_std())
            }
            Err(reason) => {
                self.metrics
                    .gossip_dropped
                    .get_or_create(&ReasonLabel { reason: reason.label() })
                    .inc();
                tracing::debug!(%source, reason = reason.label(), "gossip datagram dropped");
                Vec::new()
            }
        }
    }

    async fn send(&mut self, out: Vec<Outgoing>) {
        for outgoing in out {
            self.seq = self.seq.wrapping_add(1);
            let envelope = Envelope {
                to: outgoing.to,
                life: self.life,
                seq: self.seq,
                time_ms: unix_ms(),
                message: outgoing.message,
            };
            let datagram = codec::seal(&self.keys, &envelope);
            if let Err(error) = self.socket.send_to(&datagram, outgoing.to).await {
                // A peer's unreachable network is what probing is for; not our failure.
                tracing::debug!(to = %outgoing.to, %error, "gossip send failed");
            }
        }
    }

    /// Logs the view changes and publishes the view when it changed.
    fn publish(&mut self) {
        let changes = self.membership.take_changes();
        for change in &changes {
            tracing::info!(
                member = %change.name,
                from = change.from.map_or("unknown", MemberState::label),
                to = change.to.label(),
                "gossip member state changed"
            );
        }
        let view = self.membership.view();
        // Never-seen nodes count as dead after the grace only once some other speaker has been
        // heard from. A speaker that has heard from nobody is far more likely cut off (a
        // blocked port, a wrong key) than the only survivor; taking over every address then
        // would make several nodes answer for the same IPs.
        let unknown_live = self.grace_end.is_some() || view.len() <= 1;
        let quorum = self.membership.quorum();
        if quorum.is_majority() != self.quorum {
            self.quorum = quorum.is_majority();
            if self.quorum {
                tracing::info!(
                    reached = quorum.reached,
                    known = quorum.known,
                    "gossip reaches a majority of the speakers: ready, taking over dead owners' addresses"
                );
            } else {
                tracing::warn!(
                    reached = quorum.reached,
                    known = quorum.known,
                    "gossip reaches no majority of the speakers: not ready, taking over nothing \
                     and releasing the addresses a backup may take over (check that the gossip \
                     port is open between the nodes and that every speaker has the same key)"
                );
            }
        }
        self.metrics.set_gossip_health(quorum.reached, quorum.known, self.quorum);
        // Metrics first: whoever wakes up on the new view reads metrics that already match it.
        if !changes.is_empty() {
            self.update_metrics();
        }
        let liveness = Liveness::new(view, unknown_live, self.quorum);
        self.view.send_if_modified(|current| {
            if **current == liveness {
                return false;
            }
            *current = Arc::new(liveness);
            true
        });
    }

    fn update_metrics(&self) {
        let view = self.membership.view();
        for state in MemberState::ALL {
            let count = view.values().filter(|s| **s == state).count();
            self.metrics
                .gossip_members
                .get_or_create(&StateLabel { state: state.label() })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
}

/// A number no earlier run of this speaker drew: the standard library's per-process random
/// hash keys, so no clock is involved (the clock may have gone backwards since).
fn random_life() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The next seed list, or never when there is no feed or it is gone (the static peers stay).
async fn next_seeds(
    updates: &mut Option<watch::Receiver<Vec<SocketAddr>>>,
) -> Option<Vec<SocketAddr>> {
    let Some(receiver) = updates else { return std::future::pending().await };
    if receiver.changed().await.is_err() {
        *updates = None;
        return None;
    }
    Some(receiver.borrow_and_update().clone())
}
