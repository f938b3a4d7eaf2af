//! The tokio driver: the only code with sockets and timers. One task per session owns its TCP
//! connection and its [`Session`]; the [`Speaker`] handle starts, changes and stops them.
//!
//! ```text
//!  Speaker::apply(Desired) ──commands──► session task ──► Session (pure) ──► bytes, deadlines
//!         ▲                                   │ TCP connect (source address, MD5), read, write
//!         └──────── watch: SessionStatus ◄────┘
//! ```
//!
//! A task never panics on what the peer sends and ends only when told to, so a router that
//! sends garbage, resets or never answers affects its own session alone.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::rib::RouteAttrs;
use crate::session::{Event, Session, SessionConfig, State};
use crate::wire::code;
use crate::{Error, Result, md5};

/// BGP's port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;
/// How long one write may block before the connection counts as dead: a peer that stopped
/// reading would otherwise stall the task past its own hold timer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `shutdown` waits for each task to send its Cease and close.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// One peer as the caller configures it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Unique name; routes refer to it.
    pub name: String,
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's TCP port, normally 179.
    pub port: u16,
    /// The peer's AS.
    pub peer_asn: u32,
    /// Our AS.
    pub my_asn: u32,
    /// Our BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0 or at least 3).
    pub hold_time: u16,
    /// Local address to connect from; also the default next hop.
    pub source_address: Option<IpAddr>,
    /// TCP MD5 password (RFC 2385).
    pub password: Option<String>,
    /// Graceful restart time in seconds to advertise; `None` for no GR capability.
    pub graceful_restart_time: Option<u16>,
    /// IPv4 next hop when the session runs over IPv6.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 next hop when the session runs over IPv4.
    pub next_hop_v6: Option<Ipv6Addr>,
}

impl PeerConfig {
    /// The session configuration for this peer; `restarted` sets the GR Restart State bit.
    pub fn session_config(&self, restarted: bool) -> Result<SessionConfig> {
        if self.password.as_ref().is_some_and(|p| p.is_empty() || p.len() > md5::MAX_KEY_LEN) {
            return Err(Error::InvalidConfig(format!(
                "peer {}: the password must be 1 to {} octets",
                self.name,
                md5::MAX_KEY_LEN
            )));
        }
        let mut cfg = SessionConfig::new(self.my_asn, self.peer_asn, self.router_id);
        cfg.hold_time = self.hold_time;
        cfg.graceful_restart = self.graceful_restart_time;
        cfg.restarted = restarted;
        cfg.next_hop_v4 = self.next_hop_v4;
        cfg.next_hop_v6 = self.next_hop_v6;
        // Distinct per peer and node, stable across restarts: the reconnect jitter's seed.
        cfg.jitter_seed = self
            .name
            .bytes()
            .chain(self.router_id.octets())
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        cfg.validate().map_err(|e| Error::InvalidConfig(format!("peer {}: {e}", self.name)))?;
        Ok(cfg)
    }
}

/// Everything the speaker should do: its peers, and per prefix the attributes towards each peer
/// that announces it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Peers by name.
    pub peers: BTreeMap<String, PeerConfig>,
    /// Prefix → peer name → attributes.
    pub routes: BTreeMap<IpNet, BTreeMap<String, RouteAttrs>>,
}

/// One session as metrics and status show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    /// State.
    pub state: State,
    /// Since when, on the wall clock.
    pub since: SystemTime,
    /// Prefixes the peer has from us.
    pub prefixes_sent: usize,
    /// UPDATEs sent.
    pub updates_sent: u64,
    /// UPDATEs received (validated, counted, not installed).
    pub updates_received: u64,
    /// Received UPDATEs treated as withdraw (RFC 7606).
    pub updates_treated_as_withdraw: u64,
    /// Times the session left Established.
    pub flaps: u64,
    /// Desired prefixes the session cannot carry.
    pub unexportable: usize,
    /// The last error.
    pub last_error: Option<String>,
}

/// What [`Speaker::apply`] changed; invalid peers are skipped and listed, never fatal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Sessions started.
    pub started: Vec<String>,
    /// Sessions restarted because their configuration changed.
    pub restarted: Vec<String>,
    /// Sessions stopped because their peer is gone.
    pub stopped: Vec<String>,
    /// Peers skipped, with why.
    pub invalid: Vec<(String, String)>,
    /// Route entries naming a peer that does not exist.
    pub unknown_peer_routes: usize,
}

enum Command {
    Routes(BTreeMap<IpNet, RouteAttrs>),
    Drain(bool),
    Stop { subcode: u8, message: String },
    ForceDown,
}

struct Handle {
    config: PeerConfig,
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<SessionStatus>,
    task: JoinHandle<()>,
}

/// The running speaker: one task per peer.
pub struct Speaker {
    sessions: BTreeMap<String, Handle>,
    restarted: bool,
    retired: Vec<JoinHandle<()>>,
}

impl Speaker {
    /// A speaker with no sessions. `restarted` says the process restarted and routers may hold
    /// our routes as stale: the first OPEN of each session sets the GR Restart State bit. A
    /// process cannot tell a crash from a first start, and the bit is harmless to a router that
    /// holds nothing of ours (RFC 4724 §4.2).
    pub fn new(restarted: bool) -> Speaker {
        Speaker { sessions: BTreeMap::new(), restarted, retired: Vec::new() }
    }

    /// Makes the running sessions match `desired`: starts new peers, restarts changed ones,
    /// stops removed ones, and hands each session its routes. Must run inside a tokio runtime.
    pub fn apply(&mut self, desired: &Desired) -> ApplyReport {
        let mut report = ApplyReport::default();
        // Stopped sessions' tasks end after their Cease; forget those that have.
        self.retired.retain(|t| !t.is_finished());
        let mut routes: BTreeMap<&str, BTreeMap<IpNet, RouteAttrs>> = BTreeMap::new();
        for (prefix, by_peer) in &desired.routes {
            for (peer, attrs) in by_peer {
                if desired.peers.contains_key(peer) {
                    routes.entry(peer).or_default().insert(*prefix, attrs.clone());
                } else {
                    report.unknown_peer_routes += 1;
                }
            }
        }
        let gone: Vec<String> =
            self.sessions.keys().filter(|n| !desired.peers.contains_key(*n)).cloned().collect();
        for name in gone {
            self.retire(&name, code::cease::PEER_DECONFIGURED, "peer removed");
            report.stopped.push(name);
        }
        for (name, peer) in &desired.peers {
            let mine = routes.remove(name.as_str()).unwrap_or_default();
            if let Some(h) = self.sessions.get(name) {
                if h.config == *peer {
                    let _ = h.commands.send(Command::Routes(mine));
                    continue;
                }
                self.retire(name, code::cease::OTHER_CONFIGURATION_CHANGE, "configuration changed");
                report.restarted.push(name.clone());
            } else {
                report.started.push(name.clone());
            }
            let config = match peer.session_config(self.restarted) {
                Ok(c) => c,
                Err(e) => {
                    report.started.retain(|n| n != name);
                    report.invalid.push((name.clone(), e.to_string()));
                    continue;
                }
            };
            let handle = spawn(peer.clone(), config, mine);
            self.sessions.insert(name.clone(), handle);
        }
        report
    }

    fn retire(&mut self, name: &str, subcode: u8, message: &str) {
        if let Some(h) = self.sessions.remove(name) {
            let _ = h.commands.send(Command::Stop { subcode, message: message.into() });
            self.retired.push(h.task);
        }
    }

    /// Every session's status, by peer name.
    pub fn status(&self) -> BTreeMap<String, SessionStatus> {
        self.sessions.iter().map(|(n, h)| (n.clone(), h.status.borrow().clone())).collect()
    }

    /// Watches one session's status.
    pub fn watch(&self, peer: &str) -> Option<watch::Receiver<SessionStatus>> {
        self.sessions.get(peer).map(|h| h.status.clone())
    }

    /// Takes one session down at once, without a NOTIFICATION: the hook for BFD ("the peer is
    /// gone"). The session reconnects with its usual backoff.
    pub fn force_down(&self, peer: &str) -> bool {
        self.sessions.get(peer).is_some_and(|h| h.commands.send(Command::ForceDown).is_ok())
    }

    /// Graceful shutdown (RFC 8326): re-announce everything with GRACEFUL_SHUTDOWN, give the
    /// routers `grace` to move traffic, then close every session with a Cease.
    pub async fn shutdown(mut self, grace: Duration) {
        let any_up = self.status().values().any(|s| s.state == State::Established);
        for h in self.sessions.values() {
            let _ = h.commands.send(Command::Drain(true));
        }
        if any_up && !grace.is_zero() {
            tokio::time::sleep(grace).await;
        }
        let names: Vec<String> = self.sessions.keys().cloned().collect();
        for name in names {
            self.retire(&name, code::cease::ADMINISTRATIVE_SHUTDOWN, "graceful shutdown");
        }
        for task in self.retired.drain(..) {
            let _ = tokio::time::timeout(STOP_TIMEOUT, task).await;
        }
    }
}

fn spawn(peer: PeerConfig, config: SessionConfig, routes: BTreeMap<IpNet, RouteAttrs>) -> Handle {
    let now = Instant::now();
    let (commands, rx) = mpsc::unbounded_channel();
    // Validated by the caller; a session that cannot be built never starts.
    let session = Session::new(config, now.into_std());
    let (tx, status) = watch::channel(match &session {
        Ok(s) => status_of(s, now),
        Err(e) => SessionStatus {
            state: State::Idle,
            since: SystemTime::now(),
            prefixes_sent: 0,
            updates_sent: 0,
            updates_received: 0,
            updates_treated_as_withdraw: 0,
            flaps: 0,
            unexportable: 0,
            last_error: Some(e.to_string()),
        },
    });
    let task = tokio::spawn({
        let peer = peer.clone();
        async move {
            if let Ok(mut session) = session {
                session.set_routes(now.into_std(), routes);
                run(&mut session, &peer, rx, &tx).await;
            }
        }
    });
    Handle { config: peer, commands, status, task }
}

fn status_of(s: &Session, now: Instant) -> SessionStatus {
    let age = now.into_std().saturating_duration_since(s.since());
    let stats = s.stats();
    SessionStatus {
        state: s.state(),
        since: SystemTime::now() - age,
        prefixes_sent: s.prefixes_sent(),
        updates_sent: stats.updates_sent,
        updates_received: stats.updates_received,
        updates_treated_as_withdraw: stats.updates_treated_as_withdraw,
        flaps: stats.flaps,
        unexportable: stats.unexportable,
        last_error: stats.last_error.clone(),
    }
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// One session's task: runs until told to stop or the speaker is dropped.
async fn run(
    session: &mut Session,
    peer: &PeerConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    status: &watch::Sender<SessionStatus>,
) {
    let mut stream: Option<TcpStream> = None;
    let mut connecting: Option<Connecting> = None;
    let mut stopping = false;
    let mut buf = vec![0u8; 16 * 1024];
    session.start(Instant::now().into_std());
    loop {
        // Apply what the session asked for: writes first (a NOTIFICATION goes out before the
        // Close that follows it), then events; repeat while either produced more.
        loop {
            let mut progressed = false;
            while let Some(bytes) = session.poll_transmit() {
                progressed = true;
                let Some(s) = stream.as_mut() else { continue };
                let written = tokio::time::timeout(WRITE_TIMEOUT, s.write_all(&bytes)).await;
                if !matches!(written, Ok(Ok(()))) {
                    stream = None;
                    session.handle_closed(Instant::now().into_std());
                }
            }
            while let Some(event) = session.poll_event() {
                progressed = true;
                match event {
                    Event::Connect => connecting = Some(Box::pin(connect(peer.clone()))),
                    Event::Close => {
                        if let Some(mut s) = stream.take() {
                            let _ = tokio::time::timeout(WRITE_TIMEOUT, s.shutdown()).await;
                        }
                        connecting = None;
                    }
                    Event::Established => {
                        tracing::info!(peer = %peer.name, address = %peer.address, "session established");
                    }
                    Event::Down(reason) => {
                        tracing::warn!(peer = %peer.name, address = %peer.address, %reason, "session down");
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        status.send_replace(status_of(session, Instant::now()));
        if stopping && session.state() == State::Idle {
            return;
        }
        let deadline = session.poll_timeout().map(Instant::from_std);
        tokio::select! {
            () = sleep_until(deadline) => session.handle_timeout(Instant::now().into_std()),
            read = read(&mut stream, &mut buf) => {
                let now = Instant::now().into_std();
                match read {
                    Ok(n) if n > 0 => session.handle_input(now, &buf[..n]),
                    _ => {
                        stream = None;
                        session.handle_closed(now);
                    }
                }
            }
            connected = finish(&mut connecting) => {
                connecting = None;
                let now = Instant::now().into_std();
                match connected.and_then(|s| Ok((s.local_addr()?, s))) {
                    Ok((local, s)) => {
                        let _ = s.set_nodelay(true);
                        stream = Some(s);
                        session.handle_connected(now, local);
                    }
                    Err(e) => {
                        tracing::debug!(peer = %peer.name, error = %e, "connect failed");
                        session.handle_connect_failed(now);
                    }
                }
            }
            command = commands.recv() => {
                let now = Instant::now().into_std();
                match command {
                    Some(Command::Routes(routes)) => session.set_routes(now, routes),
                    Some(Command::Drain(on)) => session.drain(now, on),
                    Some(Command::ForceDown) => session.force_down(now),
                    Some(Command::Stop { subcode, message }) => {
                        stopping = true;
                        session.stop(now, subcode, &message);
                    }
                    None => {
                        stopping = true;
                        session.stop(now, code::cease::ADMINISTRATIVE_SHUTDOWN, "speaker stopped");
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn read(stream: &mut Option<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    match stream {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn finish(connecting: &mut Option<Connecting>) -> io::Result<TcpStream> {
    match connecting {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Opens the TCP connection: optional source address, MD5 key before the SYN.
async fn connect(peer: PeerConfig) -> io::Result<TcpStream> {
    let addr = SocketAddr::new(peer.address, peer.port);
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(password) = &peer.password {
        md5::set_key(socket.as_fd(), addr, password.as_bytes())?;
    }
    if let Some(source) = peer.source_address {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    socket.connect(addr).await
}

#[cfg(test)]
mod tests;
