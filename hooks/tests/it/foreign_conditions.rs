//! A condition the hooks do not own on a child — the speaker's `NodeCanAnnounce`, written by
//! server-side apply on the child's status — survives the discovery hook's merge patches of
//! the whole `conditions` list: kept as is when nothing else changes (no write at all), kept
//! in place when the hook rewrites the child's placement.

use anyhow::Result;
use serde_json::{Value, json};
use testkit::Framework;

use super::{CHILD, assert_second_run_is_a_no_op, children, get, started};

fn speaker_condition(node: &str) -> Value {
    json!({
        "type": "NodeCanAnnounce", "status": "False", "reason": "InterfaceMissing",
        "message": format!("node {node} lacks interface eth9 named by class front: \
                            198.51.100.10 is not answered on this node"),
        "lastTransitionTime": "2026-12-07T00:00:00Z",
    })
}

fn conditions(fw: &Framework, name: &str) -> Vec<Value> {
    get(fw, CHILD, "web", name)
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn types(conditions: &[Value]) -> Vec<&str> {
    conditions.iter().filter_map(|c| c["type"].as_str()).collect()
}

#[test]
fn a_speaker_condition_on_a_child_survives_hook_runs_and_causes_no_write() -> Result<()> {
    let mut fw = started(|_| {})?;
    let (victim, (_, node)) = children(&fw, "web").into_iter().next().expect("a child");
    let node = node.expect("placed");
    let mut child = get(&fw, CHILD, "web", &victim).clone();
    let before = conditions(&fw, &victim);
    assert!(!before.is_empty(), "the hooks wrote their conditions");
    let mut with_foreign = before.clone();
    with_foreign.push(speaker_condition(&node));
    child["status"]["conditions"] = Value::Array(with_foreign.clone());
    fw.cluster_mut().insert(child)?;

    // The status change is an event of the children's binding: the hook runs and writes nothing.
    let runs = fw.runs().len();
    fw.run_until_quiet()?;
    for r in &fw.runs()[runs..] {
        assert!(r.kubernetes.is_empty(), "{} emitted {:?}", r.hook, r.kubernetes);
    }
    assert_eq!(conditions(&fw, &victim), with_foreign);
    assert_second_run_is_a_no_op(&mut fw)?;
    assert_eq!(conditions(&fw, &victim), with_foreign);

    // The node goes NotReady: the hook moves the child and rewrites its own conditions; the
    // speaker's stays where it was, untouched (the speaker of the old node releases it).
    let mut n = fw.cluster().get(None, "Node", "", &node).expect("node").clone();
    n["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    fw.cluster_mut().insert(n)?;
    fw.run_until_quiet()?;
    let moved = children(&fw, "web")[&victim].1.clone().expect("placed");
    assert_ne!(moved, node);
    let after = conditions(&fw, &victim);
    assert_eq!(types(&after), types(&with_foreign), "order and types kept: {after:?}");
    let foreign = after.iter().find(|c| c["type"] == "NodeCanAnnounce").expect("kept");
    assert_eq!(foreign, &speaker_condition(&node));
    assert_second_run_is_a_no_op(&mut fw)
}
