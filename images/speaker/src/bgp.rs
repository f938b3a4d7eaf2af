//! BGP mode: the speaker announces its node's Service IPs to the routers over BGP, with BFD
//! where a peer asks for it, graceful restart, and graceful shutdown on SIGTERM.
//!
//! ```text
//!  file::follow ──────┐
//!  kubernetes::follow ─┴─► Input ─► reduce ─► Feed ─► run ─► metallb_bgp::Speaker (one task per peer)
//!                                                      └──► PeerBfd ─► metallb_bfd::Bfd ─► Down ─► Speaker::force_down
//!  every tick: session and BFD status ─► metrics (/metrics), readiness (/readyz), status::Sink
//! ```
//!
//! The BGP and BFD engines live in their own crates; this module only wires them to the
//! desired state and the metrics. The sources keep the previous state in force when their input
//! is unusable; a bad route or peer is left out and counted (`metallb_speaker_bgp_ignored`).

pub mod file;
pub mod kubernetes;
pub mod reduce;
pub mod status;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use metallb_bfd::{Bfd, SessionKey};
use metallb_bgp::Speaker;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::metrics::{Metrics, ReasonLabel};
use crate::speaker::Error;
use reduce::{Ignored, PeerBfd, Reduced};

/// Where a source publishes this node's reduced state; `None` until its first usable input.
pub type Feed = watch::Sender<Option<Arc<Reduced>>>;

/// What BGP mode runs with.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often session figures are recorded (metrics, status).
    pub tick: Duration,
    /// How long sessions stay up with GRACEFUL_SHUTDOWN on SIGTERM before they close.
    pub shutdown_grace: Duration,
}

/// Runs BGP mode from `feed` until SIGTERM or SIGINT, then shuts down gracefully (RFC 8326).
/// Session figures go to the metrics and, when given, to `status` (never waited for).
pub async fn run(
    options: Options,
    mut feed: watch::Receiver<Option<Arc<Reduced>>>,
    status: Option<watch::Sender<Option<status::Sessions>>>,
    metrics: Arc<Metrics>,
) -> Result<(), Error> {
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    // The process cannot tell a crash from a first start; the Restart State bit is harmless to
    // a router that holds nothing of ours (RFC 4724 §4.2), and makes one that does keep our
    // routes until End-of-RIB.
    let mut speaker = Speaker::new(true);
    let bfd = Bfd::new();
    let mut bfd_sessions: BTreeMap<String, (SessionKey, PeerBfd)> = BTreeMap::new();
    let mut bfd_states = bfd.states();
    let mut current: Option<Arc<Reduced>> = None;
    let mut feed_open = true;
    let mut tick = tokio::time::interval(options.tick);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            changed = feed.changed(), if feed_open => {
                if changed.is_err() {
                    // The source ended: keep announcing what it last said.
                    tracing::error!("the BGP source stopped; keeping the last state");
                    feed_open = false;
                    continue;
                }
                let next = feed.borrow_and_update().clone();
                if let Some(reduced) = next
                    && current.as_deref() != Some(&*reduced)
                {
                    apply(&mut speaker, &bfd, &mut bfd_sessions, &reduced, &metrics);
                    current = Some(reduced);
                    metrics.set_ready();
                }
            }
            _ = tick.tick() => {
                // Session entries only once a state was applied: before, no session means
                // nothing yet, not "no session".
                let status = status.as_ref().filter(|_| current.is_some());
                record(&speaker, &bfd_sessions, &bfd_states.borrow(), status, &metrics);
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
    for why in Ignored::ALL {
        let count = reduced.ignored.get(&why).copied().unwrap_or(0);
        if count > 0 {
            tracing::warn!(reason = why.label(), count, "BGP routes, peers or objects left out");
        }
        let label = ReasonLabel { reason: why.label() };
        metrics.bgp.ignored.get_or_create(&label).set(i64::try_from(count).unwrap_or(i64::MAX));
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

/// Session figures into the metrics and the status sink.
fn record(
    speaker: &Speaker,
    bfd_sessions: &BTreeMap<String, (SessionKey, PeerBfd)>,
    bfd_states: &BTreeMap<SessionKey, metallb_bfd::SessionStatus>,
    status: Option<&watch::Sender<Option<status::Sessions>>>,
    metrics: &Metrics,
) {
    let sessions = speaker.status();
    metrics.bgp.set_sessions(&sessions);
    if let Some(sink) = status {
        let bfd: BTreeMap<&str, metallb_bfd::State> = bfd_sessions
            .iter()
            .filter_map(|(name, (key, _))| Some((name.as_str(), bfd_states.get(key)?.state)))
            .collect();
        let snapshot = Some(status::snapshot(&sessions, &bfd));
        sink.send_if_modified(|current| {
            let changed = *current != snapshot;
            if changed {
                *current = snapshot;
            }
            changed
        });
    }
}
