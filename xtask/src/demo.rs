//! `cargo xtask demo`: the seed scenario on one machine, control plane and data plane real.
//!
//! ```text
//!  examples/demo/*.yaml ─► fake cluster ◄──► metallb-hooks (real binary, test kit framework)
//!                              │ children (IP, node, backups)      ▲ speaker pods Ready/not
//!                              ▼                                   │
//!                      speakers.yaml ─► metallb-speaker ×3 (real, gossip) ── ARP ─► client
//!                                       in namespaces front-0..2 on one bridge     namespace
//! ```
//!
//! The story: the module starts; a class and a Service are created and the Service gets three
//! IPs, each answered by a different front node; front-0 fails and its IP moves to its first
//! backup within about a second while the other two IPs keep answering; the hooks then move
//! the IP in the cluster; front-0 comes back, is held down, then takes an IP again. Every step is printed with its timing, and
//! [`run`] returns a [`Report`] that the CI test (`xtask/tests/demo.rs`) asserts on.
//!
//! `--mode bgp` tells the BGP story instead, with FRR as the router: see [`bgp`].
//!
//! Cleanup: the network and every process live in namespaces named `mlbdemo-<pid>-<tag>-*`,
//! removed when the demo ends, fails, or is interrupted (SIGINT/SIGTERM/SIGHUP); leftovers of a
//! run killed with SIGKILL are removed by the next run.

pub mod agent;
pub mod bgp;
mod control;
mod wire;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub use control::Placement;
use control::{ControlPlane, Settled};
use wire::DataPlane;

/// Bound of every step that waits for the wire: a failover takes about a second, a hook run
/// a few milliseconds; the bound only turns a hang into an error.
const STEP_DEADLINE: Duration = Duration::from_secs(15);
/// Poll period while measuring the failover: the client's neighbour entry is read with `ip`
/// (a few milliseconds), so 10 ms keeps the measurement error small without hogging a core.
const FAILOVER_POLL: Duration = Duration::from_millis(10);
/// How long the client keeps fetching after the final placement, to show it is stable.
const SETTLE_WATCH: Duration = Duration::from_millis(500);
/// The domain of the DNS records printed for the Service (RFC 2606 reserves example.com).
const DNS_DOMAIN: &str = "example.com";

/// How to run the demo.
#[derive(Debug, Clone)]
pub struct Options {
    /// Print nothing; only return the report.
    pub quiet: bool,
    /// Install a SIGINT/SIGTERM/SIGHUP handler that cleans up and exits (once per process).
    pub handle_signals: bool,
    /// Tag in the namespace names (`mlbdemo-<pid>-<tag>-*`), lower-case letters and digits.
    pub tag: String,
    /// The xtask binary, whose hidden `demo-*` subcommands run inside the namespaces.
    pub helper: PathBuf,
    /// How the hook and speaker binaries are built.
    pub profile: Profile,
}

/// The cargo profile of the demo's binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Optimized, as shipped: what `cargo xtask demo` shows and measures.
    Release,
    /// The dev profile, for the CI test: a release build of both binaries took about four of
    /// the test suite's seven minutes, and the story it asserts does not depend on speed.
    Dev,
}

impl Options {
    /// The options of `cargo xtask demo`: this executable as the helper, signals handled.
    pub fn for_cli(quiet: bool) -> Result<Self> {
        Ok(Self {
            quiet,
            handle_signals: true,
            tag: "run".to_owned(),
            helper: std::env::current_exe().context("locate the xtask executable")?,
            profile: Profile::Release,
        })
    }
}

/// Fetches by the watching client over some span (of one IP, or of one step of a story).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetches {
    /// Fetches made.
    pub total: usize,
    /// Fetches without an answer.
    pub failed: usize,
}

/// What the demo observed.
#[derive(Debug, Clone)]
pub struct Report {
    /// The prefix of the demo's namespaces.
    pub prefix: String,
    /// The Service's IPs (its `status.loadBalancer.ingress`).
    pub service_ips: Vec<IpAddr>,
    /// The children as first placed by the hooks.
    pub placements: Vec<Placement>,
    /// Per IP, the node whose HTTP server answered the client's first fetch.
    pub first_answers: BTreeMap<IpAddr, String>,
    /// Per IP, the node whose MAC the client's kernel resolved it to.
    pub arp_answers: BTreeMap<IpAddr, String>,
    /// The node that failed.
    pub failed_node: String,
    /// Its IP.
    pub failed_ip: IpAddr,
    /// The first backup of that IP when the node failed.
    pub first_backup: String,
    /// The node that first answered the failed IP after the failure.
    pub answered_by: String,
    /// The node the client's neighbour entry for the failed IP pointed at next.
    pub neighbour_moved_to: String,
    /// From the failure to the client's neighbour entry pointing at another node.
    pub neighbour_moved_after: Duration,
    /// From the failure to the first answer from another node.
    pub answered_after: Duration,
    /// Per IP, the client's fetches from the failure to the end.
    pub fetches: BTreeMap<IpAddr, Fetches>,
    /// Where the hooks moved the failed IP.
    pub moved_to: String,
    /// The children right after the failed node came back, during its failback hold-down.
    pub held_placements: Vec<Placement>,
    /// The children after the failed node's hold-down ended.
    pub final_placements: Vec<Placement>,
    /// Namespaces with the demo's prefix left after cleanup (none, unless cleanup failed).
    pub leftover_namespaces: Vec<String>,
    /// The whole demo, build included.
    pub took: Duration,
}

/// The packages whose binaries the demo runs, as `cargo build` arguments.
pub const DEV_BUILD_PACKAGES: [&str; 4] = ["-p", "metallb-hooks", "-p", "metallb-speaker"];

/// What a signal handler must stop: the build, then the lab.
#[derive(Default)]
struct Running {
    build: Option<Child>,
    cleaner: Option<netlab::Cleaner>,
}

/// The built binaries.
struct Binaries {
    hooks: PathBuf,
    speaker: PathBuf,
}

/// Prints the story with timings (or nothing, when quiet).
struct Story {
    quiet: bool,
    started: Instant,
}

impl Story {
    fn step(&self, text: impl Display) {
        if !self.quiet {
            println!("[{:>6.2}s] {text}", self.started.elapsed().as_secs_f64());
        }
    }

    fn line(&self, text: impl Display) {
        if !self.quiet {
            println!("          {text}");
        }
    }
}

/// The error with its causes on one line.
pub(crate) fn chain(error: &anyhow::Error) -> String {
    format!("{error:#}")
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn runs(s: Settled) -> String {
    let plural = if s.runs == 1 { "" } else { "s" };
    format!("{} hook run{plural}, {}", s.runs, ms(s.took))
}

/// Runs the demo from the repository at `root`.
pub fn run(root: &Path, options: &Options) -> Result<Report> {
    let (story, bins, slot) =
        prepare(root, options, "metallb demo: the seed scenario on one machine", &[])?;
    let mut report = scenario(root, options, &bins, &story, &slot)?;
    report.leftover_namespaces = finish(&story, &report.prefix)?;
    report.took = story.started.elapsed();
    Ok(report)
}

/// What every mode does first: checks the machine (root, iproute2, `programs`), installs the
/// signal handler, builds the binaries and removes what a killed run left.
fn prepare(
    root: &Path,
    options: &Options,
    title: &str,
    programs: &[&str],
) -> Result<(Story, Binaries, Arc<Mutex<Running>>)> {
    let story = Story { quiet: options.quiet, started: Instant::now() };
    netlab::preflight(programs).context(
        "`cargo xtask demo` builds network namespaces: run it as root on Linux with iproute2 \
         (and FRR for --mode bgp: apt-get install frr)",
    )?;
    let slot: Arc<Mutex<Running>> = Arc::default();
    if options.handle_signals {
        let slot = slot.clone();
        ctrlc::set_handler(move || {
            eprintln!("\ninterrupted: removing the demo's namespaces and processes");
            let mut running = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(build) = running.build.as_mut() {
                // A terminal's Ctrl-C reaches cargo too, a `kill` of the demo does not.
                let _ = build.kill();
            }
            if let Some(cleaner) = running.cleaner.as_ref() {
                cleaner.clean_up();
            }
            // 128 + SIGINT, the shell's convention for "ended by a signal".
            std::process::exit(130);
        })
        .context("install the signal handler")?;
    }
    story.step(title);
    let bins = build(root, options.profile, &story, &slot)?;
    let removed = netlab::sweep_stale(wire::FAMILY)?;
    if !removed.is_empty() {
        story.step(format!("removed leftovers of an earlier run: {}", removed.join(" ")));
    }
    Ok((story, bins, slot))
}

/// After the scenario dropped its lab: the namespaces with `prefix` still there (an error
/// unless none).
fn finish(story: &Story, prefix: &str) -> Result<Vec<String>> {
    let left = netlab::namespaces_with_prefix(prefix)?;
    if !left.is_empty() {
        bail!("namespaces left after cleanup: {}", left.join(" "));
    }
    story.step(format!("cleaned up: no namespace {prefix}* left, every process ended"));
    Ok(left)
}

/// `cargo build [--release] -j2 -p metallb-hooks -p metallb-speaker`, with the binaries' paths
/// from cargo's JSON messages (so any target directory works). Release by default, because
/// the demo measures a failover. The dev build selects the same packages as the bench tests'
/// builds ([`DEV_BUILD_PACKAGES`]), so that in one test run the second build finds the first's
/// artifacts.
fn build(root: &Path, profile: Profile, story: &Story, slot: &Mutex<Running>) -> Result<Binaries> {
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut args = vec!["build"];
    if profile == Profile::Release {
        args.push("--release");
    }
    // Two jobs: the machines this runs on have two cores, shared with other work.
    args.push("-j2");
    args.extend(DEV_BUILD_PACKAGES);
    let shown = args.join(" ");
    args.push("--message-format=json-render-diagnostics");
    story.step(format!("build: cargo {shown}"));
    // Diagnostics: on the terminal, or into a file when quiet (shown if the build fails).
    let log = tempfile::tempfile().context("create a file for cargo's output")?;
    let mut child = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if story.quiet { Stdio::from(log.try_clone()?) } else { Stdio::inherit() })
        .spawn()
        .with_context(|| format!("run {cargo}"))?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    slot.lock().unwrap_or_else(PoisonError::into_inner).build = Some(child);
    let mut messages = String::new();
    std::io::BufReader::new(stdout).read_to_string(&mut messages).context("read cargo's output")?;
    let child = slot.lock().unwrap_or_else(PoisonError::into_inner).build.take();
    let status = child.context("the build was stopped")?.wait()?;
    if !status.success() {
        let mut diagnostics = String::new();
        let mut log = log;
        log.seek(SeekFrom::Start(0))?;
        log.read_to_string(&mut diagnostics)?;
        bail!("cargo build failed ({status}): {diagnostics}");
    }
    let mut found = BTreeMap::new();
    for line in messages.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else { continue };
        if message["reason"] == "compiler-artifact"
            && let (Some(name), Some(exe)) =
                (message["target"]["name"].as_str(), message["executable"].as_str())
        {
            found.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    let mut take = |name: &str| {
        found.remove(name).with_context(|| format!("cargo built no executable {name}"))
    };
    let bins = Binaries { hooks: take("metallb-hooks")?, speaker: take("metallb-speaker")? };
    story.line(format!("built in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(bins)
}

fn scenario(
    root: &Path,
    options: &Options,
    bins: &Binaries,
    story: &Story,
    slot: &Mutex<Running>,
) -> Result<Report> {
    // === control plane ===
    let (mut control, started) = ControlPlane::start(root, &bins.hooks, "demo")?;
    story.step(format!(
        "control plane: the test kit's framework emulation runs the real metallb-hooks over a \
         fake cluster from examples/demo/ ({} hooks; start: {})",
        control.hook_count(),
        runs(started)
    ));
    let nodes = control.nodes()?;
    story.line(format!(
        "nodes: {}; the gossip-key hook created Secret d8-metallb/l2lb-speaker-gossip-key",
        nodes.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
    ));

    // === data plane ===
    let mut data = DataPlane::new(&options.tag, &options.helper, &bins.speaker, &nodes)?;
    slot.lock().unwrap_or_else(PoisonError::into_inner).cleaner = Some(data.lab().cleaner());
    let prefix = data.lab().prefix().to_owned();
    story.step(format!(
        "data plane: a network namespace per node and a client, on one bridge ({prefix}*)"
    ));
    story.line("client     198.51.100.1");
    for (node, ip) in &nodes {
        story.line(format!("{node:<10} {ip:<15} {}", data.mac(node)));
    }
    story.line(
        "every node: kube-ipvs0 (IPVS mode), strict ARP (arp_ignore=1, arp_announce=2) and an \
         HTTP server on :80 answering with the node's name",
    );

    // === the class ===
    control.insert_file("class.yaml")?;
    let settled = control.settle()?;
    let members = control.members();
    story.step("kubectl apply -f examples/demo/class.yaml  # MetalLoadBalancerClass front");
    story.line(format!("hooks: {}; member nodes: {}", runs(settled), members.join(", ")));
    if members.is_empty() {
        bail!("the class selects no node; check nodeSelector in examples/demo/class.yaml");
    }

    // === the speaker DaemonSet ===
    data.write_gossip_key(&control.gossip_key()?)?;
    data.write_state(&control.speaker_state()?)?;
    let speakers_started = Instant::now();
    // Started together, as a DaemonSet rolls out: a speaker is ready only once it reaches a
    // majority of its peers.
    for node in &members {
        data.spawn_speaker(node, &members)?;
    }
    for node in &members {
        data.wait_speaker_ready(node)?;
        control.set_speaker_ready(node, true)?;
    }
    let settled = control.settle()?;
    story.step(format!(
        "speaker DaemonSet: the real metallb-speaker on {} (gossip on <node IP>:4226, key from \
         the Secret), Ready after {}",
        members.join(", "),
        ms(speakers_started.elapsed())
    ));
    let gossip = data.wait_gossip(&members)?;
    story.line(format!(
        "pods Ready in the cluster (hooks: {}); gossip: every speaker sees {} alive (+{})",
        runs(settled),
        members.len(),
        ms(gossip)
    ));

    // === the Service ===
    let service = control.insert_file("service.yaml")?;
    let service = service.first().context("examples/demo/service.yaml holds no object")?;
    let s = |p: &str| service.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (namespace, name) = (s("/metadata/namespace"), s("/metadata/name"));
    let settled = control.settle()?;
    let service_ips = control.ingress(&namespace, &name);
    let placements = control.placements(&namespace, &name);
    story
        .step(format!("kubectl apply -f examples/demo/service.yaml  # Service {namespace}/{name}"));
    story.line(format!(
        "hooks: {}; status.loadBalancer.ingress: {}",
        runs(settled),
        service_ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    ));
    if service_ips.is_empty() || placements.len() != service_ips.len() {
        bail!("the Service got {} IPs and {} placed children", service_ips.len(), placements.len());
    }
    print_placements(story, &placements);
    story.line("publish the IPs as DNS records:");
    for ip in &service_ips {
        let kind = if ip.is_ipv4() { "A" } else { "AAAA" };
        story.line(format!("  {name}.{DNS_DOMAIN}.  300  IN  {kind}  {ip}"));
    }

    // === on the wire ===
    data.add_service_ips(&service_ips)?;
    data.write_state(&control.speaker_state()?)?;
    for node in &members {
        data.wait_owned(node, placements.iter().filter(|p| &p.node == node).count())?;
    }
    story.step(
        "kube-proxy put the IPs on kube-ipvs0 of every node; the speakers read their new state",
    );
    let mut first_answers = BTreeMap::new();
    let mut arp_answers = BTreeMap::new();
    for p in &placements {
        let fetch_started = Instant::now();
        let answer = data.first_fetch(p.ip)?;
        let took = fetch_started.elapsed();
        let mac = data.client_neighbour(p.ip)?.unwrap_or_default();
        let arp = data.node_of_mac(&mac).unwrap_or("nobody").to_owned();
        story.line(format!(
            "client: GET http://{}/ -> {answer} ({}); ARP: {} is-at {mac} ({arp})",
            p.ip,
            ms(took),
            p.ip
        ));
        first_answers.insert(p.ip, answer);
        arp_answers.insert(p.ip, arp);
    }
    let distinct: std::collections::BTreeSet<&String> = first_answers.values().collect();
    story.line(format!(
        "{} IPs answered by {} different nodes",
        first_answers.len(),
        distinct.len()
    ));

    // === front-0 fails ===
    let watch = data.watch(&service_ips)?;
    data.lab().wait_for("the client's first round of fetches", || -> Result<bool> {
        Ok(service_ips.iter().all(|ip| watch.find(|s| s.ip == *ip && s.answer.is_ok()).is_some()))
    })?;
    story.step(format!(
        "client: fetching every IP every {} ms from now on",
        wire::WATCH_EVERY.as_millis()
    ));
    let failed = placements
        .iter()
        .find(|p| p.node == "front-0")
        .or_else(|| placements.first())
        .context("no placement")?
        .clone();
    let first_backup = failed.backups.first().cloned().unwrap_or_default();
    let victim_mac = data.mac(&failed.node).to_owned();
    let t0 = agent::unix_ms();
    let killed = Instant::now();
    data.fail_node(&failed.node)?;
    story.step(format!(
        "{} fails: its speaker is killed with SIGKILL and its cable pulled ({} was announced \
         there; first backup: {first_backup})",
        failed.node, failed.ip
    ));
    let mut neighbour_moved: Option<(Duration, String)> = None;
    let mut answered: Option<(Duration, String)> = None;
    while (neighbour_moved.is_none() || answered.is_none()) && killed.elapsed() < STEP_DEADLINE {
        if neighbour_moved.is_none()
            && let Some(mac) = data.client_neighbour(failed.ip)?
            && mac != victim_mac
        {
            let node = data.node_of_mac(&mac).unwrap_or("unknown").to_owned();
            neighbour_moved = Some((killed.elapsed(), node));
        }
        if answered.is_none() {
            answered = watch
                .find(|s| {
                    s.ip == failed.ip
                        && s.at >= t0
                        && s.answer.as_ref().is_ok_and(|n| *n != failed.node)
                })
                .map(|s| {
                    let after = Duration::from_millis(u64::try_from(s.at - t0).unwrap_or(u64::MAX));
                    (after, s.answer.unwrap_or_default())
                });
        }
        std::thread::sleep(FAILOVER_POLL);
    }
    let (neighbour_moved_after, neighbour_node) = neighbour_moved.with_context(|| {
        format!("the client's entry for {} never left {}", failed.ip, failed.node)
    })?;
    let (answered_after, answered_by) = answered.with_context(|| {
        format!("no other node answered {} within {STEP_DEADLINE:?}", failed.ip)
    })?;
    story.step(format!(
        "client's ARP entry for {} now points at {neighbour_node} ({} after the failure, \
         gratuitous ARP of the backup)",
        failed.ip,
        ms(neighbour_moved_after)
    ));
    let failures_so_far = count(&watch.samples(), t0);
    story.line(format!(
        "{} answered by {answered_by} {} after the failure ({} fetches failed meanwhile)",
        failed.ip,
        ms(answered_after),
        failures_so_far.get(&failed.ip).map_or(0, |f| f.failed)
    ));
    for ip in service_ips.iter().filter(|ip| **ip != failed.ip) {
        let f = failures_so_far.get(ip).copied().unwrap_or_default();
        story.line(format!("{ip}: {} of {} fetches failed", f.failed, f.total));
    }

    // === the hooks react ===
    control.set_speaker_ready(&failed.node, false)?;
    let settled = control.settle()?;
    let after_failure = control.placements(&namespace, &name);
    let moved = after_failure
        .iter()
        .find(|p| p.child == failed.child)
        .with_context(|| format!("child {} is gone", failed.child))?
        .clone();
    data.write_state(&control.speaker_state()?)?;
    story.step(format!(
        "the kubelet reports the speaker pod on {} not Ready; hooks: {}",
        failed.node,
        runs(settled)
    ));
    story.line(format!(
        "{} {}: {} -> {} (backups: {})",
        moved.child,
        moved.ip,
        failed.node,
        moved.node,
        list(&moved.backups)
    ));
    let since = agent::unix_ms();
    data.lab().wait_for(
        &format!("{} answered by {}", moved.ip, moved.node),
        || -> Result<bool> {
            Ok(watch
                .find(|s| {
                    s.ip == moved.ip
                        && s.at >= since
                        && s.answer.as_deref() == Ok(moved.node.as_str())
                })
                .is_some())
        },
    )?;

    // === front-0 comes back ===
    data.reconnect_node(&failed.node)?;
    data.start_speaker(&failed.node, &members)?;
    let gossip = data.wait_gossip(&members)?;
    control.set_speaker_ready(&failed.node, true)?;
    let settled = control.settle()?;
    data.write_state(&control.speaker_state()?)?;
    let held_placements = control.placements(&namespace, &name);
    let hold_down = control.failback_hold_down()?;
    story.step(format!(
        "{} comes back: cable in, speaker restarted, gossip sees {} alive (+{}), pod Ready; \
         hooks: {}",
        failed.node,
        members.len(),
        ms(gossip),
        runs(settled)
    ));
    story.line(format!(
        "{} is held down for {} s (failbackHoldDownSeconds): no IP moves back yet",
        failed.node,
        hold_down.as_secs()
    ));
    std::thread::sleep(hold_down);
    let settled = control.failback_timer()?;
    data.write_state(&control.speaker_state()?)?;
    let final_placements = control.placements(&namespace, &name);
    story.step(format!(
        "the hold-down of {} has ended; the failback timer runs the hooks: {}",
        failed.node,
        runs(settled)
    ));
    for p in &final_placements {
        if let Some(before) = after_failure.iter().find(|b| b.child == p.child && b.node != p.node)
        {
            story.line(format!("{} {}: {} -> {}", p.child, p.ip, before.node, p.node));
        }
    }
    story.line("final placement:");
    print_placements(story, &final_placements);
    let since = agent::unix_ms();
    for p in &final_placements {
        data.lab().wait_for(&format!("{} answered by {}", p.ip, p.node), || -> Result<bool> {
            Ok(watch
                .find(|s| {
                    s.ip == p.ip && s.at >= since && s.answer.as_deref() == Ok(p.node.as_str())
                })
                .is_some())
        })?;
    }
    std::thread::sleep(SETTLE_WATCH);
    let samples = data.stop_watch(watch)?;
    let fetches = count(&samples, t0);
    story.step(format!("client fetches since {} failed:", failed.node));
    for (ip, f) in &fetches {
        let note = if *ip == failed.ip { " (the failed node's IP)" } else { "" };
        story.line(format!("{ip}: {} of {} failed{note}", f.failed, f.total));
    }
    data.lab().succeeded();
    drop(data);
    Ok(Report {
        prefix,
        service_ips,
        placements,
        first_answers,
        arp_answers,
        failed_node: failed.node,
        failed_ip: failed.ip,
        first_backup,
        answered_by,
        neighbour_moved_to: neighbour_node,
        neighbour_moved_after,
        answered_after,
        fetches,
        moved_to: moved.node,
        held_placements,
        final_placements,
        leftover_namespaces: Vec::new(),
        took: Duration::ZERO,
    })
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

fn print_placements(story: &Story, placements: &[Placement]) {
    for p in placements {
        story.line(format!(
            "  {:<16} {:<15} {:<9} backups: {}",
            p.child,
            p.ip,
            p.node,
            list(&p.backups)
        ));
    }
}

/// Fetches per IP at or after `since` (Unix ms).
fn count(samples: &[agent::Sample], since: u128) -> BTreeMap<IpAddr, Fetches> {
    let mut out: BTreeMap<IpAddr, Fetches> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.at >= since) {
        let f = out.entry(s.ip).or_default();
        f.total += 1;
        f.failed += usize::from(s.answer.is_err());
    }
    out
}

impl Report {
    /// The outcome on one line (what `cargo xtask demo --quiet` prints).
    pub fn summary(&self) -> String {
        let distinct: std::collections::BTreeSet<&String> = self.first_answers.values().collect();
        let others: usize = self
            .fetches
            .iter()
            .filter(|(ip, _)| **ip != self.failed_ip)
            .map(|(_, f)| f.failed)
            .sum();
        format!(
            "metallb demo: {} IPs answered by {} nodes; {} failed, {} answered by {} after {} \
             (ARP entry moved after {}); failed fetches of the other IPs: {others}; {:.1} s",
            self.service_ips.len(),
            distinct.len(),
            self.failed_node,
            self.failed_ip,
            self.answered_by,
            ms(self.answered_after),
            ms(self.neighbour_moved_after),
            self.took.as_secs_f64()
        )
    }
}
