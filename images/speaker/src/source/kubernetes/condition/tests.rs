//! Which children get which condition, the apply body, and when the limiter writes.

use std::collections::BTreeSet;

use super::*;
use crate::source::AddressSpec;
use crate::source::kubernetes::view::ObservedCondition;

const ME: &str = "front-0";

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn child(name: &str, ip: &str, node: &str, class: &str) -> Child {
    Child {
        namespace: "web".into(),
        name: name.into(),
        entry: ChildEntry {
            address: AddressSpec {
                ip: ip.parse().expect("ip"),
                class: Some(class.into()),
                node: node.into(),
                backups: vec!["front-1".into()],
            },
            labelled: true,
            condition: None,
            status_managers: Vec::new(),
        },
        announced: true,
    }
}

fn problems() -> InterfaceProblems {
    InterfaceProblems::from([
        (
            "front".to_owned(),
            ClassInterfaces { missing: set(&["eth9"]), down: set(&[]), usable: set(&[]) },
        ),
        (
            "back".to_owned(),
            ClassInterfaces { missing: set(&[]), down: set(&["bond1"]), usable: set(&["bond0"]) },
        ),
        (
            "both".to_owned(),
            ClassInterfaces {
                missing: set(&["eth8", "eth9"]),
                down: set(&["eth3"]),
                usable: set(&[]),
            },
        ),
    ])
}

#[test]
fn only_announced_children_of_this_node_with_a_troubled_class_get_the_condition() {
    let mut ignored = child("forged", "192.0.2.9", ME, "front");
    ignored.announced = false;
    let children = vec![
        child("a", "192.0.2.10", ME, "front"),
        child("b", "192.0.2.11", ME, "back"),
        child("c", "192.0.2.12", ME, "both"),
        child("d", "192.0.2.13", ME, "fine"),
        child("e", "192.0.2.14", "front-1", "front"),
        ignored,
    ];
    let wanted = wanted(&children, &problems(), ME);
    let summary: Vec<(&str, &str, &str)> =
        wanted.iter().map(|(k, w)| (k.as_str(), w.reason.label(), w.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (
                "web/a",
                "InterfaceMissing",
                "node front-0 lacks interface eth9 named by class front: 192.0.2.10 is not \
                 answered on this node"
            ),
            (
                "web/b",
                "InterfaceDown",
                "node front-0 has interface bond1 down or without a MAC named by class back: \
                 192.0.2.11 is answered on this node only on bond0"
            ),
            (
                "web/c",
                "InterfaceMissing",
                "node front-0 lacks interfaces eth8, eth9 and has interface eth3 down or without \
                 a MAC named by class both: 192.0.2.12 is not answered on this node"
            ),
        ]
    );
    assert!(super::wanted(&children, &InterfaceProblems::new(), ME).is_empty());
}

#[test]
fn the_apply_body_holds_only_this_condition_and_a_removal_tests_the_type() {
    let w = Wanted { reason: Reason::InterfaceMissing, message: "node front-0 lacks …".into() };
    let body = apply_body("web", "nginx-front-0", &w, "2026-12-07T00:00:00Z");
    assert_eq!(
        body,
        json!({
            "apiVersion": "internal.network.deckhouse.io/v1alpha1",
            "kind": "SDNInternalL2LBService",
            "metadata": {"name": "nginx-front-0", "namespace": "web"},
            "status": {"conditions": [{
                "type": "NodeCanAnnounce", "status": "False", "reason": "InterfaceMissing",
                "message": "node front-0 lacks …", "lastTransitionTime": "2026-12-07T00:00:00Z",
            }]},
        })
    );
    assert_eq!(
        removal(2),
        json!([
            {"op": "test", "path": "/status/conditions/2/type", "value": "NodeCanAnnounce"},
            {"op": "remove", "path": "/status/conditions/2"},
        ])
    );
    assert!(serde_json::from_value::<json_patch::Patch>(removal(0)).is_ok());
    assert_eq!(manager(ME), "metallb-speaker/front-0");
}

/// `children` with the condition of `key` stored as `wanted`, owned by `manager`.
fn stored(children: &mut [Child], key: &str, wanted: &Wanted, manager: &str) {
    let c = children.iter_mut().find(|c| c.key() == key).expect("child");
    c.entry.condition = Some(ObservedCondition {
        status: "False".into(),
        reason: wanted.reason.label().into(),
        message: wanted.message.clone(),
        last_transition_time: "2026-12-07T00:00:00Z".into(),
        index: 1,
    });
    c.entry.status_managers = vec![manager.to_owned()];
}

fn released(children: &mut [Child], key: &str) {
    let c = children.iter_mut().find(|c| c.key() == key).expect("child");
    c.entry.condition = None;
    c.entry.status_managers.clear();
}

#[test]
fn writes_only_on_change_retries_after_the_interval_and_releases_its_own() {
    let me = manager(ME);
    let t0 = Instant::now();
    let mut limiter = Limiter::default();
    let mut children =
        vec![child("a", "192.0.2.10", ME, "front"), child("d", "192.0.2.13", ME, "fine")];
    let troubled = problems();
    let want = wanted(&children, &troubled, ME);

    let due = limiter.due(t0, &children, &want, (ME, &me), BUDGET);
    assert_eq!(due, [(0, Some(want["web/a"].clone()))], "a new problem is written at once");
    limiter.record(t0, &children[0], due[0].1.clone());
    // Not yet in the watch: not written again before the interval.
    assert!(
        limiter.due(t0 + Duration::from_secs(1), &children, &want, (ME, &me), BUDGET).is_empty()
    );
    // Refused (or undone by a racing writer): retried after the interval.
    assert_eq!(limiter.due(t0 + MIN_INTERVAL, &children, &want, (ME, &me), BUDGET).len(), 1);

    // Stored as wanted: nothing, however long it stays so.
    stored(&mut children, "web/a", &want["web/a"], &me);
    assert!(limiter.due(t0 + MIN_INTERVAL * 10, &children, &want, (ME, &me), BUDGET).is_empty());

    // The interface appears: the condition is released at once, once.
    let t1 = t0 + MIN_INTERVAL * 11;
    let none = wanted(&children, &InterfaceProblems::new(), ME);
    let due = limiter.due(t1, &children, &none, (ME, &me), BUDGET);
    assert_eq!(due, [(0, None)]);
    limiter.record(t1, &children[0], None);
    assert!(limiter.due(t1, &children, &none, (ME, &me), BUDGET).is_empty());
    released(&mut children, "web/a");
    assert!(limiter.due(t1 + MIN_INTERVAL, &children, &none, (ME, &me), BUDGET).is_empty());

    // The child moved to another node while this node's condition stayed (written by an
    // earlier run of this speaker): removed. Another node's condition on its own child is not
    // ours to touch; on a child of this node it is removed, whoever wrote it (a node gone for
    // good cannot).
    let mut moved = child("a", "192.0.2.10", "front-1", "front");
    let theirs = child("x", "192.0.2.20", "front-2", "front");
    let left = child("y", "192.0.2.21", ME, "fine");
    let mut children = vec![moved.clone(), theirs, left];
    stored(&mut children, "web/a", &want["web/a"], &me);
    stored(&mut children, "web/x", &want["web/a"], &manager("front-2"));
    stored(&mut children, "web/y", &want["web/a"], &manager("front-9"));
    let mut fresh = Limiter::default();
    let want = wanted(&children, &troubled, ME);
    assert!(want.is_empty());
    assert_eq!(fresh.due(t1, &children, &want, (ME, &me), BUDGET), [(0, None), (2, None)]);
    fresh.record(t1, &children[0], None);
    moved.entry.status_managers.clear();
    fresh.retain(&[moved]);
    assert_eq!(fresh.written.len(), 1);
    fresh.retain(&[]);
    assert!(fresh.written.is_empty(), "forgotten with the child");
}

#[test]
fn a_changed_message_is_written_at_once_keeping_the_budget() {
    let me = manager(ME);
    let t0 = Instant::now();
    let mut limiter = Limiter::default();
    let children: Vec<Child> = (0..30)
        .map(|i| child(&format!("c{i:02}"), &format!("192.0.2.{}", 100 + i), ME, "front"))
        .collect();
    let want = wanted(&children, &problems(), ME);
    let due = limiter.due(t0, &children, &want, (ME, &me), BUDGET);
    assert_eq!(due.len(), BUDGET, "at most the budget per round");
    for (i, w) in &due {
        limiter.record(t0, &children[*i], w.clone());
    }
    let rest = limiter.due(t0 + Duration::from_secs(1), &children, &want, (ME, &me), BUDGET);
    assert_eq!(rest.len(), 30 - BUDGET, "the rest in the next round");

    // A second interface goes missing before the first writes show: new message, at once.
    let mut worse = problems();
    worse.get_mut("front").expect("front").missing.insert("eth7".into());
    let want = wanted(&children, &worse, ME);
    assert!(want["web/c00"].message.contains("lacks interfaces eth7, eth9"));
    assert_eq!(
        limiter.due(t0 + Duration::from_secs(1), &children, &want, (ME, &me), 100).len(),
        30
    );
}
