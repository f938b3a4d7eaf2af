//! `node-membership`: the label `l2-load-balancer.network.deckhouse.io/member: ""` on exactly the
//! nodes some class selects, removed everywhere else.
//!
//! The speaker DaemonSet uses the label as its node selector, so a speaker runs wherever an IP may
//! be announced and nowhere else. Which nodes are members is the planner's decision (selector
//! match, nodes excluded from load balancers left out); this hook only writes the label.

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubernetesBinding, ObjectRef,
};
use metallb_api::names::{api, labels, metrics};
use metallb_planner::Input;
use serde_json::{Value, json};

use crate::order;
use crate::types::{Skipped, class, items, node, skipped_metrics};

/// Node filter: name and labels (the member label included, it is what this hook compares).
const NODE_FILTER: &str = r#"{name: .metadata.name, labels: .metadata.labels}"#;

/// Metric group of this hook's skipped objects.
const GROUP: &str = metrics::GROUP_NODE_MEMBERSHIP;

pub(crate) struct NodeMembership;

impl Hook for NodeMembership {
    fn name(&self) -> &str {
        "node-membership"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new()
            .before_helm(order::NODE_MEMBERSHIP)
            .kubernetes(
                KubernetesBinding::new("classes", api::CLASS_API_VERSION, api::CLASS_KIND)
                    .jq_filter(class::FILTER)
                    .queue(order::QUEUE),
            )
            .kubernetes(
                KubernetesBinding::new("nodes", "v1", "Node")
                    .jq_filter(NODE_FILTER)
                    .queue(order::QUEUE),
            )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let outcome = handle(&items(&input, "classes")?, &items(&input, "nodes")?);
        let mut out = input.output();
        out.kubernetes.extend(outcome.ops);
        out.metric(addon::MetricOperation::expire(GROUP));
        out.metrics.extend(skipped_metrics(&outcome.skipped, GROUP));
        Ok(out)
    }
}

/// What one run does.
pub(crate) struct Outcome {
    pub(crate) ops: Vec<KubeOperation>,
    pub(crate) skipped: Vec<Skipped>,
}

/// Label patches for the nodes whose membership differs from the plan.
pub(crate) fn handle(classes: &[Value], nodes: &[Value]) -> Outcome {
    let mut skipped = Vec::new();
    let input = Input {
        classes: class::read_all(classes, &mut skipped).into_iter().map(|c| c.input).collect(),
        nodes: node::read_all(nodes, &mut skipped),
        ..Input::default()
    };
    let plan = metallb_planner::plan(&input).nodes;
    let patch = |name: &str, value: Value| {
        KubeOperation::merge_patch(
            ObjectRef::cluster("v1", "Node", name),
            json!({"metadata": {"labels": {labels::MEMBER: value}}}),
        )
        // A node deleted between the snapshot and the patch needs no label.
        .ignore_missing_object()
    };
    let ops = plan
        .add_label
        .iter()
        .map(|n| patch(n, Value::from("")))
        .chain(plan.remove_label.iter().map(|n| patch(n, Value::Null)))
        .collect();
    Outcome { ops, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value) -> Value {
        json!({"name": name, "labels": labels})
    }

    /// §6.3 of the reference: frontend-4 gains the label, frontend-3 loses it, 1 and 2 untouched.
    #[test]
    fn labels_exactly_the_selected_nodes() {
        let classes = [json!({"name": "default-ingress", "spec": {
            "isDefault": true, "nodeSelector": {"frontend": ""},
            "addressPool": ["192.168.2.100-192.168.2.150"]}})];
        let nodes = [
            node("frontend-1", json!({"frontend": "", labels::MEMBER: ""})),
            node("frontend-2", json!({"frontend": "", labels::MEMBER: ""})),
            node("frontend-3", json!({labels::MEMBER: ""})),
            node("frontend-4", json!({"frontend": ""})),
        ];
        let out = handle(&classes, &nodes);
        let text: Vec<String> = out.ops.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
        assert_eq!(
            text,
            [
                r#"{"operation":"MergePatch","apiVersion":"v1","kind":"Node","name":"frontend-4","mergePatch":{"metadata":{"labels":{"l2-load-balancer.network.deckhouse.io/member":""}}},"ignoreMissingObject":true}"#,
                r#"{"operation":"MergePatch","apiVersion":"v1","kind":"Node","name":"frontend-3","mergePatch":{"metadata":{"labels":{"l2-load-balancer.network.deckhouse.io/member":null}}},"ignoreMissingObject":true}"#,
            ]
        );
        assert!(out.skipped.is_empty());
    }

    #[test]
    fn a_malformed_class_is_skipped_not_fatal() {
        let classes = [
            json!({"name": "bad", "spec": {"nodeSelector": "front"}}),
            json!({"spec": {}}),
            json!({"name": "all", "spec": {"addressPool": ["10.0.0.0/30"]}}),
        ];
        let out = handle(&classes, &[node("a", json!({}))]);
        assert_eq!(out.ops.len(), 1, "the empty selector of `all` selects every node");
        assert_eq!(out.skipped.len(), 2);
    }
}
