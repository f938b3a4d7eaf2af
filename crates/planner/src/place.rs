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

/// Ranks `candidates` (node ids, with their names) by `sha256(key + "#" + name)`, ascending.
pub(crate) fn rendezvous(key: &str, candidates: &[usize], names: &[&str]) -> Vec<usize> {
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
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, node)| node).collect()
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
    order
        .iter()
        .filter(free)
        .find(|&&node| load[node] < cap)
        .or_else(|| order.iter().filter(free).min_by_key(|&&node| load[node]))
        .or_else(|| {
            order.iter().min_by_key(|&&node| {
                let count = siblings.iter().filter(|&&s| s == node).count();
                (count, load[node])
            })
        })
        .copied()
}

/// Backups of a child on `primary`: the rest of the order, nodes without a sibling first, so a
/// take-over keeps the Service's IPs on distinct nodes when it can.
pub(crate) fn backups(order: &[usize], primary: usize, siblings: &[usize]) -> Vec<usize> {
    let rest = || order.iter().copied().filter(move |&n| n != primary);
    let clear = rest().filter(|n| !siblings.contains(n));
    let crowded = rest().filter(|n| siblings.contains(n));
    clear.chain(crowded).take(MAX_BACKUPS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_order_depends_on_the_service() {
        let names = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];
        let all: Vec<usize> = (0..names.len()).collect();
        let firsts: std::collections::BTreeSet<usize> =
            (0..40).map(|i| rendezvous(&format!("ns/svc-{i}"), &all, &names)[0]).collect();
        assert!(firsts.len() > 4, "first choices spread: {firsts:?}");
        let a = rendezvous("ns/a", &all, &names);
        assert_eq!(a, rendezvous("ns/a", &all, &names));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, all);
    }

    #[test]
    fn removing_a_candidate_keeps_the_relative_order() {
        let names = ["a", "b", "c", "d", "e"];
        let full = rendezvous("ns/s", &[0, 1, 2, 3, 4], &names);
        let without: Vec<usize> = full.iter().copied().filter(|&n| n != 2).collect();
        assert_eq!(rendezvous("ns/s", &[0, 1, 3, 4], &names), without);
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

    #[test]
    fn cap_and_backups() {
        assert_eq!(load_cap(10, 4), 5);
        assert_eq!(load_cap(1, 100), 1);
        assert_eq!(load_cap(3, 0), u32::MAX);
        assert_eq!(backups(&[4, 2, 0, 1, 3], 2, &[0, 2]), vec![4, 1, 3]);
        assert_eq!(backups(&[4, 2, 0], 2, &[4, 2]), vec![0, 4]);
    }
}
