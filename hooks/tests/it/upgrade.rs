//! Upgrade safety (issue #19): what an operator of the previous module sees on day one.
//!
//! The previous module's children were rendered by Helm in the module's release. This chart
//! renders none, so the platform's first Helm upgrade deletes every child of the old release
//! it finds without `helm.sh/resource-policy: keep` on the live object; and whatever the
//! release manager does, no Service may lose or change an IP.

use anyhow::Result;
use serde_json::{Value, json};

use super::*;

const RESOURCE_POLICY: &str = "helm.sh/resource-policy";

/// Fragmented allocations across several Services, as the previous module left them: every
/// child rendered by Helm (release `metallb`), its IP only in `status.loadBalancer.ingress`,
/// the Services' status listing the same IPs. Free in the class pool
/// (198.51.100.10–20): .11, .14, .16, .18, .20.
const PREVIOUS: [(&str, &[(&str, &str)]); 3] = [
    (
        "web",
        &[("198.51.100.17", "front-2"), ("198.51.100.12", "front-0"), ("198.51.100.19", "front-1")],
    ),
    ("api", &[("198.51.100.10", "front-1"), ("198.51.100.15", "front-2")]),
    ("dns", &[("198.51.100.13", "front-0")]),
];

fn previous_module(s: &mut Scenario) {
    let template = s.cluster.iter().find(|o| o["kind"] == "Service").unwrap().clone();
    s.cluster.retain(|o| o["kind"] != "Service");
    for (name, ips) in PREVIOUS {
        let mut svc = template.clone();
        svc["metadata"]["name"] = json!(name);
        svc["metadata"]["annotations"] = json!({
            "network.deckhouse.io/l2-load-balancer-external-ips-count": ips.len().to_string()});
        let ingress: Vec<Value> = ips.iter().map(|(ip, _)| json!({"ip": ip})).collect();
        svc["status"] = json!({"loadBalancer": {"ingress": ingress}});
        s.cluster.push(svc);
        for (i, (ip, node)) in ips.iter().enumerate() {
            s.cluster.push(json!({
                "apiVersion": CHILD_API, "kind": CHILD,
                "metadata": {"name": format!("{name}-front-{i}"), "namespace": "web",
                    "labels": {"heritage": "deckhouse", "module": "metallb", "parent-service": name,
                               "app.kubernetes.io/managed-by": "Helm"},
                    "annotations": {"meta.helm.sh/release-name": "metallb",
                                    "meta.helm.sh/release-namespace": "d8-metallb",
                                    "metallb.io/preferredL2SpeakerNode": node,
                                    "metallb.io/address-pool": "front"}},
                "spec": {"serviceRef": {"name": name, "namespace": "web"}, "type": "LoadBalancer",
                         "loadBalancerClass": "l2-load-balancer-class.network.deckhouse.io",
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
                "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}));
        }
    }
    s.expect = Default::default();
}

/// The children of the previous release, by name.
fn released_children() -> Vec<String> {
    PREVIOUS
        .iter()
        .flat_map(|(name, ips)| (0..ips.len()).map(move |i| format!("{name}-front-{i}")))
        .collect()
}

/// What Helm does on the first upgrade with this chart: every object of the previous
/// release that the new render lacks is deleted, unless the live object says
/// `helm.sh/resource-policy: keep`. Returns the names deleted.
fn helm_upgrade_prunes(fw: &mut Framework) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for name in released_children() {
        let Some(live) = fw.cluster().get(None, CHILD, "web", &name) else { continue };
        if live.pointer(&format!("/metadata/annotations/{}", RESOURCE_POLICY.replace('/', "~1")))
            == Some(&json!("keep"))
        {
            continue;
        }
        fw.cluster_mut().remove(None, CHILD, "web", &name)?;
        deleted.push(name);
    }
    Ok(deleted)
}

fn published(fw: &Framework) -> Vec<(&'static str, Vec<String>)> {
    PREVIOUS.iter().map(|(name, _)| (*name, ingress(fw, "web", name))).collect()
}

fn previous_ips() -> Vec<(&'static str, Vec<String>)> {
    PREVIOUS
        .iter()
        .map(|(name, ips)| (*name, ips.iter().map(|(ip, _)| (*ip).to_owned()).collect()))
        .collect()
}

/// The previous release's children are adopted and protected: Helm's prune keeps them, and
/// every Service keeps every IP.
#[test]
fn adopted_children_are_kept_by_the_release_upgrade() -> Result<()> {
    let mut fw = started(previous_module)?;
    assert_eq!(published(&fw), previous_ips());
    for name in released_children() {
        let child = get(&fw, CHILD, "web", &name);
        assert_eq!(child["metadata"]["annotations"][RESOURCE_POLICY], "keep", "{name}");
    }
    assert!(helm_upgrade_prunes(&mut fw)?.is_empty(), "nothing pruned");
    fw.run_until_quiet()?;
    assert_eq!(published(&fw), previous_ips());
    assert_second_run_is_a_no_op(&mut fw)
}

/// Whatever the release manager does: the adopted children deleted anyway, with a new
/// Service competing for free addresses at the same time, every Service gets every IP back
/// (the Service's published ingress is honoured before any free address is handed out).
#[test]
fn ips_survive_the_release_deleting_the_adopted_children() -> Result<()> {
    let mut fw = started(previous_module)?;
    let mut late = get(&fw, "Service", "web", "api").clone();
    late["metadata"] = json!({"name": "aaa-late", "namespace": "web", "annotations": {
        "network.deckhouse.io/l2-load-balancer-external-ips-count": "2"}});
    late.as_object_mut().unwrap().remove("status");
    fw.cluster_mut().insert(late)?;
    for name in released_children() {
        fw.cluster_mut().remove(None, CHILD, "web", &name)?;
    }
    fw.run_until_quiet()?;
    fw.module_run()?;
    fw.run_until_quiet()?;
    assert_eq!(published(&fw), previous_ips());
    assert_eq!(ingress(&fw, "web", "aaa-late"), ["198.51.100.11", "198.51.100.14"]);
    let kids = children(&fw, "web");
    assert_eq!(kids.len(), 8, "{kids:?}");
    assert!(kids.values().all(|(ip, node)| ip.is_some() && node.is_some()), "{kids:?}");
    assert_second_run_is_a_no_op(&mut fw)
}

/// The IPs of `name` in every Service status patch discovery wrote so far.
fn status_patches(fw: &Framework, name: &str) -> Vec<Vec<String>> {
    fw.runs()
        .iter()
        .flat_map(|r| &r.kubernetes)
        .filter(|op| {
            op.kind.as_deref() == Some("Service")
                && op.name.as_deref() == Some(name)
                && op.subresource.as_deref() == Some("status")
        })
        .filter_map(|op| op.merge_patch.as_ref()?.pointer("/status/loadBalancer/ingress").cloned())
        .map(|ingress| {
            ingress
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["ip"].as_str().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// Adoption and discovery agree within one pass. A version 1 ModuleConfig whose default class
/// exists already (an earlier pass created it) and a Service classic MetalLB served from an
/// advertised pool: in the pass where the adoption pins the Service to its migrated class,
/// discovery's snapshot does not show the pins yet. It must not bind the Service to the
/// default class and hand it an address from there, not even for one run.
#[test]
fn discovery_never_allocates_for_a_service_the_adoption_is_pinning() -> Result<()> {
    let yaml = r#"
cluster:
  - apiVersion: metallb.io/v1beta1
    kind: L2Advertisement
    metadata: {name: zone-a, namespace: d8-metallb}
    spec: {ipAddressPools: [pool-a], nodeSelectors: [{matchLabels: {node-role.deckhouse.io/frontend: ""}}]}
  - apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: pool-a, namespace: d8-metallb}
    spec: {addresses: [192.0.2.0/28]}
  - apiVersion: network.deckhouse.io/v1alpha1
    kind: MetalLoadBalancerClass
    metadata: {name: l2-default, labels: {auto-generated-by: d8-migration-hook}}
    spec:
      isDefault: true
      type: L2
      addressPool: [198.51.100.0/28]
      nodeSelector: {node-role.deckhouse.io/frontend: ""}
  - apiVersion: v1
    kind: Service
    metadata:
      name: old-zone
      namespace: web
      annotations: {metallb.io/ip-allocated-from-pool: pool-a}
    spec: {type: LoadBalancer, ports: [{port: 443, protocol: TCP}]}
    status: {loadBalancer: {ingress: [{ip: 192.0.2.9}]}}
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
                              "addresses": ["198.51.100.0/28"]}]}}}));
    s.expect = Default::default();
    let mut fw = s.framework(BIN, MODULE, Some(openapi()))?;
    fw.set_config_values(json!({}));
    fw.set_values(json!({}));
    fw.start()?;
    assert_eq!(ingress(&fw, "web", "old-zone"), ["192.0.2.9"]);
    let c = condition(&fw, "web", "old-zone", "network.deckhouse.io/load-balancer-class");
    assert_eq!(c["message"], "autogenerated-zone-a");
    for ips in status_patches(&fw, "old-zone") {
        assert_eq!(ips, ["192.0.2.9"], "a status patch gave the Service another address");
    }
    assert_eq!(fw.value("internal.migrationOfOldFashionedLBsAdoptionComplete"), Some(&json!(true)));
    assert_second_run_is_a_no_op(&mut fw)
}

/// One stuck object never blocks the module: a Service whose namespace is being deleted (the
/// API server refuses new objects there) is skipped and reported, the run succeeds, and
/// every other Service is served.
#[test]
fn a_service_in_a_namespace_being_deleted_blocks_nothing() -> Result<()> {
    let mut fw = started(|s| {
        s.cluster
            .push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
        let mut cart = s.cluster.iter().find(|o| o["kind"] == "Service").unwrap().clone();
        cart["metadata"] = json!({"name": "cart", "namespace": "shop"});
        s.cluster.push(cart);
        s.expect = Default::default();
    })?;
    assert_eq!(ingress(&fw, "shop", "cart").len(), 1);
    fw.cluster_mut().terminate_namespace("shop")?;
    // The Service now wants a second IP, whose child the server would refuse to create.
    let mut cart = get(&fw, "Service", "shop", "cart").clone();
    cart["metadata"]["annotations"] =
        json!({"network.deckhouse.io/l2-load-balancer-external-ips-count": "2"});
    fw.cluster_mut().insert(cart)?;
    let mut other = get(&fw, "Service", "web", "web").clone();
    other["metadata"] = json!({"name": "other", "namespace": "web"});
    other.as_object_mut().unwrap().remove("status");
    fw.cluster_mut().insert(other)?;
    fw.run_until_quiet()?;
    fw.module_run()?;
    fw.run_until_quiet()?;
    assert_eq!(ingress(&fw, "web", "other").len(), 1, "every other Service is served");
    assert_eq!(ingress(&fw, "web", "web").len(), 3);
    assert!(children(&fw, "shop").is_empty(), "its children are deleted, its IPs freed");
    let labels = [
        ("kind", "Service"),
        ("namespace", "shop"),
        ("name", "cart"),
        ("reason", "namespace_terminating"),
    ];
    assert_eq!(fw.metrics().value("d8_metallb_skipped_objects", &labels), Some(1.0));
    assert_second_run_is_a_no_op(&mut fw)
}
