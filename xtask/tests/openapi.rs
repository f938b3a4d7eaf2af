//! `openapi/`: the case tests run against the schemas with the framework's transformations,
//! the v1 → v2 conversion runs through a jq implementation, and the Rust settings and values
//! types read every valid example.

use std::path::PathBuf;

use metallb_api::settings::SettingsV2;
use metallb_api::values::Values;
use serde_json::Value;
use testkit::values::ValuesSchema;

fn openapi_dir() -> PathBuf {
    xtask::repo_root().join("openapi")
}

fn read_yaml(name: &str) -> Value {
    let text = std::fs::read_to_string(openapi_dir().join(name)).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn cases(doc: &Value, pointer: &str) -> Vec<Value> {
    doc.pointer(pointer).and_then(Value::as_array).cloned().unwrap_or_default()
}

fn schema() -> ValuesSchema {
    ValuesSchema::load(&openapi_dir()).unwrap()
}

#[test]
fn positive_cases_are_valid_and_read_by_the_rust_types() {
    let (schema, doc) = (schema(), read_yaml("openapi-case-tests.yaml"));
    let config_cases = cases(&doc, "/positive/configValues");
    let value_cases = cases(&doc, "/positive/values");
    assert!(!config_cases.is_empty() && !value_cases.is_empty());
    for case in config_cases {
        schema.validate_config(&case).unwrap_or_else(|e| panic!("{case}: {e}"));
        let _: SettingsV2 =
            serde_json::from_value(case.clone()).unwrap_or_else(|e| panic!("{case}: {e}"));
    }
    for case in value_cases {
        schema.validate(&case).unwrap_or_else(|e| panic!("{case}: {e}"));
        let _: Values =
            serde_json::from_value(case.clone()).unwrap_or_else(|e| panic!("{case}: {e}"));
    }
}

#[test]
fn negative_cases_are_rejected() {
    let (schema, doc) = (schema(), read_yaml("openapi-case-tests.yaml"));
    let config_cases = cases(&doc, "/negative/configValues");
    let value_cases = cases(&doc, "/negative/values");
    assert!(config_cases.len() >= 10 && value_cases.len() >= 4);
    for case in config_cases {
        assert!(schema.validate_config(&case).is_err(), "accepted: {case}");
    }
    for case in value_cases {
        assert!(schema.validate(&case).is_err(), "accepted: {case}");
    }
}

#[test]
fn examples_in_the_schemas_are_valid() {
    let schema = schema();
    for example in cases(&read_yaml("config-values.yaml"), "/x-examples") {
        schema.validate_config(&example).unwrap_or_else(|e| panic!("{example}: {e}"));
    }
    let mut values = serde_json::json!({"internal": {}});
    schema.apply_defaults(&mut values);
    schema.validate(&values).unwrap();
    let defaults: Values = serde_json::from_value(values).unwrap();
    assert_eq!(defaults, Values::default());
}

/// Converts settings to the next version the way the framework does: the expressions joined
/// with ` | `, the first output taken.
fn convert(version: u32, settings: &Value) -> Value {
    let conversion = read_yaml(&format!("conversions/v{version}.yaml"));
    let filter = cases(&conversion, "/conversions")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ");
    testkit::jq::run_all(&filter, settings).unwrap().into_iter().next().unwrap_or(Value::Null)
}

#[test]
fn conversion_test_cases_hold() {
    let doc = read_yaml("conversions/testcases.yaml");
    let testcases = cases(&doc, "/testcases");
    assert!(testcases.len() >= 3);
    for case in testcases {
        let parse =
            |key: &str| -> Value { serde_norway::from_str(case[key].as_str().unwrap()).unwrap() };
        let (from, to) =
            (case["currentVersion"].as_u64().unwrap(), case["expectedVersion"].as_u64().unwrap());
        let mut settings = parse("settings");
        for version in from + 1..=to {
            settings = convert(u32::try_from(version).unwrap(), &settings);
        }
        assert_eq!(settings, parse("expected"), "{}", case["name"]);
    }
}

#[test]
fn converted_layer2_settings_are_valid_version_2_settings() {
    let v1: Value = serde_norway::from_str(
        "speaker: {nodeSelector: {role: front}, tolerations: [{operator: Exists}]}\n\
         nodeSelector: {role: system}\n\
         addressPools: [{name: a, protocol: layer2, addresses: [192.0.2.0/24]}]\n",
    )
    .unwrap();
    let v2 = convert(2, &v1);
    schema().validate_config(&v2).unwrap();
    let settings: SettingsV2 = serde_json::from_value(v2).unwrap();
    assert_eq!(settings.speaker.tolerations.len(), 1);
    assert_eq!(settings.speaker.node_selector.get("role").map(String::as_str), Some("front"));
    assert!(settings.address_pools.is_empty());
}
