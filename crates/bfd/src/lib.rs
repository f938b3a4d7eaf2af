//! Single-hop Bidirectional Forwarding Detection (RFC 5880, RFC 5881) for the BGP speaker: a
//! router learns within a second that a node died, long before a BGP hold timer (3 s at the
//! least) would expire.
//!
//! ```text
//!   bytes ──► packet::Packet::decode ──► session::Session ──► poll_transmit ──► bytes
//!                 (§4.1, §6.8.6)          (§6.2, §6.5, §6.8)   poll_timeout  ──► deadline
//!                                          now ─┘              poll_event    ──► Up / Down(diag)
//!   driver: the only module with sockets and timers (UDP 3784, TTL 255, RFC 5881)
//! ```
//!
//! The protocol core ([`packet`], [`session`]) never reads a clock, a socket or a random
//! number generator: time and jitter come in as arguments, so every rule of the RFC is a unit
//! test that runs in microseconds. `driver` (the default feature of the same name) moves
//! packets between the sessions and UDP sockets, one pair of sockets per local address shared
//! by its sessions; without the feature the crate has no I/O dependency at all.
//!
//! Not implemented, on purpose: authentication (a packet that carries it is rejected and
//! counted), Demand mode and the Echo function (we never ask for them and never send echo
//! packets), multi-hop sessions (RFC 5883), IPv6 link-local peers (a session is keyed by
//! addresses alone, without an interface scope).

#[cfg(feature = "driver")]
pub mod driver;
pub mod packet;
pub mod session;

#[cfg(feature = "driver")]
pub use driver::{Bfd, Counters, SessionKey, SessionStatus};

pub use packet::{Diag, Packet, State};
pub use session::{Event, Params, Role, Session};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in this crate's fallible operations (the driver's setup; the protocol core
/// returns decisions, not errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Session parameters the RFC does not allow.
    #[error("invalid session parameters: {0}")]
    InvalidParams(&'static str),
    /// The local and peer addresses are not of one family.
    #[error("local address {local} and peer address {peer} are of different families")]
    MixedFamilies {
        /// The local address.
        local: std::net::IpAddr,
        /// The peer address.
        peer: std::net::IpAddr,
    },
    /// Every discriminator drawn was taken (practically impossible with 2^32 values).
    #[error("no free discriminator")]
    NoDiscriminator,
    /// A session for this pair of addresses exists already.
    #[error("a session from {0} to {1} exists already")]
    SessionExists(std::net::IpAddr, std::net::IpAddr),
    /// No session for this pair of addresses.
    #[error("no session from {0} to {1}")]
    NoSession(std::net::IpAddr, std::net::IpAddr),
    /// A socket could not be set up.
    #[error("cannot {action} for {addr}")]
    Socket {
        /// What was being done.
        action: &'static str,
        /// The local address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `Bfd::add_session` was called outside a tokio runtime, which its endpoints run on.
    #[error("the BFD driver needs a tokio runtime")]
    NoRuntime,
    /// The driver has stopped (its runtime shut down).
    #[error("the BFD driver has stopped")]
    Stopped,
}
