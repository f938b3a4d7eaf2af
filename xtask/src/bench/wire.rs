//! Parts 2 and 4: ARP/NDP answers of the speaker against the Linux kernel, on one wire, and
//! the speaker's memory.
//!
//! ```text
//!   ns c (client)                          ns a (node)
//!   eth0 192.0.2.1, 2001:db8::1  ──br0──┬─ eth0 192.0.2.2, 2001:db8::2      ← kernel of a
//!   xtask bench-probe (AF_PACKET)       │  speaker: 192.0.2.10, 2001:db8::10  (2 addresses)
//!                                       │  ns m (node)
//!                                       └─ eth0 192.0.2.3, 2001:db8::3      ← kernel of m
//!                                          speaker: 192.0.2.20, 2001:db8::20 (+ 9,998 more)
//! ```
//!
//! Speaker and kernel sit behind the same interface of the same namespace, so the path is the
//! same and only the answering code differs; the two nodes differ only in how many addresses
//! their speaker owns. The prober alternates over all eight targets request by request, so
//! every figure of the table saw the same load of the machine.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netlab::{Lab, Spawn};
use serde::{Deserialize, Serialize};

use super::probe::{LatencyOutput, RateOutput, TargetRtts};
use super::{Guard, Tools};

/// Namespace family of the benchmark labs (`netlab::sweep_stale` removes leftovers of a run
/// that was killed).
pub const FAMILY: &str = "mlbbench";
/// Client addresses.
const CLIENT4: &str = "192.0.2.1";
const CLIENT6: &str = "2001:db8::1";
/// Node `a`: its own addresses (answered by its kernel) and those of its speaker, which owns
/// one address per family.
const KERNEL4: &str = "192.0.2.2";
const KERNEL6: &str = "2001:db8::2";
const SPEAKER4: &str = "192.0.2.10";
const SPEAKER6: &str = "2001:db8::10";
/// Node `m`: the same, with a speaker that owns [`Settings::many`] addresses.
const M_KERNEL4: &str = "192.0.2.3";
const M_KERNEL6: &str = "2001:db8::3";
const M_SPEAKER4: &str = "192.0.2.20";
const M_SPEAKER6: &str = "2001:db8::20";
/// Where the speaker serves /readyz and /metrics inside its namespace (its default).
const METRICS: &str = "127.0.0.1:7472";

/// How much to measure.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Requests per target in a latency run.
    pub latency_count: usize,
    /// Addresses the speaker owns in the "many" case.
    pub many: usize,
    /// Request rates stepped through, per second.
    pub rates: Vec<u32>,
    /// Duration of one rate step.
    pub rate_step: Duration,
}

/// Speaker and kernel round trips for one family, measured in alternation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pair {
    /// `IPv4` (ARP) or `IPv6` (NDP).
    pub family: String,
    /// Answered by the speaker.
    pub speaker: TargetRtts,
    /// Answered by the kernel.
    pub kernel: TargetRtts,
}

/// One rate step for one family.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RateStep {
    /// `IPv4` or `IPv6`.
    pub family: String,
    /// Requests per second asked for.
    pub rate: u32,
    /// To the speaker.
    pub speaker: RateOutput,
    /// To the kernel.
    pub kernel: RateOutput,
}

/// The speaker's memory with some number of owned addresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Memory {
    /// Addresses owned.
    pub owned: usize,
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak RSS), KiB.
    pub hwm_kib: u64,
}

/// Everything parts 2 and 4 measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// Requests per target and case.
    pub latency_count: usize,
    /// Addresses owned in the "many" case.
    pub many: usize,
    /// Node `a`, its speaker owning one address per family.
    pub few: Vec<Pair>,
    /// Node `m`, its speaker owning [`Results::many`] addresses; measured in the same run as
    /// [`Results::few`], request by request in alternation.
    pub many_pairs: Vec<Pair>,
    /// Rate steps, with one address per family owned.
    pub rates: Vec<RateStep>,
    /// Rate step duration, seconds.
    pub rate_step_s: f64,
    /// Speaker memory.
    pub memory: Vec<Memory>,
}

/// Runs parts 2 and 4 in one lab.
pub fn run(tools: &Tools, guard: &Guard, settings: &Settings) -> Result<Results> {
    let lab = Lab::new(FAMILY, "nd")?.with_deadline(Duration::from_secs(30));
    let mut lab = guard.watch(lab);
    let result = measure(&mut lab, tools, settings);
    if result.is_ok() {
        lab.succeeded();
    }
    guard.release();
    result
}

fn measure(lab: &mut Lab, tools: &Tools, s: &Settings) -> Result<Results> {
    let own = [("c", CLIENT4, CLIENT6), ("a", KERNEL4, KERNEL6), ("m", M_KERNEL4, M_KERNEL6)];
    for (ns, v4, v6) in own {
        lab.add_host(ns, "eth0", &[&format!("{v4}/24"), &format!("{v6}/64")])?;
    }
    let mut out = Results {
        latency_count: s.latency_count,
        many: s.many,
        rate_step_s: s.rate_step.as_secs_f64(),
        ..Results::default()
    };

    eprintln!("    neighbour: speaker memory with 1 owned address");
    let one = lab.write_file("one.yaml", &state("a", &[SPEAKER4]))?;
    start_speaker(lab, tools, "a", "one", &one, 1)?;
    probe_latency(lab, tools, &[SPEAKER4, KERNEL4], 20)?;
    out.memory.push(memory(lab, "one", 1)?);
    lab.kill("one")?;

    eprintln!("    neighbour: latency with 2 and with {} owned addresses, interleaved", s.many);
    let few = lab.write_file("few.yaml", &state("a", &[SPEAKER4, SPEAKER6]))?;
    start_speaker(lab, tools, "a", "few", &few, 2)?;
    let many: Vec<String> = [M_SPEAKER4, M_SPEAKER6]
        .into_iter()
        .map(str::to_owned)
        .chain((0..s.many.saturating_sub(2)).map(filler))
        .collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let many_file = lab.write_file("many.yaml", &state("m", &many_refs))?;
    start_speaker(lab, tools, "m", "many", &many_file, many.len())?;
    let targets =
        [SPEAKER4, KERNEL4, M_SPEAKER4, M_KERNEL4, SPEAKER6, KERNEL6, M_SPEAKER6, M_KERNEL6];
    let probed = probe_latency(lab, tools, &targets, s.latency_count)?;
    out.few =
        vec![pair(&probed, "IPv4", SPEAKER4, KERNEL4)?, pair(&probed, "IPv6", SPEAKER6, KERNEL6)?];
    out.many_pairs = vec![
        pair(&probed, "IPv4", M_SPEAKER4, M_KERNEL4)?,
        pair(&probed, "IPv6", M_SPEAKER6, M_KERNEL6)?,
    ];
    out.memory.push(memory(lab, "many", many.len())?);
    // Stopped before the rate steps: it would receive every broadcast request too and take
    // CPU from the answerers measured there.
    lab.kill("many")?;

    eprintln!("    neighbour: request rates");
    for (family, speaker, kernel) in [("IPv4", SPEAKER4, KERNEL4), ("IPv6", SPEAKER6, KERNEL6)] {
        for &rate in &s.rates {
            let step = RateStep {
                family: family.to_owned(),
                rate,
                speaker: probe_rate(lab, tools, speaker, rate, s.rate_step)?,
                kernel: probe_rate(lab, tools, kernel, rate, s.rate_step)?,
            };
            let lossy = |r: &RateOutput| loss(r) >= 0.01;
            let both_lossy = lossy(&step.speaker) && lossy(&step.kernel);
            out.rates.push(step);
            // Higher steps only lose more; the list is bounded anyway.
            if both_lossy {
                break;
            }
        }
    }
    lab.kill("few")?;
    Ok(out)
}

/// The `i`-th filler address: IPv6 from 2001:db8:1::/64, because the IPv4 documentation
/// ranges hold only 768 addresses.
fn filler(i: usize) -> String {
    format!("2001:db8:1::{:x}:{:x}", (i >> 16) & 0xffff, (i & 0xffff) + 1)
}

/// A desired-state document giving every address to `node`.
fn state(node: &str, addresses: &[&str]) -> String {
    let mut s = String::from("addresses:\n");
    for ip in addresses {
        s.push_str(&format!("- {{ip: '{ip}', node: {node}}}\n"));
    }
    s
}

/// Starts the speaker of node (and namespace) `node` and waits until it is ready and owns
/// `owned` addresses.
fn start_speaker(
    lab: &mut Lab,
    tools: &Tools,
    node: &str,
    label: &str,
    state: &Path,
    owned: usize,
) -> Result<()> {
    let source = format!("file:{}", state.display());
    lab.spawn(Spawn::new(node, label, &tools.speaker).args([
        "--node-name",
        node,
        "--source",
        &source,
        "--log-format",
        "text",
    ]))?;
    let metrics: SocketAddr = METRICS.parse()?;
    lab.wait_for(&format!("speaker {label} ready with {owned} addresses"), || -> Result<bool> {
        if !lab.http_get(node, metrics, "/readyz")?.starts_with("HTTP/1.1 200") {
            return Ok(false);
        }
        let page = lab.http_get(node, metrics, "/metrics")?;
        let sum: f64 = ["ipv4", "ipv6"]
            .iter()
            .map(|f| metric(&page, &format!("metallb_speaker_owned_ips{{family=\"{f}\"}}")))
            .sum();
        Ok(sum as usize == owned)
    })?;
    Ok(())
}

/// The value of the metric line `series` (exact label set) in a Prometheus page; 0 if absent.
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn probe_args(tools: &Tools, mode: &str) -> Vec<String> {
    let mut args: Vec<String> =
        vec![tools.xtask.display().to_string(), "bench-probe".into(), mode.into()];
    args.extend(["--iface", "eth0", "--src4", CLIENT4, "--src6", CLIENT6].map(String::from));
    args
}

fn probe_latency(
    lab: &Lab,
    tools: &Tools,
    targets: &[&str],
    count: usize,
) -> Result<LatencyOutput> {
    let mut args = probe_args(tools, "latency");
    for t in targets {
        args.extend(["--target".to_owned(), (*t).to_owned()]);
    }
    args.extend(["--count".to_owned(), count.to_string()]);
    let text = lab.exec("c", &args)?;
    serde_json::from_str(text.trim()).with_context(|| format!("prober printed {text:?}"))
}

fn probe_rate(
    lab: &Lab,
    tools: &Tools,
    target: &str,
    rate: u32,
    step: Duration,
) -> Result<RateOutput> {
    let mut args = probe_args(tools, "rate");
    args.extend(["--target".to_owned(), target.to_owned(), "--rate".to_owned(), rate.to_string()]);
    args.extend(["--duration-ms".to_owned(), step.as_millis().to_string()]);
    let text = lab.exec("c", &args)?;
    serde_json::from_str(text.trim()).with_context(|| format!("prober printed {text:?}"))
}

/// Lost share of a rate step.
pub fn loss(r: &RateOutput) -> f64 {
    if r.sent == 0 { 1.0 } else { 1.0 - (r.answered.min(r.sent) as f64 / r.sent as f64) }
}

/// The speaker and kernel round trips of one node and family from a latency run.
fn pair(out: &LatencyOutput, family: &str, speaker: &str, kernel: &str) -> Result<Pair> {
    let find = |ip: &str| -> Result<TargetRtts> {
        let ip: IpAddr = ip.parse()?;
        out.targets.iter().find(|t| t.ip == ip).cloned().with_context(|| format!("no {ip}"))
    };
    Ok(Pair { family: family.to_owned(), speaker: find(speaker)?, kernel: find(kernel)? })
}

/// `VmRSS` and `VmHWM` of process `label` from `/proc` (`ip netns exec` execs the speaker, so
/// the child's pid is the speaker's).
fn memory(lab: &mut Lab, label: &str, owned: usize) -> Result<Memory> {
    let pid = lab.pid(label)?;
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in {}", path.display()))
    };
    let m = Memory { owned, rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? };
    if m.rss_kib == 0 {
        bail!("speaker {label} reports no resident memory");
    }
    Ok(m)
}
