//! A throw-away network of namespaces for on-the-wire tests: a bridge in a "switch"
//! namespace, a client namespace whose own kernel is the ARP/NDP peer, and speaker node
//! namespaces running the real binary.
//!
//! Needs root and `ip netns` (iproute2), plus `bash` (its `/dev/udp` redirection makes the
//! client kernel resolve an address without ping/arping). Names carry the process id and a
//! per-test tag, so tests running in parallel never collide; everything is removed in `Drop`,
//! also when a test fails, and the speakers' logs are printed then.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Generous bound of every wait: the events waited for take milliseconds; the bound only
/// turns a hang into a failure.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);
/// Poll period of the bounded waits.
const POLL: Duration = Duration::from_millis(50);

/// Set to `1` (CI does) to fail instead of skipping when the lab cannot be built.
const REQUIRE_ENV: &str = "METALLB_REQUIRE_WIRE_TESTS";

pub(crate) struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    speakers: Vec<(String, Child, PathBuf)>,
    dir: tempfile::TempDir,
    passed: bool,
}

/// Whether this process may build namespaces; prints why not.
fn available(test: &str) -> bool {
    let root = run("id", &["-u"]).map(|out| out.trim() == "0").unwrap_or(false);
    let netns =
        Command::new("ip").args(["netns", "list"]).output().is_ok_and(|o| o.status.success());
    let bash = Command::new("bash").args(["-c", "true"]).output().is_ok_and(|o| o.status.success());
    if root && netns && bash {
        return true;
    }
    let why = format!("root={root} ip-netns={netns} bash={bash}");
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: {REQUIRE_ENV}=1 but the wire lab is unavailable ({why})");
    }
    println!("SKIPPED: {test} needs root and ip netns ({why}); the test passes without asserting");
    false
}

fn run(program: &str, args: &[&str]) -> Result<String> {
    let out =
        Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    check(program, args, out)
}

fn check(program: &str, args: &[&str], out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Lab {
    /// A lab with a switch namespace holding bridge `br0`, or `None` (after printing
    /// "SKIPPED") when the machine cannot run it.
    pub(crate) fn new(tag: &str) -> Option<Lab> {
        if !available(tag) {
            return None;
        }
        let mut lab = Lab {
            prefix: format!("mlb{}{tag}-", std::process::id()),
            namespaces: Vec::new(),
            speakers: Vec::new(),
            dir: tempfile::tempdir().expect("tempdir"),
            passed: false,
        };
        lab.add_namespace("sw").expect("switch namespace");
        // Snooping off: the bridge floods multicast solicitations like a plain switch, so the
        // test does not depend on the bridge having seen our MLD reports.
        lab.ip("sw", &["link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
            .expect("bridge");
        lab.ip("sw", &["link", "set", "br0", "up"]).expect("bridge up");
        Some(lab)
    }

    /// Marks the test passed (the speakers' logs are printed otherwise) and says it really ran.
    /// `kill -9` of the speaker in `name`: no leave, no cleanup, like a crashed node.
    pub(crate) fn kill(&mut self, name: &str) -> Result<()> {
        let (_, child, _) =
            self.speakers.iter_mut().find(|(n, _, _)| n == name).context("no such speaker")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// SIGTERM to the speaker in `name` (a graceful stop, as the kubelet does), waiting for its
    /// exit; returns whether it exited successfully.
    pub(crate) fn terminate(&mut self, name: &str) -> Result<bool> {
        let (_, child, _) =
            self.speakers.iter_mut().find(|(n, _, _)| n == name).context("no such speaker")?;
        // `ip netns exec` execs the speaker, so the child's pid is the speaker's.
        run("kill", &["-TERM", &child.id().to_string()])?;
        Ok(child.wait()?.success())
    }

    pub(crate) fn passed(&mut self, test: &str) {
        self.passed = true;
        println!("RAN: {test} (root, network namespaces)");
    }

    pub(crate) fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn add_namespace(&mut self, name: &str) -> Result<()> {
        let ns = self.ns(name);
        run("ip", &["netns", "add", &ns])?;
        self.namespaces.push(ns);
        self.ip(name, &["link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Runs `ip -n <ns> ARGS`.
    pub(crate) fn ip(&self, name: &str, args: &[&str]) -> Result<String> {
        let ns = self.ns(name);
        let mut full = vec!["-n", ns.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs a command inside a namespace.
    pub(crate) fn exec(&self, name: &str, command: &[&str]) -> Result<String> {
        let ns = self.ns(name);
        let mut full = vec!["netns", "exec", ns.as_str()];
        full.extend_from_slice(command);
        run("ip", &full)
    }

    /// Plugs `dev` of namespace `name` into the bridge.
    pub(crate) fn plug(&self, name: &str, dev: &str) -> Result<()> {
        let port = format!("p{name}{dev}");
        let ns = self.ns(name);
        self.ip("sw", &["link", "add", &port, "type", "veth", "peer", "name", dev, "netns", &ns])?;
        self.ip("sw", &["link", "set", &port, "master", "br0", "up"])?;
        self.ip(name, &["link", "set", dev, "up"])?;
        Ok(())
    }

    /// Connects `a_dev` in `a` directly to `b_dev` in `b` (no bridge).
    pub(crate) fn cable(&self, a: &str, a_dev: &str, b: &str, b_dev: &str) -> Result<()> {
        let b_ns = self.ns(b);
        self.ip(a, &["link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", &b_ns])?;
        self.ip(a, &["link", "set", a_dev, "up"])?;
        self.ip(b, &["link", "set", b_dev, "up"])?;
        Ok(())
    }

    pub(crate) fn mac(&self, name: &str, dev: &str) -> Result<String> {
        let json: serde_json::Value =
            serde_json::from_str(&self.ip(name, &["-j", "link", "show", "dev", dev])?)?;
        json[0]["address"].as_str().map(str::to_owned).context("no address in ip -j link")
    }

    /// Writes a desired-state file atomically (write, then rename), as a careful writer would.
    pub(crate) fn write_state(&self, file: &str, yaml: &str) -> Result<PathBuf> {
        let path = self.dir().join(file);
        let tmp = self.dir().join(format!("{file}.tmp"));
        std::fs::write(&tmp, yaml)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Starts the speaker binary in namespace `name` as node `node` with fast pacing, and
    /// waits for `/readyz`.
    pub(crate) fn speaker(&mut self, name: &str, node: &str, state: &Path) -> Result<()> {
        self.speaker_with(name, node, state, &[])
    }

    /// [`Lab::speaker`] with extra flags (gossip).
    pub(crate) fn speaker_with(
        &mut self,
        name: &str,
        node: &str,
        state: &Path,
        extra: &[&str],
    ) -> Result<()> {
        let ns = self.ns(name);
        let log = self.dir().join(format!("speaker-{name}.log"));
        let source = format!("file:{}", state.display());
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_metallb-speaker")])
            .args(["--node-name", node, "--source", &source, "--log-format", "text"])
            // Fast pacing keeps the tests short; the behaviour is the same as the defaults'.
            .args(["--announce-count", "3", "--announce-interval", "200ms"])
            .args(["--source-poll-interval", "100ms", "--interface-rescan-interval", "500ms"])
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        self.speakers.push((name.to_owned(), child, log));
        self.wait_for(&format!("speaker in {name} ready"), || {
            Ok(self.http_get(name, "/readyz")?.starts_with("HTTP/1.1 200"))
        })
    }

    /// GET on the speaker's metrics endpoint inside the namespace, through bash's `/dev/tcp`.
    pub(crate) fn http_get(&self, name: &str, path: &str) -> Result<String> {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/7472 && printf 'GET {path} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3 && cat <&3"
        );
        self.exec(name, &["bash", "-c", &script])
    }

    /// The value of one metric line (exact label set) of the speaker in `name`.
    pub(crate) fn metric(&self, name: &str, series: &str) -> Result<f64> {
        let page = self.http_get(name, "/metrics")?;
        Ok(page
            .lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or(0.0))
    }

    /// Makes the client kernel resolve `addr`: a UDP datagram to the discard port queues behind
    /// neighbour resolution.
    pub(crate) fn resolve(&self, name: &str, addr: &str) -> Result<()> {
        self.exec(name, &["bash", "-c", &format!("echo probe > /dev/udp/{addr}/9")])?;
        Ok(())
    }

    /// The neighbour entry for `addr` on `dev`: (states, lladdr).
    pub(crate) fn neighbour(
        &self,
        name: &str,
        dev: &str,
        addr: &str,
    ) -> Result<Option<(Vec<String>, Option<String>)>> {
        let json: serde_json::Value = serde_json::from_str(
            &self.ip(name, &["-j", "neigh", "show", "to", addr, "dev", dev])?,
        )?;
        let Some(entry) = json.as_array().and_then(|a| a.first()) else {
            return Ok(None);
        };
        let states = entry["state"]
            .as_array()
            .map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        Ok(Some((states, entry["lladdr"].as_str().map(str::to_owned))))
    }

    /// Waits until the neighbour entry for `addr` has a link-layer address, and returns it.
    pub(crate) fn resolved_mac(&self, name: &str, dev: &str, addr: &str) -> Result<String> {
        let mut mac = String::new();
        self.wait_for(&format!("{addr} resolved"), || {
            Ok(match self.neighbour(name, dev, addr)? {
                Some((_, Some(lladdr))) => {
                    mac = lladdr;
                    true
                }
                _ => false,
            })
        })?;
        Ok(mac)
    }

    /// Waits until the kernel gives up resolving `addr` (state FAILED after its probes) and
    /// returns the final entry, which must carry no link-layer address.
    pub(crate) fn unresolved(&self, name: &str, dev: &str, addr: &str) -> Result<Option<String>> {
        let mut lladdr = None;
        self.wait_for(&format!("{addr} resolution failed"), || {
            let entry = self.neighbour(name, dev, addr)?;
            lladdr = entry.as_ref().and_then(|(_, l)| l.clone());
            Ok(lladdr.is_some()
                || entry.is_some_and(|(states, _)| states.iter().any(|s| s == "FAILED")))
        })?;
        Ok(lladdr)
    }

    /// Polls `condition` every 50 ms until true or [`DEADLINE`].
    pub(crate) fn wait_for(
        &self,
        what: &str,
        mut condition: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let start = Instant::now();
        let mut last_error = None;
        while start.elapsed() < DEADLINE {
            match condition() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => last_error = Some(error),
            }
            std::thread::sleep(POLL);
        }
        bail!("timed out after {DEADLINE:?} waiting for {what} (last error: {last_error:?})")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (name, child, log) in &mut self.speakers {
            let _ = child.kill();
            let _ = child.wait();
            if !self.passed {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                eprintln!("--- speaker log of {name} ---\n{text}");
            }
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
