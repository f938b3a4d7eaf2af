//! `bgp-configurations`: the status of every `MetalLoadBalancerConfiguration` — whether every
//! peer and pool it names exists and its attributes are valid (condition `ConfigurationValid`),
//! and which nodes announce for it now (`memberNodes`) — plus a metric per problem for the
//! alert `D8MetallbBGPConfigurationInvalid`.
//!
//! It also places the BGP speakers: the label `bgp-load-balancer.network.deckhouse.io/member`
//! on exactly the nodes some configuration selects and that are not excluded from external
//! load balancers (Ready or not: a speaker pod must not come and go with the node's
//! readiness), removed everywhere else, and the value `internal.bgpConfigurationsExist` the
//! templates render the BGP speaker by. Both are written only when they differ. A member
//! without a Ready BGP speaker pod is a series for `D8MetallbBGPSpeakerMissingOnMemberNode`.
//!
//! And every peer's `status.sessionSummary`, from the sessions its speakers report
//! ([`sessions`]).
//!
//! What a schema cannot see is reported here, never by failing a hook run: the decisions are
//! [`metallb_planner::bgp::Topology`]'s, the hook only writes them.

use std::collections::{BTreeMap, BTreeSet};

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubernetesBinding,
    LabelSelector, MetricOperation, ObjectRef,
};
use metallb_api::names::{api, conditions as cond, labels, metrics, module};
use metallb_planner::bgp::{AdvertisementInput, ConfigurationInput, ConfigurationState, Topology};
use metallb_planner::pool::Family;
use metallb_planner::{NodeInput, Timestamp};
use serde_json::{Value, json};

use crate::order;
use crate::types::{
    SkipReason, Skipped, items, node, now, opt_str, peer_families, req_str, skipped_metrics,
    string_list, string_map,
};

const GROUP: &str = metrics::GROUP_BGP_STATUS;
/// Up to this many members are listed by name in `nodeSummary`; more are counted.
const SUMMARY_NAMES: usize = 3;

const CONFIGURATION_FILTER: &str = r#"{name: .metadata.name, generation: .metadata.generation,
    spec: .spec, status: .status}"#;
const NAME_FILTER: &str = r#"{name: .metadata.name}"#;
/// The value the templates render every BGP object by (`openapi/values.yaml`).
pub(crate) const VALUE_CONFIGURATIONS_EXIST: &str = "internal.bgpConfigurationsExist";

pub(crate) struct BgpStatus;

impl Hook for BgpStatus {
    fn name(&self) -> &str {
        "bgp-configurations"
    }

    fn config(&self) -> HookConfig {
        let binding = |name: &str, kind: &str, filter: &str| {
            KubernetesBinding::new(name, api::CLASS_API_VERSION, kind)
                .jq_filter(filter)
                .queue(order::QUEUE)
        };
        let node_filter = format!(
            r#"{{name: .metadata.name, labels: .metadata.labels, ready: {}}}"#,
            node::READY
        );
        HookConfig::new()
            .before_helm(order::BGP_STATUS)
            .kubernetes(binding("configurations", api::CONFIGURATION_KIND, CONFIGURATION_FILTER))
            .kubernetes(binding("peers", api::BGP_PEER_KIND, sessions::PEER_FILTER))
            .kubernetes(binding("pools", api::POOL_KIND, NAME_FILTER))
            .kubernetes(
                KubernetesBinding::new("nodes", "v1", "Node")
                    .jq_filter(node_filter)
                    .queue(order::QUEUE),
            )
            .kubernetes(
                KubernetesBinding::new("speakers", "v1", "Pod")
                    .in_namespaces([module::NAMESPACE])
                    .labels(LabelSelector::default().label(labels::APP, module::BGP_SPEAKER_APP))
                    .jq_filter(node::speaker_filter())
                    .queue(order::QUEUE),
            )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let names = |binding: &str| -> Result<BTreeSet<String>, addon::Error> {
            Ok(items(&input, binding)?
                .iter()
                .filter_map(|v| v.get("name")?.as_str().map(str::to_owned))
                .collect())
        };
        let nodes = items(&input, "nodes")?;
        let peers = items(&input, "peers")?;
        let outcome = handle(
            &items(&input, "configurations")?,
            &peer_families(&peers),
            &names("pools")?,
            &nodes,
            &items(&input, "speakers")?,
            &now(),
        );
        let node_names = nodes.iter().filter_map(|n| n.get("name")?.as_str()).collect();
        let summaries = sessions::summary_patches(&peers, &node_names);
        let mut out = input.output();
        out.kubernetes.extend(outcome.ops);
        out.kubernetes.extend(outcome.labels);
        out.kubernetes.extend(summaries);
        out.values.set(VALUE_CONFIGURATIONS_EXIST, outcome.configurations_exist)?;
        out.metric(MetricOperation::expire(GROUP));
        out.metrics.extend(outcome.metrics);
        out.metrics.extend(skipped_metrics(&outcome.skipped, GROUP));
        Ok(out)
    }
}

/// What one run does.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Status patches of the configurations.
    pub(crate) ops: Vec<KubeOperation>,
    /// Member label patches of the nodes.
    pub(crate) labels: Vec<KubeOperation>,
    /// Some configuration was read: the BGP speaker and its RBAC are rendered.
    pub(crate) configurations_exist: bool,
    pub(crate) metrics: Vec<MetricOperation>,
    pub(crate) skipped: Vec<Skipped>,
}

/// Status patches for the configurations whose status differs, and one series per problem.
pub(crate) fn handle(
    configurations: &[Value],
    peers: &BTreeMap<String, Option<Family>>,
    pools: &BTreeSet<String>,
    nodes: &[Value],
    speakers: &[Value],
    now: &Timestamp,
) -> Outcome {
    let mut out = Outcome::default();
    let nodes = node::read_all(nodes, &mut out.skipped);
    let mut inputs = Vec::new();
    let mut written = Vec::new();
    for v in configurations {
        match read(v) {
            Ok(input) => {
                written.push((input.name.clone(), v));
                inputs.push(input);
            }
            Err(skip) => out.skipped.push(skip),
        }
    }
    out.configurations_exist = !inputs.is_empty();
    let members = members(&inputs, &nodes);
    out.labels = membership(&members, &nodes);
    for node in node::members_without_ready_speaker(&members, speakers) {
        out.metrics.push(
            MetricOperation::set(GROUP, metrics::BGP_MEMBER_NODE_WITHOUT_READY_SPEAKER, 1.0)
                .label("node", node),
        );
    }
    let topology = Topology::new(&inputs, peers, pools, &nodes);
    for state in topology.configurations() {
        let Some((_, object)) = written.iter().find(|(name, _)| *name == state.name) else {
            continue;
        };
        for issue in &state.issues {
            out.metrics.push(
                MetricOperation::set(GROUP, metrics::BGP_CONFIGURATION_ISSUES, 1.0)
                    .label("configuration", state.name.as_str())
                    .label("reason", issue.reason())
                    .label("detail", issue.to_string()),
            );
        }
        if let Some(patch) = status_patch(state, object, now) {
            out.ops.push(patch);
        }
    }
    out
}

/// The nodes that run a BGP speaker: selected by some configuration and not excluded from
/// external load balancers. Readiness does not count, unlike for `memberNodes`: the speaker pod
/// stays while its node is briefly not Ready, and the announcements (which do need Ready) are
/// decided elsewhere.
fn members(configurations: &[ConfigurationInput], nodes: &[NodeInput]) -> BTreeSet<String> {
    let member = |node: &NodeInput| {
        !node.labels.contains_key(labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS)
            && configurations
                .iter()
                .any(|c| c.node_selector.iter().all(|(k, v)| node.labels.get(k) == Some(v)))
    };
    nodes.iter().filter(|n| member(n)).map(|n| n.name.clone()).collect()
}

/// Label patches for the nodes whose BGP membership label differs from `members`.
fn membership(members: &BTreeSet<String>, nodes: &[NodeInput]) -> Vec<KubeOperation> {
    let patch = |name: &str, value: Value| {
        KubeOperation::merge_patch(
            ObjectRef::cluster("v1", "Node", name),
            json!({"metadata": {"labels": {labels::BGP_MEMBER: value}}}),
        )
        // A node deleted between the snapshot and the patch needs no label.
        .ignore_missing_object()
    };
    let mut ops = Vec::new();
    for node in nodes {
        // The label's value is always "": a node labelled otherwise is not selected by the
        // DaemonSet, so it is rewritten.
        let labelled = node.labels.get(labels::BGP_MEMBER).is_some_and(String::is_empty);
        let present = node.labels.contains_key(labels::BGP_MEMBER);
        match (members.contains(&node.name), labelled, present) {
            (true, false, _) => ops.push(patch(&node.name, Value::from(""))),
            (false, _, true) => ops.push(patch(&node.name, Value::Null)),
            _ => {}
        }
    }
    ops
}

/// A configuration's spec, leniently: a malformed one is skipped and reported.
pub(crate) fn read(v: &Value) -> Result<ConfigurationInput, Skipped> {
    let kind = api::CONFIGURATION_KIND;
    let name =
        req_str(v, "name").map_err(|e| Skipped::new(kind, "", "", SkipReason::MissingName, e))?;
    let bad = |e: String| Skipped::new(kind, "", &name, SkipReason::WrongType, e);
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let peer_names =
        spec.get("bgp").map_or(Ok(Vec::new()), |b| string_list(b, "peerNames")).map_err(bad)?;
    let mut advertisements = Vec::new();
    for adv in spec.get("advertisements").and_then(Value::as_array).into_iter().flatten() {
        let attrs = adv.get("bgp").cloned().unwrap_or(Value::Null);
        let number = |key: &str| attrs.get(key).and_then(Value::as_u64);
        advertisements.push(AdvertisementInput {
            pool_names: string_list(adv, "poolNames").map_err(bad)?,
            communities: string_list(&attrs, "communities").map_err(bad)?,
            local_pref: number("localPref").and_then(|n| u32::try_from(n).ok()),
            aggregation_length: number("aggregationLength").and_then(|n| u8::try_from(n).ok()),
        });
    }
    // The mode is `BGP` by schema; anything else is not ours to announce.
    if opt_str(&spec, "mode").map_err(bad)?.as_deref().is_some_and(|m| m != "BGP") {
        return Err(bad("spec.mode is not BGP".to_owned()));
    }
    Ok(ConfigurationInput {
        node_selector: string_map(&spec, "nodeSelector").map_err(bad)?,
        name,
        peer_names,
        advertisements,
    })
}

fn status_patch(
    state: &ConfigurationState,
    object: &Value,
    now: &Timestamp,
) -> Option<KubeOperation> {
    let (status, reason, message) = match state.issues.first() {
        None => (
            "True",
            cond::REASON_CONFIGURATION_RESOLVED,
            "every peer and pool exists; the attributes are valid".to_owned(),
        ),
        Some(first) => (
            "False",
            first.reason(),
            state.issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        ),
    };
    let current = object.pointer("/status/conditions").and_then(Value::as_array);
    let existing = current.and_then(|c| c.iter().find(|c| c["type"] == cond::CONFIGURATION_VALID));
    let summary = summary(&state.members);
    let same_condition = existing.is_some_and(|c| {
        c["status"] == status && c["reason"] == reason && c["message"] == message.as_str()
    });
    let same_members = object.pointer("/status/memberNodes").cloned().unwrap_or(json!([]))
        == json!(state.members)
        && object.pointer("/status/nodeSummary").and_then(Value::as_str) == summary.as_deref();
    if same_condition && same_members {
        return None;
    }
    let since = match existing {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => now.0.as_str().into(),
    };
    let mut condition = json!({"type": cond::CONFIGURATION_VALID, "status": status, "reason": reason,
                               "message": message, "lastTransitionTime": since});
    let generation = object.get("generation").and_then(Value::as_i64).filter(|g| *g > 0);
    if let Some(g) = generation {
        condition["observedGeneration"] = g.into();
    }
    let mut conditions: Vec<Value> = current
        .into_iter()
        .flatten()
        .filter(|c| c["type"] != cond::CONFIGURATION_VALID)
        .cloned()
        .collect();
    conditions.push(condition);
    conditions.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    let mut status_ =
        json!({"conditions": conditions, "memberNodes": state.members, "nodeSummary": summary});
    if let Some(g) = generation {
        status_["observedGeneration"] = g.into();
    }
    let target = ObjectRef::cluster(api::CLASS_API_VERSION, api::CONFIGURATION_KIND, &state.name);
    Some(
        KubeOperation::merge_patch(target, json!({"status": status_}))
            .status()
            .ignore_missing_object(),
    )
}

/// `a,b,c` for a few members, `N nodes` for more, nothing for none.
fn summary(members: &[String]) -> Option<String> {
    match members.len() {
        0 => None,
        n if n <= SUMMARY_NAMES => Some(members.join(",")),
        n => Some(format!("{n} nodes")),
    }
}

mod sessions;
#[cfg(test)]
mod tests;
