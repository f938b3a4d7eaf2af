//! The metric storage with addon-operator's group semantics.
//!
//! Every operation has a group (the hook name when absent); for each group present in a run, all
//! previously stored metrics of that group are dropped before the run's operations are applied, so
//! a run replaces its group's whole set. In a group only `set`, `add` and `expire` are valid
//! (`reference/addon-operator.md` §3.4). Labels `hook` and `module` are added to every metric.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// One stored metric value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Group.
    pub group: String,
    /// Name.
    pub name: String,
    /// Labels including `hook` and `module`.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

#[derive(Debug, Deserialize)]
struct RawOp {
    name: Option<String>,
    group: Option<String>,
    action: Option<String>,
    value: Option<f64>,
    set: Option<f64>,
    add: Option<f64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// One parsed metric operation.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricOp {
    group: String,
    name: String,
    action: String,
    value: f64,
    labels: BTreeMap<String, String>,
}

/// Parses and validates `METRICS_PATH` content; `default_group` is the hook name.
pub fn parse_metrics(text: &str, default_group: &str) -> Result<Vec<MetricOp>> {
    let mut ops = Vec::new();
    for raw in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let raw = raw.map_err(|e| Error::Metrics(format!("got bad metrics: {e}")))?;
        let raw: RawOp = serde_json::from_value(raw)
            .map_err(|e| Error::Metrics(format!("got bad metrics: {e}")))?;
        let (action, value) = match (raw.action.as_deref(), raw.value, raw.set, raw.add) {
            (Some(a), v, None, None) => (a.to_owned(), v),
            (None, None, Some(v), None) => ("set".to_owned(), Some(v)),
            (None, None, None, Some(v)) => ("add".to_owned(), Some(v)),
            _ => {
                return Err(Error::Metrics(format!(
                    "metric {:?}: one of action, set or add is required",
                    raw.name
                )));
            }
        };
        let group = raw.group.unwrap_or_else(|| default_group.to_owned());
        let name = raw.name.unwrap_or_default();
        match action.as_str() {
            "set" | "add" => {
                if name.is_empty() {
                    return Err(Error::Metrics(format!(
                        "metric in group {group:?}: 'name' is required"
                    )));
                }
                let value = value.ok_or_else(|| {
                    Error::Metrics(format!("metric {name:?}: 'value' is required"))
                })?;
                ops.push(MetricOp { group, name, action, value, labels: raw.labels });
            }
            "expire" => ops.push(MetricOp { group, name, action, value: 0.0, labels: raw.labels }),
            other => {
                return Err(Error::Metrics(format!(
                    "metric {name:?}: action {other:?} is not allowed for grouped metrics (use set, add or expire)"
                )));
            }
        }
    }
    Ok(ops)
}

/// A metric's identity within a group: name and labels.
type MetricKey = (String, BTreeMap<String, String>);

/// Metrics by group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricStore {
    groups: BTreeMap<String, BTreeMap<MetricKey, f64>>,
}

impl MetricStore {
    /// Applies one run's operations: every group present is replaced.
    pub fn apply(&mut self, ops: &[MetricOp], hook: &str, module: &str) {
        for op in ops {
            self.groups.remove(&op.group);
        }
        for op in ops {
            if op.action == "expire" {
                continue;
            }
            let mut labels = op.labels.clone();
            labels.insert("hook".into(), hook.into());
            labels.insert("module".into(), module.into());
            let slot = self
                .groups
                .entry(op.group.clone())
                .or_default()
                .entry((op.name.clone(), labels))
                .or_insert(0.0);
            if op.action == "add" {
                *slot += op.value;
            } else {
                *slot = op.value;
            }
        }
    }

    /// Every stored metric, by group, name and labels.
    pub fn all(&self) -> Vec<Metric> {
        self.groups
            .iter()
            .flat_map(|(group, metrics)| {
                metrics.iter().map(|((name, labels), value)| Metric {
                    group: group.clone(),
                    name: name.clone(),
                    labels: labels.clone(),
                    value: *value,
                })
            })
            .collect()
    }

    /// The value of the metric `name` whose labels include every given pair.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.all()
            .into_iter()
            .find(|m| {
                m.name == name
                    && labels.iter().all(|(k, v)| m.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|m| m.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_replaced_per_run() {
        let mut store = MetricStore::default();
        let run1 = parse_metrics(
            "{\"name\":\"a\",\"action\":\"set\",\"value\":1,\"labels\":{\"x\":\"1\"}}\n{\"name\":\"b\",\"set\":2}\n{\"group\":\"g\",\"name\":\"c\",\"action\":\"add\",\"value\":1}\n{\"group\":\"g\",\"name\":\"c\",\"action\":\"add\",\"value\":2}",
            "hook-a",
        )
        .unwrap();
        store.apply(&run1, "hook-a", "m");
        assert_eq!(store.value("a", &[("x", "1"), ("hook", "hook-a"), ("module", "m")]), Some(1.0));
        assert_eq!(store.value("b", &[]), Some(2.0));
        assert_eq!(store.value("c", &[]), Some(3.0));
        let run2 = parse_metrics("{\"name\":\"b\",\"action\":\"set\",\"value\":5}\n{\"group\":\"g\",\"action\":\"expire\"}", "hook-a").unwrap();
        store.apply(&run2, "hook-a", "m");
        assert_eq!(store.value("a", &[]), None, "the default group was replaced");
        assert_eq!(store.value("b", &[]), Some(5.0));
        assert_eq!(store.value("c", &[]), None);
    }

    #[test]
    fn observe_and_nameless_values_are_rejected() {
        let err = parse_metrics(r#"{"name":"h","action":"observe","value":1,"buckets":[1]}"#, "h")
            .unwrap_err();
        assert!(err.to_string().contains("not allowed for grouped metrics"), "{err}");
        assert!(parse_metrics(r#"{"action":"set","value":1}"#, "h").is_err());
        assert!(parse_metrics(r#"{"name":"x","action":"set"}"#, "h").is_err());
    }
}
