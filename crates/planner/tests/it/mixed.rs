//! Property tests over mixed clusters: random L2 classes and BGP pools drawing from the same,
//! overlapping address entries, and Services of both kinds with requests and sharing keys.

use std::collections::BTreeMap;

use metallb_api::names::annotations;
use metallb_planner::pool::{Addr, Family, Pool};
use metallb_planner::{
    BgpInput, ChildAction, Input, Plan, PoolInput, ServiceInput, Timestamp, TrafficPolicy,
};
use proptest::prelude::*;

use crate::bgp::{bgp, pool};
use crate::common::*;

/// Entries shared by classes and pools, so that sources overlap; `.255`/`.0` neighbours for
/// `avoidBuggyIPs`.
const ENTRIES: [&str; 6] = [
    "10.0.0.0/29",
    "10.0.0.4-10.0.0.11",
    "10.0.1.254-10.0.2.1",
    "2001:db8::/126",
    "10.0.2.7",
    "not-a-cidr",
];

#[derive(Debug, Clone)]
struct Source {
    entries: Vec<bool>,
    /// Classes: default. Pools: autoAssign.
    flag: bool,
    avoid_buggy: bool,
}

#[derive(Debug, Clone)]
struct SvcKnobs {
    /// 0: nothing; 1..=3: class annotation c0..c2; 4..=7: pool annotation p0..p3 (p3 missing).
    binding: u8,
    count: u32,
    families: u8,
    shared: bool,
    port: i32,
    local: bool,
    request: Option<u8>,
}

#[derive(Debug, Clone)]
struct Knobs {
    classes: Vec<Source>,
    pools: Vec<Source>,
    services: Vec<SvcKnobs>,
}

fn source() -> impl Strategy<Value = Source> {
    (prop::collection::vec(prop::bool::weighted(0.4), ENTRIES.len()), any::<bool>(), any::<bool>())
        .prop_map(|(entries, flag, avoid_buggy)| Source { entries, flag, avoid_buggy })
}

fn svc_knobs() -> impl Strategy<Value = SvcKnobs> {
    (
        0u8..8,
        1u32..=3,
        0u8..4,
        any::<bool>(),
        prop::sample::select(vec![80, 443]),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.3, 0u8..16),
    )
        .prop_map(|(binding, count, families, shared, port, local, request)| SvcKnobs {
            binding,
            count,
            families,
            shared,
            port,
            local,
            request,
        })
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        prop::collection::vec(source(), 0..=3),
        prop::collection::vec(source(), 0..=3),
        prop::collection::vec(svc_knobs(), 0..=12),
    )
        .prop_map(|(classes, pools, services)| Knobs { classes, pools, services })
}

fn entries(s: &Source) -> Vec<&'static str> {
    ENTRIES.iter().zip(&s.entries).filter(|(_, on)| **on).map(|(e, _)| *e).collect()
}

fn service(i: usize, k: &SvcKnobs) -> ServiceInput {
    let mut s = svc(&format!("s{i:02}")).count(k.count);
    s.ports = vec![port("TCP", k.port)].into();
    s.ip_families = match k.families {
        0 => Vec::new(),
        1 => vec![Family::V4],
        2 => vec![Family::V6],
        _ => vec![Family::V6, Family::V4],
    }
    .into_iter()
    .collect();
    match k.binding {
        1..=3 => s = s.ann(annotations::METAL_LOAD_BALANCER_CLASS, &format!("c{}", k.binding - 1)),
        4..=7 => s = s.ann(annotations::LOAD_BALANCER_POOL, &format!("p{}", k.binding - 4)),
        _ => {}
    }
    if k.shared {
        s = s.ann(annotations::SHARED_IP_KEY, "key");
    }
    if k.local {
        s = s.local(&["node-0"]);
    }
    if let Some(r) = k.request {
        s = s.ann(annotations::LOAD_BALANCER_IPS, &format!("10.0.0.{r}"));
    }
    s
}

fn build(k: &Knobs) -> (Input, BgpInput) {
    let classes = k
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = format!("c{i}");
            if c.flag { default_class(&name, &entries(c)) } else { class(&name, &entries(c)) }
        })
        .collect();
    let pools = k
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| PoolInput {
            avoid_buggy_ips: p.avoid_buggy,
            ..pool(&format!("p{i}"), &entries(p), p.flag)
        })
        .collect();
    let services = k.services.iter().enumerate().map(|(i, s)| service(i, s)).collect();
    (input(classes, nodes(3), services), bgp(pools))
}

/// One holder of an IP: Service, mode and source, lane (L2 index or BGP family), key.
#[derive(Debug)]
struct Holder<'a> {
    service: &'a str,
    source: String,
    lane: String,
    key: Option<&'a str>,
}

fn service_of<'a>(input: &'a Input, name: &str) -> &'a ServiceInput {
    input.services.iter().find(|s| s.name == name).expect("a known Service")
}

fn check_ips(input: &Input, bgp: &BgpInput, plan: &Plan) -> Result<(), TestCaseError> {
    let mut holders: BTreeMap<String, Vec<Holder<'_>>> = BTreeMap::new();
    for c in &plan.children {
        let Some(ip) = c.status.ip.as_deref() else { continue };
        let class = input.classes.iter().find(|x| x.name == c.spec.class).expect("a known class");
        let addr = Addr::parse(ip).expect("planned IPs parse");
        prop_assert!(
            Pool::parse(&class.address_pool).contains(addr),
            "{ip} outside class {}",
            class.name
        );
        holders.entry(ip.to_owned()).or_default().push(Holder {
            service: c.spec.service_ref.name.as_str(),
            source: format!("class {}", class.name),
            lane: format!("index {:?}", c.spec.index),
            key: c.spec.sharing_key.as_deref(),
        });
    }
    for a in &plan.announcements {
        let p = bgp.pools.iter().find(|p| p.name == a.spec.pool).expect("a known pool");
        let addr = Addr::parse(&a.spec.ip).expect("planned IPs parse");
        prop_assert!(
            Pool::parse(&p.addresses).contains(addr),
            "{} outside pool {}",
            a.spec.ip,
            p.name
        );
        let buggy = addr.family == Family::V4 && matches!(addr.value & 0xff, 0 | 0xff);
        prop_assert!(
            !(p.avoid_buggy_ips && buggy),
            "{} from avoidBuggyIPs pool {}",
            a.spec.ip,
            p.name
        );
        let s = service_of(input, &a.spec.service_ref.name);
        holders.entry(a.spec.ip.to_string()).or_default().push(Holder {
            service: a.spec.service_ref.name.as_str(),
            source: format!("pool {}", p.name),
            lane: format!("family {:?}", addr.family),
            key: s.annotations.get(annotations::SHARED_IP_KEY),
        });
    }
    for (ip, group) in holders {
        for (x, a) in group.iter().enumerate() {
            for b in &group[x + 1..] {
                let (sa, sb) = (service_of(input, a.service), service_of(input, b.service));
                let legal = a.service != b.service
                    && a.source == b.source
                    && a.lane == b.lane
                    && a.key.is_some()
                    && a.key == b.key
                    && sa.ports.iter().all(|p| sb.ports.iter().all(|q| p.port != q.port))
                    && ((sa.external_traffic_policy == TrafficPolicy::Cluster
                        && sb.external_traffic_policy == TrafficPolicy::Cluster)
                        || sa.selector == sb.selector);
                prop_assert!(legal, "{ip} held by {a:?} and {b:?}");
            }
        }
    }
    Ok(())
}

fn check_quiet(plan: &Plan) -> Result<(), TestCaseError> {
    prop_assert!(plan.children.iter().all(|c| c.action == ChildAction::Keep));
    prop_assert!(plan.announcements.iter().all(|a| a.action == ChildAction::Keep));
    prop_assert!(plan.deletions.is_empty() && plan.announcement_deletions.is_empty());
    for s in plan.services.iter().filter(|s| s.changed) {
        let text = serde_json::to_string(s).unwrap_or_default();
        prop_assert!(false, "status of {} changes on a re-plan: {}", s.name, text);
    }
    prop_assert!(plan.classes.iter().all(|c| !c.conditions_changed));
    prop_assert!(plan.pools.iter().all(|p| !p.conditions_changed));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_ip_is_held_twice_across_modes_and_each_is_inside_its_source(k in knobs()) {
        let (cluster, bgp) = build(&k);
        let plan = metallb_planner::plan_with_bgp(&cluster, &bgp);
        check_ips(&cluster, &bgp, &plan)?;
    }

    #[test]
    fn replanning_the_planned_mixed_cluster_changes_nothing(k in knobs()) {
        let (cluster, bgp) = build(&k);
        let first = metallb_planner::plan_with_bgp(&cluster, &bgp);
        let mut applied = metallb_planner::apply(&cluster, &first);
        let applied_bgp = metallb_planner::apply_bgp(&bgp, &first);
        applied.now = Timestamp("2030-01-01T00:00:00Z".into());
        let second = metallb_planner::plan_with_bgp(&applied, &applied_bgp);
        check_quiet(&second)?;
        check_ips(&applied, &applied_bgp, &second)?;
    }

    #[test]
    fn the_plan_does_not_depend_on_input_order(k in knobs()) {
        let (cluster, bgp) = build(&k);
        let plan = metallb_planner::plan_with_bgp(&cluster, &bgp);
        let (mut reversed, mut reversed_bgp) = (cluster.clone(), bgp.clone());
        reversed.classes.reverse();
        reversed.nodes.reverse();
        reversed.services.reverse();
        reversed_bgp.pools.reverse();
        prop_assert_eq!(&plan, &metallb_planner::plan_with_bgp(&reversed, &reversed_bgp));
        // The same with children and announcements in the input.
        let (mut applied, mut applied_bgp) =
            (metallb_planner::apply(&cluster, &plan), metallb_planner::apply_bgp(&bgp, &plan));
        let replanned = metallb_planner::plan_with_bgp(&applied, &applied_bgp);
        applied.children.reverse();
        applied.services.reverse();
        applied_bgp.announcements.reverse();
        applied_bgp.pools.reverse();
        prop_assert_eq!(replanned, metallb_planner::plan_with_bgp(&applied, &applied_bgp));
    }

    #[test]
    fn arbitrary_text_never_panics_and_names_are_dns_labels(
        entries in prop::collection::vec("\\PC{0,24}|[0-9a-f:./\\- ]{0,24}", 0..4),
        values in prop::collection::vec("\\PC{0,30}|[0-9, .:a-f\\-]{0,30}", 4),
        name in "[a-z][a-z0-9-]{0,70}",
    ) {
        let refs: Vec<&str> = entries.iter().map(String::as_str).collect();
        let mut p = pool("p", &refs, true);
        p.avoid_buggy_ips = true;
        let mut s = svc(&name)
            .ann(annotations::LOAD_BALANCER_IPS, &values[0])
            .ann(annotations::SHARED_IP_KEY, &values[1])
            .ann(annotations::LOAD_BALANCER_POOL, &values[2]);
        s.load_balancer_ip = Some(values[3].as_str().into());
        s.ip_families = [Family::V6, Family::V4].into_iter().collect();
        let other = svc("other").ann(annotations::METALLB_LOAD_BALANCER_IPS, &values[0]);
        let cluster = input(vec![class("c", &refs)], nodes(2), vec![s, other]);
        let bgp = bgp(vec![p]);
        let plan = metallb_planner::plan_with_bgp(&cluster, &bgp);
        check_ips(&cluster, &bgp, &plan)?;
        prop_assert!(plan.announcements.iter().all(|a| metallb_planner::naming::is_dns_label(&a.name)));
    }
}
