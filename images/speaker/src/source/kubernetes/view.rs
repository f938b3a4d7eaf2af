//! The speaker's view of the cluster: lean projections of the watched objects, mirrors that
//! follow watcher events with relist semantics, and the pure conversion into [`DesiredState`].
//!
//! Projections deserialize only the fields the speaker reads. A child carries a copy of its
//! Service's spec and a pod carries its whole spec; keeping those for 10,000 children would
//! cost megabytes for nothing, and an unknown or malformed field elsewhere in the object can
//! never make a child unreadable.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher::Event;
use metallb_api::child::SDNInternalL2LBService;
use metallb_api::class::MetalLoadBalancerClass;
use metallb_api::names::conditions::NODE_CAN_ANNOUNCE;
use metallb_api::names::{labels, module};
use metallb_planner::pool::{Addr, Pool};
use serde::Deserialize;

use crate::source::{AddressSpec, ClassSpec, DesiredState};

/// The fields of an `SDNInternalL2LBService` the speaker reads.
#[derive(Resource, Debug, Clone, Deserialize)]
#[resource(inherit = "SDNInternalL2LBService")]
pub struct ChildView {
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The class the IP comes from.
    #[serde(default)]
    pub spec: ChildSpecView,
    /// The placement written by the hooks.
    #[serde(default)]
    pub status: Option<ChildStatusView>,
}

/// `spec` of a child, projected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildSpecView {
    /// `spec.metalLoadBalancerClass`.
    #[serde(default)]
    pub metal_load_balancer_class: Option<String>,
}

/// `status` of a child, projected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildStatusView {
    /// The allocated IP.
    #[serde(default)]
    pub ip: Option<String>,
    /// The announcing node.
    #[serde(default)]
    pub node: Option<String>,
    /// Take-over order.
    #[serde(default)]
    pub backup_nodes: Vec<String>,
    /// Every condition, kept raw: only the speakers' `NodeCanAnnounce` is read from it, and a
    /// malformed list written by someone else must not make the child unreadable.
    #[serde(default)]
    pub conditions: serde_json::Value,
}

/// The fields of a `MetalLoadBalancerClass` the speaker reads.
#[derive(Resource, Debug, Clone, Deserialize)]
#[resource(inherit = "MetalLoadBalancerClass")]
pub struct ClassView {
    /// The name.
    pub metadata: ObjectMeta,
    /// The interface list.
    #[serde(default)]
    pub spec: ClassSpecView,
}

/// `spec` of a class, projected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassSpecView {
    /// `spec.addressPool`: a child's IP must lie inside it to be announced.
    #[serde(default)]
    pub address_pool: Vec<String>,
    /// `spec.l2`.
    #[serde(default)]
    pub l2: Option<L2View>,
}

/// `spec.l2` of a class, projected.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct L2View {
    /// `spec.l2.interfaces`.
    #[serde(default)]
    pub interfaces: Vec<String>,
}

/// The fields of a speaker pod the speaker reads: where its gossip socket is.
#[derive(Resource, Debug, Clone, Deserialize)]
#[resource(inherit = "Pod")]
pub struct PeerPodView {
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The node address.
    #[serde(default)]
    pub status: Option<PeerPodStatusView>,
}

/// `status` of a speaker pod, projected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerPodStatusView {
    /// The node's address: the speakers run on the host network, so their gossip sockets
    /// listen there.
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
}

/// `namespace/name` (or `name` for cluster-scoped objects): the mirror key, sorted so that
/// every derived list is deterministic.
pub type Key = String;

fn key(meta: &ObjectMeta) -> Key {
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// What one object contributes, or why it contributes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extracted<T> {
    /// The object's contribution.
    Entry(T),
    /// Nothing yet, legitimately (e.g. a child the hooks have not placed).
    Pending,
    /// The object is malformed; the text says why (logged once per change).
    Invalid(String),
}

/// Objects that can be mirrored.
pub trait Project: Resource {
    /// What the mirror keeps of one object.
    type Entry: Clone + PartialEq;
    /// The object's contribution.
    fn project(&self) -> Extracted<Self::Entry>;
}

/// What the mirror keeps of a child: its address and whether it carries the module's labels
/// (checked when the state is built, so that an unlabelled child is counted, not forgotten),
/// and what the speakers wrote into its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildEntry {
    /// The placement.
    pub address: AddressSpec,
    /// `heritage: deckhouse` and `module: metallb` are both present.
    pub labelled: bool,
    /// Its `NodeCanAnnounce` condition, if any.
    pub condition: Option<ObservedCondition>,
    /// The speakers' field managers (`metallb-speaker/<node>`) owning part of its status by
    /// server-side apply: who may release a condition.
    pub status_managers: Vec<String>,
}

/// A speaker's condition on a child as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedCondition {
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The reason.
    pub reason: String,
    /// The message.
    pub message: String,
    /// When it last changed status.
    pub last_transition_time: String,
    /// Its position in `status.conditions`, for a guarded removal.
    pub index: usize,
}

/// The `NodeCanAnnounce` condition in a raw `status.conditions`, read leniently: a member of
/// the wrong type reads as empty.
fn node_condition(conditions: &serde_json::Value) -> Option<ObservedCondition> {
    let list = conditions.as_array()?;
    let index = list.iter().position(|c| {
        c.get("type").and_then(serde_json::Value::as_str) == Some(NODE_CAN_ANNOUNCE)
    })?;
    let item = &list[index];
    let text = |key: &str| item.get(key).and_then(serde_json::Value::as_str).unwrap_or_default();
    Some(ObservedCondition {
        status: text("status").to_owned(),
        reason: text("reason").to_owned(),
        message: text("message").to_owned(),
        last_transition_time: text("lastTransitionTime").to_owned(),
        index,
    })
}

/// The speakers' managers of the status subresource, applied (not updated), sorted.
fn status_managers(meta: &ObjectMeta) -> Vec<String> {
    let prefix = format!("{}/", module::SPEAKER_STATUS_MANAGER);
    let mut managers: Vec<String> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .filter(|m| m.operation.as_deref() == Some("Apply"))
        .filter_map(|m| m.manager.clone())
        .filter(|m| m.starts_with(&prefix))
        .collect();
    managers.sort_unstable();
    managers.dedup();
    managers
}

/// What the mirror keeps of a class: its interface list and its parsed pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassEntry {
    /// The interface list.
    pub spec: ClassSpec,
    /// The addresses its children may have.
    pub pool: Pool,
}

/// Whether an object carries the labels the module's hooks put on every child.
fn module_labelled(meta: &ObjectMeta) -> bool {
    let Some(present) = &meta.labels else { return false };
    present.get(labels::HERITAGE).map(String::as_str) == Some(labels::HERITAGE_VALUE)
        && present.get(labels::MODULE).map(String::as_str) == Some(module::NAME)
}

/// A child's contribution: one address.
impl Project for ChildView {
    type Entry = ChildEntry;

    fn project(&self) -> Extracted<ChildEntry> {
        let Some(status) = &self.status else { return Extracted::Pending };
        let (Some(ip), Some(node)) = (status.ip.as_deref(), status.node.as_deref()) else {
            return Extracted::Pending;
        };
        if node.is_empty() {
            return Extracted::Pending;
        }
        let Ok(ip) = ip.parse::<IpAddr>() else {
            return Extracted::Invalid(format!("status.ip {ip:?} is not an IP address"));
        };
        Extracted::Entry(ChildEntry {
            address: AddressSpec {
                ip,
                class: self.spec.metal_load_balancer_class.clone(),
                node: node.to_owned(),
                backups: status.backup_nodes.iter().filter(|b| !b.is_empty()).cloned().collect(),
            },
            labelled: module_labelled(&self.metadata),
            condition: node_condition(&status.conditions),
            status_managers: status_managers(&self.metadata),
        })
    }
}

/// A class's contribution: its interface list and pool. Pool entries that do not parse are
/// left out (the hooks report them in the class's status); the rest still admit children.
impl Project for ClassView {
    type Entry = ClassEntry;

    fn project(&self) -> Extracted<ClassEntry> {
        let interfaces = self.spec.l2.as_ref().map(|l2| l2.interfaces.clone()).unwrap_or_default();
        if interfaces.iter().any(String::is_empty) {
            return Extracted::Invalid("spec.l2.interfaces lists an empty name".to_owned());
        }
        Extracted::Entry(ClassEntry {
            spec: ClassSpec { interfaces },
            pool: Pool::parse(&self.spec.address_pool),
        })
    }
}

/// A speaker pod's contribution: its node address.
impl Project for PeerPodView {
    type Entry = IpAddr;

    fn project(&self) -> Extracted<IpAddr> {
        match self.status.as_ref().and_then(|s| s.host_ip.as_deref()) {
            None | Some("") => Extracted::Pending,
            Some(ip) => match ip.parse() {
                Ok(ip) => Extracted::Entry(ip),
                Err(_) => Extracted::Invalid(format!("status.hostIP {ip:?} is not an IP address")),
            },
        }
    }
}

/// What applying one watcher event did to a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The visible content is unchanged (including events buffered during a relist).
    Unchanged,
    /// The visible content changed.
    Changed,
    /// The first complete list arrived: the mirror is synced from now on.
    Synced,
    /// The object is malformed and was left out; the previous entry of its key is gone.
    Skipped {
        /// `namespace/name`.
        key: Key,
        /// Why.
        reason: String,
    },
}

/// The entries of one kind, following watcher events.
///
/// A relist (`Init` … `InitDone`, after a watch expiry or an API restart) is buffered and
/// swapped in at once when complete, so the speaker keeps announcing from its last view
/// while the API is unreachable or mid-relist, and objects deleted while it was not watching
/// disappear with the swap.
#[derive(Debug, Clone)]
pub struct Mirror<T> {
    live: BTreeMap<Key, T>,
    relist: Option<BTreeMap<Key, T>>,
    synced: bool,
}

impl<T> Default for Mirror<T> {
    fn default() -> Self {
        Self { live: BTreeMap::new(), relist: None, synced: false }
    }
}

impl<T: Clone + PartialEq> Mirror<T> {
    /// Applies one event.
    pub fn apply<K: Project<Entry = T>>(&mut self, event: Event<K>) -> Applied {
        match event {
            Event::Init => {
                self.relist = Some(BTreeMap::new());
                Applied::Unchanged
            }
            Event::InitApply(object) => {
                let (key, extracted) = (key(object.meta()), object.project());
                let skipped = skipped(&key, &extracted);
                // An `InitApply` without `Init` cannot come from the watcher; treat it as an
                // update rather than lose it.
                let target = self.relist.as_mut().unwrap_or(&mut self.live);
                if let Extracted::Entry(entry) = extracted {
                    target.insert(key, entry);
                }
                skipped.unwrap_or(Applied::Unchanged)
            }
            Event::InitDone => {
                let first = !self.synced;
                self.synced = true;
                let changed = match self.relist.take() {
                    Some(listed) if listed != self.live => {
                        self.live = listed;
                        true
                    }
                    _ => false,
                };
                match (first, changed) {
                    (true, _) => Applied::Synced,
                    (false, true) => Applied::Changed,
                    (false, false) => Applied::Unchanged,
                }
            }
            Event::Apply(object) => {
                let (key, extracted) = (key(object.meta()), object.project());
                let skipped = skipped(&key, &extracted);
                let changed = match extracted {
                    Extracted::Entry(entry) => {
                        self.live.get(&key) != Some(&entry) && {
                            self.live.insert(key, entry);
                            true
                        }
                    }
                    Extracted::Pending | Extracted::Invalid(_) => self.live.remove(&key).is_some(),
                };
                match (skipped, changed) {
                    (Some(skipped), _) => skipped,
                    (None, true) => Applied::Changed,
                    (None, false) => Applied::Unchanged,
                }
            }
            Event::Delete(object) => {
                if self.live.remove(&key(object.meta())).is_some() {
                    Applied::Changed
                } else {
                    Applied::Unchanged
                }
            }
        }
    }

    /// Whether a complete list has arrived at least once.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The visible entries, by key.
    pub fn entries(&self) -> &BTreeMap<Key, T> {
        &self.live
    }
}

fn skipped<T>(key: &str, extracted: &Extracted<T>) -> Option<Applied> {
    match extracted {
        Extracted::Invalid(reason) => {
            Some(Applied::Skipped { key: key.to_owned(), reason: reason.clone() })
        }
        Extracted::Entry(_) | Extracted::Pending => None,
    }
}

/// Two children naming one IP with different placements; the first by key wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The IP.
    pub ip: IpAddr,
    /// The child whose placement is used.
    pub kept: Key,
    /// The child whose placement is ignored.
    pub ignored: Key,
}

/// Why a placed child is not announced: the speaker announces only what the module decided,
/// so that whoever can write an arbitrary child cannot make the speakers answer ARP for, say,
/// a gateway's IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IgnoreReason {
    /// It lacks `heritage: deckhouse` or `module: metallb`: the hooks did not write it.
    NotLabelled,
    /// It names no class.
    NoClass,
    /// Its class does not exist.
    UnknownClass,
    /// Its IP lies outside its class's pool.
    OutsidePool,
}

impl IgnoreReason {
    /// Every reason, for metrics.
    pub const ALL: [IgnoreReason; 4] = [
        IgnoreReason::NotLabelled,
        IgnoreReason::NoClass,
        IgnoreReason::UnknownClass,
        IgnoreReason::OutsidePool,
    ];

    /// Metric label and log field.
    pub fn label(self) -> &'static str {
        match self {
            IgnoreReason::NotLabelled => "not_labelled",
            IgnoreReason::NoClass => "no_class",
            IgnoreReason::UnknownClass => "unknown_class",
            IgnoreReason::OutsidePool => "outside_pool",
        }
    }
}

/// A placed child that is not announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// `namespace/name`.
    pub key: Key,
    /// Its IP.
    pub ip: IpAddr,
    /// Why.
    pub reason: IgnoreReason,
}

/// The desired state derived from the mirrors, and what was left out of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Derived {
    /// What the speakers announce.
    pub state: DesiredState,
    /// Children placing one IP differently.
    pub conflicts: Vec<Conflict>,
    /// Children not announced, in key order.
    pub ignored: Vec<Ignored>,
}

fn admit(child: &ChildEntry, classes: &BTreeMap<Key, ClassEntry>) -> Result<(), IgnoreReason> {
    if !child.labelled {
        return Err(IgnoreReason::NotLabelled);
    }
    let name = child.address.class.as_deref().ok_or(IgnoreReason::NoClass)?;
    let class = classes.get(name).ok_or(IgnoreReason::UnknownClass)?;
    if !class.pool.contains(Addr::from_ip(child.address.ip)) {
        return Err(IgnoreReason::OutsidePool);
    }
    Ok(())
}

/// The desired state of the cluster from the mirrored children and classes.
///
/// A child is used only if it carries the module's labels and its IP lies inside its class's
/// pool ([`IgnoreReason`]). Children of Services that share an IP name the same address; the
/// planner places them together, so they agree, and the address is listed once. While the
/// hooks are rewriting them one by one they may briefly disagree: then the first child by
/// `namespace/name` wins (deterministic on every node) and the conflict is reported.
pub fn desired_state(children: &Mirror<ChildEntry>, classes: &Mirror<ClassEntry>) -> Derived {
    let mut by_ip: BTreeMap<IpAddr, (&Key, &AddressSpec)> = BTreeMap::new();
    let mut derived = Derived::default();
    for (key, child) in children.entries() {
        let address = &child.address;
        if let Err(reason) = admit(child, classes.entries()) {
            derived.ignored.push(Ignored { key: key.clone(), ip: address.ip, reason });
            continue;
        }
        match by_ip.get(&address.ip) {
            None => {
                by_ip.insert(address.ip, (key, address));
            }
            Some((kept, first)) => {
                if first.node != address.node || first.backups != address.backups {
                    derived.conflicts.push(Conflict {
                        ip: address.ip,
                        kept: (*kept).clone(),
                        ignored: key.clone(),
                    });
                }
            }
        }
    }
    derived.state = DesiredState {
        classes: classes.entries().iter().map(|(k, c)| (k.clone(), c.spec.clone())).collect(),
        addresses: by_ip.into_values().map(|(_, address)| address.clone()).collect(),
    };
    derived
}

/// Gossip peers from the mirrored speaker pods: each distinct node address at `port`.
pub fn peers(pods: &Mirror<IpAddr>, port: u16) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> =
        pods.entries().values().map(|ip| SocketAddr::new(*ip, port)).collect();
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

#[cfg(test)]
mod tests;
