//! GoBGP as the router: attributes, IPv6 and withdraw, read through its CLI.

use anyhow::Result;
use netlab::{Lab, Spawn};

use crate::common::*;

const PROGRAMS: [&str; 2] = ["gobgpd", "gobgp"];
/// gobgpd's API inside the router namespace's own loopback.
const API_PORT: &str = "50051";

fn start_gobgpd(lab: &mut Lab) -> Result<()> {
    let conf = format!(
        "[global.config]\n  as = {ROUTER_AS}\n  router-id = \"{ROUTER}\"\n  local-address-list = [\"{ROUTER}\"]\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{NODE}\"\n    peer-as = {MY_AS}\n\
         \x20 [neighbors.transport.config]\n    passive-mode = true\n\
         \x20 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n\
         \x20 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv6-unicast\"\n"
    );
    let path = lab.write_file("gobgpd.toml", &conf)?;
    let api = format!("127.0.0.1:{API_PORT}");
    lab.spawn(Spawn::new("router", "gobgpd", "gobgpd").args([
        "-f".as_ref(),
        path.as_os_str(),
        "--api-hosts".as_ref(),
        api.as_ref(),
    ]))?;
    lab.wait_for("gobgpd's API", || Ok::<_, String>(gobgp(lab, &["global"]).is_ok()))?;
    Ok(())
}

fn gobgp(lab: &Lab, args: &[&str]) -> Result<String> {
    let mut full = vec!["gobgp", "-u", "127.0.0.1", "-p", API_PORT];
    full.extend_from_slice(args);
    Ok(lab.exec("router", &full)?)
}

fn rib(lab: &Lab) -> Result<String> {
    Ok(format!(
        "{}{}",
        gobgp(lab, &["global", "rib", "-a", "ipv4"])?,
        gobgp(lab, &["global", "rib", "-a", "ipv6"])?
    ))
}

fn wait_rib(lab: &Lab, what: &str, f: impl Fn(&str) -> bool) -> Result<String> {
    let mut last = String::new();
    lab.wait_for(what, || {
        last = rib(lab)?;
        Ok::<_, anyhow::Error>(f(&last))
    })
    .map_err(|e| anyhow::anyhow!("{e}; GoBGP's RIB:\n{last}"))?;
    Ok(last)
}

#[test]
fn gobgp_receives_attributes_ipv6_and_withdrawals() -> Result<()> {
    let test = "gobgp_receives_attributes_ipv6_and_withdrawals";
    let Some(mut lab) = lab(test, "gobgp", &PROGRAMS)? else { return Ok(()) };
    start_gobgpd(&mut lab)?;
    let routes = "  - prefix: 198.51.100.10/32\n    communities: [\"64512:100\"]\n    largeCommunities: [\"64512:1:2\"]\n  - prefix: 2001:db8:1::10/128\n";
    let (_, status) = start_announcer(&mut lab, &announce_yaml(&PeerSpec::ebgp(), routes), &[])?;
    let table = wait_rib(&lab, "both routes in GoBGP", |t| {
        t.contains("198.51.100.10/32") && t.contains("2001:db8:1::10/128")
    })?;
    let v4 = table.lines().find(|l| l.contains("198.51.100.10/32")).unwrap_or_default();
    for want in ["192.0.2.2", "64512", "64512:100", "64512:1:2"] {
        assert!(v4.contains(want), "{want} missing from {v4:?}");
    }
    let v6 = table.lines().find(|l| l.contains("2001:db8:1::10/128")).unwrap_or_default();
    assert!(v6.contains("2001:db8::2"), "IPv6 next hop: {v6:?}");
    wait_announcer(&lab, &status, "established")?;
    rewrite(&lab, &announce_yaml(&PeerSpec::ebgp(), "  - prefix: 2001:db8:1::10/128\n"))?;
    wait_rib(&lab, "the IPv4 route withdrawn", |t| !t.contains("198.51.100.10/32"))?;
    lab.passed(test);
    Ok(())
}
