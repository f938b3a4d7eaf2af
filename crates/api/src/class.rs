//! `MetalLoadBalancerClass`: an address pool plus the nodes that may announce it.

// kube's `printcolumn(...)` entries repeat keys such as `type_` by design; clippy reads them as
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// Describes a pool of public IP addresses and the nodes that announce them in Layer 2 mode.
///
/// A Service of type LoadBalancer uses the class named by `spec.loadBalancerClass`, else by the
/// annotation `network.deckhouse.io/metal-load-balancer-class`, else the class with
/// `isDefault: true`. Each of its public IPs is announced (ARP/NDP) by a different node that
/// matches `nodeSelector`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "network.deckhouse.io",
    version = "v1alpha1",
    kind = "MetalLoadBalancerClass",
    doc = "An address pool and the nodes that announce it in Layer 2 mode: each public IP of a Service using the class is answered (ARP/NDP) by a different matching node.",
    plural = "metalloadbalancerclasses",
    shortname = "mlbc",
    status = "MetalLoadBalancerClassStatus",
    label("heritage", "deckhouse"),
    label("module", "metallb"),
    label("backup.deckhouse.io/cluster-config", "true"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Default", type_ = "boolean", json_path = ".spec.isDefault"),
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
    printcolumn(
        name = "Nodes",
        type_ = "string",
        json_path = ".status.nodeSummary",
        description = "Nodes that announce this pool"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct MetalLoadBalancerClassSpec {
    /// Announcement mode. Only `L2` (ARP for IPv4, NDP for IPv6) is supported.
    #[serde(default, rename = "type")]
    pub type_: ClassType,

    /// Whether Services that name no class use this one.
    ///
    /// If several classes are default, the first by name wins and the others report it in
    /// their status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_default: bool,

    /// Public addresses the class hands out: IPv4 or IPv6 CIDRs (`192.0.2.0/24`,
    /// `2001:db8::/120`) or ranges of one family (`192.0.2.10-192.0.2.20`).
    #[schemars(schema_with = "schema::address_pool")]
    pub address_pool: Vec<String>,

    /// Labels a node must carry (every key with exactly this value) to announce this class's
    /// addresses. Empty or absent selects every node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Layer 2 settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<L2Settings>,
}

/// Announcement mode of a class.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ClassType {
    /// Layer 2: the announcing node answers ARP requests and neighbour solicitations.
    #[default]
    L2,
}

/// Layer 2 settings of a class.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct L2Settings {
    /// Network interfaces to announce on, for example `eth0` or `bond0.100`. Empty or absent:
    /// every up, broadcast-capable interface that is not a bond or bridge member, loopback or a
    /// virtual interface of the cluster network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::interface_names")]
    pub interfaces: Vec<String>,
}

/// Observed state of a class, written by the module.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLoadBalancerClassStatus {
    /// Conditions explaining the class's state (pool validity, the default choice, overlaps
    /// with other classes), each with a reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,

    /// Number of distinct addresses in the pool, as a decimal string (an IPv6 pool can hold
    /// more addresses than fit in a 64-bit integer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<String>,

    /// Number of addresses allocated to Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub allocated: Option<i64>,

    /// Nodes that currently may announce this class's addresses, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_nodes: Vec<String>,

    /// A short human summary of `memberNodes` for `kubectl get`, such as
    /// `front-0,front-1,front-2` or `5 nodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_summary: Option<String>,

    /// The `metadata.generation` the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl MetalLoadBalancerClassSpec {
    /// Interfaces to announce on; empty means automatic choice.
    pub fn interfaces(&self) -> &[String] {
        self.l2.as_ref().map_or(&[], |l2| l2.interfaces.as_slice())
    }
}
