//! The lab: a node and a router namespace on one switch, the announcer in the node.
//!
//! ```text
//!   node  eth0 192.0.2.2/24 2001:db8::2/64 ── switch ── router eth0 192.0.2.1/24 2001:db8::1/64
//!   metallb-bgp-announce (AS 64512)                    bird / bgpd / gobgpd (AS 64500 or 64512)
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use metallb_bgp::config::StatusEntry;
use netlab::router::{Family, Neighbor, Router, RouterConfig, RouterKind};
use netlab::{Lab, Spawn};

pub(crate) const NODE: &str = "192.0.2.2";
pub(crate) const ROUTER: &str = "192.0.2.1";
pub(crate) const NODE6: &str = "2001:db8::2";
pub(crate) const MY_AS: u32 = 64512;
pub(crate) const ROUTER_AS: u32 = 64500;
/// Bound of every wait: sessions come up in about a second; this only turns a hang into a
/// failure.
pub(crate) const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
pub(crate) const POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The lab when this machine can host it and has `kind`'s daemons; `None` after printing
/// SKIPPED.
pub(crate) fn lab(test: &str, tag: &str, kind: RouterKind) -> Result<Option<Lab>> {
    if !netlab::gate(test, kind.programs()) {
        return Ok(None);
    }
    let mut lab = Lab::new("mlbbgp", tag)?.with_deadline(DEADLINE).with_poll(POLL);
    lab.add_host("node", "eth0", &["192.0.2.2/24", "2001:db8::2/64"])?;
    lab.add_host("router", "eth0", &["192.0.2.1/24", "2001:db8::1/64"])?;
    Ok(Some(lab))
}

/// One peer entry of the announcer's file.
pub(crate) struct PeerSpec<'a> {
    pub(crate) address: &'a str,
    pub(crate) peer_as: u32,
    pub(crate) hold: u16,
    pub(crate) password: Option<&'a str>,
    pub(crate) graceful_restart: bool,
}

impl PeerSpec<'_> {
    pub(crate) fn ebgp() -> PeerSpec<'static> {
        PeerSpec {
            address: ROUTER,
            peer_as: ROUTER_AS,
            hold: 90,
            password: None,
            graceful_restart: false,
        }
    }
}

/// The announcer's file: one peer `r`, and `routes` as YAML list items.
pub(crate) fn announce_yaml(peer: &PeerSpec<'_>, routes: &str) -> String {
    let mut s = format!(
        "peers:\n  - name: r\n    address: \"{}\"\n    peerASN: {}\n    myASN: {MY_AS}\n    routerID: {NODE}\n    holdTime: {}\n    nextHopIPv6: \"{NODE6}\"\n",
        peer.address, peer.peer_as, peer.hold
    );
    if let Some(p) = peer.password {
        s.push_str(&format!("    password: {p}\n"));
    }
    if peer.graceful_restart {
        s.push_str("    gracefulRestartTime: 120\n");
    }
    s.push_str("routes:\n");
    s.push_str(routes);
    s
}

/// Starts the announcer in the node with `yaml`; returns the config and status file paths.
pub(crate) fn start_announcer(
    lab: &mut Lab,
    yaml: &str,
    extra: &[&str],
) -> Result<(PathBuf, PathBuf)> {
    let config = lab.write_file("announce.yaml", yaml)?;
    let status = lab.dir().join("status.yaml");
    let mut args: Vec<String> = vec![
        "--config".into(),
        config.display().to_string(),
        "--status-file".into(),
        status.display().to_string(),
        "--grace-seconds".into(),
        "3".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    lab.spawn(
        Spawn::new("node", "announce", env!("CARGO_BIN_EXE_metallb-bgp-announce"))
            .args(args)
            .env("RUST_LOG", "debug"),
    )?;
    Ok((config, status))
}

/// Rewrites the announcer's file; it notices within 500 ms.
pub(crate) fn rewrite(lab: &Lab, yaml: &str) -> Result<()> {
    // A different length guarantees a different (mtime, size) stamp even within one mtime tick.
    let padded = format!("{yaml}# {}\n", "x".repeat(yaml.len() % 7 + 1));
    lab.write_file("announce.yaml", &padded)?;
    Ok(())
}

/// The announcer's view of session `r`, once the status file exists.
pub(crate) fn announcer_status(path: &PathBuf) -> Result<Option<StatusEntry>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
    let mut all: std::collections::BTreeMap<String, StatusEntry> =
        serde_norway::from_str(&text).context("status file")?;
    Ok(all.remove("r"))
}

/// Waits until the announcer reports `r` in `state`.
pub(crate) fn wait_announcer(lab: &Lab, path: &PathBuf, state: &str) -> Result<()> {
    lab.wait_for(&format!("the announcer's session in {state}"), || {
        Ok::<_, anyhow::Error>(announcer_status(path)?.is_some_and(|s| s.state == state))
    })?;
    Ok(())
}

/// The router in its namespace, AS `asn`, with the node as a passive neighbor carrying IPv4 and
/// IPv6 over the IPv4 session; `neighbor` adjusts it (password, hold time, graceful restart).
pub(crate) fn router(
    lab: &mut Lab,
    kind: RouterKind,
    asn: u32,
    neighbor: impl FnOnce(Neighbor) -> Neighbor,
) -> Result<Router> {
    let n = neighbor(
        Neighbor::new(NODE.parse()?, MY_AS).passive().families(&[Family::Ipv4, Family::Ipv6]),
    );
    let config = RouterConfig::new(asn, ROUTER.parse()?).listen(ROUTER.parse()?).neighbor(n);
    Ok(Router::start(lab, "router", kind, &config)?)
}
