//! Discovery's snapshots into the planner's input.
//!
//! The snapshots that grow with the Services (one item per Service, per IP, per EndpointSlice)
//! are read item by item from their JSON text into small typed documents whose strings point
//! into that text; nothing of them exists as a generic JSON tree. A field that must be read
//! leniently is a [`Field`]: kept as text until it is read, so a wrong type spoils that field
//! only, never the item or the run.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use addon::RawJson;
use compact_str::CompactString;
use metallb_api::names::{annotations, api};
use metallb_planner::hold_down::unix_seconds;
use metallb_planner::pool::Family;
use metallb_planner::{
    ChildSpec, ChildStatus, ClassInput, Condition, ConditionStatus, ExistingChild, Input,
    NodeInput, ServiceInput, ServicePort, ServiceRef, SharedPorts, SharedSelector, StringMap,
    StringSet, Timestamp, TrafficPolicy,
};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::types::{SkipReason, Skipped, class, node, opt_bool, opt_str};

/// (namespace, name); borrowed from the snapshot text unless the JSON escaped a character.
pub(super) type Key<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Stored items by (namespace, name): one vector sorted by key, looked up by binary search.
/// These tables hold an entry per child and per Service for the whole run; a `BTreeMap` of as
/// many entries takes about half as much again in node space.
pub(super) struct ByName<'a, V>(Vec<(Key<'a>, V)>);

impl<'a, V> ByName<'a, V> {
    /// The table of `entries`; of two entries with one key the later wins, as a map insert.
    pub(super) fn new(mut entries: Vec<(Key<'a>, V)>) -> Self {
        // Lists usually come sorted, with unique keys: then there is nothing to do (a stable
        // sort would allocate a scratch space half the table's size).
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            // Reversed, a stable sort puts the later of equal keys first; `dedup` keeps it.
            entries.reverse();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|a, b| a.0 == b.0);
            entries.shrink_to_fit();
        }
        Self(entries)
    }

    /// The table of `entries`, of which there are at most `capacity`.
    pub(super) fn collect(entries: impl Iterator<Item = (Key<'a>, V)>, capacity: usize) -> Self {
        // Collected at that size at once: grown by doubling, a table of a large run would leave
        // its smaller copies behind in the heap.
        let mut all = Vec::with_capacity(capacity);
        all.extend(entries);
        Self::new(all)
    }

    /// The entry of `namespace/name`.
    pub(super) fn get(&self, namespace: &str, name: &str) -> Option<&V> {
        self.0
            .binary_search_by(|(k, _)| (k.0.as_ref(), k.1.as_ref()).cmp(&(namespace, name)))
            .ok()
            .map(|i| &self.0[i].1)
    }
}

/// One member of a snapshot document, kept as its JSON text; absent and `null` are the same.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Field<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<&'de RawValue>::deserialize(d).map(Field)
    }
}

/// A string that borrows from the text it was read from when it can.
#[derive(Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> Field<'a> {
    /// The member as `T`; `None` when absent or `null`, an error naming `what` on a wrong type.
    pub(super) fn read<T: Deserialize<'a>>(self, what: &str) -> Result<Option<T>, String> {
        self.0
            .map(|raw| serde_json::from_str(raw.get()).map_err(|e| format!("{what}: {e}")))
            .transpose()
    }

    /// A string member, borrowed.
    pub(super) fn text(self, what: &str) -> Result<Option<Cow<'a, str>>, String> {
        Ok(self.read::<Text<'a>>(what)?.map(|t| t.0))
    }

    /// A string member, owned.
    pub(super) fn string(self, what: &str) -> Result<Option<String>, String> {
        Ok(self.text(what)?.map(Cow::into_owned))
    }

    /// A string member as the planner keeps it (short ones without a heap allocation).
    pub(super) fn compact(self, what: &str) -> Result<Option<CompactString>, String> {
        Ok(self.text(what)?.map(CompactString::from))
    }

    /// A non-empty string member.
    pub(super) fn required(self, what: &str) -> Result<String, String> {
        self.string(what)?.filter(|s| !s.is_empty()).ok_or_else(|| format!("{what} is missing"))
    }
}

/// Every snapshot of one run. Classes, nodes and speakers stay few whatever the number of
/// Services and are read as JSON trees. The stored state that rendered objects are compared
/// with is borrowed from the hook's input; Services and EndpointSlices are taken out of it,
/// because [`read`] turns them into the planner's input and frees their text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshots<'a> {
    pub(crate) classes: Vec<Value>,
    pub(crate) nodes: Vec<Value>,
    pub(crate) speakers: Vec<Value>,
    pub(crate) class_status: Vec<&'a RawJson>,
    pub(crate) services: Vec<RawJson>,
    pub(crate) service_status: Vec<&'a RawJson>,
    pub(crate) children: Vec<&'a RawJson>,
    pub(crate) child_status: Vec<&'a RawJson>,
    pub(crate) endpoint_slices: Vec<RawJson>,
    /// Namespaces being deleted.
    pub(crate) terminating: BTreeSet<String>,
    /// The module setting `failbackHoldDownSeconds`.
    pub(crate) failback_hold_down_seconds: u32,
    /// The write ledger's snapshot (see `write_guard`), if the ConfigMap exists.
    pub(crate) write_ledger: Option<Value>,
    /// BGP mode's objects.
    pub(crate) bgp: super::bgp::BgpSnapshots,
}

/// The stored parts of a child that the hook compares with what it would write.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StoredChild<'a> {
    #[serde(borrow, default)]
    pub(super) labels: Field<'a>,
    #[serde(borrow, default)]
    pub(super) owner_references: Field<'a>,
    /// The `helm.sh/resource-policy` annotation.
    #[serde(borrow, default)]
    pub(super) resource_policy: Field<'a>,
    #[serde(borrow, default)]
    pub(super) spec: Field<'a>,
}

/// A Service's stored status, as the status filter reads it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StoredServiceStatus<'a> {
    pub(super) conditions: Field<'a>,
    pub(super) ingress: Field<'a>,
}

/// The planner's input, the stored state the rendered objects are compared with, and
/// everything skipped.
pub(super) struct Read<'a> {
    pub(super) input: Input,
    pub(super) classes: Vec<class::Class>,
    pub(super) class_status: BTreeMap<String, Field<'a>>,
    pub(super) service_status: ByName<'a, StoredServiceStatus<'a>>,
    pub(super) children: ByName<'a, StoredChild<'a>>,
    pub(super) child_status: ByName<'a, Field<'a>>,
    pub(super) skipped: Vec<Skipped>,
}

/// `{namespace, name, status}`: the shape of the status filters of classes and children.
#[derive(Deserialize)]
struct StatusDoc<'a> {
    #[serde(borrow, default)]
    namespace: Field<'a>,
    #[serde(borrow, default)]
    name: Field<'a>,
    #[serde(borrow, default)]
    status: Field<'a>,
}

/// `{namespace, name, conditions, ingress}` of the Services' status filter.
#[derive(Deserialize)]
struct ServiceStatusDoc<'a> {
    #[serde(borrow, default)]
    namespace: Field<'a>,
    #[serde(borrow, default)]
    name: Field<'a>,
    #[serde(borrow, default)]
    conditions: Field<'a>,
    #[serde(borrow, default)]
    ingress: Field<'a>,
}

/// One EndpointSlice: its Service and the nodes of its ready endpoints.
#[derive(Deserialize)]
struct SliceDoc<'a> {
    #[serde(borrow)]
    namespace: Text<'a>,
    #[serde(borrow)]
    service: Text<'a>,
    nodes: Vec<CompactString>,
}

/// The key of a status item; `None` when it has no readable name (such an item is ignored).
fn identity<'a>(namespace: Field<'a>, name: Field<'a>) -> Option<Key<'a>> {
    Some((namespace.text("namespace").ok()?.unwrap_or_default(), name.text("name").ok()??))
}

/// Deserializes every item, dropping those that do not have the document's shape (the jq
/// filters always produce it; anything else is not worth a skip record).
fn docs<'a, T: Deserialize<'a>>(
    items: impl IntoIterator<Item = &'a RawJson>,
) -> impl Iterator<Item = T> {
    items.into_iter().filter_map(|raw| raw.parse().ok())
}

/// Reads the snapshots; the Services and EndpointSlices are consumed (see [`Snapshots`]).
pub(super) fn read<'a>(s: &mut Snapshots<'a>, now: &Timestamp) -> Read<'a> {
    let mut skipped = Vec::new();

    let mut class_status = BTreeMap::new();
    let mut class_conditions = BTreeMap::new();
    for doc in docs::<StatusDoc<'a>>(s.class_status.iter().copied()) {
        let Ok(Some(name)) = doc.name.string("name") else { continue };
        class_conditions.insert(name.clone(), conditions_of_status(doc.status, now));
        class_status.insert(name, doc.status);
    }
    let mut classes = class::read_all(&s.classes, &mut skipped);
    for c in &mut classes {
        c.input.conditions = class_conditions.remove(&c.input.name).unwrap_or_default();
    }

    let mut nodes = node::read_all(&s.nodes, &mut skipped);
    apply_speaker_readiness(&mut nodes, &s.speakers);

    // Keyed by owned names so that each Service can take its set out instead of copying it.
    let mut endpoints: BTreeMap<(CompactString, CompactString), Vec<CompactString>> =
        BTreeMap::new();
    let slices = std::mem::take(&mut s.endpoint_slices);
    for slice in docs::<SliceDoc<'_>>(&slices) {
        let service = (slice.namespace.0.into(), slice.service.0.into());
        endpoints.entry(service).or_default().extend(slice.nodes);
    }
    drop(slices);

    let service_status = ByName::collect(
        docs::<ServiceStatusDoc<'a>>(s.service_status.iter().copied()).filter_map(|doc| {
            let stored = StoredServiceStatus { conditions: doc.conditions, ingress: doc.ingress };
            Some((identity(doc.namespace, doc.name)?, stored))
        }),
        s.service_status.len(),
    );
    // Each Service's text is freed as soon as it is read, so that what is read from the next
    // ones can reuse the space.
    let texts = std::mem::take(&mut s.services);
    let mut services = Vec::with_capacity(texts.len());
    for raw in texts {
        match read_service(&raw) {
            Ok(svc) if s.terminating.contains(svc.namespace.as_str()) => {
                // Creating a child there would fail, and with it the whole run (the framework
                // applies nothing of a run with a failed operation and retries it, blocking
                // every other Service). The namespace's Services go with it; their children
                // are deleted (deletes are allowed), which frees their IPs.
                skipped.push(Skipped::new(
                    "Service",
                    &svc.namespace,
                    &svc.name,
                    SkipReason::NamespaceTerminating,
                    "its namespace is being deleted: not served, its children are deleted",
                ));
            }
            Ok(mut svc) => {
                if let Some(stored) = service_status.get(&svc.namespace, &svc.name) {
                    svc.conditions = conditions(stored.conditions, now);
                    svc.ingress = stored
                        .ingress
                        .read::<Vec<CompactString>>("ingress")
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                }
                svc.ready_endpoint_nodes = endpoints
                    .remove(&(svc.namespace.clone(), svc.name.clone()))
                    .map(StringSet::from)
                    .unwrap_or_default();
                services.push(svc);
            }
            Err(skip) => skipped.push(skip),
        }
    }

    // Children usually carry exactly their Service's ports and selector: they then share the
    // Service's copy instead of holding one each.
    let shared: Shared<'_> = services
        .iter()
        .map(|s| ((s.namespace.as_str(), s.name.as_str()), (&s.ports, &s.selector)))
        .collect();
    let child_status = ByName::collect(
        docs::<StatusDoc<'a>>(s.child_status.iter().copied())
            .filter_map(|doc| Some((identity(doc.namespace, doc.name)?, doc.status))),
        s.child_status.len(),
    );
    let mut stored_children = Vec::with_capacity(s.children.len());
    let mut children = Vec::with_capacity(s.children.len());
    for raw in &s.children {
        match read_child(raw, &child_status, &shared, now) {
            Ok((k, stored, child)) => {
                stored_children.push((k, stored));
                children.push(child);
            }
            Err(skip) => skipped.push(skip),
        }
    }

    Read {
        input: Input {
            now: now.clone(),
            failback_hold_down_seconds: s.failback_hold_down_seconds,
            classes: classes.iter().map(|c| c.input.clone()).collect::<Vec<ClassInput>>(),
            nodes,
            services,
            children,
        },
        classes,
        class_status,
        service_status,
        children: ByName::new(stored_children),
        child_status,
        skipped,
    }
}

/// Speaker readiness per node. Until speakers exist (or while none is ready, e.g. during a
/// rollout of the whole DaemonSet) readiness is unknown and filters nothing: otherwise every IP
/// would lose its node at once, which is the outage the speakers' absence does not cause by
/// itself (the previous announcer keeps answering until told otherwise).
///
/// A node is healthy since the later of its own `Ready` transition and its speaker's (the
/// earliest Ready speaker pod on it, so a second pod during a rollout does not restart the
/// failback hold-down).
pub(super) fn apply_speaker_readiness(nodes: &mut [NodeInput], speakers: &[Value]) {
    let mut ready: BTreeMap<String, Option<Timestamp>> = BTreeMap::new();
    for p in speakers.iter().filter(|p| opt_bool(p, "ready").unwrap_or(false)) {
        let Some(node) = opt_str(p, "node").ok().flatten() else { continue };
        let since = opt_str(p, "readySince").ok().flatten().map(|t| Timestamp(t.into()));
        let slot = ready.entry(node).or_insert_with(|| since.clone());
        *slot = earlier(slot.take(), since);
    }
    let known = !ready.is_empty();
    for n in nodes {
        n.speaker_ready = !known || ready.contains_key(&n.name);
        if let Some(speaker_since) = ready.get(&n.name) {
            n.healthy_since = later(n.healthy_since.take(), speaker_since.clone());
        }
    }
}

/// The earlier of two optional time stamps (one that does not parse loses).
fn earlier(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    pick(a, b, |x, y| x <= y)
}

/// The later of two optional time stamps (one that does not parse loses).
fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    pick(a, b, |x, y| x >= y)
}

fn pick(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    first: fn(i64, i64) -> bool,
) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => match (unix_seconds(&a), unix_seconds(&b)) {
            (Some(x), Some(y)) => Some(if first(x, y) { a } else { b }),
            (Some(_), None) => Some(a),
            (None, _) => Some(b),
        },
        (a, b) => a.or(b),
    }
}

/// One `services` item, as the Service filter writes it.
#[derive(Deserialize)]
struct ServiceDoc<'a> {
    #[serde(borrow, default)]
    namespace: Field<'a>,
    #[serde(borrow, default)]
    name: Field<'a>,
    #[serde(borrow, default)]
    uid: Field<'a>,
    #[serde(borrow, default)]
    generation: Field<'a>,
    #[serde(borrow, default)]
    annotations: Field<'a>,
    #[serde(borrow, default)]
    spec: Field<'a>,
}

/// The part of a Service's spec the filter keeps. A wrong type anywhere here skips the Service:
/// half a spec would give it wrong children.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSpecDoc {
    load_balancer_class: Option<String>,
    #[serde(rename = "loadBalancerIP")]
    load_balancer_ip: Option<String>,
    ports: Option<Vec<ServicePort>>,
    selector: Option<StringMap>,
    external_traffic_policy: Option<String>,
    internal_traffic_policy: Option<String>,
    ip_families: Option<Vec<String>>,
    publish_not_ready_addresses: Option<bool>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
}

fn policy(name: Option<&str>) -> TrafficPolicy {
    match name {
        Some("Local") => TrafficPolicy::Local,
        _ => TrafficPolicy::Cluster,
    }
}

/// `spec.ports` with the API's default protocol made explicit, so the copy in a child compares
/// equal to what the API stores.
fn with_default_protocol(mut ports: Vec<ServicePort>) -> Vec<ServicePort> {
    for p in &mut ports {
        if p.protocol.is_empty() {
            p.protocol = "TCP".into();
        }
    }
    ports
}

/// The annotations the planner reads.
const PLANNER_ANNOTATIONS: [&str; 8] = [
    annotations::EXTERNAL_IPS_COUNT,
    annotations::LOAD_BALANCER_IPS,
    annotations::SHARED_IP_KEY,
    annotations::METAL_LOAD_BALANCER_CLASS,
    annotations::LOAD_BALANCER_POOL,
    annotations::METALLB_ADDRESS_POOL,
    annotations::METALLB_UNIVERSE_ADDRESS_POOL,
    annotations::METALLB_LOAD_BALANCER_IPS,
];

/// The annotations of `stored` that the planner reads, under keys that refer to the constants:
/// the keys are longer than a `CompactString` holds inline, and a copy per Service would be a
/// heap allocation each.
fn planner_annotations(stored: &StringMap) -> StringMap {
    PLANNER_ANNOTATIONS
        .iter()
        .filter_map(|&key| stored.get(key).map(|value| (CompactString::const_new(key), value)))
        .collect()
}

fn read_service(raw: &RawJson) -> Result<ServiceInput, Skipped> {
    let kind = "Service";
    let doc: ServiceDoc<'_> = raw
        .parse()
        .map_err(|e| Skipped::new(kind, "", "", SkipReason::WrongType, e.to_string()))?;
    let namespace = doc.namespace.string("namespace").ok().flatten().unwrap_or_default();
    let name = doc
        .name
        .required("name")
        .map_err(|e| Skipped::new(kind, &namespace, "", SkipReason::MissingName, e))?;
    let bad = |e: String| Skipped::new(kind, &namespace, &name, SkipReason::WrongType, e);
    let uid = doc
        .uid
        .required("uid")
        .map_err(|e| Skipped::new(kind, &namespace, &name, SkipReason::MissingUid, e))?;
    let spec = doc.spec.read::<ServiceSpecDoc>("spec").map_err(bad)?.unwrap_or_default();
    let ip_families = spec
        .ip_families
        .unwrap_or_default()
        .iter()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        })
        .collect();
    Ok(ServiceInput {
        generation: doc.generation.read("generation").map_err(bad)?.unwrap_or_default(),
        load_balancer_class: spec.load_balancer_class,
        load_balancer_ip: spec.load_balancer_ip.filter(|ip| !ip.is_empty()).map(Into::into),
        annotations: planner_annotations(
            &doc.annotations.read("annotations").map_err(bad)?.unwrap_or_default(),
        ),
        ports: with_default_protocol(spec.ports.unwrap_or_default()).into(),
        selector: spec.selector.unwrap_or_default().into(),
        external_traffic_policy: policy(spec.external_traffic_policy.as_deref()),
        internal_traffic_policy: policy(spec.internal_traffic_policy.as_deref()),
        ip_families,
        publish_not_ready_addresses: spec.publish_not_ready_addresses.unwrap_or(false),
        cluster_ip: spec.cluster_ip.filter(|c| !c.is_empty()).map(Into::into),
        uid: uid.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..ServiceInput::default()
    })
}

/// One `children` item, as the child filter writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChildDoc<'a> {
    #[serde(borrow, default)]
    namespace: Field<'a>,
    #[serde(borrow, default)]
    name: Field<'a>,
    #[serde(borrow, default)]
    labels: Field<'a>,
    #[serde(borrow, default)]
    owner_references: Field<'a>,
    #[serde(borrow, default)]
    resource_policy: Field<'a>,
    #[serde(borrow, default)]
    preferred_node: Field<'a>,
    #[serde(borrow, default)]
    pool: Field<'a>,
    #[serde(borrow, default)]
    spec: Field<'a>,
}

/// A child's spec, every member read on its own: what the planner reads of a child only feeds
/// comparisons (what is written is decided by comparing rendered and stored objects), so a
/// wrong member must not hide the child and free its IP.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChildSpecIn<'a> {
    #[serde(borrow, default)]
    service_ref: Field<'a>,
    #[serde(borrow, default)]
    metal_load_balancer_class: Field<'a>,
    #[serde(borrow, default)]
    index: Field<'a>,
    #[serde(borrow, default, rename = "desiredIP")]
    desired_ip: Field<'a>,
    #[serde(borrow, default)]
    shared_ip_key: Field<'a>,
    #[serde(borrow, default)]
    ports: Field<'a>,
    #[serde(borrow, default)]
    selector: Field<'a>,
    #[serde(borrow, default)]
    external_traffic_policy: Field<'a>,
    #[serde(borrow, default)]
    internal_traffic_policy: Field<'a>,
    #[serde(borrow, default)]
    publish_not_ready_addresses: Field<'a>,
    #[serde(borrow, default, rename = "clusterIP")]
    cluster_ip: Field<'a>,
}

/// A child's status, read as leniently as its spec.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChildStatusIn<'a> {
    #[serde(borrow, default)]
    ip: Field<'a>,
    #[serde(borrow, default)]
    node: Field<'a>,
    #[serde(borrow, default)]
    backup_nodes: Field<'a>,
    #[serde(borrow, default)]
    conditions: Field<'a>,
    #[serde(borrow, default)]
    load_balancer: Field<'a>,
}

/// An owner reference: only the kind and uid matter here.
#[derive(Deserialize)]
struct OwnerIn<'a> {
    #[serde(borrow, default)]
    kind: Field<'a>,
    #[serde(borrow, default)]
    uid: Field<'a>,
}

/// A `{"name": ...}` reference.
#[derive(Deserialize)]
struct NameIn<'a> {
    #[serde(borrow, default)]
    name: Field<'a>,
}

/// The previous implementation kept a child's IP only in `status.loadBalancer.ingress[0].ip`.
fn legacy_ip(load_balancer: Field<'_>) -> Option<CompactString> {
    let lb: Value = load_balancer.read("loadBalancer").ok()??;
    lb.pointer("/ingress/0/ip").and_then(Value::as_str).map(CompactString::from)
}

type ReadChild<'a> = (Key<'a>, StoredChild<'a>, ExistingChild);

/// Each Service's ports and selector by (namespace, name), for children to share.
type Shared<'s> = BTreeMap<(&'s str, &'s str), (&'s SharedPorts, &'s SharedSelector)>;

/// `own` as an `Arc`, or the parent's when they are equal.
fn share<T, O>(parent: Option<&Arc<T>>, own: O) -> Arc<T>
where
    T: ?Sized + PartialEq,
    O: std::borrow::Borrow<T> + Into<Arc<T>>,
{
    match parent {
        Some(p) if **p == *own.borrow() => Arc::clone(p),
        _ => own.into(),
    }
}

fn read_child<'a>(
    raw: &'a RawJson,
    statuses: &ByName<'a, Field<'a>>,
    shared: &Shared<'_>,
    now: &Timestamp,
) -> Result<ReadChild<'a>, Skipped> {
    let kind = api::CHILD_KIND;
    let doc: ChildDoc<'a> = raw
        .parse()
        .map_err(|e| Skipped::new(kind, "", "", SkipReason::WrongType, e.to_string()))?;
    let namespace = doc.namespace.text("namespace").ok().flatten().unwrap_or_default();
    let name = match doc.name.text("name") {
        Ok(Some(n)) if !n.is_empty() => n,
        _ => {
            return Err(Skipped::new(
                kind,
                &namespace,
                "",
                SkipReason::MissingName,
                "name is missing",
            ));
        }
    };
    let spec: ChildSpecIn<'a> = doc.spec.read("spec").ok().flatten().unwrap_or_default();
    let lenient_string = |f: Field<'_>| f.compact("").ok().flatten();
    let service = spec
        .service_ref
        .read::<NameIn<'_>>("")
        .ok()
        .flatten()
        .and_then(|r| r.name.required("").ok())
        .ok_or_else(|| {
            Skipped::new(
                kind,
                &namespace,
                &name,
                SkipReason::MissingServiceRef,
                "spec.serviceRef.name is missing",
            )
        })?;
    let parent = shared
        .get(&(namespace.as_ref(), service.as_str()))
        .map(|(ports, selector)| (Arc::clone(ports), Arc::clone(selector)));
    let owner_uid = doc
        .owner_references
        .read::<Vec<OwnerIn<'_>>>("")
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.kind.text("").ok().flatten().as_deref() == Some("Service"))
        .and_then(|r| lenient_string(r.uid));
    let status: ChildStatusIn<'_> = statuses
        .get(&namespace, &name)
        .and_then(|f| f.read("status").ok().flatten())
        .unwrap_or_default();
    let child = ExistingChild {
        owner_uid,
        preferred_node: lenient_string(doc.preferred_node),
        spec: ChildSpec {
            service_ref: ServiceRef { namespace: namespace.as_ref().into(), name: service.into() },
            class: lenient_string(spec.metal_load_balancer_class)
                .or_else(|| lenient_string(doc.pool))
                .unwrap_or_default(),
            index: spec.index.read::<u32>("").ok().flatten(),
            desired_ip: lenient_string(spec.desired_ip),
            sharing_key: lenient_string(spec.shared_ip_key),
            ports: share(
                parent.as_ref().map(|p| &p.0),
                with_default_protocol(spec.ports.read("").ok().flatten().unwrap_or_default()),
            ),
            selector: share(
                parent.as_ref().map(|p| &p.1),
                spec.selector.read::<StringMap>("").ok().flatten().unwrap_or_default(),
            ),
            external_traffic_policy: policy(
                spec.external_traffic_policy.text("").ok().flatten().as_deref(),
            ),
            internal_traffic_policy: policy(
                spec.internal_traffic_policy.text("").ok().flatten().as_deref(),
            ),
            publish_not_ready_addresses: spec
                .publish_not_ready_addresses
                .read("")
                .ok()
                .flatten()
                .unwrap_or(false),
            cluster_ip: lenient_string(spec.cluster_ip),
        },
        status: ChildStatus {
            ip: lenient_string(status.ip).or_else(|| legacy_ip(status.load_balancer)),
            node: lenient_string(status.node),
            backups: status.backup_nodes.read("").ok().flatten().unwrap_or_default(),
            conditions: conditions(status.conditions, now),
        },
        namespace: namespace.as_ref().into(),
        name: name.as_ref().into(),
    };
    let stored = StoredChild {
        labels: doc.labels,
        owner_references: doc.owner_references,
        resource_policy: doc.resource_policy,
        spec: doc.spec,
    };
    Ok(((namespace, name), stored, child))
}

/// One condition as stored, every member read on its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConditionIn<'a> {
    #[serde(borrow, default, rename = "type")]
    type_: Field<'a>,
    #[serde(borrow, default)]
    status: Field<'a>,
    #[serde(borrow, default)]
    reason: Field<'a>,
    #[serde(borrow, default)]
    message: Field<'a>,
    #[serde(borrow, default)]
    last_transition_time: Field<'a>,
    #[serde(borrow, default)]
    observed_generation: Field<'a>,
}

/// Conditions as the planner reads them. Items that are not objects with a `type` are dropped;
/// missing members of kept items get neutral values (an absent `lastTransitionTime` becomes
/// `now`), so a condition list written by someone else never stops the hook.
pub(super) fn conditions(list: Field<'_>, now: &Timestamp) -> Vec<Condition> {
    let items: Vec<Field<'_>> = list.read("conditions").ok().flatten().unwrap_or_default();
    // Sized to the stored list: collecting a filtered iterator would reserve four conditions
    // for the one a child has.
    let mut out = Vec::with_capacity(items.len());
    out.extend(items.into_iter().filter_map(|item| {
        let c: ConditionIn<'_> = item.read("").ok()??;
        let s = |f: Field<'_>| f.compact("").ok().flatten();
        let status = match c.status.text("").ok().flatten().as_deref() {
            Some("True") => ConditionStatus::True,
            Some("False") => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        };
        Some(Condition {
            type_: s(c.type_)?,
            status,
            reason: s(c.reason).unwrap_or_default(),
            message: s(c.message).unwrap_or_default(),
            last_transition_time: s(c.last_transition_time)
                .filter(|t| !t.is_empty())
                .map_or_else(|| now.clone(), Timestamp),
            observed_generation: c.observed_generation.read("").ok().flatten(),
        })
    }));
    out
}

/// The conditions of a `status` object.
fn conditions_of_status(status: Field<'_>, now: &Timestamp) -> Vec<Condition> {
    #[derive(Deserialize)]
    struct WithConditions<'a> {
        #[serde(borrow, default)]
        conditions: Field<'a>,
    }
    match status.read::<WithConditions<'_>>("status") {
        Ok(Some(s)) => conditions(s.conditions, now),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key<'k>(namespace: &'k str, name: &'k str) -> Key<'k> {
        (Cow::Borrowed(namespace), Cow::Borrowed(name))
    }

    fn field(text: &str) -> Field<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn tables_by_name_find_entries_and_keep_the_later_of_two() {
        let t = ByName::collect(
            [(key("n", "b"), 1), (key("n", "a"), 2), (key("n", "b"), 3), (key("m", "z"), 4)]
                .into_iter(),
            4,
        );
        assert_eq!(
            [t.get("n", "a"), t.get("n", "b"), t.get("m", "z"), t.get("n", "z")],
            [Some(&2), Some(&3), Some(&4), None]
        );
    }

    #[test]
    fn fields_read_leniently() {
        assert_eq!(field("null").string("x"), Ok(None));
        assert_eq!(field(r#""a\"b""#).string("x"), Ok(Some("a\"b".to_owned())));
        assert!(matches!(field(r#""ab""#).text("x"), Ok(Some(Cow::Borrowed("ab")))));
        assert!(field("5").string("x").unwrap_err().starts_with("x: invalid type"));
        assert_eq!(field(r#""""#).required("name"), Err("name is missing".to_owned()));
        assert_eq!(field("[1,2]").read::<Vec<u32>>("x"), Ok(Some(vec![1, 2])));
    }

    #[test]
    fn lenient_conditions_keep_what_can_be_kept() {
        let now = Timestamp("t".into());
        let raw = json!([
            {"type": "A", "status": "True", "reason": "R", "message": "m", "lastTransitionTime": "x"},
            {"type": "B", "status": "maybe", "reason": 5},
            "garbage",
            {"status": "True"}
        ])
        .to_string();
        let c = conditions(field(&raw), &now);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].last_transition_time.0, "x");
        assert_eq!(c[1].status, ConditionStatus::Unknown);
        assert_eq!(c[1].reason, "");
        assert_eq!(c[1].last_transition_time, now);
        assert!(conditions(field(r#""x""#), &now).is_empty());
    }

    #[test]
    fn a_child_with_wrong_members_keeps_its_ip() {
        let child = RawJson::from(json!({"namespace": "n", "name": "c",
            "labels": "odd", "ownerReferences": [{"kind": "Service", "uid": "u"}],
            "spec": {"serviceRef": {"name": "s"}, "index": "zero", "ports": "80", "selector": {"a": 1}}}));
        let status =
            RawJson::from(json!({"ip": 7, "loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]},
            "backupNodes": "b", "conditions": {}}));
        let statuses = ByName::new(vec![(key("n", "c"), field(status.get()))]);
        let (k, _, c) =
            read_child(&child, &statuses, &Shared::new(), &Timestamp::default()).unwrap();
        assert_eq!(k, key("n", "c"));
        assert_eq!(c.owner_uid.as_deref(), Some("u"));
        assert_eq!((c.spec.index, c.spec.ports.len(), c.spec.selector.len()), (None, 0, 0));
        assert_eq!(c.status.ip.as_deref(), Some("192.0.2.9"), "legacy place of the IP");
        assert!(c.status.backups.is_empty());
        let no_ref = RawJson::from(json!({"namespace": "n", "name": "c", "spec": {}}));
        let skip =
            read_child(&no_ref, &statuses, &Shared::new(), &Timestamp::default()).unwrap_err();
        assert_eq!(skip.reason, SkipReason::MissingServiceRef);
    }

    #[test]
    fn children_share_their_services_ports_and_selector_when_equal() {
        let svc = read_service(&RawJson::from(json!({"namespace": "n", "name": "s", "uid": "u",
            "spec": {"ports": [{"port": 80}], "selector": {"app": "s"}}})))
        .unwrap();
        let shared = Shared::from([(("n", "s"), (&svc.ports, &svc.selector))]);
        let child = |ports: Value| {
            let raw = RawJson::from(json!({"namespace": "n", "name": "c",
                "spec": {"serviceRef": {"name": "s"}, "ports": ports, "selector": {"app": "s"}}}));
            read_child(&raw, &ByName::new(Vec::new()), &shared, &Timestamp::default()).unwrap().2
        };
        let same = child(json!([{"port": 80, "protocol": "TCP"}]));
        assert!(Arc::ptr_eq(&same.spec.ports, &svc.ports));
        assert!(Arc::ptr_eq(&same.spec.selector, &svc.selector));
        let other = child(json!([{"port": 81}]));
        assert!(!Arc::ptr_eq(&other.spec.ports, &svc.ports));
        assert_eq!(other.spec.ports[0].port, 81);
        assert!(Arc::ptr_eq(&other.spec.selector, &svc.selector));
    }

    #[test]
    fn services_keep_the_annotations_the_planner_reads() {
        let svc = read_service(&RawJson::from(json!({"namespace": "n", "name": "s", "uid": "u",
            "annotations": {annotations::EXTERNAL_IPS_COUNT: "2", "network.deckhouse.io/other": "x"}})))
        .unwrap();
        assert_eq!(
            svc.annotations.iter().collect::<Vec<_>>(),
            [(annotations::EXTERNAL_IPS_COUNT, "2")]
        );
    }

    #[test]
    fn a_service_with_a_wrong_type_is_skipped_by_name() {
        let svc = RawJson::from(json!({"namespace": "n", "name": "s", "uid": "u",
            "spec": {"ports": "80"}}));
        let skip = read_service(&svc).unwrap_err();
        assert_eq!((skip.name.as_str(), skip.reason), ("s", SkipReason::WrongType));
        assert!(skip.detail.starts_with("spec: invalid type"), "{}", skip.detail);
        let no_uid = RawJson::from(json!({"namespace": "n", "name": "s"}));
        assert_eq!(read_service(&no_uid).unwrap_err().reason, SkipReason::MissingUid);
        let ok = RawJson::from(json!({"namespace": "n", "name": "s", "uid": "u", "generation": 2,
            "spec": {"ports": [{"port": 80}], "ipFamilies": ["IPv6", "x"], "externalTrafficPolicy": "Local"}}));
        let s = read_service(&ok).unwrap();
        assert_eq!((s.generation, s.ports[0].protocol.as_str()), (2, "TCP"));
        assert_eq!(
            (s.ip_families.as_slice(), s.external_traffic_policy),
            (&[Family::V6][..], TrafficPolicy::Local)
        );
    }
}
