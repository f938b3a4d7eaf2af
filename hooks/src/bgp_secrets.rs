//! `bgp-password-secrets`: copies the TCP MD5 password Secrets the BGP peers name into
//! `d8-metallb`, so the BGP speakers read Secrets only in their own namespace.
//!
//! ```text
//!  MetalLoadBalancerBGPPeer.spec.passwordSecretRef ns/name ─┐
//!  Secrets labelled network.deckhouse.io/metallb-bgp-password=true ─┴─► d8-metallb/bgp-pwd-<ns>-<name>
//!                                                               peer condition PasswordSecretFound
//! ```
//!
//! Only labelled Secrets are ever read (the hook does not watch every Secret of the cluster).
//! A copy nobody names any more is deleted. Runs after Helm (the release creates the
//! namespace) and on every change of a peer or a labelled Secret.

use std::collections::{BTreeMap, BTreeSet};

use addon::{
    Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubernetesBinding,
    LabelSelector, ObjectRef,
};
use metallb_api::names::{api, bgp, conditions as cond, labels, module};
use metallb_planner::Timestamp;
use serde_json::{Value, json};

use crate::order;
use crate::types::{is_dns_subdomain, items, module_labels, module_namespace_binding, now};

const PEER_FILTER: &str = r#"{name: .metadata.name, generation: .metadata.generation,
    ref: .spec.passwordSecretRef, conditions: .status.conditions}"#;
const SECRET_FILTER: &str =
    r#"{namespace: .metadata.namespace, name: .metadata.name, password: .data.password}"#;
const COPY_FILTER: &str = r#"{name: .metadata.name, password: .data.password}"#;

pub(crate) struct BgpSecrets;

impl Hook for BgpSecrets {
    fn name(&self) -> &str {
        "bgp-password-secrets"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new()
            .after_helm(order::BGP_SECRETS_AFTER_HELM)
            .kubernetes(module_namespace_binding())
            .kubernetes(
                KubernetesBinding::new("peers", api::CLASS_API_VERSION, api::BGP_PEER_KIND)
                    .jq_filter(PEER_FILTER)
                    .queue(order::QUEUE),
            )
            .kubernetes(
                KubernetesBinding::new("secrets", "v1", "Secret")
                    .labels(LabelSelector::default().label(labels::BGP_PASSWORD, "true"))
                    .jq_filter(SECRET_FILTER)
                    .queue(order::QUEUE),
            )
            .kubernetes(
                KubernetesBinding::new("copies", "v1", "Secret")
                    .in_namespaces([module::NAMESPACE])
                    .labels(LabelSelector::default().label(labels::BGP_PASSWORD_COPY, "true"))
                    .jq_filter(COPY_FILTER)
                    .queue(order::QUEUE),
            )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let namespace_exists = !items(&input, "namespace")?.is_empty();
        let ops = handle(
            namespace_exists,
            &items(&input, "peers")?,
            &items(&input, "secrets")?,
            &items(&input, "copies")?,
            &now(),
        );
        let mut out = input.output();
        out.kubernetes.extend(ops);
        Ok(out)
    }
}

/// How a peer's password Secret stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Password {
    /// The peer names no Secret: sessions without MD5.
    NotAsked,
    /// Copied; the value is the base64 `data.password`.
    Found(String),
    /// Named but not usable, with the condition reason and message.
    Unusable(&'static str, String),
}

/// The operations: copies to create, update or delete, and peer conditions that changed.
pub(crate) fn handle(
    namespace_exists: bool,
    peers: &[Value],
    secrets: &[Value],
    copies: &[Value],
    now: &Timestamp,
) -> Vec<KubeOperation> {
    let sources: BTreeMap<(String, String), Option<String>> = secrets
        .iter()
        .filter_map(|s| {
            let key =
                (s.get("namespace")?.as_str()?.to_owned(), s.get("name")?.as_str()?.to_owned());
            Some((key, s.get("password").and_then(Value::as_str).map(str::to_owned)))
        })
        .collect();
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    let mut ops = Vec::new();
    for peer in peers {
        let Some(name) = peer.get("name").and_then(Value::as_str) else { continue };
        let (password, copy) = password_of(peer, &sources);
        if let (Password::Found(value), Some(copy)) = (&password, copy) {
            wanted.insert(copy, value.clone());
        }
        if let Some(op) = condition_patch(peer, name, &password, now) {
            ops.push(op);
        }
    }
    if !namespace_exists {
        // The release has not created the namespace yet; the afterHelm run copies.
        return ops;
    }
    let existing: BTreeMap<&str, Option<&str>> = copies
        .iter()
        .filter_map(|c| Some((c.get("name")?.as_str()?, c.get("password").and_then(Value::as_str))))
        .collect();
    for (copy, value) in &wanted {
        if existing.get(copy.as_str()) != Some(&Some(value.as_str())) {
            ops.push(KubeOperation::CreateOrUpdate { object: copy_object(copy, value).into() });
        }
    }
    let wanted_names: BTreeSet<&str> = wanted.keys().map(String::as_str).collect();
    for name in existing.keys().filter(|n| !wanted_names.contains(*n)) {
        ops.push(KubeOperation::DeleteInBackground(ObjectRef::namespaced(
            "v1",
            "Secret",
            module::NAMESPACE,
            *name,
        )));
    }
    ops
}

/// The peer's password and the name of its copy.
fn password_of(
    peer: &Value,
    sources: &BTreeMap<(String, String), Option<String>>,
) -> (Password, Option<String>) {
    let Some(reference) = peer.get("ref").filter(|r| !r.is_null()) else {
        return (Password::NotAsked, None);
    };
    let field = |k: &str| reference.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (namespace, name) = (field("namespace"), field("name"));
    let copy = bgp::password_copy_name(&namespace, &name);
    if !is_dns_subdomain(&copy) {
        let message = format!(
            "the copy of Secret {namespace}/{name} would be named {copy:?}, which is not a valid \
             Secret name (too long); use a shorter name"
        );
        return (Password::Unusable(cond::REASON_PASSWORD_SECRET_NAME_TOO_LONG, message), None);
    }
    match sources.get(&(namespace.clone(), name.clone())) {
        Some(Some(value)) => (Password::Found(value.clone()), Some(copy)),
        Some(None) => {
            let message = format!("Secret {namespace}/{name} has no key {:?}", bgp::PASSWORD_KEY);
            (Password::Unusable(cond::REASON_PASSWORD_KEY_MISSING, message), None)
        }
        None => {
            let message = format!(
                "Secret {namespace}/{name} does not exist or lacks the label {}: \"true\"; \
                 sessions to this peer are not opened without their password",
                labels::BGP_PASSWORD
            );
            (Password::Unusable(cond::REASON_PASSWORD_SECRET_NOT_FOUND, message), None)
        }
    }
}

/// A status patch when the `PasswordSecretFound` condition differs from the one written.
fn condition_patch(
    peer: &Value,
    name: &str,
    password: &Password,
    now: &Timestamp,
) -> Option<KubeOperation> {
    let (status, reason, message) = match password {
        Password::NotAsked => {
            ("True", cond::REASON_NO_PASSWORD, "the peer uses no TCP MD5 password".to_owned())
        }
        Password::Found(_) => (
            "True",
            cond::REASON_PASSWORD_SECRET_COPIED,
            format!("copied into {} for the speakers", module::NAMESPACE),
        ),
        Password::Unusable(reason, message) => ("False", *reason, message.clone()),
    };
    let current = peer
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == cond::PASSWORD_SECRET_FOUND));
    let unchanged = current.is_some_and(|c| {
        c["status"] == status && c["reason"] == reason && c["message"] == message.as_str()
    });
    if unchanged {
        return None;
    }
    let since = match current {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => now.0.as_str().into(),
    };
    let mut condition = json!({
        "type": cond::PASSWORD_SECRET_FOUND,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    });
    // A real API server drops a zero `observedGeneration`; write it only when there is one.
    if let Some(generation) = peer.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
        condition["observedGeneration"] = generation.into();
    }
    let mut others: Vec<Value> = peer
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c["type"] != cond::PASSWORD_SECRET_FOUND)
        .cloned()
        .collect();
    others.push(condition);
    others.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    let target = ObjectRef::cluster(api::CLASS_API_VERSION, api::BGP_PEER_KIND, name);
    let patch = json!({"status": {"conditions": others}});
    Some(KubeOperation::merge_patch(target, patch).status().ignore_missing_object())
}

fn copy_object(name: &str, password: &str) -> Value {
    let mut labels_ = module_labels();
    labels_.insert(labels::BGP_PASSWORD_COPY.into(), "true".into());
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": module::NAMESPACE, "labels": labels_},
        "type": "Opaque",
        "data": {bgp::PASSWORD_KEY: password},
    })
}

#[cfg(test)]
mod tests;
