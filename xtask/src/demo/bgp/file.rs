//! One node's BGP file (`docs/internal/bgp-objects.md`, "File source") from the cluster's
//! objects, as the speaker's Kubernetes source reduces them for its node: the routes of the
//! `SDNInternalBGPAnnouncement`s whose `nodes` hold the node, the peers those routes name and
//! the pools. Pure: objects in, text out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use metallb_api::names::bgp::{DEFAULT_BFD_DETECT_MULTIPLIER, DEFAULT_BFD_INTERVAL_MS};
use metallb_api::{
    MetalLoadBalancerBGPPeerSpec, MetalLoadBalancerPoolSpec, SDNInternalBGPAnnouncementSpec,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// The objects a speaker reads, whole (`metadata` and `spec`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Objects<'a> {
    /// `SDNInternalBGPAnnouncement`s.
    pub announcements: &'a [Value],
    /// `MetalLoadBalancerBGPPeer`s.
    pub peers: &'a [Value],
    /// `MetalLoadBalancerPool`s.
    pub pools: &'a [Value],
}

fn spec<T: DeserializeOwned>(object: &Value) -> Result<(String, T)> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let spec = serde_json::from_value(object["spec"].clone())
        .with_context(|| format!("the spec of {name:?}"))?;
    Ok((name.to_owned(), spec))
}

/// The file of `node`: YAML the speaker's file source reads. Announcements are taken in
/// namespace/name order and peers and pools by name, so the same objects give the same text.
pub(crate) fn node_file(node: &str, objects: Objects<'_>) -> Result<String> {
    let mut announcements: Vec<(String, String, SDNInternalBGPAnnouncementSpec)> = Vec::new();
    for a in objects.announcements {
        let namespace = a.pointer("/metadata/namespace").and_then(Value::as_str);
        let (name, spec) = spec(a)?;
        announcements.push((namespace.unwrap_or_default().to_owned(), name, spec));
    }
    announcements.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut routes = Vec::new();
    let mut named = BTreeSet::new();
    for (_, _, a) in &announcements {
        for r in a.routes.iter().filter(|r| r.nodes.iter().any(|n| n == node)) {
            let mut route =
                json!({"pool": a.pool, "ip": a.ip, "prefix": r.prefix, "peers": r.peers});
            if !r.communities.is_empty() {
                route["communities"] = json!(r.communities);
            }
            if !r.large_communities.is_empty() {
                route["largeCommunities"] = json!(r.large_communities);
            }
            if let Some(local_pref) = r.local_pref {
                route["localPref"] = json!(local_pref);
            }
            named.extend(r.peers.iter().cloned());
            routes.push(route);
        }
    }
    let mut peers = BTreeMap::new();
    for p in objects.peers {
        let (name, spec) = spec::<MetalLoadBalancerBGPPeerSpec>(p)?;
        // A peer no route of this node names opens no session, as in a cluster.
        if named.contains(&name) {
            peers.insert(name, file_peer(node, &spec)?);
        }
    }
    let mut pools = BTreeMap::new();
    for p in objects.pools {
        let (name, spec) = spec::<MetalLoadBalancerPoolSpec>(p)?;
        let mut nets = Vec::new();
        for entry in &spec.addresses {
            nets.extend(cidrs(entry).with_context(|| format!("pool {name}"))?);
        }
        pools.insert(name, nets.iter().map(ToString::to_string).collect::<Vec<_>>());
    }
    let file = json!({"node": node, "peers": peers, "pools": pools, "routes": routes});
    serde_norway::to_string(&file).context("render the node file")
}

/// A peer as the file has it: the CRD's fields, this node's source address, BFD with the
/// defaults the Kubernetes source applies.
fn file_peer(node: &str, spec: &MetalLoadBalancerBGPPeerSpec) -> Result<Value> {
    if spec.password_secret_ref.is_some() {
        bail!("a peer with a password: the demo writes no password files");
    }
    let mut peer = Map::new();
    peer.insert("peerAddress".into(), json!(spec.peer_address));
    peer.insert("peerASN".into(), json!(spec.peer_asn));
    peer.insert("myASN".into(), json!(spec.my_asn));
    if let Some(port) = spec.peer_port {
        peer.insert("peerPort".into(), json!(port));
    }
    if let Some(id) = &spec.router_id {
        peer.insert("routerID".into(), json!(id));
    }
    if let Some(hold) = &spec.hold_time {
        peer.insert("holdTime".into(), json!(hold));
    }
    if let Some(source) = spec.source_addresses.iter().find(|s| s.node_name == node) {
        peer.insert("sourceAddress".into(), json!(source.address));
    }
    if let Some(bfd) = &spec.bfd {
        peer.insert(
            "bfd".into(),
            json!({
                "receiveInterval": bfd.receive_interval.unwrap_or(DEFAULT_BFD_INTERVAL_MS),
                "transmitInterval": bfd.transmit_interval.unwrap_or(DEFAULT_BFD_INTERVAL_MS),
                "detectMultiplier": bfd.detect_multiplier.unwrap_or(DEFAULT_BFD_DETECT_MULTIPLIER),
            }),
        );
    }
    Ok(Value::Object(peer))
}

/// A pool entry (`CIDR`, `IP` or `FIRST-LAST`) as the CIDRs covering it.
fn cidrs(entry: &str) -> Result<Vec<IpNet>> {
    let entry = entry.trim();
    if let Some((first, last)) = entry.split_once('-') {
        let parse = |s: &str| s.trim().parse::<IpAddr>().with_context(|| format!("{s:?}"));
        return Ok(match (parse(first)?, parse(last)?) {
            (IpAddr::V4(a), IpAddr::V4(b)) => Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect(),
            (IpAddr::V6(a), IpAddr::V6(b)) => Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect(),
            _ => bail!("range {entry:?} mixes IPv4 and IPv6"),
        });
    }
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(vec![net]);
    }
    let ip: IpAddr = entry.parse().with_context(|| format!("{entry:?} is no CIDR, IP or range"))?;
    Ok(vec![IpNet::from(ip)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects() -> (Vec<Value>, Vec<Value>, Vec<Value>) {
        let route = |prefix: &str, peers: &[&str], nodes: &[&str]| {
            json!({"configuration": "front", "advertisement": 0, "prefix": prefix,
                   "peers": peers, "nodes": nodes})
        };
        let announcements = vec![
            json!({"metadata": {"name": "web-bgp-0", "namespace": "demo"},
                   "spec": {"serviceRef": {"name": "web", "namespace": "demo"}, "pool": "public",
                            "ip": "203.0.113.2",
                            "routes": [route("203.0.113.2/32", &["tor"], &["front-1"])]}}),
            json!({"metadata": {"name": "nginx-bgp-0", "namespace": "demo"},
                   "spec": {"serviceRef": {"name": "nginx", "namespace": "demo"}, "pool": "public",
                            "ip": "203.0.113.1",
                            "routes": [{"configuration": "front", "advertisement": 0,
                                        "prefix": "203.0.113.1/32", "peers": ["tor"],
                                        "communities": ["64501:1"], "localPref": 150,
                                        "nodes": ["front-0", "front-1"]}]}}),
        ];
        let peers = vec![
            json!({"metadata": {"name": "tor"},
                   "spec": {"peerAddress": "192.0.2.1", "peerASN": 64500, "myASN": 64501,
                            "holdTime": "90s", "bfd": {"receiveInterval": 100},
                            "sourceAddresses": [{"nodeName": "front-0", "address": "192.0.2.11"}]}}),
            json!({"metadata": {"name": "unused"},
                   "spec": {"peerAddress": "192.0.2.9", "peerASN": 64500, "myASN": 64501}}),
        ];
        let pools = vec![json!({"metadata": {"name": "public"},
                                "spec": {"addresses": ["203.0.113.0/24", "198.51.100.10-198.51.100.13"]}})];
        (announcements, peers, pools)
    }

    #[test]
    fn the_file_holds_what_names_the_node() -> Result<()> {
        let (announcements, peers, pools) = objects();
        let objects = Objects { announcements: &announcements, peers: &peers, pools: &pools };
        let text = node_file("front-0", objects)?;
        let file: Value = serde_norway::from_str(&text)?;
        let expected = json!({
            "node": "front-0",
            "peers": {"tor": {"peerAddress": "192.0.2.1", "peerASN": 64500, "myASN": 64501,
                              "holdTime": "90s", "sourceAddress": "192.0.2.11",
                              "bfd": {"receiveInterval": 100, "transmitInterval": 300,
                                      "detectMultiplier": 3}}},
            "pools": {"public": ["203.0.113.0/24", "198.51.100.10/31", "198.51.100.12/31"]},
            "routes": [{"pool": "public", "ip": "203.0.113.1", "prefix": "203.0.113.1/32",
                        "peers": ["tor"], "communities": ["64501:1"], "localPref": 150}],
        });
        assert_eq!(file, expected, "{text}");

        // front-1 has both routes, in namespace/name order, and no source address.
        let file: Value = serde_norway::from_str(&node_file("front-1", objects)?)?;
        let ips: Vec<&str> = file["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["ip"].as_str())
            .collect();
        assert_eq!(ips, ["203.0.113.1", "203.0.113.2"]);
        assert!(file["peers"]["tor"].get("sourceAddress").is_none());

        // A node no route names: pools only, no peer, so no session.
        let file: Value = serde_norway::from_str(&node_file("worker-0", objects)?)?;
        assert_eq!((&file["peers"], &file["routes"]), (&json!({}), &json!([])));
        Ok(())
    }

    #[test]
    fn the_same_objects_give_the_same_text() -> Result<()> {
        let (mut announcements, peers, pools) = objects();
        let objects_a = Objects { announcements: &announcements, peers: &peers, pools: &pools };
        let a = node_file("front-1", objects_a)?;
        announcements.reverse();
        let objects_b = Objects { announcements: &announcements, peers: &peers, pools: &pools };
        assert_eq!(a, node_file("front-1", objects_b)?);
        Ok(())
    }

    #[test]
    fn a_peer_with_a_password_is_refused() {
        let (announcements, mut peers, pools) = objects();
        peers[0]["spec"]["passwordSecretRef"] = json!({"name": "tor", "namespace": "d8-metallb"});
        let objects = Objects { announcements: &announcements, peers: &peers, pools: &pools };
        assert!(node_file("front-0", objects).is_err());
    }
}
