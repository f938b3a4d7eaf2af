//! `alerts`: the metrics the module's alerts are built on.
//!
//! * a LoadBalancer Service carries a MetalLB annotation (`metallb.io/*`, `metallb.universe.tf/*`)
//!   this module ignores — users must move to the `network.deckhouse.io/*` annotations;
//! * the ModuleConfig is still at version 1;
//! * a version 2 ModuleConfig still lists `layer2` pools, which are ignored.
//!
//! Each group is expired and rebuilt on every run, so a fixed problem clears its alert (the
//! previous implementation expired one group on one code path only).

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubernetesBinding, MetricOperation,
};
use metallb_api::names::{annotations, metrics};
use serde_json::Value;

use crate::migrate_v1::module_config_binding;
use crate::order;
use crate::types::{Skipped, items, module_config, opt_str, string_list};

/// LoadBalancer Services with their MetalLB annotation keys.
const SERVICE_FILTER: &str = r#"if .spec.type == "LoadBalancer" then {
    namespace: .metadata.namespace, name: .metadata.name,
    keys: [(.metadata.annotations // {}) | keys[] | select(startswith("metallb.io/") or startswith("metallb.universe.tf/"))]
  } else null end"#;

pub(crate) struct Alerts;

impl Hook for Alerts {
    fn name(&self) -> &str {
        "alerts"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new().kubernetes(module_config_binding()).kubernetes(
            KubernetesBinding::new("services", "v1", "Service")
                .jq_filter(SERVICE_FILTER)
                .queue(order::QUEUE),
        )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let mut out = input.output();
        out.metrics = handle(&items(&input, "module_config")?, &items(&input, "services")?);
        Ok(out)
    }
}

/// The metric operations of one run: every group expired, then its current series.
pub(crate) fn handle(mc: &[Value], services: &[Value]) -> Vec<MetricOperation> {
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
        let mut keys = string_list(s, "keys").unwrap_or_default();
        keys.sort();
        for key in keys.iter().filter(|k| annotations::UNSUPPORTED_METALLB.contains(&k.as_str())) {
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

    /// §6.8 of the reference, both prefixes.
    #[test]
    fn unsupported_annotations_per_service_and_key() {
        let services = [
            json!({"namespace": "nginx1-ns", "name": "nginx1",
                   "keys": ["metallb.io/address-pool", "metallb.io/ip-allocated-from-pool"]}),
            json!({"namespace": "nginx2-ns", "name": "nginx2", "keys": []}),
            json!({"namespace": "n3", "name": "nginx3", "keys": ["metallb.universe.tf/loadBalancerIPs"]}),
        ];
        let ops = handle(&[], &services);
        assert_eq!(ops.iter().filter(|o| o.action == MetricAction::Expire).count(), 3);
        let got = sets(&ops);
        assert_eq!(got.len(), 2, "ip-allocated-from-pool is written by MetalLB, not unsupported");
        assert_eq!(got[0].1[0], ("annotation".into(), "metallb.io/address-pool".into()));
        assert_eq!(
            got[1].1[0],
            ("annotation".into(), "metallb.universe.tf/loadBalancerIPs".into())
        );
    }

    #[test]
    fn module_config_version_and_left_over_pools() {
        let v1 = handle(&[json!({"version": 1, "settings": {}})], &[]);
        assert_eq!(sets(&v1), [(metrics::UPDATE_MC_VERSION_REQUIRED.to_owned(), vec![])]);
        let v2 = handle(
            &[json!({"version": 2, "settings": {"addressPools": [
                {"name": "frontend-pool", "protocol": "layer2", "addresses": ["192.168.219.100-192.168.219.100"]}]}})],
            &[],
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
