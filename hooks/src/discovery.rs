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

mod bgp;
mod failback;
mod read;
mod write;

use std::collections::BTreeMap;

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubeOutput,
    KubernetesBinding, LabelSelector, MetricOperation, ObjectRef, RawJson,
};
use metallb_api::names::{annotations, api, conditions as cond, labels, metrics, module};
use metallb_api::values::ClassValue;
use metallb_planner::{
    ChildAction, CompactString, Condition, ConditionStatus, DesiredChild, Rendered,
    ServiceStatusPlan, Timestamp,
};
use serde_json::Value;

use read::Snapshots;
use write::{
    CHILD_STATUS_MEMBERS, CLASS_STATUS_MEMBERS, child_object, child_status, class_status,
    service_status,
};

use crate::order;
use crate::types::{SkipReason, Skipped, class, is_ours, items, node, skipped_metrics};
use crate::write_guard::{self, WriteGuard};

/// LoadBalancer Services: what binds them and sizes them, without `status` (written here).
/// Only the annotations the planner reads (the module's and MetalLB's pool and IP keys) are kept,
/// so unrelated annotation churn does not run us.
const SERVICE_FILTER: &str = r#"if .spec.type == "LoadBalancer" then {
    namespace: .metadata.namespace, name: .metadata.name, uid: .metadata.uid,
    generation: .metadata.generation,
    annotations: ((.metadata.annotations // {}) | with_entries(select(.key | startswith("network.deckhouse.io/")
        or . == "metallb.io/address-pool" or . == "metallb.universe.tf/address-pool"
        or . == "metallb.io/loadBalancerIPs"))),
    spec: {loadBalancerClass: .spec.loadBalancerClass, loadBalancerIP: .spec.loadBalancerIP,
           ports: .spec.ports, selector: .spec.selector,
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
    resourcePolicy: (.metadata.annotations // {{}})["{}"],
    preferredNode: (.metadata.annotations // {{}})["{}"],
    pool: (.metadata.annotations // {{}})["{}"], spec: .spec}}"#,
        write::RESOURCE_POLICY,
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
    ready: {}, readySince: {}}}"#,
        labels::MEMBER,
        node::READY,
        node::READY_SINCE
    )
}

/// Namespaces being deleted (`deletionTimestamp` set); the others filter to `null`.
const NAMESPACE_FILTER: &str =
    r#"if .metadata.deletionTimestamp != null then .metadata.name else null end"#;

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
            .schedule(failback::timer())
            .kubernetes(b("nodes", "v1", "Node", &node_filter()))
            .kubernetes(b("pools", api::CLASS_API_VERSION, api::POOL_KIND, bgp::POOL_FILTER))
            .kubernetes(
                b("pool_status", api::CLASS_API_VERSION, api::POOL_KIND, bgp::POOL_STATUS_FILTER)
                    .on_events([]),
            )
            .kubernetes(b(
                "configurations",
                api::CLASS_API_VERSION,
                api::CONFIGURATION_KIND,
                bgp::CONFIGURATION_FILTER,
            ))
            .kubernetes(b("peers", api::CLASS_API_VERSION, api::BGP_PEER_KIND, bgp::PEER_FILTER))
            .kubernetes(b(
                "announcements",
                api::CHILD_API_VERSION,
                api::BGP_ANNOUNCEMENT_KIND,
                bgp::ANNOUNCEMENT_FILTER,
            ))
            .kubernetes(
                b(
                    "announcement_status",
                    api::CHILD_API_VERSION,
                    api::BGP_ANNOUNCEMENT_KIND,
                    bgp::ANNOUNCEMENT_STATUS_FILTER,
                )
                .on_events([]),
            )
            .kubernetes(
                b("speakers", "v1", "Pod", &node::speaker_filter())
                    .in_namespaces([module::NAMESPACE])
                    .labels(LabelSelector::default().label(labels::APP, module::SPEAKER_APP)),
            )
            .kubernetes(b("namespaces", "v1", "Namespace", NAMESPACE_FILTER))
            .kubernetes(
                b("write_ledger", "v1", "ConfigMap", write_guard::LEDGER_FILTER)
                    .in_namespaces([module::NAMESPACE])
                    .names([write_guard::LEDGER_NAME])
                    .on_events([]),
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

    fn run(&self, mut input: HookInput) -> Result<HookOutput, HookError> {
        let services = input.take_snapshot_json("services")?;
        let endpoint_slices = input.take_snapshot_json("endpoint_slices")?;
        let mut snapshots = Snapshots {
            classes: items(&input, "classes")?,
            nodes: items(&input, "nodes")?,
            speakers: items(&input, "speakers")?,
            class_status: input.snapshot_json("class_status")?,
            services,
            service_status: input.snapshot_json("service_status")?,
            children: input.snapshot_json("children")?,
            child_status: input.snapshot_json("child_status")?,
            endpoint_slices,
            terminating: items(&input, "namespaces")?
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            failback_hold_down_seconds: failback::hold_down_seconds(input.values()),
            write_ledger: items(&input, "write_ledger")?.into_iter().next(),
            bgp: bgp::BgpSnapshots {
                pools: items(&input, "pools")?,
                pool_status: items(&input, "pool_status")?,
                configurations: items(&input, "configurations")?,
                peers: items(&input, "peers")?,
                announcements: items(&input, "announcements")?,
                announcement_status: items(&input, "announcement_status")?,
            },
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
        let now = crate::types::now();
        if failback::timer_only(&input) && !failback::due(&snapshots, &now) {
            // Nothing can have changed since the last run but the clock, and no hold-down is
            // running or just ended: no plan, and no output (the metrics stay as they are).
            return Ok(out);
        }
        let outcome = handle(&mut snapshots, &now, &mut out.kubernetes)?;
        out.values.set("internal.l2loadbalancers", &outcome.class_values)?;
        out.metrics = outcome.metrics;
        Ok(out)
    }
}

/// What one run produces besides its Kubernetes operations.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) class_values: Vec<ClassValue>,
    pub(crate) metrics: Vec<MetricOperation>,
}

/// What the metrics count while children and Service statuses go by one at a time.
#[derive(Default)]
struct Tally {
    /// IPs without an address per (namespace, Service, class).
    unassigned: BTreeMap<(CompactString, CompactString, CompactString), u32>,
    /// Services bound to a class that lack an IP, per class.
    not_fully_assigned: BTreeMap<CompactString, u32>,
}

impl Tally {
    fn child(&mut self, c: &DesiredChild) {
        if c.status.ip.is_none() {
            let key = (c.namespace.clone(), c.spec.service_ref.name.clone(), c.spec.class.clone());
            *self.unassigned.entry(key).or_default() += 1;
        }
    }

    fn service(&mut self, sp: &ServiceStatusPlan) {
        let bound = sp
            .conditions
            .iter()
            .find(|x| x.type_ == cond::LOAD_BALANCER_CLASS && x.status == ConditionStatus::True);
        let short = sp.conditions.iter().any(|x| {
            x.type_ == cond::ALL_PUBLIC_IPS_ASSIGNED && x.status == ConditionStatus::False
        });
        if let (Some(bound), true) = (bound, short) {
            *self.not_fully_assigned.entry(bound.message.clone()).or_default() += 1;
        }
    }

    fn unassigned_ip_metrics(&self) -> impl Iterator<Item = MetricOperation> + '_ {
        self.unassigned.iter().map(|((namespace, name, class_name), n)| {
            MetricOperation::set(
                metrics::GROUP_DISCOVERY,
                metrics::SERVICE_UNASSIGNED_IPS,
                f64::from(*n),
            )
            .label("namespace", namespace.as_str())
            .label("name", name.as_str())
            .label("class", class_name.as_str())
        })
    }
}

/// `a,b,c` for up to three nodes, else `N nodes`: fits a `kubectl get` column.
fn node_summary(nodes: &[String]) -> String {
    match nodes.len() {
        0 => "none".to_owned(),
        1..=3 => nodes.join(","),
        n => format!("{n} nodes"),
    }
}

/// A child's object, unless stored as it is, then its status patch, unless already so.
fn child_ops(
    c: &DesiredChild,
    r: &read::Read<'_>,
    ops: &mut WriteGuard<'_>,
) -> serde_json::Result<()> {
    let object = child_object(c);
    let create = matches!(c.action, ChildAction::Create);
    let stored = r.children.get(&c.namespace, &c.name);
    if create || !stored.is_some_and(|stored| object.matches(stored)) {
        ops.push(KubeOperation::CreateOrUpdate { object: RawJson::new(&object)? })?;
    }
    let stored = if create { None } else { r.child_status.get(&c.namespace, &c.name).copied() };
    if let Some(patch) = write::status_patch(stored, child_status(c), &CHILD_STATUS_MEMBERS) {
        let target = ObjectRef::namespaced(
            api::CHILD_API_VERSION,
            api::CHILD_KIND,
            c.namespace.as_str(),
            c.name.as_str(),
        );
        ops.push(KubeOperation::merge_patch(target, RawJson::new(&patch)?).status())?;
    }
    Ok(())
}

/// A Service's status patch, unless its stored status is already so.
fn service_status_op(
    sp: &ServiceStatusPlan,
    r: &read::Read<'_>,
    ops: &mut WriteGuard<'_>,
) -> serde_json::Result<()> {
    let stored = r.service_status.get(&sp.namespace, &sp.name);
    if let Some(patch) = service_status(sp, stored) {
        let target =
            ObjectRef::namespaced("v1", "Service", sp.namespace.as_str(), sp.name.as_str());
        ops.push(
            KubeOperation::merge_patch(target, RawJson::new(&patch)?)
                .status()
                // The Service may be gone by the time the patch runs; its children go with it.
                .ignore_missing_object(),
        )?;
    }
    Ok(())
}

/// Deletes an object of ours (`kind` of the module's internal API) the planner no longer
/// wants, if it carries the module's labels; another's object is never deleted, only reported
/// (`reason="foreign_child"`).
fn delete_if_ours(
    kind: &'static str,
    (namespace, name): (&str, &str),
    ours: bool,
    reason: &str,
    ops: &mut WriteGuard<'_>,
    skipped: &mut Vec<Skipped>,
) -> serde_json::Result<()> {
    if !ours {
        skipped.push(Skipped::new(
            kind,
            namespace,
            name,
            SkipReason::ForeignChild,
            format!("not deleted ({reason}): not labelled heritage=deckhouse, module=metallb"),
        ));
        return Ok(());
    }
    tracing::info!(kind, namespace, name, reason, "deleting");
    let target = ObjectRef::namespaced(api::CHILD_API_VERSION, kind, namespace, name);
    ops.push(KubeOperation::DeleteInBackground(target))?;
    Ok(())
}

/// Puts on a Service's status whether the server refuses writing some of its children (held
/// back by the write guard), and takes it off once they are written.
fn report_held_children(sp: &mut ServiceStatusPlan, held: &[CompactString], now: &Timestamp) {
    let existing = sp.conditions.iter().position(|c| c.type_ == cond::CHILD_OBJECTS_WRITTEN);
    if held.is_empty() {
        if let Some(i) = existing {
            sp.conditions.remove(i);
        }
        return;
    }
    let message = format!(
        "the API server refused writing {} {} in {} runs in a row; the module holds the write \
         back and tries again every {} minutes (see the d8-metallb hook log)",
        api::CHILD_KIND,
        held.join(", "),
        write_guard::MAX_ATTEMPTS,
        write_guard::RETRY_AFTER_SECONDS / 60
    );
    let since = existing
        .map(|i| &sp.conditions[i])
        .filter(|c| c.status == ConditionStatus::False)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    let condition = Condition {
        type_: cond::CHILD_OBJECTS_WRITTEN.into(),
        status: ConditionStatus::False,
        reason: cond::REASON_WRITE_REFUSED.into(),
        message: message.into(),
        last_transition_time: since,
        observed_generation: None,
    };
    match existing {
        Some(i) => sp.conditions[i] = condition,
        None => sp.conditions.push(condition),
    }
}

/// Snapshots → plan → operations (added to `ops` as they are rendered), values and metrics.
pub(crate) fn handle(
    s: &mut Snapshots<'_>,
    now: &Timestamp,
    out: &mut KubeOutput,
) -> Result<Outcome, serde_json::Error> {
    let unix_now = metallb_planner::hold_down::unix_seconds(now).unwrap_or_default();
    let mut guard = WriteGuard::new(out, s.write_ledger.as_ref(), unix_now);
    let ops = &mut guard;
    let mut r = read::read(s, now);
    let mut skipped = std::mem::take(&mut r.skipped);
    let bgp = bgp::read(&s.bgp, &mut skipped);
    // Children and Service statuses are rendered one at a time and written at once, so the
    // run never holds the desired state of every child (see `Decisions`, `KubeOutput`).
    let decisions = metallb_planner::decide_with_bgp(&r.input, &bgp.input);

    for d in &decisions.diagnostics {
        tracing::info!(diagnostic = d.label(), "{d}");
    }

    for d in &decisions.deletions {
        let ours = r.children.get(&d.namespace, &d.name).is_some_and(|c| {
            is_ours(
                &c.labels
                    .read::<BTreeMap<String, String>>("labels")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            )
        });
        let at = (d.namespace.as_str(), d.name.as_str());
        delete_if_ours(api::CHILD_KIND, at, ours, d.reason.label(), ops, &mut skipped)?;
    }

    // A Service's status follows its children, and each child's status patch its object: the
    // framework runs operations in order.
    let mut tally = Tally::default();
    let (mut held_children, mut unannounced) = (Vec::new(), Vec::new());
    for part in decisions.render() {
        match part {
            Rendered::Child(c) => {
                tally.child(&c);
                child_ops(&c, &r, ops)?;
                if ops.is_held(api::CHILD_KIND, &c.namespace, &c.name) {
                    held_children.push(c.name.clone());
                    // A child that could not be created announces nothing: its IP is not
                    // published (a child that exists keeps announcing what it holds).
                    if r.children.get(&c.namespace, &c.name).is_none() {
                        unannounced.extend(c.status.ip.clone());
                    }
                }
            }
            Rendered::Service(mut sp) => {
                tally.service(&sp);
                report_held_children(&mut sp, &held_children, now);
                sp.ingress.retain(|ip| !unannounced.contains(ip));
                held_children.clear();
                unannounced.clear();
                service_status_op(&sp, &r, ops)?;
            }
        }
    }

    for a in decisions.announcements() {
        bgp::announcement_ops(&a, &bgp, ops)?;
    }
    for d in &decisions.announcement_deletions {
        bgp::deletion_op(d, &bgp, ops, &mut skipped)?;
    }

    let mut class_values = Vec::new();
    let mut metric_ops = vec![MetricOperation::expire(metrics::GROUP_DISCOVERY)];
    for cp in &decisions.classes {
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
        let wanted = class_status(cp, node_summary(&cp.candidate_nodes), c.input.generation);
        let stored = r.class_status.get(&cp.name).copied();
        if let Some(patch) = write::status_patch(stored, wanted, &CLASS_STATUS_MEMBERS) {
            let target = ObjectRef::cluster(api::CLASS_API_VERSION, api::CLASS_KIND, &cp.name);
            ops.push(
                KubeOperation::merge_patch(target, RawJson::new(&patch)?)
                    .status()
                    .ignore_missing_object(),
            )?;
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
        let not_full = tally.not_fully_assigned.get(cp.name.as_str()).copied().unwrap_or(0);
        metric_ops.push(class_label(MetricOperation::set(
            metrics::GROUP_DISCOVERY,
            metrics::CLASS_SERVICES_NOT_FULLY_ASSIGNED,
            f64::from(not_full),
        )));
    }
    for p in &decisions.pools {
        bgp::pool_ops(p, &bgp, ops, &mut metric_ops)?;
    }
    metric_ops.extend(tally.unassigned_ip_metrics());
    for node in node::members_without_ready_speaker(&decisions.nodes.members, &s.speakers) {
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
    for w in guard.finish()? {
        tracing::warn!(
            kind = w.kind.as_str(),
            namespace = w.namespace.as_str(),
            name = w.name.as_str(),
            write = w.write.as_str(),
            attempts = w.attempts,
            "the API server refused this write in several runs in a row; held back"
        );
        metric_ops.push(
            MetricOperation::set(metrics::GROUP_DISCOVERY, metrics::REFUSED_WRITES, 1.0)
                .label("kind", w.kind)
                .label("namespace", w.namespace)
                .label("name", w.name)
                .label("write", w.write),
        );
    }

    Ok(Outcome { class_values, metrics: metric_ops })
}

#[cfg(test)]
mod tests {
    use super::*;
    use metallb_planner::NodeInput;
    use read::apply_speaker_readiness;
    use serde_json::json;
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
            json!({"name": "a", "labels": {"x": "y"}, "ready": true, "readySince": null})
        );
        let n = json!({"metadata": {"name": "a"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        assert_eq!(jq::run(&node_filter(), &n).unwrap()["readySince"], "2026-01-01T00:00:00Z");
        for status in [
            json!({}),
            json!({"conditions": "x"}),
            json!({"conditions": [1, {"type": "Ready"}]}),
            json!({"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        ] {
            let n = json!({"metadata": {"name": "b"}, "status": status});
            let read = jq::run(&node_filter(), &n).unwrap();
            assert_eq!((&read["ready"], &read["readySince"]), (&json!(false), &Value::Null));
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

    #[test]
    fn node_summaries() {
        let n = |k: usize| (0..k).map(|i| format!("n{i}")).collect::<Vec<_>>();
        assert_eq!(node_summary(&n(0)), "none");
        assert_eq!(node_summary(&n(2)), "n0,n1");
        assert_eq!(node_summary(&n(5)), "5 nodes");
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

    /// Healthy since the later of the node's and its speaker's Ready; of two Ready speaker
    /// pods (a rollout) the earlier counts; an unreadable time stamp never wins.
    #[test]
    fn healthy_since_is_the_later_of_node_and_speaker() {
        let t = |s: &str| Some(Timestamp(s.into()));
        let node = |name: &str, since: Option<Timestamp>| NodeInput {
            name: name.into(),
            healthy_since: since,
            ..Default::default()
        };
        let mut nodes = vec![
            node("a", t("2026-01-01T00:00:10Z")),
            node("b", t("2026-01-01T00:00:10Z")),
            node("c", None),
            node("d", t("2026-01-01T00:00:10Z")),
        ];
        let pod =
            |node: &str, since: &str| json!({"node": node, "ready": true, "readySince": since});
        apply_speaker_readiness(
            &mut nodes,
            &[
                pod("a", "2026-01-01T00:00:20Z"),
                pod("a", "2026-01-01T00:00:30Z"),
                pod("b", "2026-01-01T00:00:05Z"),
                pod("c", "2026-01-01T00:00:20Z"),
                pod("d", "garbage"),
            ],
        );
        let got: Vec<_> = nodes.iter().map(|n| n.healthy_since.clone()).collect();
        assert_eq!(
            got,
            [
                t("2026-01-01T00:00:20Z"),
                t("2026-01-01T00:00:10Z"),
                t("2026-01-01T00:00:20Z"),
                t("2026-01-01T00:00:10Z"),
            ]
        );
    }
}
