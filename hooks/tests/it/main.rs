//! The real `metallb-hooks` binary under the test kit's framework emulation: scenarios from the
//! seed cluster (three front nodes, one worker, a class, a Service asking for three IPs) and its
//! variations, each run until quiet, then checked for "a second run changes nothing".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};
use testkit::{Framework, Scenario};

mod bgp;
mod bgp_serving;
mod failback;
mod foreign_conditions;
mod refused;
mod upgrade;

const BIN: &str = env!("CARGO_BIN_EXE_metallb-hooks");
const MODULE: &str = "metallb";
const CHILD: &str = "SDNInternalL2LBService";
const CHILD_API: &str = "internal.network.deckhouse.io/v1alpha1";
const CLASS: &str = "MetalLoadBalancerClass";
const MEMBER: &str = "l2-load-balancer.network.deckhouse.io/member";

fn openapi() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi"))
}

fn seed() -> Scenario {
    Scenario::from_yaml(include_str!("scenarios/seed.yaml")).unwrap()
}

/// A framework over the seed scenario, not started; `edit` changes the cluster first.
fn framework(edit: impl FnOnce(&mut Scenario)) -> Result<Framework> {
    let mut s = seed();
    edit(&mut s);
    Ok(s.framework(BIN, MODULE, Some(openapi()))?)
}

fn started(edit: impl FnOnce(&mut Scenario)) -> Result<Framework> {
    let mut fw = framework(edit)?;
    fw.start()?;
    Ok(fw)
}

/// Removes the seed objects of `kind` named `name`.
fn without(s: &mut Scenario, kind: &str, name: &str) {
    s.cluster.retain(|o| !(o["kind"] == kind && o["metadata"]["name"] == name));
}

/// `name → (ip, node)` of every child in `namespace`.
fn children(fw: &Framework, namespace: &str) -> BTreeMap<String, (Option<String>, Option<String>)> {
    fw.cluster()
        .objects()
        .filter(|(k, _)| k.kind == CHILD && k.namespace == namespace)
        .map(|(k, o)| {
            let s = |p: &str| o.pointer(p).and_then(Value::as_str).map(str::to_owned);
            (k.name.clone(), (s("/status/ip"), s("/status/node")))
        })
        .collect()
}

fn get<'a>(fw: &'a Framework, kind: &str, namespace: &str, name: &str) -> &'a Value {
    fw.cluster().get(None, kind, namespace, name).unwrap_or_else(|| panic!("{kind} {name}"))
}

fn ingress(fw: &Framework, namespace: &str, name: &str) -> Vec<String> {
    get(fw, "Service", namespace, name)
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|i| i["ip"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn condition<'a>(fw: &'a Framework, namespace: &str, name: &str, type_: &str) -> &'a Value {
    get(fw, "Service", namespace, name)
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("condition {type_} of {namespace}/{name}"))
}

fn members(fw: &Framework) -> BTreeSet<String> {
    fw.cluster()
        .objects()
        .filter(|(k, o)| {
            k.kind == "Node"
                && o.pointer("/metadata/labels").is_some_and(|l| l.get(MEMBER).is_some())
        })
        .map(|(k, _)| k.name.clone())
        .collect()
}

/// A whole module run (every beforeHelm and afterHelm hook) and the events it causes emit no
/// Kubernetes operation and change no value.
fn assert_second_run_is_a_no_op(fw: &mut Framework) -> Result<()> {
    let before = fw.runs().len();
    fw.module_run()?;
    fw.run_until_quiet()?;
    let runs = &fw.runs()[before..];
    assert!(runs.len() >= 5, "every beforeHelm/afterHelm hook ran: {}", runs.len());
    for r in runs {
        assert!(r.kubernetes.is_empty(), "{} emitted {:?}", r.hook, r.kubernetes);
        assert!(!r.values_changed, "{} changed values: {:?}", r.hook, r.values_patch);
    }
    Ok(())
}

fn seed_service_children() -> [&'static str; 3] {
    ["web-front-0", "web-front-1", "web-front-2"]
}

#[test]
fn seed_scenario_converges_with_three_ips_on_three_front_nodes() -> Result<()> {
    let mut fw = seed().run(BIN, MODULE, Some(openapi()))?;
    let kids = children(&fw, "web");
    assert_eq!(kids.keys().map(String::as_str).collect::<Vec<_>>(), seed_service_children());
    let nodes: BTreeSet<String> = kids.values().filter_map(|(_, n)| n.clone()).collect();
    assert_eq!(nodes, ["front-0", "front-1", "front-2"].map(String::from).into());
    let c = condition(&fw, "web", "web", "AllPublicIPsAssigned");
    assert_eq!(
        (&c["status"], &c["message"]),
        (&json!("True"), &json!("3 of 3 public IPs were assigned"))
    );
    let c = condition(&fw, "web", "web", "network.deckhouse.io/load-balancer-class");
    assert_eq!((&c["status"], &c["message"]), (&json!("True"), &json!("front")));
    assert!(c["lastTransitionTime"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(members(&fw), ["front-0", "front-1", "front-2"].map(String::from).into());
    let child = get(&fw, CHILD, "web", "web-front-0");
    assert_eq!(
        child["metadata"]["ownerReferences"][0],
        json!({"apiVersion": "v1", "kind": "Service", "name": "web",
               "uid": get(&fw, "Service", "web", "web")["metadata"]["uid"],
               "controller": true, "blockOwnerDeletion": true})
    );
    let backups = child.pointer("/status/backupNodes").and_then(Value::as_array).unwrap();
    assert_eq!(backups.len(), 2, "the two other front nodes back it up");
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn empty_cluster_converges_and_is_quiet() -> Result<()> {
    let mut fw = started(|s| {
        s.cluster.retain(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == "d8-metallb");
        s.expect = Default::default();
    })?;
    assert_eq!(fw.value("internal.l2loadbalancers"), Some(&json!([])));
    assert!(fw.cluster().get(None, "Secret", "d8-metallb", "l2lb-speaker-gossip-key").is_some());
    assert!(members(&fw).is_empty());
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn node_going_not_ready_moves_only_its_child() -> Result<()> {
    let mut fw = started(|_| {})?;
    let before = children(&fw, "web");
    let (victim, _) = before.iter().find(|(_, (_, n))| n.as_deref() == Some("front-1")).unwrap();
    let victim = victim.clone();
    let node = fw.cluster().get(None, "Node", "", "front-1").unwrap().clone();
    let mut node = node;
    node["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    fw.cluster_mut().insert(node)?;
    fw.run_until_quiet()?;
    let after = children(&fw, "web");
    for (name, (ip, n)) in &after {
        assert_eq!(ip, &before[name].0, "{name} keeps its IP");
        if *name == victim {
            assert!(n.is_some() && n.as_deref() != Some("front-1"), "{name} moved: {n:?}");
        } else {
            assert_eq!(n, &before[name].1, "{name} stays on its node");
        }
    }
    assert_eq!(ingress(&fw, "web", "web").len(), 3);
    let backups = get(&fw, CHILD, "web", &victim)["status"]["backupNodes"].clone();
    assert!(!backups.to_string().contains("front-1"), "a NotReady node is no backup: {backups}");
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn class_deleted_removes_children_labels_and_reports_on_the_service() -> Result<()> {
    let mut fw = started(|s| {
        let mut annotated = s.cluster.iter().find(|o| o["kind"] == "Service").unwrap().clone();
        annotated["metadata"]["name"] = json!("annotated");
        annotated["metadata"]["annotations"] =
            json!({"network.deckhouse.io/metal-load-balancer-class": "front"});
        annotated["spec"].as_object_mut().unwrap().remove("loadBalancerClass");
        s.cluster.push(annotated);
        s.expect = Default::default();
    })?;
    assert_eq!(ingress(&fw, "web", "annotated").len(), 1);
    fw.cluster_mut().remove(None, CLASS, "", "front")?;
    fw.run_until_quiet()?;
    fw.module_run()?;
    fw.run_until_quiet()?;
    assert!(children(&fw, "web").is_empty());
    assert!(members(&fw).is_empty());
    // Bound through the annotation: our status is cleared and says why.
    assert!(ingress(&fw, "web", "annotated").is_empty());
    let c = condition(&fw, "web", "annotated", "network.deckhouse.io/load-balancer-class");
    assert_eq!(
        (&c["status"], &c["reason"]),
        (&json!("False"), &json!("LoadBalancerClassNotFound"))
    );
    // `spec.loadBalancerClass: front` now names no class, i.e. another controller's class: what
    // we wrote goes (no IP is announced any more), then it is never touched again.
    assert!(ingress(&fw, "web", "web").is_empty());
    let conditions = &get(&fw, "Service", "web", "web")["status"];
    assert!(conditions.get("conditions").is_none(), "our conditions removed: {conditions}");
    assert_eq!(fw.value("internal.l2loadbalancers"), Some(&json!([])));
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn service_deleted_or_no_longer_a_load_balancer_loses_its_children() -> Result<()> {
    let mut fw = started(|s| {
        let mut other = s.cluster.iter().find(|o| o["kind"] == "Service").unwrap().clone();
        other["metadata"]["name"] = json!("api");
        other["metadata"]["annotations"] = json!({});
        s.cluster.push(other);
    })?;
    assert_eq!(children(&fw, "web").len(), 4);
    fw.cluster_mut().remove(None, "Service", "web", "web")?;
    let mut api = get(&fw, "Service", "web", "api").clone();
    api["spec"]["type"] = json!("ClusterIP");
    fw.cluster_mut().insert(api)?;
    fw.run_until_quiet()?;
    assert!(children(&fw, "web").is_empty());
    let class = get(&fw, CLASS, "", "front");
    assert_eq!(class["status"]["allocated"], 0);
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn pool_exhaustion_is_reported_and_recovers_when_the_pool_grows() -> Result<()> {
    let small = |s: &mut Scenario| {
        for o in &mut s.cluster {
            if o["kind"] == CLASS {
                o["spec"]["addressPool"] = json!(["198.51.100.10-198.51.100.11"]);
            }
        }
        s.expect = Default::default();
    };
    let mut fw = started(small)?;
    let kids = children(&fw, "web");
    assert_eq!(kids.values().filter(|(ip, _)| ip.is_some()).count(), 2);
    assert!(kids["web-front-2"].0.is_none());
    let c = condition(&fw, "web", "web", "AllPublicIPsAssigned");
    assert_eq!(c["status"], "False");
    assert!(c["message"].as_str().unwrap().starts_with("2 of 3 public IPs were assigned"), "{c}");
    let labels = [("class", "front")];
    assert_eq!(
        fw.metrics().value("d8_metallb_class_services_not_fully_assigned", &labels),
        Some(1.0)
    );
    assert_eq!(
        fw.metrics()
            .value("d8_metallb_service_unassigned_ips", &[("namespace", "web"), ("name", "web")]),
        Some(1.0)
    );
    assert_second_run_is_a_no_op(&mut fw)?;

    let mut class = get(&fw, CLASS, "", "front").clone();
    class["spec"]["addressPool"] = json!(["198.51.100.10-198.51.100.20"]);
    fw.cluster_mut().insert(class)?;
    fw.run_until_quiet()?;
    assert_eq!(ingress(&fw, "web", "web"), ["198.51.100.10", "198.51.100.11", "198.51.100.12"]);
    assert_eq!(condition(&fw, "web", "web", "AllPublicIPsAssigned")["status"], "True");
    assert_eq!(fw.metrics().value("d8_metallb_service_unassigned_ips", &[("name", "web")]), None);
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn speaker_readiness_filters_only_when_some_speaker_is_ready() -> Result<()> {
    let speaker = |node: &str, ready: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": format!("speaker-{node}"), "namespace": "d8-metallb", "labels": {"app": "l2lb-speaker"}},
               "spec": {"nodeName": node},
               "status": {"conditions": [{"type": "Ready", "status": ready}]}})
    };
    // front-1's speaker is not ready, the others are: front-1 announces nothing.
    let mut fw = started(|s| {
        s.cluster.push(speaker("front-0", "True"));
        s.cluster.push(speaker("front-1", "False"));
        s.cluster.push(speaker("front-2", "True"));
        s.expect = Default::default();
    })?;
    let nodes: Vec<Option<String>> = children(&fw, "web").into_values().map(|(_, n)| n).collect();
    assert!(!nodes.contains(&Some("front-1".into())), "{nodes:?}");
    assert!(nodes.iter().all(Option::is_some));
    assert_second_run_is_a_no_op(&mut fw)?;
    // No speaker ready at all (a DaemonSet rollout): readiness is unknown and filters nothing.
    let mut fw = started(|s| {
        s.cluster.push(speaker("front-0", "False"));
        s.expect = Default::default();
    })?;
    let nodes: BTreeSet<Option<String>> =
        children(&fw, "web").into_values().map(|(_, n)| n).collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn external_traffic_policy_local_uses_nodes_with_ready_endpoints() -> Result<()> {
    let mut fw = started(|s| {
        for o in &mut s.cluster {
            if o["kind"] == "Service" {
                o["spec"]["externalTrafficPolicy"] = json!("Local");
                o["metadata"]["annotations"] =
                    json!({"network.deckhouse.io/l2-load-balancer-external-ips-count": "1"});
            }
        }
        s.cluster.push(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "web", "labels": {"kubernetes.io/service-name": "web"}},
            "endpoints": [
                {"addresses": ["10.0.0.1"], "nodeName": "front-2", "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "nodeName": "front-0", "conditions": {"ready": false}}]}));
        s.expect = Default::default();
    })?;
    assert_eq!(children(&fw, "web")["web-front-0"].1.as_deref(), Some("front-2"));
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn bad_objects_are_skipped_and_reported_never_fatal() -> Result<()> {
    let long = "s".repeat(63);
    let mut fw = started(|s| {
        s.cluster.extend([
            // A class with wrong types: skipped as a whole, counted.
            json!({"apiVersion": "network.deckhouse.io/v1alpha1", "kind": CLASS,
                   "metadata": {"name": "broken"}, "spec": {"addressPool": "10.0.0.0/24", "isDefault": "yes"}}),
            // A class with invalid pool entries and a long dotted name: its valid entry is used.
            json!({"apiVersion": "network.deckhouse.io/v1alpha1", "kind": CLASS,
                   "metadata": {"name": format!("very.long.class.name.{}", "c".repeat(50))},
                   "spec": {"addressPool": ["garbage", "203.0.113.8/30", "10.0.0.9-10.0.0.1"]}}),
            // Absurd annotations: count not a number, requested IPs outside the pool or invalid.
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "odd", "namespace": "web", "annotations": {
                       "network.deckhouse.io/l2-load-balancer-external-ips-count": "abc",
                       "network.deckhouse.io/load-balancer-ips": "not-an-ip,1.2.3.4",
                       "network.deckhouse.io/metal-load-balancer-class": "nope"}},
                   "spec": {"type": "LoadBalancer", "loadBalancerClass": "front", "ports": [{"port": 53, "protocol": "UDP"}]}}),
            // A Service with ports of the wrong type: skipped.
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "badports", "namespace": "web"},
                   "spec": {"type": "LoadBalancer", "loadBalancerClass": "front", "ports": "80"}}),
            // A long Service name with the long class: the child name is still a DNS label.
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": long, "namespace": "web"},
                   "spec": {"type": "LoadBalancer", "loadBalancerClass": format!("very.long.class.name.{}", "c".repeat(50))}}),
            // A foreign Service: never touched.
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "foreign", "namespace": "web"},
                   "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/other"}}),
            // A child of nobody, not labelled ours: never deleted. And one without serviceRef.
            json!({"apiVersion": CHILD_API, "kind": CHILD,
                   "metadata": {"name": "stray", "namespace": "web"},
                   "spec": {"serviceRef": {"name": "gone"}}}),
            json!({"apiVersion": CHILD_API, "kind": CHILD,
                   "metadata": {"name": "noref", "namespace": "web", "labels": {"heritage": "deckhouse", "module": "metallb"}},
                   "spec": {}}),
        ]);
        s.expect = Default::default();
    })?;
    let skipped = |kind: &str, name: &str, reason: &str| {
        fw.metrics().value(
            "d8_metallb_skipped_objects",
            &[("kind", kind), ("name", name), ("reason", reason)],
        )
    };
    assert_eq!(skipped(CLASS, "broken", "wrong_type"), Some(1.0));
    assert_eq!(skipped("Service", "badports", "wrong_type"), Some(1.0));
    assert_eq!(skipped(CHILD, "stray", "foreign_child"), Some(1.0));
    assert_eq!(skipped(CHILD, "noref", "missing_service_ref"), Some(1.0));
    assert!(fw.cluster().get(None, CHILD, "web", "stray").is_some());
    assert!(fw.cluster().get(None, CHILD, "web", "noref").is_some());
    let valid = condition(&fw, "web", "odd", "AnnotationsValid");
    assert_eq!(valid["status"], "False", "{valid}");
    assert_eq!(children(&fw, "web").keys().filter(|k| k.starts_with("odd-")).count(), 1);
    assert!(
        get(&fw, "Service", "web", "foreign")
            .get("status")
            .is_none_or(|s| s.get("conditions").is_none())
    );
    for (k, o) in fw.cluster().objects().filter(|(k, _)| k.kind == CHILD) {
        let n = &k.name;
        assert!(
            n.len() <= 63
                && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{n}"
        );
        for (key, v) in o["metadata"]["labels"].as_object().into_iter().flatten() {
            assert!(v.as_str().is_some_and(|v| v.len() <= 63), "label {key}={v} of {n}");
        }
        if let Some(ip) = o.pointer("/spec/desiredIP") {
            assert!(ip.as_str().unwrap().parse::<std::net::IpAddr>().is_ok(), "{ip}");
        }
    }
    let long_child = children(&fw, "web").into_iter().find(|(k, _)| k.starts_with("sss")).unwrap();
    assert_eq!(long_child.1.0.as_deref(), Some("203.0.113.8"));
    assert_second_run_is_a_no_op(&mut fw)
}

/// A version 1 ModuleConfig with `layer2` pools and MetalLB objects, Services classic MetalLB
/// served: after the migration every Service has the same IPs.
#[test]
fn v1_migration_keeps_every_public_ip() -> Result<()> {
    let yaml = r#"
cluster:
  - apiVersion: metallb.io/v1beta1
    kind: L2Advertisement
    metadata: {name: zone-a, namespace: d8-metallb}
    spec:
      ipAddressPools: [pool-a]
      interfaces: [eth1]
      nodeSelectors: [{matchLabels: {node-role.deckhouse.io/frontend: ""}}]
  - apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: pool-a, namespace: d8-metallb}
    spec: {addresses: [192.0.2.0/28]}
  - apiVersion: v1
    kind: Service
    metadata:
      name: old-default
      namespace: web
      finalizers: [service.kubernetes.io/load-balancer-cleanup, example.com/keep]
      annotations: {metallb.universe.tf/address-pool: frontend-pool}
    spec: {type: LoadBalancer, ports: [{port: 443, protocol: TCP}]}
    status: {loadBalancer: {ingress: [{ip: 198.51.100.7}]}}
  - apiVersion: v1
    kind: Service
    metadata:
      name: old-zone
      namespace: web
      finalizers: [service.kubernetes.io/load-balancer-cleanup]
      annotations: {metallb.io/ip-allocated-from-pool: pool-a}
    spec: {type: LoadBalancer, ports: [{port: 443, protocol: TCP}]}
    status: {loadBalancer: {ingress: [{ip: 192.0.2.9}]}}
  - apiVersion: v1
    kind: Service
    metadata: {name: new, namespace: web}
    spec: {type: LoadBalancer, ports: [{port: 80, protocol: TCP}]}
"#;
    let extra = Scenario::from_yaml(yaml)?;
    let mut s = seed();
    without(&mut s, CLASS, "front");
    without(&mut s, "Service", "web");
    s.cluster.extend(extra.cluster);
    s.module_config = Some(json!({
        "apiVersion": "deckhouse.io/v1alpha1", "kind": "ModuleConfig", "metadata": {"name": "metallb"},
        "spec": {"enabled": true, "version": 1, "settings": {
            "speaker": {"nodeSelector": {"node-role.deckhouse.io/frontend": ""}},
            "addressPools": [{"name": "frontend-pool", "protocol": "layer2",
                              "addresses": ["198.51.100.0/28", "198.51.100.100"]}]}}}));
    s.expect = Default::default();
    let mut fw = s.framework(BIN, MODULE, Some(openapi()))?;
    // The platform hands hooks the settings converted to version 2 (openapi/conversions).
    fw.set_config_values(json!({}));
    fw.set_values(json!({}));
    fw.start()?;

    assert_eq!(ingress(&fw, "web", "old-default"), ["198.51.100.7"]);
    assert_eq!(ingress(&fw, "web", "old-zone"), ["192.0.2.9"]);
    assert_eq!(
        ingress(&fw, "web", "new"),
        ["198.51.100.0"],
        "a new Service gets the lowest free IP"
    );
    let default = get(&fw, CLASS, "", "l2-default");
    assert_eq!(default["spec"]["addressPool"], json!(["198.51.100.0/28", "198.51.100.100/32"]));
    assert_eq!(default["spec"]["isDefault"], true);
    let zone = get(&fw, CLASS, "", "autogenerated-zone-a");
    assert_eq!(zone["spec"]["l2"]["interfaces"], json!(["eth1"]));
    let old = get(&fw, "Service", "web", "old-default");
    assert_eq!(old["metadata"]["finalizers"], json!(["example.com/keep"]));
    assert_eq!(
        old["metadata"]["annotations"]["network.deckhouse.io/load-balancer-ips"],
        "198.51.100.7"
    );
    let zoned = get(&fw, "Service", "web", "old-zone");
    assert_eq!(
        zoned["metadata"]["annotations"]["network.deckhouse.io/metal-load-balancer-class"],
        "autogenerated-zone-a"
    );
    assert_eq!(
        fw.value("internal.ipAddressPoolToMLBCMap"),
        Some(&json!({"frontend-pool": "l2-default", "pool-a": "autogenerated-zone-a"}))
    );
    assert_eq!(fw.metrics().value("d8_metallb_update_mc_version_required", &[]), Some(1.0));
    assert_eq!(
        fw.metrics().value(
            "d8_metallb_not_supported_service_annotations_detected",
            &[("name", "old-default"), ("annotation", "metallb.universe.tf/address-pool")]
        ),
        Some(1.0)
    );
    assert_second_run_is_a_no_op(&mut fw)?;

    // A person takes over a generated class by removing the label: the migration leaves it.
    let mut zone = get(&fw, CLASS, "", "autogenerated-zone-a").clone();
    zone["metadata"]["labels"] = json!({});
    zone["spec"]["l2"] = json!({"interfaces": ["eth7"]});
    fw.cluster_mut().insert(zone)?;
    fw.module_run()?;
    fw.run_until_quiet()?;
    assert_eq!(
        get(&fw, CLASS, "", "autogenerated-zone-a")["spec"]["l2"]["interfaces"],
        json!(["eth7"])
    );
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn hook_list_matches_the_readme_and_config_uses_one_queue() -> Result<()> {
    let fw = framework(|_| {})?;
    let readme = include_str!("../../README.md");
    let names: Vec<String> = fw.hooks().iter().map(|h| h.name.clone()).collect();
    assert_eq!(names.len(), 10);
    for h in fw.hooks() {
        let short = h.name.split(':').nth(1).unwrap();
        assert!(readme.contains(&format!("| `{short}` |")), "README lists {short}");
        for k in &h.config.kubernetes {
            assert_eq!(k.queue.as_deref(), Some("/modules/metallb/main"), "{}", h.name);
            assert!(k.jq_filter.is_some(), "{} {} needs a jqFilter in batch mode", h.name, k.name);
        }
    }
    let out = std::process::Command::new(BIN).args(["hook", "config"]).output()?;
    let config: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(config["hooks"].as_array().map(Vec::len), Some(10));
    Ok(())
}

/// Children the previous (Go) implementation left — IP in `status.loadBalancer`, node in an
/// annotation, no owner — are adopted in place: same names, same IPs, same nodes.
#[test]
fn children_of_the_previous_implementation_keep_their_ips_and_nodes() -> Result<()> {
    let mut fw = started(|s| {
        let old = [
            ("0", "198.51.100.17", "front-2"),
            ("1", "198.51.100.15", "front-0"),
            ("2", "198.51.100.16", "front-1"),
        ];
        for (i, ip, node) in old {
            s.cluster.push(json!({
                "apiVersion": CHILD_API, "kind": CHILD,
                "metadata": {"name": format!("web-front-{i}"), "namespace": "web",
                             "labels": {"heritage": "deckhouse", "module": "metallb"},
                             "annotations": {"metallb.io/preferredL2SpeakerNode": node, "metallb.io/address-pool": "front"}},
                "spec": {"serviceRef": {"name": "web", "namespace": "web"}, "ports": [{"port": 80}]},
                "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}));
        }
        for o in &mut s.cluster {
            if o["kind"] == "Service" {
                o["status"] = json!({"loadBalancer": {"ingress": [
                    {"ip": "198.51.100.17"}, {"ip": "198.51.100.15"}, {"ip": "198.51.100.16"}]}});
            }
        }
        s.expect = Default::default();
    })?;
    assert_eq!(ingress(&fw, "web", "web"), ["198.51.100.17", "198.51.100.15", "198.51.100.16"]);
    let kids = children(&fw, "web");
    assert_eq!(kids["web-front-0"], (Some("198.51.100.17".into()), Some("front-2".into())));
    assert_eq!(kids["web-front-1"], (Some("198.51.100.15".into()), Some("front-0".into())));
    assert_eq!(kids["web-front-2"], (Some("198.51.100.16".into()), Some("front-1".into())));
    let owner = &get(&fw, CHILD, "web", "web-front-1")["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Service");
    assert_second_run_is_a_no_op(&mut fw)
}
