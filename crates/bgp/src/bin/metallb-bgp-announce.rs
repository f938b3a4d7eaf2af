//! `metallb-bgp-announce`: announces the routes of a YAML file to its BGP peers, follows the
//! file's changes, and on SIGTERM or SIGINT drains (RFC 8326) and closes the sessions.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// Announce-only BGP speaker driven by a file.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// YAML file with peers and routes (format: crates/bgp/README.md).
    #[arg(long, env = "METALLB_BGP_CONFIG")]
    config: PathBuf,
    /// Write each session's status here (YAML), every 500 ms.
    #[arg(long, env = "METALLB_BGP_STATUS_FILE")]
    status_file: Option<PathBuf>,
    /// The process restarted: set the graceful restart Restart State bit on first OPENs.
    #[arg(long)]
    restarted: bool,
    /// Seconds to keep sessions up with GRACEFUL_SHUTDOWN before closing them on SIGTERM.
    #[arg(long, default_value_t = 5, env = "METALLB_BGP_GRACE_SECONDS")]
    grace_seconds: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        let options = metallb_bgp::announce::Options {
            config: args.config,
            status_file: args.status_file,
            restarted: args.restarted,
            grace: Duration::from_secs(args.grace_seconds),
        };
        metallb_bgp::announce::run(options, stop).await.context("metallb-bgp-announce")
    })
}
