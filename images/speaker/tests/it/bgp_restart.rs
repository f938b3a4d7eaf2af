//! Graceful restart (RFC 4724) through the speaker binary: a speaker killed with `kill -9` and
//! started again within the restart time loses no traffic.
//!
//! ```text
//!   c   198.51.100.2 ── eth1 ── r 192.0.2.1 / 198.51.100.1   AS 64500, multipath, GR helper
//!                                │ switch                     (restart time 120 s)
//!          n1 192.0.2.11 ┐
//!          n2 192.0.2.12 ├ AS 64501, each announces 203.0.113.30/32 and serves it over HTTP
//!          n3 192.0.2.13 ┘ (the IP on lo; the answer is the node's name)
//! ```
//!
//! The story: ECMP over the three nodes; a client behind the router fetches the Service IP
//! over a new connection each time. n2's speaker is killed (its cable and its HTTP server
//! stay, as on a node whose speaker pod crashed): the router keeps n2's path, marked stale,
//! and its kernel keeps all three next hops. n2's speaker starts again (it always sets the
//! Restart State bit), sends its routes and End-of-RIB, and the stale mark goes. The client
//! must not miss one answer meanwhile, from n1 and n3 nor from n2; the counts and timings are
//! printed, never asserted.
//!
//! Per daemon: BIRD and FRR forward, so the client runs against them. GoBGP 3.10 installs
//! nothing into a kernel and so forwards nothing: against it only the router's RIB is checked
//! (stale, then fresh), which the test prints. BIRD marks no path kept by its helper; netlab
//! counts a path whose session is down as stale there (see `netlab::router::bird`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Result;
use ipnet::IpNet;
use netlab::router::{Family, Neighbor, Router, RouterConfig, RouterKind, SessionState, next_hops};

use crate::bgp_common::{
    NODE_AS, Peer, ROUTER_AS, Route, ip, lab, net, node_file, path_from, start_speaker, wait_routes,
};
use crate::traffic::{Backends, Client};

const NODES: [(&str, &str); 3] = [("n1", "192.0.2.11"), ("n2", "192.0.2.12"), ("n3", "192.0.2.13")];
const SERVICE: &str = "203.0.113.30";
/// The restart time the router announces; the speaker announces 120 s too.
const RESTART_TIME: u16 = 120;
/// How long n2's speaker stays dead once the router marked its path stale: a few dozen
/// fetches (about 40 a second), far below the restart time.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// Traffic after the restart, to see the fresh path carry it too.
const AFTER: Duration = Duration::from_millis(500);

fn forwards(kind: RouterKind) -> bool {
    kind != RouterKind::Gobgp
}

fn ecmp(router: &Router, prefix: &IpNet) -> Result<BTreeSet<IpAddr>> {
    Ok(if forwards(router.kind()) {
        router.kernel_next_hops(prefix)?
    } else {
        next_hops(&router.routes(Family::Ipv4)?, prefix)
    })
}

fn story(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, &format!("gr{}", kind.label()), kind)? else { return Ok(()) };
    lab.add_host("r", "eth0", &["192.0.2.1/24"])?;
    let mut config = RouterConfig::new(ROUTER_AS, Ipv4Addr::new(192, 0, 2, 1))
        .kernel(forwards(kind))
        .multipath(true)
        .listen(ip("192.0.2.1"));
    for (name, addr) in NODES {
        config = config.neighbor(Neighbor::new(ip(addr), NODE_AS).graceful_restart(RESTART_TIME));
        lab.add_host(name, "eth0", &[&format!("{addr}/24")])?;
        lab.ip(name, &["addr", "add", &format!("{SERVICE}/32"), "dev", "lo"])?;
        lab.ip(name, &["route", "add", "default", "via", "192.0.2.1"])?;
    }
    lab.add_namespace("c")?;
    lab.cable("r", "eth1", "c", "eth0")?;
    lab.ip("r", &["addr", "add", "198.51.100.1/24", "dev", "eth1"])?;
    lab.ip("c", &["addr", "add", "198.51.100.2/24", "dev", "eth0"])?;
    lab.ip("c", &["route", "add", "default", "via", "198.51.100.1"])?;
    let router = Router::start(&mut lab, "r", kind, &config)?;
    let route = [Route { pool: "public", ip: SERVICE, peers: &["tor"], community: "64501:30" }];
    let file = |node: &str, source: &str| {
        node_file(
            node,
            &[Peer::new("tor", "192.0.2.1", source)],
            &[("public", "203.0.113.0/24")],
            &route,
        )
    };
    for (name, addr) in NODES {
        let path = lab.write_file(&format!("{name}.yaml"), &file(name, addr))?;
        start_speaker(&mut lab, name, &path)?;
    }
    let service = net(&format!("{SERVICE}/32"));
    let all: BTreeSet<IpAddr> = NODES.iter().map(|(_, a)| ip(a)).collect();
    router.wait_established(&all.iter().copied().collect::<Vec<_>>())?;
    router.wait_for("ECMP over the three nodes", || {
        Ok::<_, anyhow::Error>(ecmp(&router, &service)? == all)
    })?;

    // Declared after the lab and the router: dropped (threads out of the namespaces) first.
    let addr = SocketAddr::new(ip(SERVICE), 80);
    let names: Vec<(String, String)> =
        NODES.iter().map(|(n, _)| (lab.ns(n), (*n).to_owned())).collect();
    let backends = if forwards(kind) {
        Some(Backends::start(&names, addr)?)
    } else {
        println!(
            "{test}: {kind} installs no route into a kernel, so it forwards nothing: no client \
             traffic, only its RIB is checked"
        );
        None
    };
    let client = match &backends {
        Some(_) => {
            let client = Client::start(&lab.ns("c"), addr);
            router.wait_for("the client answered by all three nodes", || {
                Ok::<_, anyhow::Error>(client.answered().len() == NODES.len())
            })?;
            Some(client)
        }
        None => None,
    };

    let n2 = ip(NODES[1].1);
    let killed = Instant::now();
    lab.kill("n2")?;
    let (_, took) = wait_routes(&router, Family::Ipv4, "n2's path kept as stale", |r| {
        path_from(r, &service, n2).is_some_and(|p| p.stale)
    })?;
    println!("{test}: n2's path stale {} ms after kill -9 (informative)", took.as_millis());
    std::thread::sleep(DOWN_FOR);
    let (kept, _) = wait_routes(&router, Family::Ipv4, "n2's path still stale", |r| {
        path_from(r, &service, n2).is_some_and(|p| p.stale)
    })?;
    assert_eq!(next_hops(&kept, &service), all, "all three paths kept: {kept:#?}");
    assert_eq!(ecmp(&router, &service)?, all, "n2 stays in the router's ECMP set while stale");

    let restarted = Instant::now();
    let n2_file = lab.dir().join("n2.yaml");
    start_speaker(&mut lab, "n2", &n2_file)?;
    router.wait_established(&[n2])?;
    let (fresh, _) = wait_routes(&router, Family::Ipv4, "n2's path fresh again", |r| {
        path_from(r, &service, n2).is_some_and(|p| !p.stale)
    })?;
    println!(
        "{test}: n2's path fresh {} ms after its speaker restarted, {} ms after the kill \
         (informative)",
        restarted.elapsed().as_millis(),
        killed.elapsed().as_millis()
    );
    assert!(fresh.iter().all(|p| !p.stale), "{fresh:#?}");
    assert_eq!(router.session(n2)?.map(|s| s.state), Some(SessionState::Established));
    assert_eq!(ecmp(&router, &service)?, all);

    if let Some(client) = client {
        std::thread::sleep(AFTER);
        let tally = client.finish()?;
        println!(
            "{test}: {} fetches, from before the kill to {} ms after the restart: {:?} \
             answered, {} failed (informative)",
            tally.fetches(),
            AFTER.as_millis(),
            tally.answers,
            tally.failures.len()
        );
        let names: BTreeSet<&str> = tally.answers.keys().map(String::as_str).collect();
        assert_eq!(names, BTreeSet::from(["n1", "n2", "n3"]), "every node kept answering");
        assert!(tally.failures.is_empty(), "no fetch may fail: {:?}", tally.failures);
    }
    drop(router);
    lab.passed(test);
    Ok(())
}

#[test]
fn wire_bgp_graceful_restart_keeps_traffic_against_bird() -> Result<()> {
    story("bgp_restart::wire_bgp_graceful_restart_keeps_traffic_against_bird", RouterKind::Bird)
}

#[test]
fn wire_bgp_graceful_restart_keeps_traffic_against_frr() -> Result<()> {
    story("bgp_restart::wire_bgp_graceful_restart_keeps_traffic_against_frr", RouterKind::Frr)
}

#[test]
fn wire_bgp_graceful_restart_keeps_stale_routes_against_gobgp() -> Result<()> {
    story(
        "bgp_restart::wire_bgp_graceful_restart_keeps_stale_routes_against_gobgp",
        RouterKind::Gobgp,
    )
}
