//! `adopt-served-services`: pins the IPs of Services classic MetalLB served under a version 1
//! ModuleConfig, so the upgrade changes no public IP.
//!
//! Each such Service (LoadBalancer, with `status.loadBalancer.ingress`, not yet bound by this
//! module, without our annotations) gets `network.deckhouse.io/load-balancer-ips` = its current
//! IPs (and the IP count when it has several), and the class its MetalLB pool was migrated to;
//! MetalLB's `service.kubernetes.io/load-balancer-cleanup` finalizer is removed, every other
//! finalizer is kept. Then `migrationOfOldFashionedLBsAdoptionComplete` is set, which discovery
//! waits for. With a version 2 ModuleConfig (or none) there is nothing to adopt and the flag is
//! set at once.

use std::collections::{BTreeMap, BTreeSet};

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubernetesBinding,
    MetricOperation, ObjectRef,
};
use metallb_api::names::{annotations, api, conditions, finalizers, metrics};
use metallb_planner::annotations::MAX_EXTERNAL_IPS;
use serde_json::{Map, Value, json};

use crate::migrate_v1::module_config_binding;
use crate::order;
use crate::types::{
    SkipReason, Skipped, items, module_config, opt_bool, opt_str, req_str, skipped_metrics,
    string_list, string_map,
};

/// Services as the adoption reads them: the annotations it reads or writes, finalizers and the
/// class. An event binding: the adoption's own patches run it again (see [`Outcome::complete`]).
const SERVICE_FILTER: &str = r#"if .spec.type == "LoadBalancer" then {
    namespace: .metadata.namespace, name: .metadata.name,
    loadBalancerClass: .spec.loadBalancerClass,
    annotations: ((.metadata.annotations // {}) | with_entries(select(.key | startswith("network.deckhouse.io/") or startswith("metallb.io/") or startswith("metallb.universe.tf/")))),
    finalizers: .metadata.finalizers
  } else null end"#;

/// The status part: the IPs Services have and whether this module already bound them
/// (snapshot only, so discovery's status writes do not run the adoption).
fn service_status_filter() -> String {
    format!(
        r#"if .spec.type == "LoadBalancer" then {{
    namespace: .metadata.namespace, name: .metadata.name,
    ingress: [(.status.loadBalancer.ingress // [])[]? | select(type == "object") | .ip | select(type == "string")],
    bound: ([(.status.conditions // [])[]? | select(type == "object") | select(.type == "{}")] | length > 0)
  }} else null end"#,
        conditions::LOAD_BALANCER_CLASS
    )
}

/// Each Service with the `ingress` and `bound` members of its status item.
fn joined(services: Vec<Value>, statuses: &[Value]) -> Vec<Value> {
    // Identity as text: a member of the wrong type matches nothing and is reported later.
    let key =
        |v: &Value| (v.get("namespace").map(Value::to_string), v.get("name").map(Value::to_string));
    let status: BTreeMap<_, &Value> = statuses.iter().map(|v| (key(v), v)).collect();
    services
        .into_iter()
        .map(|mut v| {
            if let (Some(st), Some(m)) = (status.get(&key(&v)), v.as_object_mut()) {
                for member in ["ingress", "bound"] {
                    if let Some(x) = st.get(member) {
                        m.insert(member.to_owned(), x.clone());
                    }
                }
            }
            v
        })
        .collect()
}

/// Pool annotations in lookup order: where the IP was allocated from is what keeps it, the
/// requested pool is the fallback; the current prefix first, then MetalLB's legacy one.
const POOL_KEYS: [&str; 4] = [
    annotations::METALLB_IP_ALLOCATED_FROM_POOL,
    annotations::METALLB_UNIVERSE_IP_ALLOCATED_FROM_POOL,
    annotations::METALLB_ADDRESS_POOL,
    annotations::METALLB_UNIVERSE_ADDRESS_POOL,
];

pub(crate) struct AdoptServices;

impl Hook for AdoptServices {
    fn name(&self) -> &str {
        "adopt-served-services"
    }

    fn config(&self) -> HookConfig {
        // Adoption is a one-time step of the upgrade, done before each Helm render. The
        // Services' identity and annotations run it on events, so that once its pins show in
        // the snapshot it completes and the framework renders again (a values change); their
        // status, which discovery writes, is snapshot-only.
        HookConfig::new()
            .before_helm(order::ADOPT_SERVICES)
            .kubernetes(module_config_binding().on_events([]))
            .kubernetes(
                KubernetesBinding::new("services", "v1", "Service")
                    .jq_filter(SERVICE_FILTER)
                    .queue(order::QUEUE),
            )
            .kubernetes(
                KubernetesBinding::new("service_status", "v1", "Service")
                    .jq_filter(service_status_filter())
                    .on_events([])
                    .queue(order::QUEUE),
            )
            .kubernetes(
                KubernetesBinding::new("classes", api::CLASS_API_VERSION, api::CLASS_KIND)
                    .jq_filter(".metadata.name")
                    .on_events([])
                    .queue(order::QUEUE),
            )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let pool_map: BTreeMap<String, String> = input
            .values()
            .pointer("/internal/ipAddressPoolToMLBCMap")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        let class_names: BTreeSet<String> = items(&input, "classes")?
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let services = joined(items(&input, "services")?, &items(&input, "service_status")?);
        let outcome = handle(&items(&input, "module_config")?, &services, &class_names, &pool_map);
        let mut out = input.output();
        out.kubernetes.extend(outcome.ops);
        out.values.set("internal.migrationOfOldFashionedLBsAdoptionComplete", outcome.complete)?;
        out.metric(MetricOperation::expire(metrics::GROUP_ADOPTION));
        out.metrics.extend(skipped_metrics(&outcome.skipped, metrics::GROUP_ADOPTION));
        Ok(out)
    }
}

/// What one run does.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) ops: Vec<KubeOperation>,
    /// Whether adoption is done: nothing was left to pin. A run that pins Services leaves it
    /// false, because discovery runs next in the same pass and its snapshot may not show the
    /// pins yet (snapshots follow the API server's watch, not this run's writes): it would
    /// bind such a Service without its class, count and IPs and hand it new addresses. The
    /// pins' own watch events run the adoption again; it then finds nothing to pin, sets the
    /// flag, and the values change makes the framework run discovery with the pins in view.
    pub(crate) complete: bool,
    pub(crate) skipped: Vec<Skipped>,
}

pub(crate) fn handle(
    mc: &[Value],
    services: &[Value],
    class_names: &BTreeSet<String>,
    pool_map: &BTreeMap<String, String>,
) -> Outcome {
    let mut skipped = Vec::new();
    let done = |skipped| Outcome { ops: Vec::new(), complete: true, skipped };
    let Some(mc) = module_config::read(mc, &mut skipped).filter(|mc| mc.version == 1) else {
        return done(skipped);
    };
    // BGP users stay with classic MetalLB (the previous module's rule), and a version 1
    // configuration without Layer 2 pools has no IPs this module could keep.
    if mc.has_bgp() || (mc.layer2().next().is_none() && pool_map.is_empty()) {
        return done(skipped);
    }
    let mut ops = Vec::new();
    for v in services {
        match adopt(v, class_names, pool_map) {
            Ok(Some(op)) => ops.push(op),
            Ok(None) => {}
            Err(s) => skipped.push(s),
        }
    }
    let complete = ops.is_empty();
    Outcome { ops, complete, skipped }
}

/// The patch adopting one Service, if it needs one.
fn adopt(
    v: &Value,
    class_names: &BTreeSet<String>,
    pool_map: &BTreeMap<String, String>,
) -> Result<Option<KubeOperation>, Skipped> {
    let namespace = opt_str(v, "namespace").ok().flatten().unwrap_or_default();
    let name = req_str(v, "name")
        .map_err(|e| Skipped::new("Service", &namespace, "", SkipReason::MissingName, e))?;
    let bad = |e: String| Skipped::new("Service", &namespace, &name, SkipReason::WrongType, e);
    let ann = string_map(v, "annotations").map_err(bad)?;
    let ingress = string_list(v, "ingress").map_err(bad)?;
    let foreign_class = opt_str(v, "loadBalancerClass")
        .map_err(bad)?
        .is_some_and(|c| !c.is_empty() && !class_names.contains(&c));
    if ingress.is_empty()
        || opt_bool(v, "bound").map_err(bad)?
        || ann.contains_key(annotations::LOAD_BALANCER_IPS)
        || ann.contains_key(annotations::METAL_LOAD_BALANCER_CLASS)
        || foreign_class
    {
        return Ok(None);
    }
    let ips: Vec<&str> = ingress
        .iter()
        .map(String::as_str)
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .take(MAX_EXTERNAL_IPS as usize)
        .collect();
    if ips.is_empty() {
        return Ok(None);
    }
    let mut patch_ann = Map::new();
    patch_ann.insert(annotations::LOAD_BALANCER_IPS.into(), ips.join(",").into());
    if ips.len() > 1 && !ann.contains_key(annotations::EXTERNAL_IPS_COUNT) {
        patch_ann.insert(annotations::EXTERNAL_IPS_COUNT.into(), ips.len().to_string().into());
    }
    // The class is taken from the migration's map even if this run's class snapshot does not
    // show it yet (it is created in the same beforeHelm pass): a missing class only makes the
    // planner fall back to the default class, while a missed annotation would be permanent.
    if let Some(c) = POOL_KEYS.iter().find_map(|k| pool_map.get(ann.get(*k)?)) {
        patch_ann.insert(annotations::METAL_LOAD_BALANCER_CLASS.into(), c.clone().into());
    }
    let mut meta = Map::new();
    meta.insert("annotations".into(), Value::Object(patch_ann));
    let finalizers_ = string_list(v, "finalizers").map_err(bad)?;
    if finalizers_.iter().any(|f| f == finalizers::LOAD_BALANCER_CLEANUP) {
        let kept: Vec<&String> =
            finalizers_.iter().filter(|f| *f != finalizers::LOAD_BALANCER_CLEANUP).collect();
        meta.insert("finalizers".into(), json!(kept));
    }
    tracing::info!(
        namespace = namespace.as_str(),
        name = name.as_str(),
        ips = ips.join(",").as_str(),
        "adopting a Service served before the upgrade"
    );
    Ok(Some(
        KubeOperation::merge_patch(
            ObjectRef::namespaced("v1", "Service", &namespace, &name),
            json!({"metadata": meta}),
        )
        .ignore_missing_object(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> Vec<Value> {
        vec![json!({"version": 1, "settings": {"addressPools": [
            {"name": "p", "protocol": "layer2", "addresses": ["12.12.12.0/24"]}]}})]
    }

    fn patch_of(op: &KubeOperation) -> (&str, Value) {
        match op {
            KubeOperation::MergePatch { target, merge_patch, .. } => {
                (&target.name, merge_patch.to_value().unwrap())
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// §6.5 of the reference, with both annotation prefixes and only MetalLB's finalizer removed.
    #[test]
    fn pins_ips_and_class_and_removes_only_metallb_finalizer() {
        let pools: BTreeMap<String, String> = [
            ("pool-1".to_owned(), "autogenerated-zone-a".to_owned()),
            ("pool-2".to_owned(), "autogenerated-zone-b".to_owned()),
        ]
        .into();
        let classes: BTreeSet<String> =
            ["autogenerated-zone-a".into(), "autogenerated-zone-b".into(), "l2-default".into()]
                .into();
        let services = [
            json!({"namespace": "nginx1", "name": "bound", "ingress": ["4.4.4.4"], "bound": true}),
            json!({"namespace": "nginx2", "name": "pinned", "ingress": ["5.5.5.5"],
                   "annotations": {"network.deckhouse.io/load-balancer-ips": "7.7.7.7"},
                   "finalizers": ["service.kubernetes.io/load-balancer-cleanup"]}),
            json!({"namespace": "nginx3", "name": "old", "ingress": ["12.12.12.12", "13.13.13.13"],
                   "annotations": {"metallb.universe.tf/ip-allocated-from-pool": "pool-1",
                                   "metallb.io/address-pool": "pool-2"},
                   "finalizers": ["service.kubernetes.io/load-balancer-cleanup", "example.com/keep"]}),
            json!({"namespace": "nginx4", "name": "foreign", "ingress": ["6.6.6.6"],
                   "loadBalancerClass": "other-controller"}),
            json!({"namespace": "nginx5", "name": "no-ip"}),
            json!({"namespace": "nginx6", "name": "bad", "annotations": "oops", "ingress": ["1.1.1.1"]}),
        ];
        let out = handle(&v1(), &services, &classes, &pools);
        assert!(!out.complete, "discovery waits for the pins to show");
        assert_eq!(out.ops.len(), 1);
        let (name, patch) = patch_of(&out.ops[0]);
        assert_eq!(name, "old");
        assert_eq!(
            patch,
            json!({"metadata": {
                "annotations": {
                    "network.deckhouse.io/load-balancer-ips": "12.12.12.12,13.13.13.13",
                    "network.deckhouse.io/l2-load-balancer-external-ips-count": "2",
                    "network.deckhouse.io/metal-load-balancer-class": "autogenerated-zone-a"},
                "finalizers": ["example.com/keep"]}})
        );
        assert_eq!(out.skipped.len(), 1, "the malformed Service is reported");
    }

    #[test]
    fn joins_each_service_with_its_status() {
        let services =
            vec![json!({"namespace": "a", "name": "s"}), json!({"namespace": "a", "name": "t"})];
        let statuses =
            [json!({"namespace": "a", "name": "s", "ingress": ["192.0.2.1"], "bound": true})];
        let joined = joined(services, &statuses);
        assert_eq!(
            joined[0],
            json!({"namespace": "a", "name": "s", "ingress": ["192.0.2.1"], "bound": true})
        );
        assert_eq!(joined[1], json!({"namespace": "a", "name": "t"}));
    }

    #[test]
    fn adoption_completes_once_its_pins_show() {
        let pools: BTreeMap<String, String> = [("p".to_owned(), "l2-default".to_owned())].into();
        let pinned = [json!({"namespace": "a", "name": "s", "ingress": ["12.12.12.1"],
            "annotations": {"network.deckhouse.io/load-balancer-ips": "12.12.12.1"}})];
        let out = handle(&v1(), &pinned, &BTreeSet::new(), &pools);
        assert!(out.complete && out.ops.is_empty());
    }

    #[test]
    fn nothing_to_adopt_completes_at_once() {
        let none = BTreeMap::new();
        let svc = [json!({"namespace": "a", "name": "b", "ingress": ["1.1.1.1"]})];
        for mc in [
            vec![],
            vec![json!({"version": 2, "settings": {}})],
            vec![json!({"version": 1, "settings": {"addressPools": [
                {"name": "b", "protocol": "bgp", "addresses": ["10.0.0.0/30"]}]}})],
            vec![json!({"version": 1})],
        ] {
            let out = handle(&mc, &svc, &BTreeSet::new(), &none);
            assert!(out.complete && out.ops.is_empty(), "{mc:?}");
        }
    }
}
