//! The module's values (`metallb.*`): the version 2 settings plus `internal`, written by hooks
//! and read by the Helm templates. The schema the platform validates with is
//! `openapi/values.yaml`; a test keeps the two in step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::settings::SpeakerSettings;

/// Everything under `metallb` in the module's values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Values {
    /// Speaker settings from the ModuleConfig.
    #[serde(default)]
    pub speaker: SpeakerSettings,
    /// Left-over version 1 pools (ignored, alerted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_pools: Vec<crate::settings::LegacyAddressPool>,
    /// Values computed by hooks.
    #[serde(default)]
    pub internal: InternalValues,
}

/// `metallb.internal`: computed by hooks, read by templates and by later hook runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InternalValues {
    /// Every `MetalLoadBalancerClass`, sorted by name.
    #[serde(default)]
    pub l2loadbalancers: Vec<ClassValue>,
    /// Which MetalLB `IPAddressPool` went to which generated class during the v1 migration.
    #[serde(default, rename = "ipAddressPoolToMLBCMap")]
    pub ip_address_pool_to_class: BTreeMap<String, String>,
    /// Whether some `MetalLoadBalancerConfiguration` exists: the BGP speaker is rendered only
    /// then.
    #[serde(default)]
    pub bgp_configurations_exist: bool,
    /// Whether Services served before the upgrade have been pinned to their IPs.
    #[serde(default, rename = "migrationOfOldFashionedLBsAdoptionComplete")]
    pub adoption_complete: bool,
}

/// A class as the templates see it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClassValue {
    /// Class name.
    pub name: String,
    /// Pool entries.
    #[serde(default)]
    pub address_pool: Vec<String>,
    /// Interfaces to announce on; empty = automatic.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Node selector.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Whether the class is the effective default.
    #[serde(default)]
    pub is_default: bool,
}
