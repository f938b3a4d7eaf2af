//! BGP mode's metrics: per session (the peer's name as label) and per BFD session, plus the
//! routes and peers of the desired state that were left out, by reason.

use std::time::SystemTime;

use metallb_bgp::SessionStatus;
use metallb_bgp::session::State;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ReasonLabel;

/// A BGP peer, by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PeerLabel {
    /// The peer's name.
    pub peer: String,
}

/// A BGP peer and a session state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PeerState {
    /// The peer's name.
    pub peer: String,
    /// RFC 4271 state name.
    pub state: &'static str,
}

/// A BGP peer and its last error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PeerError {
    /// The peer's name.
    pub peer: String,
    /// The error, as the engine words it.
    pub error: String,
}

const STATES: [State; 6] = [
    State::Idle,
    State::Connect,
    State::Active,
    State::OpenSent,
    State::OpenConfirm,
    State::Established,
];

/// The BGP families of the registry.
#[derive(Debug, Default)]
pub struct BgpMetrics {
    /// 1 for the session's current state, 0 for the others.
    pub state: Family<PeerState, Gauge>,
    /// Seconds since the session entered its current state.
    pub state_seconds: Family<PeerLabel, Gauge>,
    /// Prefixes the peer has from us.
    pub prefixes_sent: Family<PeerLabel, Gauge>,
    /// UPDATEs sent (the engine's count since start).
    pub updates_sent: Family<PeerLabel, Gauge>,
    /// UPDATEs received: validated and counted, never installed.
    pub updates_received: Family<PeerLabel, Gauge>,
    /// Times the session left Established.
    pub flaps: Family<PeerLabel, Gauge>,
    /// 1 with the session's last error as a label.
    pub last_error: Family<PeerError, Gauge>,
    /// BFD: 1 while Up.
    pub bfd_up: Family<PeerLabel, Gauge>,
    /// Routes, peers and objects of the desired state left out, by reason.
    pub ignored: Family<ReasonLabel, Gauge>,
    /// Peer status entries written (server-side apply).
    pub status_writes: Counter,
    /// Peer status writes refused or timed out.
    pub status_errors: Counter,
}

impl BgpMetrics {
    /// Registers every family under `bgp_` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let sub = registry.sub_registry_with_prefix("bgp");
        sub.register("session_state", "BGP session state: 1 for the current one", m.state.clone());
        sub.register(
            "session_state_seconds",
            "Seconds since the BGP session entered its current state",
            m.state_seconds.clone(),
        );
        sub.register(
            "prefixes_sent",
            "Prefixes the peer has from this speaker",
            m.prefixes_sent.clone(),
        );
        sub.register("updates_sent", "UPDATE messages sent since start", m.updates_sent.clone());
        sub.register(
            "updates_received",
            "UPDATE messages received since start (validated and counted, never installed)",
            m.updates_received.clone(),
        );
        sub.register("session_flaps", "Times the session left Established", m.flaps.clone());
        sub.register(
            "last_error",
            "1, with the session's last error as the label",
            m.last_error.clone(),
        );
        sub.register("bfd_up", "BFD session of the peer: 1 while Up", m.bfd_up.clone());
        sub.register(
            "ignored",
            "Routes, peers and objects of the desired state left out, by reason",
            m.ignored.clone(),
        );
        sub.register(
            "status_writes",
            "Session entries written into the peers' status",
            m.status_writes.clone(),
        );
        sub.register(
            "status_errors",
            "Session entry writes refused by the API server or timed out",
            m.status_errors.clone(),
        );
        m
    }

    /// Records every session's status; errors of earlier records are forgotten.
    pub fn set_sessions<'a>(
        &self,
        sessions: impl IntoIterator<Item = (&'a String, &'a SessionStatus)>,
    ) {
        self.last_error.clear();
        for (peer, status) in sessions {
            self.set_session(peer, status);
        }
    }

    /// Records one session's status.
    fn set_session(&self, peer: &str, status: &SessionStatus) {
        for state in STATES {
            let label = PeerState { peer: peer.to_owned(), state: state.label() };
            self.state.get_or_create(&label).set(i64::from(status.state == state));
        }
        let age = SystemTime::now().duration_since(status.since).map_or(0, |d| d.as_secs());
        let label = PeerLabel { peer: peer.to_owned() };
        self.state_seconds.get_or_create(&label).set(i64::try_from(age).unwrap_or(i64::MAX));
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.prefixes_sent.get_or_create(&label).set(count(status.prefixes_sent as u64));
        self.updates_sent.get_or_create(&label).set(count(status.updates_sent));
        self.updates_received.get_or_create(&label).set(count(status.updates_received));
        self.flaps.get_or_create(&label).set(count(status.flaps));
        if let Some(error) = &status.last_error {
            self.last_error
                .get_or_create(&PeerError { peer: peer.to_owned(), error: error.clone() })
                .set(1);
        }
    }

    /// Records a BFD state; returns whether it was Up before.
    pub fn set_bfd_up(&self, peer: &str, up: bool) -> bool {
        let gauge = self.bfd_up.get_or_create(&PeerLabel { peer: peer.to_owned() });
        let was = gauge.get() == 1;
        gauge.set(i64::from(up));
        was
    }
}
