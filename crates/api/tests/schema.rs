//! The generated CRD schemas: structural (as the API server demands), and strict enough to
//! reject bad classes with a message that names the problem.

use std::sync::LazyLock;

use kube::CustomResourceExt;
use metallb_api::{MetalLoadBalancerClass, SDNInternalL2LBService, schema};
use proptest::prelude::*;
use serde_json::{Value, json};

fn class_schema() -> Value {
    let crd = serde_json::to_value(MetalLoadBalancerClass::crd()).unwrap();
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema").unwrap().clone()
}

fn child_schema() -> Value {
    let crd = serde_json::to_value(SDNInternalL2LBService::crd()).unwrap();
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema").unwrap().clone()
}

/// Error messages for `object`, empty when valid.
fn errors(schema: &Value, object: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("the schema compiles");
    validator.iter_errors(object).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

fn class(spec: Value) -> Value {
    json!({
        "apiVersion": "network.deckhouse.io/v1alpha1",
        "kind": "MetalLoadBalancerClass",
        "metadata": {"name": "front"},
        "spec": spec,
    })
}

#[test]
fn valid_classes_are_accepted() {
    let schema = class_schema();
    let specs = [
        json!({"addressPool": ["192.0.2.0/24"]}),
        json!({"type": "L2", "isDefault": true, "addressPool": ["198.51.100.10-198.51.100.20", "2001:db8::/120"],
               "nodeSelector": {"node-role": "front"}, "l2": {"interfaces": ["eth0", "bond0.100"]}}),
        json!({"addressPool": ["2001:db8::10-2001:db8::ff", "203.0.113.7/32", "::/0", "0.0.0.0/0"]}),
    ];
    for spec in specs {
        assert_eq!(errors(&schema, &class(spec.clone())), Vec::<String>::new(), "{spec}");
    }
}

#[test]
fn invalid_classes_are_rejected_naming_the_field() {
    let schema = class_schema();
    let cases = [
        (json!({"addressPool": ["10.0.0.0/33"]}), "/spec/addressPool/0"),
        (json!({"addressPool": ["10.0.0.1-"]}), "/spec/addressPool/0"),
        (json!({"addressPool": ["foo"]}), "/spec/addressPool/0"),
        (json!({"addressPool": ["192.0.2.1-2001:db8::1"]}), "/spec/addressPool/0"),
        (json!({"addressPool": ["256.0.0.0/8"]}), "/spec/addressPool/0"),
        (json!({"addressPool": ["2001:db8::/129"]}), "/spec/addressPool/0"),
        (json!({"addressPool": ["192.0.2.0/24", " 192.0.2.1"]}), "/spec/addressPool/1"),
        (json!({"addressPool": []}), "/spec/addressPool"),
        (json!({}), "/spec"),
        (json!({"type": "BGP", "addressPool": ["192.0.2.0/24"]}), "/spec/type"),
        (
            json!({"addressPool": ["192.0.2.0/24"], "nodeSelector": {"role": 1}}),
            "/spec/nodeSelector/role",
        ),
        (
            json!({"addressPool": ["192.0.2.0/24"], "nodeSelector": {"role": true}}),
            "/spec/nodeSelector/role",
        ),
        (
            json!({"addressPool": ["192.0.2.0/24"], "l2": {"interfaces": ["a/b"]}}),
            "/spec/l2/interfaces/0",
        ),
        (
            json!({"addressPool": ["192.0.2.0/24"], "l2": {"interfaces": ["sixteen-chars-xx"]}}),
            "/spec/l2/interfaces/0",
        ),
        (json!({"addressPool": "192.0.2.0/24"}), "/spec/addressPool"),
    ];
    for (spec, path) in cases {
        let found = errors(&schema, &class(spec.clone()));
        assert!(
            found.iter().any(|e| e.starts_with(&format!("{path}: "))),
            "{spec} must be rejected at {path}; got {found:?}"
        );
    }
}

#[test]
fn the_api_server_message_of_a_bad_pool_entry_explains_the_format() {
    let schema = class_schema();
    let rules = schema
        .pointer("/properties/spec/properties/addressPool/items/x-kubernetes-validations/0")
        .unwrap();
    assert_eq!(rules["message"], schema::POOL_ENTRY_MESSAGE);
    // The CEL rule carries the same pattern as the OpenAPI one, with backslashes escaped for
    // the CEL string literal.
    let rule = rules["rule"].as_str().unwrap();
    let pattern = schema::pool_entry_pattern();
    assert_eq!(rule, format!("self.matches('{}')", pattern.replace('\\', "\\\\")));
}

/// Keys that must not appear in a value-validation subtree (`anyOf` and friends) of a
/// structural schema.
const FORBIDDEN_IN_JUNCTORS: [&str; 5] =
    ["type", "description", "default", "nullable", "additionalProperties"];

/// Asserts the rules of a structural schema the API server enforces on CRDs: every node has a
/// `type` (or an int-or-string / preserve-unknown marker), no `$ref`, no type information inside
/// `anyOf`/`allOf`/`oneOf`/`not`, and `properties` never beside `additionalProperties`.
fn assert_structural(schema: &Value, path: &str) {
    let obj = schema.as_object().unwrap_or_else(|| panic!("{path}: not an object"));
    assert!(!obj.contains_key("$ref"), "{path}: $ref is not allowed");
    let typed = obj.contains_key("type")
        || obj.contains_key("x-kubernetes-int-or-string")
        || obj.contains_key("x-kubernetes-preserve-unknown-fields");
    assert!(typed, "{path}: no type");
    assert!(
        !(obj.contains_key("properties") && obj.contains_key("additionalProperties")),
        "{path}: properties beside additionalProperties"
    );
    for junctor in ["anyOf", "allOf", "oneOf", "not"] {
        if let Some(sub) = obj.get(junctor) {
            let text = sub.to_string();
            for key in FORBIDDEN_IN_JUNCTORS {
                assert!(
                    !text.contains(&format!("\"{key}\"")),
                    "{path}.{junctor}: `{key}` not allowed"
                );
            }
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            assert_structural(sub, &format!("{path}.{name}"));
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get(key).filter(|s| s.is_object()) {
            assert_structural(sub, &format!("{path}.{key}"));
        }
    }
}

#[test]
fn schemas_are_structural() {
    assert_structural(&class_schema(), "MetalLoadBalancerClass");
    assert_structural(&child_schema(), "SDNInternalL2LBService");
}

#[test]
fn a_child_of_the_previous_implementation_is_valid() {
    let previous = json!({
        "apiVersion": "internal.network.deckhouse.io/v1alpha1",
        "kind": "SDNInternalL2LBService",
        "metadata": {"name": "nginx-front-0", "namespace": "web",
                     "annotations": {"metallb.io/preferredL2SpeakerNode": "front-1"}},
        "spec": {
            "serviceRef": {"name": "nginx", "namespace": "web"},
            "type": "LoadBalancer",
            "loadBalancerClass": "l2-load-balancer-class.network.deckhouse.io",
            "clusterIP": "10.222.1.2",
            "externalTrafficPolicy": "Cluster",
            "internalTrafficPolicy": "Cluster",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": "nginx"},
            "publishNotReadyAddresses": false
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
    });
    assert_eq!(errors(&child_schema(), &previous), Vec::<String>::new());
    let child: SDNInternalL2LBService = serde_json::from_value(previous).unwrap();
    assert_eq!(child.spec.service_ref.name, "nginx");
    assert_eq!(child.spec.service.cluster_ip.as_deref(), Some("10.222.1.2"));
}

fn matches_pool_pattern(entry: &str) -> bool {
    static ITEM: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
        let item = json!({"type": "string", "pattern": schema::pool_entry_pattern()});
        jsonschema::validator_for(&item).expect("the pattern compiles")
    });
    ITEM.is_valid(&json!(entry))
}

/// IPv6 addresses Rust prints with an embedded IPv4 part (`::ffff:1.2.3.4`); the pattern
/// deliberately has no such form.
fn has_embedded_ipv4(address: &std::net::Ipv6Addr) -> bool {
    address.to_string().contains('.')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ipv4_cidrs_match_exactly_when_the_prefix_is_valid(ip: std::net::Ipv4Addr, prefix in 0u8..40) {
        let entry = format!("{ip}/{prefix}");
        prop_assert_eq!(matches_pool_pattern(&entry), prefix <= 32);
    }

    #[test]
    fn ipv6_cidrs_match_exactly_when_the_prefix_is_valid(ip: std::net::Ipv6Addr, prefix in 0u8..140) {
        prop_assume!(!has_embedded_ipv4(&ip));
        let entry = format!("{ip}/{prefix}");
        prop_assert_eq!(matches_pool_pattern(&entry), prefix <= 128);
    }

    #[test]
    fn ranges_match_only_within_one_family(a: std::net::Ipv4Addr, b: std::net::Ipv4Addr, c: std::net::Ipv6Addr) {
        prop_assume!(!has_embedded_ipv4(&c));
        let (same_v4, same_v6) = (format!("{a}-{b}"), format!("{c}-{c}"));
        let (mixed, mixed_back) = (format!("{a}-{c}"), format!("{c}-{a}"));
        prop_assert!(matches_pool_pattern(&same_v4));
        prop_assert!(matches_pool_pattern(&same_v6));
        prop_assert!(!matches_pool_pattern(&mixed));
        prop_assert!(!matches_pool_pattern(&mixed_back));
    }

    /// Whatever the pattern accepts, Rust's address parser accepts too, so the planner can
    /// parse every entry the API server lets through.
    #[test]
    fn accepted_entries_parse(entry in "[0-9a-f:./-]{1,30}") {
        if matches_pool_pattern(&entry) {
            let parsed = match entry.split_once('/') {
                Some((ip, prefix)) => ip.parse::<std::net::IpAddr>().is_ok() && prefix.parse::<u8>().is_ok(),
                None => entry.split_once('-').is_some_and(|(a, b)| {
                    a.parse::<std::net::IpAddr>().is_ok() && b.parse::<std::net::IpAddr>().is_ok()
                }),
            };
            prop_assert!(parsed, "{} matched but does not parse", entry);
        }
    }
}
