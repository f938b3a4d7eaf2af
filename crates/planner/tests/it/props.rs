//! Property tests over random clusters.

use std::collections::{BTreeMap, BTreeSet};

use metallb_api::names::annotations;
use metallb_planner::pool::{Addr, Pool};
use metallb_planner::{
    ChildAction, ClassInput, Input, NodeInput, Plan, ServiceInput, Timestamp, TrafficPolicy,
};
use proptest::prelude::*;

use crate::common::*;

/// Pool entries to draw from: small, sometimes overlapping, both families, so that
/// exhaustion, overlaps and sharing all happen within a few Services.
const POOL_ENTRIES: [&str; 6] = [
    "10.0.0.0/29",
    "10.0.0.4-10.0.0.11",
    "10.0.1.0/30",
    "2001:db8::/126",
    "10.0.2.7",
    "not-a-cidr",
];

/// Raw knobs of one Service; turned into a `ServiceInput` by `build`.
#[derive(Debug, Clone)]
struct SvcKnobs {
    count: u32,
    shared: bool,
    port: i32,
    local: bool,
    endpoints: Vec<bool>,
    class_annotation: Option<usize>,
    request: Option<u8>,
}

#[derive(Debug, Clone)]
struct ClusterKnobs {
    classes: Vec<(Vec<bool>, bool, bool)>,
    nodes: Vec<(bool, bool, bool)>,
    services: Vec<SvcKnobs>,
}

fn svc_knobs() -> impl Strategy<Value = SvcKnobs> {
    (
        1u32..=4,
        any::<bool>(),
        prop::sample::select(vec![80, 443, 8080]),
        prop::bool::weighted(0.25),
        prop::collection::vec(any::<bool>(), 8),
        prop::option::of(0usize..3),
        prop::option::weighted(0.2, 0u8..16),
    )
        .prop_map(|(count, shared, port, local, endpoints, class_annotation, request)| {
            SvcKnobs { count, shared, port, local, endpoints, class_annotation, request }
        })
}

fn cluster_knobs() -> impl Strategy<Value = ClusterKnobs> {
    (
        prop::collection::vec(
            (
                prop::collection::vec(prop::bool::weighted(0.4), POOL_ENTRIES.len()),
                any::<bool>(),
                prop::bool::weighted(0.3),
            ),
            1..=3,
        ),
        prop::collection::vec(
            (prop::bool::weighted(0.85), prop::bool::weighted(0.9), any::<bool>()),
            1..=8,
        ),
        prop::collection::vec(svc_knobs(), 0..=12),
    )
        .prop_map(|(classes, nodes, services)| ClusterKnobs { classes, nodes, services })
}

fn service(i: usize, k: &SvcKnobs, node_count: usize) -> ServiceInput {
    let mut s = svc(&format!("s{i:02}")).count(k.count);
    s.ports = vec![port("TCP", k.port)].into();
    if k.shared {
        s = s.ann(annotations::SHARED_IP_KEY, "key");
    }
    if k.local {
        let endpoints: Vec<String> =
            (0..node_count).filter(|&n| k.endpoints[n]).map(|n| format!("node-{n}")).collect();
        let refs: Vec<&str> = endpoints.iter().map(String::as_str).collect();
        s = s.local(&refs);
    }
    if let Some(c) = k.class_annotation {
        s = s.ann(annotations::METAL_LOAD_BALANCER_CLASS, &format!("c{c}"));
    }
    if let Some(r) = k.request {
        s = s.ann(annotations::LOAD_BALANCER_IPS, &format!("10.0.0.{r}"));
    }
    s
}

fn build(k: &ClusterKnobs) -> Input {
    let classes = k
        .classes
        .iter()
        .enumerate()
        .map(|(i, (entries, default, zoned))| {
            let pool: Vec<&str> =
                POOL_ENTRIES.iter().zip(entries).filter(|(_, on)| **on).map(|(e, _)| *e).collect();
            let mut c = if *default {
                default_class(&format!("c{i}"), &pool)
            } else {
                class(&format!("c{i}"), &pool)
            };
            if *zoned {
                c.node_selector.insert("zone".to_owned(), "a".to_owned());
            }
            c
        })
        .collect();
    let nodes = k
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (ready, speaker, zone_a))| {
            let mut n = node(&format!("node-{i}"));
            n.ready = *ready;
            n.speaker_ready = *speaker;
            n.labels.insert("zone".to_owned(), if *zone_a { "a" } else { "b" }.to_owned());
            n
        })
        .collect();
    let services =
        k.services.iter().enumerate().map(|(i, s)| service(i, s, k.nodes.len())).collect();
    input(classes, nodes, services)
}

fn class_of<'a>(input: &'a Input, name: &str) -> &'a ClassInput {
    input.classes.iter().find(|c| c.name == name).expect("child of a known class")
}

fn service_of<'a>(input: &'a Input, name: &str) -> &'a ServiceInput {
    input.services.iter().find(|s| s.name == name).expect("child of a known service")
}

fn check_ips(input: &Input, plan: &Plan) -> Result<(), TestCaseError> {
    let mut holders: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, child) in plan.children.iter().enumerate() {
        let Some(ip) = child.status.ip.as_deref() else { continue };
        let pool = Pool::parse(&class_of(input, &child.spec.class).address_pool);
        let addr = Addr::parse(ip).expect("planned IPs parse");
        prop_assert!(pool.contains(addr), "{ip} outside the pool of {}", child.spec.class);
        holders.entry(ip).or_default().push(i);
    }
    for (ip, group) in holders {
        for (x, &a) in group.iter().enumerate() {
            for &b in &group[x + 1..] {
                let (ca, cb) = (&plan.children[a], &plan.children[b]);
                let (sa, sb) = (
                    service_of(input, &ca.spec.service_ref.name),
                    service_of(input, &cb.spec.service_ref.name),
                );
                let ports_a: BTreeSet<i32> = sa.ports.iter().map(|p| p.port).collect();
                let legal = sa.name != sb.name
                    && ca.spec.index == cb.spec.index
                    && ca.spec.class == cb.spec.class
                    && ca.spec.sharing_key.is_some()
                    && ca.spec.sharing_key == cb.spec.sharing_key
                    && sb.ports.iter().all(|p| !ports_a.contains(&p.port))
                    && ((sa.external_traffic_policy == TrafficPolicy::Cluster
                        && sb.external_traffic_policy == TrafficPolicy::Cluster)
                        || sa.selector == sb.selector);
                prop_assert!(legal, "{ip} on {} and {} is not a legal share", ca.name, cb.name);
                prop_assert_eq!(&ca.status.node, &cb.status.node, "one announcer per IP");
            }
        }
    }
    Ok(())
}

/// Candidates computed independently of the planner, as ARCHITECTURE §4 states them.
fn candidates(input: &Input, class: &str, service: &ServiceInput) -> usize {
    let c = class_of(input, class);
    input
        .nodes
        .iter()
        .filter(|n: &&NodeInput| {
            n.ready
                && n.speaker_ready
                && !n
                    .labels
                    .contains_key(metallb_api::names::labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS)
                && c.node_selector.iter().all(|(k, v)| n.labels.get(k) == Some(v))
                && (service.external_traffic_policy == TrafficPolicy::Cluster
                    || service.ready_endpoint_nodes.contains(n.name.as_str()))
        })
        .count()
}

fn check_distinct(input: &Input, plan: &Plan) -> Result<(), TestCaseError> {
    for s in &input.services {
        if s.annotations.contains_key(annotations::SHARED_IP_KEY) {
            continue;
        }
        let children = children_of(plan, &s.name);
        let with_ip: Vec<_> = children.iter().filter(|c| c.status.ip.is_some()).collect();
        let Some(first) = with_ip.first() else { continue };
        if candidates(input, &first.spec.class, s) >= with_ip.len() {
            let placed: BTreeSet<_> =
                with_ip.iter().filter_map(|c| c.status.node.as_ref()).collect();
            prop_assert_eq!(placed.len(), with_ip.len(), "{} not on distinct nodes", s.name);
        }
    }
    Ok(())
}

fn check_quiet(plan: &Plan) -> Result<(), TestCaseError> {
    for c in &plan.children {
        prop_assert_eq!(c.action, ChildAction::Keep, "{} changes on a re-plan", &c.name);
    }
    prop_assert!(plan.deletions.is_empty());
    for s in plan.services.iter().filter(|s| s.changed) {
        prop_assert!(
            false,
            "status of {} changes on a re-plan: {}",
            s.name,
            serde_json::to_string(s).unwrap_or_default()
        );
    }
    prop_assert!(plan.classes.iter().all(|c| !c.conditions_changed));
    prop_assert!(plan.nodes.add_label.is_empty() && plan.nodes.remove_label.is_empty());
    Ok(())
}

fn ip_by_name(plan: &Plan) -> BTreeMap<String, Option<String>> {
    plan.children
        .iter()
        .map(|c| (c.name.to_string(), c.status.ip.as_deref().map(str::to_owned)))
        .collect()
}

proptest! {
    // 128 random clusters of up to 12 Services keep the whole crate's run well under a minute.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn ips_are_unique_unless_shared_and_inside_their_pool(k in cluster_knobs()) {
        let cluster = build(&k);
        let plan = metallb_planner::plan(&cluster);
        check_ips(&cluster, &plan)?;
        check_distinct(&cluster, &plan)?;
    }

    #[test]
    fn planning_the_planned_state_changes_nothing(k in cluster_knobs()) {
        let cluster = build(&k);
        let (first, mut applied) = converge(&cluster);
        prop_assert_eq!(serde_json::to_string(&first).ok(), serde_json::to_string(&metallb_planner::plan(&cluster)).ok());
        applied.now = Timestamp("2030-01-01T00:00:00Z".into());
        let second = metallb_planner::plan(&applied);
        check_quiet(&second)?;
        prop_assert_eq!(ip_by_name(&first), ip_by_name(&second));
    }

    #[test]
    fn unrelated_service_or_node_never_moves_an_ip(k in cluster_knobs(), extra in svc_knobs()) {
        let (before, mut applied) = converge(&build(&k));
        let mut new = service(99, &SvcKnobs { shared: false, ..extra }, k.nodes.len());
        new.name = "zz-new".into();
        applied.services.push(new);
        applied.nodes.push(node("node-new"));
        let after = metallb_planner::plan(&applied);
        let after_ips = ip_by_name(&after);
        for (name, ip) in ip_by_name(&before) {
            if ip.is_some() {
                prop_assert_eq!(after_ips.get(&name), Some(&ip), "{} lost its IP", name);
            }
        }
        check_ips(&applied, &after)?;
    }

    /// Children deleted behind the hooks' back (the release manager after an upgrade, a
    /// person): every Service gets back exactly the IPs it published, whichever were deleted,
    /// even with new Services competing for free addresses.
    #[test]
    fn deleted_children_come_back_with_the_published_ips(
        k in cluster_knobs(), deleted in prop::collection::vec(any::<bool>(), 48), extra in svc_knobs(),
    ) {
        let (before, mut applied) = converge(&build(&k));
        let mut i = 0;
        applied.children.retain(|_| { i += 1; !deleted[(i - 1) % deleted.len()] });
        let mut new = service(99, &SvcKnobs { shared: false, request: None, ..extra }, k.nodes.len());
        new.name = "aa-new".into();
        applied.services.push(new);
        let after = metallb_planner::plan(&applied);
        for old in &before.services {
            let now = after.services.iter().find(|s| s.name == old.name);
            prop_assert_eq!(now.map(|s| &s.ingress), Some(&old.ingress), "{} changed its IPs", &old.name);
        }
        prop_assert_eq!(
            before.children.iter().filter(|c| c.status.ip.is_some()).count(),
            after.children.iter().filter(|c| c.status.ip.is_some() && c.spec.service_ref.name != "aa-new").count()
        );
        check_ips(&applied, &after)?;
    }

    #[test]
    fn removing_a_node_moves_only_its_children(k in cluster_knobs(), victim in 0usize..8) {
        let (before, mut applied) = converge(&build(&k));
        let victim = format!("node-{}", victim % k.nodes.len());
        applied.nodes.retain(|n| n.name != victim);
        let after = metallb_planner::plan(&applied);
        let after_by_name: BTreeMap<&str, _> = after.children.iter().map(|c| (c.name.as_str(), c)).collect();
        for old in &before.children {
            let new = after_by_name[old.name.as_str()];
            prop_assert_eq!(&old.status.ip, &new.status.ip);
            if old.status.node.as_deref() != Some(victim.as_str()) {
                prop_assert_eq!(&old.status.node, &new.status.node, "{} moved", &old.name);
            } else {
                prop_assert_ne!(new.status.node.as_deref(), Some(victim.as_str()));
            }
        }
        check_distinct(&applied, &after)?;
    }

    #[test]
    fn one_ip_services_are_balanced(services in 1usize..120, node_count in 1usize..12, victim in 0usize..12) {
        let cluster = input(
            vec![default_class("a", &["10.0.0.0/16"])],
            nodes(node_count),
            (0..services).map(|i| svc(&format!("s{i}"))).collect(),
        );
        let (plan, mut applied) = converge(&cluster);
        let max_load = |plan: &Plan| {
            let mut load: BTreeMap<&str, usize> = BTreeMap::new();
            for c in &plan.children {
                *load.entry(c.status.node.as_deref().unwrap_or("none")).or_default() += 1;
            }
            load.values().copied().max().unwrap_or(0)
        };
        // The bound of `place`: ceil(2·S/M) ≤ twice the average plus one.
        let bound = (2 * services).div_ceil(node_count);
        prop_assert!(max_load(&plan) <= bound, "max {} > {}", max_load(&plan), bound);
        prop_assert!(plan.children.iter().all(|c| c.status.node.is_some()));
        if node_count > 1 {
            applied.nodes.retain(|n| n.name != format!("node-{}", victim % node_count));
            let after = metallb_planner::plan(&applied);
            let bound = (2 * services).div_ceil(node_count - 1);
            prop_assert!(max_load(&after) <= bound, "after removal: max {} > {}", max_load(&after), bound);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(
        pools in prop::collection::vec(prop::collection::vec("\\PC{0,24}|[0-9a-f:./\\- ]{0,24}", 0..4), 1..3),
        values in prop::collection::vec("\\PC{0,30}|[0-9, .:a-f\\-]{0,30}", 4),
        node_count in 0usize..4,
    ) {
        let classes: Vec<ClassInput> = pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let refs: Vec<&str> = p.iter().map(String::as_str).collect();
                default_class(&format!("c{i}"), &refs)
            })
            .collect();
        let s = svc("web")
            .ann(annotations::EXTERNAL_IPS_COUNT, &values[0])
            .ann(annotations::LOAD_BALANCER_IPS, &values[1])
            .ann(annotations::SHARED_IP_KEY, &values[2])
            .ann(annotations::METAL_LOAD_BALANCER_CLASS, &values[3]);
        let other = svc("other").ann(annotations::SHARED_IP_KEY, &values[2]).ann(annotations::LOAD_BALANCER_IPS, &values[1]);
        let cluster = input(classes, nodes(node_count), vec![s, other]);
        let plan = metallb_planner::plan(&cluster);
        check_ips(&cluster, &plan)?;
        prop_assert!(plan.children.iter().all(|c| metallb_planner::naming::is_dns_label(&c.name)));
    }
}
