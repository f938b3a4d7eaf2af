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
