//! What a hook run reads ([`HookInput`]) and writes ([`HookOutput`]).
//!
//! Input files: `BINDING_CONTEXT_PATH`, `VALUES_PATH`, `CONFIG_VALUES_PATH`. Output files (pre-created
//! empty by the framework; empty means "no result"): `VALUES_JSON_PATCH_PATH`,
//! `KUBERNETES_PATCH_PATH`, `METRICS_PATH` (`reference/addon-operator.md` §2.1). The config values
//! patch is never written: Deckhouse fails any hook that changes config values (§3.2).

use std::borrow::Borrow;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::context::{self, BindingContext, SnapshotItem};
use crate::kube::KubeOperation;
use crate::kube_output::KubeOutput;
use crate::metrics::MetricOperation;
use crate::raw::RawJson;
use crate::values::PatchableValues;
use crate::{Error, Result};

/// Deckhouse's Go test harness passes the kubernetes output file under this name instead of
/// `KUBERNETES_PATCH_PATH` (`reference/addon-operator.md` §6.1).
pub const D8_TEST_KUBERNETES_PATCH_SET_FILE: &str = "D8_TEST_KUBERNETES_PATCH_SET_FILE";

/// Everything the framework hands to one hook run.
#[derive(Clone, Debug, PartialEq)]
pub struct HookInput {
    root_key: String,
    contexts: Vec<BindingContext>,
    values: Value,
    global_values: Value,
    config_values: Value,
    /// The framework's Kubernetes operations file, which [`HookOutput`] writes as it goes.
    kube_path: Option<PathBuf>,
}

impl HookInput {
    /// An input from parts, for unit tests of hooks; `values`/`config_values` are the module parts.
    pub fn new(
        root_key: impl Into<String>,
        contexts: Vec<BindingContext>,
        values: Value,
        config_values: Value,
    ) -> Self {
        Self {
            root_key: root_key.into(),
            contexts,
            values: object_or_empty(values),
            global_values: Value::Object(Map::new()),
            config_values: object_or_empty(config_values),
            kube_path: None,
        }
    }

    /// Reads the input files named by the environment.
    pub fn from_env(root_key: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let path = |name: &'static str| env(name).map(PathBuf::from).ok_or(Error::MissingEnv(name));
        let contexts_path = path("BINDING_CONTEXT_PATH")?;
        let contexts = context::parse_contexts(&read(&contexts_path)?)
            .map_err(|source| Error::Json { what: "binding context", source })?;
        let values = read_json(&path("VALUES_PATH")?, "values")?;
        let config_values = match env("CONFIG_VALUES_PATH") {
            Some(p) => read_json(Path::new(&p), "config values")?,
            None => Value::Null,
        };
        Ok(Self {
            root_key: root_key.to_owned(),
            contexts,
            global_values: object_or_empty(values.get("global").cloned().unwrap_or_default()),
            values: object_or_empty(values.get(root_key).cloned().unwrap_or_default()),
            config_values: object_or_empty(
                config_values.get(root_key).cloned().unwrap_or_default(),
            ),
            kube_path: env("KUBERNETES_PATCH_PATH")
                .or_else(|| env(D8_TEST_KUBERNETES_PATCH_SET_FILE))
                .map(PathBuf::from),
        })
    }

    /// The values root key.
    pub fn root_key(&self) -> &str {
        &self.root_key
    }

    /// Every binding context of this run, in order.
    pub fn binding_contexts(&self) -> &[BindingContext] {
        &self.contexts
    }

    /// The module's values (`{}` if the framework sent none).
    pub fn values(&self) -> &Value {
        &self.values
    }

    /// `global` values.
    pub fn global_values(&self) -> &Value {
        &self.global_values
    }

    /// The module's config values: the user's settings (`{}` when `null`).
    pub fn config_values(&self) -> &Value {
        &self.config_values
    }

    /// Whether any context carries the snapshot of `binding`.
    pub fn has_snapshot(&self, binding: &str) -> bool {
        self.contexts.iter().any(|c| c.snapshot(binding).is_some())
    }

    /// Raw snapshot items of `binding`, from the last context that carries them (snapshots are
    /// re-read at execution time, so every context of a run carries the same state).
    pub fn snapshot_items(&self, binding: &str) -> Result<&[SnapshotItem]> {
        self.contexts
            .iter()
            .rev()
            .find_map(|c| c.snapshot(binding))
            .ok_or_else(|| Error::NoSnapshot(binding.to_owned()))
    }

    /// The snapshot of `binding` deserialized item by item from `filterResult` (when the binding has
    /// a jq filter), else from `object`. Use `Option<T>` to accept filters that yield `null`.
    pub fn snapshot<T: DeserializeOwned>(&self, binding: &str) -> Result<Vec<T>> {
        self.snapshot_items(binding)?
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let err = |reason: String| Error::SnapshotItem {
                    binding: binding.to_owned(),
                    index,
                    reason,
                };
                let raw =
                    item.content().ok_or_else(|| err("neither filterResult nor object".into()))?;
                raw.parse_owned().map_err(|e| err(e.to_string()))
            })
            .collect()
    }

    /// The items of `binding` as JSON text, without the `null`s of filters that leave objects
    /// out. For hooks that read large snapshots into borrowed types, or skip a malformed item
    /// instead of failing on it (which [`HookInput::snapshot`] cannot).
    pub fn snapshot_json(&self, binding: &str) -> Result<Vec<&RawJson>> {
        self.snapshot_items(binding)?
            .iter()
            .enumerate()
            .filter_map(|(index, item)| non_null(binding, index, item.content()))
            .collect()
    }

    /// [`HookInput::snapshot_json`], taken out of the input: the items are the caller's, and
    /// every context's copy of the snapshot is gone from the input. For a hook that reads a
    /// large snapshot into its own types and can then free its text.
    pub fn take_snapshot_json(&mut self, binding: &str) -> Result<Vec<RawJson>> {
        let last = self
            .contexts
            .iter()
            .rposition(|c| c.snapshot(binding).is_some())
            .ok_or_else(|| Error::NoSnapshot(binding.to_owned()))?;
        let items = self.contexts[last].take_snapshot(binding);
        for c in &mut self.contexts[..last] {
            c.take_snapshot(binding);
        }
        items
            .into_iter()
            .enumerate()
            .filter_map(|(index, item)| {
                non_null(binding, index, item.filter_result.or(item.object))
            })
            .collect()
    }

    /// An empty output whose values patch starts from this run's module values. Its
    /// Kubernetes operations go to the framework's file as they come when this input was read
    /// from it (see [`KubeOutput`]).
    pub fn output(&self) -> HookOutput {
        HookOutput {
            values: PatchableValues::from_object(
                self.root_key.clone(),
                self.values.as_object().cloned().unwrap_or_default(),
            ),
            kubernetes: match &self.kube_path {
                Some(path) => KubeOutput::to_file(path.clone()),
                None => KubeOutput::in_memory(),
            },
            metrics: Vec::new(),
        }
    }
}

/// What a hook reads of snapshot item `index`: nothing for a filter's `null` (the filter left
/// the object out), an error for an item with neither a filter result nor an object.
fn non_null<R: Borrow<RawJson>>(
    binding: &str,
    index: usize,
    content: Option<R>,
) -> Option<Result<R>> {
    match content {
        Some(raw) if raw.borrow().is_null() => None,
        Some(raw) => Some(Ok(raw)),
        None => Some(Err(Error::SnapshotItem {
            binding: binding.to_owned(),
            index,
            reason: "neither filterResult nor object".into(),
        })),
    }
}

fn object_or_empty(v: Value) -> Value {
    if v.is_object() { v } else { Value::Object(Map::new()) }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.into(),
        source,
    })
}

fn read_json(path: &Path, what: &'static str) -> Result<Value> {
    let text = read(path)?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|source| Error::Json { what, source })
}

/// Everything one hook run produces.
#[derive(Debug)]
pub struct HookOutput {
    /// Values changes, as a minimal strict patch.
    pub values: PatchableValues,
    /// Kubernetes operations, executed by the framework in order.
    pub kubernetes: KubeOutput,
    /// Metric operations.
    pub metrics: Vec<MetricOperation>,
}

impl HookOutput {
    /// Appends a Kubernetes operation.
    pub fn kube(&mut self, op: KubeOperation) {
        self.kubernetes.push(op);
    }

    /// Appends a metric operation.
    pub fn metric(&mut self, op: MetricOperation) {
        self.metrics.push(op);
    }

    /// The values patch file content: one JSON array, or nothing when values are unchanged.
    pub fn values_patch_text(&self) -> Result<String> {
        if self.values.is_empty() {
            return Ok(String::new());
        }
        serde_json::to_string(self.values.ops()).map(|s| s + "\n").map_err(Error::Serialize)
    }

    /// Writes the output files named by the environment (and completes the Kubernetes
    /// operations file when they were streamed to it).
    ///
    /// A file whose variable is unset is skipped when there is nothing to write and is an error
    /// otherwise, so output is never lost silently. `KUBERNETES_PATCH_PATH` falls back to
    /// `D8_TEST_KUBERNETES_PATCH_SET_FILE`.
    pub fn write(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        let kube_var = if env("KUBERNETES_PATCH_PATH").is_some() {
            "KUBERNETES_PATCH_PATH"
        } else {
            D8_TEST_KUBERNETES_PATCH_SET_FILE
        };
        let values = self.values_patch_text()?;
        write_output(env, "VALUES_JSON_PATCH_PATH", values.is_empty(), |w| {
            w.write_all(values.as_bytes()).map_err(serde_json::Error::io)
        })?;
        if self.kubernetes.is_streamed() {
            self.kubernetes.finish()?;
        } else {
            write_output(env, kube_var, self.kubernetes.is_empty(), |w| {
                write_json_lines(w, self.kubernetes.held())
            })?;
        }
        write_output(env, "METRICS_PATH", self.metrics.is_empty(), |w| {
            write_json_lines(w, &self.metrics)
        })
    }
}

/// Writes one output file through a buffer, streaming: the Kubernetes operations of a large
/// run are tens of megabytes of JSON, which need not exist in memory a second time as one
/// string. A variable that is unset is fine only when there is nothing to write.
fn write_output(
    env: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    empty: bool,
    body: impl FnOnce(&mut dyn Write) -> Result<(), serde_json::Error>,
) -> Result<()> {
    let Some(path) = env(var) else {
        if empty {
            return Ok(());
        }
        return Err(Error::MissingEnv(if var == D8_TEST_KUBERNETES_PATCH_SET_FILE {
            "KUBERNETES_PATCH_PATH"
        } else {
            var
        }));
    };
    let io = |source| Error::Io { action: "write", path: path.clone().into(), source };
    let mut out = BufWriter::new(std::fs::File::create(&path).map_err(io)?);
    body(&mut out).map_err(|e| if e.is_io() { io(e.into()) } else { Error::Serialize(e) })?;
    out.flush().map_err(io)
}

/// One compact JSON object per line: the format of `KUBERNETES_PATCH_PATH` and `METRICS_PATH`
/// (the framework reads both files line by line).
fn write_json_lines<T: serde::Serialize>(
    out: &mut dyn Write,
    items: &[T],
) -> Result<(), serde_json::Error> {
    for item in items {
        serde_json::to_writer(&mut *out, item)?;
        out.write_all(b"\n").map_err(serde_json::Error::io)?;
    }
    Ok(())
}

/// [`write_json_lines`] into a string.
#[cfg(test)]
pub(crate) fn json_lines<T: serde::Serialize>(items: &[T]) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    write_json_lines(&mut out, items)?;
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::ObjectRef;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn env_of<'a>(map: &'a BTreeMap<&'static str, String>) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_files_and_deserializes_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(
            p("ctx"),
            r#"[{"binding":"nodes","type":"Group","groupName":"main","snapshots":{
                "nodes":[{"filterResult":{"name":"a"}},{"object":{"name":"b","extra":1}}],
                "maybe":[{"filterResult":null}]}}]"#,
        )
        .unwrap();
        std::fs::write(
            p("values"),
            r#"{"global":{"enabledModules":["x"]},"myModule":{"internal":{}}}"#,
        )
        .unwrap();
        std::fs::write(p("config"), r#"{"global":{},"myModule":null}"#).unwrap();
        let env: BTreeMap<&str, String> = [
            ("BINDING_CONTEXT_PATH", p("ctx")),
            ("VALUES_PATH", p("values")),
            ("CONFIG_VALUES_PATH", p("config")),
        ]
        .into();
        let input = HookInput::from_env("myModule", &env_of(&env)).unwrap();
        #[derive(Deserialize, Debug, PartialEq)]
        struct Node {
            name: String,
        }
        let nodes: Vec<Node> = input.snapshot("nodes").unwrap();
        assert_eq!(nodes, vec![Node { name: "a".into() }, Node { name: "b".into() }]);
        let maybe: Vec<Option<Node>> = input.snapshot("maybe").unwrap();
        assert_eq!(maybe, vec![None]);
        assert!(input.snapshot::<Node>("maybe").is_err());
        let texts: Vec<&str> =
            input.snapshot_json("nodes").unwrap().into_iter().map(RawJson::get).collect();
        assert_eq!(texts, [r#"{"name":"a"}"#, r#"{"name":"b","extra":1}"#]);
        assert!(input.snapshot_json("maybe").unwrap().is_empty(), "nulls are left out");
        assert!(matches!(input.snapshot::<Node>("absent"), Err(Error::NoSnapshot(_))));
        assert_eq!(input.values(), &json!({"internal": {}}));
        assert_eq!(input.config_values(), &json!({}));
        assert_eq!(input.global_values()["enabledModules"], json!(["x"]));
    }

    #[test]
    fn a_taken_snapshot_leaves_every_context() {
        let contexts = context::parse_contexts(
            r#"[{"binding":"a","type":"Event","snapshots":{"nodes":[{"filterResult":{"n":1}}],"pods":[]}},
                {"binding":"b","type":"Event","snapshots":{"nodes":[{"filterResult":{"n":2}},{"filterResult":null}]}}]"#,
        )
        .unwrap();
        let mut input = HookInput::new("m", contexts, Value::Null, Value::Null);
        let taken = input.take_snapshot_json("nodes").unwrap();
        assert_eq!(taken.iter().map(RawJson::get).collect::<Vec<_>>(), [r#"{"n":2}"#]);
        assert!(!input.has_snapshot("nodes"), "no context keeps a copy");
        assert!(input.has_snapshot("pods"));
        assert!(matches!(input.take_snapshot_json("nodes"), Err(Error::NoSnapshot(_))));
    }

    #[test]
    fn writes_outputs_with_d8_test_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        let env: BTreeMap<&str, String> = [
            ("VALUES_JSON_PATCH_PATH", p("values-patch")),
            (D8_TEST_KUBERNETES_PATCH_SET_FILE, p("kube")),
            ("METRICS_PATH", p("metrics")),
        ]
        .into();
        let input = HookInput::new("m", vec![], json!({"internal": {}}), Value::Null);
        let mut out = input.output();
        out.values.set("internal.x", 1).unwrap();
        out.kube(KubeOperation::DeleteInBackground(ObjectRef::cluster("v1", "Node", "n")));
        out.metric(MetricOperation::set("g", "n", 1.0));
        out.write(&env_of(&env)).unwrap();
        assert_eq!(
            std::fs::read_to_string(p("values-patch")).unwrap(),
            "[{\"op\":\"add\",\"path\":\"/m/internal/x\",\"value\":1}]\n"
        );
        assert_eq!(
            std::fs::read_to_string(p("kube")).unwrap(),
            "{\"operation\":\"DeleteInBackground\",\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"n\"}\n"
        );
        assert!(std::fs::read_to_string(p("metrics")).unwrap().contains("\"group\":\"g\""));
    }

    #[test]
    fn outputs_of_a_run_read_from_files_stream_their_operations() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(p("ctx"), "[]").unwrap();
        std::fs::write(p("values"), "{}").unwrap();
        for kube_var in ["KUBERNETES_PATCH_PATH", D8_TEST_KUBERNETES_PATCH_SET_FILE] {
            let env: BTreeMap<&str, String> = [
                ("BINDING_CONTEXT_PATH", p("ctx")),
                ("VALUES_PATH", p("values")),
                (kube_var, p(kube_var)),
            ]
            .into();
            let mut out = HookInput::from_env("m", &env_of(&env)).unwrap().output();
            out.kube(KubeOperation::DeleteInBackground(ObjectRef::cluster("v1", "Node", "n")));
            assert!(out.kubernetes.held().is_empty(), "{kube_var}: not kept in memory");
            out.write(&env_of(&env)).unwrap();
            assert_eq!(
                std::fs::read_to_string(p(kube_var)).unwrap(),
                "{\"operation\":\"DeleteInBackground\",\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"n\"}\n"
            );
        }
    }

    #[test]
    fn missing_output_variable_is_an_error_only_with_content() {
        let empty: BTreeMap<&str, String> = BTreeMap::new();
        let input = HookInput::new("m", vec![], Value::Null, Value::Null);
        let mut out = input.output();
        out.write(&env_of(&empty)).unwrap();
        out.kube(KubeOperation::DeleteInBackground(ObjectRef::cluster("v1", "Node", "n")));
        let err = out.write(&env_of(&empty)).unwrap_err();
        assert_eq!(err.to_string(), "environment variable KUBERNETES_PATCH_PATH is not set");
    }
}
