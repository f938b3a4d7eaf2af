//! `cargo xtask demo --mode bgp`: the BGP story of the seed on one machine.
//!
//! ```text
//!  examples/demo-bgp/*.yaml ─► fake cluster ◄──► metallb-hooks (real binary, test kit framework)
//!                                  │ SDNInternalBGPAnnouncement, peers, pools
//!                                  ▼
//!   front-N.yaml (file::node_file) ─► metallb-speaker --mode bgp ×3 ── BGP + BFD ─┐
//!
//!   front-0 192.0.2.11 ┐                                                          ▼
//!   front-1 192.0.2.12 ├ bridge ── eth0 192.0.2.1  router: FRR (zebra, bgpd, bfdd), ECMP
//!   front-2 192.0.2.13 ┘              eth1 198.51.100.1 ── client 198.51.100.2
//! ```
//!
//! Every node holds the Service IP on `kube-ipvs0` (kube-proxy in IPVS mode) and answers UDP
//! datagrams to it with its name; the client sends each request as one datagram from a new
//! source port, so the router's 5-tuple hash spreads the requests over the nodes.
//!
//! Why UDP and not a new TCP connection per request: the router's ECMP is stateless, so when a
//! next hop leaves the route the kernel re-hashes flows, and a connection whose SYN reached one
//! node and whose next segment is routed after the change reaches another node, which answers
//! with a reset. No stateless ECMP router keeps such a connection, however gracefully the node
//! leaves; Linux's hash-threshold even moves some flows between the surviving next hops. A
//! request of one datagram answered by one datagram (as DNS) is never cut by a route change, so
//! a failed request shows a real outage: a node that got it and could not answer.
//!
//! The story: the Service gets its IP from the pool and the hooks publish its announcement; the
//! router installs a route with three next hops and all three nodes answer; front-0 dies
//! (`kill -9` of its speaker, cable pulled) and BFD makes the router drop it within a second,
//! the other two answering on; front-0 comes back; front-1's speaker is stopped with SIGTERM (a
//! drain), the router moves the traffic away before the session closes, and once the speaker
//! has exited front-1 is taken off the network (as a node shut down after its drain), and no
//! request fails. [`run`] returns a [`BgpReport`] that the CI test asserts on.

mod file;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use metallb_api::MetalLoadBalancerBGPPeerSpec;
use metallb_api::bgp::BfdSettings;
use metallb_api::names::{api, bgp as bgp_names, labels};
use netlab::router::{Bfd, BfdState, Neighbor, Router, RouterConfig, RouterKind, SessionState};
use netlab::{Lab, Spawn};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use super::agent::{self, Probe, Sample};
use super::control::ControlPlane;
use super::wire::{self, HTTP_PORT};
use super::{Binaries, Fetches, Options, Running, Story, ms, runs};

/// The demo's files under `examples/`.
const EXAMPLES: &str = "demo-bgp";
/// The router's namespace.
const ROUTER: &str = "router";
/// The client's namespace, behind the router.
const CLIENT: &str = "client";
/// Every node's and the router's interface on the nodes' segment.
const UPLINK: &str = "eth0";
/// The router's interface towards the client.
const DOWNLINK: &str = "eth1";
/// The router's address towards the client, and the client's (documentation range).
const ROUTER_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// Prefix length of both segments.
const SEGMENT_PREFIX: u8 = 24;
/// kube-proxy's IPVS dummy interface, holding the Service IP on every node.
const IPVS_DEVICE: &str = "kube-ipvs0";
/// How often the speakers re-read their file: in a cluster the watch delivers a change at
/// once, so the demo polls fast to keep the story's steps short.
const SOURCE_POLL: &str = "200ms";
/// The speaker's health endpoint in each node namespace (its default).
const SPEAKER_HTTP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 7472);
/// Pause between two requests of one loop of the client: about 50 requests a second per loop
/// resolves a sub-second outage well and costs little.
const WATCH_EVERY: Duration = Duration::from_millis(20);
/// The client's request loops: two, so that a request waiting in vain for the dead node's
/// answer leaves the other loop running.
const WATCH_LOOPS: usize = 2;
/// Poll period of the router's kernel route while measuring: the figure's resolution.
const POLL: Duration = Duration::from_millis(10);
/// Bound of every wait: sessions come up in a second or two, the drain takes the speaker's
/// shutdown grace (5 s); the bound only turns a hang into an error.
const STEP_DEADLINE: Duration = Duration::from_secs(30);
/// How long the client keeps asking after each change, to show the new state carries the
/// traffic.
const WATCH_AFTER: Duration = Duration::from_secs(1);
/// Requests shown as the first answers.
const FIRST_FETCHES: usize = 60;

/// What the BGP demo observed.
#[derive(Debug, Clone)]
pub struct BgpReport {
    /// The prefix of the demo's namespaces.
    pub prefix: String,
    /// The Service's IP (its `status.loadBalancer.ingress`).
    pub service_ip: IpAddr,
    /// The pool it came from (the announcement's `spec.pool`).
    pub pool: String,
    /// The nodes the hooks' announcement names.
    pub announced_by: Vec<String>,
    /// The nodes the router's kernel route pointed at before the failure.
    pub next_hops: Vec<String>,
    /// Answers per node before the failure.
    pub answers: BTreeMap<String, usize>,
    /// The node that died.
    pub failed_node: String,
    /// From its death to the router's kernel route without it.
    pub dropped_after: Duration,
    /// The router's BFD state with the failed node once the route changed.
    pub failed_bfd: Option<BfdState>,
    /// The route's next hops then.
    pub next_hops_after_failure: Vec<String>,
    /// Requests from the death until the node came back.
    pub while_down: Fetches,
    /// Of those, the failed requests that started after the router dropped the node.
    pub failed_after_drop: usize,
    /// Answers per node from the router's change until the node came back.
    pub answers_while_down: BTreeMap<String, usize>,
    /// From the cable back in to the route with the node again.
    pub returned_after: Duration,
    /// The route's next hops then.
    pub next_hops_after_return: Vec<String>,
    /// Requests from the return until the drain.
    pub after_return: Fetches,
    /// Answers per node then.
    pub answers_after_return: BTreeMap<String, usize>,
    /// The node whose speaker got SIGTERM.
    pub drained_node: String,
    /// From SIGTERM to the route without it.
    pub drain_left_route_after: Duration,
    /// Whether its session was still Established when the route left it.
    pub session_up_when_route_left: bool,
    /// From SIGTERM to the session closed.
    pub session_closed_after: Duration,
    /// The route's next hops after the drain.
    pub next_hops_after_drain: Vec<String>,
    /// From SIGTERM to the drained node's cable pulled (after its speaker exited).
    pub drain_unplugged_after: Duration,
    /// Requests from SIGTERM to the end, the last second of them with the drained node off
    /// the network.
    pub drain: Fetches,
    /// Every failed request of the drain: when it started relative to SIGTERM, how long it
    /// took, why.
    pub drain_failures: Vec<String>,
    /// Answers per node then.
    pub answers_while_draining: BTreeMap<String, usize>,
    /// Namespaces with the demo's prefix left after cleanup (none, unless cleanup failed).
    pub leftover_namespaces: Vec<String>,
    /// The whole demo, build included.
    pub took: Duration,
}

/// Runs the BGP demo from the repository at `root`.
pub fn run(root: &Path, options: &Options) -> Result<BgpReport> {
    let (story, bins, slot) = super::prepare(
        root,
        options,
        "metallb demo --mode bgp: the BGP story on one machine",
        RouterKind::Frr.programs(),
    )?;
    let mut report = scenario(root, options, &bins, &story, &slot)?;
    report.leftover_namespaces = super::finish(&story, &report.prefix)?;
    report.took = story.started.elapsed();
    Ok(report)
}

/// The router's side of the peer object: who the nodes talk to.
struct Peer {
    name: String,
    address: IpAddr,
    asn: u32,
    node_asn: u32,
    bfd: Option<Bfd>,
}

impl Peer {
    fn from_cluster(control: &ControlPlane) -> Result<Peer> {
        let object = control
            .objects_of(api::BGP_PEER_KIND)
            .next()
            .context("examples/demo-bgp/bgp.yaml holds no MetalLoadBalancerBGPPeer")?;
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let spec: MetalLoadBalancerBGPPeerSpec =
            serde_json::from_value(object["spec"].clone()).context("the peer's spec")?;
        let ms = |v: Option<u32>| {
            Duration::from_millis(u64::from(v.unwrap_or(bgp_names::DEFAULT_BFD_INTERVAL_MS)))
        };
        let bfd = spec.bfd.as_ref().map(|b: &BfdSettings| Bfd {
            min_rx: ms(b.receive_interval),
            min_tx: ms(b.transmit_interval),
            multiplier: u8::try_from(
                b.detect_multiplier.unwrap_or(bgp_names::DEFAULT_BFD_DETECT_MULTIPLIER),
            )
            .unwrap_or(u8::MAX),
        });
        Ok(Peer {
            name: name.to_owned(),
            address: spec.peer_address.parse().context("the peer's peerAddress")?,
            asn: spec.peer_asn,
            node_asn: spec.my_asn,
            bfd,
        })
    }
}

/// The lab with its router and the nodes' addresses.
struct Net {
    lab: Lab,
    helper: std::path::PathBuf,
    speaker: std::path::PathBuf,
    nodes: BTreeMap<String, IpAddr>,
}

impl Net {
    fn name_of(&self, ip: &IpAddr) -> String {
        self.nodes.iter().find(|(_, a)| *a == ip).map_or_else(|| ip.to_string(), |(n, _)| n.clone())
    }

    fn names(&self, ips: &BTreeSet<IpAddr>) -> Vec<String> {
        ips.iter().map(|ip| self.name_of(ip)).collect()
    }

    fn ips(&self, nodes: &[String]) -> BTreeSet<IpAddr> {
        nodes.iter().filter_map(|n| self.nodes.get(n)).copied().collect()
    }

    /// Writes every member's file from the cluster's objects (atomically; the speaker polls).
    fn write_files(&self, control: &ControlPlane, members: &[String]) -> Result<()> {
        let of = |kind| control.objects_of(kind).cloned().collect::<Vec<_>>();
        let (announcements, peers, pools) =
            (of(api::BGP_ANNOUNCEMENT_KIND), of(api::BGP_PEER_KIND), of(api::POOL_KIND));
        let objects = file::Objects { announcements: &announcements, peers: &peers, pools: &pools };
        for node in members {
            self.lab.write_file(&file_name(node), &file::node_file(node, objects)?)?;
        }
        Ok(())
    }

    fn start_speaker(&mut self, node: &str) -> Result<()> {
        let source = format!("file:{}", self.lab.dir().join(file_name(node)).display());
        let spawn = Spawn::new(node, &speaker_label(node), &self.speaker)
            .args(["--mode", "bgp", "--node-name", node, "--source", &source])
            .args(["--source-poll-interval", SOURCE_POLL, "--log-format", "text"])
            .env("RUST_LOG", "info");
        self.lab.spawn(spawn)?;
        let wait = format!("the speaker on {node} serving /healthz");
        self.lab.wait_for(&wait, || -> Result<bool> {
            Ok(self.lab.http_get(node, SPEAKER_HTTP, "/healthz")?.starts_with("HTTP/1.1 200"))
        })?;
        Ok(())
    }

    /// Shows the router's kernel route for the Service, as `ip route` prints it: the order
    /// of its next hops decides which flows a change of the set moves (hash-threshold).
    fn show_route(&self, story: &Story, prefix: &IpNet) -> Result<()> {
        let text = self.lab.ip(ROUTER, &["route", "show", &prefix.to_string()])?;
        for line in text.trim_end().lines() {
            story.line(format!("  {}", line.trim_end().replace('\t', "    ")));
        }
        Ok(())
    }
}

fn file_name(node: &str) -> String {
    format!("{node}.yaml")
}

fn speaker_label(node: &str) -> String {
    format!("speaker-{node}")
}

/// Fetches and answers per node of the samples that `pick` selects.
fn tally(samples: &[Sample], pick: impl Fn(&Sample) -> bool) -> (Fetches, BTreeMap<String, usize>) {
    let mut fetches = Fetches::default();
    let mut answers = BTreeMap::new();
    for s in samples.iter().filter(|s| pick(s)) {
        fetches.total += 1;
        match &s.answer {
            Ok(node) => *answers.entry(node.clone()).or_default() += 1,
            Err(_) => fetches.failed += 1,
        }
    }
    (fetches, answers)
}

fn per_node(answers: &BTreeMap<String, usize>) -> String {
    let parts: Vec<String> = answers.iter().map(|(n, c)| format!("{n} {c}")).collect();
    if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
}

/// Waits until `cond` holds, polling every [`POLL`], bounded by [`STEP_DEADLINE`].
fn wait(what: &str, cond: impl FnMut() -> Result<bool>) -> Result<Duration> {
    Ok(netlab::wait_for(what, STEP_DEADLINE, POLL, cond)?)
}

#[allow(clippy::too_many_lines)] // the story, step by step, reads best in one piece
fn scenario(
    root: &Path,
    options: &Options,
    bins: &Binaries,
    story: &Story,
    slot: &Mutex<Running>,
) -> Result<BgpReport> {
    // === control plane ===
    let (mut control, started) = ControlPlane::start(root, &bins.hooks, EXAMPLES)?;
    story.step(format!(
        "control plane: the test kit's framework emulation runs the real metallb-hooks over a \
         fake cluster from examples/{EXAMPLES}/ ({} hooks; start: {})",
        control.hook_count(),
        runs(started)
    ));
    let nodes = control.nodes()?;
    control.insert_file("bgp.yaml")?;
    let settled = control.settle()?;
    let members = control.labelled(labels::BGP_MEMBER);
    let peer = Peer::from_cluster(&control)?;
    story.step(format!(
        "kubectl apply -f examples/{EXAMPLES}/bgp.yaml  # pool, peer {}, configuration",
        peer.name
    ));
    story.line(format!(
        "hooks: {}; speaker nodes ({}): {}",
        runs(settled),
        labels::BGP_MEMBER,
        members.join(", ")
    ));
    if members.len() < 3 {
        bail!("the demo needs three announcing nodes; the configuration selects {members:?}");
    }

    // === data plane ===
    let lab = Lab::new(wire::FAMILY, &format!("{}bgp", options.tag))?.with_deadline(STEP_DEADLINE);
    slot.lock().unwrap_or_else(PoisonError::into_inner).cleaner = Some(lab.cleaner());
    let prefix = lab.prefix().to_owned();
    let mut net = Net {
        lab,
        helper: options.helper.clone(),
        speaker: bins.speaker.clone(),
        nodes: nodes.iter().cloned().collect(),
    };
    let router_cidr = format!("{}/{SEGMENT_PREFIX}", peer.address);
    net.lab.add_host(ROUTER, UPLINK, &[&router_cidr])?;
    net.lab.add_namespace(CLIENT)?;
    net.lab.cable(ROUTER, DOWNLINK, CLIENT, UPLINK)?;
    net.lab.ip(
        ROUTER,
        &["addr", "add", &format!("{ROUTER_CLIENT_SIDE}/{SEGMENT_PREFIX}"), "dev", DOWNLINK],
    )?;
    net.lab
        .ip(CLIENT, &["addr", "add", &format!("{CLIENT_ADDR}/{SEGMENT_PREFIX}"), "dev", UPLINK])?;
    net.lab.ip(CLIENT, &["route", "add", "default", "via", &ROUTER_CLIENT_SIDE.to_string()])?;
    let IpAddr::V4(router_id) = peer.address else {
        bail!("the demo's router takes an IPv4 peerAddress, not {}", peer.address);
    };
    let mut config =
        RouterConfig::new(peer.asn, router_id).kernel(true).multipath(true).listen(peer.address);
    for (node, ip) in &nodes {
        net.lab.add_host(node, UPLINK, &[&format!("{ip}/{SEGMENT_PREFIX}")])?;
        net.lab.ip(node, &["route", "add", "default", "via", &peer.address.to_string()])?;
        if net.lab.ip(node, &["link", "add", IPVS_DEVICE, "type", "dummy"]).is_err() {
            // Kernels without the dummy driver: a port-less bridge with NOARP does the same.
            net.lab.ip(node, &["link", "add", IPVS_DEVICE, "type", "bridge"])?;
            net.lab.ip(node, &["link", "set", IPVS_DEVICE, "arp", "off"])?;
        }
        let listen = format!("0.0.0.0:{HTTP_PORT}");
        net.lab.spawn(Spawn::new(node, &format!("http-{node}"), &net.helper).args([
            "demo-node",
            "--name",
            node,
            "--listen",
            &listen,
        ]))?;
        if members.contains(node) {
            let mut neighbor = Neighbor::new(*ip, peer.node_asn);
            if let Some(bfd) = peer.bfd {
                neighbor = neighbor.bfd(bfd);
            }
            config = config.neighbor(neighbor);
        }
    }
    let router = Router::start(&mut net.lab, ROUTER, RouterKind::Frr, &config)?;
    for (node, ip) in &nodes {
        let addr = SocketAddr::new(*ip, HTTP_PORT);
        net.lab.wait_for(&format!("the HTTP server of {node}"), || -> Result<bool> {
            Ok(fetch_once(&net, addr)? == *node)
        })?;
    }
    story.step(format!(
        "data plane: network namespaces for the nodes, a router and a client ({prefix}*)"
    ));
    story.line(format!(
        "router     {} (nodes' side), {ROUTER_CLIENT_SIDE} (client's side): FRR (zebra, bgpd, \
         bfdd), AS {}, ECMP into its kernel with 5-tuple hashing",
        peer.address, peer.asn
    ));
    for (node, ip) in &nodes {
        let role = if members.contains(node) { "speaker, " } else { "" };
        story.line(format!(
            "{node:<10} {ip:<15} {role}HTTP and UDP on :{HTTP_PORT} answering its name"
        ));
    }
    story.line(format!("client     {CLIENT_ADDR}, default route via the router"));

    // === the speaker DaemonSet ===
    net.write_files(&control, &members)?;
    for node in &members {
        net.start_speaker(node)?;
    }
    story.step(format!(
        "speaker DaemonSet: the real metallb-speaker --mode bgp on {} (AS {}), each reading its \
         node's file written from the cluster's objects; no route names {} yet, so no session",
        members.join(", "),
        peer.node_asn,
        peer.name
    ));

    // === the Service ===
    let service = control.insert_file("service.yaml")?;
    let service = service.first().context("examples/demo-bgp/service.yaml holds no object")?;
    let s = |p: &str| service.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (namespace, name) = (s("/metadata/namespace"), s("/metadata/name"));
    let settled = control.settle()?;
    let ingress = control.ingress(&namespace, &name);
    let service_ip = *ingress.first().context("the Service got no IP")?;
    story.step(format!(
        "kubectl apply -f examples/{EXAMPLES}/service.yaml  # Service {namespace}/{name}"
    ));
    story.line(format!("hooks: {}; status.loadBalancer.ingress: {service_ip}", runs(settled)));
    let announcement = control
        .objects_of(api::BGP_ANNOUNCEMENT_KIND)
        .find(|a| a.pointer("/spec/ip").and_then(Value::as_str) == Some(&service_ip.to_string()))
        .context("no SDNInternalBGPAnnouncement for the Service's IP")?
        .clone();
    let a =
        |p: &str| announcement.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let strings = |p: &str| -> Vec<String> {
        announcement
            .pointer(p)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let pool = a("/spec/pool");
    let route_prefix: IpNet = a("/spec/routes/0/prefix").parse().context("the route's prefix")?;
    let announced_by = strings("/spec/routes/0/nodes");
    story.line(format!(
        "SDNInternalBGPAnnouncement {}/{}: {service_ip} from pool {pool}, prefix {route_prefix} \
         to peers [{}] from nodes [{}]",
        a("/metadata/namespace"),
        a("/metadata/name"),
        strings("/spec/routes/0/peers").join(", "),
        announced_by.join(", ")
    ));
    story.line("publish the IP as a DNS record:");
    let kind = if service_ip.is_ipv4() { "A" } else { "AAAA" };
    story.line(format!("  {name}.{}.  300  IN  {kind}  {service_ip}", super::DNS_DOMAIN));

    // === on the wire ===
    let host = if service_ip.is_ipv4() { 32 } else { 128 };
    for node in nodes.iter().map(|(n, _)| n) {
        net.lab
            .ip(node, &["addr", "replace", &format!("{service_ip}/{host}"), "dev", IPVS_DEVICE])?;
    }
    let written = Instant::now();
    net.write_files(&control, &members)?;
    let all = net.ips(&members);
    let all_list: Vec<IpAddr> = all.iter().copied().collect();
    router.wait_established(&all_list)?;
    let established = written.elapsed();
    wait("three next hops in the router's kernel", || {
        Ok(router.kernel_next_hops(&route_prefix)? == all)
    })?;
    let routed = written.elapsed();
    if peer.bfd.is_some() {
        wait("BFD up with every node", || {
            let bfd = router.bfd_peers()?;
            Ok(all.iter().all(|ip| bfd.get(ip) == Some(&BfdState::Up)))
        })?;
    }
    let next_hops = net.names(&router.kernel_next_hops(&route_prefix)?);
    story.step(format!(
        "kube-proxy put {service_ip} on kube-ipvs0 of every node; the speakers read their new \
         file: sessions Established after {}, BFD up, route installed after {}",
        ms(established),
        ms(routed)
    ));
    story.line("router: ip route show ".to_owned() + &route_prefix.to_string());
    net.show_route(story, &route_prefix)?;
    story.line(format!("next hops: {}", next_hops.join(", ")));

    let target = SocketAddr::new(service_ip, HTTP_PORT);
    let targets = vec![target; WATCH_LOOPS];
    let watch =
        wire::start_watch(&mut net.lab, CLIENT, &net.helper, &targets, Probe::Udp, WATCH_EVERY)?;
    wait("answers from every node", || {
        let samples = watch.samples();
        let (_, answers) = tally(&samples, |_| true);
        Ok(samples.len() >= FIRST_FETCHES && members.iter().all(|m| answers.contains_key(m)))
    })?;
    let (first, answers) = tally(&watch.samples(), |_| true);
    story.step(format!(
        "client: one UDP datagram to {target} from a new source port every {} ms in \
         {WATCH_LOOPS} loops, each answered by one naming the node (lost if no answer within \
         {} ms); {} requests so far answered by: {} ({} failed)",
        WATCH_EVERY.as_millis(),
        agent::UDP_TIMEOUT.as_millis(),
        first.total,
        per_node(&answers),
        first.failed
    ));

    // === front-0 dies ===
    let failed_node = members[0].clone();
    let failed_ip = net.nodes[&failed_node];
    let survivors: BTreeSet<IpAddr> = all.iter().copied().filter(|ip| *ip != failed_ip).collect();
    let t_kill = agent::unix_ms();
    let killed = Instant::now();
    // Cable first: a process killed while its node is still connected has its kernel close
    // the TCP session (FIN), which tells the router at once; a dead node says nothing.
    net.lab.set_link(&failed_node, UPLINK, false)?;
    net.lab.kill(&speaker_label(&failed_node))?;
    story.step(format!(
        "{failed_node} dies: its cable is pulled and its speaker killed with SIGKILL (no BGP \
         NOTIFICATION, no TCP FIN: the router hears nothing more)"
    ));
    wait(&format!("the router to drop {failed_node}"), || {
        Ok(router.kernel_next_hops(&route_prefix)? == survivors)
    })?;
    let dropped_after = killed.elapsed();
    let t_drop = agent::unix_ms();
    let failed_bfd = router.bfd_peers()?.get(&failed_ip).copied();
    let next_hops_after_failure = net.names(&router.kernel_next_hops(&route_prefix)?);
    let hold = peer_hold_seconds(&control);
    story.step(format!(
        "router: BFD with {failed_node} {}, its next hop gone {} after the failure (the hold \
         timer alone: {hold} s); next hops: {}",
        failed_bfd.map_or_else(|| "gone".to_owned(), |s| format!("{s:?}").to_lowercase()),
        ms(dropped_after),
        next_hops_after_failure.join(", ")
    ));
    net.show_route(story, &route_prefix)?;
    std::thread::sleep(WATCH_AFTER);
    let samples = watch.samples();
    let (so_far, _) = tally(&samples, |s| s.at >= t_kill);
    let (_, answers_now) = tally(&samples, |s| s.started() > t_drop);
    let failed_after = samples.iter().filter(|s| s.started() > t_drop && s.answer.is_err()).count();
    story.line(format!(
        "client: {} of {} requests since the failure failed: {} started before the router \
         dropped {failed_node} (hashed to it), {failed_after} after; since then answered by: {}",
        so_far.failed,
        so_far.total,
        so_far.failed.saturating_sub(failed_after),
        per_node(&answers_now)
    ));

    // === front-0 comes back ===
    let t_back = agent::unix_ms();
    let back = Instant::now();
    net.lab.set_link(&failed_node, UPLINK, true)?;
    // The kernel removed the default route with the link; the node's network setup puts it
    // back, as it would on a real node.
    net.lab.ip(&failed_node, &["route", "replace", "default", "via", &peer.address.to_string()])?;
    net.start_speaker(&failed_node)?;
    router.wait_established(&[failed_ip])?;
    wait(&format!("{failed_node} back in the router's route"), || {
        Ok(router.kernel_next_hops(&route_prefix)? == all)
    })?;
    let returned_after = back.elapsed();
    let next_hops_after_return = net.names(&router.kernel_next_hops(&route_prefix)?);
    wait(&format!("an answer from {failed_node}"), || {
        Ok(watch
            .find(|s| s.started() > t_back && s.answer.as_deref() == Ok(&failed_node))
            .is_some())
    })?;
    std::thread::sleep(WATCH_AFTER);
    let samples = watch.samples();
    let (while_down, _) = tally(&samples, |s| s.at >= t_kill && s.at < t_back);
    let (_, answers_while_down) = tally(&samples, |s| s.started() > t_drop && s.at < t_back);
    let failed_after_drop = samples
        .iter()
        .filter(|s| s.started() > t_drop && s.at < t_back && s.answer.is_err())
        .count();
    let t_term = agent::unix_ms();
    let (after_return, answers_after_return) = tally(&samples, |s| s.at >= t_back);
    story.step(format!(
        "{failed_node} comes back: cable in, speaker restarted; session, BFD and next hop back \
         {} later; next hops: {}",
        ms(returned_after),
        next_hops_after_return.join(", ")
    ));
    net.show_route(story, &route_prefix)?;
    story.line(format!(
        "client: {} of {} requests failed since; answered by: {}",
        after_return.failed,
        after_return.total,
        per_node(&answers_after_return)
    ));

    // === front-1 is drained ===
    let drained_node = members[1].clone();
    let drained_ip = net.nodes[&drained_node];
    let rest: BTreeSet<IpAddr> = all.iter().copied().filter(|ip| *ip != drained_ip).collect();
    let label = speaker_label(&drained_node);
    let pid = i32::try_from(net.lab.pid(&label)?).context("a pid")?;
    let term = Instant::now();
    kill(Pid::from_raw(pid), Signal::SIGTERM).context("SIGTERM to the speaker")?;
    story.step(format!(
        "{drained_node} is drained: its speaker gets SIGTERM (as the kubelet stops a pod) and \
         re-announces {route_prefix} with GRACEFUL_SHUTDOWN (65535:0, RFC 8326)"
    ));
    let mut session_up_when_route_left = false;
    wait(&format!("the router to move traffic off {drained_node}"), || {
        if router.kernel_next_hops(&route_prefix)? != rest {
            return Ok(false);
        }
        session_up_when_route_left =
            router.session(drained_ip)?.is_some_and(|s| s.state == SessionState::Established);
        Ok(true)
    })?;
    let drain_left_route_after = term.elapsed();
    let next_hops_after_drain = net.names(&router.kernel_next_hops(&route_prefix)?);
    story.line(format!(
        "router: {drained_node} left the route {} after SIGTERM, its session {} (LOCAL_PREF 0 \
         takes it out of the ECMP set); next hops: {}",
        ms(drain_left_route_after),
        if session_up_when_route_left { "still Established" } else { "already closed" },
        next_hops_after_drain.join(", ")
    ));
    wait(&format!("the session with {drained_node} to close"), || {
        Ok(router.session(drained_ip)?.is_none_or(|s| s.state != SessionState::Established))
    })?;
    let session_closed_after = term.elapsed();
    netlab::wait_for(
        &format!("the speaker on {drained_node} to exit"),
        STEP_DEADLINE,
        POLL,
        || Ok::<_, String>(!net.lab.is_running(&label)),
    )?;
    story.step(format!(
        "the speaker on {drained_node} closed its session {} after SIGTERM (its shutdown grace) \
         and exited",
        ms(session_closed_after)
    ));
    // A drained node that kept serving would answer whatever still reached it, so the drain
    // would prove nothing: the node goes away as after a shutdown, and any request the router
    // still sent it would now be lost.
    net.lab.set_link(&drained_node, UPLINK, false)?;
    let drain_unplugged_after = term.elapsed();
    let t_unplugged = agent::unix_ms();
    story.line(format!(
        "{drained_node} is shut down: its cable is pulled {} after SIGTERM; the client asks on \
         for {} ms",
        ms(drain_unplugged_after),
        WATCH_AFTER.as_millis()
    ));
    std::thread::sleep(WATCH_AFTER);
    let samples = wire::stop_watch(&mut net.lab, watch)?;
    let (drain, answers_while_draining) = tally(&samples, |s| s.at >= t_term);
    let (_, answers_unplugged) = tally(&samples, |s| s.started() > t_unplugged);
    let drain_failures: Vec<String> = samples
        .iter()
        .filter(|s| s.at >= t_term && s.answer.is_err())
        .map(|s| {
            let started = i128::try_from(s.started()).unwrap_or_default()
                - i128::try_from(t_term).unwrap_or_default();
            let error = s.answer.as_ref().err().cloned().unwrap_or_default();
            format!("started {started:+} ms after SIGTERM, {} ms: {error}", s.took)
        })
        .collect();
    story.line(format!(
        "client: {} of {} requests failed since SIGTERM; answered by: {}; with {drained_node} \
         off the network: {}",
        drain.failed,
        drain.total,
        per_node(&answers_while_draining),
        per_node(&answers_unplugged)
    ));
    for failure in &drain_failures {
        story.line(format!("  failed: {failure}"));
    }
    let (total, _) = tally(&samples, |_| true);
    story.step(format!(
        "client: {} requests in all; failed: {} while {failed_node} was down \
         ({failed_after_drop} of them after the router dropped it), {} after it came back, {} \
         during the drain",
        total.total, while_down.failed, after_return.failed, drain.failed
    ));
    drop(router);
    net.lab.succeeded();
    drop(net);
    Ok(BgpReport {
        prefix,
        service_ip,
        pool,
        announced_by,
        next_hops,
        answers,
        failed_node,
        dropped_after,
        failed_bfd,
        next_hops_after_failure,
        while_down,
        failed_after_drop,
        answers_while_down,
        returned_after,
        next_hops_after_return,
        after_return,
        answers_after_return,
        drained_node,
        drain_left_route_after,
        session_up_when_route_left,
        session_closed_after,
        next_hops_after_drain,
        drain_unplugged_after,
        drain,
        drain_failures,
        answers_while_draining,
        leftover_namespaces: Vec::new(),
        took: Duration::ZERO,
    })
}

/// The peer's hold time in seconds as the speaker uses it (the module's default when unset).
fn peer_hold_seconds(control: &ControlPlane) -> u32 {
    control
        .objects_of(api::BGP_PEER_KIND)
        .next()
        .and_then(|p| p.pointer("/spec/holdTime").and_then(Value::as_str))
        .and_then(|t| t.strip_suffix('s')?.parse().ok())
        .unwrap_or(bgp_names::DEFAULT_HOLD_TIME_SECONDS)
}

/// One GET from the client; the answering node's name.
fn fetch_once(net: &Net, addr: SocketAddr) -> Result<String> {
    let target = addr.to_string();
    let body = net.lab.exec(
        CLIENT,
        &[net.helper.as_os_str(), "demo-get".as_ref(), target.as_ref(), "/".as_ref()],
    )?;
    Ok(body.trim().to_owned())
}

impl BgpReport {
    /// The outcome on one line (what `cargo xtask demo --mode bgp --quiet` prints).
    pub fn summary(&self) -> String {
        format!(
            "metallb demo (bgp): {} from pool {} answered by {}; {} died, dropped by the router \
             after {} ({} requests failed, {} after the drop); back after {}; {} drained and \
             shut down: {} of {} requests failed; {:.1} s",
            self.service_ip,
            self.pool,
            self.answers.keys().cloned().collect::<Vec<_>>().join(", "),
            self.failed_node,
            ms(self.dropped_after),
            self.while_down.failed,
            self.failed_after_drop,
            ms(self.returned_after),
            self.drained_node,
            self.drain.failed,
            self.drain.total,
            self.took.as_secs_f64()
        )
    }
}
