//! BGP mode's part of the pipeline: pools, binding to a pool, slots and their existing
//! announcements, and rendering announcements, Service statuses and pool statuses.
//!
//! ```text
//!  pools ─► parse, overlaps (classes, other pools), autoAssign pool
//!  services ─► pool_binding (between the L2 rules, see below) ─► one slot per IP family
//!  announcements ─► slots (kept IP) or deletions
//!  slots ─► the allocation stage shared with L2 ─► IP ─► bgp::Topology::routes ─► announcement
//! ```
//!
//! Binding precedence, highest first:
//!
//! 1. `spec.loadBalancerClass` naming an L2 class (another controller's class: not ours);
//! 2. the class annotation `network.deckhouse.io/metal-load-balancer-class` naming a class;
//! 3. the pool annotation `network.deckhouse.io/load-balancer-pool`, else `metallb.io/address-pool`,
//!    else `metallb.universe.tf/address-pool`, naming a `MetalLoadBalancerPool`;
//! 4. the recorded binding (our class or pool condition), while that class or pool exists;
//! 5. the default L2 class;
//! 6. the first `autoAssign` pool by name.
//!
//! A pool annotation naming no pool is reported in `AnnotationsValid` and the next rule applies;
//! when none does, the Service gets `LoadBalancerPoolNotFound`. A Service naming a class (1, 2)
//! and an existing pool is told in `AnnotationsValid` that the class won.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use compact_str::{CompactString, ToCompactString};
use metallb_api::names::{annotations, conditions as cond};

use super::{
    IpCounts, Planner, bound_status, ip_conditions, merged_status_without, pool_disjoint,
    pool_valid, update_action,
};
use crate::allocate::{Claim, Claimant, Kept, Owner, Source, SourceKind, Stage, id32};
use crate::annotations::parse_requested;
use crate::bgp::Topology;
use crate::conditions::{Wanted, find, merge};
use crate::diag::{Diagnostic, RequestRejection};
use crate::model::{
    AnnouncementSpec, AnnouncementStatus, BgpInput, ChildAction, ClassInput, ConditionStatus,
    DeleteReason, DesiredAnnouncement, ExistingAnnouncement, NodeInput, PoolInput, PoolStatusPlan,
    ServiceInput, ServiceRef, ServiceStatusPlan, TrafficPolicy,
};
use crate::naming::child_name;
use crate::pool::{Addr, Families, Family, Pool};

use ConditionStatus::{False, True};

/// The middle part of announcement names: `<service>-bgp-<index>`.
const NAME_INFIX: &str = "bgp";

/// The pool annotations, highest precedence first.
const POOL_KEYS: [&str; 3] = [
    annotations::LOAD_BALANCER_POOL,
    annotations::METALLB_ADDRESS_POOL,
    annotations::METALLB_UNIVERSE_ADDRESS_POOL,
];

/// A BGP pool with its parsed addresses.
pub(super) struct BgpPool<'a> {
    pub(super) input: &'a PoolInput,
    pub(super) pool: Pool,
    /// `class <name>` / `pool <name>` of every other source sharing an address.
    overlaps: Vec<String>,
}

/// A Service bound to a BGP pool.
pub(super) struct BgpSvc<'a> {
    /// Its namespace and name are the Service's key (not copied: one per Service).
    pub(super) input: &'a ServiceInput,
    pub(super) pool: usize,
    reason: &'static str,
    /// The requested IP of each slot, verbatim.
    pub(super) requested: Vec<Option<String>>,
    /// `(reason, message)` for `AnnotationsValid`, first one gives the reason.
    pub(super) issues: Vec<(&'static str, String)>,
    /// Extra text for `AllPublicIPsAssigned`.
    pub(super) assign_notes: Vec<String>,
    first_slot: usize,
    /// One IP per family the Service asks for (one of either family when it names none).
    pub(super) count: u32,
}

impl BgpSvc<'_> {
    pub(super) fn key(&self) -> ServiceRef {
        self.input.key()
    }
}

/// One IP of a BGP-bound Service.
pub(super) struct BgpSlot {
    svc: usize,
    index: u32,
    /// The family this IP must have; `None` when the Service names no family.
    family: Option<Family>,
    existing: Option<usize>,
    pub(super) ip: Option<Addr>,
}

/// How a Service relates to the BGP pools, decided before the L2 binding.
pub(super) enum PoolChoice {
    /// The L2 rules decide ([`super::bind`]).
    L2,
    /// Bound to a pool.
    Pool { pool: usize, reason: &'static str },
    /// Nothing applies and the Service asked for (or had) a pool that does not exist.
    Missing { message: String },
    /// It was ours through a pool and now names another controller's class.
    Released,
}

/// Everything BGP mode adds to a plan.
pub(super) struct BgpState<'a> {
    pub(super) input: &'a BgpInput,
    /// Sorted by name; a pool id is an index here.
    pub(super) pools: Vec<BgpPool<'a>>,
    pool_id: BTreeMap<&'a str, usize>,
    /// The first `autoAssign` pool by name.
    auto: Option<usize>,
    topology: Topology,
    /// Sorted by namespace and name.
    pub(super) svcs: Vec<BgpSvc<'a>>,
    /// Contiguous per Service.
    pub(super) slots: Vec<BgpSlot>,
    /// Validated requests by slot id.
    requests: BTreeMap<usize, Result<Addr, RequestRejection>>,
    /// Services with `LoadBalancerPoolNotFound`, with its message.
    pub(super) missing: Vec<(&'a ServiceInput, String)>,
    /// Existing announcements sorted by namespace and name.
    existing: Vec<&'a ExistingAnnouncement>,
    deletions: Vec<(usize, DeleteReason)>,
}

impl<'a> BgpState<'a> {
    /// Parses the pools and finds their overlaps with the classes and with each other.
    pub(super) fn new(
        input: &'a BgpInput,
        classes: &[(&'a ClassInput, &Pool)],
        nodes: &[NodeInput],
        diags: &mut Vec<Diagnostic>,
    ) -> Self {
        let mut inputs: Vec<&PoolInput> = input.pools.iter().collect();
        inputs.sort_by(|a, b| a.name.cmp(&b.name));
        inputs.dedup_by(|a, b| a.name == b.name);
        let mut pools: Vec<BgpPool<'a>> = inputs
            .iter()
            .map(|p| BgpPool { input: p, pool: Pool::parse(&p.addresses), overlaps: Vec::new() })
            .collect();
        for p in &mut pools {
            for err in p.pool.errors() {
                let (pool, error) = (p.input.name.clone(), err.to_string());
                diags.push(Diagnostic::InvalidBgpPoolEntry { pool, error });
            }
            for (class, class_pool) in classes {
                if p.pool.overlaps(class_pool) {
                    p.overlaps.push(format!("class {}", class.name));
                }
            }
        }
        for a in 0..pools.len() {
            for b in 0..pools.len() {
                if a != b && pools[a].pool.overlaps(&pools[b].pool) {
                    let other = format!("pool {}", pools[b].input.name);
                    pools[a].overlaps.push(other);
                }
            }
        }
        for p in &pools {
            for other in &p.overlaps {
                let (pool, other) = (p.input.name.clone(), other.clone());
                diags.push(Diagnostic::BgpPoolOverlap { pool, other });
            }
        }
        let pool_id = inputs.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect();
        let names: BTreeSet<String> = inputs.iter().map(|p| p.name.clone()).collect();
        let topology = Topology::new(&input.configurations, &input.peers, &names, nodes);
        Self {
            input,
            auto: pools.iter().position(|p| p.input.auto_assign),
            pools,
            pool_id,
            topology,
            svcs: Vec::new(),
            slots: Vec::new(),
            requests: BTreeMap::new(),
            missing: Vec::new(),
            existing: Vec::new(),
            deletions: Vec::new(),
        }
    }
}

/// The first pool annotation that is set: `(key, value)`.
fn pool_annotation(s: &ServiceInput) -> Option<(&'static str, &str)> {
    POOL_KEYS.iter().find_map(|&key| {
        let value = s.annotations.get(key).map(str::trim).filter(|v| !v.is_empty())?;
        Some((key, value))
    })
}

/// The class annotation, trimmed, if set.
fn class_annotation(s: &ServiceInput) -> Option<&str> {
    s.annotations
        .get(annotations::METAL_LOAD_BALANCER_CLASS)
        .map(str::trim)
        .filter(|a| !a.is_empty())
}

impl<'a> Planner<'a> {
    /// Whether the Service goes to a BGP pool, by the precedence in the module docs.
    pub(super) fn pool_binding(&self, s: &ServiceInput) -> PoolChoice {
        let pool_cond = find(&s.conditions, cond::LOAD_BALANCER_POOL);
        if let Some(named) = s.load_balancer_class.as_deref().filter(|c| !c.is_empty()) {
            let foreign = !self.class_id.contains_key(named);
            let l2_cond = find(&s.conditions, cond::LOAD_BALANCER_CLASS);
            if foreign && pool_cond.is_some() && l2_cond.is_none() {
                return PoolChoice::Released;
            }
            return PoolChoice::L2;
        }
        if class_annotation(s).is_some_and(|a| self.class_id.contains_key(a)) {
            return PoolChoice::L2;
        }
        let annotated = pool_annotation(s);
        if let Some(&pool) = annotated.and_then(|(_, name)| self.bgp.pool_id.get(name)) {
            return PoolChoice::Pool { pool, reason: self.pool_reason(s, pool, false) };
        }
        let recorded = |type_| find(&s.conditions, type_).filter(|c| c.status == True);
        if recorded(cond::LOAD_BALANCER_CLASS)
            .is_some_and(|c| self.class_id.contains_key(c.message.as_str()))
        {
            return PoolChoice::L2;
        }
        let recorded_pool = recorded(cond::LOAD_BALANCER_POOL);
        if let Some(&pool) = recorded_pool.and_then(|c| self.bgp.pool_id.get(c.message.as_str())) {
            return PoolChoice::Pool { pool, reason: self.pool_reason(s, pool, false) };
        }
        if !self.defaults.is_empty() {
            return PoolChoice::L2;
        }
        if let Some(pool) = self.bgp.auto {
            return PoolChoice::Pool { pool, reason: self.pool_reason(s, pool, true) };
        }
        if let Some((key, name)) = annotated {
            return PoolChoice::Missing {
                message: format!(
                    "annotation {key} names {name:?}, which is not a MetalLoadBalancerPool, and no class or pool applies"
                ),
            };
        }
        match (recorded_pool, pool_cond) {
            (Some(c), _) => PoolChoice::Missing {
                message: format!(
                    "MetalLoadBalancerPool {} no longer exists and no class or pool applies",
                    c.message
                ),
            },
            // Already reported by an earlier plan: keep that condition as it is.
            (None, Some(c)) if find(&s.conditions, cond::LOAD_BALANCER_CLASS).is_none() => {
                PoolChoice::Missing { message: c.message.to_string() }
            }
            _ => PoolChoice::L2,
        }
    }

    /// Reason of the pool condition; an existing reason for the same pool is kept so that
    /// re-planning writes the same condition.
    fn pool_reason(&self, s: &ServiceInput, pool: usize, auto: bool) -> &'static str {
        let name = self.bgp.pools[pool].input.name.as_str();
        let existing = find(&s.conditions, cond::LOAD_BALANCER_POOL)
            .filter(|c| c.status == True && c.message == name)
            .map(|c| c.reason.as_str());
        match existing {
            Some(cond::REASON_POOL_AUTO_ASSIGNED) => cond::REASON_POOL_AUTO_ASSIGNED,
            Some(_) => cond::REASON_POOL_BOUND,
            None if auto => cond::REASON_POOL_AUTO_ASSIGNED,
            None => cond::REASON_POOL_BOUND,
        }
    }

    /// What an L2-bound Service's status says about its pool annotation: the class won, or
    /// the pool does not exist.
    pub(super) fn pool_annotation_issue(
        &mut self,
        s: &ServiceInput,
        class: &str,
    ) -> Option<(&'static str, String)> {
        let (key, name) = pool_annotation(s)?;
        let service = s.key();
        if self.bgp.pool_id.contains_key(name) {
            let text = format!(
                "annotation {key} names MetalLoadBalancerPool {name}, but MetalLoadBalancerClass {class} is named too and wins"
            );
            let (pool, class) = (name.to_owned(), class.to_owned());
            self.diags.push(Diagnostic::PoolAnnotationIgnored { service, pool, class });
            return Some((cond::REASON_POOL_ANNOTATION_IGNORED, text));
        }
        self.diags.push(Diagnostic::UnknownPoolAnnotation { service, pool: name.to_owned() });
        let text = format!("annotation {key} names {name:?}, which is not a MetalLoadBalancerPool");
        Some((cond::REASON_UNKNOWN_POOL_ANNOTATION, text))
    }

    /// Binds a Service to a pool and opens one slot per IP family.
    pub(super) fn bind_to_pool(&mut self, s: &'a ServiceInput, pool: usize, reason: &'static str) {
        let families: Vec<Option<Family>> = match s.ip_families.as_slice() {
            [] => vec![None],
            some => some.iter().copied().map(Some).collect(),
        };
        let mut issues = Vec::new();
        if let Some(a) = class_annotation(s).filter(|a| !self.class_id.contains_key(a)) {
            issues.push((
                cond::REASON_UNKNOWN_CLASS_ANNOTATION,
                format!(
                    "annotation {} names {a:?}, which is not a MetalLoadBalancerClass",
                    annotations::METAL_LOAD_BALANCER_CLASS
                ),
            ));
        }
        let unknown = pool_annotation(s).filter(|(_, name)| !self.bgp.pool_id.contains_key(name));
        if let Some((key, name)) = unknown {
            let pool = name.to_owned();
            self.diags.push(Diagnostic::UnknownPoolAnnotation { service: s.key(), pool });
            issues.push((
                cond::REASON_UNKNOWN_POOL_ANNOTATION,
                format!("annotation {key} names {name:?}, which is not a MetalLoadBalancerPool"),
            ));
        }
        let requested = requests_by_family(s, &families, &mut issues);
        let id = self.bgp.svcs.len();
        let first_slot = self.bgp.slots.len();
        for (index, &family) in (0u32..).zip(&families) {
            let sid = self.bgp.slots.len();
            if let Some(text) = requested[index as usize].as_deref() {
                let request = self.validate_pool_request(text, pool, family);
                self.bgp.requests.insert(sid, request);
            }
            self.bgp.slots.push(BgpSlot { svc: id, index, family, existing: None, ip: None });
        }
        self.bgp.svcs.push(BgpSvc {
            input: s,
            pool,
            reason,
            requested,
            issues,
            assign_notes: Vec::new(),
            first_slot,
            count: u32::try_from(families.len()).unwrap_or(1),
        });
    }

    fn validate_pool_request(
        &self,
        text: &str,
        pool: usize,
        family: Option<Family>,
    ) -> Result<Addr, RequestRejection> {
        let ip = Addr::parse(text).ok_or(RequestRejection::NotAnAddress)?;
        let source = self.pool_source(pool);
        if !source.admits(ip) {
            return Err(source.outside());
        }
        if family.is_some_and(|f| f != ip.family) {
            return Err(RequestRejection::WrongFamily);
        }
        Ok(ip)
    }

    fn pool_source(&self, pool: usize) -> Source<'a> {
        let p = &self.bgp.pools[pool];
        Source {
            kind: SourceKind::BgpPool,
            name: p.input.name.as_str(),
            pool: p.pool.clone(),
            avoid_buggy: p.input.avoid_buggy_ips,
        }
    }

    /// Matches existing announcements to slots by name; the rest are deleted with a reason.
    pub(super) fn match_announcements(&mut self) {
        let mut existing: Vec<&ExistingAnnouncement> =
            self.bgp.input.announcements.iter().collect();
        existing.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        existing.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        let by_name = |s: &'a ServiceInput| (s.namespace.as_str(), s.name.as_str());
        let svc_id: HashMap<(&str, &str), usize> =
            self.bgp.svcs.iter().enumerate().map(|(i, s)| (by_name(s.input), i)).collect();
        let l2: HashSet<(&str, &str)> = self.svcs.iter().map(|s| by_name(s.input)).collect();
        for (id, a) in existing.iter().enumerate() {
            let parent = ServiceRef {
                namespace: a.namespace.clone(),
                name: a.spec.service_ref.name.clone(),
            };
            let name = (parent.namespace.as_str(), parent.name.as_str());
            let Some(&sid) = svc_id.get(&name) else {
                let reason = if self.unmanaged.contains(&parent) || l2.contains(&name) {
                    DeleteReason::ParentNotManaged
                } else {
                    DeleteReason::ParentGone
                };
                self.bgp.deletions.push((id, reason));
                continue;
            };
            let svc = &self.bgp.svcs[sid];
            if a.owner_uid.as_ref().is_some_and(|uid| *uid != svc.input.uid) {
                self.bgp.deletions.push((id, DeleteReason::ParentGone));
                continue;
            }
            let index =
                (0..svc.count).find(|&i| child_name(&svc.input.name, NAME_INFIX, i) == a.name);
            match index {
                Some(i) => self.bgp.slots[svc.first_slot + i as usize].existing = Some(id),
                None => self.bgp.deletions.push((id, DeleteReason::IndexUnused)),
            }
        }
        self.bgp.existing = existing;
    }

    /// The pools as allocation sources, by name; they follow the classes in the stage.
    pub(super) fn pool_sources(&self) -> impl Iterator<Item = Source<'a>> + '_ {
        (0..self.bgp.pools.len()).map(|p| self.pool_source(p))
    }

    /// Adds a BGP-bound Service and its slots to `stage`.
    pub(super) fn push_bgp_claimant(&self, stage: &mut Stage<'a>, id: usize) {
        let svc = &self.bgp.svcs[id];
        let first = stage.claims.len();
        for sid in svc.first_slot..svc.first_slot + svc.count as usize {
            let slot = &self.bgp.slots[sid];
            if let Some(request) = self.bgp.requests.get(&sid) {
                stage.requests.insert(stage.claims.len(), request.clone());
            }
            let kept = slot.existing.and_then(|a| Addr::parse(self.bgp.existing[a].spec.ip.trim()));
            if let Some(ip) = kept {
                stage.kept.push(Kept { claim: id32(stage.claims.len()), ip });
            }
            stage.claims.push(Claim {
                claimant: id32(stage.claimants.len()),
                slot: id32(sid),
                index: slot.index,
                // Dual-stack Services share per family, whatever order they list them in.
                lane: u32::from(slot.family == Some(Family::V6)),
                families: slot.family.map_or_else(Families::default, |f| Families::new(&[f])),
            });
        }
        stage.claimants.push(Claimant {
            owner: Owner::Bgp(id),
            input: svc.input,
            source: id32(self.classes.len() + svc.pool),
            claims: id32(first)..id32(stage.claims.len()),
        });
    }

    /// Notes for a BGP-bound Service whose pool ran out.
    pub(super) fn report_bgp_exhaustion(&mut self, id: usize) {
        let svc = &self.bgp.svcs[id];
        let range = svc.first_slot..svc.first_slot + svc.count as usize;
        let assigned = self.bgp.slots[range].iter().filter(|s| s.ip.is_some()).count();
        let svc = &mut self.bgp.svcs[id];
        let pool = self.bgp.pools[svc.pool].input.name.clone();
        svc.assign_notes.push(format!("MetalLoadBalancerPool {pool} is exhausted"));
        self.diags.push(Diagnostic::BgpPoolExhausted {
            service: svc.key(),
            pool,
            // At most two, one per family.
            assigned: u32::try_from(assigned).unwrap_or(u32::MAX),
            wanted: svc.count,
        });
    }

    /// Announcements to delete: unmatched ones and those of slots left without an IP.
    pub(super) fn announcement_deletions(&self) -> Vec<crate::model::AnnouncementDeletion> {
        let unused = self
            .bgp
            .slots
            .iter()
            .filter(|s| s.ip.is_none())
            .filter_map(|s| Some((s.existing?, DeleteReason::IndexUnused)));
        let mut out: Vec<_> = self
            .bgp
            .deletions
            .iter()
            .copied()
            .chain(unused)
            .map(|(id, reason)| crate::model::AnnouncementDeletion {
                namespace: self.bgp.existing[id].namespace.clone(),
                name: self.bgp.existing[id].name.clone(),
                reason,
            })
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        out
    }

    /// Distinct IPs per pool.
    fn allocated_per_pool(&self) -> Vec<u64> {
        let mut ips: Vec<BTreeSet<Addr>> = vec![BTreeSet::new(); self.bgp.pools.len()];
        for slot in &self.bgp.slots {
            if let Some(ip) = slot.ip {
                ips[self.bgp.svcs[slot.svc].pool].insert(ip);
            }
        }
        ips.iter().map(|s| s.len() as u64).collect()
    }

    /// Every pool's status.
    pub(super) fn pool_statuses(&self) -> Vec<PoolStatusPlan> {
        let allocated = self.allocated_per_pool();
        self.bgp.pools.iter().zip(allocated).map(|(p, n)| self.pool_status(p, n)).collect()
    }

    fn pool_status(&self, p: &BgpPool<'_>, allocated: u64) -> PoolStatusPlan {
        let size = p.pool.size();
        let valid = pool_valid(&p.pool, "the pool has no address");
        let disjoint = pool_disjoint(
            &p.overlaps,
            "no class or other pool uses these addresses",
            "the addresses overlap",
        );
        let now = &self.input.now;
        let conditions =
            merge(&p.input.conditions, vec![valid, disjoint], now, Some(p.input.generation));
        PoolStatusPlan {
            name: p.input.name.clone(),
            conditions_changed: conditions != p.input.conditions,
            conditions,
            pool_size: size.to_decimal(),
            allocated,
        }
    }

    /// The slots of a BGP-bound Service, by index.
    pub(super) fn bgp_slots_of(&self, svc: &BgpSvc<'_>) -> &[BgpSlot] {
        &self.bgp.slots[svc.first_slot..svc.first_slot + svc.count as usize]
    }

    /// The routes of one slot's IP.
    fn routes(&self, svc: &BgpSvc<'_>, ip: Addr) -> Vec<metallb_api::announcement::BgpRoute> {
        let pool = &self.bgp.pools[svc.pool].input.name;
        let local: Option<BTreeSet<&str>> = (svc.input.external_traffic_policy
            == TrafficPolicy::Local)
            .then(|| svc.input.ready_endpoint_nodes.iter().collect());
        self.bgp.topology.routes(ip.to_ip(), pool, local.as_ref())
    }

    /// One desired announcement, for a slot that has an IP.
    pub(super) fn announcement(
        &self,
        svc: &BgpSvc<'_>,
        slot: &BgpSlot,
    ) -> Option<DesiredAnnouncement> {
        let ip = slot.ip?;
        let name = child_name(&svc.input.name, NAME_INFIX, slot.index);
        let old = self.existing_announcement(&svc.input.namespace, &name);
        let spec = AnnouncementSpec {
            service_ref: svc.key(),
            pool: self.bgp.pools[svc.pool].input.name.as_str().into(),
            ip: ip.to_compact_string(),
            routes: self.routes(svc, ip),
        };
        let status = self.announcement_status(svc, &spec, old);
        let action = old.map_or(ChildAction::Create, |old| {
            let owner_changed = old.owner_uid.as_deref() != Some(svc.input.uid.as_str());
            update_action(old.spec != spec || owner_changed, old.status != status)
        });
        Some(DesiredAnnouncement {
            namespace: svc.input.namespace.clone(),
            name: name.into(),
            owner_uid: svc.input.uid.clone(),
            action,
            spec,
            status,
        })
    }

    /// `Announced` and the node summary of an announcement.
    fn announcement_status(
        &self,
        svc: &BgpSvc<'_>,
        spec: &AnnouncementSpec,
        old: Option<&ExistingAnnouncement>,
    ) -> AnnouncementStatus {
        let routes = &spec.routes;
        let nodes: BTreeSet<&str> =
            routes.iter().flat_map(|r| r.nodes.iter().map(String::as_str)).collect();
        let peers: BTreeSet<&str> =
            routes.iter().flat_map(|r| r.peers.iter().map(String::as_str)).collect();
        let announced = if routes.is_empty() {
            let text = no_route_text(svc, &spec.pool);
            Wanted::new(cond::ANNOUNCED, False, cond::REASON_NO_ROUTE, text)
        } else {
            let (ip, nodes, peers) = (&spec.ip, nodes.len(), peers.len());
            let text = format!("{ip} is announced by {nodes} nodes to {peers} peers");
            Wanted::new(cond::ANNOUNCED, True, cond::REASON_ROUTES_ANNOUNCED, text)
        };
        let old_conditions = old.map(|a| a.status.conditions.as_slice()).unwrap_or_default();
        let summary: Vec<&str> = nodes.into_iter().collect();
        AnnouncementStatus {
            conditions: merge(old_conditions, vec![announced], &self.input.now, None),
            node_summary: (!summary.is_empty()).then(|| summary.join(",").into()),
        }
    }

    /// The existing announcement of that name (`existing` is sorted by namespace and name).
    fn existing_announcement(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<&'a ExistingAnnouncement> {
        self.bgp
            .existing
            .binary_search_by(|a| (a.namespace.as_str(), a.name.as_str()).cmp(&(namespace, name)))
            .ok()
            .map(|i| self.bgp.existing[i])
    }

    /// A BGP-bound Service's ingress and conditions.
    pub(super) fn bgp_service_status(&self, svc: &BgpSvc<'_>) -> ServiceStatusPlan {
        let mut ingress: Vec<CompactString> = Vec::new();
        let (mut assigned, mut announced) = (0u32, 0u32);
        for slot in self.bgp_slots_of(svc) {
            let Some(ip) = slot.ip else { continue };
            assigned += 1;
            announced += u32::from(!self.routes(svc, ip).is_empty());
            let ip = ip.to_compact_string();
            if !ingress.contains(&ip) {
                ingress.push(ip);
            }
        }
        let pool = self.bgp.pools[svc.pool].input.name.as_str();
        let counts = IpCounts { count: svc.count, assigned, announced };
        let ips = ip_conditions(counts, &svc.assign_notes, || no_route_text(svc, pool));
        let binding = Wanted::new(cond::LOAD_BALANCER_POOL, True, svc.reason, pool);
        let now = &self.input.now;
        bound_status(svc.input, ingress, binding, ips, &svc.issues, now, cond::LOAD_BALANCER_CLASS)
    }

    /// The status of a Service whose pool does not exist and to which nothing else applies.
    pub(super) fn missing_pool_status(&self, j: usize) -> ServiceStatusPlan {
        let (s, message) = &self.bgp.missing[j];
        let count = s.ip_families.as_slice().len().max(1);
        let wanted = vec![
            Wanted::new(
                cond::LOAD_BALANCER_POOL,
                False,
                cond::REASON_POOL_NOT_FOUND,
                message.as_str(),
            ),
            Wanted::new(
                cond::ALL_PUBLIC_IPS_ASSIGNED,
                False,
                cond::REASON_NOT_ALL_IPS_ASSIGNED,
                format!("0 of {count} public IPs were assigned; no MetalLoadBalancerPool applies"),
            ),
        ];
        merged_status_without(s, Vec::new(), wanted, &self.input.now, cond::LOAD_BALANCER_CLASS)
    }

    /// Whether `ip` is one a BGP pool or an announcement of `s` gives: a released Service
    /// loses it.
    pub(super) fn bgp_owns(&self, s: &ServiceInput, ip: &str) -> bool {
        let held = self.bgp.input.announcements.iter().any(|a| {
            a.namespace == s.namespace && a.spec.service_ref.name == s.name && a.spec.ip == ip
        });
        held || Addr::parse(ip.trim())
            .is_some_and(|a| self.bgp.pools.iter().any(|p| p.pool.contains(a)))
    }
}

/// Why an IP has no route, for conditions.
fn no_route_text(svc: &BgpSvc<'_>, pool: &str) -> String {
    let mut text = format!(
        "no MetalLoadBalancerConfiguration advertises pool {pool} from an eligible node (matches its nodeSelector, Ready, not excluded from load balancers"
    );
    if svc.input.external_traffic_policy == TrafficPolicy::Local {
        text.push_str(", holds a ready endpoint for externalTrafficPolicy Local");
    }
    text.push_str(") to an existing peer of the IP's address family");
    text
}

/// The requested IPs (`network.deckhouse.io/load-balancer-ips`, else MetalLB's
/// `metallb.io/loadBalancerIPs`, else `spec.loadBalancerIP`) matched to the slots by family,
/// as MetalLB does for dual-stack Services: each entry goes to the first slot of its family
/// without a request. An entry that is not an address goes to the first slot without one, so
/// that its refusal is reported; one without a slot is ignored and reported.
fn requests_by_family(
    s: &ServiceInput,
    families: &[Option<Family>],
    issues: &mut Vec<(&'static str, String)>,
) -> Vec<Option<String>> {
    let raw = s
        .annotations
        .get(annotations::LOAD_BALANCER_IPS)
        .or_else(|| s.annotations.get(annotations::METALLB_LOAD_BALANCER_IPS))
        .or(s.load_balancer_ip.as_deref());
    let mut out: Vec<Option<String>> = vec![None; families.len()];
    for entry in parse_requested(raw).into_iter().flatten() {
        let family = Addr::parse(&entry).map(|a| a.family);
        let fits = |slot: &Option<Family>| match (family, slot) {
            (Some(f), Some(g)) => f == *g,
            _ => true,
        };
        match (0..families.len()).find(|&i| out[i].is_none() && fits(&families[i])) {
            Some(i) => out[i] = Some(entry),
            None => issues.push((
                cond::REASON_REQUESTED_IPS_REJECTED,
                format!(
                    "requested IP {entry:?} is ignored: a BGP-bound Service gets one IP per IP family it asks for"
                ),
            )),
        }
    }
    out
}
