//! The session's configuration, states, events and counters: what goes in and comes out of
//! [`super::Session`].

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::MAX_RESTART_TIME;
use crate::wire::{AfiSafi, Codec, Notification, code};
use crate::{Error, Result};

/// What a session is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our AS number.
    pub my_as: u32,
    /// The peer's AS number; equal to ours makes the session iBGP.
    pub peer_as: u32,
    /// Our BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3 (RFC 4271 §4.2).
    pub hold_time: u16,
    /// Graceful restart time to advertise, in seconds; `None` sends no GR capability.
    pub graceful_restart: Option<u16>,
    /// The process has just (re)started: set the Restart State bit until the first session
    /// comes up (RFC 4724 §4.1).
    pub restarted: bool,
    /// IPv4 next hop when the session runs over IPv6 (over IPv4 the local address is used).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 next hop when the session runs over IPv4.
    pub next_hop_v6: Option<Ipv6Addr>,
    /// How long one TCP connection attempt may take.
    pub connect_timeout: Duration,
    /// The first delay before reconnecting; doubled per consecutive failure.
    pub retry_min: Duration,
    /// The cap on the reconnect delay.
    pub retry_max: Duration,
    /// Seeds the deterministic jitter of the reconnect delay, so that nodes restarted together
    /// do not reconnect in lock-step (RFC 4271 §10 asks for jitter of 0.75–1.0).
    pub jitter_seed: u64,
}

impl SessionConfig {
    /// A configuration with the timers we default to.
    pub fn new(my_as: u32, peer_as: u32, router_id: Ipv4Addr) -> SessionConfig {
        SessionConfig {
            my_as,
            peer_as,
            router_id,
            // RFC 4271 §10 suggests 90 seconds.
            hold_time: 90,
            graceful_restart: None,
            restarted: false,
            next_hop_v4: None,
            next_hop_v6: None,
            connect_timeout: Duration::from_secs(5),
            // Reconnect fast after a single failure, and at most every 30 s to a router that
            // stays down (it is one connection attempt per node and peer).
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            jitter_seed: 0,
        }
    }

    /// Rejects what the protocol does not allow.
    pub fn validate(&self) -> Result<()> {
        if matches!(self.hold_time, 1 | 2) {
            return Err(Error::InvalidConfig(format!(
                "hold time {} s: it must be 0 or at least 3 (RFC 4271 §4.2)",
                self.hold_time
            )));
        }
        if self.router_id.is_unspecified() {
            return Err(Error::InvalidConfig("router ID 0.0.0.0 (RFC 6286 §2.1)".into()));
        }
        if self.graceful_restart.is_some_and(|t| t > MAX_RESTART_TIME) {
            return Err(Error::InvalidConfig(format!(
                "graceful restart time above {MAX_RESTART_TIME} s (RFC 4724 §3)"
            )));
        }
        if self.retry_min.is_zero() || self.retry_max < self.retry_min {
            return Err(Error::InvalidConfig("reconnect delays must be 0 < min <= max".into()));
        }
        Ok(())
    }
}

/// RFC 4271 §8.2.2 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Not trying.
    Idle,
    /// A TCP connection attempt is in flight.
    Connect,
    /// Waiting to try again.
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// Up: routes flow.
    Established,
}

impl State {
    /// The state as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connect => "connect",
            State::Active => "active",
            State::OpenSent => "open_sent",
            State::OpenConfirm => "open_confirm",
            State::Established => "established",
        }
    }
}

/// Why a session left OpenSent, OpenConfirm or Established, or a connection attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// The peer sent a NOTIFICATION.
    NotificationReceived(Notification),
    /// We sent one: a protocol error, the hold timer, or an administrative stop.
    NotificationSent(Notification),
    /// The TCP connection closed or failed.
    ConnectionClosed,
    /// The TCP connection could not be set up in time, or was refused.
    ConnectFailed,
    /// The driver was told the peer is gone (by BFD).
    Forced,
}

impl DownReason {
    /// The reason as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            DownReason::NotificationReceived(_) => "notification_received",
            DownReason::NotificationSent(n) if n.code == code::HOLD_TIMER_EXPIRED => {
                "hold_timer_expired"
            }
            DownReason::NotificationSent(_) => "notification_sent",
            DownReason::ConnectionClosed => "connection_closed",
            DownReason::ConnectFailed => "connect_failed",
            DownReason::Forced => "forced",
        }
    }
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::NotificationReceived(n) => write!(f, "peer sent {n}"),
            DownReason::NotificationSent(n) => write!(f, "sent {n}"),
            other => f.write_str(other.label()),
        }
    }
}

/// What the driver must do or may report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Open a TCP connection to the peer now.
    Connect,
    /// Close the TCP connection, after sending everything [`super::Session::poll_transmit`] returns.
    Close,
    /// The session reached Established.
    Established,
    /// The session or a connection attempt ended.
    Down(DownReason),
}

/// Counters for metrics and status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// UPDATEs sent, End-of-RIB included.
    pub updates_sent: u64,
    /// UPDATEs received and valid.
    pub updates_received: u64,
    /// Received UPDATEs that RFC 7606 treats as withdraw.
    pub updates_treated_as_withdraw: u64,
    /// ROUTE-REFRESH requests answered.
    pub route_refreshes: u64,
    /// Times the session left Established.
    pub flaps: u64,
    /// Desired prefixes this session cannot carry (family not negotiated, no next hop).
    pub unexportable: usize,
    /// The last reason the session went down or an UPDATE was rejected.
    pub last_error: Option<String>,
}

/// What the OPEN exchange settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Hold time in seconds; 0 means no keepalives and no hold timer.
    pub hold_time: u16,
    /// AS_PATH carries 4-octet AS numbers.
    pub codec: Codec,
    /// Families both sides can carry.
    pub families: BTreeSet<AfiSafi>,
    /// The peer's BGP Identifier.
    pub peer_id: Ipv4Addr,
    /// The peer advertised graceful restart.
    pub peer_graceful_restart: bool,
}
