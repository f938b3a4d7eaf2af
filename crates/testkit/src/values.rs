//! Values: the framework's patch checks, strict application and schema validation.
//!
//! A values patch is a JSON stream of arrays or single operations; `replace` and paths outside
//! `/<moduleKey>` are rejected with the framework's messages, the patch is applied strictly to
//! `{"<moduleKey>": values}` and the result is validated against `openapi/values.yaml` after the
//! framework's transformations (`reference/addon-operator.md` §3.1, §4.4): `x-extend` merge of
//! `config-values.yaml`, `additionalProperties: false` wherever an object schema declares none,
//! and apiserver-style defaults. `x-deckhouse-validations` (CEL) and `x-required-for-helm` are not
//! checked.

use std::path::Path;

use addon::{PatchOp, PatchOpKind};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Parses a values patch file: a JSON stream of arrays of operations or single operations.
pub fn parse_values_patch(text: &str) -> Result<Vec<PatchOp>> {
    let mut ops = Vec::new();
    for doc in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let doc =
            doc.map_err(|e| Error::ValuesPatch(format!("got bad json patch for values: {e}")))?;
        let items = match doc {
            Value::Array(items) => items,
            single => vec![single],
        };
        for item in items {
            let mut op: PatchOp = serde_json::from_value(item)
                .map_err(|e| Error::ValuesPatch(format!("got bad json patch for values: {e}")))?;
            // The operator reads only op, path and value.
            op.from = None;
            ops.push(op);
        }
    }
    Ok(ops)
}

/// `ValidateHookValuesPatch` of a module hook.
pub fn validate_values_patch(ops: &[PatchOp], values_key: &str) -> Result<()> {
    for op in ops {
        if op.op == PatchOpKind::Replace {
            return Err(Error::ValuesPatch("unsupported patch operation 'replace'".into()));
        }
        let root = op.path.trim_start_matches('/').split('/').next().unwrap_or_default();
        if root != values_key {
            return Err(Error::ValuesPatch(format!(
                "unacceptable patch operation for path '{root}' (only '{values_key}' accepted)"
            )));
        }
    }
    Ok(())
}

/// Applies a validated patch strictly to the module values; the result must stay an object.
pub fn apply_values_patch(values: &Value, ops: &[PatchOp], values_key: &str) -> Result<Value> {
    let mut doc = Value::Object(Map::from_iter([(values_key.to_owned(), values.clone())]));
    addon::json_patch::apply(&mut doc, ops).map_err(|e| Error::ValuesPatch(e.to_string()))?;
    match doc.get(values_key) {
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        _ => Err(Error::ValuesPatch(format!("values of '{values_key}' must be an object"))),
    }
}

/// The module's values schema after the framework's transformations.
#[derive(Clone, Debug)]
pub struct ValuesSchema {
    schema: Value,
    config_schema: Option<Value>,
}

impl ValuesSchema {
    /// Loads `values.yaml` (and `config-values.yaml` if present) from an `openapi/` directory.
    pub fn load(openapi_dir: &Path) -> Result<Self> {
        let config = read_yaml_opt(&openapi_dir.join("config-values.yaml"))?;
        let values = read_yaml_opt(&openapi_dir.join("values.yaml"))?
            .or_else(|| config.clone())
            .ok_or_else(|| Error::Schema(format!("no values.yaml in {}", openapi_dir.display())))?;
        Ok(Self::from_documents(values, config))
    }

    /// Builds the schema from parsed documents.
    pub fn from_documents(values: Value, config_values: Option<Value>) -> Self {
        let mut schema = values;
        if let (Some(config), true) = (&config_values, schema.get("x-extend").is_some()) {
            extend(&mut schema, config);
        }
        close_objects(&mut schema);
        let config_schema = config_values.map(|mut c| {
            close_objects(&mut c);
            c
        });
        Self { schema, config_schema }
    }

    /// The transformed schema.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Applies defaults like the API server: a default fills a missing property of an existing
    /// object; a defaulted object then gets its own nested defaults.
    pub fn apply_defaults(&self, values: &mut Value) {
        if let Some(c) = &self.config_schema {
            default_in(c, values);
        }
        default_in(&self.schema, values);
    }

    /// Validates module values; the error lists every violation.
    pub fn validate(&self, values: &Value) -> Result<()> {
        validate_with(&self.schema, values)
    }

    /// Validates module config values (user settings) merged over the config-values defaults,
    /// against `config-values.yaml`.
    pub fn validate_config(&self, config_values: &Value) -> Result<()> {
        match &self.config_schema {
            Some(s) => {
                let mut with_defaults = config_values.clone();
                default_in(s, &mut with_defaults);
                validate_with(s, &with_defaults)
            }
            None => Ok(()),
        }
    }
}

fn validate_with(schema: &Value, instance: &Value) -> Result<()> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(schema)
        .map_err(|e| Error::Schema(format!("invalid schema: {e}")))?;
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(Error::Schema(errors.join("; "))) }
}

fn read_yaml_opt(path: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_norway::from_str(&text)
            .map(Some)
            .map_err(|source| Error::Yaml { what: path.display().to_string(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { action: "read", path: path.into(), source }),
    }
}

/// `x-extend`: copies definitions, required (merged), properties, patternProperties, title,
/// description and `x-*` from config-values; the values schema's own entries win.
fn extend(schema: &mut Value, config: &Value) {
    let (Some(s), Some(c)) = (schema.as_object_mut(), config.as_object()) else { return };
    for (k, v) in c {
        match k.as_str() {
            "properties" | "patternProperties" | "definitions" => {
                let target = s.entry(k.clone()).or_insert_with(|| Value::Object(Map::new()));
                if let (Some(t), Some(v)) = (target.as_object_mut(), v.as_object()) {
                    for (name, sub) in v {
                        t.entry(name.clone()).or_insert_with(|| sub.clone());
                    }
                }
            }
            "required" => {
                let target = s.entry("required").or_insert_with(|| Value::Array(Vec::new()));
                if let (Some(t), Some(v)) = (target.as_array_mut(), v.as_array()) {
                    for r in v {
                        if !t.contains(r) {
                            t.push(r.clone());
                        }
                    }
                }
            }
            "title" | "description" => {
                s.entry(k.clone()).or_insert_with(|| v.clone());
            }
            x if x.starts_with("x-") && x != "x-extend" && x != "x-config-version" => {
                s.entry(k.clone()).or_insert_with(|| v.clone());
            }
            _ => {}
        }
    }
    s.shift_remove("x-extend");
}

/// Adds `additionalProperties: false` to every object schema that does not declare it, and turns
/// OpenAPI's `nullable: true` into a JSON-schema type list that admits `null`.
fn close_objects(schema: &mut Value) {
    let Some(s) = schema.as_object_mut() else { return };
    if s.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::String(t)) = s.get("type").cloned() {
            s.insert("type".into(), Value::Array(vec![Value::String(t), "null".into()]));
        }
        if let Some(Value::Array(values)) = s.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
    }
    let is_object =
        s.get("type").and_then(Value::as_str) == Some("object") || s.contains_key("properties");
    if is_object
        && !s.contains_key("additionalProperties")
        && !s.contains_key("x-kubernetes-preserve-unknown-fields")
    {
        s.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties", "patternProperties", "definitions"] {
        if let Some(props) = s.get_mut(key).and_then(Value::as_object_mut) {
            props.values_mut().for_each(close_objects);
        }
    }
    if let Some(items) = s.get_mut("items") {
        close_objects(items);
    }
    if let Some(ap @ Value::Object(_)) = s.get_mut("additionalProperties") {
        close_objects(ap);
    }
}

fn default_in(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if !obj.contains_key(name)
                        && let Some(d) = sub.get("default")
                    {
                        obj.insert(name.clone(), d.clone());
                    }
                    if let Some(child) = obj.get_mut(name) {
                        default_in(sub, child);
                    }
                }
            }
            if let Some(ap @ Value::Object(_)) = schema.get("additionalProperties") {
                for child in obj.values_mut() {
                    default_in(ap, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|i| default_in(item_schema, i));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ValuesSchema {
        let config: Value = serde_norway::from_str(
            "type: object\nproperties:\n  logLevel: {type: string, enum: [Info, Debug], default: Info}\n",
        )
        .unwrap();
        let values: Value = serde_norway::from_str(
            "x-extend: {schema: config-values.yaml}\ntype: object\nproperties:\n  internal:\n    type: object\n    default: {}\n    properties:\n      nodes: {type: array, items: {type: string}}\n      opts: {type: object, default: {}, properties: {n: {type: integer, default: 3}}}\n",
        )
        .unwrap();
        ValuesSchema::from_documents(values, Some(config))
    }

    #[test]
    fn defaults_and_extend() {
        let s = schema();
        let mut v = json!({});
        s.apply_defaults(&mut v);
        assert_eq!(v, json!({"logLevel": "Info", "internal": {"opts": {"n": 3}}}));
        s.validate(&v).unwrap();
    }

    #[test]
    fn unknown_keys_fail_validation() {
        let s = schema();
        let err = s.validate(&json!({"internal": {"typo": 1}})).unwrap_err().to_string();
        assert!(err.contains("/internal"), "{err}");
        assert!(s.validate(&json!({"logLevel": "Loud"})).is_err());
        assert!(s.validate_config(&json!({"internal": {}})).is_err(), "internal is not a setting");
    }

    #[test]
    fn nullable_admits_null() {
        let values: Value = serde_norway::from_str(
            "type: object\nproperties:\n  a: {type: string, nullable: true}\n  b: {type: string, enum: [X], nullable: true}\n  c: {type: string}\n",
        )
        .unwrap();
        let s = ValuesSchema::from_documents(values, None);
        s.validate(&json!({"a": null, "b": null})).unwrap();
        assert!(s.validate(&json!({"c": null})).is_err());
    }

    #[test]
    fn patch_checks_use_the_framework_messages() {
        let ops = parse_values_patch(r#"[{"op":"replace","path":"/m/x","value":1}]"#).unwrap();
        assert_eq!(
            validate_values_patch(&ops, "m").unwrap_err().to_string(),
            "unsupported patch operation 'replace'"
        );
        let ops = parse_values_patch(r#"{"op":"add","path":"/global/x","value":1}"#).unwrap();
        assert_eq!(
            validate_values_patch(&ops, "m").unwrap_err().to_string(),
            "unacceptable patch operation for path 'global' (only 'm' accepted)"
        );
    }

    #[test]
    fn stream_of_arrays_and_objects_applies_strictly() {
        let text = "[{\"op\":\"add\",\"path\":\"/m/a\",\"value\":{}}]\n{\"op\":\"add\",\"path\":\"/m/a/b\",\"value\":1}\n";
        let ops = parse_values_patch(text).unwrap();
        validate_values_patch(&ops, "m").unwrap();
        assert_eq!(apply_values_patch(&json!({}), &ops, "m").unwrap(), json!({"a": {"b": 1}}));
        let missing = parse_values_patch(r#"[{"op":"remove","path":"/m/zz"}]"#).unwrap();
        assert!(apply_values_patch(&json!({}), &missing, "m").is_err());
        let scalar = parse_values_patch(r#"[{"op":"add","path":"/m","value":1}]"#).unwrap();
        assert!(apply_values_patch(&json!({}), &scalar, "m").is_err());
    }
}
