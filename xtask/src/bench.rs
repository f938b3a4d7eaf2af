//! `cargo xtask bench`: the figures of `docs/BENCHMARKS.md` (GitHub issue #10).
//!
//! ```text
//!  cargo xtask bench ──► cargo build --release (hooks, speaker, xtask)
//!        └─► target/release/xtask bench --no-build      (generation and timing in release)
//!              1 hook      discovery `hook run` at 1k/10k/30k Services vs a parse-only baseline
//!              2 neighbour ARP/NDP answer latency: speaker vs the Linux kernel, interleaved
//!              3 failover  kill -9 of the owner → gratuitous ARP of the backup at the client
//!              4 memory    speaker RSS with 1 and 10,000 owned IPs
//!              5 bgp       against FRR: convergence (BFD, hold timer), 10,000 routes vs BIRD,
//!                          memory with 10,000 IPs × 2 peers, churn of 1,000 changes a second
//!        └─► docs/BENCHMARKS.md + docs/BENCHMARKS.ru.md, target/bench/results.json
//! ```
//!
//! Benchmarks measure and report; they never fail on a figure (tests never assert timings).
//! A missed target is written into the document with its margin. Every figure that depends
//! on the machine's speed is a ratio to a baseline measured in alternation in the same run,
//! because the machine is small and shared.

pub mod bgp;
pub mod exec;
pub mod failover;
pub mod hook;
pub mod jq;
pub mod probe;
pub mod report;
pub mod stats;
pub mod wire;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde::Serialize;

/// One part of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum Part {
    /// Discovery hook run time and memory at scale.
    Hook,
    /// ARP/NDP answer latency and rate (speaker vs kernel) and speaker memory.
    Neighbour,
    /// Take-over time after `kill -9` of the owner.
    Failover,
    /// BGP mode against a real router: convergence, scale, memory, churn.
    Bgp,
}

/// Options of `cargo xtask bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// A short smoke run (1k Services, few samples, short rate steps); writes the report under
    /// `target/bench/` instead of `docs/` so published figures stay those of a full run.
    #[arg(long)]
    pub quick: bool,
    /// Only these parts (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Part>,
    /// Directory of `BENCHMARKS.md` and `BENCHMARKS.ru.md` (default: `docs/`, or
    /// `target/bench/` with `--quick`).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Only write the documents again from the figures of the last run
    /// (`target/bench/results.json`), e.g. after a change of the text generator.
    #[arg(long, conflicts_with_all = ["quick", "only", "keep_inputs"])]
    pub render: bool,
    /// Keep the generated hook inputs under `target/bench/work/` (to profile a hook run by
    /// hand with the files the benchmark used).
    #[arg(long)]
    pub keep_inputs: bool,
    /// Use the release binaries as they are (set when `cargo xtask bench` re-runs itself in
    /// release after building them).
    #[arg(long, hide = true)]
    pub no_build: bool,
}

impl Args {
    fn wants(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }

    /// The command line that reproduces this run.
    fn command(&self) -> String {
        let mut c = "cargo xtask bench".to_owned();
        if self.quick {
            c.push_str(" --quick");
        }
        if !self.only.is_empty() {
            let parts: Vec<String> = self
                .only
                .iter()
                .filter_map(|p| p.to_possible_value().map(|v| v.get_name().to_owned()))
                .collect();
            c.push_str(&format!(" --only {}", parts.join(",")));
        }
        c
    }
}

/// The release binaries a run uses.
#[derive(Clone, Debug)]
pub struct Tools {
    /// `metallb-hooks`.
    pub hooks: PathBuf,
    /// `metallb-speaker`.
    pub speaker: PathBuf,
    /// This program in release: `bench-baseline` and `bench-probe`.
    pub xtask: PathBuf,
    /// The meter, `bench-exec` (see [`exec`]).
    pub meter: PathBuf,
}

impl Tools {
    /// The binaries of `target/release`.
    pub fn release(root: &Path) -> Self {
        let dir = target_dir(root).join("release");
        Self {
            hooks: dir.join("metallb-hooks"),
            speaker: dir.join("metallb-speaker"),
            xtask: dir.join("xtask"),
            meter: dir.join("bench-exec"),
        }
    }
}

/// `CARGO_TARGET_DIR` or `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// `cargo xtask bench`: builds the release binaries, then runs the measurements in release.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    if args.render {
        let path = target_dir(root).join("bench").join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("read {} (written by a run)", path.display()))?;
        let results: report::Results = serde_json::from_str(&text)?;
        return write_docs(root, args, &results);
    }
    if args.no_build {
        return measure(root, args);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("==> building the release binaries");
    let status = Command::new(cargo)
        .args(["build", "--release", "-j2", "-p", "metallb-hooks", "-p", "metallb-speaker"])
        .args(["-p", "xtask"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    let tools = Tools::release(root);
    let mut again = Command::new(&tools.xtask);
    again.args(["bench", "--no-build"]).current_dir(root);
    if args.quick {
        again.arg("--quick");
    }
    for part in &args.only {
        if let Some(v) = part.to_possible_value() {
            again.args(["--only", v.get_name()]);
        }
    }
    if args.keep_inputs {
        again.arg("--keep-inputs");
    }
    if let Some(dir) = &args.out_dir {
        again.arg("--out-dir").arg(dir);
    }
    let status = again.status().with_context(|| format!("run {}", tools.xtask.display()))?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

/// Hook scales of a full run: repeats shrink as one run grows so the 30k case stays within
/// a couple of minutes.
const FULL_SCALES: [hook::Scale; 3] = [
    hook::Scale { services: 1_000, repeats: 9 },
    hook::Scale { services: 10_000, repeats: 5 },
    hook::Scale { services: 30_000, repeats: 3 },
];

/// Hook scale of `--quick`: enough to see that everything works.
pub const QUICK_SCALES: [hook::Scale; 1] = [hook::Scale { services: 1_000, repeats: 3 }];

fn measure(root: &Path, args: &Args) -> Result<()> {
    let tools = Tools::release(root);
    for bin in [&tools.hooks, &tools.speaker, &tools.xtask, &tools.meter] {
        if !bin.is_file() {
            bail!("{} is missing; run `cargo xtask bench` without --no-build", bin.display());
        }
    }
    let bench_dir = target_dir(root).join("bench");
    std::fs::create_dir_all(&bench_dir)?;
    let work = if args.keep_inputs {
        let kept = bench_dir.join("work");
        std::fs::create_dir_all(&kept)?;
        Work::Kept(kept)
    } else {
        Work::Temporary(tempfile::tempdir_in(&bench_dir)?)
    };
    let mut results = report::Results::new(args.command(), args.quick);

    if args.wants(Part::Hook) {
        eprintln!("==> 1. discovery hook at scale");
        let scales: &[hook::Scale] = if args.quick { &QUICK_SCALES } else { &FULL_SCALES };
        results.hook_floor = Some(hook::floor(&tools, work.path())?);
        results.hook = hook::run(&tools, work.path(), scales, args.keep_inputs)?;
    }

    let network =
        args.wants(Part::Neighbour) || args.wants(Part::Failover) || args.wants(Part::Bgp);
    if network {
        let mut programs = vec!["bash"];
        if args.wants(Part::Bgp) {
            programs.extend(netlab::router::RouterKind::Frr.programs());
            programs.extend(netlab::router::RouterKind::Bird.programs());
        }
        netlab::preflight(&programs).context(
            "the neighbour, failover and bgp parts build network namespaces (bgp also runs FRR \
             and BIRD): run as root with iproute2, frr and bird2, or pass --only hook",
        )?;
        let guard = Guard::install()?;
        for family in [wire::FAMILY, bgp::FAMILY] {
            let removed = netlab::sweep_stale(family)?;
            if !removed.is_empty() {
                eprintln!("    removed leftovers of an interrupted run: {}", removed.join(" "));
            }
        }
        if args.wants(Part::Neighbour) {
            eprintln!("==> 2 + 4. ARP/NDP answers and speaker memory");
            let settings = if args.quick {
                wire::Settings {
                    latency_count: 100,
                    many: 10_000,
                    rates: vec![1_000, 5_000],
                    rate_step: Duration::from_millis(300),
                }
            } else {
                wire::Settings {
                    latency_count: 2_000,
                    many: 10_000,
                    // Doubling steps up to what one prober process on a shared core can send.
                    rates: vec![1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000],
                    rate_step: Duration::from_secs(1),
                }
            };
            results.neighbour = Some(wire::run(&tools, &guard, &settings)?);
        }
        if args.wants(Part::Failover) {
            eprintln!("==> 3. failover");
            results.failover = failover::run(&tools, &guard, if args.quick { 3 } else { 20 })?;
        }
        if args.wants(Part::Bgp) {
            eprintln!("==> 5. BGP mode against FRR");
            let settings = if args.quick { bgp::QUICK } else { bgp::FULL };
            results.bgp = Some(bgp::run(&tools, &guard, &settings)?);
        }
    }

    std::fs::write(bench_dir.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    write_docs(root, args, &results)
}

/// Writes both documents: into `--out-dir`, else `docs/`, or `target/bench/` for a quick run.
fn write_docs(root: &Path, args: &Args, results: &report::Results) -> Result<()> {
    let out_dir = args.out_dir.clone().unwrap_or_else(|| {
        if results.quick { target_dir(root).join("bench") } else { root.join("docs") }
    });
    std::fs::create_dir_all(&out_dir)?;
    let (en, ru) = (out_dir.join("BENCHMARKS.md"), out_dir.join("BENCHMARKS.ru.md"));
    std::fs::write(&en, report::render(results, report::Lang::En))?;
    std::fs::write(&ru, report::render(results, report::Lang::Ru))?;
    eprintln!("==> wrote {} and {}", en.display(), ru.display());
    Ok(())
}

/// Where generated inputs go: removed at the end, or kept for profiling.
enum Work {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Work {
    fn path(&self) -> &Path {
        match self {
            Work::Temporary(t) => t.path(),
            Work::Kept(p) => p,
        }
    }
}

/// Tears down the lab in use when the run is interrupted (`Ctrl-C`, SIGTERM): the namespaces
/// and speakers of a benchmark must not outlive it.
#[derive(Clone, Default)]
pub struct Guard {
    slot: Arc<Mutex<Option<netlab::Cleaner>>>,
}

impl Guard {
    /// Installs the process's signal handler (once per process).
    fn install() -> Result<Self> {
        let guard = Self::default();
        let slot = guard.slot.clone();
        ctrlc::set_handler(move || {
            eprintln!("\ninterrupted: removing the benchmark's namespaces and processes");
            if let Some(cleaner) = slot.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
                cleaner.clean_up();
            }
            // 128 + SIGINT, the shell's convention for "ended by a signal".
            std::process::exit(130);
        })
        .context("install the signal handler")?;
        Ok(guard)
    }

    /// Makes `lab` the one torn down on interruption.
    pub fn watch(&self, lab: netlab::Lab) -> netlab::Lab {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(lab.cleaner());
        lab
    }

    /// Forgets the lab (it was dropped, which cleaned it up).
    pub fn release(&self) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}
