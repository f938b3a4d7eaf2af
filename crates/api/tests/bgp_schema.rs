//! The generated BGP CRD schemas: structural, and strict where a schema can see the problem
//! (addresses, ASNs, hold time, communities, BFD bounds, the mode), naming the field.

use std::sync::LazyLock;

use kube::CustomResourceExt;
use metallb_api::{
    MetalLoadBalancerBGPPeer, MetalLoadBalancerConfiguration, MetalLoadBalancerPool,
    SDNInternalBGPAnnouncement, schema,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn schema_of(crd: impl serde::Serialize) -> Value {
    let crd = serde_json::to_value(crd).unwrap();
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema").unwrap().clone()
}

fn errors(schema: &Value, object: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("the schema compiles");
    validator.iter_errors(object).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

fn object(kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "network.deckhouse.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    })
}

/// Checks every `(spec, path)`: valid when `path` is `None`, else rejected at `path`.
fn check(schema: &Value, kind: &str, cases: &[(Value, Option<&str>)]) {
    for (spec, path) in cases {
        let found = errors(schema, &object(kind, spec.clone()));
        match path {
            None => assert_eq!(found, Vec::<String>::new(), "{kind} {spec} must be valid"),
            Some(path) => assert!(
                found.iter().any(|e| e.starts_with(&format!("{path}: "))),
                "{kind} {spec} must be rejected at {path}; got {found:?}"
            ),
        }
    }
}

#[test]
fn pools_are_validated() {
    let schema = schema_of(MetalLoadBalancerPool::crd());
    check(
        &schema,
        "MetalLoadBalancerPool",
        &[
            (json!({"addresses": ["203.0.113.0/24"]}), None),
            (
                json!({"addresses": ["203.0.113.10-203.0.113.20", "2001:db8::/120"],
                       "autoAssign": false, "avoidBuggyIPs": true}),
                None,
            ),
            (json!({"addresses": []}), Some("/spec/addresses")),
            (json!({}), Some("/spec")),
            (json!({"addresses": ["203.0.113.0/33"]}), Some("/spec/addresses/0")),
            (
                json!({"addresses": ["192.168.101.0/24-192.168.105.0/24"]}),
                Some("/spec/addresses/0"),
            ),
            (
                json!({"addresses": ["203.0.113.0/24"], "autoAssign": "yes"}),
                Some("/spec/autoAssign"),
            ),
        ],
    );
}

#[test]
fn peers_are_validated() {
    let schema = schema_of(MetalLoadBalancerBGPPeer::crd());
    let base = json!({"peerAddress": "192.0.2.1", "peerASN": 64512, "myASN": 64513});
    let with = |extra: Value| {
        let mut spec = base.clone();
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        spec
    };
    check(
        &schema,
        "MetalLoadBalancerBGPPeer",
        &[
            (base.clone(), None),
            (
                with(
                    json!({"peerAddress": "2001:db8::1", "peerPort": 1179, "peerASN": 4_200_000_000u32,
                            "routerID": "192.0.2.254", "holdTime": "1m30s",
                            "passwordSecretRef": {"name": "tor", "namespace": "d8-system"},
                            "sourceAddresses": [{"nodeName": "front-0", "address": "192.0.2.10"}],
                            "bfd": {"receiveInterval": 100, "transmitInterval": 100, "detectMultiplier": 3,
                                    "echoMode": false, "passiveMode": true, "minimumTTL": 254}}),
                ),
                None,
            ),
            (with(json!({"holdTime": "0s"})), None),
            (with(json!({"holdTime": "500ms"})), None),
            (json!({"peerASN": 1, "myASN": 2}), Some("/spec")),
            (with(json!({"peerAddress": "192.0.2.1/24"})), Some("/spec/peerAddress")),
            (with(json!({"peerAddress": "router"})), Some("/spec/peerAddress")),
            (with(json!({"peerASN": 0})), Some("/spec/peerASN")),
            (with(json!({"peerASN": 4_294_967_296u64})), Some("/spec/peerASN")),
            (with(json!({"myASN": "as2222"})), Some("/spec/myASN")),
            (with(json!({"peerPort": 0})), Some("/spec/peerPort")),
            (with(json!({"peerPort": 65536})), Some("/spec/peerPort")),
            (with(json!({"routerID": "2001:db8::1"})), Some("/spec/routerID")),
            (with(json!({"holdTime": "90"})), Some("/spec/holdTime")),
            (with(json!({"holdTime": "10 seconds"})), Some("/spec/holdTime")),
            (with(json!({"passwordSecretRef": {"name": "tor"}})), Some("/spec/passwordSecretRef")),
            (
                with(json!({"sourceAddresses": [{"nodeName": "a", "address": "node-a"}]})),
                Some("/spec/sourceAddresses/0/address"),
            ),
            (with(json!({"bfd": {"receiveInterval": 5}})), Some("/spec/bfd/receiveInterval")),
            (with(json!({"bfd": {"detectMultiplier": 1}})), Some("/spec/bfd/detectMultiplier")),
            (with(json!({"bfd": {"minimumTTL": 255}})), Some("/spec/bfd/minimumTTL")),
        ],
    );
}

#[test]
fn the_hold_time_rule_keeps_the_rfc_minimum() {
    let schema = schema_of(MetalLoadBalancerBGPPeer::crd());
    let rule =
        schema.pointer("/properties/spec/properties/holdTime/x-kubernetes-validations/0").unwrap();
    assert_eq!(rule["message"], schema::HOLD_TIME_MESSAGE);
    assert!(rule["rule"].as_str().unwrap().contains("duration('3s')"));
}

#[test]
fn configurations_are_validated() {
    let schema = schema_of(MetalLoadBalancerConfiguration::crd());
    let adv = |bgp: Value| json!({"mode": "BGP", "advertisements": [{"poolNames": ["public"], "bgp": bgp}]});
    check(
        &schema,
        "MetalLoadBalancerConfiguration",
        &[
            (json!({"mode": "BGP"}), None),
            (
                json!({"mode": "BGP", "nodeSelector": {"node-role.deckhouse.io/frontend": ""},
                       "bgp": {"peerNames": ["tor-a", "tor-b"]},
                       "advertisements": [{"poolNames": ["public"]}]}),
                None,
            ),
            (
                adv(
                    json!({"communities": ["65535:65282", "no-export", "no-advertise", "local-as", "none",
                                           "0:0", "large:4200000000:1:4294967295"],
                           "localPref": 4_294_967_295u32, "aggregationLength": 24}),
                ),
                None,
            ),
            (json!({}), Some("/spec")),
            (json!({"mode": "L2"}), Some("/spec/mode")),
            (json!({"mode": "BGP", "nodeSelector": {"role": 1}}), Some("/spec/nodeSelector/role")),
            (json!({"mode": "BGP", "advertisements": [{}]}), Some("/spec/advertisements/0")),
            (
                json!({"mode": "BGP", "advertisements": [{"poolNames": []}]}),
                Some("/spec/advertisements/0/poolNames"),
            ),
            (
                adv(json!({"communities": ["65536:1"]})),
                Some("/spec/advertisements/0/bgp/communities/0"),
            ),
            (
                adv(json!({"communities": ["1:65536"]})),
                Some("/spec/advertisements/0/bgp/communities/0"),
            ),
            (
                adv(json!({"communities": ["no-export-please"]})),
                Some("/spec/advertisements/0/bgp/communities/0"),
            ),
            (
                adv(json!({"communities": ["large:1:2"]})),
                Some("/spec/advertisements/0/bgp/communities/0"),
            ),
            (
                adv(json!({"communities": ["large:4294967296:0:0"]})),
                Some("/spec/advertisements/0/bgp/communities/0"),
            ),
            (
                adv(json!({"communities": ["01:1"]})),
                Some("/spec/advertisements/0/bgp/communities/0"),
            ),
            (adv(json!({"localPref": -1})), Some("/spec/advertisements/0/bgp/localPref")),
            (
                adv(json!({"aggregationLength": 129})),
                Some("/spec/advertisements/0/bgp/aggregationLength"),
            ),
        ],
    );
}

#[test]
fn announcements_are_validated() {
    let schema = schema_of(SDNInternalBGPAnnouncement::crd());
    let valid = json!({
        "apiVersion": "internal.network.deckhouse.io/v1alpha1",
        "kind": "SDNInternalBGPAnnouncement",
        "metadata": {"name": "nginx-bgp-0", "namespace": "web"},
        "spec": {
            "serviceRef": {"name": "nginx", "namespace": "web"},
            "pool": "public",
            "ip": "203.0.113.10",
            "routes": [{"configuration": "rack-a", "advertisement": 0, "prefix": "203.0.113.10/32",
                        "communities": ["65535:65281"], "largeCommunities": ["64512:1:2"], "localPref": 100,
                        "peers": ["tor-a"], "nodes": ["front-0", "front-1"]}]
        }
    });
    assert_eq!(errors(&schema, &valid), Vec::<String>::new());
    let mut bad = valid.clone();
    bad["spec"]["ip"] = json!("nginx");
    assert!(errors(&schema, &bad).iter().any(|e| e.starts_with("/spec/ip: ")));
}

#[test]
fn bgp_schemas_are_structural() {
    for (kind, schema) in [
        ("MetalLoadBalancerPool", schema_of(MetalLoadBalancerPool::crd())),
        ("MetalLoadBalancerBGPPeer", schema_of(MetalLoadBalancerBGPPeer::crd())),
        ("MetalLoadBalancerConfiguration", schema_of(MetalLoadBalancerConfiguration::crd())),
        ("SDNInternalBGPAnnouncement", schema_of(SDNInternalBGPAnnouncement::crd())),
    ] {
        assert_structural(&schema, kind);
    }
}

/// The rules of a structural schema the API server enforces: a type on every node, no `$ref`,
/// and `properties` never beside `additionalProperties`.
fn assert_structural(schema: &Value, path: &str) {
    let obj = schema.as_object().unwrap_or_else(|| panic!("{path}: not an object"));
    assert!(!obj.contains_key("$ref"), "{path}: $ref is not allowed");
    assert!(obj.contains_key("type"), "{path}: no type");
    assert!(
        !(obj.contains_key("properties") && obj.contains_key("additionalProperties")),
        "{path}: properties beside additionalProperties"
    );
    for sub in obj.get("properties").and_then(Value::as_object).into_iter().flat_map(|p| p.iter()) {
        assert_structural(sub.1, &format!("{path}.{}", sub.0));
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get(key).filter(|s| s.is_object()) {
            assert_structural(sub, &format!("{path}.{key}"));
        }
    }
}

fn is_community(text: &str) -> bool {
    static ITEM: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
        let item = json!({"type": "string", "pattern": schema::community_pattern()});
        jsonschema::validator_for(&item).expect("the pattern compiles")
    });
    ITEM.is_valid(&json!(text))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The standard-community pattern accepts exactly two decimal 16-bit numbers.
    #[test]
    fn standard_communities_match_exactly_the_16_bit_range(a in 0u32..140_000, b in 0u32..140_000) {
        prop_assert_eq!(is_community(&format!("{a}:{b}")), a <= 65535 && b <= 65535);
    }

    /// The large-community pattern accepts exactly three decimal 32-bit numbers.
    #[test]
    fn large_communities_match_exactly_the_32_bit_range(a in 0u64..9_000_000_000, b: u32, c in 0u64..5_000_000_000) {
        let max = u64::from(u32::MAX);
        prop_assert_eq!(is_community(&format!("large:{a}:{b}:{c}")), a <= max && c <= max);
    }
}
