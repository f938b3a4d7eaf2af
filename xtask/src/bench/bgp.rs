//! Part 5: BGP mode against a real router (issue #17).
//!
//! ```text
//!   ns r   192.0.2.1    FRR (bgpd, bfdd, zebra), AS 64500, multipath, routes into its kernel
//!   ns r2  192.0.2.2    FRR, AS 64500: the second peer of the memory figure
//!   ns n1..n3  192.0.2.11-13  the nodes, AS 64501: `metallb-speaker --mode bgp` with the file
//!                             source, or (the baseline) BIRD announcing the same prefixes
//! ```
//!
//! - **convergence**: three nodes announce 203.0.113.10/32, the router has three next hops in
//!   its kernel; n1's cable is pulled and its speaker killed with SIGKILL (a node that dies
//!   says nothing); measured until the router's kernel route has lost n1's next hop, with BFD
//!   (100 ms × 3) and with the hold timer alone (3 s, RFC 4271's smallest non-zero value, so
//!   twenty trials stay short; the default 90 s only scales that figure).
//! - **scale**: one node announces 10 000 prefixes of 198.18.0.0/15 (RFC 2544's benchmarking
//!   range: the documentation ranges hold 768 IPv4 addresses); measured from the router's last
//!   summary without any of them until the first with all, for our speaker and for BIRD
//!   announcing the same prefixes to the same router, in alternation. The session set-up is
//!   left out because the two programs' connect timers are settings, not speed.
//! - **memory**: the speaker's resident memory with 10 000 IPs announced to two routers.
//! - **churn**: with 10 000 prefixes up, every 100 ms for ten seconds 50 are withdrawn and
//!   50 new ones announced (1 000 changes a second), then in the same session 100 and 100
//!   (2 000 a second, the margin); measured: the throughput the router's kernel table follows
//!   at (the mean latency of the first ten steps and of the last ten: a constant latency
//!   cancels, a speaker falling behind shows as growth), and whether the session was ever
//!   reset.
//!
//! Each figure comes from a fresh lab, so the runs are independent; every wait is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use netlab::router::{
    Announcement, Bfd, Family, Neighbor, Router, RouterConfig, RouterKind, SessionState,
};
use netlab::{Lab, Spawn};
use serde::{Deserialize, Serialize};

use super::{Guard, Tools};

pub(super) mod report;

/// Namespace family of this part (`netlab::sweep_stale` removes leftovers by it).
pub const FAMILY: &str = "mlbbgpb";
const ROUTER_AS: u32 = 64500;
const NODE_AS: u32 = 64501;
/// The routers and the nodes on the lab's bridge.
const ROUTERS: [(&str, &str); 2] = [("r", "192.0.2.1"), ("r2", "192.0.2.2")];
const NODES: [(&str, &str); 3] = [("n1", "192.0.2.11"), ("n2", "192.0.2.12"), ("n3", "192.0.2.13")];
/// The Service IP of the convergence figure.
const SERVICE_IP: &str = "203.0.113.10";
/// BFD as the issue's demo runs it: 100 ms × 3, detection within 300 ms.
const BFD: Bfd =
    Bfd { min_rx: Duration::from_millis(100), min_tx: Duration::from_millis(100), multiplier: 3 };
/// Hold time of the hold-timer-only trials (see the module docs).
const SHORT_HOLD: u16 = 3;
/// Hold time where the hold timer must not matter: far above any wait of a trial.
const LONG_HOLD: u16 = 90;
/// Bound of the waits for sessions and tables; 10 000 routes on a loaded two-core machine
/// take a few seconds, so this only turns a hang into an error.
const DEADLINE: Duration = Duration::from_secs(60);
/// Polling period of the convergence measurement: the figure's resolution.
const CONVERGENCE_POLL: Duration = Duration::from_millis(10);
/// Polling period of the route count (each poll asks bgpd for its summary).
const COUNT_POLL: Duration = Duration::from_millis(20);
/// Polling period of one /32 in the router's kernel (the churn's first step): one `ip route
/// show exact` costs a few milliseconds of one core, so 10 ms leaves most of the machine to
/// the speaker, FRR and zebra while resolving a latency of a few hundred milliseconds well.
const PREFIX_POLL: Duration = Duration::from_millis(10);
/// One churn step every 100 ms: ten a second, as fast as the speaker polls its file.
const CHURN_STEP: Duration = Duration::from_millis(100);
/// Steps whose latency is measured at each end of a churn row (the first second and the last
/// one): one step's latency varies by tens of milliseconds (FRR's and zebra's batching, which
/// poll of the speaker picks a write up), and the mean of ten varies about three times less.
const CHURN_ENDS: usize = 10;
/// The speakers' HTTP endpoint inside each node namespace.
const METRICS_ADDR: &str = "127.0.0.1:7472";

/// Sizes and repeats of one run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Convergence trials per detection mechanism.
    pub trials: usize,
    /// Prefixes of the scale, memory and churn figures.
    pub prefixes: usize,
    /// Alternating rounds (ours, then the baseline) of the scale figure.
    pub scale_rounds: usize,
    /// Churn: prefixes withdrawn, and as many announced, per step of the target row (one
    /// step every 100 ms).
    pub churn_per_step: usize,
    /// The same for the rows above the target (empty: none), run after it in the same session.
    pub churn_margin_per_step: &'static [usize],
    /// Number of churn steps of each row.
    pub churn_steps: usize,
}

/// A full run: the issue's figures (20 trials, 10 000 prefixes, 1 000 changes a second).
pub const FULL: Settings = Settings {
    trials: 20,
    prefixes: 10_000,
    scale_rounds: 5,
    churn_per_step: 50,
    churn_margin_per_step: &[100],
    churn_steps: 100,
};

/// `--quick`: everything once or twice, the churn for one second.
pub const QUICK: Settings = Settings {
    trials: 2,
    prefixes: 10_000,
    scale_rounds: 1,
    churn_per_step: 50,
    churn_margin_per_step: &[100],
    churn_steps: 10,
};

/// How the router learned that a node died.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Detection {
    /// BFD at 100 ms × 3.
    Bfd,
    /// The hold timer alone (3 s).
    HoldTimer,
}

/// One convergence trial.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Convergence {
    /// The mechanism.
    pub detection: Detection,
    /// Cable pulled and speaker killed → the router's kernel route without that next hop.
    pub seconds: f64,
}

/// One round of the scale figure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleRound {
    /// Our speaker: Established → all prefixes at the router, seconds.
    pub speaker_s: f64,
    /// BIRD announcing the same prefixes, seconds.
    pub baseline_s: f64,
}

/// The memory figure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Memory {
    /// Prefixes announced to each router.
    pub prefixes: usize,
    /// Routers (BGP peers).
    pub peers: usize,
    /// The speaker's resident memory once both routers hold everything, KiB.
    pub speaker_rss_kib: u64,
    /// Its peak resident memory, KiB.
    pub speaker_peak_kib: u64,
    /// BIRD's resident memory announcing the same, KiB (for scale, not a target).
    pub baseline_rss_kib: u64,
}

/// One row of the churn figure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Churn {
    /// Prefixes up while the churn runs.
    pub prefixes: usize,
    /// Prefixes withdrawn, and as many announced, per 100 ms step.
    pub per_step: usize,
    /// Changes offered per second (a withdrawn prefix and an announced one count as two).
    pub offered_per_s: f64,
    /// Changes made in all.
    pub changes: usize,
    /// Latency of each of the first steps: from the step's file write until its first new
    /// prefix was in the router's kernel.
    #[serde(default)]
    pub first_lags_s: Vec<f64>,
    /// The same for as many last steps (measured alike, so a constant latency cancels in the
    /// rate).
    #[serde(default)]
    pub last_lags_s: Vec<f64>,
    /// From the last step's file write until the router's kernel table was exactly the desired
    /// set: every withdrawal applied too.
    #[serde(default)]
    pub exact_s: f64,
    /// Whether the router's session with the node was ever seen not Established.
    pub session_reset: bool,
}

/// Everything part 5 measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// Convergence trials, both mechanisms.
    pub convergence: Vec<Convergence>,
    /// Scale rounds.
    pub scale: Vec<ScaleRound>,
    /// Prefixes of the scale rounds.
    pub scale_prefixes: usize,
    /// Memory.
    pub memory: Option<Memory>,
    /// Churn at the target rate.
    pub churn: Option<Churn>,
    /// Churn above the target rate, run after it in the same session: the margin.
    #[serde(default)]
    pub churn_margin: Vec<Churn>,
}

/// Runs part 5.
pub fn run(tools: &Tools, guard: &Guard, settings: &Settings) -> Result<Results> {
    let mut results = Results { scale_prefixes: settings.prefixes, ..Results::default() };
    for detection in [Detection::Bfd, Detection::HoldTimer] {
        let tag = match detection {
            Detection::Bfd => "cbfd",
            Detection::HoldTimer => "chold",
        };
        let trials = in_lab(guard, tag, |lab| convergence(lab, tools, detection, settings.trials))
            .with_context(|| format!("convergence with {detection:?}"))?;
        results.convergence.extend(trials);
    }
    for round in 0..settings.scale_rounds {
        let speaker_s = in_lab(guard, &format!("sour{round}"), |lab| {
            scale_once(lab, Announcer::Speaker(tools), settings.prefixes)
        })?;
        let baseline_s = in_lab(guard, &format!("sbird{round}"), |lab| {
            scale_once(lab, Announcer::Bird, settings.prefixes)
        })?;
        eprintln!(
            "    bgp scale: round {}/{}: speaker {speaker_s:.3} s, BIRD {baseline_s:.3} s",
            round + 1,
            settings.scale_rounds
        );
        results.scale.push(ScaleRound { speaker_s, baseline_s });
    }
    results.memory = Some(in_lab(guard, "mem", |lab| memory(lab, tools, settings.prefixes))?);
    let mut rows = in_lab(guard, "churn", |lab| churn(lab, tools, settings))?.into_iter();
    results.churn = rows.next();
    results.churn_margin = rows.collect();
    Ok(results)
}

/// Runs `body` in a fresh lab that the guard tears down on interruption.
fn in_lab<T>(guard: &Guard, tag: &str, body: impl FnOnce(&mut Lab) -> Result<T>) -> Result<T> {
    let lab = Lab::new(FAMILY, tag)?.with_deadline(DEADLINE);
    let mut lab = guard.watch(lab);
    let out = body(&mut lab);
    if out.is_ok() {
        lab.succeeded();
    }
    drop(lab);
    guard.release();
    out
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a literal address")
}

/// The router's configuration: every node a neighbor.
fn router_config(addr: &str, nodes: &[(&str, &str)], hold: u16, bfd: bool) -> RouterConfig {
    let mut config = RouterConfig::new(ROUTER_AS, addr.parse::<Ipv4Addr>().expect("v4"))
        .kernel(true)
        .multipath(true)
        .listen(ip(addr));
    for (_, node) in nodes {
        let mut n = Neighbor::new(ip(node), NODE_AS).hold_time(hold);
        if bfd {
            n = n.bfd(BFD);
        }
        config = config.neighbor(n);
    }
    config
}

/// The prefixes of the scale figures: `count` /32s from 198.18.0.0 up.
fn prefixes(first: u32, count: usize) -> impl Iterator<Item = Ipv4Addr> {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    (0..count as u32).map(move |i| Ipv4Addr::from(base + first + i))
}

/// A peer of a node's file.
struct FilePeer<'a> {
    name: &'a str,
    address: &'a str,
    hold: u16,
    bfd: bool,
}

/// A node's desired state in the speaker's file-source format (`docs/internal/bgp-objects.md`).
fn node_file(node: &str, peers: &[FilePeer<'_>], ips: impl Iterator<Item = Ipv4Addr>) -> String {
    let mut s = format!("node: {node}\npeers:\n");
    for p in peers {
        let _ = writeln!(
            s,
            "  {}:\n    peerAddress: {}\n    peerASN: {ROUTER_AS}\n    myASN: {NODE_AS}\n    \
             holdTime: {}s",
            p.name, p.address, p.hold
        );
        if p.bfd {
            let _ = writeln!(
                s,
                "    bfd: {{receiveInterval: {}, transmitInterval: {}, detectMultiplier: {}}}",
                BFD.min_rx.as_millis(),
                BFD.min_tx.as_millis(),
                BFD.multiplier
            );
        }
    }
    s.push_str("pools:\n  service: [203.0.113.0/24]\n  bench: [198.18.0.0/15]\nroutes:\n");
    let names: Vec<&str> = peers.iter().map(|p| p.name).collect();
    let names = names.join(", ");
    for ip in ips {
        let pool = if ip.octets()[0] == 203 { "service" } else { "bench" };
        let _ = writeln!(s, "  - {{pool: {pool}, ip: {ip}, prefix: {ip}/32, peers: [{names}]}}");
    }
    s
}

/// Writes `contents` to `path` at once (a rename), so the speaker never reads half a file.
fn replace_file(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

/// Starts our speaker in `node`, reading `file`; the process label is `label`.
fn spawn_speaker(
    lab: &mut Lab,
    tools: &Tools,
    node: &str,
    label: &str,
    file: &Path,
) -> Result<u32> {
    let source = format!("file:{}", file.display());
    let pid = lab.spawn(Spawn::new(node, label, &tools.speaker).args([
        "--mode",
        "bgp",
        "--node-name",
        node,
        "--source",
        &source,
        "--metrics-addr",
        METRICS_ADDR,
        "--log-format",
        "text",
        // The file source's poll period bounds how fast a change reaches the engine; in a
        // cluster the Kubernetes watch delivers changes at once, so the benchmark polls fast.
        "--source-poll-interval",
        "100ms",
    ]))?;
    Ok(pid)
}

fn convergence(
    lab: &mut Lab,
    tools: &Tools,
    detection: Detection,
    trials: usize,
) -> Result<Vec<Convergence>> {
    let bfd = detection == Detection::Bfd;
    let hold = if bfd { LONG_HOLD } else { SHORT_HOLD };
    let (router_name, router_addr) = ROUTERS[0];
    lab.add_host(router_name, "eth0", &[&format!("{router_addr}/24")])?;
    for (name, addr) in NODES {
        lab.add_host(name, "eth0", &[&format!("{addr}/24")])?;
    }
    let router = Router::start(
        lab,
        router_name,
        RouterKind::Frr,
        &router_config(router_addr, &NODES, hold, bfd),
    )?;
    let peer = [FilePeer { name: "tor", address: router_addr, hold, bfd }];
    let service: IpNet = format!("{SERVICE_IP}/32").parse()?;
    let mut files = Vec::new();
    for (name, _) in NODES {
        let file = lab.write_file(
            &format!("{name}.yaml"),
            &node_file(name, &peer, std::iter::once(SERVICE_IP.parse()?)),
        )?;
        spawn_speaker(lab, tools, name, &format!("{name}-0"), &file)?;
        files.push(file);
    }
    let all: BTreeSet<IpAddr> = NODES.iter().map(|(_, a)| ip(a)).collect();
    let (victim, victim_addr) = NODES[0];
    let survivors: BTreeSet<IpAddr> =
        all.iter().copied().filter(|a| *a != ip(victim_addr)).collect();
    let mut out = Vec::with_capacity(trials);
    for trial in 0..trials {
        router.wait_for("three next hops in the router's kernel", || {
            Ok::<_, netlab::Error>(router.kernel_next_hops(&service)? == all)
        })?;
        if bfd {
            router.wait_for("BFD up with n1", || {
                Ok::<_, netlab::Error>(
                    router.bfd_peers()?.get(&ip(victim_addr))
                        == Some(&netlab::router::BfdState::Up),
                )
            })?;
        }
        let started = Instant::now();
        lab.set_link(victim, "eth0", false)?;
        lab.kill(&format!("{victim}-{trial}"))?;
        let bound = Duration::from_secs(u64::from(hold) * 3);
        loop {
            if router.kernel_next_hops(&service)? == survivors {
                break;
            }
            if started.elapsed() > bound {
                bail!("the router kept n1's next hop {bound:?} after n1 died");
            }
            std::thread::sleep(CONVERGENCE_POLL);
        }
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "    bgp convergence ({detection:?}): trial {}/{trials}: {seconds:.3} s",
            trial + 1
        );
        out.push(Convergence { detection, seconds });
        // The node comes back for the next trial.
        lab.set_link(victim, "eth0", true)?;
        spawn_speaker(lab, tools, victim, &format!("{victim}-{}", trial + 1), &files[0])?;
    }
    Ok(out)
}

/// Who announces in a scale round.
enum Announcer<'a> {
    Speaker(&'a Tools),
    Bird,
}

/// One node announces `count` prefixes to one router; the seconds from Established until the
/// router holds them all.
fn scale_once(lab: &mut Lab, announcer: Announcer<'_>, count: usize) -> Result<f64> {
    let (router_name, router_addr) = ROUTERS[0];
    let (node, node_addr) = NODES[0];
    lab.add_host(router_name, "eth0", &[&format!("{router_addr}/24")])?;
    lab.add_host(node, "eth0", &[&format!("{node_addr}/24")])?;
    let router = Router::start(
        lab,
        router_name,
        RouterKind::Frr,
        &router_config(router_addr, &NODES[..1], LONG_HOLD, false),
    )?;
    // Kept alive until the measurement is over: dropping a daemon's `Router` stops it.
    let _baseline = match announcer {
        Announcer::Speaker(tools) => {
            let peer =
                [FilePeer { name: "tor", address: router_addr, hold: LONG_HOLD, bfd: false }];
            let file = lab.write_file("node.yaml", &node_file(node, &peer, prefixes(0, count)))?;
            spawn_speaker(lab, tools, node, "speaker", &file)?;
            None
        }
        Announcer::Bird => Some(start_bird_node(lab, node, node_addr, &[router_addr], count)?),
    };
    wait_prefixes(&router, ip(node_addr), count)
}

/// BIRD in `node`, announcing `count` prefixes to each of `routers`.
fn start_bird_node(
    lab: &mut Lab,
    node: &str,
    node_addr: &str,
    routers: &[&str],
    count: usize,
) -> Result<Router> {
    let mut config = RouterConfig::new(NODE_AS, node_addr.parse::<Ipv4Addr>()?)
        .kernel(false)
        .multipath(false)
        .listen(ip(node_addr));
    for r in routers {
        config = config.neighbor(
            Neighbor::new(ip(r), ROUTER_AS).hold_time(LONG_HOLD).families(&[Family::Ipv4]),
        );
    }
    for p in prefixes(0, count) {
        config = config.announce(Announcement::new(IpNet::from(IpAddr::V4(p))));
    }
    Ok(Router::start(lab, node, RouterKind::Bird, &config)?)
}

/// From the last poll of the daemon's summary that counted no prefix from `neighbor` until
/// the first that counts `count`: an upper bound of the transfer and the router's processing
/// (too high by at most one poll), without the session set-up, whose timers are settings.
fn wait_prefixes(router: &Router, neighbor: IpAddr, count: usize) -> Result<f64> {
    let deadline = Instant::now() + DEADLINE;
    let mut none_seen = Instant::now();
    loop {
        let polled = Instant::now();
        let counted = router
            .session(neighbor)?
            .filter(|s| s.state == SessionState::Established)
            .and_then(|s| s.prefixes)
            .unwrap_or(0);
        let now = Instant::now();
        if counted == 0 {
            none_seen = polled;
        } else if counted >= count as u64 {
            return Ok(now.duration_since(none_seen).as_secs_f64());
        }
        if now > deadline {
            bail!("the router did not hold {count} prefixes from {neighbor} within {DEADLINE:?}");
        }
        std::thread::sleep(COUNT_POLL);
    }
}

/// Resident and peak resident memory of `pid`, KiB (`VmRSS`, `VmHWM`).
fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("{name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn memory(lab: &mut Lab, tools: &Tools, count: usize) -> Result<Memory> {
    let (node, node_addr) = NODES[0];
    let mut routers = Vec::new();
    for (name, addr) in ROUTERS {
        lab.add_host(name, "eth0", &[&format!("{addr}/24")])?;
    }
    lab.add_host(node, "eth0", &[&format!("{node_addr}/24")])?;
    for (name, addr) in ROUTERS {
        let config = router_config(addr, &NODES[..1], LONG_HOLD, false).kernel(false);
        routers.push(Router::start(lab, name, RouterKind::Frr, &config)?);
    }
    let peers: Vec<FilePeer<'_>> = ROUTERS
        .iter()
        .map(|(name, address)| FilePeer { name, address, hold: LONG_HOLD, bfd: false })
        .collect();
    let file = lab.write_file("node.yaml", &node_file(node, &peers, prefixes(0, count)))?;
    let pid = spawn_speaker(lab, tools, node, "speaker", &file)?;
    for router in &routers {
        wait_prefixes(router, ip(node_addr), count)?;
    }
    let (speaker_rss_kib, speaker_peak_kib) = rss_kib(pid)?;
    lab.kill("speaker")?;
    for router in &routers {
        router.wait_for("the speaker's session gone", || {
            Ok::<_, netlab::Error>(
                router.session(ip(node_addr))?.map(|s| s.state) != Some(SessionState::Established),
            )
        })?;
    }
    let bird = start_bird_node(lab, node, node_addr, &[ROUTERS[0].1, ROUTERS[1].1], count)?;
    for router in &routers {
        wait_prefixes(router, ip(node_addr), count)?;
    }
    let bird_pid = bird_pid(&bird)?;
    let (baseline_rss_kib, _) = rss_kib(bird_pid)?;
    Ok(Memory {
        prefixes: count,
        peers: ROUTERS.len(),
        speaker_rss_kib,
        speaker_peak_kib,
        baseline_rss_kib,
    })
}

/// BIRD's pid, from the pid file the router lab has it write.
fn bird_pid(bird: &Router) -> Result<u32> {
    let path: PathBuf = bird.dir().join("bird.pid");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    text.trim().parse().with_context(|| format!("a pid in {}", path.display()))
}

fn churn(lab: &mut Lab, tools: &Tools, settings: &Settings) -> Result<Vec<Churn>> {
    let (router_name, router_addr) = ROUTERS[0];
    let (node, node_addr) = NODES[0];
    lab.add_host(router_name, "eth0", &[&format!("{router_addr}/24")])?;
    lab.add_host(node, "eth0", &[&format!("{node_addr}/24")])?;
    let router = Router::start(
        lab,
        router_name,
        RouterKind::Frr,
        &router_config(router_addr, &NODES[..1], LONG_HOLD, false),
    )?;
    let peer = [FilePeer { name: "tor", address: router_addr, hold: LONG_HOLD, bfd: false }];
    let count = settings.prefixes;
    let file = lab.write_file("node.yaml", &node_file(node, &peer, prefixes(0, count)))?;
    spawn_speaker(lab, tools, node, "speaker", &file)?;
    wait_prefixes(&router, ip(node_addr), count)?;
    router.wait_for("every prefix in the router's kernel", || {
        Ok::<_, netlab::Error>(router.kernel_route_count(Family::Ipv4)? >= count)
    })?;

    let churn = Churner { lab, router_name, node, peer: &peer, file: &file, count };
    let session_since = Instant::now();
    let mut window = 0;
    let mut rows = Vec::new();
    for &n in std::iter::once(&settings.churn_per_step).chain(settings.churn_margin_per_step) {
        let (mut row, next) = churn.row(window, n, settings.churn_steps)?;
        window = next;
        // Not polled during the churn (a poll of a 10 000-route bgpd takes longer than a
        // step): a session up for less time than the churn has run was reset meanwhile. One
        // second of slack: FRR's uptime may count whole seconds.
        let session = router.session(ip(node_addr))?;
        row.session_reset = session.is_none_or(|s| {
            s.state != SessionState::Established
                || s.uptime.is_none_or(|up| up + Duration::from_secs(1) < session_since.elapsed())
        });
        eprintln!(
            "    bgp churn: offered {:.0}/s, first steps after {:.3?} s, last after {:.3?} s",
            row.offered_per_s, row.first_lags_s, row.last_lags_s
        );
        rows.push(row);
    }
    Ok(rows)
}

/// The churn's lab: one node announcing a sliding window of `count` prefixes to the router.
struct Churner<'a> {
    lab: &'a Lab,
    router_name: &'a str,
    node: &'a str,
    peer: &'a [FilePeer<'a>],
    file: &'a Path,
    count: usize,
}

impl Churner<'_> {
    /// One row: `steps` steps of `n` withdrawn and `n` announced, one every [`CHURN_STEP`],
    /// from the window starting at `window` (what the file holds); the row and the window it
    /// leaves.
    fn row(&self, window: usize, n: usize, steps: usize) -> Result<(Churn, usize)> {
        // A sliding window: step k holds [window + k·n, window + k·n + count), so it withdraws
        // the n lowest and announces n new ones from window + (k - 1)·n + count up.
        let index = |i: usize| u32::try_from(i).context("a window inside 198.18.0.0/15");
        let file_at = |step: usize| -> Result<String> {
            Ok(node_file(self.node, self.peer, prefixes(index(window + step * n)?, self.count)))
        };
        let new_of = |step: usize| -> Result<Ipv4Addr> {
            let first = index(window + (step - 1) * n + self.count)?;
            prefixes(first, 1).next().context("a prefix")
        };
        if steps < 2 {
            bail!("a churn row needs a first and a last step, not {steps} step");
        }
        // The latency of the first and of the last steps, each step watched from its write.
        let ends = CHURN_ENDS.min(steps / 2);
        let mut watched = BTreeMap::new();
        for step in (1..=ends).chain(steps + 1 - ends..=steps) {
            watched.insert(step, Watched { prefix: new_of(step)?, written: None, lag: None });
        }
        let started = Instant::now();
        let mut last_write = started;
        for step in 1..=steps {
            replace_file(self.file, &file_at(step)?)?;
            // Latencies count from the end of their step's write, so writing (and formatting
            // 10 000 routes) is in none of them.
            last_write = Instant::now();
            if let Some(w) = watched.get_mut(&step) {
                w.written = Some(last_write);
            }
            let next = started + CHURN_STEP * index(step)?;
            while Instant::now() + PREFIX_POLL < next && self.poll(&mut watched)? {
                std::thread::sleep(PREFIX_POLL);
            }
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let offered = started.elapsed();
        // Steps slower than what was left of the row are seen here, polled the same way.
        let deadline = last_write + DEADLINE;
        while self.poll(&mut watched)? {
            if Instant::now() > deadline {
                bail!(
                    "the churn's last steps did not reach the router's kernel within {DEADLINE:?}"
                );
            }
            std::thread::sleep(PREFIX_POLL);
        }
        let lags: Vec<f64> =
            watched.values().map(|w| w.lag.unwrap_or_default().as_secs_f64()).collect();
        let (first_lags, last_lags) = lags.split_at(ends);
        let want: BTreeSet<Ipv4Addr> = prefixes(index(window + steps * n)?, self.count).collect();
        let deadline = last_write + DEADLINE;
        while kernel_prefixes(self.lab, self.router_name)? != want {
            if Instant::now() > deadline {
                bail!(
                    "the router's kernel table did not converge within {DEADLINE:?} of the churn"
                );
            }
            std::thread::sleep(COUNT_POLL);
        }
        let exact = last_write.elapsed();
        let changes = 2 * n * steps;
        let row = Churn {
            prefixes: self.count,
            per_step: n,
            offered_per_s: changes as f64 / offered.as_secs_f64(),
            changes,
            first_lags_s: first_lags.to_vec(),
            last_lags_s: last_lags.to_vec(),
            exact_s: exact.as_secs_f64(),
            session_reset: false,
        };
        Ok((row, window + steps * n))
    }

    /// One poll of the watched steps written and not seen yet (one `ip -batch` for all of
    /// them); whether any is still outstanding.
    fn poll(&self, watched: &mut BTreeMap<usize, Watched>) -> Result<bool> {
        let mut batch = String::new();
        for w in watched.values().filter(|w| w.written.is_some() && w.lag.is_none()) {
            let _ = writeln!(batch, "route show exact {}/32", w.prefix);
        }
        if !batch.is_empty() {
            let file = self.lab.write_file("poll.batch", &batch)?;
            let file = file.to_string_lossy();
            let text = self.lab.ip(self.router_name, &["-4", "-batch", &file])?;
            let now = Instant::now();
            let seen: BTreeSet<Ipv4Addr> = text
                .lines()
                .filter_map(|line| line.split_whitespace().next()?.parse().ok())
                .collect();
            for w in watched.values_mut().filter(|w| w.lag.is_none()) {
                if let Some(written) = w.written
                    && seen.contains(&w.prefix)
                {
                    w.lag = Some(now - written);
                }
            }
        }
        Ok(watched.values().any(|w| w.lag.is_none()))
    }
}

/// A churn step whose latency is measured.
struct Watched {
    /// Its first new prefix.
    prefix: Ipv4Addr,
    /// When its write ended.
    written: Option<Instant>,
    /// From then until the prefix was in the router's kernel.
    lag: Option<Duration>,
}

/// The IPv4 /32s zebra installed into `name`'s kernel.
fn kernel_prefixes(lab: &Lab, name: &str) -> Result<BTreeSet<Ipv4Addr>> {
    let text = lab.ip(name, &["-4", "route", "show", "proto", "bgp"])?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|dst| dst.parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_files_name_every_peer_and_put_each_ip_in_its_pool() {
        let peers = [
            FilePeer { name: "r", address: "192.0.2.1", hold: 3, bfd: true },
            FilePeer { name: "r2", address: "192.0.2.2", hold: 90, bfd: false },
        ];
        let ips = [SERVICE_IP.parse().unwrap()].into_iter().chain(prefixes(0, 2));
        let text = node_file("n1", &peers, ips);
        let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(doc["node"], "n1");
        assert_eq!(doc["peers"]["r"]["holdTime"], "3s");
        assert_eq!(doc["peers"]["r"]["bfd"]["detectMultiplier"], 3);
        assert!(doc["peers"]["r2"].get("bfd").is_none());
        let routes = doc["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[0]["pool"], "service");
        assert_eq!(routes[2]["prefix"], "198.18.0.1/32");
        assert_eq!(routes[2]["pool"], "bench");
        assert_eq!(routes[1]["peers"], serde_json::json!(["r", "r2"]));
    }

    #[test]
    fn prefixes_stay_inside_the_benchmarking_range() {
        let range: IpNet = "198.18.0.0/15".parse().unwrap();
        let last = prefixes(20_000, 10_000).last().unwrap();
        assert!(range.contains(&IpAddr::V4(last)), "{last}");
    }
}
