//! BGP mode's route decisions: for a Service IP of a BGP pool, which nodes announce it, to which
//! peers, with which attributes — the `routes` of its `SDNInternalBGPAnnouncement`.
//!
//! ```text
//!  configurations ─► Topology::new ─► per configuration: member nodes (selector, Ready, not
//!  peers, nodes                       excluded), existing peers, advertisements with their
//!                                     attributes normalised, issues for the status
//!  (ip, pool, ETP Local nodes) ─► Topology::routes ─► Vec<BgpRoute>, sorted
//! ```
//!
//! Everything is sorted on the way in, so the routes are a pure function of the input.
//! Allocation is not here: a BGP IP comes from the one allocator L2 classes use, so no IP is
//! ever given to two Services across both modes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use metallb_api::announcement::BgpRoute;
use metallb_api::names::labels;
use metallb_api::schema::WELL_KNOWN_COMMUNITIES;
use serde::{Deserialize, Serialize};

use crate::model::NodeInput;
use crate::pool::Family;

/// IPv4 routes are host routes unless an advertisement asks for a shorter prefix.
const IPV4_HOST: u8 = 32;
/// IPv6 routes are always host routes: the one `aggregationLength` field of the original is an
/// IPv4 length (its speaker was IPv4-only), and applying, say, 24 to an IPv6 address would
/// announce a /24 of the IPv6 space.
const IPV6_HOST: u8 = 128;

/// A `MetalLoadBalancerConfiguration` as the planner reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConfigurationInput {
    /// `metadata.name`.
    pub name: String,
    /// `spec.nodeSelector`: exact label matches; empty selects every node.
    pub node_selector: BTreeMap<String, String>,
    /// `spec.bgp.peerNames`.
    pub peer_names: Vec<String>,
    /// `spec.advertisements`, in order (the index is part of each route).
    pub advertisements: Vec<AdvertisementInput>,
}

/// One advertisement of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AdvertisementInput {
    /// `poolNames`.
    pub pool_names: Vec<String>,
    /// `bgp.communities` as written.
    pub communities: Vec<String>,
    /// `bgp.localPref`.
    pub local_pref: Option<u32>,
    /// `bgp.aggregationLength`.
    pub aggregation_length: Option<u8>,
}

/// A community of an advertisement, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Community {
    /// RFC 1997: `ASN:value`, well-known names resolved.
    Standard(u16, u16),
    /// RFC 8092: `large:global:local1:local2`.
    Large(u32, u32, u32),
    /// `none`: attaches nothing.
    None,
}

impl Community {
    /// Parses a community the way the configuration schema admits it.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "none" {
            return Some(Self::None);
        }
        if let Some((_, value)) = WELL_KNOWN_COMMUNITIES.iter().find(|(name, _)| *name == text) {
            return Self::parse(value);
        }
        if let Some(large) = text.strip_prefix("large:") {
            let mut parts = large.split(':').map(decimal::<u32>);
            return match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Some(Self::Large(a, b, c)),
                _ => None,
            };
        }
        let (a, b) = text.split_once(':')?;
        Some(Self::Standard(decimal(a)?, decimal(b)?))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standard(a, b) => write!(f, "{a}:{b}"),
            Self::Large(a, b, c) => write!(f, "{a}:{b}:{c}"),
            Self::None => f.write_str("none"),
        }
    }
}

/// A plain decimal without sign or leading zeros, as the schema's patterns want it.
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    let plain = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    plain.then(|| text.parse().ok()).flatten()
}

/// Something wrong with a configuration, for its status; the rest of it still works.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigurationIssue {
    /// `bgp.peerNames` names no `MetalLoadBalancerBGPPeer`: no session to it.
    MissingPeer(String),
    /// An advertisement names no `MetalLoadBalancerPool`.
    MissingPool {
        /// Index of the advertisement.
        advertisement: u32,
        /// The pool name.
        pool: String,
    },
    /// A community that does not parse is left out of the routes.
    InvalidCommunity {
        /// Index of the advertisement.
        advertisement: u32,
        /// The community as written.
        community: String,
    },
    /// `aggregationLength` is longer than an IPv4 prefix: IPv4 routes stay /32.
    AggregationTooLong {
        /// Index of the advertisement.
        advertisement: u32,
        /// The length as written.
        length: u8,
    },
    /// No peer at all: the configuration's nodes announce nothing.
    NoPeers,
}

impl ConfigurationIssue {
    /// Condition reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingPeer(_) => "PeerNotFound",
            Self::MissingPool { .. } => "PoolNotFound",
            Self::InvalidCommunity { .. } => "InvalidCommunity",
            Self::AggregationTooLong { .. } => "AggregationLengthTooLong",
            Self::NoPeers => "NoPeers",
        }
    }
}

impl fmt::Display for ConfigurationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPeer(peer) => {
                write!(f, "peer {peer:?} is not a MetalLoadBalancerBGPPeer; no session to it")
            }
            Self::MissingPool { advertisement, pool } => write!(
                f,
                "advertisement {advertisement}: pool {pool:?} is not a MetalLoadBalancerPool"
            ),
            Self::InvalidCommunity { advertisement, community } => write!(
                f,
                "advertisement {advertisement}: community {community:?} is not valid; left out"
            ),
            Self::AggregationTooLong { advertisement, length } => write!(
                f,
                "advertisement {advertisement}: aggregationLength {length} is longer than an IPv4 \
                 prefix; IPv4 routes are announced as /32"
            ),
            Self::NoPeers => f.write_str("no existing peer is named; nothing is announced"),
        }
    }
}

/// An advertisement with its attributes ready for the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Advertisement {
    index: u32,
    pools: BTreeSet<String>,
    communities: Vec<String>,
    large_communities: Vec<String>,
    local_pref: Option<u32>,
    ipv4_length: u8,
}

/// A configuration, resolved against the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationState {
    /// `metadata.name`.
    pub name: String,
    /// Nodes the selector matches that are Ready and not excluded, sorted.
    pub members: Vec<String>,
    /// Named peers that exist, sorted and unique.
    pub peers: Vec<String>,
    /// What is wrong, sorted; empty when everything named exists and is valid.
    pub issues: Vec<ConfigurationIssue>,
    advertisements: Vec<Advertisement>,
}

/// Every configuration resolved; answers which routes an IP gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    configurations: Vec<ConfigurationState>,
    /// The family of every peer's address (`None`: it does not parse).
    peer_families: BTreeMap<String, Option<Family>>,
}

impl Topology {
    /// Resolves `configurations` (any order) against the peers and pools that exist and the
    /// nodes.
    pub fn new(
        configurations: &[ConfigurationInput],
        peers: &BTreeMap<String, Option<Family>>,
        pools: &BTreeSet<String>,
        nodes: &[NodeInput],
    ) -> Self {
        let mut out: Vec<ConfigurationState> =
            configurations.iter().map(|c| resolve(c, peers, pools, nodes)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Self { configurations: out, peer_families: peers.clone() }
    }

    /// Every configuration, by name.
    pub fn configurations(&self) -> &[ConfigurationState] {
        &self.configurations
    }

    /// Names of the nodes some configuration selects: where the BGP speakers run.
    pub fn speaker_nodes(&self) -> BTreeSet<&str> {
        self.configurations.iter().flat_map(|c| c.members.iter().map(String::as_str)).collect()
    }

    /// Whether some advertisement of some configuration announces `pool`.
    pub fn advertises(&self, pool: &str) -> bool {
        self.configurations.iter().any(|c| c.advertisements.iter().any(|a| a.pools.contains(pool)))
    }

    /// The routes of `ip`, from `pool`: one per advertisement that names the pool, announced by
    /// the configuration's members (only those in `local_nodes` when it is given: a Service with
    /// `externalTrafficPolicy: Local` is announced only where it has a ready endpoint) to its
    /// peers of the IP's family: a speaker sends a prefix with its session's own address as the
    /// next hop, so an IPv4 session never carries an IPv6 prefix, nor the other way round.
    /// Routes without a node or a peer are left out, so an IP no session can carry is not
    /// reported announced.
    pub fn routes(
        &self,
        ip: IpAddr,
        pool: &str,
        local_nodes: Option<&BTreeSet<&str>>,
    ) -> Vec<BgpRoute> {
        let family = Family::of_ip(ip);
        let mut out = Vec::new();
        for c in &self.configurations {
            let peers: Vec<String> = c
                .peers
                .iter()
                .filter(|p| self.peer_families.get(*p).copied().flatten() == Some(family))
                .cloned()
                .collect();
            if peers.is_empty() {
                continue;
            }
            let nodes: Vec<String> = c
                .members
                .iter()
                .filter(|n| local_nodes.is_none_or(|local| local.contains(n.as_str())))
                .cloned()
                .collect();
            if nodes.is_empty() {
                continue;
            }
            for a in c.advertisements.iter().filter(|a| a.pools.contains(pool)) {
                out.push(BgpRoute {
                    configuration: c.name.clone(),
                    advertisement: a.index,
                    prefix: prefix(ip, a.ipv4_length),
                    communities: a.communities.clone(),
                    large_communities: a.large_communities.clone(),
                    local_pref: a.local_pref,
                    peers: peers.clone(),
                    nodes: nodes.clone(),
                });
            }
        }
        out
    }
}

/// A configuration as the routes need it: its peers and pools that exist, its member nodes,
/// and what is wrong with it (a condition on the object, never a failure).
fn resolve(
    input: &ConfigurationInput,
    peers: &BTreeMap<String, Option<Family>>,
    pools: &BTreeSet<String>,
    nodes: &[NodeInput],
) -> ConfigurationState {
    let mut issues = BTreeSet::new();
    let mut found = BTreeSet::new();
    for peer in &input.peer_names {
        if peers.contains_key(peer) {
            found.insert(peer.clone());
        } else {
            issues.insert(ConfigurationIssue::MissingPeer(peer.clone()));
        }
    }
    if found.is_empty() {
        issues.insert(ConfigurationIssue::NoPeers);
    }
    let advertisements = input
        .advertisements
        .iter()
        .enumerate()
        .map(|(index, adv)| {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            advertisement(index, adv, pools, &mut issues)
        })
        .collect();
    let mut members: Vec<String> = nodes
        .iter()
        .filter(|n| eligible(n, &input.node_selector))
        .map(|n| n.name.clone())
        .collect();
    members.sort();
    members.dedup();
    ConfigurationState {
        name: input.name.clone(),
        members,
        peers: found.into_iter().collect(),
        issues: issues.into_iter().collect(),
        advertisements,
    }
}

/// One advertisement of a configuration: its communities parsed and sorted, its aggregation
/// length bounded, the pools it names that exist. What is wrong goes to `issues`.
fn advertisement(
    index: u32,
    adv: &AdvertisementInput,
    pools: &BTreeSet<String>,
    issues: &mut BTreeSet<ConfigurationIssue>,
) -> Advertisement {
    let mut standard = BTreeSet::new();
    let mut large = BTreeSet::new();
    for text in &adv.communities {
        match Community::parse(text) {
            Some(c @ Community::Standard(..)) => {
                standard.insert(c);
            }
            Some(c @ Community::Large(..)) => {
                large.insert(c);
            }
            Some(Community::None) => {}
            None => {
                let community = text.clone();
                issues.insert(ConfigurationIssue::InvalidCommunity {
                    advertisement: index,
                    community,
                });
            }
        }
    }
    let ipv4_length = match adv.aggregation_length {
        None => IPV4_HOST,
        Some(length) if length <= IPV4_HOST => length,
        Some(length) => {
            issues.insert(ConfigurationIssue::AggregationTooLong { advertisement: index, length });
            IPV4_HOST
        }
    };
    let mut named = BTreeSet::new();
    for pool in &adv.pool_names {
        if pools.contains(pool) {
            named.insert(pool.clone());
        } else {
            let pool = pool.clone();
            issues.insert(ConfigurationIssue::MissingPool { advertisement: index, pool });
        }
    }
    Advertisement {
        index,
        pools: named,
        communities: standard.iter().map(ToString::to_string).collect(),
        large_communities: large.iter().map(ToString::to_string).collect(),
        local_pref: adv.local_pref,
        ipv4_length,
    }
}

/// A node announces for a configuration when the selector matches, it is Ready and it is not
/// excluded from external load balancers.
fn eligible(node: &NodeInput, selector: &BTreeMap<String, String>) -> bool {
    node.ready
        && !node.labels.contains_key(labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS)
        && selector.iter().all(|(k, v)| node.labels.get(k) == Some(v))
}

/// `ip` masked to its route's prefix length, as `addr/len`.
fn prefix(ip: IpAddr, ipv4_length: u8) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(u32::from(IPV4_HOST - ipv4_length)).unwrap_or(0);
            format!("{}/{ipv4_length}", std::net::Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v6) => format!("{v6}/{IPV6_HOST}"),
    }
}

#[cfg(test)]
mod tests;
