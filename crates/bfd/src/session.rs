//! One BFD session as a pure state machine (RFC 5880 §6): packets and clock ticks in, packets,
//! deadlines and events out. The driver calls, in a loop:
//!
//! ```text
//!   handle_packet(now, &packet)   a decoded packet demultiplexed to this session
//!   handle_timeout(now)           when poll_timeout() has passed
//!   poll_transmit() -> Packet     until None, then send them
//!   poll_event()    -> Event      until None: Up, Down(diag), AdminDown
//!   poll_timeout()  -> Instant    when to call handle_timeout next
//! ```
//!
//! Timers (asynchronous mode only):
//!
//! - We send every `max(our Desired Min TX, peer's Required Min RX)` (§6.8.7), each interval
//!   shortened by a random 0–25 % (10–25 % with a detect multiplier of 1) so that sessions do not
//!   synchronise. The randomness comes from a [`Jitter`] source the caller provides.
//! - While the session is not Up we advertise and use a Desired Min TX of at least one second
//!   (§6.8.3), so an idle or broken session costs one packet a second.
//! - The peer is declared dead when no packet came for `peer's Detect Mult × max(our Required
//!   Min RX, peer's Desired Min TX)` (§6.8.4).
//! - Changing our intervals while Up starts a Poll Sequence (§6.5): packets carry P until the peer
//!   answers with F; meanwhile a slower TX or a faster RX is not yet in force (§6.8.3), so neither
//!   side can declare the other dead because of the change.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::{Diag, Packet, State};
use crate::{Error, Result};

/// The slowest-rate floor while a session is not Up (§6.8.3: "not less than one second").
pub const SLOW_TX: Duration = Duration::from_secs(1);
/// The peer's Required Min RX before its first packet (§6.8.1: bfd.RemoteMinRxInterval is
/// initialised to 1 µs, so our own interval decides until the peer speaks).
const INITIAL_REMOTE_MIN_RX: Duration = Duration::from_micros(1);
/// Jitter granularity: reductions are computed in 1/10000ths of the interval.
const JITTER_SCALE: u64 = 10_000;

/// The configured timers and role of a session (§6.8.1 bfd.DesiredMinTxInterval,
/// bfd.RequiredMinRxInterval, bfd.DetectMult; §6.1 the role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// How often we would like to send while Up.
    pub desired_min_tx: Duration,
    /// How often we are able to receive.
    pub required_min_rx: Duration,
    /// How many missed packets of ours the peer tolerates.
    pub detect_mult: u8,
    /// Who starts the session.
    pub role: Role,
}

/// Who starts a session (§6.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// Sends from the start.
    #[default]
    Active,
    /// Sends nothing until the peer's packets tell its discriminator, and falls silent again
    /// when they stop (§6.8.7: no packet while bfd.RemoteDiscr is zero). For routers that
    /// want to start every session themselves.
    Passive,
}

impl Default for Params {
    /// 300 ms × 3 (FRR's and BIRD's defaults): a dead peer is noticed within 0.9 s, well inside
    /// the one second the BGP mode promises.
    fn default() -> Self {
        Params {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
            role: Role::Active,
        }
    }
}

impl Params {
    /// Checks what the packet format and the RFC allow: both intervals nonzero (a zero Required
    /// Min RX would ask the peer to send nothing, and we always detect) and at most `u32::MAX`
    /// microseconds, and a nonzero detect multiplier (§6.8.6 discards a packet carrying 0).
    pub fn validate(&self) -> Result<()> {
        let max = Duration::from_micros(u64::from(u32::MAX));
        if self.detect_mult == 0 {
            return Err(Error::InvalidParams("detect multiplier must be at least 1"));
        }
        if self.desired_min_tx.is_zero() || self.required_min_rx.is_zero() {
            return Err(Error::InvalidParams("intervals must be nonzero"));
        }
        if self.desired_min_tx > max || self.required_min_rx > max {
            return Err(Error::InvalidParams("intervals must fit 32 bits of microseconds"));
        }
        Ok(())
    }
}

/// A source of uniformly distributed random numbers for the TX jitter (§6.8.7). Injected, so
/// tests are deterministic.
pub trait Jitter {
    /// The next random number.
    fn next_u32(&mut self) -> u32;
}

/// A small deterministic generator (xorshift64*), good enough to de-synchronise timers; the
/// driver seeds one per session from the system's hasher randomness.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced by a fixed odd constant: xorshift needs a
    /// nonzero state).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }
}

impl Jitter for XorShift {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        // The high half of the multiplied state is the better-mixed one.
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}

/// What the session tells its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The session came Up: the peer is reachable and hears us.
    Up,
    /// The session left Init or Up for Down, for this reason.
    Down(Diag),
    /// The session was disabled locally ([`Session::set_admin_down`]).
    AdminDown,
}

/// Why a packet demultiplexed to this session was discarded (§6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejected {
    /// The A bit is set, and this session uses no authentication.
    UnexpectedAuthentication,
    /// Your Discriminator is nonzero and not ours.
    WrongDiscriminator,
    /// The session is administratively down.
    AdminDown,
}

impl Rejected {
    /// A stable name for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Rejected::UnexpectedAuthentication => "unexpected_authentication",
            Rejected::WrongDiscriminator => "wrong_discriminator",
            Rejected::AdminDown => "admin_down",
        }
    }
}

/// One session; see the module documentation.
#[derive(Debug, Clone)]
pub struct Session<J = XorShift> {
    params: Params,
    local_discriminator: u32,
    state: State,
    local_diag: Diag,
    remote_discriminator: u32,
    remote_state: State,
    remote_min_rx: Duration,
    remote_desired_tx: Duration,
    remote_detect_mult: u8,
    /// The intervals we put in our packets.
    advertised_tx: Duration,
    advertised_rx: Duration,
    /// The intervals in force; they differ from the advertised ones during a Poll Sequence.
    used_tx: Duration,
    used_rx: Duration,
    polling: bool,
    final_pending: bool,
    tx_pending: bool,
    next_tx: Option<Instant>,
    detect_deadline: Option<Instant>,
    events: VecDeque<Event>,
    jitter: J,
}

impl<J: Jitter> Session<J> {
    /// A session in state Down with `local_discriminator` (nonzero, unique on this system, the
    /// caller's duty, §6.8.1) that sends its first packet at once.
    pub fn new(local_discriminator: u32, params: Params, jitter: J, now: Instant) -> Result<Self> {
        params.validate()?;
        if local_discriminator == 0 {
            return Err(Error::InvalidParams("the local discriminator must be nonzero"));
        }
        let slow = params.desired_min_tx.max(SLOW_TX);
        let mut session = Session {
            params,
            local_discriminator,
            state: State::Down,
            local_diag: Diag::None,
            remote_discriminator: 0,
            remote_state: State::Down,
            remote_min_rx: INITIAL_REMOTE_MIN_RX,
            remote_desired_tx: Duration::ZERO,
            remote_detect_mult: 0,
            advertised_tx: slow,
            advertised_rx: params.required_min_rx,
            used_tx: slow,
            used_rx: params.required_min_rx,
            polling: false,
            final_pending: false,
            tx_pending: false,
            next_tx: None,
            detect_deadline: None,
            events: VecDeque::new(),
            jitter,
        };
        session.transmit_now(now);
        Ok(session)
    }

    // === inputs ===

    /// Processes a packet whose Your Discriminator is ours or zero (the driver's demultiplexing,
    /// §6.8.6). `Err` says why it was discarded; the session is unchanged then.
    pub fn handle_packet(&mut self, now: Instant, packet: &Packet) -> Result<(), Rejected> {
        if packet.auth.is_some() {
            return Err(Rejected::UnexpectedAuthentication);
        }
        if packet.your_discriminator != 0 && packet.your_discriminator != self.local_discriminator {
            return Err(Rejected::WrongDiscriminator);
        }
        if self.state == State::AdminDown {
            return Err(Rejected::AdminDown);
        }
        self.remote_discriminator = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_min_rx = packet.required_min_rx;
        self.remote_desired_tx = packet.desired_min_tx;
        self.remote_detect_mult = packet.detect_mult;
        if packet.final_ && self.polling {
            // The peer has seen our new intervals: they take force (§6.5).
            self.polling = false;
            self.used_tx = self.advertised_tx;
            self.used_rx = self.advertised_rx;
        }
        self.detect_deadline = Some(now + self.detection_time());
        if packet.state == State::AdminDown {
            if self.state != State::Down {
                self.go_down(now, Diag::NeighborSignaledSessionDown);
            }
        } else {
            match (self.state, packet.state) {
                (State::Down, State::Down) => self.change(now, State::Init),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.go_up(now)
                }
                (State::Up, State::Down) => self.go_down(now, Diag::NeighborSignaledSessionDown),
                _ => {}
            }
        }
        if packet.poll {
            self.final_pending = true;
        }
        match self.tx_interval() {
            // The peer asks for no periodic packets (§6.8.7); Finals still go out.
            None => self.next_tx = None,
            // The peer has just allowed periodic packets again, or a shorter interval than the
            // one the pending packet was scheduled on: waiting out the old one could exceed the
            // peer's new detection time.
            Some(interval) if self.next_tx.is_none_or(|at| at > now + interval) => {
                self.next_tx = self.schedule(now);
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Runs the timers that are due at `now`: detection and periodic transmission.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.detect_deadline.is_some_and(|deadline| deadline <= now) {
            self.detect_deadline = None;
            // §6.8.1: bfd.RemoteDiscr "MUST be reset to zero" when the detection time expires.
            self.remote_discriminator = 0;
            self.remote_state = State::Down;
            if matches!(self.state, State::Init | State::Up) {
                self.go_down(now, Diag::ControlDetectionTimeExpired);
            }
        }
        if self.next_tx.is_some_and(|at| at <= now) {
            self.tx_pending = self.tx_pending || self.tx_interval().is_some();
            self.next_tx = self.schedule(now);
        }
    }

    /// New timers. While Up a change starts a Poll Sequence; otherwise it takes force at once.
    pub fn set_params(&mut self, now: Instant, params: Params) -> Result<()> {
        params.validate()?;
        self.params = params;
        self.readvertise(now);
        Ok(())
    }

    /// Disables the session (§6.8.16): it sends AdminDown, and the peer goes Down without
    /// treating it as a failure (RFC 5882 §3.2).
    pub fn set_admin_down(&mut self, now: Instant) {
        if self.state != State::AdminDown {
            self.local_diag = Diag::AdministrativelyDown;
            self.detect_deadline = None;
            self.change(now, State::AdminDown);
            self.events.push_back(Event::AdminDown);
        }
    }

    /// Enables a disabled session again: it starts over in Down.
    pub fn set_admin_up(&mut self, now: Instant) {
        if self.state == State::AdminDown {
            self.local_diag = Diag::None;
            self.change(now, State::Down);
        }
    }

    // === outputs ===

    /// The next packet to send, if any. A Final answer goes first, on its own: P and F are
    /// never set together (§6.5).
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        if self.silent() {
            self.tx_pending = false;
            return None;
        }
        if self.final_pending {
            self.final_pending = false;
            return Some(self.packet(false, true));
        }
        if self.tx_pending {
            self.tx_pending = false;
            return Some(self.packet(self.polling, false));
        }
        None
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_tx, self.detect_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // === what the session knows ===

    /// The local state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Why the session last went down.
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    /// The peer's state as it last told us.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// Our discriminator.
    pub fn local_discriminator(&self) -> u32 {
        self.local_discriminator
    }

    /// The peer's discriminator, 0 until heard (and after a detection timeout).
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discriminator
    }

    /// The configured timers.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Whether a Poll Sequence is under way.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The interval between our periodic packets before jitter; `None` while the peer asks for
    /// no packets (Required Min RX 0) or a passive session has not heard the peer.
    pub fn tx_interval(&self) -> Option<Duration> {
        let allowed = !self.remote_min_rx.is_zero() && !self.silent();
        allowed.then(|| self.used_tx.max(self.remote_min_rx))
    }

    /// A passive session that has not heard the peer (§6.8.7).
    fn silent(&self) -> bool {
        self.params.role == Role::Passive && self.remote_discriminator == 0
    }

    /// How long the peer may stay silent before we declare it dead (§6.8.4).
    pub fn detection_time(&self) -> Duration {
        self.used_rx.max(self.remote_desired_tx) * u32::from(self.remote_detect_mult)
    }

    // === impl ===

    fn packet(&self, poll: bool, final_: bool) -> Packet {
        Packet {
            diag: self.local_diag,
            state: self.state,
            poll,
            final_,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.params.detect_mult,
            my_discriminator: self.local_discriminator,
            your_discriminator: self.remote_discriminator,
            desired_min_tx: self.advertised_tx,
            required_min_rx: self.advertised_rx,
            required_min_echo_rx: Duration::ZERO,
            auth: None,
        }
    }

    /// The next periodic transmission after `now`: the interval less a random 0–25 % (10–25 %
    /// with a detect multiplier of 1, so that one late packet cannot trip the peer; §6.8.7).
    fn schedule(&mut self, now: Instant) -> Option<Instant> {
        let interval = self.tx_interval()?;
        let r = u64::from(self.jitter.next_u32());
        let reduction = if self.params.detect_mult == 1 {
            1_000 + r % 1_501 // 10.00–25.00 %
        } else {
            r % 2_501 // 0.00–25.00 %
        };
        let nanos = interval.as_nanos();
        let reduced = nanos - nanos * u128::from(reduction) / u128::from(JITTER_SCALE);
        Some(now + Duration::from_nanos(u64::try_from(reduced).unwrap_or(u64::MAX)))
    }

    /// A packet now (a state change or a new Poll), and the periodic schedule restarted from it.
    fn transmit_now(&mut self, now: Instant) {
        self.tx_pending = true;
        self.next_tx = self.schedule(now);
    }

    fn change(&mut self, now: Instant, state: State) {
        self.state = state;
        self.readvertise(now);
        self.transmit_now(now);
    }

    fn go_up(&mut self, now: Instant) {
        self.change(now, State::Up);
        self.events.push_back(Event::Up);
    }

    fn go_down(&mut self, now: Instant, diag: Diag) {
        self.local_diag = diag;
        self.change(now, State::Down);
        self.events.push_back(Event::Down(diag));
    }

    /// Recomputes the advertised intervals for the current state and configuration, and decides
    /// whether they take force now or after a Poll Sequence (§6.8.3).
    fn readvertise(&mut self, now: Instant) {
        let tx = if self.state == State::Up {
            self.params.desired_min_tx
        } else {
            self.params.desired_min_tx.max(SLOW_TX)
        };
        let rx = self.params.required_min_rx;
        if tx == self.advertised_tx && rx == self.advertised_rx {
            return;
        }
        self.advertised_tx = tx;
        self.advertised_rx = rx;
        if self.state == State::Up {
            // Sending faster and accepting slower are safe at once; the rest waits for the Final.
            self.used_tx = self.used_tx.min(tx);
            self.used_rx = self.used_rx.max(rx);
            // Every change is polled, also one already in force: the peer's Final confirms it
            // has seen it (§6.8.3 "a Poll Sequence MUST be initiated").
            self.polling = true;
            self.transmit_now(now);
        } else {
            self.polling = false;
            self.used_tx = tx;
            self.used_rx = rx;
        }
    }
}

#[cfg(test)]
mod tests;
