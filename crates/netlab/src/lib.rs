//! Throw-away networks of Linux network namespaces, for tests and tools that need a real kernel
//! on each end of a wire: the speaker's on-the-wire tests, `cargo xtask demo` and the benchmarks.
//!
//! ```text
//!              namespace <prefix>sw: bridge br0 (a plain switch)
//!          ┌──────────────┬──────────────┬──────────────┐  ports (veth)      Lab::plug
//!   <prefix>client:eth0  <prefix>a:eth0  <prefix>b:eth0  ...
//!                         <prefix>a:eth1 ──── <prefix>b:eth1   direct veth     Lab::cable
//!   processes: `ip netns exec <ns> PROGRAM`, stdin held open, output in <dir>/<label>.log
//! ```
//!
//! Why namespaces and not mocks: the client namespace's own kernel is the ARP/NDP peer, so its
//! neighbour table ([`Lab::neighbour`]) shows who really answered and when, and the speakers
//! are the real binaries on real sockets.
//!
//! Names and cleanup. Every namespace of a lab is named `<family>-<pid>-<tag>-<name>`: the
//! process id keeps concurrent runs apart, the tag keeps labs of one process (tests on threads)
//! apart, and the family lets a later run find what a crashed run left behind
//! ([`sweep_stale`]: namespaces of a family whose process is gone, and their processes, are
//! removed). A [`Lab`] removes its processes, namespaces and files in `Drop`, also when a test
//! fails; a [`Cleaner`] does the same from a signal handler (`Ctrl-C`).
//!
//! Availability policy. The lab needs root and `ip netns` (iproute2); [`preflight`] says what
//! is missing. Tests call [`gate`]: without the lab they print `SKIPPED: ...` and pass, unless
//! `METALLB_REQUIRE_WIRE_TESTS=1` (CI, as root) turns the skip into a failure; a test that did
//! run says `RAN: ...` ([`Lab::passed`]), so a log shows which of the two happened.
//!
//! Routers. [`router`] runs a real routing daemon (BIRD, FRR or GoBGP from Debian) as "the
//! router" in a lab namespace, configured from Rust types, and reads back its sessions,
//! learned paths and kernel routes; its module docs and `README.md` list the daemons' quirks.
//!
//! Every wait is bounded ([`wait_for`]); nothing here uses `unsafe` (signals go through `nix`,
//! namespaces through `ip netns exec`, never `setns` in this process).

mod lab;
pub mod router;

use std::ffi::OsStr;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub use lab::{Cleaner, Lab, Neighbour, Spawn};

/// Set to `1` (CI does, as root) to fail instead of skipping when the lab is unavailable.
pub const REQUIRE_ENV: &str = "METALLB_REQUIRE_WIRE_TESTS";

/// Default bound of a lab's waits: the events waited for take milliseconds to a couple of
/// seconds (a failure detection); the bound only turns a hang into a failure.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Default poll period of the waits: fine enough for sub-second events, coarse enough that
/// polling with `ip` (a few milliseconds per call) stays a small share of one core.
pub const DEFAULT_POLL: Duration = Duration::from_millis(50);

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong building or using a lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The machine cannot host a lab; the message lists what is missing.
    #[error("the network lab is unavailable: {0}")]
    Unavailable(String),
    /// A program could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A program exited unsuccessfully.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed (stdout, then stderr).
        output: String,
    },
    /// A file operation failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `ip -j` printed something that is not the JSON expected.
    #[error("unexpected output of {what}")]
    Json {
        /// The command.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        after: Duration,
        /// The condition's last error, if it failed rather than said "not yet".
        last_error: Option<String>,
    },
    /// No process of the lab has this label, or it is not running.
    #[error("no running process {0:?} in the lab")]
    NoProcess(String),
    /// A process label is already taken by a running process.
    #[error("a process {0:?} is already running in the lab")]
    ProcessExists(String),
    /// Sending a signal failed.
    #[error("cannot signal {label}")]
    Signal {
        /// The process label.
        label: String,
        /// The cause.
        #[source]
        source: nix::errno::Errno,
    },
    /// A name does not fit the naming scheme.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The lab was torn down (by a [`Cleaner`]) and builds nothing more.
    #[error("the lab was torn down")]
    TornDown,
    /// A router description that breaks a rule, or that this daemon cannot express.
    #[error("router config for {kind}: {reason}")]
    RouterConfig {
        /// The daemon.
        kind: router::RouterKind,
        /// What is wrong.
        reason: String,
    },
    /// A router daemon did not come up, or exited.
    #[error("router daemon {label}: {reason}")]
    Daemon {
        /// The daemon's process label.
        label: String,
        /// What happened, with the end of its log.
        reason: String,
    },
    /// A router daemon printed something this crate cannot read.
    #[error("unexpected output of `{command}`: {reason}")]
    Output {
        /// The command.
        command: String,
        /// What did not fit.
        reason: String,
    },
    /// A question this daemon cannot answer.
    #[error("{kind} cannot {what}")]
    Unsupported {
        /// The daemon.
        kind: router::RouterKind,
        /// The question.
        what: &'static str,
    },
}

/// Checks that this machine can host a lab: root (network namespaces and raw sockets need it),
/// a working `ip netns`, and every program in `programs` on `PATH` (for example `bash`, which
/// [`Lab::resolve`] and [`Lab::http_get`] use); a program given as an absolute path must exist
/// there (FRR's daemons: [`router::RouterKind::programs`]).
pub fn preflight(programs: &[&str]) -> Result<()> {
    let mut missing = Vec::new();
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        missing.push(format!("root (running as uid {euid})"));
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => missing.push(format!(
            "a working `ip netns` (it failed: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(_) => missing.push("`ip` from iproute2 (not found on PATH)".to_owned()),
    }
    for program in programs {
        if !on_path(program) {
            missing.push(format!("`{program}` on PATH"));
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(Error::Unavailable(missing.join(", "))) }
}

/// The test policy: `true` when the lab is available. Otherwise prints `SKIPPED: <test> ...`
/// and returns `false` (the test passes without asserting), or panics when
/// [`REQUIRE_ENV`]`=1`, so that CI, which runs as root, never mistakes a skip for a pass.
pub fn gate(test: &str, programs: &[&str]) -> bool {
    match preflight(programs) {
        Ok(()) => true,
        Err(error) if required() => panic!("{test}: {REQUIRE_ENV}=1 but {error}"),
        Err(error) => {
            println!("SKIPPED: {test}: {error}; the test passes without asserting");
            false
        }
    }
}

/// Whether [`REQUIRE_ENV`] asks for wire tests to run.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

fn on_path(program: &str) -> bool {
    if Path::new(program).is_absolute() {
        return Path::new(program).is_file();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// Runs a program to completion; its stdout on success, [`Error::Command`] otherwise.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn { program: program.to_owned(), source })?;
    checked(program, args, out)
}

fn checked<S: AsRef<OsStr>>(program: &str, args: &[S], out: Output) -> Result<String> {
    if !out.status.success() {
        let command = std::iter::once(program.to_owned())
            .chain(args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(Error::Command {
            command,
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .trim()
            .to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every network namespace of the machine (`ip netns list`), by name.
pub fn list_namespaces() -> Result<Vec<String>> {
    let text = run("ip", &["netns", "list"])?;
    // Lines are `NAME` or `NAME (id: N)`.
    Ok(text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}

/// Namespaces whose name starts with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Result<Vec<String>> {
    Ok(list_namespaces()?.into_iter().filter(|n| n.starts_with(prefix)).collect())
}

/// Removes every namespace whose name starts with `prefix`, first killing (SIGKILL) every
/// process still inside it: a namespace outlives `ip netns del` for as long as a process runs
/// in it, and a speaker left running would keep answering ARP on a dead wire. Returns the
/// namespaces removed. Errors of single removals are ignored (another cleaner may be faster);
/// what is left is visible to [`namespaces_with_prefix`].
pub fn sweep(prefix: &str) -> Result<Vec<String>> {
    let doomed = namespaces_with_prefix(prefix)?;
    for ns in &doomed {
        kill_processes_in(ns);
    }
    for ns in &doomed {
        let _ = run("ip", &["netns", "del", ns]);
    }
    Ok(doomed)
}

fn kill_processes_in(ns: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", ns]) else { return };
    for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        // Already gone is fine: it may have exited between the listing and now.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

/// Removes what labs of `family` left behind when their process died without cleaning up
/// (killed, or a crash): namespaces `<family>-<pid>-*` and temporary directories of the same
/// name whose `pid` no longer runs. Labs of running processes are never touched. Returns the
/// namespaces removed.
pub fn sweep_stale(family: &str) -> Result<Vec<String>> {
    check_name(family, "family")?;
    let stale_pid = |name: &str| -> Option<u32> {
        let pid: u32 =
            name.strip_prefix(family)?.strip_prefix('-')?.split('-').next()?.parse().ok()?;
        (!running(pid)).then_some(pid)
    };
    let mut removed = Vec::new();
    let pids: std::collections::BTreeSet<u32> =
        list_namespaces()?.iter().filter_map(|n| stale_pid(n)).collect();
    for pid in pids {
        removed.extend(sweep(&format!("{family}-{pid}-"))?);
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if stale_pid(&name).is_some() && entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(removed)
}

/// Whether process `pid` runs. A zombie does not: a process killed with SIGKILL whose parent has
/// not reaped it yet (or never will, under an init that does not reap) keeps its `/proc` entry.
pub(crate) fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
    else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last `)`, since `comm` may contain anything.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Lower-case letters and digits only: names are joined with `-` and split again by
/// [`sweep_stale`], and interface-style names must stay short and shell-safe.
fn check_name(name: &str, what: &'static str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 16
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason: match what {
                "family" => "a family is 1-16 lower-case letters or digits",
                _ => "a tag is 1-16 lower-case letters or digits",
            },
        })
    }
}

/// Polls `condition` every `poll` until it returns `Ok(true)` or `deadline` passes; returns how
/// long it took. An `Err` from the condition counts as "not yet" (the state may be in flux, for
/// example a process not listening yet) and is reported if the wait times out.
pub fn wait_for<E: Display>(
    what: &str,
    deadline: Duration,
    poll: Duration,
    mut condition: impl FnMut() -> Result<bool, E>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last_error = None;
    loop {
        match condition() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => {}
            Err(error) => last_error = Some(error.to_string()),
        }
        if start.elapsed() >= deadline {
            return Err(Error::Timeout { what: what.to_owned(), after: deadline, last_error });
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_of_processes() {
        assert!(running(std::process::id()));
        // Above the largest possible pid_max (2^22): never a process.
        assert!(!running(9_999_999));
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        // Exited but not reaped yet: a zombie, which counts as gone.
        let pid = child.id();
        let zombie =
            wait_for("true to exit", Duration::from_secs(5), Duration::from_millis(5), || {
                Ok::<_, String>(!running(pid))
            });
        child.wait().expect("reap");
        zombie.expect("a zombie is not running");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("mlbdemo", "family").is_ok());
        assert!(check_name("fo2", "tag").is_ok());
        for bad in ["", "has-dash", "UPPER", "a/b", "seventeen-chars-x"] {
            assert!(check_name(bad, "tag").is_err(), "{bad}");
        }
        assert!(sweep_stale("bad-family").is_err());
    }

    #[test]
    fn waits_are_bounded_and_report_the_last_error() {
        let mut calls = 0;
        let took = wait_for("third call", Duration::from_secs(1), Duration::from_millis(1), || {
            calls += 1;
            Ok::<_, String>(calls == 3)
        })
        .expect("done on the third call");
        assert!(took < Duration::from_secs(1));
        let error = wait_for("never", Duration::from_millis(20), Duration::from_millis(5), || {
            Err::<bool, _>("still broken")
        })
        .expect_err("times out");
        assert!(
            error.to_string().contains("waiting for never (last error: still broken)"),
            "{error}"
        );
    }

    #[test]
    fn failed_commands_say_what_and_why() {
        let error = run("sh", &["-c", "echo out; echo err >&2; exit 3"]).expect_err("exit 3");
        let text = error.to_string();
        assert!(text.contains("`sh -c echo out; echo err >&2; exit 3` failed"), "{text}");
        assert!(text.contains("out\nerr"), "{text}");
        assert!(matches!(run("/nonexistent/program", &["x"]), Err(Error::Spawn { .. })));
    }

    #[test]
    fn the_gate_skips_or_runs() {
        // Whatever this machine is, the gate agrees with the preflight (unless CI requires the
        // lab, in which case an unavailable lab panics, which is the point).
        let available = preflight(&[]).is_ok();
        if available || !required() {
            assert_eq!(gate("netlab::the_gate_skips_or_runs", &[]), available);
        }
        let error = preflight(&["surely-not-a-program-on-path"]).expect_err("missing program");
        assert!(error.to_string().contains("`surely-not-a-program-on-path` on PATH"), "{error}");
    }
}
