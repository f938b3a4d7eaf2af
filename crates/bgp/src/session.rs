//! One BGP session as a pure state machine (RFC 4271 §8), driven the way quinn-proto drives a
//! QUIC connection: the caller feeds it time and bytes and pulls out bytes, deadlines and events.
//!
//! ```text
//!          start            connected               OPEN ok              KEEPALIVE
//!   Idle ────────► Connect ───────────► OpenSent ───────────► OpenConfirm ─────────► Established
//!                   │   ▲ backoff timer     │ error, hold expiry, close, NOTIFICATION │
//!      connect fail ▼   │                   ▼                                         ▼
//!                  Active ◄───────────────────────────────────────────────────────────┘
//! ```
//!
//! The speaker only dials out, as MetalLB's native speaker does: without a listener there is no
//! connection collision to resolve (RFC 4271 §6.8). It is announce-only: received UPDATEs are
//! validated (RFC 7606) and counted, never installed. Inputs: [`Session::start`],
//! [`Session::handle_connected`], [`Session::handle_connect_failed`], [`Session::handle_input`],
//! [`Session::handle_closed`], [`Session::handle_timeout`], [`Session::set_routes`],
//! [`Session::drain`], [`Session::stop`], [`Session::force_down`]. Outputs:
//! [`Session::poll_transmit`], [`Session::poll_timeout`], [`Session::poll_event`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;

pub use types::{DownReason, Event, Negotiated, SessionConfig, State, Stats};

use crate::Result;
use crate::rib::{AdjRibOut, Export, RouteAttrs};
use crate::wire::{
    self, AS_TRANS, AfiSafi, Capability, Codec, DecodeError, ErrorAction, GracefulRestart, Message,
    Notification, Open, Update, code,
};

/// Hold time while waiting for the peer's OPEN: RFC 4271 §8.2.2 suggests 4 minutes.
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// The largest restart time the 12-bit field carries (RFC 4724 §3).
pub const MAX_RESTART_TIME: u16 = 4095;

/// One session.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    since: Instant,
    rib: AdjRibOut,
    draining: bool,
    restart_state: bool,
    failures: u32,
    local: Option<SocketAddr>,
    negotiated: Option<Negotiated>,
    input: Vec<u8>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    /// Connect timeout, reconnect backoff, or hold timer, by state.
    deadline: Option<Instant>,
    keepalive_at: Option<Instant>,
    stats: Stats,
}

impl Session {
    /// A session in Idle; call [`Session::start`] to connect.
    pub fn new(config: SessionConfig, now: Instant) -> Result<Session> {
        config.validate()?;
        Ok(Session {
            restart_state: config.restarted,
            config,
            state: State::Idle,
            since: now,
            rib: AdjRibOut::default(),
            draining: false,
            failures: 0,
            local: None,
            negotiated: None,
            input: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            deadline: None,
            keepalive_at: None,
            stats: Stats::default(),
        })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Prefixes the peer has from us.
    pub fn prefixes_sent(&self) -> usize {
        self.rib.sent_len()
    }

    /// What the OPEN exchange settled, from OpenConfirm on.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Bytes to write to the TCP connection, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Session::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.deadline, self.keepalive_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // === inputs ===

    /// Starts connecting (ManualStart, RFC 4271 §8.1.2). A no-op unless Idle.
    pub fn start(&mut self, now: Instant) {
        if self.state == State::Idle {
            self.connect(now);
        }
    }

    /// The TCP connection is up: send OPEN.
    pub fn handle_connected(&mut self, now: Instant, local: SocketAddr) {
        if self.state != State::Connect {
            return;
        }
        self.local = Some(local);
        self.input.clear();
        let open = self.open();
        self.send(now, &Message::Open(open));
        self.deadline = Some(now + OPEN_HOLD);
        self.enter(State::OpenSent, now);
    }

    /// The TCP connection attempt failed.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        if self.state == State::Connect {
            self.events.push_back(Event::Down(DownReason::ConnectFailed));
            self.stats.last_error = Some(DownReason::ConnectFailed.to_string());
            self.back_off(now);
        }
    }

    /// The peer closed the connection, or reading or writing it failed.
    pub fn handle_closed(&mut self, now: Instant) {
        if self.state >= State::OpenSent {
            self.down(now, DownReason::ConnectionClosed, None);
        }
    }

    /// Bytes read from the TCP connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.state < State::OpenSent {
            return;
        }
        self.input.extend_from_slice(bytes);
        let mut at = 0;
        // Each pass consumes one whole message or ends the session; bounded by the input.
        while self.state >= State::OpenSent {
            let frame = match wire::frame_length(&self.input[at..]) {
                Ok(Some(len)) => at..at + len,
                Ok(None) => break,
                Err(e) => {
                    self.protocol_error(now, e.notification);
                    break;
                }
            };
            at = frame.end;
            let codec = self.negotiated.as_ref().map(|n| n.codec).unwrap_or_default();
            let decoded = wire::decode(&self.input[frame], codec);
            self.handle_message(now, decoded);
        }
        if self.state >= State::OpenSent {
            self.input.drain(..at);
        } else {
            self.input.clear();
        }
    }

    /// Timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            match self.state {
                State::Connect => {
                    self.events.push_back(Event::Close);
                    self.handle_connect_failed(now);
                }
                State::Active => self.connect(now),
                State::OpenSent | State::OpenConfirm | State::Established => {
                    self.protocol_error(now, Notification::new(code::HOLD_TIMER_EXPIRED, 0));
                }
                State::Idle => {}
            }
        }
        if self.keepalive_at.is_some_and(|k| k <= now) {
            self.send(now, &Message::Keepalive);
        }
    }

    /// Replaces the routes to announce; sends the difference when Established.
    pub fn set_routes(&mut self, now: Instant, routes: BTreeMap<IpNet, RouteAttrs>) {
        self.rib.set_desired(routes);
        self.send_diff(now);
    }

    /// Starts or ends the graceful shutdown drain (RFC 8326): every route is re-sent with the
    /// GRACEFUL_SHUTDOWN community (and LOCAL_PREF 0 on iBGP), so the peer moves traffic away
    /// before the session closes.
    pub fn drain(&mut self, now: Instant, on: bool) {
        if self.draining != on {
            self.draining = on;
            self.send_diff(now);
        }
    }

    /// Stops the session for good (ManualStop): a Cease NOTIFICATION when a connection is up,
    /// then Idle. `message` is the shutdown communication of RFC 9003 (at most 255 octets).
    pub fn stop(&mut self, now: Instant, subcode: u8, message: &str) {
        if self.state >= State::OpenSent {
            let mut text = message.as_bytes().to_vec();
            text.truncate(255);
            let mut data = Vec::new();
            if subcode == code::cease::ADMINISTRATIVE_SHUTDOWN
                || subcode == code::cease::ADMINISTRATIVE_RESET
            {
                data.push(text.len() as u8);
                data.extend_from_slice(&text);
            }
            let n = Notification { code: code::CEASE, subcode, data };
            self.send(now, &Message::Notification(n.clone()));
            self.down(now, DownReason::NotificationSent(n), Some(State::Idle));
        } else {
            if self.state == State::Connect {
                self.events.push_back(Event::Close);
            }
            self.deadline = None;
            self.enter(State::Idle, now);
        }
    }

    /// Takes the session down at once without a NOTIFICATION, because the peer is known to be
    /// unreachable (BFD said so); reconnecting follows the usual backoff.
    pub fn force_down(&mut self, now: Instant) {
        match self.state {
            State::Idle | State::Active => {}
            State::Connect => {
                self.events.push_back(Event::Close);
                self.events.push_back(Event::Down(DownReason::Forced));
                self.back_off(now);
            }
            _ => self.down(now, DownReason::Forced, None),
        }
    }

    // === internals ===

    fn enter(&mut self, state: State, now: Instant) {
        if self.state != state {
            self.state = state;
            self.since = now;
        }
    }

    fn connect(&mut self, now: Instant) {
        self.events.push_back(Event::Connect);
        self.deadline = Some(now + self.config.connect_timeout);
        self.enter(State::Connect, now);
    }

    /// Waits before the next attempt: `retry_min · 2^failures`, capped, scaled by a jitter in
    /// [0.75, 1.0] that depends only on the seed and the attempt.
    fn back_off(&mut self, now: Instant) {
        let exp = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let base = self.config.retry_min.saturating_mul(1 << exp).min(self.config.retry_max);
        let hash = fnv1a(self.config.jitter_seed, u64::from(exp));
        let jitter = 0.75 + 0.25 * ((hash % 1001) as f64 / 1000.0);
        self.deadline = Some(now + base.mul_f64(jitter));
        self.keepalive_at = None;
        self.enter(State::Active, now);
    }

    /// Leaves a connected state: close, forget what the peer had, then back off or idle.
    fn down(&mut self, now: Instant, reason: DownReason, then: Option<State>) {
        if self.state == State::Established {
            self.stats.flaps += 1;
        }
        self.stats.last_error = Some(reason.to_string());
        self.events.push_back(Event::Close);
        self.events.push_back(Event::Down(reason));
        self.rib.clear_sent();
        self.negotiated = None;
        self.local = None;
        self.input.clear();
        self.keepalive_at = None;
        if then == Some(State::Idle) {
            self.deadline = None;
            self.enter(State::Idle, now);
        } else {
            self.back_off(now);
        }
    }

    fn protocol_error(&mut self, now: Instant, n: Notification) {
        self.send(now, &Message::Notification(n.clone()));
        self.down(now, DownReason::NotificationSent(n), None);
    }

    fn send(&mut self, now: Instant, m: &Message) {
        let codec = self.negotiated.as_ref().map(|n| n.codec).unwrap_or_default();
        match wire::encode(m, codec) {
            Ok(bytes) => self.transmit.push_back(bytes),
            Err(e) => {
                // Only an oversized configuration can get here (a route with thousands of
                // communities); the message is skipped and the reason kept for status.
                self.stats.last_error = Some(format!("not sent: {e}"));
                return;
            }
        }
        if matches!(m, Message::Update(_)) {
            self.stats.updates_sent += 1;
        }
        if matches!(m, Message::Update(_) | Message::Keepalive) {
            // RFC 4271 §8.2.2: sending KEEPALIVE or UPDATE restarts the KeepaliveTimer.
            self.keepalive_at = self.keepalive_interval().map(|k| now + k);
        }
    }

    /// One third of the hold time (RFC 4271 §10); none when the hold time is 0.
    fn keepalive_interval(&self) -> Option<Duration> {
        let hold = self.negotiated.as_ref()?.hold_time;
        (hold > 0).then(|| Duration::from_secs(u64::from(hold)) / 3)
    }

    fn hold(&self) -> Option<Duration> {
        let hold = self.negotiated.as_ref()?.hold_time;
        (hold > 0).then(|| Duration::from_secs(u64::from(hold)))
    }

    fn open(&self) -> Open {
        let mut capabilities = vec![
            Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(self.config.my_as),
        ];
        if let Some(restart_time) = self.config.graceful_restart {
            capabilities.push(Capability::GracefulRestart(GracefulRestart {
                restart_state: self.restart_state,
                restart_time,
                // The F bit: the node keeps forwarding to its Services while the speaker
                // restarts, so the peer may keep using our routes (RFC 4724 §3).
                families: vec![(AfiSafi::IPV4_UNICAST, true), (AfiSafi::IPV6_UNICAST, true)],
            }));
        }
        Open {
            version: 4,
            my_as: u16::try_from(self.config.my_as).unwrap_or(AS_TRANS),
            hold_time: self.config.hold_time,
            bgp_id: self.config.router_id,
            capabilities,
        }
    }

    fn handle_message(&mut self, now: Instant, decoded: Result<Message, DecodeError>) {
        let message = match decoded {
            Ok(m) => m,
            Err(e)
                if e.action == ErrorAction::TreatAsWithdraw && self.state == State::Established =>
            {
                // RFC 7606 §2: the routes count as withdrawn; we hold none from the peer.
                self.stats.updates_treated_as_withdraw += 1;
                self.stats.last_error = Some(e.to_string());
                self.restart_hold(now);
                return;
            }
            Err(e) => return self.protocol_error(now, e.notification),
        };
        let fsm_error = |state| match state {
            State::OpenSent => code::fsm::IN_OPEN_SENT,
            State::OpenConfirm => code::fsm::IN_OPEN_CONFIRM,
            _ => code::fsm::IN_ESTABLISHED,
        };
        match (self.state, message) {
            (_, Message::Notification(n)) => {
                self.down(now, DownReason::NotificationReceived(n), None);
            }
            (State::OpenSent, Message::Open(open)) => self.handle_open(now, &open),
            (State::OpenConfirm, Message::Keepalive) => {
                self.enter(State::Established, now);
                self.failures = 0;
                self.restart_state = false;
                self.restart_hold(now);
                self.events.push_back(Event::Established);
                self.send_initial_table(now);
            }
            (State::Established, Message::Keepalive) => self.restart_hold(now),
            (State::Established, Message::Update(_)) => {
                self.stats.updates_received += 1;
                self.restart_hold(now);
            }
            (State::Established, Message::RouteRefresh(rr)) => {
                let negotiated =
                    self.negotiated.as_ref().is_some_and(|n| n.families.contains(&rr.family));
                // RFC 2918 §4: a family not negotiated is ignored. Subtypes other than a plain
                // request belong to enhanced route refresh (RFC 7313), which we do not offer.
                if negotiated && rr.subtype == 0 {
                    self.stats.route_refreshes += 1;
                    self.rib.forget_family(rr.family);
                    self.send_diff(now);
                }
            }
            (state, _) => {
                self.protocol_error(now, Notification::new(code::FSM, fsm_error(state)));
            }
        }
    }

    fn restart_hold(&mut self, now: Instant) {
        self.deadline = self.hold().map(|h| now + h);
    }

    /// Validates the peer's OPEN (RFC 4271 §6.2) and settles the session's parameters.
    fn handle_open(&mut self, now: Instant, open: &Open) {
        let open_error = |subcode, data: Vec<u8>| Notification { code: code::OPEN, subcode, data };
        let ibgp = self.config.my_as == self.config.peer_as;
        let error = if open.version != 4 {
            // The data is the largest version we support (RFC 4271 §6.2).
            Some(open_error(code::open::UNSUPPORTED_VERSION, vec![0, 4]))
        } else if open.asn() != self.config.peer_as {
            Some(open_error(code::open::BAD_PEER_AS, Vec::new()))
        } else if matches!(open.hold_time, 1 | 2) {
            Some(open_error(code::open::UNACCEPTABLE_HOLD_TIME, Vec::new()))
        } else if open.bgp_id.is_unspecified() || (ibgp && open.bgp_id == self.config.router_id) {
            // RFC 6286 §2.2: any non-zero identifier, distinct from ours within an AS.
            Some(open_error(code::open::BAD_BGP_ID, Vec::new()))
        } else {
            None
        };
        if let Some(n) = error {
            return self.protocol_error(now, n);
        }
        let mut families: BTreeSet<AfiSafi> = open
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::MultiProtocol(f) => Some(*f),
                _ => None,
            })
            .filter(|f| *f == AfiSafi::IPV4_UNICAST || *f == AfiSafi::IPV6_UNICAST)
            .collect();
        let any_mp = open.capabilities.iter().any(|c| matches!(c, Capability::MultiProtocol(_)));
        if !any_mp {
            // A speaker without multiprotocol capabilities carries IPv4 unicast (RFC 4760 §1).
            families.insert(AfiSafi::IPV4_UNICAST);
        }
        self.negotiated = Some(Negotiated {
            hold_time: self.config.hold_time.min(open.hold_time),
            codec: Codec {
                four_octet_as: open
                    .capabilities
                    .iter()
                    .any(|c| matches!(c, Capability::FourOctetAs(_))),
            },
            families,
            peer_id: open.bgp_id,
            peer_graceful_restart: open
                .capabilities
                .iter()
                .any(|c| matches!(c, Capability::GracefulRestart(_))),
        });
        self.send(now, &Message::Keepalive);
        self.restart_hold(now);
        self.enter(State::OpenConfirm, now);
    }

    fn export(&self) -> Option<Export> {
        let n = self.negotiated.as_ref()?;
        let local = self.local.map(|l| l.ip());
        Some(Export {
            my_as: self.config.my_as,
            ibgp: self.config.my_as == self.config.peer_as,
            codec: n.codec,
            families: n.families.clone(),
            next_hop_v4: self.config.next_hop_v4.or(match local {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            }),
            next_hop_v6: self.config.next_hop_v6.or(match local {
                Some(IpAddr::V6(a)) => Some(a),
                _ => None,
            }),
            graceful_shutdown: self.draining,
        })
    }

    fn send_diff(&mut self, now: Instant) {
        if self.state != State::Established {
            return;
        }
        let Some(export) = self.export() else { return };
        match self.rib.updates(&export) {
            Ok(diff) => {
                self.stats.unexportable = diff.unexportable;
                for u in diff.updates {
                    self.send(now, &Message::Update(u));
                }
            }
            Err(e) => self.stats.last_error = Some(format!("routes not sent: {e}")),
        }
    }

    /// The whole table, then End-of-RIB per family: the graceful restart peer keeps our stale
    /// routes until it (RFC 4724 §4.2), and RFC 4724 §2 recommends it for convergence anyway.
    fn send_initial_table(&mut self, now: Instant) {
        self.rib.clear_sent();
        self.send_diff(now);
        let families = self.negotiated.as_ref().map(|n| n.families.clone()).unwrap_or_default();
        for f in families {
            self.send(now, &Message::Update(Update::end_of_rib(f)));
        }
    }
}

/// FNV-1a over two words: a fixed, dependency-free hash for the reconnect jitter.
fn fnv1a(a: u64, b: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.to_le_bytes().into_iter().chain(b.to_le_bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

mod types;

#[cfg(test)]
mod tests;
