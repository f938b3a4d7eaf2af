//! The pure reduction of one node's BGP input to what the engines announce, shared by both
//! sources (`docs/internal/bgp-objects.md`).
//!
//! ```text
//!  file::NodeFile ──────────────┐
//!  kubernetes mirrors (objects) ─┴─► Input (this node's peers, pools, routes) ─► reduce ─► Reduced
//! ```
//!
//! A route is used only if its pool exists, its IP lies inside the pool and its prefix contains
//! its IP; it goes to the peers the input defines (a peer it names that is missing or unusable is
//! counted, the others still get the route). Two routes giving the same (peer, prefix) merge into
//! one with the union of the communities and the highest local preference, so the result does
//! not depend on the order of the routes. Everything else is counted by [`Ignored`] reason,
//! never fatal.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;
use metallb_bgp::wire::LargeCommunity;
use metallb_bgp::{Desired, PeerConfig};
use metallb_planner::pool::{Addr, Pool};
use serde::Deserialize;

/// The graceful restart time advertised to routers, seconds: how long a router keeps our
/// routes stale while the speaker restarts (an upgrade's pod restart takes well under it).
/// FRR's and BIRD's default restart time is 120 s too.
pub const GRACEFUL_RESTART_TIME: u16 = 120;

/// Hold time of a peer that sets none: RFC 4271 §10's suggested value.
const DEFAULT_HOLD_TIME: u16 = 90;

/// One node's input, whichever source it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// The node; a peer without a router ID derives one from it.
    pub node: String,
    /// Peers by name.
    pub peers: BTreeMap<String, Peer>,
    /// Pools by name.
    pub pools: BTreeMap<String, Pool>,
    /// The routes naming this node.
    pub routes: Vec<Route>,
    /// What the source already left out (objects that do not parse), with counts.
    pub ignored: BTreeMap<Ignored, usize>,
}

/// One peer, with its password already looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The router's address.
    pub address: IpAddr,
    /// The router's port.
    pub port: u16,
    /// The router's AS.
    pub peer_asn: u32,
    /// Our AS.
    pub my_asn: u32,
    /// Our BGP Identifier; default: the source address when it is IPv4, else derived from the
    /// node name.
    pub router_id: Option<Ipv4Addr>,
    /// Hold time as written (`90s`, `1m30s`); absent: 90 s.
    pub hold_time: Option<String>,
    /// This node's address to connect from.
    pub source_address: Option<IpAddr>,
    /// The TCP MD5 password.
    pub password: Password,
    /// BFD, when the peer asks for it.
    pub bfd: Option<BfdIntervals>,
}

/// A peer's TCP MD5 password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Password {
    /// The peer has none.
    None,
    /// The password.
    Known(String),
    /// The peer names one that cannot be read (a missing Secret copy or password file): the
    /// session would be refused by the router, so the peer is left out.
    Missing,
}

/// BFD intervals, milliseconds, and the role, as in the peer object.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BfdIntervals {
    /// Required minimum receive interval.
    pub receive_interval: u32,
    /// Desired minimum transmit interval.
    pub transmit_interval: u32,
    /// Detection multiplier.
    pub detect_multiplier: u8,
    /// The node waits for the router to start the session (RFC 5880 §6.1).
    #[serde(default)]
    pub passive_mode: bool,
}

/// One route (also the file source's format, hence serde).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// The pool the IP comes from.
    pub pool: String,
    /// The Service IP.
    pub ip: IpAddr,
    /// The prefix announced (the IP, or its aggregate).
    pub prefix: IpNet,
    /// Peers to announce it to.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Standard communities, `ASN:value`.
    #[serde(default)]
    pub communities: Vec<String>,
    /// Large communities, `global:local1:local2`.
    #[serde(default)]
    pub large_communities: Vec<String>,
    /// LOCAL_PREF (iBGP only).
    pub local_pref: Option<u32>,
}

/// Why a route, peer or object was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ignored {
    /// The route names a pool that does not exist.
    UnknownPool,
    /// The route's IP lies outside its pool.
    OutsidePool,
    /// The route's prefix does not contain its IP.
    PrefixWithoutIp,
    /// The route names a peer that does not exist or was left out (counted per peer).
    UnknownPeer,
    /// A community does not parse.
    BadCommunity,
    /// A peer's hold time or addresses are unusable.
    BadPeer,
    /// A peer's password cannot be read (Secret copy or file missing, no `password` key).
    MissingPassword,
    /// An object does not parse (an announcement's IP or prefix, a pool or peer spec).
    Malformed,
}

impl Ignored {
    /// Every reason, for metrics.
    pub const ALL: [Ignored; 8] = [
        Ignored::UnknownPool,
        Ignored::OutsidePool,
        Ignored::PrefixWithoutIp,
        Ignored::UnknownPeer,
        Ignored::BadCommunity,
        Ignored::BadPeer,
        Ignored::MissingPassword,
        Ignored::Malformed,
    ];

    /// A stable name for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Ignored::UnknownPool => "unknown_pool",
            Ignored::OutsidePool => "outside_pool",
            Ignored::PrefixWithoutIp => "prefix_without_ip",
            Ignored::UnknownPeer => "unknown_peer",
            Ignored::BadCommunity => "bad_community",
            Ignored::BadPeer => "bad_peer",
            Ignored::MissingPassword => "missing_password",
            Ignored::Malformed => "malformed",
        }
    }
}

/// BFD of one peer, as the BFD engine takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerBfd {
    /// The router's address.
    pub peer: IpAddr,
    /// Our address towards it, when the input says.
    pub local: Option<IpAddr>,
    /// Intervals.
    pub params: metallb_bfd::session::Params,
}

/// What the engines are told.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reduced {
    /// For the BGP engine.
    pub desired: Desired,
    /// BFD sessions by peer name.
    pub bfd: BTreeMap<String, PeerBfd>,
    /// What was left out, with counts.
    pub ignored: BTreeMap<Ignored, usize>,
}

/// Reduces `input` to what its node announces.
pub fn reduce(input: &Input) -> Reduced {
    let mut out = Reduced { ignored: input.ignored.clone(), ..Reduced::default() };
    for (name, peer) in &input.peers {
        match peer_config(name, peer, &input.node) {
            Ok(config) => {
                if let Some(bfd) = peer.bfd {
                    out.bfd.insert(name.clone(), peer_bfd(peer, bfd));
                }
                out.desired.peers.insert(name.clone(), config);
            }
            Err(why) => *out.ignored.entry(why).or_default() += 1,
        }
    }
    for route in &input.routes {
        if let Err(why) = add_route(&mut out, &input.pools, route) {
            *out.ignored.entry(why).or_default() += 1;
        }
    }
    out
}

fn peer_bfd(peer: &Peer, bfd: BfdIntervals) -> PeerBfd {
    PeerBfd {
        peer: peer.address,
        local: peer.source_address,
        params: metallb_bfd::session::Params {
            desired_min_tx: Duration::from_millis(u64::from(bfd.transmit_interval)),
            required_min_rx: Duration::from_millis(u64::from(bfd.receive_interval)),
            detect_mult: bfd.detect_multiplier,
            role: if bfd.passive_mode {
                metallb_bfd::Role::Passive
            } else {
                metallb_bfd::Role::Active
            },
        },
    }
}

fn peer_config(name: &str, peer: &Peer, node: &str) -> Result<PeerConfig, Ignored> {
    let hold_time = match peer.hold_time.as_deref() {
        None => DEFAULT_HOLD_TIME,
        Some(text) => hold_time_seconds(text).ok_or(Ignored::BadPeer)?,
    };
    let password = match &peer.password {
        Password::None => None,
        Password::Known(password) => Some(password.clone()),
        Password::Missing => return Err(Ignored::MissingPassword),
    };
    if peer.source_address.is_some_and(|s| s.is_ipv4() != peer.address.is_ipv4()) {
        return Err(Ignored::BadPeer);
    }
    let router_id = peer.router_id.unwrap_or_else(|| match peer.source_address {
        Some(IpAddr::V4(v4)) => v4,
        _ => router_id_of(node),
    });
    Ok(PeerConfig {
        name: name.to_owned(),
        address: peer.address,
        port: peer.port,
        peer_asn: peer.peer_asn,
        my_asn: peer.my_asn,
        router_id,
        hold_time,
        source_address: peer.source_address,
        password,
        graceful_restart_time: Some(GRACEFUL_RESTART_TIME),
        next_hop_v4: None,
        next_hop_v6: None,
    })
}

/// A hold time such as `90s`, `1m30s` or `1500ms` in whole seconds (BGP carries seconds);
/// `None` when it does not parse or exceeds 65535 s. The peer object's pattern is
/// `^([0-9]+(ms|s|m|h))+$`, Go's duration syntax without fractions.
pub fn hold_time_seconds(text: &str) -> Option<u16> {
    let mut rest = text;
    let mut millis: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return None;
        };
        rest = &rest[len..];
        millis = millis.checked_add(value.checked_mul(unit)?)?;
    }
    u16::try_from(millis / 1_000).ok()
}

/// A BGP Identifier from the node name (FNV-1a), for nodes without an IPv4 source address:
/// stable across restarts, distinct per node with overwhelming likelihood, never zero.
pub fn router_id_of(node: &str) -> Ipv4Addr {
    let hash =
        node.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    Ipv4Addr::from(hash.max(1))
}

fn add_route(
    out: &mut Reduced,
    pools: &BTreeMap<String, Pool>,
    route: &Route,
) -> Result<(), Ignored> {
    let pool = pools.get(&route.pool).ok_or(Ignored::UnknownPool)?;
    if !pool.contains(Addr::from_ip(route.ip)) {
        return Err(Ignored::OutsidePool);
    }
    if !route.prefix.contains(&route.ip) {
        return Err(Ignored::PrefixWithoutIp);
    }
    let communities: BTreeSet<u32> = route
        .communities
        .iter()
        .map(|c| standard_community(c))
        .collect::<Option<_>>()
        .ok_or(Ignored::BadCommunity)?;
    let large: BTreeSet<LargeCommunity> = route
        .large_communities
        .iter()
        .map(|c| large_community(c))
        .collect::<Option<_>>()
        .ok_or(Ignored::BadCommunity)?;
    // A peer that is missing (deleted, malformed, its password unreadable) costs only its own
    // announcements: the route's other peers still get it.
    let (known, unknown): (Vec<&String>, Vec<&String>) =
        route.peers.iter().partition(|p| out.desired.peers.contains_key(*p));
    if !unknown.is_empty() {
        *out.ignored.entry(Ignored::UnknownPeer).or_default() += unknown.len();
    }
    if known.is_empty() {
        return Ok(());
    }
    let per_peer = out.desired.routes.entry(route.prefix.trunc()).or_default();
    for peer in known {
        let attrs = per_peer.entry(peer.clone()).or_default();
        attrs.communities.extend(&communities);
        attrs.large_communities.extend(large.iter().copied());
        attrs.local_pref = attrs.local_pref.max(route.local_pref);
    }
    Ok(())
}

fn standard_community(text: &str) -> Option<u32> {
    let (a, b) = text.split_once(':')?;
    Some((u32::from(a.parse::<u16>().ok()?) << 16) | u32::from(b.parse::<u16>().ok()?))
}

fn large_community(text: &str) -> Option<LargeCommunity> {
    let mut parts = text.split(':').map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(global)), Some(Some(local1)), Some(Some(local2)), None) => {
            Some(LargeCommunity { global, local1, local2 })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_times() {
        let cases: [(&str, Option<u16>); 9] = [
            ("90s", Some(90)),
            ("1m30s", Some(90)),
            ("0s", Some(0)),
            ("3500ms", Some(3)),
            ("1h", Some(3600)),
            ("19h", None),
            ("", None),
            ("90", None),
            ("1.5s", None),
        ];
        for (text, want) in cases {
            assert_eq!(hold_time_seconds(text), want, "{text}");
        }
    }
}
