//! FRR's bgpd as the router: attributes, IPv6, withdraw, MD5 and graceful shutdown.

use std::path::PathBuf;

use anyhow::Result;
use netlab::{Lab, Spawn};

use crate::common::*;

const BGPD: &str = "/usr/lib/frr/bgpd";
const PROGRAMS: [&str; 1] = ["vtysh"];

fn available(test: &str) -> bool {
    if std::path::Path::new(BGPD).exists() {
        return true;
    }
    assert!(!netlab::required(), "{test}: {} =1 but {BGPD} is missing", netlab::REQUIRE_ENV);
    println!("SKIPPED: {test}: {BGPD} is missing; the test passes without asserting");
    false
}

/// bgpd in the router namespace without zebra (nothing to install), passive towards the node.
fn start_bgpd(lab: &mut Lab, neighbor_extra: &str) -> Result<PathBuf> {
    let vty = lab.dir().join("frr");
    std::fs::create_dir_all(&vty)?;
    let n = NODE;
    let conf = format!(
        "frr defaults traditional\nhostname router\n!\nrouter bgp {ROUTER_AS}\n bgp router-id {ROUTER}\n\
         no bgp ebgp-requires-policy\n neighbor {n} remote-as {MY_AS}\n neighbor {n} passive\n{neighbor_extra}\
         address-family ipv6 unicast\n  neighbor {n} activate\n exit-address-family\n!\n"
    );
    let path = lab.write_file("bgpd.conf", &conf)?;
    let pid = lab.dir().join("bgpd.pid");
    lab.spawn(Spawn::new("router", "bgpd", BGPD).args([
        "-Z".as_ref(),
        "-S".as_ref(),
        "-l".as_ref(),
        ROUTER.as_ref(),
        "-f".as_ref(),
        path.as_os_str(),
        "-i".as_ref(),
        pid.as_os_str(),
        "--vty_socket".as_ref(),
        vty.as_os_str(),
    ]))?;
    let socket = vty.join("bgpd.vty");
    lab.wait_for("bgpd's vty socket", || Ok::<_, String>(socket.exists()))?;
    Ok(vty)
}

fn vtysh(lab: &Lab, vty: &PathBuf, command: &str) -> Result<String> {
    let dir = vty.display().to_string();
    Ok(lab.exec("router", &["vtysh", "--vty_socket", &dir, "-c", command])?)
}

fn route(lab: &Lab, vty: &PathBuf, prefix: &str) -> Result<String> {
    let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
    vtysh(lab, vty, &format!("show bgp {family} unicast {prefix}"))
}

fn wait_route(
    lab: &Lab,
    vty: &PathBuf,
    prefix: &str,
    what: &str,
    f: impl Fn(&str) -> bool,
) -> Result<String> {
    let mut last = String::new();
    lab.wait_for(what, || {
        last = route(lab, vty, prefix)?;
        Ok::<_, anyhow::Error>(f(&last))
    })
    .map_err(|e| anyhow::anyhow!("{e}; FRR says:\n{last}"))?;
    Ok(last)
}

fn present(t: &str) -> bool {
    t.contains("Paths: (1 available")
}

const ROUTES: &str = "  - prefix: 198.51.100.10/32\n    communities: [\"64512:100\"]\n    largeCommunities: [\"64512:1:2\"]\n  - prefix: 2001:db8:1::10/128\n";

#[test]
fn frr_receives_attributes_ipv6_and_withdrawals() -> Result<()> {
    let test = "frr_receives_attributes_ipv6_and_withdrawals";
    if !available(test) {
        return Ok(());
    }
    let Some(mut lab) = lab(test, "frr", &PROGRAMS)? else { return Ok(()) };
    let vty = start_bgpd(&mut lab, "")?;
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&PeerSpec::ebgp(), ROUTES), &[])?;
    let v4 = wait_route(&lab, &vty, "198.51.100.10/32", "the IPv4 route in FRR", present)?;
    for want in
        ["64512", "192.0.2.2", "Origin IGP", "Community: 64512:100", "Large Community: 64512:1:2"]
    {
        assert!(v4.contains(want), "{want} missing from\n{v4}");
    }
    let v6 = wait_route(&lab, &vty, "2001:db8:1::10/128", "the IPv6 route in FRR", present)?;
    assert!(v6.contains("2001:db8::2"), "IPv6 next hop:\n{v6}");
    wait_announcer(&lab, &status, "established")?;

    rewrite(&lab, &announce_yaml(&PeerSpec::ebgp(), "  - prefix: 2001:db8:1::10/128\n"))?;
    wait_route(&lab, &vty, "198.51.100.10/32", "the IPv4 route withdrawn", |t| !present(t))?;
    assert!(present(&route(&lab, &vty, "2001:db8:1::10/128")?));
    lab.passed(test);
    Ok(())
}

#[test]
fn frr_md5_and_graceful_shutdown() -> Result<()> {
    let test = "frr_md5_and_graceful_shutdown";
    if !available(test) {
        return Ok(());
    }
    let Some(mut lab) = lab(test, "frrgs", &PROGRAMS)? else { return Ok(()) };
    let vty = start_bgpd(&mut lab, &format!(" neighbor {NODE} password s3cret\n"))?;
    let peer = PeerSpec { password: Some("s3cret"), ..PeerSpec::ebgp() };
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&peer, ROUTES), &[])?;
    wait_route(&lab, &vty, "198.51.100.10/32", "the route over MD5", present)?;
    wait_announcer(&lab, &status, "established")?;
    let pid = lab.pid("announce")?.to_string();
    anyhow::ensure!(std::process::Command::new("kill").args(["-TERM", &pid]).status()?.success());
    let drained = wait_route(&lab, &vty, "198.51.100.10/32", "GRACEFUL_SHUTDOWN in FRR", |t| {
        t.contains("graceful-shutdown") || t.contains("65535:0")
    })?;
    assert!(present(&drained), "{drained}");
    wait_route(&lab, &vty, "198.51.100.10/32", "the route gone with the session", |t| !present(t))?;
    lab.passed(test);
    Ok(())
}
