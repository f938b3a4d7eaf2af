//! The Kubernetes source: watches the module's children (`SDNInternalL2LBService`, every
//! namespace) and classes (`MetalLoadBalancerClass`) and publishes the desired state they
//! describe; optionally also watches the speaker pods of its own namespace and feeds their
//! node addresses to gossip as peers.
//!
//! ```text
//!  watcher(children) ─┐                    Mirror<AddressSpec> ─┐
//!  watcher(classes)  ─┼─► ready_chunks ─►  Mirror<ClassSpec>   ─┴─► desired_state ─► Updates
//!  watcher(pods)     ─┘                    Mirror<IpAddr>      ───► peers ─► gossip seeds
//! ```
//!
//! Nothing is published before the first complete list of both children and classes: a
//! speaker that announced from half a list would withdraw addresses it owns. After that, watch
//! errors (API restart, expired resource version, network loss) are counted and logged, the
//! watchers relist with backoff, and the last view stays published meanwhile; a relist
//! replaces the view at once when complete (see [`view::Mirror`]). The backoff is capped at
//! [`RetryBackoff::MAX`] so a speaker follows changes within seconds of the API server's
//! return (kube's default grows to 30 s during an outage, which a killed and restarted API
//! server showed as a 35 s delay).

pub mod condition;
pub mod view;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use std::time::Duration;

use futures::{Stream, StreamExt, stream};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Api, Client};
use metallb_api::names;
use tokio::sync::watch;

use self::condition::{Child, ConditionFeed};
use self::view::{
    Applied, ChildEntry, ChildView, ClassEntry, ClassView, Conflict, IgnoreReason, Ignored, Mirror,
    PeerPodView, Project,
};
use super::{Source, SourceError, Updates};
use crate::error_chain;
use crate::metrics::{KindLabel, Metrics, ReasonLabel};

/// Events handled before the state is recomputed once: a relist of 10,000 children arrives
/// as 10,000 events in a burst, and recomputing the whole state after each would be
/// quadratic. 1,024 keeps a batch's latency far below a millisecond of work.
const BATCH: usize = 1_024;

/// Where discovered gossip peers go.
#[derive(Debug)]
pub struct PeerFeed {
    /// The gossip port every speaker listens on (the DaemonSet gives all the same).
    pub port: u16,
    /// Receives the sorted peer list on every change.
    pub updates: watch::Sender<Vec<SocketAddr>>,
}

/// Desired state from the Kubernetes API.
#[derive(Clone)]
pub struct KubernetesSource {
    client: Client,
    namespace: String,
    peers: Option<Arc<PeerFeed>>,
    conditions: Option<Arc<ConditionFeed>>,
}

impl std::fmt::Debug for KubernetesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSource")
            .field("namespace", &self.namespace)
            .field("peers", &self.peers)
            .field("conditions", &self.conditions)
            .finish_non_exhaustive()
    }
}

impl KubernetesSource {
    /// A source reading through `client`; speaker pods are looked up in `namespace` when
    /// `peers` is given.
    pub fn new(client: Client, namespace: impl Into<String>, peers: Option<PeerFeed>) -> Self {
        Self { client, namespace: namespace.into(), peers: peers.map(Arc::new), conditions: None }
    }

    /// Also sends the children that concern `feed.node` to `feed`, for the condition writer
    /// ([`condition::write`]).
    #[must_use]
    pub fn with_conditions(mut self, feed: ConditionFeed) -> Self {
        self.conditions = Some(Arc::new(feed));
        self
    }
}

/// One watcher item, by kind.
enum Update {
    Children(watcher::Result<Event<ChildView>>),
    Classes(watcher::Result<Event<ClassView>>),
    Pods(watcher::Result<Event<PeerPodView>>),
}

/// The mirrors and what was last published from them.
#[derive(Default)]
struct Cluster {
    children: Mirror<ChildEntry>,
    classes: Mirror<ClassEntry>,
    pods: Mirror<IpAddr>,
    conflicts: Vec<Conflict>,
    ignored: Vec<Ignored>,
}

/// Which outputs a batch of events touched.
#[derive(Default)]
struct Touched {
    state: bool,
    peers: bool,
}

impl Cluster {
    fn apply(&mut self, update: Update, metrics: &Metrics, touched: &mut Touched) {
        match update {
            Update::Children(item) => {
                touched.state |= apply(&mut self.children, item, names::api::CHILD_KIND, metrics);
            }
            Update::Classes(item) => {
                touched.state |= apply(&mut self.classes, item, names::api::CLASS_KIND, metrics);
            }
            Update::Pods(item) => touched.peers |= apply(&mut self.pods, item, "Pod", metrics),
        }
    }
}

/// Applies one item to `mirror`; returns whether its content changed.
pub(crate) fn apply<K: Project>(
    mirror: &mut Mirror<K::Entry>,
    item: watcher::Result<Event<K>>,
    kind: &'static str,
    metrics: &Metrics,
) -> bool {
    let event = match item {
        Ok(event) => event,
        Err(error) => {
            metrics.watch_errors.get_or_create(&KindLabel { kind }).inc();
            tracing::warn!(
                kind,
                error = %error_chain(&error),
                "watch failed; relisting with backoff, announcing from the last view meanwhile"
            );
            return false;
        }
    };
    match mirror.apply(event) {
        Applied::Unchanged => false,
        Applied::Changed => true,
        Applied::Synced => {
            tracing::info!(kind, objects = mirror.entries().len(), "initial list complete");
            true
        }
        Applied::Skipped { key, reason } => {
            tracing::warn!(kind, object = %key, %reason, "object skipped");
            true
        }
    }
}

/// The watchers' retry delays: 250 ms doubling up to [`RetryBackoff::MAX`], back to the start
/// after any successful item. No jitter: each speaker's watchers fail and retry on their own
/// schedule, and a few requests per second from each node are nothing to an API server.
#[derive(Debug, Clone)]
pub struct RetryBackoff {
    next: Duration,
}

impl RetryBackoff {
    /// The first delay.
    pub const MIN: Duration = Duration::from_millis(250);
    /// The longest delay: how late at most a speaker notices that the API server is back.
    pub const MAX: Duration = Duration::from_secs(2);
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self { next: Self::MIN }
    }
}

impl Iterator for RetryBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        Some(delay)
    }
}

impl Backoff for RetryBackoff {
    fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

fn watch<K: Project + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static>(
    api: Api<K>,
    config: watcher::Config,
    wrap: fn(watcher::Result<Event<K>>) -> Update,
) -> impl Stream<Item = Update> + Send
where
    K::DynamicType: Default,
{
    watch_stream(api, config).backoff(RetryBackoff::default()).map(wrap)
}

impl Source for KubernetesSource {
    async fn run(self, updates: Updates, metrics: Arc<Metrics>) -> Result<(), SourceError> {
        let children = watch(
            Api::<ChildView>::all(self.client.clone()),
            watcher::Config::default(),
            Update::Children,
        );
        let classes = watch(
            Api::<ClassView>::all(self.client.clone()),
            watcher::Config::default(),
            Update::Classes,
        );
        let pods = match &self.peers {
            Some(_) => watch(
                Api::<PeerPodView>::namespaced(self.client.clone(), &self.namespace),
                watcher::Config::default().labels(&format!(
                    "{}={}",
                    names::labels::APP,
                    names::module::SPEAKER_APP
                )),
                Update::Pods,
            )
            .boxed(),
            None => stream::pending().boxed(),
        };
        let mut items =
            stream::select_all([children.boxed(), classes.boxed(), pods]).ready_chunks(BATCH);
        let mut cluster = Cluster::default();
        loop {
            let batch = tokio::select! {
                batch = items.next() => batch.ok_or(SourceError::Stopped("kubernetes"))?,
                () = updates.closed() => return Ok(()),
            };
            let mut touched = Touched::default();
            for update in batch {
                cluster.apply(update, &metrics, &mut touched);
            }
            if touched.state && cluster.children.is_synced() && cluster.classes.is_synced() {
                publish(&mut cluster, &updates, &metrics);
                if let Some(feed) = &self.conditions {
                    send_children(&cluster, feed);
                }
            }
            if touched.peers
                && let Some(feed) = &self.peers
            {
                let peers = view::peers(&cluster.pods, feed.port);
                feed.updates.send_if_modified(|current| {
                    let changed = *current != peers;
                    if changed {
                        tracing::info!(peers = peers.len(), "gossip peers from speaker pods");
                        *current = peers;
                    }
                    changed
                });
            }
        }
    }
}

fn publish(cluster: &mut Cluster, updates: &Updates, metrics: &Metrics) {
    let view::Derived { state, conflicts, ignored } =
        view::desired_state(&cluster.children, &cluster.classes);
    if ignored != cluster.ignored {
        for child in ignored.iter().filter(|i| !cluster.ignored.contains(i)) {
            tracing::warn!(
                child = %child.key,
                ip = %child.ip,
                reason = child.reason.label(),
                "child not announced: the speaker announces only children the module wrote, \
                 with an IP inside their class's pool"
            );
        }
        for reason in IgnoreReason::ALL {
            let count = ignored.iter().filter(|i| i.reason == reason).count();
            metrics
                .ignored_children
                .get_or_create(&ReasonLabel { reason: reason.label() })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        cluster.ignored = ignored;
    }
    if conflicts != cluster.conflicts {
        for conflict in &conflicts {
            tracing::warn!(
                ip = %conflict.ip,
                kept = %conflict.kept,
                ignored = %conflict.ignored,
                "two children place one IP differently; using the first by name until the hooks settle"
            );
        }
        cluster.conflicts = conflicts;
    }
    let unchanged = updates.borrow().as_deref() == Some(&state);
    if unchanged {
        return;
    }
    tracing::info!(
        addresses = state.addresses.len(),
        classes = state.classes.len(),
        "desired state updated"
    );
    metrics.source_loads.inc();
    updates.send_replace(Some(Arc::new(state)));
}

/// Sends the children that concern the feed's node, if they changed.
fn send_children(cluster: &Cluster, feed: &ConditionFeed) {
    let ignored: std::collections::BTreeSet<&str> =
        cluster.ignored.iter().map(|i| i.key.as_str()).collect();
    let manager = condition::manager(&feed.node);
    let children: Vec<Child> = cluster
        .children
        .entries()
        .iter()
        .filter(|(_, e)| e.address.node == feed.node || e.status_managers.contains(&manager))
        .map(|(key, entry)| {
            let (namespace, name) = key.split_once('/').unwrap_or(("", key));
            Child {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                entry: entry.clone(),
                announced: !ignored.contains(key.as_str()),
            }
        })
        .collect();
    feed.updates.send_if_modified(|current| {
        let changed = current.as_deref() != Some(&children);
        if changed {
            *current = Some(Arc::new(children));
        }
        changed
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_to_a_cap_and_reset() {
        let mut backoff = RetryBackoff::default();
        let delays: Vec<u128> = backoff.by_ref().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(RetryBackoff::MIN));
        // However long the outage, the delay stays at the cap.
        assert!(RetryBackoff::default().take(10_000).all(|d| d <= RetryBackoff::MAX));
    }
}
