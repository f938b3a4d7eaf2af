//! Every L2 decision of the metallb module as a pure function of plain structs.
//!
//! The hooks build an [`Input`] from Kubernetes snapshots, call [`plan`], and turn the
//! [`Plan`] into operations. A caller with a large cluster calls [`decide`] instead and renders
//! children and Service statuses one at a time ([`Decisions::render`]), so the whole desired
//! state never exists at once. Nothing here does I/O, reads a clock (the caller passes
//! [`Input::now`]) or draws random numbers: the same input gives a byte-identical plan.
//!
//! ```text
//!  Input ──► bind class ──► count / requested IPs ──► allocate IPs ──► place on nodes ──► Plan
//!            (planner)      (annotations)             (pool)            (place)
//! ```
//!
//! Modules: [`pool`] parses pools into intervals (never enumerating them), [`naming`] makes
//! child names, [`model`] holds the input and output structs, [`diag`] the diagnostics.
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
//! * Condition lists in the plan are complete (ours merged into the existing ones): write
//!   them whole.
//! * Decisions are stable only if the plan is applied: the next run reads back the IPs and
//!   nodes it wrote (`status.ip`, `status.node`) and keeps them.

mod allocate;
pub mod annotations;
pub mod bgp;
mod conditions;
pub mod diag;
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

/// Plans everything from one consistent snapshot of the cluster.
pub fn plan(input: &Input) -> Plan {
    let decisions = decide(input);
    let mut children = Vec::with_capacity(decisions.child_count());
    let mut services = Vec::with_capacity(decisions.service_count());
    for part in decisions.render() {
        match part {
            Rendered::Child(c) => children.push(c),
            Rendered::Service(s) => services.push(s),
        }
    }
    let Decisions { deletions, classes, nodes, diagnostics, .. } = decisions;
    Plan { children, deletions, services, classes, nodes, diagnostics }
}

/// [`plan`] without building the children and Service statuses up front: the caller renders
/// them one at a time (see [`Decisions`]).
pub fn decide(input: &Input) -> Decisions<'_> {
    planner::decide(input)
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
