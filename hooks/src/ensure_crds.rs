//! `ensure-crds`: creates or updates the module's CRDs at module start.
//!
//! The platform applies `crds/` only on install; a module upgrade that changes a schema (a new
//! status field, a stricter pattern) must update the stored CRD itself, before any hook writes
//! objects in the new shape. The YAML is embedded at build time, so the binary and the schemas it
//! writes against always come from the same commit.

use addon::{Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation};
use serde_json::Value;

use crate::order;

/// How a CRD is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Apply {
    /// The module's own kinds: created or replaced, so an upgrade updates the schema.
    CreateOrUpdate,
    /// MetalLB's kinds the migration watches: created only where missing, so a cluster that
    /// runs MetalLB keeps MetalLB's own schema.
    CreateIfMissing,
}

/// The generated CRDs (never the `doc-ru-*` twins, which are documentation).
pub(crate) const CRDS: [(&str, &str, Apply); 8] = [
    (
        "metalloadbalancerclasses.yaml",
        include_str!("../../crds/metalloadbalancerclasses.yaml"),
        Apply::CreateOrUpdate,
    ),
    (
        "metalloadbalancerpools.yaml",
        include_str!("../../crds/metalloadbalancerpools.yaml"),
        Apply::CreateOrUpdate,
    ),
    (
        "metalloadbalancerbgppeers.yaml",
        include_str!("../../crds/metalloadbalancerbgppeers.yaml"),
        Apply::CreateOrUpdate,
    ),
    (
        "metalloadbalancerconfigurations.yaml",
        include_str!("../../crds/metalloadbalancerconfigurations.yaml"),
        Apply::CreateOrUpdate,
    ),
    (
        "internal/sdninternalbgpannouncements.yaml",
        include_str!("../../crds/internal/sdninternalbgpannouncements.yaml"),
        Apply::CreateOrUpdate,
    ),
    (
        "internal/sdninternall2lbservices.yaml",
        include_str!("../../crds/internal/sdninternall2lbservices.yaml"),
        Apply::CreateOrUpdate,
    ),
    (
        "native/ipaddresspools.yaml",
        include_str!("../../crds/native/ipaddresspools.yaml"),
        Apply::CreateIfMissing,
    ),
    (
        "native/l2advertisements.yaml",
        include_str!("../../crds/native/l2advertisements.yaml"),
        Apply::CreateIfMissing,
    ),
];

pub(crate) struct EnsureCrds;

impl Hook for EnsureCrds {
    fn name(&self) -> &str {
        "ensure-crds"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new().on_startup(order::ENSURE_CRDS)
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let mut out = input.output();
        for (object, apply) in handle()? {
            out.kube(match apply {
                Apply::CreateOrUpdate => KubeOperation::CreateOrUpdate { object: object.into() },
                Apply::CreateIfMissing => {
                    KubeOperation::CreateIfNotExists { object: object.into() }
                }
            });
        }
        Ok(out)
    }
}

/// The CRD objects to apply. A CRD that does not parse is a build defect, not a bad cluster
/// object, so it fails the hook (and the tests) instead of being skipped.
pub(crate) fn handle() -> Result<Vec<(Value, Apply)>, HookError> {
    CRDS.iter()
        .map(|(file, text, apply)| {
            let object: Value = serde_norway::from_str(text)
                .map_err(|e| format!("embedded CRD {file} does not parse: {e}"))?;
            let kind = object.get("kind").and_then(Value::as_str);
            if kind != Some("CustomResourceDefinition") {
                return Err(format!("embedded {file} is not a CustomResourceDefinition").into());
            }
            Ok((object, *apply))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use metallb_api::names::api;

    #[test]
    fn embedded_crds_are_the_module_kinds() {
        let crds = handle().unwrap();
        let kinds: Vec<(&str, Apply)> = crds
            .iter()
            .filter_map(|(c, apply)| Some((c.pointer("/spec/names/kind")?.as_str()?, *apply)))
            .collect();
        assert_eq!(
            kinds,
            [
                (api::CLASS_KIND, Apply::CreateOrUpdate),
                (api::POOL_KIND, Apply::CreateOrUpdate),
                (api::BGP_PEER_KIND, Apply::CreateOrUpdate),
                (api::CONFIGURATION_KIND, Apply::CreateOrUpdate),
                (api::BGP_ANNOUNCEMENT_KIND, Apply::CreateOrUpdate),
                (api::CHILD_KIND, Apply::CreateOrUpdate),
                ("IPAddressPool", Apply::CreateIfMissing),
                ("L2Advertisement", Apply::CreateIfMissing),
            ]
        );
        for (crd, _) in &crds {
            assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
            assert!(crd.pointer("/metadata/name").and_then(Value::as_str).is_some());
        }
    }
}
