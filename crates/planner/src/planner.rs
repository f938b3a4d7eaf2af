//! The planning pipeline: bind → count → allocate → place → statuses.
//!
//! ```text
//!  classes ─► pools, candidates, default          nodes ─► eligibility, membership
//!  BGP pools ─► overlaps, autoAssign (bgp_mode)
//!  services ─► binding (class or pool) ─► slots (service, index) ◄─ existing children or
//!                                                                    announcements (kept IP)
//!  slots of both modes ─► allocation stage (crate::allocate): pass A kept IPs ─► pass P
//!        published IPs ─► pass B requested IPs ─► pass C shared or lowest free IPs
//!  L2 IPs ─► keep node ─► place new (rendezvous + load cap) ─► backups (placement)
//!        ─► children + statuses
//!  BGP IPs ─► bgp::Topology routes ─► announcements + statuses
//! ```
//!
//! Every loop runs over sorted data, so the output is a pure function of the input.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use compact_str::{CompactString, ToCompactString};
use metallb_api::names::{annotations, conditions as cond, labels};

use crate::allocate::{
    self, Alloc, Allocation, Claim, Claimant, Event, Kept, Owner, Source, SourceKind, Stage,
    family_ok, id32,
};
use crate::annotations::{parse_count, parse_requested, sharing_key};
use crate::conditions::{Wanted, find, merge};
use crate::diag::{Diagnostic, RequestRejection};
use crate::hold_down::HoldDown;
use crate::model::{
    AnnouncementDeletion, BgpInput, ChildAction, ChildDeletion, ChildSpec, ChildStatus, ClassInput,
    ClassStatusPlan, Condition, ConditionStatus, DeleteReason, DesiredAnnouncement, DesiredChild,
    ExistingChild, Input, NodeInput, NodeMembership, PoolStatusPlan, Rendered, ServiceInput,
    ServiceRef, ServiceStatusPlan, Timestamp, TrafficPolicy,
};
use crate::naming::{child_name, legacy_index};
use crate::place;
use crate::pool::{Addr, Families, Pool};

use ConditionStatus::{False, True};

mod bgp_mode;
mod placement;

use bgp_mode::{BgpState, PoolChoice};
use placement::Placement;

/// A class with its parsed pool and nodes.
struct Class<'a> {
    input: &'a ClassInput,
    pool: Pool,
    /// Node ids the selector matches (not excluded).
    members: Vec<usize>,
    /// Members that can announce now.
    candidates: Vec<usize>,
    /// Other classes whose pools overlap this one.
    overlaps: Vec<String>,
}

/// A Service bound to one of our classes.
struct Svc<'a> {
    /// Its namespace and name are the Service's key (not copied: one per Service).
    input: &'a ServiceInput,
    class: usize,
    class_reason: &'static str,
    count: u32,
    requested: Vec<Option<String>>,
    families: Families,
    /// `(reason, message)` for `AnnotationsValid`, first one gives the reason.
    issues: Vec<(&'static str, String)>,
    /// Extra text for `AllPublicIPsAssigned`.
    assign_notes: Vec<String>,
    first_slot: usize,
}

impl Svc<'_> {
    fn key(&self) -> ServiceRef {
        self.input.key()
    }
}

/// One public IP of one Service. There is one per public IP of a large cluster, so ids are
/// 32-bit (see [`id32`]): 64 bytes in all.
struct Slot {
    svc: u32,
    index: u32,
    existing: Option<u32>,
    ip: Option<Addr>,
    node: Option<u32>,
    backups: place::Backups,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

impl Slot {
    fn svc(&self) -> usize {
        self.svc as usize
    }

    fn existing(&self) -> Option<usize> {
        self.existing.map(|e| e as usize)
    }

    fn node(&self) -> Option<usize> {
        self.node.map(|n| n as usize)
    }
}

/// How many IPs a Service asks for, got, and has announced.
#[derive(Clone, Copy)]
pub(super) struct IpCounts {
    pub(super) count: u32,
    pub(super) assigned: u32,
    pub(super) announced: u32,
}

/// `AllPublicIPsAssigned` (with the allocation's notes) and `AllPublicIPsAnnounced` (with why
/// some are not, from `unannounced`) of a bound Service, in either mode.
pub(super) fn ip_conditions(
    n: IpCounts,
    notes: &[String],
    unannounced: impl FnOnce() -> String,
) -> [Wanted; 2] {
    let IpCounts { count, assigned, announced } = n;
    let mut assigned_msg = format!("{assigned} of {count} public IPs were assigned");
    for note in notes {
        assigned_msg.push_str("; ");
        assigned_msg.push_str(note);
    }
    let (status, reason) = if assigned == count {
        (True, cond::REASON_ALL_IPS_ASSIGNED)
    } else {
        (False, cond::REASON_NOT_ALL_IPS_ASSIGNED)
    };
    let assigned_cond = Wanted::new(cond::ALL_PUBLIC_IPS_ASSIGNED, status, reason, assigned_msg);
    let mut announced_msg = format!("{announced} of {assigned} assigned public IPs are announced");
    let (status, reason) = if announced == assigned {
        (True, cond::REASON_ALL_IPS_ANNOUNCED)
    } else {
        announced_msg.push_str("; ");
        announced_msg.push_str(&unannounced());
        (False, cond::REASON_NOT_ALL_IPS_ANNOUNCED)
    };
    [assigned_cond, Wanted::new(cond::ALL_PUBLIC_IPS_ANNOUNCED, status, reason, announced_msg)]
}

/// Whether a placement honours the failback hold-down.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HoldDownRule {
    /// Leave held-down nodes out while another candidate exists.
    Avoid,
    /// Every candidate (an IP that never had a node breaks no connection by going there).
    Ignore,
}

/// The parts of a bound Service's status that allocation events write to, in either mode.
struct Notes<'s> {
    requested: &'s [Option<String>],
    issues: &'s mut Vec<(&'static str, String)>,
    assign_notes: &'s mut Vec<String>,
}

/// How a Service relates to our classes.
enum Binding {
    Bound {
        class: usize,
        reason: &'static str,
    },
    /// Not ours; leave it alone.
    NotOurs,
    /// It was ours (our condition is on it) but no class applies now: clear our status.
    Orphaned {
        message: String,
    },
    /// It was ours and now names another controller's class: remove what we wrote.
    Released,
}

/// Runs the pipeline up to the rendering of children and Service statuses.
pub(crate) fn decide<'a>(input: &'a Input, bgp: &'a BgpInput) -> Decisions<'a> {
    let mut planner = Planner::new(input, bgp);
    planner.bind_services();
    planner.match_children();
    planner.match_announcements();
    planner.allocate();
    planner.place();
    planner.conclude()
}

/// Whose status comes next in [`Decisions::render`].
#[derive(Clone, Copy)]
enum StatusOf {
    /// `Planner::svcs[i]`, after its children.
    Bound(usize),
    /// `Planner::orphaned[i]`.
    Orphaned(usize),
    /// `Planner::bgp.svcs[i]`.
    Bgp(usize),
    /// `Planner::bgp.missing[i]`.
    PoolMissing(usize),
}

/// Everything a plan decides, with its children and Service statuses not yet built.
///
/// [`Decisions::render`] builds them one at a time, in the order of
/// [`Plan::children`](crate::Plan::children) and [`Plan::services`](crate::Plan::services). A
/// caller that turns each into writes at once holds one child at a time instead of the whole
/// desired state (90k children for 30k Services of three IPs).
pub struct Decisions<'a> {
    planner: Planner<'a>,
    order: Vec<StatusOf>,
    /// As [`Plan::deletions`](crate::Plan::deletions).
    pub deletions: Vec<ChildDeletion>,
    /// As [`Plan::classes`](crate::Plan::classes).
    pub classes: Vec<ClassStatusPlan>,
    /// As [`Plan::nodes`](crate::Plan::nodes).
    pub nodes: NodeMembership,
    /// As [`Plan::diagnostics`](crate::Plan::diagnostics).
    pub diagnostics: Vec<Diagnostic>,
    /// As [`Plan::announcement_deletions`](crate::Plan::announcement_deletions).
    pub announcement_deletions: Vec<AnnouncementDeletion>,
    /// As [`Plan::pools`](crate::Plan::pools).
    pub pools: Vec<PoolStatusPlan>,
}

impl Decisions<'_> {
    /// Each Service's children by index, then its status; Services by namespace and name.
    pub fn render(&self) -> Render<'_> {
        Render { decisions: self, entry: 0, slot: 0 }
    }

    /// How many children [`Decisions::render`] yields.
    pub fn child_count(&self) -> usize {
        self.planner.slots.len()
    }

    /// How many Service statuses [`Decisions::render`] yields.
    pub fn service_count(&self) -> usize {
        self.order.len()
    }

    /// The BGP announcements, one at a time, in the order of
    /// [`Plan::announcements`](crate::Plan::announcements): by Service, then index.
    pub fn announcements(&self) -> impl Iterator<Item = DesiredAnnouncement> + '_ {
        let p = &self.planner;
        p.bgp.svcs.iter().flat_map(move |svc| {
            p.bgp_slots_of(svc).iter().filter_map(move |slot| p.announcement(svc, slot))
        })
    }
}

/// The iterator of [`Decisions::render`].
pub struct Render<'d> {
    decisions: &'d Decisions<'d>,
    entry: usize,
    slot: usize,
}

impl Iterator for Render<'_> {
    type Item = Rendered;

    fn next(&mut self) -> Option<Rendered> {
        let p = &self.decisions.planner;
        match *self.decisions.order.get(self.entry)? {
            StatusOf::Bound(i) => {
                let svc = &p.svcs[i];
                let slots = p.slots_of(svc);
                if let Some(slot) = slots.get(self.slot) {
                    self.slot += 1;
                    return Some(Rendered::Child(p.child(svc, slot)));
                }
                self.entry += 1;
                self.slot = 0;
                Some(Rendered::Service(p.service_status(svc, slots)))
            }
            StatusOf::Orphaned(j) => {
                self.entry += 1;
                Some(Rendered::Service(p.orphan_status(j)))
            }
            StatusOf::Bgp(i) => {
                self.entry += 1;
                Some(Rendered::Service(p.bgp_service_status(&p.bgp.svcs[i])))
            }
            StatusOf::PoolMissing(j) => {
                self.entry += 1;
                Some(Rendered::Service(p.missing_pool_status(j)))
            }
        }
    }
}

/// Working state of one plan; each phase is a method, called in order by [`decide`].
struct Planner<'a> {
    input: &'a Input,
    diags: Vec<Diagnostic>,
    /// Nodes sorted by name; a node id is an index here.
    node_names: Vec<&'a str>,
    node_id: BTreeMap<&'a str, usize>,
    /// Nodes sorted by name, parallel to `node_names`.
    nodes: Vec<&'a NodeInput>,
    /// Nodes in their failback hold-down, parallel to `node_names`: they keep what they hold
    /// but are not chosen for an IP while another candidate exists.
    held: Vec<bool>,
    /// Classes sorted by name; a class id is an index here.
    classes: Vec<Class<'a>>,
    class_id: BTreeMap<&'a str, usize>,
    /// Default classes by name; the first one is used.
    defaults: Vec<usize>,
    /// Bound Services sorted by namespace and name.
    svcs: Vec<Svc<'a>>,
    /// Services that were ours but have no class now, with the binding condition's message;
    /// `None`: released to another controller's class.
    orphaned: Vec<(&'a ServiceInput, Option<String>)>,
    /// Services we must not manage as L2 Services (foreign, classless, orphaned or bound to a
    /// BGP pool): their children go.
    unmanaged: BTreeSet<ServiceRef>,
    /// All slots, contiguous per Service.
    slots: Vec<Slot>,
    /// The requested IP of a slot (`load-balancer-ips`), validated, by slot id. Apart from the
    /// slots because few Services request IPs and a request is a third of a slot's size.
    requests: BTreeMap<usize, Result<Addr, RequestRejection>>,
    /// Existing children sorted by namespace and name; a child id is an index here.
    existing: Vec<&'a ExistingChild>,
    deletions: Vec<(usize, DeleteReason)>,
    alloc: Alloc,
    /// Distinct allocated IPs per class.
    ips_per_class: Vec<usize>,
    /// BGP pools, the Services bound to them and their announcements.
    bgp: BgpState<'a>,
}

impl<'a> Planner<'a> {
    /// Indexes nodes and classes: pools, members, candidates, overlaps, defaults.
    fn new(input: &'a Input, bgp: &'a BgpInput) -> Self {
        let mut diags = Vec::new();
        let mut nodes: Vec<&NodeInput> = input.nodes.iter().collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.dedup_by(|a, b| a.name == b.name);
        let node_names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let node_id = node_names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let excluded: Vec<bool> = nodes
            .iter()
            .map(|n| n.labels.contains_key(labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS))
            .collect();
        let eligible: Vec<bool> =
            nodes.iter().zip(&excluded).map(|(n, ex)| n.ready && n.speaker_ready && !ex).collect();
        let held = nodes.iter().map(|n| HoldDown::of(input, n).is_held()).collect();

        let mut classes = classes_of(input, &nodes, &excluded, &eligible, &mut diags);
        let class_id =
            classes.iter().enumerate().map(|(i, c)| (c.input.name.as_str(), i)).collect();
        let defaults: Vec<usize> =
            (0..classes.len()).filter(|&i| classes[i].input.is_default).collect();
        for &shadowed in defaults.iter().skip(1) {
            diags.push(Diagnostic::DefaultClassShadowed {
                class: classes[shadowed].input.name.clone(),
                winner: classes[defaults[0]].input.name.clone(),
            });
        }
        let class_pools: Vec<(&ClassInput, &Pool)> =
            classes.iter().map(|c| (c.input, &c.pool)).collect();
        let bgp = BgpState::new(bgp, &class_pools, &input.nodes, &mut diags);
        // A class reports the BGP pools it overlaps too (the pools report the classes).
        for class in &mut classes {
            let pools = bgp.pools.iter().filter(|p| p.pool.overlaps(&class.pool));
            class.overlaps.extend(pools.map(|p| format!("MetalLoadBalancerPool {}", p.input.name)));
        }
        Self {
            input,
            bgp,
            diags,
            node_names,
            node_id,
            nodes,
            held,
            classes,
            class_id,
            defaults,
            svcs: Vec::new(),
            orphaned: Vec::new(),
            unmanaged: BTreeSet::new(),
            slots: Vec::new(),
            requests: BTreeMap::new(),
            existing: Vec::new(),
            deletions: Vec::new(),
            alloc: Alloc::default(),
            ips_per_class: Vec::new(),
        }
    }

    /// Binds every Service and opens one slot per wanted IP.
    fn bind_services(&mut self) {
        let mut services: Vec<&ServiceInput> = self.input.services.iter().collect();
        services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        services.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        let default_class = self.defaults.first().copied();
        let mut svcs = Vec::with_capacity(services.len());
        let mut slot_count = 0;
        for s in services {
            if self.take_by_pool(s) {
                continue;
            }
            let key = s.key();
            match bind(s, &key, &self.class_id, &self.classes, default_class, &mut self.diags) {
                Binding::NotOurs => {
                    self.unmanaged.insert(key);
                }
                Binding::Orphaned { message } => {
                    self.unmanaged.insert(key);
                    self.orphaned.push((s, Some(message)));
                }
                Binding::Released => {
                    self.unmanaged.insert(key);
                    self.orphaned.push((s, None));
                }
                Binding::Bound { class, reason } => {
                    let mut svc =
                        new_svc(s, key, class, reason, &self.class_id, slot_count, &mut self.diags);
                    let class_name = self.classes[class].input.name.as_str();
                    if let Some(issue) = self.pool_annotation_issue(s, class_name) {
                        svc.issues.push(issue);
                    }
                    slot_count += svc.count as usize;
                    svcs.push(svc);
                }
            }
        }
        // Both vectors are allocated once at their size: grown by doubling, they would leave
        // their smaller copies behind in a large run's heap.
        svcs.shrink_to_fit();
        let mut slots = Vec::with_capacity(slot_count);
        for (id, svc) in svcs.iter().enumerate() {
            for index in 0..svc.count {
                let request = svc.requested.get(index as usize).and_then(|entry| {
                    let class = &self.classes[svc.class];
                    entry.as_deref().map(|text| validate_request(text, svc, class))
                });
                if let Some(request) = request {
                    self.requests.insert(slots.len(), request);
                }
                slots.push(Slot {
                    svc: id32(id),
                    index,
                    existing: None,
                    ip: None,
                    node: None,
                    backups: place::Backups::default(),
                });
            }
        }
        self.svcs = svcs;
        self.slots = slots;
    }

    /// Settles a Service the BGP rules claim (see `bgp_mode`); false leaves it to [`bind`].
    fn take_by_pool(&mut self, s: &'a ServiceInput) -> bool {
        match self.pool_binding(s) {
            PoolChoice::L2 => return false,
            PoolChoice::Pool { pool, reason } => self.bind_to_pool(s, pool, reason),
            PoolChoice::Missing { message } => self.bgp.missing.push((s, message)),
            PoolChoice::Released => self.orphaned.push((s, None)),
        }
        // Not an L2 Service: the children it had go as `ParentNotManaged`.
        self.unmanaged.insert(s.key());
        true
    }

    /// Matches existing children to slots; the rest are deleted with a reason.
    fn match_children(&mut self) {
        let mut existing: Vec<&ExistingChild> = self.input.children.iter().collect();
        existing.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        existing.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        self.existing = existing;
        // Lookup only, never iterated: a hash map keeps the output deterministic and avoids
        // a log factor of string comparisons at 30k Services.
        let svc_id: HashMap<(&str, &str), usize> = self
            .svcs
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.input.namespace.as_str(), s.input.name.as_str()), i))
            .collect();
        let mut per_slot: Vec<Vec<usize>> = vec![Vec::new(); self.slots.len()];
        for (id, child) in self.existing.iter().enumerate() {
            let parent = ServiceRef {
                namespace: child.namespace.clone(),
                name: child.spec.service_ref.name.clone(),
            };
            let Some(&sid) = svc_id.get(&(parent.namespace.as_str(), parent.name.as_str())) else {
                let reason = if self.unmanaged.contains(&parent) {
                    DeleteReason::ParentNotManaged
                } else {
                    DeleteReason::ParentGone
                };
                self.deletions.push((id, reason));
                continue;
            };
            let svc = &self.svcs[sid];
            if child.owner_uid.as_ref().is_some_and(|uid| *uid != svc.input.uid) {
                self.deletions.push((id, DeleteReason::ParentGone));
                continue;
            }
            // Children of the previous implementation carry no index: read it from the name,
            // with the class they name or, when the hooks could not tell, the class bound now.
            let bound = &self.classes[svc.class].input.name;
            let index = child
                .spec
                .index
                .or_else(|| legacy_index(&child.name, &parent.name, &child.spec.class))
                .or_else(|| legacy_index(&child.name, &parent.name, bound));
            match index {
                Some(i) if i < svc.count => {
                    per_slot[svc.first_slot + i as usize].push(id);
                }
                _ => self.deletions.push((id, DeleteReason::IndexUnused)),
            }
        }
        for (slot_id, ids) in per_slot.into_iter().enumerate().filter(|(_, ids)| !ids.is_empty()) {
            let slot = &self.slots[slot_id];
            let svc = &self.svcs[slot.svc()];
            let want = child_name(&svc.input.name, &self.classes[svc.class].input.name, slot.index);
            let chosen =
                ids.iter().copied().find(|&id| self.existing[id].name == want).unwrap_or(ids[0]);
            // The chosen child hands its IP and node on; under another name it is replaced
            // too (deletions of names that stay desired are dropped in `finish`).
            for &id in ids.iter().filter(|&&id| id != chosen || self.existing[id].name != want) {
                self.deletions.push((id, DeleteReason::Superseded));
            }
            self.slots[slot_id].existing = Some(id32(chosen));
        }
    }

    /// Gives IPs through the allocation stage shared with BGP pools (see [`allocate`]).
    fn allocate(&mut self) {
        let stage = self.stage();
        let Allocation { grants, mut alloc, events } = allocate::allocate(&stage);
        // Consumed here, so that the grants are gone before the ownership is remapped.
        for (claim, grant) in grants.into_iter().enumerate() {
            match stage.owner(claim) {
                Owner::L2(sid) => self.slots[sid].ip = grant.ip(),
                Owner::Bgp(sid) => self.bgp.slots[sid].ip = grant.ip(),
            }
        }
        for event in events {
            self.record(&stage, event);
        }
        alloc.map_in_place(|claim| match stage.owner(claim) {
            Owner::L2(sid) => Some(sid),
            Owner::Bgp(_) => None,
        });
        self.alloc = alloc;
    }

    /// The allocation stage's input: every class and BGP pool as a source, every bound
    /// Service of either mode as a claimant (by namespace and name), every slot as a claim.
    fn stage(&self) -> Stage<'a> {
        let mut sources: Vec<Source<'a>> = self
            .classes
            .iter()
            .map(|c| Source {
                kind: SourceKind::Class,
                name: c.input.name.as_str(),
                pool: c.pool.clone(),
                avoid_buggy: false,
            })
            .collect();
        sources.extend(self.pool_sources());
        let mut stage = Stage {
            sources,
            claimants: Vec::new(),
            claims: Vec::new(),
            kept: Vec::new(),
            requests: BTreeMap::new(),
        };
        stage.claims.reserve_exact(self.slots.len() + self.bgp.slots.len());
        stage.claimants.reserve_exact(self.svcs.len() + self.bgp.svcs.len());
        for owner in self.claimant_order() {
            match owner {
                Owner::L2(id) => self.push_claimant(&mut stage, id),
                Owner::Bgp(id) => self.push_bgp_claimant(&mut stage, id),
            }
        }
        stage
    }

    /// Bound Services of both modes, merged by namespace and name.
    fn claimant_order(&self) -> Vec<Owner> {
        let mut order = Vec::with_capacity(self.svcs.len() + self.bgp.svcs.len());
        let mut bgp = self.bgp.svcs.iter().enumerate().peekable();
        for (id, svc) in self.svcs.iter().enumerate() {
            while let Some((b, _)) = bgp.next_if(|(_, s)| s.key() < svc.key()) {
                order.push(Owner::Bgp(b));
            }
            order.push(Owner::L2(id));
        }
        order.extend(bgp.map(|(b, _)| Owner::Bgp(b)));
        order
    }

    /// Adds an L2-bound Service and its slots to `stage`.
    fn push_claimant(&self, stage: &mut Stage<'a>, id: usize) {
        let svc = &self.svcs[id];
        let first = stage.claims.len();
        for sid in svc.first_slot..svc.first_slot + svc.count as usize {
            if let Some(request) = self.requests.get(&sid) {
                stage.requests.insert(stage.claims.len(), request.clone());
            }
            let kept = self.slots[sid]
                .existing()
                .and_then(|ex| self.existing[ex].status.ip.as_deref())
                .and_then(|t| Addr::parse(t.trim()));
            if let Some(ip) = kept {
                stage.kept.push(Kept { claim: id32(stage.claims.len()), ip });
            }
            let index = self.slots[sid].index;
            stage.claims.push(Claim {
                claimant: id32(stage.claimants.len()),
                slot: id32(sid),
                index,
                lane: index,
                families: svc.families,
            });
        }
        stage.claimants.push(Claimant {
            owner: Owner::L2(id),
            input: svc.input,
            source: id32(svc.class),
            claims: id32(first)..id32(stage.claims.len()),
        });
    }

    /// Turns one allocation event into condition text and a diagnostic.
    fn record(&mut self, stage: &Stage<'_>, event: Event) {
        let key_of = |claimant: usize| stage.claimants[claimant].input.key();
        match event {
            Event::Conflict { claim, ip, holder } => {
                let c = &stage.claims[claim];
                self.diags.push(Diagnostic::IpConflict {
                    service: key_of(c.claimant as usize),
                    index: c.index,
                    ip: ip.to_string(),
                    holder: key_of(holder),
                });
            }
            Event::Refused { claim, why } => {
                let c = &stage.claims[claim];
                let index = c.index;
                let svc = self.notes_of(stage.claimants[c.claimant as usize].owner);
                let entry = svc.requested[index as usize].clone().unwrap_or_default();
                let text = format!("index {index}: requested IP {entry:?} {why}");
                svc.issues.push((cond::REASON_REQUESTED_IPS_REJECTED, text.clone()));
                svc.assign_notes.push(text);
                self.diags.push(Diagnostic::RequestedIpRejected {
                    service: key_of(c.claimant as usize),
                    index,
                    entry,
                    why,
                });
            }
            Event::SharingRefused { claim, key, with } => {
                let c = &stage.claims[claim];
                let (index, with) = (c.index, key_of(with));
                let svc = self.notes_of(stage.claimants[c.claimant as usize].owner);
                svc.issues.push((
                    cond::REASON_SHARING_REJECTED,
                    format!(
                        "index {index}: cannot share key {key:?} with {with}: ports overlap or traffic policies differ"
                    ),
                ));
                self.diags.push(Diagnostic::SharingRejected {
                    service: key_of(c.claimant as usize),
                    index,
                    key,
                    with,
                });
            }
            Event::Exhausted { claimant } => self.report_exhaustion(&stage.claimants[claimant]),
        }
    }

    /// The status notes of a claimant.
    fn notes_of(&mut self, owner: Owner) -> Notes<'_> {
        match owner {
            Owner::L2(i) => {
                let svc = &mut self.svcs[i];
                Notes {
                    requested: &svc.requested,
                    issues: &mut svc.issues,
                    assign_notes: &mut svc.assign_notes,
                }
            }
            Owner::Bgp(i) => {
                let svc = &mut self.bgp.svcs[i];
                Notes {
                    requested: &svc.requested,
                    issues: &mut svc.issues,
                    assign_notes: &mut svc.assign_notes,
                }
            }
        }
    }

    /// Notes for a Service whose pool ran out.
    fn report_exhaustion(&mut self, claimant: &Claimant<'_>) {
        let s = match claimant.owner {
            Owner::L2(s) => s,
            Owner::Bgp(s) => return self.report_bgp_exhaustion(s),
        };
        let assigned = self.slots_of(&self.svcs[s]).iter().filter(|slot| slot.ip.is_some()).count();
        let svc = &mut self.svcs[s];
        let class = self.classes[svc.class].input.name.clone();
        svc.assign_notes.push(format!("the pool of class {class} is exhausted"));
        self.diags.push(Diagnostic::PoolExhausted {
            service: svc.key(),
            class,
            // At most 64 per Service (the count's upper bound), so it fits.
            assigned: u32::try_from(assigned).unwrap_or(u32::MAX),
            wanted: svc.count,
        });
    }

    /// Places every distinct IP on a node (see [`placement`]).
    fn place(&mut self) {
        let (mut slots, alloc) = (std::mem::take(&mut self.slots), std::mem::take(&mut self.alloc));
        let mut placement = Placement::new(self, &slots, alloc);
        placement.keep_nodes(self, &mut slots);
        placement.choose_nodes(self, &mut slots);
        placement.spread(&mut slots);
        self.ips_per_class = placement.ips_per_class;
        self.slots = slots;
    }

    /// Settles everything but the children and Service statuses, which [`Decisions::render`]
    /// builds one at a time.
    fn conclude(mut self) -> Decisions<'a> {
        for slot in &self.slots {
            if slot.ip.is_some() && slot.node.is_none() {
                self.diags.push(Diagnostic::NoCandidateNode {
                    service: self.svcs[slot.svc()].key(),
                    index: slot.index,
                });
            }
        }
        // Every Service with a status, by namespace and name (each is in one list only).
        let mut order: Vec<((&str, &str), StatusOf)> =
            Vec::with_capacity(self.svcs.len() + self.orphaned.len());
        let name = |s: &'a ServiceInput| (s.namespace.as_str(), s.name.as_str());
        order
            .extend(self.svcs.iter().enumerate().map(|(i, s)| (name(s.input), StatusOf::Bound(i))));
        order.extend(
            self.orphaned.iter().enumerate().map(|(j, s)| (name(s.0), StatusOf::Orphaned(j))),
        );
        order.extend(
            self.bgp.svcs.iter().enumerate().map(|(i, s)| (name(s.input), StatusOf::Bgp(i))),
        );
        order.extend(
            self.bgp.missing.iter().enumerate().map(|(j, s)| (name(s.0), StatusOf::PoolMissing(j))),
        );
        order.sort_by(|a, b| a.0.cmp(&b.0));
        let order: Vec<StatusOf> = order.into_iter().map(|(_, o)| o).collect();

        let deletions = self.deletions();
        let classes = (0..self.classes.len())
            .map(|i| self.class_status(i, self.ips_per_class[i] as u64))
            .collect();
        let nodes = self.membership();
        let announcement_deletions = self.announcement_deletions();
        let pools = self.pool_statuses();
        let diagnostics = std::mem::take(&mut self.diags);
        Decisions {
            planner: self,
            order,
            deletions,
            classes,
            nodes,
            diagnostics,
            announcement_deletions,
            pools,
        }
    }

    /// The slots of a bound Service, by index.
    fn slots_of(&self, svc: &Svc<'_>) -> &[Slot] {
        &self.slots[svc.first_slot..svc.first_slot + svc.count as usize]
    }

    /// Existing children to delete, except those whose name a slot keeps (renamed or rebound
    /// children are replaced in place), sorted by namespace and name.
    fn deletions(&self) -> Vec<ChildDeletion> {
        // Lookup only, never iterated; not built when nothing is deleted (the usual run), as it
        // would hold a name per child.
        let desired: HashSet<(&str, CompactString)> = if self.deletions.is_empty() {
            HashSet::new()
        } else {
            let mut desired = HashSet::with_capacity(self.slots.len());
            for slot in &self.slots {
                let svc = &self.svcs[slot.svc()];
                let class = &self.classes[svc.class].input.name;
                let name = child_name(&svc.input.name, class, slot.index);
                desired.insert((svc.input.namespace.as_str(), CompactString::from(name)));
            }
            desired
        };
        let mut deletions: Vec<ChildDeletion> = self
            .deletions
            .iter()
            .map(|&(id, reason)| (self.existing[id], reason))
            .filter(|(c, _)| !desired.contains(&(c.namespace.as_str(), c.name.clone())))
            .map(|(c, reason)| ChildDeletion {
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                reason,
            })
            .collect();
        deletions.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        deletions.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        deletions
    }

    /// The status of a Service that was ours and has no class now.
    fn orphan_status(&self, orphan: usize) -> ServiceStatusPlan {
        let (s, message) = &self.orphaned[orphan];
        let Some(message) = message else { return self.released_status(s) };
        let (count, _) = parse_count(s.annotations.get(annotations::EXTERNAL_IPS_COUNT));
        let wanted = vec![
            Wanted::new(
                cond::LOAD_BALANCER_CLASS,
                False,
                cond::REASON_CLASS_NOT_FOUND,
                message.as_str(),
            ),
            Wanted::new(
                cond::ALL_PUBLIC_IPS_ASSIGNED,
                False,
                cond::REASON_NOT_ALL_IPS_ASSIGNED,
                format!("0 of {count} public IPs were assigned; no MetalLoadBalancerClass applies"),
            ),
        ];
        merged_status(s, Vec::new(), wanted, &self.input.now)
    }

    /// The status of a Service we served that now names another controller's class: our
    /// conditions and the IPs we published go, everything else stays. An IP is ours if one of
    /// the Service's children holds it or one of our pools contains it (the other controller
    /// may already have published its own). With our conditions gone, later plans see a
    /// foreign Service and never touch it again.
    fn released_status(&self, s: &ServiceInput) -> ServiceStatusPlan {
        const OURS: [&str; 5] = [
            cond::LOAD_BALANCER_CLASS,
            cond::LOAD_BALANCER_POOL,
            cond::ALL_PUBLIC_IPS_ASSIGNED,
            cond::ALL_PUBLIC_IPS_ANNOUNCED,
            cond::ANNOTATIONS_VALID,
        ];
        let held: BTreeSet<&str> = self
            .existing
            .iter()
            .filter(|c| c.namespace == s.namespace && c.spec.service_ref.name == s.name)
            .filter_map(|c| c.status.ip.as_deref())
            .collect();
        let ours = |ip: &str| {
            held.contains(ip)
                || self.bgp_owns(s, ip)
                || Addr::parse(ip.trim())
                    .is_some_and(|a| self.classes.iter().any(|c| c.pool.contains(a)))
        };
        let ingress: Vec<CompactString> =
            s.ingress.iter().filter(|ip| !ours(ip)).cloned().collect();
        let conditions: Vec<_> =
            s.conditions.iter().filter(|c| !OURS.contains(&c.type_.as_str())).cloned().collect();
        ServiceStatusPlan {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            changed: conditions != s.conditions || ingress != s.ingress,
            ingress,
            conditions,
        }
    }

    /// One desired child with its action.
    fn child(&self, svc: &Svc<'_>, slot: &Slot) -> DesiredChild {
        let class = &self.classes[svc.class];
        let name = child_name(&svc.input.name, &class.input.name, slot.index);
        let ip_text = slot.ip.map(|ip| ip.to_compact_string());
        let announced = match (&ip_text, slot.node()) {
            (None, _) => Wanted::new(
                cond::ANNOUNCED,
                False,
                cond::REASON_NO_IP_ASSIGNED,
                "no public IP is assigned",
            ),
            (Some(_), None) => Wanted::new(
                cond::ANNOUNCED,
                False,
                cond::REASON_NO_CANDIDATE_NODE,
                no_candidate_text(svc),
            ),
            (Some(ip), Some(node)) => Wanted::new(
                cond::ANNOUNCED,
                True,
                cond::REASON_NODE_ASSIGNED,
                format!("{ip} is announced by node {}", self.node_names[node]),
            ),
        };
        let same_name = self.existing_named(&svc.input.namespace, &name);
        let old_conditions = same_name.map(|c| c.status.conditions.as_slice()).unwrap_or_default();
        let status = ChildStatus {
            ip: ip_text,
            node: slot.node().map(|n| self.node_names[n].into()),
            backups: slot.backups.iter().map(|n| self.node_names[n].into()).collect(),
            conditions: merge(old_conditions, vec![announced], &self.input.now, None),
        };
        let spec = ChildSpec {
            service_ref: svc.key(),
            class: class.input.name.as_str().into(),
            index: Some(slot.index),
            desired_ip: svc
                .requested
                .get(slot.index as usize)
                .and_then(Option::as_deref)
                .map(Into::into),
            sharing_key: sharing_key(svc.input).map(Into::into),
            ports: svc.input.ports.clone(),
            selector: svc.input.selector.clone(),
            external_traffic_policy: svc.input.external_traffic_policy,
            internal_traffic_policy: svc.input.internal_traffic_policy,
            publish_not_ready_addresses: svc.input.publish_not_ready_addresses,
            cluster_ip: svc.input.cluster_ip.clone(),
        };
        let action = same_name.map_or(ChildAction::Create, |old| {
            let owner_changed = old.owner_uid.as_deref() != Some(svc.input.uid.as_str());
            update_action(old.spec != spec || owner_changed, old.status != status)
        });
        DesiredChild {
            namespace: svc.input.namespace.clone(),
            name: name.into(),
            owner_uid: svc.input.uid.clone(),
            action,
            spec,
            status,
        }
    }

    /// The existing child of that name (`existing` is sorted by namespace and name).
    fn existing_named(&self, namespace: &str, name: &str) -> Option<&'a ExistingChild> {
        self.existing
            .binary_search_by(|c| (c.namespace.as_str(), c.name.as_str()).cmp(&(namespace, name)))
            .ok()
            .map(|i| self.existing[i])
    }

    /// The parent's ingress and conditions.
    fn service_status(&self, svc: &Svc<'_>, my_slots: &[Slot]) -> ServiceStatusPlan {
        let mut ingress: Vec<CompactString> = Vec::new();
        let (mut assigned, mut announced) = (0u32, 0u32);
        for slot in my_slots {
            let Some(ip) = slot.ip else { continue };
            assigned += 1;
            announced += u32::from(slot.node.is_some());
            let ip = ip.to_compact_string();
            if !ingress.contains(&ip) {
                ingress.push(ip);
            }
        }
        let counts = IpCounts { count: svc.count, assigned, announced };
        let ips = ip_conditions(counts, &svc.assign_notes, || no_candidate_text(svc));
        let class_name = self.classes[svc.class].input.name.clone();
        let binding = Wanted::new(cond::LOAD_BALANCER_CLASS, True, svc.class_reason, class_name);
        let now = &self.input.now;
        bound_status(svc.input, ingress, binding, ips, &svc.issues, now, cond::LOAD_BALANCER_POOL)
    }

    /// A class's conditions and counts.
    fn class_status(&self, i: usize, allocated: u64) -> ClassStatusPlan {
        let c = &self.classes[i];
        let size = c.pool.size();
        let pool_cond = pool_valid(&c.pool, "the address pool has no address");
        let overlap_cond = pool_disjoint(
            &c.overlaps,
            "no other class uses these addresses",
            "the pool overlaps the pool of",
        );
        let default_cond = self.default_condition(i);
        let conditions = merge(
            &c.input.conditions,
            vec![pool_cond, overlap_cond, default_cond],
            &self.input.now,
            Some(c.input.generation),
        );
        ClassStatusPlan {
            name: c.input.name.clone(),
            conditions_changed: conditions != c.input.conditions,
            conditions,
            pool_size: size.to_decimal(),
            allocated,
            member_nodes: c.members.iter().map(|&n| self.node_names[n].to_owned()).collect(),
            candidate_nodes: c.candidates.iter().map(|&n| self.node_names[n].to_owned()).collect(),
        }
    }

    /// `DefaultClass` of class `i`.
    fn default_condition(&self, i: usize) -> Wanted {
        let c = &self.classes[i];
        match self.defaults.first() {
            Some(&winner) if c.input.is_default => {
                let (status, reason) = if winner == i {
                    (True, cond::REASON_DEFAULT_CLASS_ACTIVE)
                } else {
                    (False, cond::REASON_DEFAULT_CLASS_SHADOWED)
                };
                let message = if self.defaults.len() == 1 {
                    "the default class".to_owned()
                } else {
                    let names: Vec<&str> = self
                        .defaults
                        .iter()
                        .map(|&d| self.classes[d].input.name.as_str())
                        .collect();
                    format!(
                        "several default classes ({}); {} is used, the first by name",
                        names.join(", "),
                        self.classes[winner].input.name
                    )
                };
                Wanted::new(cond::DEFAULT_CLASS, status, reason, message)
            }
            _ => Wanted::new(
                cond::DEFAULT_CLASS,
                False,
                cond::REASON_NOT_DEFAULT,
                "isDefault is not set",
            ),
        }
    }

    /// The member label: nodes some class selects (excluded nodes never run a speaker).
    fn membership(&self) -> NodeMembership {
        let members: BTreeSet<String> = self
            .classes
            .iter()
            .flat_map(|c| c.members.iter().map(|&n| self.node_names[n].to_owned()))
            .collect();
        let labelled = |n: &&&NodeInput| n.labels.contains_key(labels::MEMBER);
        NodeMembership {
            add_label: self
                .nodes
                .iter()
                .filter(|n| members.contains(&n.name) && !labelled(n))
                .map(|n| n.name.clone())
                .collect(),
            remove_label: self
                .nodes
                .iter()
                .filter(|n| !members.contains(&n.name) && labelled(n))
                .map(|n| n.name.clone())
                .collect(),
            members,
        }
    }
}

/// Syntax, pool and family checks of a requested IP; whether it is free is decided later.
/// The classes by name, with their pools, members and candidates; invalid pool entries and
/// overlaps between classes are reported.
fn classes_of<'a>(
    input: &'a Input,
    nodes: &[&NodeInput],
    excluded: &[bool],
    eligible: &[bool],
    diags: &mut Vec<Diagnostic>,
) -> Vec<Class<'a>> {
    let mut class_inputs: Vec<&ClassInput> = input.classes.iter().collect();
    class_inputs.sort_by(|a, b| a.name.cmp(&b.name));
    class_inputs.dedup_by(|a, b| a.name == b.name);
    let mut classes: Vec<Class<'_>> = class_inputs
        .iter()
        .map(|c| {
            let members: Vec<usize> = (0..nodes.len())
                .filter(|&n| {
                    !excluded[n]
                        && c.node_selector.iter().all(|(k, v)| nodes[n].labels.get(k) == Some(v))
                })
                .collect();
            let candidates = members.iter().copied().filter(|&n| eligible[n]).collect();
            Class {
                input: c,
                pool: Pool::parse(&c.address_pool),
                members,
                candidates,
                overlaps: Vec::new(),
            }
        })
        .collect();
    for class in &classes {
        for err in class.pool.errors() {
            diags.push(Diagnostic::InvalidPoolEntry {
                class: class.input.name.clone(),
                error: err.to_string(),
            });
        }
    }
    for a in 0..classes.len() {
        for b in a + 1..classes.len() {
            if classes[a].pool.overlaps(&classes[b].pool) {
                let (name_a, name_b) =
                    (classes[a].input.name.clone(), classes[b].input.name.clone());
                diags
                    .push(Diagnostic::PoolOverlap { class: name_a.clone(), other: name_b.clone() });
                classes[a].overlaps.push(name_b);
                classes[b].overlaps.push(name_a);
            }
        }
    }
    classes
}

/// `PoolValid` of a class's or a BGP pool's addresses; `empty` says that there are none.
fn pool_valid(pool: &Pool, empty: &'static str) -> Wanted {
    if !pool.errors().is_empty() {
        let errors: Vec<String> = pool.errors().iter().map(ToString::to_string).collect();
        Wanted::new(cond::POOL_VALID, False, cond::REASON_INVALID_POOL_ENTRIES, errors.join("; "))
    } else if pool.intervals().is_empty() {
        Wanted::new(cond::POOL_VALID, False, cond::REASON_EMPTY_POOL, empty)
    } else {
        let text = format!("{} addresses", pool.size().to_decimal());
        Wanted::new(cond::POOL_VALID, True, cond::REASON_POOL_PARSED, text)
    }
}

/// `PoolDisjoint` given the sources sharing an address with this one: `none` says there are
/// none, `overlap` starts the list.
fn pool_disjoint(overlaps: &[String], none: &'static str, overlap: &str) -> Wanted {
    if overlaps.is_empty() {
        return Wanted::new(cond::POOL_DISJOINT, True, cond::REASON_NO_OVERLAP, none);
    }
    let text = format!("{overlap} {}; each address is still given out once", overlaps.join(", "));
    Wanted::new(cond::POOL_DISJOINT, False, cond::REASON_POOL_OVERLAP, text)
}

fn validate_request(
    text: &str,
    svc: &Svc<'_>,
    class: &Class<'_>,
) -> Result<Addr, RequestRejection> {
    let ip = Addr::parse(text).ok_or(RequestRejection::NotAnAddress)?;
    if !class.pool.contains(ip) {
        return Err(RequestRejection::OutsidePool { class: class.input.name.clone() });
    }
    if !family_ok(svc.families.as_slice(), ip) {
        return Err(RequestRejection::WrongFamily);
    }
    Ok(ip)
}

/// Class binding: `spec.loadBalancerClass` > annotation > recorded binding > default.
///
/// The recorded binding (our condition) sits below the explicit choices so that editing the
/// annotation moves a Service, and above the default so that adding or switching a default
/// class does not move already-served Services (§11.2 of the reference: the previous sticky
/// binding ignored every later change and silently dropped Services whose class vanished).
fn bind(
    s: &ServiceInput,
    key: &ServiceRef,
    class_id: &BTreeMap<&str, usize>,
    classes: &[Class<'_>],
    default_class: Option<usize>,
    diags: &mut Vec<Diagnostic>,
) -> Binding {
    if let Some(named) = s.load_balancer_class.as_deref().filter(|c| !c.is_empty()) {
        // A foreign class belongs to another controller (§11.1): never hijack it. If we served
        // the Service before (our condition is on it), what we wrote goes first.
        let Some(&class) = class_id.get(named) else {
            diags.push(Diagnostic::ForeignClass { service: key.clone(), class: named.to_owned() });
            if find(&s.conditions, cond::LOAD_BALANCER_CLASS).is_some() {
                return Binding::Released;
            }
            return Binding::NotOurs;
        };
        return Binding::Bound { class, reason: bound_reason(s, &classes[class], None) };
    }
    let ours = find(&s.conditions, cond::LOAD_BALANCER_CLASS);
    let recorded = ours.filter(|c| c.status == True).map(|c| c.message.as_str());
    let vanished = recorded.filter(|r| !class_id.contains_key(r));
    let annotation = s
        .annotations
        .get(annotations::METAL_LOAD_BALANCER_CLASS)
        .map(|a| a.trim())
        .filter(|a| !a.is_empty());
    if let Some(a) = annotation.filter(|a| !class_id.contains_key(a)) {
        diags
            .push(Diagnostic::UnknownClassAnnotation { service: key.clone(), class: a.to_owned() });
    }
    let chosen = annotation
        .and_then(|a| class_id.get(a))
        .or_else(|| recorded.and_then(|r| class_id.get(r)))
        .copied()
        .or(default_class);
    match (chosen, vanished) {
        (Some(class), _) => {
            if let Some(from) = vanished {
                diags.push(Diagnostic::ClassRebound {
                    service: key.clone(),
                    from: from.to_owned(),
                    to: classes[class].input.name.clone(),
                });
            }
            Binding::Bound { class, reason: bound_reason(s, &classes[class], vanished) }
        }
        (None, Some(gone)) => {
            diags.push(Diagnostic::ClassGone { service: key.clone(), class: gone.to_owned() });
            Binding::Orphaned {
                message: format!(
                    "MetalLoadBalancerClass {gone} no longer exists and no other class applies"
                ),
            }
        }
        (None, None) => match ours {
            // Already reported as orphaned by an earlier plan: keep that condition as it is.
            Some(c) => Binding::Orphaned { message: c.message.to_string() },
            None => {
                diags.push(Diagnostic::NoClass { service: key.clone() });
                Binding::NotOurs
            }
        },
    }
}

/// Reason of the binding condition; an existing reason for the same class is kept so that
/// re-planning writes the same condition.
fn bound_reason(s: &ServiceInput, class: &Class<'_>, vanished: Option<&str>) -> &'static str {
    let existing = find(&s.conditions, cond::LOAD_BALANCER_CLASS)
        .filter(|c| c.status == True && c.message == class.input.name)
        .map(|c| c.reason.as_str());
    match existing {
        Some(cond::REASON_CLASS_REBOUND) => cond::REASON_CLASS_REBOUND,
        Some(_) => cond::REASON_CLASS_BOUND,
        None if vanished.is_some() => cond::REASON_CLASS_REBOUND,
        None => cond::REASON_CLASS_BOUND,
    }
}

/// Reads a bound Service's annotations: count, requested IPs, sharing key, families.
fn new_svc<'a>(
    s: &'a ServiceInput,
    key: ServiceRef,
    class: usize,
    class_reason: &'static str,
    class_id: &BTreeMap<&str, usize>,
    first_slot: usize,
    diags: &mut Vec<Diagnostic>,
) -> Svc<'a> {
    let mut issues = Vec::new();
    if let Some(a) = s.annotations.get(annotations::METAL_LOAD_BALANCER_CLASS) {
        let a = a.trim();
        if !a.is_empty() && !class_id.contains_key(a) {
            issues.push((
                cond::REASON_UNKNOWN_CLASS_ANNOTATION,
                format!(
                    "annotation {} names {a:?}, which is not a MetalLoadBalancerClass",
                    annotations::METAL_LOAD_BALANCER_CLASS
                ),
            ));
        }
    }
    let raw_count = s.annotations.get(annotations::EXTERNAL_IPS_COUNT);
    let (count, count_issue) = parse_count(raw_count);
    if let (Some(issue), Some(raw)) = (count_issue, raw_count) {
        issues.push((
            cond::REASON_INVALID_EXTERNAL_IPS_COUNT,
            format!(
                "{} {raw:?} {}; using {count}",
                annotations::EXTERNAL_IPS_COUNT,
                issue.describe()
            ),
        ));
        diags.push(Diagnostic::CountAdjusted {
            service: key.clone(),
            value: raw.to_owned(),
            used: count,
        });
    }
    let requested = parse_requested(s.annotations.get(annotations::LOAD_BALANCER_IPS));
    if requested.len() > count as usize {
        let ignored = requested.len() - count as usize;
        issues.push((
            cond::REASON_REQUESTED_IPS_REJECTED,
            format!("{ignored} requested IPs beyond the IP count {count} are ignored"),
        ));
        diags.push(Diagnostic::RequestedIpsIgnored { service: key.clone(), ignored });
    }
    Svc {
        input: s,
        class,
        class_reason,
        count,
        requested,
        families: s.ip_families,
        issues,
        assign_notes: Vec::new(),
        first_slot,
    }
}

/// Why nothing announces an IP, for conditions.
fn no_candidate_text(svc: &Svc<'_>) -> String {
    let mut text = "no eligible node (matches the class nodeSelector, Ready, not excluded from load balancers, speaker ready".to_owned();
    if svc.input.external_traffic_policy == TrafficPolicy::Local {
        text.push_str(", holds a ready endpoint for externalTrafficPolicy Local");
    }
    text.push(')');
    text
}

/// Merges `wanted` into the Service's conditions and says whether anything changed.
fn merged_status(
    s: &ServiceInput,
    ingress: Vec<CompactString>,
    wanted: Vec<Wanted>,
    now: &Timestamp,
) -> ServiceStatusPlan {
    merge_into(s, &s.conditions, ingress, wanted, now)
}

/// [`merged_status`] for a Service bound in one mode: the binding condition of the other mode,
/// left from an earlier binding, goes (a Service carries one binding).
fn merged_status_without(
    s: &ServiceInput,
    ingress: Vec<CompactString>,
    wanted: Vec<Wanted>,
    now: &Timestamp,
    stale: &str,
) -> ServiceStatusPlan {
    if find(&s.conditions, stale).is_none() {
        return merged_status(s, ingress, wanted, now);
    }
    let kept: Vec<_> = s.conditions.iter().filter(|c| c.type_ != stale).cloned().collect();
    merge_into(s, &kept, ingress, wanted, now)
}

/// `wanted` merged into `base` (the Service's conditions, or some of them) as its new status.
fn merge_into(
    s: &ServiceInput,
    base: &[Condition],
    ingress: Vec<CompactString>,
    wanted: Vec<Wanted>,
    now: &Timestamp,
) -> ServiceStatusPlan {
    let conditions = merge(base, wanted, now, Some(s.generation));
    let changed = conditions != s.conditions || ingress != s.ingress;
    ServiceStatusPlan {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        ingress,
        conditions,
        changed,
    }
}

/// The status of a Service bound in one mode: its binding condition, the two IP conditions and
/// `AnnotationsValid`; the other mode's binding condition (`stale`) goes.
fn bound_status(
    s: &ServiceInput,
    ingress: Vec<CompactString>,
    binding: Wanted,
    [assigned, announced]: [Wanted; 2],
    issues: &[(&'static str, String)],
    now: &Timestamp,
    stale: &str,
) -> ServiceStatusPlan {
    let wanted = vec![binding, assigned, announced, annotations_condition(issues)];
    merged_status_without(s, ingress, wanted, now, stale)
}

/// `AnnotationsValid`: true, or false with the first issue's reason and every message.
fn annotations_condition(issues: &[(&'static str, String)]) -> Wanted {
    match issues.first() {
        None => Wanted::new(
            cond::ANNOTATIONS_VALID,
            True,
            cond::REASON_ANNOTATIONS_ACCEPTED,
            "annotations accepted",
        ),
        Some((reason, _)) => {
            let text: Vec<&str> = issues.iter().map(|(_, m)| m.as_str()).collect();
            Wanted::new(cond::ANNOTATIONS_VALID, False, reason, text.join("; "))
        }
    }
}

/// What to write to an object that exists: the parts that differ, or nothing.
fn update_action(spec_changed: bool, status_changed: bool) -> ChildAction {
    if spec_changed || status_changed {
        ChildAction::Update { spec: spec_changed, status: status_changed }
    } else {
        ChildAction::Keep
    }
}
