//! BGP mode on the wire: three nodes run `metallb-speaker --mode bgp` with the file source;
//! BIRD 2, FRR (bgpd, bfdd, zebra) or GoBGP is the router, multipath on.
//!
//! ```text
//!   r   192.0.2.1    AS 64500, graceful shutdown honoured (GRACEFUL_SHUTDOWN → low pref)
//!   n1  192.0.2.11   AS 64501 ┐
//!   n2  192.0.2.12   AS 64501 ├ each announces 203.0.113.10/32 (BFD 100 ms × 3 with r)
//!   n3  192.0.2.13   AS 64501 ┘ n1 also tries 198.51.100.7, outside its pool: never announced
//! ```
//!
//! The story: three paths with the right attributes in the router's table and ECMP over the
//! three in its kernel; n3 stops announcing the IP (its file changes) and the router keeps
//! two; n1 dies (cable pulled, SIGKILL) and BFD makes the router drop it long before the 90 s
//! hold timer; n2 gets SIGTERM and the router stops preferring it before the session closes.
//!
//! Per daemon: BIRD and FRR install the multipath route into the router's kernel, where it is
//! checked. GoBGP 3.10 installs nothing into a kernel (it would need zebra) and has no BFD, so
//! against it the ECMP set is read from its RIB, and n1 dies with its cable in (SIGKILL
//! closes its TCP session, which GoBGP sees at once); the test prints both reasons. Root
//! only: without root it prints `SKIPPED` and passes, unless `METALLB_REQUIRE_WIRE_TESTS=1`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use ipnet::IpNet;
use netlab::router::{
    Bfd, BfdState, Community, Family, Neighbor, Router, RouterConfig, RouterKind, SessionState,
    next_hops,
};
use nix::sys::signal::Signal;

use crate::bgp_common::{
    NODE_AS, NodeBfd, Peer, ROUTER_AS, Route, ip, lab, node_file, signal, start_speaker,
    wait_routes,
};

/// Hold time long enough that nothing here is the hold timer's doing: a dead node is BFD's.
const HOLD: u16 = 90;
const BFD: Bfd = Bfd {
    min_rx: std::time::Duration::from_millis(100),
    min_tx: std::time::Duration::from_millis(100),
    multiplier: 3,
};
const NODES: [(&str, &str); 3] = [("n1", "192.0.2.11"), ("n2", "192.0.2.12"), ("n3", "192.0.2.13")];
const SERVICE: &str = "203.0.113.10";
const FOREIGN: &str = "198.51.100.7";
const COMMUNITY: Community = Community(64501, 10);

fn has_bfd(kind: RouterKind) -> bool {
    kind != RouterKind::Gobgp
}

fn has_kernel(kind: RouterKind) -> bool {
    kind != RouterKind::Gobgp
}

fn file(kind: RouterKind, node: &str, source: &str, ips: &[&str]) -> String {
    // n2 waits for the router to start BFD (passiveMode); the others start it themselves.
    let bfd = match (has_bfd(kind), node) {
        (false, _) => NodeBfd::Off,
        (true, "n2") => NodeBfd::Passive,
        (true, _) => NodeBfd::Active,
    };
    let peer = Peer { hold: HOLD, bfd, ..Peer::new("tor", "192.0.2.1", source) };
    let routes: Vec<Route<'_>> = ips
        .iter()
        .map(|ip| Route { pool: "public", ip, peers: &["tor"], community: "64501:10" })
        .collect();
    node_file(node, &[peer], &[("public", "203.0.113.0/24")], &routes)
}

/// The router's ECMP set for `prefix`: its kernel's next hops where the daemon installs
/// routes, else the next hops of the paths in its RIB it would use.
fn ecmp(router: &Router, prefix: &IpNet) -> Result<BTreeSet<IpAddr>> {
    Ok(if has_kernel(router.kind()) {
        router.kernel_next_hops(prefix)?
    } else {
        next_hops(&router.routes(Family::Ipv4)?, prefix)
    })
}

fn story(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, kind.label(), kind)? else { return Ok(()) };
    if !has_kernel(kind) {
        println!(
            "{test}: {kind} installs no route into a kernel: the ECMP set is read from its RIB"
        );
    }
    lab.add_host("r", "eth0", &["192.0.2.1/24"])?;
    let mut config = RouterConfig::new(ROUTER_AS, Ipv4Addr::new(192, 0, 2, 1))
        .kernel(has_kernel(kind))
        .multipath(true)
        .graceful_shutdown(true)
        .listen(ip("192.0.2.1"));
    for (_, addr) in NODES {
        let neighbor = Neighbor::new(ip(addr), NODE_AS).hold_time(HOLD);
        config = config.neighbor(if has_bfd(kind) { neighbor.bfd(BFD) } else { neighbor });
    }
    for (name, addr) in NODES {
        lab.add_host(name, "eth0", &[&format!("{addr}/24")])?;
    }
    let router = Router::start(&mut lab, "r", kind, &config)?;
    for (name, addr) in NODES {
        let ips: &[&str] = if name == "n1" { &[SERVICE, FOREIGN] } else { &[SERVICE] };
        let path = lab.write_file(&format!("{name}.yaml"), &file(kind, name, addr, ips))?;
        start_speaker(&mut lab, name, &path)?;
    }
    let service: IpNet = format!("{SERVICE}/32").parse()?;
    let all: BTreeSet<IpAddr> = NODES.iter().map(|(_, a)| ip(a)).collect();
    let up = router.wait_established(&all.iter().copied().collect::<Vec<_>>())?;
    println!("{test}: three sessions Established after {} ms (informative)", up.as_millis());
    let took = router.wait_for("ECMP over the three nodes", || {
        Ok::<_, anyhow::Error>(ecmp(&router, &service)? == all)
    })?;
    println!("{test}: ECMP over three after {} ms more (informative)", took.as_millis());
    let routes = router.routes(Family::Ipv4)?;
    assert!(
        routes.iter().all(|r| r.prefix == service),
        "only the Service IP is announced, never the one outside the pool: {routes:#?}"
    );
    for r in &routes {
        assert_eq!(r.next_hop, r.from, "each node is its own next hop: {r:?}");
        assert_eq!(r.as_path, vec![NODE_AS], "{r:?}");
        assert_eq!(r.communities, BTreeSet::from([COMMUNITY]), "{r:?}");
        assert!(!r.stale, "{r:?}");
    }

    // n3 stops announcing: its file changes, its session stays.
    lab.write_file("n3.yaml", &file(kind, "n3", NODES[2].1, &[]))?;
    let two: BTreeSet<IpAddr> = [ip(NODES[0].1), ip(NODES[1].1)].into();
    router.wait_for("n3's path withdrawn", || {
        Ok::<_, anyhow::Error>(ecmp(&router, &service)? == two)
    })?;
    assert_eq!(router.session(ip(NODES[2].1))?.map(|s| s.state), Some(SessionState::Established));

    // n1 dies silently; BFD, not the 90 s hold timer, takes it out.
    if has_bfd(kind) {
        router.wait_for("BFD up with n1", || {
            Ok::<_, anyhow::Error>(router.bfd_peers()?.get(&ip(NODES[0].1)) == Some(&BfdState::Up))
        })?;
        // Passive on n2's side: up because the router started it.
        router.wait_for("BFD up with n2 (passive)", || {
            Ok::<_, anyhow::Error>(router.bfd_peers()?.get(&ip(NODES[1].1)) == Some(&BfdState::Up))
        })?;
        lab.set_link("n1", "eth0", false)?;
    } else {
        println!(
            "{test}: {kind} has no BFD: n1 is killed with its cable in, so its TCP session \
             closes; BFD-driven detection is tested against BIRD and FRR"
        );
    }
    lab.kill("n1")?;
    let only_n2: BTreeSet<IpAddr> = [ip(NODES[1].1)].into();
    let took = router.wait_for("n1's next hop gone", || {
        Ok::<_, anyhow::Error>(ecmp(&router, &service)? == only_n2)
    })?;
    println!("{test}: n1's next hop gone {} ms after it died (informative)", took.as_millis());
    if has_bfd(kind) {
        assert_eq!(
            router.bfd_peers()?.get(&ip(NODES[0].1)).copied().unwrap_or(BfdState::Down),
            BfdState::Down
        );
    }

    // n2 drains: announced with GRACEFUL_SHUTDOWN (the router de-prefers it) before it closes.
    lab.write_file("n3.yaml", &file(kind, "n3", NODES[2].1, &[SERVICE]))?;
    wait_routes(&router, Family::Ipv4, "n3 back", |r| next_hops(r, &service).len() == 2)?;
    signal(&mut lab, "n2", Signal::SIGTERM)?;
    let (drained, took) = wait_routes(
        &router,
        Family::Ipv4,
        "n2's path marked GRACEFUL_SHUTDOWN and no longer best",
        |routes| {
            routes.iter().any(|r| {
                r.from == ip(NODES[1].1)
                    && r.communities.contains(&Community(65535, 0))
                    && r.communities.contains(&COMMUNITY)
                    && !r.best
            })
        },
    )?;
    println!("{test}: n2 de-preferred {} ms after SIGTERM (informative)", took.as_millis());
    assert!(drained.iter().any(|r| r.from == ip(NODES[2].1) && r.best), "{drained:#?}");
    let only_n3: BTreeSet<IpAddr> = [ip(NODES[2].1)].into();
    if has_kernel(kind) {
        router.wait_for("the kernel route through n3 only", || {
            Ok::<_, anyhow::Error>(router.kernel_next_hops(&service)? == only_n3)
        })?;
    }
    router.wait_for("n2's session closed after the grace", || {
        Ok::<_, anyhow::Error>(
            router.session(ip(NODES[1].1))?.map(|s| s.state) != Some(SessionState::Established),
        )
    })?;
    wait_routes(&router, Family::Ipv4, "n2's path gone with its session", |r| {
        next_hops(r, &service) == only_n3
    })?;
    drop(router);
    lab.passed(test);
    Ok(())
}

#[test]
fn wire_bgp_ecmp_withdraw_bfd_and_graceful_shutdown_against_bird() -> Result<()> {
    story("bgp::wire_bgp_ecmp_withdraw_bfd_and_graceful_shutdown_against_bird", RouterKind::Bird)
}

#[test]
fn wire_bgp_ecmp_withdraw_bfd_and_graceful_shutdown_against_frr() -> Result<()> {
    story("bgp::wire_bgp_ecmp_withdraw_bfd_and_graceful_shutdown_against_frr", RouterKind::Frr)
}

#[test]
fn wire_bgp_ecmp_withdraw_and_graceful_shutdown_against_gobgp() -> Result<()> {
    story("bgp::wire_bgp_ecmp_withdraw_and_graceful_shutdown_against_gobgp", RouterKind::Gobgp)
}
