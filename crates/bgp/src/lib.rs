//! An announce-only BGP-4 speaker for the load balancer's BGP mode.
//!
//! The speaker originates routes for the Service IPs its node announces and never installs what
//! it receives. It is split the way quinn-proto splits QUIC: the protocol is pure, the driver
//! owns the sockets.
//!
//! ```text
//!   wire     messages <-> bytes (RFC 4271 §4 + extensions), RFC 7606 error actions
//!   rib      Adj-RIB-Out: desired routes -> the fewest UPDATEs that carry the difference
//!   session  the RFC 4271 §8 state machine: bytes and `now` in; bytes, deadlines, events out
//!   driver   tokio: one task per session, TCP (+ MD5), reconnects; the `Speaker` handle
//! ```
//!
//! Everything above the driver is deterministic: time is an argument, maps are ordered.

pub mod announce;
pub mod config;
pub mod driver;
mod md5;
pub mod rib;
pub mod session;
pub mod wire;

mod error;

pub use driver::{ApplyReport, Desired, PeerConfig, SessionStatus, Speaker};
pub use error::{Error, Result};
