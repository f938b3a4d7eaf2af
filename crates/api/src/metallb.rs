//! MetalLB's own `IPAddressPool` and `L2Advertisement` (`metallb.io/v1beta1`), as far as the
//! version 1 migration reads them.
//!
//! Clusters upgraded from the classic module hold these objects; the migration turns them into
//! classes. Its hooks watch both kinds, and a watch on a kind without a CRD fails, so the module
//! ships these CRDs (`crds/native/`) for clusters that never had MetalLB. Every unknown field is
//! preserved: where MetalLB's fuller schema is replaced by this one, no stored object loses data.

// kube's `printcolumn(...)` entries repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// MetalLB's address pool; read by the version 1 migration of the metallb module.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    plural = "ipaddresspools",
    namespaced,
    doc = "MetalLB address pool. The metallb module reads it only to migrate version 1 settings into MetalLoadBalancerClass objects.",
    label("heritage", "deckhouse"),
    label("module", "metallb"),
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct IPAddressPoolSpec {
    /// CIDRs and ranges of the pool.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// MetalLB's Layer 2 advertisement; read by the version 1 migration of the metallb module.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    plural = "l2advertisements",
    namespaced,
    doc = "MetalLB Layer 2 advertisement. The metallb module reads it only to migrate version 1 settings into MetalLoadBalancerClass objects.",
    label("heritage", "deckhouse"),
    label("module", "metallb"),
    printcolumn(name = "Pools", type_ = "string", json_path = ".spec.ipAddressPools"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct L2AdvertisementSpec {
    /// Names of the `IPAddressPool`s announced.
    #[serde(default)]
    pub ip_address_pools: Vec<String>,
    /// Nodes that announce; the migration takes the first selector's `matchLabels`.
    #[serde(default)]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to announce on.
    #[serde(default)]
    pub interfaces: Vec<String>,
}
