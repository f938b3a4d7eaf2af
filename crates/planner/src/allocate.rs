//! IP allocation: one stage for both modes, so that no address is ever given to two Services,
//! whether they are bound to an L2 class or to a BGP pool.
//!
//! ```text
//!  Stage { sources, claimants, claims, requests }
//!    ─► pass A kept IPs ─► pass P published IPs ─► pass B requested IPs
//!    ─► pass C shared or lowest free ─► refusals, sharing, exhaustion ─► Allocation
//! ```
//!
//! A [`Source`] is the address pool of an L2 class or of a BGP pool. One free set covers every
//! source, so an address two sources contain is handed out once. A Service is a [`Claimant`]
//! bound to one source; each IP it wants is a [`Claim`]. An IP is shared only by claims of one
//! source, sharing key and lane whose Services are compatible (`compatible`).
//!
//! Claims are processed in their order in [`Stage::claims`] (the caller sorts Services by
//! namespace and name, claims by index), so the result is a pure function of the input.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::annotations::sharing_key;
use crate::diag::RequestRejection;
use crate::model::{ServiceInput, TrafficPolicy};
use crate::pool::{Addr, Families, Family, FreeSet, Interval, Pool};

/// Which kind of object a source is, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// `MetalLoadBalancerClass.spec.addressPool`.
    Class,
    /// `MetalLoadBalancerPool.spec.addresses`.
    BgpPool,
}

/// Where addresses come from.
pub(crate) struct Source<'a> {
    pub(crate) kind: SourceKind,
    pub(crate) name: &'a str,
    /// A copy: the stage borrows nothing from the planner's working state, which the
    /// caller updates from the outcome while it still reads the stage.
    pub(crate) pool: Pool,
    /// `avoidBuggyIPs`: IPv4 addresses ending in `.0` or `.255` are never given (some old
    /// routers and clients treat them as network or broadcast addresses of a /24).
    pub(crate) avoid_buggy: bool,
}

impl Source<'_> {
    /// Whether the source may give `ip`.
    pub(crate) fn admits(&self, ip: Addr) -> bool {
        self.pool.contains(ip) && !(self.avoid_buggy && is_buggy(ip))
    }

    /// The refusal of an address the source does not admit.
    pub(crate) fn outside(&self) -> RequestRejection {
        match self.kind {
            SourceKind::Class => RequestRejection::OutsidePool { class: self.name.to_owned() },
            SourceKind::BgpPool => RequestRejection::OutsideBgpPool { pool: self.name.to_owned() },
        }
    }
}

/// An IPv4 address ending in `.0` or `.255`.
pub(crate) fn is_buggy(ip: Addr) -> bool {
    ip.family == Family::V4 && matches!(ip.value & 0xff, 0 | 0xff)
}

/// Which planner entry a claimant or claim stands for; the stage only carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A bound L2 Service (`svcs`) or one of its slots.
    L2(usize),
    /// A BGP-bound Service (`bgp_svcs`) or one of its slots.
    Bgp(usize),
}

/// One Service as the allocator sees it.
pub(crate) struct Claimant<'a> {
    /// The Service's entry; its claims' slots are of the same mode.
    pub(crate) owner: Owner,
    pub(crate) input: &'a ServiceInput,
    /// Index into [`Stage::sources`].
    pub(crate) source: u32,
    /// Its claims in [`Stage::claims`], by index.
    pub(crate) claims: Range<u32>,
}

impl Claimant<'_> {
    /// Its claims' ids.
    pub(crate) fn claim_ids(&self) -> Range<usize> {
        self.claims.start as usize..self.claims.end as usize
    }
}

/// One IP a Service wants. There is one per public IP of a large cluster, so its fields are
/// as narrow as their ranges allow (20 bytes): ids fit in 32 bits, as the planner's vectors
/// could not hold 2^32 entries in memory anyway.
pub(crate) struct Claim {
    /// Index into [`Stage::claimants`].
    pub(crate) claimant: u32,
    /// The planner's slot, of the claimant's mode (see [`Stage::owner`]).
    pub(crate) slot: u32,
    /// Which of the Service's IPs (0-based), for messages.
    pub(crate) index: u32,
    /// IPs are shared only between claims of one lane: L2 shares by index, BGP by family.
    pub(crate) lane: u32,
    /// Families this claim may get, in preference order; empty allows both.
    pub(crate) families: Families,
}

const _: () = assert!(std::mem::size_of::<Claim>() == 20);

/// The IP a claim's existing object holds.
pub(crate) struct Kept {
    pub(crate) claim: u32,
    pub(crate) ip: Addr,
}

/// The stage's input.
pub(crate) struct Stage<'a> {
    pub(crate) sources: Vec<Source<'a>>,
    /// Sorted by namespace and name; their claims are contiguous and in this order.
    pub(crate) claimants: Vec<Claimant<'a>>,
    pub(crate) claims: Vec<Claim>,
    /// The IPs existing objects hold, by claim id, ascending. Apart from the claims because a
    /// first run has none: a claim is then 20 bytes instead of 48 at the run's peak.
    pub(crate) kept: Vec<Kept>,
    /// The validated request of a claim, by claim id. Apart from the claims because few
    /// Services request IPs and a request is larger than the rest of a claim.
    pub(crate) requests: BTreeMap<usize, Result<Addr, RequestRejection>>,
}

impl Stage<'_> {
    /// The planner's slot `claim` stands for.
    pub(crate) fn owner(&self, claim: usize) -> Owner {
        let c = &self.claims[claim];
        let slot = c.slot as usize;
        match self.claimants[c.claimant as usize].owner {
            Owner::L2(_) => Owner::L2(slot),
            Owner::Bgp(_) => Owner::Bgp(slot),
        }
    }
}

/// A 32-bit id of an entry of a planner vector (see [`Claim`]).
pub(crate) fn id32(id: usize) -> u32 {
    u32::try_from(id).expect("a planner vector holds fewer than 2^32 entries")
}

/// What happened to one claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Grant {
    /// No IP yet (or none left).
    #[default]
    Pending,
    /// This IP.
    Ip(Addr),
    /// Its request was refused: it stays without IP.
    Rejected,
}

// As small as the address: one per public IP.
const _: () = assert!(std::mem::size_of::<Grant>() == std::mem::size_of::<Addr>());

impl Grant {
    /// The IP granted, if any.
    pub(crate) fn ip(self) -> Option<Addr> {
        match self {
            Grant::Ip(ip) => Some(ip),
            Grant::Pending | Grant::Rejected => None,
        }
    }
}

/// Something the status and the diagnostics must say, in the order it was found.
pub(crate) enum Event {
    /// A kept IP is held by a Service the claim may not share with; the claim got another.
    Conflict { claim: usize, ip: Addr, holder: usize },
    /// A request was refused.
    Refused { claim: usize, why: RequestRejection },
    /// Same sharing key, but the Services are not compatible.
    SharingRefused { claim: usize, key: String, with: usize },
    /// The claimant's source ran out.
    Exhausted { claimant: usize },
}

/// IP ownership by claim id.
#[derive(Default)]
pub(crate) struct Alloc {
    /// IP → the first of the claims holding it in claim order (the leader, which announces it).
    /// An entry per allocated IP, the largest map of a run; the other holders of the few
    /// shared IPs are apart, and ids are 32-bit (see [`Claim`]), so that each entry is 28 bytes.
    pub(crate) leaders: BTreeMap<Addr, u32>,
    /// IP → the other claims holding it, in claim order: shared IPs only.
    pub(crate) followers: BTreeMap<Addr, Vec<u32>>,
}

impl Alloc {
    fn is_held(&self, ip: Addr) -> bool {
        self.leaders.contains_key(&ip)
    }

    /// The claims holding `ip`, in claim order.
    fn holders(&self, ip: Addr) -> impl Iterator<Item = usize> + '_ {
        let rest = self.followers.get(&ip).into_iter().flatten();
        self.leaders.get(&ip).into_iter().chain(rest).map(|&c| c as usize)
    }

    /// Adds `claim` to the holders of `ip`; true when it is the first.
    fn add(&mut self, claim: usize, ip: Addr) -> bool {
        let claim = id32(claim);
        match self.leaders.entry(ip) {
            Entry::Vacant(e) => {
                e.insert(claim);
                true
            }
            Entry::Occupied(mut e) => {
                let follower =
                    if claim < *e.get() { std::mem::replace(e.get_mut(), claim) } else { claim };
                let rest = self.followers.entry(ip).or_default();
                rest.insert(rest.partition_point(|&x| x < follower), follower);
                false
            }
        }
    }

    /// Maps claim ids by `f` in place (a copy would double the largest map of a run at its
    /// peak); holders `f` drops are left out. `f` must keep the order of the claims it keeps,
    /// and an IP's holders must be all kept or all dropped (IPs are shared within one source
    /// only).
    pub(crate) fn map_in_place(&mut self, f: impl Fn(usize) -> Option<usize>) {
        let remap = |c: &mut u32| f(*c as usize).map(|to| *c = id32(to)).is_some();
        self.leaders.retain(|_, c| remap(c));
        self.followers.retain(|_, rest| rest.iter_mut().all(remap));
    }
}

/// The stage's output.
pub(crate) struct Allocation {
    /// Per claim, in claim order.
    pub(crate) grants: Vec<Grant>,
    pub(crate) alloc: Alloc,
    pub(crate) events: Vec<Event>,
}

/// Runs the passes over `stage`.
pub(crate) fn allocate(stage: &Stage<'_>) -> Allocation {
    let mut run = Run {
        stage,
        free: FreeSet::new(stage.sources.iter().map(|s| &s.pool)),
        grants: vec![Grant::Pending; stage.claims.len()],
        alloc: Alloc::default(),
        shareable: BTreeMap::new(),
        events: Vec::new(),
    };
    run.keep_ips();
    run.keep_published();
    let refused = run.grant_requests();
    let exhausted = run.allocate_rest();
    run.report_refusals(refused);
    run.report_sharing();
    run.events.extend(exhausted.into_iter().map(|claimant| Event::Exhausted { claimant }));
    Allocation { grants: run.grants, alloc: run.alloc, events: run.events }
}

/// Why a requested IP was refused, before the final holders are known.
enum Refusal {
    /// Syntax, pool or family.
    Invalid(RequestRejection),
    /// Held by Services it may not share with.
    Taken(Addr),
}

/// Working state of one allocation.
struct Run<'s, 'a> {
    stage: &'s Stage<'a>,
    free: FreeSet,
    grants: Vec<Grant>,
    alloc: Alloc,
    /// `(source, sharing key, lane)` → IPs other Services with that key may join.
    /// A set, so that the order (lowest IP first) does not depend on which pass assigned it.
    shareable: BTreeMap<(u32, String, u32), BTreeSet<Addr>>,
    events: Vec<Event>,
}

impl Run<'_, '_> {
    fn claimant_id(&self, claim: usize) -> usize {
        self.stage.claims[claim].claimant as usize
    }

    fn claimant_of(&self, claim: usize) -> &Claimant<'_> {
        &self.stage.claimants[self.claimant_id(claim)]
    }

    fn source_of(&self, claim: usize) -> &Source<'_> {
        &self.stage.sources[self.claimant_of(claim).source as usize]
    }

    fn ip_of(&self, claim: usize) -> Option<Addr> {
        self.grants[claim].ip()
    }

    /// Whether `claim` may hold `ip` at all: in its source and of an allowed family.
    fn fits(&self, claim: usize, ip: Addr) -> bool {
        self.source_of(claim).admits(ip)
            && family_ok(self.stage.claims[claim].families.as_slice(), ip)
    }

    fn assign(&mut self, claim: usize, ip: Addr) {
        self.grants[claim] = Grant::Ip(ip);
        let first = self.alloc.add(claim, ip);
        let claimant = self.claimant_of(claim);
        if let (Some(key), true) = (sharing_key(claimant.input), first) {
            let lane = self.stage.claims[claim].lane;
            self.shareable.entry((claimant.source, key.to_owned(), lane)).or_default().insert(ip);
        }
    }

    /// Takes `ip` for `claim` if it is free or legally shared.
    fn try_take(&mut self, claim: usize, ip: Addr) -> bool {
        self.free.take(ip) || (self.alloc.is_held(ip) && self.can_share(claim, ip).is_ok())
    }

    /// Whether `claim` may join the holders of `ip`: same source, key and lane, another
    /// Service, and compatible with every holder. `Err` names an incompatible holder's
    /// claimant.
    fn can_share(&self, claim: usize, ip: Addr) -> Result<(), usize> {
        if !self.alloc.is_held(ip) {
            return Ok(());
        }
        let (claims, claimants) = (&self.stage.claims, &self.stage.claimants);
        let mine = &claims[claim];
        let me = &claimants[mine.claimant as usize];
        let key = sharing_key(me.input);
        // The first incompatible holder in Service order, not holder order (which depends on
        // the pass that assigned the IP), so messages are the same on every re-plan.
        let mut refused: Option<usize> = None;
        for h in self.alloc.holders(ip) {
            let other_index = claims[h].claimant as usize;
            let other = &claimants[other_index];
            let legal = other_index != mine.claimant as usize
                && other.source == me.source
                && claims[h].lane == mine.lane
                && key.is_some()
                && sharing_key(other.input) == key
                && compatible(me.input, other.input);
            if !legal {
                refused = Some(refused.map_or(other_index, |r| r.min(other_index)));
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// Pass A: an IP stays with its object while it is in the source, of an allowed family,
    /// agrees with the request for its index, and is not held by a Service it may not share
    /// with.
    fn keep_ips(&mut self) {
        for kept in &self.stage.kept {
            let (claim, ip) = (kept.claim as usize, kept.ip);
            let matches_request = match self.stage.requests.get(&claim) {
                None => true,
                Some(Ok(addr)) => *addr == ip,
                Some(Err(_)) => false,
            };
            if !self.fits(claim, ip) || !matches_request {
                continue;
            }
            if self.free.take(ip) {
                self.assign(claim, ip);
            } else if self.alloc.is_held(ip) {
                match self.can_share(claim, ip) {
                    Ok(()) => self.assign(claim, ip),
                    Err(holder) => self.events.push(Event::Conflict { claim, ip, holder }),
                }
            }
        }
    }

    /// Pass P: the IPs a Service publishes (`status.loadBalancer.ingress`) go back to it before
    /// anything is requested or handed out. An object can vanish while its Service keeps
    /// serving — the release manager deleting the previous implementation's children after
    /// an upgrade, a person deleting one — and its IP is in the Service's DNS records: it must
    /// come back to the same Service, never to another one.
    ///
    /// Each claim without an IP takes the next published IP its Service does not hold yet, in
    /// published (index) order, under the rules of pass A (in the source, of an allowed family,
    /// free or legally shared). A claim with a request only takes its requested IP here; the
    /// IPs other claims of the Service request are left to them.
    fn keep_published(&mut self) {
        for claimant in 0..self.stage.claimants.len() {
            let range = self.stage.claimants[claimant].claim_ids();
            let mut published = self.published(claimant);
            if published.is_empty() {
                continue;
            }
            let requested: Vec<Addr> = range
                .clone()
                .filter_map(|c| self.stage.requests.get(&c).and_then(|r| r.as_ref().ok()).copied())
                .collect();
            for claim in range {
                if self.ip_of(claim).is_some() || published.is_empty() {
                    continue;
                }
                let families = self.stage.claims[claim].families;
                let wanted: Vec<Addr> = match self.stage.requests.get(&claim) {
                    Some(Ok(ip)) => published.iter().copied().filter(|p| p == ip).collect(),
                    Some(Err(_)) => Vec::new(),
                    None => published.iter().copied().filter(|p| !requested.contains(p)).collect(),
                };
                let taken = wanted
                    .into_iter()
                    .filter(|&ip| family_ok(families.as_slice(), ip))
                    .find(|&ip| self.try_take(claim, ip));
                if let Some(ip) = taken {
                    self.assign(claim, ip);
                    published.retain(|&p| p != ip);
                }
            }
        }
    }

    /// The published IPs of a claimant it does not hold yet and one of its claims may hold,
    /// once each, in published order.
    fn published(&self, claimant: usize) -> Vec<Addr> {
        let c = &self.stage.claimants[claimant];
        let mut out: Vec<Addr> = Vec::new();
        for ip in c.input.ingress.iter().filter_map(|t| Addr::parse(t.trim())) {
            let held = c.claim_ids().any(|claim| self.ip_of(claim) == Some(ip));
            if !held && !out.contains(&ip) && c.claim_ids().any(|claim| self.fits(claim, ip)) {
                out.push(ip);
            }
        }
        out
    }

    /// Pass B: requested IPs that are free or legally shared. Refusals are reported after
    /// pass C: "taken by" names the first final holder in Service order, which a re-plan
    /// (where the passes assign in another order) reproduces.
    fn grant_requests(&mut self) -> Vec<(usize, Refusal)> {
        let mut refused = Vec::new();
        for (&claim, request) in &self.stage.requests {
            if self.ip_of(claim).is_some() {
                continue;
            }
            match request {
                Ok(ip) if self.try_take(claim, *ip) => self.assign(claim, *ip),
                outcome => {
                    self.grants[claim] = Grant::Rejected;
                    let refusal = match outcome {
                        Ok(ip) => Refusal::Taken(*ip),
                        Err(why) => Refusal::Invalid(why.clone()),
                    };
                    refused.push((claim, refusal));
                }
            }
        }
        refused
    }

    /// Pass C: join a compatible IP of the same sharing key and lane, else take the lowest
    /// free address of the source. Returns the claimants the source could not serve.
    fn allocate_rest(&mut self) -> BTreeSet<usize> {
        let mut exhausted = BTreeSet::new();
        for claim in 0..self.stage.claims.len() {
            if self.grants[claim] != Grant::Pending {
                continue;
            }
            if let Some(ip) =
                self.offers(claim).into_iter().find(|&ip| self.can_share(claim, ip).is_ok())
            {
                self.assign(claim, ip);
                continue;
            }
            let source = self.source_of(claim);
            let families = self.stage.claims[claim].families;
            match lowest_free(&self.free, source, families.as_slice()) {
                Some(ip) => {
                    self.free.take(ip);
                    self.assign(claim, ip);
                }
                None => {
                    exhausted.insert(self.claimant_id(claim));
                }
            }
        }
        exhausted
    }

    /// IPs of the claim's source, sharing key and lane that others hold and of a family the
    /// claim allows, lowest first. (Without the family check an IPv6-only Service whose turn
    /// came before an IPv4 holder's would join its IPv4 address on the next plan.)
    fn offers(&self, claim: usize) -> BTreeSet<Addr> {
        let claimant = self.claimant_of(claim);
        let Some(key) = sharing_key(claimant.input) else { return BTreeSet::new() };
        let (lane, families) = (self.stage.claims[claim].lane, self.stage.claims[claim].families);
        let Some(offers) = self.shareable.get(&(claimant.source, key.to_owned(), lane)) else {
            return BTreeSet::new();
        };
        offers.iter().copied().filter(|&ip| family_ok(families.as_slice(), ip)).collect()
    }

    /// Turns refused requests into events.
    fn report_refusals(&mut self, refused: Vec<(usize, Refusal)>) {
        for (claim, refusal) in refused {
            let why = match refusal {
                Refusal::Invalid(why) => why,
                Refusal::Taken(ip) => {
                    let holder = self.alloc.holders(ip).map(|x| self.claimant_id(x)).min();
                    match holder {
                        Some(h) => {
                            RequestRejection::Taken { by: self.stage.claimants[h].input.key() }
                        }
                        // Not free and held by nobody cannot happen for an address of the
                        // source; say the closest true thing rather than panic.
                        None => self.source_of(claim).outside(),
                    }
                }
            };
            self.events.push(Event::Refused { claim, why });
        }
    }

    /// Sharing refusals are judged on the final allocation, not inside a pass, so that
    /// re-planning (where the IP is simply kept) reports the same thing.
    fn report_sharing(&mut self) {
        for claim in 0..self.stage.claims.len() {
            let (Some(key), Some(ip)) =
                (sharing_key(self.claimant_of(claim).input), self.ip_of(claim))
            else {
                continue;
            };
            if self.alloc.followers.contains_key(&ip) {
                continue;
            }
            let refused = self
                .offers(claim)
                .into_iter()
                .filter(|&other| other != ip)
                .find_map(|other| self.can_share(claim, other).err());
            if let Some(with) = refused {
                self.events.push(Event::SharingRefused { claim, key: key.to_owned(), with });
            }
        }
    }
}

/// The sharing rule: no common (protocol, port), and both `Cluster` or the same selector.
fn compatible(a: &ServiceInput, b: &ServiceInput) -> bool {
    let policies = (a.external_traffic_policy == TrafficPolicy::Cluster
        && b.external_traffic_policy == TrafficPolicy::Cluster)
        || a.selector == b.selector;
    // Port lists are short and this runs only for Services that ask to share an IP: a direct
    // comparison costs less than a set per Service held for the whole run.
    policies && a.ports.iter().all(|p| b.ports.iter().all(|q| p.identity() != q.identity()))
}

pub(crate) fn family_ok(families: &[Family], ip: Addr) -> bool {
    families.is_empty() || families.contains(&ip.family)
}

/// The lowest free address `source` admits, of `families` in preference order.
fn lowest_free(free: &FreeSet, source: &Source<'_>, families: &[Family]) -> Option<Addr> {
    if !source.avoid_buggy {
        return free.lowest_in(&source.pool, families);
    }
    let all = [Family::V4, Family::V6];
    let order = if families.is_empty() { &all[..] } else { families };
    let intervals = source.pool.intervals();
    order.iter().find_map(|&family| {
        intervals.iter().filter(|iv| iv.family == family).find_map(|iv| lowest_admitted(free, iv))
    })
}

/// The lowest free address of `iv` that is not buggy. Each skipped address is `.255` or `.0`,
/// and after a skip the search resumes past it, so at most two skips precede a hit within a
/// run of free addresses.
fn lowest_admitted(free: &FreeSet, iv: &Interval) -> Option<Addr> {
    let mut rest = *iv;
    loop {
        let found = free.lowest_in_interval(&rest)?;
        if !is_buggy(found) {
            return Some(found);
        }
        if found.value >= rest.end {
            return None;
        }
        rest.start = found.value + 1;
    }
}
