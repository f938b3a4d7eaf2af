//! Placement of the L2 IPs on nodes, after allocation (see [`crate::place`] for the rules and
//! their bound).
//!
//! ```text
//!  the allocation's ownership ─► units: one per distinct IP, led by its first slot
//!  ─► keep: a unit keeps its node while eligible and within its sibling share
//!  ─► choose: the others by rendezvous order under their class's load cap
//!  ─► spread: every holder of a unit gets its node and backups
//! ```
//!
//! Units are visited in slot order in every step, so the result is a pure function of the
//! input.

use std::collections::BTreeMap;

use super::{HoldDownRule, Planner, Slot, Svc};
use crate::allocate::{Alloc, id32};
use crate::model::TrafficPolicy;
use crate::place;

/// One unit per distinct IP, in the order of its leader: sharers follow the first holder (an
/// IP has one announcer). The leader is the first slot, not the first assigned, so that a
/// re-plan (where the allocation's passes assign in another order) picks the same.
struct Units {
    /// Whether a slot leads its IP's unit.
    leads: Vec<bool>,
    /// The other holders of a shared IP, by leader, in slot order.
    followers: BTreeMap<usize, Vec<u32>>,
}

impl Units {
    /// Consumes the allocation's indexes, which are not needed past this point, before the
    /// placement allocates its own.
    fn new(alloc: Alloc, slots: usize) -> Self {
        let mut leads = vec![false; slots];
        let mut followers = BTreeMap::new();
        let Alloc { leaders, followers: mut shared } = alloc;
        for (ip, leader) in leaders {
            let leader = leader as usize;
            leads[leader] = true;
            if let Some(rest) = shared.remove(&ip) {
                followers.insert(leader, rest);
            }
        }
        Units { leads, followers }
    }

    /// The leaders, in slot order.
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.leads.iter().enumerate().filter(|&(_, &leads)| leads).map(|(sid, _)| sid)
    }

    /// The slots holding `leader`'s IP: the leader, then the others in slot order.
    fn holders(&self, leader: usize) -> impl Iterator<Item = usize> + '_ {
        let rest = self.followers.get(&leader).into_iter().flatten().map(|&f| f as usize);
        std::iter::once(leader).chain(rest)
    }
}

/// The working state of one placement.
pub(super) struct Placement {
    units: Units,
    /// Units per class: the load cap's input, and the class status's count.
    pub(super) ips_per_class: Vec<usize>,
    /// Units per Service.
    led: Vec<usize>,
    /// Per class, the most units one node takes (see [`place::load_cap`]).
    caps: Vec<u32>,
    /// Per class and node, the units placed so far.
    load: Vec<Vec<u32>>,
    /// Per Service, the nodes its units took so far, with repeats.
    used: Vec<Vec<usize>>,
    /// Per Service, the head of its rendezvous order over its candidates (see
    /// [`place::head_len`]), computed once.
    heads: Vec<Vec<usize>>,
    /// Per Service, how many candidates it has.
    candidate_count: Vec<usize>,
}

impl Placement {
    pub(super) fn new(planner: &Planner<'_>, slots: &[Slot], alloc: Alloc) -> Self {
        let units = Units::new(alloc, slots.len());
        let (svcs, classes) = (&planner.svcs, &planner.classes);
        let mut ips_per_class = vec![0usize; classes.len()];
        let mut led = vec![0usize; svcs.len()];
        for leader in units.iter() {
            let s = slots[leader].svc();
            ips_per_class[svcs[s].class] += 1;
            led[s] += 1;
        }
        let caps = classes
            .iter()
            .zip(&ips_per_class)
            .map(|(c, &ips)| place::load_cap(ips, c.candidates.len()))
            .collect();
        let mut candidate_count = vec![0usize; svcs.len()];
        let heads = svcs
            .iter()
            .zip(&led)
            .zip(&mut candidate_count)
            .map(|((svc, &count), candidate_count)| {
                if count == 0 {
                    return Vec::new();
                }
                let candidates = planner.eligible(svc, HoldDownRule::Avoid);
                *candidate_count = candidates.len();
                planner.rendezvous(svc, &candidates, place::head_len(count))
            })
            .collect();
        Placement {
            units,
            ips_per_class,
            led,
            caps,
            load: vec![vec![0u32; planner.nodes.len()]; classes.len()],
            used: vec![Vec::new(); svcs.len()],
            heads,
            candidate_count,
        }
    }

    /// Keeps nodes that are still eligible and not taken by a sibling. With more IPs than
    /// candidates a node may carry up to ceil(N / candidates) siblings: what `place::choose`
    /// produces, so a re-plan keeps it.
    pub(super) fn keep_nodes(&mut self, planner: &Planner<'_>, slots: &mut [Slot]) {
        for leader in self.units.iter() {
            let s = slots[leader].svc();
            let svc = &planner.svcs[s];
            let per_node = self.led[s].div_ceil(self.candidate_count[s].max(1));
            let kept = self.units.holders(leader).find_map(|sid| {
                let ex = planner.existing[slots[sid].existing()?];
                let name = ex.status.node.as_deref().or(ex.preferred_node.as_deref())?;
                let node = *planner.node_id.get(name)?;
                let siblings = self.used[s].iter().filter(|&&n| n == node).count();
                (planner.is_candidate(svc, node) && siblings < per_node).then_some(node)
            });
            if let Some(node) = kept {
                slots[leader].node = Some(id32(node));
                self.used[s].push(node);
                self.load[svc.class][node] += 1;
            }
        }
    }

    /// Places the units without a node.
    pub(super) fn choose_nodes(&mut self, planner: &Planner<'_>, slots: &mut [Slot]) {
        let any_held = planner.held.contains(&true);
        for leader in self.units.iter() {
            if slots[leader].node.is_some() {
                continue;
            }
            let s = slots[leader].svc();
            let svc = &planner.svcs[s];
            let (used, class_load, cap) =
                (&self.used[s], &self.load[svc.class], self.caps[svc.class]);
            let had_node = self.units.holders(leader).any(|sid| {
                slots[sid].existing().is_some_and(|e| {
                    let ex = &planner.existing[e];
                    ex.status.node.is_some() || ex.preferred_node.is_some()
                })
            });
            let chosen = if any_held && !had_node {
                // An IP that never had a node breaks no connection by going to a held node.
                let all = planner.eligible(svc, HoldDownRule::Ignore);
                let order = planner.rendezvous(svc, &all, usize::MAX);
                place::first_fit(&order, used, class_load, cap)
                    .or_else(|| place::choose(&order, used, class_load, cap))
            } else {
                let head = &self.heads[s];
                place::first_fit(head, used, class_load, cap).or_else(|| {
                    if head.len() == self.candidate_count[s] {
                        place::choose(head, used, class_load, cap)
                    } else {
                        let candidates = planner.eligible(svc, HoldDownRule::Avoid);
                        let order = planner.rendezvous(svc, &candidates, usize::MAX);
                        place::choose(&order, used, class_load, cap)
                    }
                })
            };
            if let Some(node) = chosen {
                slots[leader].node = Some(id32(node));
                self.used[s].push(node);
                self.load[svc.class][node] += 1;
            }
        }
    }

    /// Gives every holder of a placed unit its node and backups.
    pub(super) fn spread(&self, slots: &mut [Slot]) {
        for leader in self.units.iter() {
            let Some(node) = slots[leader].node() else { continue };
            let s = slots[leader].svc();
            let backups = place::backups(&self.heads[s], node, &self.used[s]);
            for sid in self.units.holders(leader) {
                slots[sid].node = Some(id32(node));
                slots[sid].backups = backups;
            }
        }
    }
}

impl Planner<'_> {
    /// The nodes that may announce `svc`: its class's candidates, with
    /// `externalTrafficPolicy: Local` only those holding a ready endpoint. Under
    /// [`HoldDownRule::Avoid`], nodes in their failback hold-down are left out while another
    /// one remains: an IP that moves (and every backup) avoids them, while they keep what they
    /// hold ([`Placement::keep_nodes`]).
    fn eligible(&self, svc: &Svc<'_>, rule: HoldDownRule) -> Vec<usize> {
        let base = &self.classes[svc.class].candidates;
        let all: Vec<usize> = match svc.input.external_traffic_policy {
            TrafficPolicy::Cluster => base.clone(),
            TrafficPolicy::Local => base
                .iter()
                .copied()
                .filter(|&n| svc.input.ready_endpoint_nodes.contains(self.node_names[n]))
                .collect(),
        };
        if rule == HoldDownRule::Ignore || all.iter().all(|&n| self.held[n]) {
            return all;
        }
        all.into_iter().filter(|&n| !self.held[n]).collect()
    }

    /// Whether `node` may announce `svc`, hold-down aside.
    fn is_candidate(&self, svc: &Svc<'_>, node: usize) -> bool {
        self.classes[svc.class].candidates.binary_search(&node).is_ok()
            && (svc.input.external_traffic_policy == TrafficPolicy::Cluster
                || svc.input.ready_endpoint_nodes.contains(self.node_names[node]))
    }

    /// The first `len` of `candidates` in `svc`'s rendezvous order.
    fn rendezvous(&self, svc: &Svc<'_>, candidates: &[usize], len: usize) -> Vec<usize> {
        place::rendezvous(&svc.key().to_string(), candidates, &self.node_names, len)
    }
}
