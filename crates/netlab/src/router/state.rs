//! What a router says: sessions, BFD peers, learned paths; the same types whichever daemon
//! plays the router.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::config::{Community, LargeCommunity};

/// An RFC 4271 §8.2.2 session state, as the daemon reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SessionState {
    /// Idle (also FRR's transient `Clearing`/`Deleted`, BIRD's `Close` and `Down`).
    Idle,
    /// Connect: a TCP connection is being opened.
    Connect,
    /// Active: waiting to retry or for the neighbor to connect (BIRD's `Passive`).
    Active,
    /// OpenSent.
    OpenSent,
    /// OpenConfirm.
    OpenConfirm,
    /// Established: routes flow.
    Established,
}

impl SessionState {
    /// Parses the state names the daemons print (any case): `Established`, `Active`, ...
    pub fn parse(name: &str) -> Option<SessionState> {
        Some(match name.to_ascii_lowercase().as_str() {
            // FRR's transient `Clearing`/`Deleted`; BIRD's `Close` (closing) and `Down`
            // (protocol disabled).
            "idle" | "clearing" | "deleted" | "down" | "close" => SessionState::Idle,
            "connect" => SessionState::Connect,
            // BIRD says `Passive` for a passive session waiting for its neighbor to connect:
            // RFC 4271's Active.
            "active" | "passive" => SessionState::Active,
            "opensent" => SessionState::OpenSent,
            "openconfirm" => SessionState::OpenConfirm,
            "established" => SessionState::Established,
            _ => return None,
        })
    }

    /// The state's name, for messages.
    pub fn label(self) -> &'static str {
        match self {
            SessionState::Idle => "Idle",
            SessionState::Connect => "Connect",
            SessionState::Active => "Active",
            SessionState::OpenSent => "OpenSent",
            SessionState::OpenConfirm => "OpenConfirm",
            SessionState::Established => "Established",
        }
    }
}

/// A BFD session's state (RFC 5880 §4.1 `State`), as the daemon reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BfdState {
    /// AdminDown (FRR prints `shutdown`).
    AdminDown,
    /// Down: no packets from the neighbor within the detection time.
    Down,
    /// Init: the neighbor's packets arrive, the three-way handshake is not done.
    Init,
    /// Up.
    Up,
}

impl BfdState {
    /// Parses the names the daemons print (any case): BIRD `Up`/`Down`/`Init`/`AdminDown`,
    /// FRR `up`/`down`/`init`/`shutdown`.
    pub fn parse(name: &str) -> Option<BfdState> {
        Some(match name.to_ascii_lowercase().as_str() {
            "admindown" | "shutdown" => BfdState::AdminDown,
            "down" => BfdState::Down,
            "init" => BfdState::Init,
            "up" => BfdState::Up,
            _ => return None,
        })
    }
}

/// A session as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The neighbor's address.
    pub neighbor: IpAddr,
    /// The state.
    pub state: SessionState,
    /// How long it has been Established, when the daemon says (BIRD prints only a wall-clock
    /// time of day, so it gives `None`).
    pub uptime: Option<Duration>,
    /// Prefixes accepted from the neighbor, all families together, when the daemon says:
    /// cheap to poll, unlike the whole table (a benchmark waits for 10 000 this way).
    pub prefixes: Option<u64>,
}

/// One path the router holds for a prefix (a prefix learned from three neighbors is three
/// `LearnedRoute`s).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LearnedRoute {
    /// The prefix.
    pub prefix: IpNet,
    /// The neighbor it came from.
    pub from: IpAddr,
    /// The next hop (for IPv6 the global one; a link-local second next hop is left out).
    pub next_hop: IpAddr,
    /// AS_PATH, flattened (sets in order as printed).
    pub as_path: Vec<u32>,
    /// Standard communities.
    pub communities: BTreeSet<Community>,
    /// Large communities.
    pub large_communities: BTreeSet<LargeCommunity>,
    /// LOCAL_PREF, when the daemon shows one (BIRD and FRR show their default 100 for eBGP
    /// routes too; GoBGP only what was received).
    pub local_pref: Option<u32>,
    /// Kept only because its neighbor is restarting gracefully (RFC 4724 §4.2).
    pub stale: bool,
    /// The router's best path for the prefix.
    pub best: bool,
}

/// The next hops of `prefix` among `routes`.
pub fn next_hops(routes: &[LearnedRoute], prefix: &IpNet) -> BTreeSet<IpAddr> {
    routes.iter().filter(|r| &r.prefix == prefix).map(|r| r.next_hop).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_from_every_daemons_spelling() {
        const CASES: [(&str, Option<SessionState>); 9] = [
            ("Established", Some(SessionState::Established)),
            // BIRD: a passive session waiting for its neighbor, one closing, one disabled.
            ("Passive", Some(SessionState::Active)),
            ("Close", Some(SessionState::Idle)),
            ("Down", Some(SessionState::Idle)),
            ("established", Some(SessionState::Established)),
            ("OpenSent", Some(SessionState::OpenSent)),
            ("Clearing", Some(SessionState::Idle)),
            ("Active", Some(SessionState::Active)),
            ("Up", None),
        ];
        for (text, want) in CASES {
            assert_eq!(SessionState::parse(text), want, "{text}");
        }
    }

    #[test]
    fn bfd_states_parse_from_both_daemons_spellings() {
        const CASES: [(&str, Option<BfdState>); 6] = [
            ("Up", Some(BfdState::Up)),
            ("up", Some(BfdState::Up)),
            ("AdminDown", Some(BfdState::AdminDown)),
            ("shutdown", Some(BfdState::AdminDown)),
            ("init", Some(BfdState::Init)),
            ("Established", None),
        ];
        for (text, want) in CASES {
            assert_eq!(BfdState::parse(text), want, "{text}");
        }
    }
}
