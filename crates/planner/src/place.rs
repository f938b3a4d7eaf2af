//! Node placement: per-Service rendezvous order with a bounded load.
//!
//! Each Service ranks its candidate nodes by `sha256("<namespace>/<name>#<node>")`, so
//! different Services prefer different nodes (the previous implementation ranked per class, so
//! every one-IP Service preferred the same node). A new child takes the first node in its
//! Service's order that holds none of its siblings and whose load in the class is below
//!
//! ```text
//!   cap = ceil(2·T / M)     T = IPs of the class to announce, M = candidate nodes of the class
//! ```
//!
//! Why the bound holds (one-IP Services, all using the class's M candidates): before placing an
//! IP fewer than T are placed, so fewer than T / cap ≤ M / 2 nodes are at the cap; at least one
//! node is below it, the walk finds it, and no node ever exceeds `cap ≤ 2·T/M + 1`, i.e. the
//! busiest node carries at most twice the average plus one. The same count leaves at least
//! `M/2 − (N−1)` usable nodes for a Service with N IPs, so the bound also holds while
//! `N ≤ M/2`. Children that keep their node are not moved to restore balance (minimal movement
//! wins): after nodes are *added* the bound holds for new placements only; after nodes are
//! *removed* it still holds, because the cap only grows when M shrinks.

use sha2::{Digest, Sha256};

/// Maximum backup nodes per child: the speakers walk them in order while the announcing node
/// is dead, and three failures at once before the hooks re-plan is already a rare event.
pub(crate) const MAX_BACKUPS: usize = 3;

/// Ranks `candidates` (node ids, with their names) by `sha256(key + "#" + name)`, ascending,
/// and keeps the first `keep` of them.
pub(crate) fn rendezvous(
    key: &str,
    candidates: &[usize],
    names: &[&str],
    keep: usize,
) -> Vec<usize> {
    let mut prefix = Sha256::new();
    prefix.update(key.as_bytes());
    prefix.update(b"#");
    // The first 128 bits of the digest decide; node ids follow name order, so equal prefixes
    // (odds 2^-128) still sort deterministically.
    let mut ranked: Vec<(u128, usize)> = candidates
        .iter()
        .map(|&node| {
            let mut hasher = prefix.clone();
            hasher.update(names[node].as_bytes());
            let digest = hasher.finalize();
            let mut head = [0u8; 16];
            head.copy_from_slice(&digest[..16]);
            (u128::from_be_bytes(head), node)
        })
        .collect();
    if keep < ranked.len() {
        ranked.select_nth_unstable(keep);
        ranked.truncate(keep);
    }
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, node)| node).collect()
}

/// How much of a Service's rendezvous order placement reads when it leads `ips` IPs: the first
/// fit for each IP is usually near the front, and the backups of an IP are the first
/// [`MAX_BACKUPS`] nodes other than it and its siblings, which this many nodes always hold.
/// Only when no node of this head is free and below the cap does placement rank all
/// candidates again ([`first_fit`] then [`choose`]). Keeping the head instead of the whole
/// order (all of a class's nodes) per Service saves most of the placement's memory.
pub(crate) fn head_len(ips: usize) -> usize {
    ips + 1 + MAX_BACKUPS
}

/// `ceil(2·T / M)`, at least 1.
pub(crate) fn load_cap(ips: usize, candidates: usize) -> u32 {
    if candidates == 0 {
        return u32::MAX;
    }
    let cap = (2 * ips).div_ceil(candidates).max(1);
    u32::try_from(cap).unwrap_or(u32::MAX)
}

/// Picks the node for a new child: the first node in `order` without a sibling and below the
/// cap; else the least loaded node without a sibling; else (more IPs than candidates) the node
/// with the fewest siblings, then the least load. Ties go to the better rendezvous rank.
pub(crate) fn choose(order: &[usize], siblings: &[usize], load: &[u32], cap: u32) -> Option<usize> {
    let free = |node: &&usize| !siblings.contains(node);
    first_fit(order, siblings, load, cap)
        .or_else(|| order.iter().filter(free).min_by_key(|&&node| load[node]).copied())
        .or_else(|| {
            order
                .iter()
                .min_by_key(|&&node| {
                    let count = siblings.iter().filter(|&&s| s == node).count();
                    (count, load[node])
                })
                .copied()
        })
}

/// The first node in `order` without a sibling and below the cap: [`choose`]'s first choice,
/// which a head of the order decides alone when it holds such a node.
pub(crate) fn first_fit(
    order: &[usize],
    siblings: &[usize],
    load: &[u32],
    cap: u32,
) -> Option<usize> {
    order.iter().copied().find(|node| !siblings.contains(node) && load[*node] < cap)
}

/// Backups of a child on `primary`: the rest of the order, nodes without a sibling first, so a
/// take-over keeps the Service's IPs on distinct nodes when it can.
pub(crate) fn backups(order: &[usize], primary: usize, siblings: &[usize]) -> Backups {
    let rest = || order.iter().copied().filter(move |&n| n != primary);
    let clear = rest().filter(|n| !siblings.contains(n));
    let crowded = rest().filter(|n| siblings.contains(n));
    let mut out = Backups::default();
    for node in clear.chain(crowded).take(MAX_BACKUPS) {
        // Node ids index the input's node list, which holds far fewer than 2^32 nodes.
        out.nodes[usize::from(out.len)] = u32::try_from(node).unwrap_or(u32::MAX);
        out.len += 1;
    }
    out
}

/// The backup nodes of one child, held in place: every slot of a run has them, and a vector
/// each would be a heap allocation per IP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Backups {
    nodes: [u32; MAX_BACKUPS],
    len: u8,
}

impl Backups {
    /// The node ids, in take-over order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes[..usize::from(self.len)].iter().map(|&n| n as usize)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rendezvous_order_depends_on_the_service() {
        let names = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];
        let all: Vec<usize> = (0..names.len()).collect();
        let firsts: std::collections::BTreeSet<usize> =
            (0..40).map(|i| rendezvous(&format!("ns/svc-{i}"), &all, &names, 1)[0]).collect();
        assert!(firsts.len() > 4, "first choices spread: {firsts:?}");
        let a = rendezvous("ns/a", &all, &names, names.len());
        assert_eq!(a, rendezvous("ns/a", &all, &names, names.len()));
        assert_eq!(rendezvous("ns/a", &all, &names, 3), a[..3]);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, all);
    }

    #[test]
    fn removing_a_candidate_keeps_the_relative_order() {
        let names = ["a", "b", "c", "d", "e"];
        let full = rendezvous("ns/s", &[0, 1, 2, 3, 4], &names, 5);
        let without: Vec<usize> = full.iter().copied().filter(|&n| n != 2).collect();
        assert_eq!(rendezvous("ns/s", &[0, 1, 3, 4], &names, 9), without);
    }

    #[test]
    fn choose_respects_siblings_cap_and_fallbacks() {
        let order = [3, 1, 0, 2];
        let load = [0, 5, 0, 2];
        assert_eq!(choose(&order, &[], &load, 2), Some(0), "3 and 1 at cap");
        assert_eq!(choose(&order, &[0], &load, 2), Some(2));
        assert_eq!(choose(&order, &[0, 2], &load, 2), Some(3), "least loaded non-sibling");
        assert_eq!(choose(&order, &[0, 1, 2, 3], &load, 2), Some(0), "fewest siblings");
        assert_eq!(choose(&[], &[], &load, 2), None);
    }

    proptest! {
        /// Placement from the head of an order decides as placement from the whole order:
        /// the first fit when the head has one, the backups always (siblings ≤ IPs led).
        #[test]
        fn the_head_of_an_order_decides_as_the_whole_order(
            order in prop::sample::subsequence((0..24usize).collect::<Vec<_>>(), 0..24).prop_shuffle(),
            load in prop::collection::vec(0u32..4, 24),
            cap in 1u32..4,
            ips in 1usize..6,
            sibling_picks in prop::collection::vec(0usize..24, 0..6),
        ) {
            let siblings: Vec<usize> =
                sibling_picks.iter().take(ips - 1).filter_map(|&i| order.get(i).copied()).collect();
            let head = &order[..order.len().min(head_len(ips))];
            let from_head = first_fit(head, &siblings, &load, cap)
                .or_else(|| choose(&order, &siblings, &load, cap));
            prop_assert_eq!(from_head, choose(&order, &siblings, &load, cap));
            if let Some(primary) = from_head {
                let mut with_primary = siblings.clone();
                with_primary.push(primary);
                prop_assert_eq!(
                    backups(head, primary, &with_primary),
                    backups(&order, primary, &with_primary)
                );
            }
        }
    }

    #[test]
    fn cap_and_backups() {
        assert_eq!(load_cap(10, 4), 5);
        assert_eq!(load_cap(1, 100), 1);
        assert_eq!(load_cap(3, 0), u32::MAX);
        let list = |b: Backups| b.iter().collect::<Vec<_>>();
        assert_eq!(list(backups(&[4, 2, 0, 1, 3], 2, &[0, 2])), [4, 1, 3]);
        assert_eq!(list(backups(&[4, 2, 0], 2, &[4, 2])), [0, 4]);
    }
}
