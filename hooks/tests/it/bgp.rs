//! BGP hooks through the real binary: version 2 settings of the original module become pools,
//! peers and the `migrated-bgp` configuration, once, and a person's objects always win; peers'
//! password Secrets are copied into the module's namespace; the BGP speakers' member label and
//! the value the templates render them by follow the configurations.

use super::*;

const POOL: &str = "MetalLoadBalancerPool";
const PEER: &str = "MetalLoadBalancerBGPPeer";
const CONFIGURATION: &str = "MetalLoadBalancerConfiguration";
const BGP_MEMBER: &str = "bgp-load-balancer.network.deckhouse.io/member";
const CONFIGURATIONS_EXIST: &str = "internal.bgpConfigurationsExist";

/// The nodes carrying the BGP member label (its value is always "").
fn bgp_members(fw: &Framework) -> BTreeSet<String> {
    fw.cluster()
        .objects()
        .filter(|(k, o)| {
            k.kind == "Node"
                && o.pointer("/metadata/labels")
                    .and_then(|l| l.get(BGP_MEMBER))
                    .is_some_and(|v| v == "")
        })
        .map(|(k, _)| k.name.clone())
        .collect()
}

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn bgp_module_config() -> Value {
    json!({
        "apiVersion": "deckhouse.io/v1alpha1", "kind": "ModuleConfig", "metadata": {"name": "metallb"},
        "spec": {"enabled": true, "version": 2, "settings": {
            "speaker": {"nodeSelector": {"node-role.deckhouse.io/frontend": ""}},
            "bgpPeers": [{"peer-address": "192.0.2.1", "peer-asn": 64512, "my-asn": 64513, "hold-time": "9s"},
                         {"peer-address": "192.0.2.2", "peer-asn": 0, "my-asn": 64513}],
            "bgpCommunities": {"no-advertise": "65535:65282"},
            "addressPools": [
                {"name": "public", "protocol": "bgp", "addresses": ["203.0.113.0/28"],
                 "bgp-advertisements": [{"localpref": 150, "communities": ["no-advertise"]}]},
                {"name": "mine", "protocol": "bgp", "addresses": ["203.0.113.64/28"]}]}}
    })
}

#[test]
fn bgp_settings_become_objects_once_and_a_persons_objects_win() -> Result<()> {
    let mut fw = framework(|s| {
        s.module_config = Some(bgp_module_config());
        s.cluster.push(json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": POOL,
            "metadata": {"name": "mine"}, "spec": {"addresses": ["198.51.100.0/28"]}}));
    })?;
    fw.set_config_values(bgp_module_config()["spec"]["settings"].clone());
    fw.start()?;

    assert_eq!(get(&fw, POOL, "", "public")["spec"], json!({"addresses": ["203.0.113.0/28"]}));
    assert_eq!(
        get(&fw, POOL, "", "mine")["spec"]["addresses"],
        json!(["198.51.100.0/28"]),
        "a pool a person made is never overwritten"
    );
    assert_eq!(
        get(&fw, PEER, "", "peer-0")["spec"],
        json!({"peerAddress": "192.0.2.1", "peerASN": 64512, "myASN": 64513, "holdTime": "9s"})
    );
    assert!(fw.cluster().get(None, PEER, "", "peer-1").is_none(), "ASN 0 is not migrated");
    assert_eq!(
        fw.metrics().value(
            "d8_metallb_skipped_objects",
            &[("kind", "ModuleConfig"), ("reason", "invalid_bgp_peer")]
        ),
        Some(1.0)
    );
    let configuration = get(&fw, CONFIGURATION, "", "migrated-bgp");
    assert_eq!(
        configuration["spec"],
        json!({"mode": "BGP", "nodeSelector": {"node-role.deckhouse.io/frontend": ""},
               "bgp": {"peerNames": ["peer-0"]},
               "advertisements": [
                   {"poolNames": ["public"], "bgp": {"communities": ["65535:65282"], "localPref": 150}},
                   {"poolNames": ["mine"]}]})
    );
    assert_eq!(configuration["metadata"]["labels"]["auto-generated-by"], "d8-migration-hook");
    assert_second_run_is_a_no_op(&mut fw)?;

    // A person edits a migrated object: the migration leaves it alone.
    let mut peer = get(&fw, PEER, "", "peer-0").clone();
    peer["spec"]["holdTime"] = json!("3s");
    fw.cluster_mut().insert(peer)?;
    fw.module_run()?;
    fw.run_until_quiet()?;
    assert_eq!(get(&fw, PEER, "", "peer-0")["spec"]["holdTime"], "3s");
    // The ModuleConfig itself is never changed.
    assert_eq!(
        fw.cluster().get(None, "ModuleConfig", "", "metallb").map(|m| &m["spec"]),
        Some(&bgp_module_config()["spec"])
    );
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn password_secrets_are_copied_for_the_speakers_and_follow_changes() -> Result<()> {
    let mut fw = started(|s| {
        s.cluster.push(json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": PEER, "metadata": {"name": "tor"},
            "spec": {"peerAddress": "192.0.2.1", "peerASN": 64512, "myASN": 64513,
                     "passwordSecretRef": {"name": "tor-md5", "namespace": "web"}}}));
        s.cluster.push(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "tor-md5", "namespace": "web",
                         "labels": {"network.deckhouse.io/metallb-bgp-password": "true"}},
            "data": {"password": "c2VjcmV0"}}));
    })?;
    let copy = get(&fw, "Secret", "d8-metallb", "bgp-pwd-web-tor-md5");
    assert_eq!(copy["data"]["password"], "c2VjcmV0");
    let found = |fw: &Framework| {
        get(fw, PEER, "", "tor")["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "PasswordSecretFound").cloned())
            .unwrap()
    };
    assert_eq!(found(&fw)["reason"], "PasswordSecretCopied");
    assert_second_run_is_a_no_op(&mut fw)?;

    // The label is removed: the copy goes and the peer says why.
    let mut secret = get(&fw, "Secret", "web", "tor-md5").clone();
    secret["metadata"]["labels"] = json!({});
    fw.cluster_mut().insert(secret)?;
    fw.run_until_quiet()?;
    assert!(fw.cluster().get(None, "Secret", "d8-metallb", "bgp-pwd-web-tor-md5").is_none());
    assert_eq!(found(&fw)["status"], "False");
    assert_eq!(found(&fw)["reason"], "PasswordSecretNotFound");
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn a_configuration_naming_a_missing_peer_says_so_until_the_peer_exists() -> Result<()> {
    let mut fw = started(|s| {
        s.cluster.push(json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": CONFIGURATION, "metadata": {"name": "front"},
            "spec": {"mode": "BGP", "nodeSelector": {"node-role.deckhouse.io/frontend": ""},
                     "bgp": {"peerNames": ["tor"]}, "advertisements": [{"poolNames": ["public"]}]}}));
        s.cluster.push(json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": POOL, "metadata": {"name": "public"},
            "spec": {"addresses": ["203.0.113.0/28"]}}));
    })?;
    let valid =
        |fw: &Framework| get(fw, CONFIGURATION, "", "front")["status"]["conditions"][0].clone();
    assert_eq!(valid(&fw)["status"], "False");
    assert_eq!(valid(&fw)["reason"], "PeerNotFound");
    assert_eq!(
        fw.metrics().value(
            "d8_metallb_bgp_configuration_issues",
            &[("configuration", "front"), ("reason", "PeerNotFound")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(&fw, CONFIGURATION, "", "front")["status"]["memberNodes"],
        json!(["front-0", "front-1", "front-2"])
    );
    assert_second_run_is_a_no_op(&mut fw)?;

    fw.cluster_mut().insert(json!({
        "apiVersion": "network.deckhouse.io/v1alpha1", "kind": PEER, "metadata": {"name": "tor"},
        "spec": {"peerAddress": "192.0.2.1", "peerASN": 64512, "myASN": 64513}}))?;
    fw.run_until_quiet()?;
    assert_eq!(valid(&fw)["status"], "True");
    assert_eq!(
        fw.metrics().value("d8_metallb_bgp_configuration_issues", &[("configuration", "front")]),
        None
    );
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn bgp_member_labels_and_the_value_follow_the_configurations() -> Result<()> {
    let mut fw = started(|s| {
        // An excluded front node never runs a BGP speaker.
        s.cluster.push(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "front-3", "labels": {"node-role.deckhouse.io/frontend": "",
                "node.kubernetes.io/exclude-from-external-load-balancers": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
    })?;
    assert_eq!(fw.value(CONFIGURATIONS_EXIST), Some(&json!(false)));
    assert!(bgp_members(&fw).is_empty());
    assert_second_run_is_a_no_op(&mut fw)?;

    // A configuration is created: its nodes are labelled and the value turns true.
    fw.cluster_mut().insert(json!({
        "apiVersion": "network.deckhouse.io/v1alpha1", "kind": CONFIGURATION, "metadata": {"name": "front"},
        "spec": {"mode": "BGP", "nodeSelector": {"node-role.deckhouse.io/frontend": ""},
                 "bgp": {"peerNames": []}, "advertisements": []}}))?;
    fw.run_until_quiet()?;
    assert_eq!(bgp_members(&fw), names(&["front-0", "front-1", "front-2"]));
    assert_eq!(fw.value(CONFIGURATIONS_EXIST), Some(&json!(true)));
    // The L2 membership is another hook's and stays as it was.
    assert_eq!(members(&fw), names(&["front-0", "front-1", "front-2"]));
    assert_second_run_is_a_no_op(&mut fw)?;

    // Its selector changes: the labels follow.
    let mut worker = get(&fw, "Node", "", "worker-0").clone();
    worker["metadata"]["labels"] = json!({"zone": "a"});
    fw.cluster_mut().insert(worker)?;
    let mut configuration = get(&fw, CONFIGURATION, "", "front").clone();
    configuration["spec"]["nodeSelector"] = json!({"zone": "a"});
    fw.cluster_mut().insert(configuration)?;
    fw.run_until_quiet()?;
    assert_eq!(bgp_members(&fw), names(&["worker-0"]));
    assert_eq!(fw.value(CONFIGURATIONS_EXIST), Some(&json!(true)));
    assert_second_run_is_a_no_op(&mut fw)?;

    // It is deleted: every label goes and the value is false again.
    fw.cluster_mut().remove(None, CONFIGURATION, "", "front")?;
    fw.run_until_quiet()?;
    assert!(bgp_members(&fw).is_empty());
    let labelled = fw.cluster().objects().filter(|(k, o)| {
        k.kind == "Node" && o.pointer("/metadata/labels").and_then(|l| l.get(BGP_MEMBER)).is_some()
    });
    assert_eq!(labelled.count(), 0, "the label is removed, not emptied");
    assert_eq!(fw.value(CONFIGURATIONS_EXIST), Some(&json!(false)));
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn a_peers_session_summary_follows_what_its_speakers_report() -> Result<()> {
    let peer = |sessions: Value| {
        json!({"apiVersion": "network.deckhouse.io/v1alpha1", "kind": PEER, "metadata": {"name": "tor"},
               "spec": {"peerAddress": "192.0.2.1", "peerASN": 64512, "myASN": 64513},
               "status": {"sessions": sessions}})
    };
    let summary = |fw: &Framework| get(fw, PEER, "", "tor")["status"]["sessionSummary"].clone();
    // Two speakers report; a third entry is left by a node that no longer exists.
    let mut fw = started(|s| {
        s.cluster.push(peer(json!([
            {"node": "front-0", "state": "Established"},
            {"node": "front-1", "state": "Connect"},
            {"node": "gone", "state": "Established"}])));
    })?;
    assert_eq!(summary(&fw), "1/2 established");
    assert_second_run_is_a_no_op(&mut fw)?;

    // The second session comes up.
    let mut object = get(&fw, PEER, "", "tor").clone();
    object["status"]["sessions"][1]["state"] = json!("Established");
    fw.cluster_mut().insert(object)?;
    fw.run_until_quiet()?;
    assert_eq!(summary(&fw), "2/2 established");
    assert_second_run_is_a_no_op(&mut fw)?;

    // Every speaker removed its entry: so goes the summary.
    let mut object = get(&fw, PEER, "", "tor").clone();
    object["status"]["sessions"] = json!([]);
    fw.cluster_mut().insert(object)?;
    fw.run_until_quiet()?;
    assert_eq!(summary(&fw), Value::Null);
    assert_second_run_is_a_no_op(&mut fw)
}

#[test]
fn a_bgp_member_without_a_ready_speaker_is_reported_until_one_is_ready() -> Result<()> {
    let speaker = |node: &str, ready: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": format!("bgp-speaker-{node}"), "namespace": "d8-metallb",
                            "labels": {"app": "bgp-speaker"}},
               "spec": {"nodeName": node},
               "status": {"conditions": [{"type": "Ready", "status": ready}]}})
    };
    let missing = |fw: &Framework, node: &str| {
        fw.metrics().value("d8_metallb_bgp_member_node_without_ready_speaker", &[("node", node)])
    };
    let mut fw = started(|s| {
        s.cluster.push(json!({
            "apiVersion": "network.deckhouse.io/v1alpha1", "kind": CONFIGURATION, "metadata": {"name": "front"},
            "spec": {"mode": "BGP", "nodeSelector": {"node-role.deckhouse.io/frontend": ""},
                     "bgp": {"peerNames": []}, "advertisements": []}}));
        s.cluster.push(speaker("front-0", "True"));
        s.cluster.push(speaker("front-1", "False"));
    })?;
    assert_eq!(missing(&fw, "front-0"), None);
    assert_eq!(missing(&fw, "front-1"), Some(1.0));
    assert_eq!(missing(&fw, "front-2"), Some(1.0), "a member without any pod");
    assert_eq!(missing(&fw, "worker-0"), None, "not a member");
    assert_second_run_is_a_no_op(&mut fw)?;

    // front-1's and front-2's speakers become Ready: nothing is reported any more.
    fw.cluster_mut().insert(speaker("front-1", "True"))?;
    fw.cluster_mut().insert(speaker("front-2", "True"))?;
    fw.run_until_quiet()?;
    for node in ["front-0", "front-1", "front-2"] {
        assert_eq!(missing(&fw, node), None, "{node}");
    }
    assert_second_run_is_a_no_op(&mut fw)
}
