use std::collections::BTreeSet;

use ipnet::IpNet;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::bgp::reduce::Reduced;

const NS: &str = "d8-metallb";

fn announcement(name: &str, ip: &str, routes: Value) -> AnnouncementView {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "web",
                     "labels": {"heritage": "deckhouse", "module": "metallb"}},
        "spec": {"serviceRef": {"name": "nginx", "namespace": "web"}, "pool": "public",
                 "ip": ip, "routes": routes},
    }))
    .expect("view")
}

fn peer_view(name: &str, spec: Value) -> PeerView {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("view")
}

fn pool_view(name: &str, addresses: &[&str]) -> PoolView {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"addresses": addresses}}))
        .expect("view")
}

fn secret_view(name: &str, password: Option<&str>) -> SecretView {
    let data = match password {
        Some(p) => json!({ "password": base64(p.as_bytes()) }),
        None => json!({"other": "eA=="}),
    };
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": NS}, "data": data}))
        .expect("view")
}

/// Standard base64 (the API's encoding of Secret data), enough for the tests.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn mirror<K: Project>(objects: impl IntoIterator<Item = K>) -> Mirror<K::Entry> {
    let mut mirror = Mirror::default();
    mirror.apply::<K>(Event::Init);
    for object in objects {
        mirror.apply(Event::InitApply(object));
    }
    mirror.apply::<K>(Event::InitDone);
    mirror
}

/// A cluster: two peers (one with a password, BFD and a source address for node-1), one pool.
struct Cluster {
    announcements: Vec<AnnouncementView>,
    peers: Vec<PeerView>,
    pools: Vec<PoolView>,
    secrets: Vec<SecretView>,
}

fn cluster() -> Cluster {
    let route = |prefix: &str, peers: &[&str], nodes: &[&str], communities: &[&str]| {
        json!({"configuration": "rack-a", "advertisement": 0, "prefix": prefix,
               "communities": communities, "peers": peers, "nodes": nodes})
    };
    Cluster {
        announcements: vec![
            announcement(
                "nginx-bgp-0",
                "203.0.113.10",
                json!([
                    route("203.0.113.10/32", &["tor-a"], &["node-1", "node-2"], &["65535:65281"]),
                    route("203.0.113.0/24", &["tor-b"], &["node-1"], &[]),
                ]),
            ),
            // The same prefix from a second advertisement: merged with the first.
            announcement(
                "nginx-bgp-1",
                "203.0.113.10",
                json!([route("203.0.113.10/32", &["tor-a"], &["node-1"], &["64512:1"])]),
            ),
            // Another node's IP.
            announcement(
                "web-bgp-0",
                "203.0.113.20",
                json!([route("203.0.113.20/32", &["tor-a"], &["node-2"], &[])]),
            ),
            // Outside its pool: someone else wrote it.
            announcement(
                "forged-bgp-0",
                "192.0.2.1",
                json!([route("192.0.2.1/32", &["tor-a"], &["node-1"], &[])]),
            ),
            announcement("broken-bgp-0", "not-an-ip", json!([])),
        ],
        peers: vec![
            peer_view(
                "tor-a",
                json!({"peerAddress": "192.0.2.1", "peerASN": 64500, "myASN": 64501,
                       "holdTime": "1m30s",
                       "passwordSecretRef": {"namespace": "net", "name": "tor"},
                       "sourceAddresses": [{"nodeName": "node-1", "address": "192.0.2.11"},
                                           {"nodeName": "node-2", "address": "192.0.2.12"}],
                       "bfd": {"transmitInterval": 100}}),
            ),
            peer_view(
                "tor-b",
                json!({"peerAddress": "2001:db8::1", "peerPort": 1179, "peerASN": 64501,
                       "myASN": 64501}),
            ),
        ],
        pools: vec![pool_view("public", &["203.0.113.0/24"])],
        secrets: vec![secret_view("bgp-pwd-net-tor", Some("s3cret"))],
    }
}

fn reduce_for(node: &str, c: Cluster) -> (Reduced, BTreeSet<Unreadable>) {
    let scope = Scope { node, namespace: NS };
    let (input, unreadable) = input(
        &scope,
        mirror(c.announcements).entries(),
        mirror(c.peers).entries(),
        mirror(c.pools).entries(),
        mirror(c.secrets).entries(),
    );
    (reduce::reduce(&input), unreadable)
}

fn net(text: &str) -> IpNet {
    text.parse().expect("net")
}

#[test]
fn objects_reduce_to_this_nodes_routes_and_sessions() {
    let (r, unreadable) = reduce_for("node-1", cluster());
    let tor_a = &r.desired.peers["tor-a"];
    assert_eq!(tor_a.password.as_deref(), Some("s3cret"));
    assert_eq!(tor_a.source_address, Some("192.0.2.11".parse().expect("ip")));
    assert_eq!((tor_a.hold_time, tor_a.port), (90, 179));
    let tor_b = &r.desired.peers["tor-b"];
    assert_eq!((tor_b.port, tor_b.password.as_deref(), tor_b.source_address), (1179, None, None));
    let bfd = r.bfd["tor-a"];
    assert_eq!(bfd.params.desired_min_tx, std::time::Duration::from_millis(100));
    assert_eq!(bfd.params.required_min_rx, std::time::Duration::from_millis(300));
    assert_eq!(bfd.params.detect_mult, 3);

    let routes: Vec<(IpNet, Vec<&str>)> = r
        .desired
        .routes
        .iter()
        .map(|(prefix, peers)| (*prefix, peers.keys().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        routes,
        [(net("203.0.113.0/24"), vec!["tor-b"]), (net("203.0.113.10/32"), vec!["tor-a"])],
        "node-2's IP left out"
    );
    let merged = &r.desired.routes[&net("203.0.113.10/32")]["tor-a"];
    assert_eq!(merged.communities, BTreeSet::from([0xffff_ff01, (64512 << 16) | 1]));
    assert_eq!(
        r.ignored,
        BTreeMap::from([(Ignored::OutsidePool, 1), (Ignored::Malformed, 1)]),
        "the forged and the broken announcement"
    );
    assert_eq!(
        unreadable.iter().map(|u| (u.kind, u.key.as_str())).collect::<Vec<_>>(),
        [("SDNInternalBGPAnnouncement", "web/broken-bgp-0")]
    );

    // node-2: its own source address, only its routes (the shared IP and its own).
    let (r, _) = reduce_for("node-2", cluster());
    assert_eq!(r.desired.peers["tor-a"].source_address, Some("192.0.2.12".parse().expect("ip")));
    assert_eq!(
        r.desired.routes.keys().copied().collect::<Vec<_>>(),
        [net("203.0.113.10/32"), net("203.0.113.20/32")]
    );
    let shared = &r.desired.routes[&net("203.0.113.10/32")]["tor-a"];
    assert_eq!(shared.communities, BTreeSet::from([0xffff_ff01]), "nginx-bgp-1 is node-1's only");
    // A node no route names: no session, nothing announced.
    let (r, _) = reduce_for("node-3", cluster());
    assert!(r.desired.routes.is_empty());
    assert!(r.desired.peers.is_empty());
    // node-2's routes name only tor-a: no session with tor-b.
    let (r, _) = reduce_for("node-2", cluster());
    assert_eq!(r.desired.peers.keys().collect::<Vec<_>>(), ["tor-a"]);
}

#[test]
fn a_missing_password_leaves_the_peer_out_and_its_routes_to_the_others() {
    let table: [(&str, Vec<SecretView>); 3] = [
        ("no copy", vec![]),
        ("no password key", vec![secret_view("bgp-pwd-net-tor", None)]),
        ("another peer's copy", vec![secret_view("bgp-pwd-net-other", Some("x"))]),
    ];
    for (case, secrets) in table {
        let (r, _) = reduce_for("node-1", Cluster { secrets, ..cluster() });
        assert!(!r.desired.peers.contains_key("tor-a"), "{case}");
        assert!(!r.bfd.contains_key("tor-a"), "{case}");
        assert_eq!(r.ignored.get(&Ignored::MissingPassword), Some(&1), "{case}");
        // Two routes named tor-a: counted, and tor-b keeps its route.
        assert_eq!(r.ignored.get(&Ignored::UnknownPeer), Some(&2), "{case}");
        assert_eq!(r.desired.routes.keys().copied().collect::<Vec<_>>(), [net("203.0.113.0/24")]);
    }
}

#[test]
fn pools_decide_which_routes_are_used() {
    let table: [(&str, Vec<PoolView>, Option<Ignored>); 4] = [
        ("pool missing", vec![], Some(Ignored::UnknownPool)),
        (
            "pool elsewhere",
            vec![pool_view("public", &["198.51.100.0/24"])],
            Some(Ignored::OutsidePool),
        ),
        ("range form", vec![pool_view("public", &["203.0.113.10-203.0.113.20"])], None),
        ("malformed pool", vec![pool_view("public", &[]), pool_broken()], Some(Ignored::Malformed)),
    ];
    for (case, pools, why) in table {
        let mut c = cluster();
        c.announcements.truncate(3);
        c.pools = pools;
        let (r, _) = reduce_for("node-1", c);
        match why {
            None => assert_eq!(r.desired.routes.len(), 2, "{case}"),
            Some(why) => assert!(r.ignored.contains_key(&why), "{case}: {:?}", r.ignored),
        }
    }
}

fn pool_broken() -> PoolView {
    serde_json::from_value(json!({"metadata": {"name": "broken"}, "spec": {"addresses": "x"}}))
        .expect("view")
}

#[test]
fn a_malformed_peer_is_skipped_and_counted() {
    let mut c = cluster();
    c.peers[1] = peer_view("tor-b", json!({"peerAddress": "2001:db8::1", "peerASN": "many"}));
    let (r, unreadable) = reduce_for("node-1", c);
    assert!(!r.desired.peers.contains_key("tor-b"));
    assert!(r.desired.peers.contains_key("tor-a"));
    assert!(unreadable.iter().any(|u| u.key == "tor-b" && u.kind == "MetalLoadBalancerBGPPeer"));
}

#[test]
fn keep_node_drops_other_nodes_routes() {
    let mut view = cluster().announcements.remove(0);
    keep_node(&mut view, "node-2");
    let Extracted::Entry(Ok(routes)) = view.project() else { panic!("entry") };
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].nodes, ["node-2"]);
    assert_eq!(routes[0].route.prefix, net("203.0.113.10/32"));
}

proptest! {
    /// The order of the objects (and so of their keys) never changes what is announced.
    #[test]
    fn object_order_does_not_matter(seed in any::<u64>()) {
        let base = reduce_for("node-1", cluster()).0;
        let mut c = cluster();
        let mut state = seed;
        let n = c.announcements.len();
        for i in (1..n).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            c.announcements.swap(i, (state >> 33) as usize % (i + 1));
        }
        // Renamed in the new order: the mirror's key order follows.
        for (i, a) in c.announcements.iter_mut().enumerate() {
            a.metadata.name = Some(format!("a{i}"));
        }
        c.peers.reverse();
        prop_assert_eq!(reduce_for("node-1", c).0, base);
    }
}
