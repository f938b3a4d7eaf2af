//! BGP mode's sessions on the wire, against each of BIRD 2, FRR and GoBGP as the router: an
//! IPv6 session with an IPv6 next hop, TCP MD5 with the right and the wrong password file, and
//! the router's hold timer expiring when a speaker freezes. One lab per daemon:
//!
//! ```text
//!   r  192.0.2.1 2001:db8::1       AS 64500; expects MD5 key K and hold time 3 s from 192.0.2.x
//!   a  192.0.2.21 2001:db8::21     AS 64501; peer `tor` (IPv4, password file K, hold 3 s):
//!                                    203.0.113.20/32; peer `tor6` (IPv6, hold 90 s):
//!                                    2001:db8:100::20/128 with the next hop 2001:db8::21
//!   b  192.0.2.22                  AS 64501; peer `tor` with a password file holding a wrong key
//! ```
//!
//! The story: a's two sessions come up and the router holds the IPv4 /32 and the IPv6 /128 with
//! their attributes; b never gets a session, and the router's kernel counts the segments it
//! dropped for their signature (`TCPMD5Failure`); a's file drops the IPv6 route and the router
//! withdraws it; a is frozen with SIGSTOP and the router's 3 s hold timer closes the IPv4
//! session (its BFD would be faster, so `tor` has none). Timings are printed, never asserted.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Instant;

use anyhow::{Context, Result};
use netlab::Lab;
use netlab::router::{Community, Family, Neighbor, Router, RouterConfig, RouterKind, SessionState};
use nix::sys::signal::Signal;

use crate::bgp_common::{
    NODE_AS, Peer, ROUTER_AS, Route, ip, lab, net, node_file, path_from, signal, start_speaker,
    wait_routes,
};

const KEY: &str = "s3cret-wire";
const HOLD: u16 = 3;
const V4: &str = "203.0.113.20";
const V6: &str = "2001:db8:100::20";
const POOLS: [(&str, &str); 2] = [("public4", "203.0.113.0/24"), ("public6", "2001:db8:100::/64")];

/// The router kernel's count of TCP segments dropped for a bad MD5 signature.
fn md5_failures(lab: &Lab, ns: &str) -> Result<u64> {
    let text = lab.exec(ns, &["cat", "/proc/net/netstat"])?;
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let [names, values] = lines[..] else { anyhow::bail!("no TcpExt lines in {text}") };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "TCPMD5Failure")
        .context("no TCPMD5Failure counter")?
        .1
        .parse()
        .context("TCPMD5Failure")
}

fn a_file(lab: &Lab, ipv6_route: bool) -> Result<String> {
    let key = lab.dir().join("tor.key");
    let tor = Peer {
        hold: HOLD,
        password_file: Some(&key),
        router_id: Some("192.0.2.21"),
        ..Peer::new("tor", "192.0.2.1", "192.0.2.21")
    };
    let tor6 =
        Peer { router_id: Some("192.0.2.21"), ..Peer::new("tor6", "2001:db8::1", "2001:db8::21") };
    let mut routes =
        vec![Route { pool: "public4", ip: V4, peers: &["tor"], community: "64501:20" }];
    if ipv6_route {
        routes.push(Route { pool: "public6", ip: V6, peers: &["tor6"], community: "64501:60" });
    }
    Ok(node_file("a", &[tor, tor6], &POOLS, &routes))
}

fn story(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, &format!("s{}", kind.label()), kind)? else { return Ok(()) };
    lab.add_host("r", "eth0", &["192.0.2.1/24", "2001:db8::1/64"])?;
    lab.add_host("a", "eth0", &["192.0.2.21/24", "2001:db8::21/64"])?;
    lab.add_host("b", "eth0", &["192.0.2.22/24"])?;
    let config = RouterConfig::new(ROUTER_AS, Ipv4Addr::new(192, 0, 2, 1))
        .kernel(false)
        .listen(ip("192.0.2.1"))
        .listen(ip("2001:db8::1"))
        .neighbor(Neighbor::new(ip("192.0.2.21"), NODE_AS).password(KEY).hold_time(HOLD))
        .neighbor(Neighbor::new(ip("2001:db8::21"), NODE_AS))
        .neighbor(Neighbor::new(ip("192.0.2.22"), NODE_AS).password(KEY).hold_time(HOLD));
    let router = Router::start(&mut lab, "r", kind, &config)?;
    lab.write_file("tor.key", &format!("{KEY}\n"))?;
    lab.write_file("wrong.key", "not-the-key\n")?;
    let a = lab.write_file("a.yaml", &a_file(&lab, true)?)?;
    let wrong = lab.dir().join("wrong.key");
    let b_peer = Peer {
        hold: HOLD,
        password_file: Some(&wrong),
        ..Peer::new("tor", "192.0.2.1", "192.0.2.22")
    };
    let b_route = Route { pool: "public4", ip: V4, peers: &["tor"], community: "64501:20" };
    let b = lab.write_file("b.yaml", &node_file("b", &[b_peer], &POOLS, &[b_route]))?;
    let md5_before = md5_failures(&lab, "r")?;
    start_speaker(&mut lab, "a", &a)?;
    start_speaker(&mut lab, "b", &b)?;

    let up = router.wait_established(&[ip("192.0.2.21"), ip("2001:db8::21")])?;
    println!(
        "{test}: a's IPv4 (MD5) and IPv6 sessions up after {} ms (informative)",
        up.as_millis()
    );
    let (v4, _) = wait_routes(&router, Family::Ipv4, "a's IPv4 route", |r| {
        path_from(r, &net("203.0.113.20/32"), ip("192.0.2.21")).is_some()
    })?;
    let path = path_from(&v4, &net("203.0.113.20/32"), ip("192.0.2.21")).expect("found");
    assert_eq!(path.next_hop, ip("192.0.2.21"), "{path:?}");
    assert_eq!(path.communities, BTreeSet::from([Community(64501, 20)]), "{path:?}");
    let (v6, _) = wait_routes(&router, Family::Ipv6, "a's IPv6 route", |r| {
        path_from(r, &net("2001:db8:100::20/128"), ip("2001:db8::21")).is_some()
    })?;
    let path = path_from(&v6, &net("2001:db8:100::20/128"), ip("2001:db8::21")).expect("found");
    assert_eq!(path.next_hop, ip("2001:db8::21"), "the node's IPv6 address: {path:?}");
    assert_eq!(path.as_path, vec![NODE_AS], "{path:?}");
    assert_eq!(path.communities, BTreeSet::from([Community(64501, 60)]), "{path:?}");
    assert_eq!(v6.len(), 1, "only a's /128 in the IPv6 table: {v6:#?}");

    // b's key is wrong: the router's kernel drops its segments, no session ever comes up.
    router.wait_for("segments with b's wrong signature dropped by the router's kernel", || {
        Ok::<_, anyhow::Error>(md5_failures(&lab, "r")? > md5_before)
    })?;
    let b_state = router.session(ip("192.0.2.22"))?.map(|s| s.state);
    assert_ne!(b_state, Some(SessionState::Established), "b's key is wrong");
    assert!(
        router.routes(Family::Ipv4)?.iter().all(|r| r.from != ip("192.0.2.22")),
        "nothing learned from b"
    );

    // a stops announcing the IPv6 route; its IPv4 one stays.
    lab.write_file("a.yaml", &a_file(&lab, false)?)?;
    let (_, took) =
        wait_routes(&router, Family::Ipv6, "the IPv6 route withdrawn", |r| r.is_empty())?;
    println!(
        "{test}: the IPv6 /128 withdrawn {} ms after the file changed (informative)",
        took.as_millis()
    );
    assert!(
        path_from(&router.routes(Family::Ipv4)?, &net("203.0.113.20/32"), ip("192.0.2.21"))
            .is_some()
    );

    // a freezes: no KEEPALIVE, so the router's 3 s hold timer closes the IPv4 session and
    // drops its route (the router runs no graceful-restart helper here). a is thawed whatever
    // happened, before the result is looked at.
    let frozen = Instant::now();
    signal(&mut lab, "a", Signal::SIGSTOP)?;
    let expired = (|| -> Result<()> {
        router.wait_for("the router's hold timer closing a's IPv4 session", || {
            Ok::<_, anyhow::Error>(
                router.session(ip("192.0.2.21"))?.map(|s| s.state)
                    != Some(SessionState::Established),
            )
        })?;
        println!(
            "{test}: a's IPv4 session dropped {} ms after SIGSTOP (hold time {HOLD} s; \
             informative)",
            frozen.elapsed().as_millis()
        );
        wait_routes(&router, Family::Ipv4, "a's IPv4 route gone with its session", |r| {
            path_from(r, &net("203.0.113.20/32"), ip("192.0.2.21")).is_none()
        })?;
        Ok(())
    })();
    signal(&mut lab, "a", Signal::SIGCONT)?;
    expired?;
    drop(router);
    lab.passed(test);
    Ok(())
}

#[test]
fn wire_bgp_ipv6_md5_and_hold_timer_against_bird() -> Result<()> {
    story("bgp_session::wire_bgp_ipv6_md5_and_hold_timer_against_bird", RouterKind::Bird)
}

#[test]
fn wire_bgp_ipv6_md5_and_hold_timer_against_frr() -> Result<()> {
    story("bgp_session::wire_bgp_ipv6_md5_and_hold_timer_against_frr", RouterKind::Frr)
}

#[test]
fn wire_bgp_ipv6_md5_and_hold_timer_against_gobgp() -> Result<()> {
    story("bgp_session::wire_bgp_ipv6_md5_and_hold_timer_against_gobgp", RouterKind::Gobgp)
}
