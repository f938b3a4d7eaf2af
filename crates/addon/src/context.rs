//! Binding contexts: what the framework tells a hook about why it runs.
//!
//! `BINDING_CONTEXT_PATH` holds a JSON **array**: consecutive queued tasks of one hook are combined,
//! so one run may see several contexts of several types (`reference/addon-operator.md` §2.4). Keys
//! are optional depending on the shape, and `filterResult: null` (a jq filter with no output) differs
//! from an absent `filterResult` (no jq filter), so both are kept apart here.
//!
//! Fields are declared in alphabetical order so that serializing a context gives the same key order
//! as the framework's Go maps; the test kit relies on that for byte-exact contexts.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::WatchEvent;
use crate::raw::RawJson;

/// Type of a kubernetes/schedule context; lifecycle contexts (`onStartup`, `beforeHelm`, ...) have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindingType {
    /// Initial list of a kubernetes binding: `objects` carries the binding's snapshot.
    Synchronization,
    /// One watch event: `watchEvent`, `object`, `filterResult`.
    Event,
    /// A cron tick.
    Schedule,
    /// Any binding with a `group`: only `snapshots` (batch mode forces group `main`).
    Group,
}

/// One binding context.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingContext {
    /// Binding name, or the binding type for lifecycle bindings (`onStartup`, `beforeHelm`, ...).
    pub binding: String,
    /// Jq result of the event's object; `Some(null)` when the filter produced no output.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub filter_result: Option<RawJson>,
    /// Group of a `Group` context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// The event's object (absent with `keepFullObjectsInMemory: false`).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub object: Option<RawJson>,
    /// The binding's own snapshot in a `Synchronization` context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<SnapshotItem>>,
    /// Snapshots by binding name, re-read at execution time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<BTreeMap<String, Vec<SnapshotItem>>>,
    /// Kubernetes/schedule type; `None` for lifecycle bindings.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub binding_type: Option<BindingType>,
    /// Event type of an `Event` context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_event: Option<WatchEvent>,
}

/// One object of a snapshot: `{"filterResult": ..., "object": ...}`, either key may be absent.
///
/// Both are kept as text ([`RawJson`]): a hook deserializes the items it reads into its own
/// types, so a large snapshot never exists as a generic JSON tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotItem {
    /// Jq result; absent without a `jqFilter`, `Some(null)` when the filter produced no output.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub filter_result: Option<RawJson>,
    /// Full object; absent with `keepFullObjectsInMemory: false`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub object: Option<RawJson>,
}

impl SnapshotItem {
    /// What a hook reads of the item: the jq result when the binding has a filter, else the
    /// object; `None` when the item has neither.
    pub fn content(&self) -> Option<&RawJson> {
        self.filter_result.as_ref().or(self.object.as_ref())
    }
}

/// Keeps an explicit JSON `null` as `Some(null)`; an absent key stays `None` via `default`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RawJson>, D::Error> {
    RawJson::deserialize(d).map(Some)
}

impl BindingContext {
    /// A lifecycle context (`onStartup`, `beforeHelm`, ...), without snapshots.
    pub fn lifecycle(binding: impl Into<String>) -> Self {
        Self { binding: binding.into(), ..Self::default() }
    }

    /// Whether this is a lifecycle binding (no `type`).
    pub fn is_lifecycle(&self) -> bool {
        self.binding_type.is_none()
    }

    /// The snapshot of `binding` carried by this context, if any.
    ///
    /// A non-group `Synchronization` context carries its own binding's snapshot in `objects`
    /// rather than in `snapshots`, so both are looked at.
    pub fn snapshot(&self, binding: &str) -> Option<&[SnapshotItem]> {
        if let Some(items) = self.snapshots.as_ref().and_then(|s| s.get(binding)) {
            return Some(items);
        }
        match (&self.objects, self.binding_type) {
            (Some(objects), Some(BindingType::Synchronization)) if self.binding == binding => {
                Some(objects)
            }
            _ => None,
        }
    }

    /// Removes the snapshot of `binding` from this context and returns its items (none when
    /// it carries no such snapshot); where [`BindingContext::snapshot`] finds it.
    pub(crate) fn take_snapshot(&mut self, binding: &str) -> Vec<SnapshotItem> {
        if let Some(items) = self.snapshots.as_mut().and_then(|s| s.remove(binding)) {
            return items;
        }
        match self.binding_type {
            Some(BindingType::Synchronization) if self.binding == binding => {
                self.objects.take().unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
}

/// Parses the content of `BINDING_CONTEXT_PATH`; an empty file means no context.
pub fn parse_contexts(text: &str) -> serde_json::Result<Vec<BindingContext>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn raw(v: Value) -> Option<RawJson> {
        Some(RawJson::from(v))
    }

    #[test]
    fn on_startup() {
        let ctx = parse_contexts(r#"[{"binding":"onStartup"}]"#).unwrap();
        assert_eq!(ctx, vec![BindingContext::lifecycle("onStartup")]);
        assert!(ctx[0].is_lifecycle());
        assert_eq!(ctx[0].snapshot("nodes"), None);
    }

    #[test]
    fn before_helm_with_snapshots() {
        let text = r#"[{"binding":"beforeHelm","snapshots":{"nodes":[{"filterResult":{"name":"n1","ready":"True"},"object":{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}}],"cm":[{"filterResult":{"key":"v"}}]}}]"#;
        let ctx = parse_contexts(text).unwrap();
        assert_eq!(ctx.len(), 1);
        let nodes = ctx[0].snapshot("nodes").unwrap();
        assert_eq!(nodes[0].filter_result, raw(json!({"name": "n1", "ready": "True"})));
        assert_eq!(nodes[0].object.as_ref().unwrap().to_value().unwrap()["kind"], "Node");
        assert_eq!(nodes[0].content(), nodes[0].filter_result.as_ref());
        let cm = ctx[0].snapshot("cm").unwrap();
        assert_eq!(cm[0].object, None);
        assert!(ctx[0].is_lifecycle());
    }

    #[test]
    fn synchronization_uses_objects_for_own_binding() {
        let text = r#"[{"binding":"nodes","type":"Synchronization","objects":[{"object":{"metadata":{"name":"a"}}}],"snapshots":{"cm":[]}},
                       {"binding":"cm","type":"Synchronization","objects":[]}]"#;
        let ctx = parse_contexts(text).unwrap();
        assert_eq!(ctx[0].binding_type, Some(BindingType::Synchronization));
        assert_eq!(ctx[0].snapshot("nodes").unwrap().len(), 1);
        assert_eq!(ctx[0].snapshot("cm").unwrap().len(), 0);
        assert_eq!(ctx[1].snapshot("cm").unwrap().len(), 0);
        assert_eq!(ctx[1].snapshot("nodes"), None);
    }

    #[test]
    fn event_tolerates_missing_object_and_null_filter_result() {
        let text = r#"[{"binding":"nodes","type":"Event","watchEvent":"Added","filterResult":null},
                       {"binding":"nodes","type":"Event","watchEvent":"Deleted","object":{"metadata":{"name":"n2"}}}]"#;
        let ctx = parse_contexts(text).unwrap();
        assert_eq!(ctx[0].watch_event, Some(WatchEvent::Added));
        assert_eq!(ctx[0].filter_result, Some(RawJson::null()));
        assert_eq!(ctx[0].object, None);
        assert_eq!(ctx[1].filter_result, None);
        assert_eq!(ctx[1].watch_event, Some(WatchEvent::Deleted));
    }

    #[test]
    fn schedule_and_group() {
        let text = r#"[{"binding":"cleanup","type":"Schedule"},
                       {"binding":"nodes","type":"Group","groupName":"main","snapshots":{"nodes":[{}],"pods":[]}}]"#;
        let ctx = parse_contexts(text).unwrap();
        assert_eq!(ctx[0].binding_type, Some(BindingType::Schedule));
        assert_eq!(ctx[0].snapshots, None);
        assert_eq!(ctx[1].group_name.as_deref(), Some("main"));
        assert_eq!(ctx[1].snapshot("nodes").unwrap(), &[SnapshotItem::default()]);
    }

    #[test]
    fn serializes_with_sorted_keys_and_presence_rules() {
        let ctx = BindingContext {
            binding: "nodes".into(),
            binding_type: Some(BindingType::Event),
            watch_event: Some(WatchEvent::Modified),
            filter_result: Some(RawJson::null()),
            snapshots: Some(BTreeMap::new()),
            ..BindingContext::default()
        };
        assert_eq!(
            serde_json::to_string(&ctx).unwrap(),
            r#"{"binding":"nodes","filterResult":null,"snapshots":{},"type":"Event","watchEvent":"Modified"}"#
        );
    }

    #[test]
    fn empty_file_is_no_context() {
        assert!(parse_contexts("\n").unwrap().is_empty());
        assert!(parse_contexts("{}").is_err(), "a single object is not the framework's shape");
    }
}
