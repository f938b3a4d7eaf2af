//! Metric operations written to `METRICS_PATH`.
//!
//! addon-operator groups metric operations and replaces a group's whole set on every run; its
//! default group is the hook name, under which `observe` is rejected
//! (`reference/addon-operator.md` §3.4). Operations here therefore always carry an explicit group
//! and only `set`, `add` and `expire` exist.

use std::collections::BTreeMap;

use serde::Serialize;

/// What to do with the metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricAction {
    /// Gauge: set the value.
    Set,
    /// Counter: add to the value.
    Add,
    /// Drop every metric of the group.
    Expire,
}

/// One metric operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricOperation {
    /// Group whose metrics this run replaces.
    pub group: String,
    /// Metric name (`{PREFIX}` is replaced by the storage prefix); absent for `expire`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Action.
    pub action: MetricAction,
    /// Value; absent for `expire`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Labels; `hook` and `module` are added by the framework and must not be used.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl MetricOperation {
    /// A gauge value.
    pub fn set(group: impl Into<String>, name: impl Into<String>, value: f64) -> Self {
        Self::value(MetricAction::Set, group, name, value)
    }

    /// A counter increment.
    pub fn add(group: impl Into<String>, name: impl Into<String>, value: f64) -> Self {
        Self::value(MetricAction::Add, group, name, value)
    }

    /// Drops every metric of a group.
    pub fn expire(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            name: None,
            action: MetricAction::Expire,
            value: None,
            labels: BTreeMap::new(),
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    fn value(
        action: MetricAction,
        group: impl Into<String>,
        name: impl Into<String>,
        value: f64,
    ) -> Self {
        Self {
            group: group.into(),
            name: Some(name.into()),
            action,
            value: Some(value),
            labels: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let ops = [
            MetricOperation::set("g", "d8_nodes", 3.0).label("role", "master"),
            MetricOperation::add("g", "d8_runs_total", 1.0),
            MetricOperation::expire("old"),
        ];
        assert_eq!(
            crate::io::json_lines(&ops).unwrap(),
            "{\"group\":\"g\",\"name\":\"d8_nodes\",\"action\":\"set\",\"value\":3.0,\"labels\":{\"role\":\"master\"}}\n\
             {\"group\":\"g\",\"name\":\"d8_runs_total\",\"action\":\"add\",\"value\":1.0}\n\
             {\"group\":\"old\",\"action\":\"expire\"}\n"
        );
    }
}
