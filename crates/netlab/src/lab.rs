//! The [`Lab`]: namespaces on one bridge, processes inside them, and what tests ask the kernel.

use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::{DEFAULT_DEADLINE, DEFAULT_POLL, Error, Result, check_name, run, sweep, wait_for};

/// The namespace holding the bridge, under the lab's prefix.
const SWITCH: &str = "sw";
/// The bridge every [`Lab::plug`]ged interface is a port of.
const BRIDGE: &str = "br0";
/// Longest interface name the kernel accepts (`IFNAMSIZ` 16 with the terminating NUL).
const IFNAME_MAX: usize = 15;
/// Lines of each process log printed when a lab is dropped without success: enough for the
/// last events before a failure, short enough to keep a test report readable.
const LOG_TAIL_LINES: usize = 200;

/// A throw-away network. See the crate documentation for the picture.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    processes: Vec<Process>,
    ports: usize,
    dir: PathBuf,
    deadline: Duration,
    poll: Duration,
    succeeded: bool,
    state: Arc<Mutex<Shared>>,
}

/// What the lab shares with its [`Cleaner`]s.
#[derive(Debug, Default)]
struct Shared {
    /// Set once the lab was torn down; nothing new is created afterwards.
    torn_down: bool,
}

#[derive(Debug)]
struct Process {
    label: String,
    child: Child,
    /// Held open so the process sees end-of-file when the lab (or this process) goes away;
    /// helpers use it to stop by themselves even after a `kill -9` of the lab's process.
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    log: PathBuf,
}

/// A process to start inside a namespace with [`Lab::spawn`].
#[derive(Debug, Clone)]
pub struct Spawn {
    ns: String,
    label: String,
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    piped_stdout: bool,
}

impl Spawn {
    /// `program` in namespace `ns` (a lab-local name), known to the lab as `label`; its output
    /// goes to `<dir>/<label>.log`.
    pub fn new(ns: &str, label: &str, program: impl AsRef<OsStr>) -> Self {
        Self {
            ns: ns.to_owned(),
            label: label.to_owned(),
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            piped_stdout: false,
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Pipes stdout to the caller ([`Lab::take_stdout`]) instead of the log; stderr still goes
    /// to the log.
    pub fn piped_stdout(mut self) -> Self {
        self.piped_stdout = true;
        self
    }
}

/// One entry of a neighbour table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// NUD states, e.g. `["REACHABLE"]`, `["STALE"]`, `["FAILED"]`.
    pub states: Vec<String>,
    /// The link-layer address, once resolved.
    pub lladdr: Option<String>,
}

impl Neighbour {
    /// Whether the entry is in `state`.
    pub fn is(&self, state: &str) -> bool {
        self.states.iter().any(|s| s == state)
    }
}

/// Tears a lab down from another thread, typically a `Ctrl-C` handler, while the lab itself is
/// owned elsewhere: kills every process in the lab's namespaces, removes the namespaces and the
/// lab's directory. Cheap to clone; idempotent.
#[derive(Debug, Clone)]
pub struct Cleaner {
    prefix: String,
    dir: PathBuf,
    state: Arc<Mutex<Shared>>,
}

impl Cleaner {
    /// Tears the lab down now. Holds the lab's lock meanwhile, so a namespace or process being
    /// created at this moment is either finished first (and removed) or never created.
    pub fn clean_up(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.torn_down {
            return;
        }
        state.torn_down = true;
        let _ = sweep(&self.prefix);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The prefix of the lab's namespaces.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Lab {
    /// A lab with a switch namespace holding bridge `br0`. Namespaces are named
    /// `<family>-<pid>-<tag>-<name>`; leftovers of dead processes of the same family are swept
    /// first ([`crate::sweep_stale`]). Call [`crate::preflight`] or [`crate::gate`] before, for
    /// a clear message when the machine cannot host a lab.
    pub fn new(family: &str, tag: &str) -> Result<Lab> {
        check_name(family, "family")?;
        check_name(tag, "tag")?;
        crate::sweep_stale(family)?;
        let prefix = format!("{family}-{}-{tag}-", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir()
            .map_err(|source| Error::Io {
                action: "create a directory in",
                path: std::env::temp_dir(),
                source,
            })?
            // Removed by the lab itself (Drop or Cleaner), which also covers `process::exit`
            // from a signal handler, where no destructor runs.
            .keep();
        let mut lab = Lab {
            prefix,
            namespaces: Vec::new(),
            processes: Vec::new(),
            ports: 0,
            dir,
            deadline: DEFAULT_DEADLINE,
            poll: DEFAULT_POLL,
            succeeded: false,
            state: Arc::default(),
        };
        lab.add_namespace(SWITCH)?;
        // Snooping off: the bridge floods multicast (IPv6 solicitations) like a plain switch,
        // so nothing depends on the bridge having seen MLD reports.
        lab.ip(SWITCH, &["link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0"])?;
        lab.ip(SWITCH, &["link", "set", BRIDGE, "up"])?;
        Ok(lab)
    }

    /// Changes the bound of [`Lab::wait_for`] and the helpers built on it.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Changes the poll period of [`Lab::wait_for`] and the helpers built on it.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The bound and poll period of [`Lab::wait_for`], for helpers that wait on their own.
    pub fn timing(&self) -> (Duration, Duration) {
        (self.deadline, self.poll)
    }

    /// The common prefix of this lab's namespace names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full namespace name of lab-local `name`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The lab's directory (logs, state files); removed with the lab.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A handle that tears this lab down from another thread (see [`Cleaner`]).
    pub fn cleaner(&self) -> Cleaner {
        Cleaner { prefix: self.prefix.clone(), dir: self.dir.clone(), state: self.state.clone() }
    }

    /// Marks the work done: process logs are not printed when the lab is dropped.
    pub fn succeeded(&mut self) {
        self.succeeded = true;
    }

    /// [`Lab::succeeded`] for a test, printing `RAN: <test>` so a log shows it really ran.
    pub fn passed(&mut self, test: &str) {
        self.succeeded();
        println!("RAN: {test} (root, network namespaces)");
    }

    /// Runs `body` under the lab's lock, refusing once the lab is torn down.
    fn creating<T>(&mut self, body: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let state = self.state.clone();
        let guard = state.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.torn_down {
            return Err(Error::TornDown);
        }
        body(self)
    }

    /// A host on the switch: namespace `name`, its interface `dev` plugged into the bridge,
    /// carrying `addresses` (CIDRs). IPv6 ones skip duplicate address detection, so they are
    /// usable at once.
    pub fn add_host(&mut self, name: &str, dev: &str, addresses: &[&str]) -> Result<()> {
        self.add_namespace(name)?;
        self.plug(name, dev)?;
        for cidr in addresses {
            let mut args = vec!["addr", "add", cidr, "dev", dev];
            if cidr.contains(':') {
                args.push("nodad");
            }
            self.ip(name, &args)?;
        }
        Ok(())
    }

    /// Creates namespace `name` with its loopback up.
    pub fn add_namespace(&mut self, name: &str) -> Result<()> {
        let ns = self.ns(name);
        self.creating(|lab| {
            run("ip", &["netns", "add", &ns])?;
            lab.namespaces.push(ns);
            Ok(())
        })?;
        self.ip(name, &["link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Runs `ip -n <ns> ARGS`.
    pub fn ip(&self, name: &str, args: &[&str]) -> Result<String> {
        let ns = self.ns(name);
        let mut full = vec!["-n", ns.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs a command inside namespace `name` to completion; its stdout.
    pub fn exec<S: AsRef<OsStr>>(&self, name: &str, command: &[S]) -> Result<String> {
        let mut full: Vec<OsString> =
            ["netns", "exec", &self.ns(name)].iter().map(OsString::from).collect();
        full.extend(command.iter().map(|c| c.as_ref().to_owned()));
        run("ip", &full)
    }

    /// Plugs a new interface `dev` of namespace `name` into the bridge (a veth pair whose other
    /// end is a bridge port) and sets it up.
    pub fn plug(&mut self, name: &str, dev: &str) -> Result<()> {
        self.ports += 1;
        let readable = format!("p{name}{dev}");
        // Port names only need to be unique in the switch namespace; readable when they fit.
        let port =
            if readable.len() <= IFNAME_MAX { readable } else { format!("port{}", self.ports) };
        let ns = self.ns(name);
        self.ip(
            SWITCH,
            &["link", "add", &port, "type", "veth", "peer", "name", dev, "netns", &ns],
        )?;
        self.ip(SWITCH, &["link", "set", &port, "master", BRIDGE, "up"])?;
        self.ip(name, &["link", "set", dev, "up"])?;
        Ok(())
    }

    /// Connects `a_dev` in `a` directly to `b_dev` in `b` (a veth pair, no bridge).
    pub fn cable(&self, a: &str, a_dev: &str, b: &str, b_dev: &str) -> Result<()> {
        let b_ns = self.ns(b);
        self.ip(a, &["link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", &b_ns])?;
        self.ip(a, &["link", "set", a_dev, "up"])?;
        self.ip(b, &["link", "set", b_dev, "up"])?;
        Ok(())
    }

    /// Sets `dev` in `name` up or down; down is a pulled cable: the peer loses carrier and the
    /// bridge stops forwarding to it.
    pub fn set_link(&self, name: &str, dev: &str, up: bool) -> Result<()> {
        self.ip(name, &["link", "set", dev, if up { "up" } else { "down" }])?;
        Ok(())
    }

    /// The MAC address of `dev` in `name`, as `ip` prints it (`aa:bb:...`).
    pub fn mac(&self, name: &str, dev: &str) -> Result<String> {
        let what = format!("ip -j link show dev {dev}");
        let json: serde_json::Value =
            serde_json::from_str(&self.ip(name, &["-j", "link", "show", "dev", dev])?)
                .map_err(|source| Error::Json { what: what.clone(), source })?;
        json[0]["address"].as_str().map(str::to_owned).ok_or_else(|| Error::Command {
            command: what,
            status: "ok".into(),
            output: format!("no address in {json}"),
        })
    }

    /// Writes a kernel setting inside namespace `name`: `key` is the path below `/proc/sys`
    /// (`net/ipv4/conf/all/arp_ignore`; slashes, because interface names may contain dots).
    /// Uses `sh`, since `/proc/sys/net` shows the namespace of the process that opens it.
    pub fn sysctl(&self, name: &str, key: &str, value: &str) -> Result<()> {
        // Positional parameters, not string interpolation: nothing is parsed by the shell.
        self.exec(name, &["sh", "-c", r#"printf '%s\n' "$2" > "/proc/sys/$1""#, "sh", key, value])?;
        Ok(())
    }

    /// Writes `contents` to `file` in the lab's directory atomically (write, then rename), as
    /// a careful writer of a watched file does; returns the path.
    pub fn write_file(&self, file: &str, contents: &str) -> Result<PathBuf> {
        let path = self.dir.join(file);
        let tmp = self.dir.join(format!(".{file}.tmp"));
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { action, path, source }
        };
        std::fs::write(&tmp, contents).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename to", &path))?;
        Ok(path)
    }

    // === processes ===

    /// Starts a process inside a namespace through `ip netns exec`, which execs it: the child's
    /// pid is the program's. Its stdin is a pipe the lab holds; stdout (unless piped) and
    /// stderr are appended to `<dir>/<label>.log`. A label may be reused once its process
    /// ended (a restart); returns the pid.
    pub fn spawn(&mut self, spec: Spawn) -> Result<u32> {
        if let Some(i) = self.processes.iter().position(|p| p.label == spec.label) {
            if self.processes[i].child.try_wait().ok().flatten().is_none() {
                return Err(Error::ProcessExists(spec.label));
            }
            self.processes.remove(i);
        }
        let log = self.dir.join(format!("{}.log", spec.label));
        let open = || {
            OpenOptions::new().create(true).append(true).open(&log).map_err(|source| Error::Io {
                action: "open",
                path: log.clone(),
                source,
            })
        };
        let stderr = open()?;
        let stdout = if spec.piped_stdout { Stdio::piped() } else { Stdio::from(open()?) };
        let ns = self.ns(&spec.ns);
        self.creating(|lab| {
            let mut child = Command::new("ip")
                .args([OsStr::new("netns"), OsStr::new("exec"), OsStr::new(&ns), &spec.program])
                .args(&spec.args)
                .envs(spec.envs.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .map_err(|source| Error::Spawn {
                    program: spec.program.to_string_lossy().into_owned(),
                    source,
                })?;
            let pid = child.id();
            lab.processes.push(Process {
                label: spec.label,
                stdin: child.stdin.take(),
                stdout: child.stdout.take(),
                child,
                log,
            });
            Ok(pid)
        })
    }

    fn process(&mut self, label: &str) -> Result<&mut Process> {
        self.processes
            .iter_mut()
            .find(|p| p.label == label)
            .ok_or_else(|| Error::NoProcess(label.to_owned()))
    }

    /// The piped stdout of process `label` (once; see [`Spawn::piped_stdout`]).
    pub fn take_stdout(&mut self, label: &str) -> Result<ChildStdout> {
        self.process(label)?.stdout.take().ok_or_else(|| Error::NoProcess(label.to_owned()))
    }

    /// Whether process `label` is still running.
    pub fn is_running(&mut self, label: &str) -> bool {
        self.process(label).is_ok_and(|p| p.child.try_wait().ok().flatten().is_none())
    }

    /// The pid of process `label`.
    pub fn pid(&mut self, label: &str) -> Result<u32> {
        Ok(self.process(label)?.child.id())
    }

    /// The log file of process `label`.
    pub fn log_path(&mut self, label: &str) -> Result<PathBuf> {
        Ok(self.process(label)?.log.clone())
    }

    /// `kill -9` of process `label`, waiting for it: no goodbye, no cleanup, like a crash.
    pub fn kill(&mut self, label: &str) -> Result<()> {
        let process = self.process(label)?;
        process.child.kill().map_err(|source| Error::Io {
            action: "kill the process of",
            path: process.log.clone(),
            source,
        })?;
        let _ = process.child.wait();
        Ok(())
    }

    /// SIGTERM to process `label` (a graceful stop, as the kubelet does) and waits up to the
    /// lab's deadline for its exit; returns whether it exited successfully. A process still
    /// running then is killed and the wait is an error.
    pub fn terminate(&mut self, label: &str) -> Result<bool> {
        let (deadline, poll) = (self.deadline, self.poll);
        let process = self.process(label)?;
        let pid = i32::try_from(process.child.id()).map_err(|_| Error::NoProcess(label.into()))?;
        signal::kill(Pid::from_raw(pid), Signal::SIGTERM)
            .map_err(|source| Error::Signal { label: label.to_owned(), source })?;
        let mut status = None;
        let waited = wait_for(&format!("{label} to exit"), deadline, poll, || {
            status = process.child.try_wait().map_err(|e| e.to_string())?;
            Ok::<_, String>(status.is_some())
        });
        if let Err(error) = waited {
            let _ = process.child.kill();
            let _ = process.child.wait();
            return Err(error);
        }
        Ok(status.is_some_and(|s| s.success()))
    }

    // === what the kernel says ===

    /// Makes the kernel of `name` resolve `addr` (IPv4 or IPv6): a UDP datagram to the discard
    /// port queues behind neighbour resolution. Uses `bash` (its `/dev/udp`), so no ping or
    /// arping is needed.
    pub fn resolve(&self, name: &str, addr: &str) -> Result<()> {
        self.exec(name, &["bash", "-c", r#"echo probe > "/dev/udp/$1/9""#, "bash", addr])?;
        Ok(())
    }

    /// `GET path` over HTTP/1.1 from inside `name` to `addr` (e.g. a metrics endpoint on the
    /// namespace's loopback); the whole response, status line included. Uses `bash`'s
    /// `/dev/tcp`.
    pub fn http_get(&self, name: &str, addr: SocketAddr, path: &str) -> Result<String> {
        let script = r#"exec 3<>"/dev/tcp/$1/$2" && printf 'GET %s HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n' "$3" >&3 && cat <&3"#;
        let (host, port) = (addr.ip().to_string(), addr.port().to_string());
        self.exec(name, &["bash", "-c", script, "bash", &host, &port, path])
    }

    /// The neighbour entry for `addr` on `dev` in `name`, if any.
    pub fn neighbour(&self, name: &str, dev: &str, addr: &str) -> Result<Option<Neighbour>> {
        let text = self.ip(name, &["-j", "neigh", "show", "to", addr, "dev", dev])?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|source| Error::Json { what: "ip -j neigh show".into(), source })?;
        let Some(entry) = json.as_array().and_then(|a| a.first()) else {
            return Ok(None);
        };
        let states = entry["state"]
            .as_array()
            .map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        Ok(Some(Neighbour { states, lladdr: entry["lladdr"].as_str().map(str::to_owned) }))
    }

    /// Waits until the entry for `addr` has a link-layer address, and returns it.
    pub fn resolved_mac(&self, name: &str, dev: &str, addr: &str) -> Result<String> {
        let mut mac = String::new();
        self.wait_for(&format!("{addr} resolved"), || -> Result<bool> {
            Ok(match self.neighbour(name, dev, addr)?.and_then(|n| n.lladdr) {
                Some(lladdr) => {
                    mac = lladdr;
                    true
                }
                None => false,
            })
        })?;
        Ok(mac)
    }

    /// Waits until the kernel gives up resolving `addr` (FAILED after its probes) or resolves
    /// it, and returns the link-layer address, which a silent network leaves `None`.
    pub fn unresolved(&self, name: &str, dev: &str, addr: &str) -> Result<Option<String>> {
        let mut lladdr = None;
        self.wait_for(&format!("{addr} resolution failed"), || -> Result<bool> {
            let entry = self.neighbour(name, dev, addr)?;
            lladdr = entry.as_ref().and_then(|n| n.lladdr.clone());
            Ok(lladdr.is_some() || entry.is_some_and(|n| n.is("FAILED")))
        })?;
        Ok(lladdr)
    }

    /// [`crate::wait_for`] with the lab's deadline and poll period.
    pub fn wait_for<E: std::fmt::Display>(
        &self,
        what: &str,
        condition: impl FnMut() -> Result<bool, E>,
    ) -> Result<Duration> {
        wait_for(what, self.deadline, self.poll, condition)
    }

    fn print_logs(&self) {
        for p in &self.processes {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "--- log of {} (last {} lines) ---", p.label, tail.len());
            for line in tail {
                let _ = writeln!(err, "{line}");
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.processes {
            // Closing stdin first lets helpers that watch it exit by themselves.
            drop(p.stdin.take());
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let torn_down = self.state.lock().unwrap_or_else(PoisonError::into_inner).torn_down;
        if !self.succeeded && !torn_down {
            self.print_logs();
        }
        self.cleaner().clean_up();
    }
}
