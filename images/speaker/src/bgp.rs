//! BGP mode: the speaker announces its node's Service IPs to the routers over BGP, with BFD
//! where a peer asks for it, graceful restart, and graceful shutdown on SIGTERM.
//!
//! ```text
//!  file source ─► file::reduce ─► Desired ─► metallb_bgp::Speaker (one task per peer)
//!                            └──► PeerBfd ─► metallb_bfd::Bfd ─► Down ─► Speaker::force_down
//!  every tick: session and BFD status ─► metrics (/metrics), readiness (/readyz)
//! ```
//!
//! The BGP and BFD engines live in their own crates; this module only wires them to the
//! desired state and the metrics. A file that does not parse keeps the previous state in
//! force; a bad route or peer is left out and counted (`metallb_speaker_bgp_ignored`).

pub mod file;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metallb_bfd::{Bfd, SessionKey};
use metallb_bgp::Speaker;
use tokio::signal::unix::{SignalKind, signal};

use crate::metrics::{Metrics, ReasonLabel};
use crate::speaker::Error;
use file::{NodeFile, PeerBfd, Reduced};

/// What BGP mode runs with.
#[derive(Clone, Debug)]
pub struct Options {
    /// This node's name; the file must be for it.
    pub node_name: String,
    /// The desired-state file.
    pub file: PathBuf,
    /// How often the file is checked for changes.
    pub poll: Duration,
    /// How long sessions stay up with GRACEFUL_SHUTDOWN on SIGTERM before they close.
    pub shutdown_grace: Duration,
}

/// Runs BGP mode until SIGTERM or SIGINT, then shuts down gracefully (RFC 8326).
pub async fn run(options: Options, metrics: Arc<Metrics>) -> Result<(), Error> {
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    // The process cannot tell a crash from a first start; the Restart State bit is harmless to
    // a router that holds nothing of ours (RFC 4724 §4.2), and makes one that does keep our
    // routes until End-of-RIB.
    let mut speaker = Speaker::new(true);
    let bfd = Bfd::new();
    let mut bfd_sessions: BTreeMap<String, (SessionKey, PeerBfd)> = BTreeMap::new();
    let mut bfd_states = bfd.states();
    let mut stamp = None;
    let mut current: Option<Reduced> = None;
    let mut tick = tokio::time::interval(options.poll);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                let now = stamp_of(&options.file);
                if now != stamp {
                    stamp = now;
                    if let Some(reduced) = load(&options, &metrics)
                        && current.as_ref() != Some(&reduced)
                    {
                        apply(&mut speaker, &bfd, &mut bfd_sessions, &reduced, &metrics);
                        current = Some(reduced);
                        metrics.set_ready();
                    }
                }
                record(&speaker, &metrics);
            }
            changed = bfd_states.changed() => {
                if changed.is_err() {
                    continue;
                }
                let states = bfd_states.borrow_and_update().clone();
                follow_bfd(&speaker, &bfd_sessions, &states, &metrics);
            }
        }
    }
    tracing::info!(grace = ?options.shutdown_grace, "graceful shutdown");
    speaker.shutdown(options.shutdown_grace).await;
    bfd.shutdown().await;
    Ok(())
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp_of(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reads and reduces the file; `None` (logged, counted) when it cannot be used.
fn load(options: &Options, metrics: &Metrics) -> Option<Reduced> {
    let text = match std::fs::read_to_string(&options.file) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(%error, path = %options.file.display(), "cannot read the BGP state file; keeping the previous state");
            metrics.source_errors.inc();
            return None;
        }
    };
    let parsed: NodeFile = match serde_norway::from_str(&text) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::error!(%error, path = %options.file.display(), "the BGP state file does not parse; keeping the previous state");
            metrics.source_errors.inc();
            return None;
        }
    };
    if parsed.node != options.node_name {
        tracing::error!(file_node = %parsed.node, node = %options.node_name, "the BGP state file is for another node; ignored");
        metrics.source_errors.inc();
        return None;
    }
    let reduced = file::reduce(&parsed, |path| match std::fs::read_to_string(path) {
        Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_owned()),
        Err(error) => {
            tracing::error!(%error, path = %path.display(), "cannot read a peer's password file");
            None
        }
    });
    metrics.source_loads.inc();
    Some(reduced)
}

fn apply(
    speaker: &mut Speaker,
    bfd: &Bfd,
    sessions: &mut BTreeMap<String, (SessionKey, PeerBfd)>,
    reduced: &Reduced,
    metrics: &Metrics,
) {
    let report = speaker.apply(&reduced.desired);
    for (peer, why) in &report.invalid {
        tracing::error!(%peer, %why, "peer skipped");
    }
    tracing::info!(
        started = ?report.started,
        restarted = ?report.restarted,
        stopped = ?report.stopped,
        prefixes = reduced.desired.routes.len(),
        "BGP state applied"
    );
    metrics.bgp.ignored.clear();
    for (why, count) in &reduced.ignored {
        tracing::warn!(reason = why.label(), count, "BGP routes or peers left out");
        let label = ReasonLabel { reason: why.label() };
        metrics.bgp.ignored.get_or_create(&label).set(i64::try_from(*count).unwrap_or(i64::MAX));
    }
    // BFD sessions follow the peers that ask for them.
    let gone: Vec<String> = sessions
        .iter()
        .filter(|(name, (_, want))| reduced.bfd.get(*name) != Some(want))
        .map(|(name, _)| name.clone())
        .collect();
    for name in gone {
        if let Some((key, _)) = sessions.remove(&name)
            && let Err(error) = bfd.remove_session(key)
        {
            tracing::warn!(peer = %name, %error, "BFD session not removed");
        }
    }
    for (name, want) in &reduced.bfd {
        if sessions.contains_key(name) {
            continue;
        }
        let Some(local) = want.local.or_else(|| local_address_towards(want.peer)) else {
            tracing::error!(peer = %name, "no local address towards the peer; BFD not started");
            continue;
        };
        match bfd.add_session(local, want.peer, want.params) {
            Ok(key) => {
                sessions.insert(name.clone(), (key, *want));
            }
            Err(error) => tracing::error!(peer = %name, %error, "BFD session not started"),
        }
    }
}

/// The address the kernel would send from towards `peer`: a connected UDP socket sends
/// nothing, it only picks the route and the source.
fn local_address_towards(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = match peer {
        IpAddr::V4(_) => "0.0.0.0:0".parse().ok()?,
        IpAddr::V6(_) => "[::]:0".parse().ok()?,
    };
    let socket = UdpSocket::bind(any).ok()?;
    socket.connect(SocketAddr::new(peer, metallb_bfd::driver::CONTROL_PORT)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// A BFD session that went Down brings its BGP session down at once: the router's side has
/// lost us too, and waiting for the hold timer would keep announcing into a dead path.
fn follow_bfd(
    speaker: &Speaker,
    sessions: &BTreeMap<String, (SessionKey, PeerBfd)>,
    states: &BTreeMap<SessionKey, metallb_bfd::SessionStatus>,
    metrics: &Metrics,
) {
    for (name, (key, _)) in sessions {
        let Some(status) = states.get(key) else { continue };
        let up = status.state == metallb_bfd::State::Up;
        let was_up = metrics.bgp.set_bfd_up(name, up);
        if was_up && !up {
            tracing::warn!(peer = %name, diag = ?status.diag, "BFD down: BGP session brought down");
            speaker.force_down(name);
        }
    }
}

/// Session figures into the metrics.
fn record(speaker: &Speaker, metrics: &Metrics) {
    metrics.bgp.set_sessions(&speaker.status());
}
