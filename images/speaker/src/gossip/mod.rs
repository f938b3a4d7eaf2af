//! Liveness of the speakers: a small SWIM-style membership protocol over authenticated UDP.
//!
//! ```text
//!  UDP socket ─► codec::open (HMAC, version) ─► ReplayGuard (time + sequence windows)
//!      ▲                                              │
//!      │                                              ▼
//!  codec::seal ◄── Outgoing ◄── membership::Membership (pure, injected clock) ──► Change
//!                                                                                   │
//!                    watch<Arc<Liveness>> ──► speaker: owned(state, node, live) ◄───┘
//! ```
//!
//! [`membership`] is the protocol as a state machine, [`codec`] the datagram format, and
//! [`driver`] the only code here touching a socket. Why our own protocol rather than a
//! memberlist port: memberlist's defaults detect a death in ≈5–6 s (reference l2-peers §4.2);
//! this one is tuned for ≈1 s on a LAN, and its every rule fits in one tested module.

pub mod codec;
pub mod driver;
pub mod membership;

use std::collections::BTreeMap;

pub use codec::Key;
pub use driver::{Gossip, GossipConfig, GossipError};
pub use membership::{MemberState, Quorum, Tuning};

/// Which nodes' speakers count as running, for ownership.
///
/// A node in the view is live while alive or suspect (suspicion alone must not move
/// addresses). A node *never seen* counts as live during the join grace after this speaker
/// starts — so a speaker that starts before its peers, or a whole DaemonSet starting at once,
/// does not take over everything — and as dead afterwards, so a backup still takes over when
/// the owner's speaker never comes up at all. The driver keeps never-seen nodes live also while
/// it has heard from no other speaker (see `Gossip::publish`): an isolated speaker takes over
/// nothing.
///
/// It also says whether this speaker reaches a majority of the speakers it knows
/// ([`Quorum`]): without one it takes over nothing and releases what another could take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    members: BTreeMap<String, MemberState>,
    unknown_live: bool,
    quorum: bool,
}

impl Liveness {
    /// Everybody live: the view without gossip (no take-overs, ownership is the `node` field).
    pub fn everyone() -> Self {
        Self { members: BTreeMap::new(), unknown_live: true, quorum: true }
    }

    /// A gossip view; `unknown_live` is true during the join grace; `quorum` whether a
    /// majority of the known speakers is reached.
    pub fn new(members: BTreeMap<String, MemberState>, unknown_live: bool, quorum: bool) -> Self {
        Self { members, unknown_live, quorum }
    }

    /// Whether this speaker reaches a majority of the speakers it knows.
    pub fn has_quorum(&self) -> bool {
        self.quorum
    }

    /// Whether `node`'s speaker counts as running.
    pub fn is_live(&self, node: &str) -> bool {
        self.members.get(node).map_or(self.unknown_live, |state| state.is_live())
    }

    /// The members and their states.
    pub fn members(&self) -> &BTreeMap<String, MemberState> {
        &self.members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_nodes_are_live_only_during_the_grace() {
        let members = BTreeMap::from([
            ("a".to_string(), MemberState::Alive),
            ("b".to_string(), MemberState::Suspect),
            ("c".to_string(), MemberState::Dead),
            ("d".to_string(), MemberState::Left),
        ]);
        let during = Liveness::new(members.clone(), true, true);
        let after = Liveness::new(members, false, true);
        for view in [&during, &after] {
            assert!(view.is_live("a") && view.is_live("b"));
            assert!(!view.is_live("c") && !view.is_live("d"));
        }
        assert!(during.is_live("never-seen"));
        assert!(!after.is_live("never-seen"));
        assert!(Liveness::everyone().is_live("anyone"));
        assert!(Liveness::everyone().has_quorum());
    }
}
