//! The original module's `migration_bgp_test.go` cases (`reference/deckhouse-metallb.md` §6.6)
//! and the entries the original would have sent to the API server to be refused.

use super::*;

fn mc(version: i64, settings: Value) -> Vec<Value> {
    vec![json!({"version": version, "settings": settings})]
}

fn none() -> BTreeSet<String> {
    BTreeSet::new()
}

/// Created objects by `(kind, name)`, with every operation checked to be a create-if-missing.
fn created(out: &Outcome) -> BTreeMap<(String, String), Value> {
    out.ops
        .iter()
        .map(|op| match op {
            KubeOperation::CreateIfNotExists { object } => {
                let o = object.to_value().unwrap();
                let key = (
                    o["kind"].as_str().unwrap().to_owned(),
                    o["metadata"]["name"].as_str().unwrap().to_owned(),
                );
                (key, o)
            }
            other => panic!("only creations expected, got {other:?}"),
        })
        .collect()
}

fn spec<'a>(objects: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    &objects[&(kind.to_owned(), name.to_owned())]["spec"]
}

/// §6.6 #1.
#[test]
fn settings_become_a_pool_a_peer_and_the_migrated_configuration() {
    let out = handle(
        &mc(
            2,
            json!({
            "speaker": {"nodeSelector": {"node-role.deckhouse.io/frontend": ""}},
            "bgpPeers": [{"my-asn": 65000, "peer-address": "192.168.1.1", "peer-asn": 65001,
                          "peer-port": 179, "router-id": "10.0.0.254", "hold-time": "90s"}],
            "bgpCommunities": {"no-advertise": "65535:65282"},
            "addressPools": [
                {"name": "bgp-pool", "protocol": "bgp", "addresses": ["10.0.0.1/32"],
                 "bgp-advertisements": [{"localpref": 100, "communities": ["no-advertise"], "aggregation-length": 24}]},
                {"name": "l2-pool", "protocol": "layer2", "addresses": ["10.0.0.2/32"]}]}),
        ),
        &none(),
        &none(),
        &none(),
    );
    assert_eq!(out.skipped, Vec::new());
    let objects = created(&out);
    assert_eq!(objects.len(), 3, "{objects:#?}");
    assert_eq!(
        spec(&objects, "MetalLoadBalancerPool", "bgp-pool"),
        &json!({"addresses": ["10.0.0.1/32"]})
    );
    assert_eq!(
        spec(&objects, "MetalLoadBalancerBGPPeer", "peer-0"),
        &json!({"myASN": 65000, "peerASN": 65001, "peerAddress": "192.168.1.1", "peerPort": 179,
                "routerID": "10.0.0.254", "holdTime": "90s"})
    );
    assert_eq!(
        spec(&objects, "MetalLoadBalancerConfiguration", "migrated-bgp"),
        &json!({"advertisements": [{"bgp": {"aggregationLength": 24, "communities": ["65535:65282"], "localPref": 100},
                                    "poolNames": ["bgp-pool"]}],
                "bgp": {"peerNames": ["peer-0"]}, "mode": "BGP",
                "nodeSelector": {"node-role.deckhouse.io/frontend": ""}})
    );
    let labels_ = &objects[&("MetalLoadBalancerPool".to_owned(), "bgp-pool".to_owned())]["metadata"]
        ["labels"];
    assert_eq!(labels_["auto-generated-by"], "d8-migration-hook");
    assert_eq!(labels_["heritage"], "deckhouse");
}

/// §6.6 #2: an existing pool is never touched.
#[test]
fn an_existing_object_is_left_as_it_is() {
    let settings = json!({"addressPools": [{"name": "bgp-pool", "protocol": "bgp", "addresses": ["10.0.0.1/32"]}],
                          "bgpPeers": [{"peer-address": "192.0.2.1", "peer-asn": 64512, "my-asn": 64513}]});
    let existing = |n: &str| BTreeSet::from([n.to_owned()]);
    let out = handle(&mc(2, settings.clone()), &existing("bgp-pool"), &existing("peer-0"), &none());
    let objects = created(&out);
    assert_eq!(
        objects.keys().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        ["MetalLoadBalancerConfiguration"]
    );
    // The existing peer is still named by the configuration.
    assert_eq!(
        spec(&objects, "MetalLoadBalancerConfiguration", "migrated-bgp")["bgp"]["peerNames"],
        json!(["peer-0"])
    );

    // Everything exists: a second run emits nothing.
    let out = handle(
        &mc(2, settings),
        &existing("bgp-pool"),
        &existing("peer-0"),
        &existing("migrated-bgp"),
    );
    assert!(out.ops.is_empty() && out.skipped.is_empty());
}

const LOCAL_PREFS: [u32; 3] = [100, 150, 200];

/// §6.6 #3: many pools, each with its own address; one advertisement per pool.
#[test]
fn eighty_pools_keep_their_addresses_and_advertisements() {
    let pools: Vec<Value> = (0..80)
        .map(|i| {
            let mut pool = json!({"name": format!("pool-{i:02}-bgp"), "protocol": "bgp", "addresses": [format!("10.10.0.{i}/32")]});
            if i % 4 != 0 {
                pool["bgp-advertisements"] = json!([{"aggregation-length": 32, "localpref": LOCAL_PREFS[i % 3]}]);
            }
            pool
        })
        .collect();
    let out = handle(
        &mc(
            2,
            json!({"speaker": {"nodeSelector": {"dedicated": "metallb"}},
                      "bgpPeers": [{"peer-address": "192.168.0.1", "peer-asn": 64500, "my-asn": 64500, "hold-time": "3s"},
                                   {"peer-address": "192.168.0.2", "peer-asn": 64500, "my-asn": 64500, "hold-time": "3s"}],
                      "addressPools": pools}),
        ),
        &none(),
        &none(),
        &none(),
    );
    let objects = created(&out);
    for i in 0..80 {
        let name = format!("pool-{i:02}-bgp");
        assert_eq!(
            spec(&objects, "MetalLoadBalancerPool", &name)["addresses"],
            json!([format!("10.10.0.{i}/32")])
        );
    }
    let configuration = spec(&objects, "MetalLoadBalancerConfiguration", "migrated-bgp");
    assert_eq!(configuration["mode"], "BGP");
    assert_eq!(configuration["advertisements"].as_array().unwrap().len(), 80);
    assert_eq!(configuration["bgp"]["peerNames"], json!(["peer-0", "peer-1"]));
    assert_eq!(configuration["advertisements"][1]["bgp"]["localPref"], 150);
}

/// §6.6 #4, and the cases with nothing to migrate.
#[test]
fn nothing_is_migrated_without_bgp_settings_or_past_version_2() {
    let speaker_only = json!({"speaker": {"nodeSelector": {"a": "b"}}});
    assert!(handle(&mc(3, speaker_only.clone()), &none(), &none(), &none()).ops.is_empty());
    assert!(handle(&mc(2, speaker_only), &none(), &none(), &none()).ops.is_empty());
    let bgp = json!({"bgpPeers": [{"peer-address": "192.0.2.1", "peer-asn": 1, "my-asn": 2}]});
    assert!(handle(&mc(3, bgp.clone()), &none(), &none(), &none()).ops.is_empty());
    let layer2 = json!({"addressPools": [{"name": "l2", "protocol": "layer2", "addresses": ["10.0.0.0/30"]}]});
    assert!(handle(&mc(1, layer2), &none(), &none(), &none()).ops.is_empty());
    assert!(handle(&[], &none(), &none(), &none()).ops.is_empty());
    // Version 1 settings migrate like version 2's.
    assert_eq!(created(&handle(&mc(1, bgp), &none(), &none(), &none())).len(), 2);
}

/// Peers only: the configuration names them and advertises nothing yet.
#[test]
fn peers_without_pools_still_give_the_configuration() {
    let out = handle(
        &mc(
            2,
            json!({"bgpPeers": [{"peer-address": "2001:db8::1", "peer-asn": 4_200_000_000u32, "my-asn": 64512, "hold-time": 9}]}),
        ),
        &none(),
        &none(),
        &none(),
    );
    let objects = created(&out);
    assert_eq!(spec(&objects, "MetalLoadBalancerBGPPeer", "peer-0")["holdTime"], "9s");
    assert_eq!(
        spec(&objects, "MetalLoadBalancerConfiguration", "migrated-bgp"),
        &json!({"mode": "BGP", "bgp": {"peerNames": ["peer-0"]}})
    );
}

/// What the original would have sent to the API server to be refused is left out and reported;
/// the rest migrates.
#[test]
fn entries_the_schemas_refuse_are_left_out_and_reported() {
    let out = handle(
        &mc(
            1,
            json!({
            "bgpCommunities": {"far": "70000:1", "bad": 5},
            "bgpPeers": [
                {"peer-address": "192.0.2.1", "peer-asn": 0, "my-asn": 64512},
                {"peer-address": "192.0.2.2", "peer-asn": 64512, "my-asn": 64513, "router-id": "node-a",
                 "peer-port": 0, "hold-time": "1s"},
                {"peer-address": "not-an-ip", "peer-asn": 1, "my-asn": 2}],
            "addressPools": [
                {"protocol": "bgp", "addresses": ["203.0.113.7", "nonsense"],
                 "bgp-advertisements": [{"communities": ["far", "64512:1", "no-export"], "aggregation-length": 200}]},
                {"name": "Bad_Name", "protocol": "bgp", "addresses": ["203.0.113.0/28"]},
                {"name": "empty", "protocol": "bgp", "addresses": ["x"]}]}),
        ),
        &none(),
        &none(),
        &none(),
    );
    let objects = created(&out);
    // The unnamed pool gets `pool-<index>`, its single address a /32.
    assert_eq!(
        spec(&objects, "MetalLoadBalancerPool", "pool-0"),
        &json!({"addresses": ["203.0.113.7/32"]})
    );
    assert!(!objects.contains_key(&("MetalLoadBalancerPool".to_owned(), "Bad_Name".to_owned())));
    assert!(!objects.contains_key(&("MetalLoadBalancerPool".to_owned(), "empty".to_owned())));
    // The peer with ASN 0 and the one without an address are not migrated; the second one
    // keeps what is valid.
    assert_eq!(
        spec(&objects, "MetalLoadBalancerBGPPeer", "peer-1"),
        &json!({"peerAddress": "192.0.2.2", "peerASN": 64512, "myASN": 64513})
    );
    assert_eq!(objects.len(), 3, "{objects:#?}");
    let configuration = spec(&objects, "MetalLoadBalancerConfiguration", "migrated-bgp");
    assert_eq!(configuration["bgp"]["peerNames"], json!(["peer-1"]));
    assert_eq!(
        configuration["advertisements"],
        json!([{"poolNames": ["pool-0"], "bgp": {"communities": ["64512:1", "no-export"]}}])
    );
    let reasons: BTreeSet<(&str, &str)> = out
        .skipped
        .iter()
        .map(|s| (s.reason.label(), s.detail.split(':').next().unwrap()))
        .collect();
    for expected in [
        ("invalid_bgp_peer", "bgpPeers[0]"),
        ("invalid_bgp_peer", "bgpPeers[2]"),
        ("invalid_bgp_peer", "peer-1"),
        ("invalid_pool_entry", "addressPools[0] (pool-0)"),
        ("invalid_pool_entry", "addressPools[2] (empty)"),
        ("invalid_name", "addressPools[1]"),
        ("invalid_community", "pool pool-0"),
        ("wrong_type", "bgpCommunities.bad is not a string"),
        ("wrong_type", "pool pool-0"),
    ] {
        assert!(reasons.contains(&expected), "missing {expected:?} in {reasons:#?}");
    }
    // peer-1 lost three fields, each reported.
    assert_eq!(out.skipped.iter().filter(|s| s.detail.starts_with("peer-1:")).count(), 3);
}

#[test]
fn legacy_hold_times_convert_exactly() {
    let cases = [
        (json!(90), Some(90_000)),
        (json!("0"), Some(0)),
        (json!("90s"), Some(90_000)),
        (json!("1m30s"), Some(90_000)),
        (json!("1h"), Some(3_600_000)),
        (json!("1d2h"), Some(93_600_000)),
        (json!("1500ms"), Some(1500)),
        (json!("1w"), Some(604_800_000)),
        (json!("ten"), None),
        (json!("10x"), None),
        (json!("s"), None),
        (json!(-1), None),
    ];
    for (value, expected) in cases {
        assert_eq!(legacy_hold_time(&value), expected, "{value}");
    }
    for (ms, text) in
        [(90_000, "1m30s"), (3000, "3s"), (0, "0s"), (1500, "1500ms"), (120_000, "2m")]
    {
        assert_eq!(format_duration(ms), text);
        assert_eq!(legacy_hold_time(&json!(text)), Some(ms));
    }
}
