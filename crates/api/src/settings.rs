//! ModuleConfig `metallb` settings, versions 1 and 2, and the ModuleConfig object itself.
//!
//! Version 2 keeps every field of the original module's version 2 (BGP included), so a
//! cluster moving from it keeps a valid ModuleConfig.
//!
//! The authoritative schema the platform validates with is `openapi/config-values.yaml`
//! (version 2); these types are what hooks deserialize. Version 1 matters only to the
//! migration hooks, which read the user's original ModuleConfig (the platform converts the
//! settings it hands to hooks, but never rewrites the stored object).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

/// Settings of ModuleConfig version 2: Layer 2 is served through `MetalLoadBalancerClass`;
/// BGP through `MetalLoadBalancerPool`, `MetalLoadBalancerBGPPeer` and
/// `MetalLoadBalancerConfiguration`, which the BGP migration creates once from the BGP
/// settings below (the original module's version 2 shape, kept so no ModuleConfig of a cluster
/// upgrading from it becomes invalid).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsV2 {
    /// Settings of the speaker DaemonSets.
    #[serde(default)]
    pub speaker: SpeakerSettings,
    /// Address pools of the original settings: `bgp` pools become `MetalLoadBalancerPool`s
    /// through the BGP migration; `layer2` pools are ignored and alerted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_pools: Vec<LegacyAddressPool>,
    /// BGP peers of the original settings; migrated to `MetalLoadBalancerBGPPeer`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bgp_peers: Vec<LegacyBgpPeer>,
    /// Community names of the original settings (name → `ASN:value`), used by the pools'
    /// `bgp-advertisements`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bgp_communities: BTreeMap<String, String>,
    /// `spec.loadBalancerClass` of the Services the original's BGP MetalLB served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
    /// Node selector of the original's controller; accepted, no effect (there is no controller
    /// Deployment: the hooks decide).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the original's controller; accepted, no effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Seconds a returning node must be healthy before a Layer 2 IP moves back to it (the
    /// schema's default, 60, when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback_hold_down_seconds: Option<u32>,
}

/// Speaker settings of version 2.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpeakerSettings {
    /// Nodes of the original's BGP speaker; the BGP migration gives it to the
    /// `MetalLoadBalancerConfiguration` it creates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the speaker pods, so they run on tainted member nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

/// A BGP peer of the original settings (versions 1 and 2).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct LegacyBgpPeer {
    /// Address of the router.
    pub peer_address: String,
    /// ASN of the router.
    pub peer_asn: u32,
    /// ASN of the nodes.
    pub my_asn: u32,
    /// TCP port of the router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_port: Option<u16>,
    /// Local address of the session; not migrated (the original did not either: per-node
    /// source addresses live in `MetalLoadBalancerBGPPeer.spec.sourceAddresses`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// BGP identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// Hold time: a number of seconds or a duration string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<IntOrString>,
    /// Nodes that peer with this router; not migrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// TCP MD5 password in clear text; not migrated (a password belongs in a Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// An advertisement of a `bgp` pool in the original settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct LegacyBgpAdvertisement {
    /// Prefix length of the announced routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_length: Option<u8>,
    /// LOCAL_PREF of the routes.
    #[serde(default, rename = "localpref", skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// Keys of `bgpCommunities` (or literal communities).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// Settings of ModuleConfig version 1 (classic MetalLB), as far as the migration reads them.
///
/// Unknown keys are accepted: a v1 object may carry anything its era's schema allowed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SettingsV1 {
    /// Classic MetalLB speaker settings; the node selector becomes the `l2-default` class's.
    #[serde(default)]
    pub speaker: Option<SpeakerSettingsV1>,
    /// Address pools; the `layer2` ones become classes.
    #[serde(default)]
    pub address_pools: Vec<LegacyAddressPool>,
    /// BGP peers; read one by one by the BGP migration (a malformed one is skipped, not
    /// fatal to the L2 migration).
    #[serde(default)]
    pub bgp_peers: Vec<serde_json::Value>,
}

/// Speaker settings of version 1.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerSettingsV1 {
    /// Nodes the classic speaker ran on.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the classic speaker.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
}

/// An address pool of the classic settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct LegacyAddressPool {
    /// Pool name.
    pub name: String,
    /// `layer2` or `bgp`.
    pub protocol: LegacyProtocol,
    /// CIDRs and ranges.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Whether MetalLB assigned from the pool automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_assign: Option<bool>,
    /// Whether MetalLB skipped `.0` and `.255` addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avoid_buggy_ips: Option<bool>,
    /// How a `bgp` pool's IPs are announced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bgp_advertisements: Vec<LegacyBgpAdvertisement>,
}

/// Protocol of a classic pool. The spelling is the classic settings' own.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LegacyProtocol {
    /// Layer 2.
    #[default]
    Layer2,
    /// BGP.
    Bgp,
}

/// The platform's `ModuleConfig` object, as the migration hooks read it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ModuleConfig {
    /// Object metadata; only the name matters.
    #[serde(default)]
    pub metadata: ModuleConfigMetadata,
    /// Spec.
    #[serde(default)]
    pub spec: ModuleConfigSpec,
}

/// Metadata of a `ModuleConfig`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ModuleConfigMetadata {
    /// Name: the module's name.
    #[serde(default)]
    pub name: String,
}

/// Spec of a `ModuleConfig`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ModuleConfigSpec {
    /// Whether the module is enabled; absent means the bundle's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Version of `settings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Settings in the shape of `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

impl ModuleConfigSpec {
    /// Settings version; settings without a version are version 1, as the platform treats them.
    pub fn version(&self) -> i64 {
        self.version.unwrap_or(1)
    }
}
