//! Scenario fixtures as data, so hook tests read like the behaviour contract.
//!
//! ```yaml
//! name: two ready nodes
//! kinds:                      # CRDs the fake API must know
//!   - {apiVersion: example.io/v1, kind: Widget, namespaced: true, status: true}
//! cluster:                    # objects present before the module starts
//!   - {apiVersion: v1, kind: Node, metadata: {name: n1}}
//! moduleConfig:               # optional: spec.settings become config values (and values)
//!   apiVersion: deckhouse.io/v1alpha1
//!   kind: ModuleConfig
//!   metadata: {name: my-module}
//!   spec: {version: 1, enabled: true, settings: {logLevel: Debug}}
//! values: {internal: {}}      # initial module values (merged over settings)
//! expect:
//!   objects:                  # each must exist and contain these fields (subset match;
//!                             # a field given as null must be absent)
//!     - {apiVersion: v1, kind: ConfigMap, metadata: {name: x, namespace: ns}, data: {a: "1"}}
//!   absent:
//!     - {kind: ConfigMap, namespace: ns, name: stale}
//!   values: {internal: {nodes: [n1]}}   # subset of module values
//!   metrics:
//!     - {name: d8_nodes, labels: {role: worker}, value: 1}
//! steps:                      # later changes, each followed by run_until_quiet and its checks
//!   - name: node n1 fails
//!     patch:                  # fixture merge patches (status included)
//!       - {kind: Node, name: n1, merge: {status: {conditions: [{type: Ready, status: "False"}]}}}
//!     apply: []               # objects to create or replace as given
//!     delete: []              # objects to delete (with garbage collection)
//!     schedule: null          # a schedule binding to fire
//!     expect: {values: {internal: {nodes: []}}}
//! ```
//!
//! [`Scenario::run`] does it all: start the module, check `expect`, then every step.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::cluster::{FakeCluster, KindInfo};
use crate::runner::Framework;
use crate::values::ValuesSchema;
use crate::{Error, Result};

/// One scenario file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Title.
    #[serde(default)]
    pub name: String,
    /// Longer explanation.
    #[serde(default)]
    pub description: String,
    /// Kinds to register in the fake API.
    #[serde(default)]
    pub kinds: Vec<KindSpec>,
    /// Objects present at start.
    #[serde(default)]
    pub cluster: Vec<Value>,
    /// The module's ModuleConfig.
    #[serde(default)]
    pub module_config: Option<Value>,
    /// Initial module values.
    #[serde(default)]
    pub values: Option<Value>,
    /// Global values.
    #[serde(default)]
    pub global_values: Option<Value>,
    /// What must hold after the start.
    #[serde(default)]
    pub expect: Expect,
    /// Later changes, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// One change of the world after the start, followed by `run_until_quiet`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// What happens.
    #[serde(default)]
    pub name: String,
    /// Objects created or replaced as given.
    #[serde(default)]
    pub apply: Vec<Value>,
    /// Merge patches of existing objects, status included.
    #[serde(default)]
    pub patch: Vec<FixturePatch>,
    /// Objects deleted.
    #[serde(default)]
    pub delete: Vec<ObjectRefSpec>,
    /// A schedule binding fired after the changes.
    #[serde(default)]
    pub schedule: Option<String>,
    /// What must hold afterwards.
    #[serde(default)]
    pub expect: Expect,
}

/// A merge patch of a fixture object.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixturePatch {
    /// `group/version` (optional).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster scope).
    #[serde(default)]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// RFC 7386 merge patch.
    pub merge: Value,
}

/// A kind to register.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KindSpec {
    /// `group/version`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Plural (default: lower-case kind + s).
    #[serde(default)]
    pub plural: Option<String>,
    /// Namespaced or cluster-scoped.
    #[serde(default)]
    pub namespaced: bool,
    /// Status subresource.
    #[serde(default)]
    pub status: bool,
}

/// Expectations.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// Objects that must exist and contain these fields.
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Objects that must not exist.
    #[serde(default)]
    pub absent: Vec<ObjectRefSpec>,
    /// Subset of module values.
    #[serde(default)]
    pub values: Option<Value>,
    /// Metrics.
    #[serde(default)]
    pub metrics: Vec<ExpectedMetric>,
}

/// An object reference in expectations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRefSpec {
    /// `group/version` (optional).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster scope).
    #[serde(default)]
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// An expected metric; `value: null`/absent means "must not exist".
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectedMetric {
    /// Metric name.
    pub name: String,
    /// Labels that must be present.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Expected value.
    #[serde(default)]
    pub value: Option<f64>,
}

impl Scenario {
    /// Parses a scenario.
    pub fn from_yaml(text: &str) -> Result<Self> {
        serde_norway::from_str(text)
            .map_err(|source| Error::Yaml { what: "scenario".into(), source })
    }

    /// Reads a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            action: "read",
            path: path.into(),
            source,
        })?;
        serde_norway::from_str(&text)
            .map_err(|source| Error::Yaml { what: path.display().to_string(), source })
    }

    /// The fake cluster of the scenario.
    pub fn cluster(&self) -> Result<FakeCluster> {
        let mut cluster = FakeCluster::new();
        for k in &self.kinds {
            let mut info = KindInfo::new(&k.api_version, &k.kind, k.namespaced, k.status);
            if let Some(p) = &k.plural {
                info.plural = p.clone();
            }
            cluster.register_kind(info);
        }
        for object in self.cluster.iter().chain(&self.module_config) {
            cluster.insert(object.clone())?;
        }
        Ok(cluster)
    }

    /// A framework for `binary` loaded with this scenario (not started).
    pub fn framework(
        &self,
        binary: impl AsRef<Path>,
        module: &str,
        openapi_dir: Option<&Path>,
    ) -> Result<Framework> {
        let mut fw = Framework::new(binary, module)?;
        if let Some(dir) = openapi_dir {
            fw = fw.with_schema(ValuesSchema::load(dir)?);
        }
        *fw.cluster_mut() = self.cluster()?;
        let settings = self
            .module_config
            .as_ref()
            .and_then(|mc| mc.pointer("/spec/settings"))
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        let mut values = settings.clone();
        if let Some(v) = &self.values {
            crate::cluster::merge(&mut values, v);
        }
        fw.set_config_values(settings);
        fw.set_values(values);
        if let Some(g) = &self.global_values {
            fw.set_global_values(g.clone());
        }
        Ok(fw)
    }

    /// Starts the module, checks `expect`, then applies every step, runs until quiet and checks
    /// the step's expectations. Returns the framework for further assertions.
    pub fn run(
        &self,
        binary: impl AsRef<Path>,
        module: &str,
        openapi_dir: Option<&Path>,
    ) -> Result<Framework> {
        let mut fw = self.framework(binary, module, openapi_dir)?;
        fw.start()?;
        self.check(&fw)?;
        for (i, step) in self.steps.iter().enumerate() {
            let label = |e: Error| match e {
                Error::Expectation(f) => Error::Expectation(
                    f.into_iter().map(|m| format!("step {i} ({}): {m}", step.name)).collect(),
                ),
                other => other,
            };
            for object in &step.apply {
                fw.cluster_mut().insert(object.clone())?;
            }
            for p in &step.patch {
                let mut object = fw
                    .cluster()
                    .get_or_not_found(p.api_version.as_deref(), &p.kind, &p.namespace, &p.name)
                    .map_err(Error::Api)?;
                crate::cluster::merge(&mut object, &p.merge);
                fw.cluster_mut().insert(object)?;
            }
            for d in &step.delete {
                fw.cluster_mut().remove(
                    d.api_version.as_deref(),
                    &d.kind,
                    &d.namespace,
                    &d.name,
                )?;
            }
            if let Some(schedule) = &step.schedule {
                fw.run_schedule(schedule)?;
            }
            fw.run_until_quiet()?;
            step.expect.check(&fw).map_err(label)?;
        }
        Ok(fw)
    }

    /// Checks the start expectations; all failures are reported together.
    pub fn check(&self, fw: &Framework) -> Result<()> {
        self.expect.check(fw)
    }
}

impl Expect {
    /// Checks every expectation against the framework; all failures are reported together.
    pub fn check(&self, fw: &Framework) -> Result<()> {
        let mut failures = Vec::new();
        for expected in &self.objects {
            let s = |p: &str| expected.pointer(p).and_then(Value::as_str);
            let (Some(kind), Some(name)) = (s("/kind"), s("/metadata/name")) else {
                failures.push(format!("expected object without kind/metadata.name: {expected}"));
                continue;
            };
            let ns = s("/metadata/namespace").unwrap_or_default();
            match fw.cluster().get(s("/apiVersion"), kind, ns, name) {
                None => failures.push(format!("{kind} {ns}/{name}: missing")),
                Some(actual) => {
                    if let Some(diff) = subset_mismatch(actual, expected, "") {
                        failures.push(format!("{kind} {ns}/{name}: {diff}"));
                    }
                }
            }
        }
        for absent in &self.absent {
            if fw
                .cluster()
                .get(absent.api_version.as_deref(), &absent.kind, &absent.namespace, &absent.name)
                .is_some()
            {
                failures.push(format!(
                    "{} {}/{}: present but expected absent",
                    absent.kind, absent.namespace, absent.name
                ));
            }
        }
        if let Some(expected) = &self.values
            && let Some(diff) = subset_mismatch(fw.values(), expected, "")
        {
            failures.push(format!("values: {diff}"));
        }
        for m in &self.metrics {
            let labels: Vec<(&str, &str)> =
                m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let actual = fw.metrics().value(&m.name, &labels);
            if actual != m.value {
                failures.push(format!(
                    "metric {} {:?}: expected {:?}, got {actual:?}",
                    m.name, m.labels, m.value
                ));
            }
        }
        if failures.is_empty() { Ok(()) } else { Err(Error::Expectation(failures)) }
    }
}

/// Where `actual` does not contain `expected` (objects: every expected key, recursively, and a
/// key expected `null` must be absent — what a real server shows for an emptied map; arrays:
/// same length, element-wise; scalars: equal).
pub(crate) fn subset_mismatch(actual: &Value, expected: &Value, at: &str) -> Option<String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().find_map(|(k, ev)| match a.get(k) {
            Some(av) if ev.is_null() && !av.is_null() => {
                Some(format!("{at}.{k}: expected absent, got {av}"))
            }
            Some(av) => subset_mismatch(av, ev, &format!("{at}.{k}")),
            None if ev.is_null() => None,
            None => Some(format!("{at}.{k}: missing, expected {ev}")),
        }),
        (Value::Array(a), Value::Array(e)) if a.len() == e.len() => a
            .iter()
            .zip(e)
            .enumerate()
            .find_map(|(i, (av, ev))| subset_mismatch(av, ev, &format!("{at}[{i}]"))),
        _ if actual == expected => None,
        _ => Some(format!("{at}: expected {expected}, got {actual}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_matching() {
        let actual = json!({"a": {"b": 1, "c": [1, {"d": 2, "e": 3}]}, "x": "y"});
        assert_eq!(subset_mismatch(&actual, &json!({"a": {"c": [1, {"d": 2}]}}), ""), None);
        assert_eq!(
            subset_mismatch(&actual, &json!({"a": {"b": 2}}), ""),
            Some(".a.b: expected 2, got 1".into())
        );
        assert_eq!(
            subset_mismatch(&actual, &json!({"z": 1}), ""),
            Some(".z: missing, expected 1".into())
        );
        assert_eq!(subset_mismatch(&actual, &json!({"z": null, "a": {"q": null}}), ""), None);
        assert_eq!(
            subset_mismatch(&actual, &json!({"x": null}), ""),
            Some(".x: expected absent, got \"y\"".into())
        );
        assert!(
            subset_mismatch(&actual, &json!({"a": {"c": [1]}}), "").is_some(),
            "array length matters"
        );
    }

    #[test]
    fn parses_and_builds_the_cluster() {
        let s = Scenario::from_yaml(
            "name: t\nkinds: [{apiVersion: example.io/v1, kind: Widget, namespaced: false, status: true}]\ncluster:\n  - {apiVersion: example.io/v1, kind: Widget, metadata: {name: w}}\n",
        )
        .unwrap();
        let c = s.cluster().unwrap();
        assert_eq!(c.get(None, "widgets", "", "w").unwrap()["metadata"]["generation"], 1);
        assert!(Scenario::from_yaml("unknownKey: 1").is_err());
    }
}
