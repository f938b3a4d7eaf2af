//! Each daemon as the router, announced to by a *different* daemon (GoBGP → BIRD, BIRD → FRR,
//! FRR → GoBGP), on one bridge:
//!
//! ```text
//!   r  192.0.2.1    2001:db8::1    the router (AS 64500), multipath on
//!   a  192.0.2.11   2001:db8::11   AS 64501, announces 203.0.113.10/32 and 2001:db8:10::10/128
//!   b  192.0.2.12                  AS 64501, announces 203.0.113.10/32, MD5 key right on both ends
//!   c  192.0.2.13                  AS 64501, announces 203.0.113.10/32, the router passive
//!   d  192.0.2.14                  AS 64500 (iBGP), announces 203.0.113.20/32 with local pref 200
//!   e  192.0.2.15                  AS 64501, MD5 key wrong, announces 203.0.113.30/32
//! ```
//!
//! Root only: without root they print `SKIPPED` and pass, unless `METALLB_REQUIRE_WIRE_TESTS=1`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;
use netlab::router::{
    Announcement, Community, Family, LargeCommunity, Neighbor, Router, RouterConfig, RouterKind,
    SessionState, next_hops,
};
use netlab::{Lab, Result};

const FAMILY: &str = "nlrouter";
const ROUTER_AS: u32 = 64500;
const NODE_AS: u32 = 64501;
/// Short hold time: a lab's sessions are restarted often; RFC 4271 §4.2 minimum is 3.
const HOLD: u16 = 9;
/// Bound of every wait: sessions come up within a few seconds (1 s retry timers), and a
/// loaded CI machine runs several labs at once; the bound only turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(30);

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

fn net(text: &str) -> IpNet {
    text.parse().expect("prefix")
}

struct Node {
    name: &'static str,
    v4: &'static str,
    v6: Option<&'static str>,
    asn: u32,
    password: Option<&'static str>,
    announce: Vec<Announcement>,
}

fn nodes() -> Vec<Node> {
    let shared = Announcement::new(net("203.0.113.10/32"))
        .community(Community(65000, 1))
        .large_community(LargeCommunity(65000, 1, 2));
    let node =
        |name, v4, asn, password, announce| Node { name, v4, v6: None, asn, password, announce };
    vec![
        Node {
            v6: Some("2001:db8::11"),
            ..node(
                "a",
                "192.0.2.11",
                NODE_AS,
                None,
                vec![
                    shared.clone(),
                    Announcement::new(net("2001:db8:10::10/128")).community(Community(65000, 6)),
                ],
            )
        },
        node("b", "192.0.2.12", NODE_AS, Some("right"), vec![shared.clone()]),
        node("c", "192.0.2.13", NODE_AS, None, vec![shared]),
        node(
            "d",
            "192.0.2.14",
            ROUTER_AS,
            None,
            vec![Announcement::new(net("203.0.113.20/32")).local_pref(200)],
        ),
        node(
            "e",
            "192.0.2.15",
            NODE_AS,
            Some("wrong"),
            vec![Announcement::new(net("203.0.113.30/32"))],
        ),
    ]
}

/// The router's view of the nodes: every node a neighbor, `b` and `e` with the right key (`e`
/// has the wrong one), `c` passive, `a` also over IPv6.
fn router_config() -> RouterConfig {
    let mut config = RouterConfig::new(ROUTER_AS, Ipv4Addr::new(192, 0, 2, 1))
        .listen(ip("192.0.2.1"))
        .listen(ip("2001:db8::1"));
    for node in nodes() {
        let mut n = Neighbor::new(ip(node.v4), node.asn).hold_time(HOLD);
        if node.password.is_some() {
            n = n.password("right");
        }
        if node.name == "c" {
            // The router waits for c to dial, as a router waits for a speaker.
            n = n.passive();
        }
        config = config.neighbor(n);
        if let Some(v6) = node.v6 {
            config = config.neighbor(Neighbor::new(ip(v6), node.asn).hold_time(HOLD));
        }
    }
    config
}

fn node_config(node: &Node) -> RouterConfig {
    let id: Ipv4Addr = node.v4.parse().expect("v4");
    let mut n = Neighbor::new(ip("192.0.2.1"), ROUTER_AS).hold_time(HOLD).families(&[Family::Ipv4]);
    if let Some(password) = node.password {
        n = n.password(password);
    }
    let mut config = RouterConfig::new(node.asn, id)
        .kernel(false)
        .multipath(false)
        .listen(ip(node.v4))
        .neighbor(n);
    if let Some(v6) = node.v6 {
        config = config
            .listen(ip(v6))
            .neighbor(Neighbor::new(ip("2001:db8::1"), ROUTER_AS).hold_time(HOLD));
    }
    for a in &node.announce {
        config = config.announce(a.clone());
    }
    config
}

/// Segments the kernel of `ns` dropped for a wrong MD5 signature (`TcpExt: TCPMD5Failure` in
/// `/proc/net/netstat`, which shows the namespace of the reader).
fn md5_failures(lab: &Lab, ns: &str) -> Result<u64> {
    let text = lab.exec(ns, &["cat", "/proc/net/netstat"])?;
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let [names, values] = lines[..] else { return Ok(0) };
    Ok(names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "TCPMD5Failure")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0))
}

/// The next hop the router's kernel picks for a TCP connection from source port `port` to
/// port 80 of `dst` (`ip route get`, which runs the ECMP hash on those ports).
fn route_get(lab: &Lab, dst: &str, port: u16) -> Result<IpAddr> {
    let port = port.to_string();
    let text =
        lab.ip("r", &["-j", "route", "get", dst, "ipproto", "tcp", "sport", &port, "dport", "80"])?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|source| netlab::Error::Json { what: "ip -j route get".into(), source })?;
    let gateway = json[0]["gateway"].as_str().unwrap_or_default();
    Ok(gateway.parse().unwrap_or_else(|_| panic!("no gateway in {text}")))
}

/// The link-local address of `eth0` in `ns`.
fn link_local(lab: &Lab, ns: &str) -> Result<IpAddr> {
    let text = lab.ip(ns, &["-j", "-6", "addr", "show", "dev", "eth0", "scope", "link"])?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|source| netlab::Error::Json { what: "ip -j addr".into(), source })?;
    // `addr_info` also holds empty objects for the addresses the filter left out.
    let local = json[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|a| a["local"].as_str())
        .unwrap_or_default();
    Ok(local.parse().unwrap_or_else(|_| panic!("no link-local address in {text}")))
}

fn scenario(test: &str, router_kind: RouterKind, node_kind: RouterKind) -> Result<()> {
    let mut programs: Vec<&str> = vec!["cat"];
    programs.extend(router_kind.programs());
    programs.extend(node_kind.programs());
    if !netlab::gate(test, &programs) {
        return Ok(());
    }
    let mut lab = Lab::new(FAMILY, router_kind.label())?.with_deadline(DEADLINE);
    lab.add_host("r", "eth0", &["192.0.2.1/24", "2001:db8::1/64"])?;
    let nodes = nodes();
    for node in &nodes {
        let v4 = format!("{}/24", node.v4);
        let v6 = node.v6.map(|a| format!("{a}/64"));
        let mut addrs = vec![v4.as_str()];
        addrs.extend(v6.as_deref());
        lab.add_host(node.name, "eth0", &addrs)?;
    }
    let mut config = router_config();
    if router_kind == RouterKind::Gobgp {
        config = config.kernel(false);
    }
    let router = Router::start(&mut lab, "r", router_kind, &config)?;
    let mut speakers = Vec::new();
    for node in &nodes {
        speakers.push(Router::start(&mut lab, node.name, node_kind, &node_config(node))?);
    }

    // Sessions: every one but e's (wrong key) comes up.
    let up: Vec<IpAddr> =
        ["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14", "2001:db8::11"].map(ip).into();
    router.wait_established(&up)?;
    let a = router.session(ip("192.0.2.11"))?.expect("a's session");
    assert_eq!(a.state, SessionState::Established);

    // The shared prefix from three nodes, with its attributes.
    let shared = net("203.0.113.10/32");
    let nodes3: BTreeSet<IpAddr> = ["192.0.2.11", "192.0.2.12", "192.0.2.13"].map(ip).into();
    let mut routes = Vec::new();
    router.wait_for("three paths of 203.0.113.10/32 and the iBGP one", || {
        routes = router.routes(Family::Ipv4)?;
        Ok::<_, netlab::Error>(
            next_hops(&routes, &shared) == nodes3
                && !next_hops(&routes, &net("203.0.113.20/32")).is_empty(),
        )
    })?;
    let a = router.session(ip("192.0.2.11"))?.expect("a's session");
    assert_eq!(a.prefixes, Some(1), "a's IPv4 session carries one prefix: {a:?}");
    for route in routes.iter().filter(|r| r.prefix == shared) {
        assert_eq!(route.next_hop, route.from, "next hop is the announcing node: {route:?}");
        assert_eq!(route.as_path, vec![NODE_AS], "{route:?}");
        assert_eq!(route.communities, BTreeSet::from([Community(65000, 1)]), "{route:?}");
        assert_eq!(route.large_communities, BTreeSet::from([LargeCommunity(65000, 1, 2)]));
        assert!(!route.stale);
    }
    assert_eq!(routes.iter().filter(|r| r.prefix == shared && r.best).count(), 1);
    let ibgp = routes.iter().find(|r| r.prefix == net("203.0.113.20/32")).expect("iBGP route");
    assert_eq!(ibgp.local_pref, Some(200), "{ibgp:?}");
    assert!(ibgp.as_path.is_empty(), "iBGP adds no AS: {ibgp:?}");
    assert_eq!(ibgp.next_hop, ip("192.0.2.14"));

    // IPv6 with an IPv6 next hop.
    let v6 = net("2001:db8:10::10/128");
    let mut v6_routes = Vec::new();
    router.wait_for("the IPv6 route", || {
        v6_routes = router.routes(Family::Ipv6)?;
        Ok::<_, netlab::Error>(!next_hops(&v6_routes, &v6).is_empty())
    })?;
    assert_eq!(next_hops(&v6_routes, &v6), BTreeSet::from([ip("2001:db8::11")]));
    assert!(v6_routes[0].communities.contains(&Community(65000, 6)));

    // ECMP in the router's kernel (GoBGP installs nothing there, and says so).
    if router_kind == RouterKind::Gobgp {
        assert!(matches!(router.kernel_next_hops(&shared), Err(netlab::Error::Unsupported { .. })));
    } else {
        router.wait_for("three next hops in the kernel", || {
            Ok::<_, netlab::Error>(router.kernel_next_hops(&shared)? == nodes3)
        })?;
        // The router hashes connections over all three (ports count): 48 source ports miss
        // one of three equal next hops with a chance of 3 × (2/3)^48, about 1e-8.
        let chosen: BTreeSet<IpAddr> = (40000..40048)
            .map(|port| route_get(&lab, "203.0.113.10", port))
            .collect::<Result<_>>()?;
        assert_eq!(chosen, nodes3, "connections spread over every node");
        router.wait_for("the IPv6 route in the kernel", || {
            Ok::<_, netlab::Error>(!router.kernel_next_hops(&v6)?.is_empty())
        })?;
        // Through a: BIRD installs the global next hop, FRR's zebra the link-local one that
        // comes with it (RFC 2545 §3).
        let a_addrs = BTreeSet::from([ip("2001:db8::11"), link_local(&lab, "a")?]);
        let v6_hops = router.kernel_next_hops(&v6)?;
        assert!(v6_hops.len() == 1 && v6_hops.is_subset(&a_addrs), "{v6_hops:?}");
        // 203.0.113.10 and .20 (e's .30 never arrives).
        router.wait_for("two IPv4 routes in the kernel", || {
            Ok::<_, netlab::Error>(router.kernel_route_count(Family::Ipv4)? == 2)
        })?;
    }

    // MD5: b (right key) is up; e (wrong key) is refused by the kernel and never comes up.
    router.wait_for("a segment with a wrong MD5 signature", || {
        Ok::<_, netlab::Error>(md5_failures(&lab, "r")? > 0)
    })?;
    let e = router.session(ip("192.0.2.15"))?.map(|s| s.state);
    assert_ne!(e, Some(SessionState::Established));
    assert!(next_hops(&router.routes(Family::Ipv4)?, &net("203.0.113.30/32")).is_empty());

    // Withdraw: b stops announcing, the router drops exactly that path.
    speakers[1].withdraw(&shared)?;
    let two: BTreeSet<IpAddr> = ["192.0.2.11", "192.0.2.13"].map(ip).into();
    router.wait_for("b's path withdrawn", || {
        Ok::<_, netlab::Error>(next_hops(&router.routes(Family::Ipv4)?, &shared) == two)
    })?;
    if router_kind != RouterKind::Gobgp {
        router.wait_for("two next hops in the kernel", || {
            Ok::<_, netlab::Error>(router.kernel_next_hops(&shared)? == two)
        })?;
    }
    // And announces it again, without a session reset.
    speakers[1].announce(
        Announcement::new(shared)
            .community(Community(65000, 1))
            .large_community(LargeCommunity(65000, 1, 2)),
    )?;
    router.wait_for("b's path back", || {
        Ok::<_, netlab::Error>(next_hops(&router.routes(Family::Ipv4)?, &shared) == nodes3)
    })?;

    // Graceful shutdown (RFC 8326): a re-announces with GRACEFUL_SHUTDOWN; the router keeps
    // the path but prefers the others, and leaves it out of ECMP, before any session drops.
    speakers[0].announce(
        Announcement::new(shared)
            .community(Community(65000, 1))
            .community(Community(65535, 0))
            .large_community(LargeCommunity(65000, 1, 2)),
    )?;
    router.wait_for("a's path with GRACEFUL_SHUTDOWN, no longer best", || {
        let a_path = router
            .routes(Family::Ipv4)?
            .into_iter()
            .find(|r| r.prefix == shared && r.from == ip("192.0.2.11"));
        // The community arrives before the router re-runs its best-path selection (FRR was
        // seen reporting local preference 0 and still `best`), so wait for both.
        Ok::<_, netlab::Error>(a_path.as_ref().is_some_and(|r| {
            r.communities.contains(&Community(65535, 0))
                && r.local_pref.is_some_and(|lp| lp <= 1)
                && !r.best
        }))
    })?;
    if router_kind != RouterKind::Gobgp {
        let others: BTreeSet<IpAddr> = ["192.0.2.12", "192.0.2.13"].map(ip).into();
        router.wait_for("ECMP without a", || {
            Ok::<_, netlab::Error>(router.kernel_next_hops(&shared)? == others)
        })?;
    }
    assert_eq!(router.session(ip("192.0.2.11"))?.map(|s| s.state), Some(SessionState::Established));

    // Stopping ends the daemons; the lab then holds no process of theirs.
    for speaker in speakers {
        speaker.stop(&mut lab)?;
    }
    router.stop(&mut lab)?;
    lab.passed(test);
    Ok(())
}

#[test]
fn bird_router_learns_from_gobgp_nodes() -> Result<()> {
    scenario("bird_router_learns_from_gobgp_nodes", RouterKind::Bird, RouterKind::Gobgp)
}

#[test]
fn frr_router_learns_from_bird_nodes() -> Result<()> {
    scenario("frr_router_learns_from_bird_nodes", RouterKind::Frr, RouterKind::Bird)
}

#[test]
fn gobgp_router_learns_from_frr_nodes() -> Result<()> {
    scenario("gobgp_router_learns_from_frr_nodes", RouterKind::Gobgp, RouterKind::Frr)
}

/// Processes in lab namespace `ns`.
fn pids_in(lab: &Lab, ns: &str) -> Result<usize> {
    Ok(netlab::run("ip", &["netns", "pids", &lab.ns(ns)])?.split_whitespace().count())
}

#[test]
fn routers_end_their_daemons_when_dropped_and_report_a_daemon_that_exits() -> Result<()> {
    let test = "routers_end_their_daemons_when_dropped_and_report_a_daemon_that_exits";
    let mut programs = RouterKind::Frr.programs().to_vec();
    programs.extend(RouterKind::Gobgp.programs());
    programs.extend(RouterKind::Bird.programs());
    if !netlab::gate(test, &programs) {
        return Ok(());
    }
    let mut lab = Lab::new(FAMILY, "life")?.with_deadline(DEADLINE);
    lab.add_host("r", "eth0", &["192.0.2.1/24"])?;
    let config = RouterConfig::new(ROUTER_AS, Ipv4Addr::new(192, 0, 2, 1))
        .neighbor(Neighbor::new(ip("192.0.2.11"), NODE_AS).bfd(netlab::router::Bfd::default()));
    // FRR with BFD: zebra, bfdd and bgpd, all gone when the router is dropped, while the lab
    // (and its namespace) lives on.
    let router = Router::start(&mut lab, "r", RouterKind::Frr, &config)?;
    assert_eq!(pids_in(&lab, "r")?, 3, "zebra, bfdd, bgpd");
    drop(router);
    assert_eq!(pids_in(&lab, "r")?, 0);
    for daemon in ["r-zebra", "r-bfdd", "r-bgpd"] {
        assert!(!lab.is_running(daemon), "{daemon}");
    }
    // Started again at once in the same namespace, then stopped gracefully.
    let router = Router::start(&mut lab, "r", RouterKind::Frr, &config)?;
    router.stop(&mut lab)?;
    assert_eq!(pids_in(&lab, "r")?, 0);

    // GoBGP cannot listen on an address the namespace lacks and exits at once: the error
    // says so, with the end of its log.
    let absent = RouterConfig::new(ROUTER_AS, Ipv4Addr::new(192, 0, 2, 1))
        .kernel(false)
        .listen(ip("203.0.113.99"));
    match Router::start(&mut lab, "r", RouterKind::Gobgp, &absent) {
        Err(netlab::Error::Daemon { label, reason }) => {
            assert_eq!(label, "r-gobgpd");
            assert!(reason.contains("cannot assign requested address"), "{reason}");
        }
        other => panic!("expected a daemon error, got {other:?}"),
    }
    // A passive BIRD session with nobody dialing: BIRD says `Passive`, which is Active.
    let passive = RouterConfig::new(ROUTER_AS, Ipv4Addr::new(192, 0, 2, 1))
        .neighbor(Neighbor::new(ip("192.0.2.11"), NODE_AS).passive());
    let bird = Router::start(&mut lab, "r", RouterKind::Bird, &passive)?;
    bird.wait_for("BIRD's session state", || {
        Ok::<_, netlab::Error>(bird.session(ip("192.0.2.11"))?.is_some())
    })?;
    assert_eq!(bird.sessions()?[0].state, SessionState::Active);
    bird.stop(&mut lab)?;

    // A description no daemon could run is refused before anything starts.
    let hold = RouterConfig::new(ROUTER_AS, Ipv4Addr::new(192, 0, 2, 1))
        .neighbor(Neighbor::new(ip("192.0.2.11"), NODE_AS).hold_time(2));
    assert!(matches!(
        Router::start(&mut lab, "r", RouterKind::Bird, &hold),
        Err(netlab::Error::RouterConfig { .. })
    ));
    lab.passed(test);
    Ok(())
}
