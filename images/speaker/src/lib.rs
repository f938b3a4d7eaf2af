//! The metallb L2 speaker: answers ARP requests and IPv6 neighbour solicitations for the
//! load-balancer IPs its node owns, and announces take-overs with gratuitous packets.
//!
//! ```text
//!  source (file / kubernetes) ─► DesiredState ─► owned(state, node) ─► OwnedSet ─┐
//!                                                                                 ▼
//!  link (AF_PACKET per interface) ─► frame ─► responder::decide ─► Reply ─► link
//!  interfaces (sysfs rescan) ─► plan ─► open/close links, join solicited-node groups
//!  announce::Announcer (injected clock) ─► gratuitous ARP / unsolicited NA ─► link
//!
//!  gossip (SWIM over authenticated UDP) ─► Liveness ─► owned(state, node, live)
//! ```
//!
//! Only [`link`] touches packet sockets and only [`gossip::driver`] the gossip UDP socket;
//! [`packet`], [`responder`], [`announce`], [`interfaces`] and [`gossip::membership`] are pure.

pub mod announce;
pub mod bgp;
pub mod cli;
pub mod gossip;
pub mod http;
pub mod interfaces;
pub mod link;
pub mod metrics;
pub mod packet;
pub mod responder;
pub mod source;
pub mod speaker;
pub mod status_apply;

/// An error with its causes, `: `-separated, for one log field.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
