//! A peer's `status.sessionSummary` (the `SESSIONS` column of `kubectl get mlbbp`), from the
//! `status.sessions` entries the BGP speakers write: how many of them are Established.
//!
//! A speaker writes an entry only while its node should peer (some route of the node names the
//! peer) and removes it when that ends, so the entries are the sessions there should be. An
//! entry of a node that no longer exists is left out: nobody else would remove it.

use std::collections::BTreeSet;

use addon::{KubeOperation, ObjectRef};
use metallb_api::names::api;
use serde_json::{Value, json};

/// What the peers binding keeps: the name and address (for the routes' families, see
/// `types::peer_families`), each entry's node and state, and the summary.
pub(super) const PEER_FILTER: &str = r#"{name: .metadata.name, address: .spec.peerAddress,
    sessions: [.status.sessions[]? | {node: .node, state: .state}],
    summary: .status.sessionSummary}"#;

/// The state a speaker reports for a working session.
const ESTABLISHED: &str = "Established";

/// Status patches for the peers whose summary differs from what it should be.
pub(super) fn summary_patches(peers: &[Value], nodes: &BTreeSet<&str>) -> Vec<KubeOperation> {
    let mut ops = Vec::new();
    for peer in peers {
        let Some(name) = peer.get("name").and_then(Value::as_str) else { continue };
        let wanted = summary(peer, nodes);
        let current = peer.get("summary").and_then(Value::as_str);
        if current == wanted.as_deref() {
            continue;
        }
        let target = ObjectRef::cluster(api::CLASS_API_VERSION, api::BGP_PEER_KIND, name);
        let patch = json!({"status": {"sessionSummary": wanted}});
        // A peer deleted between the snapshot and the patch needs no summary.
        ops.push(KubeOperation::merge_patch(target, patch).status().ignore_missing_object());
    }
    ops
}

/// `N/M established` over the entries of existing nodes; nothing without an entry.
fn summary(peer: &Value, nodes: &BTreeSet<&str>) -> Option<String> {
    let entries = peer.get("sessions").and_then(Value::as_array)?;
    let mut present = BTreeSet::new();
    let mut established = BTreeSet::new();
    for entry in entries {
        let Some(node) = entry.get("node").and_then(Value::as_str) else { continue };
        if !nodes.contains(node) {
            continue;
        }
        present.insert(node);
        if entry.get("state").and_then(Value::as_str) == Some(ESTABLISHED) {
            established.insert(node);
        }
    }
    (!present.is_empty()).then(|| format!("{}/{} established", established.len(), present.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(summary: Option<&str>, sessions: &[(&str, &str)]) -> Value {
        let sessions: Vec<Value> =
            sessions.iter().map(|(node, state)| json!({"node": node, "state": state})).collect();
        json!({"name": "tor", "sessions": sessions, "summary": summary})
    }

    fn patched(ops: &[KubeOperation]) -> Vec<Value> {
        let values = ops.iter().map(|op| serde_json::to_value(op).unwrap());
        values.map(|v| v["mergePatch"]["status"]["sessionSummary"].clone()).collect()
    }

    /// What one run writes: nothing (`None`), the summary removed (`Some(None)`) or set.
    type Write = Option<Option<&'static str>>;
    /// The entries (node, state), the summary now, what the run writes.
    type Case = (&'static [(&'static str, &'static str)], Option<&'static str>, Write);

    #[test]
    fn the_summary_counts_established_sessions_of_existing_nodes() {
        let nodes = BTreeSet::from(["front-0", "front-1", "front-2"]);
        let cases: [Case; 5] = [
            // Three sessions, two up; the entry of a deleted node does not count.
            (
                &[
                    ("front-0", "Established"),
                    ("front-1", "Active"),
                    ("front-2", "Established"),
                    ("gone", "Established"),
                ],
                None,
                Some(Some("2/3 established")),
            ),
            // Already right: no write.
            (&[("front-0", "Established")], Some("1/1 established"), None),
            // No entry left, or only a deleted node's: the summary is removed.
            (&[], Some("1/1 established"), Some(None)),
            (&[("gone", "Established")], Some("1/1 established"), Some(None)),
            // Never had one: nothing to write.
            (&[], None, None),
        ];
        for (sessions, current, want) in cases {
            let ops = summary_patches(&[peer(current, sessions)], &nodes);
            let written: Vec<Value> = patched(&ops);
            let expected: Vec<Value> = want.into_iter().map(|w| json!(w)).collect();
            assert_eq!(written, expected, "{sessions:?} with {current:?}");
        }
    }
}
