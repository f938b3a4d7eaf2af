//! The BGP file source (`docs/internal/bgp-objects.md`, "File source"): one node's peers,
//! pools and routes, and the pure reduction of it to what the BGP engine announces.
//!
//! The reduction applies the contract's rules: a route is used only if its IP lies inside its
//! pool and its prefix contains its IP, and only towards peers the file defines; two routes
//! giving the same (peer, prefix) merge into one with the union of the communities and the
//! highest local preference, so the result does not depend on the order of the routes.
//! Everything else is counted by [`Ignored`] reason, never fatal.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use metallb_bgp::wire::LargeCommunity;
use metallb_bgp::{Desired, PeerConfig};
use serde::Deserialize;

/// The graceful restart time advertised to routers, seconds: how long a router keeps our
/// routes stale while the speaker restarts (an upgrade's pod restart takes well under it).
/// FRR's and BIRD's default restart time is 120 s too.
pub const GRACEFUL_RESTART_TIME: u16 = 120;

/// The file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeFile {
    /// The node the file is for; must be the speaker's `--node-name`.
    pub node: String,
    /// Peers by name.
    #[serde(default)]
    pub peers: BTreeMap<String, FilePeer>,
    /// Pools by name: their address ranges (CIDRs).
    #[serde(default)]
    pub pools: BTreeMap<String, Vec<IpNet>>,
    /// The routes this node announces.
    #[serde(default)]
    pub routes: Vec<FileRoute>,
}

/// One peer.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilePeer {
    /// The router's address.
    pub peer_address: IpAddr,
    /// The router's port.
    #[serde(default = "default_port")]
    pub peer_port: u16,
    /// The router's AS.
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    /// Our AS.
    #[serde(rename = "myASN")]
    pub my_asn: u32,
    /// Our BGP Identifier; default: the source address when it is IPv4, else derived from the
    /// node name.
    #[serde(rename = "routerID")]
    pub router_id: Option<Ipv4Addr>,
    /// Hold time, e.g. `90s` (`0s`: no keepalives).
    #[serde(default)]
    pub hold_time: Option<String>,
    /// The node's address to connect from.
    pub source_address: Option<IpAddr>,
    /// A file holding the TCP MD5 password.
    pub password_file: Option<PathBuf>,
    /// BFD, when the peer asks for it.
    pub bfd: Option<FileBfd>,
}

/// BFD intervals, milliseconds, as in the peer object.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileBfd {
    /// Required minimum receive interval.
    pub receive_interval: u32,
    /// Desired minimum transmit interval.
    pub transmit_interval: u32,
    /// Detection multiplier.
    pub detect_multiplier: u8,
}

/// One route.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileRoute {
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

fn default_port() -> u16 {
    metallb_bgp::driver::BGP_PORT
}

/// Why a route or peer of the file was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ignored {
    /// The route names a pool the file does not define.
    UnknownPool,
    /// The route's IP lies outside its pool.
    OutsidePool,
    /// The route's prefix does not contain its IP.
    PrefixWithoutIp,
    /// The route names a peer the file does not define.
    UnknownPeer,
    /// A community does not parse.
    BadCommunity,
    /// A peer's hold time, password file or addresses are unusable.
    BadPeer,
}

impl Ignored {
    /// A stable name for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Ignored::UnknownPool => "unknown_pool",
            Ignored::OutsidePool => "outside_pool",
            Ignored::PrefixWithoutIp => "prefix_without_ip",
            Ignored::UnknownPeer => "unknown_peer",
            Ignored::BadCommunity => "bad_community",
            Ignored::BadPeer => "bad_peer",
        }
    }
}

/// BFD of one peer, as the BFD engine takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerBfd {
    /// The router's address.
    pub peer: IpAddr,
    /// Our address towards it, when the file says.
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

/// Reduces `file` to what this node announces; `password` reads a password file.
pub fn reduce(file: &NodeFile, password: impl Fn(&PathBuf) -> Option<String>) -> Reduced {
    let mut out = Reduced::default();
    for (name, peer) in &file.peers {
        match peer_config(name, peer, &file.node, &password) {
            Some(config) => {
                if let Some(bfd) = peer.bfd {
                    out.bfd.insert(name.clone(), peer_bfd(peer, bfd));
                }
                out.desired.peers.insert(name.clone(), config);
            }
            None => *out.ignored.entry(Ignored::BadPeer).or_default() += 1,
        }
    }
    for route in &file.routes {
        if let Err(why) = add_route(&mut out.desired, &file.pools, route) {
            *out.ignored.entry(why).or_default() += 1;
        }
    }
    out
}

fn peer_bfd(peer: &FilePeer, bfd: FileBfd) -> PeerBfd {
    PeerBfd {
        peer: peer.peer_address,
        local: peer.source_address,
        params: metallb_bfd::session::Params {
            desired_min_tx: Duration::from_millis(u64::from(bfd.transmit_interval)),
            required_min_rx: Duration::from_millis(u64::from(bfd.receive_interval)),
            detect_mult: bfd.detect_multiplier,
        },
    }
}

fn peer_config(
    name: &str,
    peer: &FilePeer,
    node: &str,
    password: &impl Fn(&PathBuf) -> Option<String>,
) -> Option<PeerConfig> {
    let hold_time = match peer.hold_time.as_deref() {
        None => 90,
        Some(text) => {
            let seconds = crate::cli::parse_duration(text).ok()?.as_secs();
            u16::try_from(seconds).ok()?
        }
    };
    let password = match &peer.password_file {
        Some(path) => Some(password(path)?),
        None => None,
    };
    let router_id = peer.router_id.unwrap_or_else(|| match peer.source_address {
        Some(IpAddr::V4(v4)) => v4,
        _ => router_id_of(node),
    });
    Some(PeerConfig {
        name: name.to_owned(),
        address: peer.peer_address,
        port: peer.peer_port,
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

/// A BGP Identifier from the node name (FNV-1a), for nodes without an IPv4 source address:
/// stable across restarts, distinct per node with overwhelming likelihood, never zero.
pub fn router_id_of(node: &str) -> Ipv4Addr {
    let hash =
        node.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    Ipv4Addr::from(hash.max(1))
}

fn add_route(
    desired: &mut Desired,
    pools: &BTreeMap<String, Vec<IpNet>>,
    route: &FileRoute,
) -> Result<(), Ignored> {
    let pool = pools.get(&route.pool).ok_or(Ignored::UnknownPool)?;
    if !pool.iter().any(|net| net.contains(&route.ip)) {
        return Err(Ignored::OutsidePool);
    }
    if !route.prefix.contains(&route.ip) {
        return Err(Ignored::PrefixWithoutIp);
    }
    if route.peers.iter().any(|p| !desired.peers.contains_key(p)) {
        return Err(Ignored::UnknownPeer);
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
    let per_peer = desired.routes.entry(route.prefix.trunc()).or_default();
    for peer in &route.peers {
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
    use proptest::prelude::*;

    use super::*;

    const FILE: &str = r#"
node: n1
peers:
  tor:
    peerAddress: 192.0.2.1
    peerASN: 64500
    myASN: 64501
    holdTime: 9s
    sourceAddress: 192.0.2.11
    bfd: {receiveInterval: 100, transmitInterval: 200, detectMultiplier: 3}
  spine:
    peerAddress: 2001:db8::1
    peerASN: 64501
    myASN: 64501
pools:
  public: [203.0.113.0/24]
routes:
  - {pool: public, ip: 203.0.113.10, prefix: 203.0.113.10/32, peers: [tor], communities: ["65535:65281"]}
  - {pool: public, ip: 203.0.113.10, prefix: 203.0.113.10/32, peers: [tor, spine], communities: ["64512:1"], localPref: 150}
  - {pool: public, ip: 203.0.113.11, prefix: 203.0.113.0/24, peers: [spine], largeCommunities: ["64512:1:2"]}
  - {pool: public, ip: 198.51.100.1, prefix: 198.51.100.1/32, peers: [tor]}
  - {pool: other, ip: 203.0.113.12, prefix: 203.0.113.12/32, peers: [tor]}
  - {pool: public, ip: 203.0.113.13, prefix: 203.0.113.14/32, peers: [tor]}
  - {pool: public, ip: 203.0.113.15, prefix: 203.0.113.15/32, peers: [nobody]}
  - {pool: public, ip: 203.0.113.16, prefix: 203.0.113.16/32, peers: [tor], communities: ["70000:1"]}
"#;

    fn parse(text: &str) -> NodeFile {
        serde_norway::from_str(text).expect("the file parses")
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn routes_merge_per_peer_and_prefix_and_bad_ones_are_counted() {
        let r = reduce(&parse(FILE), |_| None);
        let tor = &r.desired.peers["tor"];
        assert_eq!((tor.hold_time, tor.router_id), (9, Ipv4Addr::new(192, 0, 2, 11)));
        assert_eq!(tor.graceful_restart_time, Some(GRACEFUL_RESTART_TIME));
        assert_eq!(r.desired.peers["spine"].router_id, router_id_of("n1"));
        let ten = &r.desired.routes[&net("203.0.113.10/32")];
        assert_eq!(ten["tor"].communities, BTreeSet::from([0xffff_ff01, (64512 << 16) | 1]));
        assert_eq!(ten["tor"].local_pref, Some(150));
        assert_eq!(ten["spine"].communities, BTreeSet::from([(64512 << 16) | 1]));
        let agg = &r.desired.routes[&net("203.0.113.0/24")]["spine"];
        assert_eq!(agg.large_communities.len(), 1);
        assert_eq!(r.desired.routes.len(), 2);
        let want = BTreeMap::from([
            (Ignored::UnknownPool, 1),
            (Ignored::OutsidePool, 1),
            (Ignored::PrefixWithoutIp, 1),
            (Ignored::UnknownPeer, 1),
            (Ignored::BadCommunity, 1),
        ]);
        assert_eq!(r.ignored, want);
        let bfd = r.bfd["tor"];
        assert_eq!(bfd.params.desired_min_tx, Duration::from_millis(200));
        assert_eq!(bfd.local, Some("192.0.2.11".parse().unwrap()));
        assert!(!r.bfd.contains_key("spine"));
    }

    #[test]
    fn a_peer_whose_password_cannot_be_read_is_left_out_with_its_routes() {
        let text = FILE.replace("    holdTime: 9s\n", "    holdTime: 9s\n    passwordFile: /x\n");
        let r = reduce(&parse(&text), |_| None);
        assert!(!r.desired.peers.contains_key("tor"));
        assert_eq!(r.ignored[&Ignored::BadPeer], 1);
        let r = reduce(&parse(&text), |_| Some("secret".to_owned()));
        assert_eq!(r.desired.peers["tor"].password.as_deref(), Some("secret"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_norway::from_str::<NodeFile>("node: n1\nbogus: 1\n").is_err());
    }

    proptest! {
        /// The routes' order never changes what is announced.
        #[test]
        fn order_does_not_matter(seed in any::<u64>()) {
            let file = parse(FILE);
            let mut shuffled = file.clone();
            let n = shuffled.routes.len();
            let mut state = seed;
            for i in (1..n).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.routes.swap(i, (state >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(reduce(&file, |_| None), reduce(&shuffled, |_| None));
        }
    }
}
