//! One scenario list, run against each router kind: what the router learns from the announcer
//! (attributes, IPv6, withdrawals, iBGP LOCAL_PREF), TCP MD5 with the right and the wrong key,
//! the announcer's hold timer against a frozen router, graceful restart across a killed
//! announcer, and graceful shutdown on SIGTERM.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use anyhow::{Result, ensure};
use ipnet::IpNet;
use netlab::Lab;
use netlab::router::{Community, Family, LargeCommunity, LearnedRoute, Router, RouterKind};

use crate::common::*;

const V4: &str = "198.51.100.10/32";
const V6: &str = "2001:db8:1::10/128";
const ROUTES: &str = "  - prefix: 198.51.100.10/32\n    communities: [\"64512:100\"]\n    largeCommunities: [\"64512:1:2\"]\n  - prefix: 2001:db8:1::10/128\n";

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn node() -> IpAddr {
    NODE.parse().expect("address")
}

/// Every route the router learned, both families.
fn learned(router: &Router) -> Result<Vec<LearnedRoute>> {
    let mut all = router.routes(Family::Ipv4)?;
    all.extend(router.routes(Family::Ipv6)?);
    Ok(all)
}

fn find<'a>(routes: &'a [LearnedRoute], prefix: &str) -> Option<&'a LearnedRoute> {
    routes.iter().find(|r| r.prefix == net(prefix))
}

/// Waits until `check` holds for the router's routes; the last table is in the error.
fn wait_routes(
    router: &Router,
    what: &str,
    check: impl Fn(&[LearnedRoute]) -> bool,
) -> Result<Vec<LearnedRoute>> {
    let mut last = Vec::new();
    router
        .wait_for(what, || {
            last = learned(router)?;
            Ok::<_, anyhow::Error>(check(&last))
        })
        .map_err(|e| anyhow::anyhow!("{e}; the router's routes: {last:#?}"))?;
    Ok(last)
}

fn signal(lab: &mut Lab, label: &str, sig: &str) -> Result<()> {
    let pid = lab.pid(label)?.to_string();
    ensure!(Command::new("kill").args([sig, &pid]).status()?.success(), "kill {sig} {pid}");
    Ok(())
}

// === scenarios ===

fn attributes_ipv6_and_withdrawals(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, &format!("attr{kind}"), kind)? else { return Ok(()) };
    let router = router(&mut lab, kind, ROUTER_AS, |n| n)?;
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&PeerSpec::ebgp(), ROUTES), &[])?;
    let routes =
        wait_routes(&router, "both routes", |r| find(r, V4).is_some() && find(r, V6).is_some())?;
    let v4 = find(&routes, V4).expect("found");
    assert_eq!(v4.next_hop, node(), "{v4:?}");
    assert_eq!(v4.as_path, vec![MY_AS], "{v4:?}");
    assert_eq!(v4.communities, BTreeSet::from([Community(64512, 100)]), "{v4:?}");
    assert_eq!(v4.large_communities, BTreeSet::from([LargeCommunity(64512, 1, 2)]), "{v4:?}");
    let v6 = find(&routes, V6).expect("found");
    assert_eq!(v6.next_hop, NODE6.parse::<IpAddr>()?, "{v6:?}");
    assert_eq!(v6.as_path, vec![MY_AS]);
    assert!(v6.communities.is_empty());
    wait_announcer(&lab, &status, "established")?;

    rewrite(&lab, &announce_yaml(&PeerSpec::ebgp(), "  - prefix: 2001:db8:1::10/128\n"))?;
    wait_routes(&router, "the IPv4 route withdrawn", |r| {
        find(r, V4).is_none() && find(r, V6).is_some()
    })?;
    assert_eq!(announcer_status(&status)?.map(|s| s.flaps), Some(0), "a route change is no flap");
    lab.passed(test);
    Ok(())
}

fn ibgp_local_pref(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, &format!("ibgp{kind}"), kind)? else { return Ok(()) };
    let router = router(&mut lab, kind, MY_AS, |n| n)?;
    let peer = PeerSpec { peer_as: MY_AS, ..PeerSpec::ebgp() };
    let routes = "  - prefix: 198.51.100.20/32\n    localPref: 200\n";
    start_announcer(&mut lab, &announce_yaml(&peer, routes), &[])?;
    let learned =
        wait_routes(&router, "the iBGP route", |r| find(r, "198.51.100.20/32").is_some())?;
    let r = find(&learned, "198.51.100.20/32").expect("found");
    assert_eq!(r.local_pref, Some(200), "{r:?}");
    assert!(r.as_path.is_empty(), "an empty AS_PATH on iBGP: {r:?}");
    lab.passed(test);
    Ok(())
}

fn md5_right_and_wrong_key(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, &format!("md5{kind}"), kind)? else { return Ok(()) };
    let router = router(&mut lab, kind, ROUTER_AS, |n| n.password("s3cret"))?;
    let right = PeerSpec { password: Some("s3cret"), ..PeerSpec::ebgp() };
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&right, ROUTES), &[])?;
    wait_routes(&router, "the route over MD5", |r| find(r, V4).is_some())?;
    wait_announcer(&lab, &status, "established")?;

    let wrong = PeerSpec { password: Some("wrong"), ..PeerSpec::ebgp() };
    rewrite(&lab, &announce_yaml(&wrong, ROUTES))?;
    // The new session's SYNs carry the wrong signature: the router's kernel drops them
    // unanswered, so the attempt times out (a refused or reset connection would read
    // `connection_closed`), and the announcer says so.
    lab.wait_for("a failed connection attempt with the wrong key", || {
        Ok::<_, anyhow::Error>(announcer_status(&status)?.is_some_and(|s| {
            s.state != "established" && s.last_error.as_deref() == Some("connect_failed")
        }))
    })?;
    lab.passed(test);
    Ok(())
}

fn hold_timer_expiry(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, &format!("hold{kind}"), kind)? else { return Ok(()) };
    let router = router(&mut lab, kind, ROUTER_AS, |n| n.hold_time(3))?;
    let peer = PeerSpec { hold: 3, ..PeerSpec::ebgp() };
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&peer, ROUTES), &[])?;
    wait_announcer(&lab, &status, "established")?;
    // A frozen router sends no KEEPALIVE: after 3 s the announcer's hold timer fires.
    // The lab labels each daemon process `<namespace>-<daemon>`.
    let daemon = match kind {
        RouterKind::Bird => "router-bird",
        RouterKind::Frr => "router-bgpd",
        RouterKind::Gobgp => "router-gobgpd",
    };
    signal(&mut lab, daemon, "-STOP")?;
    let waited = lab.wait_for("the announcer's hold timer", || {
        Ok::<_, anyhow::Error>(announcer_status(&status)?.is_some_and(|s| {
            s.last_error.as_deref().is_some_and(|e| e.contains("hold_timer_expired"))
        }))
    });
    signal(&mut lab, daemon, "-CONT")?;
    waited?;
    assert!(announcer_status(&status)?.is_some_and(|s| s.flaps >= 1));
    drop(router);
    lab.passed(test);
    Ok(())
}

fn graceful_restart(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, &format!("gr{kind}"), kind)? else { return Ok(()) };
    let router = router(&mut lab, kind, ROUTER_AS, |n| n.graceful_restart(120))?;
    let peer = PeerSpec { graceful_restart: true, ..PeerSpec::ebgp() };
    let yaml = announce_yaml(&peer, ROUTES);
    let (_, status) = start_announcer(&mut lab, &yaml, &[])?;
    wait_routes(&router, "the routes", |r| find(r, V4).is_some() && find(r, V6).is_some())?;
    wait_announcer(&lab, &status, "established")?;

    lab.kill("announce")?;
    let stale =
        wait_routes(&router, "the routes kept as stale while the announcer is gone", |r| {
            find(r, V4).is_some_and(|r| r.stale)
        })?;
    assert!(find(&stale, V6).is_some(), "IPv6 kept too: {stale:#?}");

    start_announcer(&mut lab, &yaml, &["--restarted"])?;
    let fresh = wait_routes(&router, "the routes refreshed after the restart", |r| {
        find(r, V4).is_some_and(|r| !r.stale) && find(r, V6).is_some_and(|r| !r.stale)
    })?;
    assert_eq!(
        find(&fresh, V4).expect("found").communities,
        BTreeSet::from([Community(64512, 100)])
    );
    lab.passed(test);
    Ok(())
}

fn graceful_shutdown(test: &str, kind: RouterKind) -> Result<()> {
    let Some(mut lab) = lab(test, &format!("gs{kind}"), kind)? else { return Ok(()) };
    let router = router(&mut lab, kind, ROUTER_AS, |n| n)?;
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&PeerSpec::ebgp(), ROUTES), &[])?;
    wait_announcer(&lab, &status, "established")?;
    wait_routes(&router, "the route", |r| find(r, V4).is_some())?;
    signal(&mut lab, "announce", "-TERM")?;
    let shutdown = Community(65535, 0);
    let drained = wait_routes(&router, "GRACEFUL_SHUTDOWN on the routes", |r| {
        find(r, V4).is_some_and(|r| r.communities.contains(&shutdown))
            && find(r, V6).is_some_and(|r| r.communities.contains(&shutdown))
    })?;
    assert!(find(&drained, V4).expect("found").communities.contains(&Community(64512, 100)));
    wait_routes(&router, "the routes gone with the session", |r| find(r, V4).is_none())?;
    netlab::wait_for("the announcer to exit", DEADLINE, POLL, || {
        Ok::<_, String>(!lab.is_running("announce"))
    })?;
    lab.passed(test);
    Ok(())
}

macro_rules! matrix {
    ($scenario:ident: $($(#[$attr:meta])* $name:ident => $kind:ident),+ $(,)?) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() -> Result<()> {
                $scenario(stringify!($name), RouterKind::$kind)
            }
        )+
    };
}

matrix!(attributes_ipv6_and_withdrawals:
    bird_learns_attributes_ipv6_and_withdrawals => Bird,
    frr_learns_attributes_ipv6_and_withdrawals => Frr,
    gobgp_learns_attributes_ipv6_and_withdrawals => Gobgp,
);
matrix!(ibgp_local_pref:
    bird_ibgp_gets_local_pref => Bird,
    frr_ibgp_gets_local_pref => Frr,
    gobgp_ibgp_gets_local_pref => Gobgp,
);
matrix!(md5_right_and_wrong_key:
    bird_md5_right_key_connects_wrong_key_does_not => Bird,
    frr_md5_right_key_connects_wrong_key_does_not => Frr,
    gobgp_md5_right_key_connects_wrong_key_does_not => Gobgp,
);
matrix!(hold_timer_expiry:
    bird_frozen_expires_the_announcers_hold_timer => Bird,
    frr_frozen_expires_the_announcers_hold_timer => Frr,
    gobgp_frozen_expires_the_announcers_hold_timer => Gobgp,
);
matrix!(graceful_restart:
    bird_keeps_stale_routes_across_a_killed_announcer => Bird,
    frr_keeps_stale_routes_across_a_killed_announcer => Frr,
    gobgp_keeps_stale_routes_across_a_killed_announcer => Gobgp,
);
matrix!(graceful_shutdown:
    bird_sees_graceful_shutdown_before_the_session_drops => Bird,
    frr_sees_graceful_shutdown_before_the_session_drops => Frr,
    gobgp_sees_graceful_shutdown_before_the_session_drops => Gobgp,
);
