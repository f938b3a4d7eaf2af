//! Diagnostics: every time the planner skips, clamps or rejects something it says so here, so
//! the hooks can log it and count it by [`Diagnostic::label`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::ServiceRef;

/// Why a requested IP (`network.deckhouse.io/load-balancer-ips`) was not given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum RequestRejection {
    /// The entry is not an IP address.
    NotAnAddress,
    /// The address is outside the class pool.
    OutsidePool {
        /// The class whose pool was searched.
        class: String,
    },
    /// The address is outside the BGP pool (or one of the `.0`/`.255` addresses an
    /// `avoidBuggyIPs` pool never gives).
    OutsideBgpPool {
        /// The `MetalLoadBalancerPool`.
        pool: String,
    },
    /// The Service's `ipFamilies` do not include the address's family.
    WrongFamily,
    /// Another Service holds it and may not share it.
    Taken {
        /// The holder.
        by: ServiceRef,
    },
}

impl RequestRejection {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotAnAddress => "not_an_address",
            Self::OutsidePool { .. } => "outside_pool",
            Self::OutsideBgpPool { .. } => "outside_bgp_pool",
            Self::WrongFamily => "wrong_family",
            Self::Taken { .. } => "taken",
        }
    }
}

impl fmt::Display for RequestRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnAddress => f.write_str("is not an IP address"),
            Self::OutsidePool { class } => write!(f, "is outside the pool of class {class}"),
            Self::OutsideBgpPool { pool } => {
                write!(f, "is not an address MetalLoadBalancerPool {pool} gives")
            }
            Self::WrongFamily => f.write_str("is not of an IP family the Service allows"),
            Self::Taken { by } => write!(f, "is already used by {by}"),
        }
    }
}

/// One thing the planner wants logged and counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Diagnostic {
    /// `spec.loadBalancerClass` names another controller's class: the Service is not ours.
    ForeignClass {
        /// The Service.
        service: ServiceRef,
        /// Its `spec.loadBalancerClass`.
        class: String,
    },
    /// No class applies (none named, no default) and the Service was never bound: untouched.
    NoClass {
        /// The Service.
        service: ServiceRef,
    },
    /// The annotation names a class that does not exist; the next rule was used.
    UnknownClassAnnotation {
        /// The Service.
        service: ServiceRef,
        /// The annotation value.
        class: String,
    },
    /// The class the Service was bound to no longer exists and no other applies.
    ClassGone {
        /// The Service.
        service: ServiceRef,
        /// The vanished class.
        class: String,
    },
    /// The class the Service was bound to no longer exists; it was bound anew.
    ClassRebound {
        /// The Service.
        service: ServiceRef,
        /// The vanished class.
        from: String,
        /// The new class.
        to: String,
    },
    /// A pool entry did not parse; the other entries are used.
    InvalidPoolEntry {
        /// The class.
        class: String,
        /// The parse error.
        error: String,
    },
    /// Two classes' pools overlap; each address is still given out once.
    PoolOverlap {
        /// One class.
        class: String,
        /// The other (sorted after `class`).
        other: String,
    },
    /// Several classes are default; this one lost to `winner` (first by name).
    DefaultClassShadowed {
        /// The shadowed class.
        class: String,
        /// The class used as default.
        winner: String,
    },
    /// The IP count annotation was not an integer in `1..=64`.
    CountAdjusted {
        /// The Service.
        service: ServiceRef,
        /// The annotation value.
        value: String,
        /// The count used instead.
        used: u32,
    },
    /// A requested IP was not given; that index has no IP.
    RequestedIpRejected {
        /// The Service.
        service: ServiceRef,
        /// The index.
        index: u32,
        /// The entry.
        entry: String,
        /// Why.
        why: RequestRejection,
    },
    /// More IPs were requested than the count allows; the rest are ignored.
    RequestedIpsIgnored {
        /// The Service.
        service: ServiceRef,
        /// How many entries were ignored.
        ignored: usize,
    },
    /// Same sharing key, but ports overlap or traffic policies differ: no sharing.
    SharingRejected {
        /// The Service.
        service: ServiceRef,
        /// The index that could not share.
        index: u32,
        /// The sharing key.
        key: String,
        /// A holder it is incompatible with.
        with: ServiceRef,
    },
    /// Two children held the same IP without a legal share; the later one got another IP.
    IpConflict {
        /// The Service that lost the IP.
        service: ServiceRef,
        /// Its index.
        index: u32,
        /// The IP.
        ip: String,
        /// The Service that kept it.
        holder: ServiceRef,
    },
    /// The pool ran out: some indexes have no IP.
    PoolExhausted {
        /// The Service.
        service: ServiceRef,
        /// The class.
        class: String,
        /// IPs assigned.
        assigned: u32,
        /// IPs wanted.
        wanted: u32,
    },
    /// A pool annotation names no `MetalLoadBalancerPool`; the next rule was used.
    UnknownPoolAnnotation {
        /// The Service.
        service: ServiceRef,
        /// The annotation value.
        pool: String,
    },
    /// The Service names a class and a pool; the class won.
    PoolAnnotationIgnored {
        /// The Service.
        service: ServiceRef,
        /// The pool named.
        pool: String,
        /// The class that won.
        class: String,
    },
    /// A BGP pool entry did not parse; the other entries are used.
    InvalidBgpPoolEntry {
        /// The pool.
        pool: String,
        /// The parse error.
        error: String,
    },
    /// A BGP pool overlaps a class's pool or another BGP pool; each address is still given
    /// out once.
    BgpPoolOverlap {
        /// The pool.
        pool: String,
        /// `class <name>` or `pool <name>`.
        other: String,
    },
    /// The BGP pool ran out: some of the Service's IPs are missing.
    BgpPoolExhausted {
        /// The Service.
        service: ServiceRef,
        /// The pool.
        pool: String,
        /// IPs assigned.
        assigned: u32,
        /// IPs wanted.
        wanted: u32,
    },
    /// No node can announce an IP: it stays allocated but is not announced.
    NoCandidateNode {
        /// The Service.
        service: ServiceRef,
        /// The index.
        index: u32,
    },
}

impl Diagnostic {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ForeignClass { .. } => "foreign_class",
            Self::NoClass { .. } => "no_class",
            Self::UnknownClassAnnotation { .. } => "unknown_class_annotation",
            Self::ClassGone { .. } => "class_gone",
            Self::ClassRebound { .. } => "class_rebound",
            Self::InvalidPoolEntry { .. } => "invalid_pool_entry",
            Self::PoolOverlap { .. } => "pool_overlap",
            Self::DefaultClassShadowed { .. } => "default_class_shadowed",
            Self::CountAdjusted { .. } => "count_adjusted",
            Self::RequestedIpRejected { .. } => "requested_ip_rejected",
            Self::RequestedIpsIgnored { .. } => "requested_ips_ignored",
            Self::SharingRejected { .. } => "sharing_rejected",
            Self::IpConflict { .. } => "ip_conflict",
            Self::PoolExhausted { .. } => "pool_exhausted",
            Self::UnknownPoolAnnotation { .. } => "unknown_pool_annotation",
            Self::PoolAnnotationIgnored { .. } => "pool_annotation_ignored",
            Self::InvalidBgpPoolEntry { .. } => "invalid_bgp_pool_entry",
            Self::BgpPoolOverlap { .. } => "bgp_pool_overlap",
            Self::BgpPoolExhausted { .. } => "bgp_pool_exhausted",
            Self::NoCandidateNode { .. } => "no_candidate_node",
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ForeignClass { service, class } => write!(
                f,
                "service {service}: loadBalancerClass {class:?} is not a MetalLoadBalancerClass; left alone"
            ),
            Self::NoClass { service } => write!(
                f,
                "service {service}: no MetalLoadBalancerClass named and no default class; left alone"
            ),
            Self::UnknownClassAnnotation { service, class } => {
                write!(f, "service {service}: annotation names unknown class {class:?}; ignored")
            }
            Self::ClassGone { service, class } => write!(
                f,
                "service {service}: bound class {class} no longer exists and no other applies"
            ),
            Self::ClassRebound { service, from, to } => {
                write!(f, "service {service}: bound class {from} no longer exists; bound to {to}")
            }
            Self::InvalidPoolEntry { class, error } => {
                write!(f, "class {class}: {error}")
            }
            Self::UnknownPoolAnnotation { service, pool } => write!(
                f,
                "service {service}: annotation names unknown MetalLoadBalancerPool {pool:?}; ignored"
            ),
            Self::PoolAnnotationIgnored { service, pool, class } => {
                write!(f, "service {service}: names pool {pool} and class {class}; the class wins")
            }
            Self::InvalidBgpPoolEntry { pool, error } => write!(f, "pool {pool}: {error}"),
            Self::BgpPoolOverlap { pool, other } => {
                write!(f, "pool {pool} overlaps {other}")
            }
            Self::BgpPoolExhausted { service, pool, assigned, wanted } => write!(
                f,
                "service {service}: pool {pool} is exhausted, {assigned} of {wanted} IPs assigned"
            ),
            Self::PoolOverlap { class, other } => {
                write!(f, "classes {class} and {other} have overlapping pools")
            }
            Self::DefaultClassShadowed { class, winner } => {
                write!(f, "class {class} is default but {winner} is used (first by name)")
            }
            Self::CountAdjusted { service, value, used } => {
                write!(f, "service {service}: IP count {value:?} is invalid; using {used}")
            }
            Self::RequestedIpRejected { service, index, entry, why } => {
                write!(f, "service {service}: index {index}: requested IP {entry:?} {why}")
            }
            Self::RequestedIpsIgnored { service, ignored } => write!(
                f,
                "service {service}: {ignored} requested IPs beyond the IP count are ignored"
            ),
            Self::SharingRejected { service, index, key, with } => write!(
                f,
                "service {service}: index {index}: cannot share key {key:?} with {with} (ports overlap or traffic policies differ)"
            ),
            Self::IpConflict { service, index, ip, holder } => write!(
                f,
                "service {service}: index {index}: IP {ip} is held by {holder}; allocating another"
            ),
            Self::PoolExhausted { service, class, assigned, wanted } => write!(
                f,
                "service {service}: pool of class {class} exhausted: {assigned} of {wanted} public IPs were assigned"
            ),
            Self::NoCandidateNode { service, index } => {
                write!(f, "service {service}: index {index}: no node can announce the IP")
            }
        }
    }
}
