//! `cargo xtask demo` as a CI test: the seed scenario on this machine (real hooks, real
//! speakers in network namespaces, a client, a node failure), asserted on the demo's report.
//! Timings are printed, never asserted: they depend on the machine's load.
//!
//! Without root or `ip netns` it prints `SKIPPED: ...` and passes, unless
//! `METALLB_REQUIRE_WIRE_TESTS=1` (CI as root), which turns the skip into a failure.

use std::collections::BTreeSet;

use xtask::demo::{self, Options, Profile};

/// A quiet demo with this build's binaries, its namespaces tagged `ci`.
fn ci_options() -> Options {
    Options {
        quiet: true,
        handle_signals: false,
        tag: "ci".to_owned(),
        helper: env!("CARGO_BIN_EXE_xtask").into(),
        profile: Profile::Dev,
    }
}

const TEST: &str = "demo_seed_scenario_fails_over_to_the_first_backup_and_cleans_up";

#[test]
fn demo_seed_scenario_fails_over_to_the_first_backup_and_cleans_up() {
    if !netlab::gate(TEST, &[]) {
        return;
    }
    let options = ci_options();
    let report = demo::run(&xtask::repo_root(), &options).expect("the demo runs to the end");
    println!("{}", report.summary());

    // Three IPs, each answered by the node the hooks placed it on, three different nodes; the
    // client's kernel resolved each to that node's MAC (only the speaker answers ARP).
    assert_eq!(report.service_ips.len(), 3, "{report:#?}");
    let nodes: BTreeSet<&str> = report.placements.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(nodes, BTreeSet::from(["front-0", "front-1", "front-2"]), "{report:#?}");
    for p in &report.placements {
        assert_eq!(report.first_answers[&p.ip], p.node, "HTTP answer for {}", p.ip);
        assert_eq!(report.arp_answers[&p.ip], p.node, "ARP answer for {}", p.ip);
    }

    // front-0 fails: its IP is answered by its first backup, on the wire (neighbour entry)
    // and over HTTP; the other two IPs never miss a fetch.
    assert_eq!(report.failed_node, "front-0");
    assert!(!report.first_backup.is_empty(), "the failed IP had a backup");
    assert_eq!(report.neighbour_moved_to, report.first_backup, "{report:#?}");
    assert_eq!(report.answered_by, report.first_backup, "{report:#?}");
    for (ip, fetches) in &report.fetches {
        assert!(fetches.total > 0, "{ip} was fetched during the failover");
        if *ip != report.failed_ip {
            assert_eq!(fetches.failed, 0, "{ip} kept answering: {fetches:?}");
        }
    }

    // The hooks move the IP off the failed node; once it is back, the IPs are unchanged and
    // spread over three nodes again.
    assert_ne!(report.moved_to, report.failed_node);
    // While the returning node is held down, nothing moves back to it.
    assert!(
        report.held_placements.iter().all(|p| p.node != report.failed_node),
        "{:#?}",
        report.held_placements
    );
    let ips: Vec<_> = report.final_placements.iter().map(|p| p.ip).collect();
    let before: Vec<_> = report.placements.iter().map(|p| p.ip).collect();
    assert_eq!(ips, before, "no IP changed");
    let nodes: BTreeSet<&str> = report.final_placements.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(nodes.len(), 3, "{:#?}", report.final_placements);

    // Nothing left behind.
    assert!(report.leftover_namespaces.is_empty());
    let left = netlab::namespaces_with_prefix(&report.prefix).expect("ip netns list");
    assert!(left.is_empty(), "left behind: {left:?}");
    println!(
        "timings (informative): ARP entry moved after {:?}, answered by the backup after {:?}, \
         whole demo {:?}",
        report.neighbour_moved_after, report.answered_after, report.took
    );
    println!("RAN: {TEST} (root, network namespaces)");
}

const BGP_TEST: &str = "demo_bgp_spreads_over_three_nodes_survives_a_death_and_a_drain";

/// `cargo xtask demo --mode bgp`: real hooks, real speakers, FRR as the router, a client
/// behind it. Asserted: the story, never a timing.
#[test]
fn demo_bgp_spreads_over_three_nodes_survives_a_death_and_a_drain() {
    if !netlab::gate(BGP_TEST, netlab::router::RouterKind::Frr.programs()) {
        return;
    }
    let options = ci_options();
    let report = demo::bgp::run(&xtask::repo_root(), &options).expect("the BGP demo runs");
    println!("{}", report.summary());
    let fronts = ["front-0", "front-1", "front-2"];
    let all: Vec<String> = fronts.iter().map(|s| (*s).to_owned()).collect();

    // The IP comes from the pool, the hooks' announcement names the three front nodes, the
    // router's kernel route has them as next hops, and the client's requests (one UDP datagram
    // each, from a new source port) reach all three.
    assert_eq!(report.pool, "public");
    assert!(report.service_ip.to_string().starts_with("203.0.113."), "{report:#?}");
    assert_eq!(report.announced_by, all);
    assert_eq!(report.next_hops, all);
    assert_eq!(report.answers.keys().collect::<Vec<_>>(), fronts.iter().collect::<Vec<_>>());

    // front-0 dies: the router drops its next hop (BFD down, hold time 90 s not waited for) and
    // the other two answer. Requests hashed to it fail until then (counted and printed, not
    // asserted); none that started after the router dropped it fails.
    assert_eq!(report.failed_node, "front-0");
    assert_eq!(report.next_hops_after_failure, ["front-1", "front-2"]);
    assert_ne!(report.failed_bfd, Some(netlab::router::BfdState::Up), "{report:#?}");
    assert_eq!(report.failed_after_drop, 0, "{report:#?}");
    assert!(report.while_down.total > 0);
    assert_eq!(
        report.answers_while_down.keys().collect::<Vec<_>>(),
        ["front-1", "front-2"].iter().collect::<Vec<_>>()
    );

    // It comes back and answers again.
    assert_eq!(report.next_hops_after_return, all);
    assert!(report.answers_after_return.contains_key("front-0"), "{report:#?}");

    // front-1 is drained with SIGTERM: the router takes it out of the route while its session
    // is still up; once its speaker has exited it is taken off the network, and not one
    // request fails from SIGTERM to the end.
    assert_eq!(report.drained_node, "front-1");
    assert!(report.session_up_when_route_left, "{report:#?}");
    assert_eq!(report.next_hops_after_drain, ["front-0", "front-2"]);
    assert!(report.drain.total > 0);
    assert_eq!(report.drain.failed, 0, "{:#?}", report.drain_failures);
    assert!(!report.answers_while_draining.is_empty());

    // Nothing left behind.
    assert!(report.leftover_namespaces.is_empty());
    let left = netlab::namespaces_with_prefix(&report.prefix).expect("ip netns list");
    assert!(left.is_empty(), "left behind: {left:?}");
    println!(
        "timings (informative): router dropped the dead node after {:?}, took it back after \
         {:?}, drained node out of the route after {:?}, off the network after {:?}; whole \
         demo {:?}",
        report.dropped_after,
        report.returned_after,
        report.drain_left_route_after,
        report.drain_unplugged_after,
        report.took
    );
    println!("RAN: {BGP_TEST} (root, network namespaces, FRR)");
}
