//! Each speaker's entry in `MetalLoadBalancerBGPPeer.status.sessions`: built from the engines'
//! session state (pure), sent by server-side apply with the field manager
//! `metallb-bgp-speaker/<node>` so every node owns its own entry of the list keyed by `node`.
//!
//! ```text
//!  run (every tick) ─► Sessions ─► watch ─► write: Limiter decides ─► PATCH …/status (apply)
//! ```
//!
//! The writer is its own task: a slow or refusing API server never delays the BGP sessions. A
//! state change (BGP state, BFD state, last error) is written at once; other changes (prefix
//! counts) at most once per [`MIN_INTERVAL`] per peer. A refused write is logged and counted,
//! and retried after [`MIN_INTERVAL`]. An entry of a peer this node no longer peers with is
//! released (applied without it), also one left by an earlier run of the speaker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use metallb_api::bgp::{BgpSessionStatus, MetalLoadBalancerBGPPeer};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::kubernetes::PeerView;
use crate::error_chain;
use crate::metrics::Metrics;
use crate::status_apply;

/// The shortest time between two writes of one peer's entry without a state change: a
/// session's prefix count moves on every route change, and a churning cluster must not turn
/// that into one write per second per node and peer.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// What a node's entry says about one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// BGP state.
    pub state: metallb_bgp::session::State,
    /// Since when (wall clock).
    pub since: SystemTime,
    /// Prefixes the peer has from us.
    pub prefixes_sent: usize,
    /// BFD state, when the peer has BFD.
    pub bfd: Option<metallb_bfd::State>,
    /// The last error.
    pub last_error: Option<String>,
}

impl Session {
    /// Whether `other` differs in what an operator waits for (not only in counts).
    fn state_differs(&self, other: &Session) -> bool {
        self.state != other.state
            || self.since != other.since
            || self.bfd != other.bfd
            || self.last_error != other.last_error
    }
}

/// Every session of this node, by peer name.
pub type Sessions = BTreeMap<String, Session>;

/// The sessions from the engines' status.
pub fn snapshot(
    bgp: &BTreeMap<String, metallb_bgp::SessionStatus>,
    bfd: &BTreeMap<&str, metallb_bfd::State>,
) -> Sessions {
    bgp.iter()
        .map(|(peer, s)| {
            let session = Session {
                state: s.state,
                since: s.since,
                prefixes_sent: s.prefixes_sent,
                bfd: bfd.get(peer.as_str()).copied(),
                last_error: s.last_error.clone(),
            };
            (peer.clone(), session)
        })
        .collect()
}

/// `node`'s entry for one session.
pub fn entry(node: &str, session: &Session) -> BgpSessionStatus {
    BgpSessionStatus {
        node: node.to_owned(),
        state: state_name(session.state).to_owned(),
        since: status_apply::rfc3339(session.since),
        prefixes_sent: Some(i64::try_from(session.prefixes_sent).unwrap_or(i64::MAX)),
        bfd_state: session.bfd.map(|s| bfd_label(s).to_owned()),
        last_error: session.last_error.clone(),
    }
}

/// RFC 4271 §8.2.2's names, as the CRD documents them (the metrics' labels are lowercase).
fn state_name(state: metallb_bgp::session::State) -> &'static str {
    use metallb_bgp::session::State;
    match state {
        State::Idle => "Idle",
        State::Connect => "Connect",
        State::Active => "Active",
        State::OpenSent => "OpenSent",
        State::OpenConfirm => "OpenConfirm",
        State::Established => "Established",
    }
}

fn bfd_label(state: metallb_bfd::State) -> &'static str {
    match state {
        metallb_bfd::State::AdminDown => "AdminDown",
        metallb_bfd::State::Down => "Down",
        metallb_bfd::State::Init => "Init",
        metallb_bfd::State::Up => "Up",
    }
}

/// The field manager of `node`'s entries (bounded, see [`status_apply::field_manager`]).
pub fn field_manager(node: &str) -> String {
    status_apply::field_manager("metallb-bgp-speaker", node)
}

/// The apply configuration of `node`'s entry on `peer`; without an entry it releases the
/// entry (server-side apply removes fields the manager no longer applies).
pub fn apply_body(peer: &str, entry: Option<&BgpSessionStatus>) -> Value {
    let mut body = json!({
        "apiVersion": MetalLoadBalancerBGPPeer::api_version(&()),
        "kind": MetalLoadBalancerBGPPeer::kind(&()),
        "metadata": {"name": peer},
    });
    if let Some(entry) = entry {
        body["status"] = json!({"sessions": [entry]});
    }
    body
}

/// What the limiter knows of one peer.
#[derive(Debug)]
struct Written {
    /// The last entry attempted (`None`: a release).
    session: Option<Session>,
    /// Whether that attempt succeeded.
    ok: bool,
    /// When it was made.
    at: Instant,
}

/// Decides which entries to write now (pure, caller's clock).
#[derive(Debug, Default)]
pub struct Limiter {
    written: BTreeMap<String, Written>,
}

/// One write to make: `peer`'s entry, or its release (`None`).
pub type Due = (String, Option<Session>);

impl Limiter {
    /// The writes due at `now` for `sessions`: a new peer or a state change at once, a count
    /// change or a retry after [`MIN_INTERVAL`]; the release of a peer this node no longer
    /// peers with, at once if this writer wrote its entry, else (`own`: the peers whose status
    /// holds an entry of this node, say from before a restart) once per [`MIN_INTERVAL`] while
    /// the entry is still seen.
    pub fn due(&self, now: Instant, sessions: &Sessions, own: &BTreeSet<String>) -> Vec<Due> {
        let waited = |w: &Written| now.duration_since(w.at) >= MIN_INTERVAL;
        let mut due = Vec::new();
        for (peer, session) in sessions {
            let send = match self.written.get(peer) {
                None => true,
                Some(w) => match &w.session {
                    None => true,
                    Some(last) if w.ok && last == session => false,
                    Some(last) => last.state_differs(session) || waited(w),
                },
            };
            if send {
                due.push((peer.clone(), Some(session.clone())));
            }
        }
        for (peer, w) in &self.written {
            if sessions.contains_key(peer) {
                continue;
            }
            let release = match (&w.session, w.ok) {
                (Some(_), _) => true,
                (None, false) => waited(w),
                (None, true) => own.contains(peer) && waited(w),
            };
            if release {
                due.push((peer.clone(), None));
            }
        }
        for peer in own {
            if !sessions.contains_key(peer) && !self.written.contains_key(peer) {
                due.push((peer.clone(), None));
            }
        }
        due.sort_by(|a, b| a.0.cmp(&b.0));
        due
    }

    /// Records the outcome of a write made at `now`.
    pub fn record(&mut self, now: Instant, due: &Due, ok: bool) {
        self.written.insert(due.0.clone(), Written { session: due.1.clone(), ok, at: now });
    }
}

/// How often the writer looks for due retries and count updates without a new snapshot.
const RECHECK: Duration = Duration::from_secs(1);

/// Writes `node`'s entries as `sessions` changes, until the sender is gone. `sessions` is
/// `None` until the first desired state was applied: before that an empty session list means
/// nothing, and releasing entries then would flap them at every restart. `own` are the peers
/// whose status holds an entry of this node.
pub async fn write(
    client: Client,
    node: String,
    mut sessions: watch::Receiver<Option<Sessions>>,
    mut own: watch::Receiver<BTreeSet<String>>,
    metrics: Arc<Metrics>,
) {
    // The lean view: the answer's spec is not needed, and a peer whose spec this version
    // cannot read must not turn a successful write into a counted failure.
    let api: Api<PeerView> = Api::all(client);
    let params = PatchParams::apply(&field_manager(&node)).force();
    let mut limiter = Limiter::default();
    let mut retry = tokio::time::interval(RECHECK);
    loop {
        tokio::select! {
            changed = sessions.changed() => if changed.is_err() { return },
            changed = own.changed() => if changed.is_err() { return },
            _ = retry.tick() => {}
        }
        let Some(current) = sessions.borrow_and_update().clone() else { continue };
        let seen = own.borrow_and_update().clone();
        let now = Instant::now();
        for due in limiter.due(now, &current, &seen) {
            let body = apply_body(&due.0, due.1.as_ref().map(|s| entry(&node, s)).as_ref());
            let sent = tokio::time::timeout(
                status_apply::WRITE_TIMEOUT,
                api.patch_status(&due.0, &params, &Patch::Apply(&body)),
            )
            .await;
            let ok = match sent {
                Ok(Ok(_)) => true,
                // The peer object is gone: nothing to write, nothing to release.
                Ok(Err(kube::Error::Api(status))) if status.code == 404 => true,
                Ok(Err(error)) => {
                    metrics.bgp.status_errors.inc();
                    tracing::warn!(peer = %due.0, error = %error_chain(&error), "peer status not written; retrying later");
                    false
                }
                Err(_) => {
                    metrics.bgp.status_errors.inc();
                    tracing::warn!(peer = %due.0, "peer status write timed out; retrying later");
                    false
                }
            };
            if ok {
                metrics.bgp.status_writes.inc();
            }
            limiter.record(now, &due, ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use metallb_bgp::session::State;

    use super::*;

    fn session(state: State, prefixes: usize) -> Session {
        Session {
            state,
            since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_601_600),
            prefixes_sent: prefixes,
            bfd: Some(metallb_bfd::State::Up),
            last_error: None,
        }
    }

    #[test]
    fn the_entry_says_state_since_prefixes_bfd_and_error() {
        let mut s = session(State::Established, 3);
        let e = entry("node-1", &s);
        assert_eq!(
            serde_json::to_value(&e).expect("json"),
            json!({"node": "node-1", "state": "Established", "since": "2026-12-07T00:00:00Z",
                   "prefixesSent": 3, "bfdState": "Up"})
        );
        s.bfd = None;
        s.last_error = Some("connection refused".to_owned());
        s.state = State::Active;
        let e = entry("node-1", &s);
        assert_eq!((e.state.as_str(), e.bfd_state.as_deref()), ("Active", None));
        assert_eq!(e.last_error.as_deref(), Some("connection refused"));
        let body = apply_body("tor-a", Some(&e));
        assert_eq!(body["kind"], "MetalLoadBalancerBGPPeer");
        assert_eq!(body["apiVersion"], "network.deckhouse.io/v1alpha1");
        assert_eq!(body["metadata"], json!({"name": "tor-a"}));
        assert_eq!(body["status"]["sessions"][0]["node"], "node-1");
        assert!(apply_body("tor-a", None).get("status").is_none());
    }

    #[test]
    fn field_manager_is_per_node_and_bounded() {
        assert_eq!(field_manager("node-1"), "metallb-bgp-speaker/node-1");
        assert_eq!(field_manager(&"n".repeat(253)).len(), 128);
    }

    #[test]
    fn state_changes_go_at_once_counts_are_rate_limited_gone_peers_released() {
        let none = BTreeSet::new();
        let t0 = Instant::now();
        let mut limiter = Limiter::default();
        let mut sessions = Sessions::from([("tor".to_owned(), session(State::Connect, 0))]);
        let due = limiter.due(t0, &sessions, &none);
        assert_eq!(due.len(), 1, "a new peer is written at once");
        limiter.record(t0, &due[0], true);
        assert!(limiter.due(t0, &sessions, &none).is_empty(), "unchanged: nothing");

        let t1 = t0 + Duration::from_secs(1);
        sessions.insert("tor".to_owned(), session(State::Established, 0));
        let due = limiter.due(t1, &sessions, &none);
        assert_eq!(due.len(), 1, "a state change is written at once");
        limiter.record(t1, &due[0], true);

        let t2 = t1 + Duration::from_secs(1);
        sessions.insert("tor".to_owned(), session(State::Established, 5));
        assert!(limiter.due(t2, &sessions, &none).is_empty(), "a count change waits");
        let due = limiter.due(t1 + MIN_INTERVAL, &sessions, &none);
        assert_eq!(due, [("tor".to_owned(), Some(session(State::Established, 5)))]);

        // A refused write is retried after the interval, not at once.
        limiter.record(t2, &due[0], false);
        assert!(limiter.due(t2 + Duration::from_secs(1), &sessions, &none).is_empty());
        let due = limiter.due(t2 + MIN_INTERVAL, &sessions, &none);
        assert_eq!(due.len(), 1);
        limiter.record(t2 + MIN_INTERVAL, &due[0], true);

        // The peer leaves this node: its entry is released once.
        let t3 = t2 + MIN_INTERVAL * 2;
        let own = BTreeSet::from(["tor".to_owned()]);
        let due = limiter.due(t3, &Sessions::new(), &own);
        assert_eq!(due, [("tor".to_owned(), None)]);
        limiter.record(t3, &due[0], true);
        assert!(limiter.due(t3, &Sessions::new(), &own).is_empty(), "not again at once");
        assert!(limiter.due(t3 + MIN_INTERVAL, &Sessions::new(), &none).is_empty(), "gone");
    }

    #[test]
    fn an_entry_left_by_an_earlier_run_is_released() {
        let t0 = Instant::now();
        let mut limiter = Limiter::default();
        let sessions = Sessions::from([("tor-a".to_owned(), session(State::Active, 0))]);
        let own = BTreeSet::from(["tor-a".to_owned(), "tor-old".to_owned()]);
        let due = limiter.due(t0, &sessions, &own);
        assert_eq!(
            due,
            [("tor-a".to_owned(), Some(session(State::Active, 0))), ("tor-old".to_owned(), None)]
        );
        for d in &due {
            limiter.record(t0, d, true);
        }
        // The watch has not shown the release yet: no second release before the interval.
        assert!(limiter.due(t0 + Duration::from_secs(1), &sessions, &own).is_empty());
    }
}
