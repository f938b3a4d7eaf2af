//! BGP mode: `MetalLoadBalancerPool`, `MetalLoadBalancerBGPPeer` and
//! `MetalLoadBalancerConfiguration`, in the shapes of the original module.
//!
//! ```text
//!  MetalLoadBalancerConfiguration ── nodeSelector: which nodes announce
//!        ├── bgp.peerNames ──────────► MetalLoadBalancerBGPPeer (router address, ASNs, timers, MD5, BFD)
//!        └── advertisements[].poolNames ► MetalLoadBalancerPool (addresses, autoAssign, avoidBuggyIPs)
//! ```
//!
//! The schema rejects what it can see (addresses, ASNs, hold time, community syntax, BFD
//! bounds); what needs other objects (a missing peer or pool, overlapping pools, an unlabelled
//! password Secret) is reported in the objects' status conditions by the hooks.

// kube's `printcolumn(...)` entries repeat keys such as `type_` by design; clippy reads them as
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// Describes an IP address pool used by the load balancer in BGP mode.
///
/// A Service takes its IPs from the pool named by the annotation
/// `network.deckhouse.io/load-balancer-pool` (or MetalLB's `metallb.io/address-pool`), or from an
/// `autoAssign` pool when it names no class and no pool and there is no default
/// `MetalLoadBalancerClass`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "network.deckhouse.io",
    version = "v1alpha1",
    kind = "MetalLoadBalancerPool",
    doc = "Describes an IP address pool (MetalLoadBalancerPool) to be used by the load balancer in BGP mode.",
    plural = "metalloadbalancerpools",
    shortname = "mlbp",
    status = "MetalLoadBalancerPoolStatus",
    label("heritage", "deckhouse"),
    label("module", "metallb"),
    label("backup.deckhouse.io/cluster-config", "true"),
    printcolumn(name = "Auto Assign", type_ = "boolean", json_path = ".spec.autoAssign"),
    printcolumn(
        name = "Pool Size",
        type_ = "string",
        json_path = ".status.poolSize",
        description = "Number of addresses in the pool"
    ),
    printcolumn(
        name = "Allocated",
        type_ = "integer",
        json_path = ".status.allocated",
        description = "Addresses allocated to Services"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct MetalLoadBalancerPoolSpec {
    /// Addresses of the pool: IPv4 or IPv6 CIDRs (`203.0.113.0/24`, `2001:db8::/120`) or ranges
    /// of one family (`203.0.113.10-203.0.113.20`).
    #[schemars(schema_with = "schema::address_pool")]
    pub addresses: Vec<String>,

    /// Whether Services that name no pool may get addresses from this pool. Set to `false` for a
    /// pool that only Services naming it should use.
    #[serde(default = "default_true")]
    #[schemars(extend("default" = true))]
    pub auto_assign: bool,

    /// Prevents addresses ending with `.0` and `.255` from being used by the pool: some old
    /// client equipment drops traffic to them.
    #[serde(default, rename = "avoidBuggyIPs")]
    #[schemars(extend("default" = false))]
    pub avoid_buggy_ips: bool,
}

fn default_true() -> bool {
    true
}

/// Observed state of a pool, written by the module.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLoadBalancerPoolStatus {
    /// Conditions explaining the pool's state (address validity, overlaps with other pools and
    /// classes, exhaustion), each with a reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,

    /// Number of distinct usable addresses in the pool, as a decimal string (an IPv6 pool can
    /// hold more addresses than fit in a 64-bit integer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<String>,

    /// Number of addresses allocated to Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub allocated: Option<i64>,

    /// The `metadata.generation` the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Describes the settings of a BGP router (neighbor) and the parameters for establishing a
/// session with it.
///
/// Every node of a `MetalLoadBalancerConfiguration` naming the peer opens its own session to
/// it. `peerASN` equal to `myASN` makes the session internal (iBGP).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "network.deckhouse.io",
    version = "v1alpha1",
    kind = "MetalLoadBalancerBGPPeer",
    doc = "Describes the settings of a BGP router (neighbor) and the parameters for establishing a session with it.",
    plural = "metalloadbalancerbgppeers",
    shortname = "mlbbp",
    status = "MetalLoadBalancerBGPPeerStatus",
    label("heritage", "deckhouse"),
    label("module", "metallb"),
    label("backup.deckhouse.io/cluster-config", "true"),
    printcolumn(name = "Peer Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "Peer ASN", type_ = "integer", json_path = ".spec.peerASN"),
    printcolumn(name = "My ASN", type_ = "integer", json_path = ".spec.myASN"),
    printcolumn(
        name = "Sessions",
        type_ = "string",
        json_path = ".status.sessionSummary",
        description = "Established sessions out of the sessions the nodes should hold"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct MetalLoadBalancerBGPPeerSpec {
    /// Address of the router, IPv4 or IPv6.
    #[schemars(schema_with = "schema::ip_address")]
    pub peer_address: String,

    /// TCP port of the router; 179 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub peer_port: Option<u16>,

    /// Autonomous system number of the router (4-byte ASNs allowed).
    #[serde(rename = "peerASN")]
    #[schemars(range(min = 1, max = 4_294_967_295u32))]
    pub peer_asn: u32,

    /// Autonomous system number of the nodes.
    #[serde(rename = "myASN")]
    #[schemars(range(min = 1, max = 4_294_967_295u32))]
    pub my_asn: u32,

    /// BGP identifier the nodes use in this session; absent: each node's own address toward the
    /// router.
    #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::ipv4_address")]
    pub router_id: Option<String>,

    /// Hold time proposed to the router (`90s`, `3s`, `1m30s`); the keepalive interval is a
    /// third of the negotiated hold time. `0s` disables both; otherwise at least 3 seconds
    /// (RFC 4271 §4.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::hold_time")]
    pub hold_time: Option<String>,

    /// Secret with the TCP MD5 password (RFC 2385) under the key `password`. The Secret must
    /// carry the label `network.deckhouse.io/metallb-bgp-password: "true"`; the module copies it
    /// into its namespace for the speakers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretReference>,

    /// Per-node override of the local IP address used for peering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_addresses: Vec<SourceAddress>,

    /// Bidirectional Forwarding Detection for this peer: the router and the node detect a dead
    /// link or node within `transmitInterval × detectMultiplier` instead of the hold time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdSettings>,
}

/// Reference to a Secret in some namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
}

/// The local address one node uses for its session with the peer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceAddress {
    /// Name of the node.
    #[schemars(length(min = 1, max = 253))]
    pub node_name: String,
    /// Local address of the node toward the peer, of the peer address's family.
    #[schemars(schema_with = "schema::ip_address")]
    pub address: String,
}

/// BFD parameters of a peer (RFC 5880, single hop RFC 5881). Intervals are in milliseconds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BfdSettings {
    /// Minimum interval between received control packets the node asks for; 300 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub receive_interval: Option<u32>,
    /// Minimum interval between transmitted control packets the node offers; 300 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub transmit_interval: Option<u32>,
    /// Missed packets after which the session is declared down; 3 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255))]
    pub detect_multiplier: Option<u32>,
    /// Minimum interval between echo packets; accepted for compatibility, echo mode is not
    /// used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub echo_interval: Option<u32>,
    /// Accepted for compatibility; echo mode is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    /// Whether the node waits for the router to start the BFD session instead of starting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// Accepted for compatibility; single-hop BFD always sends and requires TTL 255
    /// (RFC 5881 §5).
    #[serde(default, rename = "minimumTTL", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
}

/// Observed state of a peer: conditions written by the hooks, and one session entry per node
/// written by that node's speaker.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLoadBalancerBGPPeerStatus {
    /// Conditions explaining the peer's state (password Secret found and labelled), each with a
    /// reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,

    /// One entry per node that should hold a session with this peer, written by that node's
    /// speaker (server-side apply, one field manager per node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::bgp_sessions")]
    pub sessions: Vec<BgpSessionStatus>,

    /// A short summary for `kubectl get`, such as `3/3 established`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_summary: Option<String>,

    /// The `metadata.generation` the conditions were computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The state of one node's session with a peer, as its speaker sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpSessionStatus {
    /// The node holding the session.
    pub node: String,
    /// BGP state (RFC 4271 §8.2.2): `Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm`,
    /// `Established`.
    pub state: String,
    /// When the session entered `state` (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Prefixes the node announces to the peer in this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub prefixes_sent: Option<i64>,
    /// BFD state of the session (`Up`, `Down`, `Init`, `AdminDown`), when BFD is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_state: Option<String>,
    /// The last error that closed or refused the session, such as a NOTIFICATION received or
    /// a connection refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Defines the routing topology: from which nodes, to which BGP peers, and which IP address
/// pools to advertise.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "network.deckhouse.io",
    version = "v1alpha1",
    kind = "MetalLoadBalancerConfiguration",
    doc = "Defines the routing topology: from which nodes, to which BGP peers, and which IP address pools to advertise.",
    plural = "metalloadbalancerconfigurations",
    shortname = "mlbconfig",
    status = "MetalLoadBalancerConfigurationStatus",
    label("heritage", "deckhouse"),
    label("module", "metallb"),
    label("backup.deckhouse.io/cluster-config", "true"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Nodes",
        type_ = "string",
        json_path = ".status.nodeSummary",
        description = "Nodes that announce"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct MetalLoadBalancerConfigurationSpec {
    /// Labels a node must carry (every key with exactly this value) to announce; the BGP speaker
    /// runs on these nodes. Empty or absent selects every node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Announcement mode. Only `BGP` is supported in this configuration.
    pub mode: ConfigurationMode,

    /// BGP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<ConfigurationBgp>,

    /// What to announce: pools and the attributes of their routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advertisements: Vec<Advertisement>,
}

/// Announcement mode of a configuration.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConfigurationMode {
    /// The nodes announce Service IPs to BGP peers.
    #[default]
    #[serde(rename = "BGP")]
    Bgp,
}

/// BGP settings of a configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationBgp {
    /// Names of the `MetalLoadBalancerBGPPeer` objects every selected node peers with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_names: Vec<String>,
}

/// One advertisement: pools, and the attributes of the routes of their IPs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Advertisement {
    /// Names of the `MetalLoadBalancerPool` objects whose Service IPs are announced.
    #[schemars(length(min = 1))]
    pub pool_names: Vec<String>,

    /// Attributes of the routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<AdvertisementBgp>,
}

/// BGP attributes of an advertisement's routes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvertisementBgp {
    /// Communities attached to the routes: `ASN:value` (each part 0–65535), the well-known
    /// `no-export`, `no-advertise`, `local-as` (`NO_EXPORT_SUBCONFED`), or `none` (nothing), or a
    /// large community `large:global:local1:local2` (RFC 8092, each part 0–4294967295).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::communities")]
    pub communities: Vec<String>,

    /// LOCAL_PREF of the routes; sent to internal (iBGP) peers only, as RFC 4271 §5.1.5 wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4_294_967_295u32))]
    pub local_pref: Option<u32>,

    /// Prefix length of the announced IPv4 routes; 32 when absent (one route per IP). A shorter
    /// length announces the covering prefix instead. A length above 32 is reported in the
    /// configuration's status and /32 is used. IPv6 routes are always /128: the original's
    /// speaker was IPv4-only, and applying an IPv4 length to IPv6 would announce a huge prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 128))]
    pub aggregation_length: Option<u8>,
}

/// Observed state of a configuration, written by the module.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLoadBalancerConfigurationStatus {
    /// Conditions explaining the configuration's state (every named peer and pool exists, the
    /// attributes are valid), each with a reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,

    /// Nodes the selector matches that may announce now, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_nodes: Vec<String>,

    /// A short human summary of `memberNodes` for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_summary: Option<String>,

    /// The `metadata.generation` the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
