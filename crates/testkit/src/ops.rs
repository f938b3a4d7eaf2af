//! Kubernetes operations as the framework's object patcher parses and executes them.
//!
//! Parsing (`object_patch.ParseOperations`, `reference/addon-operator.md` §3.3): first a JSON stream
//! of objects, else a YAML multi-document stream; a JSON array fails both, and the YAML error is the
//! one reported. Unknown keys are dropped; each operation is then checked for the fields its type
//! needs. Execution: operations run in order, all are attempted, errors are aggregated.

use addon::PatchOp;
use serde::Deserialize;
use serde_json::Value;

use crate::cluster::{ApiError, FakeCluster, Propagation};
use crate::{Error, Result, jq};

/// shell-operator's `OperationSpec`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationSpec {
    /// Operation name.
    #[serde(default)]
    pub operation: String,
    /// Object of `Create*` (a map, or a string with JSON/YAML).
    #[serde(default)]
    pub object: Option<Value>,
    /// apiVersion of deletes/patches.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Kind of deletes/patches.
    #[serde(default)]
    pub kind: Option<String>,
    /// Namespace of deletes/patches.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name of deletes/patches.
    #[serde(default)]
    pub name: Option<String>,
    /// Subresource of patches.
    #[serde(default)]
    pub subresource: Option<String>,
    /// Program of `JQPatch`.
    #[serde(default)]
    pub jq_filter: Option<String>,
    /// Document of `MergePatch` (object or string).
    #[serde(default)]
    pub merge_patch: Option<Value>,
    /// Operations of `JSONPatch` (array or string).
    #[serde(default)]
    pub json_patch: Option<Value>,
    /// NotFound is success for patches.
    #[serde(default)]
    pub ignore_missing_object: bool,
}

/// Parses `KUBERNETES_PATCH_PATH` content and validates each operation.
pub fn parse_operations(text: &str) -> Result<Vec<OperationSpec>> {
    let specs = match parse_json_stream(text) {
        Ok(specs) => specs,
        Err(_) => parse_yaml_stream(text)?,
    };
    for (i, spec) in specs.iter().enumerate() {
        validate(spec).map_err(|reason| Error::KubeOps(format!("operation {i}: {reason}")))?;
    }
    Ok(specs)
}

fn parse_json_stream(text: &str) -> std::result::Result<Vec<OperationSpec>, serde_json::Error> {
    serde_json::Deserializer::from_str(text).into_iter::<OperationSpec>().collect()
}

fn parse_yaml_stream(text: &str) -> Result<Vec<OperationSpec>> {
    let mut specs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)
            .map_err(|e| Error::KubeOps(format!("yaml: unmarshal errors: {e}")))?;
        match value {
            Value::Null => continue,
            Value::Object(_) => specs.push(
                serde_json::from_value(value)
                    .map_err(|e| Error::KubeOps(format!("yaml: unmarshal errors: {e}")))?,
            ),
            other => {
                let tag = if other.is_array() { "!!seq" } else { "!!str" };
                return Err(Error::KubeOps(format!(
                    "yaml: unmarshal errors:\n  line 1: cannot unmarshal {tag} into object_patch.OperationSpec"
                )));
            }
        }
    }
    Ok(specs)
}

fn validate(spec: &OperationSpec) -> std::result::Result<(), String> {
    let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    match spec.operation.as_str() {
        "Create" | "CreateOrUpdate" | "CreateIfNotExists" => {
            if spec.object.as_ref().is_none_or(Value::is_null) {
                return Err("object is required".into());
            }
        }
        "Delete" | "DeleteInBackground" | "DeleteNonCascading" | "JQPatch" | "MergePatch"
        | "JSONPatch" => {
            if !has(&spec.kind) || !has(&spec.name) {
                return Err("kind and name are required".into());
            }
            match spec.operation.as_str() {
                "JQPatch" if !has(&spec.jq_filter) => return Err("jqFilter is required".into()),
                "MergePatch"
                    if spec.merge_patch.as_ref().is_none_or(|m| {
                        m.as_object().is_some_and(|o| o.is_empty()) || m.is_null()
                    }) =>
                {
                    return Err("mergePatch is required".into());
                }
                "JSONPatch" => {
                    let first = match &spec.json_patch {
                        Some(Value::Array(ops)) => ops.first().cloned(),
                        Some(Value::String(_)) => return Ok(()),
                        _ => None,
                    };
                    let ok = first.is_some_and(|f| {
                        ["op", "path", "value"].iter().all(|k| f.get(*k).is_some())
                    });
                    if !ok {
                        return Err("jsonPatch must be a non-empty array whose first item has op, path and value".into());
                    }
                }
                _ => {}
            }
        }
        other => return Err(format!("unknown operation {other:?}")),
    }
    Ok(())
}

/// Object or patch given either inline or as a JSON/YAML string.
fn inline(v: &Value) -> std::result::Result<Value, String> {
    match v {
        Value::String(s) => serde_norway::from_str(s).map_err(|e| e.to_string()),
        other => Ok(other.clone()),
    }
}

/// Executes the operations in order against the cluster; every error is collected.
pub fn execute(cluster: &mut FakeCluster, specs: &[OperationSpec]) -> Result<()> {
    let errors: Vec<String> = specs.iter().filter_map(|s| execute_one(cluster, s).err()).collect();
    if errors.is_empty() { Ok(()) } else { Err(Error::Kube(errors)) }
}

fn execute_one(cluster: &mut FakeCluster, spec: &OperationSpec) -> std::result::Result<(), String> {
    let api = spec.api_version.as_deref();
    let kind = spec.kind.as_deref().unwrap_or_default();
    let ns = spec.namespace.as_deref().unwrap_or_default();
    let name = spec.name.as_deref().unwrap_or_default();
    let sub = spec.subresource.as_deref().filter(|s| !s.is_empty());
    let missing_ok = |r: std::result::Result<Value, ApiError>| match r {
        Err(ApiError::NotFound { .. }) if spec.ignore_missing_object => Ok(()),
        other => other.map(drop).map_err(|e| e.to_string()),
    };
    match spec.operation.as_str() {
        "Create" | "CreateOrUpdate" | "CreateIfNotExists" => {
            let object = inline(spec.object.as_ref().unwrap_or(&Value::Null))?;
            match (cluster.create(object.clone()), spec.operation.as_str()) {
                (Ok(_), _) | (Err(ApiError::AlreadyExists { .. }), "CreateIfNotExists") => Ok(()),
                (Err(ApiError::AlreadyExists { .. }), "CreateOrUpdate") => {
                    let api = object.get("apiVersion").and_then(Value::as_str);
                    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
                    let ns = object
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let name = object
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let existing =
                        cluster.get_or_not_found(api, kind, ns, name).map_err(|e| e.to_string())?;
                    let mut object = object;
                    if let (Some(meta), Some(rv)) = (
                        object.get_mut("metadata").and_then(Value::as_object_mut),
                        existing.pointer("/metadata/resourceVersion"),
                    ) {
                        meta.insert("resourceVersion".into(), rv.clone());
                    }
                    cluster.update(object, None).map(drop).map_err(|e| e.to_string())
                }
                (Err(e), _) => Err(e.to_string()),
            }
        }
        "Delete" | "DeleteInBackground" | "DeleteNonCascading" => {
            let propagation = match spec.operation.as_str() {
                "Delete" => Propagation::Foreground,
                "DeleteInBackground" => Propagation::Background,
                _ => Propagation::Orphan,
            };
            match cluster.delete(api, kind, ns, name, propagation) {
                Ok(()) | Err(ApiError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
        "MergePatch" => {
            let patch = inline(spec.merge_patch.as_ref().unwrap_or(&Value::Null))?;
            missing_ok(cluster.merge_patch(api, kind, ns, name, &patch, sub))
        }
        "JSONPatch" => {
            let ops: Vec<PatchOp> =
                serde_json::from_value(inline(spec.json_patch.as_ref().unwrap_or(&Value::Null))?)
                    .map_err(|e| format!("decode jsonPatch: {e}"))?;
            missing_ok(cluster.json_patch(api, kind, ns, name, &ops, sub))
        }
        "JQPatch" => {
            let current = match cluster.get_or_not_found(api, kind, ns, name) {
                Err(ApiError::NotFound { .. }) if spec.ignore_missing_object => return Ok(()),
                other => other.map_err(|e| e.to_string())?,
            };
            let filter = spec.jq_filter.as_deref().unwrap_or_default();
            let patched = jq::run(filter, &current).map_err(|e| e.to_string())?;
            if !patched.is_object() {
                return Err(format!(
                    "failed to convert filterResult:\n{patched}\nto Unstructured Object"
                ));
            }
            if patched == current {
                return Ok(());
            }
            cluster.update(patched, sub).map(drop).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown operation {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> FakeCluster {
        let mut c = FakeCluster::new();
        c.insert_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n").unwrap();
        c
    }

    fn run(c: &mut FakeCluster, text: &str) -> Result<()> {
        execute(c, &parse_operations(text)?)
    }

    #[test]
    fn a_json_array_is_rejected() {
        let err =
            parse_operations(r#"[{"operation":"Delete","kind":"Pod","name":"x"}]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into object_patch.OperationSpec"
        );
    }

    #[test]
    fn yaml_stream_and_validation() {
        let specs = parse_operations("operation: Delete\nkind: Pod\nname: a\n---\noperation: DeleteInBackground\nkind: Pod\nname: b\n").unwrap();
        assert_eq!(specs.len(), 2);
        assert!(
            parse_operations(r#"{"operation":"Remove","kind":"Pod","name":"x"}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown operation")
        );
        assert!(parse_operations(r#"{"operation":"JSONPatch","kind":"Pod","name":"x","jsonPatch":[{"op":"remove","path":"/a"}]}"#).is_err());
        assert!(
            parse_operations(
                r#"{"operation":"MergePatch","kind":"Pod","name":"x","mergePatch":{}}"#
            )
            .is_err()
        );
        assert!(parse_operations("").unwrap().is_empty());
    }

    #[test]
    fn create_variants() {
        let mut c = cluster();
        let cm = |v: &str| json!({"operation": "X", "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns", "labels": {"l": v}}, "data": {"v": v}}});
        let op = |o: &str, v: &str| {
            let mut j = cm(v);
            j["operation"] = o.into();
            j.to_string()
        };
        run(&mut c, &op("Create", "1")).unwrap();
        let err = run(&mut c, &op("Create", "2")).unwrap_err().to_string();
        assert_eq!(err, r#"kubernetes operations failed: configmaps "a" already exists"#);
        run(&mut c, &op("CreateIfNotExists", "3")).unwrap();
        assert_eq!(c.get(None, "ConfigMap", "ns", "a").unwrap()["data"]["v"], "1");
        // CreateOrUpdate is a full replace: a key missing from the new object disappears.
        let mut replace = cm("4");
        replace["operation"] = "CreateOrUpdate".into();
        replace["object"]["metadata"].as_object_mut().unwrap().remove("labels");
        run(&mut c, &replace.to_string()).unwrap();
        let obj = c.get(None, "ConfigMap", "ns", "a").unwrap();
        assert_eq!(obj["data"]["v"], "4");
        assert_eq!(obj["metadata"].get("labels"), None);
        // Object given as a YAML string.
        run(&mut c, r#"{"operation":"Create","object":"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\n"}"#).unwrap();
        assert!(c.get(None, "Secret", "ns", "s").is_some());
    }

    #[test]
    fn deletes_are_idempotent() {
        let mut c = cluster();
        run(&mut c, r#"{"operation":"Create","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns"}}}"#).unwrap();
        for op in ["Delete", "DeleteInBackground", "DeleteNonCascading"] {
            run(&mut c, &format!(r#"{{"operation":"{op}","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"a"}}"#)).unwrap();
        }
        assert!(c.get(None, "ConfigMap", "ns", "a").is_none());
    }

    #[test]
    fn patches_with_status_and_not_found_rules() {
        let mut c = cluster();
        c.insert(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "ns"}, "spec": {"ports": [1]}})).unwrap();
        run(&mut c, r#"{"operation":"MergePatch","kind":"Service","namespace":"ns","name":"s","subresource":"status","mergePatch":{"status":{"loadBalancer":{"ingress":[{"ip":"1.2.3.4"}]}}}}"#).unwrap();
        run(&mut c, r#"{"operation":"JSONPatch","kind":"Service","namespace":"ns","name":"s","jsonPatch":[{"op":"add","path":"/spec/ports/-","value":2}]}"#).unwrap();
        run(&mut c, r#"{"operation":"JQPatch","kind":"Service","namespace":"ns","name":"s","jqFilter":".metadata.labels |= (. // {}) | .metadata.labels.managed = \"true\""}"#).unwrap();
        let svc = c.get(None, "Service", "ns", "s").unwrap();
        assert_eq!(svc["status"]["loadBalancer"]["ingress"][0]["ip"], "1.2.3.4");
        assert_eq!(svc["spec"]["ports"], json!([1, 2]));
        assert_eq!(svc["metadata"]["labels"]["managed"], "true");
        let rv = svc["metadata"]["resourceVersion"].clone();
        run(&mut c, r#"{"operation":"JQPatch","kind":"Service","namespace":"ns","name":"s","jqFilter":"."}"#).unwrap();
        assert_eq!(
            c.get(None, "Service", "ns", "s").unwrap()["metadata"]["resourceVersion"],
            rv,
            "unchanged object is not written"
        );

        let missing = r#"{"operation":"MergePatch","kind":"Service","namespace":"ns","name":"gone","mergePatch":{"a":1}}"#;
        assert_eq!(
            run(&mut c, missing).unwrap_err().to_string(),
            r#"kubernetes operations failed: services "gone" not found"#
        );
        run(&mut c, &missing.replace("}}", "},\"ignoreMissingObject\":true}")).unwrap();
        run(&mut c, r#"{"operation":"JQPatch","kind":"Service","namespace":"ns","name":"gone","jqFilter":".","ignoreMissingObject":true}"#).unwrap();
        run(&mut c, r#"{"operation":"JSONPatch","kind":"Service","namespace":"ns","name":"gone","jsonPatch":"[{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]","ignoreMissingObject":true}"#).unwrap();
    }

    #[test]
    fn all_operations_are_attempted_and_errors_aggregated() {
        let mut c = cluster();
        let text = r#"{"operation":"MergePatch","kind":"Pod","namespace":"ns","name":"x","mergePatch":{"a":1}}
{"operation":"Create","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns"}}}
{"operation":"MergePatch","kind":"Pod","namespace":"ns","name":"y","mergePatch":{"a":1}}"#;
        let err = run(&mut c, text).unwrap_err();
        assert!(matches!(&err, Error::Kube(errors) if errors.len() == 2), "{err}");
        assert!(c.get(None, "ConfigMap", "ns", "a").is_some());
    }
}
