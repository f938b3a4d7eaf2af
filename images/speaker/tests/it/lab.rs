//! The speaker's view of a [`netlab::Lab`]: a bridge in a "switch" namespace, a client namespace
//! whose own kernel is the ARP/NDP peer, and speaker node namespaces running the real binary.
//!
//! Everything generic (namespaces, cables, processes, neighbour queries, bounded waits, cleanup,
//! the SKIPPED/RAN policy) lives in `netlab`; this wrapper adds what only the speaker tests know:
//! how to start a speaker and read its metrics. It derefs to the generic lab so tests call both
//! kinds of helper on one value.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use netlab::Spawn;

/// Namespace family of these tests (`mlbwire-<pid>-<tag>-<name>`); a later run removes what a
/// killed run left.
const FAMILY: &str = "mlbwire";
/// The speaker's default metrics address: each namespace has its own loopback.
const METRICS: &str = "127.0.0.1:7472";

pub(crate) struct Lab {
    net: netlab::Lab,
}

impl Deref for Lab {
    type Target = netlab::Lab;

    fn deref(&self) -> &netlab::Lab {
        &self.net
    }
}

impl DerefMut for Lab {
    fn deref_mut(&mut self) -> &mut netlab::Lab {
        &mut self.net
    }
}

impl Lab {
    /// A lab tagged `tag`, or `None` (after printing "SKIPPED") when the machine cannot run it.
    /// `bash` is needed for the client's resolutions and the metrics requests.
    pub(crate) fn new(tag: &str) -> Option<Lab> {
        Self::needing(tag, &[])
    }

    /// [`Lab::new`] for a test that also runs `programs` (e.g. `nft`).
    pub(crate) fn needing(tag: &str, programs: &[&str]) -> Option<Lab> {
        let needed: Vec<&str> = ["bash"].into_iter().chain(programs.iter().copied()).collect();
        if !netlab::gate(tag, &needed) {
            return None;
        }
        let net = netlab::Lab::new(FAMILY, tag).expect("the lab builds once the gate passed");
        Some(Lab { net })
    }

    /// [`netlab::Lab::wait_for`] for conditions written with `anyhow`.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        condition: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        self.net.wait_for(what, condition)?;
        Ok(())
    }

    /// Writes a desired-state file atomically, as a careful writer would.
    pub(crate) fn write_state(&self, file: &str, yaml: &str) -> Result<PathBuf> {
        Ok(self.net.write_file(file, yaml)?)
    }

    /// Starts the speaker binary in namespace `name` as node `node` with fast pacing, and
    /// waits for `/readyz`.
    pub(crate) fn speaker(&mut self, name: &str, node: &str, state: &Path) -> Result<()> {
        self.speaker_with(name, node, state, &[])
    }

    /// [`Lab::speaker`] with extra flags. The process is labelled `name`.
    pub(crate) fn speaker_with(
        &mut self,
        name: &str,
        node: &str,
        state: &Path,
        extra: &[&str],
    ) -> Result<()> {
        self.start_speaker(name, node, state, extra)?;
        self.wait_ready(name)
    }

    /// Waits for `/readyz` of the speaker in `name`.
    pub(crate) fn wait_ready(&self, name: &str) -> Result<()> {
        self.wait_for(&format!("speaker in {name} ready"), || {
            Ok(self.http_get(name, "/readyz")?.starts_with("HTTP/1.1 200"))
        })
    }

    /// Starts the speaker without waiting for readiness: with gossip a speaker is ready only
    /// once it reaches a majority of its peers, so a group is started first and waited for
    /// after.
    pub(crate) fn start_speaker(
        &mut self,
        name: &str,
        node: &str,
        state: &Path,
        extra: &[&str],
    ) -> Result<()> {
        let source = format!("file:{}", state.display());
        let spawn = Spawn::new(name, name, env!("CARGO_BIN_EXE_metallb-speaker"))
            .args(["--node-name", node, "--source", &source, "--log-format", "text"])
            // Fast pacing keeps the tests short; the behaviour is the same as the defaults'.
            .args(["--announce-count", "3", "--announce-interval", "200ms"])
            .args(["--source-poll-interval", "100ms", "--interface-rescan-interval", "500ms"])
            .args(extra)
            .env("RUST_LOG", "debug");
        self.net.spawn(spawn)?;
        Ok(())
    }

    /// `kill -9` of the speaker in `name`: no leave, no cleanup, like a crashed node.
    pub(crate) fn kill(&mut self, name: &str) -> Result<()> {
        Ok(self.net.kill(name)?)
    }

    /// SIGTERM to the speaker in `name`, waiting for its exit; whether it exited successfully.
    pub(crate) fn terminate(&mut self, name: &str) -> Result<bool> {
        Ok(self.net.terminate(name)?)
    }

    /// GET on the speaker's metrics endpoint inside namespace `name`.
    pub(crate) fn http_get(&self, name: &str, path: &str) -> Result<String> {
        let addr: SocketAddr = METRICS.parse().context("metrics address")?;
        Ok(self.net.http_get(name, addr, path)?)
    }

    /// The value of one metric line (exact label set) of the speaker in `name`; 0 when absent.
    pub(crate) fn metric(&self, name: &str, series: &str) -> Result<f64> {
        let page = self.http_get(name, "/metrics")?;
        Ok(page
            .lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or(0.0))
    }
}
