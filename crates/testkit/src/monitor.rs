//! Monitors: what each kubernetes binding sees, and the events a change produces.
//!
//! One monitor per kubernetes binding keeps a cache `{object, filterResult, checksum}` of the
//! matching objects, keyed by (namespace, name) so snapshots come out sorted as the framework sorts
//! them. [`Monitor::resync`] compares the cluster with the cache like shell-operator's informer
//! (`reference/addon-operator.md` §2.4.4): Added for new objects (or objects entering the scope),
//! Modified only when the checksum changed (the jq result if there is a `jqFilter`, else the whole
//! object — and the cached copy is then left as it was, as the informer does), Deleted with the last
//! known state. The test kit applies a hook's outputs in one step, so an object created and deleted
//! within one run produces no event at all, where a real informer might see both.

use std::collections::BTreeMap;

use addon::{KubernetesBinding, LabelSelector, RawJson, SnapshotItem, WatchEvent};
use serde_json::Value;

use crate::cluster::{FakeCluster, KindInfo};
use crate::{Error, Result, jq};

#[derive(Clone, Debug, PartialEq)]
struct Cached {
    object: Value,
    filter_result: Option<RawJson>,
    checksum: String,
}

/// A change seen by a monitor.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorEvent {
    /// Event type.
    pub event: WatchEvent,
    /// Snapshot-shaped item at event time (`object` only when full objects are kept).
    pub item: SnapshotItem,
}

/// The watch behind one kubernetes binding.
#[derive(Clone, Debug)]
pub struct Monitor {
    binding: KubernetesBinding,
    keep_full_objects: bool,
    cache: BTreeMap<(String, String), Cached>,
}

impl Monitor {
    /// A monitor for `binding`; `keep_full_objects` is the effective value after the framework's
    /// defaults (true for shell hooks, false in batch mode).
    pub fn new(binding: KubernetesBinding, keep_full_objects: bool) -> Self {
        Self { binding, keep_full_objects, cache: BTreeMap::new() }
    }

    /// The binding.
    pub fn binding(&self) -> &KubernetesBinding {
        &self.binding
    }

    /// Brings the cache up to date with the cluster and returns the events, in (namespace, name)
    /// order.
    pub fn resync(&mut self, cluster: &FakeCluster) -> Result<Vec<MonitorEvent>> {
        let info = cluster
            .resolve_kind(self.binding.api_version.as_deref(), &self.binding.kind)
            .map_err(Error::Api)?
            .clone();
        let mut seen = BTreeMap::new();
        for object in cluster.list(&info) {
            if !self.matches(object, &info, cluster) {
                continue;
            }
            let ns = str_at(object, "/metadata/namespace").to_owned();
            let name = str_at(object, "/metadata/name").to_owned();
            let filter_result = match &self.binding.jq_filter {
                Some(f) => Some(RawJson::from(jq::run(f, object)?)),
                None => None,
            };
            let checksum = match &filter_result {
                Some(r) => r.to_string(),
                None => object.to_string(),
            };
            seen.insert((ns, name), Cached { object: object.clone(), filter_result, checksum });
        }
        let mut events = Vec::new();
        let mut keys: Vec<(String, String)> =
            seen.keys().chain(self.cache.keys()).cloned().collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            match (self.cache.get(&k), seen.remove(&k)) {
                (None, Some(new)) => {
                    events.push(self.event(WatchEvent::Added, &new));
                    self.cache.insert(k, new);
                }
                (Some(old), Some(new)) if old.checksum != new.checksum => {
                    events.push(self.event(WatchEvent::Modified, &new));
                    self.cache.insert(k, new);
                }
                (Some(old), None) => {
                    events.push(self.event(WatchEvent::Deleted, old));
                    self.cache.remove(&k);
                }
                _ => {}
            }
        }
        Ok(events)
    }

    /// The current snapshot, sorted by namespace then name.
    pub fn snapshot(&self) -> Vec<SnapshotItem> {
        self.cache.values().map(|c| self.item(c)).collect()
    }

    fn event(&self, event: WatchEvent, cached: &Cached) -> MonitorEvent {
        MonitorEvent { event, item: self.item(cached) }
    }

    fn item(&self, cached: &Cached) -> SnapshotItem {
        SnapshotItem {
            filter_result: cached.filter_result.clone(),
            object: self.keep_full_objects.then(|| RawJson::from(&cached.object)),
        }
    }

    fn matches(&self, object: &Value, info: &KindInfo, cluster: &FakeCluster) -> bool {
        let b = &self.binding;
        let name = str_at(object, "/metadata/name");
        let namespace = str_at(object, "/metadata/namespace");
        if let Some(sel) = &b.name_selector
            && !sel.match_names.iter().any(|n| n == name)
        {
            return false;
        }
        if let Some(sel) = &b.label_selector
            && !label_selector_matches(sel, object.pointer("/metadata/labels"))
        {
            return false;
        }
        if let Some(sel) = &b.field_selector
            && !sel
                .match_expressions
                .iter()
                .all(|e| field_matches(object, &e.field, &e.operator, &e.value))
        {
            return false;
        }
        if let (Some(sel), true) = (&b.namespace, info.namespaced) {
            if let Some(names) = &sel.name_selector
                && !names.match_names.iter().any(|n| n == namespace)
            {
                return false;
            }
            if let Some(labels) = &sel.label_selector {
                let ns = cluster.get(Some("v1"), "Namespace", "", namespace);
                if !ns.is_some_and(|ns| {
                    label_selector_matches(labels, ns.pointer("/metadata/labels"))
                }) {
                    return false;
                }
            }
        }
        true
    }
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// Kubernetes label selector semantics (`matchLabels` and `In`/`NotIn`/`Exists`/`DoesNotExist`).
pub fn label_selector_matches(selector: &LabelSelector, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    selector.match_labels.iter().all(|(k, v)| get(k) == Some(v.as_str()))
        && selector.match_expressions.iter().all(|e| {
            let value = get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| e.values.iter().any(|x| x == v)),
                "NotIn" => value.is_none_or(|v| !e.values.iter().any(|x| x == v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// Field selector semantics: the field's value as the API server renders it (strings as is,
/// booleans and numbers as text, absent as ``).
pub fn field_matches(object: &Value, field: &str, operator: &str, expected: &str) -> bool {
    let pointer: String = field.split('.').map(|s| format!("/{s}")).collect();
    let actual = match object.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    match operator {
        "=" | "==" | "Equals" => actual == expected,
        "!=" | "NotEquals" => actual != expected,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> FakeCluster {
        let mut c = FakeCluster::new();
        c.insert_yaml(
            r#"
apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {team: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: b}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: b, labels: {app: web, tier: front}}
spec: {nodeName: n1}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: p2, namespace: a, labels: {app: db}}
spec: {nodeName: n2}
status: {phase: Pending}
"#,
        )
        .unwrap();
        c
    }

    fn names(m: &Monitor) -> Vec<Value> {
        m.snapshot().into_iter().map(|i| i.filter_result.unwrap().to_value().unwrap()).collect()
    }

    #[test]
    fn selectors() {
        let c = cluster();
        let base = || KubernetesBinding::new("pods", "v1", "Pod").jq_filter(".metadata.name");
        let cases: Vec<(KubernetesBinding, Vec<&str>)> = vec![
            (base(), vec!["p2", "p1"]),
            (base().names(["p1"]), vec!["p1"]),
            (base().labels(LabelSelector::default().label("app", "web")), vec!["p1"]),
            (
                base().labels(LabelSelector::default().expression("app", "In", ["db", "x"])),
                vec!["p2"],
            ),
            (
                base().labels(LabelSelector::default().expression("app", "NotIn", ["db"])),
                vec!["p1"],
            ),
            (
                base().labels(LabelSelector::default().expression(
                    "tier",
                    "Exists",
                    Vec::<String>::new(),
                )),
                vec!["p1"],
            ),
            (
                base().labels(LabelSelector::default().expression(
                    "tier",
                    "DoesNotExist",
                    Vec::<String>::new(),
                )),
                vec!["p2"],
            ),
            (base().in_namespaces(["b"]), vec!["p1"]),
            (
                base().in_labelled_namespaces(LabelSelector::default().label("team", "x")),
                vec!["p2"],
            ),
            (base().field("status.phase", "Equals", "Running"), vec!["p1"]),
            (
                base().field("spec.nodeName", "!=", "n1").field("metadata.namespace", "=", "a"),
                vec!["p2"],
            ),
        ];
        for (binding, expected) in cases {
            let mut m = Monitor::new(binding.clone(), false);
            m.resync(&c).unwrap();
            let expected: Vec<Value> = expected.into_iter().map(Value::from).collect();
            assert_eq!(names(&m), expected, "{binding:?}");
        }
    }

    #[test]
    fn events_follow_checksums() {
        let mut c = cluster();
        let mut m = Monitor::new(
            KubernetesBinding::new("pods", "v1", "Pod").jq_filter(".spec.nodeName"),
            true,
        );
        let added = m.resync(&c).unwrap();
        assert_eq!(added.iter().map(|e| e.event).collect::<Vec<_>>(), vec![WatchEvent::Added; 2]);
        assert!(added[0].item.object.is_some());
        // A label change does not change the filter result: no event.
        c.merge_patch(None, "Pod", "b", "p1", &json!({"metadata": {"labels": {"x": "y"}}}), None)
            .unwrap();
        assert!(m.resync(&c).unwrap().is_empty());
        c.merge_patch(None, "Pod", "b", "p1", &json!({"spec": {"nodeName": "n9"}}), None).unwrap();
        let modified = m.resync(&c).unwrap();
        assert_eq!(modified.len(), 1);
        assert_eq!(modified[0].event, WatchEvent::Modified);
        assert_eq!(modified[0].item.filter_result, Some(json!("n9").into()));
        c.remove(None, "Pod", "b", "p1").unwrap();
        let deleted = m.resync(&c).unwrap();
        assert_eq!(deleted[0].event, WatchEvent::Deleted);
        assert_eq!(deleted[0].item.filter_result, Some(json!("n9").into()), "last known state");
    }

    #[test]
    fn without_filter_every_change_is_modified_and_items_are_empty_without_objects() {
        let mut c = cluster();
        let mut m = Monitor::new(KubernetesBinding::new("pods", "v1", "Pod"), false);
        m.resync(&c).unwrap();
        assert_eq!(m.snapshot(), vec![SnapshotItem::default(); 2]);
        c.merge_patch(None, "Pod", "b", "p1", &json!({"metadata": {"labels": {"x": "y"}}}), None)
            .unwrap();
        assert_eq!(m.resync(&c).unwrap()[0].event, WatchEvent::Modified);
    }

    #[test]
    fn leaving_the_scope_is_deleted() {
        let mut c = cluster();
        let mut m = Monitor::new(
            KubernetesBinding::new("pods", "v1", "Pod")
                .labels(LabelSelector::default().label("app", "web")),
            true,
        );
        m.resync(&c).unwrap();
        c.merge_patch(
            None,
            "Pod",
            "b",
            "p1",
            &json!({"metadata": {"labels": {"app": "other"}}}),
            None,
        )
        .unwrap();
        let events = m.resync(&c).unwrap();
        assert_eq!(events[0].event, WatchEvent::Deleted);
        assert_eq!(
            events[0].item.object.as_ref().unwrap().to_value().unwrap()["metadata"]["labels"]["app"],
            "web"
        );
    }
}
