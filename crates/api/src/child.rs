//! `SDNInternalL2LBService`: one public IP of a Service, with the node that announces it.

// kube's `printcolumn(...)` entries repeat keys such as `type_` by design; clippy reads them as
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::{LoadBalancerStatus, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// Internal object of the metallb module: one public IP of a Service of type LoadBalancer.
///
/// The module creates one per requested IP, in the Service's namespace, owned by the Service.
/// The speakers read them to know which node answers ARP/NDP for which IP. Do not edit.
///
/// The spec keeps the shape the previous implementation used (the parent's Service spec plus
/// `serviceRef`), so children that already exist in a cluster are adopted with their IPs.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "internal.network.deckhouse.io",
    version = "v1alpha1",
    kind = "SDNInternalL2LBService",
    doc = "Internal object of the metallb module: one public IP of a Service of type LoadBalancer and the node announcing it. Created and owned by the module; do not edit.",
    plural = "sdninternall2lbservices",
    namespaced,
    status = "SDNInternalL2LBServiceStatus",
    label("heritage", "deckhouse"),
    label("module", "metallb"),
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.serviceRef.name"),
    printcolumn(name = "IP", type_ = "string", json_path = ".status.ip"),
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".status.node",
        description = "Node announcing the IP"
    ),
    printcolumn(
        name = "Backups",
        type_ = "string",
        json_path = ".status.backupNodes",
        description = "Nodes taking over, in order, when the announcing node fails",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct SDNInternalL2LBServiceSpec {
    /// The Service this IP belongs to.
    pub service_ref: ServiceReference,

    /// Name of the `MetalLoadBalancerClass` the IP comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metal_load_balancer_class: Option<String>,

    /// Position of this IP among the Service's IPs, from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 63))]
    pub index: Option<i32>,

    /// The IP the Service asked for at this index, if any.
    #[serde(default, rename = "desiredIP", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::ip_address")]
    pub desired_ip: Option<String>,

    /// Sharing key of the Service: Services with the same key may share this IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_ip_key: Option<String>,

    /// Copy of the parent Service's spec fields that matter for traffic (ports, selector,
    /// traffic policies, cluster IP).
    #[serde(flatten)]
    pub service: ServiceSpec,
}

/// Reference to the parent Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ServiceReference {
    /// Name of the Service.
    pub name: String,
    /// Namespace of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Observed state of a child, written by the module.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SDNInternalL2LBServiceStatus {
    /// The allocated public IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::ip_address")]
    pub ip: Option<String>,

    /// The node that announces the IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,

    /// Nodes that take over, in this order, when the announcing node's speaker is gone, until
    /// the module moves the IP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_nodes: Vec<String>,

    /// Conditions explaining whether and where the IP is announced, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,

    /// The IP in the form Service status uses; kept for tools that read the previous
    /// implementation's children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerStatus>,

    /// The `metadata.generation` the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
