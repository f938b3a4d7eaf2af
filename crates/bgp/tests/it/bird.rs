//! BIRD 2 as the router: sessions, attributes, withdraw, IPv6, MD5, hold timer, graceful
//! restart and graceful shutdown.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use netlab::{Lab, Spawn};

use crate::common::*;

const PROGRAMS: [&str; 2] = ["bird", "birdc"];

/// BIRD in the router namespace, passive (the announcer dials), importing everything.
fn start_bird(lab: &mut Lab, peer_as: u32, extra: &str) -> Result<PathBuf> {
    let socket = lab.dir().join("bird.ctl");
    let conf = format!(
        "log stderr all;\nrouter id {ROUTER};\nprotocol device {{ scan time 1; }}\n\
         protocol bgp r {{\n  local {ROUTER} as {peer_as};\n  neighbor {NODE} as {MY_AS};\n  passive on;\n  {extra}\n\
         ipv4 {{ import all; export none; }};\n  ipv6 {{ import all; export none; }};\n}}\n"
    );
    let path = lab.write_file("bird.conf", &conf)?;
    lab.spawn(Spawn::new("router", "bird", "bird").args([
        "-f".as_ref(),
        "-c".as_ref(),
        path.as_os_str(),
        "-s".as_ref(),
        socket.as_os_str(),
    ]))?;
    lab.wait_for("bird's control socket", || Ok::<_, String>(socket.exists()))?;
    Ok(socket)
}

fn birdc(lab: &Lab, socket: &PathBuf, command: &str) -> Result<String> {
    let socket = socket.display().to_string();
    let mut args = vec!["birdc", "-s", &socket];
    args.extend(command.split(' '));
    Ok(lab.exec("router", &args)?)
}

fn routes(lab: &Lab, socket: &PathBuf) -> Result<String> {
    Ok(format!(
        "{}{}",
        birdc(lab, socket, "show route all table master4 protocol r")?,
        birdc(lab, socket, "show route all table master6 protocol r")?
    ))
}

fn established(lab: &Lab, socket: &PathBuf) -> Result<bool> {
    Ok(birdc(lab, socket, "show protocols r")?.contains("Established"))
}

fn wait_routes(
    lab: &Lab,
    socket: &PathBuf,
    what: &str,
    f: impl Fn(&str) -> bool,
) -> Result<String> {
    let mut last = String::new();
    lab.wait_for(what, || {
        last = routes(lab, socket)?;
        Ok::<_, anyhow::Error>(f(&last))
    })
    .map_err(|e| anyhow::anyhow!("{e}; BIRD's table:\n{last}"))?;
    Ok(last)
}

fn signal(lab: &mut Lab, label: &str, sig: &str) -> Result<()> {
    let pid = lab.pid(label)?.to_string();
    let ok = Command::new("kill").args([sig, &pid]).status()?.success();
    anyhow::ensure!(ok, "kill {sig} {pid}");
    Ok(())
}

const ROUTES: &str = "  - prefix: 198.51.100.10/32\n    communities: [\"64512:100\"]\n    largeCommunities: [\"64512:1:2\"]\n  - prefix: 2001:db8:1::10/128\n";

#[test]
fn bird_receives_attributes_ipv6_and_withdrawals() -> Result<()> {
    let Some(mut lab) = lab("bird_receives_attributes_ipv6_and_withdrawals", "attrs", &PROGRAMS)?
    else {
        return Ok(());
    };
    let socket = start_bird(&mut lab, ROUTER_AS, "")?;
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&PeerSpec::ebgp(), ROUTES), &[])?;
    let table = wait_routes(&lab, &socket, "both routes in BIRD", |t| {
        t.contains("198.51.100.10/32") && t.contains("2001:db8:1::10/128")
    })?;
    for want in [
        "BGP.origin: IGP",
        "BGP.as_path: 64512",
        "BGP.next_hop: 192.0.2.2",
        "BGP.community: (64512,100)",
        "BGP.large_community: (64512, 1, 2)",
        "BGP.next_hop: 2001:db8::2",
    ] {
        assert!(table.contains(want), "{want} missing from\n{table}");
    }
    wait_announcer(&lab, &status, "established")?;

    rewrite(&lab, &announce_yaml(&PeerSpec::ebgp(), "  - prefix: 2001:db8:1::10/128\n"))?;
    wait_routes(&lab, &socket, "the IPv4 route withdrawn", |t| {
        !t.contains("198.51.100.10/32") && t.contains("2001:db8:1::10/128")
    })?;
    assert_eq!(announcer_status(&status)?.map(|s| s.flaps), Some(0), "a route change is no flap");
    lab.passed("bird_receives_attributes_ipv6_and_withdrawals");
    Ok(())
}

#[test]
fn bird_ibgp_gets_local_pref() -> Result<()> {
    let Some(mut lab) = lab("bird_ibgp_gets_local_pref", "ibgp", &PROGRAMS)? else {
        return Ok(());
    };
    let socket = start_bird(&mut lab, MY_AS, "")?;
    let peer = PeerSpec { peer_as: MY_AS, ..PeerSpec::ebgp() };
    let routes = "  - prefix: 198.51.100.20/32\n    localPref: 200\n";
    start_announcer(&mut lab, &announce_yaml(&peer, routes), &[])?;
    let table = wait_routes(&lab, &socket, "the iBGP route", |t| t.contains("198.51.100.20/32"))?;
    assert!(table.contains("BGP.local_pref: 200"), "{table}");
    assert!(table.lines().any(|l| l.trim() == "BGP.as_path:"), "empty AS_PATH on iBGP:\n{table}");
    lab.passed("bird_ibgp_gets_local_pref");
    Ok(())
}

#[test]
fn bird_md5_right_key_connects_wrong_key_never_does() -> Result<()> {
    let Some(mut lab) = lab("bird_md5_right_key_connects_wrong_key_never_does", "md5", &PROGRAMS)?
    else {
        return Ok(());
    };
    let socket = start_bird(&mut lab, ROUTER_AS, "password \"s3cret\";")?;
    let right = PeerSpec { password: Some("s3cret"), ..PeerSpec::ebgp() };
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&right, ROUTES), &[])?;
    wait_routes(&lab, &socket, "the route over MD5", |t| t.contains("198.51.100.10/32"))?;
    wait_announcer(&lab, &status, "established")?;

    let wrong = PeerSpec { password: Some("wrong"), ..PeerSpec::ebgp() };
    rewrite(&lab, &announce_yaml(&wrong, ROUTES))?;
    // The new session's SYNs carry the wrong signature: the router drops them, the attempt
    // times out, and the announcer says so.
    lab.wait_for("a failed connection attempt with the wrong key", || {
        Ok::<_, anyhow::Error>(announcer_status(&status)?.is_some_and(|s| {
            s.state != "established" && s.last_error.as_deref() == Some("connect_failed")
        }))
    })?;
    assert!(!established(&lab, &socket)?, "BIRD must not accept the wrong key");
    lab.passed("bird_md5_right_key_connects_wrong_key_never_does");
    Ok(())
}

#[test]
fn bird_silent_router_expires_the_announcers_hold_timer() -> Result<()> {
    let Some(mut lab) =
        lab("bird_silent_router_expires_the_announcers_hold_timer", "hold", &PROGRAMS)?
    else {
        return Ok(());
    };
    // BIRD waits 60 s after a failure before it accepts a session again by default.
    let socket = start_bird(&mut lab, ROUTER_AS, "hold time 3; error wait time 1, 2;")?;
    let peer = PeerSpec { hold: 3, ..PeerSpec::ebgp() };
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&peer, ROUTES), &[])?;
    wait_announcer(&lab, &status, "established")?;
    assert!(established(&lab, &socket)?);
    // A frozen router sends no KEEPALIVE: after 3 s the announcer's hold timer fires.
    signal(&mut lab, "bird", "-STOP")?;
    let waited = lab.wait_for("the announcer's hold timer", || {
        Ok::<_, anyhow::Error>(announcer_status(&status)?.is_some_and(|s| {
            s.last_error.as_deref().is_some_and(|e| e.contains("hold_timer_expired"))
        }))
    });
    signal(&mut lab, "bird", "-CONT")?;
    waited?;
    wait_announcer(&lab, &status, "established")?;
    assert!(announcer_status(&status)?.is_some_and(|s| s.flaps >= 1));
    lab.passed("bird_silent_router_expires_the_announcers_hold_timer");
    Ok(())
}

#[test]
fn bird_keeps_routes_across_a_killed_announcer_with_graceful_restart() -> Result<()> {
    let Some(mut lab) =
        lab("bird_keeps_routes_across_a_killed_announcer_with_graceful_restart", "gr", &PROGRAMS)?
    else {
        return Ok(());
    };
    let socket = start_bird(&mut lab, ROUTER_AS, "graceful restart on;")?;
    let peer = PeerSpec { graceful_restart: true, ..PeerSpec::ebgp() };
    let yaml = announce_yaml(&peer, ROUTES);
    let (_, status) = start_announcer(&mut lab, &yaml, &[])?;
    wait_routes(&lab, &socket, "the route", |t| t.contains("198.51.100.10/32"))?;
    wait_announcer(&lab, &status, "established")?;

    lab.kill("announce")?;
    lab.wait_for("BIRD to notice the lost session", || {
        Ok::<_, anyhow::Error>(!established(&lab, &socket)?)
    })?;
    let table = routes(&lab, &socket)?;
    assert!(table.contains("198.51.100.10/32"), "kept as stale during the restart:\n{table}");

    start_announcer(&mut lab, &yaml, &["--restarted"])?;
    lab.wait_for("the session back", || Ok::<_, anyhow::Error>(established(&lab, &socket)?))?;
    let table =
        wait_routes(&lab, &socket, "the route refreshed", |t| t.contains("198.51.100.10/32"))?;
    assert!(table.contains("BGP.community: (64512,100)"), "{table}");
    lab.passed("bird_keeps_routes_across_a_killed_announcer_with_graceful_restart");
    Ok(())
}

#[test]
fn bird_sees_graceful_shutdown_before_the_session_drops() -> Result<()> {
    let Some(mut lab) =
        lab("bird_sees_graceful_shutdown_before_the_session_drops", "gshut", &PROGRAMS)?
    else {
        return Ok(());
    };
    let socket = start_bird(&mut lab, ROUTER_AS, "")?;
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&PeerSpec::ebgp(), ROUTES), &[])?;
    wait_announcer(&lab, &status, "established")?;
    wait_routes(&lab, &socket, "the route", |t| t.contains("198.51.100.10/32"))?;
    signal(&mut lab, "announce", "-TERM")?;
    // BIRD prints well-known communities by name or number depending on the version.
    let table = wait_routes(&lab, &socket, "GRACEFUL_SHUTDOWN on the route", |t| {
        t.contains("(65535,0)") || t.contains("graceful")
    })?;
    assert!(table.contains("198.51.100.10/32"), "{table}");
    wait_routes(&lab, &socket, "the routes gone with the session", |t| {
        !t.contains("198.51.100.10/32")
    })?;
    netlab::wait_for("the announcer to exit", DEADLINE, POLL, || {
        Ok::<_, String>(!lab.is_running("announce"))
    })?;
    lab.passed("bird_sees_graceful_shutdown_before_the_session_drops");
    Ok(())
}
