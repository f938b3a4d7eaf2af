//! BGP mode served through the real binary: a Service bound to a `MetalLoadBalancerPool` gets
//! an IP from the allocator shared with the Layer 2 classes, one `SDNInternalBGPAnnouncement`
//! per IP says which nodes announce it to which peers, and the pool's status counts it.

use std::collections::BTreeSet;

use anyhow::Result;
use serde_json::{Value, json};
use testkit::Framework;

use super::{assert_second_run_is_a_no_op, condition, get, ingress, started};

const POOL: &str = "MetalLoadBalancerPool";
const ANNOUNCEMENT: &str = "SDNInternalBGPAnnouncement";
const NET: &str = "network.deckhouse.io/v1alpha1";

/// The seed cluster plus a pool, a peer, a configuration over the front nodes and a Service
/// `web/api` naming the pool.
fn bgp_cluster(fw_edit: impl FnOnce(&mut Vec<Value>)) -> Result<Framework> {
    started(|s| {
        s.cluster.extend([
            json!({"apiVersion": NET, "kind": POOL, "metadata": {"name": "public"},
                   "spec": {"addresses": ["203.0.113.0/28"], "autoAssign": false}}),
            json!({"apiVersion": NET, "kind": "MetalLoadBalancerBGPPeer", "metadata": {"name": "tor"},
                   "spec": {"peerAddress": "192.0.2.1", "peerASN": 64512, "myASN": 64513}}),
            json!({"apiVersion": NET, "kind": "MetalLoadBalancerConfiguration", "metadata": {"name": "front"},
                   "spec": {"mode": "BGP", "nodeSelector": {"node-role.deckhouse.io/frontend": ""},
                            "bgp": {"peerNames": ["tor"]},
                            "advertisements": [{"poolNames": ["public"], "bgp": {"communities": ["64512:100"]}}]}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "api", "namespace": "web", "uid": "uid-api",
                                "annotations": {"network.deckhouse.io/load-balancer-pool": "public"}},
                   "spec": {"type": "LoadBalancer", "clusterIP": "10.222.0.11", "selector": {"app": "api"},
                            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "nodePort": 30443}]}}),
        ]);
        fw_edit(&mut s.cluster);
    })
}

fn announcement(fw: &Framework) -> Option<&Value> {
    fw.cluster().get(None, ANNOUNCEMENT, "web", "api-bgp-0")
}

fn route_nodes(fw: &Framework) -> Vec<String> {
    announcement(fw).expect("announced")["spec"]["routes"][0]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_service_naming_a_pool_gets_an_ip_and_an_announcement() -> Result<()> {
    let mut fw = bgp_cluster(|_| {})?;
    let ips = ingress(&fw, "web", "api");
    assert_eq!(ips.len(), 1, "{ips:?}");
    let ip: std::net::Ipv4Addr = ips[0].parse()?;
    assert!(ip.octets()[..3] == [203, 0, 113] && ip.octets()[3] < 16, "{ip} inside the pool");
    let bound = condition(&fw, "web", "api", "network.deckhouse.io/load-balancer-pool");
    assert_eq!(
        (&bound["status"], &bound["reason"]),
        (&json!("True"), &json!("LoadBalancerPoolBound"))
    );

    let a = announcement(&fw).expect("one announcement per IP").clone();
    assert_eq!(a["spec"]["ip"], ips[0]);
    assert_eq!(a["spec"]["pool"], "public");
    assert_eq!(a["spec"]["routes"][0]["prefix"], format!("{ip}/32"));
    assert_eq!(a["spec"]["routes"][0]["peers"], json!(["tor"]));
    assert_eq!(a["spec"]["routes"][0]["communities"], json!(["64512:100"]));
    assert_eq!(route_nodes(&fw), ["front-0", "front-1", "front-2"]);
    assert_eq!(a["metadata"]["labels"]["module"], "metallb");
    assert_eq!(a["metadata"]["labels"]["parent-service"], "api");
    assert_eq!(a["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(a["status"]["conditions"][0]["status"], "True");

    let pool = get(&fw, POOL, "", "public");
    assert_eq!(
        (&pool["status"]["allocated"], &pool["status"]["poolSize"]),
        (&json!(1), &json!("16"))
    );
    assert_eq!(
        fw.metrics().value("d8_metallb_pool_allocated_ips", &[("pool", "public")]),
        Some(1.0)
    );
    // The Layer 2 Service of the seed keeps its three IPs from the class.
    let web = ingress(&fw, "web", "web");
    assert_eq!(web.len(), 3);
    assert!(web.iter().all(|ip| ip.starts_with("198.51.100.")), "{web:?}");
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn announcing_nodes_follow_the_selector_and_local_endpoints() -> Result<()> {
    let mut fw = bgp_cluster(|_| {})?;
    let ip = ingress(&fw, "web", "api");

    // front-2 leaves the configuration's selector.
    let mut node = get(&fw, "Node", "", "front-2").clone();
    node["metadata"]["labels"] = json!({});
    fw.cluster_mut().insert(node)?;
    fw.run_until_quiet()?;
    assert_eq!(route_nodes(&fw), ["front-0", "front-1"]);
    assert_eq!(ingress(&fw, "web", "api"), ip, "the IP stays");

    // externalTrafficPolicy Local: only nodes with a ready endpoint.
    let mut svc = get(&fw, "Service", "web", "api").clone();
    svc["spec"]["externalTrafficPolicy"] = json!("Local");
    fw.cluster_mut().insert(svc)?;
    fw.cluster_mut().insert(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "api-1", "namespace": "web", "labels": {"kubernetes.io/service-name": "api"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.5"], "nodeName": "front-1", "conditions": {"ready": true}},
                      {"addresses": ["10.0.0.6"], "nodeName": "worker-0", "conditions": {"ready": true}}]}))?;
    fw.run_until_quiet()?;
    assert_eq!(route_nodes(&fw), ["front-1"]);
    assert_eq!(ingress(&fw, "web", "api"), ip);
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn a_deleted_pool_withdraws_and_says_so_and_bad_objects_are_skipped() -> Result<()> {
    let mut fw = bgp_cluster(|c| {
        c.push(json!({"apiVersion": NET, "kind": POOL, "metadata": {"name": "broken"},
                      "spec": {"addresses": "203.0.113.64/28"}}));
        c.push(json!({"apiVersion": "internal.network.deckhouse.io/v1alpha1", "kind": ANNOUNCEMENT,
                      "metadata": {"name": "garbage", "namespace": "web"}, "spec": {"routes": "no"}}));
    })?;
    assert!(announcement(&fw).is_some(), "the good objects are served");
    let skipped = format!("{:?}", fw.metrics());
    assert!(skipped.contains("broken") && skipped.contains("garbage"), "{skipped}");

    fw.cluster_mut().remove(None, POOL, "", "public")?;
    fw.run_until_quiet()?;
    assert!(announcement(&fw).is_none(), "withdrawn");
    assert!(ingress(&fw, "web", "api").is_empty(), "nothing published that nobody announces");
    let bound = condition(&fw, "web", "api", "network.deckhouse.io/load-balancer-pool");
    assert_eq!(
        (&bound["status"], &bound["reason"]),
        (&json!("False"), &json!("LoadBalancerPoolNotFound"))
    );
    let others: BTreeSet<_> = fw
        .cluster()
        .objects()
        .filter(|(k, _)| k.kind == ANNOUNCEMENT)
        .map(|(k, _)| k.name.clone())
        .collect();
    assert_eq!(others, BTreeSet::from(["garbage".to_owned()]), "a foreign object is left alone");
    assert_second_run_is_a_no_op(&mut fw)
}

/// Binding precedence through the real binary: a class named by the Service wins over a pool
/// annotation (and says so), MetalLB's pool key binds like ours, and with no default class a
/// Service naming nothing gets an `autoAssign` pool.
#[test]
fn binding_precedence_between_classes_and_pools() -> Result<()> {
    let mut fw = bgp_cluster(|c| {
        c.push(json!({"apiVersion": NET, "kind": POOL, "metadata": {"name": "auto"},
                      "spec": {"addresses": ["203.0.113.32/28"]}}));
        let svc = |name: &str, annotations: Value, class: Value| {
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "web", "annotations": annotations},
                   "spec": {"type": "LoadBalancer", "loadBalancerClass": class, "selector": {"app": name},
                            "ports": [{"port": 80, "protocol": "TCP"}]}})
        };
        c.push(svc(
            "both",
            json!({"network.deckhouse.io/load-balancer-pool": "public"}),
            json!("front"),
        ));
        c.push(svc("metallb-key", json!({"metallb.io/address-pool": "public"}), Value::Null));
        c.push(svc("plain", json!({}), Value::Null));
    })?;
    let pool_of = |fw: &Framework, name: &str| {
        condition(fw, "web", name, "network.deckhouse.io/load-balancer-pool")["message"].clone()
    };
    // The class in spec wins; the pool annotation is reported as ignored.
    assert_eq!(
        condition(&fw, "web", "both", "network.deckhouse.io/load-balancer-class")["status"],
        "True"
    );
    assert_eq!(
        condition(&fw, "web", "both", "AnnotationsValid")["reason"],
        "PoolAnnotationIgnored"
    );
    assert!(ingress(&fw, "web", "both").iter().all(|ip| ip.starts_with("198.51.100.")));
    // MetalLB's key binds to the pool it names.
    assert!(pool_of(&fw, "metallb-key").as_str().unwrap_or_default().contains("public"));
    assert!(ingress(&fw, "web", "metallb-key")[0].starts_with("203.0.113."));
    // No class named and no default class: the autoAssign pool (the seed pool `public` is not).
    let plain = condition(&fw, "web", "plain", "network.deckhouse.io/load-balancer-pool");
    assert_eq!(plain["reason"], "LoadBalancerPoolAutoAssigned");
    assert!(plain["message"].as_str().unwrap_or_default().contains("auto"), "{plain}");
    let ip: std::net::Ipv4Addr = ingress(&fw, "web", "plain")[0].parse()?;
    assert!((32..48).contains(&ip.octets()[3]), "{ip} from the autoAssign pool");
    assert_second_run_is_a_no_op(&mut fw)
}
