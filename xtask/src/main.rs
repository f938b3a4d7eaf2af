//! Development tasks of the metallb module: `cargo xtask <task>`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use xtask::{bench, codegen, demo, lint, test};

#[derive(Parser)]
#[command(about = "Development tasks of the metallb module")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// The demo's story.
#[derive(Clone, Copy, clap::ValueEnum)]
enum DemoMode {
    /// Layer 2: the speakers answer ARP; gossip moves an IP off a failed node.
    L2,
    /// BGP: the speakers announce to a router, which spreads connections over the nodes.
    Bgp,
}

#[derive(Subcommand)]
enum Task {
    /// Write the generated files (CRDs) from the Rust types.
    Codegen {
        /// Only compare; fail naming every file that differs from what would be generated.
        #[arg(long)]
        check: bool,
    },
    /// Check the module's conventions (bilingual docs, CRD labels, enum spelling, ...).
    Lint,
    /// Run every check and test (fmt, clippy, codegen --check, lint, all tests).
    Test,
    /// The seed scenario on this machine: real hooks over a fake cluster, real speakers in
    /// network namespaces, a client, a node failure (root and iproute2 needed).
    Demo {
        /// Print only a summary line.
        #[arg(long)]
        quiet: bool,
        /// `l2` (ARP, three IPs, a failover) or `bgp` (a router with ECMP, BFD, a node dying
        /// and one drained; needs FRR).
        #[arg(long, value_enum, default_value_t = DemoMode::L2)]
        mode: DemoMode,
    },
    /// Measure the hooks and the speaker and write docs/BENCHMARKS.md (+ the Russian twin);
    /// network parts need root and iproute2.
    Bench(bench::Args),
    /// Bench helper: the baseline of the hook (parse the inputs, write outputs of these sizes).
    #[command(hide = true)]
    BenchBaseline {
        #[arg(long)]
        values_patch_bytes: usize,
        #[arg(long)]
        kubernetes_bytes: usize,
        #[arg(long)]
        metrics_bytes: usize,
    },
    /// Bench helper in the client namespace: ARP/NDP requests on a raw socket, JSON out.
    #[command(hide = true, subcommand)]
    BenchProbe(bench::probe::Mode),
    /// Demo helper in a node namespace: strict ARP, then HTTP answering the node's name.
    #[command(hide = true)]
    DemoNode {
        #[arg(long)]
        name: String,
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Demo helper: one HTTP GET, the body on stdout.
    #[command(hide = true)]
    DemoGet { addr: SocketAddr, path: String },
    /// Demo helper in the client namespace: ask targets in a loop, one line per request.
    #[command(hide = true)]
    DemoWatch {
        #[arg(long = "target", required = true)]
        targets: Vec<SocketAddr>,
        #[arg(long, value_enum, default_value = "http")]
        probe: demo::agent::Probe,
        #[arg(long)]
        every_ms: u64,
        #[arg(long)]
        max_seconds: u64,
    },
}

fn main() -> Result<()> {
    let root = xtask::repo_root();
    match Cli::parse().task {
        Task::Codegen { check } => {
            let mode = if check { codegen::Mode::Check } else { codegen::Mode::Write };
            codegen::run(&root, mode)
        }
        Task::Lint => {
            let findings = lint::run(&root)?;
            lint::report(&findings)
        }
        Task::Test => test::run(&root),
        Task::Demo { quiet, mode } => {
            let options = demo::Options::for_cli(quiet)?;
            let summary = match mode {
                DemoMode::L2 => demo::run(&root, &options)?.summary(),
                DemoMode::Bgp => demo::bgp::run(&root, &options)?.summary(),
            };
            if quiet {
                println!("{summary}");
            }
            Ok(())
        }
        Task::Bench(args) => bench::run(&root, &args),
        Task::BenchBaseline { values_patch_bytes, kubernetes_bytes, metrics_bytes } => {
            bench::exec::baseline(bench::exec::OutputSizes {
                values_patch: values_patch_bytes,
                kubernetes: kubernetes_bytes,
                metrics: metrics_bytes,
            })
        }
        Task::BenchProbe(mode) => bench::probe::run(&mode),
        Task::DemoNode { name, listen } => demo::agent::node(&name, listen),
        Task::DemoGet { addr, path } => demo::agent::get(addr, &path),
        Task::DemoWatch { targets, probe, every_ms, max_seconds } => demo::agent::watch(
            &targets,
            probe,
            Duration::from_millis(every_ms),
            Duration::from_secs(max_seconds),
        ),
    }
}
