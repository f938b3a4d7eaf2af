//! Table tests, one group per rule of the planner.

use metallb_api::names::{annotations, conditions as cond, labels};
use metallb_planner::{
    ChildAction, ChildSpec, ChildStatus, ConditionStatus, DeleteReason, Diagnostic, ExistingChild,
    Rendered, RequestRejection, ServiceRef, Timestamp,
};

use crate::common::*;

// === binding ===

#[test]
fn binding_priority_table() {
    // (spec.loadBalancerClass, annotation, expected class or None = untouched)
    const CASES: [(Option<&str>, Option<&str>, Option<&str>); 6] = [
        (Some("spec"), Some("annot"), Some("spec")),
        (None, Some("annot"), Some("annot")),
        (None, None, Some("dflt")),
        (None, Some("missing"), Some("dflt")),
        (Some("other-controller"), Some("annot"), None),
        (Some("other-controller"), None, None),
    ];
    for (spec, annot, expected) in CASES {
        let mut s = svc("web");
        if let Some(c) = spec {
            s = s.lb_class(c);
        }
        if let Some(a) = annot {
            s = s.ann(annotations::METAL_LOAD_BALANCER_CLASS, a);
        }
        let plan = metallb_planner::plan(&input(
            vec![
                class("spec", &["10.0.1.0/24"]),
                class("annot", &["10.0.2.0/24"]),
                default_class("dflt", &["10.0.3.0/24"]),
            ],
            nodes(2),
            vec![s],
        ));
        match expected {
            Some(c) => {
                assert_eq!(bound_class(&plan, "web"), c, "{spec:?} {annot:?}");
                assert_eq!(children_of(&plan, "web")[0].spec.class, c);
            }
            None => {
                assert!(status_of(&plan, "web").is_none(), "foreign Service untouched");
                assert!(plan.children.is_empty());
                assert!(
                    plan.diagnostics.iter().any(|d| matches!(d, Diagnostic::ForeignClass { .. }))
                );
            }
        }
    }
}

#[test]
fn unknown_class_annotation_is_reported_in_the_condition() {
    let plan = metallb_planner::plan(&input(
        vec![default_class("dflt", &["10.0.3.0/24"])],
        nodes(1),
        vec![svc("web").ann(annotations::METAL_LOAD_BALANCER_CLASS, "nope")],
    ));
    let c = svc_condition(&plan, "web", cond::ANNOTATIONS_VALID);
    assert_eq!(c.status, ConditionStatus::False);
    assert_eq!(c.reason, cond::REASON_UNKNOWN_CLASS_ANNOTATION);
    assert!(c.message.contains("nope"));
}

#[test]
fn no_class_at_all_leaves_the_service_alone() {
    let plan = metallb_planner::plan(&input(
        vec![class("a", &["10.0.0.0/24"])],
        nodes(1),
        vec![svc("web")],
    ));
    assert!(plan.services.is_empty() && plan.children.is_empty());
    assert_eq!(plan.diagnostics[0].label(), "no_class");
}

#[test]
fn binding_is_sticky_against_a_new_default_but_follows_the_annotation() {
    let first = input(vec![default_class("a", &["10.0.1.0/24"])], nodes(2), vec![svc("web")]);
    let (_, mut applied) = converge(&first);
    // A second default class that sorts first would win for new Services, not for this one.
    applied.classes.push(default_class("0-new", &["10.0.2.0/24"]));
    let (plan, mut applied) = converge(&applied);
    assert_eq!(bound_class(&plan, "web"), "a");
    assert_eq!(ips_of(&plan, "web"), [Some("10.0.1.0".to_owned())]);
    applied.services[0] =
        applied.services[0].clone().ann(annotations::METAL_LOAD_BALANCER_CLASS, "0-new");
    let plan = metallb_planner::plan(&applied);
    assert_eq!(bound_class(&plan, "web"), "0-new");
    assert_eq!(ips_of(&plan, "web"), [Some("10.0.2.0".to_owned())]);
    assert_eq!(plan.deletions.len(), 1);
    assert_eq!(plan.deletions[0].name, "web-a-0");
    assert_eq!(plan.deletions[0].reason, DeleteReason::Superseded);
}

#[test]
fn vanished_class_rebinds_and_says_so() {
    let (_, mut applied) = converge(&input(
        vec![class("old", &["10.0.1.0/24"])],
        nodes(2),
        vec![svc("web").ann(annotations::METAL_LOAD_BALANCER_CLASS, "old")],
    ));
    applied.classes = vec![default_class("new", &["10.0.2.0/24"])];
    applied.services[0].annotations.clear();
    let (plan, applied) = converge(&applied);
    let c = svc_condition(&plan, "web", cond::LOAD_BALANCER_CLASS);
    assert_eq!(
        (c.status, c.reason.as_str(), c.message.as_str()),
        (ConditionStatus::True, cond::REASON_CLASS_REBOUND, "new")
    );
    assert!(plan.diagnostics.iter().any(|d| d.label() == "class_rebound"));
    assert_eq!(ips_of(&plan, "web"), [Some("10.0.2.0".to_owned())]);
    // Re-planning keeps the reason: nothing to write.
    let again = metallb_planner::plan(&applied);
    assert!(!status_of(&again, "web").unwrap().changed);
}

#[test]
fn rendering_gives_each_services_children_then_its_status_in_service_order() {
    let on = |name: &str, class: &str| svc(name).ann(annotations::METAL_LOAD_BALANCER_CLASS, class);
    let (_, mut applied) = converge(&input(
        vec![class("old", &["10.0.1.0/24"]), class("keep", &["10.0.2.0/24"])],
        nodes(2),
        vec![on("d", "keep"), on("c", "old"), on("b", "keep").count(2), on("a", "old")],
    ));
    // `a` and `c` are orphaned: their statuses come between the bound Services' by name.
    applied.classes.retain(|c| c.name == "keep");
    let decisions = metallb_planner::decide(&applied);
    let order: Vec<String> = decisions
        .render()
        .map(|part| match part {
            Rendered::Child(c) => format!("child {}", c.name),
            Rendered::Service(s) => format!("status {}", s.name),
        })
        .collect();
    assert_eq!(
        order,
        [
            "status a",
            "child b-keep-0",
            "child b-keep-1",
            "status b",
            "status c",
            "child d-keep-0",
            "status d"
        ]
    );
    assert_eq!((decisions.child_count(), decisions.service_count()), (3, 4));
    let plan = metallb_planner::plan(&applied);
    assert_eq!((plan.deletions, plan.diagnostics), (decisions.deletions, decisions.diagnostics));
}

#[test]
fn vanished_class_without_replacement_clears_the_status() {
    let (_, mut applied) = converge(&input(
        vec![class("old", &["10.0.1.0/24"])],
        nodes(2),
        vec![svc("web").ann(annotations::METAL_LOAD_BALANCER_CLASS, "old")],
    ));
    applied.classes.clear();
    let (plan, applied) = converge(&applied);
    let status = status_of(&plan, "web").unwrap();
    assert!(status.ingress.is_empty(), "no stale ingress (reference §11.2)");
    let c = condition(&status.conditions, cond::LOAD_BALANCER_CLASS);
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::False, cond::REASON_CLASS_NOT_FOUND)
    );
    assert_eq!(plan.deletions.len(), 1);
    assert_eq!(plan.deletions[0].reason, DeleteReason::ParentNotManaged);
    let again = metallb_planner::plan(&applied);
    assert!(!status_of(&again, "web").unwrap().changed);
    assert!(again.deletions.is_empty() && again.children.is_empty());
}

#[test]
fn several_default_classes_first_by_name_wins_and_each_says_so() {
    let plan = metallb_planner::plan(&input(
        vec![
            default_class("zeta", &["10.0.2.0/24"]),
            default_class("alpha", &["10.0.1.0/24"]),
            class("plain", &["10.0.3.0/24"]),
        ],
        nodes(1),
        vec![svc("web")],
    ));
    assert_eq!(bound_class(&plan, "web"), "alpha");
    let reasons: Vec<(&str, ConditionStatus, &str)> = plan
        .classes
        .iter()
        .map(|c| {
            let d = condition(&c.conditions, cond::DEFAULT_CLASS);
            (c.name.as_str(), d.status, d.reason.as_str())
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("alpha", ConditionStatus::True, cond::REASON_DEFAULT_CLASS_ACTIVE),
            ("plain", ConditionStatus::False, cond::REASON_NOT_DEFAULT),
            ("zeta", ConditionStatus::False, cond::REASON_DEFAULT_CLASS_SHADOWED),
        ]
    );
    let zeta = condition(&plan.classes[2].conditions, cond::DEFAULT_CLASS);
    assert!(zeta.message.contains("alpha, zeta"), "{}", zeta.message);
}

// === count ===

#[test]
fn count_annotation_table() {
    const CASES: [(Option<&str>, usize, bool); 8] = [
        (None, 1, false),
        (Some("3"), 3, false),
        (Some("64"), 64, false),
        (Some("65"), 64, true),
        (Some("0"), 1, true),
        (Some("-2"), 1, true),
        (Some("three"), 1, true),
        (Some(" 2 "), 2, true),
    ];
    for (raw, children, flagged) in CASES {
        let mut s = svc("web");
        if let Some(raw) = raw {
            s = s.ann(annotations::EXTERNAL_IPS_COUNT, raw);
        }
        let plan = metallb_planner::plan(&input(
            vec![default_class("a", &["10.0.0.0/16"])],
            nodes(3),
            vec![s],
        ));
        assert_eq!(plan.children.len(), children, "{raw:?}");
        let c = svc_condition(&plan, "web", cond::ANNOTATIONS_VALID);
        if flagged {
            assert_eq!(c.reason, cond::REASON_INVALID_EXTERNAL_IPS_COUNT, "{raw:?}");
            assert!(c.message.contains(&format!("using {children}")), "{}", c.message);
        } else {
            assert_eq!(c.status, ConditionStatus::True, "{raw:?}");
        }
    }
}

// === requested IPs ===

#[test]
fn requested_ips_table() {
    let holder = svc("holder").ann(annotations::LOAD_BALANCER_IPS, "10.0.0.9");
    // (annotation, expected IPs of a 3-IP Service, expected rejection label per index)
    type PerIndex<'a> = [Option<&'a str>; 3];
    let cases: [(&str, PerIndex, PerIndex); 6] = [
        (
            "10.0.0.5, 10.0.0.7 ,10.0.0.6",
            [Some("10.0.0.5"), Some("10.0.0.7"), Some("10.0.0.6")],
            [None; 3],
        ),
        ("10.0.0.5,,10.0.0.6", [Some("10.0.0.5"), Some("10.0.0.0"), Some("10.0.0.6")], [None; 3]),
        (
            "10.0.0.5,not-an-ip",
            [Some("10.0.0.5"), None, Some("10.0.0.0")],
            [None, Some("not_an_address"), None],
        ),
        (
            "192.168.0.1",
            [None, Some("10.0.0.0"), Some("10.0.0.1")],
            [Some("outside_pool"), None, None],
        ),
        ("10.0.0.9", [None, Some("10.0.0.0"), Some("10.0.0.1")], [Some("taken"), None, None]),
        (
            "2001:db8::1",
            [None, Some("10.0.0.0"), Some("10.0.0.1")],
            [Some("outside_pool"), None, None],
        ),
    ];
    for (annotation, ips, rejected) in cases {
        let plan = metallb_planner::plan(&input(
            vec![default_class("a", &["10.0.0.0/28"])],
            nodes(3),
            vec![
                holder.clone(),
                svc("web").count(3).ann(annotations::LOAD_BALANCER_IPS, annotation),
            ],
        ));
        let got: Vec<Option<String>> = ips_of(&plan, "web");
        let want: Vec<Option<String>> = ips.iter().map(|i| i.map(str::to_owned)).collect();
        assert_eq!(got, want, "{annotation}");
        for (index, label) in rejected.iter().enumerate() {
            let found = plan.diagnostics.iter().find_map(|d| match d {
                Diagnostic::RequestedIpRejected { index: i, why, .. } if *i as usize == index => {
                    Some(why.label())
                }
                _ => None,
            });
            assert_eq!(found, *label, "{annotation} index {index}");
        }
        if rejected.iter().any(Option::is_some) {
            let c = svc_condition(&plan, "web", cond::ALL_PUBLIC_IPS_ASSIGNED);
            assert_eq!(c.status, ConditionStatus::False);
            assert!(c.message.starts_with("2 of 3 public IPs were assigned"), "{}", c.message);
            let bad = annotation.split(',').next().unwrap_or_default().trim();
            let names_entry =
                svc_condition(&plan, "web", cond::ANNOTATIONS_VALID).message.contains(bad)
                    || c.message.contains("not-an-ip");
            assert!(names_entry, "{}", c.message);
        }
    }
}

#[test]
fn extra_requested_ips_are_reported() {
    let plan = metallb_planner::plan(&input(
        vec![default_class("a", &["10.0.0.0/28"])],
        nodes(1),
        vec![svc("web").ann(annotations::LOAD_BALANCER_IPS, "10.0.0.1,10.0.0.2")],
    ));
    assert_eq!(ips_of(&plan, "web"), [Some("10.0.0.1".to_owned())]);
    assert_eq!(
        svc_condition(&plan, "web", cond::ANNOTATIONS_VALID).reason,
        cond::REASON_REQUESTED_IPS_REJECTED
    );
}

#[test]
fn changing_the_request_moves_the_ip() {
    let (_, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/28"])], nodes(1), vec![svc("web")]));
    applied.services[0] =
        applied.services[0].clone().ann(annotations::LOAD_BALANCER_IPS, "10.0.0.7");
    let plan = metallb_planner::plan(&applied);
    assert_eq!(ips_of(&plan, "web"), [Some("10.0.0.7".to_owned())]);
    assert!(matches!(plan.children[0].action, ChildAction::Update { spec: true, status: true }));
}

// === sharing ===

#[test]
fn sharing_table() {
    use metallb_planner::TrafficPolicy::{Cluster, Local};
    // (ports b, policy a, policy b, same selector, shares)
    let cases = [
        (443, Cluster, Cluster, false, true),
        (80, Cluster, Cluster, false, false),
        (443, Local, Local, true, true),
        (443, Local, Local, false, false),
        (443, Cluster, Local, false, false),
    ];
    for (port_b, pa, pb, same_selector, shares) in cases {
        let mut a = svc("a").count(2).ann(annotations::SHARED_IP_KEY, "k");
        let mut b = svc("b").count(2).ann(annotations::SHARED_IP_KEY, "k");
        b.ports = vec![port("TCP", port_b)].into();
        a.external_traffic_policy = pa;
        b.external_traffic_policy = pb;
        for s in [&mut a, &mut b] {
            s.ready_endpoint_nodes = ["node-0", "node-1"].into_iter().collect();
        }
        if same_selector {
            b.selector = a.selector.clone();
        }
        let cluster = input(vec![default_class("c", &["10.0.0.0/28"])], nodes(3), vec![a, b]);
        let (plan, applied) = converge(&cluster);
        let (ia, ib) = (ips_of(&plan, "a"), ips_of(&plan, "b"));
        assert_eq!(ia == ib, shares, "{port_b} {pa:?} {pb:?} {same_selector}: {ia:?} {ib:?}");
        if shares {
            assert_eq!(nodes_of(&plan, "a"), nodes_of(&plan, "b"), "one announcer per IP");
            assert_eq!(plan.classes[0].allocated, 2);
        } else {
            assert_eq!(
                svc_condition(&plan, "b", cond::ANNOTATIONS_VALID).reason,
                cond::REASON_SHARING_REJECTED
            );
            // The refusal is judged on the result, so a re-plan reports the same and writes nothing.
            let again = metallb_planner::plan(&applied);
            assert!(!status_of(&again, "b").unwrap().changed);
        }
    }
}

// === allocation ===

#[test]
fn lowest_free_and_kept_ips() {
    let (plan, mut applied) = converge(&input(
        vec![default_class("a", &["10.0.0.0/30", "10.0.0.8-10.0.0.9"])],
        nodes(2),
        vec![svc("one"), svc("two").count(2)],
    ));
    assert_eq!(ips_of(&plan, "one"), [Some("10.0.0.0".to_owned())]);
    assert_eq!(ips_of(&plan, "two"), [Some("10.0.0.1".to_owned()), Some("10.0.0.2".to_owned())]);
    // "one" goes away: its address is free again, but nobody else moves to it.
    applied.services.retain(|s| s.name != "one");
    applied.services.push(svc("three"));
    let (plan, _) = converge(&applied);
    assert_eq!(ips_of(&plan, "two"), [Some("10.0.0.1".to_owned()), Some("10.0.0.2".to_owned())]);
    assert_eq!(ips_of(&plan, "three"), [Some("10.0.0.0".to_owned())]);
    assert!(
        plan.deletions.iter().any(|d| d.name == "one-a-0" && d.reason == DeleteReason::ParentGone)
    );
}

#[test]
fn ip_outside_a_shrunk_pool_is_replaced() {
    let (_, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/30"])], nodes(1), vec![svc("web")]));
    applied.classes[0].address_pool = vec!["10.0.0.2-10.0.0.3".to_owned()];
    let plan = metallb_planner::plan(&applied);
    assert_eq!(ips_of(&plan, "web"), [Some("10.0.0.2".to_owned())]);
}

#[test]
fn overlapping_pools_never_give_an_ip_twice() {
    let plan = metallb_planner::plan(&input(
        vec![class("a", &["10.0.0.0/30"]), class("b", &["10.0.0.2-10.0.0.5"])],
        nodes(1),
        vec![svc("x").lb_class("a").count(4), svc("y").lb_class("b").count(2)],
    ));
    assert_eq!(ips_of(&plan, "x").len(), 4);
    assert_eq!(ips_of(&plan, "y"), [Some("10.0.0.4".to_owned()), Some("10.0.0.5".to_owned())]);
    for c in &plan.classes {
        let d = condition(&c.conditions, cond::POOL_DISJOINT);
        assert_eq!(
            (d.status, d.reason.as_str()),
            (ConditionStatus::False, cond::REASON_POOL_OVERLAP)
        );
    }
    assert!(plan.diagnostics.iter().any(|d| d.label() == "pool_overlap"));
}

#[test]
fn exhaustion_takes_nothing_from_anyone() {
    let (_, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/31"])], nodes(3), vec![svc("first")]));
    applied.services.push(svc("second").count(3));
    let (plan, _) = converge(&applied);
    assert_eq!(ips_of(&plan, "first"), [Some("10.0.0.0".to_owned())]);
    assert_eq!(ips_of(&plan, "second"), [Some("10.0.0.1".to_owned()), None, None]);
    let c = svc_condition(&plan, "second", cond::ALL_PUBLIC_IPS_ASSIGNED);
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::False, cond::REASON_NOT_ALL_IPS_ASSIGNED)
    );
    assert!(c.message.starts_with("1 of 3 public IPs were assigned"), "{}", c.message);
    assert_eq!(status_of(&plan, "second").unwrap().ingress, ["10.0.0.1"]);
    let ok = svc_condition(&plan, "first", cond::ALL_PUBLIC_IPS_ASSIGNED);
    assert_eq!(
        (ok.status, ok.message.as_str()),
        (ConditionStatus::True, "1 of 1 public IPs were assigned")
    );
}

#[test]
fn huge_ipv6_pool_and_families() {
    let mut v6 = svc("v6").count(2);
    v6.ip_families = metallb_planner::pool::Families::new(&[metallb_planner::pool::Family::V6]);
    let plan = metallb_planner::plan(&input(
        vec![default_class("a", &["::/0", "2001:db8::/64", "10.0.0.0/32"])],
        nodes(2),
        vec![svc("any"), v6],
    ));
    assert_eq!(ips_of(&plan, "any"), [Some("10.0.0.0".to_owned())]);
    assert_eq!(ips_of(&plan, "v6"), [Some("::".to_owned()), Some("::1".to_owned())]);
    assert_eq!(plan.classes[0].pool_size, "340282366920938463463374607431768211456+");
    let small = metallb_planner::plan(&input(
        vec![default_class("a", &["2001:db8::/64"])],
        nodes(1),
        vec![],
    ));
    assert_eq!(small.classes[0].pool_size, "18446744073709551616");
}

#[test]
fn malformed_pool_entries_are_reported_and_the_rest_is_used() {
    let plan = metallb_planner::plan(&input(
        vec![default_class("a", &["10.0.0.300/24", "10.0.0.8/29", "1.2.3.4-::1"])],
        nodes(1),
        vec![svc("web")],
    ));
    assert_eq!(ips_of(&plan, "web"), [Some("10.0.0.8".to_owned())]);
    let c = condition(&plan.classes[0].conditions, cond::POOL_VALID);
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::False, cond::REASON_INVALID_POOL_ENTRIES)
    );
    assert!(
        c.message.contains("10.0.0.300/24") && c.message.contains("mixes IPv4 and IPv6"),
        "{}",
        c.message
    );
    assert_eq!(plan.classes[0].pool_size, "8");
}

// === placement ===

#[test]
fn distinct_nodes_and_backups() {
    let plan = metallb_planner::plan(&input(
        vec![default_class("a", &["10.0.0.0/24"])],
        nodes(5),
        vec![svc("web").count(3)],
    ));
    let placed: Vec<String> = nodes_of(&plan, "web").into_iter().flatten().collect();
    let distinct: std::collections::BTreeSet<&String> = placed.iter().collect();
    assert_eq!((placed.len(), distinct.len()), (3, 3));
    for child in children_of(&plan, "web") {
        let b = &child.status.backups;
        assert_eq!(b.len(), 3);
        assert!(!b.contains(child.status.node.as_ref().unwrap()));
        // Nodes without a sibling come first: 2 of the 5 nodes are free of this Service.
        assert!(b[..2].iter().all(|n| !placed.iter().any(|p| p == n)), "{b:?} {placed:?}");
    }
}

#[test]
fn more_ips_than_nodes_spreads_evenly_and_is_stable() {
    let (plan, applied) = converge(&input(
        vec![default_class("a", &["10.0.0.0/24"])],
        nodes(2),
        vec![svc("web").count(5)],
    ));
    let placed: Vec<String> = nodes_of(&plan, "web").into_iter().flatten().collect();
    let on_first = placed.iter().filter(|n| *n == &placed[0]).count();
    assert!(on_first == 2 || on_first == 3, "{placed:?}");
    let again = metallb_planner::plan(&applied);
    assert!(again.children.iter().all(|c| c.action == ChildAction::Keep));
}

#[test]
fn candidate_filters_table() {
    use metallb_planner::NodeInput;
    let excluded = {
        let mut n = node("excluded");
        n.labels.insert(labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS.to_owned(), String::new());
        n
    };
    let not_ready = NodeInput { ready: false, ..node("not-ready") };
    let no_speaker = NodeInput { speaker_ready: false, ..node("no-speaker") };
    let mut other_zone = node("other-zone");
    other_zone.labels.insert("zone".to_owned(), "b".to_owned());
    let mut good = node("good");
    good.labels.insert("zone".to_owned(), "a".to_owned());
    let mut all = vec![excluded, not_ready, no_speaker, other_zone, good];
    for n in &mut all[..3] {
        n.labels.insert("zone".to_owned(), "a".to_owned());
    }
    let mut class = default_class("a", &["10.0.0.0/24"]);
    class.node_selector.insert("zone".to_owned(), "a".to_owned());
    let plan = metallb_planner::plan(&input(vec![class], all, vec![svc("web").count(2)]));
    assert_eq!(nodes_of(&plan, "web"), [Some("good".to_owned()), Some("good".to_owned())]);
    assert_eq!(plan.classes[0].candidate_nodes, ["good"]);
    assert_eq!(plan.classes[0].member_nodes, ["good", "no-speaker", "not-ready"]);
    assert_eq!(plan.nodes.add_label, ["good", "no-speaker", "not-ready"]);
}

#[test]
fn local_traffic_policy_uses_endpoint_nodes_only() {
    let plan = metallb_planner::plan(&input(
        vec![default_class("a", &["10.0.0.0/24"])],
        nodes(6),
        vec![svc("web").count(2).local(&["node-4", "node-1", "elsewhere"])],
    ));
    let mut placed: Vec<String> = nodes_of(&plan, "web").into_iter().flatten().collect();
    placed.sort();
    assert_eq!(placed, ["node-1", "node-4"]);
}

#[test]
fn no_candidate_keeps_the_ip_and_says_so() {
    let (_, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/24"])], nodes(1), vec![svc("web")]));
    applied.nodes[0].ready = false;
    let plan = metallb_planner::plan(&applied);
    let child = &plan.children[0];
    assert_eq!(
        (child.status.ip.as_deref(), child.status.node.as_deref()),
        (Some("10.0.0.0"), None)
    );
    let c = condition(&child.status.conditions, cond::ANNOUNCED);
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::False, cond::REASON_NO_CANDIDATE_NODE)
    );
    let s = svc_condition(&plan, "web", cond::ALL_PUBLIC_IPS_ANNOUNCED);
    assert_eq!(
        (s.status, s.reason.as_str()),
        (ConditionStatus::False, cond::REASON_NOT_ALL_IPS_ANNOUNCED)
    );
    assert_eq!(status_of(&plan, "web").unwrap().ingress, ["10.0.0.0"]);
    assert!(plan.diagnostics.iter().any(|d| d.label() == "no_candidate_node"));
}

#[test]
fn only_children_of_a_lost_node_move() {
    let services: Vec<_> = (0..12).map(|i| svc(&format!("s{i}")).count(2)).collect();
    let (before, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/24"])], nodes(6), services));
    applied.nodes.retain(|n| n.name != "node-2");
    let after = metallb_planner::plan(&applied);
    for (old, new) in before.children.iter().zip(&after.children) {
        assert_eq!(old.status.ip, new.status.ip);
        if old.status.node.as_deref() != Some("node-2") {
            assert_eq!(old.status.node, new.status.node, "{}", old.name);
        } else {
            assert_ne!(new.status.node.as_deref(), Some("node-2"));
        }
    }
}

/// The speakers' `NodeCanAnnounce` on a child is not the planner's: kept in place, byte for
/// byte, whether the child stays (no change to write) or moves to another node.
#[test]
fn a_speakers_condition_on_a_child_is_kept_as_is() {
    let (_, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/24"])], nodes(3), vec![svc("web")]));
    let speaker = metallb_planner::Condition {
        type_: cond::NODE_CAN_ANNOUNCE.into(),
        status: ConditionStatus::False,
        reason: cond::REASON_INTERFACE_MISSING.into(),
        message: "node node-0 lacks interface eth9 named by class a".into(),
        last_transition_time: Timestamp("2026-01-01T00:00:09Z".into()),
        observed_generation: None,
    };
    applied.children[0].status.conditions.push(speaker.clone());
    let was = applied.children[0].status.clone();
    let stays = metallb_planner::plan(&applied);
    assert_eq!(stays.children[0].status, was, "nothing else changed: the same status");

    let node = was.node.clone().expect("placed");
    applied.nodes.retain(|n| n.name != node);
    let moved = metallb_planner::plan(&applied);
    let status = &moved.children[0].status;
    assert_ne!(status.node, was.node);
    assert_eq!(condition(&status.conditions, cond::NODE_CAN_ANNOUNCE), &speaker);
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    let before: Vec<&str> = was.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, before, "in place");
}

/// A failed node's IP moved away; when the node comes back it is held down: the IP stays where
/// it went, also as a backup the node is avoided, and only after the hold-down does the
/// distinct-node rule move an IP back to it.
#[test]
fn a_returning_node_takes_an_ip_back_only_after_its_hold_down() {
    let mut base =
        input(vec![default_class("a", &["10.0.0.0/24"])], nodes(3), vec![svc("web").count(3)]);
    base.failback_hold_down_seconds = 60;
    let (before, applied) = converge(&base);
    let lost_ip = children_of(&before, "web")
        .into_iter()
        .find(|c| c.status.node.as_deref() == Some("node-0"))
        .and_then(|c| c.status.ip.clone())
        .expect("node-0 announces one IP");

    // node-0 fails: its IP moves.
    let mut failed = applied.clone();
    failed.nodes.iter_mut().find(|n| n.name == "node-0").unwrap().ready = false;
    let (during, failed_applied) = converge(&failed);
    let moved_to = |plan: &metallb_planner::Plan| {
        children_of(plan, "web")
            .into_iter()
            .find(|c| c.status.ip.as_ref() == Some(&lost_ip))
            .and_then(|c| c.status.node.clone())
    };
    let took_over = moved_to(&during).expect("placed");
    assert_ne!(took_over, "node-0");

    // node-0 is back 10 s ago, and then 61 s ago.
    let back = |now: &str| {
        let mut i = failed_applied.clone();
        i.now = metallb_planner::Timestamp(now.into());
        let n = i.nodes.iter_mut().find(|n| n.name == "node-0").unwrap();
        n.ready = true;
        n.healthy_since = Some(metallb_planner::Timestamp("2026-01-01T00:10:00Z".into()));
        i
    };
    let held = metallb_planner::plan(&back("2026-01-01T00:10:10Z"));
    assert_eq!(moved_to(&held).as_deref(), Some(took_over.as_str()), "held down: no move back");
    for c in children_of(&held, "web") {
        assert!(!c.status.backups.iter().any(|b| b == "node-0"), "held node as a backup: {c:?}");
        let was = children_of(&during, "web").into_iter().find(|d| d.name == c.name).unwrap();
        assert_eq!(c.status.ip, was.status.ip);
    }
    let mut off = back("2026-01-01T00:10:10Z");
    off.failback_hold_down_seconds = 0;
    let without = metallb_planner::plan(&off);
    let on_node_0 = |plan: &metallb_planner::Plan| {
        nodes_of(plan, "web").into_iter().flatten().filter(|n| n == "node-0").count()
    };
    assert_eq!(on_node_0(&without), 1, "without hold-down an IP moves back at once");
    let after = metallb_planner::plan(&back("2026-01-01T00:11:01Z"));
    assert_eq!(on_node_0(&after), 1, "after the hold-down an IP moves back");
    let distinct: std::collections::BTreeSet<_> = nodes_of(&after, "web").into_iter().collect();
    assert_eq!(distinct.len(), 3);
}

/// When every candidate is held down (the whole cluster just started), IPs are still placed.
#[test]
fn hold_down_never_leaves_an_ip_without_a_node() {
    let mut i =
        input(vec![default_class("a", &["10.0.0.0/24"])], nodes(3), vec![svc("web").count(3)]);
    i.failback_hold_down_seconds = 60;
    for n in &mut i.nodes {
        n.healthy_since = Some(i.now.clone());
    }
    let plan = metallb_planner::plan(&i);
    let placed: std::collections::BTreeSet<_> =
        nodes_of(&plan, "web").into_iter().flatten().collect();
    assert_eq!(placed.len(), 3, "{placed:?}");
}

// === adoption ===

#[test]
fn previous_implementation_children_keep_ip_and_node() {
    let legacy = |index: u32, ip: &str, node: &str| ExistingChild {
        namespace: "ns".into(),
        name: format!("web-a-{index}").into(),
        owner_uid: None,
        preferred_node: Some(node.into()),
        spec: ChildSpec {
            service_ref: ServiceRef { namespace: "ns".into(), name: "web".into() },
            class: "a".into(),
            ..ChildSpec::default()
        },
        status: ChildStatus { ip: Some(ip.into()), ..ChildStatus::default() },
    };
    let mut cluster =
        input(vec![default_class("a", &["10.0.0.0/24"])], nodes(4), vec![svc("web").count(3)]);
    cluster.services[0].conditions = Vec::new();
    cluster.children = vec![
        legacy(0, "10.0.0.17", "node-3"),
        legacy(1, "10.0.0.4", "node-1"),
        legacy(2, "10.0.0.99", "node-3"),
    ];
    let (plan, applied) = converge(&cluster);
    assert_eq!(
        ips_of(&plan, "web"),
        [Some("10.0.0.17".to_owned()), Some("10.0.0.4".to_owned()), Some("10.0.0.99".to_owned())]
    );
    let placed = nodes_of(&plan, "web");
    assert_eq!(placed[..2], [Some("node-3".to_owned()), Some("node-1".to_owned())]);
    assert!(
        placed[2].is_some() && placed[2] != placed[0] && placed[2] != placed[1],
        "siblings distinct: {placed:?}"
    );
    assert!(
        plan.children.iter().all(|c| matches!(c.action, ChildAction::Update { spec: true, .. }))
    );
    assert!(plan.deletions.is_empty());
    assert_eq!(status_of(&plan, "web").unwrap().ingress, ["10.0.0.17", "10.0.0.4", "10.0.0.99"]);
    let again = metallb_planner::plan(&applied);
    assert!(again.children.iter().all(|c| c.action == ChildAction::Keep));
}

#[test]
fn recreated_service_does_not_inherit_stale_children() {
    let (_, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/24"])], nodes(1), vec![svc("web")]));
    applied.services[0].uid = "new-uid".into();
    applied.services[0]
        .annotations
        .insert(annotations::LOAD_BALANCER_IPS.to_owned(), String::new());
    let plan = metallb_planner::plan(&applied);
    assert_eq!(plan.children[0].action, ChildAction::Update { spec: true, status: false });
    assert_eq!(plan.children[0].owner_uid, "new-uid");
}

// === names, deletions, conditions, membership, determinism ===

#[test]
fn long_names_are_valid_labels() {
    let long = "s".repeat(60);
    let plan = metallb_planner::plan(&input(
        vec![default_class("class.with.dots", &["10.0.0.0/24"])],
        nodes(1),
        vec![svc(&long).count(2)],
    ));
    for c in &plan.children {
        assert!(metallb_planner::naming::is_dns_label(&c.name), "{}", c.name);
    }
    assert_ne!(plan.children[0].name, plan.children[1].name);
}

#[test]
fn fewer_ips_delete_the_extra_children() {
    let (_, mut applied) = converge(&input(
        vec![default_class("a", &["10.0.0.0/24"])],
        nodes(3),
        vec![svc("web").count(3)],
    ));
    applied.services[0] = applied.services[0].clone().count(1);
    let plan = metallb_planner::plan(&applied);
    let deleted: Vec<(&str, DeleteReason)> =
        plan.deletions.iter().map(|d| (d.name.as_str(), d.reason)).collect();
    assert_eq!(
        deleted,
        [("web-a-1", DeleteReason::IndexUnused), ("web-a-2", DeleteReason::IndexUnused)]
    );
}

#[test]
fn conditions_follow_kubernetes_conventions() {
    let (plan, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/24"])], nodes(1), vec![svc("web")]));
    let c = svc_condition(&plan, "web", cond::ALL_PUBLIC_IPS_ASSIGNED);
    assert_eq!(
        (c.last_transition_time.0.as_str(), c.observed_generation),
        ("2026-01-01T00:00:00Z", Some(1))
    );
    // A later run with the same outcome keeps the time; a status change moves it.
    applied.now = Timestamp("2026-02-02T00:00:00Z".into());
    applied.services[0].generation = 2;
    applied.services[0].conditions.insert(
        0,
        metallb_planner::Condition {
            type_: "Foreign".into(),
            status: ConditionStatus::True,
            reason: "X".into(),
            message: String::new().into(),
            last_transition_time: Timestamp("t".into()),
            observed_generation: None,
        },
    );
    applied.nodes[0].ready = false;
    let plan = metallb_planner::plan(&applied);
    let status = status_of(&plan, "web").unwrap();
    assert_eq!(status.conditions[0].type_, "Foreign", "foreign conditions kept in place");
    let assigned = condition(&status.conditions, cond::ALL_PUBLIC_IPS_ASSIGNED);
    assert_eq!(
        (assigned.last_transition_time.0.as_str(), assigned.observed_generation),
        ("2026-01-01T00:00:00Z", Some(2))
    );
    let announced = condition(&status.conditions, cond::ALL_PUBLIC_IPS_ANNOUNCED);
    assert_eq!(announced.last_transition_time.0, "2026-02-02T00:00:00Z");
}

#[test]
fn member_labels_follow_the_selectors() {
    let mut labelled = node("old-member");
    labelled.labels.insert(labels::MEMBER.to_owned(), String::new());
    labelled.labels.insert("zone".to_owned(), "b".to_owned());
    let mut fresh = node("fresh");
    fresh.labels.insert("zone".to_owned(), "a".to_owned());
    let mut class = class("a", &["10.0.0.0/24"]);
    class.node_selector.insert("zone".to_owned(), "a".to_owned());
    let plan = metallb_planner::plan(&input(vec![class], vec![labelled, fresh], vec![]));
    assert_eq!(plan.nodes.members.iter().collect::<Vec<_>>(), ["fresh"]);
    assert_eq!(
        (plan.nodes.add_label.as_slice(), plan.nodes.remove_label.as_slice()),
        (&["fresh".to_owned()][..], &["old-member".to_owned()][..])
    );
}

#[test]
fn input_order_does_not_matter() {
    let cluster = input(
        vec![default_class("a", &["10.0.0.0/24"]), class("b", &["10.0.1.0/24"])],
        nodes(5),
        (0..10).map(|i| svc(&format!("s{i}")).count(1 + i % 3)).collect(),
    );
    let mut shuffled = cluster.clone();
    shuffled.classes.reverse();
    shuffled.nodes.reverse();
    shuffled.services.reverse();
    let a = serde_json::to_string(&metallb_planner::plan(&cluster)).unwrap();
    let b = serde_json::to_string(&metallb_planner::plan(&shuffled)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn plan_round_trips_through_json() {
    let cluster =
        input(vec![default_class("a", &["10.0.0.0/24"])], nodes(2), vec![svc("web").count(2)]);
    let text = serde_json::to_string(&cluster).unwrap();
    assert_eq!(serde_json::from_str::<metallb_planner::Input>(&text).unwrap(), cluster);
    let plan = metallb_planner::plan(&cluster);
    let text = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<metallb_planner::Plan>(&text).unwrap(), plan);
    assert!(text.contains("\"externalTrafficPolicy\":\"Cluster\""), "{text}");
}

#[test]
fn diagnostics_have_labels_and_messages() {
    let d = Diagnostic::RequestedIpRejected {
        service: ServiceRef { namespace: "ns".into(), name: "web".into() },
        index: 1,
        entry: "10.9.9.9".to_owned(),
        why: RequestRejection::OutsidePool { class: "a".to_owned() },
    };
    assert_eq!(d.label(), "requested_ip_rejected");
    assert_eq!(
        d.to_string(),
        "service ns/web: index 1: requested IP \"10.9.9.9\" is outside the pool of class a"
    );
}

#[test]
fn children_keep_their_node_when_nodes_join() {
    let services: Vec<_> = (0..8).map(|i| svc(&format!("s{i}")).count(2)).collect();
    let (before, mut applied) =
        converge(&input(vec![default_class("a", &["10.0.0.0/24"])], nodes(3), services));
    applied.nodes.extend((3..10).map(|i| node(&format!("node-{i}"))));
    let after = metallb_planner::plan(&applied);
    for (old, new) in before.children.iter().zip(&after.children) {
        assert_eq!(
            (&old.name, &old.status.ip, &old.status.node),
            (&new.name, &new.status.ip, &new.status.node)
        );
    }
    // Only the backups may use the new nodes.
    assert!(after.children.iter().all(|c| matches!(
        c.action,
        ChildAction::Keep | ChildAction::Update { spec: false, status: true }
    )));
}

// === published IPs ===

/// Helm deleted every child after the upgrade; the Services' published IPs are fragmented
/// across the pool. Each Service gets every IP back, in its order, before a new Service is
/// given the lowest free address.
#[test]
fn published_ips_come_back_to_their_service_before_any_free_address() {
    let published = |s: metallb_planner::ServiceInput, ips: &[&str]| {
        let mut s = s;
        s.ingress = ips.iter().map(|&ip| ip.into()).collect();
        s
    };
    let services = vec![
        published(svc("a").count(2), &["198.51.100.13", "198.51.100.10"]),
        published(svc("b").count(3), &["198.51.100.16", "198.51.100.11", "198.51.100.14"]),
        published(svc("c"), &["198.51.100.12"]),
        svc("new").count(2),
        // Published IPs outside the class pool are not honoured.
        published(svc("moved"), &["203.0.113.9"]),
    ];
    let plan = metallb_planner::plan(&input(
        vec![default_class("front", &["198.51.100.10-198.51.100.20"])],
        nodes(3),
        services,
    ));
    let ips = |name: &str| -> Vec<String> { ips_of(&plan, name).into_iter().flatten().collect() };
    assert_eq!(ips("a"), ["198.51.100.13", "198.51.100.10"]);
    assert_eq!(ips("b"), ["198.51.100.16", "198.51.100.11", "198.51.100.14"]);
    assert_eq!(ips("c"), ["198.51.100.12"]);
    assert_eq!(ips("moved"), ["198.51.100.15"], "the lowest free address");
    assert_eq!(ips("new"), ["198.51.100.17", "198.51.100.18"]);
    assert_eq!(
        status_of(&plan, "b").unwrap().ingress,
        ["198.51.100.16", "198.51.100.11", "198.51.100.14"]
    );
}

/// A published IP never overrides a request for another address, and a request for a
/// published IP is served from it.
#[test]
fn published_ips_yield_to_requests_of_the_same_service() {
    let mut s =
        svc("a").count(2).ann(annotations::LOAD_BALANCER_IPS, "198.51.100.15,198.51.100.11");
    s.ingress = vec!["198.51.100.11".into(), "198.51.100.12".into()];
    let plan = metallb_planner::plan(&input(
        vec![default_class("front", &["198.51.100.10-198.51.100.20"])],
        nodes(2),
        vec![s],
    ));
    let ips: Vec<String> = ips_of(&plan, "a").into_iter().flatten().collect();
    assert_eq!(ips, ["198.51.100.15", "198.51.100.11"]);
}

// === released to another controller ===

/// A Service we served moves to another controller's class: our conditions and the IPs we
/// published are removed (the other controller's IP and condition stay), its children go,
/// and from then on it is never touched.
#[test]
fn a_service_moved_to_a_foreign_class_loses_what_we_wrote() {
    let (_, mut applied) = converge(&input(
        vec![default_class("front", &["198.51.100.10-198.51.100.20"])],
        nodes(2),
        vec![svc("web").count(2)],
    ));
    assert_eq!(applied.services[0].ingress.len(), 2);
    let web = &mut applied.services[0];
    web.load_balancer_class = Some("other-controller".into());
    web.ingress.push("203.0.113.5".into());
    web.conditions.push(metallb_planner::Condition {
        type_: "other-controller/Ready".into(),
        status: ConditionStatus::True,
        reason: "R".into(),
        message: "m".into(),
        last_transition_time: Timestamp("t".into()),
        observed_generation: None,
    });
    let (plan, applied) = converge(&applied);
    let status = status_of(&plan, "web").expect("our status is removed");
    assert!(status.changed);
    assert_eq!(status.ingress, ["203.0.113.5"]);
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["other-controller/Ready"]);
    assert!(plan.children.is_empty());
    assert_eq!(plan.deletions.len(), 2);
    assert!(plan.deletions.iter().all(|d| d.reason == DeleteReason::ParentNotManaged));
    let again = metallb_planner::plan(&applied);
    assert!(status_of(&again, "web").is_none(), "a foreign Service is never touched again");
}
