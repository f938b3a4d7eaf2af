//! Projections, mirror semantics (relist buffering, deletions while not watching) and the
//! conversion into the desired state.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn child(name: &str, status: serde_json::Value) -> ChildView {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "web",
                     "labels": {"heritage": "deckhouse", "module": "metallb"}},
        "spec": {"serviceRef": {"name": "nginx"}, "metalLoadBalancerClass": "front",
                 "ports": [{"port": 80}], "externalTrafficPolicy": "Local"},
        "status": status,
    }))
    .expect("child")
}

fn placed(name: &str, ip: &str, node: &str, backups: &[&str]) -> ChildView {
    child(name, json!({"ip": ip, "node": node, "backupNodes": backups}))
}

fn address(ip: &str, node: &str, backups: &[&str]) -> ChildEntry {
    ChildEntry {
        address: AddressSpec {
            ip: ip.parse().expect("ip"),
            class: Some("front".into()),
            node: node.into(),
            backups: backups.iter().map(|b| b.to_string()).collect(),
        },
        labelled: true,
        condition: None,
        status_managers: Vec::new(),
    }
}

/// The mirror of classes holding `front` with `pool`.
fn front(pool: &[&str]) -> Mirror<ClassEntry> {
    let class: ClassView = serde_json::from_value(json!({
        "metadata": {"name": "front"}, "spec": {"addressPool": pool},
    }))
    .expect("class");
    let mut classes = Mirror::default();
    classes.apply(Event::<ClassView>::Init);
    classes.apply(Event::InitApply(class));
    classes.apply(Event::<ClassView>::InitDone);
    classes
}

#[test]
fn child_projection() {
    let cases = [
        (
            json!({"ip": "192.0.2.10", "node": "a", "backupNodes": ["b", ""]}),
            Extracted::Entry(address("192.0.2.10", "a", &["b"])),
        ),
        (
            json!({"ip": "2001:db8::10", "node": "a"}),
            Extracted::Entry(address("2001:db8::10", "a", &[])),
        ),
        (json!({}), Extracted::Pending),
        (json!({"ip": "192.0.2.10"}), Extracted::Pending),
        (json!({"ip": "192.0.2.10", "node": ""}), Extracted::Pending),
        (
            json!({"ip": "192.0.2.300", "node": "a"}),
            Extracted::Invalid("status.ip \"192.0.2.300\" is not an IP address".into()),
        ),
    ];
    for (status, want) in cases {
        assert_eq!(child("c", status.clone()).project(), want, "{status}");
    }
    let no_status: ChildView =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "spec": {}})).expect("child");
    assert_eq!(no_status.project(), Extracted::Pending);
}

#[test]
fn a_child_projects_the_speakers_condition_and_status_managers() {
    let mut view = child(
        "c",
        json!({"ip": "192.0.2.10", "node": "a", "conditions": [
            {"type": "Announced", "status": "True", "reason": "NodeAssigned", "message": "m"},
            {"type": "NodeCanAnnounce", "status": "False", "reason": "InterfaceMissing",
             "message": "node a lacks interface eth9", "lastTransitionTime": 7}]}),
    );
    view.metadata.managed_fields = serde_json::from_value(json!([
        {"manager": "metallb-hooks", "operation": "Update", "subresource": "status"},
        {"manager": "metallb-speaker/b", "operation": "Apply", "subresource": "status"},
        {"manager": "metallb-speaker/a", "operation": "Apply", "subresource": "status"},
        {"manager": "metallb-speaker/c", "operation": "Apply"},
        {"manager": "metallb-speaker/d", "operation": "Update", "subresource": "status"},
    ]))
    .expect("managed fields");
    let Extracted::Entry(entry) = view.project() else { panic!("placed") };
    assert_eq!(
        entry.condition,
        Some(ObservedCondition {
            status: "False".into(),
            reason: "InterfaceMissing".into(),
            message: "node a lacks interface eth9".into(),
            last_transition_time: String::new(),
            index: 1,
        }),
        "a member of the wrong type reads as empty"
    );
    assert_eq!(entry.status_managers, ["metallb-speaker/a", "metallb-speaker/b"]);
    // A malformed list written by someone else never makes the child unreadable.
    let odd = child("c", json!({"ip": "192.0.2.10", "node": "a", "conditions": "weird"}));
    assert_eq!(odd.project(), Extracted::Entry(address("192.0.2.10", "a", &[])));
}

#[test]
fn class_and_pod_projections() {
    let class = |spec: serde_json::Value| -> ClassView {
        serde_json::from_value(json!({"metadata": {"name": "front"}, "spec": spec})).expect("class")
    };
    let entry = |names: &[&str], pool: &[&str]| ClassEntry {
        spec: ClassSpec { interfaces: names.iter().map(|s| s.to_string()).collect() },
        pool: Pool::parse(pool),
    };
    assert_eq!(class(json!({"addressPool": []})).project(), Extracted::Entry(entry(&[], &[])));
    assert_eq!(
        class(json!({"addressPool": ["192.0.2.0/28", "bad"],
                     "l2": {"interfaces": ["eth1", "bond0.100"]}}))
        .project(),
        Extracted::Entry(entry(&["eth1", "bond0.100"], &["192.0.2.0/28", "bad"]))
    );
    assert!(matches!(class(json!({"l2": {"interfaces": [""]}})).project(), Extracted::Invalid(_)));

    let pod = |status: serde_json::Value| -> PeerPodView {
        serde_json::from_value(json!({"metadata": {"name": "s", "namespace": "d8-metallb"},
                                      "spec": {"containers": []}, "status": status}))
        .expect("pod")
    };
    assert_eq!(
        pod(json!({"hostIP": "198.51.100.1"})).project(),
        Extracted::Entry("198.51.100.1".parse().expect("ip"))
    );
    assert_eq!(pod(json!({"phase": "Pending"})).project(), Extracted::Pending);
    assert_eq!(pod(json!({"hostIP": ""})).project(), Extracted::Pending);
    assert!(matches!(pod(json!({"hostIP": "node-1"})).project(), Extracted::Invalid(_)));
}

#[test]
fn a_relist_is_invisible_until_complete_and_drops_what_was_deleted_meanwhile() {
    let x = || placed("x", "192.0.2.10", "a", &[]);
    let mut mirror = Mirror::default();
    assert_eq!(mirror.apply(Event::<ChildView>::Init), Applied::Unchanged);
    assert_eq!(mirror.apply(Event::InitApply(x())), Applied::Unchanged);
    assert_eq!(
        mirror.apply(Event::InitApply(placed("y", "192.0.2.11", "b", &[]))),
        Applied::Unchanged
    );
    assert!(!mirror.is_synced() && mirror.entries().is_empty(), "nothing visible before InitDone");
    assert_eq!(mirror.apply(Event::<ChildView>::InitDone), Applied::Synced);
    assert_eq!(mirror.entries().len(), 2);

    // The watch expired; y was deleted meanwhile. The old view stays until the list is complete.
    assert_eq!(mirror.apply(Event::<ChildView>::Init), Applied::Unchanged);
    assert_eq!(mirror.apply(Event::InitApply(x())), Applied::Unchanged);
    assert_eq!(mirror.entries().len(), 2, "announcing from the last view during the relist");
    assert_eq!(mirror.apply(Event::<ChildView>::InitDone), Applied::Changed);
    assert_eq!(mirror.entries().keys().collect::<Vec<_>>(), ["web/x"]);

    // A relist that finds the same objects changes nothing.
    mirror.apply(Event::<ChildView>::Init);
    mirror.apply(Event::InitApply(x()));
    assert_eq!(mirror.apply(Event::<ChildView>::InitDone), Applied::Unchanged);
}

#[test]
fn updates_unplacing_and_malformed_objects() {
    let mut mirror = mirror_of(&[]);
    let x = placed("x", "192.0.2.10", "a", &["b"]);
    assert_eq!(mirror.apply(Event::Apply(x.clone())), Applied::Changed);
    assert_eq!(mirror.apply(Event::Apply(x.clone())), Applied::Unchanged, "a status-only resync");
    assert_eq!(
        mirror.apply(Event::Apply(placed("x", "192.0.2.10", "b", &["a"]))),
        Applied::Changed
    );
    // The hooks clear the placement (e.g. the pool shrank): the address is withdrawn.
    assert_eq!(mirror.apply(Event::Apply(child("x", json!({})))), Applied::Changed);
    assert!(mirror.entries().is_empty());
    assert_eq!(mirror.apply(Event::Apply(x.clone())), Applied::Changed);
    // A malformed update is reported and withdraws the key rather than keep a stale address.
    let bad = child("x", json!({"ip": "not-an-ip", "node": "a"}));
    assert!(
        matches!(mirror.apply(Event::Apply(bad)), Applied::Skipped { key, .. } if key == "web/x")
    );
    assert!(mirror.entries().is_empty());
    assert_eq!(mirror.apply(Event::Delete(x.clone())), Applied::Unchanged, "already gone");
    mirror.apply(Event::Apply(x.clone()));
    assert_eq!(mirror.apply(Event::Delete(x)), Applied::Changed);
}

fn mirror_of(children: &[ChildView]) -> Mirror<ChildEntry> {
    let mut mirror = Mirror::default();
    mirror.apply(Event::<ChildView>::Init);
    for c in children {
        mirror.apply(Event::InitApply(c.clone()));
    }
    mirror.apply(Event::<ChildView>::InitDone);
    mirror
}

#[test]
fn shared_ips_are_listed_once_and_disagreements_resolved_by_name() {
    let classes = front(&["192.0.2.0/24"]);
    let agreeing = mirror_of(&[
        placed("a-0", "192.0.2.10", "n1", &["n2"]),
        placed("b-0", "192.0.2.10", "n1", &["n2"]),
        placed("b-1", "192.0.2.11", "n2", &[]),
    ]);
    let Derived { state, conflicts, ignored } = desired_state(&agreeing, &classes);
    assert_eq!(state.addresses.len(), 2);
    assert!(conflicts.is_empty() && ignored.is_empty());
    assert!(state.validate().is_ok(), "a valid desired state (no address twice)");

    let disagreeing = mirror_of(&[
        placed("b-0", "192.0.2.10", "n3", &[]),
        placed("a-0", "192.0.2.10", "n1", &["n2"]),
    ]);
    let Derived { state, conflicts, .. } = desired_state(&disagreeing, &classes);
    assert_eq!(state.addresses[0].node, "n1", "web/a-0 sorts first");
    let want = Conflict {
        ip: "192.0.2.10".parse().expect("ip"),
        kept: "web/a-0".into(),
        ignored: "web/b-0".into(),
    };
    assert_eq!(conflicts, [want]);
}

#[test]
fn only_labelled_children_inside_their_class_pool_are_announced() {
    let unlabelled: ChildView = serde_json::from_value(json!({
        "metadata": {"name": "forged", "namespace": "web", "labels": {"heritage": "deckhouse"}},
        "spec": {"metalLoadBalancerClass": "front"},
        "status": {"ip": "192.0.2.11", "node": "n1"},
    }))
    .expect("child");
    let classless: ChildView = serde_json::from_value(json!({
        "metadata": {"name": "classless", "namespace": "web",
                     "labels": {"heritage": "deckhouse", "module": "metallb"}},
        "status": {"ip": "192.0.2.12", "node": "n1"},
    }))
    .expect("child");
    let mut other_class = placed("other", "192.0.2.13", "n1", &[]);
    other_class.spec.metal_load_balancer_class = Some("back".into());
    let children = mirror_of(&[
        placed("ok", "192.0.2.10", "n1", &[]),
        unlabelled,
        classless,
        other_class,
        // The gateway of the segment, say: outside the pool.
        placed("gateway", "192.0.2.1", "n1", &[]),
        placed("v6", "2001:db8::10", "n1", &[]),
    ]);
    let derived = desired_state(&children, &front(&["192.0.2.10-192.0.2.20", "2001:db8::/120"]));
    let announced: Vec<String> = derived.state.addresses.iter().map(|a| a.ip.to_string()).collect();
    assert_eq!(announced, ["192.0.2.10", "2001:db8::10"]);
    let ignored: Vec<(&str, &str)> =
        derived.ignored.iter().map(|i| (i.key.as_str(), i.reason.label())).collect();
    assert_eq!(
        ignored,
        [
            ("web/classless", "no_class"),
            ("web/forged", "not_labelled"),
            ("web/gateway", "outside_pool"),
            ("web/other", "unknown_class"),
        ]
    );
    // Without any class nothing is announced.
    assert!(desired_state(&children, &Mirror::default()).state.addresses.is_empty());
}

#[test]
fn peers_are_distinct_sorted_node_addresses() {
    let pod = |name: &str, ip: &str| -> PeerPodView {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d8-metallb"},
                                      "status": {"hostIP": ip}}))
        .expect("pod")
    };
    let mut pods = Mirror::default();
    pods.apply(Event::<PeerPodView>::Init);
    for (name, ip) in [("s-2", "198.51.100.2"), ("s-1", "2001:db8::1"), ("s-0", "198.51.100.2")] {
        pods.apply(Event::InitApply(pod(name, ip)));
    }
    pods.apply(Event::<PeerPodView>::InitDone);
    let got: Vec<String> = peers(&pods, 4226).iter().map(ToString::to_string).collect();
    assert_eq!(got, ["198.51.100.2:4226", "[2001:db8::1]:4226"]);
}

/// One watcher step of a generated history over six objects `c0..c5`, whose IP is
/// `192.0.2.(10 + v)`.
#[derive(Debug, Clone)]
enum Step {
    Apply(usize, u8),
    Delete(usize),
    /// A relist finding exactly these objects.
    Relist(Vec<(usize, u8)>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6usize, 0..4u8).prop_map(|(k, v)| Step::Apply(k, v)),
        (0..6usize).prop_map(Step::Delete),
        proptest::collection::vec((0..6usize, 0..4u8), 0..6).prop_map(Step::Relist),
    ]
}

fn object(k: usize, v: u8) -> ChildView {
    placed(&format!("c{k}"), &format!("192.0.2.{}", 10 + v), "a", &[])
}

fn model_entry(k: usize, v: u8) -> (String, IpAddr) {
    (format!("web/c{k}"), IpAddr::from([192, 0, 2, 10 + v]))
}

proptest! {
    /// Whatever the history, the mirror equals a plain map maintained with the same events
    /// (a relist replacing it wholesale), and mid-relist it still shows the previous content.
    #[test]
    fn the_mirror_follows_the_model(history in proptest::collection::vec(step(), 0..40)) {
        let mut mirror = mirror_of(&[]);
        let mut model: BTreeMap<String, IpAddr> = BTreeMap::new();
        for step in history {
            match step {
                Step::Apply(k, v) => {
                    mirror.apply(Event::Apply(object(k, v)));
                    model.extend([model_entry(k, v)]);
                }
                Step::Delete(k) => {
                    mirror.apply(Event::Delete(object(k, 0)));
                    model.remove(&model_entry(k, 0).0);
                }
                Step::Relist(present) => {
                    mirror.apply(Event::<ChildView>::Init);
                    let before: BTreeSet<String> = mirror.entries().keys().cloned().collect();
                    model.clear();
                    for (k, v) in present {
                        mirror.apply(Event::InitApply(object(k, v)));
                        model.extend([model_entry(k, v)]);
                    }
                    let during: BTreeSet<String> = mirror.entries().keys().cloned().collect();
                    prop_assert_eq!(during, before);
                    mirror.apply(Event::<ChildView>::InitDone);
                }
            }
            let got: BTreeMap<String, IpAddr> =
                mirror.entries().iter().map(|(k, a)| (k.clone(), a.address.ip)).collect();
            prop_assert_eq!(&got, &model);
        }
    }
}
