//! A node failing under a router: BFD (the router drops a dead node's routes long before the
//! hold timer would) and graceful restart (the router keeps a crashed node's routes, stale,
//! until it is back). Each pairs the router with a different daemon as the node.
//!
//! ```text
//!   r  192.0.2.1    the router (AS 64500)
//!   a  192.0.2.11   AS 64501, announces 203.0.113.10/32   (BFD, or graceful restart)
//!   b  192.0.2.12   AS 64501, announces 203.0.113.10/32   (neither: the control)
//! ```
//!
//! Root only: without root they print `SKIPPED` and pass, unless `METALLB_REQUIRE_WIRE_TESTS=1`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;
use netlab::router::{
    Announcement, Bfd, BfdState, Family, Neighbor, Router, RouterConfig, RouterKind, SessionState,
    next_hops,
};
use netlab::{Lab, Result};

const FAMILY: &str = "nlrtfail";
/// Hold time long enough that no wait of these tests can see it expire: whatever brings a
/// session down within [`DEADLINE`] is BFD, not the hold timer.
const HOLD: u16 = 90;
/// Bound of every wait; well below [`HOLD`] (see there).
const DEADLINE: Duration = Duration::from_secs(30);
/// BFD at 100 ms × 3: detection in 300 ms, the speed the speaker's tests need.
const BFD: Bfd =
    Bfd { min_rx: Duration::from_millis(100), min_tx: Duration::from_millis(100), multiplier: 3 };
/// Restart time announced (RFC 4724 §3): longer than any wait here, so stale routes stay.
const RESTART_TIME: u16 = 120;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

fn prefix() -> IpNet {
    "203.0.113.10/32".parse().expect("prefix")
}

enum Feature {
    Bfd,
    GracefulRestart,
}

fn neighbor(addr: &str, asn: u32, feature: Option<&Feature>) -> Neighbor {
    let n = Neighbor::new(ip(addr), asn).hold_time(HOLD);
    match feature {
        Some(Feature::Bfd) => n.bfd(BFD),
        Some(Feature::GracefulRestart) => n.graceful_restart(RESTART_TIME),
        None => n,
    }
}

fn node_config(addr: &str, feature: Option<&Feature>) -> RouterConfig {
    RouterConfig::new(64501, addr.parse::<Ipv4Addr>().expect("v4"))
        .kernel(false)
        .multipath(false)
        .listen(ip(addr))
        .neighbor(neighbor("192.0.2.1", 64500, feature))
        .announce(Announcement::new(prefix()))
}

/// Builds the lab and starts everything; `a` gets `feature`, `b` nothing.
fn setup(
    test: &str,
    router_kind: RouterKind,
    node_kind: RouterKind,
    feature: &Feature,
) -> Result<Option<(Lab, Router, Vec<Router>)>> {
    let mut programs: Vec<&str> = Vec::new();
    programs.extend(router_kind.programs());
    programs.extend(node_kind.programs());
    if !netlab::gate(test, &programs) {
        return Ok(None);
    }
    let tag = match feature {
        Feature::Bfd => format!("bfd{}", router_kind.label()),
        Feature::GracefulRestart => format!("gr{}", router_kind.label()),
    };
    let mut lab = Lab::new(FAMILY, &tag)?.with_deadline(DEADLINE);
    lab.add_host("r", "eth0", &["192.0.2.1/24"])?;
    lab.add_host("a", "eth0", &["192.0.2.11/24"])?;
    lab.add_host("b", "eth0", &["192.0.2.12/24"])?;
    let config = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
        .kernel(router_kind != RouterKind::Gobgp)
        .listen(ip("192.0.2.1"))
        .neighbor(neighbor("192.0.2.11", 64501, Some(feature)))
        .neighbor(neighbor("192.0.2.12", 64501, None));
    let router = Router::start(&mut lab, "r", router_kind, &config)?;
    let nodes = vec![
        Router::start(&mut lab, "a", node_kind, &node_config("192.0.2.11", Some(feature)))?,
        Router::start(&mut lab, "b", node_kind, &node_config("192.0.2.12", None))?,
    ];
    router.wait_established(&[ip("192.0.2.11"), ip("192.0.2.12")])?;
    let both: BTreeSet<IpAddr> = [ip("192.0.2.11"), ip("192.0.2.12")].into();
    router.wait_for("both paths", || {
        Ok::<_, netlab::Error>(next_hops(&router.routes(Family::Ipv4)?, &prefix()) == both)
    })?;
    Ok(Some((lab, router, nodes)))
}

fn bfd_detects_a_dead_node(
    test: &str,
    router_kind: RouterKind,
    node_kind: RouterKind,
) -> Result<()> {
    let Some((mut lab, router, nodes)) = setup(test, router_kind, node_kind, &Feature::Bfd)? else {
        return Ok(());
    };
    router.wait_for("BFD up with a", || {
        Ok::<_, netlab::Error>(router.bfd_peers()?.get(&ip("192.0.2.11")) == Some(&BfdState::Up))
    })?;
    // Both nodes die silently: cables pulled, so no FIN or NOTIFICATION reaches the router.
    lab.set_link("a", "eth0", false)?;
    lab.set_link("b", "eth0", false)?;
    let only_b: BTreeSet<IpAddr> = [ip("192.0.2.12")].into();
    let took = router.wait_for("a's session down and its path gone", || {
        let a = router.session(ip("192.0.2.11"))?.map(|s| s.state);
        let hops = next_hops(&router.routes(Family::Ipv4)?, &prefix());
        Ok::<_, netlab::Error>(a != Some(SessionState::Established) && hops == only_b)
    })?;
    // Printed, never asserted (a loaded machine is slower): cable pulled → path gone, as
    // seen by polling every 50 ms.
    println!("{test}: a's path gone {} ms after its cable was pulled", took.as_millis());
    // b, without BFD, is still believed alive: its hold timer (90 s) has not run out.
    let b = router.session(ip("192.0.2.12"))?.expect("b's session");
    assert_eq!(b.state, SessionState::Established, "b has no BFD; only its hold timer counts");
    assert_ne!(router.bfd_peers()?.get(&ip("192.0.2.11")), Some(&BfdState::Up));
    if router_kind != RouterKind::Gobgp {
        router.wait_for("the kernel route through b only", || {
            Ok::<_, netlab::Error>(router.kernel_next_hops(&prefix())? == only_b)
        })?;
    }
    for node in nodes {
        node.kill(&mut lab)?;
    }
    router.stop(&mut lab)?;
    lab.passed(test);
    Ok(())
}

fn graceful_restart_keeps_routes_stale(
    test: &str,
    router_kind: RouterKind,
    node_kind: RouterKind,
) -> Result<()> {
    let Some((mut lab, router, mut nodes)) =
        setup(test, router_kind, node_kind, &Feature::GracefulRestart)?
    else {
        return Ok(());
    };
    let a = nodes.remove(0);
    let a_config = a.config().clone();
    // A crash: kill -9. The kernel closes a's TCP connection, so the router sees the session
    // end at once, and as helper keeps a's path, stale.
    a.kill(&mut lab)?;
    let mut routes = Vec::new();
    router.wait_for("a's path kept as stale", || {
        routes = router.routes(Family::Ipv4)?;
        let a_down =
            router.session(ip("192.0.2.11"))?.map(|s| s.state) != Some(SessionState::Established);
        Ok::<_, netlab::Error>(
            a_down && routes.iter().any(|r| r.from == ip("192.0.2.11") && r.stale),
        )
    })?;
    let b_path = routes.iter().find(|r| r.from == ip("192.0.2.12")).expect("b's path");
    assert!(!b_path.stale, "b did not restart: {b_path:?}");
    if router_kind != RouterKind::Gobgp {
        let both: BTreeSet<IpAddr> = [ip("192.0.2.11"), ip("192.0.2.12")].into();
        assert_eq!(router.kernel_next_hops(&prefix())?, both, "still forwarding to a");
    }
    // a comes back: the session is re-established and its path is fresh again.
    let a = Router::start(&mut lab, "a", node_kind, &a_config)?;
    router.wait_established(&[ip("192.0.2.11")])?;
    router.wait_for("a's path fresh", || {
        let routes = router.routes(Family::Ipv4)?;
        Ok::<_, netlab::Error>(routes.iter().any(|r| r.from == ip("192.0.2.11") && !r.stale))
    })?;
    a.stop(&mut lab)?;
    for node in nodes {
        node.stop(&mut lab)?;
    }
    router.stop(&mut lab)?;
    lab.passed(test);
    Ok(())
}

#[test]
fn frr_router_bfd_detects_a_dead_bird_node() -> Result<()> {
    bfd_detects_a_dead_node(
        "frr_router_bfd_detects_a_dead_bird_node",
        RouterKind::Frr,
        RouterKind::Bird,
    )
}

#[test]
fn bird_router_bfd_detects_a_dead_frr_node() -> Result<()> {
    bfd_detects_a_dead_node(
        "bird_router_bfd_detects_a_dead_frr_node",
        RouterKind::Bird,
        RouterKind::Frr,
    )
}

#[test]
fn bird_router_keeps_a_crashed_frr_nodes_routes_stale() -> Result<()> {
    graceful_restart_keeps_routes_stale(
        "bird_router_keeps_a_crashed_frr_nodes_routes_stale",
        RouterKind::Bird,
        RouterKind::Frr,
    )
}

#[test]
fn frr_router_keeps_a_crashed_gobgp_nodes_routes_stale() -> Result<()> {
    graceful_restart_keeps_routes_stale(
        "frr_router_keeps_a_crashed_gobgp_nodes_routes_stale",
        RouterKind::Frr,
        RouterKind::Gobgp,
    )
}

#[test]
fn gobgp_router_keeps_a_crashed_bird_nodes_routes_stale() -> Result<()> {
    graceful_restart_keeps_routes_stale(
        "gobgp_router_keeps_a_crashed_bird_nodes_routes_stale",
        RouterKind::Gobgp,
        RouterKind::Bird,
    )
}
