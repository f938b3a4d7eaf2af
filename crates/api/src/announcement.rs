//! `SDNInternalBGPAnnouncement`: one BGP Service IP and who announces it to whom, as the hooks
//! decided. This is the whole contract between the control plane and the BGP speakers
//! (`docs/internal/bgp-objects.md`).
//!
//! ```text
//!  hooks ─► SDNInternalBGPAnnouncement (one per Service IP, in the Service's namespace)
//!             spec.routes[]: prefix + attributes + peers + nodes
//!  speaker on node N ─► every route whose `nodes` holds N ─► one announcement per named peer
//! ```
//!
//! Unlike the L2 child it carries no copy of the Service spec: speakers need the prefix, the
//! attributes, the peers and the nodes, nothing else, and 10 000 of these must stay small.

// kube's `printcolumn(...)` entries repeat keys such as `type_` by design; clippy reads them as
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::child::ServiceReference;
use crate::schema;

/// Internal object of the metallb module: one BGP Service IP, the routes that announce it and
/// the nodes that announce each route.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "internal.network.deckhouse.io",
    version = "v1alpha1",
    kind = "SDNInternalBGPAnnouncement",
    doc = "Internal object of the metallb module: one public IP of a Service announced over BGP, with the routes, peers and nodes that announce it. Created and owned by the module; do not edit.",
    plural = "sdninternalbgpannouncements",
    namespaced,
    status = "SDNInternalBGPAnnouncementStatus",
    label("heritage", "deckhouse"),
    label("module", "metallb"),
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.serviceRef.name"),
    printcolumn(name = "IP", type_ = "string", json_path = ".spec.ip"),
    printcolumn(name = "Pool", type_ = "string", json_path = ".spec.pool"),
    printcolumn(
        name = "Nodes",
        type_ = "string",
        json_path = ".status.nodeSummary",
        description = "Nodes announcing the IP"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct SDNInternalBGPAnnouncementSpec {
    /// The Service this IP belongs to.
    pub service_ref: ServiceReference,

    /// The `MetalLoadBalancerPool` the IP comes from. A speaker announces an IP only while it
    /// lies inside this pool.
    pub pool: String,

    /// The Service IP.
    #[schemars(schema_with = "schema::ip_address")]
    pub ip: String,

    /// Routes to announce for the IP, sorted by configuration and advertisement index. Empty:
    /// nobody announces the IP (the status says why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<BgpRoute>,
}

/// One route of an IP: the prefix and attributes of one advertisement of one configuration,
/// sent by `nodes` to `peers`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpRoute {
    /// The `MetalLoadBalancerConfiguration` this route comes from.
    pub configuration: String,

    /// Index of the advertisement in the configuration's `spec.advertisements`.
    #[schemars(range(min = 0))]
    pub advertisement: u32,

    /// Announced prefix: the IP masked to the advertisement's aggregation length, such as
    /// `203.0.113.10/32` or `203.0.113.0/24`.
    pub prefix: String,

    /// Standard communities, as `ASN:value` with well-known names already resolved
    /// (`no-export` is `65535:65281`), in numeric order, without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,

    /// Large communities (RFC 8092) as `global:local1:local2`, in numeric order, without
    /// duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub large_communities: Vec<String>,

    /// LOCAL_PREF, sent to internal (iBGP) peers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,

    /// `MetalLoadBalancerBGPPeer` names every node of `nodes` announces the route to, sorted.
    pub peers: Vec<String>,

    /// Nodes that announce the route, sorted: selected by the configuration, Ready, not
    /// excluded from external load balancers and, for `externalTrafficPolicy: Local`, holding a
    /// ready endpoint of the Service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

/// Observed state of an announcement, written by the module.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SDNInternalBGPAnnouncementStatus {
    /// Conditions explaining whether and by how many nodes the IP is announced, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,

    /// A short human summary of the announcing nodes for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_summary: Option<String>,
}
