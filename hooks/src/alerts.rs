//! `alerts`: the metrics the module's alerts are built on.
//!
//! * a LoadBalancer Service carries a MetalLB annotation (`metallb.io/*`, `metallb.universe.tf/*`)
//!   this module ignores — users must move to the `network.deckhouse.io/*` annotations (a pool
//!   key naming a `MetalLoadBalancerPool`, and then `metallb.io/loadBalancerIPs`, are honoured);
//! * the ModuleConfig is still at version 1;
//! * a version 2 ModuleConfig still lists `layer2` pools, which are ignored.
//!
//! Each group is expired and rebuilt on every run, so a fixed problem clears its alert (the
//! previous implementation expired one group on one code path only).

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubernetesBinding, MetricOperation,
};
use std::collections::{BTreeMap, BTreeSet};

use metallb_api::names::{METALLB_POOL_KEYS, annotations, api, metrics};
use serde_json::Value;

use crate::migrate_v1::module_config_binding;
use crate::order;
use crate::types::{Skipped, items, module_config, opt_str, string_map};

/// LoadBalancer Services with their MetalLB annotations and the module's pool annotation.
const SERVICE_FILTER: &str = r#"if .spec.type == "LoadBalancer" then {
    namespace: .metadata.namespace, name: .metadata.name,
    annotations: ((.metadata.annotations // {}) | with_entries(select(.key | startswith("metallb.io/")
        or startswith("metallb.universe.tf/") or . == "network.deckhouse.io/load-balancer-pool")))
  } else null end"#;

/// Pools: a MetalLB pool key naming one binds the Service to it (BGP mode), so it is honoured.
const POOL_FILTER: &str = r#"{name: .metadata.name}"#;

pub(crate) struct Alerts;

impl Hook for Alerts {
    fn name(&self) -> &str {
        "alerts"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new()
            .kubernetes(module_config_binding())
            .kubernetes(
                KubernetesBinding::new("services", "v1", "Service")
                    .jq_filter(SERVICE_FILTER)
                    .queue(order::QUEUE),
            )
            .kubernetes(
                KubernetesBinding::new("pools", api::CLASS_API_VERSION, api::POOL_KIND)
                    .jq_filter(POOL_FILTER)
                    .queue(order::QUEUE),
            )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let mut out = input.output();
        let pools: BTreeSet<String> = items(&input, "pools")?
            .iter()
            .filter_map(|p| p.get("name")?.as_str().map(str::to_owned))
            .collect();
        out.metrics = handle(&items(&input, "module_config")?, &items(&input, "services")?, &pools);
        Ok(out)
    }
}

/// The MetalLB annotations of a Service that nothing honours, sorted. A pool key naming an
/// existing `MetalLoadBalancerPool` binds the Service to it (BGP mode); then the requested IPs
/// of `metallb.io/loadBalancerIPs` are honoured too.
fn ignored_metallb_keys<'a>(
    annotations_: &'a BTreeMap<String, String>,
    pools: &BTreeSet<String>,
) -> impl Iterator<Item = &'a String> {
    let names_pool = |key: &str| annotations_.get(key).is_some_and(|p| pools.contains(p));
    let bound_to_pool = names_pool(annotations::LOAD_BALANCER_POOL)
        || METALLB_POOL_KEYS.iter().any(|k| names_pool(k));
    annotations_.keys().filter(move |k| {
        let key = k.as_str();
        annotations::UNSUPPORTED_METALLB.contains(&key)
            && !(METALLB_POOL_KEYS.contains(&key) && names_pool(key))
            && !(key == annotations::METALLB_LOAD_BALANCER_IPS && bound_to_pool)
    })
}

/// The metric operations of one run: every group expired, then its current series.
pub(crate) fn handle(
    mc: &[Value],
    services: &[Value],
    pools: &BTreeSet<String>,
) -> Vec<MetricOperation> {
    let mut ops = vec![
        MetricOperation::expire(metrics::GROUP_NOT_SUPPORTED_ANNOTATIONS),
        MetricOperation::expire(metrics::GROUP_UPDATE_MC_VERSION_REQUIRED),
        MetricOperation::expire(metrics::GROUP_OBSOLETE_LAYER2_POOLS),
    ];
    for s in services {
        let (Ok(Some(namespace)), Ok(Some(name))) = (opt_str(s, "namespace"), opt_str(s, "name"))
        else {
            continue;
        };
        let annotations_ = string_map(s, "annotations").unwrap_or_default();
        for key in ignored_metallb_keys(&annotations_, pools) {
            ops.push(
                MetricOperation::set(
                    metrics::GROUP_NOT_SUPPORTED_ANNOTATIONS,
                    metrics::NOT_SUPPORTED_SERVICE_ANNOTATIONS,
                    1.0,
                )
                .label("namespace", namespace.as_str())
                .label("name", name.as_str())
                .label("annotation", key.as_str()),
            );
        }
    }
    let mut skipped: Vec<Skipped> = Vec::new();
    if let Some(mc) = module_config::read(mc, &mut skipped) {
        if mc.version == 1 {
            ops.push(MetricOperation::set(
                metrics::GROUP_UPDATE_MC_VERSION_REQUIRED,
                metrics::UPDATE_MC_VERSION_REQUIRED,
                1.0,
            ));
        } else {
            for p in mc.layer2() {
                ops.push(
                    MetricOperation::set(
                        metrics::GROUP_OBSOLETE_LAYER2_POOLS,
                        metrics::OBSOLETE_LAYER2_POOLS_ARE_USED,
                        1.0,
                    )
                    .label("name", p.name.as_str()),
                );
            }
        }
    }
    // Malformed ModuleConfig parts are only logged here: the migration hook counts them.
    for s in &skipped {
        s.log();
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use addon::MetricAction;
    use serde_json::json;

    fn sets(ops: &[MetricOperation]) -> Vec<(String, Vec<(String, String)>)> {
        ops.iter()
            .filter(|o| o.action == MetricAction::Set)
            .map(|o| {
                let labels = o.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                (o.name.clone().unwrap_or_default(), labels)
            })
            .collect()
    }

    /// §6.8 of the reference, both prefixes; a pool key naming a `MetalLoadBalancerPool` binds
    /// the Service (BGP mode) and is honoured, with `metallb.io/loadBalancerIPs`.
    #[test]
    fn unsupported_annotations_per_service_and_key() {
        let services = [
            json!({"namespace": "nginx1-ns", "name": "nginx1",
                   "annotations": {"metallb.io/address-pool": "old", "metallb.io/ip-allocated-from-pool": "old"}}),
            json!({"namespace": "nginx2-ns", "name": "nginx2", "annotations": {}}),
            json!({"namespace": "n3", "name": "nginx3", "annotations": {"metallb.universe.tf/loadBalancerIPs": "192.0.2.1"}}),
            json!({"namespace": "n4", "name": "bgp", "annotations": {"metallb.io/address-pool": "public",
                   "metallb.io/loadBalancerIPs": "203.0.113.1", "metallb.io/allow-shared-ip": "k"}}),
            json!({"namespace": "n5", "name": "ours", "annotations": {
                   "network.deckhouse.io/load-balancer-pool": "public", "metallb.io/loadBalancerIPs": "203.0.113.2"}}),
        ];
        let ops = handle(&[], &services, &BTreeSet::from(["public".to_owned()]));
        assert_eq!(ops.iter().filter(|o| o.action == MetricAction::Expire).count(), 3);
        let got: Vec<(String, String)> = sets(&ops)
            .into_iter()
            .map(|(_, labels)| {
                let l = |k: &str| labels.iter().find(|(n, _)| n == k).unwrap().1.clone();
                (l("name"), l("annotation"))
            })
            .collect();
        assert_eq!(
            got,
            [
                ("nginx1".into(), "metallb.io/address-pool".into()),
                ("nginx3".into(), "metallb.universe.tf/loadBalancerIPs".into()),
                ("bgp".into(), "metallb.io/allow-shared-ip".into()),
            ]
        );
    }

    #[test]
    fn module_config_version_and_left_over_pools() {
        let v1 = handle(&[json!({"version": 1, "settings": {}})], &[], &BTreeSet::new());
        assert_eq!(sets(&v1), [(metrics::UPDATE_MC_VERSION_REQUIRED.to_owned(), vec![])]);
        let v2 = handle(
            &[json!({"version": 2, "settings": {"addressPools": [
                {"name": "frontend-pool", "protocol": "layer2", "addresses": ["192.168.219.100-192.168.219.100"]}]}})],
            &[],
            &BTreeSet::new(),
        );
        assert_eq!(
            sets(&v2),
            [(
                metrics::OBSOLETE_LAYER2_POOLS_ARE_USED.to_owned(),
                vec![("name".to_owned(), "frontend-pool".to_owned())]
            )]
        );
    }
}
