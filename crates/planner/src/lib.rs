//! Every decision of the metallb module as a pure function of plain structs: L2 classes and
//! their children, and BGP pools and their announcements.
//!
//! The hooks build an [`Input`] (and a [`BgpInput`] for BGP mode) from Kubernetes snapshots,
//! call [`plan`] ([`plan_with_bgp`]), and turn the [`Plan`] into operations. A caller with a
//! large cluster calls [`decide`] ([`decide_with_bgp`]) instead and renders children, Service
//! statuses and announcements one at a time ([`Decisions::render`],
//! [`Decisions::announcements`]), so the whole desired state never exists at once. Nothing
//! here does I/O, reads a clock (the caller passes [`Input::now`]) or draws random numbers: the
//! same input gives a byte-identical plan.
//!
//! ```text
//!  Input ─┬► bind class ─► count / requested IPs ─┬► allocate IPs ─► place on nodes ─► children
//!         │  or pool       (annotations)          │  (allocate: one     (place)
//! BgpInput┘                                       │   allocator for      bgp::Topology ─► announcements
//!                                                 └─  classes and pools)
//! ```
//!
//! Modules: [`pool`] parses pools into intervals (never enumerating them), [`naming`] makes
//! child and announcement names, [`model`] holds the input and output structs, [`diag`] the
//! diagnostics, [`bgp`] the BGP routes.
//!
//! # Contract with the hooks
//!
//! * Pass every `MetalLoadBalancerClass`, every node, every Service of type `LoadBalancer`
//!   and every child (ours and the previous implementation's, see [`ExistingChild`]); the
//!   planner decides which Services are its own and never touches the others.
//! * Carry out [`Plan::children`] by [`ChildAction`] (create, then write status; status is
//!   a subresource), [`Plan::deletions`], the statuses whose `changed` /
//!   `conditions_changed` is true, and [`Plan::nodes`]. [`apply`] states the same contract
//!   in code.
//! * For BGP mode pass every `MetalLoadBalancerPool`, configuration, peer name and
//!   `SDNInternalBGPAnnouncement` in a [`BgpInput`], and carry out [`Plan::announcements`]
//!   (by [`ChildAction`], like children), [`Plan::announcement_deletions`] and [`Plan::pools`];
//!   [`apply_bgp`] states it in code. Without a [`BgpInput`] no Service is bound to a pool.
//! * Condition lists in the plan are complete (ours merged into the existing ones): write
//!   them whole.
//! * Decisions are stable only if the plan is applied: the next run reads back the IPs and
//!   nodes it wrote (`status.ip`, `status.node`) and keeps them.

mod allocate;
pub mod annotations;
pub mod bgp;
mod conditions;
pub mod diag;
pub mod hold_down;
pub mod model;
pub mod naming;
mod place;
mod planner;
pub mod pool;
mod strings;

pub use compact_str::CompactString;
pub use diag::{Diagnostic, RequestRejection};
pub use model::*;
pub use planner::{Decisions, Render};
pub use strings::{StringMap, StringSet};

/// The crate's one error type: what can be wrong with a pool entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The entry (or one end of a range) is not an IP address.
    #[error("pool entry {entry:?} is not an address, CIDR or range")]
    InvalidAddress {
        /// The entry as written.
        entry: String,
    },
    /// The prefix length is not a number within the family's width.
    #[error("pool entry {entry:?} has an invalid prefix length")]
    InvalidPrefix {
        /// The entry as written.
        entry: String,
    },
    /// The two ends of a range are of different families.
    #[error("pool entry {entry:?} mixes IPv4 and IPv6")]
    MixedFamilies {
        /// The entry as written.
        entry: String,
    },
    /// The range ends before it starts.
    #[error("pool entry {entry:?} ends before it starts")]
    ReversedRange {
        /// The entry as written.
        entry: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Plans everything from one consistent snapshot of the cluster, without BGP objects.
pub fn plan(input: &Input) -> Plan {
    plan_with_bgp(input, &BgpInput::EMPTY)
}

/// Plans both modes: L2 classes and BGP pools share one allocator, so no IP is given to two
/// Services across the modes. See the binding precedence in [`decide_with_bgp`].
pub fn plan_with_bgp(input: &Input, bgp: &BgpInput) -> Plan {
    let decisions = decide_with_bgp(input, bgp);
    let mut children = Vec::with_capacity(decisions.child_count());
    let mut services = Vec::with_capacity(decisions.service_count());
    for part in decisions.render() {
        match part {
            Rendered::Child(c) => children.push(c),
            Rendered::Service(s) => services.push(s),
        }
    }
    let announcements = decisions.announcements().collect();
    let Decisions { deletions, classes, nodes, diagnostics, announcement_deletions, pools, .. } =
        decisions;
    Plan {
        children,
        deletions,
        services,
        classes,
        nodes,
        diagnostics,
        announcements,
        announcement_deletions,
        pools,
    }
}

/// [`plan`] without building the children and Service statuses up front: the caller renders
/// them one at a time (see [`Decisions`]).
pub fn decide(input: &Input) -> Decisions<'_> {
    planner::decide(input, &NO_BGP)
}

/// What [`decide`] borrows for the BGP part: nothing.
static NO_BGP: BgpInput = BgpInput::EMPTY;

/// [`plan_with_bgp`] without building children, announcements and Service statuses up front:
/// the caller renders them one at a time ([`Decisions::render`], [`Decisions::announcements`]).
///
/// A Service is bound by the first rule that applies:
///
/// 1. `spec.loadBalancerClass` naming a `MetalLoadBalancerClass` (naming another
///    controller's class: the Service is not ours);
/// 2. the annotation `network.deckhouse.io/metal-load-balancer-class` naming a class;
/// 3. a pool annotation naming a `MetalLoadBalancerPool`: `network.deckhouse.io/load-balancer-pool`,
///    else MetalLB's `metallb.io/address-pool`, else `metallb.universe.tf/address-pool`;
/// 4. the binding recorded in its status (class or pool condition) while that object exists;
/// 5. the default class;
/// 6. the first `autoAssign: true` pool by name.
///
/// A pool annotation naming no pool is reported in `AnnotationsValid` and the next rule applies;
/// if none does, the Service gets `LoadBalancerPoolNotFound`. A Service that names a class
/// (rules 1–2) and an existing pool is told in `AnnotationsValid` that the class won.
pub fn decide_with_bgp<'a>(input: &'a Input, bgp: &'a BgpInput) -> Decisions<'a> {
    planner::decide(input, bgp)
}

/// The cluster as it is after the hooks carried out `plan` on `input`.
///
/// The hooks do not need it; it states the contract between [`Plan`] and the objects
/// (children replaced by their desired form, deletions gone, statuses and member labels
/// written) and lets tests check that planning a planned cluster changes nothing.
pub fn apply(input: &Input, plan: &Plan) -> Input {
    let mut out = input.clone();
    let gone: std::collections::BTreeSet<(&str, &str)> = plan
        .deletions
        .iter()
        .map(|d| (d.namespace.as_str(), d.name.as_str()))
        .chain(plan.children.iter().map(|c| (c.namespace.as_str(), c.name.as_str())))
        .collect();
    out.children.retain(|c| !gone.contains(&(c.namespace.as_str(), c.name.as_str())));
    out.children.extend(plan.children.iter().map(|c| ExistingChild {
        namespace: c.namespace.clone(),
        name: c.name.clone(),
        owner_uid: Some(c.owner_uid.clone()),
        preferred_node: None,
        spec: c.spec.clone(),
        status: c.status.clone(),
    }));
    let statuses: std::collections::BTreeMap<(&str, &str), &ServiceStatusPlan> =
        plan.services.iter().map(|s| ((s.namespace.as_str(), s.name.as_str()), s)).collect();
    for s in &mut out.services {
        if let Some(status) = statuses.get(&(s.namespace.as_str(), s.name.as_str())) {
            s.conditions = status.conditions.clone();
            s.ingress = status.ingress.clone();
        }
    }
    let class_statuses: std::collections::BTreeMap<&str, &ClassStatusPlan> =
        plan.classes.iter().map(|c| (c.name.as_str(), c)).collect();
    for c in &mut out.classes {
        if let Some(status) = class_statuses.get(c.name.as_str()) {
            c.conditions = status.conditions.clone();
        }
    }
    for node in &mut out.nodes {
        if plan.nodes.members.contains(&node.name) {
            node.labels.insert(metallb_api::names::labels::MEMBER.to_owned(), String::new());
        } else {
            node.labels.remove(metallb_api::names::labels::MEMBER);
        }
    }
    out
}

/// The BGP objects as they are after the hooks carried out `plan`: announcements replaced by
/// their desired form, deletions gone, pool conditions written. With [`apply`] it lets tests
/// check that planning a planned cluster changes nothing.
pub fn apply_bgp(bgp: &BgpInput, plan: &Plan) -> BgpInput {
    let mut out = bgp.clone();
    let gone: std::collections::BTreeSet<(&str, &str)> = plan
        .announcement_deletions
        .iter()
        .map(|d| (d.namespace.as_str(), d.name.as_str()))
        .chain(plan.announcements.iter().map(|a| (a.namespace.as_str(), a.name.as_str())))
        .collect();
    out.announcements.retain(|a| !gone.contains(&(a.namespace.as_str(), a.name.as_str())));
    out.announcements.extend(plan.announcements.iter().map(|a| ExistingAnnouncement {
        namespace: a.namespace.clone(),
        name: a.name.clone(),
        owner_uid: Some(a.owner_uid.clone()),
        spec: a.spec.clone(),
        status: a.status.clone(),
    }));
    let statuses: std::collections::BTreeMap<&str, &PoolStatusPlan> =
        plan.pools.iter().map(|p| (p.name.as_str(), p)).collect();
    for p in &mut out.pools {
        if let Some(status) = statuses.get(p.name.as_str()) {
            p.conditions = status.conditions.clone();
        }
    }
    out
}
