//! The data plane: one network namespace per node and a client namespace on one bridge, the
//! real speaker binary in each member node, and the demo's helpers (`agent.rs`) playing
//! kube-proxy, the Service's backends and the client.
//!
//! ```text
//!   client 198.51.100.1 ──┐
//!   front-0 .101 ─────────┤  bridge (namespace <prefix>sw)
//!   front-1 .102 ─────────┤    every node: kube-ipvs0 holds every Service IP (IPVS mode),
//!   front-2 .103 ─────────┤    strict ARP, an HTTP server naming the node; member nodes:
//!   worker-0 .104 ────────┘    metallb-speaker with gossip on <node IP>:4226
//! ```
//!
//! Node addresses come from the Nodes' InternalIP in `examples/demo/cluster.yaml`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netlab::{Lab, Spawn};

use super::agent::{self, Probe, Sample};

/// Namespace family of the demo: `mlbdemo-<pid>-<tag>-<name>`; a later run removes what a
/// killed run left behind.
pub(crate) const FAMILY: &str = "mlbdemo";
/// The client's namespace.
const CLIENT: &str = "client";
/// The client's address: on the nodes' segment, from the documentation range the pool uses.
const CLIENT_ADDR: &str = "198.51.100.1/24";
/// Prefix length of the nodes' segment.
const SEGMENT_PREFIX: u8 = 24;
/// Every node's uplink.
pub(crate) const UPLINK: &str = "eth0";
/// kube-proxy's IPVS dummy interface, holding every Service IP on every node.
const IPVS_DEVICE: &str = "kube-ipvs0";
/// The Service's port, served by each node's HTTP server.
pub(crate) const HTTP_PORT: u16 = 80;
/// Gossip port of the speakers: the chart's (templates/l2lb/speaker/daemonset.yaml).
const GOSSIP_PORT: u16 = 4226;
/// The speaker's metrics/health endpoint (its default, on each namespace's own loopback).
const SPEAKER_HTTP: &str = "127.0.0.1:7472";
/// How often the speakers re-read their file: a fifth of the default second, so a placement
/// change by the hooks reaches the wire quickly in the story.
const SOURCE_POLL: &str = "200ms";
/// Pause between two fetches of one IP by the watching client: 50 fetches a second per IP
/// resolves a sub-second failover well and costs the machine little.
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(20);
/// Cap of the watching client's life, should the demo forget to stop it.
const WATCH_MAX_SECONDS: &str = "300";

/// The demo's network and processes.
pub(crate) struct DataPlane {
    lab: Lab,
    helper: PathBuf,
    speaker: PathBuf,
    nodes: BTreeMap<String, IpAddr>,
    macs: BTreeMap<String, String>,
    state_file: PathBuf,
    state: String,
    key_file: PathBuf,
}

/// A running watching client: its samples as they arrive.
pub(crate) struct Watch {
    samples: Arc<Mutex<Vec<Sample>>>,
    reader: Option<JoinHandle<()>>,
}

impl Watch {
    /// A copy of the samples so far.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The first sample so far that satisfies `pred`.
    pub(crate) fn find(&self, pred: impl Fn(&Sample) -> bool) -> Option<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|s| pred(s))
            .cloned()
    }
}

impl DataPlane {
    /// Builds the network: client and node namespaces on the bridge, every node with its
    /// address, `kube-ipvs0`, strict ARP and its HTTP server, each server checked from the
    /// client.
    pub(crate) fn new(
        tag: &str,
        helper: &Path,
        speaker: &Path,
        nodes: &[(String, IpAddr)],
    ) -> Result<Self> {
        let lab = Lab::new(FAMILY, tag)?;
        let mut plane = Self {
            state_file: lab.dir().join("speakers.yaml"),
            key_file: lab.dir().join("gossip.key"),
            lab,
            helper: helper.to_owned(),
            speaker: speaker.to_owned(),
            nodes: nodes.iter().cloned().collect(),
            macs: BTreeMap::new(),
            state: String::new(),
        };
        plane.lab.add_host(CLIENT, UPLINK, &[CLIENT_ADDR])?;
        for (node, ip) in nodes {
            plane.lab.add_host(node, UPLINK, &[&format!("{ip}/{SEGMENT_PREFIX}")])?;
            plane.add_ipvs_device(node)?;
            plane.macs.insert(node.clone(), plane.lab.mac(node, UPLINK)?);
            plane.start_node_server(node)?;
        }
        for (node, ip) in nodes {
            let addr = SocketAddr::new(*ip, HTTP_PORT);
            plane.lab.wait_for(&format!("the HTTP server of {node}"), || -> Result<bool> {
                Ok(plane.fetch_once(addr)? == *node)
            })?;
        }
        Ok(plane)
    }

    /// `kube-ipvs0` as kube-proxy makes it: a dummy device, left down, that only holds the
    /// Service IPs as local addresses (the kernel installs their local routes all the same).
    /// Kernels built without the dummy driver get a port-less bridge with NOARP instead, which
    /// behaves the same for this purpose.
    fn add_ipvs_device(&self, node: &str) -> Result<()> {
        if self.lab.ip(node, &["link", "add", IPVS_DEVICE, "type", "dummy"]).is_err() {
            self.lab.ip(node, &["link", "add", IPVS_DEVICE, "type", "bridge"])?;
            self.lab.ip(node, &["link", "set", IPVS_DEVICE, "arp", "off"])?;
        }
        Ok(())
    }

    fn start_node_server(&mut self, node: &str) -> Result<()> {
        let listen = format!("0.0.0.0:{HTTP_PORT}");
        let spawn = Spawn::new(node, &format!("http-{node}"), &self.helper).args([
            "demo-node",
            "--name",
            node,
            "--listen",
            &listen,
        ]);
        self.lab.spawn(spawn)?;
        Ok(())
    }

    /// The lab (prefix, cleaner, success mark).
    pub(crate) fn lab(&mut self) -> &mut Lab {
        &mut self.lab
    }

    /// The MAC of a node's uplink.
    pub(crate) fn mac(&self, node: &str) -> &str {
        self.macs.get(node).map_or("?", String::as_str)
    }

    /// The node whose uplink has `mac`.
    pub(crate) fn node_of_mac(&self, mac: &str) -> Option<&str> {
        self.macs.iter().find(|(_, m)| m.as_str() == mac).map(|(n, _)| n.as_str())
    }

    /// Adds every Service IP to `kube-ipvs0` on every node, as kube-proxy does once a Service
    /// has its load-balancer IPs.
    pub(crate) fn add_service_ips(&self, ips: &[IpAddr]) -> Result<()> {
        for node in self.nodes.keys() {
            for ip in ips {
                let host = if ip.is_ipv4() { 32 } else { 128 };
                self.lab
                    .ip(node, &["addr", "replace", &format!("{ip}/{host}"), "dev", IPVS_DEVICE])?;
            }
        }
        Ok(())
    }

    /// Writes the gossip key file the speakers read (the mounted Secret in a cluster).
    pub(crate) fn write_gossip_key(&self, key: &[u8]) -> Result<()> {
        std::fs::write(&self.key_file, key)
            .with_context(|| format!("write {}", self.key_file.display()))
    }

    /// Writes the speakers' desired-state file if it changed (atomically: write, rename);
    /// returns whether it changed.
    pub(crate) fn write_state(&mut self, state: &str) -> Result<bool> {
        if state == self.state {
            return Ok(false);
        }
        let name = self.state_file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        self.lab.write_file(name, state)?;
        self.state = state.to_owned();
        Ok(true)
    }

    /// Starts the real speaker on `node`, gossiping with `peers`, and waits for its `/readyz`.
    /// A speaker is ready only while it reaches a majority of the speakers it knows, so the
    /// first speakers of a cluster are started together with [`Self::spawn_speaker`] instead.
    pub(crate) fn start_speaker(&mut self, node: &str, peers: &[String]) -> Result<()> {
        self.spawn_speaker(node, peers)?;
        self.wait_speaker_ready(node)
    }

    /// Starts the real speaker on `node`, gossiping with `peers`, without waiting for it.
    pub(crate) fn spawn_speaker(&mut self, node: &str, peers: &[String]) -> Result<()> {
        let ip = self.nodes.get(node).with_context(|| format!("unknown node {node}"))?;
        let bind = SocketAddr::new(*ip, GOSSIP_PORT).to_string();
        let peers: Vec<String> = peers
            .iter()
            .filter_map(|p| self.nodes.get(p))
            .map(|ip| SocketAddr::new(*ip, GOSSIP_PORT).to_string())
            .collect();
        let source = format!("file:{}", self.state_file.display());
        let spawn = Spawn::new(node, &speaker_label(node), &self.speaker)
            .args(["--node-name", node, "--source", &source, "--log-format", "text"])
            .args(["--source-poll-interval", SOURCE_POLL])
            .args(["--gossip-bind", &bind, "--gossip-peers", &peers.join(",")])
            .args(["--gossip-key-file"])
            .args([self.key_file.as_os_str()])
            .env("RUST_LOG", "info");
        self.lab.spawn(spawn)?;
        Ok(())
    }

    /// Waits until the speaker on `node` answers `/readyz` with success.
    pub(crate) fn wait_speaker_ready(&self, node: &str) -> Result<()> {
        self.lab.wait_for(&format!("the speaker on {node} ready"), || -> Result<bool> {
            Ok(self.speaker_get(node, "/readyz").is_ok())
        })?;
        Ok(())
    }

    /// A node fails: its speaker is killed with SIGKILL (no goodbye to its peers) and its
    /// cable is pulled, so nothing reaches the node any more.
    pub(crate) fn fail_node(&mut self, node: &str) -> Result<()> {
        self.lab.kill(&speaker_label(node))?;
        self.lab.set_link(node, UPLINK, false)?;
        Ok(())
    }

    /// The node's cable is back (its speaker is started separately, as the DaemonSet would).
    pub(crate) fn reconnect_node(&self, node: &str) -> Result<()> {
        self.lab.set_link(node, UPLINK, true)?;
        Ok(())
    }

    fn speaker_get(&self, node: &str, path: &str) -> Result<String> {
        Ok(self.lab.exec(
            node,
            &[self.helper.as_os_str(), "demo-get".as_ref(), SPEAKER_HTTP.as_ref(), path.as_ref()],
        )?)
    }

    /// One metric of the speaker on `node` (exact series with labels); 0 when absent.
    pub(crate) fn metric(&self, node: &str, series: &str) -> Result<f64> {
        let page = self.speaker_get(node, "/metrics")?;
        Ok(page
            .lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or(0.0))
    }

    /// Waits until the speaker on `node` announces exactly `count` IPv4 addresses.
    pub(crate) fn wait_owned(&self, node: &str, count: usize) -> Result<Duration> {
        let series = r#"metallb_speaker_owned_ips{family="ipv4"}"#;
        Ok(self.lab.wait_for(&format!("{node} to announce {count} IPs"), || -> Result<bool> {
            Ok(self.metric(node, series)? == count as f64)
        })?)
    }

    /// Waits until the speaker on each of `nodes` sees `nodes.len()` live gossip members.
    pub(crate) fn wait_gossip(&self, nodes: &[String]) -> Result<Duration> {
        let series = r#"metallb_speaker_gossip_members{state="alive"}"#;
        Ok(self.lab.wait_for("every speaker to see every other alive", || -> Result<bool> {
            for node in nodes {
                if self.metric(node, series)? != nodes.len() as f64 {
                    return Ok(false);
                }
            }
            Ok(true)
        })?)
    }

    /// One GET from the client; the answering node's name.
    pub(crate) fn fetch_once(&self, addr: SocketAddr) -> Result<String> {
        let target = addr.to_string();
        let body = self.lab.exec(
            CLIENT,
            &[self.helper.as_os_str(), "demo-get".as_ref(), target.as_ref(), "/".as_ref()],
        )?;
        Ok(body.trim().to_owned())
    }

    /// The first GET of a Service IP, retried while the owner's answer to the client's ARP is
    /// on its way; the answering node.
    pub(crate) fn first_fetch(&self, ip: IpAddr) -> Result<String> {
        let mut node = String::new();
        self.lab.wait_for(&format!("a first answer from {ip}"), || -> Result<bool> {
            node = self.fetch_once(SocketAddr::new(ip, HTTP_PORT))?;
            Ok(true)
        })?;
        Ok(node)
    }

    /// The MAC the client's kernel resolved `ip` to, if any.
    pub(crate) fn client_neighbour(&self, ip: IpAddr) -> Result<Option<String>> {
        Ok(self.lab.neighbour(CLIENT, UPLINK, &ip.to_string())?.and_then(|n| n.lladdr))
    }

    /// Starts the watching client on every IP.
    pub(crate) fn watch(&mut self, ips: &[IpAddr]) -> Result<Watch> {
        let targets: Vec<SocketAddr> =
            ips.iter().map(|ip| SocketAddr::new(*ip, HTTP_PORT)).collect();
        start_watch(&mut self.lab, CLIENT, &self.helper, &targets, Probe::Http, WATCH_EVERY)
    }

    /// Stops the watching client; the final samples.
    pub(crate) fn stop_watch(&mut self, watch: Watch) -> Result<Vec<Sample>> {
        stop_watch(&mut self.lab, watch)
    }
}

/// Starts `demo-watch` in namespace `ns` of `lab` (process label `watch`) on `targets`, one
/// request loop per target (a target given twice gets two loops), `every` apart, each request
/// a `probe`.
pub(crate) fn start_watch(
    lab: &mut Lab,
    ns: &str,
    helper: &Path,
    targets: &[SocketAddr],
    probe: Probe,
    every: Duration,
) -> Result<Watch> {
    let mut spawn = Spawn::new(ns, "watch", helper)
        .args(["demo-watch", "--max-seconds", WATCH_MAX_SECONDS, "--probe", probe.arg()])
        .args(["--every-ms".to_owned(), every.as_millis().to_string()])
        .piped_stdout();
    for target in targets {
        spawn = spawn.args(["--target".to_owned(), target.to_string()]);
    }
    lab.spawn(spawn)?;
    let stdout = lab.take_stdout("watch")?;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sink = samples.clone();
    let reader = std::thread::spawn(move || {
        agent::read_samples(stdout, |s| {
            sink.lock().unwrap_or_else(PoisonError::into_inner).push(s);
        });
    });
    Ok(Watch { samples, reader: Some(reader) })
}

/// Stops the watching client started by [`start_watch`]; the final samples.
pub(crate) fn stop_watch(lab: &mut Lab, mut watch: Watch) -> Result<Vec<Sample>> {
    lab.kill("watch")?;
    if let Some(reader) = watch.reader.take()
        && reader.join().is_err()
    {
        bail!("the watch reader panicked");
    }
    Ok(watch.samples())
}

fn speaker_label(node: &str) -> String {
    format!("speaker-{node}")
}
