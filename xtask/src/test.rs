//! `cargo xtask test`: every check and test of the repository, in the order CI runs them.
//!
//! It installs the few system packages the on-the-wire tests use when it runs as root and
//! they are missing, so a fresh machine needs nothing but this command.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{codegen, lint};

/// Debian packages of the programs the network tests call, by program: `ip` builds the
/// namespaces, `setpriv` drops CAP_NET_RAW for the speaker's permission test, `nft` cuts gossip
/// between nodes for the speaker's partition test, and the routing daemons play the router of
/// the BGP and BFD wire tests (`netlab::router`, FRR's `bfdd`). A program is a name looked up on
/// `PATH` (and in `/usr/sbin`, which a non-root `PATH` may lack: `bird` is there), or an absolute
/// path: FRR's daemons live in `/usr/lib/frr`, never on `PATH` (only its `vtysh` is), so `bgpd`
/// is checked where Debian puts it.
///
/// Installing `frr` and `bird2` on a systemd machine starts `frr.service` (zebra, staticd and
/// watchfrr; `bgpd` and `bfdd` are off in the default `/etc/frr/daemons`) and `bird.service`
/// (the default `bird.conf` has no BGP protocol), and `gobgpd.service` only starts once an
/// `/etc/gobgpd.conf` exists. None of them listens on port 179, and even one that did would
/// sit in the root network namespace, which no test uses: every test daemon runs in a
/// namespace of its own with its sockets in the test's directory. So they are left alone.
const SYSTEM_PACKAGES: [(&str, &str); 7] = [
    ("ip", "iproute2"),
    ("setpriv", "util-linux"),
    ("nft", "nftables"),
    ("bird", "bird2"),
    ("/usr/lib/frr/bgpd", "frr"),
    ("vtysh", "frr"),
    ("gobgpd", "gobgpd"),
];

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

/// Whether `program` is installed: an absolute path exists, or a name is on `PATH` or in
/// `/usr/sbin`.
fn has_program(program: &str) -> bool {
    if Path::new(program).is_absolute() {
        return Path::new(program).is_file();
    }
    has_command(program) || Path::new("/usr/sbin").join(program).is_file()
}

fn ensure_system_packages() -> Result<()> {
    let mut missing: Vec<&str> = SYSTEM_PACKAGES
        .iter()
        .filter(|(program, _)| !has_program(program))
        .map(|(_, package)| *package)
        .collect();
    // One package may provide several programs (frr: bgpd and vtysh).
    missing.sort_unstable();
    missing.dedup();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_by_name_or_by_absolute_path() {
        assert!(has_program("sh"), "on PATH");
        assert!(has_program("/bin/sh"), "an absolute path that exists");
        assert!(!has_program("/usr/lib/frr/no-such-daemon"));
        assert!(!has_program("no-such-program-anywhere"));
        let packages: std::collections::BTreeSet<&str> =
            SYSTEM_PACKAGES.iter().map(|(_, p)| *p).collect();
        for package in ["bird2", "frr", "gobgpd"] {
            assert!(packages.contains(package), "{package}");
        }
    }
}
