//! BGP pools next to L2 classes: binding precedence, one allocator for both modes,
//! announcements and pool statuses.

use metallb_api::names::{annotations, conditions as cond};
use metallb_planner::bgp::{AdvertisementInput, ConfigurationInput};
use metallb_planner::pool::Family;
use metallb_planner::{
    BgpInput, ChildAction, ConditionStatus, ExistingAnnouncement, Input, Plan, PoolInput,
};

use crate::common::*;

pub(crate) fn pool(name: &str, addresses: &[&str], auto_assign: bool) -> PoolInput {
    PoolInput {
        name: name.to_owned(),
        generation: 1,
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
        auto_assign,
        ..PoolInput::default()
    }
}

/// One configuration advertising `pools` from every node to peer `tor`.
pub(crate) fn bgp(pools: Vec<PoolInput>) -> BgpInput {
    let advertise = AdvertisementInput {
        pool_names: pools.iter().map(|p| p.name.clone()).collect(),
        ..AdvertisementInput::default()
    };
    BgpInput {
        pools,
        configurations: vec![ConfigurationInput {
            name: "rack".to_owned(),
            peer_names: vec!["tor".to_owned()],
            advertisements: vec![advertise],
            ..ConfigurationInput::default()
        }],
        peers: [("tor".to_owned(), Some(Family::V4))].into(),
        announcements: Vec::new(),
    }
}

/// The plan and the cluster after it was applied.
fn converge_bgp(input: &Input, bgp: &BgpInput) -> (Plan, Input, BgpInput) {
    let plan = metallb_planner::plan_with_bgp(input, bgp);
    let applied = metallb_planner::apply(input, &plan);
    let applied_bgp = metallb_planner::apply_bgp(bgp, &plan);
    (plan, applied, applied_bgp)
}

fn announced_ips(plan: &Plan, service: &str) -> Vec<String> {
    plan.announcements
        .iter()
        .filter(|a| a.spec.service_ref.name == service)
        .map(|a| a.spec.ip.to_string())
        .collect()
}

/// What a Service ends up bound to.
#[derive(Debug, PartialEq, Eq)]
enum Bound {
    Class(&'static str),
    Pool(&'static str, &'static str),
    PoolNotFound,
    NotOurs,
}

fn binding_of(plan: &Plan, service: &str) -> Bound {
    let Some(status) = status_of(plan, service) else { return Bound::NotOurs };
    let find = |t: &str| status.conditions.iter().find(|c| c.type_ == t);
    match (find(cond::LOAD_BALANCER_CLASS), find(cond::LOAD_BALANCER_POOL)) {
        (Some(c), None) if c.status == ConditionStatus::True => {
            Bound::Class(if c.message == "l2" { "l2" } else { "default" })
        }
        (None, Some(p)) if p.status == ConditionStatus::True => {
            let name = if p.message == "bgp-a" { "bgp-a" } else { "bgp-auto" };
            let reason = if p.reason == cond::REASON_POOL_AUTO_ASSIGNED { "auto" } else { "bound" };
            Bound::Pool(name, reason)
        }
        (None, Some(p)) if p.reason == cond::REASON_POOL_NOT_FOUND => Bound::PoolNotFound,
        other => panic!("unexpected binding conditions {other:?}"),
    }
}

struct Case {
    name: &'static str,
    default_class: bool,
    auto_pool: bool,
    spec_class: Option<&'static str>,
    annotations: &'static [(&'static str, &'static str)],
    want: Bound,
    /// Reason of `AnnotationsValid` when it is false.
    issue: Option<&'static str>,
}

const CLASS: &str = annotations::METAL_LOAD_BALANCER_CLASS;
const POOL: &str = annotations::LOAD_BALANCER_POOL;
const METALLB_POOL: &str = annotations::METALLB_ADDRESS_POOL;
const UNIVERSE_POOL: &str = annotations::METALLB_UNIVERSE_ADDRESS_POOL;

#[test]
fn binding_precedence_and_refusals() {
    use Bound::*;
    let cases = [
        Case {
            name: "spec class beats a pool annotation, and says so",
            default_class: true,
            auto_pool: true,
            spec_class: Some("l2"),
            annotations: &[(POOL, "bgp-a")],
            want: Class("l2"),
            issue: Some(cond::REASON_POOL_ANNOTATION_IGNORED),
        },
        Case {
            name: "class annotation beats a pool annotation, and says so",
            default_class: false,
            auto_pool: false,
            spec_class: None,
            annotations: &[(CLASS, "l2"), (POOL, "bgp-a")],
            want: Class("l2"),
            issue: Some(cond::REASON_POOL_ANNOTATION_IGNORED),
        },
        Case {
            name: "pool annotation beats the default class",
            default_class: true,
            auto_pool: true,
            spec_class: None,
            annotations: &[(POOL, "bgp-a")],
            want: Pool("bgp-a", "bound"),
            issue: None,
        },
        Case {
            name: "the module's pool annotation beats MetalLB's",
            default_class: true,
            auto_pool: true,
            spec_class: None,
            annotations: &[(POOL, "bgp-a"), (METALLB_POOL, "bgp-auto")],
            want: Pool("bgp-a", "bound"),
            issue: None,
        },
        Case {
            name: "metallb.io/address-pool binds",
            default_class: true,
            auto_pool: false,
            spec_class: None,
            annotations: &[(METALLB_POOL, "bgp-a"), (UNIVERSE_POOL, "bgp-auto")],
            want: Pool("bgp-a", "bound"),
            issue: None,
        },
        Case {
            name: "metallb.universe.tf/address-pool binds",
            default_class: true,
            auto_pool: false,
            spec_class: None,
            annotations: &[(UNIVERSE_POOL, "bgp-a")],
            want: Pool("bgp-a", "bound"),
            issue: None,
        },
        Case {
            name: "unknown class annotation falls to the pool annotation",
            default_class: true,
            auto_pool: false,
            spec_class: None,
            annotations: &[(CLASS, "nope"), (POOL, "bgp-a")],
            want: Pool("bgp-a", "bound"),
            issue: Some(cond::REASON_UNKNOWN_CLASS_ANNOTATION),
        },
        Case {
            name: "the default class beats autoAssign",
            default_class: true,
            auto_pool: true,
            spec_class: None,
            annotations: &[],
            want: Class("default"),
            issue: None,
        },
        Case {
            name: "autoAssign when nothing else applies",
            default_class: false,
            auto_pool: true,
            spec_class: None,
            annotations: &[],
            want: Pool("bgp-auto", "auto"),
            issue: None,
        },
        Case {
            name: "a missing pool falls to the default class, reported",
            default_class: true,
            auto_pool: true,
            spec_class: None,
            annotations: &[(POOL, "nope")],
            want: Class("default"),
            issue: Some(cond::REASON_UNKNOWN_POOL_ANNOTATION),
        },
        Case {
            name: "a missing pool falls to autoAssign, reported",
            default_class: false,
            auto_pool: true,
            spec_class: None,
            annotations: &[(POOL, "nope")],
            want: Pool("bgp-auto", "auto"),
            issue: Some(cond::REASON_UNKNOWN_POOL_ANNOTATION),
        },
        Case {
            name: "a missing pool with nothing else is a pool condition",
            default_class: false,
            auto_pool: false,
            spec_class: None,
            annotations: &[(POOL, "nope")],
            want: PoolNotFound,
            issue: None,
        },
        Case {
            name: "nothing named, no default, no autoAssign: not ours",
            default_class: false,
            auto_pool: false,
            spec_class: None,
            annotations: &[],
            want: NotOurs,
            issue: None,
        },
        Case {
            name: "a foreign spec class is never ours, pool or not",
            default_class: true,
            auto_pool: true,
            spec_class: Some("other-controller"),
            annotations: &[(POOL, "bgp-a")],
            want: NotOurs,
            issue: None,
        },
    ];
    for case in cases {
        let mut classes = vec![class("l2", &["10.0.0.0/29"])];
        if case.default_class {
            classes.push(default_class("default", &["10.0.1.0/29"]));
        }
        let mut s = svc("s");
        if let Some(c) = case.spec_class {
            s = s.lb_class(c);
        }
        for (k, v) in case.annotations {
            s = s.ann(k, v);
        }
        let input = input(classes, nodes(2), vec![s]);
        // Two autoAssign pools when asked: the first by name wins.
        let bgp = bgp(vec![
            pool("bgp-a", &["192.0.2.0/29"], false),
            pool("bgp-auto", &["198.51.100.0/29"], case.auto_pool),
            pool("bgp-zz", &["203.0.113.0/29"], case.auto_pool),
        ]);
        let plan = metallb_planner::plan_with_bgp(&input, &bgp);
        assert_eq!(binding_of(&plan, "s"), case.want, "{}", case.name);
        if let Some(status) = status_of(&plan, "s")
            && case.want != Bound::PoolNotFound
        {
            let valid = condition(&status.conditions, cond::ANNOTATIONS_VALID);
            match case.issue {
                None => assert_eq!(valid.status, ConditionStatus::True, "{}: {valid:?}", case.name),
                Some(reason) => assert_eq!(valid.reason, reason, "{}: {valid:?}", case.name),
            }
        }
        let (_, applied, applied_bgp) = converge_bgp(&input, &bgp);
        let again = metallb_planner::plan_with_bgp(&applied, &applied_bgp);
        assert!(again.services.iter().all(|s| !s.changed), "{}: not stable", case.name);
    }
}

#[test]
fn one_allocator_for_classes_and_pools() {
    // The class and the pool share 10.0.0.0/30: each address goes to one Service.
    let classes = vec![default_class("l2", &["10.0.0.0/30"])];
    let services = vec![
        svc("a").ann(POOL, "p"),
        svc("b"),
        svc("c").ann(POOL, "p"),
        svc("d"),
        svc("e").ann(POOL, "p").ann(annotations::LOAD_BALANCER_IPS, "10.0.0.0"),
    ];
    let input = input(classes, nodes(2), services);
    let bgp = bgp(vec![pool("p", &["10.0.0.0/29"], false)]);
    let plan = metallb_planner::plan_with_bgp(&input, &bgp);
    let mut all: Vec<String> =
        ["a", "c", "e"].iter().flat_map(|s| announced_ips(&plan, s)).collect();
    all.extend(["b", "d"].iter().flat_map(|s| ips_of(&plan, s).into_iter().flatten()));
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "an IP given twice: {all:?}");
    // e's request comes first (pass B), then a, b, c take the lowest free addresses in
    // Service order: the class has nothing left for d.
    assert_eq!(announced_ips(&plan, "e"), ["10.0.0.0"]);
    assert_eq!(ips_of(&plan, "d"), [None]);
    assert_eq!(all.len(), 4);
    let p = &plan.pools[0];
    let disjoint = condition(&p.conditions, cond::POOL_DISJOINT);
    assert_eq!(disjoint.status, ConditionStatus::False);
    assert!(disjoint.message.contains("class l2"), "{disjoint:?}");
    assert_eq!((p.pool_size.as_str(), p.allocated), ("8", 3));
    let class = condition(&plan.classes[0].conditions, cond::POOL_DISJOINT);
    assert_eq!(class.status, ConditionStatus::False);
    assert!(class.message.contains("MetalLoadBalancerPool p"), "{class:?}");
}

#[test]
fn avoid_buggy_ips_skips_dot_zero_and_dot_255() {
    let mut p = pool("p", &["192.0.2.255-192.0.3.1"], true);
    p.avoid_buggy_ips = true;
    let input = input(Vec::new(), nodes(1), vec![svc("a"), svc("b")]);
    let plan = metallb_planner::plan_with_bgp(&input, &bgp(vec![p]));
    assert_eq!(announced_ips(&plan, "a"), ["192.0.3.1"]);
    assert_eq!(announced_ips(&plan, "b"), Vec::<String>::new());
    let assigned = svc_condition(&plan, "b", cond::ALL_PUBLIC_IPS_ASSIGNED);
    assert!(assigned.message.contains("MetalLoadBalancerPool p is exhausted"), "{assigned:?}");
}

#[test]
fn dual_stack_gets_one_ip_per_family_in_the_order_asked() {
    let mut s = svc("a").ann(annotations::METALLB_LOAD_BALANCER_IPS, "10.0.0.5,2001:db8::7");
    s.ip_families = [Family::V6, Family::V4].into_iter().collect();
    let mut single = svc("b");
    single.load_balancer_ip = Some("10.0.0.6".into());
    let input = input(Vec::new(), nodes(2), vec![s, single]);
    let mut bgp = bgp(vec![pool("p", &["10.0.0.0/29", "2001:db8::/125"], true)]);
    // The only peer is IPv4: no session can carry the IPv6 address, so it has no route and the
    // Service does not claim it announced.
    let plan = metallb_planner::plan_with_bgp(&input, &bgp);
    assert!(plan.announcements[0].spec.routes.is_empty());
    assert_eq!(plan.announcements[1].spec.routes[0].peers, ["tor"]);
    let announced = svc_condition(&plan, "a", cond::ALL_PUBLIC_IPS_ANNOUNCED);
    assert_eq!(announced.status, ConditionStatus::False, "{announced:?}");
    assert!(announced.message.contains("peer of the IP's address family"), "{announced:?}");
    // With an IPv6 peer in the configuration, each address goes to the peer of its family.
    bgp.peers.insert("tor6".to_owned(), Some(Family::V6));
    bgp.configurations[0].peer_names.push("tor6".to_owned());
    let plan = metallb_planner::plan_with_bgp(&input, &bgp);
    assert_eq!(plan.announcements[0].spec.routes[0].peers, ["tor6"]);
    assert_eq!(plan.announcements[1].spec.routes[0].peers, ["tor"]);
    assert_eq!(announced_ips(&plan, "a"), ["2001:db8::7", "10.0.0.5"]);
    assert_eq!(announced_ips(&plan, "b"), ["10.0.0.6"]);
    let names: Vec<&str> = plan.announcements.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a-bgp-0", "a-bgp-1", "b-bgp-0"]);
    let a0 = &plan.announcements[0];
    assert_eq!(a0.spec.routes.len(), 1);
    assert_eq!(a0.spec.routes[0].prefix, "2001:db8::7/128");
    assert_eq!(a0.spec.routes[0].nodes, ["node-0", "node-1"]);
    assert_eq!(a0.status.node_summary.as_deref(), Some("node-0,node-1"));
    assert_eq!(status_of(&plan, "a").map(|s| s.ingress.len()), Some(2));
}

#[test]
fn sharing_keys_work_across_bgp_services() {
    let key = annotations::SHARED_IP_KEY;
    let a = svc("a").ann(key, "k");
    let mut b = svc("b").ann(key, "k");
    b.ports = vec![port("TCP", 443)].into();
    let c = svc("c").ann(key, "k"); // port 80 again: may not share
    let input = input(Vec::new(), nodes(1), vec![a, b, c]);
    let plan =
        metallb_planner::plan_with_bgp(&input, &bgp(vec![pool("p", &["10.0.0.0/29"], true)]));
    assert_eq!(announced_ips(&plan, "a"), announced_ips(&plan, "b"));
    assert_ne!(announced_ips(&plan, "a"), announced_ips(&plan, "c"));
    let valid = svc_condition(&plan, "c", cond::ANNOTATIONS_VALID);
    assert_eq!(valid.reason, cond::REASON_SHARING_REJECTED);
}

#[test]
fn announcements_are_kept_replanned_unchanged_and_deleted_when_unwanted() {
    let input = input(Vec::new(), nodes(2), vec![svc("a"), svc("b")]);
    let mut bgp = bgp(vec![pool("p", &["10.0.0.0/29"], true)]);
    bgp.announcements.push(ExistingAnnouncement {
        namespace: "ns".into(),
        name: "gone-bgp-0".into(),
        owner_uid: Some("uid-gone".into()),
        ..ExistingAnnouncement::default()
    });
    // An IP a previous run gave b stays with it, even below a's.
    bgp.announcements.push(ExistingAnnouncement {
        namespace: "ns".into(),
        name: "b-bgp-0".into(),
        owner_uid: Some("uid-b".into()),
        spec: metallb_planner::AnnouncementSpec {
            service_ref: svc("b").key(),
            pool: "p".into(),
            ip: "10.0.0.0".into(),
            routes: Vec::new(),
        },
        ..ExistingAnnouncement::default()
    });
    let (plan, applied, applied_bgp) = converge_bgp(&input, &bgp);
    assert_eq!(announced_ips(&plan, "b"), ["10.0.0.0"]);
    assert_eq!(announced_ips(&plan, "a"), ["10.0.0.1"]);
    let deleted: Vec<&str> = plan.announcement_deletions.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(deleted, ["gone-bgp-0"]);
    let again = metallb_planner::plan_with_bgp(&applied, &applied_bgp);
    assert!(again.announcements.iter().all(|a| a.action == ChildAction::Keep));
    assert!(again.announcement_deletions.is_empty());
    assert!(again.services.iter().all(|s| !s.changed));
    assert!(again.pools.iter().all(|p| !p.conditions_changed));
}

#[test]
fn a_service_moving_between_modes_keeps_one_binding_condition() {
    let classes = vec![default_class("l2", &["10.0.0.0/29"])];
    let input0 = input(classes, nodes(2), vec![svc("a")]);
    let bgp = bgp(vec![pool("p", &["192.0.2.0/29"], true)]);
    let (_, applied, applied_bgp) = converge_bgp(&input0, &bgp);
    let mut moved = applied.clone();
    moved.services[0] = moved.services[0].clone().ann(POOL, "p");
    let (plan, applied, applied_bgp) = converge_bgp(&moved, &applied_bgp);
    let status = status_of(&plan, "a").expect("status");
    assert!(status.conditions.iter().all(|c| c.type_ != cond::LOAD_BALANCER_CLASS));
    assert_eq!(status.ingress, ["192.0.2.0"]);
    let deleted: Vec<_> = plan.deletions.iter().map(|d| d.reason).collect();
    assert_eq!(deleted, [metallb_planner::DeleteReason::ParentNotManaged], "the L2 child goes");
    let again = metallb_planner::plan_with_bgp(&applied, &applied_bgp);
    assert!(again.services.iter().all(|s| !s.changed));
}

#[test]
fn published_ips_come_back_to_bgp_services_whose_announcements_vanished() {
    let input0 = input(Vec::new(), nodes(1), vec![svc("b")]);
    let bgp0 = bgp(vec![pool("p", &["10.0.0.0/29"], true)]);
    let (_, mut applied, mut applied_bgp) = converge_bgp(&input0, &bgp0);
    applied_bgp.announcements.clear();
    // A newcomer sorted first would take the lowest free address, b's.
    applied.services.push(svc("a"));
    let plan = metallb_planner::plan_with_bgp(&applied, &applied_bgp);
    assert_eq!(announced_ips(&plan, "b"), ["10.0.0.0"]);
    assert_eq!(announced_ips(&plan, "a"), ["10.0.0.1"]);
}

#[test]
fn a_request_for_an_ip_an_l2_service_holds_is_refused_across_modes() {
    let classes = vec![default_class("l2", &["10.0.0.0/29"])];
    let bgp = bgp(vec![pool("p", &["10.0.0.0/29"], false)]);
    let first = input(classes, nodes(1), vec![svc("a")]);
    let (_, mut applied, applied_bgp) = converge_bgp(&first, &bgp);
    let s = svc("b").ann(POOL, "p").ann(annotations::LOAD_BALANCER_IPS, "10.0.0.0");
    applied.services.push(s);
    let plan = metallb_planner::plan_with_bgp(&applied, &applied_bgp);
    assert_eq!(ips_of(&plan, "a"), [Some("10.0.0.0".to_owned())]);
    assert_eq!(announced_ips(&plan, "b"), Vec::<String>::new());
    let valid = svc_condition(&plan, "b", cond::ANNOTATIONS_VALID);
    assert_eq!(valid.reason, cond::REASON_REQUESTED_IPS_REJECTED);
    assert!(valid.message.contains("is already used by ns/a"), "{valid:?}");
}

#[test]
fn local_traffic_policy_announces_only_from_endpoint_nodes() {
    let input = input(Vec::new(), nodes(3), vec![svc("a").local(&["node-2"]), svc("b").local(&[])]);
    let plan =
        metallb_planner::plan_with_bgp(&input, &bgp(vec![pool("p", &["10.0.0.0/29"], true)]));
    let a = plan.announcements.iter().find(|x| x.spec.service_ref.name == "a").expect("a");
    assert_eq!(a.spec.routes[0].nodes, ["node-2"]);
    let b = plan.announcements.iter().find(|x| x.spec.service_ref.name == "b").expect("b");
    assert!(b.spec.routes.is_empty());
    assert_eq!(b.status.conditions[0].reason, cond::REASON_NO_ROUTE);
    let announced = svc_condition(&plan, "b", cond::ALL_PUBLIC_IPS_ANNOUNCED);
    assert_eq!(announced.status, ConditionStatus::False);
    assert!(announced.message.contains("externalTrafficPolicy Local"), "{announced:?}");
}

#[test]
fn a_deleted_pool_leaves_a_stable_not_found_condition_and_no_ip() {
    let input0 = input(Vec::new(), nodes(1), vec![svc("a")]);
    let (_, applied, mut applied_bgp) =
        converge_bgp(&input0, &bgp(vec![pool("p", &["10.0.0.0/29"], true)]));
    applied_bgp.pools.clear();
    let (plan, applied, applied_bgp) = converge_bgp(&applied, &applied_bgp);
    let status = status_of(&plan, "a").expect("status");
    assert!(status.ingress.is_empty());
    let bound = condition(&status.conditions, cond::LOAD_BALANCER_POOL);
    assert_eq!(
        (bound.status, bound.reason.as_str()),
        (ConditionStatus::False, cond::REASON_POOL_NOT_FOUND)
    );
    assert!(bound.message.contains("MetalLoadBalancerPool p no longer exists"), "{bound:?}");
    assert_eq!(plan.announcement_deletions.len(), 1);
    let again = metallb_planner::plan_with_bgp(&applied, &applied_bgp);
    assert!(again.services.iter().all(|s| !s.changed));
}
