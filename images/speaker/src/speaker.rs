//! The speaker's runtime: applies desired state and interface changes to the data plane.
//!
//! ```text
//!  source ──watch──► Dataplane::reconcile ◄── rescan tick (sysfs)
//!                        │  publishes Arc<OwnedSet> (answering stops at once on release)
//!                        │  opens/closes one receive thread per interface
//!                        │  joins/leaves solicited-node groups
//!                        └► Announcer targets ──deadline──► gratuitous frames via LinkTx
//! ```
//!
//! Receive loops are plain threads blocked in the packet socket (short read timeout so they
//! notice a stop); the control loop is one tokio task. They share only the owned set behind a
//! read-mostly lock and the per-interface sender behind a mutex.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::announce::{AnnounceConfig, Announcer, Target};
use crate::error_chain;
use crate::gossip::Liveness;
use crate::interfaces::{self, InterfaceInfo, InterfaceProblems, Pattern};
use crate::link::{self, LinkError, LinkRx, LinkTx, Memberships};
use crate::metrics::{ClassIface, FamilyLabel, IfaceLabel, Metrics};
use crate::packet;
use crate::responder::{self, Family, Iface, OwnedSet};
use crate::source::{self, DesiredState, Source, SourceError};

/// Read timeout of the packet sockets: how long a receive thread may take to notice it was
/// told to stop. Short enough for a prompt interface change, long enough to cost nothing idle.
const READ_TIMEOUT: Duration = Duration::from_millis(250);

/// What the speaker needs besides its source.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name, compared with each address's `node`.
    pub node_name: String,
    /// Gratuitous announcement pacing.
    pub announce: AnnounceConfig,
    /// Interface name patterns the automatic choice skips.
    pub exclude: Vec<Pattern>,
    /// How often the interface list is re-read.
    pub rescan_interval: Duration,
    /// The sysfs `class/net` directory.
    pub sys_class_net: PathBuf,
    /// Receives, after every interface scan, the classes this node may announce for whose
    /// named interfaces are missing or down here (the Kubernetes source turns them into the
    /// children's `NodeCanAnnounce` condition); `None` until the first scan.
    pub problems: Option<Arc<watch::Sender<Option<InterfaceProblems>>>>,
}

/// Why the speaker stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A signal handler could not be installed.
    #[error("cannot handle SIGTERM")]
    Signal(#[source] std::io::Error),
    /// The desired-state source failed.
    #[error("desired-state source failed")]
    Source(#[from] SourceError),
    /// A packet socket could not be opened at startup.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The interface list could not be read.
    #[error("cannot read the interface list from {path}")]
    Interfaces {
        /// The sysfs directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The metrics endpoint could not listen.
    #[error("cannot listen on {addr} for metrics and health")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The gossip key file is unusable.
    #[error(transparent)]
    Key(#[from] crate::gossip::codec::KeyError),
    /// Gossip could not start or failed.
    #[error(transparent)]
    Gossip(#[from] crate::gossip::GossipError),
    /// The gossip task panicked.
    #[error("the gossip task ended unexpectedly")]
    GossipTask(#[source] tokio::task::JoinError),
    /// The source task panicked or was cancelled.
    #[error("the desired-state source task ended unexpectedly")]
    SourceTask(#[from] tokio::task::JoinError),
}

/// The owned set shared with the receive threads.
type SharedOwned = Arc<RwLock<Arc<OwnedSet>>>;
/// A sender shared between its receive thread (replies) and the control loop (announcements).
type SharedTx = Arc<Mutex<Box<dyn LinkTx>>>;

/// Runs the speaker until the source fails or the future is dropped. `metrics` becomes ready
/// once the first state is applied and the sockets are open. `liveness` is the gossip view
/// (or [`Liveness::everyone`] without gossip); every change re-derives the owned set, which
/// is how a backup takes over.
pub async fn run<S: Source>(
    config: Config,
    source: S,
    mut liveness: watch::Receiver<Arc<Liveness>>,
    metrics: Arc<Metrics>,
) -> Result<(), Error> {
    let (updates, mut rx) = watch::channel(None);
    let mut source_task = tokio::spawn(source.run(updates, metrics.clone()));
    let first = loop {
        if rx.changed().await.is_err() {
            return Err(source_ended(&mut source_task).await);
        }
        if let Some(state) = rx.borrow_and_update().clone() {
            break state;
        }
    };
    let mut plane = Dataplane::new(config.clone(), first, metrics.clone());
    plane.liveness = liveness.borrow_and_update().clone();
    plane.reconcile(true)?;
    metrics.set_ready();
    tracing::info!(node = %config.node_name, interfaces = plane.workers.len(), "speaker ready");

    let mut rescan = tokio::time::interval(config.rescan_interval);
    rescan.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let deadline = plane.announcer.next_deadline().map(Instant::from_std);
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return Err(source_ended(&mut source_task).await);
                }
                if let Some(state) = rx.borrow_and_update().clone() {
                    plane.state = state;
                    plane.reconcile(false)?;
                }
            }
            changed = liveness.changed(), if plane.gossip_open => {
                if changed.is_err() {
                    // Gossip stopped (shutdown): keep the last view rather than a stale guess.
                    plane.gossip_open = false;
                } else {
                    plane.liveness = liveness.borrow_and_update().clone();
                    plane.reconcile(false)?;
                }
            }
            _ = rescan.tick() => plane.reconcile(false)?,
            () = sleep_until(deadline) => {}
        }
        plane.announce_due(std::time::Instant::now());
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn source_ended(task: &mut tokio::task::JoinHandle<Result<(), SourceError>>) -> Error {
    match task.await {
        Ok(Ok(())) => Error::Source(SourceError::Stopped("desired-state")),
        Ok(Err(error)) => Error::Source(error),
        Err(error) => Error::SourceTask(error),
    }
}

/// One interface's receive thread and sender.
struct Worker {
    iface: Iface,
    tx: SharedTx,
    stop: Arc<AtomicBool>,
    alive: Arc<AtomicBool>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Dataplane {
    config: Config,
    state: Arc<DesiredState>,
    liveness: Arc<Liveness>,
    /// Whether the liveness channel can still change.
    gossip_open: bool,
    /// Addresses currently held as a backup, to count take-overs once each.
    taken_over: BTreeSet<IpAddr>,
    metrics: Arc<Metrics>,
    owned: SharedOwned,
    workers: BTreeMap<String, Worker>,
    memberships: Memberships,
    announcer: Announcer,
    /// Keys of problems already logged, so a rescan every few seconds does not repeat them.
    reported: BTreeSet<String>,
    /// `(class, interface)` pairs named by a class this node may announce for and missing here.
    missing: BTreeSet<(String, String)>,
    /// Owned addresses answered on no interface, as last reported.
    unanswered: BTreeSet<IpAddr>,
}

impl Dataplane {
    fn new(config: Config, state: Arc<DesiredState>, metrics: Arc<Metrics>) -> Self {
        let announcer = Announcer::new(config.announce);
        Self {
            config,
            state,
            liveness: Arc::new(Liveness::everyone()),
            gossip_open: true,
            taken_over: BTreeSet::new(),
            metrics,
            owned: Arc::new(RwLock::new(Arc::new(OwnedSet::default()))),
            workers: BTreeMap::new(),
            memberships: Memberships::new(),
            announcer,
            reported: BTreeSet::new(),
            missing: BTreeSet::new(),
            unanswered: BTreeSet::new(),
        }
    }

    /// Brings sockets, memberships and announcements in line with the state and the
    /// interfaces. At startup an unreadable interface list and a packet socket that cannot be
    /// opened (no CAP_NET_RAW) are fatal; nothing in the desired state ever is. Other problems
    /// are logged (once) and retried on the next rescan, so a flapping interface never stops
    /// the speaker.
    fn reconcile(&mut self, startup: bool) -> Result<(), Error> {
        // Publish first: a released address stops being answered before anything else happens,
        // even when the interface list cannot be read.
        let me = self.config.node_name.as_str();
        let liveness = self.liveness.clone();
        let owned = Arc::new(source::owned(
            &self.state,
            me,
            &|node| liveness.is_live(node),
            liveness.has_quorum(),
        ));
        *self.owned.write().unwrap_or_else(PoisonError::into_inner) = owned.clone();
        let taken_over: BTreeSet<IpAddr> = self
            .state
            .addresses
            .iter()
            .filter(|a| a.node != me && owned.get(a.ip).is_some())
            .map(|a| a.ip)
            .collect();
        for address in self
            .state
            .addresses
            .iter()
            .filter(|a| taken_over.contains(&a.ip) && !self.taken_over.contains(&a.ip))
        {
            self.metrics.takeovers.inc();
            tracing::info!(ip = %address.ip, dead = %address.node, "taking over as backup");
        }
        self.taken_over = taken_over;
        for (family, count) in [(Family::Ipv4, owned.len_v4()), (Family::Ipv6, owned.len_v6())] {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.metrics.owned.get_or_create(&FamilyLabel { family: family.label() }).set(count);
        }

        match link::read_interfaces(&self.config.sys_class_net) {
            Ok(infos) => {
                self.resolved("sysfs");
                self.apply_interfaces(&infos, startup)?;
            }
            Err(source) if startup => {
                return Err(Error::Interfaces { path: self.config.sys_class_net.clone(), source });
            }
            // Keep the interfaces as they are; ownership changes below still apply.
            Err(error) => self.report("sysfs", format!("cannot read the interface list: {error}")),
        }

        let mut groups: BTreeMap<u32, BTreeSet<std::net::Ipv6Addr>> = BTreeMap::new();
        let mut targets = BTreeSet::new();
        for worker in self.workers.values() {
            for ip in owned.allowed_on(&worker.iface) {
                if let IpAddr::V6(v6) = ip {
                    groups
                        .entry(worker.iface.index)
                        .or_default()
                        .insert(packet::solicited_node(v6));
                }
                targets.insert(Target { ip, iface: worker.iface.name.clone() });
            }
        }
        for (index, group, error) in self.memberships.sync(&groups) {
            self.report(
                &format!("join:{index}:{group}"),
                format!("joining {group} on interface index {index}: {error}"),
            );
        }
        self.report_unanswered(&owned, &targets);
        let changes = self.announcer.set_targets(targets, std::time::Instant::now());
        for target in &changes.acquired {
            tracing::info!(ip = %target.ip, iface = %target.iface, "announcing");
        }
        for target in &changes.released {
            tracing::info!(ip = %target.ip, iface = %target.iface, "released");
        }
        Ok(())
    }

    /// Opens and closes packet sockets to match the interface plan. Only the classes this node
    /// may announce for name interfaces here; one of them naming an interface this node lacks
    /// means its addresses are not answered on that interface (reported per class, counted in
    /// `missing_interfaces`), and every other address keeps being answered.
    fn apply_interfaces(&mut self, infos: &[InterfaceInfo], startup: bool) -> Result<(), Error> {
        let me = self.config.node_name.as_str();
        let plan = interfaces::plan(infos, &self.config.exclude, &self.state.named_interfaces(me));
        let mut missing: BTreeSet<(String, String)> = BTreeSet::new();
        for (class, spec) in self.state.classes_of(me) {
            for iface in spec.interfaces.iter().filter(|i| plan.missing.contains(*i)) {
                missing.insert((class.to_owned(), iface.clone()));
            }
        }
        let before: Vec<(String, String)> = self.missing.iter().cloned().collect();
        for (class, iface) in before.into_iter().filter(|m| !missing.contains(m)) {
            tracing::info!(class = %class, iface = %iface, "interface named by the class exists now");
            self.metrics.missing_interfaces.remove(&ClassIface { class, iface });
        }
        for (class, iface) in missing.iter().filter(|m| !self.missing.contains(*m)) {
            tracing::warn!(
                class = %class,
                iface = %iface,
                "the class names an interface this node lacks: its addresses are not answered \
                 on it here (the others are)"
            );
            self.metrics
                .missing_interfaces
                .get_or_create(&ClassIface { class: class.clone(), iface: iface.clone() })
                .set(1);
        }
        self.missing = missing;
        if let Some(sink) = &self.config.problems {
            let problems = plan.problems(
                self.state.classes_of(me).into_iter().map(|(c, s)| (c, s.interfaces.as_slice())),
            );
            sink.send_if_modified(|current| {
                let changed = current.as_ref() != Some(&problems);
                if changed {
                    *current = Some(problems);
                }
                changed
            });
        }
        for name in &plan.unusable {
            self.report(
                &format!("unusable:{name}"),
                format!("interface {name} is down or has no MAC"),
            );
        }
        if plan.ifaces.is_empty() {
            self.report(
                "none",
                "no interface to answer on: none is up, broadcast-capable and not excluded"
                    .to_owned(),
            );
        } else {
            self.resolved("none");
        }

        self.workers.retain(|name, worker| {
            let keep = worker.alive.load(Ordering::Relaxed)
                && plan.ifaces.get(name) == Some(&worker.iface);
            if !keep {
                tracing::info!(iface = %name, "closing interface");
            }
            keep
        });
        for (name, iface) in &plan.ifaces {
            if self.workers.contains_key(name) {
                continue;
            }
            match self.start_worker(iface) {
                Ok(worker) => {
                    tracing::info!(iface = %name, mac = %iface.mac, automatic = iface.automatic, "listening");
                    self.resolved(&format!("open:{name}"));
                    self.resolved(&format!("unusable:{name}"));
                    self.workers.insert(name.clone(), worker);
                }
                Err(error) if startup => return Err(error.into()),
                Err(error) => {
                    self.metrics
                        .link_errors
                        .get_or_create(&IfaceLabel { iface: name.clone() })
                        .inc();
                    self.report(&format!("open:{name}"), error_chain(&error));
                }
            }
        }
        self.metrics.interfaces.set(i64::try_from(self.workers.len()).unwrap_or(i64::MAX));
        Ok(())
    }

    fn start_worker(&self, iface: &Iface) -> Result<Worker, LinkError> {
        let (tx, rx) = link::open(iface, READ_TIMEOUT)?;
        let tx: SharedTx = Arc::new(Mutex::new(tx));
        let stop = Arc::new(AtomicBool::new(false));
        let alive = Arc::new(AtomicBool::new(true));
        let serve_loop = ServeLoop {
            iface: iface.clone(),
            tx: tx.clone(),
            owned: self.owned.clone(),
            metrics: self.metrics.clone(),
            stop: stop.clone(),
        };
        let thread_alive = alive.clone();
        std::thread::Builder::new()
            .name(format!("rx-{}", iface.name))
            .spawn(move || {
                serve_loop.run(rx);
                thread_alive.store(false, Ordering::Relaxed);
            })
            .map_err(|source| LinkError::Open { iface: iface.name.clone(), source })?;
        Ok(Worker { iface: iface.clone(), tx, stop, alive })
    }

    /// Sends the announcements due at `now`: both gratuitous ARP forms for IPv4, an unsolicited
    /// advertisement for IPv6.
    fn announce_due(&mut self, now: std::time::Instant) {
        for target in self.announcer.due(now) {
            let Some(worker) = self.workers.get(&target.iface) else {
                continue;
            };
            let mac = worker.iface.mac;
            let frames: Vec<Vec<u8>> = match target.ip {
                IpAddr::V4(ip) => vec![
                    packet::garp_request(mac, ip).to_vec(),
                    packet::garp_reply(mac, ip).to_vec(),
                ],
                IpAddr::V6(ip) => vec![packet::unsolicited_advert(mac, ip).to_vec()],
            };
            let family = Family::of(target.ip);
            let mut tx = worker.tx.lock().unwrap_or_else(PoisonError::into_inner);
            for frame in frames {
                match tx.send(&frame) {
                    Ok(()) => Metrics::count(&self.metrics.gratuitous, &target.iface, family),
                    Err(error) => {
                        self.metrics
                            .link_errors
                            .get_or_create(&IfaceLabel { iface: target.iface.clone() })
                            .inc();
                        tracing::warn!(ip = %target.ip, iface = %target.iface, error = %error_chain(&error), "announcement not sent");
                    }
                }
            }
            tracing::debug!(ip = %target.ip, iface = %target.iface, "announced");
        }
    }

    /// Counts, logs and shows on `/readyz` the owned addresses no open interface may answer
    /// (their class's interfaces are missing or down on this node).
    fn report_unanswered(&mut self, owned: &OwnedSet, targets: &BTreeSet<Target>) {
        let answered: BTreeSet<IpAddr> = targets.iter().map(|t| t.ip).collect();
        let unanswered: BTreeSet<IpAddr> =
            owned.iter().map(|(ip, _)| ip).filter(|ip| !answered.contains(ip)).collect();
        for ip in unanswered.difference(&self.unanswered) {
            let class =
                self.state.addresses.iter().find(|a| a.ip == *ip).and_then(|a| a.class.clone());
            tracing::warn!(
                %ip,
                class = class.as_deref().unwrap_or("-"),
                "owned address not answered on this node: none of its interfaces is usable here"
            );
        }
        self.metrics.unanswered.set(i64::try_from(unanswered.len()).unwrap_or(i64::MAX));
        let notes = self
            .missing
            .iter()
            .map(|(class, iface)| {
                format!("class {class}: interface {iface} does not exist on this node")
            })
            .chain(unanswered.iter().map(|ip| format!("address {ip}: answered on no interface")))
            .collect();
        self.metrics.set_notes(notes);
        self.unanswered = unanswered;
    }

    /// Logs a problem once per key, until [`Dataplane::resolved`] clears the key.
    fn report(&mut self, key: &str, problem: String) {
        if self.reported.insert(key.to_owned()) {
            tracing::warn!(problem = %problem, "data plane degraded; retrying on the next rescan");
        }
    }

    fn resolved(&mut self, key: &str) {
        self.reported.remove(key);
    }
}

/// One interface's receive loop.
pub struct ServeLoop {
    /// The interface.
    pub iface: Iface,
    /// Its sender, for replies.
    pub tx: Arc<Mutex<Box<dyn LinkTx>>>,
    /// What this node owns right now.
    pub owned: Arc<RwLock<Arc<OwnedSet>>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Set to end the loop.
    pub stop: Arc<AtomicBool>,
}

impl ServeLoop {
    /// Receives, decides and answers until stopped or the link fails; a failed link ends the
    /// loop and the next rescan opens a new one.
    pub fn run(self, mut rx: Box<dyn LinkRx>) {
        let name = self.iface.name.as_str();
        while !self.stop.load(Ordering::Relaxed) {
            let frame = match rx.recv() {
                Ok(Some(frame)) => frame,
                Ok(None) => continue,
                Err(error) => {
                    self.metrics
                        .link_errors
                        .get_or_create(&IfaceLabel { iface: name.to_owned() })
                        .inc();
                    tracing::warn!(iface = %name, error = %error_chain(&error), "receive failed; the interface will be reopened");
                    return;
                }
            };
            if let Some(family) = responder::is_request(frame) {
                Metrics::count(&self.metrics.requests, name, family);
            }
            let owned = self.owned.read().unwrap_or_else(PoisonError::into_inner).clone();
            match responder::decide(frame, &owned, &self.iface) {
                Ok(reply) => {
                    let sent = self
                        .tx
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .send(&reply.to_bytes());
                    match sent {
                        Ok(()) => {
                            Metrics::count(&self.metrics.replies, name, reply.family());
                            tracing::debug!(iface = %name, reply = ?reply, "answered");
                        }
                        Err(error) => {
                            self.metrics
                                .link_errors
                                .get_or_create(&IfaceLabel { iface: name.to_owned() })
                                .inc();
                            tracing::warn!(iface = %name, error = %error_chain(&error), "reply not sent");
                        }
                    }
                }
                Err(reason) => {
                    self.metrics.count_drop(name, reason);
                    tracing::trace!(iface = %name, reason = reason.label(), "not answered");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use pnet_base::MacAddr;

    use super::*;
    use crate::link::MemoryLink;
    use crate::responder::{DropReason, Scope};

    #[test]
    fn serve_loop_answers_counts_and_stops() {
        let link = MemoryLink::new(Duration::from_millis(5));
        let iface = Iface {
            name: "eth0".into(),
            index: 2,
            mac: MacAddr(2, 0, 0, 0, 0, 0x0a),
            automatic: true,
        };
        let vip = Ipv4Addr::new(192, 0, 2, 10);
        let owned =
            Arc::new(RwLock::new(Arc::new(OwnedSet::new([(IpAddr::V4(vip), Scope::Automatic)]))));
        let metrics = Arc::new(Metrics::new());
        let stop = Arc::new(AtomicBool::new(false));
        let serve = ServeLoop {
            iface: iface.clone(),
            tx: Arc::new(Mutex::new(Box::new(link.tx))),
            owned: owned.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
        };
        let rx = link.rx;
        let thread = std::thread::spawn(move || serve.run(Box::new(rx)));

        let client = MacAddr(2, 0, 0, 0, 0, 1);
        let client_ip = Ipv4Addr::new(192, 0, 2, 1);
        link.inject.send(packet::arp_request(client, client_ip, vip).to_vec()).expect("inject");
        let reply = link.sent.recv_timeout(Duration::from_secs(10)).expect("a reply");
        assert_eq!(reply, packet::arp_reply(iface.mac, vip, client, client_ip).to_vec());

        // Released: the very next request is not answered.
        *owned.write().expect("lock") = Arc::new(OwnedSet::default());
        link.inject.send(packet::arp_request(client, client_ip, vip).to_vec()).expect("inject");
        link.inject.send(vec![0; 3]).expect("inject");
        // Closing the link ends the loop after the queued frames: no timing involved.
        drop(link.inject);
        thread.join().expect("serve loop ends");
        assert!(!stop.load(Ordering::Relaxed));
        assert!(link.sent.try_recv().is_err());

        let text = metrics.encode();
        assert!(
            text.contains(r#"requests_received_total{iface="eth0",family="ipv4"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"replies_sent_total{iface="eth0",family="ipv4"} 1"#), "{text}");
        assert!(
            text.contains(&format!(r#"reason="{}"}} 1"#, DropReason::NotOurs.label())),
            "{text}"
        );
        assert!(
            text.contains(&format!(r#"reason="{}"}} 1"#, DropReason::Malformed.label())),
            "{text}"
        );
    }
}
