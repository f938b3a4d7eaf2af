//! Part 3: how long after a `kill -9` of the owner's speaker the client hears the backup.
//!
//! ```text
//!   ns c: client 192.0.2.1 + `bench-probe watch`      ns a, b, c3: speakers with gossip
//!                         └─────────── br0 ───────────┘ X = 192.0.2.10: node a, backups [b, c3]
//!   t0 = kill -9 of a's speaker      t1 = the client's socket sees b's gratuitous ARP for X
//! ```
//!
//! Each trial builds a fresh lab (as `images/speaker/tests/it/failover.rs` does) so trials are
//! independent; the speakers run with their default gossip and announcement settings, which
//! are what the figure describes. Both times are read from the same clock (the machine's
//! real-time clock, shared by all namespaces).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use netlab::{Lab, Spawn};
use serde::{Deserialize, Serialize};

use super::probe::WatchOutput;
use super::wire::{FAMILY, metric};
use super::{Guard, Tools};

/// The address that moves.
const X: &str = "192.0.2.10";
/// Nodes and their own addresses, which carry the gossip (port 4218 of the module's range).
const NODES: [(&str, &str); 3] =
    [("a", "203.0.113.11"), ("b", "203.0.113.12"), ("c3", "203.0.113.13")];
/// Gossip port.
const GOSSIP_PORT: u16 = 4218;
/// How long the prober waits for the take-over; far above the 2 s target, so a slow one is
/// measured, not lost.
const WATCH_TIMEOUT: Duration = Duration::from_secs(15);

/// One trial.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trial {
    /// Kill → gratuitous ARP of the backup at the client, seconds.
    pub takeover_s: f64,
    /// Whether the client's neighbour entry then pointed to the backup's MAC.
    pub entry_moved: bool,
}

/// Runs `trials` independent trials.
pub fn run(tools: &Tools, guard: &Guard, trials: usize) -> Result<Vec<Trial>> {
    let mut out = Vec::with_capacity(trials);
    for i in 0..trials {
        let lab = Lab::new(FAMILY, &format!("fo{i}"))?.with_deadline(Duration::from_secs(20));
        let mut lab = guard.watch(lab);
        let trial = trial(&mut lab, tools);
        if trial.is_ok() {
            lab.succeeded();
        }
        drop(lab);
        guard.release();
        let trial = trial.with_context(|| format!("failover trial {}", i + 1))?;
        eprintln!("    failover: trial {}/{trials}: {:.3} s", i + 1, trial.takeover_s);
        out.push(trial);
    }
    Ok(out)
}

fn trial(lab: &mut Lab, tools: &Tools) -> Result<Trial> {
    lab.add_host("c", "eth0", &["192.0.2.1/24"])?;
    for (name, addr) in NODES {
        lab.add_host(name, "eth0", &[&format!("{addr}/24")])?;
    }
    // 32 bytes: above the speaker's 16-byte minimum; the value only has to be shared.
    let key = lab.dir().join("gossip.key");
    std::fs::write(&key, [7u8; 32])?;
    let key = key.display().to_string();
    let peers: Vec<String> = NODES.iter().map(|(_, a)| format!("{a}:{GOSSIP_PORT}")).collect();
    let peers = peers.join(",");
    let state = lab.write_file(
        "state.yaml",
        &format!("addresses:\n- {{ip: {X}, node: a, backups: [b, c3]}}\n"),
    )?;
    let source = format!("file:{}", state.display());
    for (name, addr) in NODES {
        let bind = format!("{addr}:{GOSSIP_PORT}");
        lab.spawn(Spawn::new(name, name, &tools.speaker).args([
            "--node-name",
            name,
            "--source",
            &source,
            "--log-format",
            "text",
            "--gossip-bind",
            &bind,
            "--gossip-peers",
            &peers,
            "--gossip-key-file",
            &key,
        ]))?;
    }
    let metrics: SocketAddr = "127.0.0.1:7472".parse()?;
    for (name, _) in NODES {
        lab.wait_for(
            &format!("{name} ready and seeing three live members"),
            || -> Result<bool> {
                let page = lab.http_get(name, metrics, "/metrics")?;
                Ok(metric(&page, r#"metallb_speaker_gossip_members{state="alive"}"#) == 3.0)
            },
        )?;
    }
    let (a_mac, b_mac) = (lab.mac("a", "eth0")?, lab.mac("b", "eth0")?);
    lab.resolve("c", X)?;
    let first = lab.resolved_mac("c", "eth0", X)?;
    if first != a_mac {
        bail!("the client resolved {X} to {first}, not to the owner a ({a_mac})");
    }

    lab.spawn(
        Spawn::new("c", "watch", &tools.xtask)
            .args(["bench-probe", "watch", "--iface", "eth0", "--ip", X, "--mac", &b_mac])
            .args(["--timeout-ms", &WATCH_TIMEOUT.as_millis().to_string()])
            .piped_stdout(),
    )?;
    let mut lines = BufReader::new(lab.take_stdout("watch")?).lines();
    // The prober prints `ready` once its socket is open, or exits (end of file) on an error;
    // its own timeout bounds both reads.
    match lines.next() {
        Some(Ok(line)) if line == "ready" => {}
        other => bail!("the prober did not start: {other:?}"),
    }
    let killed = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    lab.kill("a")?;
    let line = lines.next().context("the prober ended without output")??;
    let seen: WatchOutput =
        serde_json::from_str(&line).with_context(|| format!("prober printed {line:?}"))?;
    let takeover_s = seen.arrival_unix_ns.saturating_sub(killed) as f64 / 1e9;
    let entry_moved = lab
        .wait_for("the client's entry to point to b", || -> Result<bool> {
            Ok(lab.neighbour("c", "eth0", X)?.and_then(|n| n.lladdr).as_deref()
                == Some(b_mac.as_str()))
        })
        .is_ok();
    Ok(Trial { takeover_s, entry_moved })
}
