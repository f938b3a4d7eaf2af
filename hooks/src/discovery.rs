//! `discovery`: the core. Snapshots of classes, nodes, speakers, LoadBalancer Services, their
//! endpoint nodes and the existing children go into [`metallb_planner::plan`]; the plan comes out
//! as Kubernetes operations (children, their status, the parents' status, the classes' status),
//! the values the templates read and the per-class metrics.
//!
//! Bindings come in pairs where the hook writes: `services`/`classes`/`children` carry what
//! triggers a run (spec, annotations, identity) and `*_status` carry the status this hook writes,
//! snapshot-only (`executeHookOnEvent: false`), so the hook's own status writes never re-trigger
//! it. Whether to write is decided by comparing the rendered object with the stored one, so a
//! second run over an unchanged cluster emits nothing whatever the planner's `action` says.

use std::collections::{BTreeMap, BTreeSet};

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubernetesBinding,
    LabelSelector, MetricOperation, ObjectRef,
};
use metallb_api::names::{annotations, api, conditions as cond, labels, metrics, module};
use metallb_api::values::ClassValue;
use metallb_planner::pool::Family;
use metallb_planner::{
    ChildAction, ConditionStatus, DesiredChild, ExistingChild, Input, NodeInput, ServiceInput,
    ServicePort, ServiceRef, Timestamp, TrafficPolicy,
};
use serde_json::{Map, Value, json};

use crate::order;
use crate::types::{
    SkipReason, Skipped, class, conditions, conditions_json, is_label_value, is_ours, item_refs,
    items, module_labels, node, opt_bool, opt_i64, opt_str, req_str, skipped_metrics, status_patch,
    string_list, string_map,
};

/// LoadBalancer Services: what binds them and sizes them, without `status` (written here).
/// Only the module's own annotations are kept, so unrelated annotation churn does not run us.
const SERVICE_FILTER: &str = r#"if .spec.type == "LoadBalancer" then {
    namespace: .metadata.namespace, name: .metadata.name, uid: .metadata.uid,
    generation: .metadata.generation,
    annotations: ((.metadata.annotations // {}) | with_entries(select(.key | startswith("network.deckhouse.io/")))),
    spec: {loadBalancerClass: .spec.loadBalancerClass, ports: .spec.ports, selector: .spec.selector,
           externalTrafficPolicy: .spec.externalTrafficPolicy,
           internalTrafficPolicy: .spec.internalTrafficPolicy, ipFamilies: .spec.ipFamilies,
           publishNotReadyAddresses: .spec.publishNotReadyAddresses, clusterIP: .spec.clusterIP}
  } else null end"#;

/// The status part of LoadBalancer Services (snapshot only).
const SERVICE_STATUS_FILTER: &str = r#"if .spec.type == "LoadBalancer" then {
    namespace: .metadata.namespace, name: .metadata.name, conditions: .status.conditions,
    ingress: [(.status.loadBalancer.ingress // [])[]? | select(type == "object") | .ip | select(type == "string")]
  } else null end"#;

/// Classes' status (snapshot only).
const CLASS_STATUS_FILTER: &str = r#"{name: .metadata.name, status: .status}"#;

/// Children: identity, ownership and spec; the previous implementation's annotations are read
/// for adoption.
fn child_filter() -> String {
    format!(
        r#"{{namespace: .metadata.namespace, name: .metadata.name,
    labels: .metadata.labels, ownerReferences: .metadata.ownerReferences,
    preferredNode: (.metadata.annotations // {{}})["{}"],
    pool: (.metadata.annotations // {{}})["{}"], spec: .spec}}"#,
        annotations::PREFERRED_L2_SPEAKER_NODE,
        annotations::METALLB_ADDRESS_POOL
    )
}

/// Children's status (snapshot only).
const CHILD_STATUS_FILTER: &str =
    r#"{namespace: .metadata.namespace, name: .metadata.name, status: .status}"#;

/// Ready endpoints' nodes of one EndpointSlice (`ready: null` means ready, as in the API).
const ENDPOINT_SLICE_FILTER: &str = r#"{namespace: .metadata.namespace,
    service: (.metadata.labels // {})["kubernetes.io/service-name"],
    nodes: ([(.endpoints // [])[]? | select(type == "object") | select(.conditions.ready != false)
             | .nodeName | select(type == "string")] | unique)}"#;

/// Label of EndpointSlices naming their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Nodes without the member label, which `node-membership` writes: its writes do not run us.
fn node_filter() -> String {
    format!(
        r#"{{name: .metadata.name,
    labels: ((.metadata.labels // {{}}) | with_entries(select(.key != "{}"))),
    ready: {}}}"#,
        labels::MEMBER,
        node::READY
    )
}

/// Speaker pods: node and readiness.
fn speaker_filter() -> String {
    format!(r#"{{node: .spec.nodeName, ready: {}}}"#, node::READY)
}

pub(crate) struct Discovery;

impl Hook for Discovery {
    fn name(&self) -> &str {
        "discovery"
    }

    fn config(&self) -> HookConfig {
        let b = |name: &str, api_version: &str, kind: &str, filter: &str| {
            KubernetesBinding::new(name, api_version, kind).jq_filter(filter).queue(order::QUEUE)
        };
        HookConfig::new()
            .before_helm(order::DISCOVERY)
            .kubernetes(b("classes", api::CLASS_API_VERSION, api::CLASS_KIND, class::FILTER))
            .kubernetes(
                b("class_status", api::CLASS_API_VERSION, api::CLASS_KIND, CLASS_STATUS_FILTER)
                    .on_events([]),
            )
            .kubernetes(b("nodes", "v1", "Node", &node_filter()))
            .kubernetes(
                b("speakers", "v1", "Pod", &speaker_filter())
                    .in_namespaces([module::NAMESPACE])
                    .labels(LabelSelector::default().label(labels::APP, module::SPEAKER_APP)),
            )
            .kubernetes(b("services", "v1", "Service", SERVICE_FILTER))
            .kubernetes(b("service_status", "v1", "Service", SERVICE_STATUS_FILTER).on_events([]))
            .kubernetes(b("children", api::CHILD_API_VERSION, api::CHILD_KIND, &child_filter()))
            .kubernetes(
                b("child_status", api::CHILD_API_VERSION, api::CHILD_KIND, CHILD_STATUS_FILTER)
                    .on_events([]),
            )
            .kubernetes(
                b("endpoint_slices", "discovery.k8s.io/v1", "EndpointSlice", ENDPOINT_SLICE_FILTER)
                    .labels(LabelSelector::default().expression(
                        SERVICE_NAME_LABEL,
                        "Exists",
                        Vec::<String>::new(),
                    )),
            )
    }

    fn run(&self, input: &HookInput) -> Result<HookOutput, HookError> {
        let snapshots = Snapshots {
            classes: items(input, "classes")?,
            class_status: items(input, "class_status")?,
            nodes: items(input, "nodes")?,
            speakers: items(input, "speakers")?,
            services: item_refs(input, "services")?,
            service_status: item_refs(input, "service_status")?,
            children: item_refs(input, "children")?,
            child_status: item_refs(input, "child_status")?,
            endpoint_slices: item_refs(input, "endpoint_slices")?,
        };
        let adopted = input
            .values()
            .pointer("/internal/migrationOfOldFashionedLBsAdoptionComplete")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut out = input.output();
        if !adopted {
            // Allocating now would give Services served before the upgrade new IPs; the adoption
            // hook (beforeHelm, order 10) pins them first and then sets the flag.
            tracing::info!("waiting for the adoption of Services served before the upgrade");
            return Ok(out);
        }
        let outcome = handle(&snapshots, &crate::types::now());
        out.values.set("internal.l2loadbalancers", &outcome.class_values)?;
        out.kubernetes = outcome.ops;
        out.metrics = outcome.metrics;
        Ok(out)
    }
}

/// Every snapshot of one run, as raw items (nulls already dropped). The snapshots that grow
/// with the Services (one item per Service, per IP or per EndpointSlice) are borrowed from the
/// input rather than copied: at tens of thousands of Services the copy doubled the memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshots<'a> {
    pub(crate) classes: Vec<Value>,
    pub(crate) class_status: Vec<Value>,
    pub(crate) nodes: Vec<Value>,
    pub(crate) speakers: Vec<Value>,
    pub(crate) services: Vec<&'a Value>,
    pub(crate) service_status: Vec<&'a Value>,
    pub(crate) children: Vec<&'a Value>,
    pub(crate) child_status: Vec<&'a Value>,
    pub(crate) endpoint_slices: Vec<&'a Value>,
}

/// What a missing field reads as, borrowed.
static NULL: Value = Value::Null;

/// What one run produces.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) ops: Vec<KubeOperation>,
    pub(crate) class_values: Vec<ClassValue>,
    pub(crate) metrics: Vec<MetricOperation>,
}

/// (namespace, name), borrowed from the snapshots: building and looking up the keys of tens of
/// thousands of objects allocates nothing.
type Key<'a> = (&'a str, &'a str);

fn key_of(v: &Value) -> Option<Key<'_>> {
    Some((v.get("namespace")?.as_str()?, v.get("name")?.as_str()?))
}

/// The planner's input from the snapshots, the raw children and statuses for comparisons
/// (borrowed from the snapshots), and everything skipped.
struct Read<'a> {
    input: Input,
    classes: Vec<class::Class>,
    class_status: BTreeMap<String, Value>,
    service_status: BTreeMap<Key<'a>, (Option<&'a Value>, Vec<String>)>,
    children: BTreeMap<Key<'a>, &'a Value>,
    child_status: BTreeMap<Key<'a>, &'a Value>,
    skipped: Vec<Skipped>,
}

fn read<'a>(s: &Snapshots<'a>, now: &Timestamp) -> Read<'a> {
    let mut skipped = Vec::new();

    let class_status: BTreeMap<String, Value> = s
        .class_status
        .iter()
        .filter_map(|v| {
            Some((
                v.get("name")?.as_str()?.to_owned(),
                v.get("status").cloned().unwrap_or_default(),
            ))
        })
        .collect();
    let mut classes = class::read_all(&s.classes, &mut skipped);
    for c in &mut classes {
        c.input.conditions =
            conditions(class_status.get(&c.input.name).and_then(|st| st.get("conditions")), now);
    }

    let mut nodes = node::read_all(&s.nodes, &mut skipped);
    apply_speaker_readiness(&mut nodes, &s.speakers);

    let mut endpoints: BTreeMap<Key<'a>, BTreeSet<String>> = BTreeMap::new();
    for slice in &s.endpoint_slices {
        let text = |key| slice.get(key).and_then(Value::as_str);
        let (Some(ns), Some(svc), Ok(list)) =
            (text("namespace"), text("service"), string_list(slice, "nodes"))
        else {
            continue;
        };
        endpoints.entry((ns, svc)).or_default().extend(list);
    }

    let service_status: BTreeMap<Key<'a>, (Option<&'a Value>, Vec<String>)> = s
        .service_status
        .iter()
        .filter_map(|v| {
            let ingress = string_list(v, "ingress").unwrap_or_default();
            Some((key_of(v)?, (v.get("conditions"), ingress)))
        })
        .collect();
    let mut services = Vec::new();
    for v in &s.services {
        match read_service(v) {
            Ok(mut svc) => {
                let k = (svc.namespace.as_str(), svc.name.as_str());
                if let Some((conds, ingress)) = service_status.get(&k) {
                    svc.conditions = conditions(*conds, now);
                    svc.ingress = ingress.clone();
                }
                svc.ready_endpoint_nodes = endpoints.get(&k).cloned().unwrap_or_default();
                services.push(svc);
            }
            Err(skip) => skipped.push(skip),
        }
    }

    let child_status: BTreeMap<Key<'a>, &'a Value> = s
        .child_status
        .iter()
        .filter_map(|v| Some((key_of(v)?, v.get("status").unwrap_or(&NULL))))
        .collect();
    let mut children_raw = BTreeMap::new();
    let mut children = Vec::new();
    for v in &s.children {
        match read_child(v, &child_status, now) {
            Ok(child) => {
                // The child's namespace and name, as read from `v` by `read_child`.
                let ns = v.get("namespace").and_then(Value::as_str).unwrap_or_default();
                let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
                children_raw.insert((ns, name), *v);
                children.push(child);
            }
            Err(skip) => skipped.push(skip),
        }
    }

    Read {
        input: Input {
            now: now.clone(),
            classes: classes.iter().map(|c| c.input.clone()).collect(),
            nodes,
            services,
            children,
        },
        classes,
        class_status,
        service_status,
        children: children_raw,
        child_status,
        skipped,
    }
}

/// Speaker readiness per node. Until speakers exist (or while none is ready, e.g. during a
/// rollout of the whole DaemonSet) readiness is unknown and filters nothing: otherwise every IP
/// would lose its node at once, which is the outage the speakers' absence does not cause by
/// itself (the previous announcer keeps answering until told otherwise).
fn apply_speaker_readiness(nodes: &mut [NodeInput], speakers: &[Value]) {
    let ready = ready_speaker_nodes(speakers);
    for n in nodes {
        n.speaker_ready = ready.is_empty() || ready.contains(&n.name);
    }
}

/// Nodes with a Ready speaker pod.
fn ready_speaker_nodes(speakers: &[Value]) -> BTreeSet<String> {
    speakers
        .iter()
        .filter(|p| opt_bool(p, "ready").unwrap_or(false))
        .filter_map(|p| opt_str(p, "node").ok().flatten())
        .collect()
}

/// Member nodes where no speaker pod is Ready. Empty while there is no speaker pod at all: the
/// DaemonSet has not been rendered yet, which is not a node's fault.
fn member_nodes_without_ready_speaker<'a>(
    members: &'a BTreeSet<String>,
    speakers: &[Value],
) -> Vec<&'a str> {
    if speakers.is_empty() {
        return Vec::new();
    }
    let ready = ready_speaker_nodes(speakers);
    members.iter().filter(|m| !ready.contains(*m)).map(String::as_str).collect()
}

fn policy(v: &Value, key: &str) -> Result<TrafficPolicy, String> {
    Ok(match opt_str(v, key)?.as_deref() {
        Some("Local") => TrafficPolicy::Local,
        _ => TrafficPolicy::Cluster,
    })
}

/// `spec.ports` with the API's default protocol made explicit, so the copy in a child compares
/// equal to what the API stores.
fn ports(v: &Value) -> Result<Vec<ServicePort>, String> {
    let raw = match v.get("ports") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(p) => p.clone(),
    };
    let mut ports: Vec<ServicePort> =
        serde_json::from_value(raw).map_err(|e| format!("spec.ports: {e}"))?;
    for p in &mut ports {
        if p.protocol.is_empty() {
            p.protocol = "TCP".to_owned();
        }
    }
    Ok(ports)
}

fn read_service(v: &Value) -> Result<ServiceInput, Skipped> {
    let namespace = opt_str(v, "namespace").ok().flatten().unwrap_or_default();
    let name = req_str(v, "name")
        .map_err(|e| Skipped::new("Service", &namespace, "", SkipReason::MissingName, e))?;
    let bad = |e: String| Skipped::new("Service", &namespace, &name, SkipReason::WrongType, e);
    let uid = req_str(v, "uid")
        .map_err(|e| Skipped::new("Service", &namespace, &name, SkipReason::MissingUid, e))?;
    let spec = v.get("spec").unwrap_or(&NULL);
    let ip_families = string_list(spec, "ipFamilies")
        .map_err(bad)?
        .iter()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        })
        .collect();
    Ok(ServiceInput {
        generation: opt_i64(v, "generation").map_err(bad)?,
        load_balancer_class: opt_str(spec, "loadBalancerClass").map_err(bad)?,
        annotations: string_map(v, "annotations").map_err(bad)?,
        ports: ports(spec).map_err(bad)?,
        selector: string_map(spec, "selector").map_err(bad)?,
        external_traffic_policy: policy(spec, "externalTrafficPolicy").map_err(bad)?,
        internal_traffic_policy: policy(spec, "internalTrafficPolicy").map_err(bad)?,
        ip_families,
        publish_not_ready_addresses: opt_bool(spec, "publishNotReadyAddresses").map_err(bad)?,
        cluster_ip: opt_str(spec, "clusterIP").map_err(bad)?.filter(|c| !c.is_empty()),
        uid,
        namespace,
        name,
        ..ServiceInput::default()
    })
}

fn read_child(
    v: &Value,
    statuses: &BTreeMap<Key<'_>, &Value>,
    now: &Timestamp,
) -> Result<ExistingChild, Skipped> {
    let kind = api::CHILD_KIND;
    let namespace = opt_str(v, "namespace").ok().flatten().unwrap_or_default();
    let name = req_str(v, "name")
        .map_err(|e| Skipped::new(kind, &namespace, "", SkipReason::MissingName, e))?;
    let spec = v.get("spec").unwrap_or(&NULL);
    let service =
        spec.get("serviceRef").and_then(|r| req_str(r, "name").ok()).ok_or_else(|| {
            Skipped::new(
                kind,
                &namespace,
                &name,
                SkipReason::MissingServiceRef,
                "spec.serviceRef.name is missing",
            )
        })?;
    let owner_uid = v.get("ownerReferences").and_then(Value::as_array).and_then(|refs| {
        refs.iter()
            .find(|r| r.get("kind").and_then(Value::as_str) == Some("Service"))
            .and_then(|r| r.get("uid")?.as_str().map(str::to_owned))
    });
    let status = statuses.get(&(namespace.as_str(), name.as_str())).copied().unwrap_or(&NULL);
    let legacy_ip =
        status.pointer("/loadBalancer/ingress/0/ip").and_then(Value::as_str).map(str::to_owned);
    // Fields the planner only compares are read leniently: what is written is decided by
    // comparing rendered and stored objects, not by these values.
    Ok(ExistingChild {
        owner_uid,
        preferred_node: opt_str(v, "preferredNode").ok().flatten(),
        spec: metallb_planner::ChildSpec {
            service_ref: ServiceRef { namespace: namespace.clone(), name: service },
            class: opt_str(spec, "metalLoadBalancerClass")
                .ok()
                .flatten()
                .or_else(|| opt_str(v, "pool").ok().flatten())
                .unwrap_or_default(),
            index: spec.get("index").and_then(Value::as_u64).and_then(|i| u32::try_from(i).ok()),
            desired_ip: opt_str(spec, "desiredIP").ok().flatten(),
            sharing_key: opt_str(spec, "sharedIpKey").ok().flatten(),
            ports: ports(spec).unwrap_or_default(),
            selector: string_map(spec, "selector").unwrap_or_default(),
            external_traffic_policy: policy(spec, "externalTrafficPolicy").unwrap_or_default(),
            internal_traffic_policy: policy(spec, "internalTrafficPolicy").unwrap_or_default(),
            publish_not_ready_addresses: opt_bool(spec, "publishNotReadyAddresses")
                .unwrap_or(false),
            cluster_ip: opt_str(spec, "clusterIP").ok().flatten(),
        },
        status: metallb_planner::ChildStatus {
            ip: opt_str(status, "ip").ok().flatten().or(legacy_ip),
            node: opt_str(status, "node").ok().flatten(),
            backups: string_list(status, "backupNodes").unwrap_or_default(),
            conditions: conditions(status.get("conditions"), now),
        },
        namespace,
        name,
    })
}

/// The child object as written: the previous implementation's spec shape plus the index, owned
/// by the parent so that deleting the Service removes its children.
pub(crate) fn child_object(c: &DesiredChild) -> Value {
    let mut labels_ = module_labels();
    labels_.insert(labels::PARENT_SERVICE.into(), c.spec.service_ref.name.clone().into());
    // A class name is a DNS subdomain (up to 253 characters) and not always a valid label value.
    if is_label_value(&c.spec.class) {
        labels_.insert(labels::CLASS.into(), c.spec.class.clone().into());
    }
    let mut spec = Map::new();
    spec.insert(
        "serviceRef".into(),
        json!({"name": c.spec.service_ref.name, "namespace": c.spec.service_ref.namespace}),
    );
    spec.insert("metalLoadBalancerClass".into(), c.spec.class.clone().into());
    spec.insert("index".into(), c.spec.index.unwrap_or_default().into());
    // The CRD only accepts addresses; an invalid request is reported on the Service instead.
    if let Some(ip) =
        c.spec.desired_ip.as_deref().filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    {
        spec.insert("desiredIP".into(), ip.into());
    }
    if let Some(k) = &c.spec.sharing_key {
        spec.insert("sharedIpKey".into(), k.clone().into());
    }
    spec.insert("type".into(), "LoadBalancer".into());
    spec.insert("loadBalancerClass".into(), api::CHILD_LOAD_BALANCER_CLASS.into());
    spec.insert("ports".into(), serde_json::to_value(&c.spec.ports).unwrap_or_default());
    if !c.spec.selector.is_empty() {
        spec.insert("selector".into(), serde_json::to_value(&c.spec.selector).unwrap_or_default());
    }
    let policy_name = |p: TrafficPolicy| match p {
        TrafficPolicy::Cluster => "Cluster",
        TrafficPolicy::Local => "Local",
    };
    spec.insert("externalTrafficPolicy".into(), policy_name(c.spec.external_traffic_policy).into());
    spec.insert("internalTrafficPolicy".into(), policy_name(c.spec.internal_traffic_policy).into());
    spec.insert("publishNotReadyAddresses".into(), c.spec.publish_not_ready_addresses.into());
    if let Some(ip) = &c.spec.cluster_ip {
        spec.insert("clusterIP".into(), ip.clone().into());
    }
    json!({
        "apiVersion": api::CHILD_API_VERSION,
        "kind": api::CHILD_KIND,
        "metadata": {
            "name": c.name,
            "namespace": c.namespace,
            "labels": labels_,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Service",
                "name": c.spec.service_ref.name,
                "uid": c.owner_uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    })
}

/// The child status as written; `null` members are removed by the merge patch.
pub(crate) fn child_status(c: &DesiredChild) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ip".into(), c.status.ip.clone().into());
    m.insert("node".into(), c.status.node.clone().into());
    m.insert("backupNodes".into(), c.status.backups.clone().into());
    m.insert("conditions".into(), conditions_json(&c.status.conditions));
    m.insert(
        "loadBalancer".into(),
        c.status.ip.as_ref().map_or(Value::Null, |ip| json!({"ingress": [{"ip": ip}]})),
    );
    m
}

/// Whether the stored child already has the rendered metadata and spec.
fn child_matches(stored: Option<&Value>, rendered: &Value) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    let labels_ = stored.get("labels").cloned().unwrap_or_default();
    labels_ == rendered["metadata"]["labels"]
        && stored.get("ownerReferences") == Some(&rendered["metadata"]["ownerReferences"])
        && stored.get("spec") == Some(&rendered["spec"])
}

/// `a,b,c` for up to three nodes, else `N nodes`: fits a `kubectl get` column.
fn node_summary(nodes: &[String]) -> String {
    match nodes.len() {
        0 => "none".to_owned(),
        1..=3 => nodes.join(","),
        n => format!("{n} nodes"),
    }
}

/// Snapshots → plan → operations, values and metrics.
pub(crate) fn handle(s: &Snapshots<'_>, now: &Timestamp) -> Outcome {
    let r = read(s, now);
    let plan = metallb_planner::plan(&r.input);
    let mut skipped = r.skipped;
    let mut ops = Vec::new();

    for d in &plan.diagnostics {
        tracing::info!(diagnostic = d.label(), "{d}");
    }

    for d in &plan.deletions {
        let k = (d.namespace.as_str(), d.name.as_str());
        let ours = r
            .children
            .get(&k)
            .map(|c| is_ours(&string_map(c, "labels").unwrap_or_default()))
            .unwrap_or(false);
        if ours {
            tracing::info!(
                namespace = d.namespace.as_str(),
                name = d.name.as_str(),
                reason = d.reason.label(),
                "deleting child"
            );
            ops.push(KubeOperation::DeleteInBackground(ObjectRef::namespaced(
                api::CHILD_API_VERSION,
                api::CHILD_KIND,
                &d.namespace,
                &d.name,
            )));
        } else {
            skipped.push(Skipped::new(
                api::CHILD_KIND,
                &d.namespace,
                &d.name,
                SkipReason::ForeignChild,
                format!(
                    "not deleted ({}): not labelled heritage=deckhouse, module=metallb",
                    d.reason.label()
                ),
            ));
        }
    }

    let mut status_ops = Vec::new();
    for c in &plan.children {
        let k = (c.namespace.as_str(), c.name.as_str());
        let object = child_object(c);
        let create = matches!(c.action, ChildAction::Create);
        if create || !child_matches(r.children.get(&k).copied(), &object) {
            ops.push(KubeOperation::CreateOrUpdate { object });
        }
        let stored = if create { None } else { r.child_status.get(&k).copied() };
        if let Some(patch) = status_patch(stored, &child_status(c)) {
            status_ops.push(
                KubeOperation::merge_patch(
                    ObjectRef::namespaced(
                        api::CHILD_API_VERSION,
                        api::CHILD_KIND,
                        &c.namespace,
                        &c.name,
                    ),
                    json!({"status": patch}),
                )
                .status(),
            );
        }
    }
    ops.extend(status_ops);

    for sp in &plan.services {
        let k = (sp.namespace.as_str(), sp.name.as_str());
        let wanted_conditions = conditions_json(&sp.conditions);
        let unchanged = r.service_status.get(&k).is_some_and(|(conds, ingress)| {
            // No conditions stored compares as an empty list.
            let stored_equal = match conds.filter(|c| !c.is_null()) {
                Some(c) => *c == wanted_conditions,
                None => wanted_conditions == Value::Array(Vec::new()),
            };
            stored_equal && *ingress == sp.ingress
        });
        if unchanged {
            continue;
        }
        let ingress: Vec<Value> = sp.ingress.iter().map(|ip| json!({"ip": ip})).collect();
        ops.push(
            KubeOperation::merge_patch(
                ObjectRef::namespaced("v1", "Service", &sp.namespace, &sp.name),
                json!({"status": {"loadBalancer": {"ingress": ingress}, "conditions": wanted_conditions}}),
            )
            .status()
            // The Service may be gone by the time the patch runs; its children go with it.
            .ignore_missing_object(),
        );
    }

    let mut class_values = Vec::new();
    let mut metric_ops = vec![MetricOperation::expire(metrics::GROUP_DISCOVERY)];
    for cp in &plan.classes {
        let Some(c) = r.classes.iter().find(|c| c.input.name == cp.name) else { continue };
        let is_default = cp
            .conditions
            .iter()
            .any(|x| x.type_ == cond::DEFAULT_CLASS && x.status == ConditionStatus::True);
        class_values.push(ClassValue {
            name: c.input.name.clone(),
            address_pool: c.input.address_pool.clone(),
            interfaces: c.interfaces.clone(),
            node_selector: c.input.node_selector.clone(),
            is_default,
        });
        let mut wanted = Map::new();
        wanted.insert("conditions".into(), conditions_json(&cp.conditions));
        wanted.insert("poolSize".into(), cp.pool_size.clone().into());
        wanted.insert("allocated".into(), cp.allocated.into());
        wanted.insert("memberNodes".into(), cp.candidate_nodes.clone().into());
        wanted.insert("nodeSummary".into(), node_summary(&cp.candidate_nodes).into());
        wanted.insert("observedGeneration".into(), c.input.generation.into());
        if let Some(patch) = status_patch(r.class_status.get(&cp.name), &wanted) {
            ops.push(
                KubeOperation::merge_patch(
                    ObjectRef::cluster(api::CLASS_API_VERSION, api::CLASS_KIND, &cp.name),
                    json!({"status": patch}),
                )
                .status()
                .ignore_missing_object(),
            );
        }
        let class_label = |m: MetricOperation| m.label("class", cp.name.as_str());
        // A pool size beyond f64 precision (huge IPv6 pools) is still the right magnitude.
        let size: f64 = cp.pool_size.parse().unwrap_or(f64::MAX);
        metric_ops.push(class_label(MetricOperation::set(
            metrics::GROUP_DISCOVERY,
            metrics::CLASS_POOL_SIZE,
            size,
        )));
        metric_ops.push(class_label(MetricOperation::set(
            metrics::GROUP_DISCOVERY,
            metrics::CLASS_ALLOCATED_IPS,
            cp.allocated as f64,
        )));
        let not_full = plan
            .services
            .iter()
            .filter(|sp| {
                let bound = sp.conditions.iter().any(|x| {
                    x.type_ == cond::LOAD_BALANCER_CLASS
                        && x.status == ConditionStatus::True
                        && x.message == cp.name
                });
                let short = sp.conditions.iter().any(|x| {
                    x.type_ == cond::ALL_PUBLIC_IPS_ASSIGNED && x.status == ConditionStatus::False
                });
                bound && short
            })
            .count();
        metric_ops.push(class_label(MetricOperation::set(
            metrics::GROUP_DISCOVERY,
            metrics::CLASS_SERVICES_NOT_FULLY_ASSIGNED,
            not_full as f64,
        )));
    }
    let mut unassigned: BTreeMap<(&str, &str, &str), u32> = BTreeMap::new();
    for c in plan.children.iter().filter(|c| c.status.ip.is_none()) {
        *unassigned
            .entry((c.namespace.as_str(), c.spec.service_ref.name.as_str(), c.spec.class.as_str()))
            .or_default() += 1;
    }
    for ((namespace, name, class_name), n) in unassigned {
        metric_ops.push(
            MetricOperation::set(
                metrics::GROUP_DISCOVERY,
                metrics::SERVICE_UNASSIGNED_IPS,
                f64::from(n),
            )
            .label("namespace", namespace)
            .label("name", name)
            .label("class", class_name),
        );
    }
    for node in member_nodes_without_ready_speaker(&plan.nodes.members, &s.speakers) {
        metric_ops.push(
            MetricOperation::set(
                metrics::GROUP_DISCOVERY,
                metrics::MEMBER_NODE_WITHOUT_READY_SPEAKER,
                1.0,
            )
            .label("node", node),
        );
    }
    metric_ops.extend(skipped_metrics(&skipped, metrics::GROUP_DISCOVERY));

    Outcome { ops, class_values, metrics: metric_ops }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::jq;

    #[test]
    fn filters_select_load_balancers_and_survive_odd_objects() {
        let odd = json!({"metadata": {"name": "s", "namespace": "n", "uid": "u"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "status": {"conditions": "weird", "loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, "x", {"hostname": "h"}]}}});
        let svc = jq::run(SERVICE_FILTER, &odd).unwrap();
        assert_eq!(svc["annotations"], json!({}));
        assert!(svc.get("status").is_none(), "status never triggers discovery");
        let status = jq::run(SERVICE_STATUS_FILTER, &odd).unwrap();
        assert_eq!(status["ingress"], json!(["192.0.2.1"]));
        let cluster_ip = json!({"metadata": {"name": "c"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(jq::run(SERVICE_FILTER, &cluster_ip).unwrap(), Value::Null);
        assert_eq!(jq::run(SERVICE_STATUS_FILTER, &cluster_ip).unwrap(), Value::Null);
    }

    #[test]
    fn node_filter_hides_the_member_label_and_reads_readiness() {
        let n = json!({"metadata": {"name": "a", "labels": {labels::MEMBER: "", "x": "y"}},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(
            jq::run(&node_filter(), &n).unwrap(),
            json!({"name": "a", "labels": {"x": "y"}, "ready": true})
        );
        for status in
            [json!({}), json!({"conditions": "x"}), json!({"conditions": [1, {"type": "Ready"}]})]
        {
            let n = json!({"metadata": {"name": "b"}, "status": status});
            assert_eq!(jq::run(&node_filter(), &n).unwrap()["ready"], false);
        }
    }

    #[test]
    fn endpoint_slices_count_ready_and_unknown_endpoints() {
        let slice = json!({"metadata": {"namespace": "n", "labels": {SERVICE_NAME_LABEL: "s"}},
            "endpoints": [
                {"nodeName": "b", "conditions": {"ready": true}},
                {"nodeName": "a"},
                {"nodeName": "c", "conditions": {"ready": false}},
                {"conditions": {"ready": true}}]});
        assert_eq!(
            jq::run(ENDPOINT_SLICE_FILTER, &slice).unwrap(),
            json!({"namespace": "n", "service": "s", "nodes": ["a", "b"]})
        );
        let empty = json!({"metadata": {"namespace": "n"}, "endpoints": null});
        assert_eq!(jq::run(ENDPOINT_SLICE_FILTER, &empty).unwrap()["nodes"], json!([]));
    }

    #[test]
    fn child_filter_reads_the_previous_implementation_annotations() {
        let child = json!({"metadata": {"name": "c", "namespace": "n",
            "annotations": {annotations::PREFERRED_L2_SPEAKER_NODE: "front-1", annotations::METALLB_ADDRESS_POOL: "front"}},
            "spec": {"serviceRef": {"name": "s"}}});
        let v = jq::run(&child_filter(), &child).unwrap();
        assert_eq!((&v["preferredNode"], &v["pool"]), (&json!("front-1"), &json!("front")));
        let bare = jq::run(&child_filter(), &json!({"metadata": {"name": "c"}})).unwrap();
        assert_eq!(bare["preferredNode"], Value::Null);
    }

    fn desired(class: &str, desired_ip: Option<&str>) -> DesiredChild {
        DesiredChild {
            namespace: "n".into(),
            name: metallb_planner::naming::child_name("s", class, 0),
            owner_uid: "uid-1".into(),
            action: ChildAction::Create,
            spec: metallb_planner::ChildSpec {
                service_ref: ServiceRef { namespace: "n".into(), name: "s".into() },
                class: class.into(),
                index: Some(0),
                desired_ip: desired_ip.map(str::to_owned),
                ..Default::default()
            },
            status: metallb_planner::ChildStatus::default(),
        }
    }

    #[test]
    fn child_objects_are_valid_for_the_api() {
        let o = child_object(&desired("front", Some("not-an-ip")));
        assert_eq!(o["metadata"]["labels"][labels::CLASS], "front");
        assert!(o["spec"].get("desiredIP").is_none(), "the CRD accepts only addresses");
        assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let long = format!("class.{}", "x".repeat(70));
        let o = child_object(&desired(&long, Some("192.0.2.1")));
        assert!(o["metadata"]["labels"].get(labels::CLASS).is_none(), "not a label value");
        assert!(metallb_planner::naming::is_dns_label(o["metadata"]["name"].as_str().unwrap()));
        assert_eq!(o["spec"]["desiredIP"], "192.0.2.1");
        let status = child_status(&desired("front", None));
        assert_eq!(status["ip"], Value::Null);
        assert_eq!(status["loadBalancer"], Value::Null);
    }

    #[test]
    fn node_summaries() {
        let n = |k: usize| (0..k).map(|i| format!("n{i}")).collect::<Vec<_>>();
        assert_eq!(node_summary(&n(0)), "none");
        assert_eq!(node_summary(&n(2)), "n0,n1");
        assert_eq!(node_summary(&n(5)), "5 nodes");
    }

    #[test]
    fn member_nodes_without_a_ready_speaker_are_reported_once_speakers_exist() {
        let members: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
        assert!(member_nodes_without_ready_speaker(&members, &[]).is_empty());
        let speakers = [
            json!({"node": "a", "ready": true}),
            json!({"node": "b", "ready": false}),
            json!({"node": "z", "ready": true}),
        ];
        assert_eq!(member_nodes_without_ready_speaker(&members, &speakers), ["b", "c"]);
    }

    #[test]
    fn speakers_filter_only_when_one_is_ready() {
        let mut nodes = vec![
            NodeInput { name: "a".into(), ..Default::default() },
            NodeInput { name: "b".into(), ..Default::default() },
        ];
        apply_speaker_readiness(&mut nodes, &[]);
        assert!(nodes.iter().all(|n| n.speaker_ready), "no speakers: unknown, no filter");
        apply_speaker_readiness(&mut nodes, &[json!({"node": "a", "ready": false})]);
        assert!(nodes.iter().all(|n| n.speaker_ready), "none ready: unknown, no filter");
        apply_speaker_readiness(
            &mut nodes,
            &[json!({"node": "a", "ready": true}), json!({"node": "b", "ready": false})],
        );
        assert_eq!(nodes.iter().map(|n| n.speaker_ready).collect::<Vec<_>>(), [true, false]);
    }
}
