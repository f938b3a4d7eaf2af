//! End-to-end tests of the test kit: the example batch executable (`src/bin/example-hooks.rs`) is
//! spawned through the real protocol over the fake cluster.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Value, json};
use testkit::{Error, Framework, RawOutputs, Scenario};

const BIN: &str = env!("CARGO_BIN_EXE_example-hooks");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn started() -> Result<(Scenario, Framework)> {
    let scenario = Scenario::load(fixtures().join("scenarios/two-nodes.yaml"))?;
    let mut fw = scenario.framework(BIN, "example", Some(&fixtures().join("openapi")))?;
    fw.start()?;
    Ok((scenario, fw))
}

#[test]
fn scenario_runs_to_quiet_and_meets_expectations() -> Result<()> {
    let (scenario, fw) = started()?;
    scenario.check(&fw)?;
    let broken = fw.cluster().get(None, "Node", "", "broken").unwrap();
    assert_eq!(broken["metadata"].get("labels"), None, "label removed from the not-ready node");
    let names: Vec<&str> = fw.hooks().iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["hooks/batchhooks:nodes:0", "hooks/batchhooks:loop:1", "hooks/batchhooks:cleanup:2"]
    );
    Ok(())
}

#[test]
fn contexts_have_the_batch_shapes() -> Result<()> {
    let (_, fw) = started()?;
    let runs = fw.runs();
    // Synchronization of the nodes hook: both bindings compacted into one Group context.
    let sync = &runs[0];
    assert_eq!(sync.hook, "hooks/batchhooks:nodes:0");
    let ctx = sync.contexts.as_array().unwrap();
    assert_eq!(ctx.len(), 1);
    assert_eq!(ctx[0]["type"], "Group");
    assert_eq!(ctx[0]["groupName"], "main");
    assert_eq!(ctx[0]["binding"], "state");
    let nodes = ctx[0]["snapshots"]["nodes"].as_array().unwrap();
    let names: Vec<&Value> = nodes.iter().map(|n| &n["filterResult"]["name"]).collect();
    assert_eq!(names, [&json!("broken"), &json!("front-0"), &json!("front-1")], "sorted by name");
    assert!(nodes[0].get("object").is_none(), "keepFullObjectsInMemory defaults to false");
    assert_eq!(ctx[0]["snapshots"]["state"], json!([]));
    // The loop hook keeps full objects and has no loopers: empty Group context.
    assert_eq!(
        runs[1].contexts,
        json!([{"binding": "loopers", "groupName": "main", "snapshots": {"loopers": []}, "type": "Group"}])
    );
    // beforeHelm carries all snapshots, no type.
    let before_helm = runs.iter().find(|r| r.contexts[0]["binding"] == "beforeHelm").unwrap();
    assert!(before_helm.contexts[0].get("type").is_none());
    assert!(before_helm.contexts[0]["snapshots"]["nodes"].is_array());
    // The hook's JSON logs arrive on stderr.
    assert!(sync.stderr.contains(r#""level":"info","msg":"nodes reconciled""#), "{}", sync.stderr);
    Ok(())
}

#[test]
fn unchanged_values_emit_no_patch() -> Result<()> {
    let (_, mut fw) = started()?;
    let before = fw.runs().len();
    assert!(!fw.module_run()?);
    let run = &fw.runs()[before];
    assert!(run.values_patch.is_empty());
    assert!(run.kubernetes.is_empty(), "nothing to do: {:?}", run.kubernetes);
    assert_eq!(fw.run_until_quiet()?, 0);
    Ok(())
}

#[test]
fn cluster_changes_are_fed_back_as_events() -> Result<()> {
    let (_, mut fw) = started()?;
    fw.cluster_mut()
        .merge_patch(
            None,
            "Node",
            "",
            "front-0",
            &json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            Some("status"),
        )
        .map_err(Error::Api)?;
    let rounds = fw.run_until_quiet()?;
    assert!(rounds >= 2, "the label change is one more event: {rounds}");
    assert_eq!(fw.value("internal.readyNodes"), Some(&json!(["front-1"])));
    let cm = fw.cluster().get(None, "ConfigMap", "d8-example", "ready-nodes").unwrap();
    assert_eq!(cm["data"]["nodes"], "front-1");
    assert_eq!(fw.metrics().value("d8_example_ready_nodes", &[]), Some(1.0));
    let front0 = fw.cluster().get(None, "Node", "", "front-0").unwrap();
    assert_eq!(front0["metadata"].get("labels"), None, "an emptied map is not stored");
    Ok(())
}

#[test]
fn a_hook_that_retriggers_itself_fails_the_test() -> Result<()> {
    let (_, mut fw) = started()?;
    fw.cluster_mut().insert(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "spin", "namespace": "d8-example", "labels": {"example.io/loop": "true"}}}))?;
    let err = fw.run_until_quiet().unwrap_err();
    assert!(
        matches!(&err, Error::NotQuiet { pending, .. } if pending == &["hooks/batchhooks:loop:1"]),
        "{err}"
    );
    Ok(())
}

#[test]
fn schedule_runs_delete_and_remove() -> Result<()> {
    let (_, mut fw) = started()?;
    fw.run_schedule("cleanup")?;
    assert!(fw.cluster().get(None, "ConfigMap", "d8-example", "stale").is_none());
    assert_eq!(fw.value("internal.legacy"), None);
    let run = fw.runs().last().unwrap();
    assert_eq!(
        run.contexts,
        json!([{"binding": "cleanup", "groupName": "main", "snapshots": {}, "type": "Group"}])
    );
    // Twice: the delete of a missing object is success, the remove is not emitted again.
    fw.run_schedule("cleanup")?;
    assert!(fw.runs().last().unwrap().values_patch.is_empty());
    assert!(matches!(fw.run_schedule("nope"), Err(Error::NoSuchBinding(_))));
    Ok(())
}

#[test]
fn outputs_the_framework_rejects_are_rejected() -> Result<()> {
    let (_, mut fw) = started()?;
    let reject =
        |fw: &mut Framework, raw: RawOutputs| fw.apply_outputs(0, &raw).unwrap_err().to_string();
    let values = |p: &str| RawOutputs { values_patch: p.into(), ..RawOutputs::default() };
    assert_eq!(
        reject(&mut fw, values(r#"[{"op":"replace","path":"/example/internal","value":{}}]"#)),
        "unsupported patch operation 'replace'"
    );
    assert_eq!(
        reject(&mut fw, values(r#"[{"op":"add","path":"/global/x","value":1}]"#)),
        "unacceptable patch operation for path 'global' (only 'example' accepted)"
    );
    assert_eq!(
        reject(&mut fw, values(r#"[{"op":"remove","path":"/example/internal/absent"}]"#)),
        r#"json patch remove "/example/internal/absent": path does not exist"#
    );
    let schema =
        reject(&mut fw, values(r#"[{"op":"add","path":"/example/internal/typo","value":1}]"#));
    assert!(schema.starts_with("values are invalid: /internal"), "{schema}");
    let kube = RawOutputs {
        kubernetes: r#"[{"operation":"DeleteInBackground","kind":"Node","name":"front-0"}]"#.into(),
        ..RawOutputs::default()
    };
    assert!(
        reject(&mut fw, kube).contains("cannot unmarshal !!seq into object_patch.OperationSpec")
    );
    let config = RawOutputs {
        config_values_patch: r#"[{"op":"add","path":"/example/logLevel","value":"Info"}]"#.into(),
        ..RawOutputs::default()
    };
    assert_eq!(reject(&mut fw, config), "saving patch values in ModuleConfig is forbidden");
    let observe = RawOutputs {
        metrics: r#"{"name":"h","action":"observe","value":1}"#.into(),
        ..RawOutputs::default()
    };
    assert!(reject(&mut fw, observe).contains("not allowed for grouped metrics"));
    assert!(fw.cluster().get(None, "Node", "", "front-0").is_some(), "nothing applied");
    Ok(())
}

#[test]
fn executable_answers_probes_like_a_batch_hook() -> Result<()> {
    let run = |args: &[&str]| std::process::Command::new(BIN).args(args).env_clear().output();
    let list = run(&["hook", "list"])?;
    assert_eq!(
        String::from_utf8(list.stdout)?,
        "Found 3 items:\n0 - nodes\n1 - loop\n2 - cleanup\n"
    );
    let config = run(&["hooks", "config"])?;
    let parsed: Value = serde_json::from_slice(&config.stdout)?;
    assert_eq!(parsed["version"], "v1");
    for args in [&[][..], &["--config"], &["hook", "run", "9"]] {
        let out = run(args)?;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
    let without_env = run(&["hook", "run", "0"])?;
    assert_eq!(without_env.status.code(), Some(1));
    assert!(String::from_utf8(without_env.stderr)?.contains("BINDING_CONTEXT_PATH"));
    Ok(())
}

#[test]
fn settings_violating_the_schema_stop_the_start() -> Result<()> {
    let mut scenario = Scenario::load(fixtures().join("scenarios/two-nodes.yaml"))?;
    scenario.module_config = Some(
        json!({"apiVersion": "deckhouse.io/v1alpha1", "kind": "ModuleConfig",
        "metadata": {"name": "example"}, "spec": {"version": 1, "settings": {"logLevel": "Loud"}}}),
    );
    let mut fw = scenario.framework(BIN, "example", Some(&fixtures().join("openapi")))?;
    let err = fw.start().unwrap_err();
    assert!(matches!(err, Error::Schema(_)), "{err}");
    Ok(())
}

#[test]
fn failed_expectations_are_listed() -> Result<()> {
    let (mut scenario, fw) = started()?;
    scenario.expect.values = Some(json!({"internal": {"readyNodes": ["front-0"]}}));
    let err = scenario.check(&fw).unwrap_err().to_string();
    assert!(err.contains("values: .internal.readyNodes"), "{err}");
    Ok(())
}

#[test]
fn scenario_steps_read_like_the_contract() -> Result<()> {
    let scenario = Scenario::load(fixtures().join("scenarios/two-nodes.yaml"))?;
    assert_eq!(scenario.steps.len(), 2);
    let fw = scenario.run(BIN, "example", Some(&fixtures().join("openapi")))?;
    assert_eq!(fw.value("internal.legacy"), None, "removed by the cleanup schedule");
    Ok(())
}

#[test]
fn a_failing_step_names_itself() -> Result<()> {
    let mut scenario = Scenario::load(fixtures().join("scenarios/two-nodes.yaml"))?;
    scenario.steps[0].expect.values = Some(json!({"internal": {"readyNodes": []}}));
    let err =
        scenario.run(BIN, "example", Some(&fixtures().join("openapi"))).unwrap_err().to_string();
    assert!(
        err.contains("step 0 (front-0 stops being ready): values: .internal.readyNodes"),
        "{err}"
    );
    Ok(())
}
