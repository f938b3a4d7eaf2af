//! What the BGP-mode wire tests share: the node file the speaker reads (the format of
//! `docs/internal/bgp-objects.md`, "File source"), starting the speaker binary in a node
//! namespace, signals, and waits on the router's table that quote it when they time out.
//!
//! Every test here runs the real `metallb-speaker --mode bgp` in lab namespaces and a real
//! routing daemon (`netlab::router`) as the router; a machine without root or without the
//! daemon prints `SKIPPED: …` ([`netlab::gate`]).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow};
use ipnet::IpNet;
use netlab::router::{Family, LearnedRoute, Router, RouterKind};
use netlab::{Lab, Spawn};

/// Namespace family of the BGP-mode tests (`spkbgp-<pid>-<tag>-<name>`).
pub(crate) const FAMILY: &str = "spkbgp";
/// Bound of every wait: sessions come up within seconds; a loaded CI machine is slower.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);
/// The router's AS and the nodes' AS.
pub(crate) const ROUTER_AS: u32 = 64500;
pub(crate) const NODE_AS: u32 = 64501;

pub(crate) fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

pub(crate) fn net(text: &str) -> IpNet {
    text.parse().expect("prefix")
}

/// The lab for `test` against `kind`, or `None` after `SKIPPED` (not root, daemon missing).
pub(crate) fn lab(test: &str, tag: &str, kind: RouterKind) -> Result<Option<Lab>> {
    if !netlab::gate(test, kind.programs()) {
        return Ok(None);
    }
    Ok(Some(Lab::new(FAMILY, tag)?.with_deadline(DEADLINE)))
}

/// One entry of the file's `peers`.
#[derive(Clone, Debug)]
pub(crate) struct Peer<'a> {
    pub(crate) name: &'a str,
    pub(crate) address: &'a str,
    pub(crate) source: &'a str,
    /// `holdTime`, seconds.
    pub(crate) hold: u16,
    pub(crate) password_file: Option<&'a Path>,
    /// BFD 100 ms × 3, as the router asks.
    pub(crate) bfd: NodeBfd,
    pub(crate) router_id: Option<&'a str>,
}

/// The node's BFD for a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeBfd {
    Off,
    /// The node starts the session.
    Active,
    /// `passiveMode: true`: the node waits for the router to start it.
    Passive,
}

impl<'a> Peer<'a> {
    /// Peer `name` at `address`, connected from `source`: hold time 90 s, no password, no BFD.
    pub(crate) fn new(name: &'a str, address: &'a str, source: &'a str) -> Peer<'a> {
        Peer {
            name,
            address,
            source,
            hold: 90,
            password_file: None,
            bfd: NodeBfd::Off,
            router_id: None,
        }
    }
}

/// One entry of the file's `routes`: `ip` announced as its host prefix.
#[derive(Clone, Debug)]
pub(crate) struct Route<'a> {
    pub(crate) pool: &'a str,
    pub(crate) ip: &'a str,
    pub(crate) peers: &'a [&'a str],
    pub(crate) community: &'a str,
}

/// The speaker's file for `node`.
pub(crate) fn node_file(
    node: &str,
    peers: &[Peer<'_>],
    pools: &[(&str, &str)],
    routes: &[Route<'_>],
) -> String {
    let mut s = format!("node: {node}\npeers:\n");
    for p in peers {
        let _ = write!(
            s,
            "  {}:\n    peerAddress: \"{}\"\n    peerASN: {ROUTER_AS}\n    myASN: {NODE_AS}\n    \
             holdTime: {}s\n    sourceAddress: \"{}\"\n",
            p.name, p.address, p.hold, p.source
        );
        if let Some(file) = p.password_file {
            let _ = writeln!(s, "    passwordFile: {}", file.display());
        }
        let timers = "receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3";
        match p.bfd {
            NodeBfd::Off => {}
            NodeBfd::Active => {
                let _ = writeln!(s, "    bfd: {{{timers}}}");
            }
            NodeBfd::Passive => {
                let _ = writeln!(s, "    bfd: {{{timers}, passiveMode: true}}");
            }
        }
        if let Some(id) = p.router_id {
            let _ = writeln!(s, "    routerID: {id}");
        }
    }
    s.push_str("pools:\n");
    for (name, cidr) in pools {
        let _ = writeln!(s, "  {name}: [\"{cidr}\"]");
    }
    s.push_str("routes:\n");
    for r in routes {
        let len = if ip(r.ip).is_ipv4() { 32 } else { 128 };
        let _ = writeln!(
            s,
            "  - {{pool: {}, ip: \"{}\", prefix: \"{}/{len}\", peers: [{}], communities: [\"{}\"]}}",
            r.pool,
            r.ip,
            r.ip,
            r.peers.join(", "),
            r.community
        );
    }
    s
}

/// Starts `metallb-speaker --mode bgp` as node `ns` (process label `ns`) reading `file`,
/// with a SIGTERM grace of 3 s. A label whose process ended may be started again (a restart).
pub(crate) fn start_speaker(lab: &mut Lab, ns: &str, file: &Path) -> Result<()> {
    let source = format!("file:{}", file.display());
    lab.spawn(
        Spawn::new(ns, ns, env!("CARGO_BIN_EXE_metallb-speaker"))
            .args(["--mode", "bgp", "--node-name", ns, "--source", &source])
            .args(["--log-format", "text", "--bgp-shutdown-grace", "3s"])
            .args(["--source-poll-interval", "200ms"])
            .env("RUST_LOG", "debug"),
    )?;
    Ok(())
}

/// Sends `signal` to process `label` without waiting for anything.
pub(crate) fn signal(lab: &mut Lab, label: &str, signal: nix::sys::signal::Signal) -> Result<()> {
    let pid = i32::try_from(lab.pid(label)?)?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)?;
    Ok(())
}

/// Waits until `check` holds for the router's paths of `family`; the last table is quoted in
/// the error. Returns the table and how long it took.
pub(crate) fn wait_routes(
    router: &Router,
    family: Family,
    what: &str,
    check: impl Fn(&[LearnedRoute]) -> bool,
) -> Result<(Vec<LearnedRoute>, Duration)> {
    let mut last = Vec::new();
    let took = router
        .wait_for(what, || {
            last = router.routes(family)?;
            Ok::<_, anyhow::Error>(check(&last))
        })
        .map_err(|e| anyhow!("{e}; the router's paths: {last:#?}"))?;
    Ok((last, took))
}

/// The paths of `prefix` from `from`.
pub(crate) fn path_from<'r>(
    routes: &'r [LearnedRoute],
    prefix: &IpNet,
    from: IpAddr,
) -> Option<&'r LearnedRoute> {
    routes.iter().find(|r| &r.prefix == prefix && r.from == from)
}
