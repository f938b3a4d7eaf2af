//! BGP mode on the wire: three nodes run `metallb-speaker --mode bgp` with the file source,
//! FRR is the router (bgpd, bfdd, zebra, multipath, routes into its kernel).
//!
//! ```text
//!   r   192.0.2.1    FRR, AS 64500, graceful shutdown honoured (GRACEFUL_SHUTDOWN → low pref)
//!   n1  192.0.2.11   AS 64501 ┐
//!   n2  192.0.2.12   AS 64501 ├ each announces 203.0.113.10/32 (BFD 100 ms × 3 with r)
//!   n3  192.0.2.13   AS 64501 ┘ n1 also tries 198.51.100.7, outside its pool: never announced
//! ```
//!
//! The story: ECMP over three next hops in the router's kernel; n3 stops announcing the IP
//! (its file changes) and the router keeps two; n1 dies (cable pulled, SIGKILL) and BFD makes
//! the router drop it; n2 gets SIGTERM and the router stops preferring it before the session
//! closes. Root only: without root it prints `SKIPPED` and passes, unless
//! `METALLB_REQUIRE_WIRE_TESTS=1`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;
use netlab::router::{
    Bfd, Family, Neighbor, Router, RouterConfig, RouterKind, SessionState, next_hops,
};
use netlab::{Lab, Spawn};

const TEST: &str = "bgp::wire_bgp_ecmp_withdraw_bfd_and_graceful_shutdown_against_frr";
const FAMILY: &str = "spkbgp";
/// Hold time long enough that nothing here is the hold timer's doing: a dead node is BFD's.
const HOLD: u16 = 90;
/// Bound of every wait; sessions come up within seconds, a loaded CI machine is slower.
const DEADLINE: Duration = Duration::from_secs(30);
const BFD: Bfd =
    Bfd { min_rx: Duration::from_millis(100), min_tx: Duration::from_millis(100), multiplier: 3 };
const NODES: [(&str, &str); 3] = [("n1", "192.0.2.11"), ("n2", "192.0.2.12"), ("n3", "192.0.2.13")];
const SERVICE: &str = "203.0.113.10";
const FOREIGN: &str = "198.51.100.7";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

fn node_file(node: &str, source: &str, ips: &[&str]) -> String {
    let mut s = format!(
        "node: {node}\npeers:\n  tor:\n    peerAddress: 192.0.2.1\n    peerASN: 64500\n    \
         myASN: 64501\n    holdTime: {HOLD}s\n    sourceAddress: {source}\n    \
         bfd: {{receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}}\n\
         pools:\n  public: [203.0.113.0/24]\nroutes:\n"
    );
    for ip in ips {
        s.push_str(&format!(
            "  - {{pool: public, ip: {ip}, prefix: {ip}/32, peers: [tor], communities: [\"64501:10\"]}}\n"
        ));
    }
    s
}

#[test]
fn wire_bgp_ecmp_withdraw_bfd_and_graceful_shutdown_against_frr() {
    if !netlab::gate(TEST, RouterKind::Frr.programs()) {
        return;
    }
    scenario().expect("the BGP story holds");
}

fn scenario() -> netlab::Result<()> {
    let mut lab = Lab::new(FAMILY, "frr")?.with_deadline(DEADLINE);
    lab.add_host("r", "eth0", &["192.0.2.1/24"])?;
    let mut config = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
        .kernel(true)
        .multipath(true)
        .graceful_shutdown(true)
        .listen(ip("192.0.2.1"));
    for (_, addr) in NODES {
        config = config.neighbor(Neighbor::new(ip(addr), 64501).hold_time(HOLD).bfd(BFD));
    }
    for (name, addr) in NODES {
        lab.add_host(name, "eth0", &[&format!("{addr}/24")])?;
    }
    let router = Router::start(&mut lab, "r", RouterKind::Frr, &config)?;
    for (name, addr) in NODES {
        let ips: &[&str] = if name == "n1" { &[SERVICE, FOREIGN] } else { &[SERVICE] };
        let file = lab.write_file(&format!("{name}.yaml"), &node_file(name, addr, ips))?;
        let source = format!("file:{}", file.display());
        lab.spawn(Spawn::new(name, name, env!("CARGO_BIN_EXE_metallb-speaker")).args([
            "--mode",
            "bgp",
            "--node-name",
            name,
            "--source",
            &source,
            "--log-format",
            "text",
            "--bgp-shutdown-grace",
            "3s",
        ]))?;
    }
    let service: IpNet = format!("{SERVICE}/32").parse().expect("prefix");
    let all: BTreeSet<IpAddr> = NODES.iter().map(|(_, a)| ip(a)).collect();
    router.wait_established(&all.iter().copied().collect::<Vec<_>>())?;
    router.wait_for("ECMP over three nodes in the router's kernel", || {
        Ok::<_, netlab::Error>(router.kernel_next_hops(&service)? == all)
    })?;
    let routes = router.routes(Family::Ipv4)?;
    assert!(
        routes.iter().all(|r| r.prefix == service),
        "only the Service IP is announced, never the one outside the pool: {routes:?}"
    );
    assert!(
        routes.iter().all(|r| r.communities.contains(&netlab::router::Community(64501, 10))),
        "{routes:?}"
    );

    // n3 stops announcing: its file changes, its session stays.
    lab.write_file("n3.yaml", &node_file("n3", NODES[2].1, &[]))?;
    let two: BTreeSet<IpAddr> = [ip(NODES[0].1), ip(NODES[1].1)].into();
    router.wait_for("n3's path withdrawn", || {
        Ok::<_, netlab::Error>(router.kernel_next_hops(&service)? == two)
    })?;
    assert_eq!(router.session(ip(NODES[2].1))?.map(|s| s.state), Some(SessionState::Established));

    // n1 dies silently; BFD, not the 90 s hold timer, takes it out.
    router.wait_for("BFD up with n1", || {
        Ok::<_, netlab::Error>(
            router.bfd_peers()?.get(&ip(NODES[0].1)) == Some(&netlab::router::BfdState::Up),
        )
    })?;
    lab.set_link("n1", "eth0", false)?;
    lab.kill("n1")?;
    let only_n2: BTreeSet<IpAddr> = [ip(NODES[1].1)].into();
    let took = router.wait_for("n1's next hop gone", || {
        Ok::<_, netlab::Error>(router.kernel_next_hops(&service)? == only_n2)
    })?;
    println!("{TEST}: n1's next hop gone {} ms after it died (informative)", took.as_millis());

    // n2 drains: announced with GRACEFUL_SHUTDOWN (the router de-prefers it) before it closes.
    lab.write_file("n3.yaml", &node_file("n3", NODES[2].1, &[SERVICE]))?;
    router.wait_for("n3 back", || {
        Ok::<_, netlab::Error>(next_hops(&router.routes(Family::Ipv4)?, &service).len() == 2)
    })?;
    let pid = lab.pid("n2")?;
    nix_term(pid);
    router.wait_for("n2's path marked GRACEFUL_SHUTDOWN and no longer best", || {
        let routes = router.routes(Family::Ipv4)?;
        Ok::<_, netlab::Error>(routes.iter().any(|r| {
            r.from == ip(NODES[1].1)
                && r.communities.contains(&netlab::router::Community(65535, 0))
                && !r.best
        }))
    })?;
    let only_n3: BTreeSet<IpAddr> = [ip(NODES[2].1)].into();
    router.wait_for("the kernel route through n3 only", || {
        Ok::<_, netlab::Error>(router.kernel_next_hops(&service)? == only_n3)
    })?;
    router.wait_for("n2's session closed after the grace", || {
        Ok::<_, netlab::Error>(
            router.session(ip(NODES[1].1))?.map(|s| s.state) != Some(SessionState::Established),
        )
    })?;
    lab.passed(TEST);
    Ok(())
}

/// SIGTERM, as the kubelet sends it, without waiting: the test watches the router during the
/// grace period (`Lab::terminate` would block through it). The lab reaps the process.
fn nix_term(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}
