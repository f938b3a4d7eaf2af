use super::*;

fn at() -> Timestamp {
    Timestamp("2026-12-02T10:00:00Z".into())
}

fn peer(name: &str, reference: Option<(&str, &str)>) -> Value {
    json!({"name": name, "generation": 3,
           "ref": reference.map(|(ns, n)| json!({"namespace": ns, "name": n}))})
}

fn secret(namespace: &str, name: &str, password: Option<&str>) -> Value {
    json!({"namespace": namespace, "name": name, "password": password})
}

/// `(operation, target name)` of every operation, and the objects written.
fn summary(ops: &[KubeOperation]) -> Vec<(String, String)> {
    ops.iter()
        .map(|op| {
            let v = serde_json::to_value(op).unwrap();
            let name = v
                .pointer("/object/metadata/name")
                .or_else(|| v.get("name"))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned();
            (v["operation"].as_str().unwrap().to_owned(), name)
        })
        .collect()
}

fn conditions_of(ops: &[KubeOperation], peer: &str) -> Value {
    ops.iter()
        .map(|op| serde_json::to_value(op).unwrap())
        .find(|v| v["operation"] == "MergePatch" && v["name"] == peer)
        .map(|v| {
            serde_json::from_str::<Value>(
                v["mergePatch"].as_str().map_or(&v["mergePatch"].to_string(), |s| s),
            )
            .unwrap()
        })
        .unwrap_or(Value::Null)
}

#[test]
fn a_named_labelled_secret_is_copied_and_the_peer_says_so() {
    let ops = handle(
        true,
        &[peer("tor-a", Some(("network", "tor"))), peer("tor-b", None)],
        &[secret("network", "tor", Some("c2VjcmV0")), secret("network", "unused", Some("eA=="))],
        &[],
        &at(),
    );
    assert_eq!(
        summary(&ops),
        [
            ("MergePatch".into(), "tor-a".into()),
            ("MergePatch".into(), "tor-b".into()),
            ("CreateOrUpdate".into(), "bgp-pwd-network-tor".into()),
        ]
    );
    let copy = serde_json::to_value(&ops[2]).unwrap()["object"].clone();
    assert_eq!(copy["metadata"]["namespace"], "d8-metallb");
    assert_eq!(copy["data"], json!({"password": "c2VjcmV0"}));
    assert_eq!(copy["metadata"]["labels"][labels::BGP_PASSWORD_COPY], "true");
    assert!(
        copy["metadata"]["labels"].get(labels::BGP_PASSWORD).is_none(),
        "a copy is never a source"
    );
    let condition = &conditions_of(&ops, "tor-a")["status"]["conditions"][0];
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], cond::REASON_PASSWORD_SECRET_COPIED);
    assert_eq!(condition["observedGeneration"], 3);
    assert_eq!(
        conditions_of(&ops, "tor-b")["status"]["conditions"][0]["reason"],
        cond::REASON_NO_PASSWORD
    );
}

#[test]
fn unusable_secrets_are_conditions_never_errors() {
    let long = "x".repeat(250);
    let ops = handle(
        true,
        &[
            peer("missing", Some(("network", "nope"))),
            peer("keyless", Some(("network", "keyless"))),
            peer("long", Some(("network", &long))),
        ],
        &[secret("network", "keyless", None)],
        &[],
        &at(),
    );
    let reason = |p: &str| conditions_of(&ops, p)["status"]["conditions"][0].clone();
    assert_eq!(reason("missing")["reason"], cond::REASON_PASSWORD_SECRET_NOT_FOUND);
    assert!(reason("missing")["message"].as_str().unwrap().contains(labels::BGP_PASSWORD));
    assert_eq!(reason("keyless")["reason"], cond::REASON_PASSWORD_KEY_MISSING);
    assert_eq!(reason("long")["reason"], cond::REASON_PASSWORD_SECRET_NAME_TOO_LONG);
    for p in ["missing", "keyless", "long"] {
        assert_eq!(reason(p)["status"], "False", "{p}");
    }
    assert!(summary(&ops).iter().all(|(op, _)| op == "MergePatch"), "nothing is copied");
}

#[test]
fn a_second_run_is_quiet_and_stale_copies_go() {
    let peers = [
        json!({"name": "tor-a", "generation": 3, "ref": {"namespace": "network", "name": "tor"},
        "conditions": [{"type": "Other", "status": "True"},
                       {"type": "PasswordSecretFound", "status": "True", "reason": "PasswordSecretCopied",
                        "message": "copied into d8-metallb for the speakers", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
    ];
    let sources = [secret("network", "tor", Some("c2VjcmV0"))];
    let copies = [json!({"name": "bgp-pwd-network-tor", "password": "c2VjcmV0"})];
    assert!(handle(true, &peers, &sources, &copies, &at()).is_empty());

    // The password changes: the copy follows; a copy nobody names is deleted.
    let changed = [secret("network", "tor", Some("bmV3"))];
    let stale = [copies[0].clone(), json!({"name": "bgp-pwd-old-gone", "password": "eA=="})];
    let ops = handle(true, &peers, &changed, &stale, &at());
    assert_eq!(
        summary(&ops),
        [
            ("CreateOrUpdate".into(), "bgp-pwd-network-tor".into()),
            ("DeleteInBackground".into(), "bgp-pwd-old-gone".into())
        ]
    );

    // The Secret loses its label: False, since now, other conditions kept.
    let ops = handle(true, &peers, &[], &copies, &at());
    let conditions = conditions_of(&ops, "tor-a")["status"]["conditions"].clone();
    assert_eq!(conditions[0]["type"], "Other");
    assert_eq!(conditions[1]["status"], "False");
    assert_eq!(conditions[1]["lastTransitionTime"], "2026-12-02T10:00:00Z");
    assert_eq!(summary(&ops)[1], ("DeleteInBackground".into(), "bgp-pwd-network-tor".into()));
}

#[test]
fn nothing_is_written_into_a_namespace_that_does_not_exist_yet() {
    let ops = handle(
        false,
        &[peer("tor-a", Some(("network", "tor")))],
        &[secret("network", "tor", Some("eA=="))],
        &[],
        &at(),
    );
    assert_eq!(summary(&ops), [("MergePatch".into(), "tor-a".into())]);
}
