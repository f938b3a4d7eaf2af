//! jq filters with gojq's output rules, through the Rust jq implementation `jaq`.
//!
//! shell-operator runs `jqFilter`s with gojq and turns the outputs into one value: no output ⇒
//! `null`, one output ⇒ that value, several ⇒ an array of them (`reference/addon-operator.md` §2.4,
//! §6.2). `JQPatch` uses the same engine, requiring one full object. jaq is close to gojq but not
//! identical, so the filters the hooks really use should be covered by tests here.
//!
//! Known divergence: gojq creates missing parents on assignment (`{} | .a.b = 1` gives
//! `{"a":{"b":1}}`), jaq fails with "cannot use null as iterable". A filter that must work in both
//! guards the parent: `.a |= (. // {}) | .a.b = 1`. The emulation is stricter here, never looser.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

use crate::{Error, Result};

/// Runs `filter` on `input` and collects every output.
pub fn run_all(filter: &str, input: &Value) -> Result<Vec<Value>> {
    let err = |reason: String| Error::Jq { filter: filter.to_owned(), reason };
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
    let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, File { code: filter, path: () })
        .map_err(|errs| err(format!("parse: {errs:?}")))?;
    let compiled = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| err(format!("compile: {errs:?}")))?;
    let text = input.to_string();
    let val =
        jaq_json::read::parse_single(text.as_bytes()).map_err(|e| err(format!("input: {e:?}")))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&compiled.lut, Vars::new([]));
    let mut outputs = Vec::new();
    for out in compiled.id.run((ctx, val)).map(unwrap_valr) {
        let out = out.map_err(|e| err(format!("run: {e}")))?;
        outputs.push(to_json(&out).map_err(|e| err(format!("output: {e}")))?);
    }
    Ok(outputs)
}

/// Runs `filter` with gojq's collapsing: 0 outputs ⇒ `null`, 1 ⇒ the value, n ⇒ an array.
pub fn run(filter: &str, input: &Value) -> Result<Value> {
    let mut outputs = run_all(filter, input)?;
    Ok(match outputs.len() {
        0 => Value::Null,
        1 => outputs.remove(0),
        _ => Value::Array(outputs),
    })
}

/// Converts a jaq value to JSON. Integral floats that jaq produced from integer arithmetic are
/// kept as JSON integers so comparisons with the cluster's integers hold.
fn to_json(val: &Val) -> std::result::Result<Value, serde_json::Error> {
    serde_json::from_str(&val.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gojq_output_collapsing() {
        let input = json!({"items": [1, 2], "metadata": {"name": "n"}});
        assert_eq!(run("empty", &input).unwrap(), Value::Null);
        assert_eq!(run(".metadata.name", &input).unwrap(), json!("n"));
        assert_eq!(run(".items[]", &input).unwrap(), json!([1, 2]));
    }

    #[test]
    fn filters_used_by_hooks() {
        let node = json!({"metadata": {"name": "n1", "labels": {"a": "b"}},
                          "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let f = r#"{name: .metadata.name, ready: ([.status.conditions[]? | select(.type=="Ready") | .status] | first)}"#;
        assert_eq!(run(f, &node).unwrap(), json!({"name": "n1", "ready": "True"}));
        assert_eq!(run(r#".metadata.labels | has("a")"#, &node).unwrap(), json!(true));
        assert_eq!(
            run(r#".metadata.labels.managed = "true" | .metadata.labels"#, &node).unwrap(),
            json!({"a": "b", "managed": "true"})
        );
        assert_eq!(run(".spec.replicas // 1 | . + 1", &node).unwrap(), json!(2));
        assert_eq!(run("[.metadata.labels | to_entries[] | .key]", &node).unwrap(), json!(["a"]));
    }

    #[test]
    fn known_divergence_from_gojq_assignment_under_null() {
        // gojq would give {"a":{"b":1}}; see the module docs.
        assert!(run(".a.b = 1", &json!({})).is_err());
        assert_eq!(run(".a |= (. // {}) | .a.b = 1", &json!({})).unwrap(), json!({"a": {"b": 1}}));
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(run(".[", &Value::Null), Err(Error::Jq { .. })));
        assert!(matches!(run("error(\"boom\")", &Value::Null), Err(Error::Jq { .. })));
    }
}
