//! Kubernetes operations written to `KUBERNETES_PATCH_PATH`.
//!
//! The framework reads a JSON stream of objects, one operation each; a JSON array is rejected
//! (`reference/addon-operator.md` §3.3). The nine operations and their field names are exactly
//! shell-operator's `OperationSpec`; `ignoreMissingObject` is singular (module-sdk's plural spelling
//! is silently ignored by the operator), and every `jsonPatch` item carries `value` because the
//! operator's schema validates the first item as a tuple of `op`, `path`, `value`.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::json_patch::PatchOp;
use crate::raw::RawJson;

/// Which object a delete or patch targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `group/version`; the framework uses the kind's preferred version when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind.
    pub kind: String,
    /// Namespace; absent for cluster-scoped objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// A cluster-scoped object.
    pub fn cluster(
        api_version: impl Into<String>,
        kind: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            api_version: Some(api_version.into()),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    /// A namespaced object.
    pub fn namespaced(
        api_version: impl Into<String>,
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            api_version: Some(api_version.into()),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }
}

/// Options shared by the three patch operations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchOptions {
    /// Subresource such as `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// A missing object is success instead of an error.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignore_missing_object: bool,
}

/// One operation of the framework's object patcher.
///
/// Objects and merge patches are kept as serialized text ([`RawJson`]): a large run emits
/// hundreds of thousands of them, and the text is both what is written and far smaller than a
/// JSON tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "operation")]
pub enum KubeOperation {
    /// POST; fails if the object exists.
    Create {
        /// The full object.
        object: RawJson,
    },
    /// POST, or on AlreadyExists a full PUT of the given object (not a merge).
    CreateOrUpdate {
        /// The full object.
        object: RawJson,
    },
    /// POST; an existing object is success and left untouched.
    CreateIfNotExists {
        /// The full object.
        object: RawJson,
    },
    /// Foreground delete, waiting until the object is gone.
    Delete(ObjectRef),
    /// Background delete.
    DeleteInBackground(ObjectRef),
    /// Orphaning delete: dependents keep running.
    DeleteNonCascading(ObjectRef),
    /// RFC 7386 merge patch.
    MergePatch {
        /// Target.
        #[serde(flatten)]
        target: ObjectRef,
        /// The merge patch document.
        #[serde(rename = "mergePatch")]
        merge_patch: RawJson,
        /// Subresource and NotFound handling.
        #[serde(flatten)]
        options: PatchOptions,
    },
    /// RFC 6902 JSON patch.
    #[serde(rename = "JSONPatch")]
    JsonPatch {
        /// Target.
        #[serde(flatten)]
        target: ObjectRef,
        /// The operations; each is written with a `value` key.
        #[serde(rename = "jsonPatch", serialize_with = "json_patch_with_values")]
        json_patch: Vec<PatchOp>,
        /// Subresource and NotFound handling.
        #[serde(flatten)]
        options: PatchOptions,
    },
    /// GET, run a jq program producing the whole new object, PUT if it changed.
    #[serde(rename = "JQPatch")]
    JqPatch {
        /// Target.
        #[serde(flatten)]
        target: ObjectRef,
        /// The jq program.
        #[serde(rename = "jqFilter")]
        jq_filter: String,
        /// Subresource and NotFound handling.
        #[serde(flatten)]
        options: PatchOptions,
    },
}

fn json_patch_with_values<S: Serializer>(ops: &[PatchOp], s: S) -> Result<S::Ok, S::Error> {
    struct WithValue<'a>(&'a PatchOp);
    impl Serialize for WithValue<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let op = self.0;
            let mut m = s.serialize_map(None)?;
            m.serialize_entry("op", &op.op)?;
            m.serialize_entry("path", &op.path)?;
            m.serialize_entry("value", op.value.as_ref().unwrap_or(&Value::Null))?;
            if let Some(from) = &op.from {
                m.serialize_entry("from", from)?;
            }
            m.end()
        }
    }
    let mut seq = s.serialize_seq(Some(ops.len()))?;
    for op in ops {
        seq.serialize_element(&WithValue(op))?;
    }
    seq.end()
}

impl KubeOperation {
    /// A merge patch of the object itself.
    pub fn merge_patch(target: ObjectRef, patch: impl Into<RawJson>) -> Self {
        Self::MergePatch { target, merge_patch: patch.into(), options: PatchOptions::default() }
    }

    /// A JSON patch of the object itself.
    pub fn json_patch(target: ObjectRef, ops: Vec<PatchOp>) -> Self {
        Self::JsonPatch { target, json_patch: ops, options: PatchOptions::default() }
    }

    /// A jq patch of the object itself.
    pub fn jq_patch(target: ObjectRef, filter: impl Into<String>) -> Self {
        Self::JqPatch { target, jq_filter: filter.into(), options: PatchOptions::default() }
    }

    /// Targets the `status` subresource. Only patches have a subresource; the framework ignores it
    /// for create and delete operations, so those are returned unchanged.
    pub fn status(self) -> Self {
        self.with_options(|o| o.subresource = Some("status".into()))
    }

    /// A missing object is success (patches only, as in the framework).
    pub fn ignore_missing_object(self) -> Self {
        self.with_options(|o| o.ignore_missing_object = true)
    }

    fn with_options(mut self, f: impl FnOnce(&mut PatchOptions)) -> Self {
        match &mut self {
            Self::MergePatch { options, .. }
            | Self::JsonPatch { options, .. }
            | Self::JqPatch { options, .. } => f(options),
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_patch::PatchOp;
    use serde_json::json;

    #[test]
    fn all_nine_operations_golden() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s", "namespace": "ns"}});
        let job = ObjectRef::namespaced("batch/v1", "Job", "ns", "old");
        let ops = vec![
            KubeOperation::Create { object: RawJson::from(&cm) },
            KubeOperation::CreateOrUpdate { object: RawJson::from(&cm) },
            KubeOperation::CreateIfNotExists { object: RawJson::from(cm) },
            KubeOperation::Delete(job.clone()),
            KubeOperation::DeleteInBackground(job.clone()),
            KubeOperation::DeleteNonCascading(ObjectRef::cluster("v1", "Namespace", "x")),
            KubeOperation::merge_patch(
                ObjectRef::cluster("deckhouse.io/v1alpha1", "MyResource", "x"),
                json!({"status": {"phase": "Ready"}}),
            )
            .status()
            .ignore_missing_object(),
            KubeOperation::json_patch(
                ObjectRef::namespaced("apps/v1", "Deployment", "ns", "app"),
                vec![PatchOp::remove("/spec/paused"), PatchOp::replace("/spec/replicas", json!(2))],
            ),
            KubeOperation::jq_patch(job, r#".metadata.labels.managed = "true""#)
                .ignore_missing_object(),
        ];
        let expected = r#"{"operation":"Create","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s","namespace":"ns"}}}
{"operation":"CreateOrUpdate","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s","namespace":"ns"}}}
{"operation":"CreateIfNotExists","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s","namespace":"ns"}}}
{"operation":"Delete","apiVersion":"batch/v1","kind":"Job","namespace":"ns","name":"old"}
{"operation":"DeleteInBackground","apiVersion":"batch/v1","kind":"Job","namespace":"ns","name":"old"}
{"operation":"DeleteNonCascading","apiVersion":"v1","kind":"Namespace","name":"x"}
{"operation":"MergePatch","apiVersion":"deckhouse.io/v1alpha1","kind":"MyResource","name":"x","mergePatch":{"status":{"phase":"Ready"}},"subresource":"status","ignoreMissingObject":true}
{"operation":"JSONPatch","apiVersion":"apps/v1","kind":"Deployment","namespace":"ns","name":"app","jsonPatch":[{"op":"remove","path":"/spec/paused","value":null},{"op":"replace","path":"/spec/replicas","value":2}]}
{"operation":"JQPatch","apiVersion":"batch/v1","kind":"Job","namespace":"ns","name":"old","jqFilter":".metadata.labels.managed = \"true\"","ignoreMissingObject":true}
"#;
        assert_eq!(crate::io::json_lines(&ops).unwrap(), expected);
    }

    #[test]
    fn subresource_is_not_written_for_create() {
        let op = KubeOperation::CreateOrUpdate { object: RawJson::from(json!({})) }.status();
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"operation":"CreateOrUpdate","object":{}}"#
        );
    }
}
