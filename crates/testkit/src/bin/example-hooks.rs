//! A small batch hook executable for the test kit's own end-to-end tests: it exercises
//! snapshots → values patch → Kubernetes operations → metrics through the real protocol.
//!
//! * `nodes`: keeps `example.internal.readyNodes`, labels ready nodes `example.io/member`, writes
//!   ConfigMap `d8-example/ready-nodes`, sets `d8_example_ready_nodes`. Its labels change the
//!   nodes' filter result once, so `run_until_quiet` must settle after one extra round.
//! * `loop`: bumps an annotation on every ConfigMap labelled `example.io/loop: "true"` — a hook
//!   that re-triggers itself, which `run_until_quiet` must report.
//! * `cleanup`: on its schedule deletes ConfigMap `d8-example/stale` and drops
//!   `example.internal.legacy`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubernetesBinding,
    LabelSelector, MetricOperation, ObjectRef, ScheduleBinding, WatchEvent,
};
use serde::Deserialize;
use serde_json::{Value, json};

const NAMESPACE: &str = "d8-example";
const MEMBER_LABEL: &str = "example.io/member";

struct Nodes;

#[derive(Deserialize)]
struct NodeInfo {
    name: String,
    ready: bool,
    member: bool,
}

impl Hook for Nodes {
    fn name(&self) -> &str {
        "nodes"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new()
            .before_helm(10)
            .kubernetes(KubernetesBinding::new("nodes", "v1", "Node").jq_filter(
                r#"{name: .metadata.name,
                    ready: (([.status.conditions[]? | select(.type == "Ready") | .status] | first) == "True"),
                    member: (.metadata.labels // {} | has("example.io/member"))}"#,
            ))
            .kubernetes(
                KubernetesBinding::new("state", "v1", "ConfigMap")
                    .in_namespaces([NAMESPACE])
                    .names(["ready-nodes"])
                    .jq_filter(".data.nodes")
                    .on_events([]),
            )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let nodes: Vec<NodeInfo> = input.snapshot("nodes")?;
        let mut out = input.output();
        let ready: Vec<&str> = nodes.iter().filter(|n| n.ready).map(|n| n.name.as_str()).collect();
        out.values.set("internal.readyNodes", &ready)?;
        for n in &nodes {
            if n.ready != n.member {
                let label = if n.ready { Value::from("") } else { Value::Null };
                out.kube(KubeOperation::merge_patch(
                    ObjectRef::cluster("v1", "Node", &n.name),
                    json!({"metadata": {"labels": {MEMBER_LABEL: label}}}),
                ));
            }
        }
        let current: Vec<Option<String>> = input.snapshot("state")?;
        let wanted = ready.join(",");
        if current.first().cloned().flatten().as_deref() != Some(wanted.as_str()) {
            out.kube(KubeOperation::CreateOrUpdate {
                object: json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "ready-nodes", "namespace": NAMESPACE,
                                 "labels": {"heritage": "deckhouse", "module": "example"}},
                    "data": {"nodes": wanted},
                })
                .into(),
            });
        }
        out.metric(MetricOperation::set(
            "example_nodes",
            "d8_example_ready_nodes",
            ready.len() as f64,
        ));
        tracing::info!(ready = ready.len(), total = nodes.len(), "nodes reconciled");
        Ok(out)
    }
}

struct Loop;

impl Hook for Loop {
    fn name(&self) -> &str {
        "loop"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new().kubernetes(
            KubernetesBinding::new("loopers", "v1", "ConfigMap")
                .labels(LabelSelector::default().label("example.io/loop", "true"))
                .keep_full_objects(true)
                .on_events(WatchEvent::ALL),
        )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        #[derive(Deserialize)]
        struct Meta {
            name: String,
            namespace: String,
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        #[derive(Deserialize)]
        struct Object {
            metadata: Meta,
        }
        let mut out = input.output();
        for o in input.snapshot::<Object>("loopers")? {
            let n: u64 = o
                .metadata
                .annotations
                .get("example.io/counter")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            out.kube(KubeOperation::merge_patch(
                ObjectRef::namespaced("v1", "ConfigMap", o.metadata.namespace, o.metadata.name),
                json!({"metadata": {"annotations": {"example.io/counter": (n + 1).to_string()}}}),
            ));
        }
        Ok(out)
    }
}

struct Cleanup;

impl Hook for Cleanup {
    fn name(&self) -> &str {
        "cleanup"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new().schedule(ScheduleBinding::new("cleanup", "*/10 * * * *"))
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let mut out = input.output();
        out.values.remove("internal.legacy")?;
        out.kube(KubeOperation::DeleteInBackground(ObjectRef::namespaced(
            "v1",
            "ConfigMap",
            NAMESPACE,
            "stale",
        )));
        Ok(out)
    }
}

fn main() -> ExitCode {
    addon::run_batch("example", &[&Nodes, &Loop, &Cleanup])
}
