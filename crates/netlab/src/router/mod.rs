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

pub mod bird;
mod config;
pub mod frr;
pub mod gobgp;
mod kernel;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;

pub use config::{
    Announcement, Bfd, Community, Family, LargeCommunity, LearnedRoute, Neighbor, RouterConfig,
    RouterKind, Session, SessionState, next_hops,
};

use crate::{Error, Lab, Result, Spawn, run};

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
    /// FRR route-map names are numbered; a runtime announcement takes the next number.
    next_map: usize,
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
        let (deadline, poll) = lab.timing();
        let mut router = Router {
            kind,
            ns: ns.to_owned(),
            netns: lab.ns(ns),
            dir,
            config: config.clone(),
            processes: Vec::new(),
            next_map: config.announce.len(),
            deadline,
            poll,
        };
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

    fn start_frr(&mut self, lab: &mut Lab) -> Result<()> {
        let hostname = self.ns.clone();
        let bad = |reason| Error::RouterConfig { kind: RouterKind::Frr, reason };
        let bgpd_conf = frr::render_bgpd(&self.config, &hostname).map_err(bad)?;
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
                let states = bird::parse_protocols(&text).map_err(|r| output(command, r))?;
                Ok(states
                    .into_iter()
                    .map(|(neighbor, state)| Session { neighbor, state, uptime: None })
                    .collect())
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

    /// The next hops the namespace's kernel forwards `prefix` to (`ip -j route show exact`):
    /// with multipath on and three announcing nodes, their three addresses. An error for
    /// GoBGP, which installs nothing into the kernel.
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

    // === announcing ===

    /// Originates `announcement` now (replacing one of the same prefix), without resetting
    /// any session.
    pub fn announce(&mut self, announcement: Announcement) -> Result<()> {
        if self.config.announce.iter().any(|a| a.prefix == announcement.prefix) {
            self.withdraw(&announcement.prefix)?;
        }
        self.config.announce.push(announcement.clone());
        match self.kind {
            RouterKind::Bird => self.bird_reconfigure(),
            RouterKind::Frr => {
                let map = format!("ann{}", self.next_map);
                self.next_map += 1;
                let mut commands = vec![format!("route-map {map} permit 10")];
                if !announcement.communities.is_empty() {
                    let list: Vec<String> =
                        announcement.communities.iter().map(ToString::to_string).collect();
                    commands.push(format!("set community {}", list.join(" ")));
                }
                if !announcement.large_communities.is_empty() {
                    let list: Vec<String> =
                        announcement.large_communities.iter().map(ToString::to_string).collect();
                    commands.push(format!("set large-community {}", list.join(" ")));
                }
                if let Some(lp) = announcement.local_pref {
                    commands.push(format!("set local-preference {lp}"));
                }
                commands.push("exit".into());
                let family = Family::of_prefix(&announcement.prefix);
                commands.extend(self.frr_network(
                    family,
                    &format!("network {} route-map {map}", announcement.prefix),
                ));
                self.vtysh_configure(&commands)
            }
            RouterKind::Gobgp => self.gobgp(&gobgp::rib_args("add", &announcement)).map(|_| ()),
        }
    }

    /// Stops originating `prefix` (a withdraw on every session).
    pub fn withdraw(&mut self, prefix: &IpNet) -> Result<()> {
        let Some(i) = self.config.announce.iter().position(|a| &a.prefix == prefix) else {
            return Ok(());
        };
        let gone = self.config.announce.remove(i);
        match self.kind {
            RouterKind::Bird => self.bird_reconfigure(),
            RouterKind::Frr => {
                let family = Family::of_prefix(prefix);
                let commands = self.frr_network(family, &format!("no network {prefix}"));
                self.vtysh_configure(&commands)
            }
            RouterKind::Gobgp => self.gobgp(&gobgp::rib_args("del", &gone)).map(|_| ()),
        }
    }

    fn frr_network(&self, family: Family, line: &str) -> Vec<String> {
        vec![
            format!("router bgp {}", self.config.asn),
            format!("address-family {} unicast", frr::afi(family)),
            line.to_owned(),
            "exit-address-family".into(),
            "exit".into(),
        ]
    }

    fn bird_reconfigure(&mut self) -> Result<()> {
        let text = bird::render(&self.config)
            .map_err(|reason| Error::RouterConfig { kind: self.kind, reason })?;
        let file = self.write("bird.conf", &text)?;
        let out = self.birdc(&["configure", &format!("\"{}\"", file.display())])?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration in progress") {
            Ok(())
        } else {
            Err(output("birdc configure", out))
        }
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
    /// Kills the daemons still running. A pid is only signalled while it is still a process
    /// in the router's namespace: once the lab reaped it, the number may name another process.
    fn drop(&mut self) {
        let Ok(ns) = std::fs::metadata(Path::new("/run/netns").join(&self.netns)) else {
            return;
        };
        for (_, pid) in self.processes.iter().rev() {
            let proc_ns = std::fs::metadata(format!("/proc/{pid}/ns/net"));
            if proc_ns.is_ok_and(|m| m.ino() == ns.ino() && m.dev() == ns.dev())
                && let Ok(pid) = i32::try_from(*pid)
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
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
