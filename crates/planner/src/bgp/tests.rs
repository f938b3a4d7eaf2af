use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn node(name: &str, labels_: &[(&str, &str)], ready: bool) -> NodeInput {
    NodeInput {
        name: name.to_owned(),
        labels: labels_.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ready,
        speaker_ready: true,
        healthy_since: None,
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Peers with IPv4 addresses.
fn v4_peers(names: &[&str]) -> BTreeMap<String, Option<Family>> {
    peers(&names.iter().map(|n| (*n, Some(Family::V4))).collect::<Vec<_>>())
}

/// Peers with the family of their address (`None`: it does not parse).
fn peers(items: &[(&str, Option<Family>)]) -> BTreeMap<String, Option<Family>> {
    items.iter().map(|(n, f)| ((*n).to_owned(), *f)).collect()
}

fn nodes() -> Vec<NodeInput> {
    vec![
        node("front-0", &[("role", "front")], true),
        node("front-1", &[("role", "front")], true),
        node("front-2", &[("role", "front")], false),
        node(
            "front-3",
            &[("role", "front"), (labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS, "")],
            true,
        ),
        node("worker-0", &[], true),
    ]
}

fn configuration(
    name: &str,
    role: Option<&str>,
    peers: &[&str],
    advertisements: Vec<AdvertisementInput>,
) -> ConfigurationInput {
    ConfigurationInput {
        name: name.to_owned(),
        node_selector: role
            .map(|r| BTreeMap::from([("role".to_owned(), r.to_owned())]))
            .unwrap_or_default(),
        peer_names: peers.iter().map(|p| (*p).to_owned()).collect(),
        advertisements,
    }
}

fn advertise(pools: &[&str]) -> AdvertisementInput {
    AdvertisementInput {
        pool_names: pools.iter().map(|p| (*p).to_owned()).collect(),
        ..Default::default()
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn communities_parse_as_the_schema_admits_them() {
    let cases = [
        ("64512:100", Some(Community::Standard(64512, 100))),
        ("0:0", Some(Community::Standard(0, 0))),
        ("65535:65535", Some(Community::Standard(65535, 65535))),
        ("no-export", Some(Community::Standard(65535, 65281))),
        ("no-advertise", Some(Community::Standard(65535, 65282))),
        ("local-as", Some(Community::Standard(65535, 65283))),
        ("none", Some(Community::None)),
        ("large:4200000000:1:4294967295", Some(Community::Large(4_200_000_000, 1, u32::MAX))),
        ("65536:1", None),
        ("1:65536", None),
        ("01:1", None),
        ("-1:1", None),
        ("+1:1", None),
        ("1:", None),
        ("1", None),
        ("1:2:3", None),
        ("large:1:2", None),
        ("large:1:2:3:4", None),
        ("large:4294967296:0:0", None),
        ("NO-EXPORT", None),
        ("", None),
    ];
    for (text, expected) in cases {
        assert_eq!(Community::parse(text), expected, "{text:?}");
    }
    assert_eq!(Community::Large(1, 2, 3).to_string(), "1:2:3");
}

#[test]
fn routes_go_from_eligible_members_to_existing_peers_with_normalised_attributes() {
    let adv = AdvertisementInput {
        pool_names: vec!["public".into()],
        communities: vec![
            "no-export".into(),
            "64512:7".into(),
            "large:64512:1:2".into(),
            "none".into(),
            "64512:7".into(),
        ],
        local_pref: Some(150),
        aggregation_length: None,
    };
    let topology = Topology::new(
        &[configuration(
            "rack-a",
            Some("front"),
            &["tor-b", "tor-a"],
            vec![adv, advertise(&["private"])],
        )],
        &v4_peers(&["tor-a", "tor-b"]),
        &set(&["public", "private"]),
        &nodes(),
    );
    let routes = topology.routes(ip("203.0.113.10"), "public", None);
    assert_eq!(
        routes,
        [BgpRoute {
            configuration: "rack-a".into(),
            advertisement: 0,
            prefix: "203.0.113.10/32".into(),
            communities: vec!["64512:7".into(), "65535:65281".into()],
            large_communities: vec!["64512:1:2".into()],
            local_pref: Some(150),
            peers: vec!["tor-a".into(), "tor-b".into()],
            // Not Ready (front-2), excluded (front-3) and unselected (worker-0) nodes are out.
            nodes: vec!["front-0".into(), "front-1".into()],
        }]
    );
    assert!(topology.configurations()[0].issues.is_empty());
    assert_eq!(topology.speaker_nodes(), BTreeSet::from(["front-0", "front-1"]));
    assert!(topology.advertises("private") && !topology.advertises("other"));
}

#[test]
fn external_traffic_policy_local_announces_only_where_endpoints_are() {
    let topology = Topology::new(
        &[configuration("all", None, &["tor"], vec![advertise(&["public"])])],
        &peers(&[("tor", Some(Family::V6))]),
        &set(&["public"]),
        &nodes(),
    );
    let local = BTreeSet::from(["front-1", "worker-0", "front-2"]);
    let routes = topology.routes(ip("2001:db8::10"), "public", Some(&local));
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].nodes, ["front-1", "worker-0"]);
    assert_eq!(routes[0].prefix, "2001:db8::10/128");
    // No ready endpoint anywhere: no route at all, rather than one nobody should carry.
    assert!(topology.routes(ip("2001:db8::10"), "public", Some(&BTreeSet::new())).is_empty());
}

#[test]
fn aggregation_masks_ipv4_and_never_ipv6() {
    let adv =
        |length| AdvertisementInput { aggregation_length: Some(length), ..advertise(&["public"]) };
    let topology = Topology::new(
        &[configuration("agg", None, &["tor", "tor6"], vec![adv(24), adv(0), adv(64)])],
        &peers(&[("tor", Some(Family::V4)), ("tor6", Some(Family::V6))]),
        &set(&["public"]),
        &nodes(),
    );
    let prefixes: Vec<String> =
        topology.routes(ip("203.0.113.77"), "public", None).into_iter().map(|r| r.prefix).collect();
    assert_eq!(prefixes, ["203.0.113.0/24", "0.0.0.0/0", "203.0.113.77/32"]);
    let v6: Vec<String> =
        topology.routes(ip("2001:db8::77"), "public", None).into_iter().map(|r| r.prefix).collect();
    assert_eq!(v6, ["2001:db8::77/128"; 3]);
    assert_eq!(
        topology.configurations()[0].issues,
        [ConfigurationIssue::AggregationTooLong { advertisement: 2, length: 64 }]
    );
}

#[test]
fn an_ip_goes_only_to_peers_of_its_family() {
    // A speaker sends a prefix with its session's own address as the next hop: an IPv4 session
    // cannot carry an IPv6 prefix. A peer whose address does not parse carries nothing.
    let topology = Topology::new(
        &[
            configuration("dual", None, &["tor4", "tor6", "broken"], vec![advertise(&["public"])]),
            configuration("v4-only", None, &["tor4"], vec![advertise(&["public"])]),
        ],
        &peers(&[("tor4", Some(Family::V4)), ("tor6", Some(Family::V6)), ("broken", None)]),
        &set(&["public"]),
        &nodes(),
    );
    let peers_of = |text: &str| -> Vec<(String, Vec<String>)> {
        let routes = topology.routes(ip(text), "public", None);
        routes.into_iter().map(|r| (r.configuration, r.peers)).collect()
    };
    assert_eq!(
        peers_of("203.0.113.5"),
        [("dual".into(), vec!["tor4".into()]), ("v4-only".into(), vec!["tor4".into()])]
    );
    // No route of v4-only: the IP is not reported announced through it.
    assert_eq!(peers_of("2001:db8::5"), [("dual".into(), vec!["tor6".into()])]);
    // A missing family is no configuration issue: the peers exist.
    assert!(topology.configurations().iter().all(|c| c.issues.is_empty()));
}

#[test]
fn missing_peers_and_pools_are_issues_and_the_rest_still_works() {
    let topology = Topology::new(
        &[
            configuration("half", None, &["tor-a", "gone"], vec![advertise(&["public", "lost"])]),
            configuration("orphan", None, &["gone"], vec![advertise(&["public"])]),
            AdvertisementInput::default()
                .pool_names
                .is_empty()
                .then(|| {
                    configuration(
                        "bad-community",
                        None,
                        &["tor-a"],
                        vec![AdvertisementInput {
                            communities: vec!["70000:1".into()],
                            ..advertise(&["public"])
                        }],
                    )
                })
                .unwrap(),
        ],
        &v4_peers(&["tor-a"]),
        &set(&["public"]),
        &nodes(),
    );
    let issues: BTreeMap<&str, Vec<String>> = topology
        .configurations()
        .iter()
        .map(|c| {
            (c.name.as_str(), c.issues.iter().map(|i| format!("{}: {i}", i.reason())).collect())
        })
        .collect();
    assert_eq!(
        issues["half"],
        [
            "PeerNotFound: peer \"gone\" is not a MetalLoadBalancerBGPPeer; no session to it",
            "PoolNotFound: advertisement 0: pool \"lost\" is not a MetalLoadBalancerPool",
        ]
    );
    assert_eq!(
        issues["orphan"][0],
        "PeerNotFound: peer \"gone\" is not a MetalLoadBalancerBGPPeer; no session to it"
    );
    assert_eq!(issues["orphan"][1], "NoPeers: no existing peer is named; nothing is announced");
    assert_eq!(
        issues["bad-community"],
        ["InvalidCommunity: advertisement 0: community \"70000:1\" is not valid; left out"]
    );
    let routes = topology.routes(ip("203.0.113.1"), "public", None);
    let from: Vec<(&str, &[String])> =
        routes.iter().map(|r| (r.configuration.as_str(), r.peers.as_slice())).collect();
    assert_eq!(
        from,
        [("bad-community", &["tor-a".to_owned()][..]), ("half", &["tor-a".to_owned()][..])]
    );
    assert!(routes[0].communities.is_empty());
}

fn arb_node() -> impl Strategy<Value = NodeInput> {
    ("[a-d]", prop::option::of("[xy]"), any::<bool>(), any::<bool>()).prop_map(
        |(name, role, ready, excluded)| {
            let mut labels_ = BTreeMap::new();
            if let Some(r) = role {
                labels_.insert("role".to_owned(), r);
            }
            if excluded {
                labels_
                    .insert(labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS.to_owned(), String::new());
            }
            NodeInput { name, labels: labels_, ready, speaker_ready: true, healthy_since: None }
        },
    )
}

fn arb_configuration() -> impl Strategy<Value = ConfigurationInput> {
    (
        "[a-c]",
        prop::option::of("[xy]"),
        prop::collection::vec("p[0-2]", 0..3),
        prop::collection::vec(
            (
                prop::collection::vec("pool[0-2]", 1..3),
                prop::option::of(0u8..40),
                prop::collection::vec("[0-9]{1,6}:[0-9]{1,6}|no-export", 0..3),
            ),
            0..3,
        ),
    )
        .prop_map(|(name, role, peers, advs)| ConfigurationInput {
            name,
            node_selector: role
                .map(|r| BTreeMap::from([("role".to_owned(), r)]))
                .unwrap_or_default(),
            peer_names: peers,
            advertisements: advs
                .into_iter()
                .map(|(pools, length, communities)| AdvertisementInput {
                    pool_names: pools,
                    communities,
                    local_pref: None,
                    aggregation_length: length,
                })
                .collect(),
        })
}

/// Configuration names are unique in a cluster (cluster-scoped objects).
fn unique_names(configurations: Vec<ConfigurationInput>) -> Vec<ConfigurationInput> {
    configurations
        .into_iter()
        .enumerate()
        .map(|(i, c)| ConfigurationInput { name: format!("{}{i}", c.name), ..c })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every route is announced only by eligible members of its configuration (and, for ETP
    /// Local, only where endpoints are), to existing peers, with a prefix that holds the IP; and
    /// the routes do not depend on the order of the input.
    #[test]
    fn routes_are_safe_and_order_independent(
        nodes in prop::collection::vec(arb_node(), 0..6),
        configurations in prop::collection::vec(arb_configuration(), 0..4).prop_map(unique_names),
        octet in any::<u8>(),
        local in prop::option::of(prop::collection::btree_set("[a-d]", 0..4)),
    ) {
        let peers = v4_peers(&["p0", "p1"]);
        let pools = set(&["pool0", "pool1"]);
        let address = IpAddr::from([203, 0, 113, octet]);
        let local_refs: Option<BTreeSet<&str>> = local.as_ref().map(|l| l.iter().map(String::as_str).collect());
        let topology = Topology::new(&configurations, &peers, &pools, &nodes);
        let routes = topology.routes(address, "pool0", local_refs.as_ref());

        let mut reversed = configurations.clone();
        reversed.reverse();
        let mut nodes_reversed = nodes.clone();
        nodes_reversed.reverse();
        let again = Topology::new(&reversed, &peers, &pools, &nodes_reversed);
        prop_assert_eq!(&again.routes(address, "pool0", local_refs.as_ref()), &routes);

        for route in &routes {
            let config = configurations.iter().find(|c| c.name == route.configuration).unwrap();
            prop_assert!(!route.nodes.is_empty() && !route.peers.is_empty());
            for n in &route.nodes {
                prop_assert!(nodes.iter().any(|node| &node.name == n && eligible(node, &config.node_selector)));
                if let Some(local) = &local {
                    prop_assert!(local.contains(n));
                }
            }
            for p in &route.peers {
                prop_assert!(peers.contains_key(p) && config.peer_names.contains(p));
            }
            let (network, length) = route.prefix.split_once('/').unwrap();
            let (network, length): (std::net::Ipv4Addr, u32) = (network.parse().unwrap(), length.parse().unwrap());
            let mask = u32::MAX.checked_shl(32 - length).unwrap_or(0);
            prop_assert_eq!(u32::from(network), u32::from_be_bytes([203, 0, 113, octet]) & mask);
            // Numerically sorted and unique (`9:0` before `10:0`).
            let parsed: Vec<Community> = route.communities.iter().map(|c| Community::parse(c).unwrap()).collect();
            prop_assert!(parsed.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
