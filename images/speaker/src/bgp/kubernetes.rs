//! BGP mode's Kubernetes source: watches the announcements (every namespace, label
//! `module=metallb`), the peers, the pools and the password Secret copies of the speaker's
//! namespace, and publishes this node's reduced state (`docs/internal/bgp-objects.md`).
//!
//! ```text
//!  watcher(announcements) ─ keep_node ─┐                 Mirror<Announcement> ─┐
//!  watcher(peers)                     ─┼─► ready_chunks ─► Mirror<PeerSpec>     ─┼─► input ─► reduce ─► Feed
//!  watcher(pools)                     ─┤                 Mirror<Pool>          ─┤
//!  watcher(secrets, d8-metallb)       ─┘                 Mirror<password>      ─┘
//! ```
//!
//! The watchers are the L2 source's: lean projections (an object's spec is read as JSON and
//! converted here, so one malformed object is skipped and counted, never a failed list),
//! relist-safe [`Mirror`]s, and [`RetryBackoff`] (250 ms doubling to 2 s, reset after every
//! successful item) so the speaker follows within seconds of an API server's return. Nothing is
//! published before the first complete list of all four kinds; afterwards an outage keeps the
//! last state announced. Announcements' routes for other nodes are dropped as the events
//! arrive, so 10,000 announcements over 100 nodes cost this node only its own routes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures::{Stream, StreamExt, stream};
use ipnet::IpNet;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Api, Client, Resource};
use metallb_api::announcement::SDNInternalBGPAnnouncement;
use metallb_api::bgp::{
    MetalLoadBalancerBGPPeer, MetalLoadBalancerBGPPeerSpec, MetalLoadBalancerPool,
};
use metallb_api::names::{self, labels, module};
use metallb_planner::pool::Pool;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;

use super::Feed;
use super::reduce::{self, BfdIntervals, Ignored, Input, Password, Peer, Route};
use crate::metrics::Metrics;
use crate::source::kubernetes::RetryBackoff;
use crate::source::kubernetes::view::{Extracted, Key, Mirror, Project};

/// Events handled before the state is recomputed once (as in the L2 source: a relist of
/// 10,000 announcements is one burst, and recomputing after each event would be quadratic).
const BATCH: usize = 1_024;

/// Kind names, for `watch_errors_total{kind}` and logs.
const SECRET_KIND: &str = "Secret";

/// The fields of an `SDNInternalBGPAnnouncement` the speaker reads; the spec is converted by
/// [`Project::project`], so that a malformed one is counted instead of failing the list.
#[derive(Resource, Debug, Clone, Deserialize)]
#[resource(inherit = "SDNInternalBGPAnnouncement")]
pub struct AnnouncementView {
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The spec, as sent.
    #[serde(default)]
    pub spec: Value,
}

/// The fields of a `MetalLoadBalancerBGPPeer` the speaker reads.
#[derive(Resource, Debug, Clone, Deserialize)]
#[resource(inherit = "MetalLoadBalancerBGPPeer")]
pub struct PeerView {
    /// The name.
    pub metadata: ObjectMeta,
    /// The spec, as sent.
    #[serde(default)]
    pub spec: Value,
    /// The status; after [`keep_own_entry`] only this node's session entry, if any.
    #[serde(default)]
    pub status: Value,
}

/// The fields of a `MetalLoadBalancerPool` the speaker reads.
#[derive(Resource, Debug, Clone, Deserialize)]
#[resource(inherit = "MetalLoadBalancerPool")]
pub struct PoolView {
    /// The name.
    pub metadata: ObjectMeta,
    /// The spec, as sent.
    #[serde(default)]
    pub spec: Value,
}

/// A password Secret copy: only its `password` key is kept.
#[derive(Resource, Debug, Clone, Deserialize)]
#[resource(inherit = "Secret")]
pub struct SecretView {
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The data (base64 in JSON, bytes here).
    #[serde(default)]
    pub data: BTreeMap<String, ByteString>,
}

/// One route of an announcement, as this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncedRoute {
    /// The route.
    pub route: Route,
    /// The announcing nodes (after [`keep_node`], only this node).
    pub nodes: Vec<String>,
}

/// An announcement, or why it cannot be read.
pub type AnnouncementEntry = Result<Vec<AnnouncedRoute>, String>;

/// What the mirror keeps of a peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerEntry {
    /// Its spec, or why it cannot be read.
    pub spec: Result<MetalLoadBalancerBGPPeerSpec, String>,
    /// Whether its `status.sessions` holds an entry of this node (after [`keep_own_entry`]).
    pub own_entry: bool,
}

/// A pool's addresses, or why they cannot be read.
pub type PoolEntry = Result<Pool, String>;

/// A Secret copy's password (`None`: no usable `password` key).
pub type SecretEntry = Option<String>;

/// The announcement's spec fields the speaker reads.
#[derive(Deserialize)]
struct AnnouncementSpecView {
    pool: String,
    ip: String,
    #[serde(default)]
    routes: Vec<RouteView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouteView {
    prefix: String,
    #[serde(default)]
    communities: Vec<String>,
    #[serde(default)]
    large_communities: Vec<String>,
    #[serde(default)]
    local_pref: Option<u32>,
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    nodes: Vec<String>,
}

impl Project for AnnouncementView {
    type Entry = AnnouncementEntry;

    fn project(&self) -> Extracted<AnnouncementEntry> {
        Extracted::Entry(announcement(&self.spec))
    }
}

fn announcement(spec: &Value) -> AnnouncementEntry {
    let spec = AnnouncementSpecView::deserialize(spec).map_err(|e| format!("spec: {e}"))?;
    let ip: IpAddr =
        spec.ip.parse().map_err(|_| format!("spec.ip {:?} is not an IP address", spec.ip))?;
    spec.routes
        .into_iter()
        .map(|r| {
            let prefix: IpNet = r
                .prefix
                .parse()
                .map_err(|_| format!("a route's prefix {:?} is not a CIDR", r.prefix))?;
            let route = Route {
                pool: spec.pool.clone(),
                ip,
                prefix,
                peers: r.peers,
                communities: r.communities,
                large_communities: r.large_communities,
                local_pref: r.local_pref,
            };
            Ok(AnnouncedRoute { route, nodes: r.nodes })
        })
        .collect()
}

impl Project for PeerView {
    type Entry = PeerEntry;

    fn project(&self) -> Extracted<PeerEntry> {
        let spec =
            MetalLoadBalancerBGPPeerSpec::deserialize(&self.spec).map_err(|e| format!("spec: {e}"));
        let own_entry = self
            .status
            .get("sessions")
            .and_then(Value::as_array)
            .is_some_and(|sessions| !sessions.is_empty());
        Extracted::Entry(PeerEntry { spec, own_entry })
    }
}

#[derive(Deserialize)]
struct PoolSpecView {
    addresses: Vec<String>,
}

impl Project for PoolView {
    type Entry = PoolEntry;

    fn project(&self) -> Extracted<PoolEntry> {
        Extracted::Entry(
            PoolSpecView::deserialize(&self.spec)
                .map(|spec| Pool::parse(&spec.addresses))
                .map_err(|e| format!("spec: {e}")),
        )
    }
}

impl Project for SecretView {
    type Entry = SecretEntry;

    fn project(&self) -> Extracted<SecretEntry> {
        let password = self.data.get(names::bgp::PASSWORD_KEY);
        Extracted::Entry(password.and_then(|p| String::from_utf8(p.0.clone()).ok()))
    }
}

/// Drops the routes of an announcement that do not name `node`, and the other nodes of those
/// that do: what is left is all this speaker needs.
pub fn keep_node(view: &mut AnnouncementView, node: &str) {
    let Some(routes) = view.spec.get_mut("routes").and_then(Value::as_array_mut) else { return };
    let names = |route: &Value| -> bool {
        route
            .get("nodes")
            .and_then(Value::as_array)
            .is_some_and(|nodes| nodes.iter().any(|n| n.as_str() == Some(node)))
    };
    routes.retain(names);
    for route in routes {
        route["nodes"] = Value::Array(vec![Value::String(node.to_owned())]);
    }
}

/// Keeps of a peer's status only the session entries of `node`: whether this node has an
/// entry is all the speaker needs (to release a stale one), and other nodes' entries change
/// every few seconds without concerning it.
pub fn keep_own_entry(view: &mut PeerView, node: &str) {
    let mut sessions = match view.status.get_mut("sessions").map(Value::take) {
        Some(Value::Array(sessions)) => sessions,
        _ => Vec::new(),
    };
    sessions.retain(|s| s.get("node").and_then(Value::as_str) == Some(node));
    view.status =
        if sessions.is_empty() { Value::Null } else { serde_json::json!({ "sessions": sessions }) };
}

/// The peers holding an entry of this node in their status.
pub fn own_entries(peers: &BTreeMap<Key, PeerEntry>) -> BTreeSet<String> {
    peers.iter().filter(|(_, p)| p.own_entry).map(|(name, _)| name.clone()).collect()
}

/// The mirrored objects, by key (`namespace/name` or `name`).
#[derive(Debug, Default)]
pub struct Objects {
    /// Announcements.
    pub announcements: Mirror<AnnouncementEntry>,
    /// Peers.
    pub peers: Mirror<PeerEntry>,
    /// Pools.
    pub pools: Mirror<PoolEntry>,
    /// Secret copies of the speaker's namespace.
    pub secrets: Mirror<SecretEntry>,
}

impl Objects {
    fn synced(&self) -> bool {
        self.announcements.is_synced()
            && self.peers.is_synced()
            && self.pools.is_synced()
            && self.secrets.is_synced()
    }
}

/// Where this node is and where its Secret copies live.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// This node.
    pub node: &'a str,
    /// The speaker's namespace (`d8-metallb`).
    pub namespace: &'a str,
}

/// An object that could not be read, for the log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unreadable {
    /// Its kind.
    pub kind: &'static str,
    /// Its key.
    pub key: Key,
    /// Why.
    pub why: String,
}

/// This node's input from the mirrored objects (pure), and the objects that could not be read:
/// the routes naming this node, the peers they name (with this node's source address and the
/// password from the Secret copy), and every pool.
pub fn input(
    scope: &Scope<'_>,
    announcements: &BTreeMap<Key, AnnouncementEntry>,
    peers: &BTreeMap<Key, PeerEntry>,
    pools: &BTreeMap<Key, PoolEntry>,
    secrets: &BTreeMap<Key, SecretEntry>,
) -> (Input, BTreeSet<Unreadable>) {
    let mut input = Input { node: scope.node.to_owned(), ..Input::default() };
    let mut unreadable = BTreeSet::new();
    let mut malformed = |kind: &'static str, key: &Key, why: String| {
        unreadable.insert(Unreadable { kind, key: key.clone(), why });
    };
    for (key, entry) in announcements {
        match entry {
            Ok(routes) => input.routes.extend(
                routes
                    .iter()
                    .filter(|r| r.nodes.iter().any(|n| n == scope.node))
                    .map(|r| r.route.clone()),
            ),
            Err(why) => malformed(names::api::BGP_ANNOUNCEMENT_KIND, key, why.clone()),
        }
    }
    for (name, entry) in pools {
        match entry {
            Ok(pool) => {
                input.pools.insert(name.clone(), pool.clone());
            }
            Err(why) => malformed(names::api::POOL_KIND, name, why.clone()),
        }
    }
    // Only the peers this node's routes name get a session (the contract: a peer no route
    // names has its session closed); the others are other nodes' business.
    let named: BTreeSet<&str> =
        input.routes.iter().flat_map(|r| r.peers.iter().map(String::as_str)).collect();
    for (name, entry) in peers.iter().filter(|(name, _)| named.contains(name.as_str())) {
        match entry.spec.as_ref().map_err(Clone::clone).and_then(|spec| peer(scope, spec, secrets))
        {
            Ok(peer) => {
                input.peers.insert(name.clone(), peer);
            }
            Err(why) => malformed(names::api::BGP_PEER_KIND, name, why),
        }
    }
    if !unreadable.is_empty() {
        input.ignored.insert(Ignored::Malformed, unreadable.len());
    }
    (input, unreadable)
}

/// One peer for this node: its source address entry, its password from the Secret copy.
fn peer(
    scope: &Scope<'_>,
    spec: &MetalLoadBalancerBGPPeerSpec,
    secrets: &BTreeMap<Key, SecretEntry>,
) -> Result<Peer, String> {
    let address: IpAddr = spec
        .peer_address
        .parse()
        .map_err(|_| format!("spec.peerAddress {:?} is not an IP address", spec.peer_address))?;
    let router_id = match &spec.router_id {
        None => None,
        Some(text) => Some(
            text.parse::<Ipv4Addr>()
                .map_err(|_| format!("spec.routerID {text:?} is not an IPv4 address"))?,
        ),
    };
    let source_address = match spec.source_addresses.iter().find(|s| s.node_name == scope.node) {
        None => None,
        Some(entry) => Some(entry.address.parse::<IpAddr>().map_err(|_| {
            format!(
                "spec.sourceAddresses of {} {:?} is not an IP address",
                scope.node, entry.address
            )
        })?),
    };
    let password = match &spec.password_secret_ref {
        None => Password::None,
        Some(reference) => {
            let copy = names::bgp::password_copy_name(&reference.namespace, &reference.name);
            match secrets.get(&format!("{}/{copy}", scope.namespace)) {
                Some(Some(password)) => Password::Known(password.clone()),
                _ => Password::Missing,
            }
        }
    };
    let bfd = spec.bfd.as_ref().map(|b| BfdIntervals {
        receive_interval: b.receive_interval.unwrap_or(names::bgp::DEFAULT_BFD_INTERVAL_MS),
        transmit_interval: b.transmit_interval.unwrap_or(names::bgp::DEFAULT_BFD_INTERVAL_MS),
        detect_multiplier: u8::try_from(
            b.detect_multiplier.unwrap_or(names::bgp::DEFAULT_BFD_DETECT_MULTIPLIER),
        )
        .unwrap_or(u8::MAX),
        passive_mode: b.passive_mode.unwrap_or(false),
    });
    Ok(Peer {
        address,
        port: spec.peer_port.unwrap_or(names::bgp::DEFAULT_PEER_PORT),
        peer_asn: spec.peer_asn,
        my_asn: spec.my_asn,
        router_id,
        hold_time: spec.hold_time.clone(),
        source_address,
        password,
        bfd,
    })
}

/// One watcher item, by kind.
enum Update {
    Announcements(watcher::Result<Event<AnnouncementView>>),
    Peers(watcher::Result<Event<PeerView>>),
    Pools(watcher::Result<Event<PoolView>>),
    Secrets(watcher::Result<Event<SecretView>>),
}

fn watch<K: Project + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send
where
    K::DynamicType: Default,
{
    watch_stream(api, config).backoff(RetryBackoff::default())
}

/// Desired state of BGP mode from the Kubernetes API.
pub struct Watch {
    /// The client.
    pub client: Client,
    /// This node.
    pub node: String,
    /// The speaker's namespace, where the password Secret copies are.
    pub namespace: String,
    /// Receives the peers holding an entry of this node in their status, for the status
    /// writer to release the entries it no longer owns (after a restart, say).
    pub own_entries: watch::Sender<BTreeSet<String>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("node", &self.node)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// Follows the objects and publishes into `feed` until its receiver is gone.
    pub async fn follow(self, feed: Feed, metrics: Arc<Metrics>) {
        let module = format!("{}={}", labels::MODULE, module::NAME);
        let node = self.node.clone();
        let announcements = watch(
            Api::<AnnouncementView>::all(self.client.clone()),
            watcher::Config::default().labels(&module),
        )
        .map(move |item| item.map(|event| event.modify(|view| keep_node(view, &node))))
        .map(Update::Announcements);
        let node = self.node.clone();
        let peers = watch(Api::<PeerView>::all(self.client.clone()), watcher::Config::default())
            .map(move |item| item.map(|event| event.modify(|view| keep_own_entry(view, &node))))
            .map(Update::Peers);
        let pools = watch(Api::<PoolView>::all(self.client.clone()), watcher::Config::default())
            .map(Update::Pools);
        let copies = format!("{}=true", labels::BGP_PASSWORD_COPY);
        let secrets = watch(
            Api::<SecretView>::namespaced(self.client.clone(), &self.namespace),
            watcher::Config::default().labels(&copies),
        )
        .map(Update::Secrets);
        let mut items = stream::select_all([
            announcements.boxed(),
            peers.boxed(),
            pools.boxed(),
            secrets.boxed(),
        ])
        .ready_chunks(BATCH);
        let mut objects = Objects::default();
        let mut logged = BTreeSet::new();
        loop {
            let batch = tokio::select! {
                batch = items.next() => match batch {
                    Some(batch) => batch,
                    None => return,
                },
                () = feed.closed() => return,
            };
            let mut touched = false;
            for update in batch {
                touched |= match update {
                    Update::Announcements(item) => apply(
                        &mut objects.announcements,
                        item,
                        names::api::BGP_ANNOUNCEMENT_KIND,
                        &metrics,
                    ),
                    Update::Peers(item) => {
                        apply(&mut objects.peers, item, names::api::BGP_PEER_KIND, &metrics)
                    }
                    Update::Pools(item) => {
                        apply(&mut objects.pools, item, names::api::POOL_KIND, &metrics)
                    }
                    Update::Secrets(item) => {
                        apply(&mut objects.secrets, item, SECRET_KIND, &metrics)
                    }
                };
            }
            if touched && objects.synced() {
                self.publish(&objects, &feed, &metrics, &mut logged);
                let own = own_entries(objects.peers.entries());
                self.own_entries.send_if_modified(|current| {
                    let changed = *current != own;
                    if changed {
                        *current = own;
                    }
                    changed
                });
            }
        }
    }

    fn publish(
        &self,
        objects: &Objects,
        feed: &Feed,
        metrics: &Metrics,
        logged: &mut BTreeSet<Unreadable>,
    ) {
        let scope = Scope { node: &self.node, namespace: &self.namespace };
        let (input, unreadable) = input(
            &scope,
            objects.announcements.entries(),
            objects.peers.entries(),
            objects.pools.entries(),
            objects.secrets.entries(),
        );
        for object in unreadable.difference(logged) {
            tracing::warn!(kind = object.kind, object = %object.key, why = %object.why, "object skipped");
        }
        *logged = unreadable;
        let reduced = reduce::reduce(&input);
        feed.send_if_modified(|current| {
            let changed = current.as_deref() != Some(&reduced);
            if changed {
                tracing::info!(
                    peers = reduced.desired.peers.len(),
                    prefixes = reduced.desired.routes.len(),
                    "BGP desired state updated"
                );
                metrics.source_loads.inc();
                *current = Some(Arc::new(reduced));
            }
            changed
        });
    }
}

fn apply<K: Project>(
    mirror: &mut Mirror<K::Entry>,
    item: watcher::Result<Event<K>>,
    kind: &'static str,
    metrics: &Metrics,
) -> bool {
    crate::source::kubernetes::apply(mirror, item, kind, metrics)
}

#[cfg(test)]
mod tests;
