use super::*;

fn at() -> Timestamp {
    Timestamp("2026-12-02T10:00:00Z".into())
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Peers with IPv4 addresses.
fn peers(names: &[&str]) -> BTreeMap<String, Option<Family>> {
    names.iter().map(|n| ((*n).to_owned(), Some(Family::V4))).collect()
}

fn nodes() -> Vec<Value> {
    vec![
        json!({"name": "front-0", "labels": {"role": "front"}, "ready": true}),
        json!({"name": "front-1", "labels": {"role": "front"}, "ready": false}),
        json!({"name": "worker-0", "labels": {}, "ready": true}),
    ]
}

fn status_of(out: &Outcome, name: &str) -> Value {
    out.ops
        .iter()
        .map(|op| serde_json::to_value(op).unwrap())
        .find(|v| v["name"] == name)
        .map(|v| v["mergePatch"]["status"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_valid_configuration_lists_its_members() {
    let configuration = json!({"name": "rack-a", "generation": 2, "spec": {"mode": "BGP", "nodeSelector": {"role": "front"},
        "bgp": {"peerNames": ["tor"]}, "advertisements": [{"poolNames": ["public"]}]}});
    let out = handle(&[configuration], &peers(&["tor"]), &set(&["public"]), &nodes(), &[], &at());
    let status = status_of(&out, "rack-a");
    assert_eq!(status["memberNodes"], json!(["front-0"]));
    assert_eq!(status["nodeSummary"], "front-0");
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(status["conditions"][0]["type"], "ConfigurationValid");
    assert_eq!(status["conditions"][0]["status"], "True");
    assert!(out.metrics.is_empty() && out.skipped.is_empty());
}

#[test]
fn missing_peers_and_pools_are_a_false_condition_and_metrics() {
    let configuration = json!({"name": "broken", "spec": {"mode": "BGP",
        "bgp": {"peerNames": ["gone"]},
        "advertisements": [{"poolNames": ["lost"], "bgp": {"communities": ["99999:1"], "aggregationLength": 40}}]}});
    let out = handle(&[configuration], &peers(&[]), &set(&[]), &nodes(), &[], &at());
    let condition = &status_of(&out, "broken")["conditions"][0];
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "PeerNotFound");
    let message = condition["message"].as_str().unwrap();
    for part in
        ["\"gone\"", "\"lost\"", "\"99999:1\"", "aggregationLength 40", "nothing is announced"]
    {
        assert!(message.contains(part), "{message} names {part}");
    }
    assert!(condition.get("observedGeneration").is_none(), "no generation, no zero written");
    let reasons: BTreeSet<String> = out
        .metrics
        .iter()
        .map(|m| serde_json::to_value(m).unwrap()["labels"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons,
        set(&[
            "AggregationLengthTooLong",
            "InvalidCommunity",
            "NoPeers",
            "PeerNotFound",
            "PoolNotFound"
        ])
    );
}

#[test]
fn an_unchanged_status_is_not_written_again() {
    let spec = json!({"mode": "BGP", "bgp": {"peerNames": ["tor"]}});
    let first = handle(
        &[json!({"name": "c", "spec": spec})],
        &peers(&["tor"]),
        &set(&[]),
        &nodes(),
        &[],
        &at(),
    );
    let status = status_of(&first, "c");
    let later = Timestamp("2026-12-03T00:00:00Z".into());
    let again = handle(
        &[json!({"name": "c", "spec": spec, "status": status})],
        &peers(&["tor"]),
        &set(&[]),
        &nodes(),
        &[],
        &later,
    );
    assert!(again.ops.is_empty(), "{:?}", again.ops);
    // A node joins: the members change, the condition keeps its transition time.
    let mut more = nodes();
    more.push(json!({"name": "worker-1", "labels": {}, "ready": true}));
    let changed = handle(
        &[json!({"name": "c", "spec": spec, "status": status})],
        &peers(&["tor"]),
        &set(&[]),
        &more,
        &[],
        &later,
    );
    let status = status_of(&changed, "c");
    assert_eq!(status["memberNodes"], json!(["front-0", "worker-0", "worker-1"]));
    assert_eq!(status["conditions"][0]["lastTransitionTime"], "2026-12-02T10:00:00Z");
}

#[test]
fn a_malformed_configuration_is_skipped_and_the_others_served() {
    let out = handle(
        &[
            json!({"name": "bad", "spec": {"mode": "BGP", "bgp": {"peerNames": "tor"}}}),
            json!({"spec": {}}),
            json!({"name": "good", "spec": {"mode": "BGP", "bgp": {"peerNames": ["tor"]}}}),
        ],
        &peers(&["tor"]),
        &set(&[]),
        &nodes(),
        &[],
        &at(),
    );
    assert_eq!(out.skipped.len(), 2);
    assert_eq!(out.ops.len(), 1);
    assert_eq!(status_of(&out, "good")["nodeSummary"], "front-0,worker-0");
}

/// `(node, label value)` of every member label patch, `None` for a removal.
fn label_patches(out: &Outcome) -> Vec<(String, Option<String>)> {
    out.labels
        .iter()
        .map(|op| serde_json::to_value(op).unwrap())
        .map(|v| {
            assert_eq!(
                (v["kind"].as_str(), v["operation"].as_str()),
                (Some("Node"), Some("MergePatch"))
            );
            assert_eq!(v["ignoreMissingObject"], true);
            let labels = v["mergePatch"]["metadata"]["labels"].as_object().unwrap();
            assert_eq!(labels.len(), 1, "only the BGP member label: {labels:?}");
            let value = &labels[labels::BGP_MEMBER];
            (v["name"].as_str().unwrap().to_owned(), value.as_str().map(str::to_owned))
        })
        .collect()
}

fn configuration(name: &str, selector: Value) -> Value {
    json!({"name": name, "spec": {"mode": "BGP", "nodeSelector": selector,
        "bgp": {"peerNames": []}, "advertisements": []}})
}

#[test]
fn selected_nodes_get_the_member_label_ready_or_not_excluded_never() {
    let nodes = vec![
        json!({"name": "front-0", "labels": {"role": "front"}, "ready": true}),
        json!({"name": "front-1", "labels": {"role": "front"}, "ready": false}),
        json!({"name": "front-2", "labels": {"role": "front",
            labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS: ""}, "ready": true}),
        json!({"name": "edge-0", "labels": {"role": "edge"}, "ready": true}),
        json!({"name": "worker-0", "labels": {labels::BGP_MEMBER: ""}, "ready": true}),
    ];
    let configurations = [
        configuration("front", json!({"role": "front"})),
        configuration("edge", json!({"role": "edge"})),
    ];
    let out = handle(&configurations, &peers(&[]), &set(&[]), &nodes, &[], &at());
    assert_eq!(
        label_patches(&out),
        [
            ("front-0".to_owned(), Some(String::new())),
            ("front-1".to_owned(), Some(String::new())),
            ("edge-0".to_owned(), Some(String::new())),
            ("worker-0".to_owned(), None),
        ]
    );
    assert!(out.configurations_exist);
    // The status still lists only the Ready, not excluded nodes.
    assert_eq!(status_of(&out, "front")["memberNodes"], json!(["front-0"]));
}

#[test]
fn labels_are_written_only_when_they_differ() {
    let nodes = vec![
        json!({"name": "front-0", "labels": {"role": "front", labels::BGP_MEMBER: ""}, "ready": true}),
        json!({"name": "front-1", "labels": {"role": "front", labels::BGP_MEMBER: "yes"}, "ready": true}),
        json!({"name": "worker-0", "labels": {}, "ready": true}),
    ];
    let out = handle(
        &[configuration("front", json!({"role": "front"}))],
        &peers(&[]),
        &set(&[]),
        &nodes,
        &[],
        &at(),
    );
    assert_eq!(
        label_patches(&out),
        [("front-1".to_owned(), Some(String::new()))],
        "only the value the DaemonSet's nodeSelector would not match is rewritten"
    );
}

#[test]
fn without_a_configuration_every_label_goes_and_nothing_bgp_renders() {
    let nodes = vec![
        json!({"name": "front-0", "labels": {"role": "front", labels::BGP_MEMBER: ""}, "ready": true}),
        json!({"name": "worker-0", "labels": {}, "ready": true}),
    ];
    let out = handle(&[], &peers(&[]), &set(&[]), &nodes, &[], &at());
    assert_eq!(label_patches(&out), [("front-0".to_owned(), None)]);
    assert!(!out.configurations_exist);

    // A configuration that cannot be read selects nothing and renders nothing.
    let broken = json!({"name": "broken", "spec": {"mode": "BGP", "nodeSelector": "front"}});
    let out = handle(&[broken], &peers(&[]), &set(&[]), &nodes, &[], &at());
    assert_eq!(label_patches(&out), [("front-0".to_owned(), None)]);
    assert!(!out.configurations_exist);
    assert_eq!(out.skipped.len(), 1);
}

#[test]
fn an_empty_selector_selects_every_node_but_the_excluded() {
    let nodes = vec![
        json!({"name": "a", "labels": {}, "ready": true}),
        json!({"name": "b", "labels": {labels::EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS: "true"}, "ready": true}),
    ];
    let out =
        handle(&[configuration("all", json!({}))], &peers(&[]), &set(&[]), &nodes, &[], &at());
    assert_eq!(label_patches(&out), [("a".to_owned(), Some(String::new()))]);
}

#[test]
fn a_member_without_a_ready_bgp_speaker_is_a_series_once_speakers_exist() {
    let configuration =
        json!({"name": "front", "spec": {"mode": "BGP", "nodeSelector": {"role": "front"}}});
    let series = |speakers: &[Value]| -> Vec<String> {
        let out = handle(
            std::slice::from_ref(&configuration),
            &peers(&[]),
            &set(&[]),
            &nodes(),
            speakers,
            &at(),
        );
        out.metrics
            .iter()
            .map(|m| serde_json::to_value(m).unwrap())
            .filter(|m| m["name"] == metrics::BGP_MEMBER_NODE_WITHOUT_READY_SPEAKER)
            .map(|m| m["labels"]["node"].as_str().unwrap().to_owned())
            .collect()
    };
    // No BGP speaker pod at all: the DaemonSet is not rolled out yet, nothing is reported.
    assert!(series(&[]).is_empty());
    // front-0's pod is Ready; front-1 (a member though not Ready itself) has none that is.
    let speakers = [
        json!({"node": "front-0", "ready": true}),
        json!({"node": "front-1", "ready": false}),
        json!({"node": "worker-0", "ready": true}),
    ];
    assert_eq!(series(&speakers), ["front-1"]);
}
