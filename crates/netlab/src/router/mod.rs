//! The router lab: a real routing daemon from Debian plays "the router" in a lab namespace,
//! configured from a typed description, and says what it learned.
//!
//! ```text
//!   lab namespace "r"                         lab namespaces "a", "b", "c"
//!   ┌──────────────────────────────┐          ┌───────────────────────┐
//!   │ Router (Bird | Frr | Gobgp)  │◄── BGP ──│ the speaker under test│  (or another Router
//!   │  config + sockets in         │          │ announcing: a daemon  │   with `announce`)
//!   │  <lab dir>/router-r/         │          └───────────────────────┘
//!   │  kernel FIB: ECMP routes     │  Router::sessions / routes / kernel_next_hops
//!   └──────────────────────────────┘
//! ```
//!
//! [`Router::start`] writes the daemon's configuration into `<lab dir>/router-<ns>/`, with the
//! control sockets there too (never the system's default paths, which every namespace would
//! share), spawns the daemon(s) through the [`Lab`] (logs in `<lab dir>/<ns>-<daemon>.log`,
//! printed when a test fails) and waits until they answer on their control socket. The
//! daemon-specific knowledge, and every quirk found on the way, is in [`bird`], [`frr`] and
//! [`gobgp`]; the types are daemon-neutral ([`RouterConfig`], [`Session`], [`LearnedRoute`]).
//!
//! A [`Router`] stops its daemons when dropped, and the [`Lab`] kills whatever is left in its
//! namespaces when it goes, so no daemon outlives a test, also one that panicked.
//!
//! The same type plays an announcing node ([`RouterConfig::announce`], [`Router::announce`],
//! [`Router::withdraw`]), which lets one daemon announce to another in the lab's own tests
//! and gives the benchmarks their baseline: a C routing daemon announcing the same prefixes.

mod announce;
pub mod bird;
mod config;
pub mod frr;
pub mod gobgp;
mod kernel;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;

pub use config::{
    Announcement, Bfd, Community, Family, LargeCommunity, Neighbor, RouterConfig, RouterKind,
};
pub use state::{BfdState, LearnedRoute, Session, SessionState, next_hops};

use crate::{Error, Lab, Result, Spawn, run};

/// Longest UNIX socket path: `sun_path` of Linux's `sockaddr_un` is 108 bytes with the NUL.
const SOCKET_PATH_MAX: usize = 107;

/// Lines of a daemon's log quoted in an error: the reason it exited is in the last few.
const LOG_LINES_IN_ERRORS: usize = 20;

/// A running routing daemon in a lab namespace. See the module docs.
#[derive(Debug)]
pub struct Router {
    kind: RouterKind,
    /// The lab-local namespace name.
    ns: String,
    /// The full namespace name (`ip netns`).
    netns: String,
    /// `<lab dir>/router-<ns>`: configuration, sockets, pid files.
    dir: PathBuf,
    config: RouterConfig,
    /// Process labels and pids, in start order.
    processes: Vec<(String, u32)>,
    /// FRR's route-maps of the announcements, shared by equal attributes.
    route_maps: frr::RouteMaps,
    deadline: Duration,
    poll: Duration,
}

impl Router {
    /// Starts `kind` as a router in lab namespace `ns` (created by the caller, with its
    /// interfaces and addresses), configured by `config`; returns once the daemon answers on
    /// its control socket. Sessions come up in the background: see
    /// [`Router::wait_established`].
    pub fn start(
        lab: &mut Lab,
        ns: &str,
        kind: RouterKind,
        config: &RouterConfig,
    ) -> Result<Router> {
        config.validate().map_err(|reason| Error::RouterConfig { kind, reason })?;
        let dir = lab.dir().join(format!("router-{ns}"));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        // The longest socket name below is `zserv.api`; `sockaddr_un` holds 107 bytes and a NUL.
        if dir.as_os_str().len() + "/zserv.api".len() > SOCKET_PATH_MAX {
            return Err(Error::RouterConfig {
                kind,
                reason: format!(
                    "{} is too long for the daemons' UNIX sockets ({SOCKET_PATH_MAX} bytes); \
                     set TMPDIR to a shorter directory",
                    dir.display()
                ),
            });
        }
        let (deadline, poll) = lab.timing();
        let mut router = Router {
            kind,
            ns: ns.to_owned(),
            netns: lab.ns(ns),
            dir,
            config: config.clone(),
            processes: Vec::new(),
            route_maps: frr::RouteMaps::default(),
            deadline,
            poll,
        };
        if config.kernel && kind != RouterKind::Gobgp {
            router.forwarding(lab)?;
        }
        let bad = |reason| Error::RouterConfig { kind, reason };
        match kind {
            RouterKind::Bird => {
                let file = router.write("bird.conf", &bird::render(config).map_err(bad)?)?;
                let (socket, pid) = (router.path("bird.ctl"), router.path("bird.pid"));
                let args = [path_arg("-c", &file), path_arg("-s", &socket), path_arg("-P", &pid)];
                router.spawn(
                    lab,
                    "bird",
                    "bird",
                    args.into_iter().flatten().chain(["-f".into()]),
                )?;
                router.ready(lab, "bird", |r| r.birdc(&["show", "status"]).map(|_| ()))?;
            }
            RouterKind::Frr => router.start_frr(lab).map_err(|e| match e {
                Error::RouterConfig { reason, .. } => bad(reason),
                other => other,
            })?,
            RouterKind::Gobgp => {
                let file = router.write("gobgpd.toml", &gobgp::render(config).map_err(bad)?)?;
                let args = [
                    "-f".to_owned(),
                    file.to_string_lossy().into_owned(),
                    "--api-hosts".to_owned(),
                    gobgp::API.to_owned(),
                    "--pprof-disable".to_owned(),
                    // Plain text lines, not JSON, in the log a failing test prints.
                    "--log-plain".to_owned(),
                ];
                router.spawn(lab, "gobgpd", "gobgpd", args)?;
                router.ready(lab, "gobgpd", |r| r.gobgp(&["global"]).map(|_| ()))?;
                for a in &config.announce {
                    router.gobgp(&gobgp::rib_args("add", a))?;
                }
            }
        }
        Ok(router)
    }

    /// Makes the namespace forward like a router: a new namespace has IP forwarding off, and
    /// hashes ECMP routes on addresses only (`fib_multipath_hash_policy` 0), so one client and
    /// one Service IP would always reach the same node. Policy 1 hashes the 5-tuple (ports
    /// included), so a client's connections spread over every next hop, as on a router that
    /// fronts a Service.
    fn forwarding(&self, lab: &Lab) -> Result<()> {
        lab.sysctl(&self.ns, "net/ipv4/ip_forward", "1")?;
        lab.sysctl(&self.ns, "net/ipv6/conf/all/forwarding", "1")?;
        if self.config.multipath {
            lab.sysctl(&self.ns, "net/ipv4/fib_multipath_hash_policy", "1")?;
            lab.sysctl(&self.ns, "net/ipv6/fib_multipath_hash_policy", "1")?;
        }
        Ok(())
    }

    fn start_frr(&mut self, lab: &mut Lab) -> Result<()> {
        let hostname = self.ns.clone();
        let bad = |reason| Error::RouterConfig { kind: RouterKind::Frr, reason };
        let bgpd_conf =
            frr::render_bgpd(&self.config, &hostname, &mut self.route_maps).map_err(bad)?;
        let zserv = self.path("zserv.api");
        let common = |router: &Router, daemon: &str, conf: &Path| -> Vec<std::ffi::OsString> {
            let mut args: Vec<std::ffi::OsString> =
                ["-u", "root", "-g", frr::VTY_GROUP].map(Into::into).into();
            args.extend(path_arg("-f", conf));
            args.extend(path_arg("-i", &router.path(&format!("{daemon}.pid"))));
            args.extend(path_arg("--vty_socket", &router.dir));
            args.extend(path_arg("-z", &zserv));
            args
        };
        let zebra_conf = self.write("zebra.conf", &frr::render_zebra(&hostname))?;
        self.spawn(lab, "zebra", frr::ZEBRA, common(self, "zebra", &zebra_conf))?;
        self.ready(lab, "zebra", |r| r.vtysh("zebra", "show version").map(|_| ()))?;
        if self.config.wants_bfd() {
            let conf = self.write("bfdd.conf", &frr::render_bfdd(&self.config, &hostname))?;
            let mut args = common(self, "bfdd", &conf);
            args.extend(path_arg("--bfdctl", &self.path("bfdd.sock")));
            self.spawn(lab, "bfdd", frr::BFDD, args)?;
            self.ready(lab, "bfdd", |r| r.vtysh("bfdd", "show bfd peers").map(|_| ()))?;
        }
        let conf = self.write("bgpd.conf", &bgpd_conf)?;
        self.spawn(lab, "bgpd", frr::BGPD, common(self, "bgpd", &conf))?;
        self.ready(lab, "bgpd", |r| r.vtysh("bgpd", "show bgp summary json").map(|_| ()))
    }

    /// The daemon.
    pub fn kind(&self) -> RouterKind {
        self.kind
    }

    /// The configuration it runs with (announcements as last changed).
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The lab-local namespace name.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The directory holding its configuration and sockets.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    // === queries ===

    /// Every session the daemon knows, by neighbor address.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        match self.kind {
            RouterKind::Bird => {
                let command = "show protocols all";
                let text = self.birdc(&["show", "protocols", "all"])?;
                bird::parse_protocols(&text).map_err(|r| output(command, r))
            }
            RouterKind::Frr => {
                let command = "show bgp neighbors json";
                let json = frr::json(command, &self.vtysh("bgpd", command)?)
                    .map_err(|r| output(command, r))?;
                frr::parse_neighbors(&json).map_err(|r| output(command, r))
            }
            RouterKind::Gobgp => {
                let text = self.gobgp(&["-j", "neighbor"])?;
                let json = serde_json::from_str(&text)
                    .map_err(|e| output("gobgp -j neighbor", e.to_string()))?;
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                gobgp::parse_neighbors(&json, now).map_err(|r| output("gobgp -j neighbor", r))
            }
        }
    }

    /// The session with `neighbor`, if the daemon has one.
    pub fn session(&self, neighbor: IpAddr) -> Result<Option<Session>> {
        Ok(self.sessions()?.into_iter().find(|s| s.neighbor == neighbor))
    }

    /// Every path of `family` learned from a neighbor (originated ones are left out), sorted.
    pub fn routes(&self, family: Family) -> Result<Vec<LearnedRoute>> {
        match self.kind {
            RouterKind::Bird => {
                let table = match family {
                    Family::Ipv4 => "master4",
                    Family::Ipv6 => "master6",
                };
                let text = self.birdc(&["show", "route", "all", "table", table])?;
                let neighbors: Vec<IpAddr> =
                    self.config.neighbors.iter().map(|n| n.address).collect();
                let mut routes = bird::parse_routes(&text, &neighbors)
                    .map_err(|r| output("show route all", r))?;
                // BIRD marks no route kept by the graceful-restart helper (see `bird`): a
                // route whose session is down is one.
                let up: BTreeSet<IpAddr> = self
                    .sessions()?
                    .into_iter()
                    .filter(|s| s.state == SessionState::Established)
                    .map(|s| s.neighbor)
                    .collect();
                for route in &mut routes {
                    route.stale |= !up.contains(&route.from);
                }
                Ok(routes)
            }
            RouterKind::Frr => {
                let command = format!("show bgp {} unicast json detail", frr::afi(family));
                let json = frr::json(&command, &self.vtysh("bgpd", &command)?)
                    .map_err(|r| output(&command, r))?;
                frr::parse_routes(&json).map_err(|r| output(&command, r))
            }
            RouterKind::Gobgp => {
                let args = ["-j", "global", "rib", "-a", gobgp::family_arg(family)];
                let text = self.gobgp(&args)?;
                let command = args.join(" ");
                let json = if text.trim().is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::from_str(&text).map_err(|e| output(&command, e.to_string()))?
                };
                gobgp::parse_rib(&json).map_err(|r| output(&command, r))
            }
        }
    }

    /// The state of every BFD session, by neighbor address; empty when no neighbor asks for
    /// BFD. An error for GoBGP, which has no BFD.
    pub fn bfd_peers(&self) -> Result<BTreeMap<IpAddr, BfdState>> {
        if !self.config.wants_bfd() && self.kind != RouterKind::Gobgp {
            return Ok(BTreeMap::new());
        }
        match self.kind {
            RouterKind::Bird => {
                let text = self.birdc(&["show", "bfd", "sessions"])?;
                bird::parse_bfd(&text).map_err(|r| output("show bfd sessions", r))
            }
            RouterKind::Frr => {
                let command = "show bfd peers json";
                let json = frr::json(command, &self.vtysh("bfdd", command)?)
                    .map_err(|r| output(command, r))?;
                frr::parse_bfd(&json).map_err(|r| output(command, r))
            }
            RouterKind::Gobgp => Err(Error::Unsupported { kind: self.kind, what: "run BFD" }),
        }
    }

    /// The next hops the namespace's kernel forwards `prefix` to (`ip -j route show exact`):
    /// with multipath on and three announcing nodes, their three addresses. For IPv6, BIRD
    /// installs the global next hop and FRR's zebra the link-local one the neighbor sent with
    /// it (RFC 2545 §3). An error for GoBGP, which installs nothing into the kernel.
    pub fn kernel_next_hops(&self, prefix: &IpNet) -> Result<BTreeSet<IpAddr>> {
        if self.kind == RouterKind::Gobgp {
            return Err(Error::Unsupported {
                kind: self.kind,
                what: "install routes into the kernel",
            });
        }
        // `-6` is needed: `ip route show` lists IPv4 routes only, also when given an IPv6
        // prefix (iproute2 6.1 prints `[]`).
        let family = if prefix.addr().is_ipv4() { "-4" } else { "-6" };
        let prefix = prefix.to_string();
        let args = ["-n", &self.netns, family, "-j", "route", "show", "exact", &prefix];
        let text = run("ip", &args)?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|source| Error::Json { what: "ip -j route show".into(), source })?;
        kernel::next_hops(&json).map_err(|r| output("ip -j route show", r))
    }

    /// How many routes of `family` the daemon has installed into the namespace's kernel
    /// (`ip route show proto bird|bgp`): cheap to poll, for a benchmark waiting for 10 000.
    /// An error for GoBGP, which installs nothing.
    pub fn kernel_route_count(&self, family: Family) -> Result<usize> {
        let proto = match self.kind {
            RouterKind::Bird => "bird",
            // zebra installs BGP routes as protocol `bgp` (186).
            RouterKind::Frr => "bgp",
            RouterKind::Gobgp => {
                return Err(Error::Unsupported {
                    kind: self.kind,
                    what: "install routes into the kernel",
                });
            }
        };
        let family = match family {
            Family::Ipv4 => "-4",
            Family::Ipv6 => "-6",
        };
        let text = run("ip", &["-n", &self.netns, family, "-j", "route", "show", "proto", proto])?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|source| Error::Json { what: "ip -j route show proto".into(), source })?;
        json.as_array()
            .map(Vec::len)
            .ok_or_else(|| output("ip -j route show proto", "not a JSON list".into()))
    }

    /// Waits until the sessions with every one of `neighbors` are Established.
    pub fn wait_established(&self, neighbors: &[IpAddr]) -> Result<Duration> {
        let what = format!("{} sessions Established with {neighbors:?}", self.kind);
        self.wait_for(&what, || {
            let sessions = self.sessions()?;
            Ok::<_, Error>(neighbors.iter().all(|n| {
                sessions.iter().any(|s| s.neighbor == *n && s.state == SessionState::Established)
            }))
        })
    }

    /// [`crate::wait_for`] with the lab's deadline and poll period (as when started).
    pub fn wait_for<E: std::fmt::Display>(
        &self,
        what: &str,
        condition: impl FnMut() -> Result<bool, E>,
    ) -> Result<Duration> {
        crate::wait_for(what, self.deadline, self.poll, condition)
    }

    // === stopping ===

    /// Stops the daemons gracefully (SIGTERM: they close their sessions with a NOTIFICATION
    /// Cease) and waits for them, last started first.
    pub fn stop(mut self, lab: &mut Lab) -> Result<()> {
        let processes = std::mem::take(&mut self.processes);
        for (label, _) in processes.iter().rev() {
            lab.terminate(label)?;
        }
        Ok(())
    }

    /// Kills the daemons (SIGKILL, no goodbye: a crash); a router started again in the same
    /// namespace then restarts, which a neighbor's graceful-restart helper sees.
    pub fn kill(mut self, lab: &mut Lab) -> Result<()> {
        let processes = std::mem::take(&mut self.processes);
        for (label, _) in processes.iter().rev() {
            lab.kill(label)?;
        }
        Ok(())
    }

    // === plumbing ===

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn write(&self, file: &str, contents: &str) -> Result<PathBuf> {
        let path = self.path(file);
        std::fs::write(&path, contents).map_err(|source| Error::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    fn label(&self, daemon: &str) -> String {
        format!("{}-{daemon}", self.ns)
    }

    fn spawn<I, S>(&mut self, lab: &mut Lab, daemon: &str, program: &str, args: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let label = self.label(daemon);
        let pid = lab.spawn(Spawn::new(&self.ns, &label, program).args(args))?;
        self.processes.push((label, pid));
        Ok(())
    }

    /// Waits until `check` passes, failing at once (with the end of its log) if the daemon
    /// exits meanwhile: a bad configuration ends it within milliseconds.
    fn ready(
        &self,
        lab: &mut Lab,
        daemon: &str,
        check: impl Fn(&Router) -> Result<()>,
    ) -> Result<()> {
        let label = self.label(daemon);
        let start = Instant::now();
        loop {
            if !lab.is_running(&label) {
                let log = lab.log_path(&label).ok();
                return Err(Error::Daemon { label, reason: format!("exited; {}", tail(log)) });
            }
            match check(self) {
                Ok(()) => return Ok(()),
                Err(error) if start.elapsed() >= self.deadline => {
                    let log = lab.log_path(&label).ok();
                    return Err(Error::Daemon {
                        label,
                        reason: format!(
                            "not answering after {:?} ({error}); {}",
                            self.deadline,
                            tail(log)
                        ),
                    });
                }
                Err(_) => std::thread::sleep(self.poll),
            }
        }
    }

    fn birdc(&self, args: &[&str]) -> Result<String> {
        let socket = self.path("bird.ctl");
        let mut full = vec!["-s".to_owned(), socket.to_string_lossy().into_owned()];
        full.extend(args.iter().map(|a| (*a).to_owned()));
        run("birdc", &full)
    }

    fn vtysh(&self, daemon: &str, command: &str) -> Result<String> {
        let dir = self.dir.to_string_lossy().into_owned();
        run("vtysh", &["--vty_socket", &dir, "-d", daemon, "-c", command])
    }

    /// Runs configuration commands through `vtysh`; FRR reports a rejected one with a line
    /// starting with `%`, which is an error here.
    fn vtysh_configure(&self, commands: &[String]) -> Result<()> {
        let dir = self.dir.to_string_lossy().into_owned();
        let mut args = vec!["--vty_socket".to_owned(), dir, "-d".into(), "bgpd".into()];
        args.extend(["-c".to_owned(), "configure terminal".to_owned()]);
        for command in commands {
            args.extend(["-c".to_owned(), command.clone()]);
        }
        let out = run("vtysh", &args)?;
        if out.lines().any(|l| l.trim_start().starts_with('%')) {
            return Err(output(&commands.join("; "), out));
        }
        Ok(())
    }

    fn gobgp<S: AsRef<str>>(&self, args: &[S]) -> Result<String> {
        let mut full = vec!["netns".to_owned(), "exec".into(), self.netns.clone(), "gobgp".into()];
        full.extend(args.iter().map(|a| a.as_ref().to_owned()));
        run("ip", &full)
    }
}

impl Drop for Router {
    /// Kills the daemons still running and waits (bounded) until they are gone, so that a
    /// router started right after in the same namespace finds its labels free. A pid is only
    /// signalled while it is still a process in the router's namespace: once the lab reaped
    /// it, the number may name another process.
    fn drop(&mut self) {
        let Ok(ns) = std::fs::metadata(Path::new("/run/netns").join(&self.netns)) else {
            return;
        };
        let mut killed = Vec::new();
        for (_, pid) in self.processes.iter().rev() {
            let proc_ns = std::fs::metadata(format!("/proc/{pid}/ns/net"));
            if proc_ns.is_ok_and(|m| m.ino() == ns.ino() && m.dev() == ns.dev())
                && let Ok(raw) = i32::try_from(*pid)
                && nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(raw),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .is_ok()
            {
                killed.push(*pid);
            }
        }
        // A process leaves its namespaces before it becomes a zombie; until it is one, the
        // lab's `try_wait` still sees it running. Dead means a zombie or gone.
        let _ = crate::wait_for("killed daemons to die", self.deadline, self.poll, || {
            Ok::<_, Error>(killed.iter().all(|pid| !crate::running(*pid)))
        });
    }
}

fn output(command: &str, reason: String) -> Error {
    Error::Output { command: command.to_owned(), reason }
}

fn path_arg(flag: &str, path: &Path) -> [std::ffi::OsString; 2] {
    [flag.into(), path.as_os_str().to_owned()]
}

/// The last lines of a log, for an error message.
fn tail(log: Option<PathBuf>) -> String {
    let text = log.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_LINES_IN_ERRORS);
    format!("its log ends:\n{}", lines[start..].join("\n"))
}
