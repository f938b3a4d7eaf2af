//! The tokio driver: the only code of this crate with sockets and timers.
//!
//! ```text
//!   Bfd (handle) ── add_session / remove_session ──► endpoint task per local address
//!        │                                            ├─ rx socket  local:3784  (TTL checked)
//!        │                                            ├─ tx socket  local:49152-65535, TTL 255
//!        │                                            └─ sessions by peer, and by discriminator
//!        ├─ states():   watch of SessionKey → SessionStatus
//!        └─ counters(): packets in/out, invalid packets by reason, state changes
//! ```
//!
//! Demultiplexing (RFC 5880 §6.8.6, RFC 5881 §3): a packet with a nonzero Your Discriminator
//! belongs to the session with that discriminator, and must come from that session's peer; one
//! with Your Discriminator 0 (the peer does not know us yet) belongs to the session with its
//! source address. Whatever does not fit is counted under an [`Invalid`] reason and dropped —
//! bad packets are never fatal.
//!
//! An endpoint lives as long as the [`Bfd`] handle (an idle one holds two sockets), so that
//! re-adding a session never races a closing socket for port 3784. Dropping the handle stops
//! every endpoint; each session then sends one AdminDown packet, so peers know it was on
//! purpose (RFC 5882 §3.2); [`Bfd::shutdown`] waits until they are sent.

mod socket;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

pub use socket::{CONTROL_PORT, SOURCE_PORTS, TTL};

use crate::packet::{DecodeError, Diag, Packet, State};
use crate::session::{Event, Jitter as _, Params, Rejected, Session, XorShift};
use crate::{Error, Result};

/// Largest datagram read: a control packet is at most 255 bytes (8-bit Length field); more room
/// only lets an oversized datagram be read whole and rejected by the codec, not truncated.
const RECEIVE_BUFFER: usize = 1024;
/// Datagrams read per wake-up before timers get their turn, so a flood cannot starve them.
const RECEIVE_BATCH: usize = 64;
/// Attempts to draw an unused discriminator: with 2^32 values and a handful of sessions the
/// first draw succeeds; the bound only keeps the loop finite.
const DISCRIMINATOR_DRAWS: usize = 1024;

/// A session's identity: single-hop sessions are one per pair of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionKey {
    /// Our address: the packets' source, and where we listen.
    pub local: IpAddr,
    /// The peer's address.
    pub peer: IpAddr,
}

/// What a session looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// Our state.
    pub state: State,
    /// Why the session last went down.
    pub diag: Diag,
    /// The peer's state as it last said.
    pub remote_state: State,
    /// Our discriminator.
    pub local_discriminator: u32,
    /// The peer's discriminator (0 until heard).
    pub remote_discriminator: u32,
    /// Our periodic interval before jitter (`None` while the peer asks for no packets).
    pub tx_interval: Option<Duration>,
    /// How long the peer may be silent before we declare it down.
    pub detection_time: Duration,
    /// When `state` last changed (or the session was added).
    pub since: Instant,
}

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invalid {
    /// It is not a valid control packet.
    Decode(DecodeError),
    /// Its TTL or hop limit is not 255 (or the kernel did not say): not from a direct neighbour.
    Ttl(Option<u8>),
    /// Your Discriminator names no session of ours.
    UnknownDiscriminator,
    /// Your Discriminator names a session with another peer.
    WrongPeer,
    /// Your Discriminator is 0 and no session has this peer.
    NoSession,
    /// The session discarded it.
    Session(Rejected),
}

impl Invalid {
    /// A stable name for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Invalid::Decode(error) => error.label(),
            Invalid::Ttl(_) => "ttl_not_255",
            Invalid::UnknownDiscriminator => "unknown_discriminator",
            Invalid::WrongPeer => "wrong_peer",
            Invalid::NoSession => "no_session",
            Invalid::Session(rejected) => rejected.label(),
        }
    }
}

/// The driver's counters, all since the handle was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams received on port 3784.
    pub packets_in: u64,
    /// Control packets sent.
    pub packets_out: u64,
    /// Sends the kernel refused (no route, a full buffer); the session goes on.
    pub send_errors: u64,
    /// Receives that failed for another reason than "nothing queued".
    pub receive_errors: u64,
    /// Dropped datagrams by [`Invalid::label`].
    pub invalid: BTreeMap<&'static str, u64>,
    /// Sessions that came Up.
    pub ups: u64,
    /// Sessions that went Down from Init or Up.
    pub downs: u64,
}

/// What the endpoints report to the handle's users.
#[derive(Debug)]
struct Observed {
    states: watch::Sender<BTreeMap<SessionKey, SessionStatus>>,
    counters: Mutex<Counters>,
}

impl Observed {
    fn count(&self, update: impl FnOnce(&mut Counters)) {
        update(&mut self.counters.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

#[derive(Debug)]
struct EndpointHandle {
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
enum Command {
    Add { peer: IpAddr, discriminator: u32, params: Params, seed: u64 },
    Remove { peer: IpAddr },
}

#[derive(Debug)]
struct Registry {
    endpoints: BTreeMap<IpAddr, EndpointHandle>,
    sessions: BTreeMap<SessionKey, u32>,
    discriminators: BTreeSet<u32>,
    random: XorShift,
}

/// The handle to the driver; see the module documentation.
#[derive(Debug)]
pub struct Bfd {
    registry: Mutex<Registry>,
    observed: Arc<Observed>,
}

impl Default for Bfd {
    fn default() -> Self {
        Self::new()
    }
}

impl Bfd {
    /// A driver with no sessions. Its endpoints are tokio tasks: [`Bfd::add_session`] must be
    /// called inside a tokio runtime (outside one it returns [`Error::NoRuntime`]).
    pub fn new() -> Bfd {
        // Randomness for discriminators, jitter seeds and source ports, from the standard
        // library's per-process random hasher keys: no extra dependency for a few numbers.
        let seed = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        Bfd {
            registry: Mutex::new(Registry {
                endpoints: BTreeMap::new(),
                sessions: BTreeMap::new(),
                discriminators: BTreeSet::new(),
                random: XorShift::new(seed),
            }),
            observed: Arc::new(Observed {
                states: watch::Sender::new(BTreeMap::new()),
                counters: Mutex::default(),
            }),
        }
    }

    /// Starts a session from `local` to `peer`; it begins in Down and sends at once.
    pub fn add_session(&self, local: IpAddr, peer: IpAddr, params: Params) -> Result<SessionKey> {
        params.validate()?;
        if local.is_ipv4() != peer.is_ipv4() {
            return Err(Error::MixedFamilies { local, peer });
        }
        let key = SessionKey { local, peer };
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if registry.sessions.contains_key(&key) {
            return Err(Error::SessionExists(local, peer));
        }
        if !registry.endpoints.contains_key(&local) {
            // Both the socket registration and the spawn would panic without a runtime.
            let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
            let _entered = runtime.enter();
            let first_port = (registry.random.next_u32() & 0xffff) as u16;
            let sockets = socket::Sockets::bind(local, first_port)?;
            let (commands, inbox) = mpsc::unbounded_channel();
            let endpoint = Endpoint::new(local, sockets, self.observed.clone());
            let task = runtime.spawn(endpoint.run(inbox));
            registry.endpoints.insert(local, EndpointHandle { commands, task });
        }
        let Registry { random, discriminators, .. } = &mut *registry;
        let discriminator = (0..DISCRIMINATOR_DRAWS)
            .map(|_| random.next_u32())
            .find(|d| *d != 0 && !discriminators.contains(d))
            .ok_or(Error::NoDiscriminator)?;
        let seed = (u64::from(random.next_u32()) << 32) | u64::from(random.next_u32());
        let command = Command::Add { peer, discriminator, params, seed };
        registry.endpoints[&local].commands.send(command).map_err(|_| Error::Stopped)?;
        registry.discriminators.insert(discriminator);
        registry.sessions.insert(key, discriminator);
        self.observed.states.send_modify(|states| {
            states.insert(key, initial_status(discriminator, params, Instant::now()));
        });
        Ok(key)
    }

    /// Stops a session: it sends AdminDown once and is forgotten.
    pub fn remove_session(&self, key: SessionKey) -> Result<()> {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let discriminator =
            registry.sessions.remove(&key).ok_or(Error::NoSession(key.local, key.peer))?;
        registry.discriminators.remove(&discriminator);
        self.observed.states.send_modify(|states| {
            states.remove(&key);
        });
        let endpoint = registry.endpoints.get(&key.local).ok_or(Error::Stopped)?;
        endpoint.commands.send(Command::Remove { peer: key.peer }).map_err(|_| Error::Stopped)
    }

    /// Stops the driver gracefully: every session sends AdminDown (so its peer goes Down at
    /// once, knowing it was on purpose) before this returns. Dropping the handle does the same
    /// in the background, with no way to wait for it.
    pub async fn shutdown(self) {
        let endpoints = std::mem::take(
            &mut self.registry.lock().unwrap_or_else(PoisonError::into_inner).endpoints,
        );
        for (_, EndpointHandle { commands, task }) in endpoints {
            drop(commands);
            // An endpoint that panicked has nothing left to send.
            let _ = task.await;
        }
    }

    /// Every session's status, updated on every change.
    pub fn states(&self) -> watch::Receiver<BTreeMap<SessionKey, SessionStatus>> {
        self.observed.states.subscribe()
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        self.observed.counters.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn initial_status(discriminator: u32, params: Params, now: Instant) -> SessionStatus {
    SessionStatus {
        state: State::Down,
        diag: Diag::None,
        remote_state: State::Down,
        local_discriminator: discriminator,
        remote_discriminator: 0,
        // A passive session sends nothing until it hears the peer.
        tx_interval: (params.role == crate::session::Role::Active)
            .then(|| params.desired_min_tx.max(crate::session::SLOW_TX)),
        detection_time: Duration::ZERO,
        since: now,
    }
}

// === impl Endpoint ===

/// The sessions of one local address and its sockets, run by one task.
struct Endpoint {
    local: IpAddr,
    sockets: socket::Sockets,
    sessions: BTreeMap<IpAddr, Session>,
    by_discriminator: BTreeMap<u32, IpAddr>,
    observed: Arc<Observed>,
}

impl Endpoint {
    fn new(local: IpAddr, sockets: socket::Sockets, observed: Arc<Observed>) -> Endpoint {
        Endpoint {
            local,
            sockets,
            sessions: BTreeMap::new(),
            by_discriminator: BTreeMap::new(),
            observed,
        }
    }

    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; RECEIVE_BUFFER];
        loop {
            let deadline = self.sessions.values().filter_map(Session::poll_timeout).min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                readable = self.sockets.rx.readable() => {
                    if readable.is_ok() {
                        self.receive(&mut buf);
                    }
                }
                () = sleep => {
                    let now = Instant::now();
                    for session in self.sessions.values_mut() {
                        if session.poll_timeout().is_some_and(|at| at <= now) {
                            session.handle_timeout(now);
                        }
                    }
                }
            }
            self.flush();
        }
        // The handle is gone: tell every peer that this was on purpose.
        let now = Instant::now();
        for session in self.sessions.values_mut() {
            session.set_admin_down(now);
        }
        self.flush();
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Add { peer, discriminator, params, seed } => {
                // Parameters were validated and the discriminator is nonzero: cannot fail.
                if let Ok(session) = Session::new(discriminator, params, XorShift::new(seed), now) {
                    self.by_discriminator.insert(discriminator, peer);
                    self.sessions.insert(peer, session);
                }
            }
            Command::Remove { peer } => {
                if let Some(session) = self.sessions.get_mut(&peer) {
                    session.set_admin_down(now);
                }
                self.flush();
                if let Some(session) = self.sessions.remove(&peer) {
                    self.by_discriminator.remove(&session.local_discriminator());
                }
            }
        }
    }

    fn receive(&mut self, buf: &mut [u8]) {
        for _ in 0..RECEIVE_BATCH {
            let datagram = match self.sockets.try_receive(buf) {
                Ok(datagram) => datagram,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.observed.count(|c| c.receive_errors += 1);
                    return;
                }
            };
            self.observed.count(|c| c.packets_in += 1);
            let bytes = &buf[..datagram.len.min(buf.len())];
            if let Err(invalid) = self.demultiplex(bytes, datagram.from, datagram.ttl) {
                self.observed.count(|c| *c.invalid.entry(invalid.label()).or_default() += 1);
            }
        }
    }

    fn demultiplex(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        ttl: Option<u8>,
    ) -> Result<(), Invalid> {
        if ttl != Some(TTL) {
            return Err(Invalid::Ttl(ttl));
        }
        let packet = Packet::decode(bytes).map_err(Invalid::Decode)?;
        let peer = if packet.your_discriminator == 0 {
            from.ip()
        } else {
            let peer = *self
                .by_discriminator
                .get(&packet.your_discriminator)
                .ok_or(Invalid::UnknownDiscriminator)?;
            if peer != from.ip() {
                return Err(Invalid::WrongPeer);
            }
            peer
        };
        let session = self.sessions.get_mut(&peer).ok_or(Invalid::NoSession)?;
        session.handle_packet(Instant::now(), &packet).map_err(Invalid::Session)
    }

    /// Sends what the sessions want sent and publishes what changed.
    ///
    /// Sending never waits: a full socket buffer drops the packet (counted as a send error)
    /// rather than stall the timers and the receiver of every session of this address; BFD
    /// tolerates a lost packet by design (the detect multiplier).
    fn flush(&mut self) {
        let local = self.local;
        for (peer, session) in &mut self.sessions {
            while let Some(packet) = session.poll_transmit() {
                let to = SocketAddr::new(*peer, CONTROL_PORT);
                match self.sockets.tx.try_send_to(&packet.encode(), to) {
                    Ok(_) => self.observed.count(|c| c.packets_out += 1),
                    Err(_) => self.observed.count(|c| c.send_errors += 1),
                }
            }
            while let Some(event) = session.poll_event() {
                match event {
                    Event::Up => self.observed.count(|c| c.ups += 1),
                    Event::Down(_) => self.observed.count(|c| c.downs += 1),
                    Event::AdminDown => {}
                }
            }
            let key = SessionKey { local, peer: *peer };
            let now = Instant::now();
            self.observed.states.send_if_modified(|states| {
                // Only sessions the handle still knows: a removed one is not brought back.
                let Some(current) = states.get_mut(&key) else { return false };
                if current.local_discriminator != session.local_discriminator() {
                    return false;
                }
                let status = SessionStatus {
                    state: session.state(),
                    diag: session.local_diag(),
                    remote_state: session.remote_state(),
                    local_discriminator: session.local_discriminator(),
                    remote_discriminator: session.remote_discriminator(),
                    tx_interval: session.tx_interval(),
                    detection_time: session.detection_time(),
                    since: if current.state == session.state() { current.since } else { now },
                };
                let changed = *current != status;
                *current = status;
                changed
            });
        }
    }
}
