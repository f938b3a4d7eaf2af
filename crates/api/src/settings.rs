//! ModuleConfig `metallb` settings, versions 1 and 2, and the ModuleConfig object itself.
//!
//! The authoritative schema the platform validates with is `openapi/config-values.yaml`
//! (version 2); these types are what hooks deserialize. Version 1 matters only to the
//! migration hooks, which read the user's original ModuleConfig (the platform converts the
//! settings it hands to hooks, but never rewrites the stored object).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use serde::{Deserialize, Serialize};

/// Settings of ModuleConfig version 2: Layer 2 is served through `MetalLoadBalancerClass`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsV2 {
    /// Settings of the speaker DaemonSet.
    #[serde(default)]
    pub speaker: SpeakerSettings,
    /// Left over from version 1 and ignored: `layer2` pools are served through classes. Their
    /// presence raises an alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_pools: Vec<LegacyAddressPool>,
}

/// Speaker settings of version 2.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpeakerSettings {
    /// Tolerations of the speaker pods, so they run on tainted member nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
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
    /// BGP peers (classic MetalLB); not served by this module.
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
