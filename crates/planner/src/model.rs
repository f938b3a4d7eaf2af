//! Plain input and output structs of [`crate::plan`].
//!
//! They mirror what the hooks read from and write to Kubernetes, without kube types, so the
//! planner stays a pure function and the hooks can snapshot both sides as JSON (camelCase,
//! like the objects they come from). Every input field has a default so a snapshot may omit it.
//!
//! The strings repeated per Service and per child (names, IPs, nodes, conditions) are
//! [`CompactString`]s: up to 24 bytes are kept inline, without a heap allocation. Kubernetes
//! names, IPv4 addresses, node names and time stamps mostly fit, and a large run holds about
//! fifty such strings per Service, each of which cost a separate allocation as a `String`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use metallb_api::announcement::BgpRoute;

use crate::bgp::ConfigurationInput;
use crate::diag::Diagnostic;
use crate::pool::{Families, Family};
use crate::strings::{StringMap, StringSet};

// === input ===

/// RFC 3339 time stamp supplied by the caller: the planner never reads a clock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub CompactString);

/// Everything the planner looks at; one call of [`crate::plan`] per hook run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Input {
    /// Written as `lastTransitionTime` of conditions whose status changes in this plan.
    pub now: Timestamp,
    /// Every `MetalLoadBalancerClass`.
    pub classes: Vec<ClassInput>,
    /// Every node.
    pub nodes: Vec<NodeInput>,
    /// Every Service of type `LoadBalancer` (other types must not be passed).
    pub services: Vec<ServiceInput>,
    /// Every `SDNInternalL2LBService`, ours and the previous implementation's.
    pub children: Vec<ExistingChild>,
    /// Failback hold-down in seconds (module setting; 0 turns it off): a node that became a
    /// healthy candidate less than this long ago takes no new IP (see [`crate::hold_down`]).
    pub failback_hold_down_seconds: u32,
}

/// One `MetalLoadBalancerClass`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClassInput {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.generation`, echoed as `observedGeneration`.
    pub generation: i64,
    /// `spec.isDefault`.
    pub is_default: bool,
    /// `spec.addressPool` verbatim; parsed here so bad entries become status, not panics.
    pub address_pool: Vec<String>,
    /// `spec.nodeSelector` (exact match; empty selects every node, as in Kubernetes).
    pub node_selector: BTreeMap<String, String>,
    /// `status.conditions` as they are now, to keep `lastTransitionTime` stable.
    pub conditions: Vec<Condition>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeInput {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels` (the exclusion and member labels are read from here).
    pub labels: BTreeMap<String, String>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// A speaker pod on this node is Ready.
    pub speaker_ready: bool,
    /// When the node last became healthy: the later of its `Ready` condition's and its speaker
    /// pod's `Ready` transition times. Absent when unknown, which never holds the node down.
    pub healthy_since: Option<Timestamp>,
}

/// `namespace/name` of a Service; children are matched to parents by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceRef {
    /// `metadata.namespace`.
    pub namespace: CompactString,
    /// `metadata.name`.
    pub name: CompactString,
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `spec.externalTrafficPolicy` / `spec.internalTrafficPolicy`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub enum TrafficPolicy {
    /// Any node may forward (the Kubernetes default, also used when the field is absent).
    #[default]
    Cluster,
    /// Only nodes with a ready endpoint may serve.
    Local,
}

/// `targetPort`: a number or a named port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortTarget {
    /// A port number.
    Number(i32),
    /// A named container port.
    Name(CompactString),
}

/// A Service's `spec.ports`, shared rather than copied: every child of a Service carries the
/// same list, in the planner's input (existing children) and in its plan (desired children). A
/// copy per child made the ports and selectors a fifth of a large run's memory.
pub type SharedPorts = Arc<[ServicePort]>;

/// A Service's `spec.selector`, shared like [`SharedPorts`].
pub type SharedSelector = Arc<StringMap>;

/// One entry of `spec.ports`, copied into every child.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    /// `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<CompactString>,
    /// `protocol`: `TCP`, `UDP` or `SCTP` (empty means `TCP`, as in Kubernetes).
    pub protocol: CompactString,
    /// `port`.
    pub port: i32,
    /// `targetPort`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_port: Option<PortTarget>,
    /// `nodePort`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i32>,
    /// `appProtocol`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<CompactString>,
}

impl ServicePort {
    /// `(protocol, port)`: the identity two sharing Services must not both use.
    pub(crate) fn identity(&self) -> (&str, i32) {
        let protocol = if self.protocol.is_empty() { "TCP" } else { self.protocol.as_str() };
        (protocol, self.port)
    }
}

/// One Service of type `LoadBalancer`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceInput {
    /// `metadata.namespace`.
    pub namespace: CompactString,
    /// `metadata.name`.
    pub name: CompactString,
    /// `metadata.uid`, for the children's ownerReference.
    pub uid: CompactString,
    /// `metadata.generation`, echoed as `observedGeneration`; a real server sets none on
    /// Services, so it is normally 0 and then not written.
    pub generation: i64,
    /// `spec.loadBalancerClass`.
    pub load_balancer_class: Option<String>,
    /// `metadata.annotations`. Only the module's own are read (the keys of
    /// `metallb_api::names::annotations`), so a caller may pass just those.
    pub annotations: StringMap,
    /// `spec.ports`; shared with the children that copy it.
    pub ports: SharedPorts,
    /// `spec.selector`; shared with the children that copy it.
    pub selector: SharedSelector,
    /// `spec.externalTrafficPolicy`.
    pub external_traffic_policy: TrafficPolicy,
    /// `spec.internalTrafficPolicy` (absent → `Cluster`).
    pub internal_traffic_policy: TrafficPolicy,
    /// `spec.ipFamilies` in preference order; empty allows both (IPv4 first).
    pub ip_families: Families,
    /// `spec.publishNotReadyAddresses`.
    pub publish_not_ready_addresses: bool,
    /// `spec.clusterIP`.
    pub cluster_ip: Option<CompactString>,
    /// `spec.loadBalancerIP` (deprecated by Kubernetes); a requested IP of a BGP-bound Service
    /// when neither requested-IPs annotation is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_ip: Option<CompactString>,
    /// `status.conditions` as they are now.
    pub conditions: Vec<Condition>,
    /// `status.loadBalancer.ingress[*].ip` as it is now.
    pub ingress: Vec<CompactString>,
    /// Nodes holding a ready endpoint of this Service (from its EndpointSlices).
    pub ready_endpoint_nodes: StringSet,
}

impl ServiceInput {
    /// The key children refer to.
    pub fn key(&self) -> ServiceRef {
        ServiceRef { namespace: self.namespace.clone(), name: self.name.clone() }
    }
}

/// One existing child object.
///
/// Children of the previous implementation are passed the same way: `spec.class` from their
/// `metallb.io/address-pool` annotation (the class name), `spec.index` as `None` (it is then
/// read from the name `<service>-<class>-<i>`), `status.ip` from
/// `status.loadBalancer.ingress[0].ip`, and [`ExistingChild::preferred_node`] from the
/// `metallb.io/preferredL2SpeakerNode` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExistingChild {
    /// `metadata.namespace`.
    pub namespace: CompactString,
    /// `metadata.name`.
    pub name: CompactString,
    /// uid of its owner reference, if it has one; a mismatch with the Service's uid means the
    /// Service was deleted and re-created, so the child is stale.
    pub owner_uid: Option<CompactString>,
    /// `metallb.io/preferredL2SpeakerNode`, used when `status.node` is absent (adoption).
    pub preferred_node: Option<CompactString>,
    /// `spec`.
    pub spec: ChildSpec,
    /// `status`.
    pub status: ChildStatus,
}

/// `spec` of a child; compatible with the previous implementation's shape.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChildSpec {
    /// The parent Service.
    pub service_ref: ServiceRef,
    /// Name of the `MetalLoadBalancerClass`.
    pub class: CompactString,
    /// Which of the parent's IPs this child carries (0-based); always set in a plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The entry of `network.deckhouse.io/load-balancer-ips` for this index, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_ip: Option<CompactString>,
    /// `network.deckhouse.io/load-balancer-shared-ip-key` of the parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing_key: Option<CompactString>,
    /// The parent's `spec.ports`.
    pub ports: SharedPorts,
    /// The parent's `spec.selector`.
    pub selector: SharedSelector,
    /// The parent's `spec.externalTrafficPolicy`.
    pub external_traffic_policy: TrafficPolicy,
    /// The parent's `spec.internalTrafficPolicy`.
    pub internal_traffic_policy: TrafficPolicy,
    /// The parent's `spec.publishNotReadyAddresses`.
    pub publish_not_ready_addresses: bool,
    /// The parent's `spec.clusterIP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<CompactString>,
}

/// `status` of a child: what the speakers act on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChildStatus {
    /// The allocated public IP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<CompactString>,
    /// The announcing node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<CompactString>,
    /// Nodes that take over, in this order, while `node` is dead in the gossip view (≤ 3).
    pub backups: Vec<CompactString>,
    /// Conditions (`Announced`).
    pub conditions: Vec<Condition>,
}

// === BGP input ===

/// BGP mode's part of the cluster. Apart from [`Input`] so that a caller without BGP objects
/// (and the hooks' existing struct literals) need not change; see [`crate::plan_with_bgp`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BgpInput {
    /// Every `MetalLoadBalancerPool`.
    pub pools: Vec<PoolInput>,
    /// Every `MetalLoadBalancerConfiguration`.
    pub configurations: Vec<ConfigurationInput>,
    /// Every `MetalLoadBalancerBGPPeer` by name, with the family of its `peerAddress` (`None`
    /// when it does not parse: the speakers open no session to it).
    pub peers: BTreeMap<String, Option<Family>>,
    /// Every `SDNInternalBGPAnnouncement`.
    pub announcements: Vec<ExistingAnnouncement>,
}

impl BgpInput {
    /// No BGP object at all: what [`crate::plan`] uses.
    pub const EMPTY: BgpInput = BgpInput {
        pools: Vec::new(),
        configurations: Vec::new(),
        peers: BTreeMap::new(),
        announcements: Vec::new(),
    };
}

/// One `MetalLoadBalancerPool`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PoolInput {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.generation`, echoed as `observedGeneration`.
    pub generation: i64,
    /// `spec.addresses` verbatim; parsed here so bad entries become status, not panics.
    pub addresses: Vec<String>,
    /// `spec.autoAssign` (the CRD defaults it to true): Services naming no class and no pool
    /// may get IPs from it when no default class exists.
    pub auto_assign: bool,
    /// `spec.avoidBuggyIPs`: never give IPv4 addresses ending in `.0` or `.255`.
    pub avoid_buggy_ips: bool,
    /// `status.conditions` as they are now.
    pub conditions: Vec<Condition>,
}

/// One existing `SDNInternalBGPAnnouncement`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExistingAnnouncement {
    /// `metadata.namespace`.
    pub namespace: CompactString,
    /// `metadata.name`.
    pub name: CompactString,
    /// uid of its owner reference, if it has one (a mismatch: the Service was re-created).
    pub owner_uid: Option<CompactString>,
    /// `spec`.
    pub spec: AnnouncementSpec,
    /// `status`.
    pub status: AnnouncementStatus,
}

/// `spec` of an announcement (`docs/internal/bgp-objects.md`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AnnouncementSpec {
    /// The Service.
    pub service_ref: ServiceRef,
    /// The `MetalLoadBalancerPool` the IP comes from.
    pub pool: CompactString,
    /// The IP.
    pub ip: CompactString,
    /// Routes, sorted by configuration and advertisement.
    pub routes: Vec<BgpRoute>,
}

/// `status` of an announcement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AnnouncementStatus {
    /// Conditions (`Announced`).
    pub conditions: Vec<Condition>,
    /// The announcing nodes, sorted and comma-separated, for `kubectl get`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_summary: Option<CompactString>,
}

// === conditions ===

/// `status` of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// Not known.
    Unknown,
}

/// A `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `type`.
    #[serde(rename = "type")]
    pub type_: CompactString,
    /// `status`.
    pub status: ConditionStatus,
    /// `reason` (CamelCase).
    pub reason: CompactString,
    /// `message`.
    pub message: CompactString,
    /// Changes only when `status` changes.
    pub last_transition_time: Timestamp,
    /// `metadata.generation` of the object when the condition was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// === output ===

/// What the planner decided; the hooks turn it into Kubernetes operations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The full desired set of children, sorted by namespace, Service, class and numeric index.
    pub children: Vec<DesiredChild>,
    /// Existing children to delete, sorted by namespace and name.
    pub deletions: Vec<ChildDeletion>,
    /// Parent Service statuses to write, sorted by namespace and name.
    pub services: Vec<ServiceStatusPlan>,
    /// One status per class, sorted by name.
    pub classes: Vec<ClassStatusPlan>,
    /// The member label on nodes.
    pub nodes: NodeMembership,
    /// Why something was skipped, clamped or rejected; for logs and metrics.
    pub diagnostics: Vec<Diagnostic>,
    /// The full desired set of BGP announcements, sorted by namespace, Service and index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announcements: Vec<DesiredAnnouncement>,
    /// Existing announcements to delete, sorted by namespace and name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announcement_deletions: Vec<AnnouncementDeletion>,
    /// One status per BGP pool, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolStatusPlan>,
}

/// One announcement as it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredAnnouncement {
    /// In the Service's namespace.
    pub namespace: CompactString,
    /// `<service>-bgp-<index>` or its truncated, hashed form ([`crate::naming::child_name`]).
    pub name: CompactString,
    /// uid of the Service, for the ownerReference.
    pub owner_uid: CompactString,
    /// What to write (as for children).
    pub action: ChildAction,
    /// `spec`.
    pub spec: AnnouncementSpec,
    /// `status`.
    pub status: AnnouncementStatus,
}

/// One existing announcement to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnnouncementDeletion {
    /// `metadata.namespace`.
    pub namespace: CompactString,
    /// `metadata.name`.
    pub name: CompactString,
    /// Why.
    pub reason: DeleteReason,
}

/// `status` of a `MetalLoadBalancerPool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatusPlan {
    /// `metadata.name`.
    pub name: String,
    /// Full `status.conditions` after merging (`PoolValid`, `PoolDisjoint`).
    pub conditions: Vec<Condition>,
    /// Number of addresses in the pool, in decimal.
    pub pool_size: String,
    /// Distinct IPs allocated from this pool.
    pub allocated: u64,
    /// Whether `conditions` differ from the input.
    pub conditions_changed: bool,
}

/// One part of a plan as [`crate::Decisions::render`] builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value exists at a time; boxing would add an allocation per child"
)]
pub enum Rendered {
    /// The next desired child.
    Child(DesiredChild),
    /// The next parent Service status (after that Service's children).
    Service(ServiceStatusPlan),
}

/// What to do with one desired child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChildAction {
    /// No object of this name exists: create it, then write its status.
    Create,
    /// It exists but differs: write the parts marked true (status is a subresource).
    Update {
        /// `spec` (or the owner) differs.
        spec: bool,
        /// `status` differs.
        status: bool,
    },
    /// It exists and matches exactly: nothing to write.
    Keep,
}

/// One child as it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredChild {
    /// In the parent's namespace.
    pub namespace: CompactString,
    /// `<service>-<class>-<index>` or its truncated, hashed form.
    pub name: CompactString,
    /// uid of the parent, for the ownerReference.
    pub owner_uid: CompactString,
    /// What to write.
    pub action: ChildAction,
    /// `spec`.
    pub spec: ChildSpec,
    /// `status`.
    pub status: ChildStatus,
}

/// Why an existing child goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeleteReason {
    /// No LoadBalancer Service of that name (or it was re-created with another uid).
    ParentGone,
    /// The parent is not ours any more (foreign class, or no class at all).
    ParentNotManaged,
    /// The parent now wants fewer IPs.
    IndexUnused,
    /// Superseded by a child of another name for the same index (rebinding, renaming).
    Superseded,
}

impl DeleteReason {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ParentGone => "parent_gone",
            Self::ParentNotManaged => "parent_not_managed",
            Self::IndexUnused => "index_unused",
            Self::Superseded => "superseded",
        }
    }
}

/// One existing child to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildDeletion {
    /// `metadata.namespace`.
    pub namespace: CompactString,
    /// `metadata.name`.
    pub name: CompactString,
    /// Why.
    pub reason: DeleteReason,
}

/// `status` of a parent Service as it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatusPlan {
    /// `metadata.namespace`.
    pub namespace: CompactString,
    /// `metadata.name`.
    pub name: CompactString,
    /// `status.loadBalancer.ingress[*].ip`, in index order (shared IPs once).
    pub ingress: Vec<CompactString>,
    /// The full `status.conditions` after merging ours into the existing ones.
    pub conditions: Vec<Condition>,
    /// Whether ingress or conditions differ from the input; false means nothing to write.
    pub changed: bool,
}

/// `status` of a class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassStatusPlan {
    /// `metadata.name`.
    pub name: String,
    /// Full `status.conditions` after merging.
    pub conditions: Vec<Condition>,
    /// Number of addresses in the pool, in decimal (IPv6 pools exceed `u64`).
    pub pool_size: String,
    /// Distinct IPs allocated from this class.
    pub allocated: u64,
    /// Nodes the class selects (sorted), whether or not they can announce right now.
    pub member_nodes: Vec<String>,
    /// Nodes that can announce right now (Ready, not excluded, speaker ready), sorted.
    pub candidate_nodes: Vec<String>,
    /// Whether `conditions` differ from the input (other fields are not in the input).
    pub conditions_changed: bool,
}

/// The `l2-load-balancer.network.deckhouse.io/member` label.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMembership {
    /// Nodes that should carry the label.
    pub members: BTreeSet<String>,
    /// Members without the label now: add it.
    pub add_label: Vec<String>,
    /// Labelled nodes that are no longer members: remove it.
    pub remove_label: Vec<String>,
}
