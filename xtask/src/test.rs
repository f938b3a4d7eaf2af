//! `cargo xtask test`: every check and test of the repository, in the order CI runs them.
//!
//! It installs the few system packages the on-the-wire tests use when it runs as root and
//! they are missing, so a fresh machine needs nothing but this command.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{codegen, lint};

/// Debian packages of the commands the network tests call, by command: `ip` builds the
/// namespaces, `setpriv` drops CAP_NET_RAW for the speaker's permission test, `nft` cuts
/// gossip between nodes for the speaker's partition test.
const SYSTEM_PACKAGES: [(&str, &str); 3] =
    [("ip", "iproute2"), ("setpriv", "util-linux"), ("nft", "nftables")];

/// Runs every step; stops at the first failure.
pub fn run(root: &Path) -> Result<()> {
    ensure_system_packages()?;
    step("rustfmt", || cargo(root, &["fmt", "--all", "--", "--check"]))?;
    step("clippy", || {
        cargo(root, &["clippy", "--workspace", "--all-targets", "-j2", "--", "-D", "warnings"])
    })?;
    step("codegen --check", || codegen::run(root, codegen::Mode::Check))?;
    step("lint", || lint::report(&lint::run(root)?))?;
    // As root the on-the-wire tests must run, not skip: a skip then fails the run.
    let require_wire = if is_root() { &[("METALLB_REQUIRE_WIRE_TESTS", "1")][..] } else { &[] };
    step("tests", || {
        cargo_with_env(
            root,
            &["nextest", "run", "--workspace", "--build-jobs", "2", "--no-fail-fast"],
            require_wire,
        )
    })?;
    Ok(())
}

fn step(name: &str, body: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("==> {name}");
    body().with_context(|| format!("step `{name}` failed"))
}

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    cargo_with_env(root, args, &[])
}

fn cargo_with_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status =
        Command::new(cargo).args(args).envs(env.iter().copied()).current_dir(root).status()?;
    if !status.success() {
        bail!("cargo {} exited with {status}", args.join(" "));
    }
    Ok(())
}

fn has_command(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(name).is_file())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn ensure_system_packages() -> Result<()> {
    let missing: Vec<&str> = SYSTEM_PACKAGES
        .iter()
        .filter(|(command, _)| {
            !has_command(command) && !has_command(&format!("/usr/sbin/{command}"))
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() || !has_command("apt-get") {
        eprintln!(
            "note: {} not installed and cannot be installed here (needs root and apt-get); \
             the on-the-wire tests will fail or skip",
            missing.join(", ")
        );
        return Ok(());
    }
    eprintln!("==> installing {}", missing.join(", "));
    let update = Command::new("apt-get").args(["update", "-qq"]).status()?;
    let install = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !update.success() || !install.success() {
        bail!("installing {} failed", missing.join(", "));
    }
    Ok(())
}
